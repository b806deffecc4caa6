"""The NumPy reference twin of every pynn kernel: the spec.

Same function names, arguments, `out=` semantics and input checks as the C backend
(pynn.ops with the 'c' backend); plain vectorized NumPy, float32 and float64.
"""
from .reduce import *  # noqa: F401,F403
from . import reduce as _reduce

FAMILIES = ("reduce",)
__all__ = [n for fam in (_reduce,) for n in fam.__all__]
