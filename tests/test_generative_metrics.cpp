// generative_metrics: classifier score, class entropy ratio, label accuracy and Frechet distance
// against numpy references (tests/fixtures/make_generative_metrics_fixtures.py, float64), the
// properties each must have, the Jacobi eigen-decomposition on its own, and the errors.
#include <gtest/gtest.h>

#include <chrono>
#include <cmath>
#include <limits>
#include <string>
#include <vector>

#include "lamina/generative_metrics.hpp"
#include "lamina/lamina.hpp"
#include "test_util.hpp"

namespace lamina {
namespace {

using testing::error_of;

double ref(const std::map<std::string, Tensor>& f, const std::string& key) { return f.at(key).data()[0]; }

// |got - want| <= rtol * |want| + atol, with both printed.
::testing::AssertionResult near(double got, double want, double rtol, double atol = 0.0) {
  if (std::abs(got - want) <= rtol * std::abs(want) + atol) return ::testing::AssertionSuccess();
  return ::testing::AssertionFailure() << "got " << got << ", want " << want << " (diff " << got - want << ")";
}

// (N, K) one-hot rows for classes[i].
Tensor one_hot(const std::vector<int>& classes, int64_t k) {
  Tensor t = Tensor::zeros({static_cast<int64_t>(classes.size()), k});
  for (size_t i = 0; i < classes.size(); ++i) t.data()[i * k + classes[i]] = 1.f;
  return t;
}

TEST(GenerativeMetrics, MatchNumpyReference) {
  const auto f = testing::load_fixture("generative_metrics");
  // References are float64 results stored as float32: 1e-6 relative covers the storage.
  EXPECT_TRUE(near(classifier_score(f.at("probs")), ref(f, "cs"), 1e-6));
  EXPECT_TRUE(near(class_entropy_ratio(f.at("probs")), ref(f, "er"), 1e-6));
  EXPECT_TRUE(near(frechet_distance(f.at("fa"), f.at("fb")), ref(f, "fd_ab"), 1e-6));
  // Rank-deficient covariances (N < D): the eigenvalues clamp at 0 and the result still agrees.
  EXPECT_TRUE(near(frechet_distance(f.at("fc"), f.at("fd")), ref(f, "fd_cd"), 1e-6));
  EXPECT_TRUE(near(frechet_distance(f.at("fe"), f.at("ff")), ref(f, "fd_ef"), 1e-6));

  const ClassifierScores s = classifier_scores(f.at("probs"), f.at("labels"), f.at("fa"), f.at("fb"));
  EXPECT_EQ(s.count, 200);
  ASSERT_TRUE(s.accuracy.has_value());
  EXPECT_TRUE(near(*s.accuracy, ref(f, "acc"), 1e-7));
  EXPECT_TRUE(near(s.classifier_score, ref(f, "cs"), 1e-6));
  EXPECT_TRUE(near(s.entropy_ratio, ref(f, "er"), 1e-6));
  EXPECT_TRUE(near(s.frechet_distance, ref(f, "fd_ab"), 1e-6));
  // The reference set's statistics computed once give the same; no labels: no accuracy.
  const FeatureStats real = feature_stats(f.at("fb"));
  const ClassifierScores u = classifier_scores(f.at("probs"), Tensor(), f.at("fa"), real);
  EXPECT_FALSE(u.accuracy.has_value());
  EXPECT_EQ(u.frechet_distance, s.frechet_distance);
  // Labels as (N, 1) too.
  EXPECT_EQ(classifier_scores(f.at("probs"), f.at("labels").reshape({200, 1}), f.at("fa"), real).accuracy, s.accuracy);
}

TEST(GenerativeMetrics, ClassifierScoreProperties) {
  // Confident predictions spread evenly over K classes: K. Identical rows: 1.
  EXPECT_TRUE(near(classifier_score(one_hot({0, 1, 2, 3, 4, 0, 1, 2, 3, 4}, 5)), 5.0, 1e-12));
  EXPECT_TRUE(near(classifier_score(one_hot({3, 3, 3, 3}, 10)), 1.0, 1e-12));
  const Tensor same = Tensor::from({{0.2f, 0.3f, 0.5f}, {0.2f, 0.3f, 0.5f}, {0.2f, 0.3f, 0.5f}});
  EXPECT_TRUE(near(classifier_score(same), 1.0, 1e-12));
  // Confident over 2 of 10 classes: 2 (what a generator that collapsed to two digits scores).
  EXPECT_TRUE(near(classifier_score(one_hot({7, 1, 7, 1, 1, 7}, 10)), 2.0, 1e-12));
  // Two rows (1, 0) and (0.5, 0.5) by hand: p(y) = (0.75, 0.25);
  // KL1 = ln(1/0.75), KL2 = 0.5 ln(0.5/0.75) + 0.5 ln(0.5/0.25).
  const double kl1 = std::log(1 / 0.75), kl2 = 0.5 * std::log(0.5 / 0.75) + 0.5 * std::log(2.0);
  EXPECT_TRUE(near(classifier_score(Tensor::from({{1.f, 0.f}, {0.5f, 0.5f}})), std::exp((kl1 + kl2) / 2), 1e-12));
}

TEST(GenerativeMetrics, EntropyRatioProperties) {
  EXPECT_TRUE(near(class_entropy_ratio(one_hot({0, 1, 2, 3, 0, 1, 2, 3}, 4)), 1.0, 1e-12));
  EXPECT_EQ(class_entropy_ratio(one_hot({2, 2, 2}, 4)), 0.0);
  // Half in each of two of four classes: ln 2 / ln 4 = 0.5.
  EXPECT_TRUE(near(class_entropy_ratio(one_hot({0, 3, 0, 3}, 4)), 0.5, 1e-12));
  // Ties go to the first maximum: (0.5, 0.5) counts as class 0.
  EXPECT_EQ(class_entropy_ratio(Tensor::from({{0.5f, 0.5f}, {0.6f, 0.4f}})), 0.0);
}

TEST(GenerativeMetrics, FrechetProperties) {
  manual_seed(23);  // its own draws, whichever tests ran before it in this process
  const Tensor a = Tensor::randn({120, 12}, 0.f, 1.f);
  const Tensor b = Tensor::randn({90, 12}, 0.5f, 2.f);
  EXPECT_TRUE(near(frechet_distance(a, a), 0.0, 0.0, 1e-9));
  const double ab = frechet_distance(a, b), ba = frechet_distance(b, a);
  EXPECT_GT(ab, 1.0);
  EXPECT_TRUE(near(ab, ba, 1e-10));
  // Shifting a set by v leaves its covariance: FD(a + v, a) = |v|^2, and in general
  // FD(a + v, b) = FD(a, b) + |v|^2 + 2 v.(mu_a - mu_b).
  Tensor shifted = a.clone();
  std::vector<float> v(12);
  double v2 = 0;
  for (int j = 0; j < 12; ++j) {
    v[j] = 0.25f * static_cast<float>(j % 5) - 0.5f;
    v2 += static_cast<double>(v[j]) * v[j];
  }
  for (int64_t i = 0; i < 120; ++i)
    for (int j = 0; j < 12; ++j) shifted.data()[i * 12 + j] += v[j];
  // The shift is applied in float32, so the means move by v up to float rounding.
  EXPECT_TRUE(near(frechet_distance(shifted, a), v2, 1e-5, 1e-6));
  const FeatureStats sa = feature_stats(a), sb = feature_stats(b), ss = feature_stats(shifted);
  double dot = 0;
  for (int j = 0; j < 12; ++j) dot += (ss.mean[j] - sa.mean[j]) * (sa.mean[j] - sb.mean[j]);
  double moved = 0;
  for (int j = 0; j < 12; ++j) moved += (ss.mean[j] - sa.mean[j]) * (ss.mean[j] - sa.mean[j]);
  // Exact but for the covariance, which the float32 shift moves by rounding (about 1e-9 relative
  // per value): 1e-7 relative leaves room for that, and a wrong formula is off by whole units.
  EXPECT_TRUE(near(frechet_distance(ss, sb), frechet_distance(sa, sb) + moved + 2 * dot, 1e-7, 1e-9));
  // Covariance as numpy.cov (N - 1): two samples 0 and 2 in one dimension: variance 2.
  const FeatureStats two = feature_stats(Tensor::from({0.f, 2.f}, {2, 1}));
  EXPECT_EQ(two.cov[0], 2.0);
  EXPECT_EQ(two.mean[0], 1.0);
  // One dimension by hand: (mu_a - mu_b)^2 + (sigma_a - sigma_b)^2.
  const Tensor x = Tensor::from({0.f, 2.f}, {2, 1}), y = Tensor::from({5.f, 13.f}, {2, 1});  // var 2 and 32
  EXPECT_TRUE(near(frechet_distance(x, y), 8.0 * 8.0 + std::pow(std::sqrt(2.0) - std::sqrt(32.0), 2), 1e-12));
}

// A V = V diag(values), V^T V = I, values ascending, sum of values = trace, to `tol` of ||A||.
void check_eigen(const std::vector<double>& a, int64_t n, const detail::SymmetricEigen& e, double tol,
                 const std::string& what) {
  SCOPED_TRACE(what);
  ASSERT_EQ(e.values.size(), static_cast<size_t>(n));
  ASSERT_EQ(e.vectors.size(), static_cast<size_t>(n * n));
  double norm = 0;
  for (double x : a) norm = std::max(norm, std::abs(x));
  double worst_residual = 0, worst_orth = 0, trace = 0, sum = 0;
  for (int64_t i = 0; i < n; ++i) {
    trace += a[i * n + i];
    sum += e.values[i];
    if (i > 0) {
      EXPECT_LE(e.values[i - 1], e.values[i]);
    }
    for (int64_t j = 0; j < n; ++j) {
      double av = 0, vv = 0;
      for (int64_t k = 0; k < n; ++k) {
        av += a[i * n + k] * e.vectors[k * n + j];
        vv += e.vectors[k * n + i] * e.vectors[k * n + j];
      }
      worst_residual = std::max(worst_residual, std::abs(av - e.values[j] * e.vectors[i * n + j]));
      worst_orth = std::max(worst_orth, std::abs(vv - (i == j ? 1.0 : 0.0)));
    }
  }
  EXPECT_LT(worst_residual, tol * std::max(norm, 1.0));
  EXPECT_LT(worst_orth, tol);
  EXPECT_TRUE(near(sum, trace, tol, tol * std::max(norm, 1.0)));
}

// Symmetric test matrices: random indefinite, rank-deficient PSD (X^T X with X (5, n)), and
// one with a 20-fold repeated eigenvalue (I + u u^T).
std::vector<std::pair<std::string, std::vector<double>>> test_matrices(int64_t n) {
  const Tensor r = Tensor::randn({n, n}), x = Tensor::randn({5, n}), u = Tensor::randn({n});
  std::vector<double> sym(static_cast<size_t>(n * n)), gram(sym.size()), repeated(sym.size());
  for (int64_t i = 0; i < n; ++i)
    for (int64_t j = 0; j < n; ++j) {
      sym[i * n + j] = 0.5 * (r.data()[i * n + j] + r.data()[j * n + i]);
      for (int64_t k = 0; k < 5; ++k) gram[i * n + j] += double(x.data()[k * n + i]) * x.data()[k * n + j];
      repeated[i * n + j] = (i == j ? 1.0 : 0.0) + double(u.data()[i]) * u.data()[j];
    }
  return {{"random symmetric", sym}, {"rank 5 gram", gram}, {"repeated eigenvalue", repeated}};
}

TEST(GenerativeMetrics, SymmetricEigenAgainstJacobi) {
  for (int64_t n : {1, 2, 7, 37}) {
    for (const auto& [name, a] : test_matrices(n)) {
      const std::string what = name + " n=" + std::to_string(n);
      const detail::SymmetricEigen ql = detail::symmetric_eigen(a, n), jacobi = detail::symmetric_eigen_jacobi(a, n);
      check_eigen(a, n, ql, 1e-12, what + " (QL)");
      check_eigen(a, n, jacobi, 1e-12, what + " (Jacobi)");
      for (int64_t i = 0; i < n; ++i) ASSERT_TRUE(near(ql.values[i], jacobi.values[i], 1e-11, 1e-11)) << what << " " << i;
    }
  }
  // [[2, 1], [1, 2]] has 1 and 3; a diagonal matrix is its own decomposition.
  for (auto* f : {&detail::symmetric_eigen, &detail::symmetric_eigen_jacobi}) {
    const detail::SymmetricEigen two = (*f)(std::vector<double>{2, 1, 1, 2}, 2);
    EXPECT_TRUE(near(two.values[0], 1.0, 1e-15));
    EXPECT_TRUE(near(two.values[1], 3.0, 1e-15));
    const detail::SymmetricEigen diag = (*f)(std::vector<double>{3, 0, 0, 0, -1, 0, 0, 0, 2}, 3);
    EXPECT_EQ(diag.values, (std::vector<double>{-1, 2, 3}));
    EXPECT_EQ((*f)(std::vector<double>{}, 0).values.size(), 0u);
    EXPECT_THROW((*f)(std::vector<double>{1, 2, 3}, 2), ShapeError);
  }
}

TEST(GenerativeMetrics, FrechetAt512DimsIsQuick) {
  // "Up to ~500 dims": four O(D^3) steps (two decompositions, two products) at D = 512.
  const Tensor a = Tensor::randn({600, 512}), b = Tensor::randn({600, 512}, 0.1f, 1.1f);
  const auto start = std::chrono::steady_clock::now();
  const double fd = frechet_distance(a, b);
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  EXPECT_GT(fd, 0.0);
  EXPECT_LT(seconds, 10.0) << "frechet_distance at D = 512 took " << seconds << " s";
  std::printf("frechet_distance (600 + 600) x 512: %.3f s\n", seconds);
}

TEST(GenerativeMetrics, Errors) {
  const std::string logits = error_of<ValueError>([] { classifier_score(Tensor::from({{2.f, -1.f}})); });
  EXPECT_NE(logits.find("softmax"), std::string::npos) << logits;
  EXPECT_NE(error_of<ValueError>([] { classifier_score(Tensor::from({{0.6f, 0.6f}})); }).find("sums to"),
            std::string::npos);
  EXPECT_NE(error_of<ValueError>([] {
              class_entropy_ratio(Tensor::from({{std::numeric_limits<float>::quiet_NaN(), 1.f}}));
            }).find("(0, 0)"),
            std::string::npos);
  EXPECT_THROW(classifier_score(Tensor::from({0.5f, 0.5f})), ShapeError);
  EXPECT_THROW(class_entropy_ratio(Tensor::ones({3, 1})), ShapeError);  // ln 1 = 0
  EXPECT_NE(error_of<ShapeError>([] { frechet_distance(Tensor::zeros({5, 3}), Tensor::zeros({5, 4})); })
                .find("(5, 4)"),
            std::string::npos);
  EXPECT_NE(error_of<ShapeError>([] { frechet_distance(Tensor::zeros({1, 3}), Tensor::zeros({5, 3})); })
                .find("N >= 2"),
            std::string::npos);
  Tensor inf = Tensor::zeros({3, 2});
  inf.data()[5] = std::numeric_limits<float>::infinity();
  EXPECT_NE(error_of<ValueError>([&] { frechet_distance(inf, Tensor::zeros({3, 2})); }).find("(2, 1)"),
            std::string::npos);
  const Tensor probs = one_hot({0, 1, 2}, 3), feats = Tensor::randn({3, 4});
  EXPECT_NE(error_of<ValueError>([&] { classifier_scores(probs, Tensor::from({0.f, 3.f, 1.f}), feats, feats); })
                .find("label 3"),
            std::string::npos);
  EXPECT_THROW(classifier_scores(probs, Tensor::from({0.f, 1.5f, 1.f}), feats, feats), ValueError);
  EXPECT_THROW(classifier_scores(probs, Tensor::from({0.f, 1.f}), feats, feats), ShapeError);
  EXPECT_THROW(classifier_scores(probs, Tensor(), Tensor::randn({4, 4}), feats), ShapeError);
}

}  // namespace
}  // namespace lamina
