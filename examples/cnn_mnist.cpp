// LeNet-5 on MNIST, the course's image-recognition example with convolutions (issue 6):
//
//   model = Sequential([Input((28, 28)), Reshape((28, 28, 1)),
//                       Conv2D(6, 5, padding='same', activation='relu'), MaxPooling2D(2),
//                       Conv2D(16, 5, activation='relu'), MaxPooling2D(2), Flatten(),
//                       Dense(120, activation='relu'), Dense(84, activation='relu'), Dense(10)])
//   model.compile(optimizer='adam', loss=SparseCategoricalCrossentropy(from_logits=True),
//                 metrics=['accuracy'])
//   model.fit(x_train, y_train, epochs=5, batch_size=64); model.evaluate(x_test, y_test)
//
// Run: build/examples/cnn_mnist [data/mnist] [epochs]   (scripts/fetch-data.sh mnist)
#include <cstdlib>
#include <iostream>

#include <lamina/lamina.hpp>

using namespace lamina;

int main(int argc, char** argv) try {
  manual_seed(3);
  auto [train, test] = data::load_mnist(argc > 1 ? argv[1] : "data/mnist");  // pixels / 255, per batch
  const int epochs = argc > 2 ? std::atoi(argv[2]) : 5;

  Sequential model({layers::Input({28, 28}),
                    layers::Reshape(Shape{28, 28, 1}),  // a channel axis: (28, 28) -> (28, 28, 1)
                    layers::Conv2D({.filters = 6, .kernel_size = 5, .padding = Padding::same, .activation = "relu"}),
                    layers::MaxPooling2D({.pool_size = 2}),
                    layers::Conv2D({.filters = 16, .kernel_size = 5, .activation = "relu"}),
                    layers::MaxPooling2D({.pool_size = 2}),
                    layers::Flatten(),
                    layers::Dense(120, "relu"),
                    layers::Dense(84, "relu"),
                    layers::Dense(10)});
  model.compile("adam", losses::SparseCategoricalCrossentropy({.from_logits = true}), {"accuracy"});
  model.summary();
  model.fit(train, {.epochs = epochs, .batch_size = 64});
  const Logs result = model.evaluate(test);
  std::cout << "test accuracy: " << result.at("accuracy") << "\n";
} catch (const lamina::Error& e) {
  std::cerr << "cnn_mnist: " << e.what() << "\n";
  return 1;
}
