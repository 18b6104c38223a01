// Optimizer updates: plain loops over each parameter's values, written to vectorize.
#include "lamina/optimizers.hpp"

#include <algorithm>
#include <cctype>
#include <cmath>
#include <span>

#include <omp.h>

#include "kernels/elementwise.hpp"  // LAMINA_HOT

namespace lamina {

// Parameters that live in one buffer in order (Sequential packs them) get their state as one
// buffer per slot too, and each parameter's state is a view into it.
void Optimizer::init_state(const std::vector<Tensor>& params) {
  slots_.assign(params.size(), {});
  flat_slots_.clear();
  bool flat = !params.empty();
  for (size_t i = 0; flat && i < params.size(); ++i)
    flat = params[i].impl()->storage == params[0].impl()->storage &&
           (i == 0 || params[i].data() >= params[i - 1].data() + params[i - 1].numel());
  if (flat) {
    const int64_t span = params.back().data() + params.back().numel() - params.front().data();
    for (int k = 0; k < num_slots(); ++k) flat_slots_.push_back(Tensor::full({span}, initial_slot_value(k)));
  }
  for (size_t i = 0; i < params.size(); ++i)
    for (int k = 0; k < num_slots(); ++k)
      slots_[i].push_back(flat ? flat_slots_[static_cast<size_t>(k)].view(params[i].data() - params[0].data(),
                                                                          params[i].shape())
                               : Tensor::full(params[i].shape(), initial_slot_value(k)));
}

void Optimizer::load_state(const std::vector<Tensor>& params, const std::vector<std::vector<Tensor>>& slots,
                           int64_t iterations) {
  if (iterations < 0)
    throw ValueError(name() + ".load_state: iterations must be >= 0, got " + std::to_string(iterations));
  if (!slots.empty() && slots.size() != params.size())
    throw ValueError(name() + ".load_state: state for " + std::to_string(slots.size()) + " parameters, given " +
                     std::to_string(params.size()));
  for (size_t i = 0; i < slots.size(); ++i) {
    if (slots[i].size() != static_cast<size_t>(num_slots()))
      throw ValueError(name() + ".load_state: parameter " + std::to_string(i) + " has " +
                       std::to_string(slots[i].size()) + " slots, " + name() + " keeps " + std::to_string(num_slots()));
    for (const Tensor& s : slots[i])
      if (s.shape() != params[i].shape())
        throw ValueError(name() + ".load_state: a slot of parameter " + std::to_string(i) + " has shape " +
                         s.shape().str() + ", the parameter " + params[i].shape().str());
  }
  iterations_ = iterations;
  slots_.clear();
  flat_slots_.clear();
  if (slots.empty() || params.empty()) return;
  init_state(params);
  for (size_t i = 0; i < slots.size(); ++i)
    for (size_t k = 0; k < slots[i].size(); ++k)
      std::copy(slots[i][k].data(), slots[i][k].data() + slots[i][k].numel(), slots_[i][k].data());
}

void Optimizer::carry_state(const std::vector<Tensor>& before, const std::vector<Tensor>& after) {
  if (slots_.empty()) return;
  if (before.size() != slots_.size())
    throw ValueError(name() + ".carry_state: state for " + std::to_string(slots_.size()) + " parameters, given " +
                     std::to_string(before.size()));
  const std::vector<std::vector<Tensor>> old = std::move(slots_);
  const std::vector<Tensor> old_flat = std::move(flat_slots_);  // keeps the views' storage
  slots_.clear();
  flat_slots_.clear();
  if (after.empty()) return;
  init_state(after);
  for (size_t j = 0; j < after.size(); ++j)
    for (size_t i = 0; i < before.size(); ++i)
      if (before[i].impl() == after[j].impl())
        for (size_t k = 0; k < old[i].size(); ++k)
          std::copy(old[i][k].data(), old[i][k].data() + old[i][k].numel(), slots_[j][k].data());
}

// Whether one pass can update everything: every gradient present this step and laid out
// like its parameter in one shared buffer.
bool Optimizer::flat_gradients(const std::vector<Tensor>& params) const {
  if (flat_slots_.empty() && num_slots() > 0) return false;
  const TensorImpl& first = *params[0].impl();
  for (const Tensor& p : params) {
    const TensorImpl& impl = *p.impl();
    if (!impl.grad.defined() || impl.grad_stale || impl.grad.impl()->storage != first.grad.impl()->storage ||
        impl.grad.data() - first.grad.data() != impl.data - first.data || impl.storage != first.storage)
      return false;
  }
  return true;
}

void Optimizer::start_step(const std::vector<Tensor>& params) {
  if (slots_.empty()) init_state(params);
  if (slots_.size() != params.size())
    throw ValueError(name() + ".step: called with " + std::to_string(params.size()) + " parameters, earlier with " +
                     std::to_string(slots_.size()) + " (an optimizer serves one set of parameters)");
  if (schedule) learning_rate = static_cast<float>((*schedule)(iterations_));
  ++iterations_;
}

// count values from p and g (already at `begin`), with the slots' values from `begin`.
void Optimizer::update_slice(std::vector<Tensor>& slots, int64_t begin, int64_t count, float* p, const float* g) {
  float* s[4] = {};
  for (size_t j = 0; j < slots.size() && j < 4; ++j) s[j] = slots[j].data() + begin;
  update(p, g, count, s, iterations_);
}

void Optimizer::update_part(size_t param, int64_t begin, int64_t count, float* p, const float* g) {
  update_slice(slots_[param], begin, count, p, g);
}

void Optimizer::step(const std::vector<Tensor>& params) {
  if (params.empty()) return;
  start_step(params);
  clip_gradients(params);
  if (flat_gradients(params)) {
    const int64_t span = params.back().data() + params.back().numel() - params.front().data();
    return update_chunked(params[0].impl()->data, params[0].impl()->grad.data(), span, flat_slots_);
  }
  for (size_t i = 0; i < params.size(); ++i) {
    Tensor p = params[i];
    if (p.impl()->grad_stale) continue;  // zeroed and not reached by this backward: no gradient
    const Tensor g = p.grad();
    if (!g.defined()) continue;
    if (!slots_[i].empty() && slots_[i][0].shape() != p.shape())
      throw ValueError(name() + ".step: parameter " + std::to_string(i) + " has shape " + p.shape().str() +
                       ", its optimizer state " + slots_[i][0].shape().str());
    update_chunked(p.data(), g.data(), p.numel(), slots_[i]);
  }
}

void Optimizer::apply_gradients(const std::vector<std::pair<Tensor, Tensor>>& grads_and_vars) {
  std::vector<Tensor> vars;
  vars.reserve(grads_and_vars.size());
  for (size_t i = 0; i < grads_and_vars.size(); ++i) {
    const auto& [g, v] = grads_and_vars[i];
    if (!v.defined()) throw ValueError(name() + ".apply_gradients: variable " + std::to_string(i) + " is undefined");
    if (!v.is_leaf() || !v.requires_grad())
      throw ValueError(name() + ".apply_gradients: variable " + std::to_string(i) + " " + v.shape().str() +
                       " is not a trainable leaf (a weight that requires grad)");
    TensorImpl& impl = *v.impl();
    if (g.defined()) {
      if (g.shape() != v.shape())
        throw ShapeError(name() + ".apply_gradients: gradient " + std::to_string(i) + " has shape " + g.shape().str() +
                         ", its variable " + v.shape().str());
      impl.grad = g.detach();
      impl.grad_stale = false;
    } else {
      impl.grad_stale = true;  // no gradient: skipped by step
    }
    vars.push_back(v);
  }
  step(vars);
}

void Optimizer::apply_gradients(const std::vector<Tensor>& grads, const std::vector<Tensor>& vars) {
  if (grads.size() != vars.size())
    throw ValueError(name() + ".apply_gradients: " + std::to_string(grads.size()) + " gradients for " +
                     std::to_string(vars.size()) + " variables");
  std::vector<std::pair<Tensor, Tensor>> pairs;
  for (size_t i = 0; i < vars.size(); ++i) pairs.emplace_back(grads[i], vars[i]);
  apply_gradients(pairs);
}

void Optimizer::clip_gradients(const std::vector<Tensor>& params) {
  if ((clipnorm > 0.f) + (global_clipnorm > 0.f) + (clipvalue > 0.f) > 1)
    throw ValueError(name() + ": set at most one of clipnorm, global_clipnorm and clipvalue (as Keras)");
  if (clipnorm <= 0.f && global_clipnorm <= 0.f && clipvalue <= 0.f) return;
  std::vector<std::span<float>> grads;
  for (const Tensor& p : params) {
    if (!p.impl()->grad.defined() || p.impl()->grad_stale) continue;
    Tensor g = p.impl()->grad;
    grads.push_back(g.values());
  }
  auto norm = [](std::span<const float> g) {
    double s = 0.0;
    for (float v : g) s += static_cast<double>(v) * v;
    return std::sqrt(s);
  };
  auto scale = [](std::span<float> g, double f) {
    for (float& v : g) v = static_cast<float>(v * f);
  };
  if (clipvalue > 0.f)
    for (auto g : grads)
      for (float& v : g) v = std::clamp(v, -clipvalue, clipvalue);
  if (clipnorm > 0.f)
    for (auto g : grads)
      if (const double n = norm(g); n > clipnorm) scale(g, clipnorm / n);
  if (global_clipnorm > 0.f) {
    double total = 0.0;
    for (auto g : grads) total += norm(g) * norm(g);
    if (const double n = std::sqrt(total); n > global_clipnorm)
      for (auto g : grads) scale(g, global_clipnorm / n);
  }
}

// Large parameters are split across threads in 16-float-aligned chunks. Every element's update
// is independent of the others, so the result does not depend on the thread count.
void Optimizer::update_chunked(float* p, const float* g, int64_t n, std::vector<Tensor>& slots) {
  // Measured: Adam over 101,770 values takes 18 us on 1 thread and 15 on 2 in isolation, but a
  // second thread costs more than that in a training step (the values then move between the
  // cores' caches); over 669,706 values it pays (140 -> 83 us).
  constexpr int64_t kParallelElements = 1 << 18;
  const int threads = n >= kParallelElements ? omp_get_max_threads() : 1;
  if (threads == 1) return update_slice(slots, 0, n, p, g);
#pragma omp parallel num_threads(threads)
  {
    const int64_t parts = omp_get_num_threads(), part = omp_get_thread_num();
    const int64_t chunk = ((n + parts - 1) / parts + 15) & ~int64_t{15};
    const int64_t begin = std::min(n, part * chunk), end = std::min(n, begin + chunk);
    if (end > begin) update_slice(slots, begin, end - begin, p + begin, g + begin);
  }
}

Json Optimizer::config() const {
  std::string n = name();
  std::transform(n.begin(), n.end(), n.begin(), [](unsigned char c) { return std::tolower(c); });
  Json j = {{"name", n}, {"learning_rate", schedule ? schedule->to_json() : Json(learning_rate)}};
  j["clipnorm"] = clipnorm > 0.f ? Json(clipnorm) : Json();
  j["global_clipnorm"] = global_clipnorm > 0.f ? Json(global_clipnorm) : Json();
  j["clipvalue"] = clipvalue > 0.f ? Json(clipvalue) : Json();
  return j;
}

// --- SGD -------------------------------------------------------------------------------------------

SGD::SGD(Options o) : Optimizer(o.learning_rate), options(o) {}

void SGD::update(float* p, const float* g, int64_t n, float* const* slots, int64_t) {
  const float lr = learning_rate, m = options.momentum;
  if (m == 0.f) {
    for (int64_t i = 0; i < n; ++i) p[i] -= lr * g[i];
    return;
  }
  float* buf = slots[0];
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

namespace {

// One Adam step over n values; the variants are separate instantiations so that each loop is
// branch-free and vectorizes (measured: the branchy loop was 39% of an MNIST step).
template <bool kDecay, bool kAmsgrad>
LAMINA_HOT void adam_loop(float* __restrict p, const float* __restrict g, float* __restrict m,
                          float* __restrict v, float* __restrict vmax, int64_t n, float b1, float b2, float step,
                          float rsqrt_c2, float eps, float decay) {
  for (int64_t i = 0; i < n; ++i) {
    float pi = p[i];
    if constexpr (kDecay) pi *= decay;
    const float mi = b1 * m[i] + (1.f - b1) * g[i];
    const float vi = b2 * v[i] + (1.f - b2) * g[i] * g[i];
    m[i] = mi;
    v[i] = vi;
    float vd = vi;
    if constexpr (kAmsgrad) vd = vmax[i] = std::max(vmax[i], vi);
    p[i] = pi - step * mi / (std::sqrt(vd) * rsqrt_c2 + eps);
  }
}

}  // namespace

void Adam::update(float* p, const float* g, int64_t n, float* const* slots, int64_t t) {
  const float b1 = options.beta_1, b2 = options.beta_2, lr = learning_rate, eps = options.epsilon;
  const auto correction1 = static_cast<float>(1.0 - std::pow(static_cast<double>(b1), static_cast<double>(t)));
  const auto correction2 = static_cast<float>(1.0 - std::pow(static_cast<double>(b2), static_cast<double>(t)));
  const float step = lr / correction1, rsqrt_c2 = 1.f / std::sqrt(correction2);
  const float decay = 1.f - lr * options.weight_decay;
  float *m = slots[0], *v = slots[1];
  float* vmax = options.amsgrad ? slots[2] : nullptr;
  const bool wd = options.weight_decay != 0.f;
  if (wd && vmax) adam_loop<true, true>(p, g, m, v, vmax, n, b1, b2, step, rsqrt_c2, eps, decay);
  else if (wd) adam_loop<true, false>(p, g, m, v, vmax, n, b1, b2, step, rsqrt_c2, eps, decay);
  else if (vmax) adam_loop<false, true>(p, g, m, v, vmax, n, b1, b2, step, rsqrt_c2, eps, decay);
  else adam_loop<false, false>(p, g, m, v, vmax, n, b1, b2, step, rsqrt_c2, eps, decay);
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

void RMSprop::update(float* p, const float* g, int64_t n, float* const* slots, int64_t) {
  const float rho = options.rho, lr = learning_rate, eps = options.epsilon, mom = options.momentum;
  float *v = slots[0], *mean_g = slots[1], *buf = slots[2];
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

void Adagrad::update(float* p, const float* g, int64_t n, float* const* slots, int64_t) {
  float* acc = slots[0];
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

namespace {

std::shared_ptr<Optimizer> make_optimizer(const Json& j) {
  // Named rather than a structured binding: the lambdas below capture them, which clang < 16
  // (make fuzz uses clang 14) refuses for bindings.
  const std::pair<std::string, Json> object = keras_object(j, "optimizer");
  const std::string& name = object.first;
  const Json& c = object.second;
  std::string key = name;
  std::transform(key.begin(), key.end(), key.begin(), [](unsigned char ch) { return std::tolower(ch); });
  auto num = [&](const char* k, double fallback) {
    if (!c.contains(k) || c[k].is_null()) return fallback;
    if (!c[k].is_number()) throw ValueError("optimizer " + name + ": '" + k + "' must be a number, got " + c[k].dump());
    return c[k].get<double>();
  };
  auto lr = [&](double fallback) -> LearningRate {
    for (const char* k : {"learning_rate", "lr"})
      if (c.contains(k) && c[k].is_object()) return schedule_from_config(c[k]);
    return num("learning_rate", num("lr", fallback));
  };
  std::shared_ptr<Optimizer> opt;
  if (key == "sgd")
    opt = std::make_shared<SGD>(SGD::Options{lr(0.01), num("momentum", 0.), c.value("nesterov", false)});
  else if (key == "adam")
    opt = std::make_shared<Adam>(Adam::Options{lr(0.001), num("beta_1", 0.9), num("beta_2", 0.999),
                                                num("epsilon", 1e-7), c.value("amsgrad", false)});
  else if (key == "adamw")
    opt = std::make_shared<AdamW>(AdamW::Options{lr(0.001), num("weight_decay", 0.004), num("beta_1", 0.9),
                                                  num("beta_2", 0.999), num("epsilon", 1e-7),
                                                  c.value("amsgrad", false)});
  else if (key == "rmsprop")
    opt = std::make_shared<RMSprop>(RMSprop::Options{lr(0.001), num("rho", 0.9), num("momentum", 0.),
                                                      num("epsilon", 1e-7), c.value("centered", false)});
  else if (key == "adagrad")
    opt = std::make_shared<Adagrad>(
        Adagrad::Options{lr(0.001), num("initial_accumulator_value", 0.1), num("epsilon", 1e-7)});
  if (opt) {
    opt->clipnorm = static_cast<float>(num("clipnorm", 0.));
    opt->global_clipnorm = static_cast<float>(num("global_clipnorm", 0.));
    opt->clipvalue = static_cast<float>(num("clipvalue", 0.));
    return opt;
  }
  throw ValueError("optimizer '" + name + "' is not known (known: SGD, Adam, AdamW, RMSprop, Adagrad)");
}

}  // namespace

std::shared_ptr<Optimizer> optimizer_from_config(const Json& j) {
  try {
    return make_optimizer(j);
  } catch (const Json::exception& e) {  // a value of the wrong JSON type ("nesterov": 5)
    throw ValueError("optimizer " + j.dump() + ": " + json_error_text(e));
  }
}

}  // namespace lamina
