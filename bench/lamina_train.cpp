// bench_lamina: trains one bench workload with Lamina's public API (Sequential or a Functional
// Model, compile, fit, predict) and prints one JSON line with the epoch times, test accuracy,
// peak RSS and predict throughput. bench_compare runs it beside bench_torch (bench/peers/torch_train.cpp).
//   bench_lamina --workload mnist-mlp --threads 1 [--epochs 2] [--data data] [--export-onnx M.onnx]
//                [--export-inputs X.bin]
#include <algorithm>
#include <chrono>
#include <cmath>
#include <iostream>
#include <numeric>
#include <span>

#include <lamina/lamina.hpp>

#include "resnet_fashion_model.hpp"  // examples/: the same model as the example

#include "common.hpp"

using namespace lamina;

namespace {

// The digits, X / 16, split by bench::split_permutation (the same rule as the libtorch peer).
data::TrainTest load_digits_split(const std::string& dir, uint64_t seed) {
  const data::Dataset all = data::load_digits(dir + "/digits/digits.csv.gz").scaled(1.f / 16.f);
  const std::vector<int64_t> perm = bench::split_permutation(all.size(), seed);
  const auto n_train = static_cast<size_t>(bench::digits_train_size(all.size()));
  const std::span<const int64_t> train(perm.data(), n_train), test(perm.data() + n_train, perm.size() - n_train);
  return {data::Dataset::from_tensors(all.x(train), all.y(train)), data::Dataset::from_tensors(all.x(test), all.y(test))};
}

// LeNet-5 as bench::Architecture::lenet describes, the same layers as examples/cnn_mnist.cpp.
void add_lenet(Sequential& model) {
  model.add(layers::Reshape({.target_shape = Shape{28, 28, 1}, .input_shape = Shape{28, 28}}));
  model.add(layers::Conv2D({.filters = 6, .kernel_size = 5, .padding = Padding::same, .activation = "relu"}));
  model.add(layers::MaxPooling2D({.pool_size = 2}));
  model.add(layers::Conv2D({.filters = 16, .kernel_size = 5, .activation = "relu"}));
  model.add(layers::MaxPooling2D({.pool_size = 2}));
  model.add(layers::Flatten());
  model.add(layers::Dense(120, "relu"));
  model.add(layers::Dense(84, "relu"));
  model.add(layers::Dense(10));
}

Sequential make_sequential(const bench::Workload& w) {
  Sequential model;
  if (w.architecture == bench::Architecture::lenet) add_lenet(model);
  else if (w.mnist) model.add(layers::Flatten({.input_shape = Shape{28, 28}}));
  for (size_t l = 1; l < w.units.size(); ++l) {
    const bool last = l + 1 == w.units.size();
    const Activation act = !last ? Activation::relu : w.softmax_output ? Activation::softmax : Activation::linear;
    model.add(layers::Dense({.units = w.units[l], .activation = act}));
  }
  return model;
}

// ids as Lamina's float tensors.
Tensor ids(const std::vector<int32_t>& v, Shape shape) {
  return Tensor::from(std::vector<float>(v.begin(), v.end()), std::move(shape));
}

// imdb-lstm: synthetic reviews (common.hpp), labels (N, 1); char-lstm: tiny-shakespeare windows,
// next characters (N, T). `vocab` gets char-lstm's vocabulary.
data::TrainTest load_sequences(const bench::Workload& w, const std::string& dir, int64_t& vocab) {
  if (w.architecture == bench::Architecture::imdb_lstm) {
    const bench::Tokens train = bench::synthetic_reviews(w.timed_samples, w.seed),
                        test = bench::synthetic_reviews(bench::kImdbTest, w.seed + 1);
    return {data::Dataset::from_tensors(ids(train.x, {train.n, train.t}), ids(train.y, {train.n, 1})),
            data::Dataset::from_tensors(ids(test.x, {test.n, test.t}), ids(test.y, {test.n, 1}))};
  }
  const bench::CharData c = bench::shakespeare_windows(bench::shakespeare_path(dir), w.timed_samples);
  vocab = c.vocab;
  return {data::Dataset::from_tensors(ids(c.train.x, {c.train.n, c.train.t}), ids(c.train.y, {c.train.n, c.train.t})),
          data::Dataset::from_tensors(ids(c.test.x, {c.test.n, c.test.t}), ids(c.test.y, {c.test.n, c.test.t}))};
}

// The sequence models of common.hpp.
Model make_sequence_model(const bench::Workload& w, int64_t vocab) {
  using layers::Recurrent;
  Sequential model;
  if (w.architecture == bench::Architecture::imdb_lstm) {
    model.add(layers::Embedding(
        {.input_dim = bench::kImdbVocab, .output_dim = bench::kImdbEmbed, .input_shape = Shape{bench::kImdbMaxlen}}));
    model.add(layers::Bidirectional(layers::LSTM(Recurrent::Options{.units = bench::kImdbUnits, .return_sequences = true})));
    model.add(layers::Bidirectional(layers::LSTM(Recurrent::Options{.units = bench::kImdbUnits})));
    model.add(layers::Dense({.units = 1, .activation = Activation::sigmoid}));
    model.compile(Adam({.learning_rate = 1e-3f, .epsilon = 1e-7f}), "binary_crossentropy");
  } else {
    model.add(layers::Embedding({.input_dim = vocab, .output_dim = bench::kCharEmbed, .input_shape = Shape{bench::kCharSeq}}));
    model.add(layers::LSTM(Recurrent::Options{.units = bench::kCharUnits, .return_sequences = true}));
    model.add(layers::Dense({.units = vocab}));
    model.compile(Adam({.learning_rate = 1e-3f, .epsilon = 1e-7f}),
                  losses::SparseCategoricalCrossentropy({.from_logits = true}));
  }
  return model;
}

Model make_model(const bench::Workload& w) {
  Model model = w.architecture == bench::Architecture::resnet ? resnet_fashion::model() : make_sequential(w);
  if (w.optimizer == bench::Optimizer::sgd_momentum)
    model.compile(SGD({.learning_rate = 0.01f, .momentum = 0.9f}), "sparse_categorical_crossentropy");
  else
    model.compile(Adam({.learning_rate = 1e-3f, .epsilon = 1e-7f}),
                  losses::SparseCategoricalCrossentropy({.from_logits = true}));
  // No training metrics: the libtorch peer tracks the loss only, as Lamina's fit always does.
  return model;
}

// vae-mnist: MNIST's images (N, 784) as bytes / 255, converted per batch as the other MNIST
// workloads', and the same values as float targets (a Dataset's targets are floats): fit(x, x).
data::TrainTest load_vae_mnist(const std::string& dir) {
  auto images = [&](const char* name) {
    const std::string path = data::find_data_file(dir, name);
    if (path.empty()) throw std::runtime_error(dir + "/" + name + ": not found (scripts/fetch-data.sh fetches the data)");
    data::Idx idx = data::read_idx(path);
    auto targets = std::make_shared<std::vector<float>>(idx.bytes.size());
    for (size_t i = 0; i < idx.bytes.size(); ++i) (*targets)[i] = static_cast<float>(idx.bytes[i]) / 255.f;
    auto pixels = std::make_shared<const std::vector<uint8_t>>(std::move(idx.bytes));
    return data::Dataset::from_bytes(std::move(pixels), Shape{784}, std::move(targets), Shape{784}, 1.f / 255.f);
  };
  return {images("train-images-idx3-ubyte"), images("t10k-images-idx3-ubyte")};
}

// PyTorch's examples/vae VAE (common.hpp) as a Functional model: the KL term comes from
// Sampling (Layer::add_loss, kl_weight 1), and the reconstruction term is Keras' binary CE,
// a mean over the 784 pixels, weighted by 784 to make it their sum, as torch's example has it.
Model make_vae() {
  const KerasTensor x = Input({784});
  const KerasTensor h = layers::Dense(bench::kVaeHidden, "relu")(x);
  const KerasTensor mean = layers::Dense(bench::kVaeLatent)(h), log_var = layers::Dense(bench::kVaeLatent)(h);
  const KerasTensor z = layers::Sampling({.kl_weight = 1.f})({mean, log_var});
  const KerasTensor y = layers::Dense(784, "sigmoid")(layers::Dense(bench::kVaeHidden, "relu")(z));
  Model model(x, y, "vae");
  model.compile(Adam({.learning_rate = 1e-3f, .epsilon = 1e-7f}), std::vector<Loss>{losses::BinaryCrossentropy()},
                {.loss_weights = {784.0}});
  return model;
}

// scores (..., C) against class labels (...); one score per row (C = 1) is a probability of class 1.
double accuracy(const Tensor& scores, const Tensor& labels) {
  const int64_t c = scores.dim(scores.rank() - 1), n = scores.numel() / c;
  int64_t right = 0;
  for (int64_t i = 0; i < n; ++i) {
    const float* row = scores.data() + i * c;
    const int64_t predicted = c == 1 ? *row > 0.5f : std::max_element(row, row + c) - row;
    right += predicted == static_cast<int64_t>(labels.data()[i]);
  }
  return static_cast<double>(right) / static_cast<double>(n);
}

}  // namespace

int main(int argc, char** argv) try {
  const bench::Args args = bench::parse_args(argc, argv);
  const bench::Workload& w = bench::find_workload(args.workload);
  const int epochs = args.epochs > 0 ? args.epochs : w.default_epochs;
  set_num_threads(args.threads);
  manual_seed(w.seed);

  const std::string images = args.data + "/" + w.images;
  int64_t vocab = 0;
  const bool vae = w.architecture == bench::Architecture::vae;
  const data::TrainTest d = bench::is_sequence(w)                      ? load_sequences(w, args.data, vocab)
                            : vae                                      ? load_vae_mnist(images)
                            : !w.mnist                                 ? load_digits_split(args.data, w.seed)
                            : std::string(w.images) == "fashion-mnist" ? data::load_fashion_mnist(images)
                                                                       : data::load_mnist(images);
  Model model = bench::is_sequence(w) ? make_sequence_model(w, vocab) : vae ? make_vae() : make_model(w);
  // weights drawn before the clock starts
  model.build(w.architecture == bench::Architecture::imdb_lstm   ? Shape{bench::kImdbMaxlen}
              : w.architecture == bench::Architecture::char_lstm ? Shape{bench::kCharSeq}
              : vae                                              ? Shape{784}
              : w.mnist                                          ? Shape{28, 28}
                                                                 : Shape{w.units[0]});

  std::vector<double> epoch_cpu_seconds;
  double cpu0 = 0;
  LambdaCallback cpu_clock;
  cpu_clock.epoch_begin = [&](int) { cpu0 = bench::cpu_seconds(); };
  cpu_clock.epoch_end = [&](int, const Logs&) { epoch_cpu_seconds.push_back(bench::cpu_seconds() - cpu0); };
  const auto t0 = std::chrono::steady_clock::now();
  const History h = model.fit(d.train, {.epochs = epochs, .batch_size = w.batch_size, .shuffle = true,
                                        .seed = w.seed, .callbacks = {&cpu_clock}, .verbose = 0});
  const double train_seconds = bench::seconds_since(t0);

  // Test accuracy from predict; for MNIST this pass is also predict's warm-up. The VAE has no
  // accuracy: its test loss per sample (784 x mean binary CE + KL, z sampled) from evaluate,
  // which is also the warm-up.
  Json test_accuracy = nullptr, test_loss = nullptr;
  if (vae) test_loss = model.evaluate(d.test, {.batch_size = 1000, .verbose = 0}).at("loss");
  else test_accuracy = accuracy(model.predict(d.test, 1000), d.test.all_y());
  Json predict_rate = nullptr;
  if (w.mnist && args.predict) {  // the median of 3 timed passes over the 10,000 test images
    std::vector<double> rates;
    for (int r = 0; r < 3; ++r) {
      const auto p0 = std::chrono::steady_clock::now();
      model.predict(d.test, 1000);
      rates.push_back(static_cast<double>(d.test.size()) / bench::seconds_since(p0));
    }
    std::sort(rates.begin(), rates.end());
    predict_rate = rates[1];
  }

  if (!args.export_onnx.empty()) save_onnx(model, args.export_onnx);
  if (!args.export_inputs.empty()) {  // the test inputs, for the predict rows of models that do not read MNIST
    std::vector<int64_t> rows(static_cast<size_t>(d.test.size()));
    std::iota(rows.begin(), rows.end(), 0);
    const Tensor x = d.test.x(rows);
    bench::write_inputs(args.export_inputs, {x.shape().dims(), std::vector<float>(x.data(), x.data() + x.numel())});
  }

  const Json out = {{"workload", w.name},          {"framework", "lamina"},
                    {"threads", args.threads},     {"epochs", epochs},
                    {"epoch_seconds", h.epoch_seconds}, {"train_seconds", train_seconds},
                    {"test_accuracy", test_accuracy},   {"test_loss", test_loss},
                    {"peak_rss_mb", bench::peak_rss_mb()},
                    {"predict_samples_per_s", predict_rate}, {"epoch_samples", d.train.size()},
                    {"epoch_cpu_seconds", epoch_cpu_seconds}};
  std::cout << out.dump() << std::endl;
} catch (const std::exception& e) {
  std::cerr << "bench_lamina: " << e.what() << "\n";
  return 1;
}
