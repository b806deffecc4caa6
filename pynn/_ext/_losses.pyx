# cython: language_level=3
"""C backend of pynn.reference.losses: loss values and gradients.

Each wrapper checks its arguments with pynn._checks (the same calls as the reference),
views the prediction as (B, D) rows (strides when possible, a copy otherwise), then makes
one C call with the GIL released. Forward returns L as a Python float; backward writes
dL/d(prediction) into `out` (allocated when None; it may be the prediction itself).
B == 0 gives 0.0 and an empty gradient without entering C.

Fast path: a plainly valid call (exact, C-contiguous, aligned, native arrays of one float
dtype, see pynn/_ext/_fast.pxd) is recognised with C-level tests and goes straight to C;
every other call, valid or not, takes the pynn._checks path above, so errors are unchanged.
"""

import numpy as np
cimport numpy as cnp
from cython cimport floating
from libc.stdint cimport int64_t

from pynn import _checks
from pynn._ext._csrc cimport pynn_idx, pynn_ctx
from pynn._ext._runtime cimport get_ctx
from pynn._ext cimport _fast

cnp.import_array()

cdef extern from "losses.h" nogil:
    double pynn_mse_forward_f32(const float *x, const float *t, const float *w, pynn_idx B,
        pynn_idx K, pynn_idx rsx, pynn_idx csx, pynn_idx rst, pynn_idx cst, pynn_idx sw,
        pynn_ctx ctx)
    void pynn_mse_backward_f32(float *dx, const float *x, const float *t, const float *w,
        pynn_idx B, pynn_idx K, pynn_idx rsx, pynn_idx csx, pynn_idx rst, pynn_idx cst,
        pynn_idx sw, pynn_ctx ctx)
    double pynn_mae_forward_f32(const float *x, const float *t, const float *w, pynn_idx B,
        pynn_idx K, pynn_idx rsx, pynn_idx csx, pynn_idx rst, pynn_idx cst, pynn_idx sw,
        pynn_ctx ctx)
    void pynn_mae_backward_f32(float *dx, const float *x, const float *t, const float *w,
        pynn_idx B, pynn_idx K, pynn_idx rsx, pynn_idx csx, pynn_idx rst, pynn_idx cst,
        pynn_idx sw, pynn_ctx ctx)
    double pynn_binary_crossentropy_forward_f32(const float *x, const float *t, const float *w,
        pynn_idx B, pynn_idx K, pynn_idx rsx, pynn_idx csx, pynn_idx rst, pynn_idx cst,
        pynn_idx sw, double eps, pynn_ctx ctx)
    void pynn_binary_crossentropy_backward_f32(float *dx, const float *x, const float *t,
        const float *w, pynn_idx B, pynn_idx K, pynn_idx rsx, pynn_idx csx, pynn_idx rst,
        pynn_idx cst, pynn_idx sw, double eps, pynn_ctx ctx)
    double pynn_binary_crossentropy_logits_forward_f32(const float *x, const float *t,
        const float *w, pynn_idx B, pynn_idx K, pynn_idx rsx, pynn_idx csx, pynn_idx rst,
        pynn_idx cst, pynn_idx sw, pynn_ctx ctx)
    void pynn_binary_crossentropy_logits_backward_f32(float *dx, const float *x, const float *t,
        const float *w, pynn_idx B, pynn_idx K, pynn_idx rsx, pynn_idx csx, pynn_idx rst,
        pynn_idx cst, pynn_idx sw, pynn_ctx ctx)
    double pynn_categorical_crossentropy_forward_f32(const float *x, const float *t,
        const float *w, pynn_idx B, pynn_idx K, pynn_idx rsx, pynn_idx csx, pynn_idx rst,
        pynn_idx cst, pynn_idx sw, double eps, pynn_ctx ctx)
    void pynn_categorical_crossentropy_backward_f32(float *dx, const float *x, const float *t,
        const float *w, pynn_idx B, pynn_idx K, pynn_idx rsx, pynn_idx csx, pynn_idx rst,
        pynn_idx cst, pynn_idx sw, double eps, pynn_ctx ctx)
    double pynn_softmax_categorical_crossentropy_forward_f32(const float *x, const float *t,
        const float *w, pynn_idx B, pynn_idx K, pynn_idx rsx, pynn_idx csx, pynn_idx rst,
        pynn_idx cst, pynn_idx sw, pynn_ctx ctx)
    void pynn_softmax_categorical_crossentropy_backward_f32(float *dx, const float *x,
        const float *t, const float *w, pynn_idx B, pynn_idx K, pynn_idx rsx, pynn_idx csx,
        pynn_idx rst, pynn_idx cst, pynn_idx sw, pynn_ctx ctx)
    double pynn_sparse_categorical_crossentropy_forward_f32(const float *x, const int64_t *y,
        const float *w, pynn_idx B, pynn_idx K, pynn_idx rsx, pynn_idx csx, pynn_idx sw,
        double eps, pynn_ctx ctx)
    void pynn_sparse_categorical_crossentropy_backward_f32(float *dx, const float *x,
        const int64_t *y, const float *w, pynn_idx B, pynn_idx K, pynn_idx rsx, pynn_idx csx,
        pynn_idx sw, double eps, pynn_ctx ctx)
    double pynn_softmax_cross_entropy_forward_f32(const float *x, const int64_t *y, const float *w,
        pynn_idx B, pynn_idx K, pynn_idx rsx, pynn_idx csx, pynn_idx sw, pynn_ctx ctx)
    void pynn_softmax_cross_entropy_backward_f32(float *dx, const float *x, const int64_t *y,
        const float *w, pynn_idx B, pynn_idx K, pynn_idx rsx, pynn_idx csx, pynn_idx sw,
        pynn_ctx ctx)
    double pynn_mse_forward_f64(const double *x, const double *t, const double *w, pynn_idx B,
        pynn_idx K, pynn_idx rsx, pynn_idx csx, pynn_idx rst, pynn_idx cst, pynn_idx sw,
        pynn_ctx ctx)
    void pynn_mse_backward_f64(double *dx, const double *x, const double *t, const double *w,
        pynn_idx B, pynn_idx K, pynn_idx rsx, pynn_idx csx, pynn_idx rst, pynn_idx cst,
        pynn_idx sw, pynn_ctx ctx)
    double pynn_mae_forward_f64(const double *x, const double *t, const double *w, pynn_idx B,
        pynn_idx K, pynn_idx rsx, pynn_idx csx, pynn_idx rst, pynn_idx cst, pynn_idx sw,
        pynn_ctx ctx)
    void pynn_mae_backward_f64(double *dx, const double *x, const double *t, const double *w,
        pynn_idx B, pynn_idx K, pynn_idx rsx, pynn_idx csx, pynn_idx rst, pynn_idx cst,
        pynn_idx sw, pynn_ctx ctx)
    double pynn_binary_crossentropy_forward_f64(const double *x, const double *t, const double *w,
        pynn_idx B, pynn_idx K, pynn_idx rsx, pynn_idx csx, pynn_idx rst, pynn_idx cst,
        pynn_idx sw, double eps, pynn_ctx ctx)
    void pynn_binary_crossentropy_backward_f64(double *dx, const double *x, const double *t,
        const double *w, pynn_idx B, pynn_idx K, pynn_idx rsx, pynn_idx csx, pynn_idx rst,
        pynn_idx cst, pynn_idx sw, double eps, pynn_ctx ctx)
    double pynn_binary_crossentropy_logits_forward_f64(const double *x, const double *t,
        const double *w, pynn_idx B, pynn_idx K, pynn_idx rsx, pynn_idx csx, pynn_idx rst,
        pynn_idx cst, pynn_idx sw, pynn_ctx ctx)
    void pynn_binary_crossentropy_logits_backward_f64(double *dx, const double *x, const double *t,
        const double *w, pynn_idx B, pynn_idx K, pynn_idx rsx, pynn_idx csx, pynn_idx rst,
        pynn_idx cst, pynn_idx sw, pynn_ctx ctx)
    double pynn_categorical_crossentropy_forward_f64(const double *x, const double *t,
        const double *w, pynn_idx B, pynn_idx K, pynn_idx rsx, pynn_idx csx, pynn_idx rst,
        pynn_idx cst, pynn_idx sw, double eps, pynn_ctx ctx)
    void pynn_categorical_crossentropy_backward_f64(double *dx, const double *x, const double *t,
        const double *w, pynn_idx B, pynn_idx K, pynn_idx rsx, pynn_idx csx, pynn_idx rst,
        pynn_idx cst, pynn_idx sw, double eps, pynn_ctx ctx)
    double pynn_softmax_categorical_crossentropy_forward_f64(const double *x, const double *t,
        const double *w, pynn_idx B, pynn_idx K, pynn_idx rsx, pynn_idx csx, pynn_idx rst,
        pynn_idx cst, pynn_idx sw, pynn_ctx ctx)
    void pynn_softmax_categorical_crossentropy_backward_f64(double *dx, const double *x,
        const double *t, const double *w, pynn_idx B, pynn_idx K, pynn_idx rsx, pynn_idx csx,
        pynn_idx rst, pynn_idx cst, pynn_idx sw, pynn_ctx ctx)
    double pynn_sparse_categorical_crossentropy_forward_f64(const double *x, const int64_t *y,
        const double *w, pynn_idx B, pynn_idx K, pynn_idx rsx, pynn_idx csx, pynn_idx sw,
        double eps, pynn_ctx ctx)
    void pynn_sparse_categorical_crossentropy_backward_f64(double *dx, const double *x,
        const int64_t *y, const double *w, pynn_idx B, pynn_idx K, pynn_idx rsx, pynn_idx csx,
        pynn_idx sw, double eps, pynn_ctx ctx)
    double pynn_softmax_cross_entropy_forward_f64(const double *x, const int64_t *y,
        const double *w, pynn_idx B, pynn_idx K, pynn_idx rsx, pynn_idx csx, pynn_idx sw,
        pynn_ctx ctx)
    void pynn_softmax_cross_entropy_backward_f64(double *dx, const double *x, const int64_t *y,
        const double *w, pynn_idx B, pynn_idx K, pynn_idx rsx, pynn_idx csx, pynn_idx sw,
        pynn_ctx ctx)

__all__ = [
    "mse_forward", "mse_backward", "mae_forward", "mae_backward",
    "binary_crossentropy_forward", "binary_crossentropy_backward",
    "binary_crossentropy_logits_forward", "binary_crossentropy_logits_backward",
    "categorical_crossentropy_forward", "categorical_crossentropy_backward",
    "sparse_categorical_crossentropy_forward", "sparse_categorical_crossentropy_backward",
    "softmax_cross_entropy_forward", "softmax_cross_entropy_backward",
    "softmax_categorical_crossentropy_forward", "softmax_categorical_crossentropy_backward",
]

cdef enum:
    MSE, MAE, BCE, BCEL, CCE, SMCCE, SCCE, SMCE


cdef double _forward(int kind,
                     const floating[:, :] x,        # IN (B, K) prediction rows
                     const floating[:, :] t,        # IN (B, K) targets, or None
                     const int64_t[::1] y,          # IN (B,) labels, or None
                     const floating[:] w,           # IN (B,) sample weights, or None
                     double eps, pynn_ctx ctx) noexcept:
    cdef pynn_idx B = x.shape[0], K = x.shape[1], rst = 0, cst = 0, sw = 0
    cdef pynn_idx rsx = x.strides[0] // sizeof(floating), csx = x.strides[1] // sizeof(floating)
    cdef const floating *xp
    cdef const floating *tp = NULL
    cdef const floating *wp = NULL
    cdef const int64_t *yp = NULL
    cdef double r = 0.0
    if B == 0:
        return 0.0
    xp = &x[0, 0]
    if t is not None:
        tp = &t[0, 0]
        rst = t.strides[0] // sizeof(floating)
        cst = t.strides[1] // sizeof(floating)
    if y is not None:
        yp = &y[0]
    if w is not None:
        wp = &w[0]
        sw = w.strides[0] // sizeof(floating)
    with nogil:
        if floating is float:
            if kind == MSE:
                r = pynn_mse_forward_f32(xp, tp, wp, B, K, rsx, csx, rst, cst, sw, ctx)
            elif kind == MAE:
                r = pynn_mae_forward_f32(xp, tp, wp, B, K, rsx, csx, rst, cst, sw, ctx)
            elif kind == BCE:
                r = pynn_binary_crossentropy_forward_f32(xp, tp, wp, B, K, rsx, csx, rst, cst, sw,
                    eps, ctx)
            elif kind == BCEL:
                r = pynn_binary_crossentropy_logits_forward_f32(xp, tp, wp, B, K, rsx, csx, rst,
                    cst, sw, ctx)
            elif kind == CCE:
                r = pynn_categorical_crossentropy_forward_f32(xp, tp, wp, B, K, rsx, csx, rst, cst,
                    sw, eps, ctx)
            elif kind == SMCCE:
                r = pynn_softmax_categorical_crossentropy_forward_f32(xp, tp, wp, B, K, rsx, csx,
                    rst, cst, sw, ctx)
            elif kind == SCCE:
                r = pynn_sparse_categorical_crossentropy_forward_f32(xp, yp, wp, B, K, rsx, csx,
                    sw, eps, ctx)
            elif kind == SMCE:
                r = pynn_softmax_cross_entropy_forward_f32(xp, yp, wp, B, K, rsx, csx, sw, ctx)
        else:
            if kind == MSE:
                r = pynn_mse_forward_f64(xp, tp, wp, B, K, rsx, csx, rst, cst, sw, ctx)
            elif kind == MAE:
                r = pynn_mae_forward_f64(xp, tp, wp, B, K, rsx, csx, rst, cst, sw, ctx)
            elif kind == BCE:
                r = pynn_binary_crossentropy_forward_f64(xp, tp, wp, B, K, rsx, csx, rst, cst, sw,
                    eps, ctx)
            elif kind == BCEL:
                r = pynn_binary_crossentropy_logits_forward_f64(xp, tp, wp, B, K, rsx, csx, rst,
                    cst, sw, ctx)
            elif kind == CCE:
                r = pynn_categorical_crossentropy_forward_f64(xp, tp, wp, B, K, rsx, csx, rst, cst,
                    sw, eps, ctx)
            elif kind == SMCCE:
                r = pynn_softmax_categorical_crossentropy_forward_f64(xp, tp, wp, B, K, rsx, csx,
                    rst, cst, sw, ctx)
            elif kind == SCCE:
                r = pynn_sparse_categorical_crossentropy_forward_f64(xp, yp, wp, B, K, rsx, csx,
                    sw, eps, ctx)
            elif kind == SMCE:
                r = pynn_softmax_cross_entropy_forward_f64(xp, yp, wp, B, K, rsx, csx, sw, ctx)
    return r


cdef void _backward(int kind,
                    floating[:, ::1] out,          # OUT (B, K) gradient rows
                    const floating[:, :] x,        # IN  (B, K) prediction rows
                    const floating[:, :] t,        # IN  (B, K) targets, or None
                    const int64_t[::1] y,          # IN  (B,) labels, or None
                    const floating[:] w,           # IN  (B,) sample weights, or None
                    double eps, pynn_ctx ctx) noexcept:
    cdef pynn_idx B = x.shape[0], K = x.shape[1], rst = 0, cst = 0, sw = 0
    cdef pynn_idx rsx = x.strides[0] // sizeof(floating), csx = x.strides[1] // sizeof(floating)
    cdef floating *dp
    cdef const floating *xp
    cdef const floating *tp = NULL
    cdef const floating *wp = NULL
    cdef const int64_t *yp = NULL
    if B == 0:
        return
    dp = &out[0, 0]
    xp = &x[0, 0]
    if t is not None:
        tp = &t[0, 0]
        rst = t.strides[0] // sizeof(floating)
        cst = t.strides[1] // sizeof(floating)
    if y is not None:
        yp = &y[0]
    if w is not None:
        wp = &w[0]
        sw = w.strides[0] // sizeof(floating)
    with nogil:
        if floating is float:
            if kind == MSE:
                pynn_mse_backward_f32(dp, xp, tp, wp, B, K, rsx, csx, rst, cst, sw, ctx)
            elif kind == MAE:
                pynn_mae_backward_f32(dp, xp, tp, wp, B, K, rsx, csx, rst, cst, sw, ctx)
            elif kind == BCE:
                pynn_binary_crossentropy_backward_f32(dp, xp, tp, wp, B, K, rsx, csx, rst, cst, sw,
                    eps, ctx)
            elif kind == BCEL:
                pynn_binary_crossentropy_logits_backward_f32(dp, xp, tp, wp, B, K, rsx, csx, rst,
                    cst, sw, ctx)
            elif kind == CCE:
                pynn_categorical_crossentropy_backward_f32(dp, xp, tp, wp, B, K, rsx, csx, rst,
                    cst, sw, eps, ctx)
            elif kind == SMCCE:
                pynn_softmax_categorical_crossentropy_backward_f32(dp, xp, tp, wp, B, K, rsx, csx,
                    rst, cst, sw, ctx)
            elif kind == SCCE:
                pynn_sparse_categorical_crossentropy_backward_f32(dp, xp, yp, wp, B, K, rsx, csx,
                    sw, eps, ctx)
            elif kind == SMCE:
                pynn_softmax_cross_entropy_backward_f32(dp, xp, yp, wp, B, K, rsx, csx, sw, ctx)
        else:
            if kind == MSE:
                pynn_mse_backward_f64(dp, xp, tp, wp, B, K, rsx, csx, rst, cst, sw, ctx)
            elif kind == MAE:
                pynn_mae_backward_f64(dp, xp, tp, wp, B, K, rsx, csx, rst, cst, sw, ctx)
            elif kind == BCE:
                pynn_binary_crossentropy_backward_f64(dp, xp, tp, wp, B, K, rsx, csx, rst, cst, sw,
                    eps, ctx)
            elif kind == BCEL:
                pynn_binary_crossentropy_logits_backward_f64(dp, xp, tp, wp, B, K, rsx, csx, rst,
                    cst, sw, ctx)
            elif kind == CCE:
                pynn_categorical_crossentropy_backward_f64(dp, xp, tp, wp, B, K, rsx, csx, rst,
                    cst, sw, eps, ctx)
            elif kind == SMCCE:
                pynn_softmax_categorical_crossentropy_backward_f64(dp, xp, tp, wp, B, K, rsx, csx,
                    rst, cst, sw, ctx)
            elif kind == SCCE:
                pynn_sparse_categorical_crossentropy_backward_f64(dp, xp, yp, wp, B, K, rsx, csx,
                    sw, eps, ctx)
            elif kind == SMCE:
                pynn_softmax_cross_entropy_backward_f64(dp, xp, yp, wp, B, K, rsx, csx, sw, ctx)


def _run_forward(kind, x, t, y, w, eps=0.0):
    if cnp.PyArray_TYPE(<cnp.ndarray>x) == cnp.NPY_FLOAT32:
        return _forward[float](kind, x, t, y, w, eps, get_ctx())
    return _forward[double](kind, x, t, y, w, eps, get_ctx())


def _run_backward(kind, out, x, t, y, w, eps=0.0):
    if cnp.PyArray_TYPE(<cnp.ndarray>x) == cnp.NPY_FLOAT32:
        _backward[float](kind, out, x, t, y, w, eps, get_ctx())
    else:
        _backward[double](kind, out, x, t, y, w, eps, get_ctx())
    return out


# ---- argument checks: the very functions of pynn.reference.losses, so both backends refuse
# bad input identically ----
from pynn.reference.losses import _weights, _dense_args, _label_args, _eps, _out

# the eps argument of the losses that take none (mse, mae, the logits ones); the others pass
# the caller's eps, None included, to _eps, which refuses what the twin refuses (C read
# eps=None as 0, no clipping: inf/NaN losses where the twin raised TypeError)
_NO_EPS = object()


def _eps_or_zero(eps):
    return 0.0 if eps is _NO_EPS else _eps(eps)


# ---- elementwise losses: rows (B, D) of any (B, ...) shape ----

def _elem_forward(kind, y_pred, y_true, sample_weight, name, eps=_NO_EPS):
    x, t, w, B, D = _dense_args(y_pred, y_true, sample_weight, name, False)
    e = _eps_or_zero(eps)
    return _run_forward(kind, x.reshape(B, D), t.reshape(B, D), None, w, e)


def _elem_backward(kind, y_pred, y_true, sample_weight, out, name, eps=_NO_EPS):
    x, t, w, B, D = _dense_args(y_pred, y_true, sample_weight, name, False)
    e = _eps_or_zero(eps)
    out = _out(out, x, (t, w))
    _run_backward(kind, out.reshape(B, D), x.reshape(B, D), t.reshape(B, D), None, w, e)
    return out


def mse_forward(y_pred, y_true, sample_weight=None):
    """Mean squared error. See pynn.reference.mse_forward."""
    return _elem_forward(MSE, y_pred, y_true, sample_weight, "y_pred")


def mse_backward(y_pred, y_true, sample_weight=None, out=None):
    """dL/dy_pred of mse_forward. See pynn.reference.mse_backward."""
    return _elem_backward(MSE, y_pred, y_true, sample_weight, out, "y_pred")


def mae_forward(y_pred, y_true, sample_weight=None):
    """Mean absolute error. See pynn.reference.mae_forward."""
    return _elem_forward(MAE, y_pred, y_true, sample_weight, "y_pred")


def mae_backward(y_pred, y_true, sample_weight=None, out=None):
    """dL/dy_pred of mae_forward (0 where y_pred == y_true)."""
    return _elem_backward(MAE, y_pred, y_true, sample_weight, out, "y_pred")


def binary_crossentropy_forward(y_pred, y_true, sample_weight=None, eps=1e-7):
    """Binary cross-entropy of probabilities clipped to [eps, 1 - eps] (Keras)."""
    return _elem_forward(BCE, y_pred, y_true, sample_weight, "y_pred", eps)


def binary_crossentropy_backward(y_pred, y_true, sample_weight=None, eps=1e-7, out=None):
    """dL/dy_pred of binary_crossentropy_forward, 0 where y_pred was clipped."""
    return _elem_backward(BCE, y_pred, y_true, sample_weight, out, "y_pred", eps)


def binary_crossentropy_logits_forward(logits, y_true, sample_weight=None):
    """Binary cross-entropy from logits, max(z, 0) - z y + log1p(exp(-|z|))."""
    return _elem_forward(BCEL, logits, y_true, sample_weight, "logits")


def binary_crossentropy_logits_backward(logits, y_true, sample_weight=None, out=None):
    """dL/dlogits = (sigmoid(z) - y) w_i / (B D)."""
    return _elem_backward(BCEL, logits, y_true, sample_weight, out, "logits")


# ---- categorical losses: (B, K) ----

def _cat_forward(kind, x, y_true, sample_weight, name, eps=_NO_EPS):
    x, t, w, B, K = _dense_args(x, y_true, sample_weight, name, True)
    e = _eps_or_zero(eps)
    return _run_forward(kind, x, t, None, w, e)


def _cat_backward(kind, x, y_true, sample_weight, out, name, eps=_NO_EPS):
    x, t, w, B, K = _dense_args(x, y_true, sample_weight, name, True)
    e = _eps_or_zero(eps)
    out = _out(out, x, (t, w))
    return _run_backward(kind, out, x, t, None, w, e)


cdef bint _plain_sparse(x, labels, sample_weight, eps) noexcept:
    """Plainly valid (pynn/_ext/_fast.pxd): x a plain 2-D float array with K >= 1 classes,
    labels a plain int64 array (B,) in [0, K), no sample weights, eps _NO_EPS or a float in
    [0, 0.5) -- what _label_args and _eps pass through unchanged."""
    if sample_weight is not None or not _fast.float_type(x):
        return False
    if eps is not _NO_EPS and not _fast.float_in(eps, 0.0, 0.5, False, True):
        return False
    cdef cnp.ndarray X = <cnp.ndarray>x
    return (cnp.PyArray_NDIM(X) == 2 and cnp.PyArray_DIM(X, 1) > 0
            and _fast.labels_ok(labels, cnp.PyArray_DIM(X, 0), cnp.PyArray_DIM(X, 1)))


def _sparse_forward(kind, x, labels, sample_weight, name, eps=_NO_EPS):
    if _plain_sparse(x, labels, sample_weight, eps):
        return _run_forward(kind, x, None, labels, None, 0.0 if eps is _NO_EPS else eps)
    x, y, w, B, K = _label_args(x, labels, sample_weight, name)
    e = _eps_or_zero(eps)
    return _run_forward(kind, x, None, y, w, e)


def _sparse_backward(kind, x, labels, sample_weight, out, name, eps=_NO_EPS):
    if _plain_sparse(x, labels, sample_weight, eps):
        checked = _fast.new_like(out, <cnp.ndarray>x)
        if (checked is not None and _fast.inplace_ok(checked, <cnp.ndarray>x)
                and not np.may_share_memory(checked, labels)):  # labels read during the write
            return _run_backward(kind, checked, x, None, labels, None,
                                 0.0 if eps is _NO_EPS else eps)
    x, y, w, B, K = _label_args(x, labels, sample_weight, name)
    e = _eps_or_zero(eps)
    out = _out(out, x, (y, w))  # labels are read while out is written
    return _run_backward(kind, out, x, None, y, w, e)


def categorical_crossentropy_forward(y_pred, y_true, sample_weight=None, eps=1e-7):
    """Categorical cross-entropy of (B, K) probabilities, renormalised and clipped (Keras)."""
    return _cat_forward(CCE, y_pred, y_true, sample_weight, "y_pred", eps)


def categorical_crossentropy_backward(y_pred, y_true, sample_weight=None, eps=1e-7, out=None):
    """dL/dy_pred of categorical_crossentropy_forward."""
    return _cat_backward(CCE, y_pred, y_true, sample_weight, out, "y_pred", eps)


def sparse_categorical_crossentropy_forward(y_pred, labels, sample_weight=None, eps=1e-7):
    """Categorical cross-entropy of (B, K) probabilities against integer labels (B,)."""
    return _sparse_forward(SCCE, y_pred, labels, sample_weight, "y_pred", eps)


def sparse_categorical_crossentropy_backward(y_pred, labels, sample_weight=None, eps=1e-7,
                                             out=None):
    """dL/dy_pred of sparse_categorical_crossentropy_forward."""
    return _sparse_backward(SCCE, y_pred, labels, sample_weight, out, "y_pred", eps)


def softmax_cross_entropy_forward(logits, labels, sample_weight=None):
    """Fused, max-subtracted softmax + cross-entropy against integer labels (B,)."""
    return _sparse_forward(SMCE, logits, labels, sample_weight, "logits")


def softmax_cross_entropy_backward(logits, labels, sample_weight=None, out=None):
    """dL/dlogits = (softmax(logits) - onehot(labels)) w_i / B."""
    return _sparse_backward(SMCE, logits, labels, sample_weight, out, "logits")


def softmax_categorical_crossentropy_forward(logits, y_true, sample_weight=None):
    """Fused, max-subtracted softmax + cross-entropy against (B, K) targets."""
    return _cat_forward(SMCCE, logits, y_true, sample_weight, "logits")


def softmax_categorical_crossentropy_backward(logits, y_true, sample_weight=None, out=None):
    """dL/dlogits = ((sum_k y_k) softmax(logits) - y_true) w_i / B."""
    return _cat_backward(SMCCE, logits, y_true, sample_weight, out, "logits")
