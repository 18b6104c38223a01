// Five optimizer steps against torch.optim (tests/fixtures/optim_*.bin), and JSON configs.
#include <gtest/gtest.h>

#include "test_util.hpp"

namespace lamina {
namespace {

struct OptimCase {
  const char* fixture;
  std::function<std::shared_ptr<Optimizer>()> make;
};

void PrintTo(const OptimCase& c, std::ostream* os) { *os << c.fixture; }

class OptimizerTest : public ::testing::TestWithParam<OptimCase> {};

std::string key(const std::string& a, int t, int i) {
  std::string s = a;
  s += std::to_string(t);
  s += "_";
  s += std::to_string(i);
  return s;
}

TEST_P(OptimizerTest, FiveStepsMatchPyTorch) {
  const auto f = testing::load_fixture(GetParam().fixture);
  std::vector<Tensor> params = {f.at("p0").clone().requires_grad_(), f.at("p1").clone().requires_grad_()};
  auto opt = GetParam().make();
  for (int t = 1; t <= 5; ++t) {
    for (int i = 0; i < 2; ++i) params[static_cast<size_t>(i)].impl()->grad = f.at(key("g", t, i)).clone();
    opt->step(params);
    for (int i = 0; i < 2; ++i)
      EXPECT_TRUE(testing::all_close(params[static_cast<size_t>(i)], f.at(key("p", t, i)), 1e-5, 1e-6))
          << GetParam().fixture << " step " << t << " param " << i;
  }
  EXPECT_EQ(opt->iterations(), 5);
}

INSTANTIATE_TEST_SUITE_P(
    Optimizers, OptimizerTest,
    ::testing::Values(
        OptimCase{"optim_sgd", [] { return std::make_shared<SGD>(); }},
        OptimCase{"optim_sgd_momentum", [] { return std::make_shared<SGD>(SGD::Options{.momentum = 0.9f}); }},
        OptimCase{"optim_sgd_nesterov",
                  [] { return std::make_shared<SGD>(SGD::Options{.momentum = 0.9f, .nesterov = true}); }},
        OptimCase{"optim_adam", [] { return std::make_shared<Adam>(); }},
        OptimCase{"optim_adam_lr", [] { return std::make_shared<Adam>(Adam::Options{.learning_rate = 0.01f}); }},
        OptimCase{"optim_adamw", [] { return std::make_shared<AdamW>(); }},
        OptimCase{"optim_rmsprop", [] { return std::make_shared<RMSprop>(); }},
        OptimCase{"optim_rmsprop_momentum_centered",
                  [] { return std::make_shared<RMSprop>(RMSprop::Options{.momentum = 0.5f, .centered = true}); }},
        OptimCase{"optim_adagrad", [] { return std::make_shared<Adagrad>(); }}),
    [](const auto& info) { return std::string(info.param.fixture); });

// Parameters packed in one buffer take the one-pass path; loose ones the per-parameter path.
// Both must give the same numbers, for every optimizer, with and without a stale gradient.
TEST(Optimizers, FlatAndPerParameterPathsAgree) {
  const std::vector<std::function<std::shared_ptr<Optimizer>()>> makers = {
      [] { return std::make_shared<SGD>(SGD::Options{.momentum = 0.9f, .nesterov = true}); },
      [] { return std::make_shared<Adam>(Adam::Options{.amsgrad = true}); },
      [] { return std::make_shared<AdamW>(); },
      [] { return std::make_shared<RMSprop>(RMSprop::Options{.momentum = 0.5f, .centered = true}); },
      [] { return std::make_shared<Adagrad>(); }};
  for (const auto& make : makers) {
    Generator gen(3);
    const Tensor a0 = Tensor::randn({300000}, gen), b0 = Tensor::randn({7}, gen);  // a0 is split across threads
    Tensor flat = Tensor::zeros({300016 + 16});
    std::copy(a0.data(), a0.data() + a0.numel(), flat.data());
    std::copy(b0.data(), b0.data() + b0.numel(), flat.data() + 300000);
    Tensor grads = Tensor::zeros({300016 + 16});
    std::vector<Tensor> packed = {flat.view(0, {300000}), flat.view(300000, {7})};
    std::vector<Tensor> loose = {a0.clone(), b0.clone()};
    for (size_t i = 0; i < 2; ++i) {
      packed[i].requires_grad_();
      loose[i].requires_grad_();
      packed[i].impl()->grad = grads.view(i == 0 ? 0 : 300000, packed[i].shape());
    }
    auto opt_packed = make(), opt_loose = make();
    for (int t = 0; t < 4; ++t) {
      for (size_t i = 0; i < 2; ++i) {
        const Tensor g = Tensor::randn(packed[i].shape(), gen);
        std::copy(g.data(), g.data() + g.numel(), packed[i].impl()->grad.data());
        packed[i].impl()->grad_stale = false;
        loose[i].impl()->grad = g.clone();
      }
      if (t == 2) {  // a step where the second parameter got no gradient
        packed[1].zero_grad(false);
        loose[1].zero_grad();
      }
      opt_packed->step(packed);
      opt_loose->step(loose);
    }
    for (size_t i = 0; i < 2; ++i)
      EXPECT_EQ(packed[i].to_vector(), loose[i].to_vector()) << opt_packed->name() << " param " << i;
  }
}

// clipnorm, global_clipnorm and clipvalue, with plain SGD(lr 1) so the update is -gradient.
TEST(Optimizers, GradientClipping) {
  auto run = [](auto configure) {
    Tensor a = Tensor::zeros({2}).requires_grad_(), b = Tensor::zeros({1}).requires_grad_();
    a.impl()->grad = Tensor::from({3.f, 4.f});  // norm 5
    b.impl()->grad = Tensor::from({12.f});      // norm 12; joint norm 13
    SGD opt({.learning_rate = 1.f});
    configure(opt);
    opt.step({a, b});
    std::vector<float> out = a.to_vector();
    out.push_back(b.data()[0]);
    for (float& v : out) v = -v;
    return out;
  };
  auto near = [](const std::vector<float>& got, const std::vector<float>& want) {
    for (size_t i = 0; i < want.size(); ++i) EXPECT_NEAR(got[i], want[i], 1e-6) << i;
  };
  near(run([](SGD&) {}), {3.f, 4.f, 12.f});
  near(run([](SGD& o) { o.clipnorm = 1.f; }), {0.6f, 0.8f, 1.f});
  near(run([](SGD& o) { o.global_clipnorm = 2.6f; }), {0.6f, 0.8f, 2.4f});
  near(run([](SGD& o) { o.clipvalue = 3.5f; }), {3.f, 3.5f, 3.5f});
  EXPECT_THROW(run([](SGD& o) { o.clipnorm = 1.f, o.clipvalue = 1.f; }), ValueError);
  auto from_json = optimizer_from_config(Json::parse(R"({"class_name": "Adam", "config": {"clipnorm": 2.5}})"));
  EXPECT_EQ(from_json->clipnorm, 2.5f);
  EXPECT_EQ(from_json->config()["clipnorm"], 2.5f);
}

TEST(Optimizers, KerasDefaults) {
  EXPECT_EQ(SGD().learning_rate, 0.01f);
  EXPECT_EQ(Adam().options.epsilon, 1e-7);  // options are doubles: a runtime double initializes them
  EXPECT_EQ(Adam().learning_rate, 0.001f);
  EXPECT_EQ(RMSprop().options.rho, 0.9);
  EXPECT_EQ(Adagrad().options.initial_accumulator_value, 0.1);
  EXPECT_EQ(AdamW().options.weight_decay, 0.004);
}

TEST(Optimizers, FromKerasJson) {
  auto sgd = optimizer_from_config(Json::parse(R"({"class_name": "SGD", "config": {"lr": 0.05, "momentum": 0.9}})"));
  EXPECT_EQ(sgd->name(), "SGD");
  EXPECT_EQ(sgd->learning_rate, 0.05f);
  EXPECT_EQ(dynamic_cast<SGD&>(*sgd).options.momentum, 0.9);
  EXPECT_EQ(optimizer_from_config("adam")->name(), "Adam");
  EXPECT_EQ(optimizer_from_config(Json::parse(R"({"module": "keras.optimizers", "class_name": "RMSprop", "config": {"learning_rate": 0.002}, "registered_name": null})"))->learning_rate, 0.002f);
  auto round = optimizer_from_config({{"class_name", "Adam"}, {"config", Adam(Adam::Options{.beta_1 = 0.8f}).config()}});
  EXPECT_EQ(dynamic_cast<Adam&>(*round).options.beta_1, 0.8f);
  EXPECT_THROW(optimizer_from_config("lion"), ValueError);
  EXPECT_THROW(optimizer_from_config(Json::parse(R"({"class_name": "SGD", "config": {"learning_rate": "fast"}})")),
               ValueError);
}

TEST(Optimizers, SkipsParametersWithoutGradientAndChecksCount) {
  Tensor a = Tensor::ones({2}).requires_grad_(), b = Tensor::ones({2}).requires_grad_();
  a.impl()->grad = Tensor::ones({2});
  SGD opt({.learning_rate = 0.5f});
  opt.step({a, b});
  EXPECT_EQ(a.to_vector(), (std::vector<float>{0.5f, 0.5f}));
  EXPECT_EQ(b.to_vector(), (std::vector<float>{1.f, 1.f}));
  EXPECT_THROW(opt.step({a}), ValueError);
}

}  // namespace
}  // namespace lamina
