// lamina::explain against PyTorch: Captum's methods written out in plain PyTorch
// (tests/fixtures/make_explain_fixtures.py, independent of src/explain) on three tiny models
// whose weights the fixtures carry: a CNN (as a Sequential and as a Functional model), a tanh
// MLP and an Embedding text model explained at its embedding.
#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <map>
#include <string>
#include <vector>

#include "lamina/explain.hpp"
#include "test_util.hpp"

namespace lamina {
namespace {

using testing::all_close;
using testing::load_fixture;
using Fixture = std::map<std::string, Tensor>;

// The references are float64 stored as float32; Lamina computes in float32.
constexpr double kRtol = 1e-5, kAtol = 1e-6;
// A delta is sum(attributions) - (f(x) - f(baseline)): a difference of float32 sums of values
// up to ~10 (the CNN's logits), so a float32 rounding of those is its floor.
constexpr double kDeltaAtol = 2e-5;

const char* const kRules[] = {"riemann_left", "riemann_right", "riemann_middle", "riemann_trapezoid",
                              "gausslegendre"};

explain::Target target_of(const Fixture& f) {
  explain::Target t;
  for (float v : f.at("target").values()) t.push_back(static_cast<int64_t>(v));
  return t;
}

Sequential cnn_sequential(const Fixture& f) {
  Sequential m({layers::Conv2D({.filters = 3, .kernel_size = 3, .activation = "relu", .input_shape = Shape{6, 6, 1},
                                .name = "conv"}),
                layers::Flatten(), layers::Dense({.units = 4, .name = "dense"})});
  m.build(Shape{6, 6, 1});
  m.set_weights({f.at("conv.kernel"), f.at("conv.bias"), f.at("dense.kernel"), f.at("dense.bias")});
  return m;
}

Model cnn_functional(const Fixture& f) {
  KerasTensor x = Input({6, 6, 1}, "image");
  KerasTensor a = layers::Conv2D({.filters = 3, .kernel_size = 3, .activation = "relu", .name = "conv"})(x);
  KerasTensor y = layers::Dense({.units = 4, .name = "dense"})(layers::Flatten()(a));
  Model m(x, y, "cnn");
  m.set_weights({f.at("conv.kernel"), f.at("conv.bias"), f.at("dense.kernel"), f.at("dense.bias")});
  return m;
}

Sequential mlp(const Fixture& f) {
  Sequential m({layers::Dense({.units = 6, .activation = "tanh", .input_shape = Shape{5}, .name = "hidden"}),
                layers::Dense({.units = 3, .name = "out"})});
  m.build(Shape{5});
  m.set_weights({f.at("hidden.kernel"), f.at("hidden.bias"), f.at("out.kernel"), f.at("out.bias")});
  return m;
}

Sequential text_model(const Fixture& f) {
  Sequential m({layers::Embedding({.input_dim = 10, .output_dim = 4, .input_shape = Shape{5}, .name = "embedding"}),
                layers::GlobalAveragePooling1D(),
                layers::Dense({.units = 6, .activation = "tanh", .name = "hidden"}),
                layers::Dense({.units = 3, .name = "out"})});
  m.build(Shape{5});
  m.set_weights({f.at("embedding.embeddings"), f.at("hidden.kernel"), f.at("hidden.bias"), f.at("out.kernel"),
                 f.at("out.bias")});
  return m;
}

// Both kinds of CNN, each checked in turn under a trace naming it.
struct Cnns {
  Fixture f = load_fixture("explain_cnn");
  Sequential seq = cnn_sequential(f);
  Model fun = cnn_functional(f);
  std::vector<std::pair<std::string, Model*>> all() { return {{"Sequential", &seq}, {"Functional", &fun}}; }
};

// The fixture's name for Lamina's rule: Lamina's riemann_trapezoid weighs Captum's points by the
// textbook trapezoid rule (weights summing to 1, explain.hpp), the fixture's
// riemann_trapezoid_exact; the fixture's riemann_trapezoid is Captum's (weights 1/n, summing to
// 1 - 1/n), every attribution (n - 1) / n times Lamina's.
std::string reference_rule(const std::string& rule) {
  return rule == "riemann_trapezoid" ? "riemann_trapezoid_exact" : rule;
}

// IG with every rule at 7 steps from a zero baseline (at `layer`: the layer's output for ids
// 0), against <prefix>_<rule> and its delta.
void expect_ig_rules(Model& m, const Fixture& f, const std::string& prefix = "ig", const std::string& layer = "") {
  const explain::Target target = target_of(f);
  for (const char* rule : kRules) {
    SCOPED_TRACE(rule);
    const auto r = explain::integrated_gradients(
        m, f.at("x"), {.target = target, .steps = 7, .rule = explain::rule_from_string(rule), .layer = layer});
    const std::string key = prefix + "_" + reference_rule(rule);
    EXPECT_TRUE(all_close(r.attributions, f.at(key), kRtol, kAtol));
    EXPECT_TRUE(all_close(r.delta, f.at(key + ".delta"), kRtol, kDeltaAtol));
    EXPECT_EQ(r.target, target);
    if (std::string(rule) == "riemann_trapezoid") {
      EXPECT_TRUE(all_close(mul(r.attributions, 6.f / 7.f), f.at(prefix + "_riemann_trapezoid"), kRtol, kAtol))
          << "Captum's trapezoid weights";
    }
  }
}

TEST(ExplainTorch, ForwardMatchesTheReference) {
  Cnns c;
  for (auto& [kind, m] : c.all()) EXPECT_TRUE(all_close(m->call(c.f.at("x")), c.f.at("y"), kRtol, kAtol)) << kind;
  const Fixture fm = load_fixture("explain_mlp"), ft = load_fixture("explain_text");
  Sequential m = mlp(fm), t = text_model(ft);
  EXPECT_TRUE(all_close(m.call(fm.at("x")), fm.at("y"), kRtol, kAtol));
  EXPECT_TRUE(all_close(t.call(ft.at("x")), ft.at("y"), kRtol, kAtol));
}

TEST(ExplainTorch, QuadratureIsCaptums) {
  const Fixture f = load_fixture("explain_mlp");
  for (const char* rule : kRules) {
    SCOPED_TRACE(rule);
    const explain::Quadrature q = explain::quadrature(explain::rule_from_string(rule), 7);
    EXPECT_EQ(explain::to_string(explain::rule_from_string(rule)), rule);
    // Captum's points for every rule; its weights but for the trapezoid's (see reference_rule)
    EXPECT_TRUE(all_close(Tensor::from(std::vector<float>(q.alphas.begin(), q.alphas.end()), Shape{7}),
                          f.at(std::string("quad_") + rule + ".alphas"), 1e-6, 1e-7));
    EXPECT_TRUE(all_close(Tensor::from(std::vector<float>(q.weights.begin(), q.weights.end()), Shape{7}),
                          f.at("quad_" + reference_rule(rule) + ".weights"), 1e-6, 1e-7));
  }
}

TEST(ExplainTorchCnn, SaliencyAndInputXGradient) {
  Cnns c;
  const explain::Target target = target_of(c.f);
  for (auto& [kind, m] : c.all()) {
    SCOPED_TRACE(kind);
    EXPECT_TRUE(all_close(explain::saliency(*m, c.f.at("x"), {.target = target}), c.f.at("saliency"), kRtol, kAtol));
    EXPECT_TRUE(all_close(explain::input_x_gradient(*m, c.f.at("x"), {.target = target}), c.f.at("input_x_gradient"),
                          kRtol, kAtol));
  }
}

TEST(ExplainTorchCnn, IntegratedGradientsEveryRule) {
  Cnns c;
  for (auto& [kind, m] : c.all()) {
    SCOPED_TRACE(kind);
    expect_ig_rules(*m, c.f);
  }
}

// A per-sample baseline (N, 6, 6, 1), 20 steps of the default rule (Gauss-Legendre); the
// internal batch split (3 path points per pass, so 20 steps x 2 samples take 14 passes) changes
// nothing.
TEST(ExplainTorchCnn, IntegratedGradientsBaselineAndInternalBatches) {
  Cnns c;
  for (auto& [kind, m] : c.all()) {
    SCOPED_TRACE(kind);
    explain::IntegratedGradientsOptions o{.target = target_of(c.f), .baseline = c.f.at("baseline"), .steps = 20};
    for (int64_t internal : {0, 3}) {
      SCOPED_TRACE(internal);
      o.internal_batch_size = internal;
      const auto r = explain::integrated_gradients(*m, c.f.at("x"), o);
      EXPECT_TRUE(all_close(r.attributions, c.f.at("ig_baseline"), kRtol, kAtol));
      EXPECT_TRUE(all_close(r.delta, c.f.at("ig_baseline.delta"), kRtol, kDeltaAtol));
    }
  }
}

// NoiseTunnel's reductions with the fixture's noise. Lamina draws its own noise, so the method
// handed to noise_tunnel explains x_i + noise[s, i] in place of the noisy row it is given, the
// s-th time it meets a row of sample i (which sample: the nearest input; Lamina's noise is
// drawn tiny so that is never in doubt). The reductions are symmetric in the noise samples, so
// how noise_tunnel orders and batches its rows does not matter, only that each sample's S
// attributions are reduced together.
Tensor tunnel_with_fixture_noise(Model& m, const Fixture& f, explain::NoiseType type) {
  const Tensor x = f.at("x"), noise = f.at("noise");
  const int64_t samples = noise.dim(0), n = x.dim(0), d = x.numel() / n;
  const explain::Target target = target_of(f);
  std::vector<int64_t> seen(static_cast<size_t>(n), 0);
  const explain::Method method = [&](const Tensor& z) {
    const int64_t rows = z.dim(0);
    EXPECT_EQ(z.numel(), rows * d) << z.shape();
    Tensor replaced = Tensor::empty(z.shape());
    explain::Target row_target(static_cast<size_t>(rows));
    for (int64_t r = 0; r < rows; ++r) {
      int64_t best = 0;
      double best_dist = std::numeric_limits<double>::infinity();
      for (int64_t i = 0; i < n; ++i) {
        double dist = 0.0;
        for (int64_t k = 0; k < d; ++k) dist += std::pow(z.data()[r * d + k] - x.data()[i * d + k], 2.0);
        if (dist < best_dist) best = i, best_dist = dist;
      }
      const int64_t s = seen[static_cast<size_t>(best)]++;
      if (s >= samples) throw ValueError("noise_tunnel explained sample " + std::to_string(best) + " more than " +
                                         std::to_string(samples) + " times");
      for (int64_t k = 0; k < d; ++k)
        replaced.data()[r * d + k] = x.data()[best * d + k] + noise.data()[(s * n + best) * d + k];
      row_target[static_cast<size_t>(r)] = target[static_cast<size_t>(best)];
    }
    return explain::saliency(m, replaced, {.target = row_target});
  };
  const Tensor out = explain::noise_tunnel(
      method, x, {.type = type, .samples = static_cast<int>(samples), .stdev = 1e-4f, .seed = 7});
  for (int64_t i = 0; i < n; ++i) EXPECT_EQ(seen[static_cast<size_t>(i)], samples) << "sample " << i;
  return out;
}

TEST(ExplainTorchCnn, NoiseTunnelReductions) {
  Cnns c;
  for (auto& [kind, m] : c.all()) {
    SCOPED_TRACE(kind);
    for (const char* type : {"smoothgrad", "smoothgrad_sq", "vargrad"}) {
      SCOPED_TRACE(type);
      EXPECT_TRUE(all_close(tunnel_with_fixture_noise(*m, c.f, explain::noise_type_from_string(type)), c.f.at(type),
                            kRtol, kAtol));
    }
  }
}

TEST(ExplainTorchCnn, Occlusion) {
  Cnns c;
  for (auto& [kind, m] : c.all()) {
    SCOPED_TRACE(kind);
    const Tensor a = explain::occlusion(
        *m, c.f.at("x"),
        {.target = target_of(c.f), .window = Shape{2, 2, 1}, .strides = Shape{1, 1, 1}, .baseline = 0.5f});
    EXPECT_TRUE(all_close(a, c.f.at("occlusion"), kRtol, kAtol));
    // one window position per pass: 25 passes, the same sums
    const Tensor b = explain::occlusion(*m, c.f.at("x"),
                                        {.target = target_of(c.f), .window = Shape{2, 2, 1},
                                         .strides = Shape{1, 1, 1}, .baseline = 0.5f, .perturbations_per_eval = 1});
    EXPECT_TRUE(all_close(b, c.f.at("occlusion"), kRtol, kAtol));
  }
}

TEST(ExplainTorchCnn, GradCam) {
  Cnns c;
  const explain::Target target = target_of(c.f);
  for (auto& [kind, m] : c.all()) {
    SCOPED_TRACE(kind);
    const Tensor& x = c.f.at("x");
    EXPECT_TRUE(all_close(explain::grad_cam(*m, x, {.target = target, .layer = "conv"}), c.f.at("gradcam"), kRtol,
                          kAtol));
    EXPECT_TRUE(all_close(explain::grad_cam(*m, x, {.target = target, .layer = "conv", .upsample = false}),
                          c.f.at("gradcam_small"), kRtol, kAtol));
    EXPECT_TRUE(all_close(explain::grad_cam(*m, x, {.target = target, .layer = "conv", .relu = false}),
                          c.f.at("gradcam_norelu"), kRtol, kAtol));
    // no layer named: the last one with a rank-4 output, "conv" here
    EXPECT_TRUE(all_close(explain::grad_cam(*m, x, {.target = target}), c.f.at("gradcam"), kRtol, kAtol));
  }
}

TEST(ExplainTorchMlp, GradientMethods) {
  const Fixture f = load_fixture("explain_mlp");
  Sequential m = mlp(f);
  const explain::Target target = target_of(f);
  EXPECT_TRUE(all_close(explain::saliency(m, f.at("x"), {.target = target}), f.at("saliency"), kRtol, kAtol));
  EXPECT_TRUE(all_close(explain::input_x_gradient(m, f.at("x"), {.target = target}), f.at("input_x_gradient"), kRtol,
                        kAtol));
  expect_ig_rules(m, f);
  // one sample's baseline (5) for both samples, the middle rule, 20 steps
  const auto r = explain::integrated_gradients(
      m, f.at("x"),
      {.target = target, .baseline = f.at("baseline"), .steps = 20, .rule = explain::Rule::riemann_middle});
  EXPECT_TRUE(all_close(r.attributions, f.at("ig_baseline"), kRtol, kAtol));
  EXPECT_TRUE(all_close(r.delta, f.at("ig_baseline.delta"), kRtol, kDeltaAtol));
}

TEST(ExplainTorchMlp, Occlusion) {
  const Fixture f = load_fixture("explain_mlp");
  Sequential m = mlp(f);
  // strides left out: 1 on every axis
  EXPECT_TRUE(all_close(explain::occlusion(m, f.at("x"), {.target = target_of(f), .window = Shape{2}}),
                        f.at("occlusion"), kRtol, kAtol));
  // stride 2: windows at 0, 2 and 4, the last clipped to feature 4 alone (Captum's ceil count)
  EXPECT_TRUE(all_close(
      explain::occlusion(m, f.at("x"), {.target = target_of(f), .window = Shape{2}, .strides = Shape{2}}),
      f.at("occlusion_s2"), kRtol, kAtol));
}

// Captum's Layer* methods at the Embedding: attributions (N, 5, 4) at its output, the IG path
// between the embeddings of the baseline (token 0 everywhere, the default) and of the input.
TEST(ExplainTorchText, AtTheEmbedding) {
  const Fixture f = load_fixture("explain_text");
  Sequential m = text_model(f);
  const explain::Target target = target_of(f);
  const Tensor& ids = f.at("x");
  EXPECT_TRUE(all_close(explain::saliency(m, ids, {.target = target, .layer = "embedding"}), f.at("layer_saliency"),
                        kRtol, kAtol));
  EXPECT_TRUE(all_close(explain::input_x_gradient(m, ids, {.target = target, .layer = "embedding"}), f.at("layer_ixg"),
                        kRtol, kAtol));
  expect_ig_rules(m, f, "layer_ig", "embedding");
  for (const char* rule : kRules) {
    SCOPED_TRACE(rule);
    // the baseline ids written out
    const auto r = explain::integrated_gradients(m, ids,
                                                 {.target = target,
                                                  .baseline = Tensor::zeros(ids.shape()),
                                                  .steps = 7,
                                                  .rule = explain::rule_from_string(rule),
                                                  .layer = "embedding"});
    EXPECT_TRUE(all_close(r.attributions, f.at("layer_ig_" + reference_rule(rule)), kRtol, kAtol));
    const Tensor scores = explain::token_scores(r.attributions);
    EXPECT_TRUE(all_close(scores, f.at("token_scores_" + reference_rule(rule)), kRtol, kAtol));
    // sample 1's token 0 is the baseline's: nothing to attribute
    EXPECT_EQ(scores.at({1, 1}), 0.f);
  }
}

}  // namespace
}  // namespace lamina
