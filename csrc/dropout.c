/* dropout.c - counter-based dropout (forward, backward, explicit mask).
 *
 * The random stream (the spec; pynn/reference/dropout.py computes the same bits in NumPy):
 *   mix(z)  = splitmix64 finalizer: z ^= z >> 30; z *= 0xBF58476D1CE4E5B9;
 *             z ^= z >> 27; z *= 0x94D049BB133111EB; z ^= z >> 31   (all mod 2^64)
 *   G       = 0x9E3779B97F4A7C15 (splitmix64's increment)
 *   key     = mix(mix(seed + G) ^ (step * G))
 *   bits(i) = mix(key + (i + 1) * G)      i = flat C-order index, 0-based
 * i.e. element i gets output i of a splitmix64 generator seeded with key. The top 24 bits
 * (float32) or 53 bits (float64) are a uniform u in [0, 1); keep iff u >= rate, compared in
 * integers: keep iff (bits >> 40) >= ceil(rate * 2^24)  (float32)
 *                    (bits >> 11) >= ceil(rate * 2^53)  (float64)
 * (rate * 2^k is exact in double, so the threshold has no rounding). Kept elements are
 * multiplied by scale = (T)(1 / (1 - rate)), dropped ones are 0 (also for NaN/inf input),
 * so forward(x) == x * mask and backward(dy) == dy * mask bit for bit.
 *
 * Parallel split: chunks of PYNN_DROPOUT_CHUNK elements, schedule(static); every element
 * depends only on its own index, so the bits never depend on the thread count, nor on the
 * ISA path (integer hashing, one multiply per kept element). */
#include <math.h>

#include "dropout.h"

#define PYNN_SM64_G 0x9E3779B97F4A7C15ULL

static inline uint64_t pynn_sm64_mix(uint64_t z) {
    z ^= z >> 30;
    z *= 0xBF58476D1CE4E5B9ULL;
    z ^= z >> 27;
    z *= 0x94D049BB133111EBULL;
    return z ^ (z >> 31);
}

static inline uint64_t pynn_dropout_key(uint64_t seed, uint64_t step) {
    return pynn_sm64_mix(pynn_sm64_mix(seed + PYNN_SM64_G) ^ (step * PYNN_SM64_G));
}

#define PYNN_DROPOUT_CHUNK 4096   /* elements per scheduling unit */

#if defined(__GNUC__) && (defined(__x86_64__) || defined(__i386__))
#define PYNN_DTGT_AVX2 __attribute__((target("avx2")))
#define PYNN_DTGT_AVX512 __attribute__((target("avx512f,avx512dq,avx512vl,avx512bw,avx2")))
#else
#define PYNN_DTGT_AVX2
#define PYNN_DTGT_AVX512
#endif

/* One chunk of elements [i0, i0 + n), compiled per ISA (AVX-512DQ multiplies 64-bit lanes).
 * SHIFT: 40 (float32, 24 bits kept) or 11 (float64, 53 bits kept); x == NULL writes the
 * mask itself (scale or 0). */
#define PYNN_DROPOUT_RANGE(T, SUF, SHIFT, ISA, ATTR)                                        \
static ATTR void pynn_dropout_range_##SUF##_##ISA(T *out, const T *x, pynn_idx i0,          \
                                                  pynn_idx n, uint64_t key, uint64_t thr,   \
                                                  T scale) {                                \
    /* out (n) = x (n) * keep(key, i0 + i) * scale, or the mask when x is NULL */           \
    const uint64_t base = key + (uint64_t)(i0 + 1) * PYNN_SM64_G;                           \
    if (x) {                                                                                \
        for (pynn_idx i = 0; i < n; i++) {                                                  \
            uint64_t b = pynn_sm64_mix(base + (uint64_t)i * PYNN_SM64_G);                   \
            out[i] = (b >> SHIFT) >= thr ? x[i] * scale : (T)0;                             \
        }                                                                                   \
    } else {                                                                                \
        for (pynn_idx i = 0; i < n; i++) {                                                  \
            uint64_t b = pynn_sm64_mix(base + (uint64_t)i * PYNN_SM64_G);                   \
            out[i] = (b >> SHIFT) >= thr ? scale : (T)0;                                    \
        }                                                                                   \
    }                                                                                       \
}

#define PYNN_DROPOUT_FAMILY(T, SUF, SHIFT)                                                  \
PYNN_DROPOUT_RANGE(T, SUF, SHIFT, generic, )                                                \
PYNN_DROPOUT_RANGE(T, SUF, SHIFT, avx2, PYNN_DTGT_AVX2)                                     \
PYNN_DROPOUT_RANGE(T, SUF, SHIFT, avx512, PYNN_DTGT_AVX512)                                 \
                                                                                            \
static void pynn_dropout_apply_##SUF(T *out, const T *x, pynn_idx n, double rate,           \
                                     uint64_t seed, uint64_t step, pynn_ctx ctx) {          \
    /* out (n) = x (n) * keep(seed, step, i) / (1 - rate); mask alone when x is NULL */     \
    const uint64_t key = pynn_dropout_key(seed, step);                                      \
    const uint64_t thr = (uint64_t)ceil(rate * (double)(1ULL << (64 - SHIFT)));             \
    const T scale = (T)(1.0 / (1.0 - rate));                                                \
    const pynn_idx nch = (n + PYNN_DROPOUT_CHUNK - 1) / PYNN_DROPOUT_CHUNK;                 \
    const int isa = ctx.isa;                                                                \
    int nt = pynn_threads_for(ctx, 8.0 * (double)n);                                        \
    (void)nt; /* unused in a serial build */                                                \
    _Pragma("omp parallel for num_threads(nt) schedule(static) if(nt > 1)")                 \
    for (pynn_idx c = 0; c < nch; c++) {                                                    \
        pynn_idx i0 = c * PYNN_DROPOUT_CHUNK, len = PYNN_MIN(PYNN_DROPOUT_CHUNK, n - i0);   \
        const T *xc = x ? x + i0 : NULL;                                                    \
        if (isa >= PYNN_ISA_AVX512)                                                         \
            pynn_dropout_range_##SUF##_avx512(out + i0, xc, i0, len, key, thr, scale);      \
        else if (isa >= PYNN_ISA_AVX2)                                                      \
            pynn_dropout_range_##SUF##_avx2(out + i0, xc, i0, len, key, thr, scale);        \
        else                                                                                \
            pynn_dropout_range_##SUF##_generic(out + i0, xc, i0, len, key, thr, scale);     \
    }                                                                                       \
}                                                                                           \
                                                                                            \
void pynn_dropout_forward_##SUF(T *out, const T *x, pynn_idx n, double rate,                \
                                uint64_t seed, uint64_t step, pynn_ctx ctx) {               \
    /* out (n) = x (n) * mask(seed, step) (n); out may be x */                              \
    pynn_dropout_apply_##SUF(out, x, n, rate, seed, step, ctx);                             \
}                                                                                           \
                                                                                            \
void pynn_dropout_backward_##SUF(T *dx, const T *dy, pynn_idx n, double rate,               \
                                 uint64_t seed, uint64_t step, pynn_ctx ctx) {              \
    /* dx (n) = dy (n) * mask(seed, step) (n): the forward mask; dx may be dy */            \
    pynn_dropout_apply_##SUF(dx, dy, n, rate, seed, step, ctx);                             \
}                                                                                           \
                                                                                            \
void pynn_dropout_span_##SUF(T *out, const T *x, pynn_idx i0, pynn_idx n, double rate,      \
                             uint64_t seed, uint64_t step, int isa) {                       \
    /* out (n) = x (n) * mask(seed, step) of flat elements i0 .. i0+n-1, on this thread */  \
    const uint64_t key = pynn_dropout_key(seed, step);                                      \
    const uint64_t thr = (uint64_t)ceil(rate * (double)(1ULL << (64 - SHIFT)));             \
    const T scale = (T)(1.0 / (1.0 - rate));                                                \
    if (isa >= PYNN_ISA_AVX512)                                                             \
        pynn_dropout_range_##SUF##_avx512(out, x, i0, n, key, thr, scale);                  \
    else if (isa >= PYNN_ISA_AVX2)                                                          \
        pynn_dropout_range_##SUF##_avx2(out, x, i0, n, key, thr, scale);                    \
    else                                                                                    \
        pynn_dropout_range_##SUF##_generic(out, x, i0, n, key, thr, scale);                 \
}                                                                                           \
                                                                                            \
void pynn_dropout_mask_##SUF(T *out, pynn_idx n, double rate, uint64_t seed,                \
                             uint64_t step, pynn_ctx ctx) {                                 \
    /* out (n) = keep(seed, step, i) / (1 - rate) */                                        \
    pynn_dropout_apply_##SUF(out, NULL, n, rate, seed, step, ctx);                          \
}

PYNN_DROPOUT_FAMILY(float, f32, 40)
PYNN_DROPOUT_FAMILY(double, f64, 11)
