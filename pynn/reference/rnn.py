"""Recurrent cells over a whole sequence (SimpleRNN, LSTM, GRU) and backpropagation through time.

Layout (Keras): sequences are batch-first (B, T, .). The input projection of all time steps,
xproj = x @ kernel + bias (B, T, G*H), is computed by the caller as one GEMM; these kernels run
the recurrence h_t = cell(xproj_t + h_{t-1} @ w_rec) for t = 0..T-1 (a reversed sequence is the
caller's flip). Gate order: LSTM i, f, c, o (G = 4); GRU z, r, h (G = 3, Keras reset_after=True,
the recurrent projection has its own bias b_rec and r gates it); SimpleRNN one (G = 1).
Backward kernels take the gradient dh (B, T, H) of the output sequence plus optional gradients
of the final state, and return the gradient of xproj (from which the caller gets dkernel, dbias,
dx by GEMMs), of the initial state, and of the recurrent weights (and GRU's recurrent bias).

mask (B, T), optional (Keras' masking of padded steps): where mask[b, t] is False, step t of
sample b is skipped: its state (h, and the LSTM's c) is the previous one carried over, so h[b, t]
repeats h[b, t-1] (h0 at t = 0) and the final state is the last unmasked one. Backward, such a
step passes the state gradients through unchanged and gives dxproj[b, t] = 0 (so it adds
nothing to dw_rec or the biases). Its gates are 0. Forward and backward take the same mask.
"""
import numpy as np

from .. import _checks

__all__ = ["simple_rnn_forward", "simple_rnn_backward", "lstm_forward", "lstm_backward",
           "gru_forward", "gru_backward"]


def _sigmoid(z):
    return 0.5 * (np.tanh(0.5 * z) + 1.0)  # stable for any z, same as 1 / (1 + exp(-z))


def _seq_args(xproj, h0, w_rec, gates, name="xproj"):
    """Checked (xproj (B,T,G*H), h0 (B,H), w_rec (H,G*H)) -> (xproj, h0, w_rec, B, T, H)."""
    xproj = _checks.float_array(xproj, name, ndim=3)
    h0 = _checks.float_array(h0, "h0", ndim=2)
    w_rec = _checks.float_array(w_rec, "w_rec", ndim=2)
    _checks.same_dtype(xproj.dtype, h0=h0, w_rec=w_rec)
    B, T, GH = xproj.shape
    H = w_rec.shape[0]
    if w_rec.shape != (H, gates * H):
        raise ValueError(f"w_rec must have shape (H, {gates}*H), received {w_rec.shape}")
    if GH != gates * H:
        raise ValueError(f"{name} must have shape (B, T, {gates}*H) = (B, T, {gates * H}) for "
                         f"w_rec of shape {w_rec.shape}, received {xproj.shape}")
    _checks.same_shape((B, H), h0=h0)
    return xproj, h0, w_rec, B, T, H


def _bwd_args(h0, w_rec, h, dh, dh_last, gates):
    """Checked backward inputs -> (h0, w_rec, h, dh, dh_last, B, T, H)."""
    h = _checks.float_array(h, "h", ndim=3)
    h0 = _checks.float_array(h0, "h0", ndim=2)
    w_rec = _checks.float_array(w_rec, "w_rec", ndim=2)
    dh = _checks.float_array(dh, "dh", ndim=3)
    B, T, H = h.shape
    _checks.same_dtype(h.dtype, h0=h0, w_rec=w_rec, dh=dh)
    if w_rec.shape != (H, gates * H):
        raise ValueError(f"w_rec must have shape ({H}, {gates * H}) for h of shape {h.shape}, "
                         f"received {w_rec.shape}")
    _checks.same_shape((B, H), h0=h0)
    _checks.same_shape((B, T, H), dh=dh)
    if dh_last is not None:
        dh_last = _checks.float_array(dh_last, "dh_last", ndim=2)
        _checks.same_dtype(h.dtype, dh_last=dh_last)
        _checks.same_shape((B, H), dh_last=dh_last)
    return h0, w_rec, h, dh, dh_last, B, T, H


def _activation(activation):
    return _checks.one_of(activation, "activation", ("tanh", "relu"))


def _hprev(h0, h):
    # (B, T, H): the state entering each step, h0 then h_0..h_{T-2} (nothing when T == 0)
    return np.concatenate([h0[:, None, :], h[:, :-1, :]], axis=1)[:, :h.shape[1]]


def simple_rnn_forward(xproj, h0, w_rec, activation="tanh", out=None, mask=None):
    """h_t = act(xproj_t + h_{t-1} @ w_rec), act tanh or relu.

    xproj (B, T, H), h0 (B, H), w_rec (H, H), mask (B, T) or None -> out h (B, T, H).
    """
    activation = _activation(activation)
    xproj, h0, w_rec, B, T, H = _seq_args(xproj, h0, w_rec, 1)
    mask = _checks.step_mask(mask, B, T)
    out = _checks.out_array(out, (B, T, H), xproj.dtype, inputs=(xproj, h0, w_rec))
    h = h0
    for t in range(T):
        a = xproj[:, t] + h @ w_rec  # (B, H)
        hn = np.tanh(a) if activation == "tanh" else np.maximum(a, 0)  # (B, H)
        h = hn if mask is None else np.where(mask[:, t, None], hn, h)
        out[:, t] = h
    return out


def simple_rnn_backward(h0, w_rec, h, dh, dh_last=None, activation="tanh", dxproj=None,
                        dh0=None, dw_rec=None, mask=None):
    """Backpropagation through time of simple_rnn_forward.

    h (B, T, H) the forward output, dh (B, T, H) its gradient, dh_last (B, H) or None an extra
    gradient of the final state, mask the forward's -> (dxproj (B, T, H), dh0 (B, H),
    dw_rec (H, H)), written.
    """
    activation = _activation(activation)
    h0, w_rec, h, dh, dh_last, B, T, H = _bwd_args(h0, w_rec, h, dh, dh_last, 1)
    mask = _checks.step_mask(mask, B, T)
    ins = (h0, w_rec, h, dh, dh_last)
    dxproj = _checks.out_array(dxproj, (B, T, H), h.dtype, "dxproj", inputs=ins)
    dh0 = _checks.out_array(dh0, (B, H), h.dtype, "dh0", inputs=ins + (dxproj,))
    dw_rec = _checks.out_array(dw_rec, (H, H), h.dtype, "dw_rec", inputs=ins + (dxproj, dh0))
    carry = np.zeros((B, H), h.dtype) if dh_last is None else dh_last.copy()  # (B, H)
    for t in range(T - 1, -1, -1):
        g = dh[:, t] + carry  # (B, H)
        da = g * (1 - h[:, t] ** 2) if activation == "tanh" else g * (h[:, t] > 0)  # (B, H)
        if mask is not None:  # a skipped step: no input gradient, the state's passes through
            da = np.where(mask[:, t, None], da, 0)
        dxproj[:, t] = da
        carry = da @ w_rec.T  # (B, H)
        if mask is not None:
            carry = np.where(mask[:, t, None], carry, g)
    dh0[...] = carry
    hp = _hprev(h0, h).reshape(B * T, H)  # (B*T, H)
    dw_rec[...] = hp.T @ dxproj.reshape(B * T, H)  # (H, H)
    return dxproj, dh0, dw_rec


def _lstm_bias(bias, H, dtype):
    """Checked LSTM bias (4H,), or None."""
    if bias is None:
        return None
    bias = _checks.float_array(bias, "bias", ndim=1)
    _checks.same_dtype(dtype, bias=bias)
    _checks.same_shape((4 * H,), bias=bias)
    return bias


def lstm_forward(xproj, h0, c0, w_rec, bias=None, out_h=None, out_c=None, out_gates=None,
                 mask=None):
    """LSTM over a sequence, gates i, f, c, o (Keras order).

    z = (xproj_t + bias) + h_{t-1} @ w_rec; i, f, o = sigmoid; g = tanh;
    c_t = f c_{t-1} + i g; h_t = o tanh(c_t). xproj (B, T, 4H), h0, c0 (B, H), w_rec (H, 4H),
    bias (4H,) or None (the layer's bias, so that xproj needs none), mask (B, T) or None ->
    (h (B, T, H), c (B, T, H), gates (B, T, 4H) the activated i, f, g, o).
    """
    xproj, h0, w_rec, B, T, H = _seq_args(xproj, h0, w_rec, 4)
    mask = _checks.step_mask(mask, B, T)
    c0 = _checks.float_array(c0, "c0", ndim=2)
    _checks.same_dtype(xproj.dtype, c0=c0)
    _checks.same_shape((B, H), c0=c0)
    bias = _lstm_bias(bias, H, xproj.dtype)
    ins = (xproj, h0, c0, w_rec, bias)
    out_h = _checks.out_array(out_h, (B, T, H), xproj.dtype, "out_h", inputs=ins)
    out_c = _checks.out_array(out_c, (B, T, H), xproj.dtype, "out_c", inputs=ins + (out_h,))
    out_gates = _checks.out_array(out_gates, (B, T, 4 * H), xproj.dtype, "out_gates",
                                  inputs=ins + (out_h, out_c))
    xb = xproj if bias is None else xproj + bias  # (B, T, 4H)
    h, c = h0, c0
    for t in range(T):
        z = xb[:, t] + h @ w_rec  # (B, 4H)
        i, f = _sigmoid(z[:, :H]), _sigmoid(z[:, H:2 * H])  # (B, H) each
        g, o = np.tanh(z[:, 2 * H:3 * H]), _sigmoid(z[:, 3 * H:])  # (B, H) each
        cn = f * c + i * g  # (B, H)
        hn = o * np.tanh(cn)  # (B, H)
        gates = np.concatenate([i, f, g, o], axis=1)  # (B, 4H)
        if mask is None:
            h, c = hn, cn
        else:
            h, c = np.where(mask[:, t, None], hn, h), np.where(mask[:, t, None], cn, c)
            gates = np.where(mask[:, t, None], gates, 0)
        out_h[:, t], out_c[:, t] = h, c
        out_gates[:, t] = gates
    return out_h, out_c, out_gates


def _lstm_bwd_args(h0, c0, w_rec, h, c, gates, dh, dh_last, dc_last, dxproj, dh0, dc0,
                   dw_rec, db):
    """Checked arguments of lstm_backward (both backends) and its outputs, allocated or checked
    -> (h0, c0, w_rec, h, c, gates, dh, dh_last, dc_last, dxproj, dh0, dc0, dw_rec, db,
    B, T, H)."""
    h0, w_rec, h, dh, dh_last, B, T, H = _bwd_args(h0, w_rec, h, dh, dh_last, 4)
    c0 = _checks.float_array(c0, "c0", ndim=2)
    c = _checks.float_array(c, "c", ndim=3)
    gates = _checks.float_array(gates, "gates", ndim=3)
    _checks.same_dtype(h.dtype, c0=c0, c=c, gates=gates)
    _checks.same_shape((B, H), c0=c0)
    _checks.same_shape((B, T, H), c=c)
    _checks.same_shape((B, T, 4 * H), gates=gates)
    if dc_last is not None:
        dc_last = _checks.float_array(dc_last, "dc_last", ndim=2)
        _checks.same_dtype(h.dtype, dc_last=dc_last)
        _checks.same_shape((B, H), dc_last=dc_last)
    ins = (h0, c0, w_rec, h, c, gates, dh, dh_last, dc_last)
    dxproj = _checks.out_array(dxproj, (B, T, 4 * H), h.dtype, "dxproj", inputs=ins)
    dh0 = _checks.out_array(dh0, (B, H), h.dtype, "dh0", inputs=ins + (dxproj,))
    dc0 = _checks.out_array(dc0, (B, H), h.dtype, "dc0", inputs=ins + (dxproj, dh0))
    dw_rec = _checks.out_array(dw_rec, (H, 4 * H), h.dtype, "dw_rec",
                               inputs=ins + (dxproj, dh0, dc0))
    db = _checks.out_array(db, (4 * H,), h.dtype, "db", inputs=ins + (dxproj, dh0, dc0, dw_rec))
    return (h0, c0, w_rec, h, c, gates, dh, dh_last, dc_last, dxproj, dh0, dc0, dw_rec, db,
            B, T, H)


def lstm_backward(h0, c0, w_rec, h, c, gates, dh, dh_last=None, dc_last=None, dxproj=None,
                  dh0=None, dc0=None, dw_rec=None, db=None, mask=None):
    """Backpropagation through time of lstm_forward.

    h, c (B, T, H) and gates (B, T, 4H) from the forward pass; dh (B, T, H) the gradient of the
    output sequence; dh_last, dc_last (B, H) or None extra gradients of the final state ->
    (dxproj (B, T, 4H), dh0 (B, H), dc0 (B, H), dw_rec (H, 4H), db (4H,)), written; db is the
    sum of dxproj over B and T, the gradient of lstm_forward's bias. mask: the forward's.
    """
    (h0, c0, w_rec, h, c, gates, dh, dh_last, dc_last, dxproj, dh0, dc0, dw_rec, db,
     B, T, H) = _lstm_bwd_args(h0, c0, w_rec, h, c, gates, dh, dh_last, dc_last, dxproj, dh0,
                               dc0, dw_rec, db)
    mask = _checks.step_mask(mask, B, T)
    dhn = np.zeros((B, H), h.dtype) if dh_last is None else dh_last.copy()  # (B, H)
    dcn = np.zeros((B, H), h.dtype) if dc_last is None else dc_last.copy()  # (B, H)
    for t in range(T - 1, -1, -1):
        i, f = gates[:, t, :H], gates[:, t, H:2 * H]  # (B, H) each
        g, o = gates[:, t, 2 * H:3 * H], gates[:, t, 3 * H:]  # (B, H) each
        cp = c0 if t == 0 else c[:, t - 1]  # (B, H)
        tc = np.tanh(c[:, t])  # (B, H)
        d = dh[:, t] + dhn  # (B, H)
        dc = dcn + d * o * (1 - tc * tc)  # (B, H)
        dxproj[:, t, :H] = dc * g * i * (1 - i)
        dxproj[:, t, H:2 * H] = dc * cp * f * (1 - f)
        dxproj[:, t, 2 * H:3 * H] = dc * i * (1 - g * g)
        dxproj[:, t, 3 * H:] = d * tc * o * (1 - o)
        if mask is None:
            dcn = dc * f  # (B, H)
            dhn = dxproj[:, t] @ w_rec.T  # (B, H)
        else:  # a skipped step: no input gradient, the states' pass through
            m = mask[:, t, None]
            dxproj[:, t] = np.where(m, dxproj[:, t], 0)
            dcn = np.where(m, dc * f, dcn)
            dhn = np.where(m, dxproj[:, t] @ w_rec.T, d)
    dh0[...], dc0[...] = dhn, dcn
    hp = _hprev(h0, h).reshape(B * T, H)  # (B*T, H)
    dw_rec[...] = hp.T @ dxproj.reshape(B * T, 4 * H)  # (H, 4H)
    db[...] = dxproj.reshape(B * T, 4 * H).sum(axis=0)  # (4H,)
    return dxproj, dh0, dc0, dw_rec, db


def _gru_brec(b_rec, H, dtype):
    if b_rec is None:
        return np.zeros(3 * H, dtype)
    b_rec = _checks.float_array(b_rec, "b_rec", ndim=1)
    _checks.same_dtype(dtype, b_rec=b_rec)
    _checks.same_shape((3 * H,), b_rec=b_rec)
    return b_rec


def gru_forward(xproj, h0, w_rec, b_rec=None, out_h=None, out_gates=None, mask=None):
    """GRU over a sequence, Keras reset_after=True, gates z, r, h.

    rp = h_{t-1} @ w_rec + b_rec (B, 3H); z = sigmoid(x_z + rp_z); r = sigmoid(x_r + rp_r);
    n = tanh(x_h + r * rp_h); h_t = z h_{t-1} + (1 - z) n. xproj (B, T, 3H), h0 (B, H),
    w_rec (H, 3H), b_rec (3H,) or None, mask (B, T) or None ->
    (h (B, T, H), gates (B, T, 4H) = z, r, n, rp_h).
    """
    xproj, h0, w_rec, B, T, H = _seq_args(xproj, h0, w_rec, 3)
    mask = _checks.step_mask(mask, B, T)
    b_rec = _gru_brec(b_rec, H, xproj.dtype)
    ins = (xproj, h0, w_rec, b_rec)
    out_h = _checks.out_array(out_h, (B, T, H), xproj.dtype, "out_h", inputs=ins)
    out_gates = _checks.out_array(out_gates, (B, T, 4 * H), xproj.dtype, "out_gates",
                                  inputs=ins + (out_h,))
    h = h0
    for t in range(T):
        rp = h @ w_rec + b_rec  # (B, 3H)
        x = xproj[:, t]  # (B, 3H)
        z = _sigmoid(x[:, :H] + rp[:, :H])  # (B, H)
        r = _sigmoid(x[:, H:2 * H] + rp[:, H:2 * H])  # (B, H)
        n = np.tanh(x[:, 2 * H:] + r * rp[:, 2 * H:])  # (B, H)
        hn = z * h + (1 - z) * n  # (B, H)
        gates = np.concatenate([z, r, n, rp[:, 2 * H:]], axis=1)  # (B, 4H)
        if mask is None:
            h = hn
        else:
            h = np.where(mask[:, t, None], hn, h)
            gates = np.where(mask[:, t, None], gates, 0)
        out_h[:, t] = h
        out_gates[:, t] = gates
    return out_h, out_gates


def _gru_bwd_args(h0, w_rec, h, gates, dh, dh_last, dxproj, dh0, dw_rec, db_rec):
    """Checked arguments of gru_backward (both backends) and its outputs, allocated or checked
    -> (h0, w_rec, h, gates, dh, dh_last, dxproj, dh0, dw_rec, db_rec, B, T, H)."""
    h0, w_rec, h, dh, dh_last, B, T, H = _bwd_args(h0, w_rec, h, dh, dh_last, 3)
    gates = _checks.float_array(gates, "gates", ndim=3)
    _checks.same_dtype(h.dtype, gates=gates)
    _checks.same_shape((B, T, 4 * H), gates=gates)
    ins = (h0, w_rec, h, gates, dh, dh_last)
    dxproj = _checks.out_array(dxproj, (B, T, 3 * H), h.dtype, "dxproj", inputs=ins)
    dh0 = _checks.out_array(dh0, (B, H), h.dtype, "dh0", inputs=ins + (dxproj,))
    dw_rec = _checks.out_array(dw_rec, (H, 3 * H), h.dtype, "dw_rec", inputs=ins + (dxproj, dh0))
    db_rec = _checks.out_array(db_rec, (3 * H,), h.dtype, "db_rec",
                               inputs=ins + (dxproj, dh0, dw_rec))
    return h0, w_rec, h, gates, dh, dh_last, dxproj, dh0, dw_rec, db_rec, B, T, H


def gru_backward(h0, w_rec, h, gates, dh, dh_last=None, dxproj=None, dh0=None, dw_rec=None,
                 db_rec=None, mask=None):
    """Backpropagation through time of gru_forward.

    h (B, T, H), gates (B, T, 4H) from the forward pass, dh (B, T, H), dh_last (B, H) or None,
    mask the forward's -> (dxproj (B, T, 3H), dh0 (B, H), dw_rec (H, 3H), db_rec (3H,)),
    written.
    """
    (h0, w_rec, h, gates, dh, dh_last, dxproj, dh0, dw_rec, db_rec,
     B, T, H) = _gru_bwd_args(h0, w_rec, h, gates, dh, dh_last, dxproj, dh0, dw_rec, db_rec)
    mask = _checks.step_mask(mask, B, T)
    drp = np.empty((B, T, 3 * H), h.dtype)  # gradient of the recurrent projection rp
    carry = np.zeros((B, H), h.dtype) if dh_last is None else dh_last.copy()  # (B, H)
    for t in range(T - 1, -1, -1):
        z, r = gates[:, t, :H], gates[:, t, H:2 * H]  # (B, H) each
        n, rph = gates[:, t, 2 * H:3 * H], gates[:, t, 3 * H:]  # (B, H) each
        hp = h0 if t == 0 else h[:, t - 1]  # (B, H)
        d = dh[:, t] + carry  # (B, H)
        dn = d * (1 - z) * (1 - n * n)  # (B, H) gradient of n's pre-activation
        dxproj[:, t, :H] = d * (hp - n) * z * (1 - z)
        dxproj[:, t, H:2 * H] = dn * rph * r * (1 - r)
        dxproj[:, t, 2 * H:] = dn
        drp[:, t, :2 * H] = dxproj[:, t, :2 * H]
        drp[:, t, 2 * H:] = dn * r
        if mask is not None:  # a skipped step: no input gradient, the state's passes through
            m = mask[:, t, None]
            dxproj[:, t] = np.where(m, dxproj[:, t], 0)
            drp[:, t] = np.where(m, drp[:, t], 0)
        carry = d * z + drp[:, t] @ w_rec.T  # (B, H)
        if mask is not None:
            carry = np.where(m, carry, d)
    dh0[...] = carry
    hp = _hprev(h0, h).reshape(B * T, H)  # (B*T, H)
    dw_rec[...] = hp.T @ drp.reshape(B * T, 3 * H)  # (H, 3H)
    db_rec[...] = drp.reshape(B * T, 3 * H).sum(axis=0)  # (3H,)
    return dxproj, dh0, dw_rec, db_rec
