# cython: language_level=3
"""C backend of pynn.reference.reduce: column sums, row argmax, correct counts.

Each wrapper checks its arguments with pynn._checks (the same checks as the reference),
then makes one C call with the GIL released. Strided 2-D inputs are passed by strides.

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

cdef extern from "reduce.h" nogil:
    void pynn_column_sum_f32(float *out, const float *x, pynn_idx B, pynn_idx N,
                             pynn_idx rsx, pynn_idx csx, pynn_ctx ctx)
    void pynn_column_sum_f64(double *out, const double *x, pynn_idx B, pynn_idx N,
                             pynn_idx rsx, pynn_idx csx, pynn_ctx ctx)
    void pynn_row_argmax_f32(int64_t *out, const float *x, pynn_idx B, pynn_idx N,
                             pynn_idx rsx, pynn_idx csx, pynn_ctx ctx)
    void pynn_row_argmax_f64(int64_t *out, const double *x, pynn_idx B, pynn_idx N,
                             pynn_idx rsx, pynn_idx csx, pynn_ctx ctx)
    pynn_idx pynn_count_correct_f32(const float *x, const int64_t *labels, pynn_idx B,
                                    pynn_idx N, pynn_idx rsx, pynn_idx csx, pynn_ctx ctx)
    pynn_idx pynn_count_correct_f64(const double *x, const int64_t *labels, pynn_idx B,
                                    pynn_idx N, pynn_idx rsx, pynn_idx csx, pynn_ctx ctx)

__all__ = ["column_sum", "row_argmax", "count_correct", "accuracy"]


cdef void _column_sum(floating[::1] out,            # OUT (N,)
                      const floating[:, :] x,       # IN  (B, N)
                      pynn_ctx ctx) noexcept:
    cdef pynn_idx B = x.shape[0], N = x.shape[1]
    cdef pynn_idx rs = x.strides[0] // sizeof(floating), cs = x.strides[1] // sizeof(floating)
    if N == 0:
        return
    with nogil:
        if floating is float:
            pynn_column_sum_f32(&out[0], &x[0, 0] if B else NULL, B, N, rs, cs, ctx)
        else:
            pynn_column_sum_f64(&out[0], &x[0, 0] if B else NULL, B, N, rs, cs, ctx)


def column_sum(x, out=None):
    """Sum of a 2-D array over its rows: x (B, N) -> out (N,). See pynn.reference.column_sum."""
    cdef cnp.npy_intp n
    cdef int t = _fast.float_type(x)
    checked = None
    if t and cnp.PyArray_NDIM(<cnp.ndarray>x) == 2:
        n = cnp.PyArray_DIM(<cnp.ndarray>x, 1)
        checked = _fast.new_or_out(out, 1, &n, t)
        if checked is not None and not _fast.disjoint(checked, <cnp.ndarray>x):
            checked = None
    if checked is None:
        x = _checks.float_array(x, "x", ndim=2)
        checked = _checks.out_array(out, (x.shape[1],), x.dtype, inputs=(x,))
    out = checked
    if cnp.PyArray_TYPE(<cnp.ndarray>x) == cnp.NPY_FLOAT32:
        _column_sum[float](out, x, get_ctx())
    else:
        _column_sum[double](out, x, get_ctx())
    return out


cdef void _row_argmax(int64_t[::1] out,             # OUT (B,)
                      const floating[:, :] x,       # IN  (B, N)
                      pynn_ctx ctx) noexcept:
    cdef pynn_idx B = x.shape[0], N = x.shape[1]
    cdef pynn_idx rs = x.strides[0] // sizeof(floating), cs = x.strides[1] // sizeof(floating)
    if B == 0:
        return
    with nogil:
        if floating is float:
            pynn_row_argmax_f32(&out[0], &x[0, 0], B, N, rs, cs, ctx)
        else:
            pynn_row_argmax_f64(&out[0], &x[0, 0], B, N, rs, cs, ctx)


def row_argmax(x, out=None):
    """Index of the largest entry of each row: x (B, N) -> out (B,) int64."""
    x = _checks.float_array(x, "x", ndim=2)
    if x.shape[1] == 0:
        raise ValueError(f"row_argmax needs at least one column, received shape {x.shape}")
    out = _checks.out_array(out, (x.shape[0],), np.int64, inputs=(x,))
    if cnp.PyArray_TYPE(<cnp.ndarray>x) == cnp.NPY_FLOAT32:
        _row_argmax[float](out, x, get_ctx())
    else:
        _row_argmax[double](out, x, get_ctx())
    return out


cdef pynn_idx _count_correct(const floating[:, :] x,       # IN (B, N)
                             const int64_t[::1] labels,    # IN (B,)
                             pynn_ctx ctx) noexcept:
    cdef pynn_idx B = x.shape[0], N = x.shape[1], n = 0
    cdef pynn_idx rs = x.strides[0] // sizeof(floating), cs = x.strides[1] // sizeof(floating)
    if B == 0:
        return 0
    with nogil:
        if floating is float:
            n = pynn_count_correct_f32(&x[0, 0], &labels[0], B, N, rs, cs, ctx)
        else:
            n = pynn_count_correct_f64(&x[0, 0], &labels[0], B, N, rs, cs, ctx)
    return n


def count_correct(x, labels):
    """Number of rows whose argmax equals the integer label: x (B, N), labels (B,) -> int."""
    cdef int t = _fast.float_type(x)
    if not (t and cnp.PyArray_NDIM(<cnp.ndarray>x) == 2 and cnp.PyArray_DIM(<cnp.ndarray>x, 1)
            and _fast.labels_ok(labels, cnp.PyArray_DIM(<cnp.ndarray>x, 0),
                                cnp.PyArray_DIM(<cnp.ndarray>x, 1))):
        x = _checks.float_array(x, "x", ndim=2)
        if x.shape[1] == 0:
            raise ValueError(f"count_correct needs at least one column, received shape "
                             f"{x.shape}")
        labels = _checks.int_labels(labels, x.shape[0], x.shape[1])
    if cnp.PyArray_TYPE(<cnp.ndarray>x) == cnp.NPY_FLOAT32:
        return int(_count_correct[float](x, labels, get_ctx()))
    return int(_count_correct[double](x, labels, get_ctx()))


def accuracy(x, labels):
    """Fraction of rows whose argmax equals the integer label; 0.0 for an empty batch."""
    n = count_correct(x, labels)
    return n / x.shape[0] if x.shape[0] else 0.0
