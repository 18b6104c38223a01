// ONNX RNN, LSTM and GRU nodes as Keras' SimpleRNN, LSTM and GRU, with the time-major tensors
// around them as PyTorch (batch_first) and Lamina's own export write them:
//
//   X (N, T, F) -Transpose(1, 0, 2)-> (T, N, F) -LSTM-> Y (T, 1, N, U) -Squeeze(1)-> (T, N, U)
//     [-Slice(step -1) over T: go_backwards] -Transpose(1, 0, 2)-> (N, T, U)     (return_sequences)
//                                          or Y_h (1, N, U) -Squeeze(0)-> (N, U)  (the last output)
//   initial states: h0 (N, U) -Unsqueeze(0)-> (1, N, U) as initial_h / initial_c.
//
// The tensors in between keep Lamina's batch-major shape in Flow, tagged Flow::TimeMajor; only these
// nodes may read them. Forward and reverse directions; bidirectional, sequence_lens, peepholes,
// clip, input_forget, batch-major layout and activations other than Tanh / Sigmoid / Relu are refused.
#include <algorithm>
#include <cctype>

#include "onnx/import_state.hpp"

namespace lamina::onnx::detail {

namespace {

using TM = Flow::TimeMajor;

std::string lower(std::string s) {
  for (char& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

}  // namespace

bool Importer::time_major_node(const Node& n) {
  const std::string& op = n.op_type;
  auto axes = [&]() -> std::vector<int64_t> {
    if (opset() < 13) return attr_ints("axes");
    const Const* c = optional_constant(1, "axes");
    return c ? ints_of(*c, "axes") : std::vector<int64_t>{};
  };
  const bool swap = op == "Transpose" && flow_.rank() == 3 && attr_ints("perm") == std::vector<int64_t>{1, 0, 2};
  const std::string what = "the time-major tensor '" + flow_.name + "' around a recurrent node";
  switch (flow_.time_major) {
    case TM::no:
      if (swap) {  // a sequence into a recurrent node (any other reader fails on the tagged tensor)
        if (flow_.axes != std::vector<int>{0, 1, 2} || flow_.permuted())
          fail("swaps the batch and time axes of " + act_text(flow_.shape) + ", which is not a plain sequence here");
        flow_.time_major = TM::sequence;
      } else if (op == "Unsqueeze" && flow_.rank() == 2 && axes() == std::vector<int64_t>{0}) {
        flow_.time_major = TM::state;  // (N, U) -> (1, N, U): an initial state
      } else {
        return false;
      }
      break;
    case TM::sequence:
      if (swap) {
        if (flow_.reversed)
          fail("returns a go_backwards recurrent node's sequence in ONNX's step order; Lamina's go_backwards "
               "layers return it reversed (last step first) and Lamina has no layer that reverses a sequence");
        flow_.time_major = TM::no;
      } else if (op == "Slice") {  // over the steps, step -1: the steps reversed
        const int64_t t = flow_.shape[0];
        auto one = [&](size_t input, const char* role) {
          const Const* c = optional_constant(input, role);
          const std::vector<int64_t> v = c ? ints_of(*c, role) : std::vector<int64_t>{};
          if (v.size() != 1) fail(std::string("a Slice of ") + what + " must have one " + role);
          return v[0];
        };
        if (opset() < 10) fail("a Slice of " + what + " needs opset 10 or later (steps)");
        const int64_t start = one(1, "starts"), end = one(2, "ends"), axis = one(3, "axes"), step = one(4, "steps");
        if (axis != 0 || step != -1 || (start != -1 && start < t - 1) || end > -t - 1)
          fail("a Slice of " + what + " is supported only as the whole sequence reversed (axes 0, starts -1, "
               "ends <= -T-1, steps -1)");
        flow_.reversed = !flow_.reversed;
      } else {
        fail("reads " + what + "; only a Transpose (1, 0, 2) back to batch-major, a reversing Slice or a "
             "recurrent node may");
      }
      break;
    case TM::y:
      if (op != "Squeeze" || axes() != std::vector<int64_t>{1})
        fail("reads the Y output (T, 1, N, U) of a recurrent node; only a Squeeze of axis 1 may");
      flow_.time_major = TM::sequence;
      break;
    case TM::state:
      if (op == "Gather" && attr_int("axis", 0) == 0) {  // PyTorch's h_n[0] / h_n[-1]: the one direction
        const Const& index = constant(1, "indices");
        const std::vector<int64_t> i = ints_of(index, "indices");
        if (!index.dims.empty() || (i.at(0) != 0 && i.at(0) != -1))
          fail("a Gather of a (1, N, U) state must take the scalar index 0 or -1");
      } else if (op != "Squeeze" || axes() != std::vector<int64_t>{0}) {
        fail("reads a (1, N, U) state of a recurrent node; only a Squeeze of axis 0, a Gather of index 0 (or a "
             "recurrent node) may");
      }
      flow_.time_major = TM::no;
      break;
  }
  advance(n);
  return true;
}

void Importer::recurrent(const Node& n) {
  const std::string& op = n.op_type;
  const bool lstm = op == "LSTM", gru = op == "GRU";
  const int64_t gates = lstm ? 4 : gru ? 3 : 1;
  const std::string direction = attr_string("direction", "forward");
  if (direction != "forward" && direction != "reverse")
    fail("direction '" + direction + "' is not supported (forward and reverse are; a bidirectional node would be "
         "Keras' Bidirectional wrapper, which Lamina does not have)");
  if (attr_int("layout", 0) != 0) fail("layout 1 (batch-major) is not supported; exporters write layout 0");
  if (node_->attribute("clip")) fail("'clip' (cell clipping) has no Keras equivalent");
  if (node_->attribute("activation_alpha") || node_->attribute("activation_beta"))
    fail("activation_alpha / activation_beta are not supported (only Tanh, Sigmoid and Relu activations)");
  if (lstm && attr_int("input_forget", 0) != 0) fail("input_forget = 1 (coupled input and forget gates) is not supported");

  // Activations: ONNX's defaults, or the attribute (case-insensitive).
  std::vector<std::string> acts = lstm ? std::vector<std::string>{"sigmoid", "tanh", "tanh"}
                                  : gru ? std::vector<std::string>{"sigmoid", "tanh"}
                                        : std::vector<std::string>{"tanh"};
  if (const Attribute* a = attr("activations", kAttrStrings)) {
    if (a->strings.size() != acts.size())
      fail("has " + std::to_string(a->strings.size()) + " activations; a forward or reverse " + op + " takes " +
           std::to_string(acts.size()));
    for (size_t k = 0; k < acts.size(); ++k) acts[k] = lower(a->strings[k]);
  }
  for (const std::string& a : acts)
    if (a != "tanh" && a != "sigmoid" && a != "relu")
      fail("activation '" + a + "' is not supported (Tanh, Sigmoid and Relu are)");
  if (lstm && acts[1] != acts[2])
    fail("the cell activation '" + acts[1] + "' and the output activation '" + acts[2] +
         "' differ; Keras' LSTM uses one activation for both");

  // X: a sequence made time-major by a Transpose.
  if (n.inputs.empty() || !activations_.count(n.inputs[0])) fail("input X must be computed from the graph input");
  flow_ = activations_.at(n.inputs[0]);
  if (flow_.time_major != TM::sequence || flow_.reversed)
    fail("input X " + act_text(flow_.shape) + " must be a sequence made time-major (T, N, F) by a Transpose "
         "(1, 0, 2) of a (N, T, F) tensor, as exporters of batch-first models write it");
  const int64_t steps = flow_.shape.at(0), features = flow_.shape.at(1);

  // Weights: W (1, G*U, F), R (1, G*U, U), B (1, 2*G*U).
  const Const& w = constant(1, "W");
  const Const& r = constant(2, "R");
  if (!w.is_float || !r.is_float) fail("W and R must be floating-point");
  if (w.dims.size() != 3 || w.dims[0] != 1 || w.dims[1] % gates != 0 || w.dims[2] != features)
    fail("W has shape " + dims_text(w.dims) + "; expected (1, " + std::to_string(gates) + " * hidden_size, " +
         std::to_string(features) + ")");
  const int64_t u = w.dims[1] / gates;
  if (attr_int("hidden_size", u) != u)
    fail("hidden_size " + std::to_string(attr_int("hidden_size", u)) + " does not match W " + dims_text(w.dims));
  if (r.dims != std::vector<int64_t>{1, gates * u, u})
    fail("R has shape " + dims_text(r.dims) + "; expected " + dims_text({1, gates * u, u}));
  const Const* b = optional_constant(3, "B");
  if (b && (!b->is_float || b->dims != std::vector<int64_t>{1, 2 * gates * u}))
    fail("B has shape " + dims_text(b->dims) + "; expected " + dims_text({1, 2 * gates * u}));
  if (n.inputs.size() > 4 && !n.inputs[4].empty())
    fail("sequence_lens (per-sample lengths) is not supported; Keras expresses it with a mask");
  auto zeros = [&](size_t input, const char* role) {
    const Const* c = optional_constant(input, role);
    if (c && std::any_of(c->f.begin(), c->f.end(), [](float v) { return v != 0.f; }))
      fail(std::string(role) + " is a non-zero constant; Lamina takes initial states as model inputs");
  };
  if (lstm && n.inputs.size() > 7) zeros(7, "P (peepholes)");
  // Initial states: absent, zero constants, or (1, N, U) tensors unsqueezed from (N, U) graph values.
  std::vector<int> states;
  const size_t state_count = lstm ? 2 : 1;
  for (size_t k = 0; k < state_count; ++k) {
    const size_t input = 5 + k;
    const char* role = k == 0 ? "initial_h" : "initial_c";
    if (input >= n.inputs.size() || n.inputs[input].empty()) continue;
    if (is_const(n.inputs[input])) {
      const Const& c = consts_.at(n.inputs[input]);
      if (!(c.fill && *c.fill == 0.f)) zeros(input, role);  // PyTorch's zeros of (1, batch, U) are fine
      continue;
    }
    const Flow& s = activations_.at(n.inputs[input]);
    if (s.time_major != TM::state || s.shape != std::vector<int64_t>{u})
      fail(std::string(role) + " must be an (N, " + std::to_string(u) + ") tensor unsqueezed to (1, N, " +
           std::to_string(u) + "); got " + act_text(s.shape));
    states.push_back(s.source);
  }
  if (!states.empty() && states.size() != state_count)
    fail("takes some of its initial states from the graph and others as zeros; a Keras layer takes all or none");

  // Which outputs the graph reads: Y -> return_sequences, Y_h -> the last output.
  auto used = [&](size_t k) { return k < n.outputs.size() && !n.outputs[k].empty() && uses_.count(n.outputs[k]); };
  if (used(0) && used(1)) fail("the graph reads both Y and Y_h; Lamina imports one of them (return_state is not read)");
  if (used(2)) fail("the graph reads Y_c, the final cell state; Lamina does not import return_state");

  const char* cls = lstm ? "LSTM" : gru ? "GRU" : "SimpleRNN";
  Planned& p = plan(cls);
  for (int s : states) p.inputs.push_back(s);
  p.units = u;
  p.use_bias = b != nullptr;
  p.activation = Activation(acts.back());
  if (lstm || gru) p.recurrent_activation = Activation(acts[0]);
  p.return_sequences = used(0);
  p.go_backwards = direction == "reverse";
  p.reset_after = gru && attr_int("linear_before_reset", 0) != 0;

  // Keras' layouts: kernel (F, G*U), recurrent_kernel (U, G*U), gates in Keras' order (LSTM i, f, c,
  // o; ONNX has i, o, f, c): Keras gate order[k] is ONNX gate k.
  const std::vector<int64_t> order = lstm ? std::vector<int64_t>{0, 3, 1, 2} : gru ? std::vector<int64_t>{0, 1, 2}
                                                                                  : std::vector<int64_t>{0};
  auto keras_matrix = [&](const std::vector<float>& onnx, int64_t rows) {
    Tensor k = Tensor::empty({rows, gates * u});
    for (int64_t g = 0; g < gates; ++g)
      for (int64_t j = 0; j < u; ++j)
        for (int64_t i = 0; i < rows; ++i)
          k.data()[i * gates * u + order[static_cast<size_t>(g)] * u + j] = onnx[static_cast<size_t>((g * u + j) * rows + i)];
    return k;
  };
  p.weights["kernel"] = keras_matrix(w.f, features);
  p.weights["recurrent_kernel"] = keras_matrix(r.f, u);
  if (b) {
    // GRU with linear_before_reset keeps the two rows (Keras' reset_after bias); elsewhere the
    // recurrent biases add to the input ones.
    Tensor bias = Tensor::zeros(p.reset_after ? Shape{2, gates * u} : Shape{gates * u});
    for (int64_t g = 0; g < gates; ++g)
      for (int64_t j = 0; j < u; ++j) {
        const size_t wb = static_cast<size_t>(g * u + j), rb = wb + static_cast<size_t>(gates * u);
        const int64_t at = order[static_cast<size_t>(g)] * u + j;
        if (p.reset_after) {
          bias.data()[at] = b->f[wb];
          bias.data()[gates * u + at] = b->f[rb];
        } else {
          bias.data()[at] = b->f[wb] + b->f[rb];
        }
      }
    p.weights["bias"] = bias;
  }

  // The outputs, batch-major in Lamina, time-major in the graph. Lamina's go_backwards sequence is
  // reversed relative to ONNX's reverse-direction Y.
  if (!n.outputs[0].empty()) {
    Flow y = flow_;
    y.shape = {steps, u};
    y.time_major = TM::y;
    y.reversed = p.go_backwards;
    y.name = n.outputs[0];
    activations_[y.name] = y;
  }
  if (n.outputs.size() > 1 && !n.outputs[1].empty()) {
    Flow h = flow_;
    h.shape = {u};
    h.axes = {0, 1};
    h.time_major = TM::state;
    h.name = n.outputs[1];
    activations_[h.name] = h;
  }
}

}  // namespace lamina::onnx::detail
