"""TransformerBlock forward+backward and its kernels: pynn C vs the NumPy reference vs
PyTorch eager (nn.TransformerEncoderLayer(norm_first=True, activation='gelu',
batch_first=True) with a causal mask), batch 32, context 64, width 128, 4 heads, MLP 512.

    python bench/attention_kernels.py [--threads 2] [--repeats 7] [--no-reference]

Checks first (C block gradients against the reference backend), then times alternately.
"""
import argparse
import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(1, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from common import pinned_threads, race, print_table, torch  # noqa: E402

import pynn  # noqa: E402
from pynn.layers import TransformerBlock  # noqa: E402

B, T, C, HEADS, FF = 32, 64, 128, 4, 512


def make_block(backend, seed=0):
    pynn.utils.set_random_seed(seed)
    blk = TransformerBlock(HEADS, ff_dim=FF, causal=True)
    blk._build_for((None, T, C), pynn.ops.get_backend(backend), np.float32)
    return blk


def step(blk, x, dy):
    blk.forward(x, training=True)
    return blk.backward(dy)


def block_flops():
    tok = B * T
    gemm = 2 * tok * (C * 3 * C + C * C + 2 * C * FF)        # projections + MLP
    att = 2 * B * HEADS * T * T * (C // HEADS) * 2 / 2        # causal: half of QK^T and PV
    return 3 * (gemm + att)                                   # forward + 2x backward


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--repeats", type=int, default=7)
    ap.add_argument("--no-reference", action="store_true")
    args = ap.parse_args()
    rng = np.random.default_rng(0)
    x = rng.standard_normal((B, T, C)).astype(np.float32)
    dy = rng.standard_normal((B, T, C)).astype(np.float32)
    cb, rb = make_block("c"), make_block("reference")
    dx_c, dx_r = step(cb, x, dy).copy(), step(rb, x, dy).copy()
    err = np.max(np.abs(dx_c - dx_r)) / np.max(np.abs(dx_r))
    gerr = max(np.max(np.abs(cb.grads[k] - rb.grads[k])) / max(1.0, np.max(np.abs(rb.grads[k])))
               for k in cb.grads)
    print(f"check: dx rel err {err:.2e}, worst weight-gradient rel err {gerr:.2e}")
    assert err < 1e-4 and gerr < 1e-3

    contenders = {"pynn C": lambda: step(cb, x, dy)}
    if not args.no_reference:
        contenders["reference"] = lambda: step(rb, x, dy)
    if torch is not None:
        layer = torch.nn.TransformerEncoderLayer(C, HEADS, FF, dropout=0.0, activation="gelu",
                                                 batch_first=True, norm_first=True)
        xt = torch.tensor(x, requires_grad=True)
        dyt = torch.tensor(dy)
        mask = torch.nn.Transformer.generate_square_subsequent_mask(T)

        def torch_step():
            xt.grad = None
            layer.zero_grad(set_to_none=True)
            layer(xt, src_mask=mask, is_causal=True).backward(dyt)
        contenders["torch eager"] = torch_step
    with pinned_threads(args.threads):
        times = race(contenders, repeats=args.repeats, warmup=2, target_s=0.05)
        # kernels of the C block alone (one forward + backward each)
        s = cb._subs
        att = s["attention"]
        (multi, n, q2, k2, v2, Qh, Kh, Vh, a, probs, causal, scale, *_) = att._cache
        ops = pynn.ops.get_backend("c")
        dout = rng.standard_normal(Qh.shape).astype(np.float32)
        h = rng.standard_normal((B * T, C)).astype(np.float32)
        g = np.ones(C, np.float32)
        _, m, r = ops.layernorm_forward(h, g, g, 1e-5)
        z = rng.standard_normal((B * T, FF)).astype(np.float32)
        zo, zg = np.empty_like(z), np.empty_like(z)
        parts = race({
            "attention fwd": lambda: ops.attention_forward(Qh, Kh, Vh, True),
            "attention bwd": lambda: ops.attention_backward(Qh, Kh, Vh, probs, dout, True),
            "layernorm fwd": lambda: ops.layernorm_forward(h, g, g, 1e-5),
            "layernorm bwd": lambda: ops.layernorm_backward(h, g, m, r, h),
            # the MLP's activation, for its share of the block: the block runs the one-pass
            # forward + derivative and multiplies dy by it in the backward
            "gelu exact fwd+grad, dy*grad": lambda: (ops.gelu_forward_grad(z, out=zo, grad=zg),
                                                     np.multiply(z, zg, out=zg)),
            "gelu exact f+b (B*T, ff)": lambda: (ops.gelu_forward(z, out=zo),
                                                 ops.gelu_backward(z, z, out=zo)),
            "gelu tanh f+b (B*T, ff)": lambda: (ops.gelu_forward(z, True, out=zo),
                                                ops.gelu_backward(z, z, True, out=zo)),
        }, repeats=args.repeats, warmup=1, target_s=0.02)
    fl = block_flops()
    rows = [[name, t * 1e3, fl / t / 1e9, times["pynn C"] / t] for name, t in times.items()]
    print(f"TransformerBlock fwd+bwd B={B} T={T} C={C} heads={HEADS} ff={FF} causal, "
          f"{args.threads} threads")
    print_table(["contender", "ms", "GFLOPS", "pynn/this"], rows)
    print_table(["kernel", "ms"], [[k, v * 1e3] for k, v in parts.items()])


if __name__ == "__main__":
    main()
