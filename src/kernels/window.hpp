// The geometry of a 2-D sliding window over NHWC images, shared by convolution and pooling:
// sizes, strides, the padding on each side and the output size, with Keras' (TensorFlow's)
// rules for 'valid' and 'same', ONNX's rule for explicit pads, and the size limit every op and
// layer checks. The only place these rules are written; internal to the library (no oneDNN).
#pragma once

#include <algorithm>
#include <cstdint>
#include <string>
#include <tuple>

#include "lamina/error.hpp"
#include "lamina/ops.hpp"  // Size2, Padding

namespace lamina::kernels {

// N = batch, H, W = spatial, C = input channels, F = output channels (filters for a
// convolution; C again for pooling), KH, KW = window, OH, OW = output. DH, DW = the
// dilation of a convolution's window (Keras' dilation_rate: taps DH rows apart); pooling keeps 1.
struct Geometry2d {
  int64_t n = 0, h = 0, w = 0, c = 0, f = 0;
  int64_t kh = 1, kw = 1, sh = 1, sw = 1;
  int64_t pad_top = 0, pad_bottom = 0, pad_left = 0, pad_right = 0;
  int64_t oh = 0, ow = 0;
  int64_t dh = 1, dw = 1;

  auto tie() const {
    return std::tie(n, h, w, c, f, kh, kw, sh, sw, pad_top, pad_bottom, pad_left, pad_right, oh, ow, dh, dw);
  }
  bool operator<(const Geometry2d& o) const { return tie() < o.tie(); }
  bool operator==(const Geometry2d& o) const { return tie() == o.tie(); }
};

// The largest window (kernel or pool size) and stride Lamina takes, per axis. oneDNN keeps
// these in int inside its kernels: past 2^31 it refuses the descriptor or loops for minutes, and
// a 10^9 window already takes seconds per sample. No real model comes near 2^20.
constexpr int64_t kMaxWindow = int64_t{1} << 20;

inline std::string size2_str(Size2 s) { return std::to_string(s.h) + "x" + std::to_string(s.w); }

// Throws ValueError unless every size of `window` and `strides` is in [1, kMaxWindow], e.g.
// "max_pool2d: window 2x2 and strides 0x0 must be positive". who: the op or layer class;
// window_name: what its caller calls the window ("window", "kernel_size", "pool_size").
inline void check_window(const std::string& who, const char* window_name, Size2 window, Size2 strides) {
  const auto [lo, hi] = std::minmax({window.h, window.w, strides.h, strides.w});
  if (lo >= 1 && hi <= kMaxWindow) return;
  throw ValueError(who + ": " + window_name + " " + size2_str(window) + " and strides " + size2_str(strides) +
                   (lo < 1 ? " must be positive" : " must be at most " + std::to_string(kMaxWindow)));
}

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

// One axis of a dilated window (Conv1D): k taps d cells apart span (k - 1) d + 1 cells; valid
// and same are window_axis over that span, causal puts all of its padding before the start.
// k, d <= kMaxWindow (checked by the caller), so the span cannot overflow.
inline Axis dilated_axis(int64_t in, int64_t k, int64_t s, int64_t d, Padding1D padding) {
  const int64_t span = (k - 1) * d + 1;
  if (padding != Padding1D::causal) return window_axis(in, span, s, padding == Padding1D::same);
  return {in >= 1 ? (in - 1) / s + 1 : 0, span - 1, 0};
}

// One axis of a transposed convolution (Keras' Conv2DTranspose): `out` is Keras'
// deconv_output_length (keras/src/ops/operation_utils.py, compute_conv_transpose_output_length)
// for k taps d cells apart (span = (k - 1) d + 1) and stride s: without output_padding,
// valid in s + max(span - s, 0), same in s; with output_padding P, (in - 1) s + span + P for
// valid, (in - 1) s + span % 2 + P for same. pad_lo / pad_hi are the cells cropped from the
// start / end of the full output (in - 1) s + span, as TensorFlow's conv2d_transpose (and JAX's
// Keras backend) place them: none at the start for valid; for same, the 'same' padding of the
// forward convolution from out cells (max(full - out, 0), the smaller half first). pad_hi < 0
// adds cells at the end (P, or s > span with valid), never below 1 - s when P < s.
// in >= 1; k, s, d <= kMaxWindow and 0 <= P < s, checked by the caller.
inline Axis transpose_axis(int64_t in, int64_t k, int64_t s, int64_t d, bool same, const int64_t* output_padding) {
  const int64_t span = (k - 1) * d + 1, full = (in - 1) * s + span;
  const int64_t out = output_padding ? (in - 1) * s + (same ? span % 2 : span) + *output_padding
                      : same         ? in * s
                                     : in * s + std::max<int64_t>(span - s, 0);
  const int64_t lo = same ? std::max<int64_t>(full - out, 0) / 2 : 0;
  return {out, lo, full - out - lo};
}

// `window` sliding with `strides` and Keras' `padding` over images (N, H, W, C), giving F
// channels: both axes by window_axis. Layers, which see one sample (H, W, C), pass n = 1 and
// read oh, ow. Sizes as window_axis; callers check them first (check_window).
inline Geometry2d window_geometry(int64_t n, int64_t h, int64_t w, int64_t c, int64_t f, Size2 window, Size2 strides,
                                  Padding padding) {
  const bool same = padding == Padding::same;
  const Axis y = window_axis(h, window.h, strides.h, same), x = window_axis(w, window.w, strides.w, same);
  return {n, h, w, c, f, window.h, window.w, strides.h, strides.w,
          y.pad_lo, y.pad_hi, x.pad_lo, x.pad_hi, y.out, x.out};
}

// ONNX's rule for one axis with explicit pads (Conv, MaxPool, AveragePool; see
// https://onnx.ai/onnx/operators/onnx__MaxPool.html): out = floor((in + pad_lo + pad_hi - k) / s)
// + 1, or ceil with ceil_mode, where a window that would start in the trailing padding is
// dropped (the last must start inside the image or its leading padding); 0 when none fits.
// in, k, s >= 1; in + pad_lo + pad_hi must not overflow (the importer caps each at 2^31).
inline int64_t explicit_pads_axis(int64_t in, int64_t k, int64_t s, int64_t pad_lo, int64_t pad_hi, bool ceil_mode) {
  const int64_t span = in + pad_lo + pad_hi - k;
  if (span < 0) return 0;
  if (!ceil_mode) return span / s + 1;
  const int64_t out = span / s + (span % s != 0) + 1;
  return (out - 1) * s >= in + pad_lo ? out - 1 : out;
}

}  // namespace lamina::kernels
