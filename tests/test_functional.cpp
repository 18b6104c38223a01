// The Functional API: graphs of layer calls (Input, Model(inputs, outputs)), merge layers, shared
// layers, nested models, several inputs and outputs through fit / evaluate / predict, summary's
// "Connected to", graph errors, and the same save / load / checkpoint / JSON paths as Sequential.
#include <gtest/gtest.h>

#include <cstdio>
#include <filesystem>
#include <sstream>

#include "lamina/lamina.hpp"
#include "test_util.hpp"

namespace lamina {
namespace {

using testing::all_close;
using testing::error_of;

std::string temp_path(const std::string& name) {
  return (std::filesystem::temp_directory_path() / ("lamina_functional_" + name)).string();
}

// x -> Dense(8, relu) -> h; h + Dense(8)(h) -> Dense(3): a residual MLP.
Model residual_mlp() {
  KerasTensor x = Input({5}, "x");
  KerasTensor h = layers::Dense({.units = 8, .activation = Activation::relu, .name = "stem"})(x);
  KerasTensor r = layers::Dense({.units = 8, .name = "branch"})(h);
  KerasTensor s = layers::Add()({h, r});
  KerasTensor y = layers::Dense({.units = 3, .name = "head"})(s);
  return Model(x, y, "residual");
}

TEST(Functional, ForwardIsTheGraphItRecorded) {
  manual_seed(1);
  Model m = residual_mlp();
  EXPECT_FALSE(m.is_sequential());
  EXPECT_EQ(m.class_name(), "Functional");
  ASSERT_EQ(m.layers().size(), 5u);  // x, stem, branch, add, head
  EXPECT_EQ(m.layers()[0]->class_name(), "InputLayer");
  EXPECT_EQ(m.layers()[3]->name(), "add");  // named after its class
  EXPECT_EQ(m.count_params(), (5 * 8 + 8) + (8 * 8 + 8) + (8 * 3 + 3));
  EXPECT_EQ(m.output_shape(), (Shape{3}));

  Generator gen(7);
  const Tensor x = Tensor::randn({4, 5}, gen);
  const Tensor y = m.predict(x);
  // By hand, with the same layers.
  auto dense = [&](const std::string& name, const Tensor& in) {
    auto& d = dynamic_cast<layers::Dense&>(m.layer(name));
    return add(matmul(in, d.kernel()), d.bias());
  };
  const Tensor h = relu(dense("stem", x));
  const Tensor want = dense("head", add(h, dense("branch", h)));
  EXPECT_TRUE(all_close(y, want, 1e-5, 1e-6));
}

TEST(Functional, GradientsFlowThroughBothBranches) {
  manual_seed(2);
  Model m = residual_mlp();
  Generator gen(3);
  const Tensor x = Tensor::randn({3, 5}, gen);
  // d(sum(model(x) * w)) / dx against finite differences, through the skip and the branch.
  testing::Fn fn = [&](const std::vector<Tensor>& in) { return m.call(in[0], true); };
  EXPECT_TRUE(testing::gradcheck(fn, {x}));
}

TEST(Functional, SharedLayerHasOneSetOfWeightsAndSumsItsGradients) {
  manual_seed(3);
  auto shared = std::make_shared<layers::Dense>(layers::Dense::Options{.units = 4, .name = "shared"});
  KerasTensor a = Input({6}, "a");
  KerasTensor b = Input({6}, "b");
  KerasTensor ya = (*shared)(a);
  KerasTensor yb = (*shared)(b);
  Model m({a, b}, {layers::Subtract()({ya, yb})}, "siamese");
  EXPECT_EQ(m.count_params(), 6 * 4 + 4);  // once
  EXPECT_EQ(m.named_weights().size(), 2u);
  Generator gen(4);
  const Tensor xa = Tensor::randn({2, 6}, gen), xb = Tensor::randn({2, 6}, gen);
  // f(a) - f(b) = (a - b) W: the bias cancels, and the kernel's gradient is (a - b)^T dy.
  Tensor out = m.call(std::vector<Tensor>{xa, xb}, true).at(0);
  EXPECT_TRUE(all_close(out, matmul(sub(xa, xb), shared->kernel()), 1e-5, 1e-6));
  shared->kernel().zero_grad();
  out.backward(Tensor::ones(out.shape()));
  const Tensor want = matmul(transpose(sub(xa, xb)), Tensor::ones({2, 4}));
  EXPECT_TRUE(all_close(shared->kernel().grad(), want, 1e-5, 1e-5));
  std::ostringstream os;
  m.summary(os);
  EXPECT_CONTAINS(os.str(), "0 (shared)");
}

TEST(Functional, MergeLayersComputeWhatKerasDoes) {
  Generator gen(5);
  const Tensor p = Tensor::randn({2, 3}, gen), q = Tensor::randn({2, 3}, gen), r = Tensor::randn({2, 3}, gen);
  KerasTensor a = Input({3}), b = Input({3}), c = Input({3});
  auto run = [&](Layer&& merge, std::vector<KerasTensor> in, std::vector<Tensor> x) {
    Model m(in, {merge(in)});
    return m.predict_all(x).at(0);
  };
  EXPECT_TRUE(all_close(run(layers::Add(), {a, b, c}, {p, q, r}), add(add(p, q), r), 1e-6, 1e-6));
  EXPECT_TRUE(all_close(run(layers::Subtract(), {a, b}, {p, q}), sub(p, q), 1e-6, 1e-6));
  EXPECT_TRUE(all_close(run(layers::Multiply(), {a, b, c}, {p, q, r}), mul(mul(p, q), r), 1e-6, 1e-6));
  EXPECT_TRUE(all_close(run(layers::Average(), {a, b}, {p, q}), mul(add(p, q), 0.5f), 1e-6, 1e-6));
  EXPECT_TRUE(all_close(run(layers::Maximum(), {a, b, c}, {p, q, r}), maximum(maximum(p, q), r), 1e-6, 1e-6));
  EXPECT_TRUE(all_close(run(layers::Minimum(), {a, b}, {p, q}), minimum(p, q), 1e-6, 1e-6));
  KerasTensor d = Input({2});
  const Tensor s = Tensor::randn({2, 2}, gen);
  const Tensor cat = run(layers::Concatenate(), {a, d}, {p, s});
  EXPECT_EQ(cat.shape(), (Shape{2, 5}));
  EXPECT_TRUE(all_close(cat, concat({p, s}, 1), 0, 0));
  // Images: along channels (the default) and along height.
  KerasTensor i1 = Input({4, 4, 2}), i2 = Input({4, 4, 3}), i3 = Input({1, 4, 2});
  EXPECT_EQ(layers::Concatenate()({i1, i2}).shape(), (Shape{4, 4, 5}));
  EXPECT_EQ(layers::Concatenate({.axis = 1})({i1, i3}).shape(), (Shape{5, 4, 2}));
}

TEST(Functional, MergeErrorsNameTheLayerAndShapes) {
  KerasTensor a = Input({8, 8, 4}), b = Input({4, 4, 8}), v = Input({3});
  EXPECT_CONTAINS(error_of<ShapeError>([&] { layers::Add({.name = "join"})({a, b}); }),
                  "Add 'join': its inputs must all have one shape, got (8, 8, 4), (4, 4, 8)");
  EXPECT_CONTAINS(error_of<ValueError>([&] { layers::Subtract()({v, v, v}); }), "takes exactly 2 inputs, got 3");
  EXPECT_CONTAINS(error_of<ValueError>([&] { layers::Add()(v); }), "takes a list of at least 2 inputs, got 1");
  EXPECT_CONTAINS(error_of<ShapeError>([&] { layers::Concatenate()({a, b}); }),
                  "differ on an axis other than axis -1");
  EXPECT_CONTAINS(error_of<ShapeError>([&] { layers::Dense(3)(a), layers::Conv2D(2, 3)(v); }), "Conv2D");
}

TEST(Functional, GraphErrorsNameTheLayers) {
  KerasTensor a = Input({3}, "a"), b = Input({3}, "b"), stray = Input({3}, "stray");
  KerasTensor h = layers::Dense({.units = 2, .name = "h"})(a);
  // An input that reaches no output.
  EXPECT_CONTAINS(error_of<ValueError>([&] { Model({a, b}, {h}); }), "input 'b' (InputLayer) does not reach any output");
  // An output that needs an input the model was not given.
  KerasTensor mixed = layers::Add()({h, layers::Dense({.units = 2, .name = "s"})(stray)});
  EXPECT_CONTAINS(error_of<ValueError>([&] { Model(a, mixed); }),
                  "depends on the Input 'stray' (InputLayer), which is not among the model's inputs");
  // A model input that is not an Input.
  EXPECT_CONTAINS(error_of<ValueError>([&] { Model(h, h); }), "inputs[0] is the output of layer 'h' (Dense), not an Input");
  // Two layers with one name.
  KerasTensor twin = layers::Dense({.units = 2, .name = "h"})(h);
  EXPECT_CONTAINS(error_of<ValueError>([&] { Model(a, twin); }), "two different layers are named 'h'");
}

TEST(Functional, TwoInputsTrainPredictAndEvaluate) {
  manual_seed(11);
  KerasTensor a = Input({4}, "numbers"), b = Input({2}, "flags");
  KerasTensor ha = layers::Dense({.units = 8, .activation = Activation::relu})(a);
  KerasTensor hb = layers::Dense({.units = 8, .activation = Activation::relu})(b);
  KerasTensor y = layers::Dense(3)(layers::Concatenate()({ha, hb}));
  Model m({a, b}, {y}, "two_inputs");
  // Class = argmax of (a0 + b0, a1 + b1, a2 - b0): learnable from both inputs only.
  Generator gen(12);
  const int64_t n = 256;
  Tensor xa = Tensor::randn({n, 4}, gen), xb = Tensor::randn({n, 2}, gen), labels = Tensor::empty({n});
  for (int64_t i = 0; i < n; ++i) {
    const float* p = xa.data() + i * 4;
    const float* q = xb.data() + i * 2;
    const float s[3] = {p[0] + q[0], p[1] + q[1], p[2] - q[0]};
    labels.data()[i] = static_cast<float>(std::max_element(s, s + 3) - s);
  }
  m.compile(Adam({.learning_rate = 0.02f}), losses::SparseCategoricalCrossentropy({.from_logits = true}), {"accuracy"});
  const Logs before = m.evaluate({xa, xb}, {labels}, {.verbose = 0});
  History h = m.fit({xa, xb}, {labels}, {.epochs = 30, .batch_size = 32, .verbose = 0});
  const Logs after = m.evaluate({xa, xb}, {labels}, {.verbose = 0});
  EXPECT_LT(after.at("loss"), before.at("loss") * 0.5);
  EXPECT_GT(after.at("accuracy"), 0.85);
  EXPECT_EQ(h.history.at("loss").size(), 30u);
  EXPECT_EQ(m.predict_all({xa, xb}).at(0).shape(), (Shape{n, 3}));
  // Inputs that do not fit are named.
  EXPECT_CONTAINS(error_of<ValueError>([&] { m.predict_all({xa}); }), "the data has 1 input, model 'two_inputs' takes 2");
  EXPECT_CONTAINS(error_of<ShapeError>([&] { m.predict_all({xa, xa}); }), "for input 'flags'");
}

TEST(Functional, TwoOutputsWeighTheirLossesAsKerasLogsThem) {
  manual_seed(21);
  KerasTensor x = Input({3}, "x");
  KerasTensor h = layers::Dense({.units = 6, .activation = Activation::tanh})(x);
  KerasTensor cls = layers::Dense({.units = 2, .name = "cls"})(h);
  KerasTensor reg = layers::Dense({.units = 1, .name = "reg"})(h);
  Model m({x}, {cls, reg}, "two_heads");
  EXPECT_EQ(m.output_names(), (std::vector<std::string>{"cls", "reg"}));
  Generator gen(22);
  const Tensor xs = Tensor::randn({64, 3}, gen);
  Tensor labels = Tensor::empty({64}), targets = Tensor::empty({64, 1});
  for (int64_t i = 0; i < 64; ++i) {
    labels.data()[i] = xs.data()[i * 3] > 0 ? 1.f : 0.f;
    targets.data()[i] = xs.data()[i * 3 + 1] * 2.f;
  }
  m.compile(Adam(), {Loss(Loss::sparse_categorical_crossentropy, true), Loss("mse")},
            {.metrics = {"accuracy"}, .loss_weights = {1.0, 0.5}});
  const Logs logs = m.evaluate({xs}, {labels, targets}, {.verbose = 0});
  // The total is the weighted sum of the parts, each computed here by hand.
  const std::vector<Tensor> out = m.predict_all({xs});
  const double l1 = sparse_categorical_crossentropy(labels, out[0], true).item();
  const double l2 = mean_squared_error(targets, out[1]).item();
  EXPECT_NEAR(logs.at("cls_loss"), l1, 1e-5);
  EXPECT_NEAR(logs.at("reg_loss"), l2, 1e-5);
  EXPECT_NEAR(logs.at("loss"), l1 + 0.5 * l2, 1e-5);
  EXPECT_TRUE(logs.get("cls_accuracy").has_value());
  History hist = m.fit({xs}, {labels, targets}, {.epochs = 40, .batch_size = 16, .verbose = 0});
  EXPECT_LT(hist.history.at("reg_loss").back(), hist.history.at("reg_loss").front());
  EXPECT_LT(hist.history.at("cls_loss").back(), hist.history.at("cls_loss").front());
  // Targets checked per output before any step.
  Tensor bad = labels.clone();
  bad.data()[5] = 7.f;
  EXPECT_CONTAINS(error_of<ValueError>([&] { m.fit({xs}, {bad, targets}, {.verbose = 0}); }),
                  "sample 5: label 7 is not a class index");
  EXPECT_CONTAINS(error_of<ValueError>([&] { m.fit({xs}, {labels}, {.verbose = 0}); }),
                  "the data has 1 target, model 'two_heads' has 2 outputs");
}

TEST(Functional, NestedSequentialIsOneLayerWithItsWeights) {
  manual_seed(31);
  auto encoder = std::make_shared<Sequential>(
      std::initializer_list<AnyLayer>{layers::Dense({.units = 4, .activation = Activation::relu}), layers::Dense(2)},
      "encoder");
  KerasTensor x = Input({6}, "x");
  KerasTensor z = (*encoder)(x);
  KerasTensor y = layers::Dense({.units = 1, .name = "out"})(z);
  Model m(x, y, "outer");
  EXPECT_EQ(m.count_params(), (6 * 4 + 4) + (4 * 2 + 2) + (2 + 1));
  auto names = m.named_weights();
  ASSERT_EQ(names.size(), 6u);
  EXPECT_EQ(names[0].first, "encoder/dense/kernel");
  EXPECT_EQ(names[4].first, "out/kernel");
  Generator gen(32);
  const Tensor xs = Tensor::randn({5, 6}, gen);
  auto& last = dynamic_cast<layers::Dense&>(m.layer("out"));
  const Tensor want = add(matmul(encoder->predict(xs), last.kernel()), last.bias());
  EXPECT_TRUE(all_close(m.predict(xs), want, 1e-5, 1e-6));
  // JSON round trip keeps the nesting and the results.
  const Json j = m.to_json();
  Model back = Model::from_json(j);
  EXPECT_EQ(back.count_params(), m.count_params());
  EXPECT_EQ(back.layer("encoder").class_name(), "Sequential");
}

TEST(Functional, SummaryShowsConnectedTo) {
  manual_seed(41);
  Model m = residual_mlp();
  std::ostringstream os;
  m.summary(os);
  const std::string s = os.str();
  EXPECT_CONTAINS(s, "Model: \"residual\"");
  EXPECT_CONTAINS(s, "Connected to");
  EXPECT_CONTAINS(s, "x (InputLayer)");
  EXPECT_CONTAINS(s, "stem[0][0]");
  EXPECT_CONTAINS(s, "branch[0][0]");
  EXPECT_CONTAINS(s, "Total params: 147");
}

TEST(Functional, JsonSaveLoadAndCheckpointKeepTheGraph) {
  manual_seed(51);
  Model m = residual_mlp();
  m.compile(Adam(), Loss("mse"));
  Generator gen(52);
  const Tensor x = Tensor::randn({40, 5}, gen), y = Tensor::randn({40, 3}, gen);
  // Keras 3's form: args with __keras_tensor__ and keras_history.
  const Json j = m.to_json();
  EXPECT_EQ(j["class_name"], "Functional");
  const Json& add_entry = j["config"]["layers"][3];
  EXPECT_EQ(add_entry["class_name"], "Add");
  EXPECT_EQ(add_entry["inbound_nodes"][0]["args"][0][1]["config"]["keras_history"], Json::array({"branch", 0, 0}));
  Model from_json = Model::from_json(j);
  EXPECT_EQ(from_json.to_json(), j);

  const std::string path = temp_path("residual.safetensors");
  m.save(path);
  Model loaded = Model::load(path);
  EXPECT_TRUE(all_close(loaded.predict(x), m.predict(x), 0, 0));
  EXPECT_TRUE(loaded.compiled());
  EXPECT_CONTAINS(error_of<IoError>([&] { Sequential::load(path); }), "holds a Functional model");

  // Exact resume: 2 epochs at once equal 1, a checkpoint, another process's 1.
  manual_seed(53);
  Model a = residual_mlp();
  a.compile(Adam(), Loss("mse"));
  manual_seed(53);
  Model b = residual_mlp();
  b.compile(Adam(), Loss("mse"));
  a.fit(x, y, {.epochs = 2, .batch_size = 8, .seed = 9, .verbose = 0});
  b.fit(x, y, {.epochs = 1, .batch_size = 8, .seed = 9, .verbose = 0});
  const std::string ck = temp_path("residual_ckpt.safetensors");
  b.save_checkpoint(ck);
  Model c = Model::load_checkpoint(ck);
  c.fit(x, y, {.epochs = 2, .initial_epoch = c.fit_state().epoch, .batch_size = 8, .verbose = 0});
  EXPECT_TRUE(all_close(c.predict(x), a.predict(x), 0, 0));
  std::remove(path.c_str());
  std::remove(ck.c_str());
}

TEST(Functional, Keras2NestedListsLoad) {
  // The Keras 2 form: inbound_nodes as [[[name, node, tensor, kwargs], ...]], class "Model".
  const Json j = Json::parse(R"({"class_name": "Model", "config": {"name": "m", "layers": [
    {"class_name": "InputLayer", "config": {"batch_input_shape": [null, 4], "name": "in"}, "name": "in", "inbound_nodes": []},
    {"class_name": "Dense", "config": {"name": "d1", "units": 4}, "name": "d1", "inbound_nodes": [[["in", 0, 0, {}]]]},
    {"class_name": "Add", "config": {"name": "sum"}, "name": "sum", "inbound_nodes": [[["d1", 0, 0, {}], ["in", 0, 0, {}]]]},
    {"class_name": "Dense", "config": {"name": "d2", "units": 2}, "name": "d2", "inbound_nodes": [[["sum", 0, 0, {}]]]}],
    "input_layers": [["in", 0, 0]], "output_layers": [["d2", 0, 0]]}, "keras_version": "2.2.4", "backend": "tensorflow"})");
  Model m = Model::from_json(j);
  EXPECT_EQ(m.count_params(), 20 + 10);
  EXPECT_EQ(m.nodes().size(), 3u);
  // A reference to a layer the config lacks is named.
  Json broken = j;
  broken["config"]["layers"][3]["inbound_nodes"] = Json::parse(R"([[["nowhere", 0, 0, {}]]])");
  EXPECT_CONTAINS(error_of<ValueError>([&] { Model::from_json(broken); }),
                  "config.layers[3] (Dense).inbound_nodes[0]: its input is layer 'nowhere', which the config does not have");
  // A cycle: d1 reads d2.
  Json cycle = j;
  cycle["config"]["layers"][1]["inbound_nodes"] = Json::parse(R"([[["d2", 0, 0, {}]]])");
  EXPECT_CONTAINS(error_of<ValueError>([&] { Model::from_json(cycle); }), "the graph has a cycle");
}

TEST(Functional, NonFiniteDiagnosisWalksTheGraph) {
  manual_seed(61);
  KerasTensor x = Input({3}, "x");
  KerasTensor h = layers::Dense({.units = 4, .name = "ok"})(x);
  KerasTensor boom = layers::Dense({.units = 4, .name = "boom"})(x);
  Model m(x, layers::Add()({h, boom}), "diag");
  m.compile(SGD(), Loss("mse"));
  auto& d = dynamic_cast<layers::Dense&>(m.layer("boom"));
  d.kernel().data()[0] = std::numeric_limits<float>::infinity();
  Generator gen(62);
  EXPECT_CONTAINS(m.diagnose_non_finite(Tensor::randn({2, 3}, gen), Tensor::zeros({2, 4})),
                  "layer 'boom' (Dense) weight 'kernel'");
}

}  // namespace
}  // namespace lamina

namespace lamina {
namespace {

// Model JSON written by Keras itself, from public repositories (tests/corpus/keras/SOURCES.md),
// with the parameter totals counted there.
Json read_keras_file(const std::string& name) {
  const std::string path = std::string(LAMINA_FIXTURE_DIR) + "/../corpus/keras/" + name;
  return Json::parse(io::read_file(path));
}

int64_t frozen_params(const Model& m) {
  int64_t n = 0;
  for (const auto& l : m.layers())
    for (const auto& w : l->weights())
      if (!w.trainable) n += w.value.numel();
  return n;
}

TEST(Functional, RealKeras2FileWithTwoInputs) {
  Model m = Model::from_json(read_keras_file("keras2_simple_add_two_inputs.json"));
  EXPECT_EQ(m.num_inputs(), 2u);
  EXPECT_EQ(m.num_outputs(), 1u);
  EXPECT_EQ(m.count_params(), 436);
  Generator gen(1);
  std::vector<Tensor> x;
  for (const Shape& s : m.input_shapes()) {
    std::vector<int64_t> dims{3};
    dims.insert(dims.end(), s.begin(), s.end());
    x.push_back(Tensor::randn(Shape(dims), gen));
  }
  EXPECT_EQ(m.predict_all(x).at(0).dim(0), 3);
}

TEST(Functional, RealKeras2ResidualFileWithTwoOutputs) {
  Model m = Model::from_json(read_keras_file("keras2_agz_dual_res_two_outputs.json"));
  EXPECT_EQ(m.num_inputs(), 1u);
  EXPECT_EQ(m.num_outputs(), 2u);
  EXPECT_EQ(m.count_params(), 23881170);
  EXPECT_EQ(frozen_params(m), 20998);
}

TEST(Functional, RealKeras3FileWithNestedSequentials) {
  Model m = Model::from_json(read_keras_file("keras3_autoencoder_nested_sequential.json"));
  EXPECT_EQ(m.count_params(), 269249);
  EXPECT_EQ(m.layer("encoder").class_name(), "Sequential");
  Generator gen(2);
  std::vector<int64_t> dims{2};
  const Shape in = m.input_shapes().at(0);
  dims.insert(dims.end(), in.begin(), in.end());
  const Tensor x = Tensor::rand(Shape(dims), gen);
  // encoder: Flatten, Dense(64); decoder: Dense(64), Dense(1), Reshape((1, 1)).
  EXPECT_EQ(m.predict(x).shape(), (Shape{2, 1, 1}));
}


// --- several outputs and masks -------------------------------------------------------------------

namespace {

// Two outputs: x and 2x (a stand-in for LSTM's output and state).
class TwoOut : public Layer {
 public:
  std::string class_name() const override { return "TestTwoOut"; }
  size_t output_count() const override { return 2; }
  std::vector<Shape> infer_shapes(std::span<const Shape> in) const override { return {in[0], in[0]}; }
  Shape output_shape(const Shape& s) const override { return s; }
  Tensor call(const Tensor& x, bool) override { return x; }
  Outputs call_all(std::span<const Tensor> in, std::span<const Tensor> masks, bool) override {
    return {{in[0], mul(in[0], 2.f)}, {masks.empty() ? Tensor() : masks[0], Tensor()}};
  }
  static std::shared_ptr<Layer> from_config(const Json& c) {
    auto l = std::make_shared<TwoOut>();
    l->set_name(c.value("name", ""));
    return l;
  }
};

// Marks a step real where its first feature is not 0 (as Masking does), passing x through.
class MarkSteps : public Layer {
 public:
  std::string class_name() const override { return "TestMarkSteps"; }
  Shape output_shape(const Shape& s) const override { return s; }
  Tensor call(const Tensor& x, bool) override { return x; }
  Tensor compute_mask(std::span<const Tensor> in, std::span<const Tensor>) const override {
    Tensor first = reshape(slice(in[0], 2, 0, 1), Shape{in[0].dim(0), in[0].dim(1)});
    Tensor m = Tensor::zeros(first.shape());
    for (int64_t i = 0; i < m.numel(); ++i) m.data()[i] = first.data()[i] != 0.f ? 1.f : 0.f;
    return m;
  }
};

// Sums the real steps: (N, T, F) -> (N, F), reading the mask as the recurrent layers do.
class MaskedSum : public Layer {
 public:
  std::string class_name() const override { return "TestMaskedSum"; }
  Shape output_shape(const Shape& s) const override { return Shape{s[1]}; }
  Tensor call(const Tensor& x, bool) override { return sum(x, 1); }
  Outputs call_all(std::span<const Tensor> in, std::span<const Tensor> masks, bool) override {
    if (masks.empty() || !masks[0].defined()) return {{sum(in[0], 1)}, {Tensor()}};
    const Tensor& m = masks[0];
    return {{sum(mul(in[0], reshape(m, Shape{m.dim(0), m.dim(1), 1})), 1)}, {Tensor()}};
  }
};

}  // namespace

TEST(Functional, LayerWithSeveralOutputsGivesEachItsTensor) {
  static const bool registered = [] {
    register_layer("TestTwoOut", LayerFactory(&TwoOut::from_config), true);
    return true;
  }();
  (void)registered;
  KerasTensor x = Input({3}, "x");
  KerasTensor y = std::make_shared<TwoOut>()->operator()(x);
  ASSERT_EQ(y.output_count(), 2u);
  EXPECT_EQ(y.index(), 0u);
  EXPECT_NE(error_of<ValueError>([&] { (void)y.output(2); }).find("has 2 outputs, asked for output 2"), std::string::npos);
  KerasTensor a = layers::Dense({.units = 2, .name = "a"})(y.output(0));
  KerasTensor b = layers::Dense({.units = 2, .name = "b"})(y.output(1));
  Model m({x}, {a, b, y.output(1)}, "two");
  const Tensor in = Tensor::from({1, 2, 3, 4, 5, 6}, Shape{2, 3});
  const std::vector<Tensor> out = m.call(std::vector<Tensor>{in});
  ASSERT_EQ(out.size(), 3u);
  EXPECT_TRUE(all_close(out[2], mul(in, 2.f), 1e-5, 1e-6));
  Tensor want_b = add(matmul(mul(in, 2.f), m.layer("b").weights()[0].value), m.layer("b").weights()[1].value);
  EXPECT_TRUE(all_close(out[1], want_b, 1e-5, 1e-6));
  // Keras' references name the tensor: [layer, call, 1]; the JSON reads back the same graph.
  const Json j = m.to_json();
  EXPECT_NE(j.dump().find("[\"test_two_out\",0,1]"), std::string::npos) << j.dump();
  Model back = Model::from_json(j);
  back.set_weights(m.get_weights());
  EXPECT_TRUE(all_close(back.call(std::vector<Tensor>{in})[1], out[1], 1e-5, 1e-6));
  std::ostringstream s;
  m.summary(s);
  EXPECT_NE(s.str().find("test_two_out[0][1]"), std::string::npos) << s.str();
  // A Sequential's layers have one output each.
  Sequential seq;
  seq.add(layers::Dense(3));
  seq.add(std::shared_ptr<Layer>(std::make_shared<TwoOut>()));
  EXPECT_NE(error_of<ValueError>([&] { seq.build(Shape{3}); }).find("a Sequential model's layers must have one"), std::string::npos);
}

TEST(Functional, MasksFlowThroughLayersThatSupportThem) {
  KerasTensor x = Input({4, 2}, "x");
  KerasTensor marked = std::make_shared<MarkSteps>()->operator()(x);
  KerasTensor dense = layers::Dense({.units = 2, .use_bias = false, .name = "d"})(marked);  // passes the mask on
  KerasTensor summed = std::make_shared<MaskedSum>()->operator()(dense);
  KerasTensor reshaped = layers::Reshape(Shape{4, 2})(dense);  // does not support masking: drops it
  KerasTensor unmasked = std::make_shared<MaskedSum>()->operator()(reshaped);
  Model m({x}, {summed, unmasked}, "masks");
  // Steps 0 and 2 of the first sample and step 3 of the second are padding (first feature 0).
  const Tensor in = Tensor::from({0, 5, 1, 1, 0, 7, 2, 2, 3, 3, 4, 4, 5, 5, 0, 9}, Shape{2, 4, 2});
  const std::vector<Tensor> out = m.call(std::vector<Tensor>{in});
  const Tensor& w = m.layer("d").weights()[0].value;
  const Tensor proj = matmul(in, w);
  Tensor want = Tensor::zeros({2, 2});
  const float real[2][4] = {{0, 1, 0, 1}, {1, 1, 1, 0}};
  for (int n = 0; n < 2; ++n)
    for (int t = 0; t < 4; ++t)
      for (int f = 0; f < 2; ++f) want.data()[n * 2 + f] += real[n][t] * proj.data()[(n * 4 + t) * 2 + f];
  EXPECT_TRUE(all_close(out[0], want, 1e-5, 1e-6));
  EXPECT_TRUE(all_close(out[1], sum(proj, 1), 1e-5, 1e-6));
  // Merges keep a step where every masked input keeps it.
  layers::Add add;
  const Tensor m1 = Tensor::from({1, 1, 0}, Shape{1, 3}), m2 = Tensor::from({0, 1, 1}, Shape{1, 3});
  const std::vector<Tensor> ins{Tensor::zeros({1, 3, 2}), Tensor::zeros({1, 3, 2})};
  EXPECT_TRUE(all_close(add.compute_mask(ins, std::vector<Tensor>{m1, m2}), Tensor::from({0, 1, 0}, Shape{1, 3}), 1e-5, 1e-6));
  EXPECT_TRUE(all_close(add.compute_mask(ins, std::vector<Tensor>{Tensor(), m2}), m2, 1e-5, 1e-6));
}

}  // namespace
}  // namespace lamina
