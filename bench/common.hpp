// What bench_lamina, bench_torch and bench_compare share: the workloads, the command line of
// the two training programs, the digits split rule, peak RSS, and the FLOP count of an MLP.
// No Lamina and no libtorch here, so both programs include it and cannot drift apart.
#pragma once

#include <sys/resource.h>

#include <chrono>
#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <set>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

namespace bench {

enum class Optimizer { sgd_momentum, adam };
enum class Architecture { mlp, lenet, resnet, imdb_lstm, char_lstm, vae };

// One training workload. mlp: units are the layer widths, input first ({784, 128, 10}); every
// hidden layer is relu. lenet: LeNet-5 on 28x28x1 images -- Conv 6@5x5 'same' relu, max-pool
// 2, Conv 16@5x5 'valid' relu, max-pool 2, Dense 120 relu, 84 relu, 10 (logits); units unused.
// resnet: the residual network of examples/resnet_fashion.cpp on 28x28x1 images; units unused.
// Every conv is 3x3 'same' without bias, then BatchNormalization (Keras' momentum 0.99, eps
// 1e-3; torch's momentum 0.01) -- "conv-BN":
//   conv-BN 32, relu                                     28x28x32
//   max-pool 2                                           14x14x32
//   block 32: relu(conv-BN(relu(conv-BN(x))) + x)        14x14x32
//   max-pool 2                                             7x7x32
//   block 64: the same, shortcut a 1x1 conv 32->64 (with bias)   7x7x64
//   Flatten (3136), Dense 128 relu, Dropout 0.5, Dense 10 (logits)
// Lamina runs it channels-last (N, H, W, C), libtorch NCHW (its Flatten order differs; the
// sizes do not). Kernels glorot_uniform, biases zero, BN gamma 1 / beta 0, in both frameworks.
// imdb_lstm: ids (N, 200) -> Embedding(20000, 128) -> LSTM(64, return_sequences) -> LSTM(64)
// -> Dense(1, sigmoid), binary CE (Bidirectional wrappers around both LSTMs when
// kImdbBidirectional). char_lstm: ids (N, 100) -> Embedding(vocab, 64) -> LSTM(256,
// return_sequences) -> Dense(vocab) logits, sparse CE from logits at every step. LSTM kernels
// glorot_uniform, recurrent kernels orthogonal, biases zero but the forget gate's 1 (Keras'
// unit_forget_bias; torch's second bias b_hh zero); embeddings U(-0.05, 0.05).
// The sequence workloads time `timed_samples` samples per epoch (a fixed subset) and
// bench_compare extrapolates to the full epoch (train_samples).
// vae: PyTorch's examples/vae VAE on MNIST / 255 flattened to 784 (units unused): Dense 400
// relu, Dense 20 (mean) and Dense 20 (log variance) from it, z = mean + exp(log_var / 2) eps,
// Dense 400 relu, Dense 784 sigmoid; loss per sample = binary CE summed over the 784 pixels +
// KL(N(mean, var) || N(0, 1)); Adam lr 1e-3. Scored by the test loss per sample, not accuracy.
struct Workload {
  const char* name;
  uint64_t seed;
  bool mnist;              // 28x28 uint8 IDX images / 255 (MNIST or Fashion-MNIST), else the 8x8 digits (X / 16)
  std::vector<int64_t> units;
  int64_t batch_size;
  Optimizer optimizer;     // sgd_momentum: lr 0.01, momentum 0.9; adam: lr 1e-3, eps 1e-7
  bool softmax_output;     // digits: Dense(10, softmax) + sparse CE; else logits + CE from logits
  int default_epochs;      // digits: the course's 10 (whole training is the metric); MNIST: per run
                           // (bench_compare's, unless --epochs says otherwise)
  Architecture architecture = Architecture::mlp;
  const char* images = "mnist";  // mnist: the IDX files' directory under --data ("mnist", "fashion-mnist")
  int64_t timed_samples = 0;     // sequence workloads: samples per timed epoch; 0: the whole epoch
};

inline const std::vector<Workload>& workloads() {
  static const std::vector<Workload> all{
      {"digits-mlp", 1, false, {64, 64, 10}, 128, Optimizer::sgd_momentum, true, 10},
      {"mnist-mlp", 2, true, {784, 128, 10}, 32, Optimizer::adam, false, 2},
      {"mnist-mlp-wide", 2, true, {784, 512, 512, 10}, 128, Optimizer::adam, false, 2},
      {"lenet-mnist", 3, true, {}, 64, Optimizer::adam, false, 1, Architecture::lenet},
      {"resnet-fashion", 4, true, {}, 64, Optimizer::adam, false, 1, Architecture::resnet, "fashion-mnist"},
      {"imdb-lstm", 5, false, {}, 32, Optimizer::adam, false, 2, Architecture::imdb_lstm, "", 1024},
      {"char-lstm", 6, false, {}, 64, Optimizer::adam, false, 2, Architecture::char_lstm, "", 1024},
      {"vae-mnist", 7, true, {}, 128, Optimizer::adam, false, 1, Architecture::vae},
  };
  return all;
}

inline const Workload& find_workload(const std::string& name) {
  for (const Workload& w : workloads())
    if (name == w.name) return w;
  std::string known;
  for (const Workload& w : workloads()) known += std::string(known.empty() ? "" : ", ") + w.name;
  throw std::invalid_argument("unknown workload '" + name + "' (known: " + known + ")");
}

// Training FLOPs of one epoch of an MLP (matmuls only; bias, relu, loss and the optimizer
// are O(units), not O(in * units), and left out). Per sample and layer l (in_l -> out_l):
//   forward  y = x W        2 in_l out_l
//   backward dW = x^T dy    2 in_l out_l
//            dx = dy W^T    2 in_l out_l, except for the first layer (its input needs no grad)
// so per sample 2 * sum_l(in_l out_l) * 2 + 2 * sum_{l > 1}(in_l out_l), times samples.
// mnist-mlp: (2 * 101,632 * 2 + 2 * 1,280) * 60,000 = 24.5 GFLOP.
// LeNet, per sample, in multiply-adds: conv1 28*28*6 outputs of 5*5*1, conv2 10*10*16 of
// 5*5*6, dense 400*120 + 120*84 + 84*10. Forward 2 MAC FLOPs, backward dW the same, dx the
// same except for conv1 (its input needs no grad).
inline double lenet_epoch_flops(int64_t samples) {
  const double conv1 = 28.0 * 28 * 6 * 25, conv2 = 10.0 * 10 * 16 * 150, dense = 400.0 * 120 + 120 * 84 + 84 * 10;
  const double all = conv1 + conv2 + dense;
  return (4.0 * all + 2.0 * (conv2 + dense)) * static_cast<double>(samples);
}

// The resnet, per sample, in multiply-adds (outputs x kernel size x input channels):
//   stem conv     28*28*32 of 3*3*1       225,792
//   block 32      2 x 28*28*32 of 3*3*32  14,450,688   (full resolution)
//   block 64      14*14*64 of 3*3*32 + 14*14*64 of 3*3*64 + 1x1 shortcut 14*14*64 of 32
//                                         11,239,424
//   dense         3136*128 + 128*10       402,688
// all = 26,318,592 MACs. Forward 2 FLOPs per MAC, backward dW the same, dx the same except for
// the stem conv (its input needs no grad): (4 all + 2 (all - stem)) = 157.5 MFLOP per sample,
// 9.45 TFLOP per 60,000-image epoch. BatchNorm, relu, the adds, pooling, dropout, the loss and
// the optimizer are O(activations), not O(activations x kernel), and left out.
inline double resnet_epoch_flops(int64_t samples) {
  const double stem = 28.0 * 28 * 32 * 9;
  const double block32 = 2.0 * (28.0 * 28 * 32 * 9 * 32);
  const double block64 = 14.0 * 14 * 64 * 9 * 32 + 14.0 * 14 * 64 * 9 * 64 + 14.0 * 14 * 64 * 32;
  const double dense = 3136.0 * 128 + 128 * 10;
  const double all = stem + block32 + block64 + dense;
  return (4.0 * all + 2.0 * (all - stem)) * static_cast<double>(samples);
}

// The VAE's sizes (examples/vae/main.py's).
inline constexpr int64_t kVaeHidden = 400, kVaeLatent = 20;

// The VAE per sample, in multiply-adds: encoder 784*400 + 2 * 400*20, decoder 20*400 + 400*784
// = 651,200. Forward 2 FLOPs per MAC, backward dW the same, dx the same except for fc1 (its
// input needs no grad): 3.28 MFLOP per sample, 197 GFLOP per 60,000-image epoch. The sampling,
// relu, sigmoid, the loss and Adam are O(activations) and left out.
inline double vae_epoch_flops(int64_t samples) {
  const double fc1 = 784.0 * kVaeHidden;
  const double all = fc1 + 2.0 * kVaeHidden * kVaeLatent + kVaeLatent * kVaeHidden + kVaeHidden * 784.0;
  return (4.0 * all + 2.0 * (all - fc1)) * static_cast<double>(samples);
}

// The sequence workloads' sizes, the same on both sides.
inline constexpr bool kImdbBidirectional = true;  // keras.io's model: both LSTMs Bidirectional
inline constexpr int64_t kImdbVocab = 20000, kImdbMaxlen = 200, kImdbEmbed = 128, kImdbUnits = 64;
inline constexpr int64_t kImdbTrain = 25000, kImdbTest = 1024;  // IMDB's 25,000 training reviews
inline constexpr int64_t kCharSeq = 100, kCharEmbed = 64, kCharUnits = 256;
inline constexpr int64_t kCharTest = 256;  // validation windows scored

// An LSTM layer per sample and step, in multiply-adds: x W (in x 4 units) + h U (units x 4 units).
inline double lstm_step_macs(int64_t in, int64_t units) {
  return 4.0 * static_cast<double>(units) * static_cast<double>(in + units);
}

// Training FLOPs of a sequence workload: every matmul's forward, dW and dx (the embedding's output
// needs its gradient, so even the first layer's dx counts): 3 x 2 MAC FLOPs. The embedding gather,
// the gates' elementwise work, the loss and Adam are O(activations) and left out.
inline double sequence_epoch_flops(const Workload& w, int64_t samples) {
  double macs = 0;  // per sample
  if (w.architecture == Architecture::imdb_lstm) {
    const double dirs = kImdbBidirectional ? 2 : 1;
    macs = dirs * static_cast<double>(kImdbMaxlen) *
               (lstm_step_macs(kImdbEmbed, kImdbUnits) +
                lstm_step_macs(static_cast<int64_t>(dirs) * kImdbUnits, kImdbUnits)) +
           dirs * static_cast<double>(kImdbUnits);
  } else {
    const double vocab = 65;  // tiny-shakespeare's distinct characters
    macs = static_cast<double>(kCharSeq) * (lstm_step_macs(kCharEmbed, kCharUnits) + kCharUnits * vocab);
  }
  return 6.0 * macs * static_cast<double>(samples);
}

inline double epoch_flops(const Workload& w, int64_t samples) {
  if (w.architecture == Architecture::lenet) return lenet_epoch_flops(samples);
  if (w.architecture == Architecture::resnet) return resnet_epoch_flops(samples);
  if (w.architecture == Architecture::vae) return vae_epoch_flops(samples);
  if (w.architecture == Architecture::imdb_lstm || w.architecture == Architecture::char_lstm)
    return sequence_epoch_flops(w, samples);
  double all = 0, after_first = 0;
  for (size_t l = 0; l + 1 < w.units.size(); ++l) {
    const double mk = static_cast<double>(w.units[l]) * static_cast<double>(w.units[l + 1]);
    all += mk;
    if (l > 0) after_first += mk;
  }
  return (4.0 * all + 2.0 * after_first) * static_cast<double>(samples);
}

// Training samples per epoch: MNIST's (and Fashion-MNIST's) 60,000; the digits' 80 % (1,438 of 1,797).
inline int64_t digits_train_size(int64_t n) { return (n * 4 + 2) / 5; }  // round(0.8 n)
// char-lstm: the non-overlapping 100-character windows of tiny-shakespeare's first 90 %.
inline constexpr int64_t kCharTrainWindows = (1115394 * 9 / 10 - 1) / kCharSeq;
inline int64_t train_samples(const Workload& w) {
  if (w.architecture == Architecture::imdb_lstm) return kImdbTrain;
  if (w.architecture == Architecture::char_lstm) return kCharTrainWindows;
  return w.mnist ? 60000 : digits_train_size(1797);
}
inline bool is_sequence(const Workload& w) {
  return w.architecture == Architecture::imdb_lstm || w.architecture == Architecture::char_lstm;
}
inline bool is_digits(const Workload& w) { return !w.mnist && !is_sequence(w); }

inline uint64_t splitmix64(uint64_t& state) {  // Steele, Lea, Flood 2014
  uint64_t z = (state += 0x9e3779b97f4a7c15ull);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return z ^ (z >> 31);
}

// The digits split, the same in both programs: a Fisher-Yates shuffle of 0..n-1 driven by
// splitmix64 from `seed`; the first digits_train_size(n) indices train, the rest test. (Lamina's
// Dataset::split uses its own generator, which the libtorch peer does not have.)
inline std::vector<int64_t> split_permutation(int64_t n, uint64_t seed) {
  std::vector<int64_t> p(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) p[static_cast<size_t>(i)] = i;
  uint64_t state = seed;
  for (int64_t i = n - 1; i > 0; --i)
    std::swap(p[static_cast<size_t>(i)], p[splitmix64(state) % static_cast<uint64_t>(i + 1)]);
  return p;
}

// Token sequences (n, t) of ids with one target per sequence (imdb) or per step (chars).
struct Tokens {
  int64_t n = 0, t = 0;
  std::vector<int32_t> x;  // n * t ids
  std::vector<int32_t> y;  // n labels, or n * t next characters
};

// Synthetic IMDB-shaped reviews (no IMDB download needed): label 0 / 1, a length uniform in
// [50, 200] padded in front with id 0 (Keras' pad_sequences), each word uniform over
// [100, 20000) except that one in 8 is a sentiment word from [1, 50) (positive) or [50, 100)
// (negative), so that the task is learnable. Only the shapes matter for the timing.
inline Tokens synthetic_reviews(int64_t n, uint64_t seed) {
  Tokens d{n, kImdbMaxlen, std::vector<int32_t>(static_cast<size_t>(n * kImdbMaxlen), 0),
           std::vector<int32_t>(static_cast<size_t>(n))};
  uint64_t state = seed;
  for (int64_t i = 0; i < n; ++i) {
    const int32_t label = static_cast<int32_t>(splitmix64(state) & 1);
    d.y[static_cast<size_t>(i)] = label;
    const int64_t len = 50 + static_cast<int64_t>(splitmix64(state) % (kImdbMaxlen - 50 + 1));
    for (int64_t j = kImdbMaxlen - len; j < kImdbMaxlen; ++j) {
      const uint64_t r = splitmix64(state);
      d.x[static_cast<size_t>(i * kImdbMaxlen + j)] =
          r % 8 == 0 ? static_cast<int32_t>((label ? 1 : 50) + (r >> 8) % 49)
                     : static_cast<int32_t>(100 + (r >> 8) % (kImdbVocab - 100));
    }
  }
  return d;
}

// tiny-shakespeare: --data DIR's tinyshakespeare/input.txt, else the project's shared copy
// (LAMINA_BENCH_SHARED_DATA, set by bench/CMakeLists.txt).
inline std::string shakespeare_path(const std::string& data) {
  std::string tried = data + "/tinyshakespeare/input.txt";
  if (std::ifstream(tried).good()) return tried;
#ifdef LAMINA_BENCH_SHARED_DATA
  const std::string shared = std::string(LAMINA_BENCH_SHARED_DATA) + "/tinyshakespeare/input.txt";
  if (std::ifstream(shared).good()) return shared;
  tried += " or " + shared;
#endif
  throw std::runtime_error("char-lstm needs tiny-shakespeare: no " + tried);
}

// The text as ids (its distinct characters in byte order), cut into the first 90 % (train) and
// the rest (validation), each into non-overlapping windows of kCharSeq characters; y is x one
// character on. Train: the first `train_windows` windows; validation: its first kCharTest.
struct CharData {
  int64_t vocab = 0;
  Tokens train, test;
};

inline CharData shakespeare_windows(const std::string& path, int64_t train_windows) {
  std::ifstream in(path, std::ios::binary);
  const std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  const std::set<unsigned char> chars(text.begin(), text.end());
  int32_t id_of[256] = {};
  int32_t next = 0;
  for (unsigned char c : chars) id_of[c] = next++;
  const auto split = static_cast<int64_t>(text.size()) * 9 / 10;
  auto windows = [&](int64_t from, int64_t to, int64_t count) {
    const int64_t fit = (to - from - 1) / kCharSeq;
    if (count > fit) throw std::runtime_error(path + ": too short for " + std::to_string(count) + " windows");
    Tokens d{count, kCharSeq, {}, {}};
    for (int64_t w = 0; w < count; ++w)
      for (int64_t j = 0; j < kCharSeq; ++j) {
        const size_t at = static_cast<size_t>(from + w * kCharSeq + j);
        d.x.push_back(id_of[static_cast<unsigned char>(text[at])]);
        d.y.push_back(id_of[static_cast<unsigned char>(text[at + 1])]);
      }
    return d;
  };
  return {next, windows(0, split, train_windows), windows(split, static_cast<int64_t>(text.size()), kCharTest)};
}

// The command line of bench_lamina and bench_torch:
//   --workload NAME --threads T [--epochs E] [--data DIR] [--no-predict]
struct Args {
  std::string workload = "mnist-mlp";
  int threads = 1;
  int epochs = 0;  // 0: the workload's default
  std::string data = "data";
  bool predict = true;  // time predict on the MNIST test set
  std::string export_onnx;  // bench_lamina: the trained model as ONNX here (the predict rows' model)
  std::string export_inputs;  // bench_lamina: the test inputs here (write_inputs), for the predict rows
};

inline Args parse_args(int argc, char** argv) {
  Args a;
  for (int i = 1; i < argc; ++i) {
    const std::string k = argv[i];
    auto value = [&]() -> std::string {
      if (i + 1 >= argc) throw std::invalid_argument(k + " needs a value");
      return argv[++i];
    };
    if (k == "--workload") a.workload = value();
    else if (k == "--threads") a.threads = std::stoi(value());
    else if (k == "--epochs") a.epochs = std::stoi(value());
    else if (k == "--data") a.data = value();
    else if (k == "--no-predict") a.predict = false;
    else if (k == "--export-onnx") a.export_onnx = value();
    else if (k == "--export-inputs") a.export_inputs = value();
    else throw std::invalid_argument("unknown option '" + k +
                                     "' (known: --workload, --threads, --epochs, --data, --no-predict, --export-onnx, "
                                     "--export-inputs)");
  }
  if (a.threads < 1) throw std::invalid_argument("--threads must be >= 1");
  find_workload(a.workload);
  return a;
}

// ru_maxrss: the process' peak resident set, KiB on Linux.
inline double peak_rss_mb() {
  rusage u{};
  getrusage(RUSAGE_SELF, &u);
  return static_cast<double>(u.ru_maxrss) / 1024.0;
}

// CPU seconds (user + system) this process has used: on a shared machine the wall time of a
// 1-thread run grows with the others' load, its CPU time much less.
inline double cpu_seconds() {
  rusage u{};
  getrusage(RUSAGE_SELF, &u);
  auto secs = [](const timeval& t) { return static_cast<double>(t.tv_sec) + static_cast<double>(t.tv_usec) * 1e-6; };
  return secs(u.ru_utime) + secs(u.ru_stime);
}

inline double seconds_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

// bench_predict's and bench_opencv_predict's options (the *-predict rows):
//   --model M.onnx --images data/mnist --batch B --threads T [--samples N] [--reps R]
struct PredictArgs {
  std::string model, images = "data/mnist";
  std::string inputs;  // an inputs file (write_inputs) instead of MNIST's test images
  int64_t batch = 10000, samples = 10000;
  int threads = 1, reps = 5;
};

inline PredictArgs parse_predict_args(int argc, char** argv) {
  PredictArgs a;
  for (int i = 1; i < argc; ++i) {
    const std::string k = argv[i];
    if (i + 1 >= argc) throw std::invalid_argument(k + " needs a value");
    const std::string v = argv[++i];
    if (k == "--model") a.model = v;
    else if (k == "--images") a.images = v;
    else if (k == "--inputs") a.inputs = v;
    else if (k == "--batch") a.batch = std::stoll(v);
    else if (k == "--samples") a.samples = std::stoll(v);
    else if (k == "--threads") a.threads = std::stoi(v);
    else if (k == "--reps") a.reps = std::stoi(v);
    else throw std::invalid_argument("unknown option '" + k + "' (known: --model, --images, --inputs, --batch, --samples, --threads, --reps)");
  }
  if (a.model.empty() || a.batch < 1 || a.samples < 1 || a.threads < 1 || a.reps < 1)
    throw std::invalid_argument("--model is required; --batch, --samples, --threads, --reps must be positive");
  return a;
}

// The predict rows' inputs for a model that does not read MNIST's images (the sequence
// workloads' ids): "LMIN", uint32 rank, int64 dims[rank], float32 values, little endian, written
// by bench_lamina --export-inputs and read by bench_predict, bench_opencv_predict and
// ort_predict.js. Written to a temporary name, then renamed.
struct Inputs {
  std::vector<int64_t> dims;
  std::vector<float> values;
  int64_t rows() const { return dims.empty() ? 0 : dims[0]; }
  int64_t row_size() const { return rows() == 0 ? 0 : static_cast<int64_t>(values.size()) / rows(); }
};

inline void write_inputs(const std::string& path, const Inputs& in) {
  const std::string tmp = path + ".tmp";
  {
    std::ofstream f(tmp, std::ios::binary);
    const auto rank = static_cast<uint32_t>(in.dims.size());
    f.write("LMIN", 4);
    f.write(reinterpret_cast<const char*>(&rank), sizeof rank);
    f.write(reinterpret_cast<const char*>(in.dims.data()), static_cast<std::streamsize>(sizeof(int64_t) * rank));
    f.write(reinterpret_cast<const char*>(in.values.data()),
            static_cast<std::streamsize>(sizeof(float) * in.values.size()));
    if (!f) throw std::runtime_error(tmp + ": cannot write the inputs");
  }
  std::filesystem::rename(tmp, path);
}

inline Inputs read_inputs(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  char magic[4] = {};
  uint32_t rank = 0;
  f.read(magic, 4);
  f.read(reinterpret_cast<char*>(&rank), sizeof rank);
  if (!f || std::string(magic, 4) != "LMIN" || rank < 1 || rank > 8)
    throw std::runtime_error(path + ": not an inputs file (LMIN, rank 1 to 8)");
  Inputs in;
  in.dims.resize(rank);
  f.read(reinterpret_cast<char*>(in.dims.data()), static_cast<std::streamsize>(sizeof(int64_t) * rank));
  int64_t count = 1;
  for (int64_t d : in.dims) {
    if (d < 0 || d > (int64_t{1} << 32)) throw std::runtime_error(path + ": a dimension of " + std::to_string(d));
    count *= d;
  }
  in.values.resize(static_cast<size_t>(count));
  f.read(reinterpret_cast<char*>(in.values.data()), static_cast<std::streamsize>(sizeof(float) * in.values.size()));
  if (!f) throw std::runtime_error(path + ": ends before its " + std::to_string(count) + " values");
  return in;
}

// steady_clock's reading in seconds: CLOCK_MONOTONIC, one clock for every process of the machine,
// so a launcher can subtract the moment it started a program from a moment the program reports.
inline double monotonic_seconds() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

}  // namespace bench
