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
    if x.dtype.newbyteorder("=") not in FLOAT_DTYPES:  # byte-swapped floats: copied below
        raise TypeError(f"{name} must have dtype float32 or float64, received {x.dtype}; "
                        f"convert with {name}.astype(np.float32)")
    if isinstance(x, np.ma.MaskedArray):  # a kernel would read the masked values as data
        raise TypeError(f"{name} is a numpy masked array: kernels read every value, masked "
                        f"or not; pass {name}.filled(value) or np.asarray({name})")
    if type(x) is not np.ndarray and isinstance(x, np.matrix):
        x = np.asarray(x)  # np.matrix: a plain 2-D view (its reductions keep 2-D shapes)
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


def _given_out(out, shape, dtype, name):
    """The checks every given output buffer passes: an ndarray of exactly `shape` (a tuple)
    and `dtype`, writeable (out_array and strided_out add their layout rules)."""
    if not isinstance(out, np.ndarray):
        raise TypeError(f"{name} must be a numpy.ndarray, received {type(out).__name__}")
    if out.dtype != dtype:
        raise TypeError(f"{name} must have dtype {np.dtype(dtype)}, received {out.dtype}")
    if out.shape != shape:
        raise ValueError(f"{name} must have shape {shape}, received {out.shape}")
    if not out.flags.writeable:
        raise ValueError(f"{name} is read-only; pass a writeable array")


def out_array(out, shape, dtype, name="out", inputs=(), allow_inplace=False):
    """Check or allocate an output buffer.

    out must be a writeable, aligned, C-contiguous ndarray of exactly `shape` and `dtype`.
    It may not overlap any array in `inputs`, except that with allow_inplace=True it may *be*
    one of them (same memory, same layout): elementwise kernels may run in place.
    """
    shape = tuple(shape)
    if out is None:
        return np.empty(shape, dtype=dtype)
    _given_out(out, shape, dtype, name)
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
    """A Python float in [low, high] (or open ends); ValueError otherwise. A string is a
    TypeError (float('0.5') would take it)."""
    if isinstance(value, (str, bytes)):
        raise TypeError(f"{name} must be a real number, received {value!r}")
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


def dropout_args(rate, seed, step, rate_name="rate"):
    """(rate in [0, 1), seed, step as ints in [0, 2**63)) of a counter-based dropout mask."""
    rate = finite_scalar(rate, rate_name, low=0.0, high=1.0, high_open=True)
    return rate, int_scalar(seed, "seed"), int_scalar(step, "step")


def state_array(a, name, like=None):
    """An array updated in place by a kernel: float32/float64 ndarray, C-contiguous, aligned,
    writeable, with the shape and dtype of `like` when given. Never copied."""
    if not isinstance(a, np.ndarray):
        raise TypeError(f"{name} must be a numpy.ndarray of float32 or float64, "
                        f"received {type(a).__name__}")
    if a.dtype not in FLOAT_DTYPES:
        raise TypeError(f"{name} must have dtype float32 or float64, received {a.dtype}")
    if isinstance(a, np.ma.MaskedArray):  # a kernel would read and update the masked values
        raise TypeError(f"{name} is a numpy masked array: kernels read every value, masked "
                        f"or not; pass {name}.filled(value) or np.asarray({name})")
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


# ---- convolution and pooling geometry (conv, pool families) --------------------------------

PADDINGS = ("valid", "same")
CONV_ACTIVATIONS = ("linear", "relu", "sigmoid", "tanh")


def int_pair(value, name, low=1):
    """(a, b) from an int or a pair of ints, each >= low; ValueError/TypeError otherwise."""
    if isinstance(value, (int, np.integer)) and not isinstance(value, bool):
        value = (value, value)
    try:
        a, b = value
    except (TypeError, ValueError):
        raise TypeError(f"{name} must be an int or a pair of ints, received {value!r}") from None
    for v in (a, b):
        if isinstance(v, bool) or not isinstance(v, (int, np.integer)):
            raise TypeError(f"{name} must be an int or a pair of ints, received {value!r}")
        if v < low:
            raise ValueError(f"{name} must be >= {low}, received {value!r}")
        if v >= 2**31:  # sizes and strides go to C as 64-bit indices, multiplied together
            raise ValueError(f"{name} must be < 2**31, received {value!r}")
    return int(a), int(b)


def padding_name(padding):
    if not isinstance(padding, str) or padding.lower() not in PADDINGS:
        raise ValueError(f"padding must be one of {PADDINGS}, received {padding!r}")
    return padding.lower()


def conv_activation(activation):
    if activation is None:
        return "linear"
    if activation not in CONV_ACTIVATIONS:
        raise ValueError(f"activation must be one of {CONV_ACTIVATIONS}, received {activation!r}; "
                         f"run other activations as a separate op")
    return activation


def conv_out_size(n, k, stride, dilation, padding, what="kernel"):
    """Keras/TF output size and leading pad along one axis: (out, pad_before).

    "valid": out = (n - keff) // stride + 1 with keff = (k - 1) * dilation + 1, needs n >= keff;
    "same": out = ceil(n / stride), total pad max((out - 1) * stride + keff - n, 0), of which
    the smaller half goes before (TF puts the odd one after).
    """
    keff = (k - 1) * dilation + 1
    if padding == "valid":
        if n < keff:
            raise ValueError(f"{what} (extent {keff} with dilation) is larger than the padded "
                             f"input ({n}) with padding='valid'; use a smaller {what} or "
                             f"padding='same'")
        return (n - keff) // stride + 1, 0
    out = -(-n // stride)
    total = max((out - 1) * stride + keff - n, 0)
    return out, total // 2


def conv_geometry(x_shape, k_hw, strides, padding, dilation=(1, 1), what="kernel"):
    """(OH, OW, pad_top, pad_left) of an NHWC input (B, H, W, C) under Keras' rules."""
    _, H, W, _ = x_shape
    if H < 1 or W < 1:
        raise ValueError(f"input height and width must be >= 1, received shape {tuple(x_shape)}")
    OH, pt = conv_out_size(H, k_hw[0], strides[0], dilation[0], padding, what)
    OW, pl = conv_out_size(W, k_hw[1], strides[1], dilation[1], padding, what)
    return OH, OW, pt, pl


def writeable_array(a, name, shape, dtype):
    """An in/out state buffer updated in place (running statistics): exact shape, dtype,
    writeable and C-contiguous."""
    if not isinstance(a, np.ndarray):
        raise TypeError(f"{name} must be a numpy.ndarray, received {type(a).__name__}")
    if a.dtype != dtype:
        raise TypeError(f"{name} must have dtype {np.dtype(dtype)}, received {a.dtype}")
    if a.shape != tuple(shape):
        raise ValueError(f"{name} must have shape {tuple(shape)}, received {a.shape}")
    if not a.flags.writeable:
        raise ValueError(f"{name} is read-only; it is updated in place, pass a writeable array")
    if not a.flags.c_contiguous or not a.flags.aligned:
        raise ValueError(f"{name} must be C-contiguous and aligned")
    return a


def conv2d_args(x, w, b, strides, padding, dilation, activation, depthwise=False):
    """Check a (depthwise) conv2d call; returns (x, w, b, strides, padding, dilation,
    activation, (OH, OW, pad_top, pad_left)). x (B,H,W,C), w (KH,KW,C,OC) or (KH,KW,C,1)."""
    x = float_array(x, "x", ndim=4)
    w = float_array(w, "w", ndim=4)
    same_dtype(x.dtype, w=w)
    if w.shape[2] != x.shape[3]:
        raise ValueError(f"w has {w.shape[2]} input channels (w.shape[2]) but x has "
                         f"{x.shape[3]} (x.shape[3]); w must be (KH, KW, C, OC) for NHWC x")
    if depthwise and w.shape[3] != 1:
        raise ValueError(f"depthwise w must be (KH, KW, C, 1) (depth_multiplier 1), "
                         f"received {w.shape}")
    if w.shape[0] < 1 or w.shape[1] < 1 or w.shape[3] < 1:
        raise ValueError(f"w must have KH, KW, OC >= 1, received {w.shape}")
    oc = w.shape[2] if depthwise else w.shape[3]
    if b is not None:
        b = float_array(b, "b", ndim=1)
        same_dtype(x.dtype, b=b)
        if b.shape != (oc,):
            raise ValueError(f"b must have shape ({oc},), received {b.shape}")
    strides = int_pair(strides, "strides")
    dilation = int_pair(dilation, "dilation")
    padding = padding_name(padding)
    activation = conv_activation(activation)
    geo = conv_geometry(x.shape, w.shape[:2], strides, padding, dilation)
    return x, w, b, strides, padding, dilation, activation, geo


def conv2d_maxpool_args(x, w, b, strides, padding, dilation, activation, pool_size):
    """Check a fused conv2d + max pooling call (pool stride = pool_size, valid). Returns
    conv2d_args' tuple plus (pool_size, (POH, POW)), the pooled output size."""
    x, w, b, strides, padding, dilation, activation, geo = conv2d_args(
        x, w, b, strides, padding, dilation, activation)
    pool_size = int_pair(pool_size, "pool_size")
    if pool_size[0] > geo[0] or pool_size[1] > geo[1]:
        raise ValueError(f"pool_size {pool_size} is larger than the convolution output "
                         f"{tuple(geo[:2])}")
    ph, pw = (conv_out_size(n, k, k, 1, "valid", "pool_size")[0]
              for n, k in zip(geo[:2], pool_size))
    return x, w, b, strides, padding, dilation, activation, geo, pool_size, (ph, pw)


def conv2d_grad_args(x, y, dy, activation, out_shape):
    """Check the forward output y and its gradient dy of a conv/pool backward call."""
    dy = float_array(dy, "dy", ndim=4)
    same_dtype(x.dtype, dy=dy)
    same_shape(tuple(out_shape), dy=dy)
    if y is None:
        if activation != "linear":
            raise ValueError(f"y (the forward output) is needed for activation={activation!r}")
    else:
        y = float_array(y, "y", ndim=4)
        same_dtype(x.dtype, y=y)
        same_shape(tuple(out_shape), y=y)
    return y, dy


def pool2d_args(x, pool_size, strides, padding):
    """Check a pooling call; strides None means pool_size (Keras). Returns
    (x, pool_size, strides, padding, (OH, OW, pad_top, pad_left))."""
    x = float_array(x, "x", ndim=4)
    pool_size = int_pair(pool_size, "pool_size")
    strides = pool_size if strides is None else int_pair(strides, "strides")
    padding = padding_name(padding)
    geo = conv_geometry(x.shape, pool_size, strides, padding, (1, 1), what="pool_size")
    return x, pool_size, strides, padding, geo


def pool2d_grad_args(x, dy, geo):
    """Check dy (B, OH, OW, C) of a pooling backward call."""
    dy = float_array(dy, "dy", ndim=4)
    same_dtype(x.dtype, dy=dy)
    same_shape((x.shape[0], geo[0], geo[1], x.shape[3]), dy=dy)
    return dy


def global_pool2d_args(x, dy=None, backward=False):
    """Check a global pooling call: x (B, H, W, C) with H, W >= 1; backward: dy (B, C)."""
    x = float_array(x, "x", ndim=4)
    if x.shape[1] < 1 or x.shape[2] < 1:
        raise ValueError(f"x height and width must be >= 1, received shape {x.shape}")
    if backward and dy is None:
        raise TypeError("the backward of a global pooling needs dy (B, C), received None")
    if backward:
        dy = float_array(dy, "dy", ndim=2)
        same_dtype(x.dtype, dy=dy)
        same_shape((x.shape[0], x.shape[3]), dy=dy)
    return x, dy


# ---- batch normalization (norm family) ------------------------------------------------------

def _scale_shift(x, gamma, beta, min_ndim, unit):
    """x (..., C) with C >= 1 and its per-`unit` scale gamma (C,) and shift beta (C,) or None,
    checked for dtype and shape (batch and layer normalization)."""
    x = float_array(x, "x", min_ndim=min_ndim)
    C = x.shape[-1]
    if C < 1:
        raise ValueError(f"x must have at least one {unit} (last axis), received shape {x.shape}")
    gamma = float_array(gamma, "gamma", ndim=1)
    same_dtype(x.dtype, gamma=gamma)
    same_shape((C,), gamma=gamma)
    if beta is not None:
        beta = float_array(beta, "beta", ndim=1)
        same_dtype(x.dtype, beta=beta)
        same_shape((C,), beta=beta)
    return x, gamma, beta


def _bn_params(x, gamma, beta=None):
    return _scale_shift(x, gamma, beta, 2, "channel")


def batch_norm_args(x, gamma, beta, running_mean, running_var, training, momentum, epsilon):
    """Check a batch_norm_forward call: x (..., C), gamma/beta/running stats (C,);
    returns (x, gamma, beta, momentum, epsilon)."""
    x, gamma, beta = _bn_params(x, gamma, beta)
    C = x.shape[-1]
    writeable_array(running_mean, "running_mean", (C,), x.dtype)
    writeable_array(running_var, "running_var", (C,), x.dtype)
    momentum = finite_scalar(momentum, "momentum", 0.0, 1.0)
    epsilon = finite_scalar(epsilon, "epsilon", 0.0, low_open=True)
    if training and x.size == 0:
        raise ValueError(f"batch_norm in training needs at least one row, received shape {x.shape}")
    if training:  # the running statistics are updated in place, from x, gamma and beta
        no_overlap(running_mean=running_mean, running_var=running_var, x=x, gamma=gamma,
                   beta=beta)
    if not training and not np.all(running_var >= 0):
        raise ValueError("running_var must be >= 0 (and not NaN) in inference")
    return x, gamma, beta, momentum, epsilon


def batch_norm_grad_args(x, dy, gamma, mean, inv_std):
    """Check a batch_norm_backward call; returns (x, dy, gamma, mean, inv_std)."""
    x, gamma, _ = _bn_params(x, gamma)
    C = x.shape[-1]
    dy = float_array(dy, "dy")
    mean = float_array(mean, "mean", ndim=1)
    inv_std = float_array(inv_std, "inv_std", ndim=1)
    same_dtype(x.dtype, dy=dy, mean=mean, inv_std=inv_std)
    same_shape(x.shape, dy=dy)
    same_shape((C,), mean=mean, inv_std=inv_std)
    return x, dy, gamma, mean, inv_std


def batch_norm_outs(x, dy, gamma, mean, inv_std, dx, dgamma, dbeta):
    """Outputs of batch_norm_backward: dx may be dy itself (in place), nothing else overlaps."""
    C = x.shape[-1]
    ins = (x, dy, gamma, mean, inv_std)
    dgamma = out_array(dgamma, (C,), x.dtype, "dgamma", inputs=ins)
    dbeta = out_array(dbeta, (C,), x.dtype, "dbeta", inputs=ins + (dgamma,))
    dx = out_array(dx, x.shape, x.dtype, "dx", inputs=(x, gamma, mean, inv_std, dgamma, dbeta))
    dx = out_array(dx, x.shape, x.dtype, "dx", inputs=(dy,), allow_inplace=True)
    return dx, dgamma, dbeta


def conv2d_transpose_args(x, w, b, strides, padding, dilation, activation):
    """Check a conv2d_transpose call: x (B, H, W, C), w (KH, KW, F, C) as Keras'
    Conv2DTranspose stores it, b (F,). Output (B, HO, WO, F) with Keras' sizes: "same"
    HO = H * sh; "valid" HO = H * sh + max(keff - sh, 0). Returns (x, w, b, strides, padding,
    dilation, activation, (HO, WO), geo) where geo = (H, W, pad_top, pad_left) is the
    geometry of the convolution (B, HO, WO, F) -> (B, H, W, C) whose input gradient this is."""
    x = float_array(x, "x", ndim=4)
    w = float_array(w, "w", ndim=4)
    same_dtype(x.dtype, w=w)
    if w.shape[3] != x.shape[3]:
        raise ValueError(f"w has {w.shape[3]} input channels (w.shape[3]) but x has "
                         f"{x.shape[3]} (x.shape[3]); a transposed convolution's w is "
                         f"(KH, KW, filters, C)")
    if min(w.shape[:3]) < 1:
        raise ValueError(f"w must have KH, KW, filters >= 1, received {w.shape}")
    if b is not None:
        b = float_array(b, "b", ndim=1)
        same_dtype(x.dtype, b=b)
        if b.shape != (w.shape[2],):
            raise ValueError(f"b must have shape ({w.shape[2]},), received {b.shape}")
    strides = int_pair(strides, "strides")
    dilation = int_pair(dilation, "dilation")
    padding = padding_name(padding)
    activation = conv_activation(activation)
    if x.shape[1] < 1 or x.shape[2] < 1:
        raise ValueError(f"input height and width must be >= 1, received shape {x.shape}")
    size = []
    for n, k, s, d in zip(x.shape[1:3], w.shape[:2], strides, dilation):
        keff = (k - 1) * d + 1
        size.append(n * s if padding == "same" else n * s + max(keff - s, 0))
    geo = conv_geometry((x.shape[0], size[0], size[1], w.shape[2]), w.shape[:2], strides,
                        padding, dilation)
    assert geo[:2] == x.shape[1:3], (geo, x.shape)
    return x, w, b, strides, padding, dilation, activation, tuple(size), geo


def upsampling2d_args(x, size):
    """Check an upsampling2d call: x (B, H, W, C), size an int or pair >= 1."""
    x = float_array(x, "x", ndim=4)
    return x, int_pair(size, "size")


# ---- sequence kernels: embedding, layer normalization, attention ----------------------------

def int_ids(ids, num_rows, name="ids"):
    """Token ids of any shape as a C-contiguous int64 array with values in [0, num_rows).

    Integer dtypes, or floats holding whole numbers (a model feeds ids in its float dtype);
    NaN, fractions and ids out of range raise ValueError, other dtypes TypeError.
    """
    if not isinstance(ids, np.ndarray):
        raise TypeError(f"{name} must be a numpy.ndarray of integers, received "
                        f"{type(ids).__name__}")
    if ids.dtype.kind == "f":
        if not np.all(np.isfinite(ids)):
            raise ValueError(f"{name} contain NaN or infinity")
        if not np.all(ids == np.floor(ids)):
            raise ValueError(f"{name} must be whole numbers, received fractional values")
    elif ids.dtype.kind not in "iu":
        raise TypeError(f"{name} must be integers (int32/int64), received dtype {ids.dtype}")
    if ids.size:
        lo, hi = ids.min(), ids.max()
        if lo < 0 or hi >= num_rows:
            raise ValueError(f"{name} must be in [0, {num_rows}) for a table of {num_rows} "
                             f"rows, received values from {lo} to {hi}")
    return np.ascontiguousarray(ids, dtype=np.int64)


def embedding_args(ids, table):
    """Check an embedding_forward call: table (V, D); returns (ids int64, table)."""
    table = float_array(table, "table", ndim=2)
    return int_ids(ids, table.shape[0]), table


def embedding_grad_args(ids, dy, n_rows):
    """Check an embedding_backward call: dy (*ids.shape, D); returns (ids, dy, n_rows)."""
    n_rows = int_scalar(n_rows, "n_rows", 1)
    ids = int_ids(ids, n_rows)
    dy = float_array(dy, "dy")
    if dy.ndim != ids.ndim + 1 or dy.shape[:-1] != ids.shape:
        raise ValueError(f"dy must have shape ids.shape + (D,) = {ids.shape + ('D',)}, "
                         f"received {dy.shape}")
    return ids, dy, n_rows


def layernorm_args(x, gamma, beta, eps):
    """Check a layernorm_forward call: x (..., C), gamma/beta (C,) (beta may be None),
    eps > 0; returns (x, gamma, beta, eps)."""
    x, gamma, beta = _scale_shift(x, gamma, beta, 1, "feature")
    eps = finite_scalar(eps, "eps", 0.0, low_open=True)
    return x, gamma, beta, eps


def layernorm_grad_args(x, gamma, mean, rstd, dy):
    """Check a layernorm_backward call; returns (x, gamma, mean, rstd, dy)."""
    x, gamma, _, _ = layernorm_args(x, gamma, None, 1.0)
    mean = float_array(mean, "mean")
    rstd = float_array(rstd, "rstd")
    dy = float_array(dy, "dy")
    same_dtype(x.dtype, mean=mean, rstd=rstd, dy=dy)
    same_shape(x.shape[:-1], mean=mean, rstd=rstd)
    same_shape(x.shape, dy=dy)
    return x, gamma, mean, rstd, dy


def _self_overlapping(a):
    """True unless a's strides give each element its own bytes: with the axes of more than
    one element sorted by |stride|, each stride must step past everything the smaller ones
    span (C and F order, transposes and slices pass; a broadcast (0) stride fails)."""
    if a.size == 0:
        return False
    span = a.itemsize
    for st, n in sorted((abs(st), n) for st, n in zip(a.strides, a.shape) if n > 1):
        if st < span:
            return True
        span += st * (n - 1)
    return False


def strided_out(out, shape, dtype, name="out", inputs=()):
    """Like out_array, but `out` may be any writeable aligned strided view (attention writes
    through strides, e.g. a (B, T, H, d) buffer seen as (B, H, T, d))."""
    shape = tuple(shape)
    if out is None:
        return np.empty(shape, dtype=dtype)
    _given_out(out, shape, dtype, name)
    if not out.flags.aligned or not out.dtype.isnative:
        raise ValueError(f"{name} must be aligned and in native byte order")
    if _self_overlapping(out):
        raise ValueError(f"{name} has elements that share memory (strides {out.strides}, e.g. "
                         f"a broadcast view); pass a buffer with one place per element")
    for a in inputs:
        if a is not None and np.may_share_memory(out, a):
            # interleaved views of one buffer (the column blocks of a fused projection) may
            # share bounds without sharing elements: decide exactly, within a small budget
            try:
                overlap = np.shares_memory(out, a, max_work=10000)
            except np.exceptions.TooHardError:
                overlap = True
            if overlap:
                raise ValueError(f"{name} overlaps another array of the call; pass a "
                                 f"separate buffer")
    return out


def attention_args(q, k, v, causal, mask, scale):
    """Check an attention call: q (B, H, T, D), k (B, H, S, D), v (B, H, S, DV), mask None or
    broadcastable to (B, T, S), boolean or 0/1 (True = may attend). Returns
    (q, k, v, causal, mask as a uint8 (B, T, S) view or None, scale) with scale defaulting
    to 1 / sqrt(D)."""
    q = float_array(q, "q", ndim=4)
    k = float_array(k, "k", ndim=4)
    v = float_array(v, "v", ndim=4)
    same_dtype(q.dtype, k=k, v=v)
    B, H, T, D = q.shape
    if k.shape[:2] != (B, H) or v.shape[:2] != (B, H) or k.shape[3] != D \
            or v.shape[2] != k.shape[2]:
        raise ValueError(f"attention needs q (B, H, T, D), k (B, H, S, D), v (B, H, S, DV); "
                         f"received q {q.shape}, k {k.shape}, v {v.shape}")
    S = k.shape[2]
    if not isinstance(causal, (bool, np.bool_)):
        raise TypeError(f"causal must be a bool, received {causal!r}")
    if scale is None:
        scale = 1.0 / float(np.sqrt(D)) if D else 1.0
    scale = finite_scalar(scale, "scale")
    if mask is not None:
        if not isinstance(mask, np.ndarray):
            mask = np.asarray(mask)
        if mask.dtype.kind == "b":
            m = mask.view(np.uint8)
        elif mask.dtype.kind in "iuf":
            if not np.all((mask == 0) | (mask == 1)):
                raise ValueError("mask must be boolean or hold only 0 and 1 (1 = may attend)")
            m = (mask != 0).view(np.uint8)
        else:
            raise TypeError(f"mask must be boolean or 0/1 numbers, received dtype {mask.dtype}")
        if m.ndim > 3:
            raise ValueError(f"mask must broadcast to (B, T, S) = {(B, T, S)}, received shape "
                             f"{mask.shape}")
        try:
            mask = np.broadcast_to(m, (B, T, S))
        except ValueError:
            raise ValueError(f"mask must broadcast to (B, T, S) = {(B, T, S)}, received shape "
                             f"{mask.shape}") from None
    return q, k, v, bool(causal), mask, scale


def attention_grad_args(q, k, v, probs, dout, causal, scale):
    """Check an attention_backward call; returns (q, k, v, probs (C-contiguous), dout,
    causal, scale)."""
    q, k, v, causal, _, scale = attention_args(q, k, v, causal, None, scale)
    B, H, T, _ = q.shape
    S, DV = v.shape[2], v.shape[3]
    probs = float_array(probs, "probs", ndim=4)
    dout = float_array(dout, "dout", ndim=4)
    same_dtype(q.dtype, probs=probs, dout=dout)
    same_shape((B, H, T, S), probs=probs)
    same_shape((B, H, T, DV), dout=dout)
    return q, k, v, contiguous(probs), dout, causal, scale


def step_mask(mask, B, T):
    """A recurrent kernel's step mask (B, T) of booleans (or 0/1 numbers) -> a bool array, or
    None (every step real)."""
    if mask is None:
        return None
    mask = np.asarray(mask)
    if mask.shape != (B, T):
        raise ValueError(f"mask must have shape (B, T) = ({B}, {T}), received {mask.shape}")
    if mask.dtype != np.bool_:
        if mask.dtype.kind not in "biuf" or not np.all((mask == 0) | (mask == 1)):
            raise ValueError("mask must hold booleans (or 0 and 1): True where a step is "
                             "real, False where it is padding")
        mask = mask != 0
    return mask
