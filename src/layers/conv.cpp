// Conv2D: y = activation(conv2d(x, kernel) + bias) on channels-last images.
// N = batch, H, W = spatial, C = input channels, F = filters.
// relu, sigmoid and tanh go to conv2d as its fused activation (see src/ops/conv.cpp); others
// follow it.
#include "kernels/window.hpp"
#include "onnx/graph_writer.hpp"
#include "lamina/layers.hpp"
#include "layers/keras_config.hpp"

namespace lamina::layers {

Conv2D::Conv2D(Options options) : options_(std::move(options)) {
  if (options_.filters <= 0)
    throw ValueError("Conv2D: filters must be positive, got " + std::to_string(options_.filters));
  kernels::check_window("Conv2D", "kernel_size", options_.kernel_size, options_.strides);
  take_common(options_);
  set_weight_penalty("kernel", options_.kernel_regularizer, options_.kernel_constraint);
  set_weight_penalty("bias", options_.bias_regularizer, options_.bias_constraint);
  activity_regularizer_ = options_.activity_regularizer;
}

Conv2D::Conv2D(int64_t filters, Size2 kernel_size, lamina::Activation activation)
    : Conv2D(Options{.filters = filters, .kernel_size = kernel_size, .activation = activation}) {}

Shape Conv2D::output_shape(const Shape& in) const {
  if (in.rank() != 3)
    shape_error("(batch, H, W, C)", in,
                in.rank() == 2 ? "add a channel axis: Reshape((" + std::to_string(in[0]) + ", " + std::to_string(in[1]) +
                                     ", 1)) before it, or input_shape=(" + std::to_string(in[0]) + ", " +
                                     std::to_string(in[1]) + ", 1)"
                               : "");
  const kernels::Geometry2d g = kernels::window_geometry(1, in[0], in[1], in[2], options_.filters,
                                                         options_.kernel_size, options_.strides, options_.padding);
  if (g.oh < 1 || g.ow < 1)
    shape_error("images of at least " + std::to_string(options_.kernel_size.h) + "x" +
                    std::to_string(options_.kernel_size.w) + " with padding 'valid'",
                in, "use padding='same' or a smaller kernel_size");
  return Shape{g.oh, g.ow, options_.filters};
}

std::vector<Layer::WeightSpec> Conv2D::weight_specs(const Shape& input_shape) const {
  output_shape(input_shape);  // checks rank and size
  std::vector<WeightSpec> specs{{"kernel",
                                 {options_.kernel_size.h, options_.kernel_size.w, input_shape[2], options_.filters},
                                 options_.kernel_initializer}};
  if (options_.use_bias) specs.push_back({"bias", {options_.filters}, options_.bias_initializer});
  return specs;
}

Tensor Conv2D::call(const Tensor& x, bool) {
  const Tensor& k = kernel();
  if (x.rank() != 4 || x.dim(3) != k.dim(2))
    shape_error("(batch, H, W, " + std::to_string(k.dim(2)) + ")", x.shape(),
                x.rank() == 3 ? "add a channel axis with Reshape, e.g. (28, 28) -> (28, 28, 1)" : "");
  const FusedActivation fused = options_.activation.fused();
  const Tensor y = conv2d(x, k, options_.use_bias ? bias() : Tensor(),
                          {.strides = options_.strides, .padding = options_.padding, .act = fused});
  return fused != FusedActivation::none ? y : options_.activation(y);
}

Json Conv2D::config() const {
  Json j = Layer::config();
  j["filters"] = options_.filters;
  j["kernel_size"] = detail::size2_json(options_.kernel_size);
  j["strides"] = detail::size2_json(options_.strides);
  j["padding"] = detail::padding_name(options_.padding);
  j["data_format"] = "channels_last";
  j["dilation_rate"] = detail::size2_json(1);
  j["groups"] = 1;
  j["activation"] = options_.activation.name();
  j["use_bias"] = options_.use_bias;
  j["kernel_initializer"] = options_.kernel_initializer.config();
  j["bias_initializer"] = options_.bias_initializer.config();
  detail::write_affine(j, options_);
  return j;
}

std::shared_ptr<Layer> Conv2D::from_config(const Json& c) {
  const std::string at = detail::where("Conv2D", c);
  Options o;
  o.filters = detail::positive_int_of(c, "filters", at);
  if (!c.contains("kernel_size")) throw ValueError(at + ": 'kernel_size' is required");
  detail::require_channels_last(c, at);
  detail::require_default(c, "dilation_rate", 1, at);
  detail::require_default(c, "groups", 1, at);
  o.kernel_size = detail::size2_from(c, "kernel_size", at, 0);
  o.strides = detail::size2_from(c, "strides", at, 1);
  o.padding = detail::padding_from(c, at);
  detail::read_affine(o, c, at);
  detail::read_common(o, c);
  return std::make_shared<Conv2D>(o);
}

// Conv on the channels-first image: kernel (KH, KW, C, F) -> ONNX's (F, C, KH, KW).
void Conv2D::export_onnx(onnx::GraphWriter& g) const {
  using W = onnx::GraphWriter;
  g.to_channels_first(name());
  const auto& o = options_;
  const Tensor& k = W::weight(*this, "kernel");
  const int64_t kh = k.dim(0), kw = k.dim(1), ci = k.dim(2), f = k.dim(3);
  std::vector<float> oihw(static_cast<size_t>(k.numel()));
  const float* src = k.data();
  for (int64_t y = 0; y < kh; ++y)
    for (int64_t x = 0; x < kw; ++x)
      for (int64_t i = 0; i < ci; ++i)
        for (int64_t j = 0; j < f; ++j)
          oihw[static_cast<size_t>(((j * ci + i) * kh + y) * kw + x)] = src[((y * kw + x) * ci + i) * f + j];
  onnx::Value& v = g.value();
  std::vector<std::string> inputs{v.name, g.initializer(name() + "/kernel", {f, ci, kh, kw}, oihw.data())};
  if (o.use_bias) inputs.push_back(g.initializer(name() + "/bias", W::weight(*this, "bias")));
  v.name = g.node("Conv", name(), inputs,
                  {W::attr_ints("kernel_shape", {kh, kw}), W::attr_ints("strides", {o.strides.h, o.strides.w}),
                   W::attr_ints("pads", W::window_pads(v.shape, o.kernel_size, o.strides, o.padding)),
                   W::attr_ints("dilations", {1, 1}), W::attr_int("group", 1)});
  g.activation(o.activation, name());
}

}  // namespace lamina::layers
