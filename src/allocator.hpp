// Tensor storage comes from a cache of freed buffers: a training step allocates the same sizes
// every time, so after the first step it reuses them and calls neither malloc nor free (nor,
// for buffers past glibc's mmap threshold, mmap / munmap and their page faults). Internal.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>

#include "lamina/error.hpp"

namespace lamina::detail {

// 64-byte aligned storage for n floats (uninitialised), from the cache when it has a buffer
// of that size.
// Throws Error for n beyond what a size_t of bytes can hold, and StorageBudgetExceeded past a
// StorageBudget, in both cases before allocating anything.
std::shared_ptr<float[]> allocate_storage(int64_t n);

class StorageBudgetExceeded : public Error {
 public:
  using Error::Error;
};

// Caps the tensor storage allocated on this thread while it is alive: bytes summed over
// allocations (frees are not given back). Past it, allocate_storage throws StorageBudgetExceeded
// instead of allocating. Sequential::load builds a model from a file's config under one, so a
// config that claims far more weights than the file holds fails before allocating them; the fuzz
// targets build models from arbitrary specs under one. Nested budgets each count.
class StorageBudget {
 public:
  explicit StorageBudget(size_t bytes);
  ~StorageBudget();
  StorageBudget(const StorageBudget&) = delete;
  StorageBudget& operator=(const StorageBudget&) = delete;
  size_t limit() const { return limit_; }
  size_t used() const { return used_; }

 private:
  friend std::shared_ptr<float[]> allocate_storage(int64_t n);
  size_t limit_, used_ = 0;
  StorageBudget* outer_;
};

}  // namespace lamina::detail
