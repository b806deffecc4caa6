"""Name -> object resolution shared by activations, losses, metrics, optimizers, layers.

A closed registry: only names registered here resolve; an unknown name raises ValueError
listing the valid ones (nothing is imported or evaluated from a string). The user's own
classes join a registry only for one load (load_model(custom_objects=...)): UserClasses.
"""
import contextlib
import contextvars


def lookup(registry, identifier, kind):
    key = identifier
    if key not in registry:
        raise ValueError(f"unknown {kind} {identifier!r}; valid names: "
                         f"{', '.join(sorted(registry))}")
    return registry[key]


def check_config(identifier, kind):
    """A dict given where a `kind` is expected must be a config {'class_name', 'config'} (as
    serialize() writes it); anything else (e.g. Keras' per-output dict) is a ValueError."""
    if not isinstance(identifier.get("class_name"), str):
        article = "an" if kind[0] in "aeiou" else "a"
        raise ValueError(f"{article} {kind} given as a dict must be a config "
                         f"{{'class_name': ..., 'config': {{...}}}} as serialize() returns "
                         f"it, received {identifier!r}" + _one_hint(identifier, kind))


def _one_hint(identifier, kind):
    if not isinstance(identifier, (dict, list, tuple)):
        return ""
    if kind == "loss":
        return ("; a pynn model trains one output, so compile takes one loss (a name, a Loss "
                "object or a config dict), not a per-output list or dict")
    if kind == "metric":
        return ("; metrics is a flat list of names, Metric objects or config dicts, not "
                "per-output lists or dicts")
    return ""


def unknown(identifier, kind, names, base=None, extra=()):
    """The ValueError for an identifier that is no known name, object or config: it lists
    the valid names and says what to pass instead of a class, a function or a list."""
    hint = _one_hint(identifier, kind)
    if base is not None and isinstance(identifier, type) and issubclass(identifier, base):
        hint = f"; pass an instance, {identifier.__name__}(...), not the class"
    elif kind == "loss" and callable(identifier) and not isinstance(identifier, type):
        hint = ("; pynn has no automatic differentiation, so a plain function cannot be a "
                "loss: write a pynn.losses.Loss subclass (value and gradient)")
    elif kind == "metric" and callable(identifier) and not isinstance(identifier, type):
        hint = "; pynn takes no plain-function metrics: write a pynn.metrics.Metric subclass"
    return ValueError(f"unknown {kind} {identifier!r}; valid names: "
                      f"{', '.join(list(extra) + sorted(names))}{hint}")


class UserClasses:
    """The user's own subclasses of `base` that deserialization knows while a model loads
    (load_model(custom_objects=...)): held in a context variable for that block only, so a
    load elsewhere (another thread, a later call) does not see them."""

    def __init__(self, kind, base):
        self.kind, self.base = kind, base
        self._var = contextvars.ContextVar(f"pynn_custom_{kind}", default={})

    @contextlib.contextmanager
    def scope(self, objects):
        """Within the block, resolve() also knows these {class name: subclass of base}."""
        objects = dict(objects or {})
        for name, cls in objects.items():
            if not (isinstance(cls, type) and issubclass(cls, self.base)):
                raise TypeError(f"custom_objects maps class names to pynn "
                                f"{self.base.__name__} subclasses; {name!r} maps to {cls!r}")
        token = self._var.set({**self._var.get(), **objects})
        try:
            yield
        finally:
            self._var.reset(token)

    def resolve(self, name, registry):
        """The class named `name`: the user's (in a scope) first, then pynn's `registry`."""
        custom = self._var.get()
        if isinstance(name, str) and name in custom:
            return custom[name]
        if isinstance(name, str) and name in registry:
            return registry[name]
        raise ValueError(f"unknown {self.kind} class {name!r}: for a {self.base.__name__} "
                         f"subclass of your own, pass load_model(path, custom_objects="
                         f"{{{name!r}: {name}}}); pynn's {self.kind} classes: "
                         f"{', '.join(sorted(registry))}")
