// The VAE's pieces: reparameterize and gaussian_kl against PyTorch (fixtures from
// tests/fixtures/make_fixtures_generative.py) and central differences; the Sampling layer (its
// draws, seeds, config, errors) and Layer::add_loss, which carries its KL term into compute_loss,
// fit and evaluate.
#include <cmath>
#include <filesystem>

#include "lamina/lamina.hpp"
#include "test_util.hpp"

namespace lamina {
namespace {

using layers::Sampling;
using testing::error_of;

TEST(Generative, ReparameterizeMatchesPytorch) {
  testing::expect_matches_pytorch(
      "reparameterize", [](const std::vector<Tensor>& in) { return reparameterize(in[0], in[1], in[2]); }, 1e-5);
}

TEST(Generative, GaussianKlMatchesPytorch) {
  testing::expect_matches_pytorch("gaussian_kl", [](const std::vector<Tensor>& in) { return gaussian_kl(in[0], in[1]); },
                                  1e-5);
}

TEST(Generative, Gradchecks) {
  Generator gen(3);
  const Tensor mean = Tensor::randn({3, 4}, gen), log_var = Tensor::randn({3, 4}, gen, 0.f, 0.5f);
  const Tensor eps = Tensor::randn({3, 4}, gen);
  EXPECT_TRUE(testing::gradcheck([](const std::vector<Tensor>& in) { return reparameterize(in[0], in[1], in[2]); },
                                 {mean, log_var, eps}, {.check = {true, true, false}}));
  EXPECT_TRUE(testing::gradcheck([](const std::vector<Tensor>& in) { return gaussian_kl(in[0], in[1]); }, {mean, log_var}));
}

TEST(Generative, KlIsZeroAtThePriorAndShapesAreChecked) {
  EXPECT_NEAR(gaussian_kl(Tensor::zeros({5, 3}), Tensor::zeros({5, 3})).item(), 0.0, 1e-7);
  // One sample, one dimension: KL(N(1, e^0) || N(0, 1)) = 1/2.
  EXPECT_NEAR(gaussian_kl(Tensor::full({1, 1}, 1.f), Tensor::zeros({1, 1})).item(), 0.5, 1e-6);
  EXPECT_CONTAINS(error_of<ShapeError>([] { gaussian_kl(Tensor::zeros({2, 3}), Tensor::zeros({2, 4})); }),
                  "mean (2, 3) and log_var (2, 4)");
  EXPECT_CONTAINS(error_of<ShapeError>([] { reparameterize(Tensor::zeros({2, 3}), Tensor::zeros({2, 3}), Tensor::zeros({3})); }),
                  "eps (3)");
}

// A model from [z_mean, z_log_var] through Sampling: what the tests below call.
Model sampler(float kl_weight, std::optional<uint64_t> seed = std::nullopt) {
  KerasTensor mean = Input({4}, "z_mean"), log_var = Input({4}, "z_log_var");
  KerasTensor z = Sampling({.kl_weight = kl_weight, .seed = seed, .name = "z"})({mean, log_var});
  return Model({mean, log_var}, {z}, "sampler");
}

TEST(Sampling, DrawsMeanPlusScaledNormalNoise) {
  Model m = sampler(0.f, 7);
  Generator gen(1);
  const Tensor mean = Tensor::randn({2000, 4}, gen), log_var = Tensor::full({2000, 4}, std::log(0.25f));
  const Tensor z = m.call({mean, log_var})[0];
  // (z - mean) / 0.5 should be standard normal.
  double s = 0, s2 = 0;
  for (int64_t i = 0; i < z.numel(); ++i) {
    const double e = (z.data()[i] - mean.data()[i]) / 0.5;
    s += e, s2 += e * e;
  }
  const double n = static_cast<double>(z.numel()), mu = s / n, var = s2 / n - mu * mu;
  EXPECT_NEAR(mu, 0.0, 0.05);
  EXPECT_NEAR(var, 1.0, 0.05);
  // A tiny variance leaves the mean (the ONNX export's check relies on it).
  const Tensor exact = m.call({mean, Tensor::full({2000, 4}, -60.f)})[0];
  EXPECT_TRUE(testing::all_close(exact, mean, 0, 1e-9));
  // No loss without kl_weight.
  EXPECT_FALSE(m.regularization_loss().defined());
}

TEST(Sampling, SeedFixesTheDrawsAndEachCallDrawsAfresh) {
  const Tensor mean = Tensor::zeros({3, 4}), log_var = Tensor::zeros({3, 4});
  Model a = sampler(0.f, 5), b = sampler(0.f, 5);
  const Tensor a1 = a.call({mean, log_var})[0], a2 = a.call({mean, log_var})[0];
  const Tensor b1 = b.call({mean, log_var})[0];
  EXPECT_TRUE(testing::all_close(a1, b1, 0, 0));
  EXPECT_FALSE(testing::all_close(a1, a2, 0, 1e-3));
  // Without a seed, manual_seed decides (the layer's seed is drawn from it at build).
  manual_seed(11);
  const Tensor c1 = sampler(0.f).call({mean, log_var})[0];
  manual_seed(11);
  const Tensor c2 = sampler(0.f).call({mean, log_var})[0];
  EXPECT_TRUE(testing::all_close(c1, c2, 0, 0));
}

TEST(Sampling, AddsTheWeightedKlToTheModelLossOncePerCall) {
  Model m = sampler(0.5f, 1);
  Generator gen(2);
  const Tensor mean = Tensor::randn({6, 4}, gen), log_var = Tensor::randn({6, 4}, gen, 0.f, 0.3f);
  m.call({mean, log_var});
  const double kl = gaussian_kl(mean, log_var).item();
  ASSERT_TRUE(m.regularization_loss().defined());
  EXPECT_NEAR(m.regularization_loss().item(), 0.5 * kl, 1e-5);
  m.call({mean, log_var});  // the next call replaces the loss; it does not pile up
  EXPECT_NEAR(m.regularization_loss().item(), 0.5 * kl, 1e-5);
  // evaluate adds it to the compiled loss, as Keras adds model.losses: MSE against the draw is
  // random, but MSE with weight 0 leaves the KL alone.
  m.compile(Adam(), std::vector<Loss>{losses::MeanSquaredError()}, {.loss_weights = {0.0}});
  const Logs logs = m.evaluate({mean, log_var}, {Tensor::zeros({6, 4})}, {.batch_size = 6, .verbose = 0});
  EXPECT_NEAR(logs.at("loss"), 0.5 * kl, 1e-5);
}

TEST(Sampling, TrainingOnTheKlAloneMovesThePosteriorToThePrior) {
  // Encoder Dense layers whose only loss is the KL: fit must drive mean to 0 and log_var to 0.
  manual_seed(4);
  KerasTensor x = Input({3});
  KerasTensor mean = layers::Dense({.units = 2, .bias_initializer = Initializer::constant(1.f)})(x);
  KerasTensor log_var = layers::Dense({.units = 2, .bias_initializer = Initializer::constant(-1.f)})(x);
  KerasTensor z = Sampling({.kl_weight = 1.f})({mean, log_var});
  Model m({x}, {z});
  m.compile(Adam({.learning_rate = 0.05f}), std::vector<Loss>{losses::MeanSquaredError()}, {.loss_weights = {0.0}});
  Generator gen(5);
  const Tensor xs = Tensor::randn({64, 3}, gen);
  const Logs before = m.evaluate({xs}, {Tensor::zeros({64, 2})}, {.verbose = 0});
  m.fit({xs}, {Tensor::zeros({64, 2})}, {.epochs = 60, .batch_size = 16, .seed = 1, .verbose = 0});
  const Logs after = m.evaluate({xs}, {Tensor::zeros({64, 2})}, {.verbose = 0});
  EXPECT_GT(before.at("loss"), 0.5);
  EXPECT_LT(after.at("loss"), 0.02);
}

TEST(Sampling, ConfigRoundTripsAndBadInputIsNamed) {
  Sampling s({.kl_weight = 0.25f, .seed = 9, .name = "z"});
  const Json c = s.config();
  EXPECT_EQ(c["kl_weight"], 0.25);
  EXPECT_EQ(c["seed"], 9);
  const auto back = layer_from_config("Sampling", c);
  EXPECT_EQ(back->config(), c);
  // Keras' VAE example layer: a name and nothing else.
  EXPECT_EQ(std::dynamic_pointer_cast<Sampling>(layer_from_config("Sampling", Json{{"name", "sampling"}, {"trainable", true}}))
                ->kl_weight(),
            0.f);
  EXPECT_CONTAINS(error_of<ValueError>([] { layer_from_config("Sampling", Json{{"name", "z"}, {"kl_weight", -1}}); }),
                  "Sampling 'z': Sampling: kl_weight must be a finite number >= 0");
  EXPECT_CONTAINS(error_of<ValueError>([] { layer_from_config("Sampling", Json{{"name", "z"}, {"temperature", 2}}); }),
                  "'temperature'");
  KerasTensor a = Input({4}), b = Input({3});
  EXPECT_CONTAINS(error_of<ShapeError>([&] { Sampling({.name = "z"})({a, b}); }),
                  "Sampling 'z': z_mean (4) and z_log_var (3) must have one shape");
  EXPECT_CONTAINS(error_of<ValueError>([&] { Sampling({.name = "z"})(a); }), "takes two inputs, [z_mean, z_log_var]");
}

TEST(Sampling, SavedModelKeepsItsLossWeightAndKlTerm) {
  // A VAE compiled with loss_weights {4} (BCE summed over its 4 outputs): load gives the same loss.
  manual_seed(12);
  KerasTensor x = Input({4});
  KerasTensor h = layers::Dense(6, "relu")(x);
  KerasTensor z = Sampling({.kl_weight = 1.f, .seed = 3})({layers::Dense(2)(h), layers::Dense(2)(h)});
  Model vae({x}, {layers::Dense(4, "sigmoid")(z)}, "vae");
  vae.compile(Adam(), std::vector<Loss>{losses::BinaryCrossentropy()}, {.loss_weights = {4.0}});
  Generator gen(2);
  const Tensor xs = Tensor::rand({16, 4}, gen);
  const std::string path = (std::filesystem::temp_directory_path() / "lamina_vae_weights.safetensors").string();
  vae.save(path);
  Model back = Model::load(path);
  std::filesystem::remove(path);
  ASSERT_EQ(back.loss_weights(), std::vector<double>{4.0});
  // The same seed in both Sampling layers (saved in the config), so the draws and losses agree.
  EXPECT_NEAR(back.evaluate(xs, xs, {.batch_size = 16, .verbose = 0}).at("loss"),
              vae.evaluate(xs, xs, {.batch_size = 16, .verbose = 0}).at("loss"), 1e-5);
}

TEST(Sampling, CheckpointResumesTheDrawsExactly) {
  // A small VAE-like model trained 2 epochs in one go, and 1 + 1 through a checkpoint: the
  // Sampling layer's generator is saved, so the weights agree bit for bit.
  auto make = [] {
    manual_seed(21);
    KerasTensor x = Input({6});
    KerasTensor h = layers::Dense(8, "relu")(x);
    KerasTensor z = Sampling({.kl_weight = 1.f})({layers::Dense(2)(h), layers::Dense(2)(h)});
    Model m({x}, {layers::Dense(6, "sigmoid")(z)}, "vae");
    m.compile(Adam(), losses::BinaryCrossentropy());
    return m;
  };
  Generator gen(8);
  const Tensor xs = Tensor::rand({40, 6}, gen);
  Model whole = make();
  whole.fit(xs, xs, {.epochs = 2, .batch_size = 8, .seed = 3, .verbose = 0});
  Model first = make();
  first.fit(xs, xs, {.epochs = 1, .batch_size = 8, .seed = 3, .verbose = 0});
  const std::string path = (std::filesystem::temp_directory_path() / "lamina_sampling_ckpt.safetensors").string();
  first.save_checkpoint(path);
  Model resumed = Model::load_checkpoint(path);
  std::filesystem::remove(path);
  resumed.fit(xs, xs, {.epochs = 2, .initial_epoch = 1, .batch_size = 8, .seed = 3, .verbose = 0});
  const auto w = whole.get_weights(), r = resumed.get_weights();
  ASSERT_EQ(w.size(), r.size());
  for (size_t i = 0; i < w.size(); ++i) EXPECT_TRUE(testing::all_close(r[i], w[i], 0, 0)) << "weight " << i;
}


// --- GAN, sample_generator, vae_decoder ------------------------------------------------------------

// A conditional generator [z (2,), label (1,)] -> (1,) and its discriminator [x (1,), label].
std::shared_ptr<Model> toy_generator(int64_t classes = 2, int64_t out = 1) {
  KerasTensor z = Input({2}, "z"), label = Input({1}, "label");
  KerasTensor e = layers::Flatten()(layers::Embedding({.input_dim = classes, .output_dim = 4})(label));
  KerasTensor h = layers::Dense(16, "tanh")(layers::Concatenate()({z, e}));
  return std::make_shared<Model>(std::vector<KerasTensor>{z, label}, std::vector<KerasTensor>{layers::Dense(out)(h)}, "g");
}
std::shared_ptr<Model> toy_discriminator(int64_t in = 1, int64_t classes = 2, int64_t out = 1) {
  KerasTensor x = Input({in}, "x"), label = Input({1}, "label");
  KerasTensor e = layers::Flatten()(layers::Embedding({.input_dim = classes, .output_dim = 4})(label));
  KerasTensor h = layers::Dense(16, "tanh")(layers::Concatenate()({x, e}));
  return std::make_shared<Model>(std::vector<KerasTensor>{x, label}, std::vector<KerasTensor>{layers::Dense(out)(h)}, "d");
}

TEST(Gan, AConditionalGanLearnsEachClassMean) {
  // Class 0 is N(-2, 0.3^2), class 1 N(2, 0.3^2): the generator must place each label's samples.
  manual_seed(30);
  auto g = toy_generator(), d = toy_discriminator();
  GAN gan({.generator = g,
           .discriminator = d,
           .num_classes = 2,
           .generator_optimizer = std::make_shared<Adam>(Adam::Options{.learning_rate = 0.005, .beta_1 = 0.5}),
           .discriminator_optimizer = std::make_shared<Adam>(Adam::Options{.learning_rate = 0.005, .beta_1 = 0.5}),
           .seed = 4});
  Generator data_gen(9);
  const int64_t n = 2048;
  Tensor x = Tensor::empty({n, 1}), y = Tensor::empty({n});
  for (int64_t i = 0; i < n; ++i) {
    y.data()[i] = static_cast<float>(i % 2);
    x.data()[i] = (i % 2 ? 2.f : -2.f) + 0.3f * data_gen.normal();
  }
  History h = gan.fit(x, y, {.epochs = 30, .batch_size = 64, .seed = 2, .verbose = 0});
  ASSERT_EQ(h.history["d_loss"].size(), 30u);
  ASSERT_EQ(h.history["g_loss"].size(), 30u);
  for (int64_t k = 0; k < 2; ++k) {
    const Tensor s = sample_generator(*g, {.count = 2000, .label = k, .seed = 5});
    const double m = mean(s).item();
    std::cout << "class " << k << ": generated mean " << m << "\n";
    EXPECT_NEAR(m, k ? 2.0 : -2.0, 0.3);
  }
}

TEST(Gan, RefusesModelsThatDoNotFit) {
  manual_seed(1);
  EXPECT_CONTAINS(error_of<ShapeError>([] { GAN({.generator = toy_generator(2, 3), .discriminator = toy_discriminator(), .num_classes = 2}); }),
                  "GAN 'gan': the generator model 'g' makes samples of shape (3), the discriminator model 'd' takes (1)");
  EXPECT_CONTAINS(error_of<ShapeError>([] { GAN({.generator = toy_generator(), .discriminator = toy_discriminator(1, 2, 2), .num_classes = 2}); }),
                  "must give one logit per sample, it gives (2)");
  EXPECT_CONTAINS(error_of<ValueError>([] { GAN({.generator = toy_generator(), .discriminator = toy_discriminator()}); }),
                  "num_classes = 0 but generator model 'g' takes a label input");
  EXPECT_CONTAINS(error_of<ValueError>([] { GAN({.generator = toy_generator(), .discriminator = toy_discriminator(), .num_classes = 3}); }),
                  "the generator's label Embedding takes 2 classes");
  EXPECT_CONTAINS(error_of<ValueError>([] { GAN({.generator = toy_generator()}); }), "needs a generator and a discriminator");
  // A label outside the classes stops training with the sample named.
  GAN gan({.generator = toy_generator(), .discriminator = toy_discriminator(), .num_classes = 2});
  Tensor y = Tensor::zeros({8});
  y.data()[5] = 2.f;
  EXPECT_CONTAINS(error_of<ValueError>([&] { gan.fit(Tensor::zeros({8, 1}), y, {.batch_size = 8, .shuffle = false, .verbose = 0}); }),
                  "label 2.000000 of sample 5 in the batch is not a class index in [0, 2)");
}

TEST(SampleGenerator, ChecksLabelsAndLatentInputs) {
  manual_seed(2);
  auto g = toy_generator(4);
  EXPECT_EQ(sample_generator(*g, {.count = 5, .label = 3}).shape(), Shape({5, 1}));
  EXPECT_CONTAINS(error_of<ValueError>([&] { sample_generator(*g, {.count = 5}); }),
                  "model 'g' is a conditional generator: give the class to draw (--label K, 0 <= K < 4)");
  EXPECT_CONTAINS(error_of<ValueError>([&] { sample_generator(*g, {.count = 5, .label = 4}); }),
                  "label 4 is out of range: the generator takes classes 0 to 3");
  // The same seed draws the same samples.
  EXPECT_TRUE(testing::all_close(sample_generator(*g, {.count = 3, .label = 1, .seed = 8}),
                                 sample_generator(*g, {.count = 3, .label = 1, .seed = 8}), 0, 0));
  KerasTensor z = Input({3}, "z");
  Model plain({z}, {layers::Dense(2)(z)}, "plain");
  EXPECT_EQ(sample_generator(plain, {.count = 2}).shape(), Shape({2, 2}));
  EXPECT_CONTAINS(error_of<ValueError>([&] { sample_generator(plain, {.count = 2, .label = 1}); }),
                  "model 'plain' is not conditional (one input, the latent vector): it takes no label");
  KerasTensor image = Input({4, 4}, "image");
  Model cnn({image}, {layers::Dense(2)(layers::Flatten()(image))}, "cnn");
  EXPECT_CONTAINS(error_of<ValueError>([&] { sample_generator(cnn, {.count = 2}); }),
                  "model 'cnn': a generator takes a latent vector (d,), and for a conditional one a (1,) class label, got inputs (4, 4)");
}

TEST(VaeDecoder, IsTheGraphAfterSamplingWithTheSameWeights) {
  manual_seed(6);
  KerasTensor x = Input({5}, "x");
  KerasTensor h = layers::Dense(8, "relu")(x);
  KerasTensor z = Sampling({.kl_weight = 1.f, .name = "z"})({layers::Dense(3)(h), layers::Dense(3)(h)});
  auto d1 = std::make_shared<layers::Dense>(layers::Dense(6, "relu"));
  auto d2 = std::make_shared<layers::Dense>(layers::Dense(5, "sigmoid"));
  Model vae({x}, {(*d2)((*d1)(z))}, "vae");
  Model decoder = vae_decoder(vae);
  EXPECT_EQ(decoder.input_shapes(), std::vector<Shape>{Shape{3}});
  Generator gen(3);
  const Tensor zs = Tensor::randn({4, 3}, gen);
  const Tensor want = d2->call(d1->call(zs, false), false);
  EXPECT_TRUE(testing::all_close(decoder.predict(zs), want, 1e-6, 1e-6));
  // A latent vector of the wrong size is named.
  EXPECT_CONTAINS(error_of<ShapeError>([&] { decoder.predict(Tensor::zeros({2, 4})); }), "(4)");
  // sample_generator on the VAE decodes prior draws: the same as the decoder on N(0, I) noise.
  EXPECT_EQ(sample_generator(vae, {.count = 7, .seed = 1}).shape(), Shape({7, 5}));
  // A model without a Sampling layer has no decoder; one whose output reads the encoder is refused.
  KerasTensor a = Input({2}, "a");
  EXPECT_CONTAINS(error_of<ValueError>([&] { vae_decoder(Model({a}, {layers::Dense(2)(a)}, "ae")); }),
                  "model 'ae' has no Sampling layer");
  KerasTensor hx = layers::Dense(3)(a);
  KerasTensor zz = Sampling({.name = "s"})({hx, layers::Dense(3)(a)});
  Model skip({a}, {layers::Concatenate()({zz, hx})}, "skip");
  EXPECT_CONTAINS(error_of<ValueError>([&] { vae_decoder(skip); }),
                  "does not depend on the Sampling layer 's' alone");
}

}  // namespace
}  // namespace lamina
