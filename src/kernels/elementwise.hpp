// Plain loops over contiguous float arrays, written for the compiler to vectorize.
// Internal to the library.
#pragma once

#include <cstdint>
#include <type_traits>

// LAMINA_HOT: a hot loop compiled twice, for the build's CPU level (LAMINA_ARCH, x86-64-v3 by
// default) and for AVX-512 (x86-64-v4); the loader picks the one the CPU runs (GCC's
// target_clones, an ifunc). Adam's update on MNIST's MLP: 13% of an epoch with AVX2, 9% with
// AVX-512. Nothing to choose when the build targets AVX-512 already, or with clang (fuzzing).
#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__) && !defined(__AVX512F__)
#define LAMINA_HOT __attribute__((target_clones("arch=x86-64-v4", "default")))
#else
#define LAMINA_HOT
#endif

namespace lamina::kernels {

// The widest vector register the build's target has, in bytes, for loops written with GCC
// vectors (pool.cpp, small_matmul.cpp): a GCC vector wider than the target's registers is
// lowered lane by lane.
#if defined(__AVX512F__)
constexpr int kTargetVectorBytes = 64;
#elif defined(__AVX__)
constexpr int kTargetVectorBytes = 32;
#else
constexpr int kTargetVectorBytes = 16;
#endif

// A kernel written once for vectors of kBytes is forced inline into entry points of each target
// (the build's, and AVX-512 through __attribute__((target))): a function left out of line would
// be compiled for the build's target, where a 64-byte vector is lowered piece by piece.
#define LAMINA_INLINE [[gnu::always_inline]] inline

// GCC ignores vector_size on a type that depends on a template parameter: spelled out here.
// Float, int32 and uint8 vectors of kBytes / 4 lanes.
using Vec4 = float __attribute__((vector_size(16)));
using Vec8 = float __attribute__((vector_size(32)));
using Vec16 = float __attribute__((vector_size(64)));
template <int kBytes>
using VecOf = std::conditional_t<kBytes == 64, Vec16, std::conditional_t<kBytes == 32, Vec8, Vec4>>;
using IntVec4 = int32_t __attribute__((vector_size(16)));
using IntVec8 = int32_t __attribute__((vector_size(32)));
using IntVec16 = int32_t __attribute__((vector_size(64)));
template <int kBytes>
using IntVecOf = std::conditional_t<kBytes == 64, IntVec16, std::conditional_t<kBytes == 32, IntVec8, IntVec4>>;
using ByteVec4 = uint8_t __attribute__((vector_size(4)));
using ByteVec8 = uint8_t __attribute__((vector_size(8)));
using ByteVec16 = uint8_t __attribute__((vector_size(16)));
template <int kBytes>
using ByteVecOf = std::conditional_t<kBytes == 64, ByteVec16, std::conditional_t<kBytes == 32, ByteVec8, ByteVec4>>;

// y[i] = e^x[i], vectorized (kernels/exp.cpp): within 1 ulp of the math library's expf, with
// subnormal results 0. y may be x; the two may not overlap otherwise.
void exp(const float* x, float* y, int64_t n);

// y[i] = ln x[i], vectorized (kernels/exp.cpp): within 1 ulp of the math library's logf for
// normal x; subnormal x gives -inf. y may be x; the two may not overlap otherwise.
void log(const float* x, float* y, int64_t n);

// For each of `rows` rows of c values (c > 0): row_max[r] = its max, y's row = e^(x - row_max[r])
// and row_sum[r] = their sum, added in order. The rows of softmax and log-softmax. y may be x.
void exp_rows(const float* x, float* y, int64_t rows, int64_t c, float* row_max, float* row_sum);

// max(v, 0) that keeps NaN (oneDNN's relu post-op maps NaN to 0, which would hide a diverged
// model), and p[i] = relu(p[i]) over n values.
inline float relu(float v) { return v < 0.f ? 0.f : v; }
inline void relu_in_place(float* p, int64_t n) {
  for (int64_t i = 0; i < n; ++i) p[i] = relu(p[i]);
}

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
