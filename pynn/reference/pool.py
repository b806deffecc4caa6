"""2-D pooling, NHWC: max, average, global average and global max, and nearest-neighbour
upsampling (Keras UpSampling2D); the NumPy reference.

pool_size and strides are ints or pairs (strides None means pool_size, as in Keras);
padding "valid" or "same" with the convolution's Keras/TF arithmetic. Padded positions
never take part: max pooling ignores them, average pooling divides by the number of valid
elements in each window (Keras "same"). Average and global average pooling add the
elements in row-major order (i then j; h then w) into float64, float32 inputs too, divide in
float64 and round to the input dtype once: a float32 mean is finite whenever it fits float32
(3e38 values do not overflow an intermediate sum), and practically independent of the order;
float64 sums are exact to the order given. Backward of max pooling recomputes the argmax from x
and routes each gradient to it; ties go to the first element in row-major window order
(i, then j), and a NaN counts as the maximum (NumPy's argmax). Windows that overlap
(strides < pool_size) add their gradients, in output order (row-major over the windows).
"""
import numpy as np

from .. import _checks

__all__ = ["max_pool2d_forward", "max_pool2d_backward", "avg_pool2d_forward",
           "avg_pool2d_backward", "global_avg_pool2d_forward", "global_avg_pool2d_backward",
           "global_max_pool2d_forward", "global_max_pool2d_backward", "upsampling2d_forward",
           "upsampling2d_backward"]


def _windows(x, pool_size, strides, geo, fill):
    """Padded x as windows (B, OH, OW, C, PH*PW) in row-major window order, plus the
    padded validity mask (OH, OW, PH*PW)."""
    B, H, W, C = x.shape
    OH, OW, pt, pl = geo
    hp = max((OH - 1) * strides[0] + pool_size[0], pt + H)
    wp = max((OW - 1) * strides[1] + pool_size[1], pl + W)
    xp = np.full((B, hp, wp, C), fill, x.dtype)                            # (B,Hp,Wp,C)
    xp[:, pt:pt + H, pl:pl + W, :] = x
    valid = np.zeros((hp, wp), bool)                                       # (Hp,Wp)
    valid[pt:pt + H, pl:pl + W] = True
    win = np.lib.stride_tricks.sliding_window_view(xp, pool_size, axis=(1, 2))
    win = win[:, ::strides[0], ::strides[1]][:, :OH, :OW]                  # (B,OH,OW,C,PH,PW)
    vwin = np.lib.stride_tricks.sliding_window_view(valid, pool_size)
    vwin = vwin[::strides[0], ::strides[1]][:OH, :OW]                      # (OH,OW,PH,PW)
    k = pool_size[0] * pool_size[1]
    return win.reshape(B, OH, OW, C, k), vwin.reshape(OH, OW, k)


def _scatter(x, dwin, pool_size, strides, geo):
    """Sum window gradients dwin (B,OH,OW,C,PH,PW) back onto x's positions: (B,H,W,C).
    Each position adds its windows' gradients in output order (oh, then ow), as the C
    kernels do: a higher tap index i (j) is an earlier window, so the taps run backwards."""
    B, H, W, C = x.shape
    OH, OW, pt, pl = geo
    hp = max((OH - 1) * strides[0] + pool_size[0], pt + H)
    wp = max((OW - 1) * strides[1] + pool_size[1], pl + W)
    dxp = np.zeros((B, hp, wp, C), dwin.dtype)                             # (B,Hp,Wp,C)
    for i in reversed(range(pool_size[0])):
        for j in reversed(range(pool_size[1])):
            dxp[:, i:i + (OH - 1) * strides[0] + 1:strides[0],
                j:j + (OW - 1) * strides[1] + 1:strides[1]] += dwin[..., i, j]
    return dxp[:, pt:pt + H, pl:pl + W]                                   # (B,H,W,C)


def max_pool2d_forward(x, pool_size=(2, 2), strides=None, padding="valid", out=None):
    """y (B, OH, OW, C) = max of each window's valid elements."""
    x, pool_size, strides, padding, geo = _checks.pool2d_args(x, pool_size, strides, padding)
    out = _checks.out_array(out, (x.shape[0], geo[0], geo[1], x.shape[3]), x.dtype, inputs=(x,))
    win, _ = _windows(x, pool_size, strides, geo, -np.inf)                 # (B,OH,OW,C,K)
    idx = np.argmax(win, axis=-1)[..., None]                               # (B,OH,OW,C,1)
    out[...] = np.take_along_axis(win, idx, axis=-1)[..., 0]               # (B,OH,OW,C)
    return out


def max_pool2d_backward(x, dy, pool_size=(2, 2), strides=None, padding="valid", out=None):
    """dx (B, H, W, C): each dy goes to its window's argmax (first on ties)."""
    x, pool_size, strides, padding, geo = _checks.pool2d_args(x, pool_size, strides, padding)
    dy = _checks.pool2d_grad_args(x, dy, geo)
    out = _checks.out_array(out, x.shape, x.dtype, inputs=(x, dy))
    win, valid = _windows(x, pool_size, strides, geo, -np.inf)             # (B,OH,OW,C,K)
    valid = valid[None, :, :, None, :]                                     # (1,OH,OW,1,K)
    # the first maximum among the window's real elements (a padded -inf never wins, also
    # in a window of -inf), a NaN counting as the maximum
    nan = np.isnan(win) & valid                                            # (B,OH,OW,C,K)
    top = (win == np.max(np.where(valid, win, -np.inf), axis=-1, keepdims=True)) & valid
    idx = np.where(nan.any(axis=-1), np.argmax(nan, axis=-1),
                   np.argmax(top, axis=-1))                                # (B,OH,OW,C)
    k = pool_size[0] * pool_size[1]
    # where, not a product: a NaN or inf in dy reaches the argmax only (0 * inf is NaN)
    dwin = np.where(np.arange(k) == idx[..., None], dy[..., None], 0)      # (B,OH,OW,C,K)
    dwin = dwin.reshape(dwin.shape[:4] + pool_size)                        # (B,OH,OW,C,PH,PW)
    out[...] = _scatter(x, dwin, pool_size, strides, geo)                  # (B,H,W,C)
    return out


def avg_pool2d_forward(x, pool_size=(2, 2), strides=None, padding="valid", out=None):
    """y (B, OH, OW, C) = mean of each window's valid elements (padding not counted), summed
    in float64 (see above)."""
    x, pool_size, strides, padding, geo = _checks.pool2d_args(x, pool_size, strides, padding)
    out = _checks.out_array(out, (x.shape[0], geo[0], geo[1], x.shape[3]), x.dtype, inputs=(x,))
    win, valid = _windows(x, pool_size, strides, geo, 0)                   # (B,OH,OW,C,K)
    count = valid.sum(axis=-1)[:, :, None]                                 # (OH,OW,1)
    with np.errstate(over="ignore"):  # a float64 mean beyond the float32 range is inf
        out[...] = _sum_in_order(win, axis=-1) / count                     # (B,OH,OW,C)
    return out


def avg_pool2d_backward(x, dy, pool_size=(2, 2), strides=None, padding="valid", out=None):
    """dx (B, H, W, C): each dy / count spread over its window's valid elements."""
    x, pool_size, strides, padding, geo = _checks.pool2d_args(x, pool_size, strides, padding)
    dy = _checks.pool2d_grad_args(x, dy, geo)
    out = _checks.out_array(out, x.shape, x.dtype, inputs=(x, dy))
    _, valid = _windows(x[:0], pool_size, strides, geo, 0)                 # (OH,OW,K)
    count = valid.sum(axis=-1)[:, :, None].astype(x.dtype)                 # (OH,OW,1)
    g = dy / count                                                         # (B,OH,OW,C)
    dwin = np.broadcast_to(g[..., None, None], g.shape + pool_size)        # (B,OH,OW,C,PH,PW)
    out[...] = _scatter(x, dwin, pool_size, strides, geo)                  # (B,H,W,C)
    return out


def _sum_in_order(a, axis):
    """The sum of a along axis in float64, added one element after another (cumsum is a
    running sum) from +0, as the C kernels do; + 0.0 turns a sum of -0.0s into +0.0 as
    starting from +0 does."""
    if a.shape[axis] == 0:
        return np.zeros(np.delete(a.shape, axis), np.float64)
    return np.take(np.cumsum(a, axis=axis, dtype=np.float64), -1, axis=axis) + 0.0


def _global_args(x, dy=None, backward=False):
    return _checks.global_pool2d_args(x, dy, backward)


def global_avg_pool2d_forward(x, out=None):
    """y (B, C) = mean of x (B, H, W, C) over H and W, summed in float64 (see above)."""
    x, _ = _global_args(x)
    out = _checks.out_array(out, (x.shape[0], x.shape[3]), x.dtype, inputs=(x,))
    B, H, W, C = x.shape
    with np.errstate(over="ignore"):  # a float64 mean beyond the float32 range is inf
        out[...] = _sum_in_order(x.reshape(B, H * W, C), axis=1) / (H * W)  # (B,C)
    return out


def global_avg_pool2d_backward(x, dy, out=None):
    """dx (B, H, W, C) = dy (B, C) / (H * W) at every position."""
    x, dy = _global_args(x, dy, backward=True)
    out = _checks.out_array(out, x.shape, x.dtype, inputs=(x, dy))
    out[...] = (dy / x.dtype.type(x.shape[1] * x.shape[2]))[:, None, None, :]  # (B,H,W,C)
    return out


def global_max_pool2d_forward(x, out=None):
    """y (B, C) = max of x (B, H, W, C) over H and W."""
    x, _ = _global_args(x)
    out = _checks.out_array(out, (x.shape[0], x.shape[3]), x.dtype, inputs=(x,))
    flat = x.reshape(x.shape[0], x.shape[1] * x.shape[2], x.shape[3])      # (B,H*W,C)
    idx = np.argmax(flat, axis=1)[:, None, :]                               # (B,1,C)
    out[...] = np.take_along_axis(flat, idx, axis=1)[:, 0, :]               # (B,C)
    return out


def global_max_pool2d_backward(x, dy, out=None):
    """dx (B, H, W, C): dy (B, C) at each channel's first maximum (row-major), 0 elsewhere."""
    x, dy = _global_args(x, dy, backward=True)
    out = _checks.out_array(out, x.shape, x.dtype, inputs=(x, dy))
    B, H, W, C = x.shape
    idx = np.argmax(x.reshape(B, H * W, C), axis=1)                         # (B,C)
    onehot = np.arange(H * W)[None, :, None] == idx[:, None, :]             # (B,H*W,C)
    out[...] = np.where(onehot, dy[:, None, :], 0).reshape(x.shape)         # (B,H,W,C)
    return out


def upsampling2d_forward(x, size=(2, 2), out=None):
    """y (B, H*sh, W*sw, C): each pixel repeated sh x sw times (nearest)."""
    x, size = _checks.upsampling2d_args(x, size)
    out = _checks.out_array(out, (x.shape[0], x.shape[1] * size[0], x.shape[2] * size[1],
                                  x.shape[3]), x.dtype, inputs=(x,))
    out[...] = np.repeat(np.repeat(x, size[0], axis=1), size[1], axis=2)    # (B,H*sh,W*sw,C)
    return out


def upsampling2d_backward(x, dy, size=(2, 2), out=None):
    """dx (B, H, W, C) = the sum of dy over each pixel's sh x sw block."""
    x, size = _checks.upsampling2d_args(x, size)
    dy = _checks.pool2d_grad_args(x, dy, (x.shape[1] * size[0], x.shape[2] * size[1]))
    out = _checks.out_array(out, x.shape, x.dtype, inputs=(x, dy))
    B, H, W, C = x.shape
    out[...] = dy.reshape(B, H, size[0], W, size[1], C).sum(axis=(2, 4))   # (B,H,W,C)
    return out
