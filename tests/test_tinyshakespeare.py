"""pynn.datasets.tinyshakespeare: search order, verified download (from a loopback HTTP
server, never the network), corrupt/empty files, the vocabulary and the batch samplers, and
the real corpus where ../shared/data has it."""
import hashlib
import http.server
import os
import pathlib
import threading

import numpy as np
import pytest

from pynn import datasets
from pynn.datasets import _base
from pynn.datasets import tinyshakespeare as ts
from pynn.datasets import DatasetFileError, DatasetNotFoundError, DatasetError

ROOT = pathlib.Path(__file__).resolve().parents[1]
TEXT = "First Citizen:\nBefore we proceed any further, hear me speak.\n\nAll:\nSpeak, speak.\n"


def shared_corpus():
    for parent in (ROOT.parent, ROOT.parent.parent):
        p = parent / "shared" / "data" / "tinyshakespeare" / "input.txt"
        if p.is_file():
            return p
    return None


@pytest.fixture(autouse=True)
def offline(monkeypatch, tmp_path):
    """No real URL, no real cache, no real system folders, no $PYNN_DATA."""
    monkeypatch.setattr(ts, "URLS", [])
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.delenv("PYNN_DATA", raising=False)
    monkeypatch.setattr(_base, "SYSTEM_DIRS", (str(tmp_path / "system"),))


def put(folder, text):
    folder = pathlib.Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "input.txt").write_text(text, encoding="utf-8")
    return folder / "input.txt"


# -- loading and search order ---------------------------------------------------------------
def test_exported():
    assert datasets.tinyshakespeare is ts and "tinyshakespeare" in datasets.__all__


def test_path_file_folder_and_subfolder(tmp_path):
    f = put(tmp_path / "a", TEXT)
    assert ts.load_text(f, download=False) == TEXT
    assert ts.load_text(tmp_path / "a", download=False) == TEXT
    put(tmp_path / "b" / "tinyshakespeare", TEXT + "x")
    assert ts.load_text(tmp_path / "b", download=False) == TEXT + "x"
    assert ts.load_data(tmp_path / "a", download=False, as_text=True) == TEXT


def test_search_order(tmp_path, monkeypatch):
    home = pathlib.Path(os.environ["HOME"])
    places = {"path": tmp_path / "arg",
              "env": tmp_path / "env" / "tinyshakespeare",
              "cache": home / ".pynn" / "datasets" / "tinyshakespeare",
              "system": tmp_path / "system" / "tinyshakespeare",
              "keras": home / ".keras" / "datasets" / "tinyshakespeare"}
    for k, p in places.items():
        put(p, f"copy from {k}\n")
    monkeypatch.setenv("PYNN_DATA", str(tmp_path / "env"))
    assert ts.load_text(places["path"], download=False) == "copy from path\n"
    assert ts.load_text(download=False) == "copy from env\n"
    monkeypatch.delenv("PYNN_DATA")
    for k in ("cache", "system", "keras"):
        assert ts.load_text(download=False) == f"copy from {k}\n"
        (places[k] / "input.txt").unlink()
    with pytest.raises(DatasetNotFoundError):
        ts.load_text(download=False)


def test_not_found_says_where(tmp_path):
    with pytest.raises(DatasetNotFoundError) as e:
        ts.load_data(tmp_path / "mine", download=False)
    msg = str(e.value)
    for needed in ("input.txt", str(tmp_path / "mine"), "PYNN_DATA", "not tried"):
        assert needed in msg
    assert isinstance(e.value, DatasetError) and isinstance(e.value, ValueError)


@pytest.mark.parametrize("blob,msg", [(b"", "empty"), (b"abc\0def", "NUL"),
                                      (b"abc\xff\xfe def", "UTF-8")])
def test_corrupt_or_empty_file(tmp_path, blob, msg):
    p = tmp_path / "input.txt"
    p.write_bytes(blob)
    with pytest.raises(DatasetFileError, match=msg) as e:
        ts.load_data(tmp_path, download=False)
    assert str(p) in str(e.value)


def test_verify_checks_local_copy(tmp_path):
    put(tmp_path, TEXT)
    with pytest.raises(DatasetFileError, match="sha256"):
        ts.load_text(tmp_path, download=False, verify=True)


def test_too_short_to_split(tmp_path):
    put(tmp_path, "abc")
    with pytest.raises(DatasetFileError, match="too short"):
        ts.load_data(tmp_path, download=False)
    with pytest.raises(ValueError, match="validation_split"):
        ts.load_data(tmp_path, download=False, validation_split=1.0)


# -- download against a local server ----------------------------------------------------------
class Handler(http.server.BaseHTTPRequestHandler):
    body = b""
    requests = []

    def do_GET(self):
        Handler.requests.append(self.path)
        mode = self.path.strip("/").split("/")[0]
        if mode == "missing":
            self.send_error(404)
            return
        body = self.body
        if mode == "wrong":
            body = body[:-1] + bytes([body[-1] ^ 1])
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body if mode != "truncated" else body[: len(body) // 2])

    def log_message(self, *args):
        pass


@pytest.fixture
def server(monkeypatch):
    body = (TEXT * 20).encode()
    Handler.body, Handler.requests = body, []
    monkeypatch.setattr(ts, "SHA256", hashlib.sha256(body).hexdigest())
    monkeypatch.setattr(ts, "MD5", hashlib.md5(body).hexdigest())
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    t = threading.Thread(target=httpd.serve_forever, daemon=True)
    t.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()


def test_download_into_cache_then_cached(server, monkeypatch):
    monkeypatch.setattr(ts, "URLS", [server + "/missing/input.txt", server + "/wrong/input.txt",
                                     server + "/ok/input.txt"])
    assert ts.load_text() == TEXT * 20
    cache = pathlib.Path(os.environ["HOME"]) / ".pynn" / "datasets" / "tinyshakespeare"
    assert [p.name for p in cache.iterdir()] == ["input.txt"]
    assert Handler.requests == ["/missing/input.txt", "/wrong/input.txt", "/ok/input.txt"]
    (train, val), vocab = ts.load_data()           # from the cache: no more requests
    assert len(Handler.requests) == 3
    assert len(train) + len(val) == len(TEXT) * 20


def test_download_into_path(server, monkeypatch, tmp_path):
    monkeypatch.setattr(ts, "URLS", [server + "/ok/input.txt"])
    assert ts.load_text(tmp_path / "mine") == TEXT * 20
    assert (tmp_path / "mine" / "input.txt").read_bytes() == Handler.body


def test_download_to_a_file_path(server, monkeypatch, tmp_path):
    # a path naming a file that is not there yet is the file to write (it became a folder
    # of that name holding input.txt)
    monkeypatch.setattr(ts, "URLS", [server + "/ok/input.txt"])
    dest = tmp_path / "corpus" / "shakespeare.txt"
    assert ts.load_text(dest) == TEXT * 20
    assert dest.is_file() and dest.read_bytes() == Handler.body


def test_checksum_failure_leaves_nothing(server, monkeypatch):
    monkeypatch.setattr(ts, "URLS", [server + "/wrong/input.txt",
                                     server + "/truncated/input.txt"])
    with pytest.raises(DatasetNotFoundError) as e:
        ts.load_text()
    assert "does not match" in str(e.value) and "truncated" in str(e.value)
    cache = pathlib.Path(os.environ["HOME"]) / ".pynn" / "datasets" / "tinyshakespeare"
    assert not cache.exists() or list(cache.iterdir()) == []


# -- vocabulary --------------------------------------------------------------------------------
def test_vocab_exact():
    v = ts.CharVocab("hello, world")
    assert v.itos == [" ", ",", "d", "e", "h", "l", "o", "r", "w"] and len(v) == 9
    assert v.stoi["h"] == 4
    np.testing.assert_array_equal(v.encode("hello"), [4, 3, 5, 5, 6])
    assert v.encode("hello").dtype == np.int64 and v.encode("").shape == (0,)
    assert v.decode([4, 3, 5, 5, 6]) == "hello"
    assert v.decode(v.encode("world, hello")) == "world, hello"
    with pytest.raises(ValueError, match="'z'"):
        v.encode("hez")
    with pytest.raises(ValueError, match="ids must lie"):
        v.decode([9])


def test_vocab_non_ascii():
    v = ts.CharVocab("naïve café ✓")
    assert v.decode(v.encode("café ✓")) == "café ✓"


def test_split_exact(tmp_path):
    put(tmp_path, "abcdefghij" * 10)
    (train, val), vocab = ts.load_data(tmp_path, download=False)
    assert len(train) == 90 and len(val) == 10 and len(vocab) == 10
    assert vocab.decode(train[:3]) == "abc" and vocab.decode(val) == "abcdefghij"
    (train, val), _ = ts.load_data(tmp_path, download=False, validation_split=0.25)
    assert len(train) == 75 and len(val) == 25


# -- batch samplers -----------------------------------------------------------------------------
def test_sample_batch_targets_are_next_chars():
    ids = np.arange(100) * 3
    x, y = ts.sample_batch(ids, 5, 7, np.random.default_rng(0))
    assert x.shape == y.shape == (5, 7) and x.dtype == np.int64
    np.testing.assert_array_equal(y[:, :-1], x[:, 1:])
    np.testing.assert_array_equal(y[:, -1], x[:, -1] + 3)
    assert np.all(np.diff(x, axis=1) == 3) and y.max() <= 99 * 3
    x32, _ = ts.sample_batch(ids, 5, 7, np.random.default_rng(0), dtype=np.float32)
    assert x32.dtype == np.float32 and np.array_equal(x32, x)


def test_batches_deterministic_from_seed():
    ids = np.random.default_rng(1).integers(0, 65, 1000)
    a = list(ts.batches(ids, 4, 16, seed=3, steps=5))
    b = list(ts.batches(ids, 4, 16, seed=3, steps=5))
    c = list(ts.batches(ids, 4, 16, seed=4, steps=5))
    assert len(a) == 5
    for (xa, ya), (xb, yb) in zip(a, b):
        np.testing.assert_array_equal(xa, xb)
        np.testing.assert_array_equal(ya, yb)
    assert any(not np.array_equal(xa, xc) for (xa, _), (xc, _) in zip(a, c))
    # every window of the data can be drawn, including the last one
    starts = set()
    for x, _ in ts.batches(np.arange(20), 8, 4, seed=0, steps=50):
        starts.update(x[:, 0].tolist())
    assert starts == set(range(16))


def test_eval_batches_cover_in_order():
    ids = np.arange(23)
    got = list(ts.eval_batches(ids, 2, 5))
    assert [x.shape for x, _ in got] == [(2, 5), (2, 5)]
    np.testing.assert_array_equal(np.concatenate([x for x, _ in got]).ravel(), np.arange(20))
    np.testing.assert_array_equal(np.concatenate([y for _, y in got]).ravel(),
                                  np.arange(1, 21))
    got = list(ts.eval_batches(np.arange(30), 4, 3, max_batches=1))
    assert len(got) == 1 and got[0][0].shape == (4, 3)
    assert [x.shape[0] for x, _ in ts.eval_batches(np.arange(31), 4, 5)] == [4, 2]


@pytest.mark.parametrize("kw,msg", [({"batch_size": 0}, "batch_size"),
                                    ({"seq_len": 2.5}, "seq_len"),
                                    ({"seq_len": 10}, "at least 11")])
def test_sampler_bad_sizes(kw, msg):
    args = dict(batch_size=2, seq_len=3)
    args.update(kw)
    with pytest.raises(ValueError, match=msg):
        ts.sample_batch(np.arange(10), rng=np.random.default_rng(0), **args)
    with pytest.raises(ValueError, match=msg):
        next(ts.batches(np.arange(10), **args))
    with pytest.raises(ValueError, match="1-D"):
        ts.sample_batch(np.zeros((3, 3)), 1, 1, np.random.default_rng(0))


# -- the real corpus -------------------------------------------------------------------------
def test_real_corpus():
    p = shared_corpus()
    if p is None:
        pytest.skip("../shared/data/tinyshakespeare/input.txt not found")
    text = ts.load_text(p, download=False, verify=True)   # the published SHA-256
    assert len(text) == 1115394 and text.startswith("First Citizen:\nBefore we proceed")
    (train, val), vocab = ts.load_data(p.parent, download=False)
    assert len(vocab) == 65 and vocab.itos[:3] == ["\n", " ", "!"]
    assert len(train) == 1003855 and len(val) == 111539
    assert vocab.decode(train[:14]) == "First Citizen:"
