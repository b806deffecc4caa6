"""Batch normalization: C kernel against the NumPy twin, training vs inference behaviour,
the running-statistics update, central differences, hand-worked values, bad input."""
import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from helpers import C, REF, check_grad, compare, layouts, rand

DTYPES = (np.float32, np.float64)
BACKENDS = pytest.mark.parametrize("be", [C, REF], ids=["c", "reference"])
SHAPES = [(1, 1), (2, 3), (7, 1), (13, 5), (4, 5, 5, 3), (300, 7), (64, 13, 13, 32)]


def _params(rng, C, dtype):
    gamma = rand(rng, (C,), dtype, 0.5, 1.5)
    beta = rand(rng, (C,), dtype)
    rm = rand(rng, (C,), dtype)
    rv = rand(rng, (C,), dtype, 0.5, 2.0)
    return gamma, beta, rm, rv


@pytest.mark.parametrize("training", [True, False], ids=["train", "infer"])
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", SHAPES)
def test_against_reference(shape, dtype, training):
    rng = np.random.default_rng(0)
    x = (rand(rng, shape, dtype) * 3 + 2).astype(dtype)
    gamma, beta, rm, rv = _params(rng, shape[-1], dtype)
    n = x.size // shape[-1]
    y, mean, inv_std = compare("batch_norm_forward", x, gamma, beta, rm, rv, training,
                               0.9, 1e-3, k=n)
    dy = rand(rng, shape, dtype)
    compare("batch_norm_backward", x, dy, gamma, mean, inv_std, training, k=n)
    compare("batch_norm_forward", x, gamma, None, rm, rv, training, k=n)


@pytest.mark.parametrize("dtype", DTYPES)
def test_layouts(dtype):
    rng = np.random.default_rng(1)
    x = rand(rng, (6, 5, 4), dtype)
    dy = rand(rng, (6, 5, 4), dtype)
    gamma, beta, rm, rv = _params(rng, 4, dtype)
    _, mean, inv_std = REF.batch_norm_forward(x, gamma, beta, rm.copy(), rv.copy(), True)
    for name, xv in layouts(x):
        compare("batch_norm_forward", xv, gamma, beta, rm, rv, True, k=30)
        compare("batch_norm_backward", xv, dy, gamma, mean, inv_std, True, k=30)
    for name, dyv in layouts(dy):
        compare("batch_norm_backward", x, dyv, gamma, mean, inv_std, True, k=30)
    for name, gv in layouts(gamma):
        compare("batch_norm_forward", x, gv, beta, rm, rv, False, k=30)


@settings(max_examples=20, deadline=None)
@given(n=st.integers(1, 700), c=st.integers(1, 40), dtype=st.sampled_from(DTYPES),
       training=st.booleans())
def test_random_shapes(n, c, dtype, training):
    rng = np.random.default_rng(n * 100 + c)
    x = rand(rng, (n, c), dtype)
    gamma, beta, rm, rv = _params(rng, c, dtype)
    y, mean, inv_std = compare("batch_norm_forward", x, gamma, beta, rm, rv, training, k=n)
    compare("batch_norm_backward", x, rand(rng, (n, c), dtype), gamma, mean, inv_std,
            training, k=n)


@pytest.mark.parametrize("training", [True, False], ids=["train", "infer"])
@BACKENDS
def test_gradients(be, training):
    rng = np.random.default_rng(2)
    x = rand(rng, (3, 4, 3), np.float64) * 2 + 1
    gamma, beta, rm, rv = _params(rng, 3, np.float64)

    def forward(x, gamma, beta):
        return be.batch_norm_forward(x, gamma, beta, rm.copy(), rv.copy(), training)[0]

    def grads(x, gamma, beta, dy):
        _, mean, inv_std = be.batch_norm_forward(x, gamma, beta, rm.copy(), rv.copy(), training)
        dx, dgamma, dbeta = be.batch_norm_backward(x, dy, gamma, mean, inv_std, training)
        return dx, dgamma, dbeta

    check_grad(forward, grads, (x, gamma, beta))


@BACKENDS
def test_train_vs_inference_and_running_update(be):
    x = np.array([[1.0, 10.0], [3.0, 10.0], [5.0, 40.0], [7.0, 40.0]])   # means 4, 25
    gamma, beta = np.array([1.0, 2.0]), np.array([0.0, 1.0])
    rm, rv = np.array([0.0, 1.0]), np.array([1.0, 4.0])
    y, mean, inv_std = be.batch_norm_forward(x, gamma, beta, rm, rv, True, momentum=0.9,
                                             epsilon=1e-3)
    np.testing.assert_allclose(mean, [4.0, 25.0], rtol=1e-15)
    np.testing.assert_allclose(inv_std, 1 / np.sqrt(np.array([5.0, 225.0]) + 1e-3), rtol=1e-15)
    np.testing.assert_allclose(y[:, 0], np.array([-3, -1, 1, 3]) / np.sqrt(5.001), rtol=1e-14)
    np.testing.assert_allclose(y[:, 1], 1 + 2 * np.array([-15, -15, 15, 15]) / np.sqrt(225.001),
                               rtol=1e-14)
    # running = 0.9 running + 0.1 batch, the biased batch variance as Keras
    np.testing.assert_allclose(rm, [0.4, 0.9 + 2.5], rtol=1e-15)
    np.testing.assert_allclose(rv, [0.9 + 0.5, 3.6 + 22.5], rtol=1e-15)
    # inference uses the running statistics and leaves them alone
    rm2, rv2 = rm.copy(), rv.copy()
    y2, mean2, inv2 = be.batch_norm_forward(x, gamma, beta, rm, rv, False, epsilon=1e-3)
    np.testing.assert_array_equal(rm, rm2)
    np.testing.assert_array_equal(rv, rv2)
    np.testing.assert_array_equal(mean2, rm)
    np.testing.assert_allclose(y2, (x - rm) / np.sqrt(rv + 1e-3) * gamma + beta, rtol=1e-14)
    assert not np.allclose(y, y2)
    # inference backward: statistics are constants
    dy = np.ones_like(x)
    dx, dgamma, dbeta = be.batch_norm_backward(x, dy, gamma, mean2, inv2, False)
    np.testing.assert_allclose(dx, np.broadcast_to(gamma * inv2, x.shape), rtol=1e-15)
    np.testing.assert_allclose(dbeta, [4, 4], rtol=1e-15)
    # training backward: a constant dy shifts the batch mean only, so dx = 0
    dx, dgamma, dbeta = be.batch_norm_backward(x, dy, gamma, mean, inv_std, True)
    np.testing.assert_allclose(dx, 0, atol=1e-15)
    np.testing.assert_allclose(dgamma, 0, atol=1e-14)


def test_momentum_one_keeps_running_stats_and_large_mean_is_stable():
    for be in (C, REF):
        x = 1e4 + np.array([[1.0], [2.0], [3.0]], np.float32)
        rm, rv = np.zeros(1, np.float32), np.ones(1, np.float32)
        y, mean, inv_std = be.batch_norm_forward(x, np.ones(1, np.float32), None, rm, rv, True,
                                                 momentum=1.0, epsilon=1e-6)
        assert rm[0] == 0 and rv[0] == 1
        # two-pass variance: 2/3 exactly enough, not swamped by cancellation around 1e8
        np.testing.assert_allclose(1 / inv_std[0] ** 2, 2 / 3, rtol=1e-3)


def test_out_and_in_place_dx():
    rng = np.random.default_rng(3)
    x = rand(rng, (5, 4), np.float64)
    gamma, beta, rm, rv = _params(rng, 4, np.float64)
    out = np.full_like(x, np.nan)
    y, mean, inv_std = C.batch_norm_forward(x, gamma, beta, rm.copy(), rv.copy(), True, out=out)
    assert y is out
    dy = rand(rng, x.shape, np.float64)
    expected = REF.batch_norm_backward(x, dy, gamma, mean, inv_std, True)
    for be in (C, REF):
        d = dy.copy()
        dx, dgamma, dbeta = be.batch_norm_backward(x, d, gamma, mean, inv_std, True, dx=d)
        assert dx is d
        np.testing.assert_allclose(dx, expected[0], rtol=1e-12, atol=1e-14)
        np.testing.assert_allclose(dgamma, expected[1], rtol=1e-12, atol=1e-14)


@BACKENDS
def test_bad_input(be):
    x = np.ones((4, 3))
    g, b = np.ones(3), np.zeros(3)
    rm, rv = np.zeros(3), np.ones(3)
    with pytest.raises(ValueError, match="at least 2"):
        be.batch_norm_forward(np.ones(3), g, b, rm, rv, True)
    with pytest.raises(ValueError, match="gamma must have shape"):
        be.batch_norm_forward(x, np.ones(4), b, rm, rv, True)
    with pytest.raises(ValueError, match="running_var must have shape"):
        be.batch_norm_forward(x, g, b, rm, np.ones(2), True)
    with pytest.raises(TypeError, match="dtype"):
        be.batch_norm_forward(x, g, b, rm.astype(np.float32), rv, True)
    with pytest.raises(TypeError, match="float32 or float64"):
        be.batch_norm_forward(x.astype(int), g, b, rm, rv, True)
    ro = rm.copy()
    ro.flags.writeable = False
    with pytest.raises(ValueError, match="read-only"):
        be.batch_norm_forward(x, g, b, ro, rv, True)
    with pytest.raises(ValueError, match="momentum"):
        be.batch_norm_forward(x, g, b, rm, rv, True, momentum=1.5)
    with pytest.raises(ValueError, match="epsilon"):
        be.batch_norm_forward(x, g, b, rm, rv, True, epsilon=0.0)
    with pytest.raises(ValueError, match="finite"):
        be.batch_norm_forward(x, g, b, rm, rv, True, epsilon=np.nan)
    with pytest.raises(ValueError, match="at least one row"):
        be.batch_norm_forward(np.ones((0, 3)), g, b, rm, rv, True)
    with pytest.raises(ValueError, match="running_var must be >= 0"):
        be.batch_norm_forward(x, g, b, rm, -rv, False)
    with pytest.raises(ValueError, match="overlaps"):
        be.batch_norm_forward(x, g, b, rm, rv, True, out=x)
    # running statistics that share memory (with each other or with an input) were updated
    # one over the other, differently in C and in the reference
    buf = np.array([0.0, 0.0, 1.0, 1.0])
    with pytest.raises(ValueError, match="running_mean and running_var share memory"):
        be.batch_norm_forward(x, g, b, buf[:3], buf[1:], True)
    with pytest.raises(ValueError, match="running_var and gamma share memory"):
        be.batch_norm_forward(x, g, b, rm, g, True)
    np.testing.assert_array_equal(buf, [0.0, 0.0, 1.0, 1.0])
    np.testing.assert_array_equal(g, 1.0)
    be.batch_norm_forward(x, g, b, rm, rm, False)  # inference only reads them
    with pytest.raises(ValueError, match="at least one channel"):
        be.batch_norm_forward(np.ones((4, 0)), np.ones(0), None, np.zeros(0), np.ones(0), False)
    with pytest.raises(ValueError, match="dy must have shape"):
        be.batch_norm_backward(x, np.ones((4, 2)), g, rm, rv, True)
    with pytest.raises(ValueError, match="mean must have shape"):
        be.batch_norm_backward(x, x.copy(), g, np.zeros(2), rv, True)
    with pytest.raises(ValueError, match="overlaps"):
        be.batch_norm_backward(x, x.copy(), g, rm, rv, True, dx=x)
