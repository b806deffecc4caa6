/* rnn.c - SimpleRNN, LSTM and GRU over a whole sequence, and backpropagation through time.
 * Contract in rnn.h; the math, line by line, in pynn/reference/rnn.py.
 *
 * The caller computes the input projection xproj = x @ kernel + bias for all steps as one
 * GEMM. Here, per step: z = h_{t-1} @ w_rec (a GEMM of B x G*H x H) and one fused pass of the
 * gate nonlinearities and the state update. Backward, per step: one fused pass of the gate
 * derivatives and dh_{t-1} = dz_t @ w_rec^T; dw_rec = hprev^T @ dz over all steps is one
 * big GEMM at the end.
 *
 * Parallel split: one parallel region for the whole sequence; each thread owns a block of
 * hidden units (multiples of 16) and, for those, the columns of every gate. Per step it runs
 * its column slice of the recurrent GEMM single-threaded (pynn_gemm with one thread; the
 * slices of w_rec and of w_rec^T stay in its cache across steps), then the fused pass for its
 * units, then one barrier (the next step reads all of h_t). Backward needs dz_t of all
 * columns before the GEMM, so the barrier sits between the fused pass and the GEMM. Every
 * output element is computed by one thread with an order fixed by the shapes (the GEMM
 * contract), so the bits do not depend on the thread count.
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
#include "rnn.h"

#if defined(__GNUC__) && (defined(__x86_64__) || defined(__i386__))
#define PYNN_RNN_AVX2 __attribute__((target("avx2,fma")))
#define PYNN_RNN_AVX512 __attribute__((target("avx512f,avx512dq,avx512bw,avx512vl,fma")))
#define PYNN_RNN_TARGETS 1
#else
#define PYNN_RNN_TARGETS 0
#endif

/* The fused passes over units [j0, j1) of every batch row at step t (TN = sequence length). */
#define PYNN_RNN_ROWS(T, SUF, ISA, ATTR)                                                    \
ATTR static void pynn_rnn_fwd_rows_##SUF##_##ISA(                                           \
        int cell, T *h, T *c, T *gates, const T *zs, const T *xproj, const T *h0,            \
        const T *c0, const T *b_rec, pynn_idx B, pynn_idx TN, pynn_idx H, pynn_idx t,        \
        pynn_idx j0, pynn_idx j1) {                                                          \
    /* h_t (and c_t, gates_t) = cell(xproj_t + z) for units j0..j1-1; z holds h_{t-1} @ w */ \
    for (pynn_idx b = 0; b < B; b++) {                                                      \
        pynn_idx r = b * TN + t;                    /* row (b, t) of the (B*T, .) arrays */ \
        T *hr = h + r * H;                                                                  \
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
            const T *xr = xproj + r * 4 * H;                                                \
            const T *cp = t ? c + (r - 1) * H : c0 + b * H;                                 \
            T *g = gates + r * 4 * H, *cr = c + r * H;                                      \
            _Pragma("omp simd")                                                             \
            for (pynn_idx j = j0; j < j1; j++) {                                            \
                T i = pynn_sigmoid_##SUF(g[j] + xr[j]);                                     \
                T f = pynn_sigmoid_##SUF(g[H + j] + xr[H + j]);                             \
                T gg = pynn_tanh_##SUF(g[2 * H + j] + xr[2 * H + j]);                       \
                T o = pynn_sigmoid_##SUF(g[3 * H + j] + xr[3 * H + j]);                     \
                T cn = f * cp[j] + i * gg;                                                  \
                cr[j] = cn;                                                                 \
                hr[j] = o * pynn_tanh_##SUF(cn);                                            \
                g[j] = i, g[H + j] = f, g[2 * H + j] = gg, g[3 * H + j] = o;                \
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
        const T *h, const T *c, const T *gates, const T *dh, pynn_idx B, pynn_idx TN,       \
        pynn_idx H, pynn_idx t, pynn_idx j0, pynn_idx j1) {                                 \
    /* dxproj_t (and drp_t, dcn, carry) for units j0..j1-1; carry holds dh from step t+1 */ \
    for (pynn_idx b = 0; b < B; b++) {                                                      \
        pynn_idx r = b * TN + t;                                                            \
        const T *hr = h + r * H, *dhr = dh + r * H;                                         \
        T *cr = carry + b * H;                                                              \
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
        } else if (cell == PYNN_RNN_LSTM) {                                                 \
            const T *g = gates + r * 4 * H, *cc = c + r * H;                                \
            const T *cp = t ? c + (r - 1) * H : c0 + b * H;                                 \
            T *dx = dxproj + r * 4 * H, *dcr = dcn + b * H;                                 \
            _Pragma("omp simd")                                                             \
            for (pynn_idx j = j0; j < j1; j++) {                                            \
                T i = g[j], f = g[H + j], gg = g[2 * H + j], o = g[3 * H + j];              \
                T tc = pynn_tanh_##SUF(cc[j]);                                              \
                T d = dhr[j] + cr[j];                                                       \
                T dc = dcr[j] + d * o * ((T)1 - tc * tc);                                   \
                dx[j] = dc * gg * i * ((T)1 - i);                                           \
                dx[H + j] = dc * cp[j] * f * ((T)1 - f);                                    \
                dx[2 * H + j] = dc * i * ((T)1 - gg * gg);                                  \
                dx[3 * H + j] = d * tc * o * ((T)1 - o);                                    \
                dcr[j] = dc * f;                                                            \
            }                                                                               \
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
                                    const float *, pynn_idx, pynn_idx, pynn_idx, pynn_idx,
                                    pynn_idx, pynn_idx);
typedef void (*pynn_rnn_fwd_f64_fn)(int, double *, double *, double *, const double *,
                                    const double *, const double *, const double *,
                                    const double *, pynn_idx, pynn_idx, pynn_idx, pynn_idx,
                                    pynn_idx, pynn_idx);
typedef void (*pynn_rnn_bwd_f32_fn)(int, float *, float *, float *, float *, const float *,
                                    const float *, const float *, const float *,
                                    const float *, const float *, pynn_idx, pynn_idx,
                                    pynn_idx, pynn_idx, pynn_idx, pynn_idx);
typedef void (*pynn_rnn_bwd_f64_fn)(int, double *, double *, double *, double *,
                                    const double *, const double *, const double *,
                                    const double *, const double *, const double *, pynn_idx,
                                    pynn_idx, pynn_idx, pynn_idx, pynn_idx, pynn_idx);

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

/* Column slices of the per-step GEMMs: at most PYNN_RNN_SLICE_BYTES of weights each (a
 * thread's slices stay in its L2 across steps), so every call takes pynn_gemm's small path
 * (B read in place, one FMA chain per element for K <= 2048) whatever the slice width; the
 * width then cannot change the bits, and the thread count only moves slice boundaries. */
#define PYNN_RNN_SLICE_BYTES (256 * 1024)
static pynn_idx pynn_rnn_slice(pynn_idx K, size_t size) {
    pynn_idx w = (pynn_idx)(PYNN_RNN_SLICE_BYTES / ((size_t)K * size)) / 16 * 16;
    return w < 16 ? 16 : w;
}

static int pynn_rnn_gates(int cell) {
    return cell == PYNN_RNN_LSTM ? 4 : cell == PYNN_RNN_GRU ? 3 : 1;
}

#define PYNN_RNN_FAMILY(T, SUF)                                                             \
PYNN_RNN_ALL_ROWS(T, SUF)                                                                   \
                                                                                            \
int pynn_rnn_forward_##SUF(T *h, T *c, T *gates, const T *xproj, const T *h0, const T *c0,  \
                           const T *w_rec, const T *b_rec, pynn_idx B, pynn_idx TN,         \
                           pynn_idx H, int cell, pynn_ctx ctx) {                            \
    /* h (B,T,H) = cell over t of xproj_t (B,G*H) + h_{t-1} (B,H) @ w_rec (H,G*H), written */ \
    const pynn_idx G = pynn_rnn_gates(cell), GH = G * H;                                    \
    T *zs = NULL;                   /* GRU: h_{t-1} @ w_rec, kept apart from b_rec and x */ \
    if (cell == PYNN_RNN_GRU && !(zs = (T *)malloc((size_t)(B * GH) * sizeof(T))))          \
        return PYNN_ENOMEM;                                                                 \
    pynn_rnn_fwd_##SUF##_fn rows = PYNN_RNN_PICK(pynn_rnn_fwd_rows, SUF);                   \
    const pynn_idx nblk = (H + 15) / 16;                                                    \
    int nt = pynn_threads_for(ctx, (double)B * (double)GH * (double)H);                     \
    if (nt > nblk) nt = (int)nblk;                                                          \
    const pynn_ctx one = {1, ctx.isa};                                                      \
    const pynn_idx sw = pynn_rnn_slice(H, sizeof(T));                                       \
    int fail = 0;                                                                           \
    _Pragma("omp parallel num_threads(nt) if(nt > 1) reduction(|:fail)")                    \
    {                                                                                       \
        PYNN_FTZ_BEGIN;                                                                     \
        const int tid = PYNN_TID, nth = PYNN_NTH;                                           \
        const pynn_idx j0 = PYNN_MIN(H, 16 * (nblk * tid / nth));                           \
        const pynn_idx j1 = PYNN_MIN(H, 16 * (nblk * (tid + 1) / nth));                     \
        for (pynn_idx t = 0; t < TN; t++) {                                                 \
            const T *hp = t ? h + (t - 1) * H : h0;                                         \
            const pynn_idx rsh = t ? TN * H : H;                                            \
            T *z = cell == PYNN_RNN_LSTM ? gates + t * GH : cell == PYNN_RNN_GRU ? zs       \
                 : h + t * H;                                                               \
            const pynn_idx rsz = cell == PYNN_RNN_GRU ? GH                                  \
                               : TN * (cell == PYNN_RNN_LSTM ? GH : H);                     \
            for (pynn_idx q = 0; q < G; q++)                                                \
                for (pynn_idx s = j0; s < j1; s += sw)                                      \
                    fail |= pynn_gemm_##SUF(z + q * H + s, rsz, 1, hp, rsh, 1,              \
                                            w_rec + q * H + s, GH, 1, B, PYNN_MIN(sw, j1 - s), \
                                            H, (T)1, (T)0, one);                            \
            rows(cell, h, c, gates, zs, xproj, h0, c0, b_rec, B, TN, H, t, j0, j1);         \
            _Pragma("omp barrier")                                                          \
        }                                                                                   \
        PYNN_FTZ_END;                                                                       \
    }                                                                                       \
    free(zs);                                                                               \
    return fail ? PYNN_ENOMEM : PYNN_OK;                                                    \
}                                                                                           \
                                                                                            \
int pynn_rnn_backward_##SUF(T *dxproj, T *dh0, T *dc0, T *dw_rec, T *db_rec, const T *h0,   \
                            const T *c0, const T *w_rec, const T *h, const T *c,            \
                            const T *gates, const T *dh, const T *dh_last,                  \
                            const T *dc_last, pynn_idx B, pynn_idx TN, pynn_idx H,          \
                            int cell, pynn_ctx ctx) {                                       \
    /* dxproj (B,T,G*H), dh0 (B,H), dc0 (B,H): BPTT from dh (B,T,H); dw_rec (H,G*H) =       \
     * hprev^T @ drp over all B*T rows; db_rec (3H) = sum of drp (GRU); all written */      \
    const pynn_idx G = pynn_rnn_gates(cell), GH = G * H;                                    \
    T *wt = (T *)malloc((size_t)(GH * H) * sizeof(T));          /* w_rec^T (G*H, H) */      \
    T *hprev = (T *)malloc((size_t)(B * TN * H) * sizeof(T));   /* h_{t-1} (B,T,H) */       \
    T *drp = cell == PYNN_RNN_GRU ? (T *)malloc((size_t)(B * TN * GH) * sizeof(T)) : dxproj; \
    if (!wt || !hprev || !drp) {                                                            \
        free(wt), free(hprev);                                                              \
        if (drp != dxproj) free(drp);                                                       \
        return PYNN_ENOMEM;                                                                 \
    }                                                                                       \
    for (pynn_idx k = 0; k < GH; k++)                                                       \
        for (pynn_idx j = 0; j < H; j++) wt[k * H + j] = w_rec[j * GH + k];                 \
    for (pynn_idx b = 0; b < B; b++) {                                                      \
        memcpy(hprev + b * TN * H, h0 + b * H, (size_t)H * sizeof(T));                      \
        memcpy(hprev + (b * TN + 1) * H, h + b * TN * H, (size_t)((TN - 1) * H) * sizeof(T)); \
    }                                                                                       \
    T *carry = dh0;                        /* dh flowing back into step t from t+1 */       \
    for (pynn_idx e = 0; e < B * H; e++) carry[e] = dh_last ? dh_last[e] : (T)0;            \
    if (cell == PYNN_RNN_LSTM)                                                              \
        for (pynn_idx e = 0; e < B * H; e++) dc0[e] = dc_last ? dc_last[e] : (T)0;          \
    pynn_rnn_bwd_##SUF##_fn rows = PYNN_RNN_PICK(pynn_rnn_bwd_rows, SUF);                   \
    const pynn_idx nblk = (H + 15) / 16;                                                    \
    int nt = pynn_threads_for(ctx, (double)B * (double)GH * (double)H);                     \
    if (nt > nblk) nt = (int)nblk;                                                          \
    const pynn_ctx one = {1, ctx.isa};                                                      \
    const T beta = cell == PYNN_RNN_GRU ? (T)1 : (T)0;   /* GRU: carry holds d * z */      \
    const pynn_idx sw = pynn_rnn_slice(GH, sizeof(T));                                      \
    int fail = 0;                                                                           \
    _Pragma("omp parallel num_threads(nt) if(nt > 1) reduction(|:fail)")                    \
    {                                                                                       \
        PYNN_FTZ_BEGIN;                                                                     \
        const int tid = PYNN_TID, nth = PYNN_NTH;                                           \
        const pynn_idx j0 = PYNN_MIN(H, 16 * (nblk * tid / nth));                           \
        const pynn_idx j1 = PYNN_MIN(H, 16 * (nblk * (tid + 1) / nth));                     \
        for (pynn_idx t = TN - 1; t >= 0; t--) {                                            \
            rows(cell, dxproj, drp, carry, dc0, h0, c0, h, c, gates, dh, B, TN, H, t, j0, j1); \
            _Pragma("omp barrier")                                                          \
            for (pynn_idx s = j0; s < j1; s += sw)                                          \
                fail |= pynn_gemm_##SUF(carry + s, H, 1, drp + t * GH, TN * GH, 1, wt + s,  \
                                        H, 1, B, PYNN_MIN(sw, j1 - s), GH, (T)1, beta, one); \
        }                                                                                   \
        PYNN_FTZ_END;                                                                       \
    }                                                                                       \
    fail |= pynn_gemm_##SUF(dw_rec, GH, 1, hprev, 1, H, drp, GH, 1, H, GH, B * TN,          \
                            (T)1, (T)0, ctx);                                               \
    if (cell == PYNN_RNN_GRU) {                                                             \
        int ntb = pynn_threads_for(ctx, (double)B * (double)TN * (double)GH);               \
        (void)ntb;                                                                          \
        _Pragma("omp parallel for num_threads(ntb) schedule(static) if(ntb > 1)")           \
        for (pynn_idx k = 0; k < GH; k++) {                                                 \
            T s = 0;                                                                        \
            for (pynn_idx e = 0; e < B * TN; e++) s += drp[e * GH + k];                     \
            db_rec[k] = s;                                                                  \
        }                                                                                   \
        free(drp);                                                                          \
    }                                                                                       \
    free(wt), free(hprev);                                                                  \
    return fail ? PYNN_ENOMEM : PYNN_OK;                                                    \
}

PYNN_RNN_FAMILY(float, f32)
PYNN_RNN_FAMILY(double, f64)
