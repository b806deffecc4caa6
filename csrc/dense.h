/* dense.h - the fused fully-connected layer, Keras layout:
 *
 *   forward   y (B,OC) = act(x (B,C) @ w (C,OC) + b (OC)) + res (B,OC)
 *   backward  dz = dy * act'(y);  dw = x^T dz;  db = sum_b dz;  dx = dz w^T [* dxm]
 *
 * act is one of PYNN_ACT_{LINEAR,RELU,SIGMOID,TANH} (activations.h): those whose derivative
 * follows from the output y, so backward needs no saved pre-activation; forward also takes
 * PYNN_ACT_GELU{,_TANH}, whose derivative it can write into grad for dz = dy * grad. x and w
 * are passed with row and column strides (views, transposes, Fortran order need no copies);
 * out, y, dy and the gradients are C-contiguous. Both return PYNN_OK, or PYNN_ENOMEM when
 * scratch or GEMM packing memory could not be allocated.
 */
#ifndef PYNN_DENSE_H
#define PYNN_DENSE_H
#include "pynn.h"
#include "activations.h"

int pynn_dense_forward_f32(float *out, float *grad, const float *x, pynn_idx rsx, pynn_idx csx,
                           const float *w, pynn_idx rsw, pynn_idx csw, const float *b,
                           const float *res, pynn_idx B, pynn_idx C, pynn_idx OC, int act,
                           pynn_ctx ctx);
int pynn_dense_forward_f64(double *out, double *grad, const double *x, pynn_idx rsx,
                           pynn_idx csx,
                           const double *w, pynn_idx rsw, pynn_idx csw, const double *b,
                           const double *res, pynn_idx B, pynn_idx C, pynn_idx OC, int act,
                           pynn_ctx ctx);
/* b and res may be NULL; res is C-contiguous and does not overlap out. grad: NULL, or for
 * PYNN_ACT_GELU / PYNN_ACT_GELU_TANH (forward-only activations) a C-contiguous (B,OC) that
 * receives act'(x @ w + b) */
/* dx may be NULL (gradient not needed); y may be NULL when act is PYNN_ACT_LINEAR; dxm: NULL,
 * or a C-contiguous (B,C) that multiplies dx elementwise (the previous layer's saved
 * activation derivative: dx then is that layer's dz) */
int pynn_dense_backward_f32(float *dx, float *dw, float *db,
                            const float *x, pynn_idx rsx, pynn_idx csx,
                            const float *w, pynn_idx rsw, pynn_idx csw,
                            const float *y, const float *dy, const float *dxm,
                            pynn_idx B, pynn_idx C, pynn_idx OC, int act, pynn_ctx ctx);
int pynn_dense_backward_f64(double *dx, double *dw, double *db,
                            const double *x, pynn_idx rsx, pynn_idx csx,
                            const double *w, pynn_idx rsw, pynn_idx csw,
                            const double *y, const double *dy, const double *dxm,
                            pynn_idx B, pynn_idx C, pynn_idx OC, int act, pynn_ctx ctx);
#endif
