// The row-split training step of Dense chains (model/dense_chain.hpp) against the general
// autograd path, written out as a hand loop: forward through the model, the loss, grad() and
// apply_gradients. Both must leave the same weights after several steps, on 1 to 3 parts,
// with every hidden activation, with and without biases, several optimizers and losses, and a
// last batch smaller than the others.
#include <gtest/gtest.h>

#include <cmath>

#include "loss_kernels.hpp"
#include "model/dense_chain.hpp"
#include "test_util.hpp"

namespace lamina {
namespace {

struct Case {
  const char* name;
  std::function<Sequential()> model;  // built, with its weights drawn from a fixed seed
  std::function<std::shared_ptr<Optimizer>()> optimizer;
  Loss loss;
  bool one_hot;  // targets as one-hot rows instead of class indices
  int64_t classes;
};

// Normal values, with zeros where images have blank borders: every third feature is zero in
// every sample, and each block of 16 samples (a batch) has another fifth of them zero, so that
// the chain's first layer skips features (DenseChainStep::Picked) and a feature's gradient row
// turns zero and back between batches.
Tensor inputs(int64_t n, int64_t features, uint64_t seed) {
  Generator gen(seed);
  Tensor x = Tensor::randn({n, features}, gen);
  for (int64_t i = 0; i < n; ++i)
    for (int64_t f = 0; f < features; ++f)
      if (f % 3 == 0 || (f + i / 16) % 5 == 0) x.data()[i * features + f] = 0.f;
  return x;
}

Tensor targets(int64_t n, int64_t classes, bool one_hot, uint64_t seed) {
  Generator gen(seed);
  Tensor y = Tensor::zeros(one_hot ? Shape{n, classes} : Shape{n});
  for (int64_t i = 0; i < n; ++i) {
    const auto c = static_cast<int64_t>(gen.below(static_cast<uint64_t>(classes)));
    if (one_hot) {
      y.data()[i * classes + c] = 1.f;
    } else {
      y.data()[i] = static_cast<float>(c);
    }
  }
  return y;
}

std::vector<Case> cases() {
  auto built = [](Sequential m, Shape in) {
    m.build(in);
    return m;
  };
  // Fresh layers on each call (AnyLayer shares a layer), weights drawn from one seed.
  return {
      {"flatten_relu_logits_adam",
       [=] {
         manual_seed(5);
         return built(Sequential({layers::Flatten(), layers::Dense(40, "relu"), layers::Dense(7)}), Shape{3, 12});
       },
       [] { return std::make_shared<Adam>(Adam::Options{.learning_rate = 0.01}); },
       losses::SparseCategoricalCrossentropy({.from_logits = true}), false, 7},
      {"tanh_sigmoid_softmax_nesterov",
       [=] {
         manual_seed(5);
         return built(Sequential({layers::Dense(37, "tanh"), layers::Dense(33, "sigmoid"), layers::Dense(5, "softmax")}),
                      Shape{19});
       },
       [] { return std::make_shared<SGD>(SGD::Options{.learning_rate = 0.1, .momentum = 0.9, .nesterov = true}); },
       Loss("categorical_crossentropy"), true, 5},
      {"no_bias_linear_hidden_rmsprop",
       [=] {
         manual_seed(5);
         return built(Sequential({layers::Dense({.units = 48, .use_bias = false}),
                                  layers::Dense({.units = 3, .activation = "relu"}),
                                  layers::Dense({.units = 2, .use_bias = false})}),
                      Shape{30});
       },
       [] { return std::make_shared<RMSprop>(RMSprop::Options{.learning_rate = 0.01}); }, Loss("mse"), true, 2},
      {"relu_softmax_sparse_momentum",  // the digits MLP's: its loss and gradient without autograd
       [=] {
         manual_seed(5);
         return built(Sequential({layers::Dense(24, "relu"), layers::Dense(10, "softmax")}), Shape{64});
       },
       [] { return std::make_shared<SGD>(SGD::Options{.learning_rate = 0.05, .momentum = 0.9}); },
       Loss("sparse_categorical_crossentropy"), false, 10},
      {"one_layer_adamw",
       [=] {
         manual_seed(5);
         return built(Sequential({layers::Dense(4)}), Shape{50});
       },
       [] { return std::make_shared<AdamW>(AdamW::Options{.learning_rate = 0.02}); },
       losses::SparseCategoricalCrossentropy({.from_logits = true}), false, 4},
  };
}

// Batches of 16 over 70 samples (the last one of 6), `epochs` times, through the chain on
// `parts` parts, and through a hand loop on the general path; then the same weights.
TEST(DenseChain, StepsMatchTheGeneralPath) {
  for (const Case& c : cases())
    for (int parts : {1, 2, 3}) {
      SCOPED_TRACE(std::string(c.name) + ", parts " + std::to_string(parts));
      Sequential chain = c.model(), general = c.model();
      const Shape sample = chain.tensor_shapes()[0];
      const int64_t n = 70, batch = 16;
      std::vector<int64_t> dims{n};
      for (int64_t d : sample) dims.push_back(d);
      const Tensor x = reshape(inputs(n, sample.numel(), 1), Shape(dims));
      const Tensor y = targets(n, c.classes, c.one_hot, 2);
      chain.compile(c.optimizer(), c.loss);
      std::shared_ptr<Optimizer> opt = c.optimizer();
      // Every layer's weights on at least one part each: parts as asked.
      const auto step = detail::DenseChainStep::make(chain, chain.trainable_weights(), parts, 1);
      ASSERT_NE(step, nullptr);
      ASSERT_EQ(step->parts(), parts);
      for (int epoch = 0; epoch < 2; ++epoch)
        for (int64_t begin = 0; begin < n; begin += batch) {
          const int64_t end = std::min(n, begin + batch);
          data::Batch b;
          b.x = {x.slice(0, begin, end).clone()};
          b.y = {y.slice(0, begin, end).clone()};
          const auto [pred, loss] = step->forward(b);
          step->backward();

          const std::vector<Tensor> w = general.trainable_weights();
          const Tensor want_pred = general(b.x[0], /*training=*/true);
          const Tensor want_loss = c.loss(b.y[0], want_pred);
          EXPECT_NEAR(loss.item(), want_loss.item(), 1e-5 * (1 + std::abs(want_loss.item())));
          EXPECT_TRUE(testing::all_close(pred, want_pred.detach(), 1e-4, 1e-5));
          opt->apply_gradients(grad(want_loss, w), w);
        }
      const std::vector<Tensor> got = chain.trainable_weights(), want = general.trainable_weights();
      ASSERT_EQ(got.size(), want.size());
      for (size_t i = 0; i < got.size(); ++i) {
        EXPECT_TRUE(testing::all_close(got[i], want[i], 1e-4, 1e-5)) << "weight " << i;
        EXPECT_TRUE(testing::all_close(got[i].grad(), want[i].grad(), 1e-4, 1e-5)) << "gradient " << i;
      }
      EXPECT_EQ(chain.optimizer().iterations(), opt->iterations());
    }
}

// The sparse cross-entropy computed with its gradient (loss_kernels.hpp) against the ops: softmax
// then the loss on probabilities, and the loss from logits, through autograd. Rows include
// logits of +-100, whose label's probability the clip holds (no gradient) in the first form.
TEST(DenseChain, FusedSparseCrossentropyMatchesTheOps) {
  Generator gen(11);
  Tensor z = Tensor::randn({9, 6}, gen) * 3.f;
  const float extreme[6] = {100.f, 0.f, -100.f, 5.f, -5.f, 1.f};
  std::copy(extreme, extreme + 6, z.data() + 6);  // row 1, label 2 below
  const Tensor y = Tensor::from({3.f, 2.f, 0.f, 5.f, 1.f, 1.f, 4.f, 0.f, 2.f});
  for (bool softmax_output : {true, false}) {
    SCOPED_TRACE(softmax_output ? "softmax output" : "from logits");
    Tensor leaf = z.clone().requires_grad_();
    const Tensor want_pred = softmax_output ? softmax(leaf, -1) : leaf;
    Tensor want_loss = losses::SparseCategoricalCrossentropy({.from_logits = !softmax_output})(y, want_pred);
    want_loss.backward();
    Tensor pred = Tensor::empty({9, 6}), dz = Tensor::empty({9, 6});
    const double loss = detail::sparse_crossentropy_of_logits(y.data(), z.data(), 9, 6, softmax_output, pred.data(),
                                                              dz.data());
    EXPECT_NEAR(loss, want_loss.item(), 1e-6 * (1 + std::abs(want_loss.item())));
    EXPECT_TRUE(testing::all_close(pred, want_pred.detach(), 1e-6, 1e-7));
    EXPECT_TRUE(testing::all_close(dz, leaf.grad(), 1e-6, 1e-7)) << dz << leaf.grad();
    if (softmax_output) {
      for (int64_t j = 0; j < 6; ++j) EXPECT_EQ(dz.data()[6 + j], 0.f) << "row 1 is clipped: no gradient";
    }
  }
  const Tensor bad = Tensor::from({3.f, 6.f, 0.f, 5.f, 1.f, 1.f, 4.f, 0.f, 2.f});
  Tensor pred = Tensor::empty({9, 6}), dz = Tensor::empty({9, 6});
  EXPECT_THROW(detail::sparse_crossentropy_of_logits(bad.data(), z.data(), 9, 6, true, pred.data(), dz.data()), ValueError);
}

// A model large enough for the chain's two parts (over 128K weights), from a fixed seed.
Sequential two_part_mlp() {
  manual_seed(9);
  Sequential m({layers::Dense({.units = 224, .activation = "relu", .input_shape = Shape{600}}), layers::Dense(10)});
  m.build(Shape{600});
  return m;
}

// A small MLP for the chain on one part, from a fixed seed.
Sequential small_mlp() {
  manual_seed(9);
  Sequential m({layers::Dense({.units = 8, .activation = "relu", .input_shape = Shape{30}}), layers::Dense(3)});
  m.build(Shape{30});
  return m;
}

// fit of `fitted` (a fresh copy of `hand`) on x, y in batches of `batch` on `threads` threads,
// with the chain on `parts` parts: its history and weights are those of the general path's hand
// loop. SGD: Adam's m / sqrt(v) turns the rounding of a near-zero gradient into a whole step.
void expect_chain_fit_matches_hand_loop(Sequential fitted, Sequential hand, const Tensor& x, const Tensor& y,
                                        int64_t batch, int threads, int parts, const Tensor& sample_weight = {}) {
  const Loss loss = losses::SparseCategoricalCrossentropy({.from_logits = true});
  fitted.compile(SGD({.learning_rate = 0.05, .momentum = 0.9}), loss);
  ASSERT_EQ(detail::DenseChainStep::make(fitted, fitted.trainable_weights(), threads)->parts(), parts);
  History h;
  {
    testing::ThreadCount count(threads);
    h = fitted.fit(x, y,
                   {.epochs = 2, .batch_size = batch, .shuffle = false, .verbose = 0, .sample_weight = sample_weight});
  }
  SGD opt({.learning_rate = 0.05, .momentum = 0.9});
  testing::expect_fit_matches_hand_loop(h, fitted, hand, loss, opt, x, y, batch, 2);
}

// fit takes the chain for a model large enough for two parts, on two threads.
TEST(DenseChain, FitOnTwoThreadsMatchesTheGeneralPath) {
  expect_chain_fit_matches_hand_loop(two_part_mlp(), two_part_mlp(), inputs(96, 600, 3), targets(96, 10, false, 4),
                                     32, 2, 2);
}

// A kernel value that is NaN for a feature no sample uses still makes the loss NaN, as the
// general path's product (0 times NaN): the chain multiplies every feature when the first
// layer's kernel is not finite.
TEST(DenseChain, NaNKernelOfAnUnusedFeatureStillMakesTheLossNaN) {
  Sequential m = small_mlp();
  m.compile(SGD({.learning_rate = 0.01}), losses::SparseCategoricalCrossentropy({.from_logits = true}));
  const Tensor x = inputs(32, 30, 3), y = targets(32, 3, false, 4);
  Tensor kernel = m.layers()[0]->weights()[0].value;
  kernel.data()[0] = NAN;  // feature 0: zero in every sample
  ASSERT_NE(detail::DenseChainStep::make(m, m.trainable_weights(), 1), nullptr);
  const History h = m.fit(x, y, {.epochs = 1, .batch_size = 16, .shuffle = false, .verbose = 0});
  EXPECT_TRUE(std::isnan(h.history.at("loss")[0])) << h.history.at("loss")[0];
}

// A batch whose samples are all zero uses no feature: the first layer's product is its bias and
// W's gradient zero, as on the general path; the next batch uses features again.
TEST(DenseChain, AllZeroBatchMatchesTheGeneralPath) {
  Tensor x = inputs(48, 30, 3);
  std::fill_n(x.data() + 16 * 30, 16 * 30, 0.f);  // the second batch
  expect_chain_fit_matches_hand_loop(small_mlp(), small_mlp(), x, targets(48, 3, false, 4), 16, 1, 1);
}

// On several parts fit leaves each batch's x to the chain's threads (data::Batch::x_pending); a
// batch the chain declines, here one with sample weights, is gathered for the general path
// first. Weights of 1: the same history and weights as the hand loop's.
TEST(DenseChain, DeclinedBatchIsGatheredForTheGeneralPath) {
  expect_chain_fit_matches_hand_loop(two_part_mlp(), two_part_mlp(), inputs(64, 600, 3), targets(64, 10, false, 4),
                                     32, 2, 2, Tensor::ones({64}));
}

// What the chain leaves to the general path: null from make.
TEST(DenseChain, OnlyPlainDenseChainsQualify) {
  auto compiled = [](Sequential m, Shape in, std::shared_ptr<Optimizer> opt = std::make_shared<Adam>()) {
    m.build(in);
    m.compile(std::move(opt), "mse");
    return m;
  };
  auto make = [](const Sequential& m) { return detail::DenseChainStep::make(m, m.trainable_weights(), 2, 1); };
  EXPECT_NE(make(compiled(Sequential({layers::Dense(8, "relu"), layers::Dense(2)}), Shape{4})), nullptr);
  EXPECT_EQ(make(compiled(Sequential({layers::Dense(8), layers::Dropout(0.5f), layers::Dense(2)}), Shape{4})), nullptr);
  EXPECT_EQ(make(compiled(Sequential({layers::Dense(8, "softmax"), layers::Dense(2)}), Shape{4})), nullptr);
  EXPECT_EQ(make(compiled(Sequential({layers::Dense(8), layers::Dense(2)}), Shape{3, 4})), nullptr);  // per step
  EXPECT_NE(make(compiled(Sequential({layers::Flatten(), layers::Dense(2)}), Shape{3, 4})), nullptr);
  EXPECT_EQ(make(compiled(Sequential({layers::Dense({.units = 8, .kernel_regularizer = regularizers::L2(0.1f)}),
                                      layers::Dense(2)}),
                          Shape{4})),
            nullptr);
  auto clipped = std::make_shared<Adam>();
  clipped->clipnorm = 1.f;
  EXPECT_EQ(make(compiled(Sequential({layers::Dense(2)}), Shape{4}, clipped)), nullptr);
  Sequential frozen = compiled(Sequential({layers::Dense(8), layers::Dense(2)}), Shape{4});
  frozen.layers()[0]->set_trainable(false);
  EXPECT_EQ(make(frozen), nullptr);
  // Batches it leaves: weighted samples, several inputs, another width.
  const auto step = make(compiled(Sequential({layers::Dense(8, "relu"), layers::Dense(2)}), Shape{4}));
  data::Batch b{.x = {Tensor::ones({3, 4})}, .y = {Tensor::ones({3, 2})}};
  EXPECT_TRUE(step->accepts(b));
  b.sample_weight = Tensor::ones({3});
  EXPECT_FALSE(step->accepts(b));
  b.sample_weight = Tensor();
  b.x.push_back(Tensor::ones({3, 4}));
  EXPECT_FALSE(step->accepts(b));
  b.x = {Tensor::ones({3, 5})};
  EXPECT_FALSE(step->accepts(b));
  Sequential uncompiled({layers::Dense(2)});
  uncompiled.build(Shape{4});
  EXPECT_EQ(make(uncompiled), nullptr);
}

}  // namespace
}  // namespace lamina
