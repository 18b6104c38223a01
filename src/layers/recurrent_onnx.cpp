// SimpleRNN, LSTM, GRU -> ONNX RNN, LSTM, GRU (opset 13). ONNX Runtime refuses batch-major
// recurrent nodes (layout = 1), so the sequence goes time-major through a Transpose and comes
// back through Squeeze + Transpose; the weights take ONNX's layouts: W (1, G*U, I), R (1, G*U, U),
// B (1, 2*G*U) = [input biases, recurrent biases], gates in ONNX's order (LSTM i, o, f, c; Keras
// has i, f, c, o). N = batch, T = timesteps, I = input features, U = units, G = gates.
// Bidirectional -> one node with direction "bidirectional" (D = 2 directions: W (2, G*U, I), ...),
// its merge after it: concat as PyTorch writes it (Y (T, 2, N, U) -Transpose (0, 2, 1, 3)->
// (T, N, 2, U) -Reshape (0, 0, -1)-> (T, N, 2U); Y_h (2, N, U) -Transpose (1, 0, 2)-> Reshape (0, -1)),
// sum / ave / mul as ReduceSum / ReduceMean / ReduceProd over the direction axis.
#include <cstdint>

#include "lamina/layers/bidirectional.hpp"
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

// ONNX's recurrent nodes cannot skip the steps a Keras mask skips.
void refuse_masked(const W& g, const Layer& l) {
  if (g.input_masked())
    W::unsupported(l, "its input carries a mask (from Embedding(mask_zero=True) or Masking), and ONNX's recurrent "
                      "nodes cannot skip masked steps");
}

// The class's ONNX op, its gates in ONNX's order (Keras gate order[k] is ONNX gate k), and its
// activations, ONNX's way: refuses the activations ONNX's node cannot take.
struct NodeKind {
  std::string op;
  std::vector<int64_t> order;
  std::vector<std::string> activations;  // per direction, in ONNX's attribute order
};

NodeKind node_kind(const Recurrent& l) {
  const std::string cls = l.class_name();
  const bool lstm = cls == "LSTM", gru = cls == "GRU";
  NodeKind k{lstm ? "LSTM" : gru ? "GRU" : "RNN",
             lstm ? std::vector<int64_t>{0, 3, 1, 2} : gru ? std::vector<int64_t>{0, 1, 2} : std::vector<int64_t>{0},
             {}};
  const auto& o = l.options();
  const std::string act = onnx_activation(o.activation), gate_act = onnx_activation(o.recurrent_activation);
  if (act.empty() || ((lstm || gru) && gate_act.empty()))
    W::unsupported(l, "activation '" + o.activation.name() + "'" +
                          (lstm || gru ? " / recurrent_activation '" + o.recurrent_activation.name() + "'"
                                       : std::string()) +
                          ": ONNX's " + k.op + " node is exported only with tanh, sigmoid or relu");
  if (lstm || gru) k.activations.push_back(gate_act);
  k.activations.push_back(act);
  if (lstm) k.activations.push_back(act);
  return k;
}

// One ONNX node for `dirs` on the current value (time-major after a Transpose): one layer (forward
// or reverse), or a Bidirectional's forward and backward layers (ONNX's direction 0 and 1, the
// weights stacked on the first axis). `states`: the (1, N, U) initial states, or none. Returns Y
// (T, D, N, U), Y_h (D, N, U) and, for LSTM, Y_c.
std::vector<std::string> recurrent_node(W& g, const Layer& owner, const std::vector<const Recurrent*>& dirs,
                                        const std::string& direction, std::vector<std::string> states) {
  const Recurrent& first = *dirs[0];
  const NodeKind kind = node_kind(first);
  const bool lstm = kind.op == "LSTM", gru = kind.op == "GRU";
  const int64_t u = first.options().units, gates = static_cast<int64_t>(kind.order.size());
  const int64_t d = static_cast<int64_t>(dirs.size()), features = g.value().shape[1];  // (T, I)
  std::vector<float> w, r, b;
  bool any_bias = false;
  for (const Recurrent* l : dirs) {
    const std::vector<float> lw = onnx_matrix(W::weight(*l, "kernel"), u, kind.order);
    const std::vector<float> lr = onnx_matrix(W::weight(*l, "recurrent_kernel"), u, kind.order);
    w.insert(w.end(), lw.begin(), lw.end());
    r.insert(r.end(), lr.begin(), lr.end());
    std::vector<float> wb_rb(static_cast<size_t>(2 * gates * u), 0.f);  // absent: ONNX's zeros
    if (const Tensor* bias = l->find_weight("bias")) {
      any_bias = true;
      onnx_bias(bias->data(), wb_rb.data(), u, kind.order);
      // GRU reset_after: bias rows (input, recurrent); otherwise one row, the recurrent biases zero.
      if (bias->rank() == 2) onnx_bias(bias->data() + gates * u, wb_rb.data() + gates * u, u, kind.order);
    }
    b.insert(b.end(), wb_rb.begin(), wb_rb.end());
  }
  const std::string name = owner.name();
  std::vector<std::string> inputs{
      g.node("Transpose", name + "/to_time_major", {g.value().name}, {W::attr_ints("perm", {1, 0, 2})}),
      g.initializer(name + "/W", {d, gates * u, features}, w.data()),
      g.initializer(name + "/R", {d, gates * u, u}, r.data()),
      any_bias ? g.initializer(name + "/B", {d, 2 * gates * u}, b.data()) : std::string(), ""};  // sequence_lens
  inputs.insert(inputs.end(), states.begin(), states.end());

  std::vector<std::string> activations;
  for (int64_t k = 0; k < d; ++k) activations.insert(activations.end(), kind.activations.begin(), kind.activations.end());
  std::vector<onnx::ProtoWriter> attrs{W::attr_int("hidden_size", u), W::attr_string("direction", direction)};
  // Only when not ONNX's defaults (Keras' too): some readers (OpenCV 4.6) take no string lists.
  const std::vector<std::string> defaults = lstm  ? std::vector<std::string>{"Sigmoid", "Tanh", "Tanh"}
                                            : gru ? std::vector<std::string>{"Sigmoid", "Tanh"}
                                                  : std::vector<std::string>{"Tanh"};
  if (kind.activations != defaults) attrs.push_back(W::attr_strings("activations", activations));
  if (gru) attrs.push_back(W::attr_int("linear_before_reset", first.options().reset_after ? 1 : 0));
  return g.node(kind.op, name, inputs, lstm ? 3 : 2, std::move(attrs));
}

}  // namespace

void Recurrent::export_onnx(onnx::GraphWriter& g) const {
  refuse_masked(g, *this);
  const int64_t u = options_.units;
  const std::vector<onnx::Value> inputs = g.inputs();
  if (inputs.size() != 1 && inputs.size() != 1 + state_count())
    W::unsupported(*this, "called on " + std::to_string(inputs.size()) + " inputs; expected the sequence and, "
                          "optionally, its " + std::to_string(state_count()) + " initial state(s)");
  node_kind(*this);  // refuses activations ONNX lacks before any node is written
  g.to_channels_last(name());
  // Written when a node reads it (one initializer however many do).
  auto axis0 = [&] { return g.int64_initializer(name() + "/axis0", {0}); };
  std::vector<std::string> states;
  for (size_t k = 1; k < inputs.size(); ++k)  // initial_h, initial_c: (N, U) -> (1, N, U)
    states.push_back(g.node("Unsqueeze", name() + "/initial_state", {inputs[k].name, axis0()}));
  // Y (T, 1, N, U), Y_h (1, N, U), and for LSTM Y_c (1, N, U).
  const std::vector<std::string> out =
      recurrent_node(g, *this, {this}, options_.go_backwards ? "reverse" : "forward", std::move(states));

  // The final states (N, U): the last output, and return_state's extra outputs. Only those the
  // model reads, so an importer sees which output the layer returns.
  const bool return_state = output_count() > 1;
  std::vector<onnx::Value> finals;
  for (size_t k = 1; k < out.size() && (return_state || (k == 1 && !options_.return_sequences)); ++k)
    finals.push_back({g.node("Squeeze", name() + "/state", {out[k], axis0()}), Shape{u}, false});
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
    v.name = finals[0].name;  // the last output is the final h
  }
  v.channels_first = false;
  if (return_state) g.more_outputs() = finals;
}

void Bidirectional::export_onnx(onnx::GraphWriter& g) const {
  refuse_masked(g, *this);
  const Recurrent &f = *forward_, &b = *backward_;
  const auto &fo = f.options(), &bo = b.options();
  if (g.inputs().size() != 1) W::unsupported(*this, "initial states are not exported for a Bidirectional");
  if (fo.return_state) W::unsupported(*this, "return_state is not exported for a Bidirectional");
  if (fo.go_backwards)
    W::unsupported(*this, "its forward layer runs backwards (go_backwards), which ONNX's bidirectional node "
                          "cannot express");
  if (merge_mode_ == "none")
    W::unsupported(*this, "merge_mode None (two outputs) is not exported; 'concat', 'sum', 'mul' and 'ave' are");
  if (bo.units != fo.units || bo.activation.name() != fo.activation.name() ||
      bo.recurrent_activation.name() != fo.recurrent_activation.name() || bo.reset_after != fo.reset_after)
    W::unsupported(*this, "its backward layer differs from its forward one (units, activations or reset_after), "
                          "which ONNX's one bidirectional node cannot express");
  g.to_channels_last(name());
  // Y (T, 2, N, U), Y_h (2, N, U): direction 0 the forward layer, 1 the backward one, whose Y is
  // in the input's step order already, as Keras merges it.
  const std::vector<std::string> out = recurrent_node(g, *this, {&f, &b}, "bidirectional", {});
  onnx::Value& v = g.value();
  const bool sequences = fo.return_sequences;
  const std::string source = sequences ? out[0] : out[1];
  const int64_t axis = sequences ? 1 : 0;  // the direction axis
  std::string y;
  if (merge_mode_ == "concat") {
    // PyTorch's way: the direction axis moved beside the units, then merged into them.
    y = g.node("Transpose", name() + "/directions_last", {source},
               {W::attr_ints("perm", sequences ? std::vector<int64_t>{0, 2, 1, 3} : std::vector<int64_t>{1, 0, 2})});
    y = g.node("Reshape", name() + "/concat",
               {y, g.int64_initializer(name() + "/shape", sequences ? std::vector<int64_t>{0, 0, -1}
                                                                      : std::vector<int64_t>{0, -1})});
  } else {
    const std::vector<onnx::ProtoWriter> keep{W::attr_int("keepdims", 0)};
    if (merge_mode_ == "sum") {  // opset 13: ReduceSum's axes are an input
      y = g.node("ReduceSum", name() + "/sum", {source, g.int64_initializer(name() + "/axes", {axis})}, keep);
    } else {
      std::vector<onnx::ProtoWriter> attrs = keep;
      attrs.push_back(W::attr_ints("axes", {axis}));
      y = g.node(merge_mode_ == "mul" ? "ReduceProd" : "ReduceMean", name() + "/" + merge_mode_, {source},
                 std::move(attrs));
    }
  }
  v.name = sequences ? g.node("Transpose", name() + "/to_batch_major", {y}, {W::attr_ints("perm", {1, 0, 2})}) : y;
  v.channels_first = false;
}

}  // namespace lamina::layers
