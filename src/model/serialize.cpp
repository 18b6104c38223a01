// Model JSON (Keras' to_json form, read in both its Keras 2 and Keras 3 shapes) and model
// files: safetensors with the config in __metadata__, loaded all-or-nothing. Checkpoints, which
// add training state to a model file, are in checkpoint.cpp.
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <iostream>
#include <tuple>

#include "allocator.hpp"
#include "lamina/io.hpp"
#include "lamina/model.hpp"
#include "layers/keras_config.hpp"

namespace lamina {

namespace {

constexpr int kFormatVersion = 1;

Json shape_with_none(const Shape& s) {
  Json j = Json::array({nullptr});
  for (int64_t d : s) j.push_back(d);
  return j;
}

}  // namespace

namespace {

// A layer's entry in a model config, Keras 3's form.
Json layer_entry(const Layer& l) {
  const bool model = dynamic_cast<const Model*>(&l) != nullptr;
  return {{"module", model ? "keras" : "keras.layers"},
          {"class_name", l.class_name()},
          {"config", l.config()},
          {"registered_name", model ? Json(l.class_name()) : Json()}};
}

// A reference to a layer's output in Keras JSON: (layer name, node index, tensor index).
struct Ref {
  std::string layer;
  int64_t node = 0, tensor = 0;
  bool operator<(const Ref& o) const { return std::tie(layer, node, tensor) < std::tie(o.layer, o.node, o.tensor); }
};

// [name, node, tensor] (Keras 2's references may carry a fourth element, the call's kwargs).
Ref ref_of(const Json& j, const std::string& at) {
  if (!j.is_array() || j.size() < 3 || !j[0].is_string() || !j[1].is_number_integer() || !j[2].is_number_integer())
    throw ValueError(at + ": expected a reference [layer name, node index, tensor index], got " + j.dump().substr(0, 80));
  return {j[0].get<std::string>(), j[1].get<int64_t>(), j[2].get<int64_t>()};
}

// input_layers / output_layers: a list of references, or one reference (Keras 3, one tensor).
std::vector<Ref> refs_of(const Json& j, const std::string& at) {
  if (!j.is_array() || j.empty()) throw ValueError(at + ": expected a non-empty list of [layer name, node, tensor]");
  if (j[0].is_string()) return {ref_of(j, at)};
  std::vector<Ref> out;
  for (size_t i = 0; i < j.size(); ++i) out.push_back(ref_of(j[i], at + "[" + std::to_string(i) + "]"));
  return out;
}

// Keras 3's call arguments: every __keras_tensor__ in args, in order (a merge layer's list
// included), as references.
void collect_tensors(const Json& j, std::vector<Ref>& out, const std::string& at) {
  if (j.is_array()) {
    for (const Json& e : j) collect_tensors(e, out, at);
  } else if (j.is_object() && j.value("class_name", "") == "__keras_tensor__") {
    const Json& c = j.contains("config") ? j["config"] : Json();
    if (!c.is_object() || !c.contains("keras_history"))
      throw ValueError(at + ": a __keras_tensor__ without config.keras_history");
    out.push_back(ref_of(c["keras_history"], at + ".keras_history"));
  }
}

// One inbound node's input references, in either Keras form.
std::vector<Ref> node_inputs(const Json& node, const std::string& at) {
  std::vector<Ref> refs;
  if (node.is_object()) {  // Keras 3: {"args": [...], "kwargs": {...}}
    collect_tensors(node.value("args", Json::array()), refs, at + ".args");
    // A recurrent layer's initial_state comes after its input, as Lamina's call takes it.
    if (const Json kwargs = node.value("kwargs", Json::object()); kwargs.is_object() && kwargs.contains("initial_state"))
      collect_tensors(kwargs["initial_state"], refs, at + ".kwargs.initial_state");
  } else if (node.is_array()) {  // Keras 2: [[name, node, tensor, kwargs], ...]
    for (size_t k = 0; k < node.size(); ++k) refs.push_back(ref_of(node[k], at + "[" + std::to_string(k) + "]"));
  } else {
    throw ValueError(at + ": expected an inbound node (a list, or an object with args), got " + node.dump().substr(0, 60));
  }
  if (refs.empty()) throw ValueError(at + ": the call has no input tensors");
  return refs;
}

std::string where_layer(size_t i, const std::string& cls) {
  return "config.layers[" + std::to_string(i) + "] (" + cls + ")";
}

}  // namespace

Json Model::config() const {
  Json config = {{"name", name_}, {"trainable", trainable_}, {"dtype", "float32"}};
  Json layers = Json::array();
  if (sequential_) {
    for (const auto& l : layers_) layers.push_back(layer_entry(*l));
    config["layers"] = layers;
    if (auto shape = input_shape()) config["build_config"] = {{"input_shape", shape_with_none(*shape)}};
    return config;
  }
  // Each tensor as Keras references it: the layer that made it and which of its calls.
  std::vector<Json> history(shapes_.size());
  for (size_t i = 0; i < input_ids_.size(); ++i)
    history[static_cast<size_t>(input_ids_[i])] = Json::array({input_layers_[i]->name(), 0, 0});
  std::map<const Layer*, Json> inbound;
  for (const Node& n : nodes_) {
    Json& calls = inbound[n.layer.get()];
    if (calls.is_null()) calls = Json::array();
    Json args = Json::array();
    for (int t : n.inputs)
      args.push_back({{"class_name", "__keras_tensor__"},
                      {"config", {{"shape", shape_with_none(shapes_[static_cast<size_t>(t)])},
                                  {"dtype", "float32"},
                                  {"keras_history", history[static_cast<size_t>(t)]}}}});
    // A one-input call passes its tensor; a merge, the list of them.
    calls.push_back({{"args", n.inputs.size() == 1 ? Json::array({args[0]}) : Json::array({args})}, {"kwargs", Json::object()}});
    for (int k = 0; k < n.output_count; ++k)
      history[static_cast<size_t>(n.output + k)] = Json::array({n.layer->name(), calls.size() - 1, k});
  }
  for (const auto& l : layers_) {
    Json entry = layer_entry(*l);
    entry["name"] = l->name();
    const auto it = inbound.find(l.get());
    entry["inbound_nodes"] = it == inbound.end() ? Json::array() : it->second;
    layers.push_back(entry);
  }
  config["layers"] = layers;
  Json ins = Json::array(), outs = Json::array();
  for (int t : input_ids_) ins.push_back(history[static_cast<size_t>(t)]);
  for (int t : output_ids_) outs.push_back(history[static_cast<size_t>(t)]);
  config["input_layers"] = ins;
  config["output_layers"] = outs;
  return config;
}

Json Model::to_json() const {
  if (sequential_) return {{"module", "keras"}, {"class_name", "Sequential"}, {"config", config()}, {"registered_name", nullptr}};
  return {{"module", "keras.src.models.functional"},
          {"class_name", "Functional"},
          {"config", config()},
          {"registered_name", "Functional"}};
}

Model Model::from_json(const Json& j) {
  // Errors name the JSON path from the model's root ("config.layers[1] (Dense)"); callers prefix
  // the file and where the model sits in it. nlohmann's own exceptions (a value of the wrong JSON
  // type: "name": 5) become ValueErrors.
  check_json_depth(j, "model JSON");
  try {
    return from_json_unchecked(j);
  } catch (const Json::exception& e) {
    throw ValueError("model JSON: " + json_error_text(e));
  }
}

namespace {

Model sequential_from_config(const Json& config);
Model functional_from_config(const Json& config);

}  // namespace

Model Model::from_json_unchecked(const Json& j) {
  if (!j.is_object()) throw ValueError("expected a model object, got " + std::string(j.type_name()));
  const Json& cls_json = j.contains("class_name") ? j["class_name"] : Json();
  const std::string cls = cls_json.is_string() ? cls_json.get<std::string>() : cls_json.dump();
  if (cls != "Sequential" && cls != "Functional" && cls != "Model")
    throw ValueError("class_name: '" + cls + "'; a model is Sequential, Functional or Model");
  if (!j.contains("config")) throw ValueError("config: missing");
  return cls == "Sequential" ? sequential_from_config(j["config"]) : functional_from_config(j["config"]);
}

std::shared_ptr<Layer> Model::from_config(const Json& config) {
  return std::make_shared<Model>(functional_from_config(config));
}

std::shared_ptr<Layer> Sequential::from_config(const Json& config) {
  return std::make_shared<Sequential>(sequential_from_config(config));
}

namespace {

// What a model's own config holds beside its layers: "trainable" (false freezes every layer, as
// Keras), and no key that Lamina does not read (the same check as every layer's).
void model_config_done(Model& model, const Json& config, const char* cls) {
  const std::string at = std::string(cls) + " '" + model.name() + "'";
  if (config.contains("trainable") && !config["trainable"].is_null()) {
    if (!config["trainable"].is_boolean())
      throw ValueError(at + ": 'trainable' must be true or false, got " + config["trainable"].dump());
    if (!config["trainable"].get<bool>()) model.set_trainable(false);
  }
  detail::check_config_keys(model, config, at);
}

Model sequential_from_config(const Json& config) {
  // Keras 2.0-2.2 wrote the layer list as the config itself.
  const Json& layers = config.is_array() ? config : config.value("layers", Json());
  if (!layers.is_array() || layers.empty()) throw ValueError("config.layers: expected a non-empty list of layers");
  Sequential model(config.is_object() ? config.value("name", "sequential") : "sequential");
  for (size_t i = 0; i < layers.size(); ++i) {
    const Json& entry = layers[i];
    if (!entry.is_object() || !entry.contains("class_name") || !entry["class_name"].is_string())
      throw ValueError("config.layers[" + std::to_string(i) + "]: expected a layer object with a class_name, got " +
                       entry.dump().substr(0, 60));
    const std::string cls = entry["class_name"].get<std::string>();
    const Json c = entry.value("config", Json::object());
    try {
      model.add(layer_from_config(cls, c));
    } catch (const Error& e) {
      throw ValueError(where_layer(i, cls) + ": " + e.what());
    } catch (const Json::exception& e) {  // a config value of the wrong JSON type
      throw ValueError(where_layer(i, cls) + ": " + json_error_text(e));
    }
  }
  std::optional<Shape> shape = model.input_shape();
  // Keras 3's build_config.input_shape includes the batch entry ([null, 784]).
  if (!shape && config.is_object() && config.contains("build_config") && config["build_config"].is_object() &&
      config["build_config"].contains("input_shape") && !config["build_config"]["input_shape"].is_null())
    shape = input_shape_from_config({{"batch_input_shape", config["build_config"]["input_shape"]}});
  if (shape) {
    try {
      model.build(*shape);
    } catch (const ShapeError& e) {  // layers that do not fit together: name the layer's place too
      const std::string msg = e.what();
      for (size_t i = 0; i < model.layers().size(); ++i)
        if (msg.find(" '" + model.layers()[i]->name() + "' ") != std::string::npos)
          throw ShapeError("config.layers[" + std::to_string(i) + "]: " + msg);
      throw;
    }
  }
  if (config.is_object()) model_config_done(model, config, "Sequential");
  return model;
}

// A Functional config: the layers from the registry, then their calls replayed in an order that
// has every call's inputs ready (Keras lists layers in a topological order, but a shared layer's
// later calls may need layers listed after it), then Model(inputs, outputs).
Model functional_from_config(const Json& config) {
  if (!config.is_object()) throw ValueError("config: expected an object, got " + std::string(config.type_name()));
  const Json& layers = config.value("layers", Json());
  if (!layers.is_array() || layers.empty()) throw ValueError("config.layers: expected a non-empty list of layers");
  struct Entry {
    std::string cls, name;
    std::shared_ptr<Layer> layer;
    std::vector<std::vector<Ref>> calls;
    size_t done = 0;  // calls replayed so far
  };
  std::vector<Entry> entries;
  std::map<std::string, size_t> by_name;
  for (size_t i = 0; i < layers.size(); ++i) {
    const Json& e = layers[i];
    if (!e.is_object() || !e.contains("class_name") || !e["class_name"].is_string())
      throw ValueError("config.layers[" + std::to_string(i) + "]: expected a layer object with a class_name, got " +
                       e.dump().substr(0, 60));
    Entry entry;
    entry.cls = e["class_name"].get<std::string>();
    const std::string at = where_layer(i, entry.cls);
    const Json c = e.value("config", Json::object());
    try {
      entry.layer = layer_from_config(entry.cls, c);
    } catch (const Error& err) {
      throw ValueError(at + ": " + err.what());
    } catch (const Json::exception& err) {
      throw ValueError(at + ": " + json_error_text(err));
    }
    entry.name = e.contains("name") && e["name"].is_string() ? e["name"].get<std::string>() : entry.layer->name();
    if (entry.name.empty()) throw ValueError(at + ": the layer has no name, so no call can refer to it");
    entry.layer->set_name(entry.name);
    if (!by_name.emplace(entry.name, i).second)
      throw ValueError(at + ": a second layer named '" + entry.name + "'");
    const Json& inbound = e.value("inbound_nodes", Json::array());
    if (!inbound.is_array()) throw ValueError(at + ".inbound_nodes: expected a list");
    for (size_t k = 0; k < inbound.size(); ++k)
      entry.calls.push_back(node_inputs(inbound[k], at + ".inbound_nodes[" + std::to_string(k) + "]"));
    entries.push_back(std::move(entry));
  }
  std::map<Ref, KerasTensor> tensors;
  for (Entry& e : entries)
    if (e.cls == "InputLayer") {
      if (!e.calls.empty()) throw ValueError("config.layers: InputLayer '" + e.name + "' is called on inputs");
      tensors[{e.name, 0, 0}] = KerasTensor(std::make_shared<const KerasTensor::Call>(
          KerasTensor::Call{e.layer, {}, {*e.layer->declared_input_shape()}}));
    }
  for (bool progress = true; progress;) {
    progress = false;
    for (size_t i = 0; i < entries.size(); ++i) {
      Entry& e = entries[i];
      while (e.done < e.calls.size()) {
        std::vector<KerasTensor> inputs;
        for (const Ref& r : e.calls[e.done]) {
          auto it = tensors.find(r);
          if (it == tensors.end()) break;
          inputs.push_back(it->second);
        }
        if (inputs.size() < e.calls[e.done].size()) break;  // an input not made yet
        try {
          const KerasTensor y = (*e.layer)(inputs);
          for (size_t k = 0; k < y.output_count(); ++k)
            tensors[{e.name, static_cast<int64_t>(e.done), static_cast<int64_t>(k)}] = y.output(k);
        } catch (const Error& err) {
          throw ValueError(where_layer(i, e.cls) + ".inbound_nodes[" + std::to_string(e.done) + "]: " + err.what());
        }
        ++e.done;
        progress = true;
      }
    }
  }
  for (size_t i = 0; i < entries.size(); ++i) {
    const Entry& e = entries[i];
    if (e.done == e.calls.size()) continue;
    for (const Ref& r : e.calls[e.done])
      if (!tensors.count(r)) {
        const std::string what = by_name.count(r.layer) ? "call " + std::to_string(r.node) + " of layer '" + r.layer + "'"
                                                        : "layer '" + r.layer + "', which the config does not have";
        throw ValueError(where_layer(i, e.cls) + ".inbound_nodes[" + std::to_string(e.done) + "]: its input is " +
                         what + (by_name.count(r.layer) ? " (that call never happens, or the graph has a cycle)" : ""));
      }
  }
  auto tensors_of = [&](const char* key) {
    std::vector<KerasTensor> out;
    for (const Ref& r : refs_of(config.value(key, Json()), std::string("config.") + key)) {
      auto it = tensors.find(r);
      if (it == tensors.end() && tensors.count({r.layer, r.node, 0}))
        throw ValueError(std::string("config.") + key + ": layer '" + r.layer + "' has no output " +
                         std::to_string(r.tensor));
      if (it == tensors.end())
        throw ValueError(std::string("config.") + key + ": layer '" + r.layer + "' call " + std::to_string(r.node) +
                         " is not in the graph");
      out.push_back(it->second);
    }
    return out;
  };
  const std::vector<KerasTensor> inputs = tensors_of("input_layers"), outputs = tensors_of("output_layers");
  Model model(inputs, outputs, config.value("name", "functional"));
  model_config_done(model, config, "Functional");
  return model;
}

}  // namespace

std::map<std::string, std::string> Model::file_metadata(const std::map<std::string, std::string>& extra) const {
  std::map<std::string, std::string> meta = extra;
  meta["format"] = "lamina";
  meta["format_version"] = std::to_string(kFormatVersion);
  meta["model_config"] = to_json().dump();
  if (text_vectorization_) meta["text_vectorization"] = text_vectorization_->config().dump();
  if (compiled()) {
    Json metrics = Json::array();
    for (const std::string& m : metric_names()) metrics.push_back(m);
    Json compile = {{"optimizer", {{"class_name", optimizer_->name()}, {"config", optimizer_->config()}}},
                    {"loss", losses_[0].config()},
                    {"metrics", metrics}};
    if (losses_.size() > 1) {  // Keras: a list of losses and of loss weights, one per output
      compile["loss"] = Json::array();
      for (const Loss& l : losses_) compile["loss"].push_back(l.config());
    }
    // Keras writes null for none; the weights scale the loss evaluate reports (a VAE's 784).
    if (losses_.size() > 1 || std::any_of(loss_weights_.begin(), loss_weights_.end(), [](double w) { return w != 1.0; }))
      compile["loss_weights"] = loss_weights_;
    meta["compile_config"] = compile.dump();
  }
  return meta;
}

void Model::save(const std::string& path, const std::map<std::string, std::string>& extra_metadata) const {
  if (!built()) throw ValueError("save: model '" + name_ + "' is not built yet (fit it, or call build(input_shape))");
  io::save_safetensors(path, named_weights(), file_metadata(extra_metadata));
}

namespace {

Sequential sequential_in(Model model, const std::string& path) {
  if (!model.is_sequential())
    throw IoError(path + ": holds a " + model.class_name() + " model, not a Sequential one; load it with lamina::Model");
  return Sequential(std::move(model));
}

}  // namespace

Sequential Sequential::load(const std::string& path) { return sequential_in(Model::load(path), path); }

Sequential Sequential::load_bytes(std::string_view bytes, const std::string& name) {
  return sequential_in(Model::load_bytes(bytes, name), name);
}

Sequential Sequential::load_checkpoint(const std::string& path) {
  return sequential_in(Model::load_checkpoint(path), path);
}

Model Model::load(const std::string& path) { return load_bytes(io::read_file(path), path); }

Model Model::load_bytes(std::string_view bytes, const std::string& path) {
  return from_file(io::load_safetensors_bytes(bytes, path), path);
}

Model Model::from_file(const io::SafetensorsFile& file, const std::string& path) {
  auto meta = [&](const std::string& key) -> const std::string& {
    auto it = file.metadata.find(key);
    if (it == file.metadata.end())
      throw IoError(path + ": __metadata__ has no '" + key + "'; not a Lamina model file (weights only?)");
    return it->second;
  };
  if (meta("format") != "lamina") throw IoError(path + ": __metadata__.format is '" + meta("format") + "', expected 'lamina'");
  const std::string& version = meta("format_version");
  char* end = nullptr;
  const long v = std::strtol(version.c_str(), &end, 10);
  if (end == version.c_str() || *end != '\0' || v < 1)
    throw IoError(path + ": __metadata__.format_version '" + version + "' is not a positive integer");
  if (v > kFormatVersion)
    throw IoError(path + ": written in model format version " + version + " by a newer Lamina; this build reads up to " +
                  std::to_string(kFormatVersion));
  const Json config = parse_json<IoError>(meta("model_config"), path + ": __metadata__.model_config is not valid JSON");
  // The config is built under a budget: weights, the packed parameters and their gradients
  // (3x), plus slack. A config claiming far more weights than the file holds (a corrupt or
  // hostile one: Dense units 1e12) then fails here, before allocating them.
  uint64_t file_bytes = 0;
  for (const auto& [name, t] : file.tensors) file_bytes += static_cast<uint64_t>(t.numel()) * sizeof(float);
  Model model("model");
  try {
    detail::StorageBudget budget(3 * file_bytes + (size_t{1} << 20) + 256 * file.tensors.size());
    model = from_json(config);
  } catch (const detail::StorageBudgetExceeded&) {
    throw IoError(path + ": the model config declares more weights than the file's " + std::to_string(file_bytes) +
                  " bytes of tensors hold; the file is corrupt or truncated");
  } catch (const Error& e) {  // ValueError, ShapeError (a layer that cannot be built for its input)
    throw IoError(path + ": __metadata__.model_config: " + e.what());
  }
  if (!model.built()) throw IoError(path + ": the model config declares no input shape, so its weights cannot be placed");

  // Check every tensor before touching any weight: nothing is loaded half-way.
  auto weights = model.named_weights();
  std::map<std::string, const Tensor*> in_file;
  for (const auto& [name, t] : file.tensors) in_file[name] = &t;
  for (const auto& [name, w] : weights) {
    auto it = in_file.find(name);
    if (it == in_file.end()) throw IoError(path + ": tensor '" + name + "' is missing");
    if (it->second->shape() != w.shape())
      throw IoError(path + ": tensor '" + name + "' has shape " + it->second->shape().str() + ", the config says " +
                    w.shape().str());
    const Tensor& t = *it->second;
    for (int64_t k = 0; k < t.numel(); ++k)
      if (!std::isfinite(t.data()[k]))
        throw IoError(path + ": tensor '" + name + "' holds a non-finite value (" + std::to_string(t.data()[k]) +
                      ") at element " + std::to_string(k) + " of " + t.shape().str() +
                      "; a model file must hold finite weights (was it saved from a diverged run?)");
    in_file.erase(it);
  }
  // A checkpoint's optimizer state ("optimizer/<slot>/<weight>") is no weight of the model.
  if (file.metadata.count("checkpoint"))
    std::erase_if(in_file, [](const auto& entry) { return entry.first.starts_with("optimizer/"); });
  if (!in_file.empty()) throw IoError(path + ": tensor '" + in_file.begin()->first + "' belongs to no layer of the model");
  for (size_t i = 0; i < weights.size(); ++i) {
    for (const auto& [name, t] : file.tensors)
      if (name == weights[i].first) std::copy(t.data(), t.data() + t.numel(), weights[i].second.data());
  }
  if (auto it = file.metadata.find("text_vectorization"); it != file.metadata.end()) {
    const Json c = parse_json<IoError>(it->second, path + ": __metadata__.text_vectorization is not valid JSON");
    try {
      model.set_text_vectorization(TextVectorization::from_config(c));
    } catch (const Error& e) {
      throw IoError(path + ": __metadata__.text_vectorization: " + e.what());
    }
  }
  if (auto it = file.metadata.find("compile_config"); it != file.metadata.end()) {
    const Json c = parse_json<IoError>(it->second, path + ": __metadata__.compile_config");
    try {
      CompileOptions options;
      for (const auto& m : c.value("metrics", Json::array())) options.metrics.push_back(m.get<std::string>());
      std::vector<Loss> losses;
      // A loss of the user's own that this process has not registered: the model loads
      // uncompiled, as Keras loads one whose custom objects it does not know.
      auto unregistered = [](const Json& l) {
        if (!l.is_object() || !l.value("config", Json::object()).value("lamina_custom", false)) return false;
        try {
          Loss::from_config(l);
          return false;
        } catch (const ValueError&) {
          return true;
        }
      };
      const Json& lj = c.at("loss");
      if (lj.is_array() ? std::any_of(lj.begin(), lj.end(), unregistered) : unregistered(lj)) {
        std::cerr << "lamina: " << path << ": the model was compiled with a custom loss that is not registered here "
                  << "(lamina::register_loss); it is loaded uncompiled\n";
        return model;
      }
      if (lj.is_array())
        for (const Json& l : lj) losses.push_back(Loss::from_config(l));
      else
        losses.assign(model.num_outputs(), Loss::from_config(lj));
      for (const Json& w : c.value("loss_weights", Json::array())) options.loss_weights.push_back(w.get<double>());
      model.compile(optimizer_from_config(c.at("optimizer")), std::move(losses), std::move(options));
    } catch (const std::exception& e) {
      throw IoError(path + ": __metadata__.compile_config: " + json_error_text(e));
    }
  }
  return model;
}

Model Model::clone() const {
  Model copy = from_json(to_json());
  copy.set_weights(get_weights());
  copy.text_vectorization_ = text_vectorization_;  // immutable once set: sharing it is a copy
  if (compiled()) {
    Json opt = {{"class_name", optimizer_->name()}, {"config", optimizer_->config()}};
    copy.compile(optimizer_from_config(opt), losses_,
                 CompileOptions{.metrics = metric_specs_, .loss_weights = loss_weights_, .weighted_metrics = weighted_metric_specs_});
  }
  return copy;
}

}  // namespace lamina
