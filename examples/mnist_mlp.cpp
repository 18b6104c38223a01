// The second course document's program, line for line with its TensorFlow original:
//
//   (x_train, y_train), (x_test, y_test) = mnist.load_data()
//   x_train, x_test = x_train / 255.0, x_test / 255.0
//   model = tf.keras.Sequential([layers.Flatten(input_shape=(28, 28)),
//                                layers.Dense(128, activation='relu'), layers.Dense(10)])
//   model.compile(optimizer='adam',
//                 loss=tf.keras.losses.SparseCategoricalCrossentropy(from_logits=True),
//                 metrics=['accuracy'])
//   model.fit(x_train, y_train, epochs=5)
//   model.evaluate(x_test, y_test, verbose=2)
//
// Run: build/examples/mnist_mlp [data/mnist]   (scripts/fetch-data.sh mnist; `make run` does both)
#include <iostream>

#include <lamina/lamina.hpp>

using namespace lamina;

int main(int argc, char** argv) try {
  manual_seed(2);
  auto [train, test] = data::load_mnist(argc > 1 ? argv[1] : "data/mnist");  // pixels / 255, per batch

  Sequential model({layers::Flatten({.input_shape = Shape{28, 28}}),
                    layers::Dense(128, "relu"),
                    layers::Dense(10)});
  model.compile("adam", losses::SparseCategoricalCrossentropy({.from_logits = true}), {"accuracy"});
  model.summary();
  model.fit(train, {.epochs = 5});
  const Logs result = model.evaluate(test);
  std::cout << "test accuracy: " << result.at("accuracy") << "\n";
} catch (const lamina::Error& e) {
  std::cerr << "mnist_mlp: " << e.what() << "\n";
  return 1;
}
