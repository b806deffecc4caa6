"""The functional API: symbolic tensors, nodes and the graph model (Keras `Functional`).

    x = pynn.Input(shape=(784,))
    h = layers.Dense(64, activation="relu")(x)
    y = layers.Add()([h, layers.Dense(64)(h)])
    model = pynn.Model(inputs=x, outputs=layers.Dense(10, activation="softmax")(y))

Calling a layer (or a built model) on symbolic tensors builds the layer for their shapes and
records a Node: the op, its positional input tensors (one -> the array, several or a list ->
a list at run time), constant keyword arguments (kept in the config, JSON-able) and tensor
keyword arguments (passed by name at run time, no gradient). A graph model runs its nodes in
topological order; backward walks them in reverse, summing the gradients of a tensor that
feeds several nodes (fan-out) and of a layer called several times (shared weights: a layer's
backward WRITES its gradients, so later calls write into scratch that is then added).

A layer called several times keeps one output buffer set and one backward cache per call:
the graph swaps them in around each call (`_bufs` and the attributes forward sets).

Parameters live in the same flat buffer machinery as Sequential (pynn.model.Model). A built
model used as a layer (a GAN's discriminator inside the combined model) keeps working on its
own: its flat buffers become a contiguous slice of the outer model's.
"""
import numpy as np

from .layers.base import Layer
from .layers.core import InputLayer

__all__ = ["KerasTensor", "Input", "Node", "Functional", "is_symbolic"]


class KerasTensor:
    """A symbolic tensor: a shape (batch axis first, None), a dtype and the node making it."""

    def __init__(self, shape, dtype=None, node=None, index=0):
        self.shape = tuple(shape)
        self.dtype = None if dtype is None else np.dtype(dtype)
        self.node = node
        self.index = index
        self.masked = False   # carries a padding mask (from an Embedding(mask_zero=True))

    @property
    def ndim(self):
        return len(self.shape)

    @property
    def name(self):
        op = self.node.op
        return op.name if self.index == 0 else f"{op.name}:{self.index}"

    def __repr__(self):
        return f"<KerasTensor shape={self.shape} name={self.name!r}>"

    def __array__(self, *args, **kwargs):
        raise TypeError(f"{self!r} is symbolic: it has no values. Build a model with "
                        f"pynn.Model(inputs, outputs) and call model.predict(x)")


class Node:
    """One call of an op (a Layer or a built model) on symbolic tensors."""

    def __init__(self, op, inputs, list_input, const_kwargs, tensor_kwargs, out_shapes,
                 multi_out, dtype):
        self.op = op
        self.inputs = list(inputs)
        self.list_input = list_input
        self.const_kwargs = dict(const_kwargs)
        self.tensor_kwargs = dict(tensor_kwargs)
        self.multi_out = multi_out
        shapes = out_shapes if multi_out else [out_shapes]
        self.outputs = [KerasTensor(s, dtype, self, i) for i, s in enumerate(shapes)]
        self.bufs = {}       # this call's output buffers (for a layer called several times)
        self.state = None    # the layer's attributes after this call's forward

    def parents(self):
        return [t.node for t in self.inputs] + [t.node for t in self.tensor_kwargs.values()]


def _is_tensor(x):
    return isinstance(x, KerasTensor)


def is_symbolic(x, args=(), kwargs=None):
    """True if a call gets symbolic tensors (then it records a node instead of running)."""
    items = [x, *args]
    if isinstance(x, (list, tuple)):
        items = [*x, *args]
    if any(_is_tensor(i) for i in items):
        return True
    return any(_is_tensor(v) for v in (kwargs or {}).values())


def Input(shape=None, batch_size=None, name=None, dtype=None, batch_shape=None):
    """keras.Input: a symbolic tensor of per-sample `shape` (also the first entry of a
    Sequential list, where it declares the input shape)."""
    layer = InputLayer(shape=shape, batch_size=batch_size, name=name, dtype=dtype,
                       batch_shape=batch_shape)
    return input_tensor(layer)


def input_tensor(layer):
    node = Node(layer, [], False, {}, {}, (None,) + layer.input_shape_arg, False, layer.dtype)
    layer.input_shape = layer.output_shape = (None,) + layer.input_shape_arg
    layer.built = True
    return node.outputs[0]


def call(op, x, args, kwargs, training=None):
    """Record `op(x, *args, **kwargs)` on symbolic tensors; returns the output tensor(s)."""
    if isinstance(x, (list, tuple)):
        if args:
            raise ValueError(f"{op.name}: pass several inputs either as one list or as "
                             f"separate arguments, not both")
        inputs, list_input = list(x), True
    elif args:
        inputs, list_input = [x, *args], True
    else:
        inputs, list_input = [x], False
    for t in inputs:
        if not _is_tensor(t):
            raise TypeError(f"layer {op.name!r} was called on a mix of symbolic tensors and "
                            f"{type(t).__name__}; every positional input must come from "
                            f"pynn.Input or a layer call")
    const, tensors = {}, {}
    for k, v in kwargs.items():
        (tensors if _is_tensor(v) else const)[k] = v
    if training is not None:
        const["training"] = bool(training)
    dtype = next((t.dtype for t in inputs if t.dtype is not None), None)
    shapes = [t.shape for t in inputs]
    shape = shapes if list_input else shapes[0]
    if isinstance(op, Layer):
        if isinstance(op, InputLayer):
            raise TypeError("an InputLayer cannot be called; use pynn.Input(shape) instead")
        try:
            if op.built:
                if op.input_shape is not None and not _same_shape(op.input_shape, shape):
                    raise ValueError(f"it was built for input shape {op.input_shape}")
                out = op.compute_output_shape(shape)
            else:
                out = op._build_for(shape, None, op.dtype or dtype)
        except (ValueError, TypeError) as e:
            raise type(e)(f"calling layer {op.name!r} on input shape {shape}: {e}") from None
    else:  # a model used as a layer
        if list_input and len(inputs) != len(op._input_list()):
            raise ValueError(f"model {op.name!r} takes {len(op._input_list())} inputs, "
                             f"received {len(inputs)}")
        if not op.built:
            op.build(shape)
        if not _same_shape(op.input_shape, shape):
            raise ValueError(f"model {op.name!r} expects input shape {op.input_shape}, "
                             f"received {shape}")
        out = op.output_shape
        dtype = op.dtype
    multi = isinstance(out, list)
    masked = any(t.masked for t in list(inputs) + list(tensors.values()))
    if masked and not (isinstance(op, Layer) and op.supports_masking):
        from .model import _mask_refused
        raise _mask_refused(op)
    node = Node(op, inputs, list_input, const, tensors, out, multi, dtype)
    if isinstance(op, Layer):   # the mask goes with the sequence output(s), not states
        for t, flag in zip(node.outputs, op._outputs_masked(masked, len(node.outputs))):
            t.masked = flag
    else:                       # a nested model whose output carries a mask made inside it
        node.outputs[0].masked = op._output_masked
    return node.outputs if multi else node.outputs[0]


def _same_shape(a, b):
    """Shapes (or lists of shapes) equal apart from the batch axis. One shape against a
    list compares the first entries: a layer called with and without extra inputs (an RNN
    with and without initial states) checks the rest itself."""
    def multi(s):
        return isinstance(s, list) or bool(s and isinstance(s[0], (tuple, list)))
    if multi(a) and multi(b):
        return len(a) == len(b) and all(_same_shape(p, q) for p, q in zip(a, b))
    if multi(a) or multi(b):
        return _same_shape(a[0] if multi(a) else a, b[0] if multi(b) else b)
    return len(a) == len(b) and tuple(a[1:]) == tuple(b[1:])


def _flat(x, what):
    items = list(x) if isinstance(x, (list, tuple)) else [x]
    for t in items:
        if not _is_tensor(t):
            raise TypeError(f"Model {what} must be symbolic tensors (from pynn.Input and layer "
                            f"calls), received {type(t).__name__}")
    if not items:
        raise ValueError(f"Model needs at least one tensor in {what}")
    return items, isinstance(x, (list, tuple))


def _topological(inputs, outputs):
    """Nodes needed for `outputs`, parents first; checks the graph is connected."""
    order, state = [], {}
    for t in inputs:
        if not isinstance(t.node.op, InputLayer):
            raise ValueError(f"Model inputs must come from pynn.Input, received {t!r} (an "
                             f"output of layer {t.node.op.name!r})")
    input_nodes = {id(t.node) for t in inputs}
    for out in outputs:
        stack = [(out.node, False)]
        while stack:
            node, done = stack.pop()
            if done:
                if state.get(id(node)) != 2:
                    state[id(node)] = 2
                    order.append(node)
                continue
            if state.get(id(node)) == 2:
                continue
            state[id(node)] = 1
            if isinstance(node.op, InputLayer):
                if id(node) not in input_nodes:
                    raise ValueError(f"graph disconnected: the outputs depend on input "
                                     f"{node.op.name!r} (shape {node.outputs[0].shape}), which "
                                     f"is not in the model's inputs")
                state[id(node)] = 2
                order.append(node)
                continue
            stack.append((node, True))
            for p in reversed(node.parents()):
                if state.get(id(p)) != 2:
                    stack.append((p, False))
    for t in inputs:
        if state.get(id(t.node)) != 2:
            raise ValueError(f"input {t.node.op.name!r} is not connected to any output; remove "
                             f"it from inputs or use it")
    return order


# the Functional model class lives in pynn.model (it shares Model's machinery); this module
# re-exports it for `from pynn.functional import Functional`
def __getattr__(name):
    if name == "Functional":
        from .model import Functional
        return Functional
    raise AttributeError(name)
