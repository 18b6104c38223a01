// compile, fit, evaluate, predict. A training step: gather a batch into reused buffers, zero
// the gradients, forward, loss, backward, optimizer step, metrics; then the callbacks.
#include <algorithm>
#include <chrono>
#include <cmath>
#include <iostream>
#include <numeric>

#include "lamina/autograd.hpp"
#include "lamina/model.hpp"
#include "lamina/runtime.hpp"

namespace lamina {

namespace {

Shape with_batch(int64_t batch, const Shape& sample) {
  std::vector<int64_t> dims{batch};
  dims.insert(dims.end(), sample.begin(), sample.end());
  return Shape(dims);
}

// Rows [begin, begin + count) of x as a tensor that shares x's storage (outside autograd).
Tensor rows(const Tensor& x, int64_t begin, int64_t count) {
  std::vector<int64_t> dims = x.shape().dims();
  const int64_t row = x.numel() / std::max<int64_t>(dims[0], 1);
  dims[0] = count;
  return x.view(begin * row, Shape(dims));
}

// Batch buffers reused across steps, one per input and target; re-made only when the batch size
// changes (the last batch).
struct Batch {
  std::vector<Tensor> xs, ys;
  void fill(const data::Dataset& d, std::span<const int64_t> idx) {
    const auto n = static_cast<int64_t>(idx.size());
    if (xs.empty() || xs[0].dim(0) != n) {
      xs.clear();
      ys.clear();
      for (const Shape& s : d.input_shapes()) xs.push_back(Tensor::empty(with_batch(n, s)));
      for (const Shape& s : d.target_shapes()) ys.push_back(Tensor::empty(with_batch(n, s)));
    }
    std::vector<float*> x, y;
    for (Tensor& t : xs) x.push_back(t.data());
    for (Tensor& t : ys) y.push_back(t.data());
    d.gather_parts(idx, x, y);
  }
};

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

void Model::compile(std::shared_ptr<Optimizer> optimizer, Loss loss, std::vector<std::string> metrics) {
  // One loss for every output, as Keras does with a single loss.
  const size_t outputs = num_outputs();
  compile(std::move(optimizer), std::vector<Loss>(outputs, loss), CompileOptions{.metrics = std::move(metrics)});
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
  for (const std::string& m : o.metrics)
    for (const Loss& l : losses) metric_from_name(m, l);  // validates names now
  optimizer_ = std::move(optimizer);
  losses_ = std::move(losses);
  loss_weights_ = std::move(o.loss_weights);
  metric_names_ = std::move(o.metrics);
}

void Model::compile(const std::string& optimizer, Loss loss, std::vector<std::string> metrics) {
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

std::string Model::output_log_name(size_t output, const std::string& what) const {
  if (losses_.size() <= 1) return what;
  return output_names()[output] + "_" + what;  // Keras: "dense_1_loss", "dense_1_accuracy"
}

std::vector<Model::NamedMetric> Model::make_metrics() const {
  std::vector<NamedMetric> out;
  for (size_t o = 0; o < losses_.size(); ++o)
    for (const std::string& m : metric_names_) {
      auto metric = metric_from_name(m, losses_[o]);
      std::string name = output_log_name(o, metric->name());
      out.push_back({o, std::move(name), std::move(metric)});
    }
  return out;
}

Tensor Model::total_loss(const std::vector<Tensor>& y, const std::vector<Tensor>& pred, std::vector<float>* parts) const {
  Tensor total;
  for (size_t o = 0; o < losses_.size(); ++o) {
    Tensor l = losses_[o](y[o], pred[o]);
    if (parts) parts->push_back(l.item());
    if (losses_.size() == 1 && loss_weights_[0] == 1.0) return l;
    Tensor weighted = mul(l, static_cast<float>(loss_weights_[o]));
    total = total.defined() ? add(total, weighted) : weighted;
  }
  return total;
}

void Model::check_dataset(const data::Dataset& data, const char* where) const {
  const size_t outputs = num_outputs();
  if (data.target_shapes().size() != outputs)
    throw ValueError(std::string(where) + ": the data has " + std::to_string(data.target_shapes().size()) + " target" +
                     (data.target_shapes().size() == 1 ? "" : "s") + ", model '" + name_ + "' has " +
                     std::to_string(outputs) + " output" + (outputs == 1 ? "" : "s"));
}

History Model::fit(const data::Dataset& data, const FitOptions& o) {
  optimizer();  // throws if not compiled
  if (o.epochs < 0) throw ValueError("fit: epochs must be >= 0, got " + std::to_string(o.epochs));
  if (o.initial_epoch < 0) throw ValueError("fit: initial_epoch must be >= 0, got " + std::to_string(o.initial_epoch));
  if (o.batch_size <= 0) throw ValueError("fit: batch_size must be positive, got " + std::to_string(o.batch_size));
  if (!(o.validation_split >= 0.0 && o.validation_split < 1.0))
    throw ValueError("fit: validation_split must be in [0, 1), got " + std::to_string(o.validation_split));
  if (data.empty()) throw ValueError("fit: the training data is empty");

  data::Dataset train = data, val;
  if (o.validation_data) {
    val = *o.validation_data;
  } else if (o.validation_split > 0.0) {  // Keras: the last samples, before any shuffling
    const auto n_val = static_cast<int64_t>(static_cast<double>(data.size()) * o.validation_split);
    if (n_val == 0 || n_val == data.size())
      throw ValueError("fit: validation_split " + std::to_string(o.validation_split) + " of " +
                       std::to_string(data.size()) + " samples leaves an empty training or validation set");
    val = data.slice(data.size() - n_val, data.size());
    train = data.slice(0, data.size() - n_val);
  }
  ensure_built(train.input_shapes(), "fit");
  check_dataset(train, "fit");
  if (!val.empty() && val.input_shapes() != train.input_shapes())
    throw ShapeError("fit: validation samples have shape " + val.sample_shape().str() + ", training samples " +
                     train.sample_shape().str());
  if (!val.empty()) check_dataset(val, "fit: validation data");
  check_targets(train, "fit");
  if (!val.empty()) check_targets(val, "fit: validation data");
  if (memory_limit() > 0) {  // see set_memory_limit
    MemoryEstimate need = pass_estimate(*this, train.size(), o.batch_size, /*training=*/true);
    need.data = train.storage_bytes() + (o.validation_data ? val.storage_bytes() : 0);
    check_memory(need, "fit");
  }
  divergence_.clear();

  const int64_t n = train.size(), bs = std::min(o.batch_size, n), steps = (n + bs - 1) / bs;
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
    if (state.step > steps)
      throw ValueError(where + "step " + str(state.step) + " is past the epoch's " + str(steps) + " steps");
    if (o.seed && *o.seed != *state.shuffle_seed)
      throw ValueError(where + "seed " + std::to_string(*o.seed) + " is not the shuffle seed it was trained with");
  } else {
    state = FitState{.epoch = o.initial_epoch,
                     .shuffle_seed = o.seed ? *o.seed : default_generator().next(),
                     .samples = n,
                     .batch_size = o.batch_size};
  }
  Generator shuffle_gen(*state.shuffle_seed);
  std::vector<int64_t> order(static_cast<size_t>(n));
  std::iota(order.begin(), order.end(), 0);
  auto shuffle = [&] {
    for (int64_t i = n - 1; i > 0; --i)
      std::swap(order[static_cast<size_t>(i)], order[shuffle_gen.below(static_cast<uint64_t>(i + 1))]);
  };
  for (int64_t i = 0; i < state.shuffled; ++i) shuffle();  // replays the order up to here

  const std::vector<Tensor> params = trainable_weights();
  auto metrics = make_metrics();
  const bool multi = losses_.size() > 1;
  std::vector<std::string> loss_names;  // "cls_loss", ... (named once, not per batch)
  for (size_t o = 0; multi && o < losses_.size(); ++o) loss_names.push_back(output_log_name(o, "loss"));
  History history;
  ProgressBar bar(o.verbose);
  std::vector<Callback*> callbacks{&history};
  if (o.verbose > 0) callbacks.push_back(&bar);
  callbacks.insert(callbacks.end(), o.callbacks.begin(), o.callbacks.end());
  for (Callback* c : callbacks) c->model = this;

  const TrainInfo info{o.epochs, steps, n, !val.empty()};
  stop_training = false;
  for (Callback* c : callbacks) c->on_train_begin(info);

  Batch batch;
  Logs logs;
  for (int epoch = o.initial_epoch; epoch < o.epochs && !stop_training; ++epoch) {
    for (Callback* c : callbacks) c->on_epoch_begin(epoch);
    const int64_t first_step = state.step;  // > 0 only when resuming mid-epoch, already shuffled
    if (o.shuffle && first_step == 0) {
      shuffle();
      ++state.shuffled;
    }
    for (auto& m : metrics) m.metric->reset();
    double loss_sum = 0.0;
    std::vector<double> part_sums(losses_.size(), 0.0);
    std::vector<float> parts;
    int64_t seen = 0;
    for (int64_t step = first_step; step < steps; ++step) {
      const int64_t begin = step * bs, count = std::min(bs, n - begin);
      batch.fill(train, std::span<const int64_t>(order.data() + begin, static_cast<size_t>(count)));
      for (Tensor p : params) p.zero_grad(/*set_to_none=*/false);  // lazily: backward overwrites
      const std::vector<Tensor> pred = run(batch.xs, true);
      parts.clear();
      Tensor loss = total_loss(batch.ys, pred, multi ? &parts : nullptr);
      if (Tensor penalty = regularization_loss(); penalty.defined()) loss = add(loss, penalty);  // Keras: + model.losses
      loss.backward();
      const float batch_loss = loss.item();
      // The first non-finite loss: find where it came from while the weights are still the ones
      // that produced it (once per fit, so the steady state pays one isfinite per step).
      if (!std::isfinite(batch_loss) && divergence_.empty()) {
        divergence_ = diagnose_non_finite(batch.xs, batch.ys);
        if (divergence_.empty()) divergence_ = "no layer reproduced a non-finite value on a second pass";
      }
      optimizer_->step(params);
      apply_constraints();  // Keras: kernel_constraint etc. after each update
      loss_sum += static_cast<double>(batch_loss) * static_cast<double>(count);
      for (size_t o = 0; o < parts.size(); ++o) part_sums[o] += static_cast<double>(parts[o]) * static_cast<double>(count);
      seen += count;
      for (auto& m : metrics) m.metric->update(batch.ys[m.output], pred[m.output]);
      logs = Logs{};
      logs.set("loss", loss_sum / static_cast<double>(seen));
      for (size_t o = 0; o < parts.size(); ++o) logs.set(loss_names[o], part_sums[o] / static_cast<double>(seen));
      for (auto& m : metrics) logs.set(m.name, m.metric->result());
      state.step = step + 1;
      for (Callback* c : callbacks) c->on_batch_end(step + 1, logs);
      if (stop_training) break;  // a callback asked for it mid-epoch (TerminateOnNaN)
    }
    if (!val.empty())
      for (const auto& [k, v] : run_evaluation(val, bs).values) logs.set("val_" + k, v);
    if (state.step == steps) {
      state.epoch = epoch + 1;
      state.step = 0;
    }
    for (Callback* c : callbacks) c->on_epoch_end(epoch, logs);
  }
  for (Callback* c : callbacks) c->on_train_end(logs);
  for (Callback* c : callbacks) c->model = nullptr;
  return history;
}

History Model::fit(const Tensor& x, const Tensor& y, const FitOptions& options) {
  return fit(data::Dataset::from_tensors(x, y), options);
}

History Model::fit(const std::vector<Tensor>& x, const std::vector<Tensor>& y, const FitOptions& options) {
  return fit(data::Dataset::from_tensors(x, y), options);
}

Logs Model::run_evaluation(const data::Dataset& data, int64_t batch_size) {
  NoGradGuard no_grad;
  auto metrics = make_metrics();
  const bool multi = losses_.size() > 1;
  std::vector<std::string> loss_names;  // "cls_loss", ... (named once, not per batch)
  for (size_t o = 0; multi && o < losses_.size(); ++o) loss_names.push_back(output_log_name(o, "loss"));
  std::vector<int64_t> order(static_cast<size_t>(data.size()));
  std::iota(order.begin(), order.end(), 0);
  Batch batch;
  double loss_sum = 0.0;
  std::vector<double> part_sums(losses_.size(), 0.0);
  std::vector<float> parts;
  for (int64_t begin = 0; begin < data.size(); begin += batch_size) {
    const int64_t count = std::min(batch_size, data.size() - begin);
    batch.fill(data, std::span<const int64_t>(order.data() + begin, static_cast<size_t>(count)));
    const std::vector<Tensor> pred = run(batch.xs, false);
    parts.clear();
    Tensor loss = total_loss(batch.ys, pred, multi ? &parts : nullptr);
    if (Tensor penalty = regularization_loss(); penalty.defined()) loss = add(loss, penalty);  // Keras: + model.losses
    loss_sum += static_cast<double>(loss.item()) * static_cast<double>(count);
    for (size_t o = 0; o < parts.size(); ++o) part_sums[o] += static_cast<double>(parts[o]) * static_cast<double>(count);
    for (auto& m : metrics) m.metric->update(batch.ys[m.output], pred[m.output]);
  }
  Logs logs;
  const double n = std::max<double>(static_cast<double>(data.size()), 1.0);
  logs.set("loss", data.size() ? loss_sum / n : 0.0);
  if (multi)
    for (size_t o = 0; o < part_sums.size(); ++o) logs.set(loss_names[o], part_sums[o] / n);
  for (auto& m : metrics) logs.set(m.name, m.metric->result());
  return logs;
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
  if (o.verbose > 0) {
    const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    const int64_t steps = (data.size() + o.batch_size - 1) / o.batch_size;
    char head[96];
    std::snprintf(head, sizeof head, "%lld/%lld - %.1fs %.0fus/step", static_cast<long long>(steps),
                  static_cast<long long>(steps), s, s / static_cast<double>(steps) * 1e6);
    std::cout << head;
    for (const auto& [k, v] : logs.values) {
      char item[64];
      std::snprintf(item, sizeof item, " - %s: %.4f", k.c_str(), v);
      std::cout << item;
    }
    std::cout << "\n" << std::flush;
  }
  return logs;
}

Logs Model::evaluate(const Tensor& x, const Tensor& y, const EvaluateOptions& options) {
  return evaluate(data::Dataset::from_tensors(x, y), options);
}

Logs Model::evaluate(const std::vector<Tensor>& x, const std::vector<Tensor>& y, const EvaluateOptions& options) {
  return evaluate(data::Dataset::from_tensors(x, y), options);
}

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
  NoGradGuard no_grad;
  std::vector<Tensor> out;
  for (const Shape& s : outs) out.push_back(Tensor::empty(with_batch(data.size(), s)));
  std::vector<int64_t> order(static_cast<size_t>(data.size()));
  std::iota(order.begin(), order.end(), 0);
  Batch batch;
  for (int64_t begin = 0; begin < data.size(); begin += batch_size) {
    const int64_t count = std::min(batch_size, data.size() - begin);
    batch.fill(data, std::span<const int64_t>(order.data() + begin, static_cast<size_t>(count)));
    const std::vector<Tensor> pred = run(batch.xs, false);
    for (size_t o = 0; o < out.size(); ++o) {
      const int64_t row = outs[o].numel();
      std::copy(pred[o].data(), pred[o].data() + count * row, out[o].data() + begin * row);
    }
  }
  return out;
}

Tensor Model::predict(const data::Dataset& data, int64_t batch_size) { return predict_all(data, batch_size).at(0); }

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
  std::vector<Tensor> in(x.size());
  for (int64_t begin = 0; begin < n; begin += batch_size) {
    const int64_t count = std::min(batch_size, n - begin);
    for (size_t i = 0; i < x.size(); ++i) in[i] = rows(x[i], begin, count);
    const std::vector<Tensor> pred = run(in, false);
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

}  // namespace lamina
