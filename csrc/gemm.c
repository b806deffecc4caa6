/* gemm.c - GEMM driver: C (M,N) = alpha * A (M,K) @ B (K,N) + beta * C, contract in gemm.h.
 *
 * Loops (BLIS, with the roles of the two caches chosen for a 2 MB L2):
 *   JC over N by nc -> PC over K by kc: pack B block (kc x nc, L2 resident) ->
 *   IR over M by MR: pack one A sliver (MR x kc, L1 resident) -> JR over the block by NR:
 *   micro-kernel (gemm_ukr.h) on the MR x NR tile of C. A sliver whose columns are contiguous
 *   (A^T of a row-major array, the X^T dY of a weight gradient) is read in place instead:
 *   MR values a column are already together (measured, X^T dY 128x128x2048 and 512x128x2048,
 *   best of 21 alternating rounds: +16% and +7% at 1 thread, +11% and +11% at 2).
 * Threads on this packed path, split by rows (BLIS/GotoBLAS): all threads pack slivers of
 * one shared B block, barrier, take A slivers two at a time (schedule(dynamic)) against it,
 * barrier before the next block; split by columns, each thread packs its own columns.
 * Small path (the shapes of neural layers: B fits in L2, or M is a few rows): nothing is
 * packed. The kernel reads A by its strides and B in place (B is packed only when its
 * columns are not contiguous, or its rows are off the cache lines and M is large; an A
 * sliver only at the bottom edge, and there not where C is written in one pass: then the
 * edge runs as the last MR rows, repeating rows of the panel before it with the same bits),
 * K is split past 2048 where B fits in L2 (else in blocks
 * of the kernel's kc, as on the packed path: the blocks follow K and N only), and threads
 * enter only when the work pays for the parallel region.
 * Shape paths before the loops: M == 1, N == 1, or M <= 4 with K >= 64, with contiguous rows
 * of A and columns of B, is one dot product per element (the kernel table's `dot`); a narrow
 * C (N <= NR/2) with A transposed (contiguous columns) and K >= 64 is computed as
 * C^T = B^T A^T, whose rows fill the kernel's vectors; a narrow C (N <= 16) from rows of A
 * contiguous in k, where the kernel table has it (AVX-512 f32) and its cost model says so, is
 * dot products along k in blocks of 4 rows x up to 5 columns against B^T packed once. A
 * single row (M == 1, or a one-row edge) is read in place.
 *
 * Determinism: an element of C is the sum over the kc blocks in order, each block a
 * sequential FMA chain in the micro-kernel (or one dot product in its fixed order); kc
 * depends only on (N, K), the dtype and the ISA, and the path on (M, N, K), the strides, the
 * dtype and the ISA (whether B is packed also on its alignment: that changes where the kernel
 * reads B, not its arithmetic). Where B's rows are contiguous (B read as a matrix, not B^T),
 * the arithmetic of a row of C does not depend on M: a convolution's blocks of pixels and the
 * fused conv + max-pool kernel's rows give the same bits (the dot-product path for a few rows
 * needs B^T, the C^T path an A^T). Threads
 * split C into disjoint rectangles of whole tiles (never K), a few chunks per thread, each
 * thread taking its own first and then the others' left over (pynn_gemm_next: which thread
 * computes a chunk does not change its bits), so the bits are the same for any thread count.
 * Scratch: one 64-byte-aligned block per call, a slice per thread (and the shared B block);
 * PYNN_ENOMEM if it cannot be allocated (C untouched). A single-threaded call needing at
 * most PYNN_GEMM_STACK_BYTES takes it from its own stack frame (never shared between calls).
 * Epilogue (pynn_gemm_ep, gemm.h): on the tiled paths (C not transposed) the caller's
 * function runs on each A sliver's row panel right after the panel's last depth block, on
 * the thread that computed it; the other paths call it row by row after the product.
 */
#include <stdlib.h>
#ifdef _OPENMP
#include <omp.h>
#define PYNN_GEMM_TID omp_get_thread_num()
#define PYNN_GEMM_NTH omp_get_num_threads()
#else
#define PYNN_GEMM_TID 0
#define PYNN_GEMM_NTH 1
#endif
#include "gemm.h"
#include "gemm_ukr.h"

/* chunks of C per thread on the tiled paths (see the driver) */
#define PYNN_GEMM_CHUNKS 4

/* products of at most this many rows, with rows of A and columns of B contiguous (dY W^T of a
 * small batch), are dot products: packing the transposed B costs more than they do (measured
 * 1 thread, M = 2 and 4: 1.1-4.5x faster on dY W^T for K x N = 64 x 64 .. 1024 x 256; at M =
 * 8 the tiles win on some) */
#define PYNN_GEMM_DOT_ROWS 4
/* ... and depth at least this: shorter dots cost their call and lane sums, not their FMAs (at
 * K = 64, M = 4 the two paths ran level) */
#define PYNN_GEMM_DOT_K 64

/* scratch of a single-threaded call up to this size lives on the caller's stack (64-byte
 * aligned; 8 KB keeps the frame modest for Python threads with small stacks) */
#if defined(__GNUC__)
#define PYNN_GEMM_STACK_BYTES 8192
#define PYNN_GEMM_STACK_SCRATCH(name) unsigned char name[PYNN_GEMM_STACK_BYTES] __attribute__((aligned(64)))
#else
#define PYNN_GEMM_STACK_BYTES 0
#define PYNN_GEMM_STACK_SCRATCH(name) unsigned char name[1]
#endif

/* small-path limits: B (K x N) bytes that stay in L2 across all row slivers; depth */
#define PYNN_GEMM_SMALL_B_BYTES (512.0 * 1024.0)
#define PYNN_GEMM_SMALL_KC 2048
/* small path: rows of A from which a B with rows off the 64-byte lines is packed */
#define PYNN_GEMM_PACK_B_ROWS 256

/* Chunks of C handed to threads with affinity: thread t owns chunks [nch t / nt, nch (t+1) /
 * nt) and takes them in order; a thread out of its own chunks takes the next ones of the
 * threads after it (a thread that starts late or is preempted costs its own chunks, not half
 * the product, as with schedule(dynamic)). Unlike schedule(dynamic), a call whose threads
 * keep pace computes the same rows on the same thread as the call before, so the lines of C
 * stay in that core's cache, and the row chunks of one layer's output are read by the same
 * thread in the next layer's product. Measured 2 threads against schedule(dynamic, 1),
 * medians of 21 alternating rounds, same bits: x^T dh 784 x 128 @ 128 x 128 0.97 of the
 * time, 784 x 32 @ 32 x 128 0.95, dy W2^T 512 x 10 @ (128 x 10)^T 0.95, h @ W2 512 x 128 @
 * 128 x 10 0.95, 512 x 784 @ 784 x 128 0.98, the Transformer block's 2048-row products
 * 0.99-1.01; a 784-128-10 MLP's forward and backward at batch 128 0.98. The dy W2^T called
 * back to back in one loop: 11.1 us against 16.4 (its C, 256 KB, written by the other core
 * the call before). A queue per thread, one cache line each. */
typedef struct {
    pynn_idx next;
    char pad[64 - sizeof(pynn_idx)];
} pynn_gemm_queue;
#define PYNN_GEMM_QUEUE_BYTES(nt) ((size_t)(nt) * sizeof(pynn_gemm_queue))

static void pynn_gemm_queues_init(pynn_gemm_queue *q, int nt, pynn_idx nch) {
    for (int v = 0; v < nt; v++) q[v].next = nch * v / nt;
}

/* the next chunk for thread tid of nt (its own queue first, then the others' from tid + 1
 * on; *v counts the queues it found empty, start at 0), or -1 when none is left */
static inline pynn_idx pynn_gemm_next(pynn_gemm_queue *q, int nt, pynn_idx nch, int tid,
                                      int *v) {
    for (; *v < nt; (*v)++) {
        int o = (tid + *v) % nt;
        pynn_idx ch = __atomic_fetch_add(&q[o].next, (pynn_idx)1, __ATOMIC_RELAXED);
        if (ch < nch * (o + 1) / nt) return ch;
    }
    return -1;
}

#define PYNN_GEMM_NAIVE(T, SUF)                                                              \
void pynn_gemm_naive_##SUF(T *C, pynn_idx rsc, pynn_idx csc,                                 \
                           const T *A, pynn_idx rsa, pynn_idx csa,                           \
                           const T *B, pynn_idx rsb, pynn_idx csb,                           \
                           pynn_idx M, pynn_idx N, pynn_idx K, T alpha, T beta) {            \
    /* C (M,N) = alpha * A (M,K) @ B (K,N) + beta * C; beta == 0 never reads C */            \
    for (pynn_idx i = 0; i < M; i++)                                                         \
        for (pynn_idx j = 0; j < N; j++) {                                                   \
            T acc = 0;                                                                       \
            for (pynn_idx k = 0; k < K; k++) acc += A[i * rsa + k * csa] * B[k * rsb + j * csb]; \
            T *c = &C[i * rsc + j * csc];                                                    \
            *c = beta == (T)0 ? alpha * acc : alpha * acc + beta * *c;                       \
        }                                                                                    \
}

#define PYNN_GEMM_DRIVER(T, SUF)                                                             \
static void pynn_gemm_pack_a_##SUF(const pynn_gemm_kernel_##SUF *kr, T *dst, const T *A,     \
                                   pynn_idx rsa, pynn_idx csa, pynn_idx m, pynn_idx k,       \
                                   int mr) {                                                 \
    /* dst (k, mr) = A (m, k)^T, rows m..mr-1 zero: the sliver column by column. Also for   \
     * rows of A contiguous in k, column by column: the m rows are read as m streams at     \
     * once, whose misses overlap, and dst is written in order (row by row, each row of a   \
     * large A, 1-8 KB, missed line after line before its stream was detected: the packing  \
     * took 9-12% of a 1024^3 or 2048^3 product, 3-5% this way). An edge sliver's zero     \
     * rows in the same pass: as a loop of their own gcc made them a memset call per column \
     * (h^T dy, 128x10x512: 6% of the product in memset, 11% in the packing). Columns of A \
     * contiguous (A^T read as A): the kernel table's vector copy where it has one */         \
    if (rsa == 1 && kr->packa) {                                                             \
        kr->packa(dst, A, csa, m, k);                                                        \
        return;                                                                              \
    }                                                                                        \
    if (csa == 1 && kr->packar) {   /* rows contiguous: transposed in registers */           \
        kr->packar(dst, A, rsa, m, k);                                                       \
        return;                                                                              \
    }                                                                                        \
    if (m == mr) {                                                                           \
        for (pynn_idx p = 0; p < k; p++)                                                     \
            for (pynn_idx i = 0; i < mr; i++) dst[p * mr + i] = A[i * rsa + p * csa];        \
    } else {                                                                                 \
        for (pynn_idx p = 0; p < k; p++)                                                     \
            for (pynn_idx i = 0; i < mr; i++)                                                \
                dst[p * mr + i] = i < m ? A[i * rsa + p * csa] : (T)0;                       \
    }                                                                                        \
}                                                                                            \
                                                                                             \
static void pynn_gemm_pack_b_##SUF(T *dst, const T *B, pynn_idx rsb, pynn_idx csb,           \
                                   pynn_idx k, pynn_idx n, int nr) {                         \
    /* dst (k, nr) = B (k, n), columns n..nr-1 zero: one sliver of a B with strided columns \
     * (contiguous columns: column by column; rows of B contiguous: pack_bs) */              \
    if (rsb == 1) {                                                                          \
        /* 64 rows of dst at a time (8 KB for f32, nr = 32: in L1 while all n columns are    \
         * written into it); column by column down all k rows, every write missed L1: 1 KB   \
         * rows, 2.3 ns an element at k = 1024 (measured 1 thread, 8 x 1024 @ (256 x 1024)^T  \
         * 665 -> 295 us, 2048 x 512 @ (128 x 512)^T -8%) */                                  \
        for (pynn_idx p0 = 0; p0 < k; p0 += 64) {                                            \
            pynn_idx p1 = PYNN_MIN(k, p0 + 64);                                              \
            for (pynn_idx j = 0; j < n; j++) {                                               \
                const T *bj = B + j * csb;                                                   \
                for (pynn_idx p = p0; p < p1; p++) dst[p * nr + j] = bj[p];                  \
            }                                                                                \
        }                                                                                    \
    } else {                                                                                 \
        for (pynn_idx p = 0; p < k; p++)                                                     \
            for (pynn_idx j = 0; j < n; j++) dst[p * nr + j] = B[p * rsb + j * csb];         \
    }                                                                                        \
    if (n < nr)                                                                              \
        for (pynn_idx p = 0; p < k; p++)                                                     \
            for (pynn_idx j = n; j < nr; j++) dst[p * nr + j] = 0;                           \
}                                                                                            \
                                                                                             \
static void pynn_gemm_pack_bs_##SUF(const pynn_gemm_kernel_##SUF *kr, T *dst, const T *B, \
                                    pynn_idx rsb, pynn_idx csb, pynn_idx k, pynn_idx n,      \
                                    int nr, pynn_idx s0, pynn_idx s1) {                      \
    /* slivers s0..s1-1 of the packed block dst (k, n) = B (k, n), sliver s (k, nr) at       \
     * dst + s nr k, columns past n zero. Rows of B contiguous: row by row across the        \
     * slivers, so B is read along its rows (sliver by sliver reads nr values a row, a row   \
     * stride apart: for a large B a page a row and no stream for the prefetcher; measured   \
     * 1 thread 1024^3, perf samples in packing and the loops: 8.4% -> 7.1%) */              \
    if (csb == 1 && kr->packrows) { /* the same copies in vectors (gemm_ukr.h): this loop \
         * compiled to 16-byte moves in the portable driver (x^T dz, 128 x 384 x 2048, a    \
         * Transformer's weight gradient: 6% faster at 1 thread, 9% at 2, same bits) */     \
        kr->packrows(dst, B, rsb, k, n, s0, s1);                                             \
        return;                                                                              \
    }                                                                                        \
    if (csb != 1 && rsb == 1 && kr->packcols) { /* B^T: in vectors (gemm_ukr.h) */          \
        for (pynn_idx s = s0; s < s1; s++)                                                   \
            kr->packcols(dst + s * nr * k, B + s * nr * csb, csb, k,                         \
                         PYNN_MIN(nr, n - s * nr));                                          \
        return;                                                                              \
    }                                                                                        \
    if (csb != 1) {                                                                          \
        for (pynn_idx s = s0; s < s1; s++)                                                   \
            pynn_gemm_pack_b_##SUF(dst + s * nr * k, B + s * nr * csb, rsb, csb, k,          \
                                   PYNN_MIN(nr, n - s * nr), nr);                            \
        return;                                                                              \
    }                                                                                        \
    for (pynn_idx p = 0; p < k; p++) {                                                       \
        const T *bp = B + p * rsb;                                                           \
        for (pynn_idx s = s0; s < s1; s++) {                                                 \
            T *d = dst + s * nr * k + p * nr;                                                \
            pynn_idx j0 = s * nr, w = PYNN_MIN(nr, n - j0);                                  \
            for (pynn_idx j = 0; j < w; j++) d[j] = bp[j0 + j];                              \
            for (pynn_idx j = w; j < nr; j++) d[j] = 0;                                      \
        }                                                                                    \
    }                                                                                        \
}                                                                                            \
                                                                                             \
static void pynn_gemm_rect_##SUF(const pynn_gemm_kernel_##SUF *kr, T *wa, T *wb,             \
                                 T *C, pynn_idx rsc, pynn_idx csc,                           \
                                 const T *A, pynn_idx rsa, pynn_idx csa,                     \
                                 const T *B, pynn_idx rsb, pynn_idx csb,                     \
                                 pynn_idx M, pynn_idx N, pynn_idx K, T alpha, T beta,        \
                                 pynn_idx kc, pynn_idx nc, int pack_a, int pack_b,           \
                                 const T *bpre, const T *apre, pynn_gemm_epfn_##SUF ep,      \
                                 const void *epd, pynn_idx ci, pynn_idx cj) {                \
    /* C (M,N) = alpha * A (M,K) @ B (K,N) + beta * C on one thread's rectangle; bpre: all  \
     * of B packed already (depth block pc at bpre + pc * N rounded up to nr, its slivers   \
     * as pack_bs lays them out), shared by the row chunks of one call; apre: all of A      \
     * (M <= mr rows) packed already as one sliver (K, mr) by this thread, for its column   \
     * chunks; ep (or NULL): the epilogue on each A sliver's row panel once its last depth  \
     * block is in; the rectangle sits at (ci, cj) of C */                                   \
    const int mr = kr->mr, nr = kr->nr;                                                      \
    const pynn_idx npad = (N + nr - 1) / nr * nr;                                            \
    /* an edge sliver (M not a multiple of mr) of a product written in one pass (beta 0, one \
     * depth block) is computed as the last mr rows, read like a full sliver, instead of      \
     * packed with zero rows (32 x 128 @ 128 x 10: 24% of the time in that packing): its      \
     * first rows repeat the panel before, with the same bits (gemm_ukr.h: a result does not \
     * depend on its position in the tile), and that panel's epilogue covers only the rows   \
     * the edge does not, so each element still gets one epilogue call, on its final value */ \
    const int shift = beta == (T)0 && K <= kc && M > mr && M % mr != 0;                      \
    for (pynn_idx jc = 0; jc < N; jc += nc) {                                                \
        pynn_idx ncur = PYNN_MIN(nc, N - jc);                                                \
        for (pynn_idx pc = 0; pc < K; pc += kc) {                                            \
            pynn_idx kcur = PYNN_MIN(kc, K - pc);                                            \
            T bet = pc == 0 ? beta : (T)1; /* later depth blocks accumulate */               \
            if (bpre)                                                                        \
                wb = (T *)bpre + pc * npad + jc * kcur;                                      \
            else if (pack_b)                                                                 \
                pynn_gemm_pack_bs_##SUF(kr, wb, B + pc * rsb + jc * csb, rsb, csb, kcur,     \
                                        ncur, nr, 0, (ncur + nr - 1) / nr);                  \
            for (pynn_idx ir0 = 0; ir0 < M; ir0 += mr) {                                     \
                pynn_idx ir = ir0, mcur = PYNN_MIN(mr, M - ir0), mep = mcur;                 \
                if (shift && mcur < mr)        /* the edge as the last mr rows */            \
                    ir = M - mr, mcur = mep = mr;                                            \
                else if (shift && M - ir0 - mr < mr) /* the panel before: its first rows */  \
                    mep = M - ir0 - mr;                                                      \
                const T *ap = A + ir * rsa + pc * csa;                                       \
                pynn_idx ra = rsa, ca = csa;                                                 \
                /* packed: a full sliver of A unless its columns are contiguous (A^T of a    \
                 * row-major array: the kernel reads mr values a column in place), and an   \
                 * edge sliver of 2..mr-1 rows; one row is read in place */                 \
                if (apre) {                                                                  \
                    ap = apre + pc * mr, ra = 1, ca = mr;                                    \
                } else if ((pack_a && (rsa != 1 || mcur < mr)) || (mcur < mr && mcur > 1)) { \
                    pynn_gemm_pack_a_##SUF(kr, wa, ap, rsa, csa, mcur, kcur, mr);            \
                    ap = wa, ra = 1, ca = mr;                                                \
                }                                                                            \
                T *cr = C + ir * rsc + jc * csc;                                             \
                for (pynn_idx jr = 0; jr < ncur; jr += nr) {                                 \
                    const T *bp = pack_b || bpre ? wb + jr * kcur : B + pc * rsb + (jc + jr); \
                    kr->ukr(kcur, ap, ra, ca, bp, pack_b || bpre ? nr : rsb, cr + jr * csc,  \
                            rsc, csc,                                                        \
                            alpha, bet, mcur, PYNN_MIN(nr, ncur - jr));                      \
                }                                                                            \
                if (ep && pc + kcur == K && mep > 0) /* the sliver's row panel, in L1 / L2 */ \
                    ep(epd, cr, rsc, ci + ir, cj + jc, mep, ncur);                           \
            }                                                                                \
        }                                                                                    \
    }                                                                                        \
}                                                                                            \
                                                                                             \
static void pynn_gemm_shared_##SUF(const pynn_gemm_kernel_##SUF *kr, T *wb, T *work,         \
                                   size_t la, T *C, pynn_idx rsc, pynn_idx csc,              \
                                   const T *A, pynn_idx rsa, pynn_idx csa,                   \
                                   const T *B, pynn_idx rsb, pynn_idx csb,                   \
                                   pynn_idx M, pynn_idx N, pynn_idx K, T alpha, T beta,      \
                                   pynn_idx kc, pynn_idx nc, pynn_gemm_epfn_##SUF ep,        \
                                   const void *epd) {                                        \
    /* C (M,N) = alpha * A (M,K) @ B (K,N) + beta * C, run by every thread of the team:      \
     * each packed B block is shared (slivers packed by all threads, then a barrier), the A  \
     * slivers are taken two at a time by whichever thread is free; a barrier before the     \
     * next block overwrites wb. Same kernel calls on the same packed data as the rect path. */ \
    PYNN_FTZ_BEGIN;                                                                          \
    const int mr = kr->mr, nr = kr->nr;                                                      \
    const int tid = PYNN_GEMM_TID, nth = PYNN_GEMM_NTH;                                      \
    T *wa = work + (size_t)tid * la;                                                         \
    pynn_idx nir = (M + mr - 1) / mr;                                                        \
    for (pynn_idx jc = 0; jc < N; jc += nc) {                                                \
        pynn_idx ncur = PYNN_MIN(nc, N - jc), nsl = (ncur + nr - 1) / nr;                    \
        for (pynn_idx pc = 0; pc < K; pc += kc) {                                            \
            pynn_idx kcur = PYNN_MIN(kc, K - pc);                                            \
            T bet = pc == 0 ? beta : (T)1;                                                   \
            pynn_gemm_pack_bs_##SUF(kr, wb, B + pc * rsb + jc * csb, rsb, csb, kcur, ncur,   \
                                    nr, nsl * tid / nth, nsl * (tid + 1) / nth);             \
            _Pragma("omp barrier")                                                           \
            _Pragma("omp for schedule(dynamic, 2)")                                          \
            for (pynn_idx q = 0; q < nir; q++) {                                             \
                pynn_idx ir = q * mr, mcur = PYNN_MIN(mr, M - ir);                           \
                const T *ap = A + ir * rsa + pc * csa;                                       \
                pynn_idx ca = csa;                                                           \
                if (rsa != 1 || mcur < mr) { /* as in the rect path */                       \
                    pynn_gemm_pack_a_##SUF(kr, wa, ap, rsa, csa, mcur, kcur, mr);            \
                    ap = wa, ca = mr;                                                        \
                }                                                                            \
                T *cr = C + ir * rsc + jc * csc;                                             \
                for (pynn_idx jr = 0; jr < ncur; jr += nr) {                                 \
                    kr->ukr(kcur, ap, 1, ca, wb + jr * kcur, nr, cr + jr * csc, rsc, csc,    \
                            alpha, bet, mcur, PYNN_MIN(nr, ncur - jr));                      \
                }                                                                            \
                if (ep && pc + kcur == K)                                                    \
                    ep(epd, cr, rsc, ir, jc, mcur, ncur);                                    \
            }                                                                                \
        }                                                                                    \
    }                                                                                        \
    PYNN_FTZ_END;                                                                            \
}                                                                                            \
                                                                                             \
static void pynn_gemm_part_##SUF(pynn_idx ch, pynn_idx nch, int t,                          \
                                 const pynn_gemm_kernel_##SUF *kr, T *work,                  \
                                 size_t lw, size_t la, pynn_idx parts, int split_n,          \
                                 T *C, pynn_idx rsc, pynn_idx csc,                           \
                                 const T *A, pynn_idx rsa, pynn_idx csa,                     \
                                 const T *B, pynn_idx rsb, pynn_idx csb,                     \
                                 pynn_idx M, pynn_idx N, pynn_idx K, T alpha, T beta,        \
                                 pynn_idx kc, pynn_idx nc, int pack_a, int pack_b,           \
                                 const T *bpre, const T *apre, pynn_gemm_epfn_##SUF ep,      \
                                 const void *epd) {                                          \
    /* chunk ch of nch (whole tiles of the rows or of the columns of C) on thread t, which   \
     * owns slice t of the scratch; bpre: B packed once for all row chunks, apre: A (one     \
     * sliver) packed once by thread t for its column chunks (or NULL) */                   \
    PYNN_FTZ_BEGIN;                                                                          \
    const int mr = kr->mr, nr = kr->nr;                                                      \
    T *wa = work + (size_t)t * lw, *wb = wa + la;                                            \
    pynn_idx p0 = parts * ch / nch, p1 = parts * (ch + 1) / nch;                             \
    if (split_n) {                                                                           \
        pynn_idx n0 = p0 * nr, n1 = PYNN_MIN(N, p1 * nr);                                    \
        pynn_gemm_rect_##SUF(kr, wa, wb, C + n0 * csc, rsc, csc, A, rsa, csa, B + n0 * csb,  \
                             rsb, csb, M, n1 - n0, K, alpha, beta, kc, nc, pack_a, pack_b,   \
                             NULL, apre, ep, epd, 0, n0);                                    \
    } else {                                                                                 \
        pynn_idx m0 = p0 * mr, m1 = PYNN_MIN(M, p1 * mr);                                    \
        pynn_gemm_rect_##SUF(kr, wa, wb, C + m0 * rsc, rsc, csc, A + m0 * rsa, rsa, csa, B,  \
                             rsb, csb, m1 - m0, N, K, alpha, beta, kc, nc, pack_a, pack_b,   \
                             bpre, NULL, ep, epd, m0, 0);                                    \
    }                                                                                        \
    PYNN_FTZ_END;                                                                            \
}                                                                                            \
                                                                                             \
static void pynn_gemm_dots_##SUF(const pynn_gemm_kernel_##SUF *kr, T *C, pynn_idx rsc,       \
                                 pynn_idx csc, const T *A, pynn_idx rsa, const T *B,         \
                                 pynn_idx csb, pynn_idx N, pynn_idx K, T alpha, T beta,      \
                                 pynn_idx e0, pynn_idx e1) {                                 \
    /* elements e0..e1-1 (row-major order) of C (M,N) = alpha * A (M,K) @ B (K,N) + beta * C, \
     * rows of A and columns of B contiguous: one dot product per element */                 \
    PYNN_FTZ_BEGIN;                                                                          \
    for (pynn_idx e = e0; e < e1; e++) {                                                     \
        pynn_idx i = e / N, j = e % N;                                                      \
        T s = kr->dot(K, A + i * rsa, B + j * csb);                                          \
        T *c = C + i * rsc + j * csc;                                                        \
        *c = beta == (T)0 ? alpha * s : alpha * s + beta * *c;                               \
    }                                                                                        \
    PYNN_FTZ_END;                                                                            \
}                                                                                            \
                                                                                             \
static void pynn_gemm_narrow_part_##SUF(const pynn_gemm_kernel_##SUF *kr, T *C, pynn_idx rsc,  \
                                        pynn_idx csc, const T *A, pynn_idx rsa, const T *bt, \
                                        pynn_idx M, pynn_idx N, pynn_idx K, T alpha, T beta, \
                                        pynn_idx nb, pynn_idx ch, pynn_idx nch) {            \
    /* chunk ch of nch (blocks of 4 rows, nb blocks) of C (M,N) = alpha * A @ BT^T + beta C */ \
    PYNN_FTZ_BEGIN;                                                                          \
    pynn_idx i0 = nb * ch / nch * 4, i1 = PYNN_MIN(M, nb * (ch + 1) / nch * 4);              \
    if (i1 > i0)                                                                             \
        kr->narrow(K, A + i0 * rsa, rsa, bt, K, C + i0 * rsc, rsc, csc, alpha, beta,         \
                   i1 - i0, N);                                                              \
    PYNN_FTZ_END;                                                                            \
}                                                                                            \
                                                                                             \
static int pynn_gemm_body_##SUF(T *C, pynn_idx rsc, pynn_idx csc, const T *A, pynn_idx rsa,  \
                                pynn_idx csa, const T *B, pynn_idx rsb, pynn_idx csb,        \
                                pynn_idx M, pynn_idx N, pynn_idx K, T alpha, T beta,         \
                                pynn_ctx ctx, pynn_gemm_epfn_##SUF ep, const void *epd,      \
                                int *ep_done) {                                              \
    /* C (M,N) = alpha * A (M,K) @ B (K,N) + beta * C (beta == 0: written, never read); the  \
     * tiled paths apply ep per row panel (and set *ep_done) while C is not transposed */    \
    if (K <= 0) {                                                                            \
        for (pynn_idx i = 0; i < M; i++)                                                     \
            for (pynn_idx j = 0; j < N; j++) {                                               \
                T *c = C + i * rsc + j * csc;                                                \
                *c = beta == (T)0 ? (T)0 : beta * *c;                                        \
            }                                                                                \
        return PYNN_OK;                                                                      \
    }                                                                                        \
    const pynn_gemm_kernel_##SUF *kr = ctx.isa >= PYNN_ISA_AVX512 ? &pynn_gemm_avx512_##SUF  \
                                     : ctx.isa >= PYNN_ISA_AVX2 ? &pynn_gemm_avx2_##SUF      \
                                     : &pynn_gemm_generic_##SUF;                             \
    const int mr = kr->mr, nr = kr->nr;                                                      \
    if ((M == 1 || N == 1 || (M <= PYNN_GEMM_DOT_ROWS && K >= PYNN_GEMM_DOT_K))             \
        && csa == 1 && rsb == 1) {                                                           \
        /* GEMV and dot shapes with contiguous rows of A and columns of B: one dot product   \
         * per element (tiles would waste all but one row or column, and for a few rows the \
         * transposed B is not worth packing); threads split the elements, each computed    \
         * whole by one thread */                                                            \
        pynn_idx ne = M * N;                                                                 \
        int nt = pynn_threads_for(ctx, (double)ne * (double)K);                              \
        if (nt > ne) nt = (int)ne;                                                           \
        if (nt == 1)                                                                         \
            pynn_gemm_dots_##SUF(kr, C, rsc, csc, A, rsa, B, csb, N, K, alpha, beta, 0, ne); \
        else {                                                                               \
            _Pragma("omp parallel for num_threads(nt) schedule(static) if(nt > 1)")          \
            for (int t = 0; t < nt; t++)                                                     \
                pynn_gemm_dots_##SUF(kr, C, rsc, csc, A, rsa, B, csb, N, K, alpha, beta,     \
                                     ne * t / nt, ne * (t + 1) / nt);                        \
        }                                                                                    \
        return PYNN_OK;                                                                      \
    }                                                                                        \
    if (kr->narrow && N <= PYNN_GEMM_NARROW_N && K >= 64 && csa == 1                         \
        && (double)N * (double)(K + 60) < 16.5 * (double)K) {                                \
        /* narrow C from rows of A contiguous in k (a classifier head, h @ W2): dot products  \
         * of A's rows with B^T's rows (packed once, a few KB), vectors along k, so no lane   \
         * is spent on columns past N; threads take chunks of 4-row blocks from 256K         \
         * multiply-adds, as the tiles' row splits do. Cost per element of C in vector ops:   \
         * tiles K / N (one lane per column, 16 lanes), this path ~(K + 60) / 16 (the lane    \
         * sums); taken where N (K + 60) < 16.5 K: N <= 4 from K = 64, 8 from 57, 10 from 93, \
         * 12 from 161, 14 from 337, 16 from 1921 (medians of 15 alternating rounds, 1      \
         * thread, 512 rows, this path / tiles: N = 10, K = 64 1.09, K = 96 0.72-0.89, K =   \
         * 128 0.82; N = 8, K = 64 0.72-0.88; N = 12, K = 128 0.89-0.98, K = 192 0.90-0.95;  \
         * N = 14, K = 256 1.01, K = 384 0.92; N = 15, K = 256 1.04, K = 512 0.98; N = 16, K \
         * = 256 1.06, K = 1024 0.82-0.86; 2 threads: N = 10, K = 128 0.76, N = 12, K = 192  \
         * 0.83) */                                                                          \
        int nt = pynn_threads_for(ctx, (double)M * (double)N * (double)K / 4.0);             \
        pynn_idx nb = (M + 3) / 4;                                                           \
        if (nt > nb) nt = (int)nb;                                                           \
        size_t lbt = ((size_t)(N * K) * sizeof(T) + 63) & ~(size_t)63;                       \
        /* one thread and a B^T of a few KB (h @ W2: 10 x 128 floats): from the stack, as   \
         * the tile paths' scratch below */                                                  \
        PYNN_GEMM_STACK_SCRATCH(nstk);                                                       \
        void *bbuf = NULL;                                                                   \
        if (nt == 1 && lbt <= PYNN_GEMM_STACK_BYTES)                                         \
            bbuf = nstk;                                                                     \
        else if (posix_memalign(&bbuf, 64, lbt + PYNN_GEMM_QUEUE_BYTES(nt)) != 0)            \
            return PYNN_ENOMEM;                                                              \
        T *bt = (T *)bbuf;                                                                   \
        if (kr->packbt && csb == 1)                                                          \
            kr->packbt(bt, B, rsb, K, N);                                                    \
        else                                                                                 \
            for (pynn_idx j = 0; j < N; j++)                                                 \
                for (pynn_idx p = 0; p < K; p++) bt[j * K + p] = B[p * rsb + j * csb];       \
        if (nt == 1)                                                                         \
            pynn_gemm_narrow_part_##SUF(kr, C, rsc, csc, A, rsa, bt, M, N, K, alpha, beta,   \
                                        nb, 0, 1);                                           \
        else {                                                                               \
            pynn_idx nch = PYNN_MIN(nb, (pynn_idx)nt * PYNN_GEMM_CHUNKS);                    \
            pynn_gemm_queue *qs = (pynn_gemm_queue *)((char *)bbuf + lbt);                   \
            pynn_gemm_queues_init(qs, nt, nch);                                              \
            _Pragma("omp parallel num_threads(nt)")                                          \
            {                                                                                \
                int qv = 0;                                                                  \
                for (pynn_idx ch; (ch = pynn_gemm_next(qs, nt, nch, PYNN_GEMM_TID, &qv)) >= 0;) \
                    pynn_gemm_narrow_part_##SUF(kr, C, rsc, csc, A, rsa, bt, M, N, K, alpha, \
                                                beta, nb, ch, nch);                          \
            }                                                                                \
        }                                                                                    \
        if (bbuf != (void *)nstk) free(bbuf);                                                \
        return PYNN_OK;                                                                      \
    }                                                                                        \
    int ct = 0;                                                                              \
    if (N <= nr / 2 && M > N && K >= 64 && rsa == 1 && csa != 1) {                           \
        /* narrow C and A with contiguous columns (A^T B in a backward pass): compute        \
         * C^T = B^T A^T, whose tiles fill both vectors of B^T's rows and read A^T's         \
         * contiguous rows in place; each element is still one FMA chain over p */           \
        const T *t = A;                                                                      \
        pynn_idx ti = M, trs = rsa, tcs = csa;                                               \
        A = B, rsa = csb, csa = rsb, B = t, rsb = tcs, csb = trs, M = N, N = ti;              \
        ti = rsc, rsc = csc, csc = ti;                                                       \
        ep = NULL;                                     /* C^T: the caller's pass after */    \
        ct = 1;                                                                              \
    }                                                                                        \
    if (csc != 1) ep = NULL;                                                                 \
    *ep_done = ep != NULL;                                                                   \
    /* path and depth blocking from the shapes alone (see the header comment); the depth    \
     * blocks from K and N only: the bits of a row of C do not depend on how many rows share \
     * the call (a convolution's pixel blocks and the fused conv + pool kernel's rows) */    \
    int small_b = (double)K * (double)N * sizeof(T) <= PYNN_GEMM_SMALL_B_BYTES;              \
    int small = small_b || M <= 2 * mr;                                                      \
    pynn_idx kmax = small_b ? PYNN_GEMM_SMALL_KC : kr->kc;                                   \
    pynn_idx nkb = (K + kmax - 1) / kmax, kc = (K + nkb - 1) / nkb;                          \
    /* B in place on the small path, unless its columns are strided, or its rows are not     \
     * 64-byte aligned (NumPy's buffers start 16 bytes past a line: every vector load of a   \
     * row then spans two lines) and enough rows of A reuse a packed copy: measured 1 thread, \
     * B 16 bytes off, packing against in place: 784x128x128 with A^T +5-8%, 2048x64x288     \
     * +11%, 256^3 +13%, 512x128x784 -3..+7%, but 128x128x784 -7% and 32x128x784 -24% */     \
    int b_split = ((uintptr_t)B % 64 != 0 || (size_t)rsb * sizeof(T) % 64 != 0);            \
    int pack_b = !small || csb != 1 || (b_split && M >= PYNN_GEMM_PACK_B_ROWS);              \
    /* threads split the larger tile count; each part is whole tiles */                      \
    pynn_idx tm = (M + mr - 1) / mr, tn = (N + nr - 1) / nr;                                 \
    int split_n = tn >= tm;                                                                  \
    pynn_idx parts = split_n ? tn : tm;                                                      \
    /* threads from 1M multiply-adds (pynn_threads_for's 65536 x 16), split by rows from    \
     * 256K: a row chunk reads its own rows of A and shares B, where a column chunk reads all \
     * of A (and packs it, for the C^T of a narrow A^T B). Measured 2 threads against 1      \
     * (medians of 15 alternating rounds): 512 x 128 @ 128 x 10 (h @ W2) 0.78 of the time,   \
     * 512 x 10 @ (128 x 10)^T (dy W2^T) 0.81, ten row-split shapes of 0.5-1M multiply-adds  \
     * 0.59-0.90 (e.g. 96^3 0.59, 64 x 784 @ 784 x 16 0.90) and eight of 256-512K 0.69-0.99; \
     * from 128K they were 0.82-1.09. Column splits from 256K lost with A packed per chunk  \
     * (h^T dy, 128 x 512 @ 512 x 10: 1.08), and with A packed per thread (below) were mixed \
     * from one process to the next (8 x 1024 @ 1024 x 64 1.07, 12 x 256 @ 256 x 256 0.65   \
     * and 1.07). The C^T of a narrow A^T B (its A one sliver packed once per thread, its    \
     * B^T rows fill the tiles' vectors) splits from 256K: 2 threads against 1, 15 rounds,   \
     * h^T dy 128 x 512 @ 512 x 10 0.67 of the time, 128 x 256 @ 256 x 10 0.78, 64 x 1024 @ \
     * 1024 x 10 0.68, 300 x 200 @ 200 x 16 0.63 */                                          \
    int nt = pynn_threads_for(ctx, (double)M * (double)N * (double)K / (split_n && !ct ? 16.0 : 4.0)); \
    if (nt > parts) nt = (int)parts;                                                         \
    /* a few row slivers that do not share evenly among the threads, with A read in place:   \
     * split the columns instead where their tiles share better (each thread then reads all  \
     * of A, a few hundred KB; nothing is packed per chunk). 128 x 784 @ 784 x 128 is 11     \
     * slivers (the last of 8 rows) against 4 column tiles: 2 threads, 0.92-0.95 of the time \
     * in four runs; 84 x 512 @ 512 x 64 0.90, 128^3 0.94, 180 x 200 @ 200 x 256 1.02; the   \
     * other layer shapes do not take it */                                                  \
    if (nt > 1 && !split_n && small && csa == 1 && tm < 16 && tn >= nt) {                   \
        double lr = (double)((tm + nt - 1) / nt * nt) / (double)tm;                          \
        double lc = (double)((tn + nt - 1) / nt * nt) / (double)tn;                          \
        if (lc < lr) {                                                                       \
            split_n = 1;                                                                     \
            parts = tn;                                                                      \
        }                                                                                    \
    }                                                                                        \
    /* with threads, C is cut into up to PYNN_GEMM_CHUNKS chunks per thread, each handed to  \
     * the next free thread: a thread that starts late or is preempted (another process, a   \
     * BLAS pool spinning on the other core) costs its own chunks, not half the product;     \
     * chunks are whole tiles computed as by one thread, so the bits do not change. Where    \
     * every chunk packs its own copy of the other operand (the packed path), chunks keep   \
     * >= 512 rows or columns: 8 chunks of 1024^3 or 2048^3 cost 9-13% more CPU time than    \
     * one (measured 1 thread). The small path packs nothing per chunk (a B that needs it is  \
     * packed once by the team, below): 4 chunks a thread, which rebalance a late thread     \
     * (measured 2 threads against chunks of >= 512 rows: 512 x 784 @ 784 x 128 0.89 of the  \
     * time, the Transformer block's forward GEMMs 0.95-0.99 in three runs, same bits) */    \
    pynn_idx nch = 1;                                                                        \
    if (nt > 1) {                                                                            \
        nch = (pynn_idx)nt * PYNN_GEMM_CHUNKS;                                               \
        if (!small)                                                                          \
            nch = PYNN_MAX(nt, PYNN_MIN(nch, (split_n ? N : M) / 512));                      \
        nch = PYNN_MIN(nch, parts);                                                          \
    }                                                                                        \
    pynn_idx ntile = (split_n ? (parts + nch - 1) / nch : tn) * nr;                          \
    pynn_idx nc = pack_b ? PYNN_MIN(kr->nc, ntile) : N;                                      \
    /* per-thread scratch: the A sliver and the packed B block, each 64-byte aligned */      \
    size_t la = ((size_t)(mr * kc) + 15) & ~(size_t)15;                                      \
    size_t lb = pack_b ? (((size_t)(kc * ((nc + nr - 1) / nr) * nr)) + 15) & ~(size_t)15 : 0; \
    /* one thread: no parallel region at all (it costs more than a small GEMM) */            \
    if (nt > 1 && !small && !split_n) {                                                      \
        /* packed rows: one shared B block (kc x kr->nc) for the team, A slivers dynamic */  \
        pynn_idx ncs = PYNN_MIN(kr->nc, N);                                                  \
        size_t lbs = (size_t)(kc * ((ncs + nr - 1) / nr) * nr);                              \
        void *sbuf = NULL;                                                                   \
        if (posix_memalign(&sbuf, 64, ((size_t)nt * la + lbs) * sizeof(T)) != 0)             \
            return PYNN_ENOMEM;                                                              \
        T *swork = (T *)sbuf, *swb = swork + (size_t)nt * la;                                \
        _Pragma("omp parallel num_threads(nt) if(nt > 1)")                                   \
        pynn_gemm_shared_##SUF(kr, swb, swork, la, C, rsc, csc, A, rsa, csa, B, rsb, csb,    \
                               M, N, K, alpha, beta, kc, ncs, ep, epd);                      \
        free(sbuf);                                                                          \
        return PYNN_OK;                                                                      \
    }                                                                                        \
    if (nt > 1 && small && pack_b && !split_n && nch > 1                                     \
        && (double)K * (double)((N + nr - 1) / nr * nr) * sizeof(T) > 32768.0) {            \
        /* row chunks on the small path would each pack all of B (a small B, but 4 copies   \
         * per call: 2048 x 128 @ 128 x 512 spent ~5% of its time packing): the team packs  \
         * it once, slivers split among threads, then takes the chunks; the same packed     \
         * values and kernel calls, so the same bits. Not for a packed B of at most 32 KB   \
         * (a narrow C, h @ W2, or a short depth, dy W2^T): each thread packs its own copy   \
         * at its first chunk (own_b below), with no barrier */                              \
        pynn_idx npad = (N + nr - 1) / nr * nr, nsl = npad / nr, nkb2 = (K + kc - 1) / kc;  \
        void *sbuf = NULL;                                                                   \
        size_t ls = (((size_t)nt * la + (size_t)(npad * K)) * sizeof(T) + 63) & ~(size_t)63; \
        if (posix_memalign(&sbuf, 64, ls + PYNN_GEMM_QUEUE_BYTES(nt)) != 0)                  \
            return PYNN_ENOMEM;                                                              \
        T *swork = (T *)sbuf, *bpk = swork + (size_t)nt * la;                                \
        pynn_gemm_queue *qs = (pynn_gemm_queue *)((char *)sbuf + ls);                        \
        pynn_gemm_queues_init(qs, nt, nch);                                                  \
        _Pragma("omp parallel num_threads(nt)")                                              \
        {                                                                                    \
            const int tid = PYNN_GEMM_TID;                                                   \
            int qv = 0;                                                                      \
            _Pragma("omp for schedule(static)")                                              \
            for (pynn_idx q = 0; q < nkb2 * nsl; q++) {                                      \
                pynn_idx pc = q / nsl * kc, sl = q % nsl;                                    \
                pynn_gemm_pack_bs_##SUF(kr, bpk + pc * npad, B + pc * rsb, rsb, csb,         \
                                        PYNN_MIN(kc, K - pc), N, nr, sl, sl + 1);            \
            }                                                                                \
            for (pynn_idx ch; (ch = pynn_gemm_next(qs, nt, nch, tid, &qv)) >= 0;)           \
                pynn_gemm_part_##SUF(ch, nch, tid, kr, swork, la, la, parts, 0, C,           \
                                     rsc, csc, A, rsa, csa, B, rsb, csb, M, N, K, alpha,     \
                                     beta, kc, nc, 0, 1, bpk, NULL, ep, epd);                \
        }                                                                                    \
        free(sbuf);                                                                          \
        return PYNN_OK;                                                                      \
    }                                                                                        \
    /* column chunks of a single A sliver that needs packing (the C^T = B^T A^T of a narrow \
     * A^T B: h^T dy, 128 x 2048 @ 2048 x 10, is dy^T h, 10 rows) pack it once per thread,  \
     * at its first chunk, instead of once per chunk (measured 2 threads, against packing  \
     * per chunk, two runs: 8 x 1024 @ 1024 x 256 0.55 and 0.55 of the time, 128 x 2048 @  \
     * 2048 x 10 0.56 and 0.63, 10 x 4096 @ 4096 x 64 0.69 and 0.84, 7 x 300 @ 300 x 2000   \
     * 0.83 and 0.88). One copy shared by the team lost where it is large: its lines cross  \
     * to the other core on every call (8 x 1024 @ 1024 x 64: 1.4x the time). The copy has  \
     * all of K: up to 1 MB a thread, past that each chunk packs its depth blocks itself */  \
    const int own_a = nch > 1 && split_n && M <= mr                                          \
        && ((!small && (rsa != 1 || M < mr)) || (M < mr && M > 1))                           \
        && (double)K * (double)mr * sizeof(T) <= 1048576.0;                                  \
    const size_t lap = own_a ? ((size_t)(K * mr) + 15) & ~(size_t)15 : 0;                     \
    /* row chunks with a small B to pack (the team path's exception above): each          \
     * thread packs all of K once, at its first chunk, for its chunks. Measured 2 threads:   \
     * against the team's copy behind a barrier, packing per chunk was 0.86 (256 x 128 @ 128 \
     * x 10), 0.94 (300 x 200 @ 200 x 20) and 0.97 (512 x 128 @ 128 x 10) of the time with  \
     * both cores free, but 1.04-1.06 in a later run with the host slow (2-thread times near \
     * 1-thread ones: the first thread repacked for every chunk it took); per thread, 0.82, \
     * 0.89 and 0.91. The same for several slivers of B packed to at most 32 KB, against    \
     * the team's copy (15 rounds): dy W2^T 512 x 10 @ (128 x 10)^T 0.79, 1024 x 10 @ (128  \
     * x 10)^T 0.76, 512 x 10 @ (256 x 10)^T 0.80, 512 x 16 @ (512 x 16)^T 0.85, 256 x 32 @ \
     * 32 x 128 (B's rows off the lines) 0.84 */                                             \
    const pynn_idx npb = (N + nr - 1) / nr * nr;                                             \
    const int own_b = nt > 1 && small && pack_b && !split_n && nch > 1                       \
        && (double)K * (double)npb * sizeof(T) <= 32768.0;                                   \
    const size_t lbp = own_b ? ((size_t)(K * npb) + 15) & ~(size_t)15 : 0;                    \
    /* one thread with a few KB of scratch (the small layer shapes: an A sliver of 12 x     \
     * 128 floats) takes it from the stack: malloc and free were ~5% of a 32 x 128 @ 128 x 10 \
     * call (1.7 us) */                                                                      \
    PYNN_GEMM_STACK_SCRATCH(stk);                                                            \
    size_t need = (size_t)nt * (la + lb + lap + lbp) * sizeof(T);                            \
    const size_t lq = nt > 1 ? PYNN_GEMM_QUEUE_BYTES(nt) : 0;  /* need is 64-byte aligned */ \
    void *buf = NULL;                                                                        \
    if (nt == 1 && need <= PYNN_GEMM_STACK_BYTES)                                            \
        buf = stk;                                                                           \
    else if (posix_memalign(&buf, 64, need + lq) != 0)                                       \
        return PYNN_ENOMEM;                                                                  \
    T *work = (T *)buf, *apk = work + (size_t)nt * (la + lb), *bpk = apk + (size_t)nt * lap;   \
    if (nt == 1)                                                                             \
        pynn_gemm_part_##SUF(0, 1, 0, kr, work, la + lb, la, parts, split_n, C, rsc, csc,    \
                             A, rsa, csa, B, rsb, csb, M, N, K, alpha, beta, kc, nc,         \
                             !small, pack_b, NULL, NULL, ep, epd);                           \
    else {                                                                                   \
        pynn_gemm_queue *qs = (pynn_gemm_queue *)((char *)buf + need);                       \
        pynn_gemm_queues_init(qs, nt, nch);                                                  \
        _Pragma("omp parallel num_threads(nt)")                                              \
        {                                                                                    \
            const int tid = PYNN_GEMM_TID;                                                   \
            T *mya = NULL;                         /* this thread's packed A, once made */   \
            T *myb = NULL;                         /* ... and B (own_b) */                   \
            int qv = 0;                                                                      \
            for (pynn_idx ch; (ch = pynn_gemm_next(qs, nt, nch, tid, &qv)) >= 0;) {          \
                if (own_a && !mya) {                                                         \
                    mya = apk + (size_t)tid * lap;                                           \
                    pynn_gemm_pack_a_##SUF(kr, mya, A, rsa, csa, M, K, mr);                  \
                }                                                                            \
                if (own_b && !myb) {   /* the team path's layout: depth blocks of kc */      \
                    myb = bpk + (size_t)tid * lbp;                                           \
                    for (pynn_idx pc = 0; pc < K; pc += kc)                                  \
                        pynn_gemm_pack_bs_##SUF(kr, myb + pc * npb, B + pc * rsb, rsb, csb,  \
                                                PYNN_MIN(kc, K - pc), N, nr, 0, npb / nr);   \
                }                                                                            \
                pynn_gemm_part_##SUF(ch, nch, tid, kr, work, la + lb, la, parts, split_n, C, \
                                     rsc, csc, A, rsa, csa, B, rsb, csb, M, N, K, alpha,     \
                                     beta, kc, nc, !small, pack_b, myb, mya, ep, epd);       \
            }                                                                                \
        }                                                                                    \
    }                                                                                        \
    if (buf != (void *)stk) free(buf);                                                       \
    return PYNN_OK;                                                                          \
}                                                                                            \
                                                                                             \
int pynn_gemm_ep_##SUF(T *C, pynn_idx rsc, pynn_idx csc, const T *A, pynn_idx rsa,           \
                       pynn_idx csa, const T *B, pynn_idx rsb, pynn_idx csb, pynn_idx M,     \
                       pynn_idx N, pynn_idx K, T alpha, T beta, pynn_ctx ctx,                \
                       pynn_gemm_epfn_##SUF ep, const void *epd) {                           \
    if (M <= 0 || N <= 0) return PYNN_OK;                                                    \
    if (ep && csc != 1) return PYNN_EINVAL;                                                  \
    int done = 0;                                                                            \
    int st = pynn_gemm_body_##SUF(C, rsc, csc, A, rsa, csa, B, rsb, csb, M, N, K, alpha,     \
                                  beta, ctx, ep, epd, &done);                                \
    if (st != PYNN_OK || !ep || done) return st;                                             \
    /* paths without tiles of C (dot products, narrow C, C^T): the epilogue row by row,      \
     * each row one call over all N columns (which rows share a thread changes nothing) */   \
    int nt = pynn_threads_for(ctx, (double)M * (double)N * 4.0);                             \
    (void)nt;                                                                                \
    _Pragma("omp parallel for num_threads(nt) schedule(static) if(nt > 1)")                  \
    for (pynn_idx i = 0; i < M; i++) ep(epd, C + i * rsc, rsc, i, 0, 1, N);                  \
    return PYNN_OK;                                                                          \
}                                                                                            \
                                                                                             \
int pynn_gemm_##SUF(T *C, pynn_idx rsc, pynn_idx csc, const T *A, pynn_idx rsa,              \
                    pynn_idx csa, const T *B, pynn_idx rsb, pynn_idx csb, pynn_idx M,        \
                    pynn_idx N, pynn_idx K, T alpha, T beta, pynn_ctx ctx) {                 \
    return pynn_gemm_ep_##SUF(C, rsc, csc, A, rsa, csa, B, rsb, csb, M, N, K, alpha, beta,   \
                              ctx, NULL, NULL);                                              \
}

PYNN_GEMM_NAIVE(float, f32)
PYNN_GEMM_NAIVE(double, f64)
PYNN_GEMM_DRIVER(float, f32)
PYNN_GEMM_DRIVER(double, f64)
