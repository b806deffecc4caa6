/* pool_max.h - the max-pooling forward and backward loops (see pool.c for the rules), one
 * body compiled twice: portable in pool.c (suffix _generic) and with AVX-512 in
 * pool_avx512.c (suffix _avx512), so the channel loops run 16 floats wide; pool.c picks one
 * by ctx.isa. Same loops, same order, same bits in both builds. */
#ifndef PYNN_POOL_MAX_H
#define PYNN_POOL_MAX_H
#include <string.h>

#include "pool.h"

/* channels per argmax block of max_pool2d_backward (fixed-size stack arrays) */
#define POOL_CB 64

/* the winner test: v beats the best so far (first maximum wins, NaN beats numbers) */
static inline int pool_beats_f32(float v, float best) { return v > best || (v != v && best == best); }
static inline int pool_beats_f64(double v, double best) { return v > best || (v != v && best == best); }

#define PYNN_MAXPOOL_FAMILY(T, SUF, ISA)                                                            \
void pynn_max_pool2d_forward_##SUF##ISA(T *y, const T *x, pynn_conv_geom g, pynn_ctx ctx) {               \
    /* y (B,OH,OW,C) = max over the valid taps of each window of x (B,H,W,C) */                      \
    pynn_idx C = g.C, units = g.B * g.OH;                                                            \
    int nt = pynn_threads_for(ctx, (double)units * g.OW * C * g.KH * g.KW);                          \
    _Pragma("omp parallel for num_threads(nt) schedule(static) if(nt > 1)")                          \
    for (pynn_idx u = 0; u < units; u++) {                                                           \
        pynn_idx b = u / g.OH, oh = u % g.OH;                                                        \
        pynn_idx i0 = PYNN_MAX(0, g.pt - oh * g.sh), i1 = PYNN_MIN(g.KH, g.H + g.pt - oh * g.sh);    \
        for (pynn_idx ow = 0; ow < g.OW; ow++) {                                                     \
            T *yp = y + (u * g.OW + ow) * C;                                                         \
            pynn_idx j0 = PYNN_MAX(0, g.pl - ow * g.sw);                                             \
            pynn_idx j1 = PYNN_MIN(g.KW, g.W + g.pl - ow * g.sw);                                    \
            int first = 1;                                                                           \
            for (pynn_idx i = i0; i < i1; i++)                                                       \
                for (pynn_idx j = j0; j < j1; j++) {                                                 \
                    const T *xp = x + b * g.xsb + (oh * g.sh + i - g.pt) * g.xsh                     \
                                  + (ow * g.sw + j - g.pl) * g.xsw;                                  \
                    if (first) {                                                                     \
                        for (pynn_idx c = 0; c < C; c++) yp[c] = xp[c * g.xsc];                      \
                        first = 0;                                                                   \
                    } else {                                                                         \
                        if (g.xsc == 1) {                                                            \
                            for (pynn_idx c = 0; c < C; c++) {                                       \
                                T v = xp[c];                                                         \
                                yp[c] = pool_beats_##SUF(v, yp[c]) ? v : yp[c];                      \
                            }                                                                        \
                        } else {                                                                     \
                            for (pynn_idx c = 0; c < C; c++) {                                       \
                                T v = xp[c * g.xsc];                                                 \
                                yp[c] = pool_beats_##SUF(v, yp[c]) ? v : yp[c];                      \
                            }                                                                        \
                        }                                                                            \
                    }                                                                                \
                }                                                                                    \
        }                                                                                            \
    }                                                                                                \
}                                                                                                    \
                                                                                                     \
void pynn_max_pool2d_backward_##SUF##ISA(T *dx, const T *x, const T *dy, pynn_conv_geom g,                \
                                    pynn_ctx ctx) {                                                  \
    /* dx (B,H,W,C) = sum over windows of dy routed to the window's argmax in x */                   \
    pynn_idx C = g.C;                                                                                \
    int nt = pynn_threads_for(ctx, (double)g.B * g.OH * g.OW * C * g.KH * g.KW);                     \
    if (nt > g.B) nt = (int)PYNN_MAX(1, g.B);                                                        \
    /* windows that do not overlap (strides >= pool size): each dx element gets at most one          \
       window, so the taps are written (dy at the argmax, 0 elsewhere) instead of zeroed and         \
       added to; only what no window covers needs the memset */                                      \
    int disjoint = g.sh >= g.KH && g.sw >= g.KW;                                                     \
    int tiled = disjoint && g.sh == g.KH && g.sw == g.KW && g.pt == 0 && g.pl == 0                   \
                && g.OH * g.KH == g.H && g.OW * g.KW == g.W;                                         \
    _Pragma("omp parallel for num_threads(nt) schedule(static) if(nt > 1)")                          \
    for (pynn_idx b = 0; b < g.B; b++) {                                                             \
        T *dxb = dx + b * g.H * g.W * C;                                                             \
        if (!tiled) memset(dxb, 0, (size_t)g.H * g.W * C * sizeof(T));                               \
        const T *xb = x + b * g.xsb;                                                                 \
        for (pynn_idx oh = 0; oh < g.OH; oh++) {                                                     \
            pynn_idx i0 = PYNN_MAX(0, g.pt - oh * g.sh);                                             \
            pynn_idx i1 = PYNN_MIN(g.KH, g.H + g.pt - oh * g.sh);                                    \
            for (pynn_idx ow = 0; ow < g.OW; ow++) {                                                 \
                const T *dyp = dy + ((b * g.OH + oh) * g.OW + ow) * C;                               \
                pynn_idx j0 = PYNN_MAX(0, g.pl - ow * g.sw);                                         \
                pynn_idx j1 = PYNN_MIN(g.KW, g.W + g.pl - ow * g.sw);                                \
                if (i1 <= i0 || j1 <= j0) continue;                                                  \
                /* channels in blocks of POOL_CB: the argmax scan visits the taps with               \
                   channels innermost and branch-free selects (vectorizable; the per-                \
                   channel branch mispredicted on random data) */                                    \
                for (pynn_idx c0 = 0; c0 < C; c0 += POOL_CB) {                                       \
                    int cn = (int)PYNN_MIN(POOL_CB, C - c0);                                         \
                    T best[POOL_CB];                                                                 \
                    int at[POOL_CB];                                                                 \
                    const T *x0 = xb + (oh * g.sh + i0 - g.pt) * g.xsh                               \
                                  + (ow * g.sw + j0 - g.pl) * g.xsw + c0 * g.xsc;                    \
                    for (int c = 0; c < cn; c++) { best[c] = x0[c * g.xsc]; at[c] = 0; }             \
                    for (pynn_idx i = i0; i < i1; i++)                                               \
                        for (pynn_idx j = (i == i0 ? j0 + 1 : j0); j < j1; j++) {                    \
                            const T *xp = x0 + (i - i0) * g.xsh + (j - j0) * g.xsw;                  \
                            /* the tap as a pixel offset from the window's first valid one */        \
                            int t = (int)((i - i0) * g.W + (j - j0));                                \
                            if (g.xsc == 1) {                                                        \
                                for (int c = 0; c < cn; c++) {                                       \
                                    T v = xp[c];                                                     \
                                    int w = pool_beats_##SUF(v, best[c]);                            \
                                    best[c] = w ? v : best[c];                                       \
                                    at[c] = w ? t : at[c];                                           \
                                }                                                                    \
                                continue;                                                            \
                            }                                                                        \
                            for (int c = 0; c < cn; c++) {                                           \
                                T v = xp[c * g.xsc];                                                 \
                                int w = pool_beats_##SUF(v, best[c]);                                \
                                best[c] = w ? v : best[c];                                           \
                                at[c] = w ? t : at[c];                                               \
                            }                                                                        \
                        }                                                                            \
                    T *d0 = dxb + ((oh * g.sh + i0 - g.pt) * g.W + ow * g.sw + j0 - g.pl) * C + c0;  \
                    if (disjoint) {                                                                  \
                        /* each tap written once: 0 + dy where it is the argmax (the twin's sum    \
                           into zeros: a dy of -0 gives +0), else 0 (a vector select per tap         \
                           instead of zeroing and a scatter) */                                      \
                        for (pynn_idx i = i0; i < i1; i++)                                           \
                            for (pynn_idx j = j0; j < j1; j++) {                                     \
                                int t = (int)((i - i0) * g.W + (j - j0));                            \
                                T *dst = d0 + (pynn_idx)t * C;                                       \
                                const T *src = dyp + c0;                                             \
                                for (int c = 0; c < cn; c++)                                         \
                                    dst[c] = at[c] == t ? (T)0 + src[c] : (T)0;                      \
                            }                                                                        \
                    } else {                                                                         \
                        for (int c = 0; c < cn; c++) d0[(pynn_idx)at[c] * C + c] += dyp[c0 + c];     \
                    }                                                                                \
                }                                                                                    \
            }                                                                                        \
        }                                                                                            \
    }                                                                                                \
}

#define PYNN_MAXPOOL_DECLS(T, SUF, ISA)                                                             \
void pynn_max_pool2d_forward_##SUF##ISA(T *y, const T *x, pynn_conv_geom g, pynn_ctx ctx);          \
void pynn_max_pool2d_backward_##SUF##ISA(T *dx, const T *x, const T *dy, pynn_conv_geom g, pynn_ctx ctx);
PYNN_MAXPOOL_DECLS(float, f32, _generic)
PYNN_MAXPOOL_DECLS(double, f64, _generic)
PYNN_MAXPOOL_DECLS(float, f32, _avx512)
PYNN_MAXPOOL_DECLS(double, f64, _avx512)

#endif
