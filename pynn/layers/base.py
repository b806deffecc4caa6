"""Layer: the base of every pynn layer (Keras `layers/layer.py`, much smaller).

A layer makes its shape-dependent weights in `build(input_shape)` on first use, caches what
its backward needs in `forward(x, training)`, returns dx from `backward(dy)` and writes its
weight gradients into `grads` (keyed like `params`: 'kernel', 'bias'). Inside a model,
`params` and `grads` are views into the model's flat buffers. Kernels run through
`self.ops`, a backend namespace (pynn.ops.get_backend). Outputs and input gradients go into
buffers the layer keeps per batch shape (`_buffer`), so a training step allocates nothing:
a layer's outputs are valid until its next call.
"""
import contextlib
import contextvars
import math
import operator

import numpy as np

from .. import ops as _ops
from .. import initializers, regularizers

__all__ = ["Layer"]

_name_counts = {}
MAX_WEIGHT_SIZE = 2**31  # a guard against absurd configs (e.g. from a damaged model file)


# set while a model runs predict/evaluate (no backward can follow): a layer may then skip
# what only its backward needs (TransformerBlock: gelu'); a layer called any other way keeps it
_INFERENCE = contextvars.ContextVar("pynn_inference_only", default=False)


def empty_aligned(shape, dtype):
    """np.empty(shape, dtype) whose data starts on a 64-byte boundary (a cache line; NumPy's
    large arrays start 16 bytes past one). The layers' and models' buffers are made by it:
    the GEMM reads a B whose rows start on lines in place instead of packing it, and a C
    row of whole vectors is stored a line a vector, not split over two. Measured against
    np.empty in one process, same bits, medians of 11-21 alternating rounds, forward +
    backward: Transformer block 0.971-0.975 of the time at 1 thread, 0.968-0.999 at 2; LSTM
    0.975-0.989 at 2, 0.996 at 1; GRU 0.980 at 2; small CNN 0.965 at 2, 0.982 at 1; the
    784-128-10 MLP at batch 128 0.926 at 2."""
    dtype = np.dtype(dtype)
    shape = (tuple(operator.index(d) for d in shape) if np.iterable(shape)
             else (operator.index(shape),))
    n = math.prod(shape) * dtype.itemsize
    # nothing to read or store (and NumPy moves its pointer), or a negative size: np.empty's
    # array or its error
    if n == 0 or any(d < 0 for d in shape):
        return np.empty(shape, dtype)
    raw = np.empty(n + 64, np.uint8)
    off = -raw.ctypes.data % 64
    return raw[off:off + n].view(dtype).reshape(shape)


def zeros_aligned(shape, dtype):
    """np.zeros(shape, dtype) whose data starts on a 64-byte line (see empty_aligned)."""
    out = empty_aligned(shape, dtype)
    out[...] = 0
    return out


def copy_aligned(a):
    """A copy of the array `a` whose data starts on a 64-byte line (see empty_aligned)."""
    out = empty_aligned(a.shape, a.dtype)
    out[...] = a
    return out


@contextlib.contextmanager
def inference_only():
    """Within the block, layers run forward for inference only (no backward follows)."""
    token = _INFERENCE.set(True)
    try:
        yield
    finally:
        _INFERENCE.reset(token)


def is_inference_only():
    """True inside `inference_only()`: no backward will follow this forward."""
    return _INFERENCE.get()


# set while pynn.io rebuilds a model from a file: [values left, values in the file]. A layer's
# add_weight refuses, before allocating, a weight that takes the architecture past the weight
# values the file holds (a damaged or altered config asking for a huge layer fails with a
# clear error instead of allocating and initializing gigabytes first)
_WEIGHT_BUDGET = contextvars.ContextVar("pynn_weight_budget", default=None)


@contextlib.contextmanager
def weight_budget(values):
    """Within the block, the weights created may hold at most `values` values in all."""
    token = _WEIGHT_BUDGET.set([int(values), int(values)])
    try:
        yield
    finally:
        _WEIGHT_BUDGET.reset(token)


class MaskCounter:
    """Counter-based dropout masks of a layer (Dropout, the recurrent layers' input dropout,
    MultiHeadAttention's): mask number `step` of (seed, step), a pure function of those, so
    results do not depend on the thread count. `seed` comes from `seed=` or is drawn from
    pynn's generator when the layer is built with dropout; both are in the config, so a saved
    and reloaded (or cloned) layer draws the same masks from there: training resumes exactly."""

    def _init_masks(self, seed):
        if seed is not None and (isinstance(seed, bool) or not isinstance(seed, int)
                                 or not 0 <= seed < 2**63):
            raise ValueError(f"seed must be an integer in [0, 2**63), received {seed!r}")
        self.seed = self._seed = seed
        self._step = 0

    def _draw_mask_seed(self):
        """At build, with dropout: drawn only then, so the initializations of layers
        without dropout stay as they were."""
        if self._seed is None:
            from .. import utils
            self._seed = utils.draw_seed()

    def _next_mask(self):
        """The step of the next mask (training calls count)."""
        step = self._step
        self._step += 1
        return step

    def _mask_config(self):
        return {"seed": self._seed if self._seed is not None else self.seed, "step": self._step}

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        step = config.pop("step", 0)
        if isinstance(step, bool) or not isinstance(step, int) or step < 0:
            raise ValueError(f"{cls.__name__} step must be a non-negative integer, received "
                             f"{step!r}")
        layer = cls(**config)
        layer._step = step
        return layer


def _unique_name(base):
    n = _name_counts.get(base, 0)
    _name_counts[base] = n + 1
    return base if n == 0 else f"{base}_{n}"


def _snake(name):
    # Keras' names: Conv2D -> conv2d, Conv2DTranspose -> conv2d_transpose
    out = []
    for i, ch in enumerate(name):
        prev, nxt = name[i - 1] if i else "", name[i + 1:i + 2]
        if ch.isupper() and i and (prev.islower() or (prev.isupper() and nxt.islower())):
            out.append("_")
        out.append(ch.lower())
    return "".join(out)


def shape_tuple(shape, what="input_shape"):
    """A shape as a tuple of positive ints (None allowed, for the batch axis only)."""
    if isinstance(shape, (int, np.integer)):
        shape = (shape,)
    # whole numbers only: int('4') of a string's characters, or int(4.5), made a shape
    def whole(d):
        if isinstance(d, (float, np.floating)):
            return float(d).is_integer()
        return d is None or (isinstance(d, (int, np.integer)) and not isinstance(d, bool))
    if isinstance(shape, (str, bytes)) or not hasattr(shape, "__iter__") \
            or not all(whole(d) for d in shape):
        raise TypeError(f"{what} must be a tuple of integers, received {shape!r}")
    try:
        shape = tuple(None if d is None else int(d) for d in shape)
    except (TypeError, ValueError):
        raise TypeError(f"{what} must be a tuple of integers, received {shape!r}") from None
    if any(d is not None and d <= 0 for d in shape):
        raise ValueError(f"{what} must have positive dimensions, received {shape!r}")
    return shape


class Layer:
    """Base layer.

    Parameters
    ----------
    trainable : bool
        Whether the optimizer updates this layer's weights.
    name : str, optional
        Unique by default ('dense', 'dense_1', ...).
    dtype : str, optional
        'float32' (default) or 'float64'; a model sets it for all its layers.
    input_shape : tuple, optional
        Per-sample input shape (no batch axis), for the first layer of a Sequential.
    """

    # True where the output is self.activation applied to a pre-activation that the layer
    # hands out instead while _output_logits is set (Dense, the convolutions, Activation):
    # a model may then fuse that activation into its loss. An RNN's or a TransformerBlock's
    # `activation` is internal to the layer, never its output's last step.
    _fusable_output = False

    # Keras' masking (a (B, T) padding mask from Embedding(mask_zero=True)): a layer that
    # supports it receives the mask of its input and hands compute_mask's on (by default the
    # same); `_takes_mask`: its forward takes mask= and uses it (the recurrent layers, masked
    # average pooling). A model refuses, when built, a mask reaching any other layer.
    supports_masking = False
    _takes_mask = False

    def compute_mask(self, inputs, mask):
        """The mask of this layer's output given its input's (None: no mask)."""
        return mask

    def _output_masked(self, input_masked):
        """Whether the output carries a mask (at build: shapes, no data)."""
        return input_masked

    def _outputs_masked(self, input_masked, n):
        """Per output of a call with n outputs: the first as _output_masked, the rest (an
        RNN's states) without."""
        return [self._output_masked(input_masked)] + [False] * (n - 1)

    def __getattr__(self, name):
        # reached only when the attribute is missing: a backward before any forward in
        # training mode finds no _cache (it was AttributeError: no attribute '_cache')
        if name == "_cache":
            raise RuntimeError(f"{type(self).__name__} {self.__dict__.get('name', '')!r}: "
                               f"backward before a forward pass in training mode; call "
                               f"layer(x, training=True) (or model(x, training=True)) first")
        raise AttributeError(f"{type(self).__name__!r} object has no attribute {name!r}")

    def __init__(self, trainable=True, name=None, dtype=None, input_shape=None, **kwargs):
        if "input_dim" in kwargs:
            input_shape = (kwargs.pop("input_dim"),)
        if "batch_input_shape" in kwargs:
            input_shape = tuple(kwargs.pop("batch_input_shape"))[1:]
        if kwargs:
            raise TypeError(f"{type(self).__name__} got unexpected keyword argument(s) "
                            f"{sorted(kwargs)}")
        self.name = name or _unique_name(_snake(type(self).__name__))
        if not isinstance(self.name, str):
            raise TypeError(f"name must be a string, received {self.name!r}")
        self.trainable = bool(trainable)
        self.dtype = None if dtype is None else np.dtype(dtype)
        if self.dtype is not None and self.dtype not in (np.float32, np.float64):
            raise TypeError(f"dtype must be float32 or float64, received {dtype!r}")
        self.input_shape_arg = None if input_shape is None else shape_tuple(input_shape)
        self.built = False
        self.params = {}
        self.grads = {}
        self._weight_info = {}
        self.ops = None
        self.input_shape = None
        self.output_shape = None
        self._bufs = {}
        self._need_dx = True
        self._output_logits = False  # set by a model that fuses this layer's output activation

    # -- weights ---------------------------------------------------------------------
    def add_weight(self, name, shape, initializer="zeros", regularizer=None, trainable=True):
        """Create weight `name` (and its gradient) with `initializer`; returns it."""
        init = initializers.get(initializer)
        size = math.prod(shape)
        if size > MAX_WEIGHT_SIZE:
            raise ValueError(f"weight {name!r} of layer {self.name!r} would have shape {shape} "
                             f"({size:,} values); pynn limits one weight to "
                             f"{MAX_WEIGHT_SIZE:,} values")
        budget = _WEIGHT_BUDGET.get()
        if budget is not None:
            if size > budget[0]:
                raise ValueError(f"weight {name!r} of layer {self.name!r} would have shape "
                                 f"{shape} ({size:,} values), more than the "
                                 f"{budget[0]:,} left of the {budget[1]:,} weight values the "
                                 f"file holds")
            budget[0] -= size
        w = np.ascontiguousarray(init(tuple(shape), dtype=self.dtype))
        self.params[name] = w
        self.grads[name] = np.zeros_like(w)
        self._weight_info[name] = (regularizers.get(regularizer), bool(trainable))
        return w

    def _repoint(self, name, value, grad):
        """Make `value` (a view of a model's flat buffer) weight `name`, and `grad` its
        gradient. An attribute that held the old array (Keras' `self.w = self.add_weight(...)`
        in a layer of one's own) is pointed at the new one too: it stays the live weight."""
        old = self.params.get(name)
        self.params[name] = value
        self.grads[name] = grad
        if old is not None and old is not value:
            for attr in [a for a, v in vars(self).items() if v is old]:
                setattr(self, attr, value)

    @property
    def weights(self):
        return list(self.params.values())

    @property
    def trainable_weights(self):
        """Weights the optimizer updates (none when the layer is frozen; never the
        non-trainable ones, such as BatchNormalization's moving statistics)."""
        if not self.trainable:
            return []
        return [w for k, w in self.params.items() if self._weight_info[k][1]]

    @property
    def non_trainable_weights(self):
        return [w for w in self.params.values()
                if not any(w is t for t in self.trainable_weights)]

    def get_weights(self):
        return [w.copy() for w in self.params.values()]

    def set_weights(self, weights):
        weights = list(weights)
        if len(weights) != len(self.params):
            raise ValueError(f"layer {self.name!r} has {len(self.params)} weight(s), received "
                             f"{len(weights)}")
        # every array checked before any is set: a refused call changes nothing
        checked = []
        for (k, w), v in zip(self.params.items(), weights):
            v = np.asarray(v)
            if v.shape != w.shape:
                raise ValueError(f"weight {k!r} of layer {self.name!r} has shape {w.shape}, "
                                 f"received {v.shape}")
            if v.dtype.kind not in "biuf":   # complex lost its imaginary part, with a warning
                raise TypeError(f"weight {k!r} of layer {self.name!r} must be real numbers, "
                                f"received dtype {v.dtype}")
            if v.dtype.kind == "f" and v.dtype.itemsize > w.dtype.itemsize and v.size:
                top = float(np.max(np.abs(v), where=np.isfinite(v), initial=0.0))
                if top > float(np.finfo(w.dtype).max):  # finite values its dtype makes inf
                    raise ValueError(f"weight {k!r} of layer {self.name!r}: values up to "
                                     f"{top:.3g} overflow {w.dtype}")
            checked.append((w, v))
        for w, v in checked:
            w[...] = v

    def count_params(self):
        return int(sum(w.size for w in self.params.values()))

    def _regularized(self):
        """(name, regularizer) of the weights whose penalty counts: trainable weights of a
        trainable layer only (as Keras collects them from trainable_weights), so freezing a
        layer also takes its penalty out of the loss."""
        if not self.trainable:
            return []
        return [(k, reg) for k, (reg, trainable) in self._weight_info.items()
                if reg is not None and trainable]

    def regularization_penalty(self):
        return sum(reg.penalty(self.params[k]) for k, reg in self._regularized())

    def add_regularization_gradients(self):
        for k, reg in self._regularized():
            reg.add_gradient(self.params[k], self.grads[k])

    # -- shapes and building ---------------------------------------------------------
    def build(self, input_shape):
        """Make weights for `input_shape` (batch axis first, may be None)."""
        self.built = True

    def compute_output_shape(self, input_shape):
        return tuple(input_shape)

    def _build_for(self, input_shape, ops=None, dtype=None):
        """Set backend and dtype, then build once (used by models and by __call__)."""
        self.ops = ops if ops is not None else (self.ops or _ops.get_backend())
        if dtype is not None:
            self.dtype = np.dtype(dtype)
        elif self.dtype is None:
            self.dtype = np.dtype(np.float32)
        if not self.built:
            self.input_shape = tuple(input_shape)
            self.build(tuple(input_shape))
            self.built = True
            self.output_shape = self.compute_output_shape(tuple(input_shape))
        return self.output_shape

    def _check_input(self, x):
        exp = self.input_shape
        if exp is None:
            return
        if x.ndim != len(exp) or any(e is not None and e != r for e, r in zip(exp[1:], x.shape[1:])):
            raise ValueError(f"layer {self.name!r} expects input of shape {exp}, received "
                             f"{x.shape}")

    # -- running ---------------------------------------------------------------------
    def _buffer(self, key, shape):
        """An output/gradient buffer kept per (key, shape): no allocation after warm-up."""
        k = (key, shape)
        b = self._bufs.get(k)
        if b is None:
            b = empty_aligned(shape, self.dtype)
            self._bufs[k] = b
        return b

    def forward(self, x, training=False):
        raise NotImplementedError

    def backward(self, dy):
        raise NotImplementedError

    def __call__(self, x, *args, training=None, **kwargs):
        """Run the layer on its own (builds on first call; float32 unless dtype set).
        On symbolic tensors (pynn.Input, pynn.functional) it records a graph node instead;
        training=True/False there fixes the layer's mode in that graph whatever the model's
        (Monte-Carlo dropout; a frozen BatchNormalization in fine-tuning), as in Keras."""
        from .. import functional
        if functional.is_symbolic(x, args, kwargs):
            return functional.call(self, x, args, kwargs, training)
        training = bool(training)
        if any(isinstance(a, (bool, np.bool_)) for a in args):
            raise TypeError(f"layer {self.name!r}: pass training as a keyword "
                            f"(layer(x, training=True)); positional arguments are inputs")
        if args or isinstance(x, (list, tuple)):
            # layer([a, b]) or layer(a, b): several inputs (MultiHeadAttention(query, value))
            xs = [np.asarray(a) for a in
                  (list(x) if isinstance(x, (list, tuple)) else [x]) + list(args)]
            for i, a in enumerate(xs):   # as for one input (strings reached float())
                if a.dtype.kind not in "fiub":
                    raise TypeError(f"layer {self.name!r} needs numeric arrays, received "
                                    f"input {i} of dtype {a.dtype}")
            self._build_for([(None,) + a.shape[1:] for a in xs])
            xs = [a.astype(self.dtype) if a.dtype != self.dtype else a for a in xs]
            return self.forward(xs, training=training, **kwargs)
        x = np.asarray(x)
        if x.dtype.kind not in "fiub":
            raise TypeError(f"layer {self.name!r} needs a numeric array, received {x.dtype}")
        self._build_for((None,) + x.shape[1:])
        if x.dtype != self.dtype:
            x = x.astype(self.dtype)
        self._check_input(x)
        return self.forward(x, training=training, **kwargs)

    def _wrapped_layers(self):
        """The layers this layer runs inside its own forward (wrappers such as
        TimeDistributed, Bidirectional, TransformerBlock say so; a layer that only refers to
        another one, e.g. to tie weights, does not)."""
        return []

    # -- config ----------------------------------------------------------------------
    def get_config(self):
        cfg = {"name": self.name, "trainable": self.trainable}
        if self.dtype is not None:
            cfg["dtype"] = self.dtype.name
        if self.input_shape_arg is not None:
            cfg["input_shape"] = list(self.input_shape_arg)
        return cfg

    @classmethod
    def from_config(cls, config):
        return cls(**config)

    def __repr__(self):
        return f"<{type(self).__name__} name={self.name!r} built={self.built}>"
