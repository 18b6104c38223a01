// The image layers (Conv2D, pooling, Dropout, BatchNormalization, Reshape): shapes, parameter
// counts, Keras config round trips and JSON, layer-level gradchecks, and a LeNet-style
// Sequential end to end (summary, training, determinism, save / load with moving statistics).
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <limits>
#include <sstream>

#include "kernels/window.hpp"
#include "test_util.hpp"

namespace lamina {
namespace {

namespace fs = std::filesystem;

// config() -> layer_from_config -> config() is the identity.
void expect_round_trip(const Layer& layer) {
  const Json c = layer.config();
  auto back = layer_from_config(layer.class_name(), c);
  EXPECT_EQ(back->config(), c) << layer.class_name();
}

std::string error_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const Error& e) {
    return e.what();
  }
  return "no error";
}

TEST(Conv2D, BuildShapesParamsAndKerasFans) {
  Generator gen(1);
  layers::Conv2D c({.filters = 6, .kernel_size = 5, .padding = Padding::same, .activation = "relu"});
  c.set_name("conv");
  c.build({28, 28, 1}, gen);
  EXPECT_EQ(c.kernel().shape(), (Shape{5, 5, 1, 6}));
  EXPECT_EQ(c.bias().shape(), (Shape{6}));
  EXPECT_EQ(c.count_params(), 156);
  EXPECT_EQ(c.output_shape({28, 28, 1}), (Shape{28, 28, 6}));
  // glorot_uniform with Keras' conv fans: fan_in = 5*5*1, fan_out = 5*5*6
  const float limit = std::sqrt(6.f / (25 + 150));
  float biggest = 0;
  for (float w : c.kernel().values()) biggest = std::max(biggest, std::fabs(w));
  EXPECT_LE(biggest, limit);
  EXPECT_GT(biggest, 0.8f * limit);  // the fans are not the old (25, 6): that limit is 0.44, this 0.185

  layers::Conv2D strided({.filters = 4, .kernel_size = {3, 2}, .strides = {2, 3}, .use_bias = false});
  EXPECT_EQ(strided.output_shape({9, 8, 2}), (Shape{4, 3, 4}));
  strided.build({9, 8, 2}, gen);
  EXPECT_EQ(strided.count_params(), 3 * 2 * 2 * 4);
  layers::Conv2D same_strided({.filters = 4, .kernel_size = 3, .strides = 2, .padding = Padding::same});
  EXPECT_EQ(same_strided.output_shape({7, 6, 3}), (Shape{4, 3, 4}));
}

TEST(Conv2D, ForwardIsActivationOfConvolution) {
  Generator gen(2);
  layers::Conv2D c(3, 3, "tanh");
  c.build({5, 6, 2}, gen);
  c.bias().fill_(0.25f);
  const Tensor x = Tensor::randn({2, 5, 6, 2}, gen);
  EXPECT_TRUE(testing::all_close(c.call(x, false), lamina::tanh(conv2d(x, c.kernel(), c.bias())), 1e-6, 1e-6));
  layers::Conv2D e({.filters = 2, .kernel_size = 1, .activation = "elu"});  // not fused: applied after
  e.build({5, 6, 2}, gen);
  EXPECT_TRUE(testing::all_close(e.call(x, false), elu(conv2d(x, e.kernel(), e.bias())), 1e-6, 1e-6));
}

TEST(Conv2D, GradcheckWeightsAndInput) {
  Generator gen(3);
  auto c = std::make_shared<layers::Conv2D>(layers::Conv2D::Options{
      .filters = 3, .kernel_size = {3, 2}, .strides = {1, 2}, .padding = Padding::same, .activation = "sigmoid"});
  c->build({5, 6, 2}, gen);
  c->bias().fill_(0.1f);
  testing::Fn f = [c](const std::vector<Tensor>& in) {
    c->kernel() = in[1];
    c->bias() = in[2];
    return c->call(in[0], true);
  };
  EXPECT_TRUE(testing::gradcheck(f, {Tensor::randn({2, 5, 6, 2}, gen), c->kernel().detach(), c->bias().detach()}));
}

TEST(Conv2D, ConfigAndKerasJson) {
  layers::Conv2D c({.filters = 8,
                    .kernel_size = {3, 5},
                    .strides = 2,
                    .padding = Padding::same,
                    .activation = "relu",
                    .kernel_initializer = Initializer::he_normal(),
                    .input_shape = Shape{28, 28, 1},
                    .name = "c1"});
  const Json j = c.config();
  EXPECT_EQ(j["kernel_size"], Json::parse("[3, 5]"));
  EXPECT_EQ(j["strides"], Json::parse("[2, 2]"));
  EXPECT_EQ(j["padding"], "same");
  EXPECT_EQ(j["data_format"], "channels_last");
  EXPECT_EQ(j["batch_input_shape"], Json::parse("[null, 28, 28, 1]"));
  expect_round_trip(c);
  // What Keras 3 writes (model.to_json()), trimmed of nothing.
  const Json k3 = Json::parse(R"({"name": "conv2d", "trainable": true, "dtype": {"module": "keras",
      "class_name": "DTypePolicy", "config": {"name": "float32"}, "registered_name": null}, "filters": 6,
      "kernel_size": [5, 5], "strides": [1, 1], "padding": "same", "data_format": "channels_last",
      "dilation_rate": [1, 1], "groups": 1, "activation": "relu", "use_bias": true,
      "kernel_initializer": {"module": "keras.initializers", "class_name": "GlorotUniform", "config": {"seed": null},
      "registered_name": null}, "bias_initializer": {"module": "keras.initializers", "class_name": "Zeros",
      "config": {}, "registered_name": null}, "kernel_regularizer": null, "bias_regularizer": null,
      "activity_regularizer": null, "kernel_constraint": null, "bias_constraint": null})");
  auto l = layer_from_config("Conv2D", k3);
  auto& conv = dynamic_cast<layers::Conv2D&>(*l);
  EXPECT_EQ(conv.options().kernel_size, Size2(5));
  EXPECT_EQ(conv.options().padding, Padding::same);
  EXPECT_EQ(conv.options().activation.kind(), Activation::relu);
  // Keras 2: ints where Keras 3 writes lists, batch_input_shape on the first layer.
  auto k2 = layer_from_config("Conv2D", Json::parse(R"({"name": "c", "filters": 4, "kernel_size": 3, "strides": 2,
      "padding": "valid", "batch_input_shape": [null, 9, 9, 3]})"));
  EXPECT_EQ(dynamic_cast<layers::Conv2D&>(*k2).options().strides, Size2(2));
  EXPECT_EQ(k2->declared_input_shape(), (Shape{9, 9, 3}));
  EXPECT_EQ(error_of([] { layer_from_config("Conv2D", Json::parse(R"({"name": "c", "filters": 4, "kernel_size": 3,
      "data_format": "channels_first"})")); }),
            "Conv2D 'c': data_format 'channels_first' is not supported; Lamina's images are channels_last (batch, H, "
            "W, C). Transpose the data and use data_format='channels_last'");
  EXPECT_EQ(error_of([] { layer_from_config("Conv2D", Json::parse(R"({"name": "c", "filters": 4, "kernel_size": 3,
      "dilation_rate": [2, 2]})")); }),
            "Conv2D 'c': dilation_rate = [2,2] is not supported (only 1)");
  EXPECT_EQ(error_of([] { layer_from_config("Conv2D", Json::parse(R"({"name": "c", "filters": 4, "kernel_size": 3,
      "padding": "causal"})")); }),
            "Conv2D 'c': padding 'causal' is not supported (valid or same)");
  EXPECT_EQ(error_of([] { layer_from_config("Conv2D", Json::parse(R"({"name": "c", "filters": 4,
      "kernel_size": [3, 0]})")); }),
            "Conv2D 'c': 'kernel_size' must be a positive integer or a list of two, got [3,0]");
}

TEST(Conv2D, ShapeErrorsNameTheLayer) {
  Generator gen(4);
  layers::Conv2D c(4, 5);
  c.set_name("conv2d");
  EXPECT_EQ(error_of([&] { c.build({28, 28}, gen); }),
            "Conv2D 'conv2d' expects input (batch, H, W, C), got (28, 28).\n  hint: add a channel axis: Reshape((28, "
            "28, 1)) before it, or input_shape=(28, 28, 1)");
  EXPECT_EQ(error_of([&] { c.build({3, 3, 1}, gen); }),
            "Conv2D 'conv2d' expects input images of at least 5x5 with padding 'valid', got (3, 3, 1).\n  hint: use "
            "padding='same' or a smaller kernel_size");
  c.build({8, 8, 3}, gen);
  EXPECT_EQ(error_of([&] { c.call(Tensor::zeros({2, 8, 8, 1}), false); }),
            "Conv2D 'conv2d' expects input (batch, H, W, 3), got (2, 8, 8, 1).");
  EXPECT_THROW(layers::Conv2D(0, 3), ValueError);
  EXPECT_THROW(layers::Conv2D(4, 0), ValueError);
}

// Windows and strides past kMaxWindow (2^20) are refused at construction and by the ops: oneDNN
// refused or looped on sizes near 2^31 (found by the spec fuzzer), and 'same' output sizes with
// a stride near 2^63 overflowed int64.
TEST(Conv2D, HugeWindowsAndStridesAreRefused) {
  constexpr int64_t big = int64_t{1} << 21;
  EXPECT_THROW(layers::Conv2D(2, big), ValueError);
  EXPECT_THROW(layers::Conv2D({.filters = 2, .kernel_size = 1, .strides = Size2(big)}), ValueError);
  EXPECT_THROW(layers::MaxPooling2D({.pool_size = Size2(big)}), ValueError);
  EXPECT_THROW(layers::AveragePooling2D({.pool_size = 2, .strides = Size2(1, big)}), ValueError);
  const Tensor x = Tensor::zeros({1, 3, 3, 1});
  EXPECT_THROW(max_pool2d(x, Size2(big), Size2(1), Padding::same), ValueError);
  EXPECT_THROW(conv2d(x, Tensor::zeros({1, 1, 1, 1}), Tensor(), {.strides = Size2(big)}), ValueError);
  // The geometry itself stays exact for any size up to INT64_MAX.
  constexpr int64_t max = std::numeric_limits<int64_t>::max();
  const kernels::Axis a = kernels::window_axis(3, 1, max, true);
  EXPECT_EQ(a.out, 1);
  EXPECT_EQ(a.pad_lo + a.pad_hi, 0);
  const kernels::Axis b = kernels::window_axis(3, max, 1, true);
  EXPECT_EQ(b.out, 3);
  EXPECT_EQ(b.pad_lo + b.pad_hi, max - 1);
  EXPECT_EQ(kernels::window_axis(max, 2, 2, true).out, max / 2 + 1);
  // One check (kernels::check_window) words the refusal for every op and layer.
  EXPECT_EQ(error_of([&] { layers::MaxPooling2D({.pool_size = Size2(big)}); }),
            "MaxPooling2D: pool_size 2097152x2097152 and strides 2097152x2097152 must be at most 1048576");
  EXPECT_EQ(error_of([&] { layers::Conv2D(4, Size2(3, 0)); }),
            "Conv2D: kernel_size 3x0 and strides 1x1 must be positive");
  EXPECT_EQ(error_of([&] { conv2d(x, Tensor::zeros({1, 1, 1, 1}), Tensor(), {.strides = Size2(1, big)}); }),
            "conv2d: window 1x1 and strides 1x2097152 must be at most 1048576");
}

// ONNX's explicit pads (kernels::explicit_pads_axis) give Keras' output size when they are
// Keras' 'valid' or 'same' pads; with ceil_mode, a window that would start in the trailing
// padding is dropped.
TEST(WindowGeometry, ExplicitPadsAgreeWithKerasPaddings) {
  for (int64_t in : {1, 2, 5, 7, 33})
    for (int64_t k : {1, 2, 3, 5})
      for (int64_t s : {1, 2, 3, 7}) {
        const kernels::Axis valid = kernels::window_axis(in, k, s, false), same = kernels::window_axis(in, k, s, true);
        EXPECT_EQ(kernels::explicit_pads_axis(in, k, s, 0, 0, false), valid.out) << in << " " << k << " " << s;
        EXPECT_EQ(kernels::explicit_pads_axis(in, k, s, same.pad_lo, same.pad_hi, false), same.out)
            << in << " " << k << " " << s;
      }
  EXPECT_EQ(kernels::explicit_pads_axis(5, 2, 2, 0, 0, false), 2);
  EXPECT_EQ(kernels::explicit_pads_axis(5, 2, 2, 0, 0, true), 3);  // the last window covers row 4 alone
  EXPECT_EQ(kernels::explicit_pads_axis(4, 2, 2, 0, 1, true), 2);  // a third would start in the padding
  EXPECT_EQ(kernels::explicit_pads_axis(2, 5, 1, 1, 1, true), 0);  // does not fit
}

TEST(Pooling, ShapesDefaultsAndConfig) {
  layers::MaxPooling2D m;
  EXPECT_EQ(m.output_shape({28, 28, 6}), (Shape{14, 14, 6}));
  EXPECT_EQ(m.output_shape({27, 27, 6}), (Shape{13, 13, 6}));  // valid drops the last row / column
  EXPECT_EQ(m.config()["strides"], Json::parse("[2, 2]"));     // strides=None -> pool_size, as Keras writes
  layers::MaxPooling2D s({.pool_size = 3, .strides = Size2(2), .padding = Padding::same});
  EXPECT_EQ(s.output_shape({7, 8, 3}), (Shape{4, 4, 3}));
  layers::AveragePooling2D a({.pool_size = {2, 3}, .input_shape = Shape{6, 9, 2}, .name = "avg"});
  EXPECT_EQ(a.output_shape({6, 9, 2}), (Shape{3, 3, 2}));
  EXPECT_EQ(m.count_params() + a.count_params(), 0);
  for (const Layer* l : std::initializer_list<const Layer*>{&m, &s, &a}) expect_round_trip(*l);
  auto k2 = layer_from_config("MaxPooling2D", Json::parse(R"({"name": "p", "pool_size": 3, "strides": null,
      "padding": "same", "data_format": "channels_last"})"));
  EXPECT_EQ(k2->config()["strides"], Json::parse("[3, 3]"));
  EXPECT_THROW(layer_from_config("AveragePooling2D", Json::parse(R"({"data_format": "channels_first"})")), ValueError);
  layers::MaxPooling2D big({.pool_size = 5});
  big.set_name("p");
  EXPECT_EQ(error_of([&] { big.output_shape({4, 4, 1}); }),
            "MaxPooling2D 'p' expects input images (batch, H, W, C) of at least 5x5, got (4, 4, 1).");

  Generator gen(5);
  const Tensor x = Tensor::randn({2, 7, 8, 3}, gen);
  EXPECT_EQ(s.call(x, false).to_vector(), max_pool2d(x, 3, 2, Padding::same).to_vector());
  EXPECT_EQ(a.call(Tensor::zeros({1, 6, 9, 2}), false).shape(), (Shape{1, 3, 3, 2}));
}

TEST(Pooling, GlobalAverage) {
  layers::GlobalAveragePooling2D g;
  EXPECT_EQ(g.output_shape({7, 7, 64}), (Shape{64}));
  layers::GlobalAveragePooling2D keep({.keepdims = true});
  EXPECT_EQ(keep.output_shape({7, 7, 64}), (Shape{1, 1, 64}));
  const Tensor x = Tensor::ones({2, 3, 4, 5});
  EXPECT_EQ(g.call(x, false).shape(), (Shape{2, 5}));
  EXPECT_EQ(keep.call(x, false).shape(), (Shape{2, 1, 1, 5}));
  expect_round_trip(g);
  expect_round_trip(keep);
}

TEST(Reshape, ShapesConfigAndErrors) {
  layers::Reshape r({.target_shape = Shape{28, 28, 1}, .input_shape = Shape{784}});
  EXPECT_EQ(r.output_shape({784}), (Shape{28, 28, 1}));
  EXPECT_EQ(r.call(Tensor::zeros({3, 784}), false).shape(), (Shape{3, 28, 28, 1}));
  layers::Reshape infer(Shape{-1, 4});
  infer.set_name("r");
  EXPECT_EQ(infer.output_shape({3, 8}), (Shape{6, 4}));
  EXPECT_EQ(r.config()["target_shape"], Json::parse("[28, 28, 1]"));
  expect_round_trip(r);
  expect_round_trip(infer);
  EXPECT_EQ(error_of([&] { infer.output_shape({7}); }),
            "Reshape 'r' expects input a positive multiple of 4 elements per sample (to reshape into (-1, 4)), got (7).");
  EXPECT_THROW(layers::Reshape(Shape{-1, -1}), ValueError);
}

TEST(Dropout, TrainingOnlyAndSeeded) {
  layers::Dropout d(0.5f);
  Generator gen(6);
  d.build({100}, gen);
  const Tensor x = Tensor::ones({4, 100});
  EXPECT_EQ(d.call(x, false).impl(), x.impl());  // evaluate / predict: the identity
  const auto y = d.call(x, true).to_vector();
  EXPECT_NE(std::count(y.begin(), y.end(), 0.f), 0);
  EXPECT_NE(std::count(y.begin(), y.end(), 2.f), 0);
  // The same build generator (as manual_seed gives) -> the same masks; an explicit seed wins.
  layers::Dropout a(0.5f), b(0.5f);
  Generator g1(7), g2(7);
  a.build({100}, g1);
  b.build({100}, g2);
  EXPECT_EQ(a.call(x, true).to_vector(), b.call(x, true).to_vector());
  layers::Dropout s1({.rate = 0.3f, .seed = 42}), s2({.rate = 0.3f, .seed = 42});
  s1.build({100}, g1);
  s2.build({100}, gen);
  EXPECT_EQ(s1.call(x, true).to_vector(), s2.call(x, true).to_vector());
  EXPECT_EQ(s1.count_params(), 0);
  EXPECT_EQ(s1.config()["rate"], Json(0.3));
  EXPECT_EQ(s1.config()["seed"], 42);
  expect_round_trip(s1);
  expect_round_trip(d);
  EXPECT_THROW(layers::Dropout(1.f), ValueError);
  EXPECT_THROW(layer_from_config("Dropout", Json::parse(R"({"rate": 0.5, "noise_shape": [null, 1, 1, 8]})")),
               ValueError);
}

TEST(BatchNormalization, WeightsAsKerasAndConfig) {
  Generator gen(8);
  layers::BatchNormalization bn;
  bn.set_name("bn");
  bn.build({5, 5, 16}, gen);
  ASSERT_EQ(bn.weights().size(), 4u);
  const char* names[] = {"gamma", "beta", "moving_mean", "moving_variance"};
  for (size_t i = 0; i < 4; ++i) {
    EXPECT_EQ(bn.weights()[i].name, names[i]);
    EXPECT_EQ(bn.weights()[i].trainable, i < 2) << names[i];
    EXPECT_EQ(bn.weights()[i].value.shape(), Shape{16});
  }
  EXPECT_EQ(bn.count_params(), 64);
  EXPECT_EQ(bn.weight("gamma").to_vector(), std::vector<float>(16, 1.f));
  EXPECT_EQ(bn.weight("moving_variance").to_vector(), std::vector<float>(16, 1.f));
  EXPECT_EQ(bn.config()["momentum"], Json(0.99));
  EXPECT_EQ(bn.config()["epsilon"], Json(0.001));
  expect_round_trip(bn);
  layers::BatchNormalization plain({.momentum = 0.9f, .center = false, .scale = false});
  plain.build({4}, gen);
  EXPECT_EQ(plain.weights().size(), 2u);  // only the moving statistics
  expect_round_trip(plain);
  // Keras 2 writes the axis as a list once built; any spelling of the last axis is accepted.
  auto k2 = layer_from_config("BatchNormalization", Json::parse(R"({"name": "b", "axis": [3], "momentum": 0.9,
      "epsilon": 1e-5, "center": true, "scale": true})"));
  EXPECT_NO_THROW(k2->build({6, 6, 8}, gen));
  auto first_axis = layer_from_config("BatchNormalization", Json::parse(R"({"name": "b", "axis": 1})"));
  EXPECT_EQ(error_of([&] { first_axis->build({6, 6, 8}, gen); }),
            "BatchNormalization 'b': only the last axis (channels) can be normalized; axis 1 of input (batch, 6, 6, 8) "
            "is not the last. Use axis=-1 with channels-last data");
}

TEST(BatchNormalization, TrainingUpdatesMovingStatisticsInferenceUsesThem) {
  Generator gen(9);
  layers::BatchNormalization bn({.momentum = 0.5f});
  bn.build({3}, gen);
  const Tensor x = Tensor::randn({8, 3}, gen) * 2.f + 3.f;
  bn.call(x, false);
  EXPECT_EQ(bn.weight("moving_mean").to_vector(), std::vector<float>(3, 0.f));  // inference: untouched
  bn.call(x, true);
  const Tensor m = mean(x, 0), v = mean(square(x - m), 0);
  EXPECT_TRUE(testing::all_close(bn.weight("moving_mean"), m * 0.5f, 1e-5, 1e-6));
  EXPECT_TRUE(testing::all_close(bn.weight("moving_variance"), v * 0.5f + 0.5f, 1e-5, 1e-6));
  // Inference: (x - moving_mean) / sqrt(moving_variance + epsilon) * gamma + beta.
  const Tensor expected = (x - bn.weight("moving_mean")) / sqrt(bn.weight("moving_variance") + 1e-3f);
  EXPECT_TRUE(testing::all_close(bn.call(x, false), expected, 1e-5, 1e-6));
}

TEST(BatchNormalization, GradcheckBothModes) {
  for (bool training : {true, false}) {
    Generator gen(10);
    auto bn = std::make_shared<layers::BatchNormalization>();
    bn->build({3, 2, 4}, gen);
    bn->weight("moving_mean").fill_(0.3f);
    bn->weight("moving_variance").fill_(1.7f);
    testing::Fn f = [bn, training](const std::vector<Tensor>& in) {
      bn->weight("gamma") = in[1];
      bn->weight("beta") = in[2];
      return bn->call(in[0], training);
    };
    EXPECT_TRUE(testing::gradcheck(
        f, {Tensor::randn({2, 3, 2, 4}, gen), Tensor::rand({4}, gen, 0.5f, 1.5f), Tensor::randn({4}, gen)}))
        << "training=" << training;
  }
}

}  // namespace
}  // namespace lamina
