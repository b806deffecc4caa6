"""2-D convolution, NHWC (channels last, Keras' default), and depthwise convolution:
the NumPy reference.

x (B, H, W, C), w (KH, KW, C, OC) as Keras stores it, b (OC,) or None. Keras/TF padding:
"valid" (no padding) or "same" (out = ceil(in / stride), the odd pad after). Dilation spaces
the taps: tap (i, j) reads x[oh * sh + i * dh - pad_top, ow * sw + j * dw - pad_left].
A fused activation in {"linear", "relu", "sigmoid", "tanh"} closes the forward; backward
takes its output y and computes dz = dy * act'(y) first (y may be None for "linear").

The reference loops over the KH*KW taps, each a strided window of the padded input times
one (C, OC) slice of w: plain NumPy, easy to check by hand.
"""
import numpy as np

from .. import _checks
from .pool import max_pool2d_forward

__all__ = ["conv2d_forward", "conv2d_backward", "conv2d_transpose_forward",
           "conv2d_transpose_backward", "depthwise_conv2d_forward", "depthwise_conv2d_backward",
           "conv2d_maxpool_forward"]


def _act(z, activation):
    if activation == "relu":
        return np.maximum(z, 0)
    if activation == "sigmoid":
        return 1 / (1 + np.exp(-z))
    if activation == "tanh":
        return np.tanh(z)
    return z


def _act_grad(y, dy, activation):
    """dz = dy * act'(z) written with the output y = act(z)."""
    if activation == "relu":
        return dy * (y > 0)  # (B,OH,OW,OC)
    if activation == "sigmoid":
        return dy * y * (1 - y)
    if activation == "tanh":
        return dy * (1 - y * y)
    return dy


def _pad(x, geo, k_hw, strides, dilation):
    """x (B,H,W,C) zero-padded to cover every tap of every output: (B, Hp, Wp, C)."""
    OH, OW, pt, pl = geo
    hp = (OH - 1) * strides[0] + (k_hw[0] - 1) * dilation[0] + 1
    wp = (OW - 1) * strides[1] + (k_hw[1] - 1) * dilation[1] + 1
    B, H, W, C = x.shape
    xp = np.zeros((B, max(hp, pt + H), max(wp, pl + W), C), x.dtype)  # (B,Hp,Wp,C)
    xp[:, pt:pt + H, pl:pl + W, :] = x
    return xp


def _tap(i, j, geo, strides, dilation):
    """Index of tap (i, j)'s window in the padded input: rows, cols (strided slices)."""
    OH, OW = geo[0], geo[1]
    r0, c0 = i * dilation[0], j * dilation[1]
    return (slice(None), slice(r0, r0 + (OH - 1) * strides[0] + 1, strides[0]),
            slice(c0, c0 + (OW - 1) * strides[1] + 1, strides[1]), slice(None))


def conv2d_forward(x, w, b=None, strides=(1, 1), padding="valid", dilation=(1, 1),
                   activation="linear", out=None):
    """y (B, OH, OW, OC) = act(conv(x, w) + b)."""
    x, w, b, strides, padding, dilation, activation, geo = _checks.conv2d_args(
        x, w, b, strides, padding, dilation, activation)
    B, OC = x.shape[0], w.shape[3]
    out = _checks.out_array(out, (B, geo[0], geo[1], OC), x.dtype, inputs=(x, w, b))
    xp = _pad(x, geo, w.shape[:2], strides, dilation)                  # (B,Hp,Wp,C)
    z = np.zeros(out.shape, x.dtype)                                   # (B,OH,OW,OC)
    for i in range(w.shape[0]):
        for j in range(w.shape[1]):
            z += xp[_tap(i, j, geo, strides, dilation)] @ w[i, j]      # (B,OH,OW,C) @ (C,OC)
    if b is not None:
        z += b                                                         # (B,OH,OW,OC)
    out[...] = _act(z, activation)                                     # (B,OH,OW,OC)
    return out


def conv2d_backward(x, w, y, dy, strides=(1, 1), padding="valid", dilation=(1, 1),
                    activation="linear", need_dx=True, dx=None, dw=None, db=None):
    """(dx (B,H,W,C) or None, dw (KH,KW,C,OC), db (OC,)) of conv2d_forward.

    dz = dy * act'(y); dw[i,j] = sum over (b,oh,ow) of window(i,j)^T dz; db = sum of dz;
    dx = the transposed convolution of dz with w. Outputs are written, not accumulated.
    """
    x, w, _, strides, padding, dilation, activation, geo = _checks.conv2d_args(
        x, w, None, strides, padding, dilation, activation)
    B, OC = x.shape[0], w.shape[3]
    y, dy = _checks.conv2d_grad_args(x, y, dy, activation, (B, geo[0], geo[1], OC))
    ins = (x, w, y, dy)
    dw = _checks.out_array(dw, w.shape, x.dtype, "dw", inputs=ins)
    db = _checks.out_array(db, (OC,), x.dtype, "db", inputs=ins + (dw,))
    if need_dx:
        dx = _checks.out_array(dx, x.shape, x.dtype, "dx", inputs=ins + (dw, db))
    dz = _act_grad(y, dy, activation)                                   # (B,OH,OW,OC)
    xp = _pad(x, geo, w.shape[:2], strides, dilation)                   # (B,Hp,Wp,C)
    dxp = np.zeros_like(xp) if need_dx else None                        # (B,Hp,Wp,C)
    for i in range(w.shape[0]):
        for j in range(w.shape[1]):
            t = _tap(i, j, geo, strides, dilation)
            dw[i, j] = np.tensordot(xp[t], dz, axes=([0, 1, 2], [0, 1, 2]))  # (C,OC)
            if need_dx:
                dxp[t] += dz @ w[i, j].T                                # (B,OH,OW,C)
    db[...] = dz.sum(axis=(0, 1, 2))                                    # (OC,)
    if not need_dx:
        return None, dw, db
    H, W = x.shape[1], x.shape[2]
    dx[...] = dxp[:, geo[2]:geo[2] + H, geo[3]:geo[3] + W, :]          # (B,H,W,C)
    return dx, dw, db


def conv2d_transpose_forward(x, w, b=None, strides=(1, 1), padding="valid", dilation=(1, 1),
                             activation="linear", out=None):
    """y (B, HO, WO, F) = act(conv2d_transpose(x, w) + b), w (KH, KW, F, C) (Keras'
    Conv2DTranspose): the input gradient of the convolution (B,HO,WO,F) -> (B,H,W,C) with
    weights w, taken at output gradient x. Sizes: "same" HO = H * sh, "valid"
    HO = H * sh + max(keff - sh, 0)."""
    x, w, b, strides, padding, dilation, activation, size, geo = \
        _checks.conv2d_transpose_args(x, w, b, strides, padding, dilation, activation)
    B, F = x.shape[0], w.shape[2]
    out = _checks.out_array(out, (B, size[0], size[1], F), x.dtype, inputs=(x, w, b))
    yp = _pad(out[..., :0], geo, w.shape[:2], strides, dilation)       # (B,Hp,Wp,0)
    zp = np.zeros(yp.shape[:3] + (F,), x.dtype)                        # (B,Hp,Wp,F)
    for i in range(w.shape[0]):
        for j in range(w.shape[1]):
            zp[_tap(i, j, geo, strides, dilation)] += x @ w[i, j].T    # (B,H,W,C) @ (C,F)
    z = zp[:, geo[2]:geo[2] + size[0], geo[3]:geo[3] + size[1], :]     # (B,HO,WO,F)
    if b is not None:
        z = z + b                                                      # (B,HO,WO,F)
    out[...] = _act(z, activation)                                     # (B,HO,WO,F)
    return out


def conv2d_transpose_backward(x, w, y, dy, strides=(1, 1), padding="valid", dilation=(1, 1),
                              activation="linear", need_dx=True, dx=None, dw=None, db=None):
    """(dx (B,H,W,C) or None, dw (KH,KW,F,C), db (F,)) of conv2d_transpose_forward:
    dz = dy * act'(y); dx = conv2d(dz, w); dw[i,j] = window(i,j) of dz (padded)^T x;
    db = sum of dz."""
    x, w, _, strides, padding, dilation, activation, size, geo = \
        _checks.conv2d_transpose_args(x, w, None, strides, padding, dilation, activation)
    B, F = x.shape[0], w.shape[2]
    y, dy = _checks.conv2d_grad_args(x, y, dy, activation, (B, size[0], size[1], F))
    ins = (x, w, y, dy)
    dw = _checks.out_array(dw, w.shape, x.dtype, "dw", inputs=ins)
    db = _checks.out_array(db, (F,), x.dtype, "db", inputs=ins + (dw,))
    if need_dx:
        dx = _checks.out_array(dx, x.shape, x.dtype, "dx", inputs=ins + (dw, db))
    dz = _act_grad(y, dy, activation)                                   # (B,HO,WO,F)
    dzp = _pad(dz, geo, w.shape[:2], strides, dilation)                 # (B,Hp,Wp,F)
    g = np.zeros(x.shape, x.dtype)                                      # (B,H,W,C)
    for i in range(w.shape[0]):
        for j in range(w.shape[1]):
            t = _tap(i, j, geo, strides, dilation)
            dw[i, j] = np.tensordot(dzp[t], x, axes=([0, 1, 2], [0, 1, 2]))  # (F,C)
            g += dzp[t] @ w[i, j]                                       # (B,H,W,F) @ (F,C)
    db[...] = dz.sum(axis=(0, 1, 2))                                    # (F,)
    if not need_dx:
        return None, dw, db
    dx[...] = g                                                         # (B,H,W,C)
    return dx, dw, db


def depthwise_conv2d_forward(x, w, b=None, strides=(1, 1), padding="valid", dilation=(1, 1),
                             activation="linear", out=None):
    """y (B, OH, OW, C) = act(depthwise conv(x, w) + b), w (KH, KW, C, 1), b (C,):
    channel c of y sees only channel c of x (depth_multiplier 1)."""
    x, w, b, strides, padding, dilation, activation, geo = _checks.conv2d_args(
        x, w, b, strides, padding, dilation, activation, depthwise=True)
    B, C = x.shape[0], x.shape[3]
    out = _checks.out_array(out, (B, geo[0], geo[1], C), x.dtype, inputs=(x, w, b))
    xp = _pad(x, geo, w.shape[:2], strides, dilation)                  # (B,Hp,Wp,C)
    z = np.zeros(out.shape, x.dtype)                                   # (B,OH,OW,C)
    for i in range(w.shape[0]):
        for j in range(w.shape[1]):
            z += xp[_tap(i, j, geo, strides, dilation)] * w[i, j, :, 0]  # (B,OH,OW,C) * (C,)
    if b is not None:
        z += b                                                         # (B,OH,OW,C)
    out[...] = _act(z, activation)                                     # (B,OH,OW,C)
    return out


def depthwise_conv2d_backward(x, w, y, dy, strides=(1, 1), padding="valid", dilation=(1, 1),
                              activation="linear", need_dx=True, dx=None, dw=None, db=None):
    """(dx (B,H,W,C) or None, dw (KH,KW,C,1), db (C,)) of depthwise_conv2d_forward."""
    x, w, _, strides, padding, dilation, activation, geo = _checks.conv2d_args(
        x, w, None, strides, padding, dilation, activation, depthwise=True)
    B, C = x.shape[0], x.shape[3]
    y, dy = _checks.conv2d_grad_args(x, y, dy, activation, (B, geo[0], geo[1], C))
    ins = (x, w, y, dy)
    dw = _checks.out_array(dw, w.shape, x.dtype, "dw", inputs=ins)
    db = _checks.out_array(db, (C,), x.dtype, "db", inputs=ins + (dw,))
    if need_dx:
        dx = _checks.out_array(dx, x.shape, x.dtype, "dx", inputs=ins + (dw, db))
    dz = _act_grad(y, dy, activation)                                   # (B,OH,OW,C)
    xp = _pad(x, geo, w.shape[:2], strides, dilation)                   # (B,Hp,Wp,C)
    dxp = np.zeros_like(xp) if need_dx else None                        # (B,Hp,Wp,C)
    for i in range(w.shape[0]):
        for j in range(w.shape[1]):
            t = _tap(i, j, geo, strides, dilation)
            dw[i, j, :, 0] = (xp[t] * dz).sum(axis=(0, 1, 2))           # (C,)
            if need_dx:
                dxp[t] += dz * w[i, j, :, 0]                            # (B,OH,OW,C)
    db[...] = dz.sum(axis=(0, 1, 2))                                    # (C,)
    if not need_dx:
        return None, dw, db
    H, W = x.shape[1], x.shape[2]
    dx[...] = dxp[:, geo[2]:geo[2] + H, geo[3]:geo[3] + W, :]          # (B,H,W,C)
    return dx, dw, db


def conv2d_maxpool_forward(x, w, b=None, strides=(1, 1), padding="valid", dilation=(1, 1),
                           activation="linear", pool_size=(2, 2), out=None):
    """y (B, OH // PH, OW // PW, OC) = max_pool2d(act(conv(x, w) + b)) with pool windows
    pool_size = (PH, PW), strides pool_size, padding "valid": the inference fusion of a
    convolution and the max pooling after it (the C kernel never stores the convolution)."""
    x, w, b, strides, padding, dilation, activation, geo, pool_size, pgeo = \
        _checks.conv2d_maxpool_args(x, w, b, strides, padding, dilation, activation, pool_size)
    B, OC = x.shape[0], w.shape[3]
    out = _checks.out_array(out, (B, pgeo[0], pgeo[1], OC), x.dtype, inputs=(x, w, b))
    y = conv2d_forward(x, w, b, strides, padding, dilation, activation)  # (B,OH,OW,OC)
    max_pool2d_forward(y, pool_size, pool_size, "valid", out=out)         # (B,POH,POW,OC)
    return out
