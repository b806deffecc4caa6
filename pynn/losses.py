"""Losses by Keras name; each runs its forward/backward kernel on a backend namespace.

Reduction is Keras' "sum_over_batch_size" (docs/kernels.md, losses). Targets are checked
ONCE per fit/evaluate call by `prepare_targets` (labels integral and in range, no NaN,
shapes), so bad labels raise ValueError before any kernel runs.

Output fusion: under a softmax output, (sparse_)categorical_crossentropy trains through the
stable fused kernel on the logits (softmax_cross_entropy / softmax_categorical_
crossentropy); under a sigmoid output, binary_crossentropy through its logits kernel.
"""
import numpy as np

from . import _checks
from . import ops as _ops
from ._registry import UserClasses, check_config, lookup, unknown

__all__ = ["Loss", "MeanSquaredError", "MeanAbsoluteError", "BinaryCrossentropy",
           "CategoricalCrossentropy", "SparseCategoricalCrossentropy", "get", "serialize",
           "deserialize", "mean_squared_error", "mean_absolute_error", "mse", "mae",
           "binary_crossentropy", "categorical_crossentropy", "sparse_categorical_crossentropy"]


def _fits(shape, want):
    """shape matches want, where a None in want (a variable sequence length) matches any."""
    return len(shape) == len(want) and all(w is None or w == d for d, w in zip(shape, want))


class Loss:
    """Base: `kernel` names the kernel pair on probabilities/values, `logits_kernel` the
    pair on logits (from_logits=True or a fused output activation)."""
    kind = "regression"         # 'sparse', 'categorical', 'binary' or 'regression'
    kernel = None
    logits_kernel = None
    fuses_with = None           # output activation that fuses into logits_kernel

    def __init__(self, from_logits=False, name=None):
        self.from_logits = bool(from_logits)
        self.name = name or _default_name(type(self))

    # -- targets ---------------------------------------------------------------------
    def prepare_targets(self, y, output_shape, dtype):
        """Check targets once for a data set and return them in kernel form.

        output_shape is the model's per-sample output shape; dtype the model's.
        """
        if self.kind == "sparse":
            y = np.asarray(y)
            if len(output_shape) < 1:   # (B,) scores: no class axis to index
                raise ValueError(f"{self.name} needs a model output of shape (n, classes) "
                                 f"(one score per class), received shape (n,); for one "
                                 f"probability per sample use binary_crossentropy")
            lead = tuple(output_shape[:-1])    # () for (B, K) outputs, (T,) for (B, T, K)
            if y.ndim == len(lead) + 2 and y.shape[-1] == 1:
                y = y[..., 0]
            if y.ndim != len(lead) + 1 or not _fits(y.shape[1:], lead):
                want = "(n,)" if not lead else f"(n, {', '.join(map(str, lead))})"
                raise ValueError(f"{self.name} expects integer labels of shape {want} for a "
                                 f"model output of shape (n, {', '.join(map(str, output_shape))})"
                                 f", received shape {y.shape}; for one-hot targets use "
                                 f"categorical_crossentropy")
            flat = _checks.int_labels(y.reshape(-1), y.size, output_shape[-1], "labels (y)")
            return flat.reshape(y.shape)
        y = np.asarray(y)
        if y.dtype.kind not in "fiub":
            raise TypeError(f"targets (y) must be numeric, received dtype {y.dtype}")
        y = np.ascontiguousarray(y, dtype=dtype)
        if y.ndim == 1 and tuple(output_shape) == (1,):
            y = y.reshape(-1, 1)
        if not _fits(y.shape[1:], output_shape):
            raise ValueError(f"targets (y) must have shape (n, {', '.join(map(str, output_shape))})"
                             f" to match the model output for loss {self.name!r}, received "
                             f"{y.shape}")
        if y.size and not np.all(np.isfinite(y)):
            raise ValueError("targets (y) contain NaN or infinity")
        return y

    # -- kernels ---------------------------------------------------------------------
    def kernels(self, output_activation="linear"):
        """(forward, backward, fused) kernel names for a model whose output activation is
        `output_activation`; fused=True means the loss takes the pre-activation logits."""
        if self.from_logits:
            return self.logits_kernel, False
        if self.fuses_with is not None and output_activation == self.fuses_with:
            return self.logits_kernel, True
        return self.kernel, False

    def _positions(self, y_pred, y_true, sample_weight):
        """Sequence outputs (B, T, ..., K) of the classification losses run their (B', K)
        kernels on a (B*T*..., K) view (no copy): each position is a sample, so the loss is
        the mean over B*T ("sum_over_batch_size" with the positions as samples); a per-sample
        weight (B,) is repeated over the positions."""
        if y_pred.ndim <= 2 or self.kind not in ("sparse", "categorical"):
            return y_pred, y_true, sample_weight
        k = y_pred.shape[-1]
        reps = y_pred.size // (k * y_pred.shape[0]) if y_pred.shape[0] else 1
        if sample_weight is not None:
            sample_weight = np.repeat(np.asarray(sample_weight), reps)      # (B*T,)
        y_true = y_true.reshape(-1) if self.kind == "sparse" else y_true.reshape(-1, k)
        return y_pred.reshape(-1, k), y_true, sample_weight                 # (B*T, K)

    def forward(self, ops, y_pred, y_true, sample_weight=None, fused=False):
        name = self.logits_kernel if (fused or self.from_logits) else self.kernel
        y_pred, y_true, sample_weight = self._positions(y_pred, y_true, sample_weight)
        return getattr(ops, name + "_forward")(y_pred, y_true, sample_weight=sample_weight)

    def backward(self, ops, y_pred, y_true, sample_weight=None, fused=False, out=None):
        name = self.logits_kernel if (fused or self.from_logits) else self.kernel
        shape = y_pred.shape
        y_pred, y_true, sample_weight = self._positions(y_pred, y_true, sample_weight)
        if out is None:
            out = np.empty(shape, y_pred.dtype)
        getattr(ops, name + "_backward")(y_pred, y_true, sample_weight=sample_weight,
                                         out=out.reshape(y_pred.shape))
        return out

    def value_and_grad(self, y_true, y_pred, sample_weight=None, ops=None):
        """(loss as a float, d loss / d y_pred) for one batch: the custom training step.

        Keras argument order. y_pred is the model output as returned by `model(x)` (after
        its output activation: probabilities unless from_logits=True). ops: a backend
        namespace (default: the active pynn.ops backend).
        """
        y_pred = np.asarray(y_pred)
        if y_pred.dtype not in _checks.FLOAT_DTYPES:
            y_pred = y_pred.astype(np.float32)
        if y_pred.ndim < 1 or y_pred.shape[0] == 0:
            raise ValueError(f"y_pred must have a non-empty batch axis, received shape "
                             f"{y_pred.shape}")
        y_true = self.prepare_targets(y_true, y_pred.shape[1:], y_pred.dtype)
        if len(y_true) != y_pred.shape[0]:
            raise ValueError(f"y_true has {len(y_true)} samples, y_pred {y_pred.shape[0]}")
        if sample_weight is not None:
            sample_weight = np.asarray(sample_weight, dtype=y_pred.dtype)
        ops = ops or _ops.get_backend()
        value = self.forward(ops, y_pred, y_true, sample_weight)
        grad = self.backward(ops, y_pred, y_true, sample_weight)
        return float(value), grad

    def __call__(self, y_true, y_pred, sample_weight=None):
        """Keras order: the loss value as a float, on the active backend."""
        y_pred = np.asarray(y_pred)
        if y_pred.dtype not in _checks.FLOAT_DTYPES:
            y_pred = y_pred.astype(np.float32)
        y_true = self.prepare_targets(y_true, y_pred.shape[1:], y_pred.dtype)
        if sample_weight is not None:
            sample_weight = np.asarray(sample_weight, dtype=y_pred.dtype)
        return self.forward(_ops.get_backend(), y_pred, y_true, sample_weight)

    def get_config(self):
        return {"name": self.name, "from_logits": self.from_logits}

    @classmethod
    def from_config(cls, config):
        return cls(**config)


class MeanSquaredError(Loss):
    kernel = "mse"

    def __init__(self, name=None):
        super().__init__(False, name)

    def get_config(self):
        return {"name": self.name}


class MeanAbsoluteError(Loss):
    kernel = "mae"

    def __init__(self, name=None):
        super().__init__(False, name)

    def get_config(self):
        return {"name": self.name}


class BinaryCrossentropy(Loss):
    kind = "binary"
    kernel = "binary_crossentropy"
    logits_kernel = "binary_crossentropy_logits"
    fuses_with = "sigmoid"


class CategoricalCrossentropy(Loss):
    kind = "categorical"
    kernel = "categorical_crossentropy"
    logits_kernel = "softmax_categorical_crossentropy"
    fuses_with = "softmax"


class SparseCategoricalCrossentropy(Loss):
    kind = "sparse"
    kernel = "sparse_categorical_crossentropy"
    logits_kernel = "softmax_cross_entropy"
    fuses_with = "softmax"


_CLASSES = {c.__name__: c for c in (MeanSquaredError, MeanAbsoluteError, BinaryCrossentropy,
                                    CategoricalCrossentropy, SparseCategoricalCrossentropy)}
_NAMES = {"mean_squared_error": MeanSquaredError, "mse": MeanSquaredError,
          "MSE": MeanSquaredError,  # Keras' upper-case aliases
          "mean_absolute_error": MeanAbsoluteError, "mae": MeanAbsoluteError,
          "MAE": MeanAbsoluteError,
          "binary_crossentropy": BinaryCrossentropy,
          "categorical_crossentropy": CategoricalCrossentropy,
          "sparse_categorical_crossentropy": SparseCategoricalCrossentropy}


def _default_name(cls):
    for k, v in _NAMES.items():
        if v is cls and len(k) > 3:
            return k
    return cls.__name__


def mean_squared_error(y_true, y_pred, sample_weight=None):
    return MeanSquaredError()(y_true, y_pred, sample_weight)


def mean_absolute_error(y_true, y_pred, sample_weight=None):
    return MeanAbsoluteError()(y_true, y_pred, sample_weight)


def binary_crossentropy(y_true, y_pred, sample_weight=None, from_logits=False):
    return BinaryCrossentropy(from_logits)(y_true, y_pred, sample_weight)


def categorical_crossentropy(y_true, y_pred, sample_weight=None, from_logits=False):
    return CategoricalCrossentropy(from_logits)(y_true, y_pred, sample_weight)


def sparse_categorical_crossentropy(y_true, y_pred, sample_weight=None, from_logits=False):
    return SparseCategoricalCrossentropy(from_logits)(y_true, y_pred, sample_weight)


mse, mae = mean_squared_error, mean_absolute_error
_FUNCTIONS = {mean_squared_error: MeanSquaredError, mean_absolute_error: MeanAbsoluteError,
              binary_crossentropy: BinaryCrossentropy,
              categorical_crossentropy: CategoricalCrossentropy,
              sparse_categorical_crossentropy: SparseCategoricalCrossentropy}


def get(identifier):
    """Resolve a Keras name, a pynn loss function, a Loss object or a config dict."""
    if isinstance(identifier, Loss):
        cls = type(identifier)
        if (cls.kernel is None and cls.logits_kernel is None
                and (cls.forward is Loss.forward or cls.backward is Loss.backward)):
            raise TypeError(
                f"loss {cls.__name__}: pynn has no automatic differentiation, so a Loss "
                f"subclass gives its value and its gradient: set `kernel` to a built-in "
                f"loss's kernel and adapt forward/backward (ops, y_pred, y_true, "
                f"sample_weight=None, fused=False[, out]), or override both; a Keras-style "
                f"call(y_true, y_pred) alone has no gradient here")
        return identifier
    if isinstance(identifier, str):
        cls = lookup({**_NAMES, **_CLASSES}, identifier, "loss")
        # Keras: a class name ("MeanSquaredError") gives the loss under its default name
        return cls() if identifier in _CLASSES else cls(name=identifier)
    if isinstance(identifier, dict):
        check_config(identifier, "loss")
        return deserialize(identifier)
    if callable(identifier) and not isinstance(identifier, type) and identifier in _FUNCTIONS:
        return _FUNCTIONS[identifier]()
    raise unknown(identifier, "loss", _NAMES, Loss)


def serialize(loss):
    return {"class_name": type(loss).__name__, "config": loss.get_config()}


# the user's own Loss subclasses while a model loads (load_model(custom_objects=...))
_USER = UserClasses("loss", Loss)


def custom_objects(objects):
    """Within the block, deserialize also knows these {class name: Loss subclass}."""
    return _USER.scope(objects)


def deserialize(config):
    if isinstance(config, str):
        return get(config)
    cls = _USER.resolve(config.get("class_name"), _CLASSES)
    return cls.from_config(config.get("config", {}))
