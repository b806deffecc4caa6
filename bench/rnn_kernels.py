"""Recurrent layers, forward + backward per batch: pynn C vs its NumPy reference vs PyTorch.

    python bench/rnn_kernels.py [--threads 2,1] [--batch 32] [--length 64] [--width 256]
                                [--no-reference] [--no-torch]

Case of issue 5: batch 32, length 64, input and hidden width 256, return_sequences=True, one
training step's forward and backward through the layer object (pynn LSTM/GRU; torch nn.LSTM /
nn.GRU with batch_first=True and the same weights). Outputs are checked against the reference
backend (and torch) before timing; contenders alternate round by round, medians.
floor: FLOPs (forward 2 GEMMs + backward 4 GEMMs of B*T x C x G*H each) over the measured FMA
peak (bench/gemm.py).
"""
import argparse
import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import pynn  # noqa: E402
from pynn import layers as L  # noqa: E402
from common import pinned_threads, race, print_table  # noqa: E402

try:
    import torch
except ImportError:
    torch = None


def pynn_layer(cell, h, shape, backend):
    pynn.utils.set_random_seed(0)
    layer = (L.LSTM if cell == "LSTM" else L.GRU)(h, return_sequences=True)
    layer._build_for((None,) + shape[1:], pynn.ops.get_backend(backend), np.float32)
    return layer


def step(layer, x, dy):
    layer.forward(x, training=True)
    layer.backward(dy)


def torch_twin(cell, layer, c, h):
    """torch nn.LSTM / nn.GRU with the pynn layer's weights (Keras -> torch gate order)."""
    k, r, b = (layer.params[n] for n in ("kernel", "recurrent_kernel", "bias"))
    if cell == "LSTM":  # both i, f, g, o
        m = torch.nn.LSTM(c, h, batch_first=True)
        wi, wh, bi, bh = k.T, r.T, b, np.zeros_like(b)
    else:  # Keras z, r, h -> torch r, z, n; reset_after is torch's GRU
        m = torch.nn.GRU(c, h, batch_first=True)
        perm = np.concatenate([np.arange(h, 2 * h), np.arange(h), np.arange(2 * h, 3 * h)])
        wi, wh, bi, bh = k.T[perm], r.T[perm], b[0][perm], b[1][perm]
    with torch.no_grad():
        for name, v in (("weight_ih_l0", wi), ("weight_hh_l0", wh), ("bias_ih_l0", bi),
                        ("bias_hh_l0", bh)):
            getattr(m, name).copy_(torch.from_numpy(np.ascontiguousarray(v)))
    return m


def torch_step(m, xt, dyt):
    m.zero_grad(set_to_none=True)
    xt.grad = None
    y, _ = m(xt)
    y.backward(dyt)


def measured_peak(nt):
    try:
        from gemm import measured_peak as mp
        return mp(nt, runs=10)
    except Exception:  # pragma: no cover - no AVX-512 peak kernel
        return None


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--threads", default="2,1")
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--length", type=int, default=64)
    ap.add_argument("--width", type=int, default=256)
    ap.add_argument("--no-reference", action="store_true")
    ap.add_argument("--no-torch", action="store_true")
    args = ap.parse_args()
    b, t, c = args.batch, args.length, args.width
    h = c
    use_torch = torch is not None and not args.no_torch
    rng = np.random.default_rng(0)
    x = rng.uniform(-1, 1, (b, t, c)).astype(np.float32)
    dy = rng.standard_normal((b, t, h)).astype(np.float32)
    rows = []
    for nt in [int(s) for s in args.threads.split(",")]:
        peak = measured_peak(nt)
        with pinned_threads(nt):
            for cell, gates in (("LSTM", 4), ("GRU", 3)):
                lc = pynn_layer(cell, h, (b, t, c), "c")
                lr = pynn_layer(cell, h, (b, t, c), "reference")
                yc = lc.forward(x).copy()
                yr = lr.forward(x)
                err = float(np.abs(yc - yr).max())
                assert err < 1e-4, f"{cell}: C vs reference differ by {err}"
                contenders = {"pynn": lambda: step(lc, x, dy)}
                if not args.no_reference:
                    contenders["reference"] = lambda: step(lr, x, dy)
                if use_torch:
                    m = torch_twin(cell, lc, c, h)
                    xt = torch.from_numpy(x).requires_grad_(True)
                    dyt = torch.from_numpy(dy)
                    with torch.no_grad():
                        terr = float(np.abs(m(xt)[0].numpy() - yc).max())
                    assert terr < 1e-4, f"{cell}: pynn vs torch differ by {terr}"
                    contenders["torch"] = lambda: torch_step(m, xt, dyt)
                times = race(contenders, repeats=5, warmup=1, target_s=0.05)
                flops = 6 * 2.0 * b * t * c * gates * h
                floor = flops / peak * 1e3 if peak else float("nan")
                tp = times["pynn"] * 1e3
                row = [cell, nt, tp]
                row.append(times["reference"] * 1e3 if "reference" in times else float("nan"))
                row.append(times["torch"] * 1e3 if "torch" in times else float("nan"))
                row += [row[3] / tp, row[4] / tp, floor, flops / times["pynn"] / 1e9]
                rows.append(row)
    print(f"batch {b}, length {t}, width {c}, forward+backward, return_sequences=True (ms)")
    print_table(["cell", "threads", "pynn", "reference", "torch", "ref/pynn", "torch/pynn",
                 "floor", "GFLOP/s"], rows)


if __name__ == "__main__":
    main()
