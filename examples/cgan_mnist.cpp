// A conditional DCGAN on MNIST (issue 16), as Keras' "Conditional GAN" and DCGAN examples:
//
//   generator:     [z (64,), label] -> Embedding(10, 16) -> concat -> Dense(7*7*64) -> BN -> LeakyReLU
//                  -> Reshape(7, 7, 64), concat a 7x7 label plane (Dense(49) of the embedding)
//                  -> Conv2DTranspose(32, 4, strides 2, same) -> BN -> LeakyReLU
//                  -> Conv2DTranspose(1, 4, strides 2, same, tanh)               28 x 28 x 1 in [-1, 1]
//   discriminator: [image, label] -> label Embedding(10, 16) -> Dense(784) -> Reshape(28, 28, 1),
//                  concat with the image -> Conv2D(32, 4, s2) -> LeakyReLU(0.2) -> Dropout(0.3)
//                  -> Conv2D(64, 4, s2) -> LeakyReLU(0.2) -> Dropout(0.3) -> Flatten -> Dense(1)
//   GAN (lamina/generative.hpp): two Adam(2e-4, beta_1 0.5), one D step and one G step per batch.
//
// Then a frozen LeNet-5 (examples/mnist_judge.hpp) judges 10,000 generated digits (1,000 per
// class) against real test digits (the ceiling) and uniform noise (the floor), and the example
// writes a PNG grid with one row per digit and saves the generator for `lamina generate`.
//
// Run: build/examples/cgan_mnist [data/mnist] [epochs] [out_dir]   (scripts/fetch-data.sh mnist)
//      (epochs 0: judge the generator a previous run saved in out_dir)
//      build/lamina generate cgan_generator.safetensors --label 7 --count 64 --out sevens.png
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <iostream>

#include <lamina/lamina.hpp>

#include "mnist_judge.hpp"

using namespace lamina;

namespace {

constexpr int64_t kLatent = 64, kClasses = 10;

std::shared_ptr<Model> make_generator() {
  KerasTensor z = Input({kLatent}, "z"), label = Input({1}, "label");
  KerasTensor e = layers::Flatten()(layers::Embedding({.input_dim = kClasses, .output_dim = 16})(label));
  KerasTensor h = layers::Dense({.units = 7 * 7 * 64, .use_bias = false})(layers::Concatenate()({z, e}));
  h = layers::LeakyReLU({.negative_slope = 0.2f})(layers::BatchNormalization()(h));
  // The label again as a 7 x 7 plane beside the 64 feature maps, so the upsampling sees it too.
  KerasTensor plane = layers::Reshape(Shape{7, 7, 1})(layers::Dense(7 * 7)(e));
  h = layers::Concatenate()({layers::Reshape(Shape{7, 7, 64})(h), plane});
  h = layers::Conv2DTranspose({.filters = 32, .kernel_size = 4, .strides = 2, .padding = Padding::same, .use_bias = false})(h);
  h = layers::LeakyReLU({.negative_slope = 0.2f})(layers::BatchNormalization()(h));
  KerasTensor image = layers::Conv2DTranspose(
      {.filters = 1, .kernel_size = 4, .strides = 2, .padding = Padding::same, .activation = "tanh"})(h);
  return std::make_shared<Model>(std::vector<KerasTensor>{z, label}, std::vector<KerasTensor>{image}, "generator");
}

std::shared_ptr<Model> make_discriminator() {
  KerasTensor image = Input({28, 28, 1}, "image"), label = Input({1}, "label");
  KerasTensor e = layers::Flatten()(layers::Embedding({.input_dim = kClasses, .output_dim = 16})(label));
  KerasTensor plane = layers::Reshape(Shape{28, 28, 1})(layers::Dense(28 * 28)(e));
  KerasTensor h = layers::Concatenate()({image, plane});
  for (int64_t filters : {32, 64}) {
    h = layers::Conv2D({.filters = filters, .kernel_size = 4, .strides = 2, .padding = Padding::same})(h);
    h = layers::Dropout(0.3f)(layers::LeakyReLU({.negative_slope = 0.2f})(h));
  }
  KerasTensor logit = layers::Dense(1)(layers::Flatten()(h));
  return std::make_shared<Model>(std::vector<KerasTensor>{image, label}, std::vector<KerasTensor>{logit}, "discriminator");
}

// (N, 28, 28) in [0, 1] -> (N, 28, 28, 1) in [-1, 1], the range of the generator's tanh.
Tensor to_tanh_range(const Tensor& x) { return reshape(x * 2.f - 1.f, Shape{x.dim(0), 28, 28, 1}); }
Tensor from_tanh_range(const Tensor& x) { return reshape((x + 1.f) * 0.5f, Shape{x.dim(0), 28, 28}); }

}  // namespace

int main(int argc, char** argv) try {
  const std::string dir = argc > 1 ? argv[1] : "data/mnist";
  const int epochs = argc > 2 ? std::atoi(argv[2]) : 15;
  const std::filesystem::path out = argc > 3 ? argv[3] : ".";
  std::filesystem::create_directories(out);
  const auto mnist = data::load_mnist(dir);

  manual_seed(16);
  std::shared_ptr<Model> g;
  const std::string saved = (out / "cgan_generator.safetensors").string();
  if (epochs == 0) {  // judge the generator a previous run saved
    g = std::make_shared<Model>(Model::load(saved));
    std::cout << "generator from " << saved << "\n";
  } else {
    g = make_generator();
    auto d = make_discriminator();
    g->summary();
    d->summary();
    GAN gan({.generator = g, .discriminator = d, .num_classes = kClasses, .seed = 16});
    const data::Dataset train = data::Dataset::from_tensors(to_tanh_range(mnist.train.all_x()), mnist.train.all_y());
    const auto start = std::chrono::steady_clock::now();
    gan.fit(train, {.epochs = epochs, .batch_size = 64, .seed = 16});
    const double minutes = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count() / 60.0;
    std::cout << "trained " << epochs << " epochs in " << minutes << " min on " << get_num_threads() << " thread(s)\n";
    g->save(saved);
  }

  // One row per digit, eight samples each.
  std::vector<Tensor> rows;
  for (int64_t k = 0; k < kClasses; ++k)
    rows.push_back(from_tanh_range(sample_generator(*g, {.count = 8, .label = k, .seed = 100 + static_cast<uint64_t>(k)})));
  write_png((out / "cgan_digits.png").string(), image_grid(concat(rows, 0), kClasses, 8));
  std::cout << "wrote " << (out / "cgan_digits.png").string() << "\n";

  // The judge: 1,000 generated digits per class, the real test digits, and noise.
  Sequential net = judge::load_or_train((std::filesystem::path(dir) / "lenet_judge.safetensors").string(), mnist);
  const Tensor real = mnist.test.all_x();
  const FeatureStats real_stats = feature_stats(judge::classify(net, real).second);
  std::vector<Tensor> fakes;
  Tensor asked = Tensor::empty({kClasses * 1000});
  for (int64_t k = 0; k < kClasses; ++k) {
    fakes.push_back(from_tanh_range(sample_generator(*g, {.count = 1000, .label = k, .seed = 1000 + static_cast<uint64_t>(k)})));
    std::fill(asked.data() + k * 1000, asked.data() + (k + 1) * 1000, static_cast<float>(k));
  }
  Generator noise_gen(7);
  // The ceiling: real digits. Against the test set's own features the Frechet distance is 0 by
  // definition, so the first 10,000 training digits stand beside them.
  const Tensor train_x = mnist.train.all_x().slice(0, 0, 10000), train_y = mnist.train.all_y().slice(0, 0, 10000);
  judge::print({judge::score(net, "real test digits", real, mnist.test.all_y(), real_stats),
                judge::score(net, "real training digits (ceiling)", train_x, train_y, real_stats),
                judge::score(net, "conditional GAN", concat(fakes, 0), asked, real_stats),
                judge::score(net, "uniform noise (floor)", Tensor::rand({10000, 28, 28}, noise_gen), asked, real_stats)});
} catch (const lamina::Error& e) {
  std::cerr << "cgan_mnist: " << e.what() << "\n";
  return 1;
}
