// The geometry of a 2-D sliding window over NHWC images, shared by convolution and pooling:
// sizes, strides, the padding on each side and the output size, with Keras' (TensorFlow's)
// rules for 'valid' and 'same'. Internal to the library.
#pragma once

#include <algorithm>
#include <cstdint>
#include <tuple>

namespace lamina::kernels {

// N = batch, H, W = spatial, C = input channels, F = output channels (filters for a
// convolution; C again for pooling), KH, KW = window, OH, OW = output.
struct Geometry2d {
  int64_t n = 0, h = 0, w = 0, c = 0, f = 0;
  int64_t kh = 1, kw = 1, sh = 1, sw = 1;
  int64_t pad_top = 0, pad_bottom = 0, pad_left = 0, pad_right = 0;
  int64_t oh = 0, ow = 0;

  auto tie() const {
    return std::tie(n, h, w, c, f, kh, kw, sh, sw, pad_top, pad_bottom, pad_left, pad_right, oh, ow);
  }
  bool operator<(const Geometry2d& o) const { return tie() < o.tie(); }
  bool operator==(const Geometry2d& o) const { return tie() == o.tie(); }
};

// The largest window (kernel or pool size) and stride Lamina takes, per axis. oneDNN keeps
// these in int inside its kernels: past 2^31 it refuses the descriptor or loops for minutes, and
// a 10^9 window already takes seconds per sample. No real model comes near 2^20.
constexpr int64_t kMaxWindow = int64_t{1} << 20;

// One spatial axis. valid: out = floor((in - k) / s) + 1, no padding (out <= 0 when the window
// does not fit). same: out = ceil(in / s), total padding max((out - 1) s + k - in, 0), the
// smaller half first (TensorFlow puts the odd cell at the bottom / right).
struct Axis {
  int64_t out, pad_lo, pad_hi;
};

// in >= 0, k, s >= 1, any size up to INT64_MAX: written so that no step overflows
// ((out - 1) * s <= in - 1 when out >= 1).
inline Axis window_axis(int64_t in, int64_t k, int64_t s, bool same) {
  if (!same) return {in >= k ? (in - k) / s + 1 : 0, 0, 0};
  const int64_t out = in / s + (in % s != 0);
  const int64_t total = std::max<int64_t>(out > 0 ? (out - 1) * s - in + k : 0, 0);
  return {out, total / 2, total - total / 2};
}

inline Geometry2d window_geometry(int64_t n, int64_t h, int64_t w, int64_t c, int64_t f, int64_t kh, int64_t kw,
                                  int64_t sh, int64_t sw, bool same) {
  const Axis y = window_axis(h, kh, sh, same), x = window_axis(w, kw, sw, same);
  return {n, h, w, c, f, kh, kw, sh, sw, y.pad_lo, y.pad_hi, x.pad_lo, x.pad_hi, y.out, x.out};
}

}  // namespace lamina::kernels
