// The importer's working state, shared by import.cpp (the graph of layers), import_images.cpp
// (Conv and pooling), import_shapes.cpp (Flatten, Reshape, Transpose...) and
// import_constants.cpp (the nodes evaluated at import time: Constant, Shape, Gather, Concat...).
// Internal.
//
// N = batch. "ONNX shape" is a tensor's shape in the ONNX graph without its batch entry; Lamina
// holds the same values channels-last, which `axes` records.
#pragma once

#include <cstdint>
#include <limits>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "lamina/layers.hpp"
#include "lamina/model.hpp"
#include "onnx/onnx_proto.hpp"

namespace lamina::onnx::detail {

// Entries of a shape computed from Shape(x): the batch size (unknown until run time), and a
// value derived from it by arithmetic (never resolvable).
constexpr int64_t kBatchDim = std::numeric_limits<int64_t>::min();
constexpr int64_t kUnknownDim = kBatchDim + 1;

inline const std::vector<int> kNchw = {0, 3, 1, 2};  // ONNX axis -> Lamina axis for an (N, C, H, W) image
// Bounds that keep every size computation far from int64 overflow: a dimension, a sample's values.
constexpr int64_t kMaxDim = int64_t{1} << 31;
constexpr int64_t kMaxSample = int64_t{1} << 40;

inline std::string dim_text(int64_t d) {
  return d == kBatchDim ? "N" : d == kUnknownDim ? "?" : std::to_string(d);
}

// "(N, 3, 12, 12)": an activation's ONNX shape with its batch axis.
inline std::string act_text(const std::vector<int64_t>& shape) {
  std::string s = "(N";
  for (int64_t d : shape) s += ", " + dim_text(d);
  return s + ")";
}

inline std::string dims_text(const std::vector<int64_t>& dims) {
  std::string s = "(";
  for (size_t i = 0; i < dims.size(); ++i) s += (i ? ", " : "") + dim_text(dims[i]);
  return s + (dims.size() == 1 ? ",)" : ")");
}

inline int64_t ceil_div(int64_t a, int64_t b) { return (a + b - 1) / b; }

// A value known at import time: an initializer, a Constant node's value or a shape computation.
struct Const {
  std::vector<int64_t> dims;
  bool is_float = true;
  std::vector<float> f;    // when is_float
  std::vector<int64_t> i;  // otherwise (may hold kBatchDim / kUnknownDim)
  std::string unsupported; // why the values cannot be used; empty if they can
  // ConstantOfShape's value: every entry is this one (its count may depend on the batch size,
  // then only this is known; PyTorch's zero initial states of a recurrent node).
  std::optional<float> fill{};
  int64_t numel() const {
    int64_t n = 1;
    for (int64_t d : dims) n *= d;
    return n;
  }
};

// A value the graph computes at run time (an activation): a graph input, or a node's output.
// Each ONNX name maps to one (Importer::activations_), so any node can read any earlier value.
struct Flow {
  std::string name;            // the ONNX tensor that holds it now
  // The Lamina tensor that holds it: plan_[source]'s output, or graph input -source - 1. Nodes
  // that add no layer (Transpose, Identity, a folded bias or activation) keep their input's.
  int source = -1;
  std::vector<int64_t> shape;  // its ONNX shape (no batch)
  std::vector<int> axes;       // ONNX axis a (0 = batch) is Lamina axis axes[a]
  // 1-D features flattened from a tensor Lamina holds in another order: that tensor's ONNX shape
  // and axes (feature_rows() in import.cpp says which ONNX feature each Lamina feature is). Kept
  // rather than the permutation itself, which is only built once a layer's weights show its size.
  std::vector<int64_t> flat_from_shape;
  std::vector<int> flat_from_axes;
  bool permuted() const { return !flat_from_axes.empty(); }
  // A sequence between the Transposes around a recurrent node (import_rnn.cpp): `shape` and `axes`
  // stay Lamina's batch-major ones while the graph holds it time-major (T, N, F), as a node's Y
  // (T, 1, N, U) or as a state (1, N, U). `reversed`: the graph's steps are in the opposite order
  // of Lamina's (a go_backwards layer's sequence before the Slice that reverses it). A
  // bidirectional node's Y (T, 2, N, U) and Y_h (2, N, U) are y2 and state2, and with the
  // direction axis moved beside the units, (T, N, 2, U) and (N, 2, U), y2_swapped and
  // state2_swapped; `shape` is then the Lamina output's once the merge is known ((T, U) before).
  enum class TimeMajor { no, sequence, y, state, y2, y2_swapped, state2, state2_swapped };
  TimeMajor time_major = TimeMajor::no;
  bool reversed = false;
  // Integer ids: the activation Cast to int64 or int32 (Lamina's Embedding export), which only a
  // Gather from a table (an Embedding) may read.
  bool ids = false;
  int rank() const { return static_cast<int>(shape.size()) + 1; }  // with the batch axis
};

// Lamina's per-sample shape of an activation: ONNX axis a holds dimension shape[a - 1] and is
// Lamina axis axes[a].
inline std::vector<int64_t> lamina_shape(const Flow& f) {
  std::vector<int64_t> lam(f.shape.size());
  for (size_t a = 1; a < f.axes.size(); ++a) lam[static_cast<size_t>(f.axes[a] - 1)] = f.shape[a - 1];
  return lam;
}

// One Lamina layer to create, with its weights in Lamina's layout: the importer's notes, which
// become the layer's Keras config (keras_config in import.cpp) and go through the layer registry.
struct Planned {
  std::string cls = "Activation";  // the Keras class name
  std::string origin;  // "node 3 '/fc/Gemm' (Gemm)", for messages
  std::string name;    // a layer name from the node's module path ("fc"), or "" for Lamina's default
  std::string output;  // the ONNX tensor it produces: a following bias or activation may fold into it
  int64_t units = 0;   // Dense units, Conv filters, Embedding output_dim
  int64_t input_dim = 0;  // Embedding: rows of its table
  bool use_bias = false;
  Activation activation = Activation::linear;
  Size2 window = 1, strides = 1;
  Padding padding = Padding::valid;
  // Conv2D: pixels kept after it (a MaxPooling2D with a 1x1 window and these strides), for
  // PyTorch's symmetric padding with a stride, which Lamina runs as a stride-1 'same' convolution
  // subsampled. 1 when none.
  Size2 subsample = 1;
  // UpSampling2D (size, interpolation); ZeroPadding2D and Cropping2D (margins). import_resize.cpp.
  Size2 factors = 1;
  Interpolation interpolation = Interpolation::nearest;
  Margins2 margins{};
  // Conv2DTranspose: Keras' output_padding (none: the size its padding implies) and dilation_rate.
  std::optional<Size2> output_padding{};
  Size2 dilation = 1;
  bool keepdims = false;
  Shape target;        // Reshape
  float value = 0;     // LeakyReLU slope, Dropout rate
  float momentum = 0.9f, epsilon = 1e-5f;
  std::map<std::string, Tensor> weights;  // by Lamina weight name: kernel, bias, gamma, ...
  std::vector<int> inputs;  // the Lamina tensors it is called on (Flow::source), in order
  int64_t axis = -1;        // Concatenate: the Keras axis (with the batch axis; -1 = last)
  // SimpleRNN, LSTM, GRU (import_rnn.cpp); activation above is theirs too.
  Activation recurrent_activation = Activation::sigmoid;
  bool return_sequences = false, go_backwards = false, reset_after = true;
  // Bidirectional (a bidirectional node): cls is "Bidirectional", `wrapped` the recurrent class,
  // merge_mode what the nodes after it do with the two directions ("" until they are read).
  std::string wrapped, merge_mode;
};

// Turns a parsed ONNX model into a lamina::Model, node by node: a Sequential-shaped one when the
// graph is a chain, a Functional one otherwise. Every failure throws through fail(), which names
// the file and the node being read.
class Importer {
 public:
  Importer(std::string path, const Model& model);
  lamina::Model run();

 private:
  // --- import.cpp, import_images.cpp, import_shapes.cpp: the graph of layers ---
  void read_inputs();
  void layer_node(const Node& n);
  void merge(const Node& n);  // Add, Sub, Mul, Max, Min, Sum, Mean, Concat of several activations
  void gemm(const Node& n);
  void matmul(const Node& n);
  void add_bias(const Node& n);
  void activation(const Node& n);
  void reshape_node(const Node& n);
  void reshape_to(const std::vector<int64_t>& target);
  void conv(const Node& n);
  void conv_transpose(const Node& n);
  void pool(const Node& n);
  void global_pool(const Node& n);
  void reduce_mean(const Node& n);
  void batch_norm(const Node& n);
  void dropout(const Node& n);
  void embedding(const Node& n);  // Gather(table, ids, axis 0)
  void transpose(const Node& n);
  // --- import_resize.cpp: Resize / Upsample, Pad and Slice on images ---
  void resize(const Node& n);
  void pad(const Node& n);
  void slice(const Node& n);
  // The Lamina axis (1 = H, 2 = W, 3 = C) of ONNX axis a of the current image; fails unless the
  // activation is an image (N, H, W, C) in Lamina, in any ONNX axis order.
  int image_axis(int64_t onnx_axis, const char* what) const;
  // --- import_rnn.cpp: RNN, LSTM, GRU and the time-major tensors around them ---
  void recurrent(const Node& n);
  // Transpose, Squeeze, Unsqueeze or Slice that enters, moves within or leaves the time-major
  // layout of a recurrent node's tensors; false when n is none of those (and flow_ is batch-major).
  bool time_major_node(const Node& n);
  // The two directions of a bidirectional node's Y or Y_h merged by n (a Reshape after the
  // Transpose, or a reduction over the direction axis): flow_ becomes the merged tensor.
  void merge_directions(const Node& n);
  void require_image(const char* what) const;
  // Whether the first node that takes `tensor` (Shape aside) is a Transpose: then an image-shaped
  // tensor is in a channels-last exporter's order, which that Transpose turns into NCHW.
  bool transposed_next(const std::string& tensor) const;
  // subsample: where given, also accepts pads that a stride-1 'same' window then keeping every
  // strides-th output reproduces (sets it to the strides; Conv); 1 otherwise.
  Padding resolve_padding(const Node& n, Size2 kernel, Size2 strides, bool ceil_mode, Size2& out,
                          Size2* subsample = nullptr) const;
  Planned& plan(const char* keras_class);
  // The layer that made the current activation, if it is a Dense / Conv2D that may take a bias or
  // an activation: the activation is its output and no other node (nor a graph output) reads it.
  Planned* foldable();
  std::vector<int64_t> feature_rows() const;  // Lamina feature j is ONNX feature rows[j]; empty = the same
  void advance(const Node& n);  // the current activation is now n's first output
  lamina::Model materialize();

  // --- import_constants.cpp: values known at import time ---
  void constant_node(const Node& n);
  Const shape_of(const Node& n, const std::vector<int64_t>& onnx_shape) const;

  // --- helpers (import.cpp) ---
  [[noreturn]] void fail(const std::string& what) const;
  bool is_const(const std::string& name) const { return consts_.count(name) != 0; }
  const Const& constant(size_t input, const char* role) const;  // a usable constant input
  const Const* optional_constant(size_t input, const char* role) const;  // nullptr when absent
  std::vector<float> floats(size_t input, const char* role) const;
  std::vector<int64_t> ints_of(const Const& c, const char* role) const;
  const Attribute* attr(const char* name, int32_t type) const;
  int64_t attr_int(const char* name, int64_t fallback) const;
  float attr_float(const char* name, float fallback) const;
  std::string attr_string(const char* name, const std::string& fallback) const;
  std::vector<int64_t> attr_ints(const char* name) const;
  int64_t opset() const { return opset_; }

  std::string path_;
  const Model& model_;
  int64_t opset_ = 0;
  const Node* node_ = nullptr;  // the node being imported, for messages
  size_t index_ = 0;
  std::map<std::string, Const> consts_;
  std::map<std::string, Flow> activations_;  // every activation so far, by ONNX name
  std::map<std::string, int> uses_;  // how many nodes (Shape aside) and graph outputs read each tensor
  std::set<std::string> produced_;
  Flow flow_;  // the activation the node being imported works on
  int64_t fixed_batch_ = -1;  // the inputs' batch size when the graph fixes it
  struct GraphInput {
    std::string name;          // the ONNX input's
    std::vector<int64_t> shape;  // Lamina's per-sample shape
  };
  std::vector<GraphInput> inputs_;  // in the graph's order
  std::vector<int> outputs_;        // the graph outputs' Lamina tensors (Flow::source), in order
  std::vector<Planned> plan_;
};

}  // namespace lamina::onnx::detail
