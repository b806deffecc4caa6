"""Fashion-MNIST (Zalando): 60,000 train + 10,000 test grayscale 28x28 images of clothing,
labels 0-9 (CLASS_NAMES), a drop-in replacement for MNIST.

    (x_train, y_train), (x_test, y_test) = pynn.datasets.fashion_mnist.load_data()

Debian's `apt-get install dataset-fashion-mnist` puts the files in
/usr/share/datasets/fashion-mnist/, one of the places searched (see pynn.datasets).
"""
from ._base import IdxImageDataset

__all__ = ["load_data", "load_split", "CLASS_NAMES", "DATASET"]

CLASS_NAMES = ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt",
               "Sneaker", "Bag", "Ankle boot")

DATASET = IdxImageDataset(
    name="fashion-mnist",
    title="Fashion-MNIST",
    files={"train": ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz"),
           "test": ("t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz")},
    # md5 of the published gzip files (the data set's README)
    checksums={"train-images-idx3-ubyte.gz": "8d4fb7e6c68d591d4c3dfef9ec88bf0d",
               "train-labels-idx1-ubyte.gz": "25c81989df183df01b3e8a0aad5dffbe",
               "t10k-images-idx3-ubyte.gz": "bef4ecab320f06d8554ea6380940ec79",
               "t10k-labels-idx1-ubyte.gz": "bb300cfdad3c16e7a12a480ee83cd310"},
    mirrors=["https://storage.googleapis.com/tensorflow/tf-keras-datasets/",
             "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/"],
)


def load_data(path=None, download=True):
    """Load Fashion-MNIST: ((x_train, y_train), (x_test, y_test)).

    x: uint8 (N, 28, 28) in [0, 255]; y: uint8 (N,) in [0, 9] (names in CLASS_NAMES);
    N = 60000 and 10000. Arguments and errors as pynn.datasets.mnist.load_data.
    """
    return DATASET.load_data(path, download)


def load_split(split, path=None, download=True):
    """One split, 'train' or 'test': (x, y)."""
    return DATASET.load_split(split, path, download)
