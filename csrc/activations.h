/* activations.h - elementwise activations (forward and backward) and the softmax family over
 * the last axis, plus the per-element math as static inline functions so that Dense (and later
 * convolution) apply them as a GEMM epilogue while the output is still in cache.
 *
 * Stable forms: sigmoid evaluates exp(-|x|) only (no overflow for large |x|); softplus is
 * max(x,0) + log1p(exp(-|x|)); exact GELU uses erfc (no cancellation in 1 + erf for x << 0);
 * softmax subtracts the row maximum. Every function here is branch-free on the data (ternaries
 * only) so the compiler may vectorize the loops that call them.
 */
#ifndef PYNN_ACTIVATIONS_H
#define PYNN_ACTIVATIONS_H
#include <math.h>
#include "pynn.h"

/* activations Dense can fuse: their derivative follows from the output y */
enum { PYNN_ACT_LINEAR = 0, PYNN_ACT_RELU = 1, PYNN_ACT_SIGMOID = 2, PYNN_ACT_TANH = 3 };

/* Per-element math for one dtype. T: float/double; SUF: f32/f64; F: the libm suffix (f or
 * nothing). Forward functions take x; backward ones take x and dy and return dx. */
#define PYNN_ACT_MATH(T, SUF, F)                                                            \
static inline T pynn_relu_##SUF(T x) { return x < 0 ? (T)0 : x; /* NaN passes through */ }  \
static inline T pynn_relu_grad_##SUF(T x, T dy) { return x > 0 ? dy : (T)0; }               \
static inline T pynn_leaky_relu_##SUF(T x, T a) { return x < 0 ? a * x : x; }               \
static inline T pynn_leaky_relu_grad_##SUF(T x, T dy, T a) { return x > 0 ? dy : a * dy; }  \
/* elu: x for x > 0, alpha * (exp(x) - 1) otherwise; expm1 keeps small |x| accurate */      \
static inline T pynn_elu_##SUF(T x, T a) { return x > 0 ? x : a * expm1##F(x); }            \
static inline T pynn_elu_grad_##SUF(T x, T dy, T a) { return x > 0 ? dy : dy * a * exp##F(x); } \
/* sigmoid: 1/(1+e) for x >= 0, e/(1+e) for x < 0, with e = exp(-|x|) in (0, 1] */          \
static inline T pynn_sigmoid_##SUF(T x) {                                                   \
    T e = exp##F(-fabs##F(x));                                                              \
    T r = (T)1 / ((T)1 + e);                                                                \
    return x < 0 ? e * r : r;                                                               \
}                                                                                           \
static inline T pynn_sigmoid_grad_##SUF(T x, T dy) {                                        \
    T s = pynn_sigmoid_##SUF(x);                                                            \
    return dy * s * ((T)1 - s);                                                             \
}                                                                                           \
static inline T pynn_tanh_##SUF(T x) { return tanh##F(x); }                                 \
static inline T pynn_tanh_grad_##SUF(T x, T dy) {                                           \
    T t = tanh##F(x);                                                                       \
    return dy * ((T)1 - t * t);                                                             \
}                                                                                           \
/* gelu (exact): x * Phi(x) = 0.5 x erfc(-x / sqrt 2); d/dx = Phi(x) + x phi(x) */          \
static inline T pynn_gelu_##SUF(T x) {                                                      \
    return (T)0.5 * x * erfc##F(-x * (T)0.70710678118654752440);                            \
}                                                                                           \
static inline T pynn_gelu_grad_##SUF(T x, T dy) {                                           \
    T cdf = (T)0.5 * erfc##F(-x * (T)0.70710678118654752440);                               \
    T pdf = (T)0.39894228040143267794 * exp##F((T)-0.5 * x * x);                            \
    return dy * (cdf + x * pdf);                                                            \
}                                                                                           \
/* gelu (tanh approximation): 0.5 x (1 + tanh(k0 (x + k1 x^3))) */                          \
static inline T pynn_gelu_tanh_##SUF(T x) {                                                 \
    T u = (T)0.79788456080286535588 * (x + (T)0.044715 * x * x * x);                        \
    return (T)0.5 * x * ((T)1 + tanh##F(u));                                                \
}                                                                                           \
static inline T pynn_gelu_tanh_grad_##SUF(T x, T dy) {                                      \
    T u = (T)0.79788456080286535588 * (x + (T)0.044715 * x * x * x);                        \
    T t = tanh##F(u);                                                                       \
    T du = (T)0.79788456080286535588 * ((T)1 + (T)(3 * 0.044715) * x * x);                  \
    return dy * ((T)0.5 * ((T)1 + t) + (T)0.5 * x * ((T)1 - t * t) * du);                   \
}                                                                                           \
/* softplus: log(1 + exp(x)) = max(x, 0) + log1p(exp(-|x|)); d/dx = sigmoid(x) */          \
static inline T pynn_softplus_##SUF(T x) {                                                  \
    return (x > 0 ? x : (T)0) + log1p##F(exp##F(-fabs##F(x)));                              \
}                                                                                           \
static inline T pynn_softplus_grad_##SUF(T x, T dy) { return dy * pynn_sigmoid_##SUF(x); }  \
/* silu / swish: x sigmoid(x); d/dx = s (1 + x (1 - s)) */                                  \
static inline T pynn_silu_##SUF(T x) { return x * pynn_sigmoid_##SUF(x); }                  \
static inline T pynn_silu_grad_##SUF(T x, T dy) {                                           \
    T s = pynn_sigmoid_##SUF(x);                                                            \
    return dy * s * ((T)1 + x * ((T)1 - s));                                                \
}                                                                                           \
/* Dense epilogue: act(z) and dz = dy * act'(z) written in terms of the output y */         \
static inline T pynn_act_apply_##SUF(int act, T z) {                                        \
    return act == PYNN_ACT_RELU ? pynn_relu_##SUF(z)                                        \
         : act == PYNN_ACT_SIGMOID ? pynn_sigmoid_##SUF(z)                                  \
         : act == PYNN_ACT_TANH ? pynn_tanh_##SUF(z) : z;                                   \
}                                                                                           \
static inline T pynn_act_grad_from_y_##SUF(int act, T y, T dy) {                            \
    return act == PYNN_ACT_RELU ? (y > 0 ? dy : (T)0)                                       \
         : act == PYNN_ACT_SIGMOID ? dy * y * ((T)1 - y)                                    \
         : act == PYNN_ACT_TANH ? dy * ((T)1 - y * y) : dy;                                 \
}

PYNN_ACT_MATH(float, f32, f)
PYNN_ACT_MATH(double, f64, )

/* Kernels. Elementwise ones take contiguous arrays of n elements; out may be x (forward) and
 * dx may be dy (backward). Softmax ones take R contiguous rows of N. */
#define PYNN_ACT_DECLS(T, SUF)                                                              \
void pynn_relu_forward_##SUF(T *out, const T *x, pynn_idx n, pynn_ctx ctx);                 \
void pynn_relu_backward_##SUF(T *dx, const T *x, const T *dy, pynn_idx n, pynn_ctx ctx);    \
void pynn_leaky_relu_forward_##SUF(T *out, const T *x, pynn_idx n, T alpha, pynn_ctx ctx);  \
void pynn_leaky_relu_backward_##SUF(T *dx, const T *x, const T *dy, pynn_idx n, T alpha,    \
                                    pynn_ctx ctx);                                          \
void pynn_elu_forward_##SUF(T *out, const T *x, pynn_idx n, T alpha, pynn_ctx ctx);         \
void pynn_elu_backward_##SUF(T *dx, const T *x, const T *dy, pynn_idx n, T alpha,           \
                             pynn_ctx ctx);                                                 \
void pynn_sigmoid_forward_##SUF(T *out, const T *x, pynn_idx n, pynn_ctx ctx);              \
void pynn_sigmoid_backward_##SUF(T *dx, const T *x, const T *dy, pynn_idx n, pynn_ctx ctx); \
void pynn_tanh_forward_##SUF(T *out, const T *x, pynn_idx n, pynn_ctx ctx);                 \
void pynn_tanh_backward_##SUF(T *dx, const T *x, const T *dy, pynn_idx n, pynn_ctx ctx);    \
void pynn_gelu_forward_##SUF(T *out, const T *x, pynn_idx n, int approximate, pynn_ctx ctx); \
void pynn_gelu_backward_##SUF(T *dx, const T *x, const T *dy, pynn_idx n, int approximate,  \
                              pynn_ctx ctx);                                                \
void pynn_softplus_forward_##SUF(T *out, const T *x, pynn_idx n, pynn_ctx ctx);             \
void pynn_softplus_backward_##SUF(T *dx, const T *x, const T *dy, pynn_idx n, pynn_ctx ctx); \
void pynn_silu_forward_##SUF(T *out, const T *x, pynn_idx n, pynn_ctx ctx);                 \
void pynn_silu_backward_##SUF(T *dx, const T *x, const T *dy, pynn_idx n, pynn_ctx ctx);    \
void pynn_softmax_forward_##SUF(T *out, const T *x, pynn_idx R, pynn_idx N, pynn_ctx ctx);  \
void pynn_softmax_backward_##SUF(T *dx, const T *y, const T *dy, pynn_idx R, pynn_idx N,    \
                                 pynn_ctx ctx);                                             \
void pynn_log_softmax_forward_##SUF(T *out, const T *x, pynn_idx R, pynn_idx N,             \
                                    pynn_ctx ctx);                                          \
void pynn_log_softmax_backward_##SUF(T *dx, const T *y, const T *dy, pynn_idx R,            \
                                     pynn_idx N, pynn_ctx ctx);

PYNN_ACT_DECLS(float, f32)
PYNN_ACT_DECLS(double, f64)
#endif
