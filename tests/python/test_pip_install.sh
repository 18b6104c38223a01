#!/usr/bin/env bash
# pip install ./python into a throwaway venv, as README.md tells users to, and use the installed
# package from elsewhere: it imports from the venv (not the source or build tree), trains, and its
# extension runs on the liblamina.so.<soversion> copied beside it in the wheel, the only one.
#   test_pip_install.sh <python> <source dir> <build dir> <version>
# <build dir> is the ctest's own, already built: pip's build_ext there only checks, copies and
# installs (seconds). --no-index: nothing is fetched; setuptools, wheel and numpy are Debian's,
# seen through --system-site-packages.
set -euo pipefail
python=$1 src=$2 build=$3 version=$4

fail() { echo "FAIL: $*" >&2; exit 1; }

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

"$python" -m venv --system-site-packages "$tmp/venv" ||
  fail "'$python -m venv' failed: python3-venv is missing (scripts/setup.sh --python installs it)"
venv_python=$tmp/venv/bin/python

# No user pip configuration (an index URL, --user), no PYTHONPATH (which would import the build
# tree's lamina instead of the installed one), and none of `make test`'s make flags (its jobserver
# is not ours) for the make that cmake --build runs.
unset PYTHONPATH MAKEFLAGS MFLAGS MAKELEVEL
export PIP_CONFIG_FILE=/dev/null PIP_DISABLE_PIP_VERSION_CHECK=1 LAMINA_BUILD_DIR=$build
"$venv_python" -m pip install --no-build-isolation --no-deps --no-index -q "$src/python" >"$tmp/pip.log" 2>&1 ||
  { cat "$tmp/pip.log" >&2; fail "pip install ./python failed"; }

site=$("$venv_python" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')
pkg=$site/lamina
# Every module, stub and py.typed of python/lamina, no more and no less.
listing() { (cd "$1" && find . -path '*/__pycache__' -prune -o -type f \( -name '*.py' -o -name '*.pyi' -o -name py.typed \) -print | sort); }
[[ -f $pkg/py.typed ]] || fail "the wheel lacks py.typed"
diff <(listing "$src/python/lamina") <(listing "$pkg") >&2 ||
  fail "the installed package's Python files differ from python/lamina's (< source, > installed)"

# One engine: exactly one liblamina (the soname file, a real file) beside one extension.
mapfile -t libs < <(cd "$pkg" && ls -1 liblamina* 2>/dev/null)
[[ ${#libs[@]} -eq 1 && ${libs[0]} =~ ^liblamina\.so\.[0-9]+$ && ! -L $pkg/${libs[0]} ]] ||
  fail "expected one liblamina.so.<soversion> file in $pkg, found: ${libs[*]:-none}"
lib=$pkg/${libs[0]}
mapfile -t exts < <(cd "$pkg" && ls -1 _lamina*.so)
[[ ${#exts[@]} -eq 1 ]] || fail "expected one _lamina extension, found: ${exts[*]}"
ext=$pkg/${exts[0]}

# The build tree's path must not travel in the wheel: the RPATH is $ORIGIN alone ...
rpath=$(readelf -d "$ext" | sed -n 's/.*(\(RPATH\|RUNPATH\)).*\[\(.*\)\]/\2/p')
[[ $rpath == '$ORIGIN' ]] || fail "the extension's RPATH is '$rpath', expected '\$ORIGIN'"
# ... so the dynamic linker resolves liblamina to the copy beside the extension.
resolved=$(ldd "$ext" | sed -n 's/^\s*liblamina\.so[.0-9]* => \(\S*\) .*/\1/p')
[[ $(readlink -f "$resolved") == $(readlink -f "$lib") ]] ||
  fail "ldd resolves liblamina to '$resolved', expected $lib"

# Import from another directory (not the source tree), train a small model, and check what the
# process really mapped.
cd "$tmp"
LAMINA_EXPECT_VERSION=$version LAMINA_EXPECT_LIB=$lib LAMINA_EXPECT_PKG=$pkg "$venv_python" - <<'EOF'
import os
import pathlib

import numpy as np

import lamina

expect_pkg = pathlib.Path(os.environ["LAMINA_EXPECT_PKG"]).resolve()
assert pathlib.Path(lamina.__file__).resolve().parent == expect_pkg, lamina.__file__
assert pathlib.Path(lamina._lamina.__file__).resolve().parent == expect_pkg, lamina._lamina.__file__
assert lamina.__version__ == os.environ["LAMINA_EXPECT_VERSION"], lamina.__version__

# Two separable classes: the fit must learn them.
rng = np.random.default_rng(0)
y = rng.integers(0, 2, size=256)
x = (rng.normal(size=(256, 4)) + 3.0 * y[:, None]).astype(np.float32)
lamina.utils.set_random_seed(7)
model = lamina.Sequential([lamina.layers.Dense(8, activation="relu", input_shape=(4,)),
                           lamina.layers.Dense(2, activation="softmax")])
model.compile(optimizer=lamina.optimizers.Adam(learning_rate=0.05), loss="sparse_categorical_crossentropy", metrics=["accuracy"])
history = model.fit(x, y, epochs=20, batch_size=32, verbose=0)
losses = history.history["loss"]
assert losses[-1] < 0.5 * losses[0], losses
accuracy = float(np.mean(np.argmax(model.predict(x, verbose=0), axis=1) == y))
assert accuracy > 0.95, accuracy

# The process mapped one liblamina, the wheel's.
mapped = set()
with open("/proc/self/maps") as maps:
    for line in maps:
        fields = line.split()
        if len(fields) >= 6 and os.path.basename(fields[5]).startswith("liblamina"):
            mapped.add(os.path.realpath(fields[5]))
assert mapped == {os.path.realpath(os.environ["LAMINA_EXPECT_LIB"])}, mapped
print(f"lamina {lamina.__version__} from {expect_pkg}: loss {losses[0]:.3f} -> {losses[-1]:.3f}, "
      f"accuracy {accuracy:.3f}")
EOF
echo "PASS: pip install ./python"
