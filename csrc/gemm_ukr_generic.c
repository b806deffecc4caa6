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
    if (m == 1) { /* a single row, possibly read in place: touch row 0 only */              \
        for (pynn_idx p = 0; p < k; p++) {                                                   \
            const T *ap = a + p * csa, *bp = b + p * rsb;                                    \
            for (int j = 0; j < n; j++) acc[0][j] += ap[0] * bp[j];                          \
        }                                                                                    \
    } else if (n == PYNN_GEN_NR) {                                                                  \
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
static T pynn_gemm_dot_generic_##SUF(pynn_idx k, const T *a, const T *b) {                   \
    /* sum_p a[p] * b[p]: eight partial sums over blocks of 8, the tail into the first,      \
     * combined pairwise; a fixed order that depends on k only */                            \
    T s[8] = {0};                                                                            \
    pynn_idx p = 0;                                                                          \
    for (; p + 8 <= k; p += 8)                                                               \
        for (int l = 0; l < 8; l++) s[l] += a[p + l] * b[p + l];                             \
    for (; p < k; p++) s[0] += a[p] * b[p];                                                  \
    return ((s[0] + s[1]) + (s[2] + s[3])) + ((s[4] + s[5]) + (s[6] + s[7]));               \
}                                                                                            \
const pynn_gemm_kernel_##SUF pynn_gemm_generic_##SUF = {                                     \
    PYNN_GEN_MR, PYNN_GEN_NR, 256, 512, pynn_gemm_ukr_generic_##SUF,                         \
    pynn_gemm_dot_generic_##SUF};

PYNN_GEMM_UKR_GENERIC(float, f32)
PYNN_GEMM_UKR_GENERIC(double, f64)
