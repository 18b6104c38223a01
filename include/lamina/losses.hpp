// Losses in Keras' names and argument order (y_true, y_pred), reduced to the mean over all
// samples ("sum_over_batch_size"). Gradients flow to y_pred; MSE and MAE also to y_true.
// Each takes Keras' sample_weight: one weight per sample (N) scaling its part of the sum (the
// mean stays over all samples, as Keras divides by the batch size, not by the weights' sum).
// Probabilities are clipped to [1e-7, 1 - 1e-7] as Keras does; the from_logits forms are
// computed from log-softmax / softplus and stay finite for logits of any magnitude.
//
//   Tensor loss = sparse_categorical_crossentropy(labels, logits, /*from_logits=*/true);
//   loss.backward();
#pragma once

#include <concepts>
#include <functional>
#include <memory>
#include <string>

#include "lamina/json.hpp"
#include "lamina/tensor.hpp"

namespace lamina {

inline constexpr float kEpsilon = 1e-7f;  // keras.backend.epsilon()

// mean((y_pred - y_true)^2). Shapes must match (a trailing 1 may be dropped: (N) vs (N, 1)).
Tensor mean_squared_error(const Tensor& y_true, const Tensor& y_pred, const Tensor& sample_weight = Tensor());
// mean(|y_pred - y_true|).
Tensor mean_absolute_error(const Tensor& y_true, const Tensor& y_pred, const Tensor& sample_weight = Tensor());
// -mean(t log p + (1 - t) log(1 - p)); with from_logits, y_pred holds logits.
Tensor binary_crossentropy(const Tensor& y_true, const Tensor& y_pred, bool from_logits = false,
                           const Tensor& sample_weight = Tensor());
// y_true one-hot (or soft) (..., C); y_pred probabilities (rows are normalised first, as
// Keras does) or logits. -mean over rows of sum_c t_c log p_c.
Tensor categorical_crossentropy(const Tensor& y_true, const Tensor& y_pred, bool from_logits = false,
                                const Tensor& sample_weight = Tensor());
// y_true integer class indices (...) stored as floats, y_pred (..., C).
Tensor sparse_categorical_crossentropy(const Tensor& y_true, const Tensor& y_pred, bool from_logits = false,
                                       const Tensor& sample_weight = Tensor());

// A loss as a value, for Model::compile: Loss("mse"), Loss(Loss::binary_crossentropy),
// losses::SparseCategoricalCrossentropy({.from_logits = true}), or a function of your own.
//
// A custom loss is any callable (y_true, y_pred) -> Tensor written with ops (ops.hpp), as a
// Keras loss function. Return per-sample losses (N) or (N, ...): compile reduces them to their
// mean, weighted by sample or class weights as the built-in losses are. A scalar is taken as it
// is (and then cannot be weighted per sample). Give it a name to be saved and reloaded by
// (register_loss); unregistered, a saved model loads uncompiled.
//
//   Loss focal([](const Tensor& y, const Tensor& p) {            // binary focal loss, gamma 2
//     Tensor pt = where(y, p, 1.f - p);                           // ...
//     return mean(-square(1.f - pt) * log(pt), -1);               // (N)
//   }, "focal_loss");
//   model.compile(Adam(), focal, {"accuracy"});
class Loss {
 public:
  enum Kind {
    mean_squared_error,
    mean_absolute_error,
    binary_crossentropy,
    categorical_crossentropy,
    sparse_categorical_crossentropy,
    custom
  };
  using Function = std::function<Tensor(const Tensor& y_true, const Tensor& y_pred)>;
  Loss(Kind kind, bool from_logits = false) : kind_(kind), from_logits_(from_logits) {}  // NOLINT
  // Keras names and aliases: "mse", "mean_squared_error", "mae", "binary_crossentropy", ...,
  // and the names given to register_loss. ValueError on an unknown name.
  Loss(const char* name);                                // NOLINT
  Loss(const std::string& name) : Loss(name.c_str()) {}  // NOLINT
  // A loss of your own (see above); `name` is what compile configs save.
  Loss(Function fn, std::string name);
  template <class F>
    requires(std::is_invocable_r_v<Tensor, const F&, const Tensor&, const Tensor&> &&
             !std::derived_from<F, Loss> && !std::convertible_to<F, std::string> && !std::same_as<F, Kind>)
  Loss(F fn) : Loss(Function(std::move(fn)), "custom_loss") {}  // NOLINT: a lambda is a loss

  // The reduced (scalar) loss; sample_weight (N), when defined, weighs each sample.
  Tensor operator()(const Tensor& y_true, const Tensor& y_pred, const Tensor& sample_weight = Tensor()) const;
  Kind kind() const { return kind_; }
  bool from_logits() const { return from_logits_; }
  std::string name() const;        // "sparse_categorical_crossentropy", or the custom name
  std::string class_name() const;  // "SparseCategoricalCrossentropy", or the custom name
  // Keras' serialized loss: {"class_name": ..., "config": {"from_logits": ..., ...}}. from_config
  // also takes a bare name, and the names of registered losses.
  Json config() const;
  static Loss from_config(const Json& j);

 private:
  Kind kind_;
  bool from_logits_;
  std::shared_ptr<const Function> fn_;  // custom
  std::string name_;                    // custom
};

// Makes a custom loss known by name, so that configs and saved models naming it compile (Keras'
// custom_objects). ValueError when the name is a built-in one.
void register_loss(const std::string& name, Loss::Function fn);

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
