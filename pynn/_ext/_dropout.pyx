# cython: language_level=3
"""C backend of pynn.reference.dropout: counter-based dropout (see csrc/dropout.c).

Each wrapper checks its arguments with pynn._checks (the same checks as the reference),
then makes one C call with the GIL released. The kernels walk the flat C-order index, so a
strided input is first copied into the (C-contiguous) output and dropped there in place.
"""
import numpy as np
from cython cimport floating
from libc.stdint cimport uint64_t

from pynn import _checks
from pynn._ext._csrc cimport pynn_idx, pynn_ctx
from pynn._ext._runtime cimport get_ctx

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
    rate = _checks.finite_scalar(rate, "rate", low=0.0, high=1.0, high_open=True)
    return rate, _checks.int_scalar(seed, "seed"), _checks.int_scalar(step, "step")


cdef void _apply(floating[::1] out,                 # OUT (n,)
                 const floating[::1] x,             # IN  (n,), may be out
                 double rate, uint64_t seed, uint64_t step, bint backward,
                 pynn_ctx ctx) noexcept:
    cdef pynn_idx n = out.shape[0]
    if n == 0:
        return
    with nogil:
        if floating is float:
            if backward:
                pynn_dropout_backward_f32(&out[0], &x[0], n, rate, seed, step, ctx)
            else:
                pynn_dropout_forward_f32(&out[0], &x[0], n, rate, seed, step, ctx)
        else:
            if backward:
                pynn_dropout_backward_f64(&out[0], &x[0], n, rate, seed, step, ctx)
            else:
                pynn_dropout_forward_f64(&out[0], &x[0], n, rate, seed, step, ctx)


def _run(x, rate, seed, step, out, name, bint backward):
    x = _checks.float_array(x, name)
    rate, seed, step = _check(rate, seed, step)
    out = _checks.out_array(out, x.shape, x.dtype, inputs=(x,), allow_inplace=True)
    if not x.flags.c_contiguous:
        out[...] = x        # flat C order is what the mask indexes; drop in place in out
        x = out
    xf, of = x.reshape(-1), out.reshape(-1)
    if x.dtype == np.float32:
        _apply[float](of, xf, rate, seed, step, backward, get_ctx())
    else:
        _apply[double](of, xf, rate, seed, step, backward, get_ctx())
    return out


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
