"""Per-kernel forward + backward time of the reference CNN's layers at batch 64:
pynn's C kernels (1 and 2 threads) vs the NumPy twin and PyTorch (where importable).

    python bench/conv_kernels.py [--batch 64] [--repeat 7] [--no-reference]

Layers (Keras' reference CNN on 28x28x1): Conv2D(32, 3x3, relu) -> MaxPool 2 ->
Conv2D(64, 3x3, relu) -> MaxPool 2, plus BatchNormalization and a depthwise 3x3 conv on the
second stage's shapes; then inference (forward only, batch 1000) of each conv + relu + 2x2
max pool stage, unfused (conv2d_forward, max_pool2d_forward) and fused (conv2d_maxpool_forward;
GFLOPS count the whole convolution). Each result is checked against the NumPy twin before it
is timed; threads are pinned in every library; contenders alternate round by round; medians.
Timings on a shared machine are noisy: compare within one run only.
"""
import argparse
import contextlib
import os
import statistics
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
import pynn  # noqa: E402

try:
    import threadpoolctl
except ImportError:
    threadpoolctl = None
try:
    import torch
    import torch.nn.functional as F
except ImportError:
    torch = None

C = pynn.ops.get_backend("c")
REF = pynn.ops.get_backend("reference")


@contextlib.contextmanager
def pinned(n):
    """n threads in pynn, NumPy's BLAS and PyTorch for the duration of the block."""
    limits = (threadpoolctl.threadpool_limits(limits=n) if threadpoolctl is not None
              else contextlib.nullcontext())
    old = torch.get_num_threads() if torch is not None else None
    with limits, pynn.num_threads(n):
        if torch is not None:
            torch.set_num_threads(n)
        try:
            yield
        finally:
            if torch is not None:
                torch.set_num_threads(old)


def layer_cases(B, rng):
    """name -> (pynn step(backend) -> fn, torch step -> fn or None, flops of fwd+bwd)."""
    f32 = np.float32
    cases = {}

    def conv(name, H, W, Cin, OC, act="relu"):
        x = rng.standard_normal((B, H, W, Cin)).astype(f32)
        w = (rng.standard_normal((3, 3, Cin, OC)) / np.sqrt(9 * Cin)).astype(f32)
        b = np.zeros(OC, f32)
        oh, ow = H - 2, W - 2
        dy = rng.standard_normal((B, oh, ow, OC)).astype(f32)

        def ours(be):
            def step():
                y = be.conv2d_forward(x, w, b, activation=act)
                return (y,) + be.conv2d_backward(x, w, y, dy, activation=act)
            return step

        def theirs():
            xt = torch.from_numpy(x.transpose(0, 3, 1, 2).copy()).requires_grad_()
            wt = torch.from_numpy(w.transpose(3, 2, 0, 1).copy()).requires_grad_()
            bt = torch.from_numpy(b).requires_grad_()
            dyt = torch.from_numpy(dy.transpose(0, 3, 1, 2).copy())

            def step():
                y = torch.relu(F.conv2d(xt, wt, bt))
                return torch.autograd.grad(y, (xt, wt, bt), dyt)
            return step
        cases[name] = (ours, theirs, 3 * 2.0 * B * oh * ow * 9 * Cin * OC)

    def pool(name, H, W, Cin):
        x = rng.standard_normal((B, H, W, Cin)).astype(f32)
        dy = rng.standard_normal((B, H // 2, W // 2, Cin)).astype(f32)

        def ours(be):
            def step():
                return (be.max_pool2d_forward(x, 2), be.max_pool2d_backward(x, dy, 2))
            return step

        def theirs():
            xt = torch.from_numpy(x.transpose(0, 3, 1, 2).copy()).requires_grad_()
            dyt = torch.from_numpy(dy.transpose(0, 3, 1, 2).copy())

            def step():
                return torch.autograd.grad(F.max_pool2d(xt, 2), (xt,), dyt)
            return step
        cases[name] = (ours, theirs, 0.0)

    def bn(name, shape):
        x = rng.standard_normal(shape).astype(f32)
        Cn = shape[-1]
        g, bb = np.ones(Cn, f32), np.zeros(Cn, f32)
        dy = rng.standard_normal(shape).astype(f32)

        def ours(be):
            def step():
                rm, rv = np.zeros(Cn, f32), np.ones(Cn, f32)
                y, m, s = be.batch_norm_forward(x, g, bb, rm, rv, True)
                return (y,) + be.batch_norm_backward(x, dy, g, m, s, True)
            return step

        def theirs():
            xt = torch.from_numpy(x.transpose(0, 3, 1, 2).copy()).requires_grad_()
            gt, bt = torch.from_numpy(g).requires_grad_(), torch.from_numpy(bb).requires_grad_()
            dyt = torch.from_numpy(dy.transpose(0, 3, 1, 2).copy())

            def step():
                y = F.batch_norm(xt, torch.zeros(Cn), torch.ones(Cn), gt, bt, True, 0.01, 1e-3)
                return torch.autograd.grad(y, (xt, gt, bt), dyt)
            return step
        cases[name] = (ours, theirs, 0.0)

    def depthwise(name, H, W, Cin):
        x = rng.standard_normal((B, H, W, Cin)).astype(f32)
        w = rng.standard_normal((3, 3, Cin, 1)).astype(f32) / 3
        dy = rng.standard_normal((B, H - 2, W - 2, Cin)).astype(f32)

        def ours(be):
            def step():
                y = be.depthwise_conv2d_forward(x, w)
                return (y,) + be.depthwise_conv2d_backward(x, w, y, dy)
            return step

        def theirs():
            xt = torch.from_numpy(x.transpose(0, 3, 1, 2).copy()).requires_grad_()
            wt = torch.from_numpy(w.transpose(2, 3, 0, 1).copy()).requires_grad_()
            dyt = torch.from_numpy(dy.transpose(0, 3, 1, 2).copy())

            def step():
                return torch.autograd.grad(F.conv2d(xt, wt, groups=Cin), (xt, wt), dyt)
            return step
        cases[name] = (ours, theirs, 3 * 2.0 * B * (H - 2) * (W - 2) * 9 * Cin)

    def infer(name, H, W, Cin, OC, fused, NB=1000):
        # inference at batch NB: conv + relu + 2x2 max pool, forward only
        x = rng.standard_normal((NB, H, W, Cin)).astype(f32)
        w = (rng.standard_normal((3, 3, Cin, OC)) / np.sqrt(9 * Cin)).astype(f32)
        b = np.zeros(OC, f32)

        def ours(be):
            def step():
                if fused:
                    return (be.conv2d_maxpool_forward(x, w, b, activation="relu"),)
                return (be.max_pool2d_forward(be.conv2d_forward(x, w, b, activation="relu"), 2),)
            return step

        def theirs():
            xt = torch.from_numpy(x.transpose(0, 3, 1, 2).copy())
            wt = torch.from_numpy(w.transpose(3, 2, 0, 1).copy())
            bt = torch.from_numpy(b)

            def step():
                with torch.no_grad():
                    return (F.max_pool2d(torch.relu(F.conv2d(xt, wt, bt)), 2),)
            return step
        cases[name] = (ours, theirs, 2.0 * NB * (H - 2) * (W - 2) * 9 * Cin * OC)

    conv("conv1 28x28x1->32", 28, 28, 1, 32)
    pool("maxpool1 26x26x32", 26, 26, 32)
    conv("conv2 13x13x32->64", 13, 13, 32, 64)
    pool("maxpool2 11x11x64", 11, 11, 64)
    bn("batchnorm 11x11x64", (B, 11, 11, 64))
    depthwise("depthwise 13x13x32", 13, 13, 32)
    infer("infer conv1+pool", 28, 28, 1, 32, False)
    infer("infer conv1+pool fused", 28, 28, 1, 32, True)
    infer("infer conv2+pool", 13, 13, 32, 64, False)
    infer("infer conv2+pool fused", 13, 13, 32, 64, True)
    return cases


def check(name, got, want):
    for g, e in zip(got, want):
        if e is None:
            continue
        scale = max(1.0, float(np.max(np.abs(e)))) if e.size else 1.0
        err = float(np.max(np.abs(g - e))) / scale if e.size else 0.0
        if err > 1e-3:
            raise SystemExit(f"{name}: C differs from the NumPy twin by {err:.2e}; not timing it")


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--repeat", type=int, default=7)
    ap.add_argument("--no-reference", action="store_true")
    args = ap.parse_args()
    rng = np.random.default_rng(0)
    cases = layer_cases(args.batch, rng)
    print(f"pynn {pynn.__file__}; arch {pynn._config._runtime().get_isa()}; "
          f"torch {torch.__version__ if torch is not None else 'not importable'}; "
          f"batch {args.batch}; median of {args.repeat}; forward + backward, float32")
    head = f"{'layer':22s} {'thr':>3s} {'pynn ms':>9s} {'GFLOPS':>7s} {'numpy ms':>9s} " \
           f"{'torch ms':>9s} {'np/pynn':>8s} {'torch/pynn':>10s}"
    print(head)
    print("-" * len(head))
    for name, (ours, theirs, flops) in cases.items():
        with pinned(1):
            want = ours(REF)()
        for nt in (1, 2):
            with pinned(nt):
                got = ours(C)()
                check(name, got, want)
                contenders = {"pynn": ours(C)}
                if not args.no_reference:
                    contenders["numpy"] = ours(REF)
                if torch is not None:
                    contenders["torch"] = theirs()
                for fn in contenders.values():  # warm-up, dropped
                    fn()
                times = {k: [] for k in contenders}
                for _ in range(args.repeat):
                    for k, fn in contenders.items():
                        t0 = time.perf_counter()
                        fn()
                        times[k].append(time.perf_counter() - t0)
            med = {k: statistics.median(v) * 1e3 for k, v in times.items()}
            p = med["pynn"]
            gf = f"{flops / (p * 1e6):7.1f}" if flops else f"{'':7s}"
            npm = med.get("numpy")
            tm = med.get("torch")
            print(f"{name:22s} {nt:3d} {p:9.2f} {gf} "
                  f"{(f'{npm:9.2f}' if npm else '        -')} "
                  f"{(f'{tm:9.2f}' if tm else '        -')} "
                  f"{(f'{npm / p:8.1f}' if npm else '       -')} "
                  f"{(f'{tm / p:10.2f}' if tm else '         -')}")


if __name__ == "__main__":
    main()
