// BatchNormalization and Dropout: the layers whose behaviour depends on `training`.
// BatchNormalization normalizes the last axis (C); its moving statistics are non-trainable
// weights that training calls update in place (see batch_norm in src/ops/norm.cpp). With
// synchronized=true (Keras; SyncBatchNormalization is the same layer) a data-parallel fit
// normalizes with the global batch's statistics (sync_batch_norm); alone it is plain batch_norm.
#include <cmath>

#include "lamina/distributed.hpp"
#include "onnx/graph_writer.hpp"
#include "lamina/layers.hpp"
#include "layers/keras_config.hpp"

namespace lamina::layers {

// --- BatchNormalization -----------------------------------------------------------------------------

BatchNormalization::BatchNormalization(Options options) : options_(std::move(options)) {
  if (!(options_.epsilon > 0.f))
    throw ValueError("BatchNormalization: epsilon must be positive, got " + std::to_string(options_.epsilon));
  if (!std::isfinite(options_.momentum))
    throw ValueError("BatchNormalization: momentum must be finite, got " + std::to_string(options_.momentum));
  take_common(options_);
  set_weight_penalty("gamma", options_.gamma_regularizer, options_.gamma_constraint);
  set_weight_penalty("beta", options_.beta_regularizer, options_.beta_constraint);
}

std::vector<Layer::WeightSpec> BatchNormalization::weight_specs(const Shape& input_shape) const {
  if (input_shape.rank() < 1) shape_error("(batch, ..., C)", input_shape);
  require_last_axis(options_.axis, input_shape, "(channels)", ". Use axis=-1 with channels-last data");
  const int64_t c = input_shape[-1];
  std::vector<WeightSpec> specs;
  if (options_.scale) specs.push_back({"gamma", {c}, options_.gamma_initializer});
  if (options_.center) specs.push_back({"beta", {c}, options_.beta_initializer});
  specs.push_back({"moving_mean", {c}, options_.moving_mean_initializer, /*trainable=*/false});
  specs.push_back({"moving_variance", {c}, options_.moving_variance_initializer, /*trainable=*/false});
  return specs;
}

Tensor& BatchNormalization::weight(const std::string& name) {
  for (Weight& w : weights_)
    if (w.name == name) return w.value;
  throw ValueError(class_name() + " '" + name_ + "' has no weight '" + name + "'" +
                   (built_ ? " (center / scale is off)" : " (not built yet)"));
}

Tensor BatchNormalization::call(const Tensor& x, bool training) {
  Tensor& mean = weight("moving_mean");
  if (x.rank() < 2 || x.dim(-1) != mean.dim(0)) shape_error("(batch, ..., " + std::to_string(mean.dim(0)) + ")", x.shape());
  const Tensor gamma = options_.scale ? weight("gamma") : Tensor(), beta = options_.center ? weight("beta") : Tensor();
  distributed::Communicator* comm = distributed::active();
  if (options_.synchronized && comm && comm->size() > 1)  // statistics of the global batch
    return sync_batch_norm(x, gamma, beta, mean, weight("moving_variance"), *comm, training && trainable_,
                           options_.momentum, options_.epsilon);
  return batch_norm(x, gamma, beta, mean, weight("moving_variance"), training && trainable_, options_.momentum,
                    options_.epsilon);
}

Json BatchNormalization::config() const {
  Json j = Layer::config();
  j["axis"] = options_.axis;
  j["momentum"] = detail::float_json(options_.momentum);
  j["epsilon"] = detail::float_json(options_.epsilon);
  j["center"] = options_.center;
  j["scale"] = options_.scale;
  j["beta_initializer"] = options_.beta_initializer.config();
  j["gamma_initializer"] = options_.gamma_initializer.config();
  j["moving_mean_initializer"] = options_.moving_mean_initializer.config();
  j["moving_variance_initializer"] = options_.moving_variance_initializer.config();
  detail::write_gamma_beta_penalties(j, options_);
  j["synchronized"] = options_.synchronized;
  return j;
}

// --- Dropout -------------------------------------------------------------------------------------------

Dropout::Dropout(Options options) : options_(std::move(options)) {
  if (!(options_.rate >= 0.f && options_.rate < 1.f))
    throw ValueError("Dropout: rate must be in [0, 1), got " + std::to_string(options_.rate));
  take_common(options_);
}

void Dropout::build(const Shape&, Generator& gen) {
  // Drawing the seed from the model's generator at build ties the masks to manual_seed.
  gen_.seed_(options_.seed ? *options_.seed : gen.next());
  built_ = true;
}

Tensor Dropout::call(const Tensor& x, bool training) {
  if (!built_) build(x.shape(), default_generator());  // used on its own, outside a model
  return dropout(x, options_.rate, gen_, training);
}

Json Dropout::config() const {
  Json j = Layer::config();
  j["rate"] = detail::float_json(options_.rate);
  j["seed"] = options_.seed ? Json(*options_.seed) : Json(nullptr);
  j["noise_shape"] = nullptr;
  return j;
}

// --- configs and ONNX export ---------------------------------------------------------------------------

std::shared_ptr<Layer> BatchNormalization::from_config(const Json& c) {
  const std::string at = detail::where("BatchNormalization", c);
  Options o;
  o.axis = detail::single_axis_of(c, o.axis, "the channel axis", at);
  o.momentum = detail::float_of(c, "momentum", o.momentum, at);
  o.epsilon = detail::float_of(c, "epsilon", o.epsilon, at);
  o.center = c.value("center", true);
  o.scale = c.value("scale", true);
  o.beta_initializer = detail::initializer_of(c, "beta_initializer", o.beta_initializer);
  o.gamma_initializer = detail::initializer_of(c, "gamma_initializer", o.gamma_initializer);
  o.moving_mean_initializer = detail::initializer_of(c, "moving_mean_initializer", o.moving_mean_initializer);
  o.moving_variance_initializer =
      detail::initializer_of(c, "moving_variance_initializer", o.moving_variance_initializer);
  detail::read_gamma_beta_penalties(o, c, at);
  o.synchronized = c.value("synchronized", false);
  detail::read_common(o, c);
  return std::make_shared<BatchNormalization>(o);
}

// Inference form: (x - moving_mean) / sqrt(moving_variance + epsilon) * gamma + beta over the
// channels, which ONNX wants on axis 1: images go channels-first, other ranks through a Transpose
// each way.
void BatchNormalization::export_onnx(onnx::GraphWriter& g) const {
  using W = onnx::GraphWriter;
  const Tensor& mean = W::weight(*this, "moving_mean");
  const int64_t c = mean.dim(0);
  const int64_t rank = g.value().shape.rank() + 1;  // with the batch axis
  std::vector<int64_t> to_first, to_last;
  if (rank == 4) {
    g.to_channels_first(name());
  } else if (rank > 2) {
    to_first = {0, rank - 1};
    for (int64_t i = 1; i < rank - 1; ++i) to_first.push_back(i);
    to_last = {0};
    for (int64_t i = 2; i < rank; ++i) to_last.push_back(i);
    to_last.push_back(1);
    g.value().name = g.node("Transpose", name() + "/to_channels_first", {g.value().name}, {W::attr_ints("perm", to_first)});
  }
  const std::vector<float> ones(static_cast<size_t>(c), 1.f), zeros(static_cast<size_t>(c), 0.f);
  const Tensor* gamma_w = find_weight("gamma");
  const Tensor* beta_w = find_weight("beta");
  const std::string gamma = gamma_w ? g.initializer(name() + "/gamma", *gamma_w) : g.initializer(name() + "/gamma", {c}, ones.data());
  const std::string beta = beta_w ? g.initializer(name() + "/beta", *beta_w) : g.initializer(name() + "/beta", {c}, zeros.data());
  onnx::Value& v = g.value();
  v.name = g.node("BatchNormalization", name(),
                  {v.name, gamma, beta, g.initializer(name() + "/moving_mean", mean),
                   g.initializer(name() + "/moving_variance", W::weight(*this, "moving_variance"))},
                  {W::attr_float("epsilon", options_.epsilon)});
  if (!to_last.empty())
    v.name = g.node("Transpose", name() + "/to_channels_last", {v.name}, {W::attr_ints("perm", to_last)});
}

std::shared_ptr<Layer> Dropout::from_config(const Json& c) {
  const std::string at = detail::where("Dropout", c);
  if (!c.contains("rate")) throw ValueError(at + ": 'rate' is required");
  if (c.contains("noise_shape") && !c["noise_shape"].is_null())
    throw ValueError(at + ": noise_shape " + c["noise_shape"].dump() + " is not supported (one mask per element)");
  Options o;
  o.rate = detail::float_of(c, "rate", 0.f, at);
  if (c.contains("seed") && c["seed"].is_number_integer()) o.seed = c["seed"].get<uint64_t>();
  detail::read_common(o, c);
  return std::make_shared<Dropout>(o);
}

void Dropout::export_onnx(onnx::GraphWriter&) const {}  // the identity at inference

}  // namespace lamina::layers
