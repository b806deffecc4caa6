/* dense.c - the fused Dense layer: GEMM with the bias and activation as an epilogue, and the
 * whole backward pass (dz, dw, db, dx) in one call. Contract in dense.h.
 *
 * Forward runs in row blocks of about 32K outputs: GEMM writes the block (beta = 0), then the
 * epilogue adds the bias and applies the activation (the activation kernels, in place) while
 * the block is still in cache; without an epilogue (linear, no bias) it is one GEMM. An
 * optional residual (B,OC) is added last, in the bias pass of a linear layer (a Transformer
 * block's x + proj(.) costs no pass of its own).
 * Backward forms dz = dy * act'(y) in a per-call scratch buffer (dz is dy itself for
 * "linear"), then db = column sums of dz (rows in order 0..B-1), dw = x^T dz and dx = dz w^T,
 * both GEMMs with swapped strides instead of transposed copies. Each output has one writer and
 * GEMM's accumulation order depends on shapes only, so results do not depend on the threads.
 */
#include <stdlib.h>

#include "dense.h"
#include "gemm.h"
#include "reduce.h"

#define PYNN_DENSE_BLOCK 32768 /* outputs per forward row block */
/* but never fewer rows than this: a GEMM of fewer rows runs unpacked and re-reads all of w
 * per block (2048 x 256 @ 256 x 1024 in 32-row blocks ran at half the GEMM speed) */
#define PYNN_DENSE_MIN_ROWS 512

#define PYNN_DENSE_FAMILY(T, SUF)                                                           \
int pynn_dense_forward_##SUF(T *out, const T *x, pynn_idx rsx, pynn_idx csx,                \
                             const T *w, pynn_idx rsw, pynn_idx csw, const T *b,            \
                             const T *res, pynn_idx B, pynn_idx C, pynn_idx OC, int act,    \
                             pynn_ctx ctx) {                                                \
    /* out (B,OC) = act(x (B,C) @ w (C,OC) + b (OC)) + res (B,OC) */                        \
    if (B == 0 || OC == 0) return PYNN_OK;                                                  \
    /* no epilogue (linear, no bias, no residual): one GEMM, which packs w once rather     \
     * than per block */                                                                    \
    pynn_idx mb = act == PYNN_ACT_LINEAR && !b && !res ? B                                  \
                : PYNN_MAX(PYNN_DENSE_MIN_ROWS, PYNN_DENSE_BLOCK / OC);                     \
    for (pynn_idx r0 = 0; r0 < B; r0 += mb) {                                               \
        pynn_idx rows = PYNN_MIN(mb, B - r0);                                               \
        T *yb = out + r0 * OC;                                                              \
        int st = pynn_gemm_##SUF(yb, OC, 1, x + r0 * rsx, rsx, csx, w, rsw, csw,            \
                                 rows, OC, C, (T)1, (T)0, ctx);                             \
        if (st != PYNN_OK) return st;                                                       \
        /* the bias, and a linear layer's residual in the same pass: (z + b) + res */      \
        const T *rb = res ? res + r0 * OC : NULL;                                           \
        const T *ra = act == PYNN_ACT_LINEAR ? rb : NULL;                                   \
        if (b || ra) {                                                                      \
            int nt = pynn_threads_for(ctx, (double)rows * (double)OC);                      \
            (void)nt;                                                                       \
            _Pragma("omp parallel for num_threads(nt) schedule(static) if(nt > 1)")         \
            for (pynn_idx r = 0; r < rows; r++) {                                           \
                T *yr = yb + r * OC;                                                        \
                const T *rr = ra ? ra + r * OC : NULL;                                      \
                if (b && rr)                                                                \
                    for (pynn_idx j = 0; j < OC; j++) yr[j] = (yr[j] + b[j]) + rr[j];       \
                else if (b)                                                                 \
                    for (pynn_idx j = 0; j < OC; j++) yr[j] += b[j];                        \
                else                                                                        \
                    for (pynn_idx j = 0; j < OC; j++) yr[j] += rr[j];                       \
            }                                                                               \
        }                                                                                   \
        /* the activation kernels, in place: vectorized for ctx.isa, threaded by size */    \
        if (act == PYNN_ACT_RELU) pynn_relu_forward_##SUF(yb, yb, rows * OC, ctx);          \
        else if (act == PYNN_ACT_SIGMOID) pynn_sigmoid_forward_##SUF(yb, yb, rows * OC, ctx); \
        else if (act == PYNN_ACT_TANH) pynn_tanh_forward_##SUF(yb, yb, rows * OC, ctx);     \
        if (rb && !ra) {                /* after a nonlinear activation: act(z + b) + res */ \
            int nt = pynn_threads_for(ctx, (double)rows * (double)OC);                      \
            (void)nt;                                                                       \
            _Pragma("omp parallel for num_threads(nt) schedule(static) if(nt > 1)")         \
            for (pynn_idx r = 0; r < rows; r++) {                                           \
                T *yr = yb + r * OC;                                                        \
                const T *rr = rb + r * OC;                                                  \
                for (pynn_idx j = 0; j < OC; j++) yr[j] += rr[j];                           \
            }                                                                               \
        }                                                                                   \
    }                                                                                       \
    return PYNN_OK;                                                                         \
}                                                                                           \
                                                                                            \
int pynn_dense_backward_##SUF(T *dx, T *dw, T *db,                                          \
                              const T *x, pynn_idx rsx, pynn_idx csx,                       \
                              const T *w, pynn_idx rsw, pynn_idx csw,                       \
                              const T *y, const T *dy,                                      \
                              pynn_idx B, pynn_idx C, pynn_idx OC, int act, pynn_ctx ctx) { \
    /* dz (B,OC) = dy * act'(y); dw (C,OC) = x^T dz; db (OC) = sum_b dz; dx (B,C) = dz w^T */ \
    const T *dz = dy;                                                                       \
    T *scratch = NULL;                                                                      \
    if (act != PYNN_ACT_LINEAR && B > 0 && OC > 0) {                                        \
        scratch = (T *)malloc((size_t)B * (size_t)OC * sizeof(T));                          \
        if (!scratch) return PYNN_ENOMEM;                                                   \
        int nt = pynn_threads_for(ctx, (double)B * (double)OC * 2);                         \
        (void)nt;                                                                           \
        _Pragma("omp parallel for num_threads(nt) schedule(static) if(nt > 1)")             \
        for (pynn_idx r = 0; r < B; r++) {                                                  \
            const T *yr = y + r * OC, *gr = dy + r * OC;                                    \
            T *zr = scratch + r * OC;                                                       \
            switch (act) {                                                                  \
            case PYNN_ACT_RELU:                                                             \
                for (pynn_idx j = 0; j < OC; j++)                                           \
                    zr[j] = pynn_act_grad_from_y_##SUF(PYNN_ACT_RELU, yr[j], gr[j]);        \
                break;                                                                      \
            case PYNN_ACT_SIGMOID:                                                          \
                for (pynn_idx j = 0; j < OC; j++)                                           \
                    zr[j] = pynn_act_grad_from_y_##SUF(PYNN_ACT_SIGMOID, yr[j], gr[j]);     \
                break;                                                                      \
            default:                                                                        \
                for (pynn_idx j = 0; j < OC; j++)                                           \
                    zr[j] = pynn_act_grad_from_y_##SUF(PYNN_ACT_TANH, yr[j], gr[j]);        \
                break;                                                                      \
            }                                                                               \
        }                                                                                   \
        dz = scratch;                                                                       \
    }                                                                                       \
    pynn_column_sum_##SUF(db, dz, B, OC, OC, 1, ctx);                                       \
    int st = pynn_gemm_##SUF(dw, OC, 1, x, csx, rsx, dz, OC, 1, C, OC, B, (T)1, (T)0, ctx); \
    if (st == PYNN_OK && dx)                                                                \
        st = pynn_gemm_##SUF(dx, C, 1, dz, OC, 1, w, csw, rsw, B, C, OC, (T)1, (T)0, ctx);  \
    free(scratch);                                                                          \
    return st;                                                                              \
}

PYNN_DENSE_FAMILY(float, f32)
PYNN_DENSE_FAMILY(double, f64)
