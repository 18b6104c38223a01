// Metrics that accumulate over batches: accuracy (sparse, categorical, binary), precision,
// recall and F1 (macro over classes, or the positive class for a binary output), and the
// confusion matrix behind them. Predictions may be probabilities or logits.
//
//   auto acc = metric_from_name("accuracy", Loss("sparse_categorical_crossentropy"));
//   acc->update_state(labels, probs);  acc->result();
#pragma once

#include <concepts>
#include <cstdint>
#include <functional>
#include <memory>
#include <ostream>
#include <span>
#include <string>
#include <vector>

#include "lamina/losses.hpp"
#include "lamina/tensor.hpp"

namespace lamina {

// How predictions and targets turn into class indices. (N, C) with C > 1: argmax; (N) or
// (N, 1): a binary decision at `threshold` (0.5 for probabilities, 0 for logits).
struct ClassDecoding {
  float threshold = 0.5f;
};
// Class of each prediction row.
std::vector<int64_t> predicted_classes(const Tensor& y_pred, const ClassDecoding& d = {});
// Class of each target: integer labels (N) / (N, 1) when y_pred has C > 1 columns, one-hot
// rows (N, C), or binary targets thresholded at 0.5.
std::vector<int64_t> true_classes(const Tensor& y_true, const Tensor& y_pred);

// Counts of (true class, predicted class); rows are true classes.
class ConfusionMatrix {
 public:
  explicit ConfusionMatrix(int64_t num_classes = 0) { resize(num_classes); }
  void update(const std::vector<int64_t>& truth, const std::vector<int64_t>& predicted);
  void reset();
  // Counts `count` more samples of class `truth` predicted as `predicted` (growing as needed).
  void add(int64_t truth, int64_t predicted, int64_t count = 1);
  int64_t num_classes() const { return n_; }
  int64_t count(int64_t truth, int64_t predicted) const { return counts_[static_cast<size_t>(truth * n_ + predicted)]; }
  int64_t total() const;
  double accuracy() const;
  double precision(int64_t c) const;  // 0 where nothing was predicted as c
  double recall(int64_t c) const;     // 0 where c never occurs
  double f1(int64_t c) const;
  double macro_precision() const;
  double macro_recall() const;
  double macro_f1() const;
  // A per-class table (precision, recall, F1, support) and the matrix itself.
  void print(std::ostream& os) const;

 private:
  void resize(int64_t n);
  int64_t n_ = 0;
  std::vector<int64_t> counts_;
};

// A streaming metric, as keras.metrics.Metric: update_state per batch, result() at any time,
// reset_state() at each epoch's start. A metric of your own derives from it and is given to
// compile (see MetricSpec):
//
//   struct MeanAbsError : Metric {                       // a custom metric
//     double sum = 0, n = 0;
//     std::string name() const override { return "mae"; }
//     void reset_state() override { sum = n = 0; }
//     void update_state(const Tensor& y, const Tensor& p, const Tensor& = Tensor()) override {
//       for (int64_t i = 0; i < p.numel(); ++i) sum += std::fabs(p.data()[i] - y.data()[i]);
//       n += static_cast<double>(p.numel());
//     }
//     double result() const override { return n ? sum / n : 0.0; }
//   };
//   model.compile(Adam(), "mse", CompileOptions{.metrics = {MeanAbsError()}});
class Metric {
 public:
  virtual ~Metric() = default;
  virtual std::string name() const = 0;  // the key in logs and History: "accuracy"
  virtual void reset_state() = 0;
  // sample_weight (N), when defined, weighs each sample (compile's weighted_metrics); a metric
  // that cannot weigh samples says so in supports_sample_weight.
  virtual void update_state(const Tensor& y_true, const Tensor& y_pred, const Tensor& sample_weight = Tensor()) = 0;
  virtual double result() const = 0;
  virtual bool supports_sample_weight() const { return false; }

  // Data-parallel training (distributed.hpp) logs each metric over every rank's samples: state()
  // is the running state as numbers (empty: this metric cannot be merged, and each rank logs its
  // own value), and merge_states makes this metric's state that of all ranks' data together from
  // every rank's state(), its own included. The default adds them elementwise, which suits
  // counts and sums; set_state reads back what state() wrote.
  virtual std::vector<double> state() const { return {}; }
  virtual void set_state(std::span<const double> state) { (void)state; }
  virtual void merge_states(const std::vector<std::vector<double>>& states);
};

// The running (weighted) mean of values, as keras.metrics.Mean: the loss trackers fit logs, and
// what a custom train_step tracks its own losses with.
class Mean : public Metric {
 public:
  explicit Mean(std::string name = "mean") : name_(std::move(name)) {}
  std::string name() const override { return name_; }
  void reset_state() override { sum_ = weight_ = 0.0; }
  // Adds `value` with `weight` (a batch's mean loss with the batch size as its weight).
  void update_state(double value, double weight = 1.0) {
    sum_ += value * weight;
    weight_ += weight;
  }
  void update_state(const Tensor& values);  // every element, weight 1 each
  // As a compiled metric: the mean of y_pred's elements (y_true unused), weighted per sample.
  void update_state(const Tensor& y_true, const Tensor& y_pred, const Tensor& sample_weight = Tensor()) override;
  double result() const override { return weight_ > 0 ? sum_ / weight_ : 0.0; }
  bool supports_sample_weight() const override { return true; }
  std::vector<double> state() const override { return {sum_, weight_}; }
  void set_state(std::span<const double> s) override { sum_ = s[0], weight_ = s[1]; }

 private:
  std::string name_;
  double sum_ = 0.0, weight_ = 0.0;
};

// Fraction of samples whose predicted class equals the true class (weighted: the weighted share).
class Accuracy : public Metric {
 public:
  explicit Accuracy(ClassDecoding d = {}, std::string name = "accuracy") : d_(d), name_(std::move(name)) {}
  std::string name() const override { return name_; }
  void reset_state() override { correct_ = total_ = 0; }
  void update_state(const Tensor& y_true, const Tensor& y_pred, const Tensor& sample_weight = Tensor()) override;
  double result() const override { return total_ > 0 ? correct_ / total_ : 0.0; }
  bool supports_sample_weight() const override { return true; }
  std::vector<double> state() const override { return {correct_, total_}; }
  void set_state(std::span<const double> s) override { correct_ = s[0], total_ = s[1]; }

 private:
  ClassDecoding d_;
  std::string name_;
  double correct_ = 0, total_ = 0;
};

// precision, recall or F1 from a running confusion matrix: macro average over classes, or the
// positive class (1) when the output is binary. Unweighted.
class ClassificationMetric : public Metric {
 public:
  enum Kind { precision, recall, f1_score };
  explicit ClassificationMetric(Kind kind, ClassDecoding d = {}) : kind_(kind), d_(d) {}
  std::string name() const override;
  void reset_state() override;
  void update_state(const Tensor& y_true, const Tensor& y_pred, const Tensor& sample_weight = Tensor()) override;
  double result() const override;
  const ConfusionMatrix& matrix() const { return matrix_; }
  // [binary, classes, counts...]; ranks that saw different classes merge into the larger matrix.
  std::vector<double> state() const override;
  void merge_states(const std::vector<std::vector<double>>& states) override;

 private:
  Kind kind_;
  ClassDecoding d_;
  ConfusionMatrix matrix_;
  bool binary_ = false;
};

// Keras metric names: "accuracy"/"acc" (the variant follows the loss, as Keras does),
// "sparse_categorical_accuracy", "categorical_accuracy", "binary_accuracy", "precision",
// "recall", "f1_score". ValueError for unknown names.
std::unique_ptr<Metric> metric_from_name(const std::string& name, const Loss& loss);

// A metric for compile: a Keras name ("accuracy"), a metric value of your own (copied afresh for
// each output and each fit / evaluate, from the state it has when compiled), or a shared one
// (the same object is updated and reset, so it can be read after fit; one output only).
//   CompileOptions{.metrics = {"accuracy", MeanAbsError(), std::make_shared<MeanAbsError>()}}
class MetricSpec {
 public:
  MetricSpec(const char* name) : name_(name) {}            // NOLINT: implicit by design
  MetricSpec(std::string name) : name_(std::move(name)) {}  // NOLINT
  template <class M>
    requires std::derived_from<M, Metric>
  MetricSpec(M metric)  // NOLINT
      : make_([proto = std::make_shared<const M>(std::move(metric))]() -> std::unique_ptr<Metric> {
          return std::make_unique<M>(*proto);
        }) {}
  template <class M>
    requires std::derived_from<M, Metric>
  MetricSpec(std::shared_ptr<M> metric) : shared_(std::move(metric)) {}  // NOLINT

  // A metric for one output under this loss. `shared` is set when it is the shared object.
  std::unique_ptr<Metric> make(const Loss& loss) const;
  Metric* shared() const { return shared_.get(); }
  bool is_name() const { return !name_.empty(); }
  const std::string& name() const { return name_; }  // empty unless given by name

 private:
  std::string name_;
  std::function<std::unique_ptr<Metric>()> make_;
  std::shared_ptr<Metric> shared_;
};

}  // namespace lamina
