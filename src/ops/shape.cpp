// reshape and flatten: views that share storage with their input (tensors are contiguous).
// backward: dX += dY, element for element.
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

}  // namespace lamina
