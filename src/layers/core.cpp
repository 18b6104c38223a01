// Shape-only and parameter-free layers: Flatten, Activation, InputLayer.
#include "lamina/layers.hpp"
#include "lamina/ops.hpp"

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
