"""Recurrent kernels (SimpleRNN, LSTM, GRU over a sequence, and BPTT): C against the NumPy
twin, central differences (float64), hand-worked values, layouts, bad input."""
import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from helpers import C, REF, check_grad, compare, layouts, rand

DTYPES = (np.float32, np.float64)
# (B, T, H): one step, one sample, odd and prime widths, wide enough for 2 threads, and wide
# enough that a per-step GEMM slice must be split (same bits for 1 and 2 threads); batches
# past one micro-kernel row sliver with 1- and 2-row edges (13, 26), and an LSTM whose
# backward depth 4H = 2080 is split into two blocks; at 2 threads, batches of 16 rows and
# more are split by rows (26: 13 + 13; 17: 8 + 9; 20 for SimpleRNN, whose step has less work
# to share), fewer by units
SHAPES = [(1, 1, 1), (1, 5, 3), (3, 1, 4), (2, 7, 13), (5, 3, 17), (8, 4, 64), (3, 2, 200),
          (26, 3, 48), (13, 2, 520), (17, 3, 40), (20, 2, 64)]


def _inputs(rng, shape, gates, dtype, scale=0.4):
    b, t, h = shape
    xproj = rand(rng, (b, t, gates * h), dtype, -1.5, 1.5)
    h0 = rand(rng, (b, h), dtype)
    w = rand(rng, (h, gates * h), dtype, -scale, scale)
    return xproj, h0, w


def _k(shape):
    b, t, h = shape
    return 4 * h * t + b * t  # the recurrence compounds the per-step dot products over T


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("activation", ["tanh", "relu"])
def test_simple_rnn_against_reference(dtype, shape, activation):
    rng = np.random.default_rng(0)
    xproj, h0, w = _inputs(rng, shape, 1, dtype)
    h = compare("simple_rnn_forward", xproj, h0, w, activation, k=_k(shape))
    dh = rand(rng, h.shape, dtype)
    dl = rand(rng, h0.shape, dtype)
    compare("simple_rnn_backward", h0, w, h, dh, dl, activation, k=_k(shape))
    compare("simple_rnn_backward", h0, w, h, dh, None, activation, k=_k(shape))


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", SHAPES)
def test_lstm_against_reference(dtype, shape):
    rng = np.random.default_rng(1)
    xproj, h0, w = _inputs(rng, shape, 4, dtype)
    c0 = rand(rng, h0.shape, dtype)
    h, c, gates = compare("lstm_forward", xproj, h0, c0, w, k=_k(shape))
    bias = rand(rng, (4 * shape[2],), dtype)
    compare("lstm_forward", xproj, h0, c0, w, bias, k=_k(shape))
    dh = rand(rng, h.shape, dtype)
    dl, dcl = rand(rng, h0.shape, dtype), rand(rng, h0.shape, dtype)
    compare("lstm_backward", h0, c0, w, h, c, gates, dh, dl, dcl, k=_k(shape))
    compare("lstm_backward", h0, c0, w, h, c, gates, dh, k=_k(shape))


@pytest.mark.parametrize("dtype", DTYPES)
def test_lstm_bias_is_folded_into_xproj(dtype):
    """lstm_forward(xproj, bias) is lstm_forward(xproj + bias) to the bit; backward's db is
    the column sum of dxproj."""
    rng = np.random.default_rng(11)
    shape = (13, 5, 40)
    xproj, h0, w = _inputs(rng, shape, 4, dtype)
    bias = rand(rng, (160,), dtype)
    for be in (C, REF):
        got = be.lstm_forward(xproj, h0, h0, w, bias)
        want = be.lstm_forward(xproj + bias, h0, h0, w)
        for a, b in zip(got, want):
            np.testing.assert_array_equal(a, b)
        dxp, _, _, _, db = be.lstm_backward(h0, h0, w, *got, rand(rng, got[0].shape, dtype))
        tol = 1e-5 if dtype == np.float32 else 1e-12
        np.testing.assert_allclose(db, dxp.sum(axis=(0, 1)), rtol=tol, atol=tol)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", SHAPES)
def test_gru_against_reference(dtype, shape):
    rng = np.random.default_rng(2)
    xproj, h0, w = _inputs(rng, shape, 3, dtype)
    b_rec = rand(rng, (3 * shape[2],), dtype)
    h, gates = compare("gru_forward", xproj, h0, w, b_rec, k=_k(shape))
    compare("gru_forward", xproj, h0, w, None, k=_k(shape))
    dh = rand(rng, h.shape, dtype)
    dl = rand(rng, h0.shape, dtype)
    compare("gru_backward", h0, w, h, gates, dh, dl, k=_k(shape))


@pytest.mark.parametrize("dtype", DTYPES)
def test_layouts(dtype):
    """Fortran-ordered, strided, read-only and unaligned inputs give the same results."""
    rng = np.random.default_rng(3)
    shape = (3, 4, 5)
    xproj, h0, w = _inputs(rng, shape, 4, dtype)
    c0 = rand(rng, h0.shape, dtype)
    h, c, g = REF.lstm_forward(xproj, h0, c0, w)
    dh = rand(rng, h.shape, dtype)
    for name, xv in layouts(xproj):
        compare("lstm_forward", xv, h0, c0, w, k=_k(shape))
    for name, wv in layouts(w):
        compare("lstm_forward", xproj, h0, c0, wv, k=_k(shape))
        compare("lstm_backward", h0, c0, wv, h, c, g, dh, k=_k(shape))
    for name, dv in layouts(dh):
        compare("lstm_backward", h0, c0, w, h, c, g, dv, k=_k(shape))
    xg, _, wg = _inputs(rng, shape, 3, dtype)
    hg, gg = REF.gru_forward(xg, h0, wg)
    for name, hv in layouts(h0):
        compare("gru_forward", xg, hv, wg, k=_k(shape))
        compare("gru_backward", hv, wg, hg, gg, dh, k=_k(shape))


@settings(max_examples=12, deadline=None)
@given(b=st.integers(1, 6), t=st.integers(1, 6), h=st.integers(1, 40),
       dtype=st.sampled_from(DTYPES), cell=st.sampled_from(["lstm", "gru", "tanh"]))
def test_random_shapes(b, t, h, dtype, cell):
    rng = np.random.default_rng(b * 10000 + t * 100 + h)
    shape = (b, t, h)
    if cell == "lstm":
        xproj, h0, w = _inputs(rng, shape, 4, dtype)
        hh, c, g = compare("lstm_forward", xproj, h0, h0, w, k=_k(shape))
        compare("lstm_backward", h0, h0, w, hh, c, g, rand(rng, hh.shape, dtype), k=_k(shape))
    elif cell == "gru":
        xproj, h0, w = _inputs(rng, shape, 3, dtype)
        hh, g = compare("gru_forward", xproj, h0, w, k=_k(shape))
        compare("gru_backward", h0, w, hh, g, rand(rng, hh.shape, dtype), k=_k(shape))
    else:
        xproj, h0, w = _inputs(rng, shape, 1, dtype)
        hh = compare("simple_rnn_forward", xproj, h0, w, k=_k(shape))
        compare("simple_rnn_backward", h0, w, hh, rand(rng, hh.shape, dtype), k=_k(shape))


@pytest.mark.parametrize("be", [C, REF], ids=["c", "reference"])
@pytest.mark.parametrize("activation", ["tanh", "relu"])
def test_simple_rnn_gradients(be, activation):
    rng = np.random.default_rng(4)
    xproj, h0, w = _inputs(rng, (2, 4, 3), 1, np.float64, 0.8)

    def forward(xproj, h0, w):
        h = be.simple_rnn_forward(xproj, h0, w, activation)
        return np.concatenate([h, h[:, -1:]], axis=1)  # the final state counted twice

    def backward(xproj, h0, w, dy):
        h = be.simple_rnn_forward(xproj, h0, w, activation)
        dx, dh0, dw = be.simple_rnn_backward(h0, w, h, dy[:, :-1].copy(), dy[:, -1].copy(),
                                             activation)
        return dx, dh0, dw

    check_grad(forward, backward, [xproj, h0, w])


@pytest.mark.parametrize("be", [C, REF], ids=["c", "reference"])
def test_lstm_gradients(be):
    rng = np.random.default_rng(5)
    xproj, h0, w = _inputs(rng, (2, 4, 3), 4, np.float64, 0.8)
    c0 = rand(rng, h0.shape, np.float64)

    bias = rand(rng, (12,), np.float64)

    def forward(xproj, h0, c0, w, bias):
        h, c, _ = be.lstm_forward(xproj, h0, c0, w, bias)
        return np.concatenate([h, h[:, -1:], c[:, -1:]], axis=1)

    def backward(xproj, h0, c0, w, bias, dy):
        h, c, g = be.lstm_forward(xproj, h0, c0, w, bias)
        return be.lstm_backward(h0, c0, w, h, c, g, dy[:, :-2].copy(), dy[:, -2].copy(),
                                dy[:, -1].copy())

    check_grad(forward, backward, [xproj, h0, c0, w, bias])


@pytest.mark.parametrize("be", [C, REF], ids=["c", "reference"])
def test_gru_gradients(be):
    rng = np.random.default_rng(6)
    xproj, h0, w = _inputs(rng, (2, 4, 3), 3, np.float64, 0.8)
    b_rec = rand(rng, (9,), np.float64)

    def forward(xproj, h0, w, b_rec):
        h, _ = be.gru_forward(xproj, h0, w, b_rec)
        return np.concatenate([h, h[:, -1:]], axis=1)

    def backward(xproj, h0, w, b_rec, dy):
        h, g = be.gru_forward(xproj, h0, w, b_rec)
        return be.gru_backward(h0, w, h, g, dy[:, :-1].copy(), dy[:, -1].copy())

    check_grad(forward, backward, [xproj, h0, w, b_rec])


@pytest.mark.parametrize("be", [C, REF], ids=["c", "reference"])
def test_hand_worked_values(be):
    """One unit, one step, zero recurrent weights: closed forms."""
    s = lambda v: 1 / (1 + np.exp(-v))  # noqa: E731
    x = np.array([[[0.5, -1.0, 2.0, 0.0]]])  # i, f, c, o pre-activations
    h, c, g = be.lstm_forward(x, np.zeros((1, 1)), np.array([[3.0]]), np.zeros((1, 4)))
    c_exp = s(-1.0) * 3.0 + s(0.5) * np.tanh(2.0)
    np.testing.assert_allclose(c[0, 0, 0], c_exp, rtol=1e-14)
    np.testing.assert_allclose(h[0, 0, 0], 0.5 * np.tanh(c_exp), rtol=1e-14)
    # the same step with the pre-activations split between xproj and the bias
    h, c, g = be.lstm_forward(x - 1.0, np.zeros((1, 1)), np.array([[3.0]]), np.zeros((1, 4)),
                              np.ones(4))
    np.testing.assert_allclose(c[0, 0, 0], c_exp, rtol=1e-14)
    # backward of that step with dh = 1: do = tanh(c), db = dxproj
    dx, _, _, _, db = be.lstm_backward(np.zeros((1, 1)), np.array([[3.0]]), np.zeros((1, 4)),
                                       h, c, g, np.ones((1, 1, 1)))
    np.testing.assert_allclose(dx[0, 0, 3], np.tanh(c_exp) * s(0.0) * (1 - s(0.0)),
                               rtol=1e-14)
    np.testing.assert_array_equal(db, dx[0, 0])
    # GRU: z = s(0) = 0.5, r = s(0) = 0.5, n = tanh(1 + 0.5 * b_h) with b_h = 2 -> tanh(2)
    hg, gg = be.gru_forward(np.array([[[0.0, 0.0, 1.0]]]), np.array([[4.0]]),
                            np.zeros((1, 3)), np.array([0.0, 0.0, 2.0]))
    np.testing.assert_allclose(hg[0, 0, 0], 0.5 * 4.0 + 0.5 * np.tanh(2.0), rtol=1e-14)
    np.testing.assert_allclose(gg[0, 0], [0.5, 0.5, np.tanh(2.0), 2.0], rtol=1e-14)
    # SimpleRNN relu: h1 = relu(x1 + 2 h0), h2 = relu(x2 + 2 h1)
    hr = be.simple_rnn_forward(np.array([[[1.0], [-5.0]]]), np.array([[1.0]]),
                               np.array([[2.0]]), "relu")
    np.testing.assert_array_equal(hr[0, :, 0], [3.0, 1.0])


@pytest.mark.parametrize("be", [C, REF], ids=["c", "reference"])
def test_empty_batch_and_sequence(be):
    for b, t in [(0, 3), (2, 0)]:
        x = np.zeros((b, t, 8))
        h0 = np.ones((b, 2))
        h, c, g = be.lstm_forward(x, h0, h0, np.ones((2, 8)))
        assert h.shape == (b, t, 2) and g.shape == (b, t, 8)
        dl = np.full((b, 2), 3.0)
        dx, dh0, dc0, dw, db = be.lstm_backward(h0, h0, np.ones((2, 8)), h, c, g,
                                                np.zeros((b, t, 2)), dl, None)
        assert dx.shape == (b, t, 8)
        np.testing.assert_array_equal(dh0, dl)  # no step: the final state is the initial one
        np.testing.assert_array_equal(dc0, 0)
        np.testing.assert_array_equal(dw, 0)
        np.testing.assert_array_equal(db, 0)


def test_out_arguments_are_used():
    rng = np.random.default_rng(7)
    xproj, h0, w = _inputs(rng, (2, 3, 4), 4, np.float64)
    outs = np.empty((2, 3, 4)), np.empty((2, 3, 4)), np.empty((2, 3, 16))
    res = C.lstm_forward(xproj, h0, h0, w, None, *outs)
    assert all(a is b for a, b in zip(res, outs))
    dw, db = np.empty((4, 16)), np.full(16, np.nan)
    res = C.lstm_backward(h0, h0, w, *outs, np.ones((2, 3, 4)), dw_rec=dw, db=db)
    assert res[3] is dw and res[4] is db
    np.testing.assert_allclose(db, res[0].sum(axis=(0, 1)), rtol=1e-12)


@pytest.mark.parametrize("be", [C, REF], ids=["c", "reference"])
def test_bad_input(be):
    x, h0, w = np.zeros((2, 3, 8)), np.zeros((2, 2)), np.zeros((2, 8))
    with pytest.raises(ValueError, match="3-D"):
        be.lstm_forward(np.zeros((2, 8)), h0, h0, w)
    with pytest.raises(ValueError, match="xproj must have shape"):
        be.lstm_forward(np.zeros((2, 3, 7)), h0, h0, w)
    with pytest.raises(ValueError, match="w_rec must have shape"):
        be.lstm_forward(x, h0, h0, np.zeros((2, 6)))
    with pytest.raises(ValueError, match="h0 must have shape"):
        be.lstm_forward(x, np.zeros((3, 2)), h0, w)
    with pytest.raises(ValueError, match="c0 must have shape"):
        be.lstm_forward(x, h0, np.zeros((2, 3)), w)
    with pytest.raises(TypeError, match="dtype"):
        be.lstm_forward(x.astype(np.float32), h0, h0, w)
    with pytest.raises(TypeError, match="float32 or float64"):
        be.gru_forward(np.zeros((2, 3, 6), np.int64), h0, np.zeros((2, 6)))
    with pytest.raises(ValueError, match="b_rec must have shape"):
        be.gru_forward(np.zeros((2, 3, 6)), h0, np.zeros((2, 6)), np.zeros(5))
    with pytest.raises(ValueError, match="unknown activation"):
        be.simple_rnn_forward(np.zeros((2, 3, 2)), h0, np.zeros((2, 2)), "sigmoid")
    h, c, g = be.lstm_forward(x, h0, h0, w)
    with pytest.raises(ValueError, match="dh must have shape"):
        be.lstm_backward(h0, h0, w, h, c, g, np.zeros((2, 4, 2)))
    with pytest.raises(ValueError, match="gates must have shape"):
        be.lstm_backward(h0, h0, w, h, c, g[..., :4], np.zeros((2, 3, 2)))
    ro = np.zeros((2, 3, 2))
    ro.flags.writeable = False
    with pytest.raises(ValueError, match="read-only"):
        be.lstm_forward(x, h0, h0, w, out_h=ro)
    with pytest.raises(ValueError, match="overlaps"):
        be.lstm_forward(x, h0, h0, w, out_gates=x)
    with pytest.raises(ValueError, match="out_c must have shape"):
        be.lstm_forward(x, h0, h0, w, out_c=np.zeros((2, 3, 3)))
    with pytest.raises(ValueError, match="bias must have shape"):
        be.lstm_forward(x, h0, h0, w, np.zeros(6))
    with pytest.raises(TypeError, match="dtype"):
        be.lstm_forward(x, h0, h0, w, np.zeros(8, np.float32))
    with pytest.raises(ValueError, match="db must have shape"):
        be.lstm_backward(h0, h0, w, h, c, g, np.zeros((2, 3, 2)), db=np.zeros(6))
    with pytest.raises(ValueError, match="overlaps"):
        be.lstm_backward(h0, h0, w, h, c, g, np.zeros((2, 3, 2)), db=g[0, 0])


# -- masks (Keras' padding masks): a step with mask False is skipped ---------------------------
def _mask(rng, b, t):
    m = rng.random((b, t)) > 0.35
    m[0] = False                       # a sample with no real step: h stays h0
    if b > 1:
        m[1] = True
    return m


def _cell_call(be, cell, rng, shape, dtype, mask):
    """(forward outputs, backward outputs) of `cell` with `mask` on backend `be`."""
    b, t, h = shape
    g = {"simple": 1, "lstm": 4, "gru": 3}[cell]
    r = np.random.default_rng(rng)
    xproj, h0, w = _inputs(r, shape, g, dtype)
    c0, dl, dcl = (rand(r, h0.shape, dtype) for _ in range(3))
    bias = rand(r, (g * h,), dtype)
    dh = rand(r, (b, t, h), dtype)
    if cell == "simple":
        hs = be.simple_rnn_forward(xproj, h0, w, mask=mask)
        return (hs,), be.simple_rnn_backward(h0, w, hs, dh, dl, mask=mask)
    if cell == "lstm":
        fw = be.lstm_forward(xproj, h0, c0, w, bias, mask=mask)
        return fw, be.lstm_backward(h0, c0, w, *fw, dh, dl, dcl, mask=mask)
    fw = be.gru_forward(xproj, h0, w, bias, mask=mask)
    return fw, be.gru_backward(h0, w, *fw, dh, dl, mask=mask)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", [(1, 1, 1), (3, 5, 4), (5, 3, 17), (13, 4, 40), (26, 3, 48),
                                   (17, 3, 40)])
@pytest.mark.parametrize("cell", ["simple", "lstm", "gru"])
def test_masked_against_reference(dtype, shape, cell):
    """C against the twin under every arch and thread count (bit-identical across threads);
    an all-True mask gives the unmasked kernels' bits."""
    rng = np.random.default_rng(20)
    mask = _mask(rng, shape[0], shape[1])
    b, t, h = shape
    g = {"simple": 1, "lstm": 4, "gru": 3}[cell]
    xproj, h0, w = _inputs(rng, shape, g, dtype)
    c0 = rand(rng, h0.shape, dtype)
    bias = rand(rng, (g * h,), dtype)
    dh, dl = rand(rng, (b, t, h), dtype), rand(rng, h0.shape, dtype)
    ones = np.ones((b, t), bool)
    if cell == "simple":
        for act in ("tanh", "relu"):
            hs = compare("simple_rnn_forward", xproj, h0, w, act, mask=mask, k=_k(shape))
            compare("simple_rnn_backward", h0, w, hs, dh, dl, act, mask=mask, k=_k(shape))
            np.testing.assert_array_equal(
                C.simple_rnn_backward(h0, w, hs, dh, dl, act, mask=ones)[0],
                C.simple_rnn_backward(h0, w, hs, dh, dl, act)[0])
        plain = C.simple_rnn_forward(xproj, h0, w), C.simple_rnn_forward(xproj, h0, w,
                                                                        mask=np.ones((b, t)))
    elif cell == "lstm":
        fw = compare("lstm_forward", xproj, h0, c0, w, bias, mask=mask, k=_k(shape))
        compare("lstm_backward", h0, c0, w, *fw, dh, dl, dl, mask=mask, k=_k(shape))
        full = C.lstm_forward(xproj, h0, c0, w, bias)
        for a, c in zip(C.lstm_backward(h0, c0, w, *full, dh, dl, dl, mask=ones),
                        C.lstm_backward(h0, c0, w, *full, dh, dl, dl)):
            np.testing.assert_array_equal(a, c)        # beta 1 on carry: the same bits
        plain = (C.lstm_forward(xproj, h0, c0, w, bias),
                 C.lstm_forward(xproj, h0, c0, w, bias, mask=np.ones((b, t), bool)))
    else:
        fw = compare("gru_forward", xproj, h0, w, bias, mask=mask, k=_k(shape))
        compare("gru_backward", h0, w, *fw, dh, dl, mask=mask, k=_k(shape))
        full = C.gru_forward(xproj, h0, w, bias)
        for a, c in zip(C.gru_backward(h0, w, *full, dh, dl, mask=ones),
                        C.gru_backward(h0, w, *full, dh, dl)):
            np.testing.assert_array_equal(a, c)
        plain = C.gru_forward(xproj, h0, w, bias), C.gru_forward(xproj, h0, w, bias,
                                                                 mask=np.ones((b, t), bool))
    for a, c in zip(*(p if isinstance(p, tuple) else (p,) for p in plain)):
        np.testing.assert_array_equal(a, c)


@pytest.mark.parametrize("be", [C, REF], ids=["c", "reference"])
@pytest.mark.parametrize("cell", ["simple", "lstm", "gru"])
def test_masked_steps_are_skipped(be, cell):
    """A masked step carries the state over and its gates are 0; a sample padded on the
    right ends in the state of its real steps run alone; padded on the left, it starts
    from h0; no gradient reaches the inputs of masked steps."""
    rng = np.random.default_rng(21)
    b, t, h, n = 3, 6, 5, 4
    g = {"simple": 1, "lstm": 4, "gru": 3}[cell]
    xproj, h0, w = _inputs(rng, (b, t, h), g, np.float64)
    c0 = rand(rng, h0.shape, np.float64)
    bias = rand(rng, (g * h,), np.float64)
    mask = np.zeros((b, t), bool)
    mask[0, :n] = True                                 # right padding
    mask[1, t - n:] = True                             # left padding
    mask[2, [0, 2, 5]] = True                          # holes

    def run(xp, m, rows):
        if cell == "simple":
            return (be.simple_rnn_forward(xp, h0[rows], w, mask=m),)
        if cell == "lstm":
            return be.lstm_forward(xp, h0[rows], c0[rows], w, bias, mask=m)
        return be.gru_forward(xp, h0[rows], w, bias, mask=m)
    out = run(xproj, mask, slice(None))
    hs = out[0]
    for i, idx in enumerate([list(range(n)), list(range(t - n, t)), [0, 2, 5]]):
        alone = run(np.ascontiguousarray(xproj[i:i + 1, idx]), None, slice(i, i + 1))
        np.testing.assert_allclose(hs[i, idx], alone[0][0], rtol=1e-12, atol=1e-14)
        np.testing.assert_allclose(hs[i, -1], alone[0][0, -1], rtol=1e-12, atol=1e-14)
        skipped = [s for s in range(t) if s not in idx]
        for s in skipped:                              # the state carried over
            np.testing.assert_array_equal(hs[i, s], hs[i, s - 1] if s else h0[i])
            if cell != "simple":
                np.testing.assert_array_equal(out[-1][i, s], 0)      # gates 0
    np.testing.assert_array_equal(hs[1, :t - n], np.broadcast_to(h0[1], (t - n, h)))
    dh = rand(rng, hs.shape, np.float64)
    if cell == "simple":
        dxp = be.simple_rnn_backward(h0, w, hs, dh, mask=mask)[0]
    elif cell == "lstm":
        dxp = be.lstm_backward(h0, c0, w, *out, dh, mask=mask)[0]
    else:
        dxp = be.gru_backward(h0, w, *out, dh, mask=mask)[0]
    np.testing.assert_array_equal(dxp[~mask], 0)
    assert np.abs(dxp[mask]).min() > 0 or cell == "simple"


@pytest.mark.parametrize("be", [C, REF], ids=["c", "reference"])
@pytest.mark.parametrize("cell", ["simple", "lstm", "gru"])
def test_masked_gradients(be, cell):
    """Central differences (float64) through masked forwards, the final states included."""
    rng = np.random.default_rng(22)
    b, t, h = 3, 5, 3
    mask = np.array([[1, 1, 0, 1, 0], [0, 0, 1, 1, 1], [1, 0, 0, 0, 0]], bool)
    g = {"simple": 1, "lstm": 4, "gru": 3}[cell]
    xproj, h0, w = _inputs(rng, (b, t, h), g, np.float64, 0.8)
    c0 = rand(rng, h0.shape, np.float64)
    bias = rand(rng, (g * h,), np.float64)
    if cell == "simple":
        def forward(xproj, h0, w):
            hs = be.simple_rnn_forward(xproj, h0, w, mask=mask)
            return np.concatenate([hs, hs[:, -1:]], axis=1)

        def backward(xproj, h0, w, dy):
            hs = be.simple_rnn_forward(xproj, h0, w, mask=mask)
            return be.simple_rnn_backward(h0, w, hs, dy[:, :-1].copy(), dy[:, -1].copy(),
                                          mask=mask)
        check_grad(forward, backward, [xproj, h0, w])
    elif cell == "lstm":
        def forward(xproj, h0, c0, w, bias):
            hs, c, _ = be.lstm_forward(xproj, h0, c0, w, bias, mask=mask)
            return np.concatenate([hs, hs[:, -1:], c[:, -1:]], axis=1)

        def backward(xproj, h0, c0, w, bias, dy):
            fw = be.lstm_forward(xproj, h0, c0, w, bias, mask=mask)
            return be.lstm_backward(h0, c0, w, *fw, dy[:, :-2].copy(), dy[:, -2].copy(),
                                    dy[:, -1].copy(), mask=mask)
        check_grad(forward, backward, [xproj, h0, c0, w, bias])
    else:
        def forward(xproj, h0, w, bias):
            hs, _ = be.gru_forward(xproj, h0, w, bias, mask=mask)
            return np.concatenate([hs, hs[:, -1:]], axis=1)

        def backward(xproj, h0, w, bias, dy):
            fw = be.gru_forward(xproj, h0, w, bias, mask=mask)
            return be.gru_backward(h0, w, *fw, dy[:, :-1].copy(), dy[:, -1].copy(), mask=mask)
        check_grad(forward, backward, [xproj, h0, w, bias])


@pytest.mark.parametrize("be", [C, REF], ids=["c", "reference"])
def test_bad_masks(be):
    rng = np.random.default_rng(23)
    xproj, h0, w = _inputs(rng, (2, 3, 4), 1, np.float64)
    for bad, msg in ((np.ones((2, 4), bool), "shape"), (np.ones((3, 2), bool), "shape"),
                     (np.full((2, 3), 0.5), "booleans"), (np.full((2, 3), np.nan), "booleans"),
                     (np.array([["a"] * 3] * 2), "booleans")):
        with pytest.raises(ValueError, match=msg):
            be.simple_rnn_forward(xproj, h0, w, mask=bad)
    hs = be.simple_rnn_forward(xproj, h0, w, mask=np.array([[1, 0, 1], [0, 1, 1]]))
    with pytest.raises(ValueError, match="shape"):
        be.simple_rnn_backward(h0, w, hs, hs, mask=np.ones((2, 2), bool))
