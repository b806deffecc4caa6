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

static void pynn_gemm_narrow_avx512_f32(pynn_idx k, const float *a, pynn_idx rsa,
                                        const float *bt, pynn_idx rsbt, float *c,
                                        pynn_idx rsc, pynn_idx csc, float alpha, float beta,
                                        pynn_idx m, pynn_idx n) {
    /* C (m,n) = alpha * A (m,k) @ BT (n,k)^T + beta * C, n <= 16: blocks of 4 rows x 4
     * columns, 16 accumulators; rows past m repeat the block's first row (not stored) */
    __mmask16 kt = (__mmask16)((1u << (k % 16)) - 1u);
    pynn_idx kv = k - k % 16;
    for (pynn_idx i0 = 0; i0 < m; i0 += 4) {
        const float *ar[4];
        for (int r = 0; r < 4; r++) ar[r] = a + (i0 + (i0 + r < m ? r : 0)) * rsa;
        __m512 s[16];
        for (pynn_idx j0 = 0; j0 < n; j0 += 4) {
            const float *b0 = bt + j0 * rsbt, *b1 = b0 + rsbt, *b2 = b1 + rsbt, *b3 = b2 + rsbt;
            __m512 acc[16];
            for (int q = 0; q < 16; q++) acc[q] = _mm512_setzero_ps();
#define PYNN_NARROW_STEP(LOAD, MK)                                                           \
            {                                                                                \
                __m512 x0 = LOAD(MK, ar[0] + p), x1 = LOAD(MK, ar[1] + p);                   \
                __m512 x2 = LOAD(MK, ar[2] + p), x3 = LOAD(MK, ar[3] + p);                   \
                __m512 y = LOAD(MK, b0 + p);                                                 \
                acc[0] = _mm512_fmadd_ps(x0, y, acc[0]); acc[1] = _mm512_fmadd_ps(x1, y, acc[1]); \
                acc[2] = _mm512_fmadd_ps(x2, y, acc[2]); acc[3] = _mm512_fmadd_ps(x3, y, acc[3]); \
                y = LOAD(MK, b1 + p);                                                        \
                acc[4] = _mm512_fmadd_ps(x0, y, acc[4]); acc[5] = _mm512_fmadd_ps(x1, y, acc[5]); \
                acc[6] = _mm512_fmadd_ps(x2, y, acc[6]); acc[7] = _mm512_fmadd_ps(x3, y, acc[7]); \
                y = LOAD(MK, b2 + p);                                                        \
                acc[8] = _mm512_fmadd_ps(x0, y, acc[8]); acc[9] = _mm512_fmadd_ps(x1, y, acc[9]); \
                acc[10] = _mm512_fmadd_ps(x2, y, acc[10]); acc[11] = _mm512_fmadd_ps(x3, y, acc[11]); \
                y = LOAD(MK, b3 + p);                                                        \
                acc[12] = _mm512_fmadd_ps(x0, y, acc[12]); acc[13] = _mm512_fmadd_ps(x1, y, acc[13]); \
                acc[14] = _mm512_fmadd_ps(x2, y, acc[14]); acc[15] = _mm512_fmadd_ps(x3, y, acc[15]); \
            }
#define PYNN_NARROW_FULL(MK, P) _mm512_loadu_ps(P)
            pynn_idx p = 0;
            for (; p < kv; p += 16) PYNN_NARROW_STEP(PYNN_NARROW_FULL, 0)
            if (p < k) PYNN_NARROW_STEP(_mm512_maskz_loadu_ps, kt)
#undef PYNN_NARROW_FULL
#undef PYNN_NARROW_STEP
            /* acc[4 jj + r] is (row r, column j0 + jj): into s[] by row, 16 columns a row */
            for (int jj = 0; jj < 4; jj++)
                for (int r = 0; r < 4; r++) s[4 * r + jj] = acc[4 * jj + r];
            __m512 t = pynn_sum16_avx512_f32(s); /* lane 4 r + jj */
            float out[16] __attribute__((aligned(64)));
            _mm512_store_ps(out, t);
            for (int r = 0; r < 4 && i0 + r < m; r++)
                for (int jj = 0; jj < 4 && j0 + jj < n; jj++) {
                    float *cc = c + (i0 + r) * rsc + (j0 + jj) * csc;
                    float v = out[4 * r + jj];
                    *cc = beta == 0.0f ? alpha * v : alpha * v + beta * *cc;
                }
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

/* kc x nr of packed B stays in L2 with the A sliver in L1; nc x kc of B in L2 (2 MB) */
const pynn_gemm_kernel_f32 pynn_gemm_avx512_f32 = {MR, 32, 256, 1024, pynn_gemm_ukr_avx512_f32,
                                               pynn_gemm_dot_avx512_f32,
                                               pynn_gemm_narrow_avx512_f32,
                                               pynn_gemm_packrows_avx512_f32,
                                               pynn_gemm_packcols_avx512_f32,
                                               pynn_gemm_packa_avx512_f32,
                                               pynn_gemm_packar_avx512_f32};
const pynn_gemm_kernel_f64 pynn_gemm_avx512_f64 = {MR, 16, 256, 512, pynn_gemm_ukr_avx512_f64,
                                               pynn_gemm_dot_avx512_f64, NULL,
                                               pynn_gemm_packrows_avx512_f64};
