"""pynn.datasets: the IDX reader, the search order, the verified atomic download (against a
local HTTP server on 127.0.0.1: nothing here touches the network), and the real data where
this machine has it (the MNIST test set in ../shared/data, Debian's Fashion-MNIST)."""
import gzip
import hashlib
import http.server
import os
import pathlib
import threading

import numpy as np
import pytest

from pynn import datasets
from pynn.datasets import _base
from pynn.datasets import (ChecksumError, DatasetError, DatasetFileError,
                           DatasetNotFoundError, DownloadError, read_idx, write_idx)

ROOT = pathlib.Path(__file__).resolve().parents[1]
FILES = {"train": ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz"),
         "test": ("t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz")}


def shared_data():
    """../shared/data from the repo root (or one level higher for a worktree), or None."""
    for parent in (ROOT.parent, ROOT.parent.parent):
        d = parent / "shared" / "data"
        if d.is_dir():
            return d
    return None


@pytest.fixture(autouse=True)
def offline(monkeypatch, tmp_path):
    """No real mirrors, no real cache, no real system folders, no $PYNN_DATA."""
    monkeypatch.setattr(datasets.mnist.DATASET, "mirrors", [])
    monkeypatch.setattr(datasets.fashion_mnist.DATASET, "mirrors", [])
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.delenv("PYNN_DATA", raising=False)
    monkeypatch.setattr(_base, "SYSTEM_DIRS", (str(tmp_path / "system"),))


def fake_split(n, seed):
    rng = np.random.default_rng(seed)
    return (rng.integers(0, 256, (n, 28, 28), dtype=np.uint8),
            rng.integers(0, 10, n, dtype=np.uint8))


def write_set(folder, seed=0, ntrain=7, ntest=3, compress=True):
    """Four IDX files of generated data in `folder`; returns the arrays."""
    folder = pathlib.Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    out = {}
    for split, n in (("train", ntrain), ("test", ntest)):
        x, y = fake_split(n, seed + (split == "test"))
        for name, a in zip(FILES[split], (x, y)):
            write_idx(folder / (name if compress else name[:-3]), a)
        out[split] = (x, y)
    return out


def check_same(got, want):
    (xtr, ytr), (xte, yte) = got
    for a, b in ((xtr, want["train"][0]), (ytr, want["train"][1]),
                 (xte, want["test"][0]), (yte, want["test"][1])):
        assert a.dtype == np.uint8 and a.shape == b.shape
        np.testing.assert_array_equal(a, b)


# -- IDX reader ---------------------------------------------------------------------------
def test_idx_exact_bytes(tmp_path):
    a = np.array([[1, 2, 3], [250, 0, 7]], np.uint8)
    write_idx(tmp_path / "a.idx", a)
    raw = (tmp_path / "a.idx").read_bytes()
    assert raw == bytes([0, 0, 8, 2, 0, 0, 0, 2, 0, 0, 0, 3, 1, 2, 3, 250, 0, 7])
    b = np.array([1.5, -2.0], np.float32)  # big-endian on disk
    write_idx(tmp_path / "b.idx", b)
    assert (tmp_path / "b.idx").read_bytes() == (bytes([0, 0, 0x0D, 1, 0, 0, 0, 2])
                                                 + bytes.fromhex("3fc00000c0000000"))
    np.testing.assert_array_equal(read_idx(tmp_path / "b.idx"), b)


@pytest.mark.parametrize("dtype", [np.uint8, np.int8, np.int16, np.int32, np.float32,
                                   np.float64])
@pytest.mark.parametrize("name", ["x.idx", "x.idx.gz"])
def test_idx_round_trip(tmp_path, dtype, name):
    a = (np.arange(2 * 3 * 5) - 7).astype(dtype).reshape(2, 3, 5) if dtype != np.uint8 \
        else np.arange(30, dtype=np.uint8).reshape(2, 3, 5)
    write_idx(tmp_path / name, a)
    assert (tmp_path / name).read_bytes()[:2] == (b"\x1f\x8b" if name.endswith(".gz")
                                                   else b"\0\0")
    b = read_idx(tmp_path / name)
    assert b.dtype == np.dtype(dtype) and b.dtype.isnative and b.shape == (2, 3, 5)
    np.testing.assert_array_equal(a, b)
    b[0, 0, 0] = 1   # a writeable copy


def test_idx_empty_and_write_rejects(tmp_path):
    write_idx(tmp_path / "e.idx", np.zeros((0, 28, 28), np.uint8))
    assert read_idx(tmp_path / "e.idx").shape == (0, 28, 28)
    with pytest.raises(TypeError, match="dtype"):
        write_idx(tmp_path / "c.idx", np.zeros(3, np.complex64))


def corrupt_cases():
    good = bytes([0, 0, 8, 2, 0, 0, 0, 2, 0, 0, 0, 3]) + bytes(range(6))
    return {
        "empty": (b"", "too short"),
        "magic": (b"\x01" + good[1:], "magic"),
        "typecode": (good[:2] + b"\x07" + good[3:], "magic"),
        "no dims": (good[:3] + b"\x00" + good[4:], "magic"),
        "short header": (good[:9], "truncated IDX header"),
        "truncated data": (good[:-1], "truncated"),
        "trailing": (good + b"\0", "trailing"),
        "huge": (bytes([0, 0, 8, 3]) + b"\xff\xff\xff\xff" * 3, "corrupt header"),
        "truncated gzip": (gzip.compress(good * 50)[:-30], "gzip"),
        "html page": (b"<html>404 Not Found</html>", "magic"),
        # a zero size beside sizes NumPy cannot index: NumPy's "array is too big" leaked
        "empty but huge": (bytes([0, 0, 8, 3, 0, 0, 0, 0]) + b"\xff\xff\xff\xff" * 2,
                           "NumPy cannot hold"),
        "gzip trailing": (gzip.compress(good + bytes(100)), "trailing bytes.*holds more"),
        "gzip huge header": (gzip.compress(bytes([0, 0, 8, 1, 0x40, 0, 0, 0]) + bytes(4096)),
                             "in [0-9]+ bytes of gzip data: corrupt header"),
    }


@pytest.mark.parametrize("case", list(corrupt_cases()))
def test_idx_corrupt_files(tmp_path, case):
    blob, msg = corrupt_cases()[case]
    p = tmp_path / "bad-file-idx"
    p.write_bytes(blob)
    with pytest.raises(DatasetFileError, match=msg) as e:
        read_idx(p)
    assert str(p) in str(e.value) and isinstance(e.value, ValueError)


def test_idx_gzip_bomb_is_not_unpacked(tmp_path):
    # ~1 MB of gzip that expands to 1 GiB of zeros behind a header declaring one byte: the
    # whole file was gunzipped before any check (2 GB of memory for this one); now only the
    # header and the declared bytes are
    import resource
    import zlib
    c = zlib.compressobj(9, zlib.DEFLATED, 31)
    parts = [c.compress(bytes([0, 0, 8, 1, 0, 0, 0, 1]))]
    parts += [c.compress(bytes(1 << 24)) for _ in range(64)]
    p = tmp_path / "bomb.gz"
    p.write_bytes(b"".join(parts) + c.flush())
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    with pytest.raises(DatasetFileError, match="trailing bytes"):
        read_idx(p)
    grown_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before
    assert grown_kb < 200_000, f"peak memory grew by {grown_kb} KB"


def test_idx_gzip_members_one_after_another(tmp_path):
    a = np.arange(60, dtype=np.uint8).reshape(6, 10)
    p = tmp_path / "two-members.gz"
    p.write_bytes(gzip.compress(bytes([0, 0, 8, 2, 0, 0, 0, 6, 0, 0, 0, 10]))
                  + gzip.compress(a.tobytes()))
    np.testing.assert_array_equal(read_idx(p), a)


def test_idx_bit_flipped_gzip(tmp_path):
    blob = bytes([0, 0, 0x0C, 1, 0, 0, 0x13, 0x88])   # int32 (5000,)
    data = bytearray(gzip.compress(blob + np.arange(5000, dtype=">i4").tobytes()))
    data[len(data) // 2] ^= 0x10
    p = tmp_path / "flipped.gz"
    p.write_bytes(bytes(data))
    with pytest.raises(DatasetFileError, match="gzip") as e:
        read_idx(p)
    assert str(p) in str(e.value)


def test_idx_missing_file(tmp_path):
    with pytest.raises(FileNotFoundError):
        read_idx(tmp_path / "nope.gz")


# -- loading and search order ---------------------------------------------------------------
def test_load_from_path_keras_shapes(tmp_path):
    want = write_set(tmp_path / "d")
    got = datasets.mnist.load_data(path=tmp_path / "d", download=False)
    check_same(got, want)
    assert got[0][0].shape == (7, 28, 28) and got[1][1].shape == (3,)


def test_uncompressed_files_and_subfolder(tmp_path):
    want = write_set(tmp_path / "d" / "fashion-mnist", seed=3, compress=False)
    check_same(datasets.fashion_mnist.load_data(path=tmp_path / "d", download=False), want)


def test_search_order(tmp_path, monkeypatch):
    home = pathlib.Path(os.environ["HOME"])
    places = {"path": tmp_path / "arg",
              "env": tmp_path / "env" / "mnist",
              "cache": home / ".pynn" / "datasets" / "mnist",
              "system": tmp_path / "system" / "mnist",
              "keras": home / ".keras" / "datasets" / "mnist"}
    sets = {k: write_set(p, seed=10 * i) for i, (k, p) in enumerate(places.items())}
    monkeypatch.setenv("PYNN_DATA", str(tmp_path / "env"))
    dirs = _base.search_dirs("mnist", places["path"])
    assert [dirs.index(str(p)) for p in places.values()] == sorted(
        dirs.index(str(p)) for p in places.values())
    check_same(datasets.mnist.load_data(path=places["path"], download=False), sets["path"])
    check_same(datasets.mnist.load_data(download=False), sets["env"])
    monkeypatch.delenv("PYNN_DATA")
    check_same(datasets.mnist.load_data(download=False), sets["cache"])
    for f in places["cache"].iterdir():
        f.unlink()
    check_same(datasets.mnist.load_data(download=False), sets["system"])
    for f in places["system"].iterdir():
        f.unlink()
    check_same(datasets.mnist.load_data(download=False), sets["keras"])


def keras_npz(p, want):
    np.savez(p, x_train=want["train"][0], y_train=want["train"][1],
             x_test=want["test"][0], y_test=want["test"][1])


def test_keras_npz_as_path_and_in_keras_cache(tmp_path):
    want = {"train": fake_split(5, 1), "test": fake_split(2, 2)}
    keras_npz(tmp_path / "mine.npz", want)
    check_same(datasets.mnist.load_data(path=tmp_path / "mine.npz", download=False), want)
    keras = pathlib.Path(os.environ["HOME"]) / ".keras" / "datasets"
    keras.mkdir(parents=True)
    keras_npz(keras / "mnist.npz", want)
    check_same(datasets.mnist.load_data(download=False), want)
    # a Keras-style path naming a file that does not exist: the usual search
    check_same(datasets.mnist.load_data(path="mnist.npz", download=False), want)


def test_keras_npz_hostile(tmp_path):
    with open(tmp_path / "mnist.npz", "wb") as f:
        np.savez(f, x_train=np.array([None, {}], dtype=object), y_train=np.zeros(2, np.uint8))
    with pytest.raises(DatasetFileError, match="mnist.npz"):
        datasets.mnist.load_data(path=tmp_path, download=False)
    np.savez(tmp_path / "mnist.npz", x_train=np.zeros((2, 28, 28), np.float64),
             y_train=np.zeros(2, np.uint8))
    with pytest.raises(DatasetFileError, match="uint8 images"):
        datasets.mnist.load_data(path=tmp_path, download=False)
    (tmp_path / "mnist.npz").write_bytes(b"PK\x03\x04 not really a zip")
    with pytest.raises(DatasetFileError, match="mnist.npz"):
        datasets.mnist.load_data(path=tmp_path, download=False)


def test_split_needs_both_files_in_one_folder(tmp_path, monkeypatch):
    first = write_set(tmp_path / "a")
    want = write_set(tmp_path / "b", seed=5)
    os.unlink(tmp_path / "a" / FILES["train"][1])    # 'a' has no train labels
    monkeypatch.setenv("PYNN_DATA", str(tmp_path / "b"))
    # the folder the caller named holds half the train split: a warning names the missing
    # file (the split came from the next folder without a word)
    with pytest.warns(UserWarning, match=r"holds train-images.*but not train-labels.*next "
                                         r"folders"):
        (xtr, ytr), (xte, yte) = datasets.mnist.load_data(path=tmp_path / "a",
                                                          download=False)
    np.testing.assert_array_equal(xtr, want["train"][0])
    np.testing.assert_array_equal(ytr, want["train"][1])
    np.testing.assert_array_equal(xte, first["test"][0])   # the test split is whole in 'a'



def test_not_found_says_where_to_put_which_files(tmp_path):
    with pytest.raises(DatasetNotFoundError) as e:
        datasets.mnist.load_data(path=tmp_path / "mine", download=False)
    msg = str(e.value)
    for needed in ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz",
                   str(tmp_path / "mine"), os.path.join(os.environ["HOME"], ".pynn"),
                   "PYNN_DATA"):
        assert needed in msg
    assert isinstance(e.value, DatasetError) and isinstance(e.value, ValueError)


def test_not_found_without_download_names_the_mirrors(monkeypatch):
    monkeypatch.setattr(datasets.mnist.DATASET, "mirrors", ["http://127.0.0.1:9/never/"])
    with pytest.raises(DatasetNotFoundError, match="not tried, download=False"):
        datasets.mnist.load_data(download=False)


def test_no_mirror_reachable_is_not_found(tmp_path):
    with pytest.raises(DatasetNotFoundError, match="t10k-images-idx3-ubyte.gz"):
        datasets.fashion_mnist.load_split("test", download=True)


def test_not_found_names_the_mirrors_given():
    # the message listed the default mirrors even when others were given
    mine = "http://127.0.0.1:9/nowhere/"
    for download in (True, False):
        with pytest.raises(DatasetNotFoundError) as e:
            datasets.mnist.DATASET.load_split("test", download=download, mirrors=[mine])
        sources = next(line for line in str(e.value).splitlines() if "Download sources" in line)
        assert mine in sources and all(m not in sources for m in datasets.mnist.DATASET.mirrors)


@pytest.mark.parametrize("bad", ["count", "label", "shape", "dtype"])
def test_inconsistent_files(tmp_path, bad):
    d = tmp_path / "d"
    write_set(d)
    img, lbl = (d / f for f in FILES["test"])
    if bad == "count":
        write_idx(lbl, np.zeros(4, np.uint8))
    elif bad == "label":
        write_idx(lbl, np.array([1, 10, 2], np.uint8))
    elif bad == "shape":
        write_idx(img, np.zeros((3, 28, 27), np.uint8))
    else:
        write_idx(img, np.zeros((3, 28, 28), np.float32))
    with pytest.raises(DatasetFileError, match=str(d)):
        datasets.mnist.load_split("test", path=d, download=False)


def test_unknown_split():
    with pytest.raises(ValueError, match="unknown split"):
        datasets.mnist.load_split("validation", download=False)


# -- download against a local server ----------------------------------------------------------
class Handler(http.server.BaseHTTPRequestHandler):
    files = {}           # url path -> bytes
    requests = []

    def do_GET(self):
        Handler.requests.append(self.path)
        mode, _, name = self.path.strip("/").partition("/")
        body = self.files.get(name)
        if body is None or mode == "missing":
            self.send_error(404)
            return
        if mode == "wrong":
            body = body[:-1] + bytes([body[-1] ^ 1])
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if mode == "truncated":
            self.wfile.write(body[: len(body) // 2])
            self.wfile.flush()
            self.close_connection = True
            return
        self.wfile.write(body)

    def log_message(self, *args):
        pass


@pytest.fixture
def server(tmp_path):
    src = tmp_path / "served"
    want = write_set(src, seed=42, ntrain=11, ntest=5)
    Handler.files = {p.name: p.read_bytes() for p in src.iterdir()}
    Handler.requests = []
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    t = threading.Thread(target=httpd.serve_forever, daemon=True)
    t.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}", want
    httpd.shutdown()
    httpd.server_close()


def local_dataset(monkeypatch, base_urls, checksums=True):
    ds = datasets.mnist.DATASET
    sums = {n: (hashlib.md5(b).hexdigest(), hashlib.sha256(b).hexdigest())
            for n, b in Handler.files.items()} if checksums else {}
    monkeypatch.setattr(ds, "checksums", sums)
    monkeypatch.setattr(ds, "mirrors", base_urls)
    return ds


def test_download_into_cache(server, monkeypatch):
    url, want = server
    local_dataset(monkeypatch, [url + "/ok/"])
    check_same(datasets.mnist.load_data(), want)
    cache = pathlib.Path(os.environ["HOME"]) / ".pynn" / "datasets" / "mnist"
    assert sorted(p.name for p in cache.iterdir()) == sorted(FILES["train"] + FILES["test"])
    for p in cache.iterdir():
        assert p.read_bytes() == Handler.files[p.name]
    n = len(Handler.requests)
    check_same(datasets.mnist.load_data(), want)     # now cached: no more requests
    assert len(Handler.requests) == n == 4


def test_download_into_path_argument(server, monkeypatch, tmp_path):
    url, want = server
    local_dataset(monkeypatch, [url + "/ok/"])
    check_same(datasets.mnist.load_data(path=tmp_path / "mine"), want)
    assert (tmp_path / "mine" / FILES["train"][0]).is_file()


def test_download_folder_that_cannot_be_written_is_not_found(server, monkeypatch, tmp_path):
    # the folder's parent is a file (a read-only cache acts alike): DatasetNotFoundError
    # naming it (download returned the files it had, and loading failed on an IndexError)
    url, _ = server
    local_dataset(monkeypatch, [url + "/ok/"])
    (tmp_path / "blocker").write_text("a file")
    with pytest.raises(DatasetNotFoundError, match="cannot write the download folder"):
        datasets.mnist.load_data(path=tmp_path / "blocker" / "mnist")


def test_falls_back_to_next_mirror(server, monkeypatch):
    url, want = server
    local_dataset(monkeypatch, [url + "/missing/", url + "/wrong/", url + "/truncated/",
                                url + "/ok/"])
    check_same(datasets.mnist.load_data(), want)
    assert Handler.requests[:4] == ["/missing/" + FILES["train"][0],
                                    "/wrong/" + FILES["train"][0],
                                    "/truncated/" + FILES["train"][0],
                                    "/ok/" + FILES["train"][0]]


def no_partial_files(folder):
    return [p.name for p in pathlib.Path(folder).iterdir()] if os.path.isdir(folder) else []


@pytest.mark.parametrize("mode,err,msg", [("wrong", ChecksumError, "md5"),
                                          ("truncated", DownloadError, "truncated|Incomplete"),
                                          ("missing", DownloadError, "404")])
def test_download_file_failures_leave_nothing(server, tmp_path, mode, err, msg):
    url, _ = server
    name = FILES["test"][1]
    body = Handler.files[name]
    dest = tmp_path / "dl" / name
    with pytest.raises(err, match=msg):
        datasets.download_file(f"{url}/{mode}/{name}", dest, md5=hashlib.md5(body).hexdigest())
    assert no_partial_files(tmp_path / "dl") == []


def test_download_file_sha256_and_old_file_kept(server, tmp_path):
    url, _ = server
    name = FILES["test"][0]
    body = Handler.files[name]
    (tmp_path / "dl").mkdir()
    dest = tmp_path / "dl" / name
    dest.write_bytes(b"old content")
    with pytest.raises(ChecksumError, match="sha256"):
        datasets.download_file(f"{url}/ok/{name}", dest, sha256="0" * 64)
    assert dest.read_bytes() == b"old content"
    assert no_partial_files(tmp_path / "dl") == [name]
    datasets.download_file(f"{url}/ok/{name}", dest, md5=hashlib.md5(body).hexdigest(),
                           sha256=hashlib.sha256(body).hexdigest())
    assert dest.read_bytes() == body and no_partial_files(tmp_path / "dl") == [name]


def test_all_mirrors_bad_is_not_found(server, monkeypatch):
    url, _ = server
    local_dataset(monkeypatch, [url + "/wrong/", url + "/truncated/"])
    with pytest.raises(DatasetNotFoundError) as e:
        datasets.mnist.load_data()
    msg = str(e.value)
    assert "does not match" in msg and "truncated" in msg and FILES["train"][0] in msg
    cache = pathlib.Path(os.environ["HOME"]) / ".pynn" / "datasets" / "mnist"
    assert no_partial_files(cache) == []
    assert not (pathlib.Path(os.environ["HOME"]) / ".pynn").exists()   # nor empty folders


# -- the real data, where this machine has it ----------------------------------------------------
def test_real_mnist_test_set():
    d = shared_data()
    if d is None or not (d / "mnist-t10k").is_dir():
        pytest.skip("shared data folder ../shared/data/mnist-t10k not found")
    d = d / "mnist-t10k"
    assert hashlib.md5((d / FILES["test"][0]).read_bytes()).hexdigest() == \
        "9fb629c4189551a2d022fa330f9573f3"
    x, y = datasets.mnist.load_split("test", path=d, download=False)
    assert x.shape == (10000, 28, 28) and x.dtype == np.uint8 and y.dtype == np.uint8
    assert list(y[:10]) == [7, 2, 1, 0, 4, 1, 4, 9, 5, 9]   # the well-known first digits
    assert np.bincount(y).tolist() == [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]
    assert x.max() == 255 and x[0, :5].sum() == 0           # black border


def test_real_fashion_mnist_debian(monkeypatch):
    monkeypatch.setattr(_base, "SYSTEM_DIRS", ("/usr/share/datasets",))
    if not os.path.isdir("/usr/share/datasets/fashion-mnist"):
        pytest.skip("Debian's dataset-fashion-mnist is not installed")
    (x, y), (xt, yt) = datasets.fashion_mnist.load_data(download=False)
    assert x.shape == (60000, 28, 28) and xt.shape == (10000, 28, 28)
    assert np.bincount(y).tolist() == [6000] * 10 and np.bincount(yt).tolist() == [1000] * 10
    assert list(yt[:5]) == [9, 2, 1, 1, 6]
