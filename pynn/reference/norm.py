"""Batch normalization over the last axis (channels last); the NumPy reference.

Keras semantics. Training: mean and (biased) variance of x over every axis but the last,
y = gamma * (x - mean) / sqrt(var + epsilon) + beta, and the running statistics are updated
in place: running = momentum * running + (1 - momentum) * batch (the batch variance, biased,
as Keras does). Inference: the running statistics normalize and nothing is updated.
Forward returns (y, mean, inv_std), the statistics it used, which backward takes.
"""
import numpy as np

from .. import _checks

__all__ = ["batch_norm_forward", "batch_norm_backward"]


def batch_norm_forward(x, gamma, beta, running_mean, running_var, training, momentum=0.99,
                       epsilon=1e-3, out=None):
    """(y (..., C), mean (C,), inv_std (C,)); training updates running_mean/var in place."""
    x, gamma, beta, momentum, epsilon = _checks.batch_norm_args(
        x, gamma, beta, running_mean, running_var, training, momentum, epsilon)
    C = x.shape[-1]
    out = _checks.out_array(out, x.shape, x.dtype,
                            inputs=(x, gamma, beta, running_mean, running_var))
    xf = x.reshape(-1, C)                                                   # (N,C)
    if training:
        mean = xf.mean(axis=0)                                              # (C,)
        var = ((xf - mean) ** 2).mean(axis=0)                               # (C,) biased
        running_mean *= momentum                                            # (C,)
        running_mean += (1 - momentum) * mean
        running_var *= momentum                                             # (C,)
        running_var += (1 - momentum) * var
    else:
        mean, var = running_mean.copy(), running_var.copy()                 # (C,)
    inv_std = (1 / np.sqrt(var + x.dtype.type(epsilon))).astype(x.dtype)    # (C,)
    out[...] = (x - mean) * (inv_std * gamma) + (0 if beta is None else beta)  # (...,C)
    return out, mean.astype(x.dtype), inv_std


def batch_norm_backward(x, dy, gamma, mean, inv_std, training, dx=None, dgamma=None, dbeta=None):
    """(dx (..., C), dgamma (C,), dbeta (C,)) of batch_norm_forward given its mean/inv_std.

    With xhat = (x - mean) * inv_std over N rows: dbeta = sum dy, dgamma = sum dy * xhat;
    training (statistics depend on x): dx = gamma * inv_std * (dy - dbeta/N - xhat * dgamma/N);
    inference (statistics are constants): dx = gamma * inv_std * dy.
    """
    x, dy, gamma, mean, inv_std = _checks.batch_norm_grad_args(x, dy, gamma, mean, inv_std)
    C = x.shape[-1]
    dx, dgamma, dbeta = _checks.batch_norm_outs(x, dy, gamma, mean, inv_std, dx, dgamma, dbeta)
    xf, dyf = x.reshape(-1, C), dy.reshape(-1, C)                           # (N,C)
    n = xf.shape[0]
    xhat = (xf - mean) * inv_std                                            # (N,C)
    dbeta[...] = dyf.sum(axis=0)                                            # (C,)
    dgamma[...] = (dyf * xhat).sum(axis=0)                                  # (C,)
    if training and n:
        g = (dyf - dbeta / n - xhat * (dgamma / n)) * (gamma * inv_std)     # (N,C)
    else:
        g = dyf * (gamma * inv_std)                                         # (N,C)
    dx.reshape(-1, C)[...] = g
    return dx, dgamma, dbeta
