/* layernorm.h - layer normalization over the last axis, forward and backward. Backward writes
 * dx, or adds it onto dx (accumulate), or onto res (res: C-contiguous (N,C) or NULL; dx may
 * be res itself). */
#ifndef PYNN_LAYERNORM_H
#define PYNN_LAYERNORM_H
#include "pynn.h"

void pynn_layernorm_forward_f32(float *y, float *mean, float *rstd, const float *x,
                                const float *gamma, const float *beta, pynn_idx N, pynn_idx C,
                                pynn_idx rsx, pynn_idx csx, double eps, pynn_ctx ctx);
void pynn_layernorm_forward_f64(double *y, double *mean, double *rstd, const double *x,
                                const double *gamma, const double *beta, pynn_idx N, pynn_idx C,
                                pynn_idx rsx, pynn_idx csx, double eps, pynn_ctx ctx);
void pynn_layernorm_backward_f32(float *dx, float *dgamma, float *dbeta, const float *x,
                                 const float *gamma, const float *mean, const float *rstd,
                                 const float *dy, pynn_idx N, pynn_idx C, pynn_idx rsx,
                                 pynn_idx csx, const float *res, int accumulate, pynn_ctx ctx);
void pynn_layernorm_backward_f64(double *dx, double *dgamma, double *dbeta, const double *x,
                                 const double *gamma, const double *mean, const double *rstd,
                                 const double *dy, pynn_idx N, pynn_idx C, pynn_idx rsx,
                                 pynn_idx csx, const double *res, int accumulate, pynn_ctx ctx);
#endif
