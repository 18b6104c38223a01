// Embedding (include/lamina/layers/embedding.hpp): ids (N, ...) -> rows of the embeddings table
// (input_dim, output_dim). The lookup is index_select along the table's rows (src/ops/index.cpp:
// a row copy forward, a scatter-add backward), after this layer checked every id itself so that
// a bad one is reported with its batch row and position. N = batch, T = steps, D = output_dim.
#include "lamina/layers/embedding.hpp"

#include <cmath>
#include <cstdio>

#include "layers/keras_config.hpp"
#include "onnx/graph_writer.hpp"

namespace lamina::layers {

Embedding::Embedding(Options options) : options_(std::move(options)) {
  if (options_.input_dim <= 0 || options_.output_dim <= 0)
    throw ValueError("Embedding '" + options_.name + "': input_dim and output_dim must be positive, got " +
                     std::to_string(options_.input_dim) + " and " + std::to_string(options_.output_dim));
  take_common(options_);
  set_weight_penalty("embeddings", options_.embeddings_regularizer, options_.embeddings_constraint);
  activity_regularizer_ = options_.activity_regularizer;
}

Shape Embedding::output_shape(const Shape& in) const {
  std::vector<int64_t> dims = in.dims();
  dims.push_back(options_.output_dim);
  return Shape(std::move(dims));
}

std::vector<Layer::WeightSpec> Embedding::weight_specs(const Shape&) const {
  return {{"embeddings", {options_.input_dim, options_.output_dim}, options_.embeddings_initializer}};
}

Tensor Embedding::call(const Tensor& x, bool) {
  if (x.rank() < 1) shape_error("ids (batch, T)", x.shape());
  const float* ids = x.data();
  const int64_t n = x.numel(), per_row = x.dim(0) ? n / x.dim(0) : 0, vocab = options_.input_dim;
  for (int64_t i = 0; i < n; ++i) {
    const float v = ids[i];
    if (v >= 0.f && v < static_cast<float>(vocab) && v == std::floor(v)) continue;
    std::vector<int64_t> pos;  // the id's position within its sample
    for (int64_t a = x.rank() - 1, rest = i % per_row; a >= 1; --a) {
      pos.insert(pos.begin(), rest % x.dim(a));
      rest /= x.dim(a);
    }
    char text[32];
    std::snprintf(text, sizeof text, "%g", static_cast<double>(v));
    throw ValueError("Embedding '" + name_ + "': index " + text + " at batch row " + std::to_string(i / per_row) +
                     ", position " + (pos.size() == 1 ? std::to_string(pos[0]) : Shape(pos).str()) +
                     " is not a token id of input_dim " + std::to_string(vocab) +
                     " (ids must be integers in [0, " + std::to_string(vocab) + "))");
  }
  const Tensor rows = index_select(weights_.at(0).value, 0, reshape(x.detach(), Shape{n}));
  std::vector<int64_t> dims = x.shape().dims();
  dims.push_back(options_.output_dim);
  return reshape(rows, Shape(std::move(dims)));
}

Tensor Embedding::mask_for(const Tensor& x) const {
  if (!options_.mask_zero) return Tensor();
  Tensor mask = Tensor::empty(x.shape());
  const float* ids = x.data();
  float* m = mask.data();
  for (int64_t i = 0; i < x.numel(); ++i) m[i] = ids[i] != 0.f ? 1.f : 0.f;
  return mask;
}

Json Embedding::config() const {
  Json j = Layer::config();
  j["input_dim"] = options_.input_dim;
  j["output_dim"] = options_.output_dim;
  j["embeddings_initializer"] = options_.embeddings_initializer.config();
  j["embeddings_regularizer"] = detail::penalty_json(options_.embeddings_regularizer);
  if (!j.contains("activity_regularizer")) j["activity_regularizer"] = nullptr;
  j["embeddings_constraint"] = detail::penalty_json(options_.embeddings_constraint);
  j["mask_zero"] = options_.mask_zero;
  return j;
}

std::shared_ptr<Layer> Embedding::from_config(const Json& c) {
  const std::string at = detail::where("Embedding", c);
  detail::require_default(c, "sparse", false, at);
  Options o;
  o.input_dim = detail::positive_int_of(c, "input_dim", at);
  o.output_dim = detail::positive_int_of(c, "output_dim", at);
  o.embeddings_initializer = detail::initializer_of(c, "embeddings_initializer", o.embeddings_initializer);
  o.embeddings_regularizer = detail::regularizer_of(c, "embeddings_regularizer", at);
  o.embeddings_constraint = detail::constraint_of(c, "embeddings_constraint", at);
  if (c.contains("mask_zero") && !c["mask_zero"].is_null()) o.mask_zero = c["mask_zero"].get<bool>();
  // input_dim here is the vocabulary, not the input shape it means on other layers
  // (input_shape_from_config's Keras 1 reading): the shape is the batch shape or input_length.
  Json shape_keys = c;
  shape_keys.erase("input_dim");
  o.input_shape = input_shape_from_config(shape_keys);
  if (!o.input_shape && c.contains("input_length") && !c["input_length"].is_null()) {
    if (!c["input_length"].is_number_integer() || c["input_length"].get<int64_t>() <= 0)
      throw ValueError(at + ": 'input_length' must be a positive integer or null, got " + c["input_length"].dump());
    o.input_shape = Shape{c["input_length"].get<int64_t>()};
  }
  o.name = detail::name_of(c);
  return std::make_shared<Embedding>(o);
}

// Gather(embeddings, Cast(ids, int64), axis 0): ONNX's Gather takes integer indices, and the
// graph's input is float as every Lamina tensor.
void Embedding::export_onnx(onnx::GraphWriter& g) const {
  using W = onnx::GraphWriter;
  g.to_channels_last(name());
  onnx::Value& v = g.value();
  const std::string ids = g.node("Cast", name() + "/ids", {v.name}, {W::attr_int("to", 7)});  // 7: INT64
  v.name = g.node("Gather", name(), {g.initializer(name() + "/embeddings", W::weight(*this, "embeddings")), ids},
                  {W::attr_int("axis", 0)});
}

}  // namespace lamina::layers
