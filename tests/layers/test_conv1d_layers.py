"""1-D convolution and pooling layers (run on the 2-D kernels through (B, 1, T, C) views):
values against straightforward NumPy loops, gradients against central differences (float64)
on both backends, causal padding sees no future step, channels_first, variable steps,
Keras weight shapes and configs, save/load, bad arguments."""
import numpy as np
import pytest

import pynn
from pynn import layers
from test_conv_layers import built, layer_grad_check, randomize

BACKENDS = ["c", "reference"]


def conv1d_loops(x, w, b, stride, pad, dilation, left):
    """y[n, t, f] = b[f] + sum_{i, c} w[i, c, f] x[n, t*stride + i*dilation - left, c],
    x zero outside [0, T); `pad` total padding of which `left` on the left."""
    n, T, _ = x.shape
    k, _, f = w.shape
    xp = np.zeros((n, T + pad, x.shape[2]))
    xp[:, left:left + T] = x
    steps = (T + pad - (k - 1) * dilation - 1) // stride + 1
    y = np.empty((n, steps, f))
    for t in range(steps):
        win = xp[:, t * stride + np.arange(k) * dilation]           # (n, k, C)
        y[:, t] = np.einsum("nkc,kcf->nf", win, w) + b
    return y


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("padding,stride,dilation", [
    ("valid", 1, 1), ("valid", 2, 1), ("valid", 1, 2), ("same", 1, 1), ("same", 2, 1),
    ("same", 1, 3), ("causal", 1, 1), ("causal", 1, 2), ("causal", 3, 1)])
def test_conv1d_values_against_loops(backend, padding, stride, dilation):
    rng = np.random.default_rng(1)
    T, k = 13, 3
    layer = built(layers.Conv1D(4, k, strides=stride, padding=padding, dilation_rate=dilation),
                  (T, 2), backend)
    randomize(layer, rng)
    w, b = layer.params["kernel"], layer.params["bias"]
    assert w.shape == (k, 2, 4)                                   # Keras' kernel layout
    x = rng.standard_normal((3, T, 2))
    span = (k - 1) * dilation + 1
    if padding == "valid":
        pad = left = 0
    elif padding == "causal":
        pad = left = span - 1
    else:                                      # Keras 'same': output ceil(T / stride) steps
        out = -(-T // stride)
        pad = max((out - 1) * stride + span - T, 0)
        left = pad // 2
    want = conv1d_loops(x, w, b, stride, pad, dilation, left)
    got = layer.forward(x)
    assert got.shape == want.shape
    assert layer.compute_output_shape((None, T, 2)) == (None,) + want.shape[1:]
    np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("cfg", [
    dict(filters=3, kernel_size=3, activation="relu"),
    dict(filters=2, kernel_size=2, strides=2, padding="same", activation="tanh"),
    dict(filters=2, kernel_size=3, dilation_rate=2, padding="causal", use_bias=False),
    dict(filters=2, kernel_size=3, padding="causal", activation="elu"),   # not fused
    dict(filters=2, kernel_size=3, padding="same", data_format="channels_first",
         activation="sigmoid")])
def test_conv1d_gradients(backend, cfg):
    rng = np.random.default_rng(0)
    shape = (2, 7) if cfg.get("data_format") == "channels_first" else (7, 2)
    layer = built(layers.Conv1D(**cfg), shape, backend)
    randomize(layer, rng)
    layer_grad_check(layer, rng.standard_normal((2,) + shape))


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("make", [
    lambda: layers.MaxPooling1D(2), lambda: layers.MaxPooling1D(3, strides=2, padding="same"),
    lambda: layers.AveragePooling1D(3, strides=1), lambda: layers.AveragePooling1D(2,
                                                                                  padding="same"),
    lambda: layers.GlobalAveragePooling1D(), lambda: layers.GlobalMaxPooling1D(keepdims=True),
    lambda: layers.GlobalAveragePooling1D(data_format="channels_first")])
def test_pooling1d_values_and_gradients(backend, make):
    rng = np.random.default_rng(2)
    layer = make()
    cf = layer.data_format == "channels_first"
    shape = (3, 7) if cf else (7, 3)
    built(layer, shape, backend)
    x = rng.standard_normal((2,) + shape)
    xs = x.transpose(0, 2, 1) if cf else x                     # (B, T, C)
    y = layer.forward(x)
    if isinstance(layer, layers.GlobalAveragePooling1D):
        want = xs.mean(axis=1)
    elif isinstance(layer, layers.GlobalMaxPooling1D):
        want = xs.max(axis=1)[:, None]
    else:   # the 2-D layer on (B, 1, T, C) is the spec, with Keras' window arithmetic
        p, s = layer.pool_size[1], layer.strides[1]
        out = (-(-7 // s) if layer.padding == "same" else (7 - p) // s + 1)
        pad = max((out - 1) * s + p - 7, 0) if layer.padding == "same" else 0
        f = np.max if isinstance(layer, layers.MaxPooling1D) else np.mean
        want = np.stack([f(xs[:, max(t * s - pad // 2, 0):t * s - pad // 2 + p], axis=1)
                         for t in range(out)], axis=1)
    np.testing.assert_allclose(y, want, rtol=1e-12, atol=1e-12)
    assert layer.compute_output_shape((None,) + shape) == (None,) + y.shape[1:]
    x = rng.permutation(np.arange(x.size, dtype=np.float64)).reshape(x.shape) / x.size
    layer_grad_check(layer, x)                                   # distinct values: no ties


def test_causal_conv1d_sees_no_future_step():
    rng = np.random.default_rng(3)
    layer = built(layers.Conv1D(2, 3, padding="causal", dilation_rate=2), (9, 2), "c")
    x = rng.standard_normal((2, 9, 2))
    y = layer.forward(x).copy()
    for t in range(8):
        x2 = x.copy()
        x2[:, t + 1:] = rng.standard_normal(x2[:, t + 1:].shape)
        y2 = layer.forward(x2)
        np.testing.assert_array_equal(y2[:, :t + 1], y[:, :t + 1])
        assert not np.allclose(y2[:, t + 1:], y[:, t + 1:])


def test_text_cnn_variable_steps_save_load_and_backends(tmp_path):
    # Keras' text-classification CNN: ids (B, None) -> Embedding -> Conv1D -> pooling ->
    # GlobalMaxPooling1D -> Dense; trains on batches of any length, saves and reloads
    pynn.utils.set_random_seed(0)
    rng = np.random.default_rng(4)
    m = pynn.Sequential([pynn.Input(shape=(None,)), layers.Embedding(20, 6),
                         layers.Conv1D(8, 3, padding="causal", activation="relu"),
                         layers.MaxPooling1D(2), layers.Conv1D(8, 3, activation="relu"),
                         layers.GlobalMaxPooling1D(), layers.Dense(2, activation="softmax")])
    m.compile(pynn.optimizers.Adam(0.01), "sparse_categorical_crossentropy",
              metrics=["accuracy"])
    assert m.output_shape == (None, 2)
    x = rng.integers(1, 20, (64, 12))
    y = (x == 7).any(axis=1).astype(int)            # a token anywhere: what conv + max finds
    first = m.evaluate(x, y, verbose=0)[0]
    m.fit(x, y, epochs=30, batch_size=16, verbose=0)
    assert m.evaluate(x, y, verbose=0)[0] < 0.5 * first
    assert m.predict(rng.integers(1, 20, (3, 17)), verbose=0).shape == (3, 2)
    m.save(tmp_path / "cnn.pynn")
    again = pynn.models.load_model(tmp_path / "cnn.pynn")
    np.testing.assert_array_equal(again.predict(x, verbose=0), m.predict(x, verbose=0))
    conv = again.layers[1]
    assert conv.get_config()["kernel_size"] == [3] and conv.get_config()["padding"] == "causal"
    report = pynn.compare(m, x[:8], y[:8])
    assert report.max(relative=True) < 1e-4, str(report)


def test_conv1d_bad_arguments_and_inputs():
    with pytest.raises(ValueError, match="kernel_size"):
        layers.Conv1D(2, (3, 3))
    with pytest.raises(ValueError, match="strides"):
        layers.Conv1D(2, 3, strides=0)
    with pytest.raises(ValueError, match="pool_size"):
        layers.MaxPooling1D((2, 2))
    with pytest.raises(ValueError, match="padding"):
        layers.Conv1D(2, 3, padding="full")
    with pytest.raises(ValueError, match="rank-3"):
        pynn.Sequential([pynn.Input(shape=(5, 5, 1)), layers.Conv1D(2, 3)])
    with pytest.raises(ValueError, match="channels"):
        pynn.Sequential([pynn.Input(shape=(5, None)), layers.Conv1D(2, 3)])
    with pytest.raises(ValueError):
        pynn.Sequential([pynn.Input(shape=(2, 3)), layers.Conv1D(2, 3)])   # kernel too long


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("make", [
    lambda: layers.GlobalAveragePooling1D(), lambda: layers.GlobalMaxPooling1D(keepdims=True),
    lambda: layers.GlobalAveragePooling1D(data_format="channels_first"),
    lambda: layers.MaxPooling1D(2), lambda: layers.AveragePooling1D(2, padding="same"),
    lambda: layers.Conv1D(2, 3, padding="causal"), lambda: layers.Conv1D(2, 1)])
def test_empty_sequence_is_a_clear_error(backend, make):
    """T = 0 names the layer, the shape and the empty sequence, the same on both backends
    (the 2-D kernels' messages spoke of a (B, 1, 0, C) view: "x height and width must be
    >= 1", or a kernel "larger than the padded input (2)" for a causal Conv1D)."""
    layer = make()
    cf = layer.data_format == "channels_first"
    built(layer, (3, None) if cf else (None, 3), backend)
    x = np.zeros((2, 3, 0) if cf else (2, 0, 3))
    re_shape = str(x.shape).replace("(", r"\(").replace(")", r"\)")
    with pytest.raises(ValueError, match=rf"{type(layer).__name__} '{layer.name}' received an "
                                         rf"empty sequence \(0 steps\): input shape {re_shape}"):
        layer.forward(x, training=True)
    y = layer.forward(np.ones((0, 3, 4) if cf else (0, 4, 3)))  # an empty batch still runs
    assert y.shape[0] == 0


@pytest.mark.parametrize("padding", ["causal", "valid", "same"])
def test_empty_sequence_builds_nothing_and_says_so(padding):
    # called unbuilt on 0 steps, the layer built from the shape first, and a causal one
    # failed there with the 2-D rule's "larger than the padded input (2) with
    # padding='valid'", naming a padding the caller had not passed
    layer = layers.Conv1D(2, 3, padding=padding)
    with pytest.raises(ValueError, match=r"Conv1D '.*' received an empty sequence"):
        layer(np.ones((2, 0, 1), np.float32))


@pytest.mark.parametrize("backend", BACKENDS)
def test_empty_sequence_with_a_mask_and_in_a_model(backend):
    # masked: no step at all is refused as without a mask (it returned zeros)
    layer = built(layers.GlobalAveragePooling1D(), (None, 3), backend)
    with pytest.raises(ValueError, match="empty sequence"):
        layer.forward(np.zeros((2, 0, 3)), mask=np.zeros((2, 0), bool))
    with pynn.ops.use_backend(backend):
        model = pynn.Sequential([pynn.Input(shape=(None, 3)), layers.Conv1D(4, 3, padding="same"),
                                 layers.MaxPooling1D(2), layers.GlobalAveragePooling1D(),
                                 layers.Dense(2)])
    with pytest.raises(ValueError, match="Conv1D .* empty sequence"):
        model.predict(np.zeros((2, 0, 3)), verbose=0)
    with pytest.raises(ValueError, match="empty sequence"):
        model(np.zeros((2, 0, 3)))
    assert model.predict(np.ones((2, 5, 3)), verbose=0).shape == (2, 2)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("shape", [(2, 0, 4, 3), (2, 4, 0, 3)])
def test_global_pooling2d_empty_input_names_the_layer(backend, shape):
    for layer in (layers.GlobalAveragePooling2D(), layers.GlobalMaxPooling2D()):
        built(layer, shape[1:], backend)
        with pytest.raises(ValueError, match=rf"{type(layer).__name__} '{layer.name}' received "
                                             r"an empty input: shape \(2, .*no pixel"):
            layer.forward(np.zeros(shape))
