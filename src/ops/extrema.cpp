// max / min along an axis (values, with gradient), argmax / argmin (no gradient), and cumsum.
// X seen as (outer, n, inner) around the axis; Y is (outer, inner) (a 1 in place of the axis
// with keepdim). max / min save the winning position per output (as torch.max(x, dim): the first
// extreme, a NaN counting as the extreme); backward: dX[o, arg[o, i], i] += dY[o, i].
// cumsum: Y[o, j, i] = sum_{l <= j} X[o, l, i]; backward: dX[o, j, i] += sum_{l >= j} dY[o, l, i].
#include <algorithm>
#include <cmath>
#include <string>
#include <vector>

#include "lamina/ops.hpp"
#include "ops/op_helpers.hpp"

namespace lamina {

namespace {

// The position along the axis of the first extreme of each (o, i): (outer * inner) indices.
// `better(a, b)`: a beats the current best b; NaN is handled here (the first NaN wins).
template <class Better>
std::vector<int64_t> arg_extreme(const Tensor& x, const detail::AxisSplit& s, Better better) {
  std::vector<int64_t> arg(static_cast<size_t>(s.outer * s.inner), 0);
  std::vector<float> best(static_cast<size_t>(s.inner));
  const float* px = x.data();
  for (int64_t o = 0; o < s.outer; ++o) {
    int64_t* a = arg.data() + o * s.inner;
    const float* first = px + o * s.n * s.inner;
    std::copy_n(first, s.inner, best.data());
    for (int64_t j = 1; j < s.n; ++j) {
      const float* row = first + j * s.inner;
      for (int64_t i = 0; i < s.inner; ++i) {
        const float b = best[static_cast<size_t>(i)], v = row[i];
        if (!std::isnan(b) && (std::isnan(v) || better(v, b))) {
          best[static_cast<size_t>(i)] = v;
          a[i] = j;
        }
      }
    }
  }
  return arg;
}

Shape reduced_shape(const Shape& shape, int64_t axis, bool keepdim) {
  std::vector<int64_t> dims = shape.dims();
  if (keepdim) dims[static_cast<size_t>(axis)] = 1;
  else dims.erase(dims.begin() + axis);
  return Shape(std::move(dims));
}

template <class Better>
Tensor extreme(const char* op, const Tensor& x, int64_t axis, bool keepdim, bool values, Better better) {
  axis = detail::normalize_axis(op, axis, x.shape());
  const detail::AxisSplit s = detail::split_at(x.shape(), axis);
  if (s.n == 0)
    throw ShapeError(std::string(op) + ": axis " + std::to_string(axis) + " of " + x.shape().str() +
                     " is empty; there is no " + (values ? "extreme" : "position") + " to return");
  std::vector<int64_t> arg = arg_extreme(x, s, better);
  Tensor y = Tensor::empty(reduced_shape(x.shape(), axis, keepdim));
  const float* px = x.data();
  float* py = y.data();
  for (int64_t o = 0; o < s.outer; ++o)
    for (int64_t i = 0; i < s.inner; ++i) {
      const int64_t j = arg[static_cast<size_t>(o * s.inner + i)];
      py[o * s.inner + i] = values ? px[(o * s.n + j) * s.inner + i] : static_cast<float>(j);
    }
  if (!values) return y;
  record(op, y, {x}, [s, arg = std::move(arg)](BackwardContext& g) {
    const float* dy = g.dy().data();
    float* dx = g.dx(0).data();
    for (int64_t o = 0; o < s.outer; ++o)
      for (int64_t i = 0; i < s.inner; ++i)
        dx[(o * s.n + arg[static_cast<size_t>(o * s.inner + i)]) * s.inner + i] += dy[o * s.inner + i];
  });
  return y;
}

constexpr auto kGreater = [](float a, float b) { return a > b; };
constexpr auto kLess = [](float a, float b) { return a < b; };

// dst[o, j, i] (+)= sum of src[o, l, i] over l <= j (forward) or l >= j (reverse), in double.
void running_sum(const float* src, float* dst, const detail::AxisSplit& s, bool reverse, bool accumulate) {
  std::vector<double> acc(static_cast<size_t>(s.inner));
  for (int64_t o = 0; o < s.outer; ++o) {
    std::fill(acc.begin(), acc.end(), 0.0);
    for (int64_t step = 0; step < s.n; ++step) {
      const int64_t j = reverse ? s.n - 1 - step : step;
      const int64_t off = (o * s.n + j) * s.inner;
      for (int64_t i = 0; i < s.inner; ++i) {
        double& a = acc[static_cast<size_t>(i)];
        a += src[off + i];
        dst[off + i] = static_cast<float>(accumulate ? dst[off + i] + a : a);
      }
    }
  }
}

}  // namespace

Tensor max(const Tensor& x, int64_t axis, bool keepdim) { return extreme("max", x, axis, keepdim, true, kGreater); }
Tensor min(const Tensor& x, int64_t axis, bool keepdim) { return extreme("min", x, axis, keepdim, true, kLess); }
Tensor argmax(const Tensor& x, int64_t axis, bool keepdim) {
  return extreme("argmax", x, axis, keepdim, false, kGreater);
}
Tensor argmin(const Tensor& x, int64_t axis, bool keepdim) {
  return extreme("argmin", x, axis, keepdim, false, kLess);
}

Tensor cumsum(const Tensor& x, int64_t axis) {
  const Tensor x1 = x.rank() == 0 ? reshape(x, {1}) : x;  // torch allows a scalar (axis 0 or -1)
  axis = detail::normalize_axis("cumsum", axis, x1.shape());
  const detail::AxisSplit s = detail::split_at(x1.shape(), axis);
  Tensor y = Tensor::empty(x1.shape());
  running_sum(x1.data(), y.data(), s, false, false);
  record("cumsum", y, {x1}, [s](BackwardContext& g) {
    const auto dx = g.dx_out(0);
    running_sum(g.dy().data(), dx.data, s, true, dx.accumulate);
  });
  return x.rank() == 0 ? reshape(y, x.shape()) : y;
}

}  // namespace lamina
