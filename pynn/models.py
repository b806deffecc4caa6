"""Keras' `models` namespace: Sequential, Model, model_from_config/json, load_model."""
from .model import Model, Sequential, model_from_config, model_from_json, load_model

__all__ = ["Model", "Sequential", "model_from_config", "model_from_json", "load_model"]
