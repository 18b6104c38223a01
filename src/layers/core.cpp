// Shape-only and parameter-free layers: Flatten, Reshape, Activation, LeakyReLU, InputLayer.
#include <algorithm>
#include <cmath>

#include "lamina/layers.hpp"
#include "lamina/ops.hpp"
#include "layers/keras_config.hpp"

namespace lamina::layers {

Flatten::Flatten(Options options) {
  name_ = std::move(options.name);
  input_shape_ = std::move(options.input_shape);
}

Tensor Flatten::call(const Tensor& x, bool) {
  if (x.rank() < 1) shape_error("(batch, ...)", x.shape());
  return flatten(x, 1);
}

Shape Flatten::output_shape(const Shape& input_shape) const { return Shape{input_shape.numel()}; }

Reshape::Reshape(Options options) : target_(std::move(options.target_shape)) {
  name_ = std::move(options.name);
  input_shape_ = std::move(options.input_shape);
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
  name_ = std::move(options.name);
  input_shape_ = std::move(options.input_shape);
}

Tensor Activation::call(const Tensor& x, bool) { return activation_(x); }

Json Activation::config() const {
  Json j = Layer::config();
  j["activation"] = activation_.name();
  return j;
}

LeakyReLU::LeakyReLU(Options options) : slope_(options.negative_slope) {
  name_ = std::move(options.name);
  input_shape_ = std::move(options.input_shape);
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
  return {{"name", name_}, {"batch_shape", batch}, {"dtype", "float32"}, {"sparse", false}};
}

}  // namespace lamina::layers
