// Shape-only and parameter-free layers: Flatten, Reshape, Activation, LeakyReLU, InputLayer.
#include <algorithm>
#include <cmath>

#include "onnx/graph_writer.hpp"
#include "lamina/layers.hpp"
#include "lamina/ops.hpp"
#include "layers/keras_config.hpp"

namespace lamina::layers {

Flatten::Flatten(Options options) {
  take_common(options);
}

Tensor Flatten::call(const Tensor& x, bool) {
  if (x.rank() < 1) shape_error("(batch, ...)", x.shape());
  return flatten(x, 1);
}

Shape Flatten::output_shape(const Shape& input_shape) const { return Shape{input_shape.numel()}; }

Reshape::Reshape(Options options) : target_(std::move(options.target_shape)) {
  take_common(options);
  int unknown = 0;
  for (int64_t d : target_) {
    unknown += d == -1;
    if (d == 0) throw ValueError("Reshape: target_shape " + target_.str() + " has a zero dimension");
  }
  if (unknown > 1) throw ValueError("Reshape: target_shape " + target_.str() + " may have at most one -1");
}

Shape Reshape::output_shape(const Shape& in) const {
  std::vector<int64_t> dims = target_.dims();
  int64_t known = 1;
  for (int64_t d : dims) known *= d == -1 ? 1 : d;
  auto unknown = std::find(dims.begin(), dims.end(), -1);
  if (unknown != dims.end() && in.numel() % known == 0) *unknown = in.numel() / known;
  if (Shape(dims).numel() != in.numel() || (unknown != dims.end() && *unknown <= 0))
    shape_error((unknown != dims.end() ? "a positive multiple of " : "") + std::to_string(known) +
                    " elements per sample (to reshape into " + target_.str() + ")",
                in);
  return Shape(dims);
}

void Reshape::build(const Shape& input_shape, Generator&) {
  output_shape(input_shape);  // checks the element count
  built_ = true;
}

Tensor Reshape::call(const Tensor& x, bool) {
  if (x.rank() < 1) shape_error("(batch, ...)", x.shape());
  const Shape sample(std::vector<int64_t>(x.shape().begin() + 1, x.shape().end()));
  std::vector<int64_t> dims{x.dim(0)};
  for (int64_t d : output_shape(sample)) dims.push_back(d);
  return reshape(x, Shape(dims));
}

Json Reshape::config() const {
  Json j = Layer::config();
  j["target_shape"] = target_.dims();
  return j;
}

Activation::Activation(Options options) : activation_(options.activation) {
  take_common(options);
}

Tensor Activation::call(const Tensor& x, bool) { return activation_(x); }

Json Activation::config() const {
  Json j = Layer::config();
  j["activation"] = activation_.name();
  return j;
}

LeakyReLU::LeakyReLU(Options options) : slope_(options.negative_slope) {
  take_common(options);
  if (!std::isfinite(slope_)) throw ValueError("LeakyReLU: negative_slope must be finite, got " + std::to_string(slope_));
}

Tensor LeakyReLU::call(const Tensor& x, bool) { return leaky_relu(x, slope_); }

Json LeakyReLU::config() const {
  Json j = Layer::config();
  j["negative_slope"] = detail::float_json(slope_);
  return j;
}

InputLayer::InputLayer(Shape shape, std::string name) {
  name_ = std::move(name);
  input_shape_ = std::move(shape);
}

Tensor InputLayer::call(const Tensor& x, bool) {
  std::vector<int64_t> per_sample(x.shape().begin() + (x.rank() ? 1 : 0), x.shape().end());
  if (Shape(per_sample) != *input_shape_) shape_error("(batch, " + input_shape_->str().substr(1), x.shape());
  return x;
}

Json InputLayer::config() const {
  Json batch = Json::array({nullptr});
  for (int64_t d : *input_shape_) batch.push_back(d);
  return {{"name", name_}, {"batch_shape", batch}, {"dtype", "float32"}, {"sparse", false}, {"ragged", false}};
}

// --- configs and ONNX export ---------------------------------------------------------------------------

Json Flatten::config() const {
  Json j = Layer::config();
  j["data_format"] = "channels_last";
  return j;
}

std::shared_ptr<Layer> Flatten::from_config(const Json& c) {
  detail::require_channels_last(c, detail::where("Flatten", c));  // channels_first flattens in another order
  return std::make_shared<Flatten>(Options{.input_shape = input_shape_from_config(c), .name = detail::name_of(c)});
}

// Lamina's element order (channels-last), the one the next Dense kernel expects.
void Flatten::export_onnx(onnx::GraphWriter& g) const {
  g.to_channels_last(name());
  onnx::Value& v = g.value();
  if (v.shape.rank() != 1) v.name = g.node("Flatten", name(), {v.name}, {onnx::GraphWriter::attr_int("axis", 1)});
}

std::shared_ptr<Layer> Reshape::from_config(const Json& c) {
  const std::string at = detail::where("Reshape", c);
  if (!c.contains("target_shape") || !c["target_shape"].is_array())
    throw ValueError(at + ": 'target_shape' must be a list of dimensions");
  std::vector<int64_t> dims;
  for (const Json& d : c["target_shape"]) {
    if (!d.is_number_integer()) throw ValueError(at + ": target_shape " + c["target_shape"].dump() + " has a non-integer");
    dims.push_back(d.get<int64_t>());
  }
  return std::make_shared<Reshape>(
      Options{.target_shape = Shape(dims), .input_shape = input_shape_from_config(c), .name = detail::name_of(c)});
}

void Reshape::export_onnx(onnx::GraphWriter& g) const {
  g.to_channels_last(name());
  std::vector<int64_t> dims{-1};  // the batch: whatever the element count leaves
  for (int64_t d : output_shape(g.value().shape)) dims.push_back(d);
  onnx::Value& v = g.value();
  v.name = g.node("Reshape", name(), {v.name, g.int64_initializer(name() + "/shape", dims)});
}

std::shared_ptr<Layer> Activation::from_config(const Json& c) {
  return std::make_shared<Activation>(Options{
      .activation = detail::activation_of(c), .input_shape = input_shape_from_config(c), .name = detail::name_of(c)});
}

void Activation::export_onnx(onnx::GraphWriter& g) const { g.activation(activation_, name()); }

// Keras 3: negative_slope (default 0.3); Keras 2: alpha.
std::shared_ptr<Layer> LeakyReLU::from_config(const Json& c) {
  const std::string at = detail::where("LeakyReLU", c);
  const float slope = detail::float_of(c, "negative_slope", detail::float_of(c, "alpha", 0.3f, at), at);
  return std::make_shared<LeakyReLU>(
      Options{.negative_slope = slope, .input_shape = input_shape_from_config(c), .name = detail::name_of(c)});
}

void LeakyReLU::export_onnx(onnx::GraphWriter& g) const {
  onnx::Value& v = g.value();
  v.name = g.node("LeakyRelu", name(), {v.name}, {onnx::GraphWriter::attr_float("alpha", slope_)});
}

std::shared_ptr<Layer> InputLayer::from_config(const Json& c) {
  auto shape = input_shape_from_config(c);
  const std::string at = detail::where("InputLayer", c);
  if (!shape) throw ValueError(at + " has no batch_shape / batch_input_shape");
  for (const char* key : {"sparse", "ragged", "optional"}) detail::require_default(c, key, false, at);
  return std::make_shared<InputLayer>(*shape, detail::name_of(c));
}

void InputLayer::export_onnx(onnx::GraphWriter&) const {}  // the graph's input itself

}  // namespace lamina::layers
