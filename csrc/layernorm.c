/* layernorm.c - layer normalization over the last axis (llm.c layernorm_forward/backward).
 *
 *   mean = sum x / C, var = sum (x - mean)^2 / C (two-pass), rstd = 1 / sqrt(var + eps),
 *   y = (x - mean) * rstd * gamma + beta
 *   dnorm = dy * gamma, dx = rstd * (dnorm - mean(dnorm) - xhat * mean(dnorm * xhat)),
 *   dgamma = sum over rows of dy * xhat, dbeta = sum over rows of dy.
 *
 * Parallel split: rows are independent for y and dx (threads split rows). dgamma and dbeta
 * are column sums: threads split column blocks and add rows in order 0..N-1, so every output
 * has one writer and the bits do not depend on the thread count. Row sums use 16
 * interleaved partial sums (double for the forward statistics) combined in a fixed order,
 * so they vectorize without reassociation. Rows with a unit column stride take a
 * specialised path. `accumulate` makes dx += instead of = (a residual branch); `res` gives
 * dx = res + (the same: a residual branch without a copy of it into dx first).
 *
 * The loops over a block of rows (and the column sums) are compiled three times: portable,
 * and with AVX2 / AVX-512 enabled by function target attributes, picked by ctx.isa (the
 * core library is built without ISA flags, where they would run 4 floats / 2 doubles wide).
 */
#include <math.h>
#include "layernorm.h"

#if defined(__GNUC__)
#define PYNN_LN_INLINE static inline __attribute__((always_inline))
#else
#define PYNN_LN_INLINE static inline
#endif
#if defined(__GNUC__) && (defined(__x86_64__) || defined(__i386__))
#define PYNN_LN_TARGET_AVX2 __attribute__((target("avx2,fma")))
#define PYNN_LN_TARGET_AVX512 __attribute__((target("avx512f,avx512dq,avx512bw,avx512vl,fma")))
#define PYNN_LN_ISA(ctx) ((ctx).isa < 0 ? 0 : (ctx).isa > 2 ? 2 : (ctx).isa)
#else
#define PYNN_LN_TARGET_AVX2
#define PYNN_LN_TARGET_AVX512
#define PYNN_LN_ISA(ctx) 0
#endif

#define PYNN_LN_REDUCE16(acc, EXPR)                                                         \
    do {                                                                                     \
        pynn_idx j = 0;                                                                      \
        for (; j + 16 <= C; j += 16)                                                         \
            for (int k = 0; k < 16; k++) { pynn_idx jj = j + k; acc[k] += (EXPR); }          \
        for (int k = 0; j < C; j++, k++) { pynn_idx jj = j; acc[k] += (EXPR); }              \
        for (int k = 8; k; k >>= 1)                                                          \
            for (int i = 0; i < k; i++) acc[i] += acc[i + k];                                \
    } while (0)

/* per-row math, inlined into the ISA variants below */
#define PYNN_LN_ROW_MATH(T, SUF)                                                             \
PYNN_LN_INLINE void pynn_ln_row_fwd_##SUF(T *yr, T *mean, T *rstd, const T *xr,              \
                                          const T *gamma, const T *beta, pynn_idx C,         \
                                          pynn_idx csx, double eps) {                        \
    double s[16] = {0}, v[16] = {0};                                                         \
    PYNN_LN_REDUCE16(s, (double)xr[jj * csx]);                                               \
    T m = (T)(s[0] / (double)C);                                                             \
    PYNN_LN_REDUCE16(v, (double)(xr[jj * csx] - m) * (double)(xr[jj * csx] - m));           \
    T r = (T)(1.0 / sqrt(v[0] / (double)C + eps));                                           \
    if (beta)                                                                                \
        for (pynn_idx j = 0; j < C; j++) yr[j] = (xr[j * csx] - m) * r * gamma[j] + beta[j]; \
    else                                                                                     \
        for (pynn_idx j = 0; j < C; j++) yr[j] = (xr[j * csx] - m) * r * gamma[j];           \
    *mean = m;                                                                               \
    *rstd = r;                                                                               \
}                                                                                            \
                                                                                             \
PYNN_LN_INLINE void pynn_ln_row_bwd_##SUF(T *dxr, const T *xr, const T *dyr, const T *gamma, \
                                          T m, T r, pynn_idx C, pynn_idx csx,                \
                                          const T *rr) {                                     \
    /* dxr = z, or rr + z (rr: the residual's row, or dxr itself to accumulate) */            \
    T a[16] = {0}, b[16] = {0};                                                              \
    PYNN_LN_REDUCE16(a, dyr[jj] * gamma[jj]);                                                \
    PYNN_LN_REDUCE16(b, dyr[jj] * gamma[jj] * ((xr[jj * csx] - m) * r));                     \
    T ma = a[0] / (T)C, mb = b[0] / (T)C;                                                    \
    if (C == 1) {   /* dnorm - mean(dnorm) is exactly 0 (its NaN stays): gcc's fused        \
                     * dy*gamma - ma left the product's rounding error, times rstd =         \
                     * 1/sqrt(eps) when the row is constant; the xhat term stays, so x, mean \
                     * or rstd that are NaN or disagree give what the reference gives */     \
        T xh = (xr[0] - m) * r;                                                              \
        T z = r * ((dyr[0] * gamma[0] - ma) * (T)0 - xh * mb);                               \
        dxr[0] = rr ? rr[0] + z : z;                                                         \
        return;                                                                              \
    }                                                                                        \
    if (rr)                                                                                  \
        for (pynn_idx j = 0; j < C; j++)                                                     \
            dxr[j] = rr[j] + r * (dyr[j] * gamma[j] - ma - (xr[j * csx] - m) * r * mb);      \
    else                                                                                     \
        for (pynn_idx j = 0; j < C; j++)                                                     \
            dxr[j] = r * (dyr[j] * gamma[j] - ma - (xr[j * csx] - m) * r * mb);              \
}

/* rows n0..n1-1 forward / backward; columns j0..j1-1 of dgamma, dbeta over all N rows */
#define PYNN_LN_BLOCKS(T, SUF, SFX, ATTR)                                                    \
ATTR static void pynn_ln_fwd_##SUF##_##SFX(T *y, T *mean, T *rstd, const T *x,               \
                                           const T *gamma, const T *beta, pynn_idx n0,       \
                                           pynn_idx n1, pynn_idx C, pynn_idx rsx,            \
                                           pynn_idx csx, double eps) {                       \
    for (pynn_idx n = n0; n < n1; n++) {                                                     \
        if (csx == 1)                                                                        \
            pynn_ln_row_fwd_##SUF(y + n * C, mean + n, rstd + n, x + n * rsx, gamma, beta,   \
                                  C, 1, eps);                                                \
        else                                                                                 \
            pynn_ln_row_fwd_##SUF(y + n * C, mean + n, rstd + n, x + n * rsx, gamma, beta,   \
                                  C, csx, eps);                                              \
    }                                                                                        \
}                                                                                            \
ATTR static void pynn_ln_bwd_##SUF##_##SFX(T *dx, const T *x, const T *dy, const T *gamma,   \
                                           const T *mean, const T *rstd, pynn_idx n0,        \
                                           pynn_idx n1, pynn_idx C, pynn_idx rsx,            \
                                           pynn_idx csx, const T *res, int accumulate) {     \
    for (pynn_idx n = n0; n < n1; n++) {                                                     \
        const T *rr = res ? res + n * C : accumulate ? dx + n * C : NULL;                    \
        if (csx == 1)                                                                        \
            pynn_ln_row_bwd_##SUF(dx + n * C, x + n * rsx, dy + n * C, gamma, mean[n],       \
                                  rstd[n], C, 1, rr);                                        \
        else                                                                                 \
            pynn_ln_row_bwd_##SUF(dx + n * C, x + n * rsx, dy + n * C, gamma, mean[n],       \
                                  rstd[n], C, csx, rr);                                      \
    }                                                                                        \
}                                                                                            \
ATTR static void pynn_ln_cols_##SUF##_##SFX(T *dgamma, T *dbeta, const T *x, const T *dy,    \
                                            const T *mean, const T *rstd, pynn_idx N,        \
                                            pynn_idx C, pynn_idx j0, pynn_idx j1,            \
                                            pynn_idx rsx, pynn_idx csx) {                    \
    /* whole blocks of 64 contiguous columns: the sums in local arrays (registers); on       \
     * dgamma/dbeta the compiler must assume they alias x and dy, and stores and reloads     \
     * every sum a row. Same order per column, same bits */                                  \
    if (csx == 1)                                                                            \
        for (; j0 + 64 <= j1; j0 += 64) {                                                    \
            T g[64], b[64];                                                                  \
            for (int j = 0; j < 64; j++) { g[j] = 0; b[j] = 0; }                             \
            for (pynn_idx n = 0; n < N; n++) {                                               \
                const T *restrict xr = x + n * rsx + j0, *restrict dyr = dy + n * C + j0;    \
                T m = mean[n], r = rstd[n];                                                  \
                _Pragma("omp simd")                                                          \
                for (int j = 0; j < 64; j++) {                                               \
                    g[j] += dyr[j] * ((xr[j] - m) * r);                                      \
                    b[j] += dyr[j];                                                          \
                }                                                                            \
            }                                                                                \
            for (int j = 0; j < 64; j++) { dgamma[j0 + j] = g[j]; dbeta[j0 + j] = b[j]; }     \
        }                                                                                    \
    for (pynn_idx j = j0; j < j1; j++) { dgamma[j] = 0; dbeta[j] = 0; }                      \
    for (pynn_idx n = 0; n < N; n++) {                                                       \
        const T *xr = x + n * rsx, *dyr = dy + n * C;                                        \
        T m = mean[n], r = rstd[n];                                                          \
        if (csx == 1)                                                                        \
            for (pynn_idx j = j0; j < j1; j++) {                                             \
                dgamma[j] += dyr[j] * ((xr[j] - m) * r);                                     \
                dbeta[j] += dyr[j];                                                          \
            }                                                                                \
        else                                                                                 \
            for (pynn_idx j = j0; j < j1; j++) {                                             \
                dgamma[j] += dyr[j] * ((xr[j * csx] - m) * r);                               \
                dbeta[j] += dyr[j];                                                          \
            }                                                                                \
    }                                                                                        \
}

#define PYNN_LAYERNORM_FAMILY(T, SUF)                                                        \
PYNN_LN_ROW_MATH(T, SUF)                                                                     \
PYNN_LN_BLOCKS(T, SUF, generic, )                                                            \
PYNN_LN_BLOCKS(T, SUF, avx2, PYNN_LN_TARGET_AVX2)                                            \
PYNN_LN_BLOCKS(T, SUF, avx512, PYNN_LN_TARGET_AVX512)                                        \
typedef void (*pynn_ln_fwd_fn_##SUF)(T *, T *, T *, const T *, const T *, const T *,         \
                                     pynn_idx, pynn_idx, pynn_idx, pynn_idx, pynn_idx,       \
                                     double);                                                \
typedef void (*pynn_ln_bwd_fn_##SUF)(T *, const T *, const T *, const T *, const T *,        \
                                     const T *, pynn_idx, pynn_idx, pynn_idx, pynn_idx,      \
                                     pynn_idx, const T *, int);                              \
typedef void (*pynn_ln_cols_fn_##SUF)(T *, T *, const T *, const T *, const T *, const T *,  \
                                      pynn_idx, pynn_idx, pynn_idx, pynn_idx, pynn_idx,      \
                                      pynn_idx);                                             \
static const pynn_ln_fwd_fn_##SUF pynn_ln_fwd_##SUF[3] = {                                   \
    pynn_ln_fwd_##SUF##_generic, pynn_ln_fwd_##SUF##_avx2, pynn_ln_fwd_##SUF##_best};        \
static const pynn_ln_bwd_fn_##SUF pynn_ln_bwd_##SUF[3] = {                                   \
    pynn_ln_bwd_##SUF##_generic, pynn_ln_bwd_##SUF##_avx2, pynn_ln_bwd_##SUF##_best};        \
static const pynn_ln_cols_fn_##SUF pynn_ln_cols_##SUF[3] = {                                 \
    pynn_ln_cols_##SUF##_generic, pynn_ln_cols_##SUF##_avx2, pynn_ln_cols_##SUF##_avx512};   \
                                                                                             \
void pynn_layernorm_forward_##SUF(T *y, T *mean, T *rstd, const T *x, const T *gamma,        \
                                  const T *beta, pynn_idx N, pynn_idx C, pynn_idx rsx,       \
                                  pynn_idx csx, double eps, pynn_ctx ctx) {                  \
    /* y (N,C) = (x (N,C) - mean (N)) * rstd (N) * gamma (C) + beta (C) */                    \
    pynn_ln_fwd_fn_##SUF fwd = pynn_ln_fwd_##SUF[PYNN_LN_ISA(ctx)];                          \
    int nt = pynn_threads_for(ctx, 4.0 * (double)N * (double)C);                             \
    if (nt > N) nt = (int)(N < 1 ? 1 : N);                                                   \
    _Pragma("omp parallel for num_threads(nt) schedule(static) if(nt > 1)")                  \
    for (int t = 0; t < nt; t++)                                                             \
        fwd(y, mean, rstd, x, gamma, beta, N * t / nt, N * (t + 1) / nt, C, rsx, csx, eps);  \
}                                                                                            \
                                                                                             \
void pynn_layernorm_backward_##SUF(T *dx, T *dgamma, T *dbeta, const T *x, const T *gamma,   \
                                   const T *mean, const T *rstd, const T *dy, pynn_idx N,    \
                                   pynn_idx C, pynn_idx rsx, pynn_idx csx, const T *res,     \
                                   int accumulate, pynn_ctx ctx) {                           \
    /* dx (N,C) = [res (N,C) | dx +] rstd * (dy*gamma - mean(dy*gamma) - xhat *             \
     * mean(dy*gamma*xhat));                                                                 \
     * dgamma (C) = sum_n dy * xhat, dbeta (C) = sum_n dy  (dy (N,C) contiguous) */          \
    int isa = PYNN_LN_ISA(ctx);                                                              \
    pynn_ln_cols_fn_##SUF cols = pynn_ln_cols_##SUF[isa];                                    \
    pynn_ln_bwd_fn_##SUF bwd = pynn_ln_bwd_##SUF[isa];                                       \
    int nt = pynn_threads_for(ctx, 6.0 * (double)N * (double)C);                             \
    pynn_idx nblk = (C + 15) / 16;                                                           \
    int ntc = nt > nblk ? (int)nblk : nt;                                                    \
    (void)ntc;                                                                               \
    _Pragma("omp parallel for num_threads(ntc) schedule(static) if(ntc > 1)")                \
    for (int t = 0; t < ntc; t++)                                                            \
        cols(dgamma, dbeta, x, dy, mean, rstd, N, C, nblk * t / ntc * 16,                    \
             PYNN_MIN(C, nblk * (t + 1) / ntc * 16), rsx, csx);                              \
    if (!dx) return;                                                                         \
    if (nt > N) nt = (int)(N < 1 ? 1 : N);                                                   \
    _Pragma("omp parallel for num_threads(nt) schedule(static) if(nt > 1)")                  \
    for (int t = 0; t < nt; t++)                                                             \
        bwd(dx, x, dy, gamma, mean, rstd, N * t / nt, N * (t + 1) / nt, C, rsx, csx, res,    \
            accumulate);                                                                     \
}

/* The AVX-512 slots of the forward and backward tables: float rows with contiguous columns
 * run on the intrinsics below, everything else on the compiled rows above */
#if defined(__GNUC__) && (defined(__x86_64__) || defined(__i386__))
static void pynn_ln_fwd_f32_best(float *y, float *mean, float *rstd, const float *x,
                                 const float *gamma, const float *beta, pynn_idx n0,
                                 pynn_idx n1, pynn_idx C, pynn_idx rsx, pynn_idx csx,
                                 double eps);
static void pynn_ln_bwd_f32_best(float *dx, const float *x, const float *dy,
                                 const float *gamma, const float *mean, const float *rstd,
                                 pynn_idx n0, pynn_idx n1, pynn_idx C, pynn_idx rsx,
                                 pynn_idx csx, const float *res, int accumulate);
#else
#define pynn_ln_fwd_f32_best pynn_ln_fwd_f32_avx512
#define pynn_ln_bwd_f32_best pynn_ln_bwd_f32_avx512
#endif
#define pynn_ln_fwd_f64_best pynn_ln_fwd_f64_avx512
#define pynn_ln_bwd_f64_best pynn_ln_bwd_f64_avx512

PYNN_LAYERNORM_FAMILY(float, f32)
PYNN_LAYERNORM_FAMILY(double, f64)

#if defined(__GNUC__) && (defined(__x86_64__) || defined(__i386__))
#include <immintrin.h>
/* Row sums of 8 rows at once by the halving tree of PYNN_LN_REDUCE16 (acc[i] += acc[i + k],
 * k = 8, 4, 2, 1): lo[r], hi[r] hold row r's lanes 0-7 and 8-15; lane r of the result is
 * row r's sum. The same additions on the same pairs as the rows' tree, so the same bits;
 * the rows' version stored its lanes to the stack and reduced them one by one. */
PYNN_LN_TARGET_AVX512 static inline __m512d pynn_ln_tree8(const __m512d *lo, const __m512d *hi) {
    __m512d b[8], c[4], d[2];
    for (int r = 0; r < 8; r++) b[r] = _mm512_add_pd(lo[r], hi[r]);          /* k = 8 */
    for (int r = 0; r < 4; r++)      /* k = 4: [b2r[0:4] + b2r[4:8] | b2r+1[0:4] + ...] */
        c[r] = _mm512_add_pd(_mm512_shuffle_f64x2(b[2 * r], b[2 * r + 1], 0x44),
                             _mm512_shuffle_f64x2(b[2 * r], b[2 * r + 1], 0xEE));
    for (int r = 0; r < 2; r++)      /* k = 2: 2 values a row, rows 4r .. 4r+3 */
        d[r] = _mm512_add_pd(_mm512_shuffle_f64x2(c[2 * r], c[2 * r + 1], 0x88),
                             _mm512_shuffle_f64x2(c[2 * r], c[2 * r + 1], 0xDD));
    /* k = 1: lanes (0, 4, 1, 5, 2, 6, 3, 7) hold rows 0, 4, 1, 5, ... */
    __m512d e = _mm512_add_pd(_mm512_unpacklo_pd(d[0], d[1]), _mm512_unpackhi_pd(d[0], d[1]));
    return _mm512_permutexvar_pd(_mm512_setr_epi64(0, 2, 4, 6, 1, 3, 5, 7), e);
}

/* pynn_ln_row_fwd_f32 on 8 rows at a time (contiguous columns): the same per-lane double
 * sums (lanes j mod 16, blocks in order, the tail on its first lanes), tree, divisions and
 * float arithmetic, so the same bits; the 8 rows' reductions, square roots and divisions in
 * vectors. A row by itself was a chain of dependent scalar steps (sum, tree, mean, second
 * sum, tree, sqrt, divide) that the core could not overlap: 2048 x 128 took 200 us. */
PYNN_LN_TARGET_AVX512 static void pynn_ln_fwd_f32_best(
        float *y, float *mean, float *rstd, const float *x, const float *gamma,
        const float *beta, pynn_idx n0, pynn_idx n1, pynn_idx C, pynn_idx rsx, pynn_idx csx,
        double eps) {
    if (csx != 1) {
        pynn_ln_fwd_f32_avx512(y, mean, rstd, x, gamma, beta, n0, n1, C, rsx, csx, eps);
        return;
    }
    const pynn_idx cv = C - C % 16;                       /* whole blocks of 16 columns */
    const int rem = (int)(C % 16);
    const __mmask8 tlo = (__mmask8)((1u << PYNN_MIN(rem, 8)) - 1u);
    const __mmask8 thi = (__mmask8)((1u << (rem > 8 ? rem - 8 : 0)) - 1u);
    const __mmask16 tail = (__mmask16)((1u << rem) - 1u);
    const __m512d vc = _mm512_set1_pd((double)C), ve = _mm512_set1_pd(eps);
    pynn_idx n = n0;
    for (; n + 8 <= n1; n += 8) {
        __m512d lo[8], hi[8];
        float mf[8] __attribute__((aligned(32))), rf[8] __attribute__((aligned(32)));
        for (int r = 0; r < 8; r++) {                     /* sums */
            const float *xr = x + (n + r) * rsx;
            __m512d a = _mm512_setzero_pd(), b = _mm512_setzero_pd();
            for (pynn_idx j = 0; j < cv; j += 16) {
                __m512 v = _mm512_loadu_ps(xr + j);
                a = _mm512_add_pd(a, _mm512_cvtps_pd(_mm512_castps512_ps256(v)));
                b = _mm512_add_pd(b, _mm512_cvtps_pd(_mm512_extractf32x8_ps(v, 1)));
            }
            if (rem) {
                __m512 v = _mm512_maskz_loadu_ps(tail, xr + cv);
                a = _mm512_mask_add_pd(a, tlo, a, _mm512_cvtps_pd(_mm512_castps512_ps256(v)));
                b = _mm512_mask_add_pd(b, thi, b, _mm512_cvtps_pd(_mm512_extractf32x8_ps(v, 1)));
            }
            lo[r] = a, hi[r] = b;
        }
        __m256 m8 = _mm512_cvtpd_ps(_mm512_div_pd(pynn_ln_tree8(lo, hi), vc));
        _mm256_store_ps(mf, m8);
        for (int r = 0; r < 8; r++) {                     /* sums of squares */
            const float *xr = x + (n + r) * rsx;
            const __m512 m = _mm512_set1_ps(mf[r]);
            __m512d a = _mm512_setzero_pd(), b = _mm512_setzero_pd();
            for (pynn_idx j = 0; j < cv; j += 16) {
                __m512 v = _mm512_sub_ps(_mm512_loadu_ps(xr + j), m);
                __m512d dl = _mm512_cvtps_pd(_mm512_castps512_ps256(v));
                __m512d dh = _mm512_cvtps_pd(_mm512_extractf32x8_ps(v, 1));
                a = _mm512_fmadd_pd(dl, dl, a);
                b = _mm512_fmadd_pd(dh, dh, b);
            }
            if (rem) {
                __m512 v = _mm512_sub_ps(_mm512_maskz_loadu_ps(tail, xr + cv), m);
                __m512d dl = _mm512_cvtps_pd(_mm512_castps512_ps256(v));
                __m512d dh = _mm512_cvtps_pd(_mm512_extractf32x8_ps(v, 1));
                a = _mm512_mask3_fmadd_pd(dl, dl, a, tlo);
                b = _mm512_mask3_fmadd_pd(dh, dh, b, thi);
            }
            lo[r] = a, hi[r] = b;
        }
        __m512d var = _mm512_add_pd(_mm512_div_pd(pynn_ln_tree8(lo, hi), vc), ve);
        __m256 r8 = _mm512_cvtpd_ps(_mm512_div_pd(_mm512_set1_pd(1.0), _mm512_sqrt_pd(var)));
        _mm256_store_ps(rf, r8);
        _mm256_storeu_ps(mean + n, m8);
        _mm256_storeu_ps(rstd + n, r8);
        for (int r = 0; r < 8; r++) {                     /* y = (x - m) r gamma + beta */
            const float *xr = x + (n + r) * rsx;
            float *yr = y + (n + r) * C;
            const __m512 m = _mm512_set1_ps(mf[r]), rs = _mm512_set1_ps(rf[r]);
            pynn_idx j = 0;
            for (; j < cv; j += 16) {
                __m512 t = _mm512_mul_ps(_mm512_sub_ps(_mm512_loadu_ps(xr + j), m), rs);
                __m512 g = _mm512_loadu_ps(gamma + j);
                _mm512_storeu_ps(yr + j, beta ? _mm512_fmadd_ps(t, g, _mm512_loadu_ps(beta + j))
                                              : _mm512_mul_ps(t, g));
            }
            if (rem) {
                __m512 t = _mm512_mul_ps(_mm512_sub_ps(_mm512_maskz_loadu_ps(tail, xr + j), m),
                                         rs);
                __m512 g = _mm512_maskz_loadu_ps(tail, gamma + j);
                _mm512_mask_storeu_ps(yr + j, tail,
                                      beta ? _mm512_fmadd_ps(t, g,
                                                             _mm512_maskz_loadu_ps(tail, beta + j))
                                           : _mm512_mul_ps(t, g));
            }
        }
    }
    if (n < n1)                                          /* the last rows, one by one */
        pynn_ln_fwd_f32_avx512(y, mean, rstd, x, gamma, beta, n, n1, C, rsx, csx, eps);
}

/* the sum of a row's 16 lanes by PYNN_LN_REDUCE16's tree (acc[i] += acc[i + k], k = 8, 4,
 * 2, 1) */
PYNN_LN_TARGET_AVX512 static inline float pynn_ln_tree16(__m512 v) {
    __m256 s8 = _mm256_add_ps(_mm512_castps512_ps256(v), _mm512_extractf32x8_ps(v, 1));
    __m128 s4 = _mm_add_ps(_mm256_castps256_ps128(s8), _mm256_extractf128_ps(s8, 1));
    __m128 s2 = _mm_add_ps(s4, _mm_movehl_ps(s4, s4));
    return _mm_cvtss_f32(_mm_add_ss(s2, _mm_shuffle_ps(s2, s2, 1)));
}

/* pynn_ln_row_bwd_f32 on 4 rows at a time (contiguous columns, C > 1): each row's two sums
 * and divisions, then its dx, side by side (a row by itself was a chain of dependent steps,
 * two lane sums and two divisions, that the core could not overlap). The operations of the
 * compiled rows as gcc fuses them: the sums' multiply-adds (the tail on the first lanes),
 * dy gamma - ma and the - xhat mb that follows as fused steps, and the residual's add onto
 * r (...) fused with that product, so the same bits (a test compares with the AVX2 rows). */
PYNN_LN_TARGET_AVX512 static void pynn_ln_bwd_f32_best(
        float *dx, const float *x, const float *dy, const float *gamma, const float *mean,
        const float *rstd, pynn_idx n0, pynn_idx n1, pynn_idx C, pynn_idx rsx, pynn_idx csx,
        const float *res, int accumulate) {
    pynn_idx n = n0;
    if (csx == 1 && C > 1) {
        const pynn_idx cv = C - C % 16;
        const __mmask16 tail = (__mmask16)((1u << (C % 16)) - 1u);
        for (; n + 4 <= n1; n += 4) {
            __m512 ma[4], mb[4];
            for (int r = 0; r < 4; r++) {
                const float *xr = x + (n + r) * rsx, *dyr = dy + (n + r) * C;
                const __m512 m = _mm512_set1_ps(mean[n + r]), rs = _mm512_set1_ps(rstd[n + r]);
                __m512 a = _mm512_setzero_ps(), b = _mm512_setzero_ps();
                for (pynn_idx j = 0; j < cv; j += 16)
                    a = _mm512_fmadd_ps(_mm512_loadu_ps(dyr + j), _mm512_loadu_ps(gamma + j), a);
                if (tail)
                    a = _mm512_mask3_fmadd_ps(_mm512_maskz_loadu_ps(tail, dyr + cv),
                                              _mm512_maskz_loadu_ps(tail, gamma + cv), a, tail);
                for (pynn_idx j = 0; j < cv; j += 16) {
                    __m512 dg = _mm512_mul_ps(_mm512_loadu_ps(dyr + j), _mm512_loadu_ps(gamma + j));
                    __m512 xh = _mm512_mul_ps(_mm512_sub_ps(_mm512_loadu_ps(xr + j), m), rs);
                    b = _mm512_fmadd_ps(dg, xh, b);
                }
                if (tail) {
                    __m512 dg = _mm512_mul_ps(_mm512_maskz_loadu_ps(tail, dyr + cv),
                                              _mm512_maskz_loadu_ps(tail, gamma + cv));
                    __m512 xh = _mm512_mul_ps(_mm512_sub_ps(_mm512_maskz_loadu_ps(tail, xr + cv),
                                                            m), rs);
                    b = _mm512_mask3_fmadd_ps(dg, xh, b, tail);
                }
                ma[r] = _mm512_set1_ps(pynn_ln_tree16(a) / (float)C);
                mb[r] = _mm512_set1_ps(pynn_ln_tree16(b) / (float)C);
            }
            for (int r = 0; r < 4; r++) {
                const float *xr = x + (n + r) * rsx, *dyr = dy + (n + r) * C;
                float *dxr = dx + (n + r) * C;
                const float *rr = res ? res + (n + r) * C : accumulate ? dxr : NULL;
                const __m512 m = _mm512_set1_ps(mean[n + r]), rs = _mm512_set1_ps(rstd[n + r]);
                for (pynn_idx j = 0; j < C; j += 16) {
                    __mmask16 k = j < cv ? (__mmask16)0xFFFF : tail;
                    __m512 xh = _mm512_mul_ps(_mm512_sub_ps(_mm512_maskz_loadu_ps(k, xr + j), m),
                                              rs);
                    __m512 z = _mm512_fnmadd_ps(xh, mb[r], _mm512_fmsub_ps(
                        _mm512_maskz_loadu_ps(k, dyr + j), _mm512_maskz_loadu_ps(k, gamma + j),
                        ma[r]));
                    z = rr ? _mm512_fmadd_ps(rs, z, _mm512_maskz_loadu_ps(k, rr + j))
                           : _mm512_mul_ps(rs, z);
                    _mm512_mask_storeu_ps(dxr + j, k, z);
                }
            }
        }
    }
    if (n < n1)                                          /* the other rows, one by one */
        pynn_ln_bwd_f32_avx512(dx, x, dy, gamma, mean, rstd, n, n1, C, rsx, csx, res,
                               accumulate);
}
#endif
