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


# deflate expands at most ~1032:1; a header declaring more than this many bytes per byte
# of gzip data describes data the file cannot hold
_GZIP_RATIO = 1100
_HEAD_MAX = 4 + 4 * 8     # the longest IDX header (8 dimensions)


def _gunzip(raw, path, limit):
    """The gunzipped bytes of raw (gzip members one after another), stopping once they pass
    `limit` bytes: at most limit + 1 bytes are made, whatever the data expand to."""
    out = bytearray()
    data = raw
    try:
        while data:
            d = zlib.decompressobj(wbits=31)
            while True:
                out += d.decompress(data, limit + 1 - len(out))
                if len(out) > limit:
                    return bytes(out)
                data = d.unconsumed_tail
                if d.eof or not data:
                    break
            if not d.eof:
                raise EOFError("the gzip stream ends before its end marker")
            data = d.unused_data
    except (EOFError, zlib.error) as e:
        raise DatasetFileError(f"{path}: broken gzip data ({e}); the file is truncated or "
                               f"corrupt: delete it and download it again") from None
    return bytes(out)


def read_idx(path):
    """Read an IDX file (raw or gzip) into a native-endian ndarray of its shape.

    Raises DatasetFileError (a ValueError) naming `path` if the file is not a well-formed IDX
    file; FileNotFoundError if it does not exist. Gzip data are unpacked only as far as the
    header declares (a small file of highly compressed zeros cannot fill the memory).
    """
    path = os.fspath(path)
    with open(path, "rb") as f:
        raw = f.read()
    gz = raw[:2] == _GZIP_MAGIC
    data = _gunzip(raw, path, _HEAD_MAX) if gz else raw
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
    if nbytes > _MAX_BYTES or (gz and nbytes > _GZIP_RATIO * len(raw)):
        raise DatasetFileError(f"{path}: IDX header declares shape {shape} ({nbytes} bytes)"
                               f"{f' in {len(raw)} bytes of gzip data' if gz else ''}: "
                               f"corrupt header")
    if gz:
        data = _gunzip(raw, path, head + nbytes)
    if len(data) - head != nbytes:
        short = len(data) - head < nbytes
        held = f"{len(data) - head}" if short or not gz else "more"  # gunzipping stopped
        raise DatasetFileError(f"{path}: {'truncated' if short else 'has trailing bytes'}: "
                               f"header declares shape {shape} of {dtype.name} ({nbytes} "
                               f"data bytes) but the file holds {held}")
    try:
        arr = np.frombuffer(data, dtype, offset=head).reshape(shape)
    except ValueError:  # empty, with other sizes past what NumPy can index: (0, 2^32-1, ..)
        raise DatasetFileError(f"{path}: IDX header declares shape {shape}, which NumPy "
                               f"cannot hold: corrupt header") from None
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
