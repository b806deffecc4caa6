"""Pooling (max, average, global): C kernels against the NumPy twin, central differences,
hand-worked values incl. ties and Keras "same" averaging, bad configurations."""
import numpy as np
import pytest

import pynn
from hypothesis import given, settings, strategies as st

from helpers import ARCHS, C, REF, check_grad, compare, layouts, rand

DTYPES = (np.float32, np.float64)
BACKENDS = pytest.mark.parametrize("be", [C, REF], ids=["c", "reference"])
KINDS = ("max", "avg")

# (B, H, W, C, pool_size, strides, padding)
CASES = [
    (1, 1, 1, 1, (1, 1), None, "valid"),
    (2, 7, 6, 3, (2, 2), None, "valid"),       # odd size: last row/column dropped
    (2, 7, 6, 3, (3, 2), (2, 1), "same"),
    (1, 5, 5, 4, (3, 3), (1, 1), "same"),      # overlapping windows
    (3, 4, 4, 2, (4, 4), None, "valid"),       # pool == image
    (2, 9, 7, 5, 2, 1, "same"),                # even pool, asymmetric pad
    (1, 13, 11, 1, (5, 3), (3, 2), "same"),    # C = 1, primes
    (8, 24, 24, 16, (2, 2), None, "valid"),    # big enough for 2 threads
    (0, 4, 4, 2, (2, 2), None, "same"),        # empty batch
    # disjoint windows (strides >= pool): max backward writes taps instead of adding
    (2, 8, 6, 70, (2, 2), None, "valid"),      # tiles the image exactly, 64 + 6 channels
    (2, 9, 7, 3, (2, 2), (3, 3), "same"),      # gaps between windows, padded
    (3, 26, 26, 32, (2, 2), None, "valid"),    # the reference CNN's first pooling
]


def _ids(c):
    return "B{}_{}x{}x{}_p{}_s{}_{}".format(*c)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("case", CASES, ids=_ids)
@pytest.mark.parametrize("kind", KINDS)
def test_against_reference(case, dtype, kind):
    B, H, W, Cc, ps, s, p = case
    rng = np.random.default_rng(0)
    x = rand(rng, (B, H, W, Cc), dtype)
    y = compare(f"{kind}_pool2d_forward", x, ps, s, p, k=9)
    dy = rand(rng, y.shape, dtype)
    compare(f"{kind}_pool2d_backward", x, dy, ps, s, p, k=9)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", [(1, 1, 1, 1), (2, 7, 5, 3), (3, 1, 13, 2), (16, 20, 20, 32),
                                   (0, 3, 3, 2)])
@pytest.mark.parametrize("kind", KINDS)
def test_global_against_reference(shape, dtype, kind):
    rng = np.random.default_rng(1)
    x = rand(rng, shape, dtype)
    y = compare(f"global_{kind}_pool2d_forward", x, k=shape[1] * shape[2])
    dy = rand(rng, y.shape, dtype)
    compare(f"global_{kind}_pool2d_backward", x, dy)


@pytest.mark.parametrize("dtype", DTYPES)
def test_layouts(dtype):
    rng = np.random.default_rng(2)
    x = rand(rng, (2, 6, 5, 3), dtype)
    dy = rand(rng, (2, 3, 3, 3), dtype)
    for name, xv in layouts(x):
        for kind in KINDS:
            compare(f"{kind}_pool2d_forward", xv, 2, None, "same", k=4)
            compare(f"{kind}_pool2d_backward", xv, dy, 2, None, "same", k=4)
            compare(f"global_{kind}_pool2d_forward", xv, k=30)
            compare(f"global_{kind}_pool2d_backward", xv, dy[:, 0, 0, :])
    for name, dyv in layouts(dy):
        compare("max_pool2d_backward", x, dyv, 2, None, "same", k=4)
        compare("avg_pool2d_backward", x, dyv, 2, None, "same", k=4)


@settings(max_examples=15, deadline=None)
@given(b=st.integers(1, 3), h=st.integers(1, 10), w=st.integers(1, 10), c=st.integers(1, 6),
       ph=st.integers(1, 4), pw=st.integers(1, 4), sh=st.integers(1, 4), sw=st.integers(1, 4),
       padding=st.sampled_from(["valid", "same"]), dtype=st.sampled_from(DTYPES),
       kind=st.sampled_from(KINDS))
def test_random_shapes(b, h, w, c, ph, pw, sh, sw, padding, dtype, kind):
    if padding == "valid" and (ph > h or pw > w):
        return
    rng = np.random.default_rng(h * 100 + w)
    x = rand(rng, (b, h, w, c), dtype)
    y = compare(f"{kind}_pool2d_forward", x, (ph, pw), (sh, sw), padding, k=16)
    compare(f"{kind}_pool2d_backward", x, rand(rng, y.shape, dtype), (ph, pw), (sh, sw),
            padding, k=16)


@pytest.mark.parametrize("args", [((2, 2), None, "valid"), ((3, 3), (2, 2), "same"),
                                  ((2, 3), (1, 1), "same")])
@pytest.mark.parametrize("kind", KINDS)
@BACKENDS
def test_gradients(be, kind, args):
    rng = np.random.default_rng(4)
    # distinct values: max pooling is differentiable away from ties
    x = rng.permutation(2 * 5 * 6 * 2).reshape(2, 5, 6, 2) / 7.0
    fwd = getattr(be, f"{kind}_pool2d_forward")
    bwd = getattr(be, f"{kind}_pool2d_backward")
    check_grad(lambda x: fwd(x, *args), lambda x, dy: bwd(x, dy, *args), (x,))


@pytest.mark.parametrize("kind", KINDS)
@BACKENDS
def test_global_gradients(be, kind):
    x = np.random.default_rng(5).permutation(2 * 3 * 4 * 3).reshape(2, 3, 4, 3) / 5.0
    fwd = getattr(be, f"global_{kind}_pool2d_forward")
    bwd = getattr(be, f"global_{kind}_pool2d_backward")
    check_grad(fwd, bwd, (x,))


IMG = np.arange(16.0).reshape(1, 4, 4, 1)


@BACKENDS
def test_hand_worked_values(be):
    np.testing.assert_array_equal(be.max_pool2d_forward(IMG)[0, :, :, 0], [[5, 7], [13, 15]])
    np.testing.assert_array_equal(be.avg_pool2d_forward(IMG)[0, :, :, 0],
                                  [[2.5, 4.5], [10.5, 12.5]])
    # Keras "same" averages the valid elements only: a 3x3 image of ones stays ones
    ones = np.ones((1, 3, 3, 1))
    np.testing.assert_array_equal(be.avg_pool2d_forward(ones, 2, padding="same"), 1.0)
    # "same", pool 2 stride 2 on 3x3: windows {0,1}x{0,1}, {0,1}x{2}, {2}x{0,1}, {2}x{2}
    x = np.arange(9.0).reshape(1, 3, 3, 1)
    np.testing.assert_array_equal(be.avg_pool2d_forward(x, 2, padding="same")[0, :, :, 0],
                                  [[2, 3.5], [6.5, 8]])
    np.testing.assert_array_equal(be.max_pool2d_forward(x, 2, padding="same")[0, :, :, 0],
                                  [[4, 5], [7, 8]])
    dx = be.avg_pool2d_backward(x, np.ones((1, 2, 2, 1)), 2, padding="same")
    np.testing.assert_array_equal(dx[0, :, :, 0], [[.25, .25, .5], [.25, .25, .5], [.5, .5, 1]])
    # ties: the gradient goes to the first maximum in row-major window order
    tie = np.array([[1.0, 3.0], [3.0, 3.0]]).reshape(1, 2, 2, 1)
    dx = be.max_pool2d_backward(tie, np.array([7.0]).reshape(1, 1, 1, 1))
    np.testing.assert_array_equal(dx[0, :, :, 0], [[0, 7], [0, 0]])
    # overlapping windows add up: 3x3 windows stride 1 over a 4x4 ramp all pick the corner
    dx = be.max_pool2d_backward(IMG, np.ones((1, 2, 2, 1)), 3, 1)
    np.testing.assert_array_equal(dx[0, :, :, 0], [[0, 0, 0, 0], [0, 0, 0, 0],
                                                   [0, 0, 1, 1], [0, 0, 1, 1]])
    dx = be.max_pool2d_backward(np.zeros((1, 3, 3, 1)), np.ones((1, 2, 2, 1)), 2, 1)
    np.testing.assert_array_equal(dx[0, :, :, 0], [[1, 1, 0], [1, 1, 0], [0, 0, 0]])
    # global
    x2 = np.concatenate([IMG, -IMG], axis=3)
    np.testing.assert_array_equal(be.global_avg_pool2d_forward(x2), [[7.5, -7.5]])
    np.testing.assert_array_equal(be.global_max_pool2d_forward(x2), [[15, 0]])
    dx = be.global_max_pool2d_backward(x2, np.array([[2.0, 3.0]]))
    assert dx[0, 3, 3, 0] == 2 and dx[0, 0, 0, 1] == 3 and np.count_nonzero(dx) == 2
    dx = be.global_avg_pool2d_backward(x2, np.array([[16.0, 32.0]]))
    np.testing.assert_array_equal(dx[0, :, :, 0], 1.0)
    np.testing.assert_array_equal(dx[0, :, :, 1], 2.0)
    # a NaN counts as the maximum, as NumPy's argmax
    nan = np.array([[1.0, np.nan], [3.0, 2.0]]).reshape(1, 2, 2, 1)
    assert np.isnan(be.max_pool2d_forward(nan)[0, 0, 0, 0])
    assert np.isnan(be.global_max_pool2d_forward(nan)[0, 0])


def test_out_argument_is_used():
    x = np.random.default_rng(0).standard_normal((2, 4, 4, 3))
    out = np.full((2, 2, 2, 3), np.nan)
    assert C.max_pool2d_forward(x, out=out) is out
    np.testing.assert_array_equal(out, REF.max_pool2d_forward(x))
    dx = np.full(x.shape, np.nan)
    assert C.avg_pool2d_backward(x, out, out=dx) is dx
    assert np.all(np.isfinite(dx))


@pytest.mark.parametrize("kind", KINDS)
@BACKENDS
def test_bad_input(be, kind):
    fwd = getattr(be, f"{kind}_pool2d_forward")
    bwd = getattr(be, f"{kind}_pool2d_backward")
    x = np.ones((2, 5, 5, 3))
    with pytest.raises(ValueError, match="4-D"):
        fwd(np.ones((5, 5, 3)))
    with pytest.raises(TypeError, match="float32 or float64"):
        fwd(x.astype(np.int32))
    with pytest.raises(ValueError, match="larger than the padded input"):
        fwd(x, (6, 2))
    with pytest.raises(ValueError, match=">= 1"):
        fwd(x, 2, (0, 1))
    with pytest.raises(ValueError, match=">= 1"):
        fwd(x, 0)
    with pytest.raises(ValueError, match="padding"):
        fwd(x, 2, padding="causal")
    with pytest.raises(ValueError, match="height and width"):
        fwd(np.ones((2, 0, 5, 3)), 2, padding="same")
    with pytest.raises(ValueError, match="dy must have shape"):
        bwd(x, np.ones((2, 3, 3, 3)))
    with pytest.raises(TypeError, match="one dtype"):
        bwd(x, np.ones((2, 2, 2, 3), np.float32))
    with pytest.raises(ValueError, match="overlaps"):
        bwd(x, np.ones((2, 2, 2, 3)), out=x)
    with pytest.raises(ValueError, match="read-only"):
        ro = np.empty((2, 2, 2, 3))
        ro.flags.writeable = False
        fwd(x, out=ro)
    g = getattr(be, f"global_{kind}_pool2d_forward")
    gb = getattr(be, f"global_{kind}_pool2d_backward")
    with pytest.raises(ValueError, match="4-D"):
        g(np.ones((2, 3)))
    with pytest.raises(ValueError, match="height and width"):
        g(np.ones((2, 0, 3, 1)))
    with pytest.raises(ValueError, match="dy must have shape"):
        gb(x, np.ones((2, 4)))
    with pytest.raises(ValueError, match="2-D"):
        gb(x, np.ones((2, 3, 1)))


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape,size", [((1, 1, 1, 1), 1), ((2, 3, 4, 5), (2, 2)),
                                        ((3, 5, 2, 3), (1, 3)), ((0, 2, 2, 2), 2),
                                        ((8, 16, 16, 16), (2, 2))])
def test_upsampling_against_reference(shape, size, dtype):
    rng = np.random.default_rng(6)
    x = rand(rng, shape, dtype)
    y = compare("upsampling2d_forward", x, size)
    dy = rand(rng, y.shape, dtype)
    compare("upsampling2d_backward", x, dy, size, k=9)
    if x.size:
        for name, xv in layouts(x):
            compare("upsampling2d_forward", xv, size)
        for name, dyv in layouts(dy):
            compare("upsampling2d_backward", x, dyv, size, k=9)


@BACKENDS
def test_upsampling_gradient_and_values(be):
    x = np.random.default_rng(7).standard_normal((2, 3, 2, 2))
    check_grad(lambda x: be.upsampling2d_forward(x, (2, 3)),
               lambda x, dy: be.upsampling2d_backward(x, dy, (2, 3)), (x,))
    img = np.array([[1.0, 2.0], [3.0, 4.0]]).reshape(1, 2, 2, 1)
    np.testing.assert_array_equal(be.upsampling2d_forward(img, (1, 2))[0, :, :, 0],
                                  [[1, 1, 2, 2], [3, 3, 4, 4]])
    dx = be.upsampling2d_backward(img, np.ones((1, 4, 4, 1)))
    np.testing.assert_array_equal(dx, 4.0)
    with pytest.raises(ValueError, match=">= 1"):
        be.upsampling2d_forward(img, 0)
    with pytest.raises(ValueError, match="4-D"):
        be.upsampling2d_forward(img[0])
    with pytest.raises(ValueError, match="dy must have shape"):
        be.upsampling2d_backward(img, np.ones((1, 4, 3, 1)))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_max_pool_backward_padded_window_of_minus_inf(dtype):
    # a 'same' window of -inf: the gradient goes to its first real element (the reference's
    # argmax landed on a padded position and dropped that dy)
    x = np.full((2, 1, 5, 3), -np.inf, dtype)
    dy = np.ones((2, 1, 5, 3), dtype)
    dx = compare("max_pool2d_backward", x, dy, (1, 3), (1, 1), "same")
    np.testing.assert_array_equal(dx[0, 0, :, 0], [2, 1, 1, 1, 0])


def test_huge_strides_are_refused():
    for be in (C, REF):
        with pytest.raises(ValueError, match="2\\*\\*31"):
            be.max_pool2d_forward(np.ones((1, 4, 4, 2)), (2, 2), strides=10**20)


@pytest.mark.parametrize("be", [C, REF], ids=["c", "reference"])
def test_global_backward_needs_dy(be):
    # dy=None read as a forward call sent a NULL dy into C (a crash)
    x = np.ones((2, 4, 4, 3), np.float32)
    for name in ("global_avg_pool2d_backward", "global_max_pool2d_backward"):
        with pytest.raises(TypeError, match="needs dy"):
            getattr(be, name)(x, None)


@pytest.mark.parametrize("be", [C, REF], ids=["c", "reference"])
def test_max_backward_sends_non_finite_dy_to_the_argmax_only(be):
    # each dy goes to its window's argmax: a NaN or inf there, 0 elsewhere (the reference
    # multiplied a one-hot by dy, and 0 * NaN spread NaN over the window)
    x = np.arange(16, dtype=np.float32).reshape(1, 4, 4, 1)
    dy = np.array([np.nan, np.inf, 2, 3], np.float32).reshape(1, 2, 2, 1)
    dx = be.max_pool2d_backward(x, dy)[0, :, :, 0]
    want = np.zeros((4, 4), np.float32)
    want[1, 1], want[1, 3], want[3, 1], want[3, 3] = np.nan, np.inf, 2, 3
    np.testing.assert_array_equal(dx, want)
    d1 = np.zeros((1, 2, 2, 1), np.float32)
    d1[0, 0, 0, 0] = np.nan                          # overlapping 3x3 windows, stride 1
    dx = be.max_pool2d_backward(x, d1, pool_size=(3, 3), strides=(1, 1))[0, :, :, 0]
    assert np.isnan(dx[2, 2]) and np.count_nonzero(dx) == 1
    g = be.global_max_pool2d_backward(x, np.array([[np.inf]], np.float32))[0, :, :, 0]
    assert g[3, 3] == np.inf and np.count_nonzero(g) == 1



@pytest.mark.parametrize("dtype", DTYPES)
def test_average_near_overflow_is_summed_in_float64(dtype):
    # a float32 running sum of 3e38-sized values overflows to inf although the mean fits;
    # both backends add in row-major order into float64 and round once (docs/kernels.md),
    # so the mean is finite, exact here, and the same on every arch and thread count
    big = dtype(1.875 * 2.0 ** 127)                       # 3.19e38, sums of it are exact
    x = np.full((2, 4, 5, 67), big, dtype)                 # 67 = 64 + 3: two channel blocks
    x[1, ::2] = -big                                      # channel sums cross +-FLT_MAX
    x[1, 0, 0, 5] = dtype(1e37)
    y = compare("global_avg_pool2d_forward", x, k=20)
    assert np.all(np.isfinite(y))
    np.testing.assert_array_equal(y[0], big)
    np.testing.assert_array_equal(y[1, :5], 0.0)
    if dtype == np.float32:   # 9 (-big), 10 big, 1e37: exact in float64, one rounding at the end
        assert y[1, 5] == dtype((float(dtype(1e37)) + float(big)) / 20.0)
    dy = np.full(y.shape, big, dtype)
    dx = compare("global_avg_pool2d_backward", x, dy)
    np.testing.assert_array_equal(dx, big / dtype(20))
    for ps, s, p in [((2, 3), (1, 1), "same"), ((4, 5), None, "valid"), ((3, 3), (2, 2), "same")]:
        ya = compare("avg_pool2d_forward", x, ps, s, p, k=20)
        np.testing.assert_array_equal(ya[0], big)
        assert np.all(np.isfinite(ya)), (ps, s, p)
    dxa = compare("avg_pool2d_backward", x, np.full((2, 1, 1, 67), big, dtype), (4, 5))
    np.testing.assert_array_equal(dxa, big / dtype(20))
    # float64 input sums in float64 in row-major order: M + M overflows before - M comes
    m = np.finfo(np.float64).max
    x64 = np.array([m, m, -m, 0, 0, 0, 0, 0, 0]).reshape(1, 1, 9, 1)
    assert np.isposinf(compare("global_avg_pool2d_forward", x64, k=9)).all()
    assert compare("global_avg_pool2d_forward", x64[:, :, ::-1], k=9)[0, 0] == m / 9


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("be", ["c", "reference"])
def test_1d_average_layers_near_overflow(be, dtype):
    big = dtype(1.875 * 2.0 ** 127)
    x = np.full((2, 9, 3), big, dtype)
    with pynn.ops.use_backend(be):
        g = pynn.layers.GlobalAveragePooling1D(dtype=dtype)
        a = pynn.layers.AveragePooling1D(3, strides=1, padding="same", dtype=dtype)
        np.testing.assert_array_equal(g(x), np.full((2, 3), big, dtype))
        np.testing.assert_array_equal(a(x), x)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("kind", KINDS)
def test_overlapping_backward_adds_in_output_order(kind, dtype):
    # overlapping windows add at a position in output order (oh, then ow) on both backends,
    # so they agree to the bit, also for sums where the order changes the rounding
    rng = np.random.default_rng(3)
    x = rand(rng, (3, 9, 11, 5), dtype)
    for ps, s, p in [((3, 3), 1, "same"), ((2, 3), (1, 2), "valid"), ((4, 4), (2, 1), "same")]:
        y = getattr(REF, f"{kind}_pool2d_forward")(x, ps, s, p)
        dy = rand(rng, y.shape, dtype) * dtype(1e30)
        want = getattr(REF, f"{kind}_pool2d_backward")(x, dy, ps, s, p)
        compare(f"{kind}_pool2d_backward", x, dy, ps, s, p, k=16)
        for nt in (1, 2):
            with pynn.num_threads(nt):
                got = getattr(C, f"{kind}_pool2d_backward")(x, dy, ps, s, p)
            np.testing.assert_array_equal(got, want, err_msg=f"{ps} {s} {p} threads={nt}")


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("kind", KINDS)
def test_backward_zero_signs_match_the_reference(kind, dtype):
    # disjoint windows: C wrote dy itself at the argmax, so a dy of -0 stayed -0 where the
    # twin's sum into zeros gives +0 (assert_array_equal does not see the sign of zero)
    x = np.arange(24, dtype=dtype).reshape(2, 2, 6, 1)
    for ps, s in [((1, 2), (1, 2)), ((2, 2), (2, 2)), ((1, 2), (1, 3))]:
        y = getattr(REF, f"{kind}_pool2d_forward")(x, ps, s, "valid")
        dy = np.full(y.shape, -0.0, dtype)
        want = getattr(REF, f"{kind}_pool2d_backward")(x, dy, ps, s, "valid")
        for arch in ARCHS:
            for nt in (1, 2):
                with pynn.arch(arch), pynn.num_threads(nt):
                    got = getattr(C, f"{kind}_pool2d_backward")(x, dy, ps, s, "valid")
                np.testing.assert_array_equal(np.signbit(got), np.signbit(want),
                                              err_msg=f"{ps} {s} arch={arch} threads={nt}")
