#!/usr/bin/env bash
# End-to-end test of the lamina CLI on the tiny CSV set beside this script (make_data.py made it):
# summary, train (--save, --report, --quiet), evaluate, predict, summary of the saved model, export,
# determinism, and the error paths (exit 1 with "lamina: error: ...", usage errors exit 2).
# Usage: test_cli.sh PATH/TO/lamina DIR/WITH/spec.json
set -u
LAMINA=${1:?usage: test_cli.sh LAMINA_BINARY TEST_DIR}
DIR=${2:?usage: test_cli.sh LAMINA_BINARY TEST_DIR}
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
FAILS=0

source "$(dirname "$0")/lib.sh"

SPEC=$DIR/spec.json
MODEL=$WORK/model.safetensors
REPORT=$WORK/report.json

# --- the happy path ----------------------------------------------------------------------------
expect_ok "summary of the spec" "$LAMINA" summary "$SPEC"
grep -q 'Total params: 131' "$WORK/out" || fail "summary of the spec: no 'Total params: 131'"

expect_ok "train --quiet --save --report" "$LAMINA" train "$SPEC" --quiet --save "$MODEL" --report "$REPORT" --threads 1
grep -q '^test: loss: ' "$WORK/out" || fail "train: no 'test: loss:' line"
grep -q 'Epoch' "$WORK/out" && fail "train --quiet printed progress"
[[ -s $MODEL ]] || fail "train: no model file"

for key in history loss accuracy val_loss val_accuracy epoch_seconds test params seed threads peak_rss_mb; do
  grep -q "\"$key\":" "$REPORT" || fail "report lacks \"$key\""
done
grep -Eq '"params": 131,?$' "$REPORT" || fail "report: params is not 131"
grep -Eq '"seed": 3,?$' "$REPORT" || fail "report: seed is not the spec's 3"
grep -Eq '"threads": 1,?$' "$REPORT" || fail "report: threads is not 1"
ACC=$(json_number "$REPORT" test accuracy)
if awk -v a="${ACC:-0}" 'BEGIN { exit !(a > 0.9) }'; then pass "test accuracy $ACC > 0.9"; else fail "test accuracy '$ACC' <= 0.9"; fi

expect_ok "evaluate on the test CSV" "$LAMINA" evaluate "$MODEL" --data "$DIR/test.csv" --report "$WORK/eval.json"
grep -q 'accuracy: ' "$WORK/out" || fail "evaluate: no accuracy"
grep -q 'precision' "$WORK/out" || fail "evaluate: no per-class table"
EACC=$(json_number "$WORK/eval.json" test accuracy)
[[ "$EACC" == "$ACC" ]] || fail "evaluate accuracy $EACC differs from train's test accuracy $ACC"

expect_ok "predict --top 2 (CSV with labels)" "$LAMINA" predict "$MODEL" "$DIR/test.csv" --top 2
[[ $(wc -l <"$WORK/out") -eq 60 ]] || fail "predict: expected 60 lines"
grep -Eq '^0 [0-2]:[0-9.]+ [0-2]:[0-9.]+$' "$WORK/out" || fail "predict: line 0 is not 'index class:p class:p'"
cp "$WORK/out" "$WORK/pred_labels"
cut -d, -f1-4 "$DIR/test.csv" >"$WORK/features.csv"
expect_ok "predict (features only)" "$LAMINA" predict "$MODEL" "$WORK/features.csv" --top 2
cmp -s "$WORK/out" "$WORK/pred_labels" || fail "predict: features-only CSV gives other predictions"
# The top class matches the label on (nearly) every row.
RIGHT=$(paste -d' ' <(cut -d, -f5 "$DIR/test.csv") "$WORK/pred_labels" | awk '{ split($3, p, ":"); r += (p[1] == $1) } END { print r }')
[[ $RIGHT -ge 55 ]] && pass "predict: $RIGHT/60 right" || fail "predict: only $RIGHT/60 right"

expect_ok "summary of the saved model" "$LAMINA" summary "$MODEL"
grep -q 'Total params: 131' "$WORK/out" || fail "summary of the model: no 'Total params: 131'"

expect_ok "export --onnx" "$LAMINA" export "$MODEL" --onnx "$WORK/model.onnx"
[[ -s $WORK/model.onnx ]] || fail "export: no ONNX file"
grep -q 'lamina_preprocessing' "$WORK/model.onnx" || fail "export: the ONNX file lacks lamina_preprocessing"
grep -q 'input "input" (N, 4), output "output" (N, 3)' "$WORK/out" || fail "export: no input/output line"

expect_ok "train again, same seed" "$LAMINA" train "$SPEC" --quiet --save "$WORK/again.safetensors" --threads 1
cmp -s "$MODEL" "$WORK/again.safetensors" && pass "same seed, same weights" || fail "same seed gave different model files"

expect_ok "train --epochs 2 --batch-size 32 --seed 5" "$LAMINA" train "$SPEC" --quiet --epochs 2 --batch-size 32 --seed 5 --report "$WORK/r2.json"
grep -Eq '"epochs": 2,?$' "$WORK/r2.json" && grep -Eq '"seed": 5,?$' "$WORK/r2.json" || fail "flags did not override the spec"

# --- checkpoints and resume ------------------------------------------------------------------------
# $MODEL is 10 uninterrupted epochs with --threads 1; 4 epochs with checkpoints (every 5 batches
# too) and a resume to 10 must give the same file.
CK=$WORK/ckpt
expect_ok "train --epochs 4 --checkpoint --checkpoint-every 5" "$LAMINA" train "$SPEC" --quiet --threads 1 --epochs 4 \
    --checkpoint "$CK" --checkpoint-every 5
[[ -s $CK/last.safetensors && -s $CK/best.safetensors ]] || fail "--checkpoint: no last.safetensors and best.safetensors"
expect_ok "train --resume to 10 epochs" "$LAMINA" train "$SPEC" --quiet --threads 1 --resume "$CK/last.safetensors" \
    --checkpoint "$CK" --save "$WORK/resumed.safetensors" --report "$WORK/resumed.json"
cmp -s "$MODEL" "$WORK/resumed.safetensors" && pass "resumed run equals the uninterrupted one bit for bit" ||
    fail "the resumed model differs from the uninterrupted one"
grep -Eq '"initial_epoch": 4,?$' "$WORK/resumed.json" || fail "resume: report's initial_epoch is not 4"
expect_ok "summary of a checkpoint" "$LAMINA" summary "$CK/last.safetensors"
grep -q 'Total params: 131' "$WORK/out" || fail "summary of a checkpoint: no 'Total params: 131'"
expect_ok "evaluate a checkpoint" "$LAMINA" evaluate "$CK/last.safetensors" --data "$DIR/test.csv"
expect_ok "predict with the best checkpoint" "$LAMINA" predict "$CK/best.safetensors" "$DIR/test.csv"
expect_error "resume from a model file" 1 'not a checkpoint' "$LAMINA" train "$SPEC" --resume "$MODEL"
sed 's/"units": 16/"units": 8/' "$SPEC" >"$WORK/other_model.json"
expect_error "resume with another model" 1 'holds another model than' "$LAMINA" train "$WORK/other_model.json" \
    --resume "$CK/last.safetensors"
head -c 1000 "$CK/last.safetensors" >"$WORK/torn.safetensors"
expect_error "resume from a truncated checkpoint" 1 'torn\.safetensors' "$LAMINA" train "$SPEC" --resume "$WORK/torn.safetensors"
expect_error "--checkpoint-every needs --checkpoint" 2 'checkpoint' "$LAMINA" train "$SPEC" --checkpoint-every 3

# --- errors ------------------------------------------------------------------------------------
expect_error "missing spec file" 1 'nosuch\.json' "$LAMINA" train "$WORK/nosuch.json"
printf '{"model": {"class_name": "Sequential",\n  "config": {]}\n' >"$WORK/broken.json"
expect_error "malformed JSON names the file and line" 1 'broken\.json.*line 2' "$LAMINA" train "$WORK/broken.json"
sed 's/"class_name": "Dense", "config": {"name": "out"/"class_name": "FancyDense", "config": {"name": "out"/' "$SPEC" >"$WORK/unknown_layer.json"
expect_error "unknown layer class" 1 'FancyDense' "$LAMINA" train "$WORK/unknown_layer.json"
expect_error "unknown layer class (summary)" 1 'FancyDense' "$LAMINA" summary "$WORK/unknown_layer.json"
sed 's/"fit":/"fitt":/' "$SPEC" >"$WORK/unknown_key.json"
expect_error "unknown top-level key" 1 "unknown_key\.json: unknown key 'fitt'" "$LAMINA" train "$WORK/unknown_key.json"
sed 's/"epochs": 10/"epoch": 10/' "$SPEC" >"$WORK/typo.json"
expect_error "unknown fit key" 1 "unknown key 'epoch'" "$LAMINA" train "$WORK/typo.json"
printf '{"data": {"name": "digits"}, "compile": {"loss": "mse"}}\n' >"$WORK/no_model.json"
expect_error "missing model" 1 'no_model\.json: model: missing' "$LAMINA" train "$WORK/no_model.json"
sed 's/"loss": "sparse_categorical_crossentropy",//' "$SPEC" >"$WORK/no_loss.json"
expect_error "missing loss" 1 'no_loss\.json: compile\.loss: missing' "$LAMINA" train "$WORK/no_loss.json"
sed -e 's/"learning_rate": 0.01/"learning_rate": 1e30/' -e "s|\"train.csv\"|\"$DIR/train.csv\"|" \
    -e "s|\"test.csv\"|\"$DIR/test.csv\"|" "$SPEC" >"$WORK/diverge.json"
expect_error "a diverging run stops (TerminateOnNaN)" 1 'training diverged at epoch 1, step [0-9]+ \(non-finite loss\)' \
    "$LAMINA" train "$WORK/diverge.json" --quiet
expect_error "bad CLI flag" 2 'bogus' "$LAMINA" train "$SPEC" --bogus
expect_error "bad flag value" 2 'epochs' "$LAMINA" train "$SPEC" --epochs many
expect_error "no command" 2 '.' "$LAMINA"
cut -d, -f1-2 "$DIR/test.csv" >"$WORK/narrow.csv"
expect_error "predict with a wrong-width CSV" 1 'narrow\.csv: rows have 2 columns.*4 features' "$LAMINA" predict "$MODEL" "$WORK/narrow.csv"
expect_error "predict with a missing input" 1 'nothere\.csv' "$LAMINA" predict "$MODEL" "$WORK/nothere.csv"
expect_error "evaluate with unknown data" 1 'nodata' "$LAMINA" evaluate "$MODEL" --data "$WORK/nodata"
expect_error "export a spec (not a model file)" 1 'spec\.json' "$LAMINA" export "$SPEC" --onnx "$WORK/x.onnx"
expect_error "export without --onnx" 2 'onnx' "$LAMINA" export "$MODEL"
expect_error "evaluate a non-model file" 1 'spec\.json' "$LAMINA" evaluate "$SPEC" --data "$DIR/test.csv"

# --- a Functional model with two inputs, fed by named CSV column groups (data.inputs) -----------
TWO=$DIR/spec_two_inputs.json
TWO_MODEL=$WORK/two.safetensors
expect_ok "summary of a two-input spec" "$LAMINA" summary "$TWO"
grep -q 'Connected to' "$WORK/out" || fail "two-input summary: no 'Connected to' column"
grep -q 'da\[0\]\[0\]' "$WORK/out" || fail "two-input summary: concatenate not connected to da[0][0]"
expect_ok "train a two-input model" "$LAMINA" train "$TWO" --quiet --save "$TWO_MODEL" --report "$WORK/two.json" --threads 1
TACC=$(json_number "$WORK/two.json" test accuracy)
if awk -v a="${TACC:-0}" 'BEGIN { exit !(a > 0.85) }'; then pass "two-input test accuracy $TACC > 0.85"; else fail "two-input test accuracy '$TACC' <= 0.85"; fi
expect_ok "evaluate a two-input model" "$LAMINA" evaluate "$TWO_MODEL" --data "$DIR/test.csv" --report "$WORK/two_eval.json"
[[ "$(json_number "$WORK/two_eval.json" test accuracy)" == "$TACC" ]] || fail "two-input evaluate differs from train's test accuracy"
expect_ok "predict with a two-input model" "$LAMINA" predict "$TWO_MODEL" "$DIR/test.csv" --top 1
[[ $(wc -l <"$WORK/out") -eq 60 ]] || fail "two-input predict: expected 60 lines"
sed 's/"a": \[0, 2\]/"c": [0, 2]/' "$TWO" >"$WORK/two_bad.json"
sed -i "s|\"train.csv\"|\"$DIR/train.csv\"|; s|\"test.csv\"|\"$DIR/test.csv\"|" "$WORK/two_bad.json"
expect_error "a model input without a column group" 1 "no column group for the model's input 'a'" \
    "$LAMINA" train "$WORK/two_bad.json" --quiet

# --- schedules, callbacks and class weights from the spec ------------------------------------------
expect_ok "train with an ExponentialDecay learning rate" "$LAMINA" train "$DIR/spec_schedule.json" --quiet --report "$WORK/sched.json" --threads 1
grep -q '"learning_rate": \[' "$WORK/sched.json" || fail "schedule: the report's history lacks learning_rate"
# 216 training rows in batches of 16: 14 steps per epoch, so epoch 10 ends at step 139: 0.02 * 0.5^1.39.
LR_LAST=$(awk '/"learning_rate": \[/ { inside = 1; next } inside && /\]/ { print last; exit } inside { v = $1; sub(/,$/, "", v); last = v }' "$WORK/sched.json")
awk -v v="${LR_LAST:-0}" 'BEGIN { exit !(v > 0.007631 && v < 0.007632) }' && pass "schedule: last learning rate $LR_LAST" ||
  fail "schedule: last learning rate '$LR_LAST' is not 0.02 * 0.5^1.39"
expect_ok "train with ReduceLROnPlateau, EarlyStopping and class weights" "$LAMINA" train "$DIR/spec_plateau.json" --quiet --report "$WORK/plateau.json" --threads 1
grep -q '"weighted_accuracy": \[' "$WORK/plateau.json" || fail "plateau: no weighted_accuracy in the history"
LRS=$(awk '/"learning_rate": \[/ { inside = 1; next } inside && /\]/ { exit } inside { v = $1; sub(/,$/, "", v); print v }' "$WORK/plateau.json" | sort -u | wc -l)
[[ $LRS -ge 2 ]] && pass "plateau: the learning rate took $LRS values" || fail "plateau: the learning rate never dropped"
sed 's/"ReduceLROnPlateau"/"ReduceLROnPlateaux"/' "$DIR/spec_plateau.json" >"$WORK/cb_bad.json"
sed -i "s|\"train.csv\"|\"$DIR/train.csv\"|; s|\"test.csv\"|\"$DIR/test.csv\"|" "$WORK/cb_bad.json"
expect_error "an unknown callback" 1 "fit\.callbacks\[0\]\.class_name.*ReduceLROnPlateaux" "$LAMINA" train "$WORK/cb_bad.json" --quiet
sed 's/"patience": 1,/"patience": 1, "patiense": 2,/' "$DIR/spec_plateau.json" >"$WORK/cb_key.json"
sed -i "s|\"train.csv\"|\"$DIR/train.csv\"|; s|\"test.csv\"|\"$DIR/test.csv\"|" "$WORK/cb_key.json"
expect_error "an unknown callback key" 1 "patiense" "$LAMINA" train "$WORK/cb_key.json" --quiet

# --- per-sample weights from the spec: weight 0 on every class-2 row, so class 2 is never learned --
expect_ok "train with fit.sample_weight" "$LAMINA" train "$DIR/spec_sample_weight.json" --quiet --report "$WORK/sw.json" --threads 1
SWACC=$(json_number "$WORK/sw.json" test accuracy)
awk -v a="${SWACC:-1}" 'BEGIN { exit !(a < 0.75) }' && pass "sample_weight: test accuracy $SWACC without class 2" ||
  fail "sample_weight: test accuracy '$SWACC' (class 2 weighed 0 should cost about a third)"
head -10 "$DIR/train_weights.csv" >"$WORK/w10.csv"
sed "s|\"train_weights.csv\"|\"$WORK/w10.csv\"|; s|\"train.csv\"|\"$DIR/train.csv\"|; s|\"test.csv\"|\"$DIR/test.csv\"|" \
    "$DIR/spec_sample_weight.json" >"$WORK/sw_bad.json"
expect_error "too few sample weights" 1 "fit\.sample_weight: .*w10\.csv holds 10 weights for 240 training samples" \
    "$LAMINA" train "$WORK/sw_bad.json" --quiet

if [[ $FAILS -ne 0 ]]; then echo "$FAILS check(s) failed"; exit 1; fi
echo "all CLI checks passed"
