// Embedding: Keras' keras.layers.Embedding, integer token ids to dense vectors. Lamina's tensors
// are float32, so the ids arrive as integer-valued floats (N, T).
//
//   model.add(layers::Embedding({.input_dim = 20000, .output_dim = 128, .input_shape = Shape{200}}));
//   layers::Embedding(1000, 64);
#pragma once

#include "lamina/layers.hpp"

namespace lamina::layers {

// (batch, T) of ids in [0, input_dim) -> (batch, T, output_dim): row id of the weight
// "embeddings" (input_dim, output_dim) for each id (any per-sample shape: (...) -> (..., output_dim)).
// The gradient scatters back into the rows used (repeated ids add up). An id that is negative,
// not an integer or >= input_dim is a ValueError naming the layer, the id, its batch row and
// position. With mask_zero, id 0 is padding: mask_for gives Keras' mask (x != 0).
class Embedding : public Layer {
 public:
  struct Options {
    int64_t input_dim = 0;   // vocabulary size: the largest id + 1
    int64_t output_dim = 0;  // vector size
    Initializer embeddings_initializer = Initializer::random_uniform();  // Keras' "uniform": U(-0.05, 0.05)
    std::optional<Regularizer> embeddings_regularizer{};
    std::optional<Regularizer> activity_regularizer{};
    std::optional<Constraint> embeddings_constraint{};
    bool mask_zero = false;
    std::optional<Shape> input_shape{};  // on a first layer: (T)
    std::string name{};
  };
  explicit Embedding(Options options);
  Embedding(int64_t input_dim, int64_t output_dim)
      : Embedding(Options{.input_dim = input_dim, .output_dim = output_dim}) {}

  std::string class_name() const override { return "Embedding"; }
  // Keras 2's input_length (the sequence length, read as the input shape); Keras 3's sparse
  // (false only).
  std::vector<std::string> config_aliases() const override { return {"input_length", "sparse"}; }
  static std::shared_ptr<Layer> from_config(const Json& config);
  void export_onnx(onnx::GraphWriter& graph) const override;
  std::vector<WeightSpec> weight_specs(const Shape& input_shape) const override;
  Tensor call(const Tensor& x, bool training) override;
  Shape output_shape(const Shape& input_shape) const override;
  Json config() const override;
  const Options& options() const { return options_; }
  Tensor& embeddings() { return weights_.at(0).value; }
  // Keras' compute_mask: 1 where x != 0, 0 at padding, x's shape; undefined without mask_zero.
  Tensor mask_for(const Tensor& x) const;

 private:
  Options options_;
};

}  // namespace lamina::layers
