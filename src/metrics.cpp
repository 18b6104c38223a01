// Metrics: class decoding, the confusion matrix, and the streaming metrics built on them.
#include "lamina/metrics.hpp"

#include <algorithm>
#include <cstdio>

namespace lamina {

std::vector<int64_t> predicted_classes(const Tensor& y_pred, const ClassDecoding& d) {
  const int64_t cols = y_pred.rank() >= 2 ? y_pred.dim(-1) : 1;
  const int64_t rows = cols ? y_pred.numel() / cols : 0;
  std::vector<int64_t> out(static_cast<size_t>(rows));
  const float* p = y_pred.data();
  for (int64_t r = 0; r < rows; ++r) {
    if (cols == 1) {
      out[static_cast<size_t>(r)] = p[r] > d.threshold ? 1 : 0;
    } else {
      const float* row = p + r * cols;
      out[static_cast<size_t>(r)] = std::max_element(row, row + cols) - row;
    }
  }
  return out;
}

std::vector<int64_t> true_classes(const Tensor& y_true, const Tensor& y_pred) {
  const int64_t cols = y_pred.rank() >= 2 ? y_pred.dim(-1) : 1;
  const int64_t rows = cols ? y_pred.numel() / cols : 0;
  const float* t = y_true.data();
  std::vector<int64_t> out(static_cast<size_t>(rows));
  if (cols > 1 && y_true.numel() == rows * cols && y_true.numel() != rows) {  // one-hot
    for (int64_t r = 0; r < rows; ++r) {
      const float* row = t + r * cols;
      out[static_cast<size_t>(r)] = std::max_element(row, row + cols) - row;
    }
  } else if (y_true.numel() == rows) {
    for (int64_t r = 0; r < rows; ++r)
      out[static_cast<size_t>(r)] = cols == 1 ? (t[r] > 0.5f ? 1 : 0) : static_cast<int64_t>(t[r]);
  } else {
    throw ShapeError("metrics: y_true " + y_true.shape().str() + " does not match y_pred " + y_pred.shape().str());
  }
  return out;
}

// --- ConfusionMatrix ----------------------------------------------------------------------------

void ConfusionMatrix::resize(int64_t n) {
  if (n <= n_) return;
  std::vector<int64_t> grown(static_cast<size_t>(n * n), 0);
  for (int64_t i = 0; i < n_; ++i)
    for (int64_t j = 0; j < n_; ++j) grown[static_cast<size_t>(i * n + j)] = counts_[static_cast<size_t>(i * n_ + j)];
  counts_ = std::move(grown);
  n_ = n;
}

void ConfusionMatrix::update(const std::vector<int64_t>& truth, const std::vector<int64_t>& predicted) {
  if (truth.size() != predicted.size())
    throw ShapeError("ConfusionMatrix: " + std::to_string(truth.size()) + " targets but " +
                     std::to_string(predicted.size()) + " predictions");
  int64_t needed = n_;
  for (size_t i = 0; i < truth.size(); ++i) {
    if (truth[i] < 0 || predicted[i] < 0) throw ValueError("ConfusionMatrix: negative class index");
    needed = std::max({needed, truth[i] + 1, predicted[i] + 1});
  }
  resize(needed);
  for (size_t i = 0; i < truth.size(); ++i) ++counts_[static_cast<size_t>(truth[i] * n_ + predicted[i])];
}

void ConfusionMatrix::add(int64_t truth, int64_t predicted, int64_t count) {
  if (truth < 0 || predicted < 0) throw ValueError("ConfusionMatrix: negative class index");
  resize(std::max({n_, truth + 1, predicted + 1}));
  counts_[static_cast<size_t>(truth * n_ + predicted)] += count;
}

void ConfusionMatrix::reset() { std::fill(counts_.begin(), counts_.end(), 0); }

int64_t ConfusionMatrix::total() const {
  int64_t s = 0;
  for (int64_t c : counts_) s += c;
  return s;
}

double ConfusionMatrix::accuracy() const {
  int64_t correct = 0;
  for (int64_t c = 0; c < n_; ++c) correct += count(c, c);
  const int64_t t = total();
  return t ? static_cast<double>(correct) / static_cast<double>(t) : 0.0;
}

double ConfusionMatrix::precision(int64_t c) const {
  int64_t predicted = 0;
  for (int64_t t = 0; t < n_; ++t) predicted += count(t, c);
  return predicted ? static_cast<double>(count(c, c)) / static_cast<double>(predicted) : 0.0;
}

double ConfusionMatrix::recall(int64_t c) const {
  int64_t actual = 0;
  for (int64_t p = 0; p < n_; ++p) actual += count(c, p);
  return actual ? static_cast<double>(count(c, c)) / static_cast<double>(actual) : 0.0;
}

double ConfusionMatrix::f1(int64_t c) const {
  const double p = precision(c), r = recall(c);
  return p + r > 0 ? 2 * p * r / (p + r) : 0.0;
}

namespace {
template <class F>
double macro(int64_t n, F f) {
  double s = 0;
  for (int64_t c = 0; c < n; ++c) s += f(c);
  return n ? s / static_cast<double>(n) : 0.0;
}
}  // namespace

double ConfusionMatrix::macro_precision() const { return macro(n_, [&](int64_t c) { return precision(c); }); }
double ConfusionMatrix::macro_recall() const { return macro(n_, [&](int64_t c) { return recall(c); }); }
double ConfusionMatrix::macro_f1() const { return macro(n_, [&](int64_t c) { return f1(c); }); }

void ConfusionMatrix::print(std::ostream& os) const {
  char line[160];
  os << "class  precision  recall  f1-score  support\n";
  for (int64_t c = 0; c < n_; ++c) {
    int64_t support = 0;
    for (int64_t p = 0; p < n_; ++p) support += count(c, p);
    std::snprintf(line, sizeof line, "%5lld  %9.4f  %6.4f  %8.4f  %7lld\n", static_cast<long long>(c), precision(c),
                  recall(c), f1(c), static_cast<long long>(support));
    os << line;
  }
  std::snprintf(line, sizeof line, "macro  %9.4f  %6.4f  %8.4f  %7lld\n", macro_precision(), macro_recall(),
                macro_f1(), static_cast<long long>(total()));
  os << line << "\nconfusion matrix (rows: true class, columns: predicted)\n";
  for (int64_t t = 0; t < n_; ++t) {
    for (int64_t p = 0; p < n_; ++p) {
      std::snprintf(line, sizeof line, "%6lld", static_cast<long long>(count(t, p)));
      os << line;
    }
    os << '\n';
  }
}

// --- streaming metrics ------------------------------------------------------------------------------

void Mean::update_state(const Tensor& values) {
  for (float v : values.values()) update_state(static_cast<double>(v));
}


namespace {
// Rows per sample for `rows` predictions (a sequence output has several per sample), each row
// taking its sample's weight; ShapeError unless the weights split the rows evenly.
size_t rows_per_weight(const std::string& metric, const Tensor& sample_weight, size_t rows) {
  if (!sample_weight.defined()) return 1;
  const auto n = static_cast<size_t>(sample_weight.numel());
  if (n == 0 || rows % n != 0)
    throw ShapeError("metric '" + metric + "': sample_weight " + sample_weight.shape().str() + " for " +
                     std::to_string(rows) + " predictions (expected one weight per sample)");
  return rows / n;
}
}  // namespace

void Mean::update_state(const Tensor&, const Tensor& y_pred, const Tensor& sample_weight) {
  const auto rows = static_cast<size_t>(y_pred.numel());
  const size_t per = rows_per_weight(name_, sample_weight, rows);
  const float* p = y_pred.data();
  for (size_t i = 0; i < rows; ++i) update_state(p[i], sample_weight.defined() ? sample_weight.data()[i / per] : 1.0);
}

void Accuracy::update_state(const Tensor& y_true, const Tensor& y_pred, const Tensor& sample_weight) {
  const auto truth = true_classes(y_true, y_pred), pred = predicted_classes(y_pred, d_);
  const size_t per = rows_per_weight(name_, sample_weight, truth.size());
  const float* w = sample_weight.defined() ? sample_weight.data() : nullptr;
  for (size_t i = 0; i < truth.size(); ++i) {
    const double wi = w ? w[i / per] : 1.0;
    correct_ += truth[i] == pred[i] ? wi : 0.0;
    total_ += wi;
  }
}

std::string ClassificationMetric::name() const {
  return kind_ == precision ? "precision" : kind_ == recall ? "recall" : "f1_score";
}

void ClassificationMetric::reset_state() { matrix_.reset(); }

void ClassificationMetric::update_state(const Tensor& y_true, const Tensor& y_pred, const Tensor& sample_weight) {
  if (sample_weight.defined())
    throw ValueError("metric '" + name() + "' does not weigh samples; list it in metrics, not weighted_metrics");
  binary_ = !(y_pred.rank() >= 2 && y_pred.dim(-1) > 1);
  matrix_.update(true_classes(y_true, y_pred), predicted_classes(y_pred, d_));
}

double ClassificationMetric::result() const {
  if (binary_) {
    if (matrix_.num_classes() < 2) return 0.0;
    return kind_ == precision ? matrix_.precision(1) : kind_ == recall ? matrix_.recall(1) : matrix_.f1(1);
  }
  return kind_ == precision ? matrix_.macro_precision() : kind_ == recall ? matrix_.macro_recall() : matrix_.macro_f1();
}

void Metric::merge_states(const std::vector<std::vector<double>>& states) {
  std::vector<double> total;
  for (const std::vector<double>& s : states) {
    if (total.empty()) total.assign(s.size(), 0.0);
    if (s.size() != total.size())
      throw ValueError("metric '" + name() + "': states of " + std::to_string(total.size()) + " and " +
                       std::to_string(s.size()) + " numbers cannot be added; override merge_states");
    for (size_t i = 0; i < s.size(); ++i) total[i] += s[i];
  }
  if (!total.empty()) set_state(total);
}

std::vector<double> ClassificationMetric::state() const {
  std::vector<double> s{binary_ ? 1.0 : 0.0, static_cast<double>(matrix_.num_classes())};
  for (int64_t i = 0; i < matrix_.num_classes(); ++i)
    for (int64_t j = 0; j < matrix_.num_classes(); ++j) s.push_back(static_cast<double>(matrix_.count(i, j)));
  return s;
}

void ClassificationMetric::merge_states(const std::vector<std::vector<double>>& states) {
  ConfusionMatrix merged;
  bool binary = false;
  for (const std::vector<double>& s : states) {
    if (s.size() < 2) continue;
    const auto n = static_cast<int64_t>(s[1]);
    binary = binary || s[0] != 0.0;
    for (int64_t i = 0; i < n; ++i)
      for (int64_t j = 0; j < n; ++j)
        if (const double c = s[static_cast<size_t>(2 + i * n + j)]; c > 0) merged.add(i, j, static_cast<int64_t>(c));
  }
  matrix_ = merged;
  binary_ = binary;
}

std::unique_ptr<Metric> metric_from_name(const std::string& name, const Loss& loss) {
  const ClassDecoding d{loss.from_logits() ? 0.f : 0.5f};
  if (name == "accuracy" || name == "acc" || name == "sparse_categorical_accuracy" ||
      name == "categorical_accuracy" || name == "binary_accuracy")
    return std::make_unique<Accuracy>(d, name == "acc" ? "accuracy" : name);
  if (name == "precision") return std::make_unique<ClassificationMetric>(ClassificationMetric::precision, d);
  if (name == "recall") return std::make_unique<ClassificationMetric>(ClassificationMetric::recall, d);
  if (name == "f1_score" || name == "f1") return std::make_unique<ClassificationMetric>(ClassificationMetric::f1_score, d);
  throw ValueError("metric '" + name +
                   "' is not known (known: accuracy, sparse_categorical_accuracy, categorical_accuracy, "
                   "binary_accuracy, precision, recall, f1_score)");
}

std::unique_ptr<Metric> MetricSpec::make(const Loss& loss) const {
  if (!name_.empty()) return metric_from_name(name_, loss);
  if (make_) return make_();
  return nullptr;  // shared: the caller uses shared()
}

}  // namespace lamina
