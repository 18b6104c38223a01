// Links against the installed Lamina and takes one gradient: d/dw sum(w * x) = x.
#include <lamina/lamina.hpp>

#include <iostream>

int main() {
  using namespace lamina;
  Tensor w = Tensor::ones({3}).requires_grad_();
  Tensor x = Tensor::from({1.f, 2.f, 3.f});
  sum(w * x).backward();
  std::cout << "grad " << w.grad() << "\n";
  return w.grad().to_vector() == std::vector<float>{1.f, 2.f, 3.f} ? 0 : 1;
}
