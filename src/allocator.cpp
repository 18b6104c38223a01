// The storage cache: buffers by exact (64-byte rounded) size, behind one mutex, each thread
// served first with the buffers it freed itself. It keeps at most kMaxCachedBytes; past that,
// freed buffers go back to the system.
//
// Buffers the cache cannot serve come from an arena first: a bump allocator over one 64 MB
// reservation of address space, which the kernel may back with 2 MB pages (transparent huge
// pages, asked for with madvise). Each new 4 KB page of malloc's costs a page fault on first
// touch, and on this project's VM one fault took 11-12 us (64 of them 0.7-0.76 ms), one 2 MB
// fault 120-150 us: the digits MLP's first training step touched 53 new pages, 0.6 ms of its
// 4 ms training. Arena buffers are never given back (they go to the cache, past its limit too),
// so the arena holds what the process's tensors needed at most, up to its 64 MB; buffers over
// 1 MB, and any once it is full, come from malloc as before (all of them under
// AddressSanitizer, which checks malloc's bounds).
#include "allocator.hpp"

#include <sys/mman.h>

#include <atomic>
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
constexpr size_t kHugePage = size_t{2} << 20;
constexpr size_t kArenaBytes = size_t{64} << 20;
constexpr size_t kMaxArenaBuffer = size_t{1} << 20;

class Arena {
 public:
  // The next `bytes` (a multiple of 64) of the reservation, or null when it is full or there is
  // none (mmap refused it: the first call tries once).
  float* take(size_t bytes) {
    if (bytes > kMaxArenaBuffer) return nullptr;
    if (!tried_) reserve();
    if (next_ == nullptr || bytes > static_cast<size_t>(end_ - next_)) return nullptr;
    auto* p = reinterpret_cast<float*>(next_);
    next_ += bytes;
    return p;
  }
  bool owns(const float* p) const {
    const auto* c = reinterpret_cast<const char*>(p);
    return begin_ != nullptr && c >= begin_ && c < end_;
  }

 private:
  void reserve() {
    tried_ = true;
#if defined(__SANITIZE_ADDRESS__)
    return;  // AddressSanitizer checks the bounds of malloc's buffers, not of the arena's
#endif
    void* m = mmap(nullptr, kArenaBytes + kHugePage, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE,
                   -1, 0);
    if (m == MAP_FAILED) return;
    const auto at = (reinterpret_cast<uintptr_t>(m) + kHugePage - 1) / kHugePage * kHugePage;
    begin_ = next_ = reinterpret_cast<char*>(at);
    end_ = begin_ + kArenaBytes;
#ifdef MADV_HUGEPAGE
    madvise(begin_, kArenaBytes, MADV_HUGEPAGE);  // a hint: without huge pages, 4 KB ones as malloc's
#endif
  }

  bool tried_ = false;
  char *begin_ = nullptr, *next_ = nullptr, *end_ = nullptr;
};

// Which thread freed a cached buffer: a thread gets back its own buffers first, whose lines
// are likely still in its core's cache. Two threads splitting a batch (model/batch_split.hpp)
// ask for buffers of the same sizes in step; handed each other's, every activation crossed
// between the cores at each step.
int thread_tag() {
  static std::atomic<int> next{0};
  thread_local const int tag = next++;
  return tag;
}

struct Cached {
  float* p;
  int tag;  // thread_tag() of the thread that freed it
};

struct Cache {
  std::mutex mu;
  std::unordered_map<size_t, std::vector<Cached>> free_buffers;
  MemoryStats stats;
  Arena arena;

  void put(float* p, size_t bytes) {
    const int tag = thread_tag();
    {
      std::lock_guard lock(mu);
      if (arena.owns(p) || static_cast<size_t>(stats.cached_bytes) + bytes <= kMaxCachedBytes) {
        free_buffers[bytes].push_back({p, tag});
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
  const int tag = thread_tag();
  float* p = nullptr;
  {
    std::lock_guard lock(c.mu);
    auto it = c.free_buffers.find(bytes);
    if (it != c.free_buffers.end() && !it->second.empty()) {
      std::vector<Cached>& list = it->second;
      auto own = list.end() - 1;  // the last one this thread freed, else the last one freed
      while (own != list.begin() && own->tag != tag) --own;
      if (own->tag != tag) own = list.end() - 1;
      p = own->p;
      list.erase(own);
      c.stats.cached_bytes -= static_cast<int64_t>(bytes);
      ++c.stats.reused;
    } else {
      ++c.stats.system_allocations;
      p = c.arena.take(bytes);
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
  for (auto& [bytes, buffers] : c.free_buffers) {
    std::erase_if(buffers, [&, size = bytes](const Cached& b) {
      if (c.arena.owns(b.p)) return false;  // the arena's stay, for the next tensor of their size
      std::free(b.p);
      c.stats.cached_bytes -= static_cast<int64_t>(size);
      return true;
    });
  }
}

}  // namespace lamina
