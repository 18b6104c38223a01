// Fuzz target: the PNG decoder (decode_png) under each channel request (0, 1, 3, 4). An accepted
// image must be (H, W, C) with C as asked (1 to 4 for 0) and values in [0, 1]; and what an
// 8-bit PNG can hold of it (each value rounded to k / 255) must come back exactly through
// encode_png and decode_png.
#include <cmath>
#include <cstdint>
#include <string>

#include "fuzz.hpp"
#include "lamina/image.hpp"

namespace {

using lamina::Tensor;

void check_image(const Tensor& image, int channels) {
  if (image.rank() != 3 || image.dim(0) < 1 || image.dim(1) < 1 || image.dim(2) < 1 || image.dim(2) > 4 ||
      (channels != 0 && image.dim(2) != channels))
    lamina::fuzz::fail("decode_png(channels=" + std::to_string(channels) + ") gave shape " + image.shape().str());
  for (float x : image.values())
    if (!(x >= 0.f && x <= 1.f)) lamina::fuzz::fail("decode_png gave a value outside [0, 1]: " + std::to_string(x));
  if (image.numel() > (1 << 18)) return;  // keeps each run quick; large images add nothing here
  Tensor quantized = image.clone();
  for (float& x : quantized.values()) x = static_cast<float>(std::floor(x * 255.0 + 0.5)) / 255.f;
  const Tensor back = lamina::decode_png(lamina::encode_png(quantized), "round trip");
  if (back.shape() != quantized.shape()) lamina::fuzz::fail("round trip changed the shape");
  for (int64_t i = 0; i < back.numel(); ++i)
    if (back.data()[i] != quantized.data()[i]) lamina::fuzz::fail("round trip changed value " + std::to_string(i));
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view bytes(reinterpret_cast<const char*>(data), size);
  for (int channels : {0, 1, 3, 4}) {
    Tensor image;
    if (lamina::fuzz::accepts([&] { image = lamina::decode_png(bytes, "fuzz.png", channels); }))
      check_image(image, channels);
  }
  return 0;
}
