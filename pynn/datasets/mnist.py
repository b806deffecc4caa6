"""MNIST handwritten digits: 60,000 train + 10,000 test grayscale 28x28 images, labels 0-9.

    (x_train, y_train), (x_test, y_test) = pynn.datasets.mnist.load_data()

Searched locally first (see pynn.datasets), then downloaded from the mirrors below and checked
against the official checksums.
"""
from ._base import IdxImageDataset

__all__ = ["load_data", "load_split", "DATASET"]

DATASET = IdxImageDataset(
    name="mnist",
    title="MNIST",
    files={"train": ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz"),
           "test": ("t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz")},
    # (md5, sha256) of the published gzip files
    checksums={
        "train-images-idx3-ubyte.gz": (
            "f68b3c2dcbeaaa9fbdd348bbdeb94873",
            "440fcabf73cc546fa21475e81ea370265605f56be210a4024d2ca8f203523609"),
        "train-labels-idx1-ubyte.gz": (
            "d53e105ee54ea40749a09fcbcd1e9432",
            "3552534a0a558bbed6aed32b30c495cca23d567ec52cac8be1a0730e8010255c"),
        "t10k-images-idx3-ubyte.gz": (
            "9fb629c4189551a2d022fa330f9573f3",
            "8d422c7b0a1c1c79245a5bcf07fe86e33eeafee792b84584aec276f5a2dbc4e6"),
        "t10k-labels-idx1-ubyte.gz": (
            "ec29112dd5afa0611ce80d1b7f02629c",
            "f7ae60f92e00ec6debd23a6088c31dbd2371eca3ffa0defaefb259924204aec6"),
    },
    mirrors=["https://ossci-datasets.s3.amazonaws.com/mnist/",
             "https://storage.googleapis.com/cvdf-datasets/mnist/",
             "http://yann.lecun.com/exdb/mnist/"],
    keras_npz="mnist.npz",
)


def load_data(path=None, download=True):
    """Load MNIST: ((x_train, y_train), (x_test, y_test)).

    x: uint8 (N, 28, 28) in [0, 255]; y: uint8 (N,) in [0, 9]; N = 60000 and 10000.
    path: a folder to search first (and to download into); download=False never goes to
    the network. Raises pynn.datasets.DatasetNotFoundError (saying where to put which files)
    when no copy is found or can be fetched, DatasetFileError for a corrupt file.
    """
    return DATASET.load_data(path, download)


def load_split(split, path=None, download=True):
    """One split, 'train' or 'test': (x, y)."""
    return DATASET.load_split(split, path, download)
