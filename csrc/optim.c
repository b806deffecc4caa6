/* optim.c - fused in-place optimizer updates (SGD, Adam/AdamW, RMSprop, Adagrad) and
 * global-norm clipping over one flat parameter buffer (llm.c style), Keras 3 formulas.
 *
 * Each update is one pass: param, state and grad element i are read once and written once.
 * Decoupled weight decay comes first inside the same pass: p -= lr * weight_decay * p.
 * Scalars are rounded to T once, then all arithmetic is in T, in the order of the NumPy
 * twin (pynn/reference/optim.py), so the portable path matches it to the last bit or two.
 *
 * Subnormals: the moments of weights whose gradient is always zero decay geometrically into
 * subnormal floats, on which x86 arithmetic is ~50x slower. Every update and the clip scaling
 * run under PYNN_FTZ_BEGIN/END (flush-to-zero + denormals-are-zero, set and restored on each
 * thread), so such state becomes exactly 0 and a late step costs what an early one does.
 * global_norm does not: DAZ would read subnormal inputs as 0.
 *
 * Parallel split: the buffer is cut into chunks of PYNN_OPT_CHUNK elements, handed out
 * schedule(static); each chunk runs a vectorizable loop compiled for the ISA in ctx (GCC
 * target attributes; no ISA flags on this file). Updates are elementwise, so one thread
 * writes each element. global_norm sums a fixed number of blocks whose bounds depend on n
 * only, each in index order with 8 fixed lanes, then adds the block sums in block order:
 * the bits do not depend on the thread count. */
#include <float.h>
#include <math.h>

#include "optim.h"

#define PYNN_OPT_CHUNK 4096   /* elements per scheduling unit of the updates */
#define PYNN_NORM_BLOCKS 64   /* partial sums of global_norm: a fixed-size stack array */

#if defined(__GNUC__) && (defined(__x86_64__) || defined(__i386__))
#define PYNN_TGT_AVX2 __attribute__((target("avx2,fma")))
#define PYNN_TGT_AVX512 __attribute__((target("avx512f,avx512dq,avx512vl,avx512bw,avx2,fma")))
#else
#define PYNN_TGT_AVX2
#define PYNN_TGT_AVX512
#endif

/* The per-chunk loops, compiled once per ISA. decay != 0: apply weight decay lwd. */
#define PYNN_OPTIM_RANGES(T, SUF, ISA, ATTR, SQRT)                                          \
static ATTR void pynn_sgd_range_##SUF##_##ISA(T *restrict p, T *restrict vel,               \
        const T *restrict g, pynn_idx n, T lr, T mom, int nesterov, T lwd, int decay) {     \
    /* p (n) -= lr g, or v (n) = mom v - lr g; p += v (nesterov: p += mom v - lr g) */      \
    if (!vel) {                                                                             \
        for (pynn_idx i = 0; i < n; i++) {                                                  \
            T pi = p[i];                                                                    \
            if (decay) pi = pi - lwd * pi;                                                  \
            p[i] = pi - lr * g[i];                                                          \
        }                                                                                   \
    } else if (nesterov) {                                                                  \
        for (pynn_idx i = 0; i < n; i++) {                                                  \
            T pi = p[i], gi = g[i];                                                         \
            if (decay) pi = pi - lwd * pi;                                                  \
            T vi = mom * vel[i] - lr * gi;                                                  \
            vel[i] = vi;                                                                    \
            p[i] = pi + (mom * vi - lr * gi);                                               \
        }                                                                                   \
    } else {                                                                                \
        for (pynn_idx i = 0; i < n; i++) {                                                  \
            T pi = p[i];                                                                    \
            if (decay) pi = pi - lwd * pi;                                                  \
            T vi = mom * vel[i] - lr * g[i];                                                \
            vel[i] = vi;                                                                    \
            p[i] = pi + vi;                                                                 \
        }                                                                                   \
    }                                                                                       \
}                                                                                           \
                                                                                            \
static ATTR void pynn_adam_range_##SUF##_##ISA(T *restrict p, T *restrict m,                \
        T *restrict v, const T *restrict g, pynn_idx n, T b1, T c1, T b2, T c2, T alpha,    \
        T eps, T lwd, int decay) {                                                          \
    /* m (n) = b1 m + c1 g; v (n) = b2 v + c2 g^2; p (n) -= alpha m / (sqrt(v) + eps) */    \
    for (pynn_idx i = 0; i < n; i++) {                                                      \
        T gi = g[i], pi = p[i];                                                             \
        T mi = b1 * m[i] + c1 * gi;                                                         \
        T vi = b2 * v[i] + c2 * (gi * gi);                                                  \
        m[i] = mi;                                                                          \
        v[i] = vi;                                                                          \
        if (decay) pi = pi - lwd * pi;                                                      \
        p[i] = pi - (alpha * mi) / (SQRT(vi) + eps);                                        \
    }                                                                                       \
}                                                                                           \
                                                                                            \
static ATTR void pynn_rmsprop_range_##SUF##_##ISA(T *restrict p, T *restrict sq,            \
        T *restrict vel, T *restrict mg, const T *restrict g, pynn_idx n, T lr, T rho,      \
        T c, T eps, T mom, T lwd, int decay) {                                              \
    /* sq (n) = rho sq + (1-rho) g^2; [mg = rho mg + (1-rho) g]; inc = lr g / sqrt(sq       \
     * [- mg^2, at least 0] + eps); [vel = mom vel + inc; p -= vel] or p -= inc */          \
    for (pynn_idx i = 0; i < n; i++) {                                                      \
        T gi = g[i], pi = p[i];                                                             \
        T si = rho * sq[i] + c * (gi * gi);                                                 \
        T den;                                                                              \
        sq[i] = si;                                                                         \
        if (mg) {                                                                           \
            T ai = rho * mg[i] + c * gi;                                                    \
            mg[i] = ai;                                                                     \
            T d0 = si - ai * ai;    /* >= 0 in exact arithmetic; rounding: clamp */          \
            den = (d0 < (T)0 ? (T)0 : d0) + eps;                                            \
        } else {                                                                            \
            den = si + eps;                                                                 \
        }                                                                                   \
        T inc = lr * gi / SQRT(den);                                                        \
        if (decay) pi = pi - lwd * pi;                                                      \
        if (vel) {                                                                          \
            T wi = mom * vel[i] + inc;                                                      \
            vel[i] = wi;                                                                    \
            p[i] = pi - wi;                                                                 \
        } else {                                                                            \
            p[i] = pi - inc;                                                                \
        }                                                                                   \
    }                                                                                       \
}                                                                                           \
                                                                                            \
static ATTR void pynn_adagrad_range_##SUF##_##ISA(T *restrict p, T *restrict acc,           \
        const T *restrict g, pynn_idx n, T lr, T eps, T lwd, int decay) {                   \
    /* acc (n) += g^2; p (n) -= lr g / sqrt(acc + eps) */                                   \
    for (pynn_idx i = 0; i < n; i++) {                                                      \
        T gi = g[i], pi = p[i];                                                             \
        T ai = acc[i] + gi * gi;                                                            \
        acc[i] = ai;                                                                        \
        if (decay) pi = pi - lwd * pi;                                                      \
        p[i] = pi - lr * gi / SQRT(ai + eps);                                               \
    }                                                                                       \
}                                                                                           \
                                                                                            \
static ATTR void pynn_scale_range_##SUF##_##ISA(T *restrict x, pynn_idx n, T s) {           \
    /* x (n) *= s */                                                                        \
    for (pynn_idx i = 0; i < n; i++) x[i] = x[i] * s;                                       \
}                                                                                           \
                                                                                            \
static ATTR double pynn_sumsq_range_##SUF##_##ISA(const T *restrict x, pynn_idx n,          \
                                                  double sc) {                              \
    /* sum over i of (x[i] sc)^2 in double: 8 lanes, lane j takes i = j mod 8, fixed tree */ \
    double acc[8] = {0, 0, 0, 0, 0, 0, 0, 0};                                               \
    pynn_idx i = 0;                                                                         \
    for (; i + 8 <= n; i += 8)                                                              \
        for (int j = 0; j < 8; j++) {                                                       \
            double t = (double)x[i + j] * sc;                                               \
            acc[j] += t * t;                                                                \
        }                                                                                   \
    for (int j = 0; i < n; i++, j++) {                                                      \
        double t = (double)x[i] * sc;                                                       \
        acc[j] += t * t;                                                                    \
    }                                                                                       \
    return ((acc[0] + acc[4]) + (acc[2] + acc[6])) + ((acc[1] + acc[5]) + (acc[3] + acc[7])); \
}

/* Runs NAME on every chunk [i0, i0 + len) in parallel under flush-to-zero; the variadic
 * arguments are NAME's, written in terms of i0 and len. */
#define PYNN_OPT_RUN(NAME, SUF, ctx, n, work, ...)                                          \
    do {                                                                                    \
        int nt_ = pynn_threads_for(ctx, (work));                                            \
        int isa_ = (ctx).isa;                                                               \
        (void)nt_; /* unused in a serial build */                                           \
        pynn_idx nch_ = ((n) + PYNN_OPT_CHUNK - 1) / PYNN_OPT_CHUNK;                        \
        _Pragma("omp parallel num_threads(nt_) if(nt_ > 1)")                                \
        {                                                                                   \
            PYNN_FTZ_BEGIN;                                                                 \
            _Pragma("omp for schedule(static)")                                             \
            for (pynn_idx c_ = 0; c_ < nch_; c_++) {                                        \
                pynn_idx i0 = c_ * PYNN_OPT_CHUNK, len = PYNN_MIN(PYNN_OPT_CHUNK, (n) - i0); \
                if (isa_ >= PYNN_ISA_AVX512) NAME##_##SUF##_avx512(__VA_ARGS__);            \
                else if (isa_ >= PYNN_ISA_AVX2) NAME##_##SUF##_avx2(__VA_ARGS__);           \
                else NAME##_##SUF##_generic(__VA_ARGS__);                                   \
            }                                                                               \
            PYNN_FTZ_END;                                                                   \
        }                                                                                   \
    } while (0)

#define PYNN_OFF(ptr) ((ptr) ? (ptr) + i0 : NULL)

#define PYNN_OPTIM_FAMILY(T, SUF)                                                           \
void pynn_sgd_update_##SUF(T *param, T *velocity, const T *grad, pynn_idx n, double lr,     \
                           double momentum, int nesterov, double weight_decay,              \
                           pynn_ctx ctx) {                                                  \
    /* param (n), velocity (n) or NULL, updated in place from grad (n) */                   \
    T lr_ = (T)lr, mom = (T)momentum, lwd = (T)(lr * weight_decay);                         \
    int decay = weight_decay != 0.0;                                                        \
    PYNN_OPT_RUN(pynn_sgd_range, SUF, ctx, n, 12.0 * (double)n,                             \
                 param + i0, PYNN_OFF(velocity), grad + i0, len, lr_, mom, nesterov, lwd,   \
                 decay);                                                                    \
}                                                                                           \
                                                                                            \
void pynn_adam_update_##SUF(T *param, T *m, T *v, const T *grad, pynn_idx n, double lr,     \
                            double beta_1, double beta_2, double epsilon, int64_t step,     \
                            double weight_decay, pynn_ctx ctx) {                            \
    /* param, m, v (n) updated in place from grad (n); step t >= 1 for bias correction */   \
    double t = (double)step;                                                                \
    T alpha = (T)(lr * sqrt(1.0 - pow(beta_2, t)) / (1.0 - pow(beta_1, t)));                \
    T b1 = (T)beta_1, c1 = (T)(1.0 - beta_1), b2 = (T)beta_2, c2 = (T)(1.0 - beta_2);       \
    T eps = (T)epsilon, lwd = (T)(lr * weight_decay);                                       \
    int decay = weight_decay != 0.0;                                                        \
    PYNN_OPT_RUN(pynn_adam_range, SUF, ctx, n, 28.0 * (double)n,                            \
                 param + i0, m + i0, v + i0, grad + i0, len, b1, c1, b2, c2, alpha, eps,    \
                 lwd, decay);                                                               \
}                                                                                           \
                                                                                            \
void pynn_rmsprop_update_##SUF(T *param, T *sq_avg, T *velocity, T *mean_grad,              \
                               const T *grad, pynn_idx n, double lr, double rho,            \
                               double epsilon, double momentum, double weight_decay,        \
                               pynn_ctx ctx) {                                              \
    /* param, sq_avg (n), velocity / mean_grad (n) or NULL, updated from grad (n) */        \
    T lr_ = (T)lr, rho_ = (T)rho, c = (T)(1.0 - rho), eps = (T)epsilon;                     \
    T mom = (T)momentum, lwd = (T)(lr * weight_decay);                                      \
    int decay = weight_decay != 0.0;                                                        \
    PYNN_OPT_RUN(pynn_rmsprop_range, SUF, ctx, n, 28.0 * (double)n,                         \
                 param + i0, sq_avg + i0, PYNN_OFF(velocity), PYNN_OFF(mean_grad),          \
                 grad + i0, len, lr_, rho_, c, eps, mom, lwd, decay);                       \
}                                                                                           \
                                                                                            \
void pynn_adagrad_update_##SUF(T *param, T *accum, const T *grad, pynn_idx n, double lr,    \
                               double epsilon, double weight_decay, pynn_ctx ctx) {         \
    /* param, accum (n) updated in place from grad (n) */                                   \
    T lr_ = (T)lr, eps = (T)epsilon, lwd = (T)(lr * weight_decay);                          \
    int decay = weight_decay != 0.0;                                                        \
    PYNN_OPT_RUN(pynn_adagrad_range, SUF, ctx, n, 20.0 * (double)n,                         \
                 param + i0, accum + i0, grad + i0, len, lr_, eps, lwd, decay);             \
}                                                                                           \
                                                                                            \
static double pynn_sumsq_##SUF(const T *x, pynn_idx n, double sc, pynn_ctx ctx) {           \
    /* sum (x (n) sc)^2 over PYNN_NORM_BLOCKS blocks whose bounds depend on n only */       \
    double part[PYNN_NORM_BLOCKS];                                                          \
    pynn_idx nch = (n + PYNN_OPT_CHUNK - 1) / PYNN_OPT_CHUNK;                               \
    int nb = (int)PYNN_MIN((pynn_idx)PYNN_NORM_BLOCKS, nch);                                \
    int nt = pynn_threads_for(ctx, 4.0 * (double)n);                                        \
    int isa = ctx.isa;                                                                      \
    (void)nt;                                                                               \
    _Pragma("omp parallel for num_threads(nt) schedule(static) if(nt > 1)")                 \
    for (int b = 0; b < nb; b++) {                                                          \
        pynn_idx i0 = n * b / nb, len = n * (b + 1) / nb - i0;                              \
        if (isa >= PYNN_ISA_AVX512) part[b] = pynn_sumsq_range_##SUF##_avx512(x + i0, len, sc); \
        else if (isa >= PYNN_ISA_AVX2) part[b] = pynn_sumsq_range_##SUF##_avx2(x + i0, len, sc); \
        else part[b] = pynn_sumsq_range_##SUF##_generic(x + i0, len, sc);                   \
    }                                                                                       \
    double s = 0.0;                                                                         \
    for (int b = 0; b < nb; b++) s += part[b];                                              \
    return s;                                                                               \
}                                                                                           \
                                                                                            \
double pynn_global_norm_##SUF(const T *x, pynn_idx n, pynn_ctx ctx) {                       \
    /* sqrt(sum x (n)^2), squares summed in double in a thread-independent order */         \
    double s = pynn_sumsq_##SUF(x, n, 1.0, ctx);                                            \
    if (s == s && (s > 0x1p1000 || s < 0x1p-900)) {                                         \
        /* overflow or underflow of the squares: rescale by a power of two of max|x| */     \
        double mx = 0.0;                                                                    \
        for (pynn_idx i = 0; i < n; i++) {                                                  \
            double a = fabs((double)x[i]);                                                  \
            mx = a > mx ? a : mx;                                                           \
        }                                                                                   \
        if (mx == 0.0 || isinf(mx)) return mx;                                              \
        int e;                                                                              \
        frexp(mx, &e);                                                                      \
        int sh = -e < 1000 ? -e : 1000;  /* 2^-e overflows for subnormal mx (e < -1023) */   \
        s = pynn_sumsq_##SUF(x, n, ldexp(1.0, sh), ctx);                                    \
        return ldexp(sqrt(s), -sh);                                                         \
    }                                                                                       \
    return sqrt(s);                                                                         \
}                                                                                           \
                                                                                            \
double pynn_clip_by_global_norm_##SUF(T *grad, pynn_idx n, double max_norm, pynn_ctx ctx) { \
    /* norm = global_norm(grad (n)); grad *= max_norm / norm when finite norm > max_norm */ \
    double norm = pynn_global_norm_##SUF(grad, n, ctx);                                     \
    if (norm > max_norm && !isinf(norm)) {                                                  \
        double sd = max_norm / norm;                                                        \
        T s = (T)sd;                                                                        \
        if (sd < (sizeof(T) == 4 ? (double)FLT_MIN : DBL_MIN)) {                            \
            /* a subnormal factor would be flushed to 0 (FTZ/DAZ): two normal factors, or  \
             * 0 where even its square root rounds to 0 in T (max_norm / norm below ~1e-90  \
             * in float32, or 0 in double): zeros, as the factor's (T) rounding gives the   \
             * reference, not 0 * (sd / 0) = NaN */                                          \
            T s1 = (T)sqrt(sd);                                                             \
            if (s1 > (T)0) {                                                                \
                PYNN_OPT_RUN(pynn_scale_range, SUF, ctx, n, 8.0 * (double)n, grad + i0, len,  \
                             s1);                                                           \
                s = (T)(sd / (double)s1);                                                   \
            } else                                                                          \
                s = (T)0;                                                                   \
        }                                                                                   \
        PYNN_OPT_RUN(pynn_scale_range, SUF, ctx, n, 8.0 * (double)n, grad + i0, len, s);    \
    }                                                                                       \
    return norm;                                                                            \
}

PYNN_OPTIM_RANGES(float, f32, generic, , sqrtf)
PYNN_OPTIM_RANGES(float, f32, avx2, PYNN_TGT_AVX2, sqrtf)
PYNN_OPTIM_RANGES(float, f32, avx512, PYNN_TGT_AVX512, sqrtf)
PYNN_OPTIM_RANGES(double, f64, generic, , sqrt)
PYNN_OPTIM_RANGES(double, f64, avx2, PYNN_TGT_AVX2, sqrt)
PYNN_OPTIM_RANGES(double, f64, avx512, PYNN_TGT_AVX512, sqrt)

#if defined(__GNUC__) && defined(__x86_64__)
#include <immintrin.h>
/* Adam's float32 AVX-512 chunk loop. The plain loop above is bound by the divider, not by
 * memory: a 16-wide square root and division cost about as many cycles per element as
 * scalar ones (and the wide units run at a lower clock), so its AVX-512 build was no faster
 * than the generic one. Here sqrt(v) is v * rsqrt(v) and 1 / (sqrt(v) + eps) a reciprocal,
 * each from the 14-bit estimate and one Newton step (about 1 ulp), all on the FMA units.
 * Lanes where v is not a normal positive finite number (0 for weights whose gradient is
 * always 0, NaN, inf) take the exact square root and division. The last n % 16 elements
 * go to the plain loop; chunk bounds are multiples of 16, so the bits do not depend on the
 * thread count. */
static PYNN_TGT_AVX512 void pynn_adam_rcp_f32_avx512(float *restrict p, float *restrict m,
        float *restrict v, const float *restrict g, pynn_idx n, float b1, float c1, float b2,
        float c2, float alpha, float eps, float lwd, int decay) {
    /* m (n) = b1 m + c1 g; v (n) = b2 v + c2 g^2; p (n) -= alpha m / (sqrt(v) + eps) */
    const __m512 B1 = _mm512_set1_ps(b1), C1 = _mm512_set1_ps(c1);
    const __m512 B2 = _mm512_set1_ps(b2), C2 = _mm512_set1_ps(c2);
    const __m512 A = _mm512_set1_ps(alpha), E = _mm512_set1_ps(eps), W = _mm512_set1_ps(lwd);
    const __m512 ONE = _mm512_set1_ps(1.0f), HALF = _mm512_set1_ps(0.5f);
    const __m512 THREE = _mm512_set1_ps(3.0f), TINY = _mm512_set1_ps(0x1p-126f);
    const __m512 INF = _mm512_set1_ps(INFINITY);
    /* an epsilon past float's range makes sqrt(v) + eps inf, whose reciprocal the Newton
     * step turns into inf * 0 = NaN: the plain loop's division gives the 0 update that the
     * other paths and the reference give */
    if (!(eps <= FLT_MAX)) {
        pynn_adam_range_f32_avx512(p, m, v, g, n, b1, c1, b2, c2, alpha, eps, lwd, decay);
        return;
    }
    pynn_idx i = 0;
    for (; i + 16 <= n; i += 16) {
        __m512 gi = _mm512_loadu_ps(g + i), pi = _mm512_loadu_ps(p + i);
        __m512 mi = _mm512_fmadd_ps(B1, _mm512_loadu_ps(m + i), _mm512_mul_ps(C1, gi));
        __m512 vi = _mm512_fmadd_ps(B2, _mm512_loadu_ps(v + i),
                                    _mm512_mul_ps(C2, _mm512_mul_ps(gi, gi)));
        _mm512_storeu_ps(m + i, mi);
        _mm512_storeu_ps(v + i, vi);
        if (decay) pi = _mm512_fnmadd_ps(W, pi, pi);
        __mmask16 ok = _mm512_cmp_ps_mask(vi, TINY, _CMP_GE_OQ)
                       & _mm512_cmp_ps_mask(vi, INF, _CMP_LT_OQ);
        __m512 y = _mm512_rsqrt14_ps(vi);                       /* y ~ 1 / sqrt(v) */
        y = _mm512_mul_ps(_mm512_mul_ps(HALF, y),
                          _mm512_fnmadd_ps(_mm512_mul_ps(vi, y), y, THREE));
        __m512 d = _mm512_add_ps(_mm512_mul_ps(vi, y), E);      /* sqrt(v) + eps */
        __m512 r = _mm512_rcp14_ps(d);                          /* r ~ 1 / d */
        r = _mm512_fmadd_ps(r, _mm512_fnmadd_ps(d, r, ONE), r);
        __m512 num = _mm512_mul_ps(A, mi);
        __m512 upd = _mm512_mul_ps(num, r);
        if (ok != 0xFFFF) {
            /* lanes where v is not a normal positive finite number. Where m is 0 too (the
             * weights whose gradient stays 0, a digit's blank border: m and v decay to 0)
             * the update is that 0, sign included, as num / (sqrt(v) + eps) gives for any
             * v >= 0 or +inf (not NaN, -inf or < 0) and eps > 0: no square root and
             * division there. The others take them exactly */
            __mmask16 slow = (__mmask16)~ok;
            if (eps > 0.0f) {
                __mmask16 z = slow & _mm512_cmp_ps_mask(num, _mm512_setzero_ps(), _CMP_EQ_OQ)
                              & (__mmask16)~_mm512_fpclass_ps_mask(vi, 0xD1); /* NaN, -inf, < 0 */
                upd = _mm512_mask_mov_ps(upd, z, num);
                slow &= (__mmask16)~z;
            }
            if (slow)
                upd = _mm512_mask_div_ps(upd, slow, num, _mm512_add_ps(_mm512_sqrt_ps(vi), E));
        }
        _mm512_storeu_ps(p + i, _mm512_sub_ps(pi, upd));
    }
    if (i < n)
        pynn_adam_range_f32_avx512(p + i, m + i, v + i, g + i, n - i, b1, c1, b2, c2, alpha,
                                   eps, lwd, decay);
}
/* the family below dispatches its float32 AVX-512 Adam chunks to the loop above */
#define pynn_adam_range_f32_avx512 pynn_adam_rcp_f32_avx512
#endif

PYNN_OPTIM_FAMILY(float, f32)
PYNN_OPTIM_FAMILY(double, f64)
