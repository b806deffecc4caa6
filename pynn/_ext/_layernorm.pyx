# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True, initializedcheck=False
"""C backend of pynn.reference.layernorm: layer normalization over the last axis.

Each wrapper checks its arguments with pynn._checks, allocates the outputs it was not
given, then makes one C call with the GIL released. x is viewed as (N, C) rows and passed
by strides (a copy only when its leading axes cannot be merged); dy is made C-contiguous.
"""
import numpy as np
cimport numpy as cnp

from pynn import _checks
from pynn.reference.layernorm import residual_arg
from pynn._ext._csrc cimport pynn_idx, pynn_ctx
from pynn._ext._runtime cimport get_ctx

cnp.import_array()

cdef extern from "layernorm.h" nogil:
    void pynn_layernorm_forward_f32(float *y, float *mean, float *rstd, const float *x,
                                    const float *gamma, const float *beta, pynn_idx N,
                                    pynn_idx C, pynn_idx rsx, pynn_idx csx, double eps,
                                    pynn_ctx ctx)
    void pynn_layernorm_forward_f64(double *y, double *mean, double *rstd, const double *x,
                                    const double *gamma, const double *beta, pynn_idx N,
                                    pynn_idx C, pynn_idx rsx, pynn_idx csx, double eps,
                                    pynn_ctx ctx)
    void pynn_layernorm_backward_f32(float *dx, float *dgamma, float *dbeta, const float *x,
                                     const float *gamma, const float *mean, const float *rstd,
                                     const float *dy, pynn_idx N, pynn_idx C, pynn_idx rsx,
                                     pynn_idx csx, const float *res, int accumulate,
                                     pynn_ctx ctx)
    void pynn_layernorm_backward_f64(double *dx, double *dgamma, double *dbeta,
                                     const double *x, const double *gamma, const double *mean,
                                     const double *rstd, const double *dy, pynn_idx N,
                                     pynn_idx C, pynn_idx rsx, pynn_idx csx,
                                     const double *res, int accumulate, pynn_ctx ctx)

__all__ = ["layernorm_forward", "layernorm_backward"]


cdef inline void *_data(a):
    return cnp.PyArray_DATA(<cnp.ndarray>a)


cdef _rows(x):
    """x as an (N, C) array sharing memory where its leading axes merge."""
    C = x.shape[x.ndim - 1]
    try:
        return x.reshape(-1, C, copy=False)
    except (ValueError, AttributeError):
        return np.ascontiguousarray(x).reshape(-1, C)


def layernorm_forward(x, gamma, beta, eps=1e-5, out=None, mean=None, rstd=None):
    """(y (..., C), mean (...,), rstd (...,)). See pynn.reference.layernorm_forward."""
    x, gamma, beta, eps = _checks.layernorm_args(x, gamma, beta, eps)
    ins = (x, gamma, beta)
    out = _checks.out_array(out, x.shape, x.dtype, inputs=ins)
    mean = _checks.out_array(mean, x.shape[:x.ndim - 1], x.dtype, "mean", inputs=ins + (out,))
    rstd = _checks.out_array(rstd, x.shape[:x.ndim - 1], x.dtype, "rstd", inputs=ins + (out, mean))
    x2 = _rows(x)
    gamma = _checks.contiguous(gamma)
    if beta is not None:
        beta = _checks.contiguous(beta)
    cdef pynn_idx N = x2.shape[0], C = x2.shape[1]
    cdef pynn_idx rs = x2.strides[0] // x2.itemsize, cs = x2.strides[1] // x2.itemsize
    cdef pynn_ctx ctx = get_ctx()
    cdef void *py = _data(out)
    cdef void *pm = _data(mean)
    cdef void *pr = _data(rstd)
    cdef const void *px = _data(x2)
    cdef const void *pg = _data(gamma)
    cdef const void *pb = NULL if beta is None else _data(beta)
    cdef double e = eps
    if N == 0:
        return out, mean, rstd
    if x.dtype == np.float32:
        with nogil:
            pynn_layernorm_forward_f32(<float *>py, <float *>pm, <float *>pr, <const float *>px,
                                       <const float *>pg, <const float *>pb, N, C, rs, cs, e,
                                       ctx)
    else:
        with nogil:
            pynn_layernorm_forward_f64(<double *>py, <double *>pm, <double *>pr,
                                       <const double *>px, <const double *>pg,
                                       <const double *>pb, N, C, rs, cs, e, ctx)
    return out, mean, rstd


def layernorm_backward(x, gamma, mean, rstd, dy, dx=None, dgamma=None, dbeta=None,
                       accumulate=False, residual=None):
    """(dx, dgamma, dbeta); accumulate=True adds into the given dx (a residual branch);
    residual gives dx = residual + the gradient. See pynn.reference.layernorm_backward."""
    x, gamma, mean, rstd, dy = _checks.layernorm_grad_args(x, gamma, mean, rstd, dy)
    C_ = x.shape[x.ndim - 1]
    ins = (x, gamma, mean, rstd, dy)
    if accumulate and dx is None:
        raise ValueError("accumulate=True needs dx, the array to add into")
    dgamma = _checks.out_array(dgamma, (C_,), x.dtype, "dgamma", inputs=ins)
    dbeta = _checks.out_array(dbeta, (C_,), x.dtype, "dbeta", inputs=ins + (dgamma,))
    dx = _checks.out_array(dx, x.shape, x.dtype, "dx", inputs=ins + (dgamma, dbeta))
    residual = residual_arg(residual, x, dx, accumulate, dgamma, dbeta)
    if residual is not None:
        residual = _checks.contiguous(residual)
    x2 = _rows(x)
    dy = _checks.contiguous(dy)
    gamma = _checks.contiguous(gamma)
    mean = _checks.contiguous(mean)
    rstd = _checks.contiguous(rstd)
    cdef pynn_idx N = x2.shape[0], C = x2.shape[1]
    cdef pynn_idx rs = x2.strides[0] // x2.itemsize, cs = x2.strides[1] // x2.itemsize
    cdef pynn_ctx ctx = get_ctx()
    cdef void *pdx = _data(dx)
    cdef void *pdg = _data(dgamma)
    cdef void *pdb = _data(dbeta)
    cdef const void *px = _data(x2)
    cdef const void *pg = _data(gamma)
    cdef const void *pm = _data(mean)
    cdef const void *pr = _data(rstd)
    cdef const void *pd = _data(dy)
    cdef const void *pres = _data(residual) if residual is not None else NULL
    cdef int acc = 1 if accumulate else 0
    if N == 0:
        dgamma[...] = 0
        dbeta[...] = 0
        return dx, dgamma, dbeta
    if x.dtype == np.float32:
        with nogil:
            pynn_layernorm_backward_f32(<float *>pdx, <float *>pdg, <float *>pdb,
                                        <const float *>px, <const float *>pg,
                                        <const float *>pm, <const float *>pr,
                                        <const float *>pd, N, C, rs, cs,
                                        <const float *>pres, acc, ctx)
    else:
        with nogil:
            pynn_layernorm_backward_f64(<double *>pdx, <double *>pdg, <double *>pdb,
                                        <const double *>px, <const double *>pg,
                                        <const double *>pm, <const double *>pr,
                                        <const double *>pd, N, C, rs, cs,
                                        <const double *>pres, acc, ctx)
    return dx, dgamma, dbeta
