"""Weight regularizers (L1, L2, L1L2) by Keras name.

`penalty(w)` is the loss term added to the reported loss; `add_gradient(w, g)` adds its
gradient into the gradient buffer in place (after the layer's backward wrote it).
"""
import numpy as np

from . import _checks
from ._registry import UserClasses, lookup

__all__ = ["Regularizer", "L1", "L2", "L1L2", "get", "serialize", "deserialize"]


class Regularizer:
    def __init__(self, l1=0.0, l2=0.0):
        # finite and >= 0 (a NaN factor made every weight NaN at the first step, a negative
        # one a loss falling without bound), as Keras checks
        self.l1 = _checks.finite_scalar(l1, "l1", low=0.0)
        self.l2 = _checks.finite_scalar(l2, "l2", low=0.0)

    def __call__(self, w):
        return self.penalty(w)

    def penalty(self, w):
        # l1 * sum|w| + l2 * sum w^2
        p = 0.0
        if self.l1:
            p += self.l1 * float(np.sum(np.abs(w)))
        if self.l2:
            p += self.l2 * float(np.einsum("i,i->", w.ravel(), w.ravel()))  # no BLAS threads
        return p

    def add_gradient(self, w, g):
        # g += l1 * sign(w) + 2 * l2 * w  (in place)
        if self.l2:
            g += (2.0 * self.l2) * w
        if self.l1:
            g += self.l1 * np.sign(w)

    def get_config(self):
        return {"l1": self.l1, "l2": self.l2}

    @classmethod
    def from_config(cls, config):
        return cls(**config)


class L1L2(Regularizer):
    pass


class L1(Regularizer):
    def __init__(self, l1=0.01):
        super().__init__(l1=l1)

    def get_config(self):
        return {"l1": self.l1}


class L2(Regularizer):
    def __init__(self, l2=0.01):
        super().__init__(l2=l2)

    def get_config(self):
        return {"l2": self.l2}


_CLASSES = {"L1": L1, "L2": L2, "L1L2": L1L2}
_NAMES = {"l1": L1, "l2": L2, "l1_l2": L1L2}


def get(identifier):
    if identifier is None or isinstance(identifier, Regularizer):
        return identifier
    if isinstance(identifier, str):
        return lookup(_NAMES, identifier, "regularizer")()
    if isinstance(identifier, dict):
        return deserialize(identifier)
    raise TypeError(f"regularizer must be a name or a pynn.regularizers object, "
                    f"received {identifier!r}")


def serialize(reg):
    return None if reg is None else {"class_name": type(reg).__name__, "config": reg.get_config()}


# the user's own Regularizer subclasses while a model loads (load_model(custom_objects=...))
_USER = UserClasses("regularizer", Regularizer)


def custom_objects(objects):
    """Within the block, deserialize also knows these {class name: Regularizer subclass}."""
    return _USER.scope(objects)


def deserialize(config):
    if config is None:
        return None
    cls = _USER.resolve(config.get("class_name"), _CLASSES)
    return cls.from_config(config.get("config", {}))
