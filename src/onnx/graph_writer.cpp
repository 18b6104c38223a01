// GraphWriter (graph_writer.hpp): nodes, initializers, layout changes and activations of an
// ONNX graph being written.
#include "onnx/graph_writer.hpp"

#include <algorithm>

#include "kernels/window.hpp"
#include "lamina/error.hpp"

namespace lamina {

namespace onnx {

namespace {

namespace node_field {
constexpr uint32_t input = 1, output = 2, name = 3, op_type = 4, attribute = 5;
}
namespace attr_field {
constexpr uint32_t name = 1, f = 2, i = 3, s = 4, ints = 8, strings = 9, type = 20;
enum Type : int64_t { FLOAT = 1, INT = 2, STRING = 3, INTS = 7, STRINGS = 8 };
}
namespace tensor_field {
constexpr uint32_t dims = 1, data_type = 2, name = 8, raw_data = 9;
enum DataType : int64_t { FLOAT = 1, INT64 = 7 };
}
namespace value_info_field {
constexpr uint32_t name = 1, type = 2;
}
namespace type_field {  // TypeProto.tensor_type, then TypeProto.Tensor's elem_type and shape
constexpr uint32_t tensor_type = 1, elem_type = 1, shape = 2;
}
namespace shape_field {  // TensorShapeProto.dim, then Dimension's dim_value and dim_param
constexpr uint32_t dim = 1, dim_value = 1, dim_param = 2;
}

}  // namespace

ProtoWriter value_info(const std::string& name, const Shape& sample) {
  ProtoWriter shape;
  ProtoWriter batch;
  batch.string(shape_field::dim_param, "N");
  shape.message(shape_field::dim, batch);
  for (int64_t d : sample) {
    ProtoWriter dim;
    dim.int64(shape_field::dim_value, d);
    shape.message(shape_field::dim, dim);
  }
  ProtoWriter tensor;
  tensor.int64(type_field::elem_type, tensor_field::FLOAT).message(type_field::shape, shape);
  ProtoWriter type;
  type.message(type_field::tensor_type, tensor);
  ProtoWriter v;
  v.string(value_info_field::name, name).message(value_info_field::type, type);
  return v;
}

GraphWriter::GraphWriter(const Shape& input_shape) : GraphWriter(std::vector<Value>{{"input", input_shape, false}}) {}

GraphWriter::GraphWriter(const std::vector<Value>& inputs) : value_(inputs.at(0)), inputs_(inputs) {
  for (const Value& v : inputs) {
    names_.insert(v.name);
    graph_inputs_.insert(v.name);
  }
}

void GraphWriter::set_inputs(std::vector<Value> inputs) {
  value_ = inputs.at(0);
  inputs_ = std::move(inputs);
  more_outputs_.clear();
}

std::vector<std::string> GraphWriter::same_layout_inputs(const std::string& layer) {
  const bool first = std::any_of(inputs_.begin(), inputs_.end(), [](const Value& v) { return v.channels_first; });
  std::vector<std::string> names;
  for (size_t i = 0; i < inputs_.size(); ++i) {
    value_ = inputs_[i];
    if (first) to_channels_first(layer + "/" + std::to_string(i));
    names.push_back(value_.name);
  }
  value_ = {names.at(0), inputs_.at(0).shape, first};
  return names;
}

int64_t GraphWriter::onnx_axis(int64_t sample_axis) const {
  if (value_.channels_first && value_.shape.rank() == 3) return sample_axis == 2 ? 1 : sample_axis + 2;
  return sample_axis + 1;
}

ProtoWriter GraphWriter::attr_int(const std::string& name, int64_t v) {
  ProtoWriter a;
  a.string(attr_field::name, name).int64(attr_field::i, v).int64(attr_field::type, attr_field::INT);
  return a;
}

ProtoWriter GraphWriter::attr_float(const std::string& name, float v) {
  ProtoWriter a;
  a.string(attr_field::name, name).float32(attr_field::f, v).int64(attr_field::type, attr_field::FLOAT);
  return a;
}

ProtoWriter GraphWriter::attr_ints(const std::string& name, const std::vector<int64_t>& v) {
  ProtoWriter a;
  a.string(attr_field::name, name);
  for (int64_t x : v) a.int64(attr_field::ints, x);  // proto2 repeated: one field per value
  a.int64(attr_field::type, attr_field::INTS);
  return a;
}

ProtoWriter GraphWriter::attr_string(const std::string& name, const std::string& v) {
  ProtoWriter a;
  a.string(attr_field::name, name).bytes(attr_field::s, v).int64(attr_field::type, attr_field::STRING);
  return a;
}

ProtoWriter GraphWriter::attr_strings(const std::string& name, const std::vector<std::string>& v) {
  ProtoWriter a;
  a.string(attr_field::name, name);
  for (const std::string& x : v) a.bytes(attr_field::strings, x);
  a.int64(attr_field::type, attr_field::STRINGS);
  return a;
}

std::vector<int64_t> GraphWriter::window_pads(const Shape& in, Size2 window, Size2 strides, Padding padding) {
  const bool same = padding == Padding::same;
  const auto h = kernels::window_axis(in[0], window.h, strides.h, same);
  const auto w = kernels::window_axis(in[1], window.w, strides.w, same);
  return {h.pad_lo, w.pad_lo, h.pad_hi, w.pad_hi};
}

void GraphWriter::unsupported(const Layer& layer, const std::string& what) {
  throw ValueError("save_onnx: layer '" + layer.name() + "' (" + layer.class_name() + "): " + what);
}

const Tensor& GraphWriter::weight(const Layer& layer, const std::string& name) {
  if (const Tensor* w = layer.find_weight(name)) return *w;
  unsupported(layer, "has no weight '" + name + "'");
}

std::string GraphWriter::unique(const std::string& name) {
  std::string n = name;
  for (int i = 1; names_.count(n); ++i) n = name + "_" + std::to_string(i);
  names_.insert(n);
  return n;
}

std::string GraphWriter::node(const std::string& op_type, const std::string& layer, std::vector<std::string> inputs,
                              std::vector<ProtoWriter> attributes) {
  const std::string name = unique(layer + "/" + op_type);
  names_.insert(name + ":0");
  nodes_.push_back({op_type, name, std::move(inputs), {name + ":0"}, std::move(attributes)});
  return name + ":0";
}

std::vector<std::string> GraphWriter::node(const std::string& op_type, const std::string& layer,
                                           std::vector<std::string> inputs, size_t outputs,
                                           std::vector<ProtoWriter> attributes) {
  const std::string name = unique(layer + "/" + op_type);
  std::vector<std::string> names;
  for (size_t o = 0; o < outputs; ++o) {
    names.push_back(name + ":" + std::to_string(o));
    names_.insert(names.back());
  }
  nodes_.push_back({op_type, name, std::move(inputs), names, std::move(attributes)});
  return names;
}

std::string GraphWriter::add_initializer(const std::string& name, std::vector<int64_t> dims, int64_t data_type,
                                         std::string raw) {
  for (const Init& t : initializers_)
    if (t.asked == name && t.data_type == data_type && t.dims == dims && t.raw == raw) return t.name;
  const std::string n = unique(name);
  initializers_.push_back({name, n, std::move(dims), data_type, std::move(raw)});
  return n;
}

std::string GraphWriter::initializer(const std::string& name, const std::vector<int64_t>& dims, const float* data) {
  int64_t count = 1;
  for (int64_t d : dims) count *= d;
  return add_initializer(name, dims, tensor_field::FLOAT, detail::little_endian_bytes(data, static_cast<size_t>(count)));
}

std::string GraphWriter::int64_initializer(const std::string& name, const std::vector<int64_t>& values) {
  std::string raw;
  for (int64_t v : values)
    for (int b = 0; b < 8; ++b) raw.push_back(static_cast<char>((static_cast<uint64_t>(v) >> (8 * b)) & 0xff));
  return add_initializer(name, {static_cast<int64_t>(values.size())}, tensor_field::INT64, std::move(raw));
}

std::string GraphWriter::transpose(const std::string& layer, const char* suffix, const std::vector<int64_t>& perm) {
  auto [it, added] = transposed_.try_emplace({value_.name, perm});
  if (added) it->second = node("Transpose", layer + suffix, {value_.name}, {attr_ints("perm", perm)});
  return it->second;
}

void GraphWriter::to_channels_first(const std::string& layer) {
  if (value_.channels_first) return;
  value_.name = transpose(layer, "/to_nchw", {0, 3, 1, 2});
  value_.channels_first = true;
}

void GraphWriter::to_channels_last(const std::string& layer) {
  if (!value_.channels_first) return;
  value_.name = transpose(layer, "/to_nhwc", {0, 2, 3, 1});
  value_.channels_first = false;
}

void GraphWriter::activation(const Activation& a, const std::string& layer) {
  // Softmax over Lamina's last axis, the channels: axis 1 while the graph is channels-first.
  const int64_t axis = value_.channels_first ? 1 : -1;
  switch (a.kind()) {
    case Activation::linear: return;
    case Activation::relu: value_.name = node("Relu", layer, {value_.name}); return;
    case Activation::sigmoid: value_.name = node("Sigmoid", layer, {value_.name}); return;
    case Activation::tanh: value_.name = node("Tanh", layer, {value_.name}); return;
    case Activation::exponential: value_.name = node("Exp", layer, {value_.name}); return;
    case Activation::hard_sigmoid:  // Keras 3's relu6(x + 3) / 6
      value_.name = node("HardSigmoid", layer, {value_.name}, {attr_float("alpha", 1.f / 6.f), attr_float("beta", 0.5f)});
      return;
    case Activation::leaky_relu:  // lamina::leaky_relu's slope, Keras' default (ONNX's is 0.01)
      value_.name = node("LeakyRelu", layer, {value_.name}, {attr_float("alpha", 0.2f)});
      return;
    case Activation::elu: value_.name = node("Elu", layer, {value_.name}, {attr_float("alpha", 1.f)}); return;
    case Activation::softmax: value_.name = node("Softmax", layer, {value_.name}, {attr_int("axis", axis)}); return;
    case Activation::log_softmax:
      value_.name = node("LogSoftmax", layer, {value_.name}, {attr_int("axis", axis)});
      return;
  }
  throw ValueError("save_onnx: layer '" + layer + "': activation '" + a.name() + "' has no ONNX export");
}

ProtoWriter GraphWriter::finish(const std::string& graph_name) { return finish(graph_name, {value_}, {"output"}); }

ProtoWriter GraphWriter::finish(const std::string& graph_name, std::vector<Value> outputs,
                                const std::vector<std::string>& names) {
  std::map<std::string, std::string> renamed;  // a value's name -> the output name it took
  for (size_t o = 0; o < outputs.size(); ++o) {
    value_ = outputs[o];
    to_channels_last(names[o]);
    std::string from = value_.name;
    // An output that is a graph input, or a value another output already took: a copy of it.
    if (graph_inputs_.count(from) || renamed.count(from)) {
      const std::string source = renamed.count(from) ? renamed.at(from) : from;
      from = node("Identity", names[o], {source});
    }
    renamed[from] = names[o];
    // Renamed everywhere: another call may read the same value inside the graph.
    for (Node& n : nodes_) {
      for (std::string& i : n.inputs)
        if (i == from) i = names[o];
      for (std::string& out : n.outputs)
        if (out == from) out = names[o];
    }
  }
  ProtoWriter g;
  for (const Node& n : nodes_) {
    ProtoWriter w;
    for (const std::string& i : n.inputs) w.string(node_field::input, i);
    for (const std::string& o : n.outputs) w.string(node_field::output, o);
    w.string(node_field::name, n.name).string(node_field::op_type, n.op_type);
    for (const ProtoWriter& a : n.attributes) w.message(node_field::attribute, a);
    g.message(graph_field::node, w);
  }
  g.string(graph_field::name, graph_name);
  for (const Init& i : initializers_) {
    ProtoWriter t;
    for (int64_t d : i.dims) t.int64(tensor_field::dims, d);
    t.int64(tensor_field::data_type, i.data_type).string(tensor_field::name, i.name);
    t.bytes(tensor_field::raw_data, i.raw);
    g.message(graph_field::initializer, t);
  }
  g.string(graph_field::doc_string, "Exported by Lamina; inputs and outputs are channels-last, as Lamina's predict");
  return g;
}

}  // namespace onnx
}  // namespace lamina
