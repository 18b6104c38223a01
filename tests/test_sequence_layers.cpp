// The non-recurrent sequence layers: Embedding, Conv1D, the 1-D poolings, Masking, RepeatVector
// and TimeDistributed. Each against PyTorch (fixtures from tests/fixtures/make_fixtures_seq.py)
// and central differences, their Keras configs, parameter counts and errors.
#include <chrono>

#include "kernels/conv.hpp"
#include "lamina/lamina.hpp"
#include "test_util.hpp"

namespace lamina {
namespace {

using testing::error_of;
using layers::Conv1D;
using layers::Embedding;

// A layer called on inputs[0] with its weights replaced by inputs[1...] (the fixture's), so that
// the gradients of the weights reach the test's tensors.
template <class L>
testing::Fn with_weights(std::function<L()> make, Shape sample) {
  return [make, sample](const std::vector<Tensor>& in) {
    L layer = make();
    Generator gen(1);
    layer.build(sample, gen);
    for (size_t i = 1; i < in.size(); ++i) layer.weights().at(i - 1).value = in[i];
    return layer.call(in[0], true);
  };
}

struct SeqCase {
  const char* fixture;
  testing::Fn fn;
  std::vector<bool> check;  // which inputs gradcheck nudges (not ids or masks)
};

void PrintTo(const SeqCase& c, std::ostream* os) { *os << c.fixture; }

Tensor embed(const std::vector<Tensor>& in) {  // fixture: table, ids
  Embedding e({.input_dim = 7, .output_dim = 4});
  Generator gen(1);
  e.build(Shape{5}, gen);
  e.embeddings() = in[0];
  return e.call(in[1], true);
}

testing::Fn conv(int64_t filters, int64_t k, int64_t strides, Padding1D padding, int64_t dilation, bool bias,
                 Shape sample) {
  return with_weights<Conv1D>(
      [=] {
        return Conv1D({.filters = filters, .kernel_size = k, .strides = strides, .padding = padding,
                       .dilation_rate = dilation, .use_bias = bias});
      },
      sample);
}

template <class L>
testing::Fn plain(typename L::Options o, Shape sample) {
  return with_weights<L>([o] { return L(o); }, sample);
}

Tensor masked_mean(const std::vector<Tensor>& in) {
  return layers::GlobalAveragePooling1D().call_masked(in[0], in[1]);
}

const std::vector<SeqCase> kCases = {
    {"embedding", embed, {true, false}},
    {"conv1d_valid", conv(4, 3, 1, Padding1D::valid, 1, true, {9, 3}), {}},
    {"conv1d_same_strided", conv(2, 4, 2, Padding1D::same, 1, true, {9, 3}), {}},
    {"conv1d_same_dilated", conv(3, 2, 1, Padding1D::same, 3, true, {8, 2}), {}},
    {"conv1d_causal_dilated", conv(2, 3, 1, Padding1D::causal, 2, false, {7, 3}), {}},
    {"max_pool1d_valid", plain<layers::MaxPooling1D>({}, {7, 3}), {}},
    {"max_pool1d_same", plain<layers::MaxPooling1D>({.pool_size = 3, .strides = 2, .padding = Padding::same}, {8, 3}), {}},
    {"avg_pool1d_valid", plain<layers::AveragePooling1D>({.pool_size = 3, .strides = 1}, {7, 3}), {}},
    {"avg_pool1d_same", plain<layers::AveragePooling1D>({.pool_size = 3, .strides = 2, .padding = Padding::same}, {8, 3}), {}},
    {"global_max_pool1d", plain<layers::GlobalMaxPooling1D>({}, {5, 3}), {}},
    {"global_avg_pool1d", plain<layers::GlobalAveragePooling1D>({}, {5, 3}), {}},
    {"global_avg_pool1d_masked", masked_mean, {true, false}},
};

class SequenceLayer : public ::testing::TestWithParam<SeqCase> {};

TEST_P(SequenceLayer, MatchesPyTorch) { testing::expect_matches_pytorch(GetParam().fixture, GetParam().fn, 1e-4); }

TEST_P(SequenceLayer, GradientsMatchCentralDifferences) {
  const SeqCase& c = GetParam();
  const testing::OpFixture l(c.fixture);
  testing::GradcheckOptions opt;
  opt.check = c.check;
  EXPECT_TRUE(testing::gradcheck(c.fn, l.inputs, opt)) << c.fixture;
}

INSTANTIATE_TEST_SUITE_P(Fixtures, SequenceLayer, ::testing::ValuesIn(kCases),
                         [](const auto& info) { return std::string(info.param.fixture); });

// The dilated geometry Conv1D hands the oneDNN kernel, against the naive loops (forward, both
// backward passes), with strides, explicit pads, and the first-layer (C <= 3) path.
TEST(SequenceLayer, DilatedConvKernelMatchesNaive) {
  Generator gen(5);
  struct G { int64_t n, t, c, f, k, s, d, lo, hi; };
  for (const G& s : {G{2, 11, 3, 4, 3, 1, 2, 4, 0}, G{1, 17, 8, 16, 4, 1, 3, 4, 5}, G{3, 9, 5, 2, 2, 2, 1, 0, 1}}) {
    const int64_t out = (s.t + s.lo + s.hi - ((s.k - 1) * s.d + 1)) / s.s + 1;
    const kernels::Geometry2d g{.n = s.n, .h = 1, .w = s.t, .c = s.c, .f = s.f, .kh = 1, .kw = s.k, .sh = 1,
                                .sw = s.s, .pad_left = s.lo, .pad_right = s.hi, .oh = 1, .ow = out, .dw = s.d};
    const Tensor x = Tensor::randn({g.n, 1, g.w, g.c}, gen), w = Tensor::randn({1, g.kw, g.c, g.f}, gen);
    const Tensor b = Tensor::randn({g.f}, gen), dy = Tensor::randn({g.n, 1, g.ow, g.f}, gen);
    Tensor y = Tensor::empty(dy.shape()), y_ref = y.clone();
    kernels::conv2d_forward(g, x.data(), w.data(), b.data(), y.data(), kernels::Eltwise::none);
    kernels::ref::conv2d_forward(g, x.data(), w.data(), b.data(), y_ref.data(), kernels::Eltwise::none);
    EXPECT_TRUE(testing::all_close(y, y_ref, 1e-5, 1e-5));
    Tensor dx = Tensor::empty(x.shape()), dx_ref = dx.clone();
    kernels::conv2d_backward_data(g, dy.data(), w.data(), dx.data(), false);
    kernels::ref::conv2d_backward_data(g, dy.data(), w.data(), dx_ref.data(), false);
    EXPECT_TRUE(testing::all_close(dx, dx_ref, 1e-5, 1e-5));
    Tensor dw = Tensor::empty(w.shape()), dw_ref = dw.clone(), db = Tensor::empty({g.f}), db_ref = db.clone();
    kernels::conv2d_backward_weights(g, x.data(), dy.data(), dw.data(), false, db.data(), false);
    kernels::ref::conv2d_backward_weights(g, x.data(), dy.data(), dw_ref.data(), false, db_ref.data(), false);
    EXPECT_TRUE(testing::all_close(dw, dw_ref, 1e-5, 1e-4));
    EXPECT_TRUE(testing::all_close(db, db_ref, 1e-5, 1e-4));
  }
}

// --- Embedding -------------------------------------------------------------------------------------

TEST(Embedding, RowsOfTheTableAndKerasDefaults) {
  Embedding e(10, 3);
  EXPECT_EQ(e.options().embeddings_initializer.config()["class_name"], "RandomUniform");
  Generator gen(3);
  e.build(Shape{4}, gen);
  ASSERT_EQ(e.weights().size(), 1u);
  EXPECT_EQ(e.weights()[0].name, "embeddings");
  EXPECT_EQ(e.embeddings().shape(), (Shape{10, 3}));
  for (int64_t i = 0; i < 30; ++i) EXPECT_LE(std::abs(e.embeddings().data()[i]), 0.05f);
  const Tensor y = e.call(Tensor::from({{0, 9, 2, 9}, {1, 1, 0, 3}}), false);
  ASSERT_EQ(y.shape(), (Shape{2, 4, 3}));
  for (int64_t j = 0; j < 3; ++j) {
    EXPECT_EQ(y.data()[(0 * 4 + 1) * 3 + j], e.embeddings().data()[9 * 3 + j]);
    EXPECT_EQ(y.data()[(1 * 4 + 3) * 3 + j], e.embeddings().data()[3 * 3 + j]);
  }
  EXPECT_EQ(e.output_shape(Shape{4}), (Shape{4, 3}));
  EXPECT_FALSE(e.mask_for(Tensor::from({{0, 1}})).defined());
}

TEST(Embedding, MaskZeroMarksPadding) {
  Embedding e({.input_dim = 5, .output_dim = 2, .mask_zero = true});
  const Tensor m = e.mask_for(Tensor::from({{3, 0, 1}, {0, 0, 4}}));
  EXPECT_TRUE(testing::all_close(m, Tensor::from({{1, 0, 1}, {0, 0, 1}}), 0, 0));
}

TEST(Embedding, BadIdNamesLayerRowPositionAndInputDim) {
  Embedding e({.input_dim = 6, .output_dim = 2, .name = "words"});
  Generator gen(1);
  e.build(Shape{3}, gen);
  std::string msg = error_of<ValueError>([&] { e.call(Tensor::from({{1, 2, 3}, {4, 6, 0}}), false); });
  EXPECT_CONTAINS(msg, "Embedding 'words': index 6 at batch row 1, position 1");
  EXPECT_CONTAINS(msg, "input_dim 6");
  msg = error_of<ValueError>([&] { e.call(Tensor::from({{1, -1, 3}}), false); });
  EXPECT_CONTAINS(msg, "index -1 at batch row 0, position 1");
  msg = error_of<ValueError>([&] { e.call(Tensor::from({{1, 2, 2.5f}}), false); });
  EXPECT_CONTAINS(msg, "index 2.5 at batch row 0, position 2");
  msg = error_of<ValueError>([&] { e.call(Tensor::from({{1, 2, std::nanf("")}}), false); });
  EXPECT_CONTAINS(msg, "index nan at batch row 0, position 2");
  // An empty batch is no error: (0, 3) -> (0, 3, 2).
  EXPECT_EQ(e.call(Tensor::zeros({0, 3}), false).shape(), (Shape{0, 3, 2}));
  EXPECT_CONTAINS(error_of<ValueError>([] { Embedding(0, 4); }), "input_dim and output_dim must be positive");
}

// IMDB's shapes: a 20000 x 128 table, batch 32 x 200. The gradient scatters into the rows used.
TEST(Embedding, ImdbSizedStepIsFast) {
  Embedding e(20000, 128);
  Generator gen(2);
  e.build(Shape{200}, gen);
  Tensor ids = Tensor::empty({32, 200});
  for (int64_t i = 0; i < ids.numel(); ++i) ids.data()[i] = static_cast<float>(gen.below(20000));
  ids.data()[0] = ids.data()[1] = 7;  // a repeated id: its gradients add
  const auto start = std::chrono::steady_clock::now();
  for (int step = 0; step < 5; ++step) {
    e.embeddings().zero_grad(true);
    Tensor y = e.call(ids, true);
    y.backward(Tensor::ones(y.shape()));
  }
  const double ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count() / 5;
  const Tensor& g = e.embeddings().grad();
  EXPECT_EQ(g.data()[7 * 128], 2.f + [&] {
    float extra = 0;
    for (int64_t i = 2; i < ids.numel(); ++i) extra += ids.data()[i] == 7.f;
    return extra;
  }());
  std::printf("Embedding 20000x128, batch 32x200: %.2f ms per forward + backward\n", ms);
  EXPECT_LT(ms, 200.0);
}

// --- Conv1D ----------------------------------------------------------------------------------------

TEST(Conv1D, ShapesWeightsAndPaddings) {
  Conv1D c({.filters = 4, .kernel_size = 3});
  EXPECT_EQ(c.output_shape(Shape{10, 2}), (Shape{8, 4}));
  const auto specs = c.weight_specs(Shape{10, 2});
  ASSERT_EQ(specs.size(), 2u);
  EXPECT_EQ(specs[0].shape, (Shape{3, 2, 4}));  // Keras' (kernel_size, in, filters)
  EXPECT_EQ(Conv1D({.filters = 1, .kernel_size = 3, .padding = Padding1D::same}).output_shape(Shape{10, 2}),
            (Shape{10, 1}));
  EXPECT_EQ(Conv1D({.filters = 1, .kernel_size = 3, .strides = 3, .padding = Padding1D::causal})
                .output_shape(Shape{10, 2}),
            (Shape{4, 1}));
  EXPECT_EQ(Conv1D({.filters = 1, .kernel_size = 3, .dilation_rate = 4}).output_shape(Shape{10, 2}), (Shape{2, 1}));
}

// Causal: output t does not change when inputs after t do.
TEST(Conv1D, CausalSeesNoFuture) {
  Conv1D c({.filters = 2, .kernel_size = 3, .padding = Padding1D::causal, .dilation_rate = 2});
  Generator gen(4);
  c.build(Shape{8, 3}, gen);
  Tensor x = Tensor::randn({1, 8, 3}, gen);
  const Tensor y0 = c.call(x, false);
  for (int64_t j = 5 * 3; j < 8 * 3; ++j) x.data()[j] += 1.f;
  const Tensor y1 = c.call(x, false);
  for (int64_t j = 0; j < 5 * 2; ++j) EXPECT_EQ(y0.data()[j], y1.data()[j]);
  EXPECT_NE(y0.data()[5 * 2], y1.data()[5 * 2]);
}

TEST(Conv1D, Errors) {
  Conv1D c({.filters = 2, .kernel_size = 5, .name = "c1"});
  std::string msg = error_of<ShapeError>([&] { c.output_shape(Shape{10}); });
  EXPECT_CONTAINS(msg, "Conv1D 'c1' expects input sequences (batch, steps, features), got (10)");
  EXPECT_CONTAINS(error_of<ShapeError>([&] { c.output_shape(Shape{4, 3}); }), "at least 5 steps");
  Generator gen(1);
  c.build(Shape{10, 3}, gen);
  EXPECT_CONTAINS(error_of<ShapeError>([&] { c.call(Tensor::zeros({2, 10}), false); }), "Conv1D 'c1' expects input");
  EXPECT_CONTAINS(error_of<ShapeError>([&] { c.call(Tensor::zeros({2, 10, 4}), false); }), "(batch, steps, 3)");
  EXPECT_CONTAINS(error_of<ShapeError>([&] { c.call(Tensor::zeros({2, 0, 3}), false); }), "at least 5 steps");
  EXPECT_CONTAINS(error_of<ValueError>([] { Conv1D({.filters = 2, .kernel_size = 0}); }), "kernel_size");
  EXPECT_CONTAINS(error_of<ValueError>([] { Conv1D({.filters = 2, .kernel_size = 3, .strides = 2, .dilation_rate = 2}); }),
                  "cannot both be above 1");
  Json cfg = {{"name", "c"}, {"filters", 2}, {"kernel_size", 3}, {"groups", 2}};
  EXPECT_CONTAINS(error_of<ValueError>([&] { layer_from_config("Conv1D", cfg); }), "Conv1D 'c': groups = 2 is not supported");
  cfg["groups"] = 1;
  cfg["data_format"] = "channels_first";
  EXPECT_CONTAINS(error_of<ValueError>([&] { layer_from_config("Conv1D", cfg); }), "data_format 'channels_first'");
  cfg["data_format"] = "channels_last";
  cfg["padding"] = "full";
  EXPECT_CONTAINS(error_of<ValueError>([&] { layer_from_config("Conv1D", cfg); }), "padding 'full'");
}

// --- pooling ---------------------------------------------------------------------------------------

TEST(Pooling1D, ShapesAndErrors) {
  layers::MaxPooling1D p({.name = "p"});
  EXPECT_EQ(p.output_shape(Shape{7, 3}), (Shape{3, 3}));
  EXPECT_EQ(layers::AveragePooling1D({.pool_size = 3, .strides = 2, .padding = Padding::same}).output_shape(Shape{7, 3}),
            (Shape{4, 3}));
  EXPECT_CONTAINS(error_of<ShapeError>([&] { p.output_shape(Shape{7, 3, 1}); }), "MaxPooling1D 'p' expects input");
  EXPECT_CONTAINS(error_of<ShapeError>([&] { p.output_shape(Shape{1, 3}); }), "at least 2 steps");
  EXPECT_CONTAINS(error_of<ShapeError>([&] { p.call(Tensor::zeros({2, 1, 3}), false); }), "at least 2 steps");
  EXPECT_CONTAINS(error_of<ShapeError>([&] { p.call(Tensor::zeros({2, 6}), false); }), "(batch, steps, features)");
  EXPECT_CONTAINS(error_of<ValueError>([] { layers::MaxPooling1D({.pool_size = 0}); }), "pool_size");
  const Json cfg = {{"name", "p"}, {"data_format", "channels_first"}};
  EXPECT_CONTAINS(error_of<ValueError>([&] { layer_from_config("AveragePooling1D", cfg); }), "channels_last");
  EXPECT_CONTAINS(error_of<ValueError>([&] { layer_from_config("GlobalMaxPooling1D", cfg); }), "channels_last");

  layers::GlobalMaxPooling1D gmax({.keepdims = true, .name = "g"});
  EXPECT_EQ(gmax.output_shape(Shape{5, 3}), (Shape{1, 3}));
  EXPECT_EQ(gmax.call(Tensor::zeros({2, 5, 3}), false).shape(), (Shape{2, 1, 3}));
  EXPECT_CONTAINS(error_of<ShapeError>([&] { gmax.call(Tensor::zeros({2, 0, 3}), false); }),
                  "GlobalMaxPooling1D 'g' expects input (batch, steps >= 1, features), got (2, 0, 3)");
  EXPECT_CONTAINS(error_of<ShapeError>([&] { layers::GlobalAveragePooling1D().output_shape(Shape{5}); }),
                  "expects input sequences");
}

TEST(Pooling1D, MaskedMeanLeavesPaddingOut) {
  const Tensor x = Tensor::from(std::vector<float>{1, 10, 2, 20, 100, 100}, {1, 3, 2});
  const Tensor y = layers::GlobalAveragePooling1D().call_masked(x, Tensor::from({{1, 1, 0}}));
  EXPECT_TRUE(testing::all_close(y, Tensor::from({{1.5f, 15.f}}), 1e-6, 1e-6));
  EXPECT_CONTAINS(error_of<ShapeError>([&] { layers::GlobalAveragePooling1D().call_masked(x, Tensor::ones({1, 2})); }),
                  "mask (1, 2) does not match input (1, 3, 2)");
}

// --- Masking, RepeatVector, TimeDistributed ------------------------------------------------------------

TEST(Masking, ZeroesPaddedStepsAndGivesTheMask) {
  layers::Masking m({.mask_value = -1.f});
  Tensor x = Tensor::from(std::vector<float>{1, 2, -1, -1, -1, 3, -1, -1}, {2, 2, 2}).requires_grad_();
  const Tensor y = m.call(x, true);
  EXPECT_TRUE(testing::all_close(y, Tensor::from(std::vector<float>{1, 2, 0, 0, -1, 3, 0, 0}, {2, 2, 2}), 0, 0));
  EXPECT_TRUE(testing::all_close(m.mask_for(x), Tensor::from({{1, 0}, {1, 0}}), 0, 0));
  EXPECT_TRUE(testing::gradcheck([&](const std::vector<Tensor>& in) { return m.call(in[0], true); },
                                 {Tensor::from(std::vector<float>{1, 2, 5, 6, 0.5f, 3, 7, 8}, {2, 2, 2})}));
  EXPECT_CONTAINS(error_of<ShapeError>([&] { m.call(Tensor::zeros({2, 3}), false); }), "Masking");
}

TEST(RepeatVector, RepeatsAndSumsGradients) {
  layers::RepeatVector r(3);
  EXPECT_EQ(r.output_shape(Shape{4}), (Shape{3, 4}));
  const Tensor x = Tensor::from({{1, 2}, {3, 4}});
  EXPECT_TRUE(testing::all_close(r.call(x, false), Tensor::from(std::vector<float>{1, 2, 1, 2, 1, 2, 3, 4, 3, 4, 3, 4},
                                                                {2, 3, 2}),
                                 0, 0));
  EXPECT_TRUE(testing::gradcheck([&](const std::vector<Tensor>& in) { return r.call(in[0], true); }, {x}));
  EXPECT_CONTAINS(error_of<ShapeError>([&] { r.call(Tensor::zeros({2, 3, 4}), false); }),
                  "RepeatVector '' expects input (batch, features)");
  EXPECT_CONTAINS(error_of<ValueError>([] { layers::RepeatVector(0); }), "n must be a positive integer");
}

TEST(TimeDistributed, DenseOnEveryStepWithItsWeights) {
  auto dense = std::make_shared<layers::Dense>(layers::Dense::Options{.units = 3, .name = "inner"});
  layers::TimeDistributed td(dense);
  Generator gen(8);
  td.build(Shape{5, 4}, gen);
  EXPECT_EQ(td.count_params(), 4 * 3 + 3);
  EXPECT_EQ(td.output_shape(Shape{5, 4}), (Shape{5, 3}));
  EXPECT_EQ(td.weights()[0].value.impl(), dense->kernel().impl());  // the same tensors
  const Tensor x = Tensor::randn({2, 5, 4}, gen);
  const Tensor y = td.call(x, false);
  const Tensor step = dense->call(slice(x, 1, 2, 3).reshape({2, 4}), false);
  EXPECT_TRUE(testing::all_close(slice(y, 1, 2, 3).reshape({2, 3}), step, 1e-6, 1e-6));
  EXPECT_TRUE(testing::gradcheck(
      [&](const std::vector<Tensor>& in) {
        td.weights()[0].value = in[1];
        dense->weights()[0].value = in[1];
        return td.call(in[0], true);
      },
      {x, dense->kernel().clone()}));
  EXPECT_CONTAINS(error_of<ShapeError>([&] { td.output_shape(Shape{4}); }), "TimeDistributed");
  td.set_trainable(false);
  EXPECT_FALSE(dense->trainable());
}

TEST(TimeDistributed, ConfigRoundTripsTheInnerLayer) {
  layers::TimeDistributed td(std::make_shared<Conv1D>(Conv1D::Options{.filters = 2, .kernel_size = 2, .name = "c"}));
  const Json j = td.config();
  EXPECT_EQ(j["layer"]["class_name"], "Conv1D");
  const auto back = layer_from_config("TimeDistributed", j);
  EXPECT_EQ(back->config(), j);
  EXPECT_EQ(back->output_shape(Shape{3, 6, 2}), (Shape{3, 5, 2}));
  Json bad = j;
  bad["layer"]["config"]["foo"] = 1;
  EXPECT_CONTAINS(error_of<ValueError>([&] { layer_from_config("TimeDistributed", bad); }), "config key 'foo'");
  EXPECT_CONTAINS(error_of<ValueError>([] { layer_from_config("TimeDistributed", Json{{"name", "t"}}); }),
                  "TimeDistributed 't': 'layer' must be a serialized layer");
}

// --- models: parameter counts as Keras' summary, configs both ways, training ----------------------

TEST(SequenceModel, ParamCountsAsKeras) {
  Sequential model({Embedding({.input_dim = 20000, .output_dim = 128, .input_shape = Shape{200}}),
                    Conv1D({.filters = 32, .kernel_size = 7, .activation = "relu"}), layers::MaxPooling1D({.pool_size = 5}),
                    Conv1D({.filters = 32, .kernel_size = 7, .padding = Padding1D::causal, .dilation_rate = 2}),
                    layers::GlobalMaxPooling1D(), layers::RepeatVector(4),
                    layers::TimeDistributed(std::make_shared<layers::Dense>(8)), layers::GlobalAveragePooling1D(),
                    layers::Dense(1)});
  model.build(Shape{200});
  const std::vector<int64_t> expected = {2560000, 7 * 128 * 32 + 32, 0, 7 * 32 * 32 + 32, 0, 0, 32 * 8 + 8, 0, 9};
  ASSERT_EQ(model.layers().size(), expected.size());
  for (size_t i = 0; i < expected.size(); ++i) EXPECT_EQ(model.layers()[i]->count_params(), expected[i]) << i;
  std::ostringstream summary;
  model.summary(summary);
  EXPECT_CONTAINS(summary.str(), "2,560,000");
  EXPECT_CONTAINS(summary.str(), "(None, 194, 32)");
  // Keras JSON both ways: the same model, the same predictions.
  Model back = Model::from_json(model.to_json());
  back.set_weights(model.get_weights());
  Generator gen(3);
  Tensor ids = Tensor::empty({2, 200});
  for (int64_t i = 0; i < ids.numel(); ++i) ids.data()[i] = static_cast<float>(gen.below(20000));
  EXPECT_TRUE(testing::all_close(back.predict(ids), model.predict(ids), 1e-6, 1e-6));
}

// A Keras 2 Embedding config: input_length is the input shape, input_dim is not.
TEST(SequenceModel, Keras2EmbeddingConfig) {
  const Json c = {{"name", "embedding"}, {"input_dim", 100}, {"output_dim", 8}, {"input_length", 12},
                  {"embeddings_initializer", {{"class_name", "RandomUniform"}, {"config", {{"minval", -0.05}, {"maxval", 0.05}}}}},
                  {"mask_zero", true}, {"batch_input_shape", {nullptr, 12}}};
  const auto e = layer_from_config("Embedding", c);
  EXPECT_EQ(*e->declared_input_shape(), (Shape{12}));
  Json no_shape = c;
  no_shape.erase("batch_input_shape");
  no_shape["input_length"] = 9;
  EXPECT_EQ(*layer_from_config("Embedding", no_shape)->declared_input_shape(), (Shape{9}));
  no_shape.erase("input_length");
  EXPECT_FALSE(layer_from_config("Embedding", no_shape)->declared_input_shape().has_value());
  no_shape["sparse"] = true;
  EXPECT_CONTAINS(error_of<ValueError>([&] { layer_from_config("Embedding", no_shape); }),
                  "Embedding 'embedding': sparse = true is not supported");
}

// A small text classifier learns: Embedding -> Conv1D -> GlobalMaxPooling1D -> Dense, token 1 in a
// sequence means class 1.
TEST(SequenceModel, TextClassifierLearns) {
  Generator gen(11);
  const int64_t n = 64, t = 12;
  Tensor ids = Tensor::empty({n, t}), labels = Tensor::empty({n});
  for (int64_t i = 0; i < n; ++i) {
    labels.data()[i] = static_cast<float>(i % 2);
    for (int64_t j = 0; j < t; ++j) ids.data()[i * t + j] = static_cast<float>(2 + gen.below(18));
    if (i % 2) ids.data()[i * t + static_cast<int64_t>(gen.below(t))] = 1.f;
  }
  manual_seed(5);
  Sequential model({Embedding({.input_dim = 20, .output_dim = 8, .input_shape = Shape{t}}),
                    Conv1D({.filters = 8, .kernel_size = 3, .padding = Padding1D::same, .activation = "relu"}),
                    layers::GlobalMaxPooling1D(), layers::Dense(1, "sigmoid")});
  model.compile(Adam({.learning_rate = 0.02}), losses::BinaryCrossentropy(), {"accuracy"});
  model.fit(ids, labels.reshape({n, 1}), {.epochs = 30, .batch_size = 16, .verbose = 0});
  const Logs result = model.evaluate(ids, labels.reshape({n, 1}), {.verbose = 0});
  EXPECT_GE(*result.get("accuracy"), 0.95);
}

}  // namespace
}  // namespace lamina
