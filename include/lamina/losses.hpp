// Losses in Keras' names and argument order (y_true, y_pred), reduced to the mean over all
// samples ("sum_over_batch_size"). Gradients flow to y_pred; MSE and MAE also to y_true.
// Probabilities are clipped to [1e-7, 1 - 1e-7] as Keras does; the from_logits forms are
// computed from log-softmax / softplus and stay finite for logits of any magnitude.
//
//   Tensor loss = sparse_categorical_crossentropy(labels, logits, /*from_logits=*/true);
//   loss.backward();
#pragma once

#include <string>

#include "lamina/json.hpp"
#include "lamina/tensor.hpp"

namespace lamina {

inline constexpr float kEpsilon = 1e-7f;  // keras.backend.epsilon()

// mean((y_pred - y_true)^2). Shapes must match (a trailing 1 may be dropped: (N) vs (N, 1)).
Tensor mean_squared_error(const Tensor& y_true, const Tensor& y_pred);
// mean(|y_pred - y_true|).
Tensor mean_absolute_error(const Tensor& y_true, const Tensor& y_pred);
// -mean(t log p + (1 - t) log(1 - p)); with from_logits, y_pred holds logits.
Tensor binary_crossentropy(const Tensor& y_true, const Tensor& y_pred, bool from_logits = false);
// y_true one-hot (or soft) (..., C); y_pred probabilities (rows are normalised first, as
// Keras does) or logits. -mean over rows of sum_c t_c log p_c.
Tensor categorical_crossentropy(const Tensor& y_true, const Tensor& y_pred,
                                bool from_logits = false);
// y_true integer class indices (...) stored as floats, y_pred (..., C).
Tensor sparse_categorical_crossentropy(const Tensor& y_true, const Tensor& y_pred,
                                       bool from_logits = false);

// A loss as a value, for Model::compile: Loss("mse"), Loss(Loss::binary_crossentropy),
// losses::SparseCategoricalCrossentropy({.from_logits = true}).
class Loss {
 public:
  enum Kind {
    mean_squared_error,
    mean_absolute_error,
    binary_crossentropy,
    categorical_crossentropy,
    sparse_categorical_crossentropy
  };
  Loss(Kind kind, bool from_logits = false) : kind_(kind), from_logits_(from_logits) {}  // NOLINT
  // Keras names and aliases: "mse", "mean_squared_error", "mae", "binary_crossentropy", ...
  Loss(const char* name);                                // NOLINT; ValueError on an unknown name
  Loss(const std::string& name) : Loss(name.c_str()) {}  // NOLINT

  Tensor operator()(const Tensor& y_true, const Tensor& y_pred) const;
  Kind kind() const { return kind_; }
  bool from_logits() const { return from_logits_; }
  std::string name() const;        // "sparse_categorical_crossentropy"
  std::string class_name() const;  // "SparseCategoricalCrossentropy"
  // Keras' serialized loss: {"class_name": ..., "config": {"from_logits": ..., ...}}. from_config
  // also takes a bare name.
  Json config() const;
  static Loss from_config(const Json& j);

 private:
  Kind kind_;
  bool from_logits_;
};

// Keras' loss classes, as values convertible to Loss.
namespace losses {
struct LogitsOption {
  bool from_logits = false;
};
struct MeanSquaredError : Loss {
  MeanSquaredError() : Loss(mean_squared_error) {}
};
struct MeanAbsoluteError : Loss {
  MeanAbsoluteError() : Loss(mean_absolute_error) {}
};
struct BinaryCrossentropy : Loss {
  explicit BinaryCrossentropy(LogitsOption o = {}) : Loss(binary_crossentropy, o.from_logits) {}
};
struct CategoricalCrossentropy : Loss {
  explicit CategoricalCrossentropy(LogitsOption o = {}) : Loss(categorical_crossentropy, o.from_logits) {}
};
struct SparseCategoricalCrossentropy : Loss {
  explicit SparseCategoricalCrossentropy(LogitsOption o = {}) : Loss(sparse_categorical_crossentropy, o.from_logits) {}
};
}  // namespace losses

}  // namespace lamina
