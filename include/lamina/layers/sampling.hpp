// The reparameterisation trick of a variational autoencoder, as the layer Keras' VAE example
// writes (`Sampling`): z = z_mean + exp(z_log_var / 2) * eps, eps ~ N(0, 1), drawn from the
// layer's own generator so that a seed fixes the draws and a checkpoint resumes them exactly.
// Gradients flow to z_mean and z_log_var through the sample (eps is a constant).
//
//   KerasTensor h = layers::Dense(400, "relu")(x);
//   KerasTensor mu = layers::Dense(20)(h), log_var = layers::Dense(20)(h);
//   KerasTensor z = layers::Sampling({.kl_weight = 1.f})({mu, log_var});
//
// With kl_weight > 0 the layer also adds the VAE's KL divergence from the prior N(0, I) to the
// model's loss (Layer::add_loss), per sample and averaged over the batch:
//   kl_weight * mean_batch(-1/2 * sum(1 + z_log_var - z_mean^2 - exp(z_log_var))),
// so that a VAE trains with compile + fit alone (the spec examples/specs/vae_mnist.json). As in
// Keras' example, it samples in training and inference alike (a VAE's predict is stochastic).
#pragma once

#include <cstdint>
#include <optional>

#include "lamina/layers.hpp"

namespace lamina {

// The two pieces, for a VAE written with a custom train_step (as PyTorch's example is):
// z = mean + exp(log_var / 2) * eps, differentiable in mean and log_var (eps is a constant), and
// the KL divergence of N(mean, exp(log_var)) from N(0, I), summed over the non-batch axes and
// averaged over the batch (axis 0): a scalar. mean and log_var of one shape (batch, ...).
Tensor reparameterize(const Tensor& mean, const Tensor& log_var, const Tensor& eps);
Tensor gaussian_kl(const Tensor& mean, const Tensor& log_var);

namespace layers {

class Sampling : public Layer {
 public:
  struct Options {
    float kl_weight = 0.f;            // 0: no loss added, Keras' example layer exactly
    std::optional<uint64_t> seed{};   // default: drawn from the model's generator at build
    std::string name{};
  };
  Sampling();
  explicit Sampling(Options options);
  std::string class_name() const override { return "Sampling"; }
  static std::shared_ptr<Layer> from_config(const Json& config);
  Json config() const override;
  float kl_weight() const { return options_.kl_weight; }

  // Two inputs of one shape: [z_mean, z_log_var].
  Shape infer_shape(std::span<const Shape> input_shapes) const override;
  std::vector<WeightSpec> weight_specs_for(std::span<const Shape> input_shapes) const override;
  void build_for(std::span<const Shape> input_shapes, Generator& gen) override;
  Tensor forward(std::span<const Tensor> inputs, bool training) override;
  Tensor call(const Tensor& x, bool training) override;  // refused: the layer takes two inputs
  Shape output_shape(const Shape& input_shape) const override;
  // RandomNormalLike(z_mean) scaled and shifted: ONNX Runtime samples too (its own generator).
  void export_onnx(onnx::GraphWriter& graph) const override;
  Generator* generator() override { return &gen_; }

 private:
  Options options_;
  Generator gen_;
};

}  // namespace layers
}  // namespace lamina
