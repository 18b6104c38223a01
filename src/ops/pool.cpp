// Pooling over channels-last images: x (N, H, W, C) -> (N, OH, OW, C).
// max_pool2d: the maximum of each window (padding never wins). backward: dy goes to each
//   window's maximum; the workspace that records where it was is kept in the closure
//   (only when a backward can follow).
// avg_pool2d: the mean of the window's cells inside the image (Keras' AveragePooling2D;
//   torch's count_include_pad=False). backward: dy / cells to each of them.
// global_avg_pool2d: (N, H, W, C) -> (N, C), the mean over H and W. backward: dy / (H W).
// N = batch, H, W = spatial, C = channels.
#include "kernels/elementwise.hpp"
#include "kernels/pool.hpp"
#include "lamina/autograd.hpp"
#include "lamina/ops.hpp"
#include "ops/window.hpp"

namespace lamina {

Tensor max_pool2d(const Tensor& x, Size2 pool, Size2 strides, Padding padding) {
  const kernels::Geometry2d g = detail::image_window("max_pool2d", x.shape(), x.rank() == 4 ? x.dim(3) : 0, pool,
                                                     strides, padding);
  Tensor y = Tensor::empty({g.n, g.oh, g.ow, g.c});
  if (!grad_enabled() || !x.requires_grad()) {  // no backward: no workspace
    kernels::max_pool2d_forward(g, x.data(), y.data(), nullptr);
    return y;
  }
  const auto bytes = static_cast<int64_t>(kernels::max_pool2d_workspace_bytes(g));
  Tensor workspace = Tensor::empty({(bytes + 3) / 4});  // from the storage cache, like any buffer
  kernels::max_pool2d_forward(g, x.data(), y.data(), workspace.data());
  record("max_pool2d", y, {x}, [g, workspace](BackwardContext& ctx) {
    const auto dx = ctx.dx_out(0);
    kernels::max_pool2d_backward(g, ctx.dy().data(), workspace.data(), dx.data, dx.accumulate);
  });
  return y;
}

Tensor avg_pool2d(const Tensor& x, Size2 pool, Size2 strides, Padding padding) {
  const kernels::Geometry2d g = detail::image_window("avg_pool2d", x.shape(), x.rank() == 4 ? x.dim(3) : 0, pool,
                                                     strides, padding);
  Tensor y = Tensor::empty({g.n, g.oh, g.ow, g.c});
  kernels::avg_pool2d_forward(g, x.data(), y.data());
  record("avg_pool2d", y, {x}, [g](BackwardContext& ctx) {
    const auto dx = ctx.dx_out(0);
    kernels::avg_pool2d_backward(g, ctx.dy().data(), dx.data, dx.accumulate);
  });
  return y;
}

Tensor global_avg_pool2d(const Tensor& x) {
  if (x.rank() != 4) throw ShapeError("global_avg_pool2d: expects images (N, H, W, C) (channels last), got " + x.shape().str());
  const int64_t n = x.dim(0), hw = x.dim(1) * x.dim(2), c = x.dim(3);
  if (hw == 0) throw ShapeError("global_avg_pool2d: the mean over an empty image " + x.shape().str() + " is undefined");
  Tensor y = Tensor::zeros({n, c});
  const float* px = x.data();
  float* py = y.data();
  const float inv = 1.f / static_cast<float>(hw);
  for (int64_t i = 0; i < n; ++i) {
    float* out = py + i * c;
    for (int64_t p = 0; p < hw; ++p) kernels::add_into(px + (i * hw + p) * c, out, c);
    for (int64_t j = 0; j < c; ++j) out[j] *= inv;
  }
  record("global_avg_pool2d", y, {x}, [n, hw, c, inv](BackwardContext& ctx) {
    const auto dx = ctx.dx_out(0);
    const float* dy = ctx.dy().data();
    for (int64_t i = 0; i < n; ++i)
      for (int64_t p = 0; p < hw; ++p) {
        float* row = dx.data + (i * hw + p) * c;
        const float* d = dy + i * c;
        if (dx.accumulate) {
          for (int64_t j = 0; j < c; ++j) row[j] += d[j] * inv;
        } else {
          for (int64_t j = 0; j < c; ++j) row[j] = d[j] * inv;
        }
      }
  });
  return y;
}

}  // namespace lamina
