// Bidirectional (include/lamina/layers/bidirectional.hpp): two recurrent layers, one each way,
// merged as Keras does.
#include "lamina/layers/bidirectional.hpp"

#include <algorithm>
#include <numeric>

#include "lamina/ops.hpp"
#include "layers/keras_config.hpp"
#include "parallel.hpp"

namespace lamina::layers {

namespace {

const char* const kMergeModes = "'concat', 'sum', 'mul', 'ave' or 'none'";

std::string without_prefix(const std::string& s, const std::string& prefix) {
  return s.rfind(prefix, 0) == 0 ? s.substr(prefix.size()) : s;
}

// A copy of a recurrent layer through its config, renamed, go_backwards as asked.
std::shared_ptr<Recurrent> copy_direction(const Recurrent& layer, const std::string& name, bool go_backwards) {
  Json c = layer.config();
  c["name"] = name;
  c["go_backwards"] = go_backwards;
  return std::dynamic_pointer_cast<Recurrent>(layer_from_config(layer.class_name(), c));
}

// x with its time axis (1) reversed.
Tensor flip_time(const Tensor& x) {
  std::vector<int64_t> steps(static_cast<size_t>(x.dim(1)));
  std::iota(steps.rbegin(), steps.rend(), int64_t{0});
  return index_select(x, 1, steps);
}

}  // namespace

Bidirectional::Bidirectional(const Layer& layer, Options options) : merge_mode_(std::move(options.merge_mode)) {
  take_common(options);
  const std::string at = "Bidirectional '" + name_ + "'";
  const auto* rnn = dynamic_cast<const Recurrent*>(&layer);
  if (!rnn)
    throw ValueError(at + ": wraps a recurrent layer (SimpleRNN, LSTM, GRU), got " + layer.class_name() + " '" +
                     layer.name() + "'");
  if (merge_mode_ == "None" || merge_mode_.empty()) merge_mode_ = "none";
  if (merge_mode_ != "concat" && merge_mode_ != "sum" && merge_mode_ != "mul" && merge_mode_ != "ave" &&
      merge_mode_ != "none")
    throw ValueError(at + ": merge_mode must be " + kMergeModes + ", got '" + merge_mode_ + "'");
  // Keras names the directions after the wrapped layer ("lstm" when it has no name yet).
  std::string base = layer.name().empty() ? rnn->config().value("name", std::string()) : layer.name();
  if (base.empty()) base = detail::snake_case(layer.class_name());
  base = without_prefix(without_prefix(base, "forward_"), "backward_");
  forward_ = copy_direction(*rnn, "forward_" + base, rnn->options().go_backwards);
  if (options.backward_layer) {
    const Recurrent& b = *options.backward_layer;
    const auto& f = rnn->options();
    const auto& o = b.options();
    if (b.class_name() != layer.class_name())
      throw ValueError(at + ": backward_layer is a " + b.class_name() + ", the layer a " + layer.class_name());
    if (o.go_backwards == f.go_backwards)
      throw ValueError(at + ": backward_layer must have the opposite go_backwards of the layer (both are " +
                       (f.go_backwards ? "true" : "false") + ")");
    if (o.return_sequences != f.return_sequences || o.return_state != f.return_state || o.stateful != f.stateful)
      throw ValueError(at + ": backward_layer must match the layer's return_sequences, return_state and stateful");
    backward_ = copy_direction(b, b.name().empty() ? "backward_" + base : b.name(), o.go_backwards);
  } else {
    backward_ = copy_direction(*rnn, "backward_" + base, !rnn->options().go_backwards);
  }
}

Bidirectional::Bidirectional(const Bidirectional& other)
    : Layer(other),
      forward_(std::dynamic_pointer_cast<Recurrent>(clone_layer(*other.forward_))),
      backward_(std::dynamic_pointer_cast<Recurrent>(clone_layer(*other.backward_))),
      merge_mode_(other.merge_mode_) {
  if (built_) collect_weights();
}

// --- shapes and weights ----------------------------------------------------------------------------

std::vector<Shape> Bidirectional::direction_shapes(std::span<const Shape> input_shapes, bool backward) const {
  if (input_shapes.empty()) throw ValueError("Bidirectional '" + name_ + "' got no input");
  const size_t states = input_shapes.size() - 1, per = forward_->state_count();
  if (states != 0 && states != 2 * per)
    throw ValueError("Bidirectional '" + name_ + "' takes 0 or " + std::to_string(2 * per) +
                     " initial states (the forward layer's, then the backward layer's), got " + std::to_string(states));
  std::vector<Shape> out{input_shapes[0]};
  if (states)
    for (size_t i = 0; i < per; ++i) out.push_back(input_shapes[1 + (backward ? per : 0) + i]);
  return out;
}

std::vector<Layer::WeightSpec> Bidirectional::weight_specs_for(std::span<const Shape> input_shapes) const {
  std::vector<WeightSpec> specs;
  for (const auto* l : {forward_.get(), backward_.get()})
    for (WeightSpec w : l->weight_specs_for(direction_shapes(input_shapes, l == backward_.get()))) {
      w.name = l->name() + "/" + w.name;
      specs.push_back(std::move(w));
    }
  return specs;
}

std::vector<Layer::WeightSpec> Bidirectional::weight_specs(const Shape& input_shape) const {
  return weight_specs_for(std::span<const Shape>(&input_shape, 1));
}

void Bidirectional::collect_weights() {
  weights_.clear();
  for (const auto* l : {forward_.get(), backward_.get()})
    for (const Weight& w : l->weights()) weights_.push_back({l->name() + "/" + w.name, w.value, w.trainable});
}

void Bidirectional::build_for(std::span<const Shape> input_shapes, Generator& gen) {
  infer_shapes(input_shapes);  // checks
  forward_->build_for(direction_shapes(input_shapes, false), gen);
  backward_->build_for(direction_shapes(input_shapes, true), gen);
  collect_weights();
  built_ = true;
}

void Bidirectional::build(const Shape& input_shape, Generator& gen) {
  build_for(std::span<const Shape>(&input_shape, 1), gen);
}

size_t Bidirectional::output_count() const {
  return (merge_mode_ == "none" ? 2 : 1) + (forward_->options().return_state ? 2 * forward_->state_count() : 0);
}

std::vector<Shape> Bidirectional::infer_shapes(std::span<const Shape> input_shapes) const {
  const Shape f = forward_->infer_shapes(direction_shapes(input_shapes, false)).at(0);
  const Shape b = backward_->infer_shapes(direction_shapes(input_shapes, true)).at(0);
  std::vector<Shape> out;
  if (merge_mode_ == "none") {
    out = {f, b};
  } else if (merge_mode_ == "concat") {
    std::vector<int64_t> dims(f.begin(), f.end());
    dims.back() += b[b.rank() - 1];
    out = {Shape(std::move(dims))};
  } else {
    if (f != b)
      throw ShapeError("Bidirectional '" + name_ + "': merge_mode '" + merge_mode_ + "' needs both directions' outputs " +
                       "of one shape, got " + f.str() + " and " + b.str() + " (give the backward layer as many units)");
    out = {f};
  }
  if (forward_->options().return_state) {
    const Shape fs{forward_->options().units}, bs{backward_->options().units};
    for (size_t i = 0; i < forward_->state_count(); ++i) out.push_back(fs);
    for (size_t i = 0; i < backward_->state_count(); ++i) out.push_back(bs);
  }
  return out;
}

Shape Bidirectional::infer_shape(std::span<const Shape> input_shapes) const {
  const std::vector<Shape> out = infer_shapes(input_shapes);
  if (out.size() > 1)
    throw ValueError("Bidirectional '" + name_ + "' has " + std::to_string(out.size()) +
                     " outputs (merge_mode 'none' or return_state); call it in a graph to get them all");
  return out[0];
}

Shape Bidirectional::output_shape(const Shape& input_shape) const {
  return infer_shape(std::span<const Shape>(&input_shape, 1));
}

// --- the computation ----------------------------------------------------------------------------------

Layer::Outputs Bidirectional::call_all(std::span<const Tensor> inputs, std::span<const Tensor> masks, bool training) {
  if (inputs.empty()) throw ValueError("Bidirectional '" + name_ + "' got no input");
  if (!built_) {
    std::vector<Shape> shapes;
    for (const Tensor& t : inputs) shapes.emplace_back(std::vector<int64_t>(t.shape().begin() + 1, t.shape().end()));
    build_for(shapes, default_generator());  // used on its own, outside a model
  }
  const Tensor mask = masks.empty() ? Tensor() : masks[0];
  const size_t per = forward_->state_count();
  const bool has_states = inputs.size() > 1;
  if (has_states && inputs.size() != 1 + 2 * per)
    throw ValueError("Bidirectional '" + name_ + "' takes 0 or " + std::to_string(2 * per) + " initial states, got " +
                     std::to_string(inputs.size() - 1));
  // Each direction is its layer's own call: its output (sequence or last step), then its states.
  auto run = [&](Recurrent& l, size_t first_state) {
    std::vector<Tensor> in{inputs[0]};
    if (has_states) in.insert(in.end(), inputs.begin() + static_cast<std::ptrdiff_t>(first_state),
                              inputs.begin() + static_cast<std::ptrdiff_t>(first_state + per));
    return l.call_all(in, std::span<const Tensor>(&mask, 1), training).values;
  };
  std::vector<Tensor> f, b;
  if (!training && detail::can_run_side_by_side()) {
    // Predicting, the directions run side by side, a core each: each is a chain of steps, and at
    // batch 1 a step is too small to share (imdb-lstm one review at a time on two threads: see
    // bench/README.md).
    detail::run_side_by_side([&] { f = run(*forward_, 1); }, [&] { b = run(*backward_, 1 + per); });
  } else {
    f = run(*forward_, 1);
    b = run(*backward_, 1 + per);
  }
  Tensor y = f[0], y_rev = b[0];
  const bool sequences = forward_->options().return_sequences;
  // Keras flips a sequence that ran the other way back to the input's order.
  if (sequences && backward_->options().go_backwards != forward_->options().go_backwards) y_rev = flip_time(y_rev);
  Outputs out;
  if (merge_mode_ == "concat") out.values = {concat({y, y_rev}, -1)};
  else if (merge_mode_ == "sum") out.values = {add(y, y_rev)};
  else if (merge_mode_ == "mul") out.values = {mul(y, y_rev)};
  else if (merge_mode_ == "ave") out.values = {mul(add(y, y_rev), 0.5f)};
  else out.values = {y, y_rev};
  const Tensor out_mask = sequences ? mask : Tensor();
  out.masks.assign(out.values.size(), out_mask);
  out.values.insert(out.values.end(), f.begin() + 1, f.end());  // the states, when return_state
  out.values.insert(out.values.end(), b.begin() + 1, b.end());
  out.masks.resize(out.values.size());
  return out;
}

Tensor Bidirectional::forward(std::span<const Tensor> inputs, bool training) {
  return call_all(inputs, {}, training).values.at(0);
}

Tensor Bidirectional::call(const Tensor& x, bool training) { return forward(std::span<const Tensor>(&x, 1), training); }

// --- training -----------------------------------------------------------------------------------------

void Bidirectional::set_trainable(bool on) {
  Layer::set_trainable(on);
  forward_->set_trainable(on);
  backward_->set_trainable(on);
}

std::vector<bool> Bidirectional::trainable_mask() const {
  std::vector<bool> mask = forward_->trainable_mask();
  const std::vector<bool> b = backward_->trainable_mask();
  mask.insert(mask.end(), b.begin(), b.end());
  if (!trainable_) mask.assign(mask.size(), false);
  return mask;
}

Tensor Bidirectional::regularization_loss() const {
  const Tensor f = forward_->regularization_loss(), b = backward_->regularization_loss();
  if (!f.defined()) return b;
  return b.defined() ? add(f, b) : f;
}

void Bidirectional::apply_constraints() {
  forward_->apply_constraints();
  backward_->apply_constraints();
}

// --- Keras config ---------------------------------------------------------------------------------------

namespace {

Json serialized(const Layer& l) {
  return {{"module", "keras.layers"}, {"class_name", l.class_name()}, {"config", l.config()}, {"registered_name", nullptr}};
}

std::shared_ptr<Recurrent> recurrent_from(const Json& j, const std::string& at, const char* key) {
  if (!j.is_object() || !j.contains("class_name") || !j["class_name"].is_string())
    throw ValueError(at + ": '" + key + "' must be a serialized layer {\"class_name\": ..., \"config\": ...}, got " +
                     j.dump().substr(0, 80));
  auto l = layer_from_config(j["class_name"].get<std::string>(), j.value("config", Json::object()));
  auto r = std::dynamic_pointer_cast<Recurrent>(l);
  if (!r) throw ValueError(at + ": '" + key + "' must be a recurrent layer (SimpleRNN, LSTM, GRU), got " + l->class_name());
  return r;
}

}  // namespace

Json Bidirectional::config() const {
  Json j = Layer::config();
  j["merge_mode"] = merge_mode_ == "none" ? Json(nullptr) : Json(merge_mode_);
  j["layer"] = serialized(*forward_);
  j["backward_layer"] = serialized(*backward_);
  return j;
}

std::shared_ptr<Layer> Bidirectional::from_config(const Json& c) {
  const std::string at = detail::where("Bidirectional", c);
  if (!c.contains("layer")) throw ValueError(at + ": no 'layer' to wrap");
  const std::shared_ptr<Recurrent> layer = recurrent_from(c["layer"], at, "layer");
  Options o;
  detail::read_common(o, c);
  if (c.contains("merge_mode")) {
    const Json& m = c["merge_mode"];
    if (!m.is_null() && !m.is_string()) throw ValueError(at + ": merge_mode must be " + kMergeModes + " or null");
    o.merge_mode = m.is_null() ? "none" : m.get<std::string>();
  }
  if (c.contains("backward_layer") && !c["backward_layer"].is_null())
    o.backward_layer = recurrent_from(c["backward_layer"], at, "backward_layer");
  return std::make_shared<Bidirectional>(*layer, o);
}

}  // namespace lamina::layers
