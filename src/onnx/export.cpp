// save_onnx: a model (Sequential or a graph) as an ONNX graph (IR 8, opset 13), written with the small
// protobuf writer beside this file; no libprotobuf. Each layer writes its own nodes
// (Layer::export_onnx, in the layer's file) into a GraphWriter (graph_writer.hpp, which also
// explains the channels-last / channels-first layout); this file walks the model and wraps the
// graph in a ModelProto. Export only; reading is import.cpp.
#include "lamina/onnx.hpp"

#include <algorithm>

#include "lamina/model.hpp"
#include "lamina/error.hpp"
#include "lamina/io.hpp"
#include "onnx/graph_writer.hpp"

namespace lamina {
namespace {

using onnx::GraphWriter;
using onnx::ProtoWriter;

constexpr int64_t kIrVersion = 8;
constexpr int64_t kOpsetVersion = 13;

}  // namespace

namespace {

// Writes a model's calls into `writer` on the given input values; returns its output values.
std::vector<onnx::Value> write_calls(const Model& model, GraphWriter& writer, const std::vector<onnx::Value>& inputs) {
  int top = 0;
  for (int t : model.input_ids()) top = std::max(top, t);
  for (const auto& n : model.nodes()) top = std::max(top, n.output + n.output_count - 1);
  std::vector<onnx::Value> values(static_cast<size_t>(top) + 1);
  // Keras' masks (Embedding(mask_zero), Masking), followed on a sample of ones: only whether a
  // value has one matters, for the layers whose export cannot honour it (GraphWriter::input_masked).
  std::vector<Tensor> masks(values.size());
  for (size_t i = 0; i < inputs.size(); ++i) values[static_cast<size_t>(model.input_ids()[i])] = inputs[i];
  for (const auto& n : model.nodes()) {
    std::vector<onnx::Value> in;
    std::vector<Shape> shapes;
    std::vector<Tensor> samples, in_masks;
    for (int t : n.inputs) {
      in.push_back(values[static_cast<size_t>(t)]);
      shapes.push_back(in.back().shape);
      std::vector<int64_t> dims{1};
      dims.insert(dims.end(), in.back().shape.begin(), in.back().shape.end());
      samples.push_back(Tensor::ones(Shape(dims)));
      in_masks.push_back(masks[static_cast<size_t>(t)]);
    }
    masks[static_cast<size_t>(n.output)] = n.layer->compute_mask(samples, in_masks);
    const std::vector<Shape> out = n.layer->infer_shapes(shapes);
    writer.set_inputs(std::move(in));
    writer.set_input_masked(in_masks.at(0).defined());
    n.layer->export_onnx(writer);
    writer.value().shape = out.at(0);
    values[static_cast<size_t>(n.output)] = writer.value();
    // A layer with several outputs leaves the others in more_outputs(), in order.
    if (writer.more_outputs().size() + 1 != out.size())
      GraphWriter::unsupported(*n.layer, "its ONNX export writes " + std::to_string(writer.more_outputs().size() + 1) +
                                             " outputs, the layer has " + std::to_string(out.size()));
    for (size_t k = 1; k < out.size(); ++k) {
      values[static_cast<size_t>(n.output) + k] = writer.more_outputs()[k - 1];
      values[static_cast<size_t>(n.output) + k].shape = out[k];
    }
  }
  std::vector<onnx::Value> outs;
  for (int t : model.output_ids()) outs.push_back(values[static_cast<size_t>(t)]);
  return outs;
}

}  // namespace

// A model nested in another: its calls written inline on the outer call's inputs.
void Model::export_onnx(onnx::GraphWriter& graph) const {
  if (output_ids_.size() != 1)
    GraphWriter::unsupported(*this, "a nested model with " + std::to_string(output_ids_.size()) + " outputs");
  graph.value() = write_calls(*this, graph, graph.inputs()).at(0);
}

void save_onnx(const Model& model, const std::string& path, const std::map<std::string, std::string>& metadata) {
  if (!model.built() || model.input_shapes().empty())
    throw ValueError("save_onnx: the model is not built, so its weights do not exist yet; call model.build(input_shape) "
                     "or fit / predict first");
  // One input and one output keep the names "input" and "output"; several take their layers' names.
  const std::vector<Shape> in_shapes = model.input_shapes(), out_shapes = model.output_shapes();
  std::vector<std::string> in_names{"input"}, out_names{"output"};
  if (in_shapes.size() > 1) in_names = model.input_names();
  if (out_shapes.size() > 1) out_names = model.output_names();
  std::vector<onnx::Value> inputs;
  for (size_t i = 0; i < in_shapes.size(); ++i) inputs.push_back({in_names[i], in_shapes[i], false});
  GraphWriter writer(inputs);
  std::vector<onnx::Value> outputs = write_calls(model, writer, inputs);
  using namespace onnx;
  ProtoWriter graph = writer.finish(model.name(), outputs, out_names);
  for (size_t i = 0; i < in_shapes.size(); ++i) graph.message(graph_field::input, value_info(in_names[i], in_shapes[i]));
  for (size_t o = 0; o < out_shapes.size(); ++o) graph.message(graph_field::output, value_info(out_names[o], out_shapes[o]));

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
