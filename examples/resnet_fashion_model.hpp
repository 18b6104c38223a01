// The residual network of examples/resnet_fashion.cpp, written with the Functional API; the
// bench's resnet-fashion workload (bench/lamina_train.cpp) trains the same one. Keras:
//
//   def conv_bn(x, filters):
//       return BatchNormalization(momentum=0.9)(Conv2D(filters, 3, padding='same', use_bias=False)(x))
//   def block(x, filters):   # a 1x1 convolution on the shortcut when the width changes
//       shortcut = x if x.shape[-1] == filters else Conv2D(filters, 1)(x)
//       h = conv_bn(Activation('relu')(conv_bn(x, filters)), filters)
//       return Activation('relu')(Add()([h, shortcut]))
//   inputs = Input((28, 28)); x = Reshape((28, 28, 1))(inputs)
//   x = Activation('relu')(conv_bn(x, 32))
//   x = block(x, 32)                                  # 28 x 28
//   x = MaxPooling2D()(block(MaxPooling2D()(x), 64))  # 14 x 14, then 7 x 7
//   x = Dropout(0.5)(Dense(128, activation='relu')(Flatten()(x)))
//   model = Model(inputs, Dense(10)(x))
#pragma once

#include <lamina/lamina.hpp>

namespace resnet_fashion {

// Conv 3x3 'same' without bias, then BatchNormalization (momentum 0.9: the moving statistics
// follow the weights closely enough for a 10-epoch run).
inline lamina::KerasTensor conv_bn(const lamina::KerasTensor& x, int64_t filters) {
  using namespace lamina;
  KerasTensor h = layers::Conv2D({.filters = filters, .kernel_size = 3, .padding = Padding::same, .use_bias = false})(x);
  return layers::BatchNormalization({.momentum = 0.9f})(h);
}

// Two conv-BN units and a shortcut (a 1x1 convolution when the width changes), added, then relu.
inline lamina::KerasTensor block(const lamina::KerasTensor& x, int64_t filters) {
  using namespace lamina;
  const bool project = x.shape()[-1] != filters;
  KerasTensor shortcut = project ? layers::Conv2D({.filters = filters, .kernel_size = 1})(x) : x;
  KerasTensor h = conv_bn(layers::Activation(Activation::relu)(conv_bn(x, filters)), filters);
  return layers::Activation(Activation::relu)(layers::Add()({h, shortcut}));
}

inline lamina::Model model() {
  using namespace lamina;
  KerasTensor inputs = Input({28, 28}, "image");
  KerasTensor x = layers::Reshape(Shape{28, 28, 1})(inputs);
  x = layers::Activation(Activation::relu)(conv_bn(x, 32));
  x = block(x, 32);
  x = layers::MaxPooling2D()(block(layers::MaxPooling2D()(x), 64));
  x = layers::Dropout(0.5f)(layers::Dense(128, "relu")(layers::Flatten()(x)));
  return Model(inputs, layers::Dense(10)(x), "resnet_fashion");
}

}  // namespace resnet_fashion
