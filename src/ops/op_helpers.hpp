// Shared scaffolding for ops: axis handling and the elementwise forward/backward pattern.
// Internal to the library.
#pragma once

#include <algorithm>
#include <string>
#include <vector>

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

// Rows [begin, begin + count) of x (its first axis) as a tensor that shares x's storage,
// outside autograd: a batch's share or chunk.
inline Tensor rows(const Tensor& x, int64_t begin, int64_t count) {
  std::vector<int64_t> dims = x.shape().dims();
  const int64_t row = x.numel() / std::max<int64_t>(dims[0], 1);
  dims[0] = count;
  return x.view(begin * row, Shape(dims));
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

// dz = dy * act'(z) over n values for an activation fused into a primitive, with act' written
// from the output y (relu: y > 0; sigmoid: y (1 - y); tanh: 1 - y^2). dz may be dy itself.
inline void fused_activation_grad(FusedActivation act, const float* y, const float* dy, float* dz, int64_t n) {
  switch (act) {
    case FusedActivation::relu:
      for (int64_t i = 0; i < n; ++i) dz[i] = y[i] > 0.f ? dy[i] : 0.f;
      break;
    case FusedActivation::sigmoid:
      for (int64_t i = 0; i < n; ++i) dz[i] = dy[i] * y[i] * (1.f - y[i]);
      break;
    case FusedActivation::tanh:
      for (int64_t i = 0; i < n; ++i) dz[i] = dy[i] * (1.f - y[i] * y[i]);
      break;
    case FusedActivation::none:
      if (dz != dy) std::copy(dy, dy + n, dz);
      break;
  }
}

// The same on tensors; returns dY itself for none.
inline Tensor fused_activation_grad(FusedActivation act, const Tensor& y, const Tensor& dy) {
  if (act == FusedActivation::none) return dy;
  Tensor dz = Tensor::empty(dy.shape());
  fused_activation_grad(act, y.data(), dy.data(), dz.data(), dy.numel());
  return dz;
}

// p = p < 0 ? 0 : p in place over n values: the relu that linear() applies after its
// primitive, because oneDNN's relu post-op maps NaN to 0 and this keeps it.
inline void relu_in_place(float* p, int64_t n) { kernels::relu_in_place(p, n); }
inline void relu_in_place(Tensor& y) { relu_in_place(y.data(), y.numel()); }

}  // namespace lamina::detail
