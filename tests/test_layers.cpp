// Layers, activations and initializers: shapes, parameter counts, config round trips, errors.
#include <gtest/gtest.h>

#include <cmath>

#include "test_util.hpp"

namespace lamina {
namespace {

TEST(Dense, BuildShapesAndParams) {
  Generator gen(1);
  layers::Dense d({.units = 3, .activation = Activation::relu});
  d.set_name("dense");
  d.build({5}, gen);
  EXPECT_EQ(d.kernel().shape(), (Shape{5, 3}));
  EXPECT_EQ(d.bias().shape(), (Shape{3}));
  EXPECT_EQ(d.count_params(), 18);
  EXPECT_EQ(d.output_shape({5}), (Shape{3}));
  for (float b : d.bias().values()) EXPECT_EQ(b, 0.f);  // Keras default bias: zeros
  const float limit = std::sqrt(6.f / (5 + 3));       // glorot_uniform
  for (float w : d.kernel().values()) EXPECT_LE(std::fabs(w), limit);
  layers::Dense no_bias({.units = 2, .use_bias = false});
  no_bias.build({4}, gen);
  EXPECT_EQ(no_bias.count_params(), 8);
}

TEST(Dense, ForwardIsActivationOfAffine) {
  Generator gen(2);
  layers::Dense d(4, "tanh");
  d.build({3}, gen);
  d.bias().fill_(0.25f);
  Tensor x = Tensor::randn({2, 3}, gen);
  Tensor y = d.call(x, false);
  Tensor expected = tanh(matmul(x, d.kernel()) + d.bias());
  EXPECT_TRUE(testing::all_close(y, expected, 1e-6, 1e-6));
  // rank 3: applied to the last axis
  Tensor x3 = Tensor::randn({2, 5, 3}, gen);
  EXPECT_EQ(d.call(x3, false).shape(), (Shape{2, 5, 4}));
}

TEST(Dense, GradcheckWeightsAndInput) {
  Generator gen(3);
  auto d = std::make_shared<layers::Dense>(layers::Dense::Options{.units = 3, .activation = Activation::sigmoid});
  d->build({4}, gen);
  testing::Fn f = [d](const std::vector<Tensor>& in) {
    d->kernel() = in[1];
    d->bias() = in[2];
    return d->call(in[0], true);
  };
  EXPECT_TRUE(testing::gradcheck(f, {Tensor::randn({5, 4}, gen), d->kernel().detach(), d->bias().detach()}));
}

TEST(Dense, WrongInputNamesLayerAndShapes) {
  Generator gen(1);
  layers::Dense d(8);
  d.set_name("dense_1");
  d.build({784}, gen);
  try {
    d.call(Tensor::zeros({32, 28, 28}), false);
    FAIL();
  } catch (const ShapeError& e) {
    EXPECT_STREQ(e.what(),
                 "Dense 'dense_1' expects input (*, 784), got (32, 28, 28).\n  hint: add Flatten() before it, or set "
                 "input_shape=(784)");
  }
  EXPECT_THROW(layers::Dense(0), ValueError);
}

TEST(Layers, ConfigRoundTrip) {
  layers::Dense d({.units = 7,
                   .activation = "softmax",
                   .use_bias = false,
                   .kernel_initializer = Initializer::he_normal(),
                   .input_shape = Shape{12},
                   .name = "out"});
  const Json c = d.config();
  EXPECT_EQ(c["units"], 7);
  EXPECT_EQ(c["activation"], "softmax");
  EXPECT_EQ(c["kernel_initializer"]["class_name"], "HeNormal");
  EXPECT_EQ(c["batch_input_shape"], Json::parse("[null, 12]"));
  auto back = layer_from_config("Dense", c);
  EXPECT_EQ(back->config(), c);
  EXPECT_EQ(back->declared_input_shape(), Shape{12});

  layers::Flatten f({.input_shape = Shape{28, 28}, .name = "flat"});
  EXPECT_EQ(layer_from_config("Flatten", f.config())->config(), f.config());
  layers::Activation a(Activation::elu);
  a.set_name("act");
  EXPECT_EQ(layer_from_config("Activation", a.config())->config(), a.config());
  EXPECT_THROW(layer_from_config("Conv3DTranspose", Json::object()), ValueError);
}

TEST(Layers, FlattenActivationInput) {
  layers::Flatten f;
  EXPECT_EQ(f.call(Tensor::zeros({2, 3, 4}), false).shape(), (Shape{2, 12}));
  EXPECT_EQ(f.output_shape({3, 4}), (Shape{12}));
  layers::Activation a(Activation::relu);
  EXPECT_EQ(a.call(Tensor::from({-1.f, 2.f}), false).to_vector(), (std::vector<float>{0.f, 2.f}));
  layers::InputLayer in(Shape{3});
  EXPECT_NO_THROW(in.call(Tensor::zeros({5, 3}), false));
  EXPECT_THROW(in.call(Tensor::zeros({5, 4}), false), ShapeError);
}

TEST(Activation, NamesAndErrors) {
  EXPECT_EQ(Activation("relu").kind(), Activation::relu);
  EXPECT_EQ(Activation(Activation::log_softmax).name(), "log_softmax");
  EXPECT_EQ(Activation("").kind(), Activation::linear);
  try {
    Activation("swishy");
    FAIL();
  } catch (const ValueError& e) {
    EXPECT_NE(std::string(e.what()).find("activation 'swishy' is not known (known: "), std::string::npos);
  }
}

// Sample statistics of each initializer against its formula (fan_in 400, fan_out 100).
TEST(Initializers, Statistics) {
  const double fan_in = 400, fan_out = 100;
  struct Case {
    Initializer init;
    double mean, stddev;
  };
  const std::vector<Case> cases = {
      {Initializer::glorot_uniform(), 0, std::sqrt(6 / (fan_in + fan_out)) / std::sqrt(3.0)},
      {Initializer::glorot_normal(), 0, std::sqrt(2 / (fan_in + fan_out))},
      {Initializer::he_uniform(), 0, std::sqrt(6 / fan_in) / std::sqrt(3.0)},
      {Initializer::he_normal(), 0, std::sqrt(2 / fan_in)},
      {Initializer::lecun_uniform(), 0, std::sqrt(3 / fan_in) / std::sqrt(3.0)},
      {Initializer::lecun_normal(), 0, std::sqrt(1 / fan_in)},
      {Initializer::random_normal(1.f, 0.5f), 1, 0.5},
      {Initializer::random_uniform(-1.f, 3.f), 1, 4 / std::sqrt(12.0)},
      {Initializer::constant(0.3f), 0.3, 0},
      {Initializer::ones(), 1, 0},
  };
  for (const Case& c : cases) {
    Generator gen(9);
    Tensor t = Tensor::empty({400, 100});
    c.init.fill(t, gen);
    double s = 0, s2 = 0;
    for (float v : t.values()) s += v, s2 += static_cast<double>(v) * v;
    const double mean = s / 4e4, sd = std::sqrt(std::max(0.0, s2 / 4e4 - mean * mean));
    EXPECT_NEAR(mean, c.mean, 0.01 + 0.02 * c.stddev) << c.init.keras_name;
    EXPECT_NEAR(sd, c.stddev, 0.01 * c.stddev + 1e-6) << c.init.keras_name;
  }
}

// Orthogonal: gain times orthonormal columns (a tall matrix) or rows (a wide one, as an LSTM's
// recurrent kernel (U, 4U)); leading axes fold into the rows. Keras JSON both ways.
TEST(Initializers, Orthogonal) {
  for (const Shape& shape : {Shape{6, 3}, Shape{3, 12}, Shape{2, 2, 4}}) {
    Generator gen(3);
    Tensor t = Tensor::empty(shape);
    Initializer::orthogonal(2.f).fill(t, gen);
    const Tensor m = reshape(t, {-1, shape[-1]});
    const bool tall = m.dim(0) >= m.dim(1);
    const Tensor gram = tall ? matmul(transpose(m), m) : matmul(m, transpose(m));
    for (int64_t i = 0; i < gram.dim(0); ++i)
      for (int64_t j = 0; j < gram.dim(1); ++j)
        EXPECT_NEAR(gram.at({i, j}), i == j ? 4.f : 0.f, 1e-5) << shape << " at " << i << ", " << j;
  }
  const Initializer o = Initializer::from_config(Json::parse(
      R"({"module": "keras.initializers", "class_name": "Orthogonal", "config": {"gain": 0.5, "seed": null}, "registered_name": null})"));
  EXPECT_EQ(o.kind, Initializer::Kind::orthogonal);
  EXPECT_EQ(o.gain, 0.5f);
  EXPECT_EQ(o.config().at("config").at("gain"), 0.5);
  EXPECT_EQ(Initializer::from_config("orthogonal").gain, 1.f);
  Tensor v = Tensor::empty({4});
  Generator gen(1);
  EXPECT_THROW(Initializer::orthogonal().fill(v, gen), ValueError);
}

TEST(Initializers, SeededAndFromKerasJson) {
  Generator g1(5), g2(5);
  Tensor a = Tensor::empty({10, 10}), b = Tensor::empty({10, 10});
  Initializer::glorot_uniform().fill(a, g1);
  Initializer::glorot_uniform().fill(b, g2);
  EXPECT_EQ(a.to_vector(), b.to_vector());
  // Keras 2 writes VarianceScaling with its parameters; Keras 3 adds module/registered_name.
  const Initializer k2 = Initializer::from_config(Json::parse(
      R"({"class_name": "VarianceScaling", "config": {"scale": 2.0, "mode": "fan_in", "distribution": "truncated_normal", "seed": null}})"));
  EXPECT_EQ(k2.kind, Initializer::Kind::variance_scaling);
  EXPECT_EQ(k2.scale, 2.f);
  const Initializer k3 = Initializer::from_config(Json::parse(
      R"({"module": "keras.initializers", "class_name": "GlorotUniform", "config": {"seed": null}, "registered_name": null})"));
  EXPECT_EQ(k3.keras_name, "GlorotUniform");
  EXPECT_EQ(Initializer::from_config("he_uniform").keras_name, "HeUniform");
  EXPECT_EQ(Initializer::from_config(Initializer::random_normal(0.f, 2.f).config()).stddev, 2.f);
  EXPECT_THROW(Initializer::from_config("orthogonal_magic"), ValueError);
  // Keras' short aliases ("uniform" is Keras 3's Embedding default).
  EXPECT_EQ(Initializer::from_config("uniform").keras_name, Initializer::random_uniform(-0.05f, 0.05f).keras_name);
  EXPECT_EQ(Initializer::from_config("normal").stddev, 0.05f);
  EXPECT_EQ(Initializer::from_config("zero").keras_name, Initializer::zeros().keras_name);
  EXPECT_EQ(Initializer::from_config("one").keras_name, Initializer::ones().keras_name);
}

}  // namespace
}  // namespace lamina
