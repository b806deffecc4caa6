# cython: language_level=3
"""C backend of pynn.reference.optim: fused in-place optimizer updates, global-norm clipping.

Arguments are checked by the same functions as the reference (pynn.reference.optim.check_*,
built on pynn._checks); each wrapper then makes one C call with the GIL released. Buffers
are flat views of C-contiguous arrays; optional state is passed as NULL.

Fast path: a plainly valid call (exact, C-contiguous, aligned, native arrays of one float
dtype, see pynn/_ext/_fast.pxd) is recognised with C-level tests and goes straight to C;
every other call, valid or not, takes the pynn._checks path above, so errors are unchanged.
"""
import numpy as np
cimport numpy as cnp
from cython cimport floating
from libc.math cimport INFINITY
from libc.stdint cimport int64_t

from pynn._ext._csrc cimport pynn_idx, pynn_ctx
from pynn._ext._runtime cimport get_ctx
from pynn._ext cimport _fast
from pynn import _checks
from pynn.reference import optim as _ref

cnp.import_array()

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


cdef inline void *_p(a) noexcept:
    """Data of a checked C-contiguous array, NULL for None."""
    return NULL if a is None else cnp.PyArray_DATA(<cnp.ndarray>a)


cdef bint _plain_buffers(tuple arrs) noexcept:
    """arrs = (param, grad, state...; None for absent state) is plainly valid: plain arrays
    (pynn/_ext/_fast.pxd) of one float type and param's shape, all but grad writeable,
    pairwise disjoint -- what the reference checks pass through unchanged. grad is never
    absent (None there takes the reference checks, which raise)."""
    if not _fast.float_type(arrs[0]) or arrs[1] is None:
        return False
    cdef cnp.ndarray P = <cnp.ndarray>arrs[0]
    cdef Py_ssize_t i, j, n = len(arrs)
    for i in range(n):
        if arrs[i] is not None and not _fast.plain_like(arrs[i], P, i != 1):
            return False
    for i in range(n):
        for j in range(i + 1, n):
            if (arrs[i] is not None and arrs[j] is not None
                    and not _fast.disjoint(<cnp.ndarray>arrs[i], <cnp.ndarray>arrs[j])):
                return False
    return True


cdef inline bint _nonneg(x) noexcept:
    return _fast.float_in(x, 0.0, INFINITY, False, False)


cdef inline bint _unit(x, bint hi_open) noexcept:
    return _fast.float_in(x, 0.0, 1.0, False, hi_open)


cdef void _sgd(floating *param,                     # IN/OUT (n,)
               floating *velocity,                  # IN/OUT (n,) or NULL
               const floating *grad,                # IN (n,)
               pynn_idx n, double lr, double momentum, int nesterov, double wd,
               pynn_ctx ctx) noexcept:
    if n == 0:
        return
    with nogil:
        if floating is float:
            pynn_sgd_update_f32(param, velocity, grad, n, lr, momentum, nesterov, wd, ctx)
        else:
            pynn_sgd_update_f64(param, velocity, grad, n, lr, momentum, nesterov, wd, ctx)


def sgd_update(param, grad, velocity, lr, momentum=0.0, nesterov=False, weight_decay=0.0):
    """SGD step in place. See pynn.reference.sgd_update."""
    if not (_nonneg(lr) and _nonneg(weight_decay) and _unit(momentum, False)
            and (velocity is not None) == (<double>momentum > 0.0)
            and _plain_buffers((param, grad, velocity))):
        param, grad, velocity, lr, momentum, weight_decay = _ref.check_sgd(
            param, grad, velocity, lr, momentum, weight_decay)
        grad = _checks.contiguous(grad)
    cdef pynn_idx n = cnp.PyArray_SIZE(<cnp.ndarray>param)
    cdef int nes = bool(nesterov)
    if cnp.PyArray_TYPE(<cnp.ndarray>param) == cnp.NPY_FLOAT32:
        _sgd[float](<float *>_p(param), <float *>_p(velocity), <const float *>_p(grad), n,
                    lr, momentum, nes, weight_decay, get_ctx())
    else:
        _sgd[double](<double *>_p(param), <double *>_p(velocity), <const double *>_p(grad), n,
                     lr, momentum, nes, weight_decay, get_ctx())


cdef void _adam(floating *param, floating *m, floating *v,       # IN/OUT (n,)
                const floating *grad,                            # IN (n,)
                pynn_idx n, double lr, double beta_1, double beta_2, double epsilon,
                int64_t step, double wd, pynn_ctx ctx) noexcept:
    if n == 0:
        return
    with nogil:
        if floating is float:
            pynn_adam_update_f32(param, m, v, grad, n, lr, beta_1, beta_2, epsilon, step, wd,
                                 ctx)
        else:
            pynn_adam_update_f64(param, m, v, grad, n, lr, beta_1, beta_2, epsilon, step, wd,
                                 ctx)


def adam_update(param, grad, m, v, lr, beta_1=0.9, beta_2=0.999, epsilon=1e-7, step=1,
                weight_decay=0.0):
    """Adam / AdamW step in place. See pynn.reference.adam_update."""
    if not (_nonneg(lr) and _nonneg(weight_decay) and _unit(beta_1, True)
            and _unit(beta_2, True) and _fast.float_in(epsilon, 0.0, INFINITY, True, False)
            and _fast.int_in(step, 1) and m is not None and v is not None
            and _plain_buffers((param, grad, m, v))):
        param, grad, m, v, lr, beta_1, beta_2, epsilon, step, weight_decay = _ref.check_adam(
            param, grad, m, v, lr, beta_1, beta_2, epsilon, step, weight_decay)
        grad = _checks.contiguous(grad)
    cdef pynn_idx n = cnp.PyArray_SIZE(<cnp.ndarray>param)
    if cnp.PyArray_TYPE(<cnp.ndarray>param) == cnp.NPY_FLOAT32:
        _adam[float](<float *>_p(param), <float *>_p(m), <float *>_p(v),
                     <const float *>_p(grad), n, lr, beta_1, beta_2, epsilon, step,
                     weight_decay, get_ctx())
    else:
        _adam[double](<double *>_p(param), <double *>_p(m), <double *>_p(v),
                      <const double *>_p(grad), n, lr, beta_1, beta_2, epsilon, step,
                      weight_decay, get_ctx())


cdef void _rmsprop(floating *param, floating *sq_avg,               # IN/OUT (n,)
                   floating *velocity, floating *mean_grad,         # IN/OUT (n,) or NULL
                   const floating *grad,                            # IN (n,)
                   pynn_idx n, double lr, double rho, double epsilon, double momentum,
                   double wd, pynn_ctx ctx) noexcept:
    if n == 0:
        return
    with nogil:
        if floating is float:
            pynn_rmsprop_update_f32(param, sq_avg, velocity, mean_grad, grad, n, lr, rho,
                                    epsilon, momentum, wd, ctx)
        else:
            pynn_rmsprop_update_f64(param, sq_avg, velocity, mean_grad, grad, n, lr, rho,
                                    epsilon, momentum, wd, ctx)


def rmsprop_update(param, grad, sq_avg, lr, rho=0.9, epsilon=1e-7, momentum=0.0,
                   velocity=None, centered=False, mean_grad=None, weight_decay=0.0):
    """RMSprop step in place. See pynn.reference.rmsprop_update."""
    if not (_nonneg(lr) and _nonneg(weight_decay) and _unit(rho, True)
            and _fast.float_in(epsilon, 0.0, INFINITY, True, False) and _unit(momentum, False)
            and (velocity is not None) == (<double>momentum > 0.0)
            and (centered is True or centered is False)
            and (mean_grad is not None) == (centered is True) and sq_avg is not None
            and _plain_buffers((param, grad, sq_avg, velocity, mean_grad))):
        param, grad, sq_avg, velocity, mean_grad, lr, rho, epsilon, momentum, weight_decay = (
            _ref.check_rmsprop(param, grad, sq_avg, lr, rho, epsilon, momentum, velocity,
                               centered, mean_grad, weight_decay))
        grad = _checks.contiguous(grad)
    cdef pynn_idx n = cnp.PyArray_SIZE(<cnp.ndarray>param)
    if cnp.PyArray_TYPE(<cnp.ndarray>param) == cnp.NPY_FLOAT32:
        _rmsprop[float](<float *>_p(param), <float *>_p(sq_avg), <float *>_p(velocity),
                        <float *>_p(mean_grad), <const float *>_p(grad), n, lr, rho, epsilon,
                        momentum, weight_decay, get_ctx())
    else:
        _rmsprop[double](<double *>_p(param), <double *>_p(sq_avg), <double *>_p(velocity),
                         <double *>_p(mean_grad), <const double *>_p(grad), n, lr, rho,
                         epsilon, momentum, weight_decay, get_ctx())


cdef void _adagrad(floating *param, floating *accum,                # IN/OUT (n,)
                   const floating *grad,                            # IN (n,)
                   pynn_idx n, double lr, double epsilon, double wd, pynn_ctx ctx) noexcept:
    if n == 0:
        return
    with nogil:
        if floating is float:
            pynn_adagrad_update_f32(param, accum, grad, n, lr, epsilon, wd, ctx)
        else:
            pynn_adagrad_update_f64(param, accum, grad, n, lr, epsilon, wd, ctx)


def adagrad_update(param, grad, accum, lr, epsilon=1e-7, weight_decay=0.0):
    """Adagrad step in place. See pynn.reference.adagrad_update."""
    if not (_nonneg(lr) and _nonneg(weight_decay)
            and _fast.float_in(epsilon, 0.0, INFINITY, True, False) and accum is not None
            and _plain_buffers((param, grad, accum))):
        param, grad, accum, lr, epsilon, weight_decay = _ref.check_adagrad(
            param, grad, accum, lr, epsilon, weight_decay)
        grad = _checks.contiguous(grad)
    cdef pynn_idx n = cnp.PyArray_SIZE(<cnp.ndarray>param)
    if cnp.PyArray_TYPE(<cnp.ndarray>param) == cnp.NPY_FLOAT32:
        _adagrad[float](<float *>_p(param), <float *>_p(accum), <const float *>_p(grad), n, lr,
                        epsilon, weight_decay, get_ctx())
    else:
        _adagrad[double](<double *>_p(param), <double *>_p(accum), <const double *>_p(grad),
                         n, lr, epsilon, weight_decay, get_ctx())


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
