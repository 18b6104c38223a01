// Conv2DTranspose (include/lamina/layers/conv_transpose.hpp): y = activation(conv2d_transpose(x,
// kernel) + bias) on channels-last images; the output size and cropping are
// kernels::transpose_axis (Keras' size, TensorFlow's crop). relu, sigmoid and tanh go to the op
// as its fused activation; others follow it. ONNX: ConvTranspose with explicit pads and
// output_padding on the channels-first image.
// N = batch, H, W = spatial, C = input channels, F = filters.
#include "lamina/layers/conv_transpose.hpp"

#include "kernels/window.hpp"
#include "layers/keras_config.hpp"
#include "onnx/graph_writer.hpp"

namespace lamina::layers {

namespace {

// Keras' output_padding: null, an integer, or a list of two; each at least 0.
std::optional<Size2> output_padding_from(const Json& c, const std::string& at) {
  if (!c.contains("output_padding") || c["output_padding"].is_null()) return std::nullopt;
  const Json& v = c["output_padding"];
  auto count = [&](const Json& e) {
    if (!e.is_number_integer() || e.get<int64_t>() < 0)
      throw ValueError(at + ": 'output_padding' must be null, an integer >= 0 or a list of two, got " + v.dump());
    return e.get<int64_t>();
  };
  if (v.is_number()) return Size2(count(v));
  if (v.is_array() && v.size() == 2) return Size2(count(v[0]), count(v[1]));
  throw ValueError(at + ": 'output_padding' must be null, an integer >= 0 or a list of two, got " + v.dump());
}

// The two axes of the output for a per-sample (H, W, C) input.
std::pair<kernels::Axis, kernels::Axis> axes(const Conv2DTranspose::Options& o, int64_t h, int64_t w) {
  const bool same = o.padding == Padding::same;
  const int64_t* ph = o.output_padding ? &o.output_padding->h : nullptr;
  const int64_t* pw = o.output_padding ? &o.output_padding->w : nullptr;
  return {kernels::transpose_axis(h, o.kernel_size.h, o.strides.h, o.dilation_rate.h, same, ph),
          kernels::transpose_axis(w, o.kernel_size.w, o.strides.w, o.dilation_rate.w, same, pw)};
}

}  // namespace

Conv2DTranspose::Conv2DTranspose(Options options) : options_(std::move(options)) {
  const auto& o = options_;
  const std::string at = "Conv2DTranspose '" + o.name + "'";
  if (o.filters <= 0) throw ValueError(at + ": filters must be positive, got " + std::to_string(o.filters));
  kernels::check_window(at, "kernel_size", o.kernel_size, o.strides);
  if (std::min(o.dilation_rate.h, o.dilation_rate.w) < 1 || std::max(o.dilation_rate.h, o.dilation_rate.w) > kernels::kMaxWindow)
    throw ValueError(at + ": dilation_rate must be positive, got " + kernels::size2_str(o.dilation_rate));
  // Keras' own checks (BaseConvTranspose.__init__).
  if (o.output_padding && (o.output_padding->h < 0 || o.output_padding->w < 0 ||
                           o.output_padding->h >= o.strides.h || o.output_padding->w >= o.strides.w))
    throw ValueError(at + ": output_padding " + kernels::size2_str(*o.output_padding) +
                     " must be at least 0 and less than strides " + kernels::size2_str(o.strides) + " (as in Keras)");
  if (std::max(o.strides.h, o.strides.w) > 1 && std::max(o.dilation_rate.h, o.dilation_rate.w) > 1)
    throw ValueError(at + ": strides " + kernels::size2_str(o.strides) + " and dilation_rate " +
                     kernels::size2_str(o.dilation_rate) + " cannot both be above 1 (as in Keras)");
  take_common(options_);
  set_weight_penalty("kernel", o.kernel_regularizer, o.kernel_constraint);
  set_weight_penalty("bias", o.bias_regularizer, o.bias_constraint);
  activity_regularizer_ = o.activity_regularizer;
}

Shape Conv2DTranspose::output_shape(const Shape& in) const {
  if (in.rank() != 3)
    shape_error("(batch, H, W, C)", in,
                in.rank() == 1   ? "reshape the features to an image first, as DCGAN's Dense(7 * 7 * 64) -> "
                                                   "Reshape((7, 7, 64))"
                : in.rank() == 2  ? "add a channel axis with Reshape, e.g. (7, 7) -> (7, 7, 1)" : "");
  if (in[0] < 1 || in[1] < 1) shape_error("images of at least 1x1", in);
  const auto [y, x] = axes(options_, in[0], in[1]);
  return Shape{y.out, x.out, options_.filters};
}

std::vector<Layer::WeightSpec> Conv2DTranspose::weight_specs(const Shape& input_shape) const {
  output_shape(input_shape);  // checks rank and size
  const auto& o = options_;
  std::vector<WeightSpec> specs{
      {"kernel", {o.kernel_size.h, o.kernel_size.w, o.filters, input_shape[2]}, o.kernel_initializer}};
  if (o.use_bias) specs.push_back({"bias", {o.filters}, o.bias_initializer});
  return specs;
}

Tensor Conv2DTranspose::call(const Tensor& x, bool) {
  const Tensor& k = kernel();
  if (x.rank() != 4 || x.dim(3) != k.dim(3))
    shape_error("(batch, H, W, " + std::to_string(k.dim(3)) + ")", x.shape(),
                x.rank() == 3 ? "add a channel axis with Reshape, e.g. (7, 7) -> (7, 7, 1)" : "");
  const auto& o = options_;
  const FusedActivation fused = o.activation.fused();
  const Tensor y = conv2d_transpose(x, k, o.use_bias ? bias() : Tensor(),
                                    {.strides = o.strides, .padding = o.padding, .output_padding = o.output_padding,
                                     .dilation_rate = o.dilation_rate, .act = fused});
  return fused != FusedActivation::none ? y : o.activation(y);
}

Json Conv2DTranspose::config() const {
  const auto& o = options_;
  Json j = Layer::config();
  j["filters"] = o.filters;
  j["kernel_size"] = detail::size2_json(o.kernel_size);
  j["strides"] = detail::size2_json(o.strides);
  j["padding"] = detail::padding_name(o.padding);
  // Keras 3's get_config leaves output_padding out (its __init__ takes it); written here so a
  // saved model keeps its exact size, and Keras 3 reads it back.
  j["output_padding"] = o.output_padding ? detail::size2_json(*o.output_padding) : Json(nullptr);
  j["data_format"] = "channels_last";
  j["dilation_rate"] = detail::size2_json(o.dilation_rate);
  j["activation"] = o.activation.name();
  j["use_bias"] = o.use_bias;
  j["kernel_initializer"] = o.kernel_initializer.config();
  j["bias_initializer"] = o.bias_initializer.config();
  detail::write_affine(j, o);
  return j;
}

std::shared_ptr<Layer> Conv2DTranspose::from_config(const Json& c) {
  const std::string at = detail::where("Conv2DTranspose", c);
  Options o;
  o.filters = detail::positive_int_of(c, "filters", at);
  if (!c.contains("kernel_size")) throw ValueError(at + ": 'kernel_size' is required");
  detail::require_channels_last(c, at);
  detail::require_default(c, "groups", 1, at);  // Keras 2.x wrote groups on every Conv subclass
  o.kernel_size = detail::size2_from(c, "kernel_size", at, 0);
  o.strides = detail::size2_from(c, "strides", at, 1);
  o.dilation_rate = detail::size2_from(c, "dilation_rate", at, 1);
  o.output_padding = output_padding_from(c, at);
  o.padding = detail::padding_from(c, at);
  detail::read_affine(o, c, at);
  detail::read_common(o, c);
  return std::make_shared<Conv2DTranspose>(o);  // Keras' checks, naming the layer
}

// ConvTranspose on the channels-first image: kernel (KH, KW, F, C) -> ONNX's (C, F, KH, KW).
// ONNX's size rule, out = s (in - 1) + output_padding + (k - 1) d + 1 - pad_begin - pad_end,
// takes Lamina's crops directly; a negative crop at the end (extra cells) becomes
// output_padding, which ONNX adds at the end.
void Conv2DTranspose::export_onnx(onnx::GraphWriter& g) const {
  using W = onnx::GraphWriter;
  g.to_channels_first(name());
  const auto& o = options_;
  const Tensor& k = W::weight(*this, "kernel");
  const int64_t kh = k.dim(0), kw = k.dim(1), f = k.dim(2), ci = k.dim(3);
  std::vector<float> iohw(static_cast<size_t>(k.numel()));
  const float* src = k.data();
  for (int64_t y = 0; y < kh; ++y)
    for (int64_t x = 0; x < kw; ++x)
      for (int64_t j = 0; j < f; ++j)
        for (int64_t i = 0; i < ci; ++i)
          iohw[static_cast<size_t>(((i * f + j) * kh + y) * kw + x)] = src[((y * kw + x) * f + j) * ci + i];
  onnx::Value& v = g.value();
  const auto [ay, ax] = axes(o, v.shape[0], v.shape[1]);
  std::vector<std::string> inputs{v.name, g.initializer(name() + "/kernel", {ci, f, kh, kw}, iohw.data())};
  if (o.use_bias) inputs.push_back(g.initializer(name() + "/bias", W::weight(*this, "bias")));
  const auto crop = [](int64_t c) { return std::max<int64_t>(c, 0); };
  const auto extra = [](int64_t c) { return std::max<int64_t>(-c, 0); };
  v.name = g.node("ConvTranspose", name(), inputs,
                  {W::attr_ints("kernel_shape", {kh, kw}), W::attr_ints("strides", {o.strides.h, o.strides.w}),
                   W::attr_ints("pads", {ay.pad_lo, ax.pad_lo, crop(ay.pad_hi), crop(ax.pad_hi)}),
                   W::attr_ints("output_padding", {extra(ay.pad_hi), extra(ax.pad_hi)}),
                   W::attr_ints("dilations", {o.dilation_rate.h, o.dilation_rate.w}), W::attr_int("group", 1)});
  g.activation(o.activation, name());
}

}  // namespace lamina::layers
