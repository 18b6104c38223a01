// The layer registry: every layer class is found by its Keras class name, built-in or a user's
// own; a model with a user's layer saves and loads back. And LayerNormalization, the layer
// that shows what adding one takes (its own files, one registry line).
#include <gtest/gtest.h>

#include <cstdio>
#include <filesystem>

#include "lamina/lamina.hpp"
#include "lamina/layers/layer_normalization.hpp"
#include "test_util.hpp"

namespace lamina {
namespace {

using testing::error_of;

// A user's layer, written against the public headers only: y = x * factor (a trainable
// scalar per feature, initialised to `init`).
class Scale : public Layer {
 public:
  explicit Scale(float init = 2.f, std::string name = "") : init_(init) { name_ = std::move(name); }
  std::string class_name() const override { return "Scale"; }
  std::vector<WeightSpec> weight_specs(const Shape& in) const override {
    return {{"factor", {in[-1]}, Initializer::constant(init_)}};
  }
  Tensor call(const Tensor& x, bool) override { return mul(x, weights_.at(0).value); }
  Shape output_shape(const Shape& in) const override { return in; }
  Json config() const override {
    Json j = Layer::config();
    j["init"] = init_;
    return j;
  }
  static std::shared_ptr<Layer> from_config(const Json& c) {
    return std::make_shared<Scale>(c.value("init", 2.f), c.value("name", ""));
  }

 private:
  float init_;
};

TEST(Registry, EveryBuiltInLayerRoundTripsThroughItsConfig) {
  const std::vector<std::string> names = registered_layers();
  for (const char* cls : {"InputLayer", "Dense", "Flatten", "Activation", "LeakyReLU", "Reshape", "Conv2D",
                          "MaxPooling2D", "AveragePooling2D", "GlobalAveragePooling2D", "BatchNormalization",
                          "Dropout", "LayerNormalization"})
    EXPECT_NE(std::find(names.begin(), names.end(), cls), names.end()) << cls << " is not registered";
}

TEST(Registry, UnknownClassNamesTheRegistryAndHowToJoinIt) {
  const std::string message = error_of<ValueError>([] { layer_from_config("Scale2", Json::object()); });
  EXPECT_CONTAINS(message, "layer class 'Scale2' is not supported");
  EXPECT_CONTAINS(message, "LayerNormalization");
  EXPECT_CONTAINS(message, "lamina::register_layer");
}

TEST(Registry, UserLayerSavesAndLoadsBack) {
  register_layer<Scale>("Scale", /*replace=*/true);  // replace: the test may run twice in one process
  Sequential model("scaled");
  model.add(layers::Dense({.units = 3, .input_shape = Shape{4}}));
  model.add(Scale(0.5f, "half"));
  model.build(Shape{4});
  Generator gen(5);
  const Tensor x = Tensor::randn({2, 4}, gen);
  const Tensor before = model.predict(x);
  const std::string path = ::testing::TempDir() + "registry_scaled.safetensors";
  model.save(path);
  Sequential loaded = Sequential::load(path);
  std::remove(path.c_str());
  ASSERT_EQ(loaded.layers().size(), 2u);
  EXPECT_EQ(loaded.layers()[1]->class_name(), "Scale");
  EXPECT_EQ(loaded.layers()[1]->name(), "half");
  const Tensor after = loaded.predict(x);
  for (int64_t i = 0; i < before.numel(); ++i) EXPECT_EQ(before.data()[i], after.data()[i]) << i;
}

TEST(Registry, DuplicateOrEmptyRegistrationsAreRefused) {
  EXPECT_CONTAINS(error_of<ValueError>([] { register_layer<layers::Dense>("Dense"); }),
                  "a layer class 'Dense' is already registered");
  EXPECT_CONTAINS(error_of<ValueError>([] { register_layer("", LayerFactory()); }), "the class name is empty");
}

TEST(Registry, ALayerWithoutOnnxExportSaysSo) {
  register_layer<Scale>("Scale", /*replace=*/true);
  Sequential model("scaled");
  model.add(layers::Dense({.units = 3, .input_shape = Shape{4}}));
  model.add(Scale(0.5f, "half"));
  model.build(Shape{4});
  const std::string path = ::testing::TempDir() + "registry_scaled.onnx";
  EXPECT_CONTAINS(error_of<ValueError>([&] { save_onnx(model, path); }),
                  "save_onnx: layer 'half' (Scale): no ONNX export for the layer class 'Scale'");
  EXPECT_FALSE(std::filesystem::exists(path));
}

// --- LayerNormalization -------------------------------------------------------------------------------

TEST(LayerNormalization, ShapesParamsAndConfigRoundTrip) {
  layers::LayerNormalization ln({.epsilon = 1e-5f, .center = false, .name = "ln"});
  Generator gen(1);
  ln.build(Shape{5, 8}, gen);
  ASSERT_EQ(ln.weights().size(), 1u);
  EXPECT_EQ(ln.weights()[0].name, "gamma");
  EXPECT_EQ(ln.count_params(), 8);
  EXPECT_EQ(ln.output_shape(Shape{5, 8}), (Shape{5, 8}));
  const Json c = ln.config();
  EXPECT_EQ(c.at("epsilon").get<double>(), 1e-5);
  auto back = layer_from_config("LayerNormalization", c);
  EXPECT_EQ(back->config(), c);
}

TEST(LayerNormalization, NormalizesEachSampleAndMatchesTheOp) {
  layers::LayerNormalization ln;
  Generator gen(2);
  ln.build(Shape{6}, gen);
  const Tensor x = Tensor::randn({3, 6}, gen);
  const Tensor y = ln.call(x, /*training=*/true);
  auto moments = [](const float* row, int64_t n) {
    double mean = 0, var = 0;
    for (int64_t j = 0; j < n; ++j) mean += row[j] / static_cast<double>(n);
    for (int64_t j = 0; j < n; ++j) var += (row[j] - mean) * (row[j] - mean) / static_cast<double>(n);
    return std::pair{mean, var};
  };
  for (int64_t r = 0; r < 3; ++r) {
    const auto [x_mean, x_var] = moments(x.data() + r * 6, 6);
    const auto [y_mean, y_var] = moments(y.data() + r * 6, 6);
    EXPECT_NEAR(y_mean, 0.0, 1e-6) << "row " << r;
    EXPECT_NEAR(y_var, x_var / (x_var + 1e-3), 1e-5) << "row " << r;  // gamma 1, beta 0, epsilon 1e-3
  }
}

TEST(LayerNormalization, KerasJsonAndBadOptions) {
  const Json keras3 = Json::parse(R"({"name": "layer_normalization", "trainable": true, "dtype": "float32",
      "axis": [-1], "epsilon": 0.001, "center": true, "scale": true, "rms_scaling": false,
      "beta_initializer": {"module": "keras.initializers", "class_name": "Zeros", "config": {}, "registered_name": null},
      "gamma_initializer": {"module": "keras.initializers", "class_name": "Ones", "config": {}, "registered_name": null},
      "beta_regularizer": null, "gamma_regularizer": null, "beta_constraint": null, "gamma_constraint": null})");
  auto l = layer_from_config("LayerNormalization", keras3);
  Generator gen(3);
  l->build(Shape{4, 10}, gen);
  EXPECT_EQ(l->count_params(), 20);
  Json rms = keras3;
  rms["rms_scaling"] = true;
  EXPECT_CONTAINS(error_of<ValueError>([&] { layer_from_config("LayerNormalization", rms); }),
                  "LayerNormalization 'layer_normalization': rms_scaling = true is not supported");
  layers::LayerNormalization first_axis({.axis = 1});
  EXPECT_CONTAINS(error_of<ValueError>([&] { first_axis.build(Shape{4, 10}, gen); }),
                  "only the last axis can be normalized");
}

}  // namespace
}  // namespace lamina
