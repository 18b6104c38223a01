// ONNX interchange (https://onnx.ai). save_onnx writes a model (Sequential or a graph) as an ONNX file that
// other runtimes (OpenCV's dnn, onnxruntime, ...) run with the same inputs and outputs as
// Lamina's predict; load_onnx reads a model exported with torch.onnx.export (or any ONNX file
// whose graph is made of the layers Lamina has: chains, branches, residual connections, several
// inputs and outputs) into a built Model that can predict, evaluate and be fine-tuned.
//
//   Sequential model = Sequential::load("lenet.safetensors");
//   save_onnx(model, "lenet.onnx");   // input (N, 28, 28, 1) channels-last, output (N, 10)
//
//   Model m = load_onnx("mlp.onnx");           // built, not compiled: ONNX has no loss
//   m.compile(Adam(), losses::SparseCategoricalCrossentropy({.from_logits = true}));
//   m.fit(train, {.epochs = 2});
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <string_view>

#include "lamina/model.hpp"

namespace lamina {

// Writes a built model as ONNX (IR version 8, opset 13), atomically. The graph takes and
// returns Lamina's channels-last layout: input "input" (N, input_shape...) with a dynamic batch
// N, output "output" (N, output_shape...); a model with several inputs or outputs names each
// after its layer. Convolutions (and merges of their outputs) run in NCHW inside it. Inference
// behaviour only: Dropout is the identity, BatchNormalization uses its moving statistics.
// metadata: string entries for the model's metadata_props. Throws ValueError naming the layer
// for a layer or option ONNX export does not cover, and for a model that is not built.
void save_onnx(const Model& model, const std::string& path, const std::map<std::string, std::string>& metadata = {});

// What load_onnx read besides the layers.
struct OnnxInfo {
  std::string producer;                          // "pytorch 1.13.0"
  int64_t ir_version = 0;
  int64_t opset = 0;                             // of the default (ai.onnx) domain
  std::map<std::string, std::string> metadata;   // the model's metadata_props
};

// Reads an ONNX model whose graph is made of Gemm, MatMul(+Add), Conv, MaxPool, AveragePool,
// GlobalAveragePool, BatchNormalization, Flatten, Reshape, Relu, Sigmoid, Tanh, Softmax,
// LogSoftmax, LeakyRelu, Elu, Dropout, Identity (and the Constant / Shape / Gather / Unsqueeze /
// Concat nodes an exporter writes to compute a Reshape's shape), with Add, Sub, Mul, Max, Min,
// Sum, Mean of several activations (of one shape) and Concat of activations as Lamina's merge
// layers (Add, Subtract, Multiply, Maximum, Minimum, Average, Concatenate; Concat's axis mapped to
// the channels-last layout: NCHW's channel axis 1 is Lamina's last).
//
// The result is a Model: Sequential-shaped (is_sequential(); Sequential(load_onnx(...)) takes it
// as one) when the graph is a chain from one input to one output, a Functional model otherwise.
// Graph inputs become Input layers named after the ONNX inputs, in the graph's order (predict_all
// and fit take one tensor per input); graph outputs are the model's outputs, in order. Nodes no
// output depends on are left out.
//
// Layout: ONNX images are NCHW, Lamina's are NHWC. An image model's input becomes channels-last
// (N, H, W, C); conv kernels are transposed (OIHW -> HWIO) and the Dense after a Flatten gets its
// rows permuted, so predictions on x.permute(0, 2, 3, 1) equal the ONNX model's on x. A graph that
// starts by transposing its input (save_onnx's, tf2onnx's) keeps the input as it is.
//
// All-or-nothing: throws lamina::Error naming the file and, for a graph Lamina cannot express,
// the node (index, name, op type) and what was expected; truncated or corrupt bytes name the
// byte offset. The model is returned built, its weights the file's, and not compiled.
Model load_onnx(const std::string& path, OnnxInfo* info = nullptr);

// The same from the bytes of an ONNX file; `name` stands for the file in messages.
Model load_onnx_from_bytes(std::string_view bytes, const std::string& name = "<memory>", OnnxInfo* info = nullptr);

// Whether the file looks like an ONNX model: a .onnx name, or protobuf bytes that start with
// ModelProto's ir_version field. Cheap: reads a few bytes.
bool is_onnx_file(const std::string& path);

}  // namespace lamina
