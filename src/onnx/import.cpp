// ONNX -> Model: walks the graph's nodes in order, keeping every activation (each ONNX value
// computed at run time) by name with its shape, layout and the Lamina tensor that holds it, so that
// any node can read any earlier value. Each layer node becomes a planned Lamina layer with its
// weights in Lamina's layout, called on the Lamina tensors of its inputs; elementwise ops and
// Concat of several activations become merge layers (Add, Subtract, Multiply, Maximum, Minimum,
// Average, Concatenate). The model is created only once every node has been read (all or
// nothing): a Sequential-shaped Model when the layers form a chain from one input to one output,
// a Functional Model otherwise. The values the graph computes from constants (Constant, Shape,
// Gather, ...) are in import_constants.cpp.
//
// Layout: ONNX images are (N, C, H, W), Lamina's (N, H, W, C). Flow::axes records where each ONNX
// axis lives in Lamina's copy; image layers require the NCHW <-> NHWC map, Transpose nodes only
// change the map, and a Flatten of a channels-first tensor records which ONNX feature each
// Lamina feature is (Flow::flat_from_*) so that the next Dense's kernel rows can be permuted to match.
#include <algorithm>
#include <cctype>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <optional>
#include <set>

#include "lamina/io.hpp"
#include "lamina/onnx.hpp"
#include "layers/keras_config.hpp"  // snake_case
#include "onnx/import_state.hpp"
#include "onnx/protobuf_reader.hpp"

namespace lamina {
namespace onnx::detail {

namespace {

// PyTorch names nodes by module path ("/features/features.0/Conv"): the module's name is the
// component before the op, "features.0". Empty for nodes outside a module ("/Relu").
std::string module_name(const std::string& node_name) {
  const size_t last = node_name.rfind('/');
  if (node_name.empty() || node_name[0] != '/' || last == 0 || last == std::string::npos) return "";
  const size_t prev = node_name.rfind('/', last - 1);
  std::string m = node_name.substr(prev + 1, last - prev - 1);
  if (m.empty() || std::isdigit(static_cast<unsigned char>(m[0]))) return "";  // nn.Sequential's "0": Lamina's names read better
  for (char c : m)
    if (!(std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '.' || c == '-')) return "";
  return m;
}

}  // namespace

Importer::Importer(std::string path, const Model& model) : path_(std::move(path)), model_(model) {
  opset_ = model.opsets.at("");
}

// --- helpers -----------------------------------------------------------------------------------------

void Importer::fail(const std::string& what) const {
  std::string where = path_ + ": ";
  if (node_)
    where += "node " + std::to_string(index_) + (node_->name.empty() ? "" : " '" + node_->name + "'") + " (" +
             node_->op_type + "): ";
  throw ValueError(where + what);
}

const Const* Importer::optional_constant(size_t input, const char* role) const {
  const Node& n = *node_;
  if (input >= n.inputs.size() || n.inputs[input].empty()) return nullptr;
  const std::string& name = n.inputs[input];
  auto it = consts_.find(name);
  if (it == consts_.end())
    fail(std::string(role) + " '" + name + "' must be a constant (an initializer or a Constant node), but it is "
         "computed from the model input at run time");
  if (!it->second.unsupported.empty()) fail(std::string(role) + " '" + name + "' cannot be read: " + it->second.unsupported);
  return &it->second;
}

const Const& Importer::constant(size_t input, const char* role) const {
  const Const* c = optional_constant(input, role);
  if (!c) fail("input " + std::to_string(input) + " (" + role + ") is missing");
  return *c;
}

std::vector<float> Importer::floats(size_t input, const char* role) const {
  const Const& c = constant(input, role);
  if (!c.is_float) fail(std::string(role) + " '" + node_->inputs[input] + "' holds integers; expected floating-point values");
  return c.f;
}

std::vector<int64_t> Importer::ints_of(const Const& c, const char* role) const {
  if (!c.is_float) return c.i;
  std::vector<int64_t> out;
  for (float v : c.f) {
    if (v != std::floor(v) || !(std::fabs(v) < 9.2e18f)) fail(std::string(role) + " must hold integers, got " + std::to_string(v));
    out.push_back(static_cast<int64_t>(v));
  }
  return out;
}

const Attribute* Importer::attr(const char* name, int32_t type) const {
  const Attribute* a = node_->attribute(name);
  if (a && a->type != type)
    fail(std::string("attribute '") + name + "' has attribute type " + std::to_string(a->type) + ", expected " +
         std::to_string(type) + " (see AttributeProto.AttributeType)");
  return a;
}

int64_t Importer::attr_int(const char* name, int64_t fallback) const {
  const Attribute* a = attr(name, kAttrInt);
  return a ? a->i : fallback;
}

float Importer::attr_float(const char* name, float fallback) const {
  const Attribute* a = attr(name, kAttrFloat);
  return a ? a->f : fallback;
}

std::string Importer::attr_string(const char* name, const std::string& fallback) const {
  const Attribute* a = attr(name, kAttrString);
  return a ? a->s : fallback;
}

std::vector<int64_t> Importer::attr_ints(const char* name) const {
  const Attribute* a = attr(name, kAttrInts);
  return a ? a->ints : std::vector<int64_t>{};
}

Planned& Importer::plan(const char* keras_class) {
  Planned p;
  p.cls = keras_class;
  p.origin = "node " + std::to_string(index_) + " '" + node_->name + "' (" + node_->op_type + ")";
  p.name = module_name(node_->name);
  p.output = node_->outputs[0];
  p.inputs = {flow_.source};
  flow_.source = static_cast<int>(plan_.size());  // the activation is now the new layer's output
  plan_.push_back(std::move(p));
  return plan_.back();
}

Planned* Importer::foldable() {
  if (flow_.source < 0) return nullptr;
  Planned& p = plan_[static_cast<size_t>(flow_.source)];
  const bool affine = p.cls == "Dense" || p.cls == "Conv2D" || p.cls == "Conv2DTranspose";
  const auto uses = uses_.find(flow_.name);
  const bool only_reader = uses != uses_.end() && uses->second == 1;  // this node
  return affine && p.output == flow_.name && p.activation == Activation::linear && only_reader ? &p : nullptr;
}

void Importer::advance(const Node& n) {
  flow_.name = n.outputs[0];
  activations_[flow_.name] = flow_;
}

bool Importer::transposed_next(const std::string& tensor) const {
  for (const Node& n : model_.graph.nodes)
    if (n.op_type != "Shape" && std::find(n.inputs.begin(), n.inputs.end(), tensor) != n.inputs.end())
      return n.op_type == "Transpose";
  return false;
}

void Importer::require_image(const char* what) const {
  if (flow_.rank() != 4)
    fail(std::string(what) + " needs an (N, C, H, W) image; its input is " + act_text(flow_.shape));
  if (flow_.axes == std::vector<int>{0, 1, 2, 3})
    fail(std::string(what) + " needs an (N, C, H, W) image; its input " + act_text(flow_.shape) +
         " was reshaped to an image with more than one channel first, which Lamina's channels-last layout "
         "cannot follow (it has no Permute layer); only reshapes to one channel, (N, 1, H, W), can be");
  if (flow_.axes != kNchw)
    fail(std::string(what) + " needs an (N, C, H, W) image; after the Transpose nodes before it, its input " +
         act_text(flow_.shape) + " is not in that order");
}

// --- the graph ----------------------------------------------------------------------------------------

void Importer::read_inputs() {
  const Graph& g = model_.graph;
  std::vector<const ValueInfo*> inputs;
  for (const ValueInfo& v : g.inputs)
    if (!consts_.count(v.name)) inputs.push_back(&v);
  if (inputs.empty()) fail("the graph has no inputs besides its initializers; a Lamina model takes at least one");
  for (size_t k = 0; k < inputs.size(); ++k) {
    const ValueInfo& in = *inputs[k];
    const std::string label = "the graph input '" + in.name + "'";
    if (in.name.empty()) fail("graph input " + std::to_string(k) + " has no name");
    if (activations_.count(in.name)) fail("two graph inputs are named '" + in.name + "'");
    if (!in.is_tensor) fail(label + " is not a tensor");
    if (in.elem_type != kFloat) fail(label + " has element type " + data_type_name(in.elem_type) + "; Lamina takes float32");
    if (!in.has_shape || in.dims.size() < 2)
      fail(label + " has " + (in.has_shape ? "rank " + std::to_string(in.dims.size()) : std::string("no shape")) +
           "; expected (batch, features...) with a known shape after the batch axis");
    if (in.dims[0] > 0) fixed_batch_ = in.dims[0];
    Flow f;
    f.name = in.name;
    f.source = -static_cast<int>(k) - 1;
    for (size_t i = 1; i < in.dims.size(); ++i) {
      if (in.dims[i] <= 0)
        fail(label + ": dimension " + std::to_string(i) + " is " +
             (in.dim_params[i].empty() ? std::string("unknown") : "symbolic ('" + in.dim_params[i] + "')") +
             "; only the batch (first) dimension may vary");
      f.shape.push_back(in.dims[i]);
    }
    int64_t values = 1;
    for (int64_t d : f.shape) {
      if (d > kMaxDim || values > kMaxSample / d) fail(label + " has shape " + dims_text(in.dims) + ", too large a sample");
      values *= d;
    }
    f.axes.resize(in.dims.size());
    for (size_t a = 0; a < f.axes.size(); ++a) f.axes[a] = static_cast<int>(a);
    // An image input becomes channels-last, unless the graph starts by transposing it (an exporter
    // from a channels-last framework): then Lamina takes the input exactly as the graph does.
    // Lamina's own files keep their inputs channels-last whatever node reads them first (a Pad or
    // a Slice needs no Transpose; graph_writer.hpp).
    if (f.rank() == 4 && !transposed_next(in.name) && model_.producer_name != "lamina") f.axes = kNchw;
    inputs_.push_back({in.name, lamina_shape(f)});
    activations_[in.name] = f;
    produced_.insert(in.name);
  }
}

lamina::Model Importer::run() {
  const Graph& g = model_.graph;
  for (const TensorData& t : g.initializers) {
    if (t.name.empty()) fail("an initializer (at byte " + std::to_string(t.offset) + ") has no name");
    if (consts_.count(t.name)) fail("two initializers are named '" + t.name + "'");
    consts_[t.name] = Const{.dims = t.dims, .is_float = t.is_float(), .f = t.floats, .i = t.ints,
                            .unsupported = t.unsupported};
  }
  if (g.sparse_initializers > 0 && g.initializers.empty())
    fail("the graph's weights are sparse initializers, which Lamina does not read");
  read_inputs();
  for (const Node& n : g.nodes) {  // who reads what, for folding (Shape reads only the shape)
    if (n.op_type == "Shape") continue;
    std::set<std::string> read(n.inputs.begin(), n.inputs.end());
    for (const std::string& in : read) ++uses_[in];
  }
  for (const ValueInfo& out : g.outputs) ++uses_[out.name];
  for (index_ = 0; index_ < g.nodes.size(); ++index_) {
    const Node& n = g.nodes[index_];
    node_ = &n;
    if (!n.domain.empty() && n.domain != "ai.onnx")
      fail("operators of domain '" + n.domain + "' are not supported (only the default ONNX domain)");
    if (n.op_type.empty()) fail("the node has no op_type");
    // RNN, LSTM and GRU may leave their first output (Y) out and give only Y_h.
    const bool recurrent_node = n.op_type == "RNN" || n.op_type == "LSTM" || n.op_type == "GRU";
    if (n.outputs.empty() || (n.outputs[0].empty() && !(recurrent_node && n.outputs.size() > 1 && !n.outputs[1].empty())))
      fail("the node has no output");
    for (const std::string& o : n.outputs)
      if (!o.empty() && (produced_.count(o) || consts_.count(o)))
        fail("its output '" + o + "' is already the name of another tensor (each ONNX name is assigned once)");
    bool takes_activation = false;
    for (const std::string& in : n.inputs) {
      if (in.empty()) continue;
      if (activations_.count(in)) takes_activation = true;
      else if (!consts_.count(in))
        fail("input '" + in + "' is not the graph input, an initializer or an earlier node's output (a missing "
             "initializer, or nodes out of order)");
    }
    if (n.op_type == "Shape" || !takes_activation) constant_node(n);
    else layer_node(n);
    for (const std::string& o : n.outputs)
      if (!o.empty()) produced_.insert(o);
  }
  node_ = nullptr;

  if (g.outputs.empty()) fail("the graph has no outputs");
  for (const ValueInfo& out : g.outputs) {
    if (consts_.count(out.name)) fail("the graph output '" + out.name + "' is a constant, not computed from the input");
    const auto it = activations_.find(out.name);
    if (it == activations_.end()) fail("the graph output '" + out.name + "' is not produced by any node");
    const Flow& f = it->second;
    if (f.source < 0)
      fail("the graph output '" + out.name + "' is the graph input '" + inputs_[static_cast<size_t>(-f.source - 1)].name +
           "' itself, passed through without a layer; a Lamina model's outputs come from layers");
    if (f.time_major != Flow::TimeMajor::no)
      fail("the graph output '" + out.name + "' is a recurrent node's time-major tensor; Lamina's outputs are "
           "batch-major (the Transpose back is missing)");
    if (f.permuted())
      fail("the graph output '" + out.name + "' is an image flattened channels-first " + act_text(f.shape) +
           "; Lamina flattens channels-last, so its values would come out in another order. Import up to a Dense "
           "after the flatten, or flatten a (C, 1, 1) tensor");
    if (out.has_shape && out.dims.size() == f.shape.size() + 1)
      for (size_t i = 1; i < out.dims.size(); ++i)
        if (out.dims[i] > 0 && out.dims[i] != f.shape[i - 1])
          fail("the graph output '" + out.name + "' is declared with shape " + dims_text(out.dims) +
               " but its layers compute " + act_text(f.shape));
    outputs_.push_back(f.source);
  }
  if (plan_.empty()) fail("the graph has no layers (it passes its input straight through)");
  return materialize();
}

// --- layer nodes --------------------------------------------------------------------------------------

void Importer::layer_node(const Node& n) {
  const std::string& op = n.op_type;
  if (op == "RNN" || op == "LSTM" || op == "GRU") return recurrent(n);
  std::vector<std::string> dynamic;  // the inputs computed at run time, in order
  for (const std::string& in : n.inputs)
    if (!in.empty() && activations_.count(in)) dynamic.push_back(in);
  if (dynamic.size() > 1) {
    if (op == "Add" || op == "Sub" || op == "Mul" || op == "Max" || op == "Min" || op == "Sum" || op == "Mean" ||
        op == "Concat")
      return merge(n);
    std::string names;
    for (const std::string& d : dynamic) names += (names.empty() ? "'" : ", '") + d + "'";
    fail("takes " + std::to_string(dynamic.size()) + " activations (" + names + "); Lamina combines activations "
         "only with its merge layers: Add, Sub, Mul, Max, Min, Sum, Mean (inputs of one shape) and Concat");
  }
  flow_ = activations_.at(dynamic[0]);
  if (flow_.ids && op != "Gather")
    fail("reads '" + flow_.name + "', the activation cast to integers; Lamina reads integer ids only as the indices "
         "of a Gather from a constant table (an Embedding)");
  if (time_major_node(n)) return;
  if ((op == "Sum" || op == "Mean") && n.inputs.size() == 1) return advance(n);  // of one input: the identity
  if (op == "Gemm") gemm(n);
  else if (op == "MatMul") matmul(n);
  else if (op == "Add") add_bias(n);
  else if (op == "Relu" || op == "Sigmoid" || op == "Tanh" || op == "Softmax" || op == "LogSoftmax" || op == "Elu" ||
           op == "LeakyRelu" || op == "Exp")
    activation(n);
  else if (op == "Flatten" || op == "Reshape" || op == "Squeeze" || op == "Unsqueeze") reshape_node(n);
  else if (op == "Conv") conv(n);
  else if (op == "ConvTranspose") conv_transpose(n);
  else if (op == "MaxPool" || op == "AveragePool") pool(n);
  else if (op == "GlobalAveragePool" || op == "GlobalMaxPool") global_pool(n);
  else if (op == "ReduceMean") reduce_mean(n);
  else if (op == "BatchNormalization") batch_norm(n);
  else if (op == "Dropout") dropout(n);
  else if (op == "Transpose") transpose(n);
  else if (op == "Pad") pad(n);
  else if (op == "Resize" || op == "Upsample") resize(n);
  else if (op == "Slice") slice(n);
  else if (op == "Identity") advance(n);
  else if (op == "Cast") {
    const int64_t to = attr_int("to", kFloat);
    if (to == kInt64 || to == kInt32) flow_.ids = true;  // for an Embedding's Gather: Lamina's own export
    else if (to != kFloat)
      fail("casts the activation to " + data_type_name(static_cast<int32_t>(to)) +
           "; Lamina computes in float32 (and casts to int64 or int32 only the ids of an Embedding's Gather)");
    advance(n);
  } else if (op == "Gather") {
    embedding(n);
  } else {
    const bool merge_op = op == "Sub" || op == "Mul" || op == "Max" || op == "Min" || op == "Sum" || op == "Mean" ||
                          op == "Concat";
    if (merge_op)
      fail("takes the activation '" + flow_.name + "' and a constant; Lamina imports " + op + " only between two or "
           "more activations (as a merge layer), and a constant only as the bias Add after a Gemm, MatMul or Conv");
    fail("operator '" + op + "' is not supported. Lamina imports graphs of Gemm, MatMul (+ Add), Conv, MaxPool, "
         "AveragePool, GlobalAveragePool, GlobalMaxPool, ReduceMean over H and W, BatchNormalization, Relu, "
         "LeakyRelu, Elu, Sigmoid, Tanh, Exp, Softmax, LogSoftmax, Flatten, Reshape, Squeeze, Unsqueeze, Transpose, "
         "Dropout, Identity, Cast, Pad (zeros, on H and W), Resize and Upsample (nearest or bilinear by whole factors), "
         "Slice (of H and W), RNN, LSTM and GRU, Gather of a table by the activation cast to integers (an "
         "Embedding), and Add, Sub, Mul, Max, Min, Sum, Mean and Concat of activations");
  }
}

void Importer::gemm(const Node& n) {
  if (n.inputs.size() < 2) fail("expects inputs A, B and optionally C; got " + std::to_string(n.inputs.size()));
  if (n.inputs[0] != flow_.name) fail("the activation must be input A (x @ W); W @ x is not supported");
  if (attr_int("transA", 0) != 0) fail("transA = 1 is not supported (the activation must be (N, K))");
  if (flow_.rank() != 2) fail("expects an (N, K) input, got " + act_text(flow_.shape) + "; flatten it first");
  const Const& b = constant(1, "B (the weight)");
  if (!b.is_float || b.dims.size() != 2) fail("B (the weight) must be a 2-D float tensor, got " + dims_text(b.dims));
  const bool trans_b = attr_int("transB", 0) != 0;
  const int64_t k = flow_.shape[0];
  const int64_t bk = trans_b ? b.dims[1] : b.dims[0], units = trans_b ? b.dims[0] : b.dims[1];
  if (bk != k)
    fail("B has shape " + dims_text(b.dims) + " (transB = " + std::to_string(trans_b) + "), so it takes " +
         std::to_string(bk) + " features, but its input has " + std::to_string(k));
  if (units <= 0) fail("B has shape " + dims_text(b.dims) + ": no output units");
  const float alpha = attr_float("alpha", 1.f), beta = attr_float("beta", 1.f);
  // kernel (K, units) = alpha * (transB ? B^T : B), rows in Lamina's feature order
  const std::vector<int64_t> rows = feature_rows();
  Tensor kernel = Tensor::empty({k, units});
  float* kw = kernel.data();
  for (int64_t j = 0; j < k; ++j) {
    const int64_t src = rows.empty() ? j : rows[static_cast<size_t>(j)];
    for (int64_t u = 0; u < units; ++u)
      kw[j * units + u] = alpha * b.f[static_cast<size_t>(trans_b ? u * k + src : src * units + u)];
  }
  Planned& p = plan("Dense");
  p.units = units;
  p.weights["kernel"] = kernel;
  if (const Const* c = optional_constant(2, "C (the bias)")) {
    if (!c->is_float) fail("C (the bias) must hold floats");
    const bool per_unit = c->numel() == units && !c->dims.empty() && c->dims.back() == units;
    if (!per_unit && c->numel() != 1)
      fail("C (the bias) has shape " + dims_text(c->dims) + "; expected (" + std::to_string(units) + ",), (1, " +
           std::to_string(units) + ") or a scalar");
    Tensor bias = Tensor::empty({units});
    for (int64_t u = 0; u < units; ++u) bias.data()[u] = beta * c->f[per_unit ? static_cast<size_t>(u) : 0];
    p.use_bias = true;
    p.weights["bias"] = bias;
  }
  flow_.shape = {units};
  flow_.flat_from_shape.clear(), flow_.flat_from_axes.clear();
  flow_.axes = {0, 1};
  advance(n);
}

void Importer::matmul(const Node& n) {
  if (n.inputs.size() != 2) fail("expects 2 inputs, got " + std::to_string(n.inputs.size()));
  if (n.inputs[0] != flow_.name) fail("the activation must be the first input (x @ W); W @ x is not supported");
  const Const& w = constant(1, "the weight (input 1)");
  if (!w.is_float || w.dims.size() != 2) fail("the weight must be a 2-D float tensor (K, units), got " + dims_text(w.dims));
  const int r = flow_.rank();
  if (flow_.axes[static_cast<size_t>(r - 1)] != r - 1)
    fail("multiplies along the last axis of " + act_text(flow_.shape) +
         ", which is not the last axis of Lamina's channels-last copy; flatten it first");
  const int64_t k = flow_.shape.back(), units = w.dims[1];
  if (w.dims[0] != k)
    fail("the weight has shape " + dims_text(w.dims) + " but its input " + act_text(flow_.shape) + " has " +
         std::to_string(k) + " features");
  const std::vector<int64_t> rows = feature_rows();
  Tensor kernel = Tensor::empty({k, units});
  for (int64_t j = 0; j < k; ++j) {
    const int64_t src = rows.empty() ? j : rows[static_cast<size_t>(j)];
    std::copy_n(w.f.begin() + src * units, units, kernel.data() + j * units);
  }
  Planned& p = plan("Dense");
  p.units = units;
  p.weights["kernel"] = kernel;
  flow_.shape.back() = units;
  flow_.flat_from_shape.clear(), flow_.flat_from_axes.clear();
  advance(n);
}

void Importer::add_bias(const Node& n) {
  if (n.inputs.size() != 2) fail("expects 2 inputs, got " + std::to_string(n.inputs.size()));
  const size_t ci = n.inputs[0] == flow_.name ? 1 : 0;
  Planned* p = foldable();
  if (!p || p->use_bias) {
    const auto uses = uses_.find(flow_.name);
    const bool shared = uses != uses_.end() && uses->second > 1;
    fail("adds a constant that is not the bias of a MatMul or Conv right before it" +
         std::string(shared ? " ('" + flow_.name + "' is also read by other nodes or is a graph output)" : "") +
         "; Lamina has no layer that adds a constant");
  }
  const Const& c = constant(ci, "the bias");
  if (!c.is_float) fail("the bias must hold floats");
  const int64_t units = p->units;
  bool ok = c.numel() == units;
  if (p->cls == "Dense") {
    ok = ok && !c.dims.empty() && c.dims.back() == units;
  } else {  // (C, 1, 1) or (1, C, 1, 1): along ONNX's channel axis
    const size_t d = c.dims.size();
    ok = ok && d >= 3 && d <= 4 && c.dims[d - 3] == units && c.dims[d - 2] == 1 && c.dims[d - 1] == 1;
  }
  if (!ok)
    fail("the bias has shape " + dims_text(c.dims) + "; expected " +
         (p->cls == "Dense" ? "(" + std::to_string(units) + ",)"
                                          : "(" + std::to_string(units) + ", 1, 1)") +
         " to fold into " + p->origin);
  p->use_bias = true;
  p->weights["bias"] = Tensor::from(c.f, {units});
  p->output = n.outputs[0];
  advance(n);
}

void Importer::activation(const Node& n) {
  const std::string& op = n.op_type;
  Activation act = Activation::linear;
  float slope = 0;
  bool leaky_layer = false;
  if (op == "Relu") {
    act = Activation::relu;
  } else if (op == "Sigmoid") {
    act = Activation::sigmoid;
  } else if (op == "Tanh") {
    act = Activation::tanh;
  } else if (op == "Exp") {
    act = Activation::exponential;
  } else if (op == "Elu") {
    const float alpha = attr_float("alpha", 1.f);
    if (std::fabs(alpha - 1.f) > 1e-6f) fail("alpha = " + std::to_string(alpha) + " is not supported (Lamina's elu has alpha 1)");
    act = Activation::elu;
  } else if (op == "LeakyRelu") {
    slope = attr_float("alpha", 0.01f);
    if (slope == 0.2f) act = Activation::leaky_relu;  // Lamina's leaky_relu activation: Keras' default slope
    else leaky_layer = true;
  } else {  // Softmax, LogSoftmax: along one axis that must be Lamina's last
    const int r = flow_.rank();
    int64_t axis = attr_int("axis", opset() >= 13 ? -1 : 1);
    if (axis < -r || axis >= r) fail("axis " + std::to_string(axis) + " is out of range for " + act_text(flow_.shape));
    if (axis < 0) axis += r;
    if (axis == 0) fail("normalizes over the batch axis; not supported");
    if (opset() < 13) {  // before opset 13: over all axes from `axis` on, flattened together
      int64_t tail = 1;
      for (int64_t a = axis; a < r; ++a) tail *= flow_.shape[static_cast<size_t>(a - 1)];
      if (tail != flow_.shape[static_cast<size_t>(axis - 1)])
        fail("(opset " + std::to_string(opset()) + ") normalizes over axes " + std::to_string(axis) + ".." +
             std::to_string(r - 1) + " of " + act_text(flow_.shape) + " together; Lamina's softmax takes one axis");
    }
    if (flow_.axes[static_cast<size_t>(axis)] != r - 1)
      fail("normalizes over axis " + std::to_string(axis) + " of " + act_text(flow_.shape) +
           ", which is not the last axis of Lamina's channels-last copy (Lamina normalizes over the last axis)");
    act = op == "Softmax" ? Activation::softmax : Activation::log_softmax;
  }
  if (!leaky_layer) {
    if (Planned* p = foldable()) {  // Dense / Conv2D's own activation, as Keras writes it
      p->activation = act;
      p->output = n.outputs[0];
      advance(n);
      return;
    }
  }
  Planned& p = plan(leaky_layer ? "LeakyReLU" : "Activation");
  p.activation = act;
  p.value = slope;
  advance(n);
}

void Importer::batch_norm(const Node& n) {
  if (n.inputs.size() != 5) fail("expects 5 inputs (X, scale, B, mean, var), got " + std::to_string(n.inputs.size()));
  for (size_t i = 1; i < n.outputs.size(); ++i)
    if (!n.outputs[i].empty())
      fail("has training-mode outputs (running mean and variance); export the model in eval mode");
  if (attr_int("training_mode", 0) != 0) fail("training_mode = 1 is not supported; export the model in eval mode");
  if (opset() < 9 && attr_int("spatial", 1) != 1) fail("spatial = 0 is not supported");
  const int r = flow_.rank();
  if (flow_.axes[1] != r - 1)
    fail("normalizes axis 1 of " + act_text(flow_.shape) + ", which is not the last (channel) axis of Lamina's "
         "copy; only (N, C) features and (N, C, H, W) images are supported");
  const int64_t c = flow_.shape[0];
  std::vector<int64_t> rows;
  Planned& p = plan("BatchNormalization");
  const char* names[4] = {"gamma", "beta", "moving_mean", "moving_variance"};
  const char* roles[4] = {"scale", "B (the shift)", "mean", "var"};
  for (size_t i = 0; i < 4; ++i) {
    const std::vector<float> v = floats(i + 1, roles[i]);
    if (static_cast<int64_t>(v.size()) != c)
      fail(std::string(roles[i]) + " has " + std::to_string(v.size()) + " values; its input " + act_text(flow_.shape) +
           " has " + std::to_string(c) + " channels");
    if (i == 0) rows = feature_rows();  // sized like v: c features
    Tensor t = Tensor::empty({c});
    for (int64_t j = 0; j < c; ++j) t.data()[j] = v[static_cast<size_t>(rows.empty() ? j : rows[static_cast<size_t>(j)])];
    p.weights[names[i]] = t;
  }
  // ONNX's momentum is Keras' (moving = moving * momentum + batch * (1 - momentum)); PyTorch
  // exports 1 - its own momentum, 0.9 by default, which is also ONNX's default.
  p.momentum = attr_float("momentum", 0.9f);
  p.epsilon = attr_float("epsilon", 1e-5f);
  if (!(p.momentum >= 0.f && p.momentum <= 1.f)) fail("momentum " + std::to_string(p.momentum) + " is outside [0, 1]");
  if (!(p.epsilon >= 0.f)) fail("epsilon " + std::to_string(p.epsilon) + " is negative");
  advance(n);
}

// How Lamina holds an activation, for messages about two that differ.
std::string layout_text(const Flow& f) {
  if (f.permuted()) return "features flattened from a channels-first " + act_text(f.flat_from_shape);
  if (f.rank() == 4 && f.axes == kNchw) return "an NCHW image held channels-last (NHWC)";
  bool same = true;
  for (size_t a = 0; a < f.axes.size(); ++a) same = same && f.axes[a] == static_cast<int>(a);
  if (same) return "in the graph's axis order";
  std::string s = "with ONNX axes (";
  for (size_t a = 0; a < f.axes.size(); ++a) s += (a ? ", " : "") + std::to_string(f.axes[a]);
  return s + ") as Lamina's";
}

// Several activations combined: a merge layer called on their Lamina tensors. Every operand must
// be an activation of the same ONNX shape (Concat: the same but along its axis), held by Lamina in
// the same layout, so that Lamina's elementwise or concatenated values are ONNX's.
void Importer::merge(const Node& n) {
  const std::string& op = n.op_type;
  std::vector<const Flow*> ins;
  for (size_t i = 0; i < n.inputs.size(); ++i) {
    const std::string& in = n.inputs[i];
    if (in.empty()) fail("input " + std::to_string(i) + " is empty");
    const auto it = activations_.find(in);
    if (it == activations_.end())
      fail("input " + std::to_string(i) + " '" + in + "' is a constant, beside activations; Lamina's merge layers "
           "combine activations only");
    ins.push_back(&it->second);
  }
  const Flow& a = *ins[0];
  Flow out = a;
  const char* cls = op == "Add" || op == "Sum" ? "Add"
                    : op == "Sub"              ? "Subtract"
                    : op == "Mul"              ? "Multiply"
                    : op == "Max"              ? "Maximum"
                    : op == "Min"              ? "Minimum"
                    : op == "Mean"             ? "Average"
                                               : "Concatenate";
  if (op == "Sub" && ins.size() != 2) fail("expects 2 inputs, got " + std::to_string(ins.size()));
  auto same_layout = [&](size_t k) {
    const Flow& b = *ins[k];
    if (b.axes != a.axes || b.flat_from_shape != a.flat_from_shape || b.flat_from_axes != a.flat_from_axes)
      fail("its inputs '" + a.name + "' " + act_text(a.shape) + " and '" + b.name + "' " + act_text(b.shape) +
           " are held by Lamina in different layouts (" + layout_text(a) + ", and " + layout_text(b) +
           "), so a merge layer would combine values that do not correspond");
  };
  int64_t keras_axis = -1;
  if (op == "Concat") {
    const int r = a.rank();
    if (!node_->attribute("axis")) fail("has no axis attribute");
    int64_t axis = attr_int("axis", 1);
    if (axis < -r || axis >= r) fail("axis " + std::to_string(axis) + " is out of range for " + act_text(a.shape));
    if (axis < 0) axis += r;
    if (axis == 0) fail("concatenates along the batch axis; Lamina concatenates the features of each sample");
    const auto at = static_cast<size_t>(axis - 1);
    for (size_t k = 0; k < ins.size(); ++k) {
      const Flow& b = *ins[k];
      if (b.permuted())
        fail("concatenates '" + b.name + "', " + layout_text(b) + "; Lamina flattens channels-last, so the "
             "features would not line up with the next layer's weights. Concatenate before the flatten");
      bool fits = b.rank() == r;
      for (size_t d = 0; fits && d < b.shape.size(); ++d) fits = d == at || b.shape[d] == a.shape[d];
      if (!fits)
        fail("concatenates " + act_text(a.shape) + " ('" + a.name + "') and " + act_text(b.shape) + " ('" + b.name +
             "') along axis " + std::to_string(axis) + "; every other axis must match");
      same_layout(k);
      if (k > 0) out.shape[at] += b.shape[at];
    }
    const int lamina_axis = a.axes[static_cast<size_t>(axis)];
    keras_axis = lamina_axis == r - 1 ? -1 : lamina_axis;  // NCHW's channels (1) are Lamina's last axis
  } else {
    for (size_t k = 1; k < ins.size(); ++k) {
      const Flow& b = *ins[k];
      if (b.shape != a.shape)
        fail("combines " + act_text(a.shape) + " ('" + a.name + "') and " + act_text(b.shape) + " ('" + b.name +
             "'); Lamina's " + cls + " layer takes inputs of one shape (no broadcasting between activations)");
      same_layout(k);
    }
  }
  flow_ = out;
  Planned& p = plan(cls);
  p.name = "";  // the module's name belongs to its own layers; a merge gets Lamina's ("add", "concatenate_1")
  p.axis = keras_axis;
  p.inputs.clear();
  for (const Flow* f : ins) p.inputs.push_back(f->source);
  advance(n);
}

void Importer::dropout(const Node& n) {
  if (n.outputs.size() > 1 && !n.outputs[1].empty()) fail("its mask output is not supported; export in eval mode");
  float rate = 0.5f;  // ONNX's default
  if (opset() < 12) {
    rate = attr_float("ratio", 0.5f);
  } else if (const Const* c = optional_constant(1, "ratio")) {
    if (!c->is_float || c->numel() != 1) fail("ratio must be one float");
    rate = c->f[0];
  }
  if (!(rate >= 0.f && rate < 1.f)) fail("ratio " + std::to_string(rate) + " is outside [0, 1)");
  if (rate > 0.f) plan("Dropout").value = rate;  // the identity in predict; regularizes fine-tuning
  advance(n);
}

// Gather(table, ids, axis 0), the ids an activation cast to integers: an Embedding whose
// embeddings are the table (Lamina's own export of Embedding, layers/embedding.cpp).
void Importer::embedding(const Node& n) {
  if (n.inputs.size() != 2 || n.inputs[1] != flow_.name || activations_.count(n.inputs[0]))
    fail("gathers from the activation '" + flow_.name + "'; Lamina imports Gather only as an Embedding: a constant "
         "table (input 0) indexed by the activation cast to integers (input 1)");
  if (!flow_.ids)
    fail("indexes with '" + flow_.name + "', which holds floats; an Embedding's Gather takes the activation cast to "
         "int64 or int32");
  if (attr_int("axis", 0) != 0) fail("gathers along axis " + std::to_string(attr_int("axis", 0)) + "; an Embedding "
                                     "gathers rows (axis 0)");
  const Const& table = constant(0, "data (the embeddings)");
  if (!table.is_float || table.dims.size() != 2 || table.dims[0] < 1 || table.dims[1] < 1)
    fail("its table has shape " + dims_text(table.dims) + "; an Embedding's is (input_dim, output_dim) of floats");
  if (flow_.permuted() || flow_.time_major != Flow::TimeMajor::no)
    fail("its ids are a reordered tensor; an Embedding reads the ids as the graph input gives them");
  Planned& p = plan("Embedding");
  p.input_dim = table.dims[0];
  p.units = table.dims[1];
  p.weights["embeddings"] = Tensor::from(table.f, Shape{table.dims[0], table.dims[1]});
  flow_.ids = false;
  flow_.shape.push_back(table.dims[1]);
  flow_.axes.push_back(flow_.rank() - 1);
  advance(n);
}

// --- the model ----------------------------------------------------------------------------------------

// The Keras config of a planned layer: what its class's from_config reads.
Json keras_config(const Planned& p) {
  auto size2 = [](Size2 v) { return Json::array({v.h, v.w}); };
  const char* padding = p.padding == Padding::same ? "same" : "valid";
  const std::string& c = p.cls;
  if (c == "Dense") return {{"units", p.units}, {"activation", p.activation.name()}, {"use_bias", p.use_bias}};
  if (c == "Conv2D")
    return {{"filters", p.units}, {"kernel_size", size2(p.window)}, {"strides", size2(p.strides)}, {"padding", padding},
            {"activation", p.activation.name()}, {"use_bias", p.use_bias}};
  if (c == "Conv2DTranspose")
    return {{"filters", p.units}, {"kernel_size", size2(p.window)}, {"strides", size2(p.strides)}, {"padding", padding},
            {"output_padding", p.output_padding ? size2(*p.output_padding) : Json(nullptr)},
            {"dilation_rate", size2(p.dilation)}, {"activation", p.activation.name()}, {"use_bias", p.use_bias}};
  if (c == "MaxPooling2D" || c == "AveragePooling2D")
    return {{"pool_size", size2(p.window)}, {"strides", size2(p.strides)}, {"padding", padding}};
  if (c == "GlobalAveragePooling2D") return {{"keepdims", p.keepdims}};
  if (c == "BatchNormalization") return {{"momentum", p.momentum}, {"epsilon", p.epsilon}};
  if (c == "Reshape") return {{"target_shape", p.target.dims()}};
  if (c == "Activation") return {{"activation", p.activation.name()}};
  if (c == "LeakyReLU") return {{"negative_slope", p.value}};
  if (c == "Dropout") return {{"rate", p.value}};
  if (c == "Embedding") return {{"input_dim", p.input_dim}, {"output_dim", p.units}};
  if (c == "Concatenate") return {{"axis", p.axis}};
  if (c == "UpSampling2D")
    return {{"size", size2(p.factors)},
            {"interpolation", p.interpolation == Interpolation::bilinear ? "bilinear" : "nearest"}};
  const Json margins = Json::array({Json::array({p.margins.top, p.margins.bottom}),
                                    Json::array({p.margins.left, p.margins.right})});
  if (c == "ZeroPadding2D") return {{"padding", margins}};
  if (c == "Cropping2D") return {{"cropping", margins}};
  auto recurrent = [&](const std::string& cls) {
    Json j = {{"units", p.units}, {"activation", p.activation.name()}, {"use_bias", p.use_bias},
              {"return_sequences", p.return_sequences}, {"go_backwards", p.go_backwards}};
    if (cls != "SimpleRNN") j["recurrent_activation"] = p.recurrent_activation.name();
    if (cls == "GRU") j["reset_after"] = p.reset_after;
    return j;
  };
  if (c == "SimpleRNN" || c == "LSTM" || c == "GRU") return recurrent(c);
  if (c == "Bidirectional") {  // the inner layer named as its weights are (import_rnn.cpp)
    Json inner = recurrent(p.wrapped);
    inner["name"] = lamina::detail::snake_case(p.wrapped);
    return {{"merge_mode", p.merge_mode.empty() ? "concat" : p.merge_mode},
            {"layer", {{"class_name", p.wrapped}, {"config", inner}}}};
  }
  return Json::object();  // Flatten, Add, Subtract, Multiply, Average, Maximum, Minimum
}

lamina::Model Importer::materialize() {
  // The layers the outputs depend on (nodes no output reads are left out, as ONNX runtimes do).
  // plan_ is in the graph's order, so each layer's inputs come before it.
  const size_t count = plan_.size();
  std::vector<bool> live(count, false);
  for (int s : outputs_) live[static_cast<size_t>(s)] = true;
  for (size_t i = count; i-- > 0;)
    if (live[i])
      for (int s : plan_[i].inputs)
        if (s >= 0) live[static_cast<size_t>(s)] = true;
  auto readers = [&](int t) {  // live layers and outputs that take tensor t
    int k = static_cast<int>(std::count(outputs_.begin(), outputs_.end(), t));
    for (size_t j = 0; j < count; ++j)
      if (live[j]) k += static_cast<int>(std::count(plan_[j].inputs.begin(), plan_[j].inputs.end(), t));
    return k;
  };
  // GlobalAveragePool's (C, 1, 1) then Flatten: one GlobalAveragePooling2D, as Keras writes it.
  for (size_t i = 0; i < count; ++i) {
    if (!live[i] || plan_[i].cls != "GlobalAveragePooling2D" || !plan_[i].keepdims) continue;
    const int gap = static_cast<int>(i);
    if (readers(gap) != 1) continue;
    for (size_t j = i + 1; j < count; ++j) {
      if (!live[j] || plan_[j].inputs != std::vector<int>{gap}) continue;
      if (plan_[j].cls == "Flatten") {
        plan_[i].keepdims = false;
        live[j] = false;
        const int flat = static_cast<int>(j);
        for (size_t k = 0; k < count; ++k) std::replace(plan_[k].inputs.begin(), plan_[k].inputs.end(), flat, gap);
        std::replace(outputs_.begin(), outputs_.end(), flat, gap);
      }
      break;
    }
  }
  std::vector<int> order;
  for (size_t i = 0; i < count; ++i)
    if (live[i]) order.push_back(static_cast<int>(i));
  if (order.empty()) throw ValueError(path_ + ": the graph has no layers (it passes its input straight through)");
  for (size_t k = 0; k < inputs_.size(); ++k) {  // every input must reach an output, as Keras' graphs
    const int t = -static_cast<int>(k) - 1;
    bool used = false;
    for (int i : order) used = used || std::count(plan_[static_cast<size_t>(i)].inputs.begin(),
                                                   plan_[static_cast<size_t>(i)].inputs.end(), t) > 0;
    if (!used)
      throw ValueError(path_ + ": the graph input '" + inputs_[k].name + "' does not reach any graph output; a Lamina "
                       "model uses every one of its inputs");
  }
  // A chain from one input to one output: a Sequential, as before graphs were read.
  bool chain = inputs_.size() == 1 && outputs_.size() == 1 && outputs_[0] == order.back();
  for (size_t k = 0; chain && k < order.size(); ++k)
    chain = plan_[static_cast<size_t>(order[k])].inputs == std::vector<int>{k == 0 ? -1 : order[k - 1]};

  std::string name = std::filesystem::path(path_).stem().string();
  for (char& ch : name)
    if (!(std::isalnum(static_cast<unsigned char>(ch)) || ch == '_')) ch = '_';
  std::set<std::string> taken;
  std::vector<std::shared_ptr<Layer>> made(count);
  // A Conv2D run at stride 1 then subsampled: the pixels kept, a 1x1 MaxPooling2D after it.
  auto subsample = [&](int i) -> std::shared_ptr<Layer> {
    const Planned& p = plan_[static_cast<size_t>(i)];
    if (p.subsample == Size2(1, 1)) return nullptr;
    return layer_from_config("MaxPooling2D", {{"pool_size", Json::array({1, 1})},
                                              {"strides", Json::array({p.subsample.h, p.subsample.w})},
                                              {"padding", "valid"}});
  };
  // The layer is built from its Keras config through the registry, as from any JSON.
  auto make = [&](int i) {
    const Planned& p = plan_[static_cast<size_t>(i)];
    std::shared_ptr<Layer> l = layer_from_config(p.cls, keras_config(p));
    if (!p.name.empty() && !taken.count(p.name)) {
      l->set_name(p.name);
      taken.insert(p.name);
    }
    made[static_cast<size_t>(i)] = l;
    return l;
  };
  std::optional<lamina::Model> built;
  try {
    if (chain) {
      Sequential model(name.empty() ? "sequential" : name);
      model.add(layers::InputLayer(Shape(inputs_[0].shape)));
      taken.insert(model.layers().front()->name());
      for (int i : order) {
        model.add(make(i));
        taken.insert(model.layers().back()->name());
        if (std::shared_ptr<Layer> pick = subsample(i)) {
          model.add(pick);
          taken.insert(pick->name());
        }
      }
      model.build(Shape(inputs_[0].shape));
      built.emplace(std::move(model));
    } else {
      std::vector<KerasTensor> inputs, tensors(count), outputs;
      for (const GraphInput& in : inputs_) {
        inputs.push_back(Input(Shape(in.shape), in.name));
        taken.insert(in.name);
      }
      auto tensor = [&](int s) { return s < 0 ? inputs[static_cast<size_t>(-s - 1)] : tensors[static_cast<size_t>(s)]; };
      for (int i : order) {
        std::vector<KerasTensor> args;
        for (int s : plan_[static_cast<size_t>(i)].inputs) args.push_back(tensor(s));
        const std::shared_ptr<Layer> l = make(i);
        KerasTensor t = args.size() == 1 ? (*l)(args[0]) : (*l)(args);
        if (std::shared_ptr<Layer> pick = subsample(i)) t = (*pick)(t);
        tensors[static_cast<size_t>(i)] = t;
      }
      for (int s : outputs_) outputs.push_back(tensor(s));
      built.emplace(inputs, outputs, name.empty() ? "functional" : name);
    }
  } catch (const Error& e) {
    throw ValueError(path_ + ": the imported layers do not fit together (an importer bug): " + e.what());
  }
  // The file's weights, now that every layer has its own.
  for (int i : order) {
    const Planned& p = plan_[static_cast<size_t>(i)];
    Layer& layer = *made[static_cast<size_t>(i)];
    auto& weights = layer.weights();
    if (weights.size() != p.weights.size())
      throw ValueError(path_ + ": " + p.origin + ": " + layer.class_name() + " has " + std::to_string(weights.size()) +
                       " weights, the import made " + std::to_string(p.weights.size()) + " (an importer bug)");
    for (auto& w : weights) {
      auto it = p.weights.find(w.name);
      if (it == p.weights.end() || it->second.shape() != w.value.shape())
        throw ValueError(path_ + ": " + p.origin + ": weight '" + w.name + "' of " + layer.name() + " has shape " +
                         w.value.shape().str() + ", the import made " +
                         (it == p.weights.end() ? std::string("none") : it->second.shape().str()) + " (an importer bug)");
      std::copy_n(it->second.data(), it->second.numel(), w.value.data());
    }
  }
  return std::move(*built);
}

}  // namespace onnx::detail

// --- public -------------------------------------------------------------------------------------------

Model load_onnx(const std::string& path, OnnxInfo* info) {
  return load_onnx_from_bytes(io::read_file(path), path, info);
}

Model load_onnx_from_bytes(std::string_view bytes, const std::string& path, OnnxInfo* info) {
  if (bytes.empty()) throw IoError(path + ": the file is empty; not an ONNX model");
  onnx::detail::Model m;
  try {
    m = onnx::detail::parse_model(bytes);
  } catch (const onnx::detail::ProtoError& e) {
    throw IoError(path + ": not a valid ONNX model (truncated or corrupt): " + e.what());
  }
  if (!m.has_graph) throw IoError(path + ": ModelProto.graph is missing; not an ONNX model, or truncated");
  const auto opset = m.opsets.find("");
  if (opset == m.opsets.end() || opset->second <= 0)
    throw IoError(path + ": no opset_import for the default ONNX domain; the file is truncated or not an ONNX model");
  if (m.ir_version <= 0) throw IoError(path + ": ModelProto.ir_version is missing; not an ONNX model, or truncated");
  Model model = onnx::detail::Importer(path, m).run();
  if (info) {
    info->producer = m.producer_name + (m.producer_version.empty() ? "" : " " + m.producer_version);
    info->ir_version = m.ir_version;
    info->opset = opset->second;
    info->metadata = m.metadata;
  }
  return model;
}

bool is_onnx_file(const std::string& path) {
  const std::string ext = ".onnx";
  if (path.size() >= ext.size() && path.compare(path.size() - ext.size(), ext.size(), ext) == 0) return true;
  std::ifstream f(path, std::ios::binary);
  char head[9] = {};
  if (!f.read(head, 1)) return false;
  f.read(head + 1, 8);
  const bool safetensors = f.gcount() == 8 && head[8] == '{';
  return head[0] == 0x08 && !safetensors;  // field 1 (ir_version), varint: how every ONNX writer starts
}

}  // namespace lamina
