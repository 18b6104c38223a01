// The Dense chain's threads: see spin_team.hpp.
#include "model/spin_team.hpp"

#include <omp.h>
#include <pthread.h>
#include <sched.h>

#include <algorithm>
#include <exception>

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#endif

namespace lamina::detail {

namespace {

// The processors of the place OpenMP would bind its thread `thread` to, counted from the
// caller's place (OMP_PROC_BIND=close), or none when OpenMP does not bind.
std::vector<int> place_of(int thread) {
  if (omp_get_proc_bind() == omp_proc_bind_false || omp_get_num_places() <= 0) return {};
  const int places = omp_get_num_places();
  const int place = (std::max(omp_get_place_num(), 0) + thread) % places;
  std::vector<int> cpus(static_cast<size_t>(omp_get_place_num_procs(place)));
  if (!cpus.empty()) omp_get_place_proc_ids(place, cpus.data());
  return cpus;
}

}  // namespace

void SpinTeam::relax() const {
  if (oversubscribed_) return std::this_thread::yield();
#if defined(__x86_64__) || defined(__i386__)
  _mm_pause();
#endif
}

SpinTeam::SpinTeam(int threads) : done_(static_cast<size_t>(std::max(threads, 1))), arrived_(done_.size()) {
  // With more threads than processors, a thread spinning on one would keep the thread it waits
  // for off it for a time slice, so waits yield instead. (omp_get_num_procs: the processors the
  // process started with, before OpenMP bound the calling thread to one.)
  oversubscribed_ = size() > omp_get_num_procs();
  try {
    for (int t = 1; t < size(); ++t) threads_.emplace_back(&SpinTeam::work, this, t, place_of(t));
  } catch (...) {  // a thread that could not start: stop those started, and say so
    stop();
    throw;
  }
}

SpinTeam::~SpinTeam() { stop(); }

void SpinTeam::stop() {
  stop_.store(true);
  generation_.fetch_add(1);
  generation_.notify_all();
  for (std::thread& th : threads_) th.join();
}

void SpinTeam::run_task(Task task, void* context) {
  task_ = task, context_ = context;
  const uint32_t generation = generation_.fetch_add(1) + 1;  // seq_cst, as sleepers_ below
  if (sleepers_.load() != 0) generation_.notify_all();
  try {  // the others would wait at the next barrier for ever
    task(context, 0);
  } catch (...) {
    std::terminate();
  }
  for (size_t t = 1; t < done_.size(); ++t)
    while (done_[t].value.load(std::memory_order_acquire) != generation) relax();
}

void SpinTeam::barrier(int thread) {
  if (size() == 1) return;
  std::atomic<uint64_t>& mine = arrived_[static_cast<size_t>(thread)].value;
  const uint64_t count = mine.load(std::memory_order_relaxed) + 1;
  mine.store(count, std::memory_order_release);
  for (const Flag& other : arrived_)
    while (other.value.load(std::memory_order_acquire) < count) relax();
}

void SpinTeam::work(int thread, std::vector<int> cpus) {
  if (!cpus.empty()) {
    cpu_set_t set;
    CPU_ZERO(&set);
    for (int cpu : cpus) CPU_SET(cpu, &set);
    pthread_setaffinity_np(pthread_self(), sizeof set, &set);  // refused: the thread stays unbound
  }
  uint32_t seen = 0;
  for (;;) {
    // The next run: spin a while (the time between two steps), then sleep.
    uint32_t now = generation_.load(std::memory_order_acquire);
    const auto until = std::chrono::steady_clock::now() + kSpin;
    for (int spins = 0; now == seen; now = generation_.load(std::memory_order_acquire)) {
      relax();
      if (++spins % 64 == 0 && std::chrono::steady_clock::now() > until) {
        sleepers_.fetch_add(1);  // seq_cst: run_task sees it, or the wait sees the new generation
        generation_.wait(seen);
        sleepers_.fetch_sub(1);
      }
    }
    seen = now;
    if (stop_.load()) return;
    try {
      task_(context_, thread);
    } catch (...) {
      std::terminate();
    }
    done_[static_cast<size_t>(thread)].value.store(seen, std::memory_order_release);
  }
}

}  // namespace lamina::detail
