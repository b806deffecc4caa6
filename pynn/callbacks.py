"""Callbacks (Keras 3 semantics): EarlyStopping, ModelCheckpoint, ReduceLROnPlateau,
LearningRateScheduler, TerminateOnNaN, CSVLogger, LambdaCallback; the Callback base class
and History live in pynn.trainer and are re-exported here."""
import csv
import inspect
import math
import os
import warnings

import numpy as np

from . import _checks
from .optim.schedules import LearningRateSchedule
from .trainer import Callback, CallbackList, History, ProgbarLogger

__all__ = ["Callback", "CallbackList", "History", "ProgbarLogger", "EarlyStopping",
           "ModelCheckpoint", "ReduceLROnPlateau", "LearningRateScheduler", "TerminateOnNaN",
           "CSVLogger", "LambdaCallback"]


class _Monitor(Callback):
    """Shared 'is this value an improvement' logic (mode min/max/auto, min_delta).

    A `monitor` missing from the epoch logs warns (Keras 3), naming it and the keys there
    are, once per fit: at once when the key cannot come later (it is not a 'val_' key, or
    other 'val_' keys are there), else at the end of training if it never came (an epoch
    without validation, validation_freq > 1, lacks every 'val_' key).
    """
    _missing_effect = "does nothing"  # what the callback fails to do, for the warning

    def __init__(self, monitor, mode, min_delta):
        super().__init__()
        if mode not in ("auto", "min", "max"):
            raise ValueError(f"mode must be 'auto', 'min' or 'max', received {mode!r}")
        if not isinstance(monitor, str):
            raise TypeError(f"monitor must be the name of a logged value (a string), received "
                            f"{monitor!r}")
        min_delta = _checks.finite_scalar(min_delta, "min_delta")  # NaN: no improvement ever
        if mode == "auto":
            mode = "max" if any(s in monitor for s in ("acc", "auc", "precision", "recall")) \
                else "min"
        self.monitor, self.mode, self.min_delta = monitor, mode, abs(float(min_delta))
        self._reset_monitor()

    def _reset_monitor(self):
        # _looked: an epoch's logs were read (a fit that runs no epoch has nothing to miss)
        self._seen, self._warned, self._keys, self._looked = False, False, [], False

    def _better(self, value, reference):
        # As Keras: no best yet is +inf (min) or -inf (max), so the first finite value is an
        # improvement and an infinite one is not; NaN never is (a NaN best, as the first
        # value once became, is beaten by nothing: ModelCheckpoint(save_best_only) then kept
        # the NaN epoch's model, EarlyStopping stopped and ReduceLROnPlateau cut the rate
        # while the monitored value fell)
        if reference is None:
            reference = self._no_best()
        if self.mode == "min":
            return value < reference - self.min_delta
        return value > reference + self.min_delta

    def _no_best(self):
        """The best value before any: +inf (min) or -inf (max), as Keras starts."""
        return math.inf if self.mode == "min" else -math.inf

    def _value(self, logs):
        logs = logs or {}
        self._looked = True
        v = logs.get(self.monitor)
        if v is not None:
            self._seen = True
            return float(v)
        self._keys = list(logs)
        if not self.monitor.startswith("val_") or any(k.startswith("val_") for k in logs):
            self._warn_missing()
        return None

    def _warn_missing(self):
        if self._warned or self._seen or not self._looked:
            return
        self._warned = True
        warnings.warn(f"{type(self).__name__} is conditioned on {self.monitor!r}, which is not "
                      f"in the epoch logs, so it {self._missing_effect}; available keys: "
                      f"{', '.join(self._keys) or '(none)'}", stacklevel=3)


class EarlyStopping(_Monitor):
    """Stop when `monitor` has not improved for `patience` epochs.

    With restore_best_weights=True the best epoch's weights are restored at the end of
    training, whether or not training stopped early (Keras 3); a `baseline` that is never
    beaten stops training after `patience` epochs without error.
    """
    _missing_effect = "never stops training"

    def __init__(self, monitor="val_loss", min_delta=0, patience=0, verbose=0, mode="auto",
                 baseline=None, restore_best_weights=False, start_from_epoch=0):
        super().__init__(monitor, mode, min_delta)
        self.patience, self.verbose = _checks.int_scalar(patience, "patience"), verbose
        self.baseline = None if baseline is None else _checks.finite_scalar(baseline, "baseline")
        self.restore_best_weights = bool(restore_best_weights)
        self.start_from_epoch = _checks.int_scalar(start_from_epoch, "start_from_epoch")

    def on_train_begin(self, logs=None):
        self._reset_monitor()
        self.wait = 0
        self.stopped_epoch = 0
        self.best = None
        self.best_weights = None
        self.best_epoch = 0

    def on_epoch_end(self, epoch, logs=None):
        current = self._value(logs)
        if current is None or epoch < self.start_from_epoch:
            return
        if self.restore_best_weights and self.best_weights is None:
            self.best_weights = self.model.get_weights()  # restore these if nothing improves
        self.wait += 1
        if self._better(current, self.best):
            self.best = current
            self.best_epoch = epoch
            if self.restore_best_weights:
                self.best_weights = self.model.get_weights()
            if self.baseline is None or self._better(current, self.baseline):
                self.wait = 0
            return
        if self.wait >= self.patience and epoch > 0:
            self.stopped_epoch = epoch
            self.model.stop_training = True

    def on_train_end(self, logs=None):
        self._warn_missing()
        if self.stopped_epoch > 0 and self.verbose:
            print(f"Epoch {self.stopped_epoch + 1}: early stopping")
        if self.restore_best_weights and self.best_weights is not None:
            if self.verbose:
                print(f"Restoring model weights from the end of the best epoch: "
                      f"{self.best_epoch + 1}.")
            self.model.set_weights(self.best_weights)


class ModelCheckpoint(_Monitor):
    """Save the model (or its weights) after each epoch, or only when `monitor` improves.

    `filepath` may hold format fields: '{epoch:02d}', '{val_loss:.2f}', ...; a field that is
    not in the epoch's logs (a 'val_' key without validation data, or in an epoch that
    validation_freq skips) raises KeyError naming it and the keys there are, as Keras does.
    """
    _missing_effect = "saves nothing"

    def __init__(self, filepath, monitor="val_loss", verbose=0, save_best_only=False,
                 save_weights_only=False, mode="auto", save_freq="epoch",
                 initial_value_threshold=None):
        super().__init__(monitor, mode, 0)
        if save_freq != "epoch":
            raise ValueError("ModelCheckpoint supports save_freq='epoch' only")
        self.filepath = os.fspath(filepath)
        self.verbose, self.save_best_only = verbose, bool(save_best_only)
        self.save_weights_only = bool(save_weights_only)
        # NaN would be a threshold that nothing beats: nothing would ever be saved
        self.best = None if initial_value_threshold is None else _checks.finite_scalar(
            initial_value_threshold, "initial_value_threshold")

    def on_train_begin(self, logs=None):
        self._reset_monitor()

    def on_train_end(self, logs=None):
        if self.save_best_only:
            self._warn_missing()

    def on_epoch_end(self, epoch, logs=None):
        logs = logs or {}
        try:
            path = self.filepath.format(epoch=epoch + 1, **logs)
        except (ValueError, IndexError, TypeError, AttributeError) as e:
            raise ValueError(f"ModelCheckpoint cannot format its filepath {self.filepath!r} "
                             f"at epoch {epoch + 1}: {type(e).__name__}: {e}; fields are "
                             f"named, e.g. 'model_{{epoch:02d}}_{{val_loss:.3f}}.pynn'") from None
        except KeyError as e:
            raise KeyError(f"ModelCheckpoint cannot format its filepath {self.filepath!r} at "
                           f"epoch {epoch + 1}: {e} is not in the epoch logs; available "
                           f"keys: epoch, {', '.join(logs) or '(none)'} (a 'val_' key needs "
                           f"validation_data or validation_split, and validation that "
                           f"epoch)") from None
        if self.save_best_only:
            current = self._value(logs)
            if current is None or not self._better(current, self.best):
                return
            if self.verbose:
                best = self.best if self.best is not None else self._no_best()
                print(f"Epoch {epoch + 1}: {self.monitor} improved from {best} to "
                      f"{current:.5f}, saving model to {path}")
            self.best = current
        if self.save_weights_only:
            self.model.save_weights(path)
        else:
            self.model.save(path)


class ReduceLROnPlateau(_Monitor):
    """Multiply the learning rate by `factor` when `monitor` stalls for `patience` epochs.

    The optimizer needs a float learning rate: one that is a schedule raises TypeError when
    training begins (Keras raises when it would set it), rather than being replaced.
    """
    _missing_effect = "never reduces the learning rate"

    def __init__(self, monitor="val_loss", factor=0.1, patience=10, verbose=0, mode="auto",
                 min_delta=1e-4, cooldown=0, min_lr=0.0):
        super().__init__(monitor, mode, min_delta)
        if not 0.0 < factor < 1.0:
            raise ValueError(f"ReduceLROnPlateau factor must be in (0, 1), received {factor!r}")
        self.factor, self.patience, self.verbose = float(factor), int(patience), verbose
        self.cooldown, self.min_lr = int(cooldown), float(min_lr)

    def on_train_begin(self, logs=None):
        _check_settable_lr(self)
        self._reset_monitor()
        self.best, self.wait, self.cooldown_counter = None, 0, 0

    def on_train_end(self, logs=None):
        self._warn_missing()

    def on_epoch_end(self, epoch, logs=None):
        logs = logs if logs is not None else {}
        logs["learning_rate"] = float(self.model.optimizer.learning_rate)
        current = self._value(logs)
        if current is None:
            return
        if self.cooldown_counter > 0:
            self.cooldown_counter -= 1
            self.wait = 0
        if self._better(current, self.best):
            self.best = current
            self.wait = 0
        elif self.cooldown_counter <= 0:
            self.wait += 1
            if self.wait >= self.patience:
                old = float(self.model.optimizer.learning_rate)
                if old > self.min_lr:
                    new = max(old * self.factor, self.min_lr)
                    self.model.optimizer.learning_rate = new
                    if self.verbose:
                        print(f"Epoch {epoch + 1}: ReduceLROnPlateau reducing learning rate "
                              f"to {new}.")
                    self.cooldown_counter = self.cooldown
                    self.wait = 0


class LearningRateScheduler(Callback):
    """Set the learning rate at each epoch start to schedule(epoch, lr) (or schedule(epoch)).

    The optimizer needs a float learning rate: one that is a schedule raises TypeError when
    training begins, rather than being replaced.
    """

    def __init__(self, schedule, verbose=0):
        super().__init__()
        if not callable(schedule):
            raise TypeError(f"schedule must be a function of (epoch, lr) or (epoch), received "
                            f"{schedule!r}")
        self.schedule, self.verbose = schedule, verbose
        self._two = _takes_two(schedule)

    def on_train_begin(self, logs=None):
        _check_settable_lr(self)

    def on_epoch_begin(self, epoch, logs=None):
        lr = float(self.model.optimizer.learning_rate)
        # one or two arguments from the signature: retrying with one on any TypeError hid
        # the schedule's own errors behind "missing 1 required positional argument"
        new = self.schedule(epoch, lr) if self._two else self.schedule(epoch)
        if isinstance(new, (str, bytes, bool)) or not isinstance(new, (int, float, np.number)):
            raise TypeError(f"the schedule returned {new!r} at epoch {epoch}; it must return "
                            f"the learning rate as a number")
        new = float(new)
        if not math.isfinite(new) or new < 0:
            raise ValueError(f"the schedule returned learning rate {new!r}; it must be a "
                             f"finite, non-negative float")
        self.model.optimizer.learning_rate = new
        if self.verbose:
            print(f"Epoch {epoch + 1}: LearningRateScheduler setting learning rate to {new}.")

    def on_epoch_end(self, epoch, logs=None):
        if logs is not None:
            logs["learning_rate"] = float(self.model.optimizer.learning_rate)


def _takes_two(fn):
    """Whether fn takes (epoch, lr): two positional parameters, or *args. A signature that
    cannot be read (some builtins) is tried with two, as Keras calls it."""
    try:
        params = inspect.signature(fn).parameters.values()
    except (TypeError, ValueError):
        return True
    pos = [p for p in params if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
    if any(p.kind == p.VAR_POSITIONAL for p in params) or len(pos) >= 2:
        return True
    if len(pos) == 1:
        return False
    raise TypeError(f"schedule {fn!r} must take (epoch, lr) or (epoch)")


def _check_settable_lr(callback):
    lr = getattr(callback.model.optimizer, "_lr", None)
    if isinstance(lr, LearningRateSchedule):
        raise TypeError(f"{type(callback).__name__} sets the learning rate, but the optimizer's "
                        f"learning rate is the schedule {type(lr).__name__}, which cannot be "
                        f"set; give the optimizer a float learning_rate, or drop the callback")


class TerminateOnNaN(Callback):
    """Stop training as soon as a batch loss is NaN or infinite."""

    def on_train_batch_end(self, batch, logs=None):
        loss = (logs or {}).get("loss")
        if loss is not None and not math.isfinite(loss):
            print(f"Batch {batch}: Invalid loss, terminating training")
            self.model.stop_training = True


class CSVLogger(Callback):
    """Write epoch logs as CSV rows: epoch, then the log keys in sorted order.

    The columns are the first epoch's keys; if these hold no 'val_' key (validation_freq > 1
    validates later epochs only) a 'val_' column follows for each, as Keras 3 does. A key an
    epoch lacks is written 'NA'.
    """

    def __init__(self, filename, separator=",", append=False):
        super().__init__()
        if not isinstance(separator, str) or len(separator) != 1:
            raise ValueError(f"separator must be one character, received {separator!r}")
        self.filename, self.sep, self.append = os.fspath(filename), separator, bool(append)
        self._keys, self._old_header, self._header_done = None, None, False

    # The file is opened for each epoch's row and closed after it: no handle is held between
    # epochs, so a fit that another callback (or Ctrl-C) ends leaves the file closed and
    # complete up to the last epoch (it stayed open until the logger was collected).
    def on_train_begin(self, logs=None):
        exists = self.append and os.path.exists(self.filename) and os.path.getsize(self.filename)
        self._old_header = None
        if exists:   # the columns already in the file: rows are checked against them
            with open(self.filename, newline="") as f:
                self._old_header = next(csv.reader(f, delimiter=self.sep), None)
        with open(self.filename, "a" if self.append else "w", newline=""):
            pass     # created (or truncated) now, as Keras does, even if no epoch ends
        self._keys = None
        self._header_done = bool(exists)

    def on_epoch_end(self, epoch, logs=None):
        logs = logs or {}
        if self._keys is None:
            keys = list(logs)
            if not any(k.startswith("val_") for k in keys):
                keys += ["val_" + k for k in keys if k != "learning_rate"]
            keys = sorted(keys)
            if self._old_header is not None and self._old_header != ["epoch"] + keys:
                # appended under the old header, the values would sit in the wrong columns
                raise ValueError(f"CSVLogger(append=True): {self.filename} has the columns "
                                 f"{self._old_header}, this fit logs {['epoch'] + keys}; "
                                 f"log to another file or pass append=False")
            self._keys = keys
        with open(self.filename, "a", newline="") as f:
            writer = csv.writer(f, delimiter=self.sep)
            if not self._header_done:
                writer.writerow(["epoch"] + self._keys)
                self._header_done = True
            writer.writerow([epoch] + [_num(logs.get(k, "NA")) for k in self._keys])


def _num(v):
    return float(v) if isinstance(v, (float, np.floating)) else v


class LambdaCallback(Callback):
    """A callback from functions: on_epoch_begin/on_epoch_end(epoch, logs),
    on_train_batch_begin/end(batch, logs), on_train_begin/end(logs).

    on_batch_begin/end(batch, logs) are the training-batch hooks' older names (Keras); as in
    Keras, an on_train_batch_begin/end given too replaces them.
    """

    def __init__(self, on_epoch_begin=None, on_epoch_end=None, on_train_begin=None,
                 on_train_end=None, on_train_batch_begin=None, on_train_batch_end=None,
                 on_batch_begin=None, on_batch_end=None):
        super().__init__()
        for name, fn in (("on_epoch_begin", on_epoch_begin), ("on_epoch_end", on_epoch_end),
                         ("on_train_begin", on_train_begin), ("on_train_end", on_train_end),
                         ("on_train_batch_begin", on_train_batch_begin),
                         ("on_train_batch_end", on_train_batch_end),
                         ("on_batch_begin", on_batch_begin), ("on_batch_end", on_batch_end)):
            if fn is not None:
                setattr(self, name, fn)
