// Elementwise activations and functions: y = f(x), same shape. Each backward is dx += dy * f'(x),
// written from whichever of x and y is cheaper (sigmoid and tanh use y; nothing else is saved).
#include <cmath>

#include "lamina/ops.hpp"
#include "ops/op_helpers.hpp"

namespace lamina {

using detail::unary;

Tensor relu(const Tensor& x) {
  // v < 0 ? 0 : v rather than max(v, 0): a NaN stays NaN, as in PyTorch and TensorFlow, so a
  // diverged model shows in its loss instead of being zeroed away.
  return unary("relu", x, [](float v) { return v < 0.f ? 0.f : v; },
               [](float v, float, float d) { return v > 0.f ? d : 0.f; });
}

Tensor leaky_relu(const Tensor& x, float slope) {
  return unary("leaky_relu", x, [slope](float v) { return v > 0.f ? v : slope * v; },
               [slope](float v, float, float d) { return v > 0.f ? d : slope * d; });
}

Tensor elu(const Tensor& x, float alpha) {
  // For x <= 0: y = alpha (e^x - 1), dy/dx = y + alpha.
  return unary("elu", x, [alpha](float v) { return v > 0.f ? v : alpha * std::expm1(v); },
               [alpha](float v, float y, float d) { return v > 0.f ? d : d * (y + alpha); });
}

Tensor sigmoid(const Tensor& x) {
  // Two branches so neither exp overflows: for v < 0, e^v / (1 + e^v).
  return unary("sigmoid", x,
               [](float v) {
                 if (v >= 0.f) return 1.f / (1.f + std::exp(-v));
                 const float e = std::exp(v);
                 return e / (1.f + e);
               },
               [](float, float y, float d) { return d * y * (1.f - y); });
}

Tensor tanh(const Tensor& x) {
  return unary("tanh", x, [](float v) { return std::tanh(v); },
               [](float, float y, float d) { return d * (1.f - y * y); });
}

Tensor exp(const Tensor& x) {
  return unary("exp", x, [](float v) { return std::exp(v); }, [](float, float y, float d) { return d * y; });
}

Tensor log(const Tensor& x) {
  return unary("log", x, [](float v) { return std::log(v); }, [](float v, float, float d) { return d / v; });
}

Tensor sqrt(const Tensor& x) {
  return unary("sqrt", x, [](float v) { return std::sqrt(v); },
               [](float, float y, float d) { return d * 0.5f / y; });
}

}  // namespace lamina
