"""The custom training step: model(x, training=True), loss.value_and_grad, model.backward,
optimizer.apply_gradients; sequence losses and metrics on (B, T, K) outputs."""
import numpy as np
import pytest

import pynn
from pynn import layers


def mlp(out_act="linear", outputs=2, dtype="float64", backend="c"):
    return pynn.Sequential([layers.Input(shape=(4,)), layers.Dense(6, activation="tanh"),
                            layers.Dense(outputs, activation=out_act)], dtype=dtype,
                           backend=backend)


@pytest.mark.parametrize("loss,out_act,opt", [
    ("mse", "linear", "sgd"), ("sparse_categorical_crossentropy", "softmax", "adam"),
    ("binary_crossentropy", "sigmoid", "rmsprop")])
def test_custom_step_equals_fit_step(loss, out_act, opt):
    rng = np.random.default_rng(0)
    x = rng.standard_normal((8, 4))
    y = {"mse": rng.standard_normal((8, 2)), "binary_crossentropy":
         (rng.random((8, 2)) > 0.5).astype(float)}.get(loss, rng.integers(0, 2, 8))
    a, b = mlp(out_act), mlp(out_act)
    b.set_weights(a.get_weights())
    a.compile(opt, loss)
    a.train_on_batch(x, y)
    loss_fn = pynn.losses.get(loss)
    optimizer = pynn.optimizers.get(opt)
    out = b(x, training=True)
    value, dout = loss_fn.value_and_grad(y, out)
    b.backward(dout)
    optimizer.apply_gradients(b)
    # fit fuses softmax/sigmoid into the loss on the logits: same math, other rounding
    for wa, wb in zip(a.get_weights(), b.get_weights()):
        np.testing.assert_allclose(wb, wa, rtol=1e-10, atol=1e-12)
    assert abs(value - a.evaluate(x, y, verbose=0)) < 1.0   # evaluate is after the step
    b.zero_grad()
    assert not b._flat_grads.any()


def test_custom_step_with_regularizers_equals_fit_step():
    # add_regularization() after backward adds what fit adds: the penalties' gradients into
    # the flat buffer (here in a nested model too) and their value to the loss
    def model():
        pynn.utils.set_random_seed(4)
        inner = pynn.Sequential([layers.Input(shape=(4,)), layers.Dense(
            5, activation="tanh", kernel_regularizer=pynn.regularizers.L1(0.03))],
            dtype="float64")
        inp = layers.Input(shape=(4,))
        out = layers.Dense(2, kernel_regularizer=pynn.regularizers.L2(0.2),
                           bias_regularizer=pynn.regularizers.L2(0.1))(inner(inp))
        return pynn.Model(inp, out, dtype="float64")
    rng = np.random.default_rng(2)
    x, y = rng.standard_normal((8, 4)), rng.standard_normal((8, 2))
    a, b = model(), model()
    a.compile("sgd", "mse")
    fit_loss = a.train_on_batch(x, y)
    value, dout = pynn.losses.get("mse").value_and_grad(y, b(x, training=True))
    b.backward(dout)
    g = b._flat_grads.copy()
    penalty = b.add_regularization()
    w, bias = b.layers[-1].params["kernel"], b.layers[-1].params["bias"]
    k1 = b.layers[-2].layers[-1].params["kernel"]
    assert penalty == pytest.approx(0.03 * np.abs(k1).sum() + 0.2 * (w * w).sum()
                                    + 0.1 * (bias * bias).sum(), rel=1e-12)
    assert not np.allclose(b._flat_grads, g)                # the gradients were added to
    assert value + penalty == pytest.approx(fit_loss, rel=1e-12)
    pynn.optimizers.get("sgd").apply_gradients(b)
    for wa, wb in zip(a.get_weights(), b.get_weights()):
        np.testing.assert_allclose(wb, wa, rtol=1e-12, atol=1e-14)
    assert mlp().add_regularization() == 0.0                # no regularizer: nothing added


def test_backward_accumulate_params_false_and_input_gradient():
    m = mlp()
    rng = np.random.default_rng(1)
    x, d = rng.standard_normal((5, 4)), rng.standard_normal((5, 2))
    m(x, training=True)
    dx = m.backward(d)
    g = m._flat_grads.copy()
    w1, w2 = m.layers[0].params["kernel"], m.layers[1].params["kernel"]
    h = np.tanh(x @ w1 + m.layers[0].params["bias"])
    np.testing.assert_allclose(dx, ((d @ w2.T) * (1 - h * h)) @ w1.T, rtol=1e-12)
    m.backward(d, accumulate=True)
    np.testing.assert_allclose(m._flat_grads, 2 * g, rtol=1e-12)
    before = m._flat_grads.copy()
    dx2 = m.backward(3 * d, params=False)                   # input gradient only
    np.testing.assert_array_equal(m._flat_grads, before)
    np.testing.assert_allclose(dx2, 3 * dx, rtol=1e-12)


def test_custom_step_errors():
    m = mlp()
    with pytest.raises(ValueError, match="before backward"):
        m.backward(np.zeros((2, 2)))
    m(np.zeros((3, 4)), training=True)
    with pytest.raises(ValueError, match="shape"):
        m.backward(np.zeros((2, 2)))
    opt = pynn.optimizers.Adam()
    m.backward(np.ones((3, 2)))
    opt.apply_gradients(m)
    other = mlp()
    other(np.zeros((3, 4)), training=True)
    other.backward(np.ones((3, 2)))
    with pytest.raises(ValueError, match="its own optimizer"):
        opt.apply_gradients(other)
    other.compile(opt, "mse")
    with pytest.raises(ValueError, match="its own optimizer"):
        other.train_on_batch(np.zeros((3, 4)), np.zeros((3, 2)))
    with pytest.raises(TypeError, match="built pynn model"):
        pynn.optimizers.SGD().apply_gradients([np.zeros(3)])
    # the state follows one arrangement of the weights: after a layer is swapped for one of
    # the same size, the moments would be read against other weights
    seq = pynn.Sequential([layers.Dense(3, input_shape=(4,)), layers.Dense(2)])
    seq.build((None, 4))
    sopt = pynn.optimizers.Adam()
    seq(np.zeros((3, 4)), training=True)
    seq.backward(np.ones((3, 2)))
    sopt.apply_gradients(seq)
    seq.pop()
    seq.add(layers.Dense(2))
    seq.build((None, 4))
    seq(np.zeros((3, 4)), training=True)
    seq.backward(np.ones((3, 2)))
    with pytest.raises(ValueError, match="Compile again"):
        sopt.apply_gradients(seq)


LOSSES = [pynn.losses.MeanSquaredError(), pynn.losses.MeanAbsoluteError(),
          pynn.losses.BinaryCrossentropy(), pynn.losses.BinaryCrossentropy(from_logits=True),
          pynn.losses.CategoricalCrossentropy(),
          pynn.losses.CategoricalCrossentropy(from_logits=True),
          pynn.losses.SparseCategoricalCrossentropy(),
          pynn.losses.SparseCategoricalCrossentropy(from_logits=True)]


def _targets_preds(loss, shape, rng):
    z = rng.standard_normal(shape)
    k = shape[-1]
    if loss.kind == "sparse":
        y = rng.integers(0, k, shape[:-1])
    elif loss.kind == "categorical":
        y = np.eye(k)[rng.integers(0, k, shape[:-1])]
    elif loss.kind == "binary":
        y = (rng.random(shape) > 0.5).astype(float)
    else:
        y = rng.standard_normal(shape)
    if not loss.from_logits and loss.kind == "binary":
        z = 1 / (1 + np.exp(-z))
    elif not loss.from_logits and loss.kind in ("sparse", "categorical"):
        z = np.exp(z) / np.exp(z).sum(-1, keepdims=True)
    return y, z


@pytest.mark.parametrize("loss", LOSSES, ids=lambda l: f"{type(l).__name__}-{l.from_logits}")
@pytest.mark.parametrize("shape", [(5, 3), (4, 7, 3)])
def test_value_and_grad_every_loss_vs_central_differences(loss, shape):
    rng = np.random.default_rng(2)
    y, z = _targets_preds(loss, shape, rng)
    v, g = loss.value_and_grad(y, z)
    assert isinstance(v, float) and g.shape == z.shape and g.dtype == np.float64
    assert v == pytest.approx(loss(y, z), rel=1e-12)
    if loss.kind == "regression" and type(loss).__name__ == "MeanAbsoluteError":
        z = z + 0.0                                          # |.| is smooth away from 0
    num = np.empty_like(z)
    for i in range(z.size):
        zp, zm = z.copy(), z.copy()
        zp.flat[i] += 1e-6
        zm.flat[i] -= 1e-6
        num.flat[i] = (loss.value_and_grad(y, zp)[0] - loss.value_and_grad(y, zm)[0]) / 2e-6
    np.testing.assert_allclose(g, num, rtol=1e-5, atol=1e-8)


@pytest.mark.parametrize("backend", ["c", "reference"])
@pytest.mark.parametrize("loss", LOSSES, ids=lambda l: f"{type(l).__name__}-{l.from_logits}")
def test_sequence_loss_equals_flat_loss(loss, backend):
    rng = np.random.default_rng(3)
    B, T, K = 3, 5, 4
    y, z = _targets_preds(loss, (B, T, K), rng)
    ops = pynn.ops.get_backend(backend)
    v, g = loss.value_and_grad(y, z, ops=ops)
    flat_y = y.reshape(B * T) if loss.kind == "sparse" else y.reshape(B * T, K)
    fv, fg = loss.value_and_grad(flat_y, z.reshape(B * T, K), ops=ops)
    assert v == pytest.approx(fv, rel=1e-12)
    np.testing.assert_allclose(g.reshape(B * T, K), fg, rtol=1e-12, atol=1e-15)
    # a per-sample weight applies to every position of that sample
    sw = np.array([1.0, 0.0, 2.0])
    vw = loss.forward(ops, z, loss.prepare_targets(y, (T, K), np.float64), sw)
    vf = loss.forward(ops, z.reshape(B * T, K), loss.prepare_targets(flat_y, (K,), np.float64),
                      np.repeat(sw, T))
    assert vw == pytest.approx(vf, rel=1e-12)


def test_sequence_model_fit_and_accuracy():
    rng = np.random.default_rng(4)
    x = rng.standard_normal((32, 6, 3))                     # (B, T, C)
    y = (x[..., 0] > 0).astype(int) + (x[..., 1] > 0)       # (B, T) labels in 0..2
    m = pynn.Sequential([layers.Input(shape=(6, 3)), layers.Dense(16, activation="relu"),
                         layers.Dense(3, activation="softmax")], dtype="float64")
    m.compile(pynn.optimizers.Adam(0.05), "sparse_categorical_crossentropy",
              metrics=["accuracy"])
    h = m.fit(x, y, epochs=40, batch_size=16, verbose=0)
    assert h.history["loss"][-1] < 0.5 * h.history["loss"][0]
    loss, acc = m.evaluate(x, y, verbose=0)
    p = m.predict(x, verbose=0)                              # (B, T, K)
    flat = pynn.losses.SparseCategoricalCrossentropy()(y.reshape(-1), p.reshape(-1, 3))
    assert loss == pytest.approx(flat, rel=1e-5)        # fused logits vs clipped probs
    assert acc == pytest.approx(np.mean(p.argmax(-1) == y), abs=1e-12)
    with pytest.raises(ValueError, match=r"labels of shape \(n, 6\)"):
        m.evaluate(x, y[:, :5], verbose=0)
    with pytest.raises(ValueError, match="in \\[0, 3\\)|range"):
        m.evaluate(x, y + 3, verbose=0)


def test_sequence_regression():
    rng = np.random.default_rng(5)
    x, y = rng.standard_normal((8, 5, 3)), rng.standard_normal((8, 5, 2))
    m = pynn.Sequential([layers.Input(shape=(5, 3)), layers.Dense(2)], dtype="float64")
    m.compile("sgd", "mse", metrics=["mae"])
    loss, mae = m.evaluate(x, y, verbose=0)
    p = m.predict(x, verbose=0)
    assert loss == pytest.approx(np.mean((p - y) ** 2), rel=1e-12)
    assert mae == pytest.approx(np.mean(np.abs(p - y)), rel=1e-12)


def test_backward_after_another_forward_of_its_layers_raises():
    # predict/evaluate, or a call of a model sharing the layers, between model(x) and
    # backward overwrote the layers' caches: the gradients came out wrong with no error
    m = mlp()
    m.compile("sgd", "mse")
    rng = np.random.default_rng(3)
    x, d = rng.standard_normal((5, 4)), rng.standard_normal((5, 2))
    m(x, training=True)
    m.predict(rng.standard_normal((5, 4)), verbose=0)
    with pytest.raises(RuntimeError, match="ran again"):
        m.backward(d)
    m(x, training=True)
    m.evaluate(x, d, verbose=0)
    with pytest.raises(RuntimeError, match="ran again"):
        m.backward(d)
    m(x, training=True)
    g = m.backward(d)                                       # right after model(x): fine
    assert g.shape == x.shape
    D = mlp(outputs=1)
    z = pynn.Input(shape=(4,), dtype="float64")
    G = pynn.Sequential([layers.Input(shape=(4,)), layers.Dense(4)], dtype="float64")
    gan = pynn.Model(z, D(G(z)))
    gan(x, training=True)
    D(x, training=True)                                     # D's layers ran on other data
    with pytest.raises(RuntimeError, match="ran again"):
        gan.backward(np.ones((5, 1)))
    gan(x, training=True)
    assert gan.backward(np.ones((5, 1))).shape == x.shape


def test_layers_inside_wrappers_are_checked_too():
    # a Dense run by TimeDistributed in one model and directly in another: the second model's
    # call overwrote its cache and A.backward went on with it
    d = layers.Dense(2)
    A = pynn.Sequential([layers.Input(shape=(3, 4)), layers.TimeDistributed(d)])
    B = pynn.Sequential([layers.Input(shape=(4,)), d])
    rng = np.random.default_rng(5)
    A(rng.standard_normal((2, 3, 4)), training=True)
    B(rng.standard_normal((15, 4)))
    with pytest.raises(RuntimeError, match="ran again"):
        A.backward(np.ones((2, 3, 2)))


def test_training_passed_positionally_is_refused():
    lstm = layers.LSTM(3)
    with pytest.raises(TypeError, match="training as a keyword"):
        lstm(np.ones((2, 4, 5)), True)


def test_a_layer_that_refers_to_another_is_not_a_wrapper():
    # a custom layer keeping a reference to another (weight tying) used beside it in a graph
    class Tied(layers.Layer):
        def __init__(self, src, **kw):
            super().__init__(**kw)
            self.src = src

        def forward(self, x, training=False):
            return x

        def backward(self, dy):
            return dy
    x = pynn.Input(shape=(3,))
    dense = layers.Dense(3)
    m = pynn.Model(x, Tied(dense)(dense(x)))
    assert m.predict(np.ones((2, 3)), verbose=0).shape == (2, 3)


@pytest.mark.parametrize("make, shape", [
    (lambda: pynn.layers.TransformerBlock(2), (5, 8)),
    (lambda: pynn.layers.Bidirectional(pynn.layers.LSTM(3)), (5, 8)),
    (lambda: pynn.layers.TimeDistributed(pynn.layers.Dense(3)), (5, 8)),
    (lambda: pynn.layers.TimeDistributed(pynn.layers.Bidirectional(pynn.layers.GRU(2))),
     (5, 3, 8)),
    (lambda: pynn.layers.MultiHeadAttention(2, 3), (5, 8))],
    ids=["transformer", "bidirectional", "timedistributed", "td-bidirectional", "mha"])
def test_backward_accumulate_and_params_false_through_wrappers(make, shape):
    """Wrapper layers (their sublayers hold the gradient arrays the forward synced) honour
    backward(accumulate=True) and backward(params=False): they overwrote the model's
    gradients with the new ones in both cases (a GAN's D took G's gradients)"""
    x = np.random.default_rng(0).standard_normal((4,) + shape).astype(np.float32)
    m = pynn.Sequential([pynn.Input(shape=shape), make()])
    m.compile("sgd", "mse")
    d = np.ones_like(m(x, training=True))
    m.zero_grad()
    m.backward(d)
    g = m._flat_grads.copy()
    assert np.abs(g).max() > 0
    m.backward(d, accumulate=True)
    np.testing.assert_allclose(m._flat_grads, 2 * g, rtol=1e-5, atol=1e-6)
    m._flat_grads[...] = 7
    m.backward(d, params=False)
    assert (m._flat_grads == 7).all()
    m.backward(d)                                            # and plain backward still writes
    np.testing.assert_array_equal(m._flat_grads, g)
