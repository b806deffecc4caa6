"""Convolution layers: Conv2D, DepthwiseConv2D, Conv2DTranspose (Keras names and arguments).

Kernels are NHWC (channels last, Keras' default). data_format='channels_first' is accepted:
the layer transposes (B, C, H, W) to NHWC on the way in and its output back on the way out,
so weights keep Keras' channels-last layouts in both formats. Activations in
{linear, relu, sigmoid, tanh} fuse into the convolution kernel (its backward folds the
derivative in from the output); others run as a separate activation kernel, as in Dense.
Shape logic (output sizes, the 'kernel larger than the padded input' check) lives once, in
pynn._checks (conv_out_size), shared with the kernels.
"""
import numpy as np

from .. import activations, initializers, regularizers, _checks
from .base import Layer

__all__ = ["Conv2D", "DepthwiseConv2D", "Conv2DTranspose", "data_format_name",
           "spatial_input", "to_nhwc", "from_nhwc"]

DATA_FORMATS = ("channels_last", "channels_first")


def data_format_name(data_format):
    """'channels_last' (also for None, Keras' default) or 'channels_first'."""
    if data_format is None:
        return "channels_last"
    if not isinstance(data_format, str) or data_format.lower() not in DATA_FORMATS:
        raise ValueError(f"data_format must be one of {DATA_FORMATS}, received {data_format!r}")
    return data_format.lower()


def spatial_input(layer, input_shape, data_format):
    """(H, W, C) of a rank-4 input shape (batch first) in `data_format`; clear errors."""
    if len(input_shape) != 4:
        raise ValueError(f"{type(layer).__name__} {layer.name!r} expects rank-4 inputs "
                         f"(batch, height, width, channels) with data_format={data_format!r}; "
                         f"received input shape {tuple(input_shape)} (rank {len(input_shape)}). "
                         f"HINT: add a channel axis, e.g. Reshape((28, 28, 1))")
    if data_format == "channels_first":
        c, h, w = input_shape[1:]
    else:
        h, w, c = input_shape[1:]
    if h is None or w is None or c is None:
        raise ValueError(f"{type(layer).__name__} {layer.name!r} needs known height, width and "
                         f"channels, received input shape {tuple(input_shape)}")
    return h, w, c


def out_shape(batch, h, w, c, data_format):
    return (batch, c, h, w) if data_format == "channels_first" else (batch, h, w, c)


def to_nhwc(x, data_format):
    """A (B, H, W, C) view of an input in `data_format` (a transpose view for channels_first)."""
    return x.transpose(0, 2, 3, 1) if data_format == "channels_first" else x


def from_nhwc(layer, y, data_format, key):
    """The layer output in `data_format`: y itself (channels_last) or a transposed copy in a
    per-shape buffer (channels_first), so consumers see a C-contiguous array either way."""
    if data_format != "channels_first":
        return y
    b, h, w, c = y.shape
    out = layer._buffer(key, (b, c, h, w))
    np.copyto(out, y.transpose(0, 3, 1, 2))
    return out


def _kernel_size(value):
    return _checks.int_pair(value, "kernel_size")


class Layout2D:
    """How a spatial layer sees its data: its input and output shapes, and NHWC views of
    them for the kernels (rank-4, `data_format`). The 1-D layers (conv1d.py) override these
    to run the same kernels on (B, 1, T, C) views."""

    def _spatial(self, input_shape):
        """(H, W, C) of an input shape, as the kernels see it."""
        return spatial_input(self, input_shape, self.data_format)

    def _out_shape(self, batch, h, w, c):
        return out_shape(batch, h, w, c, self.data_format)

    def _in_nhwc(self, x):
        return to_nhwc(x, self.data_format)

    def _out_nhwc(self, dy):
        return to_nhwc(dy, self.data_format)

    def _out_from_nhwc(self, y, key):
        return from_nhwc(self, y, self.data_format, key)

    def _in_from_nhwc(self, dx, key):
        return from_nhwc(self, dx, self.data_format, key)


class _Conv(Layout2D, Layer):
    """Shared machinery of the convolution layers: arguments, shapes, forward/backward."""

    _fusable_output = True

    _kernel_name = "kernel"

    def __init__(self, kernel_size, strides=(1, 1), padding="valid", data_format=None,
                 dilation_rate=(1, 1), activation=None, use_bias=True,
                 kernel_initializer="glorot_uniform", bias_initializer="zeros",
                 kernel_regularizer=None, bias_regularizer=None, **kwargs):
        super().__init__(**kwargs)
        self.kernel_size = _kernel_size(kernel_size)
        self.strides = _checks.int_pair(strides, "strides")
        self.padding = _checks.padding_name(padding)
        self.data_format = data_format_name(data_format)
        self.dilation_rate = _checks.int_pair(dilation_rate, "dilation_rate")
        if max(self.strides) > 1 and max(self.dilation_rate) > 1:
            raise ValueError(f"{type(self).__name__}: strides > 1 together with "
                             f"dilation_rate > 1 is not supported (as in Keras). Received: "
                             f"strides={self.strides}, dilation_rate={self.dilation_rate}")
        self.activation = activations.get(activation)
        self.use_bias = bool(use_bias)
        self.kernel_initializer = initializers.get(kernel_initializer)
        self.bias_initializer = initializers.get(bias_initializer)
        self.kernel_regularizer = regularizers.get(kernel_regularizer)
        self.bias_regularizer = regularizers.get(bias_regularizer)

    # subclasses: _weight_shape(c), _out_channels(c), _out_hw(h, w), kernel names
    def build(self, input_shape):
        h, w, c = self._spatial(input_shape)
        self._out_hw(h, w)  # raises if the kernel does not fit
        self.add_weight(self._kernel_name, self._weight_shape(c), self.kernel_initializer,
                        self.kernel_regularizer)
        if self.use_bias:
            self.add_weight("bias", (self._out_channels(c),), self.bias_initializer,
                            self.bias_regularizer)

    def compute_output_shape(self, input_shape):
        h, w, c = self._spatial(input_shape)
        oh, ow = self._out_hw(h, w)
        return self._out_shape(input_shape[0], oh, ow, self._out_channels(c))

    def _kernel4(self, grads=False):
        """The kernel (or its gradient) as the kernels take it: (KH, KW, C, OC)."""
        return (self.grads if grads else self.params)[self._kernel_name]

    def _act(self):
        return activations.linear if self._output_logits else self.activation

    def _geometry(self):
        return dict(strides=self.strides, padding=self.padding, dilation=self.dilation_rate)

    def forward(self, x, training=False):
        # y (B, OH, OW, OC) = act(conv(x (B, H, W, C), kernel) + bias), NHWC inside
        xn = self._in_nhwc(x)
        b = xn.shape[0]
        oh, ow = self._out_hw(xn.shape[1], xn.shape[2])
        oshape = (b, oh, ow, self._out_channels(xn.shape[3]))
        w, bias = self._kernel4(), self.params.get("bias")
        act = self._act()
        fwd = getattr(self.ops, self._op + "_forward")
        if act.fusable:
            y = fwd(xn, w, bias, activation=act.name, out=self._buffer("y", oshape),
                    **self._geometry())
            z = None
        else:
            z = fwd(xn, w, bias, activation="linear", out=self._buffer("z", oshape),
                    **self._geometry())
            y = act.forward(self.ops, z, out=self._buffer("y", oshape))
        self._cache = (xn, z, y, act)
        return self._out_from_nhwc(y, "y_cf")

    def backward(self, dy):
        xn, z, y, act = self._cache
        dyn = self._out_nhwc(dy)
        w = self._kernel4()
        oc = y.shape[3]
        db = self.grads["bias"] if self.use_bias else self._buffer("db", (oc,))
        dx = self._buffer("dx", xn.shape) if self._need_dx else None
        bwd = getattr(self.ops, self._op + "_backward")
        if act.fusable:
            dx, _, _ = bwd(xn, w, y, dyn, activation=act.name, need_dx=self._need_dx, dx=dx,
                           dw=self._kernel4(grads=True), db=db, **self._geometry())
        else:
            dz = act.backward(self.ops, z, y, dyn, out=self._buffer("dz", y.shape))
            dx, _, _ = bwd(xn, w, None, dz, activation="linear", need_dx=self._need_dx,
                           dx=dx, dw=self._kernel4(grads=True), db=db, **self._geometry())
        if dx is None:
            return None
        return self._in_from_nhwc(dx, "dx_cf")

    def get_config(self):
        return {**super().get_config(), "kernel_size": list(self.kernel_size),
                "strides": list(self.strides), "padding": self.padding,
                "data_format": self.data_format, "dilation_rate": list(self.dilation_rate),
                "activation": activations.serialize(self.activation), "use_bias": self.use_bias,
                "kernel_initializer": initializers.serialize(self.kernel_initializer),
                "bias_initializer": initializers.serialize(self.bias_initializer),
                "kernel_regularizer": regularizers.serialize(self.kernel_regularizer),
                "bias_regularizer": regularizers.serialize(self.bias_regularizer)}


def _check_filters(cls, filters):
    if isinstance(filters, bool) or not isinstance(filters, (int, np.integer)) or filters <= 0:
        raise ValueError(f"{cls} needs a positive integer number of filters. "
                         f"Received: filters={filters!r}")
    return int(filters)


class Conv2D(_Conv):
    """2-D convolution: y = activation(conv(x, kernel) + bias).

    Parameters
    ----------
    filters : int
        Output channels.
    kernel_size : int or (int, int)
    strides : int or (int, int), default 1
    padding : {'valid', 'same'}
    data_format : {'channels_last', 'channels_first'}, optional
    dilation_rate : int or (int, int), default 1
    activation : str or pynn activation, optional
    use_bias : bool
    kernel_initializer, bias_initializer, kernel_regularizer, bias_regularizer
        As Dense. The kernel is (KH, KW, C, filters), as Keras stores it.
    """

    _op = "conv2d"

    def __init__(self, filters, kernel_size, strides=(1, 1), padding="valid", data_format=None,
                 dilation_rate=(1, 1), groups=1, activation=None, use_bias=True, **kwargs):
        self.filters = _check_filters("Conv2D", filters)
        if groups != 1:
            raise ValueError(f"Conv2D groups other than 1 are not supported, received "
                             f"groups={groups!r}; DepthwiseConv2D covers groups == channels")
        super().__init__(kernel_size, strides, padding, data_format, dilation_rate, activation,
                         use_bias, **kwargs)

    def _weight_shape(self, c):
        return self.kernel_size + (c, self.filters)

    def _out_channels(self, c):
        return self.filters

    def _out_hw(self, h, w):
        oh, _ = _checks.conv_out_size(h, self.kernel_size[0], self.strides[0],
                                      self.dilation_rate[0], self.padding, "kernel_size")
        ow, _ = _checks.conv_out_size(w, self.kernel_size[1], self.strides[1],
                                      self.dilation_rate[1], self.padding, "kernel_size")
        return oh, ow

    def fuses_max_pool(self, pool):
        """Whether inference may run this convolution and `pool`, the max pooling it feeds, as
        one kernel (conv2d_maxpool_forward): both channels-last, an activation the kernel
        applies, pool windows that tile (strides == pool_size) with padding 'valid'."""
        from .pooling import MaxPooling2D   # here: pooling imports this module
        return (type(self) is Conv2D and type(pool) is MaxPooling2D
                and self.data_format == pool.data_format == "channels_last"
                and self._act().fusable and pool.padding == "valid"
                and tuple(pool.strides) == tuple(pool.pool_size))

    def forward_max_pool(self, x, pool):
        """Inference only: pool.forward(self.forward(x)) in one kernel, whose convolution
        output never leaves cache; the result (in the pool's output buffer) has the same bits.
        Neither layer keeps anything for a backward pass."""
        b, h, w, _ = x.shape
        oh, ow = self._out_hw(h, w)
        ph, pw = pool.pool_size
        y = pool._buffer("y", (b, oh // ph, ow // pw, self.filters))
        return self.ops.conv2d_maxpool_forward(
            x, self.params["kernel"], self.params.get("bias"), activation=self._act().name,
            pool_size=pool.pool_size, out=y, **self._geometry())

    def get_config(self):
        return {**super().get_config(), "filters": self.filters}


class DepthwiseConv2D(_Conv):
    """Depthwise 2-D convolution: each input channel convolved with its own filter.

    depthwise_kernel is (KH, KW, C, 1) (depth_multiplier 1, the only one supported); the
    remaining arguments are Conv2D's, with depthwise_initializer/depthwise_regularizer.
    """

    _op = "depthwise_conv2d"
    _kernel_name = "depthwise_kernel"

    def __init__(self, kernel_size, strides=(1, 1), padding="valid", depth_multiplier=1,
                 data_format=None, dilation_rate=(1, 1), activation=None, use_bias=True,
                 depthwise_initializer="glorot_uniform", bias_initializer="zeros",
                 depthwise_regularizer=None, bias_regularizer=None, **kwargs):
        if depth_multiplier != 1:
            raise ValueError(f"DepthwiseConv2D supports depth_multiplier=1 only, received "
                             f"depth_multiplier={depth_multiplier!r}")
        super().__init__(kernel_size, strides, padding, data_format, dilation_rate, activation,
                         use_bias, kernel_initializer=depthwise_initializer,
                         bias_initializer=bias_initializer,
                         kernel_regularizer=depthwise_regularizer,
                         bias_regularizer=bias_regularizer, **kwargs)
        self.depth_multiplier = 1

    _out_hw = Conv2D._out_hw

    def _weight_shape(self, c):
        return self.kernel_size + (c, 1)

    def _out_channels(self, c):
        return c

    def get_config(self):
        cfg = super().get_config()
        for a, b in (("kernel_initializer", "depthwise_initializer"),
                     ("kernel_regularizer", "depthwise_regularizer")):
            cfg[b] = cfg.pop(a)
        cfg["depth_multiplier"] = 1
        return cfg


class Conv2DTranspose(_Conv):
    """Transposed 2-D convolution (the input gradient of a Conv2D), for decoders.

    kernel is (KH, KW, filters, C), as Keras stores it. Output size: H * stride ('same') or
    H * stride + max(keff - stride, 0) ('valid'); output_padding is not supported.
    """

    _op = "conv2d_transpose"

    def __init__(self, filters, kernel_size, strides=(1, 1), padding="valid",
                 output_padding=None, data_format=None, dilation_rate=(1, 1), activation=None,
                 use_bias=True, **kwargs):
        self.filters = _check_filters("Conv2DTranspose", filters)
        if output_padding is not None:
            raise ValueError(f"Conv2DTranspose output_padding is not supported, received "
                             f"output_padding={output_padding!r}; pass None")
        super().__init__(kernel_size, strides, padding, data_format, dilation_rate, activation,
                         use_bias, **kwargs)

    def _weight_shape(self, c):
        return self.kernel_size + (self.filters, c)

    def _out_channels(self, c):
        return self.filters

    def _out_hw(self, h, w):
        size = []
        for n, k, s, d in zip((h, w), self.kernel_size, self.strides, self.dilation_rate):
            keff = (k - 1) * d + 1
            size.append(n * s if self.padding == "same" else n * s + max(keff - s, 0))
        return tuple(size)

    def get_config(self):
        return {**super().get_config(), "filters": self.filters, "output_padding": None}
