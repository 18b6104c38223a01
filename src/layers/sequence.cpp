// Masking, RepeatVector and TimeDistributed (include/lamina/layers/sequence.hpp): compositions of
// ops over (batch, steps, features). N = batch, T = steps, F = features.
#include "lamina/layers/sequence.hpp"

#include "layers/keras_config.hpp"
#include "onnx/graph_writer.hpp"

namespace lamina::layers {

// --- Masking -----------------------------------------------------------------------------------------

Masking::Masking(Options options) : options_(std::move(options)) { take_common(options_); }

Shape Masking::output_shape(const Shape& in) const {
  if (in.rank() < 2) shape_error("sequences (batch, steps, features)", in);
  return in;
}

Tensor Masking::mask_for(const Tensor& x) const {
  if (x.rank() < 3) shape_error("(batch, steps, features)", x.shape());
  const int64_t steps = x.dim(0) * x.dim(1), features = x.numel() / std::max<int64_t>(steps, 1);
  Tensor mask = Tensor::empty({x.dim(0), x.dim(1)});
  const float* px = x.data();
  float* m = mask.data();
  for (int64_t s = 0; s < steps; ++s) {
    const float* row = px + s * features;
    bool any = false;
    for (int64_t f = 0; f < features && !any; ++f) any = row[f] != options_.mask_value;
    m[s] = any ? 1.f : 0.f;
  }
  return mask;
}

Tensor Masking::call(const Tensor& x, bool) {
  const Tensor mask = mask_for(x);
  std::vector<int64_t> dims(static_cast<size_t>(x.rank()), 1);  // (N, T, 1, ...): broadcast over features
  dims[0] = x.dim(0);
  dims[1] = x.dim(1);
  return mul(x, reshape(mask, Shape(std::move(dims))));
}

Json Masking::config() const {
  Json j = Layer::config();
  j["mask_value"] = detail::float_json(options_.mask_value);
  return j;
}

// x * Cast(ReduceMax(Not(Equal(x, mask_value))) over the features).
void Masking::export_onnx(onnx::GraphWriter& g) const {
  using W = onnx::GraphWriter;
  g.to_channels_last(name());
  onnx::Value& v = g.value();
  std::vector<int64_t> features;
  for (int64_t a = 2; a <= v.shape.rank(); ++a) features.push_back(a);
  const float value = options_.mask_value;
  const std::string same = g.node("Equal", name(), {v.name, g.initializer(name() + "/mask_value", {}, &value)});
  const std::string kept = g.node("Cast", name(), {g.node("Not", name(), {same})}, {W::attr_int("to", 1)});  // FLOAT
  const std::string mask =
      g.node("ReduceMax", name(), {kept}, {W::attr_ints("axes", features), W::attr_int("keepdims", 1)});
  v.name = g.node("Mul", name(), {v.name, mask});
}

std::shared_ptr<Layer> Masking::from_config(const Json& c) {
  const std::string at = detail::where("Masking", c);
  Options o;
  o.mask_value = detail::float_of(c, "mask_value", o.mask_value, at);
  detail::read_common(o, c);
  return std::make_shared<Masking>(o);
}

// --- RepeatVector ------------------------------------------------------------------------------------

RepeatVector::RepeatVector(Options options) : options_(std::move(options)) {
  if (options_.n <= 0)
    throw ValueError("RepeatVector '" + options_.name + "': n must be a positive integer, got " +
                     std::to_string(options_.n));
  take_common(options_);
}

Shape RepeatVector::output_shape(const Shape& in) const {
  if (in.rank() != 1) shape_error("(batch, features)", in);
  return Shape{options_.n, in[0]};
}

// x (N, 1, F) times ones (1, n, 1): the copies by broadcasting, and their gradients summed back.
Tensor RepeatVector::call(const Tensor& x, bool) {
  if (x.rank() != 2) shape_error("(batch, features)", x.shape());
  return mul(reshape(x, {x.dim(0), 1, x.dim(1)}), Tensor::ones({1, options_.n, 1}));
}

Json RepeatVector::config() const {
  Json j = Layer::config();
  j["n"] = options_.n;
  return j;
}

std::shared_ptr<Layer> RepeatVector::from_config(const Json& c) {
  Options o;
  o.n = detail::positive_int_of(c, "n", detail::where("RepeatVector", c));
  detail::read_common(o, c);
  return std::make_shared<RepeatVector>(o);
}

// Unsqueeze to (N, 1, F), then Expand to (N, n, F).
void RepeatVector::export_onnx(onnx::GraphWriter& g) const {
  g.to_channels_last(name());
  onnx::Value& v = g.value();
  const std::string one = g.node("Unsqueeze", name(), {v.name, g.int64_initializer(name() + "/axes", {1})});
  v.name = g.node("Expand", name(), {one, g.int64_initializer(name() + "/shape", {1, options_.n, 1})});
}

// --- TimeDistributed ---------------------------------------------------------------------------------

TimeDistributed::TimeDistributed(Options options) : options_(std::move(options)) {
  if (!options_.layer) throw ValueError("TimeDistributed '" + options_.name + "': no layer to wrap");
  take_common(options_);
}

TimeDistributed::TimeDistributed(const TimeDistributed& other) : Layer(other), options_(other.options_) {
  options_.layer = clone_layer(*other.options_.layer);
}

namespace {

// (T, rest...) -> rest: what the inner layer sees per step.
Shape step_shape(const Shape& in) { return Shape(std::vector<int64_t>(in.begin() + 1, in.end())); }

}  // namespace

Shape TimeDistributed::output_shape(const Shape& in) const {
  if (in.rank() < 2)
    shape_error("(batch, steps, ...)", in, "TimeDistributed applies its layer to each step of a sequence");
  std::vector<int64_t> dims{in[0]};
  for (int64_t d : options_.layer->output_shape(step_shape(in))) dims.push_back(d);
  return Shape(std::move(dims));
}

std::vector<Layer::WeightSpec> TimeDistributed::weight_specs(const Shape& in) const {
  output_shape(in);  // checks the rank and the inner layer's shape
  return options_.layer->weight_specs(step_shape(in));
}

void TimeDistributed::build(const Shape& in, Generator& gen) {
  output_shape(in);
  options_.layer->build(step_shape(in), gen);
  weights_ = options_.layer->weights();  // the same tensors
  built_ = true;
}

Tensor TimeDistributed::call(const Tensor& x, bool training) {
  if (x.rank() < 3) shape_error("(batch, steps, ...)", x.shape());
  const int64_t n = x.dim(0), t = x.dim(1);
  std::vector<int64_t> folded{n * t};
  for (int64_t a = 2; a < x.rank(); ++a) folded.push_back(x.dim(a));
  const Tensor y = options_.layer->call(reshape(x, Shape(std::move(folded))), training);
  std::vector<int64_t> dims{n, t};
  for (int64_t a = 1; a < y.rank(); ++a) dims.push_back(y.dim(a));
  return reshape(y, Shape(std::move(dims)));
}

void TimeDistributed::set_trainable(bool on) {
  Layer::set_trainable(on);
  options_.layer->set_trainable(on);
}

Tensor TimeDistributed::regularization_loss() const { return options_.layer->regularization_loss(); }

void TimeDistributed::apply_constraints() { options_.layer->apply_constraints(); }

Json TimeDistributed::config() const {
  Json j = Layer::config();
  const Layer& inner = *options_.layer;
  j["layer"] = {{"module", "keras.layers"},
                {"class_name", inner.class_name()},
                {"config", inner.config()},
                {"registered_name", nullptr}};
  return j;
}

std::shared_ptr<Layer> TimeDistributed::from_config(const Json& c) {
  const std::string at = detail::where("TimeDistributed", c);
  if (!c.contains("layer") || !c["layer"].is_object() || !c["layer"].contains("class_name") ||
      !c["layer"]["class_name"].is_string())
    throw ValueError(at + ": 'layer' must be a serialized layer {\"class_name\": ..., \"config\": ...}, got " +
                     (c.contains("layer") ? c["layer"].dump() : std::string("nothing")));
  const Json& l = c["layer"];
  Options o;
  o.layer = layer_from_config(l["class_name"].get<std::string>(), l.value("config", Json::object()));
  detail::read_common(o, c);
  return std::make_shared<TimeDistributed>(o);
}

}  // namespace lamina::layers
