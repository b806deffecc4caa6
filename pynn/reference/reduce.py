"""Reductions the trainer needs: column sums (bias gradients), row argmax, accuracy."""
import numpy as np

from .. import _checks

__all__ = ["column_sum", "row_argmax", "count_correct", "accuracy"]


def column_sum(x, out=None):
    """Sum of a 2-D array over its rows.

    x (B, N) float32/float64 -> out (N,), same dtype. B may be 0 (sums are 0).
    """
    x = _checks.float_array(x, "x", ndim=2)
    out = _checks.out_array(out, (x.shape[1],), x.dtype, inputs=(x,))
    out[...] = x.sum(axis=0)  # (N,)
    return out


def row_argmax(x, out=None):
    """Index of the largest entry of each row (first one on ties; a NaN counts as largest).

    x (B, N), N >= 1 -> out (B,) int64.
    """
    x = _checks.float_array(x, "x", ndim=2)
    if x.shape[1] == 0:
        raise ValueError(f"row_argmax needs at least one column, received shape {x.shape}")
    out = _checks.out_array(out, (x.shape[0],), np.int64, inputs=(x,))
    out[...] = np.argmax(x, axis=1)  # (B,)
    return out


def count_correct(x, labels):
    """Number of rows whose argmax equals the integer label.

    x (B, N) scores or probabilities, N >= 1; labels (B,) integers in [0, N) -> int.
    """
    x = _checks.float_array(x, "x", ndim=2)
    if x.shape[1] == 0:
        raise ValueError(f"count_correct needs at least one column, received shape {x.shape}")
    labels = _checks.int_labels(labels, x.shape[0], x.shape[1])
    return int(np.count_nonzero(np.argmax(x, axis=1) == labels))


def accuracy(x, labels):
    """Fraction of rows whose argmax equals the integer label; 0.0 for an empty batch."""
    n = count_correct(x, labels)
    return n / x.shape[0] if x.shape[0] else 0.0
