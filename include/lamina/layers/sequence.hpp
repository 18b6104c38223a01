// Sequence plumbing, Keras' Masking, RepeatVector and TimeDistributed. Sequences are
// (batch, steps, features).
//
//   model.add(layers::Masking({.mask_value = 0.f}));
//   model.add(layers::RepeatVector(5));                               // (N, F) -> (N, 5, F)
//   model.add(layers::TimeDistributed(std::make_shared<layers::Dense>(8)));  // Dense on every step
#pragma once

#include "lamina/layers.hpp"

namespace lamina::layers {

// Marks the steps whose features all equal mask_value as padding: the output is x with those
// steps zeroed (x * mask), and mask_for gives Keras' mask (batch, steps) of 0 / 1
// (1 where any feature differs from mask_value).
class Masking : public Layer {
 public:
  struct Options {
    float mask_value = 0.f;
    std::optional<Shape> input_shape{};
    std::string name{};
  };
  Masking() : Masking(Options{}) {}
  explicit Masking(Options options);
  std::string class_name() const override { return "Masking"; }
  static std::shared_ptr<Layer> from_config(const Json& config);
  void export_onnx(onnx::GraphWriter& graph) const override;
  Tensor call(const Tensor& x, bool training) override;
  Shape output_shape(const Shape& input_shape) const override;
  Json config() const override;
  float mask_value() const { return options_.mask_value; }
  Tensor mask_for(const Tensor& x) const;  // (batch, steps)

 private:
  Options options_;
};

// (batch, F) -> (batch, n, F): each sample's vector repeated n times.
class RepeatVector : public Layer {
 public:
  struct Options {
    int64_t n = 0;
    std::optional<Shape> input_shape{};
    std::string name{};
  };
  explicit RepeatVector(Options options);
  explicit RepeatVector(int64_t n) : RepeatVector(Options{.n = n}) {}
  std::string class_name() const override { return "RepeatVector"; }
  static std::shared_ptr<Layer> from_config(const Json& config);
  void export_onnx(onnx::GraphWriter& graph) const override;
  Tensor call(const Tensor& x, bool training) override;
  Shape output_shape(const Shape& input_shape) const override;
  Json config() const override;

 private:
  Options options_;
};

// Applies `layer` to every step: (batch, T, ...) -> (batch, T, layer's output...), by folding
// the steps into the batch ((batch T, ...) through the layer, then unfolded). Its weights are the
// inner layer's (the same tensors, under their own names), as are its regularizers, constraints
// and trainable flag; Keras' config {"layer": {"class_name": ..., "config": ...}}.
class TimeDistributed : public Layer {
 public:
  struct Options {
    std::shared_ptr<Layer> layer{};
    std::optional<Shape> input_shape{};  // (T, ...)
    std::string name{};
  };
  explicit TimeDistributed(Options options);
  explicit TimeDistributed(std::shared_ptr<Layer> layer) : TimeDistributed(Options{.layer = std::move(layer)}) {}
  TimeDistributed(const TimeDistributed& other);  // copies the inner layer too
  TimeDistributed& operator=(const TimeDistributed&) = delete;
  std::string class_name() const override { return "TimeDistributed"; }
  static std::shared_ptr<Layer> from_config(const Json& config);
  void build(const Shape& input_shape, Generator& gen) override;
  std::vector<WeightSpec> weight_specs(const Shape& input_shape) const override;
  Tensor call(const Tensor& x, bool training) override;
  Shape output_shape(const Shape& input_shape) const override;
  Json config() const override;
  void set_trainable(bool on) override;
  Tensor regularization_loss() const override;
  void apply_constraints() override;
  Generator* generator() override { return options_.layer->generator(); }
  Layer& layer() { return *options_.layer; }
  const Layer& layer() const { return *options_.layer; }

 private:
  Options options_;
};

}  // namespace lamina::layers
