"""The loader shared by mnist and fashion_mnist. Internal."""

import os

import numpy as np

from . import _files


def load(set_dir, path):
    """((x_train, y_train), (x_test, y_test)) of an MNIST-shaped set: images (N, 28, 28) and
    labels (N,), uint8, from `path` (a directory of the four IDX files, or an .npz with Keras'
    keys) or else from where _files.find_set finds the set."""
    if path is not None:
        path = os.fspath(path)
        if not os.path.isabs(path) and not os.path.exists(path):
            # Keras reads a relative path in its cache directory (~/.keras/datasets); ours is
            # ~/.lamina/datasets. Keras' own default name, absent there, means "the usual set".
            cached = os.path.join(_files.cache_dir(), path)
            if os.path.exists(cached):
                path = cached
            elif path == set_dir.replace("-", "_") + ".npz" or path == "mnist.npz":
                path = None
    if path is not None:
        if path.endswith(".npz") and os.path.isfile(path):
            with np.load(path, allow_pickle=False) as f:
                return (f["x_train"], f["y_train"]), (f["x_test"], f["y_test"])
        if not os.path.isdir(path):
            raise FileNotFoundError(f"{set_dir}: {path} is neither a directory of IDX files nor an .npz file")
        directory = path
    else:
        directory = _files.find_set(set_dir)
    files = _files.idx_paths(directory)
    missing = [n for n, f in zip(_files.IDX_NAMES, files) if f is None]
    if missing:
        raise FileNotFoundError(f"{set_dir}: {directory} has no " + ", ".join(n + "[.gz]" for n in missing))
    x_train, y_train, x_test, y_test = (_files.read_idx(f) for f in files)
    for x, y, xf, yf in ((x_train, y_train, files[0], files[1]), (x_test, y_test, files[2], files[3])):
        if x.ndim != 3 or x.shape[1:] != (28, 28):
            raise OSError(f"{xf}: images of shape {x.shape}, expected (N, 28, 28)")
        if y.ndim != 1 or len(y) != len(x):
            raise OSError(f"{yf}: {y.shape} labels for {len(x)} images in {xf}")
    return (x_train, y_train), (x_test, y_test)
