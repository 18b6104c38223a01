// Conv1D and the 1-D poolings (include/lamina/layers/conv1d.hpp) on channels-last sequences.
// Conv1D is the conv1d op (conv2d's oneDNN kernel on (N, 1, T, C), src/ops/conv.cpp); the
// window poolings are max_pool2d / avg_pool2d on (N, 1, T, C) with 1 x pool_size windows; the
// global ones reduce the steps axis. N = batch, T = steps, C = channels, F = filters,
// K = kernel taps.
#include "lamina/layers/conv1d.hpp"

#include "kernels/window.hpp"
#include "layers/keras_config.hpp"
#include "onnx/graph_writer.hpp"

namespace lamina::layers {

namespace {

// c[key] as Keras writes a 1-D size: 3 or [3]; `fallback` when absent or null.
int64_t size1_from(const Json& c, const char* key, const std::string& at, int64_t fallback) {
  if (!c.contains(key) || c[key].is_null()) return fallback;
  const Json& v = c[key];
  const Json& e = v.is_array() && v.size() == 1 ? v[0] : v;
  if (!e.is_number_integer() || e.get<int64_t>() < 1)
    throw ValueError(at + ": '" + key + "' must be a positive integer or a list of one, got " + v.dump());
  return e.get<int64_t>();
}

const char* padding1d_name(Padding1D p) {
  return p == Padding1D::same ? "same" : p == Padding1D::causal ? "causal" : "valid";
}

Padding1D padding1d_from(const Json& c, const std::string& at) {
  const std::string p = c.contains("padding") && c["padding"].is_string() ? c["padding"].get<std::string>() : "valid";
  if (p == "valid") return Padding1D::valid;
  if (p == "same") return Padding1D::same;
  if (p == "causal") return Padding1D::causal;
  throw ValueError(at + ": padding '" + p + "' is not supported (valid, same or causal)");
}

// Keras' data_format for sequences: channels_last only.
void require_steps_first(const Json& c, const std::string& at) {
  if (!c.contains("data_format") || c["data_format"].is_null()) return;
  const std::string f = c["data_format"].is_string() ? c["data_format"].get<std::string>() : c["data_format"].dump();
  if (f != "channels_last")
    throw ValueError(at + ": data_format '" + f +
                     "' is not supported; Lamina's sequences are channels_last (batch, steps, features). Transpose "
                     "the data and use data_format='channels_last'");
}

// (N, T, C) <-> (N, C, T) around an ONNX node that wants channels first.
std::string transposed(onnx::GraphWriter& g, const std::string& layer, const char* suffix, const std::string& in) {
  return g.node("Transpose", layer + suffix, {in}, {onnx::GraphWriter::attr_ints("perm", {0, 2, 1})});
}

}  // namespace

// --- Conv1D ------------------------------------------------------------------------------------------

Conv1D::Conv1D(Options options) : options_(std::move(options)) {
  if (options_.filters <= 0)
    throw ValueError("Conv1D '" + options_.name + "': filters must be positive, got " +
                     std::to_string(options_.filters));
  kernels::check_window("Conv1D '" + options_.name + "'", "kernel_size", Size2(1, options_.kernel_size),
                        Size2(1, options_.strides));
  if (options_.dilation_rate < 1 || options_.dilation_rate > kernels::kMaxWindow)
    throw ValueError("Conv1D '" + options_.name + "': dilation_rate must be a positive integer, got " +
                     std::to_string(options_.dilation_rate));
  // Keras refuses strides > 1 together with a dilation (TensorFlow cannot compute it).
  if (options_.strides > 1 && options_.dilation_rate > 1)
    throw ValueError("Conv1D '" + options_.name + "': strides " + std::to_string(options_.strides) +
                     " and dilation_rate " + std::to_string(options_.dilation_rate) +
                     " cannot both be above 1 (as in Keras)");
  take_common(options_);
  set_weight_penalty("kernel", options_.kernel_regularizer, options_.kernel_constraint);
  set_weight_penalty("bias", options_.bias_regularizer, options_.bias_constraint);
  activity_regularizer_ = options_.activity_regularizer;
}

Conv1D::Conv1D(int64_t filters, int64_t kernel_size, lamina::Activation activation)
    : Conv1D(Options{.filters = filters, .kernel_size = kernel_size, .activation = activation}) {}

Shape Conv1D::output_shape(const Shape& in) const {
  if (in.rank() != 2)
    shape_error("sequences (batch, steps, features)", in,
                in.rank() == 1 ? "add a feature axis: Reshape((" + std::to_string(in[0]) + ", 1)) before it" : "");
  const auto& o = options_;
  const kernels::Axis a = kernels::dilated_axis(in[0], o.kernel_size, o.strides, o.dilation_rate, o.padding);
  if (a.out < 1)
    shape_error("sequences of at least " + std::to_string((o.kernel_size - 1) * o.dilation_rate + 1) +
                    " steps with padding 'valid'",
                in, "use padding='same' or 'causal', or a smaller kernel_size");
  return Shape{a.out, o.filters};
}

std::vector<Layer::WeightSpec> Conv1D::weight_specs(const Shape& input_shape) const {
  output_shape(input_shape);  // checks rank and size
  std::vector<WeightSpec> specs{
      {"kernel", {options_.kernel_size, input_shape[1], options_.filters}, options_.kernel_initializer}};
  if (options_.use_bias) specs.push_back({"bias", {options_.filters}, options_.bias_initializer});
  return specs;
}

Tensor Conv1D::call(const Tensor& x, bool) {
  const Tensor& k = kernel();
  if (x.rank() != 3 || x.dim(2) != k.dim(1))
    shape_error("(batch, steps, " + std::to_string(k.dim(1)) + ")", x.shape());
  output_shape(Shape{x.dim(1), x.dim(2)});  // the kernel fits
  const FusedActivation fused = options_.activation.fused();
  const Tensor y = conv1d(x, k, options_.use_bias ? bias() : Tensor(),
                          {.strides = options_.strides, .padding = options_.padding,
                           .dilation_rate = options_.dilation_rate, .act = fused});
  return fused != FusedActivation::none ? y : options_.activation(y);
}

Json Conv1D::config() const {
  Json j = Layer::config();
  j["filters"] = options_.filters;
  j["kernel_size"] = Json::array({options_.kernel_size});
  j["strides"] = Json::array({options_.strides});
  j["padding"] = padding1d_name(options_.padding);
  j["data_format"] = "channels_last";
  j["dilation_rate"] = Json::array({options_.dilation_rate});
  j["groups"] = 1;
  j["activation"] = options_.activation.name();
  j["use_bias"] = options_.use_bias;
  j["kernel_initializer"] = options_.kernel_initializer.config();
  j["bias_initializer"] = options_.bias_initializer.config();
  detail::write_affine(j, options_);
  return j;
}

std::shared_ptr<Layer> Conv1D::from_config(const Json& c) {
  const std::string at = detail::where("Conv1D", c);
  Options o;
  o.filters = detail::positive_int_of(c, "filters", at);
  if (!c.contains("kernel_size")) throw ValueError(at + ": 'kernel_size' is required");
  require_steps_first(c, at);
  if (c.contains("groups") && !c["groups"].is_null() && c["groups"] != Json(1))
    throw ValueError(at + ": groups = " + c["groups"].dump() +
                     " is not supported (only 1: every filter sees every input channel)");
  o.kernel_size = size1_from(c, "kernel_size", at, 0);
  o.strides = size1_from(c, "strides", at, 1);
  o.dilation_rate = size1_from(c, "dilation_rate", at, 1);
  o.padding = padding1d_from(c, at);
  detail::read_affine(o, c, at);
  detail::read_common(o, c);
  return std::make_shared<Conv1D>(o);
}

// Conv on (N, C, T): kernel (K, C, F) -> ONNX's (F, C, K); 'same' and 'causal' as explicit pads.
void Conv1D::export_onnx(onnx::GraphWriter& g) const {
  using W = onnx::GraphWriter;
  g.to_channels_last(name());
  const auto& o = options_;
  const Tensor& k = W::weight(*this, "kernel");
  const int64_t taps = k.dim(0), ci = k.dim(1), f = k.dim(2);
  std::vector<float> oik(static_cast<size_t>(k.numel()));
  const float* src = k.data();
  for (int64_t t = 0; t < taps; ++t)
    for (int64_t i = 0; i < ci; ++i)
      for (int64_t j = 0; j < f; ++j) oik[static_cast<size_t>((j * ci + i) * taps + t)] = src[(t * ci + i) * f + j];
  onnx::Value& v = g.value();
  const kernels::Axis a = kernels::dilated_axis(v.shape[0], taps, o.strides, o.dilation_rate, o.padding);
  std::vector<std::string> inputs{transposed(g, name(), "/to_nct", v.name),
                                  g.initializer(name() + "/kernel", {f, ci, taps}, oik.data())};
  if (o.use_bias) inputs.push_back(g.initializer(name() + "/bias", W::weight(*this, "bias")));
  const std::string y = g.node("Conv", name(), inputs,
                               {W::attr_ints("kernel_shape", {taps}), W::attr_ints("strides", {o.strides}),
                                W::attr_ints("pads", {a.pad_lo, a.pad_hi}),
                                W::attr_ints("dilations", {o.dilation_rate}), W::attr_int("group", 1)});
  v.name = transposed(g, name(), "/to_ntc", y);
  g.activation(o.activation, name());
}

// --- MaxPooling1D, AveragePooling1D ------------------------------------------------------------------

namespace {

int64_t strides_of(const Pooling1DOptions& o) { return o.strides.value_or(o.pool_size); }

kernels::Axis pooled(const Pooling1DOptions& o, int64_t steps) {
  return kernels::window_axis(steps, o.pool_size, strides_of(o), o.padding == Padding::same);
}

}  // namespace

Pooling1D::Pooling1D(const char* class_name, Options options) : options_(std::move(options)) {
  kernels::check_window(std::string(class_name) + " '" + options_.name + "'", "pool_size", Size2(1, options_.pool_size),
                        Size2(1, strides_of(options_)));
  take_common(options_);
}

Shape Pooling1D::output_shape(const Shape& in) const {
  if (in.rank() != 2) shape_error("sequences (batch, steps, features)", in);
  const int64_t out = pooled(options_, in[0]).out;
  if (out < 1)
    shape_error("sequences of at least " + std::to_string(options_.pool_size) + " steps with padding 'valid'", in,
                "use padding='same' or a smaller pool_size");
  return Shape{out, in[1]};
}

Tensor Pooling1D::call(const Tensor& x, bool) {
  if (x.rank() != 3) shape_error("(batch, steps, features)", x.shape());
  const Shape out = output_shape(Shape{x.dim(1), x.dim(2)});
  const Tensor x4 = reshape(x, {x.dim(0), 1, x.dim(1), x.dim(2)});
  const Size2 window(1, options_.pool_size), strides(1, strides_of(options_));
  const bool max = std::string_view(onnx_op()) == "MaxPool";
  const Tensor y = max ? max_pool2d(x4, window, strides, options_.padding)
                       : avg_pool2d(x4, window, strides, options_.padding);
  return reshape(y, {x.dim(0), out[0], out[1]});
}

Json Pooling1D::config() const {
  Json j = Layer::config();
  j["pool_size"] = Json::array({options_.pool_size});
  j["padding"] = detail::padding_name(options_.padding);
  j["strides"] = Json::array({strides_of(options_)});
  j["data_format"] = "channels_last";
  return j;
}

namespace {

template <class L>
std::shared_ptr<Layer> pooling_from(const Json& c, const char* cls) {
  const std::string at = detail::where(cls, c);
  require_steps_first(c, at);
  Pooling1DOptions o;
  o.pool_size = size1_from(c, "pool_size", at, 2);
  if (c.contains("strides") && !c["strides"].is_null()) o.strides = size1_from(c, "strides", at, 1);
  o.padding = detail::padding_from(c, at);
  detail::read_common(o, c);
  return std::make_shared<L>(o);
}

}  // namespace

std::shared_ptr<Layer> MaxPooling1D::from_config(const Json& c) {
  return pooling_from<MaxPooling1D>(c, "MaxPooling1D");
}

std::shared_ptr<Layer> AveragePooling1D::from_config(const Json& c) {
  return pooling_from<AveragePooling1D>(c, "AveragePooling1D");
}

// MaxPool / AveragePool on (N, C, T); the average leaves the padding out (count_include_pad=0).
void Pooling1D::export_onnx(onnx::GraphWriter& g) const {
  using W = onnx::GraphWriter;
  g.to_channels_last(name());
  onnx::Value& v = g.value();
  const kernels::Axis a = pooled(options_, v.shape[0]);
  std::vector<onnx::ProtoWriter> attrs{W::attr_ints("kernel_shape", {options_.pool_size}),
                                       W::attr_ints("strides", {strides_of(options_)}),
                                       W::attr_ints("pads", {a.pad_lo, a.pad_hi})};
  if (std::string_view(onnx_op()) == "AveragePool") attrs.push_back(W::attr_int("count_include_pad", 0));
  const std::string y = g.node(onnx_op(), name(), {transposed(g, name(), "/to_nct", v.name)}, std::move(attrs));
  v.name = transposed(g, name(), "/to_ntc", y);
}

// --- GlobalMaxPooling1D, GlobalAveragePooling1D ------------------------------------------------------

GlobalPooling1D::GlobalPooling1D(Options options) : options_(std::move(options)) { take_common(options_); }

Shape GlobalPooling1D::output_shape(const Shape& in) const {
  if (in.rank() != 2 || in[0] < 1) shape_error("sequences (batch, steps >= 1, features)", in);
  return options_.keepdims ? Shape{1, in[1]} : Shape{in[1]};
}

void GlobalPooling1D::check_input(const Tensor& x) const {
  if (x.rank() != 3 || x.dim(1) < 1) shape_error("(batch, steps >= 1, features)", x.shape());
}

Tensor GlobalPooling1D::finish(const Tensor& y) const {
  return options_.keepdims ? reshape(y, {y.dim(0), 1, y.dim(1)}) : y;
}

Json GlobalPooling1D::config() const {
  Json j = Layer::config();
  j["data_format"] = "channels_last";
  j["keepdims"] = options_.keepdims;
  return j;
}

Tensor GlobalMaxPooling1D::call(const Tensor& x, bool) {
  check_input(x);
  return finish(max(x, 1));
}

Tensor GlobalAveragePooling1D::call(const Tensor& x, bool) {
  check_input(x);
  return finish(mean(x, 1));
}

// As Keras: sum(x * mask) / sum(mask) over the steps, so a sample whose mask is all 0 gives NaN.
Tensor GlobalAveragePooling1D::call_masked(const Tensor& x, const Tensor& mask) const {
  check_input(x);
  if (!mask.defined()) return finish(mean(x, 1));
  if (mask.shape() != Shape{x.dim(0), x.dim(1)})
    throw ShapeError("GlobalAveragePooling1D '" + name_ + "': mask " + mask.shape().str() + " does not match input " +
                     x.shape().str() + " (expected (batch, steps))");
  const Tensor m = reshape(mask.detach(), {x.dim(0), x.dim(1), 1});
  return finish(div(sum(mul(x, m), 1), sum(m, 1)));
}

Layer::Outputs GlobalAveragePooling1D::call_all(std::span<const Tensor> inputs, std::span<const Tensor> masks,
                                                bool) {
  require_one_input(inputs.size());
  Outputs out;
  out.values.push_back(call_masked(inputs[0], masks.empty() ? Tensor() : masks[0]));
  out.masks.push_back(Tensor());
  return out;
}

namespace {

template <class L>
std::shared_ptr<Layer> global_from(const Json& c, const char* cls) {
  require_steps_first(c, detail::where(cls, c));
  GlobalPooling1DOptions o;
  if (c.contains("keepdims") && !c["keepdims"].is_null()) o.keepdims = c["keepdims"].get<bool>();
  detail::read_common(o, c);
  return std::make_shared<L>(o);
}

}  // namespace

std::shared_ptr<Layer> GlobalMaxPooling1D::from_config(const Json& c) {
  return global_from<GlobalMaxPooling1D>(c, "GlobalMaxPooling1D");
}

std::shared_ptr<Layer> GlobalAveragePooling1D::from_config(const Json& c) {
  return global_from<GlobalAveragePooling1D>(c, "GlobalAveragePooling1D");
}

// ReduceMax / ReduceMean over the steps (opset 13 takes the axes as an attribute).
void GlobalPooling1D::export_onnx(onnx::GraphWriter& g) const {
  using W = onnx::GraphWriter;
  g.to_channels_last(name());
  onnx::Value& v = g.value();
  v.name = g.node(onnx_op(), name(), {v.name},
                  {W::attr_ints("axes", {1}), W::attr_int("keepdims", options_.keepdims ? 1 : 0)});
}

void GlobalAveragePooling1D::export_onnx(onnx::GraphWriter& g) const {
  if (g.input_masked())
    onnx::GraphWriter::unsupported(*this, "its input carries a mask (from Embedding(mask_zero=True) or Masking), and "
                                          "ONNX's ReduceMean would average the padded steps too");
  GlobalPooling1D::export_onnx(g);
}

}  // namespace lamina::layers
