/* reduce.c - column sums, row argmax, correct-prediction counts.
 *
 * Parallel split: column sums give each thread a block of columns and sum every column over
 * rows in order 0..B-1, so each output has one writer and the bits do not depend on the
 * thread count. Argmax rows are independent. Counts are integers (order-free).
 * Argmax follows NumPy: the first maximum wins, and a NaN counts as the maximum. */
#include "reduce.h"

#if defined(__GNUC__) && (defined(__x86_64__) || defined(__i386__))
#define PYNN_RED_AVX2 __attribute__((target("avx2,fma")))
#define PYNN_RED_AVX512 __attribute__((target("avx512f,avx512dq,avx512bw,avx512vl,fma")))
#define PYNN_RED_TARGETS 1
#else
#define PYNN_RED_TARGETS 0
#endif

/* Columns j0 .. j0+63 of x with contiguous rows summed over b = 0..B-1 in order, the 64 sums
 * in registers (the general loop below adds into out[] in memory, which may alias x for the
 * compiler, so it stored and reloaded every sum per row: the bias gradients of a Transformer
 * block, 2048 rows x 1152 columns, took 3.6% of its training step). Same order, same bits. */
#define PYNN_RED_COLS64(T, SUF, ISA, ATTR)                                                  \
ATTR static void pynn_colsum64_##SUF##_##ISA(T *restrict out, const T *restrict x,          \
                                             pynn_idx B, pynn_idx rsx) {                    \
    T acc[64];                                                                              \
    for (int j = 0; j < 64; j++) acc[j] = 0;                                                \
    for (pynn_idx b = 0; b < B; b++) {                                                      \
        const T *restrict row = x + b * rsx;                                                \
        _Pragma("omp simd")                                                                 \
        for (int j = 0; j < 64; j++) acc[j] += row[j];                                      \
    }                                                                                       \
    for (int j = 0; j < 64; j++) out[j] = acc[j];                                           \
}
#if PYNN_RED_TARGETS
#define PYNN_RED_ALL(T, SUF)                                                                \
    PYNN_RED_COLS64(T, SUF, generic, )                                                      \
    PYNN_RED_COLS64(T, SUF, avx2, PYNN_RED_AVX2)                                            \
    PYNN_RED_COLS64(T, SUF, avx512, PYNN_RED_AVX512)
#define PYNN_RED_PICK(SUF)                                                                  \
    (ctx.isa >= PYNN_ISA_AVX512 ? pynn_colsum64_##SUF##_avx512                              \
     : ctx.isa >= PYNN_ISA_AVX2 ? pynn_colsum64_##SUF##_avx2 : pynn_colsum64_##SUF##_generic)
#else
#define PYNN_RED_ALL(T, SUF) PYNN_RED_COLS64(T, SUF, generic, )
#define PYNN_RED_PICK(SUF) pynn_colsum64_##SUF##_generic
#endif
PYNN_RED_ALL(float, f32)
PYNN_RED_ALL(double, f64)

#define PYNN_REDUCE_FAMILY(T, SUF)                                                          \
void pynn_column_sum_##SUF(T *out, const T *x, pynn_idx B, pynn_idx N,                      \
                           pynn_idx rsx, pynn_idx csx, pynn_ctx ctx) {                      \
    /* out (N) = sum over b of x (B,N) */                                                   \
    int nt = pynn_threads_for(ctx, (double)B * (double)N);                                  \
    /* column blocks of 64 keep a contiguous row segment in cache while summing down */     \
    pynn_idx nblk = (N + 63) / 64;                                                          \
    (void)nt; /* unused in a serial build */                                                \
    void (*cols64)(T *, const T *, pynn_idx, pynn_idx) = PYNN_RED_PICK(SUF);                \
    _Pragma("omp parallel for num_threads(nt) schedule(static) if(nt > 1)")                 \
    for (pynn_idx jb = 0; jb < nblk; jb++) {                                                \
        pynn_idx j0 = jb * 64, j1 = PYNN_MIN(N, j0 + 64);                                   \
        if (csx == 1 && j1 - j0 == 64) {                                                  \
            cols64(out + j0, x + j0, B, rsx);                                               \
            continue;                                                                       \
        }                                                                                   \
        for (pynn_idx j = j0; j < j1; j++) out[j] = 0;                                      \
        for (pynn_idx b = 0; b < B; b++) {                                                  \
            const T *row = x + b * rsx;                                                     \
            for (pynn_idx j = j0; j < j1; j++) out[j] += row[j * csx];                      \
        }                                                                                   \
    }                                                                                       \
}                                                                                           \
                                                                                            \
static inline int64_t pynn_argmax_row_##SUF(const T *row, pynn_idx N, pynn_idx csx) {       \
    int64_t best = 0;                                                                       \
    T bv = row[0];                                                                          \
    if (bv != bv) return 0;                                                                 \
    for (pynn_idx j = 1; j < N; j++) {                                                      \
        T v = row[j * csx];                                                                 \
        if (v != v) return (int64_t)j;                                                      \
        if (v > bv) { bv = v; best = (int64_t)j; }                                          \
    }                                                                                       \
    return best;                                                                            \
}                                                                                           \
                                                                                            \
void pynn_row_argmax_##SUF(int64_t *out, const T *x, pynn_idx B, pynn_idx N,                \
                           pynn_idx rsx, pynn_idx csx, pynn_ctx ctx) {                      \
    /* out (B) = argmax over j of x (B,N), N >= 1 */                                        \
    int nt = pynn_threads_for(ctx, (double)B * (double)N);                                  \
    (void)nt;                                                                               \
    _Pragma("omp parallel for num_threads(nt) schedule(static) if(nt > 1)")                 \
    for (pynn_idx b = 0; b < B; b++) out[b] = pynn_argmax_row_##SUF(x + b * rsx, N, csx);   \
}                                                                                           \
                                                                                            \
pynn_idx pynn_count_correct_##SUF(const T *x, const int64_t *labels, pynn_idx B,            \
                                  pynn_idx N, pynn_idx rsx, pynn_idx csx, pynn_ctx ctx) {   \
    /* number of b with argmax x[b,:] == labels[b], N >= 1 */                               \
    int nt = pynn_threads_for(ctx, (double)B * (double)N);                                  \
    pynn_idx count = 0;                                                                     \
    (void)nt;                                                                               \
    _Pragma("omp parallel for num_threads(nt) schedule(static) if(nt > 1) reduction(+:count)") \
    for (pynn_idx b = 0; b < B; b++)                                                        \
        count += pynn_argmax_row_##SUF(x + b * rsx, N, csx) == labels[b];                   \
    return count;                                                                           \
}

PYNN_REDUCE_FAMILY(float, f32)
PYNN_REDUCE_FAMILY(double, f64)
