// Model's data-parallel side (distributed.hpp): the communicator, rank 0's weights sent to every
// rank, the metrics merged over ranks, and the gradient reduction of each step.
#include "distributed/reducer.hpp"
#include "lamina/model.hpp"

namespace lamina {

void Model::distribute(std::shared_ptr<distributed::Communicator> comm, distributed::DistributedOptions options) {
  if (!(options.bucket_mb > 0))
    throw ValueError("distribute: bucket_mb must be positive, got " + std::to_string(options.bucket_mb));
  comm_ = std::move(comm);
  dist_options_ = options;
  reducer_.reset();
}

distributed::ReducerStats Model::distributed_stats() const { return reducer_ ? reducer_->stats() : distributed::ReducerStats{}; }

void Model::broadcast_weights() {
  if (!is_distributed()) return;
  for (auto& [name, w] : named_weights()) {
    Tensor t = w;
    comm_->broadcast(std::as_writable_bytes(std::span<float>(t.data(), static_cast<size_t>(t.numel()))), 0);
  }
}

void Model::merge_metrics() {
  if (!is_distributed()) return;
  // Every rank's states side by side in one buffer (rank r fills its row, the sum gathers them).
  if (!metrics_ready()) prepare_metrics();  // a rank that had no samples yet
  const std::vector<Metric*> ms = metrics();
  std::vector<std::vector<double>> own;
  std::vector<double> lengths(ms.size());
  for (size_t i = 0; i < ms.size(); ++i) {
    own.push_back(ms[i]->state());
    lengths[i] = static_cast<double>(own.back().size());
  }
  comm_->allreduce(std::span<double>(lengths), distributed::ReduceOp::max);
  std::vector<size_t> offset(ms.size() + 1, 0);
  for (size_t i = 0; i < ms.size(); ++i) offset[i + 1] = offset[i] + static_cast<size_t>(lengths[i]);
  const size_t row = offset.back(), ranks = static_cast<size_t>(comm_->size()), me = static_cast<size_t>(comm_->rank());
  if (row == 0) return;
  std::vector<double> all(row * ranks, 0.0);
  for (size_t i = 0; i < ms.size(); ++i) std::copy(own[i].begin(), own[i].end(), all.begin() + static_cast<std::ptrdiff_t>(me * row + offset[i]));
  comm_->allreduce(std::span<double>(all));
  for (size_t i = 0; i < ms.size(); ++i) {
    if (lengths[i] == 0) continue;  // a metric that cannot merge keeps its own value
    std::vector<std::vector<double>> states;
    for (size_t r = 0; r < ranks; ++r) {
      const auto begin = all.begin() + static_cast<std::ptrdiff_t>(r * row + offset[i]);
      states.emplace_back(begin, begin + static_cast<std::ptrdiff_t>(lengths[i]));
    }
    ms[i]->merge_states(states);
  }
}

void Model::sync_stop() {
  double stop = stop_training ? 1.0 : 0.0;
  comm_->allreduce(std::span<double>(&stop, 1), distributed::ReduceOp::max);
  stop_training = stop > 0;
}

// loss.backward(), with the gradients averaged over ranks when distributed. A rank with no
// samples in the step (an undefined loss) still joins the reduction, with zeros.
void Model::backward_step(const Tensor& loss, const data::Batch& batch, const std::vector<Tensor>& params) {
  if (!is_distributed()) {
    loss.backward();
    return;
  }
  if (!reducer_ || !reducer_->serves(*comm_, params, dist_options_))
    reducer_ = std::make_shared<distributed::GradientReducer>(*comm_, params, dist_options_);
  const double weight = batch.global_size > 0 ? static_cast<double>(batch.size()) / static_cast<double>(batch.global_size)
                                              : 1.0 / comm_->size();
  reducer_->backward(loss, weight);
}

}  // namespace lamina
