"""scikit-learn's ``train_test_split``, NumPy only. Internal."""

import math
import numbers

import numpy as np

__all__ = ["train_test_split"]


def _num_samples(a):
    if hasattr(a, "shape") and len(getattr(a, "shape")) > 0:
        return int(a.shape[0])
    if hasattr(a, "__len__"):
        return len(a)
    raise TypeError(f"train_test_split: expected arrays or sequences, got {type(a).__name__}")


def _take(a, idx):
    """Rows `idx` of `a`: fancy indexing for arrays, a list of items for other sequences."""
    if hasattr(a, "shape") and hasattr(a, "__getitem__") and not isinstance(a, (list, tuple)):
        return a[idx]
    return [a[i] for i in idx]


def _sizes(n, test_size, train_size, default_test_size=0.25):
    """(n_train, n_test) as sklearn's _validate_shuffle_split computes them."""
    def kind(v, name):
        if v is None:
            return None
        if isinstance(v, numbers.Integral) and not isinstance(v, bool):
            if v <= 0 or v >= n:
                raise ValueError(f"{name}={v} should be either positive and smaller than the number of samples "
                                 f"{n} or a float in the (0, 1) range")
            return "i"
        if isinstance(v, numbers.Real) and not isinstance(v, bool):
            if not 0 < v < 1:
                raise ValueError(f"{name}={v} should be either positive and smaller than the number of samples "
                                 f"{n} or a float in the (0, 1) range")
            return "f"
        raise ValueError(f"Invalid value for {name}: {v!r}")

    if test_size is None and train_size is None:
        test_size = default_test_size
    test_kind, train_kind = kind(test_size, "test_size"), kind(train_size, "train_size")
    if test_kind == "f" and train_kind == "f" and train_size + test_size > 1:
        raise ValueError(f"The sum of test_size and train_size = {train_size + test_size}, should be in the (0, 1) "
                         "range. Reduce test_size and/or train_size.")
    if test_kind == "f":
        n_test = math.ceil(test_size * n)
    elif test_kind == "i":
        n_test = int(test_size)
    if train_kind == "f":
        n_train = math.floor(train_size * n)
    elif train_kind == "i":
        n_train = int(train_size)
    if train_size is None:
        n_train = n - n_test
    elif test_size is None:
        n_test = n - n_train
    if n_train + n_test > n:
        raise ValueError(f"The sum of train_size and test_size = {n_train + n_test}, should be smaller than the "
                         f"number of samples {n}. Reduce test_size and/or train_size.")
    if n_train == 0:
        raise ValueError(f"With n_samples={n}, test_size={test_size} and train_size={train_size}, the resulting "
                         "train set will be empty. Adjust any of the aforementioned parameters.")
    return n_train, n_test


def _random_state(random_state):
    if random_state is None:
        return np.random.mtrand._rand  # NumPy's global RandomState, as sklearn's check_random_state
    if isinstance(random_state, numbers.Integral) and not isinstance(random_state, bool):
        return np.random.RandomState(random_state)
    if isinstance(random_state, np.random.RandomState):
        return random_state
    raise ValueError(f"{random_state!r} cannot be used to seed a numpy.random.RandomState instance")


def train_test_split(*arrays, test_size=None, train_size=None, random_state=None, shuffle=True, stratify=None):
    """Splits arrays (same first dimension) into random train and test subsets, as scikit-learn's
    ``train_test_split``: returns ``[a_train, a_test, b_train, b_test, ...]``.

    ``test_size`` / ``train_size``: a float in (0, 1) (a fraction; the test count is rounded up,
    the train count down) or an int (a count); by default the test set is 0.25 and the train set
    the rest. ``random_state``: an int, a ``numpy.random.RandomState`` or None (NumPy's global
    generator). With ``shuffle=True`` the rows are drawn by ``RandomState(random_state).permutation``
    exactly as scikit-learn draws them, so the same ``random_state`` gives scikit-learn's split;
    with ``shuffle=False`` the first rows train and the next ones test. ``stratify`` is not
    supported (ValueError)."""
    if not arrays:
        raise ValueError("At least one array required as input")
    if stratify is not None:
        raise ValueError("train_test_split: stratify is not supported by lamina.datasets")
    lengths = [_num_samples(a) for a in arrays]
    if len(set(lengths)) > 1:
        raise ValueError(f"Found input variables with inconsistent numbers of samples: {lengths}")
    n = lengths[0]
    n_train, n_test = _sizes(n, test_size, train_size)
    if shuffle:
        permutation = _random_state(random_state).permutation(n)
        test, train = permutation[:n_test], permutation[n_test:n_test + n_train]
    else:
        train, test = np.arange(n_train), np.arange(n_train, n_train + n_test)
    out = []
    for a in arrays:
        out += [_take(a, train), _take(a, test)]
    return out
