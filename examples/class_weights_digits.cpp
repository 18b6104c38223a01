// Class weights on an imbalanced subset of the 8x8 digits: the course's digits MLP (Dense 64
// relu + Dense 10 softmax, SGD 0.01 momentum 0.9, batch 128) trained on a training split in which
// one digit keeps only 10% of its samples, first as it is, then with Keras' "balanced" class
// weights (n_samples / (n_classes * count of the class)). The rare digit's recall on the untouched
// test split goes up; both runs are reported, with the per-class table of the weighted one.
//
// Run: build/examples/class_weights_digits [digits.csv.gz] [--rare 3] [--epochs 10] [--check]
//      (scripts/fetch-data.sh digits). --check exits non-zero unless the rare digit's recall rose.
#include <cstring>
#include <iostream>
#include <map>
#include <string>

#include <lamina/lamina.hpp>

using namespace lamina;

namespace {

Sequential digits_mlp() {
  Sequential model;
  model.add(layers::Dense({.units = 64, .activation = "relu", .input_shape = Shape{64}}));
  model.add(layers::Dense({.units = 10, .activation = "softmax"}));
  model.compile(SGD({.learning_rate = 0.01, .momentum = 0.9}), "sparse_categorical_crossentropy", {"accuracy"});
  return model;
}

ConfusionMatrix confusion(Model& model, const data::Dataset& test) {
  ConfusionMatrix m(10);
  m.update(true_classes(test.all_y(), model.predict(test)), predicted_classes(model.predict(test)));
  return m;
}

}  // namespace

int main(int argc, char** argv) try {
  std::string path = "data/digits/digits.csv.gz";
  int64_t rare = 3;
  int epochs = 10;
  bool check = false;
  for (int i = 1; i < argc; ++i) {
    if (!std::strcmp(argv[i], "--rare") && i + 1 < argc) rare = std::stoll(argv[++i]);
    else if (!std::strcmp(argv[i], "--epochs") && i + 1 < argc) epochs = std::stoi(argv[++i]);
    else if (!std::strcmp(argv[i], "--check")) check = true;
    else path = argv[i];
  }
  data::Dataset digits = data::load_digits(path).scaled(1.f / 16.f);
  auto [train_all, test] = digits.split(0.8, /*seed=*/1);

  // The imbalanced training set: every sample of the other digits, one in ten of the rare one.
  const Tensor x = train_all.all_x(), y = train_all.all_y();
  std::vector<int64_t> keep;
  int64_t seen_rare = 0;
  for (int64_t i = 0; i < train_all.size(); ++i)
    if (static_cast<int64_t>(y.data()[i]) != rare || seen_rare++ % 10 == 0) keep.push_back(i);
  Tensor xs = Tensor::empty({static_cast<int64_t>(keep.size()), 64}), ys = Tensor::empty({static_cast<int64_t>(keep.size())});
  std::map<int64_t, int64_t> count;
  for (size_t k = 0; k < keep.size(); ++k) {
    std::copy(x.data() + keep[k] * 64, x.data() + (keep[k] + 1) * 64, xs.data() + k * 64);
    ys.data()[k] = y.data()[keep[k]];
    ++count[static_cast<int64_t>(ys.data()[k])];
  }
  const data::Dataset train = data::Dataset::from_tensors(xs, ys);
  std::cout << "training on " << train.size() << " digits, " << count[rare] << " of them " << rare << "s (of "
            << seen_rare << "); testing on " << test.size() << "\n";

  std::map<int64_t, double> balanced;  // sklearn's / Keras' tutorials' "balanced" weights
  for (const auto& [c, n] : count) balanced[c] = static_cast<double>(train.size()) / (10.0 * static_cast<double>(n));

  manual_seed(1);
  Sequential plain = digits_mlp();
  plain.fit(train, {.epochs = epochs, .batch_size = 128, .seed = 1, .verbose = 0});
  manual_seed(1);
  Sequential weighted = digits_mlp();
  weighted.fit(train, {.epochs = epochs, .batch_size = 128, .seed = 1, .verbose = 0, .class_weight = balanced});

  const ConfusionMatrix a = confusion(plain, test), b = confusion(weighted, test);
  std::cout << "class weight of " << rare << ": " << balanced[rare] << " (others about "
            << balanced[(rare + 1) % 10] << ")\n"
            << "recall of " << rare << ": unweighted " << a.recall(rare) << ", class_weight " << b.recall(rare) << "\n"
            << "test accuracy: unweighted " << a.accuracy() << ", class_weight " << b.accuracy() << "\n\n"
            << "with class weights, per class:\n";
  b.print(std::cout);
  if (check && !(b.recall(rare) > a.recall(rare))) {
    std::cerr << "class_weights_digits: the recall of " << rare << " did not rise\n";
    return 1;
  }
} catch (const lamina::Error& e) {
  std::cerr << "class_weights_digits: " << e.what() << "\n";
  return 1;
}
