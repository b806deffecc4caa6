"""Layer normalization over the last axis; the NumPy reference (llm.c doc/layernorm).

y = (x - mean) * rstd * gamma + beta with mean and the biased variance of each row over
its last axis and rstd = 1 / sqrt(var + eps). Forward returns (y, mean, rstd); backward
takes mean and rstd back.
"""
import numpy as np

from .. import _checks

__all__ = ["layernorm_forward", "layernorm_backward"]


def layernorm_forward(x, gamma, beta, eps=1e-5, out=None, mean=None, rstd=None):
    """(y (..., C), mean (...,), rstd (...,)); beta may be None (no shift)."""
    x, gamma, beta, eps = _checks.layernorm_args(x, gamma, beta, eps)
    ins = (x, gamma, beta)
    out = _checks.out_array(out, x.shape, x.dtype, inputs=ins)
    mean = _checks.out_array(mean, x.shape[:-1], x.dtype, "mean", inputs=ins + (out,))
    rstd = _checks.out_array(rstd, x.shape[:-1], x.dtype, "rstd", inputs=ins + (out, mean))
    x64 = x.astype(np.float64)                                           # (..., C)
    m = x64.mean(axis=-1)                                                # (...,)
    mean[...] = m
    xc = x64 - mean[..., None]                                           # (..., C)
    var = (xc * xc).mean(axis=-1)                                        # (...,) biased
    rstd[...] = 1.0 / np.sqrt(var + eps)                                 # (...,)
    xhat = (x - mean[..., None]) * rstd[..., None]                       # (..., C)
    out[...] = xhat * gamma + (0 if beta is None else beta)              # (..., C)
    return out, mean, rstd


def residual_arg(residual, x, dx, accumulate, dgamma=None, dbeta=None):
    """Checked residual of layernorm_backward (both backends), or None. dx may be the
    residual itself (the same memory and layout), never a part of it; dgamma and dbeta may
    not overlap it (C writes them before it reads the residual)."""
    if residual is None:
        return None
    if accumulate:
        raise ValueError("layernorm_backward: pass accumulate=True or residual, not both")
    residual = _checks.float_array(residual, "residual")
    _checks.same_shape(x.shape, residual=residual)
    _checks.same_dtype(x.dtype, residual=residual)
    if np.may_share_memory(dx, residual) and not _checks._same_layout(dx, residual):
        raise ValueError("dx overlaps residual; pass a separate buffer or the residual itself")
    for name, out in (("dgamma", dgamma), ("dbeta", dbeta)):
        if out is not None and np.may_share_memory(out, residual):
            raise ValueError(f"{name} overlaps residual; pass a separate buffer")
    return residual


def backward_args(x, gamma, mean, rstd, dy, dx, dgamma, dbeta, accumulate, residual):
    """Checked arguments of layernorm_backward (both backends): (x, gamma, mean, rstd, dy,
    dx, dgamma, dbeta, residual), the outputs allocated where not given."""
    x, gamma, mean, rstd, dy = _checks.layernorm_grad_args(x, gamma, mean, rstd, dy)
    C = x.shape[-1]
    ins = (x, gamma, mean, rstd, dy)
    if accumulate and dx is None:
        raise ValueError("accumulate=True needs dx, the array to add into")
    dgamma = _checks.out_array(dgamma, (C,), x.dtype, "dgamma", inputs=ins)
    dbeta = _checks.out_array(dbeta, (C,), x.dtype, "dbeta", inputs=ins + (dgamma,))
    dx = _checks.out_array(dx, x.shape, x.dtype, "dx", inputs=ins + (dgamma, dbeta))
    residual = residual_arg(residual, x, dx, accumulate, dgamma, dbeta)
    return x, gamma, mean, rstd, dy, dx, dgamma, dbeta, residual


def layernorm_backward(x, gamma, mean, rstd, dy, dx=None, dgamma=None, dbeta=None,
                       accumulate=False, residual=None):
    """(dx (..., C), dgamma (C,), dbeta (C,)); accumulate=True adds into the given dx;
    residual (..., C) gives dx = residual + the layer norm's gradient (a skip connection's
    gradient, with no copy of it into dx first)."""
    x, gamma, mean, rstd, dy, dx, dgamma, dbeta, residual = backward_args(
        x, gamma, mean, rstd, dy, dx, dgamma, dbeta, accumulate, residual)
    C = x.shape[-1]
    xhat = (x - mean[..., None]) * rstd[..., None]                       # (..., C)
    dnorm = dy * gamma                                                   # (..., C)
    a = dnorm.mean(axis=-1, keepdims=True)                               # (..., 1)
    b = (dnorm * xhat).mean(axis=-1, keepdims=True)                      # (..., 1)
    g = rstd[..., None] * (dnorm - a - xhat * b)                         # (..., C)
    if accumulate:
        dx += g
    elif residual is not None:
        dx[...] = residual + g
    else:
        dx[...] = g
    dgamma[...] = (dy * xhat).reshape(-1, C).sum(axis=0)                 # (C,)
    dbeta[...] = dy.reshape(-1, C).sum(axis=0)                           # (C,)
    return dx, dgamma, dbeta
