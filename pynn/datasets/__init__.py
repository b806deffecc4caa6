"""Data sets with Keras' loaders: `mnist.load_data()`, `fashion_mnist.load_data()`, and
`tinyshakespeare.load_data()` (a character corpus: encoded splits and its vocabulary).

Each returns ((x_train, y_train), (x_test, y_test)) as uint8 arrays. Files are searched in:
the `path` argument, $PYNN_DATA, ~/.pynn/datasets, /usr/share/datasets (Debian), then
downloaded with checksum verification into the cache (see _base.py for the details).
Errors are DatasetError (a ValueError): DatasetNotFoundError says where to put which files;
DatasetFileError names a corrupt or truncated file.
"""
from . import fashion_mnist, mnist, tinyshakespeare
from ._base import (ChecksumError, DatasetNotFoundError, DownloadError, cache_dir,
                    download_file, search_dirs)
from ._idx import DatasetError, DatasetFileError, read_idx, write_idx

__all__ = ["mnist", "fashion_mnist", "tinyshakespeare", "DatasetError", "DatasetFileError",
           "DatasetNotFoundError", "DownloadError", "ChecksumError", "read_idx", "write_idx",
           "search_dirs", "cache_dir", "download_file"]
