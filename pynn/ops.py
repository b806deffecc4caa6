"""The one switch between the C kernels (pynn._ext) and the NumPy reference (pynn.reference).

`pynn.ops.<kernel>(...)` runs the active backend ('c' by default); `pynn.reference.<kernel>`
always runs the NumPy twin. Both have the same names, arguments and `out=` semantics.

    pynn.ops.set_backend('reference')      # global switch
    with pynn.ops.use_backend('reference'): ...
    ns = pynn.ops.get_backend('c')          # a namespace of the C kernels, for one model

Layers call kernels through a backend namespace, never pynn._ext directly.
"""
import contextlib
import importlib
import types

from . import _config
from . import reference as _reference

BACKENDS = ("c", "reference")
__all__ = list(_reference.__all__) + ["set_backend", "get_backend", "use_backend",
                                      "backend_name", "BACKENDS"]
_namespaces = {}


def _missing(name, family, err):
    def f(*args, **kwargs):
        raise ImportError(f"the C kernel {name!r} is unavailable: pynn._ext._{family} could not "
                          f"be imported ({err}). Build pynn with `pip install -e .`, or use "
                          f"pynn.ops.set_backend('reference').")
    f.__name__ = name
    return f


def _c_namespace():
    ns = types.SimpleNamespace(name="c")
    for family in _reference.FAMILIES:
        # by module path: a family may share its name with its kernel (gemm)
        fam_ref = importlib.import_module(f"{_reference.__name__}.{family}")
        try:
            mod = importlib.import_module(f"pynn._ext._{family}")
            err = None
        except ImportError as e:
            mod, err = None, e
        for name in fam_ref.__all__:
            fn = getattr(mod, name, None) if mod is not None else None
            if fn is None:
                fn = _missing(name, family, err or f"it has no function {name!r}")
            setattr(ns, name, fn)
    return ns


def get_backend(name=None):
    """Namespace of kernel functions for backend `name` ('c' or 'reference'; None: active)."""
    name = name or _config._state["backend"]
    if name not in BACKENDS:
        raise ValueError(f"unknown backend {name!r}: expected one of {BACKENDS}")
    if name not in _namespaces:
        if name == "c":
            _namespaces[name] = _c_namespace()
        else:
            ns = types.SimpleNamespace(name="reference")
            for n in _reference.__all__:
                setattr(ns, n, getattr(_reference, n))
            _namespaces[name] = ns
    return _namespaces[name]


def backend_name():
    return _config._state["backend"]


def set_backend(name):
    """Make `name` ('c' or 'reference') the backend of pynn.ops and of models built after."""
    ns = get_backend(name)
    _config._state["backend"] = name
    g = globals()
    for n in _reference.__all__:
        g[n] = getattr(ns, n)


@contextlib.contextmanager
def use_backend(name):
    old = backend_name()
    set_backend(name)
    try:
        yield get_backend(name)
    finally:
        set_backend(old)


set_backend("c")
