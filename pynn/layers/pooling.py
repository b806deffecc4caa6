"""Pooling layers: MaxPooling2D, AveragePooling2D, GlobalAveragePooling2D, GlobalMaxPooling2D.

Shape logic lives once: _Pooling2D computes output sizes with pynn._checks.conv_out_size
(the kernels' own rule), and both windowed layers differ only in their kernel names.
channels_first inputs are transposed to NHWC at the layer boundary, as in the conv layers.
"""
from .. import _checks
from .base import Layer
from .conv import Layout2D, data_format_name

__all__ = ["MaxPooling2D", "AveragePooling2D", "GlobalAveragePooling2D", "GlobalMaxPooling2D",
           "MaxPool2D", "AvgPool2D", "GlobalAvgPool2D", "GlobalMaxPool2D"]


class _Pooling2D(Layout2D, Layer):
    """Windowed pooling: pool_size, strides (None: pool_size), padding, data_format."""

    _op = None

    def __init__(self, pool_size=(2, 2), strides=None, padding="valid", data_format=None,
                 **kwargs):
        super().__init__(**kwargs)
        self.pool_size = _checks.int_pair(pool_size, "pool_size")
        self.strides = self.pool_size if strides is None else _checks.int_pair(strides, "strides")
        self.padding = _checks.padding_name(padding)
        self.data_format = data_format_name(data_format)

    def _out_hw(self, h, w):
        return tuple(_checks.conv_out_size(n, k, s, 1, self.padding, "pool_size")[0]
                     for n, k, s in zip((h, w), self.pool_size, self.strides))

    def build(self, input_shape):
        self.compute_output_shape(input_shape)  # raises if the window does not fit

    def compute_output_shape(self, input_shape):
        h, w, c = self._spatial(input_shape)
        oh, ow = self._out_hw(h, w)
        return self._out_shape(input_shape[0], oh, ow, c)

    def _args(self):
        return dict(pool_size=self.pool_size, strides=self.strides, padding=self.padding)

    def forward(self, x, training=False):
        # y (B, OH, OW, C) = pool over each window of x (B, H, W, C), NHWC inside
        xn = self._in_nhwc(x)
        b, h, w, c = xn.shape
        oh, ow = self._out_hw(h, w)
        y = getattr(self.ops, self._op + "_forward")(xn, out=self._buffer("y", (b, oh, ow, c)),
                                                     **self._args())
        self._cache = xn
        return self._out_from_nhwc(y, "y_cf")

    def backward(self, dy):
        xn = self._cache
        dx = getattr(self.ops, self._op + "_backward")(
            xn, self._out_nhwc(dy), out=self._buffer("dx", xn.shape), **self._args())
        return self._in_from_nhwc(dx, "dx_cf")

    def get_config(self):
        return {**super().get_config(), "pool_size": list(self.pool_size),
                "strides": list(self.strides), "padding": self.padding,
                "data_format": self.data_format}


class MaxPooling2D(_Pooling2D):
    """Max over each window; the gradient goes to the window's (first) argmax."""
    _op = "max_pool2d"


class AveragePooling2D(_Pooling2D):
    """Mean over each window's valid elements (padding not counted, as Keras 'same')."""
    _op = "avg_pool2d"


class _GlobalPooling2D(Layout2D, Layer):
    """(B, H, W, C) -> (B, C) (keepdims: (B, 1, 1, C), or (B, C, 1, 1) channels_first)."""

    _op = None

    def __init__(self, data_format=None, keepdims=False, **kwargs):
        super().__init__(**kwargs)
        self.data_format = data_format_name(data_format)
        self.keepdims = bool(keepdims)

    def build(self, input_shape):
        self._spatial(input_shape)

    def compute_output_shape(self, input_shape):
        _, _, c = self._spatial(input_shape)
        if self.keepdims:
            return self._out_shape(input_shape[0], 1, 1, c)
        return (input_shape[0], c)

    def forward(self, x, training=False):
        # y (B, C) = reduce over H, W of x (B, H, W, C)
        xn = self._in_nhwc(x)
        b, c = xn.shape[0], xn.shape[3]
        if xn.shape[1] == 0 or xn.shape[2] == 0:  # the mean / max over nothing
            raise ValueError(f"{type(self).__name__} {self.name!r} received an empty input: "
                             f"shape {tuple(x.shape)} with data_format={self.data_format!r} "
                             f"has no pixel to pool over (height or width 0)")
        y = getattr(self.ops, self._op + "_forward")(xn, out=self._buffer("y", (b, c)))
        self._cache = xn
        if self.keepdims:
            return y.reshape(self._out_shape(b, 1, 1, c))
        return y

    def backward(self, dy):
        xn = self._cache
        dy2 = dy.reshape(xn.shape[0], xn.shape[3])
        dx = getattr(self.ops, self._op + "_backward")(xn, dy2,
                                                       out=self._buffer("dx", xn.shape))
        return self._in_from_nhwc(dx, "dx_cf")

    def get_config(self):
        return {**super().get_config(), "data_format": self.data_format,
                "keepdims": self.keepdims}


class GlobalAveragePooling2D(_GlobalPooling2D):
    """Mean over height and width."""
    _op = "global_avg_pool2d"


class GlobalMaxPooling2D(_GlobalPooling2D):
    """Max over height and width; the gradient goes to the (first) argmax."""
    _op = "global_max_pool2d"


MaxPool2D = MaxPooling2D
AvgPool2D = AveragePooling2D
GlobalAvgPool2D = GlobalAveragePooling2D
GlobalMaxPool2D = GlobalMaxPooling2D
