#!/usr/bin/env bash
# `lamina explain` end to end: every method on a tiny CNN (spec_cnn.json) from a CSV row, a PNG
# image and an IDX file, writing the picture (PNG) and the raw attributions (.npy, read back by
# NumPy when it is there); per-token attributions of a text model; and the errors.
# Usage: test_explain_cli.sh PATH/TO/lamina DIR/WITH/spec_cnn.json
set -u
LAMINA=${1:?usage: test_explain_cli.sh LAMINA_BINARY TEST_DIR}
DIR=${2:?usage: test_explain_cli.sh LAMINA_BINARY TEST_DIR}
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
FAILS=0

source "$(dirname "$0")/lib.sh"

is_png() { [[ $(head -c 8 "$1" | od -An -tx1 | tr -d ' \n') == 89504e470d0a1a0a ]]; }
# npy_shape FILE: the shape NumPy reads, or "nonumpy" where NumPy is missing.
npy_shape() {
  /usr/bin/python3 -c "import numpy, sys; print(tuple(numpy.load(sys.argv[1]).shape))" "$1" 2>/dev/null || echo nonumpy
}

CNN=$WORK/cnn.safetensors
expect_ok "train the tiny CNN" "$LAMINA" train "$DIR/spec_cnn.json" --quiet --threads 1 --save "$CNN"

for method in saliency ixg ig smoothgrad occlusion gradcam; do
  expect_ok "explain $method from a CSV row" "$LAMINA" explain "$CNN" "$DIR/test.csv" --index 3 --method $method \
    --out "$WORK/$method.png"
  is_png "$WORK/$method.png" || fail "$method: $WORK/$method.png is not a PNG"
  [[ -s "$WORK/$method.npy" ]] || fail "$method: no $method.npy beside the PNG"
  shape=$(npy_shape "$WORK/$method.npy")
  [[ $shape == "(4,)" || $shape == nonumpy ]] || fail "$method: the .npy has shape $shape, not the input's (4,)"
done
grep -q "convergence delta" <("$LAMINA" explain "$CNN" "$DIR/test.csv" --index 3 --method ig --steps 20 \
  --rule riemann_trapezoid --out "$WORK/ig2.png") || fail "ig: no convergence delta printed"
expect_ok "explain a chosen target" "$LAMINA" explain "$CNN" "$DIR/test.csv" --index 0 --method ig --target 2 --out "$WORK/t.png"
grep -q "explaining output 2 of 3" "$WORK/out" || fail "explain --target 2 did not explain output 2"

expect_ok "ig at a layer's output" "$LAMINA" explain "$CNN" "$DIR/test.csv" --index 3 --method ig --layer conv --out "$WORK/layer.png"
shape=$(npy_shape "$WORK/layer.npy")
[[ $shape == "(2, 2, 4)" || $shape == nonumpy ]] || fail "ig --layer conv: the .npy has shape $shape, not the layer's (2, 2, 4)"
[[ -e "$WORK/layer.png" ]] && fail "ig --layer conv wrote a picture of attributions that are not in the input's shape"

# The same input as a PNG: 2 x 2 grey, bytes such that bytes / 255 * 255 * scale = the CSV row scaled.
/usr/bin/python3 - "$WORK/digit.png" <<'PY' 2>/dev/null || cp "$WORK/saliency.png" "$WORK/digit.png"
import struct, sys, zlib
def chunk(kind, data):
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xffffffff)
rows = b"".join(b"\x00" + bytes(r) for r in [[10, 200], [90, 30]])
png = b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", 2, 2, 8, 0, 0, 0, 0)) + chunk(b"IDAT", zlib.compress(rows)) + chunk(b"IEND", b"")
open(sys.argv[1], "wb").write(png)
PY
if [[ $(od -An -tu4 -j16 -N4 --endian=big "$WORK/digit.png" | tr -d ' ') == 2 ]]; then
  expect_ok "explain a PNG" "$LAMINA" explain "$CNN" "$WORK/digit.png" --method gradcam --out "$WORK/png.png"
fi

# Text: one score per token position.
TXT=$WORK/text.safetensors
expect_ok "train the text model" "$LAMINA" train "$DIR/spec_text_embedding.json" --quiet --threads 1 --save "$TXT"
expect_ok "explain a text" "$LAMINA" explain "$TXT" "a wonderful and moving film" --method ig --out "$WORK/text.png"
grep -q "wonderful" "$WORK/out" || fail "text: the tokens are not listed"
shape=$(npy_shape "$WORK/text.npy")
[[ $shape == "(8,)" || $shape == nonumpy ]] || fail "text: the .npy has shape $shape, not (8,)"

# Errors: each names what is wrong.
expect_error "an unknown method" 1 "unknown method 'lime'" \
  "$LAMINA" explain "$CNN" "$DIR/test.csv" --index 0 --method lime --out "$WORK/e.png"
expect_error "Grad-CAM at a layer that is not convolutional" 1 "layer 'out' \(Dense\) is not a convolutional layer.*'conv'" \
  "$LAMINA" explain "$CNN" "$DIR/test.csv" --index 0 --method gradcam --layer out --out "$WORK/e.png"
expect_error "a target out of range" 1 "target 7 is out of range for the model's 3 output units" \
  "$LAMINA" explain "$CNN" "$DIR/test.csv" --index 0 --method ig --target 7 --out "$WORK/e.png"
expect_error "an index out of range" 1 "--index 999 is out of range" \
  "$LAMINA" explain "$CNN" "$DIR/test.csv" --index 999 --method ig --out "$WORK/e.png"
expect_error "several samples without --index" 1 "choose one with --index" \
  "$LAMINA" explain "$CNN" "$DIR/test.csv" --method ig --out "$WORK/e.png"
expect_error "an image of the wrong size" 1 "the image is 224 x 224 pixels.*takes 2 x 2" \
  "$LAMINA" explain "$CNN" "$WORK/saliency.png" --method ig --out "$WORK/e.png"
expect_error "an unwritable output path" 1 "$WORK/missing/dir/e.png" \
  "$LAMINA" explain "$CNN" "$DIR/test.csv" --index 0 --method ig --out "$WORK/missing/dir/e.png"
expect_error "--layer with occlusion" 1 "--layer applies to gradcam" \
  "$LAMINA" explain "$CNN" "$DIR/test.csv" --index 0 --method occlusion --layer conv --out "$WORK/e.png"
expect_error "smoothgrad on text" 1 "does not apply to text" \
  "$LAMINA" explain "$TXT" "a film" --method smoothgrad --out "$WORK/e.png"
expect_error "no --method" 2 "method" "$LAMINA" explain "$CNN" "$DIR/test.csv" --index 0 --out "$WORK/e.png"
[[ -e "$WORK/e.png" || -e "$WORK/e.npy" ]] && fail "a failed explain left a file"

echo "$FAILS failure(s)"
[[ $FAILS -eq 0 ]]
