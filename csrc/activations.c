/* activations.c - elementwise activation kernels (forward, backward) and softmax /
 * log_softmax over the last axis. The per-element math lives in activations.h.
 *
 * Parallel split: elementwise kernels cut the array into fixed chunks of PYNN_ACT_CHUNK
 * elements, handed out with schedule(static); each element depends only on itself, so any
 * thread count gives the same bits. Softmax rows are independent; each row's sum runs in a
 * fixed order (8 interleaved partial sums, then combined pairwise) chosen by N alone.
 *
 * Softmax conventions: a row whose entries are all -inf (fully masked) gives the uniform
 * distribution 1/N (log_softmax: -log N), the limit of equal logits, rather than 0/0 = NaN;
 * a NaN anywhere in a row makes that row NaN, as in NumPy.
 */
#include "activations.h"

#define PYNN_ACT_CHUNK 4096

/* for i in 0..n-1: BODY, over static chunks; COST: rough flops per element (thread choice) */
#define PYNN_EW_LOOP(COST, BODY)                                                            \
    int nt = pynn_threads_for(ctx, (double)n * (COST));                                     \
    pynn_idx nchunk = (n + PYNN_ACT_CHUNK - 1) / PYNN_ACT_CHUNK;                            \
    _Pragma("omp parallel for num_threads(nt) schedule(static) if(nt > 1)")                 \
    for (pynn_idx c = 0; c < nchunk; c++) {                                                 \
        pynn_idx i1 = PYNN_MIN(n, (c + 1) * PYNN_ACT_CHUNK);                                \
        for (pynn_idx i = c * PYNN_ACT_CHUNK; i < i1; i++) { BODY; }                        \
    }

#define PYNN_ACT_KERNELS(T, SUF)                                                            \
void pynn_relu_forward_##SUF(T *out, const T *x, pynn_idx n, pynn_ctx ctx) {                \
    /* out (n) = max(x, 0) */                                                               \
    PYNN_EW_LOOP(1, out[i] = pynn_relu_##SUF(x[i]))                                         \
}                                                                                           \
void pynn_relu_backward_##SUF(T *dx, const T *x, const T *dy, pynn_idx n, pynn_ctx ctx) {   \
    /* dx (n) = dy * (x > 0) */                                                             \
    PYNN_EW_LOOP(1, dx[i] = pynn_relu_grad_##SUF(x[i], dy[i]))                              \
}                                                                                           \
void pynn_leaky_relu_forward_##SUF(T *out, const T *x, pynn_idx n, T alpha, pynn_ctx ctx) { \
    /* out (n) = x if x >= 0 else alpha x */                                                \
    PYNN_EW_LOOP(1, out[i] = pynn_leaky_relu_##SUF(x[i], alpha))                            \
}                                                                                           \
void pynn_leaky_relu_backward_##SUF(T *dx, const T *x, const T *dy, pynn_idx n, T alpha,    \
                                    pynn_ctx ctx) {                                         \
    /* dx (n) = dy if x > 0 else alpha dy */                                                \
    PYNN_EW_LOOP(1, dx[i] = pynn_leaky_relu_grad_##SUF(x[i], dy[i], alpha))                 \
}                                                                                           \
void pynn_elu_forward_##SUF(T *out, const T *x, pynn_idx n, T alpha, pynn_ctx ctx) {        \
    /* out (n) = x if x > 0 else alpha (exp(x) - 1) */                                      \
    PYNN_EW_LOOP(20, out[i] = pynn_elu_##SUF(x[i], alpha))                                  \
}                                                                                           \
void pynn_elu_backward_##SUF(T *dx, const T *x, const T *dy, pynn_idx n, T alpha,           \
                             pynn_ctx ctx) {                                                \
    /* dx (n) = dy if x > 0 else dy alpha exp(x) */                                         \
    PYNN_EW_LOOP(20, dx[i] = pynn_elu_grad_##SUF(x[i], dy[i], alpha))                       \
}                                                                                           \
void pynn_sigmoid_forward_##SUF(T *out, const T *x, pynn_idx n, pynn_ctx ctx) {             \
    /* out (n) = 1 / (1 + exp(-x)) */                                                       \
    PYNN_EW_LOOP(20, out[i] = pynn_sigmoid_##SUF(x[i]))                                     \
}                                                                                           \
void pynn_sigmoid_backward_##SUF(T *dx, const T *x, const T *dy, pynn_idx n, pynn_ctx ctx) { \
    /* dx (n) = dy s (1 - s), s = sigmoid(x) */                                             \
    PYNN_EW_LOOP(20, dx[i] = pynn_sigmoid_grad_##SUF(x[i], dy[i]))                          \
}                                                                                           \
void pynn_tanh_forward_##SUF(T *out, const T *x, pynn_idx n, pynn_ctx ctx) {                \
    /* out (n) = tanh(x) */                                                                 \
    PYNN_EW_LOOP(20, out[i] = pynn_tanh_##SUF(x[i]))                                        \
}                                                                                           \
void pynn_tanh_backward_##SUF(T *dx, const T *x, const T *dy, pynn_idx n, pynn_ctx ctx) {   \
    /* dx (n) = dy (1 - tanh(x)^2) */                                                       \
    PYNN_EW_LOOP(20, dx[i] = pynn_tanh_grad_##SUF(x[i], dy[i]))                             \
}                                                                                           \
void pynn_gelu_forward_##SUF(T *out, const T *x, pynn_idx n, int approximate,               \
                             pynn_ctx ctx) {                                                \
    /* out (n) = x Phi(x), or its tanh approximation */                                     \
    if (approximate) {                                                                      \
        PYNN_EW_LOOP(30, out[i] = pynn_gelu_tanh_##SUF(x[i]))                               \
    } else {                                                                                \
        PYNN_EW_LOOP(30, out[i] = pynn_gelu_##SUF(x[i]))                                    \
    }                                                                                       \
}                                                                                           \
void pynn_gelu_backward_##SUF(T *dx, const T *x, const T *dy, pynn_idx n, int approximate,  \
                              pynn_ctx ctx) {                                               \
    /* dx (n) = dy gelu'(x) */                                                              \
    if (approximate) {                                                                      \
        PYNN_EW_LOOP(40, dx[i] = pynn_gelu_tanh_grad_##SUF(x[i], dy[i]))                    \
    } else {                                                                                \
        PYNN_EW_LOOP(40, dx[i] = pynn_gelu_grad_##SUF(x[i], dy[i]))                         \
    }                                                                                       \
}                                                                                           \
void pynn_softplus_forward_##SUF(T *out, const T *x, pynn_idx n, pynn_ctx ctx) {            \
    /* out (n) = max(x, 0) + log1p(exp(-|x|)) */                                            \
    PYNN_EW_LOOP(30, out[i] = pynn_softplus_##SUF(x[i]))                                    \
}                                                                                           \
void pynn_softplus_backward_##SUF(T *dx, const T *x, const T *dy, pynn_idx n,               \
                                  pynn_ctx ctx) {                                           \
    /* dx (n) = dy sigmoid(x) */                                                            \
    PYNN_EW_LOOP(20, dx[i] = pynn_softplus_grad_##SUF(x[i], dy[i]))                         \
}                                                                                           \
void pynn_silu_forward_##SUF(T *out, const T *x, pynn_idx n, pynn_ctx ctx) {                \
    /* out (n) = x sigmoid(x) */                                                            \
    PYNN_EW_LOOP(20, out[i] = pynn_silu_##SUF(x[i]))                                        \
}                                                                                           \
void pynn_silu_backward_##SUF(T *dx, const T *x, const T *dy, pynn_idx n, pynn_ctx ctx) {   \
    /* dx (n) = dy s (1 + x (1 - s)), s = sigmoid(x) */                                     \
    PYNN_EW_LOOP(20, dx[i] = pynn_silu_grad_##SUF(x[i], dy[i]))                             \
}                                                                                           \
                                                                                            \
/* max of a row; NaN entries are skipped here and surface through exp(NaN - m) later */     \
static inline T pynn_row_max_##SUF(const T *x, pynn_idx N) {                                \
    T m = -(T)INFINITY;                                                                     \
    for (pynn_idx j = 0; j < N; j++) m = x[j] > m ? x[j] : m;                               \
    return m;                                                                               \
}                                                                                           \
/* sum of a row in a fixed order: 8 interleaved partial sums (vectorizable), then a tree */ \
static inline T pynn_row_sum_##SUF(const T *x, pynn_idx N) {                                \
    T acc[8] = {0, 0, 0, 0, 0, 0, 0, 0};                                                    \
    pynn_idx j = 0;                                                                         \
    for (; j + 8 <= N; j += 8)                                                              \
        for (int k = 0; k < 8; k++) acc[k] += x[j + k];                                     \
    for (int k = 0; j < N; j++, k++) acc[k] += x[j];                                        \
    return ((acc[0] + acc[4]) + (acc[2] + acc[6])) + ((acc[1] + acc[5]) + (acc[3] + acc[7])); \
}                                                                                           \
                                                                                            \
void pynn_softmax_forward_##SUF(T *out, const T *x, pynn_idx R, pynn_idx N, pynn_ctx ctx) { \
    /* out (R,N) = exp(x - max_j x) / sum_j exp(x - max_j x), per row; out may be x */      \
    int nt = pynn_threads_for(ctx, (double)R * (double)N * 20);                             \
    _Pragma("omp parallel for num_threads(nt) schedule(static) if(nt > 1)")                 \
    for (pynn_idx r = 0; r < R; r++) {                                                      \
        const T *xr = x + r * N;                                                            \
        T *yr = out + r * N;                                                                \
        T m = pynn_row_max_##SUF(xr, N);                                                    \
        if (m == -(T)INFINITY) {                                                            \
            for (pynn_idx j = 0; j < N; j++) yr[j] = (T)1 / (T)N;                           \
            continue;                                                                       \
        }                                                                                   \
        for (pynn_idx j = 0; j < N; j++) yr[j] = exp##SUF##_(xr[j] - m);                    \
        T inv = (T)1 / pynn_row_sum_##SUF(yr, N);                                           \
        for (pynn_idx j = 0; j < N; j++) yr[j] *= inv;                                      \
    }                                                                                       \
}                                                                                           \
void pynn_softmax_backward_##SUF(T *dx, const T *y, const T *dy, pynn_idx R, pynn_idx N,    \
                                 pynn_ctx ctx) {                                            \
    /* dx (R,N) = y (dy - sum_j y dy), per row, from the forward output y; dx may be dy */  \
    int nt = pynn_threads_for(ctx, (double)R * (double)N * 4);                              \
    _Pragma("omp parallel for num_threads(nt) schedule(static) if(nt > 1)")                 \
    for (pynn_idx r = 0; r < R; r++) {                                                      \
        const T *yr = y + r * N, *gr = dy + r * N;                                          \
        T acc[8] = {0, 0, 0, 0, 0, 0, 0, 0};                                                \
        pynn_idx j = 0;                                                                     \
        for (; j + 8 <= N; j += 8)                                                          \
            for (int k = 0; k < 8; k++) acc[k] += yr[j + k] * gr[j + k];                    \
        for (int k = 0; j < N; j++, k++) acc[k] += yr[j] * gr[j];                           \
        T dot = ((acc[0] + acc[4]) + (acc[2] + acc[6])) + ((acc[1] + acc[5]) + (acc[3] + acc[7])); \
        T *dr = dx + r * N;                                                                 \
        for (j = 0; j < N; j++) dr[j] = yr[j] * (gr[j] - dot);                              \
    }                                                                                       \
}                                                                                           \
void pynn_log_softmax_forward_##SUF(T *out, const T *x, pynn_idx R, pynn_idx N,             \
                                    pynn_ctx ctx) {                                         \
    /* out (R,N) = x - max_j x - log sum_j exp(x - max_j x), per row; out may be x */       \
    int nt = pynn_threads_for(ctx, (double)R * (double)N * 20);                             \
    _Pragma("omp parallel for num_threads(nt) schedule(static) if(nt > 1)")                 \
    for (pynn_idx r = 0; r < R; r++) {                                                      \
        const T *xr = x + r * N;                                                            \
        T *yr = out + r * N;                                                                \
        T m = pynn_row_max_##SUF(xr, N);                                                    \
        if (m == -(T)INFINITY) {                                                            \
            T v = -log##SUF##_((T)N);                                                       \
            for (pynn_idx j = 0; j < N; j++) yr[j] = v;                                     \
            continue;                                                                       \
        }                                                                                   \
        T acc[8] = {0, 0, 0, 0, 0, 0, 0, 0};                                                \
        pynn_idx j = 0;                                                                     \
        for (; j + 8 <= N; j += 8)                                                          \
            for (int k = 0; k < 8; k++) acc[k] += exp##SUF##_(xr[j + k] - m);               \
        for (int k = 0; j < N; j++, k++) acc[k] += exp##SUF##_(xr[j] - m);                  \
        T s = ((acc[0] + acc[4]) + (acc[2] + acc[6])) + ((acc[1] + acc[5]) + (acc[3] + acc[7])); \
        T ls = log##SUF##_(s);                                                              \
        for (j = 0; j < N; j++) yr[j] = (xr[j] - m) - ls;                                   \
    }                                                                                       \
}                                                                                           \
void pynn_log_softmax_backward_##SUF(T *dx, const T *y, const T *dy, pynn_idx R,            \
                                     pynn_idx N, pynn_ctx ctx) {                            \
    /* dx (R,N) = dy - exp(y) sum_j dy, per row, from the forward output y; dx may be dy */ \
    int nt = pynn_threads_for(ctx, (double)R * (double)N * 20);                             \
    _Pragma("omp parallel for num_threads(nt) schedule(static) if(nt > 1)")                 \
    for (pynn_idx r = 0; r < R; r++) {                                                      \
        const T *yr = y + r * N, *gr = dy + r * N;                                          \
        T s = pynn_row_sum_##SUF(gr, N);                                                    \
        T *dr = dx + r * N;                                                                 \
        for (pynn_idx j = 0; j < N; j++) dr[j] = gr[j] - exp##SUF##_(yr[j]) * s;            \
    }                                                                                       \
}

/* scalar libm entry points by dtype suffix, for the softmax bodies above */
#define expf32_ expf
#define expf64_ exp
#define logf32_ logf
#define logf64_ log

PYNN_ACT_KERNELS(float, f32)
PYNN_ACT_KERNELS(double, f64)
