// Attribution methods (explain.hpp), on models whose answers are known exactly, as Captum's own
// tests check them: a linear model (saliency |w|, input x gradient and IG exactly x * w,
// occlusion with a 1x1 window x * w), Grad-CAM on a one-conv net by hand, the quadrature rules,
// NoiseTunnel's reductions, attributions at an Embedding, and the errors. PyTorch's values for the
// same methods are in test_explain_torch.cpp; a trained MNIST CNN in test_explain_mnist.cpp.
#include <gtest/gtest.h>

#include <cmath>
#include <numeric>

#include "lamina/lamina.hpp"
#include "test_util.hpp"

namespace lamina {
namespace {

using testing::error_of;

// y = x W + b: 5 inputs, 3 outputs, with known weights.
Sequential linear_model() {
  Sequential m({layers::Dense({.units = 3, .input_shape = Shape{5}, .name = "linear"})});
  m.build(Shape{5});
  Generator gen(11);
  m.set_weights({Tensor::randn({5, 3}, gen), Tensor::from({0.5f, -1.f, 2.f})});
  return m;
}

Tensor inputs_2x5() {
  Generator gen(12);
  return Tensor::randn({2, 5}, gen);
}

// x[i, j] * W[j, target_i]
Tensor x_times_w(Sequential& m, const Tensor& x, const std::vector<int64_t>& target, bool abs_w_only = false) {
  const Tensor w = m.get_weights()[0];
  Tensor out = Tensor::empty(x.shape());
  for (int64_t i = 0; i < x.dim(0); ++i)
    for (int64_t j = 0; j < 5; ++j) {
      const float wj = w.at({j, target[static_cast<size_t>(i)]});
      out.at({i, j}) = abs_w_only ? std::abs(wj) : x.at({i, j}) * wj;
    }
  return out;
}

void expect_close(const Tensor& got, const Tensor& want, float tol = 1e-5f) {
  ASSERT_EQ(got.shape(), want.shape());
  for (int64_t j = 0; j < got.numel(); ++j)
    EXPECT_NEAR(got.data()[j], want.data()[j], tol * (1.f + std::abs(want.data()[j]))) << "at flat index " << j;
}

TEST(Explain, SaliencyOfALinearModelIsAbsW) {
  Sequential m = linear_model();
  const Tensor x = inputs_2x5();
  expect_close(explain::saliency(m, x, {.target = {2, 0}}), x_times_w(m, x, {2, 0}, true));
  // Without abs: the signed gradient, W's column.
  const Tensor g = explain::saliency(m, x, {.target = {1}, .abs = false});
  EXPECT_FLOAT_EQ(g.at({1, 3}), m.get_weights()[0].at({3, 1}));
}

TEST(Explain, InputXGradientAndIntegratedGradientsOfALinearModelAreXTimesW) {
  Sequential m = linear_model();
  const Tensor x = inputs_2x5();
  const std::vector<int64_t> target = {1, 2};
  const Tensor want = x_times_w(m, x, target);
  expect_close(explain::input_x_gradient(m, x, {.target = target}), want);
  for (auto rule : {explain::Rule::gauss_legendre, explain::Rule::riemann_left, explain::Rule::riemann_right,
                    explain::Rule::riemann_middle, explain::Rule::riemann_trapezoid}) {
    explain::IntegratedGradientsOptions o;
    o.target = target;
    o.rule = rule;
    o.steps = 7;
    const auto ig = explain::integrated_gradients(m, x, o);
    SCOPED_TRACE(explain::to_string(rule));
    expect_close(ig.attributions, want);
    // Completeness holds exactly on a linear model: the delta is rounding only.
    for (float d : ig.delta.values()) EXPECT_NEAR(d, 0.f, 1e-5f);
    EXPECT_EQ(ig.target, target);
  }
}

TEST(Explain, DefaultTargetIsThePredictedUnit) {
  Sequential m = linear_model();
  const Tensor x = inputs_2x5();
  const Tensor y = m.predict(x);
  const auto t = explain::resolve_target(y, {});
  for (int64_t i = 0; i < 2; ++i) {
    const float* row = y.data() + i * 3;
    EXPECT_EQ(t[static_cast<size_t>(i)], std::max_element(row, row + 3) - row);
  }
  expect_close(explain::input_x_gradient(m, x), x_times_w(m, x, t));
}

TEST(Explain, IntegratedGradientsFromABaselineIsXMinusBaselineTimesW) {
  Sequential m = linear_model();
  const Tensor x = inputs_2x5();
  explain::IntegratedGradientsOptions o;
  o.target = {0};
  o.baseline = Tensor::full({5}, 0.25f);  // one sample's shape: every sample
  const auto ig = explain::integrated_gradients(m, x, o);
  Tensor shifted = x.clone();
  for (float& v : shifted.values()) v -= 0.25f;
  expect_close(ig.attributions, x_times_w(m, shifted, {0, 0}));
}

TEST(Explain, OcclusionWithA1x1WindowOnALinearModelIsXTimesW) {
  Sequential m = linear_model();
  const Tensor x = inputs_2x5();
  const Tensor a = explain::occlusion(m, x, {.target = {2, 1}, .window = Shape{1}});
  expect_close(a, x_times_w(m, x, {2, 1}), 1e-4f);
}

TEST(Explain, OcclusionAveragesTheWindowsCoveringEachFeature) {
  // Window 2, stride 1 on 5 features: windows [0,1], [1,2], [2,3], [3,4]; feature 1 lies in two.
  // On a linear model each window's drop is the sum of x_j w_j over it.
  Sequential m = linear_model();
  const Tensor x = inputs_2x5();
  const Tensor xw = x_times_w(m, x, {0, 0});
  const Tensor a = explain::occlusion(m, x, {.target = {0}, .window = Shape{2}});
  auto c = [&](int64_t i, int64_t j) { return xw.at({i, j}); };
  for (int64_t i = 0; i < 2; ++i) {
    EXPECT_NEAR(a.at({i, 0}), c(i, 0) + c(i, 1), 1e-4f);
    EXPECT_NEAR(a.at({i, 1}), ((c(i, 0) + c(i, 1)) + (c(i, 1) + c(i, 2))) / 2, 1e-4f);
    EXPECT_NEAR(a.at({i, 4}), c(i, 3) + c(i, 4), 1e-4f);
  }
  // Stride 3 with window 2: windows [0,1] and [3,4] (Captum's ceil((5-2)/3)+1 = 2); feature 2 in none.
  const Tensor b = explain::occlusion(m, x, {.target = {0}, .window = Shape{2}, .strides = Shape{3}});
  EXPECT_EQ(b.at({0, 2}), 0.f);
  EXPECT_NEAR(b.at({0, 4}), c(0, 3) + c(0, 4), 1e-4f);
}

// One conv (2 filters 2x2, valid) on a 3x3 grey image, then Flatten and Dense(2).
Sequential one_conv_net() {
  Sequential m({layers::Conv2D({.filters = 2, .kernel_size = 2, .input_shape = Shape{3, 3, 1}, .name = "conv"}),
                layers::Flatten(), layers::Dense(2)});
  m.build(Shape{3, 3, 1});
  Generator gen(5);
  m.set_weights({Tensor::randn({2, 2, 1, 2}, gen), Tensor::from({0.1f, -0.2f}), Tensor::randn({8, 2}, gen),
                 Tensor::from({0.f, 0.f})});
  return m;
}

TEST(Explain, GradCamOnAOneConvNetEqualsTheFormulaByHand) {
  Sequential m = one_conv_net();
  Generator gen(6);
  const Tensor x = Tensor::randn({1, 3, 3, 1}, gen);
  const auto w = m.get_weights();
  // A = conv(x) (2x2x2); y_t = sum_{h,w,c} A[h,w,c] D[(h*2+w)*2+c, t]: dy/dA = D's column.
  const int64_t t = 1;
  float a[2][2][2];
  for (int h = 0; h < 2; ++h)
    for (int v = 0; v < 2; ++v)
      for (int c = 0; c < 2; ++c) {
        float s = w[1].data()[c];
        for (int p = 0; p < 2; ++p)
          for (int q = 0; q < 2; ++q) s += x.at({0, h + p, v + q, 0}) * w[0].at({p, q, 0, c});
        a[h][v][c] = s;
      }
  float alpha[2] = {0, 0};  // mean over h, w of dy/dA
  for (int h = 0; h < 2; ++h)
    for (int v = 0; v < 2; ++v)
      for (int c = 0; c < 2; ++c) alpha[c] += w[2].at({(h * 2 + v) * 2 + c, t}) / 4.f;
  const Tensor raw = explain::grad_cam(m, x, {.target = {t}, .layer = "conv", .relu = false, .upsample = false});
  ASSERT_EQ(raw.shape(), (Shape{1, 2, 2, 1}));
  for (int h = 0; h < 2; ++h)
    for (int v = 0; v < 2; ++v) EXPECT_NEAR(raw.at({0, h, v, 0}), alpha[0] * a[h][v][0] + alpha[1] * a[h][v][1], 1e-5f);
  // With the ReLU and upsampled to the input's 3x3: bilinear with half-pixel centres. Output row
  // 1 maps to source 1 * 2/3 + 0.5 * 2/3 - 0.5 = 0.5: the mean of the two rows.
  const Tensor cam = explain::grad_cam(m, x, {.target = {t}, .layer = "conv"});
  ASSERT_EQ(cam.shape(), (Shape{1, 3, 3, 1}));
  auto r = [&](int h, int v) { return std::max(raw.at({0, h, v, 0}), 0.f); };
  EXPECT_NEAR(cam.at({0, 0, 0, 0}), r(0, 0), 1e-6f);
  EXPECT_NEAR(cam.at({0, 1, 1, 0}), (r(0, 0) + r(0, 1) + r(1, 0) + r(1, 1)) / 4, 1e-6f);
  EXPECT_NEAR(cam.at({0, 2, 1, 0}), (r(1, 0) + r(1, 1)) / 2, 1e-6f);
  // The default layer is the last with an image-shaped output: here the conv.
  const Tensor dflt = explain::grad_cam(m, x, {.target = {t}});
  EXPECT_EQ(dflt.to_vector(), cam.to_vector());
}

TEST(Explain, GradCamWorksOnAFunctionalModel) {
  KerasTensor in = Input({3, 3, 1});
  KerasTensor h = layers::Conv2D({.filters = 2, .kernel_size = 2, .name = "conv"})(in);
  KerasTensor y = layers::Dense(2)(layers::Flatten()(h));
  Model f(in, y);
  Sequential s = one_conv_net();
  f.set_weights(s.get_weights());
  Generator gen(6);
  const Tensor x = Tensor::randn({2, 3, 3, 1}, gen);
  expect_close(explain::grad_cam(f, x, {.target = {0}, .layer = "conv"}),
               explain::grad_cam(s, x, {.target = {0}, .layer = "conv"}));
  const auto ig_f = explain::integrated_gradients(f, x, {.target = {1}});
  const auto ig_s = explain::integrated_gradients(s, x, {.target = {1}});
  expect_close(ig_f.attributions, ig_s.attributions);
}

TEST(Explain, QuadratureRulesAreCaptumsAndWeighOne) {
  // Gauss-Legendre with 3 points: +-sqrt(3/5) and 0 on [-1, 1], weights 5/9, 8/9, 5/9.
  const auto gl = explain::quadrature(explain::Rule::gauss_legendre, 3);
  ASSERT_EQ(gl.alphas.size(), 3u);
  EXPECT_NEAR(gl.alphas[0], 0.5 * (1 - std::sqrt(0.6)), 1e-12);
  EXPECT_NEAR(gl.alphas[1], 0.5, 1e-12);
  EXPECT_NEAR(gl.weights[0], 5.0 / 18, 1e-12);
  EXPECT_NEAR(gl.weights[1], 8.0 / 18, 1e-12);
  const auto left = explain::quadrature(explain::Rule::riemann_left, 4);
  EXPECT_EQ(left.alphas, (std::vector<double>{0, 0.25, 0.5, 0.75}));
  const auto right = explain::quadrature(explain::Rule::riemann_right, 4);
  EXPECT_NEAR(right.alphas.back(), 1.0, 1e-15);
  const auto mid = explain::quadrature(explain::Rule::riemann_middle, 4);
  EXPECT_NEAR(mid.alphas.front(), 0.125, 1e-15);
  const auto trap = explain::quadrature(explain::Rule::riemann_trapezoid, 5);
  EXPECT_NEAR(trap.weights.front(), 0.125, 1e-15);
  for (auto rule : {explain::Rule::gauss_legendre, explain::Rule::riemann_left, explain::Rule::riemann_right,
                    explain::Rule::riemann_middle, explain::Rule::riemann_trapezoid})
    for (int n : {2, 7, 50, 500}) {
      const auto q = explain::quadrature(rule, n);
      EXPECT_NEAR(std::accumulate(q.weights.begin(), q.weights.end(), 0.0), 1.0, 1e-12) << explain::to_string(rule) << n;
      // Exact for x^3 on [0, 1] (= 1/4) for Gauss-Legendre from 2 points on.
      if (rule == explain::Rule::gauss_legendre) {
        double s = 0;
        for (size_t i = 0; i < q.alphas.size(); ++i) s += q.weights[i] * std::pow(q.alphas[i], 3);
        EXPECT_NEAR(s, 0.25, 1e-12);
      }
    }
  EXPECT_CONTAINS(error_of<ValueError>([] { explain::quadrature(explain::Rule::riemann_left, 1); }), "steps >= 2");
  EXPECT_CONTAINS(error_of<ValueError>([] { explain::rule_from_string("simpson"); }), "gausslegendre");
}

TEST(Explain, IntegratedGradientsConvergesOnANonlinearModel) {
  // tanh hidden layer: the deltas shrink as steps grow, for every rule.
  manual_seed(8);
  Sequential m({layers::Dense({.units = 6, .activation = Activation::tanh, .input_shape = Shape{5}}), layers::Dense(3)});
  m.build(Shape{5});
  const Tensor x = inputs_2x5();
  for (auto rule : {explain::Rule::gauss_legendre, explain::Rule::riemann_trapezoid, explain::Rule::riemann_middle}) {
    double previous = 1e9;
    for (int steps : {4, 16, 64}) {
      explain::IntegratedGradientsOptions o;
      o.target = {0};
      o.rule = rule;
      o.steps = steps;
      const auto ig = explain::integrated_gradients(m, x, o);
      double d = 0;
      for (float v : ig.delta.values()) d += std::abs(v);
      EXPECT_LE(d, previous + 1e-6) << explain::to_string(rule) << " steps " << steps;
      previous = d;
    }
    EXPECT_LT(previous, 1e-3) << explain::to_string(rule);
  }
}

TEST(Explain, NoiseTunnelReductions) {
  Sequential m = linear_model();
  const Tensor x = inputs_2x5();
  // On a linear model the gradient ignores the noise: SmoothGrad of saliency is |w|, its
  // variance (VarGrad) zero, smoothgrad_sq |w|^2.
  explain::Method sal = [&](const Tensor& in) { return explain::saliency(m, in, {.target = {1}}); };
  const Tensor absw = x_times_w(m, x, {1, 1}, true);
  expect_close(explain::noise_tunnel(sal, x, {.samples = 4, .stdev = 0.5f, .seed = 3}), absw);
  const Tensor var = explain::noise_tunnel(sal, x, {.type = explain::NoiseType::vargrad, .samples = 4, .seed = 3});
  for (float v : var.values()) EXPECT_NEAR(v, 0.f, 1e-6f);
  // Input x gradient sees the noise: seeded, it repeats; its mean tends to x * w.
  explain::Method ixg = [&](const Tensor& in) { return explain::input_x_gradient(m, in, {.target = {1}}); };
  const Tensor a = explain::noise_tunnel(ixg, x, {.samples = 3, .stdev = 0.1f, .seed = 9});
  const Tensor b = explain::noise_tunnel(ixg, x, {.samples = 3, .stdev = 0.1f, .seed = 9});
  EXPECT_EQ(a.to_vector(), b.to_vector());
  const Tensor many = explain::noise_tunnel(ixg, x, {.samples = 2000, .stdev = 0.1f, .seed = 9});
  expect_close(many, x_times_w(m, x, {1, 1}), 0.02f);
  EXPECT_CONTAINS(error_of<ValueError>([&] { explain::noise_tunnel(sal, x, {.samples = 0}); }), "samples");
  EXPECT_EQ(explain::noise_type_from_string("vargrad"), explain::NoiseType::vargrad);
}

TEST(Explain, TextModelsAttributeAtTheEmbedding) {
  manual_seed(4);
  Sequential m({layers::Embedding({.input_dim = 10, .output_dim = 4, .input_shape = Shape{5}, .name = "embedding"}),
                layers::GlobalAveragePooling1D(), layers::Dense(3)});
  m.build(Shape{5});
  const Tensor tokens = Tensor::from({1, 4, 7, 2, 9, 3, 3, 8, 0, 0}, Shape{2, 5});
  explain::IntegratedGradientsOptions o;
  o.target = {2};
  o.layer = "embedding";
  const auto ig = explain::integrated_gradients(m, tokens, o);
  ASSERT_EQ(ig.attributions.shape(), (Shape{2, 5, 4}));
  // The model is linear in the embeddings, so completeness is exact at any step count.
  for (float d : ig.delta.values()) EXPECT_NEAR(d, 0.f, 1e-5f);
  const Tensor scores = explain::token_scores(ig.attributions);
  ASSERT_EQ(scores.shape(), (Shape{2, 5}));
  // Token 0 in the baseline and the input alike: a padding position gets nothing.
  EXPECT_NEAR(scores.at({1, 4}), 0.f, 1e-7f);
  // Gradient methods at the layer: the gradient of a mean over 5 positions is D's column / 5.
  const Tensor g = explain::saliency(m, tokens, {.target = {2}, .abs = false, .layer = "embedding"});
  ASSERT_EQ(g.shape(), (Shape{2, 5, 4}));
  EXPECT_NEAR(g.at({0, 3, 1}), m.get_weights()[1].at({1, 2}) / 5.f, 1e-6f);
}

TEST(Explain, ForwardHookReadsAndReplacesALayersOutput) {
  Sequential m = linear_model();
  const Tensor x = inputs_2x5();
  int seen = 0;
  const Tensor zeros = m.call_with_hook({x}, [&](const Layer& l, Tensor& out) {
    ++seen;
    EXPECT_EQ(l.name(), "linear");
    out = Tensor::zeros(out.shape());
  }).at(0);
  EXPECT_EQ(seen, 1);
  for (float v : zeros.values()) EXPECT_EQ(v, 0.f);
  EXPECT_CONTAINS(error_of<ShapeError>([&] {
                    m.call_with_hook({x}, [](const Layer&, Tensor& out) { out = Tensor::zeros({1}); });
                  }),
                  "replaced the output (2, 3) of layer");
}

TEST(Explain, ErrorsNameWhatIsWrong) {
  Sequential m = linear_model();
  const Tensor x = inputs_2x5();
  EXPECT_CONTAINS(error_of<ValueError>([&] { explain::saliency(m, x, {.target = {3}}); }),
                  "target 3 is out of range for the model's 3 output units");
  EXPECT_CONTAINS(error_of<ValueError>([&] { explain::saliency(m, x, {.target = {0, 1, 2}}); }), "3 targets for 2 samples");
  EXPECT_CONTAINS(error_of<ShapeError>([&] { explain::saliency(m, Tensor::zeros({2, 4})); }),
                  "takes samples of shape (5), the inputs hold (4)");
  EXPECT_CONTAINS(error_of<ValueError>([&] { explain::saliency(m, x, {.layer = "nope"}); }), "has no layer 'nope'");
  EXPECT_CONTAINS(error_of<ValueError>([&] { explain::grad_cam(m, x); }), "no layer with an image-shaped output");
  Sequential c = one_conv_net();
  const Tensor img = Tensor::zeros({1, 3, 3, 1});
  const std::string e = error_of<ValueError>([&] { explain::grad_cam(c, img, {.layer = c.layers()[2]->name()}); });
  EXPECT_CONTAINS(e, "is not a convolutional layer");
  EXPECT_CONTAINS(e, "choose one of 'conv'");
  EXPECT_CONTAINS(error_of<ShapeError>([&] { explain::occlusion(m, x, {.window = Shape{6}}); }), "does not fit");
  EXPECT_CONTAINS(error_of<ValueError>([] { explain::method_name("lime"); }), "unknown method 'lime'");
  EXPECT_EQ(explain::method_name("integrated_gradients"), "ig");
}

TEST(Explain, OverlayColoursSignedAndPositiveMaps) {
  const Tensor image = Tensor::full({2, 2}, 0.5f);
  const Tensor signed_map = Tensor::from({1.f, -1.f, 0.f, 0.5f}, Shape{2, 2});
  const Tensor o = explain::overlay(image, signed_map, {.alpha = 1.f});
  ASSERT_EQ(o.shape(), (Shape{2, 2, 3}));
  EXPECT_FLOAT_EQ(o.at({0, 0, 0}), 1.f);  // the largest positive: pure red
  EXPECT_FLOAT_EQ(o.at({0, 1, 2}), 1.f);  // the largest negative: pure blue
  EXPECT_FLOAT_EQ(o.at({1, 0, 1}), 0.2f + 0.5f * 0.5f);  // zero: the grey image, dimmed
  EXPECT_FLOAT_EQ(o.at({1, 1, 0}), (1 - std::sqrt(0.5f)) * 0.45f + std::sqrt(0.5f));  // half: sqrt(1/2) red
  const Tensor hot = explain::overlay(image, Tensor::from({1.f, 0.f, 0.f, 0.f}, Shape{2, 2}), {.alpha = 1.f});
  EXPECT_FLOAT_EQ(hot.at({0, 0, 2}), 1.f);  // the maximum of a non-negative map: white
  EXPECT_CONTAINS(error_of<ShapeError>([&] { explain::overlay(image, Tensor::zeros({3, 2})); }), "do not cover");
}

}  // namespace
}  // namespace lamina
