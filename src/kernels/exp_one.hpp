// e^x for one float, inlined into loops that GCC vectorizes (exp.cpp's arrays, and the fused
// gate loops of lstm_one.cpp): e^x = 2^n e^r with n = round(x / ln 2) and r = x - n ln 2 in
// [-ln2 / 2, ln2 / 2] (ln 2 split in two for an exact product), e^r by Cephes' expf polynomial
// (about 1 ulp), 2^n built in the exponent bits. x above 88.7228 gives inf; below -87.3365 (where
// the result would be subnormal) 0; NaN stays NaN. Internal to the library.
#pragma once

#include <bit>
#include <cstdint>

namespace lamina::kernels {

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

}  // namespace lamina::kernels
