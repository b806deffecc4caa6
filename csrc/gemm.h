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

/* The same with an epilogue: ep(epd, c, rsc, i0, j0, m, n) is called on every finished block
 * of C (all of K summed in): rows i0..i0+m-1 and columns j0..j0+n-1 of C, the block at c
 * (row stride rsc, contiguous columns), each element in exactly one call, in any order and
 * on any thread; it may rewrite the block in place (a bias, an activation, a residual) and
 * write other arrays at the same positions. On the tiled paths a block is the row panel of
 * one A sliver (up to MR rows) across one block of columns (up to the kernel's nc), called
 * right after its tiles, still in L1 / L2 (per 12 x 32 tile the calls cost more than the
 * pass they save); elsewhere it is a row of C (columns 0..N-1). Which path (tiled or by
 * rows) depends on the shapes, strides, dtype and ISA only, but the blocks themselves also
 * on the thread count: where threads split C by columns, a chunk's columns start at its own
 * tile boundary (generic f64, 16 x 64 @ 64 x 3000: 24 blocks on one thread, 40 on two), so an
 * epilogue whose result for an element depends on the block it came in (a row sum, an
 * offset-dependent loop) has thread-count-dependent bits; an elementwise one has not. Needs
 * csc == 1 (else PYNN_EINVAL, C untouched). The tiled paths run under flush-to-zero, the
 * others do not. */
typedef void (*pynn_gemm_epfn_f32)(const void *epd, float *c, pynn_idx rsc, pynn_idx i0,
                                 pynn_idx j0, pynn_idx m, pynn_idx n);
typedef void (*pynn_gemm_epfn_f64)(const void *epd, double *c, pynn_idx rsc, pynn_idx i0,
                                 pynn_idx j0, pynn_idx m, pynn_idx n);
int pynn_gemm_ep_f32(float *C, pynn_idx rsc, pynn_idx csc,
                     const float *A, pynn_idx rsa, pynn_idx csa,
                     const float *B, pynn_idx rsb, pynn_idx csb,
                     pynn_idx M, pynn_idx N, pynn_idx K, float alpha, float beta, pynn_ctx ctx,
                     pynn_gemm_epfn_f32 ep, const void *epd);
int pynn_gemm_ep_f64(double *C, pynn_idx rsc, pynn_idx csc,
                     const double *A, pynn_idx rsa, pynn_idx csa,
                     const double *B, pynn_idx rsb, pynn_idx csb,
                     pynn_idx M, pynn_idx N, pynn_idx K, double alpha, double beta,
                     pynn_ctx ctx, pynn_gemm_epfn_f64 ep, const void *epd);

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
