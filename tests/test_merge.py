"""Merge layers: forward against NumPy, backward against central differences (float64),
shapes, configs, bad input."""
import numpy as np
import pytest

import pynn
from pynn import layers

MERGES = [(layers.Add, lambda xs: sum(xs)), (layers.Subtract, lambda xs: xs[0] - xs[1]),
          (layers.Multiply, lambda xs: np.prod(xs, axis=0)),
          (layers.Average, lambda xs: sum(xs) / len(xs)),
          (layers.Maximum, lambda xs: np.max(xs, axis=0)),
          (layers.Minimum, lambda xs: np.min(xs, axis=0)),
          (layers.Concatenate, lambda xs: np.concatenate(xs, -1))]


def _graph(cls, n, shape=(2, 3)):
    ins = [pynn.Input(shape=shape, dtype="float64") for _ in range(n)]
    return pynn.Model(ins, cls()(ins))


CASES = [(c, r, n) for c, r in MERGES for n in (2, 3) if not (c is layers.Subtract and n == 3)]


@pytest.mark.parametrize("cls,ref,n", CASES, ids=lambda c: getattr(c, "__name__", str(c)))
def test_merge_forward_and_gradient(cls, ref, n):
    rng = np.random.default_rng(0)
    xs = [rng.standard_normal((4, 2, 3)) for _ in range(n)]
    m = _graph(cls, n)
    out = m.predict(xs, verbose=0)
    np.testing.assert_allclose(out, ref(xs), rtol=1e-15, atol=1e-15)
    w = rng.standard_normal(out.shape)
    m(xs, training=True)
    dxs = m.backward(w)
    for i in range(n):
        num = np.empty_like(xs[i])
        for j in range(xs[i].size):
            old = xs[i].flat[j]
            xs[i].flat[j] = old + 1e-6
            fp = np.sum(ref(xs) * w)
            xs[i].flat[j] = old - 1e-6
            fm = np.sum(ref(xs) * w)
            xs[i].flat[j] = old
            num.flat[j] = (fp - fm) / 2e-6
        np.testing.assert_allclose(dxs[i], num, rtol=1e-6, atol=1e-8)


def test_exact_values_and_ties():
    a = np.array([[1.0, -2.0, 3.0]])
    b = np.array([[1.0, 5.0, -3.0]])
    mx = layers.Maximum()
    np.testing.assert_array_equal(mx([a, b]), [[1.0, 5.0, 3.0]])
    np.testing.assert_array_equal(mx.backward(np.ones((1, 3)))[0], [[1.0, 0.0, 1.0]])  # tie
    np.testing.assert_array_equal(mx.backward(np.ones((1, 3)))[1], [[0.0, 1.0, 0.0]])
    np.testing.assert_array_equal(layers.Minimum()([a, b]), [[1.0, -2.0, -3.0]])
    np.testing.assert_array_equal(layers.Subtract()([a, b]), [[0.0, -7.0, 6.0]])
    np.testing.assert_array_equal(layers.Average()([a, b]), [[1.0, 1.5, 0.0]])


def test_concatenate_axis_and_shapes():
    x, y = pynn.Input(shape=(4, 2)), pynn.Input(shape=(3, 2))
    c = layers.Concatenate(axis=1)([x, y])
    assert c.shape == (None, 7, 2)
    m = pynn.Model([x, y], c)
    a, b = np.ones((2, 4, 2)), np.zeros((2, 3, 2))
    np.testing.assert_array_equal(m.predict([a, b], verbose=0), np.concatenate([a, b], 1))
    with pytest.raises(ValueError, match="equal on every other axis"):
        layers.Concatenate()([x, y])
    with pytest.raises(ValueError, match="out of range"):
        layers.Concatenate(axis=3)([x, x])
    with pytest.raises(TypeError, match="integer"):
        layers.Concatenate(axis=1.5)


def test_bad_merge_input():
    x = pynn.Input(shape=(3,))
    with pytest.raises(ValueError, match="at least 2"):
        layers.Add()([x])
    with pytest.raises(ValueError, match="exactly 2"):
        layers.Subtract()([x, x, x])
    with pytest.raises(ValueError, match="list of inputs"):
        layers.Add()(x)
    with pytest.raises(ValueError, match="same shape"):
        layers.Multiply()([x, pynn.Input(shape=(2,))])
    with pytest.raises(ValueError, match="same shape"):
        layers.Add()([np.ones((2, 3)), np.ones((2, 4))])


def test_merge_config_round_trip():
    for cls, _ in MERGES:
        layer = cls(name=f"m_{cls.__name__.lower()}") if cls is not layers.Concatenate \
            else cls(axis=1, name="cat")
        again = layers.deserialize(layers.serialize(layer))
        assert type(again) is cls and again.get_config() == layer.get_config()
