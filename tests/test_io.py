"""pynn.io: the model file format. A tiny fake model (the methods the model API provides)
tests the format itself; the real-model round trips run where pynn.Sequential exists."""
import json
import os
import stat
import zipfile

import numpy as np
import pytest

import pynn
from pynn import io
from pynn.io import ModelFileError

LAYERS = {"Dense"}     # the fake registry


class FakeOptimizer:
    def __init__(self, lr):
        self.lr = lr
        self.state = {}

    def get_state(self):
        return dict(self.state)

    def set_state(self, d):
        self.state = {k: np.array(v) for k, v in d.items()}


class FakeModel:
    """y = x @ w + b, with an Adam-like optimizer state; enough to exercise the format."""

    def __init__(self, config):
        for layer in config["layers"]:
            if layer["class_name"] not in LAYERS:
                raise ValueError(f"unknown layer class {layer['class_name']!r}")
        self.config = config
        c, oc = config["layers"][0]["config"]["in"], config["layers"][0]["config"]["units"]
        self.weights = [np.zeros((c, oc), np.float32), np.zeros(oc, np.float32)]
        self.optimizer = None
        self.compile_config = None

    def get_config(self):
        return self.config

    def get_weights(self):
        return [w.copy() for w in self.weights]

    def set_weights(self, ws):
        if [w.shape for w in ws] != [w.shape for w in self.weights]:
            raise ValueError("shape mismatch")
        self.weights = [np.array(w, np.float32) for w in ws]

    def get_compile_config(self):
        return self.compile_config

    def compile_from_config(self, cc):
        self.compile_config = cc
        self.optimizer = FakeOptimizer(cc["optimizer"]["learning_rate"])

    def predict(self, x):
        return x @ self.weights[0] + self.weights[1]

    def train_step(self, x, y):
        """One Adam step on mse, deterministic: enough to check resume-exactly."""
        st = self.optimizer.state
        t = st.setdefault("iterations", np.array(0, np.int64))   # a 0-d array
        st["iterations"] = t + 1
        err = self.predict(x) - y
        grads = [x.T @ err / len(x), err.mean(0)]
        for i, (w, g) in enumerate(zip(self.weights, grads)):
            m = st.setdefault(f"m/{i}", np.zeros_like(w))
            v = st.setdefault(f"v/{i}", np.zeros_like(w))
            m[...] = 0.9 * m + 0.1 * g
            v[...] = 0.999 * v + 0.001 * g * g
            w -= np.float32(self.optimizer.lr) * m / (np.sqrt(v) + np.float32(1e-7))


def fake_from_config(cfg, backend=None):
    if not isinstance(cfg, dict) or not isinstance(cfg.get("layers"), list):
        raise ValueError("bad config")
    return FakeModel(cfg)


@pytest.fixture(autouse=True)
def fake_registry(monkeypatch):
    monkeypatch.setattr(io, "_model_from_config", fake_from_config)


def make_model(seed=0, c=5, oc=3):
    m = FakeModel({"name": "fake", "layers": [{"class_name": "Dense",
                                                "config": {"in": c, "units": oc}}]})
    rng = np.random.default_rng(seed)
    m.set_weights([rng.standard_normal((c, oc)).astype(np.float32),
                   rng.standard_normal(oc).astype(np.float32)])
    m.compile_from_config({"optimizer": {"class_name": "Adam", "learning_rate": 0.01},
                           "loss": "mse", "metrics": []})
    x, y = rng.standard_normal((8, c)).astype(np.float32), rng.standard_normal((8, oc))
    for _ in range(3):
        m.train_step(x, y.astype(np.float32))
    return m, x, y.astype(np.float32)


def test_round_trip_predict_and_resume(tmp_path):
    m, x, y = make_model()
    p = tmp_path / "m.pynn"
    io.save_model(m, p)
    m2 = io.load_model(p)
    np.testing.assert_array_equal(m2.predict(x), m.predict(x))
    assert m2.get_compile_config() == m.get_compile_config()
    assert sorted(m2.optimizer.state) == sorted(m.optimizer.state)
    for k, v in m.optimizer.state.items():
        assert m2.optimizer.state[k].dtype == v.dtype and m2.optimizer.state[k].shape == v.shape
        np.testing.assert_array_equal(m2.optimizer.state[k], v)
    assert m2.optimizer.state["iterations"].shape == () and m2.optimizer.state["iterations"] == 3
    for _ in range(3):
        m.train_step(x, y)
        m2.train_step(x, y)
    for a, b in zip(m.get_weights(), m2.get_weights()):
        np.testing.assert_array_equal(a, b)          # training resumed exactly


def test_file_layout_is_plain_npz(tmp_path):
    m, _, _ = make_model()
    p = tmp_path / "m.pynn"
    io.save_model(m, p)
    with np.load(p, allow_pickle=False) as z:       # readable by plain numpy, no pickle
        assert sorted(z.files) == ["meta", "o000", "o001", "o002", "o003", "o004", "w000",
                                   "w001"]
        doc = json.loads(z["meta"].tobytes())
        np.testing.assert_array_equal(z["w000"], m.get_weights()[0])
    assert doc["format"] == "pynn.model" and doc["version"] == 1 and doc["kind"] == "model"
    assert [e["name"] for e in doc["optimizer_state"]] == list(m.optimizer.state)
    assert os.listdir(tmp_path) == ["m.pynn"]        # no temp file left


def test_compile_false_and_no_optimizer(tmp_path):
    m, x, _ = make_model()
    io.save_model(m, tmp_path / "a", include_optimizer=False)
    m2 = io.load_model(tmp_path / "a")
    assert m2.optimizer.state == {}
    m3 = io.load_model(tmp_path / "a", compile=False)
    assert m3.optimizer is None
    np.testing.assert_array_equal(m3.predict(x), m.predict(x))


def test_weights_round_trip_and_mismatch(tmp_path):
    m, x, _ = make_model(seed=1)
    io.save_weights(m, tmp_path / "w")
    other, _, _ = make_model(seed=2)
    io.load_weights(other, tmp_path / "w")
    np.testing.assert_array_equal(other.predict(x), m.predict(x))
    with pytest.raises(ModelFileError, match="weights only"):
        io.load_model(tmp_path / "w")
    io.save_model(m, tmp_path / "full")
    io.load_weights(other, tmp_path / "full")        # a full file also gives weights
    wrong, _, _ = make_model(c=4)
    with pytest.raises(ModelFileError, match=r"shapes \[\(5, 3\), \(3,\)\]"):
        io.load_weights(wrong, tmp_path / "w")


def test_crash_mid_save_keeps_old_file(tmp_path, monkeypatch):
    m, x, _ = make_model(seed=3)
    p = tmp_path / "m.pynn"
    io.save_model(m, p)
    before = p.read_bytes()
    m2, _, _ = make_model(seed=4)
    real = np.lib.format.write_array

    def dying(fp, array, *a, **k):
        fp.write(b"partial")
        raise KeyboardInterrupt("killed mid-save")
    monkeypatch.setattr(np.lib.format, "write_array", dying)
    with pytest.raises(KeyboardInterrupt):
        io.save_model(m2, p)
    monkeypatch.setattr(np.lib.format, "write_array", real)
    monkeypatch.setattr(os, "replace", lambda *a: (_ for _ in ()).throw(OSError("disk gone")))
    with pytest.raises(OSError, match="disk gone"):
        io.save_model(m2, p)
    assert p.read_bytes() == before and os.listdir(tmp_path) == ["m.pynn"]
    monkeypatch.undo()
    monkeypatch.setattr(io, "_model_from_config", fake_from_config)
    np.testing.assert_array_equal(io.load_model(p).predict(x), m.predict(x))


def test_overwrite_false(tmp_path):
    m, x, _ = make_model(seed=5)
    p = tmp_path / "m.pynn"
    io.save_model(m, p, overwrite=False)
    before = p.read_bytes()
    m2, _, _ = make_model(seed=6)
    for save in (io.save_model, io.save_weights):
        with pytest.raises(FileExistsError, match="overwrite=True"):
            save(m2, p, overwrite=False)
    assert p.read_bytes() == before and os.listdir(tmp_path) == ["m.pynn"]
    io.save_model(m2, p)
    np.testing.assert_array_equal(io.load_model(p).predict(x), m2.predict(x))


def test_save_into_a_missing_folder_or_over_a_directory_names_the_path(tmp_path):
    m, _, _ = make_model(seed=5)
    for save in (io.save_model, io.save_weights):
        with pytest.raises(FileNotFoundError, match=r"nope.*does not exist") as e:
            save(m, tmp_path / "nope" / "m.pynn")
        assert ".tmp" not in str(e.value)
        (tmp_path / "d.pynn").mkdir(exist_ok=True)
        with pytest.raises(IsADirectoryError, match="is a directory"):
            save(m, tmp_path / "d.pynn")
    assert sorted(os.listdir(tmp_path)) == ["d.pynn"] and not os.listdir(tmp_path / "d.pynn")


def test_save_through_a_symlink_and_never_over_a_special_file(tmp_path):
    # the rename of the temp file replaced whatever `path` was: a symlink became a plain file
    # (its target kept the old model), and as root `save('/dev/null')` replaced the device
    m, x, _ = make_model(seed=6)
    real, link = tmp_path / "real.pynn", tmp_path / "link.pynn"
    real.write_bytes(b"old")
    os.symlink("real.pynn", link)
    io.save_model(m, link)
    assert os.path.islink(link)
    np.testing.assert_array_equal(io.load_model(real).predict(x), m.predict(x))
    fifo = tmp_path / "pipe.pynn"
    os.mkfifo(fifo)
    for save in (io.save_model, io.save_weights):
        with pytest.raises(OSError, match="not a regular file"):
            save(m, fifo)
    assert stat.S_ISFIFO(os.stat(fifo).st_mode)
    with pytest.raises(ValueError, match="empty path"):
        io.save_model(m, "")
    io.save_model(m, os.fsencode(tmp_path / "bytes.pynn"))   # a bytes path, as open() takes
    assert sorted(os.listdir(tmp_path)) == ["bytes.pynn", "link.pynn", "pipe.pynn", "real.pynn"]


def test_load_from_a_pipe_is_refused_not_blocked(tmp_path):
    # open() on a FIFO waits for a writer: load_model hung forever
    fifo = tmp_path / "pipe.pynn"
    os.mkfifo(fifo)
    with pytest.raises(io.ModelFileError, match="not a regular file"):
        io.load_model(fifo)


def test_save_rejects_non_numeric(tmp_path):
    m, _, _ = make_model()
    m.weights[1] = np.array(["a", "b", "c"])
    with pytest.raises(TypeError, match="numeric"):
        io.save_model(m, tmp_path / "m")
    assert os.listdir(tmp_path) == []


# -- hostile and damaged files ----------------------------------------------------------------
@pytest.fixture
def saved(tmp_path):
    m, x, _ = make_model(c=4, oc=2)
    p = tmp_path / "good.pynn"
    io.save_model(m, p)
    return p, m, x


def loads_same_or_fails_clearly(p, m, x):
    try:
        m2 = io.load_model(p)
    except ModelFileError as e:
        assert str(p) in str(e)
        return False
    np.testing.assert_array_equal(m2.predict(x), m.predict(x))
    for k, v in m.optimizer.state.items():
        np.testing.assert_array_equal(m2.optimizer.state[k], v)
    return True


def test_truncated_files(saved, tmp_path):
    p, m, x = saved
    blob = p.read_bytes()
    bad = tmp_path / "t.pynn"
    for n in list(range(0, len(blob), 7)) + [len(blob) - 1]:
        bad.write_bytes(blob[:n])
        with pytest.raises(ModelFileError):
            io.load_model(bad)


def member_data_ranges(path):
    """Byte ranges of every member's contents (the .npy header and data)."""
    blob = open(path, "rb").read()
    with zipfile.ZipFile(path) as zf:
        out = []
        for i in zf.infolist():
            o = i.header_offset
            start = o + 30 + int.from_bytes(blob[o + 26:o + 28], "little") \
                + int.from_bytes(blob[o + 28:o + 30], "little")
            out.append(range(start, start + i.file_size))
    return out


def test_every_byte_bit_flipped(saved, tmp_path):
    p, m, x = saved
    blob = p.read_bytes()
    ranges = member_data_ranges(p)
    assert sum(len(r) for r in ranges) > len(blob) // 2
    bad = tmp_path / "f.pynn"
    rng = np.random.default_rng(0)
    for i in range(len(blob)):
        data = bytearray(blob)
        data[i] ^= 1 << int(rng.integers(8))
        bad.write_bytes(bytes(data))
        if loads_same_or_fails_clearly(bad, m, x):
            # only zip bookkeeping nobody reads (timestamps, local-header copies of sizes)
            # may flip unnoticed; never a byte of an array, its header, or the JSON
            assert not any(i in r for r in ranges), f"flip at byte {i} went unnoticed"


def test_random_files(tmp_path):
    rng = np.random.default_rng(1)
    bad = tmp_path / "r.pynn"
    for n in (1, 22, 100, 5000):
        for prefix in (b"", b"PK\x03\x04", b"PK\x05\x06"):
            bad.write_bytes(prefix + rng.integers(0, 256, n, dtype=np.uint8).tobytes())
            with pytest.raises(ModelFileError):
                io.load_model(bad)


def test_missing_file(tmp_path):
    with pytest.raises(FileNotFoundError):
        io.load_model(tmp_path / "none")


def write_npz(p, meta=None, **arrays):
    if meta is not None:
        arrays["meta"] = np.frombuffer(json.dumps(meta).encode(), np.uint8)
    with open(p, "wb") as f:
        np.savez(f, **arrays)


def good_doc(p):
    with np.load(p, allow_pickle=False) as z:
        return json.loads(z["meta"].tobytes()), {k: z[k] for k in z.files if k != "meta"}


def test_object_array_is_refused(saved, tmp_path):
    p, _, _ = saved
    doc, arrays = good_doc(p)
    arrays["w000"] = np.array([{"evil": 1}, None], dtype=object)   # a pickle inside
    bad = tmp_path / "obj.pynn"
    write_npz(bad, doc, **arrays)
    with pytest.raises(ModelFileError, match="numeric arrays only"):
        io.load_model(bad)


@pytest.mark.parametrize("case", ["unknown layer", "not a dict", "wrong format", "version",
                                  "missing weight", "extra array", "shape lie", "sha256",
                                  "no meta", "meta not json", "deep json", "weights kind",
                                  "compile config"])
def test_hostile_headers(saved, tmp_path, case):
    p, _, _ = saved
    doc, arrays = good_doc(p)
    meta = doc
    if case == "unknown layer":
        doc["config"]["layers"][0]["class_name"] = "os.system"
    elif case == "not a dict":
        meta = [1, 2]
    elif case == "wrong format":
        doc["format"] = "keras"
    elif case == "version":
        doc["version"] = 99
    elif case == "missing weight":
        del arrays["w001"]
    elif case == "extra array":
        arrays["x"] = np.zeros(3)
    elif case == "shape lie":
        doc["weights"][0]["shape"] = [2, 4]
    elif case == "sha256":
        arrays["w000"] = arrays["w000"] + 1
    elif case == "no meta":
        meta = None
    elif case == "compile config":
        doc["compile_config"] = "adam"
    elif case == "weights kind":
        doc["weights"] = {"a": 1}
    bad = tmp_path / "h.pynn"
    write_npz(bad, meta, **arrays)
    if case in ("meta not json", "deep json"):
        text = b"{nope" if case == "meta not json" else b"[" * 100000 + b"]" * 100000
        arrays["meta"] = np.frombuffer(text, np.uint8)
        with open(bad, "wb") as f:
            np.savez(f, **arrays)
    with pytest.raises(ModelFileError) as e:
        io.load_model(bad)
    assert str(bad) in str(e.value)


def test_lying_npy_header_allocates_nothing(tmp_path):
    """A member declaring a 10^15-element array: refused before any allocation."""
    bad = tmp_path / "big.pynn"
    header = np.lib.format.header_data_from_array_1_0(np.zeros(1, np.float32))
    header["shape"] = (10**15,)
    with zipfile.ZipFile(bad, "w") as zf:
        with zf.open("w000.npy", "w") as f:
            np.lib.format.write_array_header_1_0(f, header)
            f.write(b"\0" * 16)
        zf.writestr("meta.npy", b"")
    with pytest.raises(ModelFileError, match="declares shape"):
        io.load_model(bad)


def test_compressed_member_refused(saved, tmp_path):
    p, _, _ = saved
    doc, arrays = good_doc(p)
    bad = tmp_path / "z.pynn"
    arrays["meta"] = np.frombuffer(json.dumps(doc).encode(), np.uint8)
    with open(bad, "wb") as f:
        np.savez_compressed(f, **arrays)
    with pytest.raises(ModelFileError, match="stored"):
        io.load_model(bad)


# -- the real model (after the model API lands) ----------------------------------------------
def real_mlp():
    if not hasattr(pynn, "Sequential"):
        pytest.skip("pynn.Sequential not available in this tree")
    pynn.utils.set_random_seed(0)
    model = pynn.Sequential([pynn.layers.Flatten(input_shape=(4, 4)),
                             pynn.layers.Dense(8, activation="relu"),
                             pynn.layers.Dropout(0.2),
                             pynn.layers.Dense(3, activation="softmax")])
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy",
                  metrics=["accuracy"])
    rng = np.random.default_rng(0)
    x = rng.random((32, 4, 4)).astype(np.float32)
    y = rng.integers(0, 3, 32)
    model.fit(x, y, epochs=2, batch_size=8, verbose=0, shuffle=False)
    return model, x, y


def test_real_model_round_trip_and_resume(tmp_path, monkeypatch):
    monkeypatch.undo()                      # the real registry
    model, x, y = real_mlp()
    p = tmp_path / "mlp.pynn"
    model.save(p)                                   # the public names, through pynn.io
    m2 = pynn.models.load_model(p)
    assert isinstance(m2, pynn.Sequential)
    np.testing.assert_array_equal(m2.predict(x, verbose=0), model.predict(x, verbose=0))
    for a, b in ((model, m2),):
        pynn.utils.set_random_seed(1)
        a.fit(x, y, epochs=1, batch_size=8, verbose=0, shuffle=False)
        pynn.utils.set_random_seed(1)
        b.fit(x, y, epochs=1, batch_size=8, verbose=0, shuffle=False)
    for wa, wb in zip(model.get_weights(), m2.get_weights()):
        np.testing.assert_array_equal(wa, wb)
    model.save_weights(tmp_path / "w")
    fresh, _, _ = real_mlp()
    fresh.load_weights(tmp_path / "w")
    np.testing.assert_array_equal(fresh.predict(x, verbose=0), model.predict(x, verbose=0))


def test_real_registry_refuses_unknown_layer(tmp_path, monkeypatch):
    monkeypatch.undo()
    model, _, _ = real_mlp()
    p = tmp_path / "mlp.pynn"
    io.save_model(model, p)
    doc, arrays = good_doc(p)
    text = json.dumps(doc).replace('"Dense"', '"subprocess.Popen"', 1)
    arrays["meta"] = np.frombuffer(text.encode(), np.uint8)
    with open(p, "wb") as f:
        np.savez(f, **arrays)
    with pytest.raises(ModelFileError, match="cannot be rebuilt"):
        io.load_model(p)


def test_altered_config_asking_for_huge_layers_allocates_nothing(tmp_path, monkeypatch):
    """a file whose config was altered (valid zip, valid JSON) to ask for a Dense of 2**22
    units (2**26 values, 256 MB): refused by add_weight before that weight is allocated or
    initialized, as the file holds only the small model's weight values"""
    monkeypatch.undo()
    model, _, _ = real_mlp()
    p = tmp_path / "mlp.pynn"
    io.save_model(model, p)
    doc, arrays = good_doc(p)
    layer = next(c for c in doc["config"]["config"]["layers"] if c["class_name"] == "Dense")
    layer["config"]["units"] = 2**22
    arrays["meta"] = np.frombuffer(json.dumps(doc).encode(), np.uint8)
    with open(p, "wb") as f:
        np.savez(f, **arrays)
    calls = []
    orig = np.ascontiguousarray
    monkeypatch.setattr(pynn.layers.base.np, "ascontiguousarray",
                        lambda a, *k, **kw: calls.append(np.size(a)) or orig(a, *k, **kw))
    with pytest.raises(ModelFileError, match=r"more than the [\d,]+ left of the [\d,]+ "
                                             r"weight values the file holds"):
        io.load_model(p)
    assert max(calls, default=0) < 2**20                  # no huge weight was initialized
    # the budget holds only while loading: the same architecture builds as usual
    assert pynn.layers.Dense(3)._build_for((None, 4), pynn.ops.get_backend(), np.float32)


@pytest.mark.parametrize("opt", ["adam", "sgd", "rmsprop"])
def test_compiled_but_untrained_model_round_trip(tmp_path, monkeypatch, opt):
    # saved before the first step: the optimizer has no state yet, and loading then training
    # gives the same weights as training the original
    monkeypatch.undo()
    rng = np.random.default_rng(0)
    x = rng.standard_normal((16, 4)).astype(np.float32)
    y = rng.integers(0, 3, 16)
    pynn.utils.set_random_seed(3)
    model = pynn.Sequential([pynn.layers.Dense(3, activation="softmax", input_shape=(4,))])
    model.compile(optimizer=opt, loss="sparse_categorical_crossentropy")
    model.save(tmp_path / "u.pynn")
    m2 = pynn.models.load_model(tmp_path / "u.pynn")
    assert m2.optimizer.iterations == 0
    for m in (model, m2):
        m.fit(x, y, epochs=1, batch_size=8, verbose=0, shuffle=False)
    for wa, wb in zip(model.get_weights(), m2.get_weights()):
        np.testing.assert_array_equal(wa, wb)
    assert m2.optimizer.iterations == 2


def test_transformer_block_dropout_resumes_exactly(tmp_path, monkeypatch):
    # the block's residual dropouts draw their masks from its seed and step, both saved
    monkeypatch.undo()
    rng = np.random.default_rng(0)
    x, y = rng.integers(0, 30, (32, 8)), rng.integers(0, 3, 32)
    i = pynn.Input(shape=(8,))
    h = pynn.layers.TransformerBlock(2, dropout=0.3)(pynn.layers.Embedding(30, 8)(i))
    m = pynn.Model(i, pynn.layers.Dense(3, activation="softmax")(pynn.layers.Flatten()(h)))
    m.compile("adam", "sparse_categorical_crossentropy")
    m.fit(x, y, epochs=1, batch_size=16, verbose=0)
    m.save(tmp_path / "t.pynn")
    m2 = pynn.models.load_model(tmp_path / "t.pynn")
    for model in (m, m2):
        model.fit(x, y, epochs=1, batch_size=16, shuffle=False, verbose=0)
    for wa, wb in zip(m.get_weights(), m2.get_weights()):
        np.testing.assert_array_equal(wa, wb)


@pytest.mark.parametrize("include_optimizer", [True, False])
def test_uncompiled_model_round_trip(tmp_path, monkeypatch, include_optimizer):
    # built for inference, never compiled (as Keras saves one): it loads uncompiled, predicts
    # the same, and compiles and trains after loading
    monkeypatch.undo()
    rng = np.random.default_rng(0)
    x = rng.standard_normal((5, 6, 6, 1)).astype(np.float32)
    model = pynn.Sequential([pynn.Input(shape=(6, 6, 1)), pynn.layers.Conv2D(2, 3),
                             pynn.layers.GlobalAveragePooling2D(), pynn.layers.Dense(2)])
    p = model.predict(x, verbose=0)
    assert model.get_compile_config() is None
    model.save(tmp_path / "u.pynn", include_optimizer=include_optimizer)
    m2 = pynn.models.load_model(tmp_path / "u.pynn")
    assert not m2.compiled and m2.get_compile_config() is None
    np.testing.assert_array_equal(m2.predict(x, verbose=0), p)
    m2.compile("sgd", "mse")
    m2.fit(x, np.zeros((5, 2), np.float32), epochs=1, verbose=0)


def test_trained_plain_sgd_round_trip(tmp_path, monkeypatch):
    # SGD without momentum keeps no slots, only its step count: after a step, save and
    # load, the loaded model could not train (the optimizer had no size to check)
    monkeypatch.undo()
    rng = np.random.default_rng(0)
    x, y = rng.standard_normal((16, 4)).astype(np.float32), rng.standard_normal((16, 1))
    sched = pynn.optimizers.schedules.ExponentialDecay(0.1, decay_steps=1, decay_rate=0.5)
    model = pynn.Sequential([pynn.Input(shape=(4,)), pynn.layers.Dense(1)])
    model.compile(pynn.optimizers.SGD(sched), "mse")   # the step count sets the rate
    model.fit(x, y, epochs=1, batch_size=8, verbose=0)
    model.save(tmp_path / "s.pynn")
    m2 = pynn.models.load_model(tmp_path / "s.pynn")
    assert m2.optimizer.iterations == 2
    for m in (model, m2):
        m.fit(x, y, epochs=1, batch_size=8, verbose=0, shuffle=False)
        m.train_on_batch(x, y)
    for wa, wb in zip(model.get_weights(), m2.get_weights()):
        np.testing.assert_array_equal(wa, wb)
    assert m2.optimizer.iterations == 5


def test_saved_file_mode_follows_the_umask(tmp_path):
    # the saved file gets 0666 & ~umask (mkstemp made the temp file, and so every saved
    # model, 0600), and a file replaced keeps its own mode
    m = pynn.Sequential([pynn.layers.Input(shape=(3,)), pynn.layers.Dense(2)])
    m.compile("sgd", "mse")
    old = os.umask(0o022)
    try:
        m.save(str(tmp_path / "a.pynn"))
        m.save_weights(str(tmp_path / "w.weights.npz"))
    finally:
        os.umask(old)
    for name in ("a.pynn", "w.weights.npz"):
        assert stat.S_IMODE(os.stat(tmp_path / name).st_mode) == 0o644, name
    os.chmod(tmp_path / "a.pynn", 0o600)
    m.save(str(tmp_path / "a.pynn"))
    assert stat.S_IMODE(os.stat(tmp_path / "a.pynn").st_mode) == 0o600



# -- custom_objects: the user's own Loss and Metric classes ------------------------------------
class ScaledMSE(pynn.losses.Loss):
    """mse times `factor`: a constructor argument get_config must carry."""
    kernel = "mse"

    def __init__(self, factor=1.0, name=None):
        super().__init__(False, name or "scaled_mse")
        self.factor = float(factor)

    def forward(self, ops, y_pred, y_true, sample_weight=None, fused=False):
        return self.factor * super().forward(ops, y_pred, y_true, sample_weight, fused)

    def backward(self, ops, y_pred, y_true, sample_weight=None, fused=False, out=None):
        out = super().backward(ops, y_pred, y_true, sample_weight, fused, out)
        out *= self.factor
        return out

    def get_config(self):
        return {"name": self.name, "factor": self.factor}


class MaxAbsError(pynn.metrics.Metric):
    """Largest |error| seen, clipped at `cap`."""

    def __init__(self, cap=10.0, name=None):
        self.cap = float(cap)
        super().__init__(name or "max_abs_error")

    def reset_state(self):
        self.value = 0.0

    def update(self, ops, y_pred, y_true, sample_weight=None):
        self.value = min(self.cap, max(self.value, float(np.max(np.abs(y_pred - y_true)))))

    def result(self):
        return self.value

    def get_config(self):
        return {"name": self.name, "cap": self.cap}


def own_compiled(tmp_path, loss, metrics=()):
    rng = np.random.default_rng(0)
    x = rng.standard_normal((16, 3)).astype(np.float32)
    y = rng.standard_normal((16, 2)).astype(np.float32)
    pynn.utils.set_random_seed(0)
    m = pynn.Sequential([pynn.layers.Input(shape=(3,)), pynn.layers.Dense(2)])
    m.compile("adam", loss, metrics=list(metrics))
    m.fit(x, y, epochs=1, batch_size=8, verbose=0, shuffle=False)
    p = tmp_path / "own.pynn"
    m.save(p)
    return m, p, x, y


def test_own_loss_class_round_trip(tmp_path, monkeypatch):
    monkeypatch.undo()
    m, p, x, y = own_compiled(tmp_path, ScaledMSE(factor=3.0))
    m2 = pynn.models.load_model(p, custom_objects={"ScaledMSE": ScaledMSE})
    assert type(m2.loss) is ScaledMSE and m2.loss.factor == 3.0
    assert m2.loss.get_config() == m.loss.get_config()
    np.testing.assert_allclose(m2.evaluate(x, y, verbose=0), m.evaluate(x, y, verbose=0))
    for a in (m, m2):                       # training resumes exactly, through the own loss
        pynn.utils.set_random_seed(1)
        a.fit(x, y, epochs=1, batch_size=8, verbose=0, shuffle=False)
    for wa, wb in zip(m.get_weights(), m2.get_weights()):
        np.testing.assert_array_equal(wa, wb)
    # io.load_model directly, with a layer class alongside (each goes to its own registry)
    m3 = io.load_model(p, custom_objects={"ScaledMSE": ScaledMSE, "Dense": pynn.layers.Dense})
    assert type(m3.loss) is ScaledMSE and m3.loss.factor == 3.0


def test_own_metric_class_round_trip(tmp_path, monkeypatch):
    monkeypatch.undo()
    m, p, x, y = own_compiled(tmp_path, "mse", [MaxAbsError(cap=0.25), "mae"])
    m2 = pynn.models.load_model(p, custom_objects={"MaxAbsError": MaxAbsError})
    assert type(m2.metrics[0]) is MaxAbsError and m2.metrics[0].cap == 0.25
    assert m2.metrics[0].get_config() == {"name": "max_abs_error", "cap": 0.25}
    assert isinstance(m2.metrics[1], pynn.metrics.MeanAbsoluteError)
    np.testing.assert_allclose(m2.evaluate(x, y, verbose=0), m.evaluate(x, y, verbose=0))
    # both together
    m, p, x, y = own_compiled(tmp_path, ScaledMSE(2.0), [MaxAbsError(cap=5.0)])
    m2 = pynn.models.load_model(p, custom_objects={"ScaledMSE": ScaledMSE,
                                                   "MaxAbsError": MaxAbsError})
    assert (m2.loss.factor, m2.metrics[0].cap) == (2.0, 5.0)


def test_own_loss_or_metric_without_custom_objects(tmp_path, monkeypatch):
    monkeypatch.undo()
    _, p, _, _ = own_compiled(tmp_path, ScaledMSE(3.0))
    with pytest.raises(ModelFileError, match=r"unknown loss class 'ScaledMSE'.*custom_objects="
                                             r"\{'ScaledMSE': ScaledMSE\}"):
        pynn.models.load_model(p)
    m = pynn.models.load_model(p, compile=False)        # the architecture needs no loss
    assert not m.compiled
    with pytest.raises(ModelFileError, match="unknown loss class 'ScaledMSE'"):
        pynn.models.load_model(p, custom_objects={"MaxAbsError": MaxAbsError})
    _, p, _, _ = own_compiled(tmp_path, "mse", [MaxAbsError()])
    with pytest.raises(ModelFileError, match=r"unknown metric class 'MaxAbsError'.*"
                                             r"custom_objects="):
        pynn.models.load_model(p)
    # known only within the load that was given them
    pynn.models.load_model(p, custom_objects={"MaxAbsError": MaxAbsError})
    with pytest.raises(ModelFileError, match="custom_objects"):
        pynn.models.load_model(p)


def test_custom_objects_wrong_types(tmp_path, monkeypatch):
    monkeypatch.undo()
    _, p, _, _ = own_compiled(tmp_path, ScaledMSE(3.0))

    def my_loss(y_true, y_pred):
        return 0.0

    for bad, extra in ((int, ""), (ScaledMSE(3.0), ""), (pynn.optim.Adam(), ""),
                       (my_loss, "no plain-function losses or metrics")):
        with pytest.raises(TypeError, match="pynn Layer, .* or LearningRateSchedule "
                                            "subclasses.*" + extra):
            pynn.models.load_model(p, custom_objects={"ScaledMSE": bad})
    with pytest.raises(TypeError, match="keys are class names"):
        pynn.models.load_model(p, custom_objects={ScaledMSE: ScaledMSE})
    with pytest.raises(TypeError, match="must be a dict"):
        pynn.models.load_model(p, custom_objects=[ScaledMSE])
    with pytest.raises(TypeError, match="Loss subclasses"):
        with pynn.losses.custom_objects({"x": MaxAbsError}):
            pass
    with pytest.raises(TypeError, match="Metric subclasses"):
        with pynn.metrics.custom_objects({"x": ScaledMSE}):
            pass


def test_own_loss_file_holds_no_code(tmp_path, monkeypatch):
    # the own loss is saved as its class name and config (JSON), never pickled
    monkeypatch.undo()
    _, p, _, _ = own_compiled(tmp_path, ScaledMSE(3.0), [MaxAbsError(cap=2.0)])
    doc, _ = good_doc(p)
    assert doc["compile_config"]["loss"] == {"class_name": "ScaledMSE",
                                             "config": {"name": "scaled_mse", "factor": 3.0}}
    assert doc["compile_config"]["metrics"] == [
        {"class_name": "MaxAbsError", "config": {"name": "max_abs_error", "cap": 2.0}}]


def test_own_optimizer_class_round_trip(tmp_path, monkeypatch):
    """An Optimizer subclass of the user's: saved by name and config, loaded with
    custom_objects (its state too, so training resumes exactly)."""
    monkeypatch.undo()
    class SlowAdam(pynn.optim.Adam):
        def __init__(self, slowdown=2.0, **kw):
            self.slowdown = float(slowdown)
            super().__init__(**kw)

        def get_config(self):
            return {**super().get_config(), "slowdown": self.slowdown}

    m2 = _trained_saved_reloaded(tmp_path, SlowAdam(slowdown=3.0, learning_rate=0.01), [],
                                 "unknown optimizer class 'SlowAdam'.*custom_obj",
                                 {"SlowAdam": SlowAdam})
    assert type(m2.optimizer) is SlowAdam and m2.optimizer.slowdown == 3.0


def _trained_saved_reloaded(tmp_path, optimizer, metrics, missing, custom_objects):
    """A small model trained one epoch with `optimizer`, saved, refused on load without
    custom_objects (error matching `missing`), loaded with them; one more epoch of both
    must give the same weights. Returns the loaded model."""
    rng = np.random.default_rng(0)
    x, y = rng.standard_normal((32, 4)), rng.standard_normal((32, 2))
    pynn.utils.set_random_seed(0)
    m = pynn.Sequential([pynn.layers.Dense(2, input_shape=(4,))])
    m.compile(optimizer, "mse", metrics=metrics)
    m.fit(x, y, epochs=1, verbose=0)
    p = tmp_path / "m.pynn"
    m.save(p)
    with pytest.raises(io.ModelFileError, match=missing):
        pynn.models.load_model(p)
    m2 = pynn.models.load_model(p, custom_objects=custom_objects)
    m.fit(x, y, epochs=1, verbose=0, shuffle=False)
    m2.fit(x, y, epochs=1, verbose=0, shuffle=False)
    np.testing.assert_array_equal(m.get_weights()[0], m2.get_weights()[0])
    return m2


def test_own_schedule_and_shape_accuracy_round_trip(tmp_path, monkeypatch):
    """A learning-rate schedule of the user's loads with custom_objects; the 'accuracy' a
    regression loss resolves to round-trips as a Metric object too."""
    monkeypatch.undo()

    class Warm(pynn.optim.schedules.LearningRateSchedule):
        def __init__(self, peak=0.01):
            self.peak = float(peak)

        def __call__(self, step):
            return self.peak * min(1.0, (step + 1) / 10)

        def get_config(self):
            return {"peak": self.peak}

    acc = pynn.metrics.get("accuracy", pynn.losses.get("mse"))
    m2 = _trained_saved_reloaded(tmp_path, pynn.optim.Adam(Warm(0.02)), [acc],
                                 "unknown learning-rate schedule class 'Warm'", {"Warm": Warm})
    assert isinstance(m2.optimizer._lr, Warm) and m2.optimizer._lr.peak == 0.02
    assert type(m2.metrics[0]) is type(acc)


def test_loaded_optimizer_state_follows_the_loaded_layers(tmp_path, monkeypatch):
    """After load_model, swapping a layer is refused as it is without the save/load."""
    monkeypatch.undo()
    rng = np.random.default_rng(0)
    x, y = rng.standard_normal((16, 4)), rng.integers(0, 3, 16)
    m = pynn.Sequential([pynn.layers.Dense(5, activation="relu", input_shape=(4,)),
                         pynn.layers.Dense(3, activation="softmax")])
    m.compile("adam", "sparse_categorical_crossentropy")
    m.fit(x, y, epochs=1, verbose=0)
    m.save(tmp_path / "m.pynn")
    m2 = pynn.models.load_model(tmp_path / "m.pynn")
    m2.fit(x, y, epochs=1, verbose=0)
    m2.pop()
    m2.add(pynn.layers.Dense(3, activation="softmax"))
    with pytest.raises(ValueError, match="Compile again"):
        m2.fit(x, y, epochs=1, verbose=0)


def test_own_regularizer_and_initializer_round_trip(tmp_path, monkeypatch):
    """A layer configured with a Regularizer and an Initializer of the user's: the model
    saves their names and configs and loads with custom_objects."""
    monkeypatch.undo()

    class Shrink(pynn.regularizers.Regularizer):
        def __init__(self, k=0.1):
            super().__init__(l1=k)
            self.k = float(k)

        def get_config(self):
            return {"k": self.k}

    class Halves(pynn.initializers.Initializer):
        def __call__(self, shape, dtype=np.float32):
            return np.full(shape, 0.5, dtype=dtype)

    m = pynn.Sequential([pynn.layers.Dense(2, input_shape=(3,), kernel_regularizer=Shrink(0.3),
                                           kernel_initializer=Halves())])
    m.compile("sgd", "mse")
    p = tmp_path / "m.pynn"
    m.save(p)
    with pytest.raises(io.ModelFileError, match="unknown regularizer class 'Shrink'"):
        pynn.models.load_model(p, custom_objects={"Halves": Halves})
    m2 = pynn.models.load_model(p, custom_objects={"Shrink": Shrink, "Halves": Halves})
    reg = m2.layers[0].kernel_regularizer
    assert type(reg) is Shrink and reg.k == 0.3
    assert type(m2.layers[0].kernel_initializer) is Halves
    np.testing.assert_array_equal(m2.get_weights()[0], m.get_weights()[0])
