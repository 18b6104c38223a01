// The first course document's program, line for line with its Keras original:
//
//   digits = load_digits(); X = digits.data; y = digits.target
//   X = X / np.max(X)
//   model = Sequential(); model.add(Dense(64, input_dim=64, activation='relu'))
//   model.add(Dense(10, activation='softmax'))
//   optimizer = SGD(lr=0.01, momentum=0.9)
//   model.compile(loss='sparse_categorical_crossentropy', optimizer=optimizer, metrics=['accuracy'])
//   model.fit(X, y, epochs=10, batch_size=128)
//
// plus an 80/20 split with a fixed seed, so the accuracy is measured on digits it never saw.
// Run: build/examples/digits_mlp [path/to/digits.csv.gz]   (scripts/fetch-data.sh digits)
#include <iostream>

#include <lamina/lamina.hpp>

using namespace lamina;

int main(int argc, char** argv) try {
  manual_seed(1);
  data::Dataset digits = data::load_digits(argc > 1 ? argv[1] : "data/digits/digits.csv.gz");
  digits = digits.scaled(1.f / 16.f);  // X / np.max(X): the pixels of the 8x8 digits are 0..16
  auto [train, test] = digits.split(0.8, /*seed=*/1);

  Sequential model;
  model.add(layers::Dense({.units = 64, .activation = "relu", .input_shape = Shape{64}}));
  model.add(layers::Dense({.units = 10, .activation = "softmax"}));
  SGD optimizer({.learning_rate = 0.01f, .momentum = 0.9f});
  model.compile(optimizer, "sparse_categorical_crossentropy", {"accuracy"});
  model.summary();
  model.fit(train, {.epochs = 10, .batch_size = 128});

  const Logs result = model.evaluate(test);
  std::cout << "test accuracy: " << result.at("accuracy") << " on " << test.size() << " digits\n";
} catch (const lamina::Error& e) {
  std::cerr << "digits_mlp: " << e.what() << "\n";
  return 1;
}
