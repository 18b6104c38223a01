// reshape and flatten: views that share storage with their input (tensors are contiguous).
// backward: dX += dY, element for element.
// concat: a copy. Around the axis every input is (outer, n_i * inner), Y is
// (outer, sum n_i * inner): each outer row of Y is the inputs' rows one after another, so
// forward and backward copy whole blocks of n_i * inner floats.
#include <algorithm>
#include <string>
#include <vector>

#include "lamina/ops.hpp"
#include "ops/op_helpers.hpp"

namespace lamina {

namespace {

Shape infer_shape(const Shape& from, const Shape& to) {
  std::vector<int64_t> dims;
  int64_t known = 1, infer_at = -1;
  for (int64_t i = 0; i < to.rank(); ++i) {
    const int64_t d = to.dims()[static_cast<size_t>(i)];
    if (d == -1) {
      if (infer_at >= 0) throw ShapeError("reshape: more than one -1 in target shape " + to.str());
      infer_at = i;
    } else {
      known *= d;
    }
    dims.push_back(d);
  }
  if (infer_at >= 0) {
    if (known == 0 || from.numel() % known != 0)
      throw ShapeError("reshape: cannot reshape " + from.str() + " (" + std::to_string(from.numel()) +
                       " elements) into " + to.str());
    dims[static_cast<size_t>(infer_at)] = from.numel() / known;
  }
  Shape out(std::move(dims));
  if (out.numel() != from.numel())
    throw ShapeError("reshape: cannot reshape " + from.str() + " (" + std::to_string(from.numel()) +
                     " elements) into " + out.str() + " (" + std::to_string(out.numel()) + " elements)");
  return out;
}

}  // namespace

Tensor reshape(const Tensor& x, const Shape& shape) {
  const Shape out = infer_shape(x.shape(), shape);
  auto impl = std::make_shared<TensorImpl>();
  impl->shape = out;
  impl->storage = x.impl()->storage;
  impl->data = x.impl()->data;
  Tensor y(std::move(impl));
  record("reshape", y, {x}, [](BackwardContext& g) {
    kernels::add_into(g.dy().data(), g.dx(0).data(), g.dy().numel());
  });
  return y;
}

Tensor flatten(const Tensor& x, int64_t start_axis) {
  if (x.rank() == 0) return reshape(x, Shape{1});
  start_axis = detail::normalize_axis("flatten", start_axis, x.shape());
  std::vector<int64_t> dims(x.shape().begin(), x.shape().begin() + start_axis);
  int64_t rest = 1;
  for (int64_t a = start_axis; a < x.rank(); ++a) rest *= x.dim(a);
  dims.push_back(rest);
  return reshape(x, Shape(std::move(dims)));
}

Tensor concat(const std::vector<Tensor>& xs, int64_t axis) {
  if (xs.empty()) throw ValueError("concat: needs at least one input, got none");
  for (size_t i = 0; i < xs.size(); ++i)
    if (!xs[i].defined()) throw ValueError("concat: input " + std::to_string(i) + " is undefined");
  const Shape& first = xs[0].shape();
  axis = detail::normalize_axis("concat", axis, first);
  std::vector<int64_t> dims = first.dims();
  for (size_t i = 1; i < xs.size(); ++i) {
    const Shape& s = xs[i].shape();
    bool match = s.rank() == first.rank();
    for (int64_t a = 0; match && a < s.rank(); ++a) match = a == axis || s[a] == first[a];
    if (!match)
      throw ShapeError("concat: input " + std::to_string(i) + " has shape " + s.str() + ", input 0 has " +
                       first.str() + "; all axes but axis " + std::to_string(axis) + " must match");
    dims[static_cast<size_t>(axis)] += s[axis];
  }
  Tensor y = Tensor::empty(Shape(std::move(dims)));
  const int64_t outer = detail::split_at(first, axis).outer;
  std::vector<int64_t> block(xs.size());  // n_i * inner: one input's share of an outer row
  for (size_t i = 0; i < xs.size(); ++i) block[i] = outer == 0 ? 0 : xs[i].numel() / outer;
  const int64_t row = outer == 0 ? 0 : y.numel() / outer;
  float* py = y.data();
  for (int64_t o = 0; o < outer; ++o) {
    float* dst = py + o * row;
    for (size_t i = 0; i < xs.size(); ++i) {
      std::copy_n(xs[i].data() + o * block[i], block[i], dst);
      dst += block[i];
    }
  }
  record("concat", y, xs, [outer, row, block = std::move(block)](BackwardContext& g) {
    const float* dy = g.dy().data();
    int64_t offset = 0;  // where input i's block starts in each row of dY
    for (size_t i = 0; i < block.size(); ++i) {
      if (g.needs(i)) {
        const auto dx = g.dx_out(i);
        for (int64_t o = 0; o < outer; ++o) {
          const float* src = dy + o * row + offset;
          if (dx.accumulate) kernels::add_into(src, dx.data + o * block[i], block[i]);
          else std::copy_n(src, block[i], dx.data + o * block[i]);
        }
      }
      offset += block[i];
    }
  });
  return y;
}

}  // namespace lamina
