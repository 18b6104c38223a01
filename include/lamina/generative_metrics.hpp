// Judging a generative model with a frozen classifier, as TF-GAN evaluates its MNIST GANs
// (tensorflow/gan: eval/classifier_metrics.py, examples/mnist/util.py): the classifier's
// probabilities on generated samples give the classifier score (Inception Score) and the
// spread of predicted classes; its penultimate-layer features on generated and real samples
// give the Frechet distance (FID, with that classifier instead of Inception). Everything is
// computed in double; nothing here is differentiable or runs a model.
//
//   Tensor probs = classifier.predict(fake), feats = feature_model.predict(fake);
//   ClassifierScores s = classifier_scores(probs, requested_labels, feats, real_feats);
//   std::cout << s.classifier_score << " " << s.frechet_distance << "\n";
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <vector>

#include "lamina/tensor.hpp"

namespace lamina {

// N = samples, K = classes, D = feature dimensions.

// exp(mean_i KL(p(y|x_i) || p(y))), p(y) = the mean row of `probs` (N, K): TF-GAN's
// classifier_score, the Inception Score. 1 when every row is alike, K for confident
// predictions spread evenly over K classes. 0 * log 0 counts as 0. ValueError unless every row
// is a probability vector (finite, >= 0, summing to 1 within 1e-3): pass softmax(logits).
double classifier_score(const Tensor& probs);

// Entropy of the histogram of argmax classes (first maximum on ties) over ln K, for probs
// (N, K) with K >= 2: 1 when the predicted classes are spread evenly, 0 when all are one class
// (a collapsed generator). The same checks as classifier_score.
double class_entropy_ratio(const Tensor& probs);

// Mean and sample covariance (divided by N - 1, as numpy.cov) of features (N, D), N >= 2.
// The reference set's statistics can be computed once and reused.
struct FeatureStats {
  int64_t count = 0;
  int64_t dim = 0;
  std::vector<double> mean;  // (D)
  std::vector<double> cov;   // (D, D), row-major, symmetric
};
FeatureStats feature_stats(const Tensor& features);

// |mu_a - mu_b|^2 + tr(S_a) + tr(S_b) - 2 tr(sqrt(S_a S_b)), where tr sqrt(S_a S_b) is the sum
// of sqrt(max(lambda, 0)) over the eigenvalues of the symmetric PSD sqrt(S_a) S_b sqrt(S_a)
// (TF-GAN's trace_sqrt_product): no complex square roots, and rank-deficient covariances
// (N <= D) are fine. Feature tensors (N_a, D) and (N_b, D), N >= 2, finite; ShapeError when
// the D differ. Rounding can leave a tiny negative result for identical sets; it is clamped at 0.
double frechet_distance(const Tensor& features_a, const Tensor& features_b);
double frechet_distance(const FeatureStats& a, const FeatureStats& b);

struct ClassifierScores {
  // Share of generated samples whose argmax class is the label they were generated for; empty
  // when no labels were given (an unconditional generator), never NaN.
  std::optional<double> accuracy;
  double entropy_ratio = 0.0;     // class_entropy_ratio(probs)
  double classifier_score = 0.0;  // classifier_score(probs)
  double frechet_distance = 0.0;  // frechet_distance(features, reference)
  int64_t count = 0;              // N, the generated samples scored
};

// All of the above for N generated samples: probs (N, K) of the frozen classifier, the labels
// (N) or (N, 1) integer classes they were generated for (an undefined Tensor for none), their
// features (N, D) and the real reference set's features (M, D) or statistics.
ClassifierScores classifier_scores(const Tensor& probs, const Tensor& labels, const Tensor& features,
                                   const Tensor& reference_features);
ClassifierScores classifier_scores(const Tensor& probs, const Tensor& labels, const Tensor& features,
                                   const FeatureStats& reference);

namespace detail {

// Eigen-decomposition of a symmetric (n, n) row-major matrix in double: values ascending,
// vectors (n, n) row-major with eigenvector j in column j, so that A = V diag(values) V^T.
// Only the upper triangle is read. symmetric_eigen: Householder tridiagonalization + implicit
// QL (EISPACK tred2 / tql2), O(n^3) once; symmetric_eigen_jacobi: cyclic Jacobi rotations, the
// slow, simple reference the tests hold it to.
struct SymmetricEigen {
  std::vector<double> values;
  std::vector<double> vectors;
};
SymmetricEigen symmetric_eigen(std::span<const double> a, int64_t n);
SymmetricEigen symmetric_eigen_jacobi(std::span<const double> a, int64_t n);

}  // namespace detail

}  // namespace lamina
