/* losses.c - loss values and gradients (see losses.h for the reduction and conventions).
 *
 * Math (per element p = prediction, y = target; lo = eps, hi = 1 - eps in the data type):
 *   mse   (p - y)^2                                  d/dp = 2 (p - y), scaled as (2 s) (p - y)
 *         (the twin's order: 2 (p - y) first overflows for |p - y| > max / 2)
 *   mae   |p - y|                                    d/dp = sign(p - y)  (0 at p == y)
 *   bce   -(y log c + (1 - y) log(1 - c)), c = clip(p, lo, hi)
 *                                                    d/dp = (p - y) / (p (1 - p)), 0 where clipped
 *   bce from logits z: max(z, 0) - z y + log1p(exp(-|z|))   d/dz = sigmoid(z) - y
 * Categorical, per row of K (Keras semantics: probabilities are renormalised by their sum S,
 * then clipped):  q = p / S, c = clip(q, lo, hi), l = -sum_k y_k log c_k,
 *   dl/dp_j = (a_j + U) / S  with a_k = -y_k / q_k where q_k is not clipped (0 where it is)
 *   and U = sum of y_k over the unclipped k  (from dq_k/dp_j = (delta_kj - q_k) / S).
 * Fused softmax + cross-entropy on logits z, max-subtracted (finite for |z| ~ 1e4; no
 * softmax-then-log): m = max z, s = sum exp(z - m),
 *   sparse:  l = (m - z_y) + log s,                    dl/dz = softmax(z) - onehot(y)
 *   targets: l = sum_k y_k (m - z_k) + Y log s, Y = sum y,  dl/dz = Y softmax(z) - y
 * Per-element work is done in the data type; row sums, the loss and the per-row scale
 * w_i / (B D) are in double.
 *
 * Parallel split: the forward sums rows in PYNN_LOSS_NCHUNK fixed row chunks (boundaries
 * depend on B only), each written by one thread, then adds the chunk sums in chunk order:
 * same bits for any thread count. Backward rows are independent (one writer per row).
 */
#include <tgmath.h>

#include "losses.h"
#include "activations.h"   /* pynn_exp_f32/f64: inline, vectorizable exp */

#define PYNN_LOSS_NCHUNK 64
#define PYNN_SUMEXP_BLOCK 256   /* exponentials per stack block in pynn_sumexp */

/* elementwise losses: LOSS and GRAD are expressions in p, y, lo, hi of type T; SCALE(T) is
 * the gradient's row factor from the row scale s (w_i / denom), applied as SCALE * GRAD */
#define PYNN_MSE_LOSS(T) ((p - y) * (p - y))
#define PYNN_MSE_SCALE(T) ((T)2 * s)   /* 2 s exact; 2 (p - y) could overflow */
#define PYNN_MSE_GRAD(T) (p - y)
#define PYNN_ONE_SCALE(T) (s)
#define PYNN_MAE_LOSS(T) (fabs(p - y))
#define PYNN_MAE_GRAD(T) (p > y ? (T)1 : p < y ? (T)-1 : (p - y) * 0) /* NaN stays NaN */
#define PYNN_BCE_CLIP(T) (p < lo ? lo : p > hi ? hi : p)
#define PYNN_BCE_LOSS(T) (-(y * log(PYNN_BCE_CLIP(T)) + ((T)1 - y) * log((T)1 - PYNN_BCE_CLIP(T))))
#define PYNN_BCE_GRAD(T) ((p >= lo && p <= hi) ? (p - y) / (p * ((T)1 - p)) : (T)0)
#define PYNN_BCEL_LOSS(T) ((p > 0 ? p : (T)0) - p * y + log1p(exp(-fabs(p))))
#define PYNN_BCEL_GRAD(T) ((p >= 0 ? (T)1 : exp(-fabs(p))) / ((T)1 + exp(-fabs(p))) - y)

/* Row functions of one elementwise loss: the row sum (double) and the scaled row gradient. */
#define PYNN_ELEM_ROWS(NAME, T, SUF, LOSS, SCALE, GRAD)                                             \
static double NAME##_row_##SUF(const pynn_loss_args_##SUF *a, pynn_idx i) {                         \
    const T *x = a->x + i * a->rsx, *t = a->t + i * a->rst;                                         \
    const T lo = a->lo, hi = a->hi;                                                                 \
    double acc = 0;                                                                                 \
    (void)lo; (void)hi;                                                                             \
    for (pynn_idx j = 0; j < a->K; j++) {                                                           \
        T p = x[j * a->csx], y = t[j * a->cst];                                                     \
        acc += (double)(LOSS(T));                                                                   \
    }                                                                                               \
    return acc;                                                                                     \
}                                                                                                   \
static void NAME##_grad_row_##SUF(T *d, const pynn_loss_args_##SUF *a, pynn_idx i, T s) {           \
    const T *x = a->x + i * a->rsx, *t = a->t + i * a->rst;                                         \
    const T lo = a->lo, hi = a->hi, f = SCALE(T);                                                   \
    (void)lo; (void)hi;                                                                             \
    for (pynn_idx j = 0; j < a->K; j++) {                                                           \
        T p = x[j * a->csx], y = t[j * a->cst];                                                     \
        d[j] = f * (GRAD(T));                                                                       \
    }                                                                                               \
}

#define PYNN_LOSSES_FAMILY(T, SUF)                                                                  \
typedef struct {                                                                                    \
    const T *x, *t;          /* prediction (B,K) and dense targets (B,K) or NULL */                 \
    const int64_t *labels;   /* (B,) or NULL */                                                     \
    const T *w;              /* (B,) or NULL */                                                     \
    pynn_idx B, K, rsx, csx, rst, cst, sw;                                                          \
    T lo, hi;                /* clip bounds of the probability losses */                            \
} pynn_loss_args_##SUF;                                                                             \
                                                                                                    \
static inline pynn_loss_args_##SUF pynn_loss_args_make_##SUF(const T *x, const T *t,                \
        const int64_t *labels, const T *w, pynn_idx B, pynn_idx K, pynn_idx rsx,                    \
        pynn_idx csx, pynn_idx rst, pynn_idx cst, pynn_idx sw, double eps) {                        \
    pynn_loss_args_##SUF a;                                                                         \
    a.x = x; a.t = t; a.labels = labels; a.w = w;                                                   \
    a.B = B; a.K = K; a.rsx = rsx; a.csx = csx; a.rst = rst; a.cst = cst; a.sw = sw;                \
    a.lo = (T)eps; a.hi = (T)1 - a.lo;                                                              \
    return a;                                                                                       \
}                                                                                                   \
                                                                                                    \
/* sum_i w_i row(i) in fixed row chunks, chunk sums added in chunk order */                         \
static double pynn_loss_reduce_##SUF(double (*row)(const pynn_loss_args_##SUF *, pynn_idx),         \
                                     const pynn_loss_args_##SUF *a, double work,                    \
                                     pynn_ctx ctx) {                                                \
    double part[PYNN_LOSS_NCHUNK], total = 0;                                                       \
    pynn_idx per = (a->B + PYNN_LOSS_NCHUNK - 1) / PYNN_LOSS_NCHUNK;                                \
    int nt = pynn_threads_for(ctx, work);                                                           \
    _Pragma("omp parallel for num_threads(nt) schedule(static) if(nt > 1)")                         \
    for (int c = 0; c < PYNN_LOSS_NCHUNK; c++) {                                                    \
        pynn_idx i0 = PYNN_MIN(a->B, c * per), i1 = PYNN_MIN(a->B, i0 + per);                       \
        double acc = 0;                                                                             \
        for (pynn_idx i = i0; i < i1; i++)                                                          \
            acc += a->w ? (double)a->w[i * a->sw] * row(a, i) : row(a, i);                          \
        part[c] = acc;                                                                              \
    }                                                                                               \
    for (int c = 0; c < PYNN_LOSS_NCHUNK; c++) total += part[c];                                    \
    return total;                                                                                   \
}                                                                                                   \
                                                                                                    \
/* d row i = grad_row scaled by w_i / denom, rows split over threads */                             \
static void pynn_loss_grad_##SUF(T *d,                                                              \
        void (*grad_row)(T *, const pynn_loss_args_##SUF *, pynn_idx, T),                           \
        const pynn_loss_args_##SUF *a, double denom, double work, pynn_ctx ctx) {                   \
    int nt = pynn_threads_for(ctx, work);                                                           \
    _Pragma("omp parallel for num_threads(nt) schedule(static) if(nt > 1)")                         \
    for (pynn_idx i = 0; i < a->B; i++) {                                                           \
        double wi = a->w ? (double)a->w[i * a->sw] : 1.0;                                           \
        grad_row(d + i * a->K, a, i, (T)(wi / denom));                                              \
    }                                                                                               \
}                                                                                                   \
                                                                                                    \
/* L = (sum_i w_i row(i)) / denom, denom = B (B K for the per-sample means); 0 when B == 0 */       \
static double pynn_loss_forward_##SUF(double (*row)(const pynn_loss_args_##SUF *, pynn_idx),        \
        const pynn_loss_args_##SUF *a, int mean, double flops, pynn_ctx ctx) {                      \
    double denom = (double)a->B * (mean ? (double)a->K : 1.0);                                      \
    if (a->B == 0) return 0.0;                                                                      \
    return pynn_loss_reduce_##SUF(row, a, flops * (double)a->B * (double)a->K, ctx) / denom;        \
}                                                                                                   \
static void pynn_loss_backward_##SUF(T *d,                                                          \
        void (*grad_row)(T *, const pynn_loss_args_##SUF *, pynn_idx, T),                           \
        const pynn_loss_args_##SUF *a, int mean, double flops, pynn_ctx ctx) {                      \
    double denom = (double)a->B * (mean ? (double)a->K : 1.0);                                      \
    pynn_loss_grad_##SUF(d, grad_row, a, denom, flops * (double)a->B * (double)a->K, ctx);          \
}                                                                                                   \
                                                                                                    \
PYNN_ELEM_ROWS(mse, T, SUF, PYNN_MSE_LOSS, PYNN_MSE_SCALE, PYNN_MSE_GRAD)                           \
PYNN_ELEM_ROWS(mae, T, SUF, PYNN_MAE_LOSS, PYNN_ONE_SCALE, PYNN_MAE_GRAD)                           \
PYNN_ELEM_ROWS(binary_crossentropy, T, SUF, PYNN_BCE_LOSS, PYNN_ONE_SCALE, PYNN_BCE_GRAD)           \
PYNN_ELEM_ROWS(binary_crossentropy_logits, T, SUF, PYNN_BCEL_LOSS, PYNN_ONE_SCALE, PYNN_BCEL_GRAD)  \
                                                                                                    \
/* row sum S of probabilities, in double, rounded to T (the divisor of q = p / S) */                \
static inline T pynn_rowsum_##SUF(const T *x, pynn_idx K, pynn_idx csx) {                           \
    double s = 0;                                                                                   \
    for (pynn_idx j = 0; j < K; j++) s += (double)x[j * csx];                                       \
    return (T)s;                                                                                    \
}                                                                                                   \
                                                                                                    \
static double categorical_crossentropy_row_##SUF(const pynn_loss_args_##SUF *a,                     \
                                                 pynn_idx i) {                                      \
    const T *x = a->x + i * a->rsx, *t = a->t + i * a->rst;                                         \
    const T lo = a->lo, hi = a->hi, S = pynn_rowsum_##SUF(x, a->K, a->csx);                         \
    double acc = 0;                                                                                 \
    for (pynn_idx j = 0; j < a->K; j++) {                                                           \
        T q = x[j * a->csx] / S, c = q < lo ? lo : q > hi ? hi : q;                                 \
        acc += (double)(t[j * a->cst] * log(c));                                                    \
    }                                                                                               \
    return -acc;                                                                                    \
}                                                                                                   \
static void categorical_crossentropy_grad_row_##SUF(T *d, const pynn_loss_args_##SUF *a,            \
                                                    pynn_idx i, T s) {                              \
    const T *x = a->x + i * a->rsx, *t = a->t + i * a->rst;                                         \
    const T lo = a->lo, hi = a->hi, S = pynn_rowsum_##SUF(x, a->K, a->csx);                         \
    double u = 0;                                                                                   \
    for (pynn_idx j = 0; j < a->K; j++) {                                                           \
        T q = x[j * a->csx] / S;                                                                    \
        if (q >= lo && q <= hi) u += (double)t[j * a->cst];                                         \
    }                                                                                               \
    for (pynn_idx j = 0; j < a->K; j++) {                                                           \
        T q = x[j * a->csx] / S, y = t[j * a->cst];                                                 \
        T aj = (q >= lo && q <= hi) ? -y / q : (T)0;                                                \
        d[j] = s * ((aj + (T)u) / S);                                                               \
    }                                                                                               \
}                                                                                                   \
                                                                                                    \
static double sparse_categorical_crossentropy_row_##SUF(const pynn_loss_args_##SUF *a,              \
                                                        pynn_idx i) {                               \
    const T *x = a->x + i * a->rsx;                                                                 \
    const T lo = a->lo, hi = a->hi, S = pynn_rowsum_##SUF(x, a->K, a->csx);                         \
    T q = x[a->labels[i] * a->csx] / S, c = q < lo ? lo : q > hi ? hi : q;                          \
    return -(double)log(c);                                                                         \
}                                                                                                   \
static void sparse_categorical_crossentropy_grad_row_##SUF(T *d,                                    \
        const pynn_loss_args_##SUF *a, pynn_idx i, T s) {                                           \
    const T *x = a->x + i * a->rsx;                                                                 \
    const T lo = a->lo, hi = a->hi, S = pynn_rowsum_##SUF(x, a->K, a->csx);                         \
    pynn_idx yi = a->labels[i];                                                                     \
    T q = x[yi * a->csx] / S;                                                                       \
    int keep = q >= lo && q <= hi;                                                                  \
    T u = keep ? (T)1 : (T)0, ay = keep ? -(T)1 / q : (T)0;                                         \
    for (pynn_idx j = 0; j < a->K; j++) d[j] = s * (u / S);                                         \
    d[yi] = s * ((ay + u) / S);                                                                     \
}                                                                                                   \
                                                                                                    \
/* max of a row; a NaN anywhere makes the loss NaN through exp(NaN) below. Contiguous rows          \
 * keep 16 running maxima (independent chains, so the loop vectorizes); max is exact, so            \
 * the lane split cannot change the result. */                                                      \
static inline T pynn_rowmax_##SUF(const T *x, pynn_idx K, pynn_idx csx) {                           \
    T m = x[0];                                                                                     \
    pynn_idx j = 1;                                                                                 \
    if (csx == 1 && K >= 33) {                                                                      \
        T lane[16];                                                                                 \
        for (int l = 0; l < 16; l++) lane[l] = x[l];                                                \
        for (j = 16; j + 16 <= K; j += 16)                                                          \
            for (int l = 0; l < 16; l++) lane[l] = x[j + l] > lane[l] ? x[j + l] : lane[l];         \
        for (int l = 0; l < 16; l++) m = lane[l] > m ? lane[l] : m;                                 \
    }                                                                                               \
    for (; j < K; j++) m = x[j * csx] > m ? x[j * csx] : m;                                         \
    return m;                                                                                       \
}                                                                                                   \
/* s = sum_j exp(x_j - m) in double; e (K) receives the exponentials when not NULL.                 \
 * The exponentials come from the inline pynn_exp (activations.h: no libm call, so the              \
 * block loop vectorizes) in blocks of PYNN_SUMEXP_BLOCK through a fixed stack buffer; the          \
 * sum keeps 8 double partial sums (lane l takes j = l mod 8, then lanes are added in               \
 * order): a fixed order that depends on K only, so every call gives the same bits. */              \
static inline double pynn_sumexp_##SUF(T *e, const T *x, pynn_idx K, pynn_idx csx, T m) {           \
    T buf[PYNN_SUMEXP_BLOCK];                                                                       \
    double lane[8] = {0, 0, 0, 0, 0, 0, 0, 0}, s = 0;                                               \
    for (pynn_idx j0 = 0; j0 < K; j0 += PYNN_SUMEXP_BLOCK) {                                        \
        pynn_idx n = K - j0 < PYNN_SUMEXP_BLOCK ? K - j0 : PYNN_SUMEXP_BLOCK, j = 0;                \
        const T *xb = x + j0 * csx;                                                                 \
        T *eb = e ? e + j0 : buf;                                                                   \
        if (csx == 1)                                                                               \
            for (j = 0; j < n; j++) eb[j] = pynn_exp_##SUF(xb[j] - m);                              \
        else                                                                                        \
            for (j = 0; j < n; j++) eb[j] = pynn_exp_##SUF(xb[j * csx] - m);                        \
        for (j = 0; j + 8 <= n; j += 8)                                                             \
            for (int l = 0; l < 8; l++) lane[l] += (double)eb[j + l];                               \
        for (; j < n; j++) lane[(j0 + j) & 7] += (double)eb[j];                                     \
    }                                                                                               \
    for (int l = 0; l < 8; l++) s += lane[l];                                                       \
    return s;                                                                                       \
}                                                                                                   \
                                                                                                    \
static double softmax_cross_entropy_row_##SUF(const pynn_loss_args_##SUF *a, pynn_idx i) {          \
    const T *x = a->x + i * a->rsx;                                                                 \
    T m = pynn_rowmax_##SUF(x, a->K, a->csx);                                                       \
    double s = pynn_sumexp_##SUF(NULL, x, a->K, a->csx, m);                                         \
    /* (m - z_y) + log s, not lse - z_y: no cancellation between two numbers near 1e4 */            \
    return (double)(m - x[a->labels[i] * a->csx]) + log(s);                                         \
}                                                                                                   \
static void softmax_cross_entropy_grad_row_##SUF(T *d, const pynn_loss_args_##SUF *a,               \
                                                 pynn_idx i, T s) {                                 \
    const T *x = a->x + i * a->rsx;                                                                 \
    T m = pynn_rowmax_##SUF(x, a->K, a->csx);                                                       \
    /* d may be x itself (in place): each d[j] is written after x[j] was last read */               \
    double iz = 1.0 / pynn_sumexp_##SUF(d, x, a->K, a->csx, m);                                      \
    pynn_idx yi = a->labels[i];                                                                     \
    for (pynn_idx j = 0; j < a->K; j++) {                                                           \
        T p = (T)((double)d[j] * iz);                                                                \
        d[j] = s * (j == yi ? p - (T)1 : p);                                                        \
    }                                                                                               \
}                                                                                                   \
                                                                                                    \
static double softmax_categorical_crossentropy_row_##SUF(const pynn_loss_args_##SUF *a,             \
                                                         pynn_idx i) {                              \
    const T *x = a->x + i * a->rsx, *t = a->t + i * a->rst;                                         \
    T m = pynn_rowmax_##SUF(x, a->K, a->csx);                                                       \
    double s = pynn_sumexp_##SUF(NULL, x, a->K, a->csx, m), acc = 0, ysum = 0;                      \
    for (pynn_idx j = 0; j < a->K; j++) {                                                           \
        T y = t[j * a->cst];                                                                        \
        acc += (double)(y * (m - x[j * a->csx]));                                                   \
        ysum += (double)y;                                                                          \
    }                                                                                               \
    return acc + ysum * log(s);                                                                     \
}                                                                                                   \
static void softmax_categorical_crossentropy_grad_row_##SUF(T *d,                                   \
        const pynn_loss_args_##SUF *a, pynn_idx i, T s) {                                           \
    const T *x = a->x + i * a->rsx, *t = a->t + i * a->rst;                                         \
    T m = pynn_rowmax_##SUF(x, a->K, a->csx);                                                       \
    double iz = 1.0 / pynn_sumexp_##SUF(d, x, a->K, a->csx, m), ysum = 0;                            \
    for (pynn_idx j = 0; j < a->K; j++) ysum += (double)t[j * a->cst];                              \
    for (pynn_idx j = 0; j < a->K; j++)                                                             \
        d[j] = s * ((T)ysum * (T)((double)d[j] * iz) - t[j * a->cst]);                              \
}                                                                                                   \
                                                                                                    \
/* ---- public kernels: argument structs over the row functions above ---- */                       \
double pynn_mse_forward_##SUF(const T *y_pred, const T *y_true, const T *w, pynn_idx B,             \
                              pynn_idx D, pynn_idx rsp, pynn_idx csp, pynn_idx rst,                 \
                              pynn_idx cst, pynn_idx sw, pynn_ctx ctx) {                            \
    /* L = sum_i w_i sum_j (y_pred - y_true)^2 (B,D) / (B D) */                                     \
    pynn_loss_args_##SUF a = pynn_loss_args_make_##SUF(y_pred, y_true, NULL, w, B, D, rsp,          \
                                                       csp, rst, cst, sw, 0.0);                     \
    return pynn_loss_forward_##SUF(mse_row_##SUF, &a, 1, 3.0, ctx);                                 \
}                                                                                                   \
void pynn_mse_backward_##SUF(T *dpred, const T *y_pred, const T *y_true, const T *w,                \
                             pynn_idx B, pynn_idx D, pynn_idx rsp, pynn_idx csp,                    \
                             pynn_idx rst, pynn_idx cst, pynn_idx sw, pynn_ctx ctx) {               \
    /* dpred (B,D) = (2 w_i / (B D)) * (y_pred - y_true), written */                                \
    pynn_loss_args_##SUF a = pynn_loss_args_make_##SUF(y_pred, y_true, NULL, w, B, D, rsp,          \
                                                       csp, rst, cst, sw, 0.0);                     \
    pynn_loss_backward_##SUF(dpred, mse_grad_row_##SUF, &a, 1, 3.0, ctx);                           \
}                                                                                                   \
double pynn_mae_forward_##SUF(const T *y_pred, const T *y_true, const T *w, pynn_idx B,             \
                              pynn_idx D, pynn_idx rsp, pynn_idx csp, pynn_idx rst,                 \
                              pynn_idx cst, pynn_idx sw, pynn_ctx ctx) {                            \
    /* L = sum_i w_i sum_j |y_pred - y_true| (B,D) / (B D) */                                       \
    pynn_loss_args_##SUF a = pynn_loss_args_make_##SUF(y_pred, y_true, NULL, w, B, D, rsp,          \
                                                       csp, rst, cst, sw, 0.0);                     \
    return pynn_loss_forward_##SUF(mae_row_##SUF, &a, 1, 3.0, ctx);                                 \
}                                                                                                   \
void pynn_mae_backward_##SUF(T *dpred, const T *y_pred, const T *y_true, const T *w,                \
                             pynn_idx B, pynn_idx D, pynn_idx rsp, pynn_idx csp,                    \
                             pynn_idx rst, pynn_idx cst, pynn_idx sw, pynn_ctx ctx) {               \
    /* dpred (B,D) = w_i / (B D) * sign(y_pred - y_true), written */                                \
    pynn_loss_args_##SUF a = pynn_loss_args_make_##SUF(y_pred, y_true, NULL, w, B, D, rsp,          \
                                                       csp, rst, cst, sw, 0.0);                     \
    pynn_loss_backward_##SUF(dpred, mae_grad_row_##SUF, &a, 1, 3.0, ctx);                           \
}                                                                                                   \
double pynn_binary_crossentropy_forward_##SUF(const T *y_pred, const T *y_true, const T *w,         \
                              pynn_idx B, pynn_idx D, pynn_idx rsp, pynn_idx csp,                   \
                              pynn_idx rst, pynn_idx cst, pynn_idx sw, double eps,                  \
                              pynn_ctx ctx) {                                                       \
    /* L = sum_i w_i sum_j bce(clip(y_pred), y_true) (B,D) / (B D) */                               \
    pynn_loss_args_##SUF a = pynn_loss_args_make_##SUF(y_pred, y_true, NULL, w, B, D, rsp,          \
                                                       csp, rst, cst, sw, eps);                     \
    return pynn_loss_forward_##SUF(binary_crossentropy_row_##SUF, &a, 1, 40.0, ctx);                \
}                                                                                                   \
void pynn_binary_crossentropy_backward_##SUF(T *dpred, const T *y_pred, const T *y_true,            \
                              const T *w, pynn_idx B, pynn_idx D, pynn_idx rsp, pynn_idx csp,       \
                              pynn_idx rst, pynn_idx cst, pynn_idx sw, double eps,                  \
                              pynn_ctx ctx) {                                                       \
    /* dpred (B,D) = w_i / (B D) * (p - y) / (p (1 - p)), 0 where p was clipped; written */         \
    pynn_loss_args_##SUF a = pynn_loss_args_make_##SUF(y_pred, y_true, NULL, w, B, D, rsp,          \
                                                       csp, rst, cst, sw, eps);                     \
    pynn_loss_backward_##SUF(dpred, binary_crossentropy_grad_row_##SUF, &a, 1, 10.0, ctx);          \
}                                                                                                   \
double pynn_binary_crossentropy_logits_forward_##SUF(const T *logits, const T *y_true,              \
                              const T *w, pynn_idx B, pynn_idx D, pynn_idx rsp, pynn_idx csp,       \
                              pynn_idx rst, pynn_idx cst, pynn_idx sw, pynn_ctx ctx) {              \
    /* L = sum_i w_i sum_j max(z,0) - z y + log1p(exp(-|z|)) over z = logits (B,D) / (B D) */       \
    pynn_loss_args_##SUF a = pynn_loss_args_make_##SUF(logits, y_true, NULL, w, B, D, rsp,          \
                                                       csp, rst, cst, sw, 0.0);                     \
    return pynn_loss_forward_##SUF(binary_crossentropy_logits_row_##SUF, &a, 1, 40.0, ctx);         \
}                                                                                                   \
void pynn_binary_crossentropy_logits_backward_##SUF(T *dlogits, const T *logits,                    \
                              const T *y_true, const T *w, pynn_idx B, pynn_idx D,                  \
                              pynn_idx rsp, pynn_idx csp, pynn_idx rst, pynn_idx cst,               \
                              pynn_idx sw, pynn_ctx ctx) {                                          \
    /* dlogits (B,D) = w_i / (B D) * (sigmoid(logits) - y_true), written */                         \
    pynn_loss_args_##SUF a = pynn_loss_args_make_##SUF(logits, y_true, NULL, w, B, D, rsp,          \
                                                       csp, rst, cst, sw, 0.0);                     \
    pynn_loss_backward_##SUF(dlogits, binary_crossentropy_logits_grad_row_##SUF, &a, 1, 40.0,       \
                             ctx);                                                                  \
}                                                                                                   \
double pynn_categorical_crossentropy_forward_##SUF(const T *y_pred, const T *y_true,                \
                              const T *w, pynn_idx B, pynn_idx K, pynn_idx rsp, pynn_idx csp,       \
                              pynn_idx rst, pynn_idx cst, pynn_idx sw, double eps,                  \
                              pynn_ctx ctx) {                                                       \
    /* L = sum_i w_i (-sum_k y_true log clip(y_pred / rowsum)) over (B,K) / B */                    \
    pynn_loss_args_##SUF a = pynn_loss_args_make_##SUF(y_pred, y_true, NULL, w, B, K, rsp,          \
                                                       csp, rst, cst, sw, eps);                     \
    return pynn_loss_forward_##SUF(categorical_crossentropy_row_##SUF, &a, 0, 20.0, ctx);           \
}                                                                                                   \
void pynn_categorical_crossentropy_backward_##SUF(T *dpred, const T *y_pred, const T *y_true,       \
                              const T *w, pynn_idx B, pynn_idx K, pynn_idx rsp, pynn_idx csp,       \
                              pynn_idx rst, pynn_idx cst, pynn_idx sw, double eps,                  \
                              pynn_ctx ctx) {                                                       \
    /* dpred (B,K) = w_i / B * (a_k + U) / S (see the top of this file), written */                 \
    pynn_loss_args_##SUF a = pynn_loss_args_make_##SUF(y_pred, y_true, NULL, w, B, K, rsp,          \
                                                       csp, rst, cst, sw, eps);                     \
    pynn_loss_backward_##SUF(dpred, categorical_crossentropy_grad_row_##SUF, &a, 0, 10.0, ctx);     \
}                                                                                                   \
double pynn_sparse_categorical_crossentropy_forward_##SUF(const T *y_pred,                          \
                              const int64_t *labels, const T *w, pynn_idx B, pynn_idx K,            \
                              pynn_idx rsp, pynn_idx csp, pynn_idx sw, double eps,                  \
                              pynn_ctx ctx) {                                                       \
    /* L = sum_i w_i (-log clip(y_pred[i, labels_i] / rowsum_i)) over (B,K) / B */                  \
    pynn_loss_args_##SUF a = pynn_loss_args_make_##SUF(y_pred, NULL, labels, w, B, K, rsp,          \
                                                       csp, 0, 0, sw, eps);                         \
    return pynn_loss_forward_##SUF(sparse_categorical_crossentropy_row_##SUF, &a, 0, 2.0, ctx);     \
}                                                                                                   \
void pynn_sparse_categorical_crossentropy_backward_##SUF(T *dpred, const T *y_pred,                 \
                              const int64_t *labels, const T *w, pynn_idx B, pynn_idx K,            \
                              pynn_idx rsp, pynn_idx csp, pynn_idx sw, double eps,                  \
                              pynn_ctx ctx) {                                                       \
    /* dpred (B,K) = w_i / B * (a_k + U) / S with one-hot targets, written */                       \
    pynn_loss_args_##SUF a = pynn_loss_args_make_##SUF(y_pred, NULL, labels, w, B, K, rsp,          \
                                                       csp, 0, 0, sw, eps);                         \
    pynn_loss_backward_##SUF(dpred, sparse_categorical_crossentropy_grad_row_##SUF, &a, 0, 3.0,     \
                             ctx);                                                                  \
}                                                                                                   \
double pynn_softmax_cross_entropy_forward_##SUF(const T *logits, const int64_t *labels,             \
                              const T *w, pynn_idx B, pynn_idx K, pynn_idx rsp, pynn_idx csp,       \
                              pynn_idx sw, pynn_ctx ctx) {                                          \
    /* L = sum_i w_i (logsumexp(logits_i) - logits[i, labels_i]) over (B,K) / B */                  \
    pynn_loss_args_##SUF a = pynn_loss_args_make_##SUF(logits, NULL, labels, w, B, K, rsp,          \
                                                       csp, 0, 0, sw, 0.0);                         \
    return pynn_loss_forward_##SUF(softmax_cross_entropy_row_##SUF, &a, 0, 20.0, ctx);              \
}                                                                                                   \
void pynn_softmax_cross_entropy_backward_##SUF(T *dlogits, const T *logits,                         \
                              const int64_t *labels, const T *w, pynn_idx B, pynn_idx K,            \
                              pynn_idx rsp, pynn_idx csp, pynn_idx sw, pynn_ctx ctx) {              \
    /* dlogits (B,K) = w_i / B * (softmax(logits) - onehot(labels)), written */                     \
    pynn_loss_args_##SUF a = pynn_loss_args_make_##SUF(logits, NULL, labels, w, B, K, rsp,          \
                                                       csp, 0, 0, sw, 0.0);                         \
    pynn_loss_backward_##SUF(dlogits, softmax_cross_entropy_grad_row_##SUF, &a, 0, 20.0, ctx);      \
}                                                                                                   \
double pynn_softmax_categorical_crossentropy_forward_##SUF(const T *logits, const T *y_true,        \
                              const T *w, pynn_idx B, pynn_idx K, pynn_idx rsp, pynn_idx csp,       \
                              pynn_idx rst, pynn_idx cst, pynn_idx sw, pynn_ctx ctx) {              \
    /* L = sum_i w_i (-sum_k y_true log_softmax(logits)) over (B,K) / B */                          \
    pynn_loss_args_##SUF a = pynn_loss_args_make_##SUF(logits, y_true, NULL, w, B, K, rsp,          \
                                                       csp, rst, cst, sw, 0.0);                     \
    return pynn_loss_forward_##SUF(softmax_categorical_crossentropy_row_##SUF, &a, 0, 20.0,         \
                                   ctx);                                                            \
}                                                                                                   \
void pynn_softmax_categorical_crossentropy_backward_##SUF(T *dlogits, const T *logits,              \
                              const T *y_true, const T *w, pynn_idx B, pynn_idx K,                  \
                              pynn_idx rsp, pynn_idx csp, pynn_idx rst, pynn_idx cst,               \
                              pynn_idx sw, pynn_ctx ctx) {                                          \
    /* dlogits (B,K) = w_i / B * (sum_k y_true * softmax(logits) - y_true), written */              \
    pynn_loss_args_##SUF a = pynn_loss_args_make_##SUF(logits, y_true, NULL, w, B, K, rsp,          \
                                                       csp, rst, cst, sw, 0.0);                     \
    pynn_loss_backward_##SUF(dlogits, softmax_categorical_crossentropy_grad_row_##SUF, &a, 0,       \
                             20.0, ctx);                                                            \
}

PYNN_LOSSES_FAMILY(float, f32)
PYNN_LOSSES_FAMILY(double, f64)

