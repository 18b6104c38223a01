#!/usr/bin/env bash
# Generative models through the CLI: a VAE spec (spec_vae.json: data.targets "inputs",
# compile.loss_weights, the Sampling layer's KL term) trains and evaluates; `lamina generate`
# samples its prior into a PNG grid, reproducibly by seed; and the error paths.
# Usage: test_generate_cli.sh PATH/TO/lamina DIR/WITH/spec_vae.json
set -u
LAMINA=${1:?usage: test_generate_cli.sh LAMINA_BINARY TEST_DIR}
DIR=${2:?usage: test_generate_cli.sh LAMINA_BINARY TEST_DIR}
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
FAILS=0

source "$(dirname "$0")/lib.sh"

MODEL=$WORK/vae.safetensors
expect_ok "train the VAE spec" "$LAMINA" train "$DIR/spec_vae.json" --quiet --threads 1 --save "$MODEL" --report "$WORK/report.json"
LOSS=$(json_number "$WORK/report.json" test loss)
# BCE summed over 4 values in [0, 1] plus KL: positive, and below 4 ln 2 (a coin per value) plus a margin.
awk -v l="$LOSS" 'BEGIN { exit !(l > 0 && l < 4) }' || fail "report test.loss $LOSS is not in (0, 4)"
grep -q '"targets": "inputs"' "$WORK/report.json" || fail "report: preprocessing lacks targets \"inputs\""

# evaluate repeats the autoencoder's targets from the saved preprocessing (no confusion matrix).
expect_ok "evaluate the VAE" "$LAMINA" evaluate "$MODEL" --data "$DIR/test.csv"
grep -q 'confusion' "$WORK/out" && fail "evaluate printed a confusion matrix for an autoencoder"

expect_ok "generate from the prior" "$LAMINA" generate "$MODEL" --count 6 --out "$WORK/a.png"
[[ $(head -c 8 "$WORK/a.png" | od -An -tx1 | tr -d ' \n') == 89504e470d0a1a0a ]] || fail "a.png is not a PNG"
grep -q '6 samples in a 2 x 3 grid' "$WORK/out" || fail "generate: expected '6 samples in a 2 x 3 grid'"
expect_ok "generate again, same seed" "$LAMINA" generate "$MODEL" --count 6 --out "$WORK/b.png"
cmp -s "$WORK/a.png" "$WORK/b.png" || fail "the same seed gave another image"
expect_ok "generate, another seed" "$LAMINA" generate "$MODEL" --count 6 --seed 9 --rows 1 --out "$WORK/c.png"
cmp -s "$WORK/a.png" "$WORK/c.png" && fail "another seed gave the same image"

expect_error "a label for a VAE" 1 "is a VAE, which samples from its prior without a label" \
  "$LAMINA" generate "$MODEL" --label 3 --out "$WORK/d.png"
expect_error "a count of 0" 2 "count.*expected an integer >= 1" "$LAMINA" generate "$MODEL" --count 0 --out "$WORK/d.png"
expect_error "no --out" 2 "out" "$LAMINA" generate "$MODEL"
expect_error "an unwritable path" 1 "$WORK/missing/dir/e.png" "$LAMINA" generate "$MODEL" --out "$WORK/missing/dir/e.png"
[[ -e "$WORK/d.png" ]] && fail "a failed generate left a file"

# A classifier is no generator: its samples are not images.
CLS=$WORK/cls.safetensors
expect_ok "train a classifier" "$LAMINA" train "$DIR/spec.json" --quiet --threads 1 --epochs 1 --save "$CLS"
expect_error "generate from a classifier" 1 "not images" "$LAMINA" generate "$CLS" --out "$WORK/f.png"

echo "$FAILS failure(s)"
[[ $FAILS -eq 0 ]]
