/* attention.h - scaled dot-product attention over (batch, head) pairs, forward and backward.
 *
 * Strides are in elements, four per 4-D operand in the order (b, h, t, c); the mask, if any,
 * is uint8 (nonzero = may attend) with strides (b, t, s) (0 for broadcast axes). probs is
 * C-contiguous (B,H,T,S). drop_rate > 0: dropout on the probabilities with the Dropout
 * kernel's mask of (drop_seed, drop_step) over probs' flat indices (probs stay undropped; the
 * backward takes the same three values). Functions return PYNN_OK or PYNN_ENOMEM. */
#ifndef PYNN_ATTENTION_H
#define PYNN_ATTENTION_H
#include "pynn.h"

int pynn_attention_forward_f32(float *out, float *probs, const float *q, const float *k,
                               const float *v, const uint8_t *mask, pynn_idx B, pynn_idx H,
                               pynn_idx T, pynn_idx S, pynn_idx D, pynn_idx DV,
                               const pynn_idx *so, const pynn_idx *sq, const pynn_idx *sk,
                               const pynn_idx *sv, const pynn_idx *sm, int causal,
                               double scale, double drop_rate, uint64_t drop_seed,
                               uint64_t drop_step, pynn_ctx ctx);
int pynn_attention_forward_f64(double *out, double *probs, const double *q, const double *k,
                               const double *v, const uint8_t *mask, pynn_idx B, pynn_idx H,
                               pynn_idx T, pynn_idx S, pynn_idx D, pynn_idx DV,
                               const pynn_idx *so, const pynn_idx *sq, const pynn_idx *sk,
                               const pynn_idx *sv, const pynn_idx *sm, int causal,
                               double scale, double drop_rate, uint64_t drop_seed,
                               uint64_t drop_step, pynn_ctx ctx);
int pynn_attention_backward_f32(float *dq, float *dk, float *dv, const float *q, const float *k,
                                const float *v, const float *probs, const float *dout,
                                pynn_idx B, pynn_idx H, pynn_idx T, pynn_idx S, pynn_idx D,
                                pynn_idx DV, const pynn_idx *sdq, const pynn_idx *sdk,
                                const pynn_idx *sdv, const pynn_idx *sq, const pynn_idx *sk,
                                const pynn_idx *sv, const pynn_idx *sdo, int causal,
                                double scale, double drop_rate, uint64_t drop_seed,
                                uint64_t drop_step, pynn_ctx ctx);
int pynn_attention_backward_f64(double *dq, double *dk, double *dv, const double *q,
                                const double *k, const double *v, const double *probs,
                                const double *dout, pynn_idx B, pynn_idx H, pynn_idx T,
                                pynn_idx S, pynn_idx D, pynn_idx DV, const pynn_idx *sdq,
                                const pynn_idx *sdk, const pynn_idx *sdv, const pynn_idx *sq,
                                const pynn_idx *sk, const pynn_idx *sv, const pynn_idx *sdo,
                                int causal, double scale, double drop_rate, uint64_t drop_seed,
                                uint64_t drop_step, pynn_ctx ctx);
#endif
