// Images: PNG files through libpng (8-bit out; 1/2/4/8/16-bit, grey, grey + alpha, RGB, RGBA and
// palette in) and a grid of images in one picture, as torchvision.utils.make_grid lays it out.
// Images are float tensors, channels last: (H, W) or (H, W, C). No resizing, no colour
// management (gAMA / iCCP are ignored, as OpenCV does), no other formats.
//
//   write_png("samples.png", image_grid(generated, 8, 8));          // (N, 28, 28, 1) in [0, 1]
//   write_png("tanh.png", image, {.low = -1.f, .high = 1.f});         // a tanh generator's range
//   Tensor x = read_png("digit.png", 1);                              // (H, W, 1) grey in [0, 1]
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "lamina/tensor.hpp"

namespace lamina {

// H, W = image height and width, C = channels, N = images.

struct PngWriteOptions {
  // The value range written: low becomes 0, high becomes 255, values outside are clamped.
  // Each value maps to floor((x - low) / (high - low) * 255 + 0.5), as torchvision's save_image.
  float low = 0.f;
  float high = 1.f;
};

// Encodes an (H, W) or (H, W, 1) grey, (H, W, 2) grey + alpha, (H, W, 3) RGB or (H, W, 4) RGBA
// float image as an 8-bit PNG. ShapeError for other shapes or an empty image, ValueError for a
// NaN (a diverged generator should not pass as a black picture) or a bad range.
std::string encode_png(const Tensor& image, PngWriteOptions options = {});

// encode_png, then written atomically (a temporary file beside `path`, fsync, rename:
// io::write_file_atomic), so a failure leaves neither a half file nor a temporary behind.
// Errors name the path.
void write_png(const std::string& path, const Tensor& image, PngWriteOptions options = {});

// Decodes a PNG into float (H, W, C) in [0, 1] (8-bit values / 255, 16-bit values / 65535).
// `channels` as tf.io.decode_png: 0 keeps the file's own count after expansion (grey 1,
// grey + alpha 2, RGB 3, RGBA 4; a palette gives 3, or 4 with a tRNS chunk; a grey or RGB
// tRNS adds alpha); 1 makes grey (RGB -> 0.299 R + 0.587 G + 0.114 B, as OpenCV and PIL);
// 3 makes RGB; 4 makes RGBA (alpha 1 where the file has none). Dropping alpha does not
// composite, it drops. IoError naming `name` for a file that is not a PNG, is truncated or is
// corrupt; ValueError for another `channels`.
Tensor decode_png(std::string_view bytes, const std::string& name = "<memory>", int channels = 0);

// Reads and decodes the file at `path` (decode_png with `path` in its errors).
Tensor read_png(const std::string& path, int channels = 0);

// Tiles (N, H, W) or (N, H, W, C) images row by row into one
// (rows * (H + pad) + pad, cols * (W + pad) + pad[, C]) image with `pad` pixels of `pad_value`
// around and between them, as torchvision.utils.make_grid (pad_value 0 there too). N may be
// less than rows * cols: the remaining cells stay pad_value. ShapeError for another rank,
// ValueError for rows or cols < 1, pad < 0 or N > rows * cols.
Tensor image_grid(const Tensor& images, int64_t rows, int64_t cols, int64_t pad = 2, float pad_value = 0.f);

}  // namespace lamina
