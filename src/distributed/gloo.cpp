// The Gloo backend: TCP between every pair of ranks, found through a FileStore rendezvous (a
// directory every rank sees), for runs without mpirun. Collectives are gloo's own: ring
// allreduce, one-to-all broadcast, barrier. Gloo has no non-blocking collective in this version,
// so start_allreduce() finishes the sum before it returns (no overlap with backward on Gloo).
#include <gloo/allreduce.h>
#include <gloo/barrier.h>
#include <gloo/broadcast.h>
#include <gloo/common/error.h>
#include <gloo/math.h>
#include <gloo/rendezvous/context.h>
#include <gloo/rendezvous/file_store.h>
#include <gloo/rendezvous/prefix_store.h>
#include <gloo/transport/tcp/device.h>

#include <chrono>
#include <csignal>
#include <filesystem>

#include "distributed/backend_text.hpp"
#include "lamina/distributed_backends.hpp"

namespace lamina::distributed {

namespace {

using detail::bytes_text;
using detail::rank_text;

// A rank that dies closes its sockets, and Gloo's next write to one raises SIGPIPE, whose
// default action ended the surviving rank (exit status 141) before it could say which peer had
// gone: run.sh's gloo_2 case failed 2 runs in 3 under load. Ignored, the write fails with EPIPE
// and the collective throws a DistributedError, as a lost MPI peer does. Only a SIGPIPE left at
// its default is changed: a handler the program set stays.
void ignore_sigpipe() {
  struct sigaction current {};
  if (sigaction(SIGPIPE, nullptr, &current) == 0 && current.sa_handler == SIG_DFL) std::signal(SIGPIPE, SIG_IGN);
}

class GlooCommunicator : public Communicator {
 public:
  explicit GlooCommunicator(std::shared_ptr<gloo::Context> context) : context_(std::move(context)) {}

  int rank() const override { return context_->rank; }
  int size() const override { return context_->size; }
  std::string backend() const override { return "gloo"; }

  void allreduce(std::span<float> data, ReduceOp op) override { reduce(data, op); }
  void allreduce(std::span<double> data, ReduceOp op) override { reduce(data, op); }
  // start_allreduce: Communicator's, synchronous (see the top of this file).

  void broadcast(std::span<std::byte> data, int root) override {
    const std::string what = "broadcast of " + bytes_text(data.size()) + " from rank " + std::to_string(root);
    if (root < 0 || root >= size())
      throw DistributedError(rank_text(rank(), size()) + ": " + what + ": there is no rank " + std::to_string(root));
    if (data.empty()) return;  // the same length on every rank: nothing to send anywhere
    run(what, [&] {
      gloo::BroadcastOptions options(context_);
      options.setOutput(reinterpret_cast<uint8_t*>(data.data()), data.size());
      options.setRoot(root);
      options.setTimeout(timeout());
      gloo::broadcast(options);
    });
  }

  void barrier() override {
    run("barrier", [&] {
      gloo::BarrierOptions options(context_);
      options.setTimeout(timeout());
      gloo::barrier(options);
    });
  }

 private:
  template <class T>
  void reduce(std::span<T> data, ReduceOp op) {
    if (data.empty()) return;
    run("allreduce of " + bytes_text(data.size_bytes()), [&] {
      gloo::AllreduceOptions options(context_);
      options.setAlgorithm(gloo::AllreduceOptions::Algorithm::RING);
      options.setOutput(data.data(), data.size());  // in place: the output is the input
      using Reduce = void (*)(void*, const void*, const void*, size_t);
      options.setReduceFunction(op == ReduceOp::sum ? static_cast<Reduce>(&gloo::sum<T>)
                                                    : static_cast<Reduce>(&gloo::max<T>));
      options.setTimeout(timeout());
      gloo::allreduce(options);
    });
  }

  // gloo's own timeout (0 = none, as ours), from timeout_seconds() at the time of the call.
  std::chrono::milliseconds timeout() const {
    return std::chrono::milliseconds(static_cast<int64_t>(timeout_ * 1000));
  }

  // Runs one gloo collective; its exceptions become DistributedError. After one, the pairs are in
  // an unknown state: every later collective refuses to start.
  template <class F>
  void run(const std::string& what, F&& collective) {
    if (!failure_.empty())
      throw DistributedError(rank_text(rank(), size()) + ": cannot start " + what + ": an earlier collective failed (" +
                             failure_ + "); the job has to stop");
    try {
      collective();
    } catch (const gloo::Exception& e) {
      const std::string message = e.what();
      const DistributedError error =
          message.find("Timed out") != std::string::npos
              ? detail::timeout_error(rank(), size(), what, timeout_)
              : DistributedError(rank_text(rank(), size()) + ": " + what + " failed in gloo: " + message);
      failure_ = error.what();
      throw error;
    }
  }

  std::shared_ptr<gloo::Context> context_;
  std::string failure_;
};

}  // namespace

std::shared_ptr<Communicator> gloo(const GlooOptions& options) {
  const std::string where = "gloo (rank " + std::to_string(options.rank) + " of " + std::to_string(options.size) + ")";
  if (options.size < 1 || options.rank < 0 || options.rank >= options.size)
    throw DistributedError(where + ": the rank must be in [0, size) and the size at least 1");
  if (options.rendezvous.empty() || !std::filesystem::is_directory(options.rendezvous))
    throw DistributedError(where + ": the rendezvous '" + options.rendezvous +
                           "' is not a directory (every rank needs the same directory, readable and writable by all)");
  // Each gloo() call in a process rendezvous under its own prefix, so that a second communicator
  // (called in the same order on every rank) does not read the first one's addresses.
  static int calls = 0;
  const std::string prefix = "lamina/" + std::to_string(calls++);
  ignore_sigpipe();
  try {
    gloo::transport::tcp::attr attr;
    attr.iface = options.interface;  // empty: gloo binds the address of this host's name
    auto device = gloo::transport::tcp::CreateDevice(attr);
    gloo::rendezvous::FileStore files(options.rendezvous);
    gloo::rendezvous::PrefixStore store(prefix, files);
    auto context = std::make_shared<gloo::rendezvous::Context>(options.rank, options.size);
    context->setTimeout(std::chrono::seconds(60));
    context->connectFullMesh(store, device);
    return std::make_shared<GlooCommunicator>(std::move(context));
  } catch (const gloo::Exception& e) {
    throw DistributedError(where + ": could not connect to the other ranks through '" + options.rendezvous +
                           "': " + e.what());
  }
}

}  // namespace lamina::distributed
