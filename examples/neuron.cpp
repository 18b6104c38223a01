// One neuron, as the course writes it: f(x) = a(sum_i w_i x_i + b), with a = sigmoid.
// Autograd computes df/dw, df/db and df/dx; the closed form a'(z) = f (1 - f) checks them.
// Run: build/examples/neuron [--check]   (--check: exit 1 if the two disagree)
#include <cmath>
#include <cstring>
#include <iostream>

#include <lamina/lamina.hpp>

using namespace lamina;

int main(int argc, char** argv) {
  const bool check = argc > 1 && std::strcmp(argv[1], "--check") == 0;

  Tensor x = Tensor::from({{0.5f, -1.0f, 2.0f}}).requires_grad_();  // one sample, 3 inputs
  Tensor w = Tensor::from({0.4f, 0.3f, -0.2f}, {3, 1}).requires_grad_();  // 3 weights
  Tensor b = Tensor::from({0.1f}).requires_grad_();

  Tensor z = matmul(x, w) + b;  // sum_i w_i x_i + b
  Tensor f = sigmoid(z);        // a(z)
  f.backward();

  const float fv = f.item(), slope = fv * (1.f - fv);  // sigmoid'(z) = f (1 - f)
  std::cout << "z = w.x + b = " << z.item() << "\nf(x) = sigmoid(z) = " << fv << "\n\n";
  std::cout << "df/dw (autograd)      " << w.grad().reshape({3}) << "\n";
  std::cout << "df/dw = f(1-f) x      " << (x.detach() * slope).reshape({3}) << "\n";
  std::cout << "df/db (autograd)      " << b.grad().item() << "   f(1-f) = " << slope << "\n";
  std::cout << "df/dx (autograd)      " << x.grad().reshape({3}) << "\n";
  std::cout << "df/dx = f(1-f) w      " << (w.detach() * slope).reshape({3}) << "\n";

  float worst = std::fabs(b.grad().item() - slope);
  for (int i = 0; i < 3; ++i) {
    worst = std::max(worst, std::fabs(w.grad().at({i, 0}) - slope * x.at({0, i})));
    worst = std::max(worst, std::fabs(x.grad().at({0, i}) - slope * w.at({i, 0})));
  }
  std::cout << "\nlargest difference between autograd and the closed form: " << worst << "\n";
  return check && worst > 1e-6f ? 1 : 0;
}
