// The MPI backend (OpenMPI 4.1): MPI_COMM_WORLD, duplicated, with MPI_ERRORS_RETURN so that every
// failure comes back as a DistributedError, and every collective non-blocking (MPI_Iallreduce,
// MPI_Ibcast, MPI_Ibarrier) finished by a timed MPI_Test loop, so that a dead or hung peer ends in
// an error after timeout_seconds() instead of a hang. Not a launcher: mpirun starts the ranks.
#include <mpi.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <climits>
#include <cstdlib>
#include <thread>

#include "distributed/backend_text.hpp"
#include "lamina/distributed_backends.hpp"

namespace lamina::distributed {

namespace {

using detail::bytes_text;
using detail::rank_text;

// MPI counts are int: longer buffers go as several collectives of at most this many elements.
constexpr size_t kMaxCount = static_cast<size_t>(INT_MAX);

// The process's MPI: initialized on first use (unless the program did it itself) and finalized
// at exit. Not finalized after a collective timed out: MPI_Finalize would wait for the peer that
// never answered, and a rank that exits without it makes mpirun stop the whole job, as it should.
struct Runtime {
  bool owned = false;
  std::atomic<bool> broken{false};

  Runtime() {
    int initialized = 0;
    MPI_Initialized(&initialized);
    if (initialized) return;  // the program's own MPI_Init: the program finalizes too
    // MPI_Iallreduce as a ring, as Horovod and NCCL do: each rank sends 2(N-1)/N of the buffer
    // whatever N. A value from the launch (mpirun --mca, the environment) is kept.
    setenv("OMPI_MCA_coll_libnbc_iallreduce_algorithm", "1", 0);
    int provided = 0;
    if (MPI_Init_thread(nullptr, nullptr, MPI_THREAD_FUNNELED, &provided) != MPI_SUCCESS)
      throw DistributedError("MPI_Init_thread failed: is this process started by mpirun?");
    owned = true;
    if (provided < MPI_THREAD_FUNNELED)
      throw DistributedError("MPI_Init_thread: this MPI offers no MPI_THREAD_FUNNELED (got level " +
                             std::to_string(provided) + ")");
  }
  ~Runtime() {
    int finalized = 0;
    MPI_Finalized(&finalized);
    if (owned && !finalized && !broken) MPI_Finalize();
  }
};

Runtime& runtime() {
  static Runtime instance;
  return instance;
}

// What a communicator and the requests it started share: the MPI communicator, and whether a
// collective failed on it (after which nothing more can be sent: the job has to stop).
struct State {
  MPI_Comm comm = MPI_COMM_NULL;
  int rank = 0, size = 1;
  bool oversubscribed = false;  // more ranks on this host than cores: a waiting rank yields its core
  std::string failure;  // the first error; empty while healthy

  std::string where() const { return rank_text(rank, size); }

  [[noreturn]] void fail(DistributedError error) {
    if (failure.empty()) failure = error.what();
    runtime().broken = true;
    throw error;
  }
  void check(int rc, const char* call, const std::string& what) {
    if (rc == MPI_SUCCESS) return;
    char text[MPI_MAX_ERROR_STRING];
    int length = 0;
    if (MPI_Error_string(rc, text, &length) != MPI_SUCCESS) length = 0;
    fail(DistributedError(where() + ": " + call + " (" + what + ") failed: " +
                          (length > 0 ? std::string(text, static_cast<size_t>(length)) : "error " + std::to_string(rc))));
  }
  void check_healthy(const std::string& what) const {
    if (!failure.empty())
      throw DistributedError(where() + ": cannot start " + what + ": an earlier collective failed (" + failure +
                             "); the job has to stop (Communicator::abort)");
  }
};

class MpiRequest : public Request {
 public:
  MpiRequest(std::shared_ptr<State> state, std::vector<MPI_Request> requests, std::string what, double timeout)
      : state_(std::move(state)), requests_(std::move(requests)), what_(std::move(what)), timeout_(timeout) {}
  // Finishes a collective nobody waited for (an exception during backward): its buffer may be
  // freed right after. Bounded by the timeout; a failure then is left for the next collective.
  ~MpiRequest() override {
    if (done_ || !state_->failure.empty()) return;
    try {
      wait();
    } catch (const DistributedError&) {
    }
  }

  // MPI_Test is also what moves OpenMPI's non-blocking collectives along (the reducer calls it
  // between layers of backward).
  bool test() override {
    if (done_) return true;
    int flag = 0;
    state_->check(MPI_Testall(static_cast<int>(requests_.size()), requests_.data(), &flag, MPI_STATUSES_IGNORE),
                  "MPI_Test", what_);
    done_ = flag != 0;
    return done_;
  }

  // OpenMPI moves a non-blocking collective along only inside MPI calls, so the wait keeps testing,
  // back to back for 50 ms (a 25 MB ring is several ms of steps; sleeping between them from 2 ms
  // on cost 1.7-1.9x MPI_Allreduce's time), then sleeping 10 us doubling up to 1 ms, so that a rank
  // waiting long for a slow or lost peer leaves the core to the others until the timeout. It
  // yields between tests only when this host has more ranks than cores (OpenMPI's
  // yield_when_idle rule): otherwise a yield hands the core to any background process for its
  // time slice (LeNet on 2 ranks beside a niced build: 1.3 ms lost per step, 15x slower tests in
  // a loaded chroot).
  void wait() override {
    using Clock = std::chrono::steady_clock;
    const Clock::time_point start = Clock::now();
    auto pause = std::chrono::microseconds(10);
    while (!test()) {
      const double waited = std::chrono::duration<double>(Clock::now() - start).count();
      if (timeout_ > 0 && waited >= timeout_) state_->fail(detail::timeout_error(state_->rank, state_->size, what_, timeout_));
      if (waited < 0.05) {
        if (state_->oversubscribed) std::this_thread::yield();
        continue;
      }
      std::this_thread::sleep_for(pause);
      pause = std::min(pause * 2, std::chrono::microseconds(1000));
    }
  }

 private:
  std::shared_ptr<State> state_;
  std::vector<MPI_Request> requests_;
  std::string what_;
  double timeout_;
  bool done_ = false;
};

class MpiCommunicator : public Communicator {
 public:
  explicit MpiCommunicator(std::shared_ptr<State> state) : state_(std::move(state)) {}
  ~MpiCommunicator() override {
    int finalized = 0;
    MPI_Finalized(&finalized);
    if (!finalized && state_->failure.empty()) MPI_Comm_free(&state_->comm);
  }

  int rank() const override { return state_->rank; }
  int size() const override { return state_->size; }
  std::string backend() const override { return "mpi"; }

  void allreduce(std::span<float> data, ReduceOp op) override { start(data, op)->wait(); }
  void allreduce(std::span<double> data, ReduceOp op) override { start(data, op)->wait(); }
  std::unique_ptr<Request> start_allreduce(std::span<float> data) override { return start(data, ReduceOp::sum); }

  void broadcast(std::span<std::byte> data, int root) override {
    const std::string what = "broadcast of " + bytes_text(data.size()) + " from rank " + std::to_string(root);
    if (root < 0 || root >= state_->size)
      throw DistributedError(state_->where() + ": " + what + ": there is no rank " + std::to_string(root));
    state_->check_healthy(what);
    std::vector<MPI_Request> requests;
    for (size_t at = 0; at < data.size(); at += kMaxCount) {
      const size_t n = std::min(kMaxCount, data.size() - at);
      state_->check(MPI_Ibcast(data.data() + at, static_cast<int>(n), MPI_BYTE, root, state_->comm,
                               &requests.emplace_back(MPI_REQUEST_NULL)),
                    "MPI_Ibcast", what);
    }
    MpiRequest(state_, std::move(requests), what, timeout_).wait();
  }

  void barrier() override {
    state_->check_healthy("barrier");
    std::vector<MPI_Request> requests(1, MPI_REQUEST_NULL);
    state_->check(MPI_Ibarrier(state_->comm, requests.data()), "MPI_Ibarrier", "barrier");
    MpiRequest(state_, std::move(requests), "barrier", timeout_).wait();
  }

  void abort(int code) override { MPI_Abort(state_->comm, code); }

 private:
  // One MPI_Iallreduce in place per kMaxCount elements (one, in practice); none for an empty span.
  template <class T>
  std::unique_ptr<MpiRequest> start(std::span<T> data, ReduceOp op) {
    const std::string what = "allreduce of " + bytes_text(data.size_bytes());
    state_->check_healthy(what);
    const MPI_Datatype type = sizeof(T) == sizeof(float) ? MPI_FLOAT : MPI_DOUBLE;
    std::vector<MPI_Request> requests;
    for (size_t at = 0; at < data.size(); at += kMaxCount) {
      const size_t n = std::min(kMaxCount, data.size() - at);
      state_->check(MPI_Iallreduce(MPI_IN_PLACE, data.data() + at, static_cast<int>(n), type,
                                   op == ReduceOp::sum ? MPI_SUM : MPI_MAX, state_->comm,
                                   &requests.emplace_back(MPI_REQUEST_NULL)),
                    "MPI_Iallreduce", what);
    }
    return std::make_unique<MpiRequest>(state_, std::move(requests), what, timeout_);
  }

  std::shared_ptr<State> state_;
};

}  // namespace

std::shared_ptr<Communicator> mpi() {
  runtime();
  auto state = std::make_shared<State>();
  // Collective over MPI_COMM_WORLD: every rank calls mpi() the same number of times.
  if (MPI_Comm_dup(MPI_COMM_WORLD, &state->comm) != MPI_SUCCESS)
    throw DistributedError("MPI_Comm_dup(MPI_COMM_WORLD) failed");
  MPI_Comm_set_errhandler(state->comm, MPI_ERRORS_RETURN);
  MPI_Comm_rank(state->comm, &state->rank);
  MPI_Comm_size(state->comm, &state->size);
  // The ranks sharing this host (MPI-3's shared-memory split), against the cores this process may use.
  MPI_Comm host = MPI_COMM_NULL;
  if (MPI_Comm_split_type(state->comm, MPI_COMM_TYPE_SHARED, state->rank, MPI_INFO_NULL, &host) == MPI_SUCCESS) {
    int on_host = 1;
    MPI_Comm_size(host, &on_host);
    MPI_Comm_free(&host);
    state->oversubscribed = on_host > static_cast<int>(std::thread::hardware_concurrency());
  }
  return std::make_shared<MpiCommunicator>(std::move(state));
}

}  // namespace lamina::distributed
