"""Counter-based dropout: NumPy reference (the spec of csrc/dropout.c).

The keep decision of flat (C-order) element i is a pure function of (seed, step, i):
    mix(z)  = splitmix64 finalizer (xor-shift 30, * 0xBF58476D1CE4E5B9, xor-shift 27,
              * 0x94D049BB133111EB, xor-shift 31), arithmetic mod 2**64
    G       = 0x9E3779B97F4A7C15
    key     = mix(mix(seed + G) ^ (step * G))
    bits(i) = mix(key + (i + 1) * G)
keep iff (bits >> 40) >= ceil(rate * 2**24) for float32 (a 24-bit uniform u >= rate), and
(bits >> 11) >= ceil(rate * 2**53) for float64. Kept elements are multiplied by
scale = dtype(1 / (1 - rate)); dropped elements are 0. uint64 arrays wrap like C, so the
masks are bit-identical with the C backend.
"""
import math

import numpy as np

from .. import _checks

__all__ = ["dropout_forward", "dropout_backward", "dropout_mask"]

_G = 0x9E3779B97F4A7C15
_M1 = 0xBF58476D1CE4E5B9
_M2 = 0x94D049BB133111EB
_MASK64 = (1 << 64) - 1
_SHIFT = {np.dtype(np.float32): 40, np.dtype(np.float64): 11}


def _mix_int(z):
    """splitmix64 finalizer on a Python int (mod 2**64)."""
    z &= _MASK64
    z = ((z ^ (z >> 30)) * _M1) & _MASK64
    z = ((z ^ (z >> 27)) * _M2) & _MASK64
    return z ^ (z >> 31)


def _mix(z):
    """splitmix64 finalizer on a uint64 array (wraps mod 2**64)."""
    z = z ^ (z >> np.uint64(30))  # (n,)
    z *= np.uint64(_M1)  # (n,)
    z ^= z >> np.uint64(27)  # (n,)
    z *= np.uint64(_M2)  # (n,)
    return z ^ (z >> np.uint64(31))  # (n,)


def _check(rate, seed, step):
    return _checks.dropout_args(rate, seed, step)


def _keep(n, dtype, rate, seed, step):
    """Boolean keep decisions (n,) of flat elements 0..n-1."""
    shift = _SHIFT[np.dtype(dtype)]
    key = _mix_int(_mix_int(seed + _G) ^ ((step * _G) & _MASK64))
    thr = math.ceil(rate * float(1 << (64 - shift)))
    i = np.arange(1, n + 1, dtype=np.uint64)  # (n,) = flat index + 1
    bits = _mix(np.uint64(key) + i * np.uint64(_G))  # (n,) wraps mod 2**64
    return (bits >> np.uint64(shift)) >= np.uint64(thr)  # (n,)


def _apply(x, rate, seed, step, out, name):
    x = _checks.float_array(x, name)
    rate, seed, step = _check(rate, seed, step)
    out = _checks.out_array(out, x.shape, x.dtype, inputs=(x,), allow_inplace=True)
    scale = x.dtype.type(1.0 / (1.0 - rate))
    keep = _keep(x.size, x.dtype, rate, seed, step).reshape(x.shape)  # x.shape
    out[...] = np.where(keep, x * scale, x.dtype.type(0))  # x.shape
    return out


def dropout_forward(x, rate, seed, step, out=None):
    """Inverted dropout: out = x * keep / (1 - rate), keep a pure function of (seed, step, i).

    x any shape float32/float64 (any layout); rate in [0, 1) (0: identity); seed, step ints
    in [0, 2**63); out may be x (in place).
    """
    return _apply(x, rate, seed, step, out, "x")


def dropout_backward(dy, rate, seed, step, out=None):
    """dx = dy * keep / (1 - rate) with the forward mask of the same (rate, seed, step)."""
    return _apply(dy, rate, seed, step, out, "dy")


def dropout_mask(shape, rate, seed, step, dtype=np.float32):
    """The mask keep / (1 - rate) (values 0 or 1 / (1 - rate)) as an array of `shape`."""
    shape, dtype = _checks.shape_dtype(shape, dtype)
    rate, seed, step = _check(rate, seed, step)
    n = math.prod(shape)
    scale = dtype.type(1.0 / (1.0 - rate))
    keep = _keep(n, dtype, rate, seed, step).reshape(shape)  # shape
    return np.where(keep, scale, dtype.type(0)).astype(dtype, copy=False)  # shape

