// The parts of an ONNX model (onnx.proto, https://github.com/onnx/onnx/blob/main/onnx/onnx.proto)
// that the importer reads, as plain structs, and the parser that fills them from the protobuf
// bytes. Tensors are decoded here (raw_data or typed fields, checked against their dims); what
// the fields mean for a Lamina model is import.cpp's business. Internal to src/onnx.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace lamina::onnx::detail {

// TensorProto.DataType values that matter here.
enum DataType : int32_t {
  kUndefined = 0, kFloat = 1, kUint8 = 2, kInt8 = 3, kUint16 = 4, kInt16 = 5, kInt32 = 6, kInt64 = 7,
  kString = 8, kBool = 9, kFloat16 = 10, kDouble = 11, kUint32 = 12, kUint64 = 13, kBfloat16 = 16,
};
std::string data_type_name(int32_t t);

// A decoded TensorProto: an initializer, a Constant node's value or a tensor attribute. Float
// types (float, double, float16, bfloat16) land in `floats`, integer and bool types in `ints`.
struct TensorData {
  std::string name;
  std::vector<int64_t> dims;
  int32_t data_type = kUndefined;
  std::vector<float> floats;
  std::vector<int64_t> ints;
  std::string unsupported;  // why the values could not be decoded (external data, strings); empty if they were
  size_t offset = 0;        // where the TensorProto starts in the file

  bool is_float() const { return !floats.empty() || data_type == kFloat || data_type == kDouble ||
                                 data_type == kFloat16 || data_type == kBfloat16; }
  int64_t numel() const;  // the product of dims (1 for a scalar)
};

// AttributeProto.AttributeType
enum AttrType : int32_t {
  kAttrUndefined = 0, kAttrFloat = 1, kAttrInt = 2, kAttrString = 3, kAttrTensor = 4, kAttrGraph = 5,
  kAttrFloats = 6, kAttrInts = 7, kAttrStrings = 8, kAttrTensors = 9, kAttrGraphs = 10,
};

struct Attribute {
  std::string name;
  int32_t type = kAttrUndefined;
  float f = 0;
  int64_t i = 0;
  std::string s;
  std::optional<TensorData> t;
  std::vector<float> floats;
  std::vector<int64_t> ints;
  std::vector<std::string> strings;
};

struct Node {
  std::vector<std::string> inputs, outputs;
  std::string name, op_type, domain;
  std::vector<Attribute> attributes;
  size_t offset = 0;
  const Attribute* attribute(const std::string& name) const;
};

// A ValueInfoProto of tensor type: its element type and dims (-1 where a dim is symbolic or
// unknown; dim_params keeps the name, "" otherwise).
struct ValueInfo {
  std::string name;
  bool is_tensor = false;
  int32_t elem_type = kUndefined;
  bool has_shape = false;
  std::vector<int64_t> dims;
  std::vector<std::string> dim_params;
};

struct Graph {
  std::string name;
  std::vector<Node> nodes;
  std::vector<TensorData> initializers;
  std::vector<ValueInfo> inputs, outputs;
  size_t sparse_initializers = 0;  // counted, not read
};

struct Model {
  int64_t ir_version = 0;
  std::string producer_name, producer_version;
  std::map<std::string, int64_t> opsets;  // domain ("" for the default ai.onnx) -> version
  bool has_graph = false;
  Graph graph;
  std::map<std::string, std::string> metadata;  // metadata_props
};

// Parses a ModelProto. Throws ProtoError (see protobuf_reader.hpp) saying which message and
// field was being read when the bytes went wrong.
Model parse_model(std::string_view bytes);

}  // namespace lamina::onnx::detail
