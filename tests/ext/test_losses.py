"""Losses: C kernels against the NumPy twin, central differences, hand-worked values,
stability for logits of magnitude 1e4, bad input in both backends."""
import math
import zlib

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

import pynn
from helpers import ARCHS, C, REF, THREADS, check_grad, compare, layouts

DTYPES = (np.float32, np.float64)
BACKENDS = pytest.mark.parametrize("be", [C, REF], ids=["c", "reference"])
ELEMENTWISE = ("mse", "mae", "binary_crossentropy", "binary_crossentropy_logits")
DENSE_CAT = ("categorical_crossentropy", "softmax_categorical_crossentropy")
SPARSE = ("sparse_categorical_crossentropy", "softmax_cross_entropy")
LOSSES = ELEMENTWISE + DENSE_CAT + SPARSE
EPS_LOSSES = ("binary_crossentropy", "categorical_crossentropy", "sparse_categorical_crossentropy")
# mse/mae/bce take any (B, ...): 1-D, 2-D and 3-D, B in {0, 1, prime, large}; the last one
# is big enough for two threads. Categorical ones take (B, K), K in {1, 2, prime}, and wide
# rows that take the C kernels' lane-split max and blocked exp-sum paths (K = 33 is the first
# lane-split row, 257 crosses an exp block, 1000 several).
ELEM_SHAPES = [(0,), (0, 3), (1,), (1, 1), (13,), (1, 7), (7, 2), (13, 5), (31, 3, 4),
               (1031, 29)]
CAT_SHAPES = [(0, 3), (1, 1), (1, 2), (13, 7), (31, 2), (17, 1), (517, 10), (2053, 17),
              (7, 33), (5, 257), (3, 1000)]


def _softmax(z):
    e = np.exp(z - z.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


def make_inputs(loss, shape, dtype, rng):
    """(prediction, target) for `loss`: probabilities with a few exact 0/1 (clipped) where
    the loss takes probabilities, logits of spread 3 otherwise; soft or hard targets."""
    if loss in ("mse", "mae"):
        return (rng.standard_normal(shape).astype(dtype),
                rng.standard_normal(shape).astype(dtype))
    if loss == "binary_crossentropy":
        p = rng.uniform(0, 1, shape)
        p.reshape(-1)[::7] = 0.0
        p.reshape(-1)[3::11] = 1.0
        return p.astype(dtype), rng.uniform(0, 1, shape).round(1).astype(dtype)
    if loss == "binary_crossentropy_logits":
        return ((3 * rng.standard_normal(shape)).astype(dtype),
                rng.uniform(0, 1, shape).round(1).astype(dtype))
    B, K = shape
    z = 3 * rng.standard_normal(shape)
    if loss in SPARSE:
        y = rng.integers(0, K, B)
    else:
        y = rng.uniform(0, 1, shape)
        y[::2] = np.eye(K)[rng.integers(0, K, B)][::2]  # every other row one-hot
        y[1::4] /= y[1::4].sum(axis=1, keepdims=True)   # some soft rows sum to 1, some not
    if loss.startswith("softmax"):
        return z.astype(dtype), y if loss in SPARSE else y.astype(dtype)
    p = _softmax(z)
    if K > 1:
        p.reshape(-1)[5::13] = 0.0  # clipped entries (never a whole row)
    p[3::5] *= 1.7  # rows that do not sum to 1 (renormalised, as in Keras)
    return p.astype(dtype), y if loss in SPARSE else y.astype(dtype)


@pytest.mark.parametrize("weighted", [False, True], ids=["unweighted", "weighted"])
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("loss,shape", [
    pytest.param(loss, shape, id=f"{loss}-{'x'.join(map(str, shape))}")
    for group, shapes in ((ELEMENTWISE, ELEM_SHAPES), (DENSE_CAT + SPARSE, CAT_SHAPES))
    for loss in group for shape in shapes])
def test_against_reference(loss, shape, dtype, weighted):
    rng = np.random.default_rng(zlib.crc32(repr((loss, shape)).encode()))
    x, t = make_inputs(loss, shape, dtype, rng)
    B, D = shape[0], int(np.prod(shape[1:]))
    w = rng.uniform(0, 2, B).astype(dtype) if weighted else None
    targets = [t] * 5 if loss in SPARSE else [v for _, v in layouts(t)]
    for (_, xv), tv in zip(layouts(x), targets):
        compare(loss + "_forward", xv, tv, k=B * D, sample_weight=w)
        compare(loss + "_backward", xv, tv, k=D, sample_weight=w)


@pytest.mark.parametrize("loss", LOSSES)
def test_strided_weights_and_eps(loss):
    rng = np.random.default_rng(3)
    x, t = make_inputs(loss, (23, 6), np.float64, rng)
    w = rng.uniform(0, 2, 46)[::2]  # strided (B,)
    kw = {"eps": 1e-3} if loss in EPS_LOSSES else {}
    compare(loss + "_forward", x, t, k=138, sample_weight=w, **kw)
    compare(loss + "_backward", x, t, k=6, sample_weight=w, **kw)
    if loss not in SPARSE:  # transposed targets
        compare(loss + "_forward", x, np.ascontiguousarray(t.T).T, k=138, sample_weight=w)


@settings(max_examples=25, deadline=None)
@given(loss=st.sampled_from(LOSSES), b=st.integers(0, 70), k=st.integers(1, 40),
       dtype=st.sampled_from(DTYPES), weighted=st.booleans())
def test_random_shapes(loss, b, k, dtype, weighted):
    rng = np.random.default_rng(b * 1000 + k)
    x, t = make_inputs(loss, (b, k), dtype, rng)
    w = rng.uniform(0, 2, b).astype(dtype) if weighted else None
    compare(loss + "_forward", x, t, k=b * k, sample_weight=w)
    compare(loss + "_backward", x, t, k=k, sample_weight=w)


def _grad_inputs(loss, shape, rng):
    """float64 inputs away from kinks and clip bounds (central differences need smoothness)."""
    if loss in ("mse", "mae"):
        t = rng.standard_normal(shape)
        return t + rng.choice([-1, 1], shape) * rng.uniform(0.01, 1, shape), t
    if loss == "binary_crossentropy":
        return rng.uniform(0.05, 0.95, shape), rng.uniform(0, 1, shape)
    if loss in ("categorical_crossentropy", "sparse_categorical_crossentropy"):
        p = rng.uniform(0.2, 1.0, shape)  # unnormalised on purpose: q = p / S stays unclipped
        t = rng.integers(0, shape[1], shape[0]) if loss in SPARSE else rng.uniform(0, 1, shape)
        return p, t
    x, t = make_inputs(loss, shape, np.float64, rng)
    return x, t


@BACKENDS
@pytest.mark.parametrize("weighted", [False, True], ids=["unweighted", "weighted"])
@pytest.mark.parametrize("loss", LOSSES)
def test_gradient_vs_central_differences(be, loss, weighted):
    rng = np.random.default_rng(7)
    shape = (2, 3, 2) if loss in ELEMENTWISE else (4, 5)
    x, t = _grad_inputs(loss, shape, rng)
    w = rng.uniform(0.5, 2, shape[0]) if weighted else None
    fwd, bwd = getattr(be, loss + "_forward"), getattr(be, loss + "_backward")
    check_grad(lambda x: fwd(x, t, sample_weight=w),
               lambda x, dy: (dy * bwd(x, t, sample_weight=w),), [x])


@BACKENDS
def test_bce_gradient_is_zero_where_clipped(be):
    p = np.array([[0.0, 1e-9, 0.5, 1.0 - 1e-9, 1.0]])
    t = np.array([[1.0, 1.0, 1.0, 0.0, 0.0]])
    g = be.binary_crossentropy_backward(p, t)
    np.testing.assert_array_equal(g[0, [0, 1, 3, 4]], 0.0)
    assert g[0, 2] == pytest.approx((0.5 - 1) / 0.25 / 5, rel=1e-15)
    # the clipped value: -log(eps) for a certain miss
    assert be.binary_crossentropy_forward(p[:, :1], t[:, :1]) == pytest.approx(-math.log(1e-7))


@BACKENDS
@pytest.mark.parametrize("dtype", DTYPES)
def test_hand_worked_values(be, dtype):
    tol = dict(rel=1e-6 if dtype == np.float32 else 1e-14)
    a = lambda v: np.array(v, dtype)  # noqa: E731
    p, t = a([[1, 2], [3, 4]]), a([[1, 1], [1, 1]])
    # squared errors 0 1 / 4 9: per-sample means 0.5, 6.5
    assert be.mse_forward(p, t) == pytest.approx(3.5, **tol)
    assert be.mse_forward(p, t, sample_weight=a([1, 0])) == pytest.approx(0.25, **tol)
    np.testing.assert_allclose(be.mse_backward(p, t), [[0, 0.5], [1, 1.5]], rtol=1e-6)
    np.testing.assert_allclose(be.mse_backward(p, t, sample_weight=a([2, 0])),
                               [[0, 1], [0, 0]], rtol=1e-6)
    assert be.mae_forward(p, t) == pytest.approx(1.5, **tol)
    np.testing.assert_array_equal(be.mae_backward(p, t), [[0, 0.25], [0.25, 0.25]])
    # 1-D: each element is a sample
    assert be.mse_forward(a([1, -1, 3]), a([0, 0, 0])) == pytest.approx(11 / 3, **tol)
    # 3-D (B, T, C): mean over T and C, then weights over B
    x3 = np.zeros((2, 2, 2), dtype)
    x3[1] = 2
    assert be.mse_forward(x3, np.zeros_like(x3), sample_weight=a([5, 0.5])) == \
        pytest.approx(0.5 * 4 / 2, **tol)
    ln2 = math.log(2)
    half = np.full((3, 2), 0.5, dtype)
    assert be.binary_crossentropy_forward(half, a([[0, 1], [1, 1], [0.3, 0]])) == \
        pytest.approx(ln2, **tol)
    assert be.binary_crossentropy_forward(a([[0.9]]), a([[1]])) == \
        pytest.approx(-math.log(0.9), **tol)
    assert be.binary_crossentropy_logits_forward(np.zeros((3, 2), dtype), half) == \
        pytest.approx(ln2, **tol)
    np.testing.assert_allclose(be.binary_crossentropy_logits_backward(
        np.zeros((2, 1), dtype), a([[0], [1]])), [[0.25], [-0.25]], rtol=1e-6)
    # uniform 2-class cross-entropy is log 2 in every form
    onehot, labels = a([[1, 0], [0, 1], [1, 0]]), np.array([0, 1, 0])
    assert be.categorical_crossentropy_forward(half, onehot) == pytest.approx(ln2, **tol)
    assert be.sparse_categorical_crossentropy_forward(half, labels) == pytest.approx(ln2, **tol)
    zeros = np.zeros((3, 2), dtype)
    assert be.softmax_cross_entropy_forward(zeros, labels) == pytest.approx(ln2, **tol)
    assert be.softmax_categorical_crossentropy_forward(zeros, onehot) == \
        pytest.approx(ln2, **tol)
    np.testing.assert_allclose(be.softmax_cross_entropy_backward(zeros, labels),
                               (0.5 - onehot) / 3, rtol=1e-6)
    np.testing.assert_allclose(be.softmax_categorical_crossentropy_backward(zeros, onehot),
                               (0.5 - onehot) / 3, rtol=1e-6)
    # Keras renormalises probabilities: [1, 3] is [0.25, 0.75]
    assert be.sparse_categorical_crossentropy_forward(a([[1, 3]]), [1]) == \
        pytest.approx(-math.log(0.75), **tol)
    assert be.categorical_crossentropy_forward(a([[1, 3]]), a([[0.5, 0.5]])) == \
        pytest.approx(-0.5 * (math.log(0.25) + math.log(0.75)), **tol)
    # a prediction of 0 for the true class is clipped to eps
    assert be.sparse_categorical_crossentropy_forward(a([[0, 1]]), [0], eps=1e-3) == \
        pytest.approx(-math.log(1e-3), rel=1e-5)
    # K = 1: softmax is 1, the loss 0 and its gradient 0
    assert be.softmax_cross_entropy_forward(a([[3.0], [-2.0]]), [0, 0]) == 0.0
    np.testing.assert_array_equal(be.softmax_cross_entropy_backward(a([[3.0]]), [0]), [[0.0]])


@BACKENDS
@pytest.mark.parametrize("dtype", DTYPES)
def test_logits_of_magnitude_1e4(be, dtype):
    z = np.array([[1e4, -1e4, 0.0], [1e4, -1e4, 0.0], [1e4, -1e4, 0.0], [-1e4, -1e4, -1e4]],
                 dtype)
    labels = np.array([0, 1, 2, 1])
    # analytic: l = logsumexp(z) - z_y = [0, 2e4, 1e4, log 3]
    expected = [0.0, 2e4, 1e4, math.log(3)]
    assert be.softmax_cross_entropy_forward(z, labels) == pytest.approx(np.mean(expected),
                                                                        rel=1e-7)
    for i in range(4):
        assert be.softmax_cross_entropy_forward(z[i:i + 1], labels[i:i + 1]) == \
            pytest.approx(expected[i], rel=1e-7, abs=1e-7)
    g = be.softmax_cross_entropy_backward(z, labels)
    assert np.all(np.isfinite(g))
    np.testing.assert_allclose(g * 4, [[0, 0, 0], [1, -1, 0], [1, 0, -1],
                                       [1 / 3, -2 / 3, 1 / 3]], atol=1e-6)
    onehot = np.eye(3, dtype=dtype)[labels]
    assert be.softmax_categorical_crossentropy_forward(z, onehot) == \
        pytest.approx(np.mean(expected), rel=1e-7)
    np.testing.assert_allclose(be.softmax_categorical_crossentropy_backward(z, onehot), g,
                               atol=1e-7)
    # random large logits against float64 logsumexp
    rng = np.random.default_rng(0)
    zr = (1e4 * rng.uniform(-1, 1, (50, 7))).astype(dtype)
    yr = rng.integers(0, 7, 50)
    z64 = zr.astype(np.float64)
    m = z64.max(axis=1)
    ref = np.mean(m + np.log(np.exp(z64 - m[:, None]).sum(axis=1)) - z64[np.arange(50), yr])
    assert be.softmax_cross_entropy_forward(zr, yr) == pytest.approx(ref, rel=1e-6)
    # wide rows with the maximum in the tail lanes and masked (-inf) logits
    zw = rng.uniform(-5, 5, (4, 1001)).astype(dtype)
    zw[:, 1000] = 50
    zw[:, 17::3] = -np.inf
    yw = np.array([1000, 0, 2, 999])
    z64 = zw.astype(np.float64)
    lse = 50 + np.log(np.exp(z64 - 50).sum(axis=1))
    assert be.softmax_cross_entropy_forward(zw, yw) == \
        pytest.approx(np.mean(lse - z64[np.arange(4), yw]), rel=1e-6)
    gw = be.softmax_cross_entropy_backward(zw, yw)
    expect = (np.exp(z64 - lse[:, None]) - np.eye(1001)[yw]) / 4
    np.testing.assert_allclose(gw, expect, atol=1e-7)
    # binary cross-entropy from logits: max(z, 0) - z y exactly, finite gradient
    zb = np.array([[1e4, -1e4, 1e4, -1e4]], dtype)
    yb = np.array([[0, 1, 1, 0]], dtype)
    assert be.binary_crossentropy_logits_forward(zb, yb) == pytest.approx(1e4 / 2, rel=1e-7)
    np.testing.assert_allclose(be.binary_crossentropy_logits_backward(zb, yb),
                               [[0.25, -0.25, 0, 0]], atol=1e-7)


@pytest.mark.parametrize("weighted", [False, True], ids=["unweighted", "weighted"])
@pytest.mark.parametrize("dtype", DTYPES)
def test_mse_backward_near_overflow(dtype, weighted):
    """Differences above half the dtype's max: the gradient is (2 s) (y_pred - y_true) in both
    backends, finite where it is representable (C computed 2 (y_pred - y_true) first: inf
    where the twin was finite), and the same bits; a difference that overflows itself is
    inf in both."""
    big = np.finfo(dtype).max * np.asarray(0.9, dtype)  # 3.06e38 in float32
    x = np.array([[big, -big, 1, big / 2, 0, big]], dtype)
    t = np.array([[0, 0, 0, -big / 2, 0, -big]], dtype)  # last: big - (-big) overflows
    w = np.array([3.0], dtype) if weighted else None
    s = dtype(3.0 if weighted else 1.0) / dtype(6)
    with np.errstate(over="ignore"):  # the last difference overflows
        expect = (2 * s) * (x - t)
        ref = REF.mse_backward(x, t, sample_weight=w)
    assert np.isfinite(expect[0, :5]).all() and np.isinf(expect[0, 5])
    np.testing.assert_array_equal(ref, expect)
    for arch in ARCHS:
        for nt in THREADS:
            with pynn.arch(arch), pynn.num_threads(nt):
                got = C.mse_backward(x, t, sample_weight=w)
            np.testing.assert_array_equal(got, ref, err_msg=f"arch={arch} threads={nt}")


def _assert_same_values(got, expected, dtype, what):
    """Equal non-finite positions (inf of one sign, NaN), finite values within tolerance."""
    got, expected = np.asarray(got), np.asarray(expected)
    assert got.shape == expected.shape and got.dtype == expected.dtype, what
    np.testing.assert_array_equal(np.isnan(got), np.isnan(expected), err_msg=what + " NaN")
    inf = np.isinf(expected)
    np.testing.assert_array_equal(got[inf], expected[inf], err_msg=what + " inf")
    fin = np.isfinite(expected)
    np.testing.assert_array_equal(np.isfinite(got), fin, err_msg=what + " finite")
    scale = max(1.0, float(np.max(np.abs(expected[fin])))) if fin.any() else 1.0
    r = 4 * np.finfo(dtype).eps * 16
    np.testing.assert_allclose(got[fin], expected[fin], rtol=r, atol=r * scale, err_msg=what)


@pytest.mark.parametrize("eps", [1e-7, 1e-3, 0.0])
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("loss", ["categorical_crossentropy", "sparse_categorical_crossentropy"])
def test_categorical_edge_rows_parity(loss, dtype, eps):
    """Zero probabilities (clipped, or log 0 with eps = 0), rows that do not sum to 1, a row
    of zeros (S = 0: NaN), a negative entry and denormal rows: C gives the twin's values,
    infinities and NaNs included, forward and backward, for every arch and thread count."""
    p = np.array([[0.0, 0.3, 0.7], [0.5, 0.5, 0.0], [0.0, 0.0, 1.0], [0.2, 0.6, 1.4],
                  [2.0, 0.0, 0.0], [1e-9, 1e-9, 1e-9], [0.0, 0.0, 0.0], [-0.5, 1.0, 0.5],
                  [1e-40, 0.0, 3e-40], [3.0, 1.0, 1e-30]], dtype)
    y = np.array([0, 2, 2, 1, 1, 0, 1, 1, 2, 2])
    t = np.eye(3, dtype=dtype)[y]
    t[3] = [0.2, 0.5, 0.1]  # a soft row that does not sum to 1
    t[4] = [0.5, 0.5, 0.0]
    tgt = y if loss.startswith("sparse") else t
    w = np.linspace(0.5, 2.0, len(p)).astype(dtype)
    with np.errstate(all="ignore"):
        for sw in (None, w):
            for rows in (slice(None), slice(0, 6), slice(9, 10)):  # finite rows alone too
                args = (p[rows], tgt[rows])
                sws = None if sw is None else sw[rows]
                what = f"{loss} {np.dtype(dtype).name} eps={eps} rows={rows}"
                ef = getattr(REF, loss + "_forward")(*args, sample_weight=sws, eps=eps)
                eb = getattr(REF, loss + "_backward")(*args, sample_weight=sws, eps=eps)
                for arch in ARCHS:
                    for nt in THREADS:
                        with pynn.arch(arch), pynn.num_threads(nt):
                            gf = getattr(C, loss + "_forward")(*args, sample_weight=sws, eps=eps)
                            gb = getattr(C, loss + "_backward")(*args, sample_weight=sws,
                                                                eps=eps)
                        _assert_same_values(np.float64(gf), np.float64(ef), dtype, what + " fwd")
                        _assert_same_values(gb, eb, dtype, what + " bwd")


@BACKENDS
@pytest.mark.parametrize("loss", LOSSES)
def test_empty_batch(be, loss):
    shape = (0, 4)
    x = np.zeros(shape)
    t = np.zeros(0, np.int64) if loss in SPARSE else np.zeros(shape)
    assert getattr(be, loss + "_forward")(x, t) == 0.0
    g = getattr(be, loss + "_backward")(x, t, sample_weight=np.zeros(0))
    assert g.shape == shape and g.dtype == np.float64


@BACKENDS
@pytest.mark.parametrize("loss", LOSSES)
def test_out_and_in_place(be, loss):
    rng = np.random.default_rng(5)
    x, t = make_inputs(loss, (9, 4), np.float32, rng)
    expected = getattr(REF, loss + "_backward")(x, t)
    out = np.full_like(x, np.nan)
    assert getattr(be, loss + "_backward")(x, t, out=out) is out
    np.testing.assert_allclose(out, expected, rtol=1e-5, atol=1e-7)
    xi = x.copy()
    assert getattr(be, loss + "_backward")(xi, t, out=xi) is xi  # gradient over the input
    np.testing.assert_allclose(xi, expected, rtol=1e-5, atol=1e-7)


@BACKENDS
@pytest.mark.parametrize("loss", ELEMENTWISE + DENSE_CAT)
def test_bad_dense_input(be, loss):
    fwd, bwd = getattr(be, loss + "_forward"), getattr(be, loss + "_backward")
    x, t = np.full((3, 4), 0.5), np.full((3, 4), 0.5)
    with pytest.raises(TypeError, match="float32 or float64"):
        fwd(x.astype(np.int32), t)
    with pytest.raises(TypeError, match="ndarray"):
        fwd(x.tolist(), t)
    with pytest.raises(TypeError, match="dtype"):
        fwd(x, t.astype(np.float32))
    with pytest.raises(ValueError, match=r"\(3, 4\), received \(3, 5\)"):
        fwd(x, np.full((3, 5), 0.5))
    with pytest.raises(ValueError, match=r"\(3, 4\), received \(4, 3\)"):
        bwd(x, t.T)
    for bad in (np.nan, np.inf):
        tb = t.copy()
        tb[1, 2] = bad
        with pytest.raises(ValueError, match="y_true contains NaN or infinity"):
            fwd(x, tb)
        with pytest.raises(ValueError, match="y_true contains NaN or infinity"):
            bwd(x, tb)
    with pytest.raises(ValueError, match="at least one"):
        fwd(np.ones((3, 0)), np.ones((3, 0)))
    with pytest.raises(ValueError, match="dimension|2-D"):
        fwd(np.array(0.5), np.array(0.5))
    if loss in DENSE_CAT:
        with pytest.raises(ValueError, match="2-D"):
            fwd(np.ones((2, 3, 4)) / 4, np.ones((2, 3, 4)))
    _check_weights_and_out(fwd, bwd, x, t, loss)


@BACKENDS
@pytest.mark.parametrize("loss", SPARSE)
def test_bad_labels(be, loss):
    fwd, bwd = getattr(be, loss + "_forward"), getattr(be, loss + "_backward")
    x = np.full((4, 3), 1 / 3)
    for f in (fwd, bwd):
        with pytest.raises(ValueError, match=r"in \[0, 3\)"):
            f(x, np.array([0, 1, 2, 3]))
        with pytest.raises(ValueError, match=r"in \[0, 3\)"):
            f(x, np.array([0, -1, 2, 2]))
        with pytest.raises(ValueError, match="NaN"):
            f(x, np.array([0, np.nan, 2, 2]))
        with pytest.raises(ValueError, match="whole numbers"):
            f(x, np.array([0, 0.5, 2, 2]))
        with pytest.raises(ValueError, match=r"shape \(4,\)"):
            f(x, np.array([0, 1]))
        with pytest.raises(ValueError, match=r"shape \(4,\)"):
            f(x, np.zeros((4, 3)))  # one-hot targets belong to the categorical losses
        with pytest.raises(TypeError, match="integers"):
            f(x, np.array(["a", "b", "c", "d"]))
        with pytest.raises(ValueError, match="2-D"):
            f(np.ones(4), np.zeros(4, np.int64))
        with pytest.raises(ValueError, match="at least one class"):
            f(np.ones((4, 0)), np.zeros(4, np.int64))
    assert fwd(x, np.array([0.0, 1.0, 2.0, 2.0])) == fwd(x, np.array([0, 1, 2, 2]))  # whole floats
    _check_weights_and_out(fwd, bwd, x, np.array([0, 1, 2, 2]), loss)


def _check_weights_and_out(fwd, bwd, x, t, loss):
    B = x.shape[0]
    with pytest.raises(ValueError, match=rf"sample_weight must have shape \({B},\)"):
        fwd(x, t, sample_weight=np.ones(B + 1))
    with pytest.raises(ValueError, match="1-D"):
        fwd(x, t, sample_weight=np.ones((B, 1)))
    with pytest.raises(TypeError, match="sample_weight has dtype float32"):
        fwd(x, t, sample_weight=np.ones(B, np.float32))
    with pytest.raises(ValueError, match="sample_weight contains NaN"):
        bwd(x, t, sample_weight=np.array([1.0] * (B - 1) + [np.nan]))
    if loss in EPS_LOSSES:
        for eps in (-1e-7, 0.5, float("nan")):
            with pytest.raises(ValueError, match="eps"):
                fwd(x, t, eps=eps)
        with pytest.raises(TypeError, match="eps"):
            bwd(x, t, eps="small")
        # None is not "no clipping" (that is eps=0.0): C read it as 0 and returned inf/NaN
        # where the twin refused it
        with pytest.raises(TypeError, match="eps must be a real number, received None"):
            fwd(x, t, eps=None)
        with pytest.raises(TypeError, match="eps must be a real number, received None"):
            bwd(x, t, eps=None)
    with pytest.raises(ValueError, match="shape"):
        bwd(x, t, out=np.empty((B, 5)))
    with pytest.raises(TypeError, match="dtype"):
        bwd(x, t, out=np.empty(x.shape, np.float32))
    ro = np.empty(x.shape)
    ro.flags.writeable = False
    with pytest.raises(ValueError, match="read-only"):
        bwd(x, t, out=ro)
    with pytest.raises(ValueError, match="C-contiguous"):
        bwd(x, t, out=np.empty(x.shape[::-1]).T)
    buf = np.empty((B + 1,) + x.shape[1:])
    buf[:B] = x
    with pytest.raises(ValueError, match="overlaps"):  # out shifted one row against y_pred
        bwd(buf[:B], t, out=buf[1:])
    if t.dtype.kind == "f":
        tt = t.copy()
        with pytest.raises(ValueError, match="overlaps"):
            bwd(x, tt, out=tt)
    w = np.ones(B + x.size)
    with pytest.raises(ValueError, match="overlaps"):
        bwd(x, t, sample_weight=w[:B], out=w[:x.size].reshape(x.shape))


@pytest.mark.parametrize("loss", LOSSES)
def test_broadcast_and_reversed_views(loss):
    """Zero strides (np.broadcast_to targets and weights) and negative strides pass by
    strides, without copies, and give the reference's answer."""
    rng = np.random.default_rng(11)
    x, t = make_inputs(loss, (12, 5), np.float64, rng)
    w = np.broadcast_to(np.float64(0.75), (12,))
    xr = x[::-1, ::-1]
    if loss in SPARSE:
        tb = t[::-1]
    else:
        tb = np.broadcast_to(t[0], t.shape)
    compare(loss + "_forward", xr, tb, k=60, sample_weight=w)
    compare(loss + "_backward", xr, tb, k=5, sample_weight=w[::-1])


@pytest.mark.parametrize("be", [C, REF], ids=["c", "reference"])
def test_out_overlapping_the_labels_is_refused(be):
    # labels are read while out is written (C crashed reading overwritten labels)
    out = np.zeros((1000, 2))
    labels = out.view(np.int64).reshape(-1)[:1000]
    with pytest.raises(ValueError, match="overlaps"):
        be.sparse_categorical_crossentropy_backward(np.random.rand(1000, 2), labels, out=out)
    with pytest.raises(ValueError, match="overlaps"):
        be.softmax_cross_entropy_backward(np.random.rand(1000, 2), labels, out=out)
