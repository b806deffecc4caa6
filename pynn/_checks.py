"""Argument checks shared by both backends, so pynn.ops and pynn.reference refuse the same
bad input with the same exception before any arithmetic runs (and before C is entered).

TypeError for a wrong type or dtype, ValueError for a wrong shape or value; messages say
what was expected, what was received, and how to fix it.
"""
import numpy as np

FLOAT_DTYPES = (np.dtype(np.float32), np.dtype(np.float64))


def float_array(x, name, ndim=None, min_ndim=None):
    """Return `x` as a float32/float64 ndarray safe for C: aligned and native byte order.

    Only a copy where strides cannot express the data (unaligned, byte-swapped).
    """
    if not isinstance(x, np.ndarray):
        raise TypeError(f"{name} must be a numpy.ndarray of float32 or float64, "
                        f"received {type(x).__name__}; convert with np.asarray({name}, np.float32)")
    if x.dtype not in FLOAT_DTYPES:
        raise TypeError(f"{name} must have dtype float32 or float64, received {x.dtype}; "
                        f"convert with {name}.astype(np.float32)")
    if ndim is not None and x.ndim != ndim:
        raise ValueError(f"{name} must be {ndim}-D, received shape {x.shape}")
    if min_ndim is not None and x.ndim < min_ndim:
        raise ValueError(f"{name} must have at least {min_ndim} dimension(s), received shape {x.shape}")
    if not x.flags.aligned or not x.dtype.isnative:
        x = np.ascontiguousarray(x, dtype=x.dtype.newbyteorder("="))
    return x


def same_dtype(dtype, **arrays):
    for name, a in arrays.items():
        if a is not None and a.dtype != dtype:
            raise TypeError(f"{name} has dtype {a.dtype} but the other inputs are {dtype}; "
                            f"pass arrays of one dtype")


def same_shape(shape, **arrays):
    for name, a in arrays.items():
        if a is not None and a.shape != shape:
            raise ValueError(f"{name} must have shape {shape}, received {a.shape}")


def contiguous(x):
    """C-contiguous view or copy (kernels that do not take strides)."""
    return x if x.flags.c_contiguous else np.ascontiguousarray(x)


def _same_layout(a, b):
    return (a.__array_interface__["data"][0] == b.__array_interface__["data"][0]
            and a.strides == b.strides and a.shape == b.shape)


def out_array(out, shape, dtype, name="out", inputs=(), allow_inplace=False):
    """Check or allocate an output buffer.

    out must be a writeable, aligned, C-contiguous ndarray of exactly `shape` and `dtype`.
    It may not overlap any array in `inputs`, except that with allow_inplace=True it may *be*
    one of them (same memory, same layout): elementwise kernels may run in place.
    """
    shape = tuple(shape)
    if out is None:
        return np.empty(shape, dtype=dtype)
    if not isinstance(out, np.ndarray):
        raise TypeError(f"{name} must be a numpy.ndarray, received {type(out).__name__}")
    if out.dtype != dtype:
        raise TypeError(f"{name} must have dtype {np.dtype(dtype)}, received {out.dtype}")
    if out.shape != shape:
        raise ValueError(f"{name} must have shape {shape}, received {out.shape}")
    if not out.flags.writeable:
        raise ValueError(f"{name} is read-only; pass a writeable array")
    if not out.flags.c_contiguous or not out.flags.aligned:
        raise ValueError(f"{name} must be C-contiguous and aligned; pass np.empty({shape}, dtype)")
    for a in inputs:
        if a is None or not np.may_share_memory(out, a):
            continue
        if allow_inplace and _same_layout(out, a):
            continue
        raise ValueError(f"{name} overlaps an input array; pass a separate buffer"
                         + (" or the input itself for in-place" if allow_inplace else ""))
    return out


def finite_scalar(value, name, low=None, high=None, low_open=False, high_open=False):
    """A Python float in [low, high] (or open ends); ValueError otherwise."""
    try:
        v = float(value)
    except (TypeError, ValueError):
        raise TypeError(f"{name} must be a real number, received {value!r}") from None
    if v != v or v in (float("inf"), float("-inf")):
        raise ValueError(f"{name} must be finite, received {value!r}")
    if low is not None and (v < low or (low_open and v == low)):
        raise ValueError(f"{name} must be {'>' if low_open else '>='} {low}, received {value!r}")
    if high is not None and (v > high or (high_open and v == high)):
        raise ValueError(f"{name} must be {'<' if high_open else '<='} {high}, received {value!r}")
    return v


def finite(x, name):
    """ValueError if the array x holds NaN or infinity (targets, weights)."""
    if not np.isfinite(x).all():
        raise ValueError(f"{name} contains NaN or infinity; clean or mask those entries first")


def int_labels(labels, n, num_classes, name="labels"):
    """Integer class labels of shape (n,) in [0, num_classes) as a contiguous int64 array.

    Float labels are accepted only when they hold exact integers (Keras passes float
    labels around); NaN, fractions and out-of-range classes raise ValueError.
    """
    if not isinstance(labels, np.ndarray):
        labels = np.asarray(labels)
    if labels.shape != (n,):
        raise ValueError(f"{name} must have shape ({n},), received {labels.shape}")
    if labels.dtype.kind == "f":
        if not np.all(np.isfinite(labels)):
            raise ValueError(f"{name} contain NaN or infinity")
        if not np.all(labels == np.floor(labels)):
            raise ValueError(f"{name} must be whole numbers, received fractional values")
    elif labels.dtype.kind not in "iub":
        raise TypeError(f"{name} must be integers, received dtype {labels.dtype}")
    if n:
        lo, hi = labels.min(), labels.max()
        if lo < 0 or hi >= num_classes:
            raise ValueError(f"{name} must be in [0, {num_classes}) for {num_classes} classes, "
                             f"received values from {lo} to {hi}")
    return np.ascontiguousarray(labels, dtype=np.int64)


def int_scalar(value, name, low=0, high=2**63):
    """A Python int in [low, high) (bool and floats are a TypeError); ValueError outside."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, np.integer)):
        raise TypeError(f"{name} must be an integer, received {value!r}")
    v = int(value)
    if v < low or v >= high:
        raise ValueError(f"{name} must be in [{low}, {high}), received {v}")
    return v


def state_array(a, name, like=None):
    """An array updated in place by a kernel: float32/float64 ndarray, C-contiguous, aligned,
    writeable, with the shape and dtype of `like` when given. Never copied."""
    if not isinstance(a, np.ndarray):
        raise TypeError(f"{name} must be a numpy.ndarray of float32 or float64, "
                        f"received {type(a).__name__}")
    if a.dtype not in FLOAT_DTYPES:
        raise TypeError(f"{name} must have dtype float32 or float64, received {a.dtype}")
    if like is not None:
        if a.dtype != like.dtype:
            raise TypeError(f"{name} has dtype {a.dtype} but param is {like.dtype}; "
                            f"pass arrays of one dtype")
        if a.shape != like.shape:
            raise ValueError(f"{name} must have shape {like.shape} like param, received {a.shape}")
    if not a.flags.writeable:
        raise ValueError(f"{name} is read-only; it is updated in place, pass a writeable array")
    if not a.flags.c_contiguous or not a.flags.aligned or not a.dtype.isnative:
        raise ValueError(f"{name} must be C-contiguous and aligned (it is updated in place); "
                         f"keep it in a buffer made by np.zeros/np.empty")
    return a


def no_overlap(**arrays):
    """ValueError when two of the (non-None) arrays share memory."""
    items = [(n, a) for n, a in arrays.items() if a is not None]
    for i, (na, a) in enumerate(items):
        for nb, b in items[i + 1:]:
            if np.may_share_memory(a, b):
                raise ValueError(f"{na} and {nb} share memory; each needs its own buffer")


def shape_dtype(shape, dtype):
    """A shape as a tuple of non-negative ints and a float32/float64 numpy dtype."""
    if isinstance(shape, (int, np.integer)):
        shape = (shape,)
    try:
        shape = tuple(int_scalar(s, "shape entries", 0, 2**62) for s in shape)
    except TypeError:
        raise TypeError(f"shape must be a tuple of non-negative integers, received {shape!r}") from None
    try:
        dtype = np.dtype(dtype)
    except TypeError:
        raise TypeError(f"dtype must be float32 or float64, received {dtype!r}") from None
    if dtype not in FLOAT_DTYPES:
        raise TypeError(f"dtype must be float32 or float64, received {dtype}")
    return shape, dtype


def one_of(value, name, options):
    """`value` if it is one of the strings in `options`; ValueError listing the valid ones."""
    if not isinstance(value, str) or value not in options:
        raise ValueError(f"unknown {name} {value!r}: expected one of "
                         f"{', '.join(repr(o) for o in options)}")
    return value


def gemm_args(a, b, trans_a, trans_b, alpha, beta, out):
    """Checked arguments of gemm (both backends): (a, b, M, N, K, alpha, beta, out).

    a (M, K) or (K, M) with trans_a, b (K, N) or (N, K) with trans_b, one float dtype;
    beta != 0 needs `out` (it is read); out (M, N) may not overlap a or b.
    """
    a = float_array(a, "a", ndim=2)
    b = float_array(b, "b", ndim=2)
    same_dtype(a.dtype, b=b)
    M, K = (a.shape[1], a.shape[0]) if trans_a else a.shape
    Kb, N = (b.shape[1], b.shape[0]) if trans_b else b.shape
    if K != Kb:
        raise ValueError(f"gemm inner dimensions differ: op(a) is ({M}, {K}) from a {a.shape} "
                         f"(trans_a={bool(trans_a)}), op(b) is ({Kb}, {N}) from b {b.shape} "
                         f"(trans_b={bool(trans_b)}); transpose one of them")
    alpha = finite_scalar(alpha, "alpha")
    beta = finite_scalar(beta, "beta")
    if beta != 0.0 and out is None:
        raise ValueError(f"beta={beta} reads out, but out is None; pass out= or beta=0")
    out = out_array(out, (M, N), a.dtype, inputs=(a, b))
    return a, b, M, N, K, alpha, beta, out
