// Resizing channels-last images, x (N, H, W, C): upsample2d (Keras' UpSampling2D; oneDNN's
// resampling primitive), zero_pad2d (ZeroPadding2D) and crop2d (Cropping2D), plain copies.
// upsample2d backward: dx gets each dy cell back through the forward's taps (oneDNN).
// zero_pad2d backward: dx = the inner window of dy. crop2d backward: dx = dy placed back into
// zeros. None saves anything for backward but shapes.
// N = batch, H, W = spatial, C = channels.
#include <algorithm>
#include <string>

#include "kernels/elementwise.hpp"
#include "kernels/resample.hpp"
#include "kernels/window.hpp"
#include "lamina/autograd.hpp"
#include "lamina/ops.hpp"

namespace lamina {

namespace {

std::string margins_str(const Margins2& m) {
  return "(top " + std::to_string(m.top) + ", bottom " + std::to_string(m.bottom) + ", left " +
         std::to_string(m.left) + ", right " + std::to_string(m.right) + ")";
}

void require_image(const char* op, const Tensor& x) {
  if (x.rank() != 4)
    throw ShapeError(std::string(op) + ": expects images (N, H, W, C) (channels last), got " + x.shape().str() +
                     (x.rank() == 3 ? "; add a batch axis, or a channel axis with reshape" : ""));
}

void require_margins(const char* op, const Tensor& x, const Margins2& m) {
  if (std::min({m.top, m.bottom, m.left, m.right}) < 0 ||
      std::max({m.top, m.bottom, m.left, m.right}) > kernels::kMaxWindow)
    throw ValueError(std::string(op) + ": margins " + margins_str(m) + " on " + x.shape().str() +
                     " must be in [0, " + std::to_string(kernels::kMaxWindow) + "]");
}

// The (N, H, W, C) image `small` and the window of `big` (N, BH, BW, C) that starts at row
// `top`, column `left` and has small's size: copies one into the other, row by row (each row
// W C contiguous floats). into_big: small -> window, else window -> small; accumulate adds.
void copy_window(const Shape& small, int64_t big_h, int64_t big_w, int64_t top, int64_t left, const float* from,
                 float* to, bool into_big, bool accumulate) {
  const int64_t n = small[0], h = small[1], w = small[2], c = small[3];
  const int64_t row = w * c;
  for (int64_t b = 0; b < n; ++b)
    for (int64_t i = 0; i < h; ++i) {
      const int64_t s = ((b * h + i) * w) * c;
      const int64_t g = ((b * big_h + top + i) * big_w + left) * c;
      const float* src = from + (into_big ? s : g);
      float* dst = to + (into_big ? g : s);
      if (accumulate) kernels::add_into(src, dst, row);
      else std::copy_n(src, row, dst);
    }
}

}  // namespace

Tensor upsample2d(const Tensor& x, Size2 size, Interpolation interpolation) {
  require_image("upsample2d", x);
  kernels::check_window("upsample2d", "size", size, Size2(1, 1));
  const kernels::Resample r{x.dim(0), x.dim(1), x.dim(2), x.dim(3), size.h, size.w,
                            interpolation == Interpolation::bilinear};
  Tensor y = Tensor::empty({r.n, r.oh(), r.ow(), r.c});
  kernels::resample_forward(r, x.data(), y.data());
  record("upsample2d", y, {x}, [r](BackwardContext& ctx) {
    const auto dx = ctx.dx_out(0);
    kernels::resample_backward(r, ctx.dy().data(), dx.data, dx.accumulate);
  });
  return y;
}

Tensor zero_pad2d(const Tensor& x, Margins2 p) {
  require_image("zero_pad2d", x);
  require_margins("zero_pad2d", x, p);
  const int64_t oh = x.dim(1) + p.top + p.bottom, ow = x.dim(2) + p.left + p.right;
  Tensor y = Tensor::zeros({x.dim(0), oh, ow, x.dim(3)});
  copy_window(x.shape(), oh, ow, p.top, p.left, x.data(), y.data(), /*into_big=*/true, /*accumulate=*/false);
  const Shape in = x.shape();
  record("zero_pad2d", y, {x}, [in, p, oh, ow](BackwardContext& ctx) {
    const auto dx = ctx.dx_out(0);
    copy_window(in, oh, ow, p.top, p.left, ctx.dy().data(), dx.data, /*into_big=*/false, dx.accumulate);
  });
  return y;
}

Tensor crop2d(const Tensor& x, Margins2 m) {
  require_image("crop2d", x);
  require_margins("crop2d", x, m);
  const int64_t h = x.dim(1), w = x.dim(2);
  const int64_t oh = h - m.top - m.bottom, ow = w - m.left - m.right;
  if (oh < 1 || ow < 1)
    throw ShapeError("crop2d: cropping " + margins_str(m) + " leaves nothing of " + x.shape().str() + " (" +
                     std::to_string(oh) + "x" + std::to_string(ow) + "); crop less or use a larger input");
  Tensor y = Tensor::empty({x.dim(0), oh, ow, x.dim(3)});
  const Shape out = y.shape();
  copy_window(out, h, w, m.top, m.left, x.data(), y.data(), /*into_big=*/false, /*accumulate=*/false);
  record("crop2d", y, {x}, [out, m, h, w](BackwardContext& ctx) {
    const auto dx = ctx.dx_out(0);
    if (!dx.accumulate) std::fill_n(dx.data, out[0] * h * w * out[3], 0.f);  // the cropped border gets none
    copy_window(out, h, w, m.top, m.left, ctx.dy().data(), dx.data, /*into_big=*/true, dx.accumulate);
  });
  return y;
}

}  // namespace lamina
