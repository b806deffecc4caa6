# cython: language_level=3
"""C backend of pynn.reference.activations: elementwise activations and softmax / log_softmax
over the last axis, forward and backward.

Each wrapper checks its arguments with pynn._checks (the same checks, in the same order, as
the reference), copies a non-contiguous input to C order (the kernels take flat arrays), and
makes one C call with the GIL released. Forward out may be x; backward out may be dy.
"""
import numpy as np
from cython cimport floating

from pynn import _checks
from pynn._ext._csrc cimport pynn_idx, pynn_ctx
from pynn._ext._runtime cimport get_ctx

cdef extern from "activations.h" nogil:
    void pynn_relu_forward_f32(float *out, const float *x, pynn_idx n, pynn_ctx ctx)
    void pynn_relu_backward_f32(float *dx, const float *x, const float *dy, pynn_idx n,
        pynn_ctx ctx)
    void pynn_sigmoid_forward_f32(float *out, const float *x, pynn_idx n, pynn_ctx ctx)
    void pynn_sigmoid_backward_f32(float *dx, const float *x, const float *dy, pynn_idx n,
        pynn_ctx ctx)
    void pynn_tanh_forward_f32(float *out, const float *x, pynn_idx n, pynn_ctx ctx)
    void pynn_tanh_backward_f32(float *dx, const float *x, const float *dy, pynn_idx n,
        pynn_ctx ctx)
    void pynn_softplus_forward_f32(float *out, const float *x, pynn_idx n, pynn_ctx ctx)
    void pynn_softplus_backward_f32(float *dx, const float *x, const float *dy, pynn_idx n,
        pynn_ctx ctx)
    void pynn_silu_forward_f32(float *out, const float *x, pynn_idx n, pynn_ctx ctx)
    void pynn_silu_backward_f32(float *dx, const float *x, const float *dy, pynn_idx n,
        pynn_ctx ctx)
    void pynn_leaky_relu_forward_f32(float *out, const float *x, pynn_idx n, float alpha,
        pynn_ctx ctx)
    void pynn_leaky_relu_backward_f32(float *dx, const float *x, const float *dy, pynn_idx n,
        float alpha, pynn_ctx ctx)
    void pynn_elu_forward_f32(float *out, const float *x, pynn_idx n, float alpha,
        pynn_ctx ctx)
    void pynn_elu_backward_f32(float *dx, const float *x, const float *dy, pynn_idx n,
        float alpha, pynn_ctx ctx)
    void pynn_gelu_forward_f32(float *out, const float *x, pynn_idx n, int approximate,
        pynn_ctx ctx)
    void pynn_gelu_backward_f32(float *dx, const float *x, const float *dy, pynn_idx n,
        int approximate, pynn_ctx ctx)
    void pynn_softmax_forward_f32(float *out, const float *x, pynn_idx R, pynn_idx N,
        pynn_ctx ctx)
    void pynn_softmax_backward_f32(float *dx, const float *y, const float *dy, pynn_idx R,
        pynn_idx N, pynn_ctx ctx)
    void pynn_log_softmax_forward_f32(float *out, const float *x, pynn_idx R, pynn_idx N,
        pynn_ctx ctx)
    void pynn_log_softmax_backward_f32(float *dx, const float *y, const float *dy, pynn_idx R,
        pynn_idx N, pynn_ctx ctx)
    void pynn_relu_forward_f64(double *out, const double *x, pynn_idx n, pynn_ctx ctx)
    void pynn_relu_backward_f64(double *dx, const double *x, const double *dy, pynn_idx n,
        pynn_ctx ctx)
    void pynn_sigmoid_forward_f64(double *out, const double *x, pynn_idx n, pynn_ctx ctx)
    void pynn_sigmoid_backward_f64(double *dx, const double *x, const double *dy, pynn_idx n,
        pynn_ctx ctx)
    void pynn_tanh_forward_f64(double *out, const double *x, pynn_idx n, pynn_ctx ctx)
    void pynn_tanh_backward_f64(double *dx, const double *x, const double *dy, pynn_idx n,
        pynn_ctx ctx)
    void pynn_softplus_forward_f64(double *out, const double *x, pynn_idx n, pynn_ctx ctx)
    void pynn_softplus_backward_f64(double *dx, const double *x, const double *dy, pynn_idx n,
        pynn_ctx ctx)
    void pynn_silu_forward_f64(double *out, const double *x, pynn_idx n, pynn_ctx ctx)
    void pynn_silu_backward_f64(double *dx, const double *x, const double *dy, pynn_idx n,
        pynn_ctx ctx)
    void pynn_leaky_relu_forward_f64(double *out, const double *x, pynn_idx n, double alpha,
        pynn_ctx ctx)
    void pynn_leaky_relu_backward_f64(double *dx, const double *x, const double *dy, pynn_idx n,
        double alpha, pynn_ctx ctx)
    void pynn_elu_forward_f64(double *out, const double *x, pynn_idx n, double alpha,
        pynn_ctx ctx)
    void pynn_elu_backward_f64(double *dx, const double *x, const double *dy, pynn_idx n,
        double alpha, pynn_ctx ctx)
    void pynn_gelu_forward_f64(double *out, const double *x, pynn_idx n, int approximate,
        pynn_ctx ctx)
    void pynn_gelu_backward_f64(double *dx, const double *x, const double *dy, pynn_idx n,
        int approximate, pynn_ctx ctx)
    void pynn_softmax_forward_f64(double *out, const double *x, pynn_idx R, pynn_idx N,
        pynn_ctx ctx)
    void pynn_softmax_backward_f64(double *dx, const double *y, const double *dy, pynn_idx R,
        pynn_idx N, pynn_ctx ctx)
    void pynn_log_softmax_forward_f64(double *out, const double *x, pynn_idx R, pynn_idx N,
        pynn_ctx ctx)
    void pynn_log_softmax_backward_f64(double *dx, const double *y, const double *dy, pynn_idx R,
        pynn_idx N, pynn_ctx ctx)

__all__ = ["relu_forward", "relu_backward", "leaky_relu_forward", "leaky_relu_backward",
           "elu_forward", "elu_backward", "sigmoid_forward", "sigmoid_backward",
           "tanh_forward", "tanh_backward", "gelu_forward", "gelu_backward",
           "softplus_forward", "softplus_backward", "silu_forward", "silu_backward",
           "swish_forward", "swish_backward", "softmax_forward", "softmax_backward",
           "log_softmax_forward", "log_softmax_backward"]

cdef enum:
    RELU, LEAKY_RELU, ELU, SIGMOID, TANH, GELU, SOFTPLUS, SILU, SOFTMAX, LOG_SOFTMAX


cdef void _forward(int op,
                   floating[::1] out,          # OUT (n,)
                   const floating[::1] x,      # IN  (n,)
                   pynn_idx N, double alpha, int flag, pynn_ctx ctx) noexcept:
    """One kernel call: op over n elements (softmax family: n // N rows of N)."""
    cdef pynn_idx n = x.shape[0]
    if n == 0:
        return
    cdef floating *o = &out[0]
    cdef const floating *p = &x[0]
    with nogil:
        if floating is float:
            if op == RELU:
                pynn_relu_forward_f32(o, p, n, ctx)
            elif op == LEAKY_RELU:
                pynn_leaky_relu_forward_f32(o, p, n, <float>alpha, ctx)
            elif op == ELU:
                pynn_elu_forward_f32(o, p, n, <float>alpha, ctx)
            elif op == SIGMOID:
                pynn_sigmoid_forward_f32(o, p, n, ctx)
            elif op == TANH:
                pynn_tanh_forward_f32(o, p, n, ctx)
            elif op == GELU:
                pynn_gelu_forward_f32(o, p, n, flag, ctx)
            elif op == SOFTPLUS:
                pynn_softplus_forward_f32(o, p, n, ctx)
            elif op == SILU:
                pynn_silu_forward_f32(o, p, n, ctx)
            elif op == SOFTMAX:
                pynn_softmax_forward_f32(o, p, n // N, N, ctx)
            elif op == LOG_SOFTMAX:
                pynn_log_softmax_forward_f32(o, p, n // N, N, ctx)
        else:
            if op == RELU:
                pynn_relu_forward_f64(o, p, n, ctx)
            elif op == LEAKY_RELU:
                pynn_leaky_relu_forward_f64(o, p, n, <double>alpha, ctx)
            elif op == ELU:
                pynn_elu_forward_f64(o, p, n, <double>alpha, ctx)
            elif op == SIGMOID:
                pynn_sigmoid_forward_f64(o, p, n, ctx)
            elif op == TANH:
                pynn_tanh_forward_f64(o, p, n, ctx)
            elif op == GELU:
                pynn_gelu_forward_f64(o, p, n, flag, ctx)
            elif op == SOFTPLUS:
                pynn_softplus_forward_f64(o, p, n, ctx)
            elif op == SILU:
                pynn_silu_forward_f64(o, p, n, ctx)
            elif op == SOFTMAX:
                pynn_softmax_forward_f64(o, p, n // N, N, ctx)
            elif op == LOG_SOFTMAX:
                pynn_log_softmax_forward_f64(o, p, n // N, N, ctx)


cdef void _backward(int op,
                    floating[::1] dx,          # OUT (n,)
                    const floating[::1] x,     # IN  (n,) forward input (softmax family: output)
                    const floating[::1] dy,    # IN  (n,)
                    pynn_idx N, double alpha, int flag, pynn_ctx ctx) noexcept:
    cdef pynn_idx n = x.shape[0]
    if n == 0:
        return
    cdef floating *o = &dx[0]
    cdef const floating *p = &x[0]
    cdef const floating *g = &dy[0]
    with nogil:
        if floating is float:
            if op == RELU:
                pynn_relu_backward_f32(o, p, g, n, ctx)
            elif op == LEAKY_RELU:
                pynn_leaky_relu_backward_f32(o, p, g, n, <float>alpha, ctx)
            elif op == ELU:
                pynn_elu_backward_f32(o, p, g, n, <float>alpha, ctx)
            elif op == SIGMOID:
                pynn_sigmoid_backward_f32(o, p, g, n, ctx)
            elif op == TANH:
                pynn_tanh_backward_f32(o, p, g, n, ctx)
            elif op == GELU:
                pynn_gelu_backward_f32(o, p, g, n, flag, ctx)
            elif op == SOFTPLUS:
                pynn_softplus_backward_f32(o, p, g, n, ctx)
            elif op == SILU:
                pynn_silu_backward_f32(o, p, g, n, ctx)
            elif op == SOFTMAX:
                pynn_softmax_backward_f32(o, p, g, n // N, N, ctx)
            elif op == LOG_SOFTMAX:
                pynn_log_softmax_backward_f32(o, p, g, n // N, N, ctx)
        else:
            if op == RELU:
                pynn_relu_backward_f64(o, p, g, n, ctx)
            elif op == LEAKY_RELU:
                pynn_leaky_relu_backward_f64(o, p, g, n, <double>alpha, ctx)
            elif op == ELU:
                pynn_elu_backward_f64(o, p, g, n, <double>alpha, ctx)
            elif op == SIGMOID:
                pynn_sigmoid_backward_f64(o, p, g, n, ctx)
            elif op == TANH:
                pynn_tanh_backward_f64(o, p, g, n, ctx)
            elif op == GELU:
                pynn_gelu_backward_f64(o, p, g, n, flag, ctx)
            elif op == SOFTPLUS:
                pynn_softplus_backward_f64(o, p, g, n, ctx)
            elif op == SILU:
                pynn_silu_backward_f64(o, p, g, n, ctx)
            elif op == SOFTMAX:
                pynn_softmax_backward_f64(o, p, g, n // N, N, ctx)
            elif op == LOG_SOFTMAX:
                pynn_log_softmax_backward_f64(o, p, g, n // N, N, ctx)


def _run_forward(int op, x, out, double alpha=0.0, int flag=0, min_ndim=None):
    x = _checks.float_array(x, "x", min_ndim=min_ndim)
    out = _checks.out_array(out, x.shape, x.dtype, inputs=(x,), allow_inplace=True)
    xc = _checks.contiguous(x)
    cdef pynn_idx N = x.shape[x.ndim - 1] if x.ndim else 1
    if x.dtype == np.float32:
        _forward[float](op, out.reshape(-1), xc.reshape(-1), N, alpha, flag, get_ctx())
    else:
        _forward[double](op, out.reshape(-1), xc.reshape(-1), N, alpha, flag, get_ctx())
    return out


def _run_backward(int op, x, dy, out, double alpha=0.0, int flag=0, xname="x", min_ndim=None):
    x = _checks.float_array(x, xname, min_ndim=min_ndim)
    dy = _checks.float_array(dy, "dy")
    _checks.same_dtype(x.dtype, dy=dy)
    _checks.same_shape(x.shape, dy=dy)
    out = _checks.out_array(out, x.shape, x.dtype, inputs=(x, dy), allow_inplace=True)
    xc, dyc = _checks.contiguous(x), _checks.contiguous(dy)
    cdef pynn_idx N = x.shape[x.ndim - 1] if x.ndim else 1
    if x.dtype == np.float32:
        _backward[float](op, out.reshape(-1), xc.reshape(-1), dyc.reshape(-1), N, alpha, flag,
                         get_ctx())
    else:
        _backward[double](op, out.reshape(-1), xc.reshape(-1), dyc.reshape(-1), N, alpha, flag,
                          get_ctx())
    return out


def relu_forward(x, out=None):
    """max(x, 0), any shape. See pynn.reference.relu_forward."""
    return _run_forward(RELU, x, out)


def relu_backward(x, dy, out=None):
    """dy where x > 0, else 0."""
    return _run_backward(RELU, x, dy, out)


def leaky_relu_forward(x, alpha=0.2, out=None):
    """x for x >= 0, alpha * x otherwise."""
    a = _checks.finite_scalar(alpha, "alpha")
    return _run_forward(LEAKY_RELU, x, out, a)


def leaky_relu_backward(x, dy, alpha=0.2, out=None):
    """dy for x > 0, alpha * dy otherwise."""
    a = _checks.finite_scalar(alpha, "alpha")
    return _run_backward(LEAKY_RELU, x, dy, out, a)


def elu_forward(x, alpha=1.0, out=None):
    """x for x > 0, alpha * (exp(x) - 1) otherwise."""
    a = _checks.finite_scalar(alpha, "alpha")
    return _run_forward(ELU, x, out, a)


def elu_backward(x, dy, alpha=1.0, out=None):
    """dy for x > 0, dy * alpha * exp(x) otherwise."""
    a = _checks.finite_scalar(alpha, "alpha")
    return _run_backward(ELU, x, dy, out, a)


def sigmoid_forward(x, out=None):
    """1 / (1 + exp(-x)), without overflow for large |x|."""
    return _run_forward(SIGMOID, x, out)


def sigmoid_backward(x, dy, out=None):
    """dy * s * (1 - s), s = sigmoid(x)."""
    return _run_backward(SIGMOID, x, dy, out)


def tanh_forward(x, out=None):
    """tanh(x)."""
    return _run_forward(TANH, x, out)


def tanh_backward(x, dy, out=None):
    """dy * (1 - tanh(x)^2)."""
    return _run_backward(TANH, x, dy, out)


def gelu_forward(x, approximate=False, out=None):
    """x * Phi(x), or the tanh approximation with approximate=True."""
    return _run_forward(GELU, x, out, 0.0, 1 if approximate else 0)


def gelu_backward(x, dy, approximate=False, out=None):
    """dy * gelu'(x)."""
    return _run_backward(GELU, x, dy, out, 0.0, 1 if approximate else 0)


def softplus_forward(x, out=None):
    """log(1 + exp(x)) = max(x, 0) + log1p(exp(-|x|))."""
    return _run_forward(SOFTPLUS, x, out)


def softplus_backward(x, dy, out=None):
    """dy * sigmoid(x)."""
    return _run_backward(SOFTPLUS, x, dy, out)


def silu_forward(x, out=None):
    """x * sigmoid(x) (also called swish)."""
    return _run_forward(SILU, x, out)


def silu_backward(x, dy, out=None):
    """dy * s * (1 + x (1 - s)), s = sigmoid(x)."""
    return _run_backward(SILU, x, dy, out)


swish_forward = silu_forward
swish_backward = silu_backward


def softmax_forward(x, out=None):
    """exp(x - max) / sum exp(x - max) over the last axis (ndim >= 1)."""
    return _run_forward(SOFTMAX, x, out, min_ndim=1)


def softmax_backward(y, dy, out=None):
    """y * (dy - sum(y * dy)) over the last axis, from the forward output y."""
    return _run_backward(SOFTMAX, y, dy, out, xname="y", min_ndim=1)


def log_softmax_forward(x, out=None):
    """(x - max) - log sum exp(x - max) over the last axis (ndim >= 1)."""
    return _run_forward(LOG_SOFTMAX, x, out, min_ndim=1)


def log_softmax_backward(y, dy, out=None):
    """dy - exp(y) * sum(dy) over the last axis, from the forward output y."""
    return _run_backward(LOG_SOFTMAX, y, dy, out, xname="y", min_ndim=1)
