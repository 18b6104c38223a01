// The CLI's spec reader and data loaders. Raw inputs are IDX bytes or CSV numbers; the model sees
// raw * scale, and that scale travels in the model file so evaluate and predict match training.
// Explicit paths in a spec are looked up beside the spec file first, then from the current
// directory; the default data locations (data/mnist, ...) are relative to the current directory.
#include "spec.hpp"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <memory>
#include <utility>

#include "lamina/error.hpp"
#include "lamina/io.hpp"
#include "lamina/ops.hpp"

namespace lamina::cli {

namespace {

namespace fs = std::filesystem;

// --- spec checking -------------------------------------------------------------------------------

std::string join(const std::vector<std::string>& v) {
  std::string out;
  for (const auto& s : v) out += (out.empty() ? "" : ", ") + s;
  return out;
}

[[noreturn]] void bad(const std::string& file, const std::string& key, const std::string& what) {
  throw ValueError(file + ": " + key + ": " + what);
}

std::string got(const Json& j) {
  std::string s = j.dump();
  if (s.size() > 60) s = s.substr(0, 57) + "...";
  return std::string(j.type_name()) + " " + s;
}

// Unknown keys are errors: a misspelt "epoch" must not silently train for the default.
void check_keys(const Json& obj, const std::vector<std::string>& known, const std::string& file,
                const std::string& where) {
  for (const auto& [key, value] : obj.items()) {
    if (std::find(known.begin(), known.end(), key) != known.end()) continue;
    const std::string place = where.empty() ? "at the top level" : "in '" + where + "'";
    throw ValueError(file + ": unknown key '" + key + "' " + place + " (known: " + join(known) + ")");
  }
}

const Json& object_at(const Json& parent, const std::string& key, const std::string& file, const std::string& name) {
  if (!parent.contains(key)) bad(file, name, "missing");
  const Json& j = parent[key];
  if (!j.is_object()) bad(file, name, "expected an object, got " + got(j));
  return j;
}

int64_t integer(const Json& j, const std::string& file, const std::string& name, int64_t min) {
  // Keras writes some integers as floats (1.0); accept whole numbers of either kind.
  if (j.is_number_integer() || j.is_number_unsigned()) {
    const auto v = j.is_number_unsigned() ? static_cast<int64_t>(std::min<uint64_t>(j.get<uint64_t>(), INT64_MAX))
                                          : j.get<int64_t>();
    if (v >= min) return v;
  } else if (j.is_number_float()) {
    const double d = j.get<double>();
    if (d == std::floor(d) && d >= static_cast<double>(min) && d < 9.2e18) return static_cast<int64_t>(d);
  }
  bad(file, name, "expected an integer >= " + std::to_string(min) + ", got " + got(j));
}

double number(const Json& j, const std::string& file, const std::string& name) {
  if (!j.is_number()) bad(file, name, "expected a number, got " + got(j));
  return j.get<double>();
}

bool boolean(const Json& j, const std::string& file, const std::string& name) {
  if (!j.is_boolean()) bad(file, name, "expected true or false, got " + got(j));
  return j.get<bool>();
}

std::string string(const Json& j, const std::string& file, const std::string& name) {
  if (!j.is_string()) bad(file, name, "expected a string, got " + got(j));
  return j.get<std::string>();
}

// A path from the spec: beside the spec file if it exists there, else as given.
std::string resolve(const std::string& spec_path, const std::string& p) {
  const fs::path given(p);
  if (given.is_absolute()) return p;
  const fs::path beside = fs::path(spec_path).parent_path() / given;
  std::error_code ec;
  if (fs::exists(beside, ec)) return beside.lexically_normal().string();
  if (fs::exists(given, ec)) return p;
  return beside.lexically_normal().string();
}

bool is_named_set(const std::string& s) {
  return s == "mnist" || s == "fashion_mnist" || s == "fashion-mnist" || s == "digits" || s == "imdb";
}

std::string canonical_name(const std::string& s) { return s == "fashion-mnist" ? "fashion_mnist" : s; }

std::vector<InputColumns> read_input_columns(const Json& j, const std::string& file, const std::string& key) {
  std::vector<InputColumns> out;
  for (const auto& [name, range] : j.items()) {
    const std::string at = key + "." + name;
    if (!range.is_array() || range.size() != 2 || !range[0].is_number_integer() || !range[1].is_number_integer())
      bad(file, at, "expected [FIRST COLUMN, END COLUMN] (end exclusive), got " + got(range));
    const int64_t first = range[0].get<int64_t>(), end = range[1].get<int64_t>();
    if (first < 0 || end <= first) bad(file, at, "columns [" + std::to_string(first) + ", " + std::to_string(end) + ") are empty or negative");
    out.push_back({name, first, end});
  }
  return out;
}

DataSpec read_data(const Json& d, const std::string& file) {
  DataSpec out;
  check_keys(d, {"name", "dir", "path", "files", "train", "test", "scale", "test_split", "split_seed", "header", "inputs",
                 "text_vectorization", "targets"},
             file, "data");
  Json files = Json::object();
  if (d.contains("files")) {
    files = d["files"];
    if (!files.is_object()) bad(file, "data.files", "expected {\"train\": PATH, \"test\": PATH}, got " + got(files));
    check_keys(files, {"train", "test"}, file, "data.files");
  }
  for (const char* k : {"train", "test"})
    if (d.contains(k)) files[k] = d[k];
  if (d.contains("name")) {
    if (!files.empty()) bad(file, "data", "give either \"name\" or \"train\"/\"test\" files, not both");
    out.name = canonical_name(string(d["name"], file, "data.name"));
    if (!is_named_set(out.name))
      bad(file, "data.name", "unknown data set '" + out.name + "' (known: mnist, fashion_mnist, digits, imdb)");
    for (const char* k : {"dir", "path"})
      if (d.contains(k)) {
        if (!out.location.empty()) bad(file, "data", "give \"dir\" or \"path\", not both");
        out.location = resolve(file, string(d[k], file, std::string("data.") + k));
      }
  } else if (!files.empty()) {
    auto file_path = [&](const std::string& k) {
      if (!files.contains(k)) bad(file, "data." + k, "missing (a files spec needs both train and test)");
      return resolve(file, string(files[k], file, "data." + k));
    };
    out.train_path = file_path("train");
    out.test_path = file_path("test");
    if (d.contains("dir") || d.contains("path")) bad(file, "data", "\"dir\"/\"path\" go with \"name\"; use \"train\" and \"test\" for files");
  } else {
    bad(file, "data.name", "missing (give a data set name: mnist, fashion_mnist, digits, imdb; or \"train\" and \"test\" files)");
  }
  if (d.contains("text_vectorization")) {
    out.text_vectorization = d["text_vectorization"];
    if (!out.text_vectorization.is_object())
      bad(file, "data.text_vectorization", "expected the object of a TextVectorization config ({\"max_tokens\": 20000, "
                                           "\"output_sequence_length\": 200}), got " + got(out.text_vectorization));
    try {  // its keys and values, checked now rather than after loading the data
      TextVectorization::from_config(out.text_vectorization);
    } catch (const ValueError& e) {
      bad(file, "data.text_vectorization", e.what());
    }
  } else if (out.name == "imdb") {
    out.text_vectorization = Json::object();  // Keras' defaults
  }
  if (out.is_text()) {
    for (const char* k : {"scale", "test_split", "split_seed", "header", "inputs"})
      if (d.contains(k)) bad(file, std::string("data.") + k, "does not apply to text data");
    if (out.name != "" && out.name != "imdb")
      bad(file, "data.text_vectorization", "goes with text data (\"imdb\", or TSV files), not '" + out.name + "'");
  }
  if (d.contains("scale")) {
    const Json& s = d["scale"];
    if (s.is_string() && s.get<std::string>() == "max") {
      out.scale_max = true;
    } else if (s.is_number() && std::isfinite(s.get<double>()) && s.get<double>() > 0) {
      out.scale = s.get<double>();
    } else {
      bad(file, "data.scale", "expected a positive number or \"max\", got " + got(s));
    }
  }
  if (d.contains("test_split")) {
    out.test_split = number(d["test_split"], file, "data.test_split");
    if (!(out.test_split > 0 && out.test_split < 1)) bad(file, "data.test_split", "expected a fraction in (0, 1)");
  }
  if (d.contains("split_seed")) out.split_seed = static_cast<uint64_t>(integer(d["split_seed"], file, "data.split_seed", 0));
  if (d.contains("header")) out.header = boolean(d["header"], file, "data.header");
  if (d.contains("targets")) {
    const std::string t = string(d["targets"], file, "data.targets");
    if (t != "labels" && t != "inputs")
      bad(file, "data.targets", "expected \"labels\" (the default) or \"inputs\" (an autoencoder), got \"" + t + "\"");
    out.targets_are_inputs = t == "inputs";
    if (out.targets_are_inputs && out.is_text()) bad(file, "data.targets", "\"inputs\" does not apply to text data");
  }
  if (d.contains("inputs")) {
    if (!d["inputs"].is_object() || d["inputs"].empty())
      bad(file, "data.inputs", "expected {\"INPUT NAME\": [FIRST COLUMN, END COLUMN], ...}, got " + got(d["inputs"]));
    if (!out.name.empty()) bad(file, "data.inputs", "column groups go with CSV files (\"train\"/\"test\"), not a named set");
    out.inputs = read_input_columns(d["inputs"], file, "data.inputs");
  }
  return out;
}

FitSpec read_fit(const Json& f, const std::string& file) {
  FitSpec out;
  check_keys(f, {"epochs", "batch_size", "validation_split", "shuffle", "seed", "verbose", "class_weight", "callbacks",
                 "sample_weight"},
             file, "fit");
  if (f.contains("sample_weight") && !f["sample_weight"].is_null())
    out.sample_weight = resolve(file, string(f["sample_weight"], file, "fit.sample_weight"));
  if (f.contains("class_weight") && !f["class_weight"].is_null()) {
    const Json& cw = f["class_weight"];
    if (!cw.is_object()) bad(file, "fit.class_weight", "expected {\"class index\": weight, ...}, got " + got(cw));
    for (const auto& [k, v] : cw.items()) {
      const std::string at = "fit.class_weight." + k;
      int64_t c = -1;
      const auto [end, ec] = std::from_chars(k.data(), k.data() + k.size(), c);
      if (ec != std::errc() || end != k.data() + k.size() || c < 0) bad(file, at, "the key must be a class index >= 0");
      const double w = number(v, file, at);
      if (!(w >= 0)) bad(file, at, "a weight must be >= 0, got " + got(v));
      out.class_weight[c] = w;
    }
  }
  if (f.contains("callbacks") && !f["callbacks"].is_null()) {
    const Json& cbs = f["callbacks"];
    if (!cbs.is_array()) bad(file, "fit.callbacks", "expected a list of {\"class_name\": ..., \"config\": {...}}, got " + got(cbs));
    for (size_t i = 0; i < cbs.size(); ++i) {
      const std::string at = "fit.callbacks[" + std::to_string(i) + "]";
      if (!cbs[i].is_object()) bad(file, at, "expected {\"class_name\": ..., \"config\": {...}}, got " + got(cbs[i]));
      check_keys(cbs[i], {"class_name", "config", "module", "registered_name"}, file, at);
      CallbackSpec cb{string(cbs[i].value("class_name", Json()), file, at + ".class_name"),
                      cbs[i].value("config", Json::object())};
      if (!cb.config.is_object()) bad(file, at + ".config", "expected an object, got " + got(cb.config));
      if (cb.class_name == "ReduceLROnPlateau")
        check_keys(cb.config, {"monitor", "factor", "patience", "verbose", "mode", "min_delta", "cooldown", "min_lr"}, file,
                   at + ".config");
      else if (cb.class_name == "EarlyStopping")
        check_keys(cb.config, {"monitor", "min_delta", "patience", "verbose", "mode", "baseline", "restore_best_weights",
                               "start_from_epoch"},
                   file, at + ".config");
      else
        bad(file, at + ".class_name", "'" + cb.class_name + "' is not supported (ReduceLROnPlateau, EarlyStopping)");
      if (cb.config.contains("baseline") && !cb.config["baseline"].is_null())
        bad(file, at + ".config.baseline", "not supported (use null)");
      out.callbacks.push_back(std::move(cb));
    }
  }
  if (f.contains("epochs")) out.epochs = static_cast<int>(std::min<int64_t>(integer(f["epochs"], file, "fit.epochs", 0), INT32_MAX));
  if (f.contains("batch_size")) out.batch_size = integer(f["batch_size"], file, "fit.batch_size", 1);
  if (f.contains("validation_split")) {
    out.validation_split = number(f["validation_split"], file, "fit.validation_split");
    if (!(out.validation_split >= 0 && out.validation_split < 1))
      bad(file, "fit.validation_split", "expected a fraction in [0, 1), got " + got(f["validation_split"]));
  }
  if (f.contains("shuffle")) out.shuffle = boolean(f["shuffle"], file, "fit.shuffle");
  if (f.contains("seed") && !f["seed"].is_null()) out.seed = static_cast<uint64_t>(integer(f["seed"], file, "fit.seed", 0));
  if (f.contains("verbose")) out.verbose = static_cast<int>(std::min<int64_t>(integer(f["verbose"], file, "fit.verbose", 0), 2));
  return out;
}

// --- data ------------------------------------------------------------------------------------------

constexpr double kByteScale = 1.0 / 255.0;

// The model's input shape when the data's sample shape holds the same number of values
// (a 784-column CSV for a (28, 28) model); a ShapeError when it cannot fit.
Shape conform(const Shape& natural, const std::optional<Shape>& want, const std::string& where) {
  if (!want || *want == natural) return natural;
  if (want->numel() == natural.numel()) return *want;
  throw ShapeError(where + ": samples have shape " + natural.str() + " (" + std::to_string(natural.numel()) +
                   " values), but the model expects input " + want->str() + " (" + std::to_string(want->numel()) +
                   " values)");
}


// A loaded set before scaling, with its largest feature value (for "scale": "max").
struct Raw {
  data::Dataset ds;
  double max_value = 0;
  bool bytes = false;  // IDX images (default scale 1/255) rather than CSV numbers (default 1)
  Provenance from;
};

std::string find_idx(const std::string& dir, const std::string& name, const std::string& hint) {
  std::string path = data::find_data_file(dir, name);
  if (path.empty())
    throw IoError((fs::path(dir) / name).string() + ": missing (expected " + name + " or " + name + ".gz in " + dir +
                  ")" + hint);
  return path;
}

// The one "*images-idx*" / "*labels-idx*" pair in a directory, for directories that do not use
// the original train-/t10k- names.
std::pair<std::string, std::string> only_idx_pair(const std::string& dir) {
  std::vector<std::string> images, labels;
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(dir, ec)) {
    const std::string n = e.path().filename().string();
    if (n.find("images-idx") != std::string::npos) images.push_back(e.path().string());
    if (n.find("labels-idx") != std::string::npos) labels.push_back(e.path().string());
  }
  if (images.size() != 1 || labels.size() != 1)
    throw IoError(dir + ": expected one *-images-idx3-ubyte and one *-labels-idx1-ubyte file (raw or .gz), found " +
                  std::to_string(images.size()) + " and " + std::to_string(labels.size()));
  return {images[0], labels[0]};
}

Raw load_idx_pair(const std::string& images_path, const std::string& labels_path, const std::optional<Shape>& want) {
  data::Idx images = data::read_idx(images_path);
  data::Idx labels = data::read_idx(labels_path);
  if (images.dims.size() < 2)
    throw IoError(images_path + ": images have dimensions " + Shape(images.dims).str() + " (expected (N, ...))");
  if (labels.dims.size() != 1 || labels.dims[0] != images.dims[0])
    throw IoError(labels_path + ": labels have dimensions " + Shape(labels.dims).str() + " for " +
                  std::to_string(images.dims[0]) + " images in " + images_path + " (expected (N), one label per image)");
  const Shape natural(std::vector<int64_t>(images.dims.begin() + 1, images.dims.end()));
  const Shape sample = conform(natural, want, images_path);
  auto targets = std::make_shared<std::vector<float>>(labels.bytes.begin(), labels.bytes.end());
  Raw raw;
  raw.bytes = true;
  raw.max_value = images.bytes.empty() ? 0 : *std::max_element(images.bytes.begin(), images.bytes.end());
  auto pixels = std::make_shared<const std::vector<uint8_t>>(std::move(images.bytes));
  raw.ds = data::Dataset::from_bytes(std::move(pixels), sample, std::move(targets), Shape{}, 1.f);
  raw.from = {labels_path, [](int64_t i) {  // a rank-1 IDX file's data starts at byte 8
                return "byte offset " + std::to_string(8 + i) + " (label " + std::to_string(i) + ")";
              }};
  return raw;
}

// prefix "train" or "t10k": that pair of a directory; falls back to its only pair.
Raw load_idx_dir(const std::string& dir, const std::string& prefix, const std::optional<Shape>& want,
                 const std::string& hint = "") {
  std::error_code ec;
  if (!fs::is_directory(dir, ec)) throw IoError(dir + ": no such directory" + hint);
  std::string images, labels;
  try {
    images = find_idx(dir, prefix + "-images-idx3-ubyte", hint);
    labels = find_idx(dir, prefix + "-labels-idx1-ubyte", hint);
  } catch (const IoError&) {
    if (!hint.empty()) throw;  // a named set must have its usual names
    std::tie(images, labels) = only_idx_pair(dir);
  }
  return load_idx_pair(images, labels, want);
}

Raw load_csv(const std::string& path, bool header, const std::optional<Shape>& want) {
  data::Csv csv = data::read_csv(path, {.header = header});
  if (csv.rows == 0) throw IoError(path + ": no data rows");
  if (csv.cols == 0) throw IoError(path + ": rows have only one column (expected features, then the label last)");
  const Shape sample = conform(Shape{csv.cols}, want, path);
  Raw raw;
  raw.max_value = *std::max_element(csv.features.begin(), csv.features.end());
  const int64_t rows = csv.rows, label_column = csv.cols + 1;
  raw.ds = data::Dataset::from_tensors(Tensor::from(std::move(csv.features), with_batch(rows, sample)),
                                       Tensor::from(std::move(csv.labels), Shape{rows}));
  raw.from = {path, [header, label_column](int64_t i) {
                return "line " + std::to_string(i + 1 + (header ? 1 : 0)) + ", column " + std::to_string(label_column) +
                       " (sample " + std::to_string(i) + ")";
              }};
  return raw;
}

double max_feature(const data::Dataset& d) {
  const Tensor x = d.all_x();
  const auto v = x.values();
  return v.empty() ? 0.0 : static_cast<double>(*std::max_element(v.begin(), v.end()));
}

// Digits (sklearn's 8x8): the whole set, shaped for the model.
data::Dataset load_digits_set(const std::string& path, const std::optional<Shape>& want) {
  data::Dataset all = data::load_digits(path);
  const Shape sample = conform(all.sample_shape(), want, path);
  if (sample == all.sample_shape()) return all;
  const Tensor x = all.all_x(), y = all.all_y();
  return data::Dataset::from_tensors(Tensor::from(std::vector<float>(x.values().begin(), x.values().end()),
                                                  with_batch(all.size(), sample)),
                                     y);
}

std::pair<data::Dataset, data::Dataset> digits_train_test(const data::Dataset& all, double test_split, uint64_t seed) {
  auto [test, train] = all.split(test_split, seed);
  return {train, test};
}

std::string default_location(const std::string& name) {
  if (name == "mnist") return "data/mnist";
  if (name == "imdb") return "data/imdb";
  if (name == "fashion_mnist") return "data/fashion-mnist";
  return "data/digits/digits.csv.gz";
}

std::string fetch_hint(const std::string& name) { return "; run scripts/fetch-data.sh " + name; }

data::Dataset scaled(const data::Dataset& d, double scale) {
  return scale == 1.0 ? d : d.scaled(static_cast<float>(scale));
}

// Labelled texts from a TSV file (LABEL<TAB>TEXT), with a hint to fetch IMDB when it is missing.
data::LabeledTexts read_texts(const std::string& path, const std::string& hint) {
  std::error_code ec;
  if (!fs::exists(path, ec)) throw IoError(path + ": no such file" + hint);
  return data::read_text_tsv(path);
}

data::Dataset vectorized(const data::LabeledTexts& t, const TextVectorization& tv) {
  const auto n = static_cast<int64_t>(t.labels.size());
  return data::Dataset::from_tensors(tv(t.texts), Tensor::from(t.labels, Shape{n}));
}

Provenance tsv_provenance(const std::string& path) {
  return {path, [](int64_t i) { return "text " + std::to_string(i + 1) + " (a line of LABEL<TAB>TEXT)"; }};
}

// Text data: a TextVectorization adapted on the training texts only, applied to both splits.
// Its output_sequence_length defaults to the model's declared input length.
Prepared load_text_data(const Spec& spec, const std::optional<Shape>& input_shape) {
  const DataSpec& d = spec.data;
  std::string train_path = d.train_path, test_path = d.test_path, hint;
  if (d.name == "imdb") {
    const std::string dir = d.location.empty() ? default_location(d.name) : d.location;
    train_path = (fs::path(dir) / "train.tsv").string();
    test_path = (fs::path(dir) / "test.tsv").string();
    hint = fetch_hint(d.name);
  }
  Json config = d.text_vectorization;
  if (!config.contains("output_sequence_length") || config["output_sequence_length"].is_null()) {
    if (!input_shape || input_shape->rank() != 1)
      bad(spec.path, "data.text_vectorization.output_sequence_length",
          "missing, and the model declares no input shape (L,) to take it from");
    config["output_sequence_length"] = (*input_shape)[0];
  }
  const Json length = config["output_sequence_length"];
  if (input_shape && length.is_number_integer() && *input_shape != Shape{length.get<int64_t>()})
    bad(spec.path, "data.text_vectorization.output_sequence_length",
        length.dump() + " tokens per text, but the model's input has shape " + input_shape->str());
  Prepared out;
  try {
    out.text = TextVectorization::from_config(config);
  } catch (const ValueError& e) {
    bad(spec.path, "data.text_vectorization", e.what());
  }
  const data::LabeledTexts train = read_texts(train_path, hint), test = read_texts(test_path, hint);
  if (!out.text->has_vocabulary()) out.text->adapt(train.texts);
  out.train = vectorized(train, *out.text);
  out.test = vectorized(test, *out.text);
  out.train_from = tsv_provenance(train_path);
  out.test_from = tsv_provenance(test_path);
  out.preprocessing.data = d.name.empty() ? "files" : d.name;
  return out;
}

}  // namespace

Shape with_batch(int64_t n, const Shape& s) {
  std::vector<int64_t> dims{n};
  dims.insert(dims.end(), s.begin(), s.end());
  return Shape(dims);
}

// --- public ----------------------------------------------------------------------------------------

Json Preprocessing::to_json() const {
  Json j = {{"scale", scale}, {"data", data}};
  if (targets_are_inputs) j["targets"] = "inputs";
  if (data == "digits") {
    j["test_split"] = test_split;
    j["split_seed"] = split_seed;
  }
  if (!inputs.empty()) {
    j["inputs"] = Json::object();
    for (const InputColumns& c : inputs) j["inputs"][c.name] = {c.first, c.end};
  }
  return j;
}

Preprocessing Preprocessing::from_json(const Json& j, const std::string& where) {
  Preprocessing p;
  if (!j.is_object()) bad(where, "lamina_preprocessing", "expected an object, got " + got(j));
  if (j.contains("scale")) p.scale = number(j["scale"], where, "lamina_preprocessing.scale");
  if (j.contains("data") && j["data"].is_string()) p.data = j["data"].get<std::string>();
  if (j.contains("test_split")) p.test_split = number(j["test_split"], where, "lamina_preprocessing.test_split");
  if (j.contains("split_seed"))
    p.split_seed = static_cast<uint64_t>(integer(j["split_seed"], where, "lamina_preprocessing.split_seed", 0));
  if (j.contains("inputs")) p.inputs = read_input_columns(j["inputs"], where, "lamina_preprocessing.inputs");
  p.targets_are_inputs = j.value("targets", std::string("labels")) == "inputs";
  return p;
}

std::vector<Tensor> split_columns(const Tensor& x, const std::vector<InputColumns>& groups,
                                  const std::vector<std::string>& names, const std::vector<Shape>& shapes,
                                  const std::string& where) {
  const int64_t n = x.dim(0), f = n > 0 ? x.numel() / n : 0;
  std::vector<Tensor> out;
  for (size_t i = 0; i < names.size(); ++i) {
    const auto g = std::find_if(groups.begin(), groups.end(), [&](const InputColumns& c) { return c.name == names[i]; });
    if (g == groups.end()) {
      std::string known;
      for (const InputColumns& c : groups) known += (known.empty() ? "" : ", ") + c.name;
      throw ValueError(where + ": data.inputs has no column group for the model's input '" + names[i] +
                       "' (groups: " + known + ")");
    }
    if (g->end > f)
      throw ValueError(where + ": data.inputs." + g->name + ": columns [" + std::to_string(g->first) + ", " +
                       std::to_string(g->end) + ") go past the " + std::to_string(f) + " feature columns");
    const int64_t width = g->end - g->first;
    if (width != shapes[i].numel())
      throw ValueError(where + ": data.inputs." + g->name + ": " + std::to_string(width) + " columns for the input '" +
                       names[i] + "' of shape " + shapes[i].str() + " (" + std::to_string(shapes[i].numel()) +
                       " values)");
    std::vector<int64_t> dims{n};
    dims.insert(dims.end(), shapes[i].begin(), shapes[i].end());
    Tensor t = Tensor::empty(Shape(dims));
    for (int64_t r = 0; r < n; ++r) std::copy(x.data() + r * f + g->first, x.data() + r * f + g->end, t.data() + r * width);
    out.push_back(std::move(t));
  }
  for (const InputColumns& c : groups)
    if (std::find(names.begin(), names.end(), c.name) == names.end())
      throw ValueError(where + ": data.inputs." + c.name + " names no input of the model (its inputs: " +
                       [&] {
                         std::string s;
                         for (const std::string& nm : names) s += (s.empty() ? "" : ", ") + nm;
                         return s;
                       }() + ")");
  return out;
}

data::Dataset split_columns(const data::Dataset& d, const std::vector<InputColumns>& groups,
                            const std::vector<std::string>& names, const std::vector<Shape>& shapes,
                            const std::string& where) {
  return data::Dataset::from_tensors(split_columns(d.all_x(), groups, names, shapes, where), {d.all_y()});
}

data::Dataset inputs_as_targets(const data::Dataset& d, const Shape& output_shape, const std::string& where) {
  if (d.sample_shape().numel() != output_shape.numel())
    throw ShapeError(where + ": data.targets \"inputs\": samples of shape " + d.sample_shape().str() + " (" +
                     std::to_string(d.sample_shape().numel()) + " values) cannot be the targets of the model's output " +
                     output_shape.str() + " (" + std::to_string(output_shape.numel()) + " values)");
  const Tensor x = d.all_x();
  std::vector<int64_t> dims{d.size()};
  dims.insert(dims.end(), output_shape.begin(), output_shape.end());
  return data::Dataset::from_tensors(x, reshape(x, Shape(dims)));  // from_tensors copies
}

Json read_json_file(const std::string& path) { return parse_json_text(io::read_file(path), path); }

Json parse_json_text(std::string_view text, const std::string& path) {
  return parse_json(text, path + ": invalid JSON", /*comments=*/true);
}

bool looks_like_spec(const Json& j) { return j.is_object() && j.contains("model") && !j.contains("class_name"); }

Spec read_spec(const std::string& path) { return parse_spec(io::read_file(path), path); }

Spec parse_spec(std::string_view text, const std::string& path) {
  const Json j = parse_json_text(text, path);
  if (!j.is_object()) throw ValueError(path + ": expected a JSON object with model, data, compile and fit, got " + got(j));
  check_keys(j, {"model", "data", "compile", "fit", "description"}, path, "");
  Spec spec;
  spec.path = path;
  if (j.contains("model") && j["model"].is_string()) {  // a saved or exported model to fine-tune
    spec.model_file = resolve(path, j["model"].get<std::string>());
    std::error_code ec;
    if (!fs::is_regular_file(spec.model_file, ec))
      bad(path, "model", "'" + spec.model_file + "' is not a file (expected a model JSON object or the path of a .onnx "
                         "or .safetensors model)");
  } else {
    spec.model = object_at(j, "model", path, "model");
  }
  spec.data = read_data(object_at(j, "data", path, "data"), path);
  const Json& c = object_at(j, "compile", path, "compile");
  // Keras 3's compile_config carries these too; they do not change the math here.
  check_keys(c, {"optimizer", "loss", "metrics", "loss_weights", "weighted_metrics", "run_eagerly",
                 "steps_per_execution", "jit_compile", "auto_scale_loss"},
             path, "compile");
  if (c.contains("loss_weights") && !c["loss_weights"].is_null()) {
    const Json& w = c["loss_weights"];
    if (!w.is_array() || w.empty())
      bad(path, "compile.loss_weights", "expected a list of numbers, one per model output, got " + got(w));
    for (size_t i = 0; i < w.size(); ++i) {
      const double v = number(w[i], path, "compile.loss_weights[" + std::to_string(i) + "]");
      if (!std::isfinite(v) || v < 0)
        bad(path, "compile.loss_weights[" + std::to_string(i) + "]", "expected a finite number >= 0, got " + got(w[i]));
      spec.loss_weights.push_back(v);
    }
  }
  if (c.contains("weighted_metrics") && !c["weighted_metrics"].is_null()) {
    const Json& m = c["weighted_metrics"];
    if (!m.is_array()) bad(path, "compile.weighted_metrics", "expected a list of names, got " + got(m));
    for (size_t i = 0; i < m.size(); ++i)
      spec.weighted_metrics.push_back(string(m[i], path, "compile.weighted_metrics[" + std::to_string(i) + "]"));
  }
  if (c.contains("optimizer")) spec.optimizer = c["optimizer"];
  if (!c.contains("loss") || c["loss"].is_null()) bad(path, "compile.loss", "missing");
  spec.loss = c["loss"];
  if (c.contains("metrics") && !c["metrics"].is_null()) {
    const Json& m = c["metrics"];
    if (!m.is_array()) bad(path, "compile.metrics", "expected a list of names, got " + got(m));
    for (size_t i = 0; i < m.size(); ++i)
      spec.metrics.push_back(string(m[i], path, "compile.metrics[" + std::to_string(i) + "]"));
  }
  if (j.contains("fit")) {
    if (!j["fit"].is_object()) bad(path, "fit", "expected an object, got " + got(j["fit"]));
    spec.fit = read_fit(j["fit"], path);
  }
  return spec;
}

Prepared load_training_data(const Spec& spec, const std::optional<Shape>& input_shape) {
  const DataSpec& d = spec.data;
  if (d.is_text()) return load_text_data(spec, input_shape);
  Prepared out;
  Raw train, test;
  double default_scale = 1.0;
  bool default_max = false;
  if (d.name == "digits") {
    const std::string path = d.location.empty() ? default_location(d.name) : d.location;
    auto [tr, te] = digits_train_test(load_digits_set(path, input_shape), d.test_split, d.split_seed);
    train.ds = tr;
    test.ds = te;
    train.from = {path + " (training split)", {}};
    test.from = {path + " (test split)", {}};
    train.max_value = max_feature(tr);
    default_max = true;  // the course divides by np.max(X)
    out.preprocessing.test_split = d.test_split;
    out.preprocessing.split_seed = d.split_seed;
  } else if (!d.name.empty()) {
    const std::string dir = d.location.empty() ? default_location(d.name) : d.location;
    const std::string hint = fetch_hint(d.name);
    train = load_idx_dir(dir, "train", input_shape, hint);
    test = load_idx_dir(dir, "t10k", input_shape, hint);
    default_scale = kByteScale;
  } else {
    auto load = [&](const std::string& p, const std::string& prefix) {
      std::error_code ec;
      if (!fs::exists(p, ec))
        bad(spec.path, prefix == "train" ? "data.train" : "data.test",
            "no such file or directory: " + p + " (relative paths are looked up beside the spec, then in the current "
            "directory)");
      return fs::is_directory(p, ec) ? load_idx_dir(p, prefix, input_shape) : load_csv(p, d.header, input_shape);
    };
    train = load(d.train_path, "train");
    test = load(d.test_path, "t10k");
    if (train.ds.sample_shape() != test.ds.sample_shape())
      throw ShapeError(spec.path + ": data: train samples have shape " + train.ds.sample_shape().str() +
                       ", test samples " + test.ds.sample_shape().str());
    if (train.bytes) default_scale = kByteScale;
  }
  out.preprocessing.data = d.name.empty() ? "files" : d.name;
  out.preprocessing.targets_are_inputs = d.targets_are_inputs;
  double scale = d.scale.value_or(default_scale);
  if (d.scale_max || (default_max && !d.scale)) {
    if (!(train.max_value > 0))
      throw ValueError(spec.path + ": data.scale: \"max\" needs a positive largest feature value, got " +
                       std::to_string(train.max_value));
    scale = 1.0 / train.max_value;
  }
  out.preprocessing.scale = scale;
  out.train = scaled(train.ds, scale);
  out.test = scaled(test.ds, scale);
  out.train_from = train.from;
  out.test_from = test.from;
  return out;
}

data::Dataset load_evaluation_data(const std::string& what, const Preprocessing& pre,
                                   const std::optional<Shape>& input_shape, Provenance* from) {
  const std::string name = canonical_name(what);
  Raw raw;
  if (name == "digits") {
    auto [train, test] = digits_train_test(load_digits_set(default_location(name), input_shape), pre.test_split,
                                           pre.split_seed);
    raw.ds = test;
    raw.from = {default_location(name) + " (test split)", {}};
  } else if (is_named_set(name)) {
    raw = load_idx_dir(default_location(name), "t10k", input_shape, fetch_hint(name));
  } else {
    std::error_code ec;
    if (fs::is_directory(what, ec)) {
      raw = load_idx_dir(what, "t10k", input_shape);
    } else if (!fs::exists(what, ec)) {
      throw IoError(what + ": no such file or directory (--data takes mnist, fashion_mnist, digits, a directory of "
                           "IDX files or a CSV file with the label last)");
    } else {
      raw = load_csv(what, false, input_shape);
    }
  }
  if (from) *from = raw.from;
  return scaled(raw.ds, pre.scale);
}

data::Dataset load_text_evaluation_data(const std::string& what, const TextVectorization& tv, Provenance* from) {
  const std::string path = what == "imdb" ? default_location(what) + "/test.tsv" : what;
  const data::LabeledTexts test = read_texts(path, what == "imdb" ? fetch_hint(what) : "");
  if (from) *from = tsv_provenance(path);
  return vectorized(test, tv);
}

Tensor load_prediction_input(const std::string& path, const Preprocessing& pre, const Shape& input_shape) {
  const int64_t m = input_shape.numel();
  const auto scale = static_cast<float>(pre.scale);
  auto ends_with = [&](const std::string& suffix) {
    return path.size() >= suffix.size() && path.compare(path.size() - suffix.size(), suffix.size(), suffix) == 0;
  };
  bool idx = false;
  const std::string base = fs::path(path).filename().string();
  const bool idx_name = base.find("idx") != std::string::npos || base.find("ubyte") != std::string::npos;
  if (!ends_with(".csv") && !ends_with(".csv.gz") && !ends_with(".txt")) {
    // IDX starts with two zero bytes; a gzip file may hold either, so it is tried as IDX first.
    std::ifstream f(path, std::ios::binary);
    if (!f) throw IoError(path + ": cannot open (no such file, or not readable)");
    unsigned char head[2] = {0xff, 0xff};
    f.read(reinterpret_cast<char*>(head), 2);
    idx = idx_name || (head[0] == 0 && head[1] == 0) || (head[0] == 0x1f && head[1] == 0x8b);
  }
  if (idx) {
    std::optional<data::Idx> file;
    try {
      file = data::read_idx(path);
    } catch (const IoError&) {
      std::ifstream f(path, std::ios::binary);
      unsigned char head[2] = {};
      f.read(reinterpret_cast<char*>(head), 2);
      if (idx_name || (head[0] == 0 && head[1] == 0)) throw;  // really IDX, really broken
    }
    if (file) {
      const Shape dims(file->dims);
      int64_t n = 0;
      if (dims.rank() == input_shape.rank() && dims.numel() == m) {
        n = 1;  // a single sample
      } else if (dims.rank() >= 2 && dims.numel() / std::max<int64_t>(dims[0], 1) == m) {
        n = dims[0];
      } else {
        throw ShapeError(path + ": IDX dimensions " + dims.str() + " do not hold samples of the model's input shape " +
                         input_shape.str() + " (expected (N, ...) with " + std::to_string(m) + " values per sample)");
      }
      std::vector<float> x(file->bytes.size());
      for (size_t i = 0; i < x.size(); ++i) x[i] = static_cast<float>(file->bytes[i]) * scale;
      return Tensor::from(std::move(x), with_batch(n, input_shape));
    }
  }
  data::Csv csv = data::read_csv(path);
  const int64_t width = csv.cols + 1;  // read_csv took the last column as a label
  if (csv.rows == 0) throw IoError(path + ": no data rows");
  std::vector<float> x;
  if (width == m + 1) {
    x = std::move(csv.features);  // features, then a label: drop the label
  } else if (width == m) {
    x.reserve(static_cast<size_t>(csv.rows * m));
    for (int64_t r = 0; r < csv.rows; ++r) {
      const auto row = csv.features.begin() + r * csv.cols;
      x.insert(x.end(), row, row + csv.cols);
      x.push_back(csv.labels[static_cast<size_t>(r)]);
    }
  } else {
    throw ShapeError(path + ": rows have " + std::to_string(width) + " columns, but the model expects " +
                     std::to_string(m) + " features per sample (input shape " + input_shape.str() + "), or " +
                     std::to_string(m + 1) + " columns with a label last");
  }
  for (float& v : x) v *= scale;
  return Tensor::from(std::move(x), with_batch(csv.rows, input_shape));
}

}  // namespace lamina::cli
