"""Merge layers (Keras names): Add, Subtract, Multiply, Average, Maximum, Minimum,
Concatenate. Each takes a list of arrays in `forward` and returns the list of input gradients
from `backward`. Elementwise NumPy into kept buffers: these are memory-bound and cheap.

Inputs of the elementwise merges must have the same shape (no broadcasting); Concatenate's
inputs agree on every axis but `axis`. Maximum/Minimum send the gradient to the first input
holding the extreme value (ties go to the earliest input), as an argmax does.
"""
import numpy as np

from .base import Layer

__all__ = ["Add", "Subtract", "Multiply", "Average", "Maximum", "Minimum", "Concatenate"]


class _Merge(Layer):
    min_inputs, max_inputs = 2, None

    def _check_shapes(self, input_shape):
        if not isinstance(input_shape, (list, tuple)) or not input_shape or \
                not isinstance(input_shape[0], (list, tuple)):
            raise ValueError(f"{type(self).__name__} takes a list of inputs, received a "
                             f"single input of shape {input_shape}")
        n = len(input_shape)
        if n < self.min_inputs or (self.max_inputs is not None and n > self.max_inputs):
            want = (f"exactly {self.min_inputs}" if self.max_inputs == self.min_inputs
                    else f"at least {self.min_inputs}")
            raise ValueError(f"{type(self).__name__} takes {want} inputs, received {n}")
        return [tuple(s) for s in input_shape]

    def build(self, input_shape):
        shapes = self._check_shapes(input_shape)
        if any(s[1:] != shapes[0][1:] for s in shapes):
            raise ValueError(f"{type(self).__name__} needs inputs of the same shape, received "
                             f"{shapes}")

    def compute_output_shape(self, input_shape):
        shapes = self._check_shapes(input_shape)
        return (None,) + shapes[0][1:]

    def _inputs(self, xs):
        if not isinstance(xs, (list, tuple)) or len(xs) < self.min_inputs:
            raise ValueError(f"{type(self).__name__} {self.name!r} takes a list of at least "
                             f"{self.min_inputs} arrays")
        if any(x.shape != xs[0].shape for x in xs):
            raise ValueError(f"{type(self).__name__} {self.name!r} needs inputs of the same "
                             f"shape, received {[x.shape for x in xs]}")
        return list(xs)


class Add(_Merge):
    """out = x0 + x1 + ...; every input gets dy."""

    def forward(self, xs, training=False):
        xs = self._inputs(xs)
        out = self._buffer("y", xs[0].shape)
        np.add(xs[0], xs[1], out=out)                       # (B, ...)
        for x in xs[2:]:
            out += x
        self._n = len(xs)
        return out

    def backward(self, dy):
        return [dy] * self._n if self._need_dx else [None] * self._n


class Subtract(_Merge):
    """out = x0 - x1 (exactly two inputs)."""
    max_inputs = 2

    def forward(self, xs, training=False):
        xs = self._inputs(xs)
        return np.subtract(xs[0], xs[1], out=self._buffer("y", xs[0].shape))

    def backward(self, dy):
        if not self._need_dx:
            return [None, None]
        return [dy, np.negative(dy, out=self._buffer("d1", dy.shape))]


class Multiply(_Merge):
    """out = x0 * x1 * ...; d x_i = dy * prod_{j != i} x_j."""

    def forward(self, xs, training=False):
        xs = self._inputs(xs)
        out = self._buffer("y", xs[0].shape)
        np.multiply(xs[0], xs[1], out=out)
        for x in xs[2:]:
            out *= x
        self._xs = xs
        return out

    def backward(self, dy):
        xs = self._xs
        if not self._need_dx:
            return [None] * len(xs)
        dxs = []
        for i in range(len(xs)):
            d = self._buffer(("d", i), dy.shape)
            np.copyto(d, dy)
            for j, x in enumerate(xs):
                if j != i:
                    d *= x
            dxs.append(d)
        return dxs


class Average(_Merge):
    """out = (x0 + x1 + ...) / n."""

    def forward(self, xs, training=False):
        xs = self._inputs(xs)
        out = self._buffer("y", xs[0].shape)
        np.add(xs[0], xs[1], out=out)
        for x in xs[2:]:
            out += x
        out *= 1.0 / len(xs)
        self._n = len(xs)
        return out

    def backward(self, dy):
        if not self._need_dx:
            return [None] * self._n
        d = np.multiply(dy, 1.0 / self._n, out=self._buffer("d", dy.shape))
        return [d] * self._n


class _Extreme(_Merge):
    _reduce = None

    def forward(self, xs, training=False):
        xs = self._inputs(xs)
        out = self._buffer("y", xs[0].shape)
        which = self._buffer("which", xs[0].shape)            # index of the chosen input
        np.copyto(out, xs[0])
        which[...] = 0
        for i, x in enumerate(xs[1:], 1):
            better = self._better(x, out)                      # strict: ties keep earlier
            np.copyto(out, x, where=better)
            which[better] = i
        self._which, self._n = which, len(xs)
        return out

    def backward(self, dy):
        if not self._need_dx:
            return [None] * self._n
        dxs = []
        for i in range(self._n):
            d = self._buffer(("d", i), dy.shape)
            np.multiply(dy, self._which == i, out=d)
            dxs.append(d)
        return dxs


class Maximum(_Extreme):
    """out = elementwise max; the gradient goes to the (first) largest input."""

    @staticmethod
    def _better(x, cur):
        return x > cur


class Minimum(_Extreme):
    """out = elementwise min; the gradient goes to the (first) smallest input."""

    @staticmethod
    def _better(x, cur):
        return x < cur


class Concatenate(_Merge):
    """Join along `axis` (default -1, the features); the gradient is split back."""

    def __init__(self, axis=-1, **kwargs):
        if isinstance(axis, bool) or not isinstance(axis, int):
            raise TypeError(f"Concatenate axis must be an integer, received {axis!r}")
        super().__init__(**kwargs)
        self.axis = axis

    def _axis(self, ndim):
        a = self.axis + ndim if self.axis < 0 else self.axis
        if not 1 <= a < ndim:
            raise ValueError(f"Concatenate axis={self.axis} is out of range for inputs of "
                             f"rank {ndim} (axis 0 is the batch)")
        return a

    def build(self, input_shape):
        self.compute_output_shape(input_shape)

    def compute_output_shape(self, input_shape):
        shapes = self._check_shapes(input_shape)
        if len({len(s) for s in shapes}) != 1:
            raise ValueError(f"Concatenate needs inputs of the same rank, received {shapes}")
        a = self._axis(len(shapes[0]))
        for s in shapes:
            if s[1:a] + s[a + 1:] != shapes[0][1:a] + shapes[0][a + 1:]:
                raise ValueError(f"Concatenate axis={self.axis} needs inputs equal on every "
                                 f"other axis, received {shapes}")
        total = None if any(s[a] is None for s in shapes) else sum(s[a] for s in shapes)
        return (None,) + shapes[0][1:a] + (total,) + shapes[0][a + 1:]

    def _inputs(self, xs):
        if not isinstance(xs, (list, tuple)) or len(xs) < 2:
            raise ValueError(f"Concatenate {self.name!r} takes a list of at least 2 arrays")
        return list(xs)

    def forward(self, xs, training=False):
        xs = self._inputs(xs)
        a = self._axis(xs[0].ndim)
        shape = list(xs[0].shape)
        shape[a] = sum(x.shape[a] for x in xs)
        try:
            out = np.concatenate(xs, axis=a, out=self._buffer("y", tuple(shape)))
        except ValueError as e:
            raise ValueError(f"Concatenate {self.name!r}: {e}") from None
        self._sizes = [x.shape[a] for x in xs]
        return out

    def backward(self, dy):
        if not self._need_dx:
            return [None] * len(self._sizes)
        a = self._axis(dy.ndim)
        return list(np.split(dy, np.cumsum(self._sizes)[:-1], axis=a))

    def get_config(self):
        return {**super().get_config(), "axis": self.axis}
