/* optim.h - fused in-place optimizer updates (Keras 3 formulas) and global-norm clipping
 * over one flat parameter buffer. Arrays are C-contiguous, of length n, and do not overlap.
 * velocity == NULL: no momentum (sgd, rmsprop); mean_grad == NULL: rmsprop not centered. */
#ifndef PYNN_OPTIM_H
#define PYNN_OPTIM_H
#include "pynn.h"

void pynn_sgd_update_f32(float *param, float *velocity, const float *grad, pynn_idx n,
                         double lr, double momentum, int nesterov, double weight_decay,
                         pynn_ctx ctx);
void pynn_adam_update_f32(float *param, float *m, float *v, const float *grad, pynn_idx n,
                          double lr, double beta_1, double beta_2, double epsilon, int64_t step,
                          double weight_decay, pynn_ctx ctx);
void pynn_rmsprop_update_f32(float *param, float *sq_avg, float *velocity, float *mean_grad,
                             const float *grad, pynn_idx n, double lr, double rho,
                             double epsilon, double momentum, double weight_decay,
                             pynn_ctx ctx);
void pynn_adagrad_update_f32(float *param, float *accum, const float *grad, pynn_idx n,
                             double lr, double epsilon, double weight_decay, pynn_ctx ctx);
double pynn_global_norm_f32(const float *x, pynn_idx n, pynn_ctx ctx);
double pynn_clip_by_global_norm_f32(float *grad, pynn_idx n, double max_norm, pynn_ctx ctx);

void pynn_sgd_update_f64(double *param, double *velocity, const double *grad, pynn_idx n,
                         double lr, double momentum, int nesterov, double weight_decay,
                         pynn_ctx ctx);
void pynn_adam_update_f64(double *param, double *m, double *v, const double *grad, pynn_idx n,
                          double lr, double beta_1, double beta_2, double epsilon, int64_t step,
                          double weight_decay, pynn_ctx ctx);
void pynn_rmsprop_update_f64(double *param, double *sq_avg, double *velocity, double *mean_grad,
                             const double *grad, pynn_idx n, double lr, double rho,
                             double epsilon, double momentum, double weight_decay,
                             pynn_ctx ctx);
void pynn_adagrad_update_f64(double *param, double *accum, const double *grad, pynn_idx n,
                             double lr, double epsilon, double weight_decay, pynn_ctx ctx);
double pynn_global_norm_f64(const double *x, pynn_idx n, pynn_ctx ctx);
double pynn_clip_by_global_norm_f64(double *grad, pynn_idx n, double max_norm, pynn_ctx ctx);
#endif
