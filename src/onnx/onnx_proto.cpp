// Parses the ONNX messages of onnx_proto.hpp from protobuf bytes. Field numbers are onnx.proto's
// (ONNX 1.x; they never change). Unknown fields are skipped, as protobuf readers do; a known field
// with the wrong wire type, a truncated field or a tensor whose data does not match its dims is a
// ProtoError that says where it was ("graph.initializer[2]").
#include "onnx/onnx_proto.hpp"

#include <cstring>
#include <limits>

#include "onnx/protobuf_reader.hpp"

namespace lamina::onnx::detail {

namespace {

template <class Fn>
void in_context(const std::string& where, Fn&& fn) {
  try {
    fn();
  } catch (const ProtoError& e) {
    throw e.within(where);
  }
}

std::string indexed(const char* field, size_t i) { return std::string(field) + "[" + std::to_string(i) + "]"; }

// IEEE half / bfloat16 bits -> float.
float half_to_float(uint16_t h) {
  const uint32_t sign = static_cast<uint32_t>(h & 0x8000) << 16;
  const uint32_t exp = (h >> 10) & 0x1f, mant = h & 0x3ff;
  uint32_t bits;
  if (exp == 0) {
    if (mant == 0) {
      bits = sign;
    } else {  // subnormal: normalise
      uint32_t e = 127 - 15 + 1, m = mant;
      while ((m & 0x400) == 0) m <<= 1, --e;
      bits = sign | (e << 23) | ((m & 0x3ff) << 13);
    }
  } else if (exp == 31) {
    bits = sign | 0x7f800000u | (mant << 13);
  } else {
    bits = sign | ((exp + 127 - 15) << 23) | (mant << 13);
  }
  float f;
  std::memcpy(&f, &bits, sizeof f);
  return f;
}

float bits_to_float(uint32_t bits) {
  float f;
  std::memcpy(&f, &bits, sizeof f);
  return f;
}

double bits_to_double(uint64_t bits) {
  double d;
  std::memcpy(&d, &bits, sizeof d);
  return d;
}

// Bytes per element in raw_data; 0 for types not decoded here.
size_t element_size(int32_t t) {
  switch (t) {
    case kFloat: case kInt32: case kUint32: return 4;
    case kDouble: case kInt64: case kUint64: return 8;
    case kFloat16: case kBfloat16: case kInt16: case kUint16: return 2;
    case kInt8: case kUint8: case kBool: return 1;
    default: return 0;
  }
}

uint64_t load_le(const char* p, size_t n) {
  uint64_t v = 0;
  for (size_t i = 0; i < n; ++i) v |= static_cast<uint64_t>(static_cast<uint8_t>(p[i])) << (8 * i);
  return v;
}

// One element's raw bits -> a float (float types) or an integer (the others).
float float_from_bits(int32_t t, uint64_t v) {
  switch (t) {
    case kFloat: return bits_to_float(static_cast<uint32_t>(v));
    case kDouble: return static_cast<float>(bits_to_double(v));
    case kFloat16: return half_to_float(static_cast<uint16_t>(v));
    default: return bits_to_float(static_cast<uint32_t>(v) << 16);  // bfloat16: the top half of a float
  }
}

int64_t int_from_bits(int32_t t, uint64_t v) {
  switch (t) {
    case kInt8: return static_cast<int8_t>(v);
    case kInt16: return static_cast<int16_t>(v);
    case kInt32: return static_cast<int32_t>(v);
    case kBool: return v != 0;
    default: return static_cast<int64_t>(v);  // int64, uint8/16/32/64 (uint64 beyond int64 wraps)
  }
}

bool is_float_type(int32_t t) { return t == kFloat || t == kDouble || t == kFloat16 || t == kBfloat16; }

TensorData parse_tensor(ProtoReader r, size_t offset) {
  TensorData t;
  t.offset = offset;
  std::string_view raw;
  bool has_raw = false, external = false, segmented = false, strings = false;
  std::vector<uint64_t> float_bits, double_bits;
  std::vector<int64_t> int32_data, int64_data, uint64_data;
  for (ProtoField f; r.next(f);) {
    switch (f.number) {
      case 1: append_ints(f, t.dims, "TensorProto.dims"); break;
      case 2: t.data_type = static_cast<int32_t>(int_value(f, "TensorProto.data_type")); break;
      case 3: segmented = true; break;
      case 4: append_fixed(f, 4, float_bits, "TensorProto.float_data"); break;
      case 5: append_ints(f, int32_data, "TensorProto.int32_data"); break;
      case 6: strings = true; break;
      case 7: append_ints(f, int64_data, "TensorProto.int64_data"); break;
      case 8: t.name = string_value(f, "TensorProto.name"); break;
      case 9:
        expect_wire(f, WireType::len, "TensorProto.raw_data");
        raw = f.bytes, has_raw = true;
        break;
      case 10: append_fixed(f, 8, double_bits, "TensorProto.double_data"); break;
      case 11: append_ints(f, uint64_data, "TensorProto.uint64_data"); break;
      case 13: expect_wire(f, WireType::len, "TensorProto.external_data"), external = true; break;
      case 14: external = external || int_value(f, "TensorProto.data_location") == 1; break;
      default: break;
    }
  }
  const std::string label = "tensor '" + t.name + "'";
  int64_t n = 1;
  for (int64_t d : t.dims) {
    if (d < 0) throw ProtoError(offset, label + " has a negative dimension " + std::to_string(d));
    if (d > 0 && n > std::numeric_limits<int64_t>::max() / d)
      throw ProtoError(offset, label + ": the product of its dims overflows 64 bits");
    n *= d;
  }
  if (external) {
    t.unsupported = "its values are stored in an external data file (data_location EXTERNAL), which Lamina does not "
                    "read; export with the weights inside the .onnx file";
    return t;
  }
  if (segmented) {
    t.unsupported = "it is a segmented tensor (TensorProto.segment), which Lamina does not read";
    return t;
  }
  if (strings || t.data_type == kString) {
    t.unsupported = "it holds strings";
    return t;
  }
  const size_t width = element_size(t.data_type);
  if (width == 0) {
    t.unsupported = "its element type " + data_type_name(t.data_type) + " is not supported";
    return t;
  }
  auto check_count = [&](size_t count, const char* field) {
    if (static_cast<uint64_t>(count) != static_cast<uint64_t>(n))
      throw ProtoError(offset, label + " has dims (" + [&] {
        std::string s;
        for (int64_t d : t.dims) s += (s.empty() ? "" : ", ") + std::to_string(d);
        return s;
      }() + ") = " + std::to_string(n) + " values but its " + field + " holds " + std::to_string(count));
  };
  const bool as_float = is_float_type(t.data_type);
  if (has_raw) {
    if (raw.size() % width != 0)
      throw ProtoError(offset, label + ": raw_data is " + std::to_string(raw.size()) + " bytes, not a multiple of " +
                                   std::to_string(width) + " (" + data_type_name(t.data_type) + ")");
    check_count(raw.size() / width, "raw_data");
    const size_t count = raw.size() / width;
    if (as_float) t.floats.resize(count);
    else t.ints.resize(count);
    for (size_t i = 0; i < count; ++i) {
      const uint64_t v = load_le(raw.data() + i * width, width);
      if (as_float) t.floats[i] = float_from_bits(t.data_type, v);
      else t.ints[i] = int_from_bits(t.data_type, v);
    }
    return t;
  }
  switch (t.data_type) {
    case kFloat:
      check_count(float_bits.size(), "float_data");
      for (uint64_t b : float_bits) t.floats.push_back(bits_to_float(static_cast<uint32_t>(b)));
      break;
    case kDouble:
      check_count(double_bits.size(), "double_data");
      for (uint64_t b : double_bits) t.floats.push_back(static_cast<float>(bits_to_double(b)));
      break;
    case kFloat16: case kBfloat16:  // their bits travel in int32_data
      check_count(int32_data.size(), "int32_data");
      for (int64_t b : int32_data) t.floats.push_back(float_from_bits(t.data_type, static_cast<uint64_t>(b) & 0xffff));
      break;
    case kInt64:
      check_count(int64_data.size(), "int64_data");
      t.ints = std::move(int64_data);
      break;
    case kUint32: case kUint64:
      check_count(uint64_data.size(), "uint64_data");
      t.ints = std::move(uint64_data);
      break;
    default:  // int32, int16, int8, uint16, uint8, bool: int32_data
      check_count(int32_data.size(), "int32_data");
      for (int64_t v : int32_data) t.ints.push_back(int_from_bits(t.data_type, static_cast<uint64_t>(v)));
      break;
  }
  return t;
}

Attribute parse_attribute(ProtoReader r, size_t offset) {
  Attribute a;
  bool has_f = false, has_i = false, has_s = false, has_g = false, has_floats = false, has_ints = false;
  for (ProtoField f; r.next(f);) {
    switch (f.number) {
      case 1: a.name = string_value(f, "AttributeProto.name"); break;
      case 20: a.type = static_cast<int32_t>(int_value(f, "AttributeProto.type")); break;
      case 2: a.f = float_value(f, "AttributeProto.f"), has_f = true; break;
      case 3: a.i = int_value(f, "AttributeProto.i"), has_i = true; break;
      case 4: a.s = string_value(f, "AttributeProto.s"), has_s = true; break;
      case 5:
        expect_wire(f, WireType::len, "AttributeProto.t");
        in_context("t", [&] { a.t = parse_tensor(ProtoReader::sub(f), f.offset); });
        break;
      case 6: case 11: expect_wire(f, WireType::len, "AttributeProto.g"), has_g = true; break;  // subgraphs: not read
      case 7: {
        std::vector<uint64_t> bits;
        append_fixed(f, 4, bits, "AttributeProto.floats");
        for (uint64_t b : bits) a.floats.push_back(bits_to_float(static_cast<uint32_t>(b)));
        has_floats = true;
        break;
      }
      case 8: append_ints(f, a.ints, "AttributeProto.ints"), has_ints = true; break;
      case 9: a.strings.push_back(string_value(f, "AttributeProto.strings")); break;  // RNN activations
      default: break;
    }
  }
  (void)offset;
  if (a.type == kAttrUndefined) {  // IR version 1 files leave the type out
    a.type = has_f ? kAttrFloat : has_i ? kAttrInt : has_s ? kAttrString : a.t ? kAttrTensor : has_g ? kAttrGraph
           : has_floats ? kAttrFloats : has_ints ? kAttrInts : !a.strings.empty() ? kAttrStrings : kAttrUndefined;
  }
  return a;
}

Node parse_node(ProtoReader r, size_t offset) {
  Node n;
  n.offset = offset;
  for (ProtoField f; r.next(f);) {
    switch (f.number) {
      case 1: n.inputs.push_back(string_value(f, "NodeProto.input")); break;
      case 2: n.outputs.push_back(string_value(f, "NodeProto.output")); break;
      case 3: n.name = string_value(f, "NodeProto.name"); break;
      case 4: n.op_type = string_value(f, "NodeProto.op_type"); break;
      case 7: n.domain = string_value(f, "NodeProto.domain"); break;
      case 5:
        expect_wire(f, WireType::len, "NodeProto.attribute");
        in_context(indexed("attribute", n.attributes.size()),
                   [&] { n.attributes.push_back(parse_attribute(ProtoReader::sub(f), f.offset)); });
        break;
      default: break;
    }
  }
  return n;
}

void parse_shape(ProtoReader r, ValueInfo& v) {
  v.has_shape = true;
  for (ProtoField f; r.next(f);) {
    if (f.number != 1) continue;
    expect_wire(f, WireType::len, "TensorShapeProto.dim");
    int64_t value = -1;
    std::string param;
    ProtoReader d = ProtoReader::sub(f);
    for (ProtoField g; d.next(g);) {
      if (g.number == 1) value = int_value(g, "Dimension.dim_value");
      if (g.number == 2) param = string_value(g, "Dimension.dim_param"), value = -1;
    }
    v.dims.push_back(value);
    v.dim_params.push_back(param);
  }
}

ValueInfo parse_value_info(ProtoReader r) {
  ValueInfo v;
  for (ProtoField f; r.next(f);) {
    if (f.number == 1) v.name = string_value(f, "ValueInfoProto.name");
    if (f.number != 2) continue;
    expect_wire(f, WireType::len, "ValueInfoProto.type");
    ProtoReader type = ProtoReader::sub(f);
    for (ProtoField g; type.next(g);) {
      if (g.number != 1) continue;  // sequence, map, optional, sparse: not tensors
      expect_wire(g, WireType::len, "TypeProto.tensor_type");
      v.is_tensor = true;
      ProtoReader tensor = ProtoReader::sub(g);
      for (ProtoField h; tensor.next(h);) {
        if (h.number == 1) v.elem_type = static_cast<int32_t>(int_value(h, "TypeProto.Tensor.elem_type"));
        if (h.number == 2) {
          expect_wire(h, WireType::len, "TypeProto.Tensor.shape");
          v.dims.clear(), v.dim_params.clear();
          parse_shape(ProtoReader::sub(h), v);
        }
      }
    }
  }
  return v;
}

void parse_graph(ProtoReader r, Graph& g) {
  for (ProtoField f; r.next(f);) {
    switch (f.number) {
      case 1:
        expect_wire(f, WireType::len, "GraphProto.node");
        in_context(indexed("node", g.nodes.size()), [&] { g.nodes.push_back(parse_node(ProtoReader::sub(f), f.offset)); });
        break;
      case 2: g.name = string_value(f, "GraphProto.name"); break;
      case 5:
        expect_wire(f, WireType::len, "GraphProto.initializer");
        in_context(indexed("initializer", g.initializers.size()),
                   [&] { g.initializers.push_back(parse_tensor(ProtoReader::sub(f), f.offset)); });
        break;
      case 15: expect_wire(f, WireType::len, "GraphProto.sparse_initializer"), ++g.sparse_initializers; break;
      case 11:
        expect_wire(f, WireType::len, "GraphProto.input");
        in_context(indexed("input", g.inputs.size()), [&] { g.inputs.push_back(parse_value_info(ProtoReader::sub(f))); });
        break;
      case 12:
        expect_wire(f, WireType::len, "GraphProto.output");
        in_context(indexed("output", g.outputs.size()), [&] { g.outputs.push_back(parse_value_info(ProtoReader::sub(f))); });
        break;
      default: break;
    }
  }
}

}  // namespace

std::string data_type_name(int32_t t) {
  switch (t) {
    case kFloat: return "float32";
    case kUint8: return "uint8";
    case kInt8: return "int8";
    case kUint16: return "uint16";
    case kInt16: return "int16";
    case kInt32: return "int32";
    case kInt64: return "int64";
    case kString: return "string";
    case kBool: return "bool";
    case kFloat16: return "float16";
    case kDouble: return "float64";
    case kUint32: return "uint32";
    case kUint64: return "uint64";
    case kBfloat16: return "bfloat16";
    default: return "data type " + std::to_string(t);
  }
}

int64_t TensorData::numel() const {
  int64_t n = 1;
  for (int64_t d : dims) n *= d;  // checked for overflow when parsed
  return n;
}

const Attribute* Node::attribute(const std::string& n) const {
  for (const Attribute& a : attributes)
    if (a.name == n) return &a;
  return nullptr;
}

Model parse_model(std::string_view bytes) {
  Model m;
  ProtoReader r(bytes);
  for (ProtoField f; r.next(f);) {
    switch (f.number) {
      case 1: m.ir_version = int_value(f, "ModelProto.ir_version"); break;
      case 2: m.producer_name = string_value(f, "ModelProto.producer_name"); break;
      case 3: m.producer_version = string_value(f, "ModelProto.producer_version"); break;
      case 7:
        expect_wire(f, WireType::len, "ModelProto.graph");
        in_context("graph", [&] { parse_graph(ProtoReader::sub(f), m.graph); });  // repeated: merged, as protobuf
        m.has_graph = true;
        break;
      case 8: {
        expect_wire(f, WireType::len, "ModelProto.opset_import");
        std::string domain;
        int64_t version = 0;
        in_context("opset_import", [&] {
          ProtoReader o = ProtoReader::sub(f);
          for (ProtoField g; o.next(g);) {
            if (g.number == 1) domain = string_value(g, "OperatorSetIdProto.domain");
            if (g.number == 2) version = int_value(g, "OperatorSetIdProto.version");
          }
        });
        m.opsets[domain == "ai.onnx" ? "" : domain] = version;
        break;
      }
      case 14: {
        expect_wire(f, WireType::len, "ModelProto.metadata_props");
        std::string key, value;
        in_context("metadata_props", [&] {
          ProtoReader o = ProtoReader::sub(f);
          for (ProtoField g; o.next(g);) {
            if (g.number == 1) key = string_value(g, "StringStringEntryProto.key");
            if (g.number == 2) value = string_value(g, "StringStringEntryProto.value");
          }
        });
        m.metadata[key] = value;
        break;
      }
      default: break;
    }
  }
  return m;
}

}  // namespace lamina::onnx::detail
