"""Keras' utilities the course's code uses."""

import numpy as np

from . import _lamina

__all__ = ["to_categorical", "set_random_seed"]


def to_categorical(y, num_classes=None, dtype="float32"):
    """One-hot rows (N, num_classes) for integer labels (N,), as keras.utils.to_categorical."""
    y = np.asarray(y, dtype="int64").reshape(-1)
    if num_classes is None:
        num_classes = int(y.max()) + 1 if y.size else 0
    if y.size and (y.min() < 0 or y.max() >= num_classes):
        raise ValueError(f"to_categorical: labels must be in [0, {num_classes}), got {y.min()} to {y.max()}")
    out = np.zeros((y.size, num_classes), dtype=dtype)
    out[np.arange(y.size), y] = 1
    return out


def set_random_seed(seed):
    """Seeds Lamina's generator (weights, shuffles, dropout) and NumPy's, as keras.utils.set_random_seed."""
    _lamina.manual_seed(int(seed))
    np.random.seed(int(seed) % (2 ** 32))
