"""conv2d and depthwise conv2d: C kernels against the NumPy twin, central differences,
hand-worked values, Keras padding arithmetic, bad configurations."""
import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from helpers import C, REF, check_grad, compare, layouts, rand

DTYPES = (np.float32, np.float64)
BACKENDS = pytest.mark.parametrize("be", [C, REF], ids=["c", "reference"])

# (B, H, W, C, OC, KH, KW, strides, padding, dilation, activation)
CASES = [
    (1, 1, 1, 1, 1, 1, 1, (1, 1), "valid", (1, 1), "linear"),     # all ones
    (2, 7, 6, 3, 4, 3, 3, (1, 1), "valid", (1, 1), "linear"),
    (2, 7, 6, 3, 4, 3, 2, (2, 1), "same", (1, 1), "relu"),        # even kernel, asymmetric pad
    (1, 9, 9, 2, 3, 3, 3, (1, 2), "same", (2, 2), "tanh"),        # dilation
    (3, 5, 5, 4, 5, 1, 1, (1, 1), "valid", (1, 1), "sigmoid"),    # 1x1: plain GEMM path
    (2, 5, 7, 3, 2, 1, 1, (2, 2), "same", (1, 1), "linear"),      # 1x1 strided: im2col path
    (2, 4, 4, 3, 2, 4, 4, (1, 1), "valid", (1, 1), "linear"),     # kernel == image
    (2, 6, 6, 3, 2, 2, 2, (2, 2), "same", (1, 1), "relu"),
    (1, 13, 11, 1, 1, 5, 3, (3, 2), "same", (1, 1), "linear"),    # C = OC = 1, primes
    (5, 11, 13, 7, 17, 3, 3, (2, 3), "valid", (1, 2), "tanh"),    # primes
    (4, 12, 12, 8, 16, 3, 3, (1, 1), "same", (1, 1), "relu"),     # big enough for 2 threads
    (0, 5, 5, 3, 4, 3, 3, (1, 1), "same", (1, 1), "linear"),      # empty batch
    # K = KH*KW*C <= 32: the direct (no im2col) path, OC in blocks of 32 plus a tail
    (3, 28, 28, 1, 32, 3, 3, (1, 1), "valid", (1, 1), "relu"),    # the reference CNN's conv1
    (2, 9, 8, 2, 40, 3, 3, (1, 1), "same", (1, 1), "sigmoid"),    # OC = 32 + 8
    (2, 7, 9, 1, 64, 2, 2, (2, 2), "valid", (1, 1), "relu"),      # two full OC blocks
    (17, 5, 5, 3, 7, 3, 3, (1, 1), "same", (2, 1), "linear"),     # > 16 images: groups of 2
]


def _ids(c):
    return "B{}_{}x{}x{}_OC{}_k{}x{}_s{}_{}_d{}_{}".format(*c[:7], *c[7:8], c[8], c[9][0], c[10])


def _conv_data(case, dtype, seed=0, depthwise=False):
    B, H, W, Cin, OC, KH, KW = case[:7]
    rng = np.random.default_rng(seed)
    x = rand(rng, (B, H, W, Cin), dtype)
    w = rand(rng, (KH, KW, Cin, 1 if depthwise else OC), dtype)
    b = rand(rng, (Cin if depthwise else OC,), dtype)
    return rng, x, w, b


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("case", CASES, ids=_ids)
@pytest.mark.parametrize("depthwise", [False, True], ids=["conv", "depthwise"])
def test_against_reference(case, dtype, depthwise):
    rng, x, w, b = _conv_data(case, dtype, depthwise=depthwise)
    s, p, d, act = case[7:]
    kind = "depthwise_conv2d" if depthwise else "conv2d"
    taps = case[5] * case[6] * (1 if depthwise else case[3])
    y = compare(f"{kind}_forward", x, w, b, s, p, d, act, k=taps)
    dy = rand(rng, y.shape, dtype)
    n = y.shape[0] * y.shape[1] * y.shape[2]
    compare(f"{kind}_backward", x, w, y, dy, s, p, d, act, k=max(n, taps))
    compare(f"{kind}_backward", x, w, y, dy, s, p, d, act, need_dx=False, k=max(n, taps))


@pytest.mark.parametrize("dtype", DTYPES)
def test_layouts(dtype):
    case = (2, 6, 5, 3, 4, 3, 3, (1, 2), "same", (1, 1), "relu")
    rng, x, w, b = _conv_data(case, dtype)
    s, p, d, act = case[7:]
    y = REF.conv2d_forward(x, w, b, s, p, d, act)
    dy = rand(rng, y.shape, dtype)
    for name, xv in layouts(x):
        compare("conv2d_forward", xv, w, b, s, p, d, act, k=27)
        compare("conv2d_backward", xv, w, y, dy, s, p, d, act, k=27)
        compare("depthwise_conv2d_forward", xv, w[..., :1], b[:3], s, p, d, act, k=9)
    for name, wv in layouts(w):
        compare("conv2d_forward", x, wv, b, s, p, d, act, k=27)
    for name, dyv in layouts(dy):
        compare("conv2d_backward", x, w, y, dyv, s, p, d, act, k=27)
    # the pointwise GEMM path reads x rows by stride; a transposed x cannot take it
    w1 = rand(rng, (1, 1, 3, 4), dtype)
    xt = np.ascontiguousarray(x.transpose(0, 2, 1, 3)).transpose(0, 2, 1, 3)
    compare("conv2d_forward", xt, w1, None, k=3)
    compare("conv2d_backward", xt, w1, None, rand(rng, (2, 6, 5, 4), dtype), k=30)


@settings(max_examples=15, deadline=None)
@given(b=st.integers(1, 3), h=st.integers(1, 9), w=st.integers(1, 9), c=st.integers(1, 5),
       oc=st.integers(1, 6), kh=st.integers(1, 4), kw=st.integers(1, 4),
       sh=st.integers(1, 3), sw=st.integers(1, 3), dil=st.integers(1, 2),
       padding=st.sampled_from(["valid", "same"]), dtype=st.sampled_from(DTYPES),
       act=st.sampled_from(["linear", "relu", "sigmoid", "tanh"]))
def test_random_shapes(b, h, w, c, oc, kh, kw, sh, sw, dil, padding, dtype, act):
    keff_h, keff_w = (kh - 1) * dil + 1, (kw - 1) * dil + 1
    if padding == "valid" and (keff_h > h or keff_w > w):
        return
    case = (b, h, w, c, oc, kh, kw)
    rng, x, wt, bias = _conv_data(case, dtype, seed=h * 100 + w)
    y = compare("conv2d_forward", x, wt, bias, (sh, sw), padding, (dil, dil), act, k=kh * kw * c)
    dy = rand(rng, y.shape, dtype)
    compare("conv2d_backward", x, wt, y, dy, (sh, sw), padding, (dil, dil), act,
            k=max(kh * kw * c, b * y.shape[1] * y.shape[2]))


GRAD_CASES = [
    (2, 5, 4, 2, 3, 3, 2, (1, 1), "same", (1, 1), "tanh"),
    (1, 6, 7, 3, 2, 3, 3, (2, 2), "same", (1, 1), "sigmoid"),
    (2, 7, 7, 2, 2, 2, 3, (2, 1), "valid", (2, 1), "linear"),
    (2, 4, 4, 3, 2, 1, 1, (1, 1), "valid", (1, 1), "tanh"),
]


@pytest.mark.parametrize("case", GRAD_CASES, ids=_ids)
@pytest.mark.parametrize("depthwise", [False, True], ids=["conv", "depthwise"])
@BACKENDS
def test_gradients(be, case, depthwise):
    _, x, w, b = _conv_data(case, np.float64, depthwise=depthwise)
    s, p, d, act = case[7:]
    fwd = be.depthwise_conv2d_forward if depthwise else be.conv2d_forward
    bwd = be.depthwise_conv2d_backward if depthwise else be.conv2d_backward

    def forward(x, w, b):
        return fwd(x, w, b, s, p, d, act)

    def grads(x, w, b, dy):
        dx, dw, db = bwd(x, w, forward(x, w, b), dy, s, p, d, act)
        return dx, dw, db

    check_grad(forward, grads, (x, w, b))


def test_relu_gradient_away_from_kink():
    # relu's derivative is taken from y > 0; keep pre-activations away from 0
    rng = np.random.default_rng(3)
    x = rand(rng, (2, 5, 5, 2), np.float64)
    w = rand(rng, (3, 3, 2, 3), np.float64)
    b = np.array([0.5, -0.5, 0.1])
    z = REF.conv2d_forward(x, w, b, padding="same")
    assert np.min(np.abs(z)) > 1e-4
    fwd = lambda x, w, b: C.conv2d_forward(x, w, b, padding="same", activation="relu")
    bwd = lambda x, w, b, dy: C.conv2d_backward(x, w, fwd(x, w, b), dy, padding="same",
                                                 activation="relu")
    check_grad(fwd, bwd, (x, w, b))


IMG = np.arange(16.0).reshape(1, 4, 4, 1)


@BACKENDS
def test_hand_worked_all_ones_kernel(be):
    ones = np.ones((3, 3, 1, 1))
    y = be.conv2d_forward(IMG, ones)
    np.testing.assert_array_equal(y[0, :, :, 0], [[45, 54], [81, 90]])
    y = be.conv2d_forward(IMG, ones, padding="same")
    np.testing.assert_array_equal(y[0, :, :, 0], [[10, 18, 24, 18], [27, 45, 54, 39],
                                                  [51, 81, 90, 63], [42, 66, 72, 50]])
    # TF "same" with stride 2 on an even size: 1 pad row/column, after (bottom/right)
    y = be.conv2d_forward(IMG, ones, strides=2, padding="same")
    np.testing.assert_array_equal(y[0, :, :, 0], [[45, 39], [66, 50]])
    # even kernel, stride 1: the single pad goes after
    y = be.conv2d_forward(IMG, np.ones((2, 2, 1, 1)), padding="same")
    np.testing.assert_array_equal(y[0, :, :, 0], [[10, 14, 18, 10], [26, 30, 34, 18],
                                                  [42, 46, 50, 26], [25, 27, 29, 15]])
    # dilation 2 on a 3x3 kernel reads rows/cols 0, 2 (and 1, 3)
    y = be.conv2d_forward(IMG, np.ones((2, 2, 1, 1)), dilation=2)
    np.testing.assert_array_equal(y[0, :, :, 0], [[20, 24], [36, 40]])
    # bias and relu
    y = be.conv2d_forward(IMG, -ones, np.array([50.0]), activation="relu")
    np.testing.assert_array_equal(y[0, :, :, 0], [[5, 0], [0, 0]])
    # backward of the all-ones valid conv with dy = 1: dx counts the windows covering each
    # pixel, dw sums the windows' pixels, db counts the outputs
    dx, dw, db = be.conv2d_backward(IMG, ones, None, np.ones((1, 2, 2, 1)))
    np.testing.assert_array_equal(dx[0, :, :, 0], [[1, 2, 2, 1], [2, 4, 4, 2],
                                                   [2, 4, 4, 2], [1, 2, 2, 1]])
    np.testing.assert_array_equal(dw[:, :, 0, 0], [[10, 14, 18], [26, 30, 34], [42, 46, 50]])
    np.testing.assert_array_equal(db, [4])
    # depthwise: two channels, each its own kernel
    x2 = np.concatenate([IMG, -IMG], axis=3)
    wd = np.stack([np.ones((3, 3)), 2 * np.ones((3, 3))], axis=2)[..., None]
    y = be.depthwise_conv2d_forward(x2, wd)
    np.testing.assert_array_equal(y[0, :, :, 0], [[45, 54], [81, 90]])
    np.testing.assert_array_equal(y[0, :, :, 1], [[-90, -108], [-162, -180]])


def test_out_arguments_are_used_and_written():
    rng = np.random.default_rng(0)
    x, w = rand(rng, (2, 5, 5, 3), np.float64), rand(rng, (3, 3, 3, 4), np.float64)
    out = np.full((2, 3, 3, 4), np.nan)
    assert C.conv2d_forward(x, w, out=out) is out
    np.testing.assert_allclose(out, REF.conv2d_forward(x, w), rtol=1e-13, atol=1e-13)
    dy = rand(rng, (2, 3, 3, 4), np.float64)
    dx, dw, db = np.full(x.shape, np.nan), np.full(w.shape, np.nan), np.full(4, np.nan)
    got = C.conv2d_backward(x, w, None, dy, dx=dx, dw=dw, db=db)
    assert got[0] is dx and got[1] is dw and got[2] is db
    assert np.all(np.isfinite(dx)) and np.all(np.isfinite(dw))
    # an empty batch writes zero gradients for w and b
    dw[...] = np.nan
    db[...] = np.nan
    C.conv2d_backward(x[:0], w, None, dy[:0], dw=dw, db=db)
    np.testing.assert_array_equal(dw, 0)
    np.testing.assert_array_equal(db, 0)


@pytest.mark.parametrize("depthwise", [False, True], ids=["conv", "depthwise"])
@BACKENDS
def test_bad_input(be, depthwise):
    fwd = be.depthwise_conv2d_forward if depthwise else be.conv2d_forward
    bwd = be.depthwise_conv2d_backward if depthwise else be.conv2d_backward
    x = np.ones((2, 5, 5, 3))
    w = np.ones((3, 3, 3, 1 if depthwise else 4))
    oc = 3 if depthwise else 4
    with pytest.raises(ValueError, match="4-D"):
        fwd(np.ones((5, 5, 3)), w)
    with pytest.raises(ValueError, match="4-D"):
        fwd(x, np.ones((3, 3, 3)))
    with pytest.raises(ValueError, match="input channels"):
        fwd(np.ones((2, 5, 5, 2)), w)
    with pytest.raises(TypeError, match="float32 or float64"):
        fwd(x.astype(np.int64), w)
    with pytest.raises(TypeError, match="one dtype"):
        fwd(x.astype(np.float32), w)
    with pytest.raises(TypeError, match="ndarray"):
        fwd(x.tolist(), w)
    with pytest.raises(ValueError, match=">= 1"):
        fwd(x, w, strides=(0, 1))
    with pytest.raises(ValueError, match=">= 1"):
        fwd(x, w, strides=-1)
    with pytest.raises(ValueError, match=">= 1"):
        fwd(x, w, dilation=0)
    with pytest.raises(TypeError, match="pair of ints"):
        fwd(x, w, strides=(1.5, 1))
    with pytest.raises(ValueError, match="padding"):
        fwd(x, w, padding="full")
    with pytest.raises(ValueError, match="larger than the padded input"):
        fwd(np.ones((2, 2, 5, 3)), w)
    with pytest.raises(ValueError, match="larger than the padded input"):
        fwd(x, w, dilation=3)
    with pytest.raises(ValueError, match="activation"):
        fwd(x, w, activation="gelu")
    with pytest.raises(ValueError, match="b must have shape"):
        fwd(x, w, np.ones(oc + 1))
    with pytest.raises(ValueError, match="height and width"):
        fwd(np.ones((2, 0, 5, 3)), w, padding="same")
    with pytest.raises(ValueError, match="shape"):
        fwd(x, w, out=np.empty((2, 3, 3, oc + 1)))
    with pytest.raises(TypeError, match="dtype"):
        fwd(x, w, out=np.empty((2, 3, 3, oc), np.float32))
    ro = np.empty((2, 3, 3, oc))
    ro.flags.writeable = False
    with pytest.raises(ValueError, match="read-only"):
        fwd(x, w, out=ro)
    w1 = np.ones((1, 1, 3, 1 if depthwise else 3))
    with pytest.raises(ValueError, match="overlaps"):
        fwd(x, w1, out=x)  # a 1x1 convolution may not run in place
    dy = np.ones((2, 3, 3, oc))
    with pytest.raises(ValueError, match="dy must have shape"):
        bwd(x, w, None, np.ones((2, 3, 3, oc + 1)))
    with pytest.raises(ValueError, match="forward output"):
        bwd(x, w, None, dy, activation="relu")
    with pytest.raises(ValueError, match="y must have shape"):
        bwd(x, w, np.ones((2, 3, 4, oc)), dy, activation="relu")
    with pytest.raises(ValueError, match="overlaps"):
        bwd(x, w, None, dy, dx=x)
    with pytest.raises(ValueError, match="shape"):
        bwd(x, w, None, dy, dw=np.empty((3, 3, 3, 5)))


def test_depthwise_rejects_multiplier():
    for be in (C, REF):
        with pytest.raises(ValueError, match="depth_multiplier 1"):
            be.depthwise_conv2d_forward(np.ones((1, 4, 4, 2)), np.ones((3, 3, 2, 2)))


# conv2d_transpose: (B, H, W, C, F, KH, KW, strides, padding, dilation, activation)
TRANSPOSE_CASES = [
    (1, 1, 1, 1, 1, 1, 1, (1, 1), "valid", (1, 1), "linear"),
    (2, 4, 4, 3, 5, 3, 3, (2, 2), "same", (1, 1), "linear"),
    (2, 5, 3, 3, 5, 3, 3, (2, 1), "valid", (1, 1), "relu"),
    (1, 3, 3, 2, 4, 2, 2, (3, 3), "valid", (1, 1), "tanh"),     # stride > kernel: gaps
    (2, 4, 5, 3, 2, 2, 3, (1, 1), "same", (2, 1), "sigmoid"),   # dilation
    (3, 4, 4, 3, 5, 1, 1, (1, 1), "valid", (1, 1), "linear"),   # 1x1
    (4, 8, 8, 8, 16, 3, 3, (2, 2), "same", (1, 1), "relu"),     # big enough for 2 threads
    (0, 3, 3, 2, 2, 3, 3, (1, 1), "same", (1, 1), "linear"),
]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("case", TRANSPOSE_CASES, ids=_ids)
def test_transpose_against_reference(case, dtype):
    B, H, W, Cin, F, KH, KW, s, p, d, act = case
    rng = np.random.default_rng(0)
    x = rand(rng, (B, H, W, Cin), dtype)
    w = rand(rng, (KH, KW, F, Cin), dtype)
    b = rand(rng, (F,), dtype)
    y = compare("conv2d_transpose_forward", x, w, b, s, p, d, act, k=KH * KW * Cin)
    dy = rand(rng, y.shape, dtype)
    n = max(y.shape[0] * y.shape[1] * y.shape[2], KH * KW * F)
    compare("conv2d_transpose_backward", x, w, y, dy, s, p, d, act, k=n)
    compare("conv2d_transpose_backward", x, w, y, dy, s, p, d, act, need_dx=False, k=n)
    for name, xv in layouts(x):
        compare("conv2d_transpose_forward", xv, w, b, s, p, d, act, k=KH * KW * Cin)


@pytest.mark.parametrize("case", [TRANSPOSE_CASES[1], TRANSPOSE_CASES[3], TRANSPOSE_CASES[4]],
                         ids=_ids)
@BACKENDS
def test_transpose_gradients(be, case):
    B, H, W, Cin, F, KH, KW, s, p, d, act = case
    rng = np.random.default_rng(1)
    x = rand(rng, (B, H, W, Cin), np.float64)
    w = rand(rng, (KH, KW, F, Cin), np.float64)
    b = rand(rng, (F,), np.float64)
    act = "tanh" if act == "relu" else act

    def forward(x, w, b):
        return be.conv2d_transpose_forward(x, w, b, s, p, d, act)

    def grads(x, w, b, dy):
        return be.conv2d_transpose_backward(x, w, forward(x, w, b), dy, s, p, d, act)

    check_grad(forward, grads, (x, w, b))


@BACKENDS
def test_transpose_hand_worked_and_adjoint(be):
    # one pixel through an all-ones 3x3 kernel: the kernel stamped, scaled by the pixel
    y = be.conv2d_transpose_forward(np.full((1, 1, 1, 1), 2.0), np.ones((3, 3, 1, 1)))
    np.testing.assert_array_equal(y[0, :, :, 0], np.full((3, 3), 2.0))
    # stride 2, 2x2 kernel, valid: stamps tile the output without overlap
    x = np.arange(4.0).reshape(1, 2, 2, 1)
    y = be.conv2d_transpose_forward(x, np.ones((2, 2, 1, 1)), strides=2)
    np.testing.assert_array_equal(y[0, :, :, 0], np.kron(x[0, :, :, 0], np.ones((2, 2))))
    # Keras output sizes: same -> H * s; valid -> H * s + max(k - s, 0)
    assert be.conv2d_transpose_forward(np.ones((1, 3, 5, 2)), np.ones((3, 3, 4, 2)), None, 2,
                                       "same").shape == (1, 6, 10, 4)
    assert be.conv2d_transpose_forward(np.ones((1, 3, 5, 2)), np.ones((3, 3, 4, 2)), None, 2,
                                       "valid").shape == (1, 7, 11, 4)
    # the transpose of conv2d: <conv2d(z, w), x> == <z, conv2d_transpose(x, w)>
    rng = np.random.default_rng(2)
    for s, p in [(2, "same"), (2, "valid"), (1, "same"), (3, "valid")]:
        x = rng.standard_normal((2, 4, 3, 3))
        w = rng.standard_normal((3, 2, 5, 3))
        y = be.conv2d_transpose_forward(x, w, None, s, p)
        z = rng.standard_normal(y.shape)
        np.testing.assert_allclose(np.sum(be.conv2d_forward(z, w, None, s, p) * x),
                                   np.sum(z * y), rtol=1e-12)


@BACKENDS
def test_transpose_bad_input(be):
    x = np.ones((2, 4, 4, 3))
    with pytest.raises(ValueError, match="input channels"):
        be.conv2d_transpose_forward(x, np.ones((3, 3, 5, 2)))
    with pytest.raises(ValueError, match="4-D"):
        be.conv2d_transpose_forward(x[0], np.ones((3, 3, 5, 3)))
    with pytest.raises(ValueError, match="b must have shape"):
        be.conv2d_transpose_forward(x, np.ones((3, 3, 5, 3)), np.ones(3))
    with pytest.raises(ValueError, match=">= 1"):
        be.conv2d_transpose_forward(x, np.ones((3, 3, 5, 3)), strides=0)
    with pytest.raises(ValueError, match="padding"):
        be.conv2d_transpose_forward(x, np.ones((3, 3, 5, 3)), padding="full")
    with pytest.raises(ValueError, match="dy must have shape"):
        be.conv2d_transpose_backward(x, np.ones((3, 3, 5, 3)), None, np.ones((2, 4, 4, 5)))


@pytest.mark.parametrize("dtype", DTYPES)
def test_zero_input_channels(dtype):
    # C = 0: the convolution sums nothing, y is the bias; gradients of w are empty
    x = np.ones((2, 5, 5, 0), dtype)
    w = np.ones((3, 3, 0, 4), dtype)
    b = np.arange(4, dtype=dtype)
    y = compare("conv2d_forward", x, w, b, 1, "same")
    np.testing.assert_array_equal(y, np.broadcast_to(b, (2, 5, 5, 4)))
    dx, dw, db = compare("conv2d_backward", x, w, None, np.ones(y.shape, dtype), 1, "same")
    np.testing.assert_array_equal(db, 50)
    compare("depthwise_conv2d_forward", x, np.ones((3, 3, 0, 1), dtype), None, 1, "same")


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_relu_keeps_nan(dtype):
    # relu_forward keeps NaN; the convolutions' fused relu turned it into 0
    x = np.zeros((1, 4, 4, 1), dtype)
    x[0, 0, 0, 0] = np.nan
    w = np.ones((1, 1, 1, 2), dtype)
    for name, args in (("conv2d_forward", (x, w)), ("depthwise_conv2d_forward", (x, w[..., :1])),
                       ("conv2d_maxpool_forward", (x, w))):
        y = compare(name, *args, activation="relu")
        assert np.isnan(y.reshape(-1, y.shape[-1])[0]).all() and np.isfinite(y.ravel()[-1])


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_depthwise_padded_taps_meet_nonfinite(dtype):
    # the reference pads with zeros, so a padded tap adds 0 * w (forward) and 0 * dz (weight
    # gradient): NaN where w or dz is inf. The C kernel skipped padded taps and gave finite
    # values there.
    x = np.ones((1, 4, 4, 3), dtype)
    w = np.ones((3, 3, 3, 1), dtype)
    w[0, 0, 1, 0] = np.inf
    with np.errstate(invalid="ignore"):
        y = compare("depthwise_conv2d_forward", x, w, None, 1, "same", k=9)
    assert np.isnan(y[0, 0, :, 1]).all() and np.isnan(y[0, :, 0, 1]).all()
    assert np.isinf(y[0, 1:, 1:, 1]).all() and np.isfinite(y[..., [0, 2]]).all()
    w[0, 0, 1, 0] = 1
    y = compare("depthwise_conv2d_forward", x, w, None, 1, "same", k=9)
    dy = np.ones(y.shape, dtype)
    dy[0, 0, 0, 1] = np.inf
    with np.errstate(invalid="ignore"):
        dx, dw, db = compare("depthwise_conv2d_backward", x, w, y, dy, 1, "same", k=16)
    # the output (0, 0) has padded taps on row 0 and column 0: 0 * inf = NaN there
    assert np.isnan(dw[0, :, 1, 0]).all() and np.isnan(dw[:, 0, 1, 0]).all()
    assert np.isinf(dw[1:, 1:, 1, 0]).all() and np.isfinite(dw[:, :, [0, 2], 0]).all()
