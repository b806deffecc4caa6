"""The training loop behind Model.fit/evaluate/predict, the Callback base, History and the
progress output.

Keras 3 semantics: `validation_split` takes the LAST samples before shuffling; epochs run
from `initial_epoch` to `epochs`; a last partial batch is used; logs hold running means
over the epoch weighted by batch size; validation keys are prefixed 'val_' (class_weight
weighs the training samples only). A single-output model takes its targets as y or as
[y], as a single-input model takes [x]. Data are checked and converted to the model dtype once
per call; each step gathers its batch into a kept buffer (np.take(out=)), so the step
allocates nothing. Shuffling draws from pynn's generator (or `seed=`).

Progress: verbose=1 on a terminal draws a bar with ETA (redrawn at most 10 times a
second); verbose=2, or verbose=1 when stdout is not a terminal, prints one line per epoch.
"""
import numbers
import sys
import time

import numpy as np

from . import utils

__all__ = ["Callback", "CallbackList", "History", "ProgbarLogger"]


class Callback:
    """Base class for callbacks: override any of the on_* hooks."""

    def __init__(self):
        self.model = None
        self.params = {}

    def set_model(self, model):
        self.model = model

    def set_params(self, params):
        self.params = params

    def on_train_begin(self, logs=None): pass
    def on_train_end(self, logs=None): pass
    def on_epoch_begin(self, epoch, logs=None): pass
    def on_epoch_end(self, epoch, logs=None): pass
    # Keras keeps on_batch_begin/end as the training-batch hooks' older names: the default
    # training-batch hooks call them, so a callback overriding either is called per batch
    def on_train_batch_begin(self, batch, logs=None): self.on_batch_begin(batch, logs)
    def on_train_batch_end(self, batch, logs=None): self.on_batch_end(batch, logs)
    def on_batch_begin(self, batch, logs=None): pass
    def on_batch_end(self, batch, logs=None): pass
    def on_test_begin(self, logs=None): pass
    def on_test_end(self, logs=None): pass
    def on_test_batch_begin(self, batch, logs=None): pass
    def on_test_batch_end(self, batch, logs=None): pass
    def on_predict_begin(self, logs=None): pass
    def on_predict_end(self, logs=None): pass
    def on_predict_batch_begin(self, batch, logs=None): pass
    def on_predict_batch_end(self, batch, logs=None): pass


_HOOKS = [n for n in dir(Callback) if n.startswith("on_")]


def _overrides(cb, hook):
    m = getattr(cb, hook)
    return getattr(m, "__func__", m) is not getattr(Callback, hook)


class CallbackList:
    """Calls every hook on each callback in order; adds the progress logger first and
    History last (as Keras does). `callbacks` is a list (or tuple) of Callbacks, or one
    Callback (Keras flattens what it is given)."""

    def __init__(self, callbacks=None, model=None, params=None, add_history=False,
                 add_progbar=False, verbose=0):
        if isinstance(callbacks, Callback):
            callbacks = [callbacks]
        elif callbacks is not None and not isinstance(callbacks, (list, tuple)):
            raise TypeError(f"callbacks must be a list of pynn.callbacks.Callback instances, "
                            f"received {type(callbacks).__name__}: {callbacks!r}")
        cbs = list(callbacks or [])
        for c in cbs:
            if not isinstance(c, Callback):
                raise TypeError(f"callbacks must be pynn.callbacks.Callback instances, "
                                f"received {c!r}")
        if add_progbar and verbose:
            cbs.insert(0, ProgbarLogger())
        self.history = None
        if add_history:
            self.history = History()
            cbs.append(self.history)
        self.callbacks = cbs
        for c in cbs:
            c.set_model(model)
            c.set_params(params or {})
        # per-batch hooks cost a logs dict per step: call them only when someone listens
        # (the progress logger listens only while it draws a bar on a terminal)
        self._batch_hooks = any(_overrides(c, h) for c in cbs for h in _HOOKS if "batch" in h
                                and not (isinstance(c, ProgbarLogger) and not _dynamic(verbose)))

    def __getattr__(self, name):
        if name not in _HOOKS:
            raise AttributeError(name)

        def call(*args):
            for c in self.callbacks:
                getattr(c, name)(*args)
        return call


class History(Callback):
    """Records epoch logs: `history.history` maps 'loss', metrics and 'val_*' to lists;
    `history.epoch` lists the epochs run."""

    def __init__(self):
        super().__init__()
        self.history = {}
        self.epoch = []

    def on_train_begin(self, logs=None):
        self.epoch = []

    def on_epoch_end(self, epoch, logs=None):
        self.epoch.append(epoch)
        for k, v in (logs or {}).items():
            self.history.setdefault(k, []).append(v)
        if self.model is not None:
            self.model.history = self


def _fmt_time(s):
    if s >= 3600:
        return f"{int(s // 3600)}:{int(s % 3600 // 60):02d}:{int(s % 60):02d}"
    if s >= 60:
        return f"{int(s // 60)}:{int(s % 60):02d}"
    return f"{int(round(s))}s"


def _fmt_step(s):
    return f"{s * 1e3:.0f}ms/step" if s >= 1e-3 else f"{s * 1e6:.0f}us/step"


def _fmt_logs(logs):
    return "".join(f" - {k}: {v:.4f}" for k, v in logs.items() if isinstance(v, (int, float)))


def _isatty(stream):
    try:
        return bool(getattr(stream, "isatty", lambda: False)())
    except ValueError:  # a closed stream
        return False


def _dynamic(verbose):
    return verbose == 1 and _isatty(sys.stdout)


class Progbar:
    """One progress line: a bar with ETA (dynamic) or a single line at the end."""
    WIDTH = 20

    def __init__(self, target, verbose=1, stream=None):
        self.stream = stream or sys.stdout
        self.target = target
        self.dynamic = verbose == 1 and _isatty(self.stream)
        self.verbose = verbose
        self.start = time.perf_counter()
        self.last_draw = 0.0

    def update(self, current, logs=None, finalize=False):
        now = time.perf_counter()
        elapsed = now - self.start
        if not self.dynamic:
            if finalize:
                per = elapsed / max(current, 1)
                self.stream.write(f"{current}/{self.target} - {_fmt_time(elapsed)} - "
                                  f"{_fmt_step(per)}{_fmt_logs(logs or {})}\n")
                self.stream.flush()
            return
        if not finalize and now - self.last_draw < 0.1:
            return
        self.last_draw = now
        t = self.target or current
        frac = min(1.0, current / t) if t else 1.0
        done = int(self.WIDTH * frac)
        bar = "=" * max(0, done - 1) + (">" if done < self.WIDTH and done else "=" * min(done, 1))
        bar = f"[{bar:<{self.WIDTH}}]"
        per = elapsed / max(current, 1)
        tail = (f"{_fmt_time(elapsed)} {_fmt_step(per)}" if finalize
                else f"ETA: {_fmt_time(per * max(t - current, 0))}")
        w = len(str(t))
        self.stream.write(f"\r{current:>{w}}/{t} {bar} {tail}{_fmt_logs(logs or {})}\033[K"
                          + ("\n" if finalize else ""))
        self.stream.flush()


class ProgbarLogger(Callback):
    """Keras' progress output for fit (epoch header + bar or line) and evaluate."""

    def __init__(self):
        super().__init__()
        self.bar = None

    def on_epoch_begin(self, epoch, logs=None):
        v = self.params.get("verbose", 1)
        epochs = self.params.get("epochs") or 0
        if v and epochs > 1:  # as Keras 3: a header per epoch when there is more than one
            sys.stdout.write(f"Epoch {epoch + 1}/{epochs}\n")
        self.bar = Progbar(self.params.get("steps"), v)
        self._in_epoch = True

    def on_train_batch_end(self, batch, logs=None):
        if self.bar is not None and self.bar.dynamic:
            self.bar.update(batch + 1, logs)

    def on_epoch_end(self, epoch, logs=None):
        if self.bar is not None:
            self.bar.update(self.params.get("steps"), logs, finalize=True)
        self.bar = None


# -- data ------------------------------------------------------------------------------
def all_finite(x):
    """True if the float array x holds no NaN or infinity.

    A sum of x is NaN or inf whenever x holds one and needs no temporary mask; when it is
    not finite (also for legitimately huge values that overflow it), the exact elementwise
    test decides. np.add.reduce, not np.dot: OpenBLAS threads a long dot product and its
    threads then busy-wait ~0.1 s, taking the cores from pynn's own OpenMP threads in the
    step that follows (a custom training loop calls this once per step)."""
    flat = x.reshape(-1)
    with np.errstate(over="ignore", invalid="ignore"):
        s = np.add.reduce(flat)
    return bool(np.isfinite(s)) or bool(np.all(np.isfinite(flat)))


def batch_len(x):
    """Number of samples of an input array or of a list of input arrays."""
    return x[0].shape[0] if isinstance(x, list) else x.shape[0]


def as_inputs(model, x, what="x"):
    """x as an array of the model dtype (one conversion per call), checked for shape/NaN.
    A model with several inputs takes a list of arrays (same number of samples)."""
    if getattr(model, "_multi_in", False):
        if not isinstance(x, (list, tuple)) or len(x) != len(model.inputs):
            raise ValueError(f"model {model.name!r} has {len(model.inputs)} inputs: pass "
                             f"{what} as a list of {len(model.inputs)} arrays, received "
                             f"{type(x).__name__}")
        xs = [_as_input(model, a, f"{what}[{i}]", model.input_shape[i])
              for i, a in enumerate(x)]
        if len({a.shape[0] for a in xs}) != 1:
            raise ValueError(f"the arrays of {what} have different numbers of samples: "
                             f"{[a.shape[0] for a in xs]}")
        return xs
    return _as_input(model, x, what, None)


def _as_input(model, x, what, exp):
    if x is None:
        raise ValueError(f"{what} is None; pass a numpy array of inputs")
    if isinstance(x, (list, tuple)) and len(x) == 1 and isinstance(x[0], np.ndarray):
        x = x[0]
    if (isinstance(x, tuple) and len(x) in (2, 3) and all(isinstance(a, np.ndarray) for a in x)
            and len({a.shape[1:] for a in x}) > 1):
        # fit((x, y)): Keras takes (x, y) tuples from datasets, not as x
        raise ValueError(f"{what} is a tuple of {len(x)} arrays of different shapes; pass "
                         f"them as separate arguments, e.g. fit(x, y), not fit((x, y))")
    x = np.asarray(x)
    if x.dtype.kind not in "fiub":
        raise TypeError(f"{what} must be numeric, received dtype {x.dtype}")
    if x.ndim < 2:
        raise ValueError(f"{what} must have a batch axis and at least one feature axis, "
                         f"received shape {x.shape}; for a single feature use x.reshape(-1, 1)")
    if x.shape[0] == 0:
        raise ValueError(f"{what} is empty (shape {x.shape}); pass at least one sample")
    x = x.astype(model.dtype, copy=False)
    if not all_finite(x):
        raise ValueError(f"{what} contains NaN or infinity; clean the data before training")
    if exp is None:
        model._ensure_built(x.shape)
        exp = model.input_shape
    if x.ndim != len(exp) or any(e is not None and e != d for e, d in zip(exp[1:], x.shape[1:])):
        raise ValueError(f"model {model.name!r} expects inputs of shape {exp}, received "
                         f"{what} with shape {x.shape}")
    return x


def sample_weights(model, y, n, sample_weight=None, class_weight=None):
    sw = None
    if sample_weight is not None:
        sw = np.asarray(_unwrap_one(sample_weight, n))
        if sw.dtype.kind not in "fiub":
            raise TypeError(f"sample_weight must be numeric, received dtype {sw.dtype}")
        sw = sw.astype(model.dtype, copy=False)
        if sw.shape != (n,):
            raise ValueError(f"sample_weight must have shape ({n},), received {sw.shape}")
        if not np.all(np.isfinite(sw)) or np.any(sw < 0):
            raise ValueError("sample_weight must be finite and non-negative")
    if class_weight is not None:
        if not isinstance(class_weight, dict):
            raise TypeError(f"class_weight must be a dict class -> weight, received "
                            f"{type(class_weight).__name__}")
        out_shape = getattr(model, "output_shape", None)
        if y.ndim > 2 or (out_shape is not None and not isinstance(out_shape, list)
                          and len(out_shape) > 2):
            raise ValueError(f"class_weight needs one class per sample (labels (n,) or "
                             f"one-hot (n, K)); the model's outputs have shape {out_shape}: "
                             f"for per-position weights pass sample_weight")
        for c, w in class_weight.items():
            if (isinstance(c, (bool, np.bool_)) or not isinstance(c, (int, np.integer))
                    or c < 0):
                raise ValueError(f"class_weight keys must be class indices >= 0, received "
                                 f"{c!r}")
            if not isinstance(w, (int, float, np.integer, np.floating)) or isinstance(
                    w, (bool, np.bool_)) or not np.isfinite(w) or w < 0:
                raise ValueError(f"class_weight values must be finite numbers >= 0, "
                                 f"received {w!r} for class {c}")
        if y.ndim == 1:
            labels = y
        elif y.reshape(n, -1).shape[1] == 1:  # binary (n, 1) targets: class = round(y)
            labels = (y.reshape(n) > 0.5).astype(np.int64)
        else:                                 # one-hot or probabilities (n, K)
            labels = np.argmax(y.reshape(n, -1), axis=1)
        k = int(labels.max()) + 1 if n else 0
        table = np.ones(max(k, max((int(c) for c in class_weight), default=-1) + 1))
        for c, w in class_weight.items():
            table[int(c)] = float(w)
        cw = table[labels.astype(np.int64)].astype(model.dtype)
        sw = cw if sw is None else sw * cw
    return sw


def _unwrap_one(v, n):
    """[v] -> v for a one-element list/tuple holding an array of n samples (a single
    output's targets or weights wrapped as a single input's [x]); with n == 1 the list is
    itself a valid batch of one sample, as before, so it stays as it is."""
    if (isinstance(v, (list, tuple)) and len(v) == 1 and isinstance(v[0], np.ndarray)
            and v[0].ndim >= 1 and n != 1 and len(v[0]) == n):
        return v[0]
    return v


def _check_lengths(x, y, sw=None):
    """y with as many samples as x; a one-element list of arrays [y] is y (as [x] is x)."""
    y = _unwrap_one(y, batch_len(x))
    if y is not None and len(y) != batch_len(x):
        raise ValueError(f"x and y have different numbers of samples: x has {batch_len(x)}, "
                         f"y has {len(y)}")
    return y


def _no_steps(steps, what):
    # Keras' `steps` stops a generator; arrays always run every batch (it was ignored)
    if steps is not None:
        raise ValueError(f"steps is only meaningful for generators; pynn's {what} takes "
                         f"arrays and runs every batch (pass steps=None)")


def _verbose(v):
    if v == "auto":
        return 1
    if v not in (0, 1, 2):
        raise ValueError(f"verbose must be 0, 1, 2 or 'auto', received {v!r}")
    return v


def _batch_size(b, default=32):
    if b is None:
        return default
    if isinstance(b, bool) or not isinstance(b, (int, np.integer)) or b <= 0:
        raise ValueError(f"batch_size must be a positive integer, received {b!r}")
    return int(b)


class _Batches:
    """Yields (step, x_batch, y_batch, sw_batch) from kept buffers (gather on shuffle,
    views otherwise); a last partial batch is included."""

    def __init__(self, x, y, sw, batch_size):
        self.x, self.y, self.sw, self.bs = x, y, sw, batch_size
        self.n = batch_len(x)
        self.steps = -(-self.n // batch_size)
        self._bufs = {}

    def _buf(self, key, like, b):
        k = (key, b)
        out = self._bufs.get(k)
        if out is None:
            out = np.empty((b,) + like.shape[1:], like.dtype)
            self._bufs[k] = out
        return out

    def __call__(self, order=None):
        for step in range(self.steps):
            a, e = step * self.bs, min(self.n, (step + 1) * self.bs)
            if order is None:
                xb = [v[a:e] for v in self.x] if isinstance(self.x, list) else self.x[a:e]
                yield step, xb, _sl(self.y, a, e), _sl(self.sw, a, e)
            else:
                # mode="clip": the indices are a permutation, always in range, and with
                # mode="raise" NumPy gathers through a temporary buffer (4x slower)
                idx = order[a:e]
                b = e - a
                if isinstance(self.x, list):
                    xb = [np.take(v, idx, axis=0, out=self._buf(("x", i), v, b), mode="clip")
                          for i, v in enumerate(self.x)]
                else:
                    xb = np.take(self.x, idx, axis=0, out=self._buf("x", self.x, b),
                                 mode="clip")
                yb = None if self.y is None else np.take(
                    self.y, idx, axis=0, out=self._buf("y", self.y, b), mode="clip")
                sb = None if self.sw is None else np.take(
                    self.sw, idx, out=self._buf("s", self.sw, b), mode="clip")
                yield step, xb, yb, sb


def _sl(a, s, e):
    if isinstance(a, list):
        return [v[s:e] for v in a]
    return None if a is None else a[s:e]


# -- loops -----------------------------------------------------------------------------
def fit(model, x, y, batch_size=None, epochs=1, verbose="auto", callbacks=None,
        validation_split=0.0, validation_data=None, shuffle=True, class_weight=None,
        sample_weight=None, initial_epoch=0, steps_per_epoch=None, validation_batch_size=None,
        validation_freq=1, seed=None):
    model._assert_compiled("fit")
    verbose = _verbose(verbose)
    bs = _batch_size(batch_size)
    if steps_per_epoch is not None:
        raise ValueError("steps_per_epoch is only meaningful for generators; pynn's fit "
                         "takes arrays and runs every batch of an epoch")
    if isinstance(epochs, bool) or not isinstance(epochs, (int, np.integer)) or epochs < 0:
        raise ValueError(f"epochs must be a non-negative integer, received {epochs!r}")
    if not isinstance(initial_epoch, (int, np.integer)) or initial_epoch < 0:
        raise ValueError(f"initial_epoch must be a non-negative integer, received {initial_epoch!r}")
    if (isinstance(validation_freq, bool) or not isinstance(validation_freq, (int, np.integer))
            or validation_freq < 1):
        raise ValueError(f"validation_freq must be a positive integer (validate every that "
                         f"many epochs), received {validation_freq!r}")
    x = as_inputs(model, x)
    if y is None:
        raise ValueError("fit needs targets y")
    y = _check_lengths(x, y)
    n = batch_len(x)
    y = model._targets(y)
    sw = sample_weights(model, y, n, sample_weight, class_weight)
    val = None
    if validation_data is not None:
        if not isinstance(validation_data, (tuple, list)) or len(validation_data) not in (2, 3):
            raise ValueError("validation_data must be a tuple (x_val, y_val) or "
                             "(x_val, y_val, sample_weight_val)")
        vx = as_inputs(model, validation_data[0], "validation x")
        vy = model._targets(_check_lengths(vx, validation_data[1]))
        vsw = sample_weights(model, vy, batch_len(vx),
                             validation_data[2] if len(validation_data) == 3 else None)
        val = (vx, vy, vsw)
    elif validation_split:
        if isinstance(validation_split, bool) or not isinstance(validation_split, numbers.Real):
            raise TypeError(f"validation_split must be a number in [0, 1), received "
                            f"{validation_split!r} ({type(validation_split).__name__})")
        if not 0.0 < validation_split < 1.0:
            raise ValueError(f"validation_split must be in [0, 1), received {validation_split!r}")
        split = int(n * (1.0 - validation_split))  # Keras: the last samples, before shuffling
        if split == 0 or split == n:
            raise ValueError(f"validation_split={validation_split} leaves "
                             f"{'no training' if split == 0 else 'no validation'} samples "
                             f"out of {n}")
        # Keras: the validation part keeps its sample weights; class_weight weighs training
        vsw = sample_weights(model, y, n, sample_weight) if class_weight is not None else sw
        val = (_sl(x, split, n), y[split:], None if vsw is None else vsw[split:])
        x, y, sw = _sl(x, 0, split), y[:split], None if sw is None else sw[:split]
        n = split
    batches = _Batches(x, y, sw, bs)
    vbatches = None if val is None else _Batches(*val, _batch_size(validation_batch_size, bs))
    rng = utils.get_rng(seed)
    cbs = CallbackList(callbacks, model, {"epochs": epochs, "steps": batches.steps,
                                          "verbose": verbose}, add_history=True,
                       add_progbar=True, verbose=verbose)
    model.stop_training = False
    model.history = cbs.history
    logs = {}
    cbs.on_train_begin()
    for epoch in range(initial_epoch, epochs):
        model._reset_metrics()
        cbs.on_epoch_begin(epoch)
        order = rng.permutation(n) if shuffle else None
        for step, xb, yb, sb in batches(order):
            if cbs._batch_hooks:
                cbs.on_train_batch_begin(step)
            model._train_step(xb, yb, sb)
            if cbs._batch_hooks:
                cbs.on_train_batch_end(step, model._logs())
            if model.stop_training:
                break
        logs = model._logs()
        if vbatches is not None and (epoch + 1) % validation_freq == 0:
            # as Keras: the validation pass runs the fit callbacks' test hooks
            cbs.on_test_begin()
            vlogs = _evaluate(model, vbatches, cbs)
            cbs.on_test_end(vlogs)
            logs.update({"val_" + k: v for k, v in vlogs.items()})
        cbs.on_epoch_end(epoch, logs)
        if model.stop_training:
            break
    cbs.on_train_end(logs)
    return model.history


def _evaluate(model, batches, cbs):
    model._reset_metrics()
    for step, xb, yb, sb in batches(None):
        if cbs is not None and cbs._batch_hooks:
            cbs.on_test_batch_begin(step)
        model._test_step(xb, yb, sb)
        if cbs is not None and cbs._batch_hooks:
            cbs.on_test_batch_end(step, model._logs())
    return model._logs()


def evaluate(model, x, y, batch_size=None, verbose="auto", sample_weight=None, steps=None,
             callbacks=None, return_dict=False):
    model._assert_compiled("evaluate")
    verbose = _verbose(verbose)
    _no_steps(steps, "evaluate")
    x = as_inputs(model, x)
    if y is None:
        raise ValueError("evaluate needs targets y")
    y = model._targets(_check_lengths(x, y))
    sw = sample_weights(model, y, batch_len(x), sample_weight)
    batches = _Batches(x, y, sw, _batch_size(batch_size))
    cbs = CallbackList(callbacks, model, {"steps": batches.steps, "verbose": verbose})
    cbs.on_test_begin()
    bar = Progbar(batches.steps, verbose) if verbose else None
    logs = _evaluate(model, batches, cbs)
    if bar is not None:
        bar.update(batches.steps, logs, finalize=True)
    cbs.on_test_end(logs)
    if return_dict:
        return logs
    vals = list(logs.values())
    return vals[0] if len(vals) == 1 else vals


def predict(model, x, batch_size=None, verbose="auto", steps=None, callbacks=None):
    verbose = _verbose(verbose)
    _no_steps(steps, "predict")
    x = as_inputs(model, x)
    batches = _Batches(x, None, None, _batch_size(batch_size))
    n = batch_len(x)
    multi = isinstance(model.output_shape, list)
    outs = None   # from the first batch's outputs: a variable sequence length is known then
    cbs = CallbackList(callbacks, model, {"steps": batches.steps, "verbose": verbose})
    cbs.on_predict_begin()
    bar = Progbar(batches.steps, verbose) if verbose else None
    for step, xb, _, _ in batches(None):
        if cbs._batch_hooks:
            cbs.on_predict_batch_begin(step)
        a = step * batches.bs
        res = model._forward(xb, training=False)
        if outs is None:
            outs = [np.empty((n,) + r.shape[1:], dtype=model.dtype)
                    for r in (res if multi else [res])]
        for o, r in zip(outs, res if multi else [res]):
            o[a:a + r.shape[0]] = r
        if cbs._batch_hooks:
            cbs.on_predict_batch_end(step, {})
    if bar is not None:
        bar.update(batches.steps, {}, finalize=True)
    cbs.on_predict_end()
    return outs if multi else outs[0]
