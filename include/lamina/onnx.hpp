// ONNX interchange (https://onnx.ai): a Sequential model as an ONNX file that other runtimes
// (OpenCV's dnn, onnxruntime, ...) run with the same inputs and outputs as Lamina's predict.
//
//   Sequential model = Sequential::load("lenet.safetensors");
//   save_onnx(model, "lenet.onnx");   // input (N, 28, 28, 1) channels-last, output (N, 10)
#pragma once

#include <map>
#include <string>

#include "lamina/model.hpp"

namespace lamina {

// Writes a built model as ONNX (IR version 8, opset 13), atomically. The graph takes and
// returns Lamina's channels-last layout: input "input" (N, input_shape...) with a dynamic batch
// N, output "output" (N, output_shape...); convolutions run in NCHW inside it. Inference
// behaviour only: Dropout is the identity, BatchNormalization uses its moving statistics.
// metadata: string entries for the model's metadata_props. Throws ValueError naming the layer
// for a layer or option ONNX export does not cover, and for a model that is not built.
void save_onnx(const Sequential& model, const std::string& path, const std::map<std::string, std::string>& metadata = {});

}  // namespace lamina
