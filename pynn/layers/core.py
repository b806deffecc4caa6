"""Core layers: InputLayer (Input), Dense, Flatten, Dropout, Activation, Reshape.

Dense runs one fused kernel per step for linear/relu/sigmoid/tanh (dense_forward applies
the activation; dense_backward folds its derivative in from the output) and for GELU
(dense_forward also writes gelu' for the backward, dz = dy * gelu'); other activations run
as a separate activation kernel on the pre-activation buffer. A model that fuses the
output activation into the loss sets `_output_logits` during its train and test steps, and
then this layer's forward stops at the logits (softmax + cross-entropy train through softmax_cross_entropy).
"""
import math

import numpy as np

from .. import activations, initializers, regularizers, _checks
from .base import Layer, MaskCounter, is_inference_only

__all__ = ["InputLayer", "Input", "Dense", "Flatten", "Dropout", "Activation", "Reshape"]


class InputLayer(Layer):
    """Declares the per-sample input shape of a Sequential model; passes data through."""

    def __init__(self, shape=None, batch_size=None, name=None, dtype=None, batch_shape=None,
                 **kwargs):
        if shape is None and batch_shape is not None:
            shape = tuple(batch_shape)[1:]
        if shape is None:
            raise ValueError("InputLayer needs shape=, e.g. Input(shape=(28, 28))")
        super().__init__(name=name, dtype=dtype, input_shape=shape, **kwargs)
        self.batch_size = batch_size

    def compute_output_shape(self, input_shape):
        return (None,) + self.input_shape_arg

    def forward(self, x, training=False):
        return x

    def backward(self, dy):
        return dy

    def get_config(self):
        # trainable only when frozen (a frozen model freezes its InputLayer too, and its
        # `trainable` reads False only if every layer is): the flag survives a save and load
        return {"name": self.name, "batch_shape": [self.batch_size] + list(self.input_shape_arg),
                **({"dtype": self.dtype.name} if self.dtype is not None else {}),
                **({} if self.trainable else {"trainable": False})}


def Input(shape=None, batch_size=None, name=None, dtype=None, batch_shape=None):
    """keras.Input: a symbolic tensor for the functional API (pynn.functional); as the first
    entry of a Sequential list it declares the input shape."""
    from ..functional import Input as _Input
    return _Input(shape=shape, batch_size=batch_size, name=name, dtype=dtype,
                  batch_shape=batch_shape)


class Dense(Layer):
    """y = activation(x @ kernel + bias) over the last axis.

    Parameters
    ----------
    units : int
    activation : str or pynn activation, optional
    use_bias : bool
    kernel_initializer, bias_initializer : str or Initializer
    kernel_regularizer, bias_regularizer : str or Regularizer, optional
    """

    supports_masking = True   # the mask passes through

    _fusable_output = True

    def __init__(self, units, activation=None, use_bias=True, kernel_initializer="glorot_uniform",
                 bias_initializer="zeros", kernel_regularizer=None, bias_regularizer=None,
                 **kwargs):
        if isinstance(units, bool) or not isinstance(units, int) or units <= 0:
            raise ValueError(f"Dense needs a positive integer number of units. "
                             f"Received: units={units!r}")
        super().__init__(**kwargs)
        self.units = units
        self.activation = activations.get(activation)
        self.use_bias = bool(use_bias)
        self.kernel_initializer = initializers.get(kernel_initializer)
        self.bias_initializer = initializers.get(bias_initializer)
        self.kernel_regularizer = regularizers.get(kernel_regularizer)
        self.bias_regularizer = regularizers.get(bias_regularizer)

    def build(self, input_shape):
        if input_shape[-1] is None:
            raise ValueError(f"Dense {self.name!r} needs a known last input dimension, "
                             f"received input shape {input_shape}")
        c = input_shape[-1]
        self.add_weight("kernel", (c, self.units), self.kernel_initializer,
                        self.kernel_regularizer)
        if self.use_bias:
            self.add_weight("bias", (self.units,), self.bias_initializer, self.bias_regularizer)

    def compute_output_shape(self, input_shape):
        return tuple(input_shape[:-1]) + (self.units,)

    def _act(self):
        return activations.linear if self._output_logits else self.activation

    def forward(self, x, training=False, residual=None):
        # y (B, OC) = act(x (B, C) @ kernel (C, OC) + bias (OC)); rank > 2: B = all leading
        # axes. residual (internal: a Transformer block's skip connection, linear layers only) is
        # added in the kernel's bias pass: y = x @ kernel + bias + residual
        lead = x.shape[:-1]
        x2 = x if x.ndim == 2 else x.reshape(-1, x.shape[-1])
        b, oc = x2.shape[0], self.units
        act = self._act()
        w, bias = self.params["kernel"], self.params.get("bias")
        if residual is not None:
            if act.name != "linear":
                raise ValueError(f"{self.name}: a residual needs a linear Dense, this one has "
                                 f"activation {act.name!r}")
            y = self.ops.dense_forward(x2, w, bias, "linear", out=self._buffer("y", (b, oc)),
                                       residual=residual.reshape(b, oc))
            z = None
        elif act.fusable:
            y = self.ops.dense_forward(x2, w, bias, act.name, out=self._buffer("y", (b, oc)))
            z = None
        elif act.kernel == "gelu":
            # the GELU in the GEMM's epilogue, with its derivative for the backward (then
            # dy * gelu', no second erfc); predict/evaluate skip the derivative
            name = "gelu_tanh" if act.kwargs.get("approximate") else "gelu"
            z = None if is_inference_only() else self._buffer("gelu_grad", (b, oc))
            y = self.ops.dense_forward(x2, w, bias, name, out=self._buffer("y", (b, oc)), grad=z)
        else:
            z = self.ops.dense_forward(x2, w, bias, "linear", out=self._buffer("z", (b, oc)))
            y = act.forward(self.ops, z, out=self._buffer("y", (b, oc)))
        self._cache = (x2, z, y, act, x.shape)
        return y if x.ndim == 2 else y.reshape(lead + (oc,))

    def backward(self, dy, dx_mul=None):
        # dx_mul (internal: a Transformer block's MLP): dx times the previous layer's saved
        # gelu', in the dx GEMM's epilogue (a fused activation only); None: plain dx
        x2, z, y, act, xshape = self._cache
        dy2 = dy if dy.ndim == 2 else dy.reshape(-1, self.units)
        b = x2.shape[0]
        db = self.grads["bias"] if self.use_bias else self._buffer("db", (self.units,))
        dx = self._buffer("dx", x2.shape) if self._need_dx else None
        if dx_mul is not None and not (act.fusable and self._need_dx):
            raise ValueError(f"{self.name}: dx_mul needs a fused activation and a dx")
        if act.fusable:
            dx, _, _ = self.ops.dense_backward(x2, self.params["kernel"], y, dy2, act.name,
                                               need_dx=self._need_dx, dx=dx,
                                               dw=self.grads["kernel"], db=db,
                                               dx_mul=dx_mul)
        else:
            if act.kernel != "gelu":
                dz = act.backward(self.ops, z, y, dy2, out=self._buffer("dz", (b, self.units)))
            elif z is None:
                raise RuntimeError(f"{self.name}: backward after a forward for inference only "
                                   "(predict/evaluate); call the model with training or "
                                   "model(x) first")
            else:  # z holds gelu'(x @ kernel + bias)
                dz = self.ops.grad_mul(z, dy2, out=self._buffer("dz", (b, self.units)))
            dx, _, _ = self.ops.dense_backward(x2, self.params["kernel"], None, dz, "linear",
                                               need_dx=self._need_dx, dx=dx,
                                               dw=self.grads["kernel"], db=db)
        if dx is None:
            return None
        return dx if len(xshape) == 2 else dx.reshape(xshape)

    def get_config(self):
        return {**super().get_config(), "units": self.units,
                "activation": activations.serialize(self.activation), "use_bias": self.use_bias,
                "kernel_initializer": initializers.serialize(self.kernel_initializer),
                "bias_initializer": initializers.serialize(self.bias_initializer),
                "kernel_regularizer": regularizers.serialize(self.kernel_regularizer),
                "bias_regularizer": regularizers.serialize(self.bias_regularizer)}


class Flatten(Layer):
    """(B, d1, d2, ...) -> (B, d1*d2*...): a view when the input is contiguous."""

    def compute_output_shape(self, input_shape):
        rest = input_shape[1:]
        n = None if any(d is None for d in rest) else math.prod(rest)
        return (input_shape[0], n)

    def forward(self, x, training=False):
        self._in_shape = x.shape
        return x.reshape(x.shape[0], -1)  # (B, prod(rest))

    def backward(self, dy):
        return dy.reshape(self._in_shape)


class Reshape(Layer):
    """(B, ...) -> (B, *target_shape); one entry of target_shape may be -1."""

    def __init__(self, target_shape, **kwargs):
        super().__init__(**kwargs)
        ts = tuple(int(d) for d in target_shape)
        if sum(d == -1 for d in ts) > 1 or any(d == 0 or d < -1 for d in ts):
            raise ValueError(f"Reshape target_shape may hold positive sizes and at most one "
                             f"-1, received {target_shape!r}")
        self.target_shape = ts

    def compute_output_shape(self, input_shape):
        rest = input_shape[1:]
        if any(d is None for d in rest):
            return (input_shape[0],) + self.target_shape
        n = math.prod(rest)
        known = math.prod(d for d in self.target_shape if d != -1)
        if -1 in self.target_shape:
            if n % known:
                raise ValueError(f"cannot reshape input of shape {input_shape} to "
                                 f"{self.target_shape}")
            ts = tuple(n // known if d == -1 else d for d in self.target_shape)
        else:
            ts = self.target_shape
        if math.prod(ts) != n:
            raise ValueError(f"Reshape {self.name!r}: input shape {input_shape} has {n} values "
                             f"per sample, target_shape {self.target_shape} has {math.prod(ts)}")
        return (input_shape[0],) + ts

    def forward(self, x, training=False):
        self._in_shape = x.shape
        return x.reshape((x.shape[0],) + self.target_shape)

    def backward(self, dy):
        return dy.reshape(self._in_shape)

    def get_config(self):
        return {**super().get_config(), "target_shape": list(self.target_shape)}


class Activation(Layer):
    """Applies an activation by name; under a fused output it passes the logits through."""

    supports_masking = True   # the mask passes through

    _fusable_output = True

    def __init__(self, activation, **kwargs):
        super().__init__(**kwargs)
        self.activation = activations.get(activation)

    def forward(self, x, training=False):
        if self._output_logits:
            self._cache = None
            return x
        act = self.activation
        y = act.forward(self.ops, x, out=None if act.name == "linear"
                        else self._buffer("y", x.shape))
        self._cache = (x, y)
        return y

    def backward(self, dy):
        if self._cache is None:
            return dy
        x, y = self._cache
        if self.activation.name == "linear":
            return dy
        return self.activation.backward(self.ops, x, y, dy, out=self._buffer("dx", dy.shape))

    def get_config(self):
        return {**super().get_config(), "activation": activations.serialize(self.activation)}


class Dropout(MaskCounter, Layer):
    """Training: x * keep / (1 - rate) with a counter-based mask; inference: identity.

    The mask is a pure function of (seed, step, element): `seed` comes from `seed=` or is
    drawn from pynn's generator when the layer is built (pynn.utils.set_random_seed makes
    it reproducible); `step` counts training calls. Both are in get_config(), so a saved
    model resumes training with the masks it would have drawn.
    """

    supports_masking = True   # the mask passes through

    def __init__(self, rate, noise_shape=None, seed=None, **kwargs):
        super().__init__(**kwargs)
        self.rate = _checks.finite_scalar(rate, "rate", 0.0, 1.0, high_open=True)
        if noise_shape is not None:
            raise ValueError("Dropout noise_shape is not supported; pass noise_shape=None")
        self._init_masks(seed)

    def build(self, input_shape):
        self._draw_mask_seed()

    def forward(self, x, training=False):
        if not training or self.rate == 0.0:
            self._cache = None
            return x
        step = self._next_mask()
        self._cache = (step, x.shape)
        return self.ops.dropout_forward(x, self.rate, self._seed, step,
                                        out=self._buffer("y", x.shape))

    def backward(self, dy):
        if self._cache is None:
            return dy
        step, shape = self._cache
        if np.shape(dy) != shape:  # the mask is per element of the forward's input
            raise ValueError(f"Dropout {self.name!r}: dy must have shape {shape}, received "
                             f"{np.shape(dy)}")
        return self.ops.dropout_backward(dy, self.rate, self._seed, step,
                                         out=self._buffer("dx", dy.shape))

    def get_config(self):
        # the effective seed and the step count, so that a saved and reloaded (or cloned)
        # model draws the same masks from here on: training resumes exactly
        return {**super().get_config(), "rate": self.rate, **self._mask_config()}
