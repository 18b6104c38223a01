// Upsampling NHWC images by whole factors (UpSampling2D): forward and backward on oneDNN's
// resampling primitive (one per geometry and thread count, cached per thread), and kernels::ref,
// the naive loops that document the math and check the fast path. Internal to the library.
#pragma once

#include <cstdint>
#include <tuple>

namespace lamina::kernels {

// x (N, H, W, C) -> y (N, H SH, W SW, C). nearest: y[i][j] = x[i / SH][j / SW]. linear: half-pixel
// centers, source row (i + 0.5) / SH - 0.5 (the same for columns), clamped to [0, H - 1]
// (tf.image.resize bilinear, torch's F.interpolate align_corners=False).
struct Resample {
  int64_t n = 0, h = 0, w = 0, c = 0, sh = 1, sw = 1;
  bool linear = false;
  int64_t oh() const { return h * sh; }
  int64_t ow() const { return w * sw; }
  auto tie() const { return std::tie(n, h, w, c, sh, sw, linear); }
  bool operator<(const Resample& o) const { return tie() < o.tie(); }
};

void resample_forward(const Resample& r, const float* x, float* y);
// dx (N, H, W, C) (+)= each dy cell sent back to the cells it read, with the forward's weights.
void resample_backward(const Resample& r, const float* dy, float* dx, bool accumulate);

namespace ref {
void resample_forward(const Resample& r, const float* x, float* y);
void resample_backward(const Resample& r, const float* dy, float* dx, bool accumulate);
}  // namespace ref

}  // namespace lamina::kernels
