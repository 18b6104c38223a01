// Dense: y = activation(x @ kernel + bias). N = batch, I = input features, U = units.
// The affine part and relu/sigmoid/tanh are one oneDNN primitive (ops::linear); rank > 2 inputs
// are folded to 2-D.
#include "layers/keras_config.hpp"
#include "onnx/graph_writer.hpp"
#include "lamina/layers.hpp"
#include "lamina/ops.hpp"

namespace lamina::layers {

Dense::Dense(Options options) : options_(std::move(options)) {
  if (options_.units <= 0)
    throw ValueError("Dense: units must be positive, got " + std::to_string(options_.units));
  take_common(options_);
  set_weight_penalty("kernel", options_.kernel_regularizer, options_.kernel_constraint);
  set_weight_penalty("bias", options_.bias_regularizer, options_.bias_constraint);
  activity_regularizer_ = options_.activity_regularizer;
}

Dense::Dense(int64_t units, lamina::Activation activation) : Dense(Options{.units = units, .activation = activation}) {}

std::vector<Layer::WeightSpec> Dense::weight_specs(const Shape& input_shape) const {
  if (input_shape.rank() < 1 || input_shape[-1] <= 0)
    shape_error("(*, features)", input_shape, "add Flatten() or an input shape with a feature axis");
  std::vector<WeightSpec> specs{{"kernel", {input_shape[-1], options_.units}, options_.kernel_initializer}};
  if (options_.use_bias) specs.push_back({"bias", {options_.units}, options_.bias_initializer});
  return specs;
}

Shape Dense::output_shape(const Shape& input_shape) const {
  std::vector<int64_t> dims = input_shape.dims();
  if (dims.empty()) shape_error("(*, features)", input_shape);
  dims.back() = options_.units;
  return Shape(dims);
}

Tensor Dense::call(const Tensor& x, bool) {
  const Tensor& w = kernel();
  if (x.rank() < 2 || x.dim(-1) != w.dim(0)) {
    const std::string hint = x.rank() > 2 ? "add Flatten() before it, or set input_shape=(" +
                                                std::to_string(x.numel() / std::max<int64_t>(x.dim(0), 1)) + ")"
                                          : "";
    shape_error("(*, " + std::to_string(w.dim(0)) + ")", x.shape(), hint);
  }
  const Tensor x2 = x.rank() == 2 ? x : reshape(x, {-1, x.dim(-1)});
  // relu, sigmoid and tanh go to linear() as its fused activation; others follow it.
  const FusedActivation fused = options_.activation.fused();
  Tensor z = options_.use_bias ? linear(x2, w, bias(), fused) : matmul(x2, w);
  if (x.rank() != 2) {
    std::vector<int64_t> dims = x.shape().dims();
    dims.back() = options_.units;
    z = reshape(z, Shape(dims));
  }
  return options_.use_bias && fused != FusedActivation::none ? z : options_.activation(z);
}

Json Dense::config() const {
  Json j = Layer::config();
  j["units"] = options_.units;
  j["activation"] = options_.activation.name();
  j["use_bias"] = options_.use_bias;
  j["kernel_initializer"] = options_.kernel_initializer.config();
  j["bias_initializer"] = options_.bias_initializer.config();
  detail::write_affine(j, options_);
  return j;
}

std::shared_ptr<Layer> Dense::from_config(const Json& c) {
  Options o;
  const std::string at = detail::where("Dense", c);
  o.units = detail::positive_int_of(c, "units", at);
  detail::read_affine(o, c, at);
  detail::read_common(o, c);
  return std::make_shared<Dense>(o);
}

// Gemm on (N, K) inputs; MatMul + Add over the last axis of higher-rank inputs, as Keras maps
// Dense over it. kernel (K, U), bias (U). Gemm gets the kernel transposed, (U, K) with transB=1:
// OpenCV 4.6 reads a Gemm without transB as if B were (U, K) already.
void Dense::export_onnx(onnx::GraphWriter& g) const {
  using W = onnx::GraphWriter;
  g.to_channels_last(name());
  const Tensor& kernel = W::weight(*this, "kernel");
  const bool use_bias = options_.use_bias;
  const std::string b = use_bias ? g.initializer(name() + "/bias", W::weight(*this, "bias")) : "";
  onnx::Value& v = g.value();
  if (v.shape.rank() == 1) {
    const int64_t k = kernel.dim(0), u = kernel.dim(1);
    std::vector<float> transposed(static_cast<size_t>(kernel.numel()));
    for (int64_t i = 0; i < k; ++i)
      for (int64_t j = 0; j < u; ++j) transposed[static_cast<size_t>(j * k + i)] = kernel.data()[i * u + j];
    std::vector<std::string> inputs{v.name, g.initializer(name() + "/kernel", {u, k}, transposed.data())};
    if (use_bias) inputs.push_back(b);
    v.name = g.node("Gemm", name(), inputs, {W::attr_int("transB", 1)});
  } else {
    v.name = g.node("MatMul", name(), {v.name, g.initializer(name() + "/kernel", kernel)});
    if (use_bias) v.name = g.node("Add", name(), {v.name, b});
  }
  g.activation(options_.activation, name());
}

}  // namespace lamina::layers
