"""Optimizer updates and global-norm clipping: NumPy reference (the spec of csrc/optim.c).

Keras 3 formulas, in place on C-contiguous, writeable arrays of one shape and dtype; the
updates return None. Decoupled weight decay first: p -= lr * weight_decay * p. Scalars are
Python floats, so NumPy rounds them to the arrays' dtype (NEP 50) and computes in that dtype,
in the order written here (the C kernels follow the same order).

State stays out of subnormal floats: the C kernels run with flush-to-zero; this twin flushes
the state it wrote explicitly (|s| < finfo.tiny -> 0), so both backends keep the same
invariant. Arithmetic on subnormals is ~50x slower on x86 and they appear after a few
hundred Adam steps on weights whose gradient is always zero.
"""
import math

import numpy as np

from .. import _checks

__all__ = ["sgd_update", "adam_update", "rmsprop_update", "adagrad_update",
           "global_norm", "clip_by_global_norm"]


def _arrays(param, grad, **state):
    """Check param, grad and state buffers; returns (param, grad, state values in order)."""
    param = _checks.state_array(param, "param")
    grad = _checks.float_array(grad, "grad")
    _checks.same_dtype(param.dtype, grad=grad)
    _checks.same_shape(param.shape, grad=grad)
    if not grad.flags.c_contiguous:
        raise ValueError("grad must be C-contiguous like param (optimizers run on flat "
                         "buffers); pass np.ascontiguousarray(grad)")
    out = [_checks.state_array(a, name, like=param) if a is not None else None
           for name, a in state.items()]
    _checks.no_overlap(param=param, grad=grad, **state)
    return param, grad, out


def _lr_wd(lr, weight_decay):
    lr = _checks.finite_scalar(lr, "lr", low=0.0)
    wd = _checks.finite_scalar(weight_decay, "weight_decay", low=0.0)
    return lr, wd


def _flush(*state):
    """Subnormal entries of the state arrays -> 0 (what flush-to-zero does in C)."""
    for s in state:
        if s is not None:
            s[np.abs(s) < np.finfo(s.dtype).tiny] = 0  # s.shape


def sgd_update(param, grad, velocity, lr, momentum=0.0, nesterov=False, weight_decay=0.0):
    """SGD step in place: v = momentum v - lr g; p += v (nesterov: p += momentum v - lr g).

    momentum == 0: p -= lr g, and velocity must be None; momentum > 0 needs velocity.
    """
    param, grad, velocity, lr, momentum, wd = check_sgd(param, grad, velocity, lr, momentum,
                                                        weight_decay)
    if wd:
        param -= (lr * wd) * param  # (n,)
    if velocity is None:
        param -= lr * grad  # (n,)
        return None
    velocity[...] = momentum * velocity - lr * grad  # (n,)
    _flush(velocity)
    if nesterov:
        param += momentum * velocity - lr * grad  # (n,)
    else:
        param += velocity  # (n,)
    return None


def adam_update(param, grad, m, v, lr, beta_1=0.9, beta_2=0.999, epsilon=1e-7, step=1,
                weight_decay=0.0):
    """Adam step in place (AdamW with weight_decay > 0), bias correction from `step` >= 1.

    m = b1 m + (1-b1) g;  v = b2 v + (1-b2) g^2;
    p -= lr sqrt(1 - b2^t) / (1 - b1^t) * m / (sqrt(v) + eps)
    """
    param, grad, m, v, lr, beta_1, beta_2, epsilon, step, wd = check_adam(
        param, grad, m, v, lr, beta_1, beta_2, epsilon, step, weight_decay)
    alpha = lr * math.sqrt(1.0 - beta_2 ** step) / (1.0 - beta_1 ** step)
    m[...] = beta_1 * m + (1.0 - beta_1) * grad  # (n,)
    v[...] = beta_2 * v + (1.0 - beta_2) * np.square(grad)  # (n,)
    _flush(m, v)
    if wd:
        param -= (lr * wd) * param  # (n,)
    param -= alpha * m / (np.sqrt(v) + epsilon)  # (n,)
    return None


def rmsprop_update(param, grad, sq_avg, lr, rho=0.9, epsilon=1e-7, momentum=0.0,
                   velocity=None, centered=False, mean_grad=None, weight_decay=0.0):
    """RMSprop step in place (Keras 3: epsilon inside the square root).

    sq = rho sq + (1-rho) g^2; centered: mg = rho mg + (1-rho) g, den = max(sq - mg^2, 0)
    + eps, else den = sq + eps; inc = lr g / sqrt(den); momentum > 0: vel = momentum vel +
    inc, p -= vel; else p -= inc. velocity is needed iff momentum > 0, mean_grad iff
    centered. sq >= mg^2 in exact arithmetic (Keras computes sq - mg^2 + eps as is); with
    steady gradients their difference decays to 0 and rounding takes it below -eps (float32,
    |g| of 1 and more), where the square root would be NaN.
    """
    param, grad, sq_avg, velocity, mean_grad, lr, rho, epsilon, momentum, wd = check_rmsprop(
        param, grad, sq_avg, lr, rho, epsilon, momentum, velocity, centered, mean_grad,
        weight_decay)
    sq_avg[...] = rho * sq_avg + (1.0 - rho) * np.square(grad)  # (n,)
    if mean_grad is not None:
        mean_grad[...] = rho * mean_grad + (1.0 - rho) * grad  # (n,)
        _flush(mean_grad)
        den = np.maximum(sq_avg - np.square(mean_grad), 0) + epsilon  # (n,)
    else:
        den = sq_avg + epsilon  # (n,)
    _flush(sq_avg)
    inc = lr * grad / np.sqrt(den)  # (n,)
    if wd:
        param -= (lr * wd) * param  # (n,)
    if velocity is not None:
        velocity[...] = momentum * velocity + inc  # (n,)
        _flush(velocity)
        param -= velocity  # (n,)
    else:
        param -= inc  # (n,)
    return None


def adagrad_update(param, grad, accum, lr, epsilon=1e-7, weight_decay=0.0):
    """Adagrad step in place: acc += g^2; p -= lr g / sqrt(acc + eps) (Keras 3)."""
    param, grad, accum, lr, epsilon, wd = check_adagrad(param, grad, accum, lr, epsilon,
                                                         weight_decay)
    accum += np.square(grad)  # (n,)
    _flush(accum)
    if wd:
        param -= (lr * wd) * param  # (n,)
    param -= lr * grad / np.sqrt(accum + epsilon)  # (n,)
    return None


def global_norm(x):
    """sqrt(sum x^2) as a Python float, without overflow or underflow of the squares.

    x any shape and layout. inf if x holds an inf (and no NaN), NaN if it holds a NaN.
    """
    x = check_global_norm(x)
    if x.size == 0:
        return 0.0
    a = np.abs(x.astype(np.float64))  # x.shape
    if np.isnan(a).any():
        return float("nan")
    mx = float(a.max())
    if mx == 0.0 or math.isinf(mx):
        return mx
    return mx * math.sqrt(float(np.sum(np.square(a / mx))))  # scaled by the largest entry


def clip_by_global_norm(grad, max_norm):
    """Scale grad in place by max_norm / norm when its norm > max_norm; returns the norm.

    grad C-contiguous, writeable; max_norm finite > 0. A non-finite norm leaves grad as it
    is (the caller sees the inf/NaN it returns and can skip the step).
    """
    grad, max_norm = check_clip(grad, max_norm)
    norm = global_norm(grad)
    if norm > max_norm and not math.isinf(norm):
        grad *= grad.dtype.type(max_norm / norm)  # (n,)
    return norm


# Argument checks, shared with the C backend (pynn/_ext/_optim.pyx calls these too, so both
# refuse the same input with the same exception before any arithmetic).

def _need_state(buf, name, needed, when):
    if needed and buf is None:
        raise ValueError(f"{name} is needed when {when}; pass np.zeros_like(param)")
    if not needed and buf is not None:
        raise ValueError(f"{name} must be None unless {when} (it would not be updated)")


def check_sgd(param, grad, velocity, lr, momentum, weight_decay):
    lr, wd = _lr_wd(lr, weight_decay)
    momentum = _checks.finite_scalar(momentum, "momentum", low=0.0, high=1.0)
    _need_state(velocity, "velocity", momentum > 0, "momentum > 0")
    param, grad, (velocity,) = _arrays(param, grad, velocity=velocity)
    return param, grad, velocity, lr, momentum, wd


def check_adam(param, grad, m, v, lr, beta_1, beta_2, epsilon, step, weight_decay):
    lr, wd = _lr_wd(lr, weight_decay)
    beta_1 = _checks.finite_scalar(beta_1, "beta_1", low=0.0, high=1.0, high_open=True)
    beta_2 = _checks.finite_scalar(beta_2, "beta_2", low=0.0, high=1.0, high_open=True)
    epsilon = _checks.finite_scalar(epsilon, "epsilon", low=0.0, low_open=True)
    step = _checks.int_scalar(step, "step", low=1)
    if m is None or v is None:
        raise ValueError("adam_update needs the moment buffers m and v (np.zeros_like(param))")
    param, grad, (m, v) = _arrays(param, grad, m=m, v=v)
    return param, grad, m, v, lr, beta_1, beta_2, epsilon, step, wd


def check_rmsprop(param, grad, sq_avg, lr, rho, epsilon, momentum, velocity, centered,
                  mean_grad, weight_decay):
    lr, wd = _lr_wd(lr, weight_decay)
    rho = _checks.finite_scalar(rho, "rho", low=0.0, high=1.0, high_open=True)
    epsilon = _checks.finite_scalar(epsilon, "epsilon", low=0.0, low_open=True)
    momentum = _checks.finite_scalar(momentum, "momentum", low=0.0, high=1.0)
    _need_state(velocity, "velocity", momentum > 0, "momentum > 0")
    _need_state(mean_grad, "mean_grad", bool(centered), "centered=True")
    if sq_avg is None:
        raise ValueError("rmsprop_update needs sq_avg (np.zeros_like(param))")
    param, grad, (sq_avg, velocity, mean_grad) = _arrays(
        param, grad, sq_avg=sq_avg, velocity=velocity, mean_grad=mean_grad)
    return param, grad, sq_avg, velocity, mean_grad, lr, rho, epsilon, momentum, wd


def check_adagrad(param, grad, accum, lr, epsilon, weight_decay):
    lr, wd = _lr_wd(lr, weight_decay)
    epsilon = _checks.finite_scalar(epsilon, "epsilon", low=0.0, low_open=True)
    if accum is None:
        raise ValueError("adagrad_update needs accum (np.full_like(param, 0.1) as Keras)")
    param, grad, (accum,) = _arrays(param, grad, accum=accum)
    return param, grad, accum, lr, epsilon, wd


def check_global_norm(x):
    return _checks.float_array(x, "x")


def check_clip(grad, max_norm):
    grad = _checks.state_array(grad, "grad")
    max_norm = _checks.finite_scalar(max_norm, "max_norm", low=0.0, low_open=True)
    return grad, max_norm
