"""conv2d_maxpool_forward, the inference fusion of a convolution and the tiling max pooling
after it: C against the NumPy twin (conv then pool), bit-identity with the unfused C kernels
(conv2d_forward then max_pool2d_forward) on every arch and thread count, hand-worked values,
bad input in both backends."""
import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

import pynn
from helpers import ARCHS, C, REF, THREADS, compare, layouts, rand

DTYPES = (np.float32, np.float64)
BACKENDS = pytest.mark.parametrize("be", [C, REF], ids=["c", "reference"])

# (B, H, W, C, OC, KH, KW, strides, padding, dilation, activation, pool_size)
CASES = [
    (1, 2, 2, 1, 1, 1, 1, (1, 1), "valid", (1, 1), "linear", (2, 2)),   # one window
    (3, 28, 28, 1, 32, 3, 3, (1, 1), "valid", (1, 1), "relu", (2, 2)),  # the CNN's conv1 (direct)
    (4, 13, 13, 32, 64, 3, 3, (1, 1), "valid", (1, 1), "relu", (2, 2)),  # conv2: odd 11x11
    (2, 9, 7, 3, 5, 3, 3, (2, 2), "same", (1, 1), "tanh", (2, 2)),      # strided, 'same'
    (2, 11, 12, 16, 7, 2, 2, (1, 1), "same", (1, 1), "linear", (3, 3)),  # pool 3, drops rows
    (5, 17, 15, 8, 33, 3, 3, (1, 1), "valid", (1, 1), "sigmoid", (2, 3)),  # OC 32 + 1
    (2, 10, 9, 2, 40, 3, 3, (1, 1), "same", (2, 2), "relu", (2, 2)),    # dilation, direct
    (3, 7, 7, 5, 3, 1, 1, (1, 1), "valid", (1, 1), "relu", (2, 2)),     # 1x1
    (2, 6, 5, 3, 4, 6, 5, (1, 1), "valid", (1, 1), "linear", (1, 1)),   # kernel == image
    (17, 8, 8, 3, 7, 3, 3, (1, 1), "same", (1, 1), "relu", (2, 2)),     # many units
    (0, 6, 6, 3, 4, 3, 3, (1, 1), "same", (1, 1), "relu", (2, 2)),      # empty batch
]


def _ids(c):
    return "B{}_{}x{}x{}_OC{}_k{}x{}_s{}_{}_d{}_{}_p{}".format(
        *c[:7], c[7][0], c[8], c[9][0], c[10], "x".join(map(str, c[11])))


def _data(case, dtype, seed=0):
    B, H, W, Cin, OC, KH, KW = case[:7]
    rng = np.random.default_rng(seed)
    return rand(rng, (B, H, W, Cin), dtype), rand(rng, (KH, KW, Cin, OC), dtype), \
        rand(rng, (OC,), dtype)


def _unfused_c(x, w, b, s, p, d, act, pool):
    y = C.conv2d_forward(x, w, b, s, p, d, act)
    return C.max_pool2d_forward(y, pool, pool, "valid")


def _check_matches_unfused(x, w, b, s, p, d, act, pool):
    """C fused == C conv2d_forward + max_pool2d_forward, bit for bit, on every arch/threads."""
    for arch in ARCHS:
        for nt in THREADS:
            with pynn.arch(arch), pynn.num_threads(nt):
                got = C.conv2d_maxpool_forward(x, w, b, s, p, d, act, pool)
                want = _unfused_c(x, w, b, s, p, d, act, pool)
            assert np.array_equal(got, want, equal_nan=True), \
                f"arch={arch} threads={nt}: fused differs from conv2d + max_pool2d"


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("case", CASES, ids=_ids)
def test_against_reference_and_unfused(case, dtype):
    x, w, b = _data(case, dtype)
    s, p, d, act, pool = case[7:]
    y = compare("conv2d_maxpool_forward", x, w, b, s, p, d, act, pool,
                k=case[3] * case[5] * case[6])
    B, OC = case[0], case[4]
    oh, ow = REF.conv2d_forward(x, w, b, s, p, d, act).shape[1:3]
    assert y.shape == (B, oh // pool[0], ow // pool[1], OC)
    _check_matches_unfused(x, w, b, s, p, d, act, pool)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", [((1, 7, 3, 8), (3, 3, 8, 2), (3, 1)),      # narrow C, M 5 vs 3
                                   ((2, 6, 5, 64), (3, 3, 64, 256), (2, 2)),  # K*N past 512 KB
                                   ((1, 5, 5, 100), (3, 3, 100, 300), (2, 1))])
def test_few_rows_match_unfused(shape, dtype):
    # the fused kernel multiplies fewer rows per GEMM call than conv2d_forward's pixel
    # blocks: GEMM's narrow path and depth blocks must not depend on the row count
    rng = np.random.default_rng(12)
    xs, ws, pool = shape
    x, w = rand(rng, xs, dtype), rand(rng, ws, dtype, -0.3, 0.3)
    for pad in ("valid", "same"):
        _check_matches_unfused(x, w, None, (1, 1), pad, (1, 1), "relu", pool)


def test_large_batch_matches_unfused():
    # the reference CNN's second stage at an inference batch: many units over 2 threads
    x, w, b = _data((300, 13, 13, 32, 64, 3, 3), np.float32, seed=3)
    _check_matches_unfused(x, w, b, (1, 1), "valid", (1, 1), "relu", (2, 2))
    x, w, b = _data((300, 28, 28, 1, 32, 3, 3), np.float32, seed=4)
    _check_matches_unfused(x, w, b, (1, 1), "valid", (1, 1), "relu", (2, 2))


@pytest.mark.parametrize("dtype", DTYPES)
def test_layouts(dtype):
    case = (2, 7, 6, 3, 4, 3, 3)
    x, w, b = _data(case, dtype)
    args = ((1, 1), "same", (1, 1), "relu", (2, 2))
    for name, xv in layouts(x):
        compare("conv2d_maxpool_forward", xv, w, b, *args, k=27)
        _check_matches_unfused(xv, w, b, *args)
    for name, wv in layouts(w):
        compare("conv2d_maxpool_forward", x, wv, b, *args, k=27)
    for name, bv in layouts(b):
        compare("conv2d_maxpool_forward", x, w, bv, *args, k=27)
    # direct path (K <= 32) on a transposed (non-contiguous) x
    x1 = rand(np.random.default_rng(1), (2, 9, 8, 1), dtype)
    xt = np.ascontiguousarray(x1.transpose(0, 2, 1, 3)).transpose(0, 2, 1, 3)
    w1 = rand(np.random.default_rng(2), (3, 3, 1, 5), dtype)
    compare("conv2d_maxpool_forward", xt, w1, None, pool_size=2, activation="relu", k=9)


@settings(max_examples=12, deadline=None)
@given(b=st.integers(1, 3), h=st.integers(2, 12), w=st.integers(2, 12), c=st.integers(1, 6),
       oc=st.integers(1, 9), k=st.integers(1, 3), s=st.integers(1, 2),
       padding=st.sampled_from(["valid", "same"]), ph=st.integers(1, 3), pw=st.integers(1, 3),
       dtype=st.sampled_from(DTYPES), act=st.sampled_from(["linear", "relu", "tanh"]))
def test_random_shapes(b, h, w, c, oc, k, s, padding, ph, pw, dtype, act):
    if padding == "valid" and (k > h or k > w):
        return
    x, wt, bias = _data((b, h, w, c, oc, k, k), dtype, seed=h * 100 + w)
    y = REF.conv2d_forward(x, wt, bias, s, padding, 1, act)
    if y.shape[1] < ph or y.shape[2] < pw:
        return
    compare("conv2d_maxpool_forward", x, wt, bias, s, padding, 1, act, (ph, pw), k=k * k * c)
    _check_matches_unfused(x, wt, bias, (s, s), padding, (1, 1), act, (ph, pw))


@BACKENDS
def test_hand_worked(be):
    # x 1x4x5x1 = 0..19 (x[i, j] = 5i + j), one 2x2 kernel of ones: the convolution is
    # z[i, j] = x[i, j] + x[i, j+1] + x[i+1, j] + x[i+1, j+1] + bias = 20i + 4j + 12 + bias
    # on (3, 4); 2x2 pooling keeps rows 0-1 and columns 0-3 (row 2 is dropped).
    x = np.arange(20, dtype=np.float64).reshape(1, 4, 5, 1)
    w = np.ones((2, 2, 1, 1))
    # bias -30: window maxima z[1, 1] = 6, z[1, 3] = 14
    y = be.conv2d_maxpool_forward(x, w, np.array([-30.0]))
    np.testing.assert_array_equal(y, np.array([6.0, 14.0]).reshape(1, 1, 2, 1))
    # bias -36 with relu: z[1, 1] = 0 and z[1, 3] = 8; every other tap is negative
    y = be.conv2d_maxpool_forward(x, w, np.array([-36.0]), activation="relu")
    np.testing.assert_array_equal(y, np.array([0.0, 8.0]).reshape(1, 1, 2, 1))
    # -w, bias 30: the maximum is each window's first tap, z[0, 0] = 18 and z[0, 2] = 10
    y = be.conv2d_maxpool_forward(x, -w, np.array([30.0]))
    np.testing.assert_array_equal(y, np.array([18.0, 10.0]).reshape(1, 1, 2, 1))


@BACKENDS
def test_nan_wins_its_window(be):
    x = np.zeros((1, 4, 4, 1))
    x[0, 2, 1, 0] = np.nan
    y = be.conv2d_maxpool_forward(x, np.ones((1, 1, 1, 2)), np.ones(2))
    assert np.isnan(y[0, 1, 0]).all() and np.array_equal(y[0, 0], np.ones((2, 2)))
    assert np.array_equal(y[0, 1, 1], np.ones(2))


def test_out_argument_is_used_and_written():
    x, w, b = _data((2, 6, 6, 3, 4, 3, 3), np.float64)
    out = np.full((2, 2, 2, 4), np.nan)
    assert C.conv2d_maxpool_forward(x, w, b, out=out) is out
    np.testing.assert_allclose(out, REF.conv2d_maxpool_forward(x, w, b), rtol=1e-13,
                               atol=1e-13)


@BACKENDS
def test_bad_input(be):
    f = be.conv2d_maxpool_forward
    x, w = np.ones((2, 6, 6, 3)), np.ones((3, 3, 3, 4))
    with pytest.raises(ValueError, match="4-D"):
        f(np.ones((6, 6, 3)), w)
    with pytest.raises(ValueError, match="input channels"):
        f(np.ones((2, 6, 6, 2)), w)
    with pytest.raises(TypeError, match="float32 or float64"):
        f(x.astype(np.int32), w)
    with pytest.raises(TypeError, match="one dtype"):
        f(x.astype(np.float32), w)
    with pytest.raises(ValueError, match="activation"):
        f(x, w, activation="softmax")
    with pytest.raises(ValueError, match="larger than the padded input"):
        f(np.ones((2, 2, 6, 3)), w)
    with pytest.raises(ValueError,
                       match=r"pool_size \(5, 5\) is larger than the convolution output \(4, 4\)"):
        f(x, w, pool_size=5)     # conv output is 4x4
    with pytest.raises(ValueError, match=">= 1"):
        f(x, w, pool_size=(0, 2))
    with pytest.raises(TypeError, match="pair of ints"):
        f(x, w, pool_size=(2.0, 2))
    with pytest.raises(ValueError, match="b must have shape"):
        f(x, w, np.ones(5))
    with pytest.raises(ValueError, match="shape"):
        f(x, w, out=np.empty((2, 4, 4, 4)))   # the unpooled shape
    with pytest.raises(TypeError, match="dtype"):
        f(x, w, out=np.empty((2, 2, 2, 4), np.float32))
    ro = np.empty((2, 2, 2, 4))
    ro.flags.writeable = False
    with pytest.raises(ValueError, match="read-only"):
        f(x, w, out=ro)
    x1 = np.ones((2, 2, 2, 3))
    with pytest.raises(ValueError, match="overlaps"):
        f(x1, np.ones((1, 1, 3, 3)), pool_size=1, out=x1)   # never in place
