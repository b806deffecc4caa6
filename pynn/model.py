"""Model and Sequential: the Keras-style model (compile/fit/evaluate/predict).

Memory (llm.c style): when a model is built, ONE contiguous buffer holds every parameter
(each layer's `params` are views into it, in Keras weight order), one more holds every
gradient, and the optimizer keeps one buffer per state slot; an optimizer step is one fused
kernel call per contiguous run of trainable parameters (usually one for the whole model).

Backends: a model runs its kernels through `pynn.ops.get_backend(backend)` ('c' by default,
or 'reference'; None takes the global pynn.ops backend when the model is built).

Output fusion: with a softmax output and (sparse_)categorical_crossentropy, or a sigmoid
output and binary_crossentropy, train and test steps stop at the logits and the loss runs
its fused logits kernel (stable, one pass); predict still applies the activation.
"""
import contextlib
import copy
import itertools
import json
import sys
import weakref

import numpy as np

from . import layers as _layers
from . import losses as _losses
from . import metrics as _metrics
from . import ops as _ops
from . import optim as _optim
from . import trainer as _trainer
from .layers import base as _base
from .layers.base import Layer, shape_tuple
from .layers.core import InputLayer

__all__ = ["Model", "Sequential", "Functional", "model_from_config", "load_model"]


class Model:
    """Base model: compile, the train/test steps, the custom-step methods (`model(x)`,
    `backward`, `zero_grad`) and the public Keras methods.

    `Model(inputs, outputs)` makes a graph model (Functional, pynn.functional). Subclasses
    provide `_layers` (every layer with weights, in weight order), `build(input_shape)`,
    `_run_backward` and config methods.
    """

    # a padding mask (Embedding(mask_zero=True)) travels through the layers: set at build
    _masking = False
    _out_mask = None      # the last forward's output mask, (B, T) or None
    _output_masked = False    # the output carries a mask (a nested model hands it on)

    @property
    def output_mask(self):
        """The padding mask (B, T) of the last forward's output (a sequence whose steps come
        from Embedding(mask_zero=True)), or None: in a custom step, weigh the loss with it as
        fit does (sample_weight over the positions)."""
        return self._out_mask

    def __init_subclass__(cls, **kwargs):
        # Keras' model subclassing (layers in __init__, the forward in call) has no backward
        # here: say so where the class is defined, not with an AttributeError at predict
        super().__init_subclass__(**kwargs)
        if "call" in vars(cls) and cls.__module__ != __name__:
            raise TypeError(f"{cls.__name__}: subclassing pynn.Model with a call() method "
                            f"(Keras' model subclassing) is not supported; build the model "
                            f"with pynn.Sequential([...]) or the functional API "
                            f"pynn.Model(inputs, outputs). A custom training step works on "
                            f"either: model(x, training=True), model.backward(dloss), "
                            f"optimizer.apply_gradients(model)")

    def __new__(cls, *args, **kwargs):
        if cls is Model and (len(args) >= 2 or "inputs" in kwargs or "outputs" in kwargs):
            return super().__new__(Functional)
        return super().__new__(cls)

    def __init__(self, name=None, backend=None, dtype=None):
        self.name = name or _layers.base._unique_name(
            _layers.base._snake(type(self).__name__))
        if backend is not None and backend not in _ops.BACKENDS:
            raise ValueError(f"unknown backend {backend!r}: expected one of {_ops.BACKENDS}")
        self.backend = backend
        self.dtype = np.dtype(dtype or np.float32)
        if self.dtype not in (np.float32, np.float64):
            raise TypeError(f"dtype must be float32 or float64, received {dtype!r}")
        self.ops = None
        self.built = False
        self.compiled = False
        self.optimizer = None
        self.loss = None
        self.metrics = []
        self._metric_weighted = []
        self._metric_names = []
        self._weighted_metric_names = []
        self.stop_training = False
        self.history = None
        self.input_shape = None
        self.output_shape = None
        self._flat_params = None
        self._flat_grads = None
        self._segments = []
        self._runs_key = None
        self._bufs = {}
        self._layers = []
        self._scratch = {}
        self._last_out = None
        self._infer_steps = None    # inference plan of _forward (see _inference_steps)
        self._keep_caches = False   # __call__: layers keep what backward needs

    @property
    def trainable(self):
        """False when no layer is trainable; setting it sets every layer."""
        return any(layer.trainable for layer in self._layers)

    @trainable.setter
    def trainable(self, value):
        for layer in self._layers:
            layer.trainable = bool(value)

    # -- building --------------------------------------------------------------------
    def _ensure_built(self, x_shape):
        if not self.built:
            self.build((None,) + tuple(x_shape[1:]))

    def _units(self):
        """Layers and nested built models, in weight order."""
        return self._layers

    def _flatten_parameters(self):
        """Move every layer's weights into one flat buffer (and grads into another).
        A nested built model's buffers become a contiguous slice of these."""
        total = sum(u._flat_params.size if isinstance(u, Model) else
                    sum(w.size for w in u.params.values()) for u in self._units())
        # on a cache line: a weight whose offset and row length are multiples of 16 floats
        # (in a Transformer block all of them: its kernels of 128 or 512 units, their
        # biases, the layer norms' 128) then has every row on a line, which the GEMM reads
        # in place (Layer's empty_aligned)
        flat = _layers.base.empty_aligned(total, self.dtype)
        gflat = _layers.base.zeros_aligned(total, self.dtype)
        a = 0
        for u in self._units():
            if isinstance(u, Model):
                b = a + u._flat_params.size
                flat[a:b] = u._flat_params
                gflat[a:b] = u._flat_grads
                u._rebase(flat[a:b], gflat[a:b])
                a = b
                continue
            for k, w in list(u.params.items()):
                b = a + w.size
                flat[a:b] = w.reshape(-1)
                u._repoint(k, flat[a:b].reshape(w.shape), gflat[a:b].reshape(w.shape))
                a = b
        self._rebase(flat, gflat)

    def _rebase(self, flat, gflat):
        """Point every layer's params/grads at views of `flat`/`gflat` (same layout)."""
        segments, a = [], 0
        for layer in self._layers:
            for k, w in list(layer.params.items()):
                b = a + w.size
                flat[a:b] = w.reshape(-1)
                layer._repoint(k, flat[a:b].reshape(w.shape), gflat[a:b].reshape(w.shape))
                segments.append((a, b, layer, k))
                a = b
        self._flat_params, self._flat_grads, self._segments = flat, gflat, segments
        # which variable sits where in the flat buffers: an optimizer's state follows it
        self._layout = tuple((a, b, _layer_uid(layer), k) for a, b, layer, k in segments)
        _REBASES[0] += 1
        self._owned_at = _REBASES[0]
        self._scratch = {}
        self._runs_key = None

    def __deepcopy__(self, memo):
        """An independent copy: its layers view its own flat buffers (NumPy copies views as
        standalone arrays) and its optimizer copy, state included, belongs to it (the copied
        optimizer still named the original model as its owner, so the copy could not train)."""
        new = type(self).__new__(type(self))
        memo[id(self)] = new
        for k, v in self.__dict__.items():
            new.__dict__[k] = copy.deepcopy(v, memo)
        if new.__dict__.get("_flat_params") is not None:
            new._rebase(_layers.base.copy_aligned(new._flat_params),
                        _layers.base.copy_aligned(new._flat_grads))
        if "_shared" in new.__dict__:   # a graph's shared layers, by id: the copies' ids
            new._shared = {id(memo[i]) for i in self._shared if i in memo}
        opt = new.__dict__.get("optimizer")
        if opt is not None:
            opt._owner = None
            if getattr(opt, "_model_layout", None) is not None:
                opt._model_layout = new._layout
        return new

    def _own_weights(self):
        """Point this model's layers back at its own flat buffers, their current values
        copied in, if a model built later on some of the same layers took them (Keras models
        share layers: an encoder Model over an autoencoder's first layers). Training writes
        the gradients and the optimizer step into this model's buffers, so it must own them;
        the check is one comparison unless some model re-pointed layers since."""
        if self._flat_params is None or getattr(self, "_owned_at", None) == _REBASES[0]:
            return
        flat = self._flat_params
        base, size = flat.__array_interface__["data"][0], flat.itemsize
        if any(b > a and layer.params[k].__array_interface__["data"][0] != base + a * size
               for a, b, layer, k in self._segments):
            self._rebase(flat, self._flat_grads)
        self._owned_at = _REBASES[0]

    def _trainable_runs(self):
        """[(start, stop)] contiguous trainable ranges, per-variable segments, and the
        index of the first layer that needs a backward pass (cached on trainable flags)."""
        key = tuple(layer.trainable for layer in self._layers)
        if key != self._runs_key:
            runs, segs = [], []
            for a, b, layer, k in self._segments:
                if layer.trainable and layer._weight_info[k][1] and b > a:
                    segs.append((a, b))
                    if runs and runs[-1][1] == a:
                        runs[-1] = (runs[-1][0], b)
                    else:
                        runs.append((a, b))
            first = next((i for i, layer in enumerate(self._layers)
                          if layer.trainable and layer.params), len(self._layers))
            for i, layer in enumerate(self._layers):
                layer._need_dx = i > first
            self._runs, self._segs, self._first = runs, segs, first
            self._has_reg = any(reg is not None for layer in self._layers
                                for reg, _ in layer._weight_info.values())
            self._runs_key = key
        return self._runs

    @property
    def trainable_weights(self):
        return [w for layer in self._layers for w in layer.trainable_weights]

    @property
    def weights(self):
        return [w for layer in self._layers for w in layer.weights]

    def count_params(self):
        return int(sum(layer.count_params() for layer in self._layers))

    def get_layer(self, name=None, index=None):
        """A layer (or nested model) of `layers` by name or by index."""
        if (name is None) == (index is None):
            raise ValueError("get_layer takes exactly one of name= and index=")
        if index is not None:
            return self.layers[index]
        for layer in self.layers:
            if layer.name == name:
                return layer
        raise ValueError(f"no layer named {name!r} in model {self.name!r}; layers: "
                         f"{[layer.name for layer in self.layers]}")

    def get_weights(self):
        """All weights in Keras order (layer by layer, kernel then bias), as copies."""
        self._assert_built("get_weights")
        return [w for layer in self._layers for w in layer.get_weights()]

    def set_weights(self, weights):
        self._assert_built("set_weights")
        weights = list(weights)
        n = sum(len(layer.params) for layer in self._layers)
        if len(weights) != n:
            raise ValueError(f"model {self.name!r} has {n} weight arrays, received {len(weights)}")
        i = 0
        for layer in self._layers:
            k = len(layer.params)
            layer.set_weights(weights[i:i + k])
            i += k

    # -- compile ---------------------------------------------------------------------
    def compile(self, optimizer="rmsprop", loss=None, metrics=None, loss_weights=None,
                weighted_metrics=None, run_eagerly=None, jit_compile=None, backend=None):
        """Set optimizer, loss and metrics (names, objects or config dicts)."""
        if loss is None:
            raise ValueError("compile needs a loss, e.g. loss='sparse_categorical_crossentropy'")
        if backend is not None and backend not in _ops.BACKENDS:
            raise ValueError(f"unknown backend {backend!r}: expected one of {_ops.BACKENDS}")
        # everything is resolved and checked before the model changes: a refused compile
        # leaves the previous one in place
        self._check_compilable()
        if loss_weights is not None:
            # one output, one loss: only the weight that leaves it as it is (it was ignored,
            # whatever it was)
            ws = (list(loss_weights.values()) if isinstance(loss_weights, dict)
                  else list(loss_weights) if isinstance(loss_weights, (list, tuple))
                  else [loss_weights])
            try:
                one = len(ws) == 1 and float(ws[0]) == 1.0
            except (TypeError, ValueError):
                one = False
            if not one:
                raise ValueError(f"loss_weights={loss_weights!r}: a pynn model has one output "
                                 f"and one loss, so only a weight of 1 is accepted; to weigh "
                                 f"the loss, scale the learning rate or use a custom loss")
        opt = _optim.get(optimizer)
        loss_obj = _losses.get(loss)
        for arg, val in (("metrics", metrics), ("weighted_metrics", weighted_metrics)):
            if isinstance(val, (dict, str)):
                raise ValueError(f"{arg} must be a list of names or Metric objects, received "
                                 f"{val!r}; e.g. {arg}=['accuracy']")
        metrics, weighted_metrics = list(metrics or []), list(weighted_metrics or [])
        # as Keras: `metrics` ignore sample_weight/class_weight, `weighted_metrics` apply them
        # (named weighted_<name> where the name is taken)
        plain = [_metrics.get(m, loss_obj) for m in metrics]
        weighted = [_metrics.get(m, loss_obj) for m in weighted_metrics]
        objs = plain + weighted
        if len({id(m) for m in objs}) != len(objs):
            raise ValueError("the same Metric object appears twice in metrics/weighted_metrics; "
                             "give each entry its own object")
        for m in objs:
            _metrics.check_targets(m, loss_obj)
        names = [m.name for m in plain]
        taken = {"loss"} | set(names)
        for m in weighted:
            names.append("weighted_" + m.name if m.name in taken else m.name)
            taken.add(names[-1])
        if len(set(names)) != len(names):
            raise ValueError(f"two metrics share a name: {names}; give them different names")
        for m, name in zip(objs, names):
            m.name = name
        if backend is not None:
            self.backend = backend
            if self.built:
                self.ops = _ops.get_backend(backend)
                for layer in self._layers:
                    layer.ops = self.ops
        self.optimizer, self.loss, self.metrics = opt, loss_obj, objs
        self._metric_weighted = [False] * len(plain) + [True] * len(weighted)
        self._metric_names = [m if isinstance(m, str) else _metrics.serialize(m) for m in metrics]
        self._weighted_metric_names = [m if isinstance(m, str) else _metrics.serialize(m)
                                       for m in weighted_metrics]
        self._loss_tracker = _metrics.Mean(name="loss")
        self.compiled = True
        self._setup_fusion()

    def _check_compilable(self):
        """Raise if compile/fit cannot train this model at all (a graph model: several
        outputs), before compile changes anything."""

    def _assert_compiled(self, what):
        if not self.compiled:
            raise ValueError(f"You must call compile() before {what}(): "
                               f"model.compile(optimizer='adam', loss=..., metrics=[...])")

    def _assert_built(self, what):
        if not self.built:
            raise ValueError(f"model {self.name!r} is not built yet, so {what} has nothing to "
                             f"work on: give the first layer input_shape=, call "
                             f"model.build(input_shape) or fit/predict once")

    def _setup_fusion(self):
        """Decide whether the output activation fuses into the loss kernel."""
        self._fused = False
        self._out_act = None
        if not self.compiled or not self._layers:
            return
        last = self._output_layer()
        act = last.activation if getattr(last, "_fusable_output", False) else None
        if act is not None and not self.loss.from_logits:
            _, fused = self.loss.kernels(act.name)
            if fused:
                self._fused = True
                self._out_act = act
        self._metrics_on_logits = all(m.argmax_invariant for m in self.metrics)

    def get_compile_config(self):
        """JSON-able: optimizer config, loss and metric names (for saving); None for a model
        that was never compiled (as in Keras: it saves and loads uncompiled)."""
        if not self.compiled:
            return None
        return {"optimizer": _optim.serialize(self.optimizer),
                "loss": _losses.serialize(self.loss),
                "metrics": list(self._metric_names),
                "weighted_metrics": list(self._weighted_metric_names)}

    def compile_from_config(self, config):
        self.compile(optimizer=_optim.deserialize(config["optimizer"]),
                     loss=_losses.deserialize(config["loss"]),
                     metrics=[m if isinstance(m, str) else _metrics.deserialize(m)
                              for m in config.get("metrics") or []],
                     weighted_metrics=[m if isinstance(m, str) else _metrics.deserialize(m)
                                       for m in config.get("weighted_metrics") or []])

    # -- the steps -------------------------------------------------------------------
    def _targets(self, y):
        return self.loss.prepare_targets(y, tuple(self.output_shape[1:]), self.dtype)

    def _forward(self, x, training):
        stamp = next(_FORWARD_RUNS)
        self._out_mask = None
        if self._masking:
            return self._forward_masked(x, training, stamp)
        if training or self._keep_caches:
            for layer in self._layers:
                _stamp(layer, stamp)
                x = layer.forward(x, training=training)
            return x
        # inference (predict, evaluate): a Conv2D feeding a MaxPooling2D runs as one kernel,
        # and layers skip what only backward needs
        with _base.inference_only():
            for step in self._infer_steps or self._inference_steps():
                for layer in step:
                    _stamp(layer, stamp)
                if len(step) == 2:
                    x = step[0].forward_max_pool(x, step[1])
                else:
                    x = step[0].forward(x, training=False)
        return x

    def _forward_masked(self, x, training, stamp):
        """The forward of a stack through which a padding mask travels (see Layer.compute_mask):
        each layer that takes it gets its input's mask; the output's is kept for the loss."""
        mask = None
        with _base.inference_only() if not (training or self._keep_caches) else \
                contextlib.nullcontext():
            for layer in self._layers:
                _stamp(layer, stamp)
                xin = x
                if mask is not None and layer._takes_mask:
                    x = layer.forward(x, training=training, mask=mask)
                else:
                    x = layer.forward(x, training=training)
                mask = layer.compute_mask(xin, mask)
        self._out_mask = mask
        return x

    def _inference_steps(self):
        """The layers grouped for inference: (conv, pool) pairs that fuse, else (layer,)."""
        steps, layers, i = [], self._layers, 0
        while i < len(layers):
            fuse = getattr(layers[i], "fuses_max_pool", None)
            if i + 1 < len(layers) and fuse is not None and fuse(layers[i + 1]):
                steps.append((layers[i], layers[i + 1]))
                i += 2
            else:
                steps.append((layers[i],))
                i += 1
        self._infer_steps = steps
        return steps

    def _output_layer(self):
        """The layer making the output, whose activation may fuse into the loss (or None)."""
        return self._layers[-1]

    def _set_logits(self, on):
        if self._fused:
            self._output_layer()._output_logits = on

    def _buf(self, key, shape):
        k = (key, shape)
        b = self._bufs.get(k)
        if b is None:
            b = self._bufs[k] = _layers.base.empty_aligned(shape, self.dtype)
        return b

    def _metric_input(self, out):
        if not self._fused or self._metrics_on_logits:
            return out
        return self._out_act.forward(self.ops, out, out=self._buf("probs", out.shape))

    def _masked_rows(self, out, y, sw, metric=False):
        """Without an output mask: (out, y, sw). With one (B, T) (a sequence output whose
        steps come from Embedding(mask_zero=True)): the positions as rows, (B*T, ...), and
        per-row weights, 0 at masked positions; for the loss scaled by B*T / (unmasked
        positions), so that its mean is over the real positions (Keras' masked loss), times
        sample_weight where given."""
        m = self._out_mask
        if m is None:
            return out, y, sw
        b, t = m.shape
        if out.ndim < 3 or out.shape[:2] != (b, t):
            raise ValueError(f"model {self.name!r}: the output mask {m.shape} does not match "
                             f"the output {out.shape}")
        y = np.asarray(y)
        if y.shape[:2] != (b, t):
            raise ValueError(f"model {self.name!r}: targets of shape {y.shape} for a sequence "
                             f"output of shape {out.shape}: the batch and step axes must match")
        w = m.reshape(-1).astype(self.dtype)
        if not metric:
            valid = w.sum()
            w *= (b * t) / valid if valid else 0.0
        if sw is not None:
            w *= np.repeat(np.asarray(sw, dtype=self.dtype), t)
        return (out.reshape((b * t,) + out.shape[2:]), y.reshape((b * t,) + y.shape[2:]), w)

    def _update_metrics(self, out, y, sw):
        p = self._metric_input(out)
        for m, w in zip(self.metrics, self._metric_weighted):
            pr, yr, swr = self._masked_rows(p, y, sw if w else None, metric=True)
            if type(m).update_state is not _metrics.Metric.update_state:
                m.update_state(yr, pr, swr)     # a Keras-style metric of one's own
            else:
                m.update(self.ops, pr, yr, swr)

    def _forward_backward(self, x, y, sw):
        """Forward in training mode, loss, backward into the flat gradient buffer.
        Returns (output, loss). The output is logits under a fused output activation."""
        self._trainable_runs()
        self._set_logits(True)
        try:
            out = self._forward(x, training=True)
            o, yr, swr = self._masked_rows(out, y, sw)
            loss = self.loss.forward(self.ops, o, yr, swr, fused=self._fused)
            dy = self.loss.backward(self.ops, o, yr, swr, fused=self._fused,
                                    out=self._buf("dout", out.shape).reshape(o.shape))
            self._run_backward(dy.reshape(out.shape), need_input_grad=False)
            loss += self.add_regularization()
        finally:
            self._set_logits(False)
        return out, loss

    def _train_step(self, x, y, sw):
        self.optimizer._bind(self)
        self._own_weights()
        out, loss = self._forward_backward(x, y, sw)
        n = _trainer.batch_len(x)
        self._loss_tracker.add(loss, n)
        if self.metrics:
            self._update_metrics(out, y, sw)
        if self._runs:
            self._check_optimizer_layout()
            self.optimizer.apply(self.ops, self._flat_params, self._flat_grads, self._runs,
                                 self._segs)
            self.optimizer._model_layout = self._layout

    def _check_optimizer_layout(self, opt=None):
        """Refuse an optimizer whose state (moments, step count) was made for another
        arrangement of this model's weights: layers added, removed or replaced since (the
        state would be read against the wrong weights, or not fit)."""
        opt = self.optimizer if opt is None else opt
        if opt._state is None:
            return
        seen = getattr(opt, "_model_layout", None)
        if opt._size != self._flat_params.shape[0] or (
                seen is not None and seen is not self._layout and seen != self._layout):
            raise ValueError(f"the {type(opt).__name__} optimizer's state (moments, step "
                             f"count) was made for an earlier set of model {self.name!r}'s "
                             f"weights ({opt._size} parameters; now "
                             f"{self._flat_params.shape[0]}): layers were added, removed or "
                             f"replaced since. Compile again with a new optimizer, e.g. "
                             f"model.compile(optimizer='{type(opt).__name__.lower()}', ...)")

    def _test_step(self, x, y, sw):
        self._set_logits(True)
        try:
            out = self._forward(x, training=False)
            o, yr, swr = self._masked_rows(out, y, sw)
            loss = self.loss.forward(self.ops, o, yr, swr, fused=self._fused)
            if self.metrics:
                self._update_metrics(out, y, sw)
        finally:
            self._set_logits(False)
        if self._trainable_runs() is not None and self._has_reg:
            loss += sum(layer.regularization_penalty() for layer in self._layers)
        self._loss_tracker.add(loss, _trainer.batch_len(x))

    def _reset_metrics(self):
        self._loss_tracker.reset_state()
        for m in self.metrics:
            m.reset_state()

    def _logs(self):
        logs = {"loss": self._loss_tracker.result()}
        for m in self.metrics:
            logs[m.name] = m.result()
        return logs

    @property
    def metrics_names(self):
        return ["loss"] + [m.name for m in self.metrics]

    # -- public API ------------------------------------------------------------------
    def fit(self, x=None, y=None, batch_size=None, epochs=1, verbose="auto", callbacks=None,
            validation_split=0.0, validation_data=None, shuffle=True, class_weight=None,
            sample_weight=None, initial_epoch=0, steps_per_epoch=None,
            validation_batch_size=None, validation_freq=1, seed=None):
        """Train for `epochs` epochs (from `initial_epoch`); returns a History. `callbacks`:
        a list of Callbacks, or a single one (as Keras takes it)."""
        return _trainer.fit(self, x, y, batch_size, epochs, verbose, callbacks,
                            validation_split, validation_data, shuffle, class_weight,
                            sample_weight, initial_epoch, steps_per_epoch,
                            validation_batch_size, validation_freq, seed)

    def evaluate(self, x=None, y=None, batch_size=None, verbose="auto", sample_weight=None,
                 steps=None, callbacks=None, return_dict=False):
        """Loss (and metrics) over (x, y): a float, or [loss, *metrics]."""
        return _trainer.evaluate(self, x, y, batch_size, verbose, sample_weight, steps,
                                 callbacks, return_dict)

    def predict(self, x, batch_size=None, verbose="auto", steps=None, callbacks=None):
        """Model outputs for x, batched (a new array)."""
        return _trainer.predict(self, x, batch_size, verbose, steps, callbacks)

    def train_on_batch(self, x, y=None, sample_weight=None, class_weight=None,
                       return_dict=False):
        """One optimizer step on one batch; returns loss or [loss, *metrics] of that batch."""
        self._assert_compiled("train_on_batch")
        x = _trainer.as_inputs(self, x)
        y = self._targets(_trainer._check_lengths(x, y))
        sw = _trainer.sample_weights(self, y, _trainer.batch_len(x), sample_weight, class_weight)
        self._reset_metrics()
        self._train_step(x, y, sw)
        return self._result(return_dict)

    def test_on_batch(self, x, y=None, sample_weight=None, return_dict=False):
        self._assert_compiled("test_on_batch")
        x = _trainer.as_inputs(self, x)
        y = self._targets(_trainer._check_lengths(x, y))
        sw = _trainer.sample_weights(self, y, _trainer.batch_len(x), sample_weight)
        self._reset_metrics()
        self._test_step(x, y, sw)
        return self._result(return_dict)

    def predict_on_batch(self, x):
        x = _trainer.as_inputs(self, x)
        return _copy(self._forward(x, training=False))

    def _result(self, return_dict):
        logs = self._logs()
        if return_dict:
            return logs
        vals = list(logs.values())
        return vals[0] if len(vals) == 1 else vals

    # -- custom training steps ------------------------------------------------------
    def __call__(self, x, *args, training=None, **kwargs):
        """On arrays: the forward pass (training=True for dropout/batch statistics), keeping
        what `backward` needs; returns a new array (a list for several outputs).
        On symbolic tensors: records this model as one node of a graph model; training=
        True/False there fixes its mode in that graph (base(x, training=False) keeps a
        fine-tuned base's BatchNormalization in inference mode during fit), as in Keras."""
        from . import functional
        if functional.is_symbolic(x, args, kwargs):
            if kwargs:
                raise TypeError(f"model {self.name!r} takes no call keyword arguments, "
                                f"received {sorted(kwargs)}")
            return functional.call(self, x, args, {}, training)
        training = bool(training)
        if args:
            x = [x, *args]
        x = _trainer.as_inputs(self, x)
        self._own_weights()         # backward writes the gradients into this model's buffer
        self._trainable_runs()
        self._keep_caches = True    # backward(dout) may follow, also after training=False
        try:
            out = self._forward(x, training=training)
        finally:
            self._keep_caches = False
        self._last_out = out
        self._run_stamps = _stamps(self._layers)
        return _copy(out)

    def backward(self, dout, accumulate=False, params=True):
        """Backward pass after `model(x, training=True)`: writes the gradients of the
        parameters into the model's flat gradient buffer (accumulate=True adds to them;
        params=False leaves them untouched) and returns d(loss)/d(input) (a list for
        several inputs; a new array). dout: d(loss)/d(output), e.g. from loss.value_and_grad."""
        last = getattr(self, "_last_out", None)
        if last is None:
            raise ValueError(f"model {self.name!r}: call model(x, training=True) before "
                             f"backward(dout)")
        if _stamps(self._layers) != self._run_stamps:
            raise RuntimeError(f"model {self.name!r}: its layers ran again (predict, evaluate, "
                               f"or another model sharing them) after model(x), so their "
                               f"caches no longer belong to it; call model(x, "
                               f"training=True) again right before backward(dout)")
        outs = last if isinstance(last, list) else [last]
        douts = dout if isinstance(dout, (list, tuple)) else [dout]
        if len(douts) != len(outs):
            raise ValueError(f"model {self.name!r} has {len(outs)} output(s), received "
                             f"{len(douts)} output gradient(s)")
        ds = []
        for o, d in zip(outs, douts):
            if d is None and len(outs) > 1:     # no gradient from this output
                ds.append(None)
                continue
            d = np.asarray(d)
            if d.dtype.kind not in "fiub":
                raise TypeError(f"dout must be numeric, received dtype {d.dtype}")
            if d.shape != o.shape:
                raise ValueError(f"dout has shape {d.shape}, the last output of model "
                                 f"{self.name!r} has shape {o.shape}")
            ds.append(np.ascontiguousarray(d, dtype=self.dtype))
        self._trainable_runs()
        redirect = accumulate or not params
        if redirect:
            scratch = self._scratch_grads("redirect")
            scratch[...] = 0
            saved = self._swap_grads(scratch)
        elif any(d is None for d in ds):
            # layers that only an output without a gradient reaches run no backward: their
            # gradient is 0, not what an earlier backward left
            self._flat_grads[...] = 0
        try:
            dx = self._run_backward(ds if isinstance(last, list) else ds[0],
                                    need_input_grad=True)
        finally:
            if redirect:
                self._restore_grads(saved)
        if accumulate and params:
            self._flat_grads += scratch
        if isinstance(dx, list):
            return [None if d is None else d.copy() for d in dx]
        return None if dx is None else dx.copy()     # a new array: layer buffers get reused

    def add_regularization(self):
        """Add the gradients of the layers' regularizer penalties (kernel_regularizer, ...)
        to the flat gradient buffer and return the total penalty, as fit does after each
        backward: in a custom step, call it after `backward` and add the result to the loss.
        Returns 0.0 (and changes nothing) when no layer has a regularizer."""
        self._assert_built("add_regularization")
        self._own_weights()   # the penalty gradients go into this model's buffer
        self._trainable_runs()
        penalty = 0.0
        if self._has_reg:
            for layer in self._layers:
                penalty += layer.regularization_penalty()
                layer.add_regularization_gradients()
        return penalty

    def zero_grad(self):
        """Set the model's flat gradient buffer to zero."""
        self._assert_built("zero_grad")
        self._flat_grads[...] = 0

    def _scratch_grads(self, key):
        b = self._scratch.get(key)
        if b is None:
            b = self._scratch[key] = np.zeros_like(self._flat_grads)
        return b

    def _swap_grads(self, buf, layers=None):
        """Point layers' grads at views of `buf` (same layout); returns the old dicts."""
        want = None if layers is None else {id(layer) for layer in layers}
        saved = {}
        for a, b, layer, k in self._segments:
            if want is not None and id(layer) not in want:
                continue
            if id(layer) not in saved:
                saved[id(layer)] = (layer, layer.grads)
                layer.grads = dict(layer.grads)
            layer.grads[k] = buf[a:b].reshape(layer.grads[k].shape)
        return saved

    @staticmethod
    def _restore_grads(saved):
        for layer, grads in saved.values():
            layer.grads = grads

    def summary(self, line_length=None, positions=None, print_fn=None, expand_nested=False,
                show_trainable=False, layer_range=None):
        """Print layers with output shapes and parameter counts, then the totals.

        Keras 3's arguments, in its order: line_length (default 72); positions, the
        increasing ends of the name, shape and count columns (fractions of line_length when
        the last is <= 1; a column never gets narrower than its header or entries);
        print_fn (called once with the whole table); expand_nested lists the layers of a
        nested model under it, indented; show_trainable adds a Trainable column (Y/N);
        layer_range, (first name, last name), prints only those layers, both included.
        """
        print_fn = print_fn or (lambda s: print(s, file=sys.stdout))
        line_length = 72 if line_length is None else int(line_length)
        layers = list(self.layers)
        if layer_range is not None:
            names = [layer.name for layer in layers]
            if (not isinstance(layer_range, (list, tuple)) or len(layer_range) != 2
                    or any(n not in names for n in layer_range)):
                raise ValueError(f"layer_range must be (first layer name, last layer name) of "
                                 f"model {self.name!r}, received {layer_range!r}; layers: "
                                 f"{names}")
            a, b = names.index(layer_range[0]), names.index(layer_range[1])
            if a > b:
                raise ValueError(f"layer_range {tuple(layer_range)!r}: {layer_range[0]!r} "
                                 f"comes after {layer_range[1]!r} in model {self.name!r}")
            layers = layers[a:b + 1]

        def rows_of(model, layers, depth):
            for layer in layers:
                yield ("  " * depth + f"{layer.name} ({type(layer).__name__})",
                       str(layer.output_shape) if layer.built else "?",
                       f"{layer.count_params():,}",
                       model._inbound(layer) if depth == 0 else [],
                       "Y" if layer.trainable else "N")
                if expand_nested and isinstance(layer, Model):
                    yield from rows_of(layer, layer.layers, depth + 1)
        rows = list(rows_of(self, layers, 0))
        # columns widen past their share of line_length to fit long names and list shapes
        # every column fits its header and its widest entry, with 2 spaces after
        fit0 = [len("Layer (type)") + 2] + [len(r[0]) + 2 for r in rows]
        fit1 = [len("Output Shape") + 2] + [len(r[1]) + 2 for r in rows]
        fit2 = [len("Param #") + 2] + [len(r[2]) + 2 for r in rows]
        w0 = max([line_length * 45 // 100] + fit0)
        w1 = max([line_length * 35 // 100] + fit1)
        w2 = max(fit2)
        if positions is not None:
            pos = list(positions)
            if (not 1 <= len(pos) <= 4
                    or any(isinstance(v, bool) or not isinstance(v, (int, float)) or v <= 0
                           for v in pos)
                    or any(b <= a for a, b in zip(pos, pos[1:]))):
                raise ValueError(f"positions must be 1 to 4 increasing positive column ends "
                                 f"(fractions of line_length when the last is <= 1), "
                                 f"received {positions!r}")
            if pos[-1] <= 1:                                     # Keras' rule
                pos = [int(line_length * v) for v in pos]
            ends = [int(v) for v in pos[:3]] + [None] * (3 - len(pos[:3]))
            # a column still fits its header and widest entry (Keras would cut it); a 4th
            # position (the Trainable column's end) is accepted, that column fits its header
            w0 = max([ends[0]] + fit0)
            if ends[1] is not None:
                w1 = max([ends[1] - w0] + fit1)
            if ends[2] is not None:
                w2 = max([ends[2] - w0 - w1] + fit2)
        extra = "Trainable" if show_trainable else ""
        line_length = max(line_length, w0 + w1 + (w2 if show_trainable else len("Param #"))
                          + len(extra))
        rule = "_" * line_length
        count_head = f"{'Param #':<{w2}}" if show_trainable else "Param #"
        lines = [f'Model: "{self.name}"', rule,
                 f"{'Layer (type)':<{w0}}{'Output Shape':<{w1}}{count_head}{extra}",
                 "=" * line_length]
        for name, shape, count, inbound, trainable in rows:
            count = f"{count:<{w2}}{trainable}" if show_trainable else count
            lines.append(f"{name:<{w0}}{shape:<{w1}}{count}"
                         + (f"  <- {', '.join(inbound)}" if inbound else ""))
        lines.append("=" * line_length)
        total = self.count_params()
        trainable = sum(w.size for w in self.trainable_weights)
        itemsize = self.dtype.itemsize
        lines += [f"Total params: {total:,} ({_size(total * itemsize)})",
                  f"Trainable params: {trainable:,} ({_size(trainable * itemsize)})",
                  f"Non-trainable params: {total - trainable:,} "
                  f"({_size((total - trainable) * itemsize)})", rule]
        print_fn("\n".join(lines))

    def _inbound(self, layer):
        """Names of the tensors a layer is called on (graph models, for summary)."""
        return []

    # -- saving (file format: pynn.io) -----------------------------------------------
    @property
    def build_input_shape(self):
        """The input shape the model was built for (None before it is built)."""
        return self.input_shape if self.built else None

    def save(self, filepath, overwrite=True, include_optimizer=True):
        """Write architecture, compile config, weights and optimizer state (pynn.io)."""
        from . import io
        _check_overwrite(filepath, overwrite)
        return io.save_model(self, filepath, include_optimizer=include_optimizer)

    def save_weights(self, filepath, overwrite=True):
        from . import io
        _check_overwrite(filepath, overwrite)
        return io.save_weights(self, filepath)

    def load_weights(self, filepath):
        from . import io
        return io.load_weights(self, filepath)

    def to_json(self):
        return json.dumps(self.get_config())


def _copy(out):
    return [o.copy() for o in out] if isinstance(out, list) else out.copy()


def _check_overwrite(filepath, overwrite):
    import os
    if not overwrite and os.path.exists(filepath):
        raise FileExistsError(f"{filepath} exists and overwrite=False")


def _size(nbytes):
    for unit in ("B", "KB", "MB", "GB"):
        if nbytes < 1024 or unit == "GB":
            return f"{nbytes:.2f} {unit}" if unit != "B" else f"{nbytes} B"
        nbytes /= 1024


class Sequential(Model):
    """A linear stack of layers.

    Parameters
    ----------
    layers : list of Layer, optional
    name : str, optional
    backend : {'c', 'reference'}, optional
        Kernel backend of this model (None: the global pynn.ops backend at build time).
    dtype : {'float32', 'float64'}, optional
        Parameter and computation dtype (float64 is for gradient checks).
    """

    def __init__(self, layers=None, name=None, backend=None, dtype=None, trainable=True):
        super().__init__(name=name, backend=backend, dtype=dtype)
        for layer in layers or []:
            self.add(layer)
        if not trainable:
            self.trainable = False

    @property
    def layers(self):
        return [layer for layer in self._layers if not isinstance(layer, InputLayer)]

    def add(self, layer):
        """Append a layer (a first layer with input_shape= declares the model input)."""
        from .functional import KerasTensor
        if isinstance(layer, KerasTensor):
            if not isinstance(layer.node.op, InputLayer):
                raise TypeError(f"Sequential.add takes layers or a pynn.Input, received the "
                                f"symbolic output {layer!r}; build a pynn.Model instead")
            layer = layer.node.op
        if not isinstance(layer, Layer):
            raise TypeError(f"Sequential.add takes a pynn layer, received "
                            f"{type(layer).__name__}: {layer!r}")
        if isinstance(layer, InputLayer) and self._layers:
            raise ValueError("an Input/InputLayer can only be the first layer of a Sequential")
        if any(layer is other for other in self._layers):
            raise ValueError(f"layer {layer.name!r} is already in this model")
        if not self._layers and not isinstance(layer, InputLayer) and layer.input_shape_arg:
            self._layers.append(InputLayer(shape=layer.input_shape_arg,
                                           name=_layers.base._unique_name("input_layer")))
        self._layers.append(layer)
        self._unbuild()
        if len(self._layers) > 1 and isinstance(self._layers[0], InputLayer):
            self.build((None,) + self._layers[0].input_shape_arg)

    def pop(self, rebuild=True):
        """Remove the last layer and return it; rebuild=False (Keras 3) leaves the model
        unbuilt until its next build or call."""
        if not self.layers:
            raise ValueError("there is no layer to pop")
        layer = self._layers.pop()
        self._unbuild()
        if (rebuild and self._layers and isinstance(self._layers[0], InputLayer)
                and len(self._layers) > 1):
            self.build((None,) + self._layers[0].input_shape_arg)
        return layer

    def _unbuild(self):
        if self.built:
            for layer in self._layers:  # weights keep their values, out of the old buffer
                for k in list(layer.params):
                    layer._repoint(k, layer.params[k].copy(), layer.grads[k].copy())
        self.built = False
        self._flat_params = None
        self._infer_steps = None
        _REBASES[0] += 1  # the layers left this buffer: a model sharing them must re-check

    def build(self, input_shape=None):
        """Build every layer for `input_shape` (batch axis first) and flatten the weights."""
        if input_shape is None:
            if self._layers and isinstance(self._layers[0], InputLayer):
                input_shape = (None,) + self._layers[0].input_shape_arg
            else:
                raise ValueError("build needs an input_shape, e.g. model.build((None, 784))")
        input_shape = shape_tuple(input_shape)
        if len(input_shape) < 2:
            raise ValueError(f"input_shape must include the batch axis, e.g. (None, 784); "
                             f"received {input_shape}")
        if not self.layers:
            raise ValueError(f"model {self.name!r} has no layers to build")
        self.ops = _ops.get_backend(self.backend)
        shape = (None,) + tuple(input_shape[1:])
        self.input_shape = shape
        masked = False
        for layer in self._layers:
            if masked and not layer.supports_masking:
                raise _mask_refused(layer)
            masked = layer._output_masked(masked)
            if layer.built and layer.dtype is not None and layer.dtype != self.dtype:
                raise TypeError(f"layer {layer.name!r} was built as {layer.dtype}, the model "
                                f"is {self.dtype}")
            if layer.built and layer.input_shape is not None and (
                    tuple(layer.input_shape[1:]) != tuple(shape[1:])):
                raise ValueError(f"layer {layer.name!r} was built for input shape "
                                 f"{layer.input_shape}, the model gives it {shape}")
            shape = layer._build_for(shape, self.ops, self.dtype)
            if isinstance(shape, list):
                raise ValueError(f"layer {layer.name!r} returns {len(shape)} outputs "
                                 f"{shape}; a Sequential passes one array from layer to "
                                 f"layer: build a graph model (pynn.Model(inputs, outputs))")
        self.output_shape = shape
        self._masking = any(getattr(la, "mask_zero", False) for la in self._layers)
        self._output_masked = masked
        self._flatten_parameters()
        self._infer_steps = None
        self.built = True
        self._setup_fusion()

    def _input_list(self):
        return [self.input_shape]

    def _run_backward(self, dy, need_input_grad):
        """Backward through the stack from d(output); returns d(input) (None when not
        needed). Without need_input_grad it stops at the first layer with weights to train."""
        first = 0 if need_input_grad else self._first
        for i in range(len(self._layers) - 1, first - 1, -1):
            layer = self._layers[i]
            layer._need_dx = need_input_grad or i > first
            dy = layer.backward(dy)
        return dy if need_input_grad else None

    # -- config ----------------------------------------------------------------------
    def get_config(self):
        """JSON-able {'class_name': 'Sequential', 'config': {'name', 'dtype', 'layers':
        [{'class_name': ..., 'config': ...}, ...]}} (an InputLayer first once built)."""
        layer_cfgs = [_layers.serialize(layer) for layer in self._layers]
        if self.built and not isinstance(self._layers[0], InputLayer):
            layer_cfgs.insert(0, {"class_name": "InputLayer", "config": {
                "batch_shape": [None] + list(self.input_shape[1:]),
                "name": self._layers[0].name + "_input"}})
        for c in layer_cfgs:
            c["config"].pop("input_shape", None)  # the InputLayer carries it
        return {"class_name": "Sequential",
                "config": {"name": self.name, "dtype": self.dtype.name, "layers": layer_cfgs}}

    @classmethod
    def from_config(cls, config, backend=None):
        """A new Sequential from get_config()'s dict (or its inner 'config')."""
        if isinstance(config, dict) and "class_name" in config:
            if config["class_name"] != "Sequential":
                raise ValueError(f"not a Sequential config: class_name "
                                 f"{config['class_name']!r}")
            config = config.get("config") or {}
        if not isinstance(config, dict) or "layers" not in config:
            raise ValueError(f"a Sequential config needs a 'layers' list, received {config!r}")
        return cls([_layers.deserialize(c) for c in config["layers"]], name=config.get("name"),
                   dtype=config.get("dtype"), backend=backend)


# every model forward draws a number and stamps the layers it runs with it: backward(dout)
# checks that its layers still carry the stamps of the model(x) call it belongs to
_FORWARD_RUNS = itertools.count(1)

# attributes of a shared layer that stay as they are when the graph swaps in a call's state
_KEEP = frozenset(("params", "grads", "trainable", "_need_dx", "ops", "dtype", "built",
                   "_weight_info", "name", "_output_logits",
                   "_step"))  # dropout mask counters count every call


# how many times any model has pointed layers at its flat buffers (Model._own_weights)
_REBASES = [0]
_UIDS = itertools.count()
_UID_OF = weakref.WeakKeyDictionary()


def _mask_refused(layer):
    return ValueError(
        f"layer {layer.name!r} ({type(layer).__name__}) does not support masking: the padding "
        f"mask of an Embedding(mask_zero=True) reaches it. The recurrent layers and "
        f"Bidirectional (they skip masked steps) and GlobalAveragePooling1D (it averages the "
        f"real steps) take it; Dense, Dropout, Activation, LayerNormalization and "
        f"TimeDistributed pass it on. End the masked sequence with one of the first before "
        f"this layer, or drop mask_zero")


def _layer_uid(layer):
    """A number for this layer object alone: id() is reused once an object is freed (a layer
    put in place of a deleted one could share its id), and an attribute would travel with
    copy.deepcopy; a weak map holds it beside the object."""
    uid = _UID_OF.get(layer)
    if uid is None:
        uid = _UID_OF[layer] = next(_UIDS)
    return uid


def _inner_layers(layer, found=None):
    """The layers a layer runs inside its forward, recursively (Bidirectional,
    TimeDistributed, TransformerBlock): their caches live there, beyond the state a graph
    swaps per call."""
    found = [] if found is None else found
    for i in layer._wrapped_layers():
        if i is not layer and all(i is not f for f in found):
            found.append(i)
            _inner_layers(i, found)
    return found


def _stamp(layer, stamp):
    """Mark `layer` and the layers it runs inside as run by the model forward `stamp`."""
    layer._run_stamp = stamp
    for i in layer._wrapped_layers():
        _stamp(i, stamp)


def _stamps(layers):
    return [getattr(i, "_run_stamp", None) for layer in layers
            for i in [layer] + _inner_layers(layer)]


class Functional(Model):
    """A graph model: `pynn.Model(inputs, outputs)` over symbolic tensors (pynn.functional).

    Parameters
    ----------
    inputs, outputs : KerasTensor or list of KerasTensor
    name : str, optional
    backend : {'c', 'reference'}, optional
    dtype : {'float32', 'float64'}, optional
        Default: the inputs' dtype (pynn.Input(dtype=...)), else float32.
    """

    def __init__(self, inputs, outputs, name=None, backend=None, dtype=None, trainable=True):
        from . import functional as F
        ins, self._multi_in = F._flat(inputs, "inputs")
        outs, self._multi_out = F._flat(outputs, "outputs")
        if dtype is None:
            dtype = next((t.dtype for t in ins if t.dtype is not None), None)
        super().__init__(name=name, backend=backend, dtype=dtype)
        if len({id(t) for t in ins}) != len(ins):
            raise ValueError("the same input tensor appears twice in inputs")
        self.inputs, self.outputs = ins, outs
        self._order = F._topological(ins, outs)
        self._masking = any(t.masked for n in self._order for t in n.outputs)
        self._output_masked = not self._multi_out and outs[0].masked
        units, counts = [], {}
        for node in self._order:
            counts[id(node.op)] = counts.get(id(node.op), 0) + 1
            if counts[id(node.op)] == 1:
                units.append(node.op)
        for u in units:
            if isinstance(u, Model) and counts[id(u)] > 1:
                raise ValueError(f"model {u.name!r} is called {counts[id(u)]} times in this "
                                 f"graph; call a nested model once (or call its layers)")
            if u is self:
                raise ValueError("a model cannot contain itself")
        # a layer that wraps others runs once per graph, and its inner layers nowhere else:
        # a second call would overwrite the inner layers' caches before the backward
        owner = {}
        for u in units:
            if isinstance(u, Model):
                continue
            inner = _inner_layers(u)
            if inner and counts[id(u)] > 1:
                raise ValueError(f"layer {u.name!r} ({type(u).__name__}) is called "
                                 f"{counts[id(u)]} times in this graph; a layer that wraps "
                                 f"other layers can be called once per graph (use separate "
                                 f"layers)")
            for i in inner:
                other = owner.setdefault(id(i), u)
                if other is not u or id(i) in counts:
                    where = ("on its own" if other is u
                             else f"inside another layer ({other.name!r})")
                    raise ValueError(f"layer {i.name!r} runs inside {u.name!r} and also "
                                     f"{where} in this graph; a wrapped layer can run once "
                                     f"per graph (use separate layers)")
        self._unit_list = units
        self._shared = {id(u) for u in units if counts[id(u)] > 1}
        layers = []
        for u in units:
            layers.extend(u._layers if isinstance(u, Model) else [u])
        self._layers = layers
        self.build()
        if not trainable:
            self.trainable = False

    @property
    def layers(self):
        """The layers and nested models of the graph (InputLayers included, as Keras)."""
        return list(self._unit_list)

    def _units(self):
        return self._unit_list

    def _input_list(self):
        return self.inputs

    def build(self, input_shape=None):
        """Set backend and dtype on every layer and flatten the weights (a graph model is
        built when it is made; input_shape must match its inputs if given)."""
        shapes = [t.shape for t in self.inputs]
        if input_shape is not None:
            from .functional import _same_shape
            want = shapes if self._multi_in else shapes[0]
            got = [shape_tuple(s) for s in input_shape] if self._multi_in else \
                shape_tuple(input_shape)
            if not _same_shape(want, got):
                raise ValueError(f"model {self.name!r} has inputs of shape {want}, "
                                 f"build received {input_shape}")
        self.ops = _ops.get_backend(self.backend)
        for u in self._unit_list:
            if isinstance(u, Model):
                u.ops = self.ops
                if u.dtype != self.dtype:
                    raise TypeError(f"nested model {u.name!r} is {u.dtype}, this model is "
                                    f"{self.dtype}")
        for top in self._layers:
            # the layers a wrapper runs inside were built when the graph was made, before
            # the model's dtype was known: they compute in it too
            for layer in [top] + _inner_layers(top):
                layer.ops = self.ops
                if layer.dtype != self.dtype:
                    layer.dtype = self.dtype
                    layer._bufs = {}
        self.input_shape = shapes if self._multi_in else shapes[0]
        outs = [t.shape for t in self.outputs]
        self.output_shape = outs if self._multi_out else outs[0]
        self._flatten_parameters()
        self.built = True
        self._setup_fusion()

    def _ensure_built(self, x_shape):
        pass

    def _inbound(self, layer):
        return [t.name for n in self._order if n.op is layer
                for t in n.inputs + list(n.tensor_kwargs.values())]

    @property
    def build_input_shape(self):
        """None: a graph model is built from its config (its Input shapes)."""
        return None

    def _output_layer(self):
        if self._multi_out:
            return None
        op = self.outputs[0].node.op
        if isinstance(op, Model) or id(op) in self._shared or self.outputs[0].node.multi_out:
            return None
        return op

    def _check_compilable(self):
        if self._multi_out:
            raise ValueError(f"model {self.name!r} has {len(self.outputs)} outputs: compile/"
                             f"fit/evaluate support one output (one loss); train several "
                             f"outputs with a custom step (model(x), loss.value_and_grad, "
                             f"model.backward([d1, d2]), optimizer.apply_gradients(model))")

    def _trainable_runs(self):
        runs = super()._trainable_runs()
        if getattr(self, "_grad_key", None) is not self._runs_key:
            # per node: does any trainable weight sit upstream of (or in) it? only those
            # nodes need an input gradient in fit's backward pass
            up = {}
            for node in self._order:
                own = any(layer.trainable and layer.params for layer in
                          (node.op._layers if isinstance(node.op, Model) else [node.op]))
                up[id(node)] = own or any(up[id(p)] for p in node.parents())
                node.need_dx = any(up[id(t.node)] for t in node.inputs)
            self._grad_key = self._runs_key
        return runs

    def _forward(self, x, training):
        if training or self._keep_caches:
            return self._forward_graph(x, training)
        with _base.inference_only():  # predict, evaluate: no backward follows
            return self._forward_graph(x, training)

    def _forward_graph(self, x, training):
        stamp = next(_FORWARD_RUNS)
        vals = {}
        masks = {}      # tensor -> its padding mask, where one travels (self._masking)
        xs = x if self._multi_in else [x]
        for t, a in zip(self.inputs, xs):
            vals[id(t)] = a
        for node in self._order:
            op = node.op
            if isinstance(op, InputLayer):
                continue
            args = [vals[id(t)] for t in node.inputs]
            inp = args if node.list_input else args[0]
            kw = {k: vals[id(t)] for k, t in node.tensor_kwargs.items()}
            if isinstance(op, Model):
                # a nested model keeps its layers' caches when this one must (model(x) with
                # training=False, then backward; fit through base(x, training=False)): no
                # inference fusion inside it then
                keep, op._keep_caches = op._keep_caches, self._keep_caches or training
                try:
                    out = op._forward(inp, training=node.const_kwargs.get("training", training))
                finally:
                    op._keep_caches = keep
                if op._out_mask is not None:    # a mask made inside it goes out with it
                    masks[id(node.outputs[0])] = op._out_mask
            else:
                kw.update(node.const_kwargs)
                kw.setdefault("training", training)
                shared = id(op) in self._shared
                if shared:
                    op._bufs = node.bufs
                _stamp(op, stamp)
                mask = masks.get(id(node.inputs[0])) if self._masking else None
                if mask is not None and op._takes_mask:
                    kw["mask"] = mask
                out = op.forward(inp, **kw)
                if self._masking:
                    m = op.compute_mask(args[0], mask)
                    if m is not None:   # every output flagged at build (both directions
                        for t in node.outputs:     # of a Bidirectional without merge)
                            if t.masked:
                                masks[id(t)] = m
                if shared:
                    node.state = {k: v for k, v in op.__dict__.items() if k not in _KEEP}
            outs = out if node.multi_out else [out]
            if node.multi_out:
                node.last = outs
            for t, o in zip(node.outputs, outs):
                vals[id(t)] = o
        res = [vals[id(t)] for t in self.outputs]
        self._out_mask = None if self._multi_out else masks.get(id(self.outputs[0]))
        return res if self._multi_out else res[0]

    def _run_backward(self, dy, need_input_grad):
        """Reverse topological walk: sums fan-out gradients, and shared layers' weight
        gradients (their second and later calls write into scratch, then add)."""
        grads = {}
        for t, d in zip(self.outputs, dy if self._multi_out else [dy]):
            if d is not None:   # one tensor listed as two outputs: its gradients add
                grads[id(t)] = d if id(t) not in grads else grads[id(t)] + d
        seen, extra = set(), None
        for node in reversed(self._order):
            op = node.op
            if isinstance(op, InputLayer):
                continue
            dys = [grads.pop(id(t), None) for t in node.outputs]
            if all(d is None for d in dys):
                continue
            need = need_input_grad or node.need_dx
            if not need and not any(layer.trainable and layer.params for layer in
                                    (op._layers if isinstance(op, Model) else [op])):
                continue
            if node.multi_out:
                d = [np.zeros_like(o) if g is None else g for g, o in zip(dys, node.last)]
            else:
                d = dys[0]
            if isinstance(op, Model):
                op._trainable_runs()
                dx = op._run_backward(d, need_input_grad=need)
            else:
                if id(op) in self._shared:
                    op.__dict__.update(node.state)
                op._need_dx = need
                if id(op) in seen and op.params:
                    extra = extra if extra is not None else self._scratch_grads("shared")
                    saved = self._swap_grads(extra, [op])
                    for g in op.grads.values():
                        g[...] = 0
                    try:
                        dx = op.backward(d)
                    finally:
                        written = op.grads
                        self._restore_grads(saved)
                    for k, g in op.grads.items():
                        g += written[k]
                else:
                    dx = op.backward(d)
                seen.add(id(op))
            if not need or dx is None:
                continue
            dxs = dx if node.list_input else [dx]
            for t, g in zip(node.inputs, dxs):
                if g is None:
                    continue
                k = id(t)
                grads[k] = g if k not in grads else grads[k] + g
        if not need_input_grad:
            return None
        res = [grads.get(id(t)) for t in self.inputs]
        return res if self._multi_in else res[0]

    # -- config ----------------------------------------------------------------------
    def get_config(self):
        """JSON-able {'class_name': 'Functional', 'config': {'name', 'dtype', 'layers':
        [layer configs], 'nodes': [[layer name, args, list_input, kwargs, tensor_kwargs]],
        'input_layers', 'output_layers'}}; a tensor is [layer name, node index, output index]
        (node index: that layer's calls in this graph, in order)."""
        node_index, per_op = {}, {}
        for node in self._order:
            node_index[id(node)] = per_op.get(id(node.op), 0)
            per_op[id(node.op)] = node_index[id(node)] + 1

        def ref(t):
            return [t.node.op.name, node_index[id(t.node)], t.index]
        names = [u.name for u in self._unit_list]
        if len(set(names)) != len(names):
            raise ValueError(f"model {self.name!r} has several layers named the same; give "
                             f"them unique names to save it")
        layer_cfgs = []
        for u in self._unit_list:
            cfg = u.get_config() if isinstance(u, Model) else _layers.serialize(u)
            cfg = {"class_name": cfg["class_name"], "config": cfg["config"]}
            if not isinstance(u, Model):
                cfg["config"].pop("input_shape", None)
            layer_cfgs.append(cfg)
        nodes = [[n.op.name, [ref(t) for t in n.inputs], n.list_input, n.const_kwargs,
                  {k: ref(t) for k, t in n.tensor_kwargs.items()}]
                 for n in self._order if not isinstance(n.op, InputLayer)]
        return {"class_name": "Functional",
                "config": {"name": self.name, "dtype": self.dtype.name, "layers": layer_cfgs,
                           "nodes": nodes, "input_layers": [ref(t) for t in self.inputs],
                           "output_layers": [ref(t) for t in self.outputs],
                           "multi_input": self._multi_in, "multi_output": self._multi_out}}

    @classmethod
    def from_config(cls, config, backend=None):
        from . import functional as F
        if isinstance(config, dict) and "class_name" in config:
            if config["class_name"] != "Functional":
                raise ValueError(f"not a Functional config: class_name "
                                 f"{config['class_name']!r}")
            config = config.get("config") or {}
        if not isinstance(config, dict) or "layers" not in config or "nodes" not in config:
            raise ValueError("a Functional config needs 'layers' and 'nodes' lists")
        ops, made = {}, {}
        for c in config["layers"]:
            if not isinstance(c, dict):
                raise ValueError(f"a layer config must be a dict, received {c!r}")
            if c.get("class_name") in _MODELS:
                op = model_from_config(c, backend=backend)
            else:
                op = _layers.deserialize(c)
            if op.name in ops:
                raise ValueError(f"duplicate layer name {op.name!r} in the config")
            ops[op.name] = op
            if isinstance(op, InputLayer):
                made[(op.name, 0)] = [F.input_tensor(op)]

        def tensor(r):
            try:
                return made[(r[0], int(r[1]))][int(r[2])]
            except (KeyError, IndexError, TypeError, ValueError):
                raise ValueError(f"the config refers to tensor {r!r}, which no earlier node "
                                 f"makes") from None
        counts = {}
        for name, args, list_input, kwargs, tkwargs in config["nodes"]:
            if name not in ops:
                raise ValueError(f"the config calls unknown layer {name!r}")
            op = ops[name]
            ins = [tensor(r) for r in args]
            kw = dict(kwargs or {})
            kw.update({k: tensor(r) for k, r in (tkwargs or {}).items()})
            training = kw.pop("training", None)
            x = ins if list_input else ins[0]
            if isinstance(op, Model):
                out = op(x, training=training)     # base(x, training=False) kept
            else:
                out = F.call(op, x, (), kw, training)
            i = counts.get(name, 0)
            counts[name] = i + 1
            made[(name, i)] = out if isinstance(out, list) else [out]
        ins = [tensor(r) for r in config.get("input_layers") or ()]
        outs = [tensor(r) for r in config.get("output_layers") or ()]
        if not ins or not outs:
            raise ValueError(f"a Functional config needs at least one input and one output, "
                             f"received {len(ins)} input(s) and {len(outs)} output(s)")
        return cls(ins if config.get("multi_input") else ins[0],
                   outs if config.get("multi_output") else outs[0],
                   name=config.get("name"), dtype=config.get("dtype"), backend=backend)


_MODELS = {"Sequential": Sequential, "Functional": Functional}


def model_from_config(config, backend=None):
    """A new (unbuilt or built, uncompiled) model from {'class_name', 'config'}."""
    if not isinstance(config, dict) or "class_name" not in config:
        raise ValueError("a model config must be a dict with 'class_name' and 'config'")
    from ._registry import lookup
    cls = lookup(_MODELS, config["class_name"], "model class")
    return cls.from_config(config, backend=backend)


def model_from_json(text, backend=None):
    return model_from_config(json.loads(text), backend=backend)


def load_model(filepath, compile=True, custom_objects=None):
    """Load a model written by model.save (pynn.io: no pickle, one clear error type).
    custom_objects: {class name: class} of your own Layer, Regularizer, Initializer, Loss,
    Metric, Optimizer and LearningRateSchedule subclasses the model was built and compiled
    with (see pynn.io.load_model)."""
    from . import io
    return io.load_model(filepath, compile=compile, custom_objects=custom_objects)
