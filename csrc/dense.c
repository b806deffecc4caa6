/* dense.c - the fused Dense layer: GEMM with the bias and activation as an epilogue, and the
 * whole backward pass (dz, dw, db, dx) in one call. Contract in dense.h.
 *
 * Forward is one GEMM whose epilogue (pynn_gemm_ep) adds the bias and applies the activation
 * to each row panel of the output (an A sliver's rows across a block of columns) right after
 * its last depth block, while it is in L1 / L2 (the vector loops of the activation kernels,
 * row by row: activations.c's pynn_act_block; elementwise, so the bits do not depend on how
 * the panels are cut, which varies with the thread count). An
 * optional residual (B,OC) is added last, in the same pass (a Transformer block's
 * x + proj(.) costs no pass of its own); GELU can also write its derivative (grad) beside
 * the output, for a backward of dy * grad. Before, the epilogue was a pass of its own over
 * row blocks of 512 rows (each block one GEMM call): 2048 x 128 @ 128 x 512 + bias took
 * 12-22% longer than the GEMM alone.
 * Backward forms dz = dy * act'(y) in a per-call scratch buffer (dz is dy itself for
 * "linear"), then db = column sums of dz (rows in order 0..B-1), dw = x^T dz and dx = dz w^T,
 * both GEMMs with swapped strides instead of transposed copies. Each output has one writer and
 * GEMM's accumulation order depends on shapes only, so results do not depend on the threads.
 */
#include <stdlib.h>

#include "dense.h"
#include "gemm.h"
#include "reduce.h"

/* backward with two threads: dw and dx run side by side from this many multiply-adds (each
 * GEMM would take both threads: pynn_gemm's 16 x 65536 flop threshold) */
#define PYNN_DENSE_PAIR (16.0 * 65536.0)
/* ... up to this many weights: measured 2 threads, side by side against one after the other
 * (B x C -> OC, B = 256..2048, C = 64..512, OC = 64..1024): 0.78-0.98 of the time with
 * C x OC <= 64K (Transformer widths: 2048 x 128 -> 384 0.94, 2048 x 128 -> 512 0.94), but
 * 1.05-1.21 with larger w (2048 x 256 -> 1024 1.19, 32 x 784 -> 128 1.57), whose GEMMs
 * scale well on two threads and share their packed B between them */
#define PYNN_DENSE_PAIR_W 65536.0

/* the epilogue's arguments (pynn_gemm_ep): the tile of out at rows i0.., columns j0.. */
#define PYNN_DENSE_EP(T, SUF)                                                               \
typedef struct {                                                                            \
    int act, isa;                                                                           \
    const T *b, *res;                                                                       \
    T *grad;                                                                                \
    pynn_idx oc;                                                                            \
} pynn_dense_ep_##SUF;                                                                      \
                                                                                            \
static void pynn_dense_tile_##SUF(const void *epd, T *c, pynn_idx rsc, pynn_idx i0,         \
                                  pynn_idx j0, pynn_idx m, pynn_idx n) {                    \
    const pynn_dense_ep_##SUF *e = (const pynn_dense_ep_##SUF *)epd;                        \
    pynn_act_block_##SUF(e->act, c, rsc, e->grad ? e->grad + i0 * e->oc + j0 : NULL, e->oc, \
                         e->b ? e->b + j0 : NULL, e->res ? e->res + i0 * e->oc + j0 : NULL, \
                         e->oc, m, n, e->isa);                                              \
}

/* dense_backward's dx = (dz w^T) * dxm: each block of dx times dxm's at its place */
#define PYNN_DENSE_MUL(T, SUF)                                                              \
typedef struct {                                                                            \
    const T *m;                                                                             \
    pynn_idx c;                                                                             \
    int isa;                                                                                \
} pynn_dense_mul_##SUF;                                                                     \
                                                                                            \
static void pynn_dense_mul_tile_##SUF(const void *epd, T *c, pynn_idx rsc, pynn_idx i0,     \
                                      pynn_idx j0, pynn_idx m, pynn_idx n) {                \
    const pynn_dense_mul_##SUF *e = (const pynn_dense_mul_##SUF *)epd;                      \
    pynn_mul_block_##SUF(c, rsc, e->m + i0 * e->c + j0, e->c, m, n, e->isa);                \
}

PYNN_DENSE_MUL(float, f32)
PYNN_DENSE_MUL(double, f64)
PYNN_DENSE_EP(float, f32)
PYNN_DENSE_EP(double, f64)

#define PYNN_DENSE_FAMILY(T, SUF)                                                           \
int pynn_dense_forward_##SUF(T *out, T *grad, const T *x, pynn_idx rsx, pynn_idx csx,       \
                             const T *w, pynn_idx rsw, pynn_idx csw, const T *b,            \
                             const T *res, pynn_idx B, pynn_idx C, pynn_idx OC, int act,    \
                             pynn_ctx ctx) {                                                \
    /* out (B,OC) = act(x (B,C) @ w (C,OC) + b (OC)) + res (B,OC); grad (GELU): act'(z) */  \
    if (B == 0 || OC == 0) return PYNN_OK;                                                  \
    if (act == PYNN_ACT_LINEAR && !b && !res)                                               \
        return pynn_gemm_##SUF(out, OC, 1, x, rsx, csx, w, rsw, csw, B, OC, C, (T)1, (T)0,  \
                               ctx);                                                        \
    pynn_dense_ep_##SUF e = {act, ctx.isa, b, res, grad, OC};                               \
    return pynn_gemm_ep_##SUF(out, OC, 1, x, rsx, csx, w, rsw, csw, B, OC, C, (T)1, (T)0,   \
                              ctx, pynn_dense_tile_##SUF, &e);                              \
}                                                                                           \
                                                                                            \
int pynn_dense_backward_##SUF(T *dx, T *dw, T *db,                                          \
                              const T *x, pynn_idx rsx, pynn_idx csx,                       \
                              const T *w, pynn_idx rsw, pynn_idx csw,                       \
                              const T *y, const T *dy, const T *dxm,                        \
                              pynn_idx B, pynn_idx C, pynn_idx OC, int act, pynn_ctx ctx) { \
    /* dz (B,OC) = dy * act'(y); dw (C,OC) = x^T dz; db (OC) = sum_b dz; dx (B,C) = dz w^T, \
     * times dxm (B,C) when given (the GEMM's epilogue) */                                  \
    pynn_dense_mul_##SUF em = {dxm, C, ctx.isa};                                            \
    pynn_gemm_epfn_##SUF ep = dxm ? pynn_dense_mul_tile_##SUF : NULL;                       \
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
    int st = PYNN_OK;                                                                       \
    if (dx && ctx.nthreads == 2 && (double)B * (double)C * (double)OC >= PYNN_DENSE_PAIR    \
        && (double)C * (double)OC <= PYNN_DENSE_PAIR_W) {                                   \
        /* two threads: dw and dx side by side, one thread each (the same FLOPs; where w is \
         * small, two threads on one GEMM scale poorly and meet at barriers), db on         \
         * whichever frees first. A GEMM's bits do not depend on its thread count, so the   \
         * results are those of the calls one after the other. */                           \
        pynn_ctx one = ctx;                                                                 \
        one.nthreads = 1;                                                                   \
        int s[3] = {PYNN_OK, PYNN_OK, PYNN_OK};                                             \
        _Pragma("omp parallel for num_threads(2) schedule(dynamic, 1)")                     \
        for (int q = 0; q < 3; q++) {                                                       \
            if (q == 0)                                                                     \
                s[0] = pynn_gemm_##SUF(dw, OC, 1, x, csx, rsx, dz, OC, 1, C, OC, B, (T)1,   \
                                       (T)0, one);                                          \
            else if (q == 1)                                                                \
                s[1] = pynn_gemm_ep_##SUF(dx, C, 1, dz, OC, 1, w, csw, rsw, B, C, OC, (T)1, \
                                          (T)0, one, ep, &em);                              \
            else                                                                            \
                pynn_column_sum_##SUF(db, dz, B, OC, OC, 1, one);                           \
        }                                                                                   \
        st = s[0] != PYNN_OK ? s[0] : s[1];                                                 \
    } else {                                                                                \
        pynn_column_sum_##SUF(db, dz, B, OC, OC, 1, ctx);                                   \
        st = pynn_gemm_##SUF(dw, OC, 1, x, csx, rsx, dz, OC, 1, C, OC, B, (T)1, (T)0, ctx); \
        if (st == PYNN_OK && dx)                                                            \
            st = pynn_gemm_ep_##SUF(dx, C, 1, dz, OC, 1, w, csw, rsw, B, C, OC, (T)1, (T)0, \
                                    ctx, ep, &em);                                          \
    }                                                                                       \
    free(scratch);                                                                          \
    return st;                                                                              \
}

PYNN_DENSE_FAMILY(float, f32)
PYNN_DENSE_FAMILY(double, f64)
