// Optimizers with Keras' names and defaults (keras.optimizers) and PyTorch's update formulas
// (torch.optim), which the tests check to float precision. For a constant learning rate they
// equal Keras' except where epsilon sits: Keras 3 adds it to sqrt(v) before Adam's bias
// correction and inside the square root for RMSprop, which differs from torch only while
// v is tiny (a gradient element ~1e-3 at the first steps). Each optimizer keeps per-parameter
// state ("slots") by position.
//
//   SGD opt({.learning_rate = 0.01, .momentum = 0.9});
//   opt.step(model.trainable_weights());     // uses each parameter's grad()
#pragma once

#include <concepts>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "lamina/json.hpp"
#include "lamina/tensor.hpp"

namespace lamina {

// A learning rate that changes with the step, as keras.optimizers.schedules: the optimizer asks it
// for the rate before each update, with the number of updates done so far (0 for the first).
class LearningRateSchedule {
 public:
  virtual ~LearningRateSchedule() = default;
  virtual double operator()(int64_t step) const = 0;
  virtual std::string class_name() const = 0;  // Keras' class name: "ExponentialDecay"
  virtual Json config() const = 0;             // Keras' config of the schedule
  // {"module": "keras.optimizers.schedules", "class_name": ..., "config": ...}, as Keras writes it.
  Json to_json() const;
};

namespace schedules {

// initial_learning_rate * decay_rate ^ (step / decay_steps); the exponent floored with staircase.
class ExponentialDecay : public LearningRateSchedule {
 public:
  struct Options {
    double initial_learning_rate = 0.01;
    int64_t decay_steps = 1;
    double decay_rate = 0.96;
    bool staircase = false;
  };
  explicit ExponentialDecay(Options o);
  double operator()(int64_t step) const override;
  std::string class_name() const override { return "ExponentialDecay"; }
  Json config() const override;
  Options options;
};

// values[0] up to and including boundaries[0], values[1] up to boundaries[1], ..., values.back()
// after the last boundary (values has one more entry than boundaries).
class PiecewiseConstantDecay : public LearningRateSchedule {
 public:
  struct Options {
    std::vector<int64_t> boundaries{};
    std::vector<double> values{};
  };
  explicit PiecewiseConstantDecay(Options o);
  double operator()(int64_t step) const override;
  std::string class_name() const override { return "PiecewiseConstantDecay"; }
  Json config() const override;
  Options options;
};

// Cosine decay (Loshchilov & Hutter) from initial_learning_rate to alpha * it over decay_steps,
// after an optional linear warm-up over warmup_steps from initial_learning_rate to warmup_target
// (then the decay starts from warmup_target), as Keras 3's CosineDecay.
class CosineDecay : public LearningRateSchedule {
 public:
  struct Options {
    double initial_learning_rate = 0.01;
    int64_t decay_steps = 1;
    double alpha = 0.0;
    std::optional<double> warmup_target{};
    int64_t warmup_steps = 0;
  };
  explicit CosineDecay(Options o);
  double operator()(int64_t step) const override;
  std::string class_name() const override { return "CosineDecay"; }
  Json config() const override;
  Options options;
};

// initial_learning_rate / (1 + decay_rate * step / decay_steps); the ratio floored with staircase.
class InverseTimeDecay : public LearningRateSchedule {
 public:
  struct Options {
    double initial_learning_rate = 0.01;
    int64_t decay_steps = 1;
    double decay_rate = 0.5;
    bool staircase = false;
  };
  explicit InverseTimeDecay(Options o);
  double operator()(int64_t step) const override;
  std::string class_name() const override { return "InverseTimeDecay"; }
  Json config() const override;
  Options options;
};

}  // namespace schedules

// A schedule from Keras JSON: {"class_name": "ExponentialDecay", "config": {...}} (Keras 2 or 3).
// ValueError naming the schedule and the key for unknown names or keys.
std::shared_ptr<const LearningRateSchedule> schedule_from_config(const Json& j);

// An optimizer's learning rate: a number or a schedule, as Keras' learning_rate argument.
//   Adam({.learning_rate = 1e-3});
//   SGD({.learning_rate = schedules::CosineDecay({.initial_learning_rate = 0.1, .decay_steps = 1000})});
struct LearningRate {
  LearningRate(double v) : value(v) {}  // NOLINT: implicit by design (a runtime double is fine)
  template <class S>
    requires std::derived_from<S, LearningRateSchedule>
  LearningRate(S s) : value(s(0)), schedule(std::make_shared<const S>(std::move(s))) {}  // NOLINT
  LearningRate(std::shared_ptr<const LearningRateSchedule> s) : value(s ? (*s)(0) : 0.0), schedule(std::move(s)) {}  // NOLINT
  double value;
  std::shared_ptr<const LearningRateSchedule> schedule{};
};

class Optimizer {
 public:
  explicit Optimizer(const LearningRate& lr)
      : learning_rate(static_cast<float>(lr.value)), schedule(lr.schedule) {}
  virtual ~Optimizer() = default;
  virtual std::string name() const = 0;  // Keras' class name: "Adam"
  // One update of every parameter from its gradient; parameters without one are skipped.
  // The same parameters must come in the same order each call (their state is by position).
  void step(const std::vector<Tensor>& params);
  int64_t iterations() const { return iterations_; }
  // State the optimizer keeps per weight (Adam: 2, SGD with momentum: 1); for memory estimates.
  int slots_per_weight() const { return num_slots(); }
  // Keras' optimizer config: {"name": "adam", "learning_rate": 0.001, ...}.
  virtual Json config() const;

  // The rate of the next update: set it (a callback may), or leave it to `schedule`, which then
  // sets it before every update from iterations().
  float learning_rate;
  std::shared_ptr<const LearningRateSchedule> schedule;
  // Applies each gradient to its variable, as Keras' optimizer.apply_gradients(zip(grads, vars)):
  // the gradients are stored as the variables' grad() and step() runs. Hand loops and custom
  // train steps use it with grads from grad() (autograd.hpp) or after backward().
  void apply_gradients(const std::vector<std::pair<Tensor, Tensor>>& grads_and_vars);
  // The same from two lists of one length: apply_gradients(grad(loss, weights), weights).
  void apply_gradients(const std::vector<Tensor>& grads, const std::vector<Tensor>& vars);
  // Gradient clipping before each update, as Keras' optimizer arguments (0 = off; at most one
  // may be set): clipnorm scales each gradient to L2 norm <= clipnorm, global_clipnorm scales
  // all of them together to a joint norm <= global_clipnorm, clipvalue clamps each element to
  // [-clipvalue, clipvalue].
  float clipnorm = 0.f;
  float global_clipnorm = 0.f;
  float clipvalue = 0.f;
  bool clips() const { return clipnorm > 0.f || global_clipnorm > 0.f || clipvalue > 0.f; }

  // A step whose updates the caller spreads over its own threads (a training loop that gives
  // each thread a block of every parameter): start_step once, as step() begins (state, rate,
  // count), then update_part for every element of each parameter exactly once, from any thread:
  // elements [begin, begin + count) of parameter `param` (by position), the values at p and
  // their gradient at g (which need not be the parameter's grad()). Without clipping, which
  // needs whole gradients (clips() false).
  void start_step(const std::vector<Tensor>& params);
  void update_part(size_t param, int64_t begin, int64_t count, float* p, const float* g);

  // The state a checkpoint holds: slot k of parameter i is state()[i][k] (empty before the
  // first step), named slot_name(k) as Keras names its optimizer variables ("momentum").
  virtual int num_slots() const = 0;
  virtual std::string slot_name(int slot) const = 0;
  const std::vector<std::vector<Tensor>>& state() const { return slots_; }
  // Restores state saved from step() on the same parameters: lays it out for `params` as the
  // first step would and copies `slots` [i][k] in (empty: no step taken yet). Checks every
  // shape first (ValueError), so a mismatch changes nothing.
  void load_state(const std::vector<Tensor>& params, const std::vector<std::vector<Tensor>>& slots,
                  int64_t iterations);
  // Lays the state out for `after` instead of `before` (the parameters it was kept for): a
  // parameter in both keeps its slots, a new one starts as at the first step. For a model whose
  // trainable weights changed between fits (Layer::set_trainable). Nothing to do before a step.
  void carry_state(const std::vector<Tensor>& before, const std::vector<Tensor>& after);

 protected:
  // Updates n values of one parameter from its gradient g and its slots (one pointer per slot,
  // at the same offset), at step t (1-based). step() may call it on chunks in parallel.
  virtual void update(float* p, const float* g, int64_t n, float* const* slots, int64_t t) = 0;
  virtual float initial_slot_value(int /*slot*/) const { return 0.f; }

 private:
  void clip_gradients(const std::vector<Tensor>& params);
  void init_state(const std::vector<Tensor>& params);
  bool flat_gradients(const std::vector<Tensor>& params) const;
  void update_chunked(float* p, const float* g, int64_t n, std::vector<Tensor>& slots);
  void update_slice(std::vector<Tensor>& slots, int64_t begin, int64_t count, float* p, const float* g);

  std::vector<std::vector<Tensor>> slots_;  // per parameter (views into flat_slots_ when flat)
  std::vector<Tensor> flat_slots_;          // one buffer per slot over all parameters, when they
                                            // live in one buffer (Sequential packs them)
  int64_t iterations_ = 0;
};

// w -= lr * g; with momentum: buf = m buf + g, w -= lr * (nesterov ? g + m buf : buf).
class SGD : public Optimizer {
 public:
  struct Options {
    LearningRate learning_rate = 0.01;
    double momentum = 0.;
    bool nesterov = false;
  };
  SGD() : SGD(Options{}) {}
  explicit SGD(Options o);
  std::string name() const override { return "SGD"; }
  Json config() const override;
  Options options;
  int num_slots() const override { return options.momentum != 0.f ? 1 : 0; }
  std::string slot_name(int) const override { return "momentum"; }

 protected:
  void update(float* p, const float* g, int64_t n, float* const* slots, int64_t t) override;
};

// Adam (Kingma & Ba): bias-corrected first and second moments.
class Adam : public Optimizer {
 public:
  struct Options {
    LearningRate learning_rate = 0.001;
    double beta_1 = 0.9;
    double beta_2 = 0.999;
    double epsilon = 1e-7;
    bool amsgrad = false;
    double weight_decay = 0.;  // decoupled (AdamW) when set through AdamW
  };
  Adam() : Adam(Options{}) {}
  explicit Adam(Options o);
  std::string name() const override { return "Adam"; }
  Json config() const override;
  Options options;
  int num_slots() const override { return options.amsgrad ? 3 : 2; }
  std::string slot_name(int k) const override { return k == 0 ? "momentum" : k == 1 ? "velocity" : "velocity_hat"; }

 protected:
  void update(float* p, const float* g, int64_t n, float* const* slots, int64_t t) override;
};

// Adam with decoupled weight decay: w -= lr * weight_decay * w before each Adam step.
class AdamW : public Adam {
 public:
  struct Options {
    LearningRate learning_rate = 0.001;
    double weight_decay = 0.004;
    double beta_1 = 0.9;
    double beta_2 = 0.999;
    double epsilon = 1e-7;
    bool amsgrad = false;
  };
  AdamW() : AdamW(Options{}) {}
  explicit AdamW(Options o);
  std::string name() const override { return "AdamW"; }
};

// v = rho v + (1 - rho) g^2; w -= lr g / (sqrt(v) + eps); optional momentum and centering.
class RMSprop : public Optimizer {
 public:
  struct Options {
    LearningRate learning_rate = 0.001;
    double rho = 0.9;
    double momentum = 0.;
    double epsilon = 1e-7;
    bool centered = false;
  };
  RMSprop() : RMSprop(Options{}) {}
  explicit RMSprop(Options o);
  std::string name() const override { return "RMSprop"; }
  Json config() const override;
  Options options;
  int num_slots() const override { return 3; }  // v, mean gradient, momentum buffer
  std::string slot_name(int k) const override { return k == 0 ? "velocity" : k == 1 ? "average_gradient" : "momentum"; }

 protected:
  void update(float* p, const float* g, int64_t n, float* const* slots, int64_t t) override;
};

// acc += g^2; w -= lr g / (sqrt(acc) + eps); acc starts at initial_accumulator_value.
class Adagrad : public Optimizer {
 public:
  struct Options {
    LearningRate learning_rate = 0.001;
    double initial_accumulator_value = 0.1;
    double epsilon = 1e-7;
  };
  Adagrad() : Adagrad(Options{}) {}
  explicit Adagrad(Options o);
  std::string name() const override { return "Adagrad"; }
  Json config() const override;
  Options options;
  int num_slots() const override { return 1; }
  std::string slot_name(int) const override { return "accumulator"; }

 protected:
  void update(float* p, const float* g, int64_t n, float* const* slots, int64_t t) override;
  float initial_slot_value(int) const override { return options.initial_accumulator_value; }
};

// From Keras JSON: a name ("adam") or {"class_name": "Adam", "config": {...}} (Keras 2 or 3,
// "lr" accepted for "learning_rate"). Unknown names throw ValueError listing the known ones.
std::shared_ptr<Optimizer> optimizer_from_config(const Json& j);

}  // namespace lamina
