"""Recurrent layers (Keras names, arguments and weight layouts): SimpleRNN, LSTM, GRU, and the
wrappers Bidirectional and TimeDistributed.

Sequences are batch-first (B, T, C). A recurrent layer computes the input projection of all
steps as one GEMM, xproj = x @ kernel + bias (B*T, G*H), runs the recurrence over the whole
sequence in one kernel call (ops.lstm_forward, ...), and in backward gets dxproj from one BPTT
kernel call, then dkernel, dbias and dx from one more GEMM pass (ops.dense_backward). The LSTM
hands its bias to the recurrent kernel instead (added and differentiated in its fused pass),
so its input projection is two plain GEMMs backward (ops.gemm) and no sweep for the bias.
Weights: kernel (C, G*H), recurrent_kernel (H, G*H), bias (G*H,) (GRU with reset_after:
(2, 3H), the input bias then the recurrent one); gate order LSTM i, f, c, o; GRU z, r, h.

Inputs: `forward(x)` or, with initial states, `forward([x, h0])` (LSTM: `[x, h0, c0]`);
backward then returns [dx, dh0(, dc0)]. `return_state=True` makes forward return
[output, h_T(, c_T)] and backward take a list of gradients (None entries are zero).
`stateful=True` starts each batch from the previous batch's final state (no gradient flows
into it); `reset_states()` sets it back to zeros.
"""
import numpy as np

from .. import _checks, initializers, regularizers
from .base import Layer, MaskCounter

__all__ = ["SimpleRNN", "LSTM", "GRU", "Bidirectional", "TimeDistributed"]


def _x_shape(input_shape):
    """The sequence's shape from a layer's input shape: a model passes several inputs (x and
    initial states) as a sequence of shapes."""
    if len(input_shape) and isinstance(input_shape[0], (list, tuple)):
        return tuple(input_shape[0])
    return tuple(input_shape)


def _positive_units(cls, units):
    if isinstance(units, bool) or not isinstance(units, (int, np.integer)) or units <= 0:
        raise ValueError(f"{cls} needs a positive integer number of units. "
                         f"Received: units={units!r}")
    return int(units)


def _act_name(value, what, allowed):
    name = value if isinstance(value, str) else getattr(value, "name", None)
    if name not in allowed:
        raise ValueError(f"{what}={value!r} is not supported by the fused recurrent kernels; "
                         f"use one of {allowed}")
    return name


class _RNN(MaskCounter, Layer):
    """Shared machinery of SimpleRNN, LSTM and GRU (one kernel call per direction).

    dropout: in training, a fraction of the input features is dropped with one mask per
    (sample, feature) for all steps (Keras' `dropout`), drawn like the Dropout layer's from
    (seed, step); recurrent_dropout is not supported (the recurrence is one fused kernel)."""

    # masked steps are skipped (forward's mask=); the mask goes on with the sequence
    supports_masking = True
    _takes_mask = True

    _gates = 1
    _nstates = 1

    def __init__(self, units, use_bias=True, kernel_initializer="glorot_uniform",
                 recurrent_initializer="orthogonal", bias_initializer="zeros",
                 kernel_regularizer=None, recurrent_regularizer=None, bias_regularizer=None,
                 return_sequences=False, return_state=False, go_backwards=False,
                 stateful=False, dropout=0.0, recurrent_dropout=0.0, seed=None, **kwargs):
        self.units = _positive_units(type(self).__name__, units)
        super().__init__(**kwargs)
        # dropout on the inputs, one mask per (sample, feature) for every step (Keras' RNN
        # `dropout`), counter-based as the Dropout layer: a function of (seed, step, element)
        self.dropout = _checks.finite_scalar(dropout, "dropout", 0.0, 1.0, high_open=True)
        if recurrent_dropout != 0:
            raise ValueError(f"{type(self).__name__}: recurrent_dropout is not supported (the "
                             f"recurrent step runs inside one fused kernel), received "
                             f"recurrent_dropout={recurrent_dropout!r}; use dropout (on the "
                             f"inputs) or 0")
        self._init_masks(seed)
        self.use_bias = bool(use_bias)
        self.kernel_initializer = initializers.get(kernel_initializer)
        self.recurrent_initializer = initializers.get(recurrent_initializer)
        self.bias_initializer = initializers.get(bias_initializer)
        self.kernel_regularizer = regularizers.get(kernel_regularizer)
        self.recurrent_regularizer = regularizers.get(recurrent_regularizer)
        self.bias_regularizer = regularizers.get(bias_regularizer)
        self.return_sequences = bool(return_sequences)
        self.return_state = bool(return_state)
        self.go_backwards = bool(go_backwards)
        self.stateful = bool(stateful)
        self._states = None

    # -- weights and shapes ------------------------------------------------------------
    def _bias_shape(self):
        return (self._gates * self.units,)

    def build(self, input_shape):
        shape = _x_shape(input_shape)
        if len(shape) != 3 or shape[-1] is None:
            raise ValueError(f"{type(self).__name__} {self.name!r} needs input of shape "
                             f"(batch, timesteps, features) with known features, received "
                             f"{shape}")
        c, gh = shape[-1], self._gates * self.units
        self.add_weight("kernel", (c, gh), self.kernel_initializer, self.kernel_regularizer)
        self.add_weight("recurrent_kernel", (self.units, gh), self.recurrent_initializer,
                        self.recurrent_regularizer)
        if self.use_bias:
            self.add_weight("bias", self._bias_shape(), self.bias_initializer,
                            self.bias_regularizer)
        if self.dropout:
            self._draw_mask_seed()

    def compute_output_shape(self, input_shape):
        shape = _x_shape(input_shape)
        b, t = shape[0], shape[1]
        out = (b, t, self.units) if self.return_sequences else (b, self.units)
        if self.return_state:
            return [out] + [(b, self.units)] * self._nstates
        return out

    def reset_states(self):
        """Forget the carried state of a stateful layer (the next batch starts from zeros)."""
        self._states = None

    def _check_input(self, x):
        self._check_x(x)

    def _check_x(self, x):
        if not isinstance(x, np.ndarray) or x.ndim != 3:
            raise ValueError(f"{type(self).__name__} {self.name!r} expects input of shape "
                             f"(batch, timesteps, features), received "
                             f"{getattr(x, 'shape', type(x).__name__)}")
        c = self.params["kernel"].shape[0]
        if x.shape[1] == 0:
            raise ValueError(f"{type(self).__name__} {self.name!r} needs at least one "
                             f"timestep, received input of shape {x.shape}")
        if x.shape[2] != c:
            raise ValueError(f"{type(self).__name__} {self.name!r} was built for {c} features, "
                             f"received input of shape {x.shape}")

    # -- running -----------------------------------------------------------------------
    def _initial_states(self, given, b):
        h = self.units
        if given:
            if len(given) != self._nstates:
                raise ValueError(f"{type(self).__name__} {self.name!r} takes {self._nstates} "
                                 f"initial state(s), received {len(given)}")
            out = []
            for s in given:
                if not isinstance(s, np.ndarray) or s.shape != (b, h):
                    raise ValueError(f"initial state of {self.name!r} must have shape "
                                     f"({b}, {h}), received {getattr(s, 'shape', s)}")
                out.append(s.astype(self.dtype, copy=False))
            return out
        if self.stateful and self._states is not None:
            if self._states[0].shape[0] != b:
                raise ValueError(f"stateful layer {self.name!r} carries a state for batch "
                                 f"size {self._states[0].shape[0]}, received batch size {b}; "
                                 f"call reset_states() first")
            return self._states
        z = self._buffer("zeros_state", (b, h))
        z[...] = 0
        return [z] * self._nstates

    def compute_mask(self, inputs, mask):
        return mask if self.return_sequences else None

    def _output_masked(self, input_masked):
        return input_masked and self.return_sequences

    def _step_mask(self, mask, b, t):
        """The (B, T) step mask as the kernels take it (reversed with go_backwards), or None
        when every step is real."""
        if mask is None:
            return None
        m = _checks.step_mask(mask, b, t)
        if m.all():
            return None
        return m[:, ::-1] if self.go_backwards else m

    def forward(self, inputs, training=False, mask=None):
        """mask (B, T), optional (Keras' padding mask, e.g. from Embedding(mask_zero=True)):
        steps where it is False are skipped (the state carries over, the output there is 0
        with return_sequences, the final state is the last real step's)."""
        given = None
        if isinstance(inputs, (list, tuple)):
            inputs, given = inputs[0], list(inputs[1:])
        x = inputs
        self._check_x(x)
        b, t, c = x.shape
        steps = self._step_mask(mask, b, t)
        if self.go_backwards:
            x = x[:, ::-1]  # the recurrence runs t = T-1 .. 0
        mask = None
        if training and self.dropout:
            mask = self.ops.dropout_mask((b, c), self.dropout, self._seed, self._next_mask(),
                                         self.dtype)                  # (B,C): 0 or 1/(1-rate)
            x = np.multiply(x, mask[:, None, :], out=self._buffer("x_dropped", (b, t, c)))
        gh = self._gates * self.units
        x2 = x.reshape(b * t, c)  # (B*T, C), a copy only for the reversed view
        w, bias = self.params["kernel"], self._input_bias()
        xproj = self.ops.dense_forward(x2, w, bias, "linear",
                                       out=self._buffer("xproj", (b * t, gh)))
        states = self._initial_states(given, b)
        seq, final = self._run(xproj.reshape(b, t, gh), states, steps)
        if self.stateful:
            self._states = [s.copy() for s in final]
        self._cache = (x2, states, given is not None, (b, t, c), mask, steps)
        out = seq if self.return_sequences else seq[:, -1]
        if steps is not None and self.return_sequences:  # 0 at skipped steps (as Keras)
            out = np.multiply(seq, steps[:, :, None], out=self._buffer("y_masked", seq.shape))
        if self.return_state:
            return [out] + list(final)
        return out

    def backward(self, dy):
        x2, states, has_given, (b, t, c), mask, steps = self._cache
        h = self.units
        dfinal = [None] * self._nstates
        if self.return_state:
            if not isinstance(dy, (list, tuple)) or len(dy) != 1 + self._nstates:
                raise ValueError(f"{type(self).__name__} {self.name!r} returns its output and "
                                 f"{self._nstates} state(s): dy must be a list of "
                                 f"{1 + self._nstates} gradients (None for an unused output)")
            dy, dfinal = dy[0], list(dy[1:])
        want = (b, t, h) if self.return_sequences else (b, h)
        if dy is not None and np.shape(dy) != want:
            raise ValueError(f"{type(self).__name__} {self.name!r}: dy must have shape "
                             f"{want}, received {np.shape(dy)}")
        dlast = dfinal[0]
        if steps is not None and self.return_sequences and dy is not None:
            # the output is 0 at skipped steps: nothing flows back from there
            dy = np.multiply(dy, steps[:, :, None], out=self._buffer("dseq", (b, t, h)))
        if (self.return_sequences and isinstance(dy, np.ndarray) and dy.dtype == self.dtype
                and dy.shape == (b, t, h) and dy.flags.c_contiguous):
            dseq = dy  # read only by the kernel: no copy
        elif self.return_sequences:
            dseq = self._buffer("dseq", (b, t, h))
            if dy is None:
                dseq[...] = 0
            else:
                dseq[...] = dy
        else:
            dseq = self._buffer("dseq", (b, t, h))
            dseq[...] = 0
            if dy is not None:
                dlast = dy if dlast is None else dy + dlast
        dxproj, dstates = self._run_backward(states, dseq, [dlast] + dfinal[1:], steps)
        gh = self._gates * h
        db = self._input_bias_grad()
        need_dx = self._need_dx or has_given
        dz, w = dxproj.reshape(b * t, gh), self.params["kernel"]
        dx2 = self._buffer("dx2", (b * t, c)) if need_dx else None
        if db is not None:
            self.ops.dense_backward(x2, w, None, dz, "linear", need_dx=need_dx, dx=dx2,
                                    dw=self.grads["kernel"], db=db)
        else:  # no input-bias gradient here (LSTM: lstm_backward gave it; else no bias)
            self.ops.gemm(x2, dz, trans_a=True, out=self.grads["kernel"])  # (C, G*H)
            if need_dx:
                self.ops.gemm(dz, w, trans_b=True, out=dx2)  # (B*T, C)
        dx = None
        if need_dx:
            dx = dx2.reshape(b, t, c)
            if mask is not None:
                np.multiply(dx, mask[:, None, :], out=dx)  # the forward's mask, every step
            if self.go_backwards:
                dxr = self._buffer("dx", (b, t, c))
                dxr[...] = dx[:, ::-1]
                dx = dxr
        if has_given:
            return [dx] + list(dstates)
        return dx

    def _input_bias(self):
        return self.params.get("bias")

    def _input_bias_grad(self):
        return self.grads["bias"] if self.use_bias else None

    def get_config(self):
        return {**super().get_config(), "units": self.units, "use_bias": self.use_bias,
                "kernel_initializer": initializers.serialize(self.kernel_initializer),
                "recurrent_initializer": initializers.serialize(self.recurrent_initializer),
                "bias_initializer": initializers.serialize(self.bias_initializer),
                "kernel_regularizer": regularizers.serialize(self.kernel_regularizer),
                "recurrent_regularizer": regularizers.serialize(self.recurrent_regularizer),
                "bias_regularizer": regularizers.serialize(self.bias_regularizer),
                "return_sequences": self.return_sequences, "return_state": self.return_state,
                "go_backwards": self.go_backwards, "stateful": self.stateful,
                "dropout": self.dropout, "recurrent_dropout": 0.0, **self._mask_config()}


class SimpleRNN(_RNN):
    """Fully connected recurrence h_t = activation(x_t @ kernel + h_{t-1} @ recurrent_kernel
    + bias), activation 'tanh' (default) or 'relu'."""

    def __init__(self, units, activation="tanh", **kwargs):
        super().__init__(units, **kwargs)
        self.activation = _act_name(activation, "activation", ("tanh", "relu"))

    def _run(self, xproj, states, steps):
        b, t, _ = xproj.shape
        seq = self.ops.simple_rnn_forward(xproj, states[0], self.params["recurrent_kernel"],
                                          self.activation,
                                          out=self._buffer("h", (b, t, self.units)),
                                          mask=steps)
        self._seq = seq
        return seq, [seq[:, -1]]

    def _run_backward(self, states, dseq, dfinal, steps):
        b, t, h = dseq.shape
        dxproj, dh0, _ = self.ops.simple_rnn_backward(
            states[0], self.params["recurrent_kernel"], self._seq, dseq, dfinal[0],
            self.activation, dxproj=self._buffer("dxproj", (b, t, h)),
            dh0=self._buffer("dh0", (b, h)), dw_rec=self.grads["recurrent_kernel"], mask=steps)
        return dxproj, [dh0]

    def get_config(self):
        return {**super().get_config(), "activation": self.activation}


class LSTM(_RNN):
    """Long short-term memory (Hochreiter 1997), Keras gate order i, f, c, o; activation
    tanh and recurrent_activation sigmoid (fused in the kernel). unit_forget_bias=True starts
    the forget-gate bias at 1."""

    _gates = 4
    _nstates = 2

    def __init__(self, units, activation="tanh", recurrent_activation="sigmoid",
                 unit_forget_bias=True, **kwargs):
        super().__init__(units, **kwargs)
        self.activation = _act_name(activation, "activation", ("tanh",))
        self.recurrent_activation = _act_name(recurrent_activation, "recurrent_activation",
                                              ("sigmoid",))
        self.unit_forget_bias = bool(unit_forget_bias)

    def build(self, input_shape):
        super().build(input_shape)
        if self.use_bias and self.unit_forget_bias:
            self.params["bias"][self.units:2 * self.units] = 1.0

    # the bias is added inside the recurrent kernel (its fused pass) and its gradient comes
    # from there: the input projection is a plain GEMM both ways, no sweep over (B*T, 4H)
    def _input_bias(self):
        return None

    def _input_bias_grad(self):
        return None

    def _run(self, xproj, states, steps):
        b, t, _ = xproj.shape
        h = self.units
        seq, c, gates = self.ops.lstm_forward(
            xproj, states[0], states[1], self.params["recurrent_kernel"],
            self.params.get("bias"), out_h=self._buffer("h", (b, t, h)),
            out_c=self._buffer("c", (b, t, h)), out_gates=self._buffer("gates", (b, t, 4 * h)),
            mask=steps)
        self._fwd = (seq, c, gates)
        return seq, [seq[:, -1], c[:, -1]]

    def _run_backward(self, states, dseq, dfinal, steps):
        b, t, h = dseq.shape
        db = self.grads["bias"] if self.use_bias else self._buffer("db", (4 * h,))
        dxproj, dh0, dc0, _, _ = self.ops.lstm_backward(
            states[0], states[1], self.params["recurrent_kernel"], *self._fwd, dseq,
            dfinal[0], dfinal[1], dxproj=self._buffer("dxproj", (b, t, 4 * h)),
            dh0=self._buffer("dh0", (b, h)), dc0=self._buffer("dc0", (b, h)),
            dw_rec=self.grads["recurrent_kernel"], db=db, mask=steps)
        return dxproj, [dh0, dc0]

    def get_config(self):
        return {**super().get_config(), "activation": self.activation,
                "recurrent_activation": self.recurrent_activation,
                "unit_forget_bias": self.unit_forget_bias}


class GRU(_RNN):
    """Gated recurrent unit (Cho 2014), Keras reset_after=True (the only variant): gate order
    z, r, h; the recurrent projection has its own bias (row 1 of bias (2, 3H)) and r gates it.
    activation tanh and recurrent_activation sigmoid (fused in the kernel)."""

    _gates = 3

    def __init__(self, units, activation="tanh", recurrent_activation="sigmoid",
                 reset_after=True, **kwargs):
        super().__init__(units, **kwargs)
        self.activation = _act_name(activation, "activation", ("tanh",))
        self.recurrent_activation = _act_name(recurrent_activation, "recurrent_activation",
                                              ("sigmoid",))
        if not reset_after:
            raise ValueError("GRU supports reset_after=True only (the Keras default)")
        self.reset_after = True

    def _bias_shape(self):
        return (2, 3 * self.units)

    def _input_bias(self):
        return self.params["bias"][0] if self.use_bias else None

    def _input_bias_grad(self):
        return self.grads["bias"][0] if self.use_bias else None

    def _run(self, xproj, states, steps):
        b, t, _ = xproj.shape
        h = self.units
        b_rec = self.params["bias"][1] if self.use_bias else None
        seq, gates = self.ops.gru_forward(xproj, states[0], self.params["recurrent_kernel"],
                                          b_rec, out_h=self._buffer("h", (b, t, h)),
                                          out_gates=self._buffer("gates", (b, t, 4 * h)),
                                          mask=steps)
        self._fwd = (seq, gates)
        return seq, [seq[:, -1]]

    def _run_backward(self, states, dseq, dfinal, steps):
        b, t, h = dseq.shape
        db_rec = self.grads["bias"][1] if self.use_bias else self._buffer("db_rec", (3 * h,))
        dxproj, dh0, _, _ = self.ops.gru_backward(
            states[0], self.params["recurrent_kernel"], *self._fwd, dseq, dfinal[0],
            dxproj=self._buffer("dxproj", (b, t, 3 * h)), dh0=self._buffer("dh0", (b, h)),
            dw_rec=self.grads["recurrent_kernel"], db_rec=db_rec, mask=steps)
        return dxproj, [dh0]

    def get_config(self):
        return {**super().get_config(), "activation": self.activation,
                "recurrent_activation": self.recurrent_activation, "reset_after": True}


# -- wrappers ---------------------------------------------------------------------------------
class _Wrapper(Layer):
    """A layer holding sub-layers whose weights it owns under prefixed names, so that a model
    can view them into its flat buffers; the sub-layers are pointed at those views per call."""

    def _adopt(self, layer, prefix, input_shape):
        layer._build_for(input_shape, self.ops, self.dtype)
        for k in list(layer.params):
            self.params[prefix + k] = layer.params[k]
            self.grads[prefix + k] = layer.grads[k]
            self._weight_info[prefix + k] = layer._weight_info[k]
        return layer.output_shape

    def _sync(self, layer, prefix):
        for k in layer.params:
            layer.params[k] = self.params[prefix + k]
            layer.grads[k] = self.grads[prefix + k]
        layer.ops = self.ops
        layer.trainable = self.trainable


def _deserialize(cfg):
    from . import deserialize  # the registry lives in the package (imports this module)
    return deserialize(cfg)


def _serialize(layer):
    from . import serialize
    return serialize(layer)


_MERGE_MODES = ("concat", "sum", "mul", "ave", None)


class Bidirectional(_Wrapper):
    """Runs a recurrent layer forwards and a copy of it backwards over the sequence and merges
    the two outputs: merge_mode 'concat' (default), 'sum', 'mul', 'ave', or None (a list of
    both). The backward copy's output sequence is flipped back, so step t of both lines up.
    Weights: forward_* and backward_* (kernel, recurrent_kernel, bias).

    As in Keras, a layer with return_state=True makes the output a list: the merged output
    (merge_mode None: both outputs), then the forward layer's final states, then the backward
    copy's (LSTM: [y, h_fwd, c_fwd, h_bwd, c_bwd]); initial states are given the same way,
    forward([x, h0_fwd, c0_fwd, h0_bwd, c0_bwd]), and backward then returns
    [dx, dh0_fwd, dc0_fwd, dh0_bwd, dc0_bwd]."""

    supports_masking = True   # both directions skip the masked steps
    _takes_mask = True

    def __init__(self, layer, merge_mode="concat", backward_layer=None, **kwargs):
        if isinstance(layer, dict):
            layer = _deserialize(layer)
        if not isinstance(layer, _RNN):
            raise ValueError(f"Bidirectional wraps a SimpleRNN, LSTM or GRU layer, received "
                             f"{layer!r}")
        if merge_mode not in _MERGE_MODES:
            raise ValueError(f"unknown merge_mode {merge_mode!r}: expected one of "
                             f"{_MERGE_MODES}")
        kwargs.setdefault("name", "bidirectional_" + layer.name)
        super().__init__(**kwargs)
        self.merge_mode = merge_mode
        self.forward_layer = layer
        self._given = False  # the last forward had initial states
        self._y_shape = None  # the merged output's shape in the last forward
        if backward_layer is None:
            cfg = layer.get_config()
            cfg.update(name="backward_" + layer.name, go_backwards=not layer.go_backwards)
            cfg.pop("input_shape", None)
            if cfg.get("seed") is not None:  # input dropout: other masks than the forward's
                cfg["seed"] = (cfg["seed"] + 1) % 2**63
            backward_layer = type(layer).from_config(cfg)
        elif isinstance(backward_layer, dict):
            backward_layer = _deserialize(backward_layer)
        if not isinstance(backward_layer, _RNN):
            raise ValueError(f"Bidirectional's backward_layer must be a SimpleRNN, LSTM or "
                             f"GRU layer, received {backward_layer!r}")
        for attr in ("return_sequences", "return_state"):
            if getattr(backward_layer, attr) != getattr(layer, attr):
                raise ValueError(f"Bidirectional: the forward and backward layers must have "
                                 f"the same {attr}, received {getattr(layer, attr)} and "
                                 f"{getattr(backward_layer, attr)}")
        if layer.return_state and backward_layer._nstates != layer._nstates:
            raise ValueError(f"Bidirectional with return_state: the forward and backward "
                             f"layers must carry the same number of states, received "
                             f"{type(layer).__name__} ({layer._nstates}) and "
                             f"{type(backward_layer).__name__} ({backward_layer._nstates})")
        if backward_layer.go_backwards == layer.go_backwards:
            raise ValueError("Bidirectional: the backward layer must run the other way "
                             "(go_backwards differing from the forward layer's)")
        self.backward_layer = backward_layer
        if self.input_shape_arg is None and layer.input_shape_arg is not None:
            self.input_shape_arg = layer.input_shape_arg

    def _wrapped_layers(self):
        return [self.forward_layer, self.backward_layer]

    def build(self, input_shape):
        shape = _x_shape(input_shape)
        self._adopt(self.forward_layer, "forward_", shape)
        self._adopt(self.backward_layer, "backward_", shape)

    def compute_output_shape(self, input_shape):
        shape = _x_shape(input_shape)
        f = self.forward_layer.compute_output_shape(shape)
        b = self.backward_layer.compute_output_shape(shape)
        states = []
        if self.forward_layer.return_state:
            (f, *sf), (b, *sb) = f, b
            states = sf + sb
        if self.merge_mode is None:
            out = [f, b]
        elif self.merge_mode == "concat":
            out = [tuple(f[:-1]) + (2 * f[-1],)]
        else:
            out = [f]
        return out + states if states or self.merge_mode is None else out[0]

    def _nstates(self):
        return self.forward_layer._nstates

    def reset_states(self):
        self.forward_layer.reset_states()
        self.backward_layer.reset_states()

    def compute_mask(self, inputs, mask):
        return mask if self.forward_layer.return_sequences else None

    def _output_masked(self, input_masked):
        return input_masked and self.forward_layer.return_sequences

    def _outputs_masked(self, input_masked, n):
        # merge_mode=None: both directions' sequences carry the mask, then the states
        seqs = 2 if self.merge_mode is None else 1
        return [self._output_masked(input_masked)] * seqs + [False] * (n - seqs)

    def forward(self, inputs, training=False, mask=None):
        fl, bl = self.forward_layer, self.backward_layer
        self._sync(fl, "forward_")
        self._sync(bl, "backward_")
        n = self._nstates()
        fin = bin_ = inputs
        given = isinstance(inputs, (list, tuple))
        if given:
            if len(inputs) != 1 + 2 * n:
                raise ValueError(f"Bidirectional {self.name!r} takes [x] and {n} initial "
                                 f"state(s) for each direction ({1 + 2 * n} arrays: x, the "
                                 f"forward layer's states, then the backward copy's), received "
                                 f"{len(inputs)}")
            if bl._nstates != n:
                raise ValueError(f"Bidirectional {self.name!r}: initial states need forward "
                                 f"and backward layers that carry the same number of states")
            fin, bin_ = [inputs[0], *inputs[1:1 + n]], [inputs[0], *inputs[1 + n:]]
        yf = fl.forward(fin, training, mask=mask)
        yb = bl.forward(bin_, training, mask=mask)
        self._given = given  # after both forwards ran: a refused call leaves the last one's
        states = []
        if fl.return_state:
            (yf, *sf), (yb, *sb) = yf, yb
            states = sf + sb
        if fl.return_sequences:
            yb = yb[:, ::-1]  # the backward line's step t back at position t
        if self.merge_mode is None:
            self._y_shape = None
            return [yf, yb] + states
        self._y_shape = yf.shape[:-1] + ((2 * yf.shape[-1],) if self.merge_mode == "concat"
                                         else yf.shape[-1:])
        if self.merge_mode == "concat":
            y = self._buffer("y", yf.shape[:-1] + (2 * yf.shape[-1],))
            h = yf.shape[-1]
            y[..., :h], y[..., h:] = yf, yb
        else:
            y = self._buffer("y", yf.shape)
            if self.merge_mode == "sum":
                np.add(yf, yb, out=y)
            elif self.merge_mode == "mul":
                np.multiply(yf, yb, out=y)
                self._merge_cache = (yf.copy(), yb.copy())
            else:
                np.add(yf, yb, out=y)
                y *= 0.5
        return [y] + states if states else y

    def backward(self, dy):
        fl, bl = self.forward_layer, self.backward_layer
        # the grads a model's backward(accumulate=True / params=False) swapped in since the
        # forward synced the wrapped layers
        self._sync(fl, "forward_")
        self._sync(bl, "backward_")
        n = self._nstates()
        dsf = dsb = None
        if fl.return_state or self.merge_mode is None:
            nout = 2 if self.merge_mode is None else 1
            want = nout + (2 * n if fl.return_state else 0)
            if not isinstance(dy, (list, tuple)) or len(dy) != want:
                raise ValueError(f"Bidirectional {self.name!r}: dy must be a list of {want} "
                                 f"gradients (None for an unused output), one per output")
            dy = list(dy)
            if fl.return_state:
                dsf, dsb = dy[nout:nout + n], dy[nout + n:]
            dy = dy[:2] if self.merge_mode is None else dy[0]
        if self.merge_mode is None:
            dyf, dyb = dy
        elif dy is None:
            dyf = dyb = None
        elif np.shape(dy) != self._y_shape:  # before the split names the inner layer's shape
            raise ValueError(f"Bidirectional {self.name!r}: dy must have shape "
                             f"{self._y_shape}, received {np.shape(dy)}")
        elif self.merge_mode == "concat":
            h = dy.shape[-1] // 2
            dyf, dyb = dy[..., :h], dy[..., h:]
        elif self.merge_mode == "sum":
            dyf = dyb = dy
        elif self.merge_mode == "mul":
            yf, yb = self._merge_cache
            dyf, dyb = dy * yb, dy * yf
        else:
            dyf = dyb = 0.5 * dy
        if fl.return_sequences and dyb is not None:
            dyb = dyb[:, ::-1]
        if fl.return_state:
            dyf, dyb = [dyf] + dsf, [dyb] + dsb
        fl._need_dx = bl._need_dx = self._need_dx
        # copies: the backward line may reuse the buffers of the forward line's results
        outf = fl.backward(dyf)
        outf = [None if a is None else a.copy() for a in outf] if self._given else \
            (None if outf is None else outf.copy())
        outb = bl.backward(dyb)
        if self._given:
            dx = outf[0] + outb[0]
            return [dx] + outf[1:] + list(outb[1:])
        if outf is None:
            return None
        outf += outb
        return outf

    def get_config(self):
        cfg = {**super().get_config(), "layer": _serialize(self.forward_layer),
               "merge_mode": self.merge_mode,
               "backward_layer": _serialize(self.backward_layer)}
        return cfg


class TimeDistributed(_Wrapper):
    """Applies a layer to every time step: (B, T, ...) runs as (B*T, ...) through the wrapped
    layer and is reshaped back. The weights are the wrapped layer's (shared over time)."""

    supports_masking = True   # the mask passes through

    def __init__(self, layer, **kwargs):
        if isinstance(layer, dict):
            layer = _deserialize(layer)
        if not isinstance(layer, Layer):
            raise ValueError(f"TimeDistributed wraps a layer, received {layer!r}")
        kwargs.setdefault("name", "time_distributed_" + layer.name)
        super().__init__(**kwargs)
        self.layer = layer

    def _wrapped_layers(self):
        return [self.layer]

    def build(self, input_shape):
        if len(input_shape) < 3:
            raise ValueError(f"TimeDistributed {self.name!r} needs input of shape (batch, "
                             f"timesteps, ...), received {input_shape}")
        self._adopt(self.layer, "", (None,) + tuple(input_shape[2:]))

    def compute_output_shape(self, input_shape):
        inner = self.layer.compute_output_shape((None,) + tuple(input_shape[2:]))
        if isinstance(inner, list):
            raise ValueError("TimeDistributed needs a layer with a single output")
        return (input_shape[0], input_shape[1]) + tuple(inner[1:])

    def _check_input(self, x):
        if x.ndim < 3:
            raise ValueError(f"TimeDistributed {self.name!r} needs input of shape (batch, "
                             f"timesteps, ...), received {x.shape}")

    def forward(self, x, training=False):
        self._check_input(x)
        self._sync(self.layer, "")
        b, t = x.shape[:2]
        y = self.layer.forward(x.reshape((b * t,) + x.shape[2:]), training)
        self._bt = (b, t)
        return y.reshape((b, t) + y.shape[1:])

    def backward(self, dy):
        b, t = self._bt
        self._sync(self.layer, "")  # the grads a model's backward may have swapped in
        self.layer._need_dx = self._need_dx
        dx = self.layer.backward(dy.reshape((b * t,) + dy.shape[2:]))
        return None if dx is None else dx.reshape((b, t) + dx.shape[1:])

    def get_config(self):
        return {**super().get_config(), "layer": _serialize(self.layer)}
