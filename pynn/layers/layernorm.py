"""LayerNormalization (Keras names, arguments and defaults), over the last axis.

y = (x - mean) / sqrt(var + epsilon) * gamma + beta with the mean and biased variance of
each sample's last axis. Weights: 'gamma' (if scale), 'beta' (if center).
"""
import numpy as np

from .. import initializers, regularizers, _checks
from .base import Layer

__all__ = ["LayerNormalization"]


class LayerNormalization(Layer):
    """Normalize each position over its features (the last axis).

    Parameters
    ----------
    axis : int, default -1
        Only the last axis (-1, or its positive index) is supported.
    epsilon : float, default 1e-3
    center, scale : bool
        Learn beta (offset) and gamma (scale).
    beta_initializer, gamma_initializer : str or Initializer
    beta_regularizer, gamma_regularizer : str or Regularizer, optional
    """

    supports_masking = True   # the mask passes through

    def __init__(self, axis=-1, epsilon=1e-3, center=True, scale=True,
                 beta_initializer="zeros", gamma_initializer="ones", beta_regularizer=None,
                 gamma_regularizer=None, **kwargs):
        super().__init__(**kwargs)
        if isinstance(axis, (list, tuple)) and len(axis) == 1:
            axis = axis[0]
        if isinstance(axis, bool) or not isinstance(axis, (int, np.integer)):
            raise TypeError(f"LayerNormalization axis must be one integer (the last axis), "
                            f"received {axis!r}")
        self.axis = int(axis)
        self.epsilon = _checks.finite_scalar(epsilon, "epsilon", 0.0, low_open=True)
        self.center, self.scale = bool(center), bool(scale)
        self.beta_initializer = initializers.get(beta_initializer)
        self.gamma_initializer = initializers.get(gamma_initializer)
        self.beta_regularizer = regularizers.get(beta_regularizer)
        self.gamma_regularizer = regularizers.get(gamma_regularizer)

    def build(self, input_shape):
        n = len(input_shape)
        if self.axis not in (-1, n - 1):
            raise ValueError(f"LayerNormalization supports only the last axis (-1), received "
                             f"axis={self.axis} for input shape {input_shape}")
        C = input_shape[-1]
        if C is None:
            raise ValueError(f"LayerNormalization needs a known last dimension, received "
                             f"input shape {input_shape}")
        if self.scale:
            self.add_weight("gamma", (C,), self.gamma_initializer, self.gamma_regularizer)
        if self.center:
            self.add_weight("beta", (C,), self.beta_initializer, self.beta_regularizer)

    def _gamma(self, C):
        if self.scale:
            return self.params["gamma"]
        g = self._buffer("ones", (C,))
        g[...] = 1
        return g

    def forward(self, x, training=False):
        # y (..., C) = (x - mean) * rstd * gamma + beta over the last axis
        C, lead = x.shape[-1], x.shape[:-1]
        y, mean, rstd = self.ops.layernorm_forward(
            x, self._gamma(C), self.params.get("beta"), self.epsilon,
            out=self._buffer("y", x.shape), mean=self._buffer("mean", lead),
            rstd=self._buffer("rstd", lead))
        self._cache = (x, mean, rstd)
        return y

    def backward(self, dy, dx=None, accumulate=False, residual=None):
        """dx of the forward; with dx given and accumulate=True, adds into it (a residual);
        with residual, dx = residual + the gradient (a skip connection's, not copied first)."""
        x, mean, rstd = self._cache
        C = x.shape[-1]
        dg = self.grads["gamma"] if self.scale else self._buffer("dg", (C,))
        db = self.grads["beta"] if self.center else self._buffer("db", (C,))
        if dx is None:
            dx = self._buffer("dx", x.shape)
        dx, _, _ = self.ops.layernorm_backward(x, self._gamma(C), mean, rstd, dy, dx=dx,
                                               dgamma=dg, dbeta=db, accumulate=accumulate,
                                               residual=residual)
        return dx

    def get_config(self):
        return {**super().get_config(), "axis": self.axis, "epsilon": self.epsilon,
                "center": self.center, "scale": self.scale,
                "beta_initializer": initializers.serialize(self.beta_initializer),
                "gamma_initializer": initializers.serialize(self.gamma_initializer),
                "beta_regularizer": regularizers.serialize(self.beta_regularizer),
                "gamma_regularizer": regularizers.serialize(self.gamma_regularizer)}
