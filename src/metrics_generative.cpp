// Generative-model scores from a frozen classifier (classifier score, class entropy ratio,
// Frechet distance), as TF-GAN's eval/classifier_metrics.py computes them, in double. Also the
// symmetric eigen-decomposition (cyclic Jacobi) that the Frechet distance's matrix square root
// needs. Not a model runner: callers pass the classifier's outputs.
#include "lamina/generative_metrics.hpp"

#include <algorithm>
#include <cmath>
#include <numeric>
#include <string>

#include "lamina/error.hpp"

namespace lamina {

// N = samples, K = classes, D = feature dimensions.

namespace {

constexpr double kRowSumTolerance = 1e-3;

// Checks that probs (N, K) holds probability rows; `op` names the caller in errors.
void check_probs(const Tensor& probs, const char* op) {
  if (!probs.defined()) throw ValueError(std::string(op) + ": the probs tensor is undefined");
  if (probs.rank() != 2 || probs.dim(0) < 1 || probs.dim(1) < 1)
    throw ShapeError(std::string(op) + ": expects probs (N, K) with N, K >= 1, got " + probs.shape().str());
  const int64_t n = probs.dim(0), k = probs.dim(1);
  const float* p = probs.data();
  for (int64_t i = 0; i < n; ++i) {
    double sum = 0.0;
    for (int64_t j = 0; j < k; ++j) {
      const float v = p[i * k + j];
      if (!std::isfinite(v) || v < 0.f)
        throw ValueError(std::string(op) + ": probs" + probs.shape().str() + " has " + std::to_string(v) + " at (" +
                         std::to_string(i) + ", " + std::to_string(j) +
                         "); expected probabilities\n  hint: apply softmax to logits first");
      sum += v;
    }
    if (std::abs(sum - 1.0) > kRowSumTolerance)
      throw ValueError(std::string(op) + ": row " + std::to_string(i) + " of probs" + probs.shape().str() +
                       " sums to " + std::to_string(sum) +
                       ", not 1; expected probabilities\n  hint: apply softmax to logits first");
  }
}

// Argmax of each row, the first maximum on ties (as numpy.argmax and TF's argmax).
std::vector<int64_t> argmax_rows(const Tensor& probs) {
  const int64_t n = probs.dim(0), k = probs.dim(1);
  std::vector<int64_t> out(static_cast<size_t>(n));
  const float* p = probs.data();
  for (int64_t i = 0; i < n; ++i) out[i] = std::max_element(p + i * k, p + (i + 1) * k) - (p + i * k);
  return out;
}

void check_features(const Tensor& f, const char* op, const char* which) {
  if (!f.defined()) throw ValueError(std::string(op) + ": the " + which + " tensor is undefined");
  if (f.rank() != 2 || f.dim(0) < 2 || f.dim(1) < 1)
    throw ShapeError(std::string(op) + ": expects " + which + " (N, D) with N >= 2 samples (a covariance needs two), got " +
                     f.shape().str());
  const float* x = f.data();
  for (int64_t i = 0; i < f.numel(); ++i)
    if (!std::isfinite(x[i]))
      throw ValueError(std::string(op) + ": " + which + f.shape().str() + " has " + std::to_string(x[i]) +
                       " at (" + std::to_string(i / f.dim(1)) + ", " + std::to_string(i % f.dim(1)) + ")");
}

// C = A B for (n, n) row-major matrices.
std::vector<double> matmul_square(const std::vector<double>& a, const std::vector<double>& b, int64_t n) {
  std::vector<double> c(static_cast<size_t>(n * n), 0.0);
  for (int64_t i = 0; i < n; ++i)
    for (int64_t k = 0; k < n; ++k) {
      const double aik = a[i * n + k];
      if (aik == 0.0) continue;
      const double* brow = b.data() + k * n;
      double* crow = c.data() + i * n;
      for (int64_t j = 0; j < n; ++j) crow[j] += aik * brow[j];
    }
  return c;
}

// sqrt of a symmetric PSD matrix: V diag(sqrt(max(lambda, 0))) V^T. Rounding makes the
// eigenvalues of a singular covariance slightly negative; they are zeros.
std::vector<double> psd_sqrt(const std::vector<double>& s, int64_t n) {
  const detail::SymmetricEigen e = detail::symmetric_eigen(s, n);
  std::vector<double> vs(static_cast<size_t>(n * n));  // V diag(sqrt(lambda))
  for (int64_t i = 0; i < n; ++i)
    for (int64_t j = 0; j < n; ++j) vs[i * n + j] = e.vectors[i * n + j] * std::sqrt(std::max(e.values[j], 0.0));
  std::vector<double> out(static_cast<size_t>(n * n), 0.0);
  for (int64_t i = 0; i < n; ++i)
    for (int64_t j = i; j < n; ++j) {
      double sum = 0.0;
      for (int64_t k = 0; k < n; ++k) sum += vs[i * n + k] * e.vectors[j * n + k];
      out[i * n + j] = out[j * n + i] = sum;
    }
  return out;
}

// tr sqrt(A B) for symmetric PSD A, B: sqrt(A) B sqrt(A) is similar to A B and symmetric PSD,
// so its eigenvalues are real and >= 0 up to rounding (TF-GAN's trace_sqrt_product).
double trace_sqrt_product(const std::vector<double>& a, const std::vector<double>& b, int64_t n) {
  const std::vector<double> ra = psd_sqrt(a, n);
  std::vector<double> m = matmul_square(matmul_square(ra, b, n), ra, n);
  const detail::SymmetricEigen e = detail::symmetric_eigen(m, n);
  double sum = 0.0;
  for (double v : e.values) sum += std::sqrt(std::max(v, 0.0));
  return sum;
}

}  // namespace

// --- classifier score and class spread ----------------------------------------------------------

double classifier_score(const Tensor& probs) {
  check_probs(probs, "classifier_score");
  const int64_t n = probs.dim(0), k = probs.dim(1);
  const float* p = probs.data();
  std::vector<double> marginal(static_cast<size_t>(k), 0.0);  // p(y)
  for (int64_t i = 0; i < n; ++i)
    for (int64_t j = 0; j < k; ++j) marginal[j] += p[i * k + j];
  for (double& m : marginal) m /= static_cast<double>(n);
  std::vector<double> log_marginal(marginal.size());
  for (size_t j = 0; j < marginal.size(); ++j) log_marginal[j] = marginal[j] > 0.0 ? std::log(marginal[j]) : 0.0;
  // KL(p_i || p(y)) = sum_k p_ik (log p_ik - log p_k); terms with p_ik = 0 are 0 (and p_k > 0
  // wherever some p_ik > 0, so no log of 0 is ever taken for a term that counts).
  double kl_sum = 0.0;
  for (int64_t i = 0; i < n; ++i)
    for (int64_t j = 0; j < k; ++j) {
      const double v = p[i * k + j];
      if (v > 0.0) kl_sum += v * (std::log(v) - log_marginal[j]);
    }
  return std::exp(kl_sum / static_cast<double>(n));
}

double class_entropy_ratio(const Tensor& probs) {
  check_probs(probs, "class_entropy_ratio");
  const int64_t n = probs.dim(0), k = probs.dim(1);
  if (k < 2)
    throw ShapeError("class_entropy_ratio: needs K >= 2 classes (the ratio divides by ln K), got probs " +
                     probs.shape().str());
  std::vector<int64_t> counts(static_cast<size_t>(k), 0);
  for (int64_t c : argmax_rows(probs)) ++counts[c];
  double entropy = 0.0;
  for (int64_t c : counts)
    if (c > 0) {
      const double q = static_cast<double>(c) / static_cast<double>(n);
      entropy -= q * std::log(q);
    }
  return entropy / std::log(static_cast<double>(k));
}

// --- Frechet distance ---------------------------------------------------------------------------

FeatureStats feature_stats(const Tensor& features) {
  check_features(features, "feature_stats", "features");
  const int64_t n = features.dim(0), d = features.dim(1);
  const float* x = features.data();
  FeatureStats s{n, d, std::vector<double>(static_cast<size_t>(d), 0.0),
                 std::vector<double>(static_cast<size_t>(d * d), 0.0)};
  for (int64_t i = 0; i < n; ++i)
    for (int64_t j = 0; j < d; ++j) s.mean[j] += x[i * d + j];
  for (double& m : s.mean) m /= static_cast<double>(n);
  // Two passes (mean first, then centred products): no cancellation from E[x^2] - E[x]^2.
  std::vector<double> c(static_cast<size_t>(d));
  for (int64_t i = 0; i < n; ++i) {
    for (int64_t j = 0; j < d; ++j) c[j] = x[i * d + j] - s.mean[j];
    for (int64_t j = 0; j < d; ++j) {
      const double cj = c[j];
      double* row = s.cov.data() + j * d;
      for (int64_t k = j; k < d; ++k) row[k] += cj * c[k];
    }
  }
  const double denom = static_cast<double>(n - 1);
  for (int64_t j = 0; j < d; ++j)
    for (int64_t k = j; k < d; ++k) s.cov[k * d + j] = s.cov[j * d + k] /= denom;
  return s;
}

double frechet_distance(const FeatureStats& a, const FeatureStats& b) {
  if (a.dim != b.dim || a.dim < 1)
    throw ShapeError("frechet_distance: the feature sets have " + std::to_string(a.dim) + " and " +
                     std::to_string(b.dim) + " dimensions; they must match (features of the same layer)");
  const int64_t d = a.dim;
  if (a.mean.size() != static_cast<size_t>(d) || b.mean.size() != static_cast<size_t>(d) ||
      a.cov.size() != static_cast<size_t>(d * d) || b.cov.size() != static_cast<size_t>(d * d))
    throw ValueError("frechet_distance: FeatureStats with dim " + std::to_string(d) +
                     " need a mean of D and a covariance of D * D values");
  double mean_term = 0.0, trace = 0.0;
  for (int64_t j = 0; j < d; ++j) {
    const double diff = a.mean[j] - b.mean[j];
    mean_term += diff * diff;
    trace += a.cov[j * d + j] + b.cov[j * d + j];
  }
  const double fd = mean_term + trace - 2.0 * trace_sqrt_product(a.cov, b.cov, d);
  return std::max(fd, 0.0);
}

double frechet_distance(const Tensor& features_a, const Tensor& features_b) {
  check_features(features_a, "frechet_distance", "features_a");
  check_features(features_b, "frechet_distance", "features_b");
  if (features_a.dim(1) != features_b.dim(1))
    throw ShapeError("frechet_distance: features_a " + features_a.shape().str() + " and features_b " +
                     features_b.shape().str() + " differ in D; they must be features of the same layer");
  return frechet_distance(feature_stats(features_a), feature_stats(features_b));
}

// --- all at once --------------------------------------------------------------------------------

ClassifierScores classifier_scores(const Tensor& probs, const Tensor& labels, const Tensor& features,
                                   const FeatureStats& reference) {
  ClassifierScores s;
  s.classifier_score = classifier_score(probs);
  s.entropy_ratio = class_entropy_ratio(probs);
  const int64_t n = probs.dim(0), k = probs.dim(1);
  s.count = n;
  check_features(features, "classifier_scores", "features");
  if (features.dim(0) != n)
    throw ShapeError("classifier_scores: probs " + probs.shape().str() + " and features " + features.shape().str() +
                     " must hold the same N generated samples");
  s.frechet_distance = frechet_distance(feature_stats(features), reference);
  if (labels.defined()) {
    if (!((labels.rank() == 1 && labels.dim(0) == n) || (labels.rank() == 2 && labels.dim(0) == n && labels.dim(1) == 1)))
      throw ShapeError("classifier_scores: expects labels (N) or (N, 1) of class indices for probs " +
                       probs.shape().str() + ", got " + labels.shape().str());
    const std::vector<int64_t> predicted = argmax_rows(probs);
    const float* l = labels.data();
    int64_t correct = 0;
    for (int64_t i = 0; i < n; ++i) {
      if (!(l[i] >= 0.f && l[i] < static_cast<float>(k)) || l[i] != std::floor(l[i]))
        throw ValueError("classifier_scores: label " + std::to_string(l[i]) + " at " + std::to_string(i) +
                         " is not a class index in [0, " + std::to_string(k) + ")");
      correct += predicted[i] == static_cast<int64_t>(l[i]) ? 1 : 0;
    }
    s.accuracy = static_cast<double>(correct) / static_cast<double>(n);
  }
  return s;
}

ClassifierScores classifier_scores(const Tensor& probs, const Tensor& labels, const Tensor& features,
                                   const Tensor& reference_features) {
  check_features(reference_features, "classifier_scores", "reference_features");
  return classifier_scores(probs, labels, features, feature_stats(reference_features));
}

// --- symmetric eigen-decomposition --------------------------------------------------------------

namespace detail {

namespace {

void check_square(std::span<const double> a, int64_t n, const char* op) {
  if (n < 0 || a.size() != static_cast<size_t>(n * n))
    throw ShapeError(std::string(op) + ": expects n * n = " + std::to_string(n * n) + " values, got " +
                     std::to_string(a.size()));
}

// Eigenvalues ascending, with eigenvector i taken from row i of `vt` into column order.
SymmetricEigen sorted_eigen(const std::vector<double>& values, const std::vector<double>& vt, int64_t n) {
  std::vector<int64_t> order(static_cast<size_t>(n));
  std::iota(order.begin(), order.end(), 0);
  std::stable_sort(order.begin(), order.end(), [&](int64_t i, int64_t j) { return values[i] < values[j]; });
  SymmetricEigen out{std::vector<double>(static_cast<size_t>(n)), std::vector<double>(static_cast<size_t>(n * n))};
  for (int64_t j = 0; j < n; ++j) {
    out.values[j] = values[order[j]];
    for (int64_t i = 0; i < n; ++i) out.vectors[i * n + j] = vt[order[j] * n + i];
  }
  return out;
}

}  // namespace

// Householder reduction to tridiagonal form, then the implicit QL algorithm with Wilkinson-type
// shifts: EISPACK's tred2 and tql2 as JAMA (the public-domain Java matrix package) writes them,
// with V stored column-major so that both run over contiguous memory. About 9 n^3 flops.
SymmetricEigen symmetric_eigen(std::span<const double> in, int64_t n) {
  check_square(in, n, "symmetric_eigen");
  if (n == 0) return {};
  // V column-major (so v is V^T row-major): tred2's inner loops run down columns, and the QL
  // rotations below then mix rows of v. V starts as A, mirrored from the upper triangle.
  std::vector<double> v(static_cast<size_t>(n * n));
  for (int64_t i = 0; i < n; ++i)
    for (int64_t j = i; j < n; ++j) v[i * n + j] = v[j * n + i] = in[i * n + j];
  std::vector<double> d(static_cast<size_t>(n)), e(static_cast<size_t>(n));
  auto V = [&](int64_t i, int64_t j) -> double& { return v[j * n + i]; };

  // --- tred2: A = V T V^T with T tridiagonal (diagonal d, subdiagonal e[1..n-1]).
  for (int64_t j = 0; j < n; ++j) d[j] = V(n - 1, j);
  for (int64_t i = n - 1; i > 0; --i) {
    double scale = 0.0, h = 0.0;
    for (int64_t k = 0; k < i; ++k) scale += std::abs(d[k]);
    if (scale == 0.0) {
      e[i] = d[i - 1];
      for (int64_t j = 0; j < i; ++j) {
        d[j] = V(i - 1, j);
        V(i, j) = 0.0;
        V(j, i) = 0.0;
      }
    } else {
      // The Householder vector, scaled against under- and overflow.
      for (int64_t k = 0; k < i; ++k) {
        d[k] /= scale;
        h += d[k] * d[k];
      }
      double f = d[i - 1];
      double g = std::sqrt(h);
      if (f > 0) g = -g;
      e[i] = scale * g;
      h -= f * g;
      d[i - 1] = f - g;
      for (int64_t j = 0; j < i; ++j) e[j] = 0.0;
      // The similarity transformation on the remaining columns.
      for (int64_t j = 0; j < i; ++j) {
        f = d[j];
        V(j, i) = f;
        g = e[j] + V(j, j) * f;
        for (int64_t k = j + 1; k <= i - 1; ++k) {
          g += V(k, j) * d[k];
          e[k] += V(k, j) * f;
        }
        e[j] = g;
      }
      f = 0.0;
      for (int64_t j = 0; j < i; ++j) {
        e[j] /= h;
        f += e[j] * d[j];
      }
      const double hh = f / (h + h);
      for (int64_t j = 0; j < i; ++j) e[j] -= hh * d[j];
      for (int64_t j = 0; j < i; ++j) {
        f = d[j];
        g = e[j];
        for (int64_t k = j; k <= i - 1; ++k) V(k, j) -= (f * e[k] + g * d[k]);
        d[j] = V(i - 1, j);
        V(i, j) = 0.0;
      }
    }
    d[i] = h;
  }
  // Accumulate the transformations into V.
  for (int64_t i = 0; i < n - 1; ++i) {
    V(n - 1, i) = V(i, i);
    V(i, i) = 1.0;
    const double h = d[i + 1];
    if (h != 0.0) {
      for (int64_t k = 0; k <= i; ++k) d[k] = V(k, i + 1) / h;
      for (int64_t j = 0; j <= i; ++j) {
        double g = 0.0;
        for (int64_t k = 0; k <= i; ++k) g += V(k, i + 1) * V(k, j);
        for (int64_t k = 0; k <= i; ++k) V(k, j) -= g * d[k];
      }
    }
    for (int64_t k = 0; k <= i; ++k) V(k, i + 1) = 0.0;
  }
  for (int64_t j = 0; j < n; ++j) {
    d[j] = V(n - 1, j);
    V(n - 1, j) = 0.0;
  }
  V(n - 1, n - 1) = 1.0;
  e[0] = 0.0;

  // --- tql2 on T, rotating the rows of V^T.
  std::vector<double>& vt = v;
  for (int64_t i = 1; i < n; ++i) e[i - 1] = e[i];
  e[n - 1] = 0.0;
  double f = 0.0, tst1 = 0.0;
  const double eps = std::ldexp(1.0, -52);
  for (int64_t l = 0; l < n; ++l) {
    // Find a negligible subdiagonal element.
    tst1 = std::max(tst1, std::abs(d[l]) + std::abs(e[l]));
    int64_t m = l;
    while (m < n - 1 && std::abs(e[m]) > eps * tst1) ++m;
    if (m > l) {  // otherwise d[l] is an eigenvalue already
      int iter = 0;
      do {
        if (++iter > 100) throw ValueError("symmetric_eigen: QL iteration did not converge (NaN in the matrix?)");
        // The implicit shift.
        double g = d[l];
        double p = (d[l + 1] - g) / (2.0 * e[l]);
        double r = std::hypot(p, 1.0);
        if (p < 0) r = -r;
        d[l] = e[l] / (p + r);
        d[l + 1] = e[l] * (p + r);
        const double dl1 = d[l + 1];
        double h = g - d[l];
        for (int64_t i = l + 2; i < n; ++i) d[i] -= h;
        f += h;
        // The implicit QL transformation.
        p = d[m];
        double c = 1.0, c2 = c, c3 = c, s = 0.0, s2 = 0.0;
        const double el1 = e[l + 1];
        for (int64_t i = m - 1; i >= l; --i) {
          c3 = c2;
          c2 = c;
          s2 = s;
          g = c * e[i];
          h = c * p;
          r = std::hypot(p, e[i]);
          e[i + 1] = s * r;
          s = e[i] / r;
          c = p / r;
          p = c * d[i] - s * g;
          d[i + 1] = h + s * (c * g + s * d[i]);
          double* vi = vt.data() + i * n;  // column i of V
          double* vi1 = vt.data() + (i + 1) * n;
          for (int64_t k = 0; k < n; ++k) {
            const double x = vi1[k];
            vi1[k] = s * vi[k] + c * x;
            vi[k] = c * vi[k] - s * x;
          }
        }
        p = -s * s2 * c3 * el1 * e[l] / dl1;
        e[l] = s * p;
        d[l] = c * p;
      } while (std::abs(e[l]) > eps * tst1);
    }
    d[l] += f;
    e[l] = 0.0;
  }
  return sorted_eigen(d, vt, n);
}

// Cyclic Jacobi (Golub & Van Loan, Matrix Computations 8.5; the rotation as in Numerical
// Recipes' jacobi): sweep over every (p, q) above the diagonal and rotate a_pq to zero, until
// the off-diagonal mass is below rounding. Simple and accurate, converging quadratically in
// 6-10 sweeps, but each rotation also writes two columns of a row-major matrix: 0.14 s at
// n = 128, 2.5 s at 256 and 44 s at 512 here. The reference for symmetric_eigen in the tests.
SymmetricEigen symmetric_eigen_jacobi(std::span<const double> in, int64_t n) {
  check_square(in, n, "symmetric_eigen_jacobi");
  const size_t nn = static_cast<size_t>(n * n);
  std::vector<double> a(nn);  // the full symmetric matrix, mirrored from the upper triangle
  for (int64_t i = 0; i < n; ++i)
    for (int64_t j = i; j < n; ++j) a[i * n + j] = a[j * n + i] = in[i * n + j];
  // Rows of V^T (eigenvector j is row j while rotating): rows p and q are contiguous.
  std::vector<double> vt(nn, 0.0);
  for (int64_t i = 0; i < n; ++i) vt[i * n + i] = 1.0;

  double total = 0.0;
  for (double v : a) total += v * v;
  const double tiny = total * 1e-32;  // off-diagonal mass below (1e-16 ||A||_F)^2 is rounding
  for (int sweep = 0; sweep < 100; ++sweep) {
    double off = 0.0;
    for (int64_t p = 0; p < n; ++p)
      for (int64_t q = p + 1; q < n; ++q) off += a[p * n + q] * a[p * n + q];
    if (off <= tiny) break;
    for (int64_t p = 0; p < n; ++p)
      for (int64_t q = p + 1; q < n; ++q) {
        const double apq = a[p * n + q];
        if (apq == 0.0) continue;
        const double app = a[p * n + p], aqq = a[q * n + q];
        // Skip what can no longer change either diagonal entry (NR's test after a few sweeps).
        if (std::abs(apq) * 1e18 < std::abs(app) && std::abs(apq) * 1e18 < std::abs(aqq) && sweep > 3) {
          a[p * n + q] = a[q * n + p] = 0.0;
          continue;
        }
        const double theta = (aqq - app) / (2.0 * apq);
        // t = tan of the rotation angle, the smaller root of t^2 + 2 theta t - 1 = 0.
        const double t = std::abs(theta) > 1e150 ? 0.5 / theta
                                                 : std::copysign(1.0, theta) / (std::abs(theta) + std::hypot(theta, 1.0));
        const double c = 1.0 / std::sqrt(t * t + 1.0), s = t * c;
        double* rp = a.data() + p * n;
        double* rq = a.data() + q * n;
        for (int64_t k = 0; k < n; ++k) {  // rows p and q; the columns mirror them below
          const double xp = rp[k], xq = rq[k];
          rp[k] = c * xp - s * xq;
          rq[k] = s * xp + c * xq;
        }
        for (int64_t k = 0; k < n; ++k) {
          a[k * n + p] = rp[k];
          a[k * n + q] = rq[k];
        }
        rp[p] = app - t * apq;
        rq[q] = aqq + t * apq;
        rp[q] = rq[p] = 0.0;
        double* vp = vt.data() + p * n;
        double* vq = vt.data() + q * n;
        for (int64_t k = 0; k < n; ++k) {
          const double xp = vp[k], xq = vq[k];
          vp[k] = c * xp - s * xq;
          vq[k] = s * xp + c * xq;
        }
      }
  }

  std::vector<double> values(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) values[i] = a[i * n + i];
  return sorted_eigen(values, vt, n);
}

}  // namespace detail

}  // namespace lamina
