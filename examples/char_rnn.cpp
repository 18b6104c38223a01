// A character-level language model on tiny-shakespeare (Karpathy's char-rnn): predict each next
// character from the ones before it, then write new text from a prompt.
//
//   model = Sequential([Input((100,)), Embedding(vocab, 64),
//                       LSTM(512, return_sequences=True), Dense(vocab)])
//   model.compile(optimizer=Adam(3e-3, global_clipnorm=5),
//                 loss=SparseCategoricalCrossentropy(from_logits=True))
//   model.fit(x_train, y_train, epochs=5, batch_size=32, validation_data=(x_val, y_val))
//
// The first 90 % of the text trains, the last 10 % validates; both are cut into 100-character
// windows whose targets are the same characters one position on. The validation loss is in nats
// per character (char-rnn's README shows 1.395 for a 2-layer LSTM). Then it samples 600
// characters after "ROMEO:" at temperature 0.8, feeding the model the last 100 characters each step.
//
// Run: build/examples/char_rnn [input.txt] [epochs] [units] [threads]
//      (default data/tinyshakespeare/input.txt, else ../shared/data/tinyshakespeare/input.txt)
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <iostream>
#include <iterator>
#include <random>
#include <set>
#include <string>
#include <vector>

#include <lamina/lamina.hpp>

using namespace lamina;

namespace {

constexpr int64_t kSeq = 100;

std::string read_text(int argc, char** argv) {
  std::vector<std::string> paths;
  if (argc > 1 && *argv[1]) paths = {argv[1]};  // "" keeps the defaults
  else paths = {"data/tinyshakespeare/input.txt", "../shared/data/tinyshakespeare/input.txt"};
  for (const std::string& p : paths) {
    std::ifstream in(p, std::ios::binary);
    if (in) {
      std::cout << "text: " << p << "\n";
      return std::string((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    }
  }
  std::string tried;
  for (const std::string& p : paths) tried += (tried.empty() ? "" : ", ") + p;
  throw ValueError("no tiny-shakespeare text at " + tried +
                   " (the 1.1 MB input.txt of github karpathy/char-rnn, data/tinyshakespeare)");
}

// Non-overlapping kSeq-character windows of ids[from, to): x the window, y the next characters.
data::Dataset windows(const std::vector<float>& ids, size_t from, size_t to) {
  const auto n = static_cast<int64_t>((to - from - 1) / kSeq);
  std::vector<float> x, y;
  x.reserve(static_cast<size_t>(n * kSeq));
  y.reserve(static_cast<size_t>(n * kSeq));
  for (int64_t w = 0; w < n; ++w) {
    const size_t at = from + static_cast<size_t>(w * kSeq);
    x.insert(x.end(), ids.begin() + static_cast<std::ptrdiff_t>(at), ids.begin() + static_cast<std::ptrdiff_t>(at + kSeq));
    y.insert(y.end(), ids.begin() + static_cast<std::ptrdiff_t>(at + 1),
             ids.begin() + static_cast<std::ptrdiff_t>(at + kSeq + 1));
  }
  return data::Dataset::from_tensors(Tensor::from(std::move(x), {n, kSeq}), Tensor::from(std::move(y), {n, kSeq}));
}

// `count` characters after `prompt`, each drawn from softmax(logits / temperature) of the model
// fed the last kSeq characters (left-padded with newlines while the text is shorter).
std::string sample(Model& model, const std::string& vocab, const std::string& prompt, int count, float temperature,
                   uint64_t seed) {
  std::vector<int> id_of(256, 0);
  for (size_t i = 0; i < vocab.size(); ++i) id_of[static_cast<unsigned char>(vocab[i])] = static_cast<int>(i);
  std::string text(kSeq, '\n');
  text += prompt;
  std::mt19937_64 rng(seed);
  const auto v = static_cast<int64_t>(vocab.size());
  for (int k = 0; k < count; ++k) {
    std::vector<float> window;
    for (size_t i = text.size() - kSeq; i < text.size(); ++i) window.push_back(static_cast<float>(id_of[static_cast<unsigned char>(text[i])]));
    const Tensor logits = model.predict(Tensor::from(std::move(window), {1, kSeq}), 1);  // (1, kSeq, V)
    const float* last = logits.data() + (kSeq - 1) * v;
    const float top = *std::max_element(last, last + v);
    std::vector<double> p(static_cast<size_t>(v));
    for (int64_t c = 0; c < v; ++c) p[static_cast<size_t>(c)] = std::exp((last[c] - top) / temperature);
    std::discrete_distribution<int> pick(p.begin(), p.end());
    text += vocab[static_cast<size_t>(pick(rng))];
  }
  return text.substr(kSeq);
}

}  // namespace

int main(int argc, char** argv) try {
  manual_seed(7);
  const std::string text = read_text(argc, argv);
  const int epochs = argc > 2 ? std::atoi(argv[2]) : 5;
  // 512 units reach 1.59 nats/char in 4 epochs where 256 stay at 1.63 after 6 (1 thread on a
  // shared machine: 125-195 s an epoch for 512, 20-30 s for 256 when it was quiet).
  const int64_t units = argc > 3 ? std::atoll(argv[3]) : 512;
  if (argc > 4) set_num_threads(std::atoi(argv[4]));

  const std::set<char> chars(text.begin(), text.end());
  const std::string vocab(chars.begin(), chars.end());
  std::vector<int> id_of(256, 0);
  for (size_t i = 0; i < vocab.size(); ++i) id_of[static_cast<unsigned char>(vocab[i])] = static_cast<int>(i);
  std::vector<float> ids;
  ids.reserve(text.size());
  for (char c : text) ids.push_back(static_cast<float>(id_of[static_cast<unsigned char>(c)]));
  const size_t split = text.size() * 9 / 10;
  const data::Dataset train = windows(ids, 0, split), val = windows(ids, split, ids.size());
  const auto v = static_cast<int64_t>(vocab.size());
  std::cout << text.size() << " characters, " << v << " distinct; " << train.size() << " training and " << val.size()
            << " validation windows of " << kSeq << "\n";

  Sequential model({layers::Input({kSeq}), layers::Embedding(v, 64),
                    layers::LSTM(layers::Recurrent::Options{.units = units, .return_sequences = true}),
                    layers::Dense(v)});
  Adam adam({.learning_rate = 3e-3});
  adam.global_clipnorm = 5.f;  // LSTMs' occasional gradient spikes
  model.compile(adam, losses::SparseCategoricalCrossentropy({.from_logits = true}));
  model.summary();

  LambdaCallback report;
  auto t0 = std::chrono::steady_clock::now();
  report.epoch_begin = [&](int) { t0 = std::chrono::steady_clock::now(); };
  report.epoch_end = [&](int epoch, const Logs& logs) {
    const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    std::printf("epoch %d: train loss %.4f, validation loss %.4f nats/char (%.3f bits), %.1f s\n", epoch + 1,
                logs.at("loss"), logs.at("val_loss"), logs.at("val_loss") / std::log(2.0), s);
    std::fflush(stdout);
  };
  // Batches of 32 windows: twice the updates per epoch of 64, for little more time.
  model.fit(train, {.epochs = epochs, .batch_size = 32, .validation_data = val, .callbacks = {&report}, .verbose = 0});

  std::cout << "\n--- sample (temperature 0.8) ---\n" << sample(model, vocab, "ROMEO:", 600, 0.8f, 7) << "\n";
} catch (const lamina::Error& e) {
  std::cerr << "char_rnn: " << e.what() << "\n";
  return 1;
}
