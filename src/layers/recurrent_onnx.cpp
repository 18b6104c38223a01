// SimpleRNN, LSTM, GRU -> ONNX RNN, LSTM, GRU (opset 13). ONNX Runtime refuses batch-major
// recurrent nodes (layout = 1), so the sequence goes time-major through a Transpose and comes
// back through Squeeze + Transpose; the weights take ONNX's layouts: W (1, G*U, I), R (1, G*U, U),
// B (1, 2*G*U) = [input biases, recurrent biases], gates in ONNX's order (LSTM i, o, f, c; Keras
// has i, f, c, o). N = batch, T = timesteps, I = input features, U = units, G = gates.
#include <cstdint>

#include "lamina/layers/recurrent.hpp"
#include "onnx/graph_writer.hpp"

namespace lamina::layers {

namespace {

using W = onnx::GraphWriter;

// ONNX's name of a Keras activation that its recurrent nodes take; empty when they do not.
std::string onnx_activation(const lamina::Activation& a) {
  switch (a.kind()) {
    case lamina::Activation::tanh: return "Tanh";
    case lamina::Activation::sigmoid: return "Sigmoid";
    case lamina::Activation::relu: return "Relu";
    default: return "";
  }
}

// Keras' (rows, G*U) matrix as ONNX's (1, G*U, rows): transposed, ONNX gate k from Keras gate order[k].
std::vector<float> onnx_matrix(const Tensor& keras, int64_t units, const std::vector<int64_t>& order) {
  const int64_t rows = keras.dim(0), cols = keras.dim(1);
  std::vector<float> out(static_cast<size_t>(rows * cols));
  const float* k = keras.data();
  for (size_t g = 0; g < order.size(); ++g)
    for (int64_t u = 0; u < units; ++u)
      for (int64_t r = 0; r < rows; ++r)
        out[static_cast<size_t>((static_cast<int64_t>(g) * units + u) * rows + r)] = k[r * cols + order[g] * units + u];
  return out;
}

// G*U biases from Keras' `from` (G*U values in Keras' gate order) into ONNX's order at `to`.
void onnx_bias(const float* from, float* to, int64_t units, const std::vector<int64_t>& order) {
  for (size_t g = 0; g < order.size(); ++g)
    std::copy_n(from + order[g] * units, units, to + static_cast<int64_t>(g) * units);
}

}  // namespace

void Recurrent::export_onnx(onnx::GraphWriter& g) const {
  if (g.input_masked())
    onnx::GraphWriter::unsupported(*this, "its input carries a mask (from Embedding(mask_zero=True) or Masking), "
                                          "and ONNX's recurrent nodes cannot skip masked steps");
  const std::string cls = class_name();
  const bool lstm = cls == "LSTM", gru = cls == "GRU";
  const std::string op = lstm ? "LSTM" : gru ? "GRU" : "RNN";
  const std::vector<int64_t> order = lstm ? std::vector<int64_t>{0, 3, 1, 2} : gru ? std::vector<int64_t>{0, 1, 2}
                                                                                  : std::vector<int64_t>{0};
  const int64_t u = options_.units, gates = static_cast<int64_t>(order.size());
  const std::string act = onnx_activation(options_.activation);
  const std::string gate_act = onnx_activation(options_.recurrent_activation);
  if (act.empty() || ((lstm || gru) && gate_act.empty()))
    W::unsupported(*this, "activation '" + options_.activation.name() + "'" +
                              (lstm || gru ? " / recurrent_activation '" + options_.recurrent_activation.name() + "'"
                                           : std::string()) +
                              ": ONNX's " + op + " node is exported only with tanh, sigmoid or relu");
  const std::vector<onnx::Value> inputs = g.inputs();
  if (inputs.size() != 1 && inputs.size() != 1 + state_count())
    W::unsupported(*this, "called on " + std::to_string(inputs.size()) + " inputs; expected the sequence and, "
                          "optionally, its " + std::to_string(state_count()) + " initial state(s)");
  g.to_channels_last(name());
  const Shape in = g.value().shape;  // (T, I)
  const int64_t features = in[1];

  const Tensor& kernel = W::weight(*this, "kernel");
  const Tensor& recurrent = W::weight(*this, "recurrent_kernel");
  const std::string w = g.initializer(name() + "/W", {1, gates * u, features}, onnx_matrix(kernel, u, order).data());
  const std::string r = g.initializer(name() + "/R", {1, gates * u, u}, onnx_matrix(recurrent, u, order).data());
  std::string b;  // absent: ONNX's zeros
  if (const Tensor* bias = find_weight("bias")) {
    std::vector<float> wb_rb(static_cast<size_t>(2 * gates * u), 0.f);
    onnx_bias(bias->data(), wb_rb.data(), u, order);
    // GRU reset_after: bias rows (input, recurrent); otherwise one row, the recurrent biases zero.
    if (bias->rank() == 2) onnx_bias(bias->data() + gates * u, wb_rb.data() + gates * u, u, order);
    b = g.initializer(name() + "/B", {1, 2 * gates * u}, wb_rb.data());
  }

  std::vector<std::string> node_inputs{g.node("Transpose", name() + "/to_time_major", {g.value().name},
                                              {W::attr_ints("perm", {1, 0, 2})}),
                                       w, r, b, ""};  // X (T, N, I), W, R, B, sequence_lens
  // Written when a node reads it (one initializer however many do).
  auto axis0 = [&] { return g.int64_initializer(name() + "/axis0", {0}); };
  for (size_t k = 1; k < inputs.size(); ++k)  // initial_h, initial_c: (N, U) -> (1, N, U)
    node_inputs.push_back(g.node("Unsqueeze", name() + "/initial_state", {inputs[k].name, axis0()}));

  std::vector<std::string> activations;
  if (lstm || gru) activations.push_back(gate_act);
  activations.push_back(act);
  if (lstm) activations.push_back(act);
  std::vector<onnx::ProtoWriter> attrs{W::attr_int("hidden_size", u),
                                       W::attr_string("direction", options_.go_backwards ? "reverse" : "forward")};
  // Only when not ONNX's defaults (Keras' too): some readers (OpenCV 4.6) take no string lists.
  const std::vector<std::string> defaults = lstm  ? std::vector<std::string>{"Sigmoid", "Tanh", "Tanh"}
                                            : gru ? std::vector<std::string>{"Sigmoid", "Tanh"}
                                                  : std::vector<std::string>{"Tanh"};
  if (activations != defaults) attrs.push_back(W::attr_strings("activations", activations));
  if (gru) attrs.push_back(W::attr_int("linear_before_reset", options_.reset_after ? 1 : 0));
  // Y (T, 1, N, U), Y_h (1, N, U), and for LSTM Y_c (1, N, U).
  const std::vector<std::string> out = g.node(op, name(), node_inputs, lstm ? 3 : 2, std::move(attrs));

  // The final states (N, U): the last output, and return_state's extra outputs. Only those the
  // model reads, so an importer sees which output the layer returns.
  const bool return_state = output_count() > 1;
  std::vector<onnx::Value> states;
  for (size_t k = 1; k < out.size() && (return_state || (k == 1 && !options_.return_sequences)); ++k)
    states.push_back({g.node("Squeeze", name() + "/state", {out[k], axis0()}), Shape{u}, false});
  onnx::Value& v = g.value();
  if (options_.return_sequences) {
    std::string y = g.node("Squeeze", name() + "/sequence", {out[0], g.int64_initializer(name() + "/axis1", {1})});
    // ONNX's reverse direction puts step t's output at t; Keras' go_backwards returns them in the
    // order it computed them, last step first.
    if (options_.go_backwards)
      y = g.node("Slice", name() + "/reversed", {y, g.int64_initializer(name() + "/start", {-1}),
                                                  g.int64_initializer(name() + "/end", {INT64_MIN}), axis0(),
                                                  g.int64_initializer(name() + "/step", {-1})});
    v.name = g.node("Transpose", name() + "/to_batch_major", {y}, {W::attr_ints("perm", {1, 0, 2})});
  } else {
    v.name = states[0].name;  // the last output is the final h
  }
  v.channels_first = false;
  if (return_state) g.more_outputs() = states;
}

}  // namespace lamina::layers
