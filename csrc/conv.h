/* conv.h - 2-D convolution and depthwise convolution, NHWC (channels last), forward and
 * backward, float32/float64.
 *
 *   y (B,OH,OW,OC) = act(sum over taps (i,j) and c of
 *                        x[b, oh*sh + i*dh - pt, ow*sw + j*dw - pl, c] * w[i,j,c,oc] + bias[oc])
 *
 * Taps that fall outside x read zeros (Keras "same" padding; the Python layer computes OH, OW
 * and the leading pads pt, pl). x is read through four element strides; w, y, dy, dx are
 * C-contiguous. Kernels that allocate scratch return PYNN_OK or PYNN_ENOMEM.
 */
#ifndef PYNN_CONV_H
#define PYNN_CONV_H
#include "pynn.h"

/* fused activation epilogue: those whose derivative follows from the output y */
enum { PYNN_CONV_LINEAR = 0, PYNN_CONV_RELU = 1, PYNN_CONV_SIGMOID = 2, PYNN_CONV_TANH = 3 };

/* geometry of one convolution (or pooling) call, in elements */
typedef struct {
    pynn_idx B, H, W, C;          /* input */
    pynn_idx OC, KH, KW;          /* output channels (C for depthwise), kernel taps */
    pynn_idx OH, OW;              /* output size */
    pynn_idx sh, sw, dh, dw;      /* strides and dilation */
    pynn_idx pt, pl;              /* leading (top, left) zero padding */
    pynn_idx xsb, xsh, xsw, xsc;  /* element strides of x */
} pynn_conv_geom;

int pynn_conv2d_forward_f32(float *y, const float *x, const float *w, const float *bias,
                            pynn_conv_geom g, int act, pynn_ctx ctx);
int pynn_conv2d_forward_f64(double *y, const double *x, const double *w, const double *bias,
                            pynn_conv_geom g, int act, pynn_ctx ctx);
/* inference: conv2d_forward, then max pooling over ph x pw windows with stride (ph, pw), no
 * padding, in one pass: y (B, OH/ph, OW/pw, OC) (floor: a last odd row or column of the
 * convolution output is dropped, as valid pooling does). The convolution output is made a
 * few rows at a time in per-thread scratch and never written out; its values are those of
 * conv2d_forward (same loops), so y matches conv2d_forward followed by max_pool2d_forward. */
int pynn_conv2d_maxpool_forward_f32(float *y, const float *x, const float *w, const float *bias,
                                    pynn_conv_geom g, pynn_idx ph, pynn_idx pw, int act,
                                    pynn_ctx ctx);
int pynn_conv2d_maxpool_forward_f64(double *y, const double *x, const double *w,
                                    const double *bias, pynn_conv_geom g, pynn_idx ph,
                                    pynn_idx pw, int act, pynn_ctx ctx);
/* dx may be NULL (not needed); y may be NULL for PYNN_CONV_LINEAR; dweight and dbias may
 * both be NULL (input gradient only; x is not read then) */
int pynn_conv2d_backward_f32(float *dx, float *dweight, float *dbias, const float *x,
                             const float *w, const float *y, const float *dy,
                             pynn_conv_geom g, int act, pynn_ctx ctx);
int pynn_conv2d_backward_f64(double *dx, double *dweight, double *dbias, const double *x,
                             const double *w, const double *y, const double *dy,
                             pynn_conv_geom g, int act, pynn_ctx ctx);

/* transposed convolution: g is the underlying convolution (B,H,W,C) -> (B,OH,OW,OC) with
 * w (KH,KW,C,OC); the transposed one maps x (B,OH,OW,OC) -> y (B,H,W,C), bias (C). Its forward
 * is conv2d's input gradient, its backward a conv2d forward (dx) and weight gradient (dweight).
 * x, y, dy are C-contiguous here (x's strides in g are not used). */
int pynn_conv2d_transpose_forward_f32(float *y, const float *x, const float *w,
                                      const float *bias, pynn_conv_geom g, int act,
                                      pynn_ctx ctx);
int pynn_conv2d_transpose_forward_f64(double *y, const double *x, const double *w,
                                      const double *bias, pynn_conv_geom g, int act,
                                      pynn_ctx ctx);
int pynn_conv2d_transpose_backward_f32(float *dx, float *dweight, float *dbias, const float *x,
                                       const float *w, const float *y, const float *dy,
                                       pynn_conv_geom g, int act, pynn_ctx ctx);
int pynn_conv2d_transpose_backward_f64(double *dx, double *dweight, double *dbias,
                                       const double *x, const double *w, const double *y,
                                       const double *dy, pynn_conv_geom g, int act,
                                       pynn_ctx ctx);

/* depthwise, depth_multiplier 1: w (KH,KW,C), bias (C), g.OC == g.C */
int pynn_depthwise_conv2d_forward_f32(float *y, const float *x, const float *w,
                                      const float *bias, pynn_conv_geom g, int act,
                                      pynn_ctx ctx);
int pynn_depthwise_conv2d_forward_f64(double *y, const double *x, const double *w,
                                      const double *bias, pynn_conv_geom g, int act,
                                      pynn_ctx ctx);
int pynn_depthwise_conv2d_backward_f32(float *dx, float *dweight, float *dbias, const float *x,
                                       const float *w, const float *y, const float *dy,
                                       pynn_conv_geom g, int act, pynn_ctx ctx);
int pynn_depthwise_conv2d_backward_f64(double *dx, double *dweight, double *dbias,
                                       const double *x, const double *w, const double *y,
                                       const double *dy, pynn_conv_geom g, int act,
                                       pynn_ctx ctx);
#endif
