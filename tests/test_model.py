"""Sequential/Model: building into one flat buffer, whole-model gradients against central
differences (float64), the C and reference backends agreeing on a training step
(pynn.compare), configs for saving, weights, summary, Keras names, bad input."""
import copy
import json

import numpy as np
import pytest

import pynn
from pynn import layers

BACKENDS = ["c", "reference"]


def mlp(backend=None, dtype=None, out_act="softmax", dropout=0.0, classes=4, features=6, **kw):
    ls = [layers.Flatten(input_shape=(2, features // 2)), layers.Dense(8, activation="relu", **kw)]
    if dropout:
        ls.append(layers.Dropout(dropout, seed=11))
    ls.append(layers.Dense(classes, activation=out_act))
    return pynn.Sequential(ls, backend=backend, dtype=dtype)


def data(n=10, features=6, classes=4, seed=0):
    rng = np.random.default_rng(seed)
    return rng.standard_normal((n, 2, features // 2)), rng.integers(0, classes, n)


def test_flat_parameter_buffer():
    m = mlp(backend="reference")
    assert m.built and m.input_shape == (None, 2, 3) and m.output_shape == (None, 4)
    flat = m._flat_params
    assert flat.ndim == 1 and flat.size == m.count_params() == 6 * 8 + 8 + 8 * 4 + 4
    for layer in m.layers:
        for k, w in layer.params.items():
            assert np.shares_memory(w, flat), (layer.name, k)
            assert np.shares_memory(layer.grads[k], m._flat_grads)
    m.compile("adam", "sparse_categorical_crossentropy")
    assert m._trainable_runs() == [(0, flat.size)]  # one fused optimizer call
    assert not m.layers[1]._need_dx and m.layers[2]._need_dx
    m.layers[1].trainable = False  # the first Dense: frozen, and no backward reaches it
    assert m._trainable_runs() == [(56, 92)]
    assert not m.layers[2]._need_dx
    assert len(m.get_weights()) == 4


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("loss,out_act", [
    ("sparse_categorical_crossentropy", "softmax"),   # fused softmax cross-entropy
    ("sparse_categorical_crossentropy", "tanh"),      # not fused (tanh outputs are not probs)
    ("categorical_crossentropy", "softmax"),
    ("mse", "linear"), ("mae", "tanh"),
    ("binary_crossentropy", "sigmoid"),
])
def test_model_gradient_vs_central_differences(backend, loss, out_act):
    x, labels = data()
    m = mlp(backend=backend, dtype="float64", out_act=out_act,
            kernel_regularizer=pynn.regularizers.L1L2(l1=0.01, l2=0.02))
    m.compile("sgd", loss)
    rng = np.random.default_rng(3)
    if loss.startswith("sparse"):
        y = labels
        if out_act == "tanh":
            m.layers[-1].activation = pynn.activations.sigmoid
            m.compile("sgd", loss)
    elif loss == "categorical_crossentropy":
        y = pynn.utils.to_categorical(labels, 4, dtype="float64")
    elif loss == "binary_crossentropy":
        y = (rng.random((10, 4)) > 0.5).astype(np.float64)
    else:
        y = rng.standard_normal((10, 4))
    yt = m._targets(y)
    _, loss0 = m._forward_backward(x, yt, None)
    g = m._flat_grads.copy()
    p = m._flat_params
    num = np.empty_like(g)
    for i in range(p.size):
        old = p[i]
        p[i] = old + 1e-6
        lp = m._forward_backward(x, yt, None)[1]
        p[i] = old - 1e-6
        lm = m._forward_backward(x, yt, None)[1]
        p[i] = old
        num[i] = (lp - lm) / 2e-6
    np.testing.assert_allclose(g, num, rtol=1e-5, atol=1e-7)
    # the reported loss is the loss of the probabilities plus the regularization penalty
    probs = m.predict(x, verbose=0)
    expect = m.loss.forward(m.ops, probs, yt) + sum(l.regularization_penalty() for l in m.layers)
    np.testing.assert_allclose(loss0, expect, rtol=1e-6)


def test_fused_output_predicts_probabilities_and_trains_on_logits():
    x, y = data()
    m = mlp(backend="reference", dtype="float64")
    m.compile("adam", "sparse_categorical_crossentropy", metrics=["accuracy"])
    assert m._fused
    p = m.predict(x, verbose=0)
    np.testing.assert_allclose(p.sum(axis=1), 1.0, rtol=1e-12)
    assert (p >= 0).all()
    m2 = mlp(backend="reference", dtype="float64", out_act="softmax")
    m2.compile("adam", pynn.losses.SparseCategoricalCrossentropy(from_logits=True))
    assert not m2._fused


@pytest.mark.parametrize("last", [lambda: layers.LSTM(2), lambda: layers.GRU(2),
                                  lambda: layers.SimpleRNN(2),
                                  lambda: layers.TransformerBlock(1, ff_dim=4)])
def test_a_model_ending_in_a_layer_with_an_inner_activation_compiles_and_trains(last):
    """An RNN's or a TransformerBlock's `activation` is inside the layer (a name, not its
    output's last step): nothing fuses into the loss, and compile no longer fails on it."""
    lay = last()
    width = 2
    m = pynn.Sequential([pynn.Input(shape=(3, width)), lay], dtype="float64")
    m.compile("sgd", "mse")
    assert not m._fused
    rng = np.random.default_rng(0)
    x = rng.standard_normal((6, 3, width))
    y = m.predict(x, verbose=0) + 0.5
    before = m.evaluate(x, y, verbose=0)
    m.fit(x, y, epochs=3, batch_size=6, verbose=0)
    assert m.evaluate(x, y, verbose=0) < before


@pytest.mark.parametrize("opt", ["adam", "sgd", pynn.optimizers.SGD(0.1, momentum=0.9,
                                                                     nesterov=True),
                                 "rmsprop", "adagrad", "adamw"])
def test_backends_agree_on_a_training_step(opt):
    x, y = data(n=16)
    pynn.utils.set_random_seed(5)
    m = mlp(backend="c", dropout=0.25)
    m.compile(opt, "sparse_categorical_crossentropy", metrics=["accuracy"])
    m.fit(x, y, batch_size=8, epochs=1, verbose=0)  # a non-trivial optimizer state
    report = pynn.compare(m, x[:8], y[:8])
    assert {k.split()[0] for k in report.diffs} == {"output", "loss", "grad", "param"}
    assert len(report.diffs) == 2 + 2 * 4  # output, loss, 4 gradients, 4 updated weights
    assert report.max() < 1e-4, str(report)
    assert report.backends == ("c", "reference")
    assert "max |c - reference|" in str(report)


def test_compare_reports_a_difference():
    x, y = data()
    m = mlp(backend="reference")
    m.compile("sgd", "sparse_categorical_crossentropy")
    r = pynn.compare(m, x, y, backends=("reference", "reference"))
    assert r.max() == 0.0
    r.add("fake", np.array([1.0, 2.0]), np.array([1.0, 2.5]))
    assert r["fake"] == 0.5 and r.max() == 0.5
    with pytest.raises(ValueError, match="two backends"):
        pynn.compare(m, x, y, backends=("c",))


def test_backend_selection():
    assert mlp(backend="reference").ops is pynn.ops.get_backend("reference")
    assert mlp().ops is pynn.ops.get_backend("c")
    with pynn.ops.use_backend("reference"):
        assert mlp().ops is pynn.ops.get_backend("reference")
    m = mlp()
    m.compile("adam", "mse", backend="reference")
    assert all(l.ops is pynn.ops.get_backend("reference") for l in m.layers)
    with pytest.raises(ValueError, match="unknown backend"):
        pynn.Sequential([layers.Dense(2)], backend="gpu")


def test_get_set_weights_keras_order():
    m = mlp(backend="reference")
    ws = m.get_weights()
    assert [w.shape for w in ws] == [(6, 8), (8,), (8, 4), (4,)]
    new = [np.full(w.shape, i, np.float32) for i, w in enumerate(ws)]
    m.set_weights(new)
    assert (m.layers[1].params["bias"] == 1).all() and (m._flat_params[-4:] == 3).all()
    with pytest.raises(ValueError, match="4 weight arrays"):
        m.set_weights(new[:3])
    with pytest.raises(ValueError, match="shape"):
        m.set_weights([new[1]] + new[1:])


def test_config_round_trip():
    m = mlp(backend="reference", dropout=0.5)
    m.compile(pynn.optimizers.Adam(learning_rate=pynn.optimizers.schedules.ExponentialDecay(
        0.01, 10, 0.5)), "sparse_categorical_crossentropy", metrics=["accuracy"])
    cfg = json.loads(json.dumps(m.get_config()))
    assert cfg["class_name"] == "Sequential"
    assert [c["class_name"] for c in cfg["config"]["layers"]] == [
        "InputLayer", "Flatten", "Dense", "Dropout", "Dense"]
    m2 = pynn.models.model_from_config(cfg, backend="reference")
    assert m2.built and m2.input_shape == m.input_shape
    m2.set_weights(m.get_weights())
    cc = json.loads(json.dumps(m.get_compile_config()))
    m2.compile_from_config(cc)
    assert m2.optimizer.get_config() == m.optimizer.get_config()
    assert m2.metrics_names == ["loss", "accuracy"]
    x, _ = data()
    np.testing.assert_array_equal(m2.predict(x, verbose=0), m.predict(x, verbose=0))
    # a model built by fit (no input_shape given) saves an InputLayer too
    m3 = pynn.Sequential([layers.Dense(3)], backend="reference")
    m3.build((None, 5))
    assert m3.get_config()["config"]["layers"][0]["class_name"] == "InputLayer"
    assert pynn.models.model_from_config(m3.get_config()).built
    with pytest.raises(ValueError, match="unknown model class"):
        pynn.models.model_from_config({"class_name": "NoSuchModel", "config": {}})
    with pytest.raises(ValueError, match="needs 'layers' and 'nodes'"):
        pynn.models.model_from_config({"class_name": "Functional", "config": {}})


def test_summary(capsys):
    m = mlp(backend="reference")
    m.summary()
    out = capsys.readouterr().out
    assert "dense (Dense)" in out or "(Dense)" in out
    assert "(None, 8)" in out and "Total params: 92" in out
    assert "Trainable params: 92" in out and "Non-trainable params: 0" in out
    lines = []
    m.summary(print_fn=lines.append)
    assert "Total params" in lines[0]


def test_summary_takes_keras_arguments():
    # Keras 3's signature: summary(line_length, positions, print_fn, expand_nested,
    # show_trainable, layer_range); summary(100) used to take 100 as print_fn
    inner = pynn.Sequential([layers.Dense(5, input_shape=(4,), name="in1"),
                             layers.Dense(3, name="in2")], name="inner")
    i = pynn.Input(shape=(4,))
    m = pynn.Model(i, layers.Dense(2, name="head")(inner(i)), name="outer")
    m.get_layer("head").trainable = False
    lines = []
    m.summary(100, None, lines.append, expand_nested=True, show_trainable=True)
    rows = lines[0].splitlines()
    assert len(rows[1]) == 100 and rows[2].split()[-1] == "Trainable"
    names = [r.split()[0] for r in rows[4:-5]]
    assert names == ["input_layer" + names[0][len("input_layer"):], "inner", "in1", "in2",
                     "head"]
    assert [r for r in rows if r.startswith("  in1 (Dense)")]
    head = next(r for r in rows if r.startswith("head (Dense)"))
    assert head.split()[4:6] == ["8", "N"]
    lines.clear()
    m.summary(positions=[0.3, 0.6, 0.8], print_fn=lines.append, layer_range=("inner", "head"))
    rows = lines[0].splitlines()
    assert [r.split()[0] for r in rows[4:-5]] == ["inner", "head"]
    assert rows[2].index("Output Shape") == int(72 * 0.3)
    # headers never run together: narrow positions (0.5 is not a fraction next to 40) and
    # a short line with the Trainable column
    for kw in ({"positions": [0.5, 40]}, {"line_length": 30, "show_trainable": True},
               {"positions": [0.1, 0.2, 0.3, 0.4], "show_trainable": True}):
        lines.clear()
        m.summary(print_fn=lines.append, **kw)
        head = next(r for r in lines[0].splitlines() if r.startswith("Layer (type)"))
        assert head.split("  ")[0] == "Layer (type)", kw
        assert [w.strip() for w in head.split("  ") if w.strip()][:3] == [
            "Layer (type)", "Output Shape", "Param #"], kw
    for bad in ([40, 20, 60], [0.5, 0.5], [0, 10], [True, 0.5]):
        with pytest.raises(ValueError, match="increasing positive"):
            m.summary(positions=bad)
    with pytest.raises(ValueError, match="layer_range.*'nope'"):
        m.summary(layer_range=("nope", "head"))
    with pytest.raises(ValueError, match="comes after"):
        m.summary(layer_range=("head", "inner"))


def test_summary_columns_fit_long_names_and_list_shapes():
    i = pynn.Input(shape=(5, 3))
    _, h, _ = layers.LSTM(4, return_state=True, name="an_encoder_with_a_rather_long_name")(i)
    m = pynn.Model(i, layers.Dense(1)(h))
    lines = []
    m.summary(print_fn=lines.append)
    rows = lines[0].splitlines()
    head = next(r for r in rows if r.startswith("Layer (type)"))
    shape_at, count_at = head.index("Output Shape"), head.index("Param #")
    body = [r for r in rows if r.startswith(("input_layer", "an_encoder", "dense"))]
    assert len(body) == 3
    for r in body:   # every shape and count starts under its heading, after a space
        assert r[shape_at - 1] == " " and r[shape_at] in "([" and r[count_at - 1] == " "
        assert r[count_at].isdigit()


def test_sequential_add_pop_and_input():
    m = pynn.Sequential(backend="reference")
    m.add(pynn.Input(shape=(3,)))
    m.add(layers.Dense(4, activation="relu"))
    assert m.built and m.output_shape == (None, 4)
    m.add(layers.Dense(2))
    w = m.layers[0].get_weights()
    assert m.output_shape == (None, 2)
    np.testing.assert_array_equal(m.layers[0].get_weights()[0], w[0])  # kept across rebuild
    assert np.shares_memory(m.layers[0].params["kernel"], m._flat_params)
    assert m.pop().units == 2 and m.output_shape == (None, 4)
    m.add(layers.Dense(2))
    assert m.pop(rebuild=False).units == 2 and not m.built  # Keras 3's argument
    x = np.ones((5, 3))
    assert m.predict(x, verbose=0).shape == (5, 4) and m.built  # built on the call
    np.testing.assert_array_equal(m.layers[0].get_weights()[0], w[0])
    with pytest.raises(TypeError, match="pynn layer"):
        m.add("dense")
    with pytest.raises(ValueError, match="first layer"):
        m.add(pynn.Input(shape=(3,)))


def test_keras_names():
    import pynn.keras.layers
    from pynn.keras.optimizers import Adam
    from pynn.keras import callbacks, losses, metrics, models
    assert pynn.keras.layers.Dense is pynn.layers.Dense
    assert Adam is pynn.optimizers.Adam
    assert pynn.keras.Sequential is pynn.Sequential is models.Sequential
    assert callbacks.EarlyStopping is pynn.callbacks.EarlyStopping
    assert losses.MeanSquaredError is pynn.losses.MeanSquaredError
    assert metrics.SparseCategoricalAccuracy is pynn.metrics.SparseCategoricalAccuracy
    assert pynn.keras.utils.set_random_seed is pynn.utils.set_random_seed
    import pynn.optimizers
    assert pynn.optimizers.schedules.CosineDecay


def test_unknown_names_list_valid_ones():
    m = mlp(backend="reference")
    with pytest.raises(ValueError, match="unknown optimizer 'adamax'.*adam"):
        m.compile("adamax", "mse")
    with pytest.raises(ValueError, match="unknown loss 'hinge'.*mse"):
        m.compile("adam", "hinge")
    with pytest.raises(ValueError, match="unknown metric 'auc'.*accuracy"):
        m.compile("adam", "mse", metrics=["auc"])
    with pytest.raises(ValueError, match="needs a loss"):
        m.compile("adam")
    with pytest.raises(ValueError, match="list"):
        m.compile("adam", "mse", metrics="accuracy")


def test_compile_refuses_lists_dicts_classes_and_functions_clearly():
    # each was a bare "unhashable type: 'list'" or "unknown loss class None: pass
    # load_model(path, custom_objects={None: None})"; now a ValueError saying what to pass
    m = mlp(backend="reference")
    with pytest.raises(ValueError, match=r"unknown loss \['mse'\].*mse.*one loss.*not a "
                                         r"per-output list"):
        m.compile("adam", ["mse"])
    with pytest.raises(ValueError, match=r"loss given as a dict must be a config.*'class_name'"
                                         r".*received \{'out': 'mse'\}"):
        m.compile("adam", {"out": "mse"})
    with pytest.raises(ValueError, match="plain function cannot be a loss.*Loss subclass"):
        m.compile("adam", lambda y_true, y_pred: 0.0)
    with pytest.raises(ValueError, match=r"pass an instance, MeanSquaredError\(...\)"):
        m.compile("adam", pynn.losses.MeanSquaredError)
    with pytest.raises(ValueError, match=r"unknown metric \['mae'\].*flat list"):
        m.compile("adam", "mse", metrics=[["mae"]])
    with pytest.raises(ValueError, match="metric given as a dict must be a config"):
        m.compile("adam", "mse", metrics=[{"out": "mae"}])
    with pytest.raises(ValueError, match="no plain-function metrics.*Metric subclass"):
        m.compile("adam", "mse", metrics=[lambda y_true, y_pred: 0.0])
    with pytest.raises(ValueError, match=r"an optimizer given as a dict must be a config.*"
                                         r"received \{'learning_rate': 0.1\}"):
        m.compile({"learning_rate": 0.1}, "mse")
    with pytest.raises(ValueError, match=r"unknown optimizer.*adam.*pass an instance, "
                                         r"Adam\(...\)"):
        m.compile(pynn.optimizers.Adam, "mse")
    assert not m.compiled
    m.compile("adam", pynn.losses.mse)  # pynn's own loss functions still resolve


def test_save_and_load_delegate_to_pynn_io(monkeypatch, tmp_path):
    import sys
    import types
    import pynn.io  # noqa: F401  (imported first, so the patches below are undone to it)
    calls = []
    fake = types.SimpleNamespace(
        save_model=lambda m, p, include_optimizer=True: calls.append(("save", p,
                                                                      include_optimizer)),
        save_weights=lambda m, p: calls.append(("save_weights", p)),
        load_weights=lambda m, p: calls.append(("load_weights", p)),
        load_model=lambda p, compile=True, custom_objects=None: calls.append(
            ("load_model", p, compile)))
    monkeypatch.setitem(sys.modules, "pynn.io", fake)
    monkeypatch.setattr(pynn, "io", fake, raising=False)
    m = mlp(backend="reference")
    assert m.build_input_shape == (None, 2, 3)
    assert pynn.Sequential([layers.Dense(2)]).build_input_shape is None
    m.save("a.pynn")
    m.save("b.pynn", include_optimizer=False)
    m.save_weights("w.npz")
    m.load_weights("w.npz")
    pynn.models.load_model("a.pynn", compile=False)
    assert calls == [("save", "a.pynn", True), ("save", "b.pynn", False),
                     ("save_weights", "w.npz"), ("load_weights", "w.npz"),
                     ("load_model", "a.pynn", False)]
    existing = tmp_path / "x.pynn"
    existing.write_bytes(b"old")
    with pytest.raises(FileExistsError):
        m.save(existing, overwrite=False)


def test_model_trainable_flag_freezes_everything():
    x, y = data()
    m = mlp(backend="reference")
    m.compile("sgd", "sparse_categorical_crossentropy")
    m.trainable = False
    w = m.get_weights()
    m.fit(x, y, epochs=1, verbose=0)
    for a, b in zip(w, m.get_weights()):
        np.testing.assert_array_equal(a, b)
    assert not m.trainable and m._trainable_runs() == []
    m.trainable = True
    m.fit(x, y, epochs=1, verbose=0)
    assert not np.array_equal(w[0], m.get_weights()[0])


def test_frozen_nested_model_stays_frozen_after_save_and_load(tmp_path):
    # the transfer-learning pattern: a frozen base inside a graph; its InputLayer is frozen
    # with it, and the loaded base must read trainable = False as well
    i = pynn.Input(shape=(4,))
    base = pynn.Model(i, layers.Dense(3)(i), name="base")
    base.trainable = False
    j = pynn.Input(shape=(4,))
    m = pynn.Model(j, layers.Dense(1)(base(j)))
    m.compile("sgd", "mse")
    m.save(tmp_path / "n.pynn")
    m2 = pynn.models.load_model(tmp_path / "n.pynn")
    (b2,) = [la for la in m2.layers if isinstance(la, pynn.Model)]
    assert not base.trainable and not b2.trainable
    assert len(m2.trainable_weights) == len(m.trainable_weights) == 2


class _Lin(layers.Layer):
    """A layer of one's own in the Keras style: the weight kept as an attribute."""

    def build(self, input_shape):
        self.w = self.add_weight("w", (input_shape[-1], 1), "ones")

    def compute_output_shape(self, input_shape):
        return (input_shape[0], 1)

    def forward(self, x, training=False):
        self._x = x
        return x @ self.w

    def backward(self, dy):
        self.grads["w"][...] = self._x.T @ dy
        return dy @ self.w.T


def test_own_layer_weight_attribute_stays_the_live_weight():
    # self.w = self.add_weight(...): the model moves the weight into its flat buffer, and
    # the attribute follows (it kept the first array: training changed nothing it read)
    rng = np.random.default_rng(0)
    x = rng.standard_normal((16, 3))
    y = x @ np.array([[1.0], [2.0], [3.0]])
    lin = _Lin()
    m = pynn.Sequential([pynn.Input(shape=(3,)), lin], dtype="float64")
    assert lin.w is lin.params["w"] and np.shares_memory(lin.w, m._flat_params)
    m.compile(pynn.optimizers.SGD(0.1), "mse")
    h = m.fit(x, y, epochs=20, verbose=0)
    assert h.history["loss"][-1] < 0.05 * h.history["loss"][0]
    m.set_weights([np.zeros((3, 1))])
    np.testing.assert_array_equal(m.predict(x, verbose=0), 0)
    twin = copy.deepcopy(m)
    (tl,) = twin.layers
    assert tl.w is tl.params["w"] and np.shares_memory(tl.w, twin._flat_params)


def test_own_layer_class_loads_with_custom_objects(tmp_path):
    # a model with a Layer subclass of the user's saved fine but could never be loaded
    class Scaled(pynn.layers.Dense):
        pass
    m = pynn.Sequential([pynn.layers.Input(shape=(3,)), Scaled(2)])
    m.compile("sgd", "mse")
    path = str(tmp_path / "own.pynn")
    m.save(path)
    with pytest.raises(pynn.io.ModelFileError, match="custom_objects"):
        pynn.models.load_model(path)
    m2 = pynn.models.load_model(path, custom_objects={"Scaled": Scaled})
    x = np.ones((2, 3), np.float32)
    assert type(m2.layers[0]) is Scaled
    np.testing.assert_array_equal(m2.predict(x, verbose=0), m.predict(x, verbose=0))
    with pytest.raises(TypeError, match="pynn Layer, .* or LearningRateSchedule subclasses"):
        pynn.models.load_model(path, custom_objects={"Scaled": int})
    with pytest.raises(pynn.io.ModelFileError, match="custom_objects"):   # only within that load
        pynn.models.load_model(path)


def test_deepcopy_of_a_trained_model_trains_on_its_own():
    """copy.deepcopy(model): the copy's optimizer (state included) belongs to the copy, its
    layers view its own buffers, and both go on as the original would."""
    import copy
    rng = np.random.default_rng(0)
    x, y = rng.standard_normal((20, 4)), rng.standard_normal((20, 2))
    m = pynn.Sequential([layers.Dense(3, input_shape=(4,)), layers.Dense(2)])
    m.compile("adam", "mse")
    m.fit(x, y, epochs=1, verbose=0)
    c = copy.deepcopy(m)
    w = [a.copy() for a in m.get_weights()]
    c.fit(x, y, epochs=2, verbose=0, shuffle=False)
    for a, b in zip(w, m.get_weights()):
        np.testing.assert_array_equal(a, b)        # the original is untouched
    m.fit(x, y, epochs=2, verbose=0, shuffle=False)
    for a, b in zip(m.get_weights(), c.get_weights()):
        np.testing.assert_array_equal(a, b)        # same state, same steps, same numbers
    f_in = pynn.Input((4,))
    g = pynn.Model(f_in, layers.Dense(2)(layers.Dense(3)(f_in)))
    g.compile("sgd", "mse")
    g.fit(x, y, epochs=1, verbose=0)
    gc = copy.deepcopy(g)
    gc.fit(x, y, epochs=1, verbose=0)
    assert not np.array_equal(gc.get_weights()[0], g.get_weights()[0])


@pytest.mark.parametrize("cls,kw", [(pynn.regularizers.L2, {"l2": float("nan")}),
                                    (pynn.regularizers.L2, {"l2": float("inf")}),
                                    (pynn.regularizers.L1, {"l1": -10.0}),
                                    (pynn.regularizers.L1L2, {"l1": float("nan")}),
                                    (pynn.regularizers.L1L2, {"l2": -1e-3})])
def test_regularizer_factors_must_be_finite_and_non_negative(cls, kw):
    # a NaN factor made every weight NaN at the first step, a negative one a loss falling
    # without bound; both were accepted
    with pytest.raises(ValueError, match=f"{next(iter(kw))} must be"):
        cls(**kw)
    with pytest.raises(TypeError, match="real number"):
        cls(**{next(iter(kw)): "abc"})
    with pytest.raises(ValueError, match="must be"):
        pynn.regularizers.get({"class_name": cls.__name__, "config": kw})
    assert cls(**{next(iter(kw)): 0.0}).penalty(np.ones(3, np.float32)) == 0.0



def test_compile_loss_weights_other_than_one_are_refused():
    # loss_weights was accepted and ignored, whatever it held ([0.0] still trained on the
    # full loss, 'nonsense' passed)
    m = pynn.Sequential([layers.Dense(2, input_shape=(3,))])
    for ok in (1.0, [1.0], (1,), {"dense": 1.0}, None):
        m.compile("sgd", "mse", loss_weights=ok)
    for bad in (0.0, [0.5], [1.0, 1.0], {"a": 2.0}, "nonsense", [None]):
        with pytest.raises(ValueError, match="only a weight of 1"):
            m.compile("sgd", "mse", loss_weights=bad)


def test_model_subclassing_with_call_is_refused_where_the_class_is_defined():
    # Keras' subclassing (layers in __init__, the forward in call) reached predict and failed
    # there with AttributeError: 'M' object has no attribute 'build'
    with pytest.raises(TypeError, match="subclassing pynn.Model with a call.*functional API"):
        class M(pynn.Model):
            def __init__(self):
                super().__init__()
                self.d = layers.Dense(2)

            def call(self, x):
                return self.d(x)


@pytest.mark.parametrize("make,shape", [
    (lambda: layers.Dense(3), (None, 4)),
    (lambda: layers.Conv2D(2, 3), (None, 6, 6, 1)),
    (lambda: layers.LSTM(3), (None, 5, 2)),
    (lambda: layers.LayerNormalization(), (None, 4)),
])
def test_layer_backward_before_forward_says_so(make, shape):
    # it was AttributeError: 'Dense' object has no attribute '_cache'
    lay = make()
    lay.build(shape)
    with pytest.raises(RuntimeError, match="backward before a forward pass"):
        lay.backward(np.ones((2,) + tuple(shape[1:]), np.float32))
    assert not hasattr(lay, "no_such_attribute")


def test_set_weights_refuses_lossy_values_and_changes_nothing():
    # complex weights lost their imaginary part (a ComplexWarning only), float64 values past
    # float32's range became inf, and a refused second array left the first one set
    m = pynn.Sequential([layers.Dense(2, input_shape=(3,))])
    w = m.get_weights()
    bad = [([w[0] + 1j, w[1]], TypeError, "real numbers"),
           ([np.full(w[0].shape, 1e300), w[1]], ValueError, "overflow float32"),
           ([w[0] * 2, np.array(["a", "b"])], TypeError, "real numbers"),
           ([w[0] * 2, np.zeros(3)], ValueError, "has shape")]
    for arrays, exc, msg in bad:
        with pytest.raises(exc, match=msg):
            m.set_weights(arrays)
        for a, b in zip(m.get_weights(), w):
            np.testing.assert_array_equal(a, b)
    m.set_weights([np.full(w[0].shape, np.inf), np.array([1, 2])])   # as given: inf, ints
    assert np.isinf(m.get_weights()[0]).all() and m.get_weights()[1].tolist() == [1.0, 2.0]


def test_input_shapes_take_whole_numbers_only():
    # input_shape='4' made the shape (4,) from the string's characters; (4.5,) became (4,)
    for bad in ("4", (4.5,), (True,), 3.0, ("3",)):
        with pytest.raises(TypeError, match="input_shape must be a tuple of integers"):
            layers.Dense(2, input_shape=bad)
    for ok, want in ((4, (4,)), ((4.0,), (4,)), ([2, 3], (2, 3)), ((np.int64(5),), (5,))):
        assert layers.Dense(2, input_shape=ok).input_shape_arg == want
