#!/usr/bin/env bash
# The lamina CLI on an ONNX model: tiny_mlp.onnx beside this script is a 4-16-3 MLP that PyTorch
# trained on train.csv and exported (tests/fixtures/make_onnx_fixtures.py made it). summary,
# evaluate and predict take the .onnx file; train fine-tunes it from a spec whose "model" names it;
# a truncated file and an unsupported operator are clear errors (exit 1), never crashes.
# Usage: test_onnx_cli.sh PATH/TO/lamina DIR/WITH/tiny_mlp.onnx
set -u
LAMINA=${1:?usage: test_onnx_cli.sh LAMINA_BINARY TEST_DIR}
DIR=$(cd "${2:?usage: test_onnx_cli.sh LAMINA_BINARY TEST_DIR}" && pwd)
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
FAILS=0
ONNX=$DIR/tiny_mlp.onnx

source "$(dirname "$0")/lib.sh"

expect_ok "summary of the ONNX model" "$LAMINA" summary "$ONNX"
grep -q 'Total params: 131' "$WORK/out" || fail "summary: no 'Total params: 131'"

expect_ok "evaluate the ONNX model" "$LAMINA" evaluate "$ONNX" --data "$DIR/test.csv" --report "$WORK/eval.json"
grep -q 'no loss (ONNX carries none); assuming sparse_categorical_crossentropy' "$WORK/err" || fail "evaluate: no note on the assumed loss"
ACC=$(json_number "$WORK/eval.json" test accuracy)
if awk -v a="${ACC:-0}" 'BEGIN { exit !(a > 0.9) }'; then pass "PyTorch's model: test accuracy $ACC > 0.9"; else fail "test accuracy '$ACC' <= 0.9"; fi

expect_ok "predict with the ONNX model" "$LAMINA" predict "$ONNX" "$DIR/test.csv" --top 2
[[ $(wc -l <"$WORK/out") -eq 60 ]] || fail "predict: expected 60 lines"
grep -Eq '^0 [0-2]:0\.9[0-9]+ [0-2]:0\.0[0-9]+$' "$WORK/out" || fail "predict: line 0 is not 'index class:p class:p' with softmax probabilities"

# Fine-tuning: the spec's model is the ONNX file; training starts from PyTorch's weights.
cat >"$WORK/finetune.json" <<EOF
{
  "model": "$ONNX",
  "data": {"train": "$DIR/train.csv", "test": "$DIR/test.csv", "scale": 1},
  "compile": {"optimizer": {"class_name": "Adam", "config": {"learning_rate": 0.001}},
              "loss": {"class_name": "SparseCategoricalCrossentropy", "config": {"from_logits": true}},
              "metrics": ["accuracy"]},
  "fit": {"epochs": 2, "batch_size": 16, "seed": 1}
}
EOF
expect_ok "train from the ONNX model" "$LAMINA" train "$WORK/finetune.json" --quiet --save "$WORK/tuned.safetensors" --report "$WORK/train.json"
FIRST=$(awk '/"loss": \[/ { getline; sub(/,$/, "", $1); print $1; exit }' "$WORK/train.json")
if awk -v l="${FIRST:-9}" 'BEGIN { exit !(l < 0.1) }'; then pass "first epoch loss $FIRST < 0.1: the imported weights were the start"; else fail "first epoch loss '$FIRST' >= 0.1"; fi
expect_ok "evaluate the fine-tuned model" "$LAMINA" evaluate "$WORK/tuned.safetensors" --data "$DIR/test.csv"
expect_ok "summary of the fine-tuning spec" "$LAMINA" summary "$WORK/finetune.json"
grep -q 'Total params: 131' "$WORK/out" || fail "summary of the spec: no 'Total params: 131'"

# A Lamina model exported to ONNX and evaluated from the .onnx file: same accuracy, since the
# input scaling travels in the ONNX metadata (lamina_preprocessing) and the loss is assumed alike.
expect_ok "train the CLI spec" "$LAMINA" train "$DIR/spec.json" --quiet --save "$WORK/lamina.safetensors" --threads 1
expect_ok "export it" "$LAMINA" export "$WORK/lamina.safetensors" --onnx "$WORK/lamina.onnx"
expect_ok "evaluate the safetensors file" "$LAMINA" evaluate "$WORK/lamina.safetensors" --data "$DIR/test.csv" --report "$WORK/st.json"
expect_ok "evaluate the exported ONNX file" "$LAMINA" evaluate "$WORK/lamina.onnx" --data "$DIR/test.csv" --report "$WORK/ox.json"
grep -q 'records no lamina_preprocessing' "$WORK/err" && fail "the exported file's lamina_preprocessing was not read"
A1=$(json_number "$WORK/st.json" test accuracy); A2=$(json_number "$WORK/ox.json" test accuracy)
L1=$(json_number "$WORK/st.json" test loss); L2=$(json_number "$WORK/ox.json" test loss)
if [[ -n "$A1" && "$A1" == "$A2" ]] && awk -v a="${L1:-1}" -v b="${L2:-2}" 'BEGIN { d = a - b; exit !(d < 1e-5 && d > -1e-5) }'; then
  pass "same accuracy ($A1) and loss ($L1, $L2) from both files"
else
  fail "accuracy $A1 / loss $L1 (safetensors) vs $A2 / $L2 (onnx)"
fi

# Errors.
head -c 300 "$ONNX" >"$WORK/cut.onnx"
expect_error "a truncated ONNX file" 1 'cut\.onnx: not a valid ONNX model \(truncated or corrupt\): byte [0-9]+' \
    "$LAMINA" evaluate "$WORK/cut.onnx" --data "$DIR/test.csv"
LC_ALL=C sed 's/Relu/Selu/g' "$ONNX" >"$WORK/selu.onnx"
expect_error "an unsupported operator" 1 "selu\.onnx: node 1 '[^']*' \(Selu\): operator 'Selu' is not supported" \
    "$LAMINA" predict "$WORK/selu.onnx" "$DIR/test.csv"
sed "s|\"model\": \"[^\"]*\"|\"model\": \"$WORK/none.onnx\"|" "$WORK/finetune.json" >"$WORK/missing.json"
expect_error "a spec naming a missing model file" 1 "missing\.json: model: '.*none\.onnx' is not a file" \
    "$LAMINA" train "$WORK/missing.json"
sed "s|\"model\": \"[^\"]*\"|\"model\": \"$WORK/cut.onnx\"|" "$WORK/finetune.json" >"$WORK/corrupt.json"
expect_error "a corrupt model to fine-tune" 1 "corrupt\.json: model: .*cut\.onnx: not a valid ONNX model" \
    "$LAMINA" train "$WORK/corrupt.json"

if [[ $FAILS -ne 0 ]]; then echo "$FAILS check(s) failed"; exit 1; fi
echo "all ONNX CLI checks passed"
