// Rosenblatt's perceptron (1958), the course's starting point: a neuron with a step activation,
// f(x) = [w.x + b > 0], and the learning rule w <- w + eta (y - f(x)) x, b <- b + eta (y - f(x)).
// No gradients: the rule only moves the weights on mistakes. On linearly separable data it
// converges (Novikoff's theorem) -- here to zero training errors.
// Run: build/examples/perceptron [--check]   (--check: exit 1 unless it separates the data)
#include <cstring>
#include <iostream>

#include <lamina/lamina.hpp>

using namespace lamina;

int main(int argc, char** argv) {
  const bool check = argc > 1 && std::strcmp(argv[1], "--check") == 0;
  Generator gen(7);

  // 200 points in 2-D labelled by the line 2 x0 - x1 + 0.5 = 0, with a margin around it.
  const int64_t n = 200;
  Tensor x = Tensor::empty({n, 2}), y = Tensor::empty({n});
  for (int64_t i = 0; i < n;) {
    const float a = 4.f * gen.uniform() - 2.f, b = 4.f * gen.uniform() - 2.f;
    const float side = 2.f * a - b + 0.5f;
    if (side > -0.2f && side < 0.2f) continue;  // keep a margin: separable with room
    x.at({i, 0}) = a, x.at({i, 1}) = b;
    y.data()[i] = side > 0.f ? 1.f : 0.f;
    ++i;
  }

  float w[2] = {0.f, 0.f}, bias = 0.f;
  const float eta = 0.1f;
  int epoch = 0, errors = 0;
  do {
    errors = 0;
    for (int64_t i = 0; i < n; ++i) {
      const float out = w[0] * x.at({i, 0}) + w[1] * x.at({i, 1}) + bias > 0.f ? 1.f : 0.f;
      const float delta = y.data()[i] - out;  // 0 when right, +-1 when wrong
      if (delta == 0.f) continue;
      ++errors;
      w[0] += eta * delta * x.at({i, 0});
      w[1] += eta * delta * x.at({i, 1});
      bias += eta * delta;
    }
    std::cout << "epoch " << ++epoch << ": " << errors << " mistakes\n";
  } while (errors > 0 && epoch < 100);

  std::cout << "w = (" << w[0] << ", " << w[1] << "), b = " << bias << "; the boundary " << w[0] << " x0 + " << w[1]
            << " x1 + " << bias << " = 0 separates the data (truth: 2 x0 - x1 + 0.5 = 0)\n";
  return check && errors > 0 ? 1 : 0;
}
