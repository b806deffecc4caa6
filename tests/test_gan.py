"""Two models trained against each other (a GAN) with the custom step: each update changes
only the model it should, and the generator's gradient through the discriminator matches the
gradient of the combined graph model."""
import numpy as np
import pytest

import pynn
from pynn import layers


def models():
    g = pynn.Sequential([layers.Input(shape=(3,)), layers.Dense(5, activation="leaky_relu"),
                         layers.Dense(4, activation="tanh")], dtype="float64", name="g")
    d = pynn.Sequential([layers.Input(shape=(4,)), layers.Dense(6, activation="leaky_relu"),
                         layers.Dense(1)], dtype="float64", name="d")
    return g, d


def test_gan_steps_update_only_the_intended_model():
    g, d = models()
    opt_g, opt_d = pynn.optimizers.Adam(1e-2, beta_1=0.5), pynn.optimizers.Adam(1e-2)
    bce = pynn.losses.BinaryCrossentropy(from_logits=True)
    rng = np.random.default_rng(0)
    z, real = rng.standard_normal((8, 3)), rng.standard_normal((8, 4))
    g0, d0 = g.get_weights(), d.get_weights()
    # discriminator step: real -> 1, fake -> 0
    fake = g(z, training=True)
    out = d(np.concatenate([real, fake]), training=True)
    d_loss, dd = bce.value_and_grad(np.r_[np.ones(8), np.zeros(8)][:, None], out)
    d.backward(dd)
    opt_d.apply_gradients(d)
    assert all(np.array_equal(a, b) for a, b in zip(g0, g.get_weights()))
    assert not any(np.array_equal(a, b) for a, b in zip(d0, d.get_weights()))
    # generator step through the discriminator: d's weights and gradients stay as they were
    d1, dgrads = d.get_weights(), d._flat_grads.copy()
    fake = g(z, training=True)
    g_loss, dg = bce.value_and_grad(np.ones((8, 1)), d(fake, training=True))
    dfake = d.backward(dg, params=False)
    g.backward(dfake)
    opt_g.apply_gradients(g)
    assert all(np.array_equal(a, b) for a, b in zip(d1, d.get_weights()))
    np.testing.assert_array_equal(d._flat_grads, dgrads)
    assert not any(np.array_equal(a, b) for a, b in zip(g0, g.get_weights()))
    assert np.isfinite(d_loss) and np.isfinite(g_loss)


def test_generator_gradient_equals_combined_model_gradient():
    g, d = models()
    z = pynn.Input(shape=(3,), dtype="float64")
    combined = pynn.Model(z, d(g(z)))
    d.trainable = False
    combined.compile("sgd", pynn.losses.BinaryCrossentropy(from_logits=True))
    x = np.random.default_rng(1).standard_normal((6, 3))
    y = np.ones((6, 1))
    combined._forward_backward(x, combined._targets(y), None)
    want = g._flat_grads.copy()          # g's slice of the combined buffer
    g.zero_grad()
    bce = pynn.losses.BinaryCrossentropy(from_logits=True)
    _, dg = bce.value_and_grad(y, d(g(x, training=True), training=True))
    g.backward(d.backward(dg, params=False))
    np.testing.assert_allclose(g._flat_grads, want, rtol=1e-12, atol=1e-15)


def test_one_optimizer_for_two_models_is_refused():
    g, d = models()
    opt = pynn.optimizers.SGD(0.1)
    g(np.zeros((2, 3)), training=True)
    g.backward(np.ones((2, 4)))
    opt.apply_gradients(g)
    d(np.zeros((2, 4)), training=True)
    d.backward(np.ones((2, 1)))
    with pytest.raises(ValueError, match="already updates model 'g'"):
        opt.apply_gradients(d)


@pytest.mark.parametrize("argv,msg", [(["--seed", "-5"], "--seed"),
                                      (["--batch-size", "100000"], "larger than the 6000")])
def test_gan_example_refuses_bad_arguments(tmp_path, argv, msg):
    # a batch larger than the data made zero steps an epoch and divided by zero; a negative
    # seed failed inside NumPy's generator
    import os
    import subprocess
    import sys
    if msg.startswith("larger"):
        try:
            pynn.datasets.fashion_mnist.load_data(download=False)
        except pynn.datasets.DatasetError:
            pytest.skip("Fashion-MNIST is not installed")
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    r = subprocess.run([sys.executable, os.path.join(root, "examples", "gan.py"), "--quick",
                        "--out", str(tmp_path)] + argv, capture_output=True, text=True,
                       timeout=120)
    assert r.returncode == 2 and msg in r.stderr, r.stderr[-500:]
    assert not os.listdir(tmp_path)
