// Learning-rate schedules with Keras' formulas (keras/src/optimizers/schedules/learning_rate_schedule.py),
// and their Keras JSON both ways.
#include <cmath>
#include <numbers>
#include <set>

#include "lamina/optimizers.hpp"

namespace lamina {

Json LearningRateSchedule::to_json() const {
  return {{"module", "keras.optimizers.schedules"}, {"class_name", class_name()}, {"config", config()},
          {"registered_name", nullptr}};
}

namespace schedules {

namespace {

void check_steps(const char* cls, const char* key, int64_t v) {
  if (v <= 0) throw ValueError(std::string(cls) + ": " + key + " must be positive, got " + std::to_string(v));
}

void check_rate(const char* cls, const char* key, double v) {
  if (!std::isfinite(v) || v < 0) throw ValueError(std::string(cls) + ": " + key + " must be finite and >= 0, got " + std::to_string(v));
}

// step / decay_steps, floored with staircase.
double progress(int64_t step, int64_t decay_steps, bool staircase) {
  const double p = static_cast<double>(step) / static_cast<double>(decay_steps);
  return staircase ? std::floor(p) : p;
}

}  // namespace

ExponentialDecay::ExponentialDecay(Options o) : options(o) {
  check_rate("ExponentialDecay", "initial_learning_rate", o.initial_learning_rate);
  check_steps("ExponentialDecay", "decay_steps", o.decay_steps);
  check_rate("ExponentialDecay", "decay_rate", o.decay_rate);
}

double ExponentialDecay::operator()(int64_t step) const {
  return options.initial_learning_rate * std::pow(options.decay_rate, progress(step, options.decay_steps, options.staircase));
}

Json ExponentialDecay::config() const {
  return {{"initial_learning_rate", options.initial_learning_rate}, {"decay_steps", options.decay_steps},
          {"decay_rate", options.decay_rate}, {"staircase", options.staircase}, {"name", "ExponentialDecay"}};
}

PiecewiseConstantDecay::PiecewiseConstantDecay(Options o) : options(std::move(o)) {
  if (options.values.size() != options.boundaries.size() + 1)
    throw ValueError("PiecewiseConstantDecay: " + std::to_string(options.values.size()) + " values for " +
                     std::to_string(options.boundaries.size()) + " boundaries (it needs one value more than boundaries)");
  for (size_t i = 1; i < options.boundaries.size(); ++i)
    if (options.boundaries[i] <= options.boundaries[i - 1])
      throw ValueError("PiecewiseConstantDecay: boundaries must increase, got " +
                       Json(options.boundaries).dump());
  for (double v : options.values) check_rate("PiecewiseConstantDecay", "values", v);
}

double PiecewiseConstantDecay::operator()(int64_t step) const {
  for (size_t i = 0; i < options.boundaries.size(); ++i)
    if (step <= options.boundaries[i]) return options.values[i];
  return options.values.back();
}

Json PiecewiseConstantDecay::config() const {
  return {{"boundaries", options.boundaries}, {"values", options.values}, {"name", "PiecewiseConstant"}};
}

CosineDecay::CosineDecay(Options o) : options(o) {
  check_rate("CosineDecay", "initial_learning_rate", o.initial_learning_rate);
  check_steps("CosineDecay", "decay_steps", o.decay_steps);
  check_rate("CosineDecay", "alpha", o.alpha);
  if (o.warmup_target) check_rate("CosineDecay", "warmup_target", *o.warmup_target);
  if (o.warmup_steps < 0) throw ValueError("CosineDecay: warmup_steps must be >= 0, got " + std::to_string(o.warmup_steps));
}

double CosineDecay::operator()(int64_t step) const {
  const Options& o = options;
  auto decay = [&](double s, double from) {
    const double cosine = 0.5 * (1.0 + std::cos(std::numbers::pi * s / static_cast<double>(o.decay_steps)));
    return from * ((1.0 - o.alpha) * cosine + o.alpha);
  };
  const auto s = static_cast<double>(step);
  if (!o.warmup_target) return decay(std::min(s, static_cast<double>(o.decay_steps)), o.initial_learning_rate);
  const double capped = std::min(s, static_cast<double>(o.decay_steps + o.warmup_steps));
  if (capped < static_cast<double>(o.warmup_steps))
    return (*o.warmup_target - o.initial_learning_rate) * (capped / static_cast<double>(o.warmup_steps)) +
           o.initial_learning_rate;
  return decay(capped - static_cast<double>(o.warmup_steps), *o.warmup_target);
}

Json CosineDecay::config() const {
  return {{"initial_learning_rate", options.initial_learning_rate},
          {"decay_steps", options.decay_steps},
          {"alpha", options.alpha},
          {"name", "CosineDecay"},
          {"warmup_target", options.warmup_target ? Json(*options.warmup_target) : Json()},
          {"warmup_steps", options.warmup_steps}};
}

InverseTimeDecay::InverseTimeDecay(Options o) : options(o) {
  check_rate("InverseTimeDecay", "initial_learning_rate", o.initial_learning_rate);
  check_steps("InverseTimeDecay", "decay_steps", o.decay_steps);
  check_rate("InverseTimeDecay", "decay_rate", o.decay_rate);
}

double InverseTimeDecay::operator()(int64_t step) const {
  return options.initial_learning_rate /
         (1.0 + options.decay_rate * progress(step, options.decay_steps, options.staircase));
}

Json InverseTimeDecay::config() const {
  return {{"initial_learning_rate", options.initial_learning_rate}, {"decay_steps", options.decay_steps},
          {"decay_rate", options.decay_rate}, {"staircase", options.staircase}, {"name", "InverseTimeDecay"}};
}

}  // namespace schedules

namespace {

std::shared_ptr<const LearningRateSchedule> make_schedule(const Json& j) {
  const auto [name, c] = keras_object(j, "learning rate schedule");
  const std::string at = "learning rate schedule " + name;
  auto check_keys = [&](std::set<std::string> known) {
    known.insert("name");
    for (const auto& [k, v] : c.items())
      if (!known.count(k)) throw ValueError(at + ": config key '" + k + "' is not supported by Lamina");
  };
  auto number = [&](const char* k, double fallback) {
    if (!c.contains(k) || c[k].is_null()) return fallback;
    if (!c[k].is_number()) throw ValueError(at + ": '" + k + "' must be a number, got " + c[k].dump());
    return c[k].get<double>();
  };
  auto steps = [&](const char* k, int64_t fallback) {
    if (!c.contains(k) || c[k].is_null()) return fallback;
    if (!c[k].is_number()) throw ValueError(at + ": '" + k + "' must be a number, got " + c[k].dump());
    return static_cast<int64_t>(c[k].get<double>());
  };
  auto required = [&](const char* k) {
    if (!c.contains(k)) throw ValueError(at + ": '" + k + "' is missing");
  };
  if (name == "ExponentialDecay") {
    check_keys({"initial_learning_rate", "decay_steps", "decay_rate", "staircase"});
    for (const char* k : {"initial_learning_rate", "decay_steps", "decay_rate"}) required(k);
    return std::make_shared<schedules::ExponentialDecay>(schedules::ExponentialDecay::Options{
        number("initial_learning_rate", 0), steps("decay_steps", 1), number("decay_rate", 0), c.value("staircase", false)});
  }
  if (name == "InverseTimeDecay") {
    check_keys({"initial_learning_rate", "decay_steps", "decay_rate", "staircase"});
    for (const char* k : {"initial_learning_rate", "decay_steps", "decay_rate"}) required(k);
    return std::make_shared<schedules::InverseTimeDecay>(schedules::InverseTimeDecay::Options{
        number("initial_learning_rate", 0), steps("decay_steps", 1), number("decay_rate", 0), c.value("staircase", false)});
  }
  if (name == "CosineDecay") {
    check_keys({"initial_learning_rate", "decay_steps", "alpha", "warmup_target", "warmup_steps"});
    for (const char* k : {"initial_learning_rate", "decay_steps"}) required(k);
    schedules::CosineDecay::Options o{number("initial_learning_rate", 0), steps("decay_steps", 1), number("alpha", 0),
                                      std::nullopt, steps("warmup_steps", 0)};
    if (c.contains("warmup_target") && !c["warmup_target"].is_null()) o.warmup_target = number("warmup_target", 0);
    return std::make_shared<schedules::CosineDecay>(o);
  }
  if (name == "PiecewiseConstantDecay") {
    check_keys({"boundaries", "values"});
    for (const char* k : {"boundaries", "values"}) required(k);
    schedules::PiecewiseConstantDecay::Options o;
    for (const Json& b : c["boundaries"]) o.boundaries.push_back(static_cast<int64_t>(b.get<double>()));
    for (const Json& v : c["values"]) o.values.push_back(v.get<double>());
    return std::make_shared<schedules::PiecewiseConstantDecay>(o);
  }
  throw ValueError("learning rate schedule '" + name +
                   "' is not known (known: ExponentialDecay, PiecewiseConstantDecay, CosineDecay, InverseTimeDecay)");
}

}  // namespace

std::shared_ptr<const LearningRateSchedule> schedule_from_config(const Json& j) {
  try {
    return make_schedule(j);
  } catch (const Json::exception& e) {
    throw ValueError("learning rate schedule " + j.dump() + ": " + json_error_text(e));
  }
}

}  // namespace lamina
