// The frozen classifier that judges generated MNIST digits, as TF-GAN evaluates MNIST GANs
// (examples/cgan_mnist.cpp, examples/vae_mnist.cpp): Lamina's own LeNet-5, trained on the
// training split only (never on generated images), cached in a file so that later runs reuse it.
// On a set of images it reports the accuracy against the labels asked for, the entropy of the
// predicted-class histogram / ln 10, the classifier score exp(E KL(p(y|x) || p(y))) and the
// Fréchet distance between the penultimate (84-d) features of the set and of the real test digits
// (lamina/generative_metrics.hpp computes them).
#pragma once

#include <algorithm>
#include <filesystem>
#include <iomanip>
#include <iostream>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include <lamina/lamina.hpp>

namespace judge {

using namespace lamina;

// LeNet-5 as examples/cnn_mnist.cpp: (28, 28) images in [0, 1] -> 10 logits.
inline Sequential lenet() {
  return Sequential({layers::Input({28, 28}), layers::Reshape(Shape{28, 28, 1}),
                     layers::Conv2D({.filters = 6, .kernel_size = 5, .padding = Padding::same, .activation = "relu"}),
                     layers::MaxPooling2D({.pool_size = 2}),
                     layers::Conv2D({.filters = 16, .kernel_size = 5, .activation = "relu"}),
                     layers::MaxPooling2D({.pool_size = 2}), layers::Flatten(), layers::Dense(120, "relu"),
                     layers::Dense(84, "relu"), layers::Dense(10)},
                    "lenet_judge");
}

// The classifier from `path`, or trained on mnist.train (checked on mnist.test) and saved there.
inline Sequential load_or_train(const std::string& path, const data::TrainTest& mnist) {
  if (std::filesystem::exists(path)) {
    Sequential net(Model::load(path));
    std::cout << "judge: LeNet-5 from " << path << "\n";
    return net;
  }
  std::cout << "judge: training LeNet-5 on the MNIST training split (saved to " << path << ")\n";
  manual_seed(3);
  Sequential net = lenet();
  net.compile(Adam(), losses::SparseCategoricalCrossentropy({.from_logits = true}), {"accuracy"});
  net.fit(mnist.train, {.epochs = 10, .batch_size = 64, .seed = 3, .verbose = 2});
  const double acc = net.evaluate(mnist.test, {.batch_size = 500, .verbose = 0}).at("accuracy");
  std::cout << "judge: test accuracy " << std::fixed << std::setprecision(4) << acc << "\n";
  if (acc < 0.99) std::cout << "judge: warning: below the 0.99 a judge should reach\n";
  net.save(path);
  return net;
}

// Class probabilities (N, 10) and the penultimate features (N, 84) of images (N, 28, 28) in [0, 1].
inline std::pair<Tensor, Tensor> classify(Sequential& net, const Tensor& images) {
  NoGradGuard no_grad;
  const int64_t n = images.dim(0), batch = 500;
  Tensor probs = Tensor::empty({n, 10}), features = Tensor::empty({n, 84});
  const auto& layers = net.layers();
  for (int64_t b = 0; b < n; b += batch) {
    const int64_t e = std::min(n, b + batch);
    Tensor h = images.slice(0, b, e);
    for (size_t i = 0; i + 1 < layers.size(); ++i) h = layers[i]->call(h, false);
    std::copy(h.data(), h.data() + h.numel(), features.data() + b * 84);
    const Tensor p = softmax(layers.back()->call(h, false));
    std::copy(p.data(), p.data() + p.numel(), probs.data() + b * 10);
  }
  return {probs, features};
}

struct Scores {
  std::string what;
  ClassifierScores s;
};

// The four figures for `images`; labels: the classes asked for (N), or undefined for none.
inline Scores score(Sequential& net, const std::string& what, const Tensor& images, const Tensor& labels,
                    const FeatureStats& real) {
  const auto [probs, features] = classify(net, images);
  return {what, classifier_scores(probs, labels, features, real)};
}

inline void print(const std::vector<Scores>& rows) {
  std::cout << "\n" << std::left << std::setw(30) << "images" << std::right << std::setw(8) << "count" << std::setw(10)
            << "accuracy" << std::setw(14) << "entropy/ln10" << std::setw(18) << "classifier score" << std::setw(10)
            << "Frechet" << "\n";
  for (const Scores& r : rows) {
    std::cout << std::left << std::setw(30) << r.what << std::right << std::setw(8) << r.s.count << std::fixed
              << std::setprecision(4) << std::setw(10);
    if (r.s.accuracy) std::cout << *r.s.accuracy; else std::cout << "-";
    std::cout << std::setw(14) << r.s.entropy_ratio << std::setw(18) << r.s.classifier_score << std::setprecision(2)
              << std::setw(10) << r.s.frechet_distance << "\n";
  }
}

}  // namespace judge
