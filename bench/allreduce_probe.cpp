// Times Communicator::allreduce (float sum) on this launch's backend (distributed::init(): MPI
// under mpirun, Gloo with LAMINA_RANK & co.) for buffers of 8 B to 25 MB, and prints one JSON line
// per size from rank 0: {"backend", "ranks", "bytes", "reps", "min_us", "median_us"}. Each rep is
// timed on rank 0 from a common start (a barrier before it). Read by bench/distributed.py.
//   mpirun -np 2 build/tests/distributed/allreduce_probe [--reps N] [--max-bytes B]
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <vector>

#include "lamina/distributed_backends.hpp"

namespace dist = lamina::distributed;

int main(int argc, char** argv) {
  int reps = 0;  // 0: by size, 200 for small buffers down to 10 for 25 MB
  size_t max_bytes = 25 * 1000 * 1000;
  for (int i = 1; i + 1 < argc; i += 2) {
    if (std::strcmp(argv[i], "--reps") == 0) reps = std::atoi(argv[i + 1]);
    else if (std::strcmp(argv[i], "--max-bytes") == 0) max_bytes = std::strtoull(argv[i + 1], nullptr, 10);
    else {
      std::fprintf(stderr, "allreduce_probe: unknown option '%s' (--reps N, --max-bytes B)\n", argv[i]);
      return 2;
    }
  }
  try {
    auto comm = dist::init();
    std::vector<size_t> sizes;
    for (size_t bytes = 8; bytes < max_bytes; bytes *= 8) sizes.push_back(bytes);
    sizes.push_back(max_bytes);
    for (size_t bytes : sizes) {
      std::vector<float> data(std::max<size_t>(1, bytes / sizeof(float)), 1.f);
      const int n = reps > 0 ? reps : bytes <= 64 * 1024 ? 200 : bytes <= 4 * 1000 * 1000 ? 50 : 10;
      std::vector<double> us;
      for (int rep = -2; rep < n; ++rep) {  // two warm-up reps
        comm->barrier();
        const auto start = std::chrono::steady_clock::now();
        comm->allreduce(std::span<float>(data));
        const double t = std::chrono::duration<double, std::micro>(std::chrono::steady_clock::now() - start).count();
        if (rep >= 0) us.push_back(t);
      }
      std::sort(us.begin(), us.end());
      if (comm->rank() == 0)
        std::printf("{\"backend\": \"%s\", \"ranks\": %d, \"bytes\": %zu, \"reps\": %d, \"min_us\": %.1f, \"median_us\": %.1f}\n",
                    comm->backend().c_str(), comm->size(), data.size() * sizeof(float), n, us.front(), us[us.size() / 2]);
      std::fflush(stdout);
    }
    return 0;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "allreduce_probe: %s\n", e.what());
    return 1;
  }
}
