// Generative models on top of the Model API: a GAN trained by fit through its own train_step
// (Keras' GAN / ConditionalGAN examples), sampling from a generator or from a VAE's prior, and
// the decoder inside a VAE.
//
//   auto g = std::make_shared<Model>(...);   // inputs [z (latent,), label (1,)] -> image
//   auto d = std::make_shared<Model>(...);   // inputs [image, label (1,)] -> one logit
//   GAN gan({.generator = g, .discriminator = d, .num_classes = 10});
//   gan.fit(train, {.epochs = 10, .batch_size = 64});          // images and their labels
//   Tensor sevens = sample_generator(*g, {.count = 64, .label = 7});
//   Tensor prior = sample_generator(vae, {.count = 64});       // a model with a Sampling layer
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "lamina/model.hpp"

namespace lamina {

// A conditional generator's inputs: which is the latent vector and which the label, and how many
// classes the label takes (from the Embedding that reads it; 0 when unknown). ValueError naming
// the model when its inputs are not one vector (d,) and, optionally, one (1,) label.
struct GeneratorInputs {
  int latent = 0;      // index into the model's inputs
  int label = -1;      // -1: unconditional
  int64_t latent_dim = 0;
  int64_t num_classes = 0;
};
GeneratorInputs generator_inputs_of(const Model& generator);

// A generative adversarial network: a generator G (noise z -> sample) and a discriminator D
// (sample -> one logit, "real"), trained in turns with their own optimizers by train_step, so
// that fit, its progress bar, callbacks and History work as for any model. Conditional when
// num_classes > 0: G takes [z, label] and D [sample, label], labels being class indices as a
// (1,) input (an Embedding reads them, as in Keras' conditional GAN example); the dataset's
// targets are then the labels the real samples have.
//
// One step on a batch of n real samples, as the DCGAN paper and Keras' example:
//   D: minimise BCE(D(real), 1 - label_smoothing) + BCE(D(G(z)), 0), the fakes detached;
//   G: minimise BCE(D(G(z')), 1) on fresh noise, updating G only (the non-saturating loss).
// Each loss also carries its model's regularization_loss() (weight and activity penalties,
// add_loss). Conditional fakes get the batch's own labels, so that D sees every class as often as
// the data has it. Logs d_loss, g_loss and d_accuracy (running means over the epoch).
class GAN : public Model {
 public:
  struct Options {
    std::shared_ptr<Model> generator, discriminator;  // both built (a Functional model is)
    int64_t num_classes = 0;                           // > 0: conditional
    std::shared_ptr<Optimizer> generator_optimizer{};      // default Adam(2e-4, beta_1 0.5)
    std::shared_ptr<Optimizer> discriminator_optimizer{};  // default Adam(2e-4, beta_1 0.5)
    float label_smoothing = 0.f;                       // one-sided: real targets 1 - s
    std::optional<uint64_t> seed{};                    // the noise; default: from manual_seed's generator
    std::string name = "gan";
  };
  // Checks that the two fit together, with errors naming the models and shapes: G's inputs
  // (one latent vector, plus a (1,) label when conditional), G's output shape equal to D's
  // (first) input shape, D's output one logit per sample.
  explicit GAN(Options options);

  Logs train_step(const data::Batch& batch) override;
  // D's accuracy on a batch: how many reals it scores > 0 and fakes <= 0 (no training).
  Logs test_step(const data::Batch& batch) override;
  std::vector<Metric*> metrics() override { return {&d_loss_, &g_loss_, &d_accuracy_}; }

  Model& generator() const { return *options_.generator; }
  Model& discriminator() const { return *options_.discriminator; }
  int64_t latent_dim() const { return inputs_.latent_dim; }
  int64_t num_classes() const { return options_.num_classes; }
  // Noise (n, latent_dim) from the GAN's generator (seeded; a checkpoint would not restore it).
  Tensor noise(int64_t n);
  Generator* generator_rng() { return &gen_; }

 private:
  // The generator's inputs for n samples with these labels (ignored unless conditional).
  std::vector<Tensor> generator_inputs(int64_t n, const Tensor& labels);
  std::vector<Tensor> discriminator_inputs(const Tensor& samples, const Tensor& labels) const;
  Tensor checked_labels(const data::Batch& batch) const;

  Options options_;
  GeneratorInputs inputs_;  // which generator input is z and which the label, found once
  Generator gen_;
  Mean d_loss_{"d_loss"}, g_loss_{"g_loss"}, d_accuracy_{"d_accuracy"};
};

// What sample_generator draws.
struct SampleOptions {
  int64_t count = 64;
  std::optional<int64_t> label{};   // a conditional generator's class; required there, refused elsewhere
  std::optional<uint64_t> seed{};   // the noise; default: from manual_seed's generator
};

// The generative part of a model, by what it holds:
//  - a VAE (a model with a Sampling layer): its decoder, fed z ~ N(0, I) (the prior);
//  - a generator: one input, the latent vector (d,), fed N(0, I) noise;
//  - a conditional generator: inputs [z (d,), label (1,)] in either order, fed noise and `label`.
// Returns (count, output_shape...) in inference mode. ValueError naming the model when it is none
// of these, when --label is missing or out of range (the classes an Embedding reading the label
// has), or given to an unconditional model.
Tensor sample_generator(Model& model, const SampleOptions& options);

// The decoder of a VAE: the part of `model` downstream of its Sampling layer, as a model whose
// input is z. It shares the layers and so the weights (use it for inference: training goes
// through the VAE). ValueError when there is no Sampling layer, or the output depends on more than z.
Model vae_decoder(const Model& model);


}  // namespace lamina
