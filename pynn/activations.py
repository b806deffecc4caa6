"""Activation functions by Keras name: objects that run the backend's kernels.

Each activation knows its forward and backward kernel (docs/kernels.md) and whether the
dense kernel can fuse it (linear, relu, sigmoid, tanh: the derivative follows from the
output). Backward kernels take the forward input x, except softmax and log_softmax,
which take the forward output y. `pynn.activations.relu(x)` runs on the active backend.
"""
from . import ops as _ops
from ._registry import lookup

__all__ = ["get", "serialize", "deserialize", "ActivationFunction", "linear", "relu", "sigmoid",
           "tanh", "softmax", "log_softmax", "leaky_relu", "elu", "gelu", "softplus", "silu",
           "swish"]

DENSE_FUSED = ("linear", "relu", "sigmoid", "tanh")


# the options each kernel takes (an activation object built with them, e.g.
# ActivationFunction("gelu", approximate=True), saves them in its config)
_OPTIONS = {"leaky_relu": ("alpha",), "elu": ("alpha",), "gelu": ("approximate",)}


class ActivationFunction:
    """One named activation: forward/backward through a backend namespace.

    Parameters
    ----------
    name : str
        Keras name (also the kernel prefix: `<kernel>_forward` / `<kernel>_backward`).
    uses_output : bool
        Backward takes the forward output y instead of the input x (softmax family).
    **kwargs
        The kernel's options: alpha (leaky_relu, elu), approximate (gelu: the tanh form).
        Others are refused; a saved model keeps them (serialize).
    """

    def __init__(self, name, kernel=None, uses_output=False, **kwargs):
        self.name = name
        self.kernel = kernel or name
        allowed = _OPTIONS.get(self.kernel, ())
        bad = sorted(set(kwargs) - set(allowed))
        if bad:  # refused here, not at the first call or when a saved model is loaded
            raise ValueError(f"activation {name!r} takes no option "
                             f"{', '.join(map(repr, bad))} (its options: "
                             f"{', '.join(allowed) or 'none'})")
        self.uses_output = uses_output
        self.kwargs = kwargs
        self.fusable = name in DENSE_FUSED

    def forward(self, ops, x, out=None):
        # y = act(x), same shape
        if self.name == "linear":
            if out is None:
                return x
            out[...] = x
            return out
        return getattr(ops, self.kernel + "_forward")(x, out=out, **self.kwargs)

    def backward(self, ops, x, y, dy, out=None):
        # dx = dy * act'(x) (softmax family: the Jacobian-vector product from y)
        if self.name == "linear":
            return dy
        src = y if self.uses_output else x
        return getattr(ops, self.kernel + "_backward")(src, dy, out=out, **self.kwargs)

    def __call__(self, x):
        return self.forward(_ops.get_backend(), x)

    def __repr__(self):
        return f"<activation {self.name}>"


linear = ActivationFunction("linear")
relu = ActivationFunction("relu")
sigmoid = ActivationFunction("sigmoid")
tanh = ActivationFunction("tanh")
softmax = ActivationFunction("softmax", uses_output=True)
log_softmax = ActivationFunction("log_softmax", uses_output=True)
leaky_relu = ActivationFunction("leaky_relu")
elu = ActivationFunction("elu")
gelu = ActivationFunction("gelu")
softplus = ActivationFunction("softplus")
silu = ActivationFunction("silu")
swish = ActivationFunction("swish", kernel="silu")

_REGISTRY = {a.name: a for a in (linear, relu, sigmoid, tanh, softmax, log_softmax, leaky_relu,
                                 elu, gelu, softplus, silu, swish)}


def _from_config(d):
    """{"class_name": name, "config": {option: value}} (serialize's form with options)."""
    if set(d) != {"class_name", "config"} or not isinstance(d["config"], dict):
        raise ValueError(f"an activation config is {{'class_name': name, 'config': {{...}}}}, "
                         f"received {d!r}")
    base = lookup(_REGISTRY, d["class_name"], "activation")
    return ActivationFunction(base.name, kernel=base.kernel, uses_output=base.uses_output,
                              **d["config"])


def get(identifier):
    """Resolve None, a Keras name, a config dict (serialize's form for an activation with
    options) or a pynn activation object to an ActivationFunction."""
    if identifier is None:
        return linear
    if isinstance(identifier, ActivationFunction):
        return identifier
    if isinstance(identifier, str):
        return lookup(_REGISTRY, identifier, "activation")
    if isinstance(identifier, dict):
        return _from_config(identifier)
    if callable(identifier):
        raise ValueError(f"activation {identifier!r} is not a pynn activation: pass a name "
                         f"({', '.join(sorted(_REGISTRY))}) or a pynn.activations object; "
                         f"pynn needs a backward kernel for every activation")
    raise TypeError(f"activation must be a string or a pynn activation, received {identifier!r}")


def serialize(activation):
    """The Keras name; with options (ActivationFunction("gelu", approximate=True)) the dict
    {"class_name": name, "config": options}, so a saved model keeps them."""
    a = get(activation)
    return {"class_name": a.name, "config": dict(a.kwargs)} if a.kwargs else a.name


def deserialize(name):
    return get(name)
