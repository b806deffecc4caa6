"""Core layers: gradients against central differences (float64), shapes, configs, errors.

Every test runs on both backends ('c' and 'reference'); layers reach kernels only through
the backend namespace they are built with.
"""
import numpy as np
import pytest

import pynn
from pynn import layers
from helpers import check_grad

BACKENDS = ["c", "reference"]


def built(layer, input_shape, backend, dtype=np.float64):
    layer._build_for((None,) + tuple(input_shape), pynn.ops.get_backend(backend), dtype)
    return layer


def layer_grad_check(layer, x):
    names = list(layer.params)

    def forward(x, *ws):
        return np.array(layer.forward(x, training=True), copy=True)

    def backward(x, *ws_dy):
        dy = ws_dy[-1]
        layer.forward(x, training=True)
        dx = layer.backward(dy)
        return (None if dx is None else np.array(dx, copy=True),) + tuple(
            layer.grads[k].copy() for k in names)

    check_grad(forward, backward, [x] + [layer.params[k] for k in names])


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("activation", ["linear", "relu", "sigmoid", "tanh", "softmax", "elu",
                                        "gelu", "leaky_relu", "softplus", "silu"])
def test_dense_gradients(backend, activation):
    rng = np.random.default_rng(1)
    layer = built(layers.Dense(5, activation=activation, bias_initializer="random_normal"),
                  (7,), backend)
    x = rng.standard_normal((3, 7))
    layer_grad_check(layer, x)


@pytest.mark.parametrize("backend", BACKENDS)
def test_dense_gelu_fused_and_predict(backend, monkeypatch):
    """Dense(gelu) runs one dense_forward with the GELU fused (grad= for the backward, none
    under predict/evaluate), never a separate GELU kernel; predict gives the bits of model(x);
    a backward right after an inference-only forward is refused, model(x) enables it again"""
    pynn.utils.set_random_seed(7)
    m = pynn.Sequential([layers.Input(shape=(7,)),
                         layers.Dense(5, activation="gelu", bias_initializer="random_normal"),
                         layers.Dense(3)], backend=backend)
    m.compile(optimizer="sgd", loss="mse")
    dense = m.layers[0]
    calls = []

    def spy(*a, _f=dense.ops.dense_forward, **k):
        if (k.get("activation", a[3] if len(a) > 3 else "linear")) == "gelu":
            calls.append("grad" if k.get("grad") is not None else "no grad")
        return _f(*a, **k)
    monkeypatch.setattr(dense.ops, "dense_forward", spy)
    for name in ("gelu_forward", "gelu_backward", "gelu_forward_grad"):
        monkeypatch.setattr(dense.ops, name, lambda *a, **k: calls.append("separate"))
    x = np.random.default_rng(3).standard_normal((4, 7))
    want = np.array(m(x))
    np.testing.assert_array_equal(m.predict(x, verbose=0), want)
    m.evaluate(x, np.zeros((4, 3)), verbose=0)
    assert calls == ["grad", "no grad", "no grad"]
    with pytest.raises(RuntimeError, match="inference only"):
        dense.backward(np.ones((4, 5), np.float32))
    m(x)
    dense.backward(np.ones((4, 5), np.float32))        # the first layer: no dx, grads only
    assert np.all(np.isfinite(dense.grads["kernel"])) and np.any(dense.grads["kernel"] != 0)
    m.fit(x, np.zeros((4, 3)), epochs=1, verbose=0)      # trains through the fused path
    assert calls[-1] == "grad"


@pytest.mark.parametrize("backend", BACKENDS)
def test_dense_rank3_and_no_bias_gradients(backend):
    rng = np.random.default_rng(2)
    layer = built(layers.Dense(4, activation="tanh", use_bias=False), (3, 6), backend)
    assert list(layer.params) == ["kernel"]
    x = rng.standard_normal((2, 3, 6))
    assert layer.forward(x).shape == (2, 3, 4)
    assert layer.output_shape == (None, 3, 4)
    layer_grad_check(layer, x)


@pytest.mark.parametrize("backend", BACKENDS)
def test_dense_residual(backend):
    """forward(x, residual=r) (a Transformer block's skip connection) is forward(x) + r with
    the same backward; a non-linear Dense refuses a residual"""
    rng = np.random.default_rng(5)
    layer = built(layers.Dense(4, bias_initializer="random_normal"), (3, 6), backend)
    x, r, dy = (rng.standard_normal(s) for s in ((2, 3, 6), (2, 3, 4), (2, 3, 4)))
    plain = np.array(layer.forward(x, training=True), copy=True)
    dx0 = np.array(layer.backward(dy), copy=True)
    g0 = {k: v.copy() for k, v in layer.grads.items()}
    np.testing.assert_array_equal(layer.forward(x, training=True, residual=r), plain + r)
    np.testing.assert_array_equal(layer.backward(dy), dx0)
    for k in g0:
        np.testing.assert_array_equal(layer.grads[k], g0[k])
    relu = built(layers.Dense(4, activation="relu"), (6,), backend)
    with pytest.raises(ValueError, match="residual needs a linear Dense"):
        relu.forward(x[0], residual=r[0])


@pytest.mark.parametrize("backend", BACKENDS)
def test_dense_exact_values(backend):
    layer = built(layers.Dense(2, activation="relu"), (3,), backend)
    layer.set_weights([np.array([[1., -1.], [0., 2.], [-1., 0.]]), np.array([0.5, -0.5])])
    x = np.array([[1., 1., 1.], [0., -1., 2.]])
    # z = [[0.5, 0.5], [-2.5, -2.5]] -> relu
    np.testing.assert_array_equal(layer.forward(x), [[0.5, 0.5], [0., 0.]])
    dx = layer.backward(np.array([[1., 2.], [3., 4.]]))
    np.testing.assert_array_equal(layer.grads["kernel"], [[1., 2.], [1., 2.], [1., 2.]])
    np.testing.assert_array_equal(layer.grads["bias"], [1., 2.])
    np.testing.assert_array_equal(dx, [[-1., 4., -1.], [0., 0., 0.]])


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("activation", ["relu", "softmax", "tanh", "log_softmax"])
def test_activation_layer_gradients(backend, activation):
    rng = np.random.default_rng(3)
    layer = built(layers.Activation(activation), (4, 5), backend)
    layer_grad_check(layer, rng.standard_normal((2, 4, 5)))


@pytest.mark.parametrize("backend", BACKENDS)
def test_flatten_reshape(backend):
    rng = np.random.default_rng(4)
    f = built(layers.Flatten(), (3, 4), backend)
    assert f.output_shape == (None, 12)
    x = rng.standard_normal((2, 3, 4))
    np.testing.assert_array_equal(f.forward(x), x.reshape(2, 12))
    np.testing.assert_array_equal(f.backward(np.arange(24.).reshape(2, 12)),
                                  np.arange(24.).reshape(2, 3, 4))
    r = built(layers.Reshape((-1, 2)), (3, 4), backend)
    assert r.output_shape == (None, 6, 2)
    np.testing.assert_array_equal(r.forward(x), x.reshape(2, 6, 2))
    xf = np.asfortranarray(x)  # non-contiguous input still flattens in C order
    np.testing.assert_array_equal(f.forward(xf), x.reshape(2, 12))
    with pytest.raises(ValueError, match="values"):
        built(layers.Reshape((5,)), (3, 4), backend)
    with pytest.raises(ValueError, match="-1"):
        layers.Reshape((-1, -1))


@pytest.mark.parametrize("backend", BACKENDS)
def test_dropout(backend):
    rng = np.random.default_rng(5)
    d = built(layers.Dropout(0.5, seed=123), (40,), backend)
    x = rng.standard_normal((8, 40)) + 3.0
    assert d.forward(x, training=False) is x
    y = d.forward(x, training=True).copy()
    kept = y != 0
    assert 0 < kept.mean() < 1
    np.testing.assert_allclose(y[kept], 2 * x[kept], rtol=1e-15)
    dx = d.backward(np.ones_like(x))
    np.testing.assert_array_equal(dx != 0, kept)  # same mask as forward
    y2 = d.forward(x, training=True)
    assert not np.array_equal(y2 != 0, kept)  # the step advanced: a new mask
    d2 = built(layers.Dropout(0.5, seed=123), (40,), backend)
    np.testing.assert_array_equal(d2.forward(x, training=True), y)  # same seed, same mask
    with pytest.raises(ValueError):
        layers.Dropout(1.0)
    with pytest.raises(ValueError):
        layers.Dropout(0.1, seed=-1)


@pytest.mark.parametrize("backend", BACKENDS)
def test_dropout_gradient(backend):
    rng = np.random.default_rng(6)
    d = built(layers.Dropout(0.3, seed=7), (9,), backend)
    x = rng.standard_normal((4, 9))

    def forward(x):
        d._step = 0
        return np.array(d.forward(x, training=True), copy=True)

    def backward(x, dy):
        forward(x)
        return np.array(d.backward(dy), copy=True)

    check_grad(forward, backward, [x])


def test_layer_call_standalone_and_input_check():
    layer = layers.Dense(3)
    y = layer(np.ones((2, 4), dtype=np.float32))
    assert y.shape == (2, 3) and y.dtype == np.float32
    assert layer.params["kernel"].shape == (4, 3)
    with pytest.raises(ValueError, match=r"expects input of shape \(None, 4\)"):
        layer(np.ones((2, 5), dtype=np.float32))


def test_dense_argument_errors():
    with pytest.raises(ValueError, match="units"):
        layers.Dense(0)
    with pytest.raises(ValueError, match="units"):
        layers.Dense(2.5)
    with pytest.raises(ValueError, match="unknown activation 'nope'.*relu"):
        layers.Dense(3, activation="nope")
    with pytest.raises(ValueError, match="unknown initializer"):
        layers.Dense(3, kernel_initializer="nope")
    with pytest.raises(TypeError, match="unexpected keyword"):
        layers.Dense(3, foo=1)
    with pytest.raises(ValueError, match="pynn activation"):
        layers.Dense(3, activation=lambda x: x)


@pytest.mark.parametrize("backend", BACKENDS)
def test_activation_options_survive_save_and_load(backend, tmp_path):
    """an activation built with options (the tanh-form GELU, a leaky ReLU's alpha) keeps them
    in its config and in a saved model: the reloaded model predicts the same bits; names
    stay plain strings; bad option dicts get clear errors"""
    AF = pynn.activations.ActivationFunction
    assert pynn.activations.serialize("gelu") == "gelu"
    for act in (AF("gelu", approximate=True), AF("leaky_relu", alpha=0.05), AF("elu", alpha=2.0)):
        pynn.utils.set_random_seed(4)
        m = pynn.Sequential([layers.Input(shape=(6,)), layers.Dense(5, activation=act),
                             layers.Dense(2)], backend=backend)
        assert m.layers[0].get_config()["activation"] == {"class_name": act.name,
                                                          "config": act.kwargs}
        x = np.random.default_rng(1).standard_normal((4, 6)).astype(np.float32)
        y = m.predict(x, verbose=0)
        m.save(tmp_path / f"{act.name}.pynn")
        m2 = pynn.models.load_model(tmp_path / f"{act.name}.pynn")
        np.testing.assert_array_equal(m2.predict(x, verbose=0), y)
        assert m2.layers[0].activation.kwargs == act.kwargs
    exact = pynn.activations.get({"class_name": "gelu", "config": {}})
    assert exact.kwargs == {} and exact.name == "gelu"
    blk = layers.TransformerBlock(2, activation=AF("gelu", approximate=True))
    assert blk.get_config()["activation"] == {"class_name": "gelu",
                                              "config": {"approximate": True}}
    with pytest.raises(ValueError, match="'relu' takes no option 'alpha'"):
        pynn.activations.get({"class_name": "relu", "config": {"alpha": 1}})
    with pytest.raises(ValueError, match=r"'gelu' takes no option 'alpah' \(its options: "
                                         r"approximate\)"):
        AF("gelu", alpah=0.1)               # at construction, not when the file is loaded
    with pytest.raises(ValueError, match="class_name"):
        pynn.activations.get({"name": "gelu"})
    with pytest.raises(ValueError, match="unknown activation"):
        pynn.activations.get({"class_name": "swoosh", "config": {}})


def test_config_round_trip_and_registry():
    for layer in [layers.Dense(3, activation="relu", kernel_regularizer="l2",
                               kernel_initializer=pynn.initializers.HeNormal(seed=3)),
                  layers.Flatten(input_shape=(28, 28)), layers.Dropout(0.25, seed=9),
                  layers.Activation("softmax"), layers.Reshape((2, -1)),
                  layers.InputLayer(shape=(5,))]:
        d = layers.serialize(layer)
        import json
        d2 = json.loads(json.dumps(d))
        clone = layers.deserialize(d2)
        assert type(clone) is type(layer)
        assert clone.get_config() == layer.get_config()
    with pytest.raises(ValueError, match="unknown layer class 'Lambda'.*Dense"):
        layers.deserialize({"class_name": "Lambda", "config": {}})
    with pytest.raises(ValueError):
        layers.deserialize({"class_name": "Dense", "config": {"units": 2, "evil": 1}})
    with pytest.raises(ValueError):
        layers.deserialize("Dense")


def test_unique_names():
    a, b = layers.Dense(2), layers.Dense(2)
    assert a.name != b.name and a.name.startswith("dense")


@pytest.mark.parametrize("backend", BACKENDS)
def test_dropout_config_carries_seed_and_step(backend):
    pynn.utils.set_random_seed(4)
    d = built(layers.Dropout(0.5), (30,), backend)
    x = np.ones((3, 30))
    d.forward(x, training=True)
    clone = built(layers.deserialize(layers.serialize(d)), (30,), backend)
    assert clone._seed == d._seed and clone._step == d._step == 1
    np.testing.assert_array_equal(clone.forward(x, training=True), d.forward(x, training=True))
    with pytest.raises(ValueError, match="step"):
        layers.deserialize({"class_name": "Dropout", "config": {"rate": 0.1, "step": -1}})


def test_hostile_configs_raise_value_errors():
    bad = [{"class_name": "Dense", "config": {"units": -3}},
           {"class_name": "Dense", "config": {"units": 2, "activation": "os.system"}},
           {"class_name": "Dense", "config": {"units": 2, "kernel_initializer":
                                              {"class_name": "Evil", "config": {}}}},
           {"class_name": "Dropout", "config": {"rate": float("nan")}},
           {"class_name": "Reshape", "config": {"target_shape": [0]}},
           {"class_name": "InputLayer", "config": {"batch_shape": [None, -1]}},
           {"class_name": "__import__", "config": {}}]
    for cfg in bad:
        with pytest.raises(ValueError):
            layers.deserialize(cfg)
    huge = layers.deserialize({"class_name": "Dense", "config": {"units": 2**20}})
    with pytest.raises(ValueError, match="limits"):
        huge._build_for((None, 2**12), pynn.ops.get_backend("reference"), np.float32)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_empty_aligned(dtype):
    """empty_aligned: np.empty's shape, dtype and flags (0-size too), data on a 64-byte line;
    zeros_aligned the same, zeroed; two buffers never share memory."""
    from pynn.layers.base import empty_aligned, zeros_aligned
    for shape in [(3, 4), (0,), (5,), 7, (2, 0, 3), (17, 33)]:
        a = empty_aligned(shape, dtype)
        want = np.empty(shape, dtype)
        assert a.shape == want.shape and a.dtype == want.dtype
        assert a.flags.c_contiguous and a.flags.writeable and a.flags.aligned
        assert a.size == 0 or a.ctypes.data % 64 == 0
    for shape in [(3, 4), (0,), 7, (17, 33)]:
        z = zeros_aligned(shape, dtype)
        assert z.shape == np.zeros(shape).shape and z.dtype == dtype and not z.any()
        assert z.size == 0 or z.ctypes.data % 64 == 0
    a, b = empty_aligned((8, 8), dtype), empty_aligned((8, 8), dtype)
    a[...], b[...] = 1, 2
    assert not np.shares_memory(a, b) and (a == 1).all()
    # np.empty's errors: a negative size (even two that multiply to a positive one), a
    # fractional one
    for bad in [(-1, 4), (-2, -3), -5]:
        with pytest.raises(ValueError, match="negative"):
            empty_aligned(bad, dtype)
    with pytest.raises(TypeError):
        empty_aligned((2.5, 3), dtype)


def test_layer_and_model_buffers_start_on_cache_lines():
    """Every buffer a training step leaves in the layers and the model, and the model's flat
    weights and gradients, start on a 64-byte line (the GEMM then reads B rows in place and
    stores whole lines of C)."""
    rng = np.random.default_rng(0)
    model = pynn.Sequential([layers.Input(shape=(12, 7)), layers.LSTM(9, return_sequences=True),
                             layers.Flatten(), layers.Dense(13, activation="relu"),
                             layers.Dense(3, activation="softmax")])
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
    model.train_on_batch(rng.standard_normal((5, 12, 7)).astype(np.float32),
                         rng.integers(0, 3, 5))
    bufs = [b for layer in model.layers for b in layer._bufs.values()]
    bufs += list(model._bufs.values())
    assert len(bufs) > 5
    for b in bufs:
        assert b.ctypes.data % 64 == 0, b.shape
    # the flat weights and gradients too, also in a deep copy; the LSTM's kernel (7 x 36)
    # and recurrent kernel (9 x 36) are multiples of 4 floats, not 16: only the first
    # weight is sure to start on a line
    import copy
    for m in (model, copy.deepcopy(model)):
        assert m._flat_params.ctypes.data % 64 == 0 and m._flat_grads.ctypes.data % 64 == 0
        w = m.layers[0].params["kernel"]
        assert np.shares_memory(w, m._flat_params) and w.ctypes.data % 64 == 0
