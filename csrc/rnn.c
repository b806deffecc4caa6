/* rnn.c - SimpleRNN, LSTM and GRU over a whole sequence, and backpropagation through time.
 * Contract in rnn.h; the math, line by line, in pynn/reference/rnn.py.
 *
 * The caller computes the input projection xproj = x @ kernel + bias for all steps as one
 * GEMM. Here, per step: z = h_{t-1} @ w_rec (a GEMM of B x G*H x H) and one fused pass of the
 * gate nonlinearities and the state update. Backward, per step: one fused pass of the gate
 * derivatives and dh_{t-1} = dz_t @ w_rec^T; dw_rec = hprev^T @ dz over all steps is one
 * big GEMM at the end, which also yields db_rec (a column of ones beside hprev). The LSTM's
 * bias is added to xproj in the fused pass, and its gradient is that db_rec: no separate
 * sweep over the (B*T, 4H) arrays for either.
 *
 * Parallel split: one parallel region for the whole sequence, split one of two ways.
 * - By batch rows, where each thread gets at least PYNN_RNN_BROWS of them and w_rec takes
 *   at most PYNN_RNN_BSPLIT_BYTES: a thread packs all of w_rec (w_rec^T backward) once per
 *   call into micro-kernel slivers (1 MB for H = 256, LSTM: in its own L2), and runs its
 *   rows' whole recurrence alone, packing its rows of A itself: no barrier, nothing
 *   shared per step. (Measured against the units split, LSTM B x 64 x 256 at 2 threads,
 *   forward / backward, medians of 21 alternating rounds: B = 16 0.88 / 0.93 of the time,
 *   B = 32 0.93 / 0.83, B = 64 0.66 / 0.80; the units split also lost more when the other
 *   core was busy. B = 8, 4 rows a thread: 0.89 / 0.99, within noise; B = 4: 1.6 / 1.3
 *   slower, so below 8 rows a thread it stays on units.)
 * - Else by hidden units (multiples of 16): each thread owns a block of units and, for
 *   those, the columns of every gate, packed once per call. Per step it runs its column
 *   slice of the recurrent GEMM against the step's A packed by the whole team, then the
 *   fused pass for its units, packs its columns of the next step's A, then one barrier (the
 *   next step reads all of h_t). Backward needs dz_t of all columns before the GEMM, so the
 *   barrier sits between the fused pass (and packing) and the GEMM.
 * Every output element is computed by one thread with an order fixed by the shapes (one FMA
 * chain over k), so the bits do not depend on the thread count or the split.
 *
 * Masks (rnn.h): a skipped step's row still goes through the step's GEMM (one row of a
 * product the other rows need anyway); the fused pass then copies the previous state into
 * it instead of the cell's update and zeroes its gates. Backward, its dxproj row is 0, so it
 * adds nothing to the GEMMs, and the state gradient reaches the step before through carry:
 * with a mask the step's GEMM accumulates onto carry (beta 1), which the fused pass leaves
 * at dh_t + carry for a skipped row and at 0 (or the GRU's d * z) for a computed one. An
 * all-True mask gives the bits of no mask.
 */
#include <stdlib.h>
#include <string.h>
#ifdef _OPENMP
#include <omp.h>
#define PYNN_TID omp_get_thread_num()
#define PYNN_NTH omp_get_num_threads()
#else
#define PYNN_TID 0
#define PYNN_NTH 1
#endif

#include "activations.h"
#include "gemm.h"
#include "gemm_ukr.h"
#include "rnn.h"

#if defined(__GNUC__) && (defined(__x86_64__) || defined(__i386__))
#define PYNN_RNN_AVX2 __attribute__((target("avx2,fma")))
#define PYNN_RNN_AVX512 __attribute__((target("avx512f,avx512dq,avx512bw,avx512vl,fma")))
#define PYNN_RNN_TARGETS 1
#else
#define PYNN_RNN_TARGETS 0
#endif

/* LSTM step of one unit j, forward: z = zs + the input projection XI..XO of gates i, f, c, o
 * (z arrives in g, the step's slice of gates, and leaves as the activated gates) */
#define PYNN_RNN_LSTM_FWD(T, SUF, XI, XF, XG, XO) {                                         \
        T i = pynn_sigmoid_##SUF(g[j] + (XI));                                              \
        T f = pynn_sigmoid_##SUF(g[H + j] + (XF));                                          \
        T gg = pynn_tanh_##SUF(g[2 * H + j] + (XG));                                        \
        T o = pynn_sigmoid_##SUF(g[3 * H + j] + (XO));                                      \
        T cn = f * cp[j] + i * gg;                                                          \
        cr[j] = cn;                                                                         \
        hr[j] = o * pynn_tanh_##SUF(cn);                                                    \
        g[j] = i, g[H + j] = f, g[2 * H + j] = gg, g[3 * H + j] = o;                        \
    }
/* LSTM step of one unit j, backward: dxproj from the saved gates, c_t, c_{t-1}, dh + carry */
#define PYNN_RNN_LSTM_BWD(T, SUF) {                                                         \
        T i = g[j], f = g[H + j], gg = g[2 * H + j], o = g[3 * H + j];                      \
        T tc = pynn_tanh_##SUF(cc[j]);                                                      \
        T d = dhr[j] + cr[j];                                                               \
        T dc = dcr[j] + d * o * ((T)1 - tc * tc);                                           \
        dx[j] = dc * gg * i * ((T)1 - i);                                                   \
        dx[H + j] = dc * cp[j] * f * ((T)1 - f);                                            \
        dx[2 * H + j] = dc * i * ((T)1 - gg * gg);                                          \
        dx[3 * H + j] = d * tc * o * ((T)1 - o);                                            \
        dcr[j] = dc * f;                                                                    \
    }

/* The fused passes over units [j0, j1) of every batch row at step t (TN = sequence length). */
#define PYNN_RNN_ROWS(T, SUF, ISA, ATTR)                                                    \
ATTR static void pynn_rnn_fwd_rows_##SUF##_##ISA(                                           \
        int cell, T *h, T *c, T *gates, const T *zs, const T *xproj, const T *h0,            \
        const T *c0, const T *b_rec, const uint8_t *mask, pynn_idx b0, pynn_idx b1,          \
        pynn_idx TN, pynn_idx H, pynn_idx t, pynn_idx j0, pynn_idx j1) {                     \
    /* h_t (and c_t, gates_t) = cell(xproj_t + z) for batch rows b0..b1-1, units j0..j1-1;  \
     * z holds h_{t-1} @ w */                                                               \
    for (pynn_idx b = b0; b < b1; b++) {                                                    \
        pynn_idx r = b * TN + t;                    /* row (b, t) of the (B*T, .) arrays */ \
        T *hr = h + r * H;                                                                  \
        if (mask && !mask[r]) {         /* a skipped step: the state carries over */        \
            const T *hp = t ? h + (r - 1) * H : h0 + b * H;                                 \
            for (pynn_idx j = j0; j < j1; j++) hr[j] = hp[j];                               \
            if (cell == PYNN_RNN_LSTM) {                                                    \
                const T *cp = t ? c + (r - 1) * H : c0 + b * H;                             \
                T *cr = c + r * H;                                                          \
                for (pynn_idx j = j0; j < j1; j++) cr[j] = cp[j];                           \
            }                                                                               \
            if (cell == PYNN_RNN_LSTM || cell == PYNN_RNN_GRU)  /* gates (B,T,4H): 0 */    \
                for (pynn_idx q = 0; q < 4; q++)                                            \
                    for (pynn_idx j = j0; j < j1; j++) gates[r * 4 * H + q * H + j] = 0;    \
            continue;                                                                       \
        }                                                                                   \
        if (cell == PYNN_RNN_TANH || cell == PYNN_RNN_RELU) {                               \
            const T *xr = xproj + r * H;                                                    \
            if (cell == PYNN_RNN_TANH) {                                                    \
                _Pragma("omp simd")                                                         \
                for (pynn_idx j = j0; j < j1; j++) hr[j] = pynn_tanh_##SUF(xr[j] + hr[j]);  \
            } else {                                                                        \
                _Pragma("omp simd")                                                         \
                for (pynn_idx j = j0; j < j1; j++) hr[j] = pynn_relu_##SUF(xr[j] + hr[j]);  \
            }                                                                               \
        } else if (cell == PYNN_RNN_LSTM) {                                                 \
            const T *xr = xproj + r * 4 * H, *bb = b_rec;                                   \
            const T *cp = t ? c + (r - 1) * H : c0 + b * H;                                 \
            T *g = gates + r * 4 * H, *cr = c + r * H;                                      \
            if (bb) {                   /* z = h_{t-1} @ w_rec + (xproj_t + bias) */        \
                _Pragma("omp simd")                                                         \
                for (pynn_idx j = j0; j < j1; j++)                                          \
                    PYNN_RNN_LSTM_FWD(T, SUF, xr[j] + bb[j], xr[H + j] + bb[H + j],         \
                                      xr[2 * H + j] + bb[2 * H + j],                        \
                                      xr[3 * H + j] + bb[3 * H + j]);                       \
            } else {                                                                        \
                _Pragma("omp simd")                                                         \
                for (pynn_idx j = j0; j < j1; j++)                                          \
                    PYNN_RNN_LSTM_FWD(T, SUF, xr[j], xr[H + j], xr[2 * H + j],              \
                                      xr[3 * H + j]);                                       \
            }                                                                               \
        } else {                                                                            \
            const T *xr = xproj + r * 3 * H, *zr = zs + b * 3 * H;                          \
            const T *hp = t ? h + (r - 1) * H : h0 + b * H;                                 \
            T *g = gates + r * 4 * H;                                                       \
            _Pragma("omp simd")                                                             \
            for (pynn_idx j = j0; j < j1; j++) {                                            \
                T z = pynn_sigmoid_##SUF(xr[j] + (zr[j] + b_rec[j]));                       \
                T rr = pynn_sigmoid_##SUF(xr[H + j] + (zr[H + j] + b_rec[H + j]));          \
                T rh = zr[2 * H + j] + b_rec[2 * H + j];                                    \
                T n = pynn_tanh_##SUF(xr[2 * H + j] + rr * rh);                             \
                hr[j] = z * hp[j] + ((T)1 - z) * n;                                         \
                g[j] = z, g[H + j] = rr, g[2 * H + j] = n, g[3 * H + j] = rh;               \
            }                                                                               \
        }                                                                                   \
    }                                                                                       \
}                                                                                           \
                                                                                            \
ATTR static void pynn_rnn_bwd_rows_##SUF##_##ISA(                                           \
        int cell, T *dxproj, T *drp, T *carry, T *dcn, const T *h0, const T *c0,            \
        const T *h, const T *c, const T *gates, const T *dh, const uint8_t *mask,           \
        pynn_idx b0, pynn_idx b1, pynn_idx TN, pynn_idx H, pynn_idx t, pynn_idx j0,         \
        pynn_idx j1) {                                                                      \
    /* dxproj_t (and drp_t, dcn, carry) for batch rows b0..b1-1, units j0..j1-1; carry     \
     * holds dh from step t+1.                                                              \
     * With a mask the step's GEMM accumulates onto carry (beta 1): a skipped step leaves   \
     * dh_t + carry there (and dxproj_t = 0, dcn as it is), a computed step of a cell      \
     * whose carry is all GEMM (tanh, relu, LSTM) leaves 0 */                               \
    const int G = cell == PYNN_RNN_LSTM ? 4 : cell == PYNN_RNN_GRU ? 3 : 1;                 \
    for (pynn_idx b = b0; b < b1; b++) {                                                    \
        pynn_idx r = b * TN + t;                                                            \
        const T *hr = h + r * H, *dhr = dh + r * H;                                         \
        T *cr = carry + b * H;                                                              \
        if (mask && !mask[r]) {                                                             \
            T *dx = dxproj + r * G * H;                                                     \
            for (pynn_idx q = 0; q < G; q++)                                                \
                for (pynn_idx j = j0; j < j1; j++) dx[q * H + j] = 0;                       \
            if (cell == PYNN_RNN_GRU)                                                       \
                for (pynn_idx q = 0; q < 3; q++)                                            \
                    for (pynn_idx j = j0; j < j1; j++) drp[r * 3 * H + q * H + j] = 0;      \
            for (pynn_idx j = j0; j < j1; j++) cr[j] += dhr[j];                             \
            continue;                                                                       \
        }                                                                                   \
        if (cell == PYNN_RNN_TANH || cell == PYNN_RNN_RELU) {                               \
            T *dx = dxproj + r * H;                                                         \
            if (cell == PYNN_RNN_TANH) {                                                    \
                _Pragma("omp simd")                                                         \
                for (pynn_idx j = j0; j < j1; j++)                                          \
                    dx[j] = (dhr[j] + cr[j]) * ((T)1 - hr[j] * hr[j]);                      \
            } else {                                                                        \
                _Pragma("omp simd")                                                         \
                for (pynn_idx j = j0; j < j1; j++)                                          \
                    dx[j] = hr[j] > 0 ? dhr[j] + cr[j] : (T)0;                              \
            }                                                                               \
            if (mask)                                                                       \
                for (pynn_idx j = j0; j < j1; j++) cr[j] = 0;                               \
        } else if (cell == PYNN_RNN_LSTM) {                                                 \
            const T *g = gates + r * 4 * H, *cc = c + r * H;                                \
            const T *cp = t ? c + (r - 1) * H : c0 + b * H;                                 \
            T *dx = dxproj + r * 4 * H, *dcr = dcn + b * H;                                 \
            _Pragma("omp simd")                                                             \
            for (pynn_idx j = j0; j < j1; j++) PYNN_RNN_LSTM_BWD(T, SUF);                   \
            if (mask)                                                                       \
                for (pynn_idx j = j0; j < j1; j++) cr[j] = 0;                               \
        } else {                                                                            \
            const T *g = gates + r * 4 * H;                                                 \
            const T *hp = t ? h + (r - 1) * H : h0 + b * H;                                 \
            T *dx = dxproj + r * 3 * H, *dr = drp + r * 3 * H;                              \
            _Pragma("omp simd")                                                             \
            for (pynn_idx j = j0; j < j1; j++) {                                            \
                T z = g[j], rr = g[H + j], n = g[2 * H + j], rh = g[3 * H + j];             \
                T d = dhr[j] + cr[j];                                                       \
                T dn = d * ((T)1 - z) * ((T)1 - n * n);                                     \
                T dz = d * (hp[j] - n) * z * ((T)1 - z);                                    \
                T dq = dn * rh * rr * ((T)1 - rr);                                          \
                dx[j] = dz, dx[H + j] = dq, dx[2 * H + j] = dn;                             \
                dr[j] = dz, dr[H + j] = dq, dr[2 * H + j] = dn * rr;                        \
                cr[j] = d * z;                                                              \
            }                                                                               \
        }                                                                                   \
    }                                                                                       \
}

typedef void (*pynn_rnn_fwd_f32_fn)(int, float *, float *, float *, const float *,
                                    const float *, const float *, const float *,
                                    const float *, const uint8_t *, pynn_idx, pynn_idx,
                                    pynn_idx, pynn_idx, pynn_idx, pynn_idx, pynn_idx);
typedef void (*pynn_rnn_fwd_f64_fn)(int, double *, double *, double *, const double *,
                                    const double *, const double *, const double *,
                                    const double *, const uint8_t *, pynn_idx, pynn_idx,
                                    pynn_idx, pynn_idx, pynn_idx, pynn_idx, pynn_idx);
typedef void (*pynn_rnn_bwd_f32_fn)(int, float *, float *, float *, float *, const float *,
                                    const float *, const float *, const float *,
                                    const float *, const float *, const uint8_t *, pynn_idx,
                                    pynn_idx, pynn_idx, pynn_idx, pynn_idx, pynn_idx, pynn_idx);
typedef void (*pynn_rnn_bwd_f64_fn)(int, double *, double *, double *, double *,
                                    const double *, const double *, const double *,
                                    const double *, const double *, const double *,
                                    const uint8_t *, pynn_idx, pynn_idx, pynn_idx, pynn_idx,
                                    pynn_idx, pynn_idx, pynn_idx);

#if PYNN_RNN_TARGETS
#define PYNN_RNN_ALL_ROWS(T, SUF)                                                           \
    PYNN_RNN_ROWS(T, SUF, generic, )                                                        \
    PYNN_RNN_ROWS(T, SUF, avx2, PYNN_RNN_AVX2)                                              \
    PYNN_RNN_ROWS(T, SUF, avx512, PYNN_RNN_AVX512)
#define PYNN_RNN_PICK(NAME, SUF)                                                            \
    (ctx.isa >= PYNN_ISA_AVX512 ? NAME##_##SUF##_avx512                                     \
     : ctx.isa >= PYNN_ISA_AVX2 ? NAME##_##SUF##_avx2 : NAME##_##SUF##_generic)
#else
#define PYNN_RNN_ALL_ROWS(T, SUF) PYNN_RNN_ROWS(T, SUF, generic, )
#define PYNN_RNN_PICK(NAME, SUF) NAME##_##SUF##_generic
#endif

/* The per-step GEMMs run on the micro-kernels (gemm_ukr.h) directly. The recurrent weights
 * are packed ONCE per call into NR-wide slivers contiguous in k (B-panel layout), each
 * thread packing the columns it computes (they stay in its L2 across steps); the step's A
 * (h_{t-1} forward, dz_t backward) is packed into MR-row slivers: split by batch rows, each
 * thread packs its own rows; split by units, the slivers of all B rows are shared by the
 * team, each thread packing its own k columns right after its fused pass (double-buffered:
 * step t reads one buffer while threads fill the other for the next step). Each element is
 * one FMA chain over k in order, split into blocks of at most PYNN_RNN_KC (as pynn_gemm's
 * small path splits K past 2048: the same bits as the former pynn_gemm calls), so neither
 * the thread count nor the sliver boundaries change the bits. */
#define PYNN_RNN_KC 2048

static int pynn_rnn_gates(int cell) {
    return cell == PYNN_RNN_LSTM ? 4 : cell == PYNN_RNN_GRU ? 3 : 1;
}

#define PYNN_RNN_PACK(T, SUF)                                                               \
static const pynn_gemm_kernel_##SUF *pynn_rnn_kernel_##SUF(pynn_ctx ctx) {                  \
    return ctx.isa >= PYNN_ISA_AVX512 ? &pynn_gemm_avx512_##SUF                             \
         : ctx.isa >= PYNN_ISA_AVX2 ? &pynn_gemm_avx2_##SUF : &pynn_gemm_generic_##SUF;     \
}                                                                                           \
                                                                                            \
static void pynn_rnn_pack_a_##SUF(const pynn_gemm_kernel_##SUF *kr, T *ap, const T *src,    \
                                  pynn_idx rs, pynn_idx M, pynn_idx K, pynn_idx k0,         \
                                  pynn_idx k1) {                                            \
    /* ap (ceil(M/mr) slivers of (K, mr)) columns k0..k1-1 = src (M, K; row stride rs),    \
     * written in order, mr values per p: each line of a sliver is filled at once (a sliver \
     * of dz_t, K = 4H, is larger than L1; row by row it took twice as long); in registers \
     * where the kernel table has it (gemm_ukr.h: the same values, zero rows past M) */     \
    const int mr = kr->mr;                                                                  \
    for (pynn_idx i0 = 0; i0 < M; i0 += mr) {                                               \
        const pynn_idx m = PYNN_MIN(mr, M - i0);                                            \
        const T *si = src + i0 * rs;                                                        \
        T *di = ap + i0 * K;                                                                \
        if (kr->packar) {                                                                   \
            kr->packar(di + k0 * mr, si + k0, rs, m, k1 - k0);                              \
            continue;                                                                       \
        }                                                                                   \
        for (pynn_idx p = k0; p < k1; p++)                                                  \
            for (pynn_idx i = 0; i < m; i++) di[p * mr + i] = si[i * rs + p];               \
    }                                                                                       \
}                                                                                           \
                                                                                            \
static void pynn_rnn_pack_b_##SUF(T *bp, const T *src, pynn_idx rsk, pynn_idx csn,          \
                                  pynn_idx K, pynn_idx n, int nr) {                         \
    /* bp (K, nr) = src (K, n; strides rsk, csn), columns n..nr-1 zero: one sliver */       \
    if (rsk == 1) { /* src^T read in place (w_rec rows for w_rec^T): contiguous reads, in  \
                     * blocks of 64 p so that the written lines stay in L1 */              \
        for (pynn_idx p0 = 0; p0 < K; p0 += 64) {                                           \
            const pynn_idx p1 = PYNN_MIN(K, p0 + 64);                                       \
            for (pynn_idx j = 0; j < nr; j++)                                               \
                for (pynn_idx p = p0; p < p1; p++)                                          \
                    bp[p * nr + j] = j < n ? src[j * csn + p] : (T)0;                       \
        }                                                                                   \
    } else if (csn == 1) {      /* rows of w_rec: contiguous copies, zero tail */           \
        for (pynn_idx p = 0; p < K; p++) {                                                  \
            const T *sp = src + p * rsk;                                                    \
            T *dp = bp + p * nr;                                                            \
            for (pynn_idx j = 0; j < n; j++) dp[j] = sp[j];                                 \
            for (pynn_idx j = n; j < nr; j++) dp[j] = 0;                                    \
        }                                                                                   \
    } else {                                                                                \
        for (pynn_idx p = 0; p < K; p++)                                                    \
            for (pynn_idx j = 0; j < nr; j++)                                               \
                bp[p * nr + j] = j < n ? src[p * rsk + j * csn] : (T)0;                     \
    }                                                                                       \
}                                                                                           \
                                                                                            \
static void pynn_rnn_tile_##SUF(const pynn_gemm_kernel_##SUF *kr, T *C, pynn_idx rsc,       \
                                const T *ap, const T *bp, pynn_idx M, pynn_idx n,           \
                                pynn_idx K, T beta) {                                       \
    /* C (M, n <= nr) = A (packed slivers, M x K) @ B (one packed sliver, K x n) + beta C */ \
    const int mr = kr->mr, nr = kr->nr;                                                     \
    const pynn_idx nkb = (K + PYNN_RNN_KC - 1) / PYNN_RNN_KC, kc = (K + nkb - 1) / nkb;     \
    for (pynn_idx ir = 0; ir < M; ir += mr)                                                 \
        for (pynn_idx pc = 0; pc < K; pc += kc)                                             \
            kr->ukr(PYNN_MIN(kc, K - pc), ap + ir * K + pc * mr, 1, mr, bp + pc * nr, nr,   \
                    C + ir * rsc, rsc, 1, (T)1, pc ? (T)1 : beta, PYNN_MIN(mr, M - ir), n);  \
}                                                                                            \
                                                                                            \
static void pynn_rnn_part_##SUF(int bsplit, int tid, int nth, pynn_idx B, pynn_idx H,       \
                                pynn_idx GH, int nr, T *wpk, size_t lwt, T *apk, size_t la, \
                                pynn_idx *b0, pynn_idx *b1, pynn_idx *j0, pynn_idx *j1,     \
                                T **wp, T **apb) {                                          \
    /* thread tid's share (header comment): batch rows b0..b1-1 and units j0..j1-1, its     \
     * packed w_rec slivers wp (G*H = GH columns a unit) and its A buffers apb[0..1]: batch  \
     * split, its own (one buffer of la, its rows); units split, the team's two */          \
    const pynn_idx nblk = (H + 15) / 16;                                                    \
    *b0 = 0, *b1 = B, *j0 = 0, *j1 = H;                                                     \
    if (bsplit) {                                                                           \
        *b0 = B * tid / nth, *b1 = B * (tid + 1) / nth;                                     \
        *wp = wpk + (size_t)tid * lwt;                                                      \
        apb[0] = apb[1] = apk + (size_t)tid * la;                                           \
    } else {                                                                                \
        *j0 = PYNN_MIN(H, 16 * (nblk * tid / nth));                                         \
        *j1 = PYNN_MIN(H, 16 * (nblk * (tid + 1) / nth));                                   \
        *wp = wpk + (size_t)GH * (size_t)(*j0 + (pynn_idx)tid * nr);                        \
        apb[0] = apk, apb[1] = apk + la;                                                    \
    }                                                                                       \
}

PYNN_RNN_PACK(float, f32)
PYNN_RNN_PACK(double, f64)

/* the split by batch rows (header comment) from this many rows per thread, and while each
 * thread's copy of w_rec takes at most this many bytes: every step streams all of it through
 * each core (the split by units, a 1/nt share). Measured 2 threads, LSTM B = 32, against the
 * units split, forward / backward: H = 512 (4 MB) 0.80 / 0.94 of the time, H = 384 and 640
 * within 3-6% either way, H = 768 (9.4 MB) 1.21 / 1.13, H = 1024 (16 MB) 1.44 / 1.13 */
#define PYNN_RNN_BROWS 8
#define PYNN_RNN_BSPLIT_BYTES (4.0 * 1024.0 * 1024.0)
static int pynn_rnn_bsplit(pynn_idx B, int nt, double wbytes) {
    return nt > 1 && B >= (pynn_idx)nt * PYNN_RNN_BROWS && wbytes <= PYNN_RNN_BSPLIT_BYTES;
}

#define PYNN_RNN_FAMILY(T, SUF)                                                             \
PYNN_RNN_ALL_ROWS(T, SUF)                                                                   \
                                                                                            \
int pynn_rnn_forward_##SUF(T *h, T *c, T *gates, const T *xproj, const T *h0, const T *c0,  \
                           const T *w_rec, const T *b_rec, const uint8_t *mask, pynn_idx B, \
                           pynn_idx TN, pynn_idx H, int cell, pynn_ctx ctx) {               \
    /* h (B,T,H) = cell over t of xproj_t (B,G*H) + h_{t-1} (B,H) @ w_rec (H,G*H), written */ \
    const pynn_idx G = pynn_rnn_gates(cell), GH = G * H;                                    \
    const pynn_gemm_kernel_##SUF *kr = pynn_rnn_kernel_##SUF(ctx);                          \
    const int mr = kr->mr, nr = kr->nr;                                                     \
    pynn_rnn_fwd_##SUF##_fn rows = PYNN_RNN_PICK(pynn_rnn_fwd_rows, SUF);                   \
    const pynn_idx nblk = (H + 15) / 16;                                                    \
    int nt = pynn_threads_for(ctx, (double)B * (double)GH * (double)H);                     \
    const int bsplit = pynn_rnn_bsplit(B, nt, (double)GH * (double)H * sizeof(T));        \
    if (!bsplit && nt > nblk) nt = (int)nblk;                                               \
    /* scratch: GRU's z (B,G*H); packed A (h_{t-1}): two shared (units split) or one per    \
     * thread (batch split), each room for B rows; packed w_rec: units split, thread tid's  \
     * slivers from G*H*(j0 + tid*nr) (at most G*H*(j1 - j0 + nr) each); batch split, all  \
     * of it (G*H*nsw*nr) per thread */                                                     \
    const pynn_idx nsw = (H + nr - 1) / nr;                                                 \
    const size_t lz = cell == PYNN_RNN_GRU ? ((size_t)(B * GH) + 15) & ~(size_t)15 : 0;     \
    const size_t la = ((size_t)(((B + mr - 1) / mr) * mr * H) + 15) & ~(size_t)15;          \
    const size_t na = bsplit ? (size_t)nt : 2;                                              \
    const size_t lwt = ((size_t)GH * (size_t)(nsw * nr) + 15) & ~(size_t)15;                \
    const size_t lw = bsplit ? (size_t)nt * lwt                                             \
                             : (size_t)GH * (size_t)(16 * nblk + (pynn_idx)nt * nr);        \
    void *buf = NULL;                                                                       \
    if (posix_memalign(&buf, 64, (lz + na * la + lw) * sizeof(T)) != 0) return PYNN_ENOMEM; \
    T *zs = (T *)buf, *apk = zs + lz, *wpk = apk + na * la;                                 \
    memset(apk, 0, na * la * sizeof(T));             /* padding rows of the A slivers */    \
    _Pragma("omp parallel num_threads(nt) if(nt > 1)")                                      \
    {                                                                                       \
        PYNN_FTZ_BEGIN;                                                                     \
        const int tid = PYNN_TID, nth = PYNN_NTH;                                           \
        pynn_idx b0, b1, j0, j1;                                                            \
        T *wp, *apb[2];                                                                     \
        pynn_rnn_part_##SUF(bsplit, tid, nth, B, H, GH, nr, wpk, lwt, apk, la, &b0, &b1,    \
                            &j0, &j1, &wp, apb);                                            \
        const pynn_idx M = b1 - b0;                                                         \
        const pynn_idx nsl = (j1 - j0 + nr - 1) / nr;    /* slivers per gate */             \
        for (pynn_idx q = 0; q < G; q++)                                                    \
            for (pynn_idx s = 0; s < nsl; s++)                                              \
                pynn_rnn_pack_b_##SUF(wp + (q * nsl + s) * H * nr, w_rec + q * H + j0 + s * nr, \
                                      GH, 1, H, PYNN_MIN(nr, j1 - j0 - s * nr), nr);        \
        pynn_rnn_pack_a_##SUF(kr, apb[0], h0 + b0 * H, H, M, H, j0, j1);                    \
        if (!bsplit) {                                                                      \
            _Pragma("omp barrier")                                                          \
        }                                                                                   \
        for (pynn_idx t = 0; t < TN; t++) {                                                 \
            const T *ap = apb[t & 1];                                                       \
            T *z = cell == PYNN_RNN_LSTM ? gates + t * GH : cell == PYNN_RNN_GRU ? zs       \
                 : h + t * H;                                                               \
            const pynn_idx rsz = cell == PYNN_RNN_GRU ? GH                                  \
                               : TN * (cell == PYNN_RNN_LSTM ? GH : H);                     \
            for (pynn_idx q = 0; q < G; q++)                                                \
                for (pynn_idx s = 0; s < nsl; s++)                                          \
                    pynn_rnn_tile_##SUF(kr, z + b0 * rsz + q * H + j0 + s * nr, rsz, ap,    \
                                        wp + (q * nsl + s) * H * nr, M,                     \
                                        PYNN_MIN(nr, j1 - j0 - s * nr), H, (T)0);           \
            rows(cell, h, c, gates, zs, xproj, h0, c0, b_rec, mask, b0, b1, TN, H, t, j0,   \
                 j1);                                                                       \
            if (t + 1 < TN)                                                                 \
                pynn_rnn_pack_a_##SUF(kr, apb[(t + 1) & 1], h + (b0 * TN + t) * H, TN * H, M, \
                                      H, j0, j1);                                          \
            if (!bsplit) {                                                                  \
                _Pragma("omp barrier")                                                      \
            }                                                                               \
        }                                                                                   \
        PYNN_FTZ_END;                                                                       \
    }                                                                                       \
    free(buf);                                                                              \
    return PYNN_OK;                                                                         \
}                                                                                           \
                                                                                            \
int pynn_rnn_backward_##SUF(T *dxproj, T *dh0, T *dc0, T *dw_rec, T *db_rec, const T *h0,   \
                            const T *c0, const T *w_rec, const T *h, const T *c,            \
                            const T *gates, const T *dh, const T *dh_last,                  \
                            const T *dc_last, const uint8_t *mask, pynn_idx B, pynn_idx TN, \
                            pynn_idx H, int cell, pynn_ctx ctx) {                           \
    /* dxproj (B,T,G*H), dh0 (B,H), dc0 (B,H): BPTT from dh (B,T,H); dw_rec (H,G*H) =       \
     * hprev^T @ drp over all B*T rows; db_rec = sum of drp (GRU, 3H; LSTM, 4H); written */ \
    const pynn_idx G = pynn_rnn_gates(cell), GH = G * H;                                    \
    const pynn_gemm_kernel_##SUF *kr = pynn_rnn_kernel_##SUF(ctx);                          \
    const int mr = kr->mr, nr = kr->nr;                                                     \
    const pynn_idx nblk = (H + 15) / 16;                                                    \
    int nt = pynn_threads_for(ctx, (double)B * (double)GH * (double)H);                     \
    const int bsplit = pynn_rnn_bsplit(B, nt, (double)GH * (double)H * sizeof(T));        \
    if (!bsplit && nt > nblk) nt = (int)nblk;                                               \
    /* db_rec (the column sums of drp) comes out of the dw_rec GEMM as one more row: hprev   \
     * gets a column of ones, [hprev 1]^T @ drp = [dw_rec; db_rec] (H+1, G*H), in scratch;  \
     * H = 256 is no multiple of the micro-kernel's rows, so the extra row costs nothing,   \
     * where a separate sum would sweep drp (B*T, G*H) once more */                          \
    const int ones = db_rec != NULL && cell != PYNN_RNN_TANH && cell != PYNN_RNN_RELU;      \
    const pynn_idx H1 = H + ones;                                                           \
    /* scratch: packed A (dz_t, B x G*H), two shared (units split) or one per thread (batch \
     * split); packed w_rec^T, units split: thread tid's slivers from G*H*(j0 + tid*nr),    \
     * batch split: all of it per thread; [h_{t-1} 1] (B,T,H1) for dw_rec (and db_rec);    \
     * [dw_rec; db_rec] */                                                                  \
    const pynn_idx nsw = (H + nr - 1) / nr;                                                 \
    const size_t la = ((size_t)(((B + mr - 1) / mr) * mr * GH) + 15) & ~(size_t)15;         \
    const size_t na = bsplit ? (size_t)nt : 2;                                              \
    const size_t lwt = ((size_t)GH * (size_t)(nsw * nr) + 15) & ~(size_t)15;                \
    const size_t lw = bsplit ? (size_t)nt * lwt                                             \
        : ((size_t)GH * (size_t)(16 * nblk + (pynn_idx)nt * nr) + 15) & ~(size_t)15;        \
    const size_t lh = ((size_t)(B * TN * H1) + 15) & ~(size_t)15;                           \
    const size_t ld = ones ? (size_t)(H1 * GH) : 0;                                         \
    void *buf = NULL;                                                                       \
    if (posix_memalign(&buf, 64, (na * la + lw + lh + ld) * sizeof(T)) != 0)                \
        return PYNN_ENOMEM;                                                                 \
    T *apk = (T *)buf, *wpk = apk + na * la, *hprev = wpk + lw;                             \
    T *dwd = ones ? hprev + lh : dw_rec;                                                    \
    T *drp = cell == PYNN_RNN_GRU ? (T *)malloc((size_t)(B * TN * GH) * sizeof(T)) : dxproj; \
    if (!drp) {                                                                             \
        free(buf);                                                                          \
        return PYNN_ENOMEM;                                                                 \
    }                                                                                       \
    memset(apk, 0, na * la * sizeof(T));             /* padding rows of the A slivers */    \
    T *carry = dh0;                        /* dh flowing back into step t from t+1 */       \
    for (pynn_idx e = 0; e < B * H; e++) carry[e] = dh_last ? dh_last[e] : (T)0;            \
    if (cell == PYNN_RNN_LSTM)                                                              \
        for (pynn_idx e = 0; e < B * H; e++) dc0[e] = dc_last ? dc_last[e] : (T)0;          \
    pynn_rnn_bwd_##SUF##_fn rows = PYNN_RNN_PICK(pynn_rnn_bwd_rows, SUF);                   \
    /* GRU: carry holds d * z; with a mask, the skipped steps' dh (see the rows) */       \
    const T beta = cell == PYNN_RNN_GRU || mask ? (T)1 : (T)0;                              \
    _Pragma("omp parallel num_threads(nt) if(nt > 1)")                                      \
    {                                                                                       \
        PYNN_FTZ_BEGIN;                                                                     \
        const int tid = PYNN_TID, nth = PYNN_NTH;                                           \
        pynn_idx b0, b1, j0, j1;                                                            \
        T *wp, *apb[2];                                                                     \
        pynn_rnn_part_##SUF(bsplit, tid, nth, B, H, GH, nr, wpk, lwt, apk, la, &b0, &b1,    \
                            &j0, &j1, &wp, apb);                                            \
        const pynn_idx M = b1 - b0;                                                         \
        const pynn_idx nsl = (j1 - j0 + nr - 1) / nr;                                       \
        /* [h_{t-1} 1] for the dw_rec GEMM after the region: batch rows split by thread */  \
        for (pynn_idx b = B * tid / nth; b < B * (tid + 1) / nth; b++)                      \
            for (pynn_idx t = 0; t < TN; t++) {                                             \
                T *hp = hprev + (b * TN + t) * H1;                                          \
                memcpy(hp, t ? h + (b * TN + t - 1) * H : h0 + b * H, (size_t)H * sizeof(T)); \
                if (ones) hp[H] = 1;                                                        \
            }                                                                               \
        for (pynn_idx s = 0; s < nsl; s++)     /* columns j of w_rec^T = rows j of w_rec */ \
            pynn_rnn_pack_b_##SUF(wp + s * GH * nr, w_rec + (j0 + s * nr) * GH, 1, GH, GH,  \
                                  PYNN_MIN(nr, j1 - j0 - s * nr), nr);                      \
        for (pynn_idx t = TN - 1; t >= 0; t--) {                                            \
            T *ap = apb[t & 1];                                                             \
            rows(cell, dxproj, drp, carry, dc0, h0, c0, h, c, gates, dh, mask, b0, b1, TN,  \
                 H, t, j0, j1);                                                             \
            if (bsplit) {                                                                   \
                pynn_rnn_pack_a_##SUF(kr, ap, drp + (b0 * TN + t) * GH, TN * GH, M, GH, 0,  \
                                      GH);                                                  \
            } else {                                                                        \
                for (pynn_idx q = 0; q < G; q++)                                            \
                    pynn_rnn_pack_a_##SUF(kr, ap, drp + t * GH, TN * GH, B, GH, q * H + j0,  \
                                          q * H + j1);                                      \
                _Pragma("omp barrier")                                                      \
            }                                                                               \
            for (pynn_idx s = 0; s < nsl; s++)                                              \
                pynn_rnn_tile_##SUF(kr, carry + b0 * H + j0 + s * nr, H, ap,                \
                                    wp + s * GH * nr, M, PYNN_MIN(nr, j1 - j0 - s * nr),    \
                                    GH, beta);                                              \
        }                                                                                   \
        PYNN_FTZ_END;                                                                       \
    }                                                                                       \
    int fail = pynn_gemm_##SUF(dwd, GH, 1, hprev, 1, H1, drp, GH, 1, H1, GH, B * TN,        \
                               (T)1, (T)0, ctx);                                            \
    if (ones && !fail) {                                                                    \
        memcpy(dw_rec, dwd, (size_t)(H * GH) * sizeof(T));                                  \
        memcpy(db_rec, dwd + H * GH, (size_t)GH * sizeof(T));                               \
    }                                                                                       \
    if (cell == PYNN_RNN_GRU) free(drp);                                                    \
    free(buf);                                                                              \
    return fail ? PYNN_ENOMEM : PYNN_OK;                                                    \
}

PYNN_RNN_FAMILY(float, f32)
PYNN_RNN_FAMILY(double, f64)
