// The gradient reduction of data-parallel training, as DDP's Reducer: the trainable weights are
// cut into buckets of about bucket_mb, last layers first; backward reports each weight whose
// gradient is complete (autograd's GradReadyHook), and a bucket whose weights are all done is
// started at once (Communicator::start_allreduce), in bucket order on every rank, so that the
// sums travel while backward computes the earlier layers. Each rank scales its gradients by its
// share of the step's samples first, so the sums are the gradients of the global batch's loss.
#pragma once

#include <chrono>
#include <memory>
#include <unordered_map>
#include <vector>

#include "lamina/distributed.hpp"
#include "lamina/tensor.hpp"

namespace lamina::distributed {

class GradientReducer {
 public:
  GradientReducer(Communicator& comm, std::vector<Tensor> params, const DistributedOptions& options);
  // Whether it was made for these weights (the trainable set changes between fits).
  bool serves(const Communicator& comm, const std::vector<Tensor>& params, const DistributedOptions& o) const;

  // loss.backward(), then every weight's gradient replaced by the sum over ranks of each rank's
  // gradient times its `weight` (its share of the step's samples). An undefined loss (a rank
  // with no samples in this step) contributes zeros.
  void backward(const Tensor& loss, double weight);

  const ReducerStats& stats() const { return stats_; }
  void reset_stats();

 private:
  struct Bucket {
    std::vector<size_t> params;  // indices into params_, last weight first
    size_t offset = 0, count = 0;  // floats of flat_
    size_t pending = 0;            // weights not yet ready this step
    std::unique_ptr<Request> request;
  };
  void ready(size_t param);  // copies the weight's scaled gradient into flat_, starts what it can
  void launch_ready();
  void finish();             // waits for every bucket, copies the sums back into the gradients

  using Clock = std::chrono::steady_clock;
  Communicator& comm_;
  std::vector<Tensor> params_;
  DistributedOptions options_;
  std::unordered_map<const TensorImpl*, size_t> index_;
  std::vector<size_t> bucket_of_, offset_;
  std::vector<char> done_;
  std::vector<float> flat_;
  std::vector<Bucket> buckets_;
  size_t next_launch_ = 0;
  float weight_ = 1.f;
  bool first_launched_ = false;
  Clock::time_point first_launch_, backward_end_;
  ReducerStats stats_;
};

// Replaces each tensor by its mean over the ranks, summed in double: tensors already equal on every
// rank stay bit for bit the same. fit uses it on the non-trainable weights (BatchNormalization's
// per-rank moving statistics) at each epoch's end, as Keras reads such variables (ON_READ, MEAN).
void average_over_ranks(Communicator& comm, const std::vector<Tensor>& tensors);

}  // namespace lamina::distributed
