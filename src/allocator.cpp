// The storage cache: buffers by exact (64-byte rounded) size, behind one mutex. It keeps at
// most kMaxCachedBytes; past that, freed buffers go back to the system.
#include "allocator.hpp"

#include <cstdint>
#include <cstdlib>
#include <mutex>
#include <string>
#include <unordered_map>
#include <vector>

#include "lamina/error.hpp"
#include "lamina/runtime.hpp"

namespace lamina {

namespace {

constexpr size_t kMaxCachedBytes = size_t{1} << 30;

struct Cache {
  std::mutex mu;
  std::unordered_map<size_t, std::vector<float*>> free_buffers;
  MemoryStats stats;

  void put(float* p, size_t bytes) {
    {
      std::lock_guard lock(mu);
      if (static_cast<size_t>(stats.cached_bytes) + bytes <= kMaxCachedBytes) {
        free_buffers[bytes].push_back(p);
        stats.cached_bytes += static_cast<int64_t>(bytes);
        return;
      }
    }
    std::free(p);
  }
};

// Never destroyed: tensors held by other statics may be freed after this file's statics.
Cache& cache() {
  static Cache* c = new Cache;
  return *c;
}

thread_local detail::StorageBudget* innermost_budget = nullptr;

}  // namespace

namespace detail {

StorageBudget::StorageBudget(size_t bytes) : limit_(bytes), outer_(innermost_budget) { innermost_budget = this; }

StorageBudget::~StorageBudget() { innermost_budget = outer_; }

std::shared_ptr<float[]> allocate_storage(int64_t n) {
  constexpr auto kMaxElements = static_cast<int64_t>((SIZE_MAX - 63) / sizeof(float));
  if (n > kMaxElements)
    throw Error("cannot allocate a tensor of " + std::to_string(n) + " elements: more bytes than memory can address");
  const size_t bytes = (static_cast<size_t>(n > 0 ? n : 1) * sizeof(float) + 63) / 64 * 64;
  for (const StorageBudget* b = innermost_budget; b != nullptr; b = b->outer_)
    if (bytes > b->limit_ - b->used_)
      throw StorageBudgetExceeded("tensor storage of " + std::to_string(bytes) + " bytes would exceed a budget of " +
                                  std::to_string(b->limit_) + " bytes (" + std::to_string(b->used_) + " used)");
  for (StorageBudget* b = innermost_budget; b != nullptr; b = b->outer_) b->used_ += bytes;
  Cache& c = cache();
  float* p = nullptr;
  {
    std::lock_guard lock(c.mu);
    auto it = c.free_buffers.find(bytes);
    if (it != c.free_buffers.end() && !it->second.empty()) {
      p = it->second.back();
      it->second.pop_back();
      c.stats.cached_bytes -= static_cast<int64_t>(bytes);
      ++c.stats.reused;
    } else {
      ++c.stats.system_allocations;
    }
  }
  if (!p) p = static_cast<float*>(std::aligned_alloc(64, bytes));
  if (!p) throw Error("out of memory allocating " + std::to_string(bytes) + " bytes of tensor storage");
  return std::shared_ptr<float[]>(p, [bytes](float* q) { cache().put(q, bytes); });
}

}  // namespace detail

MemoryStats memory_stats() {
  std::lock_guard lock(cache().mu);
  return cache().stats;
}

void empty_cache() {
  Cache& c = cache();
  std::lock_guard lock(c.mu);
  for (auto& [bytes, buffers] : c.free_buffers)
    for (float* p : buffers) std::free(p);
  c.free_buffers.clear();
  c.stats.cached_bytes = 0;
}

}  // namespace lamina
