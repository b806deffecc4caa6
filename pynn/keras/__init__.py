"""`pynn.keras`: the tf.keras names over pynn, so Keras code ports by changing its import.

    from pynn import keras            # instead of: from tensorflow import keras
    keras.layers.Dense(10), keras.optimizers.Adam(), keras.Sequential([...])

The submodules are pynn's own modules, registered under pynn.keras.* so that
`import pynn.keras.layers` and `from pynn.keras.layers import Dense` work too.
"""
import importlib
import sys

from .. import (activations, callbacks, initializers, layers, losses, metrics, models, optim,
                regularizers, utils)
from ..model import Model, Sequential
from ..layers import Input

optimizers = optim
_SUBMODULES = {"activations": activations, "callbacks": callbacks,
               "initializers": initializers, "layers": layers, "losses": losses,
               "metrics": metrics, "models": models, "optimizers": optim,
               "regularizers": regularizers, "utils": utils}
for _name, _mod in _SUBMODULES.items():
    sys.modules[f"{__name__}.{_name}"] = _mod
sys.modules[f"{__name__}.optimizers.schedules"] = optim.schedules

__all__ = ["Sequential", "Model", "Input", "datasets", *_SUBMODULES]


def __getattr__(name):
    if name == "datasets":  # created by the data-set work; imported on first use
        mod = importlib.import_module("pynn.datasets")
        sys.modules[f"{__name__}.datasets"] = mod
        return mod
    raise AttributeError(f"module 'pynn.keras' has no attribute {name!r}")
