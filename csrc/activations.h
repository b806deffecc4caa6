/* activations.h - elementwise activations (forward and backward) and the softmax family over
 * the last axis, plus the per-element math as static inline functions so that Dense (and later
 * convolution) apply them as a GEMM epilogue while the output is still in cache.
 *
 * Stable forms: sigmoid evaluates exp(-|x|) only (no overflow for large |x|); softplus is
 * max(x,0) + log1p(exp(-|x|)); exact GELU uses erfc (no cancellation in 1 + erf for x << 0);
 * softmax subtracts the row maximum. Every function here is branch-free on the data (ternaries
 * only), and exp and tanh are written out below (pynn_exp_*, pynn_tanh_*, a few ulp), so loops
 * over relu, sigmoid, tanh, silu, both GELUs, elu and softmax vectorize; erfc and expm1 are
 * written out as well (pynn_erfc_*, pynn_expm1_neg_*); log1p (softplus) remains a libm call.
 */
#ifndef PYNN_ACTIVATIONS_H
#define PYNN_ACTIVATIONS_H
#include <math.h>
#include <string.h>
#include "pynn.h"

static inline uint32_t pynn_f32_bits(float f) { uint32_t u; memcpy(&u, &f, 4); return u; }
static inline float pynn_f32_from_bits(uint32_t u) { float f; memcpy(&f, &u, 4); return f; }
static inline uint64_t pynn_f64_bits(double f) { uint64_t u; memcpy(&u, &f, 8); return u; }
static inline double pynn_f64_from_bits(uint64_t u) { double f; memcpy(&f, &u, 8); return f; }

/* exp without libm calls, so loops over it vectorize (libm's exp is a scalar call):
 * exp(x) = 2^n exp(r), n = round(x / ln 2) by the 1.5*2^p magic-number trick,
 * r = x - n ln 2 in two parts (Cody-Waite, the high part exact), |r| <= ln(2)/2.
 * exp(r): float by Cephes' expf polynomial, double by Taylor to degree 13 (truncation
 * < 5e-18). 2^n is applied as two factors 2^(n>>1) 2^(n - (n>>1)), each a normal number, so
 * subnormal results round once and overflow gives inf. Error ~1-2 ulp; NaN passes through. */
static inline float pynn_exp_f32(float x) {
    float xc = x < -104.0f ? -104.0f : (x > 89.0f ? 89.0f : x);
    float t = xc * 1.44269504088896341f + 12582912.0f;          /* 1.5 * 2^23 */
    int32_t n = (int32_t)pynn_f32_bits(t) - 0x4B400000;           /* round(x / ln 2) */
    float fn = t - 12582912.0f;
    float r = (xc - fn * 0.693359375f) - fn * -2.12194440e-4f;
    float p = 1.9875691500e-4f;
    p = p * r + 1.3981999507e-3f;
    p = p * r + 8.3334519073e-3f;
    p = p * r + 4.1665795894e-2f;
    p = p * r + 1.6666665459e-1f;
    p = p * r + 5.0000001201e-1f;
    p = p * (r * r) + r + 1.0f;
    int32_t n1 = n >> 1, n2 = n - n1;                            /* both in [-75, 64] */
    float y = p * pynn_f32_from_bits((uint32_t)(n1 + 127) << 23)
                * pynn_f32_from_bits((uint32_t)(n2 + 127) << 23);
    return x != x ? x : y;
}

static inline double pynn_exp_f64(double x) {
    double xc = x < -746.0 ? -746.0 : (x > 710.0 ? 710.0 : x);
    double t = xc * 1.4426950408889634074 + 6755399441055744.0;   /* 1.5 * 2^52 */
    int64_t n = (int64_t)pynn_f64_bits(t) - 0x4338000000000000LL;
    double fn = t - 6755399441055744.0;
    double r = (xc - fn * 6.93147180369123816490e-01) - fn * 1.90821492927058770002e-10;
    double p = 1.0 / 6227020800.0;                                /* 1/13! */
    p = p * r + 1.0 / 479001600.0;
    p = p * r + 1.0 / 39916800.0;
    p = p * r + 1.0 / 3628800.0;
    p = p * r + 1.0 / 362880.0;
    p = p * r + 1.0 / 40320.0;
    p = p * r + 1.0 / 5040.0;
    p = p * r + 1.0 / 720.0;
    p = p * r + 1.0 / 120.0;
    p = p * r + 1.0 / 24.0;
    p = p * r + 1.0 / 6.0;
    p = p * r + 0.5;
    p = p * (r * r) + r + 1.0;
    int64_t n1 = n >> 1, n2 = n - n1;                            /* both in [-539, 513] */
    double y = p * pynn_f64_from_bits((uint64_t)(n1 + 1023) << 52)
                 * pynn_f64_from_bits((uint64_t)(n2 + 1023) << 52);
    return x != x ? x : y;
}

/* expm1 for x <= 0 (elu's branch; x > 0 is treated as 0), vectorizable: with the reduction of
 * pynn_exp_*, x = n ln 2 + r, expm1(x) = 2^n expm1(r) + (2^n - 1), where expm1(r) = p r^2 + r
 * uses the same polynomial p as exp(r) = p r^2 + r + 1 (no 1 added, so no cancellation for
 * small |x|); 2^n - 1 is exact and n in [-58, 0], so the sum rounds once (~1-2 ulp). x is
 * clamped below where expm1 rounds to -1 (float -20, double -40); NaN passes through. */
static inline float pynn_expm1_neg_f32(float x) {
    float xc = x < -20.0f ? -20.0f : (x > 0.0f ? 0.0f : x);
    float t = xc * 1.44269504088896341f + 12582912.0f;          /* 1.5 * 2^23 */
    int32_t n = (int32_t)pynn_f32_bits(t) - 0x4B400000;           /* round(x / ln 2) */
    float fn = t - 12582912.0f;
    float r = (xc - fn * 0.693359375f) - fn * -2.12194440e-4f;
    float p = 1.9875691500e-4f;
    p = p * r + 1.3981999507e-3f;
    p = p * r + 8.3334519073e-3f;
    p = p * r + 4.1665795894e-2f;
    p = p * r + 1.6666665459e-1f;
    p = p * r + 5.0000001201e-1f;
    float em = p * (r * r) + r;                                   /* expm1(r) */
    float s = pynn_f32_from_bits((uint32_t)(n + 127) << 23);      /* 2^n, n in [-29, 0] */
    float y = s * em + (s - 1.0f);
    return x != x ? x : y;
}

static inline double pynn_expm1_neg_f64(double x) {
    double xc = x < -40.0 ? -40.0 : (x > 0.0 ? 0.0 : x);
    double t = xc * 1.4426950408889634074 + 6755399441055744.0;   /* 1.5 * 2^52 */
    int64_t n = (int64_t)pynn_f64_bits(t) - 0x4338000000000000LL;
    double fn = t - 6755399441055744.0;
    double r = (xc - fn * 6.93147180369123816490e-01) - fn * 1.90821492927058770002e-10;
    double p = 1.0 / 6227020800.0;                                /* 1/13! */
    p = p * r + 1.0 / 479001600.0;
    p = p * r + 1.0 / 39916800.0;
    p = p * r + 1.0 / 3628800.0;
    p = p * r + 1.0 / 362880.0;
    p = p * r + 1.0 / 40320.0;
    p = p * r + 1.0 / 5040.0;
    p = p * r + 1.0 / 720.0;
    p = p * r + 1.0 / 120.0;
    p = p * r + 1.0 / 24.0;
    p = p * r + 1.0 / 6.0;
    p = p * r + 0.5;
    double em = p * (r * r) + r;                                  /* expm1(r) */
    double s = pynn_f64_from_bits((uint64_t)(n + 1023) << 52);    /* 2^n, n in [-58, 0] */
    double y = s * em + (s - 1.0);
    return x != x ? x : y;
}

/* tanh, vectorizable: |x| < 0.625 by Cephes' odd polynomial (float) / rational function
 * (double), else sign(x) (1 - 2 / (exp(2|x|) + 1)) with |x| clamped where tanh rounds to 1. */
static inline float pynn_tanh_f32(float x) {
    float a = fabsf(x), z = x * x;
    float p = -5.70498872745e-3f;
    p = p * z + 2.06390887954e-2f;
    p = p * z - 5.37397155531e-2f;
    p = p * z + 1.33314422036e-1f;
    p = p * z - 3.33332819422e-1f;
    float small = p * z * x + x;
    float e = pynn_exp_f32(2.0f * (a < 20.0f ? a : 20.0f));     /* tanh(20) rounds to 1 */
    float big = 1.0f - 2.0f / (e + 1.0f);
    big = x < 0 ? -big : big;
    return a < 0.625f ? small : (x != x ? x : big);
}

static inline double pynn_tanh_f64(double x) {
    double a = fabs(x), z = x * x;
    double p = (-9.64399179425052238628e-1 * z - 9.92877231001918586564e1) * z
               - 1.61468768441708447952e3;
    double q = ((z + 1.12811678491632931402e2) * z + 2.23548839060100448583e3) * z
               + 4.84406305325125486048e3;
    double small = x + x * z * (p / q);
    double e = pynn_exp_f64(2.0 * (a < 22.0 ? a : 22.0));        /* tanh(22) rounds to 1 */
    double big = 1.0 - 2.0 / (e + 1.0);
    big = x < 0 ? -big : big;
    return a < 0.625 ? small : (x != x ? x : big);
}

/* erfc, vectorizable (no libm call, selects only). With a = |x|:
 *   erfc(a) = exp(-a^2) g(a),  g = erfcx(a) = F(t) / (a + K),  t = (a - K) / (a + K),
 * one smooth approximation for all a >= 0 (t runs over [-1, (A-K)/(A+K)], a clamped to A,
 * past which erfc rounds to 0), t rescaled to [-1, 1]; F is the Chebyshev interpolant of F
 * computed for pynn at 40 digits (mpmath). float evaluates it in powers of t by Horner's rule
 * (the coefficients' absolute values sum to 3, little loss); double keeps the Chebyshev form,
 * Clenshaw's recurrence (Horner's rule there is ~35% faster but reaches ~5 ulp).
 * x < 0: erfc(x) = 2 - erfc(a), no cancellation since erfc(a) <= 1.
 * float: everything in double (degree 11, |F error| < 1e-10 relative), rounded once at the
 * end, so within 1 ulp of the correctly rounded value; a^2 of a float is exact in double.
 * double: degree 23 (F within 5e-16 relative); exp(-a^2) as exp(-z^2) exp(-w) with z = a cut
 * to 26 significant bits (z^2 exact) and w = (a - z)(a + z) = a^2 - z^2 < 3e-5, so the
 * rounding of a^2 (up to 745) never reaches the exponent; exp(-w) by Taylor to w^3. For
 * |x| < 0.5 double uses 1 - erf(x) with erf(x) = x P(x^2) instead: the series' 5e-16 relative
 * error is several ulp of erfc near 1.
 * Results that are subnormal lose the precision that the subnormal format loses. NaN
 * passes through; erfc(-inf) = 2, erfc(inf) = 0. */
/* exp(-s) for a float's square s = a^2 in [0, 102.01] (a <= 10.1, exact in double), to
 * ~1e-12 relative: what the float erfc below needs, with no clamps or NaN path (its caller
 * clamps a and handles NaN) and one power-of-two factor (2^n >= 2^-148 is normal). */
static inline double pynn_exp_negsq_f64_(double s) {
    double t = -s * 1.4426950408889634074 + 6755399441055744.0;  /* 1.5 * 2^52 */
    int64_t n = (int64_t)pynn_f64_bits(t) - 0x4338000000000000LL;
    double fn = t - 6755399441055744.0;
    double r = (-s - fn * 6.93147180369123816490e-01) - fn * 1.90821492927058770002e-10;
    double p = 1.0 / 3628800.0;                                   /* Taylor, degree 10 */
    p = p * r + 1.0 / 362880.0;
    p = p * r + 1.0 / 40320.0;
    p = p * r + 1.0 / 5040.0;
    p = p * r + 1.0 / 720.0;
    p = p * r + 1.0 / 120.0;
    p = p * r + 1.0 / 24.0;
    p = p * r + 1.0 / 6.0;
    p = p * r + 0.5;
    p = p * (r * r) + r + 1.0;
    return p * pynn_f64_from_bits((uint64_t)(n + 1023) << 52);
}

/* erfc(a) for a = |u| >= 0 of a float u, in double (see pynn_erfc_f32); *ea = exp(-a^2),
 * which GELU's derivative reuses. 1 / (a + 3) starts from a float division (16 lanes per
 * AVX-512 instruction, where two double divisions cost ~6x as much) and one Newton step
 * brings it to ~1e-15 relative. */
static inline double pynn_erfc_abs_f32_(double a, double *ea) {
    a = a < 10.1 ? a : 10.1;                                      /* erfcf(10.1) rounds to 0 */
    double d = a + 3.0;
    double q = (double)(1.0f / (float)d);
    q = q + q * (1.0 - d * q);
    double t = ((a - 3.0) * q + 0.22900763358778625) * 1.2970297029702968;   /* [-1, 1] */
    double F = 2.318345747691742e-06;
    F = F * t - 2.865589350102568e-07;
    F = F * t - 3.796128542898281e-05;
    F = F * t + 2.4290412102379192e-05;
    F = F * t + 0.0005495897545338856;
    F = F * t - 0.0013758004650631368;
    F = F * t - 0.005873883933876622;
    F = F * t + 0.052272608384472855;
    F = F * t - 0.19864061832872498;
    F = F * t + 0.5018575271061324;
    F = F * t - 0.9318817545563854;
    F = F * t + 1.3113393510054783;
    *ea = pynn_exp_negsq_f64_(a * a);
    return *ea * (F * q);
}

static inline float pynn_erfc_f32(float x) {
    double ea, r = pynn_erfc_abs_f32_(fabs((double)x), &ea);
    r = x < 0 ? 2.0 - r : r;
    return x != x ? x : (float)r;
}

#define PYNN_CLENSHAW_(c) (b0 = t2 * b1 - b2 + (c), b2 = b1, b1 = b0)
static inline double pynn_erfc_f64(double x) {
    double a = fabs(x);
    a = a < 27.3 ? a : 27.3;                                      /* erfc(27.3) rounds to 0 */
    double q = 1.0 / (a + 3.5);
    double t = ((a - 3.5) * q + 0.11363636363636365) * 1.1282051282051282;   /* [-1, 1] */
    double t2 = 2.0 * t, b0, b1 = -7.791337592038606e-18, b2 = 0.0;
    PYNN_CLENSHAW_(4.7794666451732204e-18);
    PYNN_CLENSHAW_(2.4195397790320726e-16);
    PYNN_CLENSHAW_(1.9988394018861066e-16);
    PYNN_CLENSHAW_(-7.626644799068083e-15);
    PYNN_CLENSHAW_(-1.4049935973583768e-14);
    PYNN_CLENSHAW_(2.5373310180673597e-13);
    PYNN_CLENSHAW_(5.902910827982618e-13);
    PYNN_CLENSHAW_(-9.37843072736275e-12);
    PYNN_CLENSHAW_(-1.8591751707426018e-11);
    PYNN_CLENSHAW_(3.9154146992272604e-10);
    PYNN_CLENSHAW_(2.031544965350326e-10);
    PYNN_CLENSHAW_(-1.759813707558705e-08);
    PYNN_CLENSHAW_(4.1363193013958464e-08);
    PYNN_CLENSHAW_(7.069976988837299e-07);
    PYNN_CLENSHAW_(-5.676768048250614e-06);
    PYNN_CLENSHAW_(-3.912928979816097e-06);
    PYNN_CLENSHAW_(0.0003848225546436721);
    PYNN_CLENSHAW_(-0.0038480974929675595);
    PYNN_CLENSHAW_(0.024295728112910003);
    PYNN_CLENSHAW_(-0.11501459353799731);
    PYNN_CLENSHAW_(0.4320064215476908);
    PYNN_CLENSHAW_(-1.3130863815423741);
    double F = t * b1 - b2 + 1.6113663672841239;
    double z = pynn_f64_from_bits(pynn_f64_bits(a) & 0xFFFFFFFFF8000000ULL);  /* 26 bits */
    double w = (a - z) * (a + z);                                 /* a^2 - z^2, exact-ish */
    double ew = 1.0 - w * (1.0 - w * (0.5 - w * (1.0 / 6.0)));    /* exp(-w) */
    double r = pynn_exp_f64(-z * z) * (ew * (F * q));
    r = x < 0 ? 2.0 - r : r;
    /* |x| < 0.5: 1 - erf(x), erf(x) = x P(x^2) (P interpolates erf(x)/x at Chebyshev nodes) */
    double s = x * x, p = -1.462091340945175e-07;
    p = p * s + 1.637123442577e-06;
    p = p * s - 1.4923003368152099e-05;
    p = p * s + 0.00012055286202005714;
    p = p * s - 0.0008548326510724796;
    p = p * s + 0.0052239776220169365;
    p = p * s - 0.02686617064499972;
    p = p * s + 0.1128379167095487;
    p = p * s - 0.3761263890318375;
    p = p * s + 1.1283791670955126;
    r = a < 0.5 ? 1.0 - x * p : r;
    return x != x ? x : r;
}
#undef PYNN_CLENSHAW_

/* activations Dense can fuse: their derivative follows from the output y */
enum { PYNN_ACT_LINEAR = 0, PYNN_ACT_RELU = 1, PYNN_ACT_SIGMOID = 2, PYNN_ACT_TANH = 3 };
/* ... and forward only (dense_forward writes gelu' beside y when asked: dz = dy * grad) */
enum { PYNN_ACT_GELU = 4, PYNN_ACT_GELU_TANH = 5 };

/* Per-element math for one dtype. T: float/double; SUF: f32/f64; F: the libm suffix (f or
 * nothing). Forward functions take x; backward ones take x and dy and return dx. */
#define PYNN_ACT_MATH(T, SUF, F)                                                            \
static inline T pynn_relu_##SUF(T x) { return x < 0 ? (T)0 : x; /* NaN passes through */ }  \
static inline T pynn_relu_grad_##SUF(T x, T dy) { return x > 0 ? dy : (T)0; }               \
static inline T pynn_leaky_relu_##SUF(T x, T a) { return x < 0 ? a * x : x; }               \
static inline T pynn_leaky_relu_grad_##SUF(T x, T dy, T a) { return x > 0 ? dy : a * dy; }  \
/* elu: x for x > 0, alpha * (exp(x) - 1) otherwise; expm1 keeps small |x| accurate */      \
static inline T pynn_elu_##SUF(T x, T a) {                                                  \
    return x > 0 ? x : a * pynn_expm1_neg_##SUF(x);                                         \
}                                                                                           \
static inline T pynn_elu_grad_##SUF(T x, T dy, T a) {                                       \
    return x > 0 ? dy : dy * a * pynn_exp_##SUF(x);                                         \
}                                                                                           \
/* sigmoid: 1/(1+e) for x >= 0, e/(1+e) for x < 0, with e = exp(-|x|) in (0, 1] */          \
static inline T pynn_sigmoid_##SUF(T x) {                                                   \
    T e = pynn_exp_##SUF(-fabs##F(x));                                                      \
    T r = (T)1 / ((T)1 + e);                                                                \
    return x < 0 ? e * r : r;                                                               \
}                                                                                           \
static inline T pynn_sigmoid_grad_##SUF(T x, T dy) {                                        \
    T s = pynn_sigmoid_##SUF(x);                                                            \
    return dy * s * ((T)1 - s);                                                             \
}                                                                                           \
static inline T pynn_tanh_grad_##SUF(T x, T dy) {                                           \
    T t = pynn_tanh_##SUF(x);                                                               \
    return dy * ((T)1 - t * t);                                                             \
}                                                                                           \
/* gelu (tanh approximation): 0.5 x (1 + tanh(k0 (x + k1 x^3))) */                          \
static inline T pynn_gelu_tanh_##SUF(T x) {                                                 \
    T u = (T)0.79788456080286535588 * (x + (T)0.044715 * x * x * x);                        \
    return (T)0.5 * x * ((T)1 + pynn_tanh_##SUF(u));                                        \
}                                                                                           \
static inline T pynn_gelu_tanh_grad_##SUF(T x, T dy) {                                      \
    T u = (T)0.79788456080286535588 * (x + (T)0.044715 * x * x * x);                        \
    T t = pynn_tanh_##SUF(u);                                                               \
    T du = (T)0.79788456080286535588 * ((T)1 + (T)(3 * 0.044715) * x * x);                  \
    return dy * ((T)0.5 * ((T)1 + t) + (T)0.5 * x * ((T)1 - t * t) * du);                   \
}                                                                                           \
static inline T pynn_gelu_tanh_both_##SUF(T x, T *g) {                                      \
    T u = (T)0.79788456080286535588 * (x + (T)0.044715 * x * x * x);                        \
    T t = pynn_tanh_##SUF(u);                                                               \
    T du = (T)0.79788456080286535588 * ((T)1 + (T)(3 * 0.044715) * x * x);                  \
    *g = (T)0.5 * ((T)1 + t) + (T)0.5 * x * ((T)1 - t * t) * du;                            \
    return (T)0.5 * x * ((T)1 + t);                                                         \
}                                                                                           \
/* softplus: log(1 + exp(x)) = max(x, 0) + log1p(exp(-|x|)); d/dx = sigmoid(x) */           \
static inline T pynn_softplus_##SUF(T x) {                                                  \
    return (x > 0 ? x : (T)0) + log1p##F(pynn_exp_##SUF(-fabs##F(x)));                      \
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

/* gelu (exact): x * Phi(x) = 0.5 x erfc(u), u = -x / sqrt 2; d/dx = Phi(x) + x phi(x) with
 * phi(x) = exp(-x^2 / 2) / sqrt(2 pi). Float: phi reuses erfc's exp(-u^2) (u^2 = x^2 / 2 up
 * to the rounding of u: a relative error of ~u^2 2^-23 in phi, which the erfc term dwarfs
 * wherever it grows), so the derivative costs one erfc. */
static inline float pynn_gelu_f32(float x) {
    return 0.5f * x * pynn_erfc_f32(-x * 0.70710678118654752440f);
}
static inline float pynn_gelu_grad_f32(float x, float dy) {
    float u = -x * 0.70710678118654752440f;
    double a = fabs((double)u), ea, r = pynn_erfc_abs_f32_(a, &ea);
    float cdf = 0.5f * (float)(u < 0 ? 2.0 - r : r);
    float pdf = a > 10.1 ? 0.0f : (float)(0.39894228040143267794 * ea);  /* ea is clamped */
    return x != x ? x : dy * (cdf + x * pdf);
}
/* forward and derivative in one pass: returns gelu(x) (the bits of pynn_gelu_f32) and stores
 * gelu'(x) (the factor pynn_gelu_grad_f32 applies to dy) in *g */
static inline float pynn_gelu_both_f32(float x, float *g) {
    float u = -x * 0.70710678118654752440f;
    double a = fabs((double)u), ea, r = pynn_erfc_abs_f32_(a, &ea);
    float e = (float)(u < 0 ? 2.0 - r : r);                       /* erfc(u) */
    float pdf = a > 10.1 ? 0.0f : (float)(0.39894228040143267794 * ea);
    *g = x != x ? x : 0.5f * e + x * pdf;
    return x != x ? x : 0.5f * x * e;
}
/* The same three in float arithmetic with fused multiply-adds, for the kernels compiled for
 * AVX2 / AVX-512 (with FMA; the portable kernels keep the double forms above): 16 lanes a
 * vector instead of 8 and short polynomials, 2.2x faster (1M elements, 1 thread, 2.2 ->
 * 1.0 ms), at up to 6.1 ulp of erfc where the double form stays within 1.4 (measured over
 * every float x with |x| <= 15 whose erfc is normal, erfc read back from the GELU output
 * x / 2 erfc(u) as the tests do; worst at x = -0.7621126). With a = |u| clamped to 10.1
 * as above:
 *   a < 0.5:  erfc(u) = 1 - u P(u^2), P of degree 4 in u^2 (1.4e-9 relative);
 *   else:     erfc(a) = exp(-a^2) F(s) / (a + 3), s = (a - 3) / (a + 3) + C0, F of degree 9
 *             (fitted with float coefficients, 2.3e-8 relative), exp(-a^2) as
 *             exp(-h) (1 - l) with h + l = a^2 exactly (l from an FMA), so the rounding of
 *             a^2 (up to 102) does not reach the exponent; u < 0: 2 - erfc(a).
 * Float rounding in F's Horner steps is most of the error. NaN passes through; the
 * derivative's phi reuses exp(-a^2) as the double form does. */
/* always inlined: only inside a caller compiled for FMA do the __builtin_fmaf become FMA
 * instructions (an out-of-line copy, compiled for the baseline, would call libm's fmaf) */
#if defined(__GNUC__)
#define PYNN_FMA_INLINE static inline __attribute__((always_inline))
#else
#define PYNN_FMA_INLINE static inline
#endif
PYNN_FMA_INLINE float pynn_exp_negsq_f32_(float a) {
    /* exp(-a^2), 0 <= a <= 10.1: pynn_exp_f32's reduction and polynomial without its clamps,
     * times (1 - l) for the low part l of a^2 */
    float h = a * a, l = __builtin_fmaf(a, a, -h);
    float t = __builtin_fmaf(-h, 1.44269504088896341f, 12582912.0f);   /* 1.5 * 2^23 */
    int32_t n = (int32_t)pynn_f32_bits(t) - 0x4B400000;
    float fn = t - 12582912.0f;
    float r = __builtin_fmaf(fn, -0.693359375f, -h);
    r = __builtin_fmaf(fn, 2.12194440e-4f, r);
    float p = 1.9875691500e-4f;
    p = __builtin_fmaf(p, r, 1.3981999507e-3f);
    p = __builtin_fmaf(p, r, 8.3334519073e-3f);
    p = __builtin_fmaf(p, r, 4.1665795894e-2f);
    p = __builtin_fmaf(p, r, 1.6666665459e-1f);
    p = __builtin_fmaf(p, r, 5.0000001201e-1f);
    p = __builtin_fmaf(p, r * r, r) + 1.0f;
    int32_t n1 = n >> 1, n2 = n - n1;                            /* both in [-74, 0] */
    float e = p * pynn_f32_from_bits((uint32_t)(n1 + 127) << 23)
                * pynn_f32_from_bits((uint32_t)(n2 + 127) << 23);
    return __builtin_fmaf(-e, l, e);
}
/* erfc(u) of a float u = -x / sqrt 2 (returned), and exp(-u^2) in *ea (0 past the clamp) */
PYNN_FMA_INLINE float pynn_erfc_fma_f32_(float u, float *ea) {
    float a = fabsf(u);
    float ac = a < 10.1f ? a : 10.1f;
    float q = 1.0f / (ac + 3.0f);
    float s = __builtin_fmaf(ac - 3.0f, q, 0.22900763154029846f);
    float F = -0.0003430953365750611f;
    F = __builtin_fmaf(F, s, 0.00019666684966068715f);
    F = __builtin_fmaf(F, s, 0.0033748839050531387f);
    F = __builtin_fmaf(F, s, -0.006557514891028404f);
    F = __builtin_fmaf(F, s, -0.021560488268733025f);
    F = __builtin_fmaf(F, s, 0.14793983101844788f);
    F = __builtin_fmaf(F, s, -0.4334282875061035f);
    F = __builtin_fmaf(F, s, 0.8442672491073608f);
    F = __builtin_fmaf(F, s, -1.2086783647537231f);
    F = __builtin_fmaf(F, s, 1.3113393783569336f);
    float e = pynn_exp_negsq_f32_(ac);
    float r = e * (F * q);
    r = u < 0 ? 2.0f - r : r;
    float u2 = u * u, P = 0.004719082567218814f;                  /* a < 0.5: 1 - u P(u^2) */
    P = __builtin_fmaf(P, u2, -0.026757732735015517f);
    P = __builtin_fmaf(P, u2, 0.11282831428465862f);
    P = __builtin_fmaf(P, u2, -0.37612609007469805f);
    P = __builtin_fmaf(P, u2, 1.1283791656017914f);
    *ea = a > 10.1f ? 0.0f : e;
    return a < 0.5f ? __builtin_fmaf(-u, P, 1.0f) : r;
}
PYNN_FMA_INLINE float pynn_gelu_fma_f32(float x) {
    float ea, e = pynn_erfc_fma_f32_(-x * 0.70710678118654752440f, &ea);
    return x != x ? x : 0.5f * x * e;
}
PYNN_FMA_INLINE float pynn_gelu_fma_grad_f32(float x, float dy) {
    float ea, e = pynn_erfc_fma_f32_(-x * 0.70710678118654752440f, &ea);
    return x != x ? x : dy * (0.5f * e + x * (0.39894228040143267794f * ea));
}
PYNN_FMA_INLINE float pynn_gelu_fma_both_f32(float x, float *g) {
    float ea, e = pynn_erfc_fma_f32_(-x * 0.70710678118654752440f, &ea);
    *g = x != x ? x : 0.5f * e + x * (0.39894228040143267794f * ea);
    return x != x ? x : 0.5f * x * e;
}
/* double has no FMA variant: the names let the kernels pick per type */
#define pynn_gelu_fma_f64 pynn_gelu_f64
#define pynn_gelu_fma_grad_f64 pynn_gelu_grad_f64
#define pynn_gelu_fma_both_f64 pynn_gelu_both_f64

static inline double pynn_gelu_f64(double x) {
    return 0.5 * x * pynn_erfc_f64(-x * 0.70710678118654752440);
}
static inline double pynn_gelu_grad_f64(double x, double dy) {
    double cdf = 0.5 * pynn_erfc_f64(-x * 0.70710678118654752440);
    double pdf = 0.39894228040143267794 * pynn_exp_f64(-0.5 * x * x);
    return dy * (cdf + x * pdf);
}
static inline double pynn_gelu_both_f64(double x, double *g) {
    /* one erfc for both: the bits of pynn_gelu_f64 and of pynn_gelu_grad_f64 (dy = 1) */
    double e = pynn_erfc_f64(-x * 0.70710678118654752440);
    double pdf = 0.39894228040143267794 * pynn_exp_f64(-0.5 * x * x);
    *g = 0.5 * e + x * pdf;
    return 0.5 * x * e;
}

/* Kernels. Elementwise ones take contiguous arrays of n elements; out may be x (forward) and
 * dx may be dy (backward). Softmax ones take R contiguous rows of N. */
#define PYNN_ACT_DECLS(T, SUF)                                                              \
void pynn_grad_mul_##SUF(T *dx, const T *grad, const T *dy, pynn_idx n, pynn_ctx ctx);      \
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
void pynn_gelu_forward_grad_##SUF(T *out, T *grad, const T *x, pynn_idx n, int approximate,  \
                                  pynn_ctx ctx);                                            \
void pynn_gelu_backward_##SUF(T *dx, const T *x, const T *dy, pynn_idx n, int approximate,  \
                              pynn_ctx ctx);                                                \
void pynn_softplus_forward_##SUF(T *out, const T *x, pynn_idx n, pynn_ctx ctx);             \
void pynn_softplus_backward_##SUF(T *dx, const T *x, const T *dy, pynn_idx n, pynn_ctx ctx); \
void pynn_silu_forward_##SUF(T *out, const T *x, pynn_idx n, pynn_ctx ctx);                 \
void pynn_silu_backward_##SUF(T *dx, const T *x, const T *dy, pynn_idx n, pynn_ctx ctx);    \
void pynn_mul_block_##SUF(T *y, pynn_idx rsy, const T *g, pynn_idx rsg, pynn_idx m,         \
                          pynn_idx n, int isa);                                             \
void pynn_act_block_##SUF(int act, T *y, pynn_idx rsy, T *g, pynn_idx rsg, const T *b,      \
                          const T *res, pynn_idx rsr, pynn_idx m, pynn_idx n, int isa);     \
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
