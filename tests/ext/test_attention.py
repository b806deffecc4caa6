"""Scaled dot-product attention: C against the NumPy twin (strided head views, causal,
masks, S != T, T = 1), exact values, finite differences, masks really mask, causal cannot
see the future, thread-count independence, bad input."""
import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from helpers import C, REF, assert_close, compare, layouts, rand, check_grad

DTYPES = (np.float32, np.float64)
# (B, H, T, S, D, DV)
SHAPES = [(1, 1, 1, 1, 1, 1), (2, 1, 1, 5, 4, 3), (1, 3, 7, 7, 5, 5), (2, 2, 5, 9, 8, 6),
          (3, 5, 33, 33, 16, 16), (2, 4, 64, 64, 32, 32), (1, 2, 70, 40, 7, 9),
          (1, 1, 3, 0, 4, 2), (1, 2, 83, 101, 4, 3)]  # rows past 64 entries (AVX-512 rows)


def _inputs(rng, shape, dtype):
    B, H, T, S, D, DV = shape
    return (rand(rng, (B, H, T, D), dtype, -2, 2), rand(rng, (B, H, S, D), dtype, -2, 2),
            rand(rng, (B, H, S, DV), dtype))


def test_hand_worked_values():
    # one query, two keys with scores 0 and log 3 (scale 1): probabilities 1/4 and 3/4
    q = np.array([[[[1.0]]]])
    k = np.array([[[[0.0], [np.log(3.0)]]]])
    v = np.array([[[[4.0, 0.0], [8.0, 4.0]]]])
    for be in (C, REF):
        out, p = be.attention_forward(q, k, v, scale=1.0)
        np.testing.assert_allclose(p, [[[[0.25, 0.75]]]], rtol=1e-15)
        np.testing.assert_allclose(out, [[[[7.0, 3.0]]]], rtol=1e-15)
        # causal: query 0 may only see key 0
        out, p = be.attention_forward(q, k, v, causal=True, scale=1.0)
        np.testing.assert_array_equal(p, [[[[1.0, 0.0]]]])
        np.testing.assert_array_equal(out, [[[[4.0, 0.0]]]])


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("causal", [False, True])
def test_against_reference(dtype, shape, causal):
    rng = np.random.default_rng(sum(shape))
    B, H, T, S, D, DV = shape
    q, k, v = _inputs(rng, shape, dtype)
    k_ = max(D, DV, S, T, 1)
    mask = rng.random((B, T, S)) > 0.3
    for m in (None, mask, mask[0].astype(np.float32)):
        out, p = compare("attention_forward", q, k, v, causal, m, k=k_)
        dout = rand(rng, out.shape, dtype)
        compare("attention_backward", q, k, v, p, dout, causal, k=k_ * 4)


@pytest.mark.parametrize("dtype", DTYPES)
def test_layouts_and_head_views(dtype):
    rng = np.random.default_rng(9)
    B, H, T, S, D = 2, 3, 11, 6, 5
    q, k, v = _inputs(rng, (B, H, T, S, D, D), dtype)
    for name, qv in layouts(q):
        compare("attention_forward", qv, k, v, True, k=8)
    for name, kv in layouts(k):
        compare("attention_forward", q, kv, v, False, k=8)
    # heads as strided views of (B, T, H, D) projections, outputs through strides too
    proj = rand(rng, (B, T, H, D), dtype)
    qh = proj.transpose(0, 2, 1, 3)
    kvp = rand(rng, (B, S, H, D), dtype)
    kh = kvp.transpose(0, 2, 1, 3)
    expected, p = REF.attention_forward(np.ascontiguousarray(qh), np.ascontiguousarray(kh),
                                        np.ascontiguousarray(kh))
    outbuf = np.empty((B, T, H, D), dtype)
    got, _ = C.attention_forward(qh, kh, kh, out=outbuf.transpose(0, 2, 1, 3))
    assert got.base is outbuf or np.shares_memory(got, outbuf)
    tol = 1e-5 if dtype == np.float32 else 1e-13
    np.testing.assert_allclose(outbuf.transpose(0, 2, 1, 3), expected, rtol=tol, atol=tol)
    dout = rand(rng, (B, H, T, D), dtype)
    e = REF.attention_backward(np.ascontiguousarray(qh), np.ascontiguousarray(kh),
                               np.ascontiguousarray(kh), p, dout)
    bufs = [np.empty((B, T, H, D), dtype), np.empty((B, S, H, D), dtype),
            np.empty((B, S, H, D), dtype)]
    C.attention_backward(qh, kh, kh, p, dout, dq=bufs[0].transpose(0, 2, 1, 3),
                         dk=bufs[1].transpose(0, 2, 1, 3), dv=bufs[2].transpose(0, 2, 1, 3))
    for bb, ee in zip(bufs, e):
        np.testing.assert_allclose(bb.transpose(0, 2, 1, 3), ee, rtol=tol * 10, atol=tol * 10)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("D", [16, 32, 7])
@pytest.mark.parametrize("causal", [False, True])
def test_heads_of_one_fused_projection(D, causal, dtype):
    """q, k, v as head views of one (B*T, 3*H*D) buffer, as MultiHeadAttention passes them
    (rows of 3*H*D elements, unit column stride: C reads whole-tile rows in place), and
    dq, dk, dv written into column blocks of one gradient buffer."""
    rng = np.random.default_rng(D)
    B, T, H = 3, 37, 2
    qkv = rand(rng, (B * T, 3 * H * D), dtype)
    q, k, v = (qkv[:, i * H * D:(i + 1) * H * D].reshape(B, T, H, D).transpose(0, 2, 1, 3)
               for i in range(3))
    ref = [np.ascontiguousarray(a) for a in (q, k, v)]
    want, p = REF.attention_forward(*ref, causal)
    att = np.empty((B, T, H, D), dtype)
    got, gp = C.attention_forward(q, k, v, causal, out=att.transpose(0, 2, 1, 3))
    assert_close(got, want, dtype, T * D, "forward")
    assert_close(gp, p, dtype, T * D, "probs")
    dout = rand(rng, (B, H, T, D), dtype)
    e = REF.attention_backward(*ref, p, dout, causal)
    dqkv = np.empty_like(qkv)
    views = [dqkv[:, i * H * D:(i + 1) * H * D].reshape(B, T, H, D).transpose(0, 2, 1, 3)
             for i in range(3)]
    C.attention_backward(q, k, v, gp, dout, causal, dq=views[0], dk=views[1], dv=views[2])
    for name, g, w in zip("qkv", views, e):
        assert_close(g, w, dtype, T * D, "d" + name)


@settings(max_examples=15, deadline=None)
@given(B=st.integers(1, 3), H=st.integers(1, 4), T=st.integers(1, 40), S=st.integers(1, 40),
       D=st.integers(1, 12), causal=st.booleans(), dtype=st.sampled_from(DTYPES))
def test_random_shapes(B, H, T, S, D, causal, dtype):
    rng = np.random.default_rng(B + H * 10 + T * 100 + S * 1000)
    q, k, v = _inputs(rng, (B, H, T, S, D, D), dtype)
    out, p = compare("attention_forward", q, k, v, causal, k=max(D, S))
    compare("attention_backward", q, k, v, p, rand(rng, out.shape, dtype), causal,
            k=4 * max(D, S, T))


@pytest.mark.parametrize("causal", [False, True])
def test_backward_by_finite_differences(causal):
    rng = np.random.default_rng(11)
    q, k, v = _inputs(rng, (2, 2, 5, 5, 3, 4), np.float64)
    mask = rng.random((2, 5, 5)) > 0.3
    for be in (C, REF):
        def f(q, k, v):
            return be.attention_forward(q, k, v, causal, mask)[0]

        def grads(q, k, v, dy):
            _, p = be.attention_forward(q, k, v, causal, mask)
            return be.attention_backward(q, k, v, p, dy, causal)
        check_grad(f, grads, [q, k, v], rtol=1e-6, atol=1e-8)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", [(1, 1, 1, 1, 1, 1), (2, 3, 37, 37, 5, 7),
                                   (2, 4, 64, 64, 32, 32), (1, 2, 70, 40, 7, 9)])
@pytest.mark.parametrize("causal", [False, True])
def test_dropout_against_reference(dtype, shape, causal):
    # dropout on the probabilities: out = (P * M) v, M the Dropout kernel's mask over probs'
    # flat indices; probs stay P; every arch and thread count (compare) against the twin
    rng = np.random.default_rng(sum(shape) + 1)
    B, H, T, S, D, DV = shape
    q, k, v = _inputs(rng, shape, dtype)
    mask = rng.random((B, T, S)) > 0.2
    k_ = max(D, DV, S, T, 1)
    drop = dict(dropout=0.3, seed=7, step=3)
    out, p = compare("attention_forward", q, k, v, causal, mask, k=k_, **drop)
    plain_out, plain_p = REF.attention_forward(q, k, v, causal, mask)
    np.testing.assert_array_equal(p, plain_p)                 # probs are not dropped
    m = REF.dropout_mask(p.shape, 0.3, 7, 3, dtype)
    assert_close(out, np.matmul(p * m, v), dtype, k_)
    dout = rand(rng, out.shape, dtype)
    compare("attention_backward", q, k, v, p, dout, causal, k=k_ * 4, **drop)
    for be in (C, REF):                                       # dropout 0: no dropout
        np.testing.assert_array_equal(be.attention_forward(q, k, v, causal, mask,
                                                           dropout=0.0, seed=7, step=3)[0],
                                      be.attention_forward(q, k, v, causal, mask)[0])


@pytest.mark.parametrize("causal", [False, True])
def test_dropout_backward_by_finite_differences(causal):
    rng = np.random.default_rng(13)
    q, k, v = _inputs(rng, (2, 2, 6, 6, 3, 4), np.float64)
    drop = dict(dropout=0.4, seed=2, step=9)
    for be in (C, REF):
        def f(q, k, v):
            return be.attention_forward(q, k, v, causal, **drop)[0]

        def grads(q, k, v, dy):
            _, p = be.attention_forward(q, k, v, causal, **drop)
            return be.attention_backward(q, k, v, p, dy, causal, **drop)
        check_grad(f, grads, [q, k, v], rtol=1e-6, atol=1e-8)


def test_masks_really_mask():
    rng = np.random.default_rng(12)
    q, k, v = _inputs(rng, (2, 3, 6, 8, 4, 5), np.float64)
    mask = np.ones((2, 6, 8), bool)
    mask[:, :, 5] = False            # key 5 hidden from every query
    mask[1, 2, :] = False            # query 2 of batch 1 sees nothing: zeros, not NaN
    for be in (C, REF):
        out, p = be.attention_forward(q, k, v, mask=mask)
        k2, v2 = k.copy(), v.copy()
        k2[:, :, 5] += 100.0
        v2[:, :, 5] = 1e6
        out2, _ = be.attention_forward(q, k2, v2, mask=mask)
        np.testing.assert_array_equal(out, out2)
        assert np.all(p[:, :, :, 5] == 0)
        assert np.all(out[1, :, 2] == 0) and np.all(p[1, :, 2] == 0)
        assert np.all(np.isfinite(out))
        dq, dk, dv = be.attention_backward(q, k, v, p, np.ones_like(out))
        assert np.all(dk[:, :, 5] == 0) and np.all(dv[:, :, 5] == 0)
        assert np.all(dq[1, :, 2] == 0)


def test_causal_cannot_see_the_future():
    rng = np.random.default_rng(13)
    q, k, v = _inputs(rng, (2, 2, 9, 9, 4, 4), np.float64)
    for be in (C, REF):
        out, _ = be.attention_forward(q, k, v, causal=True)
        for t in range(8):
            k2, v2 = k.copy(), v.copy()
            k2[:, :, t + 1:] = rng.standard_normal(k2[:, :, t + 1:].shape)
            v2[:, :, t + 1:] = rng.standard_normal(v2[:, :, t + 1:].shape)
            out2, _ = be.attention_forward(q, k2, v2, causal=True)
            np.testing.assert_array_equal(out[:, :, :t + 1], out2[:, :, :t + 1])
            assert not np.array_equal(out[:, :, t + 1:], out2[:, :, t + 1:])


def test_large_logits_are_stable():
    q = np.full((1, 1, 2, 4), 100.0, np.float32)
    k = np.full((1, 1, 3, 4), 100.0, np.float32)
    k[0, 0, 0] = -100.0
    v = np.arange(12, dtype=np.float32).reshape(1, 1, 3, 4)
    for be in (C, REF):
        out, p = be.attention_forward(q, k, v, scale=1.0)
        assert np.all(np.isfinite(out))
        np.testing.assert_allclose(p[0, 0, 0], [0, 0.5, 0.5])


@pytest.mark.parametrize("be", [C, REF], ids=["c", "reference"])
def test_bad_input(be):
    q, k, v = np.ones((1, 2, 3, 4)), np.ones((1, 2, 5, 4)), np.ones((1, 2, 5, 6))
    with pytest.raises(ValueError, match="4-D"):
        be.attention_forward(q[0], k, v)
    with pytest.raises(ValueError, match="attention needs"):
        be.attention_forward(q, k[..., :3], v)
    with pytest.raises(ValueError, match="attention needs"):
        be.attention_forward(q, k, v[:, :, :4])
    with pytest.raises(TypeError, match="dtype"):
        be.attention_forward(q, k.astype(np.float32), v)
    with pytest.raises(TypeError, match="causal must be a bool"):
        be.attention_forward(q, k, v, causal="yes")
    with pytest.raises(ValueError, match="broadcast to"):
        be.attention_forward(q, k, v, mask=np.ones((1, 3, 4), bool))
    with pytest.raises(ValueError, match="only 0 and 1"):
        be.attention_forward(q, k, v, mask=np.full((3, 5), 0.5))
    with pytest.raises(TypeError, match="mask must be boolean"):
        be.attention_forward(q, k, v, mask=np.array([["a"]]))
    with pytest.raises(ValueError, match="scale must be finite"):
        be.attention_forward(q, k, v, scale=np.inf)
    with pytest.raises(ValueError, match="dropout"):
        be.attention_forward(q, k, v, dropout=1.0)
    with pytest.raises(TypeError, match="seed must be an integer"):
        be.attention_forward(q, k, v, dropout=0.1, seed=1.5)
    with pytest.raises(ValueError, match="step must be in"):
        be.attention_backward(q, k, v, np.ones((1, 2, 3, 5)), np.ones((1, 2, 3, 6)),
                              dropout=0.1, step=-1)
    with pytest.raises(ValueError, match="overlaps"):
        be.attention_forward(q, q, q, out=q)
    # outputs whose elements share memory (a broadcast view) were written element over
    # element: each out value was the last one computed
    shared = np.lib.stride_tricks.as_strided(np.zeros(1), (1, 2, 3, 6), (0, 0, 0, 0),
                                             writeable=True)
    with pytest.raises(ValueError, match="out has elements that share memory"):
        be.attention_forward(q, k, v, out=shared)
    rows = np.lib.stride_tricks.as_strided(np.zeros(6), (1, 2, 3, 6), (0, 0, 0, 8),
                                           writeable=True)
    with pytest.raises(ValueError, match="out has elements that share memory"):
        be.attention_forward(q, k, v, out=rows)
    dk = np.lib.stride_tricks.as_strided(np.zeros(4), (1, 2, 5, 4), (0, 0, 0, 8),
                                         writeable=True)
    with pytest.raises(ValueError, match="dk has elements that share memory"):
        be.attention_backward(q, k, v, np.ones((1, 2, 3, 5)), np.ones((1, 2, 3, 6)), dk=dk)
    ro = np.empty((1, 2, 3, 6))
    ro.flags.writeable = False
    with pytest.raises(ValueError, match="read-only"):
        be.attention_forward(q, k, v, out=ro)
    with pytest.raises(ValueError, match="probs must have shape"):
        be.attention_backward(q, k, v, np.ones((1, 2, 3, 4)), np.ones((1, 2, 3, 6)))
    with pytest.raises(ValueError, match="dout must have shape"):
        be.attention_backward(q, k, v, np.ones((1, 2, 3, 5)), np.ones((1, 2, 3, 4)))


@pytest.mark.parametrize("dtype", DTYPES)
def test_nan_scores_give_nan_not_a_masked_row(dtype):
    # a query whose allowed scores are all NaN gives NaN (C returned the zeros of a row with
    # nothing allowed); masked rows still give zeros
    q = np.ones((1, 1, 3, 2), dtype)
    q[0, 0, 0, 0] = np.nan
    k = np.ones((1, 1, 3, 2), dtype)
    mask = np.array([[[True] * 3, [True] * 3, [False] * 3]])
    out, p = compare("attention_forward", q, k, k, False, mask, k=4)
    assert np.isnan(out[0, 0, 0]).all() and np.isnan(p[0, 0, 0]).all()
    assert (out[0, 0, 2] == 0).all() and np.isfinite(out[0, 0, 1]).all()


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("with_mask", [False, True])
def test_nan_and_inf_scores_spoil_only_the_allowed_entries(dtype, with_mask):
    """One NaN or +inf among a row's allowed scores makes that row's allowed probabilities
    NaN (C and the twin alike, on every arch, with and without a mask); disallowed entries,
    causal or masked, stay exactly 0 (the compiled rows once scaled them by the row's NaN
    inverse sum); rows without such scores are untouched. S = 20: rows end mid-vector."""
    S = 20
    rng = np.random.default_rng(7)
    q = np.ones((1, 2, S, 1), dtype)
    k = rand(rng, (1, 2, S, 1), dtype)
    v = rand(rng, (1, 2, S, 3), dtype)
    k[0, 0, 2, 0] = np.nan              # head 0: rows t >= 2 see a NaN score
    k[0, 1, 5, 0] = np.inf              # head 1: rows t >= 5 see +inf
    mask = None
    if with_mask:
        mask = np.ones((1, S, S), bool)
        mask[0, :, 7] = False           # column 7 masked for every row
        mask[0, 3, :] = False           # row 3 sees nothing
    _, p = compare("attention_forward", q, k, v, True, mask, 1.0, k=S + 1)
    allowed = np.tri(S, S, dtype=bool) if mask is None else np.tri(S, S, dtype=bool) & mask[0]
    for h, bad in ((0, 2), (1, 5)):
        for t in range(S):
            row, ok = p[0, h, t], allowed[t]
            assert (row[~ok] == 0).all(), (h, t)
            if t >= bad and ok[bad]:
                assert np.isnan(row[ok]).all(), (h, t)
            else:
                assert np.isfinite(row).all(), (h, t)


@pytest.mark.skipif("avx512" not in __import__("helpers").ARCHS, reason="needs AVX-512")
@pytest.mark.parametrize("causal", [False, True])
def test_avx512_softmax_rows_match_compiled_rows(causal):
    # float rows without a mask run four at a time on AVX-512 intrinsics, and one at a time
    # from a group with a row that has no finite score; the AVX2 build runs the compiled
    # rows on the same scores (both products use FMAs in the same order): the probabilities
    # agree bit for bit, for row lengths around the 16-lane groups and past 64, and so do the
    # gradients
    import pynn
    rng = np.random.default_rng(11)
    for T, S in [(1, 1), (4, 4), (5, 3), (7, 16), (9, 17), (13, 33), (16, 48), (21, 63),
                 (66, 64), (67, 65), (8, 80), (40, 7)]:
        q, k, v = _inputs(rng, (2, 2, T, S, 3, 2), np.float32)
        k[..., 0] = np.abs(k[..., 0]) + 0.5
        q[0, 1, min(2, T - 1), 0] = -np.inf       # a row of -inf scores
        q[1, 0, T // 2, 1] = np.nan               # a row of NaN scores
        got, grads = {}, {}
        dout = rand(rng, (2, 2, T, 2), np.float32)
        for arch in ("avx2", "avx512"):
            with pynn.arch(arch):
                got[arch] = C.attention_forward(q, k, v, causal=causal)[1]
                # the backward's softmax Jacobian rows also run four at a time there
                grads[arch] = C.attention_backward(q, k, v, got[arch], dout, causal=causal)
        assert np.array_equal(got["avx2"], got["avx512"], equal_nan=True), (T, S)
        for g2, g5 in zip(grads["avx2"], grads["avx512"]):
            assert np.array_equal(g2, g5, equal_nan=True), (T, S)
        p = got["avx512"]
        assert not p[0, 1, min(2, T - 1)].any()   # nothing finite: zeros
        assert np.isnan(p[1, 0, T // 2, :(T // 2 + 1 if causal else S)]).all()
        others = np.delete(p.reshape(4 * T, S), [1 * T + min(2, T - 1), 2 * T + T // 2], 0)
        np.testing.assert_allclose(others.sum(-1), 1.0, rtol=1e-5)
