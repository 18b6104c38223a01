# Shared by the CLI test scripts: checks that keep stdout, stderr and the exit status of a command
# and count failures in FAILS. The sourcing script sets WORK (a scratch directory) and FAILS=0.
fail() { echo "FAIL: $*" >&2; echo "--- stdout"; cat "$WORK/out"; echo "--- stderr"; cat "$WORK/err"; FAILS=$((FAILS + 1)); }
pass() { echo "ok: $*"; }
# run CMD...: runs it, keeping stdout, stderr and the exit status.
run() { "$@" >"$WORK/out" 2>"$WORK/err"; RC=$?; }
no_crash() { ! grep -q -e 'terminate called' -e 'Aborted' -e 'Segmentation' "$WORK/err"; }

# expect_ok NAME CMD...: exit 0 and no crash text.
expect_ok() {
  local name=$1; shift
  run "$@"
  if [[ $RC -eq 0 ]] && no_crash; then pass "$name"; else fail "$name (exit $RC)"; fi
}
# expect_error NAME RC PATTERN CMD...: that exit status, PATTERN (extended regex) on stderr,
# "lamina: error:" for status 1, and nothing that looks like a crash.
expect_error() {
  local name=$1 want=$2 pattern=$3; shift 3
  run "$@"
  if [[ $RC -ne $want ]]; then fail "$name: exit $RC, expected $want"; return; fi
  if ! grep -Eq -- "$pattern" "$WORK/err"; then fail "$name: stderr lacks /$pattern/"; return; fi
  if [[ $want -eq 1 ]] && ! grep -q '^lamina: error: ' "$WORK/err"; then fail "$name: no 'lamina: error:' line"; return; fi
  if ! no_crash; then fail "$name: crashed"; return; fi
  pass "$name: $(head -c 160 "$WORK/err" | tr "\n" " ")"
}
# json_number FILE SECTION KEY: KEY's value inside the "SECTION": {...} object of a report.
json_number() {
  awk -v sec="\"$2\":" -v key="\"$3\":" '
    $1 == sec { inside = 1; next }
    inside && $1 == key { v = $2; sub(/,$/, "", v); print v; exit }
    inside && /}/ { inside = 0 }' "$1"
}
