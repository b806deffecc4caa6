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
