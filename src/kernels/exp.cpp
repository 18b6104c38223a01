// exp and log over arrays, in loops GCC vectorizes: glibc's expf is a call per element (about
// 3 ns each here), which made softmax and the cross-entropies from logits the slowest part of
// a small MLP's step (digits: 1280 of them, 4.5 us of a 29 us step). e^x is exp_one.hpp's.
#include <bit>
#include <cstdint>

#include "kernels/elementwise.hpp"
#include "kernels/exp_one.hpp"

namespace lamina::kernels {

namespace {

// ln x for x > 0 normal: x = m 2^e with m in [sqrt(1/2), sqrt(2)), ln x = ln m + e ln 2 (ln 2
// split in two), ln(1 + f) by Cephes' logf polynomial (about 1 ulp). 0 gives -inf, x < 0 NaN,
// inf inf, NaN NaN; subnormal x is taken as 0 (-inf).
[[gnu::always_inline]] inline float log_one(float x) {
  constexpr float kSqrtHalf = 0.707106781186547524f;
  const auto bits = std::bit_cast<uint32_t>(x);
  const float m = std::bit_cast<float>((bits & 0x007fffffu) | 0x3f000000u);  // [0.5, 1)
  // Selects on floats only (CMakeLists.txt compiles this file with -fno-trapping-math, without
  // which GCC would not compute m + m for the lanes that do not take it, and kept the loop scalar).
  const float low = m < kSqrtHalf ? 1.f : 0.f;
  const float fe = static_cast<float>(static_cast<int32_t>((bits >> 23) & 0xffu) - 126) - low;
  const float f = m + m * low - 1.f;
  const float z = f * f;
  float p = 7.0376836292e-2f;
  p = p * f - 1.1514610310e-1f;
  p = p * f + 1.1676998740e-1f;
  p = p * f - 1.2420140846e-1f;
  p = p * f + 1.4249322787e-1f;
  p = p * f - 1.6668057665e-1f;
  p = p * f + 2.0000714765e-1f;
  p = p * f - 2.4999993993e-1f;
  p = p * f + 3.3333331174e-1f;
  float y = p * f * z;
  y += -2.12194440e-4f * fe;
  y += -0.5f * z;
  float r = (f + y) + 0.693359375f * fe;
  r = x < 1.17549435e-38f ? -__builtin_inff() : r;  // 0 and subnormals (and x < 0, next)
  r = x < 0.f ? __builtin_nanf("") : r;
  r = x == __builtin_inff() ? x : r;
  return x != x ? x : r;
}

LAMINA_HOT void log_apart(const float* __restrict x, float* __restrict y, int64_t n) {
  for (int64_t i = 0; i < n; ++i) y[i] = log_one(x[i]);
}

LAMINA_HOT void log_in_place(float* y, int64_t n) {
  for (int64_t i = 0; i < n; ++i) y[i] = log_one(y[i]);
}

LAMINA_HOT void exp_apart(const float* __restrict x, float* __restrict y, int64_t n) {
  for (int64_t i = 0; i < n; ++i) y[i] = exp_one(x[i]);
}

LAMINA_HOT void exp_in_place(float* y, int64_t n) {
  for (int64_t i = 0; i < n; ++i) y[i] = exp_one(y[i]);
}

}  // namespace

void exp(const float* x, float* y, int64_t n) {
  if (x == y) exp_in_place(y, n);
  else exp_apart(x, y, n);
}

void log(const float* x, float* y, int64_t n) {
  if (x == y) log_in_place(y, n);
  else log_apart(x, y, n);
}

void exp_rows(const float* x, float* y, int64_t rows, int64_t c, float* row_max, float* row_sum) {
  for (int64_t r = 0; r < rows; ++r) {
    const float* xr = x + r * c;
    float mx = xr[0];
    for (int64_t j = 1; j < c; ++j) mx = xr[j] > mx ? xr[j] : mx;
    row_max[r] = mx;
    for (int64_t j = 0; j < c; ++j) y[r * c + j] = xr[j] - mx;
  }
  exp(y, y, rows * c);  // one pass over every row: a row of 10 classes fills no vector
  for (int64_t r = 0; r < rows; ++r) {
    float total = 0.f;
    for (int64_t j = 0; j < c; ++j) total += y[r * c + j];
    row_sum[r] = total;
  }
}

}  // namespace lamina::kernels
