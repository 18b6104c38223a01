// bench_torch: the libtorch peer of bench_lamina. The same workloads (bench/common.hpp), data,
// model, initialization scheme, optimizer, batch size and epochs, written the way a libtorch
// user would write them at their best; prints the same JSON line. Built only for the bench.
//   OPENBLAS_CORETYPE=SkylakeX OPENBLAS_NUM_THREADS=1 bench_torch --workload mnist-mlp --threads 1
// OpenBLAS reads its environment when it is loaded, before main: bench_compare sets it.
#include <dlfcn.h>
#include <zlib.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <iostream>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>
#include <torch/torch.h>

#include "../common.hpp"

namespace {

// A whole file through zlib, which reads gzip and plain files alike.
std::vector<uint8_t> read_file(const std::string& path) {
  gzFile f = gzopen(path.c_str(), "rb");
  if (!f) throw std::runtime_error(path + ": cannot open (scripts/fetch-data.sh fetches the data)");
  std::vector<uint8_t> out;
  uint8_t buf[1 << 16];
  int n;
  while ((n = gzread(f, buf, sizeof buf)) > 0) out.insert(out.end(), buf, buf + n);
  const bool bad = n < 0;
  gzclose(f);
  if (bad) throw std::runtime_error(path + ": read error");
  return out;
}

// An IDX file of unsigned bytes (LeCun's MNIST format) as a uint8 tensor (dims...).
torch::Tensor read_idx(const std::string& path) {
  const std::vector<uint8_t> b = read_file(path);
  if (b.size() < 4 || b[0] != 0 || b[1] != 0 || b[2] != 0x08)
    throw std::runtime_error(path + ": not an IDX file of unsigned bytes");
  const int rank = b[3];
  std::vector<int64_t> dims;
  size_t at = 4, numel = 1;
  for (int i = 0; i < rank; ++i, at += 4) {
    if (b.size() < at + 4) throw std::runtime_error(path + ": truncated header");
    dims.push_back(int64_t{b[at]} << 24 | int64_t{b[at + 1]} << 16 | int64_t{b[at + 2]} << 8 | int64_t{b[at + 3]});
    numel *= static_cast<size_t>(dims.back());
  }
  if (b.size() != at + numel) throw std::runtime_error(path + ": size does not match its dimensions");
  return torch::from_blob(const_cast<uint8_t*>(b.data() + at), dims, torch::kUInt8).clone();
}

struct Data {
  torch::Tensor train_x, train_y, test_x, test_y;  // x: uint8 (MNIST) or float (digits); y: int64
};

// dir/name, else dir/name.gz when only that exists (Lamina's data::find_data_file rule).
std::string idx_path(const std::string& dir, const std::string& name) {
  const std::string plain = dir + "/" + name;
  if (std::ifstream(plain).good()) return plain;
  if (std::ifstream(plain + ".gz").good()) return plain + ".gz";
  return plain;  // read_file says it cannot be opened
}

// MNIST or Fashion-MNIST (the same four IDX files, raw or gzipped, as Lamina reads them).
Data load_mnist(const std::string& dir) {
  Data d;
  d.train_x = read_idx(idx_path(dir, "train-images-idx3-ubyte")).reshape({-1, 784});  // stays uint8
  d.train_y = read_idx(idx_path(dir, "train-labels-idx1-ubyte")).to(torch::kLong);
  d.test_x = read_idx(idx_path(dir, "t10k-images-idx3-ubyte")).reshape({-1, 784});
  d.test_y = read_idx(idx_path(dir, "t10k-labels-idx1-ubyte")).to(torch::kLong);
  return d;
}

// scikit-learn's digits.csv.gz: 1797 rows of 64 pixel values (0..16) and the label, X / 16,
// split by bench::split_permutation as bench_lamina does.
Data load_digits(const std::string& path, uint64_t seed) {
  const std::vector<uint8_t> bytes = read_file(path);
  std::istringstream in(std::string(bytes.begin(), bytes.end()));
  std::vector<float> x, y;
  std::string line;
  while (std::getline(in, line)) {
    if (line.empty()) continue;
    std::vector<float> row;
    std::istringstream fields(line);
    for (std::string f; std::getline(fields, f, ',');) row.push_back(std::stof(f));
    if (row.size() != 65) throw std::runtime_error(path + ": expected 65 columns, got " + std::to_string(row.size()));
    x.insert(x.end(), row.begin(), row.end() - 1);
    y.push_back(row.back());
  }
  const auto n = static_cast<int64_t>(y.size());
  torch::Tensor all_x = torch::from_blob(x.data(), {n, 64}, torch::kFloat).div(16.f);
  torch::Tensor all_y = torch::from_blob(y.data(), {n}, torch::kFloat).to(torch::kLong);
  const torch::Tensor perm = torch::tensor(bench::split_permutation(n, seed), torch::kLong);
  const int64_t n_train = bench::digits_train_size(n);
  const torch::Tensor train = perm.slice(0, 0, n_train), test = perm.slice(0, n_train);
  return {all_x.index_select(0, train), all_y.index_select(0, train), all_x.index_select(0, test),
          all_y.index_select(0, test)};
}

// Linear + ReLU ... + Linear: logits. Keras' glorot_uniform is xavier_uniform_ on torch's
// (out, in) weight (the fans are symmetric); zero biases. The digits model's softmax output
// with Keras' sparse CE is, to torch, logits with CrossEntropyLoss: the same function (but
// for Keras' 1e-7 clip), written the way torch users write it, with fewer ops.
// Glorot-uniform weights and zero biases on every conv / linear module of `model`; a
// BatchNorm's weight (gamma, 1-D) 1, as Keras' and torch's defaults.
void keras_init(torch::nn::Module& model) {
  torch::NoGradGuard no_grad;
  for (auto& p : model.named_parameters()) {
    if (p.key().find("weight") == std::string::npos) torch::nn::init::zeros_(p.value());
    else if (p.value().dim() >= 2) torch::nn::init::xavier_uniform_(p.value());
    else torch::nn::init::ones_(p.value());
  }
}

// LeNet-5 as bench::Architecture::lenet describes; x arrives as (N, 784) and is viewed as
// (N, 1, 28, 28). torch's xavier_uniform_ on a conv weight (out, in, kh, kw) uses the fans
// in*kh*kw and out*kh*kw, as Keras' glorot_uniform does.
torch::nn::Sequential make_lenet() {
  namespace nn = torch::nn;
  nn::Sequential model(nn::Unflatten(nn::UnflattenOptions(1, {1, 28, 28})),
                       nn::Conv2d(nn::Conv2dOptions(1, 6, 5).padding(2)), nn::ReLU(), nn::MaxPool2d(2),
                       nn::Conv2d(nn::Conv2dOptions(6, 16, 5)), nn::ReLU(), nn::MaxPool2d(2), nn::Flatten(),
                       nn::Linear(400, 120), nn::ReLU(), nn::Linear(120, 84), nn::ReLU(), nn::Linear(84, 10));
  keras_init(*model);
  return model;
}

// Conv 3x3 'same' without bias, then BatchNorm2d as the Keras model's (momentum 0.9 of the
// running average is torch's momentum 0.1; eps 1e-3).
struct ConvBNImpl : torch::nn::Module {
  ConvBNImpl(int64_t in, int64_t out)
      : conv(register_module("conv", torch::nn::Conv2d(torch::nn::Conv2dOptions(in, out, 3).padding(1).bias(false)))),
        bn(register_module("bn", torch::nn::BatchNorm2d(torch::nn::BatchNormOptions(out).momentum(0.1).eps(1e-3)))) {}
  torch::Tensor forward(const torch::Tensor& x) { return bn->forward(conv->forward(x)); }
  torch::nn::Conv2d conv;
  torch::nn::BatchNorm2d bn;
};
TORCH_MODULE(ConvBN);

// relu(conv-BN(relu(conv-BN(x))) + shortcut(x)); the shortcut is x, or a 1x1 conv (with bias)
// when the width changes.
struct ResidualBlockImpl : torch::nn::Module {
  ResidualBlockImpl(int64_t in, int64_t out)
      : a(register_module("a", ConvBN(in, out))), b(register_module("b", ConvBN(out, out))) {
    if (in != out) shortcut = register_module("shortcut", torch::nn::Conv2d(torch::nn::Conv2dOptions(in, out, 1)));
  }
  torch::Tensor forward(const torch::Tensor& x) {
    const torch::Tensor h = b->forward(torch::relu(a->forward(x)));
    return torch::relu(h + (shortcut ? shortcut->forward(x) : x));
  }
  ConvBN a, b;
  torch::nn::Conv2d shortcut{nullptr};
};
TORCH_MODULE(ResidualBlock);

// The resnet as bench::Architecture::resnet describes, NCHW; x arrives as (N, 784).
torch::nn::Sequential make_resnet() {
  namespace nn = torch::nn;
  nn::Sequential model(nn::Unflatten(nn::UnflattenOptions(1, {1, 28, 28})), ConvBN(1, 32), nn::ReLU(),
                       ResidualBlock(32, 32), nn::MaxPool2d(2), ResidualBlock(32, 64), nn::MaxPool2d(2),
                       nn::Flatten(), nn::Linear(3136, 128), nn::ReLU(), nn::Dropout(0.5), nn::Linear(128, 10));
  keras_init(*model);
  return model;
}

torch::nn::Sequential make_model(const bench::Workload& w) {
  if (w.architecture == bench::Architecture::lenet) return make_lenet();
  if (w.architecture == bench::Architecture::resnet) return make_resnet();
  torch::nn::Sequential model;
  for (size_t l = 1; l < w.units.size(); ++l) {
    torch::nn::Linear linear(w.units[l - 1], w.units[l]);
    torch::NoGradGuard no_grad;
    torch::nn::init::xavier_uniform_(linear->weight);
    torch::nn::init::zeros_(linear->bias);
    model->push_back(linear);
    if (l + 1 < w.units.size()) model->push_back(torch::nn::ReLU());
  }
  return model;
}

// x for the batch `idx`: MNIST bytes become floats / 255 here, per batch, as in Lamina.
torch::Tensor batch_x(const torch::Tensor& x, const torch::Tensor& idx) {
  torch::Tensor b = x.index_select(0, idx);
  return b.scalar_type() == torch::kUInt8 ? b.to(torch::kFloat).div_(255.f) : b;
}

// Logits for every row of x, batch by batch, in inference mode (Sequential::predict's work).
torch::Tensor predict(torch::nn::Sequential& model, const torch::Tensor& x, int64_t batch_size) {
  torch::NoGradGuard no_grad;
  model->eval();
  const int64_t n = x.size(0);
  torch::Tensor out;
  for (int64_t b = 0; b < n; b += batch_size) {
    torch::Tensor xb = x.slice(0, b, std::min(n, b + batch_size));
    if (xb.scalar_type() == torch::kUInt8) xb = xb.to(torch::kFloat).div_(255.f);
    const torch::Tensor yb = model->forward(xb);
    if (!out.defined()) out = torch::empty({n, yb.size(1)});
    out.slice(0, b, b + yb.size(0)).copy_(yb);
  }
  return out;
}

// --- the VAE ---------------------------------------------------------------------------------

// PyTorch's examples/vae/main.py VAE (bench::Architecture::vae): fc1 784->400 relu, fc21 / fc22
// 400->20 (mean, log variance), z = mu + exp(logvar / 2) eps, fc3 20->400 relu, fc4 400->784
// sigmoid. Glorot-uniform weights and zero biases as the other workloads (the example keeps
// torch's defaults).
struct VaeImpl : torch::nn::Module {
  VaeImpl()
      : fc1(register_module("fc1", torch::nn::Linear(784, bench::kVaeHidden))),
        fc21(register_module("fc21", torch::nn::Linear(bench::kVaeHidden, bench::kVaeLatent))),
        fc22(register_module("fc22", torch::nn::Linear(bench::kVaeHidden, bench::kVaeLatent))),
        fc3(register_module("fc3", torch::nn::Linear(bench::kVaeLatent, bench::kVaeHidden))),
        fc4(register_module("fc4", torch::nn::Linear(bench::kVaeHidden, 784))) {
    keras_init(*this);
  }
  // (reconstruction, mu, logvar). Samples z in eval mode too, as the example's test() does.
  std::tuple<torch::Tensor, torch::Tensor, torch::Tensor> forward(const torch::Tensor& x) {
    const torch::Tensor h = torch::relu(fc1->forward(x));
    torch::Tensor mu = fc21->forward(h), logvar = fc22->forward(h);
    const torch::Tensor z = mu + torch::exp(0.5 * logvar) * torch::randn_like(mu);
    return {torch::sigmoid(fc4->forward(torch::relu(fc3->forward(z)))), std::move(mu), std::move(logvar)};
  }
  torch::nn::Linear fc1, fc21, fc22, fc3, fc4;
};
TORCH_MODULE(Vae);

// The example's loss_function summed over the batch: BCE summed over pixels (torch clamps its
// logs at -100; Keras clips probabilities to [1e-7, 1 - 1e-7]) + KLD.
torch::Tensor vae_loss_sum(const torch::Tensor& recon, const torch::Tensor& x, const torch::Tensor& mu,
                           const torch::Tensor& logvar) {
  namespace F = torch::nn::functional;
  const torch::Tensor bce = F::binary_cross_entropy(recon, x, F::BinaryCrossEntropyFuncOptions().reduction(torch::kSum));
  const torch::Tensor kld = -0.5 * torch::sum(1 + logvar - mu.pow(2) - logvar.exp());
  return bce + kld;
}

// vae-mnist: MNIST / 255, flattened, reconstructed; the loss per batch is the sum / batch size
// (per sample, as Keras' mean reduction with loss weight 784 makes it). Returns the JSON line
// with test_loss (the test set's summed loss / 10,000, z sampled) and no test_accuracy.
nlohmann::json train_vae(const bench::Workload& w, const bench::Args& args, int epochs) {
  const Data d = load_mnist(args.data + "/" + w.images);
  Vae model;
  torch::optim::Adam optimizer(model->parameters(), torch::optim::AdamOptions(1e-3).eps(1e-7));

  const int64_t n = d.train_x.size(0);
  std::vector<double> epoch_seconds;
  const auto t0 = std::chrono::steady_clock::now();
  model->train();
  for (int epoch = 0; epoch < epochs; ++epoch) {
    const auto e0 = std::chrono::steady_clock::now();
    const torch::Tensor order = torch::randperm(n, torch::kLong);
    double loss_sum = 0;
    for (int64_t b = 0; b < n; b += w.batch_size) {
      const torch::Tensor idx = order.slice(0, b, std::min(n, b + w.batch_size));
      const torch::Tensor x = batch_x(d.train_x, idx);
      model->zero_grad(/*set_to_none=*/true);
      const auto [recon, mu, logvar] = model->forward(x);
      torch::Tensor loss = vae_loss_sum(recon, x, mu, logvar) / static_cast<double>(x.size(0));
      loss.backward();
      optimizer.step();
      loss_sum += loss.item<double>() * static_cast<double>(x.size(0));
    }
    epoch_seconds.push_back(bench::seconds_since(e0));
    if (!std::isfinite(loss_sum)) throw std::runtime_error("the loss diverged");
  }
  const double train_seconds = bench::seconds_since(t0);

  // Reconstructions of the test set, batch by batch in inference mode (predict's work); with
  // `loss` also the summed loss.
  auto reconstruct = [&](double* loss) {
    torch::NoGradGuard no_grad;
    model->eval();
    const int64_t m = d.test_x.size(0);
    for (int64_t b = 0; b < m; b += 1000) {
      const torch::Tensor x = d.test_x.slice(0, b, std::min(m, b + 1000)).to(torch::kFloat).div_(255.f);
      const auto [recon, mu, logvar] = model->forward(x);
      if (loss) *loss += vae_loss_sum(recon, x, mu, logvar).item<double>();
    }
  };
  double test_loss_sum = 0;
  reconstruct(&test_loss_sum);  // also predict's warm-up
  const double test_loss = test_loss_sum / static_cast<double>(d.test_x.size(0));
  nlohmann::json predict_rate = nullptr;
  if (args.predict) {  // the median of 3 timed passes over the 10,000 test images
    std::vector<double> rates;
    for (int r = 0; r < 3; ++r) {
      const auto p0 = std::chrono::steady_clock::now();
      reconstruct(nullptr);
      rates.push_back(static_cast<double>(d.test_x.size(0)) / bench::seconds_since(p0));
    }
    std::sort(rates.begin(), rates.end());
    predict_rate = rates[1];
  }
  return {{"workload", w.name},          {"framework", "libtorch"},
          {"threads", args.threads},     {"epochs", epochs},
          {"epoch_seconds", epoch_seconds}, {"train_seconds", train_seconds},
          {"test_accuracy", nullptr},    {"test_loss", test_loss},
          {"peak_rss_mb", bench::peak_rss_mb()}, {"predict_samples_per_s", predict_rate}};
}

// --- the sequence workloads ---------------------------------------------------------------------

// Embedding -> LSTM stack (batch first) -> Linear on the last layer's final h (imdb: both
// directions' final states, as Keras' Bidirectional concatenates them; one logit, the sigmoid is
// in the loss) or on every step's output (chars: logits per step).
struct SequenceNetImpl : torch::nn::Module {
  SequenceNetImpl(int64_t vocab, int64_t embed, int64_t units, int64_t layers, bool bidirectional, int64_t outputs,
                  bool per_step)
      : embedding(register_module("embedding", torch::nn::Embedding(vocab, embed))),
        lstm(register_module("lstm", torch::nn::LSTM(torch::nn::LSTMOptions(embed, units)
                                                         .num_layers(layers)
                                                         .bidirectional(bidirectional)
                                                         .batch_first(true)))),
        out(register_module("out", torch::nn::Linear((bidirectional ? 2 : 1) * units, outputs))),
        dirs(bidirectional ? 2 : 1),
        per_step(per_step) {
    keras_init_sequence(units);
  }

  torch::Tensor forward(const torch::Tensor& x) {
    const auto [seq, state] = lstm->forward(embedding->forward(x));
    if (per_step) return out->forward(seq);  // (N, T, vocab)
    const torch::Tensor h = std::get<0>(state);  // (layers * dirs, N, U): the last layer's are last
    const torch::Tensor last = h.slice(0, h.size(0) - dirs).permute({1, 0, 2}).reshape({x.size(0), -1});
    return out->forward(last);  // (N, 1)
  }

  // Keras' initializers (common.hpp): embeddings U(-0.05, 0.05); W_ih glorot_uniform (torch's
  // (4U, I) has Keras' (I, 4U) fans), W_hh orthogonal, b_ih zero but the forget gate's 1 (torch's
  // gate order i, f, g, o is Keras'), b_hh zero (Keras has one bias); Linear glorot, bias zero.
  void keras_init_sequence(int64_t units) {
    torch::NoGradGuard no_grad;
    for (auto& p : named_parameters()) {
      const std::string& k = p.key();
      torch::Tensor v = p.value();
      if (k.rfind("embedding.", 0) == 0) torch::nn::init::uniform_(v, -0.05, 0.05);
      else if (k.find("weight_ih") != std::string::npos || k == "out.weight") torch::nn::init::xavier_uniform_(v);
      else if (k.find("weight_hh") != std::string::npos) torch::nn::init::orthogonal_(v);
      else {
        torch::nn::init::zeros_(v);
        if (k.find("bias_ih") != std::string::npos) v.slice(0, units, 2 * units).fill_(1.f);
      }
    }
  }

  torch::nn::Embedding embedding;
  torch::nn::LSTM lstm;
  torch::nn::Linear out;
  int64_t dirs;
  bool per_step;
};
TORCH_MODULE(SequenceNet);

torch::Tensor long_tensor(const std::vector<int32_t>& v, std::vector<int64_t> shape) {
  return torch::from_blob(const_cast<int32_t*>(v.data()), shape, torch::kInt).to(torch::kLong);
}

// imdb-lstm / char-lstm, as bench_lamina trains them (common.hpp's data, model and sizes);
// returns the JSON line.
nlohmann::json train_sequence(const bench::Workload& w, const bench::Args& args, int epochs) {
  const bool imdb = w.architecture == bench::Architecture::imdb_lstm;
  torch::Tensor train_x, train_y, test_x, test_y;
  int64_t vocab = bench::kImdbVocab;
  if (imdb) {
    const bench::Tokens train = bench::synthetic_reviews(w.timed_samples, w.seed),
                        test = bench::synthetic_reviews(bench::kImdbTest, w.seed + 1);
    train_x = long_tensor(train.x, {train.n, train.t});
    train_y = long_tensor(train.y, {train.n, 1}).to(torch::kFloat);
    test_x = long_tensor(test.x, {test.n, test.t});
    test_y = long_tensor(test.y, {test.n, 1}).to(torch::kFloat);
  } else {
    const bench::CharData c = bench::shakespeare_windows(bench::shakespeare_path(args.data), w.timed_samples);
    vocab = c.vocab;
    train_x = long_tensor(c.train.x, {c.train.n, c.train.t});
    train_y = long_tensor(c.train.y, {c.train.n, c.train.t});
    test_x = long_tensor(c.test.x, {c.test.n, c.test.t});
    test_y = long_tensor(c.test.y, {c.test.n, c.test.t});
  }
  SequenceNet model = imdb ? SequenceNet(vocab, bench::kImdbEmbed, bench::kImdbUnits, 2, bench::kImdbBidirectional, 1,
                                         false)
                           : SequenceNet(vocab, bench::kCharEmbed, bench::kCharUnits, 1, false, vocab, true);
  torch::optim::Adam optimizer(model->parameters(), torch::optim::AdamOptions(1e-3).eps(1e-7));
  torch::nn::BCEWithLogitsLoss bce;  // Keras' sigmoid + binary CE, the torch way
  torch::nn::CrossEntropyLoss ce;
  auto loss_of = [&](const torch::Tensor& out, const torch::Tensor& y) {
    return imdb ? bce(out, y) : ce(out.reshape({-1, vocab}), y.reshape({-1}));
  };

  const int64_t n = train_x.size(0);
  std::vector<double> epoch_seconds, epoch_cpu_seconds;
  const auto t0 = std::chrono::steady_clock::now();
  model->train();
  for (int epoch = 0; epoch < epochs; ++epoch) {
    const auto e0 = std::chrono::steady_clock::now();
    const double cpu0 = bench::cpu_seconds();
    const torch::Tensor order = torch::randperm(n, torch::kLong);
    double loss_sum = 0;
    for (int64_t b = 0; b < n; b += w.batch_size) {
      const torch::Tensor idx = order.slice(0, b, std::min(n, b + w.batch_size));
      model->zero_grad(/*set_to_none=*/true);
      torch::Tensor loss = loss_of(model->forward(train_x.index_select(0, idx)), train_y.index_select(0, idx));
      loss.backward();
      optimizer.step();
      loss_sum += loss.item<double>() * static_cast<double>(idx.size(0));
    }
    epoch_seconds.push_back(bench::seconds_since(e0));
    epoch_cpu_seconds.push_back(bench::cpu_seconds() - cpu0);
    if (!std::isfinite(loss_sum)) throw std::runtime_error("the loss diverged");
  }
  const double train_seconds = bench::seconds_since(t0);

  double test_accuracy = 0;
  {
    torch::NoGradGuard no_grad;
    model->eval();
    const torch::Tensor out = model->forward(test_x);
    const torch::Tensor predicted = imdb ? out.gt(0).to(torch::kFloat) : out.argmax(-1);
    test_accuracy = predicted.eq(test_y).to(torch::kDouble).mean().item<double>();
  }
  return {{"workload", w.name},          {"framework", "libtorch"},
          {"threads", args.threads},     {"epochs", epochs},
          {"epoch_seconds", epoch_seconds}, {"train_seconds", train_seconds},
          {"test_accuracy", test_accuracy}, {"peak_rss_mb", bench::peak_rss_mb()},
          {"predict_samples_per_s", nullptr}, {"epoch_samples", n},
          {"epoch_cpu_seconds", epoch_cpu_seconds}};
}

// Which BLAS libtorch's calls reached, for the record: the libblas mapped into this process
// and, when it is OpenBLAS, its kernel set and thread count.
nlohmann::json blas_info() {
  nlohmann::json j;
  std::ifstream maps("/proc/self/maps");
  for (std::string line; std::getline(maps, line);)
    if (const auto at = line.find('/'); at != std::string::npos && line.find("libblas", at) != std::string::npos) {
      j["libblas"] = line.substr(at);
      break;
    }
  using CoreName = char* (*)();
  using Threads = int (*)();
  if (auto core = reinterpret_cast<CoreName>(dlsym(RTLD_DEFAULT, "openblas_get_corename"))) j["openblas_core"] = core();
  if (auto threads = reinterpret_cast<Threads>(dlsym(RTLD_DEFAULT, "openblas_get_num_threads")))
    j["openblas_threads"] = threads();
  return j;
}

}  // namespace

int main(int argc, char** argv) try {
  const bench::Args args = bench::parse_args(argc, argv);
  const bench::Workload& w = bench::find_workload(args.workload);
  const int epochs = args.epochs > 0 ? args.epochs : w.default_epochs;
  torch::set_num_threads(args.threads);
  // bench_compare runs OpenBLAS on one thread at every torch thread count (its pool beside torch's
  // would oversubscribe the cores); say so when run otherwise.
  const char* blas_threads = std::getenv("OPENBLAS_NUM_THREADS");
  if (!blas_threads || std::atoi(blas_threads) != 1)
    std::cerr << "bench_torch: warning: OPENBLAS_NUM_THREADS=" << (blas_threads ? blas_threads : "(unset)")
              << ", not 1: OpenBLAS's own pool runs beside torch's " << args.threads << " thread(s)\n";
  torch::manual_seed(static_cast<uint64_t>(w.seed));
  if (bench::is_sequence(w) || w.architecture == bench::Architecture::vae) {
    nlohmann::json out = bench::is_sequence(w) ? train_sequence(w, args, epochs) : train_vae(w, args, epochs);
    out["blas"] = blas_info();
    std::cout << out.dump() << std::endl;
    return 0;
  }

  Data d = w.mnist ? load_mnist(args.data + "/" + w.images) : load_digits(args.data + "/digits/digits.csv.gz", w.seed);
  torch::nn::Sequential model = make_model(w);
  std::unique_ptr<torch::optim::Optimizer> optimizer;
  if (w.optimizer == bench::Optimizer::sgd_momentum)
    optimizer = std::make_unique<torch::optim::SGD>(model->parameters(), torch::optim::SGDOptions(0.01).momentum(0.9));
  else
    optimizer = std::make_unique<torch::optim::Adam>(model->parameters(), torch::optim::AdamOptions(1e-3).eps(1e-7));
  torch::nn::CrossEntropyLoss criterion;

  const int64_t n = d.train_x.size(0);
  std::vector<double> epoch_seconds;
  double first_step_end = -1;  // monotonic_seconds() after the first optimizer step (start-up timing)
  const auto t0 = std::chrono::steady_clock::now();
  model->train();
  for (int epoch = 0; epoch < epochs; ++epoch) {
    const auto e0 = std::chrono::steady_clock::now();
    const torch::Tensor order = torch::randperm(n, torch::kLong);  // shuffled every epoch
    double loss_sum = 0;  // the running loss, as Lamina's fit keeps it
    for (int64_t b = 0; b < n; b += w.batch_size) {
      const torch::Tensor idx = order.slice(0, b, std::min(n, b + w.batch_size));
      const torch::Tensor x = batch_x(d.train_x, idx), y = d.train_y.index_select(0, idx);
      model->zero_grad(/*set_to_none=*/true);
      torch::Tensor loss = criterion(model->forward(x), y);
      loss.backward();
      optimizer->step();
      if (first_step_end < 0) first_step_end = bench::monotonic_seconds();
      loss_sum += loss.item<double>() * static_cast<double>(idx.size(0));
    }
    epoch_seconds.push_back(bench::seconds_since(e0));
    if (!std::isfinite(loss_sum)) throw std::runtime_error("the loss diverged");
  }
  const double train_seconds = bench::seconds_since(t0);

  // Test accuracy from predict; for MNIST this pass is also predict's warm-up.
  const torch::Tensor scores = predict(model, d.test_x, 1000);
  const double test_accuracy = scores.argmax(1).eq(d.test_y).to(torch::kDouble).mean().item<double>();
  nlohmann::json predict_rate = nullptr;
  if (w.mnist && args.predict) {  // the median of 3 timed passes over the 10,000 test images
    std::vector<double> rates;
    for (int r = 0; r < 3; ++r) {
      const auto p0 = std::chrono::steady_clock::now();
      predict(model, d.test_x, 1000);
      rates.push_back(static_cast<double>(d.test_x.size(0)) / bench::seconds_since(p0));
    }
    std::sort(rates.begin(), rates.end());
    predict_rate = rates[1];
  }

  const nlohmann::json out = {{"workload", w.name},          {"framework", "libtorch"},
                              {"threads", args.threads},     {"epochs", epochs},
                              {"epoch_seconds", epoch_seconds}, {"train_seconds", train_seconds},
                              {"test_accuracy", test_accuracy}, {"peak_rss_mb", bench::peak_rss_mb()},
                              {"predict_samples_per_s", predict_rate}, {"blas", blas_info()},
                              {"first_step_end_monotonic_s", first_step_end}};
  std::cout << out.dump() << std::endl;
} catch (const std::exception& e) {
  std::cerr << "bench_torch: " << e.what() << "\n";
  return 1;
}
