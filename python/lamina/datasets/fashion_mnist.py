"""Zalando's Fashion-MNIST (ten kinds of clothing), as ``keras.datasets.fashion_mnist``."""

from . import _mnist_shaped

__all__ = ["load_data"]


def load_data(path=None):
    """``(x_train, y_train), (x_test, y_test)``: 60,000 training and 10,000 test images of
    clothing, uint8 arrays of shape (N, 28, 28) with pixels 0..255, and their labels 0..9 (0
    T-shirt/top ... 9 ankle boot), uint8 arrays of shape (N,), as Keras' ``fashion_mnist.load_data()``.

    The four IDX files (raw or ``.gz``) are read from ``path`` when given (a directory or an
    ``.npz``), else from the first of ``$LAMINA_DATA/fashion-mnist``, ``./data/fashion-mnist``, the
    Lamina checkout's ``data/fashion-mnist``, ``~/.lamina/datasets/fashion-mnist`` and Debian's
    ``/usr/share/datasets/fashion-mnist`` (package ``dataset-fashion-mnist``) that has them, else
    fetched into ``~/.lamina/datasets/fashion-mnist`` by downloading and unpacking that Debian
    package, as ``scripts/fetch-data.sh fashion_mnist`` does. FileNotFoundError (an OSError)
    lists every place looked when they are nowhere and cannot be fetched."""
    return _mnist_shaped.load("fashion-mnist", path)
