/* reduce.c - column sums, row argmax, correct-prediction counts.
 *
 * Parallel split: column sums give each thread a block of columns and sum every column over
 * rows in order 0..B-1, so each output has one writer and the bits do not depend on the
 * thread count. Argmax rows are independent. Counts are integers (order-free).
 * Argmax follows NumPy: the first maximum wins, and a NaN counts as the maximum. */
#include "reduce.h"

#define PYNN_REDUCE_FAMILY(T, SUF)                                                          \
void pynn_column_sum_##SUF(T *out, const T *x, pynn_idx B, pynn_idx N,                      \
                           pynn_idx rsx, pynn_idx csx, pynn_ctx ctx) {                      \
    /* out (N) = sum over b of x (B,N) */                                                   \
    int nt = pynn_threads_for(ctx, (double)B * (double)N);                                  \
    /* column blocks of 64 keep a contiguous row segment in cache while summing down */     \
    pynn_idx nblk = (N + 63) / 64;                                                          \
    (void)nt; /* unused in a serial build */                                                \
    _Pragma("omp parallel for num_threads(nt) schedule(static) if(nt > 1)")                 \
    for (pynn_idx jb = 0; jb < nblk; jb++) {                                                \
        pynn_idx j0 = jb * 64, j1 = PYNN_MIN(N, j0 + 64);                                   \
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
