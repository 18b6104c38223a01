#!/usr/bin/env bash
# Crash test of `lamina train --checkpoint`: trains a small MLP (with Dropout) on a synthetic CSV
# set made here, writing a checkpoint every 2 batches, and kills it with SIGKILL at random
# moments, KILLS times, resuming each time from whatever checkpoint survived. After every kill
# the checkpoint must load (`lamina summary`, now and then `evaluate`), and the directory may
# hold only checkpoints and the temporary files of killed writes. At the end the resumed run's
# model must equal an uninterrupted run's bit for bit, and no temporary file may be left.
# Usage: test_kill.sh PATH/TO/lamina [KILLS]   (KILL_SEED=n repeats a sequence of delays)
set -u
LAMINA=${1:?usage: test_kill.sh LAMINA_BINARY [KILLS]}
KILLS=${2:-30}
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
SEED=${KILL_SEED:-$$}
RANDOM=$SEED
FAILS=0
fail() { echo "FAIL: $*" >&2; FAILS=$((FAILS + 1)); }

# 1200 + 200 samples, 6 features, 3 classes: the class's feature is raised, plus noise.
(cd "$WORK" && awk 'BEGIN { srand(7); for (i = 0; i < 1400; i++) { c = i % 3; line = "";
       for (f = 0; f < 6; f++) line = line sprintf("%.4f,", rand() + (f == c ? 1.5 : 0));
       print line c > (i < 1200 ? "train.csv" : "test.csv") } }')
cat >"$WORK/spec.json" <<'EOF'
{
  "model": {"class_name": "Sequential", "config": {"name": "killme", "layers": [
    {"class_name": "Dense", "config": {"name": "hidden", "batch_input_shape": [null, 6], "units": 32, "activation": "relu"}},
    {"class_name": "Dropout", "config": {"name": "drop", "rate": 0.2}},
    {"class_name": "Dense", "config": {"name": "out", "units": 3, "activation": "softmax"}}]}},
  "data": {"train": "train.csv", "test": "test.csv"},
  "compile": {"optimizer": "adam", "loss": "sparse_categorical_crossentropy", "metrics": ["accuracy"]},
  "fit": {"epochs": 40, "batch_size": 32, "validation_split": 0.1, "shuffle": true, "seed": 11}
}
EOF
SPEC=$WORK/spec.json
CK=$WORK/ckpt
TRAIN=("$LAMINA" train "$SPEC" --quiet --threads 1 --checkpoint "$CK" --checkpoint-every 2)

start=$(date +%s.%N)
"$LAMINA" train "$SPEC" --quiet --threads 1 --save "$WORK/uninterrupted.safetensors" >/dev/null ||
  { echo "FAIL: the uninterrupted run failed"; exit 1; }

# The checkpoint directory holds checkpoints and, after a kill, temporary files of unfinished writes.
check_dir() {
  local f
  for f in "$CK"/*; do
    [[ -e $f ]] || continue
    case $(basename "$f") in
      last.safetensors | best.safetensors) ;;
      last.safetensors.tmp.* | best.safetensors.tmp.*) DEBRIS[$(basename "$f")]=1 ;;
      *) fail "unexpected file in the checkpoint directory: $f" ;;
    esac
  done
}

killed=0 resumed=0 evaluated=0
declare -A DEBRIS=()  # temporary files of killed writes, by name
finished=0
for ((i = 1; killed < KILLS && i <= 3 * KILLS; i++)); do
  args=("${TRAIN[@]}")
  if [[ -e $CK/last.safetensors ]]; then
    args+=(--resume "$CK/last.safetensors")
    resumed=$((resumed + 1))
  fi
  "${args[@]}" >"$WORK/out" 2>"$WORK/err" &
  pid=$!
  sleep "0.$(printf '%03d' $((20 + RANDOM % 230)))"
  kill -KILL "$pid" 2>/dev/null
  { wait "$pid"; } 2>/dev/null  # without bash's "Killed" notice
  rc=$?
  if [[ $rc -eq 0 ]]; then  # it finished before the kill (fast disk): start over
    finished=$((finished + 1))
    rm -rf "$CK"
    continue
  fi
  if [[ $rc -ne 137 ]]; then fail "run $i exited $rc before the kill: $(cat "$WORK/err")"; break; fi
  killed=$((killed + 1))
  check_dir
  if [[ -e $CK/last.safetensors ]]; then
    "$LAMINA" summary "$CK/last.safetensors" >"$WORK/summary" 2>&1 && grep -q 'Total params: 323' "$WORK/summary" ||
      fail "after kill $i the checkpoint does not load: $(cat "$WORK/summary")"
    if ((i % 5 == 0)); then
      "$LAMINA" evaluate "$CK/last.safetensors" --data "$WORK/test.csv" >"$WORK/eval" 2>&1 ||
        fail "after kill $i evaluate fails: $(cat "$WORK/eval")"
      evaluated=$((evaluated + 1))
    fi
  fi
done

# Finish from the last checkpoint, saving at epoch ends only (the frequency does not change the
# training); this run also clears the temporary files of killed writes.
args=("$LAMINA" train "$SPEC" --quiet --threads 1 --checkpoint "$CK" --save "$WORK/resumed.safetensors" --report "$WORK/report.json")
[[ -e $CK/last.safetensors ]] && args+=(--resume "$CK/last.safetensors")
"${args[@]}" >"$WORK/out" 2>"$WORK/err" || fail "the final run failed: $(cat "$WORK/err")"
cmp -s "$WORK/uninterrupted.safetensors" "$WORK/resumed.safetensors" ||
  fail "the model after $killed kills and resumes differs from the uninterrupted run"
from=$(grep -Eo '"initial_epoch": [0-9]+' "$WORK/report.json" | grep -Eo '[0-9]+$')
left=$(find "$CK" -name '*.tmp.*' | wc -l)
[[ $left -eq 0 ]] || fail "$left temporary files remain after the final run"

seconds=$(awk -v s="$start" -v e="$(date +%s.%N)" 'BEGIN { printf "%.1f", e - s }')
echo "$killed kills ($resumed runs resumed a checkpoint, ${#DEBRIS[@]} kills left a half-written temporary file," \
     "$evaluated evaluations); $finished runs finished before their kill; the final run resumed at epoch $((${from:-0} + 1)) of 40; seed $SEED; ${seconds}s"
if [[ $FAILS -ne 0 ]]; then echo "$FAILS check(s) failed"; exit 1; fi
echo "kill test passed: every surviving checkpoint loaded; the resumed model equals the uninterrupted one"
