"""Weight initializers by Keras name (glorot_uniform, he_normal, zeros, ...).

Draws come from pynn's library generator (pynn.utils.set_random_seed), or from `seed=`:
a seeded initializer returns the same values at every call, as in Keras 3. Values are
drawn in float64 and cast, so float32 and float64 models start from the same numbers.
"""
import math

import numpy as np

from . import utils
from ._registry import UserClasses, lookup

__all__ = ["Initializer", "Zeros", "Ones", "Constant", "RandomNormal", "RandomUniform",
           "TruncatedNormal", "GlorotUniform", "GlorotNormal", "HeNormal", "HeUniform",
           "LecunNormal", "LecunUniform", "Orthogonal", "get", "serialize", "deserialize"]


def _fans(shape):
    # Dense kernel (C, OC): fan_in = C, fan_out = OC; higher rank: receptive field * channels
    if len(shape) == 0:
        return 1, 1
    if len(shape) == 1:
        return shape[0], shape[0]
    if len(shape) == 2:
        return shape[0], shape[1]
    rf = math.prod(shape[:-2])
    return shape[-2] * rf, shape[-1] * rf


class Initializer:
    def __call__(self, shape, dtype="float32"):
        raise NotImplementedError

    def get_config(self):
        return {}

    @classmethod
    def from_config(cls, config):
        return cls(**config)


class Constant(Initializer):
    def __init__(self, value=0.0):
        self.value = float(value)

    def __call__(self, shape, dtype="float32"):
        return np.full(shape, self.value, dtype=dtype)

    def get_config(self):
        return {"value": self.value}


class Zeros(Constant):
    def __init__(self):
        super().__init__(0.0)

    def get_config(self):
        return {}


class Ones(Constant):
    def __init__(self):
        super().__init__(1.0)

    def get_config(self):
        return {}


class _Random(Initializer):
    def __init__(self, seed=None):
        self.seed = seed

    def _rng(self):
        return utils.get_rng(self.seed)

    def get_config(self):
        return {"seed": self.seed}


class RandomNormal(_Random):
    def __init__(self, mean=0.0, stddev=0.05, seed=None):
        super().__init__(seed)
        self.mean, self.stddev = float(mean), float(stddev)

    def __call__(self, shape, dtype="float32"):
        return self._rng().normal(self.mean, self.stddev, shape).astype(dtype)

    def get_config(self):
        return {"mean": self.mean, "stddev": self.stddev, "seed": self.seed}


class TruncatedNormal(RandomNormal):
    def __call__(self, shape, dtype="float32"):
        rng = self._rng()
        z = rng.standard_normal(shape)  # shape
        bad = np.abs(z) > 2
        while bad.any():  # redraw beyond two standard deviations
            z[bad] = rng.standard_normal(int(bad.sum()))
            bad = np.abs(z) > 2
        return (self.mean + self.stddev * z).astype(dtype)


class RandomUniform(_Random):
    def __init__(self, minval=-0.05, maxval=0.05, seed=None):
        super().__init__(seed)
        self.minval, self.maxval = float(minval), float(maxval)

    def __call__(self, shape, dtype="float32"):
        return self._rng().uniform(self.minval, self.maxval, shape).astype(dtype)

    def get_config(self):
        return {"minval": self.minval, "maxval": self.maxval, "seed": self.seed}


class _VarianceScaling(_Random):
    scale, mode, distribution = 1.0, "fan_in", "uniform"

    def __call__(self, shape, dtype="float32"):
        fan_in, fan_out = _fans(tuple(shape))
        n = {"fan_in": fan_in, "fan_out": fan_out, "fan_avg": (fan_in + fan_out) / 2}[self.mode]
        var = self.scale / max(1.0, n)
        rng = self._rng()
        if self.distribution == "uniform":
            lim = math.sqrt(3.0 * var)
            return rng.uniform(-lim, lim, shape).astype(dtype)
        # truncated normal at 2 stddev, stddev corrected as in Keras (0.879...)
        std = math.sqrt(var) / 0.87962566103423978
        z = rng.standard_normal(shape)
        bad = np.abs(z) > 2
        while bad.any():
            z[bad] = rng.standard_normal(int(bad.sum()))
            bad = np.abs(z) > 2
        return (std * z).astype(dtype)


class GlorotUniform(_VarianceScaling):
    scale, mode, distribution = 1.0, "fan_avg", "uniform"


class GlorotNormal(_VarianceScaling):
    scale, mode, distribution = 1.0, "fan_avg", "normal"


class HeNormal(_VarianceScaling):
    scale, mode, distribution = 2.0, "fan_in", "normal"


class HeUniform(_VarianceScaling):
    scale, mode, distribution = 2.0, "fan_in", "uniform"


class LecunNormal(_VarianceScaling):
    scale, mode, distribution = 1.0, "fan_in", "normal"


class LecunUniform(_VarianceScaling):
    scale, mode, distribution = 1.0, "fan_in", "uniform"


class Orthogonal(_Random):
    """Keras' Orthogonal (recurrent kernels): the Q of a QR of a normal matrix, signs fixed by
    R's diagonal, times `gain`; shape (..., N) is treated as the matrix (prod(...), N), and
    its rows (or columns, whichever are fewer) are orthonormal."""

    def __init__(self, gain=1.0, seed=None):
        super().__init__(seed)
        self.gain = float(gain)

    def __call__(self, shape, dtype="float32"):
        shape = tuple(shape)
        rows, cols = (math.prod(shape[:-1]), shape[-1]) if len(shape) > 1 else (1, shape[0])
        a = self._rng().standard_normal((max(rows, cols), min(rows, cols)))
        q, r = np.linalg.qr(a)  # (max, min) with orthonormal columns
        q = q * np.sign(np.diag(r))
        if rows < cols:
            q = q.T
        return (self.gain * q).reshape(shape).astype(dtype)

    def get_config(self):
        return {"gain": self.gain, "seed": self.seed}


_CLASSES = {c.__name__: c for c in (Zeros, Ones, Constant, RandomNormal, RandomUniform,
                                    TruncatedNormal, GlorotUniform, GlorotNormal, HeNormal,
                                    HeUniform, LecunNormal, LecunUniform, Orthogonal)}
_NAMES = {"zeros": Zeros, "ones": Ones, "constant": Constant, "random_normal": RandomNormal,
          "random_uniform": RandomUniform, "truncated_normal": TruncatedNormal,
          "glorot_uniform": GlorotUniform, "glorot_normal": GlorotNormal, "he_normal": HeNormal,
          "he_uniform": HeUniform, "lecun_normal": LecunNormal, "lecun_uniform": LecunUniform,
          "orthogonal": Orthogonal}


def get(identifier):
    if isinstance(identifier, Initializer):
        return identifier
    if isinstance(identifier, str):
        return lookup(_NAMES, identifier, "initializer")()
    if isinstance(identifier, dict):
        return deserialize(identifier)
    raise TypeError(f"initializer must be a name or a pynn.initializers object, "
                    f"received {identifier!r}")


def serialize(init):
    return {"class_name": type(init).__name__, "config": init.get_config()}


# the user's own Initializer subclasses while a model loads (load_model(custom_objects=...))
_USER = UserClasses("initializer", Initializer)


def custom_objects(objects):
    """Within the block, deserialize also knows these {class name: Initializer subclass}."""
    return _USER.scope(objects)


def deserialize(config):
    cls = _USER.resolve(config.get("class_name"), _CLASSES)
    return cls.from_config(config.get("config", {}))
