// NumPy broadcasting for binary ops: the output shape, per-input strides (0 where an input
// is stretched), and a loop that visits (out, a, b) offsets with a contiguous inner run.
// Internal to the library.
#pragma once

#include <cstdint>
#include <vector>

#include "lamina/tensor.hpp"

namespace lamina::kernels {

struct Broadcast {
  Shape out;
  std::vector<int64_t> stride_a, stride_b;  // element strides per output axis, 0 = broadcast
  bool same = false;                        // a, b and out all have one shape: a flat loop
};

// Throws ShapeError naming `op` and both shapes when they do not broadcast.
Broadcast broadcast(const char* op, const Shape& a, const Shape& b);

// Calls f(o, ia, ib, n, sa, sb) for runs of n output elements starting at offset o, where a
// and b start at ia, ib and step by sa, sb (0 or 1) along the run.
template <class F>
void for_each_run(const Broadcast& bc, F f) {
  const int64_t rank = bc.out.rank();
  if (bc.same || rank == 0) {
    f(int64_t{0}, int64_t{0}, int64_t{0}, bc.out.numel(), int64_t{1}, int64_t{1});
    return;
  }
  const int64_t n = bc.out[rank - 1];
  const int64_t sa = bc.stride_a[static_cast<size_t>(rank - 1)];
  const int64_t sb = bc.stride_b[static_cast<size_t>(rank - 1)];
  const int64_t rows = n ? bc.out.numel() / n : 0;
  std::vector<int64_t> idx(static_cast<size_t>(rank), 0);
  int64_t ia = 0, ib = 0;
  for (int64_t r = 0; r < rows; ++r) {
    f(r * n, ia, ib, n, sa, sb);
    // Advance the multi-index over all axes but the last, like an odometer.
    for (int64_t ax = rank - 2; ax >= 0; --ax) {
      const auto a = static_cast<size_t>(ax);
      ++idx[a];
      ia += bc.stride_a[a];
      ib += bc.stride_b[a];
      if (idx[a] < bc.out[ax]) break;
      ia -= bc.stride_a[a] * idx[a];
      ib -= bc.stride_b[a] * idx[a];
      idx[a] = 0;
    }
  }
}

// dst (shape `to`) += src (shape `from`) summed over the broadcast axes: the backward of
// broadcasting, shared by every binary op. `to` must broadcast to `from`.
void sum_to_into(const float* src, const Shape& from, float* dst, const Shape& to);

// Calls f(i, ia, ib) for i in [0, n) of one run, with the strides fixed at compile time in
// each of the four cases, so the common contiguous loops vectorize.
template <class F>
inline void run_loop(int64_t n, int64_t sa, int64_t sb, F f) {
  if (sa == 1 && sb == 1) {
    for (int64_t i = 0; i < n; ++i) f(i, i, i);
  } else if (sa == 1) {
    for (int64_t i = 0; i < n; ++i) f(i, i, int64_t{0});
  } else if (sb == 1) {
    for (int64_t i = 0; i < n; ++i) f(i, int64_t{0}, i);
  } else {
    for (int64_t i = 0; i < n; ++i) f(i, int64_t{0}, int64_t{0});
  }
}

}  // namespace lamina::kernels
