// Threads: oneDNN (Debian's build) runs on OpenMP, so its thread count is OpenMP's.
#include "lamina/runtime.hpp"

#include <omp.h>

#include <string>

#include "lamina/error.hpp"

namespace lamina {

void set_num_threads(int n) {
  if (n < 1) throw ValueError("set_num_threads: need at least 1 thread, got " + std::to_string(n));
  omp_set_num_threads(n);
}

int get_num_threads() { return omp_get_max_threads(); }

}  // namespace lamina
