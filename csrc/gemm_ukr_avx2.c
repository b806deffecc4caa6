/* gemm_ukr_avx2.c - AVX2+FMA micro-kernels (compiled with -mavx2 -mfma, run only when
 * runtime.c found both). 6 rows x 2 YMM vectors: 12 accumulators, 2 B vectors, broadcast A.
 * f32 6x16, f64 6x8. Edge columns use vmaskmov. Body and contract in gemm_ukr.h. */
#include <immintrin.h>
#include "gemm_ukr.h"

#define MR 6
#define ZERO() _mm256_setzero_ps()
#define SET1(x) _mm256_set1_ps(x)
#define LOADU(p) _mm256_loadu_ps(p)
#define MLOADZ(mk, p) _mm256_maskload_ps(p, mk)
#define MSTORE(p, mk, v) _mm256_maskstore_ps(p, mk, v)
#define FMADD(x, y, z) _mm256_fmadd_ps(x, y, z)
#define MUL(x, y) _mm256_mul_ps(x, y)
#define MASK(cnt) _mm256_cmpgt_epi32(_mm256_set1_epi32((int)(cnt)), \
                                     _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7))
#define ADD(x, y) _mm256_add_ps(x, y)
#define STORE(p, v) _mm256_store_ps(p, v)
#define STOREU(p, v) _mm256_storeu_ps(p, v)
#define T float
#define VT __m256
#define MT __m256i
#define VL 8
#define TRANSPOSE_OK 0
#define TRANSPOSE(v) ((void)(v))
PYNN_GEMM_UKR_SIMD_ALL(pynn_gemm_ukr_avx2_f32, PYNN_ROWS6)
PYNN_GEMM_DOT_SIMD(pynn_gemm_dot_avx2_f32)
PYNN_GEMM_PACKROWS_SIMD(pynn_gemm_packrows_avx2_f32)
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
#undef VL
#undef TRANSPOSE_OK
#undef TRANSPOSE

#define ZERO() _mm256_setzero_pd()
#define SET1(x) _mm256_set1_pd(x)
#define LOADU(p) _mm256_loadu_pd(p)
#define MLOADZ(mk, p) _mm256_maskload_pd(p, mk)
#define MSTORE(p, mk, v) _mm256_maskstore_pd(p, mk, v)
#define FMADD(x, y, z) _mm256_fmadd_pd(x, y, z)
#define MUL(x, y) _mm256_mul_pd(x, y)
#define MASK(cnt) _mm256_cmpgt_epi64(_mm256_set1_epi64x((long long)(cnt)), \
                                     _mm256_setr_epi64x(0, 1, 2, 3))
#define ADD(x, y) _mm256_add_pd(x, y)
#define STORE(p, v) _mm256_store_pd(p, v)
#define STOREU(p, v) _mm256_storeu_pd(p, v)
#define T double
#define VT __m256d
#define VL 4
#define TRANSPOSE_OK 0
#define TRANSPOSE(v) ((void)(v))
PYNN_GEMM_UKR_SIMD_ALL(pynn_gemm_ukr_avx2_f64, PYNN_ROWS6)
PYNN_GEMM_DOT_SIMD(pynn_gemm_dot_avx2_f64)
PYNN_GEMM_PACKROWS_SIMD(pynn_gemm_packrows_avx2_f64)

const pynn_gemm_kernel_f32 pynn_gemm_avx2_f32 = {MR, 16, 256, 1024, pynn_gemm_ukr_avx2_f32,
                                             pynn_gemm_dot_avx2_f32, NULL,
                                             pynn_gemm_packrows_avx2_f32};
const pynn_gemm_kernel_f64 pynn_gemm_avx2_f64 = {MR, 8, 256, 512, pynn_gemm_ukr_avx2_f64,
                                             pynn_gemm_dot_avx2_f64, NULL,
                                             pynn_gemm_packrows_avx2_f64};
