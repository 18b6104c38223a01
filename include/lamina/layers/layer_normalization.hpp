// LayerNormalization: Keras' layer (keras.layers.LayerNormalization) over the last axis. The
// first layer written as one unit in its own files (README: "Adding a layer"): this header,
// src/layers/layer_normalization.cpp, one line in the registry, one in CMakeLists.txt.
//
//   model.add(layers::LayerNormalization());                        // epsilon 1e-3, gamma and beta
//   model.add(layers::LayerNormalization({.epsilon = 1e-5f, .center = false}));
#pragma once

#include "lamina/layers.hpp"

namespace lamina::layers {

// y = (x - mean) / sqrt(var + epsilon) * gamma + beta, with the mean and (biased) variance of
// each sample's last axis (C); gamma, beta (C) are trainable, in Keras' order and names
// (absent without scale / center). The same statistics in training and inference.
class LayerNormalization : public Layer {
 public:
  struct Options {
    int64_t axis = -1;  // only the last axis
    float epsilon = 1e-3f;
    bool center = true;
    bool scale = true;
    Initializer beta_initializer = Initializer::zeros();
    Initializer gamma_initializer = Initializer::ones();
    std::optional<Regularizer> beta_regularizer{};
    std::optional<Regularizer> gamma_regularizer{};
    std::optional<Constraint> beta_constraint{};
    std::optional<Constraint> gamma_constraint{};
    std::optional<Shape> input_shape{};
    std::string name{};
  };
  LayerNormalization() : LayerNormalization(Options{}) {}
  explicit LayerNormalization(Options options);

  std::string class_name() const override { return "LayerNormalization"; }
  bool supports_masking() const override { return true; }
  static std::shared_ptr<Layer> from_config(const Json& config);
  std::vector<WeightSpec> weight_specs(const Shape& input_shape) const override;
  Tensor call(const Tensor& x, bool training) override;
  Shape output_shape(const Shape& input_shape) const override { return input_shape; }
  Json config() const override;
  void export_onnx(onnx::GraphWriter& graph) const override;
  const Options& options() const { return options_; }

 private:
  Options options_;
};

}  // namespace lamina::layers
