// Optimizer updates: plain loops over each parameter's values, written to vectorize.
#include "lamina/optimizers.hpp"

#include <algorithm>
#include <cctype>
#include <cmath>

namespace lamina {

void Optimizer::init_slots(std::vector<Tensor>& slots, const Shape& shape) const {
  for (int i = 0; i < num_slots(); ++i) slots.push_back(Tensor::zeros(shape));
}

void Optimizer::step(const std::vector<Tensor>& params) {
  if (slots_.empty()) slots_.resize(params.size());
  if (slots_.size() != params.size())
    throw ValueError(name() + ".step: called with " + std::to_string(params.size()) + " parameters, earlier with " +
                     std::to_string(slots_.size()) + " (an optimizer serves one set of parameters)");
  ++iterations_;
  for (size_t i = 0; i < params.size(); ++i) {
    Tensor p = params[i];
    const Tensor g = p.grad();
    if (!g.defined()) continue;
    if (slots_[i].empty()) init_slots(slots_[i], p.shape());
    if (!slots_[i].empty() && slots_[i][0].shape() != p.shape())
      throw ValueError(name() + ".step: parameter " + std::to_string(i) + " has shape " + p.shape().str() +
                       ", its optimizer state " + slots_[i][0].shape().str());
    update(p.data(), g.data(), p.numel(), slots_[i], iterations_);
  }
}

Json Optimizer::config() const {
  std::string n = name();
  std::transform(n.begin(), n.end(), n.begin(), [](unsigned char c) { return std::tolower(c); });
  return {{"name", n}, {"learning_rate", learning_rate}};
}

// --- SGD -------------------------------------------------------------------------------------------

SGD::SGD(Options o) : Optimizer(o.learning_rate), options(o) {}

void SGD::update(float* p, const float* g, int64_t n, std::vector<Tensor>& slots, int64_t) {
  const float lr = learning_rate, m = options.momentum;
  if (m == 0.f) {
    for (int64_t i = 0; i < n; ++i) p[i] -= lr * g[i];
    return;
  }
  float* buf = slots[0].data();
  for (int64_t i = 0; i < n; ++i) {
    buf[i] = m * buf[i] + g[i];
    p[i] -= lr * (options.nesterov ? g[i] + m * buf[i] : buf[i]);
  }
}

Json SGD::config() const {
  Json j = Optimizer::config();
  j["momentum"] = options.momentum;
  j["nesterov"] = options.nesterov;
  return j;
}

// --- Adam, AdamW -------------------------------------------------------------------------------------

Adam::Adam(Options o) : Optimizer(o.learning_rate), options(o) {}

AdamW::AdamW(Options o)
    : Adam(Adam::Options{.learning_rate = o.learning_rate, .beta_1 = o.beta_1, .beta_2 = o.beta_2,
                         .epsilon = o.epsilon, .amsgrad = o.amsgrad, .weight_decay = o.weight_decay}) {}

void Adam::update(float* p, const float* g, int64_t n, std::vector<Tensor>& slots, int64_t t) {
  const float b1 = options.beta_1, b2 = options.beta_2, lr = learning_rate, eps = options.epsilon;
  const auto correction1 = static_cast<float>(1.0 - std::pow(static_cast<double>(b1), static_cast<double>(t)));
  const auto correction2 = static_cast<float>(1.0 - std::pow(static_cast<double>(b2), static_cast<double>(t)));
  const float step = lr / correction1, rsqrt_c2 = 1.f / std::sqrt(correction2);
  const float decay = 1.f - lr * options.weight_decay;
  float *m = slots[0].data(), *v = slots[1].data();
  float* vmax = options.amsgrad ? slots[2].data() : nullptr;
  for (int64_t i = 0; i < n; ++i) {
    if (options.weight_decay != 0.f) p[i] *= decay;
    m[i] = b1 * m[i] + (1.f - b1) * g[i];
    v[i] = b2 * v[i] + (1.f - b2) * g[i] * g[i];
    float vi = v[i];
    if (vmax) vi = vmax[i] = std::max(vmax[i], v[i]);
    p[i] -= step * m[i] / (std::sqrt(vi) * rsqrt_c2 + eps);
  }
}

Json Adam::config() const {
  Json j = Optimizer::config();
  j["beta_1"] = options.beta_1;
  j["beta_2"] = options.beta_2;
  j["epsilon"] = options.epsilon;
  j["amsgrad"] = options.amsgrad;
  if (options.weight_decay != 0.f) j["weight_decay"] = options.weight_decay;
  return j;
}

// --- RMSprop -------------------------------------------------------------------------------------------

RMSprop::RMSprop(Options o) : Optimizer(o.learning_rate), options(o) {}

void RMSprop::update(float* p, const float* g, int64_t n, std::vector<Tensor>& slots, int64_t) {
  const float rho = options.rho, lr = learning_rate, eps = options.epsilon, mom = options.momentum;
  float *v = slots[0].data(), *mean_g = slots[1].data(), *buf = slots[2].data();
  for (int64_t i = 0; i < n; ++i) {
    v[i] = rho * v[i] + (1.f - rho) * g[i] * g[i];
    float var = v[i];
    if (options.centered) {
      mean_g[i] = rho * mean_g[i] + (1.f - rho) * g[i];
      var -= mean_g[i] * mean_g[i];
    }
    const float scaled = g[i] / (std::sqrt(var) + eps);
    if (mom != 0.f) {
      buf[i] = mom * buf[i] + scaled;
      p[i] -= lr * buf[i];
    } else {
      p[i] -= lr * scaled;
    }
  }
}

Json RMSprop::config() const {
  Json j = Optimizer::config();
  j["rho"] = options.rho;
  j["momentum"] = options.momentum;
  j["epsilon"] = options.epsilon;
  j["centered"] = options.centered;
  return j;
}

// --- Adagrad ---------------------------------------------------------------------------------------------

Adagrad::Adagrad(Options o) : Optimizer(o.learning_rate), options(o) {}

void Adagrad::init_slots(std::vector<Tensor>& slots, const Shape& shape) const {
  slots.push_back(Tensor::full(shape, options.initial_accumulator_value));
}

void Adagrad::update(float* p, const float* g, int64_t n, std::vector<Tensor>& slots, int64_t) {
  float* acc = slots[0].data();
  const float lr = learning_rate, eps = options.epsilon;
  for (int64_t i = 0; i < n; ++i) {
    acc[i] += g[i] * g[i];
    p[i] -= lr * g[i] / (std::sqrt(acc[i]) + eps);
  }
}

Json Adagrad::config() const {
  Json j = Optimizer::config();
  j["initial_accumulator_value"] = options.initial_accumulator_value;
  j["epsilon"] = options.epsilon;
  return j;
}

// --- from JSON ---------------------------------------------------------------------------------------------

std::shared_ptr<Optimizer> optimizer_from_config(const Json& j) {
  std::string name;
  Json c = Json::object();
  if (j.is_string()) {
    name = j.get<std::string>();
  } else if (j.is_object() && j.contains("class_name") && j["class_name"].is_string()) {
    name = j["class_name"].get<std::string>();
    if (j.contains("config") && j["config"].is_object()) c = j["config"];
  } else {
    throw ValueError("optimizer: expected a name or {\"class_name\": ..., \"config\": ...}, got " + j.dump());
  }
  std::string key = name;
  std::transform(key.begin(), key.end(), key.begin(), [](unsigned char ch) { return std::tolower(ch); });
  auto num = [&](const char* k, float fallback) {
    if (!c.contains(k) || c[k].is_null()) return fallback;
    if (!c[k].is_number()) throw ValueError("optimizer " + name + ": '" + k + "' must be a number, got " + c[k].dump());
    return c[k].get<float>();
  };
  auto lr = [&](float fallback) { return num("learning_rate", num("lr", fallback)); };
  if (key == "sgd")
    return std::make_shared<SGD>(SGD::Options{lr(0.01f), num("momentum", 0.f), c.value("nesterov", false)});
  if (key == "adam")
    return std::make_shared<Adam>(Adam::Options{lr(0.001f), num("beta_1", 0.9f), num("beta_2", 0.999f),
                                                num("epsilon", 1e-7f), c.value("amsgrad", false)});
  if (key == "adamw")
    return std::make_shared<AdamW>(AdamW::Options{lr(0.001f), num("weight_decay", 0.004f), num("beta_1", 0.9f),
                                                  num("beta_2", 0.999f), num("epsilon", 1e-7f),
                                                  c.value("amsgrad", false)});
  if (key == "rmsprop")
    return std::make_shared<RMSprop>(RMSprop::Options{lr(0.001f), num("rho", 0.9f), num("momentum", 0.f),
                                                      num("epsilon", 1e-7f), c.value("centered", false)});
  if (key == "adagrad")
    return std::make_shared<Adagrad>(
        Adagrad::Options{lr(0.001f), num("initial_accumulator_value", 0.1f), num("epsilon", 1e-7f)});
  throw ValueError("optimizer '" + name + "' is not known (known: SGD, Adam, AdamW, RMSprop, Adagrad)");
}

}  // namespace lamina
