"""Layers (Keras names) and their closed registry: `deserialize` resolves only the classes
listed here, so a saved architecture can name no other code."""

from .._registry import UserClasses
from .base import Layer
from .core import InputLayer, Input, Dense, Flatten, Dropout, Activation, Reshape
from .conv import Conv2D, DepthwiseConv2D, Conv2DTranspose
from .pooling import (MaxPooling2D, AveragePooling2D, GlobalAveragePooling2D,
                      GlobalMaxPooling2D, MaxPool2D, AvgPool2D, GlobalAvgPool2D, GlobalMaxPool2D)
from .conv1d import (Conv1D, MaxPooling1D, AveragePooling1D, GlobalAveragePooling1D,
                     GlobalMaxPooling1D, MaxPool1D, AvgPool1D, GlobalAvgPool1D, GlobalMaxPool1D)
from .normalization import BatchNormalization
from .reshaping import UpSampling2D, ZeroPadding2D
from .rnn import SimpleRNN, LSTM, GRU, Bidirectional, TimeDistributed
from .embedding import Embedding, PositionalEmbedding
from .layernorm import LayerNormalization
from .attention import MultiHeadAttention, TransformerBlock

__all__ = ["Layer", "InputLayer", "Input", "Dense", "Flatten", "Dropout", "Activation",
           "Reshape", "Conv2D", "DepthwiseConv2D", "Conv2DTranspose", "MaxPooling2D",
           "AveragePooling2D", "GlobalAveragePooling2D", "GlobalMaxPooling2D", "MaxPool2D",
           "AvgPool2D", "GlobalAvgPool2D", "GlobalMaxPool2D", "Conv1D", "MaxPooling1D",
           "AveragePooling1D", "GlobalAveragePooling1D", "GlobalMaxPooling1D", "MaxPool1D",
           "AvgPool1D", "GlobalAvgPool1D", "GlobalMaxPool1D", "BatchNormalization",
           "UpSampling2D", "ZeroPadding2D", "SimpleRNN", "LSTM", "GRU", "Bidirectional",
           "TimeDistributed", "Embedding", "PositionalEmbedding", "LayerNormalization",
           "MultiHeadAttention", "TransformerBlock", "serialize", "deserialize", "REGISTRY"]

REGISTRY = {c.__name__: c for c in (InputLayer, Dense, Flatten, Dropout, Activation, Reshape,
                                    Conv2D, DepthwiseConv2D, Conv2DTranspose, MaxPooling2D,
                                    AveragePooling2D, GlobalAveragePooling2D, GlobalMaxPooling2D,
                                    Conv1D, MaxPooling1D, AveragePooling1D,
                                    GlobalAveragePooling1D, GlobalMaxPooling1D, BatchNormalization, UpSampling2D, ZeroPadding2D, SimpleRNN,
                                    LSTM, GRU, Bidirectional, TimeDistributed, Embedding,
                                    PositionalEmbedding, LayerNormalization, MultiHeadAttention,
                                    TransformerBlock)}

# merge layers (functional API)
from .merge import Add, Subtract, Multiply, Average, Maximum, Minimum, Concatenate  # noqa: E402
_MERGE = (Add, Subtract, Multiply, Average, Maximum, Minimum, Concatenate)
__all__ += [c.__name__ for c in _MERGE]
REGISTRY.update({c.__name__: c for c in _MERGE})


def serialize(layer):
    """{'class_name': ..., 'config': ...} (JSON-able)."""
    return {"class_name": type(layer).__name__, "config": layer.get_config()}


# classes of user-defined layers while a model is loaded (load_model(custom_objects=...))
_USER = UserClasses("layer", Layer)


def custom_objects(objects):
    """Within the block, deserialize also knows these {class name: Layer subclass}."""
    return _USER.scope(objects)


def deserialize(config):
    """A new layer from serialize()'s dict; unknown class names raise ValueError."""
    if not isinstance(config, dict) or "class_name" not in config:
        raise ValueError(f"a layer config must be a dict with 'class_name' and 'config', "
                         f"received {config!r}")
    cls = _USER.resolve(config["class_name"], REGISTRY)
    cfg = dict(config.get("config") or {})
    try:
        return cls.from_config(cfg)
    except TypeError as e:
        raise ValueError(f"invalid config for layer {config['class_name']}: {e}") from None
