/* norm.c - batch normalization, forward and backward.
 *
 * Reductions over the N rows split them into a fixed number of row blocks (set by N only,
 * at most NORM_BLOCKS); each block's per-channel partial sums are computed by one thread and
 * the partials are combined in block order, so the sums have the same bits for any thread
 * count while both cores work. Variance is two-pass (sum of squared deviations from the
 * mean), not E[x^2] - mean^2, which cancels catastrophically for large means.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "norm.h"

#define NORM_BLOCKS 64
#define NORM_MIN_ROWS 256

static pynn_idx norm_rows_per_block(pynn_idx N) {
    pynn_idx rb = (N + NORM_BLOCKS - 1) / NORM_BLOCKS;
    return PYNN_MAX(rb, NORM_MIN_ROWS);
}

#define PYNN_NORM_FAMILY(T, SUF)                                                                \
/* out1 (C) = sum over rows of f1, out2 (C) = sum over rows of f2 (if out2), in fixed order;    \
   mode 0: f1 = x; mode 1: f1 = (x - m)^2; mode 2: f1 = dy, f2 = dy * (x - m) * s */            \
static int norm_colsums_##SUF(T *out1, T *out2, const T *x, const T *dy, const T *m,            \
                              const T *s, pynn_idx N, pynn_idx C, pynn_idx rsx, pynn_idx csx,   \
                              int mode, pynn_ctx ctx) {                                         \
    pynn_idx rb = norm_rows_per_block(N), nb = (N + rb - 1) / rb;                               \
    int two = out2 != NULL;                                                                     \
    T *parts = (T *)malloc(((size_t)nb * C * (two ? 2 : 1) + 1) * sizeof(T));                   \
    if (!parts) return PYNN_ENOMEM;                                                             \
    T *parts2 = parts + (size_t)nb * C;                                                         \
    int nt = pynn_threads_for(ctx, (double)N * C * (two ? 3 : 2));                              \
    if (nt > nb) nt = (int)nb;                                                                  \
    _Pragma("omp parallel for num_threads(nt) schedule(static) if(nt > 1)")                     \
    for (pynn_idx k = 0; k < nb; k++) {                                                         \
        T *p1 = parts + k * C, *p2 = parts2 + k * C;                                            \
        for (pynn_idx c = 0; c < C; c++) p1[c] = 0;                                             \
        if (two) for (pynn_idx c = 0; c < C; c++) p2[c] = 0;                                    \
        for (pynn_idx n = k * rb; n < PYNN_MIN(N, (k + 1) * rb); n++) {                         \
            const T *xr = x + n * rsx;                                                          \
            if (mode == 0) {                                                                    \
                for (pynn_idx c = 0; c < C; c++) p1[c] += xr[c * csx];                          \
            } else if (mode == 1) {                                                             \
                for (pynn_idx c = 0; c < C; c++) { T d = xr[c * csx] - m[c]; p1[c] += d * d; }  \
            } else {                                                                            \
                const T *dr = dy + n * C;                                                       \
                for (pynn_idx c = 0; c < C; c++) {                                              \
                    p1[c] += dr[c];                                                             \
                    p2[c] += dr[c] * ((xr[c * csx] - m[c]) * s[c]);                             \
                }                                                                               \
            }                                                                                   \
        }                                                                                       \
    }                                                                                           \
    for (pynn_idx c = 0; c < C; c++) {                                                          \
        T a = 0, b = 0;                                                                         \
        for (pynn_idx k = 0; k < nb; k++) {                                                     \
            a += parts[k * C + c];                                                              \
            if (two) b += parts2[k * C + c];                                                    \
        }                                                                                       \
        out1[c] = a;                                                                            \
        if (two) out2[c] = b;                                                                   \
    }                                                                                           \
    free(parts);                                                                                \
    return PYNN_OK;                                                                             \
}                                                                                               \
                                                                                                \
int pynn_batch_norm_forward_##SUF(T *y, T *mean, T *inv_std, T *running_mean, T *running_var,   \
                                  const T *x, const T *gamma, const T *beta, pynn_idx N,        \
                                  pynn_idx C, pynn_idx rsx, pynn_idx csx, int training,         \
                                  double momentum, double epsilon, pynn_ctx ctx) {              \
    /* y (N,C) = (x - mean) * inv_std * gamma + beta, inv_std = 1 / sqrt(var + epsilon) */      \
    T mom = (T)momentum, eps = (T)epsilon;                                                      \
    if (training) {                                                                             \
        T *var = (T *)malloc(((size_t)C + 1) * sizeof(T));                                      \
        if (!var) return PYNN_ENOMEM;                                                           \
        int st = norm_colsums_##SUF(mean, NULL, x, NULL, NULL, NULL, N, C, rsx, csx, 0, ctx);   \
        if (st == PYNN_OK) {                                                                    \
            for (pynn_idx c = 0; c < C; c++) mean[c] /= (T)N;                                   \
            st = norm_colsums_##SUF(var, NULL, x, NULL, mean, NULL, N, C, rsx, csx, 1, ctx);    \
        }                                                                                       \
        if (st != PYNN_OK) { free(var); return st; }                                            \
        for (pynn_idx c = 0; c < C; c++) {                                                      \
            var[c] /= (T)N;                                                                     \
            running_mean[c] = running_mean[c] * mom + ((T)1 - mom) * mean[c];                   \
            running_var[c] = running_var[c] * mom + ((T)1 - mom) * var[c];                      \
            inv_std[c] = (T)1 / (T)sqrt((double)(var[c] + eps));                                \
        }                                                                                       \
        free(var);                                                                              \
    } else {                                                                                    \
        for (pynn_idx c = 0; c < C; c++) {                                                      \
            mean[c] = running_mean[c];                                                          \
            inv_std[c] = (T)1 / (T)sqrt((double)(running_var[c] + eps));                        \
        }                                                                                       \
    }                                                                                           \
    int nt = pynn_threads_for(ctx, 2.0 * N * C);                                                \
    _Pragma("omp parallel for num_threads(nt) schedule(static) if(nt > 1)")                     \
    for (pynn_idx n = 0; n < N; n++) {                                                          \
        const T *xr = x + n * rsx;                                                              \
        T *yr = y + n * C;                                                                      \
        for (pynn_idx c = 0; c < C; c++)                                                        \
            yr[c] = (xr[c * csx] - mean[c]) * (inv_std[c] * gamma[c]) + (beta ? beta[c] : 0);   \
    }                                                                                           \
    return PYNN_OK;                                                                             \
}                                                                                               \
                                                                                                \
int pynn_batch_norm_backward_##SUF(T *dx, T *dgamma, T *dbeta, const T *x, const T *dy,         \
                                   const T *gamma, const T *mean, const T *inv_std, pynn_idx N, \
                                   pynn_idx C, pynn_idx rsx, pynn_idx csx, int training,        \
                                   pynn_ctx ctx) {                                              \
    /* xhat = (x - mean) * inv_std; dbeta = sum dy; dgamma = sum dy * xhat;                     \
       training: dx = gamma * inv_std * (dy - dbeta / N - xhat * dgamma / N);                   \
       inference: dx = gamma * inv_std * dy */                                                  \
    int st = norm_colsums_##SUF(dbeta, dgamma, x, dy, mean, inv_std, N, C, rsx, csx, 2, ctx);   \
    if (st != PYNN_OK) return st;                                                               \
    int train = training && N > 0;                                                              \
    T rn = train ? (T)1 / (T)N : 0;                                                             \
    int nt = pynn_threads_for(ctx, 4.0 * N * C);                                                \
    _Pragma("omp parallel for num_threads(nt) schedule(static) if(nt > 1)")                     \
    for (pynn_idx n = 0; n < N; n++) {                                                          \
        const T *xr = x + n * rsx, *dr = dy + n * C;                                            \
        T *o = dx + n * C;                                                                      \
        for (pynn_idx c = 0; c < C; c++) {                                                      \
            T gs = gamma[c] * inv_std[c];                                                       \
            if (train) {                                                                        \
                T xhat = (xr[c * csx] - mean[c]) * inv_std[c];                                  \
                o[c] = (dr[c] - dbeta[c] * rn - xhat * (dgamma[c] * rn)) * gs;                  \
            } else {                                                                            \
                o[c] = dr[c] * gs;                                                              \
            }                                                                                   \
        }                                                                                       \
    }                                                                                           \
    return PYNN_OK;                                                                             \
}

PYNN_NORM_FAMILY(float, f32)
PYNN_NORM_FAMILY(double, f64)
