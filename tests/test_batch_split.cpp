// The batch-split training step of small CNNs (model/batch_split.hpp) against the general
// autograd path: the same gradients, prediction and loss for even and odd batches, fit's history
// and weights on two threads against a hand loop, and which models and batches qualify. Also the GradientRedirect it rests on.
#include <gtest/gtest.h>

#include <thread>

#include "gradient_redirect.hpp"
#include "model/batch_split.hpp"
#include "test_util.hpp"

namespace lamina {
namespace {

// A LeNet-like CNN on 10x10 images with every layer the step takes.
Sequential cnn(uint64_t seed) {
  manual_seed(seed);
  Sequential m({layers::Reshape({.target_shape = Shape{10, 10, 1}, .input_shape = Shape{10, 10}}),
                layers::Conv2D({.filters = 6, .kernel_size = 3, .padding = Padding::same, .activation = "relu"}),
                layers::MaxPooling2D({.pool_size = 2}), layers::Conv2D(8, 3, "tanh"),
                layers::AveragePooling2D({.pool_size = 1}), layers::Activation("sigmoid"), layers::Flatten(),
                layers::Dense(16, "relu"), layers::Dense(5)});
  m.build(Shape{10, 10});
  return m;
}

Tensor images(int64_t n, uint64_t seed) {
  Generator gen(seed);
  return Tensor::randn({n, 10, 10}, gen);
}

Tensor labels(int64_t n, int64_t classes, uint64_t seed) {
  Generator gen(seed);
  Tensor y = Tensor::empty({n});
  for (int64_t i = 0; i < n; ++i) y.data()[i] = static_cast<float>(gen.below(static_cast<uint64_t>(classes)));
  return y;
}

using testing::ThreadCount;

// One step's gradients, prediction and loss against backward through the whole batch: on two
// threads an even batch and an odd one (shares of 8 and 9 rows), on three a batch of 25 in
// shares of 8, 8 and 9; for two losses.
TEST(BatchSplit, StepMatchesTheGeneralPath) {
  for (const Loss& loss : {Loss(losses::SparseCategoricalCrossentropy({.from_logits = true})), Loss("mse")})
    for (auto [threads, n] : {std::pair<int, int64_t>{2, 16}, {2, 17}, {3, 25}}) {
      ThreadCount count(threads);
      Sequential m = cnn(3);
      m.compile(SGD(), loss);
      const std::vector<Tensor> params = m.trainable_weights();
      const auto step = detail::BatchSplitStep::make(m, params, threads);
      ASSERT_NE(step, nullptr);
      const Tensor x = images(n, 1);
      Generator gen(2);
      const Tensor y = loss.kind() == Loss::mean_squared_error ? Tensor::randn({n, 5}, gen) : labels(n, 5, 2);
      const Tensor whole_loss = loss(y, m.call(x, true));
      const std::vector<Tensor> want = grad(whole_loss, params);
      const Tensor want_pred = m.call(x, false);
      for (Tensor p : params) p.zero_grad(false);
      const data::Batch batch{.x = {x}, .y = {y}};
      ASSERT_TRUE(step->accepts(batch));
      const auto [pred, split_loss, updated] = step->run(batch, nullptr);
      EXPECT_FALSE(updated);
      const std::string what = loss.name() + " threads=" + std::to_string(threads) + " n=" + std::to_string(n);
      EXPECT_NEAR(split_loss.item(), whole_loss.item(), 1e-5) << what;
      EXPECT_TRUE(testing::all_close(pred, want_pred, 1e-5, 1e-6)) << what;
      for (size_t i = 0; i < params.size(); ++i)
        EXPECT_TRUE(testing::all_close(params[i].grad(), want[i], 1e-4, 1e-6)) << what << " parameter " << i;
    }
}

// With an optimizer, the step adds the shares' gradients and updates each thread's block of every
// parameter itself: the weights, their gradients and the optimizer's state after three steps are
// bit for bit those of run without it followed by step(), on 2 and 3 threads, for Adam and
// RMSprop (whose updates divide by a root of each gradient's square). A batch whose loss is NaN
// is left to the caller (who diagnoses it first): nothing updated.
TEST(BatchSplit, UpdateInTheStepMatchesTheStepAfter) {
  for (int threads : {2, 3})
    for (const bool adam : {true, false}) {
      ThreadCount count(threads);
      Sequential inside = cnn(7), after = cnn(7);
      auto optimizer = [&]() -> std::shared_ptr<Optimizer> {
        if (adam) return std::make_shared<Adam>(Adam::Options{.learning_rate = 0.01f});
        return std::make_shared<RMSprop>(RMSprop::Options{.learning_rate = 0.01f});
      };
      const Loss loss = losses::SparseCategoricalCrossentropy({.from_logits = true});
      inside.compile(optimizer(), loss);
      after.compile(optimizer(), loss);
      const std::vector<Tensor> pi = inside.trainable_weights(), pa = after.trainable_weights();
      const auto step_inside = detail::BatchSplitStep::make(inside, pi, threads);
      const auto step_after = detail::BatchSplitStep::make(after, pa, threads);
      ASSERT_NE(step_inside, nullptr);
      const std::string what = std::string(adam ? "Adam" : "RMSprop") + " threads=" + std::to_string(threads);
      for (int s = 0; s < 3; ++s) {
        const int64_t n = 24 + s;  // uneven shares too
        const data::Batch batch{.x = {images(n, 10 + s)}, .y = {labels(n, 5, 20 + s)}};
        for (Tensor p : pi) p.zero_grad(false);
        for (Tensor p : pa) p.zero_grad(false);
        const auto got = step_inside->run(batch, &inside.optimizer());
        const auto want = step_after->run(batch, nullptr);
        after.optimizer().step(pa);
        ASSERT_TRUE(got.updated) << what;
        EXPECT_EQ(got.loss.item(), want.loss.item()) << what;
        for (size_t i = 0; i < pi.size(); ++i) {
          EXPECT_EQ(pi[i].to_vector(), pa[i].to_vector()) << what << " step " << s << " parameter " << i;
          EXPECT_EQ(pi[i].grad().to_vector(), pa[i].grad().to_vector()) << what << " gradient " << i;
        }
      }
      for (size_t i = 0; i < pi.size(); ++i)
        for (size_t k = 0; k < inside.optimizer().state()[i].size(); ++k)
          EXPECT_EQ(inside.optimizer().state()[i][k].to_vector(), after.optimizer().state()[i][k].to_vector())
              << what << " state " << i << "/" << k;
      Tensor x = images(16, 30);
      x.data()[5] = NAN;
      const std::vector<float> before = pi[0].to_vector();
      const auto nan = step_inside->run({.x = {x}, .y = {labels(16, 5, 31)}}, &inside.optimizer());
      EXPECT_FALSE(nan.updated) << what;
      EXPECT_TRUE(std::isnan(nan.loss.item())) << what;
      EXPECT_EQ(pi[0].to_vector(), before) << what;
    }
}

// fit on two threads takes the split step: its history and weights are those of a hand loop
// over the whole batches (SGD: Adam's m / sqrt(v) turns rounding into whole steps). Each share
// gathers its own samples (data::Batch::x_pending); the last batch of each epoch, 8 rows, is too
// small to split and is gathered for the general path.
TEST(BatchSplit, FitOnTwoThreadsMatchesTheGeneralPath) {
  Sequential fitted = cnn(4), hand = cnn(4);
  const int64_t n = 40, batch = 16;
  const Tensor x = images(n, 5), y = labels(n, 5, 6);
  const Loss loss = losses::SparseCategoricalCrossentropy({.from_logits = true});
  fitted.compile(SGD({.learning_rate = 0.05, .momentum = 0.9}), loss, {"accuracy"});
  History h;
  {
    ThreadCount two(2);
    ASSERT_NE(detail::BatchSplitStep::make(fitted, fitted.trainable_weights(), 2), nullptr);
    h = fitted.fit(x, y, {.epochs = 2, .batch_size = batch, .shuffle = false, .verbose = 0});
  }
  SGD opt({.learning_rate = 0.05, .momentum = 0.9});
  ASSERT_EQ(h.history.count("accuracy"), 1u);
  testing::expect_fit_matches_hand_loop(h, fitted, hand, loss, opt, x, y, batch, 2);
}

// What the step leaves to the general path: null from make, and the batches accepts refuses.
TEST(BatchSplit, OnlyBatchFreeConvNetsQualify) {
  auto compiled = [](Sequential m, Shape in, Loss loss = "mse") {
    m.build(in);
    m.compile(std::make_shared<Adam>(), std::move(loss));
    return m;
  };
  auto make = [](const Sequential& m, int threads = 2) {
    return detail::BatchSplitStep::make(m, m.trainable_weights(), threads);
  };
  const Shape image{6, 6, 1};
  EXPECT_NE(make(compiled(Sequential({layers::Conv2D(2, 3), layers::Flatten(), layers::Dense(2)}), image)), nullptr);
  EXPECT_EQ(make(compiled(Sequential({layers::Conv2D(2, 3), layers::Flatten(), layers::Dense(2)}), image), 1), nullptr);
  EXPECT_EQ(make(compiled(Sequential({layers::Flatten(), layers::Dense(2)}), image)), nullptr);  // no convolution
  EXPECT_EQ(make(compiled(Sequential({layers::Conv2D(2, 3), layers::BatchNormalization(), layers::Flatten(),
                                      layers::Dense(2)}),
                          image)),
            nullptr);
  EXPECT_EQ(make(compiled(Sequential({layers::Conv2D(2, 3), layers::Dropout(0.5f), layers::Flatten(), layers::Dense(2)}),
                          image)),
            nullptr);
  EXPECT_EQ(make(compiled(Sequential({layers::Conv2D({.filters = 2, .kernel_size = 3,
                                                      .kernel_regularizer = regularizers::L2(0.1f)}),
                                      layers::Flatten(), layers::Dense(2)}),
                          image)),
            nullptr);
  const Loss custom([](const Tensor& t, const Tensor& p) { return sum(square(t - p)); });
  EXPECT_EQ(make(compiled(Sequential({layers::Conv2D(2, 3), layers::Flatten(), layers::Dense(2)}), image, custom)),
            nullptr);
  Sequential frozen = compiled(Sequential({layers::Conv2D(2, 3), layers::Flatten(), layers::Dense(2)}), image);
  frozen.layers()[0]->set_trainable(false);  // its weights still require grad until fit syncs them:
  EXPECT_EQ(make(frozen), nullptr);           // backward would write a weight outside the parameters
  const auto step = make(compiled(Sequential({layers::Conv2D(2, 3), layers::Flatten(), layers::Dense(2)}), image));
  data::Batch b{.x = {Tensor::ones({16, 6, 6, 1})}, .y = {Tensor::ones({16, 2})}};
  EXPECT_TRUE(step->accepts(b));
  b.sample_weight = Tensor::ones({16});
  EXPECT_FALSE(step->accepts(b));
  b.sample_weight = Tensor();
  b.x = {Tensor::ones({15, 6, 6, 1})};
  b.y = {Tensor::ones({15, 2})};
  EXPECT_FALSE(step->accepts(b));  // too few rows for two shares of kMinRows
}

// predict on two and three threads, whole chunks per thread, gives what one thread gives
// (the same chunks through the same single-threaded kernels): from a tensor and from a dataset,
// with a last chunk smaller than the others. A model with Dropout keeps the general path.
TEST(BatchSplit, PredictOnSeveralThreadsMatchesOneThread) {
  Sequential m = cnn(4);
  ASSERT_TRUE(detail::BatchSplitStep::splits_inference(m));
  const Tensor x = images(53, 6);
  const data::Dataset d = data::Dataset::from_tensors(x, labels(53, 5, 7));
  Tensor one, from_dataset_one;
  {
    ThreadCount count(1);
    one = m.predict(x, 16);
    from_dataset_one = m.predict(d, 16);
  }
  for (int threads : {2, 3}) {
    ThreadCount count(threads);
    const Tensor many = m.predict(x, 16), from_dataset = m.predict(d, 16);
    ASSERT_EQ(many.shape(), one.shape());
    for (int64_t i = 0; i < one.numel(); ++i) {
      ASSERT_EQ(many.data()[i], one.data()[i]) << "threads " << threads << ", value " << i;
      ASSERT_EQ(from_dataset.data()[i], from_dataset_one.data()[i]) << "threads " << threads << ", value " << i;
    }
  }
  Sequential dropout({layers::Reshape({.target_shape = Shape{10, 10, 1}, .input_shape = Shape{10, 10}}),
                      layers::Conv2D(4, 3), layers::Dropout(0.5), layers::Flatten(), layers::Dense(3)});
  dropout.build(Shape{10, 10});
  EXPECT_FALSE(detail::BatchSplitStep::splits_inference(dropout));
}

// Two threads differentiate through the same weight at once, one into its grad(), the other
// into a redirect: each gets its own gradient, and the redirect's scope ends with it.
TEST(GradientRedirect, TwoThreadsThroughOneWeight) {
  Generator gen(9);
  const Tensor w = Tensor::randn({4, 3}, gen).requires_grad_();
  const Tensor a = Tensor::randn({5, 4}, gen), b = Tensor::randn({5, 4}, gen);
  detail::GradientRedirect redirect({w});
  std::thread first([&] { sum(square(matmul(a, w))).backward(); });
  std::thread second([&] {
    const detail::GradientRedirect::Scope scope(redirect);
    sum(matmul(b, w)).backward();
    sum(matmul(b, w)).backward();  // adds to the redirect's buffer
  });
  first.join();
  second.join();
  const std::vector<Tensor> want_a = grad(sum(square(matmul(a, w))), {w}), want_b = grad(sum(matmul(b, w)), {w});
  EXPECT_TRUE(testing::all_close(w.grad(), want_a[0], 1e-5, 1e-6));
  EXPECT_TRUE(testing::all_close(redirect.grad(0), want_b[0] * 2.f, 1e-5, 1e-6));
  EXPECT_EQ(detail::GradientRedirect::current(), nullptr);
  redirect.clear();
  EXPECT_FALSE(redirect.grad(0).defined());
}

}  // namespace
}  // namespace lamina
