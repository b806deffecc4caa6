"""The functional API: pynn.Input, layer calls on symbolic tensors, pynn.Model(inputs,
outputs). Graph vs Sequential equivalence, hand-computed two-branch results, float64 central
differences through fan-out / a shared layer / merges, nested models, save/load, bad graphs."""
import copy

import numpy as np
import pytest

import pynn
from pynn import layers
from helpers import numerical_grad as numeric_grad

BACKENDS = ["c", "reference"]


@pytest.mark.parametrize("backend", BACKENDS)
def test_graph_equals_sequential(backend):
    rng = np.random.default_rng(0)
    x, y = rng.standard_normal((12, 5)), rng.integers(0, 3, 12)
    seq = pynn.Sequential([layers.Input(shape=(5,)), layers.Dense(7, activation="relu"),
                           layers.Dense(3, activation="softmax")], backend=backend,
                          dtype="float64")
    inp = pynn.Input(shape=(5,), dtype="float64")
    out = layers.Dense(3, activation="softmax")(layers.Dense(7, activation="relu")(inp))
    graph = pynn.Model(inputs=inp, outputs=out, backend=backend)
    assert isinstance(graph, pynn.model.Functional) and graph.dtype == np.float64
    graph.set_weights(seq.get_weights())
    np.testing.assert_array_equal(graph.predict(x, verbose=0), seq.predict(x, verbose=0))
    for m in (seq, graph):
        m.compile("sgd", "sparse_categorical_crossentropy")
    assert graph._fused and seq._fused            # the softmax output fuses into the loss
    yt = seq._targets(y)
    _, ls = seq._forward_backward(x, yt, None)
    _, lg = graph._forward_backward(x, yt, None)
    assert ls == lg
    np.testing.assert_array_equal(seq._flat_grads, graph._flat_grads)
    assert graph.evaluate(x, y, verbose=0) == seq.evaluate(x, y, verbose=0)
    seq.fit(x, y, epochs=2, batch_size=4, shuffle=False, verbose=0)
    graph.fit(x, y, epochs=2, batch_size=4, shuffle=False, verbose=0)
    np.testing.assert_array_equal(graph._flat_params, seq._flat_params)


def test_two_branch_residual_vs_numpy():
    inp = pynn.Input(shape=(3,), dtype="float64")
    d1 = layers.Dense(4, activation="relu", name="d1")
    d2 = layers.Dense(4, name="d2")
    h = d1(inp)
    r = layers.Add()([h, d2(h)])                            # residual
    c = layers.Concatenate()([r, layers.Multiply()([h, r])])
    m = pynn.Model(inp, layers.Subtract()([c, layers.Concatenate()([h, h])]))
    assert m.output_shape == (None, 8)
    rng = np.random.default_rng(1)
    m.set_weights([rng.standard_normal(w.shape) for w in m.get_weights()])
    x = rng.standard_normal((5, 3))
    w1, b1, w2, b2 = m.get_weights()
    hn = np.maximum(x @ w1 + b1, 0)
    rn = hn + (hn @ w2 + b2)
    want = np.concatenate([rn, hn * rn], 1) - np.concatenate([hn, hn], 1)
    np.testing.assert_allclose(m.predict(x, verbose=0), want, rtol=1e-12, atol=1e-12)


def _fanout_model(backend):
    inp = pynn.Input(shape=(3,), dtype="float64")
    shared = layers.Dense(4, activation="tanh", name="shared")
    a = shared(inp)                                         # the shared layer, call 1
    b = shared(layers.Dense(3, activation="tanh", name="pre")(inp))   # call 2
    c = layers.Concatenate()([a, b])
    s = layers.Add()([layers.Multiply()([a, b]), a])        # `a` fans out three ways
    out = layers.Dense(2, name="head")(layers.Concatenate()([c, s]))
    return pynn.Model(inp, out, backend=backend)


@pytest.mark.parametrize("backend", BACKENDS)
def test_gradients_fanout_shared_merges_vs_central_differences(backend):
    m = _fanout_model(backend)
    assert len(m.get_weights()) == 6                        # the shared layer counts once
    assert m.get_layer("shared") is m.get_layer(index=1)
    with pytest.raises(ValueError, match="no layer named"):
        m.get_layer("nope")
    m.compile("sgd", "mse")
    rng = np.random.default_rng(2)
    x, y = rng.standard_normal((6, 3)), rng.standard_normal((6, 2))
    yt = m._targets(y)
    m._forward_backward(x, yt, None)
    g = m._flat_grads.copy()
    num = numeric_grad(lambda: m._forward_backward(x, yt, None)[1], m._flat_params)
    np.testing.assert_allclose(g, num, rtol=1e-6, atol=1e-8)
    # the input gradient through the custom step, against central differences
    loss_fn = pynn.losses.MeanSquaredError()
    out = m(x, training=True)
    _, dout = loss_fn.value_and_grad(y, out, ops=m.ops)
    dx = m.backward(dout)
    np.testing.assert_allclose(m._flat_grads, g, rtol=1e-12, atol=1e-14)
    xx = x.copy()
    num_x = numeric_grad(lambda: loss_fn.value_and_grad(y, m(xx), ops=m.ops)[0], xx)
    np.testing.assert_allclose(dx, num_x, rtol=1e-6, atol=1e-8)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("states_first", [False, True])
def test_rnn_called_with_and_without_initial_states_vs_central_differences(backend,
                                                                           states_first):
    # one LSTM, called once on a sequence alone and once with initial states (Keras'
    # seq2seq sharing), in either order: the second call used to fail comparing shapes
    a, b = pynn.Input(shape=(4, 3), dtype="float64"), pynn.Input(shape=(4, 3), dtype="float64")
    lstm = layers.LSTM(3, return_state=True, name="shared")
    if states_first:
        _, h0, c0 = layers.LSTM(3, return_state=True)(b)
        y2, _, _ = lstm([b, h0, c0])
        y1, _, _ = lstm(a)
    else:
        y1, h1, c1 = lstm(a)
        y2, _, _ = lstm([b, h1, c1])
    m = pynn.Model([a, b], layers.Dense(2)(layers.Concatenate()([y1, y2])), backend=backend)
    m.compile("sgd", "mse")
    rng = np.random.default_rng(4)
    x = [rng.standard_normal((3, 4, 3)), rng.standard_normal((3, 4, 3))]
    yt = m._targets(rng.standard_normal((3, 2)))
    m._forward_backward(x, yt, None)
    g = m._flat_grads.copy()
    num = numeric_grad(lambda: m._forward_backward(x, yt, None)[1], m._flat_params)
    np.testing.assert_allclose(g, num, rtol=1e-6, atol=1e-8)
    with pytest.raises(ValueError, match="built for input shape"):
        lstm([pynn.Input(shape=(4, 5), dtype="float64"), y1, y1])


def test_multi_input_fit_and_predict():
    a, b = pynn.Input(shape=(3,)), pynn.Input(shape=(2,))
    h = layers.Concatenate()([layers.Dense(4)(a), layers.Dense(4)(b)])
    m = pynn.keras.Model(inputs=[a, b], outputs=layers.Dense(1)(h))
    assert m.input_shape == [(None, 3), (None, 2)]
    m.compile("adam", "mse")
    rng = np.random.default_rng(3)
    xa, xb = rng.standard_normal((40, 3)), rng.standard_normal((40, 2))
    y = xa.sum(1, keepdims=True) - xb[:, :1]
    h = m.fit([xa, xb], y, epochs=30, batch_size=8, verbose=0, validation_split=0.25)
    assert h.history["loss"][-1] < h.history["loss"][0]
    assert m.predict([xa, xb], verbose=0).shape == (40, 1)
    with pytest.raises(ValueError, match="has 2 inputs"):
        m.predict(xa, verbose=0)
    with pytest.raises(ValueError, match="different numbers of samples"):
        m.predict([xa, xb[:5]], verbose=0)


def test_multi_output_custom_step_and_compile_error():
    inp = pynn.Input(shape=(4,), dtype="float64")
    h = layers.Dense(3)(inp)
    m = pynn.Model(inp, [layers.Dense(2)(h), layers.Dense(1)(h)])
    with pytest.raises(ValueError, match="2 outputs"):
        m.compile("adam", "mse")
    assert not m.compiled and m.get_compile_config() is None   # refused: nothing set
    with pytest.raises(ValueError, match="compile"):
        m.fit(np.zeros((2, 4)), np.zeros((2, 2)), verbose=0)
    x = np.random.default_rng(4).standard_normal((5, 4))
    o1, o2 = m(x, training=True)
    dx = m.backward([np.ones_like(o1), None])               # None: no gradient from o2
    w1 = m.layers[1].params["kernel"]                       # (4, 3), then head 1 (3, 2)
    np.testing.assert_allclose(dx, np.ones((5, 2)) @ m.layers[2].params["kernel"].T @ w1.T)
    with pytest.raises(ValueError, match="2 output"):
        m.backward(np.ones_like(o1))


def test_nested_models_share_buffers_gan_style():
    g = pynn.Sequential([layers.Input(shape=(2,)), layers.Dense(3, activation="tanh")],
                        dtype="float64")
    d = pynn.Sequential([layers.Input(shape=(3,)), layers.Dense(1)], dtype="float64")
    z = pynn.Input(shape=(2,), dtype="float64")
    combined = pynn.Model(z, d(g(z)))
    assert combined.count_params() == g.count_params() + d.count_params()
    assert np.shares_memory(g._flat_params, combined._flat_params)
    assert np.shares_memory(d._flat_params, combined._flat_params)
    lines = []
    combined.summary(print_fn=lines.append)
    assert f"<- {g.name}" in lines[0] and "Total params: 13" in lines[0]
    x = np.random.default_rng(5).standard_normal((4, 2))
    np.testing.assert_array_equal(combined.predict(x, verbose=0),
                                  d.predict(g.predict(x, verbose=0), verbose=0))
    d.compile("sgd", "mse")
    d.fit(np.ones((4, 3)), np.zeros((4, 1)), verbose=0)      # d still trains on its own
    np.testing.assert_array_equal(combined.predict(x, verbose=0),
                                  d.predict(g.predict(x, verbose=0), verbose=0))
    d.trainable = False                                     # Keras' combined model
    combined.compile("sgd", "mse")
    before = d.get_weights()
    combined.fit(x, np.ones((4, 1)), verbose=0)
    for w, v in zip(before, d.get_weights()):
        np.testing.assert_array_equal(w, v)
    assert combined._trainable_runs() == [(0, g._flat_params.size)]


def test_save_load_graph_model(tmp_path):
    m = _fanout_model("c")
    g = pynn.Sequential([layers.Input(shape=(2,)), layers.Dense(3)], dtype="float64")
    inp = pynn.Input(shape=(3,), dtype="float64")
    full = pynn.Model(inp, g(m(inp)), name="outer")
    full.compile("adam", "mse")
    rng = np.random.default_rng(6)
    x = rng.standard_normal((7, 3))
    full.fit(x, rng.standard_normal((7, 3)), verbose=0, epochs=2)
    path = tmp_path / "graph.pynn"
    full.save(path)
    back = pynn.models.load_model(path)
    assert isinstance(back, pynn.model.Functional)
    np.testing.assert_array_equal(back.predict(x, verbose=0), full.predict(x, verbose=0))
    np.testing.assert_array_equal(back.optimizer.get_state()["m"],
                                  full.optimizer.get_state()["m"])
    assert back.get_config() == full.get_config()
    # several inputs, weights only
    a, b = pynn.Input(shape=(2,)), pynn.Input(shape=(3,))
    two = pynn.Model([a, b], layers.Concatenate()([layers.Dense(2)(a), b]))
    two.save_weights(tmp_path / "w.pynn")
    a2, b2 = pynn.Input(shape=(2,)), pynn.Input(shape=(3,))
    other = pynn.Model([a2, b2], layers.Concatenate()([layers.Dense(2)(a2), b2]))
    other.load_weights(tmp_path / "w.pynn")
    xs = [rng.standard_normal((4, 2)), rng.standard_normal((4, 3))]
    np.testing.assert_array_equal(other.predict(xs, verbose=0), two.predict(xs, verbose=0))


def test_multi_output_layer_in_sequential_is_refused():
    class Split(layers.Layer):
        def compute_output_shape(self, input_shape):
            return [tuple(input_shape), tuple(input_shape)]

        def forward(self, x, training=False):
            return [x, -x]

        def backward(self, dys):
            return dys[0] - dys[1]
    with pytest.raises(ValueError, match="returns 2 outputs"):
        pynn.Sequential([layers.Input(shape=(3,)), Split()])
    inp = pynn.Input(shape=(3,), dtype="float64")
    p, q = Split()(inp)
    m = pynn.Model(inp, layers.Add()([p, layers.Dense(3)(q)]))
    x = np.ones((2, 3))
    m(x, training=True)
    dx = m.backward(np.ones((2, 3)))
    w = m.layers[2].params["kernel"]
    np.testing.assert_allclose(dx, np.ones((2, 3)) - np.ones((2, 3)) @ w.T)


def test_call_keyword_arguments_and_constants():
    class Scale(layers.Layer):
        def forward(self, x, training=False, factor=1.0, offset=None):
            self._f = factor
            out = x * factor
            return out if offset is None else out + offset

        def backward(self, dy):
            return dy * self._f

        def get_config(self):
            return super().get_config()
    inp, off = pynn.Input(shape=(2,)), pynn.Input(shape=(2,))
    y = Scale()(inp, factor=3.0, offset=off)
    m = pynn.Model([inp, off], y)
    node = y.node
    assert node.const_kwargs == {"factor": 3.0} and "offset" in node.tensor_kwargs
    out = m.predict([np.ones((2, 2)), np.full((2, 2), 0.5)], verbose=0)
    np.testing.assert_array_equal(out, np.full((2, 2), 3.5))


def test_bad_graphs():
    a, b = pynn.Input(shape=(3,)), pynn.Input(shape=(3,))
    y = layers.Add()([a, b])
    with pytest.raises(ValueError, match="graph disconnected.*not in the model's inputs"):
        pynn.Model(a, y)
    with pytest.raises(ValueError, match="not connected to any output"):
        pynn.Model([a, b, pynn.Input(shape=(1,))], y)
    with pytest.raises(TypeError, match="symbolic tensors"):
        pynn.Model(a, np.zeros(3))
    with pytest.raises(ValueError, match="same shape"):
        layers.Add()([a, pynn.Input(shape=(4,))])
    d = layers.Dense(2)
    d(a)
    with pytest.raises(ValueError, match="built for input shape"):
        d(pynn.Input(shape=(5,)))
    with pytest.raises(ValueError, match="must come from pynn.Input"):
        pynn.Model(layers.Dense(2)(a), y)
    with pytest.raises(TypeError, match="mix of symbolic tensors"):
        layers.Add()([a, np.zeros((1, 3))])
    with pytest.raises(ValueError, match="expects inputs of shape"):
        pynn.Model(a, layers.Dense(1)(a)).predict(np.zeros((2, 4)), verbose=0)
    with pytest.raises(TypeError, match="symbolic"):
        np.asarray(a)


def test_input_still_declares_a_sequential():
    m = pynn.Sequential([pynn.Input(shape=(3,)), layers.Dense(2)])
    assert m.built and m.input_shape == (None, 3)
    with pytest.raises(TypeError, match="symbolic output"):
        pynn.Sequential([layers.Dense(2)(pynn.Input(shape=(3,)))])


def test_layers_that_wrap_layers_run_once_per_graph():
    # a second call would overwrite the inner layers' caches before backward (the gradients
    # came out wrong: half of a shared TimeDistributed's was lost); refused when built
    a, b = pynn.Input(shape=(4, 3)), pynn.Input(shape=(4, 3))
    td = layers.TimeDistributed(layers.Dense(3))
    with pytest.raises(ValueError, match="called 2 times"):
        pynn.Model([a, b], layers.Add()([td(a), td(b)]))
    d = layers.Dense(3)
    with pytest.raises(ValueError, match="runs inside"):
        pynn.Model([a, b], layers.Add()([layers.TimeDistributed(d)(a),
                                         layers.TimeDistributed(d)(b)]))
    blk = layers.TransformerBlock(2, ff_dim=8)
    with pytest.raises(ValueError, match="called 2 times"):
        pynn.Model(a, blk(blk(layers.Dense(4)(a))))
    m = pynn.Model([a, b], layers.Add()([layers.TimeDistributed(layers.Dense(3))(a),
                                         layers.TimeDistributed(layers.Dense(3))(b)]))
    assert m.predict([np.ones((2, 4, 3))] * 2, verbose=0).shape == (2, 4, 3)


def test_shared_dropout_counts_every_call():
    # the graph swaps a shared layer's per-call state, but not its mask counter: two calls a
    # step draw masks 0, 1, then 2, 3 (it went back to 1 after each backward)
    x = pynn.Input(shape=(4,))
    drop = layers.Dropout(0.5, seed=1)
    m = pynn.Model(x, layers.Dense(2)(drop(layers.Dense(4)(drop(layers.Dense(4)(x))))))
    m.compile("sgd", "mse")
    data = np.ones((3, 4), np.float32), np.zeros((3, 2), np.float32)
    for steps in (2, 4, 6):
        m.train_on_batch(*data)
        assert drop.get_config()["step"] == steps


def test_recurrent_and_attention_layers_in_a_graph():
    # SimpleRNN/LSTM/GRU and MultiHeadAttention record graph nodes on symbolic inputs (their
    # own __call__ took the symbolic tensor for data); mha(query, value) is cross-attention
    inp = pynn.Input(shape=(5, 3))
    h = layers.LSTM(4, return_sequences=True)(inp)
    h = layers.SimpleRNN(4, return_sequences=True)(h)
    mem = pynn.Input(shape=(7, 4))
    a = layers.MultiHeadAttention(2, 2)(h, mem)
    m = pynn.Model([inp, mem], layers.GRU(2)(a))
    assert m.predict([np.ones((2, 5, 3)), np.ones((2, 7, 4))], verbose=0).shape == (2, 2)
    mha = layers.MultiHeadAttention(2, 4)
    rng = np.random.default_rng(0)
    q, v = rng.standard_normal((2, 3, 6)), rng.standard_normal((2, 5, 6))
    cross = mha(q, v).copy()
    np.testing.assert_array_equal(cross, mha([q, v]))
    assert not np.allclose(cross, mha(q))


def test_compare_a_model_with_several_inputs():
    # pynn.compare read x.shape[0] of the list of inputs
    a, b = pynn.Input(shape=(3,)), pynn.Input(shape=(3,))
    m = pynn.Model([a, b], layers.Dense(2, activation="tanh")(layers.Add()([a, b])))
    m.compile("sgd", "mse")
    rng = np.random.default_rng(1)
    r = pynn.compare(m, [rng.standard_normal((4, 3)), rng.standard_normal((4, 3))],
                     rng.standard_normal((4, 2)))
    assert "loss" in r.diffs and r.max() < 1e-5


def test_float64_graph_runs_wrapped_layers_in_float64():
    """The layers a wrapper runs inside (Bidirectional, TimeDistributed, TransformerBlock) are
    built when the graph is made, before the model's dtype is known; they computed in float32
    and the first call failed with a dtype error."""
    rng = np.random.default_rng(0)
    x = pynn.Input((5, 8))
    h = layers.Bidirectional(layers.GRU(4, return_sequences=True))(x)
    h = layers.TransformerBlock(2)(h)
    y = layers.TimeDistributed(layers.Dense(1))(h)
    model = pynn.Model(x, y, dtype="float64")
    xs = rng.standard_normal((6, 5, 8))
    out = model(xs)
    assert out.dtype == np.float64 and out.shape == (6, 5, 1)
    model.compile(optimizer="sgd", loss="mse")
    loss = model.train_on_batch(xs, rng.standard_normal((6, 5, 1)))
    assert np.isfinite(loss)


def test_models_sharing_layers_train_the_same_weights():
    """Keras' autoencoder pattern: an encoder Model built over the autoencoder's first layer
    after the autoencoder. Building it pointed the shared layer at the encoder's buffer, and
    the autoencoder's fit then updated a copy its forward never read."""
    rng = np.random.default_rng(0)
    x = rng.standard_normal((32, 4))
    inp = pynn.Input((4,))
    enc_layer, dec_layer = layers.Dense(2), layers.Dense(4)
    code = enc_layer(inp)
    ae = pynn.Model(inp, dec_layer(code))
    ae.compile("adam", "mse")
    ae.fit(x, x, epochs=1, verbose=0)
    encoder = pynn.Model(inp, code)
    before = encoder.predict(x, verbose=0)
    first = ae.evaluate(x, x, verbose=0)
    ae.fit(x, x, epochs=20, verbose=0)
    assert ae.evaluate(x, x, verbose=0) < first
    after = encoder.predict(x, verbose=0)
    assert not np.allclose(before, after)           # the encoder sees the trained layer
    np.testing.assert_allclose(after, x @ enc_layer.params["kernel"]
                               + enc_layer.params["bias"], rtol=1e-5, atol=1e-6)
    # the encoder trains the shared layer too, and the autoencoder goes on from there
    encoder.compile("sgd", "mse")
    w = enc_layer.get_weights()[0].copy()
    encoder.fit(x, x[:, :2], epochs=1, verbose=0)
    w2 = enc_layer.get_weights()[0].copy()
    assert not np.array_equal(w, w2)
    np.testing.assert_array_equal(ae.layers[1].get_weights()[0], w2)
    ae.train_on_batch(x, x)
    assert not np.array_equal(enc_layer.get_weights()[0], w2)
    # a custom step on the encoder after the autoencoder ran
    out = encoder(x, training=True)
    encoder.backward(np.ones_like(out))
    w3 = enc_layer.get_weights()[0].copy()
    pynn.optimizers.SGD(0.1).apply_gradients(encoder)
    assert not np.array_equal(enc_layer.get_weights()[0], w3)


def test_shared_layers_custom_step_and_pop():
    """Two models sharing a layer: both backwards, then both optimizer steps (the first step
    was lost when the second model's forward had taken the layer); and a Sequential's pop
    moving a shared layer off its buffer is noticed by the other model."""
    rng = np.random.default_rng(1)
    x = rng.standard_normal((8, 4))
    inp = pynn.Input((4,))
    l1, l2 = layers.Dense(3), layers.Dense(4)
    code = l1(inp)
    ae, enc = pynn.Model(inp, l2(code)), pynn.Model(inp, code)
    w0 = l1.get_weights()[0].copy()
    out = ae(x, training=True)
    ae.backward(np.ones_like(out))
    o2 = enc(x, training=True)
    enc.backward(np.zeros_like(o2))
    pynn.optimizers.SGD(0.1).apply_gradients(ae)
    pynn.optimizers.SGD(0.1).apply_gradients(enc)   # zero gradient: no change of its own
    assert not np.allclose(l1.get_weights()[0], w0)
    w1 = l1.get_weights()[0].copy()
    ae(x)
    np.testing.assert_array_equal(l1.get_weights()[0], w1)   # kept, not copied over

    s1 = layers.Dense(3)
    a = pynn.Sequential([s1, layers.Dense(2)])
    a.build((None, 4))
    a.compile("sgd", "mse")
    b = pynn.Sequential([s1, layers.Dense(2)])
    b.build((None, 4))
    y = rng.standard_normal((8, 2))
    a.train_on_batch(x, y)
    b.pop()
    w = s1.get_weights()[0].copy()
    a.train_on_batch(x, y)
    assert not np.array_equal(s1.get_weights()[0], w)
    np.testing.assert_array_equal(a._flat_params[:12], s1.params["kernel"].ravel())


def test_training_flag_on_a_symbolic_call_fixes_the_mode(tmp_path):
    # Keras: layer(x, training=True) in a graph is Monte-Carlo dropout (active in predict);
    # base(x, training=False) keeps a fine-tuned base in inference mode during fit. Both
    # were dropped (the node recorded no mode)
    inp = pynn.Input(shape=(64,))
    mc = pynn.Model(inp, layers.Dropout(0.5, seed=1)(inp, training=True))
    x = np.ones((4, 64), np.float32)
    a, b = mc.predict(x, verbose=0), mc.predict(x, verbose=0)
    assert (a == 0).any() and not np.array_equal(a, b)           # a new mask per call
    mc.save(tmp_path / "mc.pynn")
    again = pynn.models.load_model(tmp_path / "mc.pynn")
    assert (again.predict(x, verbose=0) == 0).any()

    pynn.utils.set_random_seed(0)
    base = pynn.Sequential([layers.Input(shape=(3,)), layers.Dense(4),
                            layers.BatchNormalization(), layers.Dropout(0.5)], dtype="float64")
    inp = pynn.Input(shape=(3,), dtype="float64")
    m = pynn.Model(inp, layers.Dense(1)(base(inp, training=False)))
    m.compile("sgd", "mse")
    bn = base.layers[1]
    rng = np.random.default_rng(0)
    x, y = rng.standard_normal((8, 3)) + 5, rng.standard_normal((8, 1))
    # the training step's gradient is that of the inference-mode function (no dropout,
    # moving statistics): against central differences, over the trainable weights
    yt = m._targets(y)
    m._forward_backward(x, yt, None)
    g = m._flat_grads.copy()
    num = numeric_grad(lambda: m._forward_backward(x, yt, None)[1], m._flat_params)
    for a, b in m._trainable_runs():
        np.testing.assert_allclose(g[a:b], num[a:b], rtol=1e-6, atol=1e-8)
    np.testing.assert_allclose(m.predict(x, verbose=0), m(x, training=True), rtol=1e-12)
    stats = [bn.params[k].copy() for k in ("moving_mean", "moving_variance")]
    m.fit(x, y, epochs=2, batch_size=4, verbose=0)
    for s, k in zip(stats, ("moving_mean", "moving_variance")):
        np.testing.assert_array_equal(bn.params[k], s)             # inference mode in fit
    m.save(tmp_path / "ft.pynn")                                    # the mode is kept
    again = pynn.models.load_model(tmp_path / "ft.pynn")
    (b2,) = [la for la in again.layers if isinstance(la, pynn.Model)]
    stats = [b2.layers[1].params[k].copy() for k in ("moving_mean", "moving_variance")]
    again.fit(x, y, epochs=1, batch_size=4, verbose=0)
    for s, k in zip(stats, ("moving_mean", "moving_variance")):
        np.testing.assert_array_equal(b2.layers[1].params[k], s)


def test_deepcopy_of_a_graph_with_a_shared_layer():
    # the copy must know its own layer is shared (the set held the original's ids): its
    # forward was off and its gradients 0
    rng = np.random.default_rng(6)
    x, y = rng.standard_normal((6, 3)), rng.standard_normal((6, 3))
    inp = pynn.Input(shape=(3,), dtype="float64")
    enc = layers.Dense(3, activation="tanh")
    m = pynn.Model(inp, layers.Subtract()([enc(inp), enc(enc(inp))]))
    m.compile("sgd", "mse")
    twin = copy.deepcopy(m)
    np.testing.assert_array_equal(twin.predict(x, verbose=0), m.predict(x, verbose=0))
    for model in (m, twin):
        model.fit(x, y, epochs=2, batch_size=3, verbose=0, shuffle=False)
    for a, b in zip(m.get_weights(), twin.get_weights()):
        np.testing.assert_array_equal(a, b)
    assert not np.shares_memory(m._flat_params, twin._flat_params)


def test_backward_of_several_outputs_none_and_repeated():
    # an output given no gradient: the layers only it reaches get 0 (they kept the previous
    # backward's, and an optimizer step applied them); one tensor listed twice: both add
    rng = np.random.default_rng(7)
    x = rng.standard_normal((4, 3))
    a = pynn.Input(shape=(3,), dtype="float64")
    h = layers.Dense(4)(a)
    head1, head2 = layers.Dense(2), layers.Dense(1)
    mo = pynn.Model(a, [head1(h), head2(h)])
    o = mo(x, training=True)
    mo.backward([np.ones_like(o[0]), np.ones_like(o[1])])
    assert np.abs(head2.grads["kernel"]).sum() > 0
    o = mo(x, training=True)
    mo.backward([np.ones_like(o[0]), None])
    np.testing.assert_array_equal(head2.grads["kernel"], 0)
    np.testing.assert_array_equal(head2.grads["bias"], 0)
    assert np.abs(head1.grads["kernel"]).sum() > 0

    b = pynn.Input(shape=(3,), dtype="float64")
    out = layers.Dense(2)(b)
    twice, once = pynn.Model(b, [out, out]), pynn.Model(b, out)
    d = rng.standard_normal((4, 2))
    twice(x, training=True)
    dx2 = twice.backward([d, d])
    g2 = twice._flat_grads.copy()
    once(x, training=True)
    dx1 = once.backward(2 * d)
    np.testing.assert_allclose(g2, once._flat_grads, rtol=1e-14)
    np.testing.assert_allclose(dx2, dx1, rtol=1e-14)


def test_fit_through_a_base_called_with_training_false_keeps_its_caches():
    # the base ran its inference path (fused conv + pool, no caches) inside fit: the
    # backward through it failed, or used an earlier call's caches
    rng = np.random.default_rng(8)
    base = pynn.Sequential([layers.Input(shape=(6, 6, 1)), layers.Conv2D(2, 3, activation="relu"),
                            layers.MaxPooling2D(2), layers.Flatten()], dtype="float64")
    inp = pynn.Input(shape=(6, 6, 1), dtype="float64")
    m = pynn.Model(inp, layers.Dense(1)(base(inp, training=False)))
    m.compile("sgd", "mse")
    x, y = rng.standard_normal((4, 6, 6, 1)), rng.standard_normal((4, 1))
    m(rng.standard_normal((4, 6, 6, 1)), training=True)       # other caches lying around
    yt = m._targets(y)
    m._forward_backward(x, yt, None)
    g = m._flat_grads.copy()
    num = numeric_grad(lambda: m._forward_backward(x, yt, None)[1], m._flat_params)
    np.testing.assert_allclose(g, num, rtol=1e-6, atol=1e-8)
    m.fit(x, y, epochs=1, verbose=0)


def test_config_without_inputs_or_outputs_says_so():
    # a hand-edited config with an empty input or output list: IndexError (list index out
    # of range), which load_model wrapped in its ModelFileError
    inp = pynn.Input(shape=(3,))
    cfg = pynn.Model(inp, layers.Dense(2)(inp)).get_config()
    for key in ("input_layers", "output_layers"):
        c = copy.deepcopy(cfg)
        c["config"][key] = []
        with pytest.raises(ValueError, match="at least one input and one output"):
            pynn.models.model_from_config(c)


def test_compare_and_show_config_arguments_are_checked(capsys):
    # compare(object()) failed on a missing attribute 'dtype'; report['nosuch'] was a bare
    # KeyError; show_config(file='path') failed on a missing attribute 'write'
    x = np.ones((2, 3), np.float32)
    with pytest.raises(TypeError, match="compare takes a pynn model"):
        pynn.compare(object(), x)
    m = pynn.Sequential([layers.Input(shape=(3,)), layers.Dense(2)])
    report = pynn.compare(m, x)
    assert report["output"] >= 0
    with pytest.raises(KeyError, match="no quantity 'nosuch' in this report; it has: output"):
        report["nosuch"]
    with pytest.raises(TypeError, match="writable text stream"):
        pynn.show_config(file="/tmp/config.txt")
