"""Embedding and PositionalEmbedding: integer ids (B, T) -> vectors (B, T, D).

Ids arrive in the model's float dtype (float32 holds ids exactly up to 2**24: a larger
vocabulary is refused at build unless the model is float64); the kernels
check that they are whole numbers in [0, input_dim) and raise ValueError otherwise. Neither
layer has an input gradient (ids are not differentiable): backward returns None.
"""
import numpy as np

from .. import initializers, regularizers
from .base import Layer

__all__ = ["Embedding", "PositionalEmbedding"]


def _init(identifier):
    # Keras' 'uniform' is RandomUniform(-0.05, 0.05)
    if identifier == "uniform":
        return initializers.RandomUniform(-0.05, 0.05)
    return initializers.get(identifier)


def _exact_ids(layer):
    """At build: float32 holds every id exactly only up to 2**24; a larger vocabulary would
    look up the wrong rows silently, so it needs a float64 model."""
    if layer.dtype == np.float32 and layer.input_dim - 1 > 2**24:
        raise ValueError(f"{type(layer).__name__} input_dim={layer.input_dim} needs a float64 "
                         f"model: ids travel in the model's float dtype, and float32 holds "
                         f"integers exactly only up to 2**24 (pass dtype='float64')")


def _positive_int(value, what, cls):
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise ValueError(f"{cls} needs a positive integer {what}. Received: {what}={value!r}")
    return value


class Embedding(Layer):
    """Turns ids in [0, input_dim) into dense vectors of size output_dim (Keras Embedding).

    Parameters
    ----------
    input_dim : int
        Vocabulary size V.
    output_dim : int
        Vector size D. The weight 'embeddings' is (V, D).
    embeddings_initializer : str or Initializer, default 'uniform' (U(-0.05, 0.05))
    embeddings_regularizer : str or Regularizer, optional
    mask_zero : bool
        Id 0 is padding: the output carries the mask ids != 0, which the recurrent layers
        (they skip those steps), GlobalAveragePooling1D (it averages the others) and the loss
        and metrics (they leave out those positions) honour, and Dense, Dropout, Activation,
        LayerNormalization and TimeDistributed pass on; a model refuses it reaching any other
        layer. Ids run over [0, input_dim), so the vocabulary needs input_dim = V + 1.
    """

    def __init__(self, input_dim, output_dim, embeddings_initializer="uniform",
                 embeddings_regularizer=None, mask_zero=False, **kwargs):
        _positive_int(input_dim, "input_dim", "Embedding")
        _positive_int(output_dim, "output_dim", "Embedding")
        super().__init__(**kwargs)
        self.input_dim, self.output_dim = input_dim, output_dim
        self.embeddings_initializer = _init(embeddings_initializer)
        self.embeddings_regularizer = regularizers.get(embeddings_regularizer)
        self.mask_zero = bool(mask_zero)

    def compute_mask(self, inputs, mask):
        return np.not_equal(inputs, 0) if self.mask_zero else None

    def _output_masked(self, input_masked):
        return self.mask_zero

    def build(self, input_shape):
        _exact_ids(self)
        self.add_weight("embeddings", (self.input_dim, self.output_dim),
                        self.embeddings_initializer, self.embeddings_regularizer)

    def compute_output_shape(self, input_shape):
        return tuple(input_shape) + (self.output_dim,)

    def forward(self, x, training=False):
        # y (..., D) = embeddings (V, D)[x (...)]
        y = self.ops.embedding_forward(x, self.params["embeddings"],
                                       out=self._buffer("y", x.shape + (self.output_dim,)))
        self._ids = x
        return y

    def backward(self, dy):
        self.ops.embedding_backward(self._ids, dy, self.input_dim, out=self.grads["embeddings"])
        return None

    def get_config(self):
        return {**super().get_config(), "input_dim": self.input_dim,
                "output_dim": self.output_dim,
                "embeddings_initializer": initializers.serialize(self.embeddings_initializer),
                "embeddings_regularizer": regularizers.serialize(self.embeddings_regularizer),
                "mask_zero": self.mask_zero}


class PositionalEmbedding(Layer):
    """Token embedding plus a learned position embedding (GPT-2 style):
    y[b, t] = token_embeddings[x[b, t]] + position_embeddings[t], for inputs (B, T) with
    T <= sequence_length. Weights: 'token_embeddings' (V, D), 'position_embeddings' (L, D).
    """

    def __init__(self, sequence_length, input_dim, output_dim, embeddings_initializer="uniform",
                 **kwargs):
        _positive_int(sequence_length, "sequence_length", "PositionalEmbedding")
        _positive_int(input_dim, "input_dim", "PositionalEmbedding")
        _positive_int(output_dim, "output_dim", "PositionalEmbedding")
        super().__init__(**kwargs)
        self.sequence_length = sequence_length
        self.input_dim, self.output_dim = input_dim, output_dim
        self.embeddings_initializer = _init(embeddings_initializer)

    def build(self, input_shape):
        if len(input_shape) != 2:
            raise ValueError(f"PositionalEmbedding expects ids of shape (B, T), received "
                             f"input shape {input_shape}")
        if input_shape[1] is not None and input_shape[1] > self.sequence_length:
            raise ValueError(f"PositionalEmbedding sequence_length={self.sequence_length} is "
                             f"shorter than the input length {input_shape[1]}")
        _exact_ids(self)
        self.add_weight("token_embeddings", (self.input_dim, self.output_dim),
                        self.embeddings_initializer)
        self.add_weight("position_embeddings", (self.sequence_length, self.output_dim),
                        self.embeddings_initializer)

    def compute_output_shape(self, input_shape):
        return tuple(input_shape) + (self.output_dim,)

    def forward(self, x, training=False):
        # y (B, T, D) = tok (V, D)[x (B, T)] + pos (L, D)[:T]
        if x.ndim != 2 or x.shape[1] > self.sequence_length:
            raise ValueError(f"PositionalEmbedding expects ids (B, T) with T <= "
                             f"{self.sequence_length}, received shape {x.shape}")
        T, D = x.shape[1], self.output_dim
        y = self.ops.embedding_forward(x, self.params["token_embeddings"],
                                       out=self._buffer("y", x.shape + (D,)))
        y += self.params["position_embeddings"][:T]  # (B, T, D)
        self._ids = x
        return y

    def backward(self, dy):
        B, T = self._ids.shape
        D = self.output_dim
        self.ops.embedding_backward(self._ids, dy, self.input_dim,
                                    out=self.grads["token_embeddings"])
        dpos = self.grads["position_embeddings"]
        # dpos (T, D) = sum over b of dy (B, T, D), as a column sum of (B, T*D)
        self.ops.column_sum(dy.reshape(B, T * D), out=dpos[:T].reshape(T * D))
        dpos[T:] = 0
        return None

    def get_config(self):
        return {**super().get_config(), "sequence_length": self.sequence_length,
                "input_dim": self.input_dim, "output_dim": self.output_dim,
                "embeddings_initializer": initializers.serialize(self.embeddings_initializer)}
