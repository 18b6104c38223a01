// Attributions on a trained MNIST CNN (issue 17): Integrated Gradients' completeness (the sum of
// the attributions is f(x) - f(baseline) up to a delta that shrinks as steps grow) and a deletion
// check that the maps mean something (zeroing the pixels IG ranks highest costs the true class far
// more than zeroing as many random pixels). Not the methods' exact values: test_explain.cpp.
// The model and the first 100 MNIST test images are fixtures (tests/fixtures/make_mnist_cnn.sh).
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <numeric>
#include <string>
#include <vector>

#include "lamina/explain.hpp"
#include "test_util.hpp"

using namespace lamina;

namespace {

// N = images, P = 784 pixels of one image.
constexpr int64_t kPixels = 28 * 28;

const std::string kDir = std::string(LAMINA_FIXTURE_DIR) + "/mnist_cnn";

Model& mnist_cnn() {
  static Model model = Model::load(kDir + "/mnist_cnn.safetensors");
  return model;
}

// The fixture's images (N, 28, 28, 1) scaled to [0, 1] as the spec's data.scale (1/255) does,
// and their labels.
struct Images {
  Tensor x;
  std::vector<int64_t> labels;
};
const Images& test_images() {
  static const Images images = [] {
    const data::Idx pixels = data::read_idx(kDir + "/t10k-images-idx3-ubyte.gz");
    const data::Idx labels = data::read_idx(kDir + "/t10k-labels-idx1-ubyte.gz");
    Images out;
    const int64_t n = pixels.dims.at(0);
    out.x = Tensor::empty(Shape{n, 28, 28, 1});
    const float scale = static_cast<float>(1.0 / 255.0);
    for (int64_t i = 0; i < out.x.numel(); ++i) out.x.data()[i] = static_cast<float>(pixels.bytes[i]) * scale;
    out.labels.assign(labels.bytes.begin(), labels.bytes.end());
    return out;
  }();
  return images;
}

// Samples [0, n) of x.
Tensor first(const Tensor& x, int64_t n) { return x.slice(0, 0, n).clone(); }

// The model's logit of target[i] for each sample i (N).
std::vector<double> target_logits(const Tensor& x, const std::vector<int64_t>& target) {
  const Tensor y = mnist_cnn().predict(x, 128);
  std::vector<double> out(target.size());
  for (size_t i = 0; i < target.size(); ++i) out[i] = y.data()[static_cast<int64_t>(i) * y.dim(1) + target[i]];
  return out;
}

// softmax(logits)[target[i]] for each sample i (N).
std::vector<double> target_probabilities(const Tensor& x, const std::vector<int64_t>& target) {
  const Tensor y = mnist_cnn().predict(x, 128);
  const int64_t k = y.dim(1);
  std::vector<double> out(target.size());
  for (size_t i = 0; i < target.size(); ++i) {
    const float* row = y.data() + static_cast<int64_t>(i) * k;
    const double top = *std::max_element(row, row + k);
    double sum = 0;
    for (int64_t j = 0; j < k; ++j) sum += std::exp(row[j] - top);
    out[i] = std::exp(row[target[i]] - top) / sum;
  }
  return out;
}

double mean(const std::vector<double>& v) { return std::accumulate(v.begin(), v.end(), 0.0) / static_cast<double>(v.size()); }

double mean_abs(const Tensor& t) {
  double s = 0;
  for (float v : t.values()) s += std::abs(v);
  return s / static_cast<double>(t.numel());
}

// A copy of x (N, 28, 28, 1) with, in each image, the `count` pixels of highest score set to 0.
// Ties (the zero pixels' zero IG) are broken by a seeded random order, not by position.
Tensor zero_top(const Tensor& x, const Tensor& scores, int64_t count, uint64_t seed, int64_t* changed) {
  Tensor out = x.clone();
  Generator gen(seed);
  std::vector<int64_t> order(kPixels);
  for (int64_t i = 0; i < x.dim(0); ++i) {
    std::iota(order.begin(), order.end(), 0);
    for (int64_t p = kPixels - 1; p > 0; --p) std::swap(order[p], order[gen.below(p + 1)]);
    const float* s = scores.data() + i * kPixels;
    std::stable_sort(order.begin(), order.end(), [&](int64_t a, int64_t b) { return s[a] > s[b]; });
    float* o = out.data() + i * kPixels;
    for (int64_t r = 0; r < count; ++r) {
      *changed += o[order[r]] != 0.f;
      o[order[r]] = 0.f;
    }
  }
  return out;
}

}  // namespace

// The fixture is the trained model the figures below assume (test accuracy 0.98 on all 10000).
TEST(ExplainMnist, FixtureModelClassifiesTheFixtureImages) {
  const Images& images = test_images();
  ASSERT_EQ(images.x.dim(0), 100);
  const Tensor y = mnist_cnn().predict(images.x);
  const auto predicted = explain::resolve_target(y, {});
  int64_t right = 0;
  for (size_t i = 0; i < predicted.size(); ++i) right += predicted[i] == images.labels[i];
  EXPECT_GE(right, 97) << "of 100";
}

// The bound: |sum(attributions) - (f(x) - f(0))| <= 0.07 with 500 steps, for the true
// class of each image; delta is that difference, recomputed here from predict.
TEST(ExplainMnist, IntegratedGradientsCompletenessAt500Steps) {
  const Images& images = test_images();
  const int64_t n = 10;
  const Tensor x = first(images.x, n);
  const std::vector<int64_t> labels(images.labels.begin(), images.labels.begin() + n);
  const auto ig = explain::integrated_gradients(
      mnist_cnn(), x, {.target = labels, .steps = 500, .rule = explain::Rule::gauss_legendre, .internal_batch_size = 500});
  ASSERT_EQ(ig.attributions.shape(), x.shape());
  ASSERT_EQ(ig.delta.shape(), Shape{n});
  EXPECT_EQ(ig.target, labels);

  const std::vector<double> fx = target_logits(x, labels);
  const std::vector<double> f0 = target_logits(Tensor::zeros(x.shape()), labels);
  for (int64_t i = 0; i < n; ++i) {
    double sum = 0;
    for (int64_t p = 0; p < kPixels; ++p) sum += ig.attributions.data()[i * kPixels + p];
    const double delta = sum - (fx[i] - f0[i]);
    EXPECT_LE(std::abs(delta), 0.07) << "image " << i << " (label " << labels[i] << "): sum " << sum
                                     << ", f(x) - f(0) = " << fx[i] << " - " << f0[i];
    // Float sums over 784 pixels and logits near 10: agreement to 1e-3.
    EXPECT_NEAR(ig.delta.data()[i], delta, 1e-3) << "image " << i;
  }
}

// Mean |delta| over 10 images as steps grow, for Gauss-Legendre (Captum's default) and the
// trapezoid rule: printed as a table and recorded as test properties.
TEST(ExplainMnist, IntegratedGradientsDeltaShrinksAsStepsGrow) {
  const Images& images = test_images();
  const int64_t n = 10;
  const Tensor x = first(images.x, n);
  const std::vector<int64_t> labels(images.labels.begin(), images.labels.begin() + n);
  const std::vector<int> steps = {20, 50, 200, 500};
  std::printf("  mean |delta| of IG over %lld images (true class, zero baseline)\n  %-18s", static_cast<long long>(n),
              "rule \\ steps");
  for (int s : steps) std::printf("%10d", s);
  std::printf("\n");
  for (explain::Rule rule : {explain::Rule::gauss_legendre, explain::Rule::riemann_trapezoid}) {
    std::vector<double> means;
    for (int s : steps) {
      const auto ig =
          explain::integrated_gradients(mnist_cnn(), x, {.target = labels, .steps = s, .rule = rule, .internal_batch_size = 500});
      means.push_back(mean_abs(ig.delta));
      RecordProperty("mean_abs_delta_" + explain::to_string(rule) + "_" + std::to_string(s), std::to_string(means.back()));
    }
    std::printf("  %-18s", explain::to_string(rule).c_str());
    for (double m : means) std::printf("%10.5f", m);
    std::printf("\n");
    EXPECT_LE(means.back(), 0.07) << explain::to_string(rule);
    EXPECT_LT(means.back(), 0.5 * means.front()) << explain::to_string(rule) << ": 500 steps against 20";
    for (size_t j = 1; j < means.size(); ++j)
      EXPECT_LE(means[j], means[j - 1] * 1.25 + 1e-3)
          << explain::to_string(rule) << ": " << steps[j] << " steps against " << steps[j - 1];
  }
}

// Zeroing the 10% of pixels IG ranks highest (78 of 784, ranked among all pixels as the issue
// says, so that pixels already 0 may be chosen) must cost the true class much more probability
// than zeroing 78 random pixels (most of which are background and change nothing).
TEST(ExplainMnist, DeletingTopIntegratedGradientsPixelsDropsTheTrueClass) {
  const Images& images = test_images();
  const Tensor& x = images.x;
  const std::vector<int64_t>& labels = images.labels;
  const int64_t n = x.dim(0), count = kPixels / 10;
  const auto ig = explain::integrated_gradients(mnist_cnn(), x, {.target = labels, .internal_batch_size = 1000});
  Generator gen(7);
  const Tensor random_scores = Tensor::rand(x.shape(), gen);
  int64_t changed_ig = 0, changed_random = 0;
  const Tensor x_ig = zero_top(x, ig.attributions, count, 1, &changed_ig);
  const Tensor x_random = zero_top(x, random_scores, count, 1, &changed_random);

  const std::vector<double> p = target_probabilities(x, labels);
  const std::vector<double> p_ig = target_probabilities(x_ig, labels);
  const std::vector<double> p_random = target_probabilities(x_random, labels);
  const double drop_ig = mean(p) - mean(p_ig), drop_random = mean(p) - mean(p_random);
  std::printf("  true-class probability over %lld images: %.4f; zeroing the top %lld pixels by IG: %.4f "
              "(drop %.4f, %.1f nonzero pixels changed per image); %lld random pixels: %.4f (drop %.4f, %.1f changed)\n",
              static_cast<long long>(n), mean(p), static_cast<long long>(count), mean(p_ig), drop_ig,
              static_cast<double>(changed_ig) / n, static_cast<long long>(count), mean(p_random), drop_random,
              static_cast<double>(changed_random) / n);
  RecordProperty("p_true", std::to_string(mean(p)));
  RecordProperty("p_true_ig_top10", std::to_string(mean(p_ig)));
  RecordProperty("p_true_random10", std::to_string(mean(p_random)));
  // Measured: 0.974 -> 0.023 by IG (71 of the 78 pixels were nonzero), -> 0.956 at random (14 were);
  // a PyTorch IG on the same weights gives 0.023 too.
  EXPECT_GE(drop_ig, 0.6);
  EXPECT_GE(drop_ig, 10 * drop_random);
}
