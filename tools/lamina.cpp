// lamina: the command-line tool. Trains a Keras-style model from a JSON spec, evaluates and runs
// saved models, prints summaries. The only place that turns exceptions into exit codes:
// 0 success, 1 an error (printed as "lamina: error: ..."), 2 a usage error (CLI11's message).
//
//   lamina train examples/specs/mnist_mlp.json --save mnist.safetensors --report report.json
//   lamina train examples/specs/mnist_mlp.json --checkpoint ckpt --resume ckpt/last.safetensors
//   lamina evaluate mnist.safetensors --data mnist
//   lamina predict mnist.safetensors data/mnist/t10k-images-idx3-ubyte --top 3
//   lamina predict imdb.safetensors "A wonderful film." "Dull and far too long."   (a text model)
//   lamina export mnist.safetensors --onnx mnist.onnx
//   lamina evaluate model.onnx --data test.csv          (exported with torch.onnx.export)
//   lamina train examples/specs/lenet_mnist.json --html report.html   (a web page, live while training)
//   lamina report report.json mnist.safetensors -o report.html
#include <sys/resource.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <cctype>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <map>
#include <new>
#include <numeric>
#include <optional>
#include <sstream>
#include <string>
#include <vector>

#include "lamina/distributed_backends.hpp"
#include "lamina/explain.hpp"
#include "lamina/generative.hpp"
#include "lamina/image.hpp"
#include "lamina/io.hpp"
#include "lamina/metrics.hpp"
#include "lamina/model.hpp"
#include "lamina/onnx.hpp"
#include "lamina/ops.hpp"
#include "lamina/random.hpp"
#include "lamina/report.hpp"
#include "lamina/runtime.hpp"
#include "spec.hpp"

#ifndef LAMINA_VERSION
#define LAMINA_VERSION "unknown"
#endif

namespace lamina::cli {
namespace {

constexpr const char* kPreprocessingKey = "lamina_preprocessing";

// --max-memory: "512M", "2G", "1.5G", "64K", "100000" (bytes), "none"; binary units.
struct MemoryArg {
  std::optional<std::string> text;
};

struct TrainArgs {
  std::string spec;
  std::optional<int> epochs;
  std::optional<int64_t> batch_size;
  std::optional<uint64_t> seed;
  std::optional<int> threads;
  std::string save, report, html;
  std::optional<double> smoothing;
  std::string checkpoint, resume, monitor = "val_loss";
  std::optional<int64_t> checkpoint_every;
  bool quiet = false;
  MemoryArg memory;
  // Data parallel (under mpirun, or Gloo's LAMINA_RANK / LAMINA_WORLD_SIZE / LAMINA_RENDEZVOUS).
  double bucket_mb = 25.0;
  bool batch_per_rank = false, no_overlap = false;
  std::optional<double> timeout;
};
struct EvaluateArgs {
  std::string model, data, report;
  MemoryArg memory;
};
struct PredictArgs {
  std::string model;
  std::vector<std::string> inputs;
  int top = 1;
  MemoryArg memory;
};
struct ExportArgs {
  std::string model, onnx;
};

double peak_rss_mb() {
  rusage usage{};
  getrusage(RUSAGE_SELF, &usage);
  return static_cast<double>(usage.ru_maxrss) / 1024.0;  // Linux reports kilobytes
}

Json logs_json(const Logs& logs) {
  Json j = Json::object();
  for (const auto& [k, v] : logs.values) j[k] = v;
  return j;
}

std::string logs_line(const Logs& logs) {
  std::string line;
  char item[96];
  for (const auto& [k, v] : logs.values) {
    std::snprintf(item, sizeof item, "%s%s: %.4f", line.empty() ? "" : " - ", k.c_str(), v);
    line += item;
  }
  return line;
}

void write_report(const std::string& path, const Json& report) { io::write_file_atomic(path, report.dump(2) + "\n"); }

// The model part of a spec, built; errors name the spec file and the JSON path in it
// ("spec.json: model.config.layers[1] (Dense): ...").
Model model_from_spec_json(const Json& model, const std::string& path) {
  try {
    return Model::from_json(model);
  } catch (const Error& e) {
    const std::string what = e.what();
    const bool json_path = what.rfind("config", 0) == 0 || what.rfind("class_name", 0) == 0;
    throw ValueError(path + (json_path ? ": model." : ": model: ") + what);
  } catch (const Json::exception& e) {  // a config value of the wrong JSON type
    throw ValueError(path + ": model: " + json_error_text(e));
  }
}

// Parses a --max-memory value; nullopt for "none". Throws std::invalid_argument with the reason.
std::optional<int64_t> parse_size(const std::string& text) {
  if (text == "none") return std::nullopt;
  std::size_t used = 0;
  double value = 0;
  try {
    value = std::stod(text, &used);
  } catch (const std::exception&) {
    used = 0;
  }
  std::string unit = text.substr(used);
  for (char& c : unit) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  if (unit.size() > 1 && unit.back() == 'B') unit.pop_back();                    // "2GB"
  if (unit.size() > 1 && unit.back() == 'I') unit.pop_back();                    // "2GiB" -> "2GI" -> "2G"
  const std::string units = "BKMGT";
  const size_t power = unit.empty() ? 0 : units.find(unit);
  if (used == 0 || text[0] == '-' || unit.size() > 1 || power == std::string::npos || !(value > 0) ||
      !std::isfinite(value))
    throw std::invalid_argument("expected a size like 512M, 2G or 1.5G (or 'none'), got '" + text + "'");
  const double bytes = value * std::pow(1024.0, static_cast<double>(power));
  if (bytes < 1 || bytes > 9e18) throw std::invalid_argument("size '" + text + "' is out of range");
  return static_cast<int64_t>(bytes);
}

CLI::Validator size_validator() {
  return CLI::Validator(
      [](std::string& s) -> std::string {
        try {
          parse_size(s);
        } catch (const std::invalid_argument& e) {
          return e.what();
        }
        return {};
      },
      "SIZE");
}

// The share of the machine's memory (cgroup limit or MemTotal) the default --max-memory allows:
// the estimate leaves out allocator and oneDNN overheads, and the system needs some too.
constexpr double kDefaultMemoryFraction = 0.8;

// Sets the library's memory limit from --max-memory, or from the machine when it is not given.
void apply_memory_limit(const MemoryArg& m) {
  if (m.text) {
    const auto bytes = parse_size(*m.text);
    set_memory_limit(bytes.value_or(0), "--max-memory");
    return;
  }
  const int64_t machine = system_memory_bytes();
  if (machine <= 0) return;  // unknown: no limit
  set_memory_limit(static_cast<int64_t>(static_cast<double>(machine) * kDefaultMemoryFraction),
                   "the default --max-memory, 80% of the " + format_bytes(machine) + " this process may use");
}

void compile_from_spec(Model& model, const Spec& spec) {
  std::shared_ptr<Optimizer> optimizer;
  try {
    optimizer = optimizer_from_config(spec.optimizer);
  } catch (const std::exception& e) {
    throw ValueError(spec.path + ": compile.optimizer: " + e.what());
  }
  std::optional<Loss> loss;
  try {
    loss = Loss::from_config(spec.loss);
  } catch (const std::exception& e) {
    throw ValueError(spec.path + ": compile.loss: " + e.what());
  }
  if (!spec.loss_weights.empty() && spec.loss_weights.size() != model.num_outputs())
    throw ValueError(spec.path + ": compile.loss_weights: " + std::to_string(spec.loss_weights.size()) +
                     " weights for a model with " + std::to_string(model.num_outputs()) + " output" +
                     (model.num_outputs() == 1 ? "" : "s") + " (give one per output)");
  try {
    model.compile(optimizer, *loss,
                  CompileOptions{.metrics = std::vector<MetricSpec>(spec.metrics.begin(), spec.metrics.end()),
                                 .loss_weights = spec.loss_weights,
                                 .weighted_metrics = std::vector<MetricSpec>(spec.weighted_metrics.begin(),
                                                                             spec.weighted_metrics.end())});
  } catch (const Error& e) {
    throw ValueError(spec.path + ": compile.metrics: " + e.what());
  }
}

// ONNX files carry no loss. For evaluate and predict, one is assumed from the output layer: a
// softmax gives class probabilities; one sigmoid unit, a binary probability; other outputs wider
// than one are logits (as PyTorch's CrossEntropyLoss takes); a single linear output, a regression.
void compile_imported(Model& model, const std::string& path) {
  const std::string act = model.layers().back()->config().value("activation", "linear");
  const int64_t width = model.output_shape().numel();
  std::string what;
  if (act == "softmax") {
    model.compile("rmsprop", Loss::sparse_categorical_crossentropy, {"accuracy"});
    what = "sparse_categorical_crossentropy on its softmax output";
  } else if (width == 1 && act == "sigmoid") {
    model.compile("rmsprop", Loss::binary_crossentropy, {"accuracy"});
    what = "binary_crossentropy on its sigmoid output";
  } else if (width > 1) {
    model.compile("rmsprop", Loss(Loss::sparse_categorical_crossentropy, /*from_logits=*/true), {"accuracy"});
    what = "sparse_categorical_crossentropy on its " + std::to_string(width) + " outputs as logits";
  } else {
    model.compile("rmsprop", Loss::mean_squared_error);
    what = "mean_squared_error (a regression)";
  }
  std::cerr << "lamina: note: " << path << " has no loss (ONNX carries none); assuming " << what << "\n";
}

// A model file: safetensors (Lamina's) or ONNX. pre: the scaling recorded at training time (scale
// 1 when it has none).
Model open_model(const std::string& model_path, Preprocessing* pre = nullptr) {
  std::map<std::string, std::string> metadata;
  const bool onnx = is_onnx_file(model_path);
  OnnxInfo info;
  Model model = onnx ? Model(load_onnx(model_path, &info)) : Model::load(model_path);
  if (onnx) metadata = info.metadata;
  else if (pre) metadata = io::load_safetensors(model_path).metadata;
  if (!pre) return model;
  *pre = {};
  const auto it = metadata.find(kPreprocessingKey);
  if (it == metadata.end()) {
    std::cerr << "lamina: note: " << model_path << " records no " << kPreprocessingKey
              << "; inputs are used unscaled\n";
    return model;
  }
  const Json j = parse_json<IoError>(it->second, model_path + ": " + (onnx ? "metadata_props." : "__metadata__.") +
                                                     kPreprocessingKey + " is not valid JSON");
  *pre = Preprocessing::from_json(j, model_path);
  return model;
}

// The model a spec describes: its Keras JSON, or the model file it names (fine-tuning).
Model model_of_spec(const Spec& spec) {
  if (spec.model_file.empty()) return model_from_spec_json(spec.model, spec.path);
  try {
    return open_model(spec.model_file);
  } catch (const Error& e) {
    throw ValueError(spec.path + ": model: " + e.what());
  }
}

bool is_classifier(const Model& model) {
  if (!model.compiled()) return false;
  const Loss::Kind k = model.loss().kind();
  return k == Loss::binary_crossentropy || k == Loss::categorical_crossentropy ||
         k == Loss::sparse_categorical_crossentropy;
}

// The bytes of the file at `path` on rank 0, on every rank (which need not see the file).
std::string bytes_from_rank0(const std::string& path, distributed::Communicator& comm) {
  std::string bytes, failure;
  if (comm.rank() == 0) {
    try {
      bytes = io::read_file(path);
    } catch (const Error& e) {
      failure = e.what();
    }
  }
  int64_t size = failure.empty() ? static_cast<int64_t>(bytes.size()) : -1;
  comm.broadcast(std::as_writable_bytes(std::span<int64_t>(&size, 1)), 0);
  if (size < 0) throw IoError(comm.rank() == 0 ? failure : path + ": rank 0 could not read it (see its error)");
  bytes.resize(static_cast<size_t>(size));
  comm.broadcast(std::as_writable_bytes(std::span<char>(bytes.data(), bytes.size())), 0);
  return bytes;
}

// The checkpoint to resume from, checked against the spec's model. Data parallel: rank 0 reads the
// file and sends its bytes to the others.
Model resume_from(const std::string& path, const Model& spec_model, const Spec& spec, distributed::Communicator& comm) {
  Model model = comm.size() == 1 ? Model::load_checkpoint(path) : Model::load_checkpoint_bytes(bytes_from_rank0(path, comm), path);
  if (model.to_json()["config"]["layers"] != spec_model.to_json()["config"]["layers"])
    throw ValueError(path + ": the checkpoint holds another model than " + spec.path +
                     "; resume with the spec it was trained from");
  return model;
}

// The value of `monitor` that a ModelCheckpoint file recorded, if the file exists.
std::optional<double> recorded_value(const std::string& path, const std::string& monitor) {
  if (::access(path.c_str(), F_OK) != 0) return std::nullopt;
  const io::SafetensorsFile file = io::load_safetensors(path);
  const auto it = file.metadata.find("logs");
  if (it == file.metadata.end()) return std::nullopt;
  if (!json_too_deep_at(it->second).empty()) return std::nullopt;
  const Json logs = Json::parse(it->second, nullptr, /*allow_exceptions=*/false);
  if (!logs.is_object() || !logs.contains(monitor) || !logs[monitor].is_number()) return std::nullopt;
  return logs[monitor].get<double>();
}

// fit.sample_weight of the spec: a CSV with one weight per training row (before validation_split,
// as Keras' sample_weight), one per line; errors name the file and the line.
Tensor sample_weights(const Spec& spec, int64_t rows) {
  const std::string& path = spec.fit.sample_weight;
  const data::Csv csv = data::read_csv(path);
  if (csv.cols != 0)
    throw ValueError(spec.path + ": fit.sample_weight: " + path + " has " + std::to_string(csv.cols + 1) +
                     " columns per line; expected one weight per line");
  if (csv.rows != rows)
    throw ValueError(spec.path + ": fit.sample_weight: " + path + " holds " + std::to_string(csv.rows) +
                     " weights for " + std::to_string(rows) + " training samples");
  for (int64_t i = 0; i < rows; ++i)
    if (!(csv.labels[static_cast<size_t>(i)] >= 0.f))
      throw ValueError(path + ": line " + std::to_string(i + 1) + ": sample weight " +
                       std::to_string(csv.labels[static_cast<size_t>(i)]) + " must be >= 0");
  return Tensor::from(csv.labels, Shape{rows});
}

// fit.callbacks of the spec (their keys were checked by read_spec), with Keras' defaults.
std::vector<std::unique_ptr<Callback>> callbacks_of_spec(const Spec& spec) {
  std::vector<std::unique_ptr<Callback>> out;
  for (size_t i = 0; i < spec.fit.callbacks.size(); ++i) {
    const CallbackSpec& cb = spec.fit.callbacks[i];
    const Json& c = cb.config;
    try {
      if (cb.class_name == "ReduceLROnPlateau") {
        ReduceLROnPlateau::Options o;
        o.monitor = c.value("monitor", o.monitor);
        o.factor = c.value("factor", o.factor);
        o.patience = c.value("patience", o.patience);
        o.verbose = c.value("verbose", o.verbose);
        o.mode = c.value("mode", o.mode);
        o.min_delta = c.value("min_delta", o.min_delta);
        o.cooldown = c.value("cooldown", o.cooldown);
        o.min_lr = c.value("min_lr", o.min_lr);
        out.push_back(std::make_unique<ReduceLROnPlateau>(o));
      } else {
        EarlyStopping::Options o;
        o.monitor = c.value("monitor", o.monitor);
        o.min_delta = c.value("min_delta", o.min_delta);
        o.patience = c.value("patience", o.patience);
        o.mode = c.value("mode", o.mode);
        o.restore_best_weights = c.value("restore_best_weights", o.restore_best_weights);
        o.start_from_epoch = c.value("start_from_epoch", o.start_from_epoch);
        out.push_back(std::make_unique<EarlyStopping>(o));
      }
    } catch (const std::exception& e) {
      throw ValueError(spec.path + ": fit.callbacks[" + std::to_string(i) + "] (" + cb.class_name + "): " +
                       json_error_text(e));
    }
  }
  return out;
}

// --- the training report ---------------------------------------------------------------------------

// fit logs the learning rate each epoch when a callback asks for it, as Keras' rate callbacks do;
// the report always charts it.
struct LogLearningRate : Callback {
  bool logs_learning_rate() const override { return true; }
};

// What a classifier made of a test set. nullopt for a model that classifies nothing (a regression,
// an autoencoder, whose binary cross-entropy compares pixels).
struct Classified {
  std::vector<int64_t> truth, predicted;
  ConfusionMatrix matrix;
};
std::optional<Classified> classify(Model& model, const data::Dataset& test, bool autoencoder) {
  if (!is_classifier(model) || autoencoder) return std::nullopt;
  const Tensor pred = model.predict(test);
  const bool binary = pred.rank() == 1 || pred.numel() == pred.dim(0);
  const ClassDecoding decoding{.threshold = binary && model.loss().from_logits() ? 0.f : 0.5f};
  Classified c;
  c.predicted = predicted_classes(pred, decoding);
  c.truth = true_classes(test.all_y(), pred);
  int64_t classes = binary ? 2 : pred.numel() / std::max<int64_t>(pred.dim(0), 1);
  for (int64_t t : c.truth) classes = std::max(classes, t + 1);
  c.matrix = ConfusionMatrix(classes);
  c.matrix.update(c.truth, c.predicted);
  return c;
}

Json confusion_rows(const ConfusionMatrix& matrix) {
  Json rows = Json::array();
  for (int64_t t = 0; t < matrix.num_classes(); ++t) {
    Json row = Json::array();
    for (int64_t p = 0; p < matrix.num_classes(); ++p) row.push_back(matrix.count(t, p));
    rows.push_back(row);
  }
  return rows;
}

// The names of a named data set's classes; empty where the indices are the names (digits).
std::vector<std::string> known_class_names(const std::string& data) {
  if (data == "fashion_mnist")  // Zalando's labels, in the order of the label bytes
    return {"T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"};
  if (data == "imdb") return {"negative", "positive"};
  return {};
}

std::string summary_text(Model& model) {
  std::ostringstream os;
  model.summary(os);
  return os.str();
}

// The compile config, as a saved model records it.
Json compile_json(const Model& model) {
  Json metrics = Json::array();
  for (const std::string& m : model.metric_names()) metrics.push_back(m);
  return {{"optimizer", {{"class_name", model.optimizer().name()}, {"config", model.optimizer().config()}}},
          {"loss", model.loss().config()},
          {"metrics", metrics}};
}

// The parts of `train`'s report known before the first epoch.
Json report_base(Model& model, const Spec& spec, const FitOptions& fit, uint64_t seed, const Preprocessing& pre) {
  Json r = {{"params", model.count_params()},
            {"seed", seed},
            {"threads", get_num_threads()},
            {"spec", spec.path},
            {"epochs", fit.epochs},
            {"initial_epoch", fit.initial_epoch},
            {"batch_size", fit.batch_size},
            {"validation_split", fit.validation_split},
            {"preprocessing", pre.to_json()},
            {"summary", summary_text(model)},
            {"compile", compile_json(model)}};
  if (const auto names = known_class_names(spec.data.name); !names.empty()) r["class_names"] = names;
  return r;
}

// How one sample is drawn as an image, if it is one: (H, W), (H, W, 1 or 3), or a flat sample of
// side x side values that is a named image set (mnist, fashion_mnist, digits) or that the model's
// first layer reshapes into a side x side x 1 image. Other flat samples are tabular: no picture.
std::optional<Shape> image_shape(const Shape& sample, const std::string& data, const Model& model) {
  if (sample.rank() == 2 || (sample.rank() == 3 && (sample[2] == 1 || sample[2] == 3))) return sample;
  if (sample.rank() != 1) return std::nullopt;
  const auto side = static_cast<int64_t>(std::lround(std::sqrt(static_cast<double>(sample[0]))));
  if (side * side != sample[0]) return std::nullopt;
  if (data == "mnist" || data == "fashion_mnist" || data == "digits") return Shape{side, side};
  for (const auto& l : model.layers()) {
    if (l->class_name() == "InputLayer") continue;
    const Json target = l->class_name() == "Reshape" ? l->config().value("target_shape", Json()) : Json();
    if (target == Json::array({side, side, 1})) return Shape{side, side};
    break;
  }
  return std::nullopt;
}

Json history_json(const History& history) {
  Json h = Json::object();
  for (const auto& [k, v] : history.history) h[k] = v;
  return h;
}

// The report so far: `base` (report_base) with the epochs run and the peak RSS until now.
Json report_after_epochs(Json base, Json history, const std::vector<double>& epoch_seconds) {
  base["history"] = std::move(history);
  base["epoch_seconds"] = epoch_seconds;
  base["peak_rss_mb"] = peak_rss_mb();
  return base;
}

// The report's pictures of what a classifier looked at: for images, the most confidently wrong test
// images beside their saliency maps; for texts read through an Embedding, a few test texts with
// their tokens' integrated gradients. Nothing for other inputs.
void add_explanations(HtmlReportOptions& page, Model& model, const data::Dataset& test, const Classified& c,
                      const std::string& data_name) {
  if (model.num_inputs() != 1 || test.size() == 0) return;
  const std::vector<std::string> names = known_class_names(data_name);
  if (page.class_names.empty()) page.class_names = names;
  if (model.text_vectorization()) {
    const bool embedding = std::any_of(model.layers().begin(), model.layers().end(),
                                       [](const auto& l) { return l->class_name() == "Embedding"; });
    if (embedding) page.texts = token_attributions(model, test.all_x(), c.truth, names);
    return;
  }
  if (const auto shape = image_shape(test.sample_shape(), data_name, model))
    page.wrong = wrong_predictions_gallery(model, test.all_x(), c.truth, {.count = 16, .image_shape = *shape, .class_names = names});
}

// Fails before any work when the page could not be written: its directory must exist.
void check_output_path(const std::string& path, const char* option) {
  const std::filesystem::path dir = std::filesystem::path(path).parent_path();
  std::error_code ec;
  if (!dir.empty() && !std::filesystem::is_directory(dir, ec))
    throw IoError(path + ": cannot write " + option + " there: no such directory " + dir.string());
  if (std::filesystem::is_directory(path, ec)) throw IoError(path + ": cannot write " + option + ": it is a directory");
  if (::access(dir.empty() ? "." : dir.c_str(), W_OK) != 0)
    throw IoError(path + ": cannot write " + option + ": directory " + (dir.empty() ? "." : dir.string()) +
                  " is not writable");
}

// When the first training step ended, on steady_clock (CLOCK_MONOTONIC, one clock for every
// process): the report's startup.first_step_end_monotonic_s, from which a launcher that noted when
// it started this process gets the start-up time (bench_compare's start-up row).
class FirstStepClock : public Callback {
 public:
  void on_batch_end(int64_t, const Logs&) override {
    if (at_ < 0) at_ = std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
  }
  double at() const { return at_; }

 private:
  double at_ = -1;
};

// Rewrites the HTML report at the start and at the end of every epoch, atomically (a browser
// reloading it never reads half a page), marked in progress: it refreshes itself and says which
// epoch training has reached.
class HtmlProgress : public Callback {
 public:
  HtmlProgress(std::string path, Json base, HtmlReportOptions options)
      : path_(std::move(path)), base_(std::move(base)), options_(std::move(options)) {}
  void on_train_begin(const TrainInfo&) override { write(); }
  void on_epoch_begin(int) override { start_ = std::chrono::steady_clock::now(); }
  void on_epoch_end(int, const Logs& logs) override {
    for (const auto& [k, v] : logs.values) history_[k].push_back(v);
    seconds_.push_back(std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count());
    write();
  }
  bool logs_learning_rate() const override { return true; }

 private:
  void write() {
    Json r = report_after_epochs(base_, history_, seconds_);
    r["in_progress"] = true;
    io::write_file_atomic(path_, training_report_html(r, options_));
  }
  std::string path_;
  Json base_, history_ = Json::object();
  std::vector<double> seconds_;
  HtmlReportOptions options_;
  std::chrono::steady_clock::time_point start_;
};

// --- commands --------------------------------------------------------------------------------------

// How many ranks of this job run on this machine (OpenMPI's OMPI_COMM_WORLD_LOCAL_SIZE; 1 when
// not under mpirun): each takes its share of the cores unless --threads says otherwise.
int ranks_on_this_host() {
  const char* v = std::getenv("OMPI_COMM_WORLD_LOCAL_SIZE");
  const int n = v ? std::atoi(v) : 1;
  return n > 0 ? n : 1;
}

// Train's "distributed" report entry: how the ranks split the work and what the gradient
// reduction cost (seconds summed over the run's steps; overlap = the share of allreduce time that
// ran while backward was still computing).
Json distributed_json(const Model& model, const TrainArgs& a, int64_t batch_size) {
  const distributed::Communicator& comm = *model.communicator();
  const distributed::ReducerStats st = model.distributed_stats();
  return {{"ranks", comm.size()},
          {"backend", comm.backend()},
          {"bucket_mb", a.bucket_mb},
          {"batch_per_rank", a.batch_per_rank},
          {"global_batch", a.batch_per_rank ? batch_size * comm.size() : batch_size},
          {"overlap_enabled", !a.no_overlap},
          {"buckets", st.buckets},
          {"bytes_per_step", st.bytes_per_step},
          {"steps", st.steps},
          {"backward_seconds", st.backward_seconds},
          {"allreduce_seconds", st.allreduce_seconds},
          {"exposed_seconds", st.exposed_seconds},
          {"overlap", st.overlap()}};
}

int train_on(const TrainArgs& a, const std::shared_ptr<distributed::Communicator>& comm) {
  const bool lead = comm->rank() == 0;  // rank 0 alone prints and writes files
  const Spec spec = read_spec(a.spec);
  if (!a.html.empty()) check_output_path(a.html, "--html");
  const uint64_t seed = a.seed ? *a.seed : spec.fit.seed.value_or(0);
  if (a.threads) {
    set_num_threads(*a.threads);
  } else if (const int local = ranks_on_this_host(); local > 1) {  // the cores shared among this host's ranks
    set_num_threads(std::max(1, get_num_threads() / local));
  }
  apply_memory_limit(a.memory);
  manual_seed(seed);  // before the model draws its initial weights
  Model model = model_of_spec(spec);
  compile_from_spec(model, spec);
  if (!a.resume.empty()) model = resume_from(a.resume, model, spec, *comm);
  if (comm->size() > 1)
    model.distribute(comm, {.bucket_mb = a.bucket_mb, .batch_per_rank = a.batch_per_rank, .overlap = !a.no_overlap});
  // Several inputs come from named CSV column groups (data.inputs), matched to the model's inputs.
  const bool grouped = !spec.data.inputs.empty();
  Prepared data = load_training_data(spec, grouped ? std::nullopt : model.input_shape());
  if (grouped) {
    data.train = split_columns(data.train, spec.data.inputs, model.input_names(), model.input_shapes(), spec.path);
    data.test = split_columns(data.test, spec.data.inputs, model.input_names(), model.input_shapes(), spec.path);
    data.preprocessing.inputs = spec.data.inputs;
  } else if (model.num_inputs() > 1) {
    throw ValueError(spec.path + ": data: model '" + model.name() + "' has " + std::to_string(model.num_inputs()) +
                     " inputs; name a CSV column group for each in data.inputs ({\"" + model.input_names()[0] +
                     "\": [0, N], ...})");
  }
  if (spec.data.targets_are_inputs) {  // an autoencoder: fit(x, x)
    if (!model.built()) model.build(data.train.sample_shape());
    data.train = inputs_as_targets(data.train, model.output_shape(), spec.path);
    data.test = inputs_as_targets(data.test, model.output_shape(), spec.path);
  }
  // Text data: the vectorizer adapted on the training texts goes into the model (and so into every
  // file saved from it, checkpoints included) for evaluate and predict.
  if (data.text) model.set_text_vectorization(*data.text);
  const std::map<std::string, std::string> metadata = {{kPreprocessingKey, data.preprocessing.to_json().dump()}};
  // Before any step: the labels must suit the loss and the output ("train.csv: line 14, ...").
  if (!model.built()) model.build(data.train.sample_shape());
  model.check_targets(data.train, data.train_from.file, data.train_from.position);
  model.check_targets(data.test, data.test_from.file, data.test_from.position);

  FitOptions fit;
  fit.epochs = a.epochs.value_or(spec.fit.epochs);
  fit.initial_epoch = model.fit_state().epoch;  // 0 unless resuming
  fit.batch_size = a.batch_size.value_or(spec.fit.batch_size);
  fit.validation_split = spec.fit.validation_split;
  fit.shuffle = spec.fit.shuffle;
  fit.verbose = a.quiet || !lead ? 0 : spec.fit.verbose;
  fit.class_weight = spec.fit.class_weight;
  if (!spec.fit.sample_weight.empty()) fit.sample_weight = sample_weights(spec, data.train.size());
  TerminateOnNaN nan_guard;  // on by default: a diverged run stops at once and says where
  LogLearningRate log_rate;
  FirstStepClock first_step;
  fit.callbacks = {&nan_guard, &log_rate, &first_step};
  Json base = report_base(model, spec, fit, seed, data.preprocessing);
  if (model.is_distributed()) base["distributed"] = distributed_json(model, a, fit.batch_size);
  HtmlReportOptions page{.smoothing = a.smoothing.value_or(0.0)};
  std::optional<HtmlProgress> live;
  if (!a.html.empty() && lead) fit.callbacks.push_back(&live.emplace(a.html, base, page));
  std::vector<std::unique_ptr<Callback>> spec_callbacks = callbacks_of_spec(spec);
  for (auto& c : spec_callbacks) fit.callbacks.push_back(c.get());
  std::vector<ModelCheckpoint> checkpoints;  // DIR/last every epoch (and every N batches), DIR/best
  if (!a.checkpoint.empty()) {
    const std::string last = a.checkpoint + "/last.safetensors", best = a.checkpoint + "/best.safetensors";
    checkpoints.reserve(3);  // fit keeps pointers
    checkpoints.emplace_back(ModelCheckpoint::Options{.filepath = last, .metadata = metadata});
    if (a.checkpoint_every)
      checkpoints.emplace_back(
          ModelCheckpoint::Options{.filepath = last, .save_freq = *a.checkpoint_every, .metadata = metadata});
    if (fit.validation_split > 0.0)
      checkpoints.emplace_back(ModelCheckpoint::Options{
          .filepath = best,
          .monitor = a.monitor,
          .save_best_only = true,
          .save_weights_only = true,
          .initial_value_threshold = a.resume.empty() ? std::nullopt : recorded_value(best, a.monitor),
          .metadata = metadata});
    for (ModelCheckpoint& c : checkpoints) fit.callbacks.push_back(&c);
  }
  const History history = model.fit(data.train, fit);
  if (nan_guard.stopped()) {
    if (!a.html.empty() && lead) {  // the page stops refreshing and shows the curves up to the divergence
      io::write_file_atomic(a.html, training_report_html(report_after_epochs(base, history_json(history), history.epoch_seconds), page));
    }
    const std::string& cause = model.divergence();
    throw ValueError(spec.path + ": training diverged at " + nan_guard.message().substr(0, nan_guard.message().find(':')) +
                     " (non-finite loss)" + (cause.empty() ? "" : "; first non-finite values: " + cause) +
                     ".\n  hint: lower the learning rate, or set clipnorm in compile.optimizer");
  }

  const Logs test = model.evaluate(data.test, {.verbose = 0});  // over every rank's share
  if (!lead) return 0;
  std::cout << "test: " << logs_line(test) << "\n";

  if (!a.save.empty()) {
    model.save(a.save, metadata);
    if (!a.quiet) std::cout << "saved " << a.save << "\n";
  }
  if (!a.report.empty() || !a.html.empty()) {
    const std::optional<Classified> classified = classify(model, data.test, spec.data.targets_are_inputs);
    if (!a.html.empty() && classified && !grouped) add_explanations(page, model, data.test, *classified, spec.data.name);
    Json report = report_after_epochs(base, history_json(history), history.epoch_seconds);
    report["test"] = logs_json(test);
    if (first_step.at() >= 0) report["startup"] = {{"first_step_end_monotonic_s", first_step.at()}};
    if (model.is_distributed()) report["distributed"] = distributed_json(model, a, fit.batch_size);
    if (classified) report["confusion_matrix"] = confusion_rows(classified->matrix);
    if (!a.report.empty()) write_report(a.report, report);
    if (!a.html.empty()) {
      io::write_file_atomic(a.html, training_report_html(report, page));
      if (!a.quiet) std::cout << "wrote " << a.html << "\n";
    }
  }
  return 0;
}

// train on the communicator this process was launched for (distributed::init: MPI under mpirun,
// Gloo from LAMINA_* variables, else alone). An error on one rank ends every rank of the job at
// once (MPI_Abort), after this rank has said what went wrong, rather than leaving them waiting.
int train(const TrainArgs& a) {
  const std::shared_ptr<distributed::Communicator> comm = distributed::init();
  if (a.timeout) comm->set_timeout(*a.timeout);
  if (comm->size() == 1) return train_on(a, comm);
  try {
    return train_on(a, comm);
  } catch (const std::exception& e) {
    std::cerr << "lamina: error (rank " << comm->rank() << " of " << comm->size() << "): " << e.what() << std::endl;
    comm->abort(1);
    throw;
  }
}

int evaluate(const EvaluateArgs& a) {
  apply_memory_limit(a.memory);
  Preprocessing pre;
  Model model = open_model(a.model, &pre);
  if (!model.compiled() && is_onnx_file(a.model)) compile_imported(model, a.model);
  if (!model.compiled())
    throw ValueError(a.model + ": the model has no compile config (loss, metrics), so it cannot be evaluated");
  Provenance from;
  data::Dataset test =
      model.text_vectorization()
          ? load_text_evaluation_data(a.data, *model.text_vectorization(), &from)
          : load_evaluation_data(a.data, pre, pre.inputs.empty() ? model.input_shape() : std::nullopt, &from);
  if (!pre.inputs.empty()) test = split_columns(test, pre.inputs, model.input_names(), model.input_shapes(), a.model);
  if (pre.targets_are_inputs) test = inputs_as_targets(test, model.output_shape(), a.model);
  model.check_targets(test, from.file, from.position);
  const Logs logs = model.evaluate(test, {.verbose = 1});

  Json report = {{"test", logs_json(logs)},
                 {"params", model.count_params()},
                 {"threads", get_num_threads()},
                 {"data", a.data},
                 {"samples", test.size()}};
  if (const auto classified = classify(model, test, pre.targets_are_inputs)) {
    std::cout << "\n";
    classified->matrix.print(std::cout);
    report["confusion_matrix"] = confusion_rows(classified->matrix);
  }
  if (!a.report.empty()) {
    report["peak_rss_mb"] = peak_rss_mb();
    write_report(a.report, report);
  }
  return 0;
}

// The texts `predict` runs a text model on: each argument is a text, except an existing file,
// which holds texts (a .tsv file of LABEL<TAB>TEXT, as data/imdb/test.tsv; otherwise one text per
// line). An empty text is an error; one left without tokens by standardize and split (only
// punctuation, say) is all padding, and a note says so.
std::vector<std::string> prediction_texts(const std::vector<std::string>& args, const TextVectorization& tv) {
  std::vector<std::string> texts;
  for (const std::string& arg : args) {
    std::error_code ec;
    if (!std::filesystem::is_regular_file(arg, ec)) {
      texts.push_back(arg);
      continue;
    }
    if (arg.size() >= 4 && arg.compare(arg.size() - 4, 4, ".tsv") == 0) {
      for (std::string& t : data::read_text_tsv(arg).texts) texts.push_back(std::move(t));
      continue;
    }
    std::ifstream f(arg);
    for (std::string line; std::getline(f, line);)
      if (!line.empty()) texts.push_back(line);
  }
  for (size_t i = 0; i < texts.size(); ++i) {
    if (texts[i].find_first_not_of(" \t\n\v\f\r") == std::string::npos)
      throw ValueError("predict: text " + std::to_string(i) + " is empty; give the text to classify, in quotes");
    if (tv.encode(texts[i]).empty())
      std::cerr << "lamina: note: text " << i << " has no tokens after standardize \"" << tv.options().standardize
                << "\" and split; the model sees only padding\n";
  }
  if (texts.empty()) throw ValueError("predict: no texts (the files given hold no lines)");
  return texts;
}

int predict(const PredictArgs& a) {
  apply_memory_limit(a.memory);
  Preprocessing pre;
  Model model = open_model(a.model, &pre);
  if (!model.compiled() && is_onnx_file(a.model)) compile_imported(model, a.model);
  const auto shape = model.input_shape();
  if (!shape) throw ValueError(a.model + ": the model declares no input shape");
  Tensor out;
  Tensor x;
  if (const TextVectorization* tv = model.text_vectorization()) {
    x = (*tv)(prediction_texts(a.inputs, *tv));
    out = model.predict(x);
  } else if (a.inputs.size() != 1) {
    throw ValueError(a.model + ": takes one input file (IDX or CSV), got " + std::to_string(a.inputs.size()) +
                     " arguments; only a model trained on text takes several texts");
  } else if (pre.inputs.empty()) {
    x = load_prediction_input(a.inputs[0], pre, *shape);
    out = model.predict(x);
  } else {  // several inputs: each sample's features, split by the recorded column groups
    int64_t columns = 0;
    for (const InputColumns& c : pre.inputs) columns = std::max(columns, c.end);
    x = load_prediction_input(a.inputs[0], pre, Shape{columns});
    out = model.predict_all(split_columns(x, pre.inputs, model.input_names(), model.input_shapes(), a.model)).at(0);
  }
  const int64_t n = x.dim(0), width = out.numel() / std::max<int64_t>(n, 1);
  const bool compiled = model.compiled();
  const bool classifier = is_classifier(model) || (!compiled && width > 1);
  const bool logits = compiled && model.loss().from_logits();
  const float* v = out.data();
  std::vector<double> probs;
  std::vector<int64_t> order;
  char item[64];
  for (int64_t i = 0; i < n; ++i, v += width) {
    std::string line = std::to_string(i);
    if (!classifier) {  // regression: the outputs themselves
      for (int64_t c = 0; c < width; ++c) {
        std::snprintf(item, sizeof item, " %.6g", static_cast<double>(v[c]));
        line += item;
      }
      std::cout << line << "\n";
      continue;
    }
    if (width == 1) {  // one binary output: P(class 1)
      const double p = logits ? 1.0 / (1.0 + std::exp(-static_cast<double>(v[0]))) : static_cast<double>(v[0]);
      probs = {1.0 - p, p};
    } else if (logits) {  // softmax, shifted by the max for stability
      const double mx = *std::max_element(v, v + width);
      probs.assign(static_cast<size_t>(width), 0.0);
      double sum = 0;
      for (int64_t c = 0; c < width; ++c) sum += probs[static_cast<size_t>(c)] = std::exp(static_cast<double>(v[c]) - mx);
      for (double& p : probs) p /= sum;
    } else {
      probs.assign(v, v + width);
    }
    order.resize(probs.size());
    std::iota(order.begin(), order.end(), 0);
    const auto k = std::min<size_t>(static_cast<size_t>(a.top), order.size());
    std::partial_sort(order.begin(), order.begin() + static_cast<std::ptrdiff_t>(k), order.end(),
                      [&](int64_t l, int64_t r) { return probs[static_cast<size_t>(l)] > probs[static_cast<size_t>(r)]; });
    for (size_t j = 0; j < k; ++j) {
      std::snprintf(item, sizeof item, " %lld:%.6f", static_cast<long long>(order[j]), probs[static_cast<size_t>(order[j])]);
      line += item;
    }
    std::cout << line << "\n";
  }
  return 0;
}

// The model as ONNX, for other runtimes. The CLI's input scaling is not part of the graph: it
// goes into the ONNX metadata (lamina_preprocessing) and is printed, so callers can apply it.
int export_model(const ExportArgs& a) {
  Model model = Model::load(a.model);
  std::map<std::string, std::string> metadata;
  const io::SafetensorsFile file = io::load_safetensors(a.model);
  if (const auto it = file.metadata.find(kPreprocessingKey); it != file.metadata.end())
    metadata[kPreprocessingKey] = it->second;
  if (const auto it = file.metadata.find("text_vectorization"); it != file.metadata.end())
    metadata["text_vectorization"] = it->second;
  save_onnx(model, a.onnx, metadata);
  const auto out = model.output_shape();
  std::cout << "wrote " << a.onnx << ": input \"input\" (N, " << model.input_shape()->str().substr(1)
            << ", output \"output\" (N, " << out.str().substr(1) << ", channels-last as Lamina\n";
  if (const auto it = metadata.find(kPreprocessingKey); it != metadata.end())
    std::cout << "note: the graph takes inputs already scaled as in training (" << kPreprocessingKey << ": "
              << it->second << ")\n";
  if (model.text_vectorization())
    std::cout << "note: the graph takes token indices; the text vectorizer (standardize, split, vocabulary) is in "
                 "the ONNX metadata as text_vectorization, not in the graph\n";
  return 0;
}

struct ReportArgs {
  std::string report, model, out;
  std::optional<double> smoothing;
};

// A saved report as a web page. With a model: the test data its spec names, for the confusion
// matrix when the report has none, and for the pictures of what the model looked at.
int report(const ReportArgs& a) {
  check_output_path(a.out, "-o");
  Json r = read_report_json(a.report);
  HtmlReportOptions page{.smoothing = a.smoothing.value_or(0.0)};
  if (!a.model.empty()) {
    apply_memory_limit({});
    Preprocessing pre;
    Model model = open_model(a.model, &pre);
    if (!model.compiled() && is_onnx_file(a.model)) compile_imported(model, a.model);
    if (!r.contains("spec") || !r["spec"].is_string())
      throw ValueError(a.report + ": names no spec (\"spec\"), so the test data for " + a.model +
                       " is unknown; it is a report of lamina train --report");
    const std::string spec_path = r["spec"].get<std::string>();
    Spec spec;
    try {
      spec = read_spec(spec_path);
    } catch (const Error& e) {
      throw IoError(a.report + ": spec: " + e.what() + " (run lamina report where the training ran)");
    }
    data::Dataset test;
    if (const TextVectorization* tv = model.text_vectorization()) {
      test = load_text_evaluation_data(spec.data.name == "imdb" ? "imdb" : spec.data.test_path, *tv);
    } else {
      const bool grouped = !pre.inputs.empty();
      test = load_training_data(spec, grouped ? std::nullopt : model.input_shape()).test;
      if (grouped) test = split_columns(test, pre.inputs, model.input_names(), model.input_shapes(), a.model);
    }
    if (pre.targets_are_inputs) test = inputs_as_targets(test, model.output_shape(), a.model);
    if (!r.contains("summary")) r["summary"] = summary_text(model);
    if (!r.contains("compile") && model.compiled()) r["compile"] = compile_json(model);
    if (const auto classified = classify(model, test, pre.targets_are_inputs)) {
      if (!r.contains("confusion_matrix")) r["confusion_matrix"] = confusion_rows(classified->matrix);
      if (pre.inputs.empty()) add_explanations(page, model, test, *classified, spec.data.name);
    }
  }
  io::write_file_atomic(a.out, training_report_html(r, page));
  std::cout << "wrote " << a.out << "\n";
  return 0;
}

struct GenerateArgs {
  std::string model, out;
  std::optional<int64_t> label;
  int64_t count = 64;
  std::optional<int64_t> rows;
  std::optional<uint64_t> seed;
};

// The value range of a generator's output, from its last layer's activation: tanh gives [-1, 1],
// anything else (sigmoid, a VAE's decoder) is taken as [0, 1] and clamped there.
std::pair<float, float> output_range(const Model& model) {
  const std::string act = model.layers().back()->config().value("activation", "linear");
  return act == "tanh" ? std::pair{-1.f, 1.f} : std::pair{0.f, 1.f};
}

// Samples as images: (N, H, W), (N, H, W, 1 or 3), or flat (N, k*k) read as k x k grey.
Tensor as_images(const Tensor& samples, const std::string& model_path) {
  const Shape s = samples.shape();
  if (s.rank() == 3 || (s.rank() == 4 && (s[3] == 1 || s[3] == 3)))
    return s.rank() == 4 && s[3] == 1 ? reshape(samples, Shape{s[0], s[1], s[2]}) : samples;
  if (s.rank() == 2) {
    const auto side = static_cast<int64_t>(std::lround(std::sqrt(static_cast<double>(s[1]))));
    if (side * side == s[1]) return reshape(samples, Shape{s[0], side, side});
  }
  throw ShapeError(model_path + ": the model makes samples of shape " + Shape(std::vector<int64_t>(s.begin() + 1, s.end())).str() +
                   ", which are not images: expected (H, W), (H, W, 1), (H, W, 3) or a square number of values");
}

int generate(const GenerateArgs& a) {
  Model model = open_model(a.model);
  Tensor samples = sample_generator(model, {.count = a.count, .label = a.label, .seed = a.seed.value_or(0)});
  const auto [lo, hi] = output_range(model);
  Tensor images = (as_images(samples, a.model) - lo) * (1.f / (hi - lo));
  const int64_t cols = a.rows ? (a.count + *a.rows - 1) / *a.rows
                              : static_cast<int64_t>(std::ceil(std::sqrt(static_cast<double>(a.count))));
  const int64_t rows = a.rows ? *a.rows : (a.count + cols - 1) / cols;
  write_png(a.out, image_grid(images, rows, cols));
  std::cout << "wrote " << a.out << ": " << a.count << " samples" << (a.label ? " of class " + std::to_string(*a.label) : "")
            << " in a " << rows << " x " << cols << " grid\n";
  return 0;
}

struct ExplainArgs {
  std::string model, input, method, out;
  std::optional<int64_t> index, target;
  int steps = 50;
  std::string rule = "gausslegendre";
  float baseline = 0.f;
  std::string layer;
  std::vector<int64_t> window, stride;
  int samples = 25;
  std::optional<float> stdev;
  uint64_t seed = 0;
};

// "dir/name.png" -> "dir/name.npy": the raw attributions beside the picture.
std::string npy_beside(const std::string& out) {
  std::filesystem::path p(out);
  p.replace_extension(".npy");
  return p.string();
}

// The model's first Embedding layer: where a text model's attributions are taken.
std::string embedding_layer(const Model& model, const std::string& model_path) {
  for (const auto& l : model.layers())
    if (l->class_name() == "Embedding") return l->name();
  throw ValueError(model_path + ": a text model without an Embedding layer; attributions for text are taken at the "
                                "Embedding's output");
}

// The input to explain, as a batch of one: a row of an IDX or CSV file (--index), or a PNG image,
// scaled as the model was trained (its recorded preprocessing).
Tensor explain_input(const ExplainArgs& a, const Preprocessing& pre, const Shape& shape, const Model& model) {
  const bool png = a.input.size() >= 4 && a.input.compare(a.input.size() - 4, 4, ".png") == 0;
  if (png) {
    if (a.index) throw ValueError("explain: --index selects a row of an IDX or CSV file; " + a.input + " is one image");
    const auto image = image_shape(shape, pre.data, model);
    if (!image)
      throw ShapeError(a.model + ": the model takes inputs of shape " + shape.str() +
                       ", not images (H, W), (H, W, 1), (H, W, 3) or side x side values; give an IDX or CSV file with --index");
    const int64_t channels = image->rank() == 3 ? (*image)[2] : 1;
    const Tensor img = read_png(a.input, static_cast<int>(channels));
    if (img.dim(0) != (*image)[0] || img.dim(1) != (*image)[1])
      throw ShapeError(a.input + ": the image is " + std::to_string(img.dim(1)) + " x " + std::to_string(img.dim(0)) +
                       " pixels (width x height), but model " + a.model + " takes " + std::to_string((*image)[1]) + " x " +
                       std::to_string((*image)[0]));
    // PNG values are bytes / 255; the model saw bytes * scale.
    return (img * static_cast<float>(255.0 * pre.scale)).reshape(with_batch(1, shape));
  }
  const Tensor all = load_prediction_input(a.input, pre, shape);
  const int64_t n = all.dim(0);
  if (!a.index && n > 1)
    throw ValueError("explain: " + a.input + " holds " + std::to_string(n) + " samples; choose one with --index (0 to " +
                     std::to_string(n - 1) + ")");
  const int64_t i = a.index.value_or(0);
  if (i >= n)
    throw ValueError("explain: --index " + std::to_string(i) + " is out of range: " + a.input + " holds " +
                     std::to_string(n) + " samples (0 to " + std::to_string(n - 1) + ")");
  return all.view(i * shape.numel(), with_batch(1, shape)).clone();
}

int explain_command(const ExplainArgs& a) {
  const std::string method = explain::method_name(a.method);
  Preprocessing pre;
  Model model = open_model(a.model, &pre);
  const auto shape = model.input_shape();
  if (!shape) throw ValueError(a.model + ": the model declares no input shape");
  const explain::Target target = a.target ? explain::Target{*a.target} : explain::Target{};
  const TextVectorization* tv = model.text_vectorization();
  Tensor x;
  std::string layer = a.layer;
  if (tv) {
    if (method != "ig" && method != "ixg" && method != "saliency")
      throw ValueError("explain: method '" + a.method + "' does not apply to text; for a text model use ig, ixg or saliency");
    if (a.index) throw ValueError("explain: --index does not apply to a text model; give the text itself");
    x = (*tv)(std::vector<std::string>{a.input});
    if (layer.empty()) layer = embedding_layer(model, a.model);
  } else {
    x = explain_input(a, pre, *shape, model);
    if (!layer.empty() && method != "gradcam" && method != "ig" && method != "ixg" && method != "saliency")
      throw ValueError("explain: --layer applies to gradcam (the convolutional layer) and to saliency, ixg and ig "
                       "(attributions at that layer's output), not to " + method);
  }
  const Tensor y = model.predict(x);
  const std::vector<int64_t> t = explain::resolve_target(y, target);

  Tensor attributions;
  std::string extra;
  char line[160];
  if (method == "saliency") {
    attributions = explain::saliency(model, x, {.target = t, .layer = layer});
  } else if (method == "ixg") {
    attributions = explain::input_x_gradient(model, x, {.target = t, .layer = layer});
  } else if (method == "ig") {
    explain::IntegratedGradientsOptions o;
    o.target = t;
    o.layer = layer;
    o.steps = a.steps;
    o.rule = explain::rule_from_string(a.rule);
    if (!tv) o.baseline = Tensor::full(*shape, a.baseline);
    const auto ig = explain::integrated_gradients(model, x, o);
    attributions = ig.attributions;
    std::snprintf(line, sizeof line, "integrated gradients: %d steps (%s), convergence delta %.3g\n", a.steps,
                  a.rule.c_str(), static_cast<double>(ig.delta.item()));
    extra = line;
  } else if (method == "smoothgrad") {
    float lo = x.data()[0], hi = lo;
    for (float v : x.values()) lo = std::min(lo, v), hi = std::max(hi, v);
    const float stdev = a.stdev.value_or(0.15f * (hi - lo));  // SmoothGrad's 10-20% of the input's range
    explain::Method sal = [&](const Tensor& in) { return explain::saliency(model, in, {.target = t}); };
    attributions = explain::noise_tunnel(sal, x, {.samples = a.samples, .stdev = stdev, .seed = a.seed});
  } else if (method == "occlusion") {
    // Default window: 4 x 4 (whole channels) on images, one feature otherwise; stride: half the window.
    std::vector<int64_t> win = a.window;
    const Shape& s = *shape;
    if (win.empty()) {
      for (int64_t d = 0; d < s.rank(); ++d) win.push_back(d < 2 && s.rank() >= 2 ? std::min<int64_t>(4, s[d]) : (s.rank() >= 2 ? s[d] : 1));
    } else if (static_cast<int64_t>(win.size()) < s.rank()) {
      for (int64_t d = static_cast<int64_t>(win.size()); d < s.rank(); ++d) win.push_back(s[d]);  // whole channels
    }
    std::vector<int64_t> str = a.stride;
    if (str.empty())
      for (int64_t w : win) str.push_back(std::max<int64_t>(1, w / 2));
    else
      for (int64_t d = static_cast<int64_t>(str.size()); d < static_cast<int64_t>(win.size()); ++d) str.push_back(1);
    attributions = explain::occlusion(model, x, {.target = t, .window = Shape(win), .strides = Shape(str), .baseline = a.baseline});
  } else {
    attributions = explain::grad_cam(model, x, {.target = t, .layer = layer});
  }

  // What was explained.
  const int64_t k = y.numel();
  std::printf("explaining output %lld of %lld (%s %.4f) with %s\n", static_cast<long long>(t[0]),
              static_cast<long long>(k), k > 1 ? "score" : "value", static_cast<double>(y.data()[t[0] < k ? t[0] : 0]),
              method.c_str());
  std::cout << extra;
  const std::string npy = npy_beside(a.out);
  if (tv) {
    const Tensor scores = explain::token_scores(attributions);
    // Position by position as the model saw them (padding, id 0, left out).
    const auto& vocab = tv->get_vocabulary();
    for (int64_t i = 0; i < scores.dim(1); ++i) {
      const auto id = static_cast<size_t>(x.data()[i]);
      if (id != 0 && id < vocab.size())
        std::printf("%-20s %+.5f\n", vocab[id].c_str(), static_cast<double>(scores.data()[i]));
    }
    io::save_npy(npy, scores.reshape(Shape{scores.dim(1)}));
    std::cout << "wrote " << npy << ": one score per token position\n";
    return 0;
  }
  if (!layer.empty() && method != "gradcam") {  // at a layer's output: no picture of the input
    const Tensor at = attributions.reshape(Shape(std::vector<int64_t>(attributions.shape().begin() + 1, attributions.shape().end())));
    io::save_npy(npy, at);
    std::cout << "wrote " << npy << " " << at.shape().str() << ": the attributions at layer '" << layer
              << "''s output (no picture: they are not in the input's shape)\n";
    return 0;
  }
  // The attributions in the input's own shape (GradCAM's map has one channel).
  Tensor raw = attributions.reshape(Shape(std::vector<int64_t>(attributions.shape().begin() + 1, attributions.shape().end())));
  const auto img_shape = image_shape(*shape, pre.data, model);
  if (!img_shape) {
    io::save_npy(npy, raw);
    std::cout << "wrote " << npy << " (the input " << shape->str() << " is not an image, so no picture)\n";
    return 0;
  }
  const Tensor image = x.reshape(*img_shape);
  std::vector<int64_t> amap = img_shape->dims();
  if (raw.numel() != img_shape->numel()) amap.back() = raw.numel() / (amap[0] * amap[1]);  // GradCAM on RGB: one channel
  const float high = pre.scale != 1.0 ? static_cast<float>(255.0 * pre.scale) : std::max(1.f, *std::max_element(image.data(), image.data() + image.numel()));
  Tensor picture = explain::overlay(image, raw.reshape(Shape(amap)), {.low = 0.f, .high = high});
  const int64_t factor = std::max<int64_t>(1, 224 / std::max(image.dim(0), image.dim(1)));
  picture = reshape(upsample2d(reshape(picture, Shape{1, picture.dim(0), picture.dim(1), 3}), Size2(factor)),
                    Shape{picture.dim(0) * factor, picture.dim(1) * factor, 3});  // nearest: each pixel a square
  write_png(a.out, picture);
  io::save_npy(npy, raw);
  std::cout << "wrote " << a.out << " (" << picture.dim(1) << " x " << picture.dim(0) << ", the input with its heat map) and "
            << npy << " " << raw.shape().str() << "\n";
  return 0;
}

// A spec / bare model JSON, or a model file (safetensors: 8-byte length, then a JSON header; ONNX).
bool is_model_file(const std::string& path) {
  auto ends_with = [&](const std::string& s) {
    return path.size() >= s.size() && path.compare(path.size() - s.size(), s.size(), s) == 0;
  };
  if (ends_with(".safetensors") || is_onnx_file(path)) return true;
  if (ends_with(".json")) return false;
  std::ifstream f(path, std::ios::binary);
  char head[9] = {};
  return f.read(head, 9) && head[8] == '{';
}

int summary(const std::string& path) {
  apply_memory_limit({});
  if (is_model_file(path)) {
    open_model(path).summary(std::cout);
    return 0;
  }
  const Json j = read_json_file(path);
  manual_seed(0);
  Model model = looks_like_spec(j) ? model_of_spec(read_spec(path)) : model_from_spec_json(j, path);
  model.summary(std::cout);
  return 0;
}

// A whole number >= min, with a plain message ("expected an integer >= 1, got 'many'").
CLI::Validator at_least(long long min) {
  return CLI::Validator(
      [min](std::string& s) -> std::string {
        std::size_t used = 0;
        bool ok = !s.empty() && (std::isdigit(static_cast<unsigned char>(s[0])) || s[0] == '-');
        try {  // all digits, in range: unsigned so that 64-bit seeds fit
          ok = ok && (s[0] == '-' ? std::stoll(s, &used) >= min : std::stoull(s, &used) >= static_cast<unsigned long long>(std::max(min, 0LL)));
        } catch (const std::exception&) {
          ok = false;
        }
        if (!ok || used != s.size())
          return "expected an integer >= " + std::to_string(min) + ", got '" + s + "'";
        return {};
      },
      "INT>=" + std::to_string(min));
}

// A smoothing weight in [0, 1), as TensorBoard's slider.
CLI::Validator smoothing_weight() {
  return CLI::Validator(
      [](std::string& s) -> std::string {
        std::size_t used = 0;
        double w = -1;
        try {
          w = std::stod(s, &used);
        } catch (const std::exception&) {
          used = 0;
        }
        if (used == 0 || used != s.size() || !(w >= 0.0 && w < 1.0))
          return "expected a number in [0, 1) (0: no smoothing, 0.6: TensorBoard's default), got '" + s + "'";
        return {};
      },
      "W");
}

int run(int argc, char** argv) {
  CLI::App app{"Lamina: train, evaluate and run Keras-style models.", "lamina"};
  app.require_subcommand(1);
  app.set_version_flag("--version", std::string("lamina ") + LAMINA_VERSION +
                                         (*lamina::build_arch() ? std::string(" (built for ") + lamina::build_arch() + ")"
                                                                : std::string()));

  TrainArgs ta;
  CLI::App* train_cmd = app.add_subcommand("train", "Train a model from a JSON spec and evaluate it on the test split");
  train_cmd->add_option("spec", ta.spec, "Spec file: {\"model\", \"data\", \"compile\", \"fit\"}; \"model\" may name a .onnx or .safetensors file to fine-tune")->required();
  train_cmd->add_option("--epochs", ta.epochs, "Epochs (default: the spec's fit.epochs)")->check(at_least(0));
  train_cmd->add_option("--batch-size", ta.batch_size, "Batch size (default: fit.batch_size)")->check(at_least(1));
  train_cmd->add_option("--seed", ta.seed, "Seed for weights and shuffling (default: fit.seed, else 0)")->check(at_least(0));
  train_cmd->add_option("--threads", ta.threads, "Compute threads (default: all cores, shared among the ranks on this machine under mpirun)")->check(at_least(1));
  train_cmd->add_option("--save", ta.save, "Write the trained model (safetensors)");
  train_cmd->add_option("--report", ta.report, "Write a JSON report: history, timings, test metrics");
  CLI::Option* html_opt = train_cmd->add_option(
      "--html", ta.html, "Write the training report as a web page, rewritten after every epoch while training runs");
  train_cmd->add_option("--smoothing", ta.smoothing, "Smooth the --html curves (TensorBoard's weight in [0, 1); default 0)")
      ->check(smoothing_weight())
      ->needs(html_opt);
  train_cmd->add_flag("-q,--quiet", ta.quiet, "No progress output");
  CLI::Option* checkpoint_opt =
      train_cmd->add_option("--checkpoint", ta.checkpoint, "Write checkpoints into DIR (see below)")->type_name("DIR");
  train_cmd->add_option("--checkpoint-every", ta.checkpoint_every, "Also write DIR/last.safetensors every N batches")
      ->check(at_least(1))
      ->needs(checkpoint_opt);
  train_cmd->add_option("--monitor", ta.monitor, "The value that picks DIR/best.safetensors (default val_loss)")
      ->type_name("NAME")
      ->needs(checkpoint_opt);
  train_cmd->add_option("--resume", ta.resume, "Continue training from a checkpoint file")->type_name("CKPT");
  train_cmd->footer(
      "Checkpoints: --checkpoint DIR writes DIR/last.safetensors after every epoch (and every N batches\n"
      "with --checkpoint-every N), holding the weights, the optimizer state, the random generators and\n"
      "the epoch; with validation data (fit.validation_split) also DIR/best.safetensors, the model at\n"
      "its best --monitor value. Each file is replaced atomically: killing the process at any moment\n"
      "leaves the previous one whole. --resume DIR/last.safetensors continues up to --epochs (or\n"
      "fit.epochs) in total; with the same spec, data and --threads the weights equal those of an\n"
      "uninterrupted run bit for bit. evaluate, predict and summary read checkpoints as models.\n\n"
      "Data parallel: mpirun -np N lamina train SPEC trains on N processes (or machines), each on its\n"
      "share of every batch, with the gradients averaged over them, so the N ranks take the steps one\n"
      "process would. The global batch is --batch-size (fit.batch_size), split over the ranks; with\n"
      "--batch-per-rank it is N x --batch-size. Rank 0 prints the progress and writes --save, --report,\n"
      "--html and the checkpoints; a resume needs the same global batch. Without mpirun: Gloo over TCP\n"
      "when LAMINA_RANK, LAMINA_WORLD_SIZE and LAMINA_RENDEZVOUS (a shared directory) are set.");
  const std::string memory_help =
      "Refuse to start when the estimated memory (weights, gradients, optimizer state, a batch's activations, "
      "the data) exceeds SIZE: 512M, 2G, or none (default: 80% of the cgroup limit or MemTotal)";
  train_cmd->add_option("--max-memory", ta.memory.text, memory_help)->check(size_validator());
  train_cmd->add_option("--bucket-mb", ta.bucket_mb, "Data parallel: gradients are averaged over the ranks in buckets of "
                                                     "about this many MB, each sent while backward runs (default 25)")
      ->check(CLI::PositiveNumber);
  train_cmd->add_flag("--batch-per-rank", ta.batch_per_rank,
                      "Data parallel: --batch-size (fit.batch_size) is each rank's batch, the global batch N times it "
                      "(default: it is the global batch, split over the N ranks)");
  train_cmd->add_flag("--no-overlap", ta.no_overlap, "Data parallel: reduce the gradients after backward, not during it");
  train_cmd->add_option("--timeout", ta.timeout, "Data parallel: seconds a rank waits for its peers before it gives up "
                                                 "with an error (default 60, or LAMINA_DIST_TIMEOUT; 0: forever)")
      ->check(CLI::NonNegativeNumber);

  EvaluateArgs ea;
  CLI::App* eval_cmd = app.add_subcommand("evaluate", "Loss and metrics of a saved model on a test set");
  eval_cmd->add_option("model", ea.model, "Model file (.safetensors, or .onnx)")->required();
  eval_cmd->add_option("--data", ea.data, "mnist, fashion_mnist, digits, a directory of IDX files, or a CSV file")
      ->required();
  eval_cmd->add_option("--report", ea.report, "Write a JSON report");
  eval_cmd->add_option("--max-memory", ea.memory.text, memory_help)->check(size_validator());

  PredictArgs pa;
  CLI::App* predict_cmd = app.add_subcommand("predict", "Top classes (or outputs) of a saved model for each input");
  predict_cmd->add_option("model", pa.model, "Model file (.safetensors, or .onnx)")->required();
  predict_cmd
      ->add_option("input", pa.inputs,
                   "IDX file (raw or .gz) or CSV file of features; for a model trained on text: texts (each argument "
                   "one, or a file of one per line, or a .tsv of LABEL<TAB>TEXT)")
      ->required();
  predict_cmd->add_option("--top", pa.top, "Classes to print per sample (default 1)")->check(at_least(1));
  predict_cmd->add_option("--max-memory", pa.memory.text, memory_help)->check(size_validator());

  ExportArgs xa;
  CLI::App* export_cmd = app.add_subcommand("export", "Write a saved model in another format (ONNX)");
  export_cmd->add_option("model", xa.model, "Model file (.safetensors)")->required();
  export_cmd->add_option("--onnx", xa.onnx, "Write the model as ONNX (opset 13) to this path")->required();

  GenerateArgs ga;
  CLI::App* generate_cmd = app.add_subcommand("generate", "Draw samples from a generative model into a PNG grid");
  generate_cmd->add_option("model", ga.model, "A generator (inputs: a latent vector, and a class label if conditional) "
                                              "or a VAE (a model with a Sampling layer: its decoder samples the prior)")
      ->required();
  generate_cmd->add_option("--label", ga.label, "The class to draw (a conditional generator only)")->check(at_least(0));
  generate_cmd->add_option("--count", ga.count, "How many samples (default 64)")->check(at_least(1));
  generate_cmd->add_option("--rows", ga.rows, "Rows of the grid (default: as square as it gets)")->check(at_least(1));
  generate_cmd->add_option("--seed", ga.seed, "Seed of the noise (default 0)")->check(at_least(0));
  generate_cmd->add_option("--out", ga.out, "The PNG file to write")->required();

  ReportArgs ra;
  CLI::App* report_cmd = app.add_subcommand("report", "Render a training report (lamina train --report) as a web page");
  report_cmd->add_option("report", ra.report, "The report JSON")->required();
  report_cmd->add_option("model", ra.model, "The trained model: adds the confusion matrix if missing, and the most "
                                            "confidently wrong test images (or texts) with what the model looked at");
  report_cmd->add_option("-o,--out", ra.out, "The HTML file to write")->required();
  report_cmd->add_option("--smoothing", ra.smoothing, "Smooth the curves (TensorBoard's weight in [0, 1); default 0)")
      ->check(smoothing_weight());

  ExplainArgs xpa;
  CLI::App* explain_cmd = app.add_subcommand("explain", "Which parts of an input a model's output depends on (attribution)");
  explain_cmd->add_option("model", xpa.model, "Model file (.safetensors, or .onnx)")->required();
  explain_cmd->add_option("input", xpa.input, "A PNG image, an IDX or CSV file (with --index), or a text for a text model")
      ->required();
  explain_cmd->add_option("--method", xpa.method, "saliency | ixg | ig | smoothgrad | occlusion | gradcam")->required();
  explain_cmd->add_option("--out", xpa.out, "The PNG to write (the input with a heat map); the raw attributions go "
                                            "beside it as .npy (same stem)")
      ->required();
  explain_cmd->add_option("--index", xpa.index, "The sample of an IDX or CSV file (default: the only one)")->check(at_least(0));
  explain_cmd->add_option("--target", xpa.target, "The output unit (class) to explain (default: the predicted one)")
      ->check(at_least(0));
  explain_cmd->add_option("--steps", xpa.steps, "ig: points on the path (default 50)")->check(at_least(1));
  explain_cmd->add_option("--rule", xpa.rule, "ig: gausslegendre (default), riemann_left, riemann_right, riemann_middle, riemann_trapezoid");
  explain_cmd->add_option("--baseline", xpa.baseline, "ig: the baseline value; occlusion: the fill value (default 0)");
  explain_cmd->add_option("--layer", xpa.layer, "gradcam: the convolutional layer (default: the last); text: the layer to attribute at");
  explain_cmd->add_option("--window", xpa.window, "occlusion: window size per axis, e.g. 4,4 (default 4 x 4)")->delimiter(',');
  explain_cmd->add_option("--stride", xpa.stride, "occlusion: stride per axis (default: half the window)")->delimiter(',');
  explain_cmd->add_option("--samples", xpa.samples, "smoothgrad: noisy copies (default 25)")->check(at_least(1));
  explain_cmd->add_option("--stdev", xpa.stdev, "smoothgrad: noise standard deviation (default 15% of the input's range)");
  explain_cmd->add_option("--seed", xpa.seed, "smoothgrad: seed of the noise (default 0)")->check(at_least(0));

  std::string summary_path;
  CLI::App* summary_cmd = app.add_subcommand("summary", "Print a model's layers, output shapes and parameter counts");
  summary_cmd->add_option("file", summary_path, "Spec (.json) or model file (.safetensors, .onnx)")->required();

  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForAllHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForVersion& e) {
    return app.exit(e);
  } catch (const CLI::ParseError& e) {
    app.exit(e);
    return 2;
  }
  if (train_cmd->parsed()) return train(ta);
  if (eval_cmd->parsed()) return evaluate(ea);
  if (predict_cmd->parsed()) return predict(pa);
  if (export_cmd->parsed()) return export_model(xa);
  if (generate_cmd->parsed()) return generate(ga);
  if (report_cmd->parsed()) return report(ra);
  if (explain_cmd->parsed()) return explain_command(xpa);
  return summary(summary_path);
}

}  // namespace
}  // namespace lamina::cli

int main(int argc, char** argv) {
  try {
    return lamina::cli::run(argc, argv);
  } catch (const lamina::Error& e) {
    std::cerr << "lamina: error: " << e.what() << "\n";
  } catch (const std::bad_alloc&) {
    std::cerr << "lamina: error: out of memory\n";
  } catch (const std::exception& e) {
    std::cerr << "lamina: error: " << e.what() << "\n";
  }
  return 1;
}
