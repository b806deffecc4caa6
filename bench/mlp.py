"""The classic MLP (784-128 relu-dropout 0.2-10 softmax, Adam, sparse categorical cross-entropy)
trained on Fashion-MNIST: pynn (C kernels) against its NumPy reference backend and PyTorch.

    python bench/mlp.py [--epochs 5] [--batch 32,128,512] [--threads 2,1] [--quick]
                        [--only pynn,reference,torch]

For each thread count and batch size, the contenders train in alternation (one epoch each in
turn, so machine noise hits them alike); per contender: median seconds per epoch, test
accuracy after the last epoch, inference images/s at batch 1000 (median of 3 passes over the
test set), and how many times faster pynn is. Also the epoch's compute floor: the model's
FLOPs per epoch over the machine's measured peak. PyTorch runs only where it imports; its loop
is the idiomatic eager one (shuffled index batches, zero_grad/backward/step).
"""
import argparse
import os
import statistics
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
import pynn  # noqa: E402
import pynn.datasets  # noqa: E402
from common import csv_arg  # noqa: E402

try:
    import torch
except ImportError:
    torch = None
try:
    from threadpoolctl import threadpool_limits
except ImportError:
    threadpool_limits = None

IN, HID, OUT = 784, 128, 10


def flops_per_sample():
    """Forward GEMMs, weight gradients of both layers, input gradient of the second only."""
    fwd = 2 * (IN * HID + HID * OUT)
    return fwd + fwd + 2 * HID * OUT


def numpy_peak_gflops(threads):
    """A rough peak: float32 NumPy matmul of 2048^2 (median of 5), under `threads`."""
    a = np.random.default_rng(0).random((2048, 2048), dtype=np.float32)
    ctx = threadpool_limits(threads) if threadpool_limits else _nullctx()
    with ctx:
        a @ a
        ts = []
        for _ in range(5):
            t = time.perf_counter()
            a @ a
            ts.append(time.perf_counter() - t)
    return 2 * 2048 ** 3 / statistics.median(ts) / 1e9


class _nullctx:
    def __enter__(self):
        return self

    def __exit__(self, *a):
        return False


def peak_gflops(threads):
    """bench/common.py's measured peak when it has one, else NumPy's matmul (labelled)."""
    try:
        import common
        for name in ("measure_peak_gflops", "peak_gflops", "measure_peak"):
            fn = getattr(common, name, None)
            if fn is not None:
                return float(fn(threads=threads)), f"bench/common.py {name}"
    except Exception:
        pass
    return numpy_peak_gflops(threads), "rough: NumPy float32 matmul 2048^2"


# -- contenders: build(), epoch(), accuracy(), infer() ---------------------------------------------
class Pynn:
    def __init__(self, backend, data, batch, seed):
        self.name = "pynn" if backend == "c" else "reference"
        self.backend, self.batch = backend, batch
        (self.x, self.y), (self.xt, self.yt) = data
        with pynn.ops.use_backend(backend):
            pynn.utils.set_random_seed(seed)
            self.model = pynn.Sequential([
                pynn.layers.Flatten(input_shape=(28, 28)),
                pynn.layers.Dense(HID, activation="relu"),
                pynn.layers.Dropout(0.2),
                pynn.layers.Dense(OUT, activation="softmax")])
            self.model.compile(optimizer="adam", loss="sparse_categorical_crossentropy",
                               metrics=["accuracy"])

    def epoch(self):
        with pynn.ops.use_backend(self.backend):
            self.model.fit(self.x, self.y, batch_size=self.batch, epochs=1, verbose=0)

    def predict(self, x):
        with pynn.ops.use_backend(self.backend):
            return self.model.predict(x, batch_size=1000, verbose=0)


class Torch:
    name = "torch"

    def __init__(self, data, batch, seed):
        torch.manual_seed(seed)
        (x, y), (xt, yt) = data
        self.x, self.y = torch.from_numpy(x), torch.from_numpy(y.astype(np.int64))
        self.xt = torch.from_numpy(xt)
        self.batch = batch
        self.model = torch.nn.Sequential(
            torch.nn.Flatten(), torch.nn.Linear(IN, HID), torch.nn.ReLU(),
            torch.nn.Dropout(0.2), torch.nn.Linear(HID, OUT))
        self.opt = torch.optim.Adam(self.model.parameters(), lr=1e-3)
        self.loss = torch.nn.CrossEntropyLoss()

    def epoch(self):
        self.model.train()
        perm = torch.randperm(len(self.x))
        for i in range(0, len(perm), self.batch):
            idx = perm[i:i + self.batch]
            self.opt.zero_grad()
            loss = self.loss(self.model(self.x[idx]), self.y[idx])
            loss.backward()
            self.opt.step()

    def predict(self, x):
        self.model.eval()
        x = torch.from_numpy(x)
        with torch.inference_mode():
            return torch.cat([self.model(x[i:i + 1000]).softmax(1)
                              for i in range(0, len(x), 1000)]).numpy()


def set_threads(n):
    pynn.set_num_threads(n)
    if torch is not None:
        torch.set_num_threads(n)


def run(contenders, epochs, x_test, y_test, threads):
    secs = {c.name: [] for c in contenders}
    ctx = threadpool_limits(threads) if threadpool_limits else _nullctx()
    with ctx:
        for _ in range(epochs):
            for c in contenders:                # alternate: noise hits everyone alike
                t = time.perf_counter()
                c.epoch()
                secs[c.name].append(time.perf_counter() - t)
        out = {}
        for c in contenders:
            acc = float(np.mean(np.argmax(c.predict(x_test), axis=1) == y_test))
            ts = []
            for _ in range(3):
                t = time.perf_counter()
                c.predict(x_test)
                ts.append(time.perf_counter() - t)
            # the first epoch is a warm-up when there are several
            s = secs[c.name][1:] if len(secs[c.name]) > 1 else secs[c.name]
            out[c.name] = (statistics.median(s), acc, len(x_test) / statistics.median(ts))
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--epochs", type=int, default=5)
    ap.add_argument("--batch", default="32,128,512", help="comma-separated batch sizes")
    ap.add_argument("--threads", default="2,1", help="comma-separated thread counts")
    ap.add_argument("--only", default="pynn,reference,torch", help="contenders to run")
    ap.add_argument("--quick", action="store_true",
                    help="a smoke run: 2 epochs on 6000 training images")
    args = ap.parse_args()
    batches = csv_arg(ap, args.batch, "--batch", positive_int=True)
    threads = csv_arg(ap, args.threads, "--threads", positive_int=True)
    only = set(csv_arg(ap, args.only, "--only", allowed=("pynn", "reference", "torch")))
    if args.epochs < 1:
        ap.error("--epochs: must be a positive integer")
    if torch is None and "torch" in only:
        print("PyTorch is not importable here: running without it")
        only.discard("torch")

    (x, y), (xt, yt) = pynn.datasets.fashion_mnist.load_data()
    x, xt = (x / 255.0).astype(np.float32), (xt / 255.0).astype(np.float32)
    epochs = args.epochs
    if args.quick:
        x, y, epochs = x[:6000], y[:6000], min(epochs, 2)
    data = ((x, y), (xt, yt))
    fps = flops_per_sample()
    print(f"Fashion-MNIST MLP 784-128-10, {len(x)} training images, {epochs} epochs, "
          f"{fps * len(x) / 1e9:.1f} GFLOP per epoch; pynn {pynn.__version__}"
          + (f", torch {torch.__version__}" if torch is not None else ""))
    hdr = (f"{'thr':>3} {'batch':>5} {'who':<9} {'s/epoch':>8} {'test acc':>8} "
           f"{'infer img/s':>11}  pynn speedup over it (train, infer) / % of floor")
    table = {}
    for t in threads:
        set_threads(t)
        peak, how = peak_gflops(t)
        floor = fps * len(x) / (peak * 1e9)
        print(f"\n{t} thread(s): peak {peak:.0f} GFLOPS ({how}); compute floor "
              f"{floor:.3f} s per epoch")
        print(hdr)
        for b in batches:
            cs = []
            if "pynn" in only:
                cs.append(Pynn("c", data, b, seed=0))
            if "reference" in only:
                cs.append(Pynn("reference", data, b, seed=0))
            if "torch" in only:
                cs.append(Torch(data, b, seed=0))
            res = run(cs, epochs, xt, yt, t)
            table[t, b] = res
            base = res.get("pynn")
            for name, (s, acc, ips) in res.items():
                ratio = (f"train {s / base[0]:5.2f}x  infer {base[2] / ips:5.2f}x"
                         if base and name != "pynn" else
                         f"floor is {100 * floor / s:.1f}% of the epoch" if name == "pynn"
                         else "")
                print(f"{t:>3} {b:>5} {name:<9} {s:8.3f} {acc:8.4f} {ips:11.0f}  {ratio}")
            sys.stdout.flush()
    summary(table, epochs)


# the targets, at 2 threads: training speedup over PyTorch (and over the reference
# at batch 32), inference no slower, accuracy after 5 epochs
TARGETS = {32: 5.0, 128: 2.0, 512: 1.2}


def summary(table, epochs):
    rows = [(t, b, r) for (t, b), r in table.items() if "pynn" in r]
    if not rows:
        return
    print("\nTargets (2 threads; accuracy after 5 epochs >= 0.865):")
    for t, b, r in rows:
        if t != 2:
            continue
        p = r["pynn"]
        parts = [f"acc {p[1]:.4f}" + ("" if epochs >= 5 else f" (after {epochs} epochs)")]
        for other in ("torch", "reference"):
            if other in r and (other == "torch" or b == 32):
                need = TARGETS.get(b)
                got = r[other][0] / p[0]
                parts.append(f"{got:.2f}x {other}" + (f" (target {need}x: "
                             f"{'met' if got >= need else 'NOT met'})" if need else ""))
        if "torch" in r:
            inf = p[2] / r["torch"][2]
            parts.append(f"inference {inf:.2f}x torch ({'met' if inf >= 1 else 'NOT met'})")
        print(f"  batch {b:>4}: " + ", ".join(parts))


if __name__ == "__main__":
    main()
