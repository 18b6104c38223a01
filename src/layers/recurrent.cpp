// SimpleRNN, LSTM, GRU (include/lamina/layers/recurrent.hpp): options, weights, call and Keras
// config both ways. The math is the rnn op (src/ops/rnn.cpp). N = batch, T = timesteps,
// I = input features, U = units.
#include "lamina/layers/recurrent.hpp"

#include "layers/keras_config.hpp"

namespace lamina::layers {

namespace {

// A Keras activation as the op takes it: the three oneDNN runs, any other as a function.
RnnActivation rnn_activation(const lamina::Activation& a) {
  switch (a.kind()) {
    case lamina::Activation::tanh: return {FusedActivation::tanh, {}};
    case lamina::Activation::sigmoid: return {FusedActivation::sigmoid, {}};
    case lamina::Activation::relu: return {FusedActivation::relu, {}};
    default: return {FusedActivation::none, [a](const Tensor& x) { return a(x); }};
  }
}

bool unit_interval(float rate) { return rate >= 0.f && rate < 1.f; }

const char* const kSequenceHint =
    "a recurrent layer reads sequences; add a time axis (Reshape) or an Embedding before it";

// Keras 3 writes recurrent_activation as a string; Keras 2 may serialize it as an object.
lamina::Activation recurrent_activation_of(const Json& c) {
  const Json only = {{"activation", c["recurrent_activation"]}};
  return detail::activation_of(only);
}

}  // namespace

Recurrent::Recurrent(const char* class_name, RnnCell cell, Options options)
    : cell_(cell), options_(std::move(options)) {
  const std::string at = std::string(class_name) + " '" + options_.name + "'";
  if (options_.units <= 0) throw ValueError(at + ": units must be positive, got " + std::to_string(options_.units));
  if (!unit_interval(options_.dropout) || !unit_interval(options_.recurrent_dropout))
    throw ValueError(at + ": dropout and recurrent_dropout must be in [0, 1), got " +
                     std::to_string(options_.dropout) + " and " + std::to_string(options_.recurrent_dropout));
  if (options_.stateful)
    throw ValueError(at + ": stateful=True is not supported yet (the states are not kept between batches); "
                          "pass the states as initial_state inputs instead");
  const Options defaults;
  if (cell == RnnCell::simple && !(options_.recurrent_activation == defaults.recurrent_activation))
    throw ValueError(at + ": a SimpleRNN has no recurrent_activation");
  if (cell != RnnCell::lstm && options_.unit_forget_bias != defaults.unit_forget_bias)
    throw ValueError(at + ": unit_forget_bias is an LSTM option");
  if (cell != RnnCell::gru && cell != RnnCell::gru_reset_after && options_.reset_after != defaults.reset_after)
    throw ValueError(at + ": reset_after is a GRU option");
  take_common(options_);
  set_weight_penalty("kernel", options_.kernel_regularizer, options_.kernel_constraint);
  set_weight_penalty("recurrent_kernel", options_.recurrent_regularizer, options_.recurrent_constraint);
  set_weight_penalty("bias", options_.bias_regularizer, options_.bias_constraint);
  activity_regularizer_ = options_.activity_regularizer;
}

SimpleRNN::SimpleRNN(Options options) : Recurrent("SimpleRNN", RnnCell::simple, std::move(options)) {}
LSTM::LSTM(Options options) : Recurrent("LSTM", RnnCell::lstm, std::move(options)) {}
GRU::GRU(Options options)
    : Recurrent("GRU", options.reset_after ? RnnCell::gru_reset_after : RnnCell::gru, std::move(options)) {}

int64_t Recurrent::gates() const {
  switch (cell_) {
    case RnnCell::simple: return 1;
    case RnnCell::lstm: return 4;
    default: return 3;
  }
}

// --- shapes and weights ------------------------------------------------------------------------

void Recurrent::check_input(const Shape& per_sample) const {
  if (per_sample.rank() != 2)
    shape_error("(timesteps, features) per sample", per_sample, kSequenceHint);
  if (const Tensor* k = find_weight("kernel"); k && per_sample[1] != k->dim(0))
    shape_error("(timesteps, " + std::to_string(k->dim(0)) + ") per sample (the features it was built for)",
                per_sample);
}

std::vector<Layer::WeightSpec> Recurrent::weight_specs(const Shape& input_shape) const {
  if (input_shape.rank() != 2 || input_shape[1] <= 0)
    shape_error("(timesteps, features) per sample", input_shape, kSequenceHint);
  const int64_t u = options_.units, g = gates();
  std::vector<WeightSpec> specs{{"kernel", {input_shape[1], g * u}, options_.kernel_initializer},
                                {"recurrent_kernel", {u, g * u}, options_.recurrent_initializer}};
  if (options_.use_bias)
    specs.push_back({"bias", cell_ == RnnCell::gru_reset_after ? Shape{2, g * u} : Shape{g * u},
                     options_.bias_initializer});
  return specs;
}

void Recurrent::build(const Shape& input_shape, Generator& gen) {
  Layer::build(input_shape, gen);
  // Keras' LSTMCell: the forget gate's block of the bias starts at 1.
  if (cell_ == RnnCell::lstm && options_.use_bias && options_.unit_forget_bias) {
    float* b = weights_.at(2).value.data();
    std::fill_n(b + options_.units, options_.units, 1.f);
  }
  // Drawing the seed from the model's generator at build ties the masks to manual_seed (as Dropout).
  gen_.seed_(options_.seed ? *options_.seed : gen.next());
}

Shape Recurrent::output_shape(const Shape& input_shape) const {
  if (input_shape.rank() != 2) shape_error("(timesteps, features) per sample", input_shape, kSequenceHint);
  return options_.return_sequences ? Shape{input_shape[0], options_.units} : Shape{options_.units};
}

// Inputs: x, then the initial states (none, or all of them).
Shape Recurrent::infer_shape(std::span<const Shape> input_shapes) const {
  const size_t states = input_shapes.size() - 1;
  if (input_shapes.empty() || (states != 0 && states != state_count()))
    throw ValueError(class_name() + " '" + name_ + "' takes the sequence and, optionally, its " +
                     std::to_string(state_count()) + " initial state(s); got " +
                     std::to_string(input_shapes.size()) + " inputs");
  for (size_t k = 1; k < input_shapes.size(); ++k)
    if (input_shapes[k] != Shape{options_.units})
      throw ShapeError(class_name() + " '" + name_ + "': initial state " + std::to_string(k - 1) + " must be (batch, " +
                       std::to_string(options_.units) + "), got " + input_shapes[k].str() + " per sample");
  return output_shape(input_shapes[0]);
}

std::vector<Layer::WeightSpec> Recurrent::weight_specs_for(std::span<const Shape> input_shapes) const {
  infer_shape(input_shapes);
  return weight_specs(input_shapes[0]);
}

void Recurrent::build_for(std::span<const Shape> input_shapes, Generator& gen) {
  infer_shape(input_shapes);
  build(input_shapes[0], gen);
}

std::vector<Shape> Recurrent::infer_shapes(std::span<const Shape> input_shapes) const {
  std::vector<Shape> shapes{infer_shape(input_shapes)};
  if (options_.return_state) shapes.resize(1 + state_count(), Shape{options_.units});
  return shapes;
}

Tensor Recurrent::compute_mask(std::span<const Tensor>, std::span<const Tensor> masks) const {
  return options_.return_sequences && !masks.empty() ? masks[0] : Tensor();
}

Layer::Outputs Recurrent::call_all(std::span<const Tensor> inputs, std::span<const Tensor> masks, bool training) {
  if (inputs.empty()) throw ValueError(class_name() + " '" + name_ + "' got no input");
  const RnnResult r = run(inputs[0], masks.empty() ? Tensor() : masks[0], inputs.subspan(1), training);
  Outputs out;
  // Keras' last output: the sequence's last step (with a mask, the last unmasked step's output).
  if (options_.return_sequences) out.values.push_back(r.sequence);
  else out.values.push_back(reshape(slice(r.sequence, 1, -1, INT64_MAX), {r.h.dim(0), r.h.dim(1)}));
  out.masks.push_back(compute_mask(inputs, masks));
  if (options_.return_state) {
    out.values.push_back(r.h);
    if (r.c.defined()) out.values.push_back(r.c);
    out.masks.resize(out.values.size());
  }
  return out;
}

Tensor Recurrent::forward(std::span<const Tensor> inputs, bool training) {
  return call_all(inputs, {}, training).values.at(0);
}

Tensor Recurrent::call(const Tensor& x, bool training) { return forward(std::span<const Tensor>(&x, 1), training); }

// --- the computation -----------------------------------------------------------------------------

RnnResult Recurrent::run(const Tensor& x, const Tensor& mask, std::span<const Tensor> initial_state, bool training) {
  if (x.rank() != 3) shape_error("(batch, timesteps, features)", x.shape(), kSequenceHint);
  if (!built_) build(Shape{x.dim(1), x.dim(2)}, default_generator());  // used on its own, outside a model
  check_input(Shape{x.dim(1), x.dim(2)});
  if (!initial_state.empty() && initial_state.size() != state_count())
    throw ValueError(class_name() + " '" + name_ + "' takes " + std::to_string(state_count()) +
                     " initial state(s), got " + std::to_string(initial_state.size()));
  const int64_t n = x.dim(0), u = options_.units;
  for (const Tensor& s : initial_state)
    if (s.shape() != Shape{n, u})
      throw ShapeError(class_name() + " '" + name_ + "': an initial state must be " + Shape{n, u}.str() + ", got " +
                       s.shape().str());
  Tensor input = x;
  RnnOptions o{.reverse = options_.go_backwards,
               .activation = rnn_activation(options_.activation),
               .recurrent_activation = rnn_activation(options_.recurrent_activation),
               .mask = mask,
               .zero_output_for_mask = options_.zero_output_for_mask};
  if (training && options_.dropout > 0.f)
    input = x * reshape(dropout(Tensor::ones({n, x.dim(2)}), options_.dropout, gen_, true), {n, 1, x.dim(2)});
  if (training && options_.recurrent_dropout > 0.f)
    o.recurrent_dropout = dropout(Tensor::ones({n, u}), options_.recurrent_dropout, gen_, true);
  const Tensor* bias = find_weight("bias");
  const Tensor h0 = initial_state.empty() ? Tensor() : initial_state[0];
  const Tensor c0 = initial_state.size() > 1 ? initial_state[1] : Tensor();
  return rnn(cell_, input, *find_weight("kernel"), *find_weight("recurrent_kernel"), bias ? *bias : Tensor(), h0, c0,
             o);
}

// --- Keras config ------------------------------------------------------------------------------------

Json Recurrent::config() const {
  Json j = Layer::config();
  j["return_sequences"] = options_.return_sequences;
  j["return_state"] = options_.return_state;
  j["go_backwards"] = options_.go_backwards;
  j["stateful"] = options_.stateful;
  j["unroll"] = options_.unroll;
  j["zero_output_for_mask"] = options_.zero_output_for_mask;
  j["units"] = options_.units;
  j["activation"] = options_.activation.name();
  j["use_bias"] = options_.use_bias;
  j["kernel_initializer"] = options_.kernel_initializer.config();
  j["recurrent_initializer"] = options_.recurrent_initializer.config();
  j["bias_initializer"] = options_.bias_initializer.config();
  j["kernel_regularizer"] = detail::penalty_json(options_.kernel_regularizer);
  j["recurrent_regularizer"] = detail::penalty_json(options_.recurrent_regularizer);
  j["bias_regularizer"] = detail::penalty_json(options_.bias_regularizer);
  if (!j.contains("activity_regularizer")) j["activity_regularizer"] = nullptr;
  j["kernel_constraint"] = detail::penalty_json(options_.kernel_constraint);
  j["recurrent_constraint"] = detail::penalty_json(options_.recurrent_constraint);
  j["bias_constraint"] = detail::penalty_json(options_.bias_constraint);
  j["dropout"] = detail::float_json(options_.dropout);
  j["recurrent_dropout"] = detail::float_json(options_.recurrent_dropout);
  j["seed"] = options_.seed ? Json(*options_.seed) : Json(nullptr);
  write_own(j);
  return j;
}

void SimpleRNN::write_own(Json&) const {}
void LSTM::write_own(Json& j) const {
  j["recurrent_activation"] = options().recurrent_activation.name();
  j["unit_forget_bias"] = options().unit_forget_bias;
}
void GRU::write_own(Json& j) const {
  j["recurrent_activation"] = options().recurrent_activation.name();
  j["reset_after"] = options().reset_after;
}

Recurrent::Options Recurrent::read_shared(const Json& c, const std::string& at) {
  Options o;
  o.units = detail::positive_int_of(c, "units", at);
  // Keras' default is tanh when the key is absent; an explicit null is linear (activation=None).
  if (c.contains("activation")) o.activation = detail::activation_of(c);
  o.use_bias = c.value("use_bias", true);
  o.kernel_initializer = detail::initializer_of(c, "kernel_initializer", o.kernel_initializer);
  o.recurrent_initializer = detail::initializer_of(c, "recurrent_initializer", o.recurrent_initializer);
  o.bias_initializer = detail::initializer_of(c, "bias_initializer", o.bias_initializer);
  o.kernel_regularizer = detail::regularizer_of(c, "kernel_regularizer", at);
  o.recurrent_regularizer = detail::regularizer_of(c, "recurrent_regularizer", at);
  o.bias_regularizer = detail::regularizer_of(c, "bias_regularizer", at);
  o.kernel_constraint = detail::constraint_of(c, "kernel_constraint", at);
  o.recurrent_constraint = detail::constraint_of(c, "recurrent_constraint", at);
  o.bias_constraint = detail::constraint_of(c, "bias_constraint", at);
  o.dropout = detail::float_of(c, "dropout", 0.f, at);
  o.recurrent_dropout = detail::float_of(c, "recurrent_dropout", 0.f, at);
  if (c.contains("seed") && !c["seed"].is_null()) {
    if (!c["seed"].is_number_integer()) throw ValueError(at + ": 'seed' must be an integer, got " + c["seed"].dump());
    o.seed = c["seed"].get<uint64_t>();
  }
  o.return_sequences = c.value("return_sequences", false);
  o.return_state = c.value("return_state", false);
  o.go_backwards = c.value("go_backwards", false);
  o.stateful = c.value("stateful", false);
  o.unroll = c.value("unroll", false);
  o.zero_output_for_mask = c.value("zero_output_for_mask", false);
  detail::require_default(c, "time_major", false, at);  // Keras 2; "implementation" and "use_cudnn" only pick kernels
  detail::read_common(o, c);
  return o;
}

std::shared_ptr<Layer> SimpleRNN::from_config(const Json& c) {
  return std::make_shared<SimpleRNN>(read_shared(c, detail::where("SimpleRNN", c)));
}

std::shared_ptr<Layer> LSTM::from_config(const Json& c) {
  Options o = read_shared(c, detail::where("LSTM", c));
  if (c.contains("recurrent_activation")) o.recurrent_activation = recurrent_activation_of(c);
  o.unit_forget_bias = c.value("unit_forget_bias", true);
  return std::make_shared<LSTM>(o);
}

std::shared_ptr<Layer> GRU::from_config(const Json& c) {
  Options o = read_shared(c, detail::where("GRU", c));
  if (c.contains("recurrent_activation")) o.recurrent_activation = recurrent_activation_of(c);
  o.reset_after = c.value("reset_after", true);
  return std::make_shared<GRU>(o);
}

}  // namespace lamina::layers
