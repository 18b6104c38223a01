#!/usr/bin/env bash
# make fuzz: runs every libFuzzer target built in BUILD/fuzz (or those named in $FUZZ_TARGETS),
# all at once, each for SECONDS. Each grows a working corpus in BUILD/fuzz-corpus/<target> from
# the committed seeds in fuzz/corpus/<target> (left as they are) and writes any crash, leak,
# timeout (-timeout) or out-of-memory (-rss_limit_mb, and any single malloc past it) input to
# BUILD/crashes/<target>-*. Prints executions and coverage per target; exits 1 on a finding.
#   fuzz/run.sh build-fuzz 60
# Reproduce a finding: BUILD/fuzz/fuzz_<target> BUILD/crashes/<target>-crash-...
# $FUZZ_ARGS goes to every target (e.g. FUZZ_ARGS="-fork=1 -ignore_crashes=1" to keep going).
# Inputs may grow to $FUZZ_MAX_LEN bytes (4 MiB): libFuzzer's default of 4 KB hid a whole class of
# crash (JSON nested 100,000 deep, issue 12); the dictionaries hold 32-level tokens to reach it.
# -len_control=0 ($FUZZ_LEN_CONTROL) lets inputs grow to that size at once: with libFuzzer's
# default (100) a 180 s run never went past 6 KB.
set -uo pipefail
build=${1:?usage: fuzz/run.sh BUILD_DIR SECONDS}
seconds=${2:-60}
cd "$(dirname "$0")/.."
targets=${FUZZ_TARGETS:-$(cd "$build/fuzz" && ls fuzz_* 2>/dev/null | sed 's/^fuzz_//')}
[[ -n "$targets" ]] || { echo "fuzz/run.sh: no fuzz_* targets in $build/fuzz" >&2; exit 2; }
mkdir -p "$build/crashes"
stamp=$build/crashes/.started  # findings of this run are the files newer than it
touch "$stamp"
# Leaks are findings too; a UB report already aborts (-fno-sanitize-recover=all).
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:check_initialization_order=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1}

echo "fuzz: $(echo $targets | wc -w) targets for ${seconds}s each, in parallel (logs: $build/fuzz-<target>.log)"
pids=()
for t in $targets; do
  mkdir -p "$build/fuzz-corpus/$t"
  dict=()
  [[ -f fuzz/dict/$t.dict ]] && dict=(-dict="fuzz/dict/$t.dict")
  "$build/fuzz/fuzz_$t" "$build/fuzz-corpus/$t" "fuzz/corpus/$t" "${dict[@]}" \
    -max_total_time="$seconds" -max_len="${FUZZ_MAX_LEN:-4194304}" -len_control="${FUZZ_LEN_CONTROL:-0}" -timeout=10 -rss_limit_mb=2048 \
    -artifact_prefix="$build/crashes/$t-" -print_final_stats=1 ${FUZZ_ARGS:-} >"$build/fuzz-$t.log" 2>&1 &
  pids+=($!)
done
for p in "${pids[@]}"; do wait "$p"; done

status=0
printf '%-8s %12s %8s %8s %9s  %s\n' target executions exec/s cov features findings
for t in $targets; do
  log=$build/fuzz-$t.log
  # The last status line: "#N ... cov: C ft: F ... exec/s: E" (or "#N: cov: ..." with -fork).
  last=$(grep -E '^#[0-9]+' "$log" | tail -1)
  runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
  [[ -n "$runs" ]] || runs=$(sed -n 's/^#\([0-9]*\).*/\1/p' <<<"$last")
  speed=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log" | tail -1)
  [[ -n "$speed" ]] || speed=$(sed -n 's/.*exec\/s:* \([0-9]*\).*/\1/p' <<<"$last")
  cov=$(sed -n 's/.* cov: \([0-9]*\).*/\1/p' <<<"$last")
  ft=$(sed -n 's/.* ft: \([0-9]*\).*/\1/p' <<<"$last")
  found=$(find "$build/crashes" -name "$t-*" -newer "$stamp" 2>/dev/null | wc -l)
  if grep -qE '^==[0-9]+==ERROR|^SUMMARY: |fuzz: |deadly signal' "$log" || [[ $found -gt 0 ]]; then
    status=1
    found="$found: see $log"
  fi
  printf '%-8s %12s %8s %8s %9s  %s\n' "$t" "${runs:-?}" "${speed:-?}" "${cov:-?}" "${ft:-?}" "$found"
done
exit $status
