// ONNX -> Sequential: walks the graph's nodes in order with one activation flowing down a linear
// chain, turns each layer node into a planned Lamina layer with its weights in Lamina's layout,
// and creates the model only once every node has been read (all or nothing). The values the
// graph computes from constants (Constant, Shape, Gather, ...) are in import_constants.cpp.
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
  plan_.push_back(std::move(p));
  return plan_.back();
}

Planned* Importer::foldable() {
  if (plan_.empty()) return nullptr;
  Planned& p = plan_.back();
  const bool affine = p.cls == "Dense" || p.cls == "Conv2D";
  return affine && p.output == flow_.name && p.activation == Activation::linear ? &p : nullptr;
}

void Importer::advance(const Node& n) {
  flow_.name = n.outputs[0];
  activations_[flow_.name] = flow_.shape;
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

void Importer::read_input() {
  const Graph& g = model_.graph;
  std::vector<const ValueInfo*> inputs;
  for (const ValueInfo& v : g.inputs)
    if (!consts_.count(v.name)) inputs.push_back(&v);
  if (inputs.size() != 1) {
    std::string names;
    for (const ValueInfo* v : inputs) names += (names.empty() ? "'" : ", '") + v->name + "'";
    fail("the graph has " + std::to_string(inputs.size()) + " inputs besides its initializers" +
         (names.empty() ? "" : " (" + names + ")") + "; a Lamina model takes exactly one");
  }
  const ValueInfo& in = *inputs[0];
  const std::string label = "the graph input '" + in.name + "'";
  if (!in.is_tensor) fail(label + " is not a tensor");
  if (in.elem_type != kFloat) fail(label + " has element type " + data_type_name(in.elem_type) + "; Lamina takes float32");
  if (!in.has_shape || in.dims.size() < 2)
    fail(label + " has " + (in.has_shape ? "rank " + std::to_string(in.dims.size()) : std::string("no shape")) +
         "; expected (batch, features...) with a known shape after the batch axis");
  if (in.dims[0] > 0) fixed_batch_ = in.dims[0];
  flow_.name = in.name;
  for (size_t i = 1; i < in.dims.size(); ++i) {
    if (in.dims[i] <= 0)
      fail(label + ": dimension " + std::to_string(i) + " is " +
           (in.dim_params[i].empty() ? std::string("unknown") : "symbolic ('" + in.dim_params[i] + "')") +
           "; only the batch (first) dimension may vary");
    flow_.shape.push_back(in.dims[i]);
  }
  int64_t values = 1;
  for (int64_t d : flow_.shape) {
    if (d > kMaxDim || values > kMaxSample / d) fail(label + " has shape " + dims_text(in.dims) + ", too large a sample");
    values *= d;
  }
  flow_.axes.resize(in.dims.size());
  for (size_t a = 0; a < flow_.axes.size(); ++a) flow_.axes[a] = static_cast<int>(a);
  // An image input becomes channels-last, unless the graph starts by transposing it (an exporter
  // from a channels-last framework): then Lamina takes the input exactly as the graph does.
  if (flow_.rank() == 4 && !transposed_next(in.name)) flow_.axes = kNchw;
  input_shape_ = lamina_shape(flow_);
  activations_[in.name] = flow_.shape;
  produced_.insert(in.name);
}

Sequential Importer::run() {
  const Graph& g = model_.graph;
  for (const TensorData& t : g.initializers) {
    if (t.name.empty()) fail("an initializer (at byte " + std::to_string(t.offset) + ") has no name");
    if (consts_.count(t.name)) fail("two initializers are named '" + t.name + "'");
    consts_[t.name] = Const{.dims = t.dims, .is_float = t.is_float(), .f = t.floats, .i = t.ints,
                            .unsupported = t.unsupported};
  }
  if (g.sparse_initializers > 0 && g.initializers.empty())
    fail("the graph's weights are sparse initializers, which Lamina does not read");
  read_input();
  for (index_ = 0; index_ < g.nodes.size(); ++index_) {
    const Node& n = g.nodes[index_];
    node_ = &n;
    if (!n.domain.empty() && n.domain != "ai.onnx")
      fail("operators of domain '" + n.domain + "' are not supported (only the default ONNX domain)");
    if (n.op_type.empty()) fail("the node has no op_type");
    if (n.outputs.empty() || n.outputs[0].empty()) fail("the node has no output");
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

  if (g.outputs.size() != 1)
    fail("the graph has " + std::to_string(g.outputs.size()) + " outputs; a Lamina model has exactly one");
  const ValueInfo& out = g.outputs[0];
  if (consts_.count(out.name)) fail("the graph output '" + out.name + "' is a constant, not computed from the input");
  if (out.name != flow_.name)
    fail("the graph output '" + out.name + "' " +
         (activations_.count(out.name) ? "is not the end of the chain of layers (which ends at '" + flow_.name +
                                             "'); Lamina imports linear chains only"
                                       : std::string("is not produced by any node")));
  if (flow_.permuted())
    fail("the graph output is an image flattened channels-first " + act_text(flow_.shape) +
         "; Lamina flattens channels-last, so its values would come out in another order. Import up to a Dense "
         "after the flatten, or flatten a (C, 1, 1) tensor");
  if (out.has_shape && out.dims.size() == flow_.shape.size() + 1)
    for (size_t i = 1; i < out.dims.size(); ++i)
      if (out.dims[i] > 0 && out.dims[i] != flow_.shape[i - 1])
        fail("the graph output '" + out.name + "' is declared with shape " + dims_text(out.dims) +
             " but its layers compute " + act_text(flow_.shape));
  if (plan_.empty()) fail("the graph has no layers (it passes its input straight through)");
  return materialize();
}

// --- layer nodes --------------------------------------------------------------------------------------

void Importer::layer_node(const Node& n) {
  for (const std::string& in : n.inputs)
    if (activations_.count(in) && in != flow_.name)
      fail("it takes '" + in + "', an earlier activation, rather than the output of the layer before it ('" +
           flow_.name + "'); Lamina imports a linear chain of layers (no branches, skip or residual connections)");
  const std::string& op = n.op_type;
  if (op == "Gemm") gemm(n);
  else if (op == "MatMul") matmul(n);
  else if (op == "Add") add_bias(n);
  else if (op == "Relu" || op == "Sigmoid" || op == "Tanh" || op == "Softmax" || op == "LogSoftmax" || op == "Elu" ||
           op == "LeakyRelu" || op == "Exp")
    activation(n);
  else if (op == "Flatten" || op == "Reshape" || op == "Squeeze" || op == "Unsqueeze") reshape_node(n);
  else if (op == "Conv") conv(n);
  else if (op == "MaxPool" || op == "AveragePool") pool(n);
  else if (op == "GlobalAveragePool" || op == "GlobalMaxPool") global_pool(n);
  else if (op == "ReduceMean") reduce_mean(n);
  else if (op == "BatchNormalization") batch_norm(n);
  else if (op == "Dropout") dropout(n);
  else if (op == "Transpose") transpose(n);
  else if (op == "Pad") pad(n);
  else if (op == "Identity") advance(n);
  else if (op == "Cast") {
    if (attr_int("to", kFloat) != kFloat) fail("casts the activation to " + data_type_name(static_cast<int32_t>(attr_int("to", 0))) + "; Lamina computes in float32");
    advance(n);
  } else {
    fail("operator '" + op + "' is not supported. Lamina imports chains of Gemm, MatMul (+ Add), Conv, MaxPool, "
         "AveragePool, GlobalAveragePool, GlobalMaxPool, ReduceMean over H and W, BatchNormalization, Relu, "
         "LeakyRelu, Elu, Sigmoid, Tanh, Exp, Softmax, LogSoftmax, Flatten, Reshape, Squeeze, Unsqueeze, Transpose, "
         "Dropout, Identity, Cast and zero Pad");
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
  if (n.inputs[ci] == flow_.name) fail("adds the activation to itself; Lamina has no layer for that");
  Planned* p = foldable();
  if (!p || p->use_bias)
    fail("adds a constant that is not the bias of a MatMul or Conv right before it; Lamina has no layer that adds a "
         "constant");
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
  if (c == "MaxPooling2D" || c == "AveragePooling2D")
    return {{"pool_size", size2(p.window)}, {"strides", size2(p.strides)}, {"padding", padding}};
  if (c == "GlobalAveragePooling2D") return {{"keepdims", p.keepdims}};
  if (c == "BatchNormalization") return {{"momentum", p.momentum}, {"epsilon", p.epsilon}};
  if (c == "Reshape") return {{"target_shape", p.target.dims()}};
  if (c == "Activation") return {{"activation", p.activation.name()}};
  if (c == "LeakyReLU") return {{"negative_slope", p.value}};
  if (c == "Dropout") return {{"rate", p.value}};
  return Json::object();  // Flatten
}

Sequential Importer::materialize() {
  // GlobalAveragePool's (C, 1, 1) then Flatten: one GlobalAveragePooling2D, as Keras writes it.
  for (size_t i = 0; i + 1 < plan_.size(); ++i)
    if (plan_[i].cls == "GlobalAveragePooling2D" && plan_[i].keepdims && plan_[i + 1].cls == "Flatten") {
      plan_[i].keepdims = false;
      plan_.erase(plan_.begin() + static_cast<std::ptrdiff_t>(i) + 1);
    }
  std::string name = std::filesystem::path(path_).stem().string();
  for (char& ch : name)
    if (!(std::isalnum(static_cast<unsigned char>(ch)) || ch == '_')) ch = '_';
  Sequential model(name.empty() ? "sequential" : name);
  model.add(layers::InputLayer(Shape(input_shape_)));
  std::vector<std::shared_ptr<Layer>> made;
  std::set<std::string> taken = {model.layers().front()->name()};
  for (const Planned& p : plan_) {
    // The layer is built from its Keras config through the registry, as from any JSON.
    std::shared_ptr<Layer> l = layer_from_config(p.cls, keras_config(p));
    if (!p.name.empty() && !taken.count(p.name)) l->set_name(p.name);
    model.add(l);
    taken.insert(l->name());
    made.push_back(l);
  }
  try {
    model.build(Shape(input_shape_));
  } catch (const Error& e) {
    throw ValueError(path_ + ": the imported layers do not fit together (an importer bug): " + e.what());
  }
  // The file's weights, now that every layer has its own.
  for (size_t i = 0; i < made.size(); ++i) {
    const Planned& p = plan_[i];
    auto& weights = made[i]->weights();
    if (weights.size() != p.weights.size())
      throw ValueError(path_ + ": " + p.origin + ": " + made[i]->class_name() + " has " + std::to_string(weights.size()) +
                       " weights, the import made " + std::to_string(p.weights.size()) + " (an importer bug)");
    for (auto& w : weights) {
      auto it = p.weights.find(w.name);
      if (it == p.weights.end() || it->second.shape() != w.value.shape())
        throw ValueError(path_ + ": " + p.origin + ": weight '" + w.name + "' of " + made[i]->name() + " has shape " +
                         w.value.shape().str() + ", the import made " +
                         (it == p.weights.end() ? std::string("none") : it->second.shape().str()) + " (an importer bug)");
      std::copy_n(it->second.data(), it->second.numel(), w.value.data());
    }
  }
  return model;
}

}  // namespace onnx::detail

// --- public -------------------------------------------------------------------------------------------

Sequential load_onnx(const std::string& path, OnnxInfo* info) {
  return load_onnx_from_bytes(io::read_file(path), path, info);
}

Sequential load_onnx_from_bytes(std::string_view bytes, const std::string& path, OnnxInfo* info) {
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
  Sequential model = onnx::detail::Importer(path, m).run();
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
