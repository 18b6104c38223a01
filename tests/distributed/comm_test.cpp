// The transport backends (liblamina_distributed) under a real launcher: run by mpirun (MPI) or
// as separate processes with LAMINA_RANK / LAMINA_WORLD_SIZE / LAMINA_RENDEZVOUS (Gloo); the
// backend is whatever distributed::init() picks. No gtest: every rank checks its own results and
// the exit status says whether all passed. Modes:
//   comm_test collectives     allreduce (sum, max; float, double), start_allreduce, broadcast,
//                             barrier, on sizes 0, 1, odd and ~8 MB, against closed forms
//   comm_test fault_timeout   the last rank skips an allreduce; rank 0 must get the timeout error
//                             (LAMINA_DIST_TIMEOUT) in time, print it, and abort the job
//   comm_test peer_dies       the last rank _exit()s in the middle of a run of allreduces
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <thread>
#include <vector>

#include "lamina/distributed_backends.hpp"

namespace dist = lamina::distributed;

namespace {

using Clock = std::chrono::steady_clock;
double since(Clock::time_point t) { return std::chrono::duration<double>(Clock::now() - t).count(); }

std::string seconds(double s) {
  char text[32];
  std::snprintf(text, sizeof text, "%g", s);
  return text;
}

int g_rank = 0, g_checks = 0, g_failures = 0;

// Prints what differs (rank, case, index, got, expected) for the first few mismatches.
template <class T, class F>
void check_values(const std::string& name, const std::vector<T>& got, F expected) {
  ++g_checks;
  int shown = 0;
  for (size_t i = 0; i < got.size(); ++i) {
    const T want = expected(i);
    if (got[i] == want) continue;
    if (shown++ == 0) ++g_failures;
    if (shown <= 3)
      std::fprintf(stderr, "rank %d: %s (n=%zu): element %zu is %.9g, expected %.9g\n", g_rank, name.c_str(),
                   got.size(), i, static_cast<double>(got[i]), static_cast<double>(want));
  }
}

// Rank r holds (r + 1) * f(i), f(i) = i % 7 - 2.5: the sum is f(i) * s(s+1)/2, exact in float.
// For max, rank r holds i % 13 + r (max: i % 13 + s - 1), or -(r + 1) - i % 5 (max: -1 - i % 5).
template <class T>
void check_allreduce(dist::Communicator& comm, size_t n) {
  const int s = comm.size(), r = comm.rank();
  const std::string type = sizeof(T) == 4 ? "float" : "double";
  auto f = [](size_t i) { return static_cast<T>(static_cast<double>(i % 7) - 2.5); };
  std::vector<T> x(n);
  for (size_t i = 0; i < n; ++i) x[i] = static_cast<T>(r + 1) * f(i);
  comm.allreduce(std::span<T>(x), dist::ReduceOp::sum);
  check_values("allreduce " + type + " sum", x, [&](size_t i) { return f(i) * static_cast<T>(s * (s + 1) / 2); });

  for (size_t i = 0; i < n; ++i) x[i] = static_cast<T>(i % 13 + static_cast<size_t>(r));
  comm.allreduce(std::span<T>(x), dist::ReduceOp::max);
  check_values("allreduce " + type + " max", x, [&](size_t i) { return static_cast<T>(i % 13 + static_cast<size_t>(s - 1)); });

  for (size_t i = 0; i < n; ++i) x[i] = -static_cast<T>(r + 1) - static_cast<T>(i % 5);
  comm.allreduce(std::span<T>(x), dist::ReduceOp::max);
  check_values("allreduce " + type + " max of negatives", x, [&](size_t i) { return T(-1) - static_cast<T>(i % 5); });
}

// Two sums in flight at once, moved along with test() as the reducer does during backward.
void check_start_allreduce(dist::Communicator& comm, size_t n) {
  const int s = comm.size(), r = comm.rank();
  std::vector<float> a(n, static_cast<float>(r + 1)), b(n + 3, 2.f);
  auto first = comm.start_allreduce(std::span<float>(a));
  auto second = comm.start_allreduce(std::span<float>(b));
  const Clock::time_point start = Clock::now();
  while (!first->test() && since(start) < 30) std::this_thread::yield();
  first->wait();
  second->wait();
  check_values("start_allreduce (first)", a, [&](size_t) { return static_cast<float>(s * (s + 1) / 2); });
  check_values("start_allreduce (second)", b, [&](size_t) { return 2.f * static_cast<float>(s); });
}

void check_broadcast(dist::Communicator& comm, size_t n) {
  for (int root = 0; root < comm.size(); ++root) {
    std::vector<std::byte> data(n, std::byte{0xEE});
    if (comm.rank() == root)
      for (size_t i = 0; i < n; ++i) data[i] = static_cast<std::byte>((root * 31 + i) & 0xff);
    comm.broadcast(std::span<std::byte>(data), root);
    std::vector<int> got(n);
    for (size_t i = 0; i < n; ++i) got[i] = static_cast<int>(data[i]);
    check_values("broadcast from rank " + std::to_string(root), got,
                 [&](size_t i) { return static_cast<int>((root * 31 + i) & 0xff); });
  }
}

int collectives(dist::Communicator& comm) {
  const Clock::time_point start = Clock::now();
  const size_t big_floats = 2 * 1024 * 1024 + 3;  // ~8 MB, odd
  for (size_t n : {size_t{0}, size_t{1}, size_t{7}, size_t{1001}, big_floats}) check_allreduce<float>(comm, n);
  for (size_t n : {size_t{0}, size_t{1}, size_t{7}, big_floats / 2}) check_allreduce<double>(comm, n);
  for (size_t n : {size_t{0}, size_t{1}, size_t{7}, big_floats}) check_start_allreduce(comm, n);
  for (size_t n : {size_t{0}, size_t{1}, size_t{13}, size_t{8} * 1024 * 1024 + 1}) check_broadcast(comm, n);
  for (int i = 0; i < 3; ++i) comm.barrier();
  ++g_checks;
  // Everyone's verdict, so that rank 0's line speaks for the job.
  std::vector<double> failures(1, static_cast<double>(g_failures));
  comm.allreduce(std::span<double>(failures));
  if (comm.rank() == 0)
    std::printf("comm_test: %s, %d ranks: %d checks per rank, %d failed (all ranks), %.2f s\n", comm.backend().c_str(),
                comm.size(), g_checks, static_cast<int>(failures[0]), since(start));
  return failures[0] == 0 ? 0 : 1;
}

int fault_timeout(dist::Communicator& comm) {
  const double timeout = comm.timeout_seconds();
  std::vector<float> x(1024, 1.f);
  comm.allreduce(std::span<float>(x));  // everyone is up
  if (comm.rank() == comm.size() - 1) {
    std::this_thread::sleep_for(std::chrono::duration<double>(timeout + 1.5));  // skips the next allreduce
    return 0;
  }
  const Clock::time_point start = Clock::now();
  try {
    comm.allreduce(std::span<float>(x));
  } catch (const dist::DistributedError& e) {
    const double waited = since(start);
    const std::string want = "rank " + std::to_string(comm.rank()) + " of " + std::to_string(comm.size()) +
                             ": allreduce of 4.1 KB got no answer from its peers in " + seconds(timeout) +
                             " s: a rank has died or hangs";
    const bool text_ok = std::string(e.what()).rfind(want, 0) == 0;
    const bool time_ok = waited >= timeout && waited < timeout + 2;
    std::printf("fault_timeout: rank %d got after %.2f s: %s\n", comm.rank(), waited, e.what());
    if (text_ok && time_ok) std::printf("fault_timeout: ok\n");
    else std::printf("fault_timeout: FAILED (%s)\n", text_ok ? "not within the timeout" : ("expected: " + want).c_str());
    std::fflush(stdout);
    if (text_ok && time_ok) comm.abort(3);  // MPI: stops every rank; returns on Gloo
    return text_ok && time_ok ? 0 : 1;
  }
  std::printf("fault_timeout: FAILED: rank %d: the allreduce returned without its peer\n", comm.rank());
  return 1;
}

int peer_dies(dist::Communicator& comm) {
  std::vector<float> x(256 * 1024, 1.f);  // 1 MB
  for (int step = 0; step < 200; ++step) {
    if (step == 5 && comm.rank() == comm.size() - 1) {
      std::printf("peer_dies: rank %d exits now, at step %d\n", comm.rank(), step);
      std::fflush(stdout);
      _exit(7);
    }
    try {
      comm.allreduce(std::span<float>(x));
    } catch (const dist::DistributedError& e) {
      std::printf("peer_dies: rank %d stops at step %d: %s\n", comm.rank(), step, e.what());
      std::fflush(stdout);
      comm.abort(4);
      return 4;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  std::printf("peer_dies: FAILED: rank %d finished every step without its peer\n", comm.rank());
  return 1;
}

}  // namespace

int main(int argc, char** argv) {
  const std::string mode = argc > 1 ? argv[1] : "collectives";
  try {
    auto comm = dist::init();
    g_rank = comm->rank();
    if (mode == "collectives") return collectives(*comm);
    if (mode == "fault_timeout") return fault_timeout(*comm);
    if (mode == "peer_dies") return peer_dies(*comm);
    std::fprintf(stderr, "comm_test: unknown mode '%s' (collectives, fault_timeout, peer_dies)\n", mode.c_str());
    return 2;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "comm_test: rank %d: %s\n", g_rank, e.what());
    return 1;
  }
}
