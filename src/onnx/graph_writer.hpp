// GraphWriter: an ONNX graph (IR 8, opset 13) under construction, node by node, with the
// layout bookkeeping every layer's export needs. save_onnx (export.cpp) walks the model and
// calls each layer's export_onnx with it; the layer reads value(), adds its nodes and
// initializers, and leaves its output in value(). Field numbers are onnx.proto's
// (https://github.com/onnx/onnx/blob/main/onnx/onnx.proto). Internal; written with the small
// protobuf writer beside this file, no libprotobuf.
//
// Layout: Lamina is channels-last (N, H, W, C); ONNX's Conv, pooling and BatchNormalization are
// channels-first. The graph keeps Lamina's layout at its input and output and wherever a layer
// needs it (Dense, Flatten, Reshape); to_channels_first/last add a Transpose only when the
// current value is in the other layout, so a CNN pays one Transpose each way.
#pragma once

#include <cstdint>
#include <map>
#include <set>
#include <utility>
#include <string>
#include <vector>

#include "lamina/layers.hpp"
#include "lamina/tensor.hpp"
#include "onnx/protobuf_writer.hpp"

namespace lamina::onnx {

using detail::ProtoWriter;

// The tensor flowing between layers: its name, its per-sample shape in Lamina's channels-last
// order, and whether the graph holds it channels-first (images only: (C, H, W) per sample).
struct Value {
  std::string name;
  Shape shape;
  bool channels_first = false;
};

class GraphWriter {
 public:
  explicit GraphWriter(const Shape& input_shape);  // one input, "input"
  explicit GraphWriter(const std::vector<Value>& inputs);

  // The current value: a layer's input when its export_onnx starts, its output when it returns.
  Value& value() { return value_; }
  const Value& value() const { return value_; }
  // Every input of the current call (a merge layer has several); value() is the first.
  void set_inputs(std::vector<Value> inputs);
  const std::vector<Value>& inputs() const { return inputs_; }
  // A layer with several outputs (LSTM with return_state) leaves its first in value() and the
  // others here, in order; set_inputs clears them.
  std::vector<Value>& more_outputs() { return more_outputs_; }
  // Whether the current call's first input carries a Keras mask: a layer that reads masks (the
  // recurrent layers, GlobalAveragePooling1D) refuses to export what ONNX would compute unmasked.
  bool input_masked() const { return input_masked_; }
  void set_input_masked(bool on) { input_masked_ = on; }
  // The names of the current call's inputs in one layout: channels-first when any image input is
  // (a Transpose for those that are not), so a residual Add costs no Transpose; value() takes
  // that layout and the first input's shape.
  std::vector<std::string> same_layout_inputs(const std::string& layer);
  // The ONNX axis of a per-sample Lamina axis of the current value (channels-first images: H, W,
  // C go to 2, 3, 1), with the batch axis counted.
  int64_t onnx_axis(int64_t sample_axis) const;

  // One node with one output, named after the layer; returns the output's name.
  std::string node(const std::string& op_type, const std::string& layer, std::vector<std::string> inputs,
                   std::vector<ProtoWriter> attributes = {});
  // One node with `outputs` outputs (LSTM's Y, Y_h, Y_c), named after the layer; returns their names.
  std::vector<std::string> node(const std::string& op_type, const std::string& layer, std::vector<std::string> inputs,
                                size_t outputs, std::vector<ProtoWriter> attributes);
  // A float initializer of `dims` from data (row-major), or from a tensor; returns its name.
  std::string initializer(const std::string& name, const std::vector<int64_t>& dims, const float* data);
  std::string initializer(const std::string& name, const Tensor& w) { return initializer(name, w.shape().dims(), w.data()); }
  std::string int64_initializer(const std::string& name, const std::vector<int64_t>& values);

  // Puts the current value in channels-first (NCHW) or channels-last order, if it is not already;
  // a value that another call has already transposed the same way reuses that Transpose.
  void to_channels_first(const std::string& layer);
  void to_channels_last(const std::string& layer);
  // Applies a Lamina activation to the current value (nothing for linear).
  void activation(const Activation& a, const std::string& layer);

  // Channels-last again, the last tensor renamed "output"; then the serialized GraphProto.
  ProtoWriter finish(const std::string& graph_name);
  // The same for several outputs: each channels-last and renamed to its name in `names`.
  ProtoWriter finish(const std::string& graph_name, std::vector<Value> outputs, const std::vector<std::string>& names);

  // --- helpers for the layers' export_onnx ---
  static ProtoWriter attr_int(const std::string& name, int64_t v);
  static ProtoWriter attr_float(const std::string& name, float v);
  static ProtoWriter attr_ints(const std::string& name, const std::vector<int64_t>& v);
  static ProtoWriter attr_string(const std::string& name, const std::string& v);
  static ProtoWriter attr_strings(const std::string& name, const std::vector<std::string>& v);
  // Explicit pads [top, left, bottom, right] for Keras' padding over an (H, W, ...) input (the
  // odd cell of 'same' at the bottom / right).
  static std::vector<int64_t> window_pads(const Shape& in, Size2 window, Size2 strides, Padding padding);
  // ValueError "save_onnx: layer 'dense' (Dense): ...".
  [[noreturn]] static void unsupported(const Layer& layer, const std::string& what);
  static const Tensor& weight(const Layer& layer, const std::string& name);  // unsupported() if absent

 private:
  struct Node {
    std::string op_type, name;
    std::vector<std::string> inputs, outputs;
    std::vector<ProtoWriter> attributes;
  };
  // An initializer, serialized in finish(). `asked` is the name the layer asked for: a shared
  // layer called twice asks twice for the same name and bytes and gets the first one back.
  struct Init {
    std::string asked, name;
    std::vector<int64_t> dims;
    int64_t data_type;
    std::string raw;
  };
  std::string unique(const std::string& name);
  std::string add_initializer(const std::string& name, std::vector<int64_t> dims, int64_t data_type, std::string raw);
  std::string transpose(const std::string& layer, const char* suffix, const std::vector<int64_t>& perm);

  Value value_;
  std::vector<Value> inputs_;
  std::vector<Value> more_outputs_;
  bool input_masked_ = false;
  std::set<std::string> graph_inputs_;
  std::set<std::string> names_;
  std::vector<Node> nodes_;
  std::vector<Init> initializers_;
  // Values already transposed, by (value name, perm): several readers of one value share one Transpose.
  std::map<std::pair<std::string, std::vector<int64_t>>, std::string> transposed_;
};

// onnx.proto field numbers, by message (those export.cpp and the writer use).
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
namespace entry_field {  // StringStringEntryProto
constexpr uint32_t key = 1, value = 2;
}

// A graph input or output: float32 of shape (N, dims...), N a named dynamic dimension.
ProtoWriter value_info(const std::string& name, const Shape& sample);

}  // namespace lamina::onnx
