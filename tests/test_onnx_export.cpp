// ONNX export: the protobuf wire encoding byte by byte, save_onnx's errors and file basics, and
// the structure of exported graphs (Functional models) read back with Lamina's own ONNX parser.
// Whether the files are valid ONNX that computes what Lamina computes is judged by onnx's
// checker, OpenCV and ONNX Runtime (tests/onnx/check_onnx.py, check_ort.js; ctest -R onnx).
#include <gtest/gtest.h>

#include <filesystem>
#include <map>
#include <set>
#include <unistd.h>

#include "lamina/io.hpp"
#include "lamina/onnx.hpp"
#include "onnx/onnx_proto.hpp"
#include "onnx/protobuf_writer.hpp"
#include "test_util.hpp"

namespace lamina {
namespace {

namespace fs = std::filesystem;
using detail::ProtoWriter;

std::string hex(const std::string& bytes) {
  static const char* digits = "0123456789abcdef";
  std::string out;
  for (unsigned char c : bytes) {
    if (!out.empty()) out += ' ';
    out += digits[c >> 4];
    out += digits[c & 15];
  }
  return out;
}

fs::path temp_path(const std::string& name) {
  return fs::temp_directory_path() / ("lamina_test_onnx_" + std::to_string(::getpid()) + "_" + name);
}

TEST(ProtoWriter, VarintsAsTheProtobufDocsShowThem) {
  ProtoWriter w;
  w.varint(1);
  w.varint(150);  // the encoding guide's example: 96 01
  w.varint(300);
  EXPECT_EQ(hex(w.str()), "01 96 01 ac 02");
}

TEST(ProtoWriter, FieldsCarryTheirTagAndWireType) {
  EXPECT_EQ(hex(ProtoWriter().int64(1, 8).str()), "08 08");                      // field 1, varint
  EXPECT_EQ(hex(ProtoWriter().float32(2, 1.f).str()), "15 00 00 80 3f");         // field 2, fixed32
  EXPECT_EQ(hex(ProtoWriter().string(8, "ab").str()), "42 02 61 62");            // field 8, bytes
  EXPECT_EQ(hex(ProtoWriter().int64(20, 7).str()), "a0 01 07");                  // a two-byte tag
  EXPECT_EQ(hex(ProtoWriter().int64(1, -1).str()), "08 ff ff ff ff ff ff ff ff ff 01");  // ten bytes
  ProtoWriter inner;
  inner.int64(1, 3);
  EXPECT_EQ(hex(ProtoWriter().message(7, inner).str()), "3a 02 08 03");  // length-prefixed
}

TEST(ProtoWriter, FloatsAreLittleEndian) {
  const float v[2] = {1.f, -2.f};
  EXPECT_EQ(hex(detail::little_endian_bytes(v, 2)), "00 00 80 3f 00 00 00 c0");
}

TEST(SaveOnnx, WritesAModelProtoAtomically) {
  manual_seed(1);
  Sequential model({layers::Dense({.units = 3, .activation = "relu", .input_shape = Shape{4}}), layers::Dense(2)});
  model.build(Shape{4});
  const fs::path path = temp_path("mlp.onnx");
  save_onnx(model, path.string(), {{"note", "hello"}});
  const std::string bytes = io::read_file(path.string());
  EXPECT_EQ(hex(bytes.substr(0, 2)), "08 08");  // ir_version 8 comes first
  for (const char* s : {"lamina", "dense/kernel", "dense_1/bias", "Gemm", "Relu", "input", "output", "hello"})
    EXPECT_NE(bytes.find(s), std::string::npos) << s;
  save_onnx(model, path.string(), {{"note", "hello"}});
  EXPECT_EQ(io::read_file(path.string()), bytes) << "the same model must give the same bytes";
  int leftovers = 0;  // no temporary file remains beside it
  for (const auto& e : fs::directory_iterator(path.parent_path()))
    leftovers += e.path().filename().string().starts_with(path.filename().string() + ".");
  EXPECT_EQ(leftovers, 0);
  fs::remove(path);
}

TEST(SaveOnnx, AnUnbuiltModelIsAValueError) {
  Sequential model({layers::Dense(3), layers::Dense(2)});
  try {
    save_onnx(model, temp_path("unbuilt.onnx").string());
    FAIL() << "expected ValueError";
  } catch (const ValueError& e) {
    EXPECT_NE(std::string(e.what()).find("not built"), std::string::npos) << e.what();
  }
}

// A layer ONNX export does not know.
class Doubler : public Layer {
 public:
  std::string class_name() const override { return "Doubler"; }
  Tensor call(const Tensor& x, bool) override { return x * 2.f; }
  Shape output_shape(const Shape& input_shape) const override { return input_shape; }
};

TEST(SaveOnnx, AnUnknownLayerIsNamedInTheError) {
  Sequential model({layers::Dense({.units = 3, .input_shape = Shape{4}})});
  auto doubler = std::make_shared<Doubler>();
  doubler->set_name("twice");
  model.add(AnyLayer(std::shared_ptr<Layer>(doubler)));
  model.build(Shape{4});
  const fs::path path = temp_path("unknown.onnx");
  try {
    save_onnx(model, path.string());
    FAIL() << "expected ValueError";
  } catch (const ValueError& e) {
    const std::string msg = e.what();
    EXPECT_NE(msg.find("'twice' (Doubler)"), std::string::npos) << msg;
    EXPECT_NE(msg.find("no ONNX export for the layer class 'Doubler' (override Layer::export_onnx"), std::string::npos) << msg;
  }
  EXPECT_FALSE(fs::exists(path)) << "nothing is written when export fails";
}

// --- graphs ----------------------------------------------------------------------------------

layers::Conv2D same_conv(int64_t filters, int64_t kernel, int64_t strides = 1) {
  return layers::Conv2D({.filters = filters, .kernel_size = kernel, .strides = strides, .padding = Padding::same,
                         .bias_initializer = Initializer::random_uniform(-0.5f, 0.5f)});
}

// Conv + BN + relu stem, an identity residual block, a block with a strided 1x1 projection
// shortcut, global average pooling, Dense.
Model residual_cnn() {
  KerasTensor x = Input({8, 8, 3}, "image");
  KerasTensor h = layers::Activation("relu")(layers::BatchNormalization()(same_conv(4, 3)(x)));
  KerasTensor r = layers::BatchNormalization()(same_conv(4, 3)(layers::Activation("relu")(same_conv(4, 3)(h))));
  h = layers::Activation("relu")(layers::Add()({h, r}));
  KerasTensor p = same_conv(8, 3)(layers::Activation("relu")(same_conv(8, 3, 2)(h)));
  h = layers::Activation("relu")(layers::Add()({same_conv(8, 1, 2)(h), p}));
  return Model(x, layers::Dense(3, "softmax")(layers::GlobalAveragePooling2D()(h)), "resnet");
}

onnx::detail::Model read_back(const fs::path& path) { return onnx::detail::parse_model(io::read_file(path.string())); }

std::map<std::string, int> op_counts(const onnx::detail::Graph& g) {
  std::map<std::string, int> counts;
  for (const auto& n : g.nodes) ++counts[n.op_type];
  return counts;
}

// Every node reads graph inputs, initializers or earlier nodes' outputs, and each value has one producer.
void expect_topological(const onnx::detail::Graph& g) {
  std::set<std::string> known;
  for (const auto& i : g.inputs) known.insert(i.name);
  for (const auto& t : g.initializers) EXPECT_TRUE(known.insert(t.name).second) << "initializer " << t.name << " twice";
  for (const auto& n : g.nodes) {
    for (const std::string& i : n.inputs) EXPECT_TRUE(known.count(i)) << n.name << " reads '" << i << "' before it exists";
    for (const std::string& o : n.outputs) EXPECT_TRUE(known.insert(o).second) << n.name << " writes '" << o << "' again";
  }
  for (const auto& o : g.outputs) EXPECT_TRUE(known.count(o.name)) << "output '" << o.name << "' is never written";
}

TEST(SaveOnnxGraph, AResidualCnnReadsBackWithOneTransposeAndTheAddsInPlace) {
  manual_seed(5);
  Model model = residual_cnn();
  const fs::path path = temp_path("resnet.onnx");
  save_onnx(model, path.string());
  const onnx::detail::Model m = read_back(path);
  const onnx::detail::Graph& g = m.graph;
  EXPECT_EQ(m.ir_version, 8);
  ASSERT_EQ(g.inputs.size(), 1u);
  EXPECT_EQ(g.inputs[0].name, "input");
  EXPECT_EQ(g.inputs[0].dims, (std::vector<int64_t>{-1, 8, 8, 3}));
  ASSERT_EQ(g.outputs.size(), 1u);
  EXPECT_EQ(g.outputs[0].name, "output");
  expect_topological(g);
  std::map<std::string, int> ops = op_counts(g);
  EXPECT_EQ(ops["Conv"], 6);
  EXPECT_EQ(ops["Sum"], 2);  // the Adds, on channels-first tensors
  EXPECT_EQ(ops["BatchNormalization"], 2);
  // One layout change, at the input: the Adds meet two channels-first values, and
  // GlobalAveragePool + Flatten leave (N, C) for the Dense.
  EXPECT_EQ(ops["Transpose"], 1);
  ASSERT_FALSE(g.nodes.empty());
  EXPECT_EQ(g.nodes[0].op_type, "Transpose");
  EXPECT_EQ(g.nodes[0].inputs, (std::vector<std::string>{"input"}));
  fs::remove(path);
}

// Lamina's importer reads chains; once it reads branches, the residual model must come back
// predicting what it predicted. Skipped (with the importer's reason) while it does not.
TEST(SaveOnnxGraph, AResidualCnnRoundTripsThroughLoadOnnxWhenItReadsBranches) {
  manual_seed(6);
  Model model = residual_cnn();
  const fs::path path = temp_path("resnet_roundtrip.onnx");
  save_onnx(model, path.string());
  Generator gen(7);
  const Tensor x = Tensor::randn({3, 8, 8, 3}, gen);
  const Tensor want = model.predict(x);
  std::string refusal;
  try {
    auto back = load_onnx(path.string());
    EXPECT_TRUE(testing::all_close(back.predict(x), want, 1e-4, 1e-5));
  } catch (const Error& e) {
    refusal = e.what();
  }
  fs::remove(path);
  if (!refusal.empty()) GTEST_SKIP() << "load_onnx does not read this graph yet: " << refusal;
}

TEST(SaveOnnxGraph, SharedLayersWriteTheirWeightsOnceAndConvInputsShareOneTranspose) {
  manual_seed(8);
  auto conv = std::make_shared<layers::Conv2D>(
      layers::Conv2D::Options{.filters = 3, .kernel_size = 3, .padding = Padding::same, .name = "shared_conv"});
  auto dense = std::make_shared<layers::Dense>(layers::Dense::Options{.units = 3, .name = "shared_dense"});
  KerasTensor x = Input({6, 6, 3}, "image");
  KerasTensor a = (*conv)(x), b = (*conv)(layers::Activation("relu")(a));
  KerasTensor c = same_conv(3, 1)(x);  // a second reader of the input: the same Transpose
  KerasTensor g = layers::GlobalAveragePooling2D()(layers::Add()({a, b, c}));
  Model model(x, (*dense)((*dense)(g)), "shared");
  const fs::path path = temp_path("shared.onnx");
  save_onnx(model, path.string());
  const onnx::detail::Graph graph = read_back(path).graph;
  expect_topological(graph);
  std::set<std::string> names;
  for (const auto& t : graph.initializers) names.insert(t.name);
  EXPECT_EQ(graph.initializers.size(), 6u);
  EXPECT_EQ(names, (std::set<std::string>{"shared_conv/kernel", "shared_conv/bias", "conv2d/kernel", "conv2d/bias",
                                          "shared_dense/kernel", "shared_dense/bias"}));
  std::map<std::string, int> ops = op_counts(graph);
  EXPECT_EQ(ops["Conv"], 3);
  EXPECT_EQ(ops["Gemm"], 2);
  EXPECT_EQ(ops["Transpose"], 1);
  fs::remove(path);
}

TEST(SaveOnnxGraph, SeveralInputsAndOutputsTakeTheirLayersNames) {
  manual_seed(9);
  KerasTensor a = Input({4}, "numbers"), b = Input({5, 5, 1}, "picture");
  KerasTensor img = layers::Conv2D({.filters = 2, .kernel_size = 3, .padding = Padding::same, .name = "mask"})(b);
  KerasTensor flat = layers::GlobalAveragePooling2D()(img);
  KerasTensor cls = layers::Dense({.units = 3, .name = "cls"})(layers::Concatenate()({layers::Dense(2)(a), flat}));
  Model model({a, b}, {cls, img}, "two_by_two");
  const fs::path path = temp_path("two_by_two.onnx");
  save_onnx(model, path.string());
  const onnx::detail::Graph g = read_back(path).graph;
  expect_topological(g);
  ASSERT_EQ(g.inputs.size(), 2u);
  EXPECT_EQ(g.inputs[0].name, "numbers");
  EXPECT_EQ(g.inputs[1].name, "picture");
  ASSERT_EQ(g.outputs.size(), 2u);
  EXPECT_EQ(g.outputs[0].name, "cls");
  EXPECT_EQ(g.outputs[0].dims, (std::vector<int64_t>{-1, 3}));
  EXPECT_EQ(g.outputs[1].name, "mask");
  EXPECT_EQ(g.outputs[1].dims, (std::vector<int64_t>{-1, 5, 5, 2}));  // channels-last, as Lamina's
  // 'mask' is read by the pooling too, and written channels-last for the output only.
  EXPECT_EQ(op_counts(g)["Transpose"], 2);
  fs::remove(path);
}

}  // namespace
}  // namespace lamina
