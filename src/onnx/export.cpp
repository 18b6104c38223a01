// save_onnx: a Sequential model as an ONNX graph (IR 8, opset 13), written with the small
// protobuf writer beside this file; no libprotobuf. Field numbers are onnx.proto's
// (https://github.com/onnx/onnx/blob/main/onnx/onnx.proto). Export only; reading is import.cpp.
//
// Layout: Lamina is channels-last (N, H, W, C), ONNX's Conv / pooling / BatchNormalization are
// channels-first. The graph keeps Lamina's layout at its input and output and at every Dense,
// Flatten and Reshape (so flattened features come in Lamina's order and Dense kernels stay as
// they are); a Transpose goes to NCHW before the first layer that needs it and back only
// where channels-last is needed again, so a CNN pays one Transpose each way.
// N = batch, H, W = spatial, C = channels, F = filters.
#include "lamina/onnx.hpp"

#include <algorithm>
#include <numeric>
#include <set>
#include <vector>

#include "kernels/window.hpp"
#include "lamina/error.hpp"
#include "lamina/io.hpp"
#include "onnx/protobuf_writer.hpp"

namespace lamina {
namespace {

using detail::ProtoWriter;

constexpr int64_t kIrVersion = 8;
constexpr int64_t kOpsetVersion = 13;

// onnx.proto field numbers, by message.
namespace model_field {
constexpr uint32_t ir_version = 1, producer_name = 2, producer_version = 3, graph = 7, opset_import = 8,
                   metadata_props = 14;
}
namespace opset_field {
constexpr uint32_t domain = 1, version = 2;
}
namespace graph_field {
constexpr uint32_t node = 1, name = 2, initializer = 5, doc_string = 10, input = 11, output = 12;
}
namespace node_field {
constexpr uint32_t input = 1, output = 2, name = 3, op_type = 4, attribute = 5;
}
namespace attr_field {
constexpr uint32_t name = 1, f = 2, i = 3, ints = 8, type = 20;
enum Type : int64_t { FLOAT = 1, INT = 2, INTS = 7 };
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
namespace entry_field {  // StringStringEntryProto
constexpr uint32_t key = 1, value = 2;
}

ProtoWriter attr_int(const std::string& name, int64_t v) {
  ProtoWriter a;
  a.string(attr_field::name, name).int64(attr_field::i, v).int64(attr_field::type, attr_field::INT);
  return a;
}
ProtoWriter attr_float(const std::string& name, float v) {
  ProtoWriter a;
  a.string(attr_field::name, name).float32(attr_field::f, v).int64(attr_field::type, attr_field::FLOAT);
  return a;
}
ProtoWriter attr_ints(const std::string& name, const std::vector<int64_t>& v) {
  ProtoWriter a;
  a.string(attr_field::name, name);
  for (int64_t x : v) a.int64(attr_field::ints, x);  // proto2 repeated: one field per value
  a.int64(attr_field::type, attr_field::INTS);
  return a;
}

// A graph input or output: float32 of shape (N, dims...), N a named dynamic dimension.
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

struct Node {
  std::string op_type, name;
  std::vector<std::string> inputs, outputs;
  std::vector<ProtoWriter> attributes;
};

// The tensor flowing between layers: its name, its per-sample shape in Lamina's channels-last
// order, and whether the graph holds it channels-first (images only: (C, H, W) per sample).
struct Value {
  std::string name;
  Shape shape;
  bool channels_first = false;
};

class GraphBuilder {
 public:
  explicit GraphBuilder(const Shape& input_shape) : value_{"input", input_shape, false} { names_.insert("input"); }

  void add(const Layer& layer);
  // Channels-last again, the last tensor renamed "output"; then the serialized GraphProto.
  ProtoWriter finish(const std::string& graph_name);
  const Value& value() const { return value_; }

 private:
  std::string unique(const std::string& name) {
    std::string n = name;
    for (int i = 1; names_.count(n); ++i) n = name + "_" + std::to_string(i);
    names_.insert(n);
    return n;
  }
  // One node with one output, named after the layer; returns the output's name.
  std::string node(const std::string& op_type, const std::string& layer, std::vector<std::string> inputs,
                   std::vector<ProtoWriter> attributes = {}) {
    const std::string name = unique(layer + "/" + op_type);
    names_.insert(name + ":0");
    nodes_.push_back({op_type, name, std::move(inputs), {name + ":0"}, std::move(attributes)});
    return name + ":0";
  }
  std::string initializer(const std::string& name, const std::vector<int64_t>& dims, const float* data) {
    const std::string n = unique(name);
    int64_t count = 1;
    for (int64_t d : dims) count *= d;
    ProtoWriter t;
    for (int64_t d : dims) t.int64(tensor_field::dims, d);
    t.int64(tensor_field::data_type, tensor_field::FLOAT).string(tensor_field::name, n);
    t.bytes(tensor_field::raw_data, detail::little_endian_bytes(data, static_cast<size_t>(count)));
    initializers_.push_back(std::move(t));
    return n;
  }
  std::string initializer(const std::string& name, const Tensor& w) {
    return initializer(name, w.shape().dims(), w.data());
  }
  std::string int64_initializer(const std::string& name, const std::vector<int64_t>& values) {
    const std::string n = unique(name);
    std::string raw;
    for (int64_t v : values)
      for (int b = 0; b < 8; ++b) raw.push_back(static_cast<char>((static_cast<uint64_t>(v) >> (8 * b)) & 0xff));
    ProtoWriter t;
    t.int64(tensor_field::dims, static_cast<int64_t>(values.size()));
    t.int64(tensor_field::data_type, tensor_field::INT64).string(tensor_field::name, n);
    t.bytes(tensor_field::raw_data, raw);
    initializers_.push_back(std::move(t));
    return n;
  }

  void to_channels_first(const std::string& layer) {
    if (value_.channels_first) return;
    value_.name = node("Transpose", layer + "/to_nchw", {value_.name}, {attr_ints("perm", {0, 3, 1, 2})});
    value_.channels_first = true;
  }
  void to_channels_last(const std::string& layer) {
    if (!value_.channels_first) return;
    value_.name = node("Transpose", layer + "/to_nhwc", {value_.name}, {attr_ints("perm", {0, 2, 3, 1})});
    value_.channels_first = false;
  }
  void activation(const lamina::Activation& a, const std::string& layer);
  void dense(const layers::Dense& d);
  void conv2d(const layers::Conv2D& c);
  void pooling2d(const layers::Pooling2D& p, bool max);
  void batch_norm(const layers::BatchNormalization& bn);

  Value value_;
  std::set<std::string> names_;
  std::vector<Node> nodes_;
  std::vector<ProtoWriter> initializers_;
};

[[noreturn]] void unsupported(const Layer& layer, const std::string& what) {
  throw ValueError("save_onnx: layer '" + layer.name() + "' (" + layer.class_name() + "): " + what);
}

const Tensor& weight_of(const Layer& layer, const std::string& name) {
  for (const Layer::Weight& w : layer.weights())
    if (w.name == name) return w.value;
  unsupported(layer, "has no weight '" + name + "'");
}
bool has_weight(const Layer& layer, const std::string& name) {
  return std::any_of(layer.weights().begin(), layer.weights().end(),
                     [&](const Layer::Weight& w) { return w.name == name; });
}

void GraphBuilder::activation(const lamina::Activation& a, const std::string& layer) {
  // Softmax over Lamina's last axis, the channels: axis 1 while the graph is channels-first.
  const int64_t axis = value_.channels_first ? 1 : -1;
  switch (a.kind()) {
    case lamina::Activation::linear: return;
    case lamina::Activation::relu: value_.name = node("Relu", layer, {value_.name}); return;
    case lamina::Activation::sigmoid: value_.name = node("Sigmoid", layer, {value_.name}); return;
    case lamina::Activation::tanh: value_.name = node("Tanh", layer, {value_.name}); return;
    case lamina::Activation::exponential: value_.name = node("Exp", layer, {value_.name}); return;
    case lamina::Activation::leaky_relu:  // lamina::leaky_relu's slope, Keras' default (ONNX's is 0.01)
      value_.name = node("LeakyRelu", layer, {value_.name}, {attr_float("alpha", 0.2f)});
      return;
    case lamina::Activation::elu: value_.name = node("Elu", layer, {value_.name}, {attr_float("alpha", 1.f)}); return;
    case lamina::Activation::softmax:
      value_.name = node("Softmax", layer, {value_.name}, {attr_int("axis", axis)});
      return;
    case lamina::Activation::log_softmax:
      value_.name = node("LogSoftmax", layer, {value_.name}, {attr_int("axis", axis)});
      return;
  }
  throw ValueError("save_onnx: layer '" + layer + "': activation '" + a.name() + "' has no ONNX export");
}

// Dense: Gemm on (N, K) inputs; MatMul + Add over the last axis of higher-rank inputs, as
// Keras maps Dense over it. kernel (K, U), bias (U). Gemm gets the kernel transposed, (U, K)
// with transB=1: OpenCV 4.6 reads a Gemm without transB as if B were (U, K) already.
void GraphBuilder::dense(const layers::Dense& d) {
  to_channels_last(d.name());
  const Tensor& kernel = weight_of(d, "kernel");
  const bool use_bias = d.options().use_bias;
  const std::string b = use_bias ? initializer(d.name() + "/bias", weight_of(d, "bias")) : "";
  if (value_.shape.rank() == 1) {
    const int64_t k = kernel.dim(0), u = kernel.dim(1);
    std::vector<float> transposed(static_cast<size_t>(kernel.numel()));
    for (int64_t i = 0; i < k; ++i)
      for (int64_t j = 0; j < u; ++j) transposed[static_cast<size_t>(j * k + i)] = kernel.data()[i * u + j];
    std::vector<std::string> inputs{value_.name, initializer(d.name() + "/kernel", {u, k}, transposed.data())};
    if (use_bias) inputs.push_back(b);
    value_.name = node("Gemm", d.name(), inputs, {attr_int("transB", 1)});
  } else {
    value_.name = node("MatMul", d.name(), {value_.name, initializer(d.name() + "/kernel", kernel)});
    if (use_bias) value_.name = node("Add", d.name(), {value_.name, b});
  }
  activation(d.options().activation, d.name());
}

// Explicit pads [top, left, bottom, right] for Keras' 'same' (the odd cell at the bottom / right).
std::vector<int64_t> window_pads(const Shape& in, Size2 window, Size2 strides, Padding padding) {
  const bool same = padding == Padding::same;
  const auto h = kernels::window_axis(in[0], window.h, strides.h, same);
  const auto w = kernels::window_axis(in[1], window.w, strides.w, same);
  return {h.pad_lo, w.pad_lo, h.pad_hi, w.pad_hi};
}

// Conv2D: kernel (KH, KW, C, F) -> ONNX's (F, C, KH, KW).
void GraphBuilder::conv2d(const layers::Conv2D& c) {
  to_channels_first(c.name());
  const auto& o = c.options();
  const Tensor& k = weight_of(c, "kernel");
  const int64_t kh = k.dim(0), kw = k.dim(1), ci = k.dim(2), f = k.dim(3);
  std::vector<float> oihw(static_cast<size_t>(k.numel()));
  const float* src = k.data();
  for (int64_t y = 0; y < kh; ++y)
    for (int64_t x = 0; x < kw; ++x)
      for (int64_t i = 0; i < ci; ++i)
        for (int64_t j = 0; j < f; ++j)
          oihw[static_cast<size_t>(((j * ci + i) * kh + y) * kw + x)] = src[((y * kw + x) * ci + i) * f + j];
  std::vector<std::string> inputs{value_.name, initializer(c.name() + "/kernel", {f, ci, kh, kw}, oihw.data())};
  if (o.use_bias) inputs.push_back(initializer(c.name() + "/bias", weight_of(c, "bias")));
  value_.name = node("Conv", c.name(), inputs,
                     {attr_ints("kernel_shape", {kh, kw}), attr_ints("strides", {o.strides.h, o.strides.w}),
                      attr_ints("pads", window_pads(value_.shape, o.kernel_size, o.strides, o.padding)),
                      attr_ints("dilations", {1, 1}), attr_int("group", 1)});
  activation(o.activation, c.name());
}

// MaxPool / AveragePool; the average counts only cells inside the image (count_include_pad=0),
// as Keras' AveragePooling2D with padding='same'.
void GraphBuilder::pooling2d(const layers::Pooling2D& p, bool max) {
  to_channels_first(p.name());
  const auto& o = p.options();
  const Size2 strides = o.strides.value_or(o.pool_size);
  std::vector<ProtoWriter> attrs{attr_ints("kernel_shape", {o.pool_size.h, o.pool_size.w}),
                                 attr_ints("strides", {strides.h, strides.w}),
                                 attr_ints("pads", window_pads(value_.shape, o.pool_size, strides, o.padding))};
  if (!max) attrs.push_back(attr_int("count_include_pad", 0));
  value_.name = node(max ? "MaxPool" : "AveragePool", p.name(), {value_.name}, std::move(attrs));
}

// BatchNormalization in inference form: (x - moving_mean) / sqrt(moving_variance + epsilon) *
// gamma + beta over the channels, which ONNX wants on axis 1.
void GraphBuilder::batch_norm(const layers::BatchNormalization& bn) {
  const Tensor& mean = weight_of(bn, "moving_mean");
  const int64_t c = mean.dim(0);
  const int64_t rank = value_.shape.rank() + 1;  // with the batch axis
  std::vector<int64_t> to_first, to_last;        // other ranks than (N, C) and images
  if (rank == 4) {
    to_channels_first(bn.name());
  } else if (rank > 2) {
    to_first = {0, rank - 1};
    for (int64_t i = 1; i < rank - 1; ++i) to_first.push_back(i);
    to_last = {0};
    for (int64_t i = 2; i < rank; ++i) to_last.push_back(i);
    to_last.push_back(1);
    value_.name = node("Transpose", bn.name() + "/to_channels_first", {value_.name}, {attr_ints("perm", to_first)});
  }
  const std::vector<float> ones(static_cast<size_t>(c), 1.f), zeros(static_cast<size_t>(c), 0.f);
  const std::string gamma = has_weight(bn, "gamma") ? initializer(bn.name() + "/gamma", weight_of(bn, "gamma"))
                                                    : initializer(bn.name() + "/gamma", {c}, ones.data());
  const std::string beta = has_weight(bn, "beta") ? initializer(bn.name() + "/beta", weight_of(bn, "beta"))
                                                  : initializer(bn.name() + "/beta", {c}, zeros.data());
  value_.name = node("BatchNormalization", bn.name(),
                     {value_.name, gamma, beta, initializer(bn.name() + "/moving_mean", mean),
                      initializer(bn.name() + "/moving_variance", weight_of(bn, "moving_variance"))},
                     {attr_float("epsilon", bn.options().epsilon)});
  if (!to_last.empty())
    value_.name = node("Transpose", bn.name() + "/to_channels_last", {value_.name}, {attr_ints("perm", to_last)});
}

void GraphBuilder::add(const Layer& layer) {
  const Shape out = layer.output_shape(value_.shape);
  const std::string& name = layer.name();
  if (dynamic_cast<const layers::InputLayer*>(&layer) || dynamic_cast<const layers::Dropout*>(&layer)) {
    // InputLayer passes its input through; Dropout is the identity at inference.
  } else if (auto* d = dynamic_cast<const layers::Dense*>(&layer)) {
    dense(*d);
  } else if (auto* a = dynamic_cast<const layers::Activation*>(&layer)) {
    activation(lamina::Activation(a->config().at("activation").get<std::string>()), name);
  } else if (auto* lr = dynamic_cast<const layers::LeakyReLU*>(&layer)) {
    value_.name = node("LeakyRelu", name, {value_.name}, {attr_float("alpha", lr->negative_slope())});
  } else if (dynamic_cast<const layers::Flatten*>(&layer)) {
    to_channels_last(name);  // Lamina's element order, the one the next Dense kernel expects
    if (value_.shape.rank() != 1) value_.name = node("Flatten", name, {value_.name}, {attr_int("axis", 1)});
  } else if (dynamic_cast<const layers::Reshape*>(&layer)) {
    to_channels_last(name);
    std::vector<int64_t> dims{-1};  // the batch: whatever the element count leaves
    for (int64_t d : out) dims.push_back(d);
    value_.name = node("Reshape", name, {value_.name, int64_initializer(name + "/shape", dims)});
  } else if (auto* c = dynamic_cast<const layers::Conv2D*>(&layer)) {
    conv2d(*c);
  } else if (auto* p = dynamic_cast<const layers::MaxPooling2D*>(&layer)) {
    pooling2d(*p, true);
  } else if (auto* p = dynamic_cast<const layers::AveragePooling2D*>(&layer)) {
    pooling2d(*p, false);
  } else if (dynamic_cast<const layers::GlobalAveragePooling2D*>(&layer)) {
    to_channels_first(name);
    value_.name = node("GlobalAveragePool", name, {value_.name});  // (N, C, 1, 1)
    if (out.rank() == 1) {                                          // keepdims=false: (N, C)
      value_.name = node("Flatten", name, {value_.name}, {attr_int("axis", 1)});
      value_.channels_first = false;
    }
  } else if (auto* bn = dynamic_cast<const layers::BatchNormalization*>(&layer)) {
    batch_norm(*bn);
  } else {
    unsupported(layer,
                "no ONNX export for this layer class (supported: InputLayer, Dense, Activation, LeakyReLU, Flatten, Reshape, "
                "Conv2D, MaxPooling2D, AveragePooling2D, GlobalAveragePooling2D, BatchNormalization, Dropout)");
  }
  value_.shape = out;
}

ProtoWriter GraphBuilder::finish(const std::string& graph_name) {
  to_channels_last("output");
  if (value_.name == "input") value_.name = node("Identity", "output", {value_.name});  // a model of no-ops
  // The last node's output becomes the graph's "output"; nothing reads it inside the graph.
  for (Node& n : nodes_)
    for (std::string& o : n.outputs)
      if (o == value_.name) o = "output";
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
  for (const ProtoWriter& t : initializers_) g.message(graph_field::initializer, t);
  g.string(graph_field::doc_string, "Exported by Lamina; input and output are channels-last, as Lamina's predict");
  return g;
}

}  // namespace

void save_onnx(const Sequential& model, const std::string& path, const std::map<std::string, std::string>& metadata) {
  const std::optional<Shape> input_shape = model.input_shape();
  if (!model.built() || !input_shape)
    throw ValueError("save_onnx: the model is not built, so its weights do not exist yet; call model.build(input_shape) "
                     "or fit / predict first");
  GraphBuilder builder(*input_shape);
  for (const auto& layer : model.layers()) builder.add(*layer);
  ProtoWriter graph = builder.finish(model.to_json()["config"].value("name", "sequential"));
  graph.message(graph_field::input, value_info("input", *input_shape));
  graph.message(graph_field::output, value_info("output", builder.value().shape));

  ProtoWriter opset;
  opset.string(opset_field::domain, "").int64(opset_field::version, kOpsetVersion);
  ProtoWriter m;
  m.int64(model_field::ir_version, kIrVersion).string(model_field::producer_name, "lamina");
  m.string(model_field::producer_version, LAMINA_VERSION);
  m.message(model_field::graph, graph).message(model_field::opset_import, opset);
  for (const auto& [key, value] : metadata) {
    ProtoWriter e;
    e.string(entry_field::key, key).string(entry_field::value, value);
    m.message(model_field::metadata_props, e);
  }
  io::write_file_atomic(path, m.str());
}

}  // namespace lamina
