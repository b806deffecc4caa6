"""Tiny Shakespeare (Karpathy's char-rnn corpus): 1,115,394 characters of plays, 65 distinct
characters, for character-level language models.

    text = pynn.datasets.tinyshakespeare.load_text()
    (train, val), vocab = pynn.datasets.tinyshakespeare.load_data()   # int ids, 90/10 split
    for x, y in tinyshakespeare.batches(train, batch_size=32, seq_len=64, seed=0): ...

Where input.txt is looked for, in order (as for MNIST, see pynn.datasets): the `path`
argument (a file, or a folder holding input.txt or tinyshakespeare/input.txt), $PYNN_DATA,
~/.pynn/datasets/tinyshakespeare, the system folders, Keras' cache; then a download from
char-rnn's URL into `path` (or the cache), verified against the SHA-256 below. A local copy
is not checksummed (any UTF-8 text file works as a corpus) unless `verify=True`; it must be
non-empty UTF-8 text without NUL bytes, else DatasetFileError names the file.
"""
import os

import numpy as np

from ._base import DatasetNotFoundError, DownloadError, cache_dir, download_file, search_dirs
from ._idx import DatasetFileError

__all__ = ["load_text", "load_data", "find", "CharVocab", "batches", "sample_batch",
           "eval_batches", "NAME", "FILE", "URLS", "SHA256", "MD5"]

NAME = "tinyshakespeare"
FILE = "input.txt"
URLS = ["https://raw.githubusercontent.com/karpathy/char-rnn/master/data/tinyshakespeare/"
        "input.txt"]
# checksums of the published file (1,115,394 bytes)
SHA256 = "86c4e6aa9db7c042ec79f339dcb96d42b0075e16b8fc2e86bf0ca57e2dc565ed"
MD5 = "6fb458f1232090904fb40fe944165e91"


def find(path=None):
    """Path of the first local copy of input.txt (see the module docstring), or None."""
    if path is not None and os.path.isfile(path):
        return os.fspath(path)
    for folder in search_dirs(NAME, path):
        p = os.path.join(folder, FILE)
        if os.path.isfile(p):
            return p
    return None


def _not_found(path, errors=(), tried=True, urls=None):
    msg = [f"Tiny Shakespeare not found. Put {FILE} (the char-rnn corpus) in one of:"]
    msg += [f"  {d}" for d in search_dirs(NAME, path)]
    msg.append("or pass load_data(path=FILE_OR_FOLDER), or set $PYNN_DATA to a folder "
               f"holding a {NAME}/ subfolder.")
    msg.append(("Download sources tried: " if tried else
                "Download sources (not tried, download=False): ") +
               ", ".join(URLS if urls is None else urls))
    if errors:
        msg.append("Download errors:\n  " + "\n  ".join(errors))
    return DatasetNotFoundError("\n".join(msg))


def _download(path, urls):
    if path is not None and not os.path.isdir(path) and \
            os.path.splitext(os.fspath(path))[1].lower() == ".txt":
        # a .txt file that is not there yet: downloaded to that name (it became a folder of
        # that name holding input.txt); any other missing path is a folder
        dest = os.fspath(path)
        dest_dir, errors = os.path.dirname(os.path.abspath(dest)), []
    else:
        dest_dir = os.fspath(path) if path is not None else cache_dir(NAME)
        dest, errors = os.path.join(dest_dir, FILE), []
    for url in urls:
        try:
            return download_file(url, dest, md5=MD5, sha256=SHA256)
        except DownloadError as e:
            errors.append(str(e))
        except OSError as e:       # cannot write the destination folder
            errors.append(f"{dest_dir}: {e}")
            break
    raise _not_found(path, errors, urls=urls)


def _read(p, verify):
    with open(p, "rb") as f:
        raw = f.read()
    if verify:
        import hashlib
        got = hashlib.sha256(raw).hexdigest()
        if got != SHA256:
            raise DatasetFileError(f"{p}: sha256 {got} does not match the published {SHA256} "
                                   "(a different or corrupt copy; delete it to download "
                                   "again, or pass verify=False to use it as it is)")
    if not raw:
        raise DatasetFileError(f"{p}: empty file: expected the Tiny Shakespeare text")
    if b"\0" in raw:
        raise DatasetFileError(f"{p}: holds NUL bytes: not a text file (corrupt copy?)")
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as e:
        raise DatasetFileError(f"{p}: not UTF-8 text ({e}): corrupt copy?") from None


def load_text(path=None, download=True, verify=False, urls=None):
    """The corpus as one str. path: a file or a folder searched first (and downloaded into);
    download=False never goes to the network; verify=True checks a local copy's SHA-256."""
    p = find(path)
    if p is None:
        if not download:
            raise _not_found(path, tried=False, urls=urls)
        p = _download(path, URLS if urls is None else urls)
    return _read(p, verify)


class CharVocab:
    """The sorted distinct characters of a text: itos (list), stoi (dict), encode/decode."""

    def __init__(self, chars):
        self.itos = sorted(set(chars))
        self.stoi = {c: i for i, c in enumerate(self.itos)}
        self._codes = np.array([ord(c) for c in self.itos], np.int64)  # (V,) sorted

    def __len__(self):
        return len(self.itos)

    @property
    def size(self):
        return len(self.itos)

    def encode(self, text):
        """(N,) int64 ids of the characters of `text`; ValueError for unknown characters."""
        codes = np.frombuffer(text.encode("utf-32-le"), np.uint32).astype(np.int64)  # (N,)
        ids = np.searchsorted(self._codes, codes)  # (N,)
        bad = (ids >= len(self._codes)) | (self._codes[np.minimum(ids, len(self) - 1)] != codes)
        if bad.any():
            c = chr(int(codes[np.argmax(bad)]))
            raise ValueError(f"character {c!r} is not in the vocabulary of {len(self)} "
                             "characters")
        return ids

    def decode(self, ids):
        """The text of a sequence of ids."""
        ids = np.asarray(ids).reshape(-1)
        if ids.size and (ids.min() < 0 or ids.max() >= len(self)):
            raise ValueError(f"ids must lie in [0, {len(self)}), received "
                             f"[{ids.min()}, {ids.max()}]")
        return "".join(self.itos[int(i)] for i in ids)

    def get_config(self):
        return {"itos": "".join(self.itos)}


def load_data(path=None, download=True, validation_split=0.1, as_text=False, verify=False):
    """((train_ids, val_ids), vocab): the corpus encoded as int64 character ids, the first
    (1 - validation_split) of it for training and the rest for validation (char-rnn's and
    nanoGPT's 90/10), and its CharVocab (built on the whole text, 65 characters).
    as_text=True returns the text (str) instead."""
    text = load_text(path, download, verify)
    if as_text:
        return text
    if not 0.0 <= validation_split < 1.0:
        raise ValueError(f"validation_split must lie in [0, 1), received {validation_split!r}")
    vocab = CharVocab(text)
    ids = vocab.encode(text)  # (N,)
    n = int(round(len(ids) * (1.0 - validation_split)))
    if validation_split > 0 and (n < 2 or len(ids) - n < 2):
        raise DatasetFileError(f"the text has {len(ids)} characters: too short to split "
                               f"{1 - validation_split:.0%}/{validation_split:.0%}")
    return (ids[:n], ids[n:]), vocab


def _check_sizes(ids, batch_size, seq_len):
    ids = np.asarray(ids)
    if ids.ndim != 1:
        raise ValueError(f"ids must be 1-D, received shape {ids.shape}")
    for name, v in (("batch_size", batch_size), ("seq_len", seq_len)):
        if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < 1:
            raise ValueError(f"{name} must be a positive integer, received {v!r}")
    if len(ids) < seq_len + 1:
        raise ValueError(f"seq_len={seq_len} needs at least {seq_len + 1} ids, the data has "
                         f"{len(ids)}")
    return ids


def sample_batch(ids, batch_size, seq_len, rng, dtype=np.int64):
    """(x, y), both (batch_size, seq_len): windows at random offsets drawn from `rng`, y the
    next character of each position of x (y[:, t] = ids[offset + t + 1])."""
    ids = _check_sizes(ids, batch_size, seq_len)
    start = rng.integers(0, len(ids) - seq_len, size=batch_size)  # (B,)
    idx = start[:, None] + np.arange(seq_len + 1)  # (B, T+1)
    w = ids[idx]  # (B, T+1)
    return w[:, :-1].astype(dtype), w[:, 1:].astype(dtype)


def batches(ids, batch_size, seq_len, seed=0, steps=None, dtype=np.int64):
    """Yield (x, y) training batches (see sample_batch) from np.random.default_rng(seed):
    the same seed gives the same batches everywhere (pynn, the PyTorch twin). steps=None
    yields forever."""
    _check_sizes(ids, batch_size, seq_len)
    rng = np.random.default_rng(seed)
    k = 0
    while steps is None or k < steps:
        yield sample_batch(ids, batch_size, seq_len, rng, dtype)
        k += 1


def eval_batches(ids, batch_size, seq_len, max_batches=None, dtype=np.int64):
    """Yield (x, y) over consecutive non-overlapping windows of ids, in order (the whole
    split, or its first max_batches batches): a deterministic validation pass. The last
    batch may hold fewer rows."""
    ids = _check_sizes(ids, batch_size, seq_len)
    nwin = (len(ids) - 1) // seq_len
    if max_batches is not None:
        nwin = min(nwin, max_batches * batch_size)
    for a in range(0, nwin, batch_size):
        start = np.arange(a, min(a + batch_size, nwin)) * seq_len  # (b,)
        idx = start[:, None] + np.arange(seq_len + 1)  # (b, T+1)
        w = ids[idx]  # (b, T+1)
        yield w[:, :-1].astype(dtype), w[:, 1:].astype(dtype)
