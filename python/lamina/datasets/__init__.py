"""Keras' datasets, and the two scikit-learn helpers the course's digits program uses::

    (x_train, y_train), (x_test, y_test) = lamina.datasets.mnist.load_data()
    (x_train, y_train), (x_test, y_test) = lamina.datasets.fashion_mnist.load_data()
    digits = lamina.datasets.load_digits()           # sklearn.datasets.load_digits
    X_train, X_test, y_train, y_test = lamina.datasets.train_test_split(X, y, test_size=0.2, random_state=1)

Each set is read from a Lamina checkout's ``data/`` (as ``scripts/fetch-data.sh`` leaves it), from
``$LAMINA_DATA`` or ``~/.lamina/datasets``, or else fetched there (see ``mnist.load_data``). NumPy only.
"""

from . import fashion_mnist, mnist
from ._digits import Bunch, load_digits
from ._split import train_test_split

__all__ = ["mnist", "fashion_mnist", "load_digits", "train_test_split", "Bunch"]
