// Process-wide runtime settings: the number of threads the compute kernels (oneDNN, OpenMP)
// may use (default: the machine's core count), and the tensor storage cache.
//
//   lamina::set_num_threads(1);
//   lamina::memory_stats().system_allocations;   // flat once training is in its steady state
#pragma once

#include <cstdint>
#include <string>

namespace lamina {

void set_num_threads(int n);  // ValueError for n < 1
int get_num_threads();

// The CPU liblamina's own loops were compiled for: CMake's LAMINA_ARCH, "x86-64-v3" by default
// (any x86-64 CPU since 2015), "native" for the building machine's; empty for the compiler's
// default. oneDNN's kernels follow the CPU at run time whatever this says.
const char* build_arch();

// Tensor buffers are recycled through a cache instead of being freed (like PyTorch's caching
// allocators): after the first training step, a step takes every buffer from the cache.
struct MemoryStats {
  int64_t system_allocations = 0;  // buffers that had to come from the system
  int64_t reused = 0;              // buffers served from the cache
  int64_t cached_bytes = 0;        // bytes held by the cache right now
};
MemoryStats memory_stats();
void empty_cache();  // returns the cached buffers to the system (those of the small-buffer arena stay cached)

// A ceiling on the memory a model may plan to use, in bytes (0: none, the default). Before
// Sequential's build, fit, evaluate and predict allocate, they estimate their need
// (Sequential::estimate_memory) and throw ValueError naming the estimate, this limit and what
// dominates, rather than run into the kernel's OOM killer. `name` says where the limit came
// from in that message ("--max-memory").
void set_memory_limit(int64_t bytes, std::string name = "the memory limit");
int64_t memory_limit();
const std::string& memory_limit_name();
// The memory this process may use: the smallest of the cgroup limits that apply to it (v2
// memory.max, v1 memory.limit_in_bytes) and MemTotal in /proc/meminfo; 0 when none is known.
int64_t system_memory_bytes();
// "1.5 GB", "512.0 MB", "12 B" (binary units: 1 GB = 2^30 bytes).
std::string format_bytes(int64_t bytes);

}  // namespace lamina
