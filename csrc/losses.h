/* losses.h - loss values and their gradients with respect to the prediction.
 *
 * Reduction (Keras "sum_over_batch_size"): per-sample losses l_i, then
 *   L = sum_i w_i l_i / B,   w = sample weights (B,), all ones when w == NULL.
 * mse, mae and the binary cross-entropies average over the D values of a sample; the
 * categorical ones sum over the K classes. Forward kernels return L as a double (summed in
 * double, in fixed row chunks: the bits do not depend on ctx.nthreads); backward kernels
 * write dL/d(prediction) into a C-contiguous (B, D) / (B, K) buffer, which may be the
 * prediction itself (each element is read before it is written).
 *
 * Strides are in elements: rs* row, cs* column, sw of the weights. Labels are int64 in
 * [0, K), checked by the caller. B == 0 returns 0.0 and writes nothing; D, K >= 1.
 */
#ifndef PYNN_LOSSES_H
#define PYNN_LOSSES_H
#include "pynn.h"

#define PYNN_LOSSES_DECL(T, SUF)                                                              \
/* per-sample mean over D of an elementwise loss; y_pred/logits (B,D) against y_true (B,D) */ \
double pynn_mse_forward_##SUF(const T *y_pred, const T *y_true, const T *w, pynn_idx B,       \
                              pynn_idx D, pynn_idx rsp, pynn_idx csp, pynn_idx rst,           \
                              pynn_idx cst, pynn_idx sw, pynn_ctx ctx);                       \
void pynn_mse_backward_##SUF(T *dpred, const T *y_pred, const T *y_true, const T *w,          \
                             pynn_idx B, pynn_idx D, pynn_idx rsp, pynn_idx csp,              \
                             pynn_idx rst, pynn_idx cst, pynn_idx sw, pynn_ctx ctx);          \
double pynn_mae_forward_##SUF(const T *y_pred, const T *y_true, const T *w, pynn_idx B,       \
                              pynn_idx D, pynn_idx rsp, pynn_idx csp, pynn_idx rst,           \
                              pynn_idx cst, pynn_idx sw, pynn_ctx ctx);                       \
void pynn_mae_backward_##SUF(T *dpred, const T *y_pred, const T *y_true, const T *w,          \
                             pynn_idx B, pynn_idx D, pynn_idx rsp, pynn_idx csp,              \
                             pynn_idx rst, pynn_idx cst, pynn_idx sw, pynn_ctx ctx);          \
double pynn_binary_crossentropy_forward_##SUF(const T *y_pred, const T *y_true, const T *w,   \
                              pynn_idx B, pynn_idx D, pynn_idx rsp, pynn_idx csp,             \
                              pynn_idx rst, pynn_idx cst, pynn_idx sw, double eps,            \
                              pynn_ctx ctx);                                                  \
void pynn_binary_crossentropy_backward_##SUF(T *dpred, const T *y_pred, const T *y_true,      \
                              const T *w, pynn_idx B, pynn_idx D, pynn_idx rsp, pynn_idx csp, \
                              pynn_idx rst, pynn_idx cst, pynn_idx sw, double eps,            \
                              pynn_ctx ctx);                                                  \
double pynn_binary_crossentropy_logits_forward_##SUF(const T *logits, const T *y_true,        \
                              const T *w, pynn_idx B, pynn_idx D, pynn_idx rsp, pynn_idx csp, \
                              pynn_idx rst, pynn_idx cst, pynn_idx sw, pynn_ctx ctx);         \
void pynn_binary_crossentropy_logits_backward_##SUF(T *dlogits, const T *logits,              \
                              const T *y_true, const T *w, pynn_idx B, pynn_idx D,            \
                              pynn_idx rsp, pynn_idx csp, pynn_idx rst, pynn_idx cst,         \
                              pynn_idx sw, pynn_ctx ctx);                                     \
/* per-sample sum over K classes; y_pred probabilities or logits (B,K) */                     \
double pynn_categorical_crossentropy_forward_##SUF(const T *y_pred, const T *y_true,          \
                              const T *w, pynn_idx B, pynn_idx K, pynn_idx rsp, pynn_idx csp, \
                              pynn_idx rst, pynn_idx cst, pynn_idx sw, double eps,            \
                              pynn_ctx ctx);                                                  \
void pynn_categorical_crossentropy_backward_##SUF(T *dpred, const T *y_pred, const T *y_true, \
                              const T *w, pynn_idx B, pynn_idx K, pynn_idx rsp, pynn_idx csp, \
                              pynn_idx rst, pynn_idx cst, pynn_idx sw, double eps,            \
                              pynn_ctx ctx);                                                  \
double pynn_sparse_categorical_crossentropy_forward_##SUF(const T *y_pred,                    \
                              const int64_t *labels, const T *w, pynn_idx B, pynn_idx K,      \
                              pynn_idx rsp, pynn_idx csp, pynn_idx sw, double eps,            \
                              pynn_ctx ctx);                                                  \
void pynn_sparse_categorical_crossentropy_backward_##SUF(T *dpred, const T *y_pred,           \
                              const int64_t *labels, const T *w, pynn_idx B, pynn_idx K,      \
                              pynn_idx rsp, pynn_idx csp, pynn_idx sw, double eps,            \
                              pynn_ctx ctx);                                                  \
double pynn_softmax_cross_entropy_forward_##SUF(const T *logits, const int64_t *labels,       \
                              const T *w, pynn_idx B, pynn_idx K, pynn_idx rsp, pynn_idx csp, \
                              pynn_idx sw, pynn_ctx ctx);                                     \
void pynn_softmax_cross_entropy_backward_##SUF(T *dlogits, const T *logits,                   \
                              const int64_t *labels, const T *w, pynn_idx B, pynn_idx K,      \
                              pynn_idx rsp, pynn_idx csp, pynn_idx sw, pynn_ctx ctx);         \
double pynn_softmax_categorical_crossentropy_forward_##SUF(const T *logits, const T *y_true,  \
                              const T *w, pynn_idx B, pynn_idx K, pynn_idx rsp, pynn_idx csp, \
                              pynn_idx rst, pynn_idx cst, pynn_idx sw, pynn_ctx ctx);         \
void pynn_softmax_categorical_crossentropy_backward_##SUF(T *dlogits, const T *logits,        \
                              const T *y_true, const T *w, pynn_idx B, pynn_idx K,            \
                              pynn_idx rsp, pynn_idx csp, pynn_idx rst, pynn_idx cst,         \
                              pynn_idx sw, pynn_ctx ctx);

PYNN_LOSSES_DECL(float, f32)
PYNN_LOSSES_DECL(double, f64)
#undef PYNN_LOSSES_DECL

#endif
