#include "kernels/broadcast.hpp"

#include <algorithm>

namespace lamina::kernels {

namespace {

// Element strides of `s` aligned to the trailing axes of `out`, 0 where s has size 1 or lacks the axis.
std::vector<int64_t> strides_for(const Shape& s, const Shape& out) {
  const int64_t rank = out.rank(), offset = out.rank() - s.rank();
  std::vector<int64_t> strides(static_cast<size_t>(rank), 0);
  int64_t stride = 1;
  for (int64_t ax = s.rank() - 1; ax >= 0; --ax) {
    strides[static_cast<size_t>(ax + offset)] = (s[ax] == 1 && out[ax + offset] != 1) ? 0 : stride;
    stride *= s[ax];
  }
  return strides;
}

}  // namespace

Broadcast broadcast(const char* op, const Shape& a, const Shape& b) {
  Broadcast bc;
  if (a == b) {
    bc.out = a;
    bc.same = true;
    return bc;
  }
  const int64_t rank = std::max(a.rank(), b.rank());
  std::vector<int64_t> out(static_cast<size_t>(rank));
  for (int64_t i = 1; i <= rank; ++i) {
    const int64_t da = i <= a.rank() ? a[-i] : 1;
    const int64_t db = i <= b.rank() ? b[-i] : 1;
    if (da != db && da != 1 && db != 1)
      throw ShapeError(std::string(op) + ": shapes " + a.str() + " and " + b.str() +
                       " do not broadcast (axis " + std::to_string(-i) + ": " + std::to_string(da) +
                       " vs " + std::to_string(db) + ")");
    out[static_cast<size_t>(rank - i)] = da == 1 ? db : da;
  }
  bc.out = Shape(std::move(out));
  bc.stride_a = strides_for(a, bc.out);
  bc.stride_b = strides_for(b, bc.out);
  return bc;
}

void sum_to_into(const float* src, const Shape& from, float* dst, const Shape& to) {
  if (from == to) {
    const int64_t n = from.numel();
    for (int64_t i = 0; i < n; ++i) dst[i] += src[i];
    return;
  }
  Broadcast bc;
  bc.out = from;
  bc.stride_a = strides_for(to, from);
  bc.stride_b.assign(bc.stride_a.size(), 0);
  for_each_run(bc, [&](int64_t o, int64_t ia, int64_t, int64_t n, int64_t sa, int64_t) {
    if (sa == 0) {
      float acc = 0.f;
      for (int64_t i = 0; i < n; ++i) acc += src[o + i];
      dst[ia] += acc;
    } else {
      for (int64_t i = 0; i < n; ++i) dst[ia + i] += src[o + i];
    }
  });
}

}  // namespace lamina::kernels
