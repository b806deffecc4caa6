/* attention.c - scaled dot-product attention (softmax(scale * q k^T + mask) v), forward and
 * backward, for q (B,H,T,D), k (B,H,S,D), v (B,H,S,DV) given by strides, so head-split views
 * of (B,T,H,D) projections need no copies.
 *
 *   forward:  P = softmax over s of scale * q k^T, restricted to allowed (t, s); out = P v
 *   backward: dP = dout v^T; dS = P * (dP - rowsum(P * dP));
 *             dq = scale dS k; dk = scale dS^T q; dv = P^T dout
 *
 * Allowed: mask[b,t,s] != 0 (when given) and s <= t when causal (Keras' lower-triangular
 * causal mask of shape (T,S)). Softmax is max-subtracted; a row with nothing allowed gives
 * P = 0 and out = 0 (not NaN). Causal work skips the upper triangle in row blocks of RB:
 * rows t0..t1-1 only touch columns < min(S, t1).
 *
 * Parallel split: threads take whole (b, h) pairs (schedule static); inside, the products run
 * through pynn_gemm on one thread, whose summation order depends on the shapes only, so every
 * output has one writer and the bits do not depend on the thread count. With one pair, the
 * GEMMs themselves get the threads. The backward keeps dS in per-thread scratch (T*S).
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include "activations.h" /* pynn_exp_f32/f64: exp written out, branch-free */
#include "attention.h"
#include "gemm.h"

#define PYNN_ATT_RB 32

/* Row kernels, compiled portable and with AVX2 / AVX-512 enabled by function target
 * attributes (pynn_exp_* is branch-free, so the loops vectorize), picked by ctx.isa.
 * Row reductions use 16 interleaved partial results combined in a fixed tree: the order
 * depends on the row length only. */
#if defined(__GNUC__) && (defined(__x86_64__) || defined(__i386__))
#define PYNN_ATT_TARGET_AVX2 __attribute__((target("avx2,fma")))
#define PYNN_ATT_TARGET_AVX512 __attribute__((target("avx512f,avx512dq,avx512bw,avx512vl,fma")))
#define PYNN_ATT_ISA(ctx) ((ctx).isa < 0 ? 0 : (ctx).isa > 2 ? 2 : (ctx).isa)
#else
#define PYNN_ATT_TARGET_AVX2
#define PYNN_ATT_TARGET_AVX512
#define PYNN_ATT_ISA(ctx) 0
#endif

#define PYNN_ATT_ROWS(T_, SUF, SFX, ATTR)                                                    \
/* rows t0..t1-1 of P (T,S), scores in, probabilities out: allowed = mask (row stride smt,   \
 * column stride sms, NULL = all) and s <= t when causal; nothing allowed gives zeros */     \
ATTR static void pynn_att_softmax_##SUF##_##SFX(T_ *P, pynn_idx S, pynn_idx t0, pynn_idx t1, \
                                                int causal, const uint8_t *mask,            \
                                                pynn_idx smt, pynn_idx sms) {               \
    for (pynn_idx t = t0; t < t1; t++) {                                                     \
        T_ *row = P + t * S;                                                                 \
        const uint8_t *mr = mask ? mask + t * smt : NULL;                                    \
        pynn_idx lim = causal ? PYNN_MIN(S, t + 1) : S, j;                                   \
        T_ acc[16];                                                                          \
        if (mr)                                                                              \
            for (j = 0; j < lim; j++) row[j] = mr[j * sms] ? row[j] : -(T_)INFINITY;         \
        for (int k = 0; k < 16; k++) acc[k] = -(T_)INFINITY;                                 \
        for (j = 0; j + 16 <= lim; j += 16)                                                  \
            for (int k = 0; k < 16; k++) acc[k] = row[j + k] > acc[k] ? row[j + k] : acc[k]; \
        for (int k = 0; j < lim; j++, k++) acc[k] = row[j] > acc[k] ? row[j] : acc[k];       \
        for (int w = 8; w >= 1; w /= 2)                                                      \
            for (int k = 0; k < w; k++) acc[k] = acc[k + w] > acc[k] ? acc[k + w] : acc[k];  \
        T_ m = acc[0];                                                                       \
        if (m == -(T_)INFINITY) {                                                            \
            for (j = 0; j < S; j++) row[j] = 0;                                              \
            continue;                                                                        \
        }                                                                                    \
        _Pragma("omp simd")                                                                  \
        for (j = 0; j < lim; j++) row[j] = pynn_exp_##SUF(row[j] - m);                       \
        if (mr)                                                                              \
            for (j = 0; j < lim; j++) row[j] = mr[j * sms] ? row[j] : (T_)0;                 \
        for (int k = 0; k < 16; k++) acc[k] = 0;                                             \
        for (j = 0; j + 16 <= lim; j += 16)                                                  \
            for (int k = 0; k < 16; k++) acc[k] += row[j + k];                               \
        for (int k = 0; j < lim; j++, k++) acc[k] += row[j];                                 \
        for (int w = 8; w >= 1; w /= 2)                                                      \
            for (int k = 0; k < w; k++) acc[k] += acc[k + w];                                \
        T_ inv = (T_)1 / acc[0];                                                             \
        for (j = 0; j < lim; j++) row[j] *= inv;                                             \
        for (j = lim; j < S; j++) row[j] = 0;                                                \
    }                                                                                        \
}                                                                                            \
/* rows t0..t1-1 of dS (T,S): dP in, dS = P (dP - sum_j P dP) out over j < nc, 0 beyond */   \
ATTR static void pynn_att_grad_##SUF##_##SFX(T_ *dS, const T_ *P, pynn_idx S, pynn_idx t0,  \
                                             pynn_idx t1, pynn_idx nc) {                    \
    for (pynn_idx t = t0; t < t1; t++) {                                                     \
        T_ *r = dS + t * S;                                                                  \
        const T_ *p = P + t * S;                                                             \
        T_ acc[16];                                                                          \
        pynn_idx j;                                                                          \
        for (int k = 0; k < 16; k++) acc[k] = 0;                                             \
        for (j = 0; j + 16 <= nc; j += 16)                                                   \
            for (int k = 0; k < 16; k++) acc[k] += p[j + k] * r[j + k];                      \
        for (int k = 0; j < nc; j++, k++) acc[k] += p[j] * r[j];                             \
        for (int w = 8; w >= 1; w /= 2)                                                      \
            for (int k = 0; k < w; k++) acc[k] += acc[k + w];                                \
        T_ dot = acc[0];                                                                     \
        for (j = 0; j < nc; j++) r[j] = p[j] * (r[j] - dot);                                 \
        for (j = nc; j < S; j++) r[j] = 0;                                                   \
    }                                                                                        \
}

#define PYNN_ATT_ROW_TABLES(T_, SUF)                                                         \
PYNN_ATT_ROWS(T_, SUF, generic, )                                                            \
PYNN_ATT_ROWS(T_, SUF, avx2, PYNN_ATT_TARGET_AVX2)                                           \
PYNN_ATT_ROWS(T_, SUF, avx512, PYNN_ATT_TARGET_AVX512)                                       \
typedef void (*pynn_att_softmax_fn_##SUF)(T_ *, pynn_idx, pynn_idx, pynn_idx, int,           \
                                          const uint8_t *, pynn_idx, pynn_idx);             \
typedef void (*pynn_att_grad_fn_##SUF)(T_ *, const T_ *, pynn_idx, pynn_idx, pynn_idx,       \
                                       pynn_idx);                                            \
static const pynn_att_softmax_fn_##SUF pynn_att_softmax_##SUF[3] = {                         \
    pynn_att_softmax_##SUF##_generic, pynn_att_softmax_##SUF##_avx2,                         \
    pynn_att_softmax_##SUF##_avx512};                                                        \
static const pynn_att_grad_fn_##SUF pynn_att_grad_##SUF[3] = {                               \
    pynn_att_grad_##SUF##_generic, pynn_att_grad_##SUF##_avx2, pynn_att_grad_##SUF##_avx512};

PYNN_ATT_ROW_TABLES(float, f32)
PYNN_ATT_ROW_TABLES(double, f64)


#define PYNN_ATTENTION_FAMILY(T_, SUF)                                                  \
int pynn_attention_forward_##SUF(T_ *out, T_ *probs, const T_ *q, const T_ *k, const T_ *v,  \
                                 const uint8_t *mask, pynn_idx B, pynn_idx H, pynn_idx T,    \
                                 pynn_idx S, pynn_idx D, pynn_idx DV, const pynn_idx *so,    \
                                 const pynn_idx *sq, const pynn_idx *sk, const pynn_idx *sv, \
                                 const pynn_idx *sm, int causal, double scale,               \
                                 pynn_ctx ctx) {                                             \
    /* out (B,H,T,DV) = softmax(scale q (B,H,T,D) k^T (B,H,D,S)) = probs (B,H,T,S) @ v (B,H,S,DV) */ \
    pynn_idx BH = B * H;                                                                     \
    int nt = pynn_threads_for(ctx, (double)BH * (double)T * (double)S * (double)(D + DV));   \
    if (nt > BH) nt = (int)(BH < 1 ? 1 : BH);                                                \
    pynn_ctx inner = ctx;                                                                    \
    if (nt > 1) inner.nthreads = 1;                                                          \
    pynn_att_softmax_fn_##SUF softmax_rows = pynn_att_softmax_##SUF[PYNN_ATT_ISA(ctx)];      \
    int st = PYNN_OK;                                                                        \
    _Pragma("omp parallel for num_threads(nt) schedule(static) if(nt > 1) reduction(|:st)")  \
    for (pynn_idx p = 0; p < BH; p++) {                                                      \
        pynn_idx b = p / H, h = p % H;                                                       \
        const T_ *qp = q + b * sq[0] + h * sq[1], *kp = k + b * sk[0] + h * sk[1];           \
        const T_ *vp = v + b * sv[0] + h * sv[1];                                            \
        T_ *op = out + b * so[0] + h * so[1], *P = probs + p * T * S;                        \
        for (pynn_idx t0 = 0; t0 < T; t0 += PYNN_ATT_RB) {                                   \
            pynn_idx t1 = PYNN_MIN(T, t0 + PYNN_ATT_RB);                                     \
            pynn_idx nc = causal ? PYNN_MIN(S, t1) : S;                                      \
            T_ *Pb = P + t0 * S;                                                             \
            if (nc > 0)                                                                      \
                st |= pynn_gemm_##SUF(Pb, S, 1, qp + t0 * sq[2], sq[2], sq[3], kp, sk[3], sk[2], \
                                      t1 - t0, nc, D, (T_)scale, 0, inner);                  \
            softmax_rows(P, S, t0, t1, causal, mask ? mask + b * sm[0] : NULL, sm[1], sm[2]); \
            if (nc > 0)                                                                      \
                st |= pynn_gemm_##SUF(op + t0 * so[2], so[2], so[3], Pb, S, 1, vp, sv[2], sv[3], \
                                      t1 - t0, DV, nc, 1, 0, inner);                         \
            else                                                                             \
                for (pynn_idx t = t0; t < t1; t++)                                           \
                    for (pynn_idx c = 0; c < DV; c++) op[t * so[2] + c * so[3]] = 0;         \
        }                                                                                    \
    }                                                                                        \
    return st ? PYNN_ENOMEM : PYNN_OK;                                                       \
}                                                                                            \
                                                                                             \
int pynn_attention_backward_##SUF(T_ *dq, T_ *dk, T_ *dv, const T_ *q, const T_ *k,          \
                                  const T_ *v, const T_ *probs, const T_ *dout, pynn_idx B,  \
                                  pynn_idx H, pynn_idx T, pynn_idx S, pynn_idx D,            \
                                  pynn_idx DV, const pynn_idx *sdq, const pynn_idx *sdk,     \
                                  const pynn_idx *sdv, const pynn_idx *sq,                   \
                                  const pynn_idx *sk, const pynn_idx *sv,                    \
                                  const pynn_idx *sdo, int causal, double scale,             \
                                  pynn_ctx ctx) {                                            \
    /* dq (B,H,T,D) = dS k, dk (B,H,S,D) = dS^T q, dv (B,H,S,DV) = P^T dout (B,H,T,DV),      \
     * dS = P * (dout v^T - rowsum) (all written, not accumulated) */                         \
    pynn_idx BH = B * H;                                                                     \
    int nt = pynn_threads_for(ctx, 2.0 * (double)BH * (double)T * (double)S * (double)(D + DV)); \
    if (nt > BH) nt = (int)(BH < 1 ? 1 : BH);                                                \
    pynn_ctx inner = ctx;                                                                    \
    if (nt > 1) inner.nthreads = 1;                                                          \
    pynn_att_grad_fn_##SUF grad_rows = pynn_att_grad_##SUF[PYNN_ATT_ISA(ctx)];               \
    int st = PYNN_OK;                                                                        \
    _Pragma("omp parallel num_threads(nt) if(nt > 1) reduction(|:st)")                       \
    {                                                                                        \
        void *buf = NULL;                                                                    \
        if (T * S > 0 && posix_memalign(&buf, 64, (size_t)(T * S) * sizeof(T_)) != 0) {     \
            buf = NULL;                                                                      \
            st |= 1;                                                                         \
        }                                                                                    \
        T_ *dS = (T_ *)buf;                                                                  \
        _Pragma("omp for schedule(static)")                                                  \
        for (pynn_idx p = 0; p < BH; p++) {                                                  \
            pynn_idx b = p / H, h = p % H;                                                   \
            const T_ *qp = q + b * sq[0] + h * sq[1], *kp = k + b * sk[0] + h * sk[1];       \
            const T_ *vp = v + b * sv[0] + h * sv[1], *dop = dout + b * sdo[0] + h * sdo[1]; \
            const T_ *P = probs + p * T * S;                                                 \
            T_ *dqp = dq + b * sdq[0] + h * sdq[1], *dkp = dk + b * sdk[0] + h * sdk[1];     \
            T_ *dvp = dv + b * sdv[0] + h * sdv[1];                                          \
            if (!dS && T * S > 0) continue;                                                  \
            /* dS row blocks: dP = dout v^T, then the softmax Jacobian; dq = dS k */         \
            for (pynn_idx t0 = 0; t0 < T; t0 += PYNN_ATT_RB) {                               \
                pynn_idx t1 = PYNN_MIN(T, t0 + PYNN_ATT_RB);                                 \
                pynn_idx nc = causal ? PYNN_MIN(S, t1) : S;                                  \
                if (nc > 0)                                                                  \
                    st |= pynn_gemm_##SUF(dS + t0 * S, S, 1, dop + t0 * sdo[2], sdo[2], sdo[3], \
                                          vp, sv[3], sv[2], t1 - t0, nc, DV, 1, 0, inner);   \
                grad_rows(dS, P, S, t0, t1, nc);                                             \
                if (nc > 0)                                                                  \
                    st |= pynn_gemm_##SUF(dqp + t0 * sdq[2], sdq[2], sdq[3], dS + t0 * S, S, 1, \
                                          kp, sk[2], sk[3], t1 - t0, D, nc, (T_)scale, 0, inner); \
                else                                                                         \
                    for (pynn_idx t = t0; t < t1; t++)                                       \
                        for (pynn_idx c = 0; c < D; c++) dqp[t * sdq[2] + c * sdq[3]] = 0;   \
            }                                                                                \
            /* column blocks of dS and P: dk = dS^T q, dv = P^T dout over rows t >= j0 */    \
            for (pynn_idx j0 = 0; j0 < S; j0 += PYNN_ATT_RB) {                               \
                pynn_idx j1 = PYNN_MIN(S, j0 + PYNN_ATT_RB);                                 \
                pynn_idx ts = causal ? PYNN_MIN(T, j0) : 0;                                  \
                st |= pynn_gemm_##SUF(dkp + j0 * sdk[2], sdk[2], sdk[3], dS + ts * S + j0, 1, S, \
                                      qp + ts * sq[2], sq[2], sq[3], j1 - j0, D, T - ts,     \
                                      (T_)scale, 0, inner);                                  \
                st |= pynn_gemm_##SUF(dvp + j0 * sdv[2], sdv[2], sdv[3], P + ts * S + j0, 1, S, \
                                      dop + ts * sdo[2], sdo[2], sdo[3], j1 - j0, DV, T - ts, \
                                      1, 0, inner);                                          \
            }                                                                                \
        }                                                                                    \
        free(buf);                                                                           \
    }                                                                                        \
    return st ? PYNN_ENOMEM : PYNN_OK;                                                       \
}

PYNN_ATTENTION_FAMILY(float, f32)
PYNN_ATTENTION_FAMILY(double, f64)
