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
#include <functional>
#include <iosfwd>
#include <map>
#include <memory>
#include <optional>
#include <set>
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

namespace io {
struct SafetensorsFile;
}

struct FitOptions {
  int epochs = 1;                                // as Keras, the final epoch: fit runs initial_epoch..epochs-1
  int initial_epoch = 0;                         // the epoch to start at; resumes exactly when the model
                                                 // stands there (after fit or load_checkpoint)
  int64_t batch_size = 32;
  double validation_split = 0.0;                 // the last fraction of the data, before shuffling
  std::optional<data::Dataset> validation_data;  // takes precedence over validation_split
  bool shuffle = true;
  std::optional<uint64_t> seed;                  // for shuffling; default: drawn from manual_seed's generator
  std::vector<Callback*> callbacks;
  int verbose = 1;                               // 0 silent, 1 progress bar, 2 one line per epoch
};

// Where training stands, as fit leaves it and a checkpoint records it. fit replays the shuffles
// from the seed (the order carries over from epoch to epoch), so no order needs storing.
struct FitState {
  int epoch = 0;                       // epochs completed
  int64_t step = 0;                    // batches done in epoch `epoch` (0 at an epoch boundary)
  std::optional<uint64_t> shuffle_seed;  // unset: fit has not run
  int64_t shuffled = 0;                // shuffles drawn from that seed so far
  int64_t samples = 0, batch_size = 0;  // of the training data, to check a resume against
};

struct EvaluateOptions {
  int64_t batch_size = 32;
  int verbose = 1;  // 1: one summary line
};

// The memory a model would use, estimated from its layers' shapes before anything is allocated
// (Sequential::estimate_memory). Bytes, float32 throughout. A planning figure, not a measurement:
// it leaves out the allocator's and oneDNN's own overheads (hence the CLI's safety margin).
struct MemoryEstimate {
  int64_t batch_size = 0;
  int64_t last_batch_size = 0;  // a smaller last batch, whose buffers the storage cache keeps too
  bool training = true;
  int64_t parameters = 0;   // every weight (trainable ones twice: build's packed copy and the first)
  int64_t gradients = 0;    // training: a gradient per trainable weight
  int64_t optimizer = 0;    // training, compiled: the optimizer's slots (Adam: 2 per weight)
  int64_t activations = 0;  // one batch: the layers' outputs (training: with their gradients)
  int64_t data = 0;         // data held in memory (the dataset, predict's outputs); callers add it
  std::string optimizer_name;   // "Adam"
  int optimizer_slots = 0;      // per trainable weight
  std::string largest_weight;   // "'dense/kernel' (784, 128)"
  std::string largest_output;   // "layer 'conv2d' output (28, 28, 32)"
  int64_t total() const;
  // The parts, largest first: "activations 3.0 GB for batch 60 (largest: batch 60 x layer
  // 'conv' output (8, 8, 4096)), parameters 1.2 MB (largest: ...), ...".
  std::string str() const;
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
  // A saved model, built, its weights checked against the config, compiled if it was. Reads
  // checkpoints too (their optimizer state is ignored).
  static Sequential load(const std::string& path);
  // The same from the file's bytes in memory; `name` stands for the path in errors.
  static Sequential load_bytes(std::string_view bytes, const std::string& name = "<memory>");

  // A checkpoint: what save writes, plus the optimizer state ("optimizer/<slot>/<weight>"
  // tensors), the generators training draws from (default_generator's, Dropout's) and
  // fit_state(), so that load_checkpoint + fit({.initial_epoch = fit_state().epoch}) continues
  // bit for bit as if training had not stopped. Written atomically; needs a compiled model.
  //   model.save_checkpoint("ckpt.safetensors");
  //   Sequential m = Sequential::load_checkpoint("ckpt.safetensors");   // another process
  //   m.fit(train, {.epochs = 10, .initial_epoch = m.fit_state().epoch});
  void save_checkpoint(const std::string& path, const std::map<std::string, std::string>& extra_metadata = {}) const;
  // Checks everything (format and checkpoint versions, checksum, every tensor's name and shape)
  // before it commits anything: on an IoError no state, default_generator's included, changes.
  static Sequential load_checkpoint(const std::string& path);
  const FitState& fit_state() const { return fit_state_; }
  // The memory one step of fit (training) or of evaluate / predict (inference) with this batch
  // size would need, from shapes alone; see MemoryEstimate. Needs a known input shape. build,
  // fit, evaluate and predict check it against set_memory_limit (runtime.hpp) first.
  MemoryEstimate estimate_memory(int64_t batch_size, bool training = true) const;

  // Checks that the targets of `data` suit the compiled loss and the model's output before any
  // step runs: their shape, finite values, and for sparse_categorical_crossentropy integer class
  // indices in [0, classes). Errors start with `source` and name the sample through `position`
  // (default "sample 12"; the CLI passes "line 14, column 5 (sample 12)"). fit and evaluate call it.
  void check_targets(const data::Dataset& data, const std::string& source,
                     const std::function<std::string(int64_t)>& position = {}) const;

  // Runs a batch through the layers one at a time in training mode, then the loss and backward
  // layer by layer, and names the first layer whose weights, output or gradients hold NaN or
  // infinity: "layer 'boom' (Dense) output: 24 of 32 values are not finite (first: inf at
  // (0, 3))". Empty when everything is finite. fit runs it once, on the first batch whose loss
  // is not finite (before that batch's update); see divergence().
  std::string diagnose_non_finite(const Tensor& x, const Tensor& y);
  // What diagnose_non_finite found for the last fit's first non-finite loss; empty if none.
  const std::string& divergence() const { return divergence_; }

  bool stop_training = false;  // set by callbacks to end fit after the current epoch

 private:
  std::map<std::string, std::string> file_metadata(const std::map<std::string, std::string>& extra) const;
  static Sequential from_file(const io::SafetensorsFile& file, const std::string& path);
  static Sequential from_json_unchecked(const Json& j);  // from_json without its nlohmann translation
  void ensure_built(const Shape& sample_shape, const char* where);
  void pack_parameters();
  std::vector<std::unique_ptr<Metric>> make_metrics() const;
  Logs run_evaluation(const data::Dataset& data, int64_t batch_size);
  MemoryEstimate estimate_for(const Shape& input_shape, int64_t batch_size, bool training) const;
  // ValueError when e.total() exceeds memory_limit(); `what` starts the message ("fit").
  void check_memory(const MemoryEstimate& e, const std::string& what) const;

  std::string name_;
  std::vector<std::shared_ptr<Layer>> layers_;
  // add()'s bookkeeping, so that adding n layers costs O(n), not O(n^3) (a 40,000-layer spec):
  // the names in use, and the next suffix to try per automatic base name ("dense" -> 3).
  std::set<std::string> layer_names_;
  std::map<std::string, int> next_suffix_;
  std::optional<Shape> input_shape_;  // set by build
  std::shared_ptr<Optimizer> optimizer_;
  std::optional<Loss> loss_;
  std::vector<std::string> metric_names_;
  FitState fit_state_;
  std::string divergence_;
};

}  // namespace lamina
