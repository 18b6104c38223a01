// Deletion curves on MNIST (issue 17): how fast a trained CNN loses its true class when the
// pixels an attribution method ranks highest are zeroed, against zeroing pixels in random order,
// and how close Integrated Gradients comes to completeness as its steps grow. A report, not a test
// (tests/test_explain_mnist.cpp asserts the 10% point on the fixture's 100 images).
//
// Run: build/examples/explain_mnist [MODEL] [data/mnist] [images]
//      (default: the test fixture tests/fixtures/mnist_cnn/mnist_cnn.safetensors, 1000 test images;
//       a model with a rank-4 layer "conv2d_1" for Grad-CAM, on inputs x / 255)
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <iostream>
#include <numeric>
#include <string>
#include <vector>

#include <lamina/explain.hpp>
#include <lamina/lamina.hpp>

using namespace lamina;

namespace {

// N = images, P = pixels of one image (every input value counts as a pixel).

// softmax(logits)[label] per image, averaged.
double mean_true_probability(Model& model, const Tensor& x, const std::vector<int64_t>& labels) {
  const Tensor y = model.predict(x, 256);
  const int64_t k = y.dim(1);
  double total = 0;
  for (size_t i = 0; i < labels.size(); ++i) {
    const float* row = y.data() + static_cast<int64_t>(i) * k;
    const double top = *std::max_element(row, row + k);
    double sum = 0;
    for (int64_t j = 0; j < k; ++j) sum += std::exp(row[j] - top);
    total += std::exp(row[labels[i]] - top) / sum;
  }
  return total / static_cast<double>(labels.size());
}

// Per image, its pixels from the highest score to the lowest; ties (zero pixels' zero IG, the
// flat parts of a Grad-CAM map) in a seeded random order rather than by position.
std::vector<std::vector<int64_t>> rank_pixels(const Tensor& scores, uint64_t seed) {
  const int64_t n = scores.dim(0), p = scores.numel() / n;
  Generator gen(seed);
  std::vector<std::vector<int64_t>> ranks(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) {
    auto& order = ranks[static_cast<size_t>(i)];
    order.resize(static_cast<size_t>(p));
    std::iota(order.begin(), order.end(), 0);
    for (int64_t j = p - 1; j > 0; --j) std::swap(order[j], order[gen.below(j + 1)]);
    const float* s = scores.data() + i * p;
    std::stable_sort(order.begin(), order.end(), [&](int64_t a, int64_t b) { return s[a] > s[b]; });
  }
  return ranks;
}

// Mean true-class probability after zeroing each image's top k% pixels, for each k.
std::vector<double> deletion_curve(Model& model, const Tensor& x, const std::vector<int64_t>& labels,
                                   const std::vector<std::vector<int64_t>>& ranks, const std::vector<int>& percents) {
  const int64_t n = x.dim(0), p = x.numel() / n;
  std::vector<double> curve;
  for (int k : percents) {
    Tensor deleted = x.clone();
    const int64_t count = p * k / 100;
    for (int64_t i = 0; i < n; ++i)
      for (int64_t r = 0; r < count; ++r) deleted.data()[i * p + ranks[static_cast<size_t>(i)][static_cast<size_t>(r)]] = 0.f;
    curve.push_back(mean_true_probability(model, deleted, labels));
  }
  return curve;
}

double seconds_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

}  // namespace

int main(int argc, char** argv) try {
  const std::string model_path = argc > 1 ? argv[1] : "tests/fixtures/mnist_cnn/mnist_cnn.safetensors";
  const std::string data_dir = argc > 2 ? argv[2] : "data/mnist";
  const int64_t n = argc > 3 ? std::atoll(argv[3]) : 1000;
  const int64_t n_delta = std::min<int64_t>(n, 100);  // IG at 500 steps on every image is slow

  Model model = Model::load(model_path);
  const data::Dataset test = data::load_mnist(data_dir).test;  // pixels / 255
  std::vector<int64_t> indices(static_cast<size_t>(std::min(n, test.size())));
  std::iota(indices.begin(), indices.end(), 0);
  Shape shape = *model.input_shape();  // (28, 28, 1) or (28, 28)
  std::vector<int64_t> dims{static_cast<int64_t>(indices.size())};
  dims.insert(dims.end(), shape.begin(), shape.end());
  const Tensor x = test.x(indices).reshape(Shape(dims));
  std::vector<int64_t> labels;
  for (float v : test.y(indices).values()) labels.push_back(static_cast<int64_t>(v));
  const explain::Target target(labels.begin(), labels.end());
  std::printf("%s on the first %zu MNIST test images, true class explained\n", model_path.c_str(), labels.size());

  const std::vector<int> percents = {0, 5, 10, 20, 30, 50};
  struct Row {
    std::string name;
    std::vector<double> curve;
    double seconds;
  };
  std::vector<Row> rows;
  auto add = [&](const std::string& name, const Tensor& scores, double seconds) {
    rows.push_back({name, deletion_curve(model, x, labels, rank_pixels(scores, 1), percents), seconds});
    std::fprintf(stderr, "  %s done (%.1f s)\n", name.c_str(), seconds);
  };

  auto t0 = std::chrono::steady_clock::now();
  const Tensor ig = explain::integrated_gradients(model, x, {.target = target}).attributions;  // 50 steps, GL
  add("IG (50 steps, zero baseline)", ig, seconds_since(t0));
  t0 = std::chrono::steady_clock::now();
  const Tensor sal = explain::saliency(model, x, {.target = target});
  add("Saliency |grad|", sal, seconds_since(t0));
  t0 = std::chrono::steady_clock::now();
  const Tensor ixg = explain::input_x_gradient(model, x, {.target = target});
  add("InputXGradient", ixg, seconds_since(t0));
  t0 = std::chrono::steady_clock::now();
  const Tensor cam = explain::grad_cam(model, x, {.target = target, .layer = "conv2d_1"});
  add("Grad-CAM at conv2d_1", cam.reshape(x.shape()), seconds_since(t0));
  t0 = std::chrono::steady_clock::now();
  Shape window = shape.rank() == 3 ? Shape{4, 4, 1} : Shape{4, 4};
  Shape strides = shape.rank() == 3 ? Shape{2, 2, 1} : Shape{2, 2};
  const Tensor occ = explain::occlusion(model, x, {.target = target, .window = window, .strides = strides});
  add("Occlusion 4x4 stride 2", occ, seconds_since(t0));
  Generator gen(2);
  add("random", Tensor::rand(x.shape(), gen), 0);

  std::printf("\nmean true-class probability after zeroing the top k%% of pixels\n%-30s", "ranked by \\ k");
  for (int k : percents) std::printf("%8d%%", k);
  std::printf("%10s\n", "seconds");
  for (const Row& row : rows) {
    std::printf("%-30s", row.name.c_str());
    for (double v : row.curve) std::printf("%9.4f", v);
    std::printf("%10.1f\n", row.seconds);
  }

  std::printf("\nIG completeness: mean |delta| (max) over the first %lld images, zero baseline\n%-20s",
              static_cast<long long>(n_delta), "rule \\ steps");
  const std::vector<int> steps = {50, 200, 500};
  for (int s : steps) std::printf("%20d", s);
  std::printf("\n");
  const Tensor xd = x.slice(0, 0, n_delta).clone();
  const explain::Target td(labels.begin(), labels.begin() + n_delta);
  for (explain::Rule rule : {explain::Rule::gauss_legendre, explain::Rule::riemann_trapezoid}) {
    std::printf("%-20s", explain::to_string(rule).c_str());
    for (int s : steps) {
      const Tensor delta = explain::integrated_gradients(model, xd, {.target = td, .steps = s, .rule = rule}).delta;
      double sum = 0, worst = 0;
      for (float v : delta.values()) {
        sum += std::abs(v);
        worst = std::max(worst, static_cast<double>(std::abs(v)));
      }
      char cell[32];
      std::snprintf(cell, sizeof cell, "%.5f (%.4f)", sum / static_cast<double>(delta.numel()), worst);
      std::printf("%20s", cell);
    }
    std::printf("\n");
  }
} catch (const lamina::Error& e) {
  std::cerr << "explain_mnist: " << e.what() << "\n";
  return 1;
}
