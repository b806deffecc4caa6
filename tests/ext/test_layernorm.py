"""Layer normalization: C against the NumPy twin, exact values, finite differences,
thread-count independence, bad input."""
import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

import pynn
from helpers import ARCHS, C, REF, compare, layouts, rand, check_grad

DTYPES = (np.float32, np.float64)
# (13, 5), (11, 29), (257, 128): float rows in groups of 8 with AVX-512 (and the rows left
# over), row tails of 5 and 13 columns (13: past the first 8 lanes)
SHAPES = [(1,), (1, 1), (3, 1), (2, 7), (13, 5), (11, 29), (4, 3, 17), (257, 128),
          (2, 3, 5, 129)]


def test_hand_worked_values():
    x = np.array([[1.0, 2.0, 3.0, 6.0]])          # mean 3, var (4+1+0+9)/4 = 3.5
    g = np.array([1.0, 2.0, 1.0, 1.0])
    b = np.array([0.0, 0.0, 1.0, 0.0])
    r = 1 / np.sqrt(3.5 + 0.5)                     # eps 0.5: rstd = 1/2
    for be in (C, REF):
        y, mean, rstd = be.layernorm_forward(x, g, b, 0.5)
        np.testing.assert_allclose(mean, [3.0])
        np.testing.assert_allclose(rstd, [r])
        np.testing.assert_allclose(y, [[-1.0, -1.0, 1.0, 1.5]])
        dx, dg, db = be.layernorm_backward(x, g, mean, rstd, np.ones_like(x))
        np.testing.assert_allclose(db, [1, 1, 1, 1])
        np.testing.assert_allclose(dg, [-1.0, -0.5, 0.0, 1.5])


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", SHAPES)
def test_against_reference(dtype, shape):
    rng = np.random.default_rng(len(shape) * 100 + shape[-1])
    C_ = shape[-1]
    x = rand(rng, shape, dtype, -3, 3) + dtype(1.5)
    g, b = rand(rng, (C_,), dtype), rand(rng, (C_,), dtype)
    dy = rand(rng, shape, dtype)
    n = int(np.prod(shape[:-1]))
    for _, xv in layouts(x):
        y, mean, rstd = compare("layernorm_forward", xv, g, b, 1e-5, k=C_)
        compare("layernorm_forward", xv, g, None, 1e-3, k=C_)
        for _, dv in layouts(dy):
            compare("layernorm_backward", xv, g, mean, rstd, dv, k=max(n, C_))


@settings(max_examples=20, deadline=None)
@given(n=st.integers(0, 80), c=st.integers(1, 90), dtype=st.sampled_from(DTYPES))
def test_random_shapes(n, c, dtype):
    rng = np.random.default_rng(n * 100 + c)
    x = rand(rng, (n, c), dtype)
    g, b = rand(rng, (c,), dtype), rand(rng, (c,), dtype)
    _, mean, rstd = compare("layernorm_forward", x, g, b, 1e-5, k=c)
    compare("layernorm_backward", x, g, mean, rstd, rand(rng, (n, c), dtype), k=max(n, c))


def test_backward_by_finite_differences():
    rng = np.random.default_rng(5)
    x = rng.standard_normal((3, 2, 7))
    g, b = rng.standard_normal(7), rng.standard_normal(7)
    for be in (C, REF):
        def f(x, g, b):
            return be.layernorm_forward(x, g, b, 1e-5)[0]

        def grads(x, g, b, dy):
            _, m, r = be.layernorm_forward(x, g, b, 1e-5)
            return be.layernorm_backward(x, g, m, r, dy)
        check_grad(f, grads, [x, g, b], rtol=1e-6, atol=1e-8)


def test_accumulate_adds_into_dx():
    rng = np.random.default_rng(6)
    x, dy = rng.standard_normal((4, 9)), rng.standard_normal((4, 9))
    g = rng.standard_normal(9)
    for be in (C, REF):
        _, m, r = be.layernorm_forward(x, g, None, 1e-5)
        plain = be.layernorm_backward(x, g, m, r, dy)[0]
        base = rng.standard_normal((4, 9))
        dx = base.copy()
        assert be.layernorm_backward(x, g, m, r, dy, dx=dx, accumulate=True)[0] is dx
        np.testing.assert_allclose(dx, base + plain, rtol=1e-14, atol=1e-14)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", [(1, 1), (4, 9), (3, 5, 17), (0, 4), (300, 129)], ids=str)
def test_residual_against_reference(shape, dtype):
    """dx = residual + the gradient: C against the twin on every arch and thread count,
    equal to a copy of the residual with accumulate=True, bit for bit; the residual may be
    strided (copied) and dx may be the residual itself; the residual is never written"""
    rng = np.random.default_rng(sum(shape) + 3)
    x, dy, res = (rand(rng, shape, dtype) for _ in range(3))
    g = rand(rng, shape[-1:], dtype)
    _, m, r = REF.layernorm_forward(x, g, None, 1e-5)
    compare("layernorm_backward", x, g, m, r, dy, residual=res, k=shape[-1] + 1)
    for _, rv in layouts(res):
        keep = rv.copy()
        compare("layernorm_backward", x, g, m, r, dy, residual=rv, k=shape[-1] + 1)
        np.testing.assert_array_equal(rv, keep)
    for be in (C, REF):
        _, m, r = be.layernorm_forward(x, g, None, 1e-5)
        got = be.layernorm_backward(x, g, m, r, dy, residual=res)[0]
        acc = res.copy()
        be.layernorm_backward(x, g, m, r, dy, dx=acc, accumulate=True)
        np.testing.assert_array_equal(got, acc)
        inplace = res.copy()
        assert be.layernorm_backward(x, g, m, r, dy, dx=inplace, residual=inplace)[0] is inplace
        np.testing.assert_array_equal(inplace, acc)


@pytest.mark.parametrize("be", [C, REF], ids=["c", "reference"])
def test_residual_bad_input(be):
    x, g = np.ones((4, 3)), np.ones(3)
    m, r = np.zeros(4), np.ones(4)
    with pytest.raises(ValueError, match=r"residual must have shape \(4, 3\)"):
        be.layernorm_backward(x, g, m, r, x.copy(), residual=np.ones((4, 2)))
    with pytest.raises(TypeError, match="dtype"):
        be.layernorm_backward(x, g, m, r, x.copy(), residual=np.ones((4, 3), np.float32))
    with pytest.raises(TypeError, match="float32 or float64"):
        be.layernorm_backward(x, g, m, r, x.copy(), residual=[[1.0] * 3] * 4)
    with pytest.raises(ValueError, match="not both"):
        be.layernorm_backward(x, g, m, r, x.copy(), dx=np.ones((4, 3)), accumulate=True,
                              residual=np.ones((4, 3)))
    buf = np.zeros(20)
    with pytest.raises(ValueError, match="dx overlaps residual"):
        be.layernorm_backward(x, g, m, r, x.copy(), dx=buf[:12].reshape(4, 3),
                              residual=buf[3:15].reshape(4, 3))
    # C writes dgamma / dbeta before it reads the residual: an overlap is refused
    with pytest.raises(ValueError, match="dgamma overlaps residual"):
        be.layernorm_backward(x, g, m, r, x.copy(), dgamma=buf[:3],
                              residual=buf[:12].reshape(4, 3))
    with pytest.raises(ValueError, match="dbeta overlaps residual"):
        be.layernorm_backward(x, g, m, r, x.copy(), dbeta=buf[9:12],
                              residual=buf[:12].reshape(4, 3))


def test_constant_rows_are_finite():
    x = np.full((3, 8), 5.0, np.float32)
    for be in (C, REF):
        y, m, r = be.layernorm_forward(x, np.ones(8, np.float32), np.zeros(8, np.float32), 1e-5)
        assert np.all(np.isfinite(y)) and np.all(y == 0)


@pytest.mark.parametrize("be", [C, REF], ids=["c", "reference"])
def test_bad_input(be):
    x, g = np.ones((4, 3)), np.ones(3)
    with pytest.raises(ValueError, match=r"gamma must have shape \(3,\)"):
        be.layernorm_forward(x, np.ones(4), None)
    with pytest.raises(ValueError, match="beta must have shape"):
        be.layernorm_forward(x, g, np.ones(2))
    with pytest.raises(TypeError, match="dtype"):
        be.layernorm_forward(x, g.astype(np.float32), None)
    with pytest.raises(TypeError, match="float32 or float64"):
        be.layernorm_forward(np.ones((4, 3), np.int32), g, None)
    with pytest.raises(ValueError, match="eps must be >"):
        be.layernorm_forward(x, g, None, 0.0)
    with pytest.raises(ValueError, match="eps must be finite"):
        be.layernorm_forward(x, g, None, np.nan)
    with pytest.raises(ValueError, match="at least one feature"):
        be.layernorm_forward(np.ones((4, 0)), np.ones(0), None)
    with pytest.raises(ValueError, match="overlaps"):
        be.layernorm_forward(x, g, None, out=x)
    with pytest.raises(ValueError, match="mean must have shape"):
        be.layernorm_backward(x, g, np.ones(3), np.ones(4), x.copy())
    with pytest.raises(ValueError, match="dy must have shape"):
        be.layernorm_backward(x, g, np.ones(4), np.ones(4), np.ones((4, 2)))
    with pytest.raises(ValueError, match="accumulate=True needs dx"):
        be.layernorm_backward(x, g, np.ones(4), np.ones(4), x.copy(), accumulate=True)
    ro = np.empty(3)
    ro.flags.writeable = False
    with pytest.raises(ValueError, match="read-only"):
        be.layernorm_backward(x, g, np.ones(4), np.ones(4), x.copy(), dgamma=ro)


@pytest.mark.parametrize("dtype", DTYPES)
def test_one_feature_backward_is_zero(dtype):
    # a row of one feature normalizes to 0 whatever x: dx is exactly 0 (the fused
    # dy * gamma - mean left a product's rounding error, amplified by 1 / sqrt(eps))
    rng = np.random.default_rng(2)
    x, dy = rng.standard_normal((7, 1)).astype(dtype), rng.standard_normal((7, 1)).astype(dtype)
    gamma, beta = rng.standard_normal(1).astype(dtype), rng.standard_normal(1).astype(dtype)
    _, mean, rstd = C.layernorm_forward(x, gamma, beta)
    for arch in ARCHS:
        with pynn.arch(arch):
            dx = C.layernorm_backward(x, gamma, mean, rstd, dy)[0]
        np.testing.assert_array_equal(dx, 0, err_msg=arch)


@pytest.mark.parametrize("dtype", DTYPES)
def test_one_feature_backward_with_other_statistics(dtype):
    # mean and rstd that are not x's own, or NaN: the xhat term of the gradient stays (C
    # returned 0 for any x, also a NaN one, where the reference gives -rstd xhat^2 dy gamma)
    x = np.array([[np.nan], [2.0], [0.0], [-3.0]], dtype)
    gamma, mean, rstd = np.array([1.5], dtype), np.zeros(4, dtype), np.array([1, 1, 1, 2], dtype)
    dy = np.array([[1.0], [1.0], [4.0], [0.5]], dtype)
    want = REF.layernorm_backward(x, gamma, mean, rstd, dy)[0]
    assert np.isnan(want[0, 0]) and want[1, 0] == -6.0
    for arch in ARCHS:
        with pynn.arch(arch):
            dx = C.layernorm_backward(x, gamma, mean, rstd, dy)[0]
        np.testing.assert_array_equal(dx, want, err_msg=arch)


@pytest.mark.parametrize("beta", [True, False])
def test_float_rows_in_groups_give_the_row_bits(beta):
    # AVX-512 runs contiguous float rows 8 at a time (vector trees); rows read with a
    # column stride take the per-row code: the same values must give the same bits,
    # tails of every width, leftover rows, NaN/inf and constant rows included
    rng = np.random.default_rng(5)
    for n, c in [(9, 1), (8, 7), (17, 16), (23, 29), (16, 129), (11, 255)]:
        x = rand(rng, (n, c), np.float32, -3, 3) * np.float32(1e3)
        x[1] = 2.5                                           # constant row
        if c > 2:
            x[2, 1], x[3, 0] = np.nan, np.inf
        g, b = rand(rng, (c,), np.float32), rand(rng, (c,), np.float32) if beta else None
        wide = np.zeros((n, 2 * c), np.float32)
        wide[:, ::2] = x
        for arch in ARCHS:
            with pynn.arch(arch):
                got = C.layernorm_forward(x, g, b)
                want = C.layernorm_forward(wide[:, ::2], g, b)
            for a, w, what in zip(got, want, ("y", "mean", "rstd")):
                np.testing.assert_array_equal(a.view(np.uint32), w.view(np.uint32),
                                              err_msg=f"{what} ({n}, {c}) arch={arch}")


@pytest.mark.skipif("avx512" not in ARCHS, reason="needs AVX-512")
@pytest.mark.parametrize("mode", ["plain", "residual", "accumulate"])
def test_float_backward_rows_in_groups_give_the_row_bits(mode):
    # AVX-512 runs the backward's contiguous float rows 4 at a time on intrinsics; the AVX2
    # build runs the compiled rows with the same fused multiply-adds: the same bits for every
    # tail width and leftover rows, with the residual and the accumulation too
    rng = np.random.default_rng(6)
    for n, c in [(9, 2), (8, 7), (17, 16), (23, 29), (16, 129), (11, 255), (5, 64)]:
        x = rand(rng, (n, c), np.float32, -3, 3)
        g, b = rand(rng, (c,), np.float32), rand(rng, (c,), np.float32)
        dy, res = rand(rng, (n, c), np.float32), rand(rng, (n, c), np.float32)
        _, mean, rstd = C.layernorm_forward(x, g, b)
        got = {}
        for arch in ("avx2", "avx512"):
            kw = {"residual": res} if mode == "residual" else {}
            if mode == "accumulate":
                kw = {"dx": res.copy(), "accumulate": True}
            with pynn.arch(arch):
                got[arch] = C.layernorm_backward(x, g, mean, rstd, dy, **kw)
        for a, w, what in zip(got["avx512"], got["avx2"], ("dx", "dgamma", "dbeta")):
            np.testing.assert_array_equal(a.view(np.uint32), w.view(np.uint32),
                                          err_msg=f"{what} ({n}, {c}) {mode}")


@pytest.mark.parametrize("dtype", DTYPES)
def test_plain_calls_skip_the_checks_with_the_same_results(dtype):
    # contiguous arrays go straight to C (pynn/_ext/_layernorm.pyx): the same bits as the
    # checked path (taken here by passing x and dy as strided views of the same values),
    # the outputs it was given, and the checked path's errors for outputs that meet
    rng = np.random.default_rng(8)
    x, dy, res = (rand(rng, (3, 5, 7), dtype) for _ in range(3))
    g, b = rand(rng, (7,), dtype), rand(rng, (7,), dtype)

    def strided(a):
        w = np.zeros(a.shape[:-1] + (2 * a.shape[-1],), dtype)
        w[..., ::2] = a
        return w[..., ::2]
    y, m, r = C.layernorm_forward(x, g, b, 1e-3)
    for got, want in zip((y, m, r), C.layernorm_forward(strided(x), g, b, 1e-3)):
        np.testing.assert_array_equal(got, want)
    outs = np.empty_like(x), np.empty((3, 5), dtype), np.empty((3, 5), dtype)
    assert all(a is b_ for a, b_ in zip(C.layernorm_forward(x, g, b, 1e-3, *outs), outs))
    for kw in ({}, {"residual": res}, {"dx": res.copy(), "accumulate": True}):
        want = C.layernorm_backward(strided(x), g, m, r, strided(dy), **kw)
        if "dx" in kw:
            kw["dx"] = res.copy()
        got = C.layernorm_backward(x, g, m, r, dy, **kw)
        for a, w in zip(got, want):
            np.testing.assert_array_equal(a, w)
    inplace = res.copy()                             # dx may be the residual itself
    got = C.layernorm_backward(x, g, m, r, dy, dx=inplace, residual=inplace)
    assert got[0] is inplace
    np.testing.assert_array_equal(inplace, C.layernorm_backward(x, g, m, r, dy,
                                                                residual=res)[0])
    buf = np.zeros(64, dtype)
    with pytest.raises(ValueError, match="overlaps"):       # rstd meets mean
        C.layernorm_forward(x, g, b, mean=buf[:15].reshape(3, 5),
                            rstd=buf[10:25].reshape(3, 5))
    with pytest.raises(ValueError, match="overlaps"):       # dbeta meets dgamma
        C.layernorm_backward(x, g, m, r, dy, dgamma=buf[:7], dbeta=buf[3:10])
    with pytest.raises(ValueError, match="overlaps"):       # dx meets dy
        C.layernorm_backward(x, g, m, r, dy, dx=dy)
    with pytest.raises(ValueError, match="eps must be >"):
        C.layernorm_forward(x, g, b, -1.0)
