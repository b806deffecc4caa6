"""pynn: a small CPU deep-learning library.

Hot kernels are C with OpenMP (csrc/, wrapped by Cython in pynn._ext); every kernel has a
pure-NumPy twin in pynn.reference, and pynn.ops switches between the two.
"""
from . import _config
from ._config import (set_num_threads, get_num_threads, num_threads, set_arch, get_arch, arch,
                      show_config)

_config._init()

from . import reference, ops  # noqa: E402
from . import (activations, initializers, regularizers, losses, metrics, optim,  # noqa: E402
               layers, callbacks, utils, models)
from .model import Model, Sequential  # noqa: E402
from . import functional  # noqa: E402
from .compare import compare  # noqa: E402
from . import keras  # noqa: E402

optimizers = optim
Input = layers.Input
import sys as _sys  # noqa: E402
_sys.modules[__name__ + ".optimizers"] = optim  # `import pynn.optimizers`, the Keras name

__version__ = "0.1.0"
__all__ = ["ops", "reference", "set_num_threads", "get_num_threads", "num_threads", "set_arch",
           "get_arch", "arch", "show_config", "Sequential", "Model", "Input", "layers",
           "optimizers", "optim", "losses", "metrics", "callbacks", "models", "datasets",
           "utils", "keras", "compare", "activations", "initializers", "regularizers", "plot", "io"]


def __getattr__(name):
    # data sets, plots (matplotlib) and file I/O are imported on first use,
    # so `import pynn` stays fast
    if name in ("datasets", "plot", "io"):
        import importlib
        return importlib.import_module("pynn." + name)
    raise AttributeError(f"module 'pynn' has no attribute {name!r}")
