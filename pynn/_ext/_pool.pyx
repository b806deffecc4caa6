# cython: language_level=3
"""C backend of pynn.reference.pool: max / average / global pooling, nearest upsampling, NHWC.

Each wrapper checks its arguments with pynn._checks (the same checks as the reference),
allocates `out` if absent, then makes one C call with the GIL released. x is passed by its
strides; dy is made C-contiguous.
"""
import numpy as np
from cython cimport floating

from pynn import _checks
from pynn._ext._csrc cimport pynn_idx, pynn_ctx
from pynn._ext._runtime cimport get_ctx

cdef extern from "pool.h" nogil:
    ctypedef struct pynn_conv_geom:
        pynn_idx B, H, W, C, OC, KH, KW, OH, OW, sh, sw, dh, dw, pt, pl, xsb, xsh, xsw, xsc
    void pynn_max_pool2d_forward_f32(float *y, const float *x, pynn_conv_geom g, pynn_ctx ctx)
    void pynn_max_pool2d_forward_f64(double *y, const double *x, pynn_conv_geom g, pynn_ctx ctx)
    void pynn_max_pool2d_backward_f32(float *dx, const float *x, const float *dy,
                                      pynn_conv_geom g, pynn_ctx ctx)
    void pynn_max_pool2d_backward_f64(double *dx, const double *x, const double *dy,
                                      pynn_conv_geom g, pynn_ctx ctx)
    void pynn_avg_pool2d_forward_f32(float *y, const float *x, pynn_conv_geom g, pynn_ctx ctx)
    void pynn_avg_pool2d_forward_f64(double *y, const double *x, pynn_conv_geom g, pynn_ctx ctx)
    void pynn_avg_pool2d_backward_f32(float *dx, const float *dy, pynn_conv_geom g, pynn_ctx ctx)
    void pynn_avg_pool2d_backward_f64(double *dx, const double *dy, pynn_conv_geom g,
                                      pynn_ctx ctx)
    void pynn_global_avg_pool2d_forward_f32(float *y, const float *x, pynn_conv_geom g,
                                            pynn_ctx ctx)
    void pynn_global_avg_pool2d_forward_f64(double *y, const double *x, pynn_conv_geom g,
                                            pynn_ctx ctx)
    void pynn_global_avg_pool2d_backward_f32(float *dx, const float *dy, pynn_conv_geom g,
                                             pynn_ctx ctx)
    void pynn_global_avg_pool2d_backward_f64(double *dx, const double *dy, pynn_conv_geom g,
                                             pynn_ctx ctx)
    void pynn_global_max_pool2d_forward_f32(float *y, const float *x, pynn_conv_geom g,
                                            pynn_ctx ctx)
    void pynn_global_max_pool2d_forward_f64(double *y, const double *x, pynn_conv_geom g,
                                            pynn_ctx ctx)
    void pynn_global_max_pool2d_backward_f32(float *dx, const float *x, const float *dy,
                                             pynn_conv_geom g, pynn_ctx ctx)
    void pynn_global_max_pool2d_backward_f64(double *dx, const double *x, const double *dy,
                                             pynn_conv_geom g, pynn_ctx ctx)
    void pynn_upsampling2d_forward_f32(float *y, const float *x, pynn_conv_geom g, pynn_ctx ctx)
    void pynn_upsampling2d_forward_f64(double *y, const double *x, pynn_conv_geom g,
                                       pynn_ctx ctx)
    void pynn_upsampling2d_backward_f32(float *dx, const float *dy, pynn_conv_geom g,
                                        pynn_ctx ctx)
    void pynn_upsampling2d_backward_f64(double *dx, const double *dy, pynn_conv_geom g,
                                        pynn_ctx ctx)

__all__ = ["max_pool2d_forward", "max_pool2d_backward", "avg_pool2d_forward",
           "avg_pool2d_backward", "global_avg_pool2d_forward", "global_avg_pool2d_backward",
           "global_max_pool2d_forward", "global_max_pool2d_backward", "upsampling2d_forward",
           "upsampling2d_backward"]

# which C kernel a call runs
cdef enum:
    MAX_FWD, MAX_BWD, AVG_FWD, AVG_BWD, GAVG_FWD, GAVG_BWD, GMAX_FWD, GMAX_BWD, UP_FWD, UP_BWD


cdef pynn_conv_geom make_geom(x, pool_size, strides, geo):
    cdef pynn_conv_geom g
    cdef pynn_idx item = x.itemsize
    g.B, g.H, g.W, g.C = x.shape
    g.OC = g.C
    g.KH, g.KW = pool_size
    g.OH, g.OW, g.pt, g.pl = geo
    g.sh, g.sw = strides
    g.dh = g.dw = 1
    g.xsb, g.xsh, g.xsw, g.xsc = [s // item for s in x.strides]
    return g


cdef inline const floating *cptr(const floating[:, :, :, :] a) noexcept:
    # first element of a 4-D view, NULL when empty (nothing may be read then)
    if a.shape[0] == 0 or a.shape[1] == 0 or a.shape[2] == 0 or a.shape[3] == 0:
        return NULL
    return &a[0, 0, 0, 0]


cdef void _run(floating[::1] out,                    # OUT y or dx, flat
               const floating[:, :, :, :] x,         # IN  (B,H,W,C), strided
               const floating[::1] dy,               # IN  flat, or None
               pynn_conv_geom g, int which, pynn_ctx ctx) noexcept:
    cdef floating *po = &out[0]
    cdef const floating *px = cptr(x)
    cdef const floating *pdy = NULL if dy is None else &dy[0]
    with nogil:
        if floating is float:
            if which == MAX_FWD: pynn_max_pool2d_forward_f32(po, px, g, ctx)
            elif which == MAX_BWD: pynn_max_pool2d_backward_f32(po, px, pdy, g, ctx)
            elif which == AVG_FWD: pynn_avg_pool2d_forward_f32(po, px, g, ctx)
            elif which == AVG_BWD: pynn_avg_pool2d_backward_f32(po, pdy, g, ctx)
            elif which == GAVG_FWD: pynn_global_avg_pool2d_forward_f32(po, px, g, ctx)
            elif which == GAVG_BWD: pynn_global_avg_pool2d_backward_f32(po, pdy, g, ctx)
            elif which == GMAX_FWD: pynn_global_max_pool2d_forward_f32(po, px, g, ctx)
            elif which == GMAX_BWD: pynn_global_max_pool2d_backward_f32(po, px, pdy, g, ctx)
            elif which == UP_FWD: pynn_upsampling2d_forward_f32(po, px, g, ctx)
            else: pynn_upsampling2d_backward_f32(po, pdy, g, ctx)
        else:
            if which == MAX_FWD: pynn_max_pool2d_forward_f64(po, px, g, ctx)
            elif which == MAX_BWD: pynn_max_pool2d_backward_f64(po, px, pdy, g, ctx)
            elif which == AVG_FWD: pynn_avg_pool2d_forward_f64(po, px, g, ctx)
            elif which == AVG_BWD: pynn_avg_pool2d_backward_f64(po, pdy, g, ctx)
            elif which == GAVG_FWD: pynn_global_avg_pool2d_forward_f64(po, px, g, ctx)
            elif which == GAVG_BWD: pynn_global_avg_pool2d_backward_f64(po, pdy, g, ctx)
            elif which == GMAX_FWD: pynn_global_max_pool2d_forward_f64(po, px, g, ctx)
            elif which == GMAX_BWD: pynn_global_max_pool2d_backward_f64(po, px, pdy, g, ctx)
            elif which == UP_FWD: pynn_upsampling2d_forward_f64(po, px, g, ctx)
            else: pynn_upsampling2d_backward_f64(po, pdy, g, ctx)


def _call(out, x, dy, g, which):
    if out.size == 0:
        return out
    flat_dy = None if dy is None else _checks.contiguous(dy).reshape(-1)
    if x.dtype == np.float32:
        _run[float](out.reshape(-1), x, flat_dy, g, which, get_ctx())
    else:
        _run[double](out.reshape(-1), x, flat_dy, g, which, get_ctx())
    return out


def _pool_forward(x, pool_size, strides, padding, out, which):
    x, pool_size, strides, padding, geo = _checks.pool2d_args(x, pool_size, strides, padding)
    out = _checks.out_array(out, (x.shape[0], geo[0], geo[1], x.shape[3]), x.dtype, inputs=(x,))
    return _call(out, x, None, make_geom(x, pool_size, strides, geo), which)


def _pool_backward(x, dy, pool_size, strides, padding, out, which):
    x, pool_size, strides, padding, geo = _checks.pool2d_args(x, pool_size, strides, padding)
    dy = _checks.pool2d_grad_args(x, dy, geo)
    out = _checks.out_array(out, x.shape, x.dtype, inputs=(x, dy))
    return _call(out, x, dy, make_geom(x, pool_size, strides, geo), which)


def max_pool2d_forward(x, pool_size=(2, 2), strides=None, padding="valid", out=None):
    """y (B, OH, OW, C) = max of each window. See pynn.reference.max_pool2d_forward."""
    return _pool_forward(x, pool_size, strides, padding, out, MAX_FWD)


def max_pool2d_backward(x, dy, pool_size=(2, 2), strides=None, padding="valid", out=None):
    """dx (B, H, W, C): dy routed to each window's first argmax (recomputed from x)."""
    return _pool_backward(x, dy, pool_size, strides, padding, out, MAX_BWD)


def avg_pool2d_forward(x, pool_size=(2, 2), strides=None, padding="valid", out=None):
    """y (B, OH, OW, C) = mean of each window's valid elements."""
    return _pool_forward(x, pool_size, strides, padding, out, AVG_FWD)


def avg_pool2d_backward(x, dy, pool_size=(2, 2), strides=None, padding="valid", out=None):
    """dx (B, H, W, C): dy / count spread over each window's valid elements."""
    return _pool_backward(x, dy, pool_size, strides, padding, out, AVG_BWD)


def _global_args(x, dy=None, backward=False):
    x, dy = _checks.global_pool2d_args(x, dy, backward)
    g = make_geom(x, (1, 1), (1, 1), (1, 1, 0, 0))
    return x, dy, g


def global_avg_pool2d_forward(x, out=None):
    """y (B, C) = mean of x (B, H, W, C) over H and W."""
    x, _, g = _global_args(x)
    out = _checks.out_array(out, (x.shape[0], x.shape[3]), x.dtype, inputs=(x,))
    return _call(out, x, None, g, GAVG_FWD)


def global_avg_pool2d_backward(x, dy, out=None):
    """dx (B, H, W, C) = dy (B, C) / (H * W) at every position."""
    x, dy, g = _global_args(x, dy, backward=True)
    out = _checks.out_array(out, x.shape, x.dtype, inputs=(x, dy))
    return _call(out, x, dy, g, GAVG_BWD)


def global_max_pool2d_forward(x, out=None):
    """y (B, C) = max of x (B, H, W, C) over H and W."""
    x, _, g = _global_args(x)
    out = _checks.out_array(out, (x.shape[0], x.shape[3]), x.dtype, inputs=(x,))
    return _call(out, x, None, g, GMAX_FWD)


def global_max_pool2d_backward(x, dy, out=None):
    """dx (B, H, W, C): dy at each channel's first maximum, 0 elsewhere."""
    x, dy, g = _global_args(x, dy, backward=True)
    out = _checks.out_array(out, x.shape, x.dtype, inputs=(x, dy))
    return _call(out, x, dy, g, GMAX_BWD)


def upsampling2d_forward(x, size=(2, 2), out=None):
    """y (B, H*sh, W*sw, C): each pixel repeated sh x sw times (nearest)."""
    x, size = _checks.upsampling2d_args(x, size)
    out = _checks.out_array(out, (x.shape[0], x.shape[1] * size[0], x.shape[2] * size[1],
                                  x.shape[3]), x.dtype, inputs=(x,))
    g = make_geom(x, size, (1, 1), (x.shape[1] * size[0], x.shape[2] * size[1], 0, 0))
    return _call(out, x, None, g, UP_FWD)


def upsampling2d_backward(x, dy, size=(2, 2), out=None):
    """dx (B, H, W, C) = the sum of dy over each pixel's sh x sw block."""
    x, size = _checks.upsampling2d_args(x, size)
    dy = _checks.pool2d_grad_args(x, dy, (x.shape[1] * size[0], x.shape[2] * size[1]))
    out = _checks.out_array(out, x.shape, x.dtype, inputs=(x, dy))
    g = make_geom(x, size, (1, 1), (x.shape[1] * size[0], x.shape[2] * size[1], 0, 0))
    return _call(out, x, dy, g, UP_BWD)
