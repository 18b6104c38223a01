// ONNX RNN, LSTM and GRU nodes as Keras' SimpleRNN, LSTM and GRU, with the time-major tensors
// around them as PyTorch (batch_first) and Lamina's own export write them:
//
//   X (N, T, F) -Transpose(1, 0, 2)-> (T, N, F) -LSTM-> Y (T, 1, N, U) -Squeeze(1)-> (T, N, U)
//     [-Slice(step -1) over T: go_backwards] -Transpose(1, 0, 2)-> (N, T, U)     (return_sequences)
//                                          or Y_h (1, N, U) -Squeeze(0)-> (N, U)  (the last output)
//   initial states: h0 (N, U) -Unsqueeze(0)-> (1, N, U) as initial_h / initial_c.
//
// A bidirectional node is Keras' Bidirectional, its two directions merged as PyTorch writes a concat
// (and Lamina's export, which also writes the other merges):
//
//   Y (T, 2, N, U) -Transpose(0, 2, 1, 3)-> (T, N, 2, U) -Reshape(0, 0, -1)-> (T, N, 2U) -> as above
//   Y_h (2, N, U) -Transpose(1, 0, 2)-> (N, 2, U) -Reshape(0, -1) or Flatten-> (N, 2U)
//   or ReduceSum / ReduceMean / ReduceProd over the direction axis: merge_mode sum / ave / mul.
//
// The tensors in between keep Lamina's batch-major shape in Flow, tagged Flow::TimeMajor; only these
// nodes may read them. sequence_lens, peepholes, clip, input_forget, batch-major layout, activations
// other than Tanh / Sigmoid / Relu, and a bidirectional node's initial states from the graph or
// directions with unlike activations are refused.
#include <algorithm>
#include <cctype>

#include "layers/keras_config.hpp"  // snake_case
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
    case TM::y2:
      if (op == "Transpose" && attr_ints("perm") == std::vector<int64_t>{0, 2, 1, 3}) {
        flow_.time_major = TM::y2_swapped;
      } else if (op == "ReduceSum" || op == "ReduceMean" || op == "ReduceProd") {
        merge_directions(n);
      } else {
        fail("reads the Y output (T, 2, N, U) of a bidirectional node; only a Transpose (0, 2, 1, 3) then a Reshape "
             "to (T, N, 2U) (the directions concatenated), or a ReduceSum / ReduceMean / ReduceProd of axis 1, may");
      }
      break;
    case TM::state2:
      if (op == "Transpose" && attr_ints("perm") == std::vector<int64_t>{1, 0, 2}) {
        flow_.time_major = TM::state2_swapped;
      } else if (op == "ReduceSum" || op == "ReduceMean" || op == "ReduceProd") {
        merge_directions(n);
      } else {
        fail("reads the final states (2, N, U) of a bidirectional node; only a Transpose (1, 0, 2) then a Reshape "
             "to (N, 2U) (the directions concatenated), or a ReduceSum / ReduceMean / ReduceProd of axis 0, may "
             "(a Gather of one direction is not supported)");
      }
      break;
    case TM::y2_swapped:
    case TM::state2_swapped:
      if (op != "Reshape" && !(op == "Flatten" && flow_.time_major == TM::state2_swapped))
        fail("reads a bidirectional node's output with its directions beside the units " +
             std::string(flow_.time_major == TM::y2_swapped ? "(T, N, 2, U)" : "(N, 2, U)") +
             "; only a Reshape that merges the two may");
      merge_directions(n);
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

void Importer::merge_directions(const Node& n) {
  const std::string& op = n.op_type;
  Planned& p = plan_[static_cast<size_t>(flow_.source)];
  const bool sequence = flow_.time_major == TM::y2 || flow_.time_major == TM::y2_swapped;
  const int64_t u = p.units, steps = sequence ? flow_.shape.at(0) : 0;
  std::string merge = "concat";
  if (op == "Reshape") {
    // (T, N, 2, U) -> (T, N, 2U) or (N, 2, U) -> (N, 2U); 0 copies the entry, -1 is inferred.
    const std::vector<int64_t> v = ints_of(constant(1, "shape"), "shape");
    auto batch = [&](int64_t d) { return d == 0 || d == -1 || d == kBatchDim || (fixed_batch_ > 0 && d == fixed_batch_); };
    const bool ok = sequence ? v.size() == 3 && (v[0] == 0 || v[0] == steps) && batch(v[1]) &&
                                   (v[2] == 2 * u || (v[2] == -1 && v[1] != -1))
                             : v.size() == 2 && batch(v[0]) && (v[1] == 2 * u || (v[1] == -1 && v[0] != -1));
    if (!ok || (attr_int("allowzero", 0) != 0 && std::count(v.begin(), v.end(), 0) > 0))
      fail("reshapes a bidirectional node's output " + std::string(sequence ? "(T, N, 2, U)" : "(N, 2, U)") + " to " +
           dims_text(v) + "; only the merge of its two directions, " + (sequence ? "(T, N, 2U)" : "(N, 2U)") +
           ", can be followed");
  } else if (op != "Flatten") {  // ReduceSum / ReduceMean / ReduceProd over the direction axis
    const bool axes_input = opset() >= 18 || (op == "ReduceSum" && opset() >= 13);
    const Const* c = axes_input ? optional_constant(1, "axes") : nullptr;
    const std::vector<int64_t> axes = axes_input ? (c ? ints_of(*c, "axes") : std::vector<int64_t>{}) : attr_ints("axes");
    const int64_t axis = sequence ? 1 : 0, rank = sequence ? 4 : 3;
    if (axes.size() != 1 || (axes[0] != axis && axes[0] != axis - rank) || attr_int("keepdims", 1) != 0)
      fail("reduces a bidirectional node's output over axes " + dims_text(axes) + " with keepdims " +
           std::to_string(attr_int("keepdims", 1)) + "; only a merge of its two directions (axis " +
           std::to_string(axis) + ", keepdims 0) can be followed");
    merge = op == "ReduceSum" ? "sum" : op == "ReduceMean" ? "ave" : "mul";
  }
  if (!p.merge_mode.empty() && p.merge_mode != merge)
    fail("merges the two directions of " + p.origin + " as '" + merge + "', where another node merges them as '" +
         p.merge_mode + "'; a Bidirectional layer has one merge_mode");
  p.merge_mode = merge;
  const int64_t width = merge == "concat" ? 2 * u : u;
  flow_.shape = sequence ? std::vector<int64_t>{steps, width} : std::vector<int64_t>{width};
  flow_.time_major = sequence ? TM::sequence : TM::no;
}

void Importer::recurrent(const Node& n) {
  const std::string& op = n.op_type;
  const bool lstm = op == "LSTM", gru = op == "GRU";
  const int64_t gates = lstm ? 4 : gru ? 3 : 1;
  const std::string direction = attr_string("direction", "forward");
  const bool both = direction == "bidirectional";
  if (direction != "forward" && direction != "reverse" && !both)
    fail("direction '" + direction + "' is not supported (forward, reverse and bidirectional are)");
  const int64_t dirs = both ? 2 : 1;
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
    if (a->strings.size() != acts.size() * static_cast<size_t>(dirs))
      fail("has " + std::to_string(a->strings.size()) + " activations; a " + direction + " " + op + " takes " +
           std::to_string(acts.size() * static_cast<size_t>(dirs)));
    for (size_t k = 0; k < acts.size(); ++k) {
      acts[k] = lower(a->strings[k]);
      if (both && lower(a->strings[k + acts.size()]) != acts[k])
        fail("its directions have unlike activations ('" + acts[k] + "' and '" + lower(a->strings[k + acts.size()]) +
             "'); Keras' Bidirectional has one layer's");
    }
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

  // Weights: W (D, G*U, F), R (D, G*U, U), B (D, 2*G*U), D = 2 directions when bidirectional.
  const Const& w = constant(1, "W");
  const Const& r = constant(2, "R");
  if (!w.is_float || !r.is_float) fail("W and R must be floating-point");
  if (w.dims.size() != 3 || w.dims[0] != dirs || w.dims[1] % gates != 0 || w.dims[2] != features)
    fail("W has shape " + dims_text(w.dims) + "; expected (" + std::to_string(dirs) + ", " + std::to_string(gates) +
         " * hidden_size, " + std::to_string(features) + ") for a " + direction + " node");
  const int64_t u = w.dims[1] / gates;
  if (attr_int("hidden_size", u) != u)
    fail("hidden_size " + std::to_string(attr_int("hidden_size", u)) + " does not match W " + dims_text(w.dims));
  if (r.dims != std::vector<int64_t>{dirs, gates * u, u})
    fail("R has shape " + dims_text(r.dims) + "; expected " + dims_text({dirs, gates * u, u}));
  const Const* b = optional_constant(3, "B");
  if (b && (!b->is_float || b->dims != std::vector<int64_t>{dirs, 2 * gates * u}))
    fail("B has shape " + dims_text(b->dims) + "; expected " + dims_text({dirs, 2 * gates * u}));
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
    if (both)
      fail(std::string(role) + " comes from the graph; a bidirectional node is imported only with zero initial "
           "states (absent or constant)");
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
  Planned& p = plan(both ? "Bidirectional" : cls);
  if (both) p.wrapped = cls;
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
  // Direction d's matrix starts at d * G*U * rows.
  auto keras_matrix = [&](const std::vector<float>& onnx, int64_t rows, int64_t d) {
    Tensor k = Tensor::empty({rows, gates * u});
    const float* from = onnx.data() + d * gates * u * rows;
    for (int64_t g = 0; g < gates; ++g)
      for (int64_t j = 0; j < u; ++j)
        for (int64_t i = 0; i < rows; ++i)
          k.data()[i * gates * u + order[static_cast<size_t>(g)] * u + j] = from[(g * u + j) * rows + i];
    return k;
  };
  // A Bidirectional's weights are its inner layers': "forward_lstm/kernel", "backward_lstm/kernel", ...
  // (keras_config names the inner layer the same way).
  const std::string inner = lamina::detail::snake_case(cls);
  for (int64_t d = 0; d < dirs; ++d) {
    const std::string prefix = !both ? "" : (d == 0 ? "forward_" : "backward_") + inner + "/";
    p.weights[prefix + "kernel"] = keras_matrix(w.f, features, d);
    p.weights[prefix + "recurrent_kernel"] = keras_matrix(r.f, u, d);
    if (!b) continue;
    // GRU with linear_before_reset keeps the two rows (Keras' reset_after bias); elsewhere the
    // recurrent biases add to the input ones.
    Tensor bias = Tensor::zeros(p.reset_after ? Shape{2, gates * u} : Shape{gates * u});
    const float* from = b->f.data() + d * 2 * gates * u;
    for (int64_t g = 0; g < gates; ++g)
      for (int64_t j = 0; j < u; ++j) {
        const int64_t wb = g * u + j, rb = wb + gates * u;
        const int64_t at = order[static_cast<size_t>(g)] * u + j;
        if (p.reset_after) {
          bias.data()[at] = from[wb];
          bias.data()[gates * u + at] = from[rb];
        } else {
          bias.data()[at] = from[wb] + from[rb];
        }
      }
    p.weights[prefix + "bias"] = bias;
  }

  // The outputs, batch-major in Lamina, time-major in the graph. Lamina's go_backwards sequence is
  // reversed relative to ONNX's reverse-direction Y.
  if (!n.outputs[0].empty()) {
    Flow y = flow_;
    y.shape = {steps, u};
    y.time_major = both ? TM::y2 : TM::y;
    y.reversed = p.go_backwards;
    y.name = n.outputs[0];
    activations_[y.name] = y;
  }
  if (n.outputs.size() > 1 && !n.outputs[1].empty()) {
    Flow h = flow_;
    h.shape = {u};
    h.axes = {0, 1};
    h.time_major = both ? TM::state2 : TM::state;
    h.name = n.outputs[1];
    activations_[h.name] = h;
  }
}

}  // namespace lamina::onnx::detail
