// The batch-split training step of small convolutional networks: see batch_split.hpp.
#include "model/batch_split.hpp"

#include <omp.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <exception>
#include <optional>
#include <set>
#include <string>

#include "kernels/elementwise.hpp"  // add_into
#include "lamina/model.hpp"
#include "lamina/optimizers.hpp"
#include "ops/op_helpers.hpp"  // rows
#include "parallel.hpp"       // OneThread

namespace lamina::detail {

namespace {

// A Sequential of layers that treat each sample on its own, at least one a Conv2D.
bool batch_free(const Model& model) {
  if (!model.is_sequential()) return false;
  static const std::set<std::string> kBatchFree = {"InputLayer",       "Reshape",
                                                   "Flatten",          "Conv2D",
                                                   "MaxPooling2D",     "AveragePooling2D",
                                                   "GlobalAveragePooling2D", "Dense",
                                                   "Activation"};
  bool conv = false;
  for (const auto& l : model.layers()) {
    const std::string kind = l->class_name();
    if (!kBatchFree.count(kind) || l->activity_regularizer() || l->regularization_loss().defined()) return false;
    conv = conv || kind == "Conv2D";
  }
  return conv;
}

}  // namespace

bool BatchSplitStep::splits_inference(const Model& model) { return batch_free(model); }

void BatchSplitStep::predict(const Model& model, int64_t n, int64_t rows, int threads,
                             const std::function<Tensor(int64_t begin, int64_t count)>& input, Tensor& out) {
  const int64_t chunks = (n + rows - 1) / rows;
  const int64_t row = out.numel() / std::max<int64_t>(n, 1);
  std::vector<std::exception_ptr> errors(static_cast<size_t>(threads));
#pragma omp parallel num_threads(threads)
  {
    const int t = omp_get_thread_num(), team = omp_get_num_threads();
    const OneThread one_thread;
    const NoGradGuard no_grad;  // per thread
    try {
      for (int64_t c = t; c < chunks; c += team) {
        const int64_t begin = c * rows, count = std::min(rows, n - begin);
        Tensor h = input(begin, count);
        for (const auto& l : model.layers()) h = l->call(h, false);
        if (h.numel() != count * row)
          throw ShapeError("predict: a chunk of " + std::to_string(count) + " rows gave an output of shape " +
                           h.shape().str() + ", expected " + std::to_string(row) + " values per row");
        std::memcpy(out.data() + begin * row, h.data(), sizeof(float) * static_cast<size_t>(h.numel()));
      }
    } catch (...) {
      errors[static_cast<size_t>(t)] = std::current_exception();
    }
  }
  for (const std::exception_ptr& e : errors)
    if (e) std::rethrow_exception(e);
}

std::shared_ptr<BatchSplitStep> BatchSplitStep::make(const Model& model, const std::vector<Tensor>& params,
                                                     int threads) {
  if (threads < 2 || model.is_distributed() || !model.compiled()) return nullptr;
  if (model.losses().size() != 1 || model.loss_weights().size() != 1 || model.loss_weights()[0] != 1.0 ||
      model.losses()[0].kind() == Loss::custom)
    return nullptr;
  if (!batch_free(model)) return nullptr;
  // Every weight backward writes must be one of params: a frozen one requires no grad.
  std::set<const TensorImpl*> trained;
  for (const Tensor& p : params) trained.insert(p.impl());
  for (const auto& [name, w] : model.named_weights())
    if (w.requires_grad() && !trained.count(w.impl())) return nullptr;
  return std::shared_ptr<BatchSplitStep>(new BatchSplitStep(model.layers(), model.losses()[0], params, threads));
}

BatchSplitStep::BatchSplitStep(std::vector<std::shared_ptr<Layer>> layers, Loss loss, std::vector<Tensor> params,
                               int parts)
    : layers_(std::move(layers)), loss_(std::move(loss)), params_(std::move(params)), parts_(parts) {
  for (int s = 1; s < parts_; ++s) redirects_.emplace_back(params_);
}

bool BatchSplitStep::accepts(const data::Batch& batch) const {
  return batch.x.size() == 1 && batch.y.size() == 1 && !batch.sample_weight.defined() && batch.global_size == 0 &&
         batch.size() >= 2 * kMinRows && batch.x[0].rank() >= 1 && batch.y[0].rank() >= 1 &&
         batch.x[0].dim(0) == batch.size() && batch.y[0].dim(0) == batch.size() &&
         (!batch.x_pending || (batch.dataset && static_cast<int64_t>(batch.indices.size()) == batch.size()));
}

void BatchSplitStep::share(const data::Batch& batch, size_t s, int64_t r0, int64_t r1) {
  const OneThread one_thread;
  std::optional<GradientRedirect::Scope> redirected;
  if (s > 0) redirected.emplace(redirects_[s - 1]);
  Tensor h = rows(batch.x[0], r0, r1 - r0);
  if (batch.x_pending) {  // this share's samples into its rows of x, gathered on the core that reads them
    float* x = h.data();
    batch.dataset->gather_parts(batch.indices.subspan(static_cast<size_t>(r0), static_cast<size_t>(r1 - r0)),
                                std::span<float* const>(&x, 1), {});
  }
  for (const auto& l : layers_) h = l->call(h, true);
  Tensor loss = loss_(rows(batch.y[0], r0, r1 - r0), h);
  shares_[s].loss = loss.item();
  loss.backward(Tensor::full(loss.shape(), static_cast<float>(r1 - r0) / static_cast<float>(batch.size())));
  shares_[s].pred = h.detach();
  // The same share of the next batch starts coming into this core's cache.
  if (batch.x_pending && !batch.next_indices.empty()) {
    const auto next = static_cast<int64_t>(batch.next_indices.size()), n = batch.size();
    const int64_t begin = next * r0 / n, end = next * r1 / n;
    batch.dataset->prefetch(batch.next_indices.subspan(static_cast<size_t>(begin), static_cast<size_t>(end - begin)));
  }
}

bool BatchSplitStep::can_update(size_t parts, double loss) const {
  if (!std::isfinite(loss)) return false;  // the caller diagnoses it with the weights that gave it
  for (const Share& sh : shares_)
    if (sh.error) return false;
  for (size_t i = 0; i < params_.size(); ++i) {
    const TensorImpl& impl = *params_[i].impl();
    if (!impl.grad.defined() || impl.grad_stale) return false;
    for (size_t s = 1; s < parts; ++s)
      if (!redirects_[s - 1].grad(i).defined()) return false;
  }
  return true;
}

void BatchSplitStep::update_block(Optimizer& optimizer, size_t parts, int t, int team) {
  for (size_t i = 0; i < params_.size(); ++i) {
    TensorImpl& impl = *params_[i].impl();
    const int64_t n = params_[i].numel();
    const int64_t chunk = ((n + team - 1) / team + 15) / 16 * 16;  // whole cache lines
    const int64_t begin = std::min(n, t * chunk), end = std::min(n, begin + chunk);
    if (end == begin) continue;
    float* g = impl.grad.data() + begin;
    for (size_t s = 1; s < parts; ++s) kernels::add_into(redirects_[s - 1].grad(i).data() + begin, g, end - begin);
    optimizer.update_part(i, begin, end - begin, impl.data + begin, g);
  }
}

BatchSplitStep::Result BatchSplitStep::run(const data::Batch& batch, Optimizer* optimizer) {
  const int64_t n = batch.size();
  const auto parts = static_cast<size_t>(std::clamp<int64_t>(n / kMinRows, 2, parts_));
  std::vector<int64_t> bounds;
  for (size_t s = 0; s <= parts; ++s) bounds.push_back(n * static_cast<int64_t>(s) / static_cast<int64_t>(parts));
  for (GradientRedirect& r : redirects_) r.clear();
  shares_.assign(parts, Share{});
  auto batch_loss = [&] {
    double loss = 0;
    for (size_t s = 0; s < parts; ++s) loss += shares_[s].loss * static_cast<double>(bounds[s + 1] - bounds[s]);
    return loss / static_cast<double>(n);
  };
  bool updated = false;
  // Share s on thread s; several on one thread if OpenMP gives fewer (a nested region).
#pragma omp parallel num_threads(static_cast<int>(parts))
  {
    const auto t = static_cast<size_t>(omp_get_thread_num()), team = static_cast<size_t>(omp_get_num_threads());
    for (size_t s = t; s < parts; s += team) {
      try {
        share(batch, s, bounds[s], bounds[s + 1]);
      } catch (...) {
        shares_[s].error = std::current_exception();
      }
    }
    if (optimizer != nullptr) {  // every thread alike: optimizer and team are the same for all
#pragma omp barrier
#pragma omp single
      {
        updated = can_update(parts, batch_loss());
        if (updated) optimizer->start_step(params_);
      }  // (a barrier)
      if (updated) update_block(*optimizer, parts, static_cast<int>(t), static_cast<int>(team));
    }
  }
  for (const Share& sh : shares_)
    if (sh.error) std::rethrow_exception(sh.error);
  // Not updated: the other shares' gradients into the weights' own, in order, for the caller.
  if (!updated)
    for (size_t i = 0; i < params_.size(); ++i)
      for (size_t s = 1; s < parts; ++s)
        if (const Tensor g = redirects_[s - 1].grad(i); g.defined()) accumulate(*params_[i].impl(), g);
  // The prediction, share by share, and the batch's mean loss.
  std::vector<int64_t> dims = shares_[0].pred.shape().dims();
  dims[0] = n;
  Tensor pred = Tensor::empty(Shape(dims));
  int64_t at = 0;
  for (size_t s = 0; s < parts; ++s) {
    const Tensor& part = shares_[s].pred;
    std::memcpy(pred.data() + at, part.data(), sizeof(float) * static_cast<size_t>(part.numel()));
    at += part.numel();
  }
  const double loss = batch_loss();
  shares_.clear();
  return {pred, Tensor::scalar(static_cast<float>(loss)), updated};
}

}  // namespace lamina::detail
