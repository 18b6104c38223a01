// What the matmul, convolution and pooling glue share: a per-thread oneDNN engine and
// stream, NHWC memory descriptors, and running a primitive under a chosen thread count.
// Internal to src/kernels/ (oneDNN stays there).
#pragma once

#include <cstdint>

#include <dnnl.hpp>
#include <omp.h>

#include "kernels/window.hpp"

namespace lamina::kernels::dnnl_glue {

using dnnl::memory;

struct Engine {
  dnnl::engine engine{dnnl::engine::kind::cpu, 0};
  dnnl::stream stream{engine};
};

inline Engine& cpu() {
  static thread_local Engine e;
  return e;
}

// oneDNN names dimensions (N, C, H, W) whatever the layout; the nhwc tag says how they lie.
inline memory::desc nhwc(int64_t n, int64_t c, int64_t h, int64_t w) {
  return memory::desc({n, c, h, w}, memory::data_type::f32, memory::format_tag::nhwc);
}
inline memory::desc any_layout(const memory::dims& dims) {
  return memory::desc(dims, memory::data_type::f32, memory::format_tag::any);
}
inline memory::dims strides_of(const Geometry2d& g) { return {g.sh, g.sw}; }
// oneDNN counts dilation from 0 (0 = adjacent taps), Keras from 1.
inline memory::dims dilates_of(const Geometry2d& g) { return {g.dh - 1, g.dw - 1}; }
inline memory::dims pad_lo(const Geometry2d& g) { return {g.pad_top, g.pad_left}; }
inline memory::dims pad_hi(const Geometry2d& g) { return {g.pad_bottom, g.pad_right}; }

// Work below `parallel_from` (FLOPs, or touched elements for memory-bound primitives) runs on
// the calling thread: waking the second core and moving buffers between caches costs more
// than it saves on small work (measurements beside each threshold in matmul.cpp, conv.cpp,
// pool.cpp).
inline int threads_for(double work, double parallel_from) {
  return work >= parallel_from ? omp_get_max_threads() : 1;
}

// Runs `f` with `threads` OpenMP threads (oneDNN fixes its parallel plan when a primitive is
// created, so callers key their caches by this count), then restores the caller's.
template <class F>
void with_threads(int threads, F f) {
  struct Restore {
    int max_threads = omp_get_max_threads();
    ~Restore() { omp_set_num_threads(max_threads); }
  } restore;
  if (threads == restore.max_threads) return f();
  omp_set_num_threads(threads);
  f();
}

}  // namespace lamina::kernels::dnnl_glue
