// Writes the ONNX export's test cases into a directory: for each small seeded model,
// NAME.onnx (save_onnx), NAME.input.npy and NAME.expected.npy (Lamina's predict on that input).
// check_onnx.py then has runtimes we did not write (onnx's checker, OpenCV's dnn) judge them.
// Usage: onnx_make_cases OUT_DIR
#include <cstdio>
#include <filesystem>
#include <iostream>
#include <string>
#include <vector>

#include "lamina/io.hpp"
#include "lamina/model.hpp"
#include "lamina/layers/layer_normalization.hpp"
#include "lamina/onnx.hpp"

namespace lamina {
namespace {

namespace fs = std::filesystem;

// A float32 array in NumPy's .npy format (version 1.0): magic, header length, a Python dict
// literal padded to a multiple of 64 bytes, then the little-endian data.
void write_npy(const fs::path& path, const Tensor& t) {
  std::string shape = "(";
  for (int64_t d : t.shape()) shape += std::to_string(d) + ", ";
  shape += ")";
  std::string header = "{'descr': '<f4', 'fortran_order': False, 'shape': " + shape + ", }";
  const size_t unpadded = 10 + header.size() + 1;
  header += std::string((64 - unpadded % 64) % 64, ' ') + "\n";
  std::string bytes = "\x93NUMPY";
  bytes += '\x01';
  bytes += '\x00';
  bytes += static_cast<char>(header.size() & 0xff);
  bytes += static_cast<char>(header.size() >> 8);
  bytes += header;
  bytes.append(reinterpret_cast<const char*>(t.data()), static_cast<size_t>(t.numel()) * sizeof(float));
  io::write_file_atomic(path.string(), bytes);
}

// Non-zero biases, so a bias dropped or misplaced in the export shows.
Initializer bias_init() { return Initializer::random_uniform(-0.5f, 0.5f); }

struct Case {
  std::string name;
  Sequential model;
  Shape input;  // per sample
};

void write_case(const fs::path& dir, Case& c, uint64_t seed) {
  Generator gen(seed);
  std::vector<int64_t> dims{4};  // a batch of 4; the check also runs the first sample alone
  for (int64_t d : c.input) dims.push_back(d);
  const Tensor x = Tensor::randn(Shape(dims), gen);
  if (!c.model.built()) c.model.build(c.input);
  const Tensor y = c.model.predict(x);
  save_onnx(c.model, (dir / (c.name + ".onnx")).string(), {{"lamina_case", c.name}});
  write_npy(dir / (c.name + ".input.npy"), x);
  write_npy(dir / (c.name + ".expected.npy"), y);
  std::cout << c.name << ": input " << x.shape().str() << " -> output " << y.shape().str() << "\n";
}

Sequential mlp() {
  return Sequential({layers::Flatten({.input_shape = Shape{4, 5}}),
                     layers::Dense({.units = 16, .activation = "relu", .bias_initializer = bias_init()}),
                     layers::Dense({.units = 8, .activation = "relu", .bias_initializer = bias_init()}),
                     layers::Dense({.units = 3, .activation = "softmax", .bias_initializer = bias_init()})});
}

// An activation three ways: fused into Dense (Gemm), as an Activation layer on (N, K), and
// fused into a Conv2D, where softmax runs over the channels of an NCHW tensor (axis 1).
// Small weights keep three exponentials in a row finite.
Sequential activations(const std::string& act) {
  const Initializer w = Initializer::random_normal(0.f, 0.15f);
  return Sequential({layers::InputLayer(Shape{5, 5, 2}),
                     layers::Conv2D({.filters = 3, .kernel_size = 2, .activation = act, .kernel_initializer = w,
                                     .bias_initializer = bias_init()}),
                     layers::Flatten(),
                     layers::Dense({.units = 7, .activation = act, .kernel_initializer = w, .bias_initializer = bias_init()}),
                     layers::Dense({.units = 4, .kernel_initializer = w, .bias_initializer = bias_init()}),
                     layers::Activation(act)});
}

// LeNet-like: 'same' and 'valid' convolutions, a non-square kernel and strides, max and
// average pooling ('same' average pooling over an odd size: windows at the border average
// fewer cells), Flatten after channels-first tensors, Dense.
Sequential lenet() {
  return Sequential(
      {layers::Conv2D({.filters = 4, .kernel_size = 3, .padding = Padding::same, .activation = "relu",
                       .bias_initializer = bias_init(), .input_shape = Shape{13, 12, 1}}),
       layers::MaxPooling2D(),
       layers::Conv2D({.filters = 6, .kernel_size = Size2(3, 2), .strides = Size2(1, 2), .activation = "tanh",
                       .bias_initializer = bias_init()}),
       layers::AveragePooling2D({.pool_size = 2, .padding = Padding::same}),
       layers::MaxPooling2D({.pool_size = 2, .strides = 1, .padding = Padding::same}),
       layers::Flatten(), layers::Dense({.units = 10, .activation = "relu", .bias_initializer = bias_init()}),
       layers::Dense({.units = 5, .activation = "softmax", .bias_initializer = bias_init()})});
}

// BatchNormalization on images, on (N, K) and without gamma / beta; a Conv2D without bias;
// Dropout; global average pooling. Trained a few steps first so the moving statistics are far from 0 and 1.
Sequential bn_cnn() {
  Sequential model({layers::Conv2D({.filters = 6, .kernel_size = 3, .padding = Padding::same,
                                    .bias_initializer = bias_init(), .input_shape = Shape{10, 10, 3}}),
                    layers::BatchNormalization({.momentum = 0.5f}), layers::Activation("relu"), layers::Dropout(0.3f),
                    layers::Conv2D({.filters = 8, .kernel_size = 3, .strides = 2, .activation = "relu", .use_bias = false}),
                    layers::BatchNormalization({.momentum = 0.5f, .epsilon = 0.01f, .center = false, .scale = false}),
                    layers::GlobalAveragePooling2D(), layers::Dropout(0.5f),
                    layers::Dense({.units = 6, .bias_initializer = bias_init()}),
                    layers::BatchNormalization({.momentum = 0.5f}), layers::Dense(3, "softmax")});
  model.compile("adam", Loss("sparse_categorical_crossentropy"));
  Generator gen(7);
  const Tensor x = Tensor::randn({64, 10, 10, 3}, gen, 0.5f, 2.f);  // mean and spread to learn
  Tensor y = Tensor::empty({64});
  for (int64_t i = 0; i < 64; ++i) y.data()[i] = static_cast<float>(i % 3);
  model.fit(x, y, {.epochs = 3, .batch_size = 16, .seed = 1, .verbose = 0});
  return model;
}

// Reshape between shapes: a vector to a matrix (Dense over its last axis: MatMul + Add;
// BatchNormalization over a rank-3 tensor), to an image (convolution), and a convolution's
// output reshaped back; GlobalAveragePooling2D with keepdims.
Sequential reshape() {
  return Sequential(
      {layers::Reshape({.target_shape = Shape{3, 12}, .input_shape = Shape{36}}),
       layers::Dense({.units = 5, .activation = "elu", .bias_initializer = bias_init()}),
       layers::BatchNormalization({.beta_initializer = bias_init(), .moving_mean_initializer = bias_init()}),
       layers::Reshape(Shape{-1}), layers::Dense({.units = 36, .bias_initializer = bias_init()}),
       layers::Reshape(Shape{6, 6, 1}),
       layers::Conv2D({.filters = 2, .kernel_size = 3, .activation = "sigmoid", .bias_initializer = bias_init()}),
       layers::Reshape(Shape{8, 4}), layers::Flatten(), layers::Reshape(Shape{2, 4, 4}),
       layers::GlobalAveragePooling2D({.keepdims = true}), layers::Flatten(), layers::Dense(2)});
}

// Dense on a rank-3 input first (MatMul + Add over the last axis), then on (N, K) (Gemm),
// without a bias.
Sequential dense_rank3() {
  return Sequential({layers::Dense({.units = 5, .activation = "tanh", .bias_initializer = bias_init(),
                                    .input_shape = Shape{3, 4}}),
                     layers::Dense({.units = 2, .use_bias = false}), layers::Flatten(),
                     layers::Dense({.units = 3, .use_bias = false})});
}

// The LeakyReLU layer, with PyTorch's default slope rather than the activation's fixed 0.2.
// LayerNormalization written out in opset-13 nodes, on (N, T, C) after a Dense (with gamma and
// beta) and on (N, K) without beta; non-trivial gamma and beta so that a dropped scale or shift
// shows. OpenCV 4.6 runs neither (check_onnx.py says why); ONNX Runtime runs both (check_ort.js).
Sequential layer_norm() {
  const Initializer around_one = Initializer::random_uniform(0.5f, 1.5f);
  return Sequential({layers::Dense({.units = 5, .bias_initializer = bias_init(), .input_shape = Shape{3, 6}}),
                     layers::LayerNormalization({.beta_initializer = bias_init(), .gamma_initializer = around_one}),
                     layers::Flatten(),
                     layers::Dense({.units = 2, .bias_initializer = bias_init()})});
}

Sequential layer_norm_flat() {
  const Initializer around_one = Initializer::random_uniform(0.5f, 1.5f);
  return Sequential({layers::Dense({.units = 5, .bias_initializer = bias_init(), .input_shape = Shape{6}}),
                     layers::LayerNormalization({.epsilon = 1e-5f, .center = false, .gamma_initializer = around_one}),
                     layers::Dense({.units = 2, .bias_initializer = bias_init()})});
}

Sequential leaky_relu_layer() {
  return Sequential({layers::Dense({.units = 6, .bias_initializer = bias_init(), .input_shape = Shape{5}}),
                     layers::LeakyReLU({.negative_slope = 0.01f}), layers::Dense(2)});
}

int run(const fs::path& dir) {
  fs::create_directories(dir);
  manual_seed(2024);
  std::vector<Case> cases;
  cases.push_back({"mlp", mlp(), Shape{4, 5}});
  for (const char* act : {"linear", "relu", "sigmoid", "tanh", "softmax", "log_softmax", "leaky_relu", "elu",
                          "exponential"})
    cases.push_back({std::string("act_") + act, activations(act), Shape{5, 5, 2}});
  cases.push_back({"lenet", lenet(), Shape{13, 12, 1}});
  cases.push_back({"bn_cnn", bn_cnn(), Shape{10, 10, 3}});
  cases.push_back({"reshape", reshape(), Shape{36}});
  cases.push_back({"dense_rank3", dense_rank3(), Shape{3, 4}});
  cases.push_back({"leaky_relu_layer", leaky_relu_layer(), Shape{5}});
  cases.push_back({"layer_norm", layer_norm(), Shape{3, 6}});
  cases.push_back({"layer_norm_flat", layer_norm_flat(), Shape{6}});
  uint64_t seed = 100;
  for (Case& c : cases) write_case(dir, c, seed++);
  return 0;
}

}  // namespace
}  // namespace lamina

int main(int argc, char** argv) {
  if (argc != 2) {
    std::cerr << "usage: onnx_make_cases OUT_DIR\n";
    return 2;
  }
  try {
    return lamina::run(argv[1]);
  } catch (const std::exception& e) {
    std::cerr << "onnx_make_cases: " << e.what() << "\n";
    return 1;
  }
}
