/* embedding.c - embedding lookup and its scatter-add backward.
 *
 * Forward copies table rows: rows are independent, threads split them.
 * Backward adds dy rows into the (V, D) gradient at their ids. Several positions may hold the
 * same id, so threads never split positions: each thread owns a block of D columns and walks
 * all N positions in order 0..N-1. Every gradient element has one writer and one summation
 * order, so the bits do not depend on the thread count. ids are checked in [0, V) before C.
 */
#include <string.h>
#include "embedding.h"

#define PYNN_EMBEDDING_FAMILY(T, SUF)                                                        \
void pynn_embedding_forward_##SUF(T *out, const int64_t *ids, const T *table,               \
                                  pynn_idx N, pynn_idx D, pynn_idx rst, pynn_ctx ctx) {     \
    /* out (N,D) = table (V,D) [ids (N)] */                                                 \
    int nt = pynn_threads_for(ctx, (double)N * (double)D);                                  \
    (void)nt;                                                                               \
    _Pragma("omp parallel for num_threads(nt) schedule(static) if(nt > 1)")                 \
    for (pynn_idx n = 0; n < N; n++)                                                        \
        memcpy(out + n * D, table + ids[n] * rst, (size_t)D * sizeof(T));                   \
}                                                                                           \
                                                                                            \
void pynn_embedding_backward_##SUF(T *dtable, const int64_t *ids, const T *dy,              \
                                   pynn_idx N, pynn_idx V, pynn_idx D, pynn_ctx ctx) {      \
    /* dtable (V,D) = sum over n with ids[n] == v of dy (N,D) [n] (written, not accumulated) */ \
    int nt = pynn_threads_for(ctx, (double)(N + V) * (double)D);                            \
    /* column blocks of 16: whole cache lines per thread, at least one block per thread */  \
    pynn_idx nblk = (D + 15) / 16;                                                          \
    if (nt > nblk) nt = (int)nblk;                                                          \
    (void)nt;                                                                               \
    _Pragma("omp parallel for num_threads(nt) schedule(static) if(nt > 1)")                 \
    for (int t = 0; t < nt; t++) {                                                          \
        pynn_idx j0 = nblk * t / nt * 16, j1 = PYNN_MIN(D, nblk * (t + 1) / nt * 16);       \
        for (pynn_idx v = 0; v < V; v++)                                                    \
            for (pynn_idx j = j0; j < j1; j++) dtable[v * D + j] = 0;                       \
        for (pynn_idx n = 0; n < N; n++) {                                                  \
            T *dst = dtable + ids[n] * D;                                                   \
            const T *src = dy + n * D;                                                      \
            for (pynn_idx j = j0; j < j1; j++) dst[j] += src[j];                            \
        }                                                                                   \
    }                                                                                       \
}

PYNN_EMBEDDING_FAMILY(float, f32)
PYNN_EMBEDDING_FAMILY(double, f64)
