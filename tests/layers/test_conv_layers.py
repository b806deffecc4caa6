"""Convolution, pooling, normalization and spatial reshaping layers: gradients against
central differences (float64) on both backends, Keras shapes and parameter counts,
channels_first vs channels_last, BatchNorm train vs inference, save/load, C vs reference on a
training step of a small CNN, and bad configurations."""
import re

import numpy as np
import pytest

import pynn
from pynn import layers
from helpers import check_grad

BACKENDS = ["c", "reference"]


def built(layer, input_shape, backend, dtype=np.float64):
    layer._build_for((None,) + tuple(input_shape), pynn.ops.get_backend(backend), dtype)
    return layer


def layer_grad_check(layer, x, names=None):
    names = list(layer.params) if names is None else names

    def forward(x, *ws):
        return np.array(layer.forward(x, training=True), copy=True)

    def backward(x, *ws_dy):
        dy = ws_dy[-1]
        layer.forward(x, training=True)
        dx = layer.backward(dy)
        return (None if dx is None else np.array(dx, copy=True),) + tuple(
            layer.grads[k].copy() for k in names)

    check_grad(forward, backward, [x] + [layer.params[k] for k in names])


def randomize(layer, rng):
    for k, w in layer.params.items():
        w[...] = rng.standard_normal(w.shape) * 0.5


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("cfg", [
    dict(filters=3, kernel_size=3, activation="relu"),
    dict(filters=2, kernel_size=(2, 3), strides=2, padding="same", activation="tanh"),
    dict(filters=2, kernel_size=2, dilation_rate=2, padding="same", use_bias=False),
    dict(filters=2, kernel_size=3, activation="elu"),          # not fused: separate kernel
    dict(filters=2, kernel_size=3, padding="same", data_format="channels_first",
         activation="sigmoid"),
])
def test_conv2d_gradients(backend, cfg):
    rng = np.random.default_rng(0)
    shape = (2, 5, 6) if cfg.get("data_format") == "channels_first" else (5, 6, 2)
    layer = built(layers.Conv2D(**cfg), shape, backend)
    randomize(layer, rng)
    layer_grad_check(layer, rng.standard_normal((2,) + shape))


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("layer_fn,shape", [
    (lambda: layers.DepthwiseConv2D(3, padding="same", activation="relu"), (5, 4, 3)),
    (lambda: layers.DepthwiseConv2D((2, 3), strides=(2, 1)), (5, 5, 2)),
    (lambda: layers.Conv2DTranspose(2, 3, strides=2, padding="same"), (3, 4, 3)),
    (lambda: layers.Conv2DTranspose(3, 2, strides=2, activation="tanh"), (2, 3, 2)),
    (lambda: layers.MaxPooling2D(2), (5, 4, 3)),
    (lambda: layers.MaxPooling2D(3, strides=2, padding="same"), (5, 6, 2)),
    (lambda: layers.AveragePooling2D(2, padding="same"), (5, 3, 2)),
    (lambda: layers.AveragePooling2D(2, data_format="channels_first"), (2, 4, 4)),
    (lambda: layers.GlobalAveragePooling2D(), (3, 4, 2)),
    (lambda: layers.GlobalMaxPooling2D(keepdims=True), (3, 4, 2)),
    (lambda: layers.UpSampling2D((2, 3)), (2, 3, 2)),
    (lambda: layers.ZeroPadding2D(((1, 0), (2, 1))), (3, 2, 2)),
    (lambda: layers.ZeroPadding2D(1, data_format="channels_first"), (2, 3, 2)),
])
def test_layer_gradients(backend, layer_fn, shape):
    rng = np.random.default_rng(1)
    layer = built(layer_fn(), shape, backend)
    randomize(layer, rng)
    layer_grad_check(layer, rng.standard_normal((2,) + shape))


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("kwargs,shape", [({}, (3, 4, 3)), ({"axis": 1}, (3, 4, 2)),
                                          ({"center": False, "scale": False}, (5, 3)),
                                          ({"scale": False}, (4,))])
def test_batch_norm_gradients(backend, kwargs, shape):
    rng = np.random.default_rng(2)
    layer = built(layers.BatchNormalization(**kwargs), shape, backend)
    trainable = [k for k in layer.params if k in ("gamma", "beta")]
    for k in trainable:
        layer.params[k][...] = rng.standard_normal(layer.params[k].shape)
    x = rng.standard_normal((4,) + shape)
    layer_grad_check(layer, x, trainable)
    # inference: statistics are constants
    layer.params["moving_mean"][...] = rng.standard_normal(layer.params["moving_mean"].shape)

    def forward(x, *ws):
        return np.array(layer.forward(x, training=False), copy=True)

    def backward(x, *ws_dy):
        layer.forward(x, training=False)
        dx = layer.backward(ws_dy[-1])
        return (dx.copy(),) + tuple(layer.grads[k].copy() for k in trainable)

    check_grad(forward, backward, [x] + [layer.params[k] for k in trainable])


@pytest.mark.parametrize("backend", BACKENDS)
def test_conv2d_exact_values(backend):
    layer = built(layers.Conv2D(1, 2, activation="relu"), (3, 3, 1), backend)
    layer.set_weights([np.array([1., 0., 0., -1.]).reshape(2, 2, 1, 1), np.array([0.5])])
    x = np.arange(9.).reshape(1, 3, 3, 1)                  # y = x[i,j] - x[i+1,j+1] + .5 = -3.5
    layer.params["kernel"][...] = np.array([0., 1., 1., 0.]).reshape(2, 2, 1, 1)
    y = layer.forward(x)                                   # x[i,j+1] + x[i+1,j] + .5
    np.testing.assert_array_equal(y[0, :, :, 0], [[4.5, 6.5], [10.5, 12.5]])


@pytest.mark.parametrize("backend", BACKENDS)
def test_batch_norm_train_vs_inference(backend):
    rng = np.random.default_rng(3)
    layer = built(layers.BatchNormalization(momentum=0.5), (4,), backend)
    x = rng.standard_normal((50, 4)) * 3 + 2
    y = layer.forward(x, training=True).copy()
    np.testing.assert_allclose(y.mean(axis=0), 0, atol=1e-12)
    np.testing.assert_allclose(y.var(axis=0), x.var(axis=0) / (x.var(axis=0) + 1e-3), rtol=1e-12)
    np.testing.assert_allclose(layer.params["moving_mean"], 0.5 * x.mean(axis=0), rtol=1e-12)
    np.testing.assert_allclose(layer.params["moving_variance"], 0.5 + 0.5 * x.var(axis=0),
                               rtol=1e-12)
    mm, mv = layer.params["moving_mean"].copy(), layer.params["moving_variance"].copy()
    yi = layer.forward(x, training=False)
    np.testing.assert_allclose(yi, (x - mm) / np.sqrt(mv + 1e-3), rtol=1e-12)
    np.testing.assert_array_equal(layer.params["moving_mean"], mm)  # inference: untouched
    layer.trainable = False                                         # frozen: inference mode
    np.testing.assert_allclose(layer.forward(x, training=True), yi, rtol=0)
    np.testing.assert_array_equal(layer.params["moving_variance"], mv)


def reference_cnn(**kw):
    return pynn.Sequential([
        layers.Input(shape=(28, 28, 1)),
        layers.Conv2D(32, 3, activation="relu"), layers.MaxPooling2D(2),
        layers.Conv2D(64, 3, activation="relu"), layers.MaxPooling2D(2),
        layers.Flatten(), layers.Dense(128, activation="relu"), layers.Dense(10)], **kw)


def test_summary_matches_keras():
    m = reference_cnn()
    # Keras: 320, 0, 18,496, 0, 0, 204,928, 1,290; total 225,034
    assert [layer.output_shape for layer in m.layers] == [
        (None, 26, 26, 32), (None, 13, 13, 32), (None, 11, 11, 64), (None, 5, 5, 64),
        (None, 1600), (None, 128), (None, 10)]
    assert [layer.count_params() for layer in m.layers] == [320, 0, 18496, 0, 0, 204928, 1290]
    assert m.count_params() == 225034
    lines = []
    m.summary(print_fn=lines.append)
    text = "\n".join(lines)
    assert re.search(r"conv2d(_\d+)? \(Conv2D\) +\(None, 26, 26, 32\) +320", text), text
    assert "Total params: 225,034" in text and "Trainable params: 225,034" in text
    bn = pynn.Sequential([layers.Input(shape=(4, 4, 3)), layers.BatchNormalization()])
    lines = []
    bn.summary(print_fn=lines.append)
    text = "\n".join(lines)
    assert "Total params: 12" in text and "Trainable params: 6" in text
    assert "Non-trainable params: 6" in text
    assert [w.shape for w in bn.get_weights()] == [(3,)] * 4   # gamma, beta, mean, var


def test_keras_names_and_shapes():
    m = pynn.Sequential([
        layers.Input(shape=(8, 8, 3)),
        layers.ZeroPadding2D(1),                                       # (10, 10, 3)
        layers.DepthwiseConv2D(3, strides=2, padding="same"),          # (5, 5, 3): 27 + 3
        layers.Conv2DTranspose(4, 3, strides=2),                       # (11, 11, 4): 108 + 4
        layers.UpSampling2D(2),                                        # (22, 22, 4)
        layers.AveragePooling2D(3, strides=2, padding="same"),         # (11, 11, 4)
        layers.GlobalMaxPooling2D()])                                  # (4,)
    assert [layer.output_shape for layer in m.layers] == [
        (None, 10, 10, 3), (None, 5, 5, 3), (None, 11, 11, 4), (None, 22, 22, 4),
        (None, 11, 11, 4), (None, 4)]
    assert [layer.count_params() for layer in m.layers] == [0, 30, 112, 0, 0, 0]
    assert m.predict(np.zeros((2, 8, 8, 3)), verbose=0).shape == (2, 4)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("layer_fn", [
    lambda df: layers.Conv2D(3, 3, strides=2, padding="same", activation="relu",
                             data_format=df),
    lambda df: layers.Conv2DTranspose(2, 3, strides=2, data_format=df),
    lambda df: layers.DepthwiseConv2D(3, data_format=df),
    lambda df: layers.MaxPooling2D(2, data_format=df),
    lambda df: layers.GlobalAveragePooling2D(data_format=df),
    lambda df: layers.UpSampling2D(2, data_format=df),
    lambda df: layers.ZeroPadding2D(((0, 1), (2, 0)), data_format=df),
    lambda df: layers.BatchNormalization(axis=1 if df == "channels_first" else -1),
])
def test_channels_first_equals_channels_last(backend, layer_fn):
    rng = np.random.default_rng(4)
    last = built(layer_fn("channels_last"), (6, 5, 2), backend)
    first = built(layer_fn("channels_first"), (2, 6, 5), backend)
    randomize(last, rng)
    first.set_weights(last.get_weights())
    x = rng.standard_normal((3, 6, 5, 2))
    y_last = last.forward(x, training=True)
    y_first = first.forward(np.ascontiguousarray(x.transpose(0, 3, 1, 2)), training=True)
    to_first = (lambda a: a.transpose(0, 3, 1, 2)) if y_last.ndim == 4 else (lambda a: a)
    np.testing.assert_allclose(y_first, to_first(y_last), rtol=1e-12, atol=1e-13)
    dy = rng.standard_normal(y_last.shape)
    dx_last = last.backward(dy)
    dx_first = first.backward(np.ascontiguousarray(to_first(dy)))
    np.testing.assert_allclose(dx_first, dx_last.transpose(0, 3, 1, 2), rtol=1e-12, atol=1e-13)
    for k in last.grads:
        np.testing.assert_allclose(first.grads[k], last.grads[k], rtol=1e-12, atol=1e-13)


def small_cnn(backend=None, dtype=None):
    return pynn.Sequential([
        layers.Input(shape=(9, 9, 2)),
        layers.Conv2D(4, 3, padding="same", activation="relu"),
        layers.BatchNormalization(),
        layers.MaxPooling2D(2),
        layers.DepthwiseConv2D(2, activation="tanh"),
        layers.Conv2D(5, 1),
        layers.GlobalAveragePooling2D(),
        layers.Dropout(0.2, seed=3),
        layers.Dense(3, activation="softmax")], backend=backend, dtype=dtype)


def test_c_and_reference_agree_on_a_training_step():
    pynn.utils.set_random_seed(5)
    rng = np.random.default_rng(5)
    m = small_cnn()
    m.compile("adam", "sparse_categorical_crossentropy", ["accuracy"])
    x = rng.standard_normal((6, 9, 9, 2)).astype(np.float32)
    y = rng.integers(0, 3, 6)
    report = pynn.compare(m, x, y)
    assert report.max(relative=True) < 1e-4, str(report)
    assert report[f"param {m.layers[1].name}/moving_mean"] < 1e-5


def test_model_gradient_float64():
    """The whole small CNN's parameter gradients (a sample of 40) against central
    differences of the training loss, float64."""
    pynn.utils.set_random_seed(6)
    rng = np.random.default_rng(6)
    m = small_cnn(backend="c", dtype="float64")
    m.compile("sgd", "sparse_categorical_crossentropy")
    m.layers[6].rate = 0.0  # Dropout off: a deterministic loss
    x = rng.standard_normal((4, 9, 9, 2))
    yt, sw = m._targets(rng.integers(0, 3, 4)), np.ones(4)
    m._forward_backward(x, yt, sw)
    analytic = m._flat_grads.copy()

    def loss():
        m._set_logits(True)
        try:
            out = m._forward(x, training=True)
        finally:
            m._set_logits(False)
        return m.loss.forward(m.ops, out, yt, sw, fused=m._fused)

    flat = m._flat_params
    trainable = [i for a, b in m._segs for i in range(a, b)]
    for i in rng.choice(trainable, 40, replace=False):
        old = flat[i]
        flat[i] = old + 1e-6
        fp = loss()
        flat[i] = old - 1e-6
        fm = loss()
        flat[i] = old
        np.testing.assert_allclose(analytic[i], (fp - fm) / 2e-6, rtol=1e-5, atol=1e-8)


def test_save_load_round_trip_with_batch_norm(tmp_path):
    pynn.utils.set_random_seed(7)
    rng = np.random.default_rng(7)
    m = small_cnn()
    m.compile("adam", "sparse_categorical_crossentropy")
    x = rng.standard_normal((16, 9, 9, 2)).astype(np.float32)
    y = rng.integers(0, 3, 16)
    m.fit(x, y, batch_size=8, epochs=2, verbose=0)
    bn = m.layers[1]
    assert not np.array_equal(bn.params["moving_mean"], 0)          # statistics moved
    m.save(tmp_path / "cnn.pynn")
    r = pynn.models.load_model(tmp_path / "cnn.pynn")
    np.testing.assert_array_equal(r.predict(x, verbose=0), m.predict(x, verbose=0))
    np.testing.assert_array_equal(r.layers[1].params["moving_variance"],
                                  bn.params["moving_variance"])
    assert [type(a).__name__ for a in r.layers] == [type(a).__name__ for a in m.layers]


def test_optimizer_skips_moving_statistics():
    pynn.utils.set_random_seed(8)
    m = pynn.Sequential([layers.Input(shape=(3,)), layers.BatchNormalization(momentum=0.0)])
    m.compile(pynn.optim.SGD(learning_rate=10.0), "mse")
    x = np.array([[0., 1., 2.], [2., 3., 6.]], np.float32)
    m.train_on_batch(x, np.zeros((2, 3)))
    bn = m.layers[0]
    np.testing.assert_allclose(bn.params["moving_mean"], [1., 2., 4.])   # batch stats only
    np.testing.assert_allclose(bn.params["moving_variance"], [1., 1., 4.])
    assert len(m.trainable_weights) == 2 and len(bn.non_trainable_weights) == 2


def test_saliency_is_the_input_gradient():
    pynn.utils.set_random_seed(9)
    rng = np.random.default_rng(9)
    m = small_cnn(backend="c", dtype="float64")
    m.build((None, 9, 9, 2))
    x = rng.standard_normal((2, 9, 9, 2))
    before = m.get_weights()
    g = pynn.plot.saliency(m, x, class_index=1)
    for a, b in zip(before, m.get_weights()):
        np.testing.assert_array_equal(a, b)

    def score(xx):  # the logit of class 1 (softmax fused away), summed over the batch
        out = xx
        last = m._layers[-1]
        last._output_logits = True
        try:
            for layer in m._layers:
                out = layer.forward(out, training=False)
        finally:
            last._output_logits = False
        return out[:, 1].sum()

    for idx in [(0, 0, 0, 0), (1, 4, 5, 1), (0, 8, 2, 1)]:
        xp, xm = x.copy(), x.copy()
        xp[idx] += 1e-6
        xm[idx] -= 1e-6
        np.testing.assert_allclose(g[idx], (score(xp) - score(xm)) / 2e-6, rtol=1e-5,
                                   atol=1e-8)


@pytest.mark.parametrize("make,shape,msg", [
    (lambda: layers.Conv2D(2, 5), (4, 4, 1), "larger than the padded input"),
    (lambda: layers.Conv2D(2, 3, dilation_rate=2), (4, 9, 1), "larger than the padded input"),
    (lambda: layers.MaxPooling2D(3), (2, 5, 1), "larger than the padded input"),
    (lambda: layers.Conv2D(2, 3), (28, 28), "rank-4"),
    (lambda: layers.MaxPooling2D(), (8, 8), "rank-4"),
    (lambda: layers.BatchNormalization(axis=3), (4, 4), "axis=3"),
])
def test_bad_configurations_at_build(make, shape, msg):
    with pytest.raises(ValueError, match=msg):
        pynn.Sequential([layers.Input(shape=shape), make()])


@pytest.mark.parametrize("make,exc,msg", [
    (lambda: layers.Conv2D(2, 3, strides=0), ValueError, "strides must be >= 1"),
    (lambda: layers.Conv2D(2, 0), ValueError, "kernel_size must be >= 1"),
    (lambda: layers.Conv2D(0, 3), ValueError, "filters"),
    (lambda: layers.Conv2D(2, 3, padding="full"), ValueError, "padding"),
    (lambda: layers.Conv2D(2, 3, data_format="NCHW"), ValueError, "data_format"),
    (lambda: layers.Conv2D(2, 3, strides=2, dilation_rate=2), ValueError, "dilation"),
    (lambda: layers.Conv2D(2, 2.5), TypeError, "kernel_size"),
    (lambda: layers.MaxPooling2D(2, strides=(1, 0)), ValueError, "strides must be >= 1"),
    (lambda: layers.DepthwiseConv2D(3, depth_multiplier=2), ValueError, "depth_multiplier"),
    (lambda: layers.UpSampling2D(interpolation="bilinear"), ValueError, "nearest"),
    (lambda: layers.ZeroPadding2D(-1), ValueError, ">= 0"),
    (lambda: layers.BatchNormalization(momentum=2.0), ValueError, "momentum"),
])
def test_bad_arguments(make, exc, msg):
    with pytest.raises(exc, match=msg):
        make()


def test_wrong_rank_at_call():
    layer = layers.Conv2D(2, 3)
    with pytest.raises(ValueError, match="rank-4"):
        layer(np.zeros((2, 8, 8)))
    m = reference_cnn()
    with pytest.raises(ValueError, match="expects inputs of shape"):
        m.predict(np.zeros((2, 28, 28)), verbose=0)


def test_config_round_trip():
    m = pynn.Sequential([
        layers.Input(shape=(8, 8, 2)),
        layers.Conv2D(3, (3, 2), strides=(1, 2), padding="same", dilation_rate=1,
                      activation="relu", kernel_regularizer="l2", data_format="channels_last"),
        layers.DepthwiseConv2D(2, depthwise_initializer="he_normal"),
        layers.BatchNormalization(momentum=0.9, epsilon=1e-5, center=False),
        layers.Conv2DTranspose(2, 2, strides=2),
        layers.AveragePooling2D(2, strides=1), layers.UpSampling2D(2), layers.ZeroPadding2D(1),
        layers.GlobalAveragePooling2D(keepdims=True)])
    c = pynn.models.model_from_config(m.get_config())
    assert c.get_config() == m.get_config()


def test_cnn_plots_write_pngs(tmp_path):
    pytest.importorskip("matplotlib")
    import matplotlib.pyplot as plt
    pynn.utils.set_random_seed(10)
    m = small_cnn()
    m.build((None, 9, 9, 2))
    x = np.random.default_rng(10).standard_normal((3, 9, 9, 2)).astype(np.float32)
    maps = pynn.plot.feature_maps(m, x[0])
    assert [(name, a.shape) for name, a in maps] == [(m.layers[0].name, (9, 9, 4)),
                                                     (m.layers[3].name, (3, 3, 4)),
                                                     (m.layers[4].name, (3, 3, 5))]
    try:
        for name, fig in [("f", pynn.plot.plot_filters(m.layers[0], path=tmp_path / "f.png")),
                          ("m", pynn.plot.plot_feature_maps(m, x[0], path=tmp_path / "m.png")),
                          ("s", pynn.plot.plot_saliency(m, x, [0, 1, 2], path=tmp_path / "s.png"))]:
            assert (tmp_path / f"{name}.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        with pytest.raises(ValueError, match="convolution layer"):
            pynn.plot.plot_filters(m.layers[2])
        with pytest.raises(ValueError, match="class_index"):
            pynn.plot.saliency(m, x, class_index=3)
    finally:
        plt.close("all")


# -- inference fusion of Conv2D + MaxPooling2D (conv2d_maxpool_forward) -------------------------

def _fusion_model(backend, conv_kwargs=None, pool_kwargs=None, dtype=None):
    ck = dict(activation="relu", **(conv_kwargs or {}))
    m = pynn.Sequential([
        layers.Input(shape=(11, 10, 2)), layers.Conv2D(6, 3, **ck),
        layers.MaxPooling2D(**(pool_kwargs or {})), layers.Conv2D(5, 2, padding="same"),
        layers.MaxPooling2D(2), layers.Flatten(), layers.Dense(3)],
        backend=backend, dtype=dtype)
    m.compile("adam", pynn.losses.SparseCategoricalCrossentropy(from_logits=True))
    return m


def _layer_by_layer(m, x):
    for layer in m._layers:
        x = layer.forward(x, training=False)
    return np.array(x, copy=True)


@pytest.mark.parametrize("backend", BACKENDS)
def test_predict_fuses_conv_and_pool_with_the_same_bits(backend):
    m = _fusion_model(backend)
    steps = m._inference_steps()
    assert [len(s) for s in steps] == [1, 2, 2, 1, 1]   # input, two fused pairs, flatten, dense
    x = np.random.default_rng(0).standard_normal((37, 11, 10, 2)).astype(np.float32)
    want = _layer_by_layer(m, x)
    for nt in (1, 2):
        with pynn.num_threads(nt):
            assert np.array_equal(m.predict(x, batch_size=16, verbose=0), want)
            assert np.array_equal(m.predict_on_batch(x), want)
    y = np.arange(37) % 3
    loss = m.evaluate(x, y, verbose=0)
    np.testing.assert_allclose(loss, m.test_on_batch(x, y), rtol=1e-6)


@pytest.mark.parametrize("conv_kwargs, pool_kwargs", [
    ({"activation": "elu"}, {}),                      # an activation the kernel cannot apply
    ({"data_format": "channels_first"}, {"data_format": "channels_first"}),
    ({}, {"pool_size": 2, "strides": 1}),            # overlapping windows
    ({}, {"padding": "same"}),
])
def test_predict_does_not_fuse_other_pool_configs(conv_kwargs, pool_kwargs):
    shape = (2, 9, 9) if conv_kwargs.get("data_format") == "channels_first" else (9, 9, 2)
    m = pynn.Sequential([layers.Input(shape=shape), layers.Conv2D(4, 3, **conv_kwargs),
                         layers.MaxPooling2D(**pool_kwargs), layers.Flatten()])
    assert all(len(s) == 1 for s in m._inference_steps())
    x = np.random.default_rng(1).standard_normal((3,) + m.input_shape[1:]).astype(np.float32)
    assert np.array_equal(m.predict(x, verbose=0), _layer_by_layer(m, x))


def test_call_then_backward_after_predict_uses_the_layer_caches():
    # model(x) keeps what backward needs even in inference mode: no fusion there, and a
    # predict in between (fused, caching nothing) must not disturb a later backward
    m = _fusion_model("c", dtype="float64")
    rng = np.random.default_rng(2)
    x = rng.standard_normal((4, 11, 10, 2))
    out = m(x, training=False)
    dout = rng.standard_normal(out.shape)
    dx1 = m.backward(dout)
    m.predict(rng.standard_normal((5, 11, 10, 2)), verbose=0)
    m(x, training=False)
    dx2 = m.backward(dout)
    assert np.array_equal(dx1, dx2)


def test_fused_kernel_runs_in_predict_and_evaluate_not_in_call(monkeypatch):
    m = _fusion_model("c")
    calls = []
    real = layers.Conv2D.forward_max_pool

    def counted(self, x, pool):
        calls.append(self.name)
        return real(self, x, pool)
    monkeypatch.setattr(layers.Conv2D, "forward_max_pool", counted)
    x = np.random.default_rng(4).standard_normal((3, 11, 10, 2)).astype(np.float32)
    m(x, training=False)
    assert calls == []
    m.predict(x, verbose=0)
    assert calls == [m.layers[0].name, m.layers[2].name]
    m.evaluate(x, np.arange(3) % 3, verbose=0)
    assert len(calls) == 4


def test_nested_model_call_then_backward_keeps_its_caches():
    # a Sequential with a fusable pair inside a functional model: outer(x, training=False)
    # then backward needs the inner layers' caches, so the inner model must not fuse
    rng = np.random.default_rng(5)
    inner = pynn.Sequential([layers.Input(shape=(11, 10, 2)),
                             layers.Conv2D(6, 3, activation="relu"),
                             layers.MaxPooling2D(2), layers.Flatten()], dtype="float64")
    inp = pynn.Input(shape=(11, 10, 2), dtype="float64")
    outer = pynn.Model(inp, layers.Dense(3)(inner(inp)))
    assert [len(s) for s in inner._inference_steps()] == [1, 2, 1]
    x = rng.standard_normal((4, 11, 10, 2))
    xa = rng.standard_normal((4, 11, 10, 2))
    dout = rng.standard_normal((4, 3))
    outer(x, training=True)
    want = outer.backward(dout, params=False)
    outer(xa, training=True)                      # stale caches that a fused pass would leave
    outer(x, training=False)
    got = outer.backward(dout, params=False)
    assert np.array_equal(got, want)
    assert np.array_equal(outer.predict(x, verbose=0), outer(x, training=False))


def test_fusion_plan_follows_layer_changes():
    m = _fusion_model("c")
    x = np.random.default_rng(3).standard_normal((2, 11, 10, 2)).astype(np.float32)
    m.predict(x, verbose=0)
    m.pop()
    m.add(layers.Dense(4))
    assert m.predict(x, verbose=0).shape == (2, 4)
    assert np.array_equal(m.predict(x, verbose=0), _layer_by_layer(m, x))
