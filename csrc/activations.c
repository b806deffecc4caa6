/* activations.c - elementwise activation kernels (forward, backward) and softmax /
 * log_softmax over the last axis. The per-element math lives in activations.h.
 *
 * Parallel split: elementwise kernels cut the array into fixed chunks of PYNN_ACT_CHUNK
 * elements, handed out with schedule(static); each element depends only on itself, so any
 * thread count gives the same bits. Softmax rows are independent; each row's max and sum run
 * in a fixed order (16 interleaved partial results, then a tree) chosen by N alone.
 *
 * Softmax conventions: a row whose entries are all -inf (fully masked) gives the uniform
 * distribution 1/N (log_softmax: -log N), the limit of equal logits, rather than 0/0 = NaN;
 * a NaN anywhere in a row makes that row NaN, as in NumPy.
 */
#include "activations.h"

#define PYNN_ACT_CHUNK 4096

/* Each elementwise op is compiled three times: portable, and with AVX2 / AVX-512 enabled by
 * function target attributes (the inline math of activations.h is branch-free, so these loops
 * vectorize); the kernel picks one by ctx.isa. `omp simd` states that the loop has no
 * cross-iteration dependence, so in-place calls (o == a) vectorize without overlap checks. */
#if defined(__GNUC__) && (defined(__x86_64__) || defined(__i386__))
#define PYNN_TARGET_AVX2 __attribute__((target("avx2,fma")))
#define PYNN_TARGET_AVX512 __attribute__((target("avx512f,avx512dq,avx512bw,avx512vl,fma")))
#define PYNN_HAVE_TARGETS 1
#else
#define PYNN_HAVE_TARGETS 0
#endif

/* o[i] = EXPR for i < n; EXPR may use a[i], b[i] (dy) and alpha */
#define PYNN_EW_VARIANT(T, NAME, SFX, ATTR, EXPR)                                           \
ATTR static void NAME##_##SFX(T *o, const T *a, const T *b, T alpha, pynn_idx n) {          \
    (void)b; (void)alpha;                                                                   \
    _Pragma("omp simd")                                                                     \
    for (pynn_idx i = 0; i < n; i++) o[i] = EXPR;                                           \
}
#if PYNN_HAVE_TARGETS
#define PYNN_EW_OP(T, NAME, EXPR)                                                           \
    PYNN_EW_VARIANT(T, NAME, generic, , EXPR)                                               \
    PYNN_EW_VARIANT(T, NAME, avx2, PYNN_TARGET_AVX2, EXPR)                                  \
    PYNN_EW_VARIANT(T, NAME, avx512, PYNN_TARGET_AVX512, EXPR)                              \
    static const pynn_ew_fn_##T NAME##_table[3] = {NAME##_generic, NAME##_avx2, NAME##_avx512};
#else
#define PYNN_EW_OP(T, NAME, EXPR)                                                           \
    PYNN_EW_VARIANT(T, NAME, generic, , EXPR)                                               \
    static const pynn_ew_fn_##T NAME##_table[3] = {NAME##_generic, NAME##_generic,          \
                                                   NAME##_generic};
#endif

/* the same with EXPR_FMA in the AVX2 / AVX-512 variants (float GELU, activations.h) */
#if PYNN_HAVE_TARGETS
#define PYNN_EW_OP_FMA(T, NAME, EXPR, EXPR_FMA)                                             \
    PYNN_EW_VARIANT(T, NAME, generic, , EXPR)                                               \
    PYNN_EW_VARIANT(T, NAME, avx2, PYNN_TARGET_AVX2, EXPR_FMA)                              \
    PYNN_EW_VARIANT(T, NAME, avx512, PYNN_TARGET_AVX512, EXPR_FMA)                          \
    static const pynn_ew_fn_##T NAME##_table[3] = {NAME##_generic, NAME##_avx2, NAME##_avx512};
#else
#define PYNN_EW_OP_FMA(T, NAME, EXPR, EXPR_FMA) PYNN_EW_OP(T, NAME, EXPR)
#endif

typedef void (*pynn_ew_fn_float)(float *, const float *, const float *, float, pynn_idx);
typedef void (*pynn_ew_fn_double)(double *, const double *, const double *, double, pynn_idx);

/* run fn over n elements in fixed chunks; COST: rough flops per element (thread choice) */
#define PYNN_EW_DRIVER(T, SUF)                                                              \
static void pynn_ew_run_##SUF(const pynn_ew_fn_##T *table, T *o, const T *a, const T *b,    \
                              T alpha, pynn_idx n, double cost, pynn_ctx ctx) {             \
    pynn_ew_fn_##T fn = table[ctx.isa < 0 ? 0 : ctx.isa > 2 ? 2 : ctx.isa];                 \
    int nt = pynn_threads_for(ctx, (double)n * cost);                                       \
    (void)nt; /* unused in a build without OpenMP */                                        \
    pynn_idx nchunk = (n + PYNN_ACT_CHUNK - 1) / PYNN_ACT_CHUNK;                            \
    _Pragma("omp parallel for num_threads(nt) schedule(static) if(nt > 1)")                 \
    for (pynn_idx c = 0; c < nchunk; c++) {                                                 \
        pynn_idx i0 = c * PYNN_ACT_CHUNK, m = PYNN_MIN(n - i0, (pynn_idx)PYNN_ACT_CHUNK);   \
        fn(o + i0, a + i0, b ? b + i0 : NULL, alpha, m);                                    \
    }                                                                                       \
}

/* o[i] = FN(a[i], &g[i]): an activation and its derivative in one pass */
#define PYNN_EW2_VARIANT(T, NAME, SFX, ATTR, FN)                                            \
ATTR static void NAME##_##SFX(T *o, T *g, const T *a, pynn_idx n) {                         \
    _Pragma("omp simd")                                                                     \
    for (pynn_idx i = 0; i < n; i++) o[i] = FN(a[i], &g[i]);                                \
}
#if PYNN_HAVE_TARGETS
#define PYNN_EW2_OP(T, NAME, FN)                                                            \
    PYNN_EW2_VARIANT(T, NAME, generic, , FN)                                                \
    PYNN_EW2_VARIANT(T, NAME, avx2, PYNN_TARGET_AVX2, FN)                                   \
    PYNN_EW2_VARIANT(T, NAME, avx512, PYNN_TARGET_AVX512, FN)                               \
    static const pynn_ew2_fn_##T NAME##_table[3] = {NAME##_generic, NAME##_avx2,            \
                                                    NAME##_avx512};
#else
#define PYNN_EW2_OP(T, NAME, FN)                                                            \
    PYNN_EW2_VARIANT(T, NAME, generic, , FN)                                                \
    static const pynn_ew2_fn_##T NAME##_table[3] = {NAME##_generic, NAME##_generic,         \
                                                    NAME##_generic};
#endif
#if PYNN_HAVE_TARGETS
#define PYNN_EW2_OP_FMA(T, NAME, FN, FN_FMA)                                                \
    PYNN_EW2_VARIANT(T, NAME, generic, , FN)                                                \
    PYNN_EW2_VARIANT(T, NAME, avx2, PYNN_TARGET_AVX2, FN_FMA)                               \
    PYNN_EW2_VARIANT(T, NAME, avx512, PYNN_TARGET_AVX512, FN_FMA)                           \
    static const pynn_ew2_fn_##T NAME##_table[3] = {NAME##_generic, NAME##_avx2,            \
                                                    NAME##_avx512};
#else
#define PYNN_EW2_OP_FMA(T, NAME, FN, FN_FMA) PYNN_EW2_OP(T, NAME, FN)
#endif
typedef void (*pynn_ew2_fn_float)(float *, float *, const float *, pynn_idx);
typedef void (*pynn_ew2_fn_double)(double *, double *, const double *, pynn_idx);

#define PYNN_EW2_DRIVER(T, SUF)                                                             \
static void pynn_ew2_run_##SUF(const pynn_ew2_fn_##T *table, T *o, T *g, const T *a,        \
                               pynn_idx n, double cost, pynn_ctx ctx) {                     \
    pynn_ew2_fn_##T fn = table[ctx.isa < 0 ? 0 : ctx.isa > 2 ? 2 : ctx.isa];                \
    int nt = pynn_threads_for(ctx, (double)n * cost);                                       \
    (void)nt;                                                                               \
    pynn_idx nchunk = (n + PYNN_ACT_CHUNK - 1) / PYNN_ACT_CHUNK;                            \
    _Pragma("omp parallel for num_threads(nt) schedule(static) if(nt > 1)")                 \
    for (pynn_idx c = 0; c < nchunk; c++) {                                                 \
        pynn_idx i0 = c * PYNN_ACT_CHUNK, m = PYNN_MIN(n - i0, (pynn_idx)PYNN_ACT_CHUNK);   \
        fn(o + i0, g + i0, a + i0, m);                                                      \
    }                                                                                       \
}

#define PYNN_ACT_OPS(T, SUF)                                                                \
PYNN_EW_DRIVER(T, SUF)                                                                      \
PYNN_EW2_DRIVER(T, SUF)                                                                     \
PYNN_EW2_OP_FMA(T, gelu_fg_##SUF, pynn_gelu_both_##SUF, pynn_gelu_fma_both_##SUF)            \
PYNN_EW2_OP(T, gelu_tanh_fg_##SUF, pynn_gelu_tanh_both_##SUF)                               \
PYNN_EW_OP(T, relu_f_##SUF, pynn_relu_##SUF(a[i]))                                          \
PYNN_EW_OP(T, relu_b_##SUF, pynn_relu_grad_##SUF(a[i], b[i]))                               \
PYNN_EW_OP(T, leaky_relu_f_##SUF, pynn_leaky_relu_##SUF(a[i], alpha))                       \
PYNN_EW_OP(T, leaky_relu_b_##SUF, pynn_leaky_relu_grad_##SUF(a[i], b[i], alpha))            \
PYNN_EW_OP(T, elu_f_##SUF, pynn_elu_##SUF(a[i], alpha))                                     \
PYNN_EW_OP(T, elu_b_##SUF, pynn_elu_grad_##SUF(a[i], b[i], alpha))                          \
PYNN_EW_OP(T, sigmoid_f_##SUF, pynn_sigmoid_##SUF(a[i]))                                    \
PYNN_EW_OP(T, sigmoid_b_##SUF, pynn_sigmoid_grad_##SUF(a[i], b[i]))                         \
PYNN_EW_OP(T, tanh_f_##SUF, pynn_tanh_##SUF(a[i]))                                          \
PYNN_EW_OP(T, tanh_b_##SUF, pynn_tanh_grad_##SUF(a[i], b[i]))                               \
PYNN_EW_OP_FMA(T, gelu_f_##SUF, pynn_gelu_##SUF(a[i]), pynn_gelu_fma_##SUF(a[i]))           \
PYNN_EW_OP_FMA(T, gelu_b_##SUF, pynn_gelu_grad_##SUF(a[i], b[i]),                           \
               pynn_gelu_fma_grad_##SUF(a[i], b[i]))                                        \
PYNN_EW_OP(T, gelu_tanh_f_##SUF, pynn_gelu_tanh_##SUF(a[i]))                                \
PYNN_EW_OP(T, gelu_tanh_b_##SUF, pynn_gelu_tanh_grad_##SUF(a[i], b[i]))                     \
PYNN_EW_OP(T, softplus_f_##SUF, pynn_softplus_##SUF(a[i]))                                  \
PYNN_EW_OP(T, softplus_b_##SUF, pynn_softplus_grad_##SUF(a[i], b[i]))                       \
PYNN_EW_OP(T, silu_f_##SUF, pynn_silu_##SUF(a[i]))                                          \
PYNN_EW_OP(T, silu_b_##SUF, pynn_silu_grad_##SUF(a[i], b[i]))                             \
PYNN_EW_OP(T, grad_mul_##SUF, b[i] * a[i])                                                  \
PYNN_EW_OP(T, add_##SUF, a[i] + b[i])

#define PYNN_ACT_KERNELS(T, SUF)                                                            \
void pynn_grad_mul_##SUF(T *dx, const T *grad, const T *dy, pynn_idx n, pynn_ctx ctx) {      \
    /* dx (n) = dy * grad: the backward of an activation whose forward stored its derivative \
     * (gelu_forward_grad) */                                                               \
    pynn_ew_run_##SUF(grad_mul_##SUF##_table, dx, grad, dy, 0, n, 1, ctx);                  \
}                                                                                           \
void pynn_relu_forward_##SUF(T *out, const T *x, pynn_idx n, pynn_ctx ctx) {                \
    /* out (n) = max(x, 0) */                                                               \
    pynn_ew_run_##SUF(relu_f_##SUF##_table, out, x, NULL, 0, n, 1, ctx);                    \
}                                                                                           \
void pynn_relu_backward_##SUF(T *dx, const T *x, const T *dy, pynn_idx n, pynn_ctx ctx) {   \
    /* dx (n) = dy * (x > 0) */                                                             \
    pynn_ew_run_##SUF(relu_b_##SUF##_table, dx, x, dy, 0, n, 1, ctx);                       \
}                                                                                           \
void pynn_leaky_relu_forward_##SUF(T *out, const T *x, pynn_idx n, T alpha, pynn_ctx ctx) { \
    /* out (n) = x if x >= 0 else alpha x */                                                \
    pynn_ew_run_##SUF(leaky_relu_f_##SUF##_table, out, x, NULL, alpha, n, 1, ctx);          \
}                                                                                           \
void pynn_leaky_relu_backward_##SUF(T *dx, const T *x, const T *dy, pynn_idx n, T alpha,    \
                                    pynn_ctx ctx) {                                         \
    /* dx (n) = dy if x > 0 else alpha dy */                                                \
    pynn_ew_run_##SUF(leaky_relu_b_##SUF##_table, dx, x, dy, alpha, n, 1, ctx);             \
}                                                                                           \
void pynn_elu_forward_##SUF(T *out, const T *x, pynn_idx n, T alpha, pynn_ctx ctx) {        \
    /* out (n) = x if x > 0 else alpha (exp(x) - 1) */                                      \
    pynn_ew_run_##SUF(elu_f_##SUF##_table, out, x, NULL, alpha, n, 20, ctx);                \
}                                                                                           \
void pynn_elu_backward_##SUF(T *dx, const T *x, const T *dy, pynn_idx n, T alpha,           \
                             pynn_ctx ctx) {                                                \
    /* dx (n) = dy if x > 0 else dy alpha exp(x) */                                         \
    pynn_ew_run_##SUF(elu_b_##SUF##_table, dx, x, dy, alpha, n, 10, ctx);                   \
}                                                                                           \
void pynn_sigmoid_forward_##SUF(T *out, const T *x, pynn_idx n, pynn_ctx ctx) {             \
    /* out (n) = 1 / (1 + exp(-x)) */                                                       \
    pynn_ew_run_##SUF(sigmoid_f_##SUF##_table, out, x, NULL, 0, n, 10, ctx);                \
}                                                                                           \
void pynn_sigmoid_backward_##SUF(T *dx, const T *x, const T *dy, pynn_idx n, pynn_ctx ctx) { \
    /* dx (n) = dy s (1 - s), s = sigmoid(x) */                                             \
    pynn_ew_run_##SUF(sigmoid_b_##SUF##_table, dx, x, dy, 0, n, 10, ctx);                   \
}                                                                                           \
void pynn_tanh_forward_##SUF(T *out, const T *x, pynn_idx n, pynn_ctx ctx) {                \
    /* out (n) = tanh(x) */                                                                 \
    pynn_ew_run_##SUF(tanh_f_##SUF##_table, out, x, NULL, 0, n, 10, ctx);                   \
}                                                                                           \
void pynn_tanh_backward_##SUF(T *dx, const T *x, const T *dy, pynn_idx n, pynn_ctx ctx) {   \
    /* dx (n) = dy (1 - tanh(x)^2) */                                                       \
    pynn_ew_run_##SUF(tanh_b_##SUF##_table, dx, x, dy, 0, n, 10, ctx);                      \
}                                                                                           \
void pynn_gelu_forward_##SUF(T *out, const T *x, pynn_idx n, int approximate,               \
                             pynn_ctx ctx) {                                                \
    /* out (n) = x Phi(x), or its tanh approximation */                                     \
    pynn_ew_run_##SUF(approximate ? gelu_tanh_f_##SUF##_table : gelu_f_##SUF##_table,       \
                      out, x, NULL, 0, n, 30, ctx);                                         \
}                                                                                           \
void pynn_gelu_forward_grad_##SUF(T *out, T *grad, const T *x, pynn_idx n, int approximate,  \
                                  pynn_ctx ctx) {                                           \
    /* out (n) = gelu(x), grad (n) = gelu'(x): the backward becomes dy * grad */            \
    pynn_ew2_run_##SUF(approximate ? gelu_tanh_fg_##SUF##_table : gelu_fg_##SUF##_table,    \
                       out, grad, x, n, 40, ctx);                                           \
}                                                                                           \
void pynn_gelu_backward_##SUF(T *dx, const T *x, const T *dy, pynn_idx n, int approximate,  \
                              pynn_ctx ctx) {                                               \
    /* dx (n) = dy gelu'(x) */                                                              \
    pynn_ew_run_##SUF(approximate ? gelu_tanh_b_##SUF##_table : gelu_b_##SUF##_table,       \
                      dx, x, dy, 0, n, 40, ctx);                                            \
}                                                                                           \
void pynn_softplus_forward_##SUF(T *out, const T *x, pynn_idx n, pynn_ctx ctx) {            \
    /* out (n) = max(x, 0) + log1p(exp(-|x|)) */                                            \
    pynn_ew_run_##SUF(softplus_f_##SUF##_table, out, x, NULL, 0, n, 30, ctx);               \
}                                                                                           \
void pynn_softplus_backward_##SUF(T *dx, const T *x, const T *dy, pynn_idx n,               \
                                  pynn_ctx ctx) {                                           \
    /* dx (n) = dy sigmoid(x) */                                                            \
    pynn_ew_run_##SUF(softplus_b_##SUF##_table, dx, x, dy, 0, n, 10, ctx);                  \
}                                                                                           \
void pynn_silu_forward_##SUF(T *out, const T *x, pynn_idx n, pynn_ctx ctx) {                \
    /* out (n) = x sigmoid(x) */                                                            \
    pynn_ew_run_##SUF(silu_f_##SUF##_table, out, x, NULL, 0, n, 10, ctx);                   \
}                                                                                           \
void pynn_silu_backward_##SUF(T *dx, const T *x, const T *dy, pynn_idx n, pynn_ctx ctx) {   \
    /* dx (n) = dy s (1 + x (1 - s)), s = sigmoid(x) */                                     \
    pynn_ew_run_##SUF(silu_b_##SUF##_table, dx, x, dy, 0, n, 10, ctx);                      \
}                                                                                           \
void pynn_mul_block_##SUF(T *y, pynn_idx rsy, const T *g, pynn_idx rsg, pynn_idx m,         \
                          pynn_idx n, int isa) {                                            \
    /* rows i < m, columns j < n: y = y * g (grad_mul's loop and order, y as its dy) */     \
    const int k = isa < 0 ? 0 : isa > 2 ? 2 : isa;                                          \
    for (pynn_idx i = 0; i < m; i++)                                                        \
        grad_mul_##SUF##_table[k](y + i * rsy, g + i * rsg, y + i * rsy, 0, n);             \
}                                                                                           \
void pynn_act_block_##SUF(int act, T *y, pynn_idx rsy, T *g, pynn_idx rsg, const T *b,      \
                          const T *res, pynn_idx rsr, pynn_idx m, pynn_idx n, int isa) {    \
    /* rows i < m, columns j < n, on the calling thread (a fused GEMM's epilogue, dense.c): \
     * y = act(y + b[j]), then + res; GELU also writes g = gelu'(y + b[j]). Each step on a  \
     * row is one call of the vector loops of the whole-array kernels above, picked by isa  \
     * (a linear layer: (y + b) + res, as dense.c's former pass computed it). */            \
    const int k = isa < 0 ? 0 : isa > 2 ? 2 : isa;                                          \
    for (pynn_idx i = 0; i < m; i++) {                                                      \
        T *yr = y + i * rsy;                                                                \
        const T *rr = res ? res + i * rsr : NULL;                                           \
        if (b) add_##SUF##_table[k](yr, yr, b, 0, n);                                       \
        switch (act) {                                                                      \
        case PYNN_ACT_RELU: relu_f_##SUF##_table[k](yr, yr, NULL, 0, n); break;             \
        case PYNN_ACT_SIGMOID: sigmoid_f_##SUF##_table[k](yr, yr, NULL, 0, n); break;       \
        case PYNN_ACT_TANH: tanh_f_##SUF##_table[k](yr, yr, NULL, 0, n); break;             \
        case PYNN_ACT_GELU:                                                                 \
            if (g) gelu_fg_##SUF##_table[k](yr, g + i * rsg, yr, n);                        \
            else gelu_f_##SUF##_table[k](yr, yr, NULL, 0, n);                               \
            break;                                                                          \
        case PYNN_ACT_GELU_TANH:                                                            \
            if (g) gelu_tanh_fg_##SUF##_table[k](yr, g + i * rsg, yr, n);                   \
            else gelu_tanh_f_##SUF##_table[k](yr, yr, NULL, 0, n);                          \
            break;                                                                          \
        default: break;                                                                     \
        }                                                                                   \
        if (rr) add_##SUF##_table[k](yr, yr, rr, 0, n);                                     \
    }                                                                                       \
}

#if defined(__GNUC__)
#define PYNN_INLINE static inline __attribute__((always_inline))
#else
#define PYNN_INLINE static inline
#endif

/* Row kernels of the softmax family. Reductions over a row use 16 interleaved partial
 * results (vectorizable at every width) combined in a fixed tree: the order depends on N only. */
#define PYNN_ROW_MATH(T, SUF)                                                               \
/* max of a row; NaN entries are skipped here and surface through exp(NaN - m) later */     \
PYNN_INLINE T pynn_row_max_##SUF(const T *x, pynn_idx N) {                                  \
    T acc[16];                                                                              \
    for (int k = 0; k < 16; k++) acc[k] = -(T)INFINITY;                                     \
    pynn_idx j = 0;                                                                         \
    for (; j + 16 <= N; j += 16)                                                            \
        for (int k = 0; k < 16; k++) acc[k] = x[j + k] > acc[k] ? x[j + k] : acc[k];        \
    for (int k = 0; j < N; j++, k++) acc[k] = x[j] > acc[k] ? x[j] : acc[k];                \
    for (int w = 8; w >= 1; w /= 2)                                                         \
        for (int k = 0; k < w; k++) acc[k] = acc[k + w] > acc[k] ? acc[k + w] : acc[k];     \
    return acc[0];                                                                          \
}                                                                                           \
/* sum of a row, or of exp(x - m) when EXPM is 1, or of x * y when y != NULL */             \
PYNN_INLINE T pynn_row_sum_##SUF(const T *x, const T *y, T m, int expm, pynn_idx N) {       \
    T acc[16];                                                                              \
    for (int k = 0; k < 16; k++) acc[k] = 0;                                                \
    pynn_idx j = 0;                                                                         \
    if (expm) {                                                                             \
        for (; j + 16 <= N; j += 16)                                                        \
            for (int k = 0; k < 16; k++) acc[k] += pynn_exp_##SUF(x[j + k] - m);            \
        for (int k = 0; j < N; j++, k++) acc[k] += pynn_exp_##SUF(x[j] - m);                \
    } else if (y) {                                                                         \
        for (; j + 16 <= N; j += 16)                                                        \
            for (int k = 0; k < 16; k++) acc[k] += x[j + k] * y[j + k];                     \
        for (int k = 0; j < N; j++, k++) acc[k] += x[j] * y[j];                             \
    } else {                                                                                \
        for (; j + 16 <= N; j += 16)                                                        \
            for (int k = 0; k < 16; k++) acc[k] += x[j + k];                                \
        for (int k = 0; j < N; j++, k++) acc[k] += x[j];                                    \
    }                                                                                       \
    for (int w = 8; w >= 1; w /= 2)                                                         \
        for (int k = 0; k < w; k++) acc[k] += acc[k + w];                                   \
    return acc[0];                                                                          \
}                                                                                           \
/* y (N) = softmax(x); a row of all -inf (fully masked) gives 1/N; y may be x */            \
PYNN_INLINE void pynn_softmax_row_##SUF(T *y, const T *x, const T *unused, pynn_idx N) {    \
    (void)unused;                                                                           \
    T m = pynn_row_max_##SUF(x, N);                                                         \
    if (m == -(T)INFINITY) {            /* all -inf: 1/N; -inf and NaN only: NaN */         \
        T v = (T)1 / (T)N;                                                                  \
        for (pynn_idx j = 0; j < N; j++) v = x[j] != x[j] ? x[j] : v;                       \
        for (pynn_idx j = 0; j < N; j++) y[j] = v;                                          \
        return;                                                                             \
    }                                                                                       \
    _Pragma("omp simd")                                                                     \
    for (pynn_idx j = 0; j < N; j++) y[j] = pynn_exp_##SUF(x[j] - m);                       \
    T inv = (T)1 / pynn_row_sum_##SUF(y, NULL, 0, 0, N);                                    \
    for (pynn_idx j = 0; j < N; j++) y[j] *= inv;                                           \
}                                                                                           \
/* dx (N) = y (dy - sum y dy); dx may be dy */                                              \
PYNN_INLINE void pynn_softmax_grad_row_##SUF(T *dx, const T *y, const T *dy, pynn_idx N) {  \
    T dot = pynn_row_sum_##SUF(y, dy, 0, 0, N);                                             \
    _Pragma("omp simd")                                                                     \
    for (pynn_idx j = 0; j < N; j++) dx[j] = y[j] * (dy[j] - dot);                          \
}                                                                                           \
/* y (N) = (x - m) - log sum exp(x - m), m = max x; all -inf gives -log N; y may be x */    \
PYNN_INLINE void pynn_log_softmax_row_##SUF(T *y, const T *x, const T *unused, pynn_idx N) { \
    (void)unused;                                                                           \
    T m = pynn_row_max_##SUF(x, N);                                                         \
    if (m == -(T)INFINITY) {            /* all -inf: -log N; -inf and NaN only: NaN */      \
        T v = -log##SUF##_((T)N);                                                           \
        for (pynn_idx j = 0; j < N; j++) v = x[j] != x[j] ? x[j] : v;                       \
        for (pynn_idx j = 0; j < N; j++) y[j] = v;                                          \
        return;                                                                             \
    }                                                                                       \
    T ls = log##SUF##_(pynn_row_sum_##SUF(x, NULL, m, 1, N));                               \
    _Pragma("omp simd")                                                                     \
    for (pynn_idx j = 0; j < N; j++) y[j] = (x[j] - m) - ls;                                \
}                                                                                           \
/* dx (N) = dy - exp(y) sum dy; dx may be dy */                                             \
PYNN_INLINE void pynn_log_softmax_grad_row_##SUF(T *dx, const T *y, const T *dy,            \
                                                 pynn_idx N) {                              \
    T s = pynn_row_sum_##SUF(dy, NULL, 0, 0, N);                                            \
    _Pragma("omp simd")                                                                     \
    for (pynn_idx j = 0; j < N; j++) dx[j] = dy[j] - pynn_exp_##SUF(y[j]) * s;              \
}

/* per-ISA copies of a row function FN(o, a, b, N), in a table indexed by ctx.isa */
#define PYNN_ROW_VARIANT(T, NAME, SFX, ATTR, FN)                                            \
ATTR static void NAME##_##SFX(T *o, const T *a, const T *b, pynn_idx N) { FN(o, a, b, N); }
#if PYNN_HAVE_TARGETS
#define PYNN_ROW_OP(T, NAME, FN)                                                            \
    PYNN_ROW_VARIANT(T, NAME, generic, , FN)                                                \
    PYNN_ROW_VARIANT(T, NAME, avx2, PYNN_TARGET_AVX2, FN)                                   \
    PYNN_ROW_VARIANT(T, NAME, avx512, PYNN_TARGET_AVX512, FN)                               \
    static const pynn_row_fn_##T NAME##_table[3] = {NAME##_generic, NAME##_avx2, NAME##_avx512};
#else
#define PYNN_ROW_OP(T, NAME, FN)                                                            \
    PYNN_ROW_VARIANT(T, NAME, generic, , FN)                                                \
    static const pynn_row_fn_##T NAME##_table[3] = {NAME##_generic, NAME##_generic,         \
                                                    NAME##_generic};
#endif

typedef void (*pynn_row_fn_float)(float *, const float *, const float *, pynn_idx);
typedef void (*pynn_row_fn_double)(double *, const double *, const double *, pynn_idx);

#define PYNN_SOFTMAX_KERNELS(T, SUF)                                                        \
PYNN_ROW_MATH(T, SUF)                                                                       \
PYNN_ROW_OP(T, softmax_f_##SUF, pynn_softmax_row_##SUF)                                     \
PYNN_ROW_OP(T, softmax_b_##SUF, pynn_softmax_grad_row_##SUF)                                \
PYNN_ROW_OP(T, log_softmax_f_##SUF, pynn_log_softmax_row_##SUF)                             \
PYNN_ROW_OP(T, log_softmax_b_##SUF, pynn_log_softmax_grad_row_##SUF)                        \
/* rows are independent: one thread per block of rows */                                    \
static void pynn_rows_run_##SUF(const pynn_row_fn_##T *table, T *o, const T *a, const T *b, \
                                pynn_idx R, pynn_idx N, double cost, pynn_ctx ctx) {        \
    pynn_row_fn_##T fn = table[ctx.isa < 0 ? 0 : ctx.isa > 2 ? 2 : ctx.isa];                \
    int nt = pynn_threads_for(ctx, (double)R * (double)N * cost);                           \
    (void)nt;                                                                               \
    _Pragma("omp parallel for num_threads(nt) schedule(static) if(nt > 1)")                 \
    for (pynn_idx r = 0; r < R; r++) fn(o + r * N, a + r * N, b ? b + r * N : NULL, N);     \
}                                                                                           \
void pynn_softmax_forward_##SUF(T *out, const T *x, pynn_idx R, pynn_idx N, pynn_ctx ctx) { \
    /* out (R,N) = exp(x - max_j x) / sum_j exp(x - max_j x), per row; out may be x */      \
    pynn_rows_run_##SUF(softmax_f_##SUF##_table, out, x, NULL, R, N, 10, ctx);              \
}                                                                                           \
void pynn_softmax_backward_##SUF(T *dx, const T *y, const T *dy, pynn_idx R, pynn_idx N,    \
                                 pynn_ctx ctx) {                                            \
    /* dx (R,N) = y (dy - sum_j y dy), per row, from the forward output y; dx may be dy */  \
    pynn_rows_run_##SUF(softmax_b_##SUF##_table, dx, y, dy, R, N, 3, ctx);                  \
}                                                                                           \
void pynn_log_softmax_forward_##SUF(T *out, const T *x, pynn_idx R, pynn_idx N,             \
                                    pynn_ctx ctx) {                                         \
    /* out (R,N) = x - max_j x - log sum_j exp(x - max_j x), per row; out may be x */       \
    pynn_rows_run_##SUF(log_softmax_f_##SUF##_table, out, x, NULL, R, N, 10, ctx);          \
}                                                                                           \
void pynn_log_softmax_backward_##SUF(T *dx, const T *y, const T *dy, pynn_idx R,            \
                                     pynn_idx N, pynn_ctx ctx) {                            \
    /* dx (R,N) = dy - exp(y) sum_j dy, per row, from the forward output y; dx may be dy */ \
    pynn_rows_run_##SUF(log_softmax_b_##SUF##_table, dx, y, dy, R, N, 10, ctx);             \
}

/* libm log by dtype suffix, for the row bodies above */
#define logf32_ logf
#define logf64_ log

PYNN_ACT_OPS(float, f32)
PYNN_ACT_OPS(double, f64)
PYNN_ACT_KERNELS(float, f32)
PYNN_ACT_KERNELS(double, f64)
PYNN_SOFTMAX_KERNELS(float, f32)
PYNN_SOFTMAX_KERNELS(double, f64)
