"""Fused Dense: C kernel against the NumPy twin for every activation, strided / transposed
operands, gradients by central differences, hand-worked values, flat gradient buffers and
bad input."""
import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

import pynn
from helpers import ARCHS, C, REF, THREADS, assert_close, check_grad, compare, layouts, rand

DTYPES = (np.float32, np.float64)
ACTS = ("linear", "relu", "sigmoid", "tanh")
BACKENDS = pytest.mark.parametrize("be", [C, REF], ids=["c", "reference"])
# (B, C, OC): ones, empties, primes, and one big enough for two threads in the epilogue
SHAPES = [(1, 1, 1), (1, 7, 3), (5, 1, 4), (6, 3, 1), (13, 17, 11), (0, 4, 3), (4, 0, 3),
          (4, 3, 0), (31, 67, 29), (300, 23, 257)]


def _problem(rng, B, Cin, OC, dtype):
    x = rand(rng, (B, Cin), dtype)
    w = rand(rng, (Cin, OC), dtype)
    b = rand(rng, (OC,), dtype)
    dy = rand(rng, (B, OC), dtype)
    return x, w, b, dy


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", SHAPES, ids=str)
@pytest.mark.parametrize("act", ACTS)
def test_against_reference(act, shape, dtype):
    B, Cin, OC = shape
    x, w, b, dy = _problem(np.random.default_rng(sum(shape)), B, Cin, OC, dtype)
    compare("dense_forward", x, w, None, act, k=Cin + 1)
    y = compare("dense_forward", x, w, b, act, k=Cin + 1)
    k = max(B, OC, 1)
    compare("dense_backward", x, w, y, dy, act, k=k)
    got = compare("dense_backward", x, w, y, dy, act, need_dx=False, k=k)
    assert got[0] is None
    if act == "linear":
        compare("dense_backward", x, w, None, dy, act, k=k)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("act", ACTS)
def test_strided_and_transposed_operands(act, dtype):
    rng = np.random.default_rng(11)
    B, Cin, OC = 7, 5, 6
    x, w, b, dy = _problem(rng, B, Cin, OC, dtype)
    y = REF.dense_forward(x, w, b, act)
    for (xn, xv), (wn, wv) in zip(layouts(x), layouts(w)):
        compare("dense_forward", xv, wv, b, act, k=Cin + 1)
        compare("dense_backward", xv, wv, y, dy, act, k=max(B, OC))
    xt = np.ascontiguousarray(x.T).T          # (B, C) Fortran view of a transposed buffer
    wt = np.ascontiguousarray(w.T).T          # (C, OC) as w^T (OC, C) transposed: PyTorch layout
    compare("dense_forward", xt, wt, b, act, k=Cin + 1)
    compare("dense_backward", xt, wt, y, dy, act, k=max(B, OC))
    compare("dense_forward", x[::-1], w[:, ::-1], b[::-1], act, k=Cin + 1)
    for (_, yv), (_, dyv) in zip(layouts(y), layouts(dy)):  # y, dy: copied to C order
        compare("dense_backward", x, w, yv if act != "linear" else None, dyv, act,
                k=max(B, OC))


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", SHAPES, ids=str)
@pytest.mark.parametrize("act", ACTS)
def test_residual_against_reference(act, shape, dtype):
    """out = act(x @ w + b) + residual, with and without a bias; for "linear" the residual
    rides the bias pass, else it follows the activation"""
    B, Cin, OC = shape
    rng = np.random.default_rng(sum(shape) + 1)
    x, w, b, _ = _problem(rng, B, Cin, OC, dtype)
    r = rand(rng, (B, OC), dtype)
    for bias in (b, None):
        got = compare("dense_forward", x, w, bias, act, residual=r, k=Cin + 2)
        plain = REF.dense_forward(x, w, bias, act)
        np.testing.assert_array_equal(got, plain + r)    # the twin: act(.) + residual


@pytest.mark.parametrize("dtype", DTYPES)
def test_residual_layouts_and_out(dtype):
    """a strided or transposed residual (copied to C order) and an out buffer given; the
    residual is read, never written"""
    rng = np.random.default_rng(3)
    B, Cin, OC = 9, 5, 7
    x, w, b, _ = _problem(rng, B, Cin, OC, dtype)
    r = rand(rng, (B, OC), dtype)
    for _, rv in layouts(r):
        keep = rv.copy()
        compare("dense_forward", x, w, b, "linear", residual=rv, k=Cin + 2)
        compare("dense_forward", x, w, b, "tanh", residual=rv, k=Cin + 2)
        np.testing.assert_array_equal(rv, keep)
    for be in (C, REF):
        out = np.full((B, OC), np.nan, dtype)
        assert be.dense_forward(x, w, b, residual=r, out=out) is out
        np.testing.assert_allclose(out, x @ w + b + r, rtol=1e-5, atol=1e-5)


@BACKENDS
def test_residual_bad_input(be):
    x, w, b, _ = _problem(np.random.default_rng(0), 4, 3, 2, np.float64)
    with pytest.raises(ValueError, match=r"residual must have shape \(4, 2\)"):
        be.dense_forward(x, w, b, residual=np.ones((4, 3)))
    with pytest.raises(ValueError, match="2-D"):
        be.dense_forward(x, w, b, residual=np.ones(2))
    with pytest.raises(TypeError, match="dtype"):
        be.dense_forward(x, w, b, residual=np.ones((4, 2), np.float32))
    with pytest.raises(TypeError, match="float32 or float64"):
        be.dense_forward(x, w, b, residual=np.ones((4, 2), np.int64))
    r = np.ones((4, 2))
    with pytest.raises(ValueError, match="overlaps"):
        be.dense_forward(x, w, b, residual=r, out=r)          # in place is refused
    buf = np.zeros(16)
    with pytest.raises(ValueError, match="overlaps"):
        be.dense_forward(x, w, b, residual=buf[:8].reshape(4, 2), out=buf[6:14].reshape(4, 2))


@settings(max_examples=20, deadline=None)
@given(B=st.integers(0, 40), Cin=st.integers(0, 40), OC=st.integers(0, 40),
       act=st.sampled_from(ACTS), dtype=st.sampled_from(DTYPES), bias=st.booleans())
def test_random_shapes(B, Cin, OC, act, dtype, bias):
    x, w, b, dy = _problem(np.random.default_rng(B * 1600 + Cin * 40 + OC), B, Cin, OC, dtype)
    y = compare("dense_forward", x, w, b if bias else None, act, k=Cin + 1)
    compare("dense_backward", x, w, y, dy, act, k=max(B, OC, 1))


def _away_from_kinks(rng, B, Cin, OC):
    """float64 problem whose pre-activations are not within 1e-3 of the relu kink."""
    while True:
        x, w, b, _ = _problem(rng, B, Cin, OC, np.float64)
        if np.min(np.abs(x @ w + b)) > 1e-3:
            return x, w, b


@BACKENDS
@pytest.mark.parametrize("act", ACTS)
def test_backward_central_differences(be, act):
    x, w, b = _away_from_kinks(np.random.default_rng(2), 3, 4, 5)

    def grads(x, w, b, dy):
        y = be.dense_forward(x, w, b, act)
        dx, dw, db = be.dense_backward(x, w, y, dy, act)
        return dx, dw, db

    check_grad(lambda x, w, b: be.dense_forward(x, w, b, act), grads, [x, w, b])


@BACKENDS
@pytest.mark.parametrize("dtype", DTYPES)
def test_hand_worked_values(be, dtype):
    x = np.array([[1.0, 2.0]], dtype)
    w = np.array([[1.0, 0.0, -1.0], [0.0, 1.0, 1.0]], dtype)
    b = np.array([0.5, -3.0, 0.0], dtype)
    eq = np.testing.assert_array_equal
    eq(be.dense_forward(x, w, b), [[1.5, -1.0, 1.0]])
    y = be.dense_forward(x, w, b, "relu")
    eq(y, [[1.5, 0.0, 1.0]])
    dx, dw, db = be.dense_backward(x, w, y, np.ones((1, 3), dtype), "relu")
    eq(dw, [[1.0, 0.0, 1.0], [2.0, 0.0, 2.0]])
    eq(db, [1.0, 0.0, 1.0])
    eq(dx, [[0.0, 1.0]])
    z = np.zeros((2, 2), dtype)
    eq(be.dense_forward(z, z, None, "sigmoid"), np.full((2, 2), 0.5))
    eq(be.dense_forward(z, z, None, "tanh"), np.zeros((2, 2)))
    ys = np.full((2, 2), 0.5, dtype)
    dx, dw, db = be.dense_backward(np.ones((2, 2), dtype), np.eye(2, dtype=dtype), ys,
                                   np.full((2, 2), 4.0, dtype), "sigmoid")
    eq(db, [2.0, 2.0])                       # 4 * 0.5 * 0.5 per row, two rows
    eq(dx, np.ones((2, 2)))
    eq(be.dense_forward(np.ones((3, 0), dtype), np.ones((0, 2), dtype), b[:2]),
       np.tile(b[:2], (3, 1)))               # C = 0: the bias alone


@BACKENDS
@pytest.mark.parametrize("act", ACTS)
def test_gradients_into_flat_buffer(be, act):
    rng = np.random.default_rng(4)
    x, w, b, dy = _problem(rng, 6, 5, 3, np.float32)
    y = REF.dense_forward(x, w, b, act)
    flat = np.full(5 * 3 + 3 + 4, 7.0, np.float32)
    dw, db = flat[2:17].reshape(5, 3), flat[17:20]
    dx = np.full((6, 5), np.nan, np.float32)
    got = be.dense_backward(x, w, y, dy, act, dx=dx, dw=dw, db=db)
    assert got[0] is dx and got[1] is dw and got[2] is db
    want = REF.dense_backward(x, w, y, dy, act)
    for g, e in zip(got, want):
        np.testing.assert_allclose(g, e, rtol=1e-5, atol=1e-5)
    np.testing.assert_array_equal(flat[[0, 1, 20, 21]], 7.0)  # neighbours untouched
    out = np.full((6, 3), np.nan, np.float32)
    assert be.dense_forward(x, w, b, act, out=out) is out  # beta = 0: NaN in out never read
    np.testing.assert_allclose(out, y, rtol=1e-5, atol=1e-5)


@BACKENDS
def test_bad_input(be):
    x, w, b, dy = _problem(np.random.default_rng(0), 4, 3, 2, np.float64)
    y = REF.dense_forward(x, w, b, "tanh")
    with pytest.raises(ValueError, match=r"w must have shape \(C, OC\) with C = x.shape\[1\] = 3"):
        be.dense_forward(x, w.T, b)
    with pytest.raises(ValueError, match="2-D"):
        be.dense_forward(x[0], w, b)
    with pytest.raises(ValueError, match=r"b must have shape \(2,\)"):
        be.dense_forward(x, w, np.ones(3))
    with pytest.raises(ValueError, match="'linear', 'relu', 'sigmoid', 'tanh'"):
        be.dense_forward(x, w, b, "softmax")
    with pytest.raises(ValueError, match="unknown activation"):
        be.dense_backward(x, w, y, dy, "gelu")
    with pytest.raises(ValueError, match="unknown activation"):
        be.dense_forward(x, w, b, None)
    with pytest.raises(TypeError, match="float32 or float64"):
        be.dense_forward(x.astype(np.int32), w, b)
    with pytest.raises(TypeError, match="dtype"):
        be.dense_forward(x, w.astype(np.float32), b)
    with pytest.raises(TypeError, match="dtype"):
        be.dense_forward(x, w, b.astype(np.float32))
    with pytest.raises(TypeError, match="dtype"):
        be.dense_backward(x, w, y, dy.astype(np.float32), "tanh")
    with pytest.raises(ValueError, match=r"dy must have shape \(4, 2\)"):
        be.dense_backward(x, w, y, dy[:3], "tanh")
    with pytest.raises(ValueError, match=r"y must have shape \(4, 2\)"):
        be.dense_backward(x, w, y[:, :1], dy, "tanh")
    with pytest.raises(ValueError, match="needs the forward output y"):
        be.dense_backward(x, w, None, dy, "relu")
    with pytest.raises(ValueError, match="need_dx=False"):
        be.dense_backward(x, w, y, dy, "tanh", need_dx=False, dx=np.empty((4, 3)))
    with pytest.raises(ValueError, match="shape"):
        be.dense_forward(x, w, b, out=np.empty((2, 4)))
    with pytest.raises(ValueError, match="overlaps"):
        xb = np.ones(14)
        be.dense_forward(xb[:12].reshape(4, 3), w, b, out=xb[4:12].reshape(4, 2))
    buf = np.zeros(20)
    with pytest.raises(ValueError, match="dw overlaps"):
        be.dense_backward(x, w, y, dy, "tanh", dx=buf[:12].reshape(4, 3),
                          dw=buf[10:16].reshape(3, 2))
    with pytest.raises(ValueError, match="db overlaps"):
        be.dense_backward(x, w, y, dy, "tanh", dw=buf[:6].reshape(3, 2), db=buf[5:7])
    with pytest.raises(ValueError, match="dx overlaps"):
        be.dense_backward(x, w, y, dy, "tanh", dx=x)
    ro = np.empty((3, 2))
    ro.flags.writeable = False
    with pytest.raises(ValueError, match="read-only"):
        be.dense_backward(x, w, y, dy, "tanh", dw=ro)
    with pytest.raises(TypeError, match="dtype"):
        be.dense_backward(x, w, y, dy, "tanh", db=np.empty(2, np.float32))


# GELU, forward only, with its derivative (grad=) written by the GEMM's epilogue. The shapes
# take every GEMM path: tiles on the small path (and its shared packed B at 2 threads), the
# packed path in depth blocks (600 deep, B past 512 KB in float32: the epilogue only after
# the last block; 300 rows: threads share each B block), dot products (one row with w^T read
# in place), narrow C from rows of x (OC = 3), and C^T (x Fortran-ordered, OC = 5): the
# last three apply the epilogue row by row after the product. 128 x 300 @ 300 x 128 splits
# the small path by column tiles at 2 threads (11 row slivers share unevenly)
GELUS = ("gelu", "gelu_tanh")
GELU_SHAPES = SHAPES + [(300, 600, 300), (50, 100, 3), (1, 70, 33), (128, 300, 128)]


def _gelu_both(be, x, w, b, act, residual=None):
    B, OC = x.shape[0], w.shape[1]
    grad = np.full((B, OC), np.nan, x.dtype)
    out = be.dense_forward(x, w, b, act, residual=residual, grad=grad)
    return out, grad


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", GELU_SHAPES, ids=str)
@pytest.mark.parametrize("act", GELUS)
def test_gelu_against_reference(act, shape, dtype):
    B, Cin, OC = shape
    rng = np.random.default_rng(sum(shape) + 5)
    x, w, b, _ = _problem(rng, B, Cin, OC, dtype)
    r = rand(rng, (B, OC), dtype)
    xs = [x, np.asfortranarray(x)]
    ws = [w, np.asfortranarray(w)] if B == 1 else [w]
    if (B, Cin, OC) == (50, 100, 3):
        xs.append(np.asfortranarray(rand(rng, (40, Cin), dtype)))   # C^T with OC = 3
    for xv in xs:
        for wv in ws:
            for bias, res in ((b, None), (None, None), (b, r[:xv.shape[0]])):
                want = _gelu_both(REF, xv, wv, bias, act, res)
                # without grad= the same output
                compare("dense_forward", xv, wv, bias, act, residual=res, k=Cin + 2)
                for arch in ARCHS:
                    first = None
                    for nt in THREADS:
                        with pynn.arch(arch), pynn.num_threads(nt):
                            got = _gelu_both(C, xv, wv, bias, act, res)
                        for g, e, name in zip(got, want, ("out", "grad")):
                            assert_close(g, e, dtype, Cin + 2, f"{name} {arch} {nt} {shape}")
                        if first is None:
                            first = got
                        else:
                            for g, f in zip(got, first):
                                np.testing.assert_array_equal(g, f)   # any thread count


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("act", GELUS)
def test_gelu_fused_gives_the_bits_of_the_separate_kernels(act, dtype):
    """the epilogue runs the vector loops of gelu_forward_grad on rows of the GEMM's tiles:
    the fused call and linear + gelu_forward_grad (+ residual) agree to the bit, but for
    values near the bottom of the range: the epilogue runs under the GEMM's flush-to-zero
    (pre-activations near -13 in float32, whose GELU is subnormal or is the product of a
    subnormal Phi, come out 0 there)"""
    rng = np.random.default_rng(8)
    for B, Cin, OC in ((2048 // 8, 128, 512), (37, 19, 77), (300, 600, 300)):
        x, w, b, _ = _problem(rng, B, Cin, OC, dtype)
        x *= dtype(6 / np.sqrt(Cin))                             # pre-activations: sd 2
        r = rand(rng, (B, OC), dtype)
        for arch in ARCHS:
            with pynn.arch(arch):
                y, g = _gelu_both(C, x, w, b, act)
                z = C.dense_forward(x, w, b)
                y2, g2 = C.gelu_forward_grad(z, approximate=act == "gelu_tanh")
                for fused, alone in ((y, y2), (g, g2)):
                    big = np.abs(alone) > 1e4 * np.finfo(dtype).tiny
                    assert big.mean() > 0.9
                    np.testing.assert_array_equal(fused[big], alone[big])
                    assert np.all(np.abs(fused[~big]) <= 1e4 * np.finfo(dtype).tiny)
                yr, gr = _gelu_both(C, x, w, b, act, residual=r)
                np.testing.assert_array_equal(yr, y + r)
                np.testing.assert_array_equal(gr, g)


@BACKENDS
def test_gelu_central_differences(be):
    """d/dz of the fused output is grad: x @ w + b moved by h in one entry of b"""
    x, w, b, _ = _problem(np.random.default_rng(6), 5, 4, 3, np.float64)
    for act in GELUS:
        y, g = _gelu_both(be, x, w, b, act)
        h = 1e-6
        for j in range(3):
            bp, bm = b.copy(), b.copy()
            bp[j] += h
            bm[j] -= h
            fd = (be.dense_forward(x, w, bp, act)[:, j] - be.dense_forward(x, w, bm, act)[:, j])
            np.testing.assert_allclose(fd / (2 * h), g[:, j], rtol=1e-7, atol=1e-8)
        np.testing.assert_allclose(y, REF.gelu_forward(x @ w + b, approximate=act != "gelu"),
                                   rtol=1e-14, atol=1e-15)


@BACKENDS
def test_gelu_bad_input(be):
    x, w, b, _ = _problem(np.random.default_rng(0), 4, 3, 2, np.float64)
    with pytest.raises(ValueError, match="grad= is written only for activation 'gelu'"):
        be.dense_forward(x, w, b, "relu", grad=np.empty((4, 2)))
    with pytest.raises(ValueError, match="grad= is written only"):
        be.dense_forward(x, w, b, grad=np.empty((4, 2)))
    with pytest.raises(ValueError, match=r"grad must have shape \(4, 2\)"):
        be.dense_forward(x, w, b, "gelu", grad=np.empty((4, 3)))
    with pytest.raises(TypeError, match="dtype"):
        be.dense_forward(x, w, b, "gelu", grad=np.empty((4, 2), np.float32))
    out = np.empty((4, 2))
    with pytest.raises(ValueError, match="grad overlaps"):
        be.dense_forward(x, w, b, "gelu", out=out, grad=out)
    with pytest.raises(ValueError, match="grad overlaps"):
        be.dense_forward(x, w, b, "gelu_tanh", residual=out, grad=out)
    with pytest.raises(ValueError, match="C-contiguous"):
        be.dense_forward(x, w, b, "gelu", grad=np.empty((2, 4)).T)
    ro = np.empty((4, 2))
    ro.flags.writeable = False
    with pytest.raises(ValueError, match="read-only"):
        be.dense_forward(x, w, b, "gelu", grad=ro)
    with pytest.raises(ValueError, match="unknown activation"):
        be.dense_backward(x, w, None, np.ones((4, 2)), "gelu_tanh")


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", GELU_SHAPES, ids=str)
def test_dx_mul_against_reference(shape, dtype):
    """dx = (dz @ w.T) * dx_mul in the dx GEMM's epilogue (on both threads' paths: one GEMM
    on two threads, or dw and dx side by side), for a linear and a fused activation; the
    same bits as dense_backward then grad_mul"""
    B, Cin, OC = shape
    rng = np.random.default_rng(sum(shape) + 9)
    x, w, b, dy = _problem(rng, B, Cin, OC, dtype)
    m = rand(rng, (B, Cin), dtype)
    for act in ("linear", "tanh"):
        y = REF.dense_forward(x, w, b, act)
        want = compare("dense_backward", x, w, y, dy, act, dx_mul=m, k=max(B, OC, 1))
        dz = dy * (1 - y * y) if act == "tanh" else dy           # the twin against NumPy
        np.testing.assert_allclose(want[0], (dz @ w.T) * m, rtol=1e-5, atol=1e-5 * max(1, OC))
        for arch in ARCHS:
            with pynn.arch(arch):
                fused = C.dense_backward(x, w, y, dy, act, dx_mul=m)
                plain = C.dense_backward(x, w, y, dy, act)
                np.testing.assert_array_equal(fused[0], C.grad_mul(m, plain[0]))
                np.testing.assert_array_equal(fused[1], plain[1])
                np.testing.assert_array_equal(fused[2], plain[2])
    compare("dense_backward", x, w, None, dy, dx_mul=np.asfortranarray(m), k=max(B, OC, 1))


@BACKENDS
def test_dx_mul_bad_input(be):
    x, w, b, dy = _problem(np.random.default_rng(0), 4, 3, 2, np.float64)
    with pytest.raises(ValueError, match="need_dx=False"):
        be.dense_backward(x, w, None, dy, need_dx=False, dx_mul=np.ones((4, 3)))
    with pytest.raises(ValueError, match=r"dx_mul must have shape \(4, 3\)"):
        be.dense_backward(x, w, None, dy, dx_mul=np.ones((4, 2)))
    with pytest.raises(TypeError, match="dtype"):
        be.dense_backward(x, w, None, dy, dx_mul=np.ones((4, 3), np.float32))
    m = np.ones((4, 3))
    with pytest.raises(ValueError, match="dx overlaps"):
        be.dense_backward(x, w, None, dy, dx=m, dx_mul=m)


@BACKENDS
@pytest.mark.parametrize("act", ["linear", "tanh"])
def test_dx_mul_central_differences(be, act):
    """dx_mul chains a previous GELU: with u the pre-activation, x = gelu(u) saved with its
    derivative (dense_forward grad=), dense_backward(dx_mul=gelu'(u)) is d/du of
    sum(dy * dense(gelu(u))), against central differences in float64"""
    rng = np.random.default_rng(12)
    u, w = rand(rng, (3, 4), np.float64), rand(rng, (4, 5), np.float64)
    b = rand(rng, (5,), np.float64)

    def forward(u):
        return be.dense_forward(be.gelu_forward(u), w, b, act)

    def grads(u, dy):
        g = np.empty_like(u)
        x = be.dense_forward(u, np.eye(4), None, "gelu", grad=g)    # gelu(u) and gelu'(u)
        y = be.dense_forward(x, w, b, act)
        return be.dense_backward(x, w, y, dy, act, dx_mul=g)[0]

    check_grad(forward, grads, [u])
