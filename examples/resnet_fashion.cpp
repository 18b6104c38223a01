// A residual network on Fashion-MNIST, written with the Functional API (issue 13): the model is
// in resnet_fashion_model.hpp (with its Keras original); Adam, batch 64, 10 epochs:
//
//   model.compile(optimizer='adam', loss=SparseCategoricalCrossentropy(from_logits=True), metrics=['accuracy'])
//   model.fit(x_train, y_train, epochs=10, batch_size=64)
//
// The same model as a spec, for `lamina train`: examples/specs/resnet_fashion.json (its "model"
// is what `resnet_fashion --json` prints, Keras 3's Functional JSON).
//
// Run: build/examples/resnet_fashion [data/fashion-mnist] [epochs]   (scripts/fetch-data.sh fashion_mnist)
//      build/examples/resnet_fashion --json                          (the model's Keras JSON)
#include <cstdlib>
#include <cstring>
#include <iostream>

#include "resnet_fashion_model.hpp"

using namespace lamina;

int main(int argc, char** argv) try {
  manual_seed(13);
  if (argc > 1 && std::strcmp(argv[1], "--json") == 0) {
    std::cout << resnet_fashion::model().to_json().dump(1) << "\n";
    return 0;
  }
  auto [train, test] = data::load_fashion_mnist(argc > 1 ? argv[1] : "data/fashion-mnist");
  const int epochs = argc > 2 ? std::atoi(argv[2]) : 10;
  Model model = resnet_fashion::model();
  model.compile("adam", losses::SparseCategoricalCrossentropy({.from_logits = true}), {"accuracy"});
  model.summary();
  model.fit(train, {.epochs = epochs, .batch_size = 64});
  const Logs result = model.evaluate(test);
  std::cout << "test accuracy: " << result.at("accuracy") << "\n";
} catch (const lamina::Error& e) {
  std::cerr << "resnet_fashion: " << e.what() << "\n";
  return 1;
}
