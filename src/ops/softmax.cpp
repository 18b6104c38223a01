// softmax and log_softmax along one axis. X, Y: same shape, seen as (outer, n, inner).
// Both subtract the max first, so logits of any magnitude stay finite.
// backward (from y alone):  softmax:     dx_j += y_j (dy_j - sum_k dy_k y_k)
//                           log_softmax: dx_j += dy_j - exp(y_j) sum_k dy_k
#include <cmath>
#include <limits>
#include <vector>

#include "kernels/elementwise.hpp"
#include "lamina/ops.hpp"
#include "ops/op_helpers.hpp"

namespace lamina {

namespace {

// Visits each of the outer*inner lanes along the axis: f(base, stride).
template <class F>
void for_each_lane(const detail::AxisSplit& s, F f) {
  for (int64_t o = 0; o < s.outer; ++o)
    for (int64_t i = 0; i < s.inner; ++i) f(o * s.n * s.inner + i, s.inner);
}

Tensor softmax_impl(const char* op, const Tensor& x, int64_t axis, bool log_form) {
  axis = detail::normalize_axis(op, axis, x.shape());
  const detail::AxisSplit s = detail::split_at(x.shape(), axis);
  Tensor y = Tensor::empty(x.shape());
  const float* px = x.data();
  float* py = y.data();
  const int64_t n = s.n;
  if (s.inner == 1 && n > 0) {  // rows along the last axis: one vectorized exp over all of them
    std::vector<float> mx(static_cast<size_t>(s.outer)), total(static_cast<size_t>(s.outer));
    kernels::exp_rows(px, py, s.outer, n, mx.data(), total.data());
    for (int64_t r = 0; r < s.outer; ++r) {
      const float *xr = px + r * n;
      float* yr = py + r * n;
      if (log_form) {
        const float log_total = std::log(total[static_cast<size_t>(r)]);
        for (int64_t j = 0; j < n; ++j) yr[j] = (xr[j] - mx[static_cast<size_t>(r)]) - log_total;
      } else {
        const float inv = 1.f / total[static_cast<size_t>(r)];
        for (int64_t j = 0; j < n; ++j) yr[j] *= inv;
      }
    }
  } else {
    for_each_lane(s, [&](int64_t base, int64_t st) {
      float mx = -std::numeric_limits<float>::infinity();
      for (int64_t j = 0; j < n; ++j) mx = std::max(mx, px[base + j * st]);
      float total = 0.f;
      for (int64_t j = 0; j < n; ++j) {
        const float e = std::exp(px[base + j * st] - mx);
        total += e;
        if (!log_form) py[base + j * st] = e;
      }
      if (log_form) {  // (x - max) - log(total), not x - (max + log(total)): see losses.cpp RowSoftmax
        const float log_total = std::log(total);
        for (int64_t j = 0; j < n; ++j) py[base + j * st] = (px[base + j * st] - mx) - log_total;
      } else {
        const float inv = 1.f / total;
        for (int64_t j = 0; j < n; ++j) py[base + j * st] *= inv;
      }
    });
  }
  record(op, y, {x}, [s, log_form](BackwardContext& g) {
    const float *y = g.output().data(), *dy = g.dy().data();
    float* dx = g.dx(0).data();
    const int64_t n = s.n;
    for_each_lane(s, [&](int64_t base, int64_t st) {
      float dot = 0.f;
      for (int64_t j = 0; j < n; ++j) dot += log_form ? dy[base + j * st] : dy[base + j * st] * y[base + j * st];
      for (int64_t j = 0; j < n; ++j) {
        const int64_t k = base + j * st;
        dx[k] += log_form ? dy[k] - std::exp(y[k]) * dot : y[k] * (dy[k] - dot);
      }
    });
  });
  return y;
}

}  // namespace

Tensor softmax(const Tensor& x, int64_t axis) { return softmax_impl("softmax", x, axis, false); }
Tensor log_softmax(const Tensor& x, int64_t axis) { return softmax_impl("log_softmax", x, axis, true); }

}  // namespace lamina
