// Regularizer penalties and constraint projections (regularizers.hpp), and their Keras JSON.
// The penalty is built from ops so that backward gives its gradient; constraints write in place.
#include "lamina/regularizers.hpp"

#include <algorithm>
#include <cmath>

#include "lamina/error.hpp"
#include "lamina/ops.hpp"
#include "layers/keras_config.hpp"

namespace lamina {

namespace {

// Keras' serialized object: Keras 3 {"module", "class_name", "config", "registered_name"},
// Keras 2 {"class_name", "config"}, or a bare name.
struct Serialized {
  std::string cls;
  Json config = Json::object();
};

Serialized serialized(const Json& j, const char* what) {
  if (j.is_string()) return {j.get<std::string>()};
  if (j.is_object() && j.contains("class_name") && j["class_name"].is_string()) {
    Serialized s{j["class_name"].get<std::string>()};
    if (j.contains("config") && !j["config"].is_null()) {
      if (!j["config"].is_object()) throw ValueError(std::string(what) + " " + j.dump() + ": config must be an object");
      s.config = j["config"];
    }
    return s;
  }
  throw ValueError(std::string(what) + " " + j.dump() + " is not a " + what + " (expected a name or {\"class_name\": ...})");
}

float number(const Serialized& s, const char* key, float fallback, const char* what) {
  if (!s.config.contains(key) || s.config[key].is_null()) return fallback;
  if (!s.config[key].is_number())
    throw ValueError(std::string(what) + " " + s.cls + ": '" + key + "' must be a number, got " + s.config[key].dump());
  return s.config[key].get<float>();
}

void only_keys(const Serialized& s, std::initializer_list<const char*> keys, const char* what) {
  for (const auto& [k, v] : s.config.items()) {
    bool known = false;
    for (const char* key : keys) known = known || k == key;
    if (!known)
      throw ValueError(std::string(what) + " " + s.cls + ": config key '" + k + "' is not supported by Lamina");
  }
}

Json keras_object(const char* module, const std::string& cls, Json config) {
  return {{"module", module}, {"class_name", cls}, {"config", std::move(config)}, {"registered_name", nullptr}};
}

}  // namespace

// --- regularizers ------------------------------------------------------------------------------------

Tensor Regularizer::operator()(const Tensor& w) const {
  Tensor penalty;
  if (l1 != 0.f) penalty = mul(sum(add(relu(w), relu(neg(w)))), l1);  // |w| = relu(w) + relu(-w): sign(0) = 0
  if (l2 != 0.f) {
    Tensor p = mul(sum(square(w)), l2);
    penalty = penalty.defined() ? add(penalty, p) : p;
  }
  return penalty.defined() ? penalty : mul(sum(w), 0.f);
}

Json Regularizer::config() const {
  if (l1 != 0.f && l2 == 0.f) return keras_object("keras.regularizers", "L1", {{"l1", detail::float_json(l1)}});
  if (l1 == 0.f) return keras_object("keras.regularizers", "L2", {{"l2", detail::float_json(l2)}});
  return keras_object("keras.regularizers", "L1L2", {{"l1", detail::float_json(l1)}, {"l2", detail::float_json(l2)}});
}

std::optional<Regularizer> Regularizer::from_config(const Json& j) {
  if (j.is_null()) return std::nullopt;
  const Serialized s = serialized(j, "regularizer");
  const char* what = "regularizer";
  Regularizer r;
  if (s.cls == "L1" || s.cls == "l1") {
    only_keys(s, {"l1"}, what);
    r.l1 = number(s, "l1", 0.01f, what);
  } else if (s.cls == "L2" || s.cls == "l2") {
    only_keys(s, {"l2"}, what);
    r.l2 = number(s, "l2", 0.01f, what);
  } else if (s.cls == "L1L2" && j.is_object()) {  // Keras 3's class defaults are 0 and 0
    only_keys(s, {"l1", "l2"}, what);
    r.l1 = number(s, "l1", 0.f, what);
    r.l2 = number(s, "l2", 0.f, what);
  } else {
    throw ValueError("regularizer " + j.dump() +
                     " is not supported by Lamina (supported: L1, L2, L1L2 as {\"class_name\": ..., \"config\": "
                     "{...}}, or \"l1\" / \"l2\")");
  }
  if (!std::isfinite(r.l1) || !std::isfinite(r.l2) || r.l1 < 0.f || r.l2 < 0.f)
    throw ValueError("regularizer " + j.dump() + ": l1 and l2 must be finite and >= 0");
  return r;
}

// --- constraints -------------------------------------------------------------------------------------

void Constraint::apply(Tensor& w) const {
  float* v = w.data();
  const int64_t n = w.numel();
  if (kind == non_neg) {
    for (int64_t i = 0; i < n; ++i) v[i] = v[i] >= 0.f ? v[i] : 0.f;  // w * (w >= 0), without -0
    return;
  }
  // Each element's group: its index with the reduced axes dropped.
  const int64_t rank = w.rank();
  std::vector<bool> reduced(static_cast<size_t>(rank), false);
  for (int64_t a : axis) {
    const int64_t k = a < 0 ? a + rank : a;
    if (k < 0 || k >= rank)
      throw ValueError("constraint axis " + std::to_string(a) + " is out of range for a weight of shape " +
                       w.shape().str());
    reduced[static_cast<size_t>(k)] = true;
  }
  if (rank == 0) reduced.clear();
  std::vector<int64_t> group_stride(static_cast<size_t>(rank), 0);
  int64_t groups = 1;
  for (int64_t k = rank - 1; k >= 0; --k)
    if (!reduced[static_cast<size_t>(k)]) {
      group_stride[static_cast<size_t>(k)] = groups;
      groups *= w.dim(k);
    }
  std::vector<int64_t> group(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) {
    int64_t rest = i, g = 0;
    for (int64_t k = rank - 1; k >= 0; --k) {
      g += rest % w.dim(k) * group_stride[static_cast<size_t>(k)];
      rest /= w.dim(k);
    }
    group[static_cast<size_t>(i)] = g;
  }
  std::vector<double> squares(static_cast<size_t>(groups), 0.0);
  for (int64_t i = 0; i < n; ++i) squares[static_cast<size_t>(group[static_cast<size_t>(i)])] += double(v[i]) * v[i];
  constexpr float kEps = 1e-7f;  // Keras' backend.epsilon()
  std::vector<float> denom(static_cast<size_t>(groups)), factor(static_cast<size_t>(groups));
  for (int64_t g = 0; g < groups; ++g) {
    const float norm = static_cast<float>(std::sqrt(squares[static_cast<size_t>(g)]));
    float desired = norm;
    if (kind == max_norm) desired = std::clamp(norm, 0.f, max_value);
    if (kind == min_max_norm) desired = rate * std::clamp(norm, min_value, max_value) + (1.f - rate) * norm;
    denom[static_cast<size_t>(g)] = kEps + norm;
    factor[static_cast<size_t>(g)] = desired / (kEps + norm);
  }
  for (int64_t i = 0; i < n; ++i) {
    const auto g = static_cast<size_t>(group[static_cast<size_t>(i)]);
    v[i] = kind == unit_norm ? v[i] / denom[g] : v[i] * factor[g];  // as Keras: w / (eps + norm), w * factor
  }
}

Json Constraint::config() const {
  const Json ax = axis.size() == 1 ? Json(axis[0]) : Json(axis);
  switch (kind) {
    case max_norm: return keras_object("keras.constraints", "MaxNorm", {{"max_value", detail::float_json(max_value)}, {"axis", ax}});
    case non_neg: return keras_object("keras.constraints", "NonNeg", Json::object());
    case unit_norm: return keras_object("keras.constraints", "UnitNorm", {{"axis", ax}});
    case min_max_norm:
      return keras_object("keras.constraints", "MinMaxNorm",
                          {{"min_value", detail::float_json(min_value)}, {"max_value", detail::float_json(max_value)},
                           {"rate", detail::float_json(rate)}, {"axis", ax}});
  }
  return nullptr;
}

std::optional<Constraint> Constraint::from_config(const Json& j) {
  if (j.is_null()) return std::nullopt;
  const Serialized s = serialized(j, "constraint");
  const char* what = "constraint";
  auto axis_of = [&](std::vector<int64_t> fallback) {
    if (!s.config.contains("axis") || s.config["axis"].is_null()) return fallback;
    const Json& a = s.config["axis"];
    std::vector<int64_t> out;
    for (const Json& e : a.is_array() ? a : Json::array({a})) {
      if (!e.is_number_integer()) throw ValueError("constraint " + s.cls + ": axis must be integers, got " + a.dump());
      out.push_back(e.get<int64_t>());
    }
    return out;
  };
  Constraint c;
  const std::string& k = s.cls;
  if (k == "MaxNorm" || k == "max_norm" || k == "maxnorm") {
    only_keys(s, {"max_value", "axis"}, what);
    c = constraints::MaxNorm(number(s, "max_value", 2.f, what), axis_of({0}));
  } else if (k == "NonNeg" || k == "non_neg" || k == "nonneg") {
    only_keys(s, {}, what);
    c = constraints::NonNeg();
  } else if (k == "UnitNorm" || k == "unit_norm" || k == "unitnorm") {
    only_keys(s, {"axis"}, what);
    c = constraints::UnitNorm(axis_of({0}));
  } else if (k == "MinMaxNorm" || k == "min_max_norm") {
    only_keys(s, {"min_value", "max_value", "rate", "axis"}, what);
    c = constraints::MinMaxNorm(number(s, "min_value", 0.f, what), number(s, "max_value", 1.f, what),
                                number(s, "rate", 1.f, what), axis_of({0}));
  } else {
    throw ValueError("constraint " + j.dump() +
                     " is not supported by Lamina (supported: MaxNorm, NonNeg, UnitNorm, MinMaxNorm)");
  }
  return c;
}

}  // namespace lamina
