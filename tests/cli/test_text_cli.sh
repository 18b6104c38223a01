#!/usr/bin/env bash
# Text through the CLI (spec_text.json, on tests/fixtures/text): train adapts a TextVectorization
# on the training texts and saves it in the model; predict takes raw texts (arguments, a file of
# lines, a .tsv); evaluate vectorizes a TSV with the saved vectorizer; the error paths.
# Usage: test_text_cli.sh PATH/TO/lamina DIR/WITH/spec_text.json
set -u
LAMINA=${1:?usage: test_text_cli.sh LAMINA_BINARY TEST_DIR}
DIR=${2:?usage: test_text_cli.sh LAMINA_BINARY TEST_DIR}
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
FAILS=0

source "$(dirname "$0")/lib.sh"

SPEC=$DIR/spec_text.json
MODEL=$WORK/text.safetensors
TSV=$DIR/../fixtures/text/test.tsv

expect_ok "train a text spec" "$LAMINA" train "$SPEC" --quiet --save "$MODEL" --report "$WORK/report.json" --threads 1
grep -q '^test: loss: ' "$WORK/out" || fail "train: no 'test: loss:' line"
grep -q '"data": "files"' "$WORK/report.json" || fail "report: preprocessing.data is not \"files\""
# The vectorizer travels in the file: its Keras config, vocabulary, and Lamina's padding.
grep -aq '"text_vectorization"' "$MODEL" || fail "the model file lacks text_vectorization"
grep -aq 'output_sequence_length[^,]*8' "$MODEL" || fail "output_sequence_length 8 (the model's input) not saved"

expect_ok "predict on two texts" "$LAMINA" predict "$MODEL" "A wonderful, moving film." "Boring and awful."
[[ $(wc -l <"$WORK/out") -eq 2 ]] || fail "predict: expected 2 lines"
grep -Eq '^0 [01]:[0-9.]+$' "$WORK/out" && grep -Eq '^1 [01]:[0-9.]+$' "$WORK/out" || fail "predict: not 'index class:p'"
FIRST=$(head -n 1 "$WORK/out" | cut -d' ' -f2)
# Standardisation: case and punctuation do not change the prediction.
expect_ok "predict, other case and punctuation" "$LAMINA" predict "$MODEL" "a WONDERFUL moving film"
[[ $(cut -d' ' -f2 "$WORK/out") == "$FIRST" ]] || fail "predict: 'a WONDERFUL moving film' differs from the punctuated text"

expect_ok "predict on a .tsv of texts" "$LAMINA" predict "$MODEL" "$TSV"
[[ $(wc -l <"$WORK/out") -eq 4 ]] || fail "predict on the .tsv: expected 4 lines"
printf 'A wonderful, moving film.\n\nBoring and awful.\n' >"$WORK/texts.txt"
expect_ok "predict on a file of lines" "$LAMINA" predict "$MODEL" "$WORK/texts.txt"
[[ $(wc -l <"$WORK/out") -eq 2 && $(head -n 1 "$WORK/out" | cut -d' ' -f2) == "$FIRST" ]] || fail "predict on lines"

expect_ok "predict on punctuation only (all padding, a note)" "$LAMINA" predict "$MODEL" "?!..."
grep -q 'has no tokens' "$WORK/err" || fail "predict: no note for a text without tokens"

expect_ok "evaluate on the test TSV" "$LAMINA" evaluate "$MODEL" --data "$TSV" --report "$WORK/eval.json"
grep -q 'accuracy: ' "$WORK/out" || fail "evaluate: no accuracy"
EACC=$(json_number "$WORK/eval.json" test accuracy)
TACC=$(json_number "$WORK/report.json" test accuracy)
[[ "$EACC" == "$TACC" ]] || fail "evaluate accuracy $EACC differs from train's test accuracy $TACC"

expect_ok "summary of the text model" "$LAMINA" summary "$MODEL"

# --- errors ------------------------------------------------------------------------------------
expect_error "predict on an empty text" 1 'text 1 is empty' "$LAMINA" predict "$MODEL" "fine" ""
sed 's/"max_tokens": 30/"max_tokens": 30, "ngrams": 2/' "$SPEC" >"$WORK/ngrams.json"
expect_error "spec with ngrams" 1 'data.text_vectorization: .*ngrams 2 is not supported' "$LAMINA" train "$WORK/ngrams.json"
sed 's/"max_tokens": 30/"max_tokens": 30, "output_mode": "tf_idf"/' "$SPEC" >"$WORK/tfidf.json"
expect_error "spec with output_mode tf_idf" 1 'output_mode "tf_idf" is not supported' "$LAMINA" train "$WORK/tfidf.json"
sed 's/"max_tokens": 30/"max_tokens": 30, "lowercase": true/' "$SPEC" >"$WORK/key.json"
expect_error "spec with an unknown vectorizer key" 1 "unknown config key 'lowercase'" "$LAMINA" train "$WORK/key.json"
sed 's/"max_tokens": 30/"max_tokens": 30, "output_sequence_length": 9/' "$SPEC" >"$WORK/length.json"
expect_error "spec with another length than the model's input" 1 'output_sequence_length: 9 tokens per text, but the model.s input has shape \(8\)' "$LAMINA" train "$WORK/length.json"
sed 's/"text_vectorization":/"scale": 2, "text_vectorization":/' "$SPEC" >"$WORK/scale.json"
expect_error "spec with scale on text" 1 'data.scale: does not apply to text data' "$LAMINA" train "$WORK/scale.json"
cat >"$WORK/imdb.json" <<JSON
{"model": {"class_name": "Sequential", "config": {"layers": [
   {"class_name": "InputLayer", "config": {"batch_shape": [null, 8]}},
   {"class_name": "Dense", "config": {"units": 1, "activation": "sigmoid"}}]}},
 "data": {"name": "imdb", "dir": "$WORK/no-imdb"},
 "compile": {"optimizer": "adam", "loss": "binary_crossentropy"}}
JSON
expect_error "imdb not fetched" 1 'no-imdb/train.tsv: no such file; run scripts/fetch-data.sh imdb' "$LAMINA" train "$WORK/imdb.json"
printf '1\tok\nno tab here\n' >"$WORK/bad.tsv"
expect_error "evaluate on a TSV line without a tab" 1 'bad.tsv: line 2: expected LABEL<TAB>TEXT' "$LAMINA" evaluate "$MODEL" --data "$WORK/bad.tsv"

if [[ $FAILS -ne 0 ]]; then echo "$FAILS check(s) failed"; exit 1; fi
echo "all text CLI checks passed"
