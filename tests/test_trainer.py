"""fit/evaluate/predict semantics (Keras 3): batching with a last partial batch,
validation_split order, History contents, initial_epoch, reproducibility, progress output,
return values, and bad input raising clear errors before any kernel runs."""
import io
import sys

import numpy as np
import pytest

import pynn
from pynn import layers

BACKENDS = ["c", "reference"]


def make(backend, seed=0, dropout=0.0, n_in=5, classes=3, opt="adam", metrics=("accuracy",)):
    pynn.utils.set_random_seed(seed)
    ls = [layers.Dense(8, activation="relu", input_shape=(n_in,))]
    if dropout:
        ls.append(layers.Dropout(dropout))
    ls.append(layers.Dense(classes, activation="softmax"))
    m = pynn.Sequential(ls, backend=backend)
    m.compile(opt, "sparse_categorical_crossentropy", metrics=list(metrics))
    return m


def data(n=50, n_in=5, classes=3, seed=1):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, n_in))
    y = (x[:, 0] > 0).astype(int) + (x[:, 1] > 1)  # learnable
    return x, np.minimum(y, classes - 1)


class Recorder(pynn.callbacks.Callback):
    def __init__(self):
        super().__init__()
        self.events = []
        self.batch_sizes = []

    def on_train_begin(self, logs=None): self.events.append("train_begin")
    def on_epoch_begin(self, epoch, logs=None): self.events.append(("epoch_begin", epoch))
    def on_epoch_end(self, epoch, logs=None): self.events.append(("epoch_end", epoch, dict(logs)))
    def on_train_batch_end(self, batch, logs=None): self.events.append(("batch", batch))
    def on_train_end(self, logs=None): self.events.append("train_end")


@pytest.mark.parametrize("backend", BACKENDS)
def test_fit_learns_and_history(backend):
    x, y = data(n=64)
    m = make(backend, opt=pynn.optimizers.Adam(0.03))
    h = m.fit(x, y, epochs=15, batch_size=16, verbose=0, validation_data=(x[:20], y[:20]))
    assert h is m.history and isinstance(h, pynn.callbacks.History)
    assert set(h.history) == {"loss", "accuracy", "val_loss", "val_accuracy"}
    assert all(len(v) == 15 for v in h.history.values()) and h.epoch == list(range(15))
    assert h.history["loss"][-1] < h.history["loss"][0]
    assert h.history["accuracy"][-1] > 0.7
    loss, acc = m.evaluate(x, y, verbose=0)
    assert isinstance(loss, float) and 0 <= acc <= 1


@pytest.mark.parametrize("backend", BACKENDS)
def test_partial_last_batch_and_batch_count(backend):
    x, y = data(n=23)
    m = make(backend)
    rec = Recorder()
    m.fit(x, y, epochs=2, batch_size=10, verbose=0, callbacks=[rec])
    batches = [e for e in rec.events if isinstance(e, tuple) and e[0] == "batch"]
    assert batches == [("batch", i) for i in (0, 1, 2)] * 2  # 10 + 10 + 3
    # the last partial batch takes part: the metric counts all 23 samples
    assert m.metrics[0].count == 23
    assert m.predict(x, batch_size=10, verbose=0).shape == (23, 3)
    # predict batched equals predict in one batch
    np.testing.assert_allclose(m.predict(x, batch_size=7, verbose=0),
                               m.predict(x, batch_size=100, verbose=0), rtol=1e-6, atol=1e-7)


def test_callback_order_and_epoch_logs():
    x, y = data(n=20)
    m = make("reference")
    rec = Recorder()
    m.fit(x, y, epochs=3, batch_size=10, verbose=0, initial_epoch=1, callbacks=[rec])
    names = [e if isinstance(e, str) else e[:2] for e in rec.events]
    assert names == ["train_begin", ("epoch_begin", 1), ("batch", 0), ("batch", 1),
                     ("epoch_end", 1), ("epoch_begin", 2), ("batch", 0), ("batch", 1),
                     ("epoch_end", 2), "train_end"]
    assert m.history.epoch == [1, 2]  # initial_epoch counts to the final epoch
    assert set(rec.events[4][2]) == {"loss", "accuracy"}


def test_validation_split_takes_last_samples_before_shuffling():
    x, y = data(n=40)
    seen = []

    class Spy(pynn.callbacks.Callback):
        pass

    m = make("reference")
    orig = m._test_step

    def test_step(xb, yb, sw):
        seen.append(xb.copy())
        return orig(xb, yb, sw)

    m._test_step = test_step
    train_seen = []
    orig_train = m._train_step

    def train_step(xb, yb, sw):
        train_seen.append(xb.copy())
        return orig_train(xb, yb, sw)

    m._train_step = train_step
    m.fit(x, y, epochs=1, batch_size=8, validation_split=0.25, shuffle=True, verbose=0)
    np.testing.assert_array_equal(np.concatenate(seen), x[30:].astype(np.float32))
    tr = np.concatenate(train_seen)
    assert tr.shape[0] == 30
    np.testing.assert_array_equal(np.sort(tr, axis=0), np.sort(x[:30].astype(np.float32), axis=0))
    assert not np.array_equal(tr, x[:30].astype(np.float32))  # shuffled
    with pytest.raises(ValueError, match="validation"):
        m.fit(x[:1], y[:1], validation_split=0.5, verbose=0)
    # not a number: a clear TypeError (a string compared with 0.0 before)
    with pytest.raises(TypeError, match="validation_split must be a number.*'0.25' \\(str\\)"):
        m.fit(x, y, validation_split="0.25", verbose=0)
    h = m.fit(x, y, epochs=1, validation_split=np.float32(0.25), verbose=0)  # NumPy scalar
    assert "val_loss" in h.history


@pytest.mark.parametrize("backend", BACKENDS)
def test_reproducible_with_set_random_seed_and_thread_count(backend):
    x, y = data(n=30)
    results = []
    for threads in (1, 2, 1):
        with pynn.num_threads(threads):
            m = make(backend, seed=42, dropout=0.3)
            m.fit(x, y, epochs=2, batch_size=8, verbose=0)
            results.append([w.copy() for w in m.get_weights()])
    for other in results[1:]:
        for a, b in zip(results[0], other):
            np.testing.assert_array_equal(a, b)
    m = make(backend, seed=43, dropout=0.3)
    assert not np.array_equal(m.get_weights()[0], results[0][0])


def test_fit_seed_argument_fixes_shuffling():
    x, y = data(n=30)
    ws = []
    for draw in (0, 1):
        m = make("reference", seed=3)
        np.random.default_rng(draw)  # unrelated generators do not matter
        pynn.utils.get_rng().random(draw + 1)  # the library generator moves differently
        m.fit(x, y, epochs=1, batch_size=8, verbose=0, seed=7)
        ws.append(m.get_weights()[0])
    np.testing.assert_array_equal(ws[0], ws[1])


def test_no_shuffle_is_deterministic_and_uses_views():
    x, y = data(n=16)
    a = make("reference", seed=1)
    b = make("reference", seed=1)
    a.fit(x, y, epochs=2, batch_size=5, shuffle=False, verbose=0)
    b.fit(x, y, epochs=2, batch_size=5, shuffle=False, verbose=0)
    np.testing.assert_array_equal(a.get_weights()[0], b.get_weights()[0])


def test_evaluate_returns():
    x, y = data(n=20)
    m = make("reference")
    r = m.evaluate(x, y, verbose=0)
    assert isinstance(r, list) and len(r) == 2
    d = m.evaluate(x, y, verbose=0, return_dict=True)
    assert set(d) == {"loss", "accuracy"} and d["loss"] == r[0]
    m2 = make("reference", metrics=())
    assert isinstance(m2.evaluate(x, y, verbose=0), float)
    # evaluate's loss equals the loss of predict's probabilities (fused path is exact)
    p = m.predict(x, verbose=0).astype(np.float64)
    expect = -np.mean(np.log(p[np.arange(20), y]))
    np.testing.assert_allclose(r[0], expect, rtol=1e-5)
    np.testing.assert_allclose(r[1], np.mean(p.argmax(1) == y))


def test_train_test_predict_on_batch():
    x, y = data(n=12)
    m = make("reference")
    w0 = m.get_weights()[0].copy()
    out = m.train_on_batch(x, y)
    assert isinstance(out, list) and len(out) == 2
    assert not np.array_equal(m.get_weights()[0], w0)
    assert m.optimizer.iterations == 1
    w1 = m.get_weights()[0].copy()
    t = m.test_on_batch(x, y, return_dict=True)
    assert set(t) == {"loss", "accuracy"}
    np.testing.assert_array_equal(m.get_weights()[0], w1)
    p = m.predict_on_batch(x)
    np.testing.assert_array_equal(p, m.predict(x, batch_size=12, verbose=0))
    p2 = m.predict_on_batch(x[:3])
    assert p.shape == (12, 3) and p2.shape == (3, 3)  # outputs are copies, not buffers


def test_class_and_sample_weight():
    x, y = data(n=20)
    m = make("reference")
    l_plain = m.evaluate(x, y, verbose=0)[0]
    sw = np.zeros(20)
    sw[:10] = 2.0
    l_w = m.evaluate(x, y, sample_weight=sw, verbose=0)[0]
    l_half = m.evaluate(x[:10], y[:10], verbose=0)[0]
    np.testing.assert_allclose(l_w, l_half, rtol=1e-5)  # sum(w l) / B with w = 2 on half
    assert l_plain != l_w
    m.fit(x, y, class_weight={0: 1.0, 1: 3.0, 2: 0.5}, epochs=1, verbose=0)
    with pytest.raises(ValueError, match="sample_weight"):
        m.fit(x, y, sample_weight=np.ones(3), verbose=0)
    # negative keys indexed from the end, negative weights gave negative losses
    for bad in ({-1: 5.0}, {0: -5.0}, {0.5: 1.0}, {0: float("nan")}):
        with pytest.raises(ValueError, match="class_weight"):
            m.fit(x, y, class_weight=bad, epochs=1, verbose=0)


def test_class_weight_refused_for_sequence_outputs():
    # (B, T) labels: each sample's weight came from an argmax over its time positions
    m = pynn.Sequential([pynn.layers.Input(shape=(7,)), pynn.layers.Embedding(5, 4),
                         pynn.layers.Dense(3)])
    m.compile("sgd", pynn.losses.SparseCategoricalCrossentropy(from_logits=True))
    x = np.random.default_rng(0).integers(0, 5, (6, 7))
    with pytest.raises(ValueError, match="class_weight needs one class per sample"):
        m.fit(x, x % 3, class_weight={0: 1.0, 2: 100.0}, epochs=1, verbose=0)


def test_progress_output_verbose_2_and_non_terminal(capsys):
    x, y = data(n=20)
    m = make("reference")
    m.fit(x, y, epochs=2, batch_size=5, verbose=2)
    out = capsys.readouterr().out
    lines = [l for l in out.splitlines() if l]
    assert lines[0] == "Epoch 1/2" and lines[2] == "Epoch 2/2" and len(lines) == 4
    assert lines[1].startswith("4/4 - ") and lines[3].startswith("4/4 - ")
    assert "loss: " in lines[1] and "accuracy: " in lines[1] and "\r" not in out
    m.fit(x, y, epochs=2, batch_size=5, verbose=1)  # stdout is not a terminal here
    out = capsys.readouterr().out
    assert out.count("Epoch 1/2") == 1 and out.count("4/4 - ") == 2 and "\r" not in out
    m.fit(x, y, epochs=1, verbose=0)
    assert capsys.readouterr().out == ""
    m.evaluate(x, y, verbose=2)
    assert capsys.readouterr().out.startswith("1/1 - ")


def test_progress_bar_on_a_terminal(monkeypatch):
    class Tty(io.StringIO):
        def isatty(self):
            return True

    buf = Tty()
    monkeypatch.setattr(sys, "stdout", buf)
    x, y = data(n=20)
    m = make("reference")
    m.fit(x, y, epochs=2, batch_size=5, verbose=1)
    out = buf.getvalue()
    assert "Epoch 2/2" in out and "\r" in out and "[" in out and "/step" in out
    assert "4/4 [====================]" in out
    from pynn.trainer import Progbar
    buf2 = Tty()
    bar = Progbar(10, 1, stream=buf2)
    bar.update(3, {"loss": 0.5})
    assert "ETA" in buf2.getvalue() and "3/10" in buf2.getvalue()


def test_fit_before_compile_raises():
    m = pynn.Sequential([layers.Dense(2, input_shape=(3,))])
    x = np.ones((4, 3))
    for call in (lambda: m.fit(x, np.zeros(4)), lambda: m.evaluate(x, np.zeros(4)),
                 lambda: m.train_on_batch(x, np.zeros(4))):
        with pytest.raises(ValueError, match="compile"):
            call()
    assert m.predict(x, verbose=0).shape == (4, 2)  # predict needs no compile


@pytest.mark.parametrize("backend", BACKENDS)
def test_bad_input_raises_before_kernels(backend):
    m = make(backend)
    x, y = data(n=10)
    w0 = m.get_weights()[0].copy()
    cases = [
        (x[:, :4], y, ValueError, r"expects inputs of shape \(None, 5\).*\(10, 4\)"),
        (x, y[:9], ValueError, "different numbers of samples"),
        (x, np.where(y == 0, 3, y), ValueError, r"in \[0, 3\)"),
        (x, y - 0.5, ValueError, "whole numbers"),
        (x, np.where(y == 0, np.nan, y), ValueError, "NaN"),
        (np.where(x > 1, np.nan, x), y, ValueError, "NaN"),
        (x[:0], y[:0], ValueError, "empty"),
        (x[:, 0], y, ValueError, "feature axis"),
        (x.astype(str), y, TypeError, "numeric"),
        (x, y.astype(str), TypeError, "integers"),
    ]
    for xx, yy, exc, msg in cases:
        with pytest.raises(exc, match=msg):
            m.fit(xx, yy, verbose=0)
    with pytest.raises(ValueError, match="batch_size"):
        m.fit(x, y, batch_size=0, verbose=0)
    with pytest.raises(ValueError, match="verbose"):
        m.fit(x, y, verbose=3)
    with pytest.raises(ValueError, match="expects inputs"):
        m.predict(x[:, :4])
    with pytest.raises(ValueError, match="NaN"):
        m.predict(np.full((2, 5), np.nan))
    np.testing.assert_array_equal(m.get_weights()[0], w0)  # nothing ran
    assert m.optimizer.iterations == 0


def test_uint8_and_float64_inputs_are_converted_once():
    rng = np.random.default_rng(0)
    x = rng.integers(0, 256, (16, 5)).astype(np.uint8)
    y = rng.integers(0, 3, 16).astype(np.uint8)
    m = make("reference")
    m.fit(x / 255.0, y, epochs=1, verbose=0)
    m.fit(x, y, epochs=1, verbose=0)
    assert m.predict(x, verbose=0).dtype == np.float32


def test_float64_model_and_regression():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((32, 3))
    y = x @ np.array([[1.0], [-2.0], [0.5]]) + 0.1
    m = pynn.Sequential([layers.Dense(1, input_shape=(3,))], dtype="float64",
                        backend="reference")
    m.compile(pynn.optimizers.SGD(0.1), "mse", metrics=["mae"])
    h = m.fit(x, y, epochs=60, batch_size=8, verbose=0)
    assert h.history["loss"][-1] < 1e-3
    assert m.predict(x, verbose=0).dtype == np.float64
    np.testing.assert_allclose(m.get_weights()[0].ravel(), [1.0, -2.0, 0.5], atol=0.02)
    m.fit(x, y[:, 0], epochs=1, verbose=0)  # (n,) targets for a (n, 1) output
    with pytest.raises(ValueError, match="targets"):
        m.fit(x, np.ones((32, 2)), verbose=0)


@pytest.mark.parametrize("backend", BACKENDS)
def test_the_classic_program(backend, capsys):
    # the MNIST program of the issue, on small synthetic 28x28 uint8 data
    rng = np.random.default_rng(0)
    x_train = rng.integers(0, 256, (96, 28, 28)).astype(np.uint8)
    y_train = (x_train[:, :14].mean(axis=(1, 2)) > x_train[:, 14:].mean(axis=(1, 2))).astype(
        np.uint8)
    x_test, y_test = x_train[:40], y_train[:40]
    x_train, x_test = x_train / 255.0, x_test / 255.0
    with pynn.ops.use_backend(backend):
        model = pynn.Sequential([
            pynn.layers.Flatten(input_shape=(28, 28)),
            pynn.layers.Dense(128, activation='relu'),
            pynn.layers.Dropout(0.2),
            pynn.layers.Dense(10, activation='softmax')
        ])
    model.compile(optimizer='adam', loss='sparse_categorical_crossentropy', metrics=['accuracy'])
    model.fit(x_train, y_train, epochs=5)
    test_loss, test_acc = model.evaluate(x_test, y_test, verbose=2)
    predictions = model.predict(x_test)
    predicted_labels = np.argmax(predictions, axis=1)
    out = capsys.readouterr().out
    assert out.count("Epoch ") == 5 and "3/3 - " in out and "2/2 - " in out
    assert predictions.shape == (40, 10) and predictions.dtype == np.float32
    np.testing.assert_allclose(predictions.sum(axis=1), 1.0, rtol=1e-5)
    assert test_acc == pytest.approx(np.mean(predicted_labels == y_test))
    assert test_acc > 0.6 and test_loss < model.history.history["loss"][0]
    assert model.ops is pynn.ops.get_backend(backend)


def test_activation_layer_output_fuses_like_dense_activation():
    x, y = data(n=12)
    pynn.utils.set_random_seed(9)
    a = pynn.Sequential([layers.Dense(3, input_shape=(5,)), layers.Activation("softmax")],
                        backend="reference", dtype="float64")
    b = pynn.Sequential([layers.Dense(3, activation="softmax", input_shape=(5,))],
                        backend="reference", dtype="float64")
    b.set_weights(a.get_weights())
    for m in (a, b):
        m.compile(pynn.optimizers.SGD(0.1), "sparse_categorical_crossentropy")
        m.fit(x, y, epochs=2, batch_size=4, shuffle=False, verbose=0)
    assert a._fused and b._fused
    for wa, wb in zip(a.get_weights(), b.get_weights()):
        np.testing.assert_allclose(wa, wb, rtol=1e-12)
    np.testing.assert_allclose(a.predict(x, verbose=0), b.predict(x, verbose=0), rtol=1e-12)


from hypothesis import given, settings, strategies as st  # noqa: E402


@settings(max_examples=15, deadline=None)
@given(n=st.integers(1, 40), batch=st.integers(1, 50), backend=st.sampled_from(BACKENDS))
def test_batching_any_size(n, batch, backend):
    """predict in batches equals predict in one batch; fit runs ceil(n / batch) steps."""
    x, y = data(n=n, seed=n)
    m = make(backend, seed=1)
    full = m.predict(x, batch_size=n, verbose=0)
    np.testing.assert_allclose(m.predict(x, batch_size=batch, verbose=0), full,
                               rtol=1e-6, atol=1e-7)
    m.fit(x, y, batch_size=batch, epochs=1, verbose=0)
    assert m.optimizer.iterations == -(-n // batch)
    assert m.metrics[0].count == n


def test_all_finite_is_exact_for_huge_values_nan_and_inf():
    from pynn.trainer import all_finite
    huge = np.full((3, 4), 3e38, np.float32)          # x.x overflows: the exact test decides
    assert all_finite(huge)
    for bad in (np.nan, np.inf, -np.inf):
        x = huge.copy()
        x[2, 3] = bad
        assert not all_finite(x)
    assert all_finite(np.zeros((2, 2)))
    assert not all_finite(np.array([[0.0, np.nan]]))


def test_validation_freq_must_be_a_positive_integer():
    # 0 divided by zero, -1 validated every epoch, 1.5 never
    x, y = data(n=20)
    m = make("reference")
    for bad in (0, -1, 1.5, [1], True):
        with pytest.raises(ValueError, match="validation_freq"):
            m.fit(x, y, validation_split=0.5, validation_freq=bad, epochs=1, verbose=0)


def test_steps_refused_for_arrays():
    # steps was silently ignored: predict(steps=1) returned every row
    x, y = data(n=6)
    m = make("reference")
    with pytest.raises(ValueError, match="steps"):
        m.predict(x, steps=1, batch_size=2, verbose=0)
    with pytest.raises(ValueError, match="steps"):
        m.evaluate(x, y, steps=1, verbose=0)


def test_class_weight_of_binary_targets():
    # (n, 1) targets: the class is the rounded target (the argmax of one column was always 0)
    m = pynn.Sequential([pynn.layers.Input(shape=(2,)), pynn.layers.Dense(1, activation="sigmoid")])
    m.compile("sgd", "binary_crossentropy")
    y = np.array([[0.0], [1.0], [1.0], [0.0]])
    w = pynn.trainer.sample_weights(m, m._targets(y), 4, class_weight={0: 1.0, 1: 100.0})
    np.testing.assert_array_equal(w, [1, 100, 100, 1])


# -- Keras semantics of weights, metrics and hooks ----------------------------------------------
def test_class_weight_weighs_training_not_the_validation_split():
    x, y = data(50)
    m = make("c")
    h = m.fit(x, y, epochs=1, validation_split=0.4, shuffle=False, verbose=0,
              class_weight={0: 10.0, 1: 1.0, 2: 1.0})
    plain = m.evaluate(x[30:], y[30:], verbose=0, return_dict=True)
    assert h.history["val_loss"][0] == pytest.approx(plain["loss"], rel=1e-6)
    assert h.history["val_accuracy"][0] == pytest.approx(plain["accuracy"], rel=1e-6)
    # a sample_weight of the split part still applies to its validation loss
    sw = np.linspace(0.1, 2.0, 50)
    m2 = make("c")
    h2 = m2.fit(x, y, epochs=1, validation_split=0.4, shuffle=False, verbose=0,
                sample_weight=sw, class_weight={0: 10.0, 1: 1.0, 2: 1.0})
    want = m2.evaluate(x[30:], y[30:], sample_weight=sw[30:], verbose=0, return_dict=True)
    assert h2.history["val_loss"][0] == pytest.approx(want["loss"], rel=1e-6)


def test_metrics_ignore_sample_weight_weighted_metrics_apply_it():
    x, y = data(40)
    m = make("c")
    m.compile("adam", "sparse_categorical_crossentropy", metrics=["accuracy"],
              weighted_metrics=["accuracy"])
    assert m.metrics_names == ["loss", "accuracy", "weighted_accuracy"]
    sw = np.zeros(40)
    sw[:5] = 1.0
    logs = m.evaluate(x, y, sample_weight=sw, verbose=0, return_dict=True)
    pred = m.predict(x, verbose=0).argmax(axis=1)
    assert logs["accuracy"] == pytest.approx(np.mean(pred == y))
    assert logs["weighted_accuracy"] == pytest.approx(np.mean(pred[:5] == y[:5]))
    h = m.fit(x, y, epochs=1, verbose=0, validation_data=(x, y, sw))
    assert {"accuracy", "weighted_accuracy", "val_weighted_accuracy"} <= set(h.history)
    cfg = m.get_compile_config()
    assert cfg["weighted_metrics"] == ["accuracy"]
    m3 = make("c")
    m3.compile_from_config(cfg)
    assert m3.metrics_names == ["loss", "accuracy", "weighted_accuracy"]
    with pytest.raises(ValueError, match="twice"):
        acc = pynn.metrics.SparseCategoricalAccuracy()
        m.compile("adam", "sparse_categorical_crossentropy", metrics=[acc],
                  weighted_metrics=[acc])


def test_accuracy_under_a_regression_loss_follows_the_shapes():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((60, 4))
    onehot = np.eye(3)[rng.integers(0, 3, 60)]
    m = pynn.Sequential([layers.Dense(3, input_shape=(4,))])
    m.compile("sgd", "mse", metrics=["accuracy"])
    got = m.evaluate(x, onehot, verbose=0, return_dict=True)["accuracy"]
    want = np.mean(m.predict(x, verbose=0).argmax(1) == onehot.argmax(1))
    assert got == pytest.approx(want)                # categorical, not element-wise binary
    b = pynn.Sequential([layers.Dense(1, activation="sigmoid", input_shape=(4,))])
    b.compile("sgd", "mse", metrics=["accuracy"])
    yb = (x[:, :1] > 0).astype(float)
    got = b.evaluate(x, yb, verbose=0, return_dict=True)["accuracy"]
    assert got == pytest.approx(np.mean((b.predict(x, verbose=0) > 0.5) == (yb > 0.5)))


def test_metrics_that_read_other_targets_than_the_loss_are_refused():
    m = make("c")
    for bad in ("mae", "binary_accuracy", "categorical_accuracy"):
        with pytest.raises(ValueError, match="class indices"):
            m.compile("adam", "sparse_categorical_crossentropy", metrics=[bad])
    with pytest.raises(ValueError, match="shaped like the predictions"):
        m.compile("adam", "categorical_crossentropy", metrics=["sparse_categorical_accuracy"])
    m.compile("adam", "categorical_crossentropy", metrics=["accuracy", "mae"])


def test_optimizer_state_for_other_layers_is_refused():
    x, y = data(40)
    m = pynn.Sequential([layers.Dense(8, activation="relu", input_shape=(5,)),
                         layers.Dense(6, activation="relu"), layers.Dense(3, activation="softmax")])
    m.compile("adam", "sparse_categorical_crossentropy")
    m.fit(x, y, epochs=1, verbose=0)
    m.build((None, 5))                                  # same layers, new buffers: fine
    m.fit(x, y, epochs=1, verbose=0)
    m.pop()
    m.pop()
    m.add(layers.Dense(3, activation="softmax"))       # fewer parameters: moments misread
    with pytest.raises(ValueError, match="Compile again"):
        m.fit(x, y, epochs=1, verbose=0)
    m.compile("adam", "sparse_categorical_crossentropy")
    m.fit(x, y, epochs=1, verbose=0)
    m.pop()
    m.add(layers.Dense(7, activation="relu"))
    m.add(layers.Dense(3, activation="softmax"))       # more: was an error about shapes
    with pytest.raises(ValueError, match="Compile again"):
        m.fit(x, y, epochs=1, verbose=0)


def test_fit_validation_runs_test_hooks_and_on_batch_aliases():
    calls = []

    class Spy(pynn.callbacks.Callback):
        def on_batch_end(self, batch, logs=None):
            calls.append("batch")

        def on_test_begin(self, logs=None):
            calls.append("test_begin")

        def on_test_batch_end(self, batch, logs=None):
            calls.append("test_batch")

        def on_test_end(self, logs=None):
            calls.append("test_end")

    x, y = data(40)
    make("c").fit(x, y, epochs=2, batch_size=10, validation_data=(x[:20], y[:20]),
                  validation_freq=2, callbacks=[Spy()], verbose=0)
    assert calls == ["batch"] * 4 + ["batch"] * 4 + ["test_begin"] + ["test_batch"] * 2 + \
        ["test_end"]


def test_a_refused_compile_leaves_the_previous_one():
    x, y = data(20)
    m = make("c")
    m.fit(x, y, epochs=1, verbose=0)
    opt, loss, metrics = m.optimizer, m.loss, list(m.metrics)
    mine = pynn.metrics.SparseCategoricalAccuracy(name="acc")
    with pytest.raises(ValueError, match="class indices"):
        m.compile("sgd", "sparse_categorical_crossentropy", metrics=["mae"],
                  weighted_metrics=[mine])
    assert m.optimizer is opt and m.loss is loss and m.metrics == metrics
    assert mine.name == "acc"                    # not renamed by the refused call
    m.fit(x, y, epochs=1, verbose=0)


def test_a_copied_layer_in_place_of_the_trained_one_is_a_new_layer():
    import copy
    x, y = data(20)
    m = make("c")
    m.fit(x, y, epochs=1, verbose=0)
    twin = copy.deepcopy(m.layers[-1])
    m.pop()
    m.add(twin)
    with pytest.raises(ValueError, match="Compile again"):
        m.fit(x, y, epochs=1, verbose=0)


def test_no_monitor_warning_when_no_epoch_runs():
    import warnings
    x, y = data(20)
    m = make("c")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        m.fit(x, y, epochs=2, initial_epoch=2, verbose=0,
              callbacks=[pynn.callbacks.EarlyStopping(monitor="loss"),
                         pynn.callbacks.ReduceLROnPlateau(monitor="val_loss")])


def test_targets_wrapped_in_a_one_element_list():
    # [x] was taken for x but [y] was "x has 50 samples, y has 1"
    x, y = data()
    a, b = make("reference"), make("reference")
    ha = a.fit(x, y, epochs=2, batch_size=16, shuffle=False, verbose=0,
               validation_data=(x[:10], y[:10]))
    hb = b.fit([x], [y], epochs=2, batch_size=16, shuffle=False, verbose=0,
               validation_data=([x[:10]], [y[:10]]))
    assert ha.history == hb.history
    assert b.evaluate(x, [y], verbose=0) == a.evaluate(x, y, verbose=0)
    assert b.train_on_batch(x, [y]) == a.train_on_batch(x, y)
    assert b.test_on_batch(x, [y]) == a.test_on_batch(x, y)
    with pytest.raises(ValueError, match="x has 50, y has 2"):
        b.fit(x, [y, y], verbose=0)
    sw = np.linspace(0.5, 1.5, len(x))
    assert (b.evaluate(x, [y], sample_weight=[sw], verbose=0)
            == a.evaluate(x, y, sample_weight=sw, verbose=0))
    # a batch of one sample given as a list is that sample's targets, as before [y]
    m = pynn.Sequential([layers.Input(shape=(4,)), layers.Dense(2)], backend="reference")
    m.compile("sgd", "mse")
    m.train_on_batch(np.ones((1, 4)), [np.array([1.0, 2.0])])      # y (1, 2)
    m1 = pynn.Sequential([layers.Input(shape=(4,)), layers.Dense(1)], backend="reference")
    m1.compile("sgd", "mse")
    m1.train_on_batch(np.ones((1, 4)), [np.array(3.0)])             # y (1,)


def test_numpy_messages_do_not_leak_from_bad_arguments():
    # each of these reached NumPy and surfaced its message ("could not convert string to
    # float", "inhomogeneous shape", "cannot reshape array of size ..") with no word on what
    # the caller passed
    m = pynn.Sequential([pynn.layers.Dense(2, input_shape=(3,))])
    m.compile("sgd", "mse")
    x, y = np.ones((4, 3), np.float32), np.ones((4, 2), np.float32)
    with pytest.raises(TypeError, match="sample_weight must be numeric"):
        m.fit(x, y, sample_weight=np.array(["a"] * 4), verbose=0)
    with pytest.raises(ValueError, match=r"not fit\(\(x, y\)\)"):
        m.fit((x, y), verbose=0)
    with pytest.raises(ValueError, match=r"y_true of shape \(2, 4\) does not match y_pred"):
        pynn.metrics.CategoricalAccuracy().update_state(np.eye(4)[:2], np.full((2, 3), 1 / 3))
    mha = pynn.layers.MultiHeadAttention(num_heads=2, key_dim=4)
    q = np.ones((2, 5, 8), np.float32)
    mha(q, q, training=True)
    with pytest.raises(ValueError, match=r"dy must have the output's shape \(2, 5, 8\)"):
        mha.backward(np.ones((2, 5, 6), np.float32))
    with pytest.raises(TypeError, match="needs numeric arrays, received input 0"):
        mha(np.full((2, 5, 8), "a"), q)
    with pytest.raises(ValueError, match="built for value inputs of 8 features"):
        mha(q, np.ones((2, 5, 6), np.float32))
    m.fit(x, y, verbose=0)   # the same call with the arguments as they should be
