// sum and mean, over all elements or along one axis. X seen as (outer, n, inner) around the
// axis; Y is (outer, inner) (with a 1 in place of the axis when keepdim).
// backward: dX[o, j, i] += scale * dY[o, i], scale = 1 (sum) or 1/n (mean).
// Sums accumulate in double, so long reductions keep float precision.
#include <vector>

#include "lamina/ops.hpp"
#include "ops/op_helpers.hpp"

namespace lamina {

namespace {

Tensor reduce_all(const char* op, const Tensor& x, bool average) {
  const int64_t n = x.numel();
  const float* px = x.data();
  double acc = 0.0;
  for (int64_t i = 0; i < n; ++i) acc += px[i];
  const float scale = average ? 1.f / static_cast<float>(n) : 1.f;
  Tensor y = Tensor::scalar(static_cast<float>(acc * (average ? 1.0 / static_cast<double>(n) : 1.0)));
  record(op, y, {x}, [scale](BackwardContext& g) {
    const float d = g.dy().data()[0] * scale;
    float* dx = g.dx(0).data();
    const int64_t count = g.dx(0).numel();
    for (int64_t i = 0; i < count; ++i) dx[i] += d;
  });
  return y;
}

Tensor reduce_axis(const char* op, const Tensor& x, int64_t axis, bool keepdim, bool average) {
  axis = detail::normalize_axis(op, axis, x.shape());
  const detail::AxisSplit s = detail::split_at(x.shape(), axis);
  std::vector<int64_t> dims = x.shape().dims();
  if (keepdim) dims[static_cast<size_t>(axis)] = 1;
  else dims.erase(dims.begin() + axis);
  Tensor y = Tensor::empty(Shape(std::move(dims)));
  const double scale = average ? 1.0 / static_cast<double>(s.n) : 1.0;
  const float* px = x.data();
  float* py = y.data();
  std::vector<double> acc(static_cast<size_t>(s.inner));
  for (int64_t o = 0; o < s.outer; ++o) {
    std::fill(acc.begin(), acc.end(), 0.0);
    for (int64_t j = 0; j < s.n; ++j) {
      const float* row = px + (o * s.n + j) * s.inner;
      for (int64_t i = 0; i < s.inner; ++i) acc[static_cast<size_t>(i)] += row[i];
    }
    for (int64_t i = 0; i < s.inner; ++i) py[o * s.inner + i] = static_cast<float>(acc[static_cast<size_t>(i)] * scale);
  }
  record(op, y, {x}, [s, scale = static_cast<float>(scale)](BackwardContext& g) {
    const float* dy = g.dy().data();
    float* dx = g.dx(0).data();
    for (int64_t o = 0; o < s.outer; ++o)
      for (int64_t j = 0; j < s.n; ++j) {
        float* row = dx + (o * s.n + j) * s.inner;
        const float* drow = dy + o * s.inner;
        for (int64_t i = 0; i < s.inner; ++i) row[i] += scale * drow[i];
      }
  });
  return y;
}

}  // namespace

Tensor sum(const Tensor& x) { return reduce_all("sum", x, false); }
Tensor mean(const Tensor& x) {
  if (x.numel() == 0) throw ShapeError("mean: the mean of an empty tensor " + x.shape().str() + " is undefined");
  return reduce_all("mean", x, true);
}
Tensor sum(const Tensor& x, int64_t axis, bool keepdim) { return reduce_axis("sum", x, axis, keepdim, false); }
Tensor mean(const Tensor& x, int64_t axis, bool keepdim) {
  if (x.numel() == 0) throw ShapeError("mean: the mean of an empty tensor " + x.shape().str() + " is undefined");
  return reduce_axis("mean", x, axis, keepdim, true);
}

}  // namespace lamina
