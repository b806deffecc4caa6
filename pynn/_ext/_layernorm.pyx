# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True, initializedcheck=False
"""C backend of pynn.reference.layernorm: layer normalization over the last axis.

Each wrapper checks its arguments with pynn._checks, allocates the outputs it was not
given, then makes one C call with the GIL released. x is viewed as (N, C) rows and passed
by strides (a copy only when its leading axes cannot be merged); dy is made C-contiguous.
A plainly valid call (every array plain and contiguous, pynn/_ext/_fast.pxd) is recognised
with C-level tests and goes straight to C: the checks cost ~18 us a call, as much as the
kernel on a small model's rows (two forwards and two backwards a Transformer block).
"""
import numpy as np
cimport numpy as cnp

from pynn import _checks
from pynn.reference.layernorm import backward_args
from pynn._ext._csrc cimport pynn_idx, pynn_ctx
from pynn._ext._runtime cimport get_ctx
from pynn._ext cimport _fast

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


cdef bint _plain_x(x, int *t) noexcept:
    """x: a plain float array (pynn/_ext/_fast.pxd) with at least one feature; t its type."""
    t[0] = _fast.float_type(x)
    return t[0] != 0 and cnp.PyArray_NDIM(<cnp.ndarray>x) >= 1 and \
        cnp.PyArray_DIM(<cnp.ndarray>x, cnp.PyArray_NDIM(<cnp.ndarray>x) - 1) >= 1


cdef bint _plain_vec(v, cnp.ndarray x) noexcept:
    """v: a plain 1-D array of x's type and length C (x's last axis)."""
    return (_fast.plain(v, cnp.PyArray_TYPE(x)) and cnp.PyArray_NDIM(<cnp.ndarray>v) == 1
            and cnp.PyArray_DIM(<cnp.ndarray>v, 0)
            == cnp.PyArray_DIM(x, cnp.PyArray_NDIM(x) - 1))


cdef bint _plain_rows(v, cnp.ndarray x) noexcept:
    """v: a plain array of x's type and shape without its last axis (mean, rstd)."""
    if not _fast.plain(v, cnp.PyArray_TYPE(x)):
        return False
    cdef cnp.ndarray a = <cnp.ndarray>v
    cdef int nd = cnp.PyArray_NDIM(x) - 1, d
    if cnp.PyArray_NDIM(a) != nd:
        return False
    for d in range(nd):
        if cnp.PyArray_DIM(a, d) != cnp.PyArray_DIM(x, d):
            return False
    return True


cdef bint _apart(o, tuple ins) noexcept:
    """Output o meets none of the arrays in ins (None entries skipped)."""
    for a in ins:
        if a is not None and not _fast.disjoint(<cnp.ndarray>o, <cnp.ndarray>a):
            return False
    return True


cdef tuple _plain_forward(x, gamma, beta, eps, out, mean, rstd):
    """(out, mean, rstd) when the call is plainly valid (nothing for pynn._checks to change
    or refuse), else None."""
    cdef int t
    if not (_plain_x(x, &t) and _plain_vec(gamma, <cnp.ndarray>x)
            and (beta is None or _plain_vec(beta, <cnp.ndarray>x))
            and _fast.float_in(eps, 0.0, 1.7976931348623157e308, True, False)):
        return None
    cdef cnp.ndarray xa = <cnp.ndarray>x
    cdef int nd = cnp.PyArray_NDIM(xa)
    o = _fast.new_or_out(out, nd, cnp.PyArray_DIMS(xa), t)
    m = _fast.new_or_out(mean, nd - 1, cnp.PyArray_DIMS(xa), t)
    r = _fast.new_or_out(rstd, nd - 1, cnp.PyArray_DIMS(xa), t)
    if o is None or m is None or r is None:
        return None
    if ((out is not None and not _apart(o, (x, gamma, beta)))
            or (mean is not None and not _apart(m, (x, gamma, beta, o)))
            or (rstd is not None and not _apart(r, (x, gamma, beta, o, m)))):
        return None
    return o, m, r


def layernorm_forward(x, gamma, beta, eps=1e-5, out=None, mean=None, rstd=None):
    """(y (..., C), mean (...,), rstd (...,)). See pynn.reference.layernorm_forward."""
    plain = _plain_forward(x, gamma, beta, eps, out, mean, rstd)
    if plain is not None:
        out, mean, rstd = plain
        x2 = (<cnp.ndarray>x).reshape(-1, x.shape[x.ndim - 1])
    else:
        x, gamma, beta, eps = _checks.layernorm_args(x, gamma, beta, eps)
        ins = (x, gamma, beta)
        out = _checks.out_array(out, x.shape, x.dtype, inputs=ins)
        mean = _checks.out_array(mean, x.shape[:x.ndim - 1], x.dtype, "mean",
                                 inputs=ins + (out,))
        rstd = _checks.out_array(rstd, x.shape[:x.ndim - 1], x.dtype, "rstd",
                                 inputs=ins + (out, mean))
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


cdef tuple _plain_backward(x, gamma, mean, rstd, dy, dx, dgamma, dbeta, accumulate,
                          residual):
    """(dx, dgamma, dbeta) when the call is plainly valid, with at least one row (nothing
    for pynn._checks or residual_arg to change or refuse), else None."""
    cdef int t
    if not (_plain_x(x, &t) and type(accumulate) is bool and _plain_vec(gamma, <cnp.ndarray>x)
            and _plain_rows(mean, <cnp.ndarray>x) and _plain_rows(rstd, <cnp.ndarray>x)
            and _fast.plain_like(dy, <cnp.ndarray>x, False)):
        return None
    cdef cnp.ndarray xa = <cnp.ndarray>x
    if cnp.PyArray_SIZE(xa) == 0 or (accumulate and (dx is None or residual is not None)):
        return None
    if residual is not None and not _fast.plain_like(residual, xa, False):
        return None
    cdef int nd = cnp.PyArray_NDIM(xa)
    ins = (x, gamma, mean, rstd, dy)
    g = _fast.new_or_out(dgamma, 1, cnp.PyArray_DIMS(xa) + nd - 1, t)
    b = _fast.new_or_out(dbeta, 1, cnp.PyArray_DIMS(xa) + nd - 1, t)
    d = _fast.new_or_out(dx, nd, cnp.PyArray_DIMS(xa), t)
    if g is None or b is None or d is None:
        return None
    if ((dgamma is not None and not _apart(g, ins + (residual,)))
            or (dbeta is not None and not _apart(b, ins + (g, residual)))
            or (dx is not None and not _apart(d, ins + (g, b)))):
        return None
    if residual is not None and dx is not None and not _fast.inplace_ok(
            <cnp.ndarray>d, <cnp.ndarray>residual):
        return None        # dx may be the residual itself, never a part of it
    return d, g, b


def layernorm_backward(x, gamma, mean, rstd, dy, dx=None, dgamma=None, dbeta=None,
                       accumulate=False, residual=None):
    """(dx, dgamma, dbeta); accumulate=True adds into the given dx (a residual branch);
    residual gives dx = residual + the gradient. See pynn.reference.layernorm_backward."""
    plain = _plain_backward(x, gamma, mean, rstd, dy, dx, dgamma, dbeta, accumulate, residual)
    if plain is not None:
        dx, dgamma, dbeta = plain
        x2 = (<cnp.ndarray>x).reshape(-1, x.shape[x.ndim - 1])
    else:
        x, gamma, mean, rstd, dy, dx, dgamma, dbeta, residual = backward_args(
            x, gamma, mean, rstd, dy, dx, dgamma, dbeta, accumulate, residual)
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
