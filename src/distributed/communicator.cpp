// The communicators that need no transport: local() (one process) and thread_group() (ranks as
// threads of one process, meeting at a shared barrier), and the helpers every backend shares.
#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <cstring>
#include <mutex>

#include "lamina/distributed.hpp"

namespace lamina::distributed {

namespace {

thread_local Communicator* g_active = nullptr;

class DoneRequest : public Request {
 public:
  bool test() override { return true; }
  void wait() override {}
};

class LocalCommunicator : public Communicator {
 public:
  int rank() const override { return 0; }
  int size() const override { return 1; }
  std::string backend() const override { return "local"; }
  void allreduce(std::span<float>, ReduceOp) override {}
  void allreduce(std::span<double>, ReduceOp) override {}
  void broadcast(std::span<std::byte>, int) override {}
  void barrier() override {}
};

// What the ranks of a thread group share: a reusable barrier and each rank's buffer for the
// collective under way.
struct Group {
  explicit Group(int n) : n(n), buffers(static_cast<size_t>(n)) {}
  const int n;
  std::mutex mutex;
  std::condition_variable cv;
  uint64_t generation = 0;
  int arrived = 0;
  std::vector<void*> buffers;
  std::vector<size_t> sizes;

  // Every rank arrives before any leaves; DistributedError after `timeout` seconds (0: forever).
  void arrive_and_wait(int rank, double timeout, const char* what) {
    std::unique_lock<std::mutex> lock(mutex);
    const uint64_t gen = generation;
    if (++arrived == n) {
      arrived = 0;
      ++generation;
      cv.notify_all();
      return;
    }
    auto passed = [&] { return generation != gen; };
    if (timeout <= 0) {
      cv.wait(lock, passed);
    } else if (!cv.wait_for(lock, std::chrono::duration<double>(timeout), passed)) {
      throw DistributedError("rank " + std::to_string(rank) + " of " + std::to_string(n) + ": " + what + " waited " +
                             std::to_string(static_cast<int>(timeout)) + " s for the other ranks (" +
                             std::to_string(n - arrived) + " never arrived): a rank has died or hangs");
    }
  }
};

class ThreadCommunicator : public Communicator {
 public:
  ThreadCommunicator(std::shared_ptr<Group> group, int rank) : group_(std::move(group)), rank_(rank) {}
  int rank() const override { return rank_; }
  int size() const override { return group_->n; }
  std::string backend() const override { return "threads"; }

  void allreduce(std::span<float> data, ReduceOp op) override { reduce(data, op); }
  void allreduce(std::span<double> data, ReduceOp op) override { reduce(data, op); }
  void broadcast(std::span<std::byte> data, int root) override {
    check_root(root);
    post(data.data(), data.size(), "broadcast");
    if (rank_ != root) std::memcpy(data.data(), group_->buffers[static_cast<size_t>(root)], data.size());
    group_->arrive_and_wait(rank_, timeout_, "broadcast");  // the root's buffer is read by now
  }
  void barrier() override { group_->arrive_and_wait(rank_, timeout_, "barrier"); }

 private:
  // Posts this rank's buffer and waits until every rank has posted one of the same length.
  void post(void* data, size_t bytes, const char* what) {
    {
      const std::lock_guard<std::mutex> lock(group_->mutex);
      group_->buffers[static_cast<size_t>(rank_)] = data;
      if (group_->sizes.size() != group_->buffers.size()) group_->sizes.resize(group_->buffers.size());
      group_->sizes[static_cast<size_t>(rank_)] = bytes;
    }
    group_->arrive_and_wait(rank_, timeout_, what);
    for (int r = 0; r < group_->n; ++r)
      if (group_->sizes[static_cast<size_t>(r)] != bytes)
        throw DistributedError("rank " + std::to_string(rank_) + ": " + what + " of " + std::to_string(bytes) +
                               " bytes, rank " + std::to_string(r) + " gave " +
                               std::to_string(group_->sizes[static_cast<size_t>(r)]) +
                               ": the ranks called different collectives");
  }

  // Each rank adds every rank's buffer in rank order into its own copy (so the bits are the same
  // everywhere), waits until all have read, then writes it back.
  template <class T>
  void reduce(std::span<T> data, ReduceOp op) {
    post(data.data(), data.size_bytes(), "allreduce");
    std::vector<T> out(static_cast<const T*>(group_->buffers[0]), static_cast<const T*>(group_->buffers[0]) + data.size());
    for (int r = 1; r < group_->n; ++r) {
      const T* in = static_cast<const T*>(group_->buffers[static_cast<size_t>(r)]);
      for (size_t i = 0; i < out.size(); ++i) out[i] = op == ReduceOp::sum ? out[i] + in[i] : std::max(out[i], in[i]);
    }
    group_->arrive_and_wait(rank_, timeout_, "allreduce");
    std::copy(out.begin(), out.end(), data.begin());
  }

  void check_root(int root) const {
    if (root < 0 || root >= group_->n)
      throw DistributedError("broadcast: root " + std::to_string(root) + " is not a rank of " + std::to_string(group_->n));
  }

  std::shared_ptr<Group> group_;
  int rank_;
};

}  // namespace

std::unique_ptr<Request> Communicator::start_allreduce(std::span<float> data) {
  allreduce(data, ReduceOp::sum);
  return std::make_unique<DoneRequest>();
}

std::shared_ptr<Communicator> local() { return std::make_shared<LocalCommunicator>(); }

std::vector<std::shared_ptr<Communicator>> thread_group(int n) {
  if (n < 1) throw ValueError("thread_group: needs at least 1 rank, got " + std::to_string(n));
  auto group = std::make_shared<Group>(n);
  std::vector<std::shared_ptr<Communicator>> ranks;
  for (int r = 0; r < n; ++r) ranks.push_back(std::make_shared<ThreadCommunicator>(group, r));
  return ranks;
}

Share share(int64_t n, int rank, int size) {
  const int64_t base = n / size, extra = n % size;
  return {rank * base + std::min<int64_t>(rank, extra), base + (rank < extra ? 1 : 0)};
}

Communicator* active() { return g_active; }
ActiveScope::ActiveScope(Communicator* comm) : previous_(g_active) { g_active = comm; }
ActiveScope::~ActiveScope() { g_active = previous_; }

}  // namespace lamina::distributed
