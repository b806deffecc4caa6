"""Losses, metrics, activations, initializers, regularizers and utils: names, hand-worked
values, target checks, configs, reproducibility. Both backends where kernels run."""
import json

import numpy as np
import pytest

import pynn
from pynn import activations, initializers, losses, metrics, regularizers, utils

BACKENDS = ["c", "reference"]


@pytest.mark.parametrize("backend", BACKENDS)
def test_loss_objects_hand_values(backend):
    with pynn.ops.use_backend(backend):
        p = np.array([[0.7, 0.2, 0.1], [0.1, 0.1, 0.8]])
        assert losses.get("sparse_categorical_crossentropy")([0, 2], p) == pytest.approx(
            -(np.log(0.7) + np.log(0.8)) / 2)
        onehot = np.array([[1., 0, 0], [0, 0, 1]])
        assert losses.categorical_crossentropy(onehot, p) == pytest.approx(
            -(np.log(0.7) + np.log(0.8)) / 2)
        assert losses.mse(np.array([[1.0, 2.0]]), np.array([[0.0, 4.0]])) == pytest.approx(2.5)
        assert losses.MeanAbsoluteError()(np.array([[1.0], [3.0]]), np.array([[0.0], [0.0]])) \
            == pytest.approx(2.0)
        bce = losses.BinaryCrossentropy()(np.array([[1.0], [0.0]]), np.array([[0.9], [0.2]]))
        assert bce == pytest.approx(-(np.log(0.9) + np.log(0.8)) / 2, rel=1e-6)
        logits = np.array([[2.0, 0.0, -1.0]])
        sm = np.exp(logits) / np.exp(logits).sum()
        assert losses.SparseCategoricalCrossentropy(from_logits=True)([0], logits) == \
            pytest.approx(-np.log(sm[0, 0]))
        sw = losses.mse(np.zeros((2, 1)), np.array([[1.0], [2.0]]), sample_weight=[1.0, 0.0])
        assert sw == pytest.approx(0.5)


def test_loss_target_checks():
    l = losses.get("sparse_categorical_crossentropy")
    assert l.prepare_targets(np.array([[1], [0]]), (3,), np.float32).tolist() == [1, 0]
    assert l.prepare_targets(np.array([1.0, 2.0]), (3,), np.float32).dtype == np.int64
    with pytest.raises(ValueError, match=r"\[0, 3\)"):
        l.prepare_targets(np.array([0, 3]), (3,), np.float32)
    with pytest.raises(ValueError, match="whole"):
        l.prepare_targets(np.array([0.5]), (3,), np.float32)
    with pytest.raises(ValueError, match="NaN"):
        l.prepare_targets(np.array([np.nan]), (3,), np.float32)
    with pytest.raises(ValueError, match="categorical_crossentropy"):
        l.prepare_targets(np.zeros((2, 3)), (3,), np.float32)
    # an output of one score per sample: IndexError (tuple index out of range) before
    with pytest.raises(ValueError, match=r"needs a model output of shape \(n, classes\)"):
        losses.SparseCategoricalCrossentropy().value_and_grad(np.array([1, 1]),
                                                              np.array([0.5, 0.5]))
    c = losses.get("categorical_crossentropy")
    with pytest.raises(ValueError, match="shape"):
        c.prepare_targets(np.zeros((2, 4)), (3,), np.float32)
    with pytest.raises(ValueError, match="NaN"):
        c.prepare_targets(np.full((2, 3), np.nan), (3,), np.float32)
    assert c.kernels("softmax") == ("softmax_categorical_crossentropy", True)
    assert c.kernels("relu") == ("categorical_crossentropy", False)
    assert losses.get("binary_crossentropy").kernels("sigmoid") == (
        "binary_crossentropy_logits", True)


def test_loss_names_and_configs():
    for name in ["mse", "mae", "mean_squared_error", "mean_absolute_error",
                 "binary_crossentropy", "categorical_crossentropy",
                 "sparse_categorical_crossentropy"]:
        l = losses.get(name)
        l2 = losses.deserialize(json.loads(json.dumps(losses.serialize(l))))
        assert type(l2) is type(l) and l2.get_config() == l.get_config()
    assert type(losses.get(losses.sparse_categorical_crossentropy)) is \
        losses.SparseCategoricalCrossentropy
    # Keras' upper-case aliases and class names; a class name keeps the default name
    for name, cls in [("MSE", losses.MeanSquaredError), ("MAE", losses.MeanAbsoluteError),
                      ("MeanSquaredError", losses.MeanSquaredError),
                      ("SparseCategoricalCrossentropy", losses.SparseCategoricalCrossentropy)]:
        l = losses.get(name)
        assert type(l) is cls, name
        assert l.get_config()["name"] == (name if name.isupper() else
                                          losses._default_name(cls)), name
    with pytest.raises(ValueError, match="unknown loss 'huber'.*MeanSquaredError.*mae"):
        losses.get("huber")
    with pytest.raises(ValueError, match="unknown loss class"):
        losses.deserialize({"class_name": "os.system", "config": {}})


@pytest.mark.parametrize("backend", BACKENDS)
def test_metrics(backend):
    with pynn.ops.use_backend(backend):
        p = np.array([[0.7, 0.2, 0.1], [0.1, 0.1, 0.8], [0.5, 0.4, 0.1], [0.2, 0.7, 0.1]])
        acc = metrics.get("accuracy", losses.get("sparse_categorical_crossentropy"))
        assert isinstance(acc, metrics.SparseCategoricalAccuracy) and acc.name == "accuracy"
        acc.update_state([0, 2, 1, 1], p)
        assert acc.result() == 0.75
        acc.update_state([0, 0, 0, 0], p, sample_weight=[1.0, 1.0, 1.0, 0.0])
        assert acc.result() == pytest.approx((3 + 2) / 7)
        acc.reset_state()
        assert acc.result() == 0.0
        cat = metrics.get("acc", losses.get("categorical_crossentropy"))
        assert isinstance(cat, metrics.CategoricalAccuracy)
        cat.update_state(np.eye(3)[[0, 2, 1, 1]], p)
        assert cat.result() == 0.75
        b = metrics.get("accuracy", losses.get("binary_crossentropy"))
        b.update_state(np.array([[1.0], [0.0], [1.0]]), np.array([[0.6], [0.7], [0.9]]))
        assert b.result() == pytest.approx(2 / 3)
        mse = metrics.get("mse")
        mse.update_state(np.array([[1.0, 2.0]]), np.array([[0.0, 4.0]]))
        assert mse.result() == pytest.approx(2.5)
        mae = metrics.get("mae")
        mae.update_state(np.array([[1.0, 2.0]]), np.array([[0.0, 4.0]]))
        assert mae.result() == pytest.approx(1.5)
    with pytest.raises(ValueError, match="unknown metric 'f1'"):
        metrics.get("f1")


@pytest.mark.parametrize("backend", BACKENDS)
def test_activation_objects(backend):
    with pynn.ops.use_backend(backend):
        x = np.array([[-1.0, 0.0, 2.0]])
        np.testing.assert_array_equal(activations.relu(x), [[0.0, 0.0, 2.0]])
        np.testing.assert_allclose(activations.get("softmax")(x).sum(), 1.0)
        assert activations.get(None) is activations.linear
        assert activations.linear(x) is x
    assert activations.get("swish").kernel == "silu"
    assert [a for a in activations.DENSE_FUSED] == ["linear", "relu", "sigmoid", "tanh"]
    with pytest.raises(ValueError, match="unknown activation 'mish'"):
        activations.get("mish")
    with pytest.raises(TypeError):
        activations.get(3)


def test_initializers():
    shape = (400, 300)
    for name, std in [("glorot_uniform", np.sqrt(2 / 700)), ("glorot_normal", np.sqrt(2 / 700)),
                      ("he_normal", np.sqrt(2 / 400)), ("he_uniform", np.sqrt(2 / 400)),
                      ("lecun_normal", np.sqrt(1 / 400)), ("lecun_uniform", np.sqrt(1 / 400))]:
        w = initializers.get(name)(shape)
        assert w.dtype == np.float32 and w.shape == shape
        assert abs(w.std() - std) < 0.03 * std, name
        assert abs(w.mean()) < 0.05 * std, name
    lim = np.sqrt(6 / 700)
    assert np.abs(initializers.GlorotUniform()(shape)).max() <= lim
    assert (initializers.get("zeros")((2, 2)) == 0).all()
    assert (initializers.Constant(3.0)((2,), "float64") == 3).all()
    seeded = initializers.HeNormal(seed=5)
    np.testing.assert_array_equal(seeded((3, 4)), seeded((3, 4)))
    np.testing.assert_array_equal(seeded((3, 4)), initializers.HeNormal(seed=5)((3, 4)))
    a = initializers.TruncatedNormal(stddev=1.0, seed=1)((1000,))
    assert np.abs(a).max() <= 2.0
    init = initializers.RandomUniform(-1, 2, seed=3)
    assert initializers.deserialize(json.loads(json.dumps(
        initializers.serialize(init)))).get_config() == init.get_config()
    with pytest.raises(ValueError, match="unknown initializer"):
        initializers.get("identity_matrix")


def test_set_random_seed_reproduces_weights_and_dropout_seeds():
    def build():
        m = pynn.Sequential([pynn.layers.Dense(5, input_shape=(3,)), pynn.layers.Dropout(0.5),
                             pynn.layers.Dense(2)], backend="reference")
        return m.get_weights(), m.layers[1]._seed
    utils.set_random_seed(123)
    a = build()
    utils.set_random_seed(123)
    b = build()
    for wa, wb in zip(a[0], b[0]):
        np.testing.assert_array_equal(wa, wb)
    assert a[1] == b[1] and 0 <= a[1] < 2**63
    c = build()
    assert not np.array_equal(a[0][0], c[0][0]) and a[1] != c[1]
    with pytest.raises(ValueError):
        utils.set_random_seed(-1)
    with pytest.raises(ValueError):
        utils.set_random_seed(1.5)


def test_to_categorical():
    np.testing.assert_array_equal(utils.to_categorical([0, 2, 1]), np.eye(3)[[0, 2, 1]])
    assert utils.to_categorical([1], num_classes=4).shape == (1, 4)
    with pytest.raises(ValueError):
        utils.to_categorical([3], num_classes=2)


def test_regularizers():
    w = np.array([[1.0, -2.0], [0.5, 0.0]])
    r = regularizers.L1L2(l1=0.1, l2=0.01)
    assert r(w) == pytest.approx(0.1 * 3.5 + 0.01 * 5.25)
    g = np.zeros_like(w)
    r.add_gradient(w, g)
    np.testing.assert_allclose(g, 0.1 * np.sign(w) + 0.02 * w)
    assert regularizers.get("l2").l2 == 0.01 and regularizers.get(None) is None
    assert regularizers.deserialize(json.loads(json.dumps(
        regularizers.serialize(r)))).get_config() == r.get_config()
    with pytest.raises(ValueError, match="unknown regularizer"):
        regularizers.get("l3")


def test_kernel_regularizer_in_training_loss():
    rng = np.random.default_rng(0)
    x, y = rng.standard_normal((8, 3)), rng.standard_normal((8, 1))
    m = pynn.Sequential([pynn.layers.Dense(1, input_shape=(3,), kernel_regularizer=
                                           regularizers.L2(0.5))], backend="reference")
    m.compile("sgd", "mse")
    w = m.get_weights()
    plain = losses.mse(y, m.predict(x, verbose=0))
    assert m.evaluate(x, y, verbose=0) == pytest.approx(
        plain + 0.5 * float(np.sum(w[0].astype(np.float64) ** 2)), rel=1e-5)


def test_a_frozen_layer_penalty_leaves_the_loss():
    # as in Keras (penalties come from trainable weights): freezing the regularized layer
    # takes its penalty out of evaluate's and fit's loss and its gradient out of the step;
    # unfreezing puts it back
    rng = np.random.default_rng(0)
    x, y = rng.standard_normal((8, 3)), rng.standard_normal((8, 1))
    first = pynn.layers.Dense(2, kernel_regularizer=regularizers.L2(0.5))
    m = pynn.Sequential([pynn.Input(shape=(3,)), first, pynn.layers.Dense(1)],
                        backend="reference", dtype="float64")
    m.compile("sgd", "mse")
    w = m.get_weights()
    penalty = 0.5 * float(np.sum(w[0] ** 2))
    plain = losses.mse(y, m.predict(x, verbose=0))
    assert m.evaluate(x, y, verbose=0) == pytest.approx(plain + penalty, rel=1e-12)
    first.trainable = False
    assert m.evaluate(x, y, verbose=0) == pytest.approx(plain, rel=1e-12)
    h = m.fit(x, y, batch_size=8, epochs=1, verbose=0, shuffle=False)
    assert h.history["loss"][0] == pytest.approx(plain, rel=1e-12)
    np.testing.assert_array_equal(m.get_weights()[0], w[0])
    first.trainable = True
    assert m.evaluate(x, y, verbose=0) > plain + 0.5 * penalty


def test_keras_style_metric_subclass_and_loss_without_gradient():
    # a Metric subclass with update_state/result (Keras) works in fit and evaluate; a Loss
    # subclass with only call() is refused at compile (no gradient without autodiff)
    class TruePositives(pynn.metrics.Metric):
        def reset_state(self):
            self.tp = 0.0

        def update_state(self, y_true, y_pred, sample_weight=None):
            hit = (np.argmax(y_pred, -1) == 1) & (np.asarray(y_true).reshape(-1) == 1)
            self.tp += float(np.sum(hit))

        def result(self):
            return self.tp

    class CallOnly(pynn.losses.Loss):
        def call(self, y_true, y_pred):
            return (y_true - y_pred) ** 2

    m = pynn.Sequential([pynn.Input(shape=(3,)), pynn.layers.Dense(2, activation="softmax")],
                        dtype="float64")
    with pytest.raises(TypeError, match="no automatic differentiation"):
        m.compile("sgd", CallOnly())
    m.compile("sgd", "sparse_categorical_crossentropy", metrics=[TruePositives(name="tp")])
    rng = np.random.default_rng(0)
    x, y = rng.standard_normal((10, 3)), rng.integers(0, 2, 10)
    want = float(np.sum((m.predict(x, verbose=0).argmax(-1) == 1) & (y == 1)))
    assert m.evaluate(x, y, verbose=0, return_dict=True)["tp"] == want
    assert "tp" in m.fit(x, y, epochs=1, verbose=0).history
    acc = pynn.metrics.BinaryAccuracy()
    acc.update_state(np.ones((4, 1)), np.full((4, 1), 0.9), np.array([[1.0], [0], [2], [1]]))
    assert acc.result() == 1.0                   # sample_weight (B, 1), as Keras takes it
    with pytest.raises(ValueError, match="sample_weight"):
        acc.update_state(np.ones((4, 1)), np.ones((4, 1)), np.ones(3))

    calls = []

    class CountingAccuracy(pynn.metrics.SparseCategoricalAccuracy):   # of a built-in one
        def update_state(self, y_true, y_pred, sample_weight=None):
            calls.append(len(y_pred))
            super().update_state(y_true, y_pred, sample_weight)

    class LogitsOnly(pynn.losses.Loss):        # only a logits kernel: used with from_logits
        kind = "sparse"
        logits_kernel = "softmax_cross_entropy"

    m.compile("sgd", "sparse_categorical_crossentropy", metrics=[CountingAccuracy(name="acc")])
    got = m.evaluate(x, y, verbose=0, return_dict=True)["acc"]
    assert calls == [10] and got == pytest.approx((m.predict(x, verbose=0).argmax(-1) == y).mean())
    m.compile("sgd", LogitsOnly(from_logits=True))
