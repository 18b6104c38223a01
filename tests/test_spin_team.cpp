// The threads of the Dense chain's training step (model/spin_team.hpp): every thread runs each
// task once, a barrier orders what the threads write, a team left idle long enough to sleep
// still wakes for the next run, and more threads than processors still finish.
#include <gtest/gtest.h>

#include <set>
#include <thread>
#include <vector>

#include "model/spin_team.hpp"

namespace lamina {
namespace {

using detail::SpinTeam;

// Rounds in which each thread writes its slot, waits at a barrier, and checks every slot, then
// waits again before the next round overwrites them.
void expect_barrier_orders_writes(SpinTeam& team, int rounds) {
  const int n = team.size();
  std::vector<int64_t> slots(static_cast<size_t>(n) * 16, -1);  // a cache line apart
  std::vector<int> wrong(static_cast<size_t>(n), 0);
  team.run([&](int t) {
    for (int r = 0; r < rounds; ++r) {
      slots[static_cast<size_t>(t) * 16] = r * n + t;
      team.barrier(t);
      for (int u = 0; u < n; ++u) wrong[static_cast<size_t>(t)] += slots[static_cast<size_t>(u) * 16] != r * n + u;
      team.barrier(t);
    }
  });
  for (int t = 0; t < n; ++t) EXPECT_EQ(wrong[static_cast<size_t>(t)], 0) << "thread " << t << " of " << n;
}

TEST(SpinTeam, EveryThreadRunsEachTaskOnce) {
  for (int threads : {1, 2, 3}) {
    SpinTeam team(threads);
    ASSERT_EQ(team.size(), threads);
    for (int run = 0; run < 200; ++run) {
      std::vector<int> calls(static_cast<size_t>(threads), 0);
      std::vector<std::thread::id> ids(static_cast<size_t>(threads));
      team.run([&](int t) {
        ++calls[static_cast<size_t>(t)];
        ids[static_cast<size_t>(t)] = std::this_thread::get_id();
      });
      for (int t = 0; t < threads; ++t)
        ASSERT_EQ(calls[static_cast<size_t>(t)], 1) << "thread " << t << ", run " << run;
      EXPECT_EQ(ids[0], std::this_thread::get_id()) << "thread 0 is the caller";
      EXPECT_EQ(std::set<std::thread::id>(ids.begin(), ids.end()).size(), static_cast<size_t>(threads));
    }
  }
}

TEST(SpinTeam, BarrierOrdersWrites) {
  SpinTeam team(2);
  expect_barrier_orders_writes(team, 2000);
}

TEST(SpinTeam, MoreThreadsThanProcessorsFinish) {
  SpinTeam team(static_cast<int>(std::thread::hardware_concurrency()) + 2);  // waits yield the processor
  expect_barrier_orders_writes(team, 50);
}

TEST(SpinTeam, WakesAfterSleeping) {
  SpinTeam team(2);
  for (int run = 0; run < 3; ++run) {
    std::this_thread::sleep_for(SpinTeam::kSpin * 5);  // the worker stops spinning and sleeps
    int ran = 0;
    team.run([&](int t) {
      if (t == 1) ran = 1;
    });
    EXPECT_EQ(ran, 1) << "run " << run;
  }
  expect_barrier_orders_writes(team, 10);
}

}  // namespace
}  // namespace lamina
