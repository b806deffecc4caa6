/* dropout.h - counter-based dropout: the keep decision of flat (C-order) element i is a pure
 * function of (seed, step, i), so masks are reproducible, identical for any thread count and
 * bit-identical with the NumPy twin (pynn/reference/dropout.py). */
#ifndef PYNN_DROPOUT_H
#define PYNN_DROPOUT_H
#include "pynn.h"

void pynn_dropout_forward_f32(float *out, const float *x, pynn_idx n, double rate,
                              uint64_t seed, uint64_t step, pynn_ctx ctx);
void pynn_dropout_forward_f64(double *out, const double *x, pynn_idx n, double rate,
                              uint64_t seed, uint64_t step, pynn_ctx ctx);
void pynn_dropout_backward_f32(float *dx, const float *dy, pynn_idx n, double rate,
                               uint64_t seed, uint64_t step, pynn_ctx ctx);
void pynn_dropout_backward_f64(double *dx, const double *dy, pynn_idx n, double rate,
                               uint64_t seed, uint64_t step, pynn_ctx ctx);
void pynn_dropout_mask_f32(float *out, pynn_idx n, double rate, uint64_t seed, uint64_t step,
                           pynn_ctx ctx);
void pynn_dropout_mask_f64(double *out, pynn_idx n, double rate, uint64_t seed, uint64_t step,
                           pynn_ctx ctx);
/* out = x * mask for the flat elements i0 .. i0+n-1 of a larger array, serial (for kernels
 * that apply dropout inside their own parallel region, e.g. attention); out may be x;
 * isa: ctx.isa */
void pynn_dropout_span_f32(float *out, const float *x, pynn_idx i0, pynn_idx n, double rate,
                           uint64_t seed, uint64_t step, int isa);
void pynn_dropout_span_f64(double *out, const double *x, pynn_idx i0, pynn_idx n, double rate,
                           uint64_t seed, uint64_t step, int isa);
#endif
