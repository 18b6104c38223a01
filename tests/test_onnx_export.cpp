// ONNX export: the protobuf wire encoding byte by byte, save_onnx's errors and file basics.
// Whether the files are valid ONNX that computes what Lamina computes is judged by onnx's
// checker and OpenCV (tests/onnx/check_onnx.py, ctest onnx.checker / onnx.opencv).
#include <gtest/gtest.h>

#include <filesystem>
#include <unistd.h>

#include "lamina/io.hpp"
#include "lamina/onnx.hpp"
#include "onnx/protobuf_writer.hpp"

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

}  // namespace
}  // namespace lamina
