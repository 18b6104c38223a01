// conv2d_transpose and Keras' Conv2DTranspose: the oneDNN deconvolution against the naive
// loops, the op against PyTorch (make_fixtures_convt.py) and finite differences, Keras' output
// sizes, the layer's config, weights and errors, a DCGAN generator tail against
// torch.nn.ConvTranspose2d, and a Dense -> Reshape -> Conv2DTranspose model that learns.
// ONNX export and import are judged in tests/onnx (make_cases.cpp's convt_* cases: onnx's
// checker, OpenCV, ONNX Runtime and load_onnx's round trip).
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <sstream>

#include "kernels/conv_transpose.hpp"
#include "test_util.hpp"

namespace lamina {
namespace {

using testing::error_of;
using testing::Fn;

struct Spec {
  int64_t n, h, w, c, f, kh, kw, sh, sw;
  bool same;
  int64_t ph = -1, pw = -1;  // output_padding; -1: Keras' None
  int64_t dh = 1, dw = 1;
};

kernels::Geometry2d geometry(const Spec& s) {
  const int64_t* ph = s.ph >= 0 ? &s.ph : nullptr;
  const int64_t* pw = s.pw >= 0 ? &s.pw : nullptr;
  const kernels::Axis y = kernels::transpose_axis(s.h, s.kh, s.sh, s.dh, s.same, ph);
  const kernels::Axis x = kernels::transpose_axis(s.w, s.kw, s.sw, s.dw, s.same, pw);
  return {.n = s.n, .h = s.h, .w = s.w, .c = s.c, .f = s.f, .kh = s.kh, .kw = s.kw, .sh = s.sh, .sw = s.sw,
          .pad_top = y.pad_lo, .pad_bottom = y.pad_hi, .pad_left = x.pad_lo, .pad_right = x.pad_hi,
          .oh = y.out, .ow = x.out, .dh = s.dh, .dw = s.dw};
}

std::string describe(const kernels::Geometry2d& g) {
  std::ostringstream s;
  s << "(N=" << g.n << ",H=" << g.h << ",W=" << g.w << ",C=" << g.c << ",F=" << g.f << ",K=" << g.kh << "x" << g.kw
    << ",S=" << g.sh << "x" << g.sw << ",D=" << g.dh << "x" << g.dw << ",crop=" << g.pad_top << "/" << g.pad_bottom
    << "/" << g.pad_left << "/" << g.pad_right << ",out=" << g.oh << "x" << g.ow << ")";
  return s.str();
}

// Odd sizes, rectangular kernels, strides above and below the kernel (negative end crops),
// output_padding, dilation, one channel, and one large enough for the threaded primitives.
const std::vector<Spec> kSpecs = {
    {1, 5, 5, 1, 1, 3, 3, 1, 1, false},
    {2, 4, 5, 3, 4, 3, 3, 2, 2, true},
    {2, 7, 7, 6, 8, 5, 5, 2, 2, true},
    {2, 7, 7, 8, 1, 4, 4, 2, 2, true},
    {1, 3, 4, 2, 3, 2, 3, 3, 2, false},
    {2, 3, 4, 5, 2, 3, 3, 2, 2, false, 1, 1},
    {1, 3, 3, 2, 2, 2, 2, 3, 3, true, 2, 1},
    {2, 5, 6, 3, 2, 3, 2, 1, 1, true, -1, -1, 2, 2},
    {1, 4, 5, 16, 17, 3, 3, 1, 1, false, -1, -1, 2, 1},
    {3, 1, 1, 7, 5, 4, 4, 2, 2, true},
    {8, 14, 14, 32, 16, 4, 4, 2, 2, true},  // 26 MFLOP
};

TEST(ConvTransposeKernels, OneDnnMatchesTheNaiveLoops) {
  Generator gen(41);
  for (const Spec& s : kSpecs) {
    const kernels::Geometry2d g = geometry(s);
    const std::string what = describe(g);
    const Tensor x = Tensor::randn({g.n, g.h, g.w, g.c}, gen), w = Tensor::randn({g.kh, g.kw, g.f, g.c}, gen);
    const Tensor b = Tensor::randn({g.f}, gen), dy = Tensor::randn({g.n, g.oh, g.ow, g.f}, gen);
    for (const float* bias : {b.data(), static_cast<const float*>(nullptr)}) {
      Tensor fast = Tensor::empty({g.n, g.oh, g.ow, g.f}), naive = Tensor::empty(fast.shape());
      kernels::conv2d_transpose_forward(g, x.data(), w.data(), bias, fast.data(), kernels::Eltwise::none);
      kernels::ref::conv2d_transpose_forward(g, x.data(), w.data(), bias, naive.data(), kernels::Eltwise::none);
      EXPECT_TRUE(testing::all_close(fast, naive, 1e-4, 1e-4)) << "forward " << what << (bias ? "" : " no bias");
    }
    for (bool acc : {false, true}) {
      Tensor dx_fast = Tensor::full(x.shape(), 0.5f), dx_naive = Tensor::full(x.shape(), 0.5f);
      kernels::conv2d_transpose_backward_data(g, dy.data(), w.data(), dx_fast.data(), acc);
      kernels::ref::conv2d_transpose_backward_data(g, dy.data(), w.data(), dx_naive.data(), acc);
      EXPECT_TRUE(testing::all_close(dx_fast, dx_naive, 1e-4, 1e-4)) << "backward data " << what << " acc " << acc;
      Tensor dw_fast = Tensor::full(w.shape(), 0.25f), dw_naive = Tensor::full(w.shape(), 0.25f);
      Tensor db_fast = Tensor::full({g.f}, 1.f), db_naive = Tensor::full({g.f}, 1.f);
      kernels::conv2d_transpose_backward_weights(g, x.data(), dy.data(), dw_fast.data(), acc, db_fast.data(), !acc);
      kernels::ref::conv2d_transpose_backward_weights(g, x.data(), dy.data(), dw_naive.data(), acc, db_naive.data(),
                                                      !acc);
      EXPECT_TRUE(testing::all_close(dw_fast, dw_naive, 1e-4, 1e-3)) << "backward weights " << what << " acc " << acc;
      EXPECT_TRUE(testing::all_close(db_fast, db_naive, 1e-4, 1e-3)) << "backward bias " << what << " acc " << !acc;
    }
  }
}

// The naive loop is the definition: y[i s + p d - crop] += x[i] w[p]. One input pixel, one
// tap: the output is 0 but for that tap's cell.
TEST(ConvTransposeKernels, OnePixelLandsWhereTheDefinitionSays) {
  const kernels::Geometry2d g = geometry({1, 3, 3, 1, 1, 3, 3, 2, 2, true});  // 6x6, crop 0 top, 1 bottom
  ASSERT_EQ(g.oh, 6);
  ASSERT_EQ(g.pad_top, 0);
  ASSERT_EQ(g.pad_bottom, 1);
  Tensor x = Tensor::zeros({1, 3, 3, 1}), w = Tensor::zeros({3, 3, 1, 1}), y = Tensor::empty({1, 6, 6, 1});
  x.data()[1 * 3 + 2] = 2.f;  // (i, j) = (1, 2)
  w.data()[2 * 3 + 1] = 3.f;  // (p, q) = (2, 1)
  kernels::conv2d_transpose_forward(g, x.data(), w.data(), nullptr, y.data(), kernels::Eltwise::none);
  for (int64_t r = 0; r < 6; ++r)
    for (int64_t c = 0; c < 6; ++c)
      EXPECT_EQ(y.data()[r * 6 + c], r == 1 * 2 + 2 && c == 2 * 2 + 1 ? 6.f : 0.f) << r << "," << c;
}

// --- Keras' output size -----------------------------------------------------------------------------

// Keras 3's compute_conv_transpose_output_length, evaluated by hand (make_fixtures_convt.py's
// keras_axis is the same formula and asserts each fixture's shape).
TEST(ConvTransposeSize, AsKerasDeconvOutputLength) {
  struct Row {
    int64_t in, k, s, d;
    bool same;
    int64_t op, out;  // op -1: None
  };
  for (const Row& r : std::vector<Row>{{7, 4, 2, 1, true, -1, 14},  {7, 5, 2, 1, true, -1, 14},
                                       {7, 3, 2, 1, false, -1, 15}, {7, 1, 2, 1, false, -1, 14},
                                       {7, 4, 2, 1, false, -1, 16}, {4, 3, 2, 1, false, 1, 10},
                                       {4, 3, 2, 1, true, 1, 8},    {4, 4, 2, 1, true, 0, 6},
                                       {5, 3, 1, 2, true, -1, 5},   {5, 3, 1, 2, false, -1, 9},
                                       {3, 2, 3, 1, true, 2, 8},    {6, 5, 1, 1, false, -1, 10},
                                       {6, 5, 3, 1, true, 2, 18}}) {
    const kernels::Axis a = kernels::transpose_axis(r.in, r.k, r.s, r.d, r.same, r.op >= 0 ? &r.op : nullptr);
    EXPECT_EQ(a.out, r.out) << r.in << " k" << r.k << " s" << r.s << " d" << r.d << (r.same ? " same" : " valid")
                            << " op" << r.op;
    EXPECT_EQ(a.pad_lo + a.pad_hi, (r.in - 1) * r.s + (r.k - 1) * r.d + 1 - r.out);  // the crops add up
    EXPECT_GT(a.pad_hi, -r.s);  // oneDNN's bound
    EXPECT_GE(a.pad_lo, 0);
  }
  // TensorFlow's split: the larger half of an odd crop at the end (DCGAN's 5x5, stride 2: 1 and 2).
  const kernels::Axis dcgan5 = kernels::transpose_axis(7, 5, 2, 1, true, nullptr);
  EXPECT_EQ(dcgan5.pad_lo, 1);
  EXPECT_EQ(dcgan5.pad_hi, 2);
}

// --- the op against PyTorch ---------------------------------------------------------------------------

struct OpCase {
  const char* name;
  Conv2DTransposeOptions options;
};

std::vector<OpCase> op_cases() {
  const Padding V = Padding::valid, S = Padding::same;
  return {{"convt_valid_s1_k3", {}},
          {"convt_valid_s2_k3", {.strides = 2}},
          {"convt_same_s1_k3", {.padding = S}},
          {"convt_same_s2_k4", {.strides = 2, .padding = S}},
          {"convt_same_s2_k5", {.strides = 2, .padding = S}},
          {"convt_same_s21_k32", {.strides = Size2(2, 1), .padding = S}},
          {"convt_valid_s32_k23", {.strides = Size2(3, 2)}},
          {"convt_valid_s2_op1", {.strides = 2, .padding = V, .output_padding = Size2(1)}},
          {"convt_same_s2_op0_k3", {.strides = 2, .padding = S, .output_padding = Size2(0)}},
          {"convt_same_s2_op1_k4", {.strides = 2, .padding = S, .output_padding = Size2(1)}},
          {"convt_same_s3_op21_k2", {.strides = 3, .padding = S, .output_padding = Size2(2, 1)}},
          {"convt_valid_d2", {.dilation_rate = 2}},
          {"convt_same_d2", {.padding = S, .dilation_rate = 2}},
          {"convt_same_s2_k4_nobias", {.strides = 2, .padding = S}}};
}

Fn op_fn(const Conv2DTransposeOptions& o) {
  return [o](const std::vector<Tensor>& in) { return conv2d_transpose(in[0], in[1], in.size() > 2 ? in[2] : Tensor(), o); };
}

TEST(ConvTransposeOp, MatchesPyTorch) {
  for (const OpCase& c : op_cases()) testing::expect_matches_pytorch(c.name, op_fn(c.options), 1e-4);
}

TEST(ConvTransposeOp, Gradcheck) {
  for (const OpCase& c : op_cases()) {
    const testing::OpFixture f(c.name);
    EXPECT_TRUE(testing::gradcheck(op_fn(c.options), f.inputs)) << c.name;
  }
}

TEST(ConvTransposeOp, FusedActivationMatchesComposition) {
  Generator gen(43);
  const Tensor x = Tensor::randn({2, 4, 3, 3}, gen), w = Tensor::randn({4, 4, 2, 3}, gen), b = Tensor::randn({2}, gen);
  const std::vector<std::pair<FusedActivation, Tensor (*)(const Tensor&)>> acts = {
      {FusedActivation::relu, [](const Tensor& t) { return relu(t); }},
      {FusedActivation::sigmoid, [](const Tensor& t) { return sigmoid(t); }},
      {FusedActivation::tanh, [](const Tensor& t) { return lamina::tanh(t); }}};
  for (const auto& [act, f] : acts) {
    std::vector<Tensor> a = {x.clone().requires_grad_(), w.clone().requires_grad_(), b.clone().requires_grad_()};
    std::vector<Tensor> c = {x.clone().requires_grad_(), w.clone().requires_grad_(), b.clone().requires_grad_()};
    const Conv2DTransposeOptions fused_options{.strides = 2, .padding = Padding::same, .act = act};
    Tensor fused = conv2d_transpose(a[0], a[1], a[2], fused_options);
    Tensor composed = f(conv2d_transpose(c[0], c[1], c[2], {.strides = 2, .padding = Padding::same}));
    EXPECT_TRUE(testing::all_close(fused, composed, 1e-5, 1e-6)) << static_cast<int>(act);
    const Tensor dy = Tensor::randn(fused.shape(), gen);
    fused.backward(dy);
    composed.backward(dy);
    for (size_t i = 0; i < 3; ++i)
      EXPECT_TRUE(testing::all_close(a[i].grad(), c[i].grad(), 1e-5, 1e-5)) << static_cast<int>(act) << " input " << i;
  }
}

// A tensor used twice gets the sum of both gradients (the kernels' accumulate paths).
TEST(ConvTransposeOp, GradientsAccumulateOverUses) {
  Generator gen(44);
  const Tensor x = Tensor::randn({2, 3, 4, 2}, gen), w = Tensor::randn({3, 3, 3, 2}, gen), b = Tensor::randn({3}, gen);
  const Conv2DTransposeOptions o{.strides = 2, .padding = Padding::same};
  std::vector<Tensor> once = {x.clone().requires_grad_(), w.clone().requires_grad_(), b.clone().requires_grad_()};
  std::vector<Tensor> twice = {x.clone().requires_grad_(), w.clone().requires_grad_(), b.clone().requires_grad_()};
  Tensor y1 = conv2d_transpose(once[0], once[1], once[2], o) * 2.f;
  Tensor y2 = conv2d_transpose(twice[0], twice[1], twice[2], o) + conv2d_transpose(twice[0], twice[1], twice[2], o);
  const Tensor dy = Tensor::randn(y1.shape(), gen);
  y1.backward(dy);
  y2.backward(dy);
  for (size_t i = 0; i < 3; ++i) EXPECT_TRUE(testing::all_close(twice[i].grad(), once[i].grad(), 1e-5, 1e-5)) << i;
  // Only the bias asks for a gradient: the kernel's goes to scratch, the bias's is still right.
  Tensor bias_only = b.clone().requires_grad_();
  conv2d_transpose(x, w, bias_only, o).backward(dy);
  EXPECT_TRUE(testing::all_close(bias_only.grad(), once[2].grad() * 0.5f, 1e-5, 1e-5));
}

TEST(ConvTransposeOp, ErrorsNameTheShapes) {
  const Tensor x = Tensor::zeros({1, 4, 4, 3});
  EXPECT_CONTAINS(error_of<ShapeError>([&] { conv2d_transpose(x, Tensor::zeros({3, 3, 2, 4}), Tensor()); }),
                  "x (1, 4, 4, 3) has 3 channels, kernel (3, 3, 2, 4) (KH, KW, F, C) expects 4");
  EXPECT_CONTAINS(error_of<ShapeError>([&] { conv2d_transpose(x, Tensor::zeros({3, 3, 2, 3}), Tensor::zeros({3})); }),
                  "bias (3) does not match the 2 filters");
  EXPECT_CONTAINS(error_of<ShapeError>([&] { conv2d_transpose(Tensor::zeros({4, 4, 3}), Tensor::zeros({3, 3, 2, 3}), Tensor()); }),
                  "expects images (N, H, W, C)");
  EXPECT_CONTAINS(error_of<ValueError>([&] {
                    conv2d_transpose(x, Tensor::zeros({3, 3, 2, 3}), Tensor(), {.strides = 2, .output_padding = Size2(2, 1)});
                  }),
                  "output_padding 2x1 must be at least 0 and less than the strides 2x2");
}

// --- the layer --------------------------------------------------------------------------------------

TEST(Conv2DTranspose, ShapesWeightsAndKerasFans) {
  Generator gen(45);
  layers::Conv2DTranspose t({.filters = 8, .kernel_size = 5, .strides = 2, .padding = Padding::same});
  t.set_name("up");
  t.build({7, 7, 6}, gen);
  EXPECT_EQ(t.kernel().shape(), (Shape{5, 5, 8, 6}));  // Keras: (KH, KW, filters, in)
  EXPECT_EQ(t.bias().shape(), (Shape{8}));
  EXPECT_EQ(t.count_params(), 5 * 5 * 8 * 6 + 8);
  EXPECT_EQ(t.output_shape({7, 7, 6}), (Shape{14, 14, 8}));
  // glorot_uniform with Keras' fans of this kernel: fan_in = 25 * 8, fan_out = 25 * 6.
  const float limit = std::sqrt(6.f / (200 + 150));
  float biggest = 0;
  for (float v : t.kernel().values()) biggest = std::max(biggest, std::fabs(v));
  EXPECT_LE(biggest, limit);
  EXPECT_GT(biggest, 0.9f * limit);
  EXPECT_EQ(layers::Conv2DTranspose({.filters = 2, .kernel_size = 3, .strides = 2}).output_shape({4, 5, 1}),
            (Shape{9, 11, 2}));
  EXPECT_EQ(layers::Conv2DTranspose({.filters = 2, .kernel_size = 3, .strides = 2, .output_padding = Size2(1, 0)})
                .output_shape({4, 5, 1}),
            (Shape{10, 11, 2}));
  EXPECT_EQ(layers::Conv2DTranspose({.filters = 2, .kernel_size = Size2(3, 1), .dilation_rate = 2}).output_shape({4, 5, 1}),
            (Shape{8, 5, 2}));
  layers::Conv2DTranspose no_bias({.filters = 3, .kernel_size = 2, .use_bias = false});
  no_bias.build({4, 4, 2}, gen);
  EXPECT_EQ(no_bias.weights().size(), 1u);
  EXPECT_EQ(no_bias.count_params(), 2 * 2 * 3 * 2);
}

TEST(Conv2DTranspose, ConfigRoundTripsAndReadsKeras3) {
  layers::Conv2DTranspose t({.filters = 4, .kernel_size = Size2(3, 2), .strides = Size2(2, 3), .padding = Padding::same,
                             .output_padding = Size2(1, 2), .activation = "relu", .use_bias = false,
                             .kernel_regularizer = regularizers::L2(0.5f), .name = "up"});
  const Json c = t.config();
  EXPECT_EQ(c["output_padding"], Json::array({1, 2}));
  EXPECT_EQ(c["kernel_size"], Json::array({3, 2}));
  EXPECT_EQ(c["data_format"], "channels_last");
  const auto back = layer_from_config("Conv2DTranspose", c);
  EXPECT_EQ(back->config(), c);
  EXPECT_EQ(back->output_shape({4, 4, 1}), (Shape{8, 11, 4}));  // (4-1)*2 + 3 % 2 + 1, (4-1)*3 + 2 % 2 + 2
  // Keras 3 writes no output_padding (its get_config leaves it out): None.
  const Json keras3 = Json::parse(R"({"name": "conv2d_transpose", "trainable": true,
      "dtype": {"module": "keras", "class_name": "DTypePolicy", "config": {"name": "float32"}, "registered_name": null},
      "filters": 16, "kernel_size": [4, 4], "strides": [2, 2], "padding": "same", "data_format": "channels_last",
      "dilation_rate": [1, 1], "activation": "relu", "use_bias": true,
      "kernel_initializer": {"module": "keras.initializers", "class_name": "GlorotUniform", "config": {"seed": null}, "registered_name": null},
      "bias_initializer": {"module": "keras.initializers", "class_name": "Zeros", "config": {}, "registered_name": null},
      "kernel_regularizer": null, "bias_regularizer": null, "activity_regularizer": null, "kernel_constraint": null,
      "bias_constraint": null})");
  const auto k3 = layer_from_config("Conv2DTranspose", keras3);
  EXPECT_EQ(k3->output_shape({7, 7, 32}), (Shape{14, 14, 16}));
  EXPECT_TRUE(k3->config()["output_padding"].is_null());
  // Keras 2 (tf.keras) writes output_padding, as a list or null, and its Conv base's groups.
  Json keras2 = keras3;
  keras2["output_padding"] = Json::array({1, 1});
  keras2["groups"] = 1;
  EXPECT_EQ(layer_from_config("Conv2DTranspose", keras2)->output_shape({7, 7, 32}), (Shape{13, 13, 16}));
  keras2["output_padding"] = nullptr;
  EXPECT_EQ(layer_from_config("Conv2DTranspose", keras2)->output_shape({7, 7, 32}), (Shape{14, 14, 16}));
}

TEST(Conv2DTranspose, RefusesWhatKerasRefusesNamingLayerAndKey) {
  const Json base = Json::parse(R"({"name": "up", "filters": 4, "kernel_size": 3, "strides": 2})");
  auto with = [&](const char* key, const Json& v) {
    Json c = base;
    c[key] = v;
    return error_of<ValueError>([&] { layer_from_config("Conv2DTranspose", c); });
  };
  EXPECT_CONTAINS(with("data_format", "channels_first"), "Conv2DTranspose 'up': data_format 'channels_first' is not supported");
  EXPECT_CONTAINS(with("output_padding", Json::array({2, 2})),
                  "Conv2DTranspose 'up': output_padding 2x2 must be at least 0 and less than strides 2x2");
  EXPECT_CONTAINS(with("output_padding", -1), "Conv2DTranspose 'up': 'output_padding' must be null");
  EXPECT_CONTAINS(with("dilation_rate", 2), "Conv2DTranspose 'up': strides 2x2 and dilation_rate 2x2 cannot both be above 1");
  EXPECT_CONTAINS(with("padding", "full"), "Conv2DTranspose 'up': padding 'full' is not supported");
  EXPECT_CONTAINS(with("groups", 2), "Conv2DTranspose 'up': groups = 2 is not supported");
  EXPECT_CONTAINS(with("foo", 1), "Conv2DTranspose 'up': config key 'foo' is not supported by Lamina");
  Generator gen(46);
  layers::Conv2DTranspose t({.filters = 2, .kernel_size = 3});
  t.set_name("up");
  EXPECT_CONTAINS(error_of<ShapeError>([&] { t.build({28, 28}, gen); }), "add a channel axis");
  t.build({4, 4, 3}, gen);
  EXPECT_CONTAINS(error_of<ShapeError>([&] { t.call(Tensor::zeros({2, 4, 4, 2}), false); }), "(batch, H, W, 3)");
}

// DCGAN's generator tail, Keras' 'same' with stride 2 for kernels 5 and 4, against
// torch.nn.ConvTranspose2d (make_fixtures_convt.py's compute_dcgan: padding=1 and the last row
// and column dropped for kernel 5, padding=1 for kernel 4).
TEST(Conv2DTranspose, DcganTailMatchesTorchConvTranspose2d) {
  const auto f = testing::load_fixture("convt_dcgan");
  Sequential model({layers::InputLayer(Shape{7, 7, 6}),
                    layers::Conv2DTranspose({.filters = 8, .kernel_size = 5, .strides = 2, .padding = Padding::same,
                                             .activation = "relu"}),
                    layers::Conv2DTranspose({.filters = 1, .kernel_size = 4, .strides = 2, .padding = Padding::same,
                                             .activation = "tanh"})});
  model.build(Shape{7, 7, 6});
  EXPECT_EQ(model.output_shape(), (Shape{28, 28, 1}));
  auto& up1 = *model.layers()[1];
  auto& up2 = *model.layers()[2];
  auto set = [&](Layer& l, size_t i, const char* key) {
    Tensor& w = l.weights()[i].value;
    ASSERT_EQ(w.shape(), f.at(key).shape()) << key;
    std::copy_n(f.at(key).data(), w.numel(), w.data());
  };
  set(up1, 0, "x1");
  set(up1, 1, "x2");
  set(up2, 0, "x3");
  set(up2, 1, "x4");
  EXPECT_TRUE(testing::all_close(model.predict(f.at("x0")), f.at("y"), 1e-5, 1e-5));
  // Backward through the layers: input and every weight.
  Tensor x = f.at("x0").clone().requires_grad_();
  for (auto* l : {&up1, &up2})
    for (auto& w : l->weights()) w.value.requires_grad_();
  Tensor y = up2.call(up1.call(x, true), true);
  y.backward(f.at("dy"));
  EXPECT_TRUE(testing::all_close(x.grad(), f.at("dx0"), 1e-4, 1e-5));
  EXPECT_TRUE(testing::all_close(up1.weights()[0].value.grad(), f.at("dx1"), 1e-4, 1e-4));
  EXPECT_TRUE(testing::all_close(up1.weights()[1].value.grad(), f.at("dx2"), 1e-4, 1e-4));
  EXPECT_TRUE(testing::all_close(up2.weights()[0].value.grad(), f.at("dx3"), 1e-4, 1e-4));
  EXPECT_TRUE(testing::all_close(up2.weights()[1].value.grad(), f.at("dx4"), 1e-4, 1e-4));
  std::ostringstream os;
  model.summary(os);
  EXPECT_CONTAINS(os.str(), "(Conv2DTranspose)");
  EXPECT_CONTAINS(os.str(), "(None, 28, 28, 1)");
  EXPECT_CONTAINS(os.str(), "(None, 14, 14, 8)");
}

// Dense -> Reshape -> Conv2DTranspose (stride 2, same) -> Conv2DTranspose: fit learns to draw
// one of four 8x8 patterns from a one-hot code, so backward is wired through fit.
TEST(Conv2DTranspose, AGeneratorLearnsThroughFit) {
  manual_seed(5);
  const int64_t n = 64;
  Tensor x = Tensor::zeros({n, 4}), y = Tensor::zeros({n, 8, 8, 1});
  for (int64_t i = 0; i < n; ++i) {
    const int64_t k = i % 4;
    x.data()[i * 4 + k] = 1.f;
    for (int64_t r = 0; r < 8; ++r)
      for (int64_t c = 0; c < 8; ++c) {
        const bool on = k == 0 ? r < 4 : k == 1 ? c < 4 : k == 2 ? (r + c) % 2 == 0 : r == c;
        y.data()[(i * 8 + r) * 8 + c] = on ? 1.f : 0.f;
      }
  }
  Sequential model({layers::InputLayer(Shape{4}), layers::Dense({.units = 4 * 4 * 8, .activation = "relu"}),
                    layers::Reshape(Shape{4, 4, 8}),
                    layers::Conv2DTranspose({.filters = 8, .kernel_size = 4, .strides = 2, .padding = Padding::same,
                                             .activation = "relu"}),
                    layers::Conv2DTranspose({.filters = 1, .kernel_size = 3, .padding = Padding::same,
                                             .activation = "sigmoid"})});
  model.compile(Adam({.learning_rate = 0.01f}), Loss("mse"));
  History h = model.fit(x, y, {.epochs = 40, .batch_size = 16, .seed = 1, .verbose = 0});
  const auto& loss = h.history.at("loss");
  EXPECT_LT(loss.back(), 0.1 * loss.front()) << "first " << loss.front() << ", last " << loss.back();
  // The memory estimate reads the layer's weight specs and output shape.
  const MemoryEstimate m = model.estimate_memory(16);
  EXPECT_GT(m.parameters, 4 * (4 * 4 * 8 * 8 + 8) * 2);
}

// --- ONNX ----------------------------------------------------------------------------------------------

Tensor nhwc(const Tensor& x) {  // (N, C, H, W) -> (N, H, W, C)
  const int64_t n = x.dim(0), c = x.dim(1), h = x.dim(2), w = x.dim(3);
  Tensor y = Tensor::empty({n, h, w, c});
  for (int64_t i = 0; i < n; ++i)
    for (int64_t ch = 0; ch < c; ++ch)
      for (int64_t r = 0; r < h; ++r)
        for (int64_t q = 0; q < w; ++q) y.data()[((i * h + r) * w + q) * c + ch] = x.data()[((i * c + ch) * h + r) * w + q];
  return y;
}

// PyTorch's DCGAN-style generator (make_onnx_fixtures.py's dcgan): ConvTranspose2d(4, stride 2,
// padding 1) is Keras' 'same' with stride 2, ConvTranspose2d(3, padding 1) 'same' with stride 1.
TEST(Conv2DTransposeOnnx, ImportsPyTorchsGenerator) {
  const auto fx = testing::load_fixture("onnx_dcgan");
  Model model = load_onnx(std::string(LAMINA_FIXTURE_DIR) + "/onnx_dcgan.onnx");
  std::vector<std::string> classes;
  for (const auto& l : model.layers()) classes.push_back(l->class_name());
  EXPECT_EQ(classes, (std::vector<std::string>{"InputLayer", "Conv2DTranspose", "BatchNormalization", "Activation",
                                               "Conv2DTranspose", "Conv2DTranspose"}));
  const Json up1 = model.layers()[1]->config();
  EXPECT_EQ(up1["padding"], "same");
  EXPECT_EQ(up1["strides"], Json::array({2, 2}));
  EXPECT_TRUE(up1["output_padding"].is_null());
  EXPECT_EQ(model.layers()[5]->config()["activation"], "tanh");
  EXPECT_EQ(model.count_params(), (6 * 4 * 16 + 4) + 4 * 4 + (4 * 1 * 16 + 1) + (1 * 2 * 9 + 2));
  EXPECT_TRUE(testing::all_close(model.predict(nhwc(fx.at("x"))), nhwc(fx.at("y")), 1e-4, 1e-4));
}

// PyTorch's usual decoder, ConvTranspose2d(3, stride 2, padding 1, output_padding 1), crops one
// cell before and none after: Keras' 'same' crops none before and one after (the same size,
// shifted), so the importer refuses it and says why.
TEST(Conv2DTransposeOnnx, RefusesACropKerasCannotPlace) {
  const std::string msg =
      error_of<ValueError>([] { load_onnx(std::string(LAMINA_FIXTURE_DIR) + "/onnx_decoder.onnx"); });
  EXPECT_CONTAINS(msg, "ConvTranspose");
  EXPECT_CONTAINS(msg, "crops (1, 1) at the start and (0, 0) at the end of its 11x11 output");
  EXPECT_CONTAINS(msg, "neither Keras padding");
}

}  // namespace
}  // namespace lamina
