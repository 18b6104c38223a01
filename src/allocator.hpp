// Tensor storage comes from a cache of freed buffers: a training step allocates the same sizes
// every time, so after the first step it reuses them and calls neither malloc nor free (nor,
// for buffers past glibc's mmap threshold, mmap / munmap and their page faults). Internal.
#pragma once

#include <cstdint>
#include <memory>

namespace lamina::detail {

// 64-byte aligned storage for n floats (uninitialised), from the cache when it has a buffer
// of that size.
std::shared_ptr<float[]> allocate_storage(int64_t n);

}  // namespace lamina::detail
