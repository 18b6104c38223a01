#!/usr/bin/env bash
# Walks the bad-input corpus through the real CLI: every case in cases*.tsv beside this script
# (format in cases.tsv's header) runs `lamina ARGS` from this directory and must exit with the
# expected status, print every expected substring, print "lamina: error: ..." for status 1, and
# end without a signal, an abort, "terminate called" or a sanitizer report.
# Usage: run_corpus.sh PATH/TO/lamina [CORPUS_DIR] [NAME_FILTER (a grep -E pattern)]
set -u
LAMINA=$(realpath "${1:?usage: run_corpus.sh LAMINA_BINARY [CORPUS_DIR] [NAME_FILTER]}")
CORPUS=${2:-$(dirname "$0")}
FILTER=${3:-}
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
cd "$CORPUS" || exit 1

CASES=0 FAILS=0
fail() {
  echo "FAIL $1: $2"
  echo "  command: lamina ${ARGS[*]}"
  sed 's/^/  stdout: /' "$WORK/out" | head -20
  sed 's/^/  stderr: /' "$WORK/err" | head -20
  FAILS=$((FAILS + 1))
}

for manifest in cases*.tsv; do
  while IFS=$'\t' read -r name want args expected || [[ -n $name ]]; do
    [[ -z $name || $name == \#* ]] && continue
    [[ -n $FILTER ]] && ! [[ $name =~ $FILTER ]] && continue
    CASES=$((CASES + 1))
    mkdir -p "$WORK/$name"
    read -ra ARGS <<<"${args//\{work\}/$WORK/$name}"
    timeout 300 "$LAMINA" "${ARGS[@]}" >"$WORK/out" 2>"$WORK/err" </dev/null
    got=$?
    if [[ $got -ge 124 ]]; then fail "$name" "exit $got: killed by a signal or timed out (expected $want)"; continue; fi
    if [[ $got -ne $want ]]; then fail "$name" "exit $got, expected $want"; continue; fi
    if grep -qiE 'terminate called|Aborted|Segmentation fault|core dumped|Sanitizer|stack trace|^#[0-9]+ 0x' "$WORK/err"; then
      fail "$name" "crash text on stderr"; continue
    fi
    if [[ $want -eq 1 ]] && ! grep -q '^lamina: error: ' "$WORK/err"; then fail "$name" "no 'lamina: error:' line"; continue; fi
    missing=""
    IFS=$'\t' read -ra parts <<<"$expected"
    for part in "${parts[@]}"; do
      [[ -z $part ]] && continue
      cat "$WORK/out" "$WORK/err" | grep -qF -- "$part" || missing+=" [$part]"
    done
    if [[ -n $missing ]]; then fail "$name" "output lacks$missing"; continue; fi
    echo "ok $name"
  done <"$manifest"
done

echo "$CASES cases, $FAILS failed"
[[ $CASES -gt 0 && $FAILS -eq 0 ]]
