/* gemm.h - general matrix multiply, the engine under Dense, convolution and attention.
 *
 *   C (M,N) = alpha * A (M,K) @ B (K,N) + beta * C
 *
 * Every operand carries a row stride and a column stride (in elements), so op(A) = A^T is a
 * stride swap and views need no copies. beta == 0 never reads C (it may hold NaN garbage).
 * Returns PYNN_OK, or PYNN_ENOMEM if packing scratch could not be allocated (C untouched).
 * Accumulation order of each C element depends only on the shapes, never on ctx.nthreads.
 */
#ifndef PYNN_GEMM_H
#define PYNN_GEMM_H
#include "pynn.h"

int pynn_gemm_f32(float *C, pynn_idx rsc, pynn_idx csc,
                  const float *A, pynn_idx rsa, pynn_idx csa,
                  const float *B, pynn_idx rsb, pynn_idx csb,
                  pynn_idx M, pynn_idx N, pynn_idx K, float alpha, float beta, pynn_ctx ctx);
int pynn_gemm_f64(double *C, pynn_idx rsc, pynn_idx csc,
                  const double *A, pynn_idx rsa, pynn_idx csa,
                  const double *B, pynn_idx rsb, pynn_idx csb,
                  pynn_idx M, pynn_idx N, pynn_idx K, double alpha, double beta, pynn_ctx ctx);

/* the naive triple loop: fallback and oracle for the tuned path */
void pynn_gemm_naive_f32(float *C, pynn_idx rsc, pynn_idx csc,
                         const float *A, pynn_idx rsa, pynn_idx csa,
                         const float *B, pynn_idx rsb, pynn_idx csb,
                         pynn_idx M, pynn_idx N, pynn_idx K, float alpha, float beta);
void pynn_gemm_naive_f64(double *C, pynn_idx rsc, pynn_idx csc,
                         const double *A, pynn_idx rsa, pynn_idx csa,
                         const double *B, pynn_idx rsb, pynn_idx csb,
                         pynn_idx M, pynn_idx N, pynn_idx K, double alpha, double beta);

/* peak_avx512.c: FMA throughput loop (iters x 512 flops per thread) for the benchmark's
 * measured peak; only on CPUs with AVX-512. Returns a checksum. */
float pynn_fma_peak_avx512_f32(pynn_idx iters, int nthreads);
#endif
