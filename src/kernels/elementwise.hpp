// Plain loops over contiguous float arrays, written for the compiler to vectorize.
// Internal to the library.
#pragma once

#include <cstdint>

namespace lamina::kernels {

// dst[i] += src[i]
inline void add_into(const float* __restrict src, float* __restrict dst, int64_t n) {
  for (int64_t i = 0; i < n; ++i) dst[i] += src[i];
}

// dst[i] += alpha * src[i]
inline void axpy(float alpha, const float* __restrict src, float* __restrict dst, int64_t n) {
  for (int64_t i = 0; i < n; ++i) dst[i] += alpha * src[i];
}

// y[i] = f(x[i])
template <class F>
inline void map(const float* __restrict x, float* __restrict y, int64_t n, F f) {
  for (int64_t i = 0; i < n; ++i) y[i] = f(x[i]);
}

// dx[i] (+)= g(x[i], y[i], dy[i]): the shape of every elementwise backward; it writes when
// `accumulate` is false (a fresh or lazily-zeroed gradient).
template <class G>
inline void map_backward(const float* __restrict x, const float* __restrict y,
                         const float* __restrict dy, float* __restrict dx, int64_t n, G g,
                         bool accumulate = true) {
  if (accumulate) {
    for (int64_t i = 0; i < n; ++i) dx[i] += g(x[i], y[i], dy[i]);
  } else {
    for (int64_t i = 0; i < n; ++i) dx[i] = g(x[i], y[i], dy[i]);
  }
}

}  // namespace lamina::kernels
