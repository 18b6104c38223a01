// Keras' Conv2DTranspose: the transposed convolution that upsamples images (DCGAN generators,
// U-Net decoders, autoencoders). Images are (batch, H, W, C), channels last (Keras'
// data_format "channels_last"; channels_first is refused).
//
//   model.add(layers::Dense({.units = 7 * 7 * 64, .activation = "relu"}));
//   model.add(layers::Reshape({7, 7, 64}));
//   model.add(layers::Conv2DTranspose({.filters = 32, .kernel_size = 4, .strides = 2,
//                                      .padding = Padding::same, .activation = "relu"}));  // 14x14
#pragma once

#include "lamina/layers.hpp"

namespace lamina::layers {

// y = activation(conv2d_transpose(x, kernel) + bias); kernel (KH, KW, filters, C) (Keras'
// layout for this layer: out before in), bias (filters). Output size as Keras'
// compute_conv_transpose_output_shape (see conv2d_transpose in ops.hpp): padding 'same' and
// no output_padding give (H s, W s). output_padding (each < its stride) fixes the size exactly.
// dilation_rate spaces the taps; Keras refuses it above 1 together with strides above 1.
// Keras' fans for the kernel: fan_in = KH KW filters, fan_out = KH KW C (its rule reads the
// last two axes of any kernel).
class Conv2DTranspose : public Layer {
 public:
  struct Options {
    int64_t filters = 0;
    Size2 kernel_size = 0;
    Size2 strides = 1;
    Padding padding = Padding::valid;
    std::optional<Size2> output_padding{};  // Keras' None
    Size2 dilation_rate = 1;
    lamina::Activation activation = lamina::Activation::linear;
    bool use_bias = true;
    Initializer kernel_initializer = Initializer::glorot_uniform();
    Initializer bias_initializer = Initializer::zeros();
    std::optional<Regularizer> kernel_regularizer{};
    std::optional<Regularizer> bias_regularizer{};
    std::optional<Regularizer> activity_regularizer{};
    std::optional<Constraint> kernel_constraint{};
    std::optional<Constraint> bias_constraint{};
    std::optional<Shape> input_shape{};  // on a first layer: (H, W, C)
    std::string name{};
  };
  explicit Conv2DTranspose(Options options);

  std::string class_name() const override { return "Conv2DTranspose"; }
  // Keras 2 (tf.keras) writes its Conv base's groups, always 1 here (anything else is refused).
  std::vector<std::string> config_aliases() const override { return {"groups"}; }
  static std::shared_ptr<Layer> from_config(const Json& config);
  void export_onnx(onnx::GraphWriter& graph) const override;
  std::vector<WeightSpec> weight_specs(const Shape& input_shape) const override;
  Tensor call(const Tensor& x, bool training) override;
  Shape output_shape(const Shape& input_shape) const override;
  Json config() const override;
  const Options& options() const { return options_; }
  Tensor& kernel() { return weights_.at(0).value; }
  Tensor& bias() { return weights_.at(1).value; }

 private:
  Options options_;
};

}  // namespace lamina::layers
