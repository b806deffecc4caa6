/* attention.c - scaled dot-product attention (softmax(scale * q k^T + mask) v), forward and
 * backward, for q (B,H,T,D), k (B,H,S,D), v (B,H,S,DV) given by strides, so head-split views
 * of (B,T,H,D) projections need no copies.
 *
 *   forward:  P = softmax over s of scale * q k^T, restricted to allowed (t, s); out = P v
 *   backward: dP = dout v^T; dS = P * (dP - rowsum(P * dP));
 *             dq = scale dS k; dk = scale dS^T q; dv = P^T dout
 *
 * Allowed: mask[b,t,s] != 0 (when given) and s <= t when causal (Keras' lower-triangular
 * causal mask of shape (T,S)). Softmax is max-subtracted; a row with nothing allowed gives
 * P = 0 and out = 0 (not NaN); a NaN or +inf among a row's allowed scores makes its allowed
 * P NaN; disallowed P are always exactly 0. Causal work skips the upper triangle in row
 * blocks of RB: rows t0..t1-1 only touch columns < min(S, t1). RB = 16 computes 5/8 of
 * the full products at T = S = 64, where 32 computed 3/4 (measured on a Transformer
 * block's 128 heads of 64 x 64 x 32, against RB = 32, warm caches: forward 0.93 and 0.91
 * of the time at 1 and 2 threads, backward 0.88 at both; the same bits).
 *
 * Products: per (b, h) pair the operands that serve as the right-hand side (k^T, v, and in
 * the backward v^T, k, q, dout) are read in place when their columns are contiguous and
 * their width a whole number of tiles, else copied into per-thread scratch rows padded to a
 * multiple of the register tile; then one small kernel (pynn_att_mm_*) computes 4-row x
 * 2-vector tiles with the reduction in order k = 0..K-1. A head is far too small for
 * pynn_gemm's packing and per-call scratch to pay off (64x64x32 products, 128 pairs per step).
 *
 * Parallel split: threads take whole (b, h) pairs (schedule static); every output has one
 * writer and the summation order depends on the shapes only, so the bits do not depend on
 * the thread count. The backward keeps dS in per-thread scratch (T*S).
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include "activations.h" /* pynn_exp_f32/f64: exp written out, branch-free */
#include "attention.h"
#include "dropout.h"   /* dropout on the probabilities: the Dropout kernel's mask */
#include <stdint.h>

#define PYNN_ATT_RB 16

/* Row kernels, compiled portable and with AVX2 / AVX-512 enabled by function target
 * attributes (pynn_exp_* is branch-free, so the loops vectorize), picked by ctx.isa.
 * Row reductions use 16 interleaved partial results combined in a fixed tree: the order
 * depends on the row length only. */
#if defined(__GNUC__) && (defined(__x86_64__) || defined(__i386__))
#define PYNN_ATT_TARGET_AVX2 __attribute__((target("avx2,fma")))
#define PYNN_ATT_TARGET_AVX512 __attribute__((target("avx512f,avx512dq,avx512bw,avx512vl,fma")))
#define PYNN_ATT_ISA(ctx) ((ctx).isa < 0 ? 0 : (ctx).isa > 2 ? 2 : (ctx).isa)
#else
#define PYNN_ATT_TARGET_AVX2
#define PYNN_ATT_TARGET_AVX512
#define PYNN_ATT_ISA(ctx) 0
#endif

#define PYNN_ATT_ROWS(T_, SUF, SFX, ATTR)                                                    \
/* rows t0..t1-1 of P (T,S), scores in, probabilities out: allowed = mask (row stride smt,   \
 * column stride sms, NULL = all) and s <= t when causal; nothing allowed gives zeros */     \
ATTR static void pynn_att_softmax_##SUF##_##SFX(T_ *P, pynn_idx S, pynn_idx t0, pynn_idx t1, \
                                                int causal, const uint8_t *mask,            \
                                                pynn_idx smt, pynn_idx sms) {               \
    for (pynn_idx t = t0; t < t1; t++) {                                                     \
        T_ *row = P + t * S;                                                                 \
        const uint8_t *mr = mask ? mask + t * smt : NULL;                                    \
        /* columns < lim are allowed by causality; the passes run over W >= lim, a whole    \
         * number of 16-wide groups where S allows, with columns lim..W-1 as masked */       \
        pynn_idx lim = causal ? PYNN_MIN(S, t + 1) : S, j;                                   \
        pynn_idx W = PYNN_MIN(S, (lim + 15) / 16 * 16);                                      \
        T_ acc[16];                                                                          \
        if (mr)                                                                              \
            for (j = 0; j < lim; j++) row[j] = mr[j * sms] ? row[j] : -(T_)INFINITY;         \
        for (int k = 0; k < 16; k++) acc[k] = -(T_)INFINITY;                                 \
        for (j = 0; j + 16 <= W; j += 16)                                                    \
            for (int k = 0; k < 16; k++) {                                                   \
                T_ x = j + k < lim ? row[j + k] : -(T_)INFINITY;                             \
                acc[k] = x > acc[k] ? x : acc[k];                                            \
            }                                                                                \
        for (int k = 0; j < lim; j++, k++) acc[k] = row[j] > acc[k] ? row[j] : acc[k];       \
        for (int w = 8; w >= 1; w /= 2)                                                      \
            for (int k = 0; k < w; k++) acc[k] = acc[k + w] > acc[k] ? acc[k + w] : acc[k];  \
        T_ m = acc[0];                                                                       \
        if (m == -(T_)INFINITY) {   /* nothing allowed: zeros; allowed NaN scores: NaN */    \
            T_ fill = 0;                                                                     \
            for (j = 0; j < lim; j++) fill = row[j] != row[j] ? row[j] : fill;               \
            for (j = 0; j < lim; j++) row[j] = mr && !mr[j * sms] ? (T_)0 : fill;            \
            for (j = lim; j < S; j++) row[j] = 0;                                            \
            continue;                                                                        \
        }                                                                                    \
        /* e = exp(x - m) where allowed, exactly 0 elsewhere (masked entries hold -inf, whose \
         * exp is not exactly 0, so they are cleared after), then the sum */                 \
        for (j = 0; j + 16 <= W; j += 16)                                                    \
            for (int k = 0; k < 16; k++) {                                                   \
                T_ e = pynn_exp_##SUF(row[j + k] - m);                                       \
                row[j + k] = j + k < lim ? e : (T_)0;                                        \
            }                                                                                \
        for (; j < lim; j++) row[j] = pynn_exp_##SUF(row[j] - m);                            \
        if (mr)                                                                              \
            for (j = 0; j < lim; j++) row[j] = mr[j * sms] ? row[j] : (T_)0;                 \
        for (int k = 0; k < 16; k++) acc[k] = 0;                                             \
        for (j = 0; j + 16 <= W; j += 16)                                                    \
            for (int k = 0; k < 16; k++) acc[k] += row[j + k];                               \
        for (int k = 0; j < lim; j++, k++) acc[k] += row[j];                                 \
        for (int w = 8; w >= 1; w /= 2)                                                      \
            for (int k = 0; k < w; k++) acc[k] += acc[k + w];                                \
        T_ inv = (T_)1 / acc[0];                                                             \
        /* disallowed entries stay exactly 0, also when a NaN score makes inv NaN */         \
        for (j = 0; j < lim; j++) row[j] *= inv;                                             \
        if (mr)                                                                              \
            for (j = 0; j < lim; j++) row[j] = mr[j * sms] ? row[j] : (T_)0;                 \
        for (j = lim; j < S; j++) row[j] = 0;                                                \
    }                                                                                        \
}                                                                                            \
/* rows t0..t1-1 of dS (T,S): dP in, dS = P (dP - sum_j P dP) out over j < nc, 0 beyond */   \
ATTR static void pynn_att_grad_##SUF##_##SFX(T_ *dS, const T_ *P, pynn_idx S, pynn_idx t0,  \
                                             pynn_idx t1, pynn_idx nc) {                    \
    for (pynn_idx t = t0; t < t1; t++) {                                                     \
        T_ *r = dS + t * S;                                                                  \
        const T_ *p = P + t * S;                                                             \
        T_ acc[16];                                                                          \
        pynn_idx j;                                                                          \
        for (int k = 0; k < 16; k++) acc[k] = 0;                                             \
        for (j = 0; j + 16 <= nc; j += 16)                                                   \
            for (int k = 0; k < 16; k++) acc[k] += p[j + k] * r[j + k];                      \
        for (int k = 0; j < nc; j++, k++) acc[k] += p[j] * r[j];                             \
        for (int w = 8; w >= 1; w /= 2)                                                      \
            for (int k = 0; k < w; k++) acc[k] += acc[k + w];                                \
        T_ dot = acc[0];                                                                     \
        for (j = 0; j < nc; j++) r[j] = p[j] * (r[j] - dot);                                 \
        for (j = nc; j < S; j++) r[j] = 0;                                                   \
    }                                                                                        \
}

/* C (M,N) = alpha A (M,K) @ B (K,N). A by strides (ars, acs); B in scratch: rows of ldb
 * elements, readable (finite) up to N rounded up to the tile width 2 * VL; C by strides.
 * Register tiles of 4 rows x 2 vectors (GCC vector extensions: one zmm per vector with
 * AVX-512, split in halves or quarters for AVX2 and the portable build), and 4 rows x 1
 * vector for a last VL columns or fewer (a causal row block of 16 or 48 columns); rows past
 * M repeat the last row and are not stored. Each element sums k = 0..K-1 in order, in
 * either tile. */
#if defined(__GNUC__)
#define PYNN_ATT_MM(T_, SUF, SFX, ATTR)                                                      \
ATTR static void pynn_att_mm_##SUF##_##SFX(T_ *Cm, pynn_idx rsc, pynn_idx csc, const T_ *A,  \
                                           pynn_idx ars, pynn_idx acs, const T_ *B,          \
                                           pynn_idx ldb, pynn_idx M, pynn_idx N, pynn_idx K, \
                                           T_ alpha) {                                       \
    enum { VL = 64 / sizeof(T_) };                                                           \
    for (pynn_idx i0 = 0; i0 < M; i0 += 4) {                                                 \
        pynn_idx mr = PYNN_MIN(M - i0, 4);                                                   \
        const T_ *a0 = A + i0 * ars, *a1 = A + (i0 + PYNN_MIN(1, mr - 1)) * ars;             \
        const T_ *a2 = A + (i0 + PYNN_MIN(2, mr - 1)) * ars;                                 \
        const T_ *a3 = A + (i0 + PYNN_MIN(3, mr - 1)) * ars;                                 \
        for (pynn_idx j0 = 0; j0 < N; j0 += 2 * VL) {                                        \
            if (N - j0 <= VL) {           /* a last vector of columns: 4 rows x 1 vector */  \
                pynn_att_vec_##SUF d0 = {0}, d1 = {0}, d2 = {0}, d3 = {0};                   \
                const T_ *b = B + j0;                                                        \
                for (pynn_idx k = 0; k < K; k++, b += ldb) {                                 \
                    pynn_att_vec_##SUF b0 = *(const pynn_att_vec_##SUF *)b;                  \
                    d0 += a0[k * acs] * b0; d1 += a1[k * acs] * b0;                          \
                    d2 += a2[k * acs] * b0; d3 += a3[k * acs] * b0;                          \
                }                                                                            \
                pynn_idx nr = N - j0;                                                        \
                T_ *cr = Cm + i0 * rsc + j0 * csc;                                           \
                if (csc == 1 && nr == VL && mr == 4) {                                       \
                    *(pynn_att_vec_##SUF *)cr = alpha * d0;                                  \
                    *(pynn_att_vec_##SUF *)(cr + rsc) = alpha * d1;                          \
                    *(pynn_att_vec_##SUF *)(cr + 2 * rsc) = alpha * d2;                      \
                    *(pynn_att_vec_##SUF *)(cr + 3 * rsc) = alpha * d3;                      \
                    break;                                                                   \
                }                                                                            \
                T_ t[4][VL];                                                                 \
                *(pynn_att_vec_##SUF *)t[0] = d0; *(pynn_att_vec_##SUF *)t[1] = d1;          \
                *(pynn_att_vec_##SUF *)t[2] = d2; *(pynn_att_vec_##SUF *)t[3] = d3;          \
                for (pynn_idx r = 0; r < mr; r++)                                            \
                    for (pynn_idx c = 0; c < nr; c++) cr[r * rsc + c * csc] = alpha * t[r][c]; \
                break;                                                                       \
            }                                                                                \
            pynn_att_vec_##SUF c00 = {0}, c01 = {0}, c10 = {0}, c11 = {0};                   \
            pynn_att_vec_##SUF c20 = {0}, c21 = {0}, c30 = {0}, c31 = {0};                   \
            const T_ *b = B + j0;                                                            \
            for (pynn_idx k = 0; k < K; k++, b += ldb) {                                     \
                pynn_att_vec_##SUF b0 = *(const pynn_att_vec_##SUF *)b;                      \
                pynn_att_vec_##SUF b1 = *(const pynn_att_vec_##SUF *)(b + VL);               \
                T_ x0 = a0[k * acs], x1 = a1[k * acs], x2 = a2[k * acs], x3 = a3[k * acs];   \
                c00 += x0 * b0; c01 += x0 * b1; c10 += x1 * b0; c11 += x1 * b1;             \
                c20 += x2 * b0; c21 += x2 * b1; c30 += x3 * b0; c31 += x3 * b1;             \
            }                                                                                \
            pynn_idx nr = PYNN_MIN(N - j0, 2 * VL);                                          \
            T_ *cr = Cm + i0 * rsc + j0 * csc;                                               \
            if (csc == 1 && nr == 2 * VL && mr == 4) { /* whole tile, unit stride */         \
                *(pynn_att_vec_##SUF *)cr = alpha * c00;                                     \
                *(pynn_att_vec_##SUF *)(cr + VL) = alpha * c01;                              \
                *(pynn_att_vec_##SUF *)(cr + rsc) = alpha * c10;                             \
                *(pynn_att_vec_##SUF *)(cr + rsc + VL) = alpha * c11;                        \
                *(pynn_att_vec_##SUF *)(cr + 2 * rsc) = alpha * c20;                         \
                *(pynn_att_vec_##SUF *)(cr + 2 * rsc + VL) = alpha * c21;                    \
                *(pynn_att_vec_##SUF *)(cr + 3 * rsc) = alpha * c30;                         \
                *(pynn_att_vec_##SUF *)(cr + 3 * rsc + VL) = alpha * c31;                    \
                continue;                                                                    \
            }                                                                                \
            T_ t[4][2 * VL];                                                                 \
            *(pynn_att_vec_##SUF *)t[0] = c00; *(pynn_att_vec_##SUF *)(t[0] + VL) = c01;     \
            *(pynn_att_vec_##SUF *)t[1] = c10; *(pynn_att_vec_##SUF *)(t[1] + VL) = c11;     \
            *(pynn_att_vec_##SUF *)t[2] = c20; *(pynn_att_vec_##SUF *)(t[2] + VL) = c21;     \
            *(pynn_att_vec_##SUF *)t[3] = c30; *(pynn_att_vec_##SUF *)(t[3] + VL) = c31;     \
            for (pynn_idx r = 0; r < mr; r++)                                                \
                for (pynn_idx c = 0; c < nr; c++) cr[r * rsc + c * csc] = alpha * t[r][c];   \
        }                                                                                    \
    }                                                                                        \
}
typedef float pynn_att_vec_f32 __attribute__((vector_size(64), aligned(4)));
typedef double pynn_att_vec_f64 __attribute__((vector_size(64), aligned(8)));
#else
#define PYNN_ATT_MM(T_, SUF, SFX, ATTR)                                                      \
static void pynn_att_mm_##SUF##_##SFX(T_ *Cm, pynn_idx rsc, pynn_idx csc, const T_ *A,       \
                                      pynn_idx ars, pynn_idx acs, const T_ *B, pynn_idx ldb, \
                                      pynn_idx M, pynn_idx N, pynn_idx K, T_ alpha) {        \
    for (pynn_idx i = 0; i < M; i++)                                                         \
        for (pynn_idx j = 0; j < N; j++) {                                                   \
            T_ acc = 0;                                                                      \
            for (pynn_idx k = 0; k < K; k++) acc += A[i * ars + k * acs] * B[k * ldb + j];   \
            Cm[i * rsc + j * csc] = alpha * acc;                                             \
        }                                                                                    \
}
#endif
/* dst (R, ld) = src (R, Cc) by strides, zeros in columns Cc..ld-1 (per ISA: AVX-512 gathers
 * the strided reads); a transposed copy src (R, Cc)^T is the same call with the strides and
 * sizes swapped: pack(dst, ld, src, cs, rs, Cc, R) */
#define PYNN_ATT_PACK(T_, SUF, SFX, ATTR)                                                    \
ATTR static void pynn_att_pack_##SUF##_##SFX(T_ *dst, pynn_idx ld, const T_ *src,            \
                                             pynn_idx rs, pynn_idx cs, pynn_idx R,           \
                                             pynn_idx Cc) {                                  \
    for (pynn_idx r = 0; r < R; r++) {                                                       \
        for (pynn_idx c = 0; c < Cc; c++) dst[r * ld + c] = src[r * rs + c * cs];            \
        for (pynn_idx c = Cc; c < ld; c++) dst[r * ld + c] = 0;                              \
    }                                                                                        \
}

/* tile width in elements: scratch rows are padded to a multiple of it */
#define PYNN_ATT_NB(T_) ((pynn_idx)(128 / sizeof(T_)))
#define PYNN_ATT_PAD(n, T_) (((n) + PYNN_ATT_NB(T_) - 1) / PYNN_ATT_NB(T_) * PYNN_ATT_NB(T_))
/* a right-hand operand of unit column stride whose width is a whole number of tiles is read
 * in place (the tile loads stay inside its rows) */
#define PYNN_ATT_DIRECT(cs, n, T_) ((cs) == 1 && (n) % PYNN_ATT_NB(T_) == 0)
/* a right-hand operand PTR (R rows of N, row stride LD, column stride CS) is read in place
 * where PYNN_ATT_DIRECT allows, else packed into BUF (row stride LDP) by the `pack` in
 * scope; PTR and LD then name the copy */
#define PYNN_ATT_OPERAND(PTR, LD, CS, BUF, LDP, R, N, T_)                                    \
    if (!PYNN_ATT_DIRECT(CS, N, T_)) {                                                       \
        pack(BUF, LDP, PTR, LD, CS, R, N);                                                   \
        PTR = BUF;                                                                           \
        LD = LDP;                                                                            \
    }

#define PYNN_ATT_ROW_TABLES(T_, SUF)                                                         \
PYNN_ATT_ROWS(T_, SUF, generic, )                                                            \
PYNN_ATT_ROWS(T_, SUF, avx2, PYNN_ATT_TARGET_AVX2)                                           \
PYNN_ATT_ROWS(T_, SUF, avx512, PYNN_ATT_TARGET_AVX512)                                       \
PYNN_ATT_MM(T_, SUF, generic, )                                                              \
PYNN_ATT_MM(T_, SUF, avx2, PYNN_ATT_TARGET_AVX2)                                             \
PYNN_ATT_MM(T_, SUF, avx512, PYNN_ATT_TARGET_AVX512)                                         \
typedef void (*pynn_att_mm_fn_##SUF)(T_ *, pynn_idx, pynn_idx, const T_ *, pynn_idx,         \
                                     pynn_idx, const T_ *, pynn_idx, pynn_idx, pynn_idx,     \
                                     pynn_idx, T_);                                          \
static const pynn_att_mm_fn_##SUF pynn_att_mm_##SUF[3] = {                                   \
    pynn_att_mm_##SUF##_generic, pynn_att_mm_##SUF##_avx2, pynn_att_mm_##SUF##_avx512};      \
PYNN_ATT_PACK(T_, SUF, generic, )                                                            \
PYNN_ATT_PACK(T_, SUF, avx2, PYNN_ATT_TARGET_AVX2)                                           \
PYNN_ATT_PACK(T_, SUF, avx512, PYNN_ATT_TARGET_AVX512)                                       \
typedef void (*pynn_att_pack_fn_##SUF)(T_ *, pynn_idx, const T_ *, pynn_idx, pynn_idx,       \
                                       pynn_idx, pynn_idx);                                  \
static const pynn_att_pack_fn_##SUF pynn_att_pack_##SUF[3] = {                               \
    pynn_att_pack_##SUF##_generic, pynn_att_pack_##SUF##_avx2, pynn_att_pack_##SUF##_best};   \
typedef void (*pynn_att_softmax_fn_##SUF)(T_ *, pynn_idx, pynn_idx, pynn_idx, int,           \
                                          const uint8_t *, pynn_idx, pynn_idx);             \
typedef void (*pynn_att_grad_fn_##SUF)(T_ *, const T_ *, pynn_idx, pynn_idx, pynn_idx,       \
                                       pynn_idx);                                            \
static const pynn_att_softmax_fn_##SUF pynn_att_softmax_##SUF[3] = {                         \
    pynn_att_softmax_##SUF##_generic, pynn_att_softmax_##SUF##_avx2,                         \
    pynn_att_softmax_##SUF##_best};                                                          \
static const pynn_att_grad_fn_##SUF pynn_att_grad_##SUF[3] = {                               \
    pynn_att_grad_##SUF##_generic, pynn_att_grad_##SUF##_avx2, pynn_att_grad_##SUF##_best};

/* The AVX-512 slot of the softmax tables: float rows without a mask run on intrinsics
 * (below), everything else on the compiled rows above */
#if defined(__GNUC__) && (defined(__x86_64__) || defined(__i386__))
static void pynn_att_softmax_f32_best(float *P, pynn_idx S, pynn_idx t0, pynn_idx t1,
                                      int causal, const uint8_t *mask, pynn_idx smt,
                                      pynn_idx sms);
static void pynn_att_grad_f32_best(float *dS, const float *P, pynn_idx S, pynn_idx t0,
                                   pynn_idx t1, pynn_idx nc);
static void pynn_att_pack_f32_best(float *dst, pynn_idx ld, const float *src, pynn_idx rs,
                                   pynn_idx cs, pynn_idx R, pynn_idx Cc);
#else
#define pynn_att_pack_f32_best pynn_att_pack_f32_avx512
#define pynn_att_softmax_f32_best pynn_att_softmax_f32_avx512
#define pynn_att_grad_f32_best pynn_att_grad_f32_avx512
#endif
#define pynn_att_softmax_f64_best pynn_att_softmax_f64_avx512
#define pynn_att_grad_f64_best pynn_att_grad_f64_avx512
#define pynn_att_pack_f64_best pynn_att_pack_f64_avx512

PYNN_ATT_ROW_TABLES(float, f32)
PYNN_ATT_ROW_TABLES(double, f64)

#if defined(__GNUC__) && (defined(__x86_64__) || defined(__i386__))
#include <immintrin.h>
#include "transpose_avx512.h"
/* pynn_exp_f32 (activations.h) on 16 lanes, operation for operation; NaN passes through */
PYNN_ATT_TARGET_AVX512 static inline __m512 pynn_att_exp_avx512(__m512 x) {
    const __m512 c = _mm512_set1_ps(12582912.0f);                    /* 1.5 * 2^23 */
    __m512 xc = _mm512_min_ps(_mm512_max_ps(x, _mm512_set1_ps(-104.0f)), _mm512_set1_ps(89.0f));
    __m512 t = _mm512_fmadd_ps(xc, _mm512_set1_ps(1.44269504088896341f), c);
    __m512i n = _mm512_sub_epi32(_mm512_castps_si512(t), _mm512_set1_epi32(0x4B400000));
    __m512 fn = _mm512_sub_ps(t, c);
    __m512 r = _mm512_fnmadd_ps(fn, _mm512_set1_ps(0.693359375f), xc);
    r = _mm512_fnmadd_ps(fn, _mm512_set1_ps(-2.12194440e-4f), r);
    __m512 p = _mm512_set1_ps(1.9875691500e-4f);
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.3981999507e-3f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(8.3334519073e-3f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(4.1665795894e-2f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.6666665459e-1f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(5.0000001201e-1f));
    p = _mm512_add_ps(_mm512_fmadd_ps(p, _mm512_mul_ps(r, r), r), _mm512_set1_ps(1.0f));
    __m512i n1 = _mm512_srai_epi32(n, 1), n2 = _mm512_sub_epi32(n, n1);
    const __m512i bias = _mm512_set1_epi32(127);
    __m512 y = _mm512_mul_ps(_mm512_mul_ps(p, _mm512_castsi512_ps(_mm512_slli_epi32(
                   _mm512_add_epi32(n1, bias), 23))),
               _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_add_epi32(n2, bias), 23)));
    return _mm512_mask_mov_ps(y, _mm512_cmp_ps_mask(x, x, _CMP_UNORD_Q), x);
}

/* the sum of 16 lanes by the tree of the compiled rows: acc[k] += acc[k + w], w = 8, 4, 2, 1 */
PYNN_ATT_TARGET_AVX512 static inline float pynn_att_tree_sum(__m512 v) {
    __m256 s8 = _mm256_add_ps(_mm512_castps512_ps256(v),
                              _mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(v), 1)));
    __m128 s4 = _mm_add_ps(_mm256_castps256_ps128(s8), _mm256_extractf128_ps(s8, 1));
    __m128 s2 = _mm_add_ps(s4, _mm_movehl_ps(s4, s4));
    return _mm_cvtss_f32(_mm_add_ss(s2, _mm_shuffle_ps(s2, s2, 1)));
}

/* lanes j..j+15 of a row of lim allowed entries */
#define PYNN_ATT_LANES(j, lim) ((lim) - (j) >= 16 ? (__mmask16)0xFFFF                       \
                                : (__mmask16)((1u << ((lim) - (j))) - 1u))

/* Four rows of up to 16 NG entries each (row r of lim[r] allowed entries, 1 <= lim[r] <=
 * 16 NG) through the single-row steps below, side by side: each row's max, exponentials,
 * sum and scaling are a chain of ~150 cycles of latency on 1-4 vectors, which one row at a
 * time left the core waiting (about 200 cycles a row, 35% of the forward, measured 1
 * thread). The same operations on each row in the same order: groups past a row's lim run
 * with an empty mask, which adds -inf to the max and +0 to the sum of non-negative terms,
 * so the bits are those of the single-row code. Returns 1 (and writes nothing) when a row
 * has no finite maximum: the caller then takes those rows one at a time. */
#define PYNN_ATT_SMX4(NG)                                                                    \
PYNN_ATT_TARGET_AVX512 static inline int pynn_att_smx4_##NG(float *P, pynn_idx S,            \
                                                           const pynn_idx *lim) {            \
    const __m512 ninf = _mm512_set1_ps(-INFINITY);                                           \
    __mmask16 k[4][NG];                                                                      \
    __m512 mv[4];                                                                            \
    for (int r = 0; r < 4; r++) {                                                            \
        const float *row = P + r * S;                                                        \
        __m512 acc = ninf;                                                                   \
        for (int g = 0; g < NG; g++) {                                                       \
            k[r][g] = lim[r] > 16 * g ? PYNN_ATT_LANES(16 * g, lim[r]) : 0;                  \
            acc = _mm512_max_ps(_mm512_mask_loadu_ps(ninf, k[r][g], row + 16 * g), acc);    \
        }                                                                                    \
        mv[r] = _mm512_set1_ps(_mm512_reduce_max_ps(acc));                                   \
    }                                                                                        \
    for (int r = 0; r < 4; r++)                                                              \
        if (_mm512_cvtss_f32(mv[r]) == -INFINITY) return 1;                                  \
    __m512 e[4][NG], sum[4];                                                                 \
    for (int r = 0; r < 4; r++) {                                                            \
        const float *row = P + r * S;                                                        \
        sum[r] = _mm512_setzero_ps();                                                        \
        for (int g = 0; g < NG; g++) {                                                       \
            e[r][g] = _mm512_maskz_mov_ps(k[r][g], pynn_att_exp_avx512(_mm512_sub_ps(       \
                _mm512_maskz_loadu_ps(k[r][g], row + 16 * g), mv[r])));                      \
            sum[r] = _mm512_add_ps(sum[r], e[r][g]);                                         \
        }                                                                                    \
    }                                                                                        \
    for (int r = 0; r < 4; r++) {                                                            \
        float *row = P + r * S;                                                              \
        const __m512 inv = _mm512_set1_ps(1.0f / pynn_att_tree_sum(sum[r]));                 \
        for (int g = 0; g < NG; g++)                                                         \
            _mm512_mask_storeu_ps(row + 16 * g, k[r][g], _mm512_mul_ps(e[r][g], inv));       \
        for (pynn_idx j = lim[r]; j < S; j += 16)             /* columns past lim: 0 */      \
            _mm512_mask_storeu_ps(row + j, PYNN_ATT_LANES(j, S), _mm512_setzero_ps());       \
    }                                                                                        \
    return 0;                                                                                \
}
PYNN_ATT_SMX4(1)
PYNN_ATT_SMX4(2)
PYNN_ATT_SMX4(3)
PYNN_ATT_SMX4(4)

/* pynn_att_softmax_f32 without a mask, on 16-lane vectors: the same passes, per-lane
 * partial results and reduction tree as the compiled rows (masked-off lanes hold -inf for
 * the max and 0 for the sum, which change nothing), with one vector a group and no
 * spills: rows of a head are 1-64 entries, where the compiled loops spent more on their
 * 16-entry scratch arrays than on the exponentials (47% of the forward, measured 1 thread) */
PYNN_ATT_TARGET_AVX512 static void pynn_att_softmax_f32_best(
        float *P, pynn_idx S, pynn_idx t0, pynn_idx t1, int causal, const uint8_t *mask,
        pynn_idx smt, pynn_idx sms) {
    if (mask) {
        pynn_att_softmax_f32_avx512(P, S, t0, t1, causal, mask, smt, sms);
        return;
    }
    const __m512 ninf = _mm512_set1_ps(-INFINITY);
    pynn_idx t = t0;
    for (; t + 4 <= t1; t += 4) {               /* four rows at a time (pynn_att_smx4_*) */
        pynn_idx lim[4];
        for (int r = 0; r < 4; r++) lim[r] = causal ? PYNN_MIN(S, t + r + 1) : S;
        pynn_idx ng = (PYNN_MAX(PYNN_MAX(lim[0], lim[1]), PYNN_MAX(lim[2], lim[3])) + 15) / 16;
        if (ng > 4 || lim[0] < 1) break;
        int st = ng == 1 ? pynn_att_smx4_1(P + t * S, S, lim)
               : ng == 2 ? pynn_att_smx4_2(P + t * S, S, lim)
               : ng == 3 ? pynn_att_smx4_3(P + t * S, S, lim) : pynn_att_smx4_4(P + t * S, S, lim);
        if (st) break;                          /* a row without a finite maximum */
    }
    for (; t < t1; t++) {
        float *row = P + t * S;
        pynn_idx lim = causal ? PYNN_MIN(S, t + 1) : S, j;
        __m512 acc = ninf;
        for (j = 0; j < lim; j += 16)       /* max_ps(x, acc): acc where x is NaN */
            acc = _mm512_max_ps(_mm512_mask_loadu_ps(ninf, PYNN_ATT_LANES(j, lim), row + j), acc);
        float m = _mm512_reduce_max_ps(acc);                  /* exact in any order */
        if (m == -INFINITY) {       /* nothing allowed: zeros; allowed NaN scores: NaN */
            float fill = 0;
            for (j = 0; j < lim; j++) fill = row[j] != row[j] ? row[j] : fill;
            for (j = 0; j < lim; j++) row[j] = fill;
            for (j = lim; j < S; j++) row[j] = 0;
            continue;
        }
        const __m512 mv = _mm512_set1_ps(m);
        __m512 sum = _mm512_setzero_ps();
        if (lim <= 64) {
            /* up to 4 groups kept in registers: a masked store does not forward to a load,
             * so storing e and reading it back for the scaling stalled every row */
            __m512 e0, e1 = sum, e2 = sum, e3 = sum;
            __mmask16 k0 = PYNN_ATT_LANES(0, lim), k1 = lim > 16 ? PYNN_ATT_LANES(16, lim) : 0;
            __mmask16 k2 = lim > 32 ? PYNN_ATT_LANES(32, lim) : 0;
            __mmask16 k3 = lim > 48 ? PYNN_ATT_LANES(48, lim) : 0;
            e0 = _mm512_maskz_mov_ps(k0, pynn_att_exp_avx512(
                _mm512_sub_ps(_mm512_maskz_loadu_ps(k0, row), mv)));
            sum = _mm512_add_ps(sum, e0);
            if (k1) {
                e1 = _mm512_maskz_mov_ps(k1, pynn_att_exp_avx512(
                    _mm512_sub_ps(_mm512_maskz_loadu_ps(k1, row + 16), mv)));
                sum = _mm512_add_ps(sum, e1);
            }
            if (k2) {
                e2 = _mm512_maskz_mov_ps(k2, pynn_att_exp_avx512(
                    _mm512_sub_ps(_mm512_maskz_loadu_ps(k2, row + 32), mv)));
                sum = _mm512_add_ps(sum, e2);
            }
            if (k3) {
                e3 = _mm512_maskz_mov_ps(k3, pynn_att_exp_avx512(
                    _mm512_sub_ps(_mm512_maskz_loadu_ps(k3, row + 48), mv)));
                sum = _mm512_add_ps(sum, e3);
            }
            const __m512 inv = _mm512_set1_ps(1.0f / pynn_att_tree_sum(sum));
            _mm512_mask_storeu_ps(row, k0, _mm512_mul_ps(e0, inv));
            if (k1) _mm512_mask_storeu_ps(row + 16, k1, _mm512_mul_ps(e1, inv));
            if (k2) _mm512_mask_storeu_ps(row + 32, k2, _mm512_mul_ps(e2, inv));
            if (k3) _mm512_mask_storeu_ps(row + 48, k3, _mm512_mul_ps(e3, inv));
            for (j = lim; j < S; j += 16)                      /* columns past lim: 0 */
                _mm512_mask_storeu_ps(row + j, PYNN_ATT_LANES(j, S), _mm512_setzero_ps());
            continue;
        }
        for (j = 0; j < lim; j += 16) {
            __mmask16 k = PYNN_ATT_LANES(j, lim);
            __m512 e = _mm512_maskz_mov_ps(k, pynn_att_exp_avx512(
                _mm512_sub_ps(_mm512_maskz_loadu_ps(k, row + j), mv)));
            _mm512_mask_storeu_ps(row + j, k, e);
            sum = _mm512_add_ps(sum, e);
        }
        const __m512 inv = _mm512_set1_ps(1.0f / pynn_att_tree_sum(sum));
        for (j = 0; j < lim; j += 16) {
            __mmask16 k = PYNN_ATT_LANES(j, lim);
            _mm512_mask_storeu_ps(row + j, k, _mm512_mul_ps(_mm512_maskz_loadu_ps(k, row + j), inv));
        }
        for (j = lim; j < S; j += 16)                          /* columns past lim: 0 */
            _mm512_mask_storeu_ps(row + j, PYNN_ATT_LANES(j, S), _mm512_setzero_ps());
    }
}

/* pynn_att_grad_f32 (the compiled rows) on four rows at a time, nc <= 64: each row's dot
 * product with its lanes summed by the same tree, then its dS, side by side (one row was a
 * chain of dependent steps the core could not overlap). The same operations per row in the
 * same order (the compiled loop's multiply-adds are fused, its tail on the first lanes), so
 * the same bits; other rows and wider blocks on the compiled rows. */
PYNN_ATT_TARGET_AVX512 static void pynn_att_grad_f32_best(float *dS, const float *P,
                                                          pynn_idx S, pynn_idx t0, pynn_idx t1,
                                                          pynn_idx nc) {
    pynn_idx t = t0;
    if (nc <= 64) {
        const pynn_idx nf = nc / 16;
        const __mmask16 tm = (__mmask16)((1u << (nc % 16)) - 1u);
        for (; t + 4 <= t1; t += 4) {
            __m512 dot[4];
            for (int r = 0; r < 4; r++) {
                const float *p = P + (t + r) * S, *d = dS + (t + r) * S;
                __m512 acc = _mm512_setzero_ps();
                for (pynn_idx g = 0; g < nf; g++)
                    acc = _mm512_fmadd_ps(_mm512_loadu_ps(p + 16 * g), _mm512_loadu_ps(d + 16 * g),
                                          acc);
                if (tm)
                    acc = _mm512_mask3_fmadd_ps(_mm512_maskz_loadu_ps(tm, p + 16 * nf),
                                                _mm512_maskz_loadu_ps(tm, d + 16 * nf), acc, tm);
                dot[r] = _mm512_set1_ps(pynn_att_tree_sum(acc));
            }
            for (int r = 0; r < 4; r++) {
                const float *p = P + (t + r) * S;
                float *d = dS + (t + r) * S;
                for (pynn_idx g = 0; g < nf; g++)
                    _mm512_storeu_ps(d + 16 * g, _mm512_mul_ps(_mm512_loadu_ps(p + 16 * g),
                        _mm512_sub_ps(_mm512_loadu_ps(d + 16 * g), dot[r])));
                if (tm)
                    _mm512_mask_storeu_ps(d + 16 * nf, tm, _mm512_mul_ps(
                        _mm512_maskz_loadu_ps(tm, p + 16 * nf),
                        _mm512_sub_ps(_mm512_maskz_loadu_ps(tm, d + 16 * nf), dot[r])));
                for (pynn_idx j = nc; j < S; j += 16)        /* columns past nc: 0 */
                    _mm512_mask_storeu_ps(d + j, PYNN_ATT_LANES(j, S), _mm512_setzero_ps());
            }
        }
    }
    if (t < t1) pynn_att_grad_f32_avx512(dS, P, S, t, t1, nc);
}

/* The float pack with a transposing read (rs == 1: each column of the source contiguous,
 * as in the copies k^T and v^T of a head) by 16 x 16 blocks transposed in registers: the
 * compiled loop gathered each strided column (14% of the forward, 11% of the backward,
 * measured 1 thread). The same values; other layouts on the compiled loop. */
PYNN_ATT_TARGET_AVX512 static void pynn_att_pack_f32_best(float *dst, pynn_idx ld,
                                                          const float *src, pynn_idx rs,
                                                          pynn_idx cs, pynn_idx R,
                                                          pynn_idx Cc) {
    if (rs != 1 || cs == 1) {
        pynn_att_pack_f32_avx512(dst, ld, src, rs, cs, R, Cc);
        return;
    }
    for (pynn_idx r0 = 0; r0 < R; r0 += 16) {
        int nrow = (int)PYNN_MIN(16, R - r0);
        __mmask16 kr = PYNN_ATT_LANES(0, nrow);
        for (pynn_idx c0 = 0; c0 < ld; c0 += 16) {
            __m512 v[16];
            for (int i = 0; i < 16; i++)         /* columns past Cc: the zero padding */
                v[i] = c0 + i < Cc ? _mm512_maskz_loadu_ps(kr, src + (c0 + i) * cs + r0)
                                   : _mm512_setzero_ps();
            pynn_tr16_avx512_f32(v);
            __mmask16 kw = PYNN_ATT_LANES(c0, ld);
            for (int i = 0; i < nrow; i++)
                _mm512_mask_storeu_ps(dst + (r0 + i) * ld + c0, kw, v[i]);
        }
    }
}
#endif


/* per-thread scratch of n elements (at least one cache line), NULL on failure */
static void *pynn_att_scratch(size_t bytes) {
    void *p = NULL;
    if (posix_memalign(&p, 64, bytes < 64 ? 64 : bytes) != 0) return NULL;
    return p;
}

#define PYNN_ATTENTION_FAMILY(T_, SUF)                                                  \
int pynn_attention_forward_##SUF(T_ *out, T_ *probs, const T_ *q, const T_ *k, const T_ *v,  \
                                 const uint8_t *mask, pynn_idx B, pynn_idx H, pynn_idx T,    \
                                 pynn_idx S, pynn_idx D, pynn_idx DV, const pynn_idx *so,    \
                                 const pynn_idx *sq, const pynn_idx *sk, const pynn_idx *sv, \
                                 const pynn_idx *sm, int causal, double scale,               \
                                 double drop_rate, uint64_t drop_seed, uint64_t drop_step,   \
                                 pynn_ctx ctx) {                                             \
    /* out (B,H,T,DV) = softmax(scale q (B,H,T,D) k^T (B,H,D,S)) = probs (B,H,T,S) @ v (B,H,S,DV) \
     * (with drop_rate > 0: (probs * mask) @ v, mask the Dropout kernel's over probs' flat   \
     * indices; probs are stored undropped) */                                               \
    pynn_idx BH = B * H, Sp = PYNN_ATT_PAD(S, T_), DVp = PYNN_ATT_PAD(DV, T_);              \
    int nt = pynn_threads_for(ctx, (double)BH * (double)T * (double)S * (double)(D + DV));   \
    if (nt > BH) nt = (int)(BH < 1 ? 1 : BH);                                                \
    int isa = PYNN_ATT_ISA(ctx);                                                             \
    pynn_att_softmax_fn_##SUF softmax_rows = pynn_att_softmax_##SUF[isa];                    \
    pynn_att_mm_fn_##SUF mm = pynn_att_mm_##SUF[isa];                                        \
    pynn_att_pack_fn_##SUF pack = pynn_att_pack_##SUF[isa]; \
    int st = PYNN_OK;                                                                        \
    _Pragma("omp parallel num_threads(nt) if(nt > 1) reduction(|:st)")                       \
    {                                                                                        \
        /* kT (D, Sp) and v (S, DVp) of the current pair; dropped probabilities (RB, S) */  \
        size_t lpd = drop_rate > 0 ? (size_t)(PYNN_ATT_RB * S) : 0;                          \
        T_ *kT = (T_ *)pynn_att_scratch((size_t)(D * Sp + S * DVp + lpd) * sizeof(T_));      \
        T_ *vs = kT ? kT + D * Sp : NULL, *pd = vs ? vs + S * DVp : NULL;                    \
        if (!kT) st |= 1;                                                                    \
        _Pragma("omp for schedule(static)")                                                  \
        for (pynn_idx p = 0; p < BH; p++) {                                                  \
            if (!kT) continue;                                                               \
            pynn_idx b = p / H, h = p % H;                                                   \
            const T_ *qp = q + b * sq[0] + h * sq[1];                                        \
            T_ *op = out + b * so[0] + h * so[1], *P = probs + p * T * S;                    \
            const T_ *vb = v + b * sv[0] + h * sv[1];                                        \
            pynn_idx ldv = sv[2];                                                            \
            pack(kT, Sp, k + b * sk[0] + h * sk[1], sk[3], sk[2], D, S);      /* k^T */      \
            PYNN_ATT_OPERAND(vb, ldv, sv[3], vs, DVp, S, DV, T_)                             \
            for (pynn_idx t0 = 0; t0 < T; t0 += PYNN_ATT_RB) {                               \
                pynn_idx t1 = PYNN_MIN(T, t0 + PYNN_ATT_RB);                                 \
                pynn_idx nc = causal ? PYNN_MIN(S, t1) : S;                                  \
                mm(P + t0 * S, S, 1, qp + t0 * sq[2], sq[2], sq[3], kT, Sp, t1 - t0, nc, D,  \
                   (T_)scale);                                                               \
                softmax_rows(P, S, t0, t1, causal, mask ? mask + b * sm[0] : NULL, sm[1],    \
                             sm[2]);                                                         \
                const T_ *Pv = P + t0 * S;                                                   \
                if (drop_rate > 0) {      /* the columns < nc that the product reads */      \
                    for (pynn_idx t = t0; t < t1; t++)                                       \
                        pynn_dropout_span_##SUF(pd + (t - t0) * S, P + t * S, (p * T + t) * S, \
                                                nc, drop_rate, drop_seed, drop_step, isa);   \
                    Pv = pd;                                                                 \
                }                                                                            \
                mm(op + t0 * so[2], so[2], so[3], Pv, S, 1, vb, ldv, t1 - t0, DV, nc, (T_)1); \
            }                                                                                \
        }                                                                                    \
        free(kT);                                                                            \
    }                                                                                        \
    return st ? PYNN_ENOMEM : PYNN_OK;                                                       \
}                                                                                            \
                                                                                             \
int pynn_attention_backward_##SUF(T_ *dq, T_ *dk, T_ *dv, const T_ *q, const T_ *k,          \
                                  const T_ *v, const T_ *probs, const T_ *dout, pynn_idx B,  \
                                  pynn_idx H, pynn_idx T, pynn_idx S, pynn_idx D,            \
                                  pynn_idx DV, const pynn_idx *sdq, const pynn_idx *sdk,     \
                                  const pynn_idx *sdv, const pynn_idx *sq,                   \
                                  const pynn_idx *sk, const pynn_idx *sv,                    \
                                  const pynn_idx *sdo, int causal, double scale,             \
                                  double drop_rate, uint64_t drop_seed, uint64_t drop_step,  \
                                  pynn_ctx ctx) {                                            \
    /* dq (B,H,T,D) = dS k, dk (B,H,S,D) = dS^T q, dv (B,H,S,DV) = P^T dout (B,H,T,DV),      \
     * dS = P * (dout v^T - rowsum) (all written, not accumulated); with drop_rate > 0 the   \
     * forward's mask M: dP = M * (dout v^T), dv = (P * M)^T dout */                          \
    pynn_idx BH = B * H, Sp = PYNN_ATT_PAD(S, T_), Dp = PYNN_ATT_PAD(D, T_);                \
    pynn_idx DVp = PYNN_ATT_PAD(DV, T_);                                                     \
    int nt = pynn_threads_for(ctx, 2.0 * (double)BH * (double)T * (double)S * (double)(D + DV)); \
    if (nt > BH) nt = (int)(BH < 1 ? 1 : BH);                                                \
    int isa = PYNN_ATT_ISA(ctx);                                                             \
    pynn_att_grad_fn_##SUF grad_rows = pynn_att_grad_##SUF[isa];                             \
    pynn_att_mm_fn_##SUF mm = pynn_att_mm_##SUF[isa];                                        \
    pynn_att_pack_fn_##SUF pack = pynn_att_pack_##SUF[isa]; \
    int st = PYNN_OK;                                                                        \
    _Pragma("omp parallel num_threads(nt) if(nt > 1) reduction(|:st)")                       \
    {                                                                                        \
        /* dS (T, S), vT (DV, Sp), k (S, Dp), q (T, Dp), dout (T, DVp) of the current pair */ \
        size_t lpd = drop_rate > 0 ? (size_t)(T * S) : 0;       /* P * M of the pair */     \
        T_ *dS = (T_ *)pynn_att_scratch((size_t)(T * S + DV * Sp + S * Dp + T * Dp + T * DVp \
                                                 + lpd) * sizeof(T_));                       \
        T_ *vT = dS ? dS + T * S : NULL, *ks = vT ? vT + DV * Sp : NULL;                     \
        T_ *qs = ks ? ks + S * Dp : NULL, *dos = qs ? qs + T * Dp : NULL;                    \
        T_ *pd = dos ? dos + T * DVp : NULL;                                                 \
        if (!dS) st |= 1;                                                                    \
        _Pragma("omp for schedule(static)")                                                  \
        for (pynn_idx p = 0; p < BH; p++) {                                                  \
            if (!dS) continue;                                                               \
            pynn_idx b = p / H, h = p % H;                                                   \
            const T_ *qp = q + b * sq[0] + h * sq[1], *kp = k + b * sk[0] + h * sk[1];       \
            const T_ *dop = dout + b * sdo[0] + h * sdo[1];                                  \
            const T_ *P = probs + p * T * S;                                                 \
            T_ *dqp = dq + b * sdq[0] + h * sdq[1], *dkp = dk + b * sdk[0] + h * sdk[1];     \
            T_ *dvp = dv + b * sdv[0] + h * sdv[1];                                          \
            /* right-hand operands: used in place when rows are unit-stride and a whole     \
             * number of tiles wide, else copied into the padded scratch */                  \
            const T_ *kb = kp, *qb = qp, *dob = dop;                                         \
            pynn_idx ldk = sk[2], ldq = sq[2], lddo = sdo[2];                                \
            pack(vT, Sp, v + b * sv[0] + h * sv[1], sv[3], sv[2], DV, S);     /* v^T */      \
            PYNN_ATT_OPERAND(kb, ldk, sk[3], ks, Dp, S, D, T_)                               \
            PYNN_ATT_OPERAND(qb, ldq, sq[3], qs, Dp, T, D, T_)                               \
            PYNN_ATT_OPERAND(dob, lddo, sdo[3], dos, DVp, T, DV, T_)                         \
            const T_ *Pv = P;                        /* what multiplied v: P, or P * M */    \
            if (drop_rate > 0) {                                                             \
                pynn_dropout_span_##SUF(pd, P, p * T * S, T * S, drop_rate, drop_seed,       \
                                        drop_step, isa);                                     \
                Pv = pd;                                                                     \
            }                                                                                \
            /* dS row blocks: dP = dout v^T, then the softmax Jacobian; dq = scale dS k */   \
            for (pynn_idx t0 = 0; t0 < T; t0 += PYNN_ATT_RB) {                               \
                pynn_idx t1 = PYNN_MIN(T, t0 + PYNN_ATT_RB);                                 \
                pynn_idx nc = causal ? PYNN_MIN(S, t1) : S;                                  \
                mm(dS + t0 * S, S, 1, dop + t0 * sdo[2], sdo[2], sdo[3], vT, Sp, t1 - t0, nc, \
                   DV, (T_)1);                                                               \
                if (drop_rate > 0)                  /* d(P * M) -> dP: times the mask */     \
                    for (pynn_idx t = t0; t < t1; t++)                                       \
                        pynn_dropout_span_##SUF(dS + t * S, dS + t * S, (p * T + t) * S, nc, \
                                                drop_rate, drop_seed, drop_step, isa);       \
                grad_rows(dS, P, S, t0, t1, nc);                                             \
                mm(dqp + t0 * sdq[2], sdq[2], sdq[3], dS + t0 * S, S, 1, kb, ldk, t1 - t0, D, \
                   nc, (T_)scale);                                                           \
            }                                                                                \
            /* column blocks of dS and P: dk = scale dS^T q, dv = P^T dout over rows t >= j0 */ \
            for (pynn_idx j0 = 0; j0 < S; j0 += PYNN_ATT_RB) {                               \
                pynn_idx j1 = PYNN_MIN(S, j0 + PYNN_ATT_RB);                                 \
                pynn_idx ts = causal ? PYNN_MIN(T, j0) : 0;                                  \
                mm(dkp + j0 * sdk[2], sdk[2], sdk[3], dS + ts * S + j0, 1, S, qb + ts * ldq, \
                   ldq, j1 - j0, D, T - ts, (T_)scale);                                      \
                mm(dvp + j0 * sdv[2], sdv[2], sdv[3], Pv + ts * S + j0, 1, S, dob + ts * lddo, \
                   lddo, j1 - j0, DV, T - ts, (T_)1);                                        \
            }                                                                                \
        }                                                                                    \
        free(dS);                                                                            \
    }                                                                                        \
    return st ? PYNN_ENOMEM : PYNN_OK;                                                       \
}

PYNN_ATTENTION_FAMILY(float, f32)
PYNN_ATTENTION_FAMILY(double, f64)
