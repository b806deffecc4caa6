# cython: language_level=3
"""C backend of pynn.reference.dense: the fused Dense layer, forward and backward.

Each wrapper checks its arguments with pynn._checks (the same checks, in the same order, as
the reference) and makes one C call with the GIL released. x and w go to C by strides
(transposed, Fortran-ordered and sliced views are not copied); y and dy are made
C-contiguous (a copy only when they are not).
"""
import numpy as np
from cython cimport floating

from pynn import _checks
from pynn._ext._csrc cimport pynn_idx, pynn_ctx, PYNN_OK, PYNN_ENOMEM
from pynn._ext._runtime cimport get_ctx

cdef extern from "dense.h" nogil:
    int pynn_dense_forward_f32(float *out, const float *x, pynn_idx rsx, pynn_idx csx,
                               const float *w, pynn_idx rsw, pynn_idx csw, const float *b,
                               pynn_idx B, pynn_idx C, pynn_idx OC, int act, pynn_ctx ctx)
    int pynn_dense_forward_f64(double *out, const double *x, pynn_idx rsx, pynn_idx csx,
                               const double *w, pynn_idx rsw, pynn_idx csw, const double *b,
                               pynn_idx B, pynn_idx C, pynn_idx OC, int act, pynn_ctx ctx)
    int pynn_dense_backward_f32(float *dx, float *dw, float *db,
                                const float *x, pynn_idx rsx, pynn_idx csx,
                                const float *w, pynn_idx rsw, pynn_idx csw,
                                const float *y, const float *dy,
                                pynn_idx B, pynn_idx C, pynn_idx OC, int act, pynn_ctx ctx)
    int pynn_dense_backward_f64(double *dx, double *dw, double *db,
                                const double *x, pynn_idx rsx, pynn_idx csx,
                                const double *w, pynn_idx rsw, pynn_idx csw,
                                const double *y, const double *dy,
                                pynn_idx B, pynn_idx C, pynn_idx OC, int act, pynn_ctx ctx)

__all__ = ["dense_forward", "dense_backward"]

DENSE_ACTIVATIONS = ("linear", "relu", "sigmoid", "tanh")  # codes 0..3 = PYNN_ACT_* in C


cdef inline const floating *_p2(const floating[:, :] a) noexcept:
    """Address of a[0, 0], NULL for an empty array (never dereferenced then)."""
    return &a[0, 0] if a.shape[0] > 0 and a.shape[1] > 0 else NULL


cdef int _forward(floating[:, ::1] out,            # OUT (B, OC)
                  const floating[:, :] x,          # IN  (B, C)
                  const floating[:, :] w,          # IN  (C, OC)
                  const floating[::1] b,           # IN  (OC,) or None
                  int act, pynn_ctx ctx) noexcept:
    cdef pynn_idx B = x.shape[0], C = x.shape[1], OC = w.shape[1]
    cdef pynn_idx rsx = x.strides[0] // sizeof(floating), csx = x.strides[1] // sizeof(floating)
    cdef pynn_idx rsw = w.strides[0] // sizeof(floating), csw = w.strides[1] // sizeof(floating)
    cdef const floating *px = _p2(x)
    cdef const floating *pw = _p2(w)
    cdef const floating *pb = &b[0] if b is not None and OC > 0 else NULL
    cdef floating *po = &out[0, 0] if B > 0 and OC > 0 else NULL
    cdef int st
    with nogil:
        if floating is float:
            st = pynn_dense_forward_f32(po, px, rsx, csx, pw, rsw, csw, pb, B, C, OC, act, ctx)
        else:
            st = pynn_dense_forward_f64(po, px, rsx, csx, pw, rsw, csw, pb, B, C, OC, act, ctx)
    return st


def _weights(x, w, b):
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


def _status(int st):
    if st == PYNN_ENOMEM:
        raise MemoryError("dense: the C kernel could not allocate its scratch memory")
    if st != PYNN_OK:
        raise RuntimeError(f"dense: the C kernel failed with status {st}")


def dense_forward(x, w, b=None, activation="linear", out=None):
    """y = act(x @ w + b): x (B, C), w (C, OC), b (OC,) or None -> out (B, OC).

    See pynn.reference.dense_forward."""
    act = DENSE_ACTIVATIONS.index(_checks.one_of(activation, "activation", DENSE_ACTIVATIONS))
    x, w, b = _weights(x, w, b)
    out = _checks.out_array(out, (x.shape[0], w.shape[1]), x.dtype, inputs=(x, w, b))
    b = _checks.contiguous(b) if b is not None else None
    if x.dtype == np.float32:
        _status(_forward[float](out, x, w, b, act, get_ctx()))
    else:
        _status(_forward[double](out, x, w, b, act, get_ctx()))
    return out


cdef int _backward(floating[:, ::1] dx,           # OUT (B, C) or None
                   floating[:, ::1] dw,           # OUT (C, OC)
                   floating[::1] db,              # OUT (OC,)
                   const floating[:, :] x,        # IN  (B, C)
                   const floating[:, :] w,        # IN  (C, OC)
                   const floating[:, ::1] y,      # IN  (B, OC) or None ("linear")
                   const floating[:, ::1] dy,     # IN  (B, OC)
                   int act, pynn_ctx ctx) noexcept:
    cdef pynn_idx B = x.shape[0], C = x.shape[1], OC = w.shape[1]
    cdef pynn_idx rsx = x.strides[0] // sizeof(floating), csx = x.strides[1] // sizeof(floating)
    cdef pynn_idx rsw = w.strides[0] // sizeof(floating), csw = w.strides[1] // sizeof(floating)
    cdef const floating *px = _p2(x)
    cdef const floating *pw = _p2(w)
    cdef const floating *py = &y[0, 0] if y is not None and B > 0 and OC > 0 else NULL
    cdef const floating *pdy = &dy[0, 0] if B > 0 and OC > 0 else NULL
    cdef floating *pdx = &dx[0, 0] if dx is not None and B > 0 and C > 0 else NULL
    cdef floating *pdw = &dw[0, 0] if C > 0 and OC > 0 else NULL
    cdef floating *pdb = &db[0] if OC > 0 else NULL
    cdef int st
    with nogil:
        if floating is float:
            st = pynn_dense_backward_f32(pdx, pdw, pdb, px, rsx, csx, pw, rsw, csw, py, pdy,
                                         B, C, OC, act, ctx)
        else:
            st = pynn_dense_backward_f64(pdx, pdw, pdb, px, rsx, csx, pw, rsw, csw, py, pdy,
                                         B, C, OC, act, ctx)
    return st


def dense_backward(x, w, y, dy, activation="linear", need_dx=True, dx=None, dw=None, db=None):
    """Gradients of dense_forward: (dx (B, C) or None, dw (C, OC), db (OC,)).

    See pynn.reference.dense_backward."""
    act = DENSE_ACTIVATIONS.index(_checks.one_of(activation, "activation", DENSE_ACTIVATIONS))
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
    ins = (x, w, y, dy)
    dx = _checks.out_array(dx, (B, C), x.dtype, "dx", inputs=ins) if need_dx else None
    dw = _checks.out_array(dw, (C, OC), x.dtype, "dw", inputs=ins + (dx,))
    db = _checks.out_array(db, (OC,), x.dtype, "db", inputs=ins + (dx, dw))
    dyc = _checks.contiguous(dy)
    yc = _checks.contiguous(y) if act != 0 else None  # "linear" never reads y
    if x.dtype == np.float32:
        _status(_backward[float](dx, dw, db, x, w, yc, dyc, act, get_ctx()))
    else:
        _status(_backward[double](dx, dw, db, x, w, yc, dyc, act, get_ctx()))
    return dx, dw, db
