"""MultiHeadAttention (Keras names, arguments and weight layouts) and TransformerBlock.

MultiHeadAttention projects query (B, T, Cq), value (B, S, Cv) and key (B, S, Ck; the value
when absent) with kernels (C, heads, key_dim) and biases (heads, key_dim), attends per head
(pynn.ops.attention_forward on strided head views of the (B, T, heads, key_dim)
projections: no transposed copies) and projects the merged heads back with the output
kernel (heads, value_dim, C_out) and bias (C_out,). A single array input is self-attention.

TransformerBlock is a pre-norm block: x + MHA(LN(x)), then + Dense(C)(Dense(ff_dim,
activation)(LN(.))). Single array in and out, so it sits in a Sequential; its weights are
its sublayers', named '<sublayer>_<weight>' (e.g. 'attention_query_kernel').
"""
import math

import numpy as np

from .. import activations, initializers, _checks
from .base import Layer, MaskCounter, is_inference_only
from .core import Dense, Dropout
from .layernorm import LayerNormalization

# TransformerBlock: the second residual dropout's seed is the block's plus this (mod 2**63)
_SEED_STRIDE = 0x9E3779B97F4A7C15

__all__ = ["MultiHeadAttention", "TransformerBlock"]


def _positive_int(value, what, cls):
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise ValueError(f"{cls} needs a positive integer {what}. Received: {what}={value!r}")
    return value


class MultiHeadAttention(MaskCounter, Layer):
    """Multi-head scaled dot-product attention (Keras MultiHeadAttention).

    Parameters
    ----------
    num_heads : int
    key_dim : int
        Size of each head for query and key.
    value_dim : int, optional
        Size of each head for value (default key_dim).
    dropout : float
        Dropout on the attention probabilities in training (in the attention kernel, the
        Dropout layer's counter-based mask of (seed, step): reproducible for any thread count).
    seed : int, optional
        Seed of those masks (default: drawn from pynn's generator when built).
    use_bias : bool
    output_shape : int, optional
        Last dimension of the output (default: the query's).
    kernel_initializer, bias_initializer : str or Initializer

    Call: ``forward(query)`` (self-attention), ``forward([query, value])`` or
    ``forward([query, value, key])``, with ``attention_mask`` (B, T, S) boolean (True = may
    attend) and ``use_causal_mask``. Backward returns dx for a single input, else the list
    [d_query, d_value(, d_key)].

    Empty sequences are defined, as in Keras and torch: T = 0 queries give a (B, 0, C_out)
    output and zero weight gradients; S = 0 keys leave each query nothing to attend to, so
    the attention output is 0 and y is the output bias.
    """

    def __init__(self, num_heads, key_dim, value_dim=None, dropout=0.0, use_bias=True,
                 output_shape=None, kernel_initializer="glorot_uniform",
                 bias_initializer="zeros", seed=None, **kwargs):
        _positive_int(num_heads, "num_heads", "MultiHeadAttention")
        _positive_int(key_dim, "key_dim", "MultiHeadAttention")
        if value_dim is not None:
            _positive_int(value_dim, "value_dim", "MultiHeadAttention")
        if isinstance(output_shape, (list, tuple)) and len(output_shape) == 1:
            output_shape = output_shape[0]
        if output_shape is not None:
            _positive_int(output_shape, "output_shape", "MultiHeadAttention")
        dropout = _checks.finite_scalar(dropout, "dropout", 0.0, 1.0, high_open=True)
        super().__init__(**kwargs)
        self._init_masks(seed)
        self.num_heads, self.key_dim = num_heads, key_dim
        self.value_dim = value_dim or key_dim
        self.dropout = dropout
        self.use_bias = bool(use_bias)
        self.output_shape_arg = output_shape
        self.kernel_initializer = initializers.get(kernel_initializer)
        self.bias_initializer = initializers.get(bias_initializer)

    # -- shapes ------------------------------------------------------------------------
    @staticmethod
    def _split_shapes(input_shape):
        if len(input_shape) and isinstance(input_shape[0], (list, tuple)):
            shapes = [tuple(s) for s in input_shape]
        else:
            shapes = [tuple(input_shape)]
        if not 1 <= len(shapes) <= 3 or any(len(s) != 3 for s in shapes):
            raise ValueError(f"MultiHeadAttention takes query (B, T, C), or [query, value] or "
                             f"[query, value, key], each 3-D; received {input_shape}")
        q = shapes[0]
        v = shapes[1] if len(shapes) > 1 else q
        k = shapes[2] if len(shapes) > 2 else v
        return q, v, k

    def build(self, input_shape):
        if self.dropout:
            self._draw_mask_seed()
        q, v, k = self._split_shapes(input_shape)
        if None in (q[-1], v[-1], k[-1]):
            raise ValueError(f"MultiHeadAttention needs known feature sizes, received "
                             f"{input_shape}")
        H, kd, vd = self.num_heads, self.key_dim, self.value_dim
        out_dim = self.output_shape_arg or q[-1]
        ki, bi = self.kernel_initializer, self.bias_initializer
        self.add_weight("query_kernel", (q[-1], H, kd), ki)
        if self.use_bias:
            self.add_weight("query_bias", (H, kd), bi)
        self.add_weight("key_kernel", (k[-1], H, kd), ki)
        if self.use_bias:
            self.add_weight("key_bias", (H, kd), bi)
        self.add_weight("value_kernel", (v[-1], H, vd), ki)
        if self.use_bias:
            self.add_weight("value_bias", (H, vd), bi)
        self.add_weight("output_kernel", (H, vd, out_dim), ki)
        if self.use_bias:
            self.add_weight("output_bias", (out_dim,), bi)

    def compute_output_shape(self, input_shape):
        q, _, _ = self._split_shapes(input_shape)
        return (q[0], q[1], self.output_shape_arg or q[-1])

    def _check_input(self, x):
        pass  # forward checks query/value/key (one layer serves self- and cross-attention)

    # -- running -----------------------------------------------------------------------
    def _project(self, name, x2, width):
        w = self.params[name + "_kernel"]
        b = self.params.get(name + "_bias")
        return self.ops.dense_forward(x2, w.reshape(w.shape[0], width),
                                      None if b is None else b.reshape(width), "linear",
                                      out=self._buffer(name, (x2.shape[0], width)))

    def _project_qkv(self, x2):
        H, kd, vd = self.num_heads, self.key_dim, self.value_dim
        C = x2.shape[1]
        widths = (H * kd, H * kd, H * vd)
        W = self._buffer("wqkv", (C, sum(widths)))
        bias = self._buffer("bqkv", (sum(widths),)) if self.use_bias else None
        a = 0
        for name, w in zip(("query", "key", "value"), widths):
            W[:, a:a + w] = self.params[name + "_kernel"].reshape(C, w)
            if bias is not None:
                bias[a:a + w] = self.params[name + "_bias"].reshape(w)
            a += w
        QKV = self.ops.dense_forward(x2, W, bias, "linear",
                                     out=self._buffer("qkv", (x2.shape[0], sum(widths))))
        return QKV[:, :widths[0]], QKV[:, widths[0]:2 * widths[0]], QKV[:, 2 * widths[0]:]

    def _qkv_grads(self, x2, dQKV, need, qs, multi, n_in):
        """Weight gradients and dx of the fused self-attention projection."""
        C, Wt = x2.shape[1], dQKV.shape[1]
        dW = self._buffer("dwqkv", (C, Wt))
        db = self._buffer("dbqkv", (Wt,))
        dx, _, _ = self.ops.dense_backward(x2, self._buffer("wqkv", (C, Wt)), None, dQKV,
                                           "linear", need_dx=need,
                                           dx=self._buffer("dq_in", x2.shape) if need else None,
                                           dw=dW, db=db)
        H, kd = self.num_heads, self.key_dim
        a = 0
        for name, w in zip(("query", "key", "value"), (H * kd, H * kd, H * self.value_dim)):
            self.grads[name + "_kernel"].reshape(C, w)[...] = dW[:, a:a + w]
            if self.use_bias:
                self.grads[name + "_bias"].reshape(w)[...] = db[a:a + w]
            a += w
        if not need:
            return [None] * n_in if multi else None
        return dx.reshape(qs) if not multi else [dx.reshape(qs)]

    def forward(self, inputs, training=False, attention_mask=None, use_causal_mask=False,
                residual=None):
        # residual (B, T, out_dim), internal (TransformerBlock's skip connection): added to
        # the output in the output projection's bias pass
        multi = isinstance(inputs, (list, tuple))
        xs = list(inputs) if multi else [inputs]
        if not 1 <= len(xs) <= 3:
            raise ValueError(f"MultiHeadAttention takes 1 to 3 inputs, received {len(xs)}")
        q_in = xs[0]
        v_in = xs[1] if len(xs) > 1 else q_in
        k_in = xs[2] if len(xs) > 2 else v_in
        for name, a in (("query", q_in), ("value", v_in), ("key", k_in)):
            if a.ndim != 3:
                raise ValueError(f"MultiHeadAttention {name} must be (B, T, C), received "
                                 f"shape {a.shape}")
        B, T, _ = q_in.shape
        S = v_in.shape[1]
        for name, a in (("query", q_in), ("value", v_in), ("key", k_in)):
            c = self.params[name + "_kernel"].shape[0]
            if a.shape[-1] != c:   # the projection's kernel-level message spoke of w and x
                raise ValueError(f"MultiHeadAttention {self.name!r} was built for {name} "
                                 f"inputs of {c} features, received shape {a.shape}")
        if v_in.shape[0] != B or k_in.shape[:2] != (B, S):
            raise ValueError(f"MultiHeadAttention query {q_in.shape}, value {v_in.shape} and "
                             f"key {k_in.shape} must share B, and key and value S")
        H, kd, vd = self.num_heads, self.key_dim, self.value_dim
        q2, v2, k2 = (a.reshape(-1, a.shape[-1]) for a in (q_in, v_in, k_in))
        fused = q_in is v_in and k_in is v_in
        if fused:
            # self-attention: one GEMM x (B*T, C) @ [Wq | Wk | Wv] (C, 2*H*kd + H*vd); the
            # heads below are strided views of its column blocks
            Q, K, V = self._project_qkv(q2)
        else:
            # projections (B*T, H*kd) etc. by one GEMM each; heads are strided views
            Q = self._project("query", q2, H * kd)
            K = self._project("key", k2, H * kd)
            V = self._project("value", v2, H * vd)
        Qh = Q.reshape(B, T, H, kd).transpose(0, 2, 1, 3)              # (B,H,T,kd) view
        Kh = K.reshape(B, S, H, kd).transpose(0, 2, 1, 3)              # (B,H,S,kd) view
        Vh = V.reshape(B, S, H, vd).transpose(0, 2, 1, 3)              # (B,H,S,vd) view
        att = self._buffer("att", (B, T, H, vd))                       # merged heads
        scale = 1.0 / math.sqrt(kd)
        causal = bool(use_causal_mask)
        drop = {}
        if training and self.dropout:  # mask number _step of (seed, step) on probs
            drop = dict(dropout=self.dropout, seed=self._seed, step=self._next_mask())
        _, probs = self.ops.attention_forward(Qh, Kh, Vh, causal, attention_mask, scale,
                                              out=att.transpose(0, 2, 1, 3),
                                              probs=self._buffer("probs", (B, H, T, S)),
                                              **drop)
        wo = self.params["output_kernel"]
        out_dim = wo.shape[-1]
        bo = self.params.get("output_bias")
        y = self.ops.dense_forward(att.reshape(B * T, H * vd), wo.reshape(H * vd, out_dim), bo,
                                   "linear", out=self._buffer("y", (B * T, out_dim)),
                                   residual=None if residual is None
                                   else residual.reshape(B * T, out_dim))
        self._cache = (multi, len(xs), q2, k2, v2, Qh, Kh, Vh, att, probs, causal, scale,
                       q_in.shape, k_in.shape, v_in.shape, q_in is v_in, k_in is v_in, fused,
                       drop)
        self.last_attention_scores = probs  # before dropout
        return y.reshape(B, T, out_dim)

    def _weight_grads(self, name, x2, dz, width, need_dx, dx, accumulate):
        """dw = x^T dz, db = column sums of dz; dx (=|+=) dz w^T."""
        w = self.params[name + "_kernel"]
        C = w.shape[0]
        dw = self.grads[name + "_kernel"].reshape(C, width)
        db = (self.grads[name + "_bias"].reshape(width) if self.use_bias
              else self._buffer("db_" + name, (width,)))
        self.ops.dense_backward(x2, w.reshape(C, width), None, dz, "linear", need_dx=False,
                                dw=dw, db=db)
        if need_dx:
            self.ops.gemm(dz, w.reshape(C, width), trans_b=True,
                          beta=1.0 if accumulate else 0.0, out=dx)

    def backward(self, dy):
        (multi, n_in, q2, k2, v2, Qh, Kh, Vh, att, probs, causal, scale, qs, ks, vs,
         q_is_v, k_is_v, fused, drop) = self._cache
        B, T, H, vd = att.shape
        S, kd = Kh.shape[2], self.key_dim
        wo = self.params["output_kernel"]
        out_dim = wo.shape[-1]
        dy = np.asarray(dy)
        if dy.shape != (B, T, out_dim):   # numpy's "cannot reshape array of size .." said less
            raise ValueError(f"MultiHeadAttention {self.name!r}: dy must have the output's "
                             f"shape {(B, T, out_dim)}, received {dy.shape}")
        dy2 = dy.reshape(B * T, out_dim)
        db = self.grads["output_bias"] if self.use_bias else self._buffer("db_o", (out_dim,))
        datt, _, _ = self.ops.dense_backward(
            att.reshape(B * T, H * vd), wo.reshape(H * vd, out_dim), None, dy2, "linear",
            need_dx=True, dx=self._buffer("datt", (B * T, H * vd)),
            dw=self.grads["output_kernel"].reshape(H * vd, out_dim), db=db)
        if fused:
            dQKV = self._buffer("dqkv", (B * T, 2 * H * kd + H * vd))
            dQ = dQKV[:, :H * kd].reshape(B, T, H, kd)
            dK = dQKV[:, H * kd:2 * H * kd].reshape(B, S, H, kd)
            dV = dQKV[:, 2 * H * kd:].reshape(B, S, H, vd)
        else:
            dQ = self._buffer("dQ", (B, T, H, kd))
            dK = self._buffer("dK", (B, S, H, kd))
            dV = self._buffer("dV", (B, S, H, vd))
        self.ops.attention_backward(Qh, Kh, Vh, probs, datt.reshape(B, T, H, vd).transpose(0, 2, 1, 3),
                                    causal, scale, dq=dQ.transpose(0, 2, 1, 3),
                                    dk=dK.transpose(0, 2, 1, 3), dv=dV.transpose(0, 2, 1, 3),
                                    **drop)
        need = self._need_dx
        if fused:
            return self._qkv_grads(q2, dQKV, need, qs, multi, n_in)
        dq_in = self._buffer("dq_in", q2.shape) if need else None
        self._weight_grads("query", q2, dQ.reshape(B * T, H * kd), H * kd, need, dq_in, False)
        # inputs that are the same array share one gradient buffer
        if q_is_v:
            dv_in = dq_in
            self._weight_grads("value", v2, dV.reshape(B * S, H * vd), H * vd, need, dv_in, True)
        else:
            dv_in = self._buffer("dv_in", v2.shape) if need else None
            self._weight_grads("value", v2, dV.reshape(B * S, H * vd), H * vd, need, dv_in, False)
        if k_is_v:
            dk_in = dv_in
            self._weight_grads("key", k2, dK.reshape(B * S, H * kd), H * kd, need, dk_in, True)
        else:
            dk_in = self._buffer("dk_in", k2.shape) if need else None
            self._weight_grads("key", k2, dK.reshape(B * S, H * kd), H * kd, need, dk_in, False)
        if not need:
            return None if not multi else [None] * n_in
        dq_in, dv_in, dk_in = dq_in.reshape(qs), dv_in.reshape(vs), dk_in.reshape(ks)
        if not multi:
            return dq_in
        grads = [dq_in, None if q_is_v else dv_in]
        if n_in == 3:
            grads.append(None if k_is_v else dk_in)
        return grads

    def get_config(self):
        return {**super().get_config(), "num_heads": self.num_heads, "key_dim": self.key_dim,
                "value_dim": self.value_dim, "dropout": self.dropout, "use_bias": self.use_bias,
                "output_shape": self.output_shape_arg,
                "kernel_initializer": initializers.serialize(self.kernel_initializer),
                "bias_initializer": initializers.serialize(self.bias_initializer),
                **self._mask_config()}


class TransformerBlock(MaskCounter, Layer):
    """Pre-norm Transformer block: x + MHA(LN(x)), then + MLP(LN(.)).

    Parameters
    ----------
    num_heads : int
    key_dim : int, optional
        Per-head size (default C // num_heads).
    ff_dim : int, optional
        Hidden width of the MLP (default 4 * C).
    dropout : float
        Residual dropout after the attention and after the MLP (training only).
    causal : bool, default True
        Each position attends only to itself and earlier ones.
    activation : str, default 'gelu'
    epsilon : float, default 1e-5
        Of both layer normalizations.
    seed : int, optional
        Of the two residual dropouts' masks (drawn at build when dropout > 0 if not given);
        saved with the model with the masks' step, so training resumes exactly.

    An empty sequence (T = 0) gives a (B, 0, C) output, a (B, 0, C) dx and zero weight
    gradients (MultiHeadAttention's rule).
    """

    _SUBLAYERS = ("ln1", "attention", "ln2", "ff1", "ff2")

    def __init__(self, num_heads, key_dim=None, ff_dim=None, dropout=0.0, causal=True,
                 activation="gelu", epsilon=1e-5, seed=None, **kwargs):
        _positive_int(num_heads, "num_heads", "TransformerBlock")
        if key_dim is not None:
            _positive_int(key_dim, "key_dim", "TransformerBlock")
        if ff_dim is not None:
            _positive_int(ff_dim, "ff_dim", "TransformerBlock")
        super().__init__(**kwargs)
        self.num_heads, self.key_dim, self.ff_dim = num_heads, key_dim, ff_dim
        self.dropout = _checks.finite_scalar(dropout, "dropout", 0.0, 1.0, high_open=True)
        self.causal = bool(causal)
        self.activation = activations.get(activation)
        self.epsilon = _checks.finite_scalar(epsilon, "epsilon", 0.0, low_open=True)
        self._init_masks(seed)
        self._subs = None

    def build(self, input_shape):
        if len(input_shape) != 3 or input_shape[-1] is None:
            raise ValueError(f"TransformerBlock expects (B, T, C) with a known C, received "
                             f"input shape {input_shape}")
        C = input_shape[-1]
        kd = self.key_dim or max(1, C // self.num_heads)
        ff = self.ff_dim or 4 * C
        subs = {"ln1": LayerNormalization(epsilon=self.epsilon, name=self.name + "_ln1"),
                "attention": MultiHeadAttention(self.num_heads, kd, name=self.name + "_attention"),
                "ln2": LayerNormalization(epsilon=self.epsilon, name=self.name + "_ln2"),
                "ff1": Dense(ff, activation=self.activation, name=self.name + "_ff1"),
                "ff2": Dense(C, name=self.name + "_ff2")}
        if self.dropout > 0:
            # one seed for the block (in its config), one mask stream per dropout from it
            self._draw_mask_seed()
            for i, key in enumerate(("drop1", "drop2")):
                subs[key] = Dropout(self.dropout, seed=(self._seed + i * _SEED_STRIDE) % 2**63,
                                    name=f"{self.name}_{key}")
                subs[key]._step = self._step
        shape = tuple(input_shape)
        for key, layer in subs.items():
            out = layer._build_for(shape, self.ops, self.dtype)
            if key == "ff1":
                shape = out
            elif key == "ff2":
                shape = tuple(input_shape)
        self._subs = subs
        self._map = []
        for key in self._SUBLAYERS:
            layer = subs[key]
            for w in layer.params:
                full = f"{key}_{w}"
                self.params[full] = layer.params[w]
                self.grads[full] = layer.grads[w]
                self._weight_info[full] = layer._weight_info[w]
                self._map.append((layer, w, full))

    def _wrapped_layers(self):
        return list(self._subs.values()) if self._subs else []

    def _sync(self):
        # a model moves weights into its flat buffers by replacing self.params entries:
        # point the sublayers at the current arrays
        for layer, w, full in self._map:
            layer.params[w] = self.params[full]
        self._sync_grads()
        for layer in self._subs.values():
            layer.ops = self.ops

    def _sync_grads(self):
        for layer, w, full in self._map:
            layer.grads[w] = self.grads[full]

    def _ff1_forward(self, h, training):
        # GELU MLP: y = gelu(h @ kernel + bias) and its derivative g, both written by the
        # GEMM's epilogue (dense_forward with grad=) while each tile is in cache, so the
        # backward is dz = dy * g without a second erfc or a pass of its own
        ff1 = self._subs["ff1"]
        act = ff1._act()
        if act.kernel != "gelu":
            self._ff1_cache = None
            return ff1.forward(h, training)
        h2 = h.reshape(-1, h.shape[-1])                                 # (B*T,C)
        n, units = h2.shape[0], ff1.units
        name = "gelu_tanh" if act.kwargs.get("approximate") else "gelu"
        inference = is_inference_only()  # predict/evaluate: no backward, so no gelu'
        g = None if inference else self._buffer("ff1_g", (n, units))
        y = self.ops.dense_forward(h2, ff1.params["kernel"], ff1.params.get("bias"), name,
                                   out=self._buffer("ff1_y", (n, units)), grad=g)  # (B*T,ff)
        self._ff1_cache = False if inference else (h2, g, h.shape)
        return y.reshape(h.shape[:-1] + (units,))

    def _ff2_ff1_backward(self, df):
        # ff2's backward, then ff1's. With the GELU fused into ff1's forward, ff2's dx GEMM
        # multiplies by the saved gelu' in its epilogue: its dx is ff1's dz (no pass of its
        # own over the (B*T, ff) gradient)
        if self._ff1_cache is False:
            raise RuntimeError(f"{self.name}: backward after a forward for inference only "
                               "(predict/evaluate); call the model with training or "
                               "model(x) first")
        if self._ff1_cache is None:      # not a GELU: each Dense on its own
            return self._subs["ff1"].backward(self._subs["ff2"].backward(df))
        ff1 = self._subs["ff1"]
        h2, g, hshape = self._ff1_cache
        dz = self._subs["ff2"].backward(df, dx_mul=g).reshape(g.shape)  # (B*T, ff)
        db = ff1.grads["bias"] if ff1.use_bias else self._buffer("ff1_db", (ff1.units,))
        dx, _, _ = self.ops.dense_backward(h2, ff1.params["kernel"], None, dz, "linear",
                                           need_dx=True, dx=self._buffer("ff1_dx", h2.shape),
                                           dw=ff1.grads["kernel"], db=db)
        return dx.reshape(hshape)

    def forward(self, x, training=False):
        # y = x1 + ff2(ff1(ln2(x1))), x1 = x + attention(ln1(x))
        self._sync()
        s = self._subs
        h = s["ln1"].forward(x, training)
        if "drop1" in s:
            a = s["attention"].forward(h, training, use_causal_mask=self.causal)
            a = s["drop1"].forward(a, training)
            x1 = np.add(x, a, out=self._buffer("x1", x.shape))          # (B,T,C)
        else:  # the residual rides the output projection's bias pass: no pass of its own
            x1 = s["attention"].forward(h, training, use_causal_mask=self.causal, residual=x)
        h = self._ff1_forward(s["ln2"].forward(x1, training), training)
        if "drop2" in s:
            f = s["drop2"].forward(s["ff2"].forward(h, training), training)
            return np.add(x1, f, out=self._buffer("y", x.shape))        # (B,T,C)
        return s["ff2"].forward(h, training, residual=x1)               # (B,T,C)

    def backward(self, dy):
        # a model's backward(accumulate=True / params=False) points self.grads at scratch
        # after the forward synced the sublayers: point them at the current arrays again
        self._sync_grads()
        s = self._subs
        df = s["drop2"].backward(dy) if "drop2" in s else dy
        dh2 = self._ff2_ff1_backward(df)
        # dx1 = dy + ln2'(dh2): the layer norm's dx added onto the skip path's dy in its pass
        dx1 = s["ln2"].backward(dh2, dx=self._buffer("dx1", dy.shape), residual=dy)
        da = s["drop1"].backward(dx1) if "drop1" in s else dx1
        dh = s["attention"].backward(da)
        if not self._need_dx:
            s["ln1"].backward(dh)
            return None
        # dx = dx1 + ln1'(dh), added in place: dx1 is this layer's buffer, already consumed
        return s["ln1"].backward(dh, dx=dx1, accumulate=True)

    def _mask_config(self):
        # the dropouts count their masks themselves (one per training forward, in step)
        if self._subs and "drop1" in self._subs:
            self._step = self._subs["drop1"]._step
        return super()._mask_config()

    def get_config(self):
        return {**super().get_config(), "num_heads": self.num_heads, "key_dim": self.key_dim,
                "ff_dim": self.ff_dim, "dropout": self.dropout, "causal": self.causal,
                "activation": activations.serialize(self.activation), "epsilon": self.epsilon,
                **self._mask_config()}
