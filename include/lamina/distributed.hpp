// Data-parallel training across processes and machines, as Horovod and PyTorch's
// DistributedDataParallel do it: every rank holds the whole model, reads its own share of each
// global batch, and the gradients are averaged over ranks before each optimizer step, so that
// every rank takes the same step and the weights stay identical.
//
// A Communicator is the only thing the engine knows about the transport: allreduce, broadcast
// and barrier on buffers. Backends: local() (one process), thread_group() (ranks as threads of
// one process, for tests), and in liblamina_distributed (lamina/distributed_backends.hpp): MPI
// (mpirun) and Gloo (TCP, no launcher).
//
//   auto comm = distributed::init();            // distributed_backends.hpp: MPI under mpirun
//   model.distribute(comm, {.bucket_mb = 25});   // rank 0's weights go to every rank at fit
//   model.fit(train, {.epochs = 5, .batch_size = 128, .verbose = comm->rank() == 0});
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "lamina/error.hpp"

namespace lamina::distributed {

// A peer that died or went silent, a transport that failed, ranks that disagree: the message
// names this rank, the operation and what was waited for.
class DistributedError : public Error {
 public:
  using Error::Error;
};

enum class ReduceOp { sum, max };

// A collective in flight (Communicator::start_allreduce). The buffer it was started on must stay
// alive and untouched until wait() returns.
class Request {
 public:
  virtual ~Request() = default;
  virtual bool test() = 0;  // lets the transport progress; true once complete
  virtual void wait() = 0;  // DistributedError after the communicator's timeout
};

class Communicator {
 public:
  virtual ~Communicator() = default;
  virtual int rank() const = 0;
  virtual int size() const = 0;
  virtual std::string backend() const = 0;  // "local", "threads", "mpi", "gloo"

  // Every rank calls each collective with the same length, in the same order. Results are the
  // same bits on every rank.
  virtual void allreduce(std::span<float> data, ReduceOp op = ReduceOp::sum) = 0;
  virtual void allreduce(std::span<double> data, ReduceOp op = ReduceOp::sum) = 0;
  // A sum started now and finished by the request (gradient buckets overlap backward with it).
  // By default (backends without a non-blocking collective) the sum is done here, and the
  // request returned is complete.
  virtual std::unique_ptr<Request> start_allreduce(std::span<float> data);
  virtual void broadcast(std::span<std::byte> data, int root = 0) = 0;
  virtual void barrier() = 0;
  // Stops every rank of the job after a fatal error on this one (MPI_Abort); local: nothing.
  virtual void abort(int code) { (void)code; }

  // How long a collective waits for its peers before DistributedError ("rank 1 of 4: allreduce
  // of 1.2 MB waited 60 s for its peers..."): a rank that died or hangs. 0: forever.
  double timeout_seconds() const { return timeout_; }
  void set_timeout(double seconds) { timeout_ = seconds; }

 protected:
  double timeout_ = 60.0;
};

// One process: every collective is the identity.
std::shared_ptr<Communicator> local();

// n ranks inside this process, one communicator each, to be used from n threads (tests, and
// trying data parallelism without a launcher). Sums add in rank order, so every rank gets the
// same bits.
std::vector<std::shared_ptr<Communicator>> thread_group(int n);

// The communicator of the fit, evaluate or predict running on this thread (Model::distribute),
// or null: what layers that reduce over ranks themselves (BatchNormalization with
// synchronized=true) read. Set for its scope by ActiveScope.
Communicator* active();
class ActiveScope {
 public:
  explicit ActiveScope(Communicator* comm);
  ~ActiveScope();
  ActiveScope(const ActiveScope&) = delete;
  ActiveScope& operator=(const ActiveScope&) = delete;

 private:
  Communicator* previous_;
};

// How fit spreads work over ranks (Model::distribute).
struct DistributedOptions {
  // Gradients go out in buckets of about this many megabytes (DDP's bucket_cap_mb), last layers
  // first, each started as soon as backward has produced it.
  double bucket_mb = 25.0;
  // false (default): fit's batch_size is the global batch, split over the ranks, so that N ranks
  // take the same steps one process would. true: batch_size is each rank's (global = N x it).
  bool batch_per_rank = false;
  // Start each bucket while backward runs (true), or reduce every bucket after backward.
  bool overlap = true;
};

// What the gradient reduction did over the last fit (Model::distributed_stats).
struct ReducerStats {
  int64_t steps = 0;
  int buckets = 0;                 // per step
  int64_t bytes_per_step = 0;      // gradient bytes each rank reduces per step
  double backward_seconds = 0;     // backward passes, summed (from loss.backward to its end)
  double allreduce_seconds = 0;    // first bucket started to last bucket done, summed
  double exposed_seconds = 0;      // the part of allreduce_seconds after backward had finished, summed
  // The share of allreduce time that ran while backward was still computing:
  // 1 - exposed / allreduce (0 when nothing was reduced).
  double overlap() const { return allreduce_seconds > 0 ? 1.0 - exposed_seconds / allreduce_seconds : 0.0; }
};

// The rows of a global batch of n samples that rank r of `size` reads: [begin, begin + count).
// As even as possible, the first n % size ranks one more (some get none when n < size).
struct Share {
  int64_t begin, count;
};
Share share(int64_t n, int rank, int size);

}  // namespace lamina::distributed
