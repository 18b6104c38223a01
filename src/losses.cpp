// The losses, each fused into one forward and one backward over the batch. R = rows (samples
// or positions), C = classes. Every loss is the mean over its rows, as Keras'
// "sum_over_batch_size"; dL/dy_pred is scaled by dy / count accordingly.
#include "lamina/losses.hpp"

#include <algorithm>
#include <cmath>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "kernels/elementwise.hpp"
#include "lamina/autograd.hpp"
#include "lamina/ops.hpp"
#include "loss_kernels.hpp"

namespace lamina {

namespace {

// Drops trailing 1s, so (N) and (N, 1) compare equal, as Keras squeezes them.
std::vector<int64_t> squeezed(const Shape& s) {
  std::vector<int64_t> d = s.dims();
  while (!d.empty() && d.back() == 1) d.pop_back();
  return d;
}

void check_pair(const char* op, const Tensor& y_true, const Tensor& y_pred) {
  if (y_true.shape() != y_pred.shape() && squeezed(y_true.shape()) != squeezed(y_pred.shape()))
    throw ShapeError(std::string(op) + ": y_true " + y_true.shape().str() + " and y_pred " +
                     y_pred.shape().str() + " have different shapes");
  if (y_pred.numel() == 0) throw ShapeError(std::string(op) + ": empty batch " + y_pred.shape().str());
}

void check_constant_targets(const char* op, const Tensor& y_true) {
  if (y_true.requires_grad())
    throw ValueError(std::string(op) + ": gradients with respect to y_true are not supported; pass "
                     "y_true.detach() (as in torch, where the target of a cross-entropy has no gradient)");
}

// C = last axis of y_pred; R = the other elements.
int64_t classes_of(const char* op, const Tensor& y_pred) {
  if (y_pred.rank() < 1 || y_pred.dim(-1) == 0 || y_pred.numel() == 0)
    throw ShapeError(std::string(op) + ": y_pred " + y_pred.shape().str() + " needs a non-empty class axis");
  return y_pred.dim(-1);
}

// The softmax of each row of logits, computed once for the loss and its gradient:
// log_softmax_j = (x_j - max) - log_total and softmax_j = e^(x_j - max) / total. Kept apart
// rather than as max + log_total: for logits of 1e4 that sum would round to the float spacing
// at 1e4 (~1e-3) and cost three digits.
struct RowSoftmax {
  int64_t c = 0;
  std::vector<float> e, max, total, log_total;  // e: (rows, c), e^(x - max)
  RowSoftmax(const float* x, int64_t rows, int64_t classes)
      : c(classes), e(static_cast<size_t>(rows * classes)), max(static_cast<size_t>(rows)),
        total(static_cast<size_t>(rows)), log_total(static_cast<size_t>(rows)) {
    kernels::exp_rows(x, e.data(), rows, c, max.data(), total.data());
    kernels::log(total.data(), log_total.data(), rows);
  }
  float log_softmax(int64_t r, float x) const {
    return (x - max[static_cast<size_t>(r)]) - log_total[static_cast<size_t>(r)];
  }
  float softmax(int64_t r, int64_t j) const { return e[static_cast<size_t>(r * c + j)] / total[static_cast<size_t>(r)]; }
};

// Keras' sample_weight: one weight per sample (the first axis of y_pred), scaling each of the
// sample's rows (elements for MSE/MAE/BCE, class rows for the cross-entropies). The mean stays over
// all rows ("sum_over_batch_size"), so weights of 1 give the unweighted loss.
struct RowWeights {
  Tensor w;          // (N) or undefined
  int64_t per = 1;   // rows per sample
  float operator()(const float* w_data, int64_t row) const { return w_data ? w_data[row / per] : 1.f; }
  const float* data() const { return w.defined() ? w.data() : nullptr; }
};

RowWeights row_weights(const char* op, const Tensor& sample_weight, const Tensor& y_pred, int64_t rows) {
  if (!sample_weight.defined()) return {};
  const int64_t n = y_pred.rank() > 0 ? y_pred.dim(0) : 1;
  if (sample_weight.numel() != n || sample_weight.rank() > 2 || (sample_weight.rank() == 2 && sample_weight.dim(1) != 1))
    throw ShapeError(std::string(op) + ": sample_weight " + sample_weight.shape().str() + " must hold one weight per sample (" +
                     std::to_string(n) + ") of y_pred " + y_pred.shape().str());
  if (rows % n != 0) throw ShapeError(std::string(op) + ": y_pred " + y_pred.shape().str() + " does not split into samples");
  return {sample_weight.detach(), rows / n};
}

inline float clip(float p) { return std::clamp(p, kEpsilon, 1.f - kEpsilon); }
inline bool inside(float p) { return p >= kEpsilon && p <= 1.f - kEpsilon; }  // clip passes gradient

// Builds the scalar loss from `value` and records `grad(dy_scaled, g)` as its backward, where
// dy_scaled = dL/dloss / count.
template <class Grad>
Tensor finish(const char* op, double total, int64_t count, const Tensor& y_true, const Tensor& y_pred, Grad grad) {
  Tensor y = Tensor::scalar(static_cast<float>(total / static_cast<double>(count)));
  record(op, y, {y_true, y_pred}, [grad, count](BackwardContext& g) {
    grad(g.dy().data()[0] / static_cast<float>(count), g);
  });
  return y;
}

}  // namespace

Tensor mean_squared_error(const Tensor& y_true, const Tensor& y_pred, const Tensor& sample_weight) {
  check_pair("mean_squared_error", y_true, y_pred);
  const float *t = y_true.data(), *p = y_pred.data();
  const int64_t n = y_pred.numel();
  const RowWeights rw = row_weights("mean_squared_error", sample_weight, y_pred, n);
  const float* w = rw.data();
  double total = 0.0;
  for (int64_t i = 0; i < n; ++i) total += static_cast<double>(rw(w, i)) * (p[i] - t[i]) * (p[i] - t[i]);
  return finish("mean_squared_error", total, n, y_true, y_pred, [n, rw](float s, BackwardContext& g) {
    const float *t = g.input(0).data(), *p = g.input(1).data(), *w = rw.data();
    for (size_t which : {size_t{0}, size_t{1}}) {
      if (!g.needs(which)) continue;
      const float sign = which == 1 ? 2.f * s : -2.f * s;
      float* dx = g.dx(which).data();
      for (int64_t i = 0; i < n; ++i) dx[i] += sign * rw(w, i) * (p[i] - t[i]);
    }
  });
}

Tensor mean_absolute_error(const Tensor& y_true, const Tensor& y_pred, const Tensor& sample_weight) {
  check_pair("mean_absolute_error", y_true, y_pred);
  const float *t = y_true.data(), *p = y_pred.data();
  const int64_t n = y_pred.numel();
  const RowWeights rw = row_weights("mean_absolute_error", sample_weight, y_pred, n);
  const float* w = rw.data();
  double total = 0.0;
  for (int64_t i = 0; i < n; ++i) total += rw(w, i) * std::fabs(p[i] - t[i]);
  return finish("mean_absolute_error", total, n, y_true, y_pred, [n, rw](float s, BackwardContext& g) {
    const float *t = g.input(0).data(), *p = g.input(1).data(), *w = rw.data();
    for (size_t which : {size_t{0}, size_t{1}}) {
      if (!g.needs(which)) continue;
      const float sign = which == 1 ? s : -s;
      float* dx = g.dx(which).data();
      for (int64_t i = 0; i < n; ++i) {
        const float diff = p[i] - t[i];
        dx[i] += rw(w, i) * (diff > 0.f ? sign : (diff < 0.f ? -sign : 0.f));
      }
    }
  });
}

Tensor binary_crossentropy(const Tensor& y_true, const Tensor& y_pred, bool from_logits, const Tensor& sample_weight) {
  const char* op = "binary_crossentropy";
  check_pair(op, y_true, y_pred);
  check_constant_targets(op, y_true);
  const float *t = y_true.data(), *p = y_pred.data();
  const int64_t n = y_pred.numel();
  const RowWeights rw = row_weights(op, sample_weight, y_pred, n);
  const float* w = rw.data();
  double total = 0.0;
  if (from_logits) {
    // max(x, 0) - x t + log(1 + e^-|x|): no overflow for any x.
    for (int64_t i = 0; i < n; ++i)
      total += rw(w, i) * (std::max(p[i], 0.f) - p[i] * t[i] + std::log1p(std::exp(-std::fabs(p[i]))));
  } else {
    for (int64_t i = 0; i < n; ++i) {
      const float q = clip(p[i]);
      total -= rw(w, i) * (t[i] * std::log(q) + (1.f - t[i]) * std::log(1.f - q));
    }
  }
  return finish(op, total, n, y_true, y_pred, [n, from_logits, rw](float s, BackwardContext& g) {
    const float *t = g.input(0).data(), *p = g.input(1).data(), *w = rw.data();
    float* dx = g.dx(1).data();
    for (int64_t i = 0; i < n; ++i) {
      if (from_logits) {
        const float e = std::exp(-std::fabs(p[i]));  // sigmoid from e^-|x|, stable
        const float sig = p[i] >= 0.f ? 1.f / (1.f + e) : e / (1.f + e);
        dx[i] += s * rw(w, i) * (sig - t[i]);
      } else if (inside(p[i])) {
        dx[i] += s * rw(w, i) * ((1.f - t[i]) / (1.f - p[i]) - t[i] / p[i]);
      }
    }
  });
}

Tensor categorical_crossentropy(const Tensor& y_true, const Tensor& y_pred, bool from_logits, const Tensor& sample_weight) {
  const char* op = "categorical_crossentropy";
  if (y_true.shape() != y_pred.shape())
    throw ShapeError(std::string(op) + ": y_true " + y_true.shape().str() + " and y_pred " +
                     y_pred.shape().str() + " must have the same shape (one-hot targets; for integer "
                     "labels use sparse_categorical_crossentropy)");
  check_constant_targets(op, y_true);
  const int64_t c = classes_of(op, y_pred), rows = y_pred.numel() / c;
  const RowWeights rw = row_weights(op, sample_weight, y_pred, rows);
  const float* w = rw.data();
  const float *t = y_true.data(), *p = y_pred.data();
  const auto st = from_logits ? std::make_shared<const RowSoftmax>(p, rows, c) : nullptr;
  double total = 0.0;
  for (int64_t r = 0; r < rows; ++r) {
    const float *tr = t + r * c, *pr = p + r * c;
    double row = 0.0;
    if (from_logits) {
      for (int64_t j = 0; j < c; ++j) row -= tr[j] * st->log_softmax(r, pr[j]);
    } else {
      float sum = 0.f;
      for (int64_t j = 0; j < c; ++j) sum += pr[j];
      for (int64_t j = 0; j < c; ++j) row -= tr[j] * std::log(clip(pr[j] / sum));
    }
    total += rw(w, r) * row;
  }
  return finish(op, total, rows, y_true, y_pred, [c, rows, st, rw](float s0, BackwardContext& g) {
    const float *t = g.input(0).data(), *p = g.input(1).data(), *w = rw.data();
    float* dx = g.dx(1).data();
    for (int64_t r = 0; r < rows; ++r) {
      const float s = s0 * rw(w, r);
      const float *tr = t + r * c, *pr = p + r * c;
      float* dr = dx + r * c;
      if (st) {  // from logits: dx_k = softmax_k * sum(t) - t_k
        float tsum = 0.f;
        for (int64_t j = 0; j < c; ++j) tsum += tr[j];
        for (int64_t j = 0; j < c; ++j) dr[j] += s * (st->softmax(r, j) * tsum - tr[j]);
      } else {  // q = p / sum(p); u_j = dL/dq_j; dp_k = (u_k - sum_j u_j q_j) / sum(p)
        float sum = 0.f;
        for (int64_t j = 0; j < c; ++j) sum += pr[j];
        float uq = 0.f;
        for (int64_t j = 0; j < c; ++j) {
          const float q = pr[j] / sum;
          if (inside(q)) uq -= tr[j];  // u_j q_j = -t_j
        }
        for (int64_t j = 0; j < c; ++j) {
          const float q = pr[j] / sum;
          const float u = inside(q) ? -tr[j] / q : 0.f;
          dr[j] += s * (u - uq) / sum;
        }
      }
    }
  });
}

namespace {

// Each label a class index in [0, c).
void check_labels(const char* op, const float* t, int64_t rows, int64_t c, const Shape& y_pred) {
  for (int64_t r = 0; r < rows; ++r) {
    const float v = t[r];
    if (!(v >= 0.f && v < static_cast<float>(c)) || v != std::floor(v))
      throw ValueError(std::string(op) + ": label " + std::to_string(v) + " at index " + std::to_string(r) +
                       " is not a class index in [0, " + std::to_string(c) + ") for y_pred " + y_pred.str());
  }
}

}  // namespace

Tensor sparse_categorical_crossentropy(const Tensor& y_true, const Tensor& y_pred, bool from_logits,
                                       const Tensor& sample_weight) {
  const char* op = "sparse_categorical_crossentropy";
  check_constant_targets(op, y_true);
  const int64_t c = classes_of(op, y_pred), rows = y_pred.numel() / c;
  std::vector<int64_t> label_dims(y_pred.shape().begin(), y_pred.shape().end() - 1);
  const Shape expected(label_dims);
  if (y_true.shape() != expected && squeezed(y_true.shape()) != squeezed(expected))
    throw ShapeError(std::string(op) + ": y_true " + y_true.shape().str() + " does not match y_pred " +
                     y_pred.shape().str() + " (expected integer labels of shape " + expected.str() + ")");
  const float *t = y_true.data(), *p = y_pred.data();
  check_labels(op, t, rows, c, y_pred.shape());
  const RowWeights rw = row_weights(op, sample_weight, y_pred, rows);
  const float* w = rw.data();
  const auto st = from_logits ? std::make_shared<const RowSoftmax>(p, rows, c) : nullptr;
  double total = 0.0;
  for (int64_t r = 0; r < rows; ++r) {
    const float* pr = p + r * c;
    const auto label = static_cast<int64_t>(t[r]);
    if (from_logits) {
      total -= rw(w, r) * st->log_softmax(r, pr[label]);
    } else {
      float sum = 0.f;
      for (int64_t j = 0; j < c; ++j) sum += pr[j];
      total -= rw(w, r) * std::log(clip(pr[label] / sum));
    }
  }
  return finish(op, total, rows, y_true, y_pred, [c, rows, st, rw](float s0, BackwardContext& g) {
    const float *t = g.input(0).data(), *p = g.input(1).data(), *w = rw.data();
    float* dx = g.dx(1).data();
    for (int64_t r = 0; r < rows; ++r) {
      const float s = s0 * rw(w, r);
      const float* pr = p + r * c;
      float* dr = dx + r * c;
      const auto label = static_cast<int64_t>(t[r]);
      if (st) {  // from logits: dx_k = softmax_k - [k == label]
        for (int64_t j = 0; j < c; ++j) dr[j] += s * (st->softmax(r, j) - (j == label ? 1.f : 0.f));
      } else {  // q = p / sum(p); only u_label = -1/q_label; dp_k = (u_k + 1) / sum(p)
        float sum = 0.f;
        for (int64_t j = 0; j < c; ++j) sum += pr[j];
        const float q = pr[label] / sum;
        if (!inside(q)) continue;
        for (int64_t j = 0; j < c; ++j) dr[j] += s * ((j == label ? -1.f / q : 0.f) + 1.f) / sum;
      }
    }
  });
}

namespace detail {

double sparse_crossentropy_of_logits(const float* labels, const float* z, int64_t rows, int64_t c, bool softmax_output,
                                     float* pred, float* dz) {
  check_labels("sparse_categorical_crossentropy", labels, rows, c, Shape{rows, c});
  static thread_local std::vector<float> stats;  // per row: max, sum, a log; reused, no allocation a step
  stats.resize(static_cast<size_t>(3 * rows));
  float *mx = stats.data(), *sums = mx + rows, *logs = sums + rows;
  // e^(z - max): into pred, which becomes softmax(z); from logits, into dz, which becomes the
  // gradient softmax(z) - onehot, as in RowSoftmax.
  float* e = softmax_output ? pred : dz;
  kernels::exp_rows(z, e, rows, c, mx, sums);
  const float s = 1.f / static_cast<float>(rows);  // finish's dy / count, dy = 1
  double total = 0.0;
  if (!softmax_output) {  // from logits: pred is z; loss (z_label - max) - ln sum, dz_k = softmax_k - [k == label]
    kernels::log(sums, logs, rows);
    std::copy(z, z + rows * c, pred);
    for (int64_t r = 0; r < rows; ++r) {
      const auto label = static_cast<int64_t>(labels[r]);
      total -= (z[r * c + label] - mx[r]) - logs[r];
      const float inv = 1.f / sums[r];
      float* dr = dz + r * c;
      for (int64_t j = 0; j < c; ++j) dr[j] = s * (dr[j] * inv);
      dr[label] -= s;
    }
    return total / static_cast<double>(rows);
  }
  // Probabilities: pred = softmax(z), q = pred / sum(pred) clipped to [eps, 1 - eps]. Through the
  // softmax, the gradient of -ln q_label is pred_k / sum - [k == label], or 0 where the clip holds
  // q_label (as the general path's chain of the two).
  for (int64_t r = 0; r < rows; ++r) {
    const auto label = static_cast<int64_t>(labels[r]);
    const float inv = 1.f / sums[r];  // as the softmax op
    float* pr = pred + r * c;
    float* dr = dz + r * c;
    float sum = 0.f;
    for (int64_t j = 0; j < c; ++j) sum += (pr[j] *= inv);
    const float q = pr[label] / sum;
    logs[r] = clip(q);
    if (!inside(q)) {
      std::fill(dr, dr + c, 0.f);
      continue;
    }
    const float scale = s / sum;
    for (int64_t j = 0; j < c; ++j) dr[j] = pr[j] * scale;
    dr[label] -= s;
  }
  kernels::log(logs, logs, rows);
  for (int64_t r = 0; r < rows; ++r) total -= logs[r];
  return total / static_cast<double>(rows);
}

}  // namespace detail

// --- Loss as a value ---------------------------------------------------------------------------

namespace {

struct LossName {
  const char* name;
  const char* class_name;
  Loss::Kind kind;
};

constexpr LossName kLossNames[] = {
    {"mean_squared_error", "MeanSquaredError", Loss::mean_squared_error},
    {"mean_absolute_error", "MeanAbsoluteError", Loss::mean_absolute_error},
    {"binary_crossentropy", "BinaryCrossentropy", Loss::binary_crossentropy},
    {"categorical_crossentropy", "CategoricalCrossentropy", Loss::categorical_crossentropy},
    {"sparse_categorical_crossentropy", "SparseCategoricalCrossentropy", Loss::sparse_categorical_crossentropy},
};

}  // namespace

namespace {

std::mutex& registry_mutex() {
  static std::mutex m;
  return m;
}
std::map<std::string, std::shared_ptr<const Loss::Function>>& loss_registry() {
  static std::map<std::string, std::shared_ptr<const Loss::Function>> r;
  return r;
}

// A custom loss's result reduced to the scalar compile trains on: per-sample losses (N, ...)
// to their mean, each sample weighted; a scalar as it is.
Tensor reduce_custom(const std::string& name, Tensor l, const Tensor& y_pred, const Tensor& sample_weight) {
  if (!l.defined()) throw ValueError("loss '" + name + "' returned an undefined tensor");
  if (l.numel() == 1 && (l.rank() == 0 || y_pred.rank() == 0 || y_pred.dim(0) != 1)) {
    if (sample_weight.defined())
      throw ValueError("loss '" + name + "' returned a scalar, so sample or class weights cannot weigh its samples; return "
                       "per-sample losses (N) instead");
    return l.rank() == 0 ? l : reshape(l, Shape{});
  }
  if (y_pred.rank() == 0 || l.rank() == 0 || l.dim(0) != y_pred.dim(0))
    throw ShapeError("loss '" + name + "' returned " + l.shape().str() + " for y_pred " + y_pred.shape().str() +
                     "; return a scalar or per-sample losses (N, ...) with N = " +
                     std::to_string(y_pred.rank() ? y_pred.dim(0) : 0));
  if (!sample_weight.defined()) return mean(l);
  if (sample_weight.numel() != l.dim(0))
    throw ShapeError("loss '" + name + "': sample_weight " + sample_weight.shape().str() + " must hold one weight per sample (" +
                     std::to_string(l.dim(0)) + ")");
  std::vector<int64_t> dims(static_cast<size_t>(l.rank()), 1);
  dims[0] = l.dim(0);
  return mean(mul(l, reshape(sample_weight.detach(), Shape(dims))));
}

}  // namespace

Loss::Loss(Function fn, std::string name)
    : kind_(custom), from_logits_(false), fn_(std::make_shared<const Function>(std::move(fn))), name_(std::move(name)) {
  if (!*fn_) throw ValueError("Loss: the function of custom loss '" + name_ + "' is empty");
  if (name_.empty()) throw ValueError("Loss: a custom loss needs a name");
}

Loss::Loss(const char* name) : kind_(mean_squared_error), from_logits_(false) {
  std::string key = name ? name : "";
  if (key == "mse") key = "mean_squared_error";
  if (key == "mae") key = "mean_absolute_error";
  for (const LossName& n : kLossNames) {
    if (key == n.name || key == n.class_name) {
      kind_ = n.kind;
      return;
    }
  }
  {
    const std::lock_guard<std::mutex> lock(registry_mutex());
    if (auto it = loss_registry().find(key); it != loss_registry().end()) {
      kind_ = custom;
      fn_ = it->second;
      name_ = key;
      return;
    }
  }
  std::string known;
  for (const LossName& n : kLossNames) known += (known.empty() ? "" : ", ") + std::string(n.name);
  throw ValueError("loss '" + key + "' is not known (known: mse, mae, " + known +
                   "; a loss of your own is known once given to lamina::register_loss)");
}

void register_loss(const std::string& name, Loss::Function fn) {
  if (name.empty() || !fn) throw ValueError("register_loss: needs a name and a function");
  for (const LossName& n : kLossNames)
    if (name == n.name || name == n.class_name || name == "mse" || name == "mae")
      throw ValueError("register_loss: '" + name + "' is a built-in loss");
  const std::lock_guard<std::mutex> lock(registry_mutex());
  loss_registry()[name] = std::make_shared<const Loss::Function>(std::move(fn));
}

std::string Loss::name() const { return kind_ == custom ? name_ : kLossNames[kind_].name; }
std::string Loss::class_name() const { return kind_ == custom ? name_ : kLossNames[kind_].class_name; }

Tensor Loss::operator()(const Tensor& y_true, const Tensor& y_pred, const Tensor& w) const {
  switch (kind_) {
    case mean_squared_error: return lamina::mean_squared_error(y_true, y_pred, w);
    case mean_absolute_error: return lamina::mean_absolute_error(y_true, y_pred, w);
    case binary_crossentropy: return lamina::binary_crossentropy(y_true, y_pred, from_logits_, w);
    case categorical_crossentropy: return lamina::categorical_crossentropy(y_true, y_pred, from_logits_, w);
    case sparse_categorical_crossentropy: return lamina::sparse_categorical_crossentropy(y_true, y_pred, from_logits_, w);
    case custom: return reduce_custom(name_, (*fn_)(y_true, y_pred), y_pred, w);
  }
  throw ValueError("loss: unknown kind");
}

Json Loss::config() const {
  if (kind_ == custom) return {{"class_name", name_}, {"config", {{"name", name_}, {"lamina_custom", true}}}};
  Json c = {{"name", name()}, {"reduction", "sum_over_batch_size"}};
  if (kind_ >= binary_crossentropy) c["from_logits"] = from_logits_;
  return {{"class_name", class_name()}, {"config", c}};
}

Loss Loss::from_config(const Json& j) {
  const auto [name, c] = keras_object(j, "loss");
  Loss loss(name);
  if (c.contains("from_logits") && c["from_logits"].is_boolean()) loss.from_logits_ = c["from_logits"].get<bool>();
  return loss;
}

}  // namespace lamina
