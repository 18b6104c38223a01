// Model's graph: recording it from symbolic tensors (Model(inputs, outputs)), Sequential's chain,
// naming layers, building, the forward pass, and the weights. One engine for both model shapes:
// a Sequential is a Model whose nodes are a chain of its layers.
#include <algorithm>
#include <cctype>
#include <map>
#include <set>
#include <unordered_map>

#include "lamina/model.hpp"
#include "lamina/runtime.hpp"
#include "layers/keras_config.hpp"  // snake_case

namespace lamina {

namespace {

std::string layer_text(const Layer& l) { return "'" + l.name() + "' (" + l.class_name() + ")"; }

Shape sample_shape_of(const Tensor& x) { return Shape(std::vector<int64_t>(x.shape().begin() + 1, x.shape().end())); }

// Models nest as layers: the registry learns their Keras class names here. Any Model copies
// into a graph (a Sequential read back as a Model included).
template <class M>
void register_model(const std::string& class_name) {
  register_layer(class_name, LayerFactory(&M::from_config), /*replace=*/false,
                 [](const Layer& l) -> std::shared_ptr<Layer> {
                   const auto* m = dynamic_cast<const Model*>(&l);
                   return m ? std::make_shared<M>(M(*m)) : nullptr;
                 });
}

const bool kModelsRegistered = [] {
  register_model<Sequential>("Sequential");
  register_model<Model>("Functional");
  register_model<Model>("Model");
  return true;
}();

}  // namespace

AnyLayer::AnyLayer(const KerasTensor& input) {
  if (!input.defined() || !input.call()->inputs.empty() || input.layer().class_name() != "InputLayer")
    throw ValueError("Sequential: only an Input() can stand for a layer in the list (got the output of " +
                     (input.defined() ? "layer " + layer_text(input.layer()) : std::string("nothing")) + ")");
  ptr = input.call()->layer;
}

// --- construction ---------------------------------------------------------------------------------

Model::Model(std::string name) { name_ = std::move(name); }

void Model::name_layer(Layer& layer) {
  if (!layer.name().empty()) return;
  const std::string base = detail::snake_case(layer.class_name());
  std::string name = base;
  for (int& i = next_suffix_[base]; layer_names_.contains(name);) name = base + "_" + std::to_string(++i);
  layer.set_name(name);
}

Model::Model(const std::vector<KerasTensor>& inputs, const std::vector<KerasTensor>& outputs, std::string name) {
  name_ = std::move(name);
  const std::string where = "Model '" + name_ + "': ";
  if (inputs.empty()) throw ValueError(where + "no inputs");
  if (outputs.empty()) throw ValueError(where + "no outputs");
  using Call = KerasTensor::Call;
  std::unordered_map<const Call*, int> id;  // tensor ids, inputs first
  for (size_t i = 0; i < inputs.size(); ++i) {
    const KerasTensor& t = inputs[i];
    if (!t.defined()) throw ValueError(where + "inputs[" + std::to_string(i) + "] is an empty KerasTensor");
    if (!t.call()->inputs.empty() || t.layer().class_name() != "InputLayer")
      throw ValueError(where + "inputs[" + std::to_string(i) + "] is the output of layer " + layer_text(t.layer()) +
                       ", not an Input; a model's inputs come from Input(shape)");
    if (!id.emplace(t.call().get(), static_cast<int>(i)).second)
      throw ValueError(where + "inputs[" + std::to_string(i) + "] is listed twice");
    input_ids_.push_back(static_cast<int>(i));
    input_layers_.push_back(t.call()->layer);
    shapes_.push_back(t.shape());
  }
  // Every call the outputs depend on, each after its inputs: an iterative depth-first walk (a
  // graph thousands of layers deep must not overflow the stack).
  std::vector<const Call*> order;
  std::unordered_map<const Call*, int> state;  // 1: being visited, 2: done
  for (size_t o = 0; o < outputs.size(); ++o) {
    if (!outputs[o].defined()) throw ValueError(where + "outputs[" + std::to_string(o) + "] is an empty KerasTensor");
    std::vector<std::pair<const Call*, size_t>> stack{{outputs[o].call().get(), 0}};
    while (!stack.empty()) {
      auto& [call, next] = stack.back();
      if (next == 0) {
        if (id.contains(call) || state[call] == 2) {
          stack.pop_back();
          continue;
        }
        if (call->inputs.empty())
          throw ValueError(where + "output '" + outputs[o].layer().name() + "' depends on the Input " +
                           layer_text(*call->layer) + ", which is not among the model's inputs");
        state[call] = 1;
      }
      if (next < call->inputs.size()) {
        const Call* in = call->inputs[next++].call().get();
        if (state[in] == 1) throw ValueError(where + "the graph has a cycle through layer " + layer_text(*in->layer));
        stack.emplace_back(in, 0);
        continue;
      }
      state[call] = 2;
      order.push_back(call);
      stack.pop_back();
    }
  }
  // Inputs that no output uses are a mistake, as Keras says ("graph disconnected").
  std::vector<bool> used(inputs.size(), false);
  for (const Call* c : order)
    for (const KerasTensor& in : c->inputs)
      if (auto it = id.find(in.call().get()); it != id.end() && it->second < static_cast<int>(inputs.size()))
        used[static_cast<size_t>(it->second)] = true;
  for (size_t o = 0; o < outputs.size(); ++o)
    if (auto it = id.find(outputs[o].call().get()); it != id.end()) used[static_cast<size_t>(it->second)] = true;
  for (size_t i = 0; i < inputs.size(); ++i)
    if (!used[i])
      throw ValueError(where + "input " + layer_text(inputs[i].layer()) + " does not reach any output");

  // Layers: the inputs', then each in the order of its first call; named, and names unique.
  std::unordered_map<const Layer*, bool> seen;
  auto take = [&](const std::shared_ptr<Layer>& l) {
    if (seen[l.get()]) return;
    seen[l.get()] = true;
    layers_.push_back(l);
  };
  for (const auto& l : input_layers_) take(l);
  for (const Call* c : order) take(c->layer);
  for (const auto& l : layers_)
    if (!l->name().empty() && !layer_names_.insert(l->name()).second)
      throw ValueError(where + "two different layers are named '" + l->name() + "'; layer names must be unique");
  for (const auto& l : layers_)
    if (l->name().empty()) {
      name_layer(*l);
      layer_names_.insert(l->name());
    }
  // A tensor's id: its call's first id plus which output it is.
  auto id_of = [&](const KerasTensor& t) { return id.at(t.call().get()) + static_cast<int>(t.index()); };
  for (const Call* c : order) {
    Node node{c->layer, {}, static_cast<int>(shapes_.size()), static_cast<int>(c->shapes.size())};
    for (const KerasTensor& in : c->inputs) node.inputs.push_back(id_of(in));
    id[c] = node.output;
    shapes_.insert(shapes_.end(), c->shapes.begin(), c->shapes.end());
    nodes_.push_back(std::move(node));
  }
  for (const KerasTensor& t : outputs) output_ids_.push_back(id_of(t));
  std::vector<Shape> in_shapes;
  for (int i : input_ids_) in_shapes.push_back(shapes_[static_cast<size_t>(i)]);
  build_graph(in_shapes, default_generator(), /*top_level=*/true);
}

std::vector<Model::Node> Model::chain_nodes() const {
  std::vector<Node> nodes;
  for (size_t i = 0; i < layers_.size(); ++i) nodes.push_back({layers_[i], {static_cast<int>(i)}, static_cast<int>(i + 1)});
  return nodes;
}

void Model::make_chain() {
  nodes_ = chain_nodes();
  input_ids_ = {0};
  output_ids_ = {static_cast<int>(layers_.size())};
  shapes_.assign(layers_.size() + 1, Shape());
}

Shape Model::chain_output_shape(Shape shape) const {
  for (const auto& l : layers_) shape = l->output_shape(shape);
  return shape;
}

Sequential::Sequential(std::initializer_list<AnyLayer> layers, std::string name) : Model(std::move(name)) {
  sequential_ = true;
  for (const AnyLayer& l : layers) add(l);
}

Sequential::Sequential(Model model) : Model(std::move(model)) {
  if (!sequential_)
    throw ValueError("model '" + name_ + "' is a " + class_name() +
                     " model, not a Sequential one; load it as a lamina::Model");
}

Sequential& Sequential::add(AnyLayer layer) {
  if (!layer.ptr) throw ValueError("Sequential.add: null layer");
  if (built()) throw ValueError("Sequential.add: the model '" + name_ + "' is already built; add layers before building");
  name_layer(*layer.ptr);
  if (layer_names_.contains(layer.ptr->name()))
    throw ValueError("Sequential.add: a layer named '" + layer.ptr->name() + "' is already in the model");
  if (!layers_.empty() && layer.ptr->class_name() == "InputLayer")
    throw ValueError("Sequential.add: an InputLayer can only be the first layer");
  layer_names_.insert(layer.ptr->name());
  layers_.push_back(std::move(layer.ptr));
  return *this;
}

// --- queries ---------------------------------------------------------------------------------------

Layer& Model::layer(const std::string& name) const {
  for (const auto& l : layers_)
    if (l->name() == name) return *l;
  throw ValueError("model '" + name_ + "' has no layer named '" + name + "'");
}

std::vector<std::string> Model::input_names() const {
  if (sequential_) return {layers_.empty() ? std::string("input") : layers_.front()->name()};
  std::vector<std::string> out;
  for (const auto& l : input_layers_) out.push_back(l->name());
  return out;
}

std::vector<std::string> Model::output_names() const {
  if (sequential_) return {layers_.empty() ? std::string("output") : layers_.back()->name()};
  std::vector<std::string> out;
  for (int t : output_ids_) {
    // Output k > 0 of a layer with several (return_state's states) is tensor n.output + k: named
    // after the layer with "_k", so that the names stay apart (ONNX's graph outputs must).
    const auto it = std::find_if(nodes_.begin(), nodes_.end(),
                                 [&](const Node& n) { return t >= n.output && t < n.output + n.output_count; });
    if (it == nodes_.end()) {
      out.push_back(input_layers_[static_cast<size_t>(t)]->name());
      continue;
    }
    out.push_back(it->layer->name());
    if (t != it->output) out.back().append("_").append(std::to_string(t - it->output));
  }
  return out;
}

std::optional<Shape> Model::input_shape() const {
  if (built_ || !sequential_) return shapes_.at(static_cast<size_t>(input_ids_.at(0)));
  if (!layers_.empty()) return layers_.front()->declared_input_shape();
  return std::nullopt;
}

std::vector<Shape> Model::input_shapes() const {
  if (sequential_ && !built_) {
    if (auto s = input_shape()) return {*s};
    return {};
  }
  std::vector<Shape> out;
  for (int i : input_ids_) out.push_back(shapes_[static_cast<size_t>(i)]);
  return out;
}

std::vector<Shape> Model::output_shapes() const {
  if (sequential_ && !built_) {
    auto shape = input_shape();
    if (!shape)
      throw ValueError("model '" + name_ + "': the input shape is not known yet (build it or declare input_shape)");
    return {chain_output_shape(*shape)};
  }
  std::vector<Shape> out;
  for (int i : output_ids_) out.push_back(shapes_[static_cast<size_t>(i)]);
  return out;
}

Shape Model::output_shape() const { return output_shapes().at(0); }

// --- building ----------------------------------------------------------------------------------------

void Model::build(const Shape& input_shape) {
  if (!sequential_) {
    if (input_shapes().size() != 1 || input_shapes()[0] != input_shape)
      throw ShapeError("model '" + name_ + "' takes inputs of shape " + input_shapes().at(0).str() + ", not " +
                       input_shape.str());
    return;  // a Functional model is built when it is made
  }
  build_graph({input_shape}, default_generator(), /*top_level=*/true);
}

void Model::build_graph(const std::vector<Shape>& input_shapes, Generator& gen, bool top_level) {
  if (sequential_) {
    if (layers_.empty()) throw ValueError("Sequential.build: the model '" + name_ + "' has no layers");
    if (auto declared = layers_.front()->declared_input_shape(); declared && *declared != input_shapes.at(0))
      throw ShapeError("model '" + name_ + "' was declared with input shape " + declared->str() +
                       " but is built for " + input_shapes.at(0).str());
    make_chain();
  }
  if (input_shapes.size() != input_ids_.size())
    throw ValueError("model '" + name_ + "' has " + std::to_string(input_ids_.size()) + " inputs, built for " +
                     std::to_string(input_shapes.size()));
  if (top_level && memory_limit() > 0) {  // before any weight exists: a 10^12-weight Dense fails here
    MemoryEstimate weights = estimate_for(input_shapes, 0, /*training=*/true);
    weights.optimizer = 0;  // allocated at the first step, checked by fit
    check_memory(weights, "build");
  }
  for (size_t i = 0; i < input_ids_.size(); ++i) shapes_[static_cast<size_t>(input_ids_[i])] = input_shapes[i];
  std::unordered_map<const Layer*, bool> built_here;
  for (const Node& node : nodes_) {
    std::vector<Shape> in;
    for (int t : node.inputs) in.push_back(shapes_[static_cast<size_t>(t)]);
    Layer& l = *node.layer;
    // A Sequential (re)builds its layers, as Keras' build does; a graph builds each layer at its
    // first call and checks that later calls (a shared layer) fit the weights it has.
    if (sequential_ || !l.built()) {
      l.build_for(in, gen);
      built_here[&l] = true;
    } else {
      const auto specs = l.weight_specs_for(in);
      bool fits = specs.empty() || specs.size() == l.weights().size();
      for (size_t k = 0; fits && k < specs.size(); ++k) fits = specs[k].shape == l.weights()[k].value.shape();
      if (!fits)
        throw ShapeError("model '" + name_ + "': layer " + layer_text(l) + " is called again on input " +
                         (in.empty() ? std::string("()") : in[0].str()) + ", which does not fit the weights it has");
    }
    const std::vector<Shape> out = l.infer_shapes(in);
    if (out.size() != static_cast<size_t>(node.output_count))
      throw ValueError("model '" + name_ + "': layer " + layer_text(l) + " has " + std::to_string(out.size()) +
                       " outputs" +
                       (sequential_ ? "; a Sequential model's layers must have one (use the Functional API)"
                                    : ", the graph was recorded with " + std::to_string(node.output_count)));
    std::copy(out.begin(), out.end(), shapes_.begin() + node.output);
  }
  // As a layer, a model's weights are its layers' ("dense/kernel"), the same tensors.
  weights_.clear();
  for (const auto& l : layers_)
    for (const Weight& w : l->weights()) weights_.push_back({l->name() + "/" + w.name, w.value, w.trainable});
  built_ = true;
  if (top_level) pack_parameters();
}

// Moves every trainable weight into one flat buffer and gives each a gradient that is a view
// into a second one, 16-float aligned, so that the optimizer updates all parameters in one
// vectorized pass (and splits it evenly across threads). The gradients start lazily zeroed.
void Model::pack_parameters() {
  constexpr int64_t kAlign = 16;
  auto padded = [](int64_t n) { return (n + kAlign - 1) / kAlign * kAlign; };
  const std::vector<Tensor> params = trainable_weights();
  packed_ = params;
  int64_t total = 0;
  for (const Tensor& p : params) total += padded(p.numel());
  if (total == 0) return;
  Tensor values = Tensor::zeros({total}), grads = Tensor::zeros({total});
  int64_t offset = 0;
  for (const Tensor& p : params) {
    std::copy(p.data(), p.data() + p.numel(), values.data() + offset);
    TensorImpl& impl = *p.impl();
    impl.storage = values.impl()->storage;
    impl.data = values.impl()->data + offset;
    impl.grad = grads.view(offset, p.shape());
    impl.grad_stale = true;
    offset += padded(p.numel());
  }
}

// A frozen weight does not require grad, so backward leaves it alone; the packed buffer holds the
// trainable ones only. When the set changed since the last pack (set_trainable between fits),
// they are packed again and the optimizer carries its state over for the weights still trained.
void Model::sync_trainable() {
  const std::vector<Tensor> params = trainable_weights();
  std::set<const TensorImpl*> on;
  for (const Tensor& p : params) on.insert(p.impl());
  for (const auto& named : named_weights()) {
    Tensor w = named.second;
    const bool train = on.count(w.impl()) > 0;
    if (w.requires_grad() == train) continue;
    if (!train) w.zero_grad(/*set_to_none=*/true);
    w.requires_grad_(train);
  }
  bool same = params.size() == packed_.size();
  for (size_t i = 0; same && i < params.size(); ++i) same = params[i].impl() == packed_[i].impl();
  if (same) return;
  const std::vector<Tensor> before = packed_;
  pack_parameters();
  if (optimizer_) optimizer_->carry_state(before, params);
}

void Model::ensure_built(const std::vector<Shape>& sample_shapes, const char* where) {
  if (!built_) {
    if (sample_shapes.size() != 1)
      throw ValueError(std::string(where) + ": the data has " + std::to_string(sample_shapes.size()) +
                       " inputs, model '" + name_ + "' takes 1");
    build(sample_shapes[0]);
    sync_trainable();
    return;
  }
  sync_trainable();
  const std::vector<Shape> want = input_shapes();
  if (sample_shapes.size() != want.size())
    throw ValueError(std::string(where) + ": the data has " + std::to_string(sample_shapes.size()) + " input" +
                     (sample_shapes.size() == 1 ? "" : "s") + ", model '" + name_ + "' takes " +
                     std::to_string(want.size()));
  for (size_t i = 0; i < want.size(); ++i)
    if (sample_shapes[i] != want[i])
      throw ShapeError(std::string(where) + ": the data has samples of shape " + sample_shapes[i].str() +
                       (want.size() > 1 ? " for input '" + input_names()[i] + "'" : "") + ", model '" + name_ +
                       "' takes " + want[i].str());
}

// --- the forward pass ----------------------------------------------------------------------------------

Layer::Outputs Model::run(std::span<const Tensor> inputs, std::span<const Tensor> masks, bool training,
                         const OutputHook* hook) {
  std::vector<Tensor> values(shapes_.size()), value_masks(shapes_.size());
  // How many nodes still read each value; a value is dropped after its last reader (an output
  // is kept), so that inference holds only the values still needed.
  std::vector<int> readers(shapes_.size(), 0);
  for (const Node& n : nodes_)
    for (int t : n.inputs) ++readers[static_cast<size_t>(t)];
  for (int t : output_ids_) ++readers[static_cast<size_t>(t)];
  auto drop = [&](int t) {
    values[static_cast<size_t>(t)] = Tensor();
    value_masks[static_cast<size_t>(t)] = Tensor();
  };
  for (size_t i = 0; i < input_ids_.size(); ++i) {
    values[static_cast<size_t>(input_ids_[i])] = inputs[i];
    if (i < masks.size()) value_masks[static_cast<size_t>(input_ids_[i])] = masks[i];
  }
  std::vector<Tensor> in, in_masks;
  activity_losses_.clear();
  for (const Node& n : nodes_) {
    in.clear();
    in_masks.clear();
    for (int t : n.inputs) {
      in.push_back(values[static_cast<size_t>(t)]);
      in_masks.push_back(value_masks[static_cast<size_t>(t)]);
    }
    Outputs out = n.layer->call_all(in, in_masks, training);
    if (out.values.size() != static_cast<size_t>(n.output_count))
      throw ValueError("model '" + name_ + "': layer " + layer_text(*n.layer) + " returned " +
                       std::to_string(out.values.size()) + " outputs, it declares " + std::to_string(n.output_count));
    if (hook && !out.values.empty()) {
      const Shape before = out.values[0].shape();
      (*hook)(*n.layer, out.values[0]);
      if (out.values[0].shape() != before)
        throw ShapeError("model '" + name_ + "': a forward hook replaced the output " + before.str() + " of layer " +
                         layer_text(*n.layer) + " by one of shape " + out.values[0].shape().str());
    }
    for (int k = 0; k < n.output_count; ++k) {
      const int t = n.output + k;
      values[static_cast<size_t>(t)] = std::move(out.values[static_cast<size_t>(k)]);
      if (static_cast<size_t>(k) < out.masks.size()) value_masks[static_cast<size_t>(t)] = std::move(out.masks[static_cast<size_t>(k)]);
      if (readers[static_cast<size_t>(t)] == 0) drop(t);  // an output nothing reads (an unused LSTM state)
    }
    // Keras' add_loss, then activity_regularizer(output) / batch size, on every call, training or not.
    for (Tensor& t : n.layer->take_losses()) activity_losses_.push_back(std::move(t));
    if (const Tensor& y = values[static_cast<size_t>(n.output)]; y.defined())
      if (const auto& r = n.layer->activity_regularizer(); r && y.rank() > 0 && y.dim(0) > 0)
        activity_losses_.push_back((*r)(y) / static_cast<float>(y.dim(0)));
    for (int t : n.inputs)
      if (--readers[static_cast<size_t>(t)] == 0) drop(t);
  }
  Outputs result;
  for (int t : output_ids_) {
    result.values.push_back(values[static_cast<size_t>(t)]);
    result.masks.push_back(value_masks[static_cast<size_t>(t)]);
  }
  return result;
}

std::vector<Tensor> Model::call(const std::vector<Tensor>& inputs, bool training) {
  return call_with_hook(inputs, {}, training);
}

std::vector<Tensor> Model::call_with_hook(const std::vector<Tensor>& inputs, const OutputHook& hook, bool training) {
  std::vector<Shape> shapes;
  for (size_t i = 0; i < inputs.size(); ++i) {
    if (inputs[i].rank() < 1)
      throw ShapeError("model '" + name_ + "': input " + std::to_string(i) + " must have a batch axis, got " +
                       inputs[i].shape().str());
    shapes.push_back(sample_shape_of(inputs[i]));
  }
  ensure_built(shapes, "call");
  return run(inputs, {}, training, hook ? &hook : nullptr).values;
}

Tensor Model::call(const Tensor& x, bool training) {
  if (output_ids_.size() > 1)
    throw ValueError("model '" + name_ + "' has " + std::to_string(output_ids_.size()) +
                     " outputs; call it with a list of inputs to get them all");
  return call(std::vector<Tensor>{x}, training).at(0);
}

// --- as a layer ---------------------------------------------------------------------------------------

void Model::build(const Shape& input_shape, Generator& gen) { build_for(std::span<const Shape>(&input_shape, 1), gen); }

void Model::build_for(std::span<const Shape> input_shapes, Generator& gen) {
  const std::vector<Shape> shapes(input_shapes.begin(), input_shapes.end());
  if (!sequential_ && built_) {
    if (shapes != this->input_shapes())
      throw ShapeError("model '" + name_ + "' is called on inputs of another shape than it was made for");
    return;
  }
  build_graph(shapes, gen, /*top_level=*/false);
}

std::vector<Layer::WeightSpec> Model::weight_specs_for(std::span<const Shape> input_shapes) const {
  std::vector<WeightSpec> specs;
  if (built_) {
    for (const Weight& w : weights_) specs.push_back({w.name, w.value.shape(), Initializer::zeros(), w.trainable});
    return specs;
  }
  // An unbuilt Sequential: its layers' specs along the chain.
  Shape s = input_shapes.empty() ? Shape() : input_shapes[0];
  for (const auto& l : layers_) {
    for (WeightSpec w : l->weight_specs(s)) {
      w.name = l->name() + "/" + w.name;
      specs.push_back(std::move(w));
    }
    s = l->output_shape(s);
  }
  return specs;
}

std::vector<Shape> Model::infer_shapes(std::span<const Shape> input_shapes) const {
  if (sequential_) {
    if (input_shapes.size() != 1)
      throw ValueError("Sequential '" + name_ + "' takes one input, got " + std::to_string(input_shapes.size()));
    return {chain_output_shape(input_shapes[0])};
  }
  const std::vector<Shape> want = this->input_shapes();
  if (std::vector<Shape>(input_shapes.begin(), input_shapes.end()) != want) {
    std::string got;
    for (const Shape& s : input_shapes) got += (got.empty() ? "" : ", ") + s.str();
    std::string expected;
    for (const Shape& s : want) expected += (expected.empty() ? "" : ", ") + s.str();
    throw ShapeError("model '" + name_ + "' takes inputs " + expected + ", called on " + got);
  }
  return output_shapes();
}

Shape Model::infer_shape(std::span<const Shape> input_shapes) const {
  std::vector<Shape> out = infer_shapes(input_shapes);
  if (out.size() > 1)
    throw ValueError("model '" + name_ + "' has " + std::to_string(out.size()) +
                     " outputs; call it in a graph to get them all (KerasTensor::outputs)");
  return out.at(0);
}

Shape Model::output_shape(const Shape& input_shape) const { return infer_shape(std::span<const Shape>(&input_shape, 1)); }

Tensor Model::forward(std::span<const Tensor> inputs, bool training) { return run(inputs, {}, training).values.at(0); }

Layer::Outputs Model::call_all(std::span<const Tensor> inputs, std::span<const Tensor> masks, bool training) {
  return run(inputs, masks, training);
}

std::vector<std::pair<std::string, Layer*>> Model::leaf_layers() const {
  std::vector<std::pair<std::string, Layer*>> out;
  for (const auto& l : layers_) {
    if (const auto* m = dynamic_cast<const Model*>(l.get())) {
      for (auto& [path, leaf] : m->leaf_layers()) out.emplace_back(l->name() + "/" + path, leaf);
    } else {
      out.emplace_back(l->name(), l.get());
    }
  }
  return out;
}

// --- weights --------------------------------------------------------------------------------------------

std::vector<Tensor> Model::trainable_weights() const {
  std::vector<Tensor> out;
  if (!trainable_) return out;
  for (const auto& l : layers_) {
    const std::vector<bool> mask = l->trainable_mask();
    for (size_t i = 0; i < mask.size(); ++i)
      if (mask[i]) out.push_back(l->weights()[i].value);
  }
  return out;
}

std::vector<bool> Model::trainable_mask() const {
  std::vector<bool> mask;
  for (const auto& l : layers_) {
    const std::vector<bool> m = l->trainable_mask();
    mask.insert(mask.end(), m.begin(), m.end());
  }
  if (!trainable_) mask.assign(mask.size(), false);
  return mask;
}

void Model::set_trainable(bool on) {
  trainable_ = on;
  for (const auto& l : layers_) l->set_trainable(on);
}

Tensor Model::regularization_loss() const {
  Tensor total;
  auto plus = [&](const Tensor& t) {
    if (t.defined()) total = total.defined() ? add(total, t) : t;
  };
  for (const auto& l : layers_)  // a nested model adds its own activity penalties, frozen or not
    if (trainable_ || dynamic_cast<const Model*>(l.get())) plus(l->regularization_loss());
  for (const Tensor& t : activity_losses_) plus(t);
  return total;
}

void Model::apply_constraints() {
  if (!trainable_) return;
  for (const auto& l : layers_) l->apply_constraints();
}

std::vector<std::pair<std::string, Tensor>> Model::named_weights() const {
  std::vector<std::pair<std::string, Tensor>> out;
  for (const auto& l : layers_)
    for (const auto& w : l->weights()) out.emplace_back(l->name() + "/" + w.name, w.value);
  return out;
}

std::vector<Tensor> Model::get_weights() const {
  std::vector<Tensor> out;
  for (const auto& [name, w] : named_weights()) out.push_back(w.clone());
  return out;
}

void Model::set_weights(const std::vector<Tensor>& values) {
  const auto weights = named_weights();
  if (values.size() != weights.size())
    throw ValueError("set_weights: model '" + name_ + "' has " + std::to_string(weights.size()) + " weights, given " +
                     std::to_string(values.size()) + " (get_weights() lists them in order)");
  for (size_t i = 0; i < values.size(); ++i)  // every shape first: a mismatch changes nothing
    if (!values[i].defined() || values[i].shape() != weights[i].second.shape())
      throw ShapeError("set_weights: weight " + std::to_string(i) + " ('" + weights[i].first + "') has shape " +
                       weights[i].second.shape().str() + ", given " +
                       (values[i].defined() ? values[i].shape().str() : std::string("an undefined tensor")));
  for (size_t i = 0; i < values.size(); ++i) {
    Tensor w = weights[i].second;
    std::copy(values[i].data(), values[i].data() + values[i].numel(), w.data());
  }
}

}  // namespace lamina
