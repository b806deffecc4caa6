/* embedding.h - table lookup (gather) and its scatter-add gradient. */
#ifndef PYNN_EMBEDDING_H
#define PYNN_EMBEDDING_H
#include "pynn.h"

void pynn_embedding_forward_f32(float *out, const int64_t *ids, const float *table,
                                pynn_idx N, pynn_idx D, pynn_idx rst, pynn_ctx ctx);
void pynn_embedding_forward_f64(double *out, const int64_t *ids, const double *table,
                                pynn_idx N, pynn_idx D, pynn_idx rst, pynn_ctx ctx);
void pynn_embedding_backward_f32(float *dtable, const int64_t *ids, const float *dy,
                                 pynn_idx N, pynn_idx V, pynn_idx D, pynn_ctx ctx);
void pynn_embedding_backward_f64(double *dtable, const int64_t *ids, const double *dy,
                                 pynn_idx N, pynn_idx V, pynn_idx D, pynn_ctx ctx);
#endif
