"""The reference CNN on Fashion-MNIST: per-layer forward+backward time, seconds per epoch,
inference images/s and the compute floor; pynn vs its NumPy reference twin vs PyTorch eager.

    python bench/conv.py [--quick] [--threads 2,1] [--no-reference] [--no-torch]

Reference CNN (issue 4): Conv2D(32, 3x3, relu) -> MaxPool 2 -> Conv2D(64, 3x3, relu) ->
MaxPool 2 -> Flatten -> Dense(128, relu) -> Dense(10), Adam, batch 64, 60,000 images.
- layers: each layer's forward + backward at batch 64 through the layer objects (what a
  training step runs), pynn C vs the reference backend vs torch.nn (NCHW), alternated, medians;
  outputs are checked against the reference before timing.
- epoch: a timed run of `steps` training batches scaled to a full epoch (938 batches); the
  full epoch without --quick; the NumPy reference always runs a few batches, scaled.
- inference: images/s of predict at batch 1000 over the 10,000 test images (median of 3 passes,
  each after 0.3 s idle at more than one thread).
- floor: FLOPs per epoch (3x the forward's multiply-adds x 2, i.e. forward + both backward
  GEMMs) over the measured FMA peak (bench/gemm.py's measured_peak).
Timings on a shared machine are noisy; compare contenders within one run.
"""
import argparse
import os
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import pynn  # noqa: E402
from pynn import layers as L  # noqa: E402
from common import pinned_threads, race, print_table  # noqa: E402

try:
    import torch
    import torch.nn as nn
except ImportError:
    torch = None

BATCH, N_TRAIN = 64, 60000
STEPS_PER_EPOCH = -(-N_TRAIN // BATCH)


def forward_flops_per_sample():
    conv1 = 2 * 26 * 26 * 32 * 9 * 1
    conv2 = 2 * 11 * 11 * 64 * 9 * 32
    dense = 2 * 1600 * 128 + 2 * 128 * 10
    return conv1 + conv2 + dense


def pynn_model(backend):
    m = pynn.Sequential([
        L.Input(shape=(28, 28, 1)),
        L.Conv2D(32, 3, activation="relu"), L.MaxPooling2D(2),
        L.Conv2D(64, 3, activation="relu"), L.MaxPooling2D(2),
        L.Flatten(), L.Dense(128, activation="relu"), L.Dense(10)], backend=backend)
    m.compile("adam", pynn.losses.SparseCategoricalCrossentropy(from_logits=True))
    return m


def torch_model():
    m = nn.Sequential(nn.Conv2d(1, 32, 3), nn.ReLU(), nn.MaxPool2d(2), nn.Conv2d(32, 64, 3),
                      nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(), nn.Linear(1600, 128), nn.ReLU(),
                      nn.Linear(128, 10))
    return m, torch.optim.Adam(m.parameters(), lr=1e-3), nn.CrossEntropyLoss()


def load_data():
    try:
        (x, y), (xt, yt) = pynn.datasets.fashion_mnist.load_data(download=False)
        how = "Fashion-MNIST"
    except Exception as e:  # noqa: BLE001 - the timing does not depend on the pixels
        rng = np.random.default_rng(0)
        x, xt = rng.integers(0, 256, (N_TRAIN, 28, 28)), rng.integers(0, 256, (10000, 28, 28))
        y, yt = rng.integers(0, 10, N_TRAIN), rng.integers(0, 10, 10000)
        how = f"random data ({type(e).__name__})"
    x = (x / 255.0).astype(np.float32)[..., None]
    xt = (xt / 255.0).astype(np.float32)[..., None]
    return x, y.astype(np.int64), xt, yt.astype(np.int64), how


# ---- per layer -----------------------------------------------------------------------------

def layer_rows(threads, use_ref, use_torch, x):
    """[layer, out shape, pynn ms, ref ms, torch ms, ref/pynn, torch/pynn] per layer."""
    models = {b: pynn_model(b) for b in (["c", "reference"] if use_ref else ["c"])}
    models["c"].set_weights(models["c"].get_weights())
    if use_ref:
        models["reference"].set_weights(models["c"].get_weights())
    tl = None
    if use_torch:
        tm, _, _ = torch_model()
        tl = [None, tm[0:2], tm[2], tm[3:5], tm[5], tm[6], tm[7:9], tm[9]]
    rows = []
    xb = x[:BATCH]
    inputs = {b: xb for b in models}
    tin = torch.from_numpy(xb.transpose(0, 3, 1, 2).copy()) if use_torch else None
    rng = np.random.default_rng(1)
    for i, layer in enumerate(models["c"]._layers):
        if i == 0:
            continue
        contenders = {}
        outs = {}
        dy = None
        for b, m in models.items():
            lay = m._layers[i]
            lay._need_dx = True
            y = lay.forward(inputs[b], training=True)
            outs[b] = np.array(y, copy=True)
            if b == "c":  # the same dy for every contender
                dy = rng.standard_normal(y.shape).astype(np.float32)

            def step(lay=lay, xin=inputs[b], dy=dy):
                lay.forward(xin, training=True)
                return lay.backward(dy)
            contenders[b] = step
        if use_ref:
            err = np.max(np.abs(outs["c"] - outs["reference"]))
            assert err < 1e-4 * max(1, np.max(np.abs(outs["reference"]))), (layer.name, err)
        if use_torch:
            mod = tl[i]
            tx = tin.clone().requires_grad_()
            ty = mod(tx)
            tdy = torch.randn_like(ty)

            def tstep(mod=mod, tx=tx, tdy=tdy):
                out = mod(tx)
                return torch.autograd.grad(out, [tx] + list(mod.parameters()), tdy)
            contenders["torch"] = tstep
            tin = ty.detach()
        with pinned_threads(threads):
            t = race(contenders, repeats=5, warmup=1, target_s=0.02)
        name = f"{layer.name} ({type(layer).__name__})"
        row = [name, str(outs["c"].shape[1:]), t["c"] * 1e3,
               t["reference"] * 1e3 if use_ref else "-", t["torch"] * 1e3 if use_torch else "-",
               t["reference"] / t["c"] if use_ref else "-",
               t["torch"] / t["c"] if use_torch else "-"]
        rows.append(row)
        inputs = {b: outs[b] for b in models}
    return rows


# ---- epochs and inference ------------------------------------------------------------------

def pynn_epoch(backend, x, y, steps, threads):
    pynn.utils.set_random_seed(0)
    m = pynn_model(backend)
    with pinned_threads(threads):
        m.train_on_batch(x[:BATCH], y[:BATCH])  # warm-up: buffers and optimizer state
        settle(threads)
        if steps >= STEPS_PER_EPOCH:
            t0 = time.perf_counter()
            m.fit(x, y, batch_size=BATCH, epochs=1, verbose=0, seed=0)
            return time.perf_counter() - t0, m
        t0 = time.perf_counter()
        for s in range(steps):
            a = (s * BATCH) % (len(x) - BATCH)
            m.train_on_batch(x[a:a + BATCH], y[a:a + BATCH])
        return (time.perf_counter() - t0) * STEPS_PER_EPOCH / steps, m


def torch_epoch(x, y, steps, threads):
    torch.manual_seed(0)
    m, opt, lossf = torch_model()
    xt = torch.from_numpy(x.transpose(0, 3, 1, 2).copy())
    yt = torch.from_numpy(y)
    steps = min(steps, STEPS_PER_EPOCH)
    perm = torch.randperm(len(x))
    with pinned_threads(threads):
        t0 = None
        for s in range(steps + 1):
            if s == 1:
                settle(threads)
                t0 = time.perf_counter()  # step 0 is the warm-up
            idx = perm[(s * BATCH) % len(x):(s * BATCH) % len(x) + BATCH]
            opt.zero_grad()
            loss = lossf(m(xt[idx]), yt[idx])
            loss.backward()
            opt.step()
        return (time.perf_counter() - t0) * STEPS_PER_EPOCH / steps, m


INFERENCE_PASSES = 3  # passes over the 10,000 test images; the median is reported


def settle(threads):
    """Idle a moment before a multi-thread sample, so the thread pools of the contender that
    ran before (OpenBLAS in the reference epoch, torch's OpenMP) have stopped spinning."""
    if threads > 1:
        time.sleep(0.3)


def pynn_inference(m, xt, threads):
    with pinned_threads(threads):
        m.predict(xt[:1000], batch_size=1000, verbose=0)
        rates = []
        for _ in range(INFERENCE_PASSES):
            settle(threads)
            t0 = time.perf_counter()
            m.predict(xt, batch_size=1000, verbose=0)
            rates.append(len(xt) / (time.perf_counter() - t0))
        return float(np.median(rates))


def torch_inference(m, xt, threads):
    xtt = torch.from_numpy(xt.transpose(0, 3, 1, 2).copy())
    with pinned_threads(threads), torch.no_grad():
        m(xtt[:1000])
        rates = []
        for _ in range(INFERENCE_PASSES):
            settle(threads)
            t0 = time.perf_counter()
            for a in range(0, len(xtt), 1000):
                m(xtt[a:a + 1000])
            rates.append(len(xtt) / (time.perf_counter() - t0))
        return float(np.median(rates))


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true", help="100 batches per epoch, scaled")
    p.add_argument("--steps", type=int, default=None, help="batches timed per epoch, scaled")
    p.add_argument("--ref-steps", type=int, default=4)
    p.add_argument("--threads", default="2,1")
    p.add_argument("--no-reference", action="store_true")
    p.add_argument("--no-torch", action="store_true")
    a = p.parse_args()
    steps = a.steps or (100 if a.quick else STEPS_PER_EPOCH)
    use_ref, use_torch = not a.no_reference, torch is not None and not a.no_torch
    x, y, xt, yt, how = load_data()
    print(f"data: {how}; batch {BATCH}; {STEPS_PER_EPOCH} batches per epoch; "
          f"{f'timed {steps} batches, scaled' if steps < STEPS_PER_EPOCH else 'full epochs'}; "
          f"torch {'%s' % torch.__version__ if torch is not None else 'not importable'}")
    fl_epoch = 3 * forward_flops_per_sample() * N_TRAIN
    summary = []
    for t in [int(v) for v in a.threads.split(",")]:
        print(f"\n== {t} thread(s): per layer, forward + backward at batch {BATCH} (ms)")
        print_table(["layer", "output", "pynn", "reference", "torch", "ref/pynn", "torch/pynn"],
                    layer_rows(t, use_ref, use_torch, x))
        ep, m = pynn_epoch("c", x, y, steps, t)
        ep_ref = pynn_epoch("reference", x, y, a.ref_steps, t)[0] if use_ref else None
        ep_t, tm = torch_epoch(x, y, steps, t) if use_torch else (None, None)
        inf = pynn_inference(m, xt, t)
        inf_t = torch_inference(tm, xt, t) if use_torch else None
        from gemm import measured_peak
        peak = measured_peak(t)
        floor = fl_epoch / peak
        print(f"\n== {t} thread(s): epoch and inference")
        rows = [["pynn", ep, inf, floor / ep * 100], ]
        if use_ref:
            rows.append(["numpy reference", ep_ref, "-", floor / ep_ref * 100])
        if use_torch:
            rows.append(["pytorch eager", ep_t, inf_t, floor / ep_t * 100])
        print_table(["", "s/epoch", "images/s (b1000)", "% of floor"], rows)
        print(f"FLOPs per epoch {fl_epoch / 1e12:.3f} T; measured peak {peak / 1e9:.0f} GFLOPS; "
              f"compute floor {floor:.2f} s/epoch")
        summary.append((t, ep, ep_ref, ep_t, inf, inf_t))
    print("\n== targets (issue 4): epoch >= 1.5x faster than PyTorch (2 threads), >= 10x "
          "faster than the NumPy reference; inference >= 20,000 images/s")
    for t, ep, ep_ref, ep_t, inf, inf_t in summary:
        parts = [f"{t} thread(s): pynn {ep:.1f} s/epoch"]
        if ep_t:
            parts.append(f"PyTorch/pynn {ep_t / ep:.2f}x")
        if ep_ref:
            parts.append(f"reference/pynn {ep_ref / ep:.1f}x")
        parts.append(f"inference {inf:,.0f} images/s")
        print("; ".join(parts))


if __name__ == "__main__":
    main()
