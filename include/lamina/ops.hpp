// Differentiable functions on tensors. Each is one forward + one backward, side by side in
// src/ops/. Binary arithmetic broadcasts like NumPy/PyTorch (trailing dimensions align; a
// dimension of 1 stretches). Axes may be negative (-1 is the last).
//
//   Tensor h = relu(matmul(x, w) + b);          // (N, K) @ (K, U) + (U) -> (N, U)
//   Tensor p = softmax(h);                      // along the last axis
//   Tensor m = mean(h, /*axis=*/0);             // (U)
#pragma once

#include <cstdint>

#include "lamina/tensor.hpp"

namespace lamina {

// --- linear algebra ------------------------------------------------------------------------
// (M, K) @ (K, N) -> (M, N), on oneDNN.
Tensor matmul(const Tensor& a, const Tensor& b);
// An activation that linear() can fuse into its GEMM (a oneDNN post-op).
enum class FusedActivation { none, relu, sigmoid, tanh };
// act(x (M, K) @ w (K, N) + bias (N)): a dense layer in one oneDNN primitive. The backward
// takes act' from the output, so nothing beyond x, w and the output is kept.
Tensor linear(const Tensor& x, const Tensor& w, const Tensor& bias, FusedActivation act = FusedActivation::none);
// (M, N) -> (N, M), a copy.
Tensor transpose(const Tensor& x);

// --- elementwise arithmetic, broadcasting ----------------------------------------------------
Tensor add(const Tensor& a, const Tensor& b);
Tensor sub(const Tensor& a, const Tensor& b);
Tensor mul(const Tensor& a, const Tensor& b);
Tensor div(const Tensor& a, const Tensor& b);
Tensor neg(const Tensor& x);
Tensor square(const Tensor& x);
// With a scalar: x + s, x * s, s - x, s / x.
Tensor add(const Tensor& x, float s);
Tensor mul(const Tensor& x, float s);
Tensor rsub(const Tensor& x, float s);
Tensor rdiv(const Tensor& x, float s);

Tensor operator+(const Tensor& a, const Tensor& b);
Tensor operator-(const Tensor& a, const Tensor& b);
Tensor operator*(const Tensor& a, const Tensor& b);
Tensor operator/(const Tensor& a, const Tensor& b);
Tensor operator-(const Tensor& x);
Tensor operator+(const Tensor& x, float s);
Tensor operator+(float s, const Tensor& x);
Tensor operator-(const Tensor& x, float s);
Tensor operator-(float s, const Tensor& x);
Tensor operator*(const Tensor& x, float s);
Tensor operator*(float s, const Tensor& x);
Tensor operator/(const Tensor& x, float s);
Tensor operator/(float s, const Tensor& x);

// --- reductions ---------------------------------------------------------------------------------
Tensor sum(const Tensor& x);  // all elements -> scalar
Tensor sum(const Tensor& x, int64_t axis, bool keepdim = false);
Tensor mean(const Tensor& x);
Tensor mean(const Tensor& x, int64_t axis, bool keepdim = false);

// --- shape -------------------------------------------------------------------------------------
// A view with the same elements; one dimension may be -1 (inferred).
Tensor reshape(const Tensor& x, const Shape& shape);
// Keeps dimensions before start_axis, folds the rest: (N, 28, 28) -> (N, 784).
Tensor flatten(const Tensor& x, int64_t start_axis = 1);

// --- activations and elementwise functions ---------------------------------------------------
Tensor relu(const Tensor& x);
// x if x > 0 else negative_slope * x. Keras' keras.activations.leaky_relu default (0.2).
Tensor leaky_relu(const Tensor& x, float negative_slope = 0.2f);
// x if x > 0 else alpha * (exp(x) - 1).
Tensor elu(const Tensor& x, float alpha = 1.f);
Tensor sigmoid(const Tensor& x);
Tensor tanh(const Tensor& x);
Tensor exp(const Tensor& x);
Tensor log(const Tensor& x);   // natural log; x must be > 0
Tensor sqrt(const Tensor& x);  // x must be >= 0
// exp(x) / sum(exp(x)) along `axis`, computed with the max subtracted (no overflow).
Tensor softmax(const Tensor& x, int64_t axis = -1);
// x - logsumexp(x) along `axis`; finite for logits of any magnitude.
Tensor log_softmax(const Tensor& x, int64_t axis = -1);

}  // namespace lamina
