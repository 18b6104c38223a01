#!/usr/bin/env bash
# The training report as a web page through the CLI: `train --html` (rewritten atomically while
# training, marked in progress), `report R.json [MODEL] -o R.html`, the report JSON's new keys,
# the gallery of wrong images (a tiny CNN) and token attributions (a text model with an Embedding),
# and the error paths. The page's structure in detail is tests/test_report.cpp's.
# Usage: test_report_cli.sh PATH/TO/lamina tests/cli
set -u
LAMINA=${1:?usage: test_report_cli.sh LAMINA_BINARY TEST_DIR}
DIR=${2:?usage: test_report_cli.sh LAMINA_BINARY TEST_DIR}
ROOT=$(cd "$DIR/../.." && pwd)
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
FAILS=0

source "$(dirname "$0")/lib.sh"
count() { grep -o -- "$1" "$2" | wc -l; }
expect_count() {  # NAME PATTERN FILE N
  local n; n=$(count "$2" "$3")
  if [[ $n -eq $4 ]]; then pass "$1: $n"; else fail "$1: $n of /$2/ in $3, expected $4"; fi
}

# train --html: the final page, and the JSON report's new keys.
MODEL=$WORK/tiny.safetensors
expect_ok "train --html --report" "$LAMINA" train "$DIR/spec.json" --quiet --threads 1 --epochs 3 \
  --save "$MODEL" --report "$WORK/r.json" --html "$WORK/r.html"
HTML=$WORK/r.html
[[ $(head -c 15 "$HTML") == "<!DOCTYPE html>" ]] || fail "r.html does not start with <!DOCTYPE html>"
grep -q "Content-Security-Policy\" content=\"default-src 'none'" "$HTML" || fail "r.html: no CSP meta"
grep -q '<script' "$HTML" && fail "r.html holds a script"
grep -Eq 'https?://' "$HTML" && fail "r.html names a URL"
grep -q 'http-equiv="refresh"' "$HTML" && fail "the final page still refreshes itself"
# loss, accuracy, their val_ twins and the learning rate: one path each.
expect_count "series in the final page" 'class="series"' "$HTML" 5
expect_count "learning rate series" 'data-series="learning_rate"' "$HTML" 1
expect_count "confusion cells (3 classes)" 'class="cell"' "$HTML" 9
grep -q '<pre class="summary">' "$HTML" || fail "r.html: no model summary"
grep -q '<table class="hyperparams">' "$HTML" || fail "r.html: no hyperparameters"
for key in '"confusion_matrix"' '"summary"' '"compile"' '"validation_split": 0.1' '"learning_rate"' '"history"' '"peak_rss_mb"'; do
  grep -q -- "$key" "$WORK/r.json" || fail "r.json lacks $key"
done
pass "report JSON keys"

# While training runs, the page is rewritten after every epoch: always whole (atomic), refreshing,
# with the epoch reached.
LIVE=$WORK/live.html
"$LAMINA" train "$DIR/spec.json" --quiet --threads 1 --epochs 3000 --html "$LIVE" >/dev/null 2>&1 &
PID=$!
seen=0 torn=0
for _ in $(seq 1 400); do
  if [[ -s $LIVE ]]; then
    cp "$LIVE" "$WORK/snap.html" 2>/dev/null || continue
    tail -c 8 "$WORK/snap.html" | grep -q '</html>' || torn=$((torn + 1))
    if grep -q '<meta http-equiv="refresh" content="5">' "$WORK/snap.html" &&
       grep -Eq 'class="banner">training: epoch [1-9][0-9]* of 3000<' "$WORK/snap.html"; then
      seen=$((seen + 1))
      [[ $seen -ge 5 ]] && break
    fi
  fi
  kill -0 $PID 2>/dev/null || break
  sleep 0.05
done
kill $PID 2>/dev/null; wait $PID 2>/dev/null
if [[ $seen -ge 1 && $torn -eq 0 ]]; then pass "live page: $seen snapshots in progress, none torn"
else fail "live page: $seen snapshots in progress, $torn torn"; fi

# lamina report: the saved JSON, smoothed; with the model, the confusion matrix comes back.
expect_ok "report R.json -o" "$LAMINA" report "$WORK/r.json" -o "$WORK/r2.html" --smoothing 0.6
expect_count "series from the JSON" 'class="series"' "$WORK/r2.html" 5
expect_count "smoothed series (not the rate)" 'class="series-smoothed"' "$WORK/r2.html" 4
grep -q 'wrote .*r2.html' "$WORK/out" || fail "report: no 'wrote' line"
printf '{"history": {"loss": [1.0, 0.6], "accuracy": [0.4, 0.7]}, "spec": "%s"}\n' "$DIR/spec.json" >"$WORK/bare.json"
expect_ok "report with a model" "$LAMINA" report "$WORK/bare.json" "$MODEL" -o "$WORK/r3.html"
expect_count "confusion cells from the model" 'class="cell"' "$WORK/r3.html" 9
grep -q '<pre class="summary">' "$WORK/r3.html" || fail "report with a model: no summary"

# Image classifiers: the most confidently wrong test images with saliency (spec_cnn.json: the 4
# features of test.csv as 2 x 2 images, which the model's first layer reshapes so), one epoch so
# that some test images are still wrong (accuracy 0.90).
IMG=$WORK/cnn.safetensors
run "$LAMINA" train "$DIR/spec_cnn.json" --quiet --threads 1 --epochs 1 --seed 3 --save "$IMG" --report "$WORK/d.json" --html "$WORK/d.html"
if [[ $RC -eq 0 ]]; then
  n=$(count '<figure class="wrong"><img src="data:image/png;base64,' "$WORK/d.html")
  if [[ $n -ge 1 && $n -le 16 ]]; then pass "image gallery: $n wrong images"; else fail "image gallery: $n images"; fi
  grep -q 'true [0-9], predicted [0-9] (0\.[0-9]*)' "$WORK/d.html" || fail "gallery captions lack true/predicted/confidence"
  expect_count "image model confusion cells" 'class="cell"' "$WORK/d.html" 9
  run "$LAMINA" report "$WORK/d.json" "$IMG" -o "$WORK/d2.html"
  [[ $(count '<figure class="wrong">' "$WORK/d2.html") -eq $n ]] || fail "report MODEL drew another gallery than train --html"
else
  fail "train the image model (exit $RC)"
fi

# Text classifiers with an Embedding: tokens coloured by integrated gradients.
expect_ok "train a text model --html" "$LAMINA" train "$DIR/spec_text_embedding.json" --quiet --threads 1 --html "$WORK/t.html"
n=$(count '<span class="token" data-score="' "$WORK/t.html")
if [[ $n -ge 1 ]]; then pass "token attributions: $n tokens"; else fail "no token attributions in t.html"; fi

# Bad input.
expect_error "a missing report" 1 "$WORK/none.json" "$LAMINA" report "$WORK/none.json" -o "$WORK/x.html"
echo '{"history": [1, 2' >"$WORK/broken.json"
expect_error "not JSON" 1 "broken.json: not valid JSON" "$LAMINA" report "$WORK/broken.json" -o "$WORK/x.html"
echo '{"class_name": "Sequential", "config": {}}' >"$WORK/model.json"
expect_error "not a report" 1 "not a training report" "$LAMINA" report "$WORK/model.json" -o "$WORK/x.html"
expect_error "an unwritable output path" 1 "$WORK/missing/dir/x.html" "$LAMINA" report "$WORK/r.json" -o "$WORK/missing/dir/x.html"
expect_error "a directory as output" 1 "is a directory" "$LAMINA" report "$WORK/r.json" -o "$WORK"
expect_error "smoothing 1" 2 "smoothing.*\[0, 1\)" "$LAMINA" report "$WORK/r.json" -o "$WORK/x.html" --smoothing 1
expect_error "no -o" 2 "out" "$LAMINA" report "$WORK/r.json"
expect_error "train --smoothing without --html" 2 "smoothing requires --html" \
  "$LAMINA" train "$DIR/spec.json" --quiet --epochs 1 --smoothing 0.5
echo '{"history": {"loss": [1.0]}}' >"$WORK/nospec.json"
expect_error "a model with a report naming no spec" 1 "names no spec" "$LAMINA" report "$WORK/nospec.json" "$MODEL" -o "$WORK/x.html"
expect_error "train --html into a missing directory" 1 "$WORK/missing/t.html" \
  "$LAMINA" train "$DIR/spec.json" --quiet --epochs 1 --html "$WORK/missing/t.html"
[[ -e $WORK/x.html ]] && fail "a failed report left x.html"

echo "$FAILS failure(s)"
[[ $FAILS -eq 0 ]]
