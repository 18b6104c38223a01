// Stepping off the course's programs: custom losses and metrics, sample and class weights,
// train_step / test_step overrides, hand loops with grad() and apply_gradients, learning-rate
// schedules and their callbacks, and an exact resume with them.
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>

#include "test_util.hpp"

namespace lamina {
namespace {

using testing::error_of;

// A small two-class problem: x (n, 2) around (+1, +1) for class 1 and (-1, -1) for class 0.
struct Blobs {
  Tensor x, y;
};
Blobs blobs(int64_t n, uint64_t seed, double minority = 0.5) {
  Generator gen(seed);
  Blobs b{Tensor::empty({n, 2}), Tensor::empty({n})};
  for (int64_t i = 0; i < n; ++i) {
    const bool one = static_cast<double>(gen.below(1000)) / 1000.0 < minority;
    b.y.data()[i] = one ? 1.f : 0.f;
    for (int k = 0; k < 2; ++k) b.x.data()[i * 2 + k] = (one ? 0.6f : -0.6f) + 1.2f * gen.normal();
  }
  return b;
}

Sequential classifier(uint64_t seed) {
  manual_seed(seed);
  Sequential m({layers::Dense({.units = 8, .activation = "relu", .input_shape = Shape{2}}), layers::Dense(2)});
  m.build(Shape{2});
  return m;
}

// --- custom losses ---------------------------------------------------------------------------------

TEST(CustomLoss, PerSampleLossesReduceLikeTheBuiltIn) {
  Tensor y = Tensor::from({{0.f, 1.f}, {2.f, 3.f}, {1.f, 1.f}});
  Tensor p = Tensor::from({{0.5f, 1.f}, {1.f, 3.5f}, {0.f, 2.f}});
  Loss mine([](const Tensor& t, const Tensor& q) { return mean(square(q - t), -1); }, "my_mse");
  EXPECT_NEAR(mine(y, p).item(), mean_squared_error(y, p).item(), 1e-7);
  Tensor w = Tensor::from({1.f, 0.f, 2.f});
  EXPECT_NEAR(mine(y, p, w).item(), mean_squared_error(y, p, w).item(), 1e-7);
  // By hand: per-sample (0.125, 0.625, 1.0), weighted (0.125 + 0 + 2) / 3.
  EXPECT_NEAR(mine(y, p, w).item(), (0.125 + 2.0) / 3.0, 1e-6);
  Loss scalar([](const Tensor& t, const Tensor& q) { return mean(square(q - t)); });
  EXPECT_CONTAINS(error_of<ValueError>([&] { scalar(y, p, w); }), "returned a scalar");
  Loss wrong([](const Tensor&, const Tensor& q) { return reshape(q, {6}); }, "wrong");
  EXPECT_CONTAINS(error_of<ShapeError>([&] { wrong(y, p); }), "loss 'wrong' returned (6)");
}

TEST(CustomLoss, TrainsAModelAndSavesByName) {
  Blobs b = blobs(128, 1);
  Sequential m = classifier(3);
  // A hinge-like loss written with ops: softplus of the margin, per sample.
  auto loss = [](const Tensor& y, const Tensor& logits) {
    Tensor sign = y * 2.f - 1.f;                                          // (N) in {-1, 1}
    Tensor margin = (reshape(logits, {-1, 2}) * Tensor::from({-1.f, 1.f})) * reshape(sign, {-1, 1});
    return log(exp(neg(sum(margin, 1))) + 1.f);                           // (N)
  };
  register_loss("margin_loss", loss);
  m.compile(SGD({.learning_rate = 0.1}), Loss("margin_loss"), {"accuracy"});
  History h = m.fit(b.x, b.y, {.epochs = 10, .batch_size = 16, .seed = 1, .verbose = 0});
  EXPECT_LT(h.history["loss"].back(), h.history["loss"].front());
  EXPECT_GT(h.history["accuracy"].back(), 0.7);  // the blobs overlap: about 0.76 is the best there is
  const std::string path = ::testing::TempDir() + "custom_loss.safetensors";
  m.save(path);
  Model back = Model::load(path);
  ASSERT_TRUE(back.compiled());
  EXPECT_EQ(back.loss().name(), "margin_loss");
  EXPECT_NEAR(back.evaluate(b.x, b.y, {.verbose = 0}).at("loss"), m.evaluate(b.x, b.y, {.verbose = 0}).at("loss"), 1e-6);
}

// --- custom metrics --------------------------------------------------------------------------------

struct Positives : Metric {  // the share of predictions of class 1
  double ones = 0, n = 0;
  std::string name() const override { return "positives"; }
  void reset_state() override { ones = n = 0; }
  void update_state(const Tensor&, const Tensor& p, const Tensor& = Tensor()) override {
    for (int64_t i = 0; i < p.dim(0); ++i) ones += p.data()[i * 2 + 1] > p.data()[i * 2] ? 1 : 0;
    n += static_cast<double>(p.dim(0));
  }
  double result() const override { return n ? ones / n : 0.0; }
};

TEST(CustomMetric, ByValueAndShared) {
  Blobs b = blobs(64, 2);
  Sequential m = classifier(4);
  auto shared = std::make_shared<Positives>();
  m.compile(Adam(), losses::SparseCategoricalCrossentropy({.from_logits = true}),
            CompileOptions{.metrics = {"accuracy", Positives(), shared}});
  History h = m.fit(b.x, b.y, {.epochs = 2, .batch_size = 16, .verbose = 0});
  ASSERT_TRUE(h.history.count("positives"));
  // Both instances saw the same last epoch: the value logged equals the shared object's.
  EXPECT_DOUBLE_EQ(h.history["positives"].back(), shared->result());
  Tensor pred = m.predict(b.x);
  double ones = 0;
  for (int64_t i = 0; i < 64; ++i) ones += pred.data()[i * 2 + 1] > pred.data()[i * 2];
  Logs logs = m.evaluate(b.x, b.y, {.verbose = 0});
  EXPECT_DOUBLE_EQ(logs.at("positives"), ones / 64);
}

// --- sample and class weights -------------------------------------------------------------------------

TEST(SampleWeight, ZeroWeightsIgnoreSamplesAndWeightedMetricsUseThem) {
  Blobs b = blobs(32, 5);
  Sequential m = classifier(6);
  m.compile(SGD({.learning_rate = 0.05}), losses::SparseCategoricalCrossentropy({.from_logits = true}),
            CompileOptions{.metrics = {"accuracy"}, .weighted_metrics = {"accuracy"}});
  // Weights 2 on the first half, 0 on the second: the loss is the first half's mean (x2) / 2.
  Tensor w = Tensor::zeros({32});
  for (int i = 0; i < 16; ++i) w.data()[i] = 2.f;
  Sequential copy = classifier(6);
  copy.compile(SGD({.learning_rate = 0.05}), losses::SparseCategoricalCrossentropy({.from_logits = true}));
  m.fit(b.x, b.y, {.epochs = 1, .batch_size = 32, .shuffle = false, .verbose = 0, .sample_weight = w});
  // The same step by hand: gradients of the first half's mean loss (2 * sum / 32 = mean of 16).
  Tensor x16 = b.x.view(0, {16, 2}).clone(), y16 = b.y.view(0, {16}).clone();
  copy.fit(x16, y16, {.epochs = 1, .batch_size = 16, .shuffle = false, .verbose = 0});
  auto a = m.named_weights(), c = copy.named_weights();
  for (size_t i = 0; i < a.size(); ++i) EXPECT_TRUE(testing::all_close(a[i].second, c[i].second, 1e-5, 1e-6)) << a[i].first;
  ASSERT_EQ(m.metric_names(), std::vector<std::string>{"accuracy"});
  EXPECT_THROW(m.fit(b.x, b.y, {.verbose = 0, .sample_weight = Tensor::ones({3})}), ShapeError);
}

TEST(SampleWeight, WeightedAccuracyNamesAndValues) {
  Sequential m = classifier(7);
  m.compile(SGD(), losses::SparseCategoricalCrossentropy({.from_logits = true}),
            CompileOptions{.metrics = {"accuracy"}, .weighted_metrics = {"accuracy"}});
  Tensor x = Tensor::from({{1.f, 1.f}, {-1.f, -1.f}});
  Tensor pred = m.predict(x);
  // Labels: the first right, the second wrong; weights 3 and 1.
  Tensor y = Tensor::from({pred.at({0, 1}) > pred.at({0, 0}) ? 1.f : 0.f, pred.at({1, 1}) > pred.at({1, 0}) ? 0.f : 1.f});
  data::Batch batch{.x = {x}, .y = {y}, .sample_weight = Tensor::from({3.f, 1.f})};
  m.reset_metrics();
  m.test_step(batch);
  Logs logs = m.metrics_result();
  EXPECT_DOUBLE_EQ(logs.at("accuracy"), 0.5);
  EXPECT_DOUBLE_EQ(logs.at("weighted_accuracy"), 0.75);
  EXPECT_CONTAINS(error_of<ValueError>([&] {
                    m.compile(SGD(), "mse", CompileOptions{.weighted_metrics = {"precision"}});
                  }),
                  "cannot weigh samples");
}

TEST(ClassWeight, RaisesTheRecallOfARareClass) {
  // Class 1 is 10% of the data and overlaps class 0: unweighted, the model mostly says 0.
  Blobs b = blobs(400, 9, 0.1);
  auto recall_of_one = [&](Model& m) {
    Tensor p = m.predict(b.x);
    double hit = 0, total = 0;
    for (int64_t i = 0; i < 400; ++i)
      if (b.y.data()[i] == 1.f) {
        total += 1;
        hit += p.data()[i * 2 + 1] > p.data()[i * 2];
      }
    return hit / total;
  };
  Sequential plain = classifier(11), weighted = classifier(11);
  for (Sequential* m : {&plain, &weighted})
    m->compile(Adam({.learning_rate = 0.01}), losses::SparseCategoricalCrossentropy({.from_logits = true}), {"recall"});
  plain.fit(b.x, b.y, {.epochs = 20, .batch_size = 32, .seed = 3, .verbose = 0});
  weighted.fit(b.x, b.y, {.epochs = 20, .batch_size = 32, .seed = 3, .verbose = 0, .class_weight = {{0, 1.0}, {1, 9.0}}});
  const double r_plain = recall_of_one(plain), r_weighted = recall_of_one(weighted);
  std::cout << "recall of the 10% class: unweighted " << r_plain << ", class_weight {1: 9} " << r_weighted << "\n";
  EXPECT_GT(r_weighted, r_plain + 0.15);
  EXPECT_GT(r_weighted, 0.4);

  // class_weight is sample_weight by class, batch after batch (each batch's weights are its own).
  Sequential by_class = classifier(12), by_sample = classifier(12);
  for (Sequential* m : {&by_class, &by_sample})
    m->compile(SGD({.learning_rate = 0.1}), losses::SparseCategoricalCrossentropy({.from_logits = true}));
  Tensor w = Tensor::empty({400});
  for (int64_t i = 0; i < 400; ++i) w.data()[i] = b.y.data()[i] == 1.f ? 9.f : 1.f;
  const History hc = by_class.fit(b.x, b.y, {.epochs = 2, .batch_size = 32, .seed = 3, .verbose = 0,
                                             .class_weight = {{0, 1.0}, {1, 9.0}}});
  const History hs = by_sample.fit(b.x, b.y, {.epochs = 2, .batch_size = 32, .seed = 3, .verbose = 0, .sample_weight = w});
  EXPECT_NEAR(hc.history.at("loss")[1], hs.history.at("loss")[1], 1e-5);
  EXPECT_EQ(by_class.get_weights()[0].to_vector(), by_sample.get_weights()[0].to_vector());
}

// --- train_step, test_step, hand loops ----------------------------------------------------------------

// A Sequential whose train_step counts its calls and otherwise does the default.
class CountingModel : public Sequential {
 public:
  using Sequential::Sequential;
  int steps = 0, tests = 0;
  Logs train_step(const data::Batch& batch) override {
    ++steps;
    Logs logs = Sequential::train_step(batch);
    logs.set("steps", steps);
    return logs;
  }
  Logs test_step(const data::Batch& batch) override {
    ++tests;
    return Sequential::test_step(batch);
  }
};

TEST(TrainStep, FitCallsTheOverrideWithCallbacksAndCheckpoints) {
  Blobs b = blobs(40, 12);
  manual_seed(13);
  CountingModel m({layers::Dense({.units = 4, .activation = "tanh", .input_shape = Shape{2}}), layers::Dense(2)});
  m.compile(SGD({.learning_rate = 0.1}), losses::SparseCategoricalCrossentropy({.from_logits = true}), {"accuracy"});
  const std::string path = ::testing::TempDir() + "train_step_ckpt.safetensors";
  ModelCheckpoint ckpt({.filepath = path});
  std::vector<double> seen;
  LambdaCallback cb;
  cb.batch_end = [&](int64_t, const Logs& l) { seen.push_back(l.at("steps")); };
  History h = m.fit(b.x, b.y, {.epochs = 2, .batch_size = 10, .validation_split = 0.25, .callbacks = {&ckpt, &cb}, .verbose = 0});
  EXPECT_EQ(m.steps, 6);  // 30 training samples, batches of 10, 2 epochs
  EXPECT_EQ(m.tests, 2);  // one validation batch per epoch
  EXPECT_EQ(seen.back(), 6.0);
  EXPECT_TRUE(h.history.count("val_accuracy"));
  EXPECT_TRUE(std::filesystem::exists(path));
  EXPECT_EQ(Model::load_checkpoint(path).fit_state().epoch, 2);
}

// Keras' GAN pattern: a model with no graph of its own holding a generator and a discriminator,
// two optimizers, and a train_step that alternates them. On 2-D data from N((2, -1), 0.3^2), the
// generator (an affine map of noise) must learn the mean.
class ToyGan : public Model {
 public:
  ToyGan() : Model("toy_gan") {
    manual_seed(21);
    generator = std::make_shared<Sequential>(
        Sequential({layers::Dense({.units = 2, .input_shape = Shape{2}})}, "generator"));
    discriminator = std::make_shared<Sequential>(
        Sequential({layers::Dense({.units = 16, .activation = "tanh", .input_shape = Shape{2}}), layers::Dense(1)},
                   "discriminator"));
    generator->build(Shape{2});
    discriminator->build(Shape{2});
  }
  std::vector<Metric*> metrics() override { return {&d_loss, &g_loss}; }

  Logs train_step(const data::Batch& batch) override {
    const Tensor& real = batch.x[0];
    const int64_t n = real.dim(0);
    const Tensor ones = Tensor::ones({n, 1}), zeros = Tensor::zeros({n, 1});
    Tensor fake = generator->call(Tensor::randn({n, 2}, gen), true);
    // Discriminator: real -> 1, fake -> 0, with the fakes detached (no gradient to G).
    Tensor d = binary_crossentropy(ones, discriminator->call(real, true), true) +
               binary_crossentropy(zeros, discriminator->call(fake.detach(), true), true);
    const std::vector<Tensor> dw = discriminator->trainable_weights();
    d_opt.apply_gradients(grad(d, dw), dw);
    // Generator: make D say 1 on fresh fakes; only G's weights are updated.
    Tensor g = binary_crossentropy(ones, discriminator->call(generator->call(Tensor::randn({n, 2}, gen), true), true), true);
    const std::vector<Tensor> gw = generator->trainable_weights();
    std::vector<Tensor> gg = grad(g, gw);
    g_opt.apply_gradients({{gg[0], gw[0]}, {gg[1], gw[1]}});
    d_loss.update_state(d.item(), static_cast<double>(n));
    g_loss.update_state(g.item(), static_cast<double>(n));
    Logs logs;
    logs.set("d_loss", d_loss.result());
    logs.set("g_loss", g_loss.result());
    return logs;
  }

  std::shared_ptr<Sequential> generator, discriminator;
  Adam d_opt{{.learning_rate = 0.01, .beta_1 = 0.5}}, g_opt{{.learning_rate = 0.01, .beta_1 = 0.5}};
  Mean d_loss{"d_loss"}, g_loss{"g_loss"};
  Generator gen{5};
};

TEST(TrainStep, AGanLearnsAGaussiansMean) {
  Generator data_gen(8);
  Tensor real = Tensor::empty({2048, 2});
  for (int64_t i = 0; i < 2048; ++i) {
    real.data()[i * 2] = 2.f + 0.3f * data_gen.normal();
    real.data()[i * 2 + 1] = -1.f + 0.3f * data_gen.normal();
  }
  ToyGan gan;
  History h = gan.fit(real, Tensor::zeros({2048}), {.epochs = 40, .batch_size = 64, .seed = 2, .verbose = 0});
  ASSERT_EQ(h.history["d_loss"].size(), 40u);
  NoGradGuard no_grad;
  Tensor fake = gan.generator->call(Tensor::randn({4096, 2}, gan.gen), false);
  Tensor m = mean(fake, 0);
  std::cout << "generated mean (" << m.data()[0] << ", " << m.data()[1] << "), target (2, -1)\n";
  EXPECT_NEAR(m.data()[0], 2.f, 0.1f);
  EXPECT_NEAR(m.data()[1], -1.f, 0.1f);
}

// The same GAN as a PyTorch-style loop without fit: zero_grad, backward, step, per model.
TEST(HandLoop, AGanWrittenAsAPyTorchLoop) {
  Generator data_gen(8), noise(5);
  manual_seed(21);
  Sequential g({layers::Dense({.units = 2, .input_shape = Shape{2}})}, "generator");
  Sequential d({layers::Dense({.units = 16, .activation = "tanh", .input_shape = Shape{2}}), layers::Dense(1)},
               "discriminator");
  g.build(Shape{2});
  d.build(Shape{2});
  Adam g_opt({.learning_rate = 0.01, .beta_1 = 0.5}), d_opt({.learning_rate = 0.01, .beta_1 = 0.5});
  const int64_t n = 64;
  const Tensor ones = Tensor::ones({n, 1}), zeros = Tensor::zeros({n, 1});
  for (int step = 0; step < 1200; ++step) {
    Tensor real = Tensor::empty({n, 2});
    for (int64_t i = 0; i < n; ++i) {
      real.data()[i * 2] = 2.f + 0.3f * data_gen.normal();
      real.data()[i * 2 + 1] = -1.f + 0.3f * data_gen.normal();
    }
    d.zero_grad();  // discriminator: real -> 1, fake -> 0
    Tensor fake = g(Tensor::randn({n, 2}, noise), true).detach();
    (binary_crossentropy(ones, d(real, true), true) + binary_crossentropy(zeros, d(fake, true), true)).backward();
    d_opt.step(d.trainable_weights());
    g.zero_grad();  // generator: fool the discriminator (its gradients also reach d, reset next step)
    binary_crossentropy(ones, d(g(Tensor::randn({n, 2}, noise), true), true), true).backward();
    g_opt.step(g.trainable_weights());
  }
  NoGradGuard no_grad;
  Tensor m = mean(g(Tensor::randn({4096, 2}, noise), false), 0);
  std::cout << "hand loop: generated mean (" << m.data()[0] << ", " << m.data()[1] << "), target (2, -1)\n";
  EXPECT_NEAR(m.data()[0], 2.f, 0.1f);
  EXPECT_NEAR(m.data()[1], -1.f, 0.1f);
}

TEST(HandLoop, GradAndApplyGradientsEqualFit) {
  Blobs b = blobs(16, 30);
  Sequential fitted = classifier(31), hand = classifier(31);
  fitted.compile(SGD({.learning_rate = 0.1, .momentum = 0.9}), losses::SparseCategoricalCrossentropy({.from_logits = true}));
  fitted.fit(b.x, b.y, {.epochs = 3, .batch_size = 16, .shuffle = false, .verbose = 0});
  SGD opt({.learning_rate = 0.1, .momentum = 0.9});
  for (int step = 0; step < 3; ++step) {
    const std::vector<Tensor> w = hand.trainable_weights();
    Tensor loss = sparse_categorical_crossentropy(b.y, hand(b.x, /*training=*/true), true);
    std::vector<Tensor> g = grad(loss, w);
    std::vector<std::pair<Tensor, Tensor>> pairs;
    for (size_t i = 0; i < w.size(); ++i) pairs.emplace_back(g[i], w[i]);
    opt.apply_gradients(pairs);
  }
  auto a = fitted.named_weights(), c = hand.named_weights();
  for (size_t i = 0; i < a.size(); ++i) EXPECT_TRUE(testing::all_close(a[i].second, c[i].second, 1e-5, 1e-6)) << a[i].first;
}

TEST(HandLoop, GradLeavesOtherGradientsAloneAndReachesIntermediates) {
  Tensor w = Tensor::from({1.f, 2.f}).requires_grad_();
  Tensor v = Tensor::from({3.f, 4.f}).requires_grad_();
  sum(w * v).backward();  // w.grad = v, v.grad = w
  Tensor h = w * 2.f;     // an intermediate
  Tensor y = sum(h * v);
  std::vector<Tensor> g = grad(y, {w, h});
  EXPECT_EQ(g[0].to_vector(), (std::vector<float>{6.f, 8.f}));  // dy/dw = 2 v
  EXPECT_EQ(g[1].to_vector(), (std::vector<float>{3.f, 4.f}));  // dy/dh = v
  EXPECT_EQ(w.grad().to_vector(), (std::vector<float>{3.f, 4.f}));  // untouched
  EXPECT_EQ(v.grad().to_vector(), (std::vector<float>{1.f, 2.f}));  // untouched, though y reaches v
  Tensor unused = Tensor::ones({3}).requires_grad_();
  EXPECT_EQ(grad(sum(w * 1.f), {unused})[0].to_vector(), (std::vector<float>{0.f, 0.f, 0.f}));
  Sequential m = classifier(1);
  m.compile(SGD(), "mse");
  sum(m(Tensor::ones({1, 2}), true)).backward();
  for (const Tensor& p : m.trainable_weights()) EXPECT_TRUE(p.grad().defined());
  m.zero_grad();
  for (const Tensor& p : m.trainable_weights()) EXPECT_FALSE(p.grad().defined());
  SGD opt;
  EXPECT_CONTAINS(error_of<ShapeError>([&] { opt.apply_gradients({{Tensor::ones({3}), w}}); }), "gradient 0 has shape (3)");
}

// --- learning-rate schedules -------------------------------------------------------------------------

TEST(Schedules, KerasFormulas) {
  schedules::ExponentialDecay exp_decay({.initial_learning_rate = 0.1, .decay_steps = 10, .decay_rate = 0.5});
  EXPECT_DOUBLE_EQ(exp_decay(0), 0.1);
  EXPECT_DOUBLE_EQ(exp_decay(10), 0.05);
  EXPECT_NEAR(exp_decay(5), 0.1 * std::sqrt(0.5), 1e-15);
  schedules::ExponentialDecay stairs({.initial_learning_rate = 0.1, .decay_steps = 10, .decay_rate = 0.5, .staircase = true});
  EXPECT_DOUBLE_EQ(stairs(19), 0.05);
  schedules::PiecewiseConstantDecay piece({.boundaries = {100, 200}, .values = {1.0, 0.5, 0.1}});
  EXPECT_EQ(piece(100), 1.0);  // up to and including the boundary, as Keras
  EXPECT_EQ(piece(101), 0.5);
  EXPECT_EQ(piece(5000), 0.1);
  schedules::InverseTimeDecay inv({.initial_learning_rate = 0.1, .decay_steps = 1, .decay_rate = 0.5});
  EXPECT_DOUBLE_EQ(inv(2), 0.05);
  schedules::CosineDecay cos({.initial_learning_rate = 0.1, .decay_steps = 100, .alpha = 0.1});
  EXPECT_DOUBLE_EQ(cos(0), 0.1);
  EXPECT_NEAR(cos(50), 0.1 * (0.9 * 0.5 + 0.1), 1e-15);
  EXPECT_NEAR(cos(500), 0.01, 1e-15);  // held at alpha * initial after decay_steps
  schedules::CosineDecay warm({.initial_learning_rate = 0.0, .decay_steps = 100, .warmup_target = 0.2, .warmup_steps = 10});
  EXPECT_DOUBLE_EQ(warm(5), 0.1);  // linear warm-up from 0 to 0.2
  EXPECT_DOUBLE_EQ(warm(10), 0.2);
  EXPECT_NEAR(warm(60), 0.1, 1e-15);  // half-way down the cosine from 0.2
  EXPECT_THROW(schedules::PiecewiseConstantDecay({.boundaries = {1}, .values = {1.0}}), ValueError);
}

TEST(Schedules, DriveTheOptimizerAndRoundTripKerasJson) {
  const Json keras = Json::parse(R"({"module": "keras.optimizers", "class_name": "SGD", "config": {"name": "SGD",
      "learning_rate": {"module": "keras.optimizers.schedules", "class_name": "ExponentialDecay",
        "config": {"initial_learning_rate": 0.1, "decay_steps": 1, "decay_rate": 0.5, "staircase": false,
                   "name": "ExponentialDecay"}, "registered_name": null}, "momentum": 0.0}, "registered_name": null})");
  std::shared_ptr<Optimizer> opt = optimizer_from_config(keras);
  ASSERT_TRUE(opt->schedule);
  Tensor w = Tensor::from({1.f}).requires_grad_();
  std::vector<float> after;
  for (int i = 0; i < 3; ++i) {
    opt->apply_gradients({{Tensor::from({1.f}), w}});
    after.push_back(w.data()[0]);
  }
  // Steps at rates 0.1, 0.05, 0.025.
  EXPECT_FLOAT_EQ(after[0], 0.9f);
  EXPECT_FLOAT_EQ(after[1], 0.85f);
  EXPECT_FLOAT_EQ(after[2], 0.825f);
  const Json back = opt->config();
  EXPECT_EQ(back["learning_rate"]["class_name"], "ExponentialDecay");
  EXPECT_EQ(optimizer_from_config({{"class_name", "SGD"}, {"config", back}})->schedule->config(), opt->schedule->config());
  Json bad = keras;
  bad["config"]["learning_rate"]["config"]["decay_stepz"] = 3;
  EXPECT_CONTAINS(error_of<ValueError>([&] { optimizer_from_config(bad); }), "'decay_stepz'");
}

TEST(Schedules, LoggedAsLearningRate) {
  Blobs b = blobs(32, 40);
  Sequential m = classifier(41);
  m.compile(SGD({.learning_rate = schedules::PiecewiseConstantDecay({.boundaries = {3}, .values = {0.1, 0.01}})}),
            losses::SparseCategoricalCrossentropy({.from_logits = true}));
  History h = m.fit(b.x, b.y, {.epochs = 3, .batch_size = 16, .verbose = 0});
  // Two steps per epoch: epoch 1 ends on step index 1 (0.1), epoch 2 on index 3 (0.1), epoch 3 on 5.
  EXPECT_EQ(h.history["learning_rate"], (std::vector<double>{0.1f, 0.1f, 0.01f}));
}

TEST(LrCallbacks, LearningRateSchedulerAndReduceLROnPlateau) {
  Blobs b = blobs(32, 50);
  Sequential m = classifier(51);
  m.compile(SGD({.learning_rate = 0.1}), losses::SparseCategoricalCrossentropy({.from_logits = true}));
  LearningRateScheduler lrs([](int epoch, double lr) { return epoch == 0 ? lr : lr / 2; });
  History h = m.fit(b.x, b.y, {.epochs = 3, .batch_size = 16, .callbacks = {&lrs}, .verbose = 0});
  EXPECT_EQ(h.history["learning_rate"], (std::vector<double>{0.1f, 0.05f, 0.025f}));

  // ReduceLROnPlateau on a fixed sequence of values, step by step as Keras.
  Sequential r = classifier(52);
  r.compile(SGD({.learning_rate = 1.0}), "mse");
  ReduceLROnPlateau plateau({.monitor = "val_loss", .factor = 0.5, .patience = 2, .cooldown = 1, .min_lr = 0.2});
  plateau.model = &r;
  plateau.on_train_begin({});
  const double values[] = {1.0, 0.9, 0.95, 0.92, 0.91, 0.93, 0.94, 0.95, 0.96, 0.97};
  std::vector<float> lrs_seen;
  for (int e = 0; e < 10; ++e) {
    Logs logs;
    logs.set("val_loss", values[e]);
    plateau.on_epoch_end(e, logs);
    lrs_seen.push_back(r.optimizer().learning_rate);
  }
  // Improvement until epoch 1; no improvement at 2, 3 -> halve at 3 (cooldown 1: epoch 4 does not
  // count); 5, 6 -> halve at 6; then 0.25 -> min 0.2 at 9 (cooldown at 7, wait 8, 9).
  EXPECT_EQ(lrs_seen, (std::vector<float>{1, 1, 1, 0.5f, 0.5f, 0.5f, 0.25f, 0.25f, 0.25f, 0.2f}));
  Sequential s = classifier(53);
  s.compile(SGD({.learning_rate = schedules::ExponentialDecay({})}), "mse");
  ReduceLROnPlateau refused;
  EXPECT_CONTAINS(error_of<ValueError>([&] { s.fit(b.x, Tensor::zeros({32, 2}), {.callbacks = {&refused}, .verbose = 0}); }),
                  "is a schedule");
}

TEST(LrCallbacks, ResumeFromACheckpointIsExact) {
  Blobs b = blobs(48, 60);
  auto train = [&](int epochs, const std::string& ckpt_path, Model* from) {
    Model m = from ? *from : Model(classifier(61));
    if (!from)
      m.compile(SGD({.learning_rate = 0.5, .momentum = 0.9}), losses::SparseCategoricalCrossentropy({.from_logits = true}));
    ReduceLROnPlateau plateau({.monitor = "loss", .factor = 0.5, .patience = 1, .min_delta = 0.05});
    ModelCheckpoint ckpt({.filepath = ckpt_path.empty() ? ::testing::TempDir() + "unused.safetensors" : ckpt_path});
    History h = m.fit(b.x, b.y, {.epochs = epochs, .initial_epoch = m.fit_state().epoch, .batch_size = 16, .seed = 9,
                                 .callbacks = {&ckpt, &plateau}, .verbose = 0});
    return std::make_pair(m, h);
  };
  auto [whole, h_whole] = train(8, "", nullptr);
  const std::string path = ::testing::TempDir() + "plateau_ckpt.safetensors";
  train(4, path, nullptr);
  Model resumed = Model::load_checkpoint(path);
  auto [rest, h_rest] = train(8, "", &resumed);
  EXPECT_EQ(rest.optimizer().learning_rate, whole.optimizer().learning_rate);
  auto a = whole.named_weights(), c = rest.named_weights();
  for (size_t i = 0; i < a.size(); ++i) EXPECT_EQ(a[i].second.to_vector(), c[i].second.to_vector()) << a[i].first;
  std::vector<double> tail(h_whole.history["learning_rate"].begin() + 4, h_whole.history["learning_rate"].end());
  EXPECT_EQ(h_rest.history["learning_rate"], tail);
}


// --- model handling -----------------------------------------------------------------------------------

TEST(ModelHandling, CloneIsDeepAndCopyShares) {
  Blobs b = blobs(32, 70);
  Sequential a = classifier(71);
  a.compile(SGD({.learning_rate = 0.1}), losses::SparseCategoricalCrossentropy({.from_logits = true}), {"accuracy"});
  Sequential shared = a;        // a handle: the same layers
  Sequential deep = a.clone();  // its own weights, compiled alike
  ASSERT_TRUE(deep.compiled());
  EXPECT_EQ(deep.metric_names(), a.metric_names());
  const std::vector<Tensor> before = a.get_weights();
  a.fit(b.x, b.y, {.epochs = 1, .verbose = 0});
  const std::vector<Tensor> after = a.get_weights(), in_shared = shared.get_weights(), in_deep = deep.get_weights();
  EXPECT_NE(after[0].to_vector(), before[0].to_vector());
  EXPECT_EQ(in_shared[0].to_vector(), after[0].to_vector());
  for (size_t i = 0; i < before.size(); ++i) EXPECT_EQ(in_deep[i].to_vector(), before[i].to_vector());
  deep.fit(b.x, b.y, {.epochs = 1, .verbose = 0});  // trains on its own
}

TEST(ModelHandling, GetAndSetWeightsInKerasOrder) {
  Sequential m = classifier(72);
  std::vector<Tensor> w = m.get_weights();
  ASSERT_EQ(w.size(), 4u);  // kernel, bias, kernel, bias
  EXPECT_EQ(w[0].shape(), (Shape{2, 8}));
  EXPECT_EQ(w[3].shape(), (Shape{2}));
  w[3].fill_(0.5f);
  m.set_weights(w);
  EXPECT_EQ(m.get_weights()[3].to_vector(), (std::vector<float>{0.5f, 0.5f}));
  w[1] = Tensor::zeros({3});
  EXPECT_CONTAINS(error_of<ShapeError>([&] { m.set_weights(w); }), "weight 1 ('dense/bias') has shape (8), given (3)");
  EXPECT_EQ(m.get_weights()[3].to_vector(), (std::vector<float>{0.5f, 0.5f}));  // nothing changed
  EXPECT_CONTAINS(error_of<ValueError>([&] { m.set_weights({}); }), "has 4 weights, given 0");
}

TEST(ModelHandling, PredictOnOneSampleWithoutABatchAxisHints) {
  manual_seed(1);
  Sequential m({layers::Flatten({.input_shape = Shape{4, 3}}), layers::Dense(2)});
  const std::string msg = error_of<ShapeError>([&] { m.predict(Tensor::ones({4, 3})); });
  EXPECT_CONTAINS(msg, "without a batch axis");
  EXPECT_CONTAINS(msg, "reshape(x, (1, 4, 3))");
  EXPECT_EQ(m.predict(reshape(Tensor::ones({4, 3}), {1, 4, 3})).shape(), (Shape{1, 2}));
}

TEST(ModelHandling, RuntimeDoubleLearningRates) {
  const double lr = 0.05, momentum = 0.5;  // runtime values: no narrowing in the braces
  SGD sgd({.learning_rate = lr, .momentum = momentum});
  EXPECT_FLOAT_EQ(sgd.learning_rate, 0.05f);
  Sequential m = classifier(73);
  m.compile(Adam({.learning_rate = lr}), "mse");
  EXPECT_FLOAT_EQ(m.optimizer().learning_rate, 0.05f);
}

}  // namespace
}  // namespace lamina
