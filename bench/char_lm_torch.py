"""The PyTorch twin of examples/char_lm.py's Transformer character model, and the comparison
of both on the same steps.

    python bench/char_lm_torch.py [--steps 1000] [--seed 0] [--threads 1] [--compare]

Same sizes (context 64, width 128, 2 pre-norm blocks of 4 causal heads with a GELU MLP of
512, final LayerNorm, Dense to the 65 characters), the same initialization scheme (Keras'
defaults: uniform(-0.05, 0.05) token and position embeddings, Glorot-uniform kernels, zero
biases, LayerNorm gamma 1 beta 0), the same training batches (pynn.datasets.tinyshakespeare
.batches from the same seed), the same optimizer (Adam, same learning rate, betas and
epsilon), the same number of steps and the same validation windows. Prints the validation
loss per character (nats). --compare also trains the pynn model for the same steps, both
starting from the same weights (the pynn model's initial weights copied into the twin), and
prints both losses and their difference (issue 5 target: pynn within 0.05 nats/char of
torch). Runs only where torch imports; it is never a pynn dependency.
"""
import argparse
import math
import pathlib
import sys
import time

import numpy as np

ROOT = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "examples"))
import char_lm  # noqa: E402
from pynn.datasets import tinyshakespeare  # noqa: E402

try:
    import torch
    import torch.nn as nn
    import torch.nn.functional as F
except ImportError:
    torch = None


def _glorot(linear):
    nn.init.xavier_uniform_(linear.weight)
    nn.init.zeros_(linear.bias)
    return linear


if torch is not None:
    class Block(nn.Module):
        """x + MHA(LN(x)) (causal), then + Dense(C)(gelu(Dense(ff)(LN(.)))): TransformerBlock."""

        def __init__(self, C, heads, ff_dim):
            super().__init__()
            self.heads = heads
            self.ln1, self.ln2 = nn.LayerNorm(C, eps=1e-5), nn.LayerNorm(C, eps=1e-5)
            self.q, self.k, self.v, self.o = (_glorot(nn.Linear(C, C)) for _ in range(4))
            self.fc1, self.fc2 = _glorot(nn.Linear(C, ff_dim)), _glorot(nn.Linear(ff_dim, C))

        def forward(self, x):
            Bn, T, C = x.shape
            h = self.ln1(x)

            def split(t):  # (B, T, C) -> (B, heads, T, C / heads)
                return t.view(Bn, T, self.heads, C // self.heads).transpose(1, 2)
            a = F.scaled_dot_product_attention(split(self.q(h)), split(self.k(h)),
                                               split(self.v(h)), is_causal=True)
            x = x + self.o(a.transpose(1, 2).reshape(Bn, T, C))
            return x + self.fc2(F.gelu(self.fc1(self.ln2(x))))

    class CharTransformer(nn.Module):
        def __init__(self, vocab_size, seq_len, width, heads, ff_dim, blocks):
            super().__init__()
            self.tok = nn.Embedding(vocab_size, width)
            self.pos = nn.Embedding(seq_len, width)
            for e in (self.tok, self.pos):
                nn.init.uniform_(e.weight, -0.05, 0.05)
            self.blocks = nn.Sequential(*(Block(width, heads, ff_dim) for _ in range(blocks)))
            self.ln = nn.LayerNorm(width, eps=1e-5)
            self.head = _glorot(nn.Linear(width, vocab_size))

        def forward(self, idx):
            T = idx.shape[1]
            x = self.tok(idx) + self.pos(torch.arange(T, device=idx.device))
            return self.head(self.ln(self.blocks(x)))


def block_weights(p):
    """{torch Block parameter name: array} from a pynn TransformerBlock's params (Keras
    layouts: q/k/v kernels (C, heads, key_dim) -> Linear weight (heads*key_dim, C), output
    kernel (heads, value_dim, C) -> (C, heads*value_dim), Dense kernels (in, out) -> (out, in))."""
    out = {"ln1.weight": p["ln1_gamma"], "ln1.bias": p["ln1_beta"],
           "ln2.weight": p["ln2_gamma"], "ln2.bias": p["ln2_beta"],
           "fc1.weight": p["ff1_kernel"].T, "fc1.bias": p["ff1_bias"],
           "fc2.weight": p["ff2_kernel"].T, "fc2.bias": p["ff2_bias"],
           "o.weight": p["attention_output_kernel"].reshape(-1, p["ff2_bias"].shape[0]).T,
           "o.bias": p["attention_output_bias"]}
    for short, name in (("q", "query"), ("k", "key"), ("v", "value")):
        k = p[f"attention_{name}_kernel"]
        out[f"{short}.weight"] = k.reshape(k.shape[0], -1).T
        out[f"{short}.bias"] = p[f"attention_{name}_bias"].reshape(-1)
    return out


def copy_from_pynn(tmodel, pmodel):
    """Give the torch twin the pynn char model's weights (same initial point for both)."""
    emb, *blocks, ln, dense = pmodel.layers
    w = {"tok.weight": emb.params["token_embeddings"],
         "pos.weight": emb.params["position_embeddings"],
         "ln.weight": ln.params["gamma"], "ln.bias": ln.params["beta"],
         "head.weight": dense.params["kernel"].T, "head.bias": dense.params["bias"]}
    for i, b in enumerate(blocks):
        w.update({f"blocks.{i}.{k}": v for k, v in block_weights(b.params).items()})
    state = tmodel.state_dict()
    assert sorted(state) == sorted(w), (sorted(state), sorted(w))
    tmodel.load_state_dict({k: torch.from_numpy(np.ascontiguousarray(v, np.float32))
                            for k, v in w.items()})


def train_torch(train_ids, val_ids, vocab_size, steps, seed=0, minutes=None, eval_every=200,
                log=print, init_from=None):
    """Train the twin (its own Keras-like init, or init_from a pynn char model's weights);
    (the history of char_lm.train, the model, its predict function)."""
    cfg = char_lm.CONFIG["transformer"]
    torch.manual_seed(seed)
    model = CharTransformer(vocab_size, cfg["seq_len"], cfg["width"], cfg["heads"],
                            cfg["ff_dim"], cfg["blocks"])
    if init_from is not None:
        copy_from_pynn(model, init_from)
    opt = torch.optim.Adam(model.parameters(), lr=cfg["learning_rate"],
                           betas=(char_lm.ADAM["beta_1"], char_lm.ADAM["beta_2"]),
                           eps=char_lm.ADAM["epsilon"])

    def step(x, y):
        model.train()
        logits = model(torch.from_numpy(x.astype(np.int64)))
        loss = F.cross_entropy(logits.reshape(-1, vocab_size), torch.from_numpy(y).reshape(-1))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        return loss.item()

    @torch.no_grad()
    def predict(x):
        model.eval()
        return model(torch.from_numpy(x.astype(np.int64))).numpy()
    return char_lm.train(step, predict, train_ids, val_ids, cfg, steps, minutes, seed,
                         eval_every, log=log), model, predict


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--steps", type=int, default=1000)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=1,
                   help="threads of both (the losses do not depend on it; 1 is kinder to a "
                        "busy machine)")
    p.add_argument("--eval-every", type=int, default=250)
    p.add_argument("--compare", action="store_true", help="train the pynn model too")
    p.add_argument("--data", default=None, help="input.txt or a folder holding it")
    a = p.parse_args(argv)
    if torch is None:
        print("torch is not importable here: nothing to compare against")
        return None
    torch.set_num_threads(a.threads)
    (train_ids, val_ids), vocab = tinyshakespeare.load_data(a.data or char_lm.shared_corpus())
    cfg = char_lm.CONFIG["transformer"]
    print(f"Transformer char model, {a.steps} steps of batch {cfg['batch_size']} x "
          f"{cfg['seq_len']} from seed {a.seed}; torch {torch.__version__}, {a.threads} "
          "thread(s)")
    model = None
    if a.compare:     # both start from the pynn model's initial weights
        import pynn
        pynn.set_num_threads(a.threads)
        pynn.utils.set_random_seed(a.seed)
        model = char_lm.build_model("transformer", len(vocab))
    print("== PyTorch" + (" (from pynn's initial weights)" if a.compare else ""))
    t0 = time.perf_counter()
    hist_t, _, _ = train_torch(train_ids, val_ids, len(vocab), a.steps, a.seed,
                               eval_every=a.eval_every, init_from=model)
    tt = time.perf_counter() - t0
    result = {"torch": hist_t[-1][3], "torch_s": tt}
    if a.compare:
        print("== pynn")
        t0 = time.perf_counter()
        hist_p = char_lm.train(lambda x, y: model.train_on_batch(x, y), model.predict_on_batch,
                               train_ids, val_ids, cfg, a.steps, None, a.seed, a.eval_every)
        result.update(pynn=hist_p[-1][3], pynn_s=time.perf_counter() - t0)
    print(f"\nvalidation loss after {a.steps} steps: torch {result['torch']:.4f} nats/char "
          f"({result['torch_s']:.0f} s)", end="")
    if a.compare:
        d = result["pynn"] - result["torch"]
        print(f", pynn {result['pynn']:.4f} nats/char ({result['pynn_s']:.0f} s); pynn - torch "
              f"= {d:+.4f} (target |pynn - torch| <= 0.05 or pynn lower: "
              f"{'met' if d <= 0.05 else 'NOT met'})")
    else:
        print()
    print(f"(uniform guess: ln {len(vocab)} = {math.log(len(vocab)):.3f})")
    return result


if __name__ == "__main__":
    main()
