// permute and the N-d transpose: copies with the axes reordered. Y.dim(i) = X.dim(perm[i]).
// Y is written in order; X is read with its stride along perm[i] (the last axis of Y is the inner
// loop). backward: dX += permute(dY, inverse perm), the same kernel. (The 2-D transpose(x) is in
// matmul.cpp.)
#include <string>
#include <utility>
#include <vector>

#include "lamina/ops.hpp"
#include "ops/op_helpers.hpp"

namespace lamina {

namespace {

// dst (src_shape permuted by perm) (+)= src permuted.
void permute_into(const float* src, const Shape& src_shape, const std::vector<int64_t>& perm, float* dst,
                  bool accumulate) {
  const int64_t r = src_shape.rank();
  const int64_t count = src_shape.numel();
  if (count == 0) return;
  if (r == 0) {
    dst[0] = accumulate ? dst[0] + src[0] : src[0];
    return;
  }
  std::vector<int64_t> src_stride(static_cast<size_t>(r), 1), dims(static_cast<size_t>(r)),
      stride(static_cast<size_t>(r));
  for (int64_t d = r - 2; d >= 0; --d)
    src_stride[static_cast<size_t>(d)] = src_stride[static_cast<size_t>(d + 1)] * src_shape[d + 1];
  for (size_t i = 0; i < perm.size(); ++i) {
    dims[i] = src_shape[perm[i]];
    stride[i] = src_stride[static_cast<size_t>(perm[i])];
  }
  const int64_t n = dims.back(), s = stride.back(), rows = count / n;
  std::vector<int64_t> idx(static_cast<size_t>(r), 0);
  int64_t off = 0;  // src offset of the current row's first element
  for (int64_t row = 0; row < rows; ++row) {
    float* d = dst + row * n;
    const float* p = src + off;
    if (accumulate) {
      for (int64_t i = 0; i < n; ++i) d[i] += p[i * s];
    } else {
      for (int64_t i = 0; i < n; ++i) d[i] = p[i * s];
    }
    for (int64_t a = r - 2; a >= 0; --a) {  // odometer over all axes of Y but the last
      const auto u = static_cast<size_t>(a);
      off += stride[u];
      if (++idx[u] < dims[u]) break;
      off -= stride[u] * idx[u];
      idx[u] = 0;
    }
  }
}

Tensor permute_impl(const char* op, const Tensor& x, std::vector<int64_t> perm) {
  std::vector<int64_t> dims(perm.size()), inverse(perm.size());
  for (size_t i = 0; i < perm.size(); ++i) {
    dims[i] = x.dim(perm[i]);
    inverse[static_cast<size_t>(perm[i])] = static_cast<int64_t>(i);
  }
  Tensor y = Tensor::empty(Shape(std::move(dims)));
  permute_into(x.data(), x.shape(), perm, y.data(), false);
  record(op, y, {x}, [inverse = std::move(inverse)](BackwardContext& g) {
    const auto dx = g.dx_out(0);
    permute_into(g.dy().data(), g.dy().shape(), inverse, dx.data, dx.accumulate);
  });
  return y;
}

}  // namespace

Tensor permute(const Tensor& x, const std::vector<int64_t>& dims) {
  const int64_t r = x.rank();
  std::vector<int64_t> perm(dims.size());
  std::vector<char> used(static_cast<size_t>(r), 0);
  bool ok = static_cast<int64_t>(dims.size()) == r;
  for (size_t i = 0; ok && i < dims.size(); ++i) {
    ok = dims[i] >= -r && dims[i] < r;
    if (!ok) break;
    perm[i] = dims[i] < 0 ? dims[i] + r : dims[i];
    ok = !used[static_cast<size_t>(perm[i])];
    used[static_cast<size_t>(perm[i])] = 1;
  }
  if (!ok) {
    std::string list;
    for (size_t i = 0; i < dims.size(); ++i) list += (i ? ", " : "") + std::to_string(dims[i]);
    throw ShapeError("permute: dims [" + list + "] is not a permutation of the " + std::to_string(r) +
                     " axes of " + x.shape().str());
  }
  return permute_impl("permute", x, std::move(perm));
}

Tensor transpose(const Tensor& x, int64_t axis0, int64_t axis1) {
  axis0 = detail::normalize_axis("transpose", axis0, x.shape());
  axis1 = detail::normalize_axis("transpose", axis1, x.shape());
  std::vector<int64_t> perm(static_cast<size_t>(x.rank()));
  for (size_t i = 0; i < perm.size(); ++i) perm[i] = static_cast<int64_t>(i);
  std::swap(perm[static_cast<size_t>(axis0)], perm[static_cast<size_t>(axis1)]);
  return permute_impl("transpose", x, std::move(perm));
}

}  // namespace lamina
