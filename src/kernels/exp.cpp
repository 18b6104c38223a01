// exp and log over arrays, in loops GCC vectorizes: glibc's expf is a call per element (about
// 3 ns each here), which made softmax and the cross-entropies from logits the slowest part of
// a small MLP's step (digits: 1280 of them, 4.5 us of a 29 us step).
//
// e^x = 2^n e^r with n = round(x / ln 2) and r = x - n ln 2 in [-ln2 / 2, ln2 / 2] (ln 2 split
// in two for an exact product), e^r by Cephes' expf polynomial (about 1 ulp), 2^n built in the
// exponent bits. x above 88.7228 (e^x past FLT_MAX) gives inf; below -87.3365 (e^x below
// FLT_MIN, where the result would be subnormal) gives 0, as the math library does with
// subnormals flushed; NaN stays NaN.
#include <bit>
#include <cstdint>

#include "kernels/elementwise.hpp"

namespace lamina::kernels {

namespace {

[[gnu::always_inline]] inline float exp_one(float x) {
  constexpr float kHi = 88.72283935546875f, kLo = -87.33654022216797f;
  constexpr float kLog2e = 1.44269504088896341f;
  constexpr float kLn2Hi = 0.693359375f, kLn2Lo = -2.12194440e-4f;
  constexpr float kRound = 12582912.f;  // 1.5 * 2^23: adding it rounds to an integer, to even
  float c = x > kHi ? kHi : x;  // NaN compares false: stays NaN
  c = c < kLo ? kLo : c;
  const float t = c * kLog2e + kRound;
  const float n = t - kRound;
  float r = c - n * kLn2Hi;
  r = r - n * kLn2Lo;
  float p = 1.9875691500e-4f;
  p = p * r + 1.3981999507e-3f;
  p = p * r + 8.3334519073e-3f;
  p = p * r + 4.1665795894e-2f;
  p = p * r + 1.6666665459e-1f;
  p = p * r + 5.0000001201e-1f;
  const float er = p * (r * r) + r + 1.f;
  // 2^n as 2^h 2^(n - h), h = n / 2, from their exponent bits: n reaches 128 at the top of the
  // range, past the largest exponent (127), and -126 at the bottom, the smallest.
  const int32_t k = std::bit_cast<int32_t>(t) - std::bit_cast<int32_t>(kRound);
  const int32_t h = k >> 1;
  const float y = er * std::bit_cast<float>(static_cast<uint32_t>(h + 127) << 23) *
                  std::bit_cast<float>(static_cast<uint32_t>(k - h + 127) << 23);
  const float z = x < kLo ? 0.f : y;
  return x > kHi ? __builtin_inff() : z;
}

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
