"""BatchNormalization (Keras names, arguments and defaults).

Weights, in Keras order: gamma (if scale), beta (if center), moving_mean, moving_variance.
The moving statistics are non-trainable weights: they live in the model's flat parameter
buffer (so save/load and get_weights/set_weights carry them), the optimizer skips them, and
the training forward updates them in place (moving = momentum * moving + (1 - momentum) *
batch). training=True normalizes with the batch statistics, inference with the moving ones;
a layer with trainable=False always runs in inference mode, as in Keras.
"""
import numpy as np

from .. import initializers, regularizers, _checks
from .base import Layer

__all__ = ["BatchNormalization"]


class BatchNormalization(Layer):
    """Normalize each feature along `axis` (default the last, channels) over the batch.

    Parameters
    ----------
    axis : int, default -1
    momentum : float, default 0.99
    epsilon : float, default 1e-3
    center, scale : bool
        Learn beta (offset) and gamma (scale).
    beta_initializer, gamma_initializer, moving_mean_initializer,
    moving_variance_initializer : str or Initializer
    beta_regularizer, gamma_regularizer : str or Regularizer, optional
    """

    def __init__(self, axis=-1, momentum=0.99, epsilon=1e-3, center=True, scale=True,
                 beta_initializer="zeros", gamma_initializer="ones",
                 moving_mean_initializer="zeros", moving_variance_initializer="ones",
                 beta_regularizer=None, gamma_regularizer=None, **kwargs):
        super().__init__(**kwargs)
        if isinstance(axis, bool) or not isinstance(axis, (int, np.integer)):
            raise TypeError(f"BatchNormalization axis must be one integer, received {axis!r}")
        self.axis = int(axis)
        self.momentum = _checks.finite_scalar(momentum, "momentum", 0.0, 1.0)
        self.epsilon = _checks.finite_scalar(epsilon, "epsilon", 0.0, low_open=True)
        self.center, self.scale = bool(center), bool(scale)
        self.beta_initializer = initializers.get(beta_initializer)
        self.gamma_initializer = initializers.get(gamma_initializer)
        self.moving_mean_initializer = initializers.get(moving_mean_initializer)
        self.moving_variance_initializer = initializers.get(moving_variance_initializer)
        self.beta_regularizer = regularizers.get(beta_regularizer)
        self.gamma_regularizer = regularizers.get(gamma_regularizer)

    def _axis(self, rank):
        a = self.axis + rank if self.axis < 0 else self.axis
        if not 1 <= a < rank:
            raise ValueError(f"BatchNormalization {self.name!r}: axis={self.axis} is not a "
                             f"feature axis of inputs of rank {rank} (the batch axis 0 cannot "
                             f"be normalized over)")
        return a

    def build(self, input_shape):
        a = self._axis(len(input_shape))
        c = input_shape[a]
        if c is None:
            raise ValueError(f"BatchNormalization {self.name!r} needs a known size on axis "
                             f"{self.axis}, received input shape {input_shape}")
        if self.scale:
            self.add_weight("gamma", (c,), self.gamma_initializer, self.gamma_regularizer)
        if self.center:
            self.add_weight("beta", (c,), self.beta_initializer, self.beta_regularizer)
        self.add_weight("moving_mean", (c,), self.moving_mean_initializer, trainable=False)
        self.add_weight("moving_variance", (c,), self.moving_variance_initializer,
                        trainable=False)

    def _gamma(self, c):
        if self.scale:
            return self.params["gamma"]
        g = self._buffer("ones", (c,))
        g.fill(1)
        return g

    def forward(self, x, training=False):
        # y (..., C) = gamma * (x - mean) * inv_std + beta, per channel on `axis`
        a = self._axis(x.ndim)
        xl = x if a == x.ndim - 1 else np.moveaxis(x, a, -1)     # (..., C) view
        c = xl.shape[-1]
        training = bool(training) and self.trainable
        y, mean, inv_std = self.ops.batch_norm_forward(
            xl, self._gamma(c), self.params.get("beta"), self.params["moving_mean"],
            self.params["moving_variance"], training, self.momentum, self.epsilon,
            out=self._buffer("y", xl.shape))
        self._cache = (xl, mean.copy(), inv_std.copy(), training, a)
        return self._from_last(y, a, "y_moved")

    def _from_last(self, y, a, key):
        if a == y.ndim - 1:
            return y
        moved = np.moveaxis(y, -1, a)
        out = self._buffer(key, moved.shape)
        np.copyto(out, moved)
        return out

    def backward(self, dy):
        xl, mean, inv_std, training, a = self._cache
        c = xl.shape[-1]
        dyl = dy if a == dy.ndim - 1 else np.moveaxis(dy, a, -1)
        dgamma = self.grads["gamma"] if self.scale else self._buffer("dgamma", (c,))
        dbeta = self.grads["beta"] if self.center else self._buffer("dbeta", (c,))
        dx = self._buffer("dx", xl.shape)
        self.ops.batch_norm_backward(xl, dyl, self._gamma(c), mean, inv_std, training, dx=dx,
                                     dgamma=dgamma, dbeta=dbeta)
        return self._from_last(dx, a, "dx_moved")

    def get_config(self):
        ser = initializers.serialize
        return {**super().get_config(), "axis": self.axis, "momentum": self.momentum,
                "epsilon": self.epsilon, "center": self.center, "scale": self.scale,
                "beta_initializer": ser(self.beta_initializer),
                "gamma_initializer": ser(self.gamma_initializer),
                "moving_mean_initializer": ser(self.moving_mean_initializer),
                "moving_variance_initializer": ser(self.moving_variance_initializer),
                "beta_regularizer": regularizers.serialize(self.beta_regularizer),
                "gamma_regularizer": regularizers.serialize(self.gamma_regularizer)}
