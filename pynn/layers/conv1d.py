"""1-D convolution and pooling over sequences (B, steps, channels): Conv1D, MaxPooling1D,
AveragePooling1D, GlobalAveragePooling1D, GlobalMaxPooling1D (Keras names and arguments).

Each runs the 2-D kernels on a (B, 1, steps, channels) view of its input (no copy for
channels_last), through the 2-D layers' layout hooks (conv.Layout2D), so there is no second
set of kernels to keep in step with the reference. Conv1D's kernel is Keras' (k, C, filters);
the kernels see it as (1, k, C, filters). padding='causal' pads k - 1 (times the dilation)
zero steps on the left, so output step t sees inputs t and earlier only. The number of steps
may be None (variable-length inputs): it is read from each batch.
"""
import numpy as np

from .conv import Conv2D
from .pooling import (AveragePooling2D, GlobalAveragePooling2D, GlobalMaxPooling2D,
                      MaxPooling2D)

__all__ = ["Conv1D", "MaxPooling1D", "AveragePooling1D", "GlobalAveragePooling1D",
           "GlobalMaxPooling1D", "MaxPool1D", "AvgPool1D", "GlobalAvgPool1D",
           "GlobalMaxPool1D"]


def _one(value, what, cls):
    """A positive int from an int or a one-element sequence (Keras accepts both)."""
    v = value
    if isinstance(v, (list, tuple)) and len(v) == 1:
        v = v[0]
    if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v <= 0:
        raise ValueError(f"{cls} {what} must be a positive integer or a tuple of one, "
                         f"received {what}={value!r}")
    return int(v)


class _Layout1D:
    """(B, T, C) (or (B, C, T) channels_first) seen by the 2-D kernels as (B, 1, T, C);
    `_pad` zero steps on the left of the input (causal convolution)."""

    _pad = 0

    def _spatial(self, input_shape):
        name = type(self).__name__
        if len(input_shape) != 3:
            raise ValueError(f"{name} {self.name!r} expects rank-3 inputs (batch, steps, "
                             f"channels) with data_format={self.data_format!r}; received input "
                             f"shape {tuple(input_shape)} (rank {len(input_shape)})")
        if self.data_format == "channels_first":
            c, t = input_shape[1:]
        else:
            t, c = input_shape[1:]
        if c is None:
            raise ValueError(f"{name} {self.name!r} needs a known number of channels, received "
                             f"input shape {tuple(input_shape)}")
        if t == 0:   # before the 2-D shape rules speak of a padded 'valid' view (causal)
            raise ValueError(f"{name} {self.name!r} received an empty sequence (0 steps): "
                             f"input shape {tuple(input_shape)} with "
                             f"data_format={self.data_format!r}; it needs at least one step "
                             f"(drop empty sequences from the batch)")
        return 1, None if t is None else t + self._pad, c

    def _out_hw(self, h, w):
        if w is None:                      # variable steps: known per batch
            return 1, None
        return super()._out_hw(h, w)

    def _out_shape(self, batch, h, w, c):
        return (batch, c, w) if self.data_format == "channels_first" else (batch, w, c)

    def _steps_last(self, x):
        return x.transpose(0, 2, 1) if self.data_format == "channels_first" else x

    def _check_steps(self, x):
        """ValueError naming the layer for an empty sequence (0 steps): the 2-D kernels'
        messages ("height and width must be >= 1", a kernel "larger than the padded input")
        spoke of a (B, 1, T, C) view the caller never made."""
        if x.ndim == 3 and x.shape[2 if self.data_format == "channels_first" else 1] == 0:
            raise ValueError(f"{type(self).__name__} {self.name!r} received an empty sequence "
                             f"(0 steps): input shape {tuple(x.shape)} with "
                             f"data_format={self.data_format!r}; it needs at least one step "
                             f"(drop empty sequences from the batch)")

    def _in_nhwc(self, x):
        self._check_steps(x)
        x = self._steps_last(x)                                    # (B, T, C)
        if self._pad:
            b, t, c = x.shape
            xp = self._buffer("x_pad", (b, t + self._pad, c))
            xp[:, :self._pad] = 0
            xp[:, self._pad:] = x
            x = xp
        return x[:, None]                                          # (B, 1, T + pad, C)

    def _out_nhwc(self, dy):
        return self._steps_last(dy)[:, None]

    def _from_steps(self, y, key, start=0):
        """(B, 1, T, C) -> the layer's layout from step `start`, C-contiguous."""
        y = y[:, 0, start:]
        if self.data_format != "channels_first" and start == 0:
            return y
        out = self._buffer(key, self._out_shape(y.shape[0], 1, y.shape[1], y.shape[2]))
        np.copyto(out, self._steps_last(y) if self.data_format == "channels_first" else y)
        return out

    def _out_from_nhwc(self, y, key):
        return self._from_steps(y, key)

    def _in_from_nhwc(self, dx, key):
        return self._from_steps(dx, key, self._pad)


class Conv1D(_Layout1D, Conv2D):
    """1-D convolution over steps: y = activation(conv(x, kernel) + bias).

    Parameters
    ----------
    filters : int
    kernel_size : int
    strides : int, default 1
    padding : {'valid', 'same', 'causal'}
    data_format : {'channels_last', 'channels_first'}, optional
    dilation_rate : int, default 1
    activation, use_bias, kernel_initializer, bias_initializer, kernel_regularizer,
    bias_regularizer : as Conv2D. The kernel is (kernel_size, C, filters), as Keras stores it.
    """

    def __init__(self, filters, kernel_size, strides=1, padding="valid", data_format=None,
                 dilation_rate=1, groups=1, activation=None, use_bias=True, **kwargs):
        if groups != 1:
            raise ValueError(f"Conv1D groups other than 1 are not supported, received "
                             f"groups={groups!r}")
        k = _one(kernel_size, "kernel_size", "Conv1D")
        s = _one(strides, "strides", "Conv1D")
        d = _one(dilation_rate, "dilation_rate", "Conv1D")
        causal = isinstance(padding, str) and padding.lower() == "causal"
        super().__init__(filters, (1, k), (1, s), "valid" if causal else padding, data_format,
                         (1, d), groups, activation, use_bias, **kwargs)
        self._pad = (k - 1) * d if causal else 0

    def _weight_shape(self, c):
        return (self.kernel_size[1], c, self.filters)

    def _kernel4(self, grads=False):
        w = super()._kernel4(grads)
        return w.reshape((1,) + w.shape)          # a view of the flat buffer

    def get_config(self):
        return {**super().get_config(), "kernel_size": [self.kernel_size[1]],
                "strides": [self.strides[1]], "dilation_rate": [self.dilation_rate[1]],
                "padding": "causal" if self._pad else self.padding}


class _Pooling1D(_Layout1D):
    def __init__(self, pool_size=2, strides=None, padding="valid", data_format=None, **kwargs):
        cls = type(self).__name__
        p = _one(pool_size, "pool_size", cls)
        s = p if strides is None else _one(strides, "strides", cls)
        super().__init__((1, p), (1, s), padding, data_format, **kwargs)

    def get_config(self):
        return {**super().get_config(), "pool_size": [self.pool_size[1]],
                "strides": [self.strides[1]]}


class MaxPooling1D(_Pooling1D, MaxPooling2D):
    """Max over each window of steps; the gradient goes to the window's (first) argmax."""


class AveragePooling1D(_Pooling1D, AveragePooling2D):
    """Mean over each window's valid steps (padding not counted, as Keras 'same')."""


class GlobalAveragePooling1D(_Layout1D, GlobalAveragePooling2D):
    """(B, T, C) -> (B, C): the mean over steps (keepdims: (B, 1, C)); with a padding mask
    (Embedding(mask_zero=True)), the mean over the unmasked steps (0 where none is). An empty
    sequence (T = 0), masked or not, is a ValueError."""

    supports_masking = True
    _takes_mask = True

    def compute_mask(self, inputs, mask):
        return None

    def _output_masked(self, input_masked):
        return False

    def forward(self, x, training=False, mask=None):
        self._mask = None
        if mask is None:
            return super().forward(x, training)
        self._check_steps(x)  # as without a mask: no step at all is not "every step masked"
        cf = self.data_format == "channels_first"
        b, t = x.shape[0], x.shape[2] if cf else x.shape[1]
        m = np.asarray(mask, dtype=bool)
        if m.shape != (b, t):
            raise ValueError(f"{type(self).__name__} {self.name!r}: mask must have shape "
                             f"({b}, {t}), received {m.shape}")
        w = m.astype(self.dtype)
        w /= np.maximum(w.sum(axis=1, keepdims=True), 1)          # (B, T): 1 / count
        w = w[:, None, :] if cf else w[:, :, None]
        y = np.sum(x * w, axis=2 if cf else 1)                     # (B, C)
        self._mask = (w, x.shape)
        return y.reshape(self._out_shape(b, 1, 1, y.shape[1])) if self.keepdims else y

    def backward(self, dy):
        if self._mask is None:
            return super().backward(dy)
        w, shape = self._mask
        cf = self.data_format == "channels_first"
        d = np.reshape(dy, (shape[0], shape[1] if cf else shape[2]))
        return np.ascontiguousarray(w * (d[:, :, None] if cf else d[:, None, :]))


class GlobalMaxPooling1D(_Layout1D, GlobalMaxPooling2D):
    """(B, T, C) -> (B, C): the max over steps; the gradient goes to the (first) argmax."""


MaxPool1D = MaxPooling1D
AvgPool1D = AveragePooling1D
GlobalAvgPool1D = GlobalAveragePooling1D
GlobalMaxPool1D = GlobalMaxPooling1D
