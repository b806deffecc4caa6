"""Utilities: the library-owned random generator and small helpers.

Every random choice pynn makes (weight initializers, dropout seeds, fit's shuffling) draws
from ONE generator owned by the library, so `set_random_seed(s)` makes a whole run
reproducible. Randomness never depends on the thread count: dropout masks are a pure
function of (seed, step, element index) and everything else is drawn here, in Python.
"""
import random as _pyrandom

import numpy as np

__all__ = ["set_random_seed", "get_rng", "draw_seed", "to_categorical"]

_rng = [np.random.default_rng()]


def set_random_seed(seed):
    """Seed pynn's generator (and Python's `random` and `np.random`, as Keras does).

    After this, models built, initialized, trained with dropout and shuffled by `fit`
    produce the same numbers in every run, whatever the thread count.
    """
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ValueError(f"seed must be a non-negative integer, received {seed!r}")
    seed = int(seed)
    _rng[0] = np.random.default_rng(seed)
    _pyrandom.seed(seed)
    np.random.seed(seed % 2**32)


def get_rng(seed=None):
    """The library generator, or a fresh generator for an explicit `seed`."""
    if seed is None:
        return _rng[0]
    if isinstance(seed, np.random.Generator):
        return seed
    return np.random.default_rng(int(seed))


def draw_seed(seed=None):
    """An integer seed in [0, 2**63) for a kernel (from `seed` if given, else the generator)."""
    return int(get_rng(seed).integers(0, 2**63 - 1))


def to_categorical(y, num_classes=None, dtype="float32"):
    """One-hot encode integer labels (B,) -> (B, num_classes), like keras.utils.to_categorical."""
    y = np.asarray(y)
    if y.ndim == 2 and y.shape[1] == 1:
        y = y[:, 0]
    if num_classes is None:
        num_classes = int(y.max()) + 1 if y.size else 0
    from . import _checks
    labels = _checks.int_labels(y.reshape(-1), y.size, num_classes, "y")
    out = np.zeros((labels.shape[0], num_classes), dtype=dtype)  # (B, K)
    out[np.arange(labels.shape[0]), labels] = 1  # (B, K)
    return out.reshape(y.shape + (num_classes,))
