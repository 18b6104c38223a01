// Bidirectional: Keras' wrapper that runs a recurrent layer over the sequence both ways and merges
// the two (keras.layers.Bidirectional).
//
//   model.add(layers::Bidirectional(layers::LSTM({.units = 64, .return_sequences = true})));  // (N, T, 128)
//   model.add(layers::Bidirectional(layers::GRU({.units = 32}), {.merge_mode = "sum"}));       // (N, 32)
//   KerasTensor y = layers::Bidirectional(layers::LSTM({.units = 8, .return_state = true}))(x);
//   // y, then y.output(1..4): forward h, c, backward h, c (Keras' order)
#pragma once

#include <memory>

#include "lamina/layers/recurrent.hpp"

namespace lamina::layers {

// The forward layer is a copy of `layer` named "forward_<name>"; the backward one, unless given, a
// copy with go_backwards flipped named "backward_<name>". With return_sequences the backward
// output is flipped back to the input's time order before merging, so step t of the result sees
// x[0..t] forwards and x[t..T-1] backwards; without it, each direction gives its final output (the
// backward one's covers x[0] last). merge_mode: "concat" (last axis, forward first), "sum", "mul",
// "ave", or "none" (Keras' None): two outputs, forward then backward. With return_state the
// states follow: the forward layer's, then the backward layer's. A mask reaches both directions.
// Weights: the forward layer's then the backward layer's, named "forward_lstm/kernel", ...
class Bidirectional : public Layer {
 public:
  struct Options {
    std::string merge_mode = "concat";
    std::shared_ptr<Recurrent> backward_layer{};  // Keras' backward_layer: a layer of the same class
    std::optional<Shape> input_shape{};            // (timesteps, features)
    std::string name{};
  };
  explicit Bidirectional(const Layer& layer) : Bidirectional(layer, Options{}) {}
  Bidirectional(const Layer& layer, Options options);
  Bidirectional(const Bidirectional& other);  // copies both inner layers
  Bidirectional& operator=(const Bidirectional&) = delete;

  std::string class_name() const override { return "Bidirectional"; }
  static std::shared_ptr<Layer> from_config(const Json& config);
  Json config() const override;

  void build(const Shape& input_shape, Generator& gen) override;
  void build_for(std::span<const Shape> input_shapes, Generator& gen) override;
  std::vector<WeightSpec> weight_specs(const Shape& input_shape) const override;
  std::vector<WeightSpec> weight_specs_for(std::span<const Shape> input_shapes) const override;
  Shape output_shape(const Shape& input_shape) const override;
  Shape infer_shape(std::span<const Shape> input_shapes) const override;
  std::vector<Shape> infer_shapes(std::span<const Shape> input_shapes) const override;
  size_t output_count() const override;
  Tensor call(const Tensor& x, bool training) override;
  Tensor forward(std::span<const Tensor> inputs, bool training) override;
  bool supports_masking() const override { return true; }
  Outputs call_all(std::span<const Tensor> inputs, std::span<const Tensor> masks, bool training) override;

  void set_trainable(bool on) override;
  std::vector<bool> trainable_mask() const override;
  Tensor regularization_loss() const override;
  void apply_constraints() override;
  // One ONNX node with direction "bidirectional" and the merge after it (src/layers/recurrent_onnx.cpp);
  // initial states, return_state, merge_mode None and unlike directions are refused.
  void export_onnx(onnx::GraphWriter& graph) const override;
  Generator* generator() override { return forward_->generator(); }

  Recurrent& forward_layer() { return *forward_; }
  Recurrent& backward_layer() { return *backward_; }
  const std::string& merge_mode() const { return merge_mode_; }

 private:
  // The per-direction input shapes: x's, then that direction's initial states.
  std::vector<Shape> direction_shapes(std::span<const Shape> input_shapes, bool backward) const;
  void collect_weights();

  std::shared_ptr<Recurrent> forward_, backward_;
  std::string merge_mode_;
};

}  // namespace lamina::layers
