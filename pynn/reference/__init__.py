"""The NumPy reference twin of every pynn kernel: the spec.

Same function names, arguments, `out=` semantics and input checks as the C backend
(pynn.ops with the 'c' backend); plain vectorized NumPy, float32 and float64.
One module per kernel family, matching csrc/<family>.c and pynn/_ext/_<family>.pyx.
"""
import importlib as _importlib

FAMILIES = ("gemm", "dense", "activations", "losses", "dropout", "optim", "reduce",
            "conv", "pool", "norm", "rnn", "embedding", "layernorm", "attention")


def _collect():
    names = []
    for fam in FAMILIES:
        mod = _importlib.import_module(f".{fam}", __name__)
        globals()[fam] = mod
        for name in mod.__all__:
            globals()[name] = getattr(mod, name)
        names += mod.__all__
    return names


__all__ = _collect()
