# cython: language_level=3
"""C backend of pynn.reference.dropout: counter-based dropout (see csrc/dropout.c).

Each wrapper checks its arguments with pynn._checks (the same checks as the reference),
then makes one C call with the GIL released. The kernels walk the flat C-order index, so a
strided input is first copied into the (C-contiguous) output and dropped there in place.

Fast path: a plainly valid call (exact, C-contiguous, aligned, native arrays of one float
dtype, see pynn/_ext/_fast.pxd) is recognised with C-level tests and goes straight to C;
every other call, valid or not, takes the pynn._checks path above, so errors are unchanged.
"""
import numpy as np
cimport numpy as cnp
from cython cimport floating
from libc.stdint cimport uint64_t

from pynn import _checks
from pynn._ext._csrc cimport pynn_idx, pynn_ctx
from pynn._ext._runtime cimport get_ctx
from pynn._ext cimport _fast

cnp.import_array()

cdef extern from "dropout.h" nogil:
    void pynn_dropout_forward_f32(float *out, const float *x, pynn_idx n, double rate,
                                  uint64_t seed, uint64_t step, pynn_ctx ctx)
    void pynn_dropout_forward_f64(double *out, const double *x, pynn_idx n, double rate,
                                  uint64_t seed, uint64_t step, pynn_ctx ctx)
    void pynn_dropout_backward_f32(float *dx, const float *dy, pynn_idx n, double rate,
                                   uint64_t seed, uint64_t step, pynn_ctx ctx)
    void pynn_dropout_backward_f64(double *dx, const double *dy, pynn_idx n, double rate,
                                   uint64_t seed, uint64_t step, pynn_ctx ctx)
    void pynn_dropout_mask_f32(float *out, pynn_idx n, double rate, uint64_t seed,
                               uint64_t step, pynn_ctx ctx)
    void pynn_dropout_mask_f64(double *out, pynn_idx n, double rate, uint64_t seed,
                               uint64_t step, pynn_ctx ctx)

__all__ = ["dropout_forward", "dropout_backward", "dropout_mask"]


def _check(rate, seed, step):
    return _checks.dropout_args(rate, seed, step)


cdef void _apply(floating *out,                     # OUT (n,)
                 const floating *x,                 # IN  (n,), may be out
                 pynn_idx n, double rate, uint64_t seed, uint64_t step, bint backward,
                 pynn_ctx ctx) noexcept:
    if n == 0:
        return
    with nogil:
        if floating is float:
            if backward:
                pynn_dropout_backward_f32(out, x, n, rate, seed, step, ctx)
            else:
                pynn_dropout_forward_f32(out, x, n, rate, seed, step, ctx)
        else:
            if backward:
                pynn_dropout_backward_f64(out, x, n, rate, seed, step, ctx)
            else:
                pynn_dropout_forward_f64(out, x, n, rate, seed, step, ctx)


cdef object _run(x, rate, seed, step, out, name, bint backward):
    # fast path: plain x, float rate in [0, 1), int seed and step in [0, 2**63), out that is
    # x, new or disjoint
    checked = None
    if (_fast.float_type(x) and _fast.float_in(rate, 0.0, 1.0, False, True)
            and _fast.int_in(seed, 0) and _fast.int_in(step, 0)):
        checked = _fast.new_like(out, <cnp.ndarray>x)
        if checked is not None and not _fast.inplace_ok(checked, x):
            checked = None
    if checked is None:
        x = _checks.float_array(x, name)
        rate, seed, step = _check(rate, seed, step)
        checked = _checks.out_array(out, x.shape, x.dtype, inputs=(x,), allow_inplace=True)
        if not x.flags.c_contiguous:
            checked[...] = x    # flat C order is what the mask indexes; drop in place in out
            x = checked
    cdef cnp.ndarray X = <cnp.ndarray>x, O = <cnp.ndarray>checked
    cdef pynn_idx n = cnp.PyArray_SIZE(X)
    if cnp.PyArray_TYPE(X) == cnp.NPY_FLOAT32:
        _apply[float](<float *>cnp.PyArray_DATA(O), <const float *>cnp.PyArray_DATA(X), n,
                      rate, seed, step, backward, get_ctx())
    else:
        _apply[double](<double *>cnp.PyArray_DATA(O), <const double *>cnp.PyArray_DATA(X), n,
                       rate, seed, step, backward, get_ctx())
    return checked


def dropout_forward(x, rate, seed, step, out=None):
    """out = x * keep(seed, step, i) / (1 - rate). See pynn.reference.dropout_forward."""
    return _run(x, rate, seed, step, out, "x", False)


def dropout_backward(dy, rate, seed, step, out=None):
    """dx = dy * keep(seed, step, i) / (1 - rate), the forward mask."""
    return _run(dy, rate, seed, step, out, "dy", True)


cdef void _mask(floating[::1] out, double rate, uint64_t seed, uint64_t step,  # OUT (n,)
                pynn_ctx ctx) noexcept:
    cdef pynn_idx n = out.shape[0]
    if n == 0:
        return
    with nogil:
        if floating is float:
            pynn_dropout_mask_f32(&out[0], n, rate, seed, step, ctx)
        else:
            pynn_dropout_mask_f64(&out[0], n, rate, seed, step, ctx)


def dropout_mask(shape, rate, seed, step, dtype=np.float32):
    """The mask keep / (1 - rate) as an array of `shape`. See pynn.reference.dropout_mask."""
    shape, dtype = _checks.shape_dtype(shape, dtype)
    rate, seed, step = _check(rate, seed, step)
    out = np.empty(shape, dtype)
    if dtype == np.float32:
        _mask[float](out.reshape(-1), rate, seed, step, get_ctx())
    else:
        _mask[double](out.reshape(-1), rate, seed, step, get_ctx())
    return out
