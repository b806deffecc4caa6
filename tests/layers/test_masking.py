"""Padding masks (Keras' Embedding(mask_zero=True)): padded samples give what the unpadded
sequences give, through the recurrent layers (both directions), masked average pooling and
the pass-through layers; the loss and metrics of a sequence output leave padded positions
out; gradients against central differences (float64); layers that cannot take a mask are
refused when the model is built; save/load keeps mask_zero."""
import numpy as np
import pytest

import pynn
from pynn import layers
from helpers import numerical_grad

BACKENDS = ["c", "reference"]
V, T = 12, 6


def _padded(rng, b, t=T, left=False):
    """ids (b, t) in [1, V) with a random real length per row (>= 1), 0 as padding."""
    x = rng.integers(1, V, (b, t))
    lens = rng.integers(1, t + 1, b)
    for i, n in enumerate(lens):
        if left:
            x[i, :t - n] = 0
        else:
            x[i, n:] = 0
    return x, lens


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("left", [False, True])
@pytest.mark.parametrize("make", [
    lambda: [layers.LSTM(5)], lambda: [layers.GRU(4)], lambda: [layers.SimpleRNN(3)],
    lambda: [layers.Dropout(0.3, seed=1), layers.Bidirectional(layers.LSTM(3))],
    lambda: [layers.LSTM(4, return_sequences=True), layers.LayerNormalization(),
             layers.GRU(3, go_backwards=True)],
    lambda: [layers.TimeDistributed(layers.Dense(4)), layers.GlobalAveragePooling1D()]])
def test_padded_samples_predict_as_their_real_steps(backend, left, make):
    rng = np.random.default_rng(0)
    pynn.utils.set_random_seed(0)
    m = pynn.Sequential([pynn.Input(shape=(None,)), layers.Embedding(V, 4, mask_zero=True)]
                        + make() + [layers.Dense(2)], backend=backend, dtype="float64")
    x, lens = _padded(rng, 8, left=left)
    p = m.predict(x, verbose=0)
    for i, n in enumerate(lens):
        real = x[i:i + 1, T - n:] if left else x[i:i + 1, :n]
        np.testing.assert_allclose(m.predict(real, verbose=0)[0], p[i], rtol=1e-12,
                                   atol=1e-12)


@pytest.mark.parametrize("backend", BACKENDS)
def test_masked_model_gradients_vs_central_differences(backend):
    rng = np.random.default_rng(1)
    pynn.utils.set_random_seed(1)
    i = pynn.Input(shape=(T,), dtype="float64")
    e = layers.Embedding(V, 3, mask_zero=True)(i)
    s = layers.Bidirectional(layers.GRU(3, return_sequences=True))(e)
    s = layers.LSTM(3, return_sequences=True)(s)
    o = layers.TimeDistributed(layers.Dense(4, activation="softmax"))(s)
    m = pynn.Model(i, o, backend=backend)
    m.compile("sgd", "sparse_categorical_crossentropy")
    x, _ = _padded(rng, 4)
    y = m._targets(rng.integers(0, 4, (4, T)))
    m._forward_backward(x, y, None)
    g = m._flat_grads.copy()
    num = numerical_grad(lambda: m._forward_backward(x, y, None)[1], m._flat_params)
    np.testing.assert_allclose(g, num, rtol=1e-6, atol=1e-8)
    assert np.abs(m.get_layer(index=1).grads["embeddings"][0]).max() == 0   # padding id


def test_sequence_loss_and_metrics_leave_padding_out():
    # Keras: the loss is the mean over the real positions (with sample_weight, weighted);
    # accuracy counts real positions only
    rng = np.random.default_rng(2)
    m = pynn.Sequential([pynn.Input(shape=(T,)), layers.Embedding(V, 4, mask_zero=True),
                         layers.LSTM(5, return_sequences=True),
                         layers.Dense(3, activation="softmax")], dtype="float64")
    m.compile("sgd", "sparse_categorical_crossentropy", metrics=["accuracy"],
              weighted_metrics=["accuracy"])
    x, _ = _padded(rng, 10)
    y = rng.integers(0, 3, (10, T))
    real = x != 0
    p = m.predict(x, verbose=0)
    nll = -np.log(np.take_along_axis(p, y[..., None], axis=-1)[..., 0])        # (B, T)
    hit = p.argmax(-1) == y
    got = m.evaluate(x, y, verbose=0, return_dict=True)
    assert got["loss"] == pytest.approx(nll[real].mean(), rel=1e-12)
    assert got["accuracy"] == pytest.approx(hit[real].mean(), rel=1e-12)
    sw = rng.random(10)
    got = m.evaluate(x, y, sample_weight=sw, verbose=0, return_dict=True)
    w = real * sw[:, None]
    assert got["loss"] == pytest.approx((nll * w).sum() / real.sum(), rel=1e-12)
    assert got["weighted_accuracy"] == pytest.approx((hit * w).sum() / w.sum(), rel=1e-12)
    assert got["accuracy"] == pytest.approx(hit[real].mean(), rel=1e-12)
    y_pad = y.copy()
    y_pad[~real] = 0                          # labels at padded positions do not matter
    assert m.evaluate(x, y_pad, verbose=0) == pytest.approx(
        m.evaluate(x, y, verbose=0), rel=1e-12)
    h = m.fit(x, y, epochs=3, batch_size=5, verbose=0)
    assert h.history["loss"][-1] < h.history["loss"][0]


def test_masked_average_pooling():
    rng = np.random.default_rng(3)
    pool = layers.GlobalAveragePooling1D()
    x = rng.standard_normal((3, 5, 2))
    mask = np.array([[1, 1, 0, 0, 0], [1, 1, 1, 1, 1], [0, 0, 0, 0, 0]], bool)
    y = pool(x)
    np.testing.assert_allclose(y, x.mean(axis=1), rtol=1e-6)
    pool.dtype = np.dtype(np.float64)
    y = pool.forward(x, mask=mask)
    np.testing.assert_allclose(y[0], x[0, :2].mean(axis=0), rtol=1e-12)
    np.testing.assert_allclose(y[1], x[1].mean(axis=0), rtol=1e-12)
    np.testing.assert_array_equal(y[2], 0)                    # nothing real: 0, not NaN
    dy = rng.standard_normal(y.shape)
    dx = pool.backward(dy)
    np.testing.assert_allclose(dx[0, :2], np.broadcast_to(dy[0] / 2, (2, 2)), rtol=1e-12)
    np.testing.assert_array_equal(dx[0, 2:], 0)
    np.testing.assert_array_equal(dx[2], 0)


@pytest.mark.parametrize("make", [
    lambda: layers.Flatten(), lambda: layers.Conv1D(2, 3), lambda: layers.GlobalMaxPooling1D(),
    lambda: layers.TransformerBlock(2), lambda: layers.BatchNormalization()])
def test_layers_that_cannot_take_a_mask_are_refused(make):
    with pytest.raises(ValueError, match="does not support masking"):
        pynn.Sequential([pynn.Input(shape=(T,)), layers.Embedding(V, 4, mask_zero=True),
                         make()])
    i = pynn.Input(shape=(T,))
    e = layers.Embedding(V, 4, mask_zero=True)(i)
    with pytest.raises(ValueError, match="does not support masking"):
        make()(e)
    with pytest.raises(ValueError, match="does not support masking"):
        layers.Add()([e, e])
    q = pynn.Input(shape=(T, 4))
    with pytest.raises(ValueError, match="does not support masking"):   # by keyword too
        layers.MultiHeadAttention(2, 2)(q, value=e)
    # a sequence ended by an RNN carries no mask: anything may follow
    h = layers.LSTM(3)(e)
    pynn.Model(i, layers.Dense(1)(h))


def test_states_of_a_masked_encoder_start_an_unmasked_decoder(tmp_path):
    rng = np.random.default_rng(4)
    pynn.utils.set_random_seed(4)
    enc_in, dec_in = pynn.Input(shape=(None,)), pynn.Input(shape=(3, 2))
    e = layers.Embedding(V, 4, mask_zero=True)(enc_in)
    _, h, c = layers.LSTM(5, return_state=True)(e)
    seq = layers.LSTM(5, return_sequences=True)([dec_in, h, c])
    m = pynn.Model([enc_in, dec_in], layers.TimeDistributed(layers.Dense(1))(seq))
    m.compile("adam", "mse")
    x, lens = _padded(rng, 6)
    xd = rng.standard_normal((6, 3, 2))
    p = m.predict([x, xd], verbose=0)
    n = lens[0]
    np.testing.assert_allclose(m.predict([x[:1, :n], xd[:1]], verbose=0)[0], p[0], rtol=1e-5,
                               atol=1e-6)
    m.fit([x, xd], np.zeros((6, 3, 1)), epochs=1, verbose=0)     # the decoder's loss: all
    m.save(tmp_path / "s2s.pynn")
    again = pynn.models.load_model(tmp_path / "s2s.pynn")
    np.testing.assert_array_equal(again.predict([x, xd], verbose=0),
                                  m.predict([x, xd], verbose=0))
    (emb,) = [la for la in again.layers if isinstance(la, layers.Embedding)]
    assert emb.mask_zero and again._masking


def test_masks_leave_nested_models_and_both_directions():
    # a mask made inside a nested model goes out with its output (the outer LSTM skipped
    # nothing, the outer loss counted padding); Bidirectional without merge: both sequences
    # carry it
    rng = np.random.default_rng(5)
    pynn.utils.set_random_seed(5)
    x, _ = _padded(rng, 6)
    y = rng.integers(0, 3, (6, T))
    i = pynn.Input(shape=(T,))
    inner = pynn.Model(i, layers.LSTM(4, return_sequences=True)(
        layers.Embedding(V, 4, mask_zero=True)(i)))
    j = pynn.Input(shape=(T,))
    outer = pynn.Model(j, layers.Dense(3, activation="softmax")(inner(j)))
    flat = pynn.Sequential([pynn.Input(shape=(T,)), layers.Embedding(V, 4, mask_zero=True),
                            layers.LSTM(4, return_sequences=True),
                            layers.Dense(3, activation="softmax")])
    flat.set_weights(outer.get_weights())
    for m in (outer, flat):
        m.compile("sgd", "sparse_categorical_crossentropy", metrics=["accuracy"])
    np.testing.assert_array_equal(outer.predict(x, verbose=0), flat.predict(x, verbose=0))
    assert outer.evaluate(x, y, verbose=0) == flat.evaluate(x, y, verbose=0)
    k = pynn.Input(shape=(None,))
    f, b = layers.Bidirectional(layers.LSTM(3, return_sequences=True), merge_mode=None)(
        layers.Embedding(V, 4, mask_zero=True)(k))
    for seq in (f, b):
        m = pynn.Model(k, layers.GRU(2)(seq))
        for r, n in zip(x, (r.argmin() if (r == 0).any() else T for r in x)):
            np.testing.assert_allclose(m.predict(r[None, :n], verbose=0),
                                       m.predict(r[None], verbose=0), rtol=1e-5, atol=1e-6)


def test_custom_step_weighs_the_loss_with_the_output_mask():
    rng = np.random.default_rng(6)
    m = pynn.Sequential([pynn.Input(shape=(T,)), layers.Embedding(V, 4, mask_zero=True),
                         layers.GRU(4, return_sequences=True), layers.Dense(3)],
                        dtype="float64")
    m.compile("sgd", pynn.losses.SparseCategoricalCrossentropy(from_logits=True))
    x, _ = _padded(rng, 5)
    y = rng.integers(0, 3, (5, T))
    out = m(x, training=True)
    mask = m.output_mask
    np.testing.assert_array_equal(mask, x != 0)
    w = mask / mask.mean()                                     # as fit: mean over real steps
    loss_fn = pynn.losses.SparseCategoricalCrossentropy(from_logits=True)
    value, _ = loss_fn.value_and_grad(y.reshape(-1), out.reshape(-1, 3), w.reshape(-1))
    assert value == pytest.approx(m.evaluate(x, y, verbose=0), rel=1e-12)
    assert pynn.Sequential([pynn.Input(shape=(3,)), layers.Dense(1)]).output_mask is None


@pytest.mark.parametrize("backend", BACKENDS)
def test_masked_sequential_gradients_vs_central_differences(backend):
    # the Sequential path (relu SimpleRNN, masked average pooling inside the model)
    rng = np.random.default_rng(7)
    pynn.utils.set_random_seed(7)
    m = pynn.Sequential([pynn.Input(shape=(T,)), layers.Embedding(V, 3, mask_zero=True),
                         layers.SimpleRNN(3, activation="relu", return_sequences=True),
                         layers.GlobalAveragePooling1D(), layers.Dense(2)],
                        backend=backend, dtype="float64")
    m.compile("sgd", "mse")
    x, _ = _padded(rng, 5)
    y = m._targets(rng.standard_normal((5, 2)))
    m._forward_backward(x, y, None)
    g = m._flat_grads.copy()
    num = numerical_grad(lambda: m._forward_backward(x, y, None)[1], m._flat_params)
    np.testing.assert_allclose(g, num, rtol=1e-6, atol=1e-8)
