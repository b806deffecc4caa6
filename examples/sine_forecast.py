"""Forecasting a noisy sine with an LSTM or a GRU: the next value from the last 40.

    python examples/sine_forecast.py [--model lstm|gru] [--epochs 10] [--quick] [--seed 0]

Each series is sin(w t + phase) + noise, with its own frequency w in [0.1, 0.3] rad/step and
phase, and Gaussian noise of standard deviation 0.1. The model reads a window of 40 noisy
values (B, 40, 1) and predicts the next noisy value: RNN(32) -> Dense(1), mean squared error,
Adam. It has to infer the frequency and phase from the window and average the noise away; the
error it cannot remove is the noise variance, 0.01. Printed against two baselines on the test
windows: the naive forecast (repeat the last value) and the window mean.
--quick trains on 1,000 windows for 2 epochs (a smoke run).
"""
import argparse
import pathlib
import sys

import numpy as np

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))
import pynn  # noqa: E402
from pynn import layers  # noqa: E402
from _args import nonnegative_int, positive_int  # noqa: E402

WINDOW, NOISE = 40, 0.1


def make_windows(n, rng):
    """x (n, WINDOW, 1) noisy values, y (n, 1) the next noisy value, clean (n, 1) its noiseless
    value."""
    w = rng.uniform(0.1, 0.3, (n, 1))  # (n, 1)
    phase = rng.uniform(0, 2 * np.pi, (n, 1))  # (n, 1)
    t = np.arange(WINDOW + 1)  # (W+1,)
    clean = np.sin(w * t + phase)  # (n, W+1)
    noisy = clean + NOISE * rng.standard_normal(clean.shape)  # (n, W+1)
    x = noisy[:, :WINDOW, None].astype(np.float32)  # (n, W, 1)
    return x, noisy[:, WINDOW:].astype(np.float32), clean[:, WINDOW:].astype(np.float32)


def build_model(kind, units=32, learning_rate=3e-3):
    rnn = {"lstm": getattr(layers, "LSTM", None), "gru": getattr(layers, "GRU", None)}[kind]
    model = pynn.Sequential([layers.Input(shape=(WINDOW, 1)), rnn(units), layers.Dense(1)])
    model.compile(optimizer=pynn.optim.Adam(learning_rate), loss="mse")
    return model


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", choices=["lstm", "gru"], default="lstm")
    p.add_argument("--epochs", type=positive_int, default=10)
    p.add_argument("--train", type=positive_int, default=8000, help="training windows")
    p.add_argument("--quick", action="store_true", help="1,000 windows, 2 epochs")
    p.add_argument("--seed", type=nonnegative_int, default=0)
    a = p.parse_args(argv)
    if not a.quick and a.train < 10:   # fit holds out a tenth for validation
        p.error(f"--train {a.train}: at least 10 windows (a tenth is held out for validation)")
    ntrain, epochs = (1000, 2) if a.quick else (a.train, a.epochs)
    rng = np.random.default_rng(a.seed)
    x, y, _ = make_windows(ntrain, rng)
    xt, yt, clean_t = make_windows(2000, rng)
    pynn.utils.set_random_seed(a.seed)
    model = build_model(a.model)
    model.summary()
    model.fit(x, y, batch_size=64, epochs=epochs, validation_split=0.1, verbose=2,
              seed=a.seed)
    pred = model.predict(xt, batch_size=500, verbose=0)
    mse = float(np.mean((pred - yt) ** 2))
    naive = float(np.mean((xt[:, -1] - yt) ** 2))
    mean = float(np.mean((xt.mean(axis=1) - yt) ** 2))
    to_clean = float(np.mean((pred - clean_t) ** 2))
    print(f"\ntest MSE of the next value ({len(xt)} windows): {a.model} {mse:.4f}; naive "
          f"(repeat the last value) {naive:.4f}; window mean {mean:.4f}; noise floor "
          f"{NOISE ** 2:.4f}")
    print(f"{a.model} error against the noiseless value: {to_clean:.4f}; naive / {a.model} = "
          f"{naive / mse:.2f}x")
    return {"mse": mse, "naive": naive, "mean": mean}


if __name__ == "__main__":
    main()
