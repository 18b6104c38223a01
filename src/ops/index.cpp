// Indexing with gradients: slice, index_select, gather, and one_hot (no gradient). Copies, not
// views. Around the axis X is (outer, n, inner) (see op_helpers.hpp); indices are integer-valued
// floats, checked once in the forward.
// backward: each output element came from one input element, so dX[src] += dY[dst] (a scatter-add;
// repeated indices add up).
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <limits>
#include <string>
#include <vector>

#include "lamina/ops.hpp"
#include "ops/op_helpers.hpp"

namespace lamina {

namespace {

// "(1, 2)": the multi-index of flat position `flat` in `shape`, for error messages.
std::string position(const Shape& shape, int64_t flat) {
  std::vector<int64_t> idx(static_cast<size_t>(shape.rank()));
  for (int64_t a = shape.rank() - 1; a >= 0; --a) {
    idx[static_cast<size_t>(a)] = shape[a] ? flat % shape[a] : 0;
    flat = shape[a] ? flat / shape[a] : 0;
  }
  return Shape(idx).str();
}

std::string float_str(float v) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%g", static_cast<double>(v));
  return buf;
}

// v as an index in [0, n); throws ValueError naming the op, the value, where it sits and the range.
int64_t index_value(const char* op, const char* what, float v, int64_t n, const Shape& shape, int64_t flat) {
  if (!(v >= 0.f && v < static_cast<float>(n)) || v != std::floor(v))
    throw ValueError(std::string(op) + ": " + what + " " + float_str(v) + " at " + position(shape, flat) +
                     " is not an integer in [0, " + std::to_string(n) + ")");
  return static_cast<int64_t>(v);
}

// Copies rows of `inner` floats: dst row r <- src row rows[r], for each outer block. The forward
// of slice and index_select; with `add_back`, the scatter-add backward (dX row rows[r] += dY row r).
// Consecutive rows (a slice with step 1) move as one block of k * inner floats per outer block.
void copy_rows(const float* src, float* dst, const detail::AxisSplit& s, const std::vector<int64_t>& rows,
               bool add_back) {
  const auto k = static_cast<int64_t>(rows.size());
  if (k == 0) return;
  bool consecutive = true;
  for (int64_t r = 1; consecutive && r < k; ++r) consecutive = rows[static_cast<size_t>(r)] == rows[0] + r;
  if (consecutive) {
    for (int64_t o = 0; o < s.outer; ++o) {
      const int64_t x_off = (o * s.n + rows[0]) * s.inner, y_off = o * k * s.inner;
      if (add_back) kernels::add_into(src + y_off, dst + x_off, k * s.inner);
      else std::copy_n(src + x_off, k * s.inner, dst + y_off);
    }
    return;
  }
  for (int64_t o = 0; o < s.outer; ++o)
    for (int64_t r = 0; r < k; ++r) {
      const int64_t x_off = (o * s.n + rows[static_cast<size_t>(r)]) * s.inner, y_off = (o * k + r) * s.inner;
      if (add_back) kernels::add_into(src + y_off, dst + x_off, s.inner);
      else std::copy_n(src + x_off, s.inner, dst + y_off);
    }
}

// Selects `rows` along `axis` (already normalized): the shared body of slice and index_select.
Tensor select_rows(const char* op, const Tensor& x, int64_t axis, std::vector<int64_t> rows) {
  const detail::AxisSplit s = detail::split_at(x.shape(), axis);
  std::vector<int64_t> dims = x.shape().dims();
  dims[static_cast<size_t>(axis)] = static_cast<int64_t>(rows.size());
  Tensor y = Tensor::empty(Shape(std::move(dims)));
  copy_rows(x.data(), y.data(), s, rows, false);
  record(op, y, {x}, [s, rows = std::move(rows)](BackwardContext& g) {
    copy_rows(g.dy().data(), g.dx(0).data(), s, rows, true);
  });
  return y;
}

}  // namespace

Tensor slice(const Tensor& x, int64_t axis, int64_t begin, int64_t end, int64_t step) {
  axis = detail::normalize_axis("slice", axis, x.shape());
  if (step < 1)
    throw ValueError("slice: step must be >= 1, got " + std::to_string(step) + " (slicing " + x.shape().str() +
                     " along axis " + std::to_string(axis) + ")");
  const int64_t n = x.dim(axis);
  auto clamp_end = [n](int64_t i) { return std::clamp(i < 0 ? i + n : i, int64_t{0}, n); };
  begin = clamp_end(begin);
  end = clamp_end(end);
  std::vector<int64_t> rows;
  for (int64_t i = begin; i < end; i += step) rows.push_back(i);
  return select_rows("slice", x, axis, std::move(rows));
}

Tensor index_select(const Tensor& x, int64_t axis, const std::vector<int64_t>& indices) {
  axis = detail::normalize_axis("index_select", axis, x.shape());
  const int64_t n = x.dim(axis);
  for (size_t i = 0; i < indices.size(); ++i)
    if (indices[i] < 0 || indices[i] >= n)
      throw ValueError("index_select: index " + std::to_string(indices[i]) + " at position " + std::to_string(i) +
                       " is out of range [0, " + std::to_string(n) + ") for axis " + std::to_string(axis) +
                       " of " + x.shape().str());
  return select_rows("index_select", x, axis, indices);
}

Tensor index_select(const Tensor& x, int64_t axis, const Tensor& indices) {
  if (indices.rank() > 1)
    throw ShapeError("index_select: indices must be 1-D (or a scalar), got " + indices.shape().str());
  axis = detail::normalize_axis("index_select", axis, x.shape());
  std::vector<int64_t> rows(static_cast<size_t>(indices.numel()));
  for (int64_t i = 0; i < indices.numel(); ++i)
    rows[static_cast<size_t>(i)] = index_value("index_select", "index", indices.data()[i], x.dim(axis),
                                               indices.shape(), i);
  return select_rows("index_select", x, axis, std::move(rows));
}

Tensor gather(const Tensor& x, int64_t axis, const Tensor& index) {
  axis = detail::normalize_axis("gather", axis, x.shape());
  const int64_t r = x.rank();
  bool fits = index.rank() == r;
  for (int64_t d = 0; fits && d < r; ++d) fits = d == axis || index.dim(d) <= x.dim(d);
  if (!fits)
    throw ShapeError("gather: index " + index.shape().str() + " must have the rank of x " + x.shape().str() +
                     " and no larger dimension except along axis " + std::to_string(axis));
  // src[p]: the flat offset in X of output element p. Index and Y share a shape; X's strides
  // differ where index is smaller, so walk index's multi-index like an odometer.
  const int64_t count = index.numel();
  std::vector<int64_t> x_stride(static_cast<size_t>(r), 1);
  for (int64_t d = r - 2; d >= 0; --d)
    x_stride[static_cast<size_t>(d)] = x_stride[static_cast<size_t>(d + 1)] * x.dim(d + 1);
  std::vector<int64_t> src(static_cast<size_t>(count)), idx(static_cast<size_t>(r), 0);
  const float* pi = index.data();
  int64_t base = 0;  // offset of idx in X with the axis coordinate left out
  for (int64_t p = 0; p < count; ++p) {
    src[static_cast<size_t>(p)] =
        base + index_value("gather", "index", pi[p], x.dim(axis), index.shape(), p) * x_stride[static_cast<size_t>(axis)];
    for (int64_t d = r - 1; d >= 0; --d) {
      const auto a = static_cast<size_t>(d);
      const int64_t step = d == axis ? 0 : x_stride[a];
      if (++idx[a] < index.dim(d)) {
        base += step;
        break;
      }
      base -= step * (idx[a] - 1);
      idx[a] = 0;
    }
  }
  Tensor y = Tensor::empty(index.shape());
  const float* px = x.data();
  float* py = y.data();
  for (int64_t p = 0; p < count; ++p) py[p] = px[src[static_cast<size_t>(p)]];
  record("gather", y, {x}, [src = std::move(src)](BackwardContext& g) {
    const float* dy = g.dy().data();
    float* dx = g.dx(0).data();
    const auto n = static_cast<int64_t>(src.size());
    for (int64_t p = 0; p < n; ++p) dx[src[static_cast<size_t>(p)]] += dy[p];
  });
  return y;
}

Tensor one_hot(const Tensor& labels, int64_t num_classes) {
  if (num_classes < 1)
    throw ValueError("one_hot: num_classes must be >= 1, got " + std::to_string(num_classes));
  std::vector<int64_t> dims = labels.shape().dims();
  dims.push_back(num_classes);
  Tensor y = Tensor::zeros(Shape(std::move(dims)));
  const float* pl = labels.data();
  float* py = y.data();
  for (int64_t i = 0; i < labels.numel(); ++i)
    py[i * num_classes + index_value("one_hot", "label", pl[i], num_classes, labels.shape(), i)] = 1.f;
  return y;
}

}  // namespace lamina
