/* gemm_ukr_avx512.c - AVX-512 micro-kernels (compiled with -mavx512f..., run only when
 * runtime.c found AVX-512 and the OS saves ZMM state). 12 rows x 2 ZMM vectors: 24
 * accumulators, 2 B vectors, A broadcast from memory into each FMA. f32 12x32, f64 12x16.
 * Body and contract in gemm_ukr.h. */
#include <immintrin.h>
#include "gemm_ukr.h"

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
#define T float
#define VT __m512
#define MT __mmask16
#define VL 16
PYNN_GEMM_UKR_SIMD_ALL(pynn_gemm_ukr_avx512_f32, PYNN_ROWS12)
PYNN_GEMM_DOT_SIMD(pynn_gemm_dot_avx512_f32)
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
#define T double
#define VT __m512d
#define MT __mmask8
#define VL 8
PYNN_GEMM_UKR_SIMD_ALL(pynn_gemm_ukr_avx512_f64, PYNN_ROWS12)
PYNN_GEMM_DOT_SIMD(pynn_gemm_dot_avx512_f64)

/* kc x nr of packed B stays in L2 with the A sliver in L1; nc x kc of B in L2 (2 MB) */
const pynn_gemm_kernel_f32 pynn_gemm_avx512_f32 = {MR, 32, 256, 1024, pynn_gemm_ukr_avx512_f32,
                                               pynn_gemm_dot_avx512_f32};
const pynn_gemm_kernel_f64 pynn_gemm_avx512_f64 = {MR, 16, 256, 512, pynn_gemm_ukr_avx512_f64,
                                               pynn_gemm_dot_avx512_f64};
