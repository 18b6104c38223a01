#!/usr/bin/env bash
# The cases of tests/distributed that need more than one mpirun: what a failure looks like, and
# Gloo (two processes started by hand, as a scheduler would). Prints everything the ranks said.
#   run.sh fault_timeout|peer_dies|gloo_2 COMM_TEST MPIEXEC
set -uo pipefail
mode=$1 comm_test=$2 mpiexec=$3
mpirun=("$mpiexec" --mca btl self,vader --bind-to none)
fail() { echo "run.sh $mode: FAILED: $*" >&2; exit 1; }
now() { date +%s.%N; }
elapsed() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.1f", b - a }'; }

case "$mode" in
  fault_timeout)
    # The last rank skips an allreduce; rank 0 must throw after LAMINA_DIST_TIMEOUT (2 s) with
    # the message checked in comm_test.cpp, then MPI_Abort(3) stops the job.
    start=$(now)
    out=$(LAMINA_DIST_TIMEOUT=2 timeout 60 "${mpirun[@]}" -np 2 -x LAMINA_DIST_TIMEOUT "$comm_test" fault_timeout 2>&1)
    rc=$?
    echo "$out"
    echo "run.sh: mpirun returned $rc after $(elapsed "$start") s"
    grep -q "^fault_timeout: ok" <<<"$out" || fail "rank 0 did not report the timeout as expected"
    grep -q "got no answer from its peers in 2 s" <<<"$out" || fail "no timeout message"
    [[ $rc -ne 0 && $rc -ne 124 ]] || fail "mpirun returned $rc: the job was not aborted"
    ;;
  peer_dies)
    # The last rank _exit()s at step 5 of 200 allreduces. By default mpirun notices (a rank that
    # exits without MPI_Finalize) and kills the job; with orte_abort_on_non_zero_status 0 it does
    # not, and rank 0's allreduce must time out (LAMINA_DIST_TIMEOUT=2), say so and abort the job.
    # Either way: ended, non-zero, with a message, well within 60 s.
    for how in mpirun survivor; do
      extra=()
      [[ $how == survivor ]] && extra=(--mca orte_abort_on_non_zero_status 0)
      start=$(now)
      out=$(LAMINA_DIST_TIMEOUT=2 timeout 60 "${mpirun[@]}" "${extra[@]}" -np 2 -x LAMINA_DIST_TIMEOUT "$comm_test" peer_dies 2>&1)
      rc=$?
      echo "$out"
      echo "run.sh: ($how) mpirun returned $rc after $(elapsed "$start") s"
      [[ $rc -ne 124 ]] || fail "($how) the job still ran after 60 s: the survivor hangs"
      [[ $rc -ne 0 ]] || fail "($how) mpirun returned 0 although a rank died"
      grep -q "peer_dies: rank 1 exits now" <<<"$out" || fail "($how) rank 1 did not get to its exit"
      if [[ $how == mpirun ]]; then
        grep -Eq "peer_dies: rank 0 stops at step|exited with non-zero status" <<<"$out" || fail "no message says why"
      else
        grep -q "peer_dies: rank 0 stops at step 5: rank 0 of 2: allreduce of 1.0 MB got no answer from its peers in 2 s" \
          <<<"$out" || fail "(survivor) rank 0 did not report its peer's silence"
      fi
    done
    ;;
  gloo_2)
    # Two processes meeting in a fresh rendezvous directory, on the loopback interface: the
    # collectives, the timeout case (the sleeper outlives rank 0's 1 s timeout), a rank that dies.
    dir=$(mktemp -d)
    trap 'rm -rf "$dir"' EXIT
    run_pair() {  # $1: mode, $2: rendezvous subdirectory; returns when both ranks have exited
      mkdir -p "$dir/$2"
      local pids=() rc=0
      for rank in 0 1; do
        env -u OMPI_COMM_WORLD_SIZE -u PMI_SIZE -u PMIX_RANK LAMINA_RANK=$rank LAMINA_WORLD_SIZE=2 \
          LAMINA_RENDEZVOUS="$dir/$2" LAMINA_IFACE=lo "$comm_test" "$1" > "$dir/$2.$rank.log" 2>&1 &
        pids+=($!)
      done
      for i in 0 1; do wait "${pids[$i]}" || { echo "run.sh: gloo rank $i of $1 returned $?"; rc=1; }; done
      cat "$dir/$2".*.log
      return $rc
    }
    start=$(now)
    run_pair collectives collectives || fail "the collectives failed on Gloo"
    grep -q "comm_test: gloo, 2 ranks: .* 0 failed" "$dir"/collectives.0.log || fail "rank 0 did not report on Gloo"
    LAMINA_DIST_TIMEOUT=1 run_pair fault_timeout fault || fail "the timeout case failed on Gloo"
    grep -q "^fault_timeout: ok" "$dir"/fault.0.log || fail "rank 0 did not report the timeout on Gloo"
    # A rank that dies: the survivor's allreduce fails (the connection closes) instead of hanging.
    LAMINA_DIST_TIMEOUT=5 run_pair peer_dies dies && fail "the peer_dies case ended well on Gloo"
    grep -q "peer_dies: rank 0 stops at step 5: rank 0 of 2: allreduce of 1.0 MB" "$dir"/dies.0.log ||
      fail "rank 0 did not report its peer's death on Gloo"
    echo "run.sh: gloo done in $(elapsed "$start") s"
    ;;
  *) fail "unknown case (fault_timeout, peer_dies, gloo_2)" ;;
esac
echo "run.sh $mode: ok"
