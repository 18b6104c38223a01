// Shared scaffolding for ops: axis handling and the elementwise forward/backward pattern.
// Internal to the library.
#pragma once

#include <string>

#include "lamina/ops.hpp"

#include "kernels/elementwise.hpp"
#include "lamina/autograd.hpp"
#include "lamina/tensor.hpp"

namespace lamina::detail {

// Maps a possibly negative axis into [0, rank); throws naming the op and the shape.
inline int64_t normalize_axis(const char* op, int64_t axis, const Shape& shape) {
  const int64_t r = shape.rank();
  if (axis < -r || axis >= r)
    throw ShapeError(std::string(op) + ": axis " + std::to_string(axis) + " is out of range for shape " +
                     shape.str());
  return axis < 0 ? axis + r : axis;
}

// A tensor seen as (outer, n, inner) around one axis: element (o, j, i) is at (o*n + j)*inner + i.
struct AxisSplit {
  int64_t outer = 1, n = 1, inner = 1;
};

inline AxisSplit split_at(const Shape& shape, int64_t axis) {
  AxisSplit s;
  for (int64_t a = 0; a < shape.rank(); ++a) {
    if (a < axis) s.outer *= shape[a];
    else if (a == axis) s.n = shape[a];
    else s.inner *= shape[a];
  }
  return s;
}

// An elementwise op: y = f(x); backward dx += g(x, y, dy). f and g are small lambdas.
template <class F, class G>
Tensor unary(const char* op, const Tensor& x, F f, G g) {
  Tensor y = Tensor::empty(x.shape());
  kernels::map(x.data(), y.data(), x.numel(), f);
  record(op, y, {x}, [g](BackwardContext& ctx) {
    const auto dx = ctx.dx_out(0);
    kernels::map_backward(ctx.input(0).data(), ctx.output().data(), ctx.dy().data(), dx.data, ctx.dy().numel(), g,
                          dx.accumulate);
  });
  return y;
}

// dZ = dY * act'(Z) for an activation fused into a primitive, with act' written from the
// output Y (relu: Y > 0; sigmoid: Y (1 - Y); tanh: 1 - Y^2). Returns dY itself for none.
inline Tensor fused_activation_grad(FusedActivation act, const Tensor& y, const Tensor& dy) {
  if (act == FusedActivation::none) return dy;
  Tensor dz = Tensor::empty(dy.shape());
  const float *py = y.data(), *pdy = dy.data();
  float* d = dz.data();
  const int64_t count = dy.numel();
  switch (act) {
    case FusedActivation::relu:
      for (int64_t i = 0; i < count; ++i) d[i] = py[i] > 0.f ? pdy[i] : 0.f;
      break;
    case FusedActivation::sigmoid:
      for (int64_t i = 0; i < count; ++i) d[i] = pdy[i] * py[i] * (1.f - py[i]);
      break;
    case FusedActivation::tanh:
      for (int64_t i = 0; i < count; ++i) d[i] = pdy[i] * (1.f - py[i] * py[i]);
      break;
    case FusedActivation::none: break;
  }
  return dz;
}

// y = y < 0 ? 0 : y in place: the relu that linear() and conv2d() apply after their primitive,
// because oneDNN's relu post-op maps NaN to 0 and this keeps it. (The count is hoisted: in the
// loop condition, numel() kept the loop from vectorizing.)
inline void relu_in_place(Tensor& y) {
  float* p = y.data();
  const int64_t count = y.numel();
  for (int64_t i = 0; i < count; ++i) p[i] = p[i] < 0.f ? 0.f : p[i];
}

}  // namespace lamina::detail
