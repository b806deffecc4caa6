"""Spatial reshaping layers: UpSampling2D (nearest, a pool-family kernel) and ZeroPadding2D
(a copy into a zeroed buffer; its gradient is the matching slice of dy)."""
import numpy as np

from .. import _checks
from .base import Layer
from .conv import data_format_name, spatial_input, out_shape, to_nhwc, from_nhwc

__all__ = ["UpSampling2D", "ZeroPadding2D"]


class UpSampling2D(Layer):
    """Repeat each pixel size[0] x size[1] times (nearest; bilinear is not implemented)."""

    def __init__(self, size=(2, 2), data_format=None, interpolation="nearest", **kwargs):
        super().__init__(**kwargs)
        self.size = _checks.int_pair(size, "size")
        self.data_format = data_format_name(data_format)
        if interpolation != "nearest":
            raise ValueError(f"UpSampling2D supports interpolation='nearest' only, received "
                             f"{interpolation!r}")
        self.interpolation = interpolation

    def build(self, input_shape):
        spatial_input(self, input_shape, self.data_format)

    def compute_output_shape(self, input_shape):
        h, w, c = spatial_input(self, input_shape, self.data_format)
        return out_shape(input_shape[0], h * self.size[0], w * self.size[1], c, self.data_format)

    def forward(self, x, training=False):
        # y (B, H*sh, W*sw, C) = x (B, H, W, C) with each pixel repeated
        xn = to_nhwc(x, self.data_format)
        b, h, w, c = xn.shape
        y = self.ops.upsampling2d_forward(
            xn, self.size, out=self._buffer("y", (b, h * self.size[0], w * self.size[1], c)))
        self._cache = xn
        return from_nhwc(self, y, self.data_format, "y_cf")

    def backward(self, dy):
        xn = self._cache
        dx = self.ops.upsampling2d_backward(xn, to_nhwc(dy, self.data_format), self.size,
                                            out=self._buffer("dx", xn.shape))
        return from_nhwc(self, dx, self.data_format, "dx_cf")

    def get_config(self):
        return {**super().get_config(), "size": list(self.size),
                "data_format": self.data_format, "interpolation": self.interpolation}


def _padding_pairs(padding):
    """((top, bottom), (left, right)) from an int, a pair, or a pair of pairs (Keras)."""
    try:
        if isinstance(padding, (int, np.integer)) and not isinstance(padding, bool):
            pads = ((padding, padding), (padding, padding))
        elif all(isinstance(p, (int, np.integer)) and not isinstance(p, bool) for p in padding):
            a, b = padding
            pads = ((a, a), (b, b))
        else:
            (t, bo), (le, r) = padding
            pads = ((t, bo), (le, r))
        pads = tuple(tuple(int(v) for v in p) for p in pads)
    except (TypeError, ValueError):
        raise ValueError(f"ZeroPadding2D padding must be an int, a pair of ints or a pair of "
                         f"pairs ((top, bottom), (left, right)), received {padding!r}") from None
    if any(v < 0 for p in pads for v in p):
        raise ValueError(f"ZeroPadding2D padding must be >= 0, received {padding!r}")
    return pads


class ZeroPadding2D(Layer):
    """Pad height and width with zeros: padding int, (sym_h, sym_w) or ((t, b), (l, r))."""

    def __init__(self, padding=(1, 1), data_format=None, **kwargs):
        super().__init__(**kwargs)
        self.padding = _padding_pairs(padding)
        self.data_format = data_format_name(data_format)

    def build(self, input_shape):
        spatial_input(self, input_shape, self.data_format)

    def compute_output_shape(self, input_shape):
        h, w, c = spatial_input(self, input_shape, self.data_format)
        (t, b), (le, r) = self.padding
        return out_shape(input_shape[0], h + t + b, w + le + r, c, self.data_format)

    def _window(self, h, w):
        (t, _), (le, _) = self.padding
        if self.data_format == "channels_first":
            return (slice(None), slice(None), slice(t, t + h), slice(le, le + w))
        return (slice(None), slice(t, t + h), slice(le, le + w), slice(None))

    def forward(self, x, training=False):
        # y (B, t+H+b, l+W+r, C): zeros around x (B, H, W, C); the border is zeroed once
        oshape = (x.shape[0],) + self.compute_output_shape((None,) + x.shape[1:])[1:]
        key = ("y", oshape)
        fresh = key not in self._bufs
        y = self._buffer("y", oshape)
        if fresh:
            y.fill(0)
        self._in_shape = x.shape
        h, w = (x.shape[2], x.shape[3]) if self.data_format == "channels_first" else x.shape[1:3]
        y[self._window(h, w)] = x
        return y

    def backward(self, dy):
        shape = self._in_shape
        h, w = (shape[2], shape[3]) if self.data_format == "channels_first" else shape[1:3]
        dx = self._buffer("dx", shape)
        np.copyto(dx, dy[self._window(h, w)])
        return dx

    def get_config(self):
        return {**super().get_config(), "padding": [list(p) for p in self.padding],
                "data_format": self.data_format}
