#include "distributed/reducer.hpp"

#include <algorithm>

#include "lamina/autograd.hpp"

namespace lamina::distributed {

namespace {
double seconds(std::chrono::steady_clock::duration d) { return std::chrono::duration<double>(d).count(); }
}  // namespace

GradientReducer::GradientReducer(Communicator& comm, std::vector<Tensor> params, const DistributedOptions& options)
    : comm_(comm), params_(std::move(params)), options_(options) {
  const auto cap = static_cast<size_t>(std::max(1.0, options.bucket_mb * 1024 * 1024 / sizeof(float)));
  bucket_of_.resize(params_.size());
  offset_.resize(params_.size());
  done_.resize(params_.size());
  size_t offset = 0;
  for (size_t k = params_.size(); k-- > 0;) {  // last layers first: backward finishes them first
    if (buckets_.empty() || buckets_.back().count >= cap) buckets_.push_back(Bucket{.offset = offset});
    Bucket& b = buckets_.back();
    const auto n = static_cast<size_t>(params_[k].numel());
    b.params.push_back(k);
    b.count += n;
    bucket_of_[k] = buckets_.size() - 1;
    offset_[k] = offset;
    offset += n;
    index_[params_[k].impl()] = k;
  }
  flat_.resize(offset);
  stats_.buckets = static_cast<int>(buckets_.size());
  stats_.bytes_per_step = static_cast<int64_t>(offset * sizeof(float));
}

bool GradientReducer::serves(const Communicator& comm, const std::vector<Tensor>& params,
                             const DistributedOptions& o) const {
  if (&comm != &comm_ || params.size() != params_.size() || o.bucket_mb != options_.bucket_mb ||
      o.overlap != options_.overlap)
    return false;
  for (size_t i = 0; i < params.size(); ++i)
    if (params[i].impl() != params_[i].impl()) return false;
  return true;
}

void GradientReducer::reset_stats() {
  const ReducerStats fresh{.buckets = stats_.buckets, .bytes_per_step = stats_.bytes_per_step};
  stats_ = fresh;
}

void GradientReducer::ready(size_t k) {
  if (done_[k]) return;
  done_[k] = 1;
  const TensorImpl& impl = *params_[k].impl();
  float* out = flat_.data() + offset_[k];
  const auto n = static_cast<size_t>(params_[k].numel());
  if (!impl.grad.defined() || impl.grad_stale || weight_ == 0.f) {
    std::fill(out, out + n, 0.f);  // no gradient reached it this step: it contributes zeros
  } else {
    const float* g = impl.grad.data();
    for (size_t i = 0; i < n; ++i) out[i] = g[i] * weight_;
  }
  --buckets_[bucket_of_[k]].pending;
  if (options_.overlap) launch_ready();
}

void GradientReducer::launch_ready() {
  // In bucket order only, so that every rank starts the same collectives in the same order.
  while (next_launch_ < buckets_.size() && buckets_[next_launch_].pending == 0) {
    Bucket& b = buckets_[next_launch_++];
    if (!first_launched_) {
      first_launched_ = true;
      first_launch_ = Clock::now();
    }
    b.request = comm_.start_allreduce(std::span<float>(flat_.data() + b.offset, b.count));
  }
  // Let the transport move the buckets in flight along (MPI progresses inside its calls).
  for (size_t i = 0; i < next_launch_; ++i)
    if (buckets_[i].request) buckets_[i].request->test();
}

void GradientReducer::backward(const Tensor& loss, double weight) {
  weight_ = static_cast<float>(weight);
  std::fill(done_.begin(), done_.end(), 0);
  for (Bucket& b : buckets_) b.pending = b.params.size();
  next_launch_ = 0;
  first_launched_ = false;
  const Clock::time_point start = Clock::now();
  if (loss.defined()) {
    lamina::backward(loss, [&](const TensorImpl& leaf) {
      if (const auto it = index_.find(&leaf); it != index_.end()) ready(it->second);
    });
  }
  backward_end_ = Clock::now();
  stats_.backward_seconds += seconds(backward_end_ - start);
  // Weights the loss did not reach (or all of them, without overlap or without samples).
  for (size_t k = params_.size(); k-- > 0;) ready(k);
  launch_ready();
  finish();
  ++stats_.steps;
}

void GradientReducer::finish() {
  if (buckets_.empty()) return;
  for (Bucket& b : buckets_) {
    b.request->wait();
    b.request.reset();
  }
  // Allreduce time: from the first bucket's start to the last one's end; exposed: the part of it
  // after backward had finished (all of it without overlap).
  const Clock::time_point end = Clock::now();
  stats_.allreduce_seconds += seconds(end - first_launch_);
  stats_.exposed_seconds += seconds(end - std::max(backward_end_, first_launch_));
  for (size_t k = 0; k < params_.size(); ++k) {
    TensorImpl& impl = *params_[k].impl();
    if (!impl.grad.defined()) impl.grad = Tensor::empty(impl.shape);
    const float* in = flat_.data() + offset_[k];
    std::copy(in, in + params_[k].numel(), impl.grad.data());
    impl.grad_stale = false;
  }
}

void average_over_ranks(Communicator& comm, const std::vector<Tensor>& tensors) {
  size_t total = 0;
  for (const Tensor& t : tensors) total += static_cast<size_t>(t.numel());
  if (total == 0 || comm.size() == 1) return;
  std::vector<double> sums;
  sums.reserve(total);
  for (const Tensor& t : tensors) sums.insert(sums.end(), t.data(), t.data() + t.numel());
  comm.allreduce(std::span<double>(sums));
  const double n = comm.size();
  size_t at = 0;
  for (const Tensor& t : tensors) {
    float* out = t.impl()->data;
    for (int64_t i = 0; i < t.numel(); ++i) out[i] = static_cast<float>(sums[at++] / n);
  }
}

}  // namespace lamina::distributed
