"""The sequence examples and benchmarks: their helpers on hand-worked values, tiny smoke runs
of examples/char_lm.py and examples/sine_forecast.py (skipped, with the reason, where a layer
they need is not in pynn.layers), and the PyTorch twin where torch imports."""
import importlib.util
import math
import pathlib
import sys

import numpy as np
import pytest

import pynn
from pynn import layers as L
from pynn.datasets import tinyshakespeare as ts

ROOT = pathlib.Path(__file__).resolve().parents[1]


def load(rel):
    path = ROOT / rel
    name = "_ex_" + path.stem
    if name in sys.modules:
        return sys.modules[name]
    sys.path.insert(0, str(path.parent))
    spec = importlib.util.spec_from_file_location(name, path)
    mod = importlib.util.module_from_spec(spec)
    sys.modules[name] = mod
    spec.loader.exec_module(mod)
    return mod


def need(*names):
    missing = [n for n in names if not hasattr(L, n)]
    if missing:
        pytest.skip(f"pynn.layers has no {', '.join(missing)} in this branch yet")


@pytest.fixture
def char_lm():
    return load("examples/char_lm.py")


@pytest.fixture
def tiny_corpus(tmp_path):
    """A small text (4,000 characters, 27 distinct) written as input.txt."""
    rng = np.random.default_rng(0)
    words = ["to", "be", "or", "not", "that", "is", "the", "question", "whether", "tis",
             "nobler", "in", "mind", "suffer"]
    text = " ".join(rng.choice(words, 900))[:4000] + "\n"
    (tmp_path / "input.txt").write_text(text)
    return tmp_path


# -- char_lm helpers ------------------------------------------------------------------------
def test_nll_exact(char_lm):
    logits = np.zeros((1, 2, 4), np.float32)
    assert char_lm.nll(logits, np.array([[0, 3]])) == pytest.approx(math.log(4), rel=1e-12)
    logits[0, 0] = [0, 0, math.log(2), 0]          # p = (1/5, 1/5, 2/5, 1/5)
    got = char_lm.nll(logits, np.array([[2, 0]]))
    assert got == pytest.approx((-math.log(2 / 5) - math.log(1 / 4)) / 2, rel=1e-6)
    logits[0, 1] = [1000, 0, 0, 0]                 # stable for huge logits
    assert char_lm.nll(logits, np.array([[2, 0]])) == pytest.approx(-math.log(2 / 5) / 2,
                                                                     rel=1e-6)


def test_validation_loss_uniform_is_log_v(char_lm):
    val = np.arange(5000) % 7
    seen = []

    def predict(x):
        seen.append(x.shape)
        assert x.dtype == np.float32
        return np.zeros(x.shape + (7,), np.float32)
    v = char_lm.validation_loss(predict, val, 4, 16, max_batches=3)
    assert v == pytest.approx(math.log(7), rel=1e-12) and seen == [(4, 16)] * 3


def test_generate_feeds_growing_causal_context(char_lm):
    vocab = ts.CharVocab("abcdefgh")
    contexts = []

    def predict(x):   # always predicts the character after the last one given
        contexts.append(x.copy())
        n = len(contexts[-1][0])
        out = np.full((1, n, 8), -1e9, np.float32)
        out[0, np.arange(n), (x[0].astype(int) + 1) % 8] = 0
        return out
    got = char_lm.generate(predict, vocab, "ab", 10, seq_len=4, temperature=0.5)
    assert got == "abcdefghabcd"
    np.testing.assert_array_equal(contexts[0], [[0, 1, 0, 0]])     # left-aligned, padded
    np.testing.assert_array_equal(contexts[1], [[0, 1, 2, 0]])
    np.testing.assert_array_equal(contexts[-1], [[7, 0, 1, 2]])    # the last 4 characters


def test_generate_temperature_samples_from_distribution(char_lm):
    vocab = ts.CharVocab("ab")

    def predict(x):   # p(b) = 0.8 at every position
        return np.broadcast_to(np.log(np.array([0.2, 0.8], np.float32)), x.shape + (2,))
    text = char_lm.generate(predict, vocab, "a", 2000, seq_len=8, temperature=1.0,
                            rng=np.random.default_rng(1))
    assert abs(text[1:].count("b") / 2000 - 0.8) < 0.03
    cold = char_lm.generate(predict, vocab, "a", 200, seq_len=8, temperature=0.05)
    assert cold[1:] == "b" * 200


def test_train_loop_steps_and_evaluations(char_lm):
    ids = np.arange(3000) % 11
    got = []

    def step(x, y):
        got.append((x.copy(), y.copy()))
        assert x.dtype == np.float32 and y.dtype == np.int64 and x.shape == (3, 5)
        return 1.5
    cfg = {"batch_size": 3, "seq_len": 5}
    hist = char_lm.train(step, lambda x: np.zeros(x.shape + (11,), np.float32), ids, ids, cfg,
                         steps=7, eval_every=3, log=lambda s: None)
    assert [h[0] for h in hist] == [3, 6, 7] and len(got) == 7
    assert all(h[2] == 1.5 and h[3] == pytest.approx(math.log(11)) for h in hist)
    want = list(ts.batches(ids, 3, 5, seed=0, steps=7))        # the seeded batches
    for (x, y), (wx, wy) in zip(got, want):
        np.testing.assert_array_equal(x, wx)
        np.testing.assert_array_equal(y, wy)


def test_unknown_model_kind(char_lm):
    with pytest.raises(ValueError, match="transformer"):
        char_lm.build_model("gpt", 65)


# -- smoke runs -------------------------------------------------------------------------------
@pytest.mark.parametrize("kind,names", [("transformer", ("PositionalEmbedding",
                                                         "TransformerBlock",
                                                         "LayerNormalization")),
                                        ("lstm", ("Embedding", "LSTM", "LayerNormalization"))])
def test_char_lm_runs(char_lm, tiny_corpus, kind, names, capsys):
    need(*names)
    hist = char_lm.main(["--model", kind, "--steps", "4", "--eval-every", "2",
                         "--eval-batches", "1", "--sample-chars", "20",
                         "--data", str(tiny_corpus)])
    out = capsys.readouterr().out
    assert [h[0] for h in hist] == [2, 4]
    assert all(np.isfinite(h[2]) and np.isfinite(h[3]) for h in hist)
    assert "validation loss" in out and "sampled characters" in out


def test_char_lm_model_shapes_and_learns(char_lm, tiny_corpus):
    need("PositionalEmbedding", "TransformerBlock", "LayerNormalization")
    (train, val), vocab = ts.load_data(tiny_corpus, download=False)
    pynn.utils.set_random_seed(0)
    cfg = {"seq_len": 16, "batch_size": 8, "width": 32, "heads": 2, "ff_dim": 64,
           "blocks": 1, "learning_rate": 1e-2}
    model = char_lm.build_model("transformer", len(vocab), cfg)
    assert model.output_shape == (None, 16, len(vocab))
    first = char_lm.validation_loss(model.predict_on_batch, val, 8, 16, 2)
    char_lm.train(lambda x, y: model.train_on_batch(x, y), model.predict_on_batch, train, val,
                  cfg, steps=60, eval_every=1000, log=lambda s: None)
    last = char_lm.validation_loss(model.predict_on_batch, val, 8, 16, 2)
    assert last < first - 0.5


@pytest.mark.parametrize("argv", [["--minutes", "0"], ["--steps", "0"], ["--steps", "-3"],
                                  ["--eval-every", "0"], ["--eval-batches", "0"],
                                  ["--threads", "0"], ["--sample-chars", "-5"],
                                  ["--temperature", "0"], ["--steps", "two"],
                                  ["--seed", "-5"], ["--data", "/nonexistent/input.txt"]])
def test_char_lm_refuses_bad_numbers_at_the_command_line(char_lm, argv, capsys):
    # --minutes 0 trained forever; --steps 0 crashed after training nothing; 0 evaluations
    # divided by zero: now argparse's usage message, before any data is read
    with pytest.raises(SystemExit) as e:
        char_lm.main(argv)
    assert e.value.code == 2 and argv[0] in capsys.readouterr().err


def test_bench_options_are_checked(capsys):
    common = load("bench/common.py")
    import argparse
    p = argparse.ArgumentParser(prog="bench")
    assert common.csv_arg(p, "lstm,gru", "--only", allowed=("lstm", "gru")) == ["lstm", "gru"]
    assert common.csv_arg(p, "2,1", "--threads", positive_int=True) == [2, 1]
    for text, kw in (("lstn", dict(allowed=("lstm",))), ("0", dict(positive_int=True)),
                     ("x", dict(positive_int=True)), ("", dict(allowed=("lstm",)))):
        with pytest.raises(SystemExit):
            common.csv_arg(p, text, "--opt", **kw)
    assert "--opt" in capsys.readouterr().err


def test_bench_race_hands_back_paired_rounds(monkeypatch):
    # seq.py's per-round torch/pynn range pairs round i of one contender with round i of the
    # other: the samples are the timed rounds in order, warm-up dropped, medians from them
    common = load("bench/common.py")
    times = iter([0.0, 1.0] * 2 + [0.0, 3.0, 0.0, 4.0, 0.0, 2.0, 0.0, 9.0, 0.0, 1.0, 0.0, 5.0])
    monkeypatch.setattr(common, "calibrate", lambda fn, target_s: 1)
    monkeypatch.setattr(common.time, "perf_counter", lambda: next(times))
    got = {}
    med = common.race({"a": lambda: None, "b": lambda: None}, repeats=3, warmup=1,
                      samples=got)
    assert got == {"a": [3.0, 2.0, 1.0], "b": [4.0, 9.0, 5.0]}
    assert med == {"a": 2.0, "b": 5.0}
    times = iter([0.0, 7.0])
    assert common.race({"a": lambda: None}, repeats=1, warmup=0) == {"a": 7.0}


@pytest.mark.parametrize("argv", [["--seed", "-5"], ["--train", "1"]])
def test_sine_forecast_refuses_bad_arguments_at_the_command_line(argv, capsys):
    # a negative seed failed inside NumPy's generator; --train 1 failed inside fit with a
    # validation_split the user never passed
    ex = load("examples/sine_forecast.py")
    with pytest.raises(SystemExit) as e:
        ex.main(argv)
    assert e.value.code == 2 and argv[0] in capsys.readouterr().err


def test_sine_forecast_runs(capsys):
    need("LSTM")
    ex = load("examples/sine_forecast.py")
    res = ex.main(["--quick"])
    assert np.isfinite(res["mse"]) and "naive" in capsys.readouterr().out


def test_sine_windows():
    ex = load("examples/sine_forecast.py")
    x, y, clean = ex.make_windows(500, np.random.default_rng(0))
    assert x.shape == (500, 40, 1) and y.shape == clean.shape == (500, 1)
    assert x.dtype == np.float32
    assert np.std(y - clean) == pytest.approx(ex.NOISE, rel=0.15)
    assert np.max(np.abs(clean)) <= 1


# -- benchmarks ---------------------------------------------------------------------------------
def test_seq_bench_flops_exact():
    seq = load("bench/seq.py")
    assert seq.flops("lstm") == 3 * 2 * 32 * 64 * (256 + 256) * 4 * 256
    assert seq.flops("gru") == 3 * 2 * 32 * 64 * (256 + 256) * 3 * 256
    assert seq.flops("transformer") == 3 * (2 * 32 * 64 * 128 * 128 * 4 +
                                            2 * 2 * 32 * 64 * 64 * 128 +
                                            2 * 2 * 32 * 64 * 128 * 512)


def torch_twin():
    pytest.importorskip("torch")
    return load("bench/char_lm_torch.py")


def test_torch_twin_is_causal_and_trains(tiny_corpus):
    twin = torch_twin()
    import torch
    (train, val), vocab = ts.load_data(tiny_corpus, download=False)
    hist, model, predict = twin.train_torch(train, val, len(vocab), steps=2, eval_every=1,
                                            log=lambda s: None)
    assert [h[0] for h in hist] == [1, 2] and all(np.isfinite(h[3]) for h in hist)
    x = np.array(train[:64], np.float32)[None]      # (1, 64)
    a = predict(x)
    x2 = x.copy()
    x2[0, 40:] = (x2[0, 40:] + 1) % len(vocab)        # change the future only
    b = predict(x2)
    assert a.shape == (1, 64, len(vocab))
    np.testing.assert_allclose(a[0, :40], b[0, :40], atol=1e-5)
    assert not np.allclose(a[0, 40:], b[0, 40:])
    n = sum(p.numel() for p in model.parameters())
    C, V, T, F = 128, len(vocab), 64, 512
    block = 4 * (C * C + C) + C * F + F + F * C + C + 4 * C
    assert n == V * C + T * C + 2 * block + 2 * C + C * V + V
    assert torch.get_num_threads() >= 1


def test_torch_twin_matches_pynn_with_copied_weights(char_lm, tiny_corpus):
    need("PositionalEmbedding", "TransformerBlock", "LayerNormalization")
    twin = torch_twin()
    import torch
    (train, val), vocab = ts.load_data(tiny_corpus, download=False)
    pynn.utils.set_random_seed(3)
    pm = char_lm.build_model("transformer", len(vocab))
    cfg = char_lm.CONFIG["transformer"]
    tm = twin.CharTransformer(len(vocab), cfg["seq_len"], cfg["width"], cfg["heads"],
                              cfg["ff_dim"], cfg["blocks"])
    twin.copy_from_pynn(tm, pm)
    x = np.stack([train[:64], train[100:164]]).astype(np.float32)    # (2, 64)
    with torch.no_grad():
        want = tm(torch.from_numpy(x.astype(np.int64))).numpy()
    got = pm.predict_on_batch(x)
    assert got.shape == want.shape == (2, 64, len(vocab))
    np.testing.assert_allclose(got, want, atol=2e-4, rtol=1e-3)
    # one Adam step on the same batch moves both the same way
    y = np.stack([train[1:65], train[101:165]]).astype(np.int64)
    pm.train_on_batch(x, y)
    opt = torch.optim.Adam(tm.parameters(), lr=cfg["learning_rate"],
                           betas=(char_lm.ADAM["beta_1"], char_lm.ADAM["beta_2"]),
                           eps=char_lm.ADAM["epsilon"])
    loss = torch.nn.functional.cross_entropy(tm(torch.from_numpy(x.astype(np.int64)))
                                             .reshape(-1, len(vocab)),
                                             torch.from_numpy(y).reshape(-1))
    loss.backward()
    opt.step()
    with torch.no_grad():
        want = tm(torch.from_numpy(x.astype(np.int64))).numpy()
    np.testing.assert_allclose(pm.predict_on_batch(x), want, atol=2e-3, rtol=1e-2)


def test_seq_bench_block_weights_match_torch_layer():
    need("TransformerBlock")
    pytest.importorskip("torch")
    seq = load("bench/seq.py")
    import torch
    lay = pynn.Sequential([L.Input(shape=(9, 16)),
                           L.TransformerBlock(num_heads=4, key_dim=4, ff_dim=24)]).layers[0]
    mod = torch.nn.TransformerEncoderLayer(16, 4, dim_feedforward=24, dropout=0.0,
                                           activation="gelu", batch_first=True,
                                           norm_first=True)
    seq.copy_block_weights(lay, mod)
    x = np.random.default_rng(0).standard_normal((3, 9, 16)).astype(np.float32)
    mask = torch.nn.Transformer.generate_square_subsequent_mask(9)
    with torch.no_grad():
        want = mod(torch.from_numpy(x), src_mask=mask, is_causal=True).numpy()
    np.testing.assert_allclose(lay.forward(x), want, atol=1e-5)
