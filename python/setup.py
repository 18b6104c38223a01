"""Builds the lamina wheel with the repository's own CMake build (no scikit-build, nothing from an
index): `pip install --no-build-isolation ./python` from the repository root, in a virtual
environment (Debian's pip refuses to touch the system's site-packages, PEP 668):

    python3 -m venv --system-site-packages .venv     # numpy, setuptools and wheel from Debian
    .venv/bin/pip install --no-build-isolation ./python

build_ext configures <repo>/build (or $LAMINA_BUILD_DIR, relative to <repo>) if it is not
configured for this interpreter yet, builds the `_lamina` target there (incremental: after `make`
it only relinks what changed) and installs the CMake component `lamina_wheel` into the wheel: the extension, its
RPATH reduced to $ORIGIN, and liblamina.so.<soversion> beside it, the same engine the C++ programs
link. $CMAKE_BUILD_PARALLEL_LEVEL sets the build's jobs (default: all CPUs).
"""

import os
import re
import shutil
import sys
import sysconfig
from pathlib import Path

from setuptools import Extension, find_packages, setup
from setuptools.command.build import build
from setuptools.command.build_ext import build_ext

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
# Relative to the repository root (pip runs this file from a directory of its choosing).
BUILD_DIR = (ROOT / (os.environ.get("LAMINA_BUILD_DIR") or "build")).resolve()
STAGING = BUILD_DIR / "python" / "setuptools"


def project_version():
    """Lamina's version, from project(Lamina VERSION x.y.z) in the top CMakeLists.txt: one number
    for liblamina's soname, lamina --version, lamina.__version__ and the wheel."""
    text = (ROOT / "CMakeLists.txt").read_text()
    match = re.search(r"project\(\s*Lamina\s+VERSION\s+([0-9][0-9.]*)", text)
    if not match:
        raise RuntimeError(f"no project(Lamina VERSION ...) in {ROOT / 'CMakeLists.txt'}")
    return match.group(1)


def read_cache(build_dir):
    """The CMakeCache.txt entries of build_dir as {name: value} ({} when it is not configured)."""
    cache = Path(build_dir) / "CMakeCache.txt"
    if not cache.is_file():
        return {}
    entries = {}
    for line in cache.read_text(errors="replace").splitlines():
        match = re.match(r"([A-Za-z0-9_.+-]+):[A-Z_]+=(.*)$", line)
        if match:
            entries[match.group(1)] = match.group(2)
    return entries


def same_interpreter(a, b):
    # A virtual environment's python is a link to the interpreter it was made from, whose
    # extension ABI it shares: a build configured for /usr/bin/python3 serves a venv made from it.
    return bool(a) and bool(b) and os.path.realpath(a) == os.path.realpath(b)


class CleanBuild(build):
    """setuptools' staging area lives in the CMake build directory (python/setuptools there), not
    in the source tree, and starts empty each time: a module deleted from python/lamina must not
    linger in the next wheel."""

    def initialize_options(self):
        super().initialize_options()
        self.build_base = str(STAGING)

    def run(self):
        for stale in (self.build_lib, self.build_platlib, self.build_purelib):
            if stale and os.path.isdir(stale):
                shutil.rmtree(stale)
        super().run()


class CMakeBuild(build_ext):
    def build_extension(self, ext):
        build_dir = BUILD_DIR
        target = Path(self.get_ext_fullpath(ext.name)).resolve()

        cache = read_cache(build_dir)
        # python/CMakeLists.txt picks /usr/bin/python3 without caching the choice; FindPython
        # records what it found in _Python3_EXECUTABLE.
        configured_python = cache.get("Python3_EXECUTABLE") or cache.get("_Python3_EXECUTABLE")
        if (not cache or cache.get("LAMINA_PYTHON", "ON").upper() in ("OFF", "0", "FALSE", "NO")
                or not same_interpreter(configured_python, sys.executable)):
            # Configure only when needed, so that a build directory that `make` (or a running
            # ctest) uses is not regenerated for nothing. The interpreter is passed resolved: a
            # venv's path would go stale with the venv, the interpreter it points at stays.
            args = ["cmake", "-S", str(ROOT), "-B", str(build_dir), "-DLAMINA_PYTHON=ON"]
            if configured_python:
                # Another interpreter: FindPython keeps what it found for the old one (its
                # headers) in internal cache entries unless they go first.
                args += ["-U_Python3_*", "-UPython3_*"]
            args.append(f"-DPython3_EXECUTABLE={os.path.realpath(sys.executable)}")
            if not cache:
                # A fresh directory: the library and the extension, not the test suite (GoogleTest
                # is not needed to install the package; `make` turns the tests back on).
                args += ["-DCMAKE_BUILD_TYPE=Release", "-DLAMINA_BUILD_TESTS=OFF", "-DLAMINA_BUILD_BENCH=OFF"]
            self.spawn(args)
            cache = read_cache(build_dir)
        if cache.get("LAMINA_SANITIZE", "OFF").upper() == "ON" or cache.get("LAMINA_FUZZ", "OFF").upper() == "ON":
            raise RuntimeError(f"{build_dir} is a sanitizer/fuzzer build, which has no Python extension: "
                               "set LAMINA_BUILD_DIR to a plain build directory")

        build = ["cmake", "--build", str(build_dir), "--target", "_lamina", "lamina"]
        if "CMAKE_BUILD_PARALLEL_LEVEL" not in os.environ:
            build += ["-j", str(os.cpu_count() or 1)]
        try:
            self.spawn(build)
        except Exception as error:
            raise RuntimeError(f"building _lamina in {build_dir} failed; the extension needs python3-dev and "
                               "pybind11-dev (scripts/setup.sh installs them)") from error

        # cmake --install of the lamina_wheel component writes the extension (RPATH $ORIGIN) and
        # liblamina.so.<soversion> into the package directory of the wheel being built.
        self.spawn(["cmake", "--install", str(build_dir), "--component", "lamina_wheel",
                    "--prefix", str(target.parent)])
        if not target.is_file():
            built = sorted(p.name for p in target.parent.glob("_lamina*"))
            raise RuntimeError(f"CMake built {built or 'no _lamina module'} in {target.parent}, but this "
                               f"interpreter ({sys.executable}, {sysconfig.get_config_var('EXT_SUFFIX')}) "
                               f"imports {target.name}")


setup(
    version=project_version(),
    packages=find_packages(where=str(HERE), include=["lamina", "lamina.*"]),
    # Type information for every package: py.typed and the .pyi stubs beside the modules.
    package_data={"": ["py.typed", "*.pyi"]},
    # The sources list stays empty: CMake builds the module (build_ext above).
    ext_modules=[Extension("lamina._lamina", sources=[])],
    cmdclass={"build": CleanBuild, "build_ext": CMakeBuild},
    # egg_info's lamina.egg-info beside setuptools' staging area, out of the source tree.
    options={"egg_info": {"egg_base": str(STAGING)}},
    zip_safe=False,
)
