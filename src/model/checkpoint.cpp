// Checkpoints: a model file plus what training needs to go on bit for bit — the optimizer's
// slots and step count, the generators training draws from, and where fit stands — in
// __metadata__.checkpoint (JSON) and "optimizer/<slot>/<weight>" tensors. Loaded all-or-nothing.
#include <zlib.h>

#include <climits>
#include <cstdio>

#include "lamina/io.hpp"
#include "lamina/model.hpp"

namespace lamina {

namespace {

constexpr int kCheckpointVersion = 1;
constexpr const char* kKey = "checkpoint";

std::string hex(uint64_t v, int digits = 16) {
  char buf[17];
  std::snprintf(buf, sizeof buf, "%0*llx", digits, static_cast<unsigned long long>(v));
  return buf;
}

// CRC-32 of the tensors' bytes in order: safetensors itself checks layout, not contents.
std::string checksum(const io::NamedTensors& tensors) {
  uLong crc = crc32(0L, Z_NULL, 0);
  for (const auto& [name, t] : tensors) {
    const auto* bytes = reinterpret_cast<const Bytef*>(t.data());
    for (size_t left = static_cast<size_t>(t.numel()) * sizeof(float); left > 0;) {
      const auto chunk = static_cast<uInt>(std::min<size_t>(left, UINT_MAX));
      crc = crc32(crc, bytes, chunk);
      bytes += chunk;
      left -= chunk;
    }
  }
  return hex(crc, 8);
}

Json state_json(const Generator::State& s) {
  Json j = Json::array();
  for (uint64_t w : s) j.push_back(hex(w));
  return j;
}

// Reads the checkpoint JSON; every error names the file and the field.
struct Reader {
  const std::string& path;

  [[noreturn]] void bad(const std::string& field, const std::string& what) const {
    throw IoError(path + ": __metadata__.checkpoint." + field + " " + what);
  }
  const Json& at(const Json& j, const std::string& key, const std::string& field) const {
    if (!j.is_object() || !j.contains(key)) bad(field, "is missing");
    return j[key];
  }
  int64_t count(const Json& j, const std::string& key) const {
    const Json& v = at(j, key, key);
    if (!v.is_number_integer() || v.get<int64_t>() < 0) bad(key, "is " + v.dump() + "; expected an integer >= 0");
    return v.get<int64_t>();
  }
  uint64_t word(const Json& v, const std::string& field) const {
    const std::string s = v.is_string() ? v.get<std::string>() : "";
    if (s.size() != 16 || s.find_first_not_of("0123456789abcdef") != std::string::npos)
      bad(field, "is " + v.dump() + "; expected 16 lower-case hex digits");
    return std::stoull(s, nullptr, 16);
  }
  Generator::State state(const Json& v, const std::string& field) const {
    if (!v.is_array() || v.size() != 4) bad(field, "is " + v.dump() + "; expected 4 hex words");
    Generator::State s{};
    for (size_t i = 0; i < 4; ++i) s[i] = word(v[i], field);
    if (s == Generator::State{}) bad(field, "is all zeros, which no generator reaches");
    return s;
  }
};

}  // namespace

void Model::save_checkpoint(const std::string& path,
                                 const std::map<std::string, std::string>& extra_metadata) const {
  if (!built())
    throw ValueError("save_checkpoint: model '" + name_ + "' is not built yet (fit it, or call build(input_shape))");
  if (!compiled())
    throw ValueError("save_checkpoint: model '" + name_ +
                     "' is not compiled; a checkpoint holds the optimizer's state (save() writes the model alone)");
  io::NamedTensors tensors = named_weights();
  std::vector<std::string> trainable;  // as trainable_weights() lists them (frozen layers left out)
  for (const auto& l : layers_) {
    const std::vector<bool> mask = l->trainable_mask();
    for (size_t i = 0; i < mask.size(); ++i)
      if (mask[i] && trainable_) trainable.push_back(l->name() + "/" + l->weights()[i].name);
  }
  const auto& slots = optimizer_->state();
  if (!slots.empty() && slots.size() != trainable.size())
    throw ValueError("save_checkpoint: the optimizer holds state for " + std::to_string(slots.size()) +
                     " parameters, model '" + name_ + "' has " + std::to_string(trainable.size()) +
                     " trainable weights (a layer's trainable flag changed since the last fit: fit again, or call "
                     "compile to start a fresh optimizer, before saving a checkpoint)");
  Json slot_names = Json::array();
  for (int k = 0; !slots.empty() && k < optimizer_->num_slots(); ++k) {
    slot_names.push_back(optimizer_->slot_name(k));
    for (size_t i = 0; i < trainable.size(); ++i)
      tensors.emplace_back("optimizer/" + slot_names.back().get<std::string>() + "/" + trainable[i],
                           slots[i][static_cast<size_t>(k)]);
  }
  Json layer_rng = Json::object();
  for (const auto& [path_name, l] : leaf_layers())
    if (const Generator* g = l->generator()) layer_rng[path_name] = state_json(g->state());
  // The running fit's callbacks that keep state (ReduceLROnPlateau, EarlyStopping), in order.
  Json callback_states = Json::array();
  for (const Callback* c : active_callbacks_)
    if (Json st = c->state(); !st.is_null()) callback_states.push_back({{"class", c->class_name()}, {"state", st}});
  const FitState& f = fit_state_;
  const Json checkpoint = {
      {"version", kCheckpointVersion},
      {"epoch", f.epoch},
      {"step", f.step},
      {"shuffle_seed", f.shuffle_seed ? Json(hex(*f.shuffle_seed)) : Json()},
      {"shuffled", f.shuffled},
      {"samples", f.samples},
      {"batch_size", f.batch_size},
      {"ranks", f.ranks},
      {"global_batch", f.global_batch},
      {"optimizer", {{"iterations", optimizer_->iterations()}, {"slots", slot_names}}},
      {"rng", {{"default", state_json(default_generator().state())}, {"layers", layer_rng}}},
      {"callbacks", callback_states},
      {"crc32", checksum(tensors)}};
  std::map<std::string, std::string> meta = file_metadata(extra_metadata);
  meta[kKey] = checkpoint.dump();
  io::save_safetensors(path, tensors, meta);
}

Model Model::load_checkpoint(const std::string& path) {
  return checkpoint_from([&] { return io::load_safetensors(path); }, path);
}

Model Model::load_checkpoint_bytes(std::string_view bytes, const std::string& name) {
  return checkpoint_from([&] { return io::load_safetensors_bytes(bytes, name); }, name);
}

Model Model::checkpoint_from(const std::function<io::SafetensorsFile()>& read, const std::string& path) {
  // Building the model draws from default_generator; on any error it is put back as it was.
  Generator& global = default_generator();
  const Generator::State global_before = global.state();
  try {
    const io::SafetensorsFile file = read();
    const auto entry = file.metadata.find(kKey);
    if (entry == file.metadata.end())
      throw IoError(path + ": not a checkpoint (__metadata__ has no 'checkpoint'): a model saved without the "
                    "training state it would take to resume");
    const Json ck = parse_json<IoError>(entry->second, path + ": __metadata__.checkpoint is not valid JSON");
    const Reader r{path};
    const int64_t version = r.count(ck, "version");
    if (version < 1) r.bad("version", "is 0; expected 1 or more");
    if (version > kCheckpointVersion)
      throw IoError(path + ": written in checkpoint version " + std::to_string(version) +
                    " by a newer Lamina; this build reads up to " + std::to_string(kCheckpointVersion));
    const Json& crc = r.at(ck, "crc32", "crc32");
    if (!crc.is_string()) r.bad("crc32", "is " + crc.dump() + "; expected 8 hex digits");
    if (const std::string actual = checksum(file.tensors); actual != crc.get<std::string>())
      throw IoError(path + ": the tensor data's CRC-32 is " + actual + ", the checkpoint recorded " +
                    crc.get<std::string>() + "; the file is corrupted");

    Model model = from_file(file, path);
    if (!model.compiled()) throw IoError(path + ": a checkpoint without compile_config; the optimizer is unknown");
    Optimizer& opt = *model.optimizer_;

    // The optimizer: every slot of every trainable weight, checked against the model.
    const Json& o = r.at(ck, "optimizer", "optimizer");
    const int64_t iterations = r.count(o, "iterations");
    const Json& names = r.at(o, "slots", "optimizer.slots");
    std::vector<std::string> expected;
    for (int k = 0; iterations > 0 && k < opt.num_slots(); ++k) expected.push_back(opt.slot_name(k));
    if (names != Json(expected))
      r.bad("optimizer.slots", "is " + names.dump() + "; " + opt.name() + " after " + std::to_string(iterations) +
                                   " steps keeps " + Json(expected).dump());
    std::map<std::string, const Tensor*> in_file;
    for (const auto& [name, t] : file.tensors) in_file[name] = &t;
    std::vector<std::vector<Tensor>> slots;
    const std::vector<Tensor> params = model.trainable_weights();
    if (iterations > 0) slots.resize(params.size());
    size_t i = 0;
    for (const auto& l : model.layers_) {
      const std::vector<bool> mask = l->trainable_mask();
      for (size_t wi = 0; wi < mask.size(); ++wi) {
        const Weight& w = l->weights()[wi];
        if (!mask[wi] || !model.trainable_ || iterations == 0) continue;
        for (const std::string& slot : expected) {
          const std::string name = "optimizer/" + slot + "/" + l->name() + "/" + w.name;
          const auto it = in_file.find(name);
          if (it == in_file.end()) throw IoError(path + ": tensor '" + name + "' is missing");
          if (it->second->shape() != w.value.shape())
            throw IoError(path + ": tensor '" + name + "' has shape " + it->second->shape().str() + ", its weight " +
                          w.value.shape().str());
          slots[i].push_back(*it->second);
        }
        ++i;
      }
    }

    // The generators: the default one and one per layer that draws (no more, no fewer).
    const Json& rng = r.at(ck, "rng", "rng");
    const Generator::State default_state = r.state(r.at(rng, "default", "rng.default"), "rng.default");
    const Json& layer_rng = r.at(rng, "layers", "rng.layers");
    if (!layer_rng.is_object()) r.bad("rng.layers", "is " + layer_rng.dump() + "; expected an object");
    std::vector<std::pair<Generator*, Generator::State>> layer_states;
    for (const auto& [name, l] : model.leaf_layers())
      if (Generator* g = l->generator())
        layer_states.emplace_back(g, r.state(r.at(layer_rng, name, "rng.layers." + name), "rng.layers." + name));
    if (layer_states.size() != layer_rng.size())
      r.bad("rng.layers", "names " + std::to_string(layer_rng.size()) + " layers; the model has " +
                              std::to_string(layer_states.size()) + " that draw random numbers");

    FitState fit;
    const int64_t epoch = r.count(ck, "epoch");
    if (epoch > INT_MAX) r.bad("epoch", "is " + std::to_string(epoch) + ", too large");
    fit.epoch = static_cast<int>(epoch);
    fit.step = r.count(ck, "step");
    if (const Json& seed = r.at(ck, "shuffle_seed", "shuffle_seed"); !seed.is_null())
      fit.shuffle_seed = r.word(seed, "shuffle_seed");
    fit.shuffled = r.count(ck, "shuffled");
    fit.samples = r.count(ck, "samples");
    fit.batch_size = r.count(ck, "batch_size");
    if (ck.contains("ranks")) {  // data-parallel training (written since ranks were recorded)
      const int64_t ranks = r.count(ck, "ranks");
      if (ranks < 1 || ranks > INT_MAX) r.bad("ranks", "is " + std::to_string(ranks) + "; expected 1 or more");
      fit.ranks = static_cast<int>(ranks);
      fit.global_batch = r.count(ck, "global_batch");
    }

    // Everything checked: commit.
    opt.load_state(params, slots, iterations);
    for (auto& [g, s] : layer_states) g->set_state(s);
    model.fit_state_ = fit;
    if (ck.contains("callbacks") && ck["callbacks"].is_array()) model.callback_states_ = ck["callbacks"];
    global.set_state(default_state);
    return model;
  } catch (...) {
    global.set_state(global_before);
    throw;
  }
}

}  // namespace lamina
