"""Losses, value and gradient: the NumPy reference (the spec of csrc/losses.c).

Reduction, Keras' "sum_over_batch_size": per-sample losses l_i, then

    L = sum_i w_i l_i / B,      w = sample_weight (B,), all ones when None.

mse, mae and the binary cross-entropies take y_pred of any shape (B, ...) and average over
the non-batch axes; the categorical ones take (B, K) and sum over the K classes.
`*_forward` returns L as a Python float (per-element terms in the input dtype, sums in
float64); `*_backward(..., out=None)` returns dL/d(first argument) with its shape and dtype.
`out` may be the first argument itself (the gradient overwrites it); it may not overlap the
targets or the weights. B == 0 gives L = 0.0 and an empty gradient. Samples must hold at
least one value (D, K >= 1).

Probability losses clip to [eps, 1 - eps] (computed in the input dtype) and have zero
gradient where a value was clipped; eps is a real number in [0, 0.5) (0: no clipping, log 0
gives inf), None is refused (TypeError) rather than read as 0 or as the default. The
categorical ones follow Keras and first divide each row by its sum. The softmax pairs work on
logits with max subtraction, so logits of magnitude 1e4 give finite, exact-to-rounding
values.
Checks: dtypes (TypeError), shapes, NaN/inf in targets or weights, labels out of range,
NaN or fractional (ValueError), the same in both backends (pynn/_checks.py).
"""
import math

import numpy as np

from .. import _checks

__all__ = [
    "mse_forward", "mse_backward", "mae_forward", "mae_backward",
    "binary_crossentropy_forward", "binary_crossentropy_backward",
    "binary_crossentropy_logits_forward", "binary_crossentropy_logits_backward",
    "categorical_crossentropy_forward", "categorical_crossentropy_backward",
    "sparse_categorical_crossentropy_forward", "sparse_categorical_crossentropy_backward",
    "softmax_cross_entropy_forward", "softmax_cross_entropy_backward",
    "softmax_categorical_crossentropy_forward", "softmax_categorical_crossentropy_backward",
]


# ---- argument checks (the C wrappers in pynn/_ext/_losses.pyx make the same calls) ----

def _weights(sample_weight, n, dtype):
    if sample_weight is None:
        return None
    w = _checks.float_array(sample_weight, "sample_weight", ndim=1)
    _checks.same_dtype(dtype, sample_weight=w)
    _checks.same_shape((n,), sample_weight=w)
    _checks.finite(w, "sample_weight")
    return w


def _dense_args(x, y_true, sample_weight, name, categorical):
    """x (B, ...) or (B, K) and targets of its shape and dtype -> (x, y_true, w, B, D)."""
    if categorical:
        x = _checks.float_array(x, name, ndim=2)
    else:
        x = _checks.float_array(x, name, min_ndim=1)
    y_true = _checks.float_array(y_true, "y_true")
    _checks.same_dtype(x.dtype, y_true=y_true)
    _checks.same_shape(x.shape, y_true=y_true)
    B, D = x.shape[0], math.prod(x.shape[1:])
    if D == 0:
        raise ValueError(f"{name} must hold at least one value per sample, received shape "
                         f"{x.shape}")
    w = _weights(sample_weight, B, x.dtype)
    _checks.finite(y_true, "y_true")
    return x, y_true, w, B, D


def _label_args(x, labels, sample_weight, name):
    """x (B, K) and integer labels (B,) -> (x, labels int64, w, B, K)."""
    x = _checks.float_array(x, name, ndim=2)
    B, K = x.shape
    if K == 0:
        raise ValueError(f"{name} must hold at least one class, received shape {x.shape}")
    labels = _checks.int_labels(labels, B, K)
    w = _weights(sample_weight, B, x.dtype)
    return x, labels, w, B, K


def _eps(eps):
    return _checks.finite_scalar(eps, "eps", low=0.0, high=0.5, high_open=True)


def _out(out, x, others):
    """The gradient buffer: may be x itself, may not overlap the targets or weights."""
    out = _checks.out_array(out, x.shape, x.dtype, inputs=(x,), allow_inplace=True)
    return _checks.out_array(out, x.shape, x.dtype, inputs=others)


# ---- shared pieces of the math ----

def _mean_loss(l, w, denom):
    """sum_i w_i l_i / denom in float64; l (B,) float64 per-sample sums."""
    if w is not None:
        l = l * w  # (B,)
    return float(np.sum(l) / denom) if denom else 0.0


def _scale(w, B, denom, dtype):
    """Per-row gradient scale w_i / denom (B, 1), computed in float64, then rounded."""
    w64 = np.ones(B) if w is None else w.astype(np.float64)  # (B,)
    return (w64 / denom).astype(dtype)[:, None]  # (B, 1)


def _rows(a, B, D):
    return a.reshape(B, D)  # (B, D) view or copy


def _clip_bounds(dtype, eps):
    lo = np.dtype(dtype).type(eps)
    return lo, np.dtype(dtype).type(1) - lo


# ---- mean squared / absolute error ----

def mse_forward(y_pred, y_true, sample_weight=None):
    """Mean squared error: l_i = mean over the non-batch axes of (y_pred - y_true)^2."""
    x, t, w, B, D = _dense_args(y_pred, y_true, sample_weight, "y_pred", False)
    d = _rows(x, B, D) - _rows(t, B, D)  # (B, D)
    l = np.sum(d * d, axis=1, dtype=np.float64)  # (B,) per-sample sums
    return _mean_loss(l, w, B * D)


def mse_backward(y_pred, y_true, sample_weight=None, out=None):
    """dL/dy_pred = 2 (y_pred - y_true) w_i / (B D), shape and dtype of y_pred."""
    x, t, w, B, D = _dense_args(y_pred, y_true, sample_weight, "y_pred", False)
    out = _out(out, x, (t, w))
    s = _scale(w, B, B * D, x.dtype)  # (B, 1)
    # (2 s) (y_pred - y_true), in this order (C too): 2 s is exact, while 2 (y_pred - y_true)
    # overflows for differences above half the dtype's max (e.g. 1.7e38 in float32)
    g = (2 * s) * (_rows(x, B, D) - _rows(t, B, D))  # (B, D)
    out[...] = g.reshape(x.shape)
    return out


def mae_forward(y_pred, y_true, sample_weight=None):
    """Mean absolute error: l_i = mean over the non-batch axes of |y_pred - y_true|."""
    x, t, w, B, D = _dense_args(y_pred, y_true, sample_weight, "y_pred", False)
    l = np.sum(np.abs(_rows(x, B, D) - _rows(t, B, D)), axis=1, dtype=np.float64)  # (B,)
    return _mean_loss(l, w, B * D)


def mae_backward(y_pred, y_true, sample_weight=None, out=None):
    """dL/dy_pred = sign(y_pred - y_true) w_i / (B D); 0 where y_pred == y_true."""
    x, t, w, B, D = _dense_args(y_pred, y_true, sample_weight, "y_pred", False)
    out = _out(out, x, (t, w))
    s = _scale(w, B, B * D, x.dtype)  # (B, 1)
    g = s * np.sign(_rows(x, B, D) - _rows(t, B, D))  # (B, D)
    out[...] = g.reshape(x.shape)
    return out


# ---- binary cross-entropy ----

def binary_crossentropy_forward(y_pred, y_true, sample_weight=None, eps=1e-7):
    """Binary cross-entropy of probabilities y_pred clipped to [eps, 1 - eps] (Keras):
    l_i = mean over the non-batch axes of -(y log c + (1 - y) log(1 - c)), c = clip(y_pred)."""
    x, t, w, B, D = _dense_args(y_pred, y_true, sample_weight, "y_pred", False)
    lo, hi = _clip_bounds(x.dtype, _eps(eps))
    c = np.clip(_rows(x, B, D), lo, hi)  # (B, D)
    y = _rows(t, B, D)  # (B, D)
    e = -(y * np.log(c) + (1 - y) * np.log(1 - c))  # (B, D)
    return _mean_loss(np.sum(e, axis=1, dtype=np.float64), w, B * D)


def binary_crossentropy_backward(y_pred, y_true, sample_weight=None, eps=1e-7, out=None):
    """dL/dy_pred = (p - y) / (p (1 - p)) w_i / (B D) where eps <= p <= 1 - eps, else 0."""
    x, t, w, B, D = _dense_args(y_pred, y_true, sample_weight, "y_pred", False)
    lo, hi = _clip_bounds(x.dtype, _eps(eps))
    out = _out(out, x, (t, w))
    p, y = _rows(x, B, D), _rows(t, B, D)  # (B, D)
    keep = (p >= lo) & (p <= hi)  # (B, D) not clipped
    with np.errstate(divide="ignore", invalid="ignore"):
        g = np.where(keep, (p - y) / (p * (1 - p)), 0)  # (B, D)
    out[...] = (_scale(w, B, B * D, x.dtype) * g).reshape(x.shape)
    return out


def binary_crossentropy_logits_forward(logits, y_true, sample_weight=None):
    """Binary cross-entropy from logits z, stable: max(z, 0) - z y + log1p(exp(-|z|))."""
    x, t, w, B, D = _dense_args(logits, y_true, sample_weight, "logits", False)
    z, y = _rows(x, B, D), _rows(t, B, D)  # (B, D)
    e = np.maximum(z, 0) - z * y + np.log1p(np.exp(-np.abs(z)))  # (B, D)
    return _mean_loss(np.sum(e, axis=1, dtype=np.float64), w, B * D)


def binary_crossentropy_logits_backward(logits, y_true, sample_weight=None, out=None):
    """dL/dlogits = (sigmoid(z) - y) w_i / (B D), sigmoid without overflow."""
    x, t, w, B, D = _dense_args(logits, y_true, sample_weight, "logits", False)
    out = _out(out, x, (t, w))
    z, y = _rows(x, B, D), _rows(t, B, D)  # (B, D)
    e = np.exp(-np.abs(z))  # (B, D) in (0, 1]
    sig = np.where(z >= 0, 1, e) / (1 + e)  # (B, D)
    out[...] = (_scale(w, B, B * D, x.dtype) * (sig - y)).reshape(x.shape)
    return out


# ---- categorical cross-entropy on probabilities ----

def _normalised(p, dtype):
    """q = p / S with the row sums S (B, 1) summed in float64 and rounded to dtype."""
    S = np.sum(p, axis=1, keepdims=True, dtype=np.float64).astype(dtype)  # (B, 1)
    return p / S, S  # (B, K), (B, 1)


def categorical_crossentropy_forward(y_pred, y_true, sample_weight=None, eps=1e-7):
    """l_i = -sum_k y_true log clip(y_pred / rowsum, eps, 1 - eps) (Keras)."""
    x, t, w, B, K = _dense_args(y_pred, y_true, sample_weight, "y_pred", True)
    lo, hi = _clip_bounds(x.dtype, _eps(eps))
    q, _ = _normalised(x, x.dtype)  # (B, K)
    l = -np.sum(t * np.log(np.clip(q, lo, hi)), axis=1, dtype=np.float64)  # (B,)
    return _mean_loss(l, w, B)


def categorical_crossentropy_backward(y_pred, y_true, sample_weight=None, eps=1e-7, out=None):
    """dL/dp_j = w_i / B (a_j + U) / S: a_k = -y_k / q_k where q_k is not clipped (else 0),
    U = sum of y_k over the unclipped k (the renormalisation's share)."""
    x, t, w, B, K = _dense_args(y_pred, y_true, sample_weight, "y_pred", True)
    lo, hi = _clip_bounds(x.dtype, _eps(eps))
    out = _out(out, x, (t, w))
    q, S = _normalised(x, x.dtype)  # (B, K), (B, 1)
    keep = (q >= lo) & (q <= hi)  # (B, K) not clipped
    with np.errstate(divide="ignore", invalid="ignore"):
        a = np.where(keep, -t / q, 0)  # (B, K) dl/dq
    U = np.sum(np.where(keep, t, 0), axis=1, keepdims=True, dtype=np.float64)  # (B, 1)
    out[...] = _scale(w, B, B, x.dtype) * ((a + U.astype(x.dtype)) / S)  # (B, K)
    return out


def sparse_categorical_crossentropy_forward(y_pred, labels, sample_weight=None, eps=1e-7):
    """l_i = -log clip(y_pred[i, labels_i] / rowsum_i, eps, 1 - eps) (Keras)."""
    x, y, w, B, K = _label_args(y_pred, labels, sample_weight, "y_pred")
    lo, hi = _clip_bounds(x.dtype, _eps(eps))
    q, _ = _normalised(x, x.dtype)  # (B, K)
    qy = q[np.arange(B), y]  # (B,)
    return _mean_loss(-np.log(np.clip(qy, lo, hi)).astype(np.float64), w, B)


def sparse_categorical_crossentropy_backward(y_pred, labels, sample_weight=None, eps=1e-7,
                                             out=None):
    """The categorical gradient with one-hot targets onehot(labels)."""
    x, y, w, B, K = _label_args(y_pred, labels, sample_weight, "y_pred")
    lo, hi = _clip_bounds(x.dtype, _eps(eps))
    out = _out(out, x, (y, w))  # labels are read while out is written
    q, S = _normalised(x, x.dtype)  # (B, K), (B, 1)
    rows = np.arange(B)  # (B,)
    qy = q[rows, y]  # (B,)
    keep = (qy >= lo) & (qy <= hi)  # (B,) not clipped
    U = keep.astype(x.dtype)[:, None]  # (B, 1)
    a = np.zeros_like(x)  # (B, K) dl/dq
    with np.errstate(divide="ignore", invalid="ignore"):
        a[rows, y] = np.where(keep, -1 / qy, 0)
    out[...] = _scale(w, B, B, x.dtype) * ((a + U) / S)  # (B, K)
    return out


# ---- fused softmax + cross-entropy on logits ----

def _softmax_parts(z):
    """m (B, 1) row max, e = exp(z - m) (B, K), s (B,) float64 row sums of e."""
    m = np.max(z, axis=1, keepdims=True)  # (B, 1)
    e = np.exp(z - m)  # (B, K)
    return m, e, np.sum(e, axis=1, dtype=np.float64)  # (B, 1), (B, K), (B,)


def softmax_cross_entropy_forward(logits, labels, sample_weight=None):
    """l_i = logsumexp(z_i) - z_i[labels_i], as (m - z_y) + log(sum exp(z - m))."""
    z, y, w, B, K = _label_args(logits, labels, sample_weight, "logits")
    m, _, s = _softmax_parts(z)  # (B, 1), _, (B,)
    l = (m[:, 0] - z[np.arange(B), y]).astype(np.float64) + np.log(s)  # (B,)
    return _mean_loss(l, w, B)


def softmax_cross_entropy_backward(logits, labels, sample_weight=None, out=None):
    """dL/dlogits = (softmax(z) - onehot(labels)) w_i / B."""
    z, y, w, B, K = _label_args(logits, labels, sample_weight, "logits")
    out = _out(out, z, (y, w))  # labels are read while out is written
    _, e, s = _softmax_parts(z)  # _, (B, K), (B,)
    p = (e / s[:, None]).astype(z.dtype)  # (B, K) softmax
    p[np.arange(B), y] -= 1
    out[...] = _scale(w, B, B, z.dtype) * p  # (B, K)
    return out


def softmax_categorical_crossentropy_forward(logits, y_true, sample_weight=None):
    """l_i = -sum_k y_k log_softmax(z)_k = sum_k y_k (m - z_k) + (sum_k y_k) log s."""
    z, t, w, B, K = _dense_args(logits, y_true, sample_weight, "logits", True)
    m, _, s = _softmax_parts(z)  # (B, 1), _, (B,)
    l = (np.sum(t * (m - z), axis=1, dtype=np.float64)
         + np.sum(t, axis=1, dtype=np.float64) * np.log(s))  # (B,)
    return _mean_loss(l, w, B)


def softmax_categorical_crossentropy_backward(logits, y_true, sample_weight=None, out=None):
    """dL/dlogits = ((sum_k y_k) softmax(z) - y) w_i / B (softmax(z) - y for one-hot y)."""
    z, t, w, B, K = _dense_args(logits, y_true, sample_weight, "logits", True)
    out = _out(out, z, (t, w))
    _, e, s = _softmax_parts(z)  # _, (B, K), (B,)
    p = (e / s[:, None]).astype(z.dtype)  # (B, K) softmax
    Y = np.sum(t, axis=1, keepdims=True, dtype=np.float64).astype(z.dtype)  # (B, 1)
    out[...] = _scale(w, B, B, z.dtype) * (Y * p - t)  # (B, K)
    return out
