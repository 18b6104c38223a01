"""The package under test is the one the build made, at the build's version: the ctest
(python.pytest) passes LAMINA_PYTHON_PATH (<build>/python) and LAMINA_VERSION (CMake's
project version). Run by hand, the version is read from the top CMakeLists.txt instead."""

import os
import pathlib
import re

import pytest

import lamina

REPO = pathlib.Path(__file__).resolve().parents[2]


def cmake_version():
    text = (REPO / "CMakeLists.txt").read_text()
    return re.search(r"project\(\s*Lamina\s+VERSION\s+([0-9][0-9.]*)", text).group(1)


def test_version_is_the_projects():
    expected = os.environ.get("LAMINA_VERSION") or cmake_version()
    assert lamina.__version__ == expected
    # The extension reports the version it was compiled with; the package re-exports it.
    assert lamina._lamina.__version__ == expected


def test_extension_is_the_builds():
    path = os.environ.get("LAMINA_PYTHON_PATH")
    if not path:
        pytest.skip("LAMINA_PYTHON_PATH is not set (the ctest sets it)")
    build = pathlib.Path(path).resolve()
    extension = pathlib.Path(lamina._lamina.__file__).resolve()
    package = pathlib.Path(lamina.__file__).resolve()
    # Not the source tree's python/lamina, nor an installed copy: both halves from the build.
    assert extension.parent == build / "lamina", extension
    assert package.parent == build / "lamina", package


def test_keras_alias_is_the_package():
    from lamina import keras
    assert keras is lamina
    assert keras.layers.Dense is lamina.layers.Dense
