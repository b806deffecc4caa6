"""A character-level language model on Tiny Shakespeare, an LSTM or a small Transformer.

    python examples/char_lm.py [--model transformer|lstm] [--minutes 5] [--steps N]
                               [--seed 0] [--eval-every 200] [--sample-chars 300]
                               [--threads N] [--data input.txt]

Reads ../shared/data/tinyshakespeare/input.txt where it exists (else the usual search and
download, see pynn.datasets.tinyshakespeare), trains on random windows of 64 characters
(batch 32) to predict each next character, and reports the validation loss per character
(cross-entropy in nats; a uniform guess over the 65 characters is ln 65 = 4.17, unigram
statistics ~3.3, a good small model ~1.5) at intervals, with a sample of generated text.
Trains for --minutes of wall time or --steps steps, whichever ends first.

Models (Keras layers; sizes small enough to learn in a few minutes on 2 cores):
- transformer: PositionalEmbedding(64, 65, 128) -> 2 x TransformerBlock(4 heads, causal,
  pre-norm, GELU MLP 512) -> LayerNormalization -> Dense(65)
- lstm: Embedding(65, 64) -> LSTM(256, return_sequences=True) -> LayerNormalization ->
  Dense(65)
Both output logits (B, T, 65) trained with sparse_categorical_crossentropy(from_logits=True)
on the next-character labels (B, T), Adam. bench/char_lm_torch.py trains the same
Transformer in PyTorch on the same batches (and compares both with --compare).
"""
import argparse
import pathlib
import sys
import time

import numpy as np

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))
import pynn  # noqa: E402
from pynn import layers  # noqa: E402
from pynn.datasets import tinyshakespeare  # noqa: E402
from _args import nonnegative_int, positive_float, positive_int  # noqa: E402

CONFIG = {  # shared with bench/char_lm_torch.py
    "transformer": dict(seq_len=64, batch_size=32, width=128, heads=4, ff_dim=512,
                        blocks=2, learning_rate=2e-3),
    "lstm": dict(seq_len=64, batch_size=32, width=64, units=256, learning_rate=2e-3),
}
ADAM = dict(beta_1=0.9, beta_2=0.999, epsilon=1e-8)
EVAL_BATCHES = 16            # validation: the first 16 x 32 windows of 64 chars (32,768 chars)


def shared_corpus():
    """../shared/data/tinyshakespeare from the repository (or a worktree of it), or None."""
    root = pathlib.Path(__file__).resolve().parents[1]
    for parent in (root.parent, root.parent.parent):
        d = parent / "shared" / "data" / "tinyshakespeare"
        if (d / "input.txt").is_file():
            return d
    return None


def build_model(kind, vocab_size, cfg=None, backend=None):
    """The Sequential char model of `kind` (logits out), compiled with Adam."""
    if kind not in CONFIG:
        raise ValueError(f"model must be 'transformer' or 'lstm', received {kind!r}")
    cfg = dict(CONFIG[kind], **(cfg or {}))
    T, V = cfg["seq_len"], vocab_size
    if kind == "transformer":
        C = cfg["width"]
        stack = [layers.PositionalEmbedding(T, V, C)]
        stack += [layers.TransformerBlock(num_heads=cfg["heads"], key_dim=C // cfg["heads"],
                                          ff_dim=cfg["ff_dim"], causal=True, activation="gelu",
                                          epsilon=1e-5) for _ in range(cfg["blocks"])]
    else:
        stack = [layers.Embedding(V, cfg["width"]),
                 layers.LSTM(cfg["units"], return_sequences=True)]
    model = pynn.Sequential([layers.Input(shape=(T,))] + stack +
                            [layers.LayerNormalization(epsilon=1e-5), layers.Dense(V)],
                            backend=backend)
    model.compile(optimizer=pynn.optim.Adam(cfg["learning_rate"], **ADAM),
                  loss=pynn.losses.SparseCategoricalCrossentropy(from_logits=True))
    return model


def nll(logits, y):
    """Mean cross-entropy (nats) of logits (B, T, V) against labels (B, T), in float64."""
    z = logits.astype(np.float64)  # (B, T, V)
    z = z - z.max(axis=-1, keepdims=True)  # (B, T, V)
    logp = z - np.log(np.exp(z).sum(axis=-1, keepdims=True))  # (B, T, V)
    return -float(np.take_along_axis(logp, y[..., None], axis=-1).mean())


def validation_loss(predict, val_ids, batch_size, seq_len, max_batches=EVAL_BATCHES):
    """Loss per character over the first max_batches validation batches; predict(x) -> logits
    for x of float32 ids (B, T)."""
    total, n = 0.0, 0
    for x, y in tinyshakespeare.eval_batches(val_ids, batch_size, seq_len, max_batches):
        total += nll(predict(x.astype(np.float32)), y) * y.size
        n += y.size
    return total / n


def generate(predict, vocab, prompt, n_chars, seq_len, temperature=0.8, rng=None):
    """Text of prompt + n_chars sampled characters. Each step runs the model on the context so
    far (its last seq_len characters, left-aligned and zero-padded: the models are causal, so
    padding after the last position changes nothing before it) and samples the next character
    from softmax(logits / temperature)."""
    rng = rng if rng is not None else np.random.default_rng(0)
    ids = list(vocab.encode(prompt))
    for _ in range(n_chars):
        ctx = ids[-seq_len:]
        x = np.zeros((1, seq_len), np.float32)  # (1, T)
        x[0, :len(ctx)] = ctx
        z = predict(x)[0, len(ctx) - 1].astype(np.float64) / max(temperature, 1e-6)  # (V,)
        p = np.exp(z - z.max())  # (V,)
        ids.append(int(rng.choice(len(p), p=p / p.sum())))
    return vocab.decode(ids)


def train(step_fn, predict, train_ids, val_ids, cfg, steps=None, minutes=None, seed=0,
          eval_every=200, log=print, on_eval=None, eval_batches=EVAL_BATCHES):
    """Train with step_fn(x float32 (B, T), y int64 (B, T)) -> loss on the seeded batches
    until `steps` or `minutes`; [(step, seconds, train loss, validation loss), ...] at every
    eval_every steps and at the end."""
    B, T = cfg["batch_size"], cfg["seq_len"]
    history, t0, recent = [], time.perf_counter(), []
    deadline = t0 + 60 * minutes if minutes else None
    step = 0
    for x, y in tinyshakespeare.batches(train_ids, B, T, seed=seed, steps=steps,
                                        dtype=np.float32):
        recent.append(float(step_fn(x, y.astype(np.int64))))
        step += 1
        done = deadline is not None and time.perf_counter() >= deadline
        if step % eval_every == 0 or done or step == steps:
            v = validation_loss(predict, val_ids, B, T, eval_batches)
            dt = time.perf_counter() - t0
            history.append((step, dt, float(np.mean(recent)), v))
            log(f"step {step:5d}  {dt:6.0f} s  train loss {np.mean(recent):.4f}  "
                f"validation loss {v:.4f} nats/char")
            recent = []
            if on_eval is not None:
                on_eval(step)
        if done:
            break
    return history


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", choices=["transformer", "lstm"], default="transformer")
    p.add_argument("--minutes", type=positive_float, default=None,
                   help="wall-time budget (default 5 when --steps is not given)")
    p.add_argument("--steps", type=positive_int, default=None)
    p.add_argument("--seed", type=nonnegative_int, default=0)
    p.add_argument("--eval-every", type=positive_int, default=200)
    p.add_argument("--eval-batches", type=positive_int, default=EVAL_BATCHES,
                   help="validation batches of 32 windows per evaluation")
    p.add_argument("--sample-chars", type=nonnegative_int, default=300)
    p.add_argument("--temperature", type=positive_float, default=0.8)
    p.add_argument("--data", default=None, help="input.txt or a folder holding it")
    p.add_argument("--backend", choices=["c", "reference"], default=None)
    p.add_argument("--threads", type=positive_int, default=None,
                   help="pynn threads (default: all)")
    a = p.parse_args(argv)
    if a.data is not None and not pathlib.Path(a.data).exists():   # not the search, download
        p.error(f"--data {a.data}: no such file or folder")
    if a.threads:
        pynn.set_num_threads(a.threads)
    minutes = a.minutes if a.minutes is not None or a.steps else 5.0
    (train_ids, val_ids), vocab = tinyshakespeare.load_data(a.data or shared_corpus())
    print(f"Tiny Shakespeare: {len(train_ids):,} training and {len(val_ids):,} validation "
          f"characters, vocabulary {len(vocab)}")
    pynn.utils.set_random_seed(a.seed)
    cfg = CONFIG[a.model]
    model = build_model(a.model, len(vocab), backend=a.backend)
    model.summary()
    T = cfg["seq_len"]
    rng = np.random.default_rng(a.seed)

    def sample(step, n=min(a.sample_chars, 120)):
        print("  sample: " + repr(generate(model.predict_on_batch, vocab, vocab.itos[0], n, T,
                                           a.temperature, rng)[1:]))
    budget = " and ".join(s for s in (f"{a.steps} steps" if a.steps else "",
                                      f"{minutes:g} minutes" if minutes else "") if s)
    print(f"training the {a.model} model for {budget} (batch {cfg['batch_size']}, "
          f"context {T}); validation loss per character on {a.eval_batches * cfg['batch_size']} "
          f"windows")
    history = train(lambda x, y: model.train_on_batch(x, y), model.predict_on_batch,
                    train_ids, val_ids, cfg, a.steps, minutes, a.seed, a.eval_every,
                    on_eval=sample, eval_batches=a.eval_batches)
    step, secs, _, v = history[-1]
    print(f"\nfinal validation loss {v:.4f} nats/char ({v / np.log(2):.3f} bits/char) after "
          f"{step} steps, {secs:.0f} s ({secs / step * 1e3:.0f} ms/step)")
    print(f"\n--- {a.sample_chars} sampled characters (temperature {a.temperature}) ---")
    prompt = "".join(c for c in "ROMEO:\n" if c in vocab.stoi) or vocab.itos[0]
    print(generate(model.predict_on_batch, vocab, prompt, a.sample_chars, T, a.temperature,
                   rng))
    return history


if __name__ == "__main__":
    main()
