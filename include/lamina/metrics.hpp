// Metrics that accumulate over batches: accuracy (sparse, categorical, binary), precision,
// recall and F1 (macro over classes, or the positive class for a binary output), and the
// confusion matrix behind them. Predictions may be probabilities or logits.
//
//   auto acc = metric_from_name("accuracy", Loss("sparse_categorical_crossentropy"));
//   acc->update(labels, probs);  acc->result();
#pragma once

#include <cstdint>
#include <memory>
#include <ostream>
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

class Metric {
 public:
  virtual ~Metric() = default;
  virtual std::string name() const = 0;  // the key in logs and History: "accuracy"
  virtual void reset() = 0;
  virtual void update(const Tensor& y_true, const Tensor& y_pred) = 0;
  virtual double result() const = 0;
};

// Fraction of samples whose predicted class equals the true class.
class Accuracy : public Metric {
 public:
  explicit Accuracy(ClassDecoding d = {}, std::string name = "accuracy") : d_(d), name_(std::move(name)) {}
  std::string name() const override { return name_; }
  void reset() override { correct_ = total_ = 0; }
  void update(const Tensor& y_true, const Tensor& y_pred) override;
  double result() const override { return total_ ? static_cast<double>(correct_) / static_cast<double>(total_) : 0.0; }

 private:
  ClassDecoding d_;
  std::string name_;
  int64_t correct_ = 0, total_ = 0;
};

// precision, recall or F1 from a running confusion matrix: macro average over classes, or the
// positive class (1) when the output is binary.
class ClassificationMetric : public Metric {
 public:
  enum Kind { precision, recall, f1_score };
  explicit ClassificationMetric(Kind kind, ClassDecoding d = {}) : kind_(kind), d_(d) {}
  std::string name() const override;
  void reset() override;
  void update(const Tensor& y_true, const Tensor& y_pred) override;
  double result() const override;
  const ConfusionMatrix& matrix() const { return matrix_; }

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

}  // namespace lamina
