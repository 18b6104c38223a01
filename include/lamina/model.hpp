// Models: Model, a graph of layer calls (Keras' Functional API), and Sequential, a chain, with
// Keras' model API — compile, fit, evaluate, predict, summary, to_json / from_json, save / load
// (safetensors with the JSON config inside), checkpoints.
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
#include "lamina/distributed.hpp"
#include "lamina/json.hpp"
#include "lamina/layers.hpp"
#include "lamina/layers/merge.hpp"
#include "lamina/losses.hpp"
#include "lamina/metrics.hpp"
#include "lamina/optimizers.hpp"
#include "lamina/text.hpp"

namespace lamina {

namespace io {
struct SafetensorsFile;
}
namespace detail {
class BatchSplitStep;
class DenseChainStep;
}  // namespace detail
namespace distributed {
class GradientReducer;
}

struct FitOptions {
  int epochs = 1;                                // as Keras, the final epoch: fit runs initial_epoch..epochs-1
  int initial_epoch = 0;                         // the epoch to start at; resumes exactly when the model
                                                 // stands there (after fit or load_checkpoint)
  int64_t batch_size = 32;
  double validation_split = 0.0;                 // the last fraction of the data, before shuffling
  std::optional<data::Dataset> validation_data{};  // takes precedence over validation_split
  bool shuffle = true;
  std::optional<uint64_t> seed{};                  // for shuffling; default: drawn from manual_seed's generator
  std::vector<Callback*> callbacks{};
  int verbose = 1;                               // 0 silent, 1 progress bar, 2 one line per epoch
  // Keras' sample_weight: one weight per training sample (N), scaling its loss (and the
  // weighted_metrics). With validation_split the training part keeps its weights and the
  // validation samples are evaluated unweighted.
  Tensor sample_weight{};
  // Keras' class_weight: a weight per class index (absent classes weigh 1), multiplied into each
  // sample's weight by its target's class (an integer label, a one-hot row's argmax, or a binary
  // target rounded). Training only, one output only, as Keras.
  std::map<int64_t, double> class_weight{};
  // Batches per epoch for a BatchSource that does not know its length (an endless generator);
  // otherwise an epoch ends when the source does.
  std::optional<int64_t> steps_per_epoch{};
};

// Where training stands, as fit leaves it and a checkpoint records it. fit replays the shuffles
// from the seed (the order carries over from epoch to epoch), so no order needs storing.
struct FitState {
  int epoch = 0;                       // epochs completed
  int64_t step = 0;                    // batches done in epoch `epoch` (0 at an epoch boundary)
  std::optional<uint64_t> shuffle_seed;  // unset: fit has not run
  int64_t shuffled = 0;                // shuffles drawn from that seed so far
  int64_t samples = 0, batch_size = 0;  // of the training data, to check a resume against
  int ranks = 1;                        // data-parallel ranks it was trained on
  int64_t global_batch = 0;             // samples per step over every rank (0: batch_size)
};

struct EvaluateOptions {
  int64_t batch_size = 32;
  int verbose = 1;  // 1: one summary line
};

// The memory a model would use, estimated from its layers' shapes before anything is allocated
// (Model::estimate_memory). Bytes, float32 throughout. A planning figure, not a measurement:
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

// Wraps any layer value for Sequential's initializer list; an Input() stands for its InputLayer.
struct AnyLayer {
  template <class L>
    requires std::derived_from<L, Layer>
  AnyLayer(L layer) : ptr(std::make_shared<L>(std::move(layer))) {}  // NOLINT: implicit by design
  AnyLayer(std::shared_ptr<Layer> layer) : ptr(std::move(layer)) {}  // NOLINT
  AnyLayer(const KerasTensor& input);                                 // NOLINT: Sequential({Input({28, 28}), ...})
  std::shared_ptr<Layer> ptr;
};

// How compile weighs and names several outputs (Keras' loss_weights); see Model::compile.
struct CompileOptions {
  std::vector<MetricSpec> metrics{};           // computed on every output ("accuracy", your own Metric, ...)
  std::vector<double> loss_weights{};          // one per output (default: all 1); the loss is their weighted sum
  std::vector<MetricSpec> weighted_metrics{};  // computed with the sample / class weights (Keras' weighted_metrics)
};

// A model: a graph of layer calls from one or more inputs to one or more outputs, with Keras'
// model API: compile, fit, evaluate, predict, summary, to_json / from_json, save / load
// (safetensors with the JSON config inside), checkpoints. Sequential is the special case of a
// chain; both train through the same code. A model is itself a layer, so it nests.
//
//   KerasTensor x = Input({28, 28, 1});
//   KerasTensor h = layers::Conv2D({.filters = 16, .kernel_size = 3, .padding = Padding::same})(x);
//   KerasTensor r = layers::Conv2D({.filters = 16, .kernel_size = 3, .padding = Padding::same})(h);
//   KerasTensor y = layers::Dense(10)(layers::Flatten()(layers::Add()({h, r})));
//   Model model({x}, {y}, "resnet");
//   model.compile(Adam(), losses::SparseCategoricalCrossentropy({.from_logits = true}), {"accuracy"});
//   model.fit(train, {.epochs = 5});
class Model : public Layer {
 public:
  // The graph from `inputs` (made by Input) to `outputs`. Names unnamed layers ("dense_2"), builds
  // every layer, and checks the graph: ValueError naming the layers when an output does not
  // depend on the inputs only, a layer name is used twice, or an input is not an Input.
  Model(const std::vector<KerasTensor>& inputs, const std::vector<KerasTensor>& outputs, std::string name = "functional");
  Model(const KerasTensor& input, const KerasTensor& output, std::string name = "functional")
      : Model(std::vector<KerasTensor>{input}, std::vector<KerasTensor>{output}, std::move(name)) {}
  Model(Model&&) noexcept = default;
  Model& operator=(Model&&) noexcept = default;
  Model(const Model&) = default;  // shares the layers (and so the weights), as a handle; see clone()
  Model& operator=(const Model&) = default;
  ~Model() override = default;

  std::string class_name() const override { return sequential_ ? "Sequential" : "Functional"; }
  bool is_sequential() const { return sequential_; }
  // The layers, each once, in the order the graph first calls them (InputLayers first).
  const std::vector<std::shared_ptr<Layer>>& layers() const { return layers_; }
  Layer& layer(const std::string& name) const;  // ValueError if there is none
  size_t num_inputs() const { return sequential_ ? 1 : input_ids_.size(); }  // a Sequential: 1 even before build
  size_t num_outputs() const { return sequential_ ? 1 : output_ids_.size(); }
  // Names of the input and output layers, as Keras' input_names / output_names.
  std::vector<std::string> input_names() const;
  std::vector<std::string> output_names() const;

  // Creates every layer's weights for a per-sample input shape, drawing from manual_seed's
  // generator. fit, predict and summary build on first use when the input shape is known.
  // (A Functional model is built when it is made; this checks the shape.)
  void build(const Shape& input_shape);
  using Layer::build;
  std::optional<Shape> input_shape() const;  // the first input's, declared or built
  std::vector<Shape> input_shapes() const;   // every input's; empty while unknown
  Shape output_shape() const;                // the first output's, per sample
  std::vector<Shape> output_shapes() const;  // every output's
  using Layer::output_shape;

  // The forward pass on a batch (batch, input_shape...). Differentiable.
  Tensor call(const Tensor& x, bool training = false) override;
  Tensor operator()(const Tensor& x, bool training = false) { return call(x, training); }
  using Layer::operator();
  // Every input in, every output out: one tensor per model input / output, in order.
  std::vector<Tensor> call(const std::vector<Tensor>& inputs, bool training = false);
  // The forward pass with a hook on every top-level layer call, as a PyTorch forward hook: `hook`
  // sees each call's (first) output once the layer ran, and may replace it by a tensor of the same
  // shape, which the rest of the graph then reads (explain.hpp reads a conv layer's output for
  // Grad-CAM, and replaces an Embedding's output to integrate along a path of embeddings).
  using OutputHook = std::function<void(const Layer& layer, Tensor& output)>;
  std::vector<Tensor> call_with_hook(const std::vector<Tensor>& inputs, const OutputHook& hook, bool training = false);

  void compile(std::shared_ptr<Optimizer> optimizer, Loss loss, std::vector<MetricSpec> metrics = {});
  // One loss per output, in output order, weighted by options.loss_weights.
  void compile(std::shared_ptr<Optimizer> optimizer, std::vector<Loss> losses, CompileOptions options = {});
  template <class O>
    requires std::derived_from<O, Optimizer>
  void compile(O optimizer, Loss loss, std::vector<MetricSpec> metrics = {}) {
    compile(std::make_shared<O>(std::move(optimizer)), std::move(loss), std::move(metrics));
  }
  template <class O>
    requires std::derived_from<O, Optimizer>
  void compile(O optimizer, std::vector<Loss> losses, CompileOptions options = {}) {
    compile(std::make_shared<O>(std::move(optimizer)), std::move(losses), std::move(options));
  }
  void compile(const std::string& optimizer, Loss loss, std::vector<MetricSpec> metrics = {});
  // One loss for every output, with options (weighted_metrics, custom metrics).
  void compile(std::shared_ptr<Optimizer> optimizer, Loss loss, CompileOptions options);
  template <class O>
    requires std::derived_from<O, Optimizer>
  void compile(O optimizer, Loss loss, CompileOptions options) {
    compile(std::make_shared<O>(std::move(optimizer)), std::move(loss), std::move(options));
  }
  bool compiled() const { return optimizer_ != nullptr; }
  Optimizer& optimizer() const;
  const Loss& loss() const;  // the first output's
  const std::vector<Loss>& losses() const;
  const std::vector<double>& loss_weights() const { return loss_weights_; }
  // The metrics compiled by name (what a saved compile config records; custom ones are not).
  std::vector<std::string> metric_names() const;

  // A dataset's inputs and targets are its parts (data::Dataset::from_tensors with several
  // tensors, or with_parts): one per model input and one per output.
  History fit(const data::Dataset& train, const FitOptions& options = {});
  History fit(const Tensor& x, const Tensor& y, const FitOptions& options = {});
  History fit(const std::vector<Tensor>& x, const std::vector<Tensor>& y, const FitOptions& options = {});
  // From a stream of batches (a data::Pipeline, or your own BatchSource): the source batches, so
  // options.batch_size, shuffle and validation_split do not apply; validation_data does.
  History fit(data::BatchSource& train, const FitOptions& options = {});
  // Loss and metrics over a dataset, in the same names fit logs. With several outputs: "loss"
  // (the weighted total), "<output>_loss" and "<output>_<metric>" per output, as Keras names them.
  Logs evaluate(const data::Dataset& data, const EvaluateOptions& options = {});
  Logs evaluate(const Tensor& x, const Tensor& y, const EvaluateOptions& options = {});
  Logs evaluate(const std::vector<Tensor>& x, const std::vector<Tensor>& y, const EvaluateOptions& options = {});
  Logs evaluate(data::BatchSource& data, const EvaluateOptions& options = {});
  // Outputs (N, output_shape...) in inference mode, batch by batch, without a graph: the first
  // output, or every output with predict_all.
  Tensor predict(const data::Dataset& data, int64_t batch_size = 32);
  Tensor predict(const Tensor& x, int64_t batch_size = 32);
  std::vector<Tensor> predict_all(const data::Dataset& data, int64_t batch_size = 32);
  std::vector<Tensor> predict_all(const std::vector<Tensor>& x, int64_t batch_size = 32);
  std::vector<Tensor> predict_all(data::BatchSource& data);  // every batch of epoch 0, concatenated
  // Raw texts through the model's text_vectorization(), then predict (ValueError without one).
  Tensor predict(const std::vector<std::string>& texts, int64_t batch_size = 32);

  // The text preprocessing the model's input expects (Keras keeps a TextVectorization layer in
  // the model; Lamina keeps it beside the graph, since its input is strings): saved with the
  // model (__metadata__ "text_vectorization", its Keras config with the vocabulary), restored by
  // load, kept by clone, used by predict(texts) and by the CLI's predict on raw text.
  void set_text_vectorization(TextVectorization tv);
  const TextVectorization* text_vectorization() const { return text_vectorization_.get(); }

  // --- custom training, as Keras 3's Model.train_step / test_step --------------------------------
  // fit calls train_step once per batch and evaluate (and fit's validation) test_step, then the
  // callbacks with the logs they return. Override them in a subclass for GANs, VAEs and other
  // steps of your own; progress bar, callbacks, History and checkpoints keep working. A subclass
  // made with Model(name) (no graph of its own, e.g. holding a generator and a discriminator)
  // fits too: fit then checks nothing about its inputs. The defaults:
  //   train_step: zero_grad, forward (training), compute_loss, backward, optimizer step, apply
  //               constraints, update_metrics; returns metrics_result().
  //   test_step:  forward (inference), compute_loss, update_metrics; returns metrics_result().
  virtual Logs train_step(const data::Batch& batch);
  virtual Logs test_step(const data::Batch& batch);
  // The compiled losses on y_pred, each output's weighted by batch.sample_weight and by its
  // loss weight, summed, plus the layers' regularization losses: what train_step minimizes.
  Tensor compute_loss(const data::Batch& batch, const std::vector<Tensor>& y_pred);
  // Adds a batch to the loss trackers ("loss", and "<output>_loss" with several outputs) and to
  // the compiled metrics; metrics_result() gives their running values since the last reset.
  void update_metrics(const data::Batch& batch, const std::vector<Tensor>& y_pred, const Tensor& loss);
  Logs metrics_result() const;
  // Every metric fit resets at each epoch's start and evaluate at its start: the loss trackers,
  // the compiled metrics, and, in a subclass that overrides this, its own (Keras' `metrics`).
  virtual std::vector<Metric*> metrics();
  void reset_metrics();
  // Resets the gradients of every trainable weight, as torch's zero_grad (set_to_none: drop
  // the buffers; otherwise keep them, logically zero, for the next backward to overwrite).
  void zero_grad(bool set_to_none = true);

  // Keras' summary table: layer (type), output shape, parameter count, and for a Functional
  // model the layers each is connected to; then the totals. Builds the model first when its
  // input shape is declared.
  void summary(std::ostream& os);
  void summary();
  // Every trainable weight, layer by layer (the optimizer's parameters): a frozen layer's
  // (set_trainable(false)) and BatchNormalization's moving statistics are left out.
  std::vector<Tensor> trainable_weights() const;
  // The sum of every layer's weight penalties (kernel_regularizer, ...; trainable weights only,
  // as Keras 3) and of the activity penalties recorded by the last forward pass (training or
  // not) and of the losses layers added in it (Layer::add_loss): what fit and evaluate add to the
  // loss, as Keras' model.losses. Differentiable; undefined when there is none.
  Tensor regularization_loss() const override;
  // Projects every trainable weight that has a constraint (kernel_constraint, ...) by Keras'
  // formula; fit calls it after each optimizer step.
  void apply_constraints() override;
  // Sets every layer's flag too, as Keras' model.trainable = False.
  void set_trainable(bool on) override;
  std::vector<bool> trainable_mask() const override;
  // Every weight as "layer/weight" (e.g. "dense/kernel"; "encoder/dense/kernel" inside a nested
  // model), the names used in saved files.
  std::vector<std::pair<std::string, Tensor>> named_weights() const;
  // Every weight's values as copies, in Keras' order (layer by layer, as named_weights), and
  // back: set_weights checks the count and every shape before it copies anything.
  std::vector<Tensor> get_weights() const;
  void set_weights(const std::vector<Tensor>& values);
  // An independent copy: the same architecture (from to_json) with its own copy of every weight,
  // compiled like this one with a fresh optimizer of the same config (no optimizer state), and
  // no fit state. Copying a Model (`Model b = a;`) instead shares the layers and so the weights,
  // as a handle does (Python names, libtorch's module holders); use clone() for a second model.
  Model clone() const;

  // Keras' model JSON: {"class_name": "Functional" | "Sequential", "config": {...}}.
  Json to_json() const;
  Json config() const override;
  // From Keras 2 or Keras 3 JSON (model.to_json()), Sequential or Functional. Unknown layers are
  // a ValueError naming where they are.
  static Model from_json(const Json& j);
  // A nested model's layer config (the registry's factory for "Functional" and "Model").
  static std::shared_ptr<Layer> from_config(const Json& config);
  // Weights + config (+ compile config) in one safetensors file, written atomically.
  // extra_metadata: more string entries for __metadata__ (e.g. the CLI's preprocessing).
  void save(const std::string& path, const std::map<std::string, std::string>& extra_metadata = {}) const;
  // A saved model, built, its weights checked against the config, compiled if it was. Reads
  // checkpoints too (their optimizer state is ignored).
  static Model load(const std::string& path);
  // The same from the file's bytes in memory; `name` stands for the path in errors.
  static Model load_bytes(std::string_view bytes, const std::string& name = "<memory>");

  // A checkpoint: what save writes, plus the optimizer state ("optimizer/<slot>/<weight>"
  // tensors), the generators training draws from (default_generator's, Dropout's) and
  // fit_state(), so that load_checkpoint + fit({.initial_epoch = fit_state().epoch}) continues
  // bit for bit as if training had not stopped. Written atomically; needs a compiled model.
  //   model.save_checkpoint("ckpt.safetensors");
  //   Model m = Model::load_checkpoint("ckpt.safetensors");   // another process
  //   m.fit(train, {.epochs = 10, .initial_epoch = m.fit_state().epoch});
  void save_checkpoint(const std::string& path, const std::map<std::string, std::string>& extra_metadata = {}) const;
  // Checks everything (format and checkpoint versions, checksum, every tensor's name and shape)
  // before it commits anything: on an IoError no state, default_generator's included, changes.
  static Model load_checkpoint(const std::string& path);
  // The same from the file's bytes (data-parallel ranks get rank 0's); `name` stands for the path.
  static Model load_checkpoint_bytes(std::string_view bytes, const std::string& name = "<memory>");
  const FitState& fit_state() const { return fit_state_; }
  // The memory one step of fit (training) or of evaluate / predict (inference) with this batch
  // size would need, from shapes alone; see MemoryEstimate. Needs known input shapes. build,
  // fit, evaluate and predict check it against set_memory_limit (runtime.hpp) first.
  MemoryEstimate estimate_memory(int64_t batch_size, bool training = true) const;

  // Checks that the targets of `data` suit the compiled losses and the model's outputs before
  // any step runs: their shape, finite values, and for sparse_categorical_crossentropy integer
  // class indices in [0, classes). Errors start with `source` and name the sample through
  // `position` (default "sample 12"; the CLI passes "line 14, column 5 (sample 12)").
  void check_targets(const data::Dataset& data, const std::string& source,
                     const std::function<std::string(int64_t)>& position = {}) const;

  // Runs a batch through the layers one at a time in training mode, then the loss and backward
  // layer by layer, and names the first layer whose weights, output or gradients hold NaN or
  // infinity: "layer 'boom' (Dense) output: 24 of 32 values are not finite (first: inf at
  // (0, 3))". Empty when everything is finite. fit runs it once, on the first batch whose loss
  // is not finite (before that batch's update); see divergence().
  std::string diagnose_non_finite(const std::vector<Tensor>& x, const std::vector<Tensor>& y);
  std::string diagnose_non_finite(const Tensor& x, const Tensor& y) {
    return diagnose_non_finite(std::vector<Tensor>{x}, std::vector<Tensor>{y});
  }
  // What diagnose_non_finite found for the last fit's first non-finite loss; empty if none.
  const std::string& divergence() const { return divergence_; }

  bool stop_training = false;  // set by callbacks to end fit after the current epoch

  // --- data parallel (distributed.hpp), as DistributedDataParallel ---------------------------
  // From now on fit trains with every rank of `comm`: at its start rank 0's weights (and the
  // shuffle seed) go to every rank; each step each rank reads its share of the global batch, and
  // the gradients are averaged over ranks in buckets while backward runs, so that every rank takes
  // the same step and ends with the same weights. evaluate (and fit's validation) splits the data
  // over the ranks and logs the metrics of the whole; callbacks see the same logs on every rank.
  // Checkpoints record the ranks. BatchNormalization keeps per-rank statistics unless it is
  // synchronized. fit on a BatchSource (a data::Pipeline) reads each rank's own source whole,
  // each rank's batch weighing 1/N (DDP's equal shares): give each rank its shard of the data.
  // A null communicator (or one of size 1) trains alone again.
  void distribute(std::shared_ptr<distributed::Communicator> comm, distributed::DistributedOptions options = {});
  distributed::Communicator* communicator() const { return comm_.get(); }
  bool is_distributed() const { return comm_ && comm_->size() > 1; }
  // What the gradient reduction did in the last fit (zeros when not distributed).
  distributed::ReducerStats distributed_stats() const;
  // Sends rank 0's weights (every weight, BatchNormalization's statistics included) to every
  // rank; fit does it at its start.
  void broadcast_weights();
  // Makes every metric's state that of all ranks' samples (Metric::merge_states).
  void merge_metrics();

  // --- as a layer inside another model ---
  void build_for(std::span<const Shape> input_shapes, Generator& gen) override;
  std::vector<WeightSpec> weight_specs_for(std::span<const Shape> input_shapes) const override;
  Shape infer_shape(std::span<const Shape> input_shapes) const override;
  Tensor forward(std::span<const Tensor> inputs, bool training) override;
  // As a layer, a Functional model has as many outputs as it was made with, and takes masks in.
  size_t output_count() const override { return num_outputs(); }
  std::vector<Shape> infer_shapes(std::span<const Shape> input_shapes) const override;
  Outputs call_all(std::span<const Tensor> inputs, std::span<const Tensor> masks, bool training) override;
  Shape output_shape(const Shape& input_shape) const override;
  void build(const Shape& input_shape, Generator& gen) override;
  void export_onnx(onnx::GraphWriter& graph) const override;
  Generator* generator() override { return nullptr; }

  // One call of a layer in the graph, by index into the model's tensors (inputs first).
  struct Node {
    std::shared_ptr<Layer> layer;
    std::vector<int> inputs;  // tensor ids
    int output = -1;          // tensor id of the first output; a layer with several has the ids after it
    int output_count = 1;
  };
  // The calls in an order that runs each after its inputs (InputLayers are not calls).
  const std::vector<Node>& nodes() const { return nodes_; }
  const std::vector<int>& input_ids() const { return input_ids_; }
  // Every tensor's per-sample shape, by tensor id (once built).
  const std::vector<Shape>& tensor_shapes() const { return shapes_; }
  const std::vector<int>& output_ids() const { return output_ids_; }
  // A leaf layer (not a model) with its path from this model ("encoder/dropout"), depth first.
  std::vector<std::pair<std::string, Layer*>> leaf_layers() const;

 protected:
  explicit Model(std::string name);  // an empty graph, for Sequential
  // Names a layer that has none after its class ("dense", "dense_1", ...), unique in this model.
  void name_layer(Layer& layer);
  // Builds every node for the input shapes, in order, then packs the parameters (top level).
  void build_graph(const std::vector<Shape>& input_shapes, Generator& gen, bool top_level);
  // A Sequential's chain: its layers as nodes over tensors 0..n (chain_nodes), made the model's
  // graph by make_chain; chain_output_shape runs a shape through the layers.
  std::vector<Node> chain_nodes() const;
  void make_chain();
  Shape chain_output_shape(Shape shape) const;

  bool sequential_ = false;  // a chain of layers_, made into nodes_ at build (Sequential)
  std::vector<std::shared_ptr<Layer>> layers_;
  std::vector<Node> nodes_;
  std::vector<int> input_ids_, output_ids_;
  std::vector<std::shared_ptr<Layer>> input_layers_;  // one per input (Functional); empty for Sequential
  std::vector<Shape> shapes_;                         // per tensor id, once known
  std::set<std::string> layer_names_;
  std::map<std::string, int> next_suffix_;

 private:
  std::map<std::string, std::string> file_metadata(const std::map<std::string, std::string>& extra) const;
  static Model from_file(const io::SafetensorsFile& file, const std::string& path);
  static Model from_json_unchecked(const Json& j);
  static Model checkpoint_from(const std::function<io::SafetensorsFile()>& read, const std::string& path);
  void ensure_built(const std::vector<Shape>& sample_shapes, const char* where);
  void pack_parameters();
  // Makes the weights' requires_grad, the packed buffer and the optimizer's state follow the
  // trainable flags (ensure_built calls it, so a flag set since the last fit applies at the next).
  void sync_trainable();
  // The forward pass: every output with its mask (masks: one per input, or empty for none).
  Outputs run(std::span<const Tensor> inputs, std::span<const Tensor> masks, bool training,
              const OutputHook* hook = nullptr);
  // The metrics per output, in Keras' log names ("accuracy" or "dense_1_accuracy").
  struct NamedMetric {
    size_t output;
    std::string name;
    std::shared_ptr<Metric> metric;
    bool weighted;
  };
  void prepare_metrics();  // makes compiled_metrics_ and the trackers for the current compile
  bool has_graph() const { return sequential_ ? !layers_.empty() : !nodes_.empty() || !input_ids_.empty(); }
  History fit_loop(data::BatchSource& train, const data::Dataset& val, int64_t val_batch, const FitOptions& o,
                   int64_t samples, bool resume);
  Logs run_evaluation(data::BatchSource& data);
  bool metrics_ready() const;  // prepare_metrics has run for the current compile
  void backward_step(const Tensor& loss, const data::Batch& batch, const std::vector<Tensor>& params);
  Logs chain_step(const data::Batch& batch);  // train_step through dense_chain_
  Logs split_step(const data::Batch& batch);  // train_step through batch_split_
  void sync_stop();  // stop_training on every rank when a callback set it on one
  std::vector<Tensor> predict_from(data::BatchSource& source, const std::vector<Shape>& outs, int64_t rows);
  std::string output_log_name(size_t output, const std::string& what) const;
  Logs run_evaluation(const data::Dataset& data, int64_t batch_size);
  MemoryEstimate estimate_for(const std::vector<Shape>& input_shapes, int64_t batch_size, bool training) const;
  // ValueError when e.total() exceeds memory_limit(); `what` starts the message ("fit").
  void check_memory(const MemoryEstimate& e, const std::string& what) const;
  void check_dataset(const data::Dataset& data, const char* where) const;
  void check_output_targets(size_t output, const Tensor& y, const Shape& target, const std::string& source,
                            const std::function<std::string(int64_t)>& position) const;

  std::shared_ptr<Optimizer> optimizer_;
  std::vector<Loss> losses_;
  std::vector<double> loss_weights_;
  std::vector<MetricSpec> metric_specs_, weighted_metric_specs_;
  std::vector<NamedMetric> compiled_metrics_;
  Mean loss_tracker_{"loss"};
  std::vector<Mean> loss_part_trackers_;                   // per output, with several outputs
  std::vector<float> last_loss_parts_;                     // compute_loss's per-output losses
  std::vector<Tensor> train_params_;                       // trainable_weights() for the fit running
  std::vector<Callback*> active_callbacks_;                // the running fit's (checkpoints save their state)
  Json callback_states_;                                   // from a checkpoint, for the next fit's callbacks
  FitState fit_state_;
  std::string divergence_;
  std::vector<Tensor> packed_;                // the weights pack_parameters packed, in order
  std::vector<Tensor> activity_losses_;  // activity penalties and add_loss losses, recorded by the last run()
  std::shared_ptr<const TextVectorization> text_vectorization_;
  std::shared_ptr<distributed::Communicator> comm_;
  distributed::DistributedOptions dist_options_;
  std::shared_ptr<distributed::GradientReducer> reducer_;  // made by the first distributed step
  std::shared_ptr<detail::DenseChainStep> dense_chain_;    // the running fit's step, for a Dense chain
  std::shared_ptr<detail::BatchSplitStep> batch_split_;    // or for a small CNN, split by the batch
};

// A stack of layers, each feeding the next: the special case of Model that Keras' Sequential is.
//
//   Sequential model({layers::Flatten({.input_shape = Shape{28, 28}}),
//                     layers::Dense(128, "relu"), layers::Dense(10)});
class Sequential : public Model {
 public:
  explicit Sequential(std::string name = "sequential") : Model(std::move(name)) { sequential_ = true; }
  Sequential(std::initializer_list<AnyLayer> layers, std::string name = "sequential");
  // A Model read back from Sequential JSON or a file (ValueError when it is not Sequential).
  explicit Sequential(Model model);

  // Appends a layer; a name is given if it has none ("dense", "dense_1", ...). layers() lists
  // them as added (an InputLayer given first stays in the list).
  Sequential& add(AnyLayer layer);

  static Sequential from_json(const Json& j) { return Sequential(Model::from_json(j)); }
  Sequential clone() const { return Sequential(Model::clone()); }
  static std::shared_ptr<Layer> from_config(const Json& config);
  // Model's loaders, for a file that holds a Sequential (IoError naming the path otherwise).
  static Sequential load(const std::string& path);
  static Sequential load_bytes(std::string_view bytes, const std::string& name = "<memory>");
  static Sequential load_checkpoint(const std::string& path);
};

}  // namespace lamina
