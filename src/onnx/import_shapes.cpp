// Shape nodes on the activation: Flatten, Reshape, Squeeze, Unsqueeze (one path, reshape_to),
// Transpose (no layer: it only changes which ONNX axis is which Lamina axis) and zero Pad. A
// flatten of a tensor Lamina holds in another order than ONNX keeps what it was flattened from,
// so feature_rows() can tell the next Dense or BatchNormalization how to permute its weights.
#include <algorithm>
#include <optional>

#include "onnx/import_state.hpp"

namespace lamina::onnx::detail {

namespace {

int64_t product(const std::vector<int64_t>& v) {
  int64_t n = 1;
  for (int64_t d : v) n *= d;
  return n;
}

// Whether Lamina's copy holds the values in ONNX's order: the axes longer than 1 keep their order.
bool same_order(const Flow& f) {
  if (f.permuted()) return false;
  int last = 0;
  for (size_t a = 1; a < f.axes.size(); ++a) {
    if (f.shape[a - 1] == 1) continue;
    if (f.axes[a] < last) return false;
    last = f.axes[a];
  }
  return true;
}

// For an activation about to be flattened: rows[j] = the ONNX flat index of Lamina's flat element
// j; empty when they are the same.
std::vector<int64_t> flatten_rows(const Flow& f) {
  if (same_order(f)) return {};
  const std::vector<int64_t> lam = lamina_shape(f);
  std::vector<int64_t> lam_stride(lam.size());
  int64_t stride = 1;
  for (size_t i = lam.size(); i-- > 0;) lam_stride[i] = stride, stride *= lam[i];
  const int64_t n = product(f.shape);
  std::vector<int64_t> rows(static_cast<size_t>(n)), idx(f.shape.size(), 0);
  for (int64_t onnx_flat = 0; onnx_flat < n; ++onnx_flat) {
    int64_t lam_flat = 0;
    for (size_t a = 1; a < f.axes.size(); ++a) lam_flat += idx[a - 1] * lam_stride[static_cast<size_t>(f.axes[a] - 1)];
    rows[static_cast<size_t>(lam_flat)] = onnx_flat;
    for (size_t a = idx.size(); a-- > 0;) {
      if (++idx[a] < f.shape[a]) break;
      idx[a] = 0;
    }
  }
  return rows;
}

}  // namespace

std::vector<int64_t> Importer::feature_rows() const {
  if (!flow_.permuted()) return {};
  Flow before;
  before.shape = flow_.flat_from_shape;
  before.axes = flow_.flat_from_axes;
  return flatten_rows(before);
}

void Importer::reshape_node(const Node& n) {
  const std::string& op = n.op_type;
  const int r = flow_.rank();
  auto normalized = [&](std::vector<int64_t> axes, int rank) {
    for (int64_t& a : axes) {
      if (a < -rank || a >= rank) fail("axis " + std::to_string(a) + " is out of range for rank " + std::to_string(rank));
      if (a < 0) a += rank;
      if (a == 0) fail("changes the batch axis; not supported");
    }
    std::sort(axes.begin(), axes.end());
    if (std::adjacent_find(axes.begin(), axes.end()) != axes.end()) fail("repeats an axis");
    return axes;
  };
  auto axes_of = [&]() -> std::optional<std::vector<int64_t>> {
    if (opset() < 13) {
      if (!node_->attribute("axes")) return std::nullopt;
      return attr_ints("axes");
    }
    const Const* c = optional_constant(1, "axes");
    if (!c) return std::nullopt;
    return ints_of(*c, "axes");
  };
  std::vector<int64_t> target;
  if (op == "Flatten") {
    int64_t axis = attr_int("axis", 1);
    if (axis < 0) axis += r;
    if (axis != 1) fail("axis = " + std::to_string(attr_int("axis", 1)) + " is not supported; only axis 1 keeps the batch axis apart");
    target = {product(flow_.shape)};
  } else if (op == "Squeeze") {
    const auto axes = axes_of();
    std::vector<int64_t> drop = axes ? normalized(*axes, r) : std::vector<int64_t>{};
    for (int a = 1; a < r; ++a) {
      const bool listed = std::find(drop.begin(), drop.end(), a) != drop.end();
      const int64_t d = flow_.shape[static_cast<size_t>(a - 1)];
      if (listed && d != 1) fail("squeezes axis " + std::to_string(a) + " of " + act_text(flow_.shape) + ", which is not 1");
      if (!(listed || (!axes && d == 1))) target.push_back(d);
    }
  } else if (op == "Unsqueeze") {
    const auto axes = axes_of();
    if (!axes) fail("has no axes");
    const int out_rank = r + static_cast<int>(axes->size());
    const std::vector<int64_t> add = normalized(*axes, out_rank);
    size_t next = 0;
    for (int a = 1; a < out_rank; ++a)
      target.push_back(std::find(add.begin(), add.end(), a) != add.end() ? 1 : flow_.shape[next++]);
  } else {  // Reshape: the target includes the batch axis
    std::vector<int64_t> shape;
    if (opset() < 5) shape = attr_ints("shape");
    else shape = ints_of(constant(1, "the target shape"), "the target shape");
    const bool allow_zero = attr_int("allowzero", 0) != 0;
    if (shape.empty()) fail("reshapes to a scalar; the batch axis must stay");
    const int64_t first = shape[0];
    const bool batch_first = first == kBatchDim || (first == 0 && !allow_zero) || first == -1 ||
                             (fixed_batch_ > 0 && first == fixed_batch_);
    if (!batch_first)
      fail("the target shape " + dims_text(shape) + " does not keep the batch axis first (expected N, 0 or -1 there)");
    int64_t infer = -1, known = 1;
    for (size_t i = 1; i < shape.size(); ++i) {
      int64_t d = shape[i];
      if (d == 0 && !allow_zero) {
        if (i > flow_.shape.size()) fail("the target shape " + dims_text(shape) + " copies (0) an axis the input lacks");
        d = flow_.shape[i - 1];
      }
      if (d == kBatchDim || d == kUnknownDim)
        fail("the target shape " + dims_text(shape) + " depends on the batch size after its first entry");
      if (d == -1) {
        if (infer >= 0 || first == -1) fail("the target shape " + dims_text(shape) + " has more than one -1");
        infer = static_cast<int64_t>(i - 1);
      } else if (d <= 0 || d > kMaxDim) {
        fail("the target shape " + dims_text(shape) + " has an entry that is not a dimension");
      } else {
        known *= d;
      }
      target.push_back(d);
    }
    const int64_t total = product(flow_.shape);
    if (infer >= 0) {
      if (known == 0 || total % known != 0)
        fail("cannot reshape " + act_text(flow_.shape) + " to " + dims_text(shape) + ": " + std::to_string(total) +
             " values per sample");
      target[static_cast<size_t>(infer)] = total / known;
    }
  }
  reshape_to(target);
  advance(n);
}

void Importer::reshape_to(const std::vector<int64_t>& target) {
  if (product(target) != product(flow_.shape))
    fail("cannot reshape " + act_text(flow_.shape) + " (" + std::to_string(product(flow_.shape)) +
         " values per sample) to " + act_text(target));
  if (target == flow_.shape) return;  // nothing to do (GlobalAveragePool's (C, 1, 1) -> Squeeze ...)
  if (target.size() == 1) {           // flatten: Lamina's order may differ; the next Dense takes care
    if (!same_order(flow_)) flow_.flat_from_shape = flow_.shape, flow_.flat_from_axes = flow_.axes;
    plan("Flatten");
    flow_.shape = target;
    flow_.axes = {0, 1};
    return;
  }
  if (!same_order(flow_))
    fail("reshapes " + act_text(flow_.shape) + ", which Lamina holds channels-last, to " + act_text(target) +
         "; only a flatten to (N, features) can be followed");
  Planned& p = plan("Reshape");
  if (target.size() == 3 && target[0] == 1 && !transposed_next(node_->outputs[0])) {
    // an (N, 1, H, W) image: the same values as Lamina's (N, H, W, 1). With more channels,
    // ONNX's order is not Lamina's: a Conv after it says so (require_image).
    p.target = Shape{target[1], target[2], 1};
    flow_.axes = kNchw;
  } else {
    p.target = Shape(target);
    flow_.axes.resize(target.size() + 1);
    for (size_t a = 0; a < flow_.axes.size(); ++a) flow_.axes[a] = static_cast<int>(a);
  }
  flow_.shape = target;
}

void Importer::transpose(const Node& n) {
  const int r = flow_.rank();
  std::vector<int64_t> perm = attr_ints("perm");
  if (perm.empty())
    for (int a = r - 1; a >= 0; --a) perm.push_back(a);  // ONNX's default: reverse
  std::vector<int64_t> sorted = perm;
  std::sort(sorted.begin(), sorted.end());
  for (int a = 0; a < r; ++a)
    if (sorted.size() != static_cast<size_t>(r) || sorted[static_cast<size_t>(a)] != a)
      fail("perm " + dims_text(perm) + " is not a permutation of the " + std::to_string(r) + " axes of " + act_text(flow_.shape));
  if (perm[0] != 0) fail("perm " + dims_text(perm) + " moves the batch axis; not supported");
  Flow out = flow_;
  for (int a = 1; a < r; ++a) {
    out.shape[static_cast<size_t>(a - 1)] = flow_.shape[static_cast<size_t>(perm[static_cast<size_t>(a)] - 1)];
    out.axes[static_cast<size_t>(a)] = flow_.axes[static_cast<size_t>(perm[static_cast<size_t>(a)])];
  }
  flow_ = out;  // the same Lamina tensor, seen through another axis order
  advance(n);
}

}  // namespace lamina::onnx::detail
