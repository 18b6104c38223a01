// Process-wide runtime settings: the number of threads the compute kernels (oneDNN, OpenMP)
// may use (default: the machine's core count), and the tensor storage cache.
//
//   lamina::set_num_threads(1);
//   lamina::memory_stats().system_allocations;   // flat once training is in its steady state
#pragma once

#include <cstdint>

namespace lamina {

void set_num_threads(int n);  // ValueError for n < 1
int get_num_threads();

// Tensor buffers are recycled through a cache instead of being freed (like PyTorch's caching
// allocators): after the first training step, a step takes every buffer from the cache.
struct MemoryStats {
  int64_t system_allocations = 0;  // buffers that had to come from the system
  int64_t reused = 0;              // buffers served from the cache
  int64_t cached_bytes = 0;        // bytes held by the cache right now
};
MemoryStats memory_stats();
void empty_cache();  // returns every cached buffer to the system

}  // namespace lamina
