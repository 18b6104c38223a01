"""scikit-learn's ``load_digits`` (the course's first program uses it; sklearn is not needed). Internal."""

import gzip
import os

import numpy as np

from . import _files

__all__ = ["Bunch", "load_digits"]


class Bunch(dict):
    """A dict whose keys are also attributes, as scikit-learn's ``sklearn.utils.Bunch``."""

    def __init__(self, **kwargs):
        super().__init__(kwargs)

    def __getattr__(self, key):
        try:
            return self[key]
        except KeyError:
            raise AttributeError(key) from None

    def __setattr__(self, key, value):
        self[key] = value

    def __dir__(self):
        return list(self.keys())


_DESCR = """Optical recognition of handwritten digits dataset (scikit-learn's copy of the UCI set).

1,797 8x8 images of the digits 0..9 (about 180 per class); each pixel an integer 0..16, the count
of on-pixels in a 4x4 block of the original 32x32 bitmaps. Features: 64; classes: 10.
"""


def load_digits(*, n_class=10, return_X_y=False, as_frame=False, path=None):
    """The 8x8 handwritten digits, as scikit-learn's ``load_digits``: a Bunch with

    - ``data``: (n_samples, 64) float64, pixels 0..16, row-major within each image;
    - ``target``: (n_samples,) int labels;
    - ``images``: (n_samples, 8, 8), a view of ``data``;
    - ``target_names`` (``arange(n_class)``), ``feature_names`` (``pixel_<row>_<col>``),
      ``frame`` (None) and ``DESCR``;

    or ``(data, target)`` with ``return_X_y=True``. ``n_class`` keeps the classes 0..n_class-1
    (all 1,797 samples for 10). ``as_frame=True`` (pandas) is not supported.

    Reads scikit-learn's ``digits.csv.gz`` (64 pixels and the label per line) from ``path`` when
    given, else from the first of ``$LAMINA_DATA/digits``, ``./data/digits``, the Lamina checkout's
    ``data/digits``, ``~/.lamina/datasets/digits`` and an installed Debian ``python3-sklearn`` that
    has it, else fetches it into ``~/.lamina/datasets/digits`` from Debian's python3-sklearn
    package (downloaded and unpacked, not installed), as ``scripts/fetch-data.sh digits`` does."""
    if as_frame:
        raise ValueError("load_digits: as_frame=True (a pandas DataFrame) is not supported; use the arrays")
    if not isinstance(n_class, (int, np.integer)) or not 1 <= n_class <= 10:
        raise ValueError(f"load_digits: n_class must be an integer in [1, 10], got {n_class!r}")
    if path is None:
        path = os.path.join(_files.find_set("digits"), "digits.csv.gz")
    path = os.fspath(path)
    opener = gzip.open if path.endswith(".gz") else open
    try:
        with opener(path, "rt") as f:
            table = np.loadtxt(f, delimiter=",", dtype=np.float64, ndmin=2)
    except (OSError, EOFError) as e:
        raise OSError(f"{path}: cannot read: {e}") from e
    except ValueError as e:  # a field that is not a number
        raise OSError(f"{path}: not scikit-learn's digits CSV: {e}") from e
    if table.shape[1] != 65:
        raise OSError(f"{path}: {table.shape[1]} columns per line, expected 65 (64 pixels and the label)")
    data = np.ascontiguousarray(table[:, :-1])
    target = table[:, -1].astype(int)
    if target.size and (target.min() < 0 or target.max() > 9 or np.any(table[:, -1] != target)):
        raise OSError(f"{path}: labels must be integers 0..9")
    if n_class < 10:
        keep = target < n_class
        data, target = data[keep], target[keep]
    if return_X_y:
        return data, target
    return Bunch(data=data, target=target, frame=None,
                 feature_names=[f"pixel_{r}_{c}" for r in range(8) for c in range(8)],
                 target_names=np.arange(n_class), images=data.view().reshape(-1, 8, 8), DESCR=_DESCR)
