// compile, fit, evaluate, predict. A training step: gather a batch into reused buffers, zero
// the gradients, forward, loss, backward, optimizer step, metrics; then the callbacks.
#include <algorithm>
#include <chrono>
#include <cmath>
#include <exception>
#include <functional>
#include <iostream>
#include <numeric>

#include "distributed/reducer.hpp"
#include "model/batch_split.hpp"
#include "model/dense_chain.hpp"
#include "lamina/autograd.hpp"
#include "lamina/model.hpp"
#include "lamina/runtime.hpp"
#include "ops/op_helpers.hpp"  // rows

namespace lamina {

namespace {

Shape with_batch(int64_t batch, const Shape& sample) {
  std::vector<int64_t> dims{batch};
  dims.insert(dims.end(), sample.begin(), sample.end());
  return Shape(dims);
}

// The memory for a pass over n samples in batches of bs: the storage cache keeps the buffers of
// a smaller last batch beside the full ones, so its activations count too.
MemoryEstimate pass_estimate(const Model& model, int64_t n, int64_t bs, bool training) {
  MemoryEstimate e = model.estimate_memory(std::min(bs, n), training);
  if (n > bs && n % bs != 0) {
    e.last_batch_size = n % bs;
    e.activations += model.estimate_memory(e.last_batch_size, training).activations;
  }
  return e;
}

}  // namespace

void Model::compile(std::shared_ptr<Optimizer> optimizer, Loss loss, std::vector<MetricSpec> metrics) {
  compile(std::move(optimizer), std::move(loss), CompileOptions{.metrics = std::move(metrics)});
}

void Model::compile(std::shared_ptr<Optimizer> optimizer, Loss loss, CompileOptions options) {
  // One loss for every output, as Keras does with a single loss.
  const size_t outputs = num_outputs();
  compile(std::move(optimizer), std::vector<Loss>(outputs, loss), std::move(options));
}

void Model::compile(std::shared_ptr<Optimizer> optimizer, std::vector<Loss> losses, CompileOptions o) {
  if (!optimizer) throw ValueError("compile: optimizer is null");
  const size_t outputs = num_outputs();
  if (losses.size() != outputs)
    throw ValueError("compile: model '" + name_ + "' has " + std::to_string(outputs) + " output" +
                     (outputs == 1 ? "" : "s") + ", given " + std::to_string(losses.size()) + " losses");
  if (o.loss_weights.empty()) o.loss_weights.assign(outputs, 1.0);
  if (o.loss_weights.size() != outputs)
    throw ValueError("compile: " + std::to_string(o.loss_weights.size()) + " loss_weights for " +
                     std::to_string(outputs) + " outputs");
  for (double w : o.loss_weights)
    if (!std::isfinite(w) || w < 0) throw ValueError("compile: loss weight " + std::to_string(w) + " must be finite and >= 0");
  for (const auto* list : {&o.metrics, &o.weighted_metrics})
    for (const MetricSpec& m : *list) {
      for (const Loss& l : losses) {
        std::unique_ptr<Metric> made = m.make(l);  // validates names now
        Metric* metric = made ? made.get() : m.shared();
        if (list == &o.weighted_metrics && !metric->supports_sample_weight())
          throw ValueError("compile: metric '" + metric->name() + "' cannot weigh samples; list it in metrics, not weighted_metrics");
      }
      if (m.shared() && outputs > 1)
        throw ValueError("compile: a shared metric object ('" + m.shared()->name() + "') serves one output; model '" +
                         name_ + "' has " + std::to_string(outputs) + ": pass the metric by value");
    }
  optimizer_ = std::move(optimizer);
  losses_ = std::move(losses);
  loss_weights_ = std::move(o.loss_weights);
  metric_specs_ = std::move(o.metrics);
  weighted_metric_specs_ = std::move(o.weighted_metrics);
  compiled_metrics_.clear();
}

void Model::compile(const std::string& optimizer, Loss loss, std::vector<MetricSpec> metrics) {
  compile(optimizer_from_config(Json(optimizer)), std::move(loss), std::move(metrics));
}

Optimizer& Model::optimizer() const {
  if (!optimizer_) throw ValueError("model '" + name_ + "' is not compiled: call compile(optimizer, loss, metrics)");
  return *optimizer_;
}

const std::vector<Loss>& Model::losses() const {
  if (losses_.empty()) throw ValueError("model '" + name_ + "' is not compiled: call compile(optimizer, loss, metrics)");
  return losses_;
}

const Loss& Model::loss() const { return losses().front(); }

std::vector<std::string> Model::metric_names() const {
  std::vector<std::string> names;
  for (const MetricSpec& m : metric_specs_)
    if (m.is_name()) names.push_back(m.name());
  return names;
}

std::string Model::output_log_name(size_t output, const std::string& what) const {
  if (losses_.size() <= 1) return what;
  return output_names()[output] + "_" + what;  // Keras: "dense_1_loss", "dense_1_accuracy"
}

// --- the compiled state a step uses: losses, trackers, metrics ----------------------------------------

void Model::prepare_metrics() {
  compiled_metrics_.clear();
  loss_part_trackers_.clear();
  if (losses_.size() > 1)
    for (size_t o = 0; o < losses_.size(); ++o)
      loss_part_trackers_.emplace_back(output_log_name(o, "loss"));
  std::set<std::string> taken;
  for (const auto* list : {&metric_specs_, &weighted_metric_specs_})
    for (size_t o = 0; o < losses_.size(); ++o)
      for (const MetricSpec& m : *list) {
        std::shared_ptr<Metric> metric = m.make(losses_[o]);
        if (!metric) metric = std::shared_ptr<Metric>(std::shared_ptr<Metric>{}, m.shared());  // shared, not owned
        std::string name = output_log_name(o, metric->name());
        // Keras names a weighted metric that clashes with an unweighted one "weighted_<name>".
        if (list == &weighted_metric_specs_ && taken.count(name)) name = output_log_name(o, "weighted_" + metric->name());
        taken.insert(name);
        compiled_metrics_.push_back({o, std::move(name), std::move(metric), list == &weighted_metric_specs_});
      }
  for (auto& m : compiled_metrics_) m.metric->reset_state();  // a shared object may hold an earlier run's state
}

bool Model::metrics_ready() const {
  return loss_part_trackers_.size() == (losses_.size() > 1 ? losses_.size() : 0) &&
         compiled_metrics_.size() == (metric_specs_.size() + weighted_metric_specs_.size()) * losses_.size();
}

std::vector<Metric*> Model::metrics() {
  std::vector<Metric*> out{&loss_tracker_};
  for (Mean& t : loss_part_trackers_) out.push_back(&t);
  for (auto& m : compiled_metrics_) out.push_back(m.metric.get());
  return out;
}

void Model::reset_metrics() {
  for (Metric* m : metrics()) m->reset_state();
}

void Model::zero_grad(bool set_to_none) {
  for (Tensor p : trainable_weights()) p.zero_grad(set_to_none);
}

Tensor Model::compute_loss(const data::Batch& batch, const std::vector<Tensor>& pred) {
  const std::vector<Loss>& ls = losses();
  if (batch.y.size() != ls.size() || pred.size() != ls.size())
    throw ValueError("compute_loss: model '" + name_ + "' has " + std::to_string(ls.size()) + " losses, given " +
                     std::to_string(batch.y.size()) + " targets and " + std::to_string(pred.size()) + " predictions");
  last_loss_parts_.clear();
  Tensor total;
  for (size_t o = 0; o < ls.size(); ++o) {
    Tensor l = ls[o](batch.y[o], pred[o], batch.sample_weight);
    if (ls.size() > 1) last_loss_parts_.push_back(l.item());
    if (!(ls.size() == 1 && loss_weights_[0] == 1.0)) l = mul(l, static_cast<float>(loss_weights_[o]));
    total = total.defined() ? add(total, l) : l;
  }
  // Keras adds the layers' regularization losses (model.losses) to the loss it minimizes and logs.
  if (Tensor penalty = regularization_loss(); penalty.defined()) total = add(total, penalty);
  return total;
}

void Model::update_metrics(const data::Batch& batch, const std::vector<Tensor>& pred, const Tensor& loss) {
  if (!metrics_ready()) prepare_metrics();
  const auto n = static_cast<double>(batch.size());
  loss_tracker_.update_state(static_cast<double>(loss.item()), n);
  for (size_t o = 0; o < last_loss_parts_.size() && o < loss_part_trackers_.size(); ++o)
    loss_part_trackers_[o].update_state(static_cast<double>(last_loss_parts_[o]), n);
  for (auto& m : compiled_metrics_)
    m.metric->update_state(batch.y[m.output], pred[m.output], m.weighted ? batch.sample_weight : Tensor());
}

Logs Model::metrics_result() const {
  Logs logs;
  logs.set("loss", loss_tracker_.result());
  for (const Mean& t : loss_part_trackers_) logs.set(t.name(), t.result());
  for (const auto& m : compiled_metrics_) logs.set(m.name, m.metric->result());
  return logs;
}

namespace {

// Whether a layer of the model (of a nested model too) is a synchronized BatchNormalization, whose
// training calls are collectives that every rank must join.
bool has_synchronized_batch_norm(const Model& model) {
  for (const auto& l : model.layers()) {
    if (const auto* bn = dynamic_cast<const layers::BatchNormalization*>(l.get()); bn && bn->options().synchronized)
      return true;
    if (const auto* inner = dynamic_cast<const Model*>(l.get()); inner && has_synchronized_batch_norm(*inner))
      return true;
  }
  return false;
}

// The non-trainable weights (per-rank BatchNormalization statistics) averaged over the ranks, so
// that every rank holds the same model after each epoch.
void average_state(const Model& model, distributed::Communicator& comm) {
  const std::vector<std::pair<std::string, Tensor>> named = model.named_weights();
  const std::vector<bool> trainable = model.trainable_mask();
  std::vector<Tensor> state;
  for (size_t i = 0; i < named.size() && i < trainable.size(); ++i)
    if (!trainable[i]) state.push_back(named[i].second);
  distributed::average_over_ranks(comm, state);
}

// 0, as a function of the predictions of an empty batch: its backward reaches every layer.
Tensor zero_loss(const std::vector<Tensor>& pred) {
  Tensor total;
  for (const Tensor& p : pred) total = total.defined() ? add(total, sum(p)) : sum(p);
  return total;
}

// The values of a batch whose x fit left to the step (data::Batch::x_pending).
void gather_pending_x(const data::Batch& batch) {
  std::vector<float*> x;
  for (const Tensor& t : batch.x) x.push_back(t.impl()->data);
  batch.dataset->gather_parts(batch.indices, x, {});
}

}  // namespace

Logs Model::train_step(const data::Batch& batch) {
  Optimizer& opt = optimizer();
  const std::vector<Tensor> fresh = train_params_.empty() ? trainable_weights() : std::vector<Tensor>{};
  const std::vector<Tensor>& params = train_params_.empty() ? fresh : train_params_;
  for (Tensor p : params) p.zero_grad(/*set_to_none=*/false);  // lazily: backward overwrites
  // A data-parallel rank without samples in this step takes the others' step: it joins the
  // gradient reduction with zeros (an undefined loss), and runs forward and backward on its empty
  // batch only when a synchronized BatchNormalization's collectives need every rank.
  const bool empty = batch.size() == 0;
  if (!empty && dense_chain_ && dense_chain_->accepts(batch)) return chain_step(batch);
  if (!empty && batch_split_ && batch_split_->accepts(batch)) return split_step(batch);
  if (batch.x_pending) gather_pending_x(batch);
  std::vector<Tensor> pred;
  Tensor loss;
  if (!empty || has_synchronized_batch_norm(*this)) {
    pred = run(batch.x, {}, true).values;
    loss = empty ? zero_loss(pred) : compute_loss(batch, pred);
  }
  backward_step(loss, batch, params);
  // The first non-finite loss: find where it came from while the weights are still the ones
  // that produced it (once per fit, so the steady state pays one isfinite per step).
  if (!empty && !std::isfinite(loss.item()) && divergence_.empty()) {
    divergence_ = diagnose_non_finite(batch.x, batch.y);
    if (divergence_.empty()) divergence_ = "no layer reproduced a non-finite value on a second pass";
  }
  opt.step(params);
  apply_constraints();  // Keras: kernel_constraint etc. after each update
  if (!empty) update_metrics(batch, pred, loss);
  return metrics_result();
}

// train_step for a Dense chain, on the cores that share its layers (model/dense_chain.hpp).
Logs Model::chain_step(const data::Batch& batch) {
  auto [pred, loss] = dense_chain_->forward(batch);
  if (!std::isfinite(loss.item()) && divergence_.empty()) {  // as train_step, before the update
    if (batch.x_pending) gather_pending_x(batch);
    divergence_ = diagnose_non_finite(batch.x, batch.y);
    if (divergence_.empty()) divergence_ = "no layer reproduced a non-finite value on a second pass";
  }
  dense_chain_->backward();
  last_loss_parts_.clear();
  update_metrics(batch, {pred}, loss);
  return metrics_result();
}

// train_step for a small CNN, its batch split over two cores (model/batch_split.hpp).
Logs Model::split_step(const data::Batch& batch) {
  Optimizer& opt = optimizer();
  auto [pred, loss, updated] = batch_split_->run(batch, opt.clips() ? nullptr : &opt);
  if (!std::isfinite(loss.item()) && divergence_.empty()) {  // as train_step, before the update
    if (batch.x_pending) gather_pending_x(batch);
    divergence_ = diagnose_non_finite(batch.x, batch.y);
    if (divergence_.empty()) divergence_ = "no layer reproduced a non-finite value on a second pass";
  }
  if (!updated) opt.step(train_params_);
  apply_constraints();
  last_loss_parts_.clear();
  update_metrics(batch, {pred}, loss);
  return metrics_result();
}

Logs Model::test_step(const data::Batch& batch) {
  const std::vector<Tensor> pred = run(batch.x, {}, false).values;
  update_metrics(batch, pred, compute_loss(batch, pred));
  return metrics_result();
}

void Model::check_dataset(const data::Dataset& data, const char* where) const {
  const size_t outputs = num_outputs();
  if (data.target_shapes().size() != outputs)
    throw ValueError(std::string(where) + ": the data has " + std::to_string(data.target_shapes().size()) + " target" +
                     (data.target_shapes().size() == 1 ? "" : "s") + ", model '" + name_ + "' has " +
                     std::to_string(outputs) + " output" + (outputs == 1 ? "" : "s"));
}

namespace {

// A Dataset as a stream of batches: rows of `order` (shuffled by fit between epochs, or the
// identity), batch by batch, with their sample weights when there are some.
class DatasetSource : public data::BatchSource {
 public:
  // With ranks > 1 each batch_size rows of `order` are a global batch, of which this rank reads
  // its share (distributed::share).
  DatasetSource(const data::Dataset& d, int64_t batch_size, Tensor weights = Tensor(), int rank = 0, int ranks = 1)
      : d_(d), bs_(std::min(batch_size, std::max<int64_t>(d.size(), 1))), weights_(std::move(weights)),
        order(static_cast<size_t>(d.size())), rank_(rank), ranks_(ranks) {
    std::iota(order.begin(), order.end(), 0);
  }
  std::vector<Shape> input_shapes() const override { return d_.input_shapes(); }
  std::vector<Shape> target_shapes() const override { return d_.target_shapes(); }
  std::optional<int64_t> steps_per_epoch() const override { return (rows() + bs_ - 1) / bs_; }
  void start_epoch(int epoch, int64_t skip) override {
    if (on_epoch && skip == 0) on_epoch(epoch);
    pos_ = std::min(skip * bs_, rows());
  }
  bool next(data::Batch& b) override {
    if (pos_ >= rows()) return false;
    const int64_t global = std::min(bs_, rows() - pos_);
    const distributed::Share mine = distributed::share(global, rank_, ranks_);
    const int64_t n = mine.count;
    const std::span<const int64_t> idx(order.data() + pos_ + mine.begin, static_cast<size_t>(n));
    pos_ += global;
    b.global_size = ranks_ > 1 ? global : 0;
    b.dataset = d_.input_shapes().size() == 1 ? &d_ : nullptr;
    b.indices = idx;
    if (b.x.size() != d_.input_shapes().size() || b.size() != n) {  // re-made only for a smaller last batch
      b.x.clear();
      b.y.clear();
      for (const Shape& s : d_.input_shapes()) b.x.push_back(Tensor::empty(with_batch(n, s)));
      for (const Shape& s : d_.target_shapes()) b.y.push_back(Tensor::empty(with_batch(n, s)));
      b.sample_weight = weights_.defined() ? Tensor::empty({n}) : Tensor();
    }
    std::vector<float*> x, y;
    b.x_pending = defer_x && b.dataset != nullptr;
    if (!b.x_pending)
      for (Tensor& t : b.x) x.push_back(t.data());
    for (Tensor& t : b.y) y.push_back(t.data());
    d_.gather_parts(idx, x, y);
    // The next batch's rows start coming into the cache while this one computes (measured from
    // Python on MNIST's float rows: 8-12% off an epoch).
    b.next_indices = {};
    if (pos_ < rows()) {
      const distributed::Share next = distributed::share(std::min(bs_, rows() - pos_), rank_, ranks_);
      const std::span<const int64_t> upcoming(order.data() + pos_ + next.begin, static_cast<size_t>(next.count));
      if (b.x_pending)
        b.next_indices = upcoming;  // the step's threads prefetch their own parts
      else
        d_.prefetch(upcoming);
    }
    if (weights_.defined())
      for (int64_t i = 0; i < n; ++i) b.sample_weight.data()[i] = weights_.data()[idx[static_cast<size_t>(i)]];
    else
      b.sample_weight = Tensor();  // class_weight made one for the last batch: it must not carry over
    return true;
  }

  std::function<void(int)> on_epoch;  // called at the start of a fresh epoch (fit shuffles `order`)
  bool defer_x = false;               // leave x to the step (data::Batch::x_pending)
  const data::Dataset& d_;
  int64_t bs_;
  Tensor weights_;
  std::vector<int64_t> order;

 private:
  int64_t rows() const { return static_cast<int64_t>(order.size()); }  // the rows it reads, of all ranks
  int64_t pos_ = 0;
  int rank_, ranks_;
};

// The class of each sample's target, as Keras' class_weight reads it: an integer label, the
// argmax of a one-hot row, or a binary target rounded.
int64_t target_class(const float* y, int64_t per) {
  if (per == 1) return static_cast<int64_t>(std::lround(y[0]));
  return std::max_element(y, y + per) - y;
}

// Multiplies class weights into the batch's sample weights (made if absent).
void apply_class_weight(data::Batch& b, const std::map<int64_t, double>& class_weight) {
  if (class_weight.empty()) return;
  const int64_t n = b.size(), per = n ? b.y[0].numel() / n : 1;
  Tensor w = Tensor::empty({n});
  for (int64_t i = 0; i < n; ++i) {
    const auto it = class_weight.find(target_class(b.y[0].data() + i * per, per));
    const double cw = it == class_weight.end() ? 1.0 : it->second;
    w.data()[i] = static_cast<float>(cw * (b.sample_weight.defined() ? b.sample_weight.data()[i] : 1.f));
  }
  b.sample_weight = w;
}

// evaluate's summary line: "313/313 - 0.4s 1278us/step - loss: 0.0812 - accuracy: 0.9751".
void print_evaluation(const Logs& logs, int64_t steps, double seconds) {
  char head[96];
  if (steps > 0)
    std::snprintf(head, sizeof head, "%lld/%lld - %.1fs %.0fus/step", static_cast<long long>(steps),
                  static_cast<long long>(steps), seconds, seconds / static_cast<double>(steps) * 1e6);
  else
    std::snprintf(head, sizeof head, "evaluated");
  std::cout << head;
  for (const auto& [k, v] : logs.values) {
    char item[64];
    std::snprintf(item, sizeof item, " - %s: %.4f", k.c_str(), v);
    std::cout << item;
  }
  std::cout << "\n" << std::flush;
}

void check_fit_options(const FitOptions& o) {
  if (o.epochs < 0) throw ValueError("fit: epochs must be >= 0, got " + std::to_string(o.epochs));
  if (o.initial_epoch < 0) throw ValueError("fit: initial_epoch must be >= 0, got " + std::to_string(o.initial_epoch));
  if (o.batch_size <= 0) throw ValueError("fit: batch_size must be positive, got " + std::to_string(o.batch_size));
  if (!(o.validation_split >= 0.0 && o.validation_split < 1.0))
    throw ValueError("fit: validation_split must be in [0, 1), got " + std::to_string(o.validation_split));
  if (o.steps_per_epoch && *o.steps_per_epoch <= 0)
    throw ValueError("fit: steps_per_epoch must be positive, got " + std::to_string(*o.steps_per_epoch));
  for (const auto& [c, w] : o.class_weight)
    if (c < 0 || !std::isfinite(w) || w < 0)
      throw ValueError("fit: class_weight {" + std::to_string(c) + ": " + std::to_string(w) +
                       "}: classes are indices >= 0 and weights finite and >= 0");
}

}  // namespace

History Model::fit(const data::Dataset& data, const FitOptions& o) {
  if (has_graph()) optimizer();  // throws if not compiled (a subclass without a graph steps its own way)
  check_fit_options(o);
  if (data.empty()) throw ValueError("fit: the training data is empty");
  if (o.sample_weight.defined() && (o.sample_weight.numel() != data.size() || o.sample_weight.rank() > 2))
    throw ShapeError("fit: sample_weight " + o.sample_weight.shape().str() + " must hold one weight per sample (" +
                     std::to_string(data.size()) + ")");
  if (o.sample_weight.defined())
    for (int64_t i = 0; i < data.size(); ++i)
      if (const float w = o.sample_weight.data()[i]; !std::isfinite(w) || w < 0)
        throw ValueError("fit: sample_weight of sample " + std::to_string(i) + " is " + std::to_string(w) +
                         "; weights must be finite and >= 0");

  data::Dataset train = data, val;
  Tensor train_w = o.sample_weight.defined() ? reshape(o.sample_weight.detach(), Shape{data.size()}) : Tensor();
  if (o.validation_data) {
    val = *o.validation_data;
  } else if (o.validation_split > 0.0) {  // Keras: the last samples, before any shuffling
    const auto n_val = static_cast<int64_t>(static_cast<double>(data.size()) * o.validation_split);
    if (n_val == 0 || n_val == data.size())
      throw ValueError("fit: validation_split " + std::to_string(o.validation_split) + " of " +
                       std::to_string(data.size()) + " samples leaves an empty training or validation set");
    val = data.slice(data.size() - n_val, data.size());
    train = data.slice(0, data.size() - n_val);
    if (train_w.defined()) train_w = train_w.view(0, Shape{train.size()});  // (validation is unweighted)
  }
  if (has_graph()) {
    ensure_built(train.input_shapes(), "fit");
    check_dataset(train, "fit");
    if (!val.empty() && val.input_shapes() != train.input_shapes())
      throw ShapeError("fit: validation samples have shape " + val.sample_shape().str() + ", training samples " +
                       train.sample_shape().str());
    if (!val.empty()) check_dataset(val, "fit: validation data");
    if (compiled()) {
      check_targets(train, "fit");
      if (!val.empty()) check_targets(val, "fit: validation data");
    }
    if (memory_limit() > 0) {  // see set_memory_limit
      MemoryEstimate need = pass_estimate(*this, train.size(), o.batch_size, /*training=*/true);
      need.data = train.storage_bytes() + (o.validation_data ? val.storage_bytes() : 0);
      check_memory(need, "fit");
    }
  }

  const int ranks = is_distributed() ? comm_->size() : 1;
  const int64_t global_batch = dist_options_.batch_per_rank ? o.batch_size * ranks : o.batch_size;
  const int64_t n = train.size(), bs = std::min(global_batch, n), steps = (n + bs - 1) / bs;
  // Resume when the model stands at initial_epoch (a checkpoint's state, or an earlier fit's):
  // same seed, same order, the rest of a half-done epoch. Otherwise start afresh there.
  FitState& state = fit_state_;
  const bool resume = state.shuffle_seed && state.epoch == o.initial_epoch;
  if (resume) {
    const std::string where = "fit: resuming at epoch " + std::to_string(state.epoch + 1) + ": ";
    auto str = [](int64_t v) { return std::to_string(v); };
    if (state.samples != n)
      throw ValueError(where + "the model was trained on " + str(state.samples) + " samples, this data has " + str(n) +
                       " (resume with the same data and validation_split)");
    if (state.step > 0 && state.batch_size != o.batch_size)
      throw ValueError(where + "it stopped " + str(state.step) + " batches of " + str(state.batch_size) +
                       " into the epoch, but batch_size is " + str(o.batch_size));
    // Ranks may change when the global batch does not: the steps are then the same ones.
    const int64_t trained = state.global_batch > 0 ? state.global_batch : state.batch_size;
    if (state.ranks != ranks && trained != global_batch)
      throw ValueError(where + "it was trained on " + str(state.ranks) + " rank" + (state.ranks == 1 ? "" : "s") +
                       " with a global batch of " + str(trained) + "; " + str(ranks) + " rank" + (ranks == 1 ? "" : "s") +
                       (dist_options_.batch_per_rank ? " x batch " + str(o.batch_size) + " per rank" : std::string()) +
                       " make " + str(global_batch) + ", a different training. Resume on " + str(state.ranks) +
                       " ranks, or with a batch size giving the same global batch");
    if (state.step > steps)
      throw ValueError(where + "step " + str(state.step) + " is past the epoch's " + str(steps) + " steps");
    if (o.seed && *o.seed != *state.shuffle_seed)
      throw ValueError(where + "seed " + std::to_string(*o.seed) + " is not the shuffle seed it was trained with");
  } else {
    uint64_t seed = o.seed ? *o.seed : default_generator().next();
    if (ranks > 1 && !o.seed)  // every rank shuffles alike: rank 0's draw
      comm_->broadcast(std::as_writable_bytes(std::span<uint64_t>(&seed, 1)), 0);
    state = FitState{.epoch = o.initial_epoch,
                     .shuffle_seed = seed,
                     .samples = n,
                     .batch_size = o.batch_size,
                     .ranks = ranks,
                     .global_batch = global_batch};
  }
  state.ranks = ranks;
  state.global_batch = global_batch;
  DatasetSource source(train, bs, train_w, ranks > 1 ? comm_->rank() : 0, ranks);
  Generator shuffle_gen(*state.shuffle_seed);
  std::vector<int64_t>& order = source.order;
  auto shuffle = [&] {
    for (int64_t i = n - 1; i > 0; --i)
      std::swap(order[static_cast<size_t>(i)], order[shuffle_gen.below(static_cast<uint64_t>(i + 1))]);
  };
  for (int64_t i = 0; i < state.shuffled; ++i) shuffle();  // replays the order up to here
  if (o.shuffle)
    source.on_epoch = [&](int) {  // the order carries over from epoch to epoch
      shuffle();
      ++state.shuffled;
    };
  return fit_loop(source, val, bs, o, n, resume);
}

History Model::fit(data::BatchSource& train, const FitOptions& o) {
  if (has_graph()) optimizer();  // throws if not compiled
  check_fit_options(o);
  if (o.validation_split > 0.0)
    throw ValueError("fit: validation_split does not apply to a stream of batches; pass validation_data");
  if (o.sample_weight.defined())
    throw ValueError("fit: sample_weight does not apply to a stream of batches; set each Batch's sample_weight");
  const data::Dataset val = o.validation_data ? *o.validation_data : data::Dataset();
  if (has_graph()) {
    ensure_built(train.input_shapes(), "fit");
    if (train.target_shapes().size() != num_outputs())
      throw ValueError("fit: the batches have " + std::to_string(train.target_shapes().size()) + " targets, model '" +
                       name_ + "' has " + std::to_string(num_outputs()) + " outputs");
    if (!val.empty()) check_dataset(val, "fit: validation data");
  }
  FitState& state = fit_state_;
  const bool resume = state.shuffle_seed && state.epoch == o.initial_epoch;
  if (!resume) state = FitState{.epoch = o.initial_epoch, .shuffle_seed = o.seed ? *o.seed : 0, .samples = 0, .batch_size = 0};
  return fit_loop(train, val, o.batch_size, o, 0, resume);
}

History Model::fit_loop(data::BatchSource& source, const data::Dataset& val, int64_t val_batch, const FitOptions& o,
                        int64_t samples, bool resume) {
  divergence_.clear();
  if (!o.class_weight.empty() && source.target_shapes().size() != 1)
    throw ValueError("fit: class_weight needs a model with one output (as Keras); weigh the samples instead");
  FitState& state = fit_state_;
  const std::optional<int64_t> steps = o.steps_per_epoch ? o.steps_per_epoch : source.steps_per_epoch();
  train_params_ = trainable_weights();
  dense_chain_ = detail::DenseChainStep::make(*this, train_params_, get_num_threads());
  batch_split_ = dense_chain_ ? nullptr : detail::BatchSplitStep::make(*this, train_params_, get_num_threads());
  // A step over several cores gathers its batches' samples on those cores.
  if (auto* dataset_source = dynamic_cast<DatasetSource*>(&source))
    dataset_source->defer_x = (dense_chain_ && dense_chain_->gathers_x()) || batch_split_ != nullptr;
  // Data parallel: every rank starts from rank 0's weights; rank 0 alone shows progress and
  // writes checkpoints (the others would write the same file).
  const distributed::ActiveScope active(is_distributed() ? comm_.get() : nullptr);
  const bool lead = !is_distributed() || comm_->rank() == 0;
  broadcast_weights();
  History history;
  const int verbose = lead ? o.verbose : 0;
  ProgressBar bar(verbose);
  std::vector<Callback*> callbacks{&history};
  if (verbose > 0) callbacks.push_back(&bar);
  for (Callback* c : o.callbacks)
    if (lead || dynamic_cast<ModelCheckpoint*>(c) == nullptr) callbacks.push_back(c);
  if (reducer_) reducer_->reset_stats();
  // Checkpoints are written after every other callback has run, so that they hold the state those
  // callbacks leave at the end of an epoch (ReduceLROnPlateau's rate) and a resume is exact.
  std::stable_partition(callbacks.begin(), callbacks.end(),
                        [](Callback* c) { return dynamic_cast<ModelCheckpoint*>(c) == nullptr; });
  for (Callback* c : callbacks) c->model = this;

  const TrainInfo info{o.epochs, steps.value_or(0), samples, !val.empty()};
  stop_training = false;
  // The cached parameters and the callbacks' model pointers, also on an exception. An exception
  // (a callback's, Ctrl-C in Python) leaves the weights as the last finished batch left them and
  // forgets where training stood, so that the next fit starts afresh at its initial_epoch, as
  // Keras does, rather than resuming a half-done epoch (a checkpoint resumes exactly instead).
  struct Cleanup {
    Model& m;
    std::vector<Callback*>& cbs;
    int exceptions = std::uncaught_exceptions();
    ~Cleanup() {
      m.train_params_.clear();
      m.dense_chain_.reset();
      m.batch_split_.reset();
      m.active_callbacks_.clear();
      for (Callback* c : cbs) c->model = nullptr;
      if (std::uncaught_exceptions() > exceptions) m.fit_state_ = FitState{};
    }
  } cleanup{*this, callbacks};
  active_callbacks_ = callbacks;
  for (Callback* c : callbacks) c->on_train_begin(info);
  // A resume from a checkpoint gives the callbacks their saved state back, class by class in order.
  if (resume && callback_states_.is_array()) {
    size_t next = 0;
    for (Callback* c : callbacks) {
      if (c->state().is_null()) continue;
      if (next < callback_states_.size() && callback_states_[next].value("class", "") == c->class_name())
        c->load_state(callback_states_[next].at("state"));
      ++next;
    }
  }
  callback_states_ = Json();
  bool log_lr = optimizer_ && optimizer_->schedule;
  for (Callback* c : callbacks) log_lr = log_lr || c->logs_learning_rate();

  data::Batch batch;
  Logs logs;
  for (int epoch = o.initial_epoch; epoch < o.epochs && !stop_training; ++epoch) {
    for (Callback* c : callbacks) c->on_epoch_begin(epoch);
    reset_metrics();
    int64_t step = state.step;  // > 0 only when resuming mid-epoch
    source.start_epoch(epoch, step);
    bool finished = true;
    logs = Logs{};
    while (!steps || step < *steps) {
      if (!source.next(batch)) {
        if (steps)
          throw ValueError("fit: the training data ran out after " + std::to_string(step) + " of " +
                           std::to_string(*steps) + " steps in epoch " + std::to_string(epoch + 1));
        break;
      }
      apply_class_weight(batch, o.class_weight);
      logs = train_step(batch);
      state.step = ++step;
      for (Callback* c : callbacks) c->on_batch_end(step, logs);
      if (is_distributed() && !o.callbacks.empty()) sync_stop();  // a callback on one rank stops them all
      if (stop_training) {  // a callback asked for it mid-epoch (TerminateOnNaN)
        finished = !steps || step == *steps;
        break;
      }
    }
    if (is_distributed()) {  // the epoch's metrics over every rank's samples, the statistics' mean
      merge_metrics();
      average_state(*this, *comm_);
      for (const auto& [k, v] : metrics_result().values) logs.set(k, v);
    }
    if (!val.empty())
      for (const auto& [k, v] : run_evaluation(val, val_batch).values) logs.set("val_" + k, v);
    if (finished) {
      state.epoch = epoch + 1;
      state.step = 0;
    }
    if (log_lr) logs.set("learning_rate", optimizer_->learning_rate);  // the rate this epoch trained with
    for (Callback* c : callbacks) c->on_epoch_end(epoch, logs);
    if (is_distributed()) sync_stop();
  }
  for (Callback* c : callbacks) c->on_train_end(logs);
  return history;
}

History Model::fit(const Tensor& x, const Tensor& y, const FitOptions& options) {
  return fit(data::Dataset::from_tensors(x, y), options);
}

History Model::fit(const std::vector<Tensor>& x, const std::vector<Tensor>& y, const FitOptions& options) {
  return fit(data::Dataset::from_tensors(x, y), options);
}

Logs Model::run_evaluation(data::BatchSource& data) {
  NoGradGuard no_grad;
  if (!metrics_ready()) prepare_metrics();
  reset_metrics();
  data.start_epoch(0, 0);
  data::Batch batch;
  Logs logs = metrics_result();
  while (data.next(batch)) logs = test_step(batch);
  return logs;
}

Logs Model::run_evaluation(const data::Dataset& data, int64_t batch_size) {
  DatasetSource source(data, batch_size);
  if (!is_distributed()) return run_evaluation(source);
  // Each rank evaluates its share of the samples; the metrics then count them all.
  const distributed::Share mine = distributed::share(data.size(), comm_->rank(), comm_->size());
  source.order.erase(source.order.begin() + mine.begin + mine.count, source.order.end());
  source.order.erase(source.order.begin(), source.order.begin() + mine.begin);
  run_evaluation(source);
  merge_metrics();
  return metrics_result();
}

Logs Model::evaluate(const data::Dataset& data, const EvaluateOptions& o) {
  loss();  // throws if not compiled
  if (o.batch_size <= 0) throw ValueError("evaluate: batch_size must be positive, got " + std::to_string(o.batch_size));
  if (data.empty()) throw ValueError("evaluate: the data is empty");
  ensure_built(data.input_shapes(), "evaluate");
  check_dataset(data, "evaluate");
  check_targets(data, "evaluate");
  if (memory_limit() > 0) {  // see set_memory_limit
    MemoryEstimate need = pass_estimate(*this, data.size(), o.batch_size, /*training=*/false);
    need.data = data.storage_bytes();
    check_memory(need, "evaluate");
  }
  const auto start = std::chrono::steady_clock::now();
  Logs logs = run_evaluation(data, o.batch_size);
  if (o.verbose > 0 && (!is_distributed() || comm_->rank() == 0))
    print_evaluation(logs, (data.size() + o.batch_size - 1) / o.batch_size,
                     std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count());
  return logs;
}

Logs Model::evaluate(const Tensor& x, const Tensor& y, const EvaluateOptions& options) {
  return evaluate(data::Dataset::from_tensors(x, y), options);
}

Logs Model::evaluate(const std::vector<Tensor>& x, const std::vector<Tensor>& y, const EvaluateOptions& options) {
  return evaluate(data::Dataset::from_tensors(x, y), options);
}

namespace {

// The rows one forward pass of predict takes at a time. Inference rows are independent, so a large
// batch runs as chunks whose activations stay in the caches (about 2 MB): one core, MNIST's
// 10,000 test images, LeNet took 64K samples/s at batch 10000 and 97-101K in chunks of 16 to 128
// rows; the MLP ran 0.88-0.93M samples/s at any of 128 to 10000 rows (issue 20).
int64_t forward_rows(const Model& model, int64_t batch_size, int threads = get_num_threads()) {
  constexpr int64_t kChunkBytes = int64_t{2} << 20, kMinRows = 32;
  int64_t per_sample = 0;
  try {
    per_sample = model.estimate_memory(1, /*training=*/false).activations;
  } catch (const Error&) {
    return batch_size;  // shapes not known ahead (variable-length sequences): as given
  }
  if (per_sample <= 0) return batch_size;
  return std::clamp(kChunkBytes * threads / per_sample, std::min(kMinRows, batch_size), batch_size);
}

// The rows of each chunk when a small CNN's prediction of n rows runs on several threads, each
// taking whole chunks of a core's size in turn (BatchSplitStep::predict): when the model
// qualifies and there are two chunks or more. 0 otherwise.
int64_t split_predict_rows(const Model& model, int64_t n, int64_t batch_size, size_t outputs) {
  if (get_num_threads() < 2 || outputs != 1 || !detail::BatchSplitStep::splits_inference(model)) return 0;
  const int64_t rows = forward_rows(model, batch_size, 1);
  return rows < n ? rows : 0;
}

}  // namespace

std::vector<Tensor> Model::predict_all(const data::Dataset& data, int64_t batch_size) {
  if (batch_size <= 0) throw ValueError("predict: batch_size must be positive, got " + std::to_string(batch_size));
  ensure_built(data.input_shapes(), "predict");
  const std::vector<Shape> outs = output_shapes();
  if (memory_limit() > 0) {  // see set_memory_limit
    MemoryEstimate need = pass_estimate(*this, data.size(), batch_size, /*training=*/false);
    need.data = data.storage_bytes();
    for (const Shape& s : outs) need.data += data.size() * s.numel() * 4;
    check_memory(need, "predict");
  }
  if (const int64_t rows = split_predict_rows(*this, data.size(), batch_size, outs.size());
      rows > 0 && data.input_shapes().size() == 1) {
    Tensor out = Tensor::empty(with_batch(data.size(), outs[0]));
    detail::BatchSplitStep::predict(*this, data.size(), rows, get_num_threads(), [&](int64_t begin, int64_t count) {
      std::vector<int64_t> indices(static_cast<size_t>(count));
      std::iota(indices.begin(), indices.end(), begin);
      return data.x(indices);
    }, out);
    return {out};
  }
  DatasetSource source(data, forward_rows(*this, batch_size));
  return predict_from(source, outs, data.size());
}

Tensor Model::predict(const data::Dataset& data, int64_t batch_size) { return predict_all(data, batch_size).at(0); }

// Every batch of the source's epoch 0 through the model in inference mode, the outputs
// concatenated: into (rows, ...) buffers when the row count is known, else batch by batch.
std::vector<Tensor> Model::predict_from(data::BatchSource& source, const std::vector<Shape>& outs, int64_t rows) {
  NoGradGuard no_grad;
  std::vector<std::vector<Tensor>> parts(outs.size());
  std::vector<Tensor> out;
  if (rows >= 0)
    for (const Shape& s : outs) out.push_back(Tensor::empty(with_batch(rows, s)));
  source.start_epoch(0, 0);
  data::Batch batch;
  int64_t begin = 0;
  while (source.next(batch)) {
    const int64_t count = batch.size();
    const std::vector<Tensor> pred = run(batch.x, {}, false).values;
    for (size_t o = 0; o < outs.size(); ++o) {
      if (rows < 0) {
        parts[o].push_back(pred[o].clone());
        continue;
      }
      if (begin + count > rows) throw ValueError("predict: the data yielded more than " + std::to_string(rows) + " samples");
      const int64_t row = outs[o].numel();
      std::copy(pred[o].data(), pred[o].data() + count * row, out[o].data() + begin * row);
    }
    begin += count;
  }
  if (rows >= 0) return out;
  for (size_t o = 0; o < outs.size(); ++o) {
    if (parts[o].empty()) {
      out.push_back(Tensor::empty(with_batch(0, outs[o])));
      continue;
    }
    out.push_back(concat(parts[o], 0));
  }
  return out;
}

std::vector<Tensor> Model::predict_all(data::BatchSource& data) {
  ensure_built(data.input_shapes(), "predict");
  return predict_from(data, output_shapes(), -1);
}

Logs Model::evaluate(data::BatchSource& data, const EvaluateOptions& o) {
  loss();  // throws if not compiled
  ensure_built(data.input_shapes(), "evaluate");
  if (data.target_shapes().size() != num_outputs())
    throw ValueError("evaluate: the batches have " + std::to_string(data.target_shapes().size()) + " targets, model '" +
                     name_ + "' has " + std::to_string(num_outputs()) + " outputs");
  Logs logs = run_evaluation(data);
  if (o.verbose > 0) print_evaluation(logs, 0, 0.0);
  return logs;
}

std::vector<Tensor> Model::predict_all(const std::vector<Tensor>& x, int64_t batch_size) {
  if (batch_size <= 0) throw ValueError("predict: batch_size must be positive, got " + std::to_string(batch_size));
  std::vector<Shape> shapes;
  for (size_t i = 0; i < x.size(); ++i) {
    if (x[i].rank() < 1 || x[i].dim(0) != x[0].dim(0))
      throw ShapeError("predict: input " + std::to_string(i) + " has shape " + x[i].shape().str() +
                       "; every input needs a batch axis of the same length");
    shapes.emplace_back(std::vector<int64_t>(x[i].shape().begin() + 1, x[i].shape().end()));
  }
  if (x.empty()) throw ValueError("predict: no inputs");
  const int64_t n = x[0].dim(0);
  // One sample without its batch axis: the most common slip, so say so.
  if (const std::vector<Shape> want = input_shapes(); want.size() == x.size())
    for (size_t i = 0; i < x.size(); ++i)
      if (x[i].shape() == want[i] && shapes[i] != want[i])
        throw ShapeError("predict: input " + (x.size() > 1 ? "'" + input_names()[i] + "' " : std::string()) + "has shape " +
                         x[i].shape().str() + ", one sample of model '" + name_ + "' without a batch axis.\n  hint: predict(" +
                         "reshape(x, " + with_batch(1, want[i]).str() + ")) for one sample, or stack samples into (N, " +
                         want[i].str().substr(1) + ")");
  ensure_built(shapes, "predict");
  const std::vector<Shape> outs = output_shapes();
  if (memory_limit() > 0) {  // see set_memory_limit
    MemoryEstimate need = pass_estimate(*this, n, batch_size, /*training=*/false);
    for (const Tensor& t : x) need.data += t.numel() * 4;
    for (const Shape& s : outs) need.data += n * s.numel() * 4;
    check_memory(need, "predict");
  }
  NoGradGuard no_grad;
  std::vector<Tensor> out;
  for (const Shape& s : outs) out.push_back(Tensor::empty(with_batch(n, s)));
  if (const int64_t rows = split_predict_rows(*this, n, batch_size, outs.size()); rows > 0 && x.size() == 1) {
    detail::BatchSplitStep::predict(*this, n, rows, get_num_threads(),
                                    [&](int64_t begin, int64_t count) { return detail::rows(x[0], begin, count); }, out[0]);
    return out;
  }
  std::vector<Tensor> in(x.size());
  const int64_t step = forward_rows(*this, batch_size);
  for (int64_t begin = 0; begin < n; begin += step) {
    const int64_t count = std::min(step, n - begin);
    for (size_t i = 0; i < x.size(); ++i) in[i] = detail::rows(x[i], begin, count);
    const std::vector<Tensor> pred = run(in, {}, false).values;
    for (size_t o = 0; o < out.size(); ++o) {
      const int64_t row = outs[o].numel();
      std::copy(pred[o].data(), pred[o].data() + count * row, out[o].data() + begin * row);
    }
  }
  return out;
}

Tensor Model::predict(const Tensor& x, int64_t batch_size) {
  if (x.rank() < 1) throw ShapeError("predict: input must have a batch axis, got " + x.shape().str());
  return predict_all(std::vector<Tensor>{x}, batch_size).at(0);
}

void Model::set_text_vectorization(TextVectorization tv) {
  if (!tv.has_vocabulary())
    throw ValueError("set_text_vectorization: model '" + name_ + "': TextVectorization '" + tv.options().name +
                     "' has no vocabulary yet (adapt it, or give it a vocabulary, first)");
  text_vectorization_ = std::make_shared<const TextVectorization>(std::move(tv));
}

Tensor Model::predict(const std::vector<std::string>& texts, int64_t batch_size) {
  if (!text_vectorization_)
    throw ValueError("predict: model '" + name_ + "' has no text vectorization (set_text_vectorization), so it "
                     "cannot take raw texts");
  return predict((*text_vectorization_)(texts), batch_size);
}

}  // namespace lamina
