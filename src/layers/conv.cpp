// Conv2D: y = activation(conv2d(x, kernel) + bias) on channels-last images.
// N = batch, H, W = spatial, C = input channels, F = filters.
// relu, sigmoid and tanh go to conv2d as its fused activation (see src/ops/conv.cpp); others
// follow it.
#include "kernels/window.hpp"
#include "lamina/layers.hpp"
#include "layers/keras_config.hpp"

namespace lamina::layers {

Conv2D::Conv2D(Options options) : options_(std::move(options)) {
  if (options_.filters <= 0)
    throw ValueError("Conv2D: filters must be positive, got " + std::to_string(options_.filters));
  kernels::check_window("Conv2D", "kernel_size", options_.kernel_size, options_.strides);
  name_ = options_.name;
  input_shape_ = options_.input_shape;
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
  for (const char* k : {"kernel_regularizer", "bias_regularizer", "activity_regularizer", "kernel_constraint",
                        "bias_constraint"})
    j[k] = nullptr;
  return j;
}

}  // namespace lamina::layers
