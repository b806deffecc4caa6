"""Adam step on an MLP-sized flat float32 buffer: pynn's fused C kernel against a NumPy Adam
step, early in training and late, when the moments of weights whose gradient stays zero have
decayed into subnormal floats (~1e-40). x86 arithmetic on subnormals is ~50x slower; pynn's
kernels run with flush-to-zero / denormals-are-zero, so its late step should cost what its
early step does while the NumPy step slows down.

    python bench/optim.py [--rounds 300] [--threads 1 2]

Method: results are checked first (pynn vs the NumPy step on the same state); then every
round runs each contender once, in rotating order, on a freshly restored state (copied
outside the timed region; pynn gets one untimed call just before, so its OpenMP workers are
awake as in a training step); the first rounds are dropped as warm-up; medians reported.
The gradient is zero in both scenarios, so early and late steps do the same operations and
differ only in the magnitude of the state.
"""
import argparse
import math
import os
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
import pynn  # noqa: E402

N = 784 * 128 + 128 + 128 * 10 + 10   # Dense(784->128) + Dense(128->10) parameters
LR, B1, B2, EPS = 1e-3, 0.9, 0.999, 1e-7


class NumpyAdam:
    """A careful NumPy Adam step (Keras 3 formula): in place, preallocated scratch."""

    def __init__(self, n, dtype):
        self.tmp = np.empty(n, dtype)

    def __call__(self, p, g, m, v, step):
        alpha = LR * math.sqrt(1 - B2 ** step) / (1 - B1 ** step)
        tmp = self.tmp
        m *= B1
        np.multiply(g, 1 - B1, out=tmp)
        m += tmp                      # m = b1 m + (1 - b1) g
        v *= B2
        np.square(g, out=tmp)
        tmp *= 1 - B2
        v += tmp                      # v = b2 v + (1 - b2) g^2
        np.sqrt(v, out=tmp)
        tmp += EPS
        np.divide(m, tmp, out=tmp)
        tmp *= alpha
        p -= tmp                      # p -= alpha m / (sqrt(v) + eps)


def make_state(rng, m_scale, v_scale):
    """Adam moments: m ~ N(0, m_scale^2), v ~ U(0.5, 1.5) v_scale, float32."""
    m = (rng.standard_normal(N) * m_scale).astype(np.float32)
    v = (rng.uniform(0.5, 1.5, N) * v_scale).astype(np.float32)
    return m, v


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--rounds", type=int, default=300)
    ap.add_argument("--warmup", type=int, default=20)
    ap.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    args = ap.parse_args()

    C = pynn.ops.get_backend("c")
    rng = np.random.default_rng(0)
    p0 = rng.standard_normal(N).astype(np.float32) * np.float32(0.05)
    g = np.zeros(N, np.float32)
    states = {"early": make_state(rng, 1e-3, 1e-6), "late": make_state(rng, 1e-40, 1e-40)}
    tiny = np.finfo(np.float32).tiny
    m_late, v_late = states["late"]
    assert np.all(np.abs(m_late) < tiny) and np.all(v_late < tiny), "late state not subnormal"
    assert np.all(v_late > 0), "late state flushed to zero already"
    np_adam = NumpyAdam(N, np.float32)
    step_of = {"early": 10, "late": 5000}

    # check the result first: both steps agree on the early state
    p, m, v = p0.copy(), *[a.copy() for a in states["early"]]
    C.adam_update(p, g, m, v, LR, B1, B2, EPS, step_of["early"])
    q, m2, v2 = p0.copy(), *[a.copy() for a in states["early"]]
    np_adam(q, g, m2, v2, step_of["early"])
    np.testing.assert_allclose(p, q, rtol=1e-5, atol=1e-7)
    np.testing.assert_allclose(m, m2, rtol=1e-5, atol=1e-12)

    contenders = [("numpy", None)] + [(f"pynn {t}T", t) for t in args.threads]
    keys = [(c, s) for c in contenders for s in ("early", "late")]
    times = {(c[0], s): [] for c, s in keys}
    p, m, v = p0.copy(), np.empty(N, np.float32), np.empty(N, np.float32)
    scratch = (p0.copy(), g, np.zeros(N, np.float32), np.zeros(N, np.float32))

    def restore(p, m, v, s):
        np.copyto(p, p0)
        np.copyto(m, states[s][0])
        np.copyto(v, states[s][1])

    for r in range(args.rounds + args.warmup):
        for j in range(len(keys)):
            (name, nt), s = keys[(j + r) % len(keys)]     # rotate the order every round
            if nt is None:
                restore(p, m, v, s)
                t0 = time.perf_counter()
                np_adam(p, g, m, v, step_of[s])
                dt = time.perf_counter() - t0
            else:
                with pynn.num_threads(nt):
                    # untimed call first: wakes the OpenMP workers, as the forward and
                    # backward kernels of a training step would have
                    C.adam_update(*scratch, LR, B1, B2, EPS, step_of[s])
                    restore(p, m, v, s)
                    t0 = time.perf_counter()
                    C.adam_update(p, g, m, v, LR, B1, B2, EPS, step_of[s])
                    dt = time.perf_counter() - t0
            if r >= args.warmup:
                times[(name, s)].append(dt)

    med = {k: float(np.median(t)) * 1e6 for k, t in times.items()}
    print(f"Adam step, float32 buffer of {N} parameters (784-128-10 MLP), zero gradient;")
    print(f"early: m ~ 1e-3, v ~ 1e-6; late: m, v ~ 1e-40 (subnormal); "
          f"{args.rounds} rounds, medians; isa={pynn._config.get_arch()}")
    print(f"{'contender':<12}{'early us':>11}{'late us':>11}{'late/early':>12}"
          f"{'numpy/pynn early':>18}{'numpy/pynn late':>17}")
    for name, _ in contenders:
        e, l = med[(name, "early")], med[(name, "late")]
        r_e = med[("numpy", "early")] / e
        r_l = med[("numpy", "late")] / l
        print(f"{name:<12}{e:>11.1f}{l:>11.1f}{l / e:>12.2f}{r_e:>18.2f}{r_l:>17.2f}")
    load, cpus = os.getloadavg()[0], os.cpu_count() or 1
    if load > cpus:
        print(f"note: load average {load:.1f} on {cpus} CPUs while timing: other processes "
              f"share the cores and multi-threaded rows wait for CPU time; spinning OpenMP "
              f"workers get descheduled (rerun with OMP_WAIT_POLICY=passive)")


if __name__ == "__main__":
    main()
