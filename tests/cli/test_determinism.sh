#!/usr/bin/env bash
# Same spec, same seed, same thread count: the saved model files are identical byte for byte,
# across separate processes. Checks an MLP (CSV data) and three CNNs (IDX data; one with
# BatchNormalization, Dropout and a validation split; one with 4096 filters, large enough for a
# second thread to take part), each with --threads 1 and --threads 2.
# Usage: test_determinism.sh PATH/TO/lamina CORPUS_DIR (tests/corpus: specs/ and data/)
set -u
LAMINA=${1:?usage: test_determinism.sh LAMINA_BINARY CORPUS_DIR}
CORPUS=${2:?usage: test_determinism.sh LAMINA_BINARY CORPUS_DIR}
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
FAILS=0

for spec in mlp cnn cnn_full wide_conv; do
  for threads in 1 2; do
    for run in a b; do
      if ! "$LAMINA" train "$CORPUS/specs/$spec.json" --quiet --threads "$threads" --seed 7 \
           --save "$WORK/$spec.$threads.$run.safetensors" >"$WORK/out" 2>&1; then
        echo "FAIL: $spec --threads $threads (run $run) did not train:"; cat "$WORK/out"
        FAILS=$((FAILS + 1))
        continue 2
      fi
    done
    if cmp -s "$WORK/$spec.$threads.a.safetensors" "$WORK/$spec.$threads.b.safetensors"; then
      echo "ok: $spec --threads $threads: two processes saved identical files ($(stat -c %s "$WORK/$spec.$threads.a.safetensors") bytes)"
    else
      echo "FAIL: $spec --threads $threads: the two runs saved different model files"
      cmp "$WORK/$spec.$threads.a.safetensors" "$WORK/$spec.$threads.b.safetensors" | head -1
      FAILS=$((FAILS + 1))
    fi
  done
done

# A different seed must change the weights (else the comparison above proves nothing).
"$LAMINA" train "$CORPUS/specs/mlp.json" --quiet --threads 1 --seed 8 --save "$WORK/other.safetensors" >/dev/null 2>&1
if cmp -s "$WORK/mlp.1.a.safetensors" "$WORK/other.safetensors"; then
  echo "FAIL: seeds 7 and 8 saved identical MLPs"; FAILS=$((FAILS + 1))
else
  echo "ok: another seed gives other weights"
fi

[[ $FAILS -eq 0 ]] && echo "all determinism checks passed"
[[ $FAILS -eq 0 ]]
