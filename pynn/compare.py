"""pynn.compare: run one batch through the same model on two backends and report the
largest differences of the outputs, the loss, every gradient and the parameters after one
optimizer step.

    report = pynn.compare(model, x_batch, y_batch)   # 'c' against 'reference'
    print(report); assert report.max() < 1e-4

Each backend gets a clone of the model (same config, weights, dropout seeds and steps,
optimizer state), so the model itself is not changed.
"""
import numpy as np

from . import trainer as _trainer

__all__ = ["compare", "CompareReport"]


class CompareReport:
    """Ordered name -> (max |a - b|, max |a - b| / max(1, max |b|)) for each quantity."""

    def __init__(self, backends):
        self.backends = tuple(backends)
        self.diffs = {}

    def add(self, name, a, b):
        a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
        if a.shape != b.shape:
            raise AssertionError(f"{name}: shapes differ between backends: {a.shape} vs {b.shape}")
        d = float(np.max(np.abs(a - b))) if a.size else 0.0
        if np.isnan(a).any() or np.isnan(b).any():
            d = float("nan") if not np.array_equal(np.isnan(a), np.isnan(b)) else d
        scale = max(1.0, float(np.max(np.abs(b)))) if b.size else 1.0
        self.diffs[name] = (d, d / scale)

    def max(self, relative=False):
        """The largest difference over everything compared (NaN if a NaN appeared on one side)."""
        vals = [v[1 if relative else 0] for v in self.diffs.values()]
        return float(max(vals, key=lambda v: (np.isnan(v), v))) if vals else 0.0

    def __getitem__(self, name):
        if name not in self.diffs:
            raise KeyError(f"no quantity {name!r} in this report; it has: "
                           f"{', '.join(self.diffs)}")
        return self.diffs[name][0]

    def __str__(self):
        w = max([len(k) for k in self.diffs] + [8])
        lines = [f"{'quantity':<{w}}  max |{self.backends[0]} - {self.backends[1]}|   relative"]
        for k, (d, r) in self.diffs.items():
            lines.append(f"{k:<{w}}  {d:>14.3e}   {r:>10.3e}")
        return "\n".join(lines)

    __repr__ = __str__


def _clone(model, backend):
    from .model import model_from_config
    m = model_from_config(model.get_config(), backend=backend)
    m.build(model.input_shape)
    m.set_weights(model.get_weights())  # dropout seeds and steps travel in the config
    if model.compiled:
        m.compile_from_config(model.get_compile_config())
        if model.optimizer.built or model.optimizer.iterations:
            m.optimizer.set_state(model.optimizer.get_state())
    return m


def compare(model, x, y=None, backends=("c", "reference"), sample_weight=None):
    """Compare backends on one batch.

    Parameters
    ----------
    model : pynn.Model
        Built or buildable from x; compiled if y is given (for loss, gradients, step).
    x, y : arrays
        One batch (y optional: then only inference outputs are compared).
    backends : pair of backend names

    Returns
    -------
    CompareReport: 'output' (inference), 'loss', 'grad <layer>/<weight>' for every weight,
    'param <layer>/<weight>' after one optimizer step.
    """
    from .model import Model
    if not isinstance(model, Model):   # it failed on a missing attribute (dtype)
        raise TypeError(f"compare takes a pynn model (Sequential or Model(inputs, outputs)), "
                        f"received {type(model).__name__}")
    if len(backends) != 2:
        raise ValueError(f"compare takes two backends, received {backends!r}")
    x = _trainer.as_inputs(model, x)
    if y is not None:
        model._assert_compiled("compare")
    report = CompareReport(backends)
    runs = []
    for bk in backends:
        m = _clone(model, bk)
        r = {"output": m.predict_on_batch(x)}
        if y is not None:
            yt = m._targets(y)
            sw = _trainer.sample_weights(m, yt, _trainer.batch_len(x), sample_weight)
            m._reset_metrics()
            _, loss = m._forward_backward(x, yt, sw)
            r["loss"] = loss
            for a, b, layer, k in m._segments:
                r[f"grad {layer.name}/{k}"] = m._flat_grads[a:b].copy()
            if m._runs:
                m.optimizer.apply(m.ops, m._flat_params, m._flat_grads, m._runs, m._segs)
            for a, b, layer, k in m._segments:
                r[f"param {layer.name}/{k}"] = m._flat_params[a:b].copy()
        runs.append(r)
    for name in runs[0]:
        report.add(name, runs[0][name], runs[1][name])
    return report
