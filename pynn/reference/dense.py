"""The fused Dense layer: NumPy reference (the spec of csrc/dense.c). Keras layout.

    forward   y (B, OC) = act(x (B, C) @ w (C, OC) + b (OC)) [+ residual (B, OC)]
    backward  dz = dy * act'(y);  dw = x^T dz;  db = column sums of dz;  dx = dz w^T

activation is one of DENSE_ACTIVATIONS, those whose derivative follows from the output y
(others run as a separate activation op). The forward also takes "gelu" and "gelu_tanh"
(FORWARD_ACTIVATIONS), whose derivative it can write beside y (grad=): the backward is then
dense_backward(..., dy * grad, "linear"), as a Transformer block's MLP runs it. Gradients are
written, not accumulated; dw and db may be views into a model's flat gradient buffer.
"""
import numpy as np

from .. import _checks
from .activations import _sigmoid, gelu_forward, gelu_forward_grad

__all__ = ["dense_forward", "dense_backward"]

DENSE_ACTIVATIONS = ("linear", "relu", "sigmoid", "tanh")
GELU_ACTIVATIONS = ("gelu", "gelu_tanh")
FORWARD_ACTIVATIONS = DENSE_ACTIVATIONS + GELU_ACTIVATIONS


def _weights(x, w, b):
    """Check x (B, C), w (C, OC), b (OC,) or None; return them as C-safe arrays."""
    x = _checks.float_array(x, "x", ndim=2)
    w = _checks.float_array(w, "w", ndim=2)
    if w.shape[0] != x.shape[1]:
        raise ValueError(f"w must have shape (C, OC) with C = x.shape[1] = {x.shape[1]} "
                         f"(Keras layout: in features first), received w of shape {w.shape}")
    if b is not None:
        b = _checks.float_array(b, "b", ndim=1)
        _checks.same_shape((w.shape[1],), b=b)
    _checks.same_dtype(x.dtype, w=w, b=b)
    return x, w, b


def forward_args(x, w, b, activation, out, residual=None, grad=None):
    """Checked arguments of dense_forward (both backends): (x, w, b, out, residual, grad)."""
    _checks.one_of(activation, "activation", FORWARD_ACTIVATIONS)
    if grad is not None and activation not in GELU_ACTIVATIONS:
        raise ValueError(f"grad= is written only for activation 'gelu' or 'gelu_tanh' (the "
                         f"derivative of {activation!r} follows from the output y); received "
                         f"activation={activation!r}")
    x, w, b = _weights(x, w, b)
    shape = (x.shape[0], w.shape[1])
    if residual is not None:
        residual = _checks.float_array(residual, "residual", ndim=2)
        _checks.same_shape(shape, residual=residual)
        _checks.same_dtype(x.dtype, residual=residual)
    out = _checks.out_array(out, shape, x.dtype, inputs=(x, w, b, residual))
    if grad is not None:
        grad = _checks.out_array(grad, shape, x.dtype, "grad", inputs=(x, w, b, residual, out))
    return x, w, b, out, residual, grad


def backward_args(x, w, y, dy, activation, need_dx, dx, dw, db, dx_mul=None):
    """Checked arguments of dense_backward (both backends): (x, w, y, dy, dx, dw, db, dx_mul)."""
    _checks.one_of(activation, "activation", DENSE_ACTIVATIONS)
    x, w, _ = _weights(x, w, None)
    B, C, OC = x.shape[0], x.shape[1], w.shape[1]
    dy = _checks.float_array(dy, "dy", ndim=2)
    _checks.same_shape((B, OC), dy=dy)
    if y is None:
        if activation != "linear":
            raise ValueError(f"dense_backward needs the forward output y for "
                             f"activation={activation!r}; pass y (B, OC)")
    else:
        y = _checks.float_array(y, "y", ndim=2)
        _checks.same_shape((B, OC), y=y)
    _checks.same_dtype(x.dtype, w=w, y=y, dy=dy)
    if not need_dx and dx is not None:
        raise ValueError("dx was passed but need_dx=False; pass need_dx=True or drop dx")
    if dx_mul is not None:
        if not need_dx:
            raise ValueError("dx_mul multiplies dx, but need_dx=False; pass need_dx=True")
        dx_mul = _checks.float_array(dx_mul, "dx_mul", ndim=2)
        _checks.same_shape((B, C), dx_mul=dx_mul)
        _checks.same_dtype(x.dtype, dx_mul=dx_mul)
        dx_mul = _checks.contiguous(dx_mul)
    ins = (x, w, y, dy, dx_mul)
    dx = _checks.out_array(dx, (B, C), x.dtype, "dx", inputs=ins) if need_dx else None
    dw = _checks.out_array(dw, (C, OC), x.dtype, "dw", inputs=ins + (dx,))
    db = _checks.out_array(db, (OC,), x.dtype, "db", inputs=ins + (dx, dw))
    return x, w, y, dy, dx, dw, db, dx_mul


def dense_forward(x, w, b=None, activation="linear", out=None, residual=None, grad=None):
    """y = act(x @ w + b) + residual: x (B, C), w (C, OC), b (OC,) or None, residual (B, OC)
    or None (a skip connection added after the activation, in the same pass as the bias for
    "linear"; it may not overlap out) -> out (B, OC).

    activation: "linear", "relu", "sigmoid", "tanh", or (forward only) "gelu" / "gelu_tanh"
    (gelu_forward's exact and approximate=True forms). grad (B, OC), only with a GELU: also
    receives gelu'(x @ w + b), so the backward is dense_backward with dy * grad and
    "linear"; it may not overlap out or the inputs. Returns out."""
    x, w, b, out, residual, grad = forward_args(x, w, b, activation, out, residual, grad)
    z = x @ w                               # (B, OC)
    if b is not None:
        z = z + b                           # (B, OC)
    if activation == "relu":
        z = np.where(z < 0, 0, z)           # (B, OC)
    elif activation == "sigmoid":
        z = _sigmoid(z)                     # (B, OC)
    elif activation == "tanh":
        z = np.tanh(z)                      # (B, OC)
    elif activation in GELU_ACTIVATIONS:
        approximate = activation == "gelu_tanh"
        if grad is not None:
            z, _ = gelu_forward_grad(z, approximate=approximate, out=z, grad=grad)  # (B, OC)
        else:
            z = gelu_forward(z, approximate=approximate, out=z)                     # (B, OC)
    if residual is not None:
        z = z + residual                    # (B, OC)
    out[...] = z                            # (B, OC)
    return out


def dense_backward(x, w, y, dy, activation="linear", need_dx=True, dx=None, dw=None, db=None,
                   dx_mul=None):
    """Gradients of dense_forward: returns (dx (B, C) or None, dw (C, OC), db (OC,)).

    y is the forward output (B, OC), needed for every activation but "linear" (may be None).
    dx_mul (B, C), optional: dx is multiplied by it elementwise, (dz @ w.T) * dx_mul, e.g. the
    gelu' that the previous layer's dense_forward saved (grad=): dx is then that layer's dz.
    It may not overlap dx.
    """
    x, w, y, dy, dx, dw, db, dx_mul = backward_args(x, w, y, dy, activation, need_dx, dx, dw,
                                                    db, dx_mul)
    if activation == "relu":
        dz = np.where(y > 0, dy, 0)         # (B, OC)
    elif activation == "sigmoid":
        dz = dy * y * (1 - y)               # (B, OC)
    elif activation == "tanh":
        dz = dy * (1 - y * y)               # (B, OC)
    else:
        dz = dy                             # (B, OC)
    dw[...] = x.T @ dz                      # (C, OC)
    db[...] = np.sum(dz, axis=0)            # (OC,)
    if dx is not None:
        if dx_mul is not None:
            dx[...] = (dz @ w.T) * dx_mul   # (B, C)
        else:
            dx[...] = dz @ w.T              # (B, C)
    return dx, dw, db
