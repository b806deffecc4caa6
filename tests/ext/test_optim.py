"""Optimizer updates and global-norm clipping: C against the NumPy twin over several steps
(every arch, 1 and 2 threads, bit-identical across thread counts), hand-worked one-step
values, PyTorch trajectories, flush-to-zero of decaying state, norms of huge and tiny
values, bad input."""
import math

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

import pynn
from helpers import ARCHS, C, REF, THREADS, assert_close, compare, layouts, rand

DTYPES = (np.float32, np.float64)
SHAPES = [(0,), (1,), (7,), (97,), (13, 7), (4099,), (100003,)]
STEPS = 4

# (optimizer, state buffers, hyperparameters)
CASES = [
    ("sgd", (), dict(lr=0.1)),
    ("sgd", ("velocity",), dict(lr=0.1, momentum=0.9)),
    ("sgd", ("velocity",), dict(lr=0.05, momentum=0.8, nesterov=True, weight_decay=0.01)),
    ("sgd", (), dict(lr=0.05, weight_decay=0.1)),
    ("adam", ("m", "v"), dict(lr=1e-2)),
    ("adam", ("m", "v"), dict(lr=1e-2, beta_1=0.8, beta_2=0.99, epsilon=1e-6,
                              weight_decay=0.05)),
    ("rmsprop", ("sq_avg",), dict(lr=1e-2)),
    ("rmsprop", ("sq_avg", "velocity"), dict(lr=1e-2, rho=0.8, momentum=0.9)),
    ("rmsprop", ("sq_avg", "mean_grad"), dict(lr=1e-2, centered=True)),
    ("rmsprop", ("sq_avg", "velocity", "mean_grad"),
     dict(lr=1e-2, momentum=0.5, centered=True, weight_decay=0.01)),
    ("adagrad", ("accum",), dict(lr=0.1)),
    ("adagrad", ("accum",), dict(lr=0.1, epsilon=1e-3, weight_decay=0.02)),
]
IDS = [f"{o}-{'-'.join(s) or 'plain'}-{i}" for i, (o, s, _) in enumerate(CASES)]


def init_state(rng, names, shape, dtype):
    """Non-trivial starting state that keeps every formula well defined."""
    st = {}
    for name in names:
        if name in ("v", "sq_avg", "accum"):
            st[name] = rng.uniform(0.5, 1.0, shape).astype(dtype)
        elif name == "mean_grad":
            st[name] = rng.uniform(-0.3, 0.3, shape).astype(dtype)
        else:
            st[name] = rand(rng, shape, dtype)
    return st


def update(be, opt, p, g, st, t, kw):
    if opt == "sgd":
        return be.sgd_update(p, g, st.get("velocity"), **kw)
    if opt == "adam":
        return be.adam_update(p, g, st["m"], st["v"], step=t, **kw)
    if opt == "rmsprop":
        return be.rmsprop_update(p, g, st["sq_avg"], velocity=st.get("velocity"),
                                 mean_grad=st.get("mean_grad"), **kw)
    return be.adagrad_update(p, g, st["accum"], **kw)


def run(be, opt, p0, st0, grads, kw):
    p = p0.copy()
    st = {k: v.copy() for k, v in st0.items()}
    for t, g in enumerate(grads, start=1):
        assert update(be, opt, p, g, st, t, kw) is None
    return p, st


def check_trajectory(opt, names, kw, shape, dtype, steps=STEPS, seed=0):
    rng = np.random.default_rng(seed)
    p0 = rand(rng, shape, dtype, -2, 2)
    st0 = init_state(rng, names, shape, dtype)
    grads = [rand(rng, shape, dtype) for _ in range(steps)]
    want_p, want_st = run(REF, opt, p0, st0, grads, kw)
    for arch in ARCHS:
        first = None
        for nt in THREADS:
            with pynn.arch(arch), pynn.num_threads(nt):
                got_p, got_st = run(C, opt, p0, st0, grads, kw)
            what = f"{opt} {kw} arch={arch} threads={nt} shape={shape} {np.dtype(dtype)}"
            assert got_p.dtype == dtype and got_p.shape == shape
            assert_close(got_p, want_p, dtype, 4 * steps, what + " param")
            for k in names:
                assert_close(got_st[k], want_st[k], dtype, 4 * steps, f"{what} {k}")
            if first is None:
                first = (got_p, got_st)
            else:
                assert np.array_equal(got_p, first[0]), what + ": param differs across threads"
                for k in names:
                    assert np.array_equal(got_st[k], first[1][k]), f"{what}: {k} differs"
    return want_p, want_st


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("opt,names,kw", CASES, ids=IDS)
def test_updates_against_reference(opt, names, kw, shape, dtype):
    p, _ = check_trajectory(opt, names, kw, shape, dtype)
    if p.size:  # the updates did move the parameters
        p0 = rand(np.random.default_rng(0), shape, dtype, -2, 2)
        assert not np.array_equal(p, p0)


@settings(max_examples=15, deadline=None)
@given(n=st.integers(0, 20000), case=st.integers(0, len(CASES) - 1),
       dtype=st.sampled_from(DTYPES))
def test_random_sizes(n, case, dtype):
    opt, names, kw = CASES[case]
    check_trajectory(opt, names, kw, (n,), dtype, steps=2, seed=n)


@pytest.mark.parametrize("be", [C, REF], ids=["c", "reference"])
def test_grad_layouts_accepted(be):
    """grad is only read: read-only and unaligned C-ordered grads give the same update."""
    rng = np.random.default_rng(9)
    p0, g = rand(rng, (5, 7), np.float32), rand(rng, (5, 7), np.float32)
    want = p0.copy()
    be.adam_update(want, g, np.zeros_like(p0), np.zeros_like(p0), 0.01)
    for name, gv in layouts(g):
        if name in ("f", "strided"):
            continue  # refused: see test_bad_input
        p = p0.copy()
        be.adam_update(p, gv, np.zeros_like(p0), np.zeros_like(p0), 0.01)
        np.testing.assert_array_equal(p, want, err_msg=name)


@pytest.mark.parametrize("be", [C, REF], ids=["c", "reference"])
def test_state_in_one_flat_buffer(be):
    """param, m, v as adjacent slices of one buffer (llm.c style) are separate arrays."""
    rng = np.random.default_rng(10)
    n = 1001
    buf = np.zeros(3 * n, np.float32)
    buf[:n] = rand(rng, (n,), np.float32)
    g = rand(rng, (n,), np.float32)
    p, m, v = buf[:n].copy(), np.zeros(n, np.float32), np.zeros(n, np.float32)
    be.adam_update(p, g, m, v, 0.01)
    be.adam_update(buf[:n], g, buf[n:2 * n], buf[2 * n:], 0.01)
    np.testing.assert_array_equal(buf, np.concatenate([p, m, v]))


# ---- hand-worked single steps (float64, values worked out on paper) ----

@pytest.mark.parametrize("be", [C, REF], ids=["c", "reference"])
def test_sgd_hand_worked(be):
    p, g = np.array([1.0, -2.0]), np.array([0.5, 1.0])
    be.sgd_update(p, g, None, lr=0.1)
    np.testing.assert_allclose(p, [0.95, -2.1], rtol=1e-15)
    p, v = np.array([1.0]), np.array([0.2])
    be.sgd_update(p, np.array([0.5]), v, lr=0.1, momentum=0.9)
    np.testing.assert_allclose(v, [0.13], rtol=1e-15)      # 0.9 * 0.2 - 0.1 * 0.5
    np.testing.assert_allclose(p, [1.13], rtol=1e-15)      # 1 + 0.13
    p, v = np.array([1.0]), np.array([0.2])
    be.sgd_update(p, np.array([0.5]), v, lr=0.1, momentum=0.9, nesterov=True)
    np.testing.assert_allclose(p, [1.067], rtol=1e-15)     # 1 + 0.9 * 0.13 - 0.05
    p = np.array([1.0])
    be.sgd_update(p, np.array([0.5]), None, lr=0.1, weight_decay=0.1)
    np.testing.assert_allclose(p, [0.94], rtol=1e-15)      # 1 - 0.01 * 1 - 0.05


@pytest.mark.parametrize("be", [C, REF], ids=["c", "reference"])
def test_adam_hand_worked(be):
    p, g = np.array([1.0, 1.0, 1.0]), np.array([2.0, -0.5, 0.0])
    m, v = np.zeros(3), np.zeros(3)
    be.adam_update(p, g, m, v, lr=0.01, step=1)
    np.testing.assert_allclose(m, [0.2, -0.05, 0.0], rtol=1e-15)
    np.testing.assert_allclose(v, [0.004, 0.00025, 0.0], rtol=1e-14)
    # alpha = 0.01 sqrt(0.001) / 0.1; update = alpha m / (sqrt(v) + 1e-7)
    alpha = 0.01 * math.sqrt(0.001) / 0.1
    want = [1 - alpha * 0.2 / (math.sqrt(0.004) + 1e-7),
            1 + alpha * 0.05 / (math.sqrt(0.00025) + 1e-7), 1.0]
    np.testing.assert_allclose(p, want, rtol=1e-14)
    # known behaviour: the first Adam step moves every weight by ~lr in the sign of -g
    np.testing.assert_allclose(p[:2], [0.99, 1.01], rtol=1e-6)
    # AdamW: decay first, p = 1 - 0.01 * 0.5 * 1, then the same step
    p, m, v = np.ones(1), np.zeros(1), np.zeros(1)
    be.adam_update(p, np.array([2.0]), m, v, lr=0.01, step=1, weight_decay=0.5)
    np.testing.assert_allclose(p, [0.995 - alpha * 0.2 / (math.sqrt(0.004) + 1e-7)], rtol=1e-14)
    # step 2 with constant gradient: m = 0.38, v = 0.007996, bias corrections 0.19, 0.001999
    p, m, v = np.ones(1), np.array([0.2]), np.array([0.004])
    be.adam_update(p, np.array([2.0]), m, v, lr=0.01, step=2)
    np.testing.assert_allclose([m[0], v[0]], [0.38, 0.007996], rtol=1e-14)
    a2 = 0.01 * math.sqrt(1 - 0.999**2) / (1 - 0.9**2)
    np.testing.assert_allclose(p, [1 - a2 * 0.38 / (math.sqrt(0.007996) + 1e-7)], rtol=1e-14)


@pytest.mark.parametrize("be", [C, REF], ids=["c", "reference"])
def test_rmsprop_hand_worked(be):
    p, sq = np.array([1.0]), np.zeros(1)
    be.rmsprop_update(p, np.array([2.0]), sq, lr=0.01, epsilon=1e-7)
    np.testing.assert_allclose(sq, [0.4], rtol=1e-15)      # 0.1 * 4
    np.testing.assert_allclose(p, [1 - 0.02 / math.sqrt(0.4 + 1e-7)], rtol=1e-15)
    # centered: mg = 0.2, den = 0.4 - 0.04 + eps, increment = 0.02 / 0.6
    p, sq, mg = np.array([1.0]), np.zeros(1), np.zeros(1)
    be.rmsprop_update(p, np.array([2.0]), sq, lr=0.01, epsilon=1e-12, centered=True,
                      mean_grad=mg)
    np.testing.assert_allclose(mg, [0.2], rtol=1e-15)
    np.testing.assert_allclose(p, [1 - 0.02 / 0.6], rtol=1e-10)
    # momentum: vel = 0.5 * 1 + inc, p -= vel
    p, sq, vel = np.array([1.0]), np.zeros(1), np.ones(1)
    be.rmsprop_update(p, np.array([2.0]), sq, lr=0.01, epsilon=1e-7, momentum=0.5,
                      velocity=vel)
    inc = 0.02 / math.sqrt(0.4 + 1e-7)
    np.testing.assert_allclose(vel, [0.5 + inc], rtol=1e-15)
    np.testing.assert_allclose(p, [0.5 - inc], rtol=1e-14)


@pytest.mark.parametrize("be", [C, REF], ids=["c", "reference"])
def test_adagrad_hand_worked(be):
    p, acc = np.array([1.0, 3.0]), np.full(2, 0.1)
    be.adagrad_update(p, np.array([2.0, 0.0]), acc, lr=0.1, epsilon=1e-7)
    np.testing.assert_allclose(acc, [4.1, 0.1], rtol=1e-15)
    np.testing.assert_allclose(p, [1 - 0.2 / math.sqrt(4.1 + 1e-7), 3.0], rtol=1e-15)


# ---- PyTorch trajectories (same math when epsilon is negligible) ----

def test_against_pytorch():
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(7)
    n, steps = 50, 6
    p0 = rng.standard_normal(n)
    grads = [rng.standard_normal(n) for _ in range(steps)]
    eps = 1e-14

    def torch_run(make, **kw):
        w = torch.nn.Parameter(torch.tensor(p0))
        opt = make([w], **kw)
        for g in grads:
            w.grad = torch.tensor(g)
            opt.step()
        return w.detach().numpy()

    def ours(opt, names, kw, init=0.0):
        st = {k: np.full(n, init) for k in names}
        p, _ = run(C, opt, p0, st, grads, kw)
        return p

    cases = [
        (ours("sgd", (), dict(lr=0.1)), torch_run(torch.optim.SGD, lr=0.1)),
        (ours("sgd", ("velocity",), dict(lr=0.1, momentum=0.9)),
         torch_run(torch.optim.SGD, lr=0.1, momentum=0.9)),
        (ours("sgd", ("velocity",), dict(lr=0.1, momentum=0.9, nesterov=True)),
         torch_run(torch.optim.SGD, lr=0.1, momentum=0.9, nesterov=True)),
        (ours("adam", ("m", "v"), dict(lr=0.01, epsilon=eps)),
         torch_run(torch.optim.Adam, lr=0.01, eps=eps)),
        (ours("adam", ("m", "v"), dict(lr=0.01, epsilon=eps, weight_decay=0.1)),
         torch_run(torch.optim.AdamW, lr=0.01, eps=eps, weight_decay=0.1)),
        (ours("rmsprop", ("sq_avg",), dict(lr=0.01, rho=0.99, epsilon=eps)),
         torch_run(torch.optim.RMSprop, lr=0.01, alpha=0.99, eps=eps)),
        (ours("rmsprop", ("sq_avg", "velocity", "mean_grad"),
              dict(lr=0.01, rho=0.9, epsilon=eps, momentum=0.5, centered=True)),
         torch_run(torch.optim.RMSprop, lr=0.01, alpha=0.9, eps=eps, momentum=0.5,
                   centered=True)),
        (ours("adagrad", ("accum",), dict(lr=0.1, epsilon=eps), init=0.1),
         torch_run(torch.optim.Adagrad, lr=0.1, eps=eps, initial_accumulator_value=0.1)),
    ]
    for i, (got, want) in enumerate(cases):
        np.testing.assert_allclose(got, want, rtol=1e-9, atol=1e-9, err_msg=f"case {i}")
    g = np.concatenate(grads)
    gc = g.copy()
    norm = C.clip_by_global_norm(gc, 1.0)
    tg = torch.tensor(g, requires_grad=False)
    w = torch.nn.Parameter(torch.zeros_like(tg))
    w.grad = tg.clone()
    tnorm = torch.nn.utils.clip_grad_norm_([w], 1.0)
    np.testing.assert_allclose(norm, float(tnorm), rtol=1e-14)
    np.testing.assert_allclose(gc, w.grad.numpy(), rtol=1e-5)  # torch divides by norm + 1e-6


# ---- subnormal state ----

@pytest.mark.parametrize("opt,names,kw", [
    ("adam", ("m", "v"), dict(lr=1e-3)),
    ("sgd", ("velocity",), dict(lr=0.1, momentum=0.9)),
    ("rmsprop", ("sq_avg", "velocity", "mean_grad"),
     dict(lr=1e-3, rho=0.99, momentum=0.9, centered=True)),
], ids=["adam", "sgd", "rmsprop"])
@pytest.mark.parametrize("be", [C, REF], ids=["c", "reference"])
def test_decaying_state_is_flushed_not_subnormal(be, opt, names, kw):
    tiny = np.finfo(np.float32).tiny
    n, steps = 5000, 800
    rng = np.random.default_rng(1)
    st = {k: rng.uniform(1.0, 2.0, n).astype(np.float32) * np.float32(2e-38) for k in names}
    # premise: plain float32 decay of such values does reach the subnormal range
    plain = st[names[0]].copy()
    for _ in range(steps):
        plain *= np.float32(0.99)
    assert np.any((plain != 0) & (np.abs(plain) < tiny))
    p = np.ones(n, np.float32)
    g = np.zeros(n, np.float32)
    for t in range(1, steps + 1):
        update(be, opt, p, g, st, t, kw)
    for k, s in st.items():
        nz = np.abs(s)[s != 0]
        assert nz.size == 0 or nz.min() >= tiny, f"{k} holds subnormals: {nz.min()}"
        assert np.count_nonzero(s == 0) > 0, k
    assert np.all(np.isfinite(p))


def test_subnormal_state_reads_as_zero_and_caller_keeps_ieee():
    m = np.full(10000, 1e-40, np.float32)  # already subnormal
    v = np.full(10000, 1e-40, np.float32)
    p = np.ones(10000, np.float32)
    C.adam_update(p, np.zeros(10000, np.float32), m, v, lr=1e-3, step=500)
    assert np.all(m == 0) and np.all(v == 0)
    np.testing.assert_array_equal(p, 1.0)
    # the caller's floating-point mode is restored: NumPy still makes subnormals
    x = np.float32(1e-38) * np.float32(0.01)
    assert x != 0 and abs(x) < np.finfo(np.float32).tiny


# ---- global norm and clipping ----

@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", [(0,), (1,), (5,), (97, 3), (4099,), (300007,)])
def test_global_norm_against_reference(shape, dtype):
    rng = np.random.default_rng(2)
    x = rand(rng, shape, dtype)
    n = max(1, x.size)
    for name, xv in layouts(x):
        got = compare("global_norm", xv, k=n)
        assert isinstance(got, float)
    if x.size:
        np.testing.assert_allclose(C.global_norm(x), np.sqrt(np.sum(x.astype(np.float64) ** 2)),
                                   rtol=1e-12)


@pytest.mark.parametrize("be", [C, REF], ids=["c", "reference"])
def test_global_norm_huge_tiny_and_special(be):
    assert be.global_norm(np.zeros(0, np.float32)) == 0.0
    assert be.global_norm(np.zeros(7)) == 0.0
    assert be.global_norm(np.array([3.0, 4.0])) == 5.0
    for dtype, scales in ((np.float32, (1e30, 1e-30)), (np.float64, (1e200, 1e-200))):
        for s in scales:
            x = np.array([3.0 * s, -4.0 * s] * 8, dtype)  # squares overflow / underflow dtype
            want = math.sqrt(8) * math.hypot(float(x[0]), float(x[1]))
            np.testing.assert_allclose(be.global_norm(x), want, rtol=1e-12,
                                       err_msg=f"{dtype} scale {s}")
    x = np.array([3e-40, 4e-40], np.float32)  # float32 subnormals count
    np.testing.assert_allclose(be.global_norm(x), math.hypot(float(x[0]), float(x[1])),
                               rtol=1e-12)
    big = np.full(10000, 1e300)
    np.testing.assert_allclose(be.global_norm(big), 1e302, rtol=1e-12)
    assert be.global_norm(np.array([1.0, np.inf, -2.0])) == math.inf
    assert math.isnan(be.global_norm(np.array([1.0, np.nan, np.inf])))


@pytest.mark.parametrize("dtype", DTYPES)
def test_clip_against_reference(dtype):
    rng = np.random.default_rng(4)
    for n in (1, 97, 100003):
        g0 = rand(rng, (n,), dtype)
        for max_norm in (0.5, 1e9):
            want = g0.copy()
            want_norm = REF.clip_by_global_norm(want, max_norm)
            for arch in ARCHS:
                outs = []
                for nt in THREADS:
                    got = g0.copy()
                    with pynn.arch(arch), pynn.num_threads(nt):
                        norm = C.clip_by_global_norm(got, max_norm)
                    assert_close(norm, want_norm, dtype, n)
                    assert_close(got, want, dtype, n)
                    outs.append((norm, got))
                assert outs[0][0] == outs[1][0] and np.array_equal(outs[0][1], outs[1][1])


@pytest.mark.parametrize("be", [C, REF], ids=["c", "reference"])
def test_clip_values(be):
    g = np.array([0.3, -0.4], np.float32)
    assert be.clip_by_global_norm(g, 1.0) == pytest.approx(0.5)
    np.testing.assert_array_equal(g, np.array([0.3, -0.4], np.float32))  # untouched bits
    g = np.array([3.0, -4.0])
    assert be.clip_by_global_norm(g, 1.0) == 5.0
    np.testing.assert_allclose(g, [0.6, -0.8], rtol=1e-15)
    g = np.full(10000, 2.0)
    assert be.clip_by_global_norm(g, 5.0) == pytest.approx(200.0, rel=1e-14)
    np.testing.assert_allclose(be.global_norm(g), 5.0, rtol=1e-12)
    g = np.array([1.0, np.inf])
    assert be.clip_by_global_norm(g, 1.0) == math.inf
    np.testing.assert_array_equal(g, [1.0, np.inf])  # non-finite norm: left as is
    g = np.array([5.0, 0.0])
    assert be.clip_by_global_norm(g, 5.0) == 5.0  # norm == max_norm: untouched
    np.testing.assert_array_equal(g, [5.0, 0.0])


# ---- bad input ----

@pytest.mark.parametrize("be", [C, REF], ids=["c", "reference"])
def test_bad_input(be):
    p, g = np.ones(6), np.ones(6)
    m, v = np.zeros(6), np.zeros(6)
    with pytest.raises(TypeError, match="float32 or float64"):
        be.sgd_update(np.ones(6, np.int64), g, None, 0.1)
    with pytest.raises(TypeError, match="ndarray"):
        be.sgd_update([1.0], g, None, 0.1)
    with pytest.raises(TypeError, match="one dtype"):
        be.sgd_update(p, np.ones(6, np.float32), None, 0.1)
    with pytest.raises(TypeError, match="dtype"):
        be.adam_update(p, g, np.zeros(6, np.float32), v, 0.1)
    with pytest.raises(ValueError, match="shape"):
        be.sgd_update(p, np.ones(5), None, 0.1)
    with pytest.raises(ValueError, match="shape"):
        be.adam_update(p, g, m, np.zeros((6, 1)), 0.1)
    ro = np.ones(6)
    ro.flags.writeable = False
    with pytest.raises(ValueError, match="read-only"):
        be.sgd_update(ro, g, None, 0.1)
    with pytest.raises(ValueError, match="read-only"):
        be.adam_update(p, g, m, ro, 0.1)
    with pytest.raises(ValueError, match="C-contiguous"):
        be.sgd_update(np.ones((3, 4)).T, np.ones((4, 3)), None, 0.1)
    with pytest.raises(ValueError, match="C-contiguous"):
        be.sgd_update(np.ones(6), np.ones(12)[::2], None, 0.1)
    with pytest.raises(ValueError, match="share memory"):
        be.adam_update(p, g, m, m, 0.1)
    with pytest.raises(ValueError, match="share memory"):
        be.sgd_update(p, p, None, 0.1)
    buf = np.zeros(12)
    with pytest.raises(ValueError, match="share memory"):
        be.adam_update(p, g, buf[:6], buf[5:11], 0.1)
    for lr in (np.nan, np.inf, -0.1):
        with pytest.raises(ValueError, match="lr"):
            be.adam_update(p, g, m, v, lr)
    with pytest.raises(TypeError, match="lr"):
        be.adam_update(p, g, m, v, "fast")
    for kw in (dict(beta_1=1.0), dict(beta_2=-0.1), dict(beta_1=np.nan), dict(epsilon=0.0),
               dict(epsilon=-1e-7), dict(step=0), dict(weight_decay=-1.0)):
        with pytest.raises(ValueError):
            be.adam_update(p, g, m, v, 0.1, **kw)
    with pytest.raises(TypeError, match="step must be an integer"):
        be.adam_update(p, g, m, v, 0.1, step=1.5)
    with pytest.raises(ValueError, match="m and v"):
        be.adam_update(p, g, None, v, 0.1)
    with pytest.raises(ValueError, match="velocity is needed"):
        be.sgd_update(p, g, None, 0.1, momentum=0.9)
    with pytest.raises(ValueError, match="velocity must be None"):
        be.sgd_update(p, g, v, 0.1)
    with pytest.raises(ValueError, match="momentum"):
        be.sgd_update(p, g, v, 0.1, momentum=1.5)
    with pytest.raises(ValueError, match="mean_grad is needed"):
        be.rmsprop_update(p, g, v, 0.1, centered=True)
    with pytest.raises(ValueError, match="mean_grad must be None"):
        be.rmsprop_update(p, g, v, 0.1, mean_grad=m)
    with pytest.raises(ValueError, match="rho"):
        be.rmsprop_update(p, g, v, 0.1, rho=1.0)
    with pytest.raises(ValueError, match="sq_avg"):
        be.rmsprop_update(p, g, None, 0.1)
    with pytest.raises(ValueError, match="accum"):
        be.adagrad_update(p, g, None, 0.1)
    with pytest.raises(ValueError, match="epsilon"):
        be.adagrad_update(p, g, v, 0.1, epsilon=np.inf)
    for max_norm in (0.0, -1.0, np.inf, np.nan):
        with pytest.raises(ValueError, match="max_norm"):
            be.clip_by_global_norm(np.ones(3), max_norm)
    with pytest.raises(ValueError, match="read-only"):
        be.clip_by_global_norm(ro, 1.0)
    with pytest.raises(TypeError, match="float32 or float64"):
        be.global_norm(np.ones(3, np.int32))
    with pytest.raises(TypeError, match="ndarray"):
        be.global_norm([3.0, 4.0])
    # a missing gradient: the C fast path let None through and read a NULL pointer (SIGSEGV)
    for q in (p, np.zeros(0)):
        with pytest.raises(TypeError, match="grad must be a numpy.ndarray"):
            be.sgd_update(q, None, None, 0.1)
        with pytest.raises(TypeError, match="grad must be a numpy.ndarray"):
            be.adam_update(q, None, np.zeros_like(q), np.zeros_like(q), 0.1)
        with pytest.raises(TypeError, match="grad must be a numpy.ndarray"):
            be.rmsprop_update(q, None, np.zeros_like(q), 0.1)
        with pytest.raises(TypeError, match="grad must be a numpy.ndarray"):
            be.adagrad_update(q, None, np.zeros_like(q), 0.1)
    # a masked array would be read (and scaled) masked values and all
    gm = np.ma.masked_array(np.array([3.0, 4.0, 1e6]), mask=[False, False, True])
    with pytest.raises(TypeError, match="masked array"):
        be.clip_by_global_norm(gm, 1.0)
    np.testing.assert_array_equal(gm.data, [3.0, 4.0, 1e6])
    # nothing was modified by the refused calls
    np.testing.assert_array_equal(p, 1.0)
    np.testing.assert_array_equal(m, 0.0)


@pytest.mark.parametrize("arch", ARCHS)
@pytest.mark.parametrize("dtype,max_norm", [(np.float32, 1e-60), (np.float32, 1e-300),
                                            (np.float64, 5e-324)])
def test_clip_by_a_factor_below_the_dtype_gives_zeros(arch, dtype, max_norm):
    # max_norm / norm whose square root also rounds to 0 in the dtype: C split the factor in
    # two, the first 0, the second sd / 0 = inf, and 0 * inf left NaN where the reference's
    # factor, rounded to the dtype, gives zeros
    for n in (4, 37):
        g, g2 = np.full(n, 3.0, dtype), np.full(n, 3.0, dtype)
        with pynn.arch(arch):
            norm = C.clip_by_global_norm(g, max_norm)
        assert norm == REF.clip_by_global_norm(g2, max_norm)
        np.testing.assert_array_equal(g, g2)
        np.testing.assert_array_equal(g, 0.0)


@pytest.mark.parametrize("arch", ARCHS)
def test_adam_epsilon_past_float32_range(arch):
    # epsilon 1e308 is inf in float32: sqrt(v) + eps = inf; the AVX-512 reciprocal's Newton
    # step made inf * 0 = NaN of 48 of 50 parameters; the update is 0 as on the other paths
    rng = np.random.default_rng(0)
    p = rng.standard_normal(50).astype(np.float32)
    g = rng.standard_normal(50).astype(np.float32)
    p2 = p.copy()
    m, v, m2, v2 = (np.zeros_like(p) for _ in range(4))
    with pynn.arch(arch):
        C.adam_update(p, g, m, v, 0.01, epsilon=1e308)
    with np.errstate(over="ignore"):  # the reference's float32(epsilon) is inf, as in C
        REF.adam_update(p2, g, m2, v2, 0.01, epsilon=1e308)
    np.testing.assert_array_equal(p, p2)
    assert not np.isnan(p).any()
    assert_close(m, m2, np.float32)
    assert_close(v, v2, np.float32)


@pytest.mark.parametrize("be", [C, REF], ids=["c", "reference"])
@pytest.mark.parametrize("rho", [0.0, 0.9])
def test_centered_rmsprop_with_steady_gradients_stays_finite(be, rho):
    # sq - mg^2 decays to 0 under a steady gradient and its rounding went below -eps: the
    # square root of the denominator was NaN (after 1 step with rho = 0 on the FMA paths,
    # ~130 steps with rho = 0.9 in the reference)
    g = np.linspace(1.0, 40.0, 50).astype(np.float32)
    p, sq, mg = np.zeros_like(g), np.zeros_like(g), np.zeros_like(g)
    for _ in range(300):
        be.rmsprop_update(p, g, sq, 1e-3, rho=rho, centered=True, mean_grad=mg)
    assert np.isfinite(p).all()


def test_global_norm_of_subnormals_and_clip_by_a_subnormal_factor():
    # subnormal float64 gradients: the rescale by 2^-e overflowed to inf; a float32 clip
    # factor below the normal range (norm / max_norm > ~8.5e37) was flushed to 0 and zeroed
    # the gradient
    x = np.array([1e-310, 3e-310])
    np.testing.assert_allclose(C.global_norm(x), REF.global_norm(x), rtol=1e-12)
    for dtype, v, max_norm in ((np.float32, 1e38, 1.0), (np.float64, 1e300, 1e-20)):
        g, g2 = np.full(4, v, dtype), np.full(4, v, dtype)
        C.clip_by_global_norm(g, max_norm)
        REF.clip_by_global_norm(g2, max_norm)
        np.testing.assert_allclose(g, g2, rtol=1e-6 if dtype == np.float32 else 1e-12)
        assert (g > 0).all()


@pytest.mark.parametrize("arch", ARCHS)
@pytest.mark.parametrize("eps", [1e-7, 1e-3])
def test_adam_special_second_moments_bit_for_bit(arch, eps):
    # lanes whose v is not a normal positive number skip the float32 AVX-512 loop's
    # reciprocal estimates: a zero numerator there is returned as is (the weights of a
    # digit's blank border, m = v = 0), the rest divides exactly. Every lane here is such a
    # lane, so each path must give the reference's bits, zero signs and NaN included
    rng = np.random.default_rng(1)
    n = 16 * 12 + 5                     # whole vectors and a tail for the plain loop
    vs = np.array([0.0, -0.0, np.inf, np.nan, -1.0, -np.inf], np.float32)
    ms = np.array([0.0, -0.0, 1e-3, -2e-3], np.float32)
    p = rng.standard_normal(n).astype(np.float32)
    p[::7] = -0.0
    p[3::7] = 0.0
    m = ms[rng.integers(0, len(ms), n)]
    v = vs[rng.integers(0, len(vs), n)]
    g = np.zeros(n, np.float32)
    got, want = [p.copy(), m.copy(), v.copy()], [p.copy(), m.copy(), v.copy()]
    with pynn.arch(arch), np.errstate(invalid="ignore", divide="ignore"):
        C.adam_update(got[0], g, got[1], got[2], 1e-3, epsilon=eps, step=3)
    with np.errstate(invalid="ignore", divide="ignore"):
        REF.adam_update(want[0], g, want[1], want[2], 1e-3, epsilon=eps, step=3)
    for a, b in zip(got, want):
        assert np.array_equal(np.isnan(a), np.isnan(b))
        ok = ~np.isnan(b)
        np.testing.assert_array_equal(a[ok].view(np.uint32), b[ok].view(np.uint32))
