// The batch-split training step of small convolutional networks: see batch_split.hpp.
#include "model/batch_split.hpp"

#include <omp.h>

#include <cstring>
#include <exception>
#include <optional>
#include <set>
#include <string>

#include "kernels/elementwise.hpp"
#include "lamina/model.hpp"

namespace lamina::detail {

std::shared_ptr<BatchSplitStep> BatchSplitStep::make(const Model& model, const std::vector<Tensor>& params,
                                                     int threads) {
  if (threads < 2 || !model.is_sequential() || model.is_distributed() || !model.compiled()) return nullptr;
  if (model.losses().size() != 1 || model.loss_weights().size() != 1 || model.loss_weights()[0] != 1.0 ||
      model.losses()[0].kind() == Loss::custom)
    return nullptr;
  static const std::set<std::string> kBatchFree = {"InputLayer",       "Reshape",
                                                   "Flatten",          "Conv2D",
                                                   "MaxPooling2D",     "AveragePooling2D",
                                                   "GlobalAveragePooling2D", "Dense",
                                                   "Activation"};
  bool conv = false;
  for (const auto& l : model.layers()) {
    const std::string kind = l->class_name();
    if (!kBatchFree.count(kind) || l->activity_regularizer() || l->regularization_loss().defined()) return nullptr;
    conv = conv || kind == "Conv2D";
  }
  if (!conv) return nullptr;
  return std::shared_ptr<BatchSplitStep>(new BatchSplitStep(model.layers(), model.losses()[0], params));
}

BatchSplitStep::BatchSplitStep(std::vector<std::shared_ptr<Layer>> layers, Loss loss, std::vector<Tensor> params)
    : layers_(std::move(layers)), loss_(std::move(loss)), params_(std::move(params)), redirect_(params_) {}

bool BatchSplitStep::accepts(const data::Batch& batch) const {
  return batch.x.size() == 1 && batch.y.size() == 1 && !batch.sample_weight.defined() && batch.global_size == 0 &&
         batch.size() >= 2 && batch.x[0].rank() >= 1 && batch.y[0].rank() >= 1 &&
         batch.x[0].dim(0) == batch.size() && batch.y[0].dim(0) == batch.size();
}

namespace {

// Rows [r0, r1) of t (first axis), sharing its storage.
Tensor rows(const Tensor& t, int64_t r0, int64_t r1) {
  std::vector<int64_t> dims = t.shape().dims();
  const int64_t row = t.numel() / dims[0];
  dims[0] = r1 - r0;
  return t.view(r0 * row, Shape(dims));
}

}  // namespace

void BatchSplitStep::share(const data::Batch& batch, int s, int64_t r0, int64_t r1) {
  // The kernels inside run on this thread alone (OpenMP's count is per thread).
  struct OneThread {
    int before = omp_get_max_threads();
    OneThread() { omp_set_num_threads(1); }
    ~OneThread() { omp_set_num_threads(before); }
  } one_thread;
  std::optional<GradientRedirect::Scope> redirected;
  if (s == 1) redirected.emplace(redirect_);
  Tensor h = rows(batch.x[0], r0, r1);
  for (const auto& l : layers_) h = l->call(h, true);
  Tensor loss = loss_(rows(batch.y[0], r0, r1), h);
  share_loss_[s] = loss.item();
  loss.backward(Tensor::full(loss.shape(), static_cast<float>(r1 - r0) / static_cast<float>(batch.size())));
  share_pred_[s] = h.detach();
}

std::pair<Tensor, Tensor> BatchSplitStep::run(const data::Batch& batch) {
  const int64_t n = batch.size(), half = n / 2;
  const int64_t bounds[3] = {0, half, n};
  redirect_.clear();
  std::exception_ptr error[2];
  // Each share on its own thread; on one thread if OpenMP gives only one (a nested region).
#pragma omp parallel num_threads(2)
  {
    const int t = omp_get_thread_num(), team = omp_get_num_threads();
    for (int s = t; s < 2; s += team) {
      try {
        share(batch, s, bounds[s], bounds[s + 1]);
      } catch (...) {
        error[s] = std::current_exception();
      }
    }
  }
  for (const std::exception_ptr& e : error)
    if (e) std::rethrow_exception(e);
  // Share 1's gradients into the weights' own.
  for (size_t i = 0; i < params_.size(); ++i) {
    const Tensor g = redirect_.grad(i);
    if (!g.defined()) continue;
    TensorImpl& p = *params_[i].impl();
    if (!p.grad.defined()) {
      p.grad = g.clone();
    } else if (p.grad_stale) {
      std::memcpy(p.grad.data(), g.data(), sizeof(float) * static_cast<size_t>(g.numel()));
    } else {
      kernels::add_into(g.data(), p.grad.data(), g.numel());
    }
    p.grad_stale = false;
  }
  // The prediction, share by share, and the batch's mean loss.
  Shape shape = share_pred_[0].shape();
  std::vector<int64_t> dims = shape.dims();
  dims[0] = n;
  Tensor pred = Tensor::empty(Shape(dims));
  const int64_t first = share_pred_[0].numel();
  std::memcpy(pred.data(), share_pred_[0].data(), sizeof(float) * static_cast<size_t>(first));
  std::memcpy(pred.data() + first, share_pred_[1].data(), sizeof(float) * static_cast<size_t>(share_pred_[1].numel()));
  const double loss = (share_loss_[0] * static_cast<double>(half) + share_loss_[1] * static_cast<double>(n - half)) /
                      static_cast<double>(n);
  share_pred_[0] = share_pred_[1] = Tensor();
  return {pred, Tensor::scalar(static_cast<float>(loss))};
}

}  // namespace lamina::detail
