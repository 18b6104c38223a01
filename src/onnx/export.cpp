// save_onnx: a Sequential model as an ONNX graph (IR 8, opset 13), written with the small
// protobuf writer beside this file; no libprotobuf. Each layer writes its own nodes
// (Layer::export_onnx, in the layer's file) into a GraphWriter (graph_writer.hpp, which also
// explains the channels-last / channels-first layout); this file walks the model and wraps the
// graph in a ModelProto. Export only; reading is import.cpp.
#include "lamina/onnx.hpp"

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

void save_onnx(const Sequential& model, const std::string& path, const std::map<std::string, std::string>& metadata) {
  const std::optional<Shape> input_shape = model.input_shape();
  if (!model.built() || !input_shape)
    throw ValueError("save_onnx: the model is not built, so its weights do not exist yet; call model.build(input_shape) "
                     "or fit / predict first");
  GraphWriter writer(*input_shape);
  for (const auto& layer : model.layers()) {
    const Shape out = layer->output_shape(writer.value().shape);
    layer->export_onnx(writer);
    writer.value().shape = out;
  }
  using namespace onnx;
  ProtoWriter graph = writer.finish(model.to_json()["config"].value("name", "sequential"));
  graph.message(graph_field::input, value_info("input", *input_shape));
  graph.message(graph_field::output, value_info("output", writer.value().shape));

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
