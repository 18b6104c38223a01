// A user's own program against the installed Lamina, as issue 14 asked: a focal loss (Lin et al.,
// 2017) and a metric of its own, written here with the public ops, train the course's digits MLP
// (Dense 64 relu + Dense 10 softmax, SGD momentum 0.9, batch 128). It reads scikit-learn's digits
// when given their path (scripts/fetch-data.sh digits); without them it makes 8x8 "digits" of its
// own (ten noisy prototypes) and says so. Exits non-zero unless the test accuracy passes 0.85.
#include <lamina/lamina.hpp>

#include <cmath>
#include <filesystem>
#include <iostream>

using namespace lamina;

namespace {

// Categorical focal loss on probabilities: -sum_c t_c (1 - p_c)^gamma log p_c, per sample.
Tensor focal_loss(const Tensor& y_true, const Tensor& y_pred, float gamma) {
  const Tensor t = one_hot(y_true, y_pred.dim(-1));
  const Tensor p = clamp(y_pred, 1e-7f, 1.f - 1e-7f);
  return sum(neg(t * pow(1.f - p, gamma) * log(p)), -1);  // (N)
}

// The mean probability the model gives the true class: a metric of the user's own.
class TrueClassProbability : public Metric {
 public:
  std::string name() const override { return "p_true"; }
  void reset_state() override { sum_ = n_ = 0; }
  void update_state(const Tensor& y, const Tensor& p, const Tensor& = Tensor()) override {
    for (int64_t i = 0; i < p.dim(0); ++i) sum_ += p.data()[i * p.dim(1) + static_cast<int64_t>(y.data()[i])];
    n_ += static_cast<double>(p.dim(0));
  }
  double result() const override { return n_ ? sum_ / n_ : 0.0; }

 private:
  double sum_ = 0, n_ = 0;
};

data::Dataset synthetic_digits() {
  Generator gen(7);
  const Tensor prototypes = Tensor::rand({10, 64}, gen, 0.f, 16.f);
  Tensor x = Tensor::empty({1797, 64}), y = Tensor::empty({1797});
  for (int64_t i = 0; i < 1797; ++i) {
    const int64_t c = i % 10;
    y.data()[i] = static_cast<float>(c);
    for (int64_t k = 0; k < 64; ++k)
      x.data()[i * 64 + k] = std::clamp(prototypes.data()[c * 64 + k] + 4.f * gen.normal(), 0.f, 16.f);
  }
  return data::Dataset::from_tensors(x, y);
}

}  // namespace

int main(int argc, char** argv) try {
  const bool real = argc > 1 && std::filesystem::exists(argv[1]);
  data::Dataset digits = (real ? data::load_digits(argv[1]) : synthetic_digits()).scaled(1.f / 16.f);
  std::cout << (real ? "scikit-learn's digits" : "synthetic 8x8 digits (no digits.csv.gz given)") << "\n";
  auto [train, test] = digits.split(0.8, /*seed=*/1);

  manual_seed(1);
  Sequential model({layers::Dense({.units = 64, .activation = "relu", .input_shape = Shape{64}}),
                    layers::Dense({.units = 10, .activation = "softmax"})});
  const double learning_rate = argc > 2 ? std::stod(argv[2]) : 0.05;  // a runtime double
  model.compile(SGD({.learning_rate = learning_rate, .momentum = 0.9}),
                Loss([](const Tensor& y, const Tensor& p) { return focal_loss(y, p, 2.f); }, "focal_loss"),
                CompileOptions{.metrics = {"accuracy", TrueClassProbability()}});
  const History h = model.fit(train, {.epochs = 20, .batch_size = 128, .seed = 1, .verbose = 0});
  const Logs result = model.evaluate(test, {.verbose = 0});
  std::cout << "focal loss " << h.history.at("loss").front() << " -> " << h.history.at("loss").back()
            << "; test accuracy " << result.at("accuracy") << ", mean p(true class) " << result.at("p_true") << "\n";
  return result.at("accuracy") > 0.85 && h.history.at("loss").back() < h.history.at("loss").front() ? 0 : 1;
} catch (const lamina::Error& e) {
  std::cerr << "focal_digits: " << e.what() << "\n";
  return 1;
}
