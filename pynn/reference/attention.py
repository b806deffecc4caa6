"""Scaled dot-product attention; the NumPy reference.

q (B, H, T, D), k (B, H, S, D), v (B, H, S, DV). Position (t, s) is allowed when the mask
(broadcast to (B, T, S), True or 1 = may attend) allows it and, when causal, s <= t (Keras'
lower-triangular causal mask). P = softmax over allowed s of scale * q k^T (max-subtracted;
a row with nothing allowed is all zeros, and so is its output; a NaN or +inf among a row's
allowed scores makes its allowed entries NaN; disallowed entries are always 0), out = P v.
Forward returns (out, probs); backward takes probs back. Outputs may be strided views.
dropout > 0 (training): out = (P * M) v with M = dropout_mask(probs.shape, dropout, seed,
step), the Dropout kernel's mask over probs' flat C-order indices (values 0 or
1 / (1 - dropout)); probs stay P; the backward takes the same dropout, seed and step.
"""
import numpy as np

from .. import _checks
from .dropout import dropout_mask

__all__ = ["attention_forward", "attention_backward"]


def attention_forward(q, k, v, causal=False, mask=None, scale=None, out=None, probs=None,
                      dropout=0.0, seed=0, step=0):
    """(out (B, H, T, DV), probs (B, H, T, S)); scale defaults to 1 / sqrt(D)."""
    q, k, v, causal, mask, scale = _checks.attention_args(q, k, v, causal, mask, scale)
    dropout, seed, step = _checks.dropout_args(dropout, seed, step, "dropout")
    B, H, T, _ = q.shape
    S, DV = v.shape[2], v.shape[3]
    out = _checks.strided_out(out, (B, H, T, DV), q.dtype, inputs=(q, k, v))
    probs = _checks.out_array(probs, (B, H, T, S), q.dtype, "probs", inputs=(q, k, v, out))
    t = q.dtype.type
    s = np.matmul(q, k.swapaxes(-1, -2)) * t(scale)                      # (B,H,T,S)
    allowed = np.ones((1, 1, T, S), dtype=bool)                          # (1,1,T,S)
    if causal:
        allowed = allowed & np.tri(T, S, dtype=bool)                     # (1,1,T,S) s <= t
    if mask is not None:
        allowed = allowed & mask.astype(bool)[:, None]                   # (B,1,T,S)
    s = np.where(allowed, s, -np.inf)                                    # (B,H,T,S)
    mx = s.max(axis=-1, keepdims=True) if S else np.zeros(s.shape[:-1] + (1,), q.dtype)
    mx = np.where(np.isfinite(mx), mx, 0)                                # (B,H,T,1)
    with np.errstate(over="ignore", invalid="ignore"):  # only rows set to NaN below
        e = np.where(allowed, np.exp(s - mx), 0).astype(q.dtype)         # (B,H,T,S)
        z = e.sum(axis=-1, keepdims=True)                                # (B,H,T,1)
        p = e / np.where(z > 0, z, 1)                                    # (B,H,T,S)
    # a NaN or +inf allowed score (z NaN or inf): the row's allowed entries are NaN
    probs[...] = np.where(allowed & ~np.isfinite(z), np.nan, p)         # (B,H,T,S)
    pv = probs
    if dropout:
        pv = probs * dropout_mask(probs.shape, dropout, seed, step, q.dtype)  # (B,H,T,S)
    out[...] = np.matmul(pv, v)                                          # (B,H,T,DV)
    return out, probs


def attention_backward(q, k, v, probs, dout, causal=False, scale=None, dq=None, dk=None,
                       dv=None, dropout=0.0, seed=0, step=0):
    """(dq, dk, dv) of attention_forward given its probs. causal only lets the C kernel skip
    the zero upper triangle (pass the forward's value); scale and dropout, seed, step as in
    the forward."""
    q, k, v, probs, dout, causal, scale = _checks.attention_grad_args(q, k, v, probs, dout,
                                                                      causal, scale)
    dropout, seed, step = _checks.dropout_args(dropout, seed, step, "dropout")
    ins = (q, k, v, probs, dout)
    dq = _checks.strided_out(dq, q.shape, q.dtype, "dq", inputs=ins)
    dk = _checks.strided_out(dk, k.shape, q.dtype, "dk", inputs=ins + (dq,))
    dv = _checks.strided_out(dv, v.shape, q.dtype, "dv", inputs=ins + (dq, dk))
    t = q.dtype.type
    dp = np.matmul(dout, v.swapaxes(-1, -2))                             # (B,H,T,S)
    pv = probs
    if dropout:
        m = dropout_mask(probs.shape, dropout, seed, step, q.dtype)      # (B,H,T,S)
        dp, pv = dp * m, probs * m                                       # (B,H,T,S) twice
    ds = probs * (dp - (probs * dp).sum(axis=-1, keepdims=True)) * t(scale)  # (B,H,T,S)
    dq[...] = np.matmul(ds, k)                                           # (B,H,T,D)
    dk[...] = np.matmul(ds.swapaxes(-1, -2), q)                          # (B,H,S,D)
    dv[...] = np.matmul(pv.swapaxes(-1, -2), dout)                       # (B,H,S,DV)
    return dq, dk, dv
