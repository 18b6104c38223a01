// Image augmentation on one channels-last sample (H, W, C): flips, whole-pixel shifts, padded
// crops and bilinear rotation, each with zero fill. Plain loops on raw floats, outside autograd:
// they run inside Pipeline::map, possibly on the prefetch thread.
#include <cmath>
#include <string>

#include "lamina/pipeline.hpp"

namespace lamina::data::augment {

namespace {

struct Hwc {
  int64_t h, w, c;
};

Hwc check_image(const Tensor& image, const char* where) {
  if (!image.defined() || image.rank() != 3)
    throw ShapeError(std::string("augment::") + where + ": expects one channels-last image (H, W, C), got " +
                     (image.defined() ? image.shape().str() : std::string("an undefined tensor")) +
                     " (hint: a grayscale 28x28 image is (28, 28, 1))");
  return {image.dim(0), image.dim(1), image.dim(2)};
}

// Uniform integer in [-max, max].
int64_t symmetric(Generator& rng, int64_t max) {
  return static_cast<int64_t>(rng.below(static_cast<uint64_t>(2 * max + 1))) - max;
}

}  // namespace

Tensor flip_left_right(const Tensor& image) {
  const auto [h, w, c] = check_image(image, "flip_left_right");
  Tensor out = Tensor::empty(image.shape());
  const float* src = image.data();
  float* dst = out.data();
  for (int64_t r = 0; r < h; ++r)
    for (int64_t q = 0; q < w; ++q)
      for (int64_t k = 0; k < c; ++k) dst[(r * w + q) * c + k] = src[(r * w + (w - 1 - q)) * c + k];
  return out;
}

Tensor random_flip_left_right(const Tensor& image, Generator& rng) {
  check_image(image, "random_flip_left_right");
  return rng.uniform() < 0.5f ? flip_left_right(image) : image.clone();
}

Tensor translate(const Tensor& image, int64_t dy, int64_t dx) {
  const auto [h, w, c] = check_image(image, "translate");
  Tensor out = Tensor::zeros(image.shape());
  const float* src = image.data();
  float* dst = out.data();
  for (int64_t r = 0; r < h; ++r) {
    const int64_t sr = r - dy;
    if (sr < 0 || sr >= h) continue;
    for (int64_t q = 0; q < w; ++q) {
      const int64_t sq = q - dx;
      if (sq < 0 || sq >= w) continue;
      for (int64_t k = 0; k < c; ++k) dst[(r * w + q) * c + k] = src[(sr * w + sq) * c + k];
    }
  }
  return out;
}

Tensor random_translation(const Tensor& image, Generator& rng, float height_factor, float width_factor) {
  const auto [h, w, c] = check_image(image, "random_translation");
  if (!(height_factor >= 0.f && height_factor <= 1.f && width_factor >= 0.f && width_factor <= 1.f))
    throw ValueError("augment::random_translation: height_factor " + std::to_string(height_factor) +
                     " and width_factor " + std::to_string(width_factor) + " must be in [0, 1] (fractions of H and W)");
  const int64_t dy = symmetric(rng, static_cast<int64_t>(std::floor(height_factor * static_cast<float>(h))));
  const int64_t dx = symmetric(rng, static_cast<int64_t>(std::floor(width_factor * static_cast<float>(w))));
  return translate(image, dy, dx);
}

Tensor random_crop(const Tensor& image, Generator& rng, int64_t padding) {
  check_image(image, "random_crop");
  if (padding < 0) throw ValueError("augment::random_crop: padding is " + std::to_string(padding) + ", expected >= 0");
  // The window's top-left corner in the padded image is (top, left) in [0, 2 * padding]: the
  // content moves by padding - top rows and padding - left columns.
  const int64_t top = static_cast<int64_t>(rng.below(static_cast<uint64_t>(2 * padding + 1)));
  const int64_t left = static_cast<int64_t>(rng.below(static_cast<uint64_t>(2 * padding + 1)));
  return translate(image, padding - top, padding - left);
}

Tensor rotate(const Tensor& image, float degrees) {
  const auto [h, w, c] = check_image(image, "rotate");
  if (!std::isfinite(degrees)) throw ValueError("augment::rotate: degrees must be finite, got " + std::to_string(degrees));
  // Inverse mapping about the centre (cy, cx): output pixel (y, x) relative to the centre reads
  // the input at (cos t * y + sin t * x, cos t * x - sin t * y), rows pointing down, so a
  // positive angle turns the picture counterclockwise (90 degrees: out(r, q) = in(q, W-1-r)).
  const double t = static_cast<double>(degrees) * M_PI / 180.0;
  const double cs = std::cos(t), sn = std::sin(t);
  const double cy = static_cast<double>(h - 1) / 2.0, cx = static_cast<double>(w - 1) / 2.0;
  Tensor out = Tensor::zeros(image.shape());
  const float* src = image.data();
  float* dst = out.data();
  for (int64_t r = 0; r < h; ++r) {
    for (int64_t q = 0; q < w; ++q) {
      const double y = static_cast<double>(r) - cy, x = static_cast<double>(q) - cx;
      const double sy = cs * y + sn * x + cy, sx = cs * x - sn * y + cx;
      const double fy = std::floor(sy), fx = std::floor(sx);
      const auto y0 = static_cast<int64_t>(fy), x0 = static_cast<int64_t>(fx);
      const double wy = sy - fy, wx = sx - fx;
      if (y0 < -1 || y0 >= h || x0 < -1 || x0 >= w) continue;  // all four neighbours outside
      const double weights[4] = {(1 - wy) * (1 - wx), (1 - wy) * wx, wy * (1 - wx), wy * wx};
      const int64_t ys[4] = {y0, y0, y0 + 1, y0 + 1}, xs[4] = {x0, x0 + 1, x0, x0 + 1};
      for (int64_t k = 0; k < c; ++k) {
        double v = 0.0;
        for (int n = 0; n < 4; ++n)
          if (ys[n] >= 0 && ys[n] < h && xs[n] >= 0 && xs[n] < w && weights[n] != 0.0)
            v += weights[n] * src[(ys[n] * w + xs[n]) * c + k];
        dst[(r * w + q) * c + k] = static_cast<float>(v);
      }
    }
  }
  return out;
}

Tensor random_rotation(const Tensor& image, Generator& rng, float max_degrees) {
  check_image(image, "random_rotation");
  if (!(max_degrees >= 0.f && max_degrees <= 180.f))
    throw ValueError("augment::random_rotation: max_degrees is " + std::to_string(max_degrees) + ", expected 0 to 180");
  const float degrees = (2.f * rng.uniform() - 1.f) * max_degrees;
  return rotate(image, degrees);
}

}  // namespace lamina::data::augment
