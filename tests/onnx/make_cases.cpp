// Writes the ONNX export's test cases into a directory: for each small seeded model,
// NAME.onnx (save_onnx), NAME.input.npy and NAME.expected.npy (Lamina's predict on that input).
// check_onnx.py then has runtimes we did not write (onnx's checker, OpenCV's dnn) judge them.
// Usage: onnx_make_cases OUT_DIR
#include <cstdio>
#include <map>
#include <memory>
#include <filesystem>
#include <iostream>
#include <string>
#include <vector>

#include "lamina/io.hpp"
#include "lamina/model.hpp"
#include "lamina/layers/bidirectional.hpp"
#include "lamina/layers/conv1d.hpp"
#include "lamina/layers/conv_transpose.hpp"
#include "lamina/layers/embedding.hpp"
#include "lamina/layers/layer_normalization.hpp"
#include "lamina/layers/merge.hpp"
#include "lamina/layers/recurrent.hpp"
#include "lamina/layers/sampling.hpp"
#include "lamina/layers/resize.hpp"
#include "lamina/layers/sequence.hpp"
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
  Model model;
  std::vector<Shape> inputs;  // per sample, one per model input
  int64_t token_ids = 0;      // > 0: the inputs are token ids in [0, token_ids) (an Embedding's), not normals
};

// One input and one output: NAME.input.npy and NAME.expected.npy. Several: NAME.input0.npy,
// NAME.input1.npy, ... in the order of the graph's inputs, and NAME.expected0.npy, ... in the
// order of its outputs; the metadata entries lamina_inputs / lamina_outputs list the graph's
// names for them (comma-separated), which check_onnx.py holds the file to.
std::string npy_name(const std::string& name, const char* what, size_t i, size_t count) {
  return name + "." + what + (count == 1 ? "" : std::to_string(i)) + ".npy";
}

std::string joined(const std::vector<std::string>& names) {
  std::string out;
  for (const std::string& n : names) out += (out.empty() ? "" : ",") + n;
  return out;
}

void write_case(const fs::path& dir, Case& c, uint64_t seed) {
  Generator gen(seed);
  std::vector<Tensor> xs;
  for (const Shape& s : c.inputs) {
    std::vector<int64_t> dims{4};  // a batch of 4; the check also runs the first sample alone
    for (int64_t d : s) dims.push_back(d);
    Tensor x = Tensor::randn(Shape(dims), gen);
    for (int64_t i = 0; c.token_ids > 0 && i < x.numel(); ++i)
      x.data()[i] = static_cast<float>(gen.below(static_cast<uint64_t>(c.token_ids)));
    xs.push_back(x);
  }
  if (!c.model.built()) c.model.build(c.inputs.at(0));
  const std::vector<Tensor> ys = c.model.predict_all(xs);
  std::map<std::string, std::string> metadata{{"lamina_case", c.name}};
  if (xs.size() > 1) metadata["lamina_inputs"] = joined(c.model.input_names());
  if (ys.size() > 1) metadata["lamina_outputs"] = joined(c.model.output_names());
  save_onnx(c.model, (dir / (c.name + ".onnx")).string(), metadata);
  std::cout << c.name << ":";
  for (size_t i = 0; i < xs.size(); ++i) {
    write_npy(dir / npy_name(c.name, "input", i, xs.size()), xs[i]);
    std::cout << (i ? ", " : " input ") << xs[i].shape().str();
  }
  for (size_t o = 0; o < ys.size(); ++o) {
    write_npy(dir / npy_name(c.name, "expected", o, ys.size()), ys[o]);
    std::cout << (o ? ", " : " -> output ") << ys[o].shape().str();
  }
  std::cout << "\n";
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

// --- graphs (Functional models): branches, merges, several inputs and outputs, nesting ---

// BatchNormalization with statistics away from 0 and 1, so a dropped or misplaced one shows.
layers::BatchNormalization bn() {
  return layers::BatchNormalization({.beta_initializer = bias_init(),
                                     .gamma_initializer = Initializer::random_uniform(0.5f, 1.5f),
                                     .moving_mean_initializer = bias_init(),
                                     .moving_variance_initializer = Initializer::random_uniform(0.5f, 1.5f)});
}

layers::Conv2D conv(int64_t filters, int64_t kernel, int64_t strides = 1) {
  return layers::Conv2D({.filters = filters, .kernel_size = kernel, .strides = strides, .padding = Padding::same,
                         .bias_initializer = bias_init()});
}

// A small ResNet: a Conv2D 'same' + BN + relu stem, a residual block with an identity shortcut,
// one with a strided 1x1 Conv2D projection shortcut, global average pooling, Dense. The Adds
// meet channels-first tensors: the graph transposes once, at the input (GlobalAveragePool's
// (N, C) output needs none).
Model graph_resnet() {
  KerasTensor x = Input({12, 12, 3}, "image");
  KerasTensor h = layers::Activation("relu")(bn()(conv(8, 3)(x)));
  KerasTensor r = layers::Activation("relu")(bn()(conv(8, 3)(h)));
  r = bn()(conv(8, 3)(r));
  h = layers::Activation("relu")(layers::Add()({h, r}));
  KerasTensor p = layers::Activation("relu")(bn()(conv(16, 3, 2)(h)));
  p = bn()(conv(16, 3)(p));
  KerasTensor shortcut = conv(16, 1, 2)(h);
  h = layers::Activation("relu")(layers::Add()({shortcut, p}));
  KerasTensor y = layers::Dense({.units = 5, .activation = "softmax", .bias_initializer = bias_init()})(
      layers::GlobalAveragePooling2D()(h));
  return Model(x, y, "resnet");
}

// Two convolution branches on the input concatenated over the channels, a third one merged with
// them by Maximum, then max and average pooling concatenated along the width (ONNX axis 3 of the
// channels-first tensor), Flatten, Dense. Transposes: the input once (three convolutions read
// it), the image once before Flatten.
Model graph_concat_max() {
  KerasTensor x = Input({10, 10, 2}, "image");
  KerasTensor a = layers::Conv2D({.filters = 4, .kernel_size = 3, .padding = Padding::same, .activation = "relu",
                                  .bias_initializer = bias_init()})(x);
  KerasTensor b = layers::Conv2D({.filters = 2, .kernel_size = 1, .activation = "tanh", .bias_initializer = bias_init()})(x);
  KerasTensor cat = layers::Concatenate()({a, b});
  KerasTensor c = conv(6, 3)(x);
  KerasTensor m = layers::Maximum()({cat, c});
  KerasTensor w = layers::Concatenate({.axis = 2})(
      {layers::MaxPooling2D()(m), layers::AveragePooling2D({.pool_size = 2})(m)});
  KerasTensor y = layers::Dense({.units = 4, .bias_initializer = bias_init()})(layers::Flatten()(w));
  return Model(x, y, "concat_max");
}

// Two inputs of different sizes, a Dense on each, Concatenate, then Average and Multiply of three
// (ONNX's Mul takes two) and Subtract, and a softmax Dense.
Model graph_two_inputs() {
  KerasTensor a = Input({6}, "numbers"), b = Input({3}, "flags");
  KerasTensor ha = layers::Dense({.units = 8, .activation = "relu", .bias_initializer = bias_init()})(a);
  KerasTensor hb = layers::Dense({.units = 8, .activation = "tanh", .bias_initializer = bias_init()})(b);
  KerasTensor d = layers::Dense({.units = 8, .bias_initializer = bias_init()})(layers::Concatenate()({ha, hb}));
  KerasTensor avg = layers::Average()({ha, d, hb});
  KerasTensor mul = layers::Multiply()({avg, hb, d});
  KerasTensor sub = layers::Subtract()({mul, ha});
  KerasTensor y = layers::Dense({.units = 4, .activation = "softmax", .bias_initializer = bias_init()})(sub);
  return Model({a, b}, {y}, "two_inputs");
}

// Two outputs: class probabilities after global pooling, and a per-pixel map (a convolution's
// output, so the graph transposes it back to channels-last), named after their layers.
Model graph_two_outputs() {
  KerasTensor x = Input({8, 8, 1}, "image");
  KerasTensor h = layers::Conv2D({.filters = 4, .kernel_size = 3, .padding = Padding::same, .activation = "relu",
                                  .bias_initializer = bias_init()})(x);
  KerasTensor cls = layers::Dense({.units = 3, .activation = "softmax", .bias_initializer = bias_init(), .name = "cls"})(
      layers::GlobalAveragePooling2D()(h));
  KerasTensor mask = layers::Conv2D({.filters = 2, .kernel_size = 1, .activation = "sigmoid",
                                     .bias_initializer = bias_init(), .name = "mask"})(h);
  return Model({x}, {cls, mask}, "two_outputs");
}

// Sequentials nested in a Model: a convolutional feature extractor whose output also feeds a
// residual Add, and a head that starts with Flatten on the channels-first image.
Model graph_nested() {
  auto features = std::make_shared<Sequential>(
      std::initializer_list<AnyLayer>{layers::Conv2D({.filters = 4, .kernel_size = 3, .padding = Padding::same,
                                                      .activation = "relu", .bias_initializer = bias_init()}),
                                      bn(), layers::MaxPooling2D()},
      "features");
  auto head = std::make_shared<Sequential>(
      std::initializer_list<AnyLayer>{layers::Flatten(),
                                      layers::Dense({.units = 6, .activation = "relu", .bias_initializer = bias_init()}),
                                      layers::Dense({.units = 3, .bias_initializer = bias_init()})},
      "head");
  KerasTensor x = Input({8, 8, 2}, "image");
  KerasTensor f = (*features)(x);
  KerasTensor s = layers::Add()({f, conv(4, 1)(f)});
  return Model(x, (*head)(s), "nested");
}

// One Conv2D called twice (on the input and on its own relu'd output) and one Dense called twice
// in a row: each layer's weights are one set of initializers that both calls read.
Model graph_shared() {
  auto c = std::make_shared<layers::Conv2D>(layers::Conv2D::Options{
      .filters = 3, .kernel_size = 3, .padding = Padding::same, .bias_initializer = bias_init(), .name = "shared_conv"});
  auto d = std::make_shared<layers::Dense>(
      layers::Dense::Options{.units = 3, .activation = "tanh", .bias_initializer = bias_init(), .name = "shared_dense"});
  KerasTensor x = Input({6, 6, 3}, "image");
  KerasTensor a = (*c)(x);
  KerasTensor b = (*c)(layers::Activation("relu")(a));
  KerasTensor g = layers::GlobalAveragePooling2D()(layers::Add()({a, b}));
  return Model(x, (*d)((*d)(g)), "shared");
}

// Embedding (Cast + Gather) and GlobalAveragePooling1D (ReduceMean over the steps).
Sequential seq_embedding() {
  return Sequential({layers::Embedding({.input_dim = 50, .output_dim = 8, .input_shape = Shape{10}}),
                     layers::GlobalAveragePooling1D()});
}

// Conv1D 'same' and causal-dilated (Conv on (N, C, T) between Transposes), both 1-D poolings
// ('same' average leaving the padding out) and GlobalMaxPooling1D (ReduceMax over the steps).
Sequential seq_conv() {
  return Sequential({layers::Conv1D({.filters = 6, .kernel_size = 3, .padding = Padding1D::same, .activation = "relu",
                                     .bias_initializer = bias_init(), .input_shape = Shape{10, 3}}),
                     layers::MaxPooling1D(),
                     layers::Conv1D({.filters = 4, .kernel_size = 2, .padding = Padding1D::causal, .dilation_rate = 2,
                                     .bias_initializer = bias_init()}),
                     layers::AveragePooling1D({.pool_size = 3, .strides = 2, .padding = Padding::same}),
                     layers::GlobalMaxPooling1D()});
}

// A strided Conv1D with a fused tanh, GlobalAveragePooling1D with keepdims, RepeatVector
// (Unsqueeze + Expand), a Dense on every step, then TimeDistributed: a Conv2D on each of 3
// images (Reshape to (N T, H, W, C), the Conv2D's own export, Reshape back).
Sequential seq_repeat() {
  return Sequential({layers::Conv1D({.filters = 4, .kernel_size = 3, .strides = 2, .activation = "tanh",
                                     .bias_initializer = bias_init(), .input_shape = Shape{9, 3}}),
                     layers::GlobalAveragePooling1D({.keepdims = true}), layers::Flatten(), layers::RepeatVector(3),
                     layers::Dense({.units = 8, .bias_initializer = bias_init()}), layers::Reshape(Shape{3, 2, 4, 1}),
                     layers::TimeDistributed(std::make_shared<layers::Conv2D>(layers::Conv2D::Options{
                         .filters = 2, .kernel_size = 2, .activation = "relu", .bias_initializer = bias_init()}))});
}

// Masking (Equal, Not, Cast, ReduceMax, Mul) on steps that are exactly the mask value: a relu
// Dense with a negative bias zeroes some steps, the next Dense maps those to its bias (1.5, 1.5),
// which Masking(1.5) zeroes.
Sequential seq_masking() {
  return Sequential({layers::Dense({.units = 2, .activation = "relu", .bias_initializer = Initializer::constant(-0.6f),
                                    .input_shape = Shape{6, 3}}),
                     layers::Dense({.units = 2, .bias_initializer = Initializer::constant(1.5f)}),
                     layers::Masking({.mask_value = 1.5f}), layers::Dense(2)});
}

// The recurrent layers as ONNX LSTM / GRU / RNN nodes, time-major between Transposes (and
// Squeezes). Random biases, so a bias in the wrong gate or row shows.
using Rnn = layers::Recurrent::Options;

// LSTM's last output (Y_h), then its whole sequence (Y) into a second LSTM.
Sequential rnn_lstm() {
  return Sequential({layers::LSTM(Rnn{.units = 5, .bias_initializer = bias_init(), .return_sequences = true,
                                      .input_shape = Shape{6, 3}}),
                     layers::LSTM(Rnn{.units = 4, .bias_initializer = bias_init()})});
}

// GRU with reset_after (Keras 3: linear_before_reset = 1, two bias rows) and without (= 0).
Sequential rnn_gru(bool reset_after) {
  return Sequential({layers::GRU(Rnn{.units = 5, .bias_initializer = bias_init(), .return_sequences = true,
                                     .reset_after = reset_after, .input_shape = Shape{6, 3}}),
                     layers::GRU(Rnn{.units = 3, .bias_initializer = bias_init(), .reset_after = reset_after})});
}

// SimpleRNN with tanh (its sequence) and relu (its last output).
Sequential rnn_simple() {
  return Sequential({layers::SimpleRNN(Rnn{.units = 5, .bias_initializer = bias_init(), .return_sequences = true,
                                           .input_shape = Shape{6, 3}}),
                     layers::SimpleRNN(Rnn{.units = 4, .activation = "relu", .bias_initializer = bias_init()})});
}

// go_backwards: direction "reverse", the sequence reversed back into Keras' order (last step
// first), and the last output; an LSTM, a GRU and a SimpleRNN.
Sequential rnn_backwards() {
  return Sequential({layers::LSTM(Rnn{.units = 4, .bias_initializer = bias_init(), .return_sequences = true,
                                      .go_backwards = true, .input_shape = Shape{5, 3}}),
                     layers::GRU(Rnn{.units = 4, .bias_initializer = bias_init(), .return_sequences = true,
                                     .go_backwards = true}),
                     layers::SimpleRNN(Rnn{.units = 3, .bias_initializer = bias_init(), .go_backwards = true})});
}

// Token ids -> Embedding -> LSTM -> Dense: a text classifier.
Sequential rnn_embedding() {
  return Sequential({layers::Embedding({.input_dim = 30, .output_dim = 6, .input_shape = Shape{7}}),
                     layers::LSTM(Rnn{.units = 5, .bias_initializer = bias_init()}),
                     layers::Dense({.units = 3, .activation = "softmax", .bias_initializer = bias_init()})});
}

// Bidirectional: one bidirectional node each. imdb-lstm's two LSTMs: a sequence, then the last
// outputs, both concatenated (Transpose + Reshape, as PyTorch writes it).
Sequential rnn_bidirectional() {
  return Sequential(
      {layers::Bidirectional(layers::LSTM(Rnn{.units = 4, .bias_initializer = bias_init(), .return_sequences = true}),
                             {.input_shape = Shape{5, 3}}),
       layers::Bidirectional(layers::LSTM(Rnn{.units = 3, .bias_initializer = bias_init()}))});
}

// The other merges (ReduceMean, ReduceProd, ReduceSum over the directions): a SimpleRNN's
// sequences averaged, an LSTM's multiplied, a GRU's last outputs summed.
Sequential rnn_bidirectional_merges() {
  return Sequential(
      {layers::Bidirectional(layers::SimpleRNN(Rnn{.units = 4, .bias_initializer = bias_init(), .return_sequences = true}),
                             {.merge_mode = "ave", .input_shape = Shape{5, 3}}),
       layers::Bidirectional(layers::LSTM(Rnn{.units = 3, .bias_initializer = bias_init(), .return_sequences = true}),
                             {.merge_mode = "mul"}),
       layers::Bidirectional(layers::GRU(Rnn{.units = 3, .bias_initializer = bias_init(), .reset_after = false}),
                             {.merge_mode = "sum"})});
}

// Keras' initial_state as graph inputs: an LSTM on [x, h0, c0] (ONNX initial_h / initial_c),
// a GRU without biases on [x, h0].
Model rnn_initial_state() {
  KerasTensor x = Input({5, 3}, "x"), h0 = Input({4}, "h0"), c0 = Input({4}, "c0");
  KerasTensor s = layers::LSTM(Rnn{.units = 4, .bias_initializer = bias_init(), .return_sequences = true})({x, h0, c0});
  KerasTensor y = layers::GRU(Rnn{.units = 4, .use_bias = false})({s, h0});
  return Model({x, h0, c0}, {y}, "initial_state");
}

// return_state: an LSTM's [sequence, h, c] and a GRU's [last output, h] (the same tensor twice)
// as graph outputs: the node's Y, Y_h and Y_c.
Model rnn_return_state() {
  KerasTensor x = Input({5, 3}, "x");
  KerasTensor s = layers::LSTM(Rnn{.units = 4, .bias_initializer = bias_init(), .return_sequences = true,
                                   .return_state = true, .name = "encoder"})(x);
  KerasTensor g = layers::GRU(Rnn{.units = 3, .bias_initializer = bias_init(), .return_state = true,
                                  .go_backwards = true, .name = "decoder"})(s);
  return Model({x}, {s, s.output(1), s.output(2), g, g.output(1)}, "return_state");
}

// A VAE's Sampling layer (RandomNormalLike in ONNX): with a log-variance of -60 the noise is
// scaled by e^-30, so every runtime must give z = z_mean exactly and the outputs are comparable.
Model graph_sampling() {
  KerasTensor x = Input({5}, "x");
  KerasTensor mean = layers::Dense({.units = 3, .bias_initializer = bias_init()})(x);
  KerasTensor log_var = layers::Dense({.units = 3, .kernel_initializer = Initializer::zeros(),
                                       .bias_initializer = Initializer::constant(-60.f)})(x);
  KerasTensor z = layers::Sampling({.kl_weight = 1.f, .name = "z"})({mean, log_var});
  return Model({x}, {layers::Dense({.units = 4, .activation = "sigmoid"})(z)}, "sampling");
}

// --- resizing images (UpSampling2D, ZeroPadding2D, Cropping2D) ---

// A GAN-style generator: Dense, Reshape to an image, UpSampling2D (nearest: Resize after the
// Transpose to channels-first), a Conv2D, bilinear UpSampling2D with unequal factors, then
// ZeroPadding2D and Cropping2D on the channels-first image (Pad, Slice over axes 2 and 3).
Sequential resize_generator() {
  return Sequential(
      {layers::Dense({.units = 3 * 4 * 2, .activation = "relu", .bias_initializer = bias_init(), .input_shape = Shape{6}}),
       layers::Reshape(Shape{3, 4, 2}), layers::UpSampling2D(),
       layers::Conv2D({.filters = 3, .kernel_size = 3, .padding = Padding::same, .activation = "tanh",
                       .bias_initializer = bias_init()}),
       layers::UpSampling2D({.size = Size2(2, 3), .interpolation = Interpolation::bilinear}),
       layers::ZeroPadding2D({.padding = {.top = 1, .bottom = 2, .left = 0, .right = 3}}),
       layers::Cropping2D({.cropping = {.top = 2, .bottom = 1, .left = 3, .right = 2}}),
       layers::Conv2D({.filters = 2, .kernel_size = 3, .bias_initializer = bias_init()})});
}

// The same layers on the channels-last input, before any Conv: Pad and Slice over axes 1 and 2
// of the NHWC tensor, then a nearest Resize with unequal factors and a bilinear one.
Sequential resize_input() {
  return Sequential({layers::ZeroPadding2D({.padding = {.top = 2, .bottom = 0, .left = 1, .right = 1},
                                            .input_shape = Shape{5, 4, 3}}),
                     layers::Cropping2D({.cropping = {.top = 0, .bottom = 1, .left = 2, .right = 0}}),
                     layers::UpSampling2D({.size = Size2(3, 2)}),
                     layers::UpSampling2D({.size = Size2(1, 2), .interpolation = Interpolation::bilinear})});
}

// Conv2DTranspose. convt_dcgan: DCGAN's generator, Dense -> Reshape -> 'same' stride-2
// transposed convolutions 7 -> 14 -> 28 with kernels 5 (Keras crops 1 before and 2 after: ONNX
// pads (1, 1, 2, 2)) and 4 (kernel_5 = false: 4 and 4, crops 1 and 1, which OpenCV 4.6 takes).
// convt_pads: 'valid' with output_padding and with a stride above the kernel (cells past the
// full output: ONNX's output_padding), 'same' with output_padding 0, no bias, then Flatten.
// convt_dilated: a dilation of 2, 'same' and 'valid'.
Sequential convt_dcgan(bool kernel_5 = true) {
  return Sequential({layers::InputLayer(Shape{8}), layers::Dense({.units = 7 * 7 * 6, .activation = "relu",
                                                                  .bias_initializer = bias_init()}),
                     layers::Reshape(Shape{7, 7, 6}),
                     layers::Conv2DTranspose({.filters = 4, .kernel_size = kernel_5 ? 5 : 4, .strides = 2,
                                              .padding = Padding::same, .activation = "relu",
                                              .bias_initializer = bias_init()}),
                     layers::Conv2DTranspose({.filters = 1, .kernel_size = 4, .strides = 2, .padding = Padding::same,
                                              .activation = "tanh", .bias_initializer = bias_init()})});
}

Sequential convt_pads() {
  return Sequential(
      {layers::InputLayer(Shape{4, 5, 3}),
       layers::Conv2DTranspose({.filters = 4, .kernel_size = 3, .strides = 2, .output_padding = Size2(1, 1),
                                .bias_initializer = bias_init()}),
       layers::Conv2DTranspose({.filters = 3, .kernel_size = Size2(2, 3), .strides = Size2(3, 2),
                                .activation = "sigmoid", .bias_initializer = bias_init()}),
       layers::Conv2DTranspose({.filters = 2, .kernel_size = 4, .strides = 2, .padding = Padding::same,
                                .output_padding = Size2(0), .use_bias = false}),
       layers::Flatten(), layers::Dense({.units = 5, .bias_initializer = bias_init()})});
}

Sequential convt_dilated() {
  return Sequential({layers::InputLayer(Shape{6, 5, 2}),
                     layers::Conv2DTranspose({.filters = 3, .kernel_size = 3, .padding = Padding::same,
                                              .dilation_rate = 2, .activation = "relu", .bias_initializer = bias_init()}),
                     layers::Conv2DTranspose({.filters = 2, .kernel_size = Size2(2, 3), .dilation_rate = Size2(3, 2),
                                              .bias_initializer = bias_init()})});
}

int run(const fs::path& dir) {
  fs::create_directories(dir);
  manual_seed(2024);
  std::vector<Case> cases;
  cases.push_back({"mlp", mlp(), {Shape{4, 5}}});
  for (const char* act : {"linear", "relu", "sigmoid", "tanh", "softmax", "log_softmax", "leaky_relu", "elu",
                          "exponential"})
    cases.push_back({std::string("act_") + act, activations(act), {Shape{5, 5, 2}}});
  cases.push_back({"lenet", lenet(), {Shape{13, 12, 1}}});
  cases.push_back({"bn_cnn", bn_cnn(), {Shape{10, 10, 3}}});
  cases.push_back({"reshape", reshape(), {Shape{36}}});
  cases.push_back({"dense_rank3", dense_rank3(), {Shape{3, 4}}});
  cases.push_back({"leaky_relu_layer", leaky_relu_layer(), {Shape{5}}});
  cases.push_back({"layer_norm", layer_norm(), {Shape{3, 6}}});
  cases.push_back({"layer_norm_flat", layer_norm_flat(), {Shape{6}}});
  uint64_t seed = 100;
  for (Case& c : cases) write_case(dir, c, seed++);
  // Functional models build (draw their weights) when they are made, so they come after the
  // Sequentials above have built theirs: those keep the weights they always had.
  std::vector<Case> graphs;
  graphs.push_back({"graph_resnet", graph_resnet(), {Shape{12, 12, 3}}});
  graphs.push_back({"graph_concat_max", graph_concat_max(), {Shape{10, 10, 2}}});
  graphs.push_back({"graph_two_inputs", graph_two_inputs(), {Shape{6}, Shape{3}}});
  graphs.push_back({"graph_two_outputs", graph_two_outputs(), {Shape{8, 8, 1}}});
  graphs.push_back({"graph_nested", graph_nested(), {Shape{8, 8, 2}}});
  graphs.push_back({"graph_shared", graph_shared(), {Shape{6, 6, 3}}});
  for (Case& c : graphs) write_case(dir, c, seed++);
  std::vector<Case> sequences;
  sequences.push_back({"seq_embedding", seq_embedding(), {Shape{10}}, 50});
  sequences.push_back({"seq_conv", seq_conv(), {Shape{10, 3}}});
  sequences.push_back({"seq_repeat", seq_repeat(), {Shape{9, 3}}});
  sequences.push_back({"seq_masking", seq_masking(), {Shape{6, 3}}});
  for (Case& c : sequences) write_case(dir, c, seed++);
  std::vector<Case> recurrent;
  recurrent.push_back({"rnn_lstm", rnn_lstm(), {Shape{6, 3}}});
  recurrent.push_back({"rnn_gru", rnn_gru(true), {Shape{6, 3}}});
  recurrent.push_back({"rnn_gru_v1", rnn_gru(false), {Shape{6, 3}}});
  recurrent.push_back({"rnn_simple", rnn_simple(), {Shape{6, 3}}});
  recurrent.push_back({"rnn_backwards", rnn_backwards(), {Shape{5, 3}}});
  recurrent.push_back({"rnn_embedding", rnn_embedding(), {Shape{7}}, 30});
  recurrent.push_back({"rnn_bidirectional", rnn_bidirectional(), {Shape{5, 3}}});
  recurrent.push_back({"rnn_bidirectional_merges", rnn_bidirectional_merges(), {Shape{5, 3}}});
  for (Case& c : recurrent) write_case(dir, c, seed++);
  Case initial{"rnn_initial_state", rnn_initial_state(), {Shape{5, 3}, Shape{4}, Shape{4}}};
  write_case(dir, initial, seed++);
  // Only where the recurrent layers give their states as outputs (Layer::output_count).
  if (layers::LSTM(Rnn{.units = 1, .return_state = true}).output_count() > 1) {
    Case states{"rnn_return_state", rnn_return_state(), {Shape{5, 3}}};
    write_case(dir, states, seed++);
  }
  std::vector<Case> resize;
  resize.push_back({"resize_generator", resize_generator(), {Shape{6}}});
  resize.push_back({"resize_input", resize_input(), {Shape{5, 4, 3}}});
  for (Case& c : resize) write_case(dir, c, seed++);
  Case sampling{"graph_sampling", graph_sampling(), {Shape{5}}};
  write_case(dir, sampling, seed++);
  std::vector<Case> transposed;
  transposed.push_back({"convt_dcgan", convt_dcgan(), {Shape{8}}});
  transposed.push_back({"convt_dcgan4", convt_dcgan(false), {Shape{8}}});
  transposed.push_back({"convt_pads", convt_pads(), {Shape{4, 5, 3}}});
  transposed.push_back({"convt_dilated", convt_dilated(), {Shape{6, 5, 2}}});
  for (Case& c : transposed) write_case(dir, c, seed++);
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
