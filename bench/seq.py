"""Sequence layers, forward + backward per batch: LSTM, GRU and the Transformer block; pynn vs
its NumPy reference twin vs PyTorch eager, with each case's FLOPs and compute floor.

    python bench/seq.py [--quick] [--threads 2,1] [--only lstm,gru,transformer]
                        [--no-reference] [--no-torch]

Cases (issue 5):
- LSTM and GRU: batch 32, length 64, input width 256, 256 units, return_sequences; torch
  nn.LSTM / nn.GRU (batch_first).
- TransformerBlock: batch 32, context 64, width 128, 4 heads (key_dim 32), causal, pre-norm,
  GELU MLP of width 512; torch nn.TransformerEncoderLayer(norm_first=True, activation='gelu',
  dropout=0, batch_first) with a causal mask.
Each contender runs forward then backward (weight gradients and dx) with the same upstream
gradient; pynn through the layer objects (what a training step runs), torch through
autograd.grad. Outputs are checked before timing: pynn C against the reference backend, and
the same layer in torch with the pynn weights copied over (Keras layouts -> torch's).
FLOPs count multiply-adds x 2 of the GEMMs (recurrent and input projections; QKV, scores,
attention x values, output projection and MLP with the causal half counted in full); backward
is twice the forward; the floor is FLOPs / the measured FMA peak (bench/gemm.py). Contenders
alternate round by round, medians; a layer not in this branch yet prints "n/a".
"""
import argparse
import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import pynn  # noqa: E402
from pynn import layers as L  # noqa: E402
from common import csv_arg, pinned_threads, print_table, race  # noqa: E402

try:
    import torch
    import torch.nn as nn
except ImportError:
    torch = None

B, T = 32, 64
RNN_C, RNN_H = 256, 256
TF_C, TF_HEADS, TF_FF = 128, 4, 512


def flops(case):
    """Forward + backward FLOPs of one batch (3x the forward's 2*multiply-adds)."""
    if case in ("lstm", "gru"):
        gates = 4 if case == "lstm" else 3
        fwd = 2 * B * T * (RNN_C + RNN_H) * gates * RNN_H
    else:
        proj = 2 * B * T * TF_C * TF_C * 4               # Q, K, V and output projections
        attn = 2 * 2 * B * T * T * TF_C                  # scores and weights @ values
        mlp = 2 * 2 * B * T * TF_C * TF_FF
        fwd = proj + attn + mlp
    return 3 * fwd


def input_shape(case):
    return (B, T, RNN_C) if case in ("lstm", "gru") else (B, T, TF_C)


def pynn_layer(case):
    """A fresh pynn layer for the case, or None where the class is not in pynn.layers."""
    if case == "lstm":
        cls = getattr(L, "LSTM", None)
        return cls and cls(RNN_H, return_sequences=True)
    if case == "gru":
        cls = getattr(L, "GRU", None)
        return cls and cls(RNN_H, return_sequences=True)
    cls = getattr(L, "TransformerBlock", None)
    return cls and cls(num_heads=TF_HEADS, key_dim=TF_C // TF_HEADS, ff_dim=TF_FF,
                       causal=True, activation="gelu")


def pynn_models(case, backends):
    """{backend: the built layer}, every backend with the C model's weights."""
    out = {}
    weights = None
    for b in backends:
        lay = pynn_layer(case)
        if lay is None:
            return {}
        m = pynn.Sequential([L.Input(shape=input_shape(case)[1:]), lay], backend=b)
        if weights is None:
            weights = m.get_weights()
        else:
            m.set_weights(weights)
        layer = m.layers[0]
        layer._need_dx = True
        out[b] = layer
    return out


def torch_module(case):
    if case == "lstm":
        return nn.LSTM(RNN_C, RNN_H, batch_first=True)
    if case == "gru":
        return nn.GRU(RNN_C, RNN_H, batch_first=True)
    return nn.TransformerEncoderLayer(TF_C, TF_HEADS, dim_feedforward=TF_FF, dropout=0.0,
                                      activation="gelu", batch_first=True, norm_first=True)


def copy_rnn_weights(case, layer, mod):
    """Keras layouts -> torch: kernel (C, gH) -> weight_ih (gH, C); LSTM gates i,f,c,o equal
    torch's i,f,g,o; GRU z,r,h -> torch r,z,n, reset_after bias (2, 3H) -> (b_ih, b_hh)."""
    p = {k: np.asarray(v, np.float32) for k, v in layer.params.items()}
    H = RNN_H

    def reorder(a):  # (..., 3H) z,r,h -> r,z,h
        return a if case == "lstm" else np.concatenate(
            [a[..., H:2 * H], a[..., :H], a[..., 2 * H:]], axis=-1)
    bias = p["bias"]
    b_ih, b_hh = (bias, np.zeros_like(bias)) if bias.ndim == 1 else (bias[0], bias[1])
    with torch.no_grad():
        mod.weight_ih_l0.copy_(torch.from_numpy(reorder(p["kernel"]).T.copy()))
        mod.weight_hh_l0.copy_(torch.from_numpy(reorder(p["recurrent_kernel"]).T.copy()))
        mod.bias_ih_l0.copy_(torch.from_numpy(reorder(b_ih).copy()))
        mod.bias_hh_l0.copy_(torch.from_numpy(reorder(b_hh).copy()))


def copy_block_weights(layer, mod):
    """pynn TransformerBlock -> nn.TransformerEncoderLayer: in_proj (3C, C) stacks the q, k, v
    kernels (C, heads, key_dim) flattened and transposed; Dense kernels (in, out) transpose."""
    from char_lm_torch import block_weights
    w = block_weights({k: np.asarray(v, np.float32) for k, v in layer.params.items()})
    names = {"self_attn.out_proj.weight": "o.weight", "self_attn.out_proj.bias": "o.bias",
             "linear1.weight": "fc1.weight", "linear1.bias": "fc1.bias",
             "linear2.weight": "fc2.weight", "linear2.bias": "fc2.bias",
             "norm1.weight": "ln1.weight", "norm1.bias": "ln1.bias",
             "norm2.weight": "ln2.weight", "norm2.bias": "ln2.bias"}
    state = {k: w[v] for k, v in names.items()}
    state["self_attn.in_proj_weight"] = np.concatenate([w["q.weight"], w["k.weight"],
                                                        w["v.weight"]])
    state["self_attn.in_proj_bias"] = np.concatenate([w["q.bias"], w["k.bias"], w["v.bias"]])
    mod.load_state_dict({k: torch.from_numpy(np.ascontiguousarray(v)) for k, v in state.items()})


def torch_forward(case, mod, x, mask):
    if case in ("lstm", "gru"):
        return mod(x)[0]
    return mod(x, src_mask=mask, is_causal=True)


def run_case(case, threads, peak, use_ref, use_torch, rng, repeats, warmup):
    """[case, threads, GFLOP, floor ms, pynn ms, ref ms, torch ms, torch/pynn, its per-round
    range, ref/pynn, % of floor] and a check note."""
    x = rng.standard_normal(input_shape(case)).astype(np.float32)
    dy = rng.standard_normal(input_shape(case)[:2] + (RNN_H if case != "transformer"
                                                      else TF_C,)).astype(np.float32)
    layers = pynn_models(case, ["c", "reference"] if use_ref else ["c"])
    contenders, notes = {}, []
    for b, lay in layers.items():
        def step(lay=lay):
            lay.forward(x, training=True)
            return lay.backward(dy)
        contenders[b] = step
    if "reference" in layers:
        yc = np.array(layers["c"].forward(x, training=True))
        yr = np.array(layers["reference"].forward(x, training=True))
        dc, dr = layers["c"].backward(dy), layers["reference"].backward(dy)
        e = max(np.max(np.abs(yc - yr)), np.max(np.abs(dc - dr)) / max(1, np.max(np.abs(dr))))
        assert e < 1e-3, (case, "pynn C vs reference", e)
        notes.append(f"C vs reference {e:.1e}")
    if use_torch:
        torch.manual_seed(0)
        mod = torch_module(case)
        mask = nn.Transformer.generate_square_subsequent_mask(T) if case == "transformer" \
            else None
        if "c" in layers:
            if case == "transformer":
                copy_block_weights(layers["c"], mod)
            else:
                copy_rnn_weights(case, layers["c"], mod)
            with torch.no_grad():
                yt = torch_forward(case, mod, torch.from_numpy(x), mask).numpy()
            e = np.max(np.abs(np.array(layers["c"].forward(x)) - yt))
            assert e < 1e-3, (case, "pynn vs torch", e)
            notes.append(f"vs torch {e:.1e}")
        tx = torch.from_numpy(x).requires_grad_()
        tdy = torch.from_numpy(dy)
        params = list(mod.parameters())

        def tstep():
            out = torch_forward(case, mod, tx, mask)
            return torch.autograd.grad(out, [tx] + params, tdy)
        contenders["torch"] = tstep
    with pinned_threads(threads):
        # with several threads, idle 0.2 s before each sample: the previous contender's pool
        # threads (OpenBLAS under the reference busy-waits ~0.1 s) would take a core
        rounds = {}
        t = race(contenders, repeats=repeats, warmup=warmup, target_s=0.05,
                 settle_s=0.2 if threads > 1 else 0.0, samples=rounds) if contenders else {}
    fl = flops(case)
    floor = fl / peak

    def ms(k):
        return t[k] * 1e3 if k in t else "n/a"

    def ratio(a, b):
        return t[a] / t[b] if a in t and b in t else "n/a"

    def spread(a, b):
        # the rival's time varies from round to round more than pynn's does: the lowest and
        # highest of the paired per-round ratios (each round times both)
        if a not in rounds or b not in rounds:
            return "n/a"
        r = [x / y for x, y in zip(rounds[a], rounds[b])]
        return f"{min(r):.2f}-{max(r):.2f}"
    return [case, threads, fl / 1e9, floor * 1e3, ms("c"), ms("reference"), ms("torch"),
            ratio("torch", "c"), spread("torch", "c"), ratio("reference", "c"),
            floor / t["c"] * 100 if "c" in t else "n/a"], "; ".join(notes)


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true", help="fewer rounds")
    p.add_argument("--threads", default="2,1")
    p.add_argument("--only", default="lstm,gru,transformer")
    p.add_argument("--no-reference", action="store_true")
    p.add_argument("--no-torch", action="store_true")
    a = p.parse_args()
    use_ref, use_torch = not a.no_reference, torch is not None and not a.no_torch
    repeats, warmup = (3, 1) if a.quick else (7, 2)
    print(f"forward + backward per batch; torch "
          f"{torch.__version__ if torch is not None else 'not importable'}; "
          f"{'quick: ' if a.quick else ''}{repeats} timed rounds, medians")
    rng = np.random.default_rng(0)
    rows = []
    from gemm import measured_peak
    threads = csv_arg(p, a.threads, "--threads", positive_int=True)
    cases = csv_arg(p, a.only, "--only", allowed=("lstm", "gru", "transformer"))
    for t in threads:
        peak = measured_peak(t)
        print(f"measured FP32 peak, {t} thread(s): {peak / 1e9:.0f} GFLOPS", flush=True)
        for case in cases:
            row, note = run_case(case, t, peak, use_ref, use_torch, rng, repeats, warmup)
            rows.append(row)
            got = "n/a" if isinstance(row[4], str) else f"{row[4]:.1f} ms"
            print(f"  {case}, {t} thread(s): pynn {got}{'; checked ' + note if note else ''}",
                  flush=True)
    print()
    print_table(["case", "threads", "GFLOP", "floor ms", "pynn ms", "reference ms", "torch ms",
                 "torch/pynn", "rounds", "ref/pynn", "% of floor"], rows)
    print("torch/pynn: the ratio of the medians; rounds: the lowest and highest ratio of one "
          "round's two times")
    print("\ntargets (issue 5): ref/pynn >= 10 on each; torch/pynn >= 1.3 for LSTM and GRU, "
          ">= 1.5 for the Transformer block (2 threads)")


if __name__ == "__main__":
    main()
