// The Layer base (weights, errors, config), activation functions by name, and the registry
// that turns Keras JSON into layers.
#include <algorithm>
#include <functional>
#include <map>

#include "lamina/layers.hpp"
#include "lamina/ops.hpp"
#include "layers/keras_config.hpp"

namespace lamina {

namespace {

const std::map<std::string, Activation::Kind>& activation_names() {
  static const std::map<std::string, Activation::Kind> names = {
      {"linear", Activation::linear},   {"relu", Activation::relu},
      {"leaky_relu", Activation::leaky_relu}, {"elu", Activation::elu},
      {"sigmoid", Activation::sigmoid}, {"tanh", Activation::tanh},
      {"softmax", Activation::softmax}, {"log_softmax", Activation::log_softmax},
      {"exponential", Activation::exponential},
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
  Json j = {{"name", name_}, {"trainable", true}, {"dtype", "float32"}};
  if (input_shape_) {
    Json batch = Json::array({nullptr});
    for (int64_t d : *input_shape_) batch.push_back(d);
    j["batch_input_shape"] = batch;
  }
  return j;
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

namespace {

std::string name_of(const Json& c) { return c.contains("name") && c["name"].is_string() ? c["name"].get<std::string>() : ""; }

// Keras 3 may write an activation as a string or as a serialized function {"class_name": ...}.
Activation activation_of(const Json& c) {
  if (!c.contains("activation") || c["activation"].is_null()) return Activation::linear;
  const Json& a = c["activation"];
  if (a.is_string()) return Activation(a.get<std::string>());
  if (a.is_object() && a.contains("config") && a["config"].is_string()) return Activation(a["config"].get<std::string>());
  throw ValueError("activation " + a.dump() + " is not a name");
}

Initializer initializer_of(const Json& c, const char* key, Initializer fallback) {
  return c.contains(key) && !c[key].is_null() ? Initializer::from_config(c[key]) : fallback;
}

float float_of(const Json& c, const char* key, float fallback, const std::string& where) {
  if (!c.contains(key) || c[key].is_null()) return fallback;
  if (!c[key].is_number()) throw ValueError(where + ": '" + key + "' must be a number, got " + c[key].dump());
  return c[key].get<float>();
}

// "Conv2D 'conv2d'": where a config error happened.
std::string where(const char* cls, const Json& c) { return std::string(cls) + " '" + name_of(c) + "'"; }

// Keras options that change the math and that Lamina does not implement yet must be off.
void require_default(const Json& c, const char* key, const Json& value, const std::string& at) {
  if (!c.contains(key) || c[key].is_null()) return;
  const Json& v = c[key];
  const bool same = v == value || (v.is_array() && value.is_number() && std::all_of(v.begin(), v.end(), [&](const Json& e) {
                                     return e == value;
                                   }));
  if (!same) throw ValueError(at + ": " + key + " = " + v.dump() + " is not supported (only " + value.dump() + ")");
}

std::shared_ptr<Layer> conv2d_from(const Json& c) {
  const std::string at = where("Conv2D", c);
  if (!c.contains("filters") || !c["filters"].is_number_integer() || c["filters"].get<int64_t>() <= 0)
    throw ValueError(at + ": 'filters' must be a positive integer, got " +
                     (c.contains("filters") ? c["filters"].dump() : std::string("nothing (the key is missing)")));
  if (!c.contains("kernel_size")) throw ValueError(at + ": 'kernel_size' is required");
  detail::require_channels_last(c, at);
  require_default(c, "dilation_rate", 1, at);
  require_default(c, "groups", 1, at);
  layers::Conv2D::Options o;
  o.filters = c["filters"].get<int64_t>();
  o.kernel_size = detail::size2_from(c, "kernel_size", at, 0);
  o.strides = detail::size2_from(c, "strides", at, 1);
  o.padding = detail::padding_from(c, at);
  o.activation = activation_of(c);
  o.use_bias = c.value("use_bias", true);
  o.kernel_initializer = initializer_of(c, "kernel_initializer", o.kernel_initializer);
  o.bias_initializer = initializer_of(c, "bias_initializer", o.bias_initializer);
  o.input_shape = input_shape_from_config(c);
  o.name = name_of(c);
  return std::make_shared<layers::Conv2D>(o);
}

template <class L>
std::shared_ptr<Layer> pooling_from(const Json& c, const char* cls) {
  const std::string at = where(cls, c);
  detail::require_channels_last(c, at);
  layers::Pooling2DOptions o;
  o.pool_size = detail::size2_from(c, "pool_size", at, 2);
  if (c.contains("strides") && !c["strides"].is_null()) o.strides = detail::size2_from(c, "strides", at, 1);
  o.padding = detail::padding_from(c, at);
  o.input_shape = input_shape_from_config(c);
  o.name = name_of(c);
  return std::make_shared<L>(o);
}

std::shared_ptr<Layer> batch_norm_from(const Json& c) {
  const std::string at = where("BatchNormalization", c);
  layers::BatchNormalization::Options o;
  if (c.contains("axis") && !c["axis"].is_null()) {  // Keras 2 writes [3] once built
    const Json& a = c["axis"];
    const Json& v = a.is_array() && a.size() == 1 ? a[0] : a;
    if (!v.is_number_integer()) throw ValueError(at + ": axis must be one integer (the channel axis), got " + a.dump());
    o.axis = v.get<int64_t>();
  }
  o.momentum = float_of(c, "momentum", o.momentum, at);
  o.epsilon = float_of(c, "epsilon", o.epsilon, at);
  o.center = c.value("center", true);
  o.scale = c.value("scale", true);
  o.beta_initializer = initializer_of(c, "beta_initializer", o.beta_initializer);
  o.gamma_initializer = initializer_of(c, "gamma_initializer", o.gamma_initializer);
  o.moving_mean_initializer = initializer_of(c, "moving_mean_initializer", o.moving_mean_initializer);
  o.moving_variance_initializer = initializer_of(c, "moving_variance_initializer", o.moving_variance_initializer);
  o.input_shape = input_shape_from_config(c);
  o.name = name_of(c);
  return std::make_shared<layers::BatchNormalization>(o);
}

std::shared_ptr<Layer> dropout_from(const Json& c) {
  const std::string at = where("Dropout", c);
  if (!c.contains("rate")) throw ValueError(at + ": 'rate' is required");
  if (c.contains("noise_shape") && !c["noise_shape"].is_null())
    throw ValueError(at + ": noise_shape " + c["noise_shape"].dump() + " is not supported (one mask per element)");
  layers::Dropout::Options o;
  o.rate = float_of(c, "rate", 0.f, at);
  if (c.contains("seed") && c["seed"].is_number_integer()) o.seed = c["seed"].get<uint64_t>();
  o.input_shape = input_shape_from_config(c);
  o.name = name_of(c);
  return std::make_shared<layers::Dropout>(o);
}

std::shared_ptr<Layer> reshape_from(const Json& c) {
  const std::string at = where("Reshape", c);
  if (!c.contains("target_shape") || !c["target_shape"].is_array())
    throw ValueError(at + ": 'target_shape' must be a list of dimensions");
  std::vector<int64_t> dims;
  for (const Json& d : c["target_shape"]) {
    if (!d.is_number_integer()) throw ValueError(at + ": target_shape " + c["target_shape"].dump() + " has a non-integer");
    dims.push_back(d.get<int64_t>());
  }
  return std::make_shared<layers::Reshape>(layers::Reshape::Options{
      .target_shape = Shape(dims), .input_shape = input_shape_from_config(c), .name = name_of(c)});
}

using Factory = std::function<std::shared_ptr<Layer>(const Json&)>;

const std::map<std::string, Factory>& factories() {
  static const std::map<std::string, Factory> f = {
      {"Dense",
       [](const Json& c) {
         if (!c.contains("units") || !c["units"].is_number_integer() || c["units"].get<int64_t>() <= 0)
           throw ValueError("Dense '" + name_of(c) + "': 'units' must be a positive integer, got " +
                            (c.contains("units") ? c["units"].dump() : std::string("nothing (the key is missing)")));
         layers::Dense::Options o;
         o.units = c["units"].get<int64_t>();
         o.activation = activation_of(c);
         o.use_bias = c.value("use_bias", true);
         if (c.contains("kernel_initializer") && !c["kernel_initializer"].is_null())
           o.kernel_initializer = Initializer::from_config(c["kernel_initializer"]);
         if (c.contains("bias_initializer") && !c["bias_initializer"].is_null())
           o.bias_initializer = Initializer::from_config(c["bias_initializer"]);
         o.input_shape = input_shape_from_config(c);
         o.name = name_of(c);
         return std::make_shared<layers::Dense>(o);
       }},
      {"Flatten",
       [](const Json& c) {
         return std::make_shared<layers::Flatten>(
             layers::Flatten::Options{.input_shape = input_shape_from_config(c), .name = name_of(c)});
       }},
      {"Activation",
       [](const Json& c) {
         return std::make_shared<layers::Activation>(layers::Activation::Options{
             .activation = activation_of(c), .input_shape = input_shape_from_config(c), .name = name_of(c)});
       }},
      {"LeakyReLU",
       [](const Json& c) {  // Keras 3: negative_slope (default 0.3); Keras 2: alpha
         const std::string at = where("LeakyReLU", c);
         const float slope = float_of(c, "negative_slope", float_of(c, "alpha", 0.3f, at), at);
         return std::make_shared<layers::LeakyReLU>(layers::LeakyReLU::Options{
             .negative_slope = slope, .input_shape = input_shape_from_config(c), .name = name_of(c)});
       }},
      {"Reshape", reshape_from},
      {"Conv2D", conv2d_from},
      {"MaxPooling2D", [](const Json& c) { return pooling_from<layers::MaxPooling2D>(c, "MaxPooling2D"); }},
      {"AveragePooling2D", [](const Json& c) { return pooling_from<layers::AveragePooling2D>(c, "AveragePooling2D"); }},
      {"GlobalAveragePooling2D",
       [](const Json& c) {
         detail::require_channels_last(c, where("GlobalAveragePooling2D", c));
         return std::make_shared<layers::GlobalAveragePooling2D>(layers::GlobalAveragePooling2D::Options{
             .keepdims = c.value("keepdims", false), .input_shape = input_shape_from_config(c), .name = name_of(c)});
       }},
      {"BatchNormalization", batch_norm_from},
      {"Dropout", dropout_from},
      {"InputLayer",
       [](const Json& c) {
         auto shape = input_shape_from_config(c);
         if (!shape) throw ValueError("InputLayer '" + name_of(c) + "' has no batch_shape / batch_input_shape");
         return std::make_shared<layers::InputLayer>(*shape, name_of(c));
       }},
  };
  return f;
}

}  // namespace

std::shared_ptr<Layer> layer_from_config(const std::string& class_name, const Json& config) {
  const auto& f = factories();
  auto it = f.find(class_name);
  if (it == f.end()) {
    std::string known;
    for (const auto& [n, _] : f) known += (known.empty() ? "" : ", ") + n;
    throw ValueError("layer class '" + class_name + "' is not supported (supported: " + known + ")");
  }
  try {
    return it->second(config);
  } catch (const Json::exception& e) {  // a value of the wrong JSON type ("use_bias": 5)
    throw ValueError(class_name + " '" + name_of(config) + "': " + json_error_text(e));
  }
}

}  // namespace lamina
