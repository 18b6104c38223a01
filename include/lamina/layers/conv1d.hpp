// Convolution and pooling over sequences, Keras' Conv1D, MaxPooling1D, AveragePooling1D,
// GlobalMaxPooling1D and GlobalAveragePooling1D. Sequences are (batch, steps, features),
// channels last (Keras' data_format "channels_last"; channels_first is refused).
//
//   model.add(layers::Conv1D({.filters = 32, .kernel_size = 3, .padding = Padding1D::causal,
//                             .dilation_rate = 2, .activation = "relu"}));
//   model.add(layers::MaxPooling1D());  model.add(layers::GlobalAveragePooling1D());
#pragma once

#include "lamina/layers.hpp"

namespace lamina::layers {

// y = activation(conv1d(x, kernel) + bias); kernel (K, C, filters), bias (filters), as Keras.
// padding valid, same or causal (output t sees inputs up to t only); dilation_rate spaces the
// taps. groups = 1 only. Keras' fans: fan_in = K C, fan_out = K filters.
class Conv1D : public Layer {
 public:
  struct Options {
    int64_t filters = 0;
    int64_t kernel_size = 0;
    int64_t strides = 1;
    Padding1D padding = Padding1D::valid;
    int64_t dilation_rate = 1;
    lamina::Activation activation = lamina::Activation::linear;
    bool use_bias = true;
    Initializer kernel_initializer = Initializer::glorot_uniform();
    Initializer bias_initializer = Initializer::zeros();
    std::optional<Regularizer> kernel_regularizer{};
    std::optional<Regularizer> bias_regularizer{};
    std::optional<Regularizer> activity_regularizer{};
    std::optional<Constraint> kernel_constraint{};
    std::optional<Constraint> bias_constraint{};
    std::optional<Shape> input_shape{};  // on a first layer: (T, C)
    std::string name{};
  };
  explicit Conv1D(Options options);
  Conv1D(int64_t filters, int64_t kernel_size, lamina::Activation activation = lamina::Activation::linear);

  std::string class_name() const override { return "Conv1D"; }
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

// Max or average over windows of pool_size steps; strides default to pool_size (Keras'
// strides=None). The average counts only steps inside the sequence ('same' at the border).
struct Pooling1DOptions {
  int64_t pool_size = 2;
  std::optional<int64_t> strides{};
  Padding padding = Padding::valid;
  std::optional<Shape> input_shape{};
  std::string name{};
};

// What MaxPooling1D and AveragePooling1D share; each says its class name and its pooling op.
class Pooling1D : public Layer {
 public:
  using Options = Pooling1DOptions;
  Shape output_shape(const Shape& input_shape) const override;
  Json config() const override;
  Tensor call(const Tensor& x, bool training) override;
  void export_onnx(onnx::GraphWriter& graph) const override;  // onnx_op() over the window
  const Options& options() const { return options_; }

 protected:
  Pooling1D(const char* class_name, Options options);
  virtual const char* onnx_op() const = 0;  // "MaxPool", "AveragePool"
  Options options_;
};

class MaxPooling1D : public Pooling1D {
 public:
  explicit MaxPooling1D(Options options = {}) : Pooling1D("MaxPooling1D", std::move(options)) {}
  std::string class_name() const override { return "MaxPooling1D"; }
  const char* onnx_op() const override { return "MaxPool"; }
  static std::shared_ptr<Layer> from_config(const Json& config);
};

class AveragePooling1D : public Pooling1D {
 public:
  explicit AveragePooling1D(Options options = {}) : Pooling1D("AveragePooling1D", std::move(options)) {}
  std::string class_name() const override { return "AveragePooling1D"; }
  const char* onnx_op() const override { return "AveragePool"; }
  static std::shared_ptr<Layer> from_config(const Json& config);
};

struct GlobalPooling1DOptions {
  bool keepdims = false;
  std::optional<Shape> input_shape{};
  std::string name{};
};

// (batch, T, C) -> (batch, C), the maximum / the mean over the steps ((batch, 1, C) with keepdims).
class GlobalPooling1D : public Layer {
 public:
  using Options = GlobalPooling1DOptions;
  Shape output_shape(const Shape& input_shape) const override;
  Json config() const override;
  void export_onnx(onnx::GraphWriter& graph) const override;
  const Options& options() const { return options_; }

 protected:
  explicit GlobalPooling1D(Options options);
  void check_input(const Tensor& x) const;  // ShapeError unless (batch, T >= 1, C)
  Tensor finish(const Tensor& y) const;      // (N, C) -> (N, 1, C) with keepdims
  virtual const char* onnx_op() const = 0;   // "ReduceMax", "ReduceMean" over the steps
  Options options_;
};

class GlobalMaxPooling1D : public GlobalPooling1D {
 public:
  explicit GlobalMaxPooling1D(Options options = {}) : GlobalPooling1D(std::move(options)) {}
  std::string class_name() const override { return "GlobalMaxPooling1D"; }
  const char* onnx_op() const override { return "ReduceMax"; }
  static std::shared_ptr<Layer> from_config(const Json& config);
  Tensor call(const Tensor& x, bool training) override;
};

// With a mask (N, T) of 0 / 1 (Keras' masked mean): sum(x * mask) / sum(mask) over the steps.
class GlobalAveragePooling1D : public GlobalPooling1D {
 public:
  explicit GlobalAveragePooling1D(Options options = {}) : GlobalPooling1D(std::move(options)) {}
  std::string class_name() const override { return "GlobalAveragePooling1D"; }
  const char* onnx_op() const override { return "ReduceMean"; }
  static std::shared_ptr<Layer> from_config(const Json& config);
  Tensor call(const Tensor& x, bool training) override;
  Tensor call_masked(const Tensor& x, const Tensor& mask) const;
  // In a graph: the incoming mask (from Embedding(mask_zero), Masking) gives the masked mean;
  // the output carries none (Keras' supports_masking without a compute_mask).
  bool supports_masking() const override { return true; }
  Tensor compute_mask(std::span<const Tensor>, std::span<const Tensor>) const override { return Tensor(); }
  Outputs call_all(std::span<const Tensor> inputs, std::span<const Tensor> masks, bool training) override;
  void export_onnx(onnx::GraphWriter& graph) const override;  // refused on a masked input
};

}  // namespace lamina::layers
