/* gemm.c - GEMM driver. PLACEHOLDER: the naive loop only, until the blocked/packed path lands.
 * Contract in gemm.h. */
#include "gemm.h"

#define PYNN_GEMM_NAIVE(T, SUF)                                                              \
void pynn_gemm_naive_##SUF(T *C, pynn_idx rsc, pynn_idx csc,                                 \
                           const T *A, pynn_idx rsa, pynn_idx csa,                           \
                           const T *B, pynn_idx rsb, pynn_idx csb,                           \
                           pynn_idx M, pynn_idx N, pynn_idx K, T alpha, T beta) {            \
    /* C (M,N) = alpha * A (M,K) @ B (K,N) + beta * C; beta == 0 never reads C */            \
    for (pynn_idx i = 0; i < M; i++)                                                         \
        for (pynn_idx j = 0; j < N; j++) {                                                   \
            T acc = 0;                                                                       \
            for (pynn_idx k = 0; k < K; k++) acc += A[i * rsa + k * csa] * B[k * rsb + j * csb]; \
            T *c = &C[i * rsc + j * csc];                                                    \
            *c = beta == (T)0 ? alpha * acc : alpha * acc + beta * *c;                       \
        }                                                                                    \
}
PYNN_GEMM_NAIVE(float, f32)
PYNN_GEMM_NAIVE(double, f64)

int pynn_gemm_f32(float *C, pynn_idx rsc, pynn_idx csc, const float *A, pynn_idx rsa,
                  pynn_idx csa, const float *B, pynn_idx rsb, pynn_idx csb, pynn_idx M,
                  pynn_idx N, pynn_idx K, float alpha, float beta, pynn_ctx ctx) {
    (void)ctx;
    pynn_gemm_naive_f32(C, rsc, csc, A, rsa, csa, B, rsb, csb, M, N, K, alpha, beta);
    return PYNN_OK;
}
int pynn_gemm_f64(double *C, pynn_idx rsc, pynn_idx csc, const double *A, pynn_idx rsa,
                  pynn_idx csa, const double *B, pynn_idx rsb, pynn_idx csb, pynn_idx M,
                  pynn_idx N, pynn_idx K, double alpha, double beta, pynn_ctx ctx) {
    (void)ctx;
    pynn_gemm_naive_f64(C, rsc, csc, A, rsa, csa, B, rsb, csb, M, N, K, alpha, beta);
    return PYNN_OK;
}
