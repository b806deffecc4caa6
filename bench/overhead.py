"""Per-call overhead of the C backend's wrappers, and the training step it adds up to.

    python bench/overhead.py [--threads 1,2] [--rounds 2000] [--steps 400] [--tree DIR]

Part 1, one thread: per hot kernel, the median wrapper time on tiny inputs (8 elements, or
the classic MLP's batch-32 shapes for dense) on the C-level fast path (plain arrays) and on
the pynn._checks fallback, forced by passing one argument as an ndarray subclass view (the
same memory, so the same kernel work; only the checks differ). The two contenders
alternate call by call. Results are checked first: both paths must give the same bits.

Part 2: the classic MLP (784-128 relu, Dropout 0.2, 10 softmax; Adam; sparse categorical
cross-entropy) at batch 32 on random data: median of `--steps` warm training steps
(Model._train_step: forward, backward, metric, optimizer), and model.fit's time per step
(one epoch of `--steps` batches, median of 3 epochs), for each thread count.
`--tree DIR` imports pynn from another built checkout: on one without the fast path, the
"fast" column is simply that checkout's wrapper time (the numbers before the change).
"""
import argparse
import os
import statistics
import sys
import time

import numpy as np

def _tree():
    """--tree DIR: import pynn from that checkout (e.g. main, for the numbers before a change)."""
    if "--tree" in sys.argv:
        return os.path.abspath(sys.argv[sys.argv.index("--tree") + 1])
    return os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


sys.path.insert(0, _tree())
import pynn  # noqa: E402
from pynn._ext import _activations, _dense, _dropout, _losses, _optim, _reduce  # noqa: E402


class _View(np.ndarray):
    """A valid ndarray that is not exactly np.ndarray: the wrappers' checks take it."""


def slow(a):
    return a.view(_View)


def cases():
    """(name, fast call, fallback call), each call returning the arrays it wrote."""
    r = np.random.default_rng(0)
    f32 = np.float32
    x8, dy8 = r.standard_normal(8).astype(f32), r.standard_normal(8).astype(f32)
    o8 = np.empty(8, f32)
    B, C, OC = 32, 128, 10
    x, w, b = (r.standard_normal((B, C)).astype(f32), r.standard_normal((C, OC)).astype(f32),
               r.standard_normal(OC).astype(f32))
    y, dy = np.empty((B, OC), f32), r.standard_normal((B, OC)).astype(f32)
    dx, dw, db = np.empty((B, C), f32), np.empty((C, OC), f32), np.empty(OC, f32)
    logits, labels = r.standard_normal((B, OC)).astype(f32), r.integers(0, OC, B)
    g = np.empty((B, OC), f32)
    p, gr = r.standard_normal(8).astype(f32), r.standard_normal(8).astype(f32) * 1e-3
    m, v = np.zeros(8, f32), np.zeros(8, f32)
    p2, m2, v2 = p.copy(), m.copy(), v.copy()
    return [
        ("relu_forward (8)", lambda: _activations.relu_forward(x8, out=o8),
         lambda: _activations.relu_forward(slow(x8), out=o8)),
        ("relu_backward (8)", lambda: _activations.relu_backward(x8, dy8, out=o8),
         lambda: _activations.relu_backward(slow(x8), dy8, out=o8)),
        ("softmax_forward (32, 10)", lambda: _activations.softmax_forward(logits, out=g),
         lambda: _activations.softmax_forward(slow(logits), out=g)),
        ("dropout_forward (8)", lambda: _dropout.dropout_forward(x8, 0.2, 7, 3, out=o8),
         lambda: _dropout.dropout_forward(slow(x8), 0.2, 7, 3, out=o8)),
        ("dropout_backward (8)", lambda: _dropout.dropout_backward(dy8, 0.2, 7, 3, out=o8),
         lambda: _dropout.dropout_backward(slow(dy8), 0.2, 7, 3, out=o8)),
        ("dense_forward (32, 128) -> 10", lambda: _dense.dense_forward(x, w, b, "relu", out=y),
         lambda: _dense.dense_forward(slow(x), w, b, "relu", out=y)),
        ("dense_backward (32, 128) -> 10",
         lambda: _dense.dense_backward(x, w, y, dy, "relu", True, dx, dw, db),
         lambda: _dense.dense_backward(slow(x), w, y, dy, "relu", True, dx, dw, db)),
        ("softmax_cross_entropy_forward (32, 10)",
         lambda: _losses.softmax_cross_entropy_forward(logits, labels),
         lambda: _losses.softmax_cross_entropy_forward(slow(logits), labels)),
        ("softmax_cross_entropy_backward (32, 10)",
         lambda: _losses.softmax_cross_entropy_backward(logits, labels, out=g),
         lambda: _losses.softmax_cross_entropy_backward(slow(logits), labels, out=g)),
        ("count_correct (32, 10)", lambda: _reduce.count_correct(logits, labels),
         lambda: _reduce.count_correct(slow(logits), labels)),
        ("column_sum (32, 10)", lambda: _reduce.column_sum(logits, out=db),
         lambda: _reduce.column_sum(slow(logits), out=db)),
        # in-place updates of two equal copies of the state: equal after the first calls
        ("adam_update (8)", lambda: (_optim.adam_update(p, gr, m, v, 1e-3, step=3), p, m, v),
         lambda: (_optim.adam_update(slow(p2), gr, m2, v2, 1e-3, step=3), p2, m2, v2)),
        ("sgd_update (8)", lambda: (_optim.sgd_update(p, gr, None, 1e-3), p),
         lambda: (_optim.sgd_update(slow(p2), gr, None, 1e-3), p2)),
    ]


def _same(a, b):
    if isinstance(a, tuple):
        return all(_same(x, y) for x, y in zip(a, b))
    if isinstance(a, np.ndarray):
        return np.array_equal(np.asarray(a), np.asarray(b))
    return a == b


def wrappers(rounds):
    print(f"wrapper time per call, 1 thread, median of {rounds} (us)")
    print(f"{'kernel':42s} {'fast':>7s} {'checks':>7s} {'ratio':>6s}")
    with pynn.num_threads(1):
        for name, fast, slow_ in cases():
            a = fast()
            a = [np.copy(t) if isinstance(t, np.ndarray) else t for t in
                 (a if isinstance(a, tuple) else (a,))]
            b = slow_()
            b = [np.copy(t) if isinstance(t, np.ndarray) else t for t in
                 (b if isinstance(b, tuple) else (b,))]
            assert _same(tuple(a), tuple(b)), name
            tf, ts = [], []
            for _ in range(rounds):
                t = time.perf_counter()
                fast()
                tf.append(time.perf_counter() - t)
                t = time.perf_counter()
                slow_()
                ts.append(time.perf_counter() - t)
            f, s = statistics.median(tf) * 1e6, statistics.median(ts) * 1e6
            print(f"{name:42s} {f:7.2f} {s:7.2f} {s / f:6.1f}")


def mlp(batch=32):
    pynn.utils.set_random_seed(0)
    model = pynn.Sequential([
        pynn.layers.Flatten(input_shape=(28, 28)),
        pynn.layers.Dense(128, activation="relu"),
        pynn.layers.Dropout(0.2),
        pynn.layers.Dense(10, activation="softmax")])
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy",
                  metrics=["accuracy"])
    return model


def training(threads, steps, batch=32):
    r = np.random.default_rng(1)
    x = r.random((steps * batch, 28, 28), dtype=np.float32)
    y = r.integers(0, 10, steps * batch)
    print(f"\nclassic MLP, batch {batch}, random data (us per step)")
    print(f"{'threads':>7s} {'_train_step median':>19s} {'fit per step':>13s}")
    for nt in threads:
        with pynn.num_threads(nt):
            model = mlp()
            model.fit(x[:4 * batch], y[:4 * batch], batch_size=batch, epochs=1, verbose=0)
            xs = [x[i * batch:(i + 1) * batch] for i in range(steps)]
            ys = [y[i * batch:(i + 1) * batch] for i in range(steps)]
            ts = []
            for xb, yb in zip(xs, ys):
                t = time.perf_counter()
                model._train_step(xb, yb, None)
                ts.append(time.perf_counter() - t)
            fits = []
            for _ in range(3):
                t = time.perf_counter()
                model.fit(x, y, batch_size=batch, epochs=1, verbose=0)
                fits.append((time.perf_counter() - t) / steps)
            print(f"{nt:7d} {statistics.median(ts[steps // 10:]) * 1e6:19.1f} "
                  f"{statistics.median(fits) * 1e6:13.1f}")


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--threads", default="1,2")
    ap.add_argument("--rounds", type=int, default=2000)
    ap.add_argument("--steps", type=int, default=400)
    ap.add_argument("--tree", help="checkout to import pynn from (default: this one)")
    ap.add_argument("--skip-wrappers", action="store_true",
                    help="only the training step (e.g. on a checkout without the fast path)")
    a = ap.parse_args()
    print(f"pynn from {os.path.dirname(pynn.__file__)}; {pynn._ext._runtime.get_isa()}")
    if not a.skip_wrappers:
        wrappers(a.rounds)
    training([int(t) for t in a.threads.split(",")], a.steps)


if __name__ == "__main__":
    main()
