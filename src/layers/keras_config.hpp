// Reading and writing the Keras config fields layers share: names, activations, initializers,
// numbers, sizes given as an int or a list (kernel_size, strides, pool_size), padding names,
// data_format. Each layer's from_config (in its own file) is written with these. Internal.
#pragma once

#include <cctype>
#include <charconv>
#include <cstdlib>
#include <string>

#include <algorithm>
#include <optional>

#include "lamina/error.hpp"
#include "lamina/json.hpp"
#include "lamina/layers.hpp"
#include "lamina/ops.hpp"

namespace lamina::detail {

inline std::string name_of(const Json& c) {
  return c.contains("name") && c["name"].is_string() ? c["name"].get<std::string>() : "";
}

// Keras' to_snake_case, which names layers: a "_" before a capital that starts a lower-case run
// and between a lower-case letter and a capital, then lower case. "InputLayer" -> "input_layer",
// "MaxPooling2D" -> "max_pooling2d", "Conv2D" -> "conv2d", "SimpleRNN" -> "simple_rnn".
inline std::string snake_case(const std::string& s) {
  auto is_upper = [&](size_t i) { return std::isupper(static_cast<unsigned char>(s[i])) != 0; };
  auto is_lower = [&](size_t i) { return std::islower(static_cast<unsigned char>(s[i])) != 0; };
  std::string out;
  for (size_t i = 0; i < s.size(); ++i) {
    const bool starts_word = is_upper(i) && i > 0 && i + 1 < s.size() && is_lower(i + 1);
    const bool after_lower = is_upper(i) && i > 0 && is_lower(i - 1);
    if ((starts_word || after_lower) && !out.empty() && out.back() != '_') out += '_';
    out += static_cast<char>(std::tolower(static_cast<unsigned char>(s[i])));
  }
  return out;
}

// "Conv2D 'conv2d'": where a config error happened.
inline std::string where(const char* cls, const Json& c) { return std::string(cls) + " '" + name_of(c) + "'"; }

// Keras 3 may write an activation as a string or as a serialized function {"class_name": ...}.
inline Activation activation_of(const Json& c) {
  if (!c.contains("activation") || c["activation"].is_null()) return Activation::linear;
  const Json& a = c["activation"];
  if (a.is_string()) return Activation(a.get<std::string>());
  if (a.is_object() && a.contains("config") && a["config"].is_string()) return Activation(a["config"].get<std::string>());
  throw ValueError("activation " + a.dump() + " is not a name");
}

inline Initializer initializer_of(const Json& c, const char* key, Initializer fallback) {
  return c.contains(key) && !c[key].is_null() ? Initializer::from_config(c[key]) : fallback;
}

inline float float_of(const Json& c, const char* key, float fallback, const std::string& where) {
  if (!c.contains(key) || c[key].is_null()) return fallback;
  if (!c[key].is_number()) throw ValueError(where + ": '" + key + "' must be a number, got " + c[key].dump());
  return c[key].get<float>();
}

// c[key] as a positive integer (Dense units, Conv2D filters); ValueError naming the layer otherwise.
inline int64_t positive_int_of(const Json& c, const char* key, const std::string& where) {
  if (!c.contains(key) || !c[key].is_number_integer() || c[key].get<int64_t>() <= 0)
    throw ValueError(where + ": '" + key + "' must be a positive integer, got " +
                     (c.contains(key) ? c[key].dump() : std::string("nothing (the key is missing)")));
  return c[key].get<int64_t>();
}

// What every layer's options hold, read from its config: the name and the declared input shape.
template <class Options>
void read_common(Options& o, const Json& c) {
  o.input_shape = input_shape_from_config(c);
  o.name = name_of(c);
}


// A regularizer / constraint option (null or absent: none); errors name the layer and the key.
inline std::optional<Regularizer> regularizer_of(const Json& c, const char* key, const std::string& at) {
  if (!c.contains(key)) return std::nullopt;
  try {
    return Regularizer::from_config(c[key]);
  } catch (const ValueError& e) {
    throw ValueError(at + ": " + key + ": " + e.what());
  }
}
inline std::optional<Constraint> constraint_of(const Json& c, const char* key, const std::string& at) {
  if (!c.contains(key)) return std::nullopt;
  try {
    return Constraint::from_config(c[key]);
  } catch (const ValueError& e) {
    throw ValueError(at + ": " + key + ": " + e.what());
  }
}
template <class T>
Json penalty_json(const std::optional<T>& p) {
  return p ? p->config() : Json(nullptr);
}

// What Dense and Conv2D share: activation, use_bias, the two initializers, regularizers and
// constraints (activity_regularizer is read for every layer by layer_from_config).
template <class Options>
void read_affine(Options& o, const Json& c, const std::string& at) {
  o.activation = activation_of(c);
  o.use_bias = c.value("use_bias", true);
  o.kernel_initializer = initializer_of(c, "kernel_initializer", o.kernel_initializer);
  o.bias_initializer = initializer_of(c, "bias_initializer", o.bias_initializer);
  o.kernel_regularizer = regularizer_of(c, "kernel_regularizer", at);
  o.bias_regularizer = regularizer_of(c, "bias_regularizer", at);
  o.kernel_constraint = constraint_of(c, "kernel_constraint", at);
  o.bias_constraint = constraint_of(c, "bias_constraint", at);
}
template <class Options>
void write_affine(Json& j, const Options& o) {
  j["kernel_regularizer"] = penalty_json(o.kernel_regularizer);
  j["bias_regularizer"] = penalty_json(o.bias_regularizer);
  if (!j.contains("activity_regularizer")) j["activity_regularizer"] = nullptr;  // Layer::config writes one that is set
  j["kernel_constraint"] = penalty_json(o.kernel_constraint);
  j["bias_constraint"] = penalty_json(o.bias_constraint);
}
// The same for the normalization layers' gamma and beta.
template <class Options>
void read_gamma_beta_penalties(Options& o, const Json& c, const std::string& at) {
  o.beta_regularizer = regularizer_of(c, "beta_regularizer", at);
  o.gamma_regularizer = regularizer_of(c, "gamma_regularizer", at);
  o.beta_constraint = constraint_of(c, "beta_constraint", at);
  o.gamma_constraint = constraint_of(c, "gamma_constraint", at);
}
template <class Options>
void write_gamma_beta_penalties(Json& j, const Options& o) {
  j["beta_regularizer"] = penalty_json(o.beta_regularizer);
  j["gamma_regularizer"] = penalty_json(o.gamma_regularizer);
  j["beta_constraint"] = penalty_json(o.beta_constraint);
  j["gamma_constraint"] = penalty_json(o.gamma_constraint);
}

// ValueError naming the layer and the first config key that Lamina neither reads (config()
// writes it, or the class lists it in config_aliases()) nor knows to be harmless (names, dtypes,
// input shapes, Keras' serialization wrapper). layer_from_config runs it on every layer.
void check_config_keys(const Layer& layer, const Json& config, const std::string& at);

// Keras' `axis` of a normalization layer: an integer, or a list of one (Keras 2 writes [3] once
// built); `fallback` when absent. `what` says which axis it must be ("the channel axis").
inline int64_t single_axis_of(const Json& c, int64_t fallback, const char* what, const std::string& at) {
  if (!c.contains("axis") || c["axis"].is_null()) return fallback;
  const Json& a = c["axis"];
  const Json& v = a.is_array() && a.size() == 1 ? a[0] : a;
  if (!v.is_number_integer()) throw ValueError(at + ": axis must be one integer (" + what + "), got " + a.dump());
  return v.get<int64_t>();
}

// Keras options that change the math and that Lamina does not implement yet must be off.
inline void require_default(const Json& c, const char* key, const Json& value, const std::string& at) {
  if (!c.contains(key) || c[key].is_null()) return;
  const Json& v = c[key];
  const bool same = v == value || (v.is_array() && value.is_number() &&
                                   std::all_of(v.begin(), v.end(), [&](const Json& e) { return e == value; }));
  if (!same) throw ValueError(at + ": " + key + " = " + v.dump() + " is not supported (only " + value.dump() + ")");
}

// A float option as the decimal a user wrote (0.99, not 0.9900000095367432): the shortest
// text that reads back as the same float, read as a double.
inline Json float_json(float v) {
  char buf[32];
  const auto r = std::to_chars(buf, buf + sizeof buf - 1, v);
  *r.ptr = '\0';
  return std::strtod(buf, nullptr);
}

inline Json size2_json(Size2 s) { return Json::array({s.h, s.w}); }
inline const char* padding_name(Padding p) { return p == Padding::same ? "same" : "valid"; }

// c[key] as Keras writes it: 3 or [3, 3] (or [3]); `fallback` when absent or null.
inline Size2 size2_from(const Json& c, const char* key, const std::string& where, Size2 fallback) {
  if (!c.contains(key) || c[key].is_null()) return fallback;
  const Json& v = c[key];
  auto positive = [&](const Json& e) {
    if (!e.is_number_integer() || e.get<int64_t>() < 1)
      throw ValueError(where + ": '" + key + "' must be a positive integer or a list of two, got " + v.dump());
    return e.get<int64_t>();
  };
  if (v.is_number()) return Size2(positive(v));
  if (v.is_array() && v.size() == 1) return Size2(positive(v[0]));
  if (v.is_array() && v.size() == 2) return Size2(positive(v[0]), positive(v[1]));
  throw ValueError(where + ": '" + key + "' must be a positive integer or a list of two, got " + v.dump());
}

inline Padding padding_from(const Json& c, const std::string& where) {
  const std::string p = c.contains("padding") && c["padding"].is_string() ? c["padding"].get<std::string>() : "valid";
  if (p == "valid") return Padding::valid;
  if (p == "same") return Padding::same;
  throw ValueError(where + ": padding '" + p + "' is not supported (valid or same)");
}

// Lamina's images are channels last; a channels_first model would silently mean other shapes.
inline void require_channels_last(const Json& c, const std::string& where) {
  if (!c.contains("data_format") || c["data_format"].is_null()) return;  // Keras' default: channels_last
  const std::string f = c["data_format"].is_string() ? c["data_format"].get<std::string>() : c["data_format"].dump();
  if (f != "channels_last")
    throw ValueError(where + ": data_format '" + f +
                     "' is not supported; Lamina's images are channels_last (batch, H, W, C). Transpose the "
                     "data and use data_format='channels_last'");
}

}  // namespace lamina::detail
