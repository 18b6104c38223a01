// Layers in Keras' names, options and defaults (keras.layers): each is a small composition of
// ops over a batch. Shapes at the API are per sample (no batch axis), as Keras' input_shape.
//
//   using namespace lamina;
//   layers::Dense({.units = 64, .activation = Activation::relu});
//   layers::Dense(10, "softmax");
//   layers::Flatten({.input_shape = Shape{28, 28}});
//   layers::Conv2D({.filters = 6, .kernel_size = 5, .padding = Padding::same, .activation = "relu"});
//   layers::MaxPooling2D();  layers::Dropout(0.5);  layers::BatchNormalization();
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <typeinfo>
#include <utility>
#include <vector>

#include "lamina/initializers.hpp"
#include "lamina/json.hpp"
#include "lamina/ops.hpp"
#include "lamina/random.hpp"
#include "lamina/regularizers.hpp"
#include "lamina/tensor.hpp"

namespace lamina {

namespace onnx {
class GraphWriter;  // src/onnx/graph_writer.hpp: what a layer's export_onnx writes into
}

class Layer;

// A symbolic tensor (Keras' KerasTensor): a value in a graph being recorded, with its per-sample
// shape. Input() makes one; calling a layer on symbolic tensors records a call and returns its
// output; Model(inputs, outputs) turns the recorded calls into a model (model.hpp).
//
//   KerasTensor x = Input({28, 28, 1});
//   KerasTensor h = layers::Conv2D({.filters = 8, .kernel_size = 3})(x);
class KerasTensor {
 public:
  // One recorded call: the layer, the symbolic tensors it was called on, and its outputs' shapes
  // (one, or several for a layer such as LSTM with return_state).
  struct Call {
    std::shared_ptr<Layer> layer;
    std::vector<KerasTensor> inputs;  // empty for an Input
    std::vector<Shape> shapes;
  };
  KerasTensor() = default;
  explicit KerasTensor(std::shared_ptr<const Call> call, size_t index = 0) : call_(std::move(call)), index_(index) {}
  bool defined() const { return call_ != nullptr; }
  const Shape& shape() const;  // per sample
  const Layer& layer() const;  // the layer whose call made it (an InputLayer for an Input)
  const std::shared_ptr<const Call>& call() const { return call_; }
  // Which of its call's outputs it is, and its siblings: a layer with several outputs returns the
  // first; the others are output(1), ... (Keras' `y, h, c = LSTM(64, return_state=True)(x)`):
  //   KerasTensor y = layers::LSTM({.units = 64, .return_state = true})(x);
  //   KerasTensor h = y.output(1), c = y.output(2);
  size_t index() const { return index_; }
  size_t output_count() const;
  KerasTensor output(size_t i) const;  // ValueError past the call's outputs
  std::vector<KerasTensor> outputs() const;

 private:
  std::shared_ptr<const Call> call_;
  size_t index_ = 0;
};

// An activation function by Keras name: relu, sigmoid, tanh, softmax, ... Converts from the
// enum or from a name, so `.activation = Activation::relu` and `.activation = "relu"` both work.
class Activation {
 public:
  // hard_sigmoid is Keras 3's relu6(x + 3) / 6 (Keras 2's LSTM / GRU default gate; Keras 2 itself
  // computed clip(0.2 x + 0.5, 0, 1), which differs by up to 0.05 at |x| = 2.5).
  enum Kind { linear, relu, leaky_relu, elu, sigmoid, tanh, softmax, log_softmax, exponential, hard_sigmoid };
  Activation(Kind kind = linear) : kind_(kind) {}  // NOLINT: implicit by design
  Activation(const char* name);                    // NOLINT; ValueError on an unknown name
  Activation(const std::string& name) : Activation(name.c_str()) {}  // NOLINT
  Kind kind() const { return kind_; }
  std::string name() const;
  // The form a layer can fuse into its GEMM or convolution (relu, sigmoid, tanh); none otherwise.
  FusedActivation fused() const;
  Tensor operator()(const Tensor& x) const;
  bool operator==(const Activation& o) const = default;

 private:
  Kind kind_;
};

// The base of every layer. A Sequential model names its layers, builds them once the input
// shape is known, and calls them on batches.
//
// A layer is one unit: everything Lamina knows about a layer class lives in the class, in its
// own file, and is found through the registry below by Keras class name: its config both ways
// (config() and a static from_config(const Json&)), its weight specs (which also drive the
// memory estimate), its output shape, and its ONNX export. Nothing elsewhere switches on it.
class Layer : public std::enable_shared_from_this<Layer> {
 public:
  struct Weight {
    std::string name;  // "kernel", "bias"
    Tensor value;      // a leaf that requires grad when trainable
    bool trainable = true;
  };
  // A weight before it exists: what build() will create for an input shape.
  struct WeightSpec {
    std::string name{};
    Shape shape{};
    Initializer initializer = Initializer::zeros();
    bool trainable = true;
  };

  virtual ~Layer() = default;
  virtual std::string class_name() const = 0;  // Keras' class name: "Dense"
  // Creates the weights for a per-sample input shape. Throws ShapeError naming the layer.
  // The default creates weight_specs(input_shape), drawing initial values from gen.
  virtual void build(const Shape& input_shape, Generator& gen);
  // The weights build() would create, with the same shape checks, but nothing allocated: what
  // Sequential::estimate_memory counts. Layers with weights override it.
  virtual std::vector<WeightSpec> weight_specs(const Shape& /*input_shape*/) const { return {}; }
  // x: (batch, input_shape...). training switches Dropout/BatchNorm behaviour.
  virtual Tensor call(const Tensor& x, bool training) = 0;
  virtual Shape output_shape(const Shape& input_shape) const = 0;
  // Keras' layer config: {"name": ..., "trainable": true, "dtype": "float32", ...}.
  virtual Json config() const;

  const std::string& name() const { return name_; }
  void set_name(std::string name) { name_ = std::move(name); }
  const std::optional<Shape>& declared_input_shape() const { return input_shape_; }
  bool built() const { return built_; }
  std::vector<Weight>& weights() { return weights_; }
  const std::vector<Weight>& weights() const { return weights_; }
  int64_t count_params() const;
  // The weight of that name ("kernel", "gamma"), or nullptr when the layer has none.
  const Tensor* find_weight(const std::string& name) const;
  // The generator the layer draws from while training (Dropout's masks), so that a checkpoint
  // can save and restore it; null for layers that draw nothing.
  virtual Generator* generator() { return nullptr; }
  // Whether the output is a view of the input (Flatten, Reshape): the memory estimate then
  // counts no storage for it.
  virtual bool output_is_view() const { return false; }
  // Appends this layer's ONNX nodes to `graph`, reading its current value and leaving its
  // output there (src/onnx/graph_writer.hpp). The default refuses: "no ONNX export".
  virtual void export_onnx(onnx::GraphWriter& graph) const;

  // --- training: freezing, regularizers, constraints (Keras' trainable, *_regularizer, *_constraint) ---
  // A frozen layer (set_trainable(false), or "trainable": false in its Keras config) keeps its
  // weights: Model::trainable_weights leaves them out, so they get no gradient and no update, and
  // summary counts them as non-trainable. A frozen BatchNormalization runs in inference mode (its
  // moving statistics, not updated), as Keras 2.1+ and 3 do. On a model it sets every layer in it,
  // as Keras does. Takes effect for trainable_weights and summary at once, for training at the
  // next fit / evaluate / predict (the optimizer keeps its state for weights still trained).
  //   model.layer("dense").set_trainable(false);
  bool trainable() const { return trainable_; }
  virtual void set_trainable(bool on) { trainable_ = on; }
  // Per weight, in weights() order: whether training updates it (the weight's own flag, false for
  // BatchNormalization's moving statistics, and the layer's).
  virtual std::vector<bool> trainable_mask() const;
  // The sum of this layer's weight penalties (kernel_regularizer, ...), undefined when there are
  // none. As Keras 3, only trainable weights count.
  virtual Tensor regularization_loss() const;
  // Projects every trainable weight that has a constraint (kernel_constraint, ...); Model calls it
  // after each optimizer step.
  virtual void apply_constraints();
  // Keras' activity_regularizer, which any layer takes: a penalty on the layer's output, divided
  // by the batch size, recorded by each forward pass of a model (Model::regularization_loss).
  const std::optional<Regularizer>& activity_regularizer() const { return activity_regularizer_; }
  void set_activity_regularizer(std::optional<Regularizer> r) { activity_regularizer_ = std::move(r); }
  // Keras' add_loss: a scalar a layer adds to the model's loss while it is called (a VAE's KL
  // divergence). Differentiable; the model running the layer collects it after the call (fit,
  // evaluate and compute_loss add it, as Keras adds model.losses), training or not.
  void add_loss(Tensor loss);
  // The losses added since the last take, handed over and cleared (what Model's forward pass does).
  std::vector<Tensor> take_losses() { return std::exchange(added_losses_, {}); }
  // The regularizer / constraint of a weight by name ("kernel", "gamma"); null when it has none.
  const Regularizer* weight_regularizer(const std::string& weight) const;
  const Constraint* weight_constraint(const std::string& weight) const;
  // Keras config keys that this class reads but config() does not write back (Keras 2's names,
  // options that must stay at their default): layer_from_config accepts them. Every other key
  // not written by config() is an error naming the layer and the key (see layer_from_config).
  virtual std::vector<std::string> config_aliases() const { return {}; }

  // --- graphs (the Functional API) ---
  // Records a call of this layer on symbolic tensors and returns its output, checking the
  // shapes now: `Dense(10)(x)`, `Add()({a, b})`. A layer held in a shared_ptr (or already in a
  // graph) is the same layer at each call, so its weights are shared; a layer held by value is
  // copied into the graph (its class must be registered, as every built-in one is).
  KerasTensor operator()(const KerasTensor& input);
  KerasTensor operator()(const std::vector<KerasTensor>& inputs);
  // How a graph calls a layer on its inputs. Every layer takes one input by default, through the
  // single-input build / weight_specs / output_shape / call above; layers that take several
  // (the merge layers, a nested model) override these. ShapeError names the layer and shapes.
  virtual void build_for(std::span<const Shape> input_shapes, Generator& gen);
  virtual std::vector<WeightSpec> weight_specs_for(std::span<const Shape> input_shapes) const;
  virtual Shape infer_shape(std::span<const Shape> input_shapes) const;
  virtual Tensor forward(std::span<const Tensor> inputs, bool training);

  // --- several outputs and masks (Keras' return_state and mask propagation) ---
  // A layer may return several tensors (LSTM with return_state: the output, h and c); a graph
  // gives each its own symbolic tensor (KerasTensor::output). Such a layer overrides these two and
  // call_all; output_count() may depend on the layer's options, not on its inputs.
  virtual size_t output_count() const { return 1; }
  virtual std::vector<Shape> infer_shapes(std::span<const Shape> input_shapes) const;
  // A mask is a (batch, steps) tensor of 0 and 1 that says which time steps of a sequence are
  // real (1) and which are padding (0): Embedding(mask_zero) and Masking make one, layers
  // downstream carry it, and the layers that understand it (the recurrent layers, the 1-D global
  // average pooling) skip the padded steps. An undefined Tensor is no mask. As in Keras 3, a layer
  // that supports masking passes its first input's mask through unchanged; one that does not
  // drops it (Conv1D, Flatten, ...). Layers that make, combine or consume masks override
  // compute_mask and call_all.
  virtual bool supports_masking() const { return false; }
  // The mask of the (first) output, from the inputs and their masks (one per input, undefined
  // where none). The default: the first input's mask when supports_masking(), else none.
  virtual Tensor compute_mask(std::span<const Tensor> inputs, std::span<const Tensor> masks) const;
  struct Outputs {
    std::vector<Tensor> values;  // output_count() of them
    std::vector<Tensor> masks;   // one per value, undefined where none
  };
  // The general call a graph makes: every input with its mask in, every output with its mask out.
  // The default calls forward and compute_mask (and leaves the other outputs maskless).
  virtual Outputs call_all(std::span<const Tensor> inputs, std::span<const Tensor> masks, bool training);

 protected:
  Tensor& add_weight(const std::string& name, const Shape& shape, const Initializer& init, Generator& gen,
                     bool trainable = true);
  // Takes what every layer's Options hold: the name and the declared input shape. (They stay
  // plain members of each Options, not a shared base: C++20 designated initializers cannot name
  // a base's members, and `Dense({.units = 64, .name = "hidden"})` must keep working.)
  template <class Options>
  void take_common(const Options& o) {
    name_ = o.name;
    input_shape_ = o.input_shape;
  }
  // ShapeError "Dense 'dense_1' expects input (*, 784), got (32, 28, 28).\n  hint: ..."
  [[noreturn]] void shape_error(const std::string& expected, const Shape& got, const std::string& hint = "") const;
  // ValueError unless there is exactly one input: "Dense 'dense' takes one input, got 2".
  void require_one_input(size_t count) const;
  // For layers that normalize only the last axis: ValueError unless `axis` (Keras' count, with the
  // batch axis; negative from the end) is the last axis of a per-sample `input_shape`. `which`
  // and `hint` are set into the message ("(channels)", ". Use axis=-1 ...").
  void require_last_axis(int64_t axis, const Shape& input_shape, const std::string& which = "",
                         const std::string& hint = "") const;

  // Sets the regularizer and constraint of a weight (by name) from a layer's options.
  void set_weight_penalty(const std::string& weight, const std::optional<Regularizer>& regularizer,
                          const std::optional<Constraint>& constraint);

  std::string name_;
  std::optional<Shape> input_shape_;
  bool built_ = false;
  bool trainable_ = true;
  std::vector<Weight> weights_;
  std::map<std::string, Regularizer> regularizers_;  // by weight name
  std::map<std::string, Constraint> constraints_;    // by weight name
  std::optional<Regularizer> activity_regularizer_;
  std::vector<Tensor> added_losses_;  // add_loss's, until the model takes them
};

namespace layers {

// y = activation(x @ kernel + bias); kernel (in, units), bias (units). Inputs of rank > 2 are
// mapped over their last axis, as Keras does.
class Dense : public Layer {
 public:
  struct Options {
    int64_t units = 0;
    lamina::Activation activation = lamina::Activation::linear;
    bool use_bias = true;
    Initializer kernel_initializer = Initializer::glorot_uniform();
    Initializer bias_initializer = Initializer::zeros();
    std::optional<Regularizer> kernel_regularizer{};
    std::optional<Regularizer> bias_regularizer{};
    std::optional<Regularizer> activity_regularizer{};
    std::optional<Constraint> kernel_constraint{};
    std::optional<Constraint> bias_constraint{};
    std::optional<Shape> input_shape{};  // on a first layer: the per-sample shape
    std::string name{};
  };
  explicit Dense(Options options);
  Dense(int64_t units, lamina::Activation activation = lamina::Activation::linear);

  std::string class_name() const override { return "Dense"; }
  bool supports_masking() const override { return true; }
  static std::shared_ptr<Layer> from_config(const Json& config);
  void export_onnx(onnx::GraphWriter& graph) const override;
  std::vector<WeightSpec> weight_specs(const Shape& input_shape) const override;
  Tensor call(const Tensor& x, bool training) override;
  Shape output_shape(const Shape& input_shape) const override;
  Json config() const override;
  const Options& options() const { return options_; }
  Tensor& kernel() { return weights_.at(0).value; }
  Tensor& bias() { return weights_.at(1).value; }

 private:
  Options options_;
};

// (batch, d1, d2, ...) -> (batch, d1 * d2 * ...).
class Flatten : public Layer {
 public:
  struct Options {
    std::optional<Shape> input_shape{};
    std::string name{};
  };
  Flatten() : Flatten(Options{}) {}
  explicit Flatten(Options options);
  std::string class_name() const override { return "Flatten"; }
  bool output_is_view() const override { return true; }
  static std::shared_ptr<Layer> from_config(const Json& config);
  void export_onnx(onnx::GraphWriter& graph) const override;
  Tensor call(const Tensor& x, bool training) override;
  Shape output_shape(const Shape& input_shape) const override;
  Json config() const override;
};

// Applies an activation function: layers::Activation("relu").
class Activation : public Layer {
 public:
  struct Options {
    lamina::Activation activation = lamina::Activation::linear;
    std::optional<Shape> input_shape{};
    std::string name{};
  };
  explicit Activation(Options options);
  explicit Activation(lamina::Activation activation) : Activation(Options{.activation = activation}) {}
  std::string class_name() const override { return "Activation"; }
  bool supports_masking() const override { return true; }
  static std::shared_ptr<Layer> from_config(const Json& config);
  void export_onnx(onnx::GraphWriter& graph) const override;
  Tensor call(const Tensor& x, bool training) override;
  Shape output_shape(const Shape& input_shape) const override { return input_shape; }
  Json config() const override;

 private:
  lamina::Activation activation_;
};

// x if x > 0 else negative_slope * x, with a slope of choice: Keras' LeakyReLU layer (Keras 2
// named the option alpha; Keras 3's default slope is 0.3, PyTorch's nn.LeakyReLU's 0.01).
class LeakyReLU : public Layer {
 public:
  struct Options {
    float negative_slope = 0.3f;
    std::optional<Shape> input_shape{};
    std::string name{};
  };
  explicit LeakyReLU(Options options);
  std::string class_name() const override { return "LeakyReLU"; }
  bool supports_masking() const override { return true; }
  std::vector<std::string> config_aliases() const override { return {"alpha"}; }  // Keras 2's negative_slope
  static std::shared_ptr<Layer> from_config(const Json& config);
  void export_onnx(onnx::GraphWriter& graph) const override;
  Tensor call(const Tensor& x, bool training) override;
  Shape output_shape(const Shape& input_shape) const override { return input_shape; }
  Json config() const override;
  float negative_slope() const { return slope_; }

 private:
  float slope_;
};

// Declares the per-sample input shape, as keras.Input(shape=...). Passes its input through.
class InputLayer : public Layer {
 public:
  explicit InputLayer(Shape shape, std::string name = "");
  std::string class_name() const override { return "InputLayer"; }
  std::vector<std::string> config_aliases() const override { return {"optional"}; }  // Keras 3.6+, false only
  bool output_is_view() const override { return true; }
  static std::shared_ptr<Layer> from_config(const Json& config);
  void export_onnx(onnx::GraphWriter& graph) const override;
  Tensor call(const Tensor& x, bool training) override;
  Shape output_shape(const Shape& input_shape) const override { return input_shape; }
  Json config() const override;
};
// A graph's input (keras.Input): a symbolic tensor made by a new InputLayer. In a Sequential's
// list it declares the input shape, as in Keras.
KerasTensor Input(Shape shape, std::string name = "");

// (batch, ...) -> (batch, target_shape...), per sample as Keras; one entry may be -1.
class Reshape : public Layer {
 public:
  struct Options {
    Shape target_shape{};
    std::optional<Shape> input_shape{};
    std::string name{};
  };
  explicit Reshape(Options options);
  explicit Reshape(Shape target_shape) : Reshape(Options{.target_shape = std::move(target_shape)}) {}
  std::string class_name() const override { return "Reshape"; }
  bool output_is_view() const override { return true; }
  static std::shared_ptr<Layer> from_config(const Json& config);
  void export_onnx(onnx::GraphWriter& graph) const override;
  void build(const Shape& input_shape, Generator& gen) override;
  Tensor call(const Tensor& x, bool training) override;
  Shape output_shape(const Shape& input_shape) const override;
  Json config() const override;

 private:
  Shape target_;
};

// --- convolutional networks: images are (batch, H, W, C), channels last ---------------------------

// y = activation(conv(x, kernel) + bias); kernel (KH, KW, C, filters), bias (filters).
// Keras' fans for the kernel: fan_in = KH KW C, fan_out = KH KW filters.
class Conv2D : public Layer {
 public:
  struct Options {
    int64_t filters = 0;
    Size2 kernel_size = 0;
    Size2 strides = 1;
    Padding padding = Padding::valid;
    lamina::Activation activation = lamina::Activation::linear;
    bool use_bias = true;
    Initializer kernel_initializer = Initializer::glorot_uniform();
    Initializer bias_initializer = Initializer::zeros();
    std::optional<Regularizer> kernel_regularizer{};
    std::optional<Regularizer> bias_regularizer{};
    std::optional<Regularizer> activity_regularizer{};
    std::optional<Constraint> kernel_constraint{};
    std::optional<Constraint> bias_constraint{};
    std::optional<Shape> input_shape{};  // on a first layer: (H, W, C)
    std::string name{};
  };
  explicit Conv2D(Options options);
  Conv2D(int64_t filters, Size2 kernel_size, lamina::Activation activation = lamina::Activation::linear);

  std::string class_name() const override { return "Conv2D"; }
  static std::shared_ptr<Layer> from_config(const Json& config);
  void export_onnx(onnx::GraphWriter& graph) const override;
  std::vector<WeightSpec> weight_specs(const Shape& input_shape) const override;
  Tensor call(const Tensor& x, bool training) override;
  Shape output_shape(const Shape& input_shape) const override;
  Json config() const override;
  const Options& options() const { return options_; }
  Tensor& kernel() { return weights_.at(0).value; }
  Tensor& bias() { return weights_.at(1).value; }

 private:
  Options options_;
};

// Max or average over pool_size windows; strides default to pool_size (Keras' strides=None).
struct Pooling2DOptions {
  Size2 pool_size = 2;
  std::optional<Size2> strides{};
  Padding padding = Padding::valid;
  std::optional<Shape> input_shape{};
  std::string name{};
};

// What MaxPooling2D and AveragePooling2D share: options, checks, output shape and config; each
// says only its class name and which pooling op it calls.
class Pooling2D : public Layer {
 public:
  using Options = Pooling2DOptions;
  Shape output_shape(const Shape& input_shape) const override;
  Json config() const override;
  void export_onnx(onnx::GraphWriter& graph) const override;  // onnx_op() over the window
  const Options& options() const { return options_; }

 protected:
  Pooling2D(const char* class_name, Options options);
  virtual const char* onnx_op() const = 0;  // "MaxPool", "AveragePool"
  Options options_;
};

class MaxPooling2D : public Pooling2D {
 public:
  explicit MaxPooling2D(Options options = {}) : Pooling2D("MaxPooling2D", std::move(options)) {}
  std::string class_name() const override { return "MaxPooling2D"; }
  const char* onnx_op() const override { return "MaxPool"; }
  static std::shared_ptr<Layer> from_config(const Json& config);
  Tensor call(const Tensor& x, bool training) override;
};

// The mean of each window's cells inside the image ('same' windows at the border average fewer).
class AveragePooling2D : public Pooling2D {
 public:
  explicit AveragePooling2D(Options options = {}) : Pooling2D("AveragePooling2D", std::move(options)) {}
  std::string class_name() const override { return "AveragePooling2D"; }
  const char* onnx_op() const override { return "AveragePool"; }
  static std::shared_ptr<Layer> from_config(const Json& config);
  Tensor call(const Tensor& x, bool training) override;
};

// (batch, H, W, C) -> (batch, C), the mean over H and W ((batch, 1, 1, C) with keepdims).
class GlobalAveragePooling2D : public Layer {
 public:
  struct Options {
    bool keepdims = false;
    std::optional<Shape> input_shape{};
    std::string name{};
  };
  GlobalAveragePooling2D() : GlobalAveragePooling2D(Options{}) {}
  explicit GlobalAveragePooling2D(Options options);
  std::string class_name() const override { return "GlobalAveragePooling2D"; }
  static std::shared_ptr<Layer> from_config(const Json& config);
  void export_onnx(onnx::GraphWriter& graph) const override;
  Tensor call(const Tensor& x, bool training) override;
  Shape output_shape(const Shape& input_shape) const override;
  Json config() const override;

 private:
  Options options_;
};

// Inverted dropout while training (kept values scaled by 1 / (1 - rate)); the identity in
// evaluate and predict. Its masks come from a Generator seeded at build: from `seed` when
// given, else from the model's generator, so the same manual_seed gives the same masks.
class Dropout : public Layer {
 public:
  struct Options {
    float rate = 0.f;
    std::optional<uint64_t> seed{};
    std::optional<Shape> input_shape{};
    std::string name{};
  };
  explicit Dropout(Options options);
  explicit Dropout(float rate) : Dropout(Options{.rate = rate}) {}
  std::string class_name() const override { return "Dropout"; }
  bool supports_masking() const override { return true; }
  static std::shared_ptr<Layer> from_config(const Json& config);
  void export_onnx(onnx::GraphWriter& graph) const override;
  void build(const Shape& input_shape, Generator& gen) override;
  Tensor call(const Tensor& x, bool training) override;
  Shape output_shape(const Shape& input_shape) const override { return input_shape; }
  Json config() const override;
  Generator* generator() override { return &gen_; }

 private:
  Options options_;
  Generator gen_;
};

// Normalizes the last axis (channels) with batch statistics while training and the moving
// statistics otherwise, then scales by gamma and shifts by beta. Weights, in Keras' order and
// names: gamma, beta (trainable; absent without scale / center), moving_mean,
// moving_variance (non-trainable, updated by training calls, saved with the model).
class BatchNormalization : public Layer {
 public:
  struct Options {
    int64_t axis = -1;  // only the last axis; Keras 2 writes it as a positive index
    float momentum = 0.99f;
    float epsilon = 1e-3f;
    bool center = true;
    bool scale = true;
    Initializer beta_initializer = Initializer::zeros();
    Initializer gamma_initializer = Initializer::ones();
    std::optional<Regularizer> beta_regularizer{};
    std::optional<Regularizer> gamma_regularizer{};
    std::optional<Constraint> beta_constraint{};
    std::optional<Constraint> gamma_constraint{};
    Initializer moving_mean_initializer = Initializer::zeros();
    Initializer moving_variance_initializer = Initializer::ones();
    bool synchronized = false;  // data-parallel fit: the global batch's statistics (sync_batch_norm)
    std::optional<Shape> input_shape{};
    std::string name{};
  };
  BatchNormalization() : BatchNormalization(Options{}) {}
  explicit BatchNormalization(Options options);
  std::string class_name() const override { return "BatchNormalization"; }
  bool supports_masking() const override { return true; }
  static std::shared_ptr<Layer> from_config(const Json& config);
  void export_onnx(onnx::GraphWriter& graph) const override;
  std::vector<WeightSpec> weight_specs(const Shape& input_shape) const override;
  Tensor call(const Tensor& x, bool training) override;
  Shape output_shape(const Shape& input_shape) const override { return input_shape; }
  Json config() const override;
  const Options& options() const { return options_; }
  Tensor& weight(const std::string& name);  // "gamma", "beta", "moving_mean", "moving_variance"

 private:
  Options options_;
};

}  // namespace layers

using layers::Input;  // keras.Input

// --- the layer registry: Keras class name -> from_config ---------------------------------------------

using LayerFactory = std::function<std::shared_ptr<Layer>(const Json& config)>;
// A copy of a layer of the registered class (what calling a layer held by value records).
using LayerCloner = std::function<std::shared_ptr<Layer>(const Layer& layer)>;

// Registers a layer class under its Keras class name, so that Keras JSON, saved models,
// checkpoints and specs that name it load. The built-in layers are registered in
// src/layers/layer.cpp, one line each. A user's own class registers the same way:
//
//   class Scale : public lamina::Layer { ... static std::shared_ptr<Layer> from_config(const Json&); };
//   lamina::register_layer<Scale>("Scale");   // once, before loading a model that uses it
//   auto model = lamina::Sequential::load("scaled.safetensors");
//
// ValueError when the name is empty or already registered (pass replace = true to override).
void register_layer(const std::string& class_name, LayerFactory from_config, bool replace = false,
                    LayerCloner clone = {});
template <class L>
void register_layer(const std::string& class_name, bool replace = false) {
  register_layer(class_name, LayerFactory(&L::from_config), replace, [](const Layer& l) -> std::shared_ptr<Layer> {
    if (typeid(l) != typeid(L)) return nullptr;  // a subclass registered under another name: no slicing
    return std::make_shared<L>(static_cast<const L&>(l));
  });
}
// Every registered class name, sorted.
std::vector<std::string> registered_layers();

// A layer from its Keras class name and config (Keras 2 or 3 JSON), through the registry.
// Unknown class names throw ValueError listing the known ones.
std::shared_ptr<Layer> layer_from_config(const std::string& class_name, const Json& config);

// A copy of `layer` through its class's registered cloner; ValueError when the class has none.
std::shared_ptr<Layer> clone_layer(const Layer& layer);

// Keras' per-sample input shape in a layer config: "batch_input_shape" / "batch_shape" (with
// the batch entry first) or "input_shape"; nullopt when none.
std::optional<Shape> input_shape_from_config(const Json& config);

}  // namespace lamina
