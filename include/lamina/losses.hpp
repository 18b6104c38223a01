// Losses in Keras' names and argument order (y_true, y_pred), reduced to the mean over all
// samples ("sum_over_batch_size"). Gradients flow to y_pred; MSE and MAE also to y_true.
// Probabilities are clipped to [1e-7, 1 - 1e-7] as Keras does; the from_logits forms are
// computed from log-softmax / softplus and stay finite for logits of any magnitude.
//
//   Tensor loss = sparse_categorical_crossentropy(labels, logits, /*from_logits=*/true);
//   loss.backward();
#pragma once

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

}  // namespace lamina
