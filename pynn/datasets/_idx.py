"""IDX files (the MNIST format): read, checked, from raw or gzip-compressed files; write.

Layout (big-endian): two zero bytes, a type code, the number of dimensions D, D uint32 sizes,
then the data in C order. Every check failure raises DatasetFileError naming the file: a bad
magic number, an unknown type code, a size that does not match the bytes present (truncated or
padded files), a broken gzip stream. Nothing is trusted before it is checked, so a hostile
header cannot make the reader allocate more than the file holds.
"""
import gzip
import os
import zlib

import numpy as np

__all__ = ["DatasetError", "DatasetFileError", "read_idx", "write_idx"]

# type code -> big-endian dtype (the IDX specification, yann.lecun.com/exdb/mnist)
_DTYPES = {0x08: ">u1", 0x09: ">i1", 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}
_CODES = {np.dtype(v).newbyteorder("="): k for k, v in _DTYPES.items()}
_GZIP_MAGIC = b"\x1f\x8b"
_MAX_BYTES = 1 << 34      # 16 GiB: larger declared sizes are treated as corrupt headers


class DatasetError(ValueError):
    """A data set cannot be loaded: files missing, corrupt or failing their checksum."""


class DatasetFileError(DatasetError):
    """An IDX file is truncated, corrupt or not an IDX file; the message names the file."""


def _read_bytes(path):
    """The file's bytes, gunzipped when they start with the gzip magic number."""
    with open(path, "rb") as f:
        raw = f.read()
    if raw[:2] != _GZIP_MAGIC:
        return raw
    try:
        return gzip.decompress(raw)
    except (OSError, EOFError, zlib.error) as e:   # BadGzipFile is an OSError
        raise DatasetFileError(f"{path}: broken gzip data ({e}); the file is truncated or "
                               f"corrupt: delete it and download it again") from None


def read_idx(path):
    """Read an IDX file (raw or gzip) into a native-endian ndarray of its shape.

    Raises DatasetFileError (a ValueError) naming `path` if the file is not a well-formed IDX
    file; FileNotFoundError if it does not exist.
    """
    path = os.fspath(path)
    data = _read_bytes(path)
    if len(data) < 4:
        raise DatasetFileError(f"{path}: {len(data)} bytes, too short for an IDX header")
    if data[0] != 0 or data[1] != 0 or data[2] not in _DTYPES or not 1 <= data[3] <= 8:
        raise DatasetFileError(f"{path}: bad IDX magic number {data[:4].hex()} (expected "
                               f"0000 + a type code in {{08,09,0b,0c,0d,0e}} + 1..8 "
                               f"dimensions): not an IDX file")
    dtype, ndim = np.dtype(_DTYPES[data[2]]), data[3]
    head = 4 + 4 * ndim
    if len(data) < head:
        raise DatasetFileError(f"{path}: truncated IDX header ({len(data)} bytes, "
                               f"{head} needed for {ndim} dimensions)")
    shape = tuple(int(s) for s in np.frombuffer(data, ">u4", ndim, 4))
    nbytes = dtype.itemsize * int(np.prod(shape, dtype=object))
    if nbytes > _MAX_BYTES:
        raise DatasetFileError(f"{path}: IDX header declares shape {shape} ({nbytes} bytes): "
                               f"corrupt header")
    if len(data) - head != nbytes:
        what = "truncated" if len(data) - head < nbytes else "has trailing bytes"
        raise DatasetFileError(f"{path}: {what}: header declares shape {shape} of "
                               f"{dtype.name} ({nbytes} data bytes) but the file holds "
                               f"{len(data) - head}")
    arr = np.frombuffer(data, dtype, offset=head).reshape(shape)
    return arr.astype(dtype.newbyteorder("="))  # a writeable native-endian copy


def write_idx(path, array, compress=None):
    """Write `array` as an IDX file; gzip-compressed when `compress` (default: path ends .gz)."""
    path = os.fspath(path)
    a = np.asarray(array)
    code = _CODES.get(a.dtype.newbyteorder("="))
    if code is None:
        raise TypeError(f"IDX cannot store dtype {a.dtype}: expected one of "
                        f"uint8, int8, int16, int32, float32, float64")
    header = bytes([0, 0, code, a.ndim]) + np.asarray(a.shape, ">u4").tobytes()
    blob = header + np.ascontiguousarray(a, a.dtype.newbyteorder(">")).tobytes()
    if compress if compress is not None else path.endswith(".gz"):
        blob = gzip.compress(blob, mtime=0)
    with open(path, "wb") as f:
        f.write(blob)
