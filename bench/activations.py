"""Exact GELU forward and backward: pynn C vs its NumPy reference vs PyTorch.

    python bench/activations.py [--threads 1,2] [--shape 2048,512] [--no-reference] [--tanh]

Case of issue 5: the Transformer block's MLP activation, (2048, 512) per batch, float32 and
float64. torch: F.gelu(x) and aten.gelu_backward(dy, x) (approximate='none'; its float32 erf
is a fast approximation with an absolute, not relative, error bound). --tanh adds the tanh
form of each. Results are checked against the reference before timing; contenders alternate
round by round, medians (ms).
"""
import argparse
import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import pynn  # noqa: E402
from common import pinned_threads, race, print_table, torch  # noqa: E402


def contenders(x, dy, approximate, reference):
    c, ref = pynn.ops.get_backend("c"), pynn.ops.get_backend("reference")
    out = np.empty_like(x)
    want_y = ref.gelu_forward(x, approximate=approximate)
    want_g = ref.gelu_backward(x, dy, approximate=approximate)
    tol = 1e-5 if x.dtype == np.float32 else 1e-12
    np.testing.assert_allclose(c.gelu_forward(x, approximate=approximate), want_y, rtol=tol,
                               atol=tol)
    np.testing.assert_allclose(c.gelu_backward(x, dy, approximate=approximate), want_g,
                               rtol=tol, atol=tol)
    fns = {"pynn fwd": lambda: c.gelu_forward(x, approximate=approximate, out=out),
           "pynn bwd": lambda: c.gelu_backward(x, dy, approximate=approximate, out=out)}
    if reference:
        fns["reference fwd"] = lambda: ref.gelu_forward(x, approximate=approximate, out=out)
        fns["reference bwd"] = lambda: ref.gelu_backward(x, dy, approximate=approximate,
                                                         out=out)
    if torch is not None:
        tx, tdy = torch.from_numpy(x), torch.from_numpy(dy)
        mode = "tanh" if approximate else "none"
        np.testing.assert_allclose(torch.nn.functional.gelu(tx, approximate=mode).numpy(),
                                   want_y, rtol=10 * tol, atol=10 * tol)
        fns["torch fwd"] = lambda: torch.nn.functional.gelu(tx, approximate=mode)
        fns["torch bwd"] = lambda: torch.ops.aten.gelu_backward(tdy, tx, approximate=mode)
    return fns


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--threads", default="1,2")
    p.add_argument("--shape", default="2048,512")
    p.add_argument("--no-reference", action="store_true")
    p.add_argument("--tanh", action="store_true")
    a = p.parse_args()
    shape = tuple(int(s) for s in a.shape.split(","))
    rng = np.random.default_rng(0)
    rows, names = [], None
    for nt in (int(t) for t in a.threads.split(",")):
        for dtype in (np.float32, np.float64):
            x = rng.standard_normal(shape).astype(dtype)
            dy = rng.standard_normal(shape).astype(dtype)
            for approximate in ((False, True) if a.tanh else (False,)):
                with pinned_threads(nt):
                    res = race(contenders(x, dy, approximate, not a.no_reference))
                names = names or list(res)
                rows.append([nt, np.dtype(dtype).name, "tanh" if approximate else "exact"]
                            + [res.get(n, float("nan")) * 1e3 for n in names])
    print(f"GELU on {shape}, milliseconds per call (medians)")
    print_table(["threads", "dtype", "form"] + names, rows)


if __name__ == "__main__":
    main()
