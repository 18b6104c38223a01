// bench_compare: Lamina beside libtorch, in one invocation. For each workload and thread count
// it runs bench_lamina and bench_torch as separate processes, alternating, several times each;
// measures the single-core matmul peak that the arithmetic bound divides by; writes
// build/bench/compare.json (shared/DESIGN.md's format, plus per-thread-count detail) and prints
// the same as a table. It times nothing itself but the matmul peak.
//   bench_compare [--data data] [--out build/bench/compare.json] [--reps 5] [--digits-reps 5]
//                 [--epochs E] [--threads 1,2] [--workloads digits-mlp,mnist-mlp,...] [--no-accuracy-run]
//                 [--no-bind] [--max-wait 120]
// Each thread count T > 1 also runs bound ("2b": OMP_PROC_BIND=close OMP_PLACES=cores, each
// OpenMP thread kept on its own core), for both frameworks, unless --no-bind; each framework is
// then compared at its best setting.
// Other processes on the machine (a build, a test run) skew timings. Before each run it waits,
// up to --max-wait seconds in all, for them to leave the CPU, and it records with every run the
// cores that other processes kept busy during it ("other_busy_cores").
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <map>
#include <optional>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include <sys/resource.h>
#include <unistd.h>

#include <nlohmann/json.hpp>

#include <lamina/lamina.hpp>

#include "common.hpp"

namespace fs = std::filesystem;
using OJson = nlohmann::ordered_json;  // keys in the order written, for people reading the file

namespace {

const char* const kFrameworks[] = {"lamina", "libtorch"};

struct Options {
  std::string data = "data";
  std::string out = "build/bench/compare.json";
  fs::path bin_dir;            // where bench_lamina and bench_torch are: beside this program
  int reps = 5;                // runs per framework and thread count (MNIST workloads)
  int digits_reps = 5;         // digits-mlp (runs of a few ms: startup dominates the process)
  int epochs = 0;              // per MNIST run; 0: each workload's default_epochs (common.hpp)
  int accuracy_epochs = 5;     // the extra mnist-mlp run that compares accuracy
  bool accuracy_run = true;
  double max_wait = 120;       // seconds, in all, to wait for other processes to leave the CPU
  std::vector<int> threads{1, 2};
  bool bind = true;            // also run T > 1 with OpenMP's threads bound to cores
  std::vector<std::string> workloads;
};

// How a framework's process runs: its thread count, and whether OpenMP binds its threads to
// cores. Keyed "2" and "2b" in compare.json's per_threads.
struct Setting {
  int threads = 1;
  bool bound = false;
  std::string key() const { return std::to_string(threads) + (bound ? "b" : ""); }
};

std::vector<std::string> split_list(const std::string& s) {
  std::vector<std::string> out;
  std::stringstream in(s);
  for (std::string item; std::getline(in, item, ',');)
    if (!item.empty()) out.push_back(item);
  return out;
}

Options parse(int argc, char** argv) {
  Options o;
  for (const bench::Workload& w : bench::workloads()) o.workloads.emplace_back(w.name);
  for (int i = 1; i < argc; ++i) {
    const std::string k = argv[i];
    auto value = [&]() -> std::string {
      if (i + 1 >= argc) throw std::invalid_argument(k + " needs a value");
      return argv[++i];
    };
    if (k == "--data") o.data = value();
    else if (k == "--out") o.out = value();
    else if (k == "--reps") o.reps = std::stoi(value());
    else if (k == "--digits-reps") o.digits_reps = std::stoi(value());
    else if (k == "--epochs") o.epochs = std::stoi(value());
    else if (k == "--accuracy-epochs") o.accuracy_epochs = std::stoi(value());
    else if (k == "--no-accuracy-run") o.accuracy_run = false;
    else if (k == "--no-bind") o.bind = false;
    else if (k == "--max-wait") o.max_wait = std::stod(value());
    else if (k == "--threads") {
      o.threads.clear();
      for (const std::string& t : split_list(value())) o.threads.push_back(std::stoi(t));
    } else if (k == "--workloads") {
      o.workloads = split_list(value());
      for (const std::string& w : o.workloads) bench::find_workload(w);
    } else {
      throw std::invalid_argument("unknown option '" + k + "' (see the comment at the top of bench/compare.cpp)");
    }
  }
  if (o.reps < 1 || o.digits_reps < 1 || o.epochs < 0 || o.threads.empty())
    throw std::invalid_argument("--reps, --digits-reps, --epochs and --threads need positive values");
  o.bin_dir = fs::read_symlink("/proc/self/exe").parent_path();
  return o;
}

std::vector<Setting> settings_of(const Options& o) {
  std::vector<Setting> out;
  for (int t : o.threads) {
    out.push_back({t, false});
    if (o.bind && t > 1) out.push_back({t, true});
  }
  return out;
}

std::string shell_quote(const std::string& s) {
  std::string q = "'";
  for (char c : s) q += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return q + "'";
}

std::string first_line(const std::string& path) {
  std::ifstream in(path);
  std::string line;
  std::getline(in, line);
  return line;
}

// --- the single-core matmul peak -------------------------------------------------------------

// Lamina's matmul (oneDNN) on 1024^3, one thread, no graph: the best of 10 after 3 warm-ups.
double matmul_peak_flops() {
  constexpr int64_t n = 1024;
  lamina::set_num_threads(1);
  lamina::Generator gen(0);
  const lamina::Tensor a = lamina::Tensor::randn({n, n}, gen), b = lamina::Tensor::randn({n, n}, gen);
  lamina::NoGradGuard no_grad;
  double best = 1e30;
  for (int i = 0; i < 13; ++i) {
    const auto t0 = std::chrono::steady_clock::now();
    const lamina::Tensor c = lamina::matmul(a, b);
    const double s = bench::seconds_since(t0);
    if (i >= 3) best = std::min(best, s);
  }
  return 2.0 * n * n * n / best;
}

// --- other load on the machine ------------------------------------------------------------------

// Seconds of CPU time all processes have used, and wall seconds, from /proc/stat's "cpu" line.
struct CpuSample {
  double busy = 0, wall = 0, children = 0;  // children: our finished children's CPU seconds
};

CpuSample cpu_sample() {
  std::ifstream in("/proc/stat");
  std::string cpu;
  double user = 0, nice = 0, system = 0, idle = 0, iowait = 0, irq = 0, softirq = 0, steal = 0;
  in >> cpu >> user >> nice >> system >> idle >> iowait >> irq >> softirq >> steal;
  const double hz = static_cast<double>(sysconf(_SC_CLK_TCK));
  rusage c{};
  getrusage(RUSAGE_CHILDREN, &c);
  auto secs = [](const timeval& t) { return static_cast<double>(t.tv_sec) + static_cast<double>(t.tv_usec) * 1e-6; };
  return {(user + nice + system + irq + softirq + steal) / hz,
          std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count(),
          secs(c.ru_utime) + secs(c.ru_stime)};
}

// Cores that processes other than this one and its finished children kept busy since `a`.
double other_busy_cores(const CpuSample& a, const CpuSample& b) {
  const double wall = b.wall - a.wall;
  return wall > 0 ? std::max(0.0, (b.busy - a.busy) - (b.children - a.children)) / wall : 0.0;
}

// Waits while other processes keep more than 0.3 cores busy, up to `budget` seconds (spent
// from it). Returns the busy cores last seen.
double wait_for_quiet(double& budget) {
  for (;;) {
    const CpuSample a = cpu_sample();
    usleep(300000);
    const double busy = other_busy_cores(a, cpu_sample());
    if (busy < 0.3 || budget <= 0) return busy;
    std::fprintf(stderr, "bench_compare: other processes keep %.1f cores busy; waiting (%.0f s left to wait)\n", busy,
                 budget);
    sleep(2);
    budget -= 2.3;
  }
}

// --- running one training process -------------------------------------------------------------

// The peer's environment for T threads: OMP threads T; libtorch gets OpenBLAS at its best: the
// SkylakeX kernels (the environment's Haswell default halves its speed) and one OpenBLAS thread
// whatever torch's T: at T = 2 an OpenBLAS pool of 2 beside torch's 2 puts four busy threads on
// two cores (LeNet 8.7-9.0 s/epoch, against 3.1 with OpenBLAS at 1, measured for issue 20). The
// best T of the peer is then picked per workload. bound: OpenMP keeps each thread on its own
// core (Lamina's Dense chains split over cores only then: model/dense_chain.hpp).
void set_environment(const std::string& framework, int threads, bool bound = false) {
  setenv("OMP_NUM_THREADS", std::to_string(threads).c_str(), 1);
  if (bound) {
    setenv("OMP_PROC_BIND", "close", 1);
    setenv("OMP_PLACES", "cores", 1);
  } else {
    unsetenv("OMP_PROC_BIND");
    unsetenv("OMP_PLACES");
  }
  if (framework == "libtorch") {
    setenv("OPENBLAS_CORETYPE", "SkylakeX", 1);
    setenv("OPENBLAS_NUM_THREADS", "1", 1);
  } else {
    unsetenv("OPENBLAS_CORETYPE");
    unsetenv("OPENBLAS_NUM_THREADS");
  }
}

// Runs a shell command; returns what it printed, or throws when it fails.
std::string run_command(const std::string& cmd) {
  FILE* p = popen(cmd.c_str(), "r");
  if (!p) throw std::runtime_error("cannot start " + cmd);
  std::string out;
  char buf[4096];
  for (size_t n; (n = fread(buf, 1, sizeof buf, p)) > 0;) out.append(buf, n);
  const int status = pclose(p);
  if (status != 0) throw std::runtime_error(cmd + " failed (status " + std::to_string(status) + ")");
  return out;
}

// The last line of `out` that is a JSON object (the programs' one result line).
OJson json_line_of(const std::string& out, const std::string& cmd) {
  std::string json_line;
  std::istringstream lines(out);
  for (std::string line; std::getline(lines, line);)
    if (!line.empty() && line[0] == '{') json_line = line;
  if (json_line.empty()) throw std::runtime_error(cmd + " printed no JSON line; it printed:\n" + out);
  return OJson::parse(json_line);
}

// Runs one training program (`exe`, a build of `framework`'s trainer) with its environment;
// returns its JSON line or throws with what went wrong. extra: more arguments.
OJson run_program(const Options& o, const fs::path& exe, const std::string& framework, const std::string& workload,
                  Setting setting, int epochs, double& wait_budget, const std::string& extra = "") {
  const double busy_before = wait_for_quiet(wait_budget);
  const std::string t = std::to_string(setting.threads);
  set_environment(framework, setting.threads, setting.bound);
  const std::string cmd = shell_quote(exe.string()) + " --workload " + workload + " --threads " + t + " --epochs " +
                          std::to_string(epochs) + " --data " + shell_quote(o.data) + extra;
  const CpuSample before = cpu_sample();
  const std::string out = run_command(cmd);
  const double busy_during = other_busy_cores(before, cpu_sample());
  OJson r = json_line_of(out, cmd);
  r["other_busy_cores_before"] = busy_before;
  r["other_busy_cores"] = busy_during;  // includes this program's own negligible polling
  return r;
}

// The framework's trainer in this build: bench_lamina or bench_torch.
OJson run_one(const Options& o, const std::string& framework, const std::string& workload, Setting setting,
              int epochs, double& wait_budget) {
  const fs::path exe = o.bin_dir / (framework == "lamina" ? "bench_lamina" : "bench_torch");
  return run_program(o, exe, framework, workload, setting, epochs, wait_budget);
}

// --- statistics -------------------------------------------------------------------------------

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  const size_t n = v.size();
  return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

OJson or_null(const std::vector<double>& v, double (*f)(std::vector<double>)) {
  return v.empty() ? OJson(nullptr) : OJson(f(v));
}
double min_of(std::vector<double> v) { return *std::min_element(v.begin(), v.end()); }
double max_of(std::vector<double> v) { return *std::max_element(v.begin(), v.end()); }

// One framework at one thread count, from its runs. s/epoch: every epoch of every run (MNIST:
// epoch 1 includes the warm-up, nothing is dropped); digits: each run's training time / epochs;
// sequence workloads: each timed epoch (a subset of the samples) scaled to the full epoch, and
// s/batch beside it.
OJson summarize(const std::vector<OJson>& runs, const bench::Workload& w) {
  const bool whole_training = bench::is_digits(w);
  std::vector<double> per_epoch, per_batch, cpu_per_epoch, train, acc, loss, rss, predict, busy;
  OJson raw = OJson::array();
  for (const OJson& r : runs) {
    const double epochs = r.at("epochs").get<double>();
    if (whole_training) {
      per_epoch.push_back(r.at("train_seconds").get<double>() / epochs);
    } else if (bench::is_sequence(w)) {
      const auto timed = r.at("epoch_samples").get<int64_t>();
      const double scale = static_cast<double>(bench::train_samples(w)) / static_cast<double>(timed);
      const double batches = static_cast<double>((timed + w.batch_size - 1) / w.batch_size);
      for (const auto& s : r.at("epoch_seconds")) {
        per_epoch.push_back(s.get<double>() * scale);
        per_batch.push_back(s.get<double>() / batches);
      }
      for (const auto& s : r.at("epoch_cpu_seconds")) cpu_per_epoch.push_back(s.get<double>() * scale);
    } else {
      for (const auto& s : r.at("epoch_seconds")) per_epoch.push_back(s.get<double>());
    }
    train.push_back(r.at("train_seconds").get<double>());
    // vae-mnist has no accuracy (null) but a test loss per sample
    if (!r.at("test_accuracy").is_null()) acc.push_back(r.at("test_accuracy").get<double>());
    if (r.contains("test_loss") && !r.at("test_loss").is_null()) loss.push_back(r.at("test_loss").get<double>());
    rss.push_back(r.at("peak_rss_mb").get<double>());
    if (!r.at("predict_samples_per_s").is_null()) predict.push_back(r.at("predict_samples_per_s").get<double>());
    busy.push_back(r.at("other_busy_cores").get<double>());
    raw.push_back(whole_training ? r.at("train_seconds") : r.at("epoch_seconds"));
  }
  OJson s;
  s["runs"] = runs.size();
  s["s_per_epoch_min"] = or_null(per_epoch, min_of);
  s["s_per_epoch_median"] = or_null(per_epoch, median);
  if (bench::is_sequence(w)) {
    s["s_per_batch_min"] = or_null(per_batch, min_of);
    s["s_per_batch_median"] = or_null(per_batch, median);
    s["cpu_s_per_epoch_min"] = or_null(cpu_per_epoch, min_of);  // user + system, all threads
    s["cpu_s_per_epoch_median"] = or_null(cpu_per_epoch, median);
  }
  if (whole_training) {
    s["train_seconds_min"] = or_null(train, min_of);
    s["train_seconds_median"] = or_null(train, median);
  }
  s["test_accuracy"] = or_null(acc, median);    // median over runs
  if (!loss.empty()) s["test_loss"] = median(loss);
  s["peak_rss_mb"] = or_null(rss, max_of);      // the largest over runs
  s["predict_samples_per_s"] = or_null(predict, median);
  s["other_busy_cores_max"] = or_null(busy, max_of);  // other processes' load during the runs
  s[whole_training ? "train_seconds" : "epoch_seconds"] = raw;
  return s;
}

std::optional<double> num(const OJson& j, const char* key) {
  if (!j.contains(key) || j.at(key).is_null()) return std::nullopt;
  return j.at(key).get<double>();
}

// What a sequence workload trained on, for the record (and the table).
std::string sequence_data(const bench::Workload& w) {
  if (w.architecture == bench::Architecture::imdb_lstm)
    return std::string("synthetic IMDB-shaped reviews (common.hpp), not IMDB; ") +
           (bench::kImdbBidirectional ? "Bidirectional LSTMs" : "unidirectional LSTMs (no layers::Bidirectional yet)");
  if (w.architecture == bench::Architecture::char_lstm) return "tiny-shakespeare, 100-character windows";
  return w.mnist ? w.images : "digits";
}

// --- the table ----------------------------------------------------------------------------------

std::string fmt(const OJson& j, const char* key, const char* format, double scale = 1.0) {
  const std::optional<double> v = num(j, key);
  if (!v) return "-";
  char b[64];
  std::snprintf(b, sizeof b, format, *v * scale);
  return b;
}

// A framework's setting as the table shows it: "2", or "2b" for bound threads.
std::string setting_text(const OJson& f) {
  if (!num(f, "threads")) return "-";
  return std::to_string(f.at("threads").get<int>()) + (f.value("bound", false) ? "b" : "");
}

void print_table(const std::vector<OJson>& results, const Options& o, double peak) {
  std::printf("\nLamina vs libtorch %s, %d runs per framework and thread count (digits-mlp: %d), alternating.\n",
              "1.13 (OpenBLAS pthread, OPENBLAS_CORETYPE=SkylakeX, OPENBLAS_NUM_THREADS=1 at every torch thread count)", o.reps,
              o.digits_reps);
  std::printf("Single-core matmul peak (Lamina matmul 1024^3, 1 thread): %.1f GFLOP/s.\n", peak / 1e9);
  std::string per_run;  // epochs per run of each MNIST-sized workload: --epochs, else its default
  for (const OJson& r : results)
    if (!bench::is_digits(bench::find_workload(r.at("workload").get<std::string>())))
      per_run += (per_run.empty() ? "" : ", ") + r.at("workload").get<std::string>() + " " +
                 std::to_string(r.at("epochs_per_run").get<int>());
  std::printf("s/epoch: min and median over every epoch of every run (epochs per run: %s; epoch 1 includes "
              "warm-up; nothing dropped).\ndigits-mlp: whole %d-epoch training time / %d. Each framework at its "
              "best thread count (T) by median; Tb: T threads bound to cores (OMP_PROC_BIND=close "
              "OMP_PLACES=cores).\n\n",
              per_run.empty() ? "-" : per_run.c_str(), 10, 10);
  std::printf("%-15s %-9s %2s %12s %12s %9s %9s %11s %9s %10s\n", "workload", "framework", "T", "s/epoch min",
              "s/ep median", "test acc", "RSS MB", "predict/s", "speedup", "bound s/ep");
  for (const OJson& r : results) {
    bool first = true;
    for (const char* fw : kFrameworks) {
      const OJson& f = r.at(fw);
      std::printf("%-15s %-9s %2s %12s %12s %9s %9s %11s %9s %10s\n",
                  first ? r.at("workload").get<std::string>().c_str() : "", fw, setting_text(f).c_str(),
                  fmt(f, "s_per_epoch_min", "%.5f").c_str(), fmt(f, "s_per_epoch_median", "%.5f").c_str(),
                  fmt(f, "test_accuracy", "%.4f").c_str(), fmt(f, "peak_rss_mb", "%.1f").c_str(),
                  fmt(f, "predict_samples_per_s", "%.0f").c_str(), first ? fmt(r, "speedup", "%.2fx").c_str() : "",
                  first ? fmt(r, "bound_s_per_epoch", "%.5f").c_str() : "");
      first = false;
    }
    if (const bench::Workload& w = bench::find_workload(r.at("workload").get<std::string>()); bench::is_sequence(w)) {
      const OJson& first_t = r.at("per_threads").at(std::to_string(o.threads.front()));
      std::printf("%-15s s/epoch extrapolated from %lld timed samples (%lld batches) to %lld; s/batch median: lamina "
                  "%s, libtorch %s;\n%-15s CPU s/epoch median at T=%d: lamina %s, libtorch %s (%s); %s\n",
                  "", static_cast<long long>(w.timed_samples),
                  static_cast<long long>((w.timed_samples + w.batch_size - 1) / w.batch_size),
                  static_cast<long long>(bench::train_samples(w)),
                  fmt(r.at("lamina"), "s_per_batch_median", "%.4f").c_str(),
                  fmt(r.at("libtorch"), "s_per_batch_median", "%.4f").c_str(), "", o.threads.front(),
                  fmt(first_t.at("lamina"), "cpu_s_per_epoch_median", "%.2f").c_str(),
                  fmt(first_t.at("libtorch"), "cpu_s_per_epoch_median", "%.2f").c_str(),
                  fmt(r, "cpu_speedup", "%.2fx").c_str(), sequence_data(w).c_str());
    }
    if (num(r.at("lamina"), "test_loss") || num(r.at("libtorch"), "test_loss"))
      std::printf("%-15s test loss per sample (binary CE summed over pixels + KL, z sampled; median over runs): "
                  "lamina %s, libtorch %s\n",
                  "", fmt(r.at("lamina"), "test_loss", "%.3f").c_str(), fmt(r.at("libtorch"), "test_loss", "%.3f").c_str());
    if (const auto lm = num(r.at("lamina"), "s_per_epoch_median"); lm && num(r, "bound_s_per_epoch"))
      std::printf("%-15s lamina median = %.2fx the arithmetic bound\n", "", *lm / *num(r, "bound_s_per_epoch"));
    if (r.contains("accuracy_run")) {
      const OJson& a = r.at("accuracy_run");
      std::printf("%-15s %d-epoch run, test accuracy: lamina %s (T=%s), libtorch %s (T=%s)\n", "",
                  a.at("epochs").get<int>(), fmt(a.at("lamina"), "test_accuracy", "%.4f").c_str(),
                  setting_text(a.at("lamina")).c_str(), fmt(a.at("libtorch"), "test_accuracy", "%.4f").c_str(),
                  setting_text(a.at("libtorch")).c_str());
    }
  }
  std::printf("\nPer thread count (medians, s/epoch):\n%-15s %2s %12s %12s %9s %11s %11s %8s %8s\n", "workload", "T",
              "lamina", "libtorch", "speedup", "lamina p/s", "torch p/s", "lam RSS", "tor RSS");
  for (const OJson& r : results)
    for (const auto& [t, e] : r.at("per_threads").items())
      std::printf("%-15s %2s %12s %12s %9s %11s %11s %8s %8s\n", r.at("workload").get<std::string>().c_str(), t.c_str(),
                  fmt(e.at("lamina"), "s_per_epoch_median", "%.5f").c_str(),
                  fmt(e.at("libtorch"), "s_per_epoch_median", "%.5f").c_str(), fmt(e, "speedup", "%.2fx").c_str(),
                  fmt(e.at("lamina"), "predict_samples_per_s", "%.0f").c_str(),
                  fmt(e.at("libtorch"), "predict_samples_per_s", "%.0f").c_str(),
                  fmt(e.at("lamina"), "peak_rss_mb", "%.1f").c_str(), fmt(e.at("libtorch"), "peak_rss_mb", "%.1f").c_str());
}

}  // namespace

// --- inference: Lamina's predict against ONNX Runtime on the same ONNX file ------------------------
// bench_lamina trains the workload for one epoch and exports it (save_onnx); bench_predict (Lamina's
// load_onnx + predict), bench/ort_predict.js (onnxruntime-node) and, when built,
// bench_opencv_predict (OpenCV's dnn, C++: no binding's per-call cost) then run that file over MNIST's
// test images at batch 10000 and at batch 1 (the first 1000 images), or a sequence model over its
// own test inputs (all of them, then one at a time; no OpenCV), at each thread count, each
// program timing its own passes (median of 5 after a warm-up). Rows as DESIGN.md's
// {"workload": "mnist-mlp-predict", "lamina": {...}, "onnxruntime": {...}, "batch", "threads"},
// speedup = Lamina's samples/s / ONNX Runtime's (above 1: Lamina is faster).
std::vector<OJson> measure_predict(const Options& o, const std::string& workload, double& wait_budget,
                                   double& worst_busy) {
  const fs::path dir = fs::temp_directory_path() / ("lamina-predict-" + std::to_string(getpid()));
  fs::create_directories(dir);
  const fs::path onnx = dir / (workload + ".onnx"), inputs = dir / (workload + ".inputs");
  // A sequence model reads its own test inputs (char-lstm: the 256 validation windows' ids;
  // imdb-lstm: the 1,024 test reviews'), which bench_lamina writes beside the model; all of them
  // make the large batch.
  const bool sequence = bench::is_sequence(bench::find_workload(workload));
  set_environment("lamina", 1);
  run_command(shell_quote((o.bin_dir / "bench_lamina").string()) + " --workload " + workload +
              " --threads 1 --epochs 1 --no-predict --data " + shell_quote(o.data) + " --export-onnx " +
              shell_quote(onnx.string()) + (sequence ? " --export-inputs " + shell_quote(inputs.string()) : ""));
  const int64_t all = sequence ? bench::read_inputs(inputs.string()).rows() : 10000;
  const std::string source =
      sequence ? " --inputs " + shell_quote(inputs.string()) : " --images " + shell_quote(o.data + "/mnist");
  const std::string node_path = (fs::path(LAMINA_SOURCE_DIR) / ".deps" / "node_modules").string();
  std::vector<OJson> rows;
  for (int t : o.threads)
    for (int64_t batch : {all, int64_t{1}}) {
      const std::string common = " --model " + shell_quote(onnx.string()) + source + " --batch " +
                                 std::to_string(batch) + " --threads " + std::to_string(t) + " --samples " +
                                 std::to_string(batch == 1 && !sequence ? 1000 : all);
      OJson row = {{"workload", workload + "-predict"}, {"batch", batch}, {"threads", t}};
      const fs::path opencv = o.bin_dir / "bench_opencv_predict";  // built when libopencv-dnn-dev is there
      for (const char* fw : {"lamina", "onnxruntime", "opencv"}) {
        const std::string name = fw;
        // OpenCV 4.6's importer takes Gather indices only from constants, not an Embedding's ids.
        if (name == "opencv" && (!fs::exists(opencv) || sequence)) continue;
        const double busy_before = wait_for_quiet(wait_budget);
        set_environment("lamina", t);
        const std::string cmd =
            name == "lamina" ? shell_quote((o.bin_dir / "bench_predict").string()) + common
            : name == "opencv"
                ? shell_quote(opencv.string()) + common
                : "NODE_PATH=" + shell_quote(node_path) + " node " +
                      shell_quote((fs::path(LAMINA_SOURCE_DIR) / "bench" / "ort_predict.js").string()) + common;
        const CpuSample before = cpu_sample();
        try {
          row[fw] = json_line_of(run_command(cmd), cmd);
        } catch (const std::exception& e) {
          std::fprintf(stderr, "bench_compare: %s\n", e.what());
          row[fw] = nullptr;
        }
        worst_busy = std::max({worst_busy, busy_before, other_busy_cores(before, cpu_sample())});
      }
      const OJson lam = row["lamina"], ort = row["onnxruntime"];  // copies: row grows below
      // samples/s medians; 0 where a program failed
      auto rate_of = [](const OJson& j) { return j.is_null() ? 0.0 : num(j, "samples_per_s_median").value_or(0.0); };
      const double l = rate_of(lam), r = rate_of(ort), c = row.contains("opencv") ? rate_of(row["opencv"]) : 0.0;
      row["speedup"] = l > 0 && r > 0 ? OJson(l / r) : OJson(nullptr);
      if (row.contains("opencv")) row["speedup_vs_opencv"] = l > 0 && c > 0 ? OJson(l / c) : OJson(nullptr);
      std::fprintf(stderr, "bench_compare: %s batch %lld T=%d: lamina %s, onnxruntime %s samples/s\n",
                   row["workload"].get<std::string>().c_str(), static_cast<long long>(batch), t,
                   lam.is_null() ? "-" : fmt(lam, "samples_per_s_median", "%.0f").c_str(),
                   ort.is_null() ? "-" : fmt(ort, "samples_per_s_median", "%.0f").c_str());
      rows.push_back(std::move(row));
    }
  fs::remove_all(dir);
  return rows;
}

// --- start-up: from process start to the end of the first training step --------------------------
// `lamina train` on the digits spec (examples/specs/digits_mlp.json, one epoch, one thread) and
// bench_torch's digits-mlp, each started by this program, which reads steady_clock (CLOCK_MONOTONIC,
// one clock for every process) just before; each reports the same clock after its first optimizer
// step. The difference holds exec, dynamic loading, reading the data, building the model and one
// step: what a short run pays before it trains. Runs alternate; min and median over `reps`.
OJson measure_startup(const Options& o, int reps, double& wait_budget, double& worst_busy) {
  const fs::path dir = fs::temp_directory_path() / ("lamina-startup-" + std::to_string(getpid()));
  fs::create_directories(dir);
  std::ifstream in(fs::path(LAMINA_SOURCE_DIR) / "examples" / "specs" / "digits_mlp.json");
  OJson spec = OJson::parse(in);
  spec["data"]["path"] = fs::absolute(fs::path(o.data) / "digits" / "digits.csv.gz").string();
  spec["fit"]["epochs"] = 1;
  const fs::path spec_path = dir / "digits.json", report = dir / "report.json";
  std::ofstream(spec_path) << spec.dump();
  const fs::path cli = o.bin_dir.parent_path() / "lamina";
  std::map<std::string, std::vector<double>> seconds;
  for (int rep = 0; rep < reps; ++rep)
    for (int k = 0; k < 2; ++k) {
      const std::string fw = kFrameworks[(k + rep) % 2];
      const double busy_before = wait_for_quiet(wait_budget);
      set_environment(fw, 1);
      const std::string cmd =
          fw == "lamina" ? shell_quote(cli.string()) + " train " + shell_quote(spec_path.string()) +
                               " --quiet --threads 1 --report " + shell_quote(report.string())
                         : shell_quote((o.bin_dir / "bench_torch").string()) +
                               " --workload digits-mlp --threads 1 --epochs 1 --data " + shell_quote(o.data);
      const CpuSample before = cpu_sample();
      const double start = bench::monotonic_seconds();
      const std::string out = run_command(cmd);
      worst_busy = std::max({worst_busy, busy_before, other_busy_cores(before, cpu_sample())});
      const OJson r = fw == "lamina" ? OJson::parse(std::ifstream(report)).at("startup") : json_line_of(out, cmd);
      const double t = r.at("first_step_end_monotonic_s").get<double>() - start;
      std::fprintf(stderr, "bench_compare: start-up    %-8s rep %d: first step done %.1f ms after start\n", fw.c_str(),
                   rep + 1, t * 1e3);
      seconds[fw].push_back(t);
    }
  fs::remove_all(dir);
  OJson entry = {{"what", "process start to the end of the first training step: lamina train "
                          "examples/specs/digits_mlp.json (1 thread) and bench_torch digits-mlp"},
                 {"runs", reps}};
  for (const char* fw : kFrameworks)
    entry[fw] = {{"first_step_s_min", min_of(seconds[fw])}, {"first_step_s_median", median(seconds[fw])},
                 {"first_step_s", seconds[fw]}};
  entry["speedup"] = median(seconds["libtorch"]) / median(seconds["lamina"]);
  return entry;
}

// The build row: bench_lamina on the default build (liblamina for LAMINA_ARCH, x86-64-v3
// unless configured otherwise) against bench_lamina_native (the same sources for this machine,
// -march=native), alternating, one thread, one epoch per run (digits-mlp: its 10-epoch training
// / 10, as in its row). Null when the default build is native already (no bench_lamina_native).
OJson measure_build(const Options& o, double& wait_budget, double& worst_busy) {
  const fs::path native = o.bin_dir / "bench_lamina_native";
  if (!fs::exists(native)) return nullptr;
  const std::pair<const char*, fs::path> builds[] = {{"portable", o.bin_dir / "bench_lamina"}, {"native", native}};
  OJson entry = {{"what", "s/epoch (digits-mlp: whole training / epochs), 1 thread, default build against -march=native"},
                 {"portable_arch", LAMINA_BENCH_ARCH},
                 {"workloads", OJson::object()}};
  for (const char* name : {"mnist-mlp", "lenet-mnist", "digits-mlp"}) {
    if (std::find(o.workloads.begin(), o.workloads.end(), name) == o.workloads.end()) continue;
    const bool digits = std::string(name) == "digits-mlp";
    const int reps = digits ? o.digits_reps : 3, epochs = digits ? 10 : 1;
    std::map<std::string, std::vector<double>> seconds;
    for (int rep = 0; rep < reps; ++rep)
      for (int k = 0; k < 2; ++k) {
        const auto& [build, exe] = builds[(k + rep) % 2];
        const OJson r = run_program(o, exe, "lamina", name, Setting{}, epochs, wait_budget, " --no-predict");
        worst_busy = std::max({worst_busy, r.at("other_busy_cores_before").get<double>(),
                               r.at("other_busy_cores").get<double>()});
        const double t =
            digits ? r.at("train_seconds").get<double>() / epochs : r.at("epoch_seconds").at(0).get<double>();
        std::fprintf(stderr, "bench_compare: build       %-12s %-8s rep %d: %.4f s/epoch\n", name, build, rep + 1, t);
        seconds[build].push_back(t);
      }
    OJson w;
    for (const auto& [build, exe] : builds)
      w[build] = {{"s_per_epoch_min", min_of(seconds[build])}, {"s_per_epoch_median", median(seconds[build])},
                  {"s_per_epoch", seconds[build]}};
    w["native_speedup"] = median(seconds["portable"]) / median(seconds["native"]);  // > 1: native is faster
    entry["workloads"][name] = w;
  }
  return entry;
}

int main(int argc, char** argv) try {
  const Options o = parse(argc, argv);
  const auto start = std::chrono::steady_clock::now();
  const double peak = matmul_peak_flops();
  std::fprintf(stderr, "bench_compare: single-core matmul peak %.1f GFLOP/s\n", peak / 1e9);
  const std::string cpu = [] {
    std::ifstream in("/proc/cpuinfo");
    for (std::string line; std::getline(in, line);)
      if (line.rfind("model name", 0) == 0) return line.substr(line.find(':') + 2);
    return std::string("?");
  }();
  const std::string blas = fs::weakly_canonical("/usr/lib/x86_64-linux-gnu/libblas.so.3").string();

  std::vector<OJson> results;
  int failures = 0;
  double wait_budget = o.max_wait, worst_busy = 0;
  const std::vector<Setting> settings = settings_of(o);
  for (const std::string& name : o.workloads) {
    const bench::Workload& w = bench::find_workload(name);
    const bool whole = bench::is_digits(w);
    const int epochs = !whole && o.epochs > 0 ? o.epochs : w.default_epochs, reps = whole ? o.digits_reps : o.reps;
    const std::string load_before = first_line("/proc/loadavg");
    // runs[setting][framework]; rep outermost so drift over time spreads over everything, and
    // the framework that goes first alternates.
    std::map<std::string, std::map<std::string, std::vector<OJson>>> runs;
    OJson torch_blas = OJson::object();  // per setting: the BLAS bench_torch saw
    for (int rep = 0; rep < reps; ++rep)
      for (const Setting& st : settings)
        for (int k = 0; k < 2; ++k) {
          const std::string fw = kFrameworks[(k + rep) % 2];
          try {
            OJson r = run_one(o, fw, name, st, epochs, wait_budget);
            const bool has_loss = r.contains("test_loss") && !r.at("test_loss").is_null();
            std::fprintf(stderr, "bench_compare: %-14s %-8s T=%s rep %d: %s s, %s %.4f\n", name.c_str(), fw.c_str(),
                         st.key().c_str(), rep + 1, (whole ? r.at("train_seconds") : r.at("epoch_seconds")).dump().c_str(),
                         has_loss ? "test loss" : "acc",
                         (has_loss ? r.at("test_loss") : r.at("test_accuracy")).get<double>());
            worst_busy = std::max(worst_busy, r.at("other_busy_cores").get<double>());
            if (r.contains("blas")) torch_blas[st.key()] = r.at("blas");
            runs[st.key()][fw].push_back(std::move(r));
          } catch (const std::exception& e) {
            ++failures;
            std::fprintf(stderr, "bench_compare: %s\n", e.what());
          }
        }

    OJson entry;
    entry["workload"] = name;
    OJson per_threads = OJson::object();
    std::map<std::string, std::pair<Setting, OJson>> best;  // framework -> (setting, summary) by median
    std::map<std::string, std::pair<Setting, double>> best_predict;
    for (const Setting& st : settings) {
      OJson e;
      for (const char* fw : kFrameworks) {
        e[fw] = summarize(runs[st.key()][fw], w);
        const std::optional<double> m = num(e[fw], "s_per_epoch_median");
        if (m && (!best.count(fw) || *m < *num(best[fw].second, "s_per_epoch_median"))) best[fw] = {st, e[fw]};
        const std::optional<double> p = num(e[fw], "predict_samples_per_s");
        if (p && (!best_predict.count(fw) || *p > best_predict[fw].second)) best_predict[fw] = {st, *p};
      }
      const auto lm = num(e["lamina"], "s_per_epoch_median"), tm = num(e["libtorch"], "s_per_epoch_median");
      e["speedup"] = lm && tm ? OJson(*tm / *lm) : OJson(nullptr);
      if (bench::is_sequence(w)) {  // the same ratio in CPU seconds, which other load moves less
        const auto lc = num(e["lamina"], "cpu_s_per_epoch_median"), tc = num(e["libtorch"], "cpu_s_per_epoch_median");
        e["cpu_speedup"] = lc && tc ? OJson(*tc / *lc) : OJson(nullptr);
      }
      per_threads[st.key()] = e;
    }
    for (const char* fw : kFrameworks) {
      OJson f;
      if (best.count(fw)) {
        const OJson& s = best[fw].second;
        for (const char* k : {"s_per_epoch_min", "s_per_epoch_median", "s_per_batch_min", "s_per_batch_median",
                              "cpu_s_per_epoch_min", "cpu_s_per_epoch_median", "train_seconds_min",
                              "train_seconds_median", "test_accuracy", "test_loss", "peak_rss_mb"})
          if (s.contains(k)) f[k] = s[k];
        f["threads"] = best[fw].first.threads;
        f["bound"] = best[fw].first.bound;
      }
      // predict at its own best thread count, which need not be training's
      f["predict_samples_per_s"] = best_predict.count(fw) ? OJson(best_predict[fw].second) : OJson(nullptr);
      f["predict_threads"] = best_predict.count(fw) ? OJson(best_predict[fw].first.threads) : OJson(nullptr);
      entry[fw] = f;
    }
    const auto lm = num(entry["lamina"], "s_per_epoch_median"), tm = num(entry["libtorch"], "s_per_epoch_median");
    entry["speedup"] = lm && tm ? OJson(*tm / *lm) : OJson(nullptr);
    if (bench::is_sequence(w))  // CPU seconds compare like for like at one thread count: the first
      entry["cpu_speedup"] = per_threads[std::to_string(o.threads.front())]["cpu_speedup"];
    const double flops = bench::epoch_flops(w, bench::train_samples(w));
    entry["bound_s_per_epoch"] = flops / peak;
    entry["bound_gflop_per_epoch"] = flops / 1e9;
    entry["matmul_peak_gflops"] = peak / 1e9;
    entry["epochs_per_run"] = epochs;
    entry["runs_per_thread_count"] = reps;
    if (bench::is_sequence(w)) {
      entry["timed_samples_per_epoch"] = w.timed_samples;
      entry["full_epoch_samples"] = bench::train_samples(w);
    }

    // mnist-mlp: one full run per framework at its best thread count, for the accuracy.
    if (name == "mnist-mlp" && o.accuracy_run) {
      OJson a;
      a["epochs"] = o.accuracy_epochs;
      for (const char* fw : kFrameworks) {
        const Setting st = best.count(fw) ? best[fw].first : Setting{o.threads.front(), false};
        const int t = st.threads;
        try {
          const OJson r = run_one(o, fw, name, st, o.accuracy_epochs, wait_budget);
          worst_busy = std::max(worst_busy, r.at("other_busy_cores").get<double>());
          a[fw] = {{"threads", t},
                   {"bound", st.bound},
                   {"test_accuracy", r.at("test_accuracy")},
                   {"epoch_seconds", r.at("epoch_seconds")}};
          entry[fw]["test_accuracy_" + std::to_string(o.accuracy_epochs) + "_epochs"] = r.at("test_accuracy");
          std::fprintf(stderr, "bench_compare: %-14s %-8s T=%s %d epochs: acc %.4f\n", name.c_str(), fw,
                       st.key().c_str(), o.accuracy_epochs, r.at("test_accuracy").get<double>());
        } catch (const std::exception& e) {
          ++failures;
          std::fprintf(stderr, "bench_compare: %s\n", e.what());
          a[fw] = {{"threads", t}, {"bound", st.bound}, {"test_accuracy", nullptr}};
        }
      }
      entry["accuracy_run"] = a;
    }
    entry["per_threads"] = per_threads;
    entry["conditions"] = {{"cpu", cpu},
                           {"cores", std::thread::hardware_concurrency()},
                           {"libblas", blas},
                           {"libtorch_blas_by_threads", torch_blas},
                           // the peer's settings: torch's threads tried (the best is libtorch.threads), OpenBLAS's
                           {"libtorch_settings", {{"torch_threads_tried", o.threads}, {"openblas_threads", 1}}},
                           // both frameworks: "2b" ran with OMP_PROC_BIND=close OMP_PLACES=cores
                           {"settings_tried", [&] {
                              std::vector<std::string> keys;
                              for (const Setting& st : settings) keys.push_back(st.key());
                              return keys;
                            }()},
                           {"loadavg_before", load_before},
                           {"data", sequence_data(w)},
                           {"loadavg_after", first_line("/proc/loadavg")}};
    results.push_back(entry);
  }

  // Inference rows for the MNIST models and the LSTM models, after the training rows.
  std::vector<OJson> predict_rows;
  for (const char* w : {"mnist-mlp", "lenet-mnist", "char-lstm", "imdb-lstm"})
    if (std::find(o.workloads.begin(), o.workloads.end(), w) != o.workloads.end()) {
      try {
        for (OJson& r : measure_predict(o, w, wait_budget, worst_busy)) predict_rows.push_back(std::move(r));
      } catch (const std::exception& e) {
        ++failures;
        std::fprintf(stderr, "bench_compare: %s predict: %s\n", w, e.what());
      }
    }

  // Start-up beside the digits row (whose whole training is a few ms): in its own file, so that
  // compare.json stays a list of workloads.
  OJson startup;
  if (std::find(o.workloads.begin(), o.workloads.end(), "digits-mlp") != o.workloads.end()) {
    try {
      startup = measure_startup(o, o.digits_reps, wait_budget, worst_busy);
    } catch (const std::exception& e) {
      ++failures;
      std::fprintf(stderr, "bench_compare: start-up: %s\n", e.what());
    }
  }

  // Portable against native, in its own file like the start-up.
  OJson build_row;
  try {
    build_row = measure_build(o, wait_budget, worst_busy);
  } catch (const std::exception& e) {
    ++failures;
    std::fprintf(stderr, "bench_compare: build row: %s\n", e.what());
  }

  fs::create_directories(fs::absolute(o.out).parent_path());
  {
    std::vector<OJson> all = results;
    all.insert(all.end(), predict_rows.begin(), predict_rows.end());
    std::ofstream f(o.out);
    f << OJson(all).dump(2) << "\n";
    if (!f) throw std::runtime_error(o.out + ": cannot write");
  }
  const std::string startup_path = (fs::absolute(o.out).parent_path() / "startup.json").string();
  if (!startup.is_null()) std::ofstream(startup_path) << startup.dump(2) << "\n";
  const std::string build_path = (fs::absolute(o.out).parent_path() / "build.json").string();
  if (!build_row.is_null()) std::ofstream(build_path) << build_row.dump(2) << "\n";
  print_table(results, o, peak);
  if (!predict_rows.empty()) {
    std::printf("\nInference on the same ONNX file (bench_lamina's, after 1 epoch), MNIST test images (char-lstm: "
                "its validation windows; imdb-lstm: its test reviews), samples/s "
                "(best / median of 5 passes); speedup: Lamina's median over ONNX Runtime's (OpenCV's):\n"
                "%-20s %6s %2s %23s %23s %23s %9s %9s\n",
                "workload", "batch", "T", "lamina", "onnxruntime", "opencv", "speedup", "vs opencv");
    for (const OJson& r : predict_rows) {
      auto rate = [&](const char* fw) {
        return !r.contains(fw) || r.at(fw).is_null() ? std::string("-")
                                  : fmt(r.at(fw), "samples_per_s_max", "%.0f") + " / " +
                                        fmt(r.at(fw), "samples_per_s_median", "%.0f");
      };
      std::printf("%-20s %6lld %2d %23s %23s %23s %9s %9s\n", r.at("workload").get<std::string>().c_str(),
                  static_cast<long long>(r.at("batch").get<int64_t>()), r.at("threads").get<int>(),
                  rate("lamina").c_str(), rate("onnxruntime").c_str(), rate("opencv").c_str(),
                  fmt(r, "speedup", "%.2fx").c_str(), fmt(r, "speedup_vs_opencv", "%.2fx").c_str());
    }
  }
  if (!startup.is_null())
    std::printf("\nStart-up (%s), %d runs each, ms min / median: lamina %.1f / %.1f, libtorch %.1f / %.1f: %.2fx "
                "(%s)\n",
                startup.at("what").get<std::string>().c_str(), startup.at("runs").get<int>(),
                1e3 * startup.at("lamina").at("first_step_s_min").get<double>(),
                1e3 * startup.at("lamina").at("first_step_s_median").get<double>(),
                1e3 * startup.at("libtorch").at("first_step_s_min").get<double>(),
                1e3 * startup.at("libtorch").at("first_step_s_median").get<double>(),
                startup.at("speedup").get<double>(), startup_path.c_str());
  if (!build_row.is_null()) {
    std::printf("\nBuild: the default (-march=%s) against -march=native, 1 thread, s/epoch min / median (%s):\n",
                build_row.at("portable_arch").get<std::string>().c_str(), build_path.c_str());
    for (const auto& [name, w] : build_row.at("workloads").items())
      std::printf("%-14s portable %.4f / %.4f   native %.4f / %.4f   native is %+.1f%%\n", name.c_str(),
                  w.at("portable").at("s_per_epoch_min").get<double>(),
                  w.at("portable").at("s_per_epoch_median").get<double>(),
                  w.at("native").at("s_per_epoch_min").get<double>(), w.at("native").at("s_per_epoch_median").get<double>(),
                  100 * (w.at("native_speedup").get<double>() - 1));
  }
  if (worst_busy > 0.3)
    std::printf("\nWARNING: other processes kept up to %.1f cores busy during some runs (other_busy_cores in %s);\n"
                "timings are skewed. Run again on a quiet machine.\n",
                worst_busy, o.out.c_str());
  std::printf("\nWrote %s in %.0f s.%s\n", o.out.c_str(), bench::seconds_since(start),
              failures ? (" " + std::to_string(failures) + " run(s) FAILED; see above.").c_str() : "");
  return failures ? 1 : 0;
} catch (const std::exception& e) {
  std::cerr << "bench_compare: " << e.what() << "\n";
  return 1;
}
