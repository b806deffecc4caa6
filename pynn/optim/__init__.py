"""Optimizers and learning-rate schedules (also importable as pynn.optimizers)."""
from . import schedules
from .optimizers import (Optimizer, SGD, Adam, AdamW, RMSprop, Adagrad, get, serialize,
                         deserialize, custom_objects)

__all__ = ["Optimizer", "SGD", "Adam", "AdamW", "RMSprop", "Adagrad", "get", "serialize",
           "deserialize", "custom_objects", "schedules"]
