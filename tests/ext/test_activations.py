"""Activations: C kernels against the NumPy twin, hand-worked values, gradients by central
differences, large magnitudes, masked softmax rows, in-place use and bad input."""
import math

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

import pynn
from helpers import ARCHS, C, REF, assert_close, check_grad, compare, layouts, rand

DTYPES = (np.float32, np.float64)
BACKENDS = pytest.mark.parametrize("be", [C, REF], ids=["c", "reference"])
# (forward name, keyword arguments); backward is the same name with _backward
ELEMENTWISE = [
    ("relu", {}), ("leaky_relu", {}), ("leaky_relu", {"alpha": 0.05}), ("elu", {}),
    ("elu", {"alpha": 0.5}), ("sigmoid", {}), ("tanh", {}), ("gelu", {}),
    ("gelu", {"approximate": True}), ("softplus", {}), ("silu", {}), ("swish", {}),
]
EW_IDS = [n + "".join(f"-{k}={v}" for k, v in kw.items()) for n, kw in ELEMENTWISE]
SOFTMAX = ["softmax", "log_softmax"]
# 0-size, 1, primes, 3-D, and sizes past one 4096-element chunk / the 2-thread threshold
SHAPES = [(0,), (1,), (7,), (3, 0), (13, 5), (3, 5, 7), (4099,), (301, 257)]


def _data(rng, shape, dtype, low=-4.0, high=4.0):
    return rand(rng, shape, dtype, low, high)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("name,kw", ELEMENTWISE, ids=EW_IDS)
def test_elementwise_against_reference(name, kw, shape, dtype):
    rng = np.random.default_rng(len(shape) * 100 + sum(shape))
    x, dy = _data(rng, shape, dtype), _data(rng, shape, dtype)
    compare(name + "_forward", x, **kw)
    compare(name + "_backward", x, dy, **kw)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", [s for s in SHAPES if len(s) > 0] + [(2, 3, 1)])
@pytest.mark.parametrize("name", SOFTMAX)
def test_softmax_against_reference(name, shape, dtype):
    rng = np.random.default_rng(sum(shape) + 7)
    x, dy = _data(rng, shape, dtype, -10, 10), _data(rng, shape, dtype)
    y = compare(name + "_forward", x, k=shape[-1])
    compare(name + "_backward", y, dy, k=shape[-1])


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("name,kw", ELEMENTWISE[:2] + ELEMENTWISE[5:8] + [(s, {}) for s in SOFTMAX])
def test_layouts(name, kw, dtype):
    rng = np.random.default_rng(3)
    x, dy = _data(rng, (6, 11), dtype), _data(rng, (6, 11), dtype)
    for lname, xv in layouts(x):
        compare(name + "_forward", xv, k=11, **kw)
        compare(name + "_forward", xv.T, k=6, **kw)
        for _, dyv in layouts(dy):
            compare(name + "_backward", xv, dyv, k=11, **kw)


@settings(max_examples=25, deadline=None)
@given(shape=st.lists(st.integers(0, 40), min_size=1, max_size=3),
       dtype=st.sampled_from(DTYPES), which=st.integers(0, len(ELEMENTWISE) + 1))
def test_random_shapes(shape, dtype, which):
    rng = np.random.default_rng(sum(shape) + which)
    x, dy = _data(rng, tuple(shape), dtype), _data(rng, tuple(shape), dtype)
    if which < len(ELEMENTWISE):
        name, kw = ELEMENTWISE[which]
        compare(name + "_forward", x, **kw)
        compare(name + "_backward", x, dy, **kw)
    else:
        name = SOFTMAX[which - len(ELEMENTWISE)]
        y = compare(name + "_forward", x, k=shape[-1])
        compare(name + "_backward", y, dy, k=shape[-1])


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("name,kw", ELEMENTWISE, ids=EW_IDS)
def test_large_magnitudes(name, kw, dtype):
    x = np.array([-1e4, -1e3, -100, -30, -20, 20, 30, 100, 1e3, 1e4], dtype)
    dy = np.ones_like(x)
    y = compare(name + "_forward", x, **kw)
    g = compare(name + "_backward", x, dy, **kw)
    assert np.all(np.isfinite(y)) and np.all(np.isfinite(g)), (y, g)


@pytest.mark.parametrize("dtype", DTYPES)
@BACKENDS
def test_large_logits(be, dtype):
    x = np.array([[1e4, -1e4, 0.0, 1e4 - 1], [-1e4, -1e4, -1e4, -1e4 + 2]], dtype)
    y = be.softmax_forward(x)
    ly = be.log_softmax_forward(x)
    assert np.all(np.isfinite(y)) and np.all(np.isfinite(ly))
    e = np.exp(np.array([0.0, -1.0]))
    np.testing.assert_allclose(y[0], [e[0] / e.sum(), 0, 0, e[1] / e.sum()], rtol=1e-6, atol=1e-30)
    np.testing.assert_allclose(ly[0, 1], -2e4 - np.log(e.sum()), rtol=1e-6)
    np.testing.assert_allclose(ly[1, 3], -np.log(1 + 3 * np.exp(-2.0)), rtol=1e-6)
    for name in SOFTMAX:
        compare(name + "_forward", x, k=4)


@BACKENDS
@pytest.mark.parametrize("dtype", DTYPES)
def test_hand_worked_values(be, dtype):
    x = np.array([-1.0, 0.0, 1.0], dtype)
    dy = np.array([5.0, 5.0, 5.0], dtype)
    a = dtype(0.2)
    eq = np.testing.assert_array_equal
    eq(be.relu_forward(x), [0, 0, 1])
    eq(be.relu_backward(x, dy), [0, 0, 5])
    eq(be.leaky_relu_forward(x), np.array([-a, 0, 1], dtype))
    eq(be.leaky_relu_backward(x, dy), np.array([5 * a, 5 * a, 5], dtype))
    eq(be.elu_forward(x)[1:], [0, 1])
    eq(be.elu_backward(x, dy)[1:], [5, 5])  # exp(0) = 1 at the kink's left side
    eq(be.sigmoid_forward(x)[1], 0.5)
    eq(be.sigmoid_backward(x, dy)[1], 1.25)
    eq(be.tanh_forward(x)[1], 0.0)
    eq(be.tanh_backward(x, dy)[1], 5.0)
    eq(be.gelu_forward(x)[1], 0.0)
    eq(be.gelu_forward(x, approximate=True)[1], 0.0)
    eq(be.gelu_backward(x, dy)[1], 2.5)
    eq(be.gelu_backward(x, dy, approximate=True)[1], 2.5)
    eq(be.silu_forward(x)[1], 0.0)
    eq(be.silu_backward(x, dy)[1], 2.5)
    eq(be.softplus_backward(x, dy)[1], 2.5)
    np.testing.assert_allclose(be.softplus_forward(x)[1], np.log(2.0), rtol=2e-7)
    np.testing.assert_allclose(be.elu_forward(x)[0], np.expm1(-1.0), rtol=2e-7)
    np.testing.assert_allclose(be.gelu_forward(x)[2], 0.8413447460685429, rtol=2e-7)
    eq(be.softmax_forward(np.zeros((2, 4), dtype)), np.full((2, 4), 0.25))
    eq(be.softmax_forward(np.array([1e4, 1e4], dtype)), [0.5, 0.5])
    eq(be.softmax_forward(np.array([1e4, -1e4], dtype)), [1.0, 0.0])
    eq(be.log_softmax_forward(np.array([1e4, -1e4], dtype)), [0.0, -2e4])
    eq(be.log_softmax_forward(np.array([3.0], dtype)), [0.0])
    y = np.array([0.25, 0.75], dtype)
    eq(be.softmax_backward(y, np.array([1.0, 1.0], dtype)), [0, 0])  # shift invariance
    eq(be.softmax_backward(y, np.array([4.0, 0.0], dtype)), [0.75, -0.75])


@BACKENDS
@pytest.mark.parametrize("dtype", DTYPES)
def test_masked_rows(be, dtype):
    inf = np.inf
    x = np.array([[-inf, -inf, -inf, -inf], [0.0, -inf, 0.0, -inf], [1.0, 2.0, 3.0, 4.0]], dtype)
    y = be.softmax_forward(x)
    np.testing.assert_array_equal(y[0], np.full(4, 0.25))   # fully masked: uniform
    np.testing.assert_array_equal(y[1], [0.5, 0, 0.5, 0])
    ly = be.log_softmax_forward(x)
    np.testing.assert_allclose(ly[0], np.full(4, -np.log(4.0)), rtol=1e-6)
    np.testing.assert_array_equal(ly[1], [np.log(dtype(0.5)), -inf, np.log(dtype(0.5)), -inf])
    dy = np.ones_like(x)
    assert np.all(np.isfinite(be.softmax_backward(y, dy)))
    assert np.all(np.isfinite(be.log_softmax_backward(ly[[0, 2]], dy[[0, 2]])))
    compare("softmax_forward", x, k=4)
    # -inf entries would make compare's scale infinite; check them as exact positions instead
    np.testing.assert_allclose(C.log_softmax_forward(x), REF.log_softmax_forward(x), rtol=1e-6)


@BACKENDS
def test_nan_propagates(be):
    x = np.array([[0.0, np.nan, 1.0], [0.0, 1.0, 2.0]])
    y = be.softmax_forward(x)
    assert np.all(np.isnan(y[0])) and np.all(np.isfinite(y[1]))
    assert np.isnan(be.relu_forward(np.array([np.nan]))[0])
    assert np.isnan(be.sigmoid_forward(np.array([np.nan]))[0])


def _away_from_kinks(rng, shape):
    return rng.choice([-1.0, 1.0], size=shape) * rng.uniform(0.05, 3.0, size=shape)


@BACKENDS
@pytest.mark.parametrize("name,kw", ELEMENTWISE, ids=EW_IDS)
def test_backward_central_differences(be, name, kw):
    x = _away_from_kinks(np.random.default_rng(5), (3, 4))
    fwd, bwd = getattr(be, name + "_forward"), getattr(be, name + "_backward")
    check_grad(lambda x: fwd(x, **kw), lambda x, dy: bwd(x, dy, **kw), [x])


@BACKENDS
@pytest.mark.parametrize("name", SOFTMAX)
def test_softmax_backward_central_differences(be, name):
    x = np.random.default_rng(6).uniform(-3, 3, size=(3, 5))
    fwd, bwd = getattr(be, name + "_forward"), getattr(be, name + "_backward")
    check_grad(fwd, lambda x, dy: bwd(fwd(x), dy), [x])


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("name,kw", ELEMENTWISE + [(s, {}) for s in SOFTMAX],
                         ids=EW_IDS + SOFTMAX)
def test_in_place(name, kw, dtype):
    rng = np.random.default_rng(8)
    x, dy = _data(rng, (5, 9), dtype), _data(rng, (5, 9), dtype)
    soft = name in SOFTMAX
    want_y = getattr(REF, name + "_forward")(x.copy(), **kw)
    arg = want_y if soft else x  # softmax backward takes the output
    want_g = getattr(REF, name + "_backward")(arg.copy(), dy.copy(), **kw)
    for be in (C, REF):
        xi = x.copy()
        assert getattr(be, name + "_forward")(xi, out=xi, **kw) is xi
        assert_close(xi, want_y, dtype, 9 if soft else 1, f"{name} forward in place")
        gi, ai = dy.copy(), arg.copy()
        assert getattr(be, name + "_backward")(ai, gi, out=gi, **kw) is gi
        assert_close(gi, want_g, dtype, 9 if soft else 1, f"{name} backward in place")
        np.testing.assert_array_equal(ai, arg)  # the other input untouched


@BACKENDS
def test_bad_input(be):
    x = np.ones((4, 3))
    with pytest.raises(TypeError, match="float32 or float64"):
        be.relu_forward(np.ones(3, np.int64))
    with pytest.raises(TypeError, match="ndarray"):
        be.sigmoid_forward([1.0, 2.0])
    with pytest.raises(ValueError, match="shape"):
        be.tanh_backward(x, np.ones((3, 4)))
    with pytest.raises(TypeError, match="dtype"):
        be.gelu_backward(x, np.ones((4, 3), np.float32))
    with pytest.raises(ValueError, match="shape"):
        be.silu_forward(x, out=np.empty((4, 4)))
    with pytest.raises(TypeError, match="dtype"):
        be.relu_forward(x, out=np.empty((4, 3), np.float32))
    ro = np.empty((4, 3))
    ro.flags.writeable = False
    with pytest.raises(ValueError, match="read-only"):
        be.elu_forward(x, out=ro)
    buf = np.zeros(13)
    with pytest.raises(ValueError, match="overlaps"):
        be.relu_forward(buf[:12].reshape(4, 3), out=buf[1:].reshape(4, 3))
    with pytest.raises(ValueError, match="overlaps"):
        be.softmax_backward(x, buf[:12].reshape(4, 3), out=buf[1:].reshape(4, 3))
    with pytest.raises(ValueError, match="C-contiguous"):
        be.relu_forward(x, out=np.empty((3, 4)).T)
    with pytest.raises(ValueError, match="at least 1"):
        be.softmax_forward(np.array(1.0))
    with pytest.raises(ValueError, match="at least 1"):
        be.log_softmax_backward(np.array(1.0), np.array(1.0))
    with pytest.raises(ValueError, match="finite"):
        be.leaky_relu_forward(x, alpha=np.nan)
    with pytest.raises(TypeError, match="real number"):
        be.elu_backward(x, x, alpha="big")


def _exact(name, x):
    xl = x.astype(np.longdouble)  # 80-bit extended precision on x86-64
    s = 1 / (1 + np.exp(-xl))
    return {"sigmoid": s, "tanh": np.tanh(xl), "silu": xl * s, "softplus": np.log1p(np.exp(xl)),
            "elu": np.where(xl > 0, xl, np.expm1(xl))}[name]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("name", ["sigmoid", "tanh", "silu", "softplus", "elu"])
def test_accuracy_in_ulp(name, dtype):
    """The vectorized exp / tanh stay within 4 ulp of extended-precision values, a tighter
    bound than the twin comparison's (elementwise: 36 eps of max(1, |y|))."""
    rng = np.random.default_rng(12)
    x = np.concatenate([rng.uniform(-30, 30, 20000), rng.uniform(-1, 1, 20000),
                        rng.uniform(-1e-3, 1e-3, 2000), [0.625, -0.625, 0.6249999]]).astype(dtype)
    exact = _exact(name, x)
    ulp = np.spacing(np.abs(exact.astype(dtype))).astype(np.longdouble)
    for arch in ARCHS:
        with pynn.arch(arch):
            got = getattr(C, name + "_forward")(x).astype(np.longdouble)
        worst = float(np.max(np.abs(got - exact) / ulp))
        assert worst <= 4, f"{name} {np.dtype(dtype).name} arch={arch}: {worst:.2f} ulp"


@pytest.mark.parametrize("dtype", DTYPES)
def test_tiny_and_subnormal_results(dtype):
    x = np.array([-100.0, -87.5, -103.0, -745.0, -1e4], dtype)
    want = REF.sigmoid_forward(x.astype(np.float64))
    tiny = np.finfo(dtype).smallest_subnormal
    for arch in ARCHS:
        with pynn.arch(arch):
            got = C.sigmoid_forward(x).astype(np.float64)
        # subnormal results keep their value to within a step of the smallest subnormal
        np.testing.assert_allclose(got, want.astype(dtype), rtol=1e-5, atol=2 * float(tiny))
        assert got[-1] == 0.0


# Exact GELU evaluates erfc(u) at u = -x / sqrt 2 (rounded in the dtype, as the kernel does),
# so erfc itself is read back as gelu(x) / (x / 2); the product's rounding adds < 2 ulp of erfc.
_SQRT1_2 = 0.70710678118654752440
# where erfc rounds to 0 (float32: u > ~10.05, float64: u > ~27.23), the approximation's clamp
_ERFC_EDGES = {np.float32: (10.05, 10.1), np.float64: (27.2, 27.3)}


def _gelu_erfc_grid(dtype):
    """u values: a dense grid over the whole range, both signs, near 0, near the clamp and
    where erfc becomes subnormal; returned as the x that gives them."""
    lo, hi = _ERFC_EDGES[dtype]
    rng = np.random.default_rng(21)
    u = np.concatenate([np.linspace(-hi - 1, hi + 1, 4001), rng.uniform(-hi, hi, 2000),
                        rng.uniform(-1, 1, 500), rng.uniform(lo - 2, hi, 500),
                        np.geomspace(1e-30, 1e-3, 100), -np.geomspace(1e-30, 1e-3, 100),
                        [0.5, -0.5, 1.0, 3.0, 3.5, -3.5, lo, hi]])
    x = (-u / _SQRT1_2).astype(dtype)
    if dtype == np.float32:  # the float FMA form's worst region (u 0.5-0.6) and worst float
        x = np.concatenate([x, np.linspace(-0.85, -0.7, 3001, dtype=dtype),
                            np.array([-0.7621126], dtype)])
    x = x[x != 0]
    return x, (-x * dtype(_SQRT1_2)).astype(dtype)  # the kernel's u, bit for bit


def _erfc_exact(u):
    mpmath = pytest.importorskip("mpmath")
    with mpmath.workdps(30):
        return np.array([float(mpmath.erfc(mpmath.mpf(float(v)))) for v in u])


@pytest.mark.parametrize("dtype", DTYPES)
def test_gelu_erfc_accuracy_in_ulp(dtype):
    """The vectorized erfc against 30-digit values, wherever erfc is a normal number: float32
    within 2 ulp on the portable path (computed in double) and 7 on the AVX2 / AVX-512 paths
    (in float with FMA), float64 within 5 ulp, each including up to 1 ulp from the rounding
    of gelu's product (measured: 1.35 on this grid; 6.08 at x = -0.7621126 over every float
    x with |x| <= 15 whose erfc is normal, against long double erfcl; 4.7); subnormal erfc
    within 2 steps of the smallest subnormal; 0 past the underflow point, 2 at the other
    end."""
    x, u = _gelu_erfc_grid(dtype)
    exact = _erfc_exact(u)
    fi = np.finfo(dtype)
    normal = exact >= fi.tiny
    ulp = np.spacing(exact.astype(dtype)).astype(np.longdouble)
    assert normal.sum() > 5000 and (~normal).sum() > 50
    for arch in ARCHS:
        with pynn.arch(arch):
            y = C.gelu_forward(x)
        got = y.astype(np.longdouble) / (np.longdouble(0.5) * x.astype(np.longdouble))
        err = np.abs(got - exact.astype(np.longdouble))
        worst = float(np.max(err[normal] / ulp[normal]))
        bound = (2 if arch == "generic" else 7) if dtype == np.float32 else 5
        assert worst <= bound, f"erfc {np.dtype(dtype).name} arch={arch}: {worst:.2f} ulp"
        sub = float(np.max(err[~normal]))
        assert sub <= 2 * float(fi.smallest_subnormal), f"arch={arch}: subnormal error {sub}"
        assert np.all(y[u > _ERFC_EDGES[dtype][1]] == 0)      # x * erfc(u) with erfc(u) = 0
        far = u < -6
        np.testing.assert_array_equal(y[far], x[far])          # 0.5 x erfc(u) with erfc(u) = 2


@pytest.mark.parametrize("dtype", DTYPES)
def test_gelu_erfc_against_math_erfc(dtype):
    """A second, independent reference: the C library's erfc in float64 (for float32 results
    it is exact to well within their rounding; float64 allows libm's own error), on every
    arch (float32: the portable path and the FMA paths, bounds as above plus 1)."""
    x, u = _gelu_erfc_grid(dtype)
    want = np.array([math.erfc(float(v)) for v in u])
    normal = want >= np.finfo(dtype).tiny
    ulp = np.spacing(want.astype(dtype)).astype(np.longdouble)
    for arch in ARCHS:
        with pynn.arch(arch):
            y = C.gelu_forward(x)
        got = y.astype(np.longdouble) / (np.longdouble(0.5) * x.astype(np.longdouble))
        worst = float(np.max(np.abs(got - want)[normal] / ulp[normal]))
        bound = (3 if arch == "generic" else 8) if dtype == np.float32 else 6
        assert worst <= bound, f"arch={arch}: {worst:.2f} ulp"


@BACKENDS
@pytest.mark.parametrize("dtype", DTYPES)
def test_gelu_special_values(be, dtype):
    """+-0, +-inf, NaN and huge inputs, forward and backward, in both backends alike."""
    big = np.finfo(dtype).max
    x = np.array([0.0, -0.0, np.inf, -np.inf, np.nan, big, -big, 1e-30, -1e-30], dtype)
    with np.errstate(invalid="ignore", over="ignore"):  # -inf * 0 and big * big by design
        y = be.gelu_forward(x)
        g = be.gelu_backward(x, np.ones_like(x))
        other = (REF if be is C else C)
        np.testing.assert_array_equal(y, other.gelu_forward(x))
        np.testing.assert_array_equal(g, other.gelu_backward(x, np.ones_like(x)))
    assert y[0] == 0 and not np.signbit(y[0]) and y[1] == 0 and np.signbit(y[1])
    assert y[2] == np.inf and np.isnan(y[3]) and np.isnan(y[4])  # -inf * erfc(inf) = -inf * 0
    assert y[5] == big and y[6] == 0
    np.testing.assert_array_equal(y[7:], x[7:] / 2)
    np.testing.assert_array_equal(g[[0, 1, 6, 7, 8]], np.array([0.5, 0.5, 0.0, 0.5, 0.5], dtype))
    assert g[5] == 1 and np.isnan(g[4])


@BACKENDS
@pytest.mark.parametrize("dtype", DTYPES)
def test_elu_expm1_special_values(be, dtype):
    """elu's expm1 near 0, at the reduction's boundary (+-ln2/2), where it rounds to -1, and at
    -inf / NaN: within 2 ulp of extended precision, -alpha at -inf, NaN through."""
    x = np.array([-1e-30, -1e-8, -0.3465, -0.3467, -0.6931, -0.6932, -19.9, -20.0, -20.1,
                  -39.9, -40.0, -40.1, -1e4], dtype)
    y = be.elu_forward(x, alpha=0.5)
    exact = 0.5 * np.expm1(x.astype(np.longdouble))
    ulp = np.spacing(np.abs(exact.astype(dtype))).astype(np.longdouble)
    assert float(np.max(np.abs(y - exact) / ulp)) <= 2
    z = be.elu_forward(np.array([-np.inf, np.nan, np.inf], dtype), alpha=0.5)
    assert z[0] == -0.5 and np.isnan(z[1]) and z[2] == np.inf


# gelu_forward_grad: the forward and the derivative in one pass (the Transformer MLP's GELU)
GELU_KW = [{}, {"approximate": True}]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("kw", GELU_KW, ids=["exact", "tanh"])
def test_gelu_forward_grad_against_reference(kw, shape, dtype):
    rng = np.random.default_rng(sum(shape) + 11)
    x = _data(rng, shape, dtype, -12.0, 12.0)
    compare("gelu_forward_grad", x, **kw)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("kw", GELU_KW, ids=["exact", "tanh"])
def test_gelu_forward_grad_matches_forward_and_backward(kw, dtype):
    """y agrees with gelu_forward and dy * grad with gelu_backward (separate kernels; the
    compiler may contract different products into FMAs), from x where erfc is subnormal to x
    where it is 2, and at NaN."""
    rng = np.random.default_rng(12)
    x = np.concatenate([_data(rng, (4099,), dtype, -15.0, 15.0),
                        np.array([0.0, -0.0, 14.2, -14.2, 30.0, -30.0, np.nan], dtype)])
    dy = _data(rng, x.shape, dtype)
    for arch in ARCHS:
        with pynn.arch(arch):
            y, g = C.gelu_forward_grad(x, **kw)
            assert_close(y, C.gelu_forward(x, **kw), dtype, 1, arch)
            assert_close(dy * g, C.gelu_backward(x, dy, **kw), dtype, 2, arch)
        assert np.isnan(y[-1]) and np.isnan(g[-1])


@BACKENDS
@pytest.mark.parametrize("kw", GELU_KW, ids=["exact", "tanh"])
def test_gelu_forward_grad_central_differences(be, kw):
    x = _away_from_kinks(np.random.default_rng(13), (3, 4))
    check_grad(lambda x: be.gelu_forward(x, **kw),
               lambda x, dy: dy * be.gelu_forward_grad(x, **kw)[1], [x])


@BACKENDS
@pytest.mark.parametrize("kw", GELU_KW, ids=["exact", "tanh"])
def test_grad_mul_is_the_gelu_backward_by_central_differences(be, kw):
    # the Transformer MLP's backward: gelu_forward_grad's stored derivative times dy
    x = _away_from_kinks(np.random.default_rng(17), (3, 5))
    check_grad(lambda x: be.gelu_forward(x, **kw),
               lambda x, dy: be.grad_mul(be.gelu_forward_grad(x, **kw)[1], dy), [x])


def test_gelu_forward_grad_hand_values():
    # gelu(1) = Phi(1) = 0.8413447460685429; gelu'(1) = Phi(1) + phi(1) = 1.0833154705876864;
    # gelu'(0) = 1/2; gelu(-1) = -0.15865525393145707, gelu'(-1) = -0.08331547058768633
    x = np.array([1.0, 0.0, -1.0])
    for be in (C, REF):
        y, g = be.gelu_forward_grad(x)
        np.testing.assert_allclose(y, [0.8413447460685429, 0.0, -0.15865525393145707],
                                   rtol=1e-15)
        np.testing.assert_allclose(g, [1.0833154705876864, 0.5, -0.08331547058768633],
                                   rtol=1e-14)


@BACKENDS
@pytest.mark.parametrize("dtype", DTYPES)
def test_gelu_forward_grad_out_and_bad_input(be, dtype):
    rng = np.random.default_rng(14)
    x = _data(rng, (5, 7), dtype)
    want_y, want_g = REF.gelu_forward_grad(x.copy())
    xi, g = x.copy(), np.empty_like(x)
    y, g2 = be.gelu_forward_grad(xi, out=xi, grad=g)          # in place over x
    assert y is xi and g2 is g
    assert_close(y, want_y, dtype, 1, "in place")
    assert_close(g, want_g, dtype, 1, "grad")
    for _, xv in layouts(x):
        yv, gv = be.gelu_forward_grad(xv)
        assert_close(yv, want_y, dtype, 1, "layouts")
        assert_close(gv, want_g, dtype, 1, "layouts")
    with pytest.raises(ValueError, match="overlaps"):
        be.gelu_forward_grad(x, grad=x)
    out = np.empty_like(x)
    with pytest.raises(ValueError, match="overlaps"):
        be.gelu_forward_grad(x, out=out, grad=out)
    with pytest.raises(ValueError, match="shape"):
        be.gelu_forward_grad(x, grad=np.empty((5, 8), dtype))
    with pytest.raises(TypeError, match="dtype"):
        be.gelu_forward_grad(x, grad=np.empty((5, 7), np.float16))
    with pytest.raises(TypeError, match="float32 or float64"):
        be.gelu_forward_grad(np.ones(3, np.int64))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_softmax_rows_of_nan_and_minus_inf_are_nan(dtype):
    # a row with no finite entry: all -inf gives the uniform row, but -inf and NaN only
    # give NaN (C took the NaN-free maximum -inf for a fully masked row and returned 1/N)
    x = np.array([[np.nan] * 3, [-np.inf, np.nan, -np.inf], [-np.inf] * 3], dtype)
    for name in ("softmax_forward", "log_softmax_forward"):
        want = compare(name, x)
        assert np.isnan(want[:2]).all() and np.isfinite(want[2]).all()


@pytest.mark.filterwarnings("ignore:the matrix subclass:PendingDeprecationWarning")
def test_byte_swapped_and_matrix_inputs_are_accepted():
    # big-endian floats were refused by the dtype check that ran before their native copy;
    # np.matrix broke the reference's keepdims reductions
    x = np.arange(6.0).reshape(2, 3)
    for be in (C, REF):
        np.testing.assert_array_equal(be.softmax_forward(x.astype(">f8")), be.softmax_forward(x))
        np.testing.assert_array_equal(be.softmax_forward(np.matrix(x)), be.softmax_forward(x))
    with pytest.raises(TypeError, match="float32 or float64"):
        C.softmax_forward(x.astype(">i8"))


def test_masked_arrays_are_refused():
    # C read the masked values as data; the twin failed deep inside NumPy
    x = np.ma.masked_array(np.arange(6.0).reshape(2, 3), mask=[[0, 1, 0], [0, 0, 0]])
    for be in (C, REF):
        with pytest.raises(TypeError, match="masked array"):
            be.softmax_forward(x)
        with pytest.raises(TypeError, match="masked array"):
            be.gemm(x, np.ones((3, 2)))


# grad_mul: dy * grad, the backward that uses gelu_forward_grad's stored derivative
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", SHAPES + [(32, 64, 512)])
def test_grad_mul_against_reference(shape, dtype):
    rng = np.random.default_rng(sum(shape) + 11)
    g, dy = _data(rng, shape, dtype), _data(rng, shape, dtype)
    got = compare("grad_mul", g, dy)
    np.testing.assert_array_equal(got, dy * g)     # one rounding: exact against NumPy
    for be in (C, REF):                             # in place over dy, as the layer calls it
        d = dy.copy()
        assert be.grad_mul(g, d, out=d) is d
        np.testing.assert_array_equal(d, dy * g)


@pytest.mark.parametrize("dtype", DTYPES)
def test_grad_mul_layouts_and_specials(dtype):
    rng = np.random.default_rng(5)
    g, dy = _data(rng, (6, 11), dtype), _data(rng, (6, 11), dtype)
    for _, gv in layouts(g):
        for _, dv in layouts(dy):
            compare("grad_mul", gv, dv)
    s = np.array([np.inf, -np.inf, np.nan, 0.0, -0.0, 2.0], dtype)
    t = np.array([0.0, 2.0, 1.0, np.inf, 3.0, np.nan], dtype)
    with np.errstate(invalid="ignore"):
        np.testing.assert_array_equal(C.grad_mul(s, t), REF.grad_mul(s, t))


@pytest.mark.parametrize("be", [C, REF], ids=["c", "reference"])
def test_grad_mul_bad_input(be):
    a = np.ones((3, 4), np.float32)
    with pytest.raises(ValueError, match="shape"):
        be.grad_mul(a, np.ones((4, 3), np.float32))
    with pytest.raises((TypeError, ValueError), match="dtype"):
        be.grad_mul(a, np.ones((3, 4), np.float64))
    with pytest.raises((TypeError, ValueError)):
        be.grad_mul(a, a, out=np.ones((3, 4), np.float32)[:, :2])
    with pytest.raises((TypeError, ValueError)):
        be.grad_mul(np.ones((3, 4), np.int32), a)
