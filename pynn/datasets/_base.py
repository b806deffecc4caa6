"""Finding, downloading and loading the IDX image data sets (MNIST and its drop-ins).

Where a split (its images + labels file pair) is looked for, in order:
  1. the `path` argument (the folder itself, then path/<name>),
  2. $PYNN_DATA/<name>, then $PYNN_DATA,
  3. the user cache ~/.pynn/datasets/<name>,
  4. system folders: /usr/share/datasets/<name> (Debian's dataset-fashion-mnist installs
     there), /usr/local/share/datasets/<name>,
  5. Keras' cache: ~/.keras/datasets/<name> and ~/.keras/datasets (where tf.keras keeps
     mnist.npz and the fashion-mnist/ files), so users coming from Keras reuse their copies,
  6. a download from the public mirrors into `path` if given, else the user cache.
Each file may be gzip-compressed (name.gz) or raw (name); for MNIST, Keras' mnist.npz is also
accepted in any of these folders, or as the `path` argument itself. Downloads are verified against the
official md5 (and sha256 where known) and written atomically: a temp file in the destination
folder, fsynced, then renamed, so an interrupted download never leaves a partial file under
the final name. Local files are checked by the IDX reader (magic, dimensions, sizes); they are
not checksummed because redistributions (Debian) recompress them.
"""
import hashlib
import http.client
import os
import tempfile
import urllib.error
import urllib.request
import warnings
import zipfile

import numpy as np

from ._idx import DatasetError, DatasetFileError, read_idx

__all__ = ["DatasetError", "DatasetFileError", "DatasetNotFoundError", "DownloadError",
           "ChecksumError", "IdxImageDataset", "search_dirs", "cache_dir", "download_file"]

SYSTEM_DIRS = ("/usr/share/datasets", "/usr/local/share/datasets")
TIMEOUT = 30.0           # seconds per connection attempt / stalled read


class DatasetNotFoundError(DatasetError):
    """No copy of the data set was found locally and none could be downloaded."""


class DownloadError(DatasetError):
    """A download failed: network error, HTTP error or a truncated transfer."""


class ChecksumError(DownloadError):
    """A downloaded file does not match its published checksum."""


def cache_dir(name=None):
    """The user cache folder, ~/.pynn/datasets[/name]."""
    root = os.path.join(os.path.expanduser("~"), ".pynn", "datasets")
    return os.path.join(root, name) if name else root


def search_dirs(name, path=None):
    """Folders searched for data set `name`, in order (existing or not)."""
    dirs = []
    if path is not None and not os.fspath(path).endswith(".npz"):
        path = os.fspath(path)
        dirs += [path, os.path.join(path, name)]
    env = os.environ.get("PYNN_DATA")
    if env:
        dirs += [os.path.join(env, name), env]
    dirs.append(cache_dir(name))
    dirs += [os.path.join(d, name) for d in SYSTEM_DIRS]
    keras = os.path.join(os.path.expanduser("~"), ".keras", "datasets")
    dirs += [os.path.join(keras, name), keras]
    return list(dict.fromkeys(os.path.abspath(d) for d in dirs))


def _fsync_dir(folder):
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:        # not possible everywhere (Windows): the rename is still atomic
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def download_file(url, dest, md5=None, sha256=None, timeout=TIMEOUT):
    """Download `url` to `dest` atomically, verifying size and checksum(s).

    The bytes go to a temp file in dest's folder; it is flushed, fsynced and renamed onto
    `dest` only after the length (Content-Length) and checksums check out, so `dest` is either
    absent, its old content, or the complete verified file. Raises DownloadError (network,
    HTTP, truncated transfer) or ChecksumError.
    """
    dest = os.fspath(dest)
    folder = os.path.dirname(os.path.abspath(dest))
    made, f = [], folder          # the folders this call creates, deepest first
    while not os.path.isdir(f):
        made.append(f)
        f = os.path.dirname(f)
    os.makedirs(folder, exist_ok=True)
    try:
        return _download_into(url, dest, folder, md5, sha256, timeout)
    except BaseException:
        for f in made:           # a failed first download leaves no empty folders behind
            try:
                os.rmdir(f)
            except OSError:
                break
        raise


def _download_into(url, dest, folder, md5, sha256, timeout):
    fd, tmp = tempfile.mkstemp(prefix="." + os.path.basename(dest) + ".", suffix=".part",
                               dir=folder)
    hashes = {"md5": (hashlib.md5(), md5), "sha256": (hashlib.sha256(), sha256)}
    try:
        with os.fdopen(fd, "wb") as f:
            n = 0
            try:
                req = urllib.request.Request(url, headers={"User-Agent": "pynn"})
                with urllib.request.urlopen(req, timeout=timeout) as r:
                    length = r.headers.get("Content-Length")
                    while True:
                        chunk = r.read(1 << 16)
                        if not chunk:
                            break
                        f.write(chunk)
                        for h, _ in hashes.values():
                            h.update(chunk)
                        n += len(chunk)
            except (urllib.error.URLError, http.client.HTTPException, OSError) as e:
                raise DownloadError(f"{url}: download failed after {n} bytes: "
                                    f"{type(e).__name__}: {e}") from None
            if length is not None and n != int(length):
                raise DownloadError(f"{url}: truncated transfer: {n} of {length} bytes")
            for kind, (h, want) in hashes.items():
                if want is not None and h.hexdigest() != want.lower():
                    raise ChecksumError(f"{url}: {kind} {h.hexdigest()} does not match the "
                                        f"published {want}: corrupt or tampered download")
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, dest)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise
    _fsync_dir(folder)
    return dest


class IdxImageDataset:
    """An image-classification data set stored as four IDX files (the MNIST layout).

    files: {split: (images file, labels file)}, names of the .gz files on the mirrors;
    checksums: {file name: md5 or (md5, sha256)}; mirrors: base URLs ending in '/'.
    """

    def __init__(self, name, title, files, checksums, mirrors, image_shape=(28, 28),
                 num_classes=10, keras_npz=None):
        self.name, self.title, self.keras_npz = name, title, keras_npz
        self.files, self.checksums = dict(files), dict(checksums)
        self.mirrors = list(mirrors)
        self.image_shape, self.num_classes = tuple(image_shape), num_classes

    # -- finding ------------------------------------------------------------------------
    @staticmethod
    def _candidates(fname):
        """Accepted names of one file: compressed or not."""
        base = fname[:-3] if fname.endswith(".gz") else fname
        return [base + ".gz", base]

    def _find_file(self, folder, fname):
        for cand in self._candidates(fname):
            p = os.path.join(folder, cand)
            if os.path.isfile(p):
                return p
        return None

    def find(self, split, path=None):
        """(images path, labels path) of the first folder holding both, or (npz path,) of a
        Keras .npz file (`path` itself, or keras_npz in a searched folder), or None."""
        if path is not None and os.fspath(path).endswith(".npz") and os.path.isfile(path):
            return (os.fspath(path),)
        img, lbl = self.files[split]
        dirs = search_dirs(self.name, path)
        own = set(dirs[:2]) if path is not None else set()   # the caller's path (and sub)
        for folder in dirs:
            pi, pl = self._find_file(folder, img), self._find_file(folder, lbl)
            if pi and pl:
                return pi, pl
            if (pi or pl) and folder in own:
                # half a split in the folder the caller named: the search goes on (a split
                # is read from one folder), but says so, rather than load the split from
                # another folder without a word
                miss = self._candidates(lbl if pi else img)
                warnings.warn(f"{folder} holds {os.path.basename(pi or pl)} but not "
                              f"{' or '.join(miss)}: its {split} split is looked for in the "
                              f"next folders", stacklevel=3)
            if self.keras_npz and os.path.isfile(os.path.join(folder, self.keras_npz)):
                return (os.path.join(folder, self.keras_npz),)
        return None

    # -- downloading --------------------------------------------------------------------
    def download(self, split, folder, mirrors=None, path=None):
        """Fetch the split's missing files into `folder`; (images path, labels path)."""
        out, errors = [], []
        for fname in self.files[split]:
            have = self._find_file(folder, fname)
            if have:
                out.append(have)
                continue
            sums = self.checksums.get(fname)
            md5, sha256 = (sums, None) if isinstance(sums, str) else (sums or (None, None))
            for base in (self.mirrors if mirrors is None else mirrors):
                try:
                    out.append(download_file(base + fname, os.path.join(folder, fname),
                                             md5=md5, sha256=sha256))
                    break
                except DownloadError as e:
                    errors.append(str(e))
                except OSError as e:      # cannot write the destination folder: no mirror
                    errors.append(f"cannot write the download folder {folder}: {e}")
                    raise self._not_found(split, path, errors, mirrors=mirrors) from None
            else:
                raise self._not_found(split, path, errors, mirrors=mirrors)
        return tuple(out)

    def _not_found(self, split, path=None, errors=(), tried=True, mirrors=None):
        img, lbl = self.files[split]
        dirs = search_dirs(self.name, path)
        also = f", or Keras' {self.keras_npz}," if self.keras_npz else ""
        msg = [f"{self.title} {split} set not found. Put {img} and {lbl} (gzip-compressed, or "
               f"uncompressed without .gz){also} in one of:"]
        msg += [f"  {d}" for d in dirs]
        msg.append("or pass load_data(path=FOLDER), or set $PYNN_DATA to a folder holding "
                   f"a {self.name}/ subfolder.")
        mirrors = self.mirrors if mirrors is None else mirrors   # the ones given, if any
        if mirrors:
            msg.append(("Download sources tried: " if tried else
                        "Download sources (not tried, download=False): ") + ", ".join(mirrors))
        if errors:
            msg.append("Download errors:\n  " + "\n  ".join(errors))
        return DatasetNotFoundError("\n".join(msg))

    # -- loading ------------------------------------------------------------------------
    def load_split(self, split, path=None, download=True, mirrors=None):
        """(images (N, H, W) uint8, labels (N,) uint8) of `split` ('train' or 'test')."""
        if split not in self.files:
            raise ValueError(f"unknown split {split!r}: expected one of {sorted(self.files)}")
        found = self.find(split, path)
        if found is None:
            if not download:
                raise self._not_found(split, path, tried=False, mirrors=mirrors)
            dest = os.fspath(path) if path is not None and \
                not os.fspath(path).endswith(".npz") else cache_dir(self.name)
            found = self.download(split, dest, mirrors, path)
        if len(found) == 1:
            return self._read_npz(found[0], split)
        return self._check(*found, read_idx(found[0]), read_idx(found[1]))

    def _read_npz(self, path, split):
        """Keras' format: x_train, y_train, x_test, y_test in one .npz (never unpickled)."""
        try:
            with np.load(path, allow_pickle=False) as z:
                x, y = z[f"x_{split}"], z[f"y_{split}"]
        except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile) as e:
            raise DatasetFileError(f"{path}: not a readable Keras data set file (expected "
                                   f"arrays x_{split}, y_{split}): {type(e).__name__}: "
                                   f"{e}") from None
        return self._check(path, path, x, y)

    def _check(self, pimg, plbl, x, y):
        if x.dtype != np.uint8 or x.ndim != 1 + len(self.image_shape) \
                or x.shape[1:] != self.image_shape:
            raise DatasetFileError(f"{pimg}: expected uint8 images of shape "
                                   f"(N, {', '.join(map(str, self.image_shape))}), found "
                                   f"{x.dtype} {x.shape}")
        if y.dtype != np.uint8 or y.ndim != 1:
            raise DatasetFileError(f"{plbl}: expected uint8 labels of shape (N,), found "
                                   f"{y.dtype} {y.shape}")
        if len(x) != len(y):
            raise DatasetFileError(f"{pimg} holds {len(x)} images but {plbl} holds {len(y)} "
                                   f"labels: the files do not belong together")
        if y.size and int(y.max()) >= self.num_classes:
            raise DatasetFileError(f"{plbl}: label {int(y.max())} out of range "
                                   f"[0, {self.num_classes})")
        return x, y

    def load_data(self, path=None, download=True, mirrors=None):
        """((x_train, y_train), (x_test, y_test)), uint8 arrays, as Keras returns them."""
        return (self.load_split("train", path, download, mirrors),
                self.load_split("test", path, download, mirrors))
