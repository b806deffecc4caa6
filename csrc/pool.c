/* pool.c - max / average pooling and their global forms, NHWC, forward and backward.
 *
 * Forward: units of (image, output row) over threads, channels innermost (contiguous for
 * C-ordered x, vectorizable). Window taps are visited in row-major order (i, then j); max
 * keeps the first maximum (strict >), a NaN replaces a number and then stays, as NumPy's
 * argmax. Average divides the sum of the valid taps by their count: summed in row-major
 * order into a double (float32 too), divided in double, rounded to the type once.
 * Backward: windows may overlap (strides < pool size), so each image's dx has one owner
 * thread, which adds the window gradients in output order: the same bits for any thread
 * count. Max pooling recomputes each window's argmax from x rather than saving indices:
 * nothing to store between the calls, and the re-scan costs what the forward did.
 * Windows that do not overlap (strides >= pool size, the usual pool 2 stride 2) write each
 * tap once (dy at the argmax, 0 elsewhere), vectorized, with no zeroing pass when they tile x.
 */
#include <string.h>

#include "pool.h"
#include "pool_max.h"

/* Average pooling accumulates in double, PYNN_POOL_ACC channels at a time (a fixed-size
 * stack block, vectorizable): float32 sums neither overflow nor depend on the order for any
 * realistic window, and float64 keeps its row-major order, the NumPy twin's. */
#define PYNN_POOL_ACC 64

PYNN_MAXPOOL_FAMILY(float, f32, _generic)
PYNN_MAXPOOL_FAMILY(double, f64, _generic)

#define PYNN_POOL_FAMILY(T, SUF)                                                                     \
                                                                                                     \
/* max pooling: the loops of pool_max.h, the AVX-512 build when the ISA allows */                   \
void pynn_max_pool2d_forward_##SUF(T *y, const T *x, pynn_conv_geom g, pynn_ctx ctx) {              \
    if (ctx.isa >= PYNN_ISA_AVX512) pynn_max_pool2d_forward_##SUF##_avx512(y, x, g, ctx);           \
    else pynn_max_pool2d_forward_##SUF##_generic(y, x, g, ctx);                                     \
}                                                                                                   \
void pynn_max_pool2d_backward_##SUF(T *dx, const T *x, const T *dy, pynn_conv_geom g,               \
                                    pynn_ctx ctx) {                                                 \
    if (ctx.isa >= PYNN_ISA_AVX512) pynn_max_pool2d_backward_##SUF##_avx512(dx, x, dy, g, ctx);     \
    else pynn_max_pool2d_backward_##SUF##_generic(dx, x, dy, g, ctx);                               \
}                                                                                                   \
                                                                                                    \
void pynn_avg_pool2d_forward_##SUF(T *y, const T *x, pynn_conv_geom g, pynn_ctx ctx) {               \
    /* y (B,OH,OW,C) = sum of the valid taps of each window / their count: the taps added in     \
       row-major order (i, then j) into a double per channel, divided in double, rounded once */     \
    pynn_idx C = g.C, units = g.B * g.OH;                                                            \
    int nt = pynn_threads_for(ctx, (double)units * g.OW * C * g.KH * g.KW);                          \
    _Pragma("omp parallel for num_threads(nt) schedule(static) if(nt > 1)")                          \
    for (pynn_idx u = 0; u < units; u++) {                                                           \
        pynn_idx b = u / g.OH, oh = u % g.OH;                                                        \
        pynn_idx i0 = PYNN_MAX(0, g.pt - oh * g.sh), i1 = PYNN_MIN(g.KH, g.H + g.pt - oh * g.sh);    \
        double acc[PYNN_POOL_ACC];                                                                   \
        for (pynn_idx ow = 0; ow < g.OW; ow++) {                                                     \
            T *yp = y + (u * g.OW + ow) * C;                                                         \
            pynn_idx j0 = PYNN_MAX(0, g.pl - ow * g.sw);                                             \
            pynn_idx j1 = PYNN_MIN(g.KW, g.W + g.pl - ow * g.sw);                                    \
            double n = (double)((i1 - i0) * (j1 - j0));                                              \
            for (pynn_idx c0 = 0; c0 < C; c0 += PYNN_POOL_ACC) {                                     \
                pynn_idx cn = PYNN_MIN(PYNN_POOL_ACC, C - c0);                                       \
                for (pynn_idx c = 0; c < cn; c++) acc[c] = 0;                                        \
                for (pynn_idx i = i0; i < i1; i++)                                                   \
                    for (pynn_idx j = j0; j < j1; j++) {                                             \
                        const T *xp = x + b * g.xsb + (oh * g.sh + i - g.pt) * g.xsh                 \
                                      + (ow * g.sw + j - g.pl) * g.xsw + c0 * g.xsc;                 \
                        for (pynn_idx c = 0; c < cn; c++) acc[c] += (double)xp[c * g.xsc];           \
                    }                                                                                \
                for (pynn_idx c = 0; c < cn; c++) yp[c0 + c] = (T)(acc[c] / n);                      \
            }                                                                                        \
        }                                                                                            \
    }                                                                                                \
}                                                                                                    \
                                                                                                     \
void pynn_avg_pool2d_backward_##SUF(T *dx, const T *dy, pynn_conv_geom g, pynn_ctx ctx) {            \
    /* dx (B,H,W,C) = sum over the windows holding a position of dy / window count */                \
    pynn_idx C = g.C;                                                                                \
    int nt = pynn_threads_for(ctx, (double)g.B * g.OH * g.OW * C * g.KH * g.KW);                     \
    if (nt > g.B) nt = (int)PYNN_MAX(1, g.B);                                                        \
    _Pragma("omp parallel for num_threads(nt) schedule(static) if(nt > 1)")                          \
    for (pynn_idx b = 0; b < g.B; b++) {                                                             \
        T *dxb = dx + b * g.H * g.W * C;                                                             \
        memset(dxb, 0, (size_t)g.H * g.W * C * sizeof(T));                                           \
        for (pynn_idx oh = 0; oh < g.OH; oh++) {                                                     \
            pynn_idx i0 = PYNN_MAX(0, g.pt - oh * g.sh);                                             \
            pynn_idx i1 = PYNN_MIN(g.KH, g.H + g.pt - oh * g.sh);                                    \
            for (pynn_idx ow = 0; ow < g.OW; ow++) {                                                 \
                const T *dyp = dy + ((b * g.OH + oh) * g.OW + ow) * C;                               \
                pynn_idx j0 = PYNN_MAX(0, g.pl - ow * g.sw);                                         \
                pynn_idx j1 = PYNN_MIN(g.KW, g.W + g.pl - ow * g.sw);                                \
                T n = (T)((i1 - i0) * (j1 - j0));                                                    \
                for (pynn_idx i = i0; i < i1; i++)                                                   \
                    for (pynn_idx j = j0; j < j1; j++) {                                             \
                        T *dxp = dxb + ((oh * g.sh + i - g.pt) * g.W + ow * g.sw + j - g.pl) * C;    \
                        for (pynn_idx c = 0; c < C; c++) dxp[c] += dyp[c] / n;                       \
                    }                                                                                \
            }                                                                                        \
        }                                                                                            \
    }                                                                                                \
}                                                                                                    \
                                                                                                     \
void pynn_global_avg_pool2d_forward_##SUF(T *y, const T *x, pynn_conv_geom g, pynn_ctx ctx) {        \
    /* y (B,C) = sum over h, w of x (B,H,W,C) / (H*W): added in row-major order (h, then w)          \
       into a double per channel, divided in double, rounded once */                                 \
    int nt = pynn_threads_for(ctx, (double)g.B * g.H * g.W * g.C);                                   \
    if (nt > g.B) nt = (int)PYNN_MAX(1, g.B);                                                        \
    double n = (double)(g.H * g.W);                                                                  \
    _Pragma("omp parallel for num_threads(nt) schedule(static) if(nt > 1)")                          \
    for (pynn_idx b = 0; b < g.B; b++) {                                                             \
        T *yp = y + b * g.C;                                                                         \
        double acc[PYNN_POOL_ACC];                                                                   \
        for (pynn_idx c0 = 0; c0 < g.C; c0 += PYNN_POOL_ACC) {                                       \
            pynn_idx cn = PYNN_MIN(PYNN_POOL_ACC, g.C - c0);                                         \
            for (pynn_idx c = 0; c < cn; c++) acc[c] = 0;                                            \
            for (pynn_idx h = 0; h < g.H; h++)                                                       \
                for (pynn_idx w = 0; w < g.W; w++) {                                                 \
                    const T *xp = x + b * g.xsb + h * g.xsh + w * g.xsw + c0 * g.xsc;                \
                    for (pynn_idx c = 0; c < cn; c++) acc[c] += (double)xp[c * g.xsc];               \
                }                                                                                    \
            for (pynn_idx c = 0; c < cn; c++) yp[c0 + c] = (T)(acc[c] / n);                          \
        }                                                                                            \
    }                                                                                                \
}                                                                                                    \
                                                                                                     \
void pynn_global_avg_pool2d_backward_##SUF(T *dx, const T *dy, pynn_conv_geom g,                     \
                                           pynn_ctx ctx) {                                           \
    /* dx (B,H,W,C) = dy (B,C) / (H*W) at every position */                                          \
    pynn_idx HW = g.H * g.W;                                                                         \
    int nt = pynn_threads_for(ctx, (double)g.B * HW * g.C);                                          \
    if (nt > g.B) nt = (int)PYNN_MAX(1, g.B);                                                        \
    T n = (T)HW;                                                                                     \
    _Pragma("omp parallel for num_threads(nt) schedule(static) if(nt > 1)")                          \
    for (pynn_idx b = 0; b < g.B; b++)                                                               \
        for (pynn_idx p = 0; p < HW; p++)                                                            \
            for (pynn_idx c = 0; c < g.C; c++) dx[(b * HW + p) * g.C + c] = dy[b * g.C + c] / n;     \
}                                                                                                    \
                                                                                                     \
void pynn_global_max_pool2d_forward_##SUF(T *y, const T *x, pynn_conv_geom g, pynn_ctx ctx) {        \
    /* y (B,C) = max over h, w of x (B,H,W,C) */                                                     \
    int nt = pynn_threads_for(ctx, (double)g.B * g.H * g.W * g.C);                                   \
    if (nt > g.B) nt = (int)PYNN_MAX(1, g.B);                                                        \
    _Pragma("omp parallel for num_threads(nt) schedule(static) if(nt > 1)")                          \
    for (pynn_idx b = 0; b < g.B; b++) {                                                             \
        T *yp = y + b * g.C;                                                                         \
        for (pynn_idx c = 0; c < g.C; c++) yp[c] = x[b * g.xsb + c * g.xsc];                         \
        for (pynn_idx h = 0; h < g.H; h++)                                                           \
            for (pynn_idx w = 0; w < g.W; w++) {                                                     \
                const T *xp = x + b * g.xsb + h * g.xsh + w * g.xsw;                                 \
                for (pynn_idx c = 0; c < g.C; c++) {                                                 \
                    T v = xp[c * g.xsc];                                                             \
                    yp[c] = pool_beats_##SUF(v, yp[c]) ? v : yp[c];                                  \
                }                                                                                    \
            }                                                                                        \
    }                                                                                                \
}                                                                                                    \
                                                                                                     \
void pynn_global_max_pool2d_backward_##SUF(T *dx, const T *x, const T *dy, pynn_conv_geom g,         \
                                           pynn_ctx ctx) {                                           \
    /* dx (B,H,W,C) = dy (B,C) at each channel's first maximum of x, 0 elsewhere */                  \
    pynn_idx HW = g.H * g.W;                                                                         \
    int nt = pynn_threads_for(ctx, (double)g.B * HW * g.C);                                          \
    if (nt > g.B) nt = (int)PYNN_MAX(1, g.B);                                                        \
    _Pragma("omp parallel for num_threads(nt) schedule(static) if(nt > 1)")                          \
    for (pynn_idx b = 0; b < g.B; b++) {                                                             \
        T *dxb = dx + b * HW * g.C;                                                                  \
        memset(dxb, 0, (size_t)HW * g.C * sizeof(T));                                                \
        for (pynn_idx c = 0; c < g.C; c++) {                                                         \
            pynn_idx bp = 0;                                                                         \
            T best = x[b * g.xsb + c * g.xsc];                                                       \
            for (pynn_idx p = 1; p < HW; p++) {                                                      \
                T v = x[b * g.xsb + (p / g.W) * g.xsh + (p % g.W) * g.xsw + c * g.xsc];              \
                if (pool_beats_##SUF(v, best)) { best = v; bp = p; }                                 \
            }                                                                                        \
            dxb[bp * g.C + c] = dy[b * g.C + c];                                                     \
        }                                                                                            \
    }                                                                                                \
}                                                                                                    \
                                                                                                     \
void pynn_upsampling2d_forward_##SUF(T *y, const T *x, pynn_conv_geom g, pynn_ctx ctx) {             \
    /* y (B, H*KH, W*KW, C): y[b, h*KH + i, w*KW + j, c] = x[b, h, w, c] (nearest) */                \
    pynn_idx units = g.B * g.OH, C = g.C;                                                            \
    int nt = pynn_threads_for(ctx, (double)units * g.OW * C);                                        \
    _Pragma("omp parallel for num_threads(nt) schedule(static) if(nt > 1)")                          \
    for (pynn_idx u = 0; u < units; u++) {                                                           \
        pynn_idx b = u / g.OH, h = (u % g.OH) / g.KH;                                                \
        T *yr = y + u * g.OW * C;                                                                    \
        for (pynn_idx ow = 0; ow < g.OW; ow++) {                                                     \
            const T *xp = x + b * g.xsb + h * g.xsh + (ow / g.KW) * g.xsw;                           \
            for (pynn_idx c = 0; c < C; c++) yr[ow * C + c] = xp[c * g.xsc];                         \
        }                                                                                            \
    }                                                                                                \
}                                                                                                    \
                                                                                                     \
void pynn_upsampling2d_backward_##SUF(T *dx, const T *dy, pynn_conv_geom g, pynn_ctx ctx) {          \
    /* dx (B,H,W,C) = sum over the KH x KW block of dy (B, H*KH, W*KW, C), row-major order */        \
    pynn_idx units = g.B * g.H, C = g.C;                                                             \
    int nt = pynn_threads_for(ctx, (double)g.B * g.OH * g.OW * C);                                   \
    _Pragma("omp parallel for num_threads(nt) schedule(static) if(nt > 1)")                          \
    for (pynn_idx u = 0; u < units; u++) {                                                           \
        pynn_idx b = u / g.H, h = u % g.H;                                                           \
        T *dxr = dx + u * g.W * C;                                                                   \
        for (pynn_idx w = 0; w < g.W; w++) {                                                         \
            T *o = dxr + w * C;                                                                      \
            for (pynn_idx c = 0; c < C; c++) o[c] = 0;                                               \
            for (pynn_idx i = 0; i < g.KH; i++)                                                      \
                for (pynn_idx j = 0; j < g.KW; j++) {                                                \
                    const T *d = dy + ((b * g.OH + h * g.KH + i) * g.OW + w * g.KW + j) * C;         \
                    for (pynn_idx c = 0; c < C; c++) o[c] += d[c];                                   \
                }                                                                                    \
        }                                                                                            \
    }                                                                                                \
}

PYNN_POOL_FAMILY(float, f32)
PYNN_POOL_FAMILY(double, f64)
