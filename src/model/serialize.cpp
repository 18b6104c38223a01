// Model JSON (Keras' to_json form, read in both its Keras 2 and Keras 3 shapes) and model
// files: safetensors with the config in __metadata__, loaded all-or-nothing. Checkpoints, which
// add training state to a model file, are in checkpoint.cpp.
#include <cmath>
#include <cstdint>
#include <cstdlib>

#include "allocator.hpp"
#include "lamina/io.hpp"
#include "lamina/model.hpp"

namespace lamina {

namespace {

constexpr int kFormatVersion = 1;

Json shape_with_none(const Shape& s) {
  Json j = Json::array({nullptr});
  for (int64_t d : s) j.push_back(d);
  return j;
}

}  // namespace

Json Sequential::to_json() const {
  Json layers = Json::array();
  for (const auto& l : layers_)
    layers.push_back({{"module", "keras.layers"}, {"class_name", l->class_name()}, {"config", l->config()},
                      {"registered_name", nullptr}});
  Json config = {{"name", name_}, {"trainable", true}, {"dtype", "float32"}, {"layers", layers}};
  if (auto shape = input_shape()) config["build_config"] = {{"input_shape", shape_with_none(*shape)}};
  return {{"module", "keras"}, {"class_name", "Sequential"}, {"config", config}, {"registered_name", nullptr}};
}

Sequential Sequential::from_json(const Json& j) {
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

Sequential Sequential::from_json_unchecked(const Json& j) {
  if (!j.is_object()) throw ValueError("expected a model object, got " + std::string(j.type_name()));
  const Json& cls_json = j.contains("class_name") ? j["class_name"] : Json();
  const std::string cls = cls_json.is_string() ? cls_json.get<std::string>() : cls_json.dump();
  if (cls != "Sequential")
    throw ValueError("class_name: '" + cls + "'; only Sequential models are supported");
  if (!j.contains("config")) throw ValueError("config: missing");
  const Json& config = j["config"];
  // Keras 2.0-2.2 wrote the layer list as the config itself.
  const Json& layers = config.is_array() ? config : config.value("layers", Json());
  if (!layers.is_array() || layers.empty()) throw ValueError("config.layers: expected a non-empty list of layers");
  Sequential model(config.is_object() ? config.value("name", "sequential") : "sequential");
  for (size_t i = 0; i < layers.size(); ++i) {
    const Json& entry = layers[i];
    if (!entry.is_object() || !entry.contains("class_name") || !entry["class_name"].is_string())
      throw ValueError("config.layers[" + std::to_string(i) + "]: expected a layer object with a class_name, got " +
                       entry.dump().substr(0, 60));
    const Json c = entry.value("config", Json::object());
    try {
      model.add(layer_from_config(entry["class_name"].get<std::string>(), c));
    } catch (const Error& e) {
      throw ValueError("config.layers[" + std::to_string(i) + "] (" + entry["class_name"].get<std::string>() +
                       "): " + e.what());
    } catch (const Json::exception& e) {  // a config value of the wrong JSON type
      throw ValueError("config.layers[" + std::to_string(i) + "] (" + entry["class_name"].get<std::string>() +
                       "): " + json_error_text(e));
    }
  }
  std::optional<Shape> shape = model.input_shape();
  // Keras 3's build_config.input_shape includes the batch entry ([null, 784]).
  if (!shape && config.is_object() && config.contains("build_config") && config["build_config"].is_object() &&
      config["build_config"].contains("input_shape"))
    shape = input_shape_from_config({{"batch_input_shape", config["build_config"]["input_shape"]}});
  if (shape) {
    try {
      model.build(*shape);
    } catch (const ShapeError& e) {  // layers that do not fit together: name the layer's place too
      const std::string msg = e.what();
      for (size_t i = 0; i < model.layers_.size(); ++i)
        if (msg.find(" '" + model.layers_[i]->name() + "' ") != std::string::npos)
          throw ShapeError("config.layers[" + std::to_string(i) + "]: " + msg);
      throw;
    }
  }
  return model;
}

std::map<std::string, std::string> Sequential::file_metadata(const std::map<std::string, std::string>& extra) const {
  std::map<std::string, std::string> meta = extra;
  meta["format"] = "lamina";
  meta["format_version"] = std::to_string(kFormatVersion);
  meta["model_config"] = to_json().dump();
  if (compiled()) {
    Json metrics = Json::array();
    for (const auto& m : metric_names_) metrics.push_back(m);
    const Json compile = {{"optimizer", {{"class_name", optimizer_->name()}, {"config", optimizer_->config()}}},
                          {"loss", loss_->config()},
                          {"metrics", metrics}};
    meta["compile_config"] = compile.dump();
  }
  return meta;
}

void Sequential::save(const std::string& path, const std::map<std::string, std::string>& extra_metadata) const {
  if (!built()) throw ValueError("save: model '" + name_ + "' is not built yet (fit it, or call build(input_shape))");
  io::save_safetensors(path, named_weights(), file_metadata(extra_metadata));
}

Sequential Sequential::load(const std::string& path) { return load_bytes(io::read_file(path), path); }

Sequential Sequential::load_bytes(std::string_view bytes, const std::string& path) {
  return from_file(io::load_safetensors_bytes(bytes, path), path);
}

Sequential Sequential::from_file(const io::SafetensorsFile& file, const std::string& path) {
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
  Sequential model;
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
  if (auto it = file.metadata.find("compile_config"); it != file.metadata.end()) {
    const Json c = parse_json<IoError>(it->second, path + ": __metadata__.compile_config");
    try {
      std::vector<std::string> metrics;
      for (const auto& m : c.value("metrics", Json::array())) metrics.push_back(m.get<std::string>());
      model.compile(optimizer_from_config(c.at("optimizer")), Loss::from_config(c.at("loss")), metrics);
    } catch (const std::exception& e) {
      throw IoError(path + ": __metadata__.compile_config: " + json_error_text(e));
    }
  }
  return model;
}

}  // namespace lamina
