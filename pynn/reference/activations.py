"""Activations, forward and backward: NumPy reference (the spec of csrc/activations.c).

Elementwise functions work on any shape; softmax and log_softmax work over the last axis.
Backward functions take the forward *input* x, except softmax / log_softmax, which take the
forward *output* y. Forward `out` may be x itself and backward `out` may be dy itself.

Stable forms: sigmoid uses exp(-|x|) only; softplus = max(x, 0) + log1p(exp(-|x|)); exact
GELU uses erfc; softmax subtracts the row maximum, and a row of all -inf (fully masked) gives
the uniform distribution 1/N (log_softmax: -log N) instead of NaN.
"""
import math

import numpy as np

from .. import _checks

__all__ = ["relu_forward", "relu_backward", "leaky_relu_forward", "leaky_relu_backward",
           "elu_forward", "elu_backward", "sigmoid_forward", "sigmoid_backward",
           "tanh_forward", "tanh_backward", "gelu_forward", "gelu_backward", "gelu_forward_grad",
           "softplus_forward", "softplus_backward", "silu_forward", "silu_backward",
           "swish_forward", "swish_backward", "softmax_forward", "softmax_backward",
           "log_softmax_forward", "log_softmax_backward", "grad_mul"]

_SQRT1_2 = 0.70710678118654752440     # 1 / sqrt(2)
_INV_SQRT_2PI = 0.39894228040143267794  # 1 / sqrt(2 pi)
_GELU_K0 = 0.79788456080286535588     # sqrt(2 / pi)
_GELU_K1 = 0.044715
# NumPy has no erfc ufunc; math.erfc (C99 libm, float64) applied elementwise
_erfc = np.frompyfunc(math.erfc, 1, 1)


def _forward_args(x, out, min_ndim=None):
    x = _checks.float_array(x, "x", min_ndim=min_ndim)
    out = _checks.out_array(out, x.shape, x.dtype, inputs=(x,), allow_inplace=True)
    return x, out


def _backward_args(x, dy, out, xname="x", min_ndim=None):
    x = _checks.float_array(x, xname, min_ndim=min_ndim)
    dy = _checks.float_array(dy, "dy")
    _checks.same_dtype(x.dtype, dy=dy)
    _checks.same_shape(x.shape, dy=dy)
    out = _checks.out_array(out, x.shape, x.dtype, inputs=(x, dy), allow_inplace=True)
    return x, dy, out


def _alpha(alpha):
    return _checks.finite_scalar(alpha, "alpha")


def _sigmoid(x):
    e = np.exp(-np.abs(x))          # x.shape, in (0, 1]
    r = 1 / (1 + e)                 # x.shape
    return np.where(x < 0, e * r, r)  # x.shape


def _erfc_of(v):
    return np.asarray(_erfc(v.astype(np.float64)), dtype=np.float64).astype(v.dtype)  # v.shape


def relu_forward(x, out=None):
    """max(x, 0), any shape; NaN passes through."""
    x, out = _forward_args(x, out)
    out[...] = np.where(x < 0, 0, x)  # x.shape
    return out


def relu_backward(x, dy, out=None):
    """dy where x > 0, else 0 (the derivative at 0 is taken as 0)."""
    x, dy, out = _backward_args(x, dy, out)
    out[...] = np.where(x > 0, dy, 0)  # x.shape
    return out


def leaky_relu_forward(x, alpha=0.2, out=None):
    """x for x >= 0, alpha * x otherwise."""
    a = _alpha(alpha)
    x, out = _forward_args(x, out)
    out[...] = np.where(x < 0, x.dtype.type(a) * x, x)  # x.shape
    return out


def leaky_relu_backward(x, dy, alpha=0.2, out=None):
    """dy for x > 0, alpha * dy otherwise."""
    a = _alpha(alpha)
    x, dy, out = _backward_args(x, dy, out)
    out[...] = np.where(x > 0, dy, x.dtype.type(a) * dy)  # x.shape
    return out


def elu_forward(x, alpha=1.0, out=None):
    """x for x > 0, alpha * (exp(x) - 1) otherwise."""
    a = _alpha(alpha)
    x, out = _forward_args(x, out)
    out[...] = np.where(x > 0, x, x.dtype.type(a) * np.expm1(np.minimum(x, 0)))  # x.shape
    return out


def elu_backward(x, dy, alpha=1.0, out=None):
    """dy for x > 0, dy * alpha * exp(x) otherwise."""
    a = _alpha(alpha)
    x, dy, out = _backward_args(x, dy, out)
    out[...] = np.where(x > 0, dy, dy * x.dtype.type(a) * np.exp(np.minimum(x, 0)))  # x.shape
    return out


def sigmoid_forward(x, out=None):
    """1 / (1 + exp(-x)), without overflow for large |x|."""
    x, out = _forward_args(x, out)
    out[...] = _sigmoid(x)  # x.shape
    return out


def sigmoid_backward(x, dy, out=None):
    """dy * s * (1 - s), s = sigmoid(x)."""
    x, dy, out = _backward_args(x, dy, out)
    s = _sigmoid(x)          # x.shape
    out[...] = dy * s * (1 - s)  # x.shape
    return out


def tanh_forward(x, out=None):
    """tanh(x)."""
    x, out = _forward_args(x, out)
    out[...] = np.tanh(x)  # x.shape
    return out


def tanh_backward(x, dy, out=None):
    """dy * (1 - tanh(x)^2)."""
    x, dy, out = _backward_args(x, dy, out)
    t = np.tanh(x)             # x.shape
    out[...] = dy * (1 - t * t)  # x.shape
    return out


def gelu_forward(x, approximate=False, out=None):
    """x * Phi(x) = 0.5 x erfc(-x / sqrt 2); with approximate=True the tanh form
    0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3)))."""
    x, out = _forward_args(x, out)
    t = x.dtype.type
    if approximate:
        u = t(_GELU_K0) * (x + t(_GELU_K1) * x * x * x)  # x.shape
        out[...] = t(0.5) * x * (1 + np.tanh(u))        # x.shape
    else:
        out[...] = t(0.5) * x * _erfc_of(-x * t(_SQRT1_2))  # x.shape
    return out


def gelu_backward(x, dy, approximate=False, out=None):
    """dy * gelu'(x): Phi(x) + x phi(x), or the derivative of the tanh form."""
    x, dy, out = _backward_args(x, dy, out)
    t = x.dtype.type
    if approximate:
        u = t(_GELU_K0) * (x + t(_GELU_K1) * x * x * x)   # x.shape
        th = np.tanh(u)                                    # x.shape
        du = t(_GELU_K0) * (1 + t(3 * _GELU_K1) * x * x)   # x.shape
        out[...] = dy * (t(0.5) * (1 + th) + t(0.5) * x * (1 - th * th) * du)  # x.shape
    else:
        cdf = t(0.5) * _erfc_of(-x * t(_SQRT1_2))          # x.shape
        pdf = t(_INV_SQRT_2PI) * np.exp(t(-0.5) * x * x)   # x.shape
        out[...] = dy * (cdf + x * pdf)                    # x.shape
    return out


def gelu_forward_grad(x, approximate=False, out=None, grad=None):
    """(gelu(x), gelu'(x)) in one pass, for a layer whose backward is then dy * grad; out may
    be x (in place), grad may not overlap x or out."""
    x, out = _forward_args(x, out)
    grad = _checks.out_array(grad, x.shape, x.dtype, "grad", inputs=(x, out))
    t = x.dtype.type
    if approximate:
        u = t(_GELU_K0) * (x + t(_GELU_K1) * x * x * x)    # x.shape
        th = np.tanh(u)                                     # x.shape
        du = t(_GELU_K0) * (1 + t(3 * _GELU_K1) * x * x)    # x.shape
        grad[...] = t(0.5) * (1 + th) + t(0.5) * x * (1 - th * th) * du  # x.shape
        out[...] = t(0.5) * x * (1 + th)                    # x.shape
    else:
        e = _erfc_of(-x * t(_SQRT1_2))                      # x.shape, erfc(-x / sqrt 2)
        pdf = t(_INV_SQRT_2PI) * np.exp(t(-0.5) * x * x)    # x.shape
        grad[...] = t(0.5) * e + x * pdf                    # x.shape
        out[...] = t(0.5) * x * e                           # x.shape
    return out, grad


def softplus_forward(x, out=None):
    """log(1 + exp(x)) = max(x, 0) + log1p(exp(-|x|))."""
    x, out = _forward_args(x, out)
    out[...] = np.maximum(x, 0) + np.log1p(np.exp(-np.abs(x)))  # x.shape
    return out


def softplus_backward(x, dy, out=None):
    """dy * sigmoid(x)."""
    x, dy, out = _backward_args(x, dy, out)
    out[...] = dy * _sigmoid(x)  # x.shape
    return out


def silu_forward(x, out=None):
    """x * sigmoid(x) (also called swish)."""
    x, out = _forward_args(x, out)
    out[...] = x * _sigmoid(x)  # x.shape
    return out


def silu_backward(x, dy, out=None):
    """dy * s * (1 + x (1 - s)), s = sigmoid(x)."""
    x, dy, out = _backward_args(x, dy, out)
    s = _sigmoid(x)                      # x.shape
    out[...] = dy * s * (1 + x * (1 - s))  # x.shape
    return out


swish_forward = silu_forward
swish_backward = silu_backward


def _shifted(x):
    """x - max over the last axis, with fully -inf rows shifted to all zeros (uniform)."""
    m = np.max(x, axis=-1, keepdims=True, initial=-np.inf)  # (..., 1)
    masked = m == -np.inf                   # (..., 1) rows with every entry -inf
    z = x - np.where(masked, 0, m)          # x.shape
    return np.where(masked, 0, z)           # x.shape


def softmax_forward(x, out=None):
    """exp(x - max) / sum exp(x - max) over the last axis (ndim >= 1)."""
    x, out = _forward_args(x, out, min_ndim=1)
    e = np.exp(_shifted(x))                          # x.shape
    out[...] = e / np.sum(e, axis=-1, keepdims=True)  # x.shape
    return out


def softmax_backward(y, dy, out=None):
    """y * (dy - sum(y * dy)) over the last axis, from the forward output y."""
    y, dy, out = _backward_args(y, dy, out, xname="y", min_ndim=1)
    dot = np.sum(y * dy, axis=-1, keepdims=True)  # (..., 1)
    out[...] = y * (dy - dot)                     # y.shape
    return out


def log_softmax_forward(x, out=None):
    """(x - max) - log sum exp(x - max) over the last axis (ndim >= 1)."""
    x, out = _forward_args(x, out, min_ndim=1)
    z = _shifted(x)                                       # x.shape
    s = np.sum(np.exp(z), axis=-1, keepdims=True)          # (..., 1), >= 1 unless N == 0
    with np.errstate(divide="ignore"):                     # log 0 only for empty rows
        out[...] = z - np.log(s)                           # x.shape
    return out


def log_softmax_backward(y, dy, out=None):
    """dy - exp(y) * sum(dy) over the last axis, from the forward output y."""
    y, dy, out = _backward_args(y, dy, out, xname="y", min_ndim=1)
    out[...] = dy - np.exp(y) * np.sum(dy, axis=-1, keepdims=True)  # y.shape
    return out


def grad_mul(grad, dy, out=None):
    """dy * grad elementwise, any shape: the backward of an activation whose forward stored
    its derivative (gelu_forward_grad's grad), so that the backward needs no second pass over
    the activation's math. out may be dy (in place)."""
    grad, dy, out = _backward_args(grad, dy, out, xname="grad")
    np.multiply(dy, grad, out=out)                         # grad.shape
    return out
