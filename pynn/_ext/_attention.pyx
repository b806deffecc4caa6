# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True, initializedcheck=False
"""C backend of pynn.reference.attention: scaled dot-product attention, forward and backward.

Each wrapper checks its arguments with pynn._checks (the same checks as the reference),
allocates the outputs it was not given, then makes one C call with the GIL released.
q, k, v, dout and the outputs out, dq, dk, dv go by their four strides, so head-split views
of (B, T, H, d) projections need no copies; probs is C-contiguous; the mask is a uint8
(B, T, S) view (0 strides on broadcast axes).
"""
import numpy as np
cimport numpy as cnp
from libc.stdint cimport uint8_t, uint64_t

from pynn import _checks
from pynn._ext._csrc cimport pynn_idx, pynn_ctx, PYNN_OK
from pynn._ext._runtime cimport get_ctx

cnp.import_array()

cdef extern from "attention.h" nogil:
    int pynn_attention_forward_f32(float *out, float *probs, const float *q, const float *k,
                                   const float *v, const uint8_t *mask, pynn_idx B, pynn_idx H,
                                   pynn_idx T, pynn_idx S, pynn_idx D, pynn_idx DV,
                                   const pynn_idx *so, const pynn_idx *sq, const pynn_idx *sk,
                                   const pynn_idx *sv, const pynn_idx *sm, int causal,
                                   double scale, double drop_rate, uint64_t drop_seed,
                                   uint64_t drop_step, pynn_ctx ctx)
    int pynn_attention_forward_f64(double *out, double *probs, const double *q,
                                   const double *k, const double *v, const uint8_t *mask,
                                   pynn_idx B, pynn_idx H, pynn_idx T, pynn_idx S, pynn_idx D,
                                   pynn_idx DV, const pynn_idx *so, const pynn_idx *sq,
                                   const pynn_idx *sk, const pynn_idx *sv, const pynn_idx *sm,
                                   int causal, double scale, double drop_rate,
                                   uint64_t drop_seed, uint64_t drop_step, pynn_ctx ctx)
    int pynn_attention_backward_f32(float *dq, float *dk, float *dv, const float *q,
                                    const float *k, const float *v, const float *probs,
                                    const float *dout, pynn_idx B, pynn_idx H, pynn_idx T,
                                    pynn_idx S, pynn_idx D, pynn_idx DV, const pynn_idx *sdq,
                                    const pynn_idx *sdk, const pynn_idx *sdv,
                                    const pynn_idx *sq, const pynn_idx *sk, const pynn_idx *sv,
                                    const pynn_idx *sdo, int causal, double scale,
                                    double drop_rate, uint64_t drop_seed, uint64_t drop_step,
                                    pynn_ctx ctx)
    int pynn_attention_backward_f64(double *dq, double *dk, double *dv, const double *q,
                                    const double *k, const double *v, const double *probs,
                                    const double *dout, pynn_idx B, pynn_idx H, pynn_idx T,
                                    pynn_idx S, pynn_idx D, pynn_idx DV, const pynn_idx *sdq,
                                    const pynn_idx *sdk, const pynn_idx *sdv,
                                    const pynn_idx *sq, const pynn_idx *sk, const pynn_idx *sv,
                                    const pynn_idx *sdo, int causal, double scale,
                                    double drop_rate, uint64_t drop_seed, uint64_t drop_step,
                                    pynn_ctx ctx)

__all__ = ["attention_forward", "attention_backward"]


cdef inline void *_data(a):
    return cnp.PyArray_DATA(<cnp.ndarray>a)


cdef inline void _strides(a, pynn_idx *s):
    """Element strides of a 4-D (or 3-D mask) array."""
    cdef Py_ssize_t i, item = a.itemsize
    for i in range(a.ndim):
        s[i] = a.strides[i] // item


def attention_forward(q, k, v, causal=False, mask=None, scale=None, out=None, probs=None,
                      dropout=0.0, seed=0, step=0):
    """(out (B, H, T, DV), probs (B, H, T, S)). See pynn.reference.attention_forward."""
    q, k, v, causal, mask, scale = _checks.attention_args(q, k, v, causal, mask, scale)
    dropout, seed, step = _checks.dropout_args(dropout, seed, step, "dropout")
    B_, H_, T_, _ = q.shape
    S_, DV_ = v.shape[2], v.shape[3]
    out = _checks.strided_out(out, (B_, H_, T_, DV_), q.dtype, inputs=(q, k, v))
    probs = _checks.out_array(probs, (B_, H_, T_, S_), q.dtype, "probs", inputs=(q, k, v, out))
    cdef pynn_idx B = B_, H = H_, T = T_, S = S_, D = q.shape[3], DV = DV_
    cdef pynn_idx so[4]
    cdef pynn_idx sq[4]
    cdef pynn_idx sk[4]
    cdef pynn_idx sv[4]
    cdef pynn_idx sm[3]
    _strides(out, so)
    _strides(q, sq)
    _strides(k, sk)
    _strides(v, sv)
    sm[0] = sm[1] = sm[2] = 0
    cdef const uint8_t *pm = NULL
    if mask is not None:
        _strides(mask, sm)
        pm = <const uint8_t *>_data(mask)
    cdef void *po = _data(out)
    cdef void *pp = _data(probs)
    cdef const void *pq = _data(q)
    cdef const void *pk = _data(k)
    cdef const void *pv = _data(v)
    cdef int c = causal, st = PYNN_OK
    cdef double sc = scale, dr = dropout
    cdef uint64_t ds = seed, dst = step
    cdef pynn_ctx ctx = get_ctx()
    if B * H * T == 0:
        return out, probs
    if q.dtype == np.float32:
        with nogil:
            st = pynn_attention_forward_f32(<float *>po, <float *>pp, <const float *>pq,
                                            <const float *>pk, <const float *>pv, pm, B, H, T,
                                            S, D, DV, so, sq, sk, sv, sm, c, sc, dr, ds, dst, ctx)
    else:
        with nogil:
            st = pynn_attention_forward_f64(<double *>po, <double *>pp, <const double *>pq,
                                            <const double *>pk, <const double *>pv, pm, B, H,
                                            T, S, D, DV, so, sq, sk, sv, sm, c, sc, dr, ds, dst, ctx)
    if st != PYNN_OK:
        raise MemoryError("attention_forward: could not allocate GEMM scratch")
    return out, probs


def attention_backward(q, k, v, probs, dout, causal=False, scale=None, dq=None, dk=None,
                       dv=None, dropout=0.0, seed=0, step=0):
    """(dq, dk, dv) of attention_forward given its probs. See pynn.reference.attention_backward."""
    q, k, v, probs, dout, causal, scale = _checks.attention_grad_args(q, k, v, probs, dout,
                                                                      causal, scale)
    dropout, seed, step = _checks.dropout_args(dropout, seed, step, "dropout")
    ins = (q, k, v, probs, dout)
    dq = _checks.strided_out(dq, q.shape, q.dtype, "dq", inputs=ins)
    dk = _checks.strided_out(dk, k.shape, q.dtype, "dk", inputs=ins + (dq,))
    dv = _checks.strided_out(dv, v.shape, q.dtype, "dv", inputs=ins + (dq, dk))
    cdef pynn_idx B = q.shape[0], H = q.shape[1], T = q.shape[2], D = q.shape[3]
    cdef pynn_idx S = v.shape[2], DV = v.shape[3]
    cdef pynn_idx sdq[4]
    cdef pynn_idx sdk[4]
    cdef pynn_idx sdv[4]
    cdef pynn_idx sq[4]
    cdef pynn_idx sk[4]
    cdef pynn_idx sv[4]
    cdef pynn_idx sdo[4]
    _strides(dq, sdq)
    _strides(dk, sdk)
    _strides(dv, sdv)
    _strides(q, sq)
    _strides(k, sk)
    _strides(v, sv)
    _strides(dout, sdo)
    cdef void *pdq = _data(dq)
    cdef void *pdk = _data(dk)
    cdef void *pdv = _data(dv)
    cdef const void *pq = _data(q)
    cdef const void *pk = _data(k)
    cdef const void *pv = _data(v)
    cdef const void *pp = _data(probs)
    cdef const void *pd = _data(dout)
    cdef int c = causal, st = PYNN_OK
    cdef double sc = scale, dr = dropout
    cdef uint64_t ds = seed, dst = step
    cdef pynn_ctx ctx = get_ctx()
    if B * H == 0:
        return dq, dk, dv
    if q.dtype == np.float32:
        with nogil:
            st = pynn_attention_backward_f32(<float *>pdq, <float *>pdk, <float *>pdv,
                                             <const float *>pq, <const float *>pk,
                                             <const float *>pv, <const float *>pp,
                                             <const float *>pd, B, H, T, S, D, DV, sdq, sdk,
                                             sdv, sq, sk, sv, sdo, c, sc, dr, ds, dst, ctx)
    else:
        with nogil:
            st = pynn_attention_backward_f64(<double *>pdq, <double *>pdk, <double *>pdv,
                                             <const double *>pq, <const double *>pk,
                                             <const double *>pv, <const double *>pp,
                                             <const double *>pd, B, H, T, S, D, DV, sdq, sdk,
                                             sdv, sq, sk, sv, sdo, c, sc, dr, ds, dst, ctx)
    if st != PYNN_OK:
        raise MemoryError("attention_backward: could not allocate scratch")
    return dq, dk, dv
