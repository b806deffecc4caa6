"""Name -> object resolution shared by activations, losses, metrics, optimizers, layers.

A closed registry: only names registered here resolve; an unknown name raises ValueError
listing the valid ones (nothing is imported or evaluated from a string).
"""


def lookup(registry, identifier, kind):
    key = identifier
    if key not in registry:
        raise ValueError(f"unknown {kind} {identifier!r}; valid names: "
                         f"{', '.join(sorted(registry))}")
    return registry[key]
