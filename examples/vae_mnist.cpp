// The variational autoencoder of PyTorch's examples (vae/main.py) on MNIST (issue 16), in
// Keras' Functional API with the Sampling layer:
//
//   image (28, 28) -> Flatten -> Dense(400, relu) -> z_mean (20), z_log_var (20)
//   z = Sampling(kl_weight=1)([z_mean, z_log_var])      (adds KL(q(z|x) || N(0, I)) to the loss)
//   z -> Dense(400, relu) -> Dense(784, sigmoid)          reconstruction
//   compile(Adam(1e-3), binary_crossentropy, loss_weights=[784]); fit(x, x, batch 128, 10 epochs)
//
// Pixels are x / 255 in [0, 1], not binarised. Keras' binary cross-entropy averages over the 784
// pixels, so the loss weight 784 makes it PyTorch's sum: the loss is BCE summed over pixels plus
// KL, per sample, in nats (PyTorch's example logs a test loss of 105.59 after 10 epochs).
// It writes vae_reconstructions.png (test digits, odd rows, above their reconstructions) and
// vae_samples.png (decoded draws from the prior), saves the model for `lamina generate`, and has
// the frozen LeNet judge (examples/mnist_judge.hpp) score 10,000 prior samples.
// The same model trains from the CLI: build/lamina train examples/specs/vae_mnist.json.
//
// Run: build/examples/vae_mnist [data/mnist] [epochs] [out_dir]   (scripts/fetch-data.sh mnist)
#include <cstdlib>
#include <filesystem>
#include <iostream>

#include <lamina/lamina.hpp>

#include "mnist_judge.hpp"

using namespace lamina;

int main(int argc, char** argv) try {
  const std::string dir = argc > 1 ? argv[1] : "data/mnist";
  const int epochs = argc > 2 ? std::atoi(argv[2]) : 10;
  const std::filesystem::path out = argc > 3 ? argv[3] : ".";
  std::filesystem::create_directories(out);
  const auto mnist = data::load_mnist(dir);

  manual_seed(1);
  KerasTensor image = Input({28, 28}, "image");
  KerasTensor h = layers::Dense(400, "relu")(layers::Flatten()(image));
  KerasTensor z_mean = layers::Dense({.units = 20, .name = "z_mean"})(h);
  KerasTensor z_log_var = layers::Dense({.units = 20, .name = "z_log_var"})(h);
  KerasTensor z = layers::Sampling({.kl_weight = 1.f, .name = "z"})({z_mean, z_log_var});
  KerasTensor reconstruction = layers::Dense(784, "sigmoid")(layers::Dense(400, "relu")(z));
  Model vae({image}, {reconstruction}, "vae");
  vae.compile(Adam({.learning_rate = 1e-3}), std::vector<Loss>{losses::BinaryCrossentropy()}, {.loss_weights = {784.0}});
  vae.summary();

  // An autoencoder's targets are its inputs, flattened like the output.
  auto autoencoder = [](const data::Dataset& d) {
    const Tensor x = d.all_x();
    return data::Dataset::from_tensors(x, reshape(x, Shape{x.dim(0), 784}));  // from_tensors copies
  };
  const data::Dataset train = autoencoder(mnist.train), test = autoencoder(mnist.test);
  vae.fit(train, {.epochs = epochs, .batch_size = 128, .validation_data = test, .seed = 1});
  const double loss = vae.evaluate(test, {.batch_size = 128, .verbose = 0}).at("loss");
  std::cout << "test loss (BCE summed over pixels + KL, per sample): " << loss << " nats\n";
  vae.save((out / "vae_mnist.safetensors").string());

  // 32 test digits and their reconstructions, in alternating rows of eight.
  const Tensor originals = test.all_x().slice(0, 0, 32);
  const Tensor recon = reshape(vae.predict(originals), Shape{32, 28, 28});
  std::vector<Tensor> rows;
  for (int64_t r = 0; r < 4; ++r) {
    rows.push_back(originals.slice(0, r * 8, r * 8 + 8));
    rows.push_back(recon.slice(0, r * 8, r * 8 + 8));
  }
  write_png((out / "vae_reconstructions.png").string(), image_grid(concat(rows, 0), 8, 8));
  const Tensor samples = reshape(sample_generator(vae, {.count = 10000, .seed = 2}), Shape{10000, 28, 28});
  write_png((out / "vae_samples.png").string(), image_grid(samples.slice(0, 0, 64), 8, 8));
  std::cout << "wrote " << (out / "vae_reconstructions.png").string() << " and " << (out / "vae_samples.png").string()
            << "\n";

  Sequential net = judge::load_or_train((std::filesystem::path(dir) / "lenet_judge.safetensors").string(), mnist);
  const Tensor real = mnist.test.all_x();
  const FeatureStats real_stats = feature_stats(judge::classify(net, real).second);
  Generator noise_gen(7);
  judge::print({judge::score(net, "real test digits", real, Tensor(), real_stats),
                judge::score(net, "real training digits (ceiling)", mnist.train.all_x().slice(0, 0, 10000), Tensor(), real_stats),
                judge::score(net, "VAE prior samples", samples, Tensor(), real_stats),
                judge::score(net, "uniform noise (floor)", Tensor::rand({10000, 28, 28}, noise_gen), Tensor(), real_stats)});
} catch (const lamina::Error& e) {
  std::cerr << "vae_mnist: " << e.what() << "\n";
  return 1;
}
