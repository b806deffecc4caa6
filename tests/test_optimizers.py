"""Optimizers over a flat buffer against hand-written Keras 3 formulas (float64), state
save/restore, clipping, schedules, configs and errors. Both backends."""
import json

import numpy as np
import pytest

import pynn
from pynn import optimizers
from pynn.optim import schedules

BACKENDS = ["c", "reference"]


def numpy_steps(name, kw, p, grads):
    """Keras 3 update rules written out, for len(grads) steps."""
    p = p.copy()
    lr = kw.get("learning_rate", 0.01)
    wd = kw.get("weight_decay") or 0.0
    m = np.zeros_like(p)
    v = np.zeros_like(p)
    mg = np.zeros_like(p)
    if name == "Adagrad":
        v[...] = kw.get("initial_accumulator_value", 0.1)
    for t, g in enumerate(grads, start=1):
        p -= lr * wd * p
        if name == "SGD":
            mom = kw.get("momentum", 0.0)
            m = mom * m - lr * g
            p += (mom * m - lr * g) if kw.get("nesterov") else m
        elif name in ("Adam", "AdamW"):
            b1, b2, eps = 0.9, 0.999, 1e-7
            m = b1 * m + (1 - b1) * g
            v = b2 * v + (1 - b2) * g * g
            p -= lr * np.sqrt(1 - b2 ** t) / (1 - b1 ** t) * m / (np.sqrt(v) + eps)
        elif name == "RMSprop":
            rho, eps, mom = 0.9, 1e-7, kw.get("momentum", 0.0)
            v = rho * v + (1 - rho) * g * g
            den = v
            if kw.get("centered"):
                mg = rho * mg + (1 - rho) * g
                den = v - mg * mg
            inc = lr * g / np.sqrt(den + eps)
            if mom:
                m = mom * m + inc
                p -= m
            else:
                p -= inc
        elif name == "Adagrad":
            v += g * g
            p -= lr * g / np.sqrt(v + 1e-7)
    return p


CASES = [("SGD", {"learning_rate": 0.1}), ("SGD", {"learning_rate": 0.1, "momentum": 0.9}),
         ("SGD", {"learning_rate": 0.1, "momentum": 0.9, "nesterov": True}),
         ("Adam", {"learning_rate": 0.01}), ("Adam", {"learning_rate": 0.01, "weight_decay": 0.1}),
         ("AdamW", {"learning_rate": 0.01, "weight_decay": 0.004}),
         ("RMSprop", {"learning_rate": 0.01}), ("RMSprop", {"learning_rate": 0.01, "momentum": 0.5}),
         ("RMSprop", {"learning_rate": 0.01, "centered": True}),
         ("Adagrad", {"learning_rate": 0.1})]


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("name,kw", CASES)
def test_updates_match_formulas(backend, name, kw):
    rng = np.random.default_rng(0)
    n = 37
    p0 = rng.standard_normal(n)
    grads = [rng.standard_normal(n) for _ in range(4)]
    opt = getattr(optimizers, name)(**kw)
    p, g = p0.copy(), np.empty(n)
    ops = pynn.ops.get_backend(backend)
    for gi in grads:
        g[...] = gi
        opt.apply(ops, p, g, [(0, n)])
    np.testing.assert_allclose(p, numpy_steps(name, kw, p0, grads), rtol=1e-12, atol=1e-14)
    assert opt.iterations == 4


@pytest.mark.parametrize("backend", BACKENDS)
def test_runs_split_equals_one_run_and_frozen_range_untouched(backend):
    rng = np.random.default_rng(1)
    p0, g0 = rng.standard_normal(20), rng.standard_normal(20)
    ops = pynn.ops.get_backend(backend)
    a, b = p0.copy(), p0.copy()
    optimizers.Adam(0.1).apply(ops, a, g0.copy(), [(0, 20)])
    optimizers.Adam(0.1).apply(ops, b, g0.copy(), [(0, 7), (7, 20)])
    np.testing.assert_array_equal(a, b)
    c = p0.copy()
    optimizers.Adam(0.1).apply(ops, c, g0.copy(), [(0, 5), (12, 20)])
    np.testing.assert_array_equal(c[5:12], p0[5:12])


def test_adam_first_step_hand_value():
    # step 1: m = 0.1 g, v = 0.001 g^2, update = lr * g / (|g| + eps / sqrt(0.001))
    p = np.array([1.0, -2.0, 0.0])
    g = np.array([0.5, -4.0, 0.0])
    optimizers.Adam(0.1).apply(pynn.ops.get_backend("reference"), p, g, [(0, 3)])
    np.testing.assert_allclose(p, [0.9, -1.9, 0.0], rtol=1e-5)


@pytest.mark.parametrize("backend", BACKENDS)
def test_clipping(backend):
    ops = pynn.ops.get_backend(backend)
    g = np.array([3.0, 4.0, 0.0, 12.0])  # norms: [3, 4] -> 5, [0, 12] -> 12, all -> 13
    p = np.zeros(4)
    optimizers.SGD(1.0, global_clipnorm=6.5).apply(ops, p, g.copy(), [(0, 4)])
    np.testing.assert_allclose(p, -g / 2)
    p = np.zeros(4)
    optimizers.SGD(1.0, clipnorm=5.0).apply(ops, p, g.copy(), [(0, 4)], [(0, 2), (2, 4)])
    np.testing.assert_allclose(p, [-3.0, -4.0, 0.0, -5.0])
    p = np.zeros(4)
    optimizers.SGD(1.0, global_clipnorm=6.5).apply(ops, p, g.copy(), [(0, 2), (2, 4)])
    np.testing.assert_allclose(p, -g / 2)
    p = np.zeros(4)
    optimizers.SGD(1.0, clipvalue=3.5).apply(ops, p, g.copy(), [(0, 4)])
    np.testing.assert_allclose(p, [-3.0, -3.5, 0.0, -3.5])
    with pytest.raises(ValueError, match="at most one"):
        optimizers.SGD(clipnorm=1.0, global_clipnorm=1.0)


@pytest.mark.parametrize("backend", BACKENDS)
def test_state_round_trip_resumes_exactly(backend):
    ops = pynn.ops.get_backend(backend)
    rng = np.random.default_rng(2)
    grads = [rng.standard_normal(10) for _ in range(4)]
    for opt_cls in (optimizers.Adam, optimizers.RMSprop, optimizers.Adagrad):
        a = opt_cls(0.01)
        pa = np.ones(10)
        for g in grads:
            a.apply(ops, pa, g.copy(), [(0, 10)])
        b = opt_cls(0.01)
        pb = np.ones(10)
        for g in grads[:2]:
            b.apply(ops, pb, g.copy(), [(0, 10)])
        state = b.get_state()
        assert state["iterations"] == 2 and state["iterations"].dtype == np.int64
        c = optimizers.deserialize(json.loads(json.dumps(optimizers.serialize(b))))
        c.set_state(state)
        for g in grads[2:]:
            c.apply(ops, pb, g.copy(), [(0, 10)])
        np.testing.assert_array_equal(pb, pa)
    with pytest.raises(ValueError, match="slots"):
        optimizers.SGD(momentum=0.9).set_state({"iterations": 1, "m": np.zeros(3)})


def test_model_optimizer_state_and_fit_resume():
    rng = np.random.default_rng(3)
    x, y = rng.standard_normal((16, 4)), rng.integers(0, 2, 16)

    def model():
        pynn.utils.set_random_seed(1)
        m = pynn.Sequential([pynn.layers.Dense(3, activation="softmax", input_shape=(4,))],
                            backend="reference")
        m.compile("adam", "sparse_categorical_crossentropy")
        return m

    a = model()
    a.fit(x, y, epochs=2, batch_size=4, shuffle=False, verbose=0)
    b = model()
    b.fit(x, y, epochs=1, batch_size=4, shuffle=False, verbose=0)
    c = model()
    c.set_weights(b.get_weights())
    c.optimizer.set_state(b.optimizer.get_state())
    assert set(b.optimizer.get_state()) == {"iterations", "m", "v"}
    assert b.optimizer.get_state()["m"].shape == (15,)  # one flat buffer per slot
    c.fit(x, y, epochs=2, initial_epoch=1, batch_size=4, shuffle=False, verbose=0)
    for wa, wc in zip(a.get_weights(), c.get_weights()):
        np.testing.assert_array_equal(wa, wc)


def test_schedules():
    e = schedules.ExponentialDecay(0.1, decay_steps=10, decay_rate=0.5)
    assert e(0) == 0.1 and e(10) == pytest.approx(0.05) and e(5) == pytest.approx(0.1 * 0.5 ** 0.5)
    s = schedules.ExponentialDecay(0.1, 10, 0.5, staircase=True)
    assert s(9) == 0.1 and s(10) == pytest.approx(0.05)
    assert schedules.InverseTimeDecay(1.0, 1, 1.0)(3) == pytest.approx(0.25)
    pc = schedules.PiecewiseConstantDecay([10, 20], [1.0, 0.5, 0.1])
    assert [pc(t) for t in (0, 10, 11, 20, 21)] == [1.0, 1.0, 0.5, 0.5, 0.1]
    c = schedules.CosineDecay(1.0, 10, alpha=0.1)
    assert c(0) == 1.0 and c(10) == pytest.approx(0.1) and c(5) == pytest.approx(0.55)
    assert c(100) == pytest.approx(0.1)
    opt = optimizers.SGD(learning_rate=pc)
    p, g = np.zeros(1), np.ones(1)
    ops = pynn.ops.get_backend("reference")
    for _ in range(12):
        opt.apply(ops, p, g.copy(), [(0, 1)])
    assert p[0] == pytest.approx(-(11 * 1.0 + 1 * 0.5))  # steps 0..10 at 1.0, step 11 at 0.5
    cfg = json.loads(json.dumps(optimizers.serialize(opt)))
    assert isinstance(optimizers.deserialize(cfg)._lr, schedules.PiecewiseConstantDecay)
    with pytest.raises(ValueError):
        schedules.PiecewiseConstantDecay([1], [1.0])
    with pytest.raises(ValueError):
        schedules.ExponentialDecay(0.1, 0, 0.5)


def test_names_configs_and_errors():
    for name, cls in [("adam", optimizers.Adam), ("SGD", optimizers.SGD),
                      ("rmsprop", optimizers.RMSprop), ("adagrad", optimizers.Adagrad),
                      ("adamw", optimizers.AdamW)]:
        o = optimizers.get(name)
        assert type(o) is cls
        o2 = optimizers.deserialize(json.loads(json.dumps(optimizers.serialize(o))))
        assert o2.get_config() == o.get_config()
    assert optimizers.AdamW().weight_decay == 0.004
    assert optimizers.get("adam").learning_rate == 0.001
    with pytest.raises(ValueError, match="unknown optimizer 'nadam'"):
        optimizers.get("nadam")
    with pytest.raises(ValueError, match="unknown optimizer class"):
        optimizers.deserialize({"class_name": "Evil", "config": {}})
    with pytest.raises(ValueError, match="learning_rate"):
        optimizers.Adam(learning_rate=-1.0)
    with pytest.raises(ValueError, match="learning_rate"):
        optimizers.Adam(learning_rate=float("nan"))
    with pytest.raises(ValueError, match="momentum"):
        optimizers.SGD(momentum=1.5)
    with pytest.raises(ValueError, match="beta_1"):
        optimizers.Adam(beta_1=1.0)
    o = optimizers.Adam()
    o.learning_rate = 0.5
    assert o.learning_rate == 0.5 and o.lr == 0.5


def test_adagrad_initial_accumulator_checked_when_made():
    # -1 or NaN was accepted and made every weight NaN at the first step, silently
    for bad in (-1.0, float("nan"), float("inf")):
        with pytest.raises(ValueError, match="initial_accumulator_value"):
            pynn.optimizers.Adagrad(initial_accumulator_value=bad)
    with pytest.raises(TypeError, match="initial_accumulator_value"):
        pynn.optimizers.Adagrad(initial_accumulator_value=[0.1])
    assert pynn.optimizers.Adagrad(initial_accumulator_value=0).initial_accumulator_value == 0.0


@pytest.mark.parametrize("cls", [pynn.optimizers.Adam, pynn.optimizers.AdamW,
                                 pynn.optimizers.RMSprop, pynn.optimizers.Adagrad])
def test_epsilon_checked_when_made(cls):
    # a negative epsilon was accepted here and refused only at the first training step
    for bad in (-1e-7, 0.0, float("nan")):
        with pytest.raises(ValueError, match="epsilon"):
            cls(epsilon=bad)


def test_state_buffers_start_on_cache_lines():
    """The state slots start on 64-byte lines, as the flat weights and gradients do, both
    when built and when restored from get_state (e.g. a loaded model file)."""
    rng = np.random.default_rng(0)
    for opt in (pynn.optim.Adam(), pynn.optim.RMSprop(momentum=0.9, centered=True),
                pynn.optim.SGD(momentum=0.9), pynn.optim.Adagrad()):
        m = pynn.Sequential([pynn.layers.Input(shape=(5,)), pynn.layers.Dense(3)])
        m.compile(optimizer=opt, loss="mse")
        m.train_on_batch(rng.standard_normal((4, 5)), rng.standard_normal((4, 3)))
        assert opt._state and all(v.ctypes.data % 64 == 0 for v in opt._state.values())
        state = opt.get_state()
        fresh = type(opt).from_config(opt.get_config())
        fresh.set_state(state)
        for k, v in fresh._state.items():
            assert v.ctypes.data % 64 == 0 and np.array_equal(v, state[k]), k


def _adam_model(seed=0):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((16, 4)).astype(np.float32)
    y = rng.integers(0, 3, 16)
    m = pynn.Sequential([pynn.layers.Dense(5, activation="relu", input_shape=(4,)),
                         pynn.layers.Dense(3, activation="softmax")])
    m.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
    m.fit(x, y, epochs=1, batch_size=8, verbose=0)
    return m, x, y


@pytest.mark.parametrize("case", ["negative v", "nan m", "inf v", "short m", "2-D m",
                                  "float64 m", "negative iterations", "float iterations"])
def test_bad_optimizer_state_is_refused_by_set_state_and_at_load(tmp_path, case):
    # a model file's optimizer state (checksummed, but a file can be rewritten whole) was set
    # as it came: a negative v or a NaN m turned every weight NaN at the first fit, other
    # cases failed there with messages about the kernels' arguments
    m, x, y = _adam_model()
    good = m.optimizer.get_state()
    bad = {k: v.copy() for k, v in good.items()}
    n = good["m"].shape[0]
    if case == "negative v":
        bad["v"][3] = -1.0
    elif case == "nan m":
        bad["m"][0] = np.nan
    elif case == "inf v":
        bad["v"][-1] = np.inf
    elif case == "short m":
        bad["m"], bad["v"] = bad["m"][:-1], bad["v"][:-1]
    elif case == "2-D m":
        bad["m"], bad["v"] = bad["m"].reshape(1, n), bad["v"].reshape(1, n)
    elif case == "float64 m":
        bad["m"], bad["v"] = bad["m"].astype(np.float64), bad["v"].astype(np.float64)
    elif case == "negative iterations":
        bad["iterations"] = np.array(-4, np.int64)
    else:
        bad["iterations"] = np.array(2.5)
    before = m.optimizer.get_state()
    with pytest.raises(ValueError, match="optimizer state"):
        m.optimizer.set_state(bad)
    for k in before:
        np.testing.assert_array_equal(m.optimizer.get_state()[k], before[k])
    m.optimizer.get_state = lambda: bad      # save the bad state, with valid checksums
    p = tmp_path / "m.pynn"
    pynn.io.save_model(m, p)
    with pytest.raises(pynn.io.ModelFileError, match="optimizer state"):
        pynn.io.load_model(p)
    assert pynn.io.load_model(p, compile=False).predict(x).shape == (16, 3)


def test_numbers_given_as_strings_are_refused():
    # float('0.1') took them: SGD('0.1'), Dropout('0.5') and L2('0.1') built as numbers
    with pytest.raises(TypeError, match="learning_rate must be a real number"):
        optimizers.SGD("0.1")
    with pytest.raises(TypeError, match="rate must be a real number"):
        pynn.layers.Dropout("0.5")
    with pytest.raises(TypeError, match="l2 must be a real number"):
        pynn.regularizers.L2("0.1")
    assert optimizers.Adam(np.float32(0.5)).learning_rate == 0.5
