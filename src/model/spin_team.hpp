// Threads for work that runs in phases of a few microseconds: the Dense chain's training step
// (model/dense_chain.hpp), whose phases on MNIST's MLP take 2-15 us each. OpenMP's fork and join
// cost 2.9 us on this project's 2-core machine and its barrier 1.4 us, so the step's two parallel
// regions and four barriers spent about 11 us of an 84 us step synchronizing; here a run costs
// the caller one store and a wait for one flag per worker, and a barrier a flag per thread (0.3
// us between the two cores). Internal to the library.
//
// The caller is thread 0 and runs its share itself; the other size() - 1 threads are the team's
// own, started with it (the chain's: once per fit). Between runs they spin for up to kSpin,
// then sleep on a futex until the next run, so a team left idle (validation between epochs, a
// finished fit) gives the cores back. When OpenMP binds its threads (OMP_PROC_BIND), thread t
// is bound where OpenMP's thread t would be: the place after the caller's, t places on.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <thread>
#include <type_traits>
#include <vector>

namespace lamina::detail {

class SpinTeam {
 public:
  static constexpr std::chrono::microseconds kSpin{200};

  explicit SpinTeam(int threads);
  ~SpinTeam();
  SpinTeam(const SpinTeam&) = delete;
  SpinTeam& operator=(const SpinTeam&) = delete;

  int size() const { return static_cast<int>(arrived_.size()); }
  // fn(thread) on every thread of the team, the caller's (0) included; returns once all have
  // returned. fn must not throw (as in an OpenMP region, an exception ends the process).
  template <class Fn>
  void run(Fn&& fn) {
    run_task(&invoke<std::remove_reference_t<Fn>>, &fn);
  }
  // Within a run: returns once every thread of the team has reached it as often as `thread`.
  // What a thread wrote before is visible to the others after.
  void barrier(int thread);

 private:
  using Task = void (*)(void*, int);
  template <class Fn>
  static void invoke(void* fn, int thread) {
    (*static_cast<Fn*>(fn))(thread);
  }
  void run_task(Task task, void* context);
  void work(int thread, std::vector<int> cpus);
  void stop();         // wakes the other threads to return, and joins them
  void relax() const;  // in a wait: a pause, or a yield when oversubscribed

  struct alignas(64) Flag {
    std::atomic<uint64_t> value{0};
  };
  alignas(64) std::atomic<uint32_t> generation_{0};  // one more per run: what sleepers wait on
  std::atomic<int> sleepers_{0};
  std::atomic<bool> stop_{false};
  bool oversubscribed_ = false;  // more threads than processors
  Task task_ = nullptr;
  void* context_ = nullptr;
  std::vector<Flag> done_;     // per thread: the last generation it finished
  std::vector<Flag> arrived_;  // per thread: the barriers it reached
  std::vector<std::thread> threads_;
};

}  // namespace lamina::detail
