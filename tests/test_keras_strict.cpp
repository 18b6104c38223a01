// Keras JSON is never read silently wrong: every config key of every registered layer class is
// honoured or refused by name (fixtures/keras_layer_configs.json, one Keras 3 config per class);
// trainable, regularizers and constraints behave as Keras' (checked by hand computations).
#include <unistd.h>

#include <filesystem>
#include <sstream>

#include "test_util.hpp"

namespace lamina {
namespace {

namespace fs = std::filesystem;
using testing::error_of;

Json fixture_configs() {
  return Json::parse(io::read_file(std::string(LAMINA_FIXTURE_DIR) + "/keras_layer_configs.json"));
}

// Whether a config value Lamina wrote back is the one asked for: numbers to float precision,
// serialized objects by class_name and the config entries asked for (module and registered_name
// are Keras' wrapper).
bool same_value(const Json& got, const Json& want) {
  if (want.is_number() && got.is_number()) {
    const double a = got.get<double>(), b = want.get<double>();
    return std::abs(a - b) <= 1e-6 * std::max(1.0, std::abs(b));
  }
  if (want.is_array()) {
    if (!got.is_array() || got.size() != want.size()) return false;
    for (size_t i = 0; i < want.size(); ++i)
      if (!same_value(got[i], want[i])) return false;
    return true;
  }
  if (want.is_object() && want.contains("class_name")) {
    if (!got.is_object() || got.value("class_name", "") != want["class_name"]) return false;
    const Json config = want.value("config", Json::object());
    for (const auto& [k, v] : config.items())
      if (!got.contains("config") || !got["config"].contains(k) || !same_value(got["config"][k], v)) return false;
    return true;
  }
  return got == want;
}

TEST(KerasStrict, EveryRegisteredClassHasAFixtureConfig) {
  const Json fx = fixture_configs();
  for (const std::string& cls : registered_layers()) {
    // Registered by test_registry.cpp ("Scale") and test_functional.cpp ("Test..."), which may run first here.
    if (cls == "Scale" || cls.rfind("Test", 0) == 0) continue;
    EXPECT_TRUE(fx.contains(cls)) << "layer class '" << cls
                                  << "' has no entry in tests/fixtures/keras_layer_configs.json: add its full Keras "
                                     "config and a non-default value for each key (make_keras_layer_configs.py)";
  }
}

TEST(KerasStrict, EveryKeyIsHonouredOrRefusedByName) {
  const Json fx = fixture_configs();
  for (const auto& [cls, entry] : fx.items()) {
    const Json& config = entry["config"];
    std::shared_ptr<Layer> layer;
    ASSERT_NO_THROW(layer = layer_from_config(cls, config)) << cls;
    const std::string name = config["name"].get<std::string>();
    const Json structural = entry.value("structural", Json::array());
    for (const auto& [key, value] : config.items()) {
      const bool skip = std::find(structural.begin(), structural.end(), Json(key)) != structural.end();
      if (skip) continue;
      ASSERT_TRUE(entry["changed"].contains(key)) << cls << ": the fixture has no changed value for key '" << key << "'";
      Json changed = config;
      changed[key] = entry["changed"][key];
      std::shared_ptr<Layer> loaded;
      try {
        loaded = layer_from_config(cls, changed);
      } catch (const ValueError& e) {
        const std::string msg = e.what();
        const std::string layer_name = key == "name" ? changed["name"].get<std::string>() : name;
        const std::string shown = cls == "Model" ? "Functional" : cls;  // Keras 2's name for a Functional
        EXPECT_CONTAINS(msg, shown + " '" + layer_name + "'");
        EXPECT_CONTAINS(msg, key);
        continue;
      }
      const Json written = loaded->config();
      EXPECT_TRUE(written.contains(key) && same_value(written[key], changed[key]))
          << cls << "." << key << " = " << changed[key].dump() << " was neither honoured nor refused; config() wrote "
          << (written.contains(key) ? written[key].dump() : std::string("nothing"));
    }
  }
}

TEST(KerasStrict, AnUnknownKeyIsRefusedNamingLayerAndKey) {
  const Json fx = fixture_configs();
  for (const auto& [cls, entry] : fx.items()) {
    Json c = entry["config"];
    c["foo"] = 1;
    const std::string msg = error_of<ValueError>([&] { layer_from_config(cls, c); });
    EXPECT_CONTAINS(msg, (cls == "Model" ? std::string("Functional") : cls) + " '" + c["name"].get<std::string>() + "': config key 'foo' is not supported by Lamina");
  }
  // Keys newer Keras writes only to say "off" load when null, and are refused otherwise.
  Json quantized = fx["Dense"]["config"];
  quantized["quantization_config"] = nullptr;
  quantized["lora_rank"] = nullptr;
  EXPECT_NO_THROW(layer_from_config("Dense", quantized));
  quantized["lora_rank"] = 4;
  EXPECT_CONTAINS(error_of<ValueError>([&] { layer_from_config("Dense", quantized); }),
                  "Dense 'dense': config key 'lora_rank' is not supported by Lamina");
  // Inside a model file, the message also says where.
  Json dense = fx["Dense"]["config"];
  dense["kernel_quantizer"] = nullptr;
  Json model = {{"class_name", "Sequential"},
                {"config",
                 {{"name", "seq"},
                  {"layers", Json::array({Json{{"class_name", "InputLayer"}, {"config", fx["InputLayer"]["config"]}},
                                          Json{{"class_name", "Dense"}, {"config", dense}}})}}}};
  EXPECT_CONTAINS(error_of<ValueError>([&] { Model::from_json(model); }),
                  "Dense 'dense': config key 'kernel_quantizer' is not supported by Lamina");
  model["config"]["layers"][1]["config"].erase("kernel_quantizer");
  EXPECT_NO_THROW(Model::from_json(model));
  model["config"]["foo"] = true;
  EXPECT_CONTAINS(error_of<ValueError>([&] { Model::from_json(model); }),
                  "Sequential 'seq': config key 'foo' is not supported by Lamina");
}

TEST(KerasStrict, RealKerasFilesStillLoadWithTheirParamCounts) {
  auto load = [](const std::string& name) {
    return Model::from_json(Json::parse(io::read_file(std::string(LAMINA_FIXTURE_DIR) + "/../corpus/keras/" + name)));
  };
  EXPECT_EQ(load("keras2_simple_add_two_inputs.json").count_params(), 436);
  EXPECT_EQ(load("keras2_agz_dual_res_two_outputs.json").count_params(), 23881170);
  EXPECT_EQ(load("keras3_autoencoder_nested_sequential.json").count_params(), 269249);
}

// --- trainable ---------------------------------------------------------------------------------------

// A Keras 3 Sequential: 4 -> Dense 8 relu (frozen) -> Dense 3.
Json frozen_mlp_json() {
  const Json fx = fixture_configs();
  Json input = {{"class_name", "InputLayer"}, {"config", fx["InputLayer"]["config"]}};
  Json d1 = {{"class_name", "Dense"}, {"config", fx["Dense"]["config"]}};
  d1["config"]["name"] = "frozen";
  d1["config"]["units"] = 8;
  d1["config"]["activation"] = "relu";
  d1["config"]["trainable"] = false;
  Json d2 = {{"class_name", "Dense"}, {"config", fx["Dense"]["config"]}};
  d2["config"]["name"] = "head";
  d2["config"]["units"] = 3;
  return {{"class_name", "Sequential"}, {"config", {{"name", "fine_tune"}, {"layers", {input, d1, d2}}}}};
}

std::vector<float> values_of(const Tensor& t) { return std::vector<float>(t.data(), t.data() + t.numel()); }

struct Data {
  Tensor x, y;
};
Data regression_data(int64_t n, int64_t in, int64_t out, uint64_t seed) {
  Generator gen(seed);
  return {Tensor::randn({n, in}, gen), Tensor::randn({n, out}, gen)};
}

fs::path temp_path(const std::string& file) {
  fs::path d = fs::temp_directory_path() / ("lamina_test_keras_strict_" + std::to_string(::getpid()));
  fs::create_directories(d);
  return d / file;
}

TEST(Trainable, FrozenLayerFromKerasJsonStaysBitIdenticalThroughFit) {
  manual_seed(3);
  Model m = Model::from_json(frozen_mlp_json());
  EXPECT_FALSE(m.layer("frozen").trainable());
  EXPECT_TRUE(m.layer("head").trainable());
  ASSERT_EQ(m.trainable_weights().size(), 2u);
  const auto frozen_before = values_of(m.layer("frozen").weights()[0].value);
  const auto frozen_bias_before = values_of(m.layer("frozen").weights()[1].value);
  const auto head_before = values_of(m.layer("head").weights()[0].value);
  m.compile(Adam({.learning_rate = 0.05f}), "mse");
  const Data d = regression_data(64, 4, 3, 5);
  m.fit(d.x, d.y, {.epochs = 3, .batch_size = 16, .verbose = 0});
  EXPECT_EQ(values_of(m.layer("frozen").weights()[0].value), frozen_before);
  EXPECT_EQ(values_of(m.layer("frozen").weights()[1].value), frozen_bias_before);
  EXPECT_NE(values_of(m.layer("head").weights()[0].value), head_before);
  EXPECT_FALSE(m.layer("frozen").weights()[0].value.requires_grad());

  std::ostringstream summary;
  m.summary(summary);
  EXPECT_CONTAINS(summary.str(), "Trainable params: 27 ");
  EXPECT_CONTAINS(summary.str(), "Non-trainable params: 40 ");

  EXPECT_EQ(m.to_json()["config"]["layers"][1]["config"]["trainable"], false);
  const std::string path = temp_path("frozen.safetensors").string();
  m.save(path);
  Model back = Model::load(path);
  EXPECT_FALSE(back.layer("frozen").trainable());
  EXPECT_EQ(back.trainable_weights().size(), 2u);

  // A checkpoint of a frozen model resumes: its optimizer state lines up with the trained weights.
  const std::string ck = temp_path("frozen_ckpt.safetensors").string();
  m.save_checkpoint(ck);
  Model resumed = Model::load_checkpoint(ck);
  EXPECT_FALSE(resumed.layer("frozen").trainable());
  EXPECT_EQ(resumed.optimizer().state().size(), 2u);
  resumed.fit(d.x, d.y, {.epochs = 4, .initial_epoch = 3, .batch_size = 16, .verbose = 0});
  m.fit(d.x, d.y, {.epochs = 4, .initial_epoch = 3, .batch_size = 16, .verbose = 0});
  EXPECT_EQ(values_of(resumed.layer("head").weights()[0].value), values_of(m.layer("head").weights()[0].value));
  EXPECT_EQ(values_of(resumed.layer("frozen").weights()[0].value), frozen_before);
  fs::remove_all(temp_path("").parent_path());
}

TEST(Trainable, SetAfterCompileTakesEffectAtTheNextFit) {
  manual_seed(4);
  Sequential m({layers::Dense({.units = 5, .activation = "tanh", .input_shape = Shape{3}, .name = "a"}),
                layers::Dense({.units = 2, .name = "b"})});
  m.compile(Adam({.learning_rate = 0.01f}), "mse");
  const Data d = regression_data(32, 3, 2, 6);
  m.fit(d.x, d.y, {.epochs = 1, .batch_size = 8, .verbose = 0});
  m.layer("a").set_trainable(false);
  EXPECT_EQ(m.trainable_weights().size(), 2u);  // at once
  const auto a_before = values_of(m.layer("a").weights()[0].value);
  const auto b_before = values_of(m.layer("b").weights()[0].value);
  m.fit(d.x, d.y, {.epochs = 2, .batch_size = 8, .verbose = 0});
  EXPECT_EQ(values_of(m.layer("a").weights()[0].value), a_before);
  EXPECT_NE(values_of(m.layer("b").weights()[0].value), b_before);
  EXPECT_EQ(m.optimizer().state().size(), 2u);
  m.layer("a").set_trainable(true);
  m.fit(d.x, d.y, {.epochs = 3, .batch_size = 8, .verbose = 0});
  EXPECT_NE(values_of(m.layer("a").weights()[0].value), a_before);
  EXPECT_EQ(m.optimizer().state().size(), 4u);
}

TEST(Trainable, FrozenBatchNormalizationRunsInInferenceMode) {
  manual_seed(5);
  Sequential m({layers::Dense({.units = 4, .input_shape = Shape{3}}), layers::BatchNormalization({.name = "bn"}),
                layers::Dense(1)});
  m.build(Shape{3});
  m.layer("bn").set_trainable(false);
  m.compile(SGD({.learning_rate = 0.1f}), "mse");
  const Data d = regression_data(32, 3, 1, 7);
  const auto mean_before = values_of(*m.layer("bn").find_weight("moving_mean"));
  const auto gamma_before = values_of(*m.layer("bn").find_weight("gamma"));
  m.fit(d.x, d.y, {.epochs = 2, .batch_size = 8, .verbose = 0});
  EXPECT_EQ(values_of(*m.layer("bn").find_weight("moving_mean")), mean_before);
  EXPECT_EQ(values_of(*m.layer("bn").find_weight("gamma")), gamma_before);
  const Tensor train = m(d.x, /*training=*/true), infer = m(d.x, false);
  EXPECT_EQ(values_of(train), values_of(infer));
}

TEST(Trainable, AFrozenNestedModelFreezesItsLayersAndRoundTrips) {
  manual_seed(6);
  auto encoder = std::make_shared<Sequential>(
      Sequential({layers::Dense({.units = 4, .input_shape = Shape{3}}), layers::Dense(2)}, "encoder"));
  KerasTensor x = Input({3});
  KerasTensor y = layers::Dense(1)((*encoder)(x));
  Model m(x, y, "outer");
  encoder->set_trainable(false);
  EXPECT_FALSE(encoder->layers()[0]->trainable());
  EXPECT_EQ(m.trainable_weights().size(), 2u);
  Model back = Model::from_json(m.to_json());
  EXPECT_EQ(back.trainable_weights().size(), 2u);
  EXPECT_FALSE(back.layer("encoder").trainable());
}

// --- regularizers ------------------------------------------------------------------------------------

// A 1-layer linear model on fixed data, SGD with the whole set as one batch, so one step is a
// hand computation: loss = mse + l2 * sum(W^2) + l1 * sum|b| (+ activity), dW = dmse/dW + 2 l2 W.
TEST(Regularizers, LossAndOneSgdStepMatchAHandComputation) {
  manual_seed(7);
  const float l2 = 0.1f, l1 = 0.05f, act = 0.01f, lr = 0.1f;
  Sequential m({layers::Dense({.units = 2,
                               .kernel_regularizer = regularizers::L2(l2),
                               .bias_regularizer = regularizers::L1(l1),
                               .activity_regularizer = regularizers::L2(act),
                               .input_shape = Shape{3},
                               .name = "d"})});
  m.build(Shape{3});
  m.compile(SGD({.learning_rate = lr}), "mse");
  const int64_t n = 6;
  const Data d = regression_data(n, 3, 2, 8);
  Layer& layer = m.layer("d");
  layer.weights()[1].value.data()[0] = 0.3f;  // a bias away from 0, so that sign(b) is defined
  layer.weights()[1].value.data()[1] = -0.2f;
  const std::vector<float> w = values_of(layer.weights()[0].value), b = values_of(layer.weights()[1].value);
  // Forward and the data gradient by hand, in double.
  std::vector<double> pred(n * 2), dw(3 * 2, 0.0), db(2, 0.0);
  double mse = 0.0, out_sq = 0.0;
  for (int64_t i = 0; i < n; ++i)
    for (int64_t j = 0; j < 2; ++j) {
      double z = b[j];
      for (int64_t k = 0; k < 3; ++k) z += double(d.x.data()[i * 3 + k]) * w[k * 2 + j];
      pred[i * 2 + j] = z;
      const double e = z - d.y.data()[i * 2 + j];
      mse += e * e / double(n * 2);
      out_sq += z * z;
      // d(mse + act * sum(z^2) / n)/dz
      const double dz = 2.0 * e / double(n * 2) + 2.0 * act * z / double(n);
      for (int64_t k = 0; k < 3; ++k) dw[k * 2 + j] += dz * d.x.data()[i * 3 + k];
      db[j] += dz;
    }
  double penalty = act * out_sq / double(n);
  for (float v : w) penalty += l2 * double(v) * v;
  for (float v : b) penalty += l1 * std::abs(double(v));
  const History h = m.fit(d.x, d.y, {.epochs = 1, .batch_size = n, .shuffle = false, .verbose = 0});
  EXPECT_NEAR(h.history.at("loss")[0], mse + penalty, 1e-6 * (mse + penalty));
  for (int64_t k = 0; k < 6; ++k)
    EXPECT_NEAR(layer.weights()[0].value.data()[k], w[k] - lr * (dw[k] + 2.0 * l2 * w[k]), 1e-6) << "kernel " << k;
  for (int64_t j = 0; j < 2; ++j)
    EXPECT_NEAR(layer.weights()[1].value.data()[j], b[j] - lr * (db[j] + l1 * (b[j] > 0 ? 1.0 : -1.0)), 1e-6)
        << "bias " << j;

  // evaluate: the same sum on the updated weights, as Keras 3's test_step (compute_loss + losses).
  const std::vector<float> w2 = values_of(layer.weights()[0].value), b2 = values_of(layer.weights()[1].value);
  double mse2 = 0.0, out2 = 0.0, pen2 = 0.0;
  for (int64_t i = 0; i < n; ++i)
    for (int64_t j = 0; j < 2; ++j) {
      double z = b2[j];
      for (int64_t k = 0; k < 3; ++k) z += double(d.x.data()[i * 3 + k]) * w2[k * 2 + j];
      const double e = z - d.y.data()[i * 2 + j];
      mse2 += e * e / double(n * 2);
      out2 += z * z;
    }
  pen2 = act * out2 / double(n);
  for (float v : w2) pen2 += l2 * double(v) * v;
  for (float v : b2) pen2 += l1 * std::abs(double(v));
  const Logs logs = m.evaluate(d.x, d.y, {.batch_size = n, .verbose = 0});
  EXPECT_NEAR(logs.at("loss"), mse2 + pen2, 1e-6 * (mse2 + pen2));
  // regularization_loss(): the weight penalties plus the last pass's activity penalty.
  EXPECT_NEAR(m.regularization_loss().item(), pen2, 1e-6 * pen2);
}

TEST(Regularizers, FrozenWeightsAreNotPenalizedAndConfigsRoundTrip) {
  Sequential m({layers::Dense({.units = 2, .kernel_regularizer = regularizers::L1L2(0.01f, 0.02f),
                               .kernel_constraint = constraints::MaxNorm(1.5f), .input_shape = Shape{3}, .name = "d"}),
                layers::Dense({.units = 1, .bias_constraint = constraints::NonNeg()})});
  m.build(Shape{3});
  EXPECT_TRUE(m.regularization_loss().defined());
  m.layer("d").set_trainable(false);
  EXPECT_FALSE(m.regularization_loss().defined());  // Keras 3: trainable weights only
  Model back = Model::from_json(m.to_json());
  EXPECT_EQ(*back.layer("d").weight_regularizer("kernel"), regularizers::L1L2(0.01f, 0.02f));
  EXPECT_EQ(*back.layer("d").weight_constraint("kernel"), constraints::MaxNorm(1.5f));
  EXPECT_EQ(*back.layers()[1]->weight_constraint("bias"), constraints::NonNeg());
  // Keras 2's L1L2 and the string shorthand.
  EXPECT_EQ(*Regularizer::from_config(Json::parse(R"({"class_name": "L1L2", "config": {"l1": 0.0, "l2": 0.01}})")),
            regularizers::L2(0.01f));
  EXPECT_EQ(*Regularizer::from_config("l2"), regularizers::L2(0.01f));
  EXPECT_CONTAINS(error_of<ValueError>([] { Regularizer::from_config(Json("orthogonal_regularizer")); }),
                  "not supported by Lamina");
}

// --- constraints -------------------------------------------------------------------------------------

// Keras' formulas in double over `axes` of a row-major (rows, cols) weight.
std::vector<double> keras_constraint(const Constraint& c, const std::vector<float>& w, int64_t rows, int64_t cols) {
  std::vector<double> out(w.begin(), w.end());
  const double eps = 1e-7;
  const bool per_column = c.axis == std::vector<int64_t>{0};  // else the whole weight (axis {0, 1})
  const int64_t groups = per_column ? cols : 1;
  for (int64_t g = 0; g < groups; ++g) {
    double sq = 0.0;
    for (int64_t r = 0; r < rows; ++r)
      for (int64_t k = 0; k < cols; ++k)
        if (!per_column || k == g) sq += double(w[r * cols + k]) * w[r * cols + k];
    const double norm = std::sqrt(sq);
    double desired = norm;
    if (c.kind == Constraint::max_norm) desired = std::clamp(norm, 0.0, double(c.max_value));
    if (c.kind == Constraint::min_max_norm)
      desired = c.rate * std::clamp(norm, double(c.min_value), double(c.max_value)) + (1 - c.rate) * norm;
    for (int64_t r = 0; r < rows; ++r)
      for (int64_t k = 0; k < cols; ++k)
        if (!per_column || k == g) {
          double& v = out[r * cols + k];
          if (c.kind == Constraint::unit_norm) v = v / (eps + norm);
          else if (c.kind == Constraint::non_neg) v = v >= 0 ? v : 0.0;
          else v = v * (desired / (eps + norm));
        }
  }
  return out;
}

TEST(Constraints, EqualKerasFormulas) {
  Generator gen(9);
  for (const Constraint& c : {constraints::MaxNorm(0.5f), constraints::MaxNorm(0.7f, {0, 1}), constraints::NonNeg(),
                              constraints::UnitNorm(), constraints::UnitNorm({0, 1}),
                              constraints::MinMaxNorm(0.2f, 0.6f, 0.7f), constraints::MinMaxNorm(1.f, 2.f, 1.f, {0, 1})}) {
    Tensor w = Tensor::randn({4, 3}, gen);
    const std::vector<float> before = values_of(w);
    c.apply(w);
    const std::vector<double> want = keras_constraint(c, before, 4, 3);
    for (size_t i = 0; i < want.size(); ++i) EXPECT_NEAR(w.data()[i], want[i], 1e-6) << c.config().dump() << " at " << i;
  }
}

TEST(Constraints, HoldAfterEachFitStep) {
  manual_seed(10);
  Sequential m({layers::Conv2D({.filters = 2, .kernel_size = 3, .kernel_constraint = constraints::UnitNorm({0, 1, 2}),
                                .input_shape = Shape{5, 5, 1}}),
                layers::Flatten(),
                layers::Dense({.units = 3, .kernel_constraint = constraints::MaxNorm(0.3f),
                               .bias_constraint = constraints::NonNeg()}),
                layers::Dense({.units = 1, .kernel_constraint = constraints::MinMaxNorm(0.5f, 0.8f)})});
  m.compile(SGD({.learning_rate = 0.5f}), "mse");
  Generator gen(11);
  const Tensor x = Tensor::randn({16, 5, 5, 1}, gen), y = Tensor::randn({16, 1}, gen);
  m.fit(x, y, {.epochs = 2, .batch_size = 4, .verbose = 0});
  auto column_norms = [](const Tensor& w) {  // over every axis but the last
    const int64_t cols = w.dim(-1), rows = w.numel() / cols;
    std::vector<double> norms(static_cast<size_t>(cols), 0.0);
    for (int64_t r = 0; r < rows; ++r)
      for (int64_t k = 0; k < cols; ++k) norms[k] += double(w.data()[r * cols + k]) * w.data()[r * cols + k];
    for (double& v : norms) v = std::sqrt(v);
    return norms;
  };
  for (double v : column_norms(m.layers()[0]->weights()[0].value)) EXPECT_NEAR(v, 1.0, 1e-5);
  for (double v : column_norms(m.layers()[2]->weights()[0].value)) EXPECT_LE(v, 0.3 + 1e-6);
  for (float v : values_of(m.layers()[2]->weights()[1].value)) EXPECT_GE(v, 0.f);
  for (double v : column_norms(m.layers()[3]->weights()[0].value)) {
    EXPECT_GE(v, 0.5 - 1e-6);
    EXPECT_LE(v, 0.8 + 1e-6);
  }
}

}  // namespace
}  // namespace lamina
