#!/usr/bin/env bash
# Installs what Lamina's build, tests and examples need, from Debian's archive.
# Idempotent and quick: it only calls apt-get when a package is missing.
#   scripts/setup.sh           build + tests
#   scripts/setup.sh --dev     also python3-torch, to regenerate tests/fixtures
set -euo pipefail

packages=(build-essential cmake pkg-config libdnnl-dev googletest libgtest-dev nlohmann-json3-dev
          zlib1g-dev libcli11-dev)
for arg in "$@"; do
  case "$arg" in
    --dev) packages+=(python3-torch python3-numpy) ;;
    *) echo "setup.sh: unknown option '$arg' (known: --dev)" >&2; exit 2 ;;
  esac
done

missing=()
for p in "${packages[@]}"; do
  status=$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null || true)
  [[ "$status" == "install ok installed" ]] || missing+=("$p")
done
[[ ${#missing[@]} -eq 0 ]] && exit 0

echo "setup.sh: installing ${missing[*]}"
sudo=""
if [[ $(id -u) -ne 0 ]]; then
  command -v sudo >/dev/null || { echo "setup.sh: need root or sudo to install ${missing[*]}" >&2; exit 1; }
  sudo="sudo"
fi
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -qq
$sudo apt-get install -y -qq --no-install-recommends "${missing[@]}"
