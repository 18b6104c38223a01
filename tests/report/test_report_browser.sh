#!/usr/bin/env bash
# The HTML training report in a real browser: trains the CLI tests' tiny MLP (tests/cli/spec.json,
# CSV) with --html and --report, renders the same report again with `lamina report R.json MODEL -o`,
# and trains the corpus' tiny CNN on 8x8 IDX images (tests/corpus/specs/cnn.json), whose page has
# the gallery of wrong predictions when the model gets any wrong; checks the live page (a report
# still in progress) and a text classifier's tokens; check_report.js judges each page
# in chromium against its report JSON and leaves screenshots and a PDF in ARTIFACTS.
# Usage: test_report_browser.sh LAMINA CLI_DIR CORPUS_DIR ARTIFACTS
# Exit 0 passed, 1 failed, 77 skipped (chromium cannot run here; check_report.js says why).
set -u
LAMINA=${1:?usage: test_report_browser.sh LAMINA CLI_DIR CORPUS_DIR ARTIFACTS}
CLI=${2:?usage: test_report_browser.sh LAMINA CLI_DIR CORPUS_DIR ARTIFACTS}
CORPUS=${3:?usage: test_report_browser.sh LAMINA CLI_DIR CORPUS_DIR ARTIFACTS}
ARTIFACTS=${4:?usage: test_report_browser.sh LAMINA CLI_DIR CORPUS_DIR ARTIFACTS}
HERE=$(cd "$(dirname "$0")" && pwd)
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
FAILS=0
mkdir -p "$ARTIFACTS"

# train NAME SPEC: trains SPEC into $WORK/NAME.{safetensors,json,html}; false (with the output)
# when it fails or writes no page.
train() {
  local name=$1 spec=$2
  if ! "$LAMINA" train "$spec" --quiet --threads 1 --save "$WORK/$name.safetensors" \
       --report "$WORK/$name.json" --html "$WORK/$name.html" >"$WORK/out" 2>&1; then
    echo "FAIL: $name: lamina train $spec --html did not succeed:"; cat "$WORK/out"
    FAILS=$((FAILS + 1)); return 1
  fi
  if [[ ! -s $WORK/$name.html ]]; then
    echo "FAIL: $name: lamina train --html wrote no page"; FAILS=$((FAILS + 1)); return 1
  fi
  echo "ok: $name: trained, $(stat -c %s "$WORK/$name.html") bytes of HTML"
}

# check HTML JSON STEM [check_report.js options]: judges the page; a skip ends the whole test.
check() {
  local html=$1 json=$2 stem=$3; shift 3
  "${NODE:-node}" "$HERE/check_report.js" "$html" "$json" --artifacts "$ARTIFACTS" --name "$stem" "$@"
  local rc=$?
  if [[ $rc -eq 77 ]]; then exit 77; fi
  if [[ $rc -ne 0 ]]; then FAILS=$((FAILS + 1)); fi
  # The page and its JSON are kept beside the screenshots, to look at (and check again) when a check fails.
  cp "$html" "$ARTIFACTS/$stem.html"
  cp "$json" "$ARTIFACTS/$stem.json"
}

if train mlp "$CLI/spec.json"; then
  check "$WORK/mlp.html" "$WORK/mlp.json" mlp --classes 3
  # After the fact, from the JSON and the saved model: the same structure.
  if "$LAMINA" report "$WORK/mlp.json" "$WORK/mlp.safetensors" -o "$WORK/mlp-report.html" >"$WORK/out" 2>&1; then
    check "$WORK/mlp-report.html" "$WORK/mlp.json" mlp-report --classes 3 --widths 375
  else
    echo "FAIL: lamina report R.json MODEL -o R.html did not succeed:"; cat "$WORK/out"; FAILS=$((FAILS + 1))
  fi
fi

# The live page, as `lamina train --html` rewrites it after each epoch: the same report cut after
# two epochs and marked in_progress reloads itself and otherwise passes the same checks.
if [[ -s $WORK/mlp.json ]]; then
  "${NODE:-node}" -e '
    const fs = require("fs"), r = JSON.parse(fs.readFileSync(process.argv[1], "utf8"));
    for (const k of Object.keys(r.history)) r.history[k] = r.history[k].slice(0, 2);
    r.epoch_seconds = r.epoch_seconds.slice(0, 2); r.in_progress = true;
    fs.writeFileSync(process.argv[2], JSON.stringify(r));' "$WORK/mlp.json" "$WORK/live.json"
  if "$LAMINA" report "$WORK/live.json" -o "$WORK/live.html" >"$WORK/out" 2>&1; then
    check "$WORK/live.html" "$WORK/live.json" mlp-live --classes 3 --widths 375
  else
    echo "FAIL: lamina report of an in-progress JSON did not succeed:"; cat "$WORK/out"; FAILS=$((FAILS + 1))
  fi
fi

# A text classifier with an Embedding: its tokens coloured by attribution.
if train text "$CLI/spec_text_embedding.json"; then
  check "$WORK/text.html" "$WORK/text.json" text --tokens --widths 375
fi

if train cnn "$CORPUS/specs/cnn.json"; then
  # The gallery shows the test images the model got wrong; it must be there when there are some.
  gallery=()
  if "${NODE:-node}" -e 'process.exit(require(process.argv[1]).test.accuracy < 1 ? 0 : 1)' "$WORK/cnn.json"; then gallery=(--gallery)
  else echo "note: the CNN got every test image right: no gallery expected"; fi
  check "$WORK/cnn.html" "$WORK/cnn.json" cnn --classes 3 "${gallery[@]}"
fi

if [[ $FAILS -eq 0 ]]; then echo "all report browser checks passed"; else echo "$FAILS report browser check(s) failed"; fi
[[ $FAILS -eq 0 ]]
