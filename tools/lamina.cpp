// lamina: the command-line tool. Trains a Keras-style model from a JSON spec, evaluates and runs
// saved models, prints summaries. The only place that turns exceptions into exit codes:
// 0 success, 1 an error (printed as "lamina: error: ..."), 2 a usage error (CLI11's message).
//
//   lamina train examples/specs/mnist_mlp.json --save mnist.safetensors --report report.json
//   lamina evaluate mnist.safetensors --data mnist
//   lamina predict mnist.safetensors data/mnist/t10k-images-idx3-ubyte --top 3
#include <sys/resource.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <cctype>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <new>
#include <numeric>
#include <optional>
#include <string>
#include <vector>

#include "lamina/io.hpp"
#include "lamina/metrics.hpp"
#include "lamina/model.hpp"
#include "lamina/random.hpp"
#include "lamina/runtime.hpp"
#include "spec.hpp"

#ifndef LAMINA_VERSION
#define LAMINA_VERSION "unknown"
#endif

namespace lamina::cli {
namespace {

constexpr const char* kPreprocessingKey = "lamina_preprocessing";

struct TrainArgs {
  std::string spec;
  std::optional<int> epochs;
  std::optional<int64_t> batch_size;
  std::optional<uint64_t> seed;
  std::optional<int> threads;
  std::string save, report;
  bool quiet = false;
};
struct EvaluateArgs {
  std::string model, data, report;
};
struct PredictArgs {
  std::string model, input;
  int top = 1;
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

// The model part of a spec, built; errors name the spec file.
Sequential model_from_spec_json(const Json& model, const std::string& path) {
  try {
    return Sequential::from_json(model);
  } catch (const Error& e) {
    throw ValueError(path + ": " + e.what());
  } catch (const Json::exception& e) {  // a config value of the wrong JSON type
    throw ValueError(path + ": model: " + e.what());
  }
}

void compile_from_spec(Sequential& model, const Spec& spec) {
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
  try {
    model.compile(optimizer, *loss, spec.metrics);
  } catch (const Error& e) {
    throw ValueError(spec.path + ": compile.metrics: " + e.what());
  }
}

// The scaling a model file recorded at training time (scale 1 when it has none).
Preprocessing preprocessing_of(const std::string& model_path) {
  const io::SafetensorsFile file = io::load_safetensors(model_path);
  const auto it = file.metadata.find(kPreprocessingKey);
  if (it == file.metadata.end()) {
    std::cerr << "lamina: note: " << model_path << " records no " << kPreprocessingKey
              << "; inputs are used unscaled\n";
    return {};
  }
  Json j;
  try {
    j = Json::parse(it->second);
  } catch (const Json::exception& e) {  // parse_error, or out_of_range for a number past double (1e309)
    throw IoError(model_path + ": __metadata__." + kPreprocessingKey + " is not valid JSON: " + e.what());
  }
  return Preprocessing::from_json(j, model_path);
}

bool is_classifier(const Sequential& model) {
  if (!model.compiled()) return false;
  const Loss::Kind k = model.loss().kind();
  return k == Loss::binary_crossentropy || k == Loss::categorical_crossentropy ||
         k == Loss::sparse_categorical_crossentropy;
}

// --- commands --------------------------------------------------------------------------------------

int train(const TrainArgs& a) {
  const Spec spec = read_spec(a.spec);
  const uint64_t seed = a.seed ? *a.seed : spec.fit.seed.value_or(0);
  if (a.threads) set_num_threads(*a.threads);
  manual_seed(seed);  // before the model draws its initial weights
  Sequential model = model_from_spec_json(spec.model, spec.path);
  compile_from_spec(model, spec);
  const Prepared data = load_training_data(spec, model.input_shape());

  FitOptions fit;
  fit.epochs = a.epochs.value_or(spec.fit.epochs);
  fit.batch_size = a.batch_size.value_or(spec.fit.batch_size);
  fit.validation_split = spec.fit.validation_split;
  fit.shuffle = spec.fit.shuffle;
  fit.verbose = a.quiet ? 0 : spec.fit.verbose;
  TerminateOnNaN nan_guard;  // on by default: a diverged run stops at once and says where
  fit.callbacks = {&nan_guard};
  const History history = model.fit(data.train, fit);
  if (nan_guard.stopped())
    throw ValueError(spec.path + ": training diverged at " + nan_guard.message().substr(0, nan_guard.message().find(':')) +
                     " (non-finite loss); lower the learning rate or set clipnorm in compile.optimizer");

  const Logs test = model.evaluate(data.test, {.verbose = 0});
  std::cout << "test: " << logs_line(test) << "\n";

  if (!a.save.empty()) {
    model.save(a.save, {{kPreprocessingKey, data.preprocessing.to_json().dump()}});
    if (!a.quiet) std::cout << "saved " << a.save << "\n";
  }
  if (!a.report.empty()) {
    Json h = Json::object();
    for (const auto& [k, v] : history.history) h[k] = v;
    const Json report = {{"history", h},
                         {"epoch_seconds", history.epoch_seconds},
                         {"test", logs_json(test)},
                         {"params", model.count_params()},
                         {"seed", seed},
                         {"threads", get_num_threads()},
                         {"peak_rss_mb", peak_rss_mb()},
                         {"spec", spec.path},
                         {"epochs", fit.epochs},
                         {"batch_size", fit.batch_size},
                         {"preprocessing", data.preprocessing.to_json()}};
    write_report(a.report, report);
  }
  return 0;
}

int evaluate(const EvaluateArgs& a) {
  Sequential model = Sequential::load(a.model);
  if (!model.compiled())
    throw ValueError(a.model + ": the model has no compile config (loss, metrics), so it cannot be evaluated");
  const Preprocessing pre = preprocessing_of(a.model);
  const data::Dataset test = load_evaluation_data(a.data, pre, model.input_shape());
  const Logs logs = model.evaluate(test, {.verbose = 1});

  Json report = {{"test", logs_json(logs)},
                 {"params", model.count_params()},
                 {"threads", get_num_threads()},
                 {"data", a.data},
                 {"samples", test.size()}};
  if (is_classifier(model)) {
    const Tensor pred = model.predict(test);
    const bool binary = pred.rank() == 1 || pred.numel() == pred.dim(0);
    const ClassDecoding decoding{.threshold = binary && model.loss().from_logits() ? 0.f : 0.5f};
    const auto predicted = predicted_classes(pred, decoding);
    const auto truth = true_classes(test.all_y(), pred);
    int64_t classes = binary ? 2 : pred.numel() / std::max<int64_t>(pred.dim(0), 1);
    for (int64_t t : truth) classes = std::max(classes, t + 1);
    ConfusionMatrix matrix(classes);
    matrix.update(truth, predicted);
    std::cout << "\n";
    matrix.print(std::cout);
    Json rows = Json::array();
    for (int64_t t = 0; t < classes; ++t) {
      Json row = Json::array();
      for (int64_t p = 0; p < classes; ++p) row.push_back(matrix.count(t, p));
      rows.push_back(row);
    }
    report["confusion_matrix"] = rows;
  }
  if (!a.report.empty()) {
    report["peak_rss_mb"] = peak_rss_mb();
    write_report(a.report, report);
  }
  return 0;
}

int predict(const PredictArgs& a) {
  Sequential model = Sequential::load(a.model);
  const Preprocessing pre = preprocessing_of(a.model);
  const auto shape = model.input_shape();
  if (!shape) throw ValueError(a.model + ": the model declares no input shape");
  const Tensor x = load_prediction_input(a.input, pre, *shape);
  const Tensor out = model.predict(x);
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

// A spec / bare model JSON, or a model file (safetensors: 8-byte length, then a JSON header).
bool is_model_file(const std::string& path) {
  auto ends_with = [&](const std::string& s) {
    return path.size() >= s.size() && path.compare(path.size() - s.size(), s.size(), s) == 0;
  };
  if (ends_with(".safetensors")) return true;
  if (ends_with(".json")) return false;
  std::ifstream f(path, std::ios::binary);
  char head[9] = {};
  return f.read(head, 9) && head[8] == '{';
}

int summary(const std::string& path) {
  if (is_model_file(path)) {
    Sequential::load(path).summary(std::cout);
    return 0;
  }
  const Json j = read_json_file(path);
  const Json model_json = looks_like_spec(j) ? read_spec(path).model : j;
  manual_seed(0);
  Sequential model = model_from_spec_json(model_json, path);
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

int run(int argc, char** argv) {
  CLI::App app{"Lamina: train, evaluate and run Keras-style models.", "lamina"};
  app.require_subcommand(1);
  app.set_version_flag("--version", std::string("lamina ") + LAMINA_VERSION);

  TrainArgs ta;
  CLI::App* train_cmd = app.add_subcommand("train", "Train a model from a JSON spec and evaluate it on the test split");
  train_cmd->add_option("spec", ta.spec, "Spec file: {\"model\", \"data\", \"compile\", \"fit\"}")->required();
  train_cmd->add_option("--epochs", ta.epochs, "Epochs (default: the spec's fit.epochs)")->check(at_least(0));
  train_cmd->add_option("--batch-size", ta.batch_size, "Batch size (default: fit.batch_size)")->check(at_least(1));
  train_cmd->add_option("--seed", ta.seed, "Seed for weights and shuffling (default: fit.seed, else 0)")->check(at_least(0));
  train_cmd->add_option("--threads", ta.threads, "Compute threads (default: all cores)")->check(at_least(1));
  train_cmd->add_option("--save", ta.save, "Write the trained model (safetensors)");
  train_cmd->add_option("--report", ta.report, "Write a JSON report: history, timings, test metrics");
  train_cmd->add_flag("-q,--quiet", ta.quiet, "No progress output");

  EvaluateArgs ea;
  CLI::App* eval_cmd = app.add_subcommand("evaluate", "Loss and metrics of a saved model on a test set");
  eval_cmd->add_option("model", ea.model, "Model file (.safetensors)")->required();
  eval_cmd->add_option("--data", ea.data, "mnist, fashion_mnist, digits, a directory of IDX files, or a CSV file")
      ->required();
  eval_cmd->add_option("--report", ea.report, "Write a JSON report");

  PredictArgs pa;
  CLI::App* predict_cmd = app.add_subcommand("predict", "Top classes (or outputs) of a saved model for each input");
  predict_cmd->add_option("model", pa.model, "Model file (.safetensors)")->required();
  predict_cmd->add_option("input", pa.input, "IDX file (raw or .gz) or CSV file of features")->required();
  predict_cmd->add_option("--top", pa.top, "Classes to print per sample (default 1)")->check(at_least(1));

  std::string summary_path;
  CLI::App* summary_cmd = app.add_subcommand("summary", "Print a model's layers, output shapes and parameter counts");
  summary_cmd->add_option("file", summary_path, "Spec (.json) or model file (.safetensors)")->required();

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
