// A residual network on Fashion-MNIST, written with the Functional API (issue 13). Keras:
//
//   def block(x, filters, project=False):
//       shortcut = Conv2D(filters, 1)(x) if project else x
//       h = Activation('relu')(BatchNormalization()(Conv2D(filters, 3, padding='same', use_bias=False)(x)))
//       h = BatchNormalization()(Conv2D(filters, 3, padding='same', use_bias=False)(h))
//       return Activation('relu')(Add()([h, shortcut]))
//   inputs = Input((28, 28)); x = Reshape((28, 28, 1))(inputs)
//   x = Activation('relu')(BatchNormalization()(Conv2D(32, 3, padding='same', use_bias=False)(x)))
//   x = block(MaxPooling2D()(x), 32)                  # 14 x 14
//   x = block(MaxPooling2D()(x), 64, project=True)    # 7 x 7
//   x = Dropout(0.5)(Dense(128, activation='relu')(Flatten()(x)))
//   model = Model(inputs, Dense(10)(x))
//   model.compile(optimizer='adam', loss=SparseCategoricalCrossentropy(from_logits=True), metrics=['accuracy'])
//   model.fit(x_train, y_train, epochs=10, batch_size=128)
//
// The same model as a spec, for `lamina train`: examples/specs/resnet_fashion.json (its "model"
// is what `resnet_fashion --json` prints, Keras 3's Functional JSON).
//
// Run: build/examples/resnet_fashion [data/fashion-mnist] [epochs]   (scripts/fetch-data.sh fashion_mnist)
//      build/examples/resnet_fashion --json                          (the model's Keras JSON)
#include <cstdlib>
#include <cstring>
#include <iostream>

#include <lamina/lamina.hpp>

using namespace lamina;

namespace {

// Conv 3x3 'same' without bias, then BatchNormalization: the unit every block is made of.
KerasTensor conv_bn(const KerasTensor& x, int64_t filters) {
  KerasTensor h = layers::Conv2D({.filters = filters, .kernel_size = 3, .padding = Padding::same, .use_bias = false})(x);
  return layers::BatchNormalization()(h);
}

// Two conv-BN units and a shortcut (a 1x1 convolution when the width changes), added, then relu.
KerasTensor residual_block(const KerasTensor& x, int64_t filters, bool project) {
  KerasTensor shortcut = project ? layers::Conv2D({.filters = filters, .kernel_size = 1})(x) : x;
  KerasTensor h = layers::Activation(Activation::relu)(conv_bn(x, filters));
  h = conv_bn(h, filters);
  return layers::Activation(Activation::relu)(layers::Add()({h, shortcut}));
}

Model resnet() {
  KerasTensor inputs = Input({28, 28}, "image");
  KerasTensor x = layers::Reshape(Shape{28, 28, 1})(inputs);
  x = layers::Activation(Activation::relu)(conv_bn(x, 32));
  x = residual_block(layers::MaxPooling2D()(x), 32, /*project=*/false);
  x = residual_block(layers::MaxPooling2D()(x), 64, /*project=*/true);
  x = layers::Dropout(0.5f)(layers::Dense(128, "relu")(layers::Flatten()(x)));
  return Model(inputs, layers::Dense(10)(x), "resnet_fashion");
}

}  // namespace

int main(int argc, char** argv) try {
  manual_seed(13);
  if (argc > 1 && std::strcmp(argv[1], "--json") == 0) {
    std::cout << resnet().to_json().dump(1) << "\n";
    return 0;
  }
  auto [train, test] = data::load_fashion_mnist(argc > 1 ? argv[1] : "data/fashion-mnist");
  const int epochs = argc > 2 ? std::atoi(argv[2]) : 10;
  Model model = resnet();
  model.compile("adam", losses::SparseCategoricalCrossentropy({.from_logits = true}), {"accuracy"});
  model.summary();
  model.fit(train, {.epochs = epochs, .batch_size = 128});
  const Logs result = model.evaluate(test);
  std::cout << "test accuracy: " << result.at("accuracy") << "\n";
} catch (const lamina::Error& e) {
  std::cerr << "resnet_fashion: " << e.what() << "\n";
  return 1;
}
