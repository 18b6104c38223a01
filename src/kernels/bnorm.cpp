// Batch-norm loops over x seen flat: element k belongs to channel k % C. A period of
// P = lcm(C, 16) elements holds whole rows and whole 16-float vectors, so every loop runs over
// periods with per-period copies of the channel constants and vectorizes whatever C is.
// Sums go through float accumulators flushed into doubles every 64 periods.
// Why loops rather than oneDNN's batch_normalization: see the table in src/ops/norm.cpp.
#include "kernels/bnorm.hpp"

#include <algorithm>
#include <numeric>
#include <vector>

namespace lamina::kernels {

namespace {

constexpr int64_t kFlushEvery = 64;  // periods summed in float before moving into the doubles

int64_t period(int64_t c) { return c / std::gcd(c, int64_t{16}) * 16; }

// v (C) repeated to fill a period.
std::vector<float> tile(const float* v, int64_t c, int64_t p) {
  std::vector<float> out(static_cast<size_t>(p));
  for (int64_t l = 0; l < p; ++l) out[static_cast<size_t>(l)] = v[l % c];
  return out;
}

// Per-channel sums of f(k, l) and g(k, l) over the flat elements in one pass (k = flat
// index, l = k % P), with float partial sums per period lane; sf, sg (C) receive the totals.
template <class F, class G>
void channel_sums(int64_t m, int64_t c, double* sf, double* sg, F f, G g) {
  const int64_t p = period(c), total = m * c, full = total / p * p;
  std::vector<float> acc(static_cast<size_t>(2 * p), 0.f);
  std::vector<double> lanes(static_cast<size_t>(2 * p), 0.0);
  float *af = acc.data(), *ag = acc.data() + p;
  int64_t steps = 0;
  auto flush = [&] {
    for (size_t l = 0; l < acc.size(); ++l) lanes[l] += acc[l], acc[l] = 0.f;
    steps = 0;
  };
  for (int64_t k = 0; k < full; k += p) {
    for (int64_t l = 0; l < p; ++l) {
      af[l] += f(k + l, l);
      ag[l] += g(k + l, l);
    }
    if (++steps == kFlushEvery) flush();
  }
  flush();
  std::fill_n(sf, c, 0.0);
  std::fill_n(sg, c, 0.0);
  for (int64_t l = 0; l < p; ++l) {
    sf[l % c] += lanes[static_cast<size_t>(l)];
    sg[l % c] += lanes[static_cast<size_t>(p + l)];
  }
  for (int64_t k = full; k < total; ++k) sf[k % c] += f(k, k % p), sg[k % c] += g(k, k % p);
}

}  // namespace

// One pass: sums of d = x - s and d^2 around a per-channel pivot s (the first row), then
// mean = s + E[d], var = E[d^2] - E[d]^2. The pivot keeps E[d] small, so the difference does
// not cancel as it would around 0 when |mean| >> std.
void channel_moments(const float* x, int64_t m, int64_t c, double* mean, double* var) {
  if (c == 0) return;
  if (m == 0) {
    std::fill_n(mean, c, 0.0);
    std::fill_n(var, c, 0.0);
    return;
  }
  const std::vector<float> pivot = tile(x, c, period(c));
  const float* s = pivot.data();
  channel_sums(
      m, c, mean, var, [x, s](int64_t k, int64_t l) { return x[k] - s[l]; },
      [x, s](int64_t k, int64_t l) {
        const float d = x[k] - s[l];
        return d * d;
      });
  const double inv = 1.0 / static_cast<double>(m);
  for (int64_t j = 0; j < c; ++j) {
    const double d = mean[j] * inv;
    var[j] = std::max(var[j] * inv - d * d, 0.0);
    mean[j] = x[j] + d;
  }
}

void channel_affine(const float* x, int64_t m, int64_t c, const float* center, const float* scale, const float* shift,
                    float* y) {
  if (c == 0) return;
  const int64_t p = period(c), total = m * c, full = total / p * p;
  const std::vector<float> tc = tile(center, c, p), ts = tile(scale, c, p), tb = tile(shift, c, p);
  const float *pc = tc.data(), *ps = ts.data(), *pb = tb.data();
  for (int64_t k = 0; k < full; k += p)
    for (int64_t l = 0; l < p; ++l) y[k + l] = (x[k + l] - pc[l]) * ps[l] + pb[l];
  for (int64_t k = full; k < total; ++k) y[k] = (x[k] - pc[k % p]) * ps[k % p] + pb[k % p];
}

void channel_grad_sums(const float* x, const float* dy, int64_t m, int64_t c, const float* mean, double* sum_dy,
                       double* sum_dy_xc) {
  if (c == 0) return;
  const std::vector<float> mu = tile(mean, c, period(c));
  const float* pm = mu.data();
  channel_sums(
      m, c, sum_dy, sum_dy_xc, [dy](int64_t k, int64_t) { return dy[k]; },
      [x, dy, pm](int64_t k, int64_t l) { return dy[k] * (x[k] - pm[l]); });
}

void channel_combine(const float* dy, const float* x, int64_t m, int64_t c, const float* a, const float* b,
                     const float* center, const float* d, float* dx, bool accumulate) {
  if (c == 0) return;
  const int64_t p = period(c), total = m * c, full = total / p * p;
  const std::vector<float> ta = tile(a, c, p), tb = tile(b, c, p), tc = tile(center, c, p), td = tile(d, c, p);
  const float *pa = ta.data(), *pb = tb.data(), *pc = tc.data(), *pd = td.data();
  auto value = [&](int64_t k, int64_t l) { return pa[l] * dy[k] + pb[l] * (x[k] - pc[l]) + pd[l]; };
  if (accumulate) {
    for (int64_t k = 0; k < full; k += p)
      for (int64_t l = 0; l < p; ++l) dx[k + l] += value(k + l, l);
    for (int64_t k = full; k < total; ++k) dx[k] += value(k, k % p);
  } else {
    for (int64_t k = 0; k < full; k += p)
      for (int64_t l = 0; l < p; ++l) dx[k + l] = value(k + l, l);
    for (int64_t k = full; k < total; ++k) dx[k] = value(k, k % p);
  }
}

}  // namespace lamina::kernels
