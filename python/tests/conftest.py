"""Shared fixtures for the lamina pytest suite: small seeded synthetic data, and where to find
the lamina CLI (for the Python <-> C++ file round trips).

Run with the package built: PYTHONPATH=<build>/python python3 -m pytest -q python/tests
"""

import os
import pathlib
import shutil

import numpy as np
import pytest

import lamina


@pytest.fixture(autouse=True)
def _seed():
    # Every test starts from the same generator state, so a failure reproduces on its own.
    lamina.utils.set_random_seed(1234)


def blobs(n=256, features=4, classes=3, seed=0):
    """Linearly separable-ish classes: x float32 (n, features), y int labels (n,)."""
    rng = np.random.default_rng(seed)
    centers = rng.normal(0, 3, size=(classes, features))
    y = rng.integers(0, classes, size=n)
    x = centers[y] + rng.normal(0, 1, size=(n, features))
    return x.astype(np.float32), y.astype(np.int64)


def regression(n=256, features=4, outputs=1, seed=0):
    """y = x @ w + b + noise: x float32 (n, features), y float32 (n, outputs)."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, features)).astype(np.float32)
    w = rng.normal(size=(features, outputs)).astype(np.float32)
    y = x @ w + 0.5 + 0.01 * rng.normal(size=(n, outputs)).astype(np.float32)
    return x, y.astype(np.float32)


def mlp(features=4, classes=3, hidden=16, activation="softmax"):
    return lamina.Sequential([
        lamina.layers.Dense(hidden, activation="relu", input_shape=(features,)),
        lamina.layers.Dense(classes, activation=activation),
    ])


def cli_path():
    """The lamina CLI: $LAMINA_CLI (the ctest sets it), else the one beside the package's build
    dir (<build>/python/lamina -> <build>/lamina), else None."""
    env = os.environ.get("LAMINA_CLI")
    if env:
        return env if os.access(env, os.X_OK) else None
    build = pathlib.Path(lamina.__file__).resolve().parent.parent.parent
    candidate = build / "lamina"
    if candidate.is_file() and os.access(candidate, os.X_OK):
        return str(candidate)
    found = shutil.which("lamina")
    return found


@pytest.fixture
def cli():
    path = cli_path()
    if path is None:
        pytest.skip("the lamina CLI was not found (set LAMINA_CLI)")
    return path
