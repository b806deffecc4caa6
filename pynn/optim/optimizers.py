"""Optimizers (Keras 3 formulas) over a model's flat parameter buffer.

A model keeps all parameters in ONE contiguous buffer and all gradients in another; an
optimizer keeps one buffer of the same length per state slot (Adam: m and v). A step is one
fused kernel call per contiguous run of trainable parameters (usually one for the whole
model); clipping by global norm is one `clip_by_global_norm` call per run.
"""
import weakref

import numpy as np

from .. import _checks
from .._registry import UserClasses, check_config, lookup, unknown
from . import schedules as _schedules

__all__ = ["Optimizer", "SGD", "Adam", "AdamW", "RMSprop", "Adagrad", "get", "serialize",
           "deserialize"]


def _positive(value, name, allow_none=True, allow_zero=False):
    if value is None and allow_none:
        return None
    if isinstance(value, (str, bytes)) or not isinstance(value, (int, float, np.number)):
        raise TypeError(f"{name} must be a real number, received {value!r}")
    v = float(value)
    if not (v > 0 or (allow_zero and v == 0)) or v != v or v == float("inf"):
        raise ValueError(f"{name} must be {'>= 0' if allow_zero else '> 0'} and finite, "
                         f"received {value!r}")
    return v


class Optimizer:
    """Base optimizer: learning rate (float or schedule), decoupled weight decay, clipping.

    Parameters
    ----------
    learning_rate : float or LearningRateSchedule
    weight_decay : float, optional
        Decoupled: p -= lr * weight_decay * p before the update.
    clipnorm : float, optional
        Clip each variable's gradient to this L2 norm (Keras semantics).
    global_clipnorm : float, optional
        Clip the gradient of all trainable parameters together (one kernel call).
    clipvalue : float, optional
        Clip each gradient entry to [-clipvalue, clipvalue].
    """
    slots = ()

    def __init__(self, learning_rate=0.001, weight_decay=None, clipnorm=None, clipvalue=None,
                 global_clipnorm=None, name=None):
        self.learning_rate = learning_rate
        self.weight_decay = _positive(weight_decay, "weight_decay", allow_zero=True)
        self.clipnorm = _positive(clipnorm, "clipnorm")
        self.clipvalue = _positive(clipvalue, "clipvalue")
        self.global_clipnorm = _positive(global_clipnorm, "global_clipnorm")
        if self.clipnorm is not None and self.global_clipnorm is not None:
            raise ValueError("pass at most one of clipnorm and global_clipnorm")
        self.name = name or type(self).__name__.lower()
        self.iterations = 0
        self._state = None
        self._owner = None

    # -- learning rate ---------------------------------------------------------------
    @property
    def learning_rate(self):
        """The current learning rate (a schedule evaluated at `iterations`)."""
        if isinstance(self._lr, _schedules.LearningRateSchedule):
            return float(self._lr(self.iterations))
        return self._lr

    @learning_rate.setter
    def learning_rate(self, value):
        """Set a float or a new schedule. A float cannot replace a schedule (Keras 3 raises
        TypeError): the schedule would be dropped silently."""
        if isinstance(value, _schedules.LearningRateSchedule):
            self._lr = value
        elif isinstance(getattr(self, "_lr", None), _schedules.LearningRateSchedule):
            raise TypeError(f"this optimizer was created with the learning-rate schedule "
                            f"{type(self._lr).__name__}, so its learning rate cannot be set "
                            f"to {value!r}; create the optimizer with a float learning_rate "
                            f"to set it")
        else:
            self._lr = _positive(value, "learning_rate", allow_none=False, allow_zero=True)

    lr = learning_rate

    # -- state -----------------------------------------------------------------------
    def _active_slots(self):
        return self.slots

    def build(self, size, dtype=np.float32):
        """Allocate one zeroed state buffer of `size` entries per slot."""
        # on 64-byte lines, as the model's flat weights and gradients are: the fused update's
        # vector loads and stores then each touch one line (Adam on 101,770 floats, all four
        # arrays on lines against NumPy's 16 bytes past one: 35.7 against 43.2 us at 1
        # thread, 19.4 against 22.7 at 2)
        from ..layers.base import zeros_aligned
        self._state = {s: zeros_aligned(size, dtype) for s in self._active_slots()}
        self._size, self._dtype = size, np.dtype(dtype)

    @property
    def built(self):
        return self._state is not None

    def get_state(self):
        """dict name -> ndarray: 'iterations' (int64 scalar array) and every state slot."""
        d = {"iterations": np.array(self.iterations, dtype=np.int64)}
        for k, v in (self._state or {}).items():
            d[k] = v.copy()
        return d

    # slots that hold running averages of squares: >= 0 (a negative one is a NaN step)
    _NONNEG_SLOTS = ("v", "sq_avg", "accum")

    def set_state(self, state):
        """Restore a dict from get_state (slots must match this optimizer's): 'iterations' an
        integer >= 0, every slot a finite 1-D float32/float64 array of one length and dtype,
        the averages of squares (v, sq_avg, accum) >= 0. ValueError otherwise (a model file's
        state is checked here before anything is set)."""
        if "iterations" not in state:
            raise ValueError("optimizer state has no 'iterations' entry")
        it = np.asarray(state["iterations"])
        if it.shape != () or it.dtype.kind not in "iu" or not 0 <= int(it) < 2**62:
            raise ValueError(f"optimizer state 'iterations' must be an integer >= 0, received "
                             f"{it!r}")
        slots = set(state) - {"iterations"}
        arrays = [np.asarray(state[k]) for k in sorted(slots)]
        for k, a in zip(sorted(slots), arrays):
            if a.ndim != 1 or a.dtype not in (np.float32, np.float64):
                raise ValueError(f"optimizer state {k!r} must be a 1-D float32 or float64 "
                                 f"array, received {a.dtype} of shape {a.shape}")
            if a.shape != arrays[0].shape or a.dtype != arrays[0].dtype:
                raise ValueError(f"optimizer state {k!r} ({a.dtype}, {a.shape}) differs from "
                                 f"the other slots ({arrays[0].dtype}, {arrays[0].shape})")
            if not np.isfinite(a).all():
                raise ValueError(f"optimizer state {k!r} holds NaN or infinity")
            if k in self._NONNEG_SLOTS and (a < 0).any():
                raise ValueError(f"optimizer state {k!r} (an average of squares) holds "
                                 f"negative values")
        if not slots and int(np.asarray(state["iterations"])) == 0:
            self.iterations = 0  # saved before its first step: nothing allocated yet
            return
        if slots != set(self._active_slots()):
            raise ValueError(f"optimizer state has slots {sorted(slots)}, {type(self).__name__} "
                             f"with this configuration expects {sorted(self._active_slots())}")
        if self._state is not None:
            for k in slots:
                a = np.asarray(state[k])
                if a.shape != self._state[k].shape or a.dtype != self._state[k].dtype:
                    raise ValueError(f"optimizer state {k!r} is {a.dtype} of shape "
                                     f"{a.shape}, the model's parameters need "
                                     f"{self._state[k].dtype} of shape {self._state[k].shape}")
                self._state[k][...] = a
        elif slots:
            from ..layers.base import copy_aligned
            self._state = {k: copy_aligned(np.asarray(state[k])) for k in slots}
            first = self._state[next(iter(slots))]
            self._size, self._dtype = first.shape[0], first.dtype
        # else: no slots (plain SGD): nothing to hold; the first step builds, the count stays
        self.iterations = int(np.asarray(state["iterations"]))

    # -- the step --------------------------------------------------------------------
    def _bind(self, model):
        """An optimizer's state follows one model's flat buffer: refuse a second model."""
        owner = self._owner() if self._owner is not None else None
        if owner is not None and owner is not model:
            raise ValueError(f"this {type(self).__name__} optimizer already updates model "
                             f"{owner.name!r}; its state (moments, step count) belongs to "
                             f"that model. Give model {model.name!r} its own optimizer, "
                             f"e.g. pynn.optimizers.{type(self).__name__}(...)")
        self._owner = weakref.ref(model)

    def apply_gradients(self, model):
        """One optimizer step on `model` from the gradients in its flat buffer (after
        model.backward): one fused kernel call per contiguous trainable run.

        The custom training step: out = model(x, training=True); loss, d =
        loss_fn.value_and_grad(y, out); model.backward(d); opt.apply_gradients(model).
        """
        if not hasattr(model, "_trainable_runs") or not getattr(model, "built", False):
            raise TypeError(f"apply_gradients takes a built pynn model, received "
                            f"{type(model).__name__}")
        self._bind(model)
        runs = model._trainable_runs()
        if runs:
            # another model sharing layers may have taken them since the backward: point them
            # back at this model's buffers (its gradients are still there) before the step
            model._own_weights()
            model._check_optimizer_layout(self)
            self.apply(model.ops, model._flat_params, model._flat_grads, runs, model._segs)
            self._model_layout = model._layout

    def apply(self, ops, params, grads, runs, segments=()):
        """One optimizer step in place.

        params, grads: the flat buffers; runs: [(start, stop)] contiguous trainable ranges;
        segments: [(start, stop)] of every trainable variable (for per-variable clipnorm).
        """
        if self._state is None:
            self.build(params.shape[0], params.dtype)
        if self.clipvalue is not None:
            for a, b in runs:
                np.clip(grads[a:b], -self.clipvalue, self.clipvalue, out=grads[a:b])
        if self.clipnorm is not None:
            for a, b in segments:
                ops.clip_by_global_norm(grads[a:b], self.clipnorm)
        if self.global_clipnorm is not None:
            if len(runs) == 1:
                a, b = runs[0]
                ops.clip_by_global_norm(grads[a:b], self.global_clipnorm)
            else:
                norm = float(np.sqrt(sum(ops.global_norm(grads[a:b]) ** 2 for a, b in runs)))
                if norm > self.global_clipnorm:
                    for a, b in runs:
                        grads[a:b] *= self.global_clipnorm / norm
        lr = self.learning_rate
        self.iterations += 1
        wd = self.weight_decay or 0.0
        for a, b in runs:
            self._update(ops, params[a:b], grads[a:b],
                         {k: v[a:b] for k, v in self._state.items()}, lr, wd)

    def _update(self, ops, p, g, state, lr, wd):
        raise NotImplementedError

    # -- config ----------------------------------------------------------------------
    def get_config(self):
        lr = self._lr
        if isinstance(lr, _schedules.LearningRateSchedule):
            lr = _schedules.serialize(lr)
        return {"name": self.name, "learning_rate": lr, "weight_decay": self.weight_decay,
                "clipnorm": self.clipnorm, "clipvalue": self.clipvalue,
                "global_clipnorm": self.global_clipnorm}

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        if isinstance(config.get("learning_rate"), dict):
            config["learning_rate"] = _schedules.deserialize(config["learning_rate"])
        return cls(**config)


class SGD(Optimizer):
    """v = momentum v - lr g; p += v (nesterov: p += momentum v - lr g)."""

    def __init__(self, learning_rate=0.01, momentum=0.0, nesterov=False, **kwargs):
        super().__init__(learning_rate, **kwargs)
        self.momentum = float(momentum)
        if not 0.0 <= self.momentum < 1.0:
            raise ValueError(f"momentum must be in [0, 1), received {momentum!r}")
        self.nesterov = bool(nesterov)

    def _active_slots(self):
        return ("velocity",) if self.momentum else ()

    def _update(self, ops, p, g, state, lr, wd):
        ops.sgd_update(p, g, state.get("velocity"), lr, momentum=self.momentum,
                       nesterov=self.nesterov, weight_decay=wd)

    def get_config(self):
        return {**super().get_config(), "momentum": self.momentum, "nesterov": self.nesterov}


def _epsilon(value):
    """epsilon > 0 and finite, checked when the optimizer is made (the kernels check it too,
    but only at the first step)."""
    return _checks.finite_scalar(value, "epsilon", low=0.0, low_open=True)


class Adam(Optimizer):
    slots = ("m", "v")

    def __init__(self, learning_rate=0.001, beta_1=0.9, beta_2=0.999, epsilon=1e-7, **kwargs):
        super().__init__(learning_rate, **kwargs)
        self.beta_1, self.beta_2 = float(beta_1), float(beta_2)
        self.epsilon = _epsilon(epsilon)
        for n, v in (("beta_1", self.beta_1), ("beta_2", self.beta_2)):
            if not 0.0 <= v < 1.0:
                raise ValueError(f"{n} must be in [0, 1), received {v!r}")

    def _update(self, ops, p, g, state, lr, wd):
        ops.adam_update(p, g, state["m"], state["v"], lr, beta_1=self.beta_1,
                        beta_2=self.beta_2, epsilon=self.epsilon, step=self.iterations,
                        weight_decay=wd)

    def get_config(self):
        return {**super().get_config(), "beta_1": self.beta_1, "beta_2": self.beta_2,
                "epsilon": self.epsilon}


class AdamW(Adam):
    """Adam with decoupled weight decay (Keras default 0.004)."""

    def __init__(self, learning_rate=0.001, weight_decay=0.004, **kwargs):
        super().__init__(learning_rate, weight_decay=weight_decay, **kwargs)


class RMSprop(Optimizer):
    def __init__(self, learning_rate=0.001, rho=0.9, momentum=0.0, epsilon=1e-7,
                 centered=False, **kwargs):
        super().__init__(learning_rate, **kwargs)
        self.rho, self.momentum = float(rho), float(momentum)
        self.epsilon = _epsilon(epsilon)
        self.centered = bool(centered)

    def _active_slots(self):
        return (("sq_avg",) + (("velocity",) if self.momentum else ())
                + (("mean_grad",) if self.centered else ()))

    def _update(self, ops, p, g, state, lr, wd):
        ops.rmsprop_update(p, g, state["sq_avg"], lr, rho=self.rho, epsilon=self.epsilon,
                           momentum=self.momentum, velocity=state.get("velocity"),
                           centered=self.centered, mean_grad=state.get("mean_grad"),
                           weight_decay=wd)

    def get_config(self):
        return {**super().get_config(), "rho": self.rho, "momentum": self.momentum,
                "epsilon": self.epsilon, "centered": self.centered}


class Adagrad(Optimizer):
    slots = ("accum",)

    def __init__(self, learning_rate=0.001, initial_accumulator_value=0.1, epsilon=1e-7,
                 **kwargs):
        super().__init__(learning_rate, **kwargs)
        # a negative or NaN start made every weight NaN at the first step, silently
        self.initial_accumulator_value = _checks.finite_scalar(
            initial_accumulator_value, "initial_accumulator_value", low=0.0)
        self.epsilon = _epsilon(epsilon)

    def build(self, size, dtype=np.float32):
        super().build(size, dtype)
        self._state["accum"][...] = self.initial_accumulator_value

    def _update(self, ops, p, g, state, lr, wd):
        ops.adagrad_update(p, g, state["accum"], lr, epsilon=self.epsilon, weight_decay=wd)

    def get_config(self):
        return {**super().get_config(), "initial_accumulator_value":
                self.initial_accumulator_value, "epsilon": self.epsilon}


_CLASSES = {c.__name__: c for c in (SGD, Adam, AdamW, RMSprop, Adagrad)}
_NAMES = {"sgd": SGD, "adam": Adam, "adamw": AdamW, "rmsprop": RMSprop, "adagrad": Adagrad}


def get(identifier):
    """Resolve a Keras name ('adam'), an Optimizer or a config dict."""
    if isinstance(identifier, Optimizer):
        return identifier
    if isinstance(identifier, str):
        return lookup(_NAMES, identifier.lower(), "optimizer")()
    if isinstance(identifier, dict):
        check_config(identifier, "optimizer")
        return deserialize(identifier)
    raise unknown(identifier, "optimizer", _NAMES, Optimizer)


def serialize(optimizer):
    return {"class_name": type(optimizer).__name__, "config": optimizer.get_config()}


# the user's own Optimizer subclasses while a model loads (load_model(custom_objects=...))
_USER = UserClasses("optimizer", Optimizer)


def custom_objects(objects):
    """Within the block, deserialize also knows these {class name: Optimizer subclass}."""
    return _USER.scope(objects)


def deserialize(config):
    cls = _USER.resolve(config.get("class_name"), _CLASSES)
    return cls.from_config(config.get("config", {}))
