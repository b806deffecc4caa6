"""Learning-rate schedules (Keras 3 formulas): callables step -> learning rate."""
import math

from .._registry import UserClasses

__all__ = ["LearningRateSchedule", "ExponentialDecay", "InverseTimeDecay",
           "PiecewiseConstantDecay", "CosineDecay", "serialize", "deserialize"]


class LearningRateSchedule:
    def __call__(self, step):
        raise NotImplementedError

    def get_config(self):
        return dict(self.__dict__)

    @classmethod
    def from_config(cls, config):
        return cls(**config)


class ExponentialDecay(LearningRateSchedule):
    """lr = initial * decay_rate ** (step / decay_steps) (floored exponent if staircase)."""

    def __init__(self, initial_learning_rate, decay_steps, decay_rate, staircase=False):
        if decay_steps <= 0:
            raise ValueError(f"decay_steps must be > 0, received {decay_steps}")
        self.initial_learning_rate = float(initial_learning_rate)
        self.decay_steps = int(decay_steps)
        self.decay_rate = float(decay_rate)
        self.staircase = bool(staircase)

    def __call__(self, step):
        p = step / self.decay_steps
        if self.staircase:
            p = math.floor(p)
        return self.initial_learning_rate * self.decay_rate ** p


class InverseTimeDecay(ExponentialDecay):
    """lr = initial / (1 + decay_rate * step / decay_steps)."""

    def __call__(self, step):
        p = step / self.decay_steps
        if self.staircase:
            p = math.floor(p)
        return self.initial_learning_rate / (1.0 + self.decay_rate * p)


class PiecewiseConstantDecay(LearningRateSchedule):
    """values[i] while step <= boundaries[i]; values[-1] after the last boundary."""

    def __init__(self, boundaries, values):
        if len(values) != len(boundaries) + 1:
            raise ValueError(f"values must have one more entry than boundaries, received "
                             f"{len(boundaries)} boundaries and {len(values)} values")
        self.boundaries = [float(b) for b in boundaries]
        self.values = [float(v) for v in values]

    def __call__(self, step):
        for b, v in zip(self.boundaries, self.values):
            if step <= b:
                return v
        return self.values[-1]


class CosineDecay(LearningRateSchedule):
    """Cosine decay from initial to alpha * initial over decay_steps (no warmup)."""

    def __init__(self, initial_learning_rate, decay_steps, alpha=0.0):
        if decay_steps <= 0:
            raise ValueError(f"decay_steps must be > 0, received {decay_steps}")
        self.initial_learning_rate = float(initial_learning_rate)
        self.decay_steps = int(decay_steps)
        self.alpha = float(alpha)

    def __call__(self, step):
        p = min(step, self.decay_steps) / self.decay_steps
        c = 0.5 * (1.0 + math.cos(math.pi * p))
        return self.initial_learning_rate * ((1.0 - self.alpha) * c + self.alpha)


_CLASSES = {c.__name__: c for c in (ExponentialDecay, InverseTimeDecay, PiecewiseConstantDecay,
                                    CosineDecay)}


def serialize(schedule):
    return {"class_name": type(schedule).__name__, "config": schedule.get_config()}


# the user's own schedules while a model loads (load_model(custom_objects=...))
_USER = UserClasses("learning-rate schedule", LearningRateSchedule)


def custom_objects(objects):
    """Within the block, deserialize also knows these {class name: schedule subclass}."""
    return _USER.scope(objects)


def deserialize(config):
    cls = _USER.resolve(config.get("class_name"), _CLASSES)
    return cls.from_config(config.get("config", {}))
