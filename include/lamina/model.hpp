// Sequential: a stack of layers with Keras' model API — compile, fit, evaluate, predict,
// summary, to_json / from_json, save / load (safetensors with the JSON config inside).
//
//   Sequential model({layers::Flatten({.input_shape = Shape{28, 28}}),
//                     layers::Dense(128, "relu"), layers::Dense(10)});
//   model.compile(Adam(), losses::SparseCategoricalCrossentropy({.from_logits = true}), {"accuracy"});
//   model.fit(train, {.epochs = 5});
//   model.evaluate(test);
#pragma once

#include <concepts>
#include <cstdint>
#include <iosfwd>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "lamina/callbacks.hpp"
#include "lamina/data.hpp"
#include "lamina/json.hpp"
#include "lamina/layers.hpp"
#include "lamina/losses.hpp"
#include "lamina/metrics.hpp"
#include "lamina/optimizers.hpp"

namespace lamina {

struct FitOptions {
  int epochs = 1;
  int64_t batch_size = 32;
  double validation_split = 0.0;                 // the last fraction of the data, before shuffling
  std::optional<data::Dataset> validation_data;  // takes precedence over validation_split
  bool shuffle = true;
  std::optional<uint64_t> seed;                  // for shuffling; default: drawn from manual_seed's generator
  std::vector<Callback*> callbacks;
  int verbose = 1;                               // 0 silent, 1 progress bar, 2 one line per epoch
};

struct EvaluateOptions {
  int64_t batch_size = 32;
  int verbose = 1;  // 1: one summary line
};

// Wraps any layer value for Sequential's initializer list.
struct AnyLayer {
  template <class L>
    requires std::derived_from<L, Layer>
  AnyLayer(L layer) : ptr(std::make_shared<L>(std::move(layer))) {}  // NOLINT: implicit by design
  AnyLayer(std::shared_ptr<Layer> layer) : ptr(std::move(layer)) {}  // NOLINT
  std::shared_ptr<Layer> ptr;
};

class Sequential {
 public:
  explicit Sequential(std::string name = "sequential") : name_(std::move(name)) {}
  Sequential(std::initializer_list<AnyLayer> layers, std::string name = "sequential");

  // Appends a layer; a name is given if it has none ("dense", "dense_1", ...).
  Sequential& add(AnyLayer layer);
  const std::vector<std::shared_ptr<Layer>>& layers() const { return layers_; }
  Layer& layer(const std::string& name) const;  // ValueError if there is none

  // Creates every layer's weights for a per-sample input shape, drawing from manual_seed's
  // generator. fit, predict and summary build on first use when the input shape is known.
  void build(const Shape& input_shape);
  bool built() const { return input_shape_.has_value(); }
  std::optional<Shape> input_shape() const;   // declared or built
  Shape output_shape() const;                 // per sample; needs a known input shape

  // The forward pass on a batch (batch, input_shape...). Differentiable.
  Tensor call(const Tensor& x, bool training = false);
  Tensor operator()(const Tensor& x, bool training = false) { return call(x, training); }

  void compile(std::shared_ptr<Optimizer> optimizer, Loss loss, std::vector<std::string> metrics = {});
  template <class O>
    requires std::derived_from<O, Optimizer>
  void compile(O optimizer, Loss loss, std::vector<std::string> metrics = {}) {
    compile(std::make_shared<O>(std::move(optimizer)), std::move(loss), std::move(metrics));
  }
  void compile(const std::string& optimizer, Loss loss, std::vector<std::string> metrics = {});
  bool compiled() const { return optimizer_ != nullptr; }
  Optimizer& optimizer() const;
  const Loss& loss() const;
  const std::vector<std::string>& metric_names() const { return metric_names_; }

  History fit(const data::Dataset& train, const FitOptions& options = {});
  History fit(const Tensor& x, const Tensor& y, const FitOptions& options = {});
  // Loss and metrics over a dataset, in the same names fit logs.
  Logs evaluate(const data::Dataset& data, const EvaluateOptions& options = {});
  Logs evaluate(const Tensor& x, const Tensor& y, const EvaluateOptions& options = {});
  // Outputs (N, output_shape...) in inference mode, batch by batch, without a graph.
  Tensor predict(const data::Dataset& data, int64_t batch_size = 32);
  Tensor predict(const Tensor& x, int64_t batch_size = 32);

  // Keras' summary table: layer (type), output shape, parameter count, totals. Builds the
  // model first when its input shape is declared.
  void summary(std::ostream& os);
  void summary();
  int64_t count_params() const;
  // Every trainable weight, layer by layer (the optimizer's parameters).
  std::vector<Tensor> trainable_weights() const;
  // Every weight as "layer/weight" (e.g. "dense/kernel"), the names used in saved files.
  std::vector<std::pair<std::string, Tensor>> named_weights() const;

  // Keras' model JSON: {"class_name": "Sequential", "config": {"name": ..., "layers": [...]}}.
  Json to_json() const;
  // From Keras 2 or Keras 3 JSON (model.to_json()). Unknown layers are a ValueError.
  static Sequential from_json(const Json& j);
  // Weights + config (+ compile config) in one safetensors file, written atomically.
  // extra_metadata: more string entries for __metadata__ (e.g. the CLI's preprocessing).
  void save(const std::string& path, const std::map<std::string, std::string>& extra_metadata = {}) const;
  // A saved model, built, its weights checked against the config, compiled if it was.
  static Sequential load(const std::string& path);
  // The same from the file's bytes in memory; `name` stands for the path in errors.
  static Sequential load_bytes(std::string_view bytes, const std::string& name = "<memory>");

  bool stop_training = false;  // set by callbacks to end fit after the current epoch

 private:
  void ensure_built(const Shape& sample_shape, const char* where);
  void pack_parameters();
  std::vector<std::unique_ptr<Metric>> make_metrics() const;
  Logs run_evaluation(const data::Dataset& data, int64_t batch_size);

  std::string name_;
  std::vector<std::shared_ptr<Layer>> layers_;
  std::optional<Shape> input_shape_;  // set by build
  std::shared_ptr<Optimizer> optimizer_;
  std::optional<Loss> loss_;
  std::vector<std::string> metric_names_;
};

}  // namespace lamina
