"""A generative adversarial network on Fashion-MNIST, trained with pynn's custom step.

    python examples/gan.py [--epochs 20] [--quick] [--out DIR] [--threads N]

Two multilayer perceptrons play against each other: the generator G maps 64 random numbers
to a 28x28 image, the discriminator D scores images as real or fake (a logit). Each step
trains D on a batch of real and generated images, then trains G to make D call its images
real: G's gradient flows THROUGH D (`D.backward(d, params=False)` returns the input gradient
and leaves D's gradients alone) into G. Adam(2e-4, beta_1=0.5), LeakyReLU, dropout in D,
tanh images in [-1, 1], as in the usual DCGAN recipe.

Writes a grid of 64 generated images per epoch (the same noise each time, so the grids show
how G learns) and a plot of both losses. --quick: 6,000 images, 2 epochs (a smoke run).
"""
import argparse
import os
import time

import numpy as np
import pynn
import pynn.plot
from pynn import layers
from _args import nonnegative_int, positive_int

parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
parser.add_argument("--epochs", type=positive_int, default=20)
parser.add_argument("--quick", action="store_true", help="6,000 training images, 2 epochs")
parser.add_argument("--batch-size", type=positive_int, default=64)
parser.add_argument("--out", default=".", help="folder for the PNG files")
parser.add_argument("--seed", type=nonnegative_int, default=0)
parser.add_argument("--threads", type=positive_int, default=None,
                    help="pynn threads (default: all cores; 1 is faster on a busy machine)")
args = parser.parse_args()
if args.threads:
    pynn.set_num_threads(args.threads)

(x_train, _), _ = pynn.datasets.fashion_mnist.load_data()
x_train = (x_train.astype(np.float32) / 127.5 - 1.0)[..., None]    # (N, 28, 28, 1) in [-1, 1]
epochs = args.epochs
if args.quick:
    x_train, epochs = x_train[:6000], 2
pynn.utils.set_random_seed(args.seed)
rng = np.random.default_rng(args.seed)
latent, bs = 64, args.batch_size
if bs > len(x_train):   # no whole batch an epoch: nothing to train on (it divided by 0)
    parser.error(f"--batch-size {bs} is larger than the {len(x_train)} training images")

G = pynn.Sequential([
    layers.Input(shape=(latent,)),
    layers.Dense(128, activation="leaky_relu"),
    layers.Dense(256, activation="leaky_relu"),
    layers.Dense(28 * 28, activation="tanh"),
    layers.Reshape((28, 28, 1)),
], name="generator")
D = pynn.Sequential([
    layers.Input(shape=(28, 28, 1)),
    layers.Flatten(),
    layers.Dense(256, activation="leaky_relu"),
    layers.Dropout(0.3),
    layers.Dense(128, activation="leaky_relu"),
    layers.Dropout(0.3),
    layers.Dense(1),                                  # a logit: real (1) or fake (0)
], name="discriminator")
opt_g = pynn.optimizers.Adam(2e-4, beta_1=0.5)
opt_d = pynn.optimizers.Adam(2e-4, beta_1=0.5)
bce = pynn.losses.BinaryCrossentropy(from_logits=True)
labels = np.concatenate([np.ones((bs, 1)), np.zeros((bs, 1))]).astype(np.float32)


def train_step(real):
    n = len(real)
    z = rng.standard_normal((n, latent), dtype=np.float32)
    # discriminator: real images -> 1, generated images -> 0
    fake = G(z, training=True)
    d_out = D(np.concatenate([real, fake]), training=True)
    d_loss, d_grad = bce.value_and_grad(np.concatenate([labels[:n], labels[bs:bs + n]]), d_out)
    D.backward(d_grad)
    opt_d.apply_gradients(D)
    # generator: make D answer 1 on fakes; the gradient goes through D into G only
    fake = G(z, training=True)
    g_loss, g_grad = bce.value_and_grad(labels[:n], D(fake, training=True))
    G.backward(D.backward(g_grad, params=False))
    opt_g.apply_gradients(G)
    return d_loss, g_loss


def save_grid(images, path, title):
    plt = pynn.plot._pyplot()
    fig, axes = plt.subplots(8, 8, figsize=(6, 6.3))
    for ax, img in zip(axes.flat, images):
        ax.imshow(img[..., 0], cmap="gray_r", vmin=-1, vmax=1)
        ax.axis("off")
    fig.suptitle(title)
    pynn.plot._finish(fig, path)
    plt.close(fig)


os.makedirs(args.out, exist_ok=True)
z_fixed = rng.standard_normal((64, latent), dtype=np.float32)
history = {"d_loss": [], "g_loss": []}
steps = len(x_train) // bs
print(f"GAN on Fashion-MNIST: {len(x_train)} images, {steps} steps of {bs} per epoch; "
      f"G {G.count_params():,} and D {D.count_params():,} parameters")
start = time.perf_counter()
for epoch in range(1, epochs + 1):
    order = rng.permutation(len(x_train))
    d_sum = g_sum = 0.0
    for i in range(steps):
        d_loss, g_loss = train_step(x_train[order[i * bs:(i + 1) * bs]])
        d_sum, g_sum = d_sum + d_loss, g_sum + g_loss
    history["d_loss"].append(d_sum / steps)
    history["g_loss"].append(g_sum / steps)
    path = os.path.join(args.out, f"gan_epoch_{epoch:03d}.png")
    save_grid(G.predict(z_fixed, verbose=0), path, f"generated after epoch {epoch}")
    print(f"epoch {epoch}/{epochs}: d_loss {history['d_loss'][-1]:.3f}  g_loss "
          f"{history['g_loss'][-1]:.3f}  ({time.perf_counter() - start:.0f} s)  -> {path}",
          flush=True)
pynn.plot.plot_history(history, os.path.join(args.out, "gan_losses.png"),
                       title="GAN losses (discriminator, generator)")
print(f"wrote {os.path.join(args.out, 'gan_losses.png')}")
