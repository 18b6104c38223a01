// The nodes the importer evaluates while reading the graph, because all their inputs are known:
// Constant, Identity and Cast of constants, and the little shape programs exporters write for a
// Reshape (PyTorch's x.view(x.size(0), -1) is Shape -> Gather -> Unsqueeze -> Concat). Shape of an
// activation gives its ONNX shape with the batch entry symbolic (kBatchDim), which may flow into
// a Reshape's first entry and nowhere else.
#include <algorithm>
#include <cmath>
#include <cstdint>

#include "onnx/import_state.hpp"

namespace lamina::onnx::detail {

namespace {

Const ints_const(std::vector<int64_t> values, std::vector<int64_t> dims) {
  return Const{.dims = std::move(dims), .is_float = false, .f = {}, .i = std::move(values), .unsupported = {}};
}

bool symbolic(int64_t v) { return v == kBatchDim || v == kUnknownDim; }

}  // namespace

Const Importer::shape_of(const Node& n, const std::vector<int64_t>& dims) const {
  const auto r = static_cast<int64_t>(dims.size());
  int64_t start = attr_int("start", 0), end = attr_int("end", r);  // opset 15
  if (start < 0) start += r;
  if (end < 0) end += r;
  start = std::clamp<int64_t>(start, 0, r);
  end = std::clamp<int64_t>(end, start, r);
  (void)n;
  std::vector<int64_t> v(dims.begin() + start, dims.begin() + end);
  const auto len = static_cast<int64_t>(v.size());
  return ints_const(std::move(v), {len});
}

void Importer::constant_node(const Node& n) {
  const std::string& op = n.op_type;
  for (size_t i = 1; i < n.outputs.size(); ++i)
    if (!n.outputs[i].empty()) fail("has " + std::to_string(n.outputs.size()) + " outputs; evaluated nodes have one");
  Const out;
  if (op == "Shape") {
    if (n.inputs.empty() || n.inputs[0].empty()) fail("has no input");
    auto act = activations_.find(n.inputs[0]);
    if (act != activations_.end()) {
      std::vector<int64_t> dims{kBatchDim};
      dims.insert(dims.end(), act->second.shape.begin(), act->second.shape.end());
      out = shape_of(n, dims);
    } else {
      out = shape_of(n, constant(0, "input").dims);
    }
  } else if (op == "Constant") {
    if (const Attribute* a = n.attribute("value"); a && a->t) {
      const TensorData& t = *a->t;
      if (!t.unsupported.empty()) fail("its value cannot be read: " + t.unsupported);
      out = Const{.dims = t.dims, .is_float = t.is_float(), .f = t.floats, .i = t.ints, .unsupported = {}};
    } else if (const Attribute* vf = n.attribute("value_float")) {
      out = Const{.dims = {}, .is_float = true, .f = {vf->f}, .i = {}, .unsupported = {}};
    } else if (const Attribute* vfs = n.attribute("value_floats")) {
      out = Const{.dims = {static_cast<int64_t>(vfs->floats.size())}, .is_float = true, .f = vfs->floats, .i = {},
                  .unsupported = {}};
    } else if (const Attribute* vi = n.attribute("value_int")) {
      out = ints_const({vi->i}, {});
    } else if (const Attribute* vis = n.attribute("value_ints")) {
      out = ints_const(vis->ints, {static_cast<int64_t>(vis->ints.size())});
    } else {
      fail("has no tensor, float or int value (sparse and string constants are not supported)");
    }
  } else if (op == "Identity") {
    out = constant(0, "input");
  } else if (op == "Cast") {
    out = constant(0, "input");
    const int64_t to = attr_int("to", kFloat);
    const bool to_float = to == kFloat || to == kDouble || to == kFloat16 || to == kBfloat16;
    if (to_float && !out.is_float) {
      for (int64_t v : out.i) {
        if (symbolic(v)) fail("casts a shape that depends on the batch size to floats");
        out.f.push_back(static_cast<float>(v));
      }
      out.i.clear(), out.is_float = true;
    } else if (!to_float && out.is_float) {
      for (float v : out.f) {
        if (!(std::fabs(v) < 9.2e18f)) fail("casts " + std::to_string(v) + " to an integer");
        out.i.push_back(to == kBool ? v != 0.f : static_cast<int64_t>(v));
      }
      out.f.clear(), out.is_float = false;
    }
  } else if (op == "Gather") {
    const Const& data = constant(0, "data");
    const std::vector<int64_t> idx = ints_of(constant(1, "indices"), "indices");
    int64_t axis = attr_int("axis", 0);
    if (axis < 0) axis += static_cast<int64_t>(data.dims.size());
    if (data.dims.empty() || axis != 0) fail("only gathers along axis 0 of a constant with rank >= 1");
    const int64_t rows = data.dims[0], inner = rows > 0 ? data.numel() / rows : 0;
    if (inner > 0 && static_cast<int64_t>(idx.size()) > (int64_t{1} << 26) / inner)
      fail("gathers " + std::to_string(idx.size()) + " rows of " + std::to_string(inner) + " values: too large a constant");
    out.is_float = data.is_float;
    out.dims = constant(1, "indices").dims;
    out.dims.insert(out.dims.end(), data.dims.begin() + 1, data.dims.end());
    for (int64_t k : idx) {
      const int64_t row = k < 0 ? k + rows : k;
      if (row < 0 || row >= rows) fail("index " + std::to_string(k) + " is out of range for " + std::to_string(rows) + " rows");
      for (int64_t j = 0; j < inner; ++j) {
        const auto at = static_cast<size_t>(row * inner + j);
        if (data.is_float) out.f.push_back(data.f[at]);
        else out.i.push_back(data.i[at]);
      }
    }
  } else if (op == "Unsqueeze" || op == "Squeeze") {
    out = constant(0, "data");
    std::vector<int64_t> axes;
    if (opset() < 13) axes = attr_ints("axes");
    else if (const Const* c = optional_constant(1, "axes")) axes = ints_of(*c, "axes");
    const auto rank = static_cast<int64_t>(out.dims.size() + (op == "Unsqueeze" ? axes.size() : 0));
    for (int64_t& a : axes) {
      if (a < -rank || a >= rank) fail("axis " + std::to_string(a) + " is out of range");
      if (a < 0) a += rank;
    }
    std::sort(axes.begin(), axes.end());
    if (std::adjacent_find(axes.begin(), axes.end()) != axes.end()) fail("repeats an axis");
    std::vector<int64_t> dims;
    if (op == "Unsqueeze") {
      size_t next = 0;
      for (int64_t a = 0; a < rank; ++a)
        dims.push_back(std::binary_search(axes.begin(), axes.end(), a) ? 1 : out.dims[next++]);
    } else {
      for (int64_t a = 0; a < static_cast<int64_t>(out.dims.size()); ++a) {
        const bool listed = std::binary_search(axes.begin(), axes.end(), a);
        if (listed && out.dims[static_cast<size_t>(a)] != 1) fail("squeezes an axis that is not 1");
        if (!(listed || (axes.empty() && out.dims[static_cast<size_t>(a)] == 1))) dims.push_back(out.dims[static_cast<size_t>(a)]);
      }
    }
    out.dims = dims;
  } else if (op == "Concat") {
    out.dims = {0};
    bool first = true;
    for (size_t k = 0; k < n.inputs.size(); ++k) {
      const Const& c = constant(k, "input");
      if (c.dims.size() != 1) fail("only concatenates 1-D constants; input " + std::to_string(k) + " has rank " + std::to_string(c.dims.size()));
      if (first) out.is_float = c.is_float, first = false;
      if (c.is_float != out.is_float) fail("mixes float and integer inputs");
      out.f.insert(out.f.end(), c.f.begin(), c.f.end());
      out.i.insert(out.i.end(), c.i.begin(), c.i.end());
      out.dims[0] += c.dims[0];
    }
  } else if (op == "Slice") {
    // Along one axis of a constant of any rank: PyTorch's F.pad reverses the rows of a (4, 2)
    // pads table with step -1 before flattening it.
    const Const& data = constant(0, "data");
    if (data.dims.empty()) fail("cannot slice a scalar");
    const auto rank = static_cast<int64_t>(data.dims.size());
    std::vector<int64_t> starts, ends, steps, axes;
    if (opset() < 10) {
      starts = attr_ints("starts"), ends = attr_ints("ends"), axes = attr_ints("axes");
    } else {
      starts = ints_of(constant(1, "starts"), "starts"), ends = ints_of(constant(2, "ends"), "ends");
      if (const Const* a = optional_constant(3, "axes")) axes = ints_of(*a, "axes");
      if (const Const* s = optional_constant(4, "steps")) steps = ints_of(*s, "steps");
    }
    if (starts.size() != 1 || ends.size() != 1 || steps.size() > 1 || axes.size() > 1)
      fail("expects one start, end, axis and step");
    const int64_t axis = axes.empty() ? 0 : axes[0] < 0 ? axes[0] + rank : axes[0];
    if (axis < 0 || axis >= rank) fail("axis " + std::to_string(axes[0]) + " is out of range for rank " + std::to_string(rank));
    const int64_t len = data.dims[static_cast<size_t>(axis)], step = steps.empty() ? 1 : steps[0];
    if (step == 0) fail("has step 0");
    int64_t outer = 1, inner = 1;
    for (int64_t d = 0; d < rank; ++d) (d < axis ? outer : inner) *= d == axis ? 1 : data.dims[static_cast<size_t>(d)];
    auto clamp = [&](int64_t v, int64_t lo, int64_t hi) { return std::clamp(v < 0 ? v + len : v, lo, hi); };
    const int64_t b0 = step > 0 ? clamp(starts[0], 0, len) : clamp(starts[0], -1, len - 1);
    const int64_t e = step > 0 ? clamp(ends[0], 0, len) : clamp(ends[0], -1, len - 1);
    out.is_float = data.is_float;
    int64_t kept = 0;
    for (int64_t o = 0; o < outer; ++o) {
      kept = 0;
      for (int64_t b = b0; step > 0 ? b < e : b > e; b += step, ++kept)
        for (int64_t k = 0; k < inner; ++k) {
          const auto at = static_cast<size_t>((o * len + b) * inner + k);
          if (data.is_float) out.f.push_back(data.f[at]);
          else out.i.push_back(data.i[at]);
        }
    }
    out.dims = data.dims;
    out.dims[static_cast<size_t>(axis)] = kept;
  } else if (op == "Add" || op == "Sub" || op == "Mul" || op == "Div") {
    if (n.inputs.size() != 2) fail("expects 2 inputs");
    const Const& a = constant(0, "A");
    const Const& b = constant(1, "B");
    if (a.is_float != b.is_float) fail("mixes float and integer inputs");
    const int64_t na = a.numel(), nb = b.numel();
    if (na != nb && na != 1 && nb != 1)
      fail("only evaluates same-sized inputs or a scalar with a tensor (got " + std::to_string(na) + " and " +
           std::to_string(nb) + " values)");
    out.is_float = a.is_float;
    out.dims = na >= nb ? a.dims : b.dims;
    const int64_t count = std::max(na, nb);
    for (int64_t k = 0; k < count; ++k) {
      const auto ia = static_cast<size_t>(na == 1 ? 0 : k), ib = static_cast<size_t>(nb == 1 ? 0 : k);
      if (out.is_float) {
        const float x = a.f[ia], y = b.f[ib];
        out.f.push_back(op == "Add" ? x + y : op == "Sub" ? x - y : op == "Mul" ? x * y : x / y);
      } else {
        const int64_t x = a.i[ia], y = b.i[ib];
        if (symbolic(x) || symbolic(y)) {
          out.i.push_back(kUnknownDim);
          continue;
        }
        if (op == "Div" && y == 0) fail("divides by zero");
        // Wrap-around arithmetic in unsigned: garbage in, garbage out, no undefined behaviour.
        const auto ux = static_cast<uint64_t>(x), uy = static_cast<uint64_t>(y);
        out.i.push_back(op == "Add"   ? static_cast<int64_t>(ux + uy)
                        : op == "Sub" ? static_cast<int64_t>(ux - uy)
                        : op == "Mul" ? static_cast<int64_t>(ux * uy)
                        : (x == INT64_MIN && y == -1) ? x : x / y);
      }
    }
  } else if (op == "Transpose") {
    out = constant(0, "data");
    std::vector<int64_t> perm = attr_ints("perm");
    if (out.dims.size() != 2 || !(perm.empty() || perm == std::vector<int64_t>{1, 0}))
      fail("only transposes 2-D constants");
    const int64_t rows = out.dims[0], cols = out.dims[1];
    Const t = out;
    t.dims = {cols, rows};
    for (int64_t r = 0; r < rows; ++r)
      for (int64_t c = 0; c < cols; ++c) {
        const auto from = static_cast<size_t>(r * cols + c), to = static_cast<size_t>(c * rows + r);
        if (out.is_float) t.f[to] = out.f[from];
        else t.i[to] = out.i[from];
      }
    out = std::move(t);
  } else if (op == "Reshape") {
    out = constant(0, "data");
    const std::vector<int64_t> shape = ints_of(constant(1, "shape"), "shape");
    std::vector<int64_t> dims;
    int64_t known = 1, infer = -1;
    for (size_t k = 0; k < shape.size(); ++k) {
      int64_t d = shape[k];
      if (d == 0 && attr_int("allowzero", 0) == 0 && k < out.dims.size()) d = out.dims[k];
      if (d == -1 && infer < 0) infer = static_cast<int64_t>(k);
      else if (d < 0 || symbolic(d) || (d > 0 && known > INT64_MAX / d)) fail("has an invalid target shape");
      else known *= d;
      dims.push_back(d);
    }
    if (infer >= 0) {
      if (known == 0 || out.numel() % known) fail("cannot infer the -1 entry");
      dims[static_cast<size_t>(infer)] = out.numel() / known;
    }
    int64_t total = 1;
    for (int64_t d : dims) total *= d;
    if (total != out.numel()) fail("reshapes " + std::to_string(out.numel()) + " values to " + std::to_string(total));
    out.dims = dims;
  } else if (op == "ConstantOfShape") {
    // PyTorch's zero initial states of a recurrent node: (1, batch, hidden) zeros; and the int64
    // zeros F.pad's pads are assembled from (ConstantOfShape -> Concat -> Reshape -> Slice ...).
    const std::vector<int64_t> shape = ints_of(constant(0, "input"), "input");
    float value = 0.f;
    std::optional<int64_t> int_value;
    if (const Attribute* a = n.attribute("value"); a && a->t) {
      if (a->t->is_float() && a->t->floats.size() == 1) value = a->t->floats[0];
      else if (!a->t->is_float() && a->t->ints.size() == 1) int_value = a->t->ints[0];
      else fail("takes only a single value");
    }
    out = Const{.dims = shape, .is_float = !int_value, .f = {}, .i = {}, .unsupported = {},
                .fill = int_value ? std::nullopt : std::optional<float>(value)};
    int64_t count = 1;
    for (int64_t d : shape) {
      if (symbolic(d) || d < 0 || d > kMaxSample || count > kMaxSample / std::max<int64_t>(d, 1)) {
        out.unsupported = "a ConstantOfShape of a shape known only at run time " + dims_text(shape) +
                          " (only a recurrent node's zero initial state may be one)";
        break;
      }
      count *= d;
    }
    if (out.unsupported.empty() && int_value) out.i.assign(static_cast<size_t>(count), *int_value);
    else if (out.unsupported.empty()) out.f.assign(static_cast<size_t>(count), value);
  } else {
    fail("operator '" + op + "' on constants is not supported (the importer evaluates Constant, Identity, Cast, "
         "Shape, Gather, Unsqueeze, Squeeze, Concat, Slice, Reshape, Transpose, ConstantOfShape and Add/Sub/Mul/Div "
         "at import time)");
  }
  consts_[n.outputs[0]] = std::move(out);
}

}  // namespace lamina::onnx::detail
