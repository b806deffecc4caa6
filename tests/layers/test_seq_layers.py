"""Embedding, PositionalEmbedding, LayerNormalization, MultiHeadAttention, TransformerBlock:
finite differences (float64) on both backends, C against reference, masks and causality,
bad ids, save/load, and a toy next-token model that learns."""
import numpy as np
import pytest

import pynn
from pynn.layers import (Dense, Embedding, LayerNormalization, MultiHeadAttention,
                         PositionalEmbedding, TransformerBlock)
from helpers import numerical_grad

BACKENDS = ("c", "reference")


def build(layer, shape, backend="c", dtype=np.float64):
    layer._build_for(shape, pynn.ops.get_backend(backend), dtype)
    return layer


def check_layer_grads(layer, x, fwd_kwargs=None, weights=None, check_dx=True, rtol=1e-5,
                      atol=1e-7, seed=0):
    """L = sum(forward(x) * r): backward's dx and weight gradients vs central differences."""
    fwd_kwargs = fwd_kwargs or {}
    rng = np.random.default_rng(seed)
    y = layer.forward(x, training=False, **fwd_kwargs)
    r = rng.standard_normal(y.shape)

    def loss():
        return float(np.sum(layer.forward(x, training=False, **fwd_kwargs) * r))
    layer.forward(x, training=False, **fwd_kwargs)
    dx = layer.backward(r)
    dx = None if dx is None else (dx.copy() if not isinstance(dx, list) else
                                  [None if d is None else d.copy() for d in dx])
    grads = {k: g.copy() for k, g in layer.grads.items()}
    for k in (weights if weights is not None else layer.params):
        num = numerical_grad(loss, layer.params[k])
        np.testing.assert_allclose(grads[k], num, rtol=rtol, atol=atol, err_msg=f"weight {k}")
    if check_dx:
        xs = x if isinstance(x, list) else [x]
        dxs = dx if isinstance(dx, list) else [dx]
        for i, (xi, di) in enumerate(zip(xs, dxs)):
            if di is None:
                continue
            num = numerical_grad(loss, xi)
            np.testing.assert_allclose(di, num, rtol=rtol, atol=atol, err_msg=f"input {i}")
    return dx


@pytest.mark.parametrize("backend", BACKENDS)
def test_layernorm_gradients(backend):
    rng = np.random.default_rng(1)
    ln = build(LayerNormalization(epsilon=1e-5), (None, 3, 6), backend)
    ln.params["gamma"][...] = rng.standard_normal(6)
    ln.params["beta"][...] = rng.standard_normal(6)
    check_layer_grads(ln, rng.standard_normal((2, 3, 6)))
    plain = build(LayerNormalization(center=False, scale=False), (None, 5), backend)
    assert plain.params == {}
    y = plain.forward(rng.standard_normal((4, 5)))
    np.testing.assert_allclose(y.mean(axis=-1), 0, atol=1e-12)


def test_layernorm_matches_formula_and_rejects_other_axes():
    x = np.random.default_rng(2).standard_normal((3, 7))
    ln = build(LayerNormalization(), (None, 7))
    expected = (x - x.mean(-1, keepdims=True)) / np.sqrt(x.var(-1, keepdims=True) + 1e-3)
    np.testing.assert_allclose(ln.forward(x), expected, rtol=1e-12, atol=1e-12)
    with pytest.raises(ValueError, match="only the last axis"):
        build(LayerNormalization(axis=1), (None, 3, 4))


@pytest.mark.parametrize("backend", BACKENDS)
def test_embedding_weight_gradients_and_bad_ids(backend):
    rng = np.random.default_rng(3)
    emb = build(Embedding(7, 4, embeddings_initializer="random_normal"), (None, 5), backend)
    ids = rng.integers(0, 7, (3, 5)).astype(np.float64)
    assert emb.forward(ids).shape == (3, 5, 4)
    check_layer_grads(emb, ids, check_dx=False)
    assert emb.backward(np.ones((3, 5, 4))) is None
    with pytest.raises(ValueError, match=r"in \[0, 7\)"):
        emb.forward(np.array([[0.0, 7.0]]))
    with pytest.raises(ValueError, match="whole numbers"):
        emb.forward(np.array([[0.0, 1.5]]))
    with pytest.raises(ValueError, match=r"in \[0, 7\)"):
        emb.forward(np.array([[-1.0, 1.0]]))
    pe = build(PositionalEmbedding(6, 7, 4, embeddings_initializer="random_normal"),
               (None, 5), backend)
    check_layer_grads(pe, ids, check_dx=False)
    with pytest.raises(ValueError, match="T <= 6"):
        pe.forward(np.zeros((2, 7)))


def test_embedding_vocabulary_past_float32_exact_integers():
    # ids travel in the model's dtype: float32 rounds id 2**24 + 1 to 2**24 (the wrong row,
    # silently), so such a vocabulary is refused at build unless the model is float64
    V = 2**24 + 2
    for layer in (Embedding(V, 1), PositionalEmbedding(3, V, 1)):
        with pytest.raises(ValueError, match="needs a float64 model"):
            pynn.Sequential([pynn.Input(shape=(3,)), layer])
    pynn.Sequential([pynn.Input(shape=(3,)), Embedding(2**24 + 1, 1)])  # ids <= 2**24: exact
    m = pynn.Sequential([pynn.Input(shape=(3,)), Embedding(V, 1)], dtype="float64")
    table = m.layers[0].get_weights()[0]
    ids = np.array([[V - 1, 2**24, 1]])
    np.testing.assert_array_equal(m.predict(ids, verbose=0)[0, :, 0], table[ids[0], 0])


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("causal", [False, True])
def test_mha_self_attention_gradients(backend, causal):
    rng = np.random.default_rng(4)
    mha = build(MultiHeadAttention(3, 2, value_dim=3, output_shape=5,
                                   bias_initializer="random_normal"), (None, 4, 6), backend)
    mask = rng.random((2, 4, 4)) > 0.3
    check_layer_grads(mha, rng.standard_normal((2, 4, 6)),
                      {"use_causal_mask": causal, "attention_mask": mask})


@pytest.mark.parametrize("backend", BACKENDS)
def test_mha_cross_attention_gradients(backend):
    rng = np.random.default_rng(5)
    mha = build(MultiHeadAttention(2, 3, bias_initializer="random_normal"),
                [(None, 3, 4), (None, 5, 6), (None, 5, 2)], backend)
    xs = [rng.standard_normal((2, 3, 4)), rng.standard_normal((2, 5, 6)),
          rng.standard_normal((2, 5, 2))]
    dx = check_layer_grads(mha, xs)
    assert len(dx) == 3 and all(d is not None for d in dx)
    assert mha.forward(xs).shape == (2, 3, 4)
    # [query, value]: the key is the value; its gradient sums both paths
    mha2 = build(MultiHeadAttention(2, 3, use_bias=False), [(None, 3, 4), (None, 5, 6)], backend)
    assert "query_bias" not in mha2.params
    check_layer_grads(mha2, xs[:2])


@pytest.mark.parametrize("backend", BACKENDS)
def test_mha_fused_self_attention_matches_separate_projections(backend):
    # one array (fused q/k/v GEMM) against [x, copy of x] (three GEMMs): same values
    rng = np.random.default_rng(14)
    mha = build(MultiHeadAttention(3, 4, value_dim=2), (None, 5, 6), backend)
    x = rng.standard_normal((2, 5, 6))
    y1 = mha.forward(x, use_causal_mask=True).copy()
    dy = rng.standard_normal(y1.shape)
    dx1 = mha.backward(dy).copy()
    g1 = {k: g.copy() for k, g in mha.grads.items()}
    y2 = mha.forward([x, x.copy()], use_causal_mask=True)
    np.testing.assert_allclose(y2, y1, rtol=1e-13, atol=1e-13)
    dq, dv = mha.backward(dy)
    np.testing.assert_allclose(dq + dv, dx1, rtol=1e-12, atol=1e-12)
    for k in g1:
        np.testing.assert_allclose(mha.grads[k], g1[k], rtol=1e-12, atol=1e-12, err_msg=k)


def test_mha_keras_weight_shapes_and_mask():
    mha = build(MultiHeadAttention(4, 8, value_dim=5), (None, 6, 16))
    shapes = {k: v.shape for k, v in mha.params.items()}
    assert shapes == {"query_kernel": (16, 4, 8), "query_bias": (4, 8),
                      "key_kernel": (16, 4, 8), "key_bias": (4, 8),
                      "value_kernel": (16, 4, 5), "value_bias": (4, 5),
                      "output_kernel": (4, 5, 16), "output_bias": (16,)}
    rng = np.random.default_rng(6)
    q, v = rng.standard_normal((2, 3, 16)), rng.standard_normal((2, 6, 16))
    mask = np.ones((2, 3, 6), bool)
    mask[:, :, 4:] = False
    y = mha.forward([q, v], attention_mask=mask).copy()
    v2 = v.copy()
    v2[:, 4:] = 1e3 * rng.standard_normal((2, 2, 16))  # masked positions change nothing
    np.testing.assert_array_equal(mha.forward([q, v2], attention_mask=mask), y)
    with pytest.raises(ValueError, match="dropout"):
        MultiHeadAttention(2, 4, dropout=1.0)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("kind", ["self", "cross"])
def test_mha_dropout_on_the_probabilities(backend, kind):
    # training: the kernels' dropout of mask number `step` (counted per training call);
    # inference: none; gradients by central differences with one mask; config resumes
    rng = np.random.default_rng(21)
    q = rng.standard_normal((2, 5, 6))
    inputs = q if kind == "self" else [q, rng.standard_normal((2, 7, 6))]
    S = 5 if kind == "self" else 7
    mha = build(MultiHeadAttention(2, 3, dropout=0.4, seed=9), [q.shape, (None, S, 6)]
                if kind == "cross" else q.shape, backend)
    plain = build(MultiHeadAttention(2, 3), [q.shape, (None, S, 6)]
                  if kind == "cross" else q.shape, backend)
    for k in mha.params:
        plain.params[k][...] = mha.params[k]
    y_inf = mha.forward(inputs).copy()
    np.testing.assert_array_equal(y_inf, plain.forward(inputs))
    y0 = mha.forward(inputs, training=True).copy()
    assert not np.allclose(y0, y_inf)
    y1 = mha.forward(inputs, training=True).copy()
    assert not np.allclose(y1, y0)                            # a new mask per training call
    twin = build(MultiHeadAttention.from_config({**mha.get_config(), "step": 1}),
                 [q.shape, (None, S, 6)] if kind == "cross" else q.shape, backend)
    for k in mha.params:
        twin.params[k][...] = mha.params[k]
    np.testing.assert_array_equal(twin.forward(inputs, training=True), y1)
    assert mha.get_config()["step"] == 2 and mha.get_config()["seed"] == 9

    forward = mha.forward

    def fixed(x, training=False):  # one mask for the central differences
        mha._step = 0
        return forward(x, training=True)
    mha.forward = fixed
    check_layer_grads(mha, inputs, rtol=2e-5, atol=1e-6)


def _block(backend, C=8, seed=0, **kw):
    pynn.utils.set_random_seed(seed)
    blk = TransformerBlock(2, ff_dim=12, **kw)
    return build(blk, (None, 5, C), backend)


@pytest.mark.parametrize("backend", BACKENDS)
def test_transformer_block_gradients(backend):
    rng = np.random.default_rng(7)
    blk = _block(backend)
    for k in blk.params:  # non-trivial LN parameters and biases
        if k.endswith(("gamma", "beta", "bias")):
            blk.params[k][...] += 0.3 * rng.standard_normal(blk.params[k].shape)
    check_layer_grads(blk, rng.standard_normal((2, 5, 8)), rtol=2e-5, atol=1e-6)


def test_transformer_block_c_matches_reference_and_is_causal():
    rng = np.random.default_rng(8)
    x = rng.standard_normal((3, 5, 8))
    cb, rb = _block("c"), _block("reference")
    y = cb.forward(x).copy()
    np.testing.assert_allclose(y, rb.forward(x), rtol=1e-12, atol=1e-12)
    dy = rng.standard_normal(y.shape)
    np.testing.assert_allclose(cb.backward(dy), rb.backward(dy), rtol=1e-11, atol=1e-11)
    for k in cb.grads:
        np.testing.assert_allclose(cb.grads[k], rb.grads[k], rtol=1e-10, atol=1e-11,
                                   err_msg=k)
    for t in range(4):
        x2 = x.copy()
        x2[:, t + 1:] = rng.standard_normal(x2[:, t + 1:].shape)
        y2 = cb.forward(x2)
        np.testing.assert_array_equal(y2[:, :t + 1], y[:, :t + 1])
        assert not np.allclose(y2[:, t + 1:], y[:, t + 1:])
    nc = _block("c", causal=False)
    y = nc.forward(x).copy()
    x2 = x.copy()
    x2[:, -1] += rng.standard_normal(x2[:, -1].shape)
    assert not np.allclose(nc.forward(x2)[:, 0], y[:, 0])  # non-causal sees the future


@pytest.mark.parametrize("backend", BACKENDS)
def test_transformer_block_dropout_seed_and_step_in_the_config(backend):
    # the residual dropouts' masks come from the block's seed (given, or drawn at build) and
    # their count: a block rebuilt from the config at that step draws the same next masks
    rng = np.random.default_rng(9)
    x = rng.standard_normal((2, 5, 8))
    blk = _block(backend, dropout=0.4, seed=3)
    assert blk.get_config()["seed"] is not None and blk.get_config()["step"] == 0
    y_inf = blk.forward(x).copy()
    y0 = blk.forward(x, training=True).copy()
    assert not np.allclose(y0, y_inf)
    y1 = blk.forward(x, training=True).copy()
    assert not np.allclose(y1, y0)                            # a new mask per training call
    cfg = blk.get_config()
    assert cfg["step"] == 2
    twin = build(TransformerBlock.from_config({**cfg, "step": 1}), (None, 5, 8), backend)
    for k in blk.params:
        twin.params[k][...] = blk.params[k]
    np.testing.assert_array_equal(twin.forward(x, training=True), y1)
    assert twin.get_config()["step"] == 2
    given = build(TransformerBlock(2, ff_dim=12, dropout=0.4, seed=77), (None, 5, 8), backend)
    assert given.get_config()["seed"] == 77
    with pytest.raises(ValueError, match="seed"):
        TransformerBlock(2, dropout=0.1, seed=-1)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("kind", ["sequential", "functional"])
def test_transformer_block_predict_skips_the_gelu_derivative(backend, kind, monkeypatch):
    # predict/evaluate run the MLP's GELU without its derivative (no backward follows) and
    # give the bits of model(x); model(x) keeps the derivative for a backward
    pynn.utils.set_random_seed(3)
    if kind == "sequential":
        m = _char_model(backend=backend)
    else:
        inp = pynn.layers.Input(shape=(8,))
        h = TransformerBlock(2, ff_dim=32)(PositionalEmbedding(8, 11, 16)(inp))
        m = pynn.Model(inp, Dense(11)(LayerNormalization()(h)), backend=backend)
    m.compile(optimizer="adam",
              loss=pynn.losses.SparseCategoricalCrossentropy(from_logits=True))
    blk = next(layer for layer in m.layers if isinstance(layer, TransformerBlock))
    x = np.random.default_rng(4).integers(0, 11, (5, 8)).astype(np.float32)
    calls = []

    def spy(*a, _f=blk.ops.dense_forward, **k):
        # the MLP's first layer: dense_forward with the GELU fused, grad= for a backward
        act = k.get("activation", a[3] if len(a) > 3 else "linear")
        if act in ("gelu", "gelu_tanh"):
            calls.append("gelu_forward_grad" if k.get("grad") is not None else "gelu_forward")
        return _f(*a, **k)
    monkeypatch.setattr(blk.ops, "dense_forward", spy)
    for name in ("gelu_forward", "gelu_forward_grad"):  # no separate GELU pass at all
        monkeypatch.setattr(blk.ops, name, lambda *a, _n=name, **k: calls.append("separate"))
    want = np.array(m(x))
    assert calls == ["gelu_forward_grad"]
    np.testing.assert_array_equal(m.predict(x, verbose=0), want)
    m.evaluate(x, np.zeros((5, 8)), verbose=0)
    assert calls == ["gelu_forward_grad", "gelu_forward", "gelu_forward"]
    with pytest.raises(RuntimeError, match="inference only"):
        blk.backward(np.ones((5, 8, 16), np.float32))
    m(x)  # a backward after model(x) works again
    assert blk.backward(np.ones((5, 8, 16), np.float32)).shape == (5, 8, 16)


def _char_model(V=11, T=8, D=16, backend=None):
    return pynn.Sequential([pynn.layers.Input(shape=(T,)), PositionalEmbedding(T, V, D),
                            TransformerBlock(2, ff_dim=32), LayerNormalization(), Dense(V)],
                           backend=backend)


def test_save_load_identical_predictions(tmp_path):
    pynn.utils.set_random_seed(1)
    m = pynn.Sequential([pynn.layers.Input(shape=(6,)), Embedding(9, 8),
                         TransformerBlock(2, ff_dim=16, dropout=0.1), LayerNormalization(),
                         Dense(9)])
    m.compile(optimizer="adam", loss="mse")
    rng = np.random.default_rng(9)
    x = rng.integers(0, 9, (4, 6)).astype(np.float32)
    m.fit(x, rng.standard_normal((4, 6, 9)).astype(np.float32), epochs=2, verbose=0)
    p = m.predict(x, verbose=0)
    path = str(tmp_path / "seq.pynn")
    m.save(path)
    m2 = pynn.models.load_model(path)
    np.testing.assert_array_equal(m2.predict(x, verbose=0), p)
    assert [type(layer).__name__ for layer in m2.layers] == \
        ["Embedding", "TransformerBlock", "LayerNormalization", "Dense"]


@pytest.mark.parametrize("backend", BACKENDS)
def test_toy_next_token_model_learns(backend):
    # next token = (token + 1) mod V: a custom loop through layer forward/backward
    V, T, B = 11, 8, 16
    pynn.utils.set_random_seed(2)
    m = _char_model(V, T, backend=backend)
    m.build((None, T))
    ops = m.ops
    rng = np.random.default_rng(10)
    losses = []
    for step in range(60):
        start = rng.integers(0, V, (B, 1))
        seq = (start + np.arange(T + 1)) % V
        x, y = seq[:, :-1].astype(np.float32), seq[:, 1:].reshape(-1)
        h = x
        for layer in m.layers:
            h = layer.forward(h, training=True)
        logits = h.reshape(-1, V)
        losses.append(ops.softmax_cross_entropy_forward(logits, y))
        d = ops.softmax_cross_entropy_backward(logits, y).reshape(B, T, V)
        for layer in reversed(m.layers):
            d = layer.backward(d)
        for layer in m.layers:
            for k in layer.params:
                layer.params[k] -= 0.3 * layer.grads[k]
    assert np.mean(losses[-5:]) < 0.5 * np.mean(losses[:5]), losses[::10]


def test_transformer_block_same_bits_for_any_thread_count():
    rng = np.random.default_rng(15)
    x = rng.standard_normal((4, 33, 16)).astype(np.float32)
    dy = rng.standard_normal(x.shape).astype(np.float32)
    results = []
    for nt in (1, 2):
        pynn.utils.set_random_seed(3)
        blk = build(TransformerBlock(4, ff_dim=24), (None, 33, 16), "c", np.float32)
        with pynn.num_threads(nt):
            y = blk.forward(x, training=True).copy()
            dx = blk.backward(dy).copy()
        results.append((y, dx, {k: g.copy() for k, g in blk.grads.items()}))
    (y1, dx1, g1), (y2, dx2, g2) = results
    assert np.array_equal(y1, y2) and np.array_equal(dx1, dx2)
    assert all(np.array_equal(g1[k], g2[k]) for k in g1)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("kind", ["block", "block_dropout", "mha_self", "mha_cross"])
def test_empty_sequence_gives_an_empty_output_and_zero_gradients(backend, kind):
    """T = 0 (as in Keras and torch, no error): the output and dx are (B, 0, C), and every
    weight gradient is exactly 0 (a sum over no position), written over the previous step's
    gradients rather than left stale; the same on both backends."""
    rng = np.random.default_rng(21)
    pynn.utils.set_random_seed(3)
    if kind.startswith("block"):
        layer = build(TransformerBlock(2, ff_dim=12, dropout=0.1 if "dropout" in kind else 0.0),
                      (None, None, 8), backend)
    else:
        layer = build(MultiHeadAttention(2, 4), (None, None, 8) if kind == "mha_self"
                      else [(None, None, 8), (None, None, 8)], backend)

    def inputs(T, S):
        q = rng.standard_normal((2, T, 8))
        return q if kind != "mha_cross" else [q, rng.standard_normal((2, S, 8))]
    y = layer.forward(inputs(5, 4), training=True)
    layer.backward(rng.standard_normal(y.shape))
    assert all(np.any(g != 0) for g in layer.grads.values())  # stale values to overwrite
    x0 = inputs(0, 3)
    y0 = layer.forward(x0, training=True)
    assert y0.shape == (2, 0, 8)
    dx = layer.backward(np.zeros(y0.shape))
    if kind == "mha_cross":
        assert dx[0].shape == (2, 0, 8) and dx[1].shape == (2, 3, 8)
        assert not np.any(dx[1])
    else:
        assert dx.shape == (2, 0, 8)
    for k, g in layer.grads.items():
        assert not np.any(g), f"{k}: not zero after a backward over no position"


def test_cross_attention_to_no_key_matches_the_reference():
    """S = 0 keys: every query row has nothing to attend to, so the attention output is 0
    (not NaN), y = the output bias, and only the output bias has a gradient (sum of dy)."""
    rng = np.random.default_rng(22)
    q, v, dy = (rng.standard_normal((2, 3, 8)), np.zeros((2, 0, 8)),
                rng.standard_normal((2, 3, 8)))
    got = {}
    for backend in BACKENDS:
        pynn.utils.set_random_seed(4)
        layer = build(MultiHeadAttention(2, 4, bias_initializer="random_normal"),
                      [(None, None, 8), (None, None, 8)], backend)
        y = layer.forward([q, v], training=True).copy()
        np.testing.assert_array_equal(y, np.broadcast_to(layer.params["output_bias"], y.shape))
        dq, dv = layer.backward(dy)
        assert dv.shape == (2, 0, 8) and not np.any(dq)
        np.testing.assert_allclose(layer.grads["output_bias"], dy.sum(axis=(0, 1)),
                                   rtol=1e-12)
        assert not any(np.any(g) for k, g in layer.grads.items() if k != "output_bias")
        got[backend] = y
    np.testing.assert_array_equal(got["c"], got["reference"])
