// Shared scaffolding for ops: axis handling and the elementwise forward/backward pattern.
// Internal to the library.
#pragma once

#include <string>

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

}  // namespace lamina::detail
