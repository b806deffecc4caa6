"""Embedding lookup and its scatter-add gradient; the NumPy reference.

embedding_forward gathers rows of a (V, D) table at integer ids of any shape;
embedding_backward adds each position's gradient row into a (V, D) gradient at its id.
"""
import numpy as np

from .. import _checks

__all__ = ["embedding_forward", "embedding_backward"]


def embedding_forward(ids, table, out=None):
    """out (*ids.shape, D) = table (V, D)[ids]; ids integers (or whole floats) in [0, V)."""
    ids, table = _checks.embedding_args(ids, table)
    out = _checks.out_array(out, ids.shape + (table.shape[1],), table.dtype,
                            inputs=(table, ids))  # ids are read while out is written
    out[...] = table[ids]                                           # (..., D)
    return out


def embedding_backward(ids, dy, n_rows, out=None):
    """out (n_rows, D) = sum over positions p with ids[p] == v of dy[p] (written, not added)."""
    ids, dy, n_rows = _checks.embedding_grad_args(ids, dy, n_rows)
    D = dy.shape[-1]
    out = _checks.out_array(out, (n_rows, D), dy.dtype, inputs=(dy, ids))
    out[...] = 0                                                    # (V, D)
    np.add.at(out, ids.reshape(-1), dy.reshape(ids.size, D))       # (V, D) scatter-add
    return out
