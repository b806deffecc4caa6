"""Metrics by Keras name: stateful running means over an epoch (update_state/result/
reset_state), weighted by the number of samples as in Keras 3.

Accuracy metrics count through the backend's `count_correct` kernel. 'accuracy' / 'acc'
resolve against the loss: sparse labels -> sparse_categorical_accuracy, one-hot ->
categorical_accuracy, binary -> binary_accuracy. `argmax_invariant` metrics may be fed
logits instead of probabilities (the fused softmax output skips its softmax in training).
"""
import numpy as np

from . import ops as _ops
from ._registry import UserClasses, check_config, lookup, unknown

__all__ = ["Metric", "Mean", "SparseCategoricalAccuracy", "CategoricalAccuracy",
           "BinaryAccuracy", "MeanSquaredError", "MeanAbsoluteError", "get", "serialize",
           "deserialize"]


class Metric:
    argmax_invariant = False
    # the targets a built-in metric reads: 'sparse' (class indices) or 'dense' (shaped like
    # the predictions); compile refuses a metric whose targets the loss does not take
    _targets = None

    def __init__(self, name=None):
        self.name = name or _default_name(type(self))
        self.reset_state()

    def reset_state(self):
        self.total = 0.0
        self.count = 0.0

    def result(self):
        return self.total / self.count if self.count else 0.0

    def update(self, ops, y_pred, y_true, sample_weight=None):
        """Add one batch (targets already in kernel form). A metric of one's own may instead
        override update_state(y_true, y_pred, sample_weight=None) and result() (and
        reset_state()), as in Keras: fit and evaluate then call its update_state."""
        if type(self).update_state is not Metric.update_state and \
                not getattr(self, "_delegating", False):   # (its super() comes back here)
            self._delegating = True
            try:
                return self.update_state(y_true, y_pred, sample_weight)
            finally:
                self._delegating = False
        raise NotImplementedError(
            f"{type(self).__name__}: a Metric subclass implements update_state(y_true, y_pred, "
            f"sample_weight=None) and result() (Keras), or update(ops, y_pred, y_true, "
            f"sample_weight=None) on kernel-form targets")

    def update_state(self, y_true, y_pred, sample_weight=None):
        """Keras order; y_true in the form of the matching loss; sample_weight (B,) (or
        (B, 1))."""
        y_pred = np.asarray(y_pred)
        if y_pred.dtype.kind != "f":
            y_pred = y_pred.astype(np.float32)
        if sample_weight is not None:
            sample_weight = np.asarray(sample_weight, dtype=np.float64)
            if sample_weight.ndim == 2 and sample_weight.shape[1] == 1:
                sample_weight = sample_weight[:, 0]
            if sample_weight.shape != (y_pred.shape[0],):
                raise ValueError(f"sample_weight must have shape ({y_pred.shape[0]},), "
                                 f"received {sample_weight.shape}")
        self.update(_ops.get_backend(), y_pred, self._prepare(y_true, y_pred), sample_weight)

    def _prepare(self, y_true, y_pred):
        y = np.asarray(y_true)
        if y.size != y_pred.size:   # numpy's "cannot reshape array of size .." said less
            raise ValueError(f"{self.name}: y_true of shape {y.shape} does not match y_pred "
                             f"of shape {y_pred.shape}")
        return y.astype(y_pred.dtype, copy=False).reshape(y_pred.shape)

    def get_config(self):
        return {"name": self.name}

    @classmethod
    def from_config(cls, config):
        return cls(**config)


class Mean(Metric):
    """Weighted mean of scalar values (the loss tracker)."""

    def add(self, value, weight=1.0):
        self.total += float(value) * weight
        self.count += weight


def _weighted(values, sample_weight):
    if sample_weight is None:
        return float(np.sum(values)), float(values.shape[0])
    sw = np.asarray(sample_weight, dtype=np.float64)
    return float(np.dot(values, sw)), float(sw.sum())


def _positions(y_pred, y_true, sample_weight, sparse):
    """Sequence outputs (B, T, K): every position counts as a sample, on a (B*T, K) view."""
    if y_pred.ndim <= 2:
        return y_pred, y_true, sample_weight
    k = y_pred.shape[-1]
    if sample_weight is not None:
        sample_weight = np.repeat(np.asarray(sample_weight), y_pred.size // (k * y_pred.shape[0]))
    y_true = y_true.reshape(-1) if sparse else y_true.reshape(-1, k)
    return y_pred.reshape(-1, k), y_true, sample_weight


class SparseCategoricalAccuracy(Metric):
    argmax_invariant = True
    _targets = "sparse"

    def update(self, ops, y_pred, y_true, sample_weight=None):
        y_pred, y_true, sample_weight = _positions(y_pred, y_true, sample_weight, True)
        if sample_weight is None:
            self.total += ops.count_correct(y_pred, y_true)
            self.count += y_pred.shape[0]
        else:
            hit = (ops.row_argmax(y_pred) == y_true).astype(np.float64)  # (B,)
            t, c = _weighted(hit, sample_weight)
            self.total += t
            self.count += c

    def _prepare(self, y_true, y_pred):
        y = np.asarray(y_true)
        return y.reshape(-1).astype(np.int64) if y.dtype.kind == "f" else y.reshape(-1)


class CategoricalAccuracy(SparseCategoricalAccuracy):
    _targets = "dense"

    def update(self, ops, y_pred, y_true, sample_weight=None):
        y_pred, y_true, sample_weight = _positions(y_pred, y_true, sample_weight, False)
        super().update(ops, y_pred, ops.row_argmax(y_true), sample_weight)

    def _prepare(self, y_true, y_pred):
        return Metric._prepare(self, y_true, y_pred)


class BinaryAccuracy(Metric):
    _targets = "dense"

    def __init__(self, name=None, threshold=0.5):
        self.threshold = float(threshold)
        super().__init__(name)

    def update(self, ops, y_pred, y_true, sample_weight=None):
        hit = ((y_pred > self.threshold) == (y_true > 0.5)).reshape(y_pred.shape[0], -1)
        t, c = _weighted(hit.mean(axis=1), sample_weight)  # per-sample accuracy (B,)
        self.total += t
        self.count += c

    def get_config(self):
        return {"name": self.name, "threshold": self.threshold}


class MeanSquaredError(Metric):
    _targets = "dense"

    def update(self, ops, y_pred, y_true, sample_weight=None):
        d = (y_pred - y_true).reshape(y_pred.shape[0], -1)  # (B, D)
        t, c = _weighted(np.mean(d * d, axis=1), sample_weight)
        self.total += t
        self.count += c


class MeanAbsoluteError(Metric):
    _targets = "dense"

    def update(self, ops, y_pred, y_true, sample_weight=None):
        d = (y_pred - y_true).reshape(y_pred.shape[0], -1)  # (B, D)
        t, c = _weighted(np.mean(np.abs(d), axis=1), sample_weight)
        self.total += t
        self.count += c


class _ShapeAccuracy(CategoricalAccuracy):
    """'accuracy' under a regression loss (targets shaped like the predictions), chosen by
    shape as Keras does: several output columns are categorical accuracy (argmax against
    argmax), one is binary accuracy (threshold 0.5)."""
    argmax_invariant = False
    threshold = 0.5

    def update(self, ops, y_pred, y_true, sample_weight=None):
        if y_pred.ndim >= 2 and y_pred.shape[-1] > 1:
            super().update(ops, y_pred, y_true, sample_weight)
        else:
            BinaryAccuracy.update(self, ops, y_pred, y_true, sample_weight)


_CLASSES = {c.__name__: c for c in (Mean, SparseCategoricalAccuracy, CategoricalAccuracy,
                                    BinaryAccuracy, MeanSquaredError, MeanAbsoluteError,
                                    _ShapeAccuracy)}
_NAMES = {"sparse_categorical_accuracy": SparseCategoricalAccuracy,
          "categorical_accuracy": CategoricalAccuracy, "binary_accuracy": BinaryAccuracy,
          "mean_squared_error": MeanSquaredError, "mse": MeanSquaredError,
          "mean_absolute_error": MeanAbsoluteError, "mae": MeanAbsoluteError}
_ACCURACY = {"sparse": SparseCategoricalAccuracy, "categorical": CategoricalAccuracy,
             "binary": BinaryAccuracy}


def _default_name(cls):
    for k, v in _NAMES.items():
        if v is cls:
            return k
    return cls.__name__.lower()


def get(identifier, loss=None):
    """Resolve a metric name or object; 'accuracy'/'acc' use the loss kind to choose."""
    if isinstance(identifier, Metric):
        return identifier
    if isinstance(identifier, dict):
        check_config(identifier, "metric")
        return deserialize(identifier)
    if isinstance(identifier, str) and identifier in ("accuracy", "acc"):
        kind = getattr(loss, "kind", "sparse")
        return _ACCURACY.get(kind, _ShapeAccuracy)(name=identifier)
    if isinstance(identifier, str):
        return lookup(_NAMES, identifier, "metric")(name=identifier)
    raise unknown(identifier, "metric", _NAMES, Metric, extra=("accuracy", "acc"))


def check_targets(metric, loss):
    """Refuse a built-in metric that reads other targets than `loss` takes (class indices
    against one-hot or values), before a batch fails with a broadcasting error or, where the
    shapes happen to broadcast, reports a meaningless number."""
    want = metric._targets
    have = "sparse" if getattr(loss, "kind", None) == "sparse" else "dense"
    if want is not None and want != have:
        what = {"sparse": "class indices", "dense": "arrays shaped like the predictions"}
        hint = ("'accuracy' or 'sparse_categorical_accuracy'" if have == "sparse" else
                "'accuracy', 'categorical_accuracy', 'binary_accuracy', 'mse' or 'mae'")
        raise ValueError(f"metric {metric.name!r} reads {what[want]} as targets, but the loss "
                         f"{type(loss).__name__} takes {what[have]}: use {hint}")


def serialize(metric):
    return {"class_name": type(metric).__name__, "config": metric.get_config()}


# the user's own Metric subclasses while a model loads (load_model(custom_objects=...))
_USER = UserClasses("metric", Metric)


def custom_objects(objects):
    """Within the block, deserialize also knows these {class name: Metric subclass}."""
    return _USER.scope(objects)


def deserialize(config):
    cls = _USER.resolve(config.get("class_name"), _CLASSES)
    return cls.from_config(config.get("config", {}))
