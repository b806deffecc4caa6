# cython: language_level=3
"""C backend of pynn.reference.optim: fused in-place optimizer updates, global-norm clipping.

Arguments are checked by the same functions as the reference (pynn.reference.optim.check_*,
built on pynn._checks); each wrapper then makes one C call with the GIL released. Buffers
are flat views of C-contiguous arrays; optional state is passed as NULL.
"""
import numpy as np
from cython cimport floating
from libc.stdint cimport int64_t

from pynn._ext._csrc cimport pynn_idx, pynn_ctx
from pynn._ext._runtime cimport get_ctx
from pynn.reference import optim as _ref

cdef extern from "optim.h" nogil:
    void pynn_sgd_update_f32(float *param, float *velocity, const float *grad, pynn_idx n,
                             double lr, double momentum, int nesterov, double weight_decay,
                             pynn_ctx ctx)
    void pynn_sgd_update_f64(double *param, double *velocity, const double *grad, pynn_idx n,
                             double lr, double momentum, int nesterov, double weight_decay,
                             pynn_ctx ctx)
    void pynn_adam_update_f32(float *param, float *m, float *v, const float *grad, pynn_idx n,
                              double lr, double beta_1, double beta_2, double epsilon,
                              int64_t step, double weight_decay, pynn_ctx ctx)
    void pynn_adam_update_f64(double *param, double *m, double *v, const double *grad,
                              pynn_idx n, double lr, double beta_1, double beta_2,
                              double epsilon, int64_t step, double weight_decay, pynn_ctx ctx)
    void pynn_rmsprop_update_f32(float *param, float *sq_avg, float *velocity,
                                 float *mean_grad, const float *grad, pynn_idx n, double lr,
                                 double rho, double epsilon, double momentum,
                                 double weight_decay, pynn_ctx ctx)
    void pynn_rmsprop_update_f64(double *param, double *sq_avg, double *velocity,
                                 double *mean_grad, const double *grad, pynn_idx n, double lr,
                                 double rho, double epsilon, double momentum,
                                 double weight_decay, pynn_ctx ctx)
    void pynn_adagrad_update_f32(float *param, float *accum, const float *grad, pynn_idx n,
                                 double lr, double epsilon, double weight_decay, pynn_ctx ctx)
    void pynn_adagrad_update_f64(double *param, double *accum, const double *grad, pynn_idx n,
                                 double lr, double epsilon, double weight_decay, pynn_ctx ctx)
    double pynn_global_norm_f32(const float *x, pynn_idx n, pynn_ctx ctx)
    double pynn_global_norm_f64(const double *x, pynn_idx n, pynn_ctx ctx)
    double pynn_clip_by_global_norm_f32(float *grad, pynn_idx n, double max_norm, pynn_ctx ctx)
    double pynn_clip_by_global_norm_f64(double *grad, pynn_idx n, double max_norm,
                                        pynn_ctx ctx)

__all__ = ["sgd_update", "adam_update", "rmsprop_update", "adagrad_update",
           "global_norm", "clip_by_global_norm"]


cdef inline floating *_ptr(floating[::1] a) noexcept nogil:
    return &a[0] if a is not None and a.shape[0] else NULL


def _flat(a):
    return None if a is None else a.reshape(-1)


cdef void _sgd(floating[::1] param,                 # IN/OUT (n,)
               floating[::1] velocity,              # IN/OUT (n,) or None
               const floating[::1] grad,            # IN (n,)
               double lr, double momentum, int nesterov, double wd, pynn_ctx ctx) noexcept:
    cdef pynn_idx n = param.shape[0]
    cdef floating *vel = _ptr(velocity)
    if n == 0:
        return
    with nogil:
        if floating is float:
            pynn_sgd_update_f32(&param[0], vel, &grad[0], n, lr, momentum, nesterov, wd, ctx)
        else:
            pynn_sgd_update_f64(&param[0], vel, &grad[0], n, lr, momentum, nesterov, wd, ctx)


def sgd_update(param, grad, velocity, lr, momentum=0.0, nesterov=False, weight_decay=0.0):
    """SGD step in place. See pynn.reference.sgd_update."""
    param, grad, velocity, lr, momentum, wd = _ref.check_sgd(param, grad, velocity, lr,
                                                              momentum, weight_decay)
    args = (_flat(param), _flat(velocity), _flat(grad), lr, momentum, bool(nesterov), wd,
            get_ctx())
    if param.dtype == np.float32:
        _sgd[float](*args)
    else:
        _sgd[double](*args)


cdef void _adam(floating[::1] param, floating[::1] m, floating[::1] v,   # IN/OUT (n,)
                const floating[::1] grad,                                # IN (n,)
                double lr, double beta_1, double beta_2, double epsilon, int64_t step,
                double wd, pynn_ctx ctx) noexcept:
    cdef pynn_idx n = param.shape[0]
    if n == 0:
        return
    with nogil:
        if floating is float:
            pynn_adam_update_f32(&param[0], &m[0], &v[0], &grad[0], n, lr, beta_1, beta_2,
                                 epsilon, step, wd, ctx)
        else:
            pynn_adam_update_f64(&param[0], &m[0], &v[0], &grad[0], n, lr, beta_1, beta_2,
                                 epsilon, step, wd, ctx)


def adam_update(param, grad, m, v, lr, beta_1=0.9, beta_2=0.999, epsilon=1e-7, step=1,
                weight_decay=0.0):
    """Adam / AdamW step in place. See pynn.reference.adam_update."""
    param, grad, m, v, lr, beta_1, beta_2, epsilon, step, wd = _ref.check_adam(
        param, grad, m, v, lr, beta_1, beta_2, epsilon, step, weight_decay)
    args = (_flat(param), _flat(m), _flat(v), _flat(grad), lr, beta_1, beta_2, epsilon, step,
            wd, get_ctx())
    if param.dtype == np.float32:
        _adam[float](*args)
    else:
        _adam[double](*args)


cdef void _rmsprop(floating[::1] param, floating[::1] sq_avg,           # IN/OUT (n,)
                   floating[::1] velocity, floating[::1] mean_grad,     # IN/OUT (n,) or None
                   const floating[::1] grad,                            # IN (n,)
                   double lr, double rho, double epsilon, double momentum, double wd,
                   pynn_ctx ctx) noexcept:
    cdef pynn_idx n = param.shape[0]
    cdef floating *vel = _ptr(velocity)
    cdef floating *mg = _ptr(mean_grad)
    if n == 0:
        return
    with nogil:
        if floating is float:
            pynn_rmsprop_update_f32(&param[0], &sq_avg[0], vel, mg, &grad[0], n, lr, rho,
                                    epsilon, momentum, wd, ctx)
        else:
            pynn_rmsprop_update_f64(&param[0], &sq_avg[0], vel, mg, &grad[0], n, lr, rho,
                                    epsilon, momentum, wd, ctx)


def rmsprop_update(param, grad, sq_avg, lr, rho=0.9, epsilon=1e-7, momentum=0.0,
                   velocity=None, centered=False, mean_grad=None, weight_decay=0.0):
    """RMSprop step in place. See pynn.reference.rmsprop_update."""
    param, grad, sq_avg, velocity, mean_grad, lr, rho, epsilon, momentum, wd = (
        _ref.check_rmsprop(param, grad, sq_avg, lr, rho, epsilon, momentum, velocity,
                           centered, mean_grad, weight_decay))
    args = (_flat(param), _flat(sq_avg), _flat(velocity), _flat(mean_grad), _flat(grad), lr,
            rho, epsilon, momentum, wd, get_ctx())
    if param.dtype == np.float32:
        _rmsprop[float](*args)
    else:
        _rmsprop[double](*args)


cdef void _adagrad(floating[::1] param, floating[::1] accum,            # IN/OUT (n,)
                   const floating[::1] grad,                            # IN (n,)
                   double lr, double epsilon, double wd, pynn_ctx ctx) noexcept:
    cdef pynn_idx n = param.shape[0]
    if n == 0:
        return
    with nogil:
        if floating is float:
            pynn_adagrad_update_f32(&param[0], &accum[0], &grad[0], n, lr, epsilon, wd, ctx)
        else:
            pynn_adagrad_update_f64(&param[0], &accum[0], &grad[0], n, lr, epsilon, wd, ctx)


def adagrad_update(param, grad, accum, lr, epsilon=1e-7, weight_decay=0.0):
    """Adagrad step in place. See pynn.reference.adagrad_update."""
    param, grad, accum, lr, epsilon, wd = _ref.check_adagrad(param, grad, accum, lr, epsilon,
                                                             weight_decay)
    args = (_flat(param), _flat(accum), _flat(grad), lr, epsilon, wd, get_ctx())
    if param.dtype == np.float32:
        _adagrad[float](*args)
    else:
        _adagrad[double](*args)


cdef double _global_norm(const floating[::1] x, pynn_ctx ctx) noexcept:  # IN (n,)
    cdef pynn_idx n = x.shape[0]
    cdef double r = 0.0
    if n == 0:
        return 0.0
    with nogil:
        if floating is float:
            r = pynn_global_norm_f32(&x[0], n, ctx)
        else:
            r = pynn_global_norm_f64(&x[0], n, ctx)
    return r


def global_norm(x):
    """sqrt(sum x^2) as a Python float. See pynn.reference.global_norm."""
    x = _ref.check_global_norm(x)
    xf = np.ascontiguousarray(x).reshape(-1)
    if x.dtype == np.float32:
        return _global_norm[float](xf, get_ctx())
    return _global_norm[double](xf, get_ctx())


cdef double _clip(floating[::1] grad, double max_norm, pynn_ctx ctx) noexcept:  # IN/OUT (n,)
    cdef pynn_idx n = grad.shape[0]
    cdef double r = 0.0
    if n == 0:
        return 0.0
    with nogil:
        if floating is float:
            r = pynn_clip_by_global_norm_f32(&grad[0], n, max_norm, ctx)
        else:
            r = pynn_clip_by_global_norm_f64(&grad[0], n, max_norm, ctx)
    return r


def clip_by_global_norm(grad, max_norm):
    """Scale grad in place to norm max_norm when larger; returns the norm before clipping."""
    grad, max_norm = _ref.check_clip(grad, max_norm)
    if grad.dtype == np.float32:
        return _clip[float](grad.reshape(-1), max_norm, get_ctx())
    return _clip[double](grad.reshape(-1), max_norm, get_ctx())
