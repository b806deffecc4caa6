/* conv_direct.h - direct (no im2col, no GEMM) convolution for a small reduction depth
 * K = KH*KW*C <= PYNN_CONV_DIRECT_K, e.g. a first layer on 1 or 3 input channels, where a
 * GEMM with K = 9 spends its time packing. Included by conv.c (portable build) and
 * conv_avx512.c (the same loops compiled with AVX-512); one macro body, two instantiations.
 *
 *   forward : y[p, oc]  = sum over k of xcol[p, k] * w[k, oc]      (k ascending, from 0)
 *   backward: dw[k, oc] = sum over p of xcol[p, k] * dz[p, oc]     (p ascending over [p0, p1))
 *             db[oc]    = sum over p of dz[p, oc],   dz = dy * act'(y)
 *   pool2   : the forward of the 4 pixels of each 2x2 window, then their maximum (inference)
 *
 * xcol is one output pixel's receptive field in (i, j, c) order with zeros in the padding,
 * gathered into a fixed-size stack array (by precomputed tap offsets when the field lies
 * inside x); output channels go in blocks of PYNN_CONV_DIRECT_OCB whose accumulators the
 * compiler keeps in vector registers.
 */
#ifndef PYNN_CONV_DIRECT_H
#define PYNN_CONV_DIRECT_H
#include "conv.h"

#define PYNN_CONV_DIRECT_K 32
#define PYNN_CONV_DIRECT_OCB 32

/* the direct path applies: small K, and (for the bias/activation epilogue) any OC */
static inline int pynn_conv_is_direct(pynn_conv_geom g) {
    return g.KH * g.KW * g.C <= PYNN_CONV_DIRECT_K && g.KH * g.KW * g.C > 0;
}

void pynn_conv_direct_forward_f32(float *y, const float *x, const float *w, const float *bias,
                                  pynn_conv_geom g, int act, pynn_idx p0, pynn_idx n);
void pynn_conv_direct_forward_f64(double *y, const double *x, const double *w,
                                  const double *bias, pynn_conv_geom g, int act, pynn_idx p0,
                                  pynn_idx n);
void pynn_conv_direct_dweight_f32(float *dw, float *db, const float *x, const float *y,
                                  const float *dy, pynn_conv_geom g, int act, pynn_idx p0,
                                  pynn_idx p1);
void pynn_conv_direct_dweight_f64(double *dw, double *db, const double *x, const double *y,
                                  const double *dy, pynn_conv_geom g, int act, pynn_idx p0,
                                  pynn_idx p1);
/* forward, bias and relu, then 2x2 max pooling (stride 2), for pooled rows [r0, r0+nr) */
void pynn_conv_direct_pool2_forward_f32(float *y, const float *x, const float *w,
                                        const float *bias, pynn_conv_geom g, int act,
                                        pynn_idx r0, pynn_idx nr);
void pynn_conv_direct_pool2_forward_f64(double *y, const double *x, const double *w,
                                        const double *bias, pynn_conv_geom g, int act,
                                        pynn_idx r0, pynn_idx nr);
void pynn_conv_direct_pool2_forward_f32_avx512(float *y, const float *x, const float *w,
                                               const float *bias, pynn_conv_geom g, int act,
                                               pynn_idx r0, pynn_idx nr);
void pynn_conv_direct_pool2_forward_f64_avx512(double *y, const double *x, const double *w,
                                               const double *bias, pynn_conv_geom g, int act,
                                               pynn_idx r0, pynn_idx nr);
/* the same, compiled with AVX-512 (conv_avx512.c) */
void pynn_conv_direct_forward_f32_avx512(float *y, const float *x, const float *w,
                                         const float *bias, pynn_conv_geom g, int act,
                                         pynn_idx p0, pynn_idx n);
void pynn_conv_direct_forward_f64_avx512(double *y, const double *x, const double *w,
                                         const double *bias, pynn_conv_geom g, int act,
                                         pynn_idx p0, pynn_idx n);
void pynn_conv_direct_dweight_f32_avx512(float *dw, float *db, const float *x, const float *y,
                                         const float *dy, pynn_conv_geom g, int act,
                                         pynn_idx p0, pynn_idx p1);
void pynn_conv_direct_dweight_f64_avx512(double *dw, double *db, const double *x,
                                         const double *y, const double *dy, pynn_conv_geom g,
                                         int act, pynn_idx p0, pynn_idx p1);

/* the receptive field of output pixel (b_, oh_, ow_) into xv (K), zeros in the padding */        \
#define PYNN_CONV_DIRECT_GATHER(T, xv, x, g, b_, oh_, ow_)                                        \
    do {                                                                                          \
        pynn_idx k_ = 0;                                                                          \
        const T *xb_ = (x) + (b_) * (g).xsb;                                                      \
        for (pynn_idx i_ = 0; i_ < (g).KH; i_++) {                                                \
            pynn_idx ih_ = (oh_) * (g).sh + i_ * (g).dh - (g).pt;                                 \
            for (pynn_idx j_ = 0; j_ < (g).KW; j_++) {                                            \
                pynn_idx iw_ = (ow_) * (g).sw + j_ * (g).dw - (g).pl;                             \
                if (ih_ < 0 || ih_ >= (g).H || iw_ < 0 || iw_ >= (g).W) {                         \
                    for (pynn_idx c_ = 0; c_ < (g).C; c_++) (xv)[k_++] = (T)0;                    \
                } else {                                                                          \
                    const T *s_ = xb_ + ih_ * (g).xsh + iw_ * (g).xsw;                            \
                    /* one channel: a plain load (the loop became a memcpy call) */               \
                    if ((g).C == 1) (xv)[k_++] = s_[0];                                           \
                    else for (pynn_idx c_ = 0; c_ < (g).C; c_++) (xv)[k_++] = s_[c_ * (g).xsc];   \
                }                                                                                 \
            }                                                                                     \
        }                                                                                         \
    } while (0)

/* next output pixel: (b, oh, ow) in row-major order, no divisions */                             \
#define PYNN_CONV_DIRECT_NEXT(g, b_, oh_, ow_)                                                    \
    (++(ow_) < (g).OW ? (void)0                                                                   \
     : ((ow_) = 0, ++(oh_) < (g).OH ? (void)0 : ((oh_) = 0, (void)++(b_))))

/* tap offsets of one receptive field in x, (i, j, c) order, into toff (K) */                     \
#define PYNN_CONV_DIRECT_OFFSETS(toff, g)                                                         \
    do {                                                                                          \
        pynn_idx k_ = 0;                                                                          \
        for (pynn_idx i_ = 0; i_ < (g).KH; i_++)                                                  \
            for (pynn_idx j_ = 0; j_ < (g).KW; j_++)                                              \
                for (pynn_idx c_ = 0; c_ < (g).C; c_++)                                           \
                    (toff)[k_++] = i_ * (g).dh * (g).xsh + j_ * (g).dw * (g).xsw + c_ * (g).xsc;  \
    } while (0)

/* the receptive field of output pixel (b_, oh_, ow_) into xv: a plain loop over the tap          \
   offsets when every tap is inside x (all but the border pixels under "same" padding),           \
   else the bounds-checked gather */                                                              \
#define PYNN_CONV_DIRECT_LOAD(T, xv, x, g, toff, b_, oh_, ow_)                                    \
    do {                                                                                          \
        pynn_idx ih0_ = (oh_) * (g).sh - (g).pt, iw0_ = (ow_) * (g).sw - (g).pl;                  \
        if (ih0_ >= 0 && ih0_ + ((g).KH - 1) * (g).dh < (g).H && iw0_ >= 0                        \
            && iw0_ + ((g).KW - 1) * (g).dw < (g).W) {                                            \
            const T *s_ = (x) + (b_) * (g).xsb + ih0_ * (g).xsh + iw0_ * (g).xsw;                 \
            pynn_idx K_ = (g).KH * (g).KW * (g).C;                                                \
            for (pynn_idx k_ = 0; k_ < K_; k_++) (xv)[k_] = s_[(toff)[k_]];                       \
        } else {                                                                                  \
            PYNN_CONV_DIRECT_GATHER(T, xv, x, g, b_, oh_, ow_);                                   \
        }                                                                                         \
    } while (0)

/* acc[r][o] = sum_k xv[r][k] w[k, oc0 + o] for r < NP (all groups, padding ones too), o < on,
 * k in order 0..K-1: the one accumulation of every direct kernel (the same bits wherever a
 * pixel is computed); a full block of OCB channels has constant trip counts */
#define PYNN_CONV_DIRECT_MAC(T, acc, xv, w, K, OC, oc0, on)                                       \
    if ((on) == OCB) {                                                                            \
        for (int r_ = 0; r_ < NP; r_++)                                                           \
            for (int o_ = 0; o_ < OCB; o_++) acc[r_][o_] = xv[r_][0] * w[(oc0) + o_];             \
        for (pynn_idx k_ = 1; k_ < (K); k_++) {                                                   \
            const T *wk_ = w + k_ * (OC) + (oc0);                                                 \
            for (int r_ = 0; r_ < NP; r_++) {                                                     \
                T a_ = xv[r_][k_];                                                                \
                for (int o_ = 0; o_ < OCB; o_++) acc[r_][o_] += a_ * wk_[o_];                     \
            }                                                                                     \
        }                                                                                         \
    } else {                                                                                      \
        for (int r_ = 0; r_ < NP; r_++)                                                           \
            for (pynn_idx o_ = 0; o_ < (on); o_++) acc[r_][o_] = xv[r_][0] * w[(oc0) + o_];       \
        for (pynn_idx k_ = 1; k_ < (K); k_++) {                                                   \
            const T *wk_ = w + k_ * (OC) + (oc0);                                                 \
            for (int r_ = 0; r_ < NP; r_++) {                                                     \
                T a_ = xv[r_][k_];                                                                \
                for (pynn_idx o_ = 0; o_ < (on); o_++) acc[r_][o_] += a_ * wk_[o_];               \
            }                                                                                     \
        }                                                                                         \
    }

/* one pixel's accumulators, o < on: + bias, then relu when asked */
#define PYNN_CONV_DIRECT_EPI(accr, bias, relu, oc0, on)                                           \
    {                                                                                             \
        if (bias) for (pynn_idx o_ = 0; o_ < (on); o_++) accr[o_] += bias[(oc0) + o_];            \
        if (relu)                                                                                 \
            for (pynn_idx o_ = 0; o_ < (on); o_++) accr[o_] = accr[o_] < 0 ? 0 : accr[o_];        \
    }

#define PYNN_CONV_DIRECT_FAMILY(T, SUF)                                                           \
void pynn_conv_direct_forward_##SUF(T *y, const T *x, const T *w, const T *bias,                  \
                                    pynn_conv_geom g, int act, pynn_idx p0, pynn_idx n) {         \
    /* y (n, OC) = xcol (n, K) @ w (K, OC) [+ bias, relu: fused here] for output pixels           \
       [p0, p0+n), K small; y points at pixel p0's output row (a block of the layer output or     \
       a scratch block); NP pixels at a time share each load of w */                              \
    enum { OCB = PYNN_CONV_DIRECT_OCB, NP = 4 };                                                  \
    pynn_idx K = g.KH * g.KW * g.C, OC = g.OC;                                                    \
    pynn_idx P = g.OH * g.OW, b = p0 / P, oh = (p0 % P) / g.OW, ow = p0 % g.OW;                   \
    int relu = act == PYNN_CONV_RELU;                                                             \
    T xv[NP][PYNN_CONV_DIRECT_K];                                                                 \
    pynn_idx toff[PYNN_CONV_DIRECT_K];                                                            \
    PYNN_CONV_DIRECT_OFFSETS(toff, g);                                                            \
    for (pynn_idx q0 = 0; q0 < n; q0 += NP) {                                                     \
        int np_ = (int)PYNN_MIN(NP, n - q0);                                                      \
        for (int r = 0; r < NP; r++) {                                                            \
            if (r < np_) {                                                                        \
                PYNN_CONV_DIRECT_LOAD(T, xv[r], x, g, toff, b, oh, ow);                           \
                PYNN_CONV_DIRECT_NEXT(g, b, oh, ow);                                              \
            } else {                                                                              \
                for (pynn_idx k = 0; k < K; k++) xv[r][k] = 0;                                    \
            }                                                                                     \
        }                                                                                         \
        T *yp = y + q0 * OC;                                                                      \
        for (pynn_idx oc0 = 0; oc0 < OC; oc0 += OCB) {                                            \
            pynn_idx on = PYNN_MIN(OCB, OC - oc0);                                                \
            T acc[NP][OCB];                                                                       \
            PYNN_CONV_DIRECT_MAC(T, acc, xv, w, K, OC, oc0, on);                                  \
            for (int r = 0; r < np_; r++) {                                                       \
                T *yr = yp + r * OC + oc0;                                                        \
                PYNN_CONV_DIRECT_EPI(acc[r], bias, relu, oc0, on)                                 \
                for (pynn_idx o = 0; o < on; o++) yr[o] = acc[r][o];                              \
            }                                                                                     \
        }                                                                                         \
    }                                                                                             \
}                                                                                                 \
                                                                                                  \
void pynn_conv_direct_pool2_forward_##SUF(T *y, const T *x, const T *w, const T *bias,            \
                                          pynn_conv_geom g, int act, pynn_idx r0, pynn_idx nr) {  \
    /* y (nr, OW/2, OC) = max over 2x2 windows (stride 2) of [relu](xcol @ w + bias), pooled      \
       rows [r0, r0+nr) flat over B*(OH/2); act is linear or relu. A window's 4 pixels are        \
       one NP group of the forward above (same loads, same sums): the same bits as the            \
       forward followed by max pooling, with no convolution output in memory */                   \
    enum { OCB = PYNN_CONV_DIRECT_OCB, NP = 4 };                                                  \
    pynn_idx K = g.KH * g.KW * g.C, OC = g.OC, POH = g.OH / 2, POW = g.OW / 2;                    \
    int relu = act == PYNN_CONV_RELU;                                                             \
    T xv[NP][PYNN_CONV_DIRECT_K];                                                                 \
    pynn_idx toff[PYNN_CONV_DIRECT_K];                                                            \
    PYNN_CONV_DIRECT_OFFSETS(toff, g);                                                            \
    for (pynn_idx r = r0; r < r0 + nr; r++) {                                                     \
        pynn_idx b = r / POH, oh = (r % POH) * 2;                                                 \
        for (pynn_idx pc = 0; pc < POW; pc++) {                                                   \
            /* window taps in row-major order: (0,0) (0,1) (1,0) (1,1) */                         \
            for (int q = 0; q < NP; q++)                                                          \
                PYNN_CONV_DIRECT_LOAD(T, xv[q], x, g, toff, b, oh + q / 2, pc * 2 + q % 2);       \
            T *yp = y + ((r - r0) * POW + pc) * OC;                                               \
            for (pynn_idx oc0 = 0; oc0 < OC; oc0 += OCB) {                                        \
                pynn_idx on = PYNN_MIN(OCB, OC - oc0);                                            \
                T acc[NP][OCB];                                                                   \
                PYNN_CONV_DIRECT_MAC(T, acc, xv, w, K, OC, oc0, on);                              \
                for (int q = 0; q < NP; q++) {                                                    \
                    PYNN_CONV_DIRECT_EPI(acc[q], bias, relu, oc0, on)                             \
                }                                                                                 \
                /* first maximum kept, a NaN wins: the max-pooling kernel's rule */               \
                for (pynn_idx o = 0; o < on; o++) {                                               \
                    T m = acc[0][o];                                                              \
                    for (int q = 1; q < NP; q++) {                                                \
                        T v = acc[q][o];                                                          \
                        m = (v > m || (v != v && m == m)) ? v : m;                                \
                    }                                                                             \
                    yp[oc0 + o] = m;                                                              \
                }                                                                                 \
            }                                                                                     \
        }                                                                                         \
    }                                                                                             \
}                                                                                                 \
                                                                                                  \
void pynn_conv_direct_dweight_##SUF(T *dw, T *db, const T *x, const T *y, const T *dy,            \
                                    pynn_conv_geom g, int act, pynn_idx p0, pynn_idx p1) {        \
    /* dw (K, OC) = xcol^T (K, n) @ dz (n, OC); db (OC) = column sums of dz; dz = dy act'(y),     \
       over output pixels [p0, p1): NP pixels at a time are summed (in pixel order), then         \
       added to dw and db; the order depends on p0, p1 and the shapes only */                     \
    enum { OCB = PYNN_CONV_DIRECT_OCB, NP = 4 };                                                  \
    pynn_idx K = g.KH * g.KW * g.C, OC = g.OC;                                                    \
    pynn_idx P = g.OH * g.OW, b = p0 / P, oh = (p0 % P) / g.OW, ow = p0 % g.OW;                   \
    T xv[NP][PYNN_CONV_DIRECT_K];                                                                 \
    pynn_idx toff[PYNN_CONV_DIRECT_K];                                                            \
    PYNN_CONV_DIRECT_OFFSETS(toff, g);                                                            \
    for (pynn_idx e = 0; e < K * OC; e++) dw[e] = 0;                                              \
    for (pynn_idx o = 0; o < OC; o++) db[o] = 0;                                                  \
    for (pynn_idx q0 = p0; q0 < p1; q0 += NP) {                                                   \
        int np_ = (int)PYNN_MIN(NP, p1 - q0);                                                     \
        for (int r = 0; r < NP; r++) {                                                            \
            if (r < np_) {                                                                        \
                PYNN_CONV_DIRECT_LOAD(T, xv[r], x, g, toff, b, oh, ow);                           \
                PYNN_CONV_DIRECT_NEXT(g, b, oh, ow);                                              \
            } else {                                                                              \
                for (pynn_idx k = 0; k < K; k++) xv[r][k] = 0;                                    \
            }                                                                                     \
        }                                                                                         \
        for (pynn_idx oc0 = 0; oc0 < OC; oc0 += OCB) {                                            \
            pynn_idx on = PYNN_MIN(OCB, OC - oc0);                                                \
            T d[NP][OCB];                                                                         \
            for (int r = 0; r < NP; r++) {                                                        \
                const T *dyp = dy + (q0 + r) * OC + oc0;                                          \
                const T *yp = y ? y + (q0 + r) * OC + oc0 : NULL;                                 \
                if (r >= np_) {                                                                   \
                    for (pynn_idx o = 0; o < on; o++) d[r][o] = 0;                                \
                } else if (act == PYNN_CONV_RELU) {                                               \
                    for (pynn_idx o = 0; o < on; o++) {                                           \
                        T m = yp[o] > 0 ? (T)1 : (T)0;                                            \
                        d[r][o] = dyp[o] * m;                                                     \
                    }                                                                             \
                } else if (act == PYNN_CONV_SIGMOID) {                                            \
                    for (pynn_idx o = 0; o < on; o++) d[r][o] = dyp[o] * yp[o] * ((T)1 - yp[o]);  \
                } else if (act == PYNN_CONV_TANH) {                                               \
                    for (pynn_idx o = 0; o < on; o++) d[r][o] = dyp[o] * ((T)1 - yp[o] * yp[o]);  \
                } else {                                                                          \
                    for (pynn_idx o = 0; o < on; o++) d[r][o] = dyp[o];                           \
                }                                                                                 \
            }                                                                                     \
            for (pynn_idx o = 0; o < on; o++)                                                     \
                db[oc0 + o] += ((d[0][o] + d[1][o]) + d[2][o]) + d[3][o];                         \
            if (on == OCB) {                                                                      \
                for (pynn_idx k = 0; k < K; k++) {                                                \
                    T *dwk = dw + k * OC + oc0;                                                   \
                    T a0 = xv[0][k], a1 = xv[1][k], a2 = xv[2][k], a3 = xv[3][k];                 \
                    for (int o = 0; o < OCB; o++)                                                 \
                        dwk[o] += ((a0 * d[0][o] + a1 * d[1][o]) + a2 * d[2][o]) + a3 * d[3][o];  \
                }                                                                                 \
            } else {                                                                              \
                for (pynn_idx k = 0; k < K; k++) {                                                \
                    T *dwk = dw + k * OC + oc0;                                                   \
                    T a0 = xv[0][k], a1 = xv[1][k], a2 = xv[2][k], a3 = xv[3][k];                 \
                    for (pynn_idx o = 0; o < on; o++)                                             \
                        dwk[o] += ((a0 * d[0][o] + a1 * d[1][o]) + a2 * d[2][o]) + a3 * d[3][o];  \
                }                                                                                 \
            }                                                                                     \
        }                                                                                         \
    }                                                                                             \
}
#endif
