"""pynn: a small CPU deep-learning library.

Hot kernels are C with OpenMP (csrc/, wrapped by Cython in pynn._ext); every kernel has a
pure-NumPy twin in pynn.reference, and pynn.ops switches between the two.
"""
from . import _config
from ._config import (set_num_threads, get_num_threads, num_threads, set_arch, get_arch, arch,
                      show_config)

_config._init()

from . import reference, ops  # noqa: E402

__version__ = "0.1.0"
__all__ = ["ops", "reference", "set_num_threads", "get_num_threads", "num_threads", "set_arch",
           "get_arch", "arch", "show_config"]
