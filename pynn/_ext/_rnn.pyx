# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True, initializedcheck=False
"""C backend of pynn.reference.rnn: SimpleRNN, LSTM and GRU sequences and their BPTT.

Each wrapper checks its arguments with the reference's checks (pynn._checks underneath, the
same functions in the same order), makes the inputs C-contiguous (a copy only when they are
not), allocates the outputs that are absent and makes one C call with the GIL released.
An empty batch or sequence (B, T or H == 0) is answered here without C.
"""
import numpy as np
cimport numpy as cnp

from pynn import _checks
from pynn.reference import rnn as _ref
from pynn._ext._csrc cimport pynn_idx, pynn_ctx, PYNN_OK
from pynn._ext._runtime cimport get_ctx

cnp.import_array()

cdef extern from "rnn.h" nogil:
    enum:
        PYNN_RNN_TANH
        PYNN_RNN_RELU
        PYNN_RNN_LSTM
        PYNN_RNN_GRU
    int pynn_rnn_forward_f32(float *h, float *c, float *gates,
                             const float *xproj, const float *h0, const float *c0,
                             const float *w_rec, const float *b_rec, const unsigned char *mask,
                             pynn_idx B, pynn_idx T, pynn_idx H, int cell, pynn_ctx ctx)
    int pynn_rnn_forward_f64(double *h, double *c, double *gates,
                             const double *xproj, const double *h0, const double *c0,
                             const double *w_rec, const double *b_rec, const unsigned char *mask,
                             pynn_idx B, pynn_idx T, pynn_idx H, int cell, pynn_ctx ctx)
    int pynn_rnn_backward_f32(float *dxproj, float *dh0, float *dc0, float *dw_rec,
                              float *db_rec, const float *h0, const float *c0,
                              const float *w_rec, const float *h, const float *c,
                              const float *gates, const float *dh, const float *dh_last,
                              const float *dc_last, const unsigned char *mask, pynn_idx B,
                              pynn_idx T, pynn_idx H, int cell, pynn_ctx ctx)
    int pynn_rnn_backward_f64(double *dxproj, double *dh0, double *dc0, double *dw_rec,
                              double *db_rec, const double *h0, const double *c0,
                              const double *w_rec, const double *h, const double *c,
                              const double *gates, const double *dh, const double *dh_last,
                              const double *dc_last, const unsigned char *mask, pynn_idx B,
                              pynn_idx T, pynn_idx H, int cell, pynn_ctx ctx)

__all__ = ["simple_rnn_forward", "simple_rnn_backward", "lstm_forward", "lstm_backward",
           "gru_forward", "gru_backward"]


cdef inline void *_ptr(a):
    return NULL if a is None else cnp.PyArray_DATA(<cnp.ndarray>a)


cdef inline object _c(a):
    return None if a is None else _checks.contiguous(a)


def _mask(mask, B, T):
    """The checked mask (the reference's rule) as C-contiguous bytes, or None."""
    mask = _checks.step_mask(mask, B, T)
    return None if mask is None else np.ascontiguousarray(mask).view(np.uint8)


cdef int _forward(int cell, h, c, gates, xproj, h0, c0, w_rec, b_rec, mask,
                  pynn_idx B, pynn_idx T, pynn_idx H) except -1:
    """One C call: the recurrence of `cell` over the whole sequence."""
    cdef void *ph = _ptr(h)
    cdef void *pc = _ptr(c)
    cdef void *pg = _ptr(gates)
    cdef void *px = _ptr(xproj)
    cdef void *ph0 = _ptr(h0)
    cdef void *pc0 = _ptr(c0)
    cdef void *pw = _ptr(w_rec)
    cdef void *pb = _ptr(b_rec)
    cdef const unsigned char *pm = <const unsigned char *>_ptr(mask)
    cdef bint f32 = cnp.PyArray_TYPE(<cnp.ndarray>xproj) == cnp.NPY_FLOAT32
    cdef pynn_ctx ctx = get_ctx()
    cdef int st
    with nogil:
        if f32:
            st = pynn_rnn_forward_f32(<float *>ph, <float *>pc, <float *>pg, <const float *>px,
                                      <const float *>ph0, <const float *>pc0,
                                      <const float *>pw, <const float *>pb, pm, B, T, H, cell,
                                      ctx)
        else:
            st = pynn_rnn_forward_f64(<double *>ph, <double *>pc, <double *>pg,
                                      <const double *>px, <const double *>ph0,
                                      <const double *>pc0, <const double *>pw,
                                      <const double *>pb, pm, B, T, H, cell, ctx)
    if st != PYNN_OK:
        raise MemoryError("rnn forward: could not allocate scratch memory")
    return 0


cdef int _backward(int cell, dxproj, dh0, dc0, dw_rec, db_rec, h0, c0, w_rec, h, c, gates,
                   dh, dh_last, dc_last, mask, pynn_idx B, pynn_idx T, pynn_idx H) except -1:
    """One C call: backpropagation through time of `cell`."""
    cdef void *pdx = _ptr(dxproj)
    cdef void *pdh0 = _ptr(dh0)
    cdef void *pdc0 = _ptr(dc0)
    cdef void *pdw = _ptr(dw_rec)
    cdef void *pdb = _ptr(db_rec)
    cdef void *ph0 = _ptr(h0)
    cdef void *pc0 = _ptr(c0)
    cdef void *pw = _ptr(w_rec)
    cdef void *ph = _ptr(h)
    cdef void *pc = _ptr(c)
    cdef void *pg = _ptr(gates)
    cdef void *pdh = _ptr(dh)
    cdef void *pdhl = _ptr(dh_last)
    cdef void *pdcl = _ptr(dc_last)
    cdef const unsigned char *pm = <const unsigned char *>_ptr(mask)
    cdef bint f32 = cnp.PyArray_TYPE(<cnp.ndarray>h) == cnp.NPY_FLOAT32
    cdef pynn_ctx ctx = get_ctx()
    cdef int st
    with nogil:
        if f32:
            st = pynn_rnn_backward_f32(<float *>pdx, <float *>pdh0, <float *>pdc0,
                                       <float *>pdw, <float *>pdb, <const float *>ph0,
                                       <const float *>pc0, <const float *>pw,
                                       <const float *>ph, <const float *>pc,
                                       <const float *>pg, <const float *>pdh,
                                       <const float *>pdhl, <const float *>pdcl, pm,
                                       B, T, H, cell, ctx)
        else:
            st = pynn_rnn_backward_f64(<double *>pdx, <double *>pdh0, <double *>pdc0,
                                       <double *>pdw, <double *>pdb, <const double *>ph0,
                                       <const double *>pc0, <const double *>pw,
                                       <const double *>ph, <const double *>pc,
                                       <const double *>pg, <const double *>pdh,
                                       <const double *>pdhl, <const double *>pdcl, pm,
                                       B, T, H, cell, ctx)
    if st != PYNN_OK:
        raise MemoryError("rnn backward: could not allocate scratch memory")
    return 0


def _empty_backward(dh_last, dc_last, h0, outs):
    """Gradients when B, T or H is 0: no step runs; the final-state gradient reaches h0, c0."""
    dxproj, dh0, dc0, dw_rec, db_rec = outs
    dxproj[...] = 0
    dh0[...] = 0 if dh_last is None else dh_last
    if dc0 is not None:
        dc0[...] = 0 if dc_last is None else dc_last
    dw_rec[...] = 0
    if db_rec is not None:
        db_rec[...] = 0


def simple_rnn_forward(xproj, h0, w_rec, activation="tanh", out=None, mask=None):
    """h_t = act(xproj_t + h_{t-1} @ w_rec): xproj (B, T, H) -> h (B, T, H). See the reference."""
    activation = _ref._activation(activation)
    xproj, h0, w_rec, B, T, H = _ref._seq_args(xproj, h0, w_rec, 1)
    mask = _mask(mask, B, T)
    out = _checks.out_array(out, (B, T, H), xproj.dtype, inputs=(xproj, h0, w_rec))
    if B and T and H:
        _forward(PYNN_RNN_TANH if activation == "tanh" else PYNN_RNN_RELU, out, None, None,
                 _c(xproj), _c(h0), None, _c(w_rec), None, mask, B, T, H)
    return out


def simple_rnn_backward(h0, w_rec, h, dh, dh_last=None, activation="tanh", dxproj=None,
                        dh0=None, dw_rec=None, mask=None):
    """BPTT of simple_rnn_forward -> (dxproj, dh0, dw_rec). See the reference."""
    activation = _ref._activation(activation)
    h0, w_rec, h, dh, dh_last, B, T, H = _ref._bwd_args(h0, w_rec, h, dh, dh_last, 1)
    mask = _mask(mask, B, T)
    ins = (h0, w_rec, h, dh, dh_last)
    dxproj = _checks.out_array(dxproj, (B, T, H), h.dtype, "dxproj", inputs=ins)
    dh0 = _checks.out_array(dh0, (B, H), h.dtype, "dh0", inputs=ins + (dxproj,))
    dw_rec = _checks.out_array(dw_rec, (H, H), h.dtype, "dw_rec", inputs=ins + (dxproj, dh0))
    if B and T and H:
        _backward(PYNN_RNN_TANH if activation == "tanh" else PYNN_RNN_RELU, dxproj, dh0, None,
                  dw_rec, None, _c(h0), None, _c(w_rec), _c(h), None, None, _c(dh),
                  _c(dh_last), None, mask, B, T, H)
    else:
        _empty_backward(dh_last, None, h0, (dxproj, dh0, None, dw_rec, None))
    return dxproj, dh0, dw_rec


def lstm_forward(xproj, h0, c0, w_rec, bias=None, out_h=None, out_c=None, out_gates=None,
                 mask=None):
    """LSTM over a sequence -> (h, c, gates). See pynn.reference.lstm_forward."""
    xproj, h0, w_rec, B, T, H = _ref._seq_args(xproj, h0, w_rec, 4)
    mask = _mask(mask, B, T)
    c0 = _checks.float_array(c0, "c0", ndim=2)
    _checks.same_dtype(xproj.dtype, c0=c0)
    _checks.same_shape((B, H), c0=c0)
    bias = _ref._lstm_bias(bias, H, xproj.dtype)
    ins = (xproj, h0, c0, w_rec, bias)
    out_h = _checks.out_array(out_h, (B, T, H), xproj.dtype, "out_h", inputs=ins)
    out_c = _checks.out_array(out_c, (B, T, H), xproj.dtype, "out_c", inputs=ins + (out_h,))
    out_gates = _checks.out_array(out_gates, (B, T, 4 * H), xproj.dtype, "out_gates",
                                  inputs=ins + (out_h, out_c))
    if B and T and H:
        _forward(PYNN_RNN_LSTM, out_h, out_c, out_gates, _c(xproj), _c(h0), _c(c0), _c(w_rec),
                 _c(bias), mask, B, T, H)
    return out_h, out_c, out_gates


def lstm_backward(h0, c0, w_rec, h, c, gates, dh, dh_last=None, dc_last=None, dxproj=None,
                  dh0=None, dc0=None, dw_rec=None, db=None, mask=None):
    """BPTT of lstm_forward -> (dxproj, dh0, dc0, dw_rec, db). See the reference."""
    (h0, c0, w_rec, h, c, gates, dh, dh_last, dc_last, dxproj, dh0, dc0, dw_rec, db,
     B, T, H) = _ref._lstm_bwd_args(h0, c0, w_rec, h, c, gates, dh, dh_last, dc_last, dxproj,
                                    dh0, dc0, dw_rec, db)
    mask = _mask(mask, B, T)
    if B and T and H:
        _backward(PYNN_RNN_LSTM, dxproj, dh0, dc0, dw_rec, db, _c(h0), _c(c0), _c(w_rec),
                  _c(h), _c(c), _c(gates), _c(dh), _c(dh_last), _c(dc_last), mask, B, T, H)
    else:
        _empty_backward(dh_last, dc_last, h0, (dxproj, dh0, dc0, dw_rec, db))
    return dxproj, dh0, dc0, dw_rec, db


def gru_forward(xproj, h0, w_rec, b_rec=None, out_h=None, out_gates=None, mask=None):
    """GRU (reset_after) over a sequence -> (h, gates). See pynn.reference.gru_forward."""
    xproj, h0, w_rec, B, T, H = _ref._seq_args(xproj, h0, w_rec, 3)
    mask = _mask(mask, B, T)
    b_rec = _ref._gru_brec(b_rec, H, xproj.dtype)
    ins = (xproj, h0, w_rec, b_rec)
    out_h = _checks.out_array(out_h, (B, T, H), xproj.dtype, "out_h", inputs=ins)
    out_gates = _checks.out_array(out_gates, (B, T, 4 * H), xproj.dtype, "out_gates",
                                  inputs=ins + (out_h,))
    if B and T and H:
        _forward(PYNN_RNN_GRU, out_h, None, out_gates, _c(xproj), _c(h0), None, _c(w_rec),
                 _c(b_rec), mask, B, T, H)
    return out_h, out_gates


def gru_backward(h0, w_rec, h, gates, dh, dh_last=None, dxproj=None, dh0=None, dw_rec=None,
                 db_rec=None, mask=None):
    """BPTT of gru_forward -> (dxproj, dh0, dw_rec, db_rec). See the reference."""
    (h0, w_rec, h, gates, dh, dh_last, dxproj, dh0, dw_rec, db_rec,
     B, T, H) = _ref._gru_bwd_args(h0, w_rec, h, gates, dh, dh_last, dxproj, dh0, dw_rec,
                                   db_rec)
    mask = _mask(mask, B, T)
    if B and T and H:
        _backward(PYNN_RNN_GRU, dxproj, dh0, None, dw_rec, db_rec, _c(h0), None, _c(w_rec),
                  _c(h), None, _c(gates), _c(dh), _c(dh_last), None, mask, B, T, H)
    else:
        _empty_backward(dh_last, None, h0, (dxproj, dh0, None, dw_rec, db_rec))
    return dxproj, dh0, dw_rec, db_rec
