// The Layer base (weights, errors, config, the default ONNX refusal), activation functions by
// name, and the registry that turns Keras class names into layers.
#include <algorithm>
#include <functional>
#include <map>
#include <mutex>
#include <set>

#include "lamina/layers.hpp"
#include "lamina/layers/bidirectional.hpp"
#include "lamina/layers/conv1d.hpp"
#include "lamina/layers/conv_transpose.hpp"
#include "lamina/layers/embedding.hpp"
#include "lamina/layers/layer_normalization.hpp"
#include "lamina/layers/merge.hpp"
#include "lamina/layers/recurrent.hpp"
#include "lamina/layers/sampling.hpp"
#include "lamina/layers/resize.hpp"
#include "lamina/layers/sequence.hpp"
#include "lamina/ops.hpp"
#include "layers/keras_config.hpp"
#include "onnx/graph_writer.hpp"

namespace lamina {

namespace {

const std::map<std::string, Activation::Kind>& activation_names() {
  static const std::map<std::string, Activation::Kind> names = {
      {"linear", Activation::linear},   {"relu", Activation::relu},
      {"leaky_relu", Activation::leaky_relu}, {"elu", Activation::elu},
      {"sigmoid", Activation::sigmoid}, {"tanh", Activation::tanh},
      {"softmax", Activation::softmax}, {"log_softmax", Activation::log_softmax},
      {"exponential", Activation::exponential}, {"hard_sigmoid", Activation::hard_sigmoid},
  };
  return names;
}

}  // namespace

Activation::Activation(const char* name) {
  const auto& names = activation_names();
  const std::string key = name ? name : "";
  auto it = names.find(key.empty() ? "linear" : key);
  if (it == names.end()) {
    std::string known;
    for (const auto& [n, k] : names) known += (known.empty() ? "" : ", ") + n;
    throw ValueError("activation '" + key + "' is not known (known: " + known + ")");
  }
  kind_ = it->second;
}

std::string Activation::name() const {
  for (const auto& [n, k] : activation_names())
    if (k == kind_) return n;
  return "linear";
}

FusedActivation Activation::fused() const {
  switch (kind_) {
    case relu: return FusedActivation::relu;
    case sigmoid: return FusedActivation::sigmoid;
    case tanh: return FusedActivation::tanh;
    default: return FusedActivation::none;
  }
}

Tensor Activation::operator()(const Tensor& x) const {
  switch (kind_) {
    case linear: return x;
    case relu: return lamina::relu(x);
    case leaky_relu: return lamina::leaky_relu(x);
    case elu: return lamina::elu(x);
    case sigmoid: return lamina::sigmoid(x);
    case tanh: return lamina::tanh(x);
    case softmax: return lamina::softmax(x);
    case log_softmax: return lamina::log_softmax(x);
    case exponential: return lamina::exp(x);
    case hard_sigmoid: return clamp(add(mul(x, 1.f / 6.f), 0.5f), 0.f, 1.f);
  }
  return x;
}

// --- Layer ---------------------------------------------------------------------------------------

void Layer::build(const Shape& input_shape, Generator& gen) {
  const std::vector<WeightSpec> specs = weight_specs(input_shape);
  weights_.clear();
  for (const WeightSpec& w : specs) add_weight(w.name, w.shape, w.initializer, gen, w.trainable);
  built_ = true;
}

Json Layer::config() const {
  Json j = {{"name", name_}, {"trainable", trainable_}, {"dtype", "float32"}};
  if (input_shape_) {
    Json batch = Json::array({nullptr});
    for (int64_t d : *input_shape_) batch.push_back(d);
    j["batch_input_shape"] = batch;
  }
  if (activity_regularizer_) j["activity_regularizer"] = activity_regularizer_->config();
  return j;
}

// --- freezing, regularizers, constraints -----------------------------------------------------------

std::vector<bool> Layer::trainable_mask() const {
  std::vector<bool> mask;
  for (const Weight& w : weights_) mask.push_back(trainable_ && w.trainable);
  return mask;
}

void Layer::set_weight_penalty(const std::string& weight, const std::optional<Regularizer>& regularizer,
                               const std::optional<Constraint>& constraint) {
  if (regularizer) regularizers_[weight] = *regularizer; else regularizers_.erase(weight);
  if (constraint) constraints_[weight] = *constraint; else constraints_.erase(weight);
}

const Regularizer* Layer::weight_regularizer(const std::string& weight) const {
  const auto it = regularizers_.find(weight);
  return it == regularizers_.end() ? nullptr : &it->second;
}

const Constraint* Layer::weight_constraint(const std::string& weight) const {
  const auto it = constraints_.find(weight);
  return it == constraints_.end() ? nullptr : &it->second;
}

void Layer::add_loss(Tensor loss) {
  if (!loss.defined() || loss.numel() != 1)
    throw ValueError(class_name() + " '" + name_ + "': add_loss takes a scalar loss, got " +
                     (loss.defined() ? loss.shape().str() : std::string("an undefined tensor")));
  added_losses_.push_back(std::move(loss));
}

Tensor Layer::regularization_loss() const {
  Tensor total;
  if (regularizers_.empty()) return total;
  const std::vector<bool> mask = trainable_mask();
  for (size_t i = 0; i < weights_.size(); ++i) {
    const Regularizer* r = mask[i] ? weight_regularizer(weights_[i].name) : nullptr;
    if (!r) continue;
    Tensor p = (*r)(weights_[i].value);
    total = total.defined() ? add(total, p) : p;
  }
  return total;
}

void Layer::apply_constraints() {
  if (constraints_.empty()) return;
  const std::vector<bool> mask = trainable_mask();
  for (size_t i = 0; i < weights_.size(); ++i)
    if (const Constraint* c = mask[i] ? weight_constraint(weights_[i].name) : nullptr) {
      try {
        c->apply(weights_[i].value);
      } catch (const ValueError& e) {
        throw ValueError(class_name() + " '" + name_ + "': " + weights_[i].name + " constraint: " + e.what());
      }
    }
}

const Tensor* Layer::find_weight(const std::string& name) const {
  for (const Weight& w : weights_)
    if (w.name == name) return &w.value;
  return nullptr;
}

int64_t Layer::count_params() const {
  int64_t n = 0;
  for (const Weight& w : weights_) n += w.value.numel();
  return n;
}

Tensor& Layer::add_weight(const std::string& name, const Shape& shape, const Initializer& init, Generator& gen,
                          bool trainable) {
  Tensor t = Tensor::empty(shape);
  init.fill(t, gen);
  if (trainable) t.requires_grad_();
  weights_.push_back({name, t, trainable});
  return weights_.back().value;
}

void Layer::export_onnx(onnx::GraphWriter&) const {
  onnx::GraphWriter::unsupported(*this, "no ONNX export for the layer class '" + class_name() +
                                            "' (override Layer::export_onnx to give it one)");
}

void Layer::require_one_input(size_t count) const {
  if (count != 1)
    throw ValueError(class_name() + " '" + name_ + "' takes one input, got " + std::to_string(count));
}

void Layer::build_for(std::span<const Shape> input_shapes, Generator& gen) {
  require_one_input(input_shapes.size());
  build(input_shapes[0], gen);
}

std::vector<Layer::WeightSpec> Layer::weight_specs_for(std::span<const Shape> input_shapes) const {
  require_one_input(input_shapes.size());
  return weight_specs(input_shapes[0]);
}

Shape Layer::infer_shape(std::span<const Shape> input_shapes) const {
  require_one_input(input_shapes.size());
  return output_shape(input_shapes[0]);
}

Tensor Layer::forward(std::span<const Tensor> inputs, bool training) {
  require_one_input(inputs.size());
  return call(inputs[0], training);
}

std::vector<Shape> Layer::infer_shapes(std::span<const Shape> input_shapes) const { return {infer_shape(input_shapes)}; }

Tensor Layer::compute_mask(std::span<const Tensor> /*inputs*/, std::span<const Tensor> masks) const {
  return supports_masking() && !masks.empty() ? masks[0] : Tensor();
}

Layer::Outputs Layer::call_all(std::span<const Tensor> inputs, std::span<const Tensor> masks, bool training) {
  Outputs out;
  out.values.push_back(forward(inputs, training));
  out.masks.push_back(compute_mask(inputs, masks));
  return out;
}

// --- symbolic calls (the Functional API) -------------------------------------------------------------

const Shape& KerasTensor::shape() const {
  if (!call_) throw ValueError("KerasTensor: an empty symbolic tensor has no shape");
  return call_->shapes.at(index_);
}

size_t KerasTensor::output_count() const { return call_ ? call_->shapes.size() : 0; }

KerasTensor KerasTensor::output(size_t i) const {
  if (!call_) throw ValueError("KerasTensor: an empty symbolic tensor has no outputs");
  if (i >= call_->shapes.size())
    throw ValueError("KerasTensor: layer '" + call_->layer->name() + "' (" + call_->layer->class_name() + ") has " +
                     std::to_string(call_->shapes.size()) + " output" + (call_->shapes.size() == 1 ? "" : "s") +
                     ", asked for output " + std::to_string(i));
  return KerasTensor(call_, i);
}

std::vector<KerasTensor> KerasTensor::outputs() const {
  std::vector<KerasTensor> out;
  for (size_t i = 0; i < output_count(); ++i) out.push_back(KerasTensor(call_, i));
  return out;
}

const Layer& KerasTensor::layer() const {
  if (!call_) throw ValueError("KerasTensor: an empty symbolic tensor has no layer");
  return *call_->layer;
}

KerasTensor Layer::operator()(const KerasTensor& input) { return (*this)(std::vector<KerasTensor>{input}); }

KerasTensor Layer::operator()(const std::vector<KerasTensor>& inputs) {
  const std::string self_text = class_name() + (name_.empty() ? "" : " '" + name_ + "'");
  if (inputs.empty()) throw ValueError(self_text + ": called on no inputs");
  std::vector<Shape> shapes;
  for (size_t i = 0; i < inputs.size(); ++i) {
    if (!inputs[i].defined())
      throw ValueError(self_text + ": input " + std::to_string(i) + " is an empty KerasTensor (use Input(shape))");
    shapes.push_back(inputs[i].shape());
  }
  std::shared_ptr<Layer> self = weak_from_this().lock();
  if (!self) self = clone_layer(*this);
  std::vector<Shape> out = self->infer_shapes(shapes);  // ShapeError / ValueError name the layer and shapes
  return KerasTensor(std::make_shared<const KerasTensor::Call>(KerasTensor::Call{self, inputs, std::move(out)}));
}

KerasTensor layers::Input(Shape shape, std::string name) {
  auto layer = std::make_shared<InputLayer>(shape, std::move(name));
  return KerasTensor(std::make_shared<const KerasTensor::Call>(KerasTensor::Call{layer, {}, {std::move(shape)}}));
}

void Layer::require_last_axis(int64_t axis, const Shape& input_shape, const std::string& which,
                              const std::string& hint) const {
  const int64_t rank = input_shape.rank() + 1;  // with the batch axis, as Keras counts
  if ((axis < 0 ? axis + rank : axis) == rank - 1) return;
  throw ValueError(class_name() + " '" + name_ + "': only the last axis" + (which.empty() ? "" : " " + which) +
                   " can be normalized; axis " + std::to_string(axis) + " of input (batch, " +
                   input_shape.str().substr(1) + " is not the last" + hint);
}

void Layer::shape_error(const std::string& expected, const Shape& got, const std::string& hint) const {
  std::string msg = class_name() + " '" + name_ + "' expects input " + expected + ", got " + got.str() + ".";
  if (!hint.empty()) msg += "\n  hint: " + hint;
  throw ShapeError(msg);
}

// --- the registry ----------------------------------------------------------------------------------

std::optional<Shape> input_shape_from_config(const Json& config) {
  auto dims_of = [](const Json& arr, size_t skip) {
    std::vector<int64_t> dims;
    for (size_t i = skip; i < arr.size(); ++i) {
      if (!arr[i].is_number_integer() || arr[i].get<int64_t>() <= 0)
        throw ValueError("input shape " + arr.dump() + ": every dimension after the batch must be a positive integer");
      dims.push_back(arr[i].get<int64_t>());
    }
    return Shape(dims);
  };
  for (const char* key : {"batch_input_shape", "batch_shape"})
    if (config.contains(key) && config[key].is_array() && !config[key].empty()) return dims_of(config[key], 1);
  if (config.contains("input_shape") && config["input_shape"].is_array()) return dims_of(config["input_shape"], 0);
  if (config.contains("input_dim") && config["input_dim"].is_number_integer())
    return Shape{config["input_dim"].get<int64_t>()};
  return std::nullopt;
}

// The built-in layer classes, one line each; user classes join through register_layer.
namespace {

struct Entry {
  LayerFactory from_config;
  LayerCloner clone;
};

template <class L>
Entry builtin() {
  return {&L::from_config, [](const Layer& l) -> std::shared_ptr<Layer> {
            if (typeid(l) != typeid(L)) return nullptr;
            return std::make_shared<L>(static_cast<const L&>(l));
          }};
}

struct Registry {
  std::mutex mutex;
  std::map<std::string, Entry> entries = {
      {"InputLayer", builtin<layers::InputLayer>()},
      {"Dense", builtin<layers::Dense>()},
      {"Flatten", builtin<layers::Flatten>()},
      {"Activation", builtin<layers::Activation>()},
      {"LeakyReLU", builtin<layers::LeakyReLU>()},
      {"Reshape", builtin<layers::Reshape>()},
      {"Conv2D", builtin<layers::Conv2D>()},
      {"Conv2DTranspose", builtin<layers::Conv2DTranspose>()},
      {"MaxPooling2D", builtin<layers::MaxPooling2D>()},
      {"AveragePooling2D", builtin<layers::AveragePooling2D>()},
      {"GlobalAveragePooling2D", builtin<layers::GlobalAveragePooling2D>()},
      {"UpSampling2D", builtin<layers::UpSampling2D>()},
      {"ZeroPadding2D", builtin<layers::ZeroPadding2D>()},
      {"Cropping2D", builtin<layers::Cropping2D>()},
      {"BatchNormalization", builtin<layers::BatchNormalization>()},
      // TF 2's tf.keras.layers.experimental.SyncBatchNormalization: BatchNormalization(synchronized=True).
      {"SyncBatchNormalization", {[](const Json& c) {
                                    Json synced = c;
                                    synced["synchronized"] = true;
                                    return layers::BatchNormalization::from_config(synced);
                                  },
                                  builtin<layers::BatchNormalization>().clone}},
      {"Dropout", builtin<layers::Dropout>()},
      {"LayerNormalization", builtin<layers::LayerNormalization>()},
      {"SimpleRNN", builtin<layers::SimpleRNN>()},
      {"LSTM", builtin<layers::LSTM>()},
      {"GRU", builtin<layers::GRU>()},
      {"Add", builtin<layers::Add>()},
      {"Subtract", builtin<layers::Subtract>()},
      {"Multiply", builtin<layers::Multiply>()},
      {"Average", builtin<layers::Average>()},
      {"Maximum", builtin<layers::Maximum>()},
      {"Minimum", builtin<layers::Minimum>()},
      {"Concatenate", builtin<layers::Concatenate>()},
      {"Embedding", builtin<layers::Embedding>()},
      {"Conv1D", builtin<layers::Conv1D>()},
      {"MaxPooling1D", builtin<layers::MaxPooling1D>()},
      {"AveragePooling1D", builtin<layers::AveragePooling1D>()},
      {"GlobalMaxPooling1D", builtin<layers::GlobalMaxPooling1D>()},
      {"GlobalAveragePooling1D", builtin<layers::GlobalAveragePooling1D>()},
      {"Masking", builtin<layers::Masking>()},
      {"RepeatVector", builtin<layers::RepeatVector>()},
      {"TimeDistributed", builtin<layers::TimeDistributed>()},
      {"Bidirectional", builtin<layers::Bidirectional>()},
      {"Sampling", builtin<layers::Sampling>()},
      // Sequential, Functional and Model (models nest as layers) register beside them, in
      // src/model/graph.cpp, so that this file stays below src/model/.
  };
};

Registry& registry() {
  static Registry r;
  return r;
}

}  // namespace

void register_layer(const std::string& class_name, LayerFactory from_config, bool replace, LayerCloner clone) {
  if (class_name.empty()) throw ValueError("register_layer: the class name is empty");
  if (!from_config) throw ValueError("register_layer: '" + class_name + "' has no from_config function");
  Registry& r = registry();
  const std::lock_guard<std::mutex> lock(r.mutex);
  if (!replace && r.entries.count(class_name))
    throw ValueError("register_layer: a layer class '" + class_name +
                     "' is already registered; pass replace = true to override it");
  r.entries[class_name] = {std::move(from_config), std::move(clone)};
}

std::vector<std::string> registered_layers() {
  Registry& r = registry();
  const std::lock_guard<std::mutex> lock(r.mutex);
  std::vector<std::string> names;
  for (const auto& [name, _] : r.entries) names.push_back(name);
  return names;
}

std::shared_ptr<Layer> clone_layer(const Layer& layer) {
  LayerCloner clone;
  {
    Registry& r = registry();
    const std::lock_guard<std::mutex> lock(r.mutex);
    if (auto it = r.entries.find(layer.class_name()); it != r.entries.end()) clone = it->second.clone;
  }
  std::shared_ptr<Layer> copy = clone ? clone(layer) : nullptr;
  if (!copy)
    throw ValueError(layer.class_name() + " '" + layer.name() +
                     "' is held by value and its class has no registered copy, so a graph cannot keep it: hold it in "
                     "a std::shared_ptr (auto layer = std::make_shared<" +
                     layer.class_name() + ">(...); (*layer)(x)), or register the class with register_layer<L>");
  return copy;
}

std::shared_ptr<Layer> layer_from_config(const std::string& class_name, const Json& config) {
  LayerFactory factory;
  {
    Registry& r = registry();
    const std::lock_guard<std::mutex> lock(r.mutex);
    if (auto it = r.entries.find(class_name); it != r.entries.end()) factory = it->second.from_config;
  }
  if (!factory) {
    std::string known;
    for (const std::string& n : registered_layers()) known += (known.empty() ? "" : ", ") + n;
    throw ValueError("layer class '" + class_name + "' is not supported (supported: " + known +
                     "; a class of your own loads once registered with lamina::register_layer)");
  }
  const std::string at = class_name + " '" + detail::name_of(config) + "'";
  try {
    std::shared_ptr<Layer> layer = factory(config);
    if (!layer || !config.is_object()) return layer;
    // What every layer takes, read here once: trainable and activity_regularizer.
    if (config.contains("trainable") && !config["trainable"].is_null()) {
      if (!config["trainable"].is_boolean())
        throw ValueError(at + ": 'trainable' must be true or false, got " + config["trainable"].dump());
      if (!config["trainable"].get<bool>()) layer->set_trainable(false);
    }
    if (config.contains("activity_regularizer"))
      layer->set_activity_regularizer(detail::regularizer_of(config, "activity_regularizer", at));
    detail::check_config_keys(*layer, config, at);
    return layer;
  } catch (const Json::exception& e) {  // a value of the wrong JSON type ("use_bias": 5)
    throw ValueError(at + ": " + json_error_text(e));
  }
}

namespace detail {

// Keys that never change the math: names, dtypes (Lamina computes in float32), Keras'
// serialization wrapper, the input shape (read by input_shape_from_config), a Keras 2 model's
// build_input_shape; and the two every layer takes, read by layer_from_config.
const std::set<std::string>& harmless_config_keys() {
  static const std::set<std::string> keys = {
      "name",        "dtype",          "module",      "registered_name", "build_config", "batch_input_shape",
      "batch_shape", "input_shape",    "input_dim",   "build_input_shape", "trainable",  "activity_regularizer"};
  return keys;
}

void check_config_keys(const Layer& layer, const Json& config, const std::string& at) {
  if (!config.is_object()) return;
  // dtype: Lamina computes in float32. A mixed policy keeps float32 weights (Keras computes in
  // half precision), so float32 is the same model, more exactly; other dtypes are refused.
  if (config.contains("dtype") && !config["dtype"].is_null()) {
    const Json& d = config["dtype"];
    const Json& n = d.is_object() && d.contains("config") && d["config"].is_object() ? d["config"].value("name", Json())
                                                                                       : d;
    const std::string name = n.is_string() ? n.get<std::string>() : d.dump();
    if (name != "float32" && name != "mixed_float16" && name != "mixed_bfloat16")
      throw ValueError(at + ": config key 'dtype' = '" + name +
                       "' is not supported by Lamina (it computes in float32; float32 and the mixed_float16 / "
                       "mixed_bfloat16 policies load)");
  }
  const Json written = layer.config();
  const std::vector<std::string> aliases = layer.config_aliases();
  // Newer Keras writes these only to say "off" (Dense's quantization, LoRA): accepted when null.
  static const std::set<std::string> off_when_null = {"quantization_config", "lora_rank", "lora_alpha"};
  for (const auto& [key, value] : config.items()) {
    if (written.contains(key) || harmless_config_keys().count(key) ||
        std::find(aliases.begin(), aliases.end(), key) != aliases.end() || (off_when_null.count(key) && value.is_null()))
      continue;
    throw ValueError(at + ": config key '" + key + "' is not supported by Lamina (a Keras option Lamina does not "
                     "implement would change what the model computes; remove it or set it to Keras' default)");
  }
}

}  // namespace detail

}  // namespace lamina
