/* norm.h - batch normalization over the rows of x (N,C) (channels last: every axis but the
 * last flattened into N), forward and backward, Keras semantics (biased batch variance,
 * running = momentum * running + (1 - momentum) * batch). */
#ifndef PYNN_NORM_H
#define PYNN_NORM_H
#include "pynn.h"

/* training != 0: batch statistics, running_mean/var updated in place (N >= 1);
 * training == 0: running statistics, untouched. mean and inv_std (C) receive the statistics
 * used. x is read through (rsx, csx); y is C-contiguous; beta may be NULL (zero).
 * Returns PYNN_OK or PYNN_ENOMEM. */
int pynn_batch_norm_forward_f32(float *y, float *mean, float *inv_std, float *running_mean,
                                float *running_var, const float *x, const float *gamma,
                                const float *beta, pynn_idx N, pynn_idx C, pynn_idx rsx,
                                pynn_idx csx, int training, double momentum, double epsilon,
                                pynn_ctx ctx);
int pynn_batch_norm_forward_f64(double *y, double *mean, double *inv_std, double *running_mean,
                                double *running_var, const double *x, const double *gamma,
                                const double *beta, pynn_idx N, pynn_idx C, pynn_idx rsx,
                                pynn_idx csx, int training, double momentum, double epsilon,
                                pynn_ctx ctx);
/* dx may be dy itself (in place); dy and dx are C-contiguous (N,C) */
int pynn_batch_norm_backward_f32(float *dx, float *dgamma, float *dbeta, const float *x,
                                 const float *dy, const float *gamma, const float *mean,
                                 const float *inv_std, pynn_idx N, pynn_idx C, pynn_idx rsx,
                                 pynn_idx csx, int training, pynn_ctx ctx);
int pynn_batch_norm_backward_f64(double *dx, double *dgamma, double *dbeta, const double *x,
                                 const double *dy, const double *gamma, const double *mean,
                                 const double *inv_std, pynn_idx N, pynn_idx C, pynn_idx rsx,
                                 pynn_idx csx, int training, pynn_ctx ctx);
#endif
