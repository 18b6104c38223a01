// The VAE's reparameterisation layer (include/lamina/layers/sampling.hpp): the sample, the KL
// term it may add, its config and ONNX export.
#include "lamina/layers/sampling.hpp"

#include <cmath>

#include "layers/keras_config.hpp"
#include "onnx/graph_writer.hpp"

namespace lamina {

namespace {

void require_same_shape(const char* what, const Tensor& mean, const Tensor& other, const char* other_name) {
  if (mean.shape() != other.shape())
    throw ShapeError(std::string(what) + ": mean " + mean.shape().str() + " and " + other_name + " " +
                     other.shape().str() + " must have one shape");
}

}  // namespace

Tensor reparameterize(const Tensor& mean, const Tensor& log_var, const Tensor& eps) {
  require_same_shape("reparameterize", mean, log_var, "log_var");
  require_same_shape("reparameterize", mean, eps, "eps");
  return mean + exp(log_var * 0.5f) * eps;
}

Tensor gaussian_kl(const Tensor& mean, const Tensor& log_var) {
  require_same_shape("gaussian_kl", mean, log_var, "log_var");
  if (mean.rank() < 1 || mean.dim(0) == 0)
    throw ShapeError("gaussian_kl: needs a batch of at least one sample, got " + mean.shape().str());
  return sum(1.f + log_var - square(mean) - exp(log_var)) * (-0.5f / static_cast<float>(mean.dim(0)));
}

namespace layers {

Sampling::Sampling() : Sampling(Options{}) {}

Sampling::Sampling(Options options) : options_(std::move(options)) {
  if (!(options_.kl_weight >= 0.f) || !std::isfinite(options_.kl_weight))
    throw ValueError("Sampling: kl_weight must be a finite number >= 0, got " + std::to_string(options_.kl_weight));
  name_ = options_.name;
}

Shape Sampling::infer_shape(std::span<const Shape> input_shapes) const {
  const std::string at = "Sampling '" + name_ + "'";
  if (input_shapes.size() != 2)
    throw ValueError(at + " takes two inputs, [z_mean, z_log_var], got " + std::to_string(input_shapes.size()));
  if (input_shapes[0] != input_shapes[1])
    throw ShapeError(at + ": z_mean " + input_shapes[0].str() + " and z_log_var " + input_shapes[1].str() +
                     " must have one shape");
  return input_shapes[0];
}

std::vector<Layer::WeightSpec> Sampling::weight_specs_for(std::span<const Shape> input_shapes) const {
  infer_shape(input_shapes);
  return {};
}

void Sampling::build_for(std::span<const Shape> input_shapes, Generator& gen) {
  infer_shape(input_shapes);
  // As Dropout: a seed drawn from the model's generator ties the draws to manual_seed.
  gen_.seed_(options_.seed ? *options_.seed : gen.next());
  built_ = true;
}

Tensor Sampling::forward(std::span<const Tensor> inputs, bool) {
  std::vector<Shape> shapes;
  for (const Tensor& x : inputs) {
    if (x.rank() < 1) throw ShapeError("Sampling '" + name_ + "': inputs need a batch axis, got " + x.shape().str());
    shapes.emplace_back(std::vector<int64_t>(x.shape().begin() + 1, x.shape().end()));
  }
  if (!built_) build_for(shapes, default_generator());  // used on its own, outside a model
  infer_shape(shapes);
  const Tensor& mean = inputs[0];
  const Tensor& log_var = inputs[1];
  const Tensor z = reparameterize(mean, log_var, Tensor::randn(mean.shape(), gen_));
  if (options_.kl_weight > 0.f && mean.dim(0) > 0) {
    const Tensor kl = gaussian_kl(mean, log_var);
    add_loss(options_.kl_weight == 1.f ? kl : kl * options_.kl_weight);
  }
  return z;
}

Tensor Sampling::call(const Tensor&, bool) {
  throw ValueError("Sampling '" + name_ + "' takes two inputs, [z_mean, z_log_var]: call it on a list");
}

Shape Sampling::output_shape(const Shape&) const {
  throw ValueError("Sampling '" + name_ + "' takes two inputs, [z_mean, z_log_var]");
}

Json Sampling::config() const {
  Json j = Layer::config();
  j["kl_weight"] = detail::float_json(options_.kl_weight);
  j["seed"] = options_.seed ? Json(*options_.seed) : Json(nullptr);
  return j;
}

std::shared_ptr<Layer> Sampling::from_config(const Json& c) {
  const std::string at = detail::where("Sampling", c);
  Options o;
  o.kl_weight = detail::float_of(c, "kl_weight", 0.f, at);
  if (c.contains("seed") && !c["seed"].is_null()) {
    if (!c["seed"].is_number_unsigned()) throw ValueError(at + ": seed must be a non-negative integer, got " + c["seed"].dump());
    o.seed = c["seed"].get<uint64_t>();
  }
  o.name = detail::name_of(c);
  try {
    return std::make_shared<Sampling>(o);
  } catch (const ValueError& e) {
    throw ValueError(at + ": " + e.what());
  }
}

void Sampling::export_onnx(onnx::GraphWriter& graph) const {
  using W = onnx::GraphWriter;
  const std::vector<std::string> in = graph.same_layout_inputs(name_);
  const float half = 0.5f;
  const std::string scale = graph.node("Exp", name_, {graph.node("Mul", name_, {in[1], graph.initializer(name_ + "/half", {}, &half)})});
  const std::string eps = graph.node("RandomNormalLike", name_, {in[0]}, {W::attr_float("mean", 0.f), W::attr_float("scale", 1.f)});
  graph.value().name = graph.node("Add", name_, {in[0], graph.node("Mul", name_, {scale, eps})});
}

}  // namespace layers
}  // namespace lamina
