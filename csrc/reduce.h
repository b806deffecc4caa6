/* reduce.h - reductions the trainer needs: column sums (bias gradients), row argmax and
 * the count of rows whose argmax equals an integer label (accuracy). */
#ifndef PYNN_REDUCE_H
#define PYNN_REDUCE_H
#include "pynn.h"

void pynn_column_sum_f32(float *out, const float *x, pynn_idx B, pynn_idx N,
                         pynn_idx rsx, pynn_idx csx, pynn_ctx ctx);
void pynn_column_sum_f64(double *out, const double *x, pynn_idx B, pynn_idx N,
                         pynn_idx rsx, pynn_idx csx, pynn_ctx ctx);
void pynn_row_argmax_f32(int64_t *out, const float *x, pynn_idx B, pynn_idx N,
                         pynn_idx rsx, pynn_idx csx, pynn_ctx ctx);
void pynn_row_argmax_f64(int64_t *out, const double *x, pynn_idx B, pynn_idx N,
                         pynn_idx rsx, pynn_idx csx, pynn_ctx ctx);
pynn_idx pynn_count_correct_f32(const float *x, const int64_t *labels, pynn_idx B, pynn_idx N,
                                pynn_idx rsx, pynn_idx csx, pynn_ctx ctx);
pynn_idx pynn_count_correct_f64(const double *x, const int64_t *labels, pynn_idx B, pynn_idx N,
                                pynn_idx rsx, pynn_idx csx, pynn_ctx ctx);
#endif
