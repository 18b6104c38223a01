// Accuracy variants, the confusion matrix and the precision / recall / F1 built on it.
#include <gtest/gtest.h>

#include <sstream>

#include "lamina/lamina.hpp"

namespace lamina {
namespace {

TEST(Accuracy, SparseCategoricalBinary) {
  Accuracy acc;
  const Tensor probs = Tensor::from({{0.1f, 0.9f}, {0.8f, 0.2f}, {0.3f, 0.7f}});
  acc.update_state(Tensor::from({1.f, 0.f, 0.f}), probs);  // sparse labels: 2 of 3
  EXPECT_DOUBLE_EQ(acc.result(), 2.0 / 3.0);
  acc.update_state(Tensor::from({{0.f, 1.f}}), Tensor::from({{0.4f, 0.6f}}));  // one-hot: right
  EXPECT_DOUBLE_EQ(acc.result(), 3.0 / 4.0);
  acc.reset_state();
  EXPECT_DOUBLE_EQ(acc.result(), 0.0);
  Accuracy binary;
  binary.update_state(Tensor::from({1.f, 0.f, 1.f, 0.f}), Tensor::from({0.7f, 0.4f, 0.2f, 0.6f}, {4, 1}));
  EXPECT_DOUBLE_EQ(binary.result(), 0.5);
  Accuracy logits(ClassDecoding{0.f});  // threshold 0 for logits
  logits.update_state(Tensor::from({1.f, 0.f}), Tensor::from({0.3f, -0.2f}, {2, 1}));
  EXPECT_DOUBLE_EQ(logits.result(), 1.0);
}

TEST(ConfusionMatrix, PrecisionRecallF1) {
  ConfusionMatrix m;
  // truth:     0 0 0 1 1 2
  // predicted: 0 0 1 1 2 2
  m.update({0, 0, 0, 1, 1, 2}, {0, 0, 1, 1, 2, 2});
  EXPECT_EQ(m.num_classes(), 3);
  EXPECT_EQ(m.count(0, 1), 1);
  EXPECT_DOUBLE_EQ(m.accuracy(), 4.0 / 6.0);
  EXPECT_DOUBLE_EQ(m.precision(0), 1.0);
  EXPECT_DOUBLE_EQ(m.recall(0), 2.0 / 3.0);
  EXPECT_DOUBLE_EQ(m.precision(1), 0.5);
  EXPECT_DOUBLE_EQ(m.recall(1), 0.5);
  EXPECT_DOUBLE_EQ(m.precision(2), 0.5);
  EXPECT_DOUBLE_EQ(m.recall(2), 1.0);
  EXPECT_DOUBLE_EQ(m.f1(0), 0.8);
  EXPECT_DOUBLE_EQ(m.macro_precision(), 2.0 / 3.0);
  EXPECT_NEAR(m.macro_f1(), (0.8 + 0.5 + 2.0 / 3.0) / 3.0, 1e-12);
  std::ostringstream os;
  m.print(os);
  EXPECT_NE(os.str().find("macro"), std::string::npos);
  EXPECT_THROW(m.update({0}, {0, 1}), ShapeError);
}

TEST(ClassificationMetric, MacroAndBinary) {
  ClassificationMetric p(ClassificationMetric::precision), r(ClassificationMetric::recall),
      f(ClassificationMetric::f1_score);
  const Tensor labels = Tensor::from({0.f, 0.f, 0.f, 1.f, 1.f, 2.f});
  const Tensor pred = Tensor::from({{1.f, 0.f, 0.f}, {1.f, 0.f, 0.f}, {0.f, 1.f, 0.f},
                                    {0.f, 1.f, 0.f}, {0.f, 0.f, 1.f}, {0.f, 0.f, 1.f}});
  for (Metric* m : std::initializer_list<Metric*>{&p, &r, &f}) m->update_state(labels, pred);
  EXPECT_DOUBLE_EQ(p.result(), 2.0 / 3.0);
  EXPECT_NEAR(r.result(), (2.0 / 3.0 + 0.5 + 1.0) / 3.0, 1e-12);
  EXPECT_EQ(f.name(), "f1_score");
  // binary output: the positive class. truth 1 1 0 0, predicted 1 0 1 0 -> precision 0.5, recall 0.5
  ClassificationMetric bp(ClassificationMetric::precision);
  bp.update_state(Tensor::from({1.f, 1.f, 0.f, 0.f}), Tensor::from({0.9f, 0.1f, 0.8f, 0.2f}, {4, 1}));
  EXPECT_DOUBLE_EQ(bp.result(), 0.5);
}

TEST(Metrics, FromNames) {
  const Loss sparse("sparse_categorical_crossentropy");
  EXPECT_EQ(metric_from_name("accuracy", sparse)->name(), "accuracy");
  EXPECT_EQ(metric_from_name("acc", sparse)->name(), "accuracy");
  EXPECT_EQ(metric_from_name("f1_score", sparse)->name(), "f1_score");
  EXPECT_EQ(metric_from_name("binary_accuracy", Loss("binary_crossentropy"))->name(), "binary_accuracy");
  EXPECT_THROW(metric_from_name("auc_roc_magic", sparse), ValueError);
}

}  // namespace
}  // namespace lamina

namespace lamina {
namespace {

// Weighted metrics need one weight per sample: weights that do not split the rows evenly (10 rows,
// 3 weights) are refused rather than read past their end.
TEST(WeightedMetrics, WeightsMustSplitTheRows) {
  Tensor y = Tensor::zeros({10}), p = Tensor::zeros({10, 2});
  Accuracy acc;
  EXPECT_THROW(acc.update_state(y, p, Tensor::ones({3})), ShapeError);
  Mean mean;
  EXPECT_THROW(mean.update_state(y, p, Tensor::ones({3})), ShapeError);
  acc.update_state(Tensor::zeros({2, 3}), Tensor::zeros({2, 3, 2}), Tensor::from({1.f, 3.f}));  // 3 rows per sample
  EXPECT_DOUBLE_EQ(acc.result(), 1.0);
  mean.update_state(y, Tensor::from({{1.f, 3.f}, {5.f, 7.f}}), Tensor::from({1.f, 3.f}));  // (1+3)*1 + (5+7)*3
  EXPECT_DOUBLE_EQ(mean.result(), (4.0 + 36.0) / 8.0);
}

}  // namespace
}  // namespace lamina
