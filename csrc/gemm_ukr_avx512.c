/* gemm_ukr_avx512.c - AVX-512 micro-kernels (compiled with -mavx512f..., run only when
 * runtime.c found AVX-512 and the OS saves ZMM state). 12 rows x 2 ZMM vectors: 24
 * accumulators, 2 B vectors, A broadcast from memory into each FMA. f32 12x32, f64 12x16.
 * Body and contract in gemm_ukr.h. */
#include <immintrin.h>
#include "gemm_ukr.h"
#include "transpose_avx512.h"

#define MR 12
#define ZERO() _mm512_setzero_ps()
#define SET1(x) _mm512_set1_ps(x)
#define LOADU(p) _mm512_loadu_ps(p)
#define MLOADZ(mk, p) _mm512_maskz_loadu_ps(mk, p)
#define MSTORE(p, mk, v) _mm512_mask_storeu_ps(p, mk, v)
#define FMADD(x, y, z) _mm512_fmadd_ps(x, y, z)
#define MUL(x, y) _mm512_mul_ps(x, y)
#define MASK(cnt) ((__mmask16)((1u << (cnt)) - 1u))
#define ADD(x, y) _mm512_add_ps(x, y)
#define STORE(p, v) _mm512_store_ps(p, v)
#define STOREU(p, v) _mm512_storeu_ps(p, v)
#define T float
#define VT __m512
#define MT __mmask16
#define VL 16
#define TRANSPOSE_OK 1
#define TRANSPOSE(v) pynn_tr16_avx512_f32(v)
PYNN_GEMM_UKR_SIMD_ALL(pynn_gemm_ukr_avx512_f32, PYNN_ROWS12)
PYNN_GEMM_DOT_SIMD(pynn_gemm_dot_avx512_f32)
PYNN_GEMM_PACKROWS_SIMD(pynn_gemm_packrows_avx512_f32)

/* the 16 sums of v[0..15]'s lanes, in one vector (lane j: v[j]); each sum in the same order
 * whatever the other vectors hold: ((l0 + l2) + (l1 + l3)) within each 128-bit quarter, then
 * (q0 + q1) + (q2 + q3) */
static inline __m512 pynn_sum16_avx512_f32(const __m512 *v) {
    __m512 w[8], x[4];
    for (int i = 0; i < 8; i++)
        w[i] = _mm512_add_ps(_mm512_unpacklo_ps(v[2 * i], v[2 * i + 1]),
                             _mm512_unpackhi_ps(v[2 * i], v[2 * i + 1]));
    for (int i = 0; i < 4; i++) {
        __m512d lo = _mm512_unpacklo_pd(_mm512_castps_pd(w[2 * i]), _mm512_castps_pd(w[2 * i + 1]));
        __m512d hi = _mm512_unpackhi_pd(_mm512_castps_pd(w[2 * i]), _mm512_castps_pd(w[2 * i + 1]));
        x[i] = _mm512_add_ps(_mm512_castpd_ps(lo), _mm512_castpd_ps(hi));
    }
    __m512 y0 = _mm512_add_ps(_mm512_shuffle_f32x4(x[0], x[1], 0x88),
                              _mm512_shuffle_f32x4(x[0], x[1], 0xDD));
    __m512 y1 = _mm512_add_ps(_mm512_shuffle_f32x4(x[2], x[3], 0x88),
                              _mm512_shuffle_f32x4(x[2], x[3], 0xDD));
    return _mm512_add_ps(_mm512_shuffle_f32x4(y0, y1, 0x88), _mm512_shuffle_f32x4(y0, y1, 0xDD));
}

/* the 4 sums of v[0..3]'s lanes in lanes 0..3, each in pynn_sum16_avx512_f32's order */
static inline __m512 pynn_sum4_avx512_f32(const __m512 *v) {
    __m512 w0 = _mm512_add_ps(_mm512_unpacklo_ps(v[0], v[1]), _mm512_unpackhi_ps(v[0], v[1]));
    __m512 w1 = _mm512_add_ps(_mm512_unpacklo_ps(v[2], v[3]), _mm512_unpackhi_ps(v[2], v[3]));
    __m512d lo = _mm512_unpacklo_pd(_mm512_castps_pd(w0), _mm512_castps_pd(w1));
    __m512d hi = _mm512_unpackhi_pd(_mm512_castps_pd(w0), _mm512_castps_pd(w1));
    __m512 x = _mm512_add_ps(_mm512_castpd_ps(lo), _mm512_castpd_ps(hi)); /* quarter sums */
    __m512 y = _mm512_add_ps(x, _mm512_shuffle_f32x4(x, x, 0xB1));       /* q0 + q1, q2 + q3 */
    return _mm512_add_ps(y, _mm512_shuffle_f32x4(y, y, 0x4E));
}

/* one block of 4 rows x W columns (W <= 5, a constant where inlined): 4 W accumulators, the
 * rows' vectors loaded once for the W columns; the sums into c (rows < m), alpha and beta */
static inline __attribute__((always_inline)) void
pynn_narrow_blk_avx512_f32(const int W, pynn_idx k, const float *const *ar, const float *b,
                           pynn_idx rsbt, float *c, pynn_idx rsc, pynn_idx csc, float alpha,
                           float beta, pynn_idx m) {
    __mmask16 kt = (__mmask16)((1u << (k % 16)) - 1u);
    pynn_idx kv = k - k % 16, p = 0;
    __m512 acc[20];
#pragma GCC unroll 20
    for (int q = 0; q < 4 * W; q++) acc[q] = _mm512_setzero_ps();
    /* acc[4 jj + r]: row r, column jj */
#define PYNN_NARROW_STEP(LOAD, MK)                                                           \
    {                                                                                        \
        __m512 x0 = LOAD(MK, ar[0] + p), x1 = LOAD(MK, ar[1] + p);                           \
        __m512 x2 = LOAD(MK, ar[2] + p), x3 = LOAD(MK, ar[3] + p);                           \
        /* in registers: else GCC folds these loads into the FMAs, once per column */        \
        __asm__("" : "+v"(x0), "+v"(x1), "+v"(x2), "+v"(x3));                                \
        _Pragma("GCC unroll 5")                                                              \
        for (int jj = 0; jj < W; jj++) {                                                     \
            __m512 y = LOAD(MK, b + jj * rsbt + p);                                          \
            acc[4 * jj] = _mm512_fmadd_ps(x0, y, acc[4 * jj]);                               \
            acc[4 * jj + 1] = _mm512_fmadd_ps(x1, y, acc[4 * jj + 1]);                       \
            acc[4 * jj + 2] = _mm512_fmadd_ps(x2, y, acc[4 * jj + 2]);                       \
            acc[4 * jj + 3] = _mm512_fmadd_ps(x3, y, acc[4 * jj + 3]);                       \
        }                                                                                    \
    }
#define PYNN_NARROW_FULL(MK, P) _mm512_loadu_ps(P)
    for (; p < kv; p += 16) PYNN_NARROW_STEP(PYNN_NARROW_FULL, 0)
    if (p < k) PYNN_NARROW_STEP(_mm512_maskz_loadu_ps, kt)
#undef PYNN_NARROW_FULL
#undef PYNN_NARROW_STEP
    /* columns 0..3 through the 16-sum (lane 4 r + jj; columns past W zero), column 4 through
     * the 4-sum (lane r); each row's W sums gathered into lanes 0..W-1 by one permute and
     * stored under a mask (scalar reads of the sums stored to memory stalled on the
     * forwarding from the vector store: 11% of the kernel at 512 x 128 @ 128 x 10) */
    __m512 s[16];
#pragma GCC unroll 16
    for (int q = 0; q < 16; q++) s[4 * (q % 4) + q / 4] = q / 4 < W ? acc[q] : _mm512_setzero_ps();
    __m512 t16 = pynn_sum16_avx512_f32(s);
    __m512 t4 = W == 5 ? pynn_sum4_avx512_f32(acc + 16) : _mm512_setzero_ps();
    const __mmask16 wm = (__mmask16)((1u << W) - 1u);
    __m512i idx = _mm512_setr_epi32(0, 1, 2, 3, 16, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0);
    const __m512i step = _mm512_setr_epi32(4, 4, 4, 4, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0);
    __m512 va = _mm512_set1_ps(alpha), vb = _mm512_set1_ps(beta);
    for (int r = 0; r < 4 && r < m; r++, idx = _mm512_add_epi32(idx, step)) {
        __m512 v = _mm512_mul_ps(va, _mm512_permutex2var_ps(t16, idx, t4));
        float *cr = c + r * rsc;
        if (csc == 1) {
            if (beta != 0.0f) v = _mm512_fmadd_ps(vb, _mm512_maskz_loadu_ps(wm, cr), v);
            _mm512_mask_storeu_ps(cr, wm, v);
        } else {
            float o[16] __attribute__((aligned(64)));
            _mm512_store_ps(o, v);
            for (int jj = 0; jj < W; jj++)
                cr[jj * csc] = beta == 0.0f ? o[jj] : __builtin_fmaf(beta, cr[jj * csc], o[jj]);
        }
    }
}

static void pynn_gemm_narrow_avx512_f32(pynn_idx k, const float *a, pynn_idx rsa,
                                        const float *bt, pynn_idx rsbt, float *c,
                                        pynn_idx rsc, pynn_idx csc, float alpha, float beta,
                                        pynn_idx m, pynn_idx n) {
    /* C (m,n) = alpha * A (m,k) @ BT (n,k)^T + beta * C, n <= 16: blocks of 4 rows x up to 5
     * columns (ceil(n / 5) blocks, as even as can be: 10 as 5 + 5, 16 as 4 x 4); rows past
     * m repeat the block's first row (not stored) */
    pynn_idx nblk = (n + 4) / 5;
    for (pynn_idx i0 = 0; i0 < m; i0 += 4) {
        const float *ar[4];
        for (int r = 0; r < 4; r++) ar[r] = a + (i0 + (i0 + r < m ? r : 0)) * rsa;
        for (pynn_idx jb = 0, j0 = 0; jb < nblk; jb++) {
            int w = (int)(n / nblk + (jb < n % nblk));
            const float *b = bt + j0 * rsbt;
            float *cb = c + i0 * rsc + j0 * csc;
#define PYNN_NARROW_BLK(W) \
    pynn_narrow_blk_avx512_f32(W, k, ar, b, rsbt, cb, rsc, csc, alpha, beta, m - i0)
            switch (w) {   /* W a constant in each: the accumulators stay in registers */
            case 1: PYNN_NARROW_BLK(1); break;
            case 2: PYNN_NARROW_BLK(2); break;
            case 3: PYNN_NARROW_BLK(3); break;
            case 4: PYNN_NARROW_BLK(4); break;
            default: PYNN_NARROW_BLK(5); break;
            }
#undef PYNN_NARROW_BLK
            j0 += w;
        }
    }
}
#undef ZERO
#undef SET1
#undef LOADU
#undef MLOADZ
#undef MSTORE
#undef FMADD
#undef MUL
#undef MASK
#undef ADD
#undef STORE
#undef STOREU
#undef T
#undef VT
#undef MT
#undef VL
#undef TRANSPOSE_OK
#undef TRANSPOSE

#define ZERO() _mm512_setzero_pd()
#define SET1(x) _mm512_set1_pd(x)
#define LOADU(p) _mm512_loadu_pd(p)
#define MLOADZ(mk, p) _mm512_maskz_loadu_pd(mk, p)
#define MSTORE(p, mk, v) _mm512_mask_storeu_pd(p, mk, v)
#define FMADD(x, y, z) _mm512_fmadd_pd(x, y, z)
#define MUL(x, y) _mm512_mul_pd(x, y)
#define MASK(cnt) ((__mmask8)((1u << (cnt)) - 1u))
#define ADD(x, y) _mm512_add_pd(x, y)
#define STORE(p, v) _mm512_store_pd(p, v)
#define STOREU(p, v) _mm512_storeu_pd(p, v)
#define T double
#define VT __m512d
#define MT __mmask8
#define VL 8
#define TRANSPOSE_OK 0
#define TRANSPOSE(v) ((void)(v))
PYNN_GEMM_UKR_SIMD_ALL(pynn_gemm_ukr_avx512_f64, PYNN_ROWS12)
PYNN_GEMM_DOT_SIMD(pynn_gemm_dot_avx512_f64)
PYNN_GEMM_PACKROWS_SIMD(pynn_gemm_packrows_avx512_f64)

/* pynn_gemm_packcols_f32 for nr = 32: blocks of 16 depths x 16 columns, loaded along the
 * columns and transposed in registers (the portable loop wrote every element alone, a cache
 * line stride apart: 28% of 32 x 10 @ (128 x 10)^T, a dy W2^T) */
static void pynn_gemm_packcols_avx512_f32(float *dst, const float *B, pynn_idx csb,
                                          pynn_idx k, pynn_idx n) {
    for (pynn_idx p0 = 0; p0 < k; p0 += 16) {
        const int np = (int)(k - p0 < 16 ? k - p0 : 16);
        const __mmask16 kp = (__mmask16)(np == 16 ? 0xFFFFu : (1u << np) - 1u);
        for (pynn_idx j0 = 0; j0 < 32; j0 += 16) {
            __m512 v[16];
            for (int i = 0; i < 16; i++)                   /* columns past n: zeros */
                v[i] = j0 + i < n ? _mm512_maskz_loadu_ps(kp, B + (j0 + i) * csb + p0)
                                  : _mm512_setzero_ps();
            pynn_tr16_avx512_f32(v);
            for (int i = 0; i < np; i++) _mm512_storeu_ps(dst + (p0 + i) * 32 + j0, v[i]);
        }
    }
}

/* pynn_gemm_packa_f32 for mr = 12: a column of A (m <= 12 contiguous values) per masked
 * load, zeros past m, stored as the sliver's 12-value line. The portable loop wrote the
 * values one by one: 8% of h^T dy, 128 x 512 @ 512 x 10 (run as its C^T = dy^T h, 10
 * rows); with this, 1 thread, 0.88 and 0.89 of the time, 128 x 128 @ 128 x 10 0.88, 0.90 */
static void pynn_gemm_packa_avx512_f32(float *dst, const float *A, pynn_idx csa, pynn_idx m,
                                       pynn_idx k) {
    const __mmask16 lm = (__mmask16)((1u << m) - 1u);
    for (pynn_idx p = 0; p < k; p++)
        _mm512_mask_storeu_ps(dst + p * MR, (__mmask16)((1u << MR) - 1u),
                              _mm512_maskz_loadu_ps(lm, A + p * csa));
}

/* pynn_gemm_packar_f32 for mr = 12: 16 columns of the m rows (masked loads, zeros for rows
 * m..15 and columns past k), transposed in registers, each column's 12 values stored as the
 * sliver's line. The portable loop gathered the values one by one from the 12 rows: 12.5%
 * of a 2048 x 1024 @ 1024 x 256 product (1 thread, perf), whose A slivers are packed every
 * depth block and serve only 8 tiles */
static void pynn_gemm_packar_avx512_f32(float *dst, const float *A, pynn_idx rsa, pynn_idx m,
                                        pynn_idx k) {
    const __mmask16 l12 = (__mmask16)((1u << MR) - 1u);
    for (pynn_idx p0 = 0; p0 < k; p0 += 16) {
        const int np = (int)(k - p0 < 16 ? k - p0 : 16);
        const __mmask16 kp = (__mmask16)(np == 16 ? 0xFFFFu : (1u << np) - 1u);
        __m512 v[16];
        for (int i = 0; i < 16; i++)
            v[i] = i < m ? _mm512_maskz_loadu_ps(kp, A + i * rsa + p0) : _mm512_setzero_ps();
        pynn_tr16_avx512_f32(v);
        for (int i = 0; i < np; i++) _mm512_mask_storeu_ps(dst + (p0 + i) * MR, l12, v[i]);
    }
}

/* pynn_gemm_packbt_f32: 16 rows of B a block (n lanes each, masked), transposed in
 * registers, a column of B per masked store (the portable loop wrote every element alone:
 * for one row, 1 x 128 @ 128 x 10, the packing took longer than the product) */
static void pynn_gemm_packbt_avx512_f32(float *bt, const float *B, pynn_idx rsb, pynn_idx k,
                                        pynn_idx n) {
    __mmask16 nm = (__mmask16)((1u << n) - 1u);
    for (pynn_idx p0 = 0; p0 < k; p0 += 16) {
        int np = k - p0 < 16 ? (int)(k - p0) : 16;
        __mmask16 km = (__mmask16)((1u << np) - 1u);
        __m512 v[16];
        for (int i = 0; i < 16; i++)
            v[i] = i < np ? _mm512_maskz_loadu_ps(nm, B + (p0 + i) * rsb) : _mm512_setzero_ps();
        pynn_tr16_avx512_f32(v);
        for (pynn_idx j = 0; j < n; j++) _mm512_mask_storeu_ps(bt + j * k + p0, km, v[j]);
    }
}

/* kc x nr of packed B stays in L2 with the A sliver in L1; nc x kc of B in L2 (2 MB) */
const pynn_gemm_kernel_f32 pynn_gemm_avx512_f32 = {MR, 32, 256, 1024, pynn_gemm_ukr_avx512_f32,
                                               pynn_gemm_dot_avx512_f32,
                                               pynn_gemm_narrow_avx512_f32,
                                               pynn_gemm_packrows_avx512_f32,
                                               pynn_gemm_packcols_avx512_f32,
                                               pynn_gemm_packa_avx512_f32,
                                               pynn_gemm_packar_avx512_f32,
                                               pynn_gemm_packbt_avx512_f32};
const pynn_gemm_kernel_f64 pynn_gemm_avx512_f64 = {MR, 16, 256, 512, pynn_gemm_ukr_avx512_f64,
                                               pynn_gemm_dot_avx512_f64, NULL,
                                               pynn_gemm_packrows_avx512_f64};
