/* gemm_ukr_generic.c - the portable C micro-kernels (PYNN_ISA_GENERIC, and the reference
 * the SIMD kernels are tested against). Contract in gemm_ukr.h. Plain loops over a small
 * accumulator tile that the compiler keeps in (SSE) registers; no ISA flags. */
#include "gemm_ukr.h"

#define PYNN_GEN_MR 4
#define PYNN_GEN_NR 8

#define PYNN_GEMM_UKR_GENERIC(T, SUF)                                                        \
static void pynn_gemm_ukr_generic_##SUF(pynn_idx k, const T *a, pynn_idx rsa, pynn_idx csa,  \
                                        const T *b, pynn_idx rsb, T *c, pynn_idx rsc,        \
                                        pynn_idx csc, T alpha, T beta,                       \
                                        pynn_idx m, pynn_idx n) {                            \
    /* C (m,n) = alpha * A (m,k; strides rsa, csa) @ B (k,n; row stride rsb) + beta * C */   \
    T acc[PYNN_GEN_MR][PYNN_GEN_NR] = {{0}};                                                 \
    if (n == PYNN_GEN_NR) {                                                                  \
        for (pynn_idx p = 0; p < k; p++) {                                                   \
            const T *ap = a + p * csa, *bp = b + p * rsb;                                    \
            for (int i = 0; i < PYNN_GEN_MR; i++)                                            \
                for (int j = 0; j < PYNN_GEN_NR; j++) acc[i][j] += ap[i * rsa] * bp[j];      \
        }                                                                                    \
    } else {                                                                                 \
        /* only n columns of b exist: the same per-element operations, fewer of them */      \
        for (pynn_idx p = 0; p < k; p++) {                                                   \
            const T *ap = a + p * csa, *bp = b + p * rsb;                                    \
            for (int i = 0; i < PYNN_GEN_MR; i++)                                            \
                for (int j = 0; j < n; j++) acc[i][j] += ap[i * rsa] * bp[j];                \
        }                                                                                    \
    }                                                                                        \
    for (pynn_idx i = 0; i < m; i++)                                                         \
        for (pynn_idx j = 0; j < n; j++) {                                                   \
            T *cij = c + i * rsc + j * csc;                                                  \
            *cij = beta == (T)0 ? alpha * acc[i][j] : alpha * acc[i][j] + beta * *cij;       \
        }                                                                                    \
}                                                                                            \
const pynn_gemm_kernel_##SUF pynn_gemm_generic_##SUF = {                                     \
    PYNN_GEN_MR, PYNN_GEN_NR, 256, 512, pynn_gemm_ukr_generic_##SUF};

PYNN_GEMM_UKR_GENERIC(float, f32)
PYNN_GEMM_UKR_GENERIC(double, f64)
