# cython: language_level=3
"""C backend of pynn.reference.dense: the fused Dense layer, forward and backward.

Each wrapper checks its arguments with pynn._checks (the same checks, in the same order, as
the reference) and makes one C call with the GIL released. x and w go to C by strides
(transposed, Fortran-ordered and sliced views are not copied); y and dy are made
C-contiguous (a copy only when they are not).

Fast path: a plainly valid call (exact, C-contiguous, aligned, native arrays of one float
dtype, see pynn/_ext/_fast.pxd) is recognised with C-level tests and goes straight to C;
every other call, valid or not, takes the pynn._checks path above, so errors are unchanged.
"""
import numpy as np
cimport numpy as cnp

from pynn import _checks
from pynn._ext._csrc cimport pynn_idx, pynn_ctx, PYNN_OK, PYNN_ENOMEM
from pynn._ext._runtime cimport get_ctx
from pynn._ext cimport _fast

cnp.import_array()

cdef extern from "dense.h" nogil:
    int pynn_dense_forward_f32(float *out, float *grad, const float *x, pynn_idx rsx, pynn_idx csx,
                               const float *w, pynn_idx rsw, pynn_idx csw, const float *b,
                               const float *res, pynn_idx B, pynn_idx C, pynn_idx OC, int act,
                               pynn_ctx ctx)
    int pynn_dense_forward_f64(double *out, double *grad, const double *x, pynn_idx rsx,
                               pynn_idx csx,
                               const double *w, pynn_idx rsw, pynn_idx csw, const double *b,
                               const double *res, pynn_idx B, pynn_idx C, pynn_idx OC, int act,
                               pynn_ctx ctx)
    int pynn_dense_backward_f32(float *dx, float *dw, float *db,
                                const float *x, pynn_idx rsx, pynn_idx csx,
                                const float *w, pynn_idx rsw, pynn_idx csw,
                                const float *y, const float *dy, const float *dxm,
                                pynn_idx B, pynn_idx C, pynn_idx OC, int act, pynn_ctx ctx)
    int pynn_dense_backward_f64(double *dx, double *dw, double *db,
                                const double *x, pynn_idx rsx, pynn_idx csx,
                                const double *w, pynn_idx rsw, pynn_idx csw,
                                const double *y, const double *dy, const double *dxm,
                                pynn_idx B, pynn_idx C, pynn_idx OC, int act, pynn_ctx ctx)

__all__ = ["dense_forward", "dense_backward"]

# codes 0..3 = PYNN_ACT_* in C; 4, 5 = PYNN_ACT_GELU, PYNN_ACT_GELU_TANH (forward only)
DENSE_ACTIVATIONS = ("linear", "relu", "sigmoid", "tanh")
FORWARD_ACTIVATIONS = DENSE_ACTIVATIONS + ("gelu", "gelu_tanh")


cdef inline void *_d(a, bint nonempty) noexcept:
    """Data of a checked array, NULL when it is None or empty (never dereferenced then)."""
    return cnp.PyArray_DATA(<cnp.ndarray>a) if a is not None and nonempty else NULL


cdef inline pynn_idx _st(cnp.ndarray a, int d) noexcept:
    """Element stride of axis d."""
    return cnp.PyArray_STRIDE(a, d) // cnp.PyArray_ITEMSIZE(a)


cdef int _forward(cnp.ndarray out,         # OUT (B, OC), C-contiguous
                  cnp.ndarray x,           # IN  (B, C), any strides
                  cnp.ndarray w,           # IN  (C, OC), any strides
                  b,                       # IN  (OC,) contiguous, or None
                  res,                     # IN  (B, OC) C-contiguous, or None
                  grad,                    # OUT (B, OC) C-contiguous, or None (GELU)
                  int act, pynn_ctx ctx) noexcept:
    cdef pynn_idx B = cnp.PyArray_DIM(x, 0), C = cnp.PyArray_DIM(x, 1)
    cdef pynn_idx OC = cnp.PyArray_DIM(w, 1)
    cdef pynn_idx rsx = _st(x, 0), csx = _st(x, 1), rsw = _st(w, 0), csw = _st(w, 1)
    cdef const void *px = _d(x, B > 0 and C > 0)
    cdef const void *pw = _d(w, C > 0 and OC > 0)
    cdef const void *pb = _d(b, OC > 0)
    cdef const void *pr = _d(res, B > 0 and OC > 0)
    cdef void *po = _d(out, B > 0 and OC > 0)
    cdef void *pg = _d(grad, B > 0 and OC > 0)
    cdef int st
    with nogil:
        if cnp.PyArray_ITEMSIZE(x) == 4:
            st = pynn_dense_forward_f32(<float *>po, <float *>pg, <const float *>px, rsx, csx,
                                        <const float *>pw, rsw, csw, <const float *>pb,
                                        <const float *>pr, B, C, OC, act, ctx)
        else:
            st = pynn_dense_forward_f64(<double *>po, <double *>pg, <const double *>px, rsx, csx,
                                        <const double *>pw, rsw, csw, <const double *>pb,
                                        <const double *>pr, B, C, OC, act, ctx)
    return st


# argument checks: the very functions of pynn.reference.dense, so both backends refuse bad
# input identically
from pynn.reference.dense import forward_args, backward_args


def _status(int st):
    if st == PYNN_ENOMEM:
        raise MemoryError("dense: the C kernel could not allocate its scratch memory")
    if st != PYNN_OK:
        raise RuntimeError(f"dense: the C kernel failed with status {st}")


cdef int _act_code(activation, tuple names) noexcept:
    """Index of an exact str activation in names, -1 otherwise (checked later)."""
    if type(activation) is str:
        for i, a in enumerate(names):
            if activation == a:
                return i
    return -1


cdef bint _plain_xw(x, w) noexcept:
    """x (B, C) and w (C, OC): plain 2-D arrays (pynn/_ext/_fast.pxd) of one float type."""
    cdef int t = _fast.float_type(x)
    return (t and cnp.PyArray_NDIM(<cnp.ndarray>x) == 2 and _fast.plain_2d(w, t)
            and cnp.PyArray_DIM(<cnp.ndarray>w, 0) == cnp.PyArray_DIM(<cnp.ndarray>x, 1))


cdef bint _plain_vec(b, cnp.npy_intp n, int t) noexcept:
    return _fast.plain(b, t) and cnp.PyArray_NDIM(<cnp.ndarray>b) == 1 and \
        cnp.PyArray_DIM(<cnp.ndarray>b, 0) == n


cdef bint _apart(o, tuple ins) noexcept:
    """Output o (None: absent) meets none of the arrays in ins (None entries skipped)."""
    if o is None:
        return True
    for a in ins:
        if a is not None and not _fast.disjoint(<cnp.ndarray>o, <cnp.ndarray>a):
            return False
    return True


def dense_forward(x, w, b=None, activation="linear", out=None, residual=None, grad=None):
    """y = act(x @ w + b) + residual: x (B, C), w (C, OC), b (OC,) or None, residual (B, OC)
    or None -> out (B, OC); with a GELU, grad (B, OC) may also receive its derivative.

    See pynn.reference.dense_forward."""
    cdef int act = _act_code(activation, FORWARD_ACTIVATIONS)
    cdef cnp.npy_intp dims[2]
    cdef int t
    checked = None
    if act >= 0 and (grad is None or act >= 4) and _plain_xw(x, w):
        t = cnp.PyArray_TYPE(<cnp.ndarray>x)
        dims[0] = cnp.PyArray_DIM(<cnp.ndarray>x, 0)
        dims[1] = cnp.PyArray_DIM(<cnp.ndarray>w, 1)
        if (b is None or _plain_vec(b, dims[1], t)) and (
                residual is None or (_fast.plain_2d(residual, t)
                                     and cnp.PyArray_DIM(<cnp.ndarray>residual, 0) == dims[0]
                                     and cnp.PyArray_DIM(<cnp.ndarray>residual, 1) == dims[1])):
            checked = _fast.new_or_out(out, 2, dims, t)
            if checked is not None and not (out is None or _apart(out, (x, w, b, residual))):
                checked = None
            if checked is not None and grad is not None:  # GELU's derivative, given
                if (_fast.new_or_out(grad, 2, dims, t) is None
                        or not _apart(grad, (x, w, b, residual, checked))):
                    checked = None
    if checked is None:
        x, w, b, checked, residual, grad = forward_args(x, w, b, activation, out, residual,
                                                        grad)
        act = FORWARD_ACTIVATIONS.index(activation)
        b = _checks.contiguous(b) if b is not None else None
        residual = _checks.contiguous(residual) if residual is not None else None
    _status(_forward(checked, x, w, b, residual, grad, act, get_ctx()))
    return checked


cdef int _backward(dx,                     # OUT (B, C) or None, C-contiguous
                   cnp.ndarray dw,         # OUT (C, OC), C-contiguous
                   cnp.ndarray db,         # OUT (OC,)
                   cnp.ndarray x,          # IN  (B, C), any strides
                   cnp.ndarray w,          # IN  (C, OC), any strides
                   y,                      # IN  (B, OC) C-contiguous, or None ("linear")
                   cnp.ndarray dy,         # IN  (B, OC), C-contiguous
                   dxm,                    # IN  (B, C) C-contiguous, or None
                   int act, pynn_ctx ctx) noexcept:
    cdef pynn_idx B = cnp.PyArray_DIM(x, 0), C = cnp.PyArray_DIM(x, 1)
    cdef pynn_idx OC = cnp.PyArray_DIM(w, 1)
    cdef pynn_idx rsx = _st(x, 0), csx = _st(x, 1), rsw = _st(w, 0), csw = _st(w, 1)
    cdef const void *px = _d(x, B > 0 and C > 0)
    cdef const void *pw = _d(w, C > 0 and OC > 0)
    cdef const void *py = _d(y, B > 0 and OC > 0)
    cdef const void *pdy = _d(dy, B > 0 and OC > 0)
    cdef void *pdx = _d(dx, B > 0 and C > 0)
    cdef void *pdw = _d(dw, C > 0 and OC > 0)
    cdef void *pdb = _d(db, OC > 0)
    cdef const void *pm = _d(dxm, B > 0 and C > 0)
    cdef int st
    with nogil:
        if cnp.PyArray_ITEMSIZE(x) == 4:
            st = pynn_dense_backward_f32(<float *>pdx, <float *>pdw, <float *>pdb,
                                         <const float *>px, rsx, csx, <const float *>pw, rsw,
                                         csw, <const float *>py, <const float *>pdy,
                                         <const float *>pm, B, C, OC, act, ctx)
        else:
            st = pynn_dense_backward_f64(<double *>pdx, <double *>pdw, <double *>pdb,
                                         <const double *>px, rsx, csx, <const double *>pw,
                                         rsw, csw, <const double *>py, <const double *>pdy,
                                         <const double *>pm, B, C, OC, act, ctx)
    return st


cdef tuple _plain_backward(x, w, y, dy, int act, need_dx, dx, dw, db, dx_mul):
    """(dx, dw, db) checked or allocated when the call is plainly valid, else None."""
    if act < 0 or not (need_dx is True or need_dx is False) or not _plain_xw(x, w):
        return None
    if dx_mul is not None and (need_dx is False or not _fast.plain_2d(
            dx_mul, cnp.PyArray_TYPE(<cnp.ndarray>x)) or not cnp.PyArray_SAMESHAPE(
            <cnp.ndarray>dx_mul, <cnp.ndarray>x)):
        return None
    cdef int t = cnp.PyArray_TYPE(<cnp.ndarray>x)
    cdef cnp.npy_intp d[3]
    d[0] = cnp.PyArray_DIM(<cnp.ndarray>x, 0)     # B
    d[1] = cnp.PyArray_DIM(<cnp.ndarray>x, 1)     # C
    d[2] = cnp.PyArray_DIM(<cnp.ndarray>w, 1)     # OC
    if not _fast.plain_2d(dy, t) or (y is not None and not _fast.plain_2d(y, t)):
        return None
    if cnp.PyArray_DIM(<cnp.ndarray>dy, 0) != d[0] or cnp.PyArray_DIM(<cnp.ndarray>dy, 1) != d[2]:
        return None
    if y is None:
        if act != 0:
            return None
    elif cnp.PyArray_DIM(<cnp.ndarray>y, 0) != d[0] or cnp.PyArray_DIM(<cnp.ndarray>y, 1) != d[2]:
        return None
    if need_dx is False:
        if dx is not None:
            return None
        cdx = None
    else:
        cdx = _fast.new_or_out(dx, 2, d, t)
        if cdx is None:
            return None
    cdw = _fast.new_or_out(dw, 2, &d[1], t)
    cdb = _fast.new_or_out(db, 1, &d[2], t)
    if cdw is None or cdb is None:
        return None
    ins = (x, w, y, dy, dx_mul)
    if not (_apart(dx, ins) and _apart(dw, ins + (cdx,)) and _apart(db, ins + (cdx, cdw))):
        return None
    return cdx, cdw, cdb


def dense_backward(x, w, y, dy, activation="linear", need_dx=True, dx=None, dw=None, db=None,
                   dx_mul=None):
    """Gradients of dense_forward: (dx (B, C) or None, dw (C, OC), db (OC,)); dx times dx_mul
    (B, C) when given.

    See pynn.reference.dense_backward."""
    cdef int act = _act_code(activation, DENSE_ACTIVATIONS)
    checked = _plain_backward(x, w, y, dy, act, need_dx, dx, dw, db, dx_mul)
    if checked is not None:
        dx, dw, db = checked
    else:
        x, w, y, dy, dx, dw, db, dx_mul = backward_args(x, w, y, dy, activation, need_dx, dx,
                                                        dw, db, dx_mul)
        act = DENSE_ACTIVATIONS.index(activation)
        dy = _checks.contiguous(dy)
        y = _checks.contiguous(y) if act != 0 else None
    _status(_backward(dx, dw, db, x, w, y if act != 0 else None, dy, dx_mul, act, get_ctx()))
    return dx, dw, db
