"""Recurrent layers: gradients against central differences (float64) on both backends, initial
states and return_state, go_backwards, Bidirectional merges, TimeDistributed, state carry-over,
Keras shapes, bad input, save/load, and a small model that learns."""
import numpy as np
import pytest

import pynn
from pynn import layers
from helpers import check_grad

BACKENDS = ["c", "reference"]


def built(layer, input_shape, backend, dtype=np.float64):
    layer._build_for((None,) + tuple(input_shape), pynn.ops.get_backend(backend), dtype)
    return layer


def _flat(out):
    outs = out if isinstance(out, list) else [out]
    return np.concatenate([np.asarray(o, dtype=np.float64).ravel() for o in outs])


def _split(dy, like):
    outs = like if isinstance(like, list) else [like]
    parts, i = [], 0
    for o in outs:
        parts.append(dy[i:i + o.size].reshape(o.shape))
        i += o.size
    return parts if isinstance(like, list) else parts[0]


def grad_check(layer, inputs, names=None):
    """Central differences of every input (x and any initial states) and every weight."""
    names = list(layer.params) if names is None else names
    arrays = inputs if isinstance(inputs, list) else [inputs]
    n = len(arrays)

    def call(*a):
        return layer.forward(list(a[:n]) if isinstance(inputs, list) else a[0], training=True)

    def forward(*a):
        return _flat(call(*a))

    def backward(*a):
        dy = a[-1]
        out = call(*a[:-1])
        dx = layer.backward(_split(dy, out))
        dxs = dx if isinstance(dx, list) else [dx]
        return tuple(None if d is None else np.array(d, copy=True) for d in dxs) + tuple(
            layer.grads[k].copy() for k in names)

    check_grad(forward, backward, arrays + [layer.params[k] for k in names])


def _x(shape=(2, 4, 3), seed=0):
    return np.random.default_rng(seed).uniform(-1, 1, shape)


def _randomize(layer, seed=1, scale=0.6):
    rng = np.random.default_rng(seed)
    for w in layer.params.values():
        w[...] = rng.uniform(-scale, scale, w.shape)


RNNS = [lambda **k: layers.SimpleRNN(4, **k), lambda **k: layers.SimpleRNN(4, "relu", **k),
        lambda **k: layers.LSTM(4, **k), lambda **k: layers.GRU(4, **k)]
RNN_IDS = ["simple_tanh", "simple_relu", "lstm", "gru"]


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("make", RNNS, ids=RNN_IDS)
@pytest.mark.parametrize("return_sequences", [False, True])
@pytest.mark.parametrize("go_backwards", [False, True])
def test_gradients(backend, make, return_sequences, go_backwards):
    layer = built(make(return_sequences=return_sequences, go_backwards=go_backwards),
                  (4, 3), backend)
    _randomize(layer)
    grad_check(layer, _x())


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("make", RNNS[1:], ids=RNN_IDS[1:])
def test_initial_state_and_return_state_gradients(backend, make):
    layer = built(make(return_sequences=True, return_state=True), (4, 3), backend)
    _randomize(layer, 2)
    rng = np.random.default_rng(3)
    states = [rng.uniform(-1, 1, (2, 4)) for _ in range(layer._nstates)]
    if isinstance(layer, layers.SimpleRNN):
        states = [np.abs(s) for s in states]  # relu: keep away from the kink at 0
    grad_check(layer, [_x()] + states)


def _fixed_mask(layer):
    """The layer's forward always draws mask number 0 (central differences need one mask)."""
    forward = layer.forward

    def fwd(x, training=False):
        layer._step = 0
        return forward(x, training)
    layer.forward = fwd
    return layer


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("make", RNNS, ids=RNN_IDS)
@pytest.mark.parametrize("go_backwards", [False, True])
def test_dropout_gradients(backend, make, go_backwards):
    layer = built(make(return_sequences=True, go_backwards=go_backwards, dropout=0.4, seed=5),
                  (4, 3), backend)
    _randomize(layer)
    grad_check(_fixed_mask(layer), _x((3, 4, 3)))


@pytest.mark.parametrize("make", RNNS, ids=RNN_IDS)
def test_dropout_is_one_input_mask_per_sample_and_feature(make):
    # training: the layer without dropout on x * mask, mask (B, C) the Dropout kernel's draw
    # on ones, the same at every step; both backends the same; inference: no dropout
    x, rate = _x((5, 6, 3), 4), 0.5
    plain = built(make(return_sequences=True), (6, 3), "reference")
    _randomize(plain)
    mask = pynn.reference.dropout_mask((5, 3), rate, 11, 0, np.float64)
    assert 0 < (mask == 0).sum() < mask.size
    want = plain.forward(x * mask[:, None, :], training=True).copy()
    plain._need_dx = True
    dy = np.random.default_rng(6).standard_normal(want.shape)
    want_dx = plain.backward(dy) * mask[:, None, :]
    for backend in BACKENDS:
        layer = built(make(return_sequences=True, dropout=rate, seed=11), (6, 3), backend)
        layer._need_dx = True
        for k in layer.params:
            layer.params[k][...] = plain.params[k]
        np.testing.assert_allclose(layer.forward(x, training=True), want, rtol=1e-12,
                                   atol=1e-12)
        dx = layer.backward(dy)
        np.testing.assert_allclose(dx, want_dx, rtol=1e-12, atol=1e-12)
        dropped = np.broadcast_to(mask[:, None, :] == 0, dx.shape)
        assert (dx[dropped] == 0).all() and dropped.any()      # dropped at every step
        np.testing.assert_allclose(layer.forward(x, training=False),
                                   plain.forward(x, training=False), rtol=1e-12, atol=1e-12)
        assert layer.get_config()["step"] == 1                 # only training draws masks


def test_dropout_config_resumes_the_masks_and_bad_arguments():
    layer = built(layers.LSTM(3, dropout=0.3, return_sequences=True), (4, 2), "c")
    x = _x((2, 4, 2))
    layer.forward(x, training=True)
    twin = built(layers.LSTM.from_config(layer.get_config()), (4, 2), "c")
    for k in layer.params:
        twin.params[k][...] = layer.params[k]
    np.testing.assert_array_equal(twin.forward(x, training=True),
                                  layer.forward(x, training=True))   # both draw mask 1
    assert twin.get_config()["step"] == 2
    bi = layers.Bidirectional(layers.GRU(3, dropout=0.5, seed=7))
    assert bi.forward_layer.seed == 7 and bi.backward_layer.seed == 8   # its own masks
    with pytest.raises(ValueError, match="recurrent_dropout is not supported"):
        layers.GRU(3, recurrent_dropout=0.2)
    for bad in (1.0, -0.1, float("nan")):
        with pytest.raises(ValueError, match="dropout"):
            layers.SimpleRNN(3, dropout=bad)
    with pytest.raises(ValueError, match="seed"):
        layers.LSTM(3, dropout=0.1, seed=-1)
    with pytest.raises(ValueError, match="step"):
        layers.LSTM.from_config({**layer.get_config(), "step": -2})


def test_no_bias_gradients():
    for make in (layers.LSTM, layers.GRU, layers.SimpleRNN):
        layer = built(make(3, use_bias=False, return_sequences=True), (3, 2), "c")
        _randomize(layer)
        assert "bias" not in layer.params
        grad_check(layer, _x((2, 3, 2)))


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("merge_mode", ["concat", "sum", "mul", "ave", None])
@pytest.mark.parametrize("return_sequences", [False, True])
def test_bidirectional_gradients(backend, merge_mode, return_sequences):
    layer = built(layers.Bidirectional(layers.LSTM(3, return_sequences=return_sequences),
                                       merge_mode=merge_mode), (4, 2), backend)
    _randomize(layer)
    assert sorted(layer.params) == sorted(
        f"{d}_{k}" for d in ("forward", "backward") for k in ("kernel", "recurrent_kernel", "bias"))
    grad_check(layer, _x((2, 4, 2)))


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("make", RNNS[2:], ids=RNN_IDS[2:])
@pytest.mark.parametrize("merge_mode", ["concat", "mul", None])
@pytest.mark.parametrize("given", [False, True])
def test_bidirectional_return_state_gradients(backend, make, merge_mode, given):
    layer = built(layers.Bidirectional(make(return_sequences=merge_mode != "mul",
                                            return_state=True), merge_mode=merge_mode),
                  (4, 3), backend)
    _randomize(layer)
    n = layer.forward_layer._nstates
    x = _x()
    out = layer.forward(x)
    assert len(out) == (2 if merge_mode is None else 1) + 2 * n
    states = [np.random.default_rng(7 + i).uniform(-1, 1, (2, 4)) for i in range(2 * n)]
    grad_check(layer, [x] + states if given else x)


def test_bidirectional_return_state_is_both_directions():
    """[y, h_f, c_f, h_b, c_b]: each direction's final states, from its own initial states."""
    bi = built(layers.Bidirectional(layers.LSTM(3, return_state=True)), (5, 2), "c")
    _randomize(bi)
    x = _x((2, 5, 2))
    rng = np.random.default_rng(4)
    s0 = [rng.uniform(-1, 1, (2, 3)) for _ in range(4)]
    y, hf, cf, hb, cb = [np.array(o) for o in bi.forward([x] + s0)]
    f = built(layers.LSTM(3, return_state=True), (5, 2), "c")
    f.set_weights([bi.params["forward_" + k] for k in ("kernel", "recurrent_kernel", "bias")])
    r = built(layers.LSTM(3, return_state=True), (5, 2), "c")
    r.set_weights([bi.params["backward_" + k] for k in ("kernel", "recurrent_kernel", "bias")])
    yf, hf2, cf2 = f.forward([x, s0[0], s0[1]])
    np.testing.assert_allclose(hf, hf2, rtol=1e-13)
    np.testing.assert_allclose(cf, cf2, rtol=1e-13)
    np.testing.assert_allclose(y[:, :3], yf, rtol=1e-13)
    yb, hb2, cb2 = r.forward([x[:, ::-1].copy(), s0[2], s0[3]])
    np.testing.assert_allclose(hb, hb2, rtol=1e-13)
    np.testing.assert_allclose(cb, cb2, rtol=1e-13)
    np.testing.assert_allclose(y[:, 3:], yb, rtol=1e-13)
    assert bi.compute_output_shape((None, 5, 2)) == [(None, 6)] + [(None, 3)] * 4
    with pytest.raises(ValueError, match="5 arrays"):
        bi.forward([x, s0[0], s0[1]])
    bi.forward(x)
    with pytest.raises(ValueError, match="list of 5 gradients"):
        bi.backward(np.ones((2, 6)))


def test_bidirectional_refuses_mismatched_layers_and_keeps_state_after_bad_calls():
    x = _x((3, 4, 2))
    with pytest.raises(ValueError, match="same return_state"):
        layers.Bidirectional(layers.LSTM(4, return_state=True),
                             backward_layer=layers.LSTM(4, go_backwards=True))
    with pytest.raises(ValueError, match="same return_sequences"):
        layers.Bidirectional(layers.GRU(4, return_sequences=True),
                             backward_layer=layers.GRU(4, go_backwards=True))
    with pytest.raises(ValueError, match="same number of states"):
        layers.Bidirectional(layers.LSTM(4, return_state=True),
                             backward_layer=layers.GRU(4, return_state=True, go_backwards=True))
    with pytest.raises(ValueError, match="other way"):
        layers.Bidirectional(layers.GRU(4), backward_layer=layers.GRU(4))
    with pytest.raises(ValueError, match="backward_layer must be"):
        layers.Bidirectional(layers.GRU(4), backward_layer=layers.Dense(4))
    # a refused call (wrong number of initial states) leaves the last forward's state intact
    bi = built(layers.Bidirectional(layers.GRU(4)), (4, 2), "c")
    bi._need_dx = True
    bi.forward(x)
    dx = np.array(bi.backward(np.ones((3, 8))))
    bi.forward(x)
    with pytest.raises(ValueError, match="3 arrays"):
        bi.forward([x, np.zeros((3, 4))])
    np.testing.assert_array_equal(bi.backward(np.ones((3, 8))), dx)
    # a wrong dy is reported with the merged output's shape, not half of it
    bi.forward(x)
    with pytest.raises(ValueError, match=r"dy must have shape \(3, 8\), received \(3, 6\)"):
        bi.backward(np.ones((3, 6)))
    # a layer returning its states takes one gradient per output
    lstm = built(layers.LSTM(4, return_state=True), (4, 2), "c")
    lstm.forward(x)
    with pytest.raises(ValueError, match="list of 3 gradients"):
        lstm.backward([np.ones((3, 4)), None])


def test_bidirectional_encoder_decoder_functional():
    """The seq2seq pattern: a bidirectional encoder's states, joined, start a decoder; trains
    through the functional API and round-trips through save/load."""
    import os
    import tempfile
    pynn.utils.set_random_seed(0)
    enc_in = pynn.Input((6, 3))
    dec_in = pynn.Input((5, 2))
    _, hf, cf, hb, cb = layers.Bidirectional(layers.LSTM(4, return_state=True))(enc_in)
    h = layers.Concatenate()([hf, hb])
    c = layers.Concatenate()([cf, cb])
    seq = layers.LSTM(8, return_sequences=True)([dec_in, h, c])
    out = layers.TimeDistributed(layers.Dense(1))(seq)
    model = pynn.Model([enc_in, dec_in], out)
    rng = np.random.default_rng(0)
    xe, xd = rng.standard_normal((64, 6, 3)), rng.standard_normal((64, 5, 2))
    # a decoder alone can reach no lower than the variance of the encoder's part, 0.96
    y = 0.4 * xe[:, :, :1].sum(axis=1, keepdims=True) + xd[:, :, 1:]
    model.compile(optimizer="adam", loss="mse")
    first = model.evaluate([xe, xd], y, verbose=0)
    enc = next(la for la in model.layers if isinstance(la, layers.Bidirectional))
    before = enc.get_weights()
    model.fit([xe, xd], y, epochs=80, batch_size=16, verbose=0)
    assert model.evaluate([xe, xd], y, verbose=0) < min(0.7, 0.4 * first)
    # both directions of the encoder learned: gradients flowed back through the states
    assert all(not np.allclose(a, b) for a, b in zip(before, enc.get_weights()))
    with tempfile.TemporaryDirectory() as d:
        path = os.path.join(d, "m.pynn")
        model.save(path)
        again = pynn.models.load_model(path)
    np.testing.assert_allclose(again.predict([xe, xd], verbose=0),
                               model.predict([xe, xd], verbose=0), rtol=1e-6)


def test_bidirectional_is_both_directions():
    """concat = [forward layer's output, backward copy's output flipped back in time]."""
    bi = built(layers.Bidirectional(layers.GRU(3, return_sequences=True)), (5, 2), "c")
    _randomize(bi)
    x = _x((2, 5, 2))
    y = bi.forward(x).copy()
    f = built(layers.GRU(3, return_sequences=True), (5, 2), "c")
    f.set_weights([bi.params[k] for k in ("forward_kernel", "forward_recurrent_kernel",
                                          "forward_bias")])
    r = built(layers.GRU(3, return_sequences=True), (5, 2), "c")
    r.set_weights([bi.params[k] for k in ("backward_kernel", "backward_recurrent_kernel",
                                          "backward_bias")])
    np.testing.assert_allclose(y[..., :3], f.forward(x), rtol=1e-13)
    np.testing.assert_allclose(y[..., 3:], r.forward(x[:, ::-1].copy())[:, ::-1], rtol=1e-13)


@pytest.mark.parametrize("backend", BACKENDS)
def test_time_distributed_dense_gradients(backend):
    layer = built(layers.TimeDistributed(layers.Dense(3, activation="tanh")), (4, 5), backend)
    assert layer.compute_output_shape((None, 4, 5)) == (None, 4, 3)
    grad_check(layer, _x((2, 4, 5)))


def test_time_distributed_conv2d_gradients():
    layer = built(layers.TimeDistributed(layers.Conv2D(2, 3, padding="same")), (3, 4, 4, 1),
                  "c")
    assert layer.compute_output_shape((None, 3, 4, 4, 1)) == (None, 3, 4, 4, 2)
    grad_check(layer, _x((2, 3, 4, 4, 1)))


def test_time_distributed_is_per_step():
    td = built(layers.TimeDistributed(layers.Dense(2)), (3, 4), "c")
    x = _x((2, 3, 4))
    y = td.forward(x)
    w, b = td.params["kernel"], td.params["bias"]
    np.testing.assert_allclose(y, x @ w + b, rtol=1e-13)


@pytest.mark.parametrize("backend", BACKENDS)
def test_backends_agree(backend):
    """The same LSTM on both backends: outputs and gradients within float32 rounding."""
    x = _x((3, 6, 4)).astype(np.float32)
    res = []
    for be in BACKENDS:
        pynn.utils.set_random_seed(0)
        layer = built(layers.LSTM(5, return_sequences=True), (6, 4), be, np.float32)
        y = layer.forward(x).copy()
        dx = layer.backward(np.ones_like(y)).copy()
        res.append((y, dx, layer.grads["recurrent_kernel"].copy()))
    for a, b in zip(*res):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("make", [layers.LSTM, layers.GRU, layers.SimpleRNN])
def test_state_carry_over(make):
    """Running a sequence in two halves, the state passed on, equals running it whole."""
    x = _x((3, 8, 2), 5)
    whole = built(make(4, return_sequences=True), (8, 2), "c")
    _randomize(whole)
    y = whole.forward(x).copy()
    half = built(make(4, return_sequences=True, return_state=True), (4, 2), "c")
    half.set_weights(whole.get_weights())
    out = half.forward(x[:, :4])
    y1, states = out[0].copy(), [s.copy() for s in out[1:]]
    y2 = half.forward([x[:, 4:]] + states)[0]
    np.testing.assert_allclose(np.concatenate([y1, y2], axis=1), y, rtol=1e-12, atol=1e-14)
    # stateful: the final state of one batch starts the next one
    st = built(make(4, return_sequences=True, stateful=True), (4, 2), "c")
    st.set_weights(whole.get_weights())
    a = st.forward(x[:, :4]).copy()
    b = st.forward(x[:, 4:]).copy()
    np.testing.assert_allclose(np.concatenate([a, b], axis=1), y, rtol=1e-12, atol=1e-14)
    st.reset_states()
    np.testing.assert_allclose(st.forward(x[:, :4]), a, rtol=0, atol=0)


def test_keras_shapes_and_counts():
    lstm = built(layers.LSTM(4), (7, 3), "c", np.float32)
    assert lstm.params["kernel"].shape == (3, 16)
    assert lstm.params["recurrent_kernel"].shape == (4, 16)
    assert lstm.count_params() == 4 * 4 * (3 + 4 + 1)
    np.testing.assert_array_equal(lstm.params["bias"][4:8], 1.0)  # unit_forget_bias
    np.testing.assert_array_equal(lstm.params["bias"][:4], 0.0)
    r = lstm.params["recurrent_kernel"]
    np.testing.assert_allclose(r @ r.T, np.eye(4), atol=1e-5)  # orthogonal initializer
    gru = built(layers.GRU(4), (7, 3), "c", np.float32)
    assert gru.params["bias"].shape == (2, 12)
    assert gru.count_params() == 3 * 4 * (3 + 4 + 2)
    assert built(layers.SimpleRNN(4), (7, 3), "c").count_params() == 4 * (3 + 4 + 1)
    assert lstm.compute_output_shape((None, 7, 3)) == (None, 4)
    seq = layers.LSTM(4, return_sequences=True, return_state=True)
    assert seq.compute_output_shape((None, 7, 3)) == [(None, 7, 4), (None, 4), (None, 4)]
    bi = layers.Bidirectional(layers.LSTM(4, return_sequences=True))
    assert bi.compute_output_shape((None, 7, 3)) == (None, 7, 8)


def test_bad_input():
    lstm = built(layers.LSTM(4), (5, 3), "c")
    with pytest.raises(ValueError, match="timesteps, features"):
        lstm.forward(np.zeros((2, 3)))
    with pytest.raises(ValueError, match="built for 3 features"):
        lstm.forward(np.zeros((2, 5, 4)))
    with pytest.raises(ValueError, match="at least one timestep"):
        lstm(np.zeros((2, 0, 3)))
    seq = built(layers.LSTM(4, return_sequences=True), (5, 3), "c")
    seq._need_dx = True
    seq.forward(np.zeros((2, 5, 3)))
    with pytest.raises(ValueError, match="dy must have shape"):   # was broadcast
        seq.backward(np.ones((1, 5, 4)))
    drop = built(layers.Dropout(0.5), (3,), "c")
    drop.forward(np.ones((2, 3)), training=True)
    with pytest.raises(ValueError, match="dy must have shape"):
        drop.backward(np.ones((3, 2)))
    with pytest.raises(ValueError, match="initial state"):
        lstm.forward([np.zeros((2, 5, 3)), np.zeros((2, 4)), np.zeros((3, 4))])
    with pytest.raises(ValueError, match="takes 2 initial state"):
        lstm.forward([np.zeros((2, 5, 3)), np.zeros((2, 4))])
    with pytest.raises(TypeError, match="numeric array"):
        lstm(np.array([np.zeros((5, 3)), np.zeros((4, 3))], dtype=object))  # ragged
    with pytest.raises(ValueError, match="positive integer"):
        layers.GRU(0)
    with pytest.raises(ValueError, match="not supported"):
        layers.LSTM(3, activation="relu")
    with pytest.raises(ValueError, match="not supported"):
        layers.SimpleRNN(3, activation="sigmoid")
    with pytest.raises(ValueError, match="merge_mode"):
        layers.Bidirectional(layers.LSTM(3), merge_mode="max")
    with pytest.raises(ValueError, match="wraps"):
        layers.Bidirectional(layers.Dense(3))
    with pytest.raises(ValueError, match="timesteps"):
        built(layers.LSTM(2), (3,), "c")
    st = built(layers.GRU(2, stateful=True), (3, 1), "c")
    st.forward(np.zeros((4, 3, 1)))
    with pytest.raises(ValueError, match="reset_states"):
        st.forward(np.zeros((5, 3, 1)))


def _model(seed=0):
    pynn.utils.set_random_seed(seed)
    return pynn.Sequential([
        layers.Bidirectional(layers.LSTM(6, return_sequences=True), input_shape=(10, 2)),
        layers.GRU(5, return_sequences=True, dropout=0.2),
        layers.TimeDistributed(layers.Dense(3)),
        layers.SimpleRNN(4),
        layers.Dense(2, activation="softmax")])


def test_save_load_identical_predictions(tmp_path):
    m = _model()
    m.compile("adam", "sparse_categorical_crossentropy")
    x = _x((8, 10, 2)).astype(np.float32)
    m.fit(x, np.arange(8) % 2, epochs=1, batch_size=4, verbose=0)
    p = m.predict(x, verbose=0)
    path = tmp_path / "rnn_model"
    m.save(str(path))
    m2 = pynn.models.load_model(str(path)) if hasattr(pynn, "models") and hasattr(
        pynn.models, "load_model") else pynn.load_model(str(path))
    np.testing.assert_array_equal(m2.predict(x, verbose=0), p)
    assert [type(layer).__name__ for layer in m2._layers][-5:] == [
        "Bidirectional", "GRU", "TimeDistributed", "SimpleRNN", "Dense"]


def test_lstm_learns_a_sequence_task():
    """Is the first half of the sequence larger than the second? Needs memory over time."""
    rng = np.random.default_rng(0)
    x = rng.uniform(-1, 1, (256, 12, 1)).astype(np.float32)
    y = (x[:, :6, 0].sum(1) > x[:, 6:, 0].sum(1)).astype(np.int64)
    pynn.utils.set_random_seed(0)
    m = pynn.Sequential([layers.LSTM(16, input_shape=(12, 1)), layers.Dense(2)])
    m.compile(pynn.optim.Adam(0.01) if hasattr(pynn, "optim") else "adam",
              pynn.losses.SparseCategoricalCrossentropy(from_logits=True), metrics=["accuracy"])
    h = m.fit(x, y, epochs=15, batch_size=32, verbose=0)
    assert h.history["loss"][-1] < 0.5 * h.history["loss"][0]
    assert h.history["accuracy"][-1] > 0.85


@pytest.mark.parametrize("cell", ["LSTM", "GRU"])
def test_matches_torch(cell):
    """Keras layouts against PyTorch's nn.LSTM / nn.GRU (reset_after) with the same weights:
    outputs and input gradients."""
    torch = pytest.importorskip("torch")
    c, h = 3, 4
    layer = built((layers.LSTM if cell == "LSTM" else layers.GRU)(h, return_sequences=True),
                  (5, c), "c")
    _randomize(layer)
    k, r, b = (layer.params[n] for n in ("kernel", "recurrent_kernel", "bias"))
    if cell == "LSTM":  # both i, f, g, o
        m = torch.nn.LSTM(c, h, batch_first=True, dtype=torch.float64)
        ws = (k.T, r.T, b, np.zeros_like(b))
    else:  # Keras z, r, h -> torch r, z, n
        m = torch.nn.GRU(c, h, batch_first=True, dtype=torch.float64)
        p = np.r_[h:2 * h, 0:h, 2 * h:3 * h]
        ws = (k.T[p], r.T[p], b[0][p], b[1][p])
    with torch.no_grad():
        for name, v in zip(("weight_ih_l0", "weight_hh_l0", "bias_ih_l0", "bias_hh_l0"), ws):
            getattr(m, name).copy_(torch.from_numpy(np.ascontiguousarray(v)))
    x = _x((2, 5, c))
    dy = np.random.default_rng(9).standard_normal((2, 5, h))
    xt = torch.from_numpy(x).requires_grad_(True)
    yt, _ = m(xt)
    yt.backward(torch.from_numpy(dy))
    np.testing.assert_allclose(layer.forward(x), yt.detach().numpy(), rtol=1e-12, atol=1e-13)
    np.testing.assert_allclose(layer.backward(dy), xt.grad.numpy(), rtol=1e-12, atol=1e-13)


@pytest.mark.parametrize("make", [
    lambda: [layers.LSTM(4, return_sequences=True), layers.Dense(2)],
    lambda: [layers.Bidirectional(layers.GRU(3, return_sequences=True)), layers.Dense(2)],
    lambda: [layers.TransformerBlock(1, ff_dim=4), layers.Dense(2)],
    lambda: [layers.TimeDistributed(layers.Dense(2))]])
def test_variable_sequence_length(make):
    """Input(shape=(None, C)): one model trains, evaluates and predicts on batches of any
    length, and gives what a model built for that length gives with the same weights."""
    rng = np.random.default_rng(0)
    pynn.utils.set_random_seed(0)
    var = pynn.Sequential([pynn.Input(shape=(None, 3))] + make(), dtype="float64")
    var.compile("adam", "mse")
    for T in (5, 7, 1):
        x = rng.standard_normal((6, T, 3))
        h = var.fit(x, np.zeros((6, T, 2)), batch_size=4, epochs=1, verbose=0,
                    validation_split=0.25)
        assert np.isfinite(h.history["val_loss"][0])
        fixed = pynn.Sequential([pynn.Input(shape=(T, 3))] + make(), dtype="float64")
        fixed.set_weights(var.get_weights())
        p = var.predict(x, batch_size=4, verbose=0)
        assert p.shape == (6, T, 2)
        np.testing.assert_allclose(p, fixed.predict(x, verbose=0), rtol=1e-12, atol=1e-12)
        fixed.compile("sgd", "mse")
        assert var.evaluate(x, np.ones((6, T, 2)), verbose=0) == pytest.approx(
            fixed.evaluate(x, np.ones((6, T, 2)), verbose=0), rel=1e-12)
    with pytest.raises(ValueError, match="y_true must have shape"):   # x and y lengths differ
        var.fit(rng.standard_normal((4, 5, 3)), np.zeros((4, 6, 2)), verbose=0)
    with pytest.raises(ValueError, match="expects inputs of shape"):  # the feature axis is fixed
        var.predict(rng.standard_normal((4, 5, 2)), verbose=0)


def test_variable_length_token_sequences_with_sparse_labels():
    # a character model's shape: ids (B, None) -> Embedding -> LSTM -> softmax per step
    rng = np.random.default_rng(1)
    m = pynn.Sequential([pynn.Input(shape=(None,)), layers.Embedding(10, 4),
                         layers.LSTM(8, return_sequences=True),
                         layers.Dense(10, activation="softmax")])
    m.compile("adam", "sparse_categorical_crossentropy", metrics=["accuracy"])
    for T in (5, 8):
        x = rng.integers(0, 10, (6, T))
        m.fit(x, (x + 1) % 10, epochs=1, verbose=0)
        assert m.predict(x, verbose=0).shape == (6, T, 10)
    with pytest.raises(ValueError, match="labels"):
        m.fit(rng.integers(0, 10, (4, 5)), rng.integers(0, 10, (4, 6)), verbose=0)
