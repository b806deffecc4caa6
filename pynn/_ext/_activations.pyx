# cython: language_level=3
"""C backend of pynn.reference.activations: elementwise activations and softmax / log_softmax
over the last axis, forward and backward.

Each wrapper checks its arguments with pynn._checks (the same checks, in the same order, as
the reference), copies a non-contiguous input to C order (the kernels take flat arrays), and
makes one C call with the GIL released. Forward out may be x; backward out may be dy.

Fast path: a plainly valid call (exact, C-contiguous, aligned, native arrays of one float
dtype, see pynn/_ext/_fast.pxd) is recognised with C-level tests and goes straight to C;
every other call, valid or not, takes the pynn._checks path above, so errors are unchanged.
"""
import numpy as np
cimport numpy as cnp
from cython cimport floating
from libc.math cimport INFINITY

from pynn import _checks
from pynn._ext._csrc cimport pynn_idx, pynn_ctx
from pynn._ext._runtime cimport get_ctx
from pynn._ext cimport _fast

cnp.import_array()

cdef extern from "activations.h" nogil:
    void pynn_grad_mul_f32(float *dx, const float *grad, const float *dy, pynn_idx n,
        pynn_ctx ctx)
    void pynn_grad_mul_f64(double *dx, const double *grad, const double *dy, pynn_idx n,
        pynn_ctx ctx)
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
    void pynn_gelu_forward_grad_f32(float *out, float *grad, const float *x, pynn_idx n,
        int approximate, pynn_ctx ctx)
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
    void pynn_gelu_forward_grad_f64(double *out, double *grad, const double *x, pynn_idx n,
        int approximate, pynn_ctx ctx)
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
           "tanh_forward", "tanh_backward", "gelu_forward", "gelu_backward", "gelu_forward_grad",
           "softplus_forward", "softplus_backward", "silu_forward", "silu_backward",
           "swish_forward", "swish_backward", "softmax_forward", "softmax_backward",
           "log_softmax_forward", "log_softmax_backward", "grad_mul"]

cdef enum:
    RELU, LEAKY_RELU, ELU, SIGMOID, TANH, GELU, SOFTPLUS, SILU, SOFTMAX, LOG_SOFTMAX, GRAD_MUL


cdef void _forward(int op,
                   floating *o,                # OUT (n,)
                   const floating *p,          # IN  (n,), may be o
                   pynn_idx n, pynn_idx N, double alpha, int flag, pynn_ctx ctx) noexcept:
    """One kernel call: op over n elements (softmax family: n // N rows of N)."""
    if n == 0:
        return
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
                    floating *o,               # OUT (n,) dx, may be g
                    const floating *p,         # IN  (n,) forward input (softmax family: output)
                    const floating *g,         # IN  (n,) dy
                    pynn_idx n, pynn_idx N, double alpha, int flag, pynn_ctx ctx) noexcept:
    if n == 0:
        return
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
            elif op == GRAD_MUL:
                pynn_grad_mul_f32(o, p, g, n, ctx)
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
            elif op == GRAD_MUL:
                pynn_grad_mul_f64(o, p, g, n, ctx)


cdef object _run_forward(int op, x, out, double alpha=0.0, int flag=0, bint rows=False):
    # fast path: plain x (ndim >= 1 for the softmax family) and out that is x, new or disjoint
    cdef int t = _fast.float_type(x)
    checked = None
    if t and not (rows and cnp.PyArray_NDIM(<cnp.ndarray>x) == 0):
        checked = _fast.new_like(out, <cnp.ndarray>x)
        if checked is not None and not _fast.inplace_ok(checked, x):
            checked = None
    if checked is None:
        x = _checks.float_array(x, "x", min_ndim=1 if rows else None)
        checked = _checks.out_array(out, x.shape, x.dtype, inputs=(x,), allow_inplace=True)
        x = _checks.contiguous(x)
    cdef cnp.ndarray X = <cnp.ndarray>x, O = <cnp.ndarray>checked
    cdef int nd = cnp.PyArray_NDIM(X)
    cdef pynn_idx n = cnp.PyArray_SIZE(X), N = cnp.PyArray_DIM(X, nd - 1) if nd else 1
    if cnp.PyArray_TYPE(X) == cnp.NPY_FLOAT32:
        _forward[float](op, <float *>cnp.PyArray_DATA(O), <const float *>cnp.PyArray_DATA(X),
                        n, N, alpha, flag, get_ctx())
    else:
        _forward[double](op, <double *>cnp.PyArray_DATA(O),
                         <const double *>cnp.PyArray_DATA(X), n, N, alpha, flag, get_ctx())
    return checked


cdef object _run_backward(int op, x, dy, out, double alpha=0.0, int flag=0, xname="x",
                          bint rows=False):
    # fast path: plain x and dy of one type and shape, out new or dy or disjoint, out != x
    cdef int t = _fast.float_type(x)
    checked = None
    if (t and not (rows and cnp.PyArray_NDIM(<cnp.ndarray>x) == 0)
            and _fast.plain_like(dy, <cnp.ndarray>x, False)):
        checked = _fast.new_like(out, <cnp.ndarray>x)
        if checked is not None and not (_fast.inplace_ok(checked, x)
                                        and _fast.inplace_ok(checked, dy)):
            checked = None
    if checked is None:
        x = _checks.float_array(x, xname, min_ndim=1 if rows else None)
        dy = _checks.float_array(dy, "dy")
        _checks.same_dtype(x.dtype, dy=dy)
        _checks.same_shape(x.shape, dy=dy)
        checked = _checks.out_array(out, x.shape, x.dtype, inputs=(x, dy), allow_inplace=True)
        x, dy = _checks.contiguous(x), _checks.contiguous(dy)
    cdef cnp.ndarray X = <cnp.ndarray>x, G = <cnp.ndarray>dy, O = <cnp.ndarray>checked
    cdef int nd = cnp.PyArray_NDIM(X)
    cdef pynn_idx n = cnp.PyArray_SIZE(X), N = cnp.PyArray_DIM(X, nd - 1) if nd else 1
    if cnp.PyArray_TYPE(X) == cnp.NPY_FLOAT32:
        _backward[float](op, <float *>cnp.PyArray_DATA(O), <const float *>cnp.PyArray_DATA(X),
                         <const float *>cnp.PyArray_DATA(G), n, N, alpha, flag, get_ctx())
    else:
        _backward[double](op, <double *>cnp.PyArray_DATA(O),
                          <const double *>cnp.PyArray_DATA(X),
                          <const double *>cnp.PyArray_DATA(G), n, N, alpha, flag, get_ctx())
    return checked


cdef double _alpha(alpha) except? -1.0:
    """alpha as finite_scalar gives it, without a Python call for a finite float."""
    if _fast.float_in(alpha, -INFINITY, INFINITY, False, False):
        return alpha
    return _checks.finite_scalar(alpha, "alpha")


def relu_forward(x, out=None):
    """max(x, 0), any shape. See pynn.reference.relu_forward."""
    return _run_forward(RELU, x, out)


def relu_backward(x, dy, out=None):
    """dy where x > 0, else 0."""
    return _run_backward(RELU, x, dy, out)


def leaky_relu_forward(x, alpha=0.2, out=None):
    """x for x >= 0, alpha * x otherwise."""
    a = _alpha(alpha)
    return _run_forward(LEAKY_RELU, x, out, a)


def leaky_relu_backward(x, dy, alpha=0.2, out=None):
    """dy for x > 0, alpha * dy otherwise."""
    a = _alpha(alpha)
    return _run_backward(LEAKY_RELU, x, dy, out, a)


def elu_forward(x, alpha=1.0, out=None):
    """x for x > 0, alpha * (exp(x) - 1) otherwise."""
    a = _alpha(alpha)
    return _run_forward(ELU, x, out, a)


def elu_backward(x, dy, alpha=1.0, out=None):
    """dy for x > 0, dy * alpha * exp(x) otherwise."""
    a = _alpha(alpha)
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


def gelu_forward_grad(x, approximate=False, out=None, grad=None):
    """(gelu(x), gelu'(x)) in one pass. See pynn.reference.gelu_forward_grad."""
    x = _checks.float_array(x, "x")
    out = _checks.out_array(out, x.shape, x.dtype, inputs=(x,), allow_inplace=True)
    grad = _checks.out_array(grad, x.shape, x.dtype, "grad", inputs=(x, out))
    x = _checks.contiguous(x)
    cdef cnp.ndarray X = <cnp.ndarray>x, O = <cnp.ndarray>out, G = <cnp.ndarray>grad
    cdef pynn_idx n = cnp.PyArray_SIZE(X)
    cdef int flag = 1 if approximate else 0
    cdef pynn_ctx ctx = get_ctx()
    cdef void *po = cnp.PyArray_DATA(O)
    cdef void *pg = cnp.PyArray_DATA(G)
    cdef const void *px = cnp.PyArray_DATA(X)
    if cnp.PyArray_TYPE(X) == cnp.NPY_FLOAT32:
        with nogil:
            pynn_gelu_forward_grad_f32(<float *>po, <float *>pg, <const float *>px, n, flag, ctx)
    else:
        with nogil:
            pynn_gelu_forward_grad_f64(<double *>po, <double *>pg, <const double *>px, n, flag,
                                       ctx)
    return out, grad


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
    return _run_forward(SOFTMAX, x, out, 0.0, 0, True)


def softmax_backward(y, dy, out=None):
    """y * (dy - sum(y * dy)) over the last axis, from the forward output y."""
    return _run_backward(SOFTMAX, y, dy, out, 0.0, 0, "y", True)


def log_softmax_forward(x, out=None):
    """(x - max) - log sum exp(x - max) over the last axis (ndim >= 1)."""
    return _run_forward(LOG_SOFTMAX, x, out, 0.0, 0, True)


def log_softmax_backward(y, dy, out=None):
    """dy - exp(y) * sum(dy) over the last axis, from the forward output y."""
    return _run_backward(LOG_SOFTMAX, y, dy, out, 0.0, 0, "y", True)


def grad_mul(grad, dy, out=None):
    """dy * grad elementwise: the backward of an activation whose forward stored its
    derivative (gelu_forward_grad's grad). See pynn.reference.grad_mul."""
    return _run_backward(GRAD_MUL, grad, dy, out, 0.0, 0, "grad")
