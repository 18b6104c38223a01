// Running library code on several OpenMP threads at once, each thread's kernels on that thread
// alone. Internal to the library.
#pragma once

#include <omp.h>

#include <exception>
#include <functional>

#include "lamina/autograd.hpp"

namespace lamina::detail {

// The kernels inside run on the calling thread alone (OpenMP's count is per thread).
struct OneThread {
  int before = omp_get_max_threads();
  OneThread() { omp_set_num_threads(1); }
  ~OneThread() { omp_set_num_threads(before); }
  OneThread(const OneThread&) = delete;
  OneThread& operator=(const OneThread&) = delete;
};

// Whether two independent inference computations may run side by side, one core each: two
// threads to spare, not inside a parallel region already, and no gradient to record (each
// thread records its own, NoGradGuard being per thread).
inline bool can_run_side_by_side() { return !grad_enabled() && !omp_in_parallel() && omp_get_max_threads() >= 2; }

// Runs a and b at once on two threads, one core's kernels each, gradients off; rethrows the first
// exception either threw, after both finished.
inline void run_side_by_side(const std::function<void()>& a, const std::function<void()>& b) {
  std::exception_ptr errors[2];
#pragma omp parallel num_threads(2)
  {
    const int k = omp_get_thread_num();
    const OneThread one_thread;
    const NoGradGuard no_grad;
    try {
      if (k == 0) a();
      else if (k == 1) b();
    } catch (...) {
      errors[k] = std::current_exception();
    }
  }
  for (const std::exception_ptr& e : errors)
    if (e) std::rethrow_exception(e);
}

}  // namespace lamina::detail
