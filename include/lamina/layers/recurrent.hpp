// Keras 3's recurrent layers SimpleRNN, LSTM and GRU: Keras' options, defaults, weight names and
// layouts (kernel (features, G*units), recurrent_kernel (units, G*units), bias; gates side by side
// in Keras' order), on the rnn op (oneDNN's RNN primitives, or the composed reference when a mask,
// recurrent dropout or another activation asks for it).
//
//   model.add(layers::LSTM({.units = 64}));                          // (N, T, I) -> (N, 64)
//   model.add(layers::GRU({.units = 32, .return_sequences = true})); // (N, T, I) -> (N, T, 32)
//   KerasTensor y = layers::LSTM({.units = 8})({x, h0, c0});         // Keras' initial_state
#pragma once

#include <span>

#include "lamina/layers.hpp"
#include "lamina/ops.hpp"

namespace lamina::layers {

// What SimpleRNN, LSTM and GRU share. One Options struct serves the three classes; an option
// a class does not have (recurrent_activation on SimpleRNN, unit_forget_bias off LSTM,
// reset_after off GRU) must stay at its default, or the constructor throws ValueError.
class Recurrent : public Layer {
 public:
  struct Options {
    int64_t units = 0;
    lamina::Activation activation = lamina::Activation::tanh;
    lamina::Activation recurrent_activation = lamina::Activation::sigmoid;  // LSTM, GRU: the gates
    bool use_bias = true;
    Initializer kernel_initializer = Initializer::glorot_uniform();
    Initializer recurrent_initializer = Initializer::orthogonal();
    Initializer bias_initializer = Initializer::zeros();
    bool unit_forget_bias = true;  // LSTM: the forget gate's bias starts at 1
    std::optional<Regularizer> kernel_regularizer{};
    std::optional<Regularizer> recurrent_regularizer{};
    std::optional<Regularizer> bias_regularizer{};
    std::optional<Regularizer> activity_regularizer{};
    std::optional<Constraint> kernel_constraint{};
    std::optional<Constraint> recurrent_constraint{};
    std::optional<Constraint> bias_constraint{};
    // Keras 3: while training, one mask per sample over the input features (dropout) / over h
    // (recurrent_dropout), the same at every step, kept values scaled by 1 / (1 - rate).
    float dropout = 0.f;
    float recurrent_dropout = 0.f;
    std::optional<uint64_t> seed{};
    bool return_sequences = false;  // the whole sequence (N, T, U), else the last output (N, U)
    bool return_state = false;      // also output the final states (h; LSTM: h, c)
    bool go_backwards = false;      // right to left; the sequence comes back reversed, as Keras
    bool stateful = false;          // not supported yet: true is a ValueError
    bool unroll = false;            // accepted; the computation is the same
    bool zero_output_for_mask = false;  // a masked step outputs zeros instead of the last output
    bool reset_after = true;        // GRU: the reset gate after the recurrent matmul (Keras 3, cuDNN)
    std::optional<Shape> input_shape{};  // per sample: (timesteps, features)
    std::string name{};
  };

  Json config() const override;
  std::vector<WeightSpec> weight_specs(const Shape& input_shape) const override;
  void build(const Shape& input_shape, Generator& gen) override;
  // x (N, T, I) -> the sequence (N, T, U) with return_sequences, else the last output (N, U).
  // (With return_state, a graph also gets the final states: call_all.)
  Tensor call(const Tensor& x, bool training) override;
  Shape output_shape(const Shape& input_shape) const override;
  Generator* generator() override { return &gen_; }
  std::vector<std::string> config_aliases() const override { return {"use_cudnn", "implementation", "time_major"}; }

  // A graph may call the layer on [x, h0] (LSTM: [x, h0, c0]): Keras' initial_state.
  void build_for(std::span<const Shape> input_shapes, Generator& gen) override;
  std::vector<WeightSpec> weight_specs_for(std::span<const Shape> input_shapes) const override;
  Shape infer_shape(std::span<const Shape> input_shapes) const override;
  Tensor forward(std::span<const Tensor> inputs, bool training) override;
  // Keras 3's masks and return_state: the input mask skips padded steps (a masked step keeps the
  // states and repeats the last output); the output carries it on with return_sequences. Outputs:
  // [output] or, with return_state, [output, h] ([output, h, c] for LSTM), the states maskless.
  bool supports_masking() const override { return true; }
  Tensor compute_mask(std::span<const Tensor> inputs, std::span<const Tensor> masks) const override;
  size_t output_count() const override { return options_.return_state ? 1 + state_count() : 1; }
  std::vector<Shape> infer_shapes(std::span<const Shape> input_shapes) const override;
  Outputs call_all(std::span<const Tensor> inputs, std::span<const Tensor> masks, bool training) override;

  // The whole result: sequence (N, T, U), final h (N, U), final c (N, U) (LSTM). mask (N, T) of
  // 0 / 1 or undefined; initial_state empty or [h0] ([h0, c0] for LSTM), each (N, U). The layer's
  // dropout masks apply when training.
  RnnResult run(const Tensor& x, const Tensor& mask, std::span<const Tensor> initial_state, bool training);
  const Options& options() const { return options_; }
  // ONNX RNN / LSTM / GRU, time-major between Transposes (src/layers/recurrent_onnx.cpp).
  void export_onnx(onnx::GraphWriter& graph) const override;
  size_t state_count() const { return cell_ == RnnCell::lstm ? 2 : 1; }

 protected:
  Recurrent(const char* class_name, RnnCell cell, Options options);
  // Keras' config keys of this class beyond the shared ones.
  virtual void write_own(Json& j) const = 0;
  // The shared part of every from_config.
  static Options read_shared(const Json& c, const std::string& at);

 private:
  int64_t gates() const;
  // ShapeError unless shape is a per-sample (timesteps, features) with `features` when built.
  void check_input(const Shape& per_sample) const;

  RnnCell cell_;
  Options options_;
  Generator gen_;
};

// h = activation(x kernel + h recurrent_kernel + bias). Weights: kernel (I, U), recurrent_kernel
// (U, U), bias (U).
class SimpleRNN : public Recurrent {
 public:
  explicit SimpleRNN(Options options);
  std::string class_name() const override { return "SimpleRNN"; }
  static std::shared_ptr<Layer> from_config(const Json& config);

 protected:
  void write_own(Json& j) const override;
};

// Gates i, f, c, o. Weights: kernel (I, 4U), recurrent_kernel (U, 4U), bias (4U). run() also
// returns the final cell state.
class LSTM : public Recurrent {
 public:
  explicit LSTM(Options options);
  std::string class_name() const override { return "LSTM"; }
  static std::shared_ptr<Layer> from_config(const Json& config);

 protected:
  void write_own(Json& j) const override;
};

// Gates z, r, h; h = z * h_prev + (1 - z) * hh. Weights: kernel (I, 3U), recurrent_kernel
// (U, 3U), bias (2, 3U) (input and recurrent rows) with reset_after, else (3U).
class GRU : public Recurrent {
 public:
  explicit GRU(Options options);
  std::string class_name() const override { return "GRU"; }
  static std::shared_ptr<Layer> from_config(const Json& config);

 protected:
  void write_own(Json& j) const override;
};

}  // namespace lamina::layers
