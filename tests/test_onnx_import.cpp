// load_onnx: PyTorch models exported with torch.onnx.export (fixtures from
// tests/fixtures/make_onnx_fixtures.py; chains, a residual CNN and a model with two inputs) must
// predict what PyTorch predicted and fine-tune; hand-built graphs check branches, merges and each
// unsupported pattern's message; truncated, garbage and mutated files must throw
// lamina::Error, never crash.
#include <gtest/gtest.h>
#include <unistd.h>

#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iostream>

#include "lamina/lamina.hpp"
#include "test_util.hpp"

namespace lamina {
namespace {

namespace fs = std::filesystem;
using testing::all_close;
using testing::load_fixture;

std::string fixture_path(const std::string& name) { return std::string(LAMINA_FIXTURE_DIR) + "/" + name; }

std::string read_bytes(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(f), {});
}

class OnnxFiles : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() /
           ("lamina_onnx_" + std::to_string(::getpid()) + "_" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::create_directories(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }
  std::string write(const std::string& name, const std::string& bytes) {
    const std::string p = (dir_ / name).string();
    std::ofstream(p, std::ios::binary).write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
    return p;
  }
  fs::path dir_;
};

// (N, C, H, W) -> (N, H, W, C): PyTorch's image batch in Lamina's layout.
Tensor nhwc(const Tensor& x) {
  if (x.rank() != 4) return x;
  const int64_t n = x.dim(0), c = x.dim(1), h = x.dim(2), w = x.dim(3);
  Tensor y = Tensor::empty({n, h, w, c});
  for (int64_t i = 0; i < n; ++i)
    for (int64_t ch = 0; ch < c; ++ch)
      for (int64_t r = 0; r < h; ++r)
        for (int64_t q = 0; q < w; ++q) y.data()[((i * h + r) * w + q) * c + ch] = x.data()[((i * c + ch) * h + r) * w + q];
  return y;
}

double max_abs_diff(const Tensor& a, const Tensor& b) {
  double m = 0;
  for (int64_t i = 0; i < a.numel(); ++i) m = std::max(m, std::fabs(static_cast<double>(a.data()[i]) - b.data()[i]));
  return m;
}

std::vector<std::string> class_names(const Model& m) {
  std::vector<std::string> out;
  for (const auto& l : m.layers()) out.push_back(l->class_name());
  return out;
}

// A fixture's inputs in Lamina's layout: x, or x0, x1, ... for a model with several.
std::vector<Tensor> fixture_inputs(const std::map<std::string, Tensor>& fx) {
  if (fx.count("x")) return {nhwc(fx.at("x"))};
  std::vector<Tensor> xs;
  for (int i = 0;; ++i) {
    std::string key = "x";
    key += std::to_string(i);
    const auto it = fx.find(key);
    if (it == fx.end()) return xs;
    xs.push_back(nhwc(it->second));
  }
}

// --- PyTorch fixtures -----------------------------------------------------------------------------

struct Case {
  const char* name;
  std::vector<std::string> layers;  // expected class names after the InputLayer(s)
  int64_t params;
  size_t inputs = 1;
  bool sequential = true;  // a chain: a Sequential-shaped Model
};

void PrintTo(const Case& c, std::ostream* os) { *os << c.name; }

class PyTorchModels : public ::testing::TestWithParam<Case> {};

TEST_P(PyTorchModels, PredictLikePyTorch) {
  const Case& c = GetParam();
  auto fx = load_fixture(std::string("onnx_") + c.name);
  OnnxInfo info;
  Model model = load_onnx(fixture_path(std::string("onnx_") + c.name + ".onnx"), &info);
  EXPECT_EQ(info.producer.rfind("pytorch", 0), 0u) << info.producer;
  std::vector<std::string> want(c.inputs, "InputLayer");
  want.insert(want.end(), c.layers.begin(), c.layers.end());
  EXPECT_EQ(class_names(model), want);
  EXPECT_EQ(model.count_params(), c.params);
  EXPECT_EQ(model.is_sequential(), c.sequential);
  EXPECT_EQ(model.num_inputs(), c.inputs);
  EXPECT_EQ(model.num_outputs(), 1u);
  const std::vector<Tensor> x = fixture_inputs(fx);
  ASSERT_EQ(x.size(), c.inputs);
  const Tensor y = model.predict_all(x).at(0);
  const double diff = max_abs_diff(y, fx.at("y"));
  std::cout << "[ onnx ] " << c.name << ": max |lamina - pytorch| = " << diff << " over " << y.numel() << " outputs\n";
  EXPECT_TRUE(all_close(y, fx.at("y"), 1e-4, 1e-4)) << c.name;
}

TEST_P(PyTorchModels, FineTunes) {
  const Case& c = GetParam();
  auto fx = load_fixture(std::string("onnx_") + c.name);
  Model model = load_onnx(fixture_path(std::string("onnx_") + c.name + ".onnx"));
  const std::vector<Tensor> x = fixture_inputs(fx);
  const std::string last = model.layers().back()->config().value("activation", "linear");
  const Loss loss = last == "softmax" ? Loss(Loss::sparse_categorical_crossentropy)
                    : last == "tanh"  ? Loss(Loss::mean_squared_error)
                                      : Loss(Loss::sparse_categorical_crossentropy, /*from_logits=*/true);
  Tensor y = fx.at("labels");
  if (last == "tanh") {  // a regression target in (-1, 1)
    Generator gen(5);
    y = Tensor::rand(model.predict_all(x).at(0).shape(), gen, -0.9f, 0.9f);
  }
  manual_seed(1);
  model.compile(Adam({.learning_rate = 0.01}), loss);
  const double before = model.evaluate(x, {y}, {.verbose = 0}).at("loss");
  const History h = model.fit(x, {y}, {.epochs = 8, .batch_size = x[0].dim(0), .shuffle = false, .verbose = 0});
  const double after = model.evaluate(x, {y}, {.verbose = 0}).at("loss");
  const auto& losses = h.history.at("loss");
  EXPECT_LT(losses.back(), losses.front()) << c.name;
  EXPECT_LT(after, before) << c.name;
}

TEST_P(PyTorchModels, SavesAndLoadsAsLamina) {
  const Case& c = GetParam();
  auto fx = load_fixture(std::string("onnx_") + c.name);
  Model model = load_onnx(fixture_path(std::string("onnx_") + c.name + ".onnx"));
  const fs::path p = fs::temp_directory_path() / ("lamina_onnx_" + std::to_string(::getpid()) + c.name + ".safetensors");
  model.save(p.string());
  Model again = Model::load(p.string());
  if (c.sequential) {
    EXPECT_NO_THROW(Sequential::load(p.string()));  // a chain is saved as a Sequential
  }
  fs::remove(p);
  EXPECT_EQ(again.is_sequential(), c.sequential);
  EXPECT_EQ(class_names(again), class_names(model));
  const std::vector<Tensor> x = fixture_inputs(fx);
  EXPECT_TRUE(all_close(again.predict_all(x).at(0), model.predict_all(x).at(0), 0, 0));
}

INSTANTIATE_TEST_SUITE_P(
    Onnx, PyTorchModels,
    ::testing::Values(Case{"mlp", {"Dense", "Dense"}, 8 * 16 + 16 + 16 * 4 + 4},
                      Case{"mlp2", {"Dense", "BatchNormalization", "Activation", "Dense", "Dense"},
                           6 * 10 + 4 * 10 + 10 * 7 + 7 + 7 * 3 + 3},
                      Case{"cnn",
                           {"Conv2D", "MaxPooling2D", "Conv2D", "BatchNormalization", "Activation", "AveragePooling2D",
                            "Flatten", "Dense"},
                           3 * 3 * 3 * 4 + 4 + 3 * 3 * 4 * 6 + 4 * 6 + 24 * 5 + 5},
                      Case{"gap",
                           {"Conv2D", "LeakyReLU", "MaxPooling2D", "Conv2D", "GlobalAveragePooling2D", "Dense"},
                           3 * 3 * 2 * 4 + 4 + 3 * 3 * 4 * 8 + 8 + 8 * 3 + 3},
                      // Residual blocks: the identity shortcut, then a strided 1x1 projection.
                      Case{"resnet",
                           {"Conv2D", "Conv2D", "Conv2D", "Add", "Activation", "Conv2D", "MaxPooling2D", "Conv2D",
                            "Conv2D", "Add", "Activation", "GlobalAveragePooling2D", "Dense"},
                           (9 * 4 + 4) + 2 * (9 * 4 * 4 + 4) + (9 * 4 * 8 + 8) + (9 * 8 * 8 + 8) + (4 * 8 + 8) + (8 * 5 + 5),
                           1, false},
                      Case{"two_input",
                           {"Dense", "Dense", "Concatenate", "Dense", "Add", "Dense", "Add", "Multiply", "Dense", "Add",
                            "Activation"},
                           (6 * 8 + 8) + (3 * 8 + 8) + (16 * 4 + 4) + 2 * (8 * 4 + 4), 2, false},
                      // Recurrent nodes between PyTorch's Transposes, its zero states from
                      // ConstantOfShape; LSTM's two bias vectors add into Keras' one, GRU keeps
                      // both rows (linear_before_reset = Keras' reset_after).
                      Case{"lstm", {"LSTM", "Dense"}, 4 * (3 * 5 + 5 * 5 + 5) + 5 * 4 + 4},
                      Case{"gru_seq", {"GRU", "Dense"}, 3 * 4 * (3 + 4 + 2) + 4 * 2 + 2},
                      // One bidirectional LSTM node, its directions concatenated by a Transpose
                      // (0, 2, 1, 3) and a Reshape (0, 0, -1): a Bidirectional.
                      Case{"bilstm", {"Bidirectional", "Dense"}, 2 * 4 * 4 * (3 + 4 + 1) + 8 * 2 + 2}),
    [](const ::testing::TestParamInfo<Case>& info) { return std::string(info.param.name); });

TEST(OnnxImport, LayersKeepPyTorchNamesAndFoldActivations) {
  Sequential mlp(load_onnx(fixture_path("onnx_mlp.onnx")));  // a chain: Sequential-shaped
  ASSERT_EQ(mlp.layers().size(), 3u);
  EXPECT_EQ(mlp.layers()[1]->name(), "fc1");
  EXPECT_EQ(mlp.layers()[1]->config()["activation"], "relu");
  EXPECT_EQ(mlp.layers()[2]->name(), "fc2");
  EXPECT_EQ(mlp.layers()[2]->config()["activation"], "softmax");
  EXPECT_EQ(mlp.input_shape(), Shape({8}));
  EXPECT_FALSE(mlp.compiled());

  Sequential cnn(load_onnx(fixture_path("onnx_cnn.onnx")));
  EXPECT_EQ(cnn.input_shape(), Shape({12, 12, 3}));  // channels-last
  auto& conv1 = dynamic_cast<layers::Conv2D&>(cnn.layer("conv1"));
  EXPECT_EQ(conv1.options().padding, Padding::same);
  EXPECT_EQ(conv1.options().activation, Activation::relu);
  EXPECT_FALSE(dynamic_cast<layers::Conv2D&>(cnn.layer("conv2")).options().use_bias);
  auto& bn = dynamic_cast<layers::BatchNormalization&>(cnn.layer("bn"));
  EXPECT_FLOAT_EQ(bn.options().epsilon, 1e-5f);
  EXPECT_FLOAT_EQ(bn.options().momentum, 0.9f);

  Sequential gap(load_onnx(fixture_path("onnx_gap.onnx")));
  EXPECT_FLOAT_EQ(dynamic_cast<layers::LeakyReLU&>(*gap.layers()[2]).negative_slope(), 0.1f);
  EXPECT_EQ(gap.layers().back()->config()["activation"], "log_softmax");
  auto& pool = dynamic_cast<layers::MaxPooling2D&>(*gap.layers()[3]);
  EXPECT_EQ(pool.options().padding, Padding::same);  // PyTorch's padding=1, stride 2 on 5x5
}

size_t count_class(const Model& m, const std::string& cls) {
  size_t k = 0;
  for (const auto& l : m.layers()) k += l->class_name() == cls;
  return k;
}

TEST(OnnxImport, BranchesBecomeFunctionalModels) {
  Model res = load_onnx(fixture_path("onnx_resnet.onnx"));
  EXPECT_EQ(res.class_name(), "Functional");
  EXPECT_EQ(res.input_names(), std::vector<std::string>{"x"});
  EXPECT_EQ(res.input_shape(), Shape({8, 8, 1}));  // channels-last
  EXPECT_EQ(res.output_shape(), Shape({5}));
  EXPECT_EQ(count_class(res, "Add"), 2u);
  // The Relu after the stem's Conv feeds both block1's conv1 and its Add: folded into the Conv,
  // whose output is read twice; the Relu after each Add stays a layer of its own.
  EXPECT_EQ(dynamic_cast<layers::Conv2D&>(res.layer("conv")).options().activation, Activation::relu);
  auto& shortcut = dynamic_cast<layers::Conv2D&>(res.layer("shortcut"));
  EXPECT_EQ(shortcut.options().kernel_size, Size2(1, 1));
  EXPECT_EQ(shortcut.options().strides, Size2(2, 2));
  for (const Model::Node& n : res.nodes())
    if (n.layer->class_name() == "Add") {
      EXPECT_EQ(n.inputs.size(), 2u);
      EXPECT_NE(n.inputs[0], n.inputs[1]);
    }

  Model two = load_onnx(fixture_path("onnx_two_input.onnx"));
  EXPECT_EQ(two.class_name(), "Functional");
  EXPECT_EQ(two.input_names(), (std::vector<std::string>{"x0", "x1"}));  // the graph's inputs, in order
  EXPECT_EQ(two.input_shapes(), (std::vector<Shape>{Shape({6}), Shape({3})}));
  EXPECT_EQ(two.output_shape(), Shape({4}));
  EXPECT_EQ(count_class(two, "Add"), 3u);
  EXPECT_EQ(count_class(two, "Multiply"), 1u);
  ASSERT_EQ(count_class(two, "Concatenate"), 1u);
  for (const auto& l : two.layers())
    if (l->class_name() == "Concatenate") {
      EXPECT_EQ(dynamic_cast<layers::Concatenate&>(*l).axis(), -1);
    }
  EXPECT_EQ(two.layer("fc_a").config()["activation"], "relu");
  EXPECT_EQ(two.layer("fc_b").config()["activation"], "tanh");
  EXPECT_EQ(two.layers().back()->config()["activation"], "softmax");
}

// save_onnx writes the imported graph back (merges included); reading that file again gives a
// model that predicts the same.
TEST(OnnxImport, ImportedGraphsExportAndReadBack) {
  for (const char* name : {"resnet", "two_input"}) {
    auto fx = load_fixture(std::string("onnx_") + name);
    Model model = load_onnx(fixture_path(std::string("onnx_") + name + ".onnx"));
    const fs::path p = fs::temp_directory_path() / ("lamina_onnx_rt_" + std::to_string(::getpid()) + name + ".onnx");
    save_onnx(model, p.string());
    Model again = load_onnx(p.string());
    fs::remove(p);
    EXPECT_FALSE(again.is_sequential()) << name;
    EXPECT_EQ(again.input_shapes(), model.input_shapes()) << name;
    EXPECT_EQ(count_class(again, "Add"), count_class(model, "Add")) << name;
    EXPECT_EQ(again.count_params(), model.count_params()) << name;
    const std::vector<Tensor> x = fixture_inputs(fx);
    const Tensor want = model.predict_all(x).at(0), got = again.predict_all(x).at(0);
    std::cout << "[ onnx ] " << name << " exported and read back: max |difference| = " << max_abs_diff(got, want) << "\n";
    EXPECT_TRUE(all_close(got, want, 1e-5, 1e-5)) << name;
    EXPECT_TRUE(all_close(got, fx.at("y"), 1e-4, 1e-4)) << name;
  }
}

TEST(OnnxImport, LeakyReLULayerReadsBothKerasConfigs) {
  auto keras3 = layer_from_config("LeakyReLU", {{"name", "lr"}, {"negative_slope", 0.1}});
  EXPECT_FLOAT_EQ(dynamic_cast<layers::LeakyReLU&>(*keras3).negative_slope(), 0.1f);
  EXPECT_EQ(keras3->config()["negative_slope"], 0.1);
  auto keras2 = layer_from_config("LeakyReLU", {{"alpha", 0.05}});
  EXPECT_FLOAT_EQ(dynamic_cast<layers::LeakyReLU&>(*keras2).negative_slope(), 0.05f);
  EXPECT_FLOAT_EQ(dynamic_cast<layers::LeakyReLU&>(*layer_from_config("LeakyReLU", Json::object())).negative_slope(), 0.3f);
  const Tensor y = keras3->call(Tensor::from({-2.f, 3.f}), false);
  EXPECT_FLOAT_EQ(y.data()[0], -0.2f);
  EXPECT_FLOAT_EQ(y.data()[1], 3.f);
}

TEST(OnnxImport, IsOnnxFile) {
  EXPECT_TRUE(is_onnx_file(fixture_path("onnx_mlp.onnx")));
  EXPECT_TRUE(is_onnx_file("/nonexistent/model.onnx"));  // by name
  EXPECT_FALSE(is_onnx_file(fixture_path("onnx_mlp.bin")));
  EXPECT_FALSE(is_onnx_file("/nonexistent/model.safetensors"));
}

// --- a protobuf writer, to build graphs by hand -----------------------------------------------------

struct Pb {
  std::string s;
  Pb& varint(uint64_t v) {
    do {
      s += static_cast<char>((v & 0x7f) | (v >= 0x80 ? 0x80 : 0));
      v >>= 7;
    } while (v);
    return *this;
  }
  Pb& tag(int field, int wire) { return varint(static_cast<uint64_t>(field) << 3 | static_cast<uint64_t>(wire)); }
  Pb& i(int field, int64_t v) { return tag(field, 0).varint(static_cast<uint64_t>(v)); }
  Pb& str(int field, const std::string& v) {
    tag(field, 2).varint(v.size());
    s += v;
    return *this;
  }
  Pb& msg(int field, const Pb& m) { return str(field, m.s); }
  Pb& f32(int field, float v) {
    tag(field, 5);
    char b[4];
    std::memcpy(b, &v, 4);
    s.append(b, 4);
    return *this;
  }
};

Pb tensor(const std::string& name, const std::vector<int64_t>& dims, const std::vector<float>& v) {
  Pb t;
  for (int64_t d : dims) t.i(1, d);
  t.i(2, 1).str(8, name);
  t.str(9, std::string(reinterpret_cast<const char*>(v.data()), v.size() * 4));
  return t;
}

Pb int_tensor(const std::string& name, const std::vector<int64_t>& dims, const std::vector<int64_t>& v) {
  Pb t;
  for (int64_t d : dims) t.i(1, d);
  t.i(2, 7).str(8, name);
  for (int64_t x : v) t.i(7, x);
  return t;
}

Pb attr_i(const std::string& name, int64_t v) { return Pb().str(1, name).i(20, 2).i(3, v); }
Pb attr_f(const std::string& name, float v) { return Pb().str(1, name).i(20, 1).f32(2, v); }
Pb attr_is(const std::string& name, const std::vector<int64_t>& v) {
  Pb a;
  a.str(1, name).i(20, 7);
  for (int64_t x : v) a.i(8, x);
  return a;
}

Pb node(const std::string& op, const std::vector<std::string>& in, const std::vector<std::string>& out,
        const std::string& name, const std::vector<Pb>& attrs = {}) {
  Pb n;
  for (const auto& x : in) n.str(1, x);
  for (const auto& x : out) n.str(2, x);
  n.str(3, name).str(4, op);
  for (const Pb& a : attrs) n.msg(5, a);
  return n;
}

// dims: -1 is the symbolic batch "N".
Pb value_info(const std::string& name, const std::vector<int64_t>& dims) {
  Pb shape;
  for (int64_t d : dims) shape.msg(1, d < 0 ? Pb().str(2, "N") : Pb().i(1, d));
  return Pb().str(1, name).msg(2, Pb().msg(1, Pb().i(1, 1).msg(2, shape)));
}

struct GraphSpec {
  std::vector<Pb> nodes, inits;
  std::vector<Pb> inputs = {value_info("x", {-1, 4})};
  std::vector<Pb> outputs = {value_info("y", {-1, 3})};
  int64_t opset = 13;
  std::string bytes() const {
    Pb g;
    for (const Pb& n : nodes) g.msg(1, n);
    g.str(2, "test");
    for (const Pb& t : inits) g.msg(5, t);
    for (const Pb& v : inputs) g.msg(11, v);
    for (const Pb& v : outputs) g.msg(12, v);
    return Pb().i(1, 8).str(2, "handmade").msg(7, g).msg(8, Pb().i(2, opset)).s;
  }
};

std::vector<float> iota(size_t n, float scale) {
  std::vector<float> v(n);
  for (size_t k = 0; k < n; ++k) v[k] = scale * static_cast<float>((k * 7) % 11) - 0.3f;
  return v;
}

// x (N, 4) -> Gemm (W (3, 4), transB) -> Relu -> y
GraphSpec dense_graph() {
  GraphSpec g;
  g.inits = {tensor("W", {3, 4}, iota(12, 0.1f)), tensor("b", {3}, {0.1f, -0.2f, 0.3f})};
  g.nodes = {node("Gemm", {"x", "W", "b"}, {"h"}, "/fc/Gemm", {attr_i("transB", 1)}),
             node("Relu", {"h"}, {"y"}, "/act/Relu")};
  return g;
}

// Expects load_onnx to throw lamina::Error whose message has every one of `parts`.
void expect_error(const std::string& path, const std::vector<std::string>& parts) {
  try {
    load_onnx(path);
    ADD_FAILURE() << "no error for " << path;
  } catch (const Error& e) {
    const std::string msg = e.what();
    for (const auto& p : parts) EXPECT_NE(msg.find(p), std::string::npos) << "'" << p << "' not in: " << msg;
  }
}

TEST_F(OnnxFiles, HandBuiltDenseMatchesTheMath) {
  Sequential m(load_onnx(write("dense.onnx", dense_graph().bytes())));
  const Tensor x = Tensor::from({{1, 2, 3, 4}, {-1, 0.5f, 0, 2}});
  const std::vector<float> w = iota(12, 0.1f), b = {0.1f, -0.2f, 0.3f};
  Tensor want = Tensor::empty({2, 3});
  for (int64_t r = 0; r < 2; ++r)
    for (int64_t u = 0; u < 3; ++u) {
      float s = b[static_cast<size_t>(u)];
      for (int64_t k = 0; k < 4; ++k) s += x.at({r, k}) * w[static_cast<size_t>(u * 4 + k)];
      want.data()[r * 3 + u] = std::max(s, 0.f);
    }
  EXPECT_TRUE(all_close(m.predict(x), want, 1e-6, 1e-6));
  EXPECT_EQ(m.layers()[1]->name(), "fc");
}

// PyTorch's x.view(x.size(0), -1): Shape -> Gather -> Unsqueeze -> Concat -> Reshape, with
// Unsqueeze's axes as an attribute (opset 11) or an input (13); the second also lists its
// initializers as graph inputs, as keep_initializers_as_inputs=True exports do.
TEST_F(OnnxFiles, MatMulAddAndReshapeFromShapeNodes) {
  for (int64_t opset : {11, 13}) {
    GraphSpec g;
    g.opset = opset;
    g.inputs = {value_info("x", {-1, 2, 2})};
    g.inits = {tensor("W", {4, 3}, iota(12, 0.2f)), tensor("b", {3}, {1, 2, 3}), int_tensor("minus1", {1}, {-1}),
               int_tensor("zero", {}, {0})};
    const Pb unsqueeze = opset < 13 ? node("Unsqueeze", {"n"}, {"n1"}, "unsq", {attr_is("axes", {0})})
                                    : node("Unsqueeze", {"n", "axes"}, {"n1"}, "unsq");
    if (opset >= 13) {
      g.inits.push_back(int_tensor("axes", {1}, {0}));
      for (const char* name : {"W", "b", "minus1", "zero", "axes"}) g.inputs.push_back(value_info(name, {1}));
    }
    g.nodes = {node("Shape", {"x"}, {"s"}, "shape"), node("Gather", {"s", "zero"}, {"n"}, "gather"), unsqueeze,
               node("Concat", {"n1", "minus1"}, {"target"}, "concat", {attr_i("axis", 0)}),
               node("Reshape", {"x", "target"}, {"flat"}, "reshape"), node("MatMul", {"flat", "W"}, {"m"}, "mm"),
               node("Add", {"b", "m"}, {"a"}, "add"), node("Tanh", {"a"}, {"y"}, "tanh")};
    Sequential m(load_onnx(write("mm.onnx", g.bytes())));
    EXPECT_EQ(class_names(m), (std::vector<std::string>{"InputLayer", "Flatten", "Dense"})) << "opset " << opset;
    EXPECT_EQ(m.layers()[2]->config()["activation"], "tanh");
    const Tensor x = Tensor::from({1, -1, 0.5f, 2}, {1, 2, 2});
    const std::vector<float> w = iota(12, 0.2f);
    Tensor want = Tensor::empty({1, 3});
    for (int64_t u = 0; u < 3; ++u) {
      float s = static_cast<float>(u + 1);
      for (int64_t k = 0; k < 4; ++k) s += x.data()[k] * w[static_cast<size_t>(k * 3 + u)];
      want.data()[u] = std::tanh(s);
    }
    EXPECT_TRUE(all_close(m.predict(x), want, 1e-6, 1e-6)) << "opset " << opset;
  }
}

// An exporter from a channels-last framework: NHWC input, Transpose to NCHW around the Conv and
// back before the Flatten. Lamina takes the input as it is and flattens in the graph's order.
TEST_F(OnnxFiles, TransposesAroundConvNeedNoPermutation) {
  GraphSpec g;
  g.inputs = {value_info("x", {-1, 4, 4, 2})};
  g.outputs = {value_info("y", {-1, 2})};
  const std::vector<float> w = iota(3 * 2 * 2 * 2, 0.1f), d = iota(27 * 2, 0.05f);
  g.inits = {tensor("K", {3, 2, 2, 2}, w), tensor("D", {27, 2}, d)};
  g.nodes = {node("Transpose", {"x"}, {"t"}, "to_nchw", {attr_is("perm", {0, 3, 1, 2})}),
             node("Conv", {"t", "K"}, {"c"}, "conv", {attr_is("kernel_shape", {2, 2})}),
             node("Transpose", {"c"}, {"t2"}, "to_nhwc", {attr_is("perm", {0, 2, 3, 1})}),
             node("Flatten", {"t2"}, {"f"}, "flatten"), node("MatMul", {"f", "D"}, {"y"}, "dense")};
  Sequential m(load_onnx(write("t.onnx", g.bytes())));
  EXPECT_EQ(m.input_shape(), Shape({4, 4, 2}));
  // The same model written directly in Lamina: kernel OIHW -> HWIO, Dense rows as in the graph.
  manual_seed(0);
  Sequential ref({layers::InputLayer(Shape{4, 4, 2}),
                  layers::Conv2D({.filters = 3, .kernel_size = 2, .use_bias = false}), layers::Flatten(),
                  layers::Dense({.units = 2, .use_bias = false})});
  ref.build(Shape{4, 4, 2});
  Tensor& k = dynamic_cast<layers::Conv2D&>(*ref.layers()[1]).kernel();
  for (int64_t o = 0; o < 3; ++o)
    for (int64_t i = 0; i < 2; ++i)
      for (int64_t y = 0; y < 2; ++y)
        for (int64_t x = 0; x < 2; ++x) k.data()[((y * 2 + x) * 2 + i) * 3 + o] = w[static_cast<size_t>(((o * 2 + i) * 2 + y) * 2 + x)];
  Tensor& dk = dynamic_cast<layers::Dense&>(*ref.layers()[3]).kernel();
  std::copy(d.begin(), d.end(), dk.data());
  Generator gen(3);
  const Tensor x = Tensor::randn({2, 4, 4, 2}, gen);
  EXPECT_TRUE(all_close(m.predict(x), ref.predict(x), 1e-5, 1e-5));
}

TEST_F(OnnxFiles, UnsupportedGraphsNameTheNode) {
  GraphSpec g = dense_graph();
  g.nodes[1] = node("Selu", {"h"}, {"y"}, "/act/Selu");
  expect_error(write("selu.onnx", g.bytes()), {"selu.onnx", "node 1 '/act/Selu' (Selu)", "operator 'Selu' is not supported"});

  g = dense_graph();
  g.nodes[0] = node("Gemm", {"x", "W_missing", "b"}, {"h"}, "/fc/Gemm", {attr_i("transB", 1)});
  expect_error(write("missing.onnx", g.bytes()), {"node 0 '/fc/Gemm' (Gemm)", "'W_missing'", "missing initializer"});

  g = dense_graph();  // a graph input no output uses
  g.inputs.push_back(value_info("x2", {-1, 4}));
  expect_error(write("two_inputs.onnx", g.bytes()), {"graph input 'x2'", "does not reach any graph output"});

  g = dense_graph();  // two activations of different shapes
  g.outputs = {value_info("y", {-1, 3})};
  g.nodes[1] = node("Add", {"h", "x"}, {"y"}, "add");
  expect_error(write("broadcast.onnx", g.bytes()), {"node 1 'add' (Add)", "(N, 3) ('h') and (N, 4) ('x')", "one shape"});

  g = dense_graph();
  g.nodes[1] = node("Concat", {"h", "h"}, {"y"}, "cat", {attr_i("axis", 0)});
  expect_error(write("cat0.onnx", g.bytes()), {"node 1 'cat' (Concat)", "batch axis"});

  g = dense_graph();
  g.inits.push_back(tensor("c", {3}, {1, 2, 3}));
  g.nodes[1] = node("Concat", {"h", "h", "c"}, {"y"}, "cat", {attr_i("axis", 1)});
  expect_error(write("cat_const.onnx", g.bytes()), {"node 1 'cat' (Concat)", "'c' is a constant", "activations only"});

  g = dense_graph();
  g.inits.push_back(tensor("c", {3}, {1, 2, 3}));
  g.nodes[1] = node("Mul", {"h", "c"}, {"y"}, "scale");
  expect_error(write("mul_const.onnx", g.bytes()), {"node 1 'scale' (Mul)", "activation 'h' and a constant"});

  g = dense_graph();
  g.inputs.push_back(value_info("x2", {-1, 4}));
  g.outputs = {value_info("y", {-1, 4})};
  g.nodes = {node("MatMul", {"x", "x2"}, {"y"}, "mm")};
  expect_error(write("matmul2.onnx", g.bytes()), {"node 0 'mm' (MatMul)", "takes 2 activations ('x', 'x2')", "merge layers"});

  g = dense_graph();
  g.outputs = {value_info("y", {-1, 3}), value_info("x", {-1, 4})};
  expect_error(write("out_in.onnx", g.bytes()), {"graph output 'x'", "graph input 'x' itself"});

  g = GraphSpec();  // an NCHW image and one a channels-last exporter transposes: not the same layout
  g.inputs = {value_info("a", {-1, 2, 4, 4}), value_info("b", {-1, 4, 4, 2})};
  g.outputs = {value_info("y", {-1, 2, 4, 4})};
  g.nodes = {node("Transpose", {"b"}, {"bt"}, "to_nchw", {attr_is("perm", {0, 3, 1, 2})}),
             node("Transpose", {"bt"}, {"bt2"}, "swap_hw", {attr_is("perm", {0, 1, 3, 2})}),
             node("Add", {"a", "bt2"}, {"y"}, "add")};
  expect_error(write("layouts.onnx", g.bytes()), {"node 2 'add' (Add)", "different layouts"});

  g = dense_graph();
  g.nodes[0] = node("Gemm", {"x", "W", "b"}, {"h"}, "/fc/Gemm", {attr_i("transB", 0)});
  expect_error(write("shape.onnx", g.bytes()), {"(Gemm)", "B has shape (3, 4) (transB = 0)", "its input has 4"});

  g = dense_graph();
  g.inits[0] = int_tensor("W", {3, 4}, std::vector<int64_t>(12, 1));
  expect_error(write("int_weight.onnx", g.bytes()), {"(Gemm)", "2-D float tensor"});

  g = dense_graph();
  g.nodes[1] = node("Softmax", {"h"}, {"y"}, "sm", {attr_i("axis", 0)});
  expect_error(write("softmax0.onnx", g.bytes()), {"(Softmax)", "batch axis"});

  g = dense_graph();
  g.nodes.insert(g.nodes.begin(), node("Relu", {"x"}, {"h"}, "dup"));
  expect_error(write("dup.onnx", g.bytes()), {"node 1 '/fc/Gemm'", "output 'h' is already"});

  g = dense_graph();
  g.inputs = {value_info("x", {-1, -1})};
  expect_error(write("symbolic.onnx", g.bytes()), {"dimension 1", "symbolic ('N')"});

  g = dense_graph();
  g.nodes[1] = node("Elu", {"h"}, {"y"}, "elu", {attr_f("alpha", 0.5f)});
  expect_error(write("elu.onnx", g.bytes()), {"(Elu)", "alpha = 0.5"});
}

// x (N, 4) -> MatMul W -> h; y = h + x: a residual connection, as a Dense and an Add.
TEST_F(OnnxFiles, ResidualAddMatchesTheMath) {
  for (const char* op : {"Add", "Sub", "Mul", "Max", "Min", "Sum", "Mean"}) {
    GraphSpec g;
    g.outputs = {value_info("y", {-1, 4})};
    const std::vector<float> w = iota(16, 0.1f);
    g.inits = {tensor("W", {4, 4}, w)};
    g.nodes = {node("MatMul", {"x", "W"}, {"h"}, "/fc/MatMul"), node(op, {"h", "x"}, {"y"}, "merge")};
    Model m = load_onnx(write("residual.onnx", g.bytes()));
    EXPECT_EQ(m.class_name(), "Functional") << op;
    const std::string cls = std::string(op) == "Add" || std::string(op) == "Sum" ? "Add"
                            : std::string(op) == "Sub"                           ? "Subtract"
                            : std::string(op) == "Mul"                           ? "Multiply"
                            : std::string(op) == "Max"                           ? "Maximum"
                            : std::string(op) == "Min"                           ? "Minimum"
                                                                                 : "Average";
    EXPECT_EQ(class_names(m), (std::vector<std::string>{"InputLayer", "Dense", cls})) << op;
    const Tensor x = Tensor::from({{1, 2, 3, 4}, {-1, 0.5f, 0, 2}});
    Tensor want = Tensor::empty({2, 4});
    for (int64_t r = 0; r < 2; ++r)
      for (int64_t u = 0; u < 4; ++u) {
        float h = 0;
        for (int64_t k = 0; k < 4; ++k) h += x.at({r, k}) * w[static_cast<size_t>(k * 4 + u)];
        const float v = x.at({r, u});
        const std::string o = op;
        want.data()[r * 4 + u] = o == "Add" || o == "Sum" ? h + v
                                 : o == "Sub"             ? h - v
                                 : o == "Mul"             ? h * v
                                 : o == "Max"             ? std::max(h, v)
                                 : o == "Min"             ? std::min(h, v)
                                                          : (h + v) / 2;
      }
    EXPECT_TRUE(all_close(m.predict(x), want, 1e-6, 1e-6)) << op;
  }
}

// A value read by two nodes is not folded into the layer before it; nodes no output reads are
// left out, and what is left of a chain is still a Sequential.
TEST_F(OnnxFiles, ForksAndDeadBranches) {
  GraphSpec g = dense_graph();
  g.outputs = {value_info("h", {-1, 3})};  // the Gemm's output; the Relu after it is dead
  Model m = load_onnx(write("branch.onnx", g.bytes()));
  EXPECT_TRUE(m.is_sequential());
  EXPECT_EQ(class_names(m), (std::vector<std::string>{"InputLayer", "Dense"}));
  EXPECT_EQ(m.layers()[1]->config()["activation"], "linear");

  g = dense_graph();  // h feeds two Relus, one of which no output reads
  g.nodes.push_back(node("Relu", {"h"}, {"z"}, "r2"));
  m = load_onnx(write("fork.onnx", g.bytes()));
  EXPECT_TRUE(m.is_sequential());
  EXPECT_EQ(class_names(m), (std::vector<std::string>{"InputLayer", "Dense", "Activation"}));

  g.outputs = {value_info("y", {-1, 3}), value_info("z", {-1, 3})};  // both read: two outputs
  m = load_onnx(write("two_outputs.onnx", g.bytes()));
  EXPECT_FALSE(m.is_sequential());
  ASSERT_EQ(m.num_outputs(), 2u);
  const Tensor x = Tensor::from({{1, 2, 3, 4}, {-1, 0.5f, 0, 2}});
  const std::vector<Tensor> ys = m.predict_all({x});
  ASSERT_EQ(ys.size(), 2u);
  EXPECT_TRUE(all_close(ys[0], ys[1], 0, 0));
  Sequential chain(load_onnx(write("dense.onnx", dense_graph().bytes())));
  EXPECT_TRUE(all_close(ys[0], chain.predict(x), 1e-6, 1e-6));
}

// Concat of NCHW images along channels (1), H (2), W (3): Lamina's axes -1, 1, 2. A 1x1 Conv after
// it mixes the channels, so a wrong order would show.
TEST_F(OnnxFiles, ConcatOfImagesMapsTheAxis) {
  const int64_t n = 2, c = 2, h = 3, w = 4;
  Generator gen(11);
  const Tensor x = Tensor::randn({n, c, h, w}, gen);  // NCHW
  for (int64_t axis : {1, 2, 3, -3}) {
    const int64_t a = axis < 0 ? axis + 4 : axis;
    std::vector<int64_t> zs = {n, c, h, w};
    zs[static_cast<size_t>(a)] *= 2;
    const int64_t zc = zs[1], zh = zs[2], zw = zs[3];
    GraphSpec g;
    g.inputs = {value_info("x", {-1, c, h, w})};
    g.outputs = {value_info("y", {-1, 3, zh, zw})};
    const std::vector<float> k = iota(static_cast<size_t>(3 * zc), 0.1f);
    g.inits = {tensor("K", {3, zc, 1, 1}, k)};
    g.nodes = {node("Relu", {"x"}, {"r"}, "relu"), node("Concat", {"x", "r"}, {"z"}, "cat", {attr_i("axis", axis)}),
               node("Conv", {"z", "K"}, {"y"}, "conv")};
    Model m = load_onnx(write("cat.onnx", g.bytes()));
    int64_t keras_axis = 0;
    for (const auto& l : m.layers())
      if (l->class_name() == "Concatenate") keras_axis = dynamic_cast<layers::Concatenate&>(*l).axis();
    EXPECT_EQ(keras_axis, a == 1 ? -1 : a - 1) << "axis " << axis;  // NCHW axis 2 (H) is NHWC's 1
    // z = cat(x, relu(x)) along `a`, then y[o] = sum_c K[o, c] z[c], in NCHW.
    Tensor y = Tensor::empty({n, 3, zh, zw});
    auto xv = [&](int64_t i, int64_t ch, int64_t r, int64_t q) { return x.data()[((i * c + ch) * h + r) * w + q]; };
    for (int64_t i = 0; i < n; ++i)
      for (int64_t o = 0; o < 3; ++o)
        for (int64_t r = 0; r < zh; ++r)
          for (int64_t q = 0; q < zw; ++q) {
            float s = 0;
            for (int64_t ch = 0; ch < zc; ++ch) {
              int64_t idx[3] = {ch, r, q};
              const int64_t size[3] = {c, h, w};
              const bool second = idx[a - 1] >= size[a - 1];
              if (second) idx[a - 1] -= size[a - 1];
              const float v = xv(i, idx[0], idx[1], idx[2]);
              s += k[static_cast<size_t>(o * zc + ch)] * (second ? std::max(v, 0.f) : v);
            }
            y.data()[((i * 3 + o) * zh + r) * zw + q] = s;
          }
    EXPECT_TRUE(all_close(m.predict(nhwc(x)), nhwc(y), 1e-5, 1e-5)) << "axis " << axis;
  }
}

GraphSpec image_graph(const std::vector<Pb>& conv_attrs, int64_t size, int64_t groups = 1) {
  GraphSpec g;
  g.inputs = {value_info("x", {-1, 2, size, size})};
  g.outputs = {value_info("y", {-1, 3, -1, -1})};
  g.inits = {tensor("K", {3, 2 / groups, 3, 3}, iota(static_cast<size_t>(3 * 2 / groups * 9), 0.1f))};
  g.nodes = {node("Conv", {"x", "K"}, {"y"}, "/conv/Conv", conv_attrs)};
  return g;
}

TEST_F(OnnxFiles, ConvolutionsLaminaCannotPlaceAreRefused) {
  // Windows Lamina cannot place: 2 cells of padding before a 3x3 window.
  expect_error(write("pads.onnx", image_graph({attr_is("pads", {2, 2, 2, 2}), attr_is("strides", {2, 2})}, 8).bytes()),
               {"node 0 '/conv/Conv' (Conv)", "pads (2, 2, 2, 2)", "neither Lamina padding", "'same' is pads (0, 0, 1, 1)"});
  // PyTorch's padding=1 with stride 2 on an even size: windows start one cell before TensorFlow's
  // 'same'; Lamina runs it at stride 1 and keeps every other pixel (a 1x1 MaxPooling2D, stride 2).
  {
    Sequential s2(load_onnx(write("s2.onnx", image_graph({attr_is("pads", {1, 1, 1, 1}), attr_is("strides", {2, 2})}, 8).bytes())));
    EXPECT_EQ(class_names(s2), (std::vector<std::string>{"InputLayer", "Conv2D", "MaxPooling2D"}));
    Sequential s1(load_onnx(write("s1.onnx", image_graph({attr_is("pads", {1, 1, 1, 1})}, 8).bytes())));
    Generator gen(4);
    const Tensor x = Tensor::randn({2, 8, 8, 2}, gen);
    const Tensor y2 = s2.predict(x), y1 = s1.predict(x);
    ASSERT_EQ(y2.shape(), Shape({2, 4, 4, 3}));
    Tensor want = Tensor::empty({2, 4, 4, 3});
    for (int64_t i = 0; i < 2; ++i)
      for (int64_t r = 0; r < 4; ++r)
        for (int64_t q = 0; q < 4; ++q)
          for (int64_t o = 0; o < 3; ++o) want.data()[((i * 4 + r) * 4 + q) * 3 + o] = y1.at({i, 2 * r, 2 * q, o});
    EXPECT_TRUE(all_close(y2, want, 1e-6, 1e-6));
  }
  // ... on an odd size they agree with 'same', and so does stride 1.
  EXPECT_NO_THROW(load_onnx(write("odd.onnx", image_graph({attr_is("pads", {1, 1, 1, 1}), attr_is("strides", {2, 2})}, 9).bytes())));
  EXPECT_NO_THROW(load_onnx(write("s1.onnx", image_graph({attr_is("pads", {1, 1, 1, 1})}, 8).bytes())));
  expect_error(write("group.onnx", image_graph({attr_i("group", 2)}, 8, 2).bytes()), {"(Conv)", "group = 2"});
  expect_error(write("dilated.onnx", image_graph({attr_is("dilations", {2, 2})}, 8).bytes()), {"dilations (2, 2)"});

  GraphSpec g = image_graph({}, 6);
  g.nodes.push_back(node("AveragePool", {"y"}, {"z"}, "pool",
                         {attr_is("kernel_shape", {3, 3}), attr_is("pads", {1, 1, 1, 1}), attr_i("count_include_pad", 1)}));
  g.outputs = {value_info("z", {-1, 3, 4, 4})};
  expect_error(write("avg.onnx", g.bytes()), {"node 1 'pool' (AveragePool)", "count_include_pad = 1"});

  g = image_graph({}, 6);  // the output is a channels-first flatten: Lamina's order differs
  g.nodes.push_back(node("Flatten", {"y"}, {"z"}, "flat"));
  g.outputs = {value_info("z", {-1, 48})};
  expect_error(write("flat_out.onnx", g.bytes()), {"flattened channels-first"});

  g = image_graph({}, 6);  // reshape of an image to another image
  g.inits.push_back(int_tensor("shape", {4}, {0, 4, 3, 4}));
  g.nodes.push_back(node("Reshape", {"y", "shape"}, {"z"}, "reshape"));
  g.outputs = {value_info("z", {-1, 4, 3, 4})};
  expect_error(write("reshape.onnx", g.bytes()), {"node 1 'reshape' (Reshape)", "channels-last"});

  // Features reshaped to an (N, C, H, W) image: fine with one channel, or when a Transpose from a
  // channels-last (N, H, W, C) follows (save_onnx's graphs); not with C > 1 channels first.
  for (const std::string form : {"c1", "nhwc", "c2"}) {
    g = GraphSpec();
    g.inputs = {value_info("x", {-1, 8})};
    g.outputs = {value_info("y", {-1, 3, -1, -1})};
    const std::vector<int64_t> shape = form == "c1" ? std::vector<int64_t>{0, 1, 2, 4} : std::vector<int64_t>{0, 2, 2, 2};
    const int64_t channels = form == "c1" ? 1 : 2;
    g.inits = {int_tensor("shape", {4}, shape),
               tensor("K", {3, channels, 1, 1}, iota(static_cast<size_t>(3 * channels), 0.1f))};
    g.nodes = {node("Reshape", {"x", "shape"}, {"img"}, "to_image")};
    if (form == "nhwc") {
      g.nodes.push_back(node("Transpose", {"img"}, {"t"}, "to_nchw", {attr_is("perm", {0, 3, 1, 2})}));
      g.nodes.push_back(node("Conv", {"t", "K"}, {"y"}, "conv"));
    } else {
      g.nodes.push_back(node("Conv", {"img", "K"}, {"y"}, "conv"));
    }
    if (form == "c2")
      expect_error(write("c2.onnx", g.bytes()), {"node 1 'conv' (Conv)", "(N, 2, 2, 2) was reshaped to an image with more than one channel first"});
    else
      EXPECT_NO_THROW(load_onnx(write(form + ".onnx", g.bytes()))) << form;
  }

  g = dense_graph();  // a Conv on features
  g.inits.push_back(tensor("K", {3, 4, 1, 1}, iota(12, 0.1f)));
  g.nodes[1] = node("Conv", {"h", "K"}, {"y"}, "conv");
  expect_error(write("conv_on_features.onnx", g.bytes()), {"(Conv)", "needs an (N, C, H, W) image; its input is (N, 3)"});
}

// --- corrupt files ---------------------------------------------------------------------------------

TEST(OnnxImport, EveryTruncationThrows) {
  for (const char* name : {"onnx_mlp.onnx", "onnx_cnn.onnx", "onnx_gap.onnx", "onnx_resnet.onnx", "onnx_two_input.onnx"}) {
    const std::string bytes = read_bytes(fixture_path(name));
    ASSERT_GT(bytes.size(), 100u);
    for (size_t n = 0; n < bytes.size(); ++n) {
      try {
        load_onnx_from_bytes(std::string_view(bytes).substr(0, n), "cut.onnx");
        ADD_FAILURE() << name << " cut to " << n << " bytes loaded";
      } catch (const Error& e) {
        ASSERT_EQ(std::string(e.what()).rfind("cut.onnx: ", 0), 0u) << e.what();
      }
    }
  }
}

TEST_F(OnnxFiles, CorruptBytesSayWhere) {
  std::string bytes = read_bytes(fixture_path("onnx_mlp.onnx"));
  expect_error(write("cut.onnx", bytes.substr(0, 200)), {"cut.onnx", "truncated or corrupt", "byte 20", "length"});
  // A float attribute written as a varint, deep inside: the message says where.
  GraphSpec bad = dense_graph();
  bad.nodes[1] = node("Relu", {"h"}, {"y"}, "r", {Pb().str(1, "alpha").i(2, 3)});
  expect_error(write("attr.onnx", bad.bytes()),
               {"attr.onnx", "(in graph.node[1].attribute[0])", "AttributeProto.f (field 2) has wire type varint, expected 32-bit"});
  expect_error(write("empty.onnx", ""), {"empty.onnx", "empty"});
  expect_error(write("text.onnx", "{\"hello\": 1}"), {"text.onnx", "not a valid ONNX model"});
  // A field with wire type 7 (there is none).
  expect_error(write("wire.onnx", Pb().i(1, 8).tag(3, 7).s), {"wire.onnx", "byte 2", "wire type 7"});
  // A length that runs past the end.
  expect_error(write("len.onnx", Pb().i(1, 8).tag(7, 2).varint(1000).s + "abc"),
               {"len.onnx", "byte 3", "length 1000", "3 bytes remain"});
  // A 12-byte varint.
  expect_error(write("varint.onnx", std::string("\x08") + std::string(11, '\xff') + "\x01"), {"varint"});
  // A raw_data that does not match the dims.
  GraphSpec g = dense_graph();
  g.inits[0] = tensor("W", {3, 5}, iota(12, 0.1f));
  expect_error(write("dims.onnx", g.bytes()), {"dims.onnx", "tensor 'W'", "15 values", "raw_data holds 12"});
  // Weights in an external file.
  g = dense_graph();
  g.inits[0] = Pb().i(1, 3).i(1, 4).i(2, 1).str(8, "W").msg(13, Pb().str(1, "location").str(2, "w.bin")).i(14, 1);
  expect_error(write("external.onnx", g.bytes()), {"(Gemm)", "'W' cannot be read", "external data"});
  // No opset, no graph.
  expect_error(write("noopset.onnx", Pb().i(1, 8).msg(7, Pb().str(2, "g")).s), {"opset_import"});
  expect_error(write("nograph.onnx", Pb().i(1, 8).s), {"graph is missing"});
}

TEST(OnnxImport, GarbageAndMutationsNeverCrash) {
  Generator gen(42);
  for (int t = 0; t < 500; ++t) {  // random bytes: never a model
    std::string junk(static_cast<size_t>(1 + gen.below(400)), '\0');
    for (char& ch : junk) ch = static_cast<char>(gen.below(256));
    if (t % 2) junk[0] = '\x08';  // looks like ir_version
    EXPECT_THROW(load_onnx_from_bytes(junk, "junk.onnx"), Error) << "random file " << t;
  }
  int loaded = 0, refused = 0;
  for (const char* name : {"onnx_mlp.onnx", "onnx_cnn.onnx", "onnx_gap.onnx", "onnx_resnet.onnx", "onnx_two_input.onnx"}) {
    const std::string bytes = read_bytes(fixture_path(name));
    for (int t = 0; t < 400; ++t) {  // change 1-4 bytes anywhere: a model, or lamina::Error
      std::string m = bytes;
      const uint64_t flips = 1 + gen.below(4);
      for (uint64_t f = 0; f < flips; ++f) m[gen.below(m.size())] = static_cast<char>(gen.below(256));
      try {
        load_onnx_from_bytes(m, "mutant.onnx");
        ++loaded;
      } catch (const Error&) {
        ++refused;
      } catch (const std::exception& e) {
        ADD_FAILURE() << name << " mutation " << t << ": " << e.what() << " is not a lamina::Error";
      }
    }
  }
  EXPECT_GT(refused, 0);
  std::cout << "[ onnx ] mutated files: " << loaded << " loaded, " << refused << " refused\n";
}

}  // namespace
}  // namespace lamina
