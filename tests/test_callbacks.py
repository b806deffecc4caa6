"""Callbacks with Keras 3 semantics, driven directly (exact logic) and through fit."""
import csv
import os
import warnings

import numpy as np
import pytest

import pynn
from pynn import callbacks, layers

BACKENDS = ["c", "reference"]


def make(backend="reference", lr=0.01):
    pynn.utils.set_random_seed(0)
    m = pynn.Sequential([layers.Dense(4, activation="relu", input_shape=(3,)),
                         layers.Dense(2, activation="softmax")], backend=backend)
    m.compile(pynn.optimizers.Adam(lr), "sparse_categorical_crossentropy", metrics=["accuracy"])
    return m


def data(n=24):
    rng = np.random.default_rng(0)
    x = rng.standard_normal((n, 3))
    return x, (x[:, 0] > 0).astype(int)


def drive(cb, model, values, key="val_loss"):
    """Run epochs by hand: set distinct weights per epoch, report `values`."""
    cb.set_model(model)
    cb.on_train_begin()
    model.stop_training = False
    stopped = None
    for epoch, v in enumerate(values):
        model.set_weights([np.full_like(w, epoch) for w in model.get_weights()])
        cb.on_epoch_end(epoch, {key: v})
        if model.stop_training:
            stopped = epoch
            break
    cb.on_train_end()
    return stopped


def test_early_stopping_stops_and_restores_best():
    m = make()
    es = callbacks.EarlyStopping(patience=2, restore_best_weights=True)
    assert drive(es, m, [1.0, 0.5, 0.7, 0.8, 0.1]) == 3
    assert es.stopped_epoch == 3 and es.best == 0.5 and es.best_epoch == 1
    assert all((w == 1).all() for w in m.get_weights())


def test_early_stopping_restores_even_without_stopping():
    m = make()
    es = callbacks.EarlyStopping(patience=5, restore_best_weights=True)
    assert drive(es, m, [1.0, 0.2, 0.7]) is None
    assert all((w == 1).all() for w in m.get_weights())


def test_early_stopping_baseline_never_met():
    m = make()
    es = callbacks.EarlyStopping(patience=2, baseline=0.01, restore_best_weights=True)
    assert drive(es, m, [1.0, 1.0, 1.0, 1.0]) == 1  # wait never reset: stops, no error
    assert all((w == 0).all() for w in m.get_weights())  # the only "best" epoch: 0
    es = callbacks.EarlyStopping(patience=1, baseline=0.01, restore_best_weights=True)
    assert drive(es, m, [0.9, 0.8, 0.7]) is None  # improving but never under the baseline
    assert all((w == 2).all() for w in m.get_weights())


def test_early_stopping_mode_min_delta_and_missing_monitor():
    m = make()
    es = callbacks.EarlyStopping(monitor="val_accuracy", patience=1, min_delta=0.05)
    assert es.mode == "max"
    assert drive(es, m, [0.5, 0.52, 0.6], key="val_accuracy") == 1  # +0.02 < min_delta
    es = callbacks.EarlyStopping(monitor="val_loss", patience=0)
    with pytest.warns(UserWarning, match="'val_loss'.*available keys: loss"):
        assert drive(es, m, [1.0, 2.0], key="loss") is None  # monitor absent: no action
    with pytest.raises(ValueError, match="mode"):
        callbacks.EarlyStopping(mode="up")


@pytest.mark.parametrize("backend", BACKENDS)
def test_early_stopping_in_fit(backend):
    x, y = data()
    m = make(backend, lr=0.0)  # nothing changes: no improvement after the first epoch
    es = callbacks.EarlyStopping(monitor="loss", patience=1, min_delta=1e-3,
                                 restore_best_weights=True)
    h = m.fit(x, y, epochs=10, batch_size=8, verbose=0, callbacks=[es])
    assert h.epoch == [0, 1] and es.stopped_epoch == 1
    m2 = make(backend, lr=0.05)
    seen = []
    rec = callbacks.LambdaCallback(on_epoch_end=lambda e, logs: seen.append(
        (logs["loss"], m2.get_weights())))
    es = callbacks.EarlyStopping(monitor="loss", patience=3, baseline=-1.0,
                                 restore_best_weights=True)
    m2.fit(x, y, epochs=4, batch_size=8, verbose=0, callbacks=[rec, es])
    best = min(seen, key=lambda t: t[0])[1]
    for a, b in zip(m2.get_weights(), best):
        np.testing.assert_array_equal(a, b)


def test_reduce_lr_on_plateau():
    m = make(lr=0.1)
    cb = callbacks.ReduceLROnPlateau(factor=0.5, patience=1, min_lr=0.03, min_delta=0.0)
    cb.set_model(m)
    cb.on_train_begin()
    lrs = []
    for epoch, v in enumerate([1.0, 1.0, 1.0, 0.5, 0.5, 1.0]):
        logs = {"val_loss": v}
        cb.on_epoch_end(epoch, logs)
        lrs.append(m.optimizer.learning_rate)
        assert "learning_rate" in logs
    assert lrs == pytest.approx([0.1, 0.05, 0.03, 0.03, 0.03, 0.03])
    with pytest.raises(ValueError, match="factor"):
        callbacks.ReduceLROnPlateau(factor=1.5)


def test_learning_rate_scheduler_in_fit():
    x, y = data()
    m = make()
    cb = callbacks.LearningRateScheduler(lambda epoch, lr: 0.1 / (epoch + 1))
    h = m.fit(x, y, epochs=3, verbose=0, callbacks=[cb])
    assert h.history["learning_rate"] == pytest.approx([0.1, 0.05, 0.1 / 3])
    cb1 = callbacks.LearningRateScheduler(lambda epoch: 0.02)
    m.fit(x, y, epochs=1, verbose=0, callbacks=[cb1])
    assert m.optimizer.learning_rate == pytest.approx(0.02)
    bad = callbacks.LearningRateScheduler(lambda epoch: float("nan"))
    with pytest.raises(ValueError, match="learning rate"):
        m.fit(x, y, epochs=1, verbose=0, callbacks=[bad])


def test_terminate_on_nan_and_stop_inside_an_epoch(capsys):
    m = make()
    t = callbacks.TerminateOnNaN()
    t.set_model(m)
    m.stop_training = False
    t.on_train_batch_end(0, {"loss": 1.0})
    assert not m.stop_training
    t.on_train_batch_end(1, {"loss": float("nan")})
    assert m.stop_training and "Invalid loss" in capsys.readouterr().out
    x, y = data()
    m = make()
    stopper = callbacks.LambdaCallback(on_train_batch_end=lambda b, logs: setattr(
        m, "stop_training", b == 1))
    h = m.fit(x, y, epochs=5, batch_size=4, verbose=0, callbacks=[stopper])
    assert h.epoch == [0] and m.optimizer.iterations == 2


def test_csv_logger(tmp_path):
    x, y = data()
    path = tmp_path / "log.csv"
    m = make()
    m.fit(x, y, epochs=2, verbose=0, validation_split=0.25,
          callbacks=[callbacks.CSVLogger(path)])
    rows = list(csv.reader(open(path)))
    assert rows[0] == ["epoch", "accuracy", "loss", "val_accuracy", "val_loss"]
    assert [r[0] for r in rows[1:]] == ["0", "1"]
    assert float(rows[2][2]) == pytest.approx(m.history.history["loss"][1])
    m.fit(x, y, epochs=1, verbose=0, callbacks=[callbacks.CSVLogger(path, append=True)])
    rows = list(csv.reader(open(path)))
    assert len(rows) == 4 and rows[0][0] == "epoch"


def test_model_checkpoint(tmp_path, monkeypatch):
    x, y = data()
    m = make()
    saved = []
    monkeypatch.setattr(m, "save_weights", lambda p, **k: saved.append(("weights", p)))
    monkeypatch.setattr(m, "save", lambda p, **k: saved.append(("model", p)))
    cb = callbacks.ModelCheckpoint(str(tmp_path / "w-{epoch:02d}-{loss:.3f}.npz"),
                                   monitor="loss", save_weights_only=True)
    m.fit(x, y, epochs=2, verbose=0, callbacks=[cb])
    assert [s[0] for s in saved] == ["weights", "weights"]
    assert saved[0][1].endswith(f"w-01-{m.history.history['loss'][0]:.3f}.npz")
    saved.clear()
    best = callbacks.ModelCheckpoint(str(tmp_path / "best.pynn"), monitor="val_loss",
                                     save_best_only=True)
    drive(best, m, [1.0, 2.0, 0.5, 0.6])
    assert saved == [("model", str(tmp_path / "best.pynn"))] * 2


@pytest.mark.parametrize("mode,values", [("min", [np.nan, 1.0, 0.5, 0.7]),
                                         ("max", [np.nan, 1.0, 2.0, 1.5])])
def test_nan_first_value_is_never_the_best(tmp_path, monkeypatch, mode, values):
    # a NaN first value became the best, which nothing beats: ModelCheckpoint kept the NaN
    # epoch's model and never saved again, EarlyStopping stopped and ReduceLROnPlateau cut
    # the rate while the value improved. As Keras: no best yet is -/+inf, NaN never improves
    m = make()
    saved = []
    monkeypatch.setattr(m, "save", lambda p, **k: saved.append(m.get_weights()[0][0, 0]))
    best = callbacks.ModelCheckpoint(str(tmp_path / "b.pynn"), monitor="val_loss",
                                     save_best_only=True, mode=mode)
    drive(best, m, values)
    assert saved == [1.0, 2.0] and best.best == values[2]       # epochs 1 and 2 (weights)
    es = callbacks.EarlyStopping(patience=2, mode=mode)
    assert drive(es, m, values) is None and es.best == values[2]
    rl = callbacks.ReduceLROnPlateau(patience=1, factor=0.5, mode=mode)
    drive(rl, m, values[:3])
    assert m.optimizer.learning_rate == pytest.approx(0.005)     # only after the NaN epoch


def test_infinite_first_value_is_not_an_improvement(tmp_path, monkeypatch, capsys):
    m = make()
    saved = []
    monkeypatch.setattr(m, "save", lambda p, **k: saved.append(m.get_weights()[0][0, 0]))
    best = callbacks.ModelCheckpoint(str(tmp_path / "b.pynn"), monitor="val_loss",
                                     save_best_only=True, verbose=1)
    drive(best, m, [np.inf, 3.0])
    assert saved == [1.0] and "improved from inf to 3.00000" in capsys.readouterr().out
    for bad in (np.nan, "1"):
        with pytest.raises((ValueError, TypeError), match="initial_value_threshold"):
            callbacks.ModelCheckpoint("x.pynn", initial_value_threshold=bad)


def test_model_checkpoint_filepath_key_missing_from_logs(tmp_path):
    # Keras raises KeyError saying which filepath could not be formatted, not a bare 'val_loss'
    x, y = data()
    cb = callbacks.ModelCheckpoint(str(tmp_path / "m-{epoch}-{val_loss:.2f}.pynn"))
    with pytest.raises(KeyError, match=r"m-\{epoch\}-\{val_loss:\.2f\}\.pynn.*'val_loss' is "
                                       r"not in the epoch logs; available keys: epoch, loss, "
                                       r"accuracy"):
        make().fit(x, y, epochs=1, verbose=0, callbacks=[cb])
    assert list(tmp_path.iterdir()) == []


def test_callback_type_check():
    x, y = data()
    with pytest.raises(TypeError, match="Callback"):
        make().fit(x, y, verbose=0, callbacks=[lambda: None])


def test_a_single_callback_needs_no_list():
    # Keras flattens `callbacks`: fit(callbacks=EarlyStopping(...)) works there
    x, y = data()
    m = make()
    log = []
    cb = callbacks.LambdaCallback(on_epoch_end=lambda epoch, logs: log.append(epoch))
    m.fit(x, y, epochs=2, verbose=0, callbacks=cb)
    m.evaluate(x, y, verbose=0, callbacks=cb)
    m.predict(x, verbose=0, callbacks=(cb,))
    assert log == [0, 1]
    with pytest.raises(TypeError, match="list of pynn.callbacks.Callback.*received dict"):
        m.fit(x, y, verbose=0, callbacks={"cb": cb})


def test_a_schedule_learning_rate_is_not_replaced():
    x, y = data()
    sch = pynn.optimizers.schedules.ExponentialDecay(0.1, 2, 0.5)
    opt = pynn.optimizers.SGD(sch)
    with pytest.raises(TypeError, match="ExponentialDecay"):
        opt.learning_rate = 0.5
    opt.learning_rate = pynn.optimizers.schedules.CosineDecay(0.1, 10)  # a schedule may
    assert isinstance(opt._lr, pynn.optimizers.schedules.CosineDecay)
    for cb in (callbacks.ReduceLROnPlateau(monitor="loss", patience=0),
               callbacks.LearningRateScheduler(lambda epoch, lr: lr)):
        m = make()
        m.compile(pynn.optimizers.SGD(sch), "sparse_categorical_crossentropy")
        with pytest.raises(TypeError, match=f"{type(cb).__name__}.*ExponentialDecay"):
            m.fit(x, y, epochs=2, verbose=0, callbacks=[cb])
        assert m.optimizer._lr is sch and m.optimizer.iterations == 0


def test_on_batch_aliases():
    x, y = data(40)
    m = make()

    class Old(callbacks.Callback):
        def __init__(self):
            super().__init__()
            self.calls = []

        def on_batch_begin(self, batch, logs=None):
            self.calls.append(("begin", batch))

        def on_batch_end(self, batch, logs=None):
            self.calls.append(("end", batch))

    class Both(Old):
        def on_train_batch_end(self, batch, logs=None):  # replaces on_batch_end (Keras)
            self.calls.append(("train_end", batch))

    old, both, seen = Old(), Both(), []
    lam = callbacks.LambdaCallback(on_batch_begin=lambda b, logs: seen.append(("begin", b)),
                                   on_batch_end=lambda b, logs: seen.append(("end", b)))
    m.fit(x, y, epochs=1, batch_size=10, verbose=0, callbacks=[old, both, lam])
    expect = [(e, b) for b in range(4) for e in ("begin", "end")]
    assert old.calls == expect and seen == expect
    assert both.calls == [(e, b) for b in range(4) for e in ("begin", "train_end")]


def _open_fds_on(path):
    fd_dir = "/proc/self/fd"
    out = []
    for fd in os.listdir(fd_dir):
        try:
            if os.readlink(os.path.join(fd_dir, fd)) == str(path):
                out.append(fd)
        except OSError:
            pass
    return out


@pytest.mark.skipif(not os.path.isdir("/proc/self/fd"), reason="needs /proc/self/fd")
def test_csv_logger_holds_no_file_when_another_callback_ends_the_fit(tmp_path):
    # on_train_end does not run when a callback raises (as in Keras): the logger's file
    # stayed open until the logger was collected. Now each row is written and closed
    class Boom(callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            if epoch == 1:
                raise RuntimeError("boom")
    x, y = data()
    path = (tmp_path / "log.csv").resolve()
    m = make()
    logger = callbacks.CSVLogger(path)
    with pytest.raises(RuntimeError, match="boom"):
        m.fit(x, y, epochs=4, verbose=0, callbacks=[logger, Boom()])
    assert _open_fds_on(path) == []
    rows = list(csv.reader(open(path)))
    assert rows[0] == ["epoch", "accuracy", "loss", "val_accuracy", "val_loss"]
    assert [r[0] for r in rows[1:]] == ["0", "1"]
    # the next fit starts the file afresh (append=False), as before
    m.fit(x, y, epochs=1, verbose=0, callbacks=[logger])
    assert [r[0] for r in csv.reader(open(path))] == ["epoch", "0"]
    assert _open_fds_on(path) == []
    # driven by hand without on_train_begin (a custom loop): header, then rows
    other = callbacks.CSVLogger(tmp_path / "hand.csv")
    other.on_epoch_end(0, {"loss": 1.0})
    other.on_epoch_end(1, {"loss": 0.5})
    assert list(csv.reader(open(tmp_path / "hand.csv"))) == [
        ["epoch", "loss", "val_loss"], ["0", "1.0", "NA"], ["1", "0.5", "NA"]]


def test_csv_logger_validation_freq(tmp_path):
    x, y = data()
    path = tmp_path / "log.csv"
    m = make()
    m.fit(x, y, epochs=3, verbose=0, validation_data=(x, y), validation_freq=2,
          callbacks=[callbacks.CSVLogger(path)])
    rows = list(csv.reader(open(path)))
    assert rows[0] == ["epoch", "accuracy", "loss", "val_accuracy", "val_loss"]
    assert [len(r) for r in rows] == [5] * 4
    assert rows[1][3:] == rows[3][3:] == ["NA", "NA"]
    assert float(rows[2][4]) == pytest.approx(m.history.history["val_loss"][0])


def test_missing_monitor_warns_once():
    x, y = data()
    for cb in (callbacks.EarlyStopping(), callbacks.ReduceLROnPlateau(),
               callbacks.ModelCheckpoint("unused.pynn", save_best_only=True)):
        with pytest.warns(UserWarning) as rec:
            make().fit(x, y, epochs=3, verbose=0, callbacks=[cb])  # no validation
        msgs = [str(w.message) for w in rec if type(cb).__name__ in str(w.message)]
        assert len(msgs) == 1 and "'val_loss'" in msgs[0]
        assert {"loss", "accuracy"} <= set(msgs[0].split("available keys: ")[1].split(", "))
    es = callbacks.EarlyStopping(monitor="val_los")  # a typo warns at the first epoch
    es.set_model(make())
    es.on_train_begin()
    with pytest.warns(UserWarning, match="'val_los'.*available keys: loss, val_loss"):
        es.on_epoch_end(0, {"loss": 1.0, "val_loss": 1.0})
    with warnings.catch_warnings():  # validation every other epoch: val_loss comes later
        warnings.simplefilter("error")
        make().fit(x, y, epochs=3, verbose=0, validation_data=(x, y), validation_freq=2,
                   callbacks=[callbacks.EarlyStopping(), callbacks.ReduceLROnPlateau()])


def test_csv_logger_append_with_other_columns_is_refused(tmp_path):
    # a second fit logging other keys appended its rows under the first fit's header, so
    # values sat in the wrong columns without a word
    x, y = data()
    m = make()
    p = tmp_path / "log.csv"
    m.fit(x, y, epochs=2, verbose=0, callbacks=[callbacks.CSVLogger(p, append=True)])
    m.fit(x, y, epochs=1, verbose=0, callbacks=[callbacks.CSVLogger(p, append=True)])
    rows = list(csv.reader(open(p)))
    assert len(rows) == 4 and all(len(r) == len(rows[0]) for r in rows)
    m.compile(pynn.optimizers.Adam(0.01), "sparse_categorical_crossentropy")  # no accuracy
    with pytest.raises(ValueError, match="has the columns .* this fit logs"):
        m.fit(x, y, epochs=1, verbose=0, callbacks=[callbacks.CSVLogger(p, append=True)])
    assert list(csv.reader(open(p))) == rows
    with pytest.raises(ValueError, match="separator must be one character"):
        callbacks.CSVLogger(p, separator=";;")


def test_learning_rate_scheduler_keeps_the_schedules_own_error():
    # a TypeError inside a two-argument schedule was retried as schedule(epoch), which
    # raised "missing 1 required positional argument: 'lr'" instead
    x, y = data()
    m = make()

    def buggy(epoch, lr):
        return lr + "x"
    with pytest.raises(TypeError, match="unsupported operand|can only concatenate|must be"):
        m.fit(x, y, epochs=1, verbose=0, callbacks=[callbacks.LearningRateScheduler(buggy)])
    def returning(value):
        return lambda epoch: value
    for ret in ("0.1", None, np.array([0.1, 0.2])):
        with pytest.raises(TypeError, match="the schedule returned"):
            m.fit(x, y, epochs=1, verbose=0,
                  callbacks=[callbacks.LearningRateScheduler(returning(ret))])
    with pytest.raises(TypeError, match="schedule must be a function"):
        callbacks.LearningRateScheduler(0.1)
    with pytest.raises(TypeError, match=r"must take \(epoch, lr\) or \(epoch\)"):
        callbacks.LearningRateScheduler(lambda: 0.1)


def test_monitor_arguments_are_checked():
    # min_delta=nan made every epoch 'no improvement' (training stopped while the loss fell);
    # baseline=nan, patience=-5 or '2' and monitor=None were taken
    for kw, exc in ((dict(min_delta=float("nan")), ValueError),
                    (dict(baseline=float("nan")), ValueError),
                    (dict(patience=-5), ValueError), (dict(patience="2"), TypeError),
                    (dict(start_from_epoch=1.5), TypeError),
                    (dict(monitor=None), TypeError), (dict(monitor=3), TypeError)):
        with pytest.raises(exc):
            callbacks.EarlyStopping(**kw)
    with pytest.raises(ValueError, match="min_delta must be finite"):
        callbacks.ReduceLROnPlateau(min_delta=float("inf"))


@pytest.mark.parametrize("template", ["{epoch:q}.pynn", "{loss:d}.pynn", "{}.pynn",
                                      "{epoch[0]}.pynn", "{epoch.pynn"])
def test_model_checkpoint_bad_template_names_the_filepath(tmp_path, template):
    # str.format's own errors came raw from inside fit (IndexError: Replacement index 0 ..)
    x, y = data()
    m = make()
    cb = callbacks.ModelCheckpoint(str(tmp_path / template), monitor="loss")
    with pytest.raises(ValueError, match="ModelCheckpoint cannot format its filepath"):
        m.fit(x, y, epochs=1, verbose=0, callbacks=[cb])
