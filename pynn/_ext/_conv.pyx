# cython: language_level=3
"""C backend of pynn.reference.conv: conv2d, conv2d_transpose and depthwise conv2d, NHWC,
forward and backward.

Each wrapper checks its arguments with pynn._checks (the same checks as the reference),
allocates the outputs it was not given, then makes one C call with the GIL released.
x is passed by its strides (any layout); w, b, y and dy are made C-contiguous (small, or
fresh from the forward already).
"""
import numpy as np
from cython cimport floating

from pynn import _checks
from pynn._ext._csrc cimport pynn_idx, pynn_ctx, PYNN_OK
from pynn._ext._runtime cimport get_ctx

cdef extern from "conv.h" nogil:
    ctypedef struct pynn_conv_geom:
        pynn_idx B, H, W, C, OC, KH, KW, OH, OW, sh, sw, dh, dw, pt, pl, xsb, xsh, xsw, xsc
    int pynn_conv2d_forward_f32(float *y, const float *x, const float *w, const float *bias,
                                pynn_conv_geom g, int act, pynn_ctx ctx)
    int pynn_conv2d_forward_f64(double *y, const double *x, const double *w, const double *bias,
                                pynn_conv_geom g, int act, pynn_ctx ctx)
    int pynn_conv2d_backward_f32(float *dx, float *dweight, float *dbias, const float *x,
                                 const float *w, const float *y, const float *dy,
                                 pynn_conv_geom g, int act, pynn_ctx ctx)
    int pynn_conv2d_backward_f64(double *dx, double *dweight, double *dbias, const double *x,
                                 const double *w, const double *y, const double *dy,
                                 pynn_conv_geom g, int act, pynn_ctx ctx)
    int pynn_conv2d_transpose_forward_f32(float *y, const float *x, const float *w,
                                          const float *bias, pynn_conv_geom g, int act,
                                          pynn_ctx ctx)
    int pynn_conv2d_transpose_forward_f64(double *y, const double *x, const double *w,
                                          const double *bias, pynn_conv_geom g, int act,
                                          pynn_ctx ctx)
    int pynn_conv2d_transpose_backward_f32(float *dx, float *dweight, float *dbias,
                                           const float *x, const float *w, const float *y,
                                           const float *dy, pynn_conv_geom g, int act,
                                           pynn_ctx ctx)
    int pynn_conv2d_transpose_backward_f64(double *dx, double *dweight, double *dbias,
                                           const double *x, const double *w, const double *y,
                                           const double *dy, pynn_conv_geom g, int act,
                                           pynn_ctx ctx)
    int pynn_depthwise_conv2d_forward_f32(float *y, const float *x, const float *w,
                                          const float *bias, pynn_conv_geom g, int act,
                                          pynn_ctx ctx)
    int pynn_depthwise_conv2d_forward_f64(double *y, const double *x, const double *w,
                                          const double *bias, pynn_conv_geom g, int act,
                                          pynn_ctx ctx)
    int pynn_depthwise_conv2d_backward_f32(float *dx, float *dweight, float *dbias,
                                           const float *x, const float *w, const float *y,
                                           const float *dy, pynn_conv_geom g, int act,
                                           pynn_ctx ctx)
    int pynn_depthwise_conv2d_backward_f64(double *dx, double *dweight, double *dbias,
                                           const double *x, const double *w, const double *y,
                                           const double *dy, pynn_conv_geom g, int act,
                                           pynn_ctx ctx)
    int pynn_conv2d_maxpool_forward_f32(float *y, const float *x, const float *w,
                                        const float *bias, pynn_conv_geom g, pynn_idx ph,
                                        pynn_idx pw, int act, pynn_ctx ctx)
    int pynn_conv2d_maxpool_forward_f64(double *y, const double *x, const double *w,
                                        const double *bias, pynn_conv_geom g, pynn_idx ph,
                                        pynn_idx pw, int act, pynn_ctx ctx)

__all__ = ["conv2d_forward", "conv2d_backward", "conv2d_transpose_forward",
           "conv2d_transpose_backward", "depthwise_conv2d_forward", "depthwise_conv2d_backward",
           "conv2d_maxpool_forward"]

# which family of C kernels a call runs
cdef enum:
    CONV, DEPTHWISE, TRANSPOSE, CONV_MAXPOOL

ACTIVATIONS = {"linear": 0, "relu": 1, "sigmoid": 2, "tanh": 3}


cdef pynn_conv_geom make_geom(x, pynn_idx KH, pynn_idx KW, pynn_idx OC, geo, strides, dilation):
    cdef pynn_conv_geom g
    cdef pynn_idx item = x.itemsize
    g.B, g.H, g.W, g.C = x.shape
    g.OC, g.KH, g.KW = OC, KH, KW
    g.OH, g.OW, g.pt, g.pl = geo
    g.sh, g.sw = strides
    g.dh, g.dw = dilation
    g.xsb, g.xsh, g.xsw, g.xsc = [s // item for s in x.strides]
    return g


cdef inline const floating *cptr(const floating[:, :, :, :] a) noexcept:
    # first element of a 4-D view, NULL when empty (nothing may be read then)
    if a is None or a.shape[0] == 0 or a.shape[1] == 0 or a.shape[2] == 0 or a.shape[3] == 0:
        return NULL
    return &a[0, 0, 0, 0]


cdef inline floating *optr(floating[::1] a) noexcept:
    # first element of a flat output view, NULL when empty
    if a is None or a.shape[0] == 0:
        return NULL
    return &a[0]


def _flat(a):
    return None if a is None else a.reshape(-1)


cdef int _forward(floating[::1] y,                      # OUT (B*OH*OW*OC,)
                  const floating[:, :, :, :] x,         # IN  (B,H,W,C), strided
                  const floating[:, :, :, :] w,         # IN  (KH,KW,C,OC), contiguous
                  const floating[::1] b,                # IN  (OC,) or None
                  pynn_conv_geom g, int act, int kind, pynn_ctx ctx,
                  pynn_idx pool_h=0, pynn_idx pool_w=0) noexcept:
    # CONV_MAXPOOL: y (B*POH*POW*OC,) pooled by pool_h x pool_w windows (conv2d_maxpool)
    cdef int st = PYNN_OK
    cdef floating *py = optr(y)
    cdef const floating *px = cptr(x)
    cdef const floating *pw = cptr(w)
    cdef const floating *pb = NULL if b is None else &b[0]
    if py == NULL:
        return st
    with nogil:
        if floating is float:
            if kind == DEPTHWISE:
                st = pynn_depthwise_conv2d_forward_f32(py, px, pw, pb, g, act, ctx)
            elif kind == TRANSPOSE:
                st = pynn_conv2d_transpose_forward_f32(py, px, pw, pb, g, act, ctx)
            elif kind == CONV_MAXPOOL:
                st = pynn_conv2d_maxpool_forward_f32(py, px, pw, pb, g, pool_h, pool_w, act, ctx)
            else:
                st = pynn_conv2d_forward_f32(py, px, pw, pb, g, act, ctx)
        else:
            if kind == DEPTHWISE:
                st = pynn_depthwise_conv2d_forward_f64(py, px, pw, pb, g, act, ctx)
            elif kind == TRANSPOSE:
                st = pynn_conv2d_transpose_forward_f64(py, px, pw, pb, g, act, ctx)
            elif kind == CONV_MAXPOOL:
                st = pynn_conv2d_maxpool_forward_f64(py, px, pw, pb, g, pool_h, pool_w, act, ctx)
            else:
                st = pynn_conv2d_forward_f64(py, px, pw, pb, g, act, ctx)
    return st


cdef int _backward(floating[::1] dx,                    # OUT (B*H*W*C,) or None
                   floating[::1] dw,                    # OUT (KH*KW*C*OC,)
                   floating[::1] db,                    # OUT (OC,)
                   const floating[:, :, :, :] x,        # IN  (B,H,W,C), strided
                   const floating[:, :, :, :] w,        # IN  (KH,KW,C,OC), contiguous
                   const floating[:, :, :, :] y,        # IN  (B,OH,OW,OC) or None
                   const floating[:, :, :, :] dy,       # IN  (B,OH,OW,OC)
                   pynn_conv_geom g, int act, int kind, pynn_ctx ctx) noexcept:
    cdef int st = PYNN_OK
    cdef floating *pdx = optr(dx)
    cdef floating *pdw = optr(dw)
    cdef floating *pdb = optr(db)
    cdef const floating *px = cptr(x)
    cdef const floating *pw = cptr(w)
    cdef const floating *py = cptr(y)
    cdef const floating *pdy = cptr(dy)
    with nogil:
        if floating is float:
            if kind == DEPTHWISE:
                st = pynn_depthwise_conv2d_backward_f32(pdx, pdw, pdb, px, pw, py, pdy, g, act, ctx)
            elif kind == TRANSPOSE:
                st = pynn_conv2d_transpose_backward_f32(pdx, pdw, pdb, px, pw, py, pdy, g, act, ctx)
            else:
                st = pynn_conv2d_backward_f32(pdx, pdw, pdb, px, pw, py, pdy, g, act, ctx)
        else:
            if kind == DEPTHWISE:
                st = pynn_depthwise_conv2d_backward_f64(pdx, pdw, pdb, px, pw, py, pdy, g, act, ctx)
            elif kind == TRANSPOSE:
                st = pynn_conv2d_transpose_backward_f64(pdx, pdw, pdb, px, pw, py, pdy, g, act, ctx)
            else:
                st = pynn_conv2d_backward_f64(pdx, pdw, pdb, px, pw, py, pdy, g, act, ctx)
    return st


def _run_forward(x, w, b, strides, padding, dilation, activation, out, bint depthwise):
    x, w, b, strides, padding, dilation, activation, geo = _checks.conv2d_args(
        x, w, b, strides, padding, dilation, activation, depthwise=depthwise)
    oc = x.shape[3] if depthwise else w.shape[3]
    out = _checks.out_array(out, (x.shape[0], geo[0], geo[1], oc), x.dtype, inputs=(x, w, b))
    w = _checks.contiguous(w)
    b = None if b is None else _checks.contiguous(b)
    g = make_geom(x, w.shape[0], w.shape[1], oc, geo, strides, dilation)
    if x.dtype == np.float32:
        st = _forward[float](out.reshape(-1), x, w, b, g, ACTIVATIONS[activation],
                             DEPTHWISE if depthwise else CONV, get_ctx())
    else:
        st = _forward[double](out.reshape(-1), x, w, b, g, ACTIVATIONS[activation],
                              DEPTHWISE if depthwise else CONV, get_ctx())
    if st != PYNN_OK:
        raise MemoryError("conv2d: could not allocate im2col scratch")
    return out


def _run_backward(x, w, y, dy, strides, padding, dilation, activation, need_dx, dx, dw, db,
                  bint depthwise):
    x, w, _, strides, padding, dilation, activation, geo = _checks.conv2d_args(
        x, w, None, strides, padding, dilation, activation, depthwise=depthwise)
    oc = x.shape[3] if depthwise else w.shape[3]
    y, dy = _checks.conv2d_grad_args(x, y, dy, activation, (x.shape[0], geo[0], geo[1], oc))
    ins = (x, w, y, dy)
    dw = _checks.out_array(dw, w.shape, x.dtype, "dw", inputs=ins)
    db = _checks.out_array(db, (oc,), x.dtype, "db", inputs=ins + (dw,))
    dx = _checks.out_array(dx, x.shape, x.dtype, "dx", inputs=ins + (dw, db)) if need_dx else None
    w = _checks.contiguous(w)
    dy = _checks.contiguous(dy)
    if activation == "linear":
        y = None
    elif y is not None:
        y = _checks.contiguous(y)
    g = make_geom(x, w.shape[0], w.shape[1], oc, geo, strides, dilation)
    if x.dtype == np.float32:
        st = _backward[float](_flat(dx), dw.reshape(-1), db, x, w, y, dy, g,
                              ACTIVATIONS[activation],
                              DEPTHWISE if depthwise else CONV, get_ctx())
    else:
        st = _backward[double](_flat(dx), dw.reshape(-1), db, x, w, y, dy, g,
                               ACTIVATIONS[activation],
                              DEPTHWISE if depthwise else CONV, get_ctx())
    if st != PYNN_OK:
        raise MemoryError("conv2d backward: could not allocate scratch")
    return dx, dw, db


def conv2d_forward(x, w, b=None, strides=(1, 1), padding="valid", dilation=(1, 1),
                   activation="linear", out=None):
    """y (B, OH, OW, OC) = act(conv(x, w) + b). See pynn.reference.conv2d_forward."""
    return _run_forward(x, w, b, strides, padding, dilation, activation, out, False)


def conv2d_backward(x, w, y, dy, strides=(1, 1), padding="valid", dilation=(1, 1),
                    activation="linear", need_dx=True, dx=None, dw=None, db=None):
    """(dx or None, dw, db) of conv2d_forward. See pynn.reference.conv2d_backward."""
    return _run_backward(x, w, y, dy, strides, padding, dilation, activation, need_dx,
                         dx, dw, db, False)


def _transpose_geom(x, w, size, geo, strides, dilation):
    # the convolution (B, HO, WO, F) -> (B, H, W, C) whose input gradient this is; its
    # input is the transposed output, C-contiguous
    cdef pynn_conv_geom g
    g.B, g.H, g.W, g.C = x.shape[0], size[0], size[1], w.shape[2]
    g.OC, g.KH, g.KW = w.shape[3], w.shape[0], w.shape[1]
    g.OH, g.OW, g.pt, g.pl = geo
    g.sh, g.sw = strides
    g.dh, g.dw = dilation
    g.xsc, g.xsw, g.xsh, g.xsb = 1, g.C, g.W * g.C, g.H * g.W * g.C
    return g


def conv2d_transpose_forward(x, w, b=None, strides=(1, 1), padding="valid", dilation=(1, 1),
                             activation="linear", out=None):
    """y (B, HO, WO, F), w (KH, KW, F, C). See pynn.reference.conv2d_transpose_forward."""
    x, w, b, strides, padding, dilation, activation, size, geo = \
        _checks.conv2d_transpose_args(x, w, b, strides, padding, dilation, activation)
    out = _checks.out_array(out, (x.shape[0], size[0], size[1], w.shape[2]), x.dtype,
                            inputs=(x, w, b))
    x = _checks.contiguous(x)
    w = _checks.contiguous(w)
    b = None if b is None else _checks.contiguous(b)
    g = _transpose_geom(x, w, size, geo, strides, dilation)
    if x.dtype == np.float32:
        st = _forward[float](out.reshape(-1), x, w, b, g, ACTIVATIONS[activation], TRANSPOSE,
                             get_ctx())
    else:
        st = _forward[double](out.reshape(-1), x, w, b, g, ACTIVATIONS[activation], TRANSPOSE,
                              get_ctx())
    if st != PYNN_OK:
        raise MemoryError("conv2d_transpose: could not allocate scratch")
    return out


def conv2d_transpose_backward(x, w, y, dy, strides=(1, 1), padding="valid", dilation=(1, 1),
                              activation="linear", need_dx=True, dx=None, dw=None, db=None):
    """(dx or None, dw, db) of conv2d_transpose_forward."""
    x, w, _, strides, padding, dilation, activation, size, geo = \
        _checks.conv2d_transpose_args(x, w, None, strides, padding, dilation, activation)
    F = w.shape[2]
    y, dy = _checks.conv2d_grad_args(x, y, dy, activation, (x.shape[0], size[0], size[1], F))
    ins = (x, w, y, dy)
    dw = _checks.out_array(dw, w.shape, x.dtype, "dw", inputs=ins)
    db = _checks.out_array(db, (F,), x.dtype, "db", inputs=ins + (dw,))
    dx = _checks.out_array(dx, x.shape, x.dtype, "dx", inputs=ins + (dw, db)) if need_dx else None
    x, w, dy = (_checks.contiguous(a) for a in (x, w, dy))
    y = None if activation == "linear" or y is None else _checks.contiguous(y)
    g = _transpose_geom(x, w, size, geo, strides, dilation)
    if x.dtype == np.float32:
        st = _backward[float](_flat(dx), dw.reshape(-1), db, x, w, y, dy, g,
                              ACTIVATIONS[activation], TRANSPOSE, get_ctx())
    else:
        st = _backward[double](_flat(dx), dw.reshape(-1), db, x, w, y, dy, g,
                               ACTIVATIONS[activation], TRANSPOSE, get_ctx())
    if st != PYNN_OK:
        raise MemoryError("conv2d_transpose backward: could not allocate scratch")
    return dx, dw, db


def depthwise_conv2d_forward(x, w, b=None, strides=(1, 1), padding="valid", dilation=(1, 1),
                             activation="linear", out=None):
    """y (B, OH, OW, C), w (KH, KW, C, 1). See pynn.reference.depthwise_conv2d_forward."""
    return _run_forward(x, w, b, strides, padding, dilation, activation, out, True)


def depthwise_conv2d_backward(x, w, y, dy, strides=(1, 1), padding="valid", dilation=(1, 1),
                              activation="linear", need_dx=True, dx=None, dw=None, db=None):
    """(dx or None, dw, db) of depthwise_conv2d_forward."""
    return _run_backward(x, w, y, dy, strides, padding, dilation, activation, need_dx,
                         dx, dw, db, True)


def conv2d_maxpool_forward(x, w, b=None, strides=(1, 1), padding="valid", dilation=(1, 1),
                           activation="linear", pool_size=(2, 2), out=None):
    """max_pool2d(conv2d(x, w, b), pool_size, strides=pool_size, "valid") in one pass.
    See pynn.reference.conv2d_maxpool_forward."""
    x, w, b, strides, padding, dilation, activation, geo, pool_size, pgeo = \
        _checks.conv2d_maxpool_args(x, w, b, strides, padding, dilation, activation, pool_size)
    oc = w.shape[3]
    out = _checks.out_array(out, (x.shape[0], pgeo[0], pgeo[1], oc), x.dtype, inputs=(x, w, b))
    w = _checks.contiguous(w)
    b = None if b is None else _checks.contiguous(b)
    g = make_geom(x, w.shape[0], w.shape[1], oc, geo, strides, dilation)
    if x.dtype == np.float32:
        st = _forward[float](out.reshape(-1), x, w, b, g, ACTIVATIONS[activation],
                             CONV_MAXPOOL, get_ctx(), pool_size[0], pool_size[1])
    else:
        st = _forward[double](out.reshape(-1), x, w, b, g, ACTIVATIONS[activation],
                              CONV_MAXPOOL, get_ctx(), pool_size[0], pool_size[1])
    if st != PYNN_OK:
        raise MemoryError("conv2d_maxpool: could not allocate scratch")
    return out
