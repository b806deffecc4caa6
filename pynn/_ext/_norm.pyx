# cython: language_level=3
"""C backend of pynn.reference.norm: batch normalization over the last axis.

Each wrapper checks its arguments with pynn._checks (the same checks as the reference),
allocates the outputs it was not given, then makes one C call with the GIL released.
x is viewed as (N, C) rows (a copy only when its axes cannot be merged) and passed by
strides; dy is made C-contiguous.
"""
import numpy as np
from cython cimport floating

from pynn import _checks
from pynn._ext._csrc cimport pynn_idx, pynn_ctx, PYNN_OK
from pynn._ext._runtime cimport get_ctx

cdef extern from "norm.h" nogil:
    int pynn_batch_norm_forward_f32(float *y, float *mean, float *inv_std, float *running_mean,
                                    float *running_var, const float *x, const float *gamma,
                                    const float *beta, pynn_idx N, pynn_idx C, pynn_idx rsx,
                                    pynn_idx csx, int training, double momentum,
                                    double epsilon, pynn_ctx ctx)
    int pynn_batch_norm_forward_f64(double *y, double *mean, double *inv_std,
                                    double *running_mean, double *running_var, const double *x,
                                    const double *gamma, const double *beta, pynn_idx N,
                                    pynn_idx C, pynn_idx rsx, pynn_idx csx, int training,
                                    double momentum, double epsilon, pynn_ctx ctx)
    int pynn_batch_norm_backward_f32(float *dx, float *dgamma, float *dbeta, const float *x,
                                     const float *dy, const float *gamma, const float *mean,
                                     const float *inv_std, pynn_idx N, pynn_idx C, pynn_idx rsx,
                                     pynn_idx csx, int training, pynn_ctx ctx)
    int pynn_batch_norm_backward_f64(double *dx, double *dgamma, double *dbeta, const double *x,
                                     const double *dy, const double *gamma, const double *mean,
                                     const double *inv_std, pynn_idx N, pynn_idx C,
                                     pynn_idx rsx, pynn_idx csx, int training, pynn_ctx ctx)

__all__ = ["batch_norm_forward", "batch_norm_backward"]


cdef int _forward(floating[:, ::1] y,               # OUT (N, C)
                  floating[::1] mean,               # OUT (C,)
                  floating[::1] inv_std,            # OUT (C,)
                  floating[::1] running_mean,       # IN/OUT (C,)
                  floating[::1] running_var,        # IN/OUT (C,)
                  const floating[:, :] x,           # IN (N, C), strided
                  const floating[::1] gamma,        # IN (C,)
                  const floating[::1] beta,         # IN (C,) or None
                  bint training, double momentum, double epsilon, pynn_ctx ctx) noexcept:
    cdef pynn_idx N = x.shape[0], C = x.shape[1]
    cdef pynn_idx rs = x.strides[0] // sizeof(floating), cs = x.strides[1] // sizeof(floating)
    cdef const floating *px = &x[0, 0] if N else NULL
    cdef floating *py = &y[0, 0] if N else NULL
    cdef const floating *pb = NULL if beta is None else &beta[0]
    cdef int st
    with nogil:
        if floating is float:
            st = pynn_batch_norm_forward_f32(py, &mean[0], &inv_std[0], &running_mean[0],
                                             &running_var[0], px, &gamma[0], pb, N, C, rs, cs,
                                             training, momentum, epsilon, ctx)
        else:
            st = pynn_batch_norm_forward_f64(py, &mean[0], &inv_std[0], &running_mean[0],
                                             &running_var[0], px, &gamma[0], pb, N, C, rs, cs,
                                             training, momentum, epsilon, ctx)
    return st


def batch_norm_forward(x, gamma, beta, running_mean, running_var, training, momentum=0.99,
                       epsilon=1e-3, out=None):
    """(y (..., C), mean (C,), inv_std (C,)). See pynn.reference.batch_norm_forward."""
    x, gamma, beta, momentum, epsilon = _checks.batch_norm_args(
        x, gamma, beta, running_mean, running_var, training, momentum, epsilon)
    C = x.shape[x.ndim - 1]
    out = _checks.out_array(out, x.shape, x.dtype,
                            inputs=(x, gamma, beta, running_mean, running_var))
    gamma = _checks.contiguous(gamma)
    beta = None if beta is None else _checks.contiguous(beta)
    mean = np.empty(C, x.dtype)
    inv_std = np.empty(C, x.dtype)
    x2 = x.reshape(-1, C)
    if x.dtype == np.float32:
        st = _forward[float](out.reshape(-1, C), mean, inv_std, running_mean, running_var, x2,
                             gamma, beta, bool(training), momentum, epsilon, get_ctx())
    else:
        st = _forward[double](out.reshape(-1, C), mean, inv_std, running_mean, running_var, x2,
                              gamma, beta, bool(training), momentum, epsilon, get_ctx())
    if st != PYNN_OK:
        raise MemoryError("batch_norm_forward: could not allocate scratch")
    return out, mean, inv_std


cdef int _backward(floating[:, ::1] dx,             # OUT (N, C), may be dy
                   floating[::1] dgamma,            # OUT (C,)
                   floating[::1] dbeta,             # OUT (C,)
                   const floating[:, :] x,          # IN (N, C), strided
                   const floating[:, ::1] dy,       # IN (N, C)
                   const floating[::1] gamma,       # IN (C,)
                   const floating[::1] mean,        # IN (C,)
                   const floating[::1] inv_std,     # IN (C,)
                   bint training, pynn_ctx ctx) noexcept:
    cdef pynn_idx N = x.shape[0], C = x.shape[1]
    cdef pynn_idx rs = x.strides[0] // sizeof(floating), cs = x.strides[1] // sizeof(floating)
    cdef const floating *px = &x[0, 0] if N else NULL
    cdef const floating *pdy = &dy[0, 0] if N else NULL
    cdef floating *pdx = &dx[0, 0] if N else NULL
    cdef int st
    with nogil:
        if floating is float:
            st = pynn_batch_norm_backward_f32(pdx, &dgamma[0], &dbeta[0], px, pdy, &gamma[0],
                                              &mean[0], &inv_std[0], N, C, rs, cs, training, ctx)
        else:
            st = pynn_batch_norm_backward_f64(pdx, &dgamma[0], &dbeta[0], px, pdy, &gamma[0],
                                              &mean[0], &inv_std[0], N, C, rs, cs, training, ctx)
    return st


def batch_norm_backward(x, dy, gamma, mean, inv_std, training, dx=None, dgamma=None, dbeta=None):
    """(dx (..., C), dgamma (C,), dbeta (C,)). See pynn.reference.batch_norm_backward."""
    x, dy, gamma, mean, inv_std = _checks.batch_norm_grad_args(x, dy, gamma, mean, inv_std)
    C = x.shape[x.ndim - 1]
    dx, dgamma, dbeta = _checks.batch_norm_outs(x, dy, gamma, mean, inv_std, dx, dgamma, dbeta)
    dy2 = _checks.contiguous(dy).reshape(-1, C)
    gamma, mean, inv_std = (_checks.contiguous(a) for a in (gamma, mean, inv_std))
    if x.dtype == np.float32:
        st = _backward[float](dx.reshape(-1, C), dgamma, dbeta, x.reshape(-1, C), dy2, gamma,
                              mean, inv_std, bool(training), get_ctx())
    else:
        st = _backward[double](dx.reshape(-1, C), dgamma, dbeta, x.reshape(-1, C), dy2, gamma,
                               mean, inv_std, bool(training), get_ctx())
    if st != PYNN_OK:
        raise MemoryError("batch_norm_backward: could not allocate scratch")
    return dx, dgamma, dbeta
