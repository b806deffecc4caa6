/* gemm_ukr.h - the GEMM micro-kernel contract and the per-ISA kernel tables.
 *
 * A micro-kernel updates one MR x NR tile of C from an A sliver and a B sliver:
 *
 *   C[i*rsc + j*csc] = alpha * sum_p a[i*rsa + p*csa] * b[p*rsb + j] + beta * C[...]
 *   for i < m <= MR, j < n <= NR; beta == 0 never reads C.
 *
 * a: the A sliver packed column by column (rsa = 1, csa = MR; rows >= m zero-padded), or
 *    A itself read in place by its strides (small path; then m == MR).
 * b: NR consecutive values per p at row stride rsb: a packed sliver (rsb = NR, columns >= n
 *    zero-padded) or B itself when its columns are contiguous (then columns >= n are never
 *    read). Each C element is accumulated over p = 0..k-1 in order, with the same vector
 *    operations whatever its position in the tile and whatever m and n are, so the bits of
 *    a result do not depend on how the driver splits C between threads.
 * Blocking sizes travel with the kernel: kc (depth of a packed block), nc (columns of a
 * packed B block kept in L2).
 */
#ifndef PYNN_GEMM_UKR_H
#define PYNN_GEMM_UKR_H
#include "pynn.h"

typedef void (*pynn_gemm_ukr_f32)(pynn_idx k, const float *a, pynn_idx rsa, pynn_idx csa,
                                  const float *b, pynn_idx rsb,
                                  float *c, pynn_idx rsc, pynn_idx csc, float alpha,
                                  float beta, pynn_idx m, pynn_idx n);
typedef void (*pynn_gemm_ukr_f64)(pynn_idx k, const double *a, pynn_idx rsa, pynn_idx csa,
                                  const double *b, pynn_idx rsb,
                                  double *c, pynn_idx rsc, pynn_idx csc, double alpha,
                                  double beta, pynn_idx m, pynn_idx n);

/* dot product of two contiguous vectors of length k, in a fixed order */
typedef float (*pynn_gemm_dot_f32)(pynn_idx k, const float *a, const float *b);
typedef double (*pynn_gemm_dot_f64)(pynn_idx k, const double *a, const double *b);

/* narrow C (n <= PYNN_GEMM_NARROW_N columns) from rows of A that are contiguous in k:
 *   C[i*rsc + j*csc] = alpha * sum_p a[i*rsa + p] * bt[j*rsbt + p] + beta * C[...], i < m, j < n
 * bt holds B^T (n rows of k). Vectors run along k (all lanes useful however small n is);
 * each element is one FMA chain per lane over the k blocks, then its lanes summed by a fixed
 * tree: the order depends on k only. */
#define PYNN_GEMM_NARROW_N 16
typedef void (*pynn_gemm_narrow_f32)(pynn_idx k, const float *a, pynn_idx rsa,
                                     const float *bt, pynn_idx rsbt, float *c, pynn_idx rsc,
                                     pynn_idx csc, float alpha, float beta, pynn_idx m,
                                     pynn_idx n);
typedef void (*pynn_gemm_narrow_f64)(pynn_idx k, const double *a, pynn_idx rsa,
                                     const double *bt, pynn_idx rsbt, double *c, pynn_idx rsc,
                                     pynn_idx csc, double alpha, double beta, pynn_idx m,
                                     pynn_idx n);

/* slivers s0..s1-1 of a packed block dst (k, n) from B (k, n) with contiguous rows (row
 * stride rsb): sliver s (k, nr) at dst + s nr k, its columns past n zero; rows of B read in
 * order across the slivers. The same values as the portable loop in gemm.c, in vectors. */
typedef void (*pynn_gemm_packrows_f32)(float *dst, const float *B, pynn_idx rsb, pynn_idx k,
                                       pynn_idx n, pynn_idx s0, pynn_idx s1);
typedef void (*pynn_gemm_packrows_f64)(double *dst, const double *B, pynn_idx rsb, pynn_idx k,
                                       pynn_idx n, pynn_idx s0, pynn_idx s1);

/* one sliver dst (k, nr) from B (k, n <= nr) whose columns are contiguous (B[p + j csb], a
 * transposed operand such as W^T in dx = dz W^T), columns past n zero: the portable loop's
 * values, read along the columns and transposed in registers (AVX-512 f32 only, nr = 32) */
typedef void (*pynn_gemm_packcols_f32)(float *dst, const float *B, pynn_idx csb, pynn_idx k,
                                       pynn_idx n);
typedef void (*pynn_gemm_packcols_f64)(double *dst, const double *B, pynn_idx csb, pynn_idx k,
                                       pynn_idx n);

/* one A sliver dst (k, mr) from A (m <= mr rows, k columns) whose columns are contiguous
 * (A[i + p csa], a transposed operand such as x^T in dw = x^T dz), rows m..mr-1 zero: the
 * portable loop's values, a column per masked vector load and store (AVX-512 f32 only) */
typedef void (*pynn_gemm_packa_f32)(float *dst, const float *A, pynn_idx csa, pynn_idx m,
                                    pynn_idx k);
typedef void (*pynn_gemm_packa_f64)(double *dst, const double *A, pynn_idx csa, pynn_idx m,
                                    pynn_idx k);

/* one A sliver dst (k, mr) from A (m <= mr rows, k columns) whose rows are contiguous
 * (A[i rsa + p], a row-major operand such as dz in dx = dz W^T), rows m..mr-1 zero: the
 * portable loop's values, 16 columns of the m rows a block, transposed in registers
 * (AVX-512 f32 only, mr = 12) */
typedef void (*pynn_gemm_packar_f32)(float *dst, const float *A, pynn_idx rsa, pynn_idx m,
                                     pynn_idx k);
typedef void (*pynn_gemm_packar_f64)(double *dst, const double *A, pynn_idx rsa, pynn_idx m,
                                     pynn_idx k);

/* B^T (n, k) into bt from B (k, n <= PYNN_GEMM_NARROW_N) with contiguous rows (row stride
 * rsb): the narrow path's operand, the portable loop's values (AVX-512 f32 only) */
typedef void (*pynn_gemm_packbt_f32)(float *bt, const float *B, pynn_idx rsb, pynn_idx k,
                                     pynn_idx n);
typedef void (*pynn_gemm_packbt_f64)(double *bt, const double *B, pynn_idx rsb, pynn_idx k,
                                     pynn_idx n);

typedef struct {
    int mr, nr;          /* register tile */
    pynn_idx kc, nc;     /* packed block depth and width */
    pynn_gemm_ukr_f32 ukr;
    pynn_gemm_dot_f32 dot;
    pynn_gemm_narrow_f32 narrow; /* NULL: narrow C takes the tile path */
    pynn_gemm_packrows_f32 packrows; /* NULL: the portable loop */
    pynn_gemm_packcols_f32 packcols; /* NULL: the portable loop */
    pynn_gemm_packa_f32 packa;       /* NULL: the portable loop */
    pynn_gemm_packar_f32 packar;     /* NULL: the portable loop */
    pynn_gemm_packbt_f32 packbt;     /* NULL: the portable loop */
} pynn_gemm_kernel_f32;

typedef struct {
    int mr, nr;
    pynn_idx kc, nc;
    pynn_gemm_ukr_f64 ukr;
    pynn_gemm_dot_f64 dot;
    pynn_gemm_narrow_f64 narrow;
    pynn_gemm_packrows_f64 packrows;
    pynn_gemm_packcols_f64 packcols;
    pynn_gemm_packa_f64 packa;
    pynn_gemm_packar_f64 packar;
    pynn_gemm_packbt_f64 packbt;
} pynn_gemm_kernel_f64;

/* gemm_ukr_generic.c, gemm_ukr_avx2.c, gemm_ukr_avx512.c (constant tables, no state) */
extern const pynn_gemm_kernel_f32 pynn_gemm_generic_f32, pynn_gemm_avx2_f32, pynn_gemm_avx512_f32;
extern const pynn_gemm_kernel_f64 pynn_gemm_generic_f64, pynn_gemm_avx2_f64, pynn_gemm_avx512_f64;

/* One body for every SIMD kernel (gemm_ukr_avx2.c, gemm_ukr_avx512.c): a tile of ROWS(...)
 * rows by two vectors of VL lanes. Before instantiating, the including file defines T, VT
 * (vector), MT (lane mask), VL, MR and the operations ZERO() SET1(x) LOADU(p) MLOADZ(mask, p)
 * MSTORE(p, mask, v) FMADD(a, b, c) MUL(a, b) MASK(count), for the dot product ADD(a, b)
 * and STORE(p, v) (aligned), and TRANSPOSE_OK with TRANSPOSE(v) (see PYNN_UKR_TSTORE).
 * Edge columns use lane masks (never reading B or C past column n); edge rows are computed
 * on zero padding and not stored; a strided C goes through a row buffer with the same
 * vector arithmetic (or, a C^T tile, through a register transpose). */
#define PYNN_UKR_DECL(i) VT c##i##a = ZERO(), c##i##b = ZERO();
#define PYNN_UKR_STEP(i, AI) {                                                               \
        VT ai = SET1(AI);                                                                    \
        c##i##a = FMADD(ai, b0, c##i##a);                                                    \
        c##i##b = FMADD(ai, b1, c##i##b);                                                    \
    }
#define PYNN_UKR_STEP_PACKED(i) PYNN_UKR_STEP(i, a[i])
/* strided A: rows 6.. from a second base, so row offsets are (0..5) x rsa, which x86
 * addresses from three registers (rsa, 3 rsa, 5 rsa) instead of spilling twelve */
#define PYNN_UKR_AS(i) ((i) < 6 ? a[(i) * rsa] : a6[((i) - 6) * rsa])
#define PYNN_UKR_STEP_STRIDED(i) PYNN_UKR_STEP(i, PYNN_UKR_AS(i))
/* n <= VL: the second vector column is all padding, its FMAs are skipped */
#define PYNN_UKR_STEP1(i, AI) c##i##a = FMADD(SET1(AI), b0, c##i##a);
#define PYNN_UKR_STEP1_PACKED(i) PYNN_UKR_STEP1(i, a[i])
#define PYNN_UKR_STEP1_STRIDED(i) PYNN_UKR_STEP1(i, PYNN_UKR_AS(i))
/* B rows are fetched PYNN_UKR_PF rows ahead, both vectors' lines: B read in place has a
 * row stride of N (512 bytes for N = 128, a new 4 KB page every few rows), which the
 * hardware prefetchers follow late (measured 5-10% on the layer shapes and squares);
 * a prefetch past the end of B is harmless (it never faults) */
#define PYNN_UKR_PF 16
#define PYNN_UKR_PREFETCH_B                                                                  \
    __builtin_prefetch(b + PYNN_UKR_PF * rsb), __builtin_prefetch(b + PYNN_UKR_PF * rsb + VL)
/* A with contiguous columns (a packed sliver, or a transposed operand read in place with
 * a column stride of M): its column PYNN_UKR_PF ahead, first and last row's lines
 * (measured 5-15% on x^T dy and the squares; row-strided A gains nothing) */
#define PYNN_UKR_PREFETCH_A                                                                  \
    if (rsa == 1)                                                                            \
        __builtin_prefetch(a + PYNN_UKR_PF * csa), __builtin_prefetch(a + PYNN_UKR_PF * csa + MR - 1)
/* the C tile read at the end (beta != 0), fetched at the start: a tile of a large C comes
 * from L3 or memory, 2 lines a row, and loading it after the loop stalls on every line */
#define PYNN_UKR_PREFETCH_C(i)                                                               \
    if (i < m)                                                                               \
        __builtin_prefetch(c + i * rsc), __builtin_prefetch(c + i * rsc + n - 1);
#define PYNN_UKR_LOOP(ROWS, STEP, LOADB0, LOADB1, ASTEP)                                     \
    for (pynn_idx p = 0; p < k; p++, a += ASTEP, b += rsb) {                                 \
        PYNN_UKR_PREFETCH_B;                                                                 \
        PYNN_UKR_PREFETCH_A;                                                                 \
        const T *a6 = a + 6 * rsa;                                                           \
        VT b0 = LOADB0, b1 = LOADB1;                                                         \
        (void)a6;                                                                            \
        ROWS(STEP)                                                                           \
    }
#define PYNN_UKR_LOOP1(ROWS, STEP, ASTEP)                                                    \
    for (pynn_idx p = 0; p < k; p++, a += ASTEP, b += rsb) {                                 \
        __builtin_prefetch(b + PYNN_UKR_PF * rsb);                                           \
        const T *a6 = a + 6 * rsa;                                                           \
        VT b0 = MLOADZ(m0, b);                                                               \
        (void)a6;                                                                            \
        ROWS(STEP)                                                                           \
    }
#define PYNN_UKR_ROW(i, cr)                                                                  \
    if (beta == (T)0) {                                                                      \
        MSTORE(cr, m0, MUL(va, c##i##a));                                                    \
        MSTORE(cr + VL, m1, MUL(va, c##i##b));                                               \
    } else {                                                                                 \
        MSTORE(cr, m0, FMADD(va, c##i##a, MUL(vb, MLOADZ(m0, cr))));                         \
        MSTORE(cr + VL, m1, FMADD(va, c##i##b, MUL(vb, MLOADZ(m1, cr + VL))));               \
    }
#define PYNN_UKR_STORE(i)                                                                    \
    if (i < m) {                                                                             \
        T *cr = c + i * rsc;                                                                 \
        PYNN_UKR_ROW(i, cr)                                                                  \
    }
#define PYNN_UKR_STORE_STRIDED(i)                                                            \
    if (i < m) {                                                                             \
        T *cr = c + i * rsc;                                                                 \
        if (beta != (T)0)                                                                    \
            for (pynn_idx j = 0; j < n; j++) tmp[j] = cr[j * csc];                           \
        PYNN_UKR_ROW(i, tmp)                                                                 \
        for (pynn_idx j = 0; j < n; j++) cr[j * csc] = tmp[j];                               \
    }

/* A C^T tile (the C^T = B^T A^T of a narrow A^T B: rows of the tile are columns of C, so
 * rsc == 1) is transposed in registers and stored a column of C per masked vector where the
 * including file has TRANSPOSE_OK 1 and TRANSPOSE(v) (VL x VL in place, VL >= MR; AVX-512
 * f32): the scalar copies out of a row buffer took ~20% of h^T dy, 128 x 128 @ 128 x 10.
 * beta == 0 only, with the row path's values (alpha times the accumulator). */
#define PYNN_UKR_TV(i) tv[i] = MUL(va, c##i##a), tw[i] = MUL(va, c##i##b);
#define PYNN_UKR_TSTORE(ROWS)                                                                \
    {                                                                                        \
        VT tv[VL > MR ? VL : MR], tw[VL > MR ? VL : MR];   /* MR rows; VL for TRANSPOSE */   \
        for (int i = 0; i < VL; i++) tv[i] = tw[i] = ZERO();                                 \
        ROWS(PYNN_UKR_TV)                                                                    \
        TRANSPOSE(tv);                                                                       \
        MT mm = MASK(m);                                                                     \
        for (pynn_idx j = 0; j < n && j < VL; j++) MSTORE(c + j * csc, mm, tv[j]);           \
        if (n > VL) {                                                                        \
            TRANSPOSE(tw);                                                                   \
            for (pynn_idx j = VL; j < n; j++) MSTORE(c + j * csc, mm, tw[j - VL]);           \
        }                                                                                    \
    }

/* the bodies inline into the one kernel that picks among them (gemm_ukr.h's dispatch below):
 * as separate functions, reached by a jump, the K = 10 tiles of dY W^T ran 4-9% slower */
#if defined(__GNUC__)
#define PYNN_UKR_BODY static inline __attribute__((always_inline))
#else
#define PYNN_UKR_BODY static
#endif
#define PYNN_GEMM_UKR_SIMD(NAME, ROWS)                                                       \
PYNN_UKR_BODY void NAME(pynn_idx k, const T *a, pynn_idx rsa, pynn_idx csa, const T *b,      \
                 pynn_idx rsb, T *c, pynn_idx rsc, pynn_idx csc, T alpha, T beta,            \
                 pynn_idx m, pynn_idx n) {                                                   \
    /* C (m,n) = alpha * A (m,k; strides rsa, csa) @ B (k,n; row stride rsb) + beta * C */   \
    ROWS(PYNN_UKR_DECL)                                                                      \
    MT m0 = MASK(PYNN_MIN(n, VL)), m1 = MASK(PYNN_MAX(0, PYNN_MIN(n - VL, VL)));             \
    if (beta != (T)0 && csc == 1 && k >= 64)                                                 \
        ROWS(PYNN_UKR_PREFETCH_C)                                                            \
    if (rsa == 1) { /* packed sliver, or A with contiguous columns: constant offsets */      \
        if (n == 2 * VL)                                                                     \
            PYNN_UKR_LOOP(ROWS, PYNN_UKR_STEP_PACKED, LOADU(b), LOADU(b + VL), csa)          \
        else if (n <= VL)                                                                    \
            PYNN_UKR_LOOP1(ROWS, PYNN_UKR_STEP1_PACKED, csa)                                 \
        else                                                                                 \
            PYNN_UKR_LOOP(ROWS, PYNN_UKR_STEP_PACKED, MLOADZ(m0, b), MLOADZ(m1, b + VL), csa) \
    } else { /* A in place (small path; 2..MR-1 edge rows are packed or run as MR) */      \
        if (n == 2 * VL)                                                                     \
            PYNN_UKR_LOOP(ROWS, PYNN_UKR_STEP_STRIDED, LOADU(b), LOADU(b + VL), csa)         \
        else if (n <= VL)                                                                    \
            PYNN_UKR_LOOP1(ROWS, PYNN_UKR_STEP1_STRIDED, csa)                                \
        else                                                                                 \
            PYNN_UKR_LOOP(ROWS, PYNN_UKR_STEP_STRIDED, MLOADZ(m0, b), MLOADZ(m1, b + VL), csa) \
    }                                                                                        \
    VT va = SET1(alpha), vb = SET1(beta);                                                    \
    if (csc == 1) {                                                                          \
        ROWS(PYNN_UKR_STORE)                                                                 \
    } else if (TRANSPOSE_OK && rsc == 1 && beta == (T)0) {                                   \
        PYNN_UKR_TSTORE(ROWS)                                                                \
    } else {                                                                                 \
        T tmp[2 * VL] __attribute__((aligned(64)));                                          \
        ROWS(PYNN_UKR_STORE_STRIDED)                                                         \
    }                                                                                        \
}

/* One kernel per ISA from five bodies: the full MR rows, and 1, 4, 8 or 10 rows (8 and 10
 * only where MR is larger) for short edge slivers and single-row products (M == 1), so a
 * short sliver costs its own rows' FMAs, not MR rows' (a batch of 32 is slivers of 12, 12
 * and 8 rows with MR = 12: the 8-row body saves a ninth of its FMAs; the C^T of a 10-class
 * head's h^T dy is one sliver of 10 rows: the 10-row body, a sixth). A row's accumulation
 * is the same FMA chain in every body (the bits do not change). The 1-row body reads only
 * row 0, so a single row is read in place, never packed. */
#define PYNN_GEMM_UKR_SIMD_ALL(NAME, ROWS)                                                   \
PYNN_GEMM_UKR_SIMD(NAME##_full, ROWS)                                                        \
PYNN_GEMM_UKR_SIMD(NAME##_r8, PYNN_ROWS8)                                                    \
PYNN_GEMM_UKR_SIMD(NAME##_r10, PYNN_ROWS10)                                                  \
PYNN_GEMM_UKR_SIMD(NAME##_r4, PYNN_ROWS4)                                                    \
PYNN_GEMM_UKR_SIMD(NAME##_r1, PYNN_ROWS1)                                                    \
static void NAME(pynn_idx k, const T *a, pynn_idx rsa, pynn_idx csa, const T *b,             \
                 pynn_idx rsb, T *c, pynn_idx rsc, pynn_idx csc, T alpha, T beta,            \
                 pynn_idx m, pynn_idx n) {                                                   \
    /* C (m,n) = alpha * A (m,k) @ B (k,n) + beta * C with the fewest rows that cover m. A  \
     * whole tile of a packed B written once (beta 0, alpha 1: a layer's forward and dx)    \
     * first, through a copy of the body with those values constant: no lane masks, row     \
     * tests or alpha products (x * 1 is x, so the same bits). The setup of the general body \
     * cost ~35 cycles a call, a sixth of a K = 10 tile (measured, old kernel against this,  \
     * 21 alternating rounds, same bits: dy W2^T, 512 x 10 @ (128 x 10)^T, 0.94 at 1 thread  \
     * and 0.96 at 2; at batch 32 and 128 0.94-0.95; x^T dh 784 x 32 @ 32 x 128 0.99; the   \
     * other layer shapes and squares 0.99-1.01) */                                         \
    if (m == MR && n == 2 * VL && csc == 1 && beta == (T)0 && rsb == 2 * VL && alpha == (T)1) \
        NAME##_full(k, a, rsa, csa, b, 2 * VL, c, rsc, 1, (T)1, (T)0, MR, 2 * VL);          \
    else if (m == 1)                                                                         \
        NAME##_r1(k, a, rsa, csa, b, rsb, c, rsc, csc, alpha, beta, m, n);                   \
    else if (m <= 4)                                                                         \
        NAME##_r4(k, a, rsa, csa, b, rsb, c, rsc, csc, alpha, beta, m, n);                   \
    else if (MR > 8 && m <= 8)                                                               \
        NAME##_r8(k, a, rsa, csa, b, rsb, c, rsc, csc, alpha, beta, m, n);                   \
    else if (MR > 10 && m <= 10)                                                             \
        NAME##_r10(k, a, rsa, csa, b, rsb, c, rsc, csc, alpha, beta, m, n);                  \
    else                                                                                     \
        NAME##_full(k, a, rsa, csa, b, rsb, c, rsc, csc, alpha, beta, m, n);                 \
}

/* Dot product of two contiguous vectors (the M == 1 or N == 1 path of gemm.c): four vector
 * accumulators over blocks of 4 VL, one more vector at a time into the first, a masked tail
 * into the second, then (s0 + s1) + (s2 + s3) and its lanes summed in order: a fixed order
 * that depends on k only. */
#define PYNN_GEMM_DOT_SIMD(NAME)                                                             \
static T NAME(pynn_idx k, const T *a, const T *b) {                                          \
    /* sum_p a[p] * b[p], p < k */                                                           \
    VT s0 = ZERO(), s1 = ZERO(), s2 = ZERO(), s3 = ZERO();                                   \
    pynn_idx p = 0;                                                                          \
    for (; p + 4 * VL <= k; p += 4 * VL) {                                                   \
        s0 = FMADD(LOADU(a + p), LOADU(b + p), s0);                                          \
        s1 = FMADD(LOADU(a + p + VL), LOADU(b + p + VL), s1);                                \
        s2 = FMADD(LOADU(a + p + 2 * VL), LOADU(b + p + 2 * VL), s2);                        \
        s3 = FMADD(LOADU(a + p + 3 * VL), LOADU(b + p + 3 * VL), s3);                        \
    }                                                                                        \
    for (; p + VL <= k; p += VL) s0 = FMADD(LOADU(a + p), LOADU(b + p), s0);                 \
    if (p < k) {                                                                             \
        MT mk = MASK(k - p);                                                                 \
        s1 = FMADD(MLOADZ(mk, a + p), MLOADZ(mk, b + p), s1);                                \
    }                                                                                        \
    T lanes[VL] __attribute__((aligned(64)));                                                \
    STORE(lanes, ADD(ADD(s0, s1), ADD(s2, s3)));                                             \
    T s = lanes[0];                                                                          \
    for (int l = 1; l < VL; l++) s += lanes[l];                                              \
    return s;                                                                                \
}

/* the packrows contract above for nr = 2 VL: a full sliver row is two vector copies, an
 * edge sliver's row two masked loads (zeros past n, B never read past column n) */
#define PYNN_GEMM_PACKROWS_SIMD(NAME)                                                        \
static void NAME(T *dst, const T *B, pynn_idx rsb, pynn_idx k, pynn_idx n, pynn_idx s0,      \
                 pynn_idx s1) {                                                              \
    const pynn_idx nr = 2 * VL, sfull = PYNN_MIN(s1, n / nr);                                \
    const pynn_idx w = n - sfull * nr;   /* columns of the edge sliver (if s1 > sfull) */    \
    const MT e0 = MASK(PYNN_MIN(w, VL)), e1 = MASK(PYNN_MAX(0, PYNN_MIN(w - VL, VL)));       \
    for (pynn_idx p = 0; p < k; p++) {                                                       \
        const T *bp = B + p * rsb;                                                           \
        T *d = dst + p * nr;                                                                 \
        for (pynn_idx s = s0; s < sfull; s++) {                                              \
            VT v0 = LOADU(bp + s * nr), v1 = LOADU(bp + s * nr + VL);                        \
            STOREU(d + s * nr * k, v0);                                                      \
            STOREU(d + s * nr * k + VL, v1);                                                 \
        }                                                                                    \
        for (pynn_idx s = PYNN_MAX(s0, sfull); s < s1; s++) { /* the edge sliver */          \
            VT v0 = MLOADZ(e0, bp + s * nr), v1 = MLOADZ(e1, bp + s * nr + VL);              \
            STOREU(d + s * nr * k, v0);                                                      \
            STOREU(d + s * nr * k + VL, v1);                                                 \
        }                                                                                    \
    }                                                                                        \
}

#define PYNN_ROWS1(X) X(0)
#define PYNN_ROWS4(X) X(0) X(1) X(2) X(3)
#define PYNN_ROWS6(X) X(0) X(1) X(2) X(3) X(4) X(5)
#define PYNN_ROWS8(X) PYNN_ROWS6(X) X(6) X(7)
#define PYNN_ROWS10(X) PYNN_ROWS8(X) X(8) X(9)
#define PYNN_ROWS12(X) PYNN_ROWS6(X) X(6) X(7) X(8) X(9) X(10) X(11)
#define PYNN_ROWS14(X) PYNN_ROWS12(X) X(12) X(13)

#endif /* PYNN_GEMM_UKR_H */
