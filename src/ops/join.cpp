// stack, split and chunk: compositions of concat, reshape and slice (shape.cpp, index.cpp), so
// their backward is those ops' backward: stack hands each input its block of dY; each piece of
// split adds its dY into its rows of dX.
#include <algorithm>
#include <string>
#include <vector>

#include "lamina/ops.hpp"
#include "ops/op_helpers.hpp"

namespace lamina {

Tensor stack(const std::vector<Tensor>& xs, int64_t axis) {
  if (xs.empty()) throw ValueError("stack: needs at least one input, got none");
  for (size_t i = 0; i < xs.size(); ++i)
    if (!xs[i].defined()) throw ValueError("stack: input " + std::to_string(i) + " is undefined");
  const Shape& first = xs[0].shape();
  for (size_t i = 1; i < xs.size(); ++i)
    if (xs[i].shape() != first)
      throw ShapeError("stack: input " + std::to_string(i) + " has shape " + xs[i].shape().str() + ", input 0 has " +
                       first.str() + "; all inputs must have the same shape");
  const int64_t positions = first.rank() + 1;  // where the new axis can go
  if (axis < -positions || axis >= positions)
    throw ShapeError("stack: axis " + std::to_string(axis) + " is out of range for inputs of shape " + first.str() +
                     " (the new axis goes in [" + std::to_string(-positions) + ", " + std::to_string(positions - 1) +
                     "])");
  if (axis < 0) axis += positions;
  std::vector<int64_t> dims = first.dims();
  dims.insert(dims.begin() + axis, 1);
  std::vector<Tensor> parts;
  parts.reserve(xs.size());
  for (const Tensor& x : xs) parts.push_back(reshape(x, Shape(dims)));
  return concat(parts, axis);
}

std::vector<Tensor> split(const Tensor& x, const std::vector<int64_t>& sizes, int64_t axis) {
  axis = detail::normalize_axis("split", axis, x.shape());
  int64_t total = 0;
  bool ok = true;
  std::string list;
  for (size_t i = 0; i < sizes.size(); ++i) {
    ok = ok && sizes[i] >= 0;
    total += sizes[i];
    list += (i ? ", " : "") + std::to_string(sizes[i]);
  }
  if (!ok || total != x.dim(axis))
    throw ShapeError("split: sizes [" + list + "] must be >= 0 and add up to " + std::to_string(x.dim(axis)) +
                     ", the size of axis " + std::to_string(axis) + " of " + x.shape().str());
  std::vector<Tensor> pieces;
  pieces.reserve(sizes.size());
  int64_t begin = 0;
  for (int64_t size : sizes) {
    pieces.push_back(slice(x, axis, begin, begin + size));
    begin += size;
  }
  return pieces;
}

std::vector<Tensor> chunk(const Tensor& x, int64_t chunks, int64_t axis) {
  axis = detail::normalize_axis("chunk", axis, x.shape());
  if (chunks < 1) throw ValueError("chunk: chunks must be >= 1, got " + std::to_string(chunks));
  const int64_t n = x.dim(axis), size = (n + chunks - 1) / chunks;
  std::vector<int64_t> sizes;
  for (int64_t begin = 0; begin < n; begin += size) sizes.push_back(std::min(size, n - begin));
  if (sizes.empty()) sizes.assign(static_cast<size_t>(chunks), 0);  // torch: chunks empty pieces when n == 0
  return split(x, sizes, axis);
}

}  // namespace lamina
