/* layernorm.c - layer normalization over the last axis (llm.c layernorm_forward/backward).
 *
 *   mean = sum x / C, var = sum (x - mean)^2 / C (two-pass), rstd = 1 / sqrt(var + eps),
 *   y = (x - mean) * rstd * gamma + beta
 *   dnorm = dy * gamma, dx = rstd * (dnorm - mean(dnorm) - xhat * mean(dnorm * xhat)),
 *   dgamma = sum over rows of dy * xhat, dbeta = sum over rows of dy.
 *
 * Parallel split: rows are independent for y and dx (threads split rows). dgamma and dbeta
 * are column sums: threads split column blocks and add rows in order 0..N-1, so every output
 * has one writer and the bits do not depend on the thread count. Statistics accumulate in
 * double for float32 input. `accumulate` makes dx += instead of = (a residual branch).
 */
#include <math.h>
#include "layernorm.h"

#define PYNN_LAYERNORM_FAMILY(T, SUF)                                                        \
void pynn_layernorm_forward_##SUF(T *y, T *mean, T *rstd, const T *x, const T *gamma,        \
                                  const T *beta, pynn_idx N, pynn_idx C, pynn_idx rsx,       \
                                  pynn_idx csx, double eps, pynn_ctx ctx) {                  \
    /* y (N,C) = (x (N,C) - mean (N)) * rstd (N) * gamma (C) + beta (C) */                    \
    int nt = pynn_threads_for(ctx, 4.0 * (double)N * (double)C);                             \
    (void)nt;                                                                                \
    _Pragma("omp parallel for num_threads(nt) schedule(static) if(nt > 1)")                  \
    for (pynn_idx n = 0; n < N; n++) {                                                       \
        const T *xr = x + n * rsx;                                                           \
        T *yr = y + n * C;                                                                   \
        double s = 0.0;                                                                      \
        for (pynn_idx j = 0; j < C; j++) s += (double)xr[j * csx];                           \
        T m = (T)(s / (double)C);                                                            \
        double v = 0.0;                                                                      \
        for (pynn_idx j = 0; j < C; j++) {                                                   \
            double d = (double)(xr[j * csx] - m);                                            \
            v += d * d;                                                                      \
        }                                                                                    \
        T r = (T)(1.0 / sqrt(v / (double)C + eps));                                          \
        if (beta)                                                                            \
            for (pynn_idx j = 0; j < C; j++) yr[j] = (xr[j * csx] - m) * r * gamma[j] + beta[j]; \
        else                                                                                 \
            for (pynn_idx j = 0; j < C; j++) yr[j] = (xr[j * csx] - m) * r * gamma[j];       \
        mean[n] = m;                                                                         \
        rstd[n] = r;                                                                         \
    }                                                                                        \
}                                                                                            \
                                                                                             \
void pynn_layernorm_backward_##SUF(T *dx, T *dgamma, T *dbeta, const T *x, const T *gamma,   \
                                   const T *mean, const T *rstd, const T *dy, pynn_idx N,    \
                                   pynn_idx C, pynn_idx rsx, pynn_idx csx, int accumulate,   \
                                   pynn_ctx ctx) {                                           \
    /* dx (N,C) (=|+=) rstd * (dy*gamma - mean(dy*gamma) - xhat * mean(dy*gamma*xhat));      \
     * dgamma (C) = sum_n dy * xhat, dbeta (C) = sum_n dy  (dy (N,C) contiguous) */          \
    int nt = pynn_threads_for(ctx, 6.0 * (double)N * (double)C);                             \
    pynn_idx nblk = (C + 15) / 16;                                                           \
    int ntc = nt > nblk ? (int)nblk : nt;                                                    \
    (void)ntc;                                                                               \
    /* column sums first: they read dy, which dx may not alias anyway */                     \
    _Pragma("omp parallel for num_threads(ntc) schedule(static) if(ntc > 1)")                \
    for (int t = 0; t < ntc; t++) {                                                          \
        pynn_idx j0 = nblk * t / ntc * 16, j1 = PYNN_MIN(C, nblk * (t + 1) / ntc * 16);      \
        for (pynn_idx j = j0; j < j1; j++) { dgamma[j] = 0; dbeta[j] = 0; }                  \
        for (pynn_idx n = 0; n < N; n++) {                                                   \
            const T *xr = x + n * rsx, *dyr = dy + n * C;                                    \
            T m = mean[n], r = rstd[n];                                                      \
            for (pynn_idx j = j0; j < j1; j++) {                                             \
                dgamma[j] += dyr[j] * ((xr[j * csx] - m) * r);                               \
                dbeta[j] += dyr[j];                                                          \
            }                                                                                \
        }                                                                                    \
    }                                                                                        \
    if (!dx) return;                                                                         \
    _Pragma("omp parallel for num_threads(nt) schedule(static) if(nt > 1)")                  \
    for (pynn_idx n = 0; n < N; n++) {                                                       \
        const T *xr = x + n * rsx, *dyr = dy + n * C;                                        \
        T *dxr = dx + n * C;                                                                 \
        T m = mean[n], r = rstd[n];                                                          \
        T a = 0, b = 0;                                                                      \
        for (pynn_idx j = 0; j < C; j++) {                                                   \
            T dn = dyr[j] * gamma[j];                                                        \
            a += dn;                                                                         \
            b += dn * ((xr[j * csx] - m) * r);                                               \
        }                                                                                    \
        a /= (T)C;                                                                           \
        b /= (T)C;                                                                           \
        if (accumulate)                                                                      \
            for (pynn_idx j = 0; j < C; j++)                                                 \
                dxr[j] += r * (dyr[j] * gamma[j] - a - (xr[j * csx] - m) * r * b);           \
        else                                                                                 \
            for (pynn_idx j = 0; j < C; j++)                                                 \
                dxr[j] = r * (dyr[j] * gamma[j] - a - (xr[j * csx] - m) * r * b);            \
    }                                                                                        \
}

PYNN_LAYERNORM_FAMILY(float, f32)
PYNN_LAYERNORM_FAMILY(double, f64)
