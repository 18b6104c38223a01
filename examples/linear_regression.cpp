// The course's linear model y = W x + b, fitted to synthetic data by plain gradient descent on
// the mean squared error: W <- W - alpha dL/dW, b <- b - alpha dL/db. Autograd gives the gradients.
// Run: build/examples/linear_regression [--check]   (--check: exit 1 unless W, b are recovered
// within 1e-2)
#include <cmath>
#include <cstring>
#include <iostream>

#include <lamina/lamina.hpp>

using namespace lamina;

int main(int argc, char** argv) {
  const bool check = argc > 1 && std::strcmp(argv[1], "--check") == 0;
  Generator gen(2024);

  // The truth: 3 inputs, 2 outputs. Data: y = x W^T + b + small noise.
  const Tensor w_true = Tensor::from({{2.0f, -1.0f, 0.5f}, {-0.3f, 0.8f, 1.5f}});
  const Tensor b_true = Tensor::from({0.7f, -1.2f});
  const int64_t n = 256;
  const Tensor x = Tensor::randn({n, 3}, gen);
  const Tensor y = matmul(x, transpose(w_true)) + b_true + Tensor::randn({n, 2}, gen, 0.f, 0.01f);

  // The model starts at zero.
  Tensor w = Tensor::zeros({2, 3}).requires_grad_();
  Tensor b = Tensor::zeros({2}).requires_grad_();
  const float alpha = 0.1f;

  for (int step = 0; step <= 300; ++step) {
    Tensor y_hat = matmul(x, transpose(w)) + b;
    Tensor loss = mean_squared_error(y, y_hat);
    loss.backward();
    for (Tensor* p : {&w, &b}) {  // gradient descent, then clear the gradient for the next step
      float* v = p->data();
      const float* g = p->grad().data();
      for (int64_t i = 0; i < p->numel(); ++i) v[i] -= alpha * g[i];
      p->zero_grad();
    }
    if (step % 50 == 0) std::cout << "step " << step << "  loss " << loss.item() << "\n";
  }

  std::cout << "\nW learned " << w.detach() << "\nW true    " << w_true << "\n";
  std::cout << "b learned " << b.detach() << "\nb true    " << b_true << "\n";
  float worst = 0.f;
  for (int64_t i = 0; i < 6; ++i) worst = std::max(worst, std::fabs(w.data()[i] - w_true.data()[i]));
  for (int64_t i = 0; i < 2; ++i) worst = std::max(worst, std::fabs(b.data()[i] - b_true.data()[i]));
  std::cout << "largest parameter error: " << worst << "\n";
  return check && !(worst < 1e-2f) ? 1 : 0;
}
