/* conv.c - 2-D convolution (im2col blocks + GEMM) and depthwise convolution (direct), NHWC.
 *
 * conv2d forward: the B*OH*OW output pixels are cut into blocks (across image boundaries);
 * a block's receptive field is unrolled (im2col) into per-thread scratch col (n, KH*KW*C) and
 * multiplied by w viewed as (KH*KW*C, OC) with our GEMM straight into y, then bias and the
 * activation run on the block while it is in cache. A 1x1, stride-1 convolution whose x
 * pixels are evenly strided is a plain GEMM on x viewed as (B*H*W, C), no im2col. Blocks are
 * spread over threads; the inner GEMM runs serial then, or with all threads when there is
 * one block.
 *
 * conv2d backward: dz = dy * act'(y) per block; dw (K,OC) = col^T dz and db = column sums of
 * dz are accumulated per group of images (a fixed number of groups, set by the batch size
 * only) and the group partials are summed in group order; dcol = dz w^T is scattered back
 * (col2im) into dx by the thread that owns the image. Every output element therefore has
 * one writer and a summation order fixed by the shapes: the same bits for any thread count.
 *
 * Small reduction depth K = KH*KW*C <= 32 (a first layer on 1 or 3 channels): forward and
 * the weight gradient skip im2col and GEMM (conv_direct.h: per pixel a gathered receptive
 * field times w, bias and relu fused; AVX-512 build in conv_avx512.c); dx still goes the GEMM
 * way. The weight gradient keeps the fixed groups of images, so bits do not depend on threads.
 *
 * conv2d + max pooling (inference, conv2d_maxpool_forward): pooling windows that tile the
 * output (stride = size, no padding) let the convolution run a few pooled rows at a time into
 * per-thread scratch (im2col + GEMM + epilogue as above, only the pixels a window covers),
 * pooled from there by the max-pooling kernel; small K with 2x2 windows and a linear or relu
 * activation never leaves registers (conv_direct.h). Per-pixel sums are those of
 * conv2d_forward: the same bits.
 *
 * Depthwise: direct loops over taps with channels innermost (contiguous, vectorizable).
 * Scratch comes from malloc per call; failure returns PYNN_ENOMEM before any output is
 * written.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#ifdef _OPENMP
#include <omp.h>
#define PYNN_TID omp_get_thread_num()
#else
#define PYNN_TID 0
#endif

#include "conv.h"
#include "conv_direct.h"
#include "gemm.h"
#include "pool.h"

/* im2col block size target, in elements of col (512 KiB of float32) */
#define PYNN_CONV_BLOCK 131072
/* output pixels per unit of the direct (small-K) forward */
#define PYNN_CONV_DIRECT_PIXELS 256
/* at most this many per-group partial sums of dw (memory: groups * KH*KW*C*OC) */
#define PYNN_CONV_GROUPS 16
/* and at most this many elements of them (32 MiB of float32) */
#define PYNN_CONV_PARTIALS 8388608

/* output pixels per im2col block: about PYNN_CONV_BLOCK elements of col (or of the
   (pixels, OC) gradient block); blocks run across image boundaries, so small images still
   give the GEMM long panels */
static pynn_idx conv_block_pixels(pynn_conv_geom g, pynn_idx K) {
    pynn_idx width = K > g.OC ? K : g.OC;
    return PYNN_MAX(1, PYNN_CONV_BLOCK / PYNN_MAX(1, width));
}

static int conv_is_pointwise(pynn_conv_geom g) {
    return g.KH == 1 && g.KW == 1 && g.sh == 1 && g.sw == 1 && g.pt == 0 && g.pl == 0
           && g.xsh == g.W * g.xsw && g.xsb == g.H * g.xsh;
}

#define PYNN_CONV_FAMILY(T, SUF)                                                                  \
/* z = act(z + bias) over a block of M rows of N channels, contiguous */                          \
static void conv_epilogue_##SUF(T *z, const T *bias, pynn_idx M, pynn_idx N, int act) {           \
    for (pynn_idx i = 0; i < M; i++) {                                                            \
        T *r = z + i * N;                                                                         \
        if (bias) for (pynn_idx j = 0; j < N; j++) r[j] += bias[j];                               \
        if (act == PYNN_CONV_RELU) {                                                              \
            for (pynn_idx j = 0; j < N; j++) r[j] = r[j] < 0 ? 0 : r[j]; /* NaN stays */        \
        } else if (act == PYNN_CONV_SIGMOID) {                                                    \
            for (pynn_idx j = 0; j < N; j++) r[j] = (T)1 / ((T)1 + (T)exp(-(double)r[j]));        \
        } else if (act == PYNN_CONV_TANH) {                                                       \
            for (pynn_idx j = 0; j < N; j++) r[j] = (T)tanh((double)r[j]);                        \
        }                                                                                         \
    }                                                                                             \
}                                                                                                 \
                                                                                                  \
/* dz (n) = dy * act'(z), written with the output y = act(z); branch-free (relu's mask is         \
   random data, a branch per element mispredicts half the time) and restrict-qualified so         \
   the loops vectorize */                                                                         \
static void conv_act_grad_##SUF(T *restrict dz, const T *restrict y, const T *restrict dy,        \
                                pynn_idx n, int act) {                                            \
    if (act == PYNN_CONV_RELU) {                                                                  \
        for (pynn_idx i = 0; i < n; i++) {                                                        \
            T m = y[i] > 0 ? (T)1 : (T)0;                                                         \
            dz[i] = dy[i] * m;                                                                    \
        }                                                                                         \
    } else if (act == PYNN_CONV_SIGMOID) {                                                        \
        for (pynn_idx i = 0; i < n; i++) dz[i] = dy[i] * y[i] * ((T)1 - y[i]);                    \
    } else if (act == PYNN_CONV_TANH) {                                                           \
        for (pynn_idx i = 0; i < n; i++) dz[i] = dy[i] * ((T)1 - y[i] * y[i]);                    \
    } else {                                                                                      \
        for (pynn_idx i = 0; i < n; i++) dz[i] = dy[i];                                           \
    }                                                                                             \
}                                                                                                 \
                                                                                                  \
/* col (n, KH*KW*C) = the taps of output pixels [p0, p0+n) (flat over B*OH*OW, so a block         \
   may span images), zeros where a tap falls in the padding; column order (i, j, c) matches       \
   w (KH,KW,C,OC) */                                                                              \
static void conv_im2col_##SUF(T *col, const T *x, pynn_conv_geom g, pynn_idx p0, pynn_idx n) {    \
    pynn_idx K = g.KH * g.KW * g.C, P = g.OH * g.OW;                                              \
    /* pixels of a row contiguous in x, channels contiguous, taps adjacent (dilation 1) */        \
    int rowcopy = g.xsc == 1 && g.xsw == g.C && g.dw == 1;                                        \
    for (pynn_idx q = 0; q < n; q++) {                                                            \
        pynn_idx p = p0 + q, b = p / P, oh = (p % P) / g.OW, ow = p % g.OW;                       \
        const T *xb = x + b * g.xsb;                                                              \
        T *dst = col + q * K;                                                                     \
        for (pynn_idx i = 0; i < g.KH; i++) {                                                     \
            pynn_idx ih = oh * g.sh + i * g.dh - g.pt;                                            \
            pynn_idx iw0 = ow * g.sw - g.pl;                                                      \
            if (rowcopy && ih >= 0 && ih < g.H && iw0 >= 0 && iw0 + g.KW <= g.W) {                \
                /* the KW taps of this row are one contiguous run of KW*C elements of x */        \
                memcpy(dst, xb + ih * g.xsh + iw0 * g.C, (size_t)g.KW * g.C * sizeof(T));         \
                dst += g.KW * g.C;                                                                \
                continue;                                                                         \
            }                                                                                     \
            for (pynn_idx j = 0; j < g.KW; j++, dst += g.C) {                                     \
                pynn_idx iw = ow * g.sw + j * g.dw - g.pl;                                        \
                if (ih < 0 || ih >= g.H || iw < 0 || iw >= g.W) {                                 \
                    for (pynn_idx c = 0; c < g.C; c++) dst[c] = 0;                                \
                    continue;                                                                     \
                }                                                                                 \
                const T *src = xb + ih * g.xsh + iw * g.xsw;                                      \
                if (g.xsc == 1) for (pynn_idx c = 0; c < g.C; c++) dst[c] = src[c];               \
                else for (pynn_idx c = 0; c < g.C; c++) dst[c] = src[c * g.xsc];                  \
            }                                                                                     \
        }                                                                                         \
    }                                                                                             \
}                                                                                                 \
                                                                                                  \
/* dx (B,H,W,C) += the taps of dcol (n, KH*KW*C) for output pixels [p0, p0+n) */                  \
static void conv_col2im_##SUF(T *dx, const T *dcol, pynn_conv_geom g, pynn_idx p0,                \
                              pynn_idx n) {                                                       \
    pynn_idx K = g.KH * g.KW * g.C, P = g.OH * g.OW;                                              \
    for (pynn_idx q = 0; q < n; q++) {                                                            \
        pynn_idx p = p0 + q, b = p / P, oh = (p % P) / g.OW, ow = p % g.OW;                       \
        T *dxb = dx + b * g.H * g.W * g.C;                                                        \
        const T *src = dcol + q * K;                                                              \
        for (pynn_idx i = 0; i < g.KH; i++) {                                                     \
            pynn_idx ih = oh * g.sh + i * g.dh - g.pt;                                            \
            pynn_idx iw0 = ow * g.sw - g.pl;                                                      \
            if (g.dw == 1 && ih >= 0 && ih < g.H && iw0 >= 0 && iw0 + g.KW <= g.W) {              \
                /* the KW taps of this row land on one contiguous run of KW*C elements of dx      \
                   (each element once: the same additions in the same order) */                   \
                T *dst = dxb + (ih * g.W + iw0) * g.C;                                            \
                for (pynn_idx e = 0; e < g.KW * g.C; e++) dst[e] += src[e];                       \
                src += g.KW * g.C;                                                                \
                continue;                                                                         \
            }                                                                                     \
            for (pynn_idx j = 0; j < g.KW; j++, src += g.C) {                                     \
                pynn_idx iw = ow * g.sw + j * g.dw - g.pl;                                        \
                if (ih < 0 || ih >= g.H || iw < 0 || iw >= g.W) continue;                         \
                T *dst = dxb + (ih * g.W + iw) * g.C;                                             \
                for (pynn_idx c = 0; c < g.C; c++) dst[c] += src[c];                              \
            }                                                                                     \
        }                                                                                         \
    }                                                                                             \
}                                                                                                 \
                                                                                                  \
/* the direct small-K loops of conv_direct.h, AVX-512 build when the ISA allows */                \
static void conv_direct_forward_##SUF(T *y, const T *x, const T *w, const T *bias,                \
                                     pynn_conv_geom g, int act, pynn_idx p0, pynn_idx n,          \
                                     pynn_ctx ctx) {                                              \
    if (ctx.isa >= PYNN_ISA_AVX512)                                                               \
        pynn_conv_direct_forward_##SUF##_avx512(y, x, w, bias, g, act, p0, n);                    \
    else pynn_conv_direct_forward_##SUF(y, x, w, bias, g, act, p0, n);                            \
}                                                                                                 \
                                                                                                  \
static void conv_direct_pool2_forward_##SUF(T *y, const T *x, const T *w, const T *bias,          \
                                           pynn_conv_geom g, int act, pynn_idx r0, pynn_idx nr,   \
                                           pynn_ctx ctx) {                                        \
    if (ctx.isa >= PYNN_ISA_AVX512)                                                               \
        pynn_conv_direct_pool2_forward_##SUF##_avx512(y, x, w, bias, g, act, r0, nr);             \
    else pynn_conv_direct_pool2_forward_##SUF(y, x, w, bias, g, act, r0, nr);                     \
}                                                                                                 \
                                                                                                  \
static void conv_direct_dweight_##SUF(T *dw, T *db, const T *x, const T *y, const T *dy,          \
                                     pynn_conv_geom g, int act, pynn_idx p0, pynn_idx p1,         \
                                     pynn_ctx ctx) {                                              \
    if (ctx.isa >= PYNN_ISA_AVX512)                                                               \
        pynn_conv_direct_dweight_##SUF##_avx512(dw, db, x, y, dy, g, act, p0, p1);                \
    else pynn_conv_direct_dweight_##SUF(dw, db, x, y, dy, g, act, p0, p1);                        \
}                                                                                                 \
                                                                                                  \
int pynn_conv2d_forward_##SUF(T *y, const T *x, const T *w, const T *bias,                        \
                              pynn_conv_geom g, int act, pynn_ctx ctx) {                          \
    /* y (B*OH*OW, OC) = act(im2col(x) (B*OH*OW, KH*KW*C) @ w (KH*KW*C, OC) + bias (OC)) */       \
    pynn_idx K = g.KH * g.KW * g.C, PT = g.B * g.OH * g.OW;                                       \
    if (PT == 0) return PYNN_OK;                                                                  \
    int direct = pynn_conv_is_direct(g), pointwise = !direct && conv_is_pointwise(g);             \
    pynn_idx pb = direct ? PYNN_CONV_DIRECT_PIXELS : conv_block_pixels(g, K);                     \
    pynn_idx units = (PT + pb - 1) / pb;                                                          \
    int nt = pynn_threads_for(ctx, 2.0 * PT * (double)K * g.OC);                                  \
    if (nt > units) nt = (int)units;                                                              \
    pynn_ctx inner = ctx;                                                                         \
    inner.nthreads = nt > 1 ? 1 : ctx.nthreads;                                                   \
    T *scratch = NULL;                                                                            \
    if (!pointwise && !direct && K > 0) {                                                         \
        scratch = (T *)malloc((size_t)nt * pb * K * sizeof(T));                                   \
        if (!scratch) return PYNN_ENOMEM;                                                         \
    }                                                                                             \
    int fail = 0;                                                                                 \
    _Pragma("omp parallel for num_threads(nt) schedule(static) if(nt > 1)")                       \
    for (pynn_idx u = 0; u < units; u++) {                                                        \
        pynn_idx p0 = u * pb, n = PYNN_MIN(pb, PT - p0);                                          \
        T *yb = y + p0 * g.OC;                                                                    \
        if (direct) {                                                                             \
            /* bias and relu fused in the direct loops; sigmoid, tanh after */                    \
            conv_direct_forward_##SUF(yb, x, w, bias, g, act, p0, n, ctx);                        \
            if (act != PYNN_CONV_LINEAR && act != PYNN_CONV_RELU)                                 \
                conv_epilogue_##SUF(yb, NULL, n, g.OC, act);                                      \
            continue;                                                                             \
        }                                                                                         \
        const T *a = x + p0 * g.xsw;                                                              \
        pynn_idx rsa = g.xsw, csa = g.xsc;                                                        \
        if (!pointwise && K > 0) {                                                                \
            T *col = scratch + (size_t)PYNN_TID * pb * K;                                         \
            conv_im2col_##SUF(col, x, g, p0, n);                                                  \
            a = col; rsa = K; csa = 1;                                                            \
        }                                                                                         \
        if (pynn_gemm_##SUF(yb, g.OC, 1, a, rsa, csa, w, g.OC, 1, n, g.OC, K, 1, 0, inner)        \
            != PYNN_OK) {                                                                         \
            _Pragma("omp atomic write")                                                           \
            fail = 1;                                                                             \
        }                                                                                         \
        conv_epilogue_##SUF(yb, bias, n, g.OC, act);                                              \
    }                                                                                             \
    free(scratch);                                                                                \
    return fail ? PYNN_ENOMEM : PYNN_OK;                                                          \
}                                                                                                 \
                                                                                                  \
int pynn_conv2d_maxpool_forward_##SUF(T *y, const T *x, const T *w, const T *bias,                \
                                      pynn_conv_geom g, pynn_idx ph, pynn_idx pw, int act,        \
                                      pynn_ctx ctx) {                                             \
    /* y (B,OH/ph,OW/pw,OC) = max over ph x pw windows (stride = size) of                         \
       z (B,OH,OW,OC) = act(im2col(x) @ w + bias); z lives in per-thread scratch only, and        \
       only the pixels some window covers are computed (not a dropped last row or column) */      \
    pynn_idx K = g.KH * g.KW * g.C, POH = g.OH / ph, POW = g.OW / pw, OWu = POW * pw;             \
    pynn_idx rows = g.B * POH, n1 = ph * OWu;                                                     \
    if (rows == 0 || POW == 0) return PYNN_OK;                                                    \
    int direct = pynn_conv_is_direct(g);                                                          \
    /* pooled rows per unit: about as many conv pixels as a block of conv2d_forward */            \
    pynn_idx target = direct ? PYNN_CONV_DIRECT_PIXELS : conv_block_pixels(g, K);                 \
    pynn_idx R = PYNN_MAX(1, target / n1);                                                        \
    pynn_idx units = (rows + R - 1) / R;                                                          \
    int nt = pynn_threads_for(ctx, 2.0 * rows * n1 * (double)K * g.OC);                           \
    if (nt > units) nt = (int)units;                                                              \
    pynn_ctx inner = ctx;                                                                         \
    inner.nthreads = nt > 1 ? 1 : ctx.nthreads;                                                   \
    pynn_ctx one = ctx;                                                                           \
    one.nthreads = 1;                                                                             \
    int pool2 = direct && ph == 2 && pw == 2                                                      \
                && (act == PYNN_CONV_LINEAR || act == PYNN_CONV_RELU);                            \
    size_t per_thread = pool2 ? 0 : (size_t)R * n1 * (g.OC + (direct || K == 0 ? 0 : K));         \
    T *scratch = (T *)malloc(((size_t)nt * per_thread + 1) * sizeof(T));                          \
    if (!scratch) return PYNN_ENOMEM;                                                             \
    int fail = 0;                                                                                 \
    _Pragma("omp parallel for num_threads(nt) schedule(static) if(nt > 1)")                       \
    for (pynn_idx u = 0; u < units; u++) {                                                        \
        pynn_idx r0 = u * R, nr = PYNN_MIN(R, rows - r0), M = nr * n1;                            \
        if (pool2) {                                                                              \
            /* small K, 2x2 windows, linear/relu: conv, bias, relu and max in registers */        \
            conv_direct_pool2_forward_##SUF(y + r0 * POW * g.OC, x, w, bias, g, act, r0, nr, ctx);\
            continue;                                                                             \
        }                                                                                         \
        T *z = scratch + (size_t)PYNN_TID * per_thread, *col = z + (size_t)R * n1 * g.OC;         \
        for (pynn_idx r = 0; r < nr; r++) {                                                       \
            /* pooled row r0 + r reads conv rows [prow*ph, prow*ph + ph) of image b, columns      \
               [0, OWu); conv row i of them goes to scratch row r * ph + i */                     \
            pynn_idx b = (r0 + r) / POH, prow = (r0 + r) % POH;                                   \
            for (pynn_idx i = 0; i < ph; i++) {                                                   \
                pynn_idx p = (b * g.OH + prow * ph + i) * g.OW, q = (r * ph + i) * OWu;           \
                if (direct) conv_direct_forward_##SUF(z + q * g.OC, x, w, bias, g, act, p, OWu,   \
                                                      ctx);                                       \
                else if (K > 0) conv_im2col_##SUF(col + q * K, x, g, p, OWu);                     \
            }                                                                                     \
        }                                                                                         \
        if (direct) {                                                                             \
            if (act != PYNN_CONV_LINEAR && act != PYNN_CONV_RELU)                                 \
                conv_epilogue_##SUF(z, NULL, M, g.OC, act);                                       \
        } else {                                                                                  \
            if (pynn_gemm_##SUF(z, g.OC, 1, col, K, 1, w, g.OC, 1, M, g.OC, K, 1, 0, inner)       \
                != PYNN_OK) {                                                                     \
                _Pragma("omp atomic write")                                                       \
                fail = 1;                                                                         \
            }                                                                                     \
            conv_epilogue_##SUF(z, bias, M, g.OC, act);                                           \
        }                                                                                         \
        /* the max-pooling kernel on z seen as nr images of ph rows: same taps, same order */     \
        pynn_conv_geom gp = {nr, ph, OWu, g.OC, g.OC, ph, pw, 1, POW, ph, pw, 1, 1, 0, 0,         \
                             n1 * g.OC, OWu * g.OC, g.OC, 1};                                     \
        pynn_max_pool2d_forward_##SUF(y + r0 * POW * g.OC, z, gp, one);                           \
    }                                                                                             \
    free(scratch);                                                                                \
    return fail ? PYNN_ENOMEM : PYNN_OK;                                                          \
}                                                                                                 \
                                                                                                  \
/* the im2col + GEMM backward (any geometry) */                                                   \
static int conv_backward_gemm_##SUF(T *dx, T *dweight, T *dbias, const T *x, const T *w,          \
                               const T *y, const T *dy, pynn_conv_geom g, int act,                \
                               pynn_ctx ctx) {                                                    \
    /* dz = dy * act'(y); dweight (K,OC) = im2col(x)^T dz; dbias (OC) = sum dz;                   \
       dx (B,H,W,C) = col2im(dz (B*OH*OW,OC) @ w^T (OC,K)); K = KH*KW*C */                        \
    pynn_idx K = g.KH * g.KW * g.C, KO = K * g.OC;                                                \
    pynn_idx P = g.OH * g.OW;                                                                     \
    if (dx) memset(dx, 0, (size_t)g.B * g.H * g.W * g.C * sizeof(T));                             \
    if (g.B == 0 || P == 0) {                                                                     \
        if (dweight) memset(dweight, 0, (size_t)KO * sizeof(T));                                  \
        if (dbias) memset(dbias, 0, (size_t)g.OC * sizeof(T));                                    \
        return PYNN_OK;                                                                           \
    }                                                                                             \
    int pointwise = conv_is_pointwise(g);                                                         \
    pynn_idx pb = conv_block_pixels(g, K);                                                        \
    /* groups: set by the shapes only (never by the thread count), capped so the partial          \
       sums of dw stay within PYNN_CONV_PARTIALS elements */                                      \
    pynn_idx G = PYNN_MIN(g.B, PYNN_CONV_GROUPS);                                                 \
    G = PYNN_MAX(1, PYNN_MIN(G, 1 + PYNN_CONV_PARTIALS / PYNN_MAX(1, KO + g.OC)));                \
    int nt = pynn_threads_for(ctx, 6.0 * g.B * P * (double)K * g.OC);                             \
    if (nt > G) nt = (int)G;                                                                      \
    pynn_ctx inner = ctx;                                                                         \
    inner.nthreads = nt > 1 ? 1 : ctx.nthreads;                                                   \
    /* per thread: col (pb,K), dcol (pb,K), dz (pb,OC); per group >= 1: dw (K,OC), db (OC) */     \
    size_t per_thread = (size_t)2 * pb * K + (size_t)pb * g.OC;                                   \
    size_t partial = dweight ? (size_t)(G - 1) * (KO + g.OC) : 0;                                 \
    T *scratch = (T *)malloc(((size_t)nt * per_thread + partial + 1) * sizeof(T));                \
    if (!scratch) return PYNN_ENOMEM;                                                             \
    T *parts = scratch + (size_t)nt * per_thread;                                                 \
    int fail = 0;                                                                                 \
    _Pragma("omp parallel for num_threads(nt) schedule(static) if(nt > 1)")                       \
    for (pynn_idx gi = 0; gi < G; gi++) {                                                         \
        T *col = scratch + (size_t)PYNN_TID * per_thread;                                         \
        T *dcol = col + (size_t)pb * K, *dzb = dcol + (size_t)pb * K;                             \
        T *dwg = gi == 0 || !dweight ? dweight : parts + (size_t)(gi - 1) * (KO + g.OC);          \
        T *dbg = gi == 0 || !dweight ? dbias : parts + (size_t)(gi - 1) * (KO + g.OC) + KO;       \
        /* the group's images [b0, b1) as a range of output pixels, in blocks of pb */            \
        pynn_idx q0 = (gi * g.B / G) * P, q1 = ((gi + 1) * g.B / G) * P;                          \
        int first = 1;                                                                            \
        if (dweight) {                                                                            \
            for (pynn_idx j = 0; j < g.OC; j++) dbg[j] = 0;                                       \
            if (K == 0) memset(dwg, 0, (size_t)KO * sizeof(T));                                   \
        }                                                                                         \
        for (pynn_idx p0 = q0; p0 < q1; p0 += pb) {                                               \
            pynn_idx n = PYNN_MIN(pb, q1 - p0);                                                   \
            const T *dz = dy + p0 * g.OC;                                                         \
            if (act != PYNN_CONV_LINEAR) {                                                        \
                conv_act_grad_##SUF(dzb, y + p0 * g.OC, dz, n * g.OC, act);                       \
                dz = dzb;                                                                         \
            }                                                                                     \
            if (dweight)                                                                          \
                for (pynn_idx i = 0; i < n; i++)                                                  \
                    for (pynn_idx j = 0; j < g.OC; j++) dbg[j] += dz[i * g.OC + j];               \
            if (K == 0) continue;                                                                 \
            if (dweight) {                                                                        \
                const T *a = x + p0 * g.xsw;                                                      \
                pynn_idx rsa = g.xsw, csa = g.xsc;                                                \
                if (!pointwise) {                                                                 \
                    conv_im2col_##SUF(col, x, g, p0, n);                                          \
                    a = col; rsa = K; csa = 1;                                                    \
                }                                                                                 \
                /* dw (K,OC) (+)= a^T (K,n) @ dz (n,OC) */                                        \
                if (pynn_gemm_##SUF(dwg, g.OC, 1, a, csa, rsa, dz, g.OC, 1, K, g.OC, n, 1,        \
                                    first ? 0 : 1, inner) != PYNN_OK) {                           \
                    _Pragma("omp atomic write")                                                   \
                    fail = 1;                                                                     \
                }                                                                                 \
                first = 0;                                                                        \
            }                                                                                     \
            if (!dx) continue;                                                                    \
            /* dcol (n,K) = dz (n,OC) @ w^T (OC,K); pointwise: straight into dx rows */           \
            T *dc = pointwise ? dx + p0 * g.C : dcol;                                             \
            if (pynn_gemm_##SUF(dc, K, 1, dz, g.OC, 1, w, 1, g.OC, n, K, g.OC, 1, 0, inner)       \
                != PYNN_OK) {                                                                     \
                _Pragma("omp atomic write")                                                       \
                fail = 1;                                                                         \
            }                                                                                     \
            if (!pointwise) conv_col2im_##SUF(dx, dcol, g, p0, n);                                \
        }                                                                                         \
        if (dweight && first && K > 0) memset(dwg, 0, (size_t)KO * sizeof(T));                    \
    }                                                                                             \
    /* group partials summed in group order: the same bits for any thread count */                \
    if (dweight && G > 1) {                                                                       \
        int nt2 = pynn_threads_for(ctx, (double)G * KO);                                          \
        _Pragma("omp parallel for num_threads(nt2) schedule(static) if(nt2 > 1)")                 \
        for (pynn_idx e = 0; e < KO + g.OC; e++) {                                                \
            T *dst = e < KO ? dweight + e : dbias + (e - KO);                                     \
            T acc = *dst;                                                                         \
            for (pynn_idx gi = 1; gi < G; gi++) acc += parts[(size_t)(gi - 1) * (KO + g.OC) + e]; \
            *dst = acc;                                                                           \
        }                                                                                         \
    }                                                                                             \
    free(scratch);                                                                                \
    return fail ? PYNN_ENOMEM : PYNN_OK;                                                          \
}                                                                                                 \
                                                                                                  \
int pynn_conv2d_backward_##SUF(T *dx, T *dweight, T *dbias, const T *x, const T *w,               \
                               const T *y, const T *dy, pynn_conv_geom g, int act,                \
                               pynn_ctx ctx) {                                                    \
    /* dweight (K,OC) = im2col(x)^T dz, dbias (OC) = sum dz, dz = dy * act'(y); small K: direct,  \
       per group of images in pixel order, the group partials summed in group order; dx           \
       (and everything else) through im2col + GEMM */                                             \
    pynn_idx K = g.KH * g.KW * g.C, KO = K * g.OC, PT = g.B * g.OH * g.OW;                        \
    if (!dweight || !pynn_conv_is_direct(g) || PT == 0)                                           \
        return conv_backward_gemm_##SUF(dx, dweight, dbias, x, w, y, dy, g, act, ctx);            \
    pynn_idx P = g.OH * g.OW;                                                                     \
    pynn_idx G = PYNN_MAX(1, PYNN_MIN(g.B, PYNN_CONV_GROUPS));                                    \
    int nt = pynn_threads_for(ctx, 2.0 * PT * (double)KO);                                        \
    if (nt > G) nt = (int)G;                                                                      \
    T *parts = (T *)malloc(((size_t)(G - 1) * (KO + g.OC) + 1) * sizeof(T));                      \
    if (!parts) return PYNN_ENOMEM;                                                               \
    _Pragma("omp parallel for num_threads(nt) schedule(static) if(nt > 1)")                       \
    for (pynn_idx gi = 0; gi < G; gi++) {                                                         \
        T *dwg = gi == 0 ? dweight : parts + (size_t)(gi - 1) * (KO + g.OC);                      \
        T *dbg = gi == 0 ? dbias : parts + (size_t)(gi - 1) * (KO + g.OC) + KO;                   \
        conv_direct_dweight_##SUF(dwg, dbg, x, y, dy, g, act, (gi * g.B / G) * P,                 \
                                  ((gi + 1) * g.B / G) * P, ctx);                                 \
    }                                                                                             \
    for (pynn_idx gi = 1; gi < G; gi++) {                                                         \
        const T *p = parts + (size_t)(gi - 1) * (KO + g.OC);                                      \
        for (pynn_idx e = 0; e < KO; e++) dweight[e] += p[e];                                     \
        for (pynn_idx o = 0; o < g.OC; o++) dbias[o] += p[KO + o];                                \
    }                                                                                             \
    free(parts);                                                                                  \
    if (!dx) return PYNN_OK;                                                                      \
    return conv_backward_gemm_##SUF(dx, NULL, NULL, x, w, y, dy, g, act, ctx);                    \
}                                                                                                 \
                                                                                                  \
int pynn_conv2d_transpose_forward_##SUF(T *y, const T *x, const T *w, const T *bias,              \
                                        pynn_conv_geom g, int act, pynn_ctx ctx) {                \
    /* y (B,H,W,C) = act(conv2d's input gradient for output gradient x (B,OH,OW,OC) + bias (C));  \
       g is the underlying convolution (B,H,W,C) -> (B,OH,OW,OC), w (KH,KW,C,OC) */               \
    int st = pynn_conv2d_backward_##SUF(y, NULL, NULL, NULL, w, NULL, x, g, PYNN_CONV_LINEAR,     \
                                        ctx);                                                     \
    if (st != PYNN_OK) return st;                                                                 \
    pynn_idx rows = g.B * g.H * g.W;                                                              \
    int nt = pynn_threads_for(ctx, (double)rows * g.C * (act == PYNN_CONV_LINEAR ? 1 : 8));       \
    pynn_idx nb = (rows + 255) / 256;                                                             \
    _Pragma("omp parallel for num_threads(nt) schedule(static) if(nt > 1)")                       \
    for (pynn_idx k = 0; k < nb; k++)                                                             \
        conv_epilogue_##SUF(y + k * 256 * g.C, bias, PYNN_MIN(256, rows - k * 256), g.C, act);    \
    return PYNN_OK;                                                                               \
}                                                                                                 \
                                                                                                  \
int pynn_conv2d_transpose_backward_##SUF(T *dx, T *dweight, T *dbias, const T *x, const T *w,     \
                                         const T *y, const T *dy, pynn_conv_geom g, int act,      \
                                         pynn_ctx ctx) {                                          \
    /* dz (B,H,W,C) = dy * act'(y); dx (B,OH,OW,OC) = conv2d(dz, w); dweight = conv2d's           \
       weight gradient for input dz and output gradient x; dbias (C) = sum of dz */               \
    pynn_idx rows = g.B * g.H * g.W;                                                              \
    T *dz = NULL;                                                                                 \
    int st = PYNN_OK;                                                                             \
    if (act != PYNN_CONV_LINEAR) {                                                                \
        dz = (T *)malloc(((size_t)rows * g.C + 1) * sizeof(T));                                   \
        if (!dz) return PYNN_ENOMEM;                                                              \
        conv_act_grad_##SUF(dz, y, dy, rows * g.C, act);                                          \
    }                                                                                             \
    const T *dzc = dz ? dz : dy;                                                                  \
    pynn_conv_geom gz = g;                                                                        \
    gz.xsc = 1; gz.xsw = g.C; gz.xsh = g.W * g.C; gz.xsb = g.H * g.W * g.C;                       \
    T *sum_x = (T *)malloc(((size_t)g.OC + 1) * sizeof(T));                                       \
    if (!sum_x) { free(dz); return PYNN_ENOMEM; }                                                 \
    if (dx) st = pynn_conv2d_forward_##SUF(dx, dzc, w, NULL, gz, PYNN_CONV_LINEAR, ctx);          \
    if (st == PYNN_OK)                                                                            \
        st = pynn_conv2d_backward_##SUF(NULL, dweight, sum_x, dzc, w, NULL, x, gz,                \
                                        PYNN_CONV_LINEAR, ctx);                                   \
    for (pynn_idx c = 0; c < g.C; c++) dbias[c] = 0;                                              \
    for (pynn_idx r = 0; r < rows; r++)                                                           \
        for (pynn_idx c = 0; c < g.C; c++) dbias[c] += dzc[r * g.C + c];                          \
    free(sum_x);                                                                                  \
    free(dz);                                                                                     \
    return st;                                                                                    \
}                                                                                                 \
                                                                                                  \
int pynn_depthwise_conv2d_forward_##SUF(T *y, const T *x, const T *w, const T *bias,              \
                                        pynn_conv_geom g, int act, pynn_ctx ctx) {                \
    /* y (B,OH,OW,C) = act(sum over taps (i,j) of x[b, ih, iw, c] * w[i,j,c] + bias[c]) */        \
    pynn_idx C = g.C, units = g.B * g.OH;                                                         \
    int nt = pynn_threads_for(ctx, 2.0 * units * g.OW * C * g.KH * g.KW);                         \
    _Pragma("omp parallel for num_threads(nt) schedule(static) if(nt > 1)")                       \
    for (pynn_idx u = 0; u < units; u++) {                                                        \
        pynn_idx b = u / g.OH, oh = u % g.OH;                                                     \
        T *yr = y + u * g.OW * C;                                                                 \
        for (pynn_idx ow = 0; ow < g.OW; ow++) {                                                  \
            T *yp = yr + ow * C;                                                                  \
            for (pynn_idx c = 0; c < C; c++) yp[c] = 0;                                           \
            for (pynn_idx i = 0; i < g.KH; i++) {                                                 \
                pynn_idx ih = oh * g.sh + i * g.dh - g.pt;                                        \
                for (pynn_idx j = 0; j < g.KW; j++) {                                             \
                    pynn_idx iw = ow * g.sw + j * g.dw - g.pl;                                    \
                    const T *wp = w + (i * g.KW + j) * C;                                         \
                    if (ih < 0 || ih >= g.H || iw < 0 || iw >= g.W) {                             \
                        /* a padded tap adds 0 * w: NaN for an inf or NaN weight, as in the   \
                         * zero-padded reference */                                           \
                        for (pynn_idx c = 0; c < C; c++) yp[c] += (T)0 * wp[c];                   \
                        continue;                                                                 \
                    }                                                                             \
                    const T *xp = x + b * g.xsb + ih * g.xsh + iw * g.xsw;                        \
                    if (g.xsc == 1) for (pynn_idx c = 0; c < C; c++) yp[c] += xp[c] * wp[c];      \
                    else for (pynn_idx c = 0; c < C; c++) yp[c] += xp[c * g.xsc] * wp[c];         \
                }                                                                                 \
            }                                                                                     \
        }                                                                                         \
        conv_epilogue_##SUF(yr, bias, g.OW, C, act);                                              \
    }                                                                                             \
    return PYNN_OK;                                                                               \
}                                                                                                 \
                                                                                                  \
int pynn_depthwise_conv2d_backward_##SUF(T *dx, T *dweight, T *dbias, const T *x,                 \
                                         const T *w, const T *y, const T *dy,                     \
                                         pynn_conv_geom g, int act, pynn_ctx ctx) {               \
    /* dz = dy * act'(y); dweight[i,j,c] = sum dz * x at tap (i,j); dbias = sum dz;               \
       dx[b,ih,iw,c] = sum over the outputs it feeds of dz * w[i,j,c] */                          \
    pynn_idx C = g.C, KC = g.KH * g.KW * C;                                                       \
    if (dx) memset(dx, 0, (size_t)g.B * g.H * g.W * C * sizeof(T));                               \
    pynn_idx G = PYNN_MAX(1, PYNN_MIN(g.B, PYNN_CONV_GROUPS));                                    \
    int nt = pynn_threads_for(ctx, 4.0 * g.B * g.OH * g.OW * (double)KC);                         \
    if (nt > G) nt = (int)G;                                                                      \
    T *scratch = (T *)malloc(((size_t)nt * C + (size_t)(G - 1) * (KC + C) + 1) * sizeof(T));      \
    if (!scratch) return PYNN_ENOMEM;                                                             \
    T *parts = scratch + (size_t)nt * C;                                                          \
    _Pragma("omp parallel for num_threads(nt) schedule(static) if(nt > 1)")                       \
    for (pynn_idx gi = 0; gi < G; gi++) {                                                         \
        T *dz = scratch + (size_t)PYNN_TID * C;                                                   \
        T *dwg = gi == 0 ? dweight : parts + (size_t)(gi - 1) * (KC + C);                         \
        T *dbg = gi == 0 ? dbias : parts + (size_t)(gi - 1) * (KC + C) + KC;                      \
        memset(dwg, 0, (size_t)KC * sizeof(T));                                                   \
        memset(dbg, 0, (size_t)C * sizeof(T));                                                    \
        pynn_idx b0 = gi * g.B / G, b1 = (gi + 1) * g.B / G;                                      \
        for (pynn_idx b = b0; b < b1; b++)                                                        \
        for (pynn_idx oh = 0; oh < g.OH; oh++)                                                    \
        for (pynn_idx ow = 0; ow < g.OW; ow++) {                                                  \
            size_t off = (size_t)((b * g.OH + oh) * g.OW + ow) * C;                               \
            conv_act_grad_##SUF(dz, y ? y + off : NULL, dy + off, C, act);                        \
            for (pynn_idx c = 0; c < C; c++) dbg[c] += dz[c];                                     \
            for (pynn_idx i = 0; i < g.KH; i++) {                                                 \
                pynn_idx ih = oh * g.sh + i * g.dh - g.pt;                                        \
                for (pynn_idx j = 0; j < g.KW; j++) {                                             \
                    pynn_idx iw = ow * g.sw + j * g.dw - g.pl;                                    \
                    T *dwp = dwg + (i * g.KW + j) * C;                                            \
                    if (ih < 0 || ih >= g.H || iw < 0 || iw >= g.W) {                             \
                        /* padded tap: 0 * dz (NaN for an inf dz, as in the reference) */     \
                        for (pynn_idx c = 0; c < C; c++) dwp[c] += (T)0 * dz[c];                  \
                        continue;                                                                 \
                    }                                                                             \
                    const T *xp = x + b * g.xsb + ih * g.xsh + iw * g.xsw;                        \
                    for (pynn_idx c = 0; c < C; c++) dwp[c] += xp[c * g.xsc] * dz[c];             \
                    if (dx) {                                                                     \
                        const T *wp = w + (i * g.KW + j) * C;                                     \
                        T *dxp = dx + ((b * g.H + ih) * g.W + iw) * C;                            \
                        for (pynn_idx c = 0; c < C; c++) dxp[c] += wp[c] * dz[c];                 \
                    }                                                                             \
                }                                                                                 \
            }                                                                                     \
        }                                                                                         \
    }                                                                                             \
    for (pynn_idx gi = 1; gi < G; gi++) {                                                         \
        const T *p = parts + (size_t)(gi - 1) * (KC + C);                                         \
        for (pynn_idx e = 0; e < KC; e++) dweight[e] += p[e];                                     \
        for (pynn_idx c = 0; c < C; c++) dbias[c] += p[KC + c];                                   \
    }                                                                                             \
    free(scratch);                                                                                \
    return PYNN_OK;                                                                               \
}

PYNN_CONV_DIRECT_FAMILY(float, f32)
PYNN_CONV_DIRECT_FAMILY(double, f64)
PYNN_CONV_FAMILY(float, f32)
PYNN_CONV_FAMILY(double, f64)
