// LayerNormalization (include/lamina/layers/layer_normalization.hpp): its options, weights,
// call, Keras config both ways and ONNX export, all here. The math is the layer_norm op
// (src/ops/norm.cpp). N = batch, C = the normalized (last) axis.
#include "lamina/layers/layer_normalization.hpp"

#include <cmath>

#include "layers/keras_config.hpp"
#include "onnx/graph_writer.hpp"

namespace lamina::layers {

LayerNormalization::LayerNormalization(Options options) : options_(std::move(options)) {
  if (!(options_.epsilon > 0.f) || !std::isfinite(options_.epsilon))
    throw ValueError("LayerNormalization: epsilon must be positive, got " + std::to_string(options_.epsilon));
  take_common(options_);
  set_weight_penalty("gamma", options_.gamma_regularizer, options_.gamma_constraint);
  set_weight_penalty("beta", options_.beta_regularizer, options_.beta_constraint);
}

std::vector<Layer::WeightSpec> LayerNormalization::weight_specs(const Shape& input_shape) const {
  if (input_shape.rank() < 1) shape_error("(batch, ..., C)", input_shape);
  require_last_axis(options_.axis, input_shape);
  const int64_t c = input_shape[-1];
  std::vector<WeightSpec> specs;
  if (options_.scale) specs.push_back({"gamma", {c}, options_.gamma_initializer});
  if (options_.center) specs.push_back({"beta", {c}, options_.beta_initializer});
  return specs;
}

Tensor LayerNormalization::call(const Tensor& x, bool) {
  const Tensor* gamma = find_weight("gamma");
  const Tensor* beta = find_weight("beta");
  return layer_norm(x, gamma ? *gamma : Tensor(), beta ? *beta : Tensor(), options_.epsilon);
}

Json LayerNormalization::config() const {
  Json j = Layer::config();
  j["axis"] = options_.axis;
  j["epsilon"] = detail::float_json(options_.epsilon);
  j["center"] = options_.center;
  j["scale"] = options_.scale;
  j["rms_scaling"] = false;
  j["beta_initializer"] = options_.beta_initializer.config();
  j["gamma_initializer"] = options_.gamma_initializer.config();
  detail::write_gamma_beta_penalties(j, options_);
  return j;
}

std::shared_ptr<Layer> LayerNormalization::from_config(const Json& c) {
  const std::string at = detail::where("LayerNormalization", c);
  Options o;
  o.axis = detail::single_axis_of(c, o.axis, "the last axis", at);
  detail::require_default(c, "rms_scaling", false, at);
  o.epsilon = detail::float_of(c, "epsilon", o.epsilon, at);
  o.center = c.value("center", true);
  o.scale = c.value("scale", true);
  o.beta_initializer = detail::initializer_of(c, "beta_initializer", o.beta_initializer);
  o.gamma_initializer = detail::initializer_of(c, "gamma_initializer", o.gamma_initializer);
  detail::read_gamma_beta_penalties(o, c, at);
  detail::read_common(o, c);
  return std::make_shared<LayerNormalization>(o);
}

// Opset 13 has no LayerNormalization node (it came in 17): written out as
// d = x - ReduceMean(x), y = d / Sqrt(ReduceMean(d * d) + epsilon) * gamma + beta, on the last
// axis in Lamina's (channels-last) order.
void LayerNormalization::export_onnx(onnx::GraphWriter& g) const {
  using W = onnx::GraphWriter;
  g.to_channels_last(name());
  onnx::Value& v = g.value();
  const std::vector<onnx::ProtoWriter> last_axis = {W::attr_ints("axes", {-1}), W::attr_int("keepdims", 1)};
  const std::string mean = g.node("ReduceMean", name() + "/mean", {v.name}, last_axis);
  const std::string d = g.node("Sub", name() + "/centered", {v.name, mean});
  const std::string var = g.node("ReduceMean", name() + "/variance", {g.node("Mul", name() + "/square", {d, d})}, last_axis);
  const float eps = options_.epsilon;
  const std::string std = g.node("Sqrt", name() + "/std", {g.node("Add", name() + "/plus_epsilon",
                                                                      {var, g.initializer(name() + "/epsilon", {}, &eps)})});
  v.name = g.node("Div", name() + "/normalized", {d, std});
  if (const Tensor* gamma = find_weight("gamma")) v.name = g.node("Mul", name() + "/scale", {v.name, g.initializer(name() + "/gamma", *gamma)});
  if (const Tensor* beta = find_weight("beta")) v.name = g.node("Add", name() + "/center", {v.name, g.initializer(name() + "/beta", *beta)});
}

}  // namespace lamina::layers
