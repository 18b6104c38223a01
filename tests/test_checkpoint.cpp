// Checkpoints and exact resume: training N epochs equals training some, saving a checkpoint,
// loading it into a fresh model and training the rest, bit for bit (an MLP with Adam and
// shuffling; a CNN with Dropout and BatchNormalization, also from mid-epoch checkpoints).
// ModelCheckpoint's paths and policies; refusal of corrupted and newer files.
#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>

#include "test_util.hpp"

namespace lamina {
namespace {

namespace fs = std::filesystem;

fs::path temp_dir() {
  fs::path d = fs::temp_directory_path() / ("lamina_test_checkpoint_" + std::to_string(::getpid()));
  fs::create_directories(d);
  return d;
}

// Three Gaussian blobs in 4-D, 3 classes.
data::Dataset blobs(int64_t n, uint64_t seed) {
  Generator gen(seed);
  Tensor x = Tensor::randn({n, 4}, gen, 0.f, 0.5f), y = Tensor::empty({n});
  for (int64_t i = 0; i < n; ++i) {
    y.data()[i] = static_cast<float>(i % 3);
    x.at({i, i % 3}) += 2.f;
  }
  return data::Dataset::from_tensors(x, y);
}

// 8x8 one-channel images: a horizontal bar, a vertical bar, or noise alone.
data::Dataset bars(int64_t n, uint64_t seed) {
  Generator gen(seed);
  Tensor x = Tensor::rand({n, 8, 8, 1}, gen, 0.f, 0.3f), y = Tensor::empty({n});
  for (int64_t i = 0; i < n; ++i) {
    const int64_t c = i % 3, at = static_cast<int64_t>(gen.below(8));
    y.data()[i] = static_cast<float>(c);
    for (int64_t k = 0; c < 2 && k < 8; ++k) x.at({i, c == 0 ? at : k, c == 0 ? k : at, 0}) += 1.f;
  }
  return data::Dataset::from_tensors(x, y);
}

Sequential mlp() {
  Sequential m({layers::Dense({.units = 16, .activation = "relu", .input_shape = Shape{4}}), layers::Dense(3)});
  m.compile(Adam({.learning_rate = 0.01f}), losses::SparseCategoricalCrossentropy({.from_logits = true}), {"accuracy"});
  return m;
}

Sequential cnn() {
  Sequential m({layers::Conv2D(
                    {.filters = 4, .kernel_size = 3, .padding = Padding::same, .input_shape = Shape{8, 8, 1}}),
                layers::BatchNormalization(), layers::Activation("relu"), layers::MaxPooling2D(),
                layers::Dropout(0.3f), layers::Flatten(), layers::Dense(3)});
  m.compile(Adam({.learning_rate = 0.01f}), losses::SparseCategoricalCrossentropy({.from_logits = true}), {"accuracy"});
  return m;
}

// Everything that must match after a resume: all weights (moving statistics included), the
// optimizer's step count and slots, and the generators.
std::vector<float> fingerprint(Sequential& m) {
  std::vector<float> all;
  for (const auto& [name, w] : m.named_weights()) all.insert(all.end(), w.data(), w.data() + w.numel());
  all.push_back(static_cast<float>(m.optimizer().iterations()));
  for (const auto& slots : m.optimizer().state())
    for (const Tensor& s : slots) all.insert(all.end(), s.data(), s.data() + s.numel());
  auto push_state = [&](const Generator::State& s) {
    for (uint64_t word : s) all.push_back(static_cast<float>(word >> 40));
  };
  push_state(default_generator().state());
  for (const auto& l : m.layers())
    if (Generator* g = l->generator()) push_state(g->state());
  return all;
}

// The uninterrupted run and the resumed one, each from manual_seed(seed); the resumed one
// loads `checkpoint` (written by the first part) into a fresh model after scrambling the
// default generator, as a new process would have it.
TEST(Checkpoint, MlpWithAdamAndShuffleResumesBitForBit) {
  const data::Dataset train = blobs(90, 1);
  const FitOptions o{.epochs = 2, .batch_size = 16, .validation_split = 0.2, .verbose = 0};
  manual_seed(3);
  Sequential whole = mlp();
  whole.fit(train, o);
  const std::vector<float> expected = fingerprint(whole);

  const std::string path = (temp_dir() / "mlp.safetensors").string();
  manual_seed(3);
  Sequential first = mlp();
  FitOptions one = o;
  one.epochs = 1;
  first.fit(train, one);
  first.save_checkpoint(path);

  manual_seed(999);
  Sequential resumed = Sequential::load_checkpoint(path);
  EXPECT_EQ(resumed.fit_state().epoch, 1);
  EXPECT_EQ(resumed.fit_state().step, 0);
  FitOptions rest = o;
  rest.initial_epoch = resumed.fit_state().epoch;
  const History h = resumed.fit(train, rest);
  EXPECT_EQ(h.epochs, std::vector<int>{1});
  EXPECT_TRUE(fingerprint(resumed) == expected) << "resumed MLP differs from the uninterrupted run";
  fs::remove_all(temp_dir());
}

TEST(Checkpoint, CnnWithDropoutAndBatchNormResumesBitForBitFromEpochsAndBatches) {
  const data::Dataset train = bars(48, 2);
  const FitOptions o{.epochs = 2, .batch_size = 8, .validation_split = 0.25, .verbose = 0};  // 36 + 12: 5 steps
  manual_seed(5);
  Sequential whole = cnn();
  whole.fit(train, o);
  const std::vector<float> expected = fingerprint(whole);

  // One run that saves at every epoch end, every 3 batches (counted across epochs: epoch 1
  // step 3, epoch 2 steps 1 and 4) and every 5 (the last step of each epoch, before validation).
  const fs::path dir = temp_dir();
  manual_seed(5);
  Sequential saving = cnn();
  const std::string batch_path = (dir / "e{epoch}-b{batch}.safetensors").string();
  ModelCheckpoint at_epochs({.filepath = (dir / "e{epoch}.safetensors").string()});
  ModelCheckpoint every_3({.filepath = batch_path, .save_freq = 3}), every_5({.filepath = batch_path, .save_freq = 5});
  FitOptions with = o;
  with.callbacks = {&at_epochs, &every_3, &every_5};
  saving.fit(train, with);
  EXPECT_TRUE(fingerprint(saving) == expected) << "checkpointing changed the training";

  for (const char* name : {"e1-b3.safetensors", "e1-b5.safetensors", "e1.safetensors", "e2-b1.safetensors",
                           "e2-b4.safetensors", "e2-b5.safetensors"}) {
    manual_seed(12345);
    Sequential resumed = Sequential::load_checkpoint((dir / name).string());
    FitOptions rest = o;
    rest.initial_epoch = resumed.fit_state().epoch;
    resumed.fit(train, rest);
    EXPECT_TRUE(fingerprint(resumed) == expected) << "resumed from " << name << " (epoch "
                                                  << rest.initial_epoch << ") differs";
  }
  // The final checkpoint has nothing left to train and holds the final state.
  manual_seed(0);
  Sequential done = Sequential::load_checkpoint((dir / "e2.safetensors").string());
  EXPECT_EQ(done.fit_state().epoch, 2);
  EXPECT_TRUE(fingerprint(done) == expected);
  fs::remove_all(dir);
}

TEST(Checkpoint, InitialEpochContinuesTheSameModelInProcess) {
  const data::Dataset train = blobs(60, 4);
  manual_seed(8);
  Sequential whole = mlp();
  whole.fit(train, {.epochs = 3, .batch_size = 8, .verbose = 0});
  manual_seed(8);
  Sequential parts = mlp();
  parts.fit(train, {.epochs = 1, .batch_size = 8, .verbose = 0});
  parts.fit(train, {.epochs = 3, .initial_epoch = 1, .batch_size = 8, .verbose = 0});
  EXPECT_TRUE(fingerprint(parts) == fingerprint(whole));
  // Other data at the same epoch is refused rather than resumed inexactly.
  EXPECT_THROW(parts.fit(blobs(30, 4), {.epochs = 4, .initial_epoch = 3, .verbose = 0}), ValueError);
}

// An exception out of fit (a callback's; Ctrl-C in Python) leaves the weights at the last finished
// batch and forgets the half-done epoch: the next fit starts afresh, as Keras', on any data.
TEST(Checkpoint, AnExceptionInFitForgetsTheHalfDoneEpoch) {
  const data::Dataset train = blobs(60, 4);
  manual_seed(8);
  Sequential m = mlp();
  LambdaCallback boom;
  boom.batch_end = [](int64_t step, const Logs&) {
    if (step == 3) throw std::runtime_error("interrupted");
  };
  EXPECT_THROW(m.fit(train, {.epochs = 2, .batch_size = 8, .callbacks = {&boom}, .verbose = 0}), std::runtime_error);
  EXPECT_EQ(m.optimizer().iterations(), 3);  // the three batches before the exception stay trained
  EXPECT_EQ(m.fit_state().step, 0);
  EXPECT_FALSE(m.fit_state().shuffle_seed.has_value());
  EXPECT_NO_THROW(m.fit(blobs(30, 4), {.epochs = 1, .batch_size = 8, .verbose = 0}));
  EXPECT_EQ(m.fit_state().epoch, 1);
  EXPECT_EQ(m.optimizer().iterations(), 3 + 4);
}

TEST(Checkpoint, IsAModelFileToo) {
  manual_seed(1);
  Sequential m = cnn();
  m.fit(bars(24, 1), {.epochs = 1, .batch_size = 8, .verbose = 0});
  const std::string path = (temp_dir() / "c.safetensors").string();
  m.save_checkpoint(path);
  Sequential as_model = Sequential::load(path);
  const Tensor x = bars(6, 9).all_x();
  EXPECT_EQ(as_model.predict(x).to_vector(), m.predict(x).to_vector());
  const auto file = io::load_safetensors(path);
  bool has_slot = false;
  for (const auto& [name, t] : file.tensors) has_slot = has_slot || name == "optimizer/velocity/dense/kernel";
  EXPECT_TRUE(has_slot);
  EXPECT_TRUE(file.metadata.count("checkpoint"));
  fs::remove_all(temp_dir());
}

TEST(Checkpoint, RefusesCorruptedNewerAndIncompleteFilesChangingNothing) {
  manual_seed(2);
  Sequential m = cnn();
  m.fit(bars(24, 3), {.epochs = 1, .batch_size = 8, .verbose = 0});
  const fs::path dir = temp_dir();
  const std::string good = (dir / "good.safetensors").string();
  m.save_checkpoint(good);
  const std::string bytes = io::read_file(good);
  auto write = [&](const std::string& name, const std::string& content) {
    const std::string p = (dir / name).string();
    io::write_file_atomic(p, content);
    return p;
  };
  const io::SafetensorsFile file = io::load_safetensors(good);
  auto rewrite = [&](const std::string& name, auto mutate) {
    io::SafetensorsFile f = file;
    mutate(f);
    const std::string p = (dir / name).string();
    io::save_safetensors(p, f.tensors, f.metadata);
    return p;
  };
  auto edit_checkpoint = [](io::SafetensorsFile& f, auto edit) {
    Json ck = Json::parse(f.metadata["checkpoint"]);
    edit(ck);
    f.metadata["checkpoint"] = ck.dump();
  };
  std::string flipped = bytes;
  flipped[flipped.size() - 3] ^= 0x10;  // in the last tensor's data
  m.save((dir / "model.safetensors").string());
  const std::vector<std::pair<std::string, std::string>> cases = {
      {write("truncated.safetensors", bytes.substr(0, bytes.size() - 7)), "truncated"},
      {write("flipped.safetensors", flipped), "the file is corrupted"},
      {rewrite("newer.safetensors",
               [&](auto& f) { edit_checkpoint(f, [](Json& ck) { ck["version"] = 2; }); }),
       "written in checkpoint version 2 by a newer Lamina; this build reads up to 1"},
      {rewrite("no_slot.safetensors",
               [](auto& f) {
                 std::erase_if(f.tensors, [](const auto& t) { return t.first == "optimizer/momentum/dense/bias"; });
               }),
       "CRC-32"},  // the checksum notices first
      {rewrite("bad_rng.safetensors",
               [&](auto& f) { edit_checkpoint(f, [](Json& ck) { ck["rng"]["default"][2] = "xyz"; }); }),
       "checkpoint.rng.default is \"xyz\"; expected 16 lower-case hex digits"},
      {rewrite("no_dropout_rng.safetensors",
               [&](auto& f) { edit_checkpoint(f, [](Json& ck) { ck["rng"]["layers"].erase("dropout"); }); }),
       "checkpoint.rng.layers.dropout is missing"},
      {(dir / "model.safetensors").string(), "not a checkpoint"},
      {(dir / "absent.safetensors").string(), "absent.safetensors"},
  };
  const Generator::State before = default_generator().state();
  for (const auto& [path, expected] : cases) {
    std::string message = "(loaded)";
    try {
      Sequential::load_checkpoint(path);
    } catch (const IoError& e) {
      message = e.what();
    }
    EXPECT_NE(message.find(expected), std::string::npos) << path << ": " << message;
    EXPECT_NE(message.find(path), std::string::npos) << "the message names no file: " << message;
    EXPECT_TRUE(default_generator().state() == before) << path << " changed the default generator";
  }
  EXPECT_NO_THROW(Sequential::load_checkpoint(good));
  fs::remove_all(dir);
}

TEST(ModelCheckpoint, PathsFromEpochBatchAndLogs) {
  Logs logs;
  logs.set("loss", 0.25);
  logs.set("val_loss", 0.123456);
  EXPECT_EQ(format_checkpoint_path("m-{epoch:02d}-{val_loss:.4f}.safetensors", 2, 7, logs), "m-03-0.1235.safetensors");
  EXPECT_EQ(format_checkpoint_path("{epoch}/{batch:03d}/{loss}{{x}}", 0, 7, logs), "1/007/0.25{x}");
  EXPECT_EQ(format_checkpoint_path("{val_loss:.2e}", 0, 0, logs), "1.23e-01");
  EXPECT_THROW(format_checkpoint_path("{val_acc}", 0, 0, logs), ValueError);
  EXPECT_THROW(format_checkpoint_path("{epoch:s}", 0, 0, logs), ValueError);
  EXPECT_THROW(format_checkpoint_path("{loss:d}", 0, 0, logs), ValueError);
  EXPECT_THROW(format_checkpoint_path("{epoch", 0, 0, logs), ValueError);
  EXPECT_THROW(ModelCheckpoint({.filepath = "x", .save_freq = 0}), ValueError);
  EXPECT_THROW(ModelCheckpoint({.filepath = "x", .save_freq = "batch"}), ValueError);
  EXPECT_THROW(ModelCheckpoint({.filepath = "x", .mode = "largest"}), ValueError);
}

TEST(ModelCheckpoint, SaveBestOnlyAndWeightsOnly) {
  const fs::path dir = temp_dir() / "sub";  // created by the callback
  manual_seed(6);
  Sequential m = mlp();
  int64_t improved = 0;
  double best = INFINITY;
  LambdaCallback count;
  count.epoch_end = [&](int, const Logs& logs) {
    if (logs.at("val_loss") < best) {
      best = logs.at("val_loss");
      ++improved;
    }
  };
  ModelCheckpoint ckpt({.filepath = (dir / "best-{epoch}.safetensors").string(),
                        .save_best_only = true,
                        .save_weights_only = true});
  m.fit(blobs(60, 7),
        {.epochs = 6, .batch_size = 8, .validation_split = 0.3, .callbacks = {&count, &ckpt}, .verbose = 0});
  int64_t files = 0;
  for (const auto& e : fs::directory_iterator(dir)) files += e.path().extension() == ".safetensors";
  EXPECT_EQ(files, improved);
  EXPECT_EQ(ckpt.best(), best);
  const std::string last = ckpt.last_saved();
  EXPECT_NO_THROW(Sequential::load(last));
  EXPECT_THROW(Sequential::load_checkpoint(last), IoError);  // weights only: no training state
  const Json logged = Json::parse(io::load_safetensors(last).metadata.at("logs"));
  EXPECT_EQ(logged.at("val_loss").get<double>(), best);
  fs::remove_all(temp_dir());
}

// A killed write leaves "<path>.tmp.<pid>.<hex>"; the next writer removes those of dead processes.
TEST(ModelCheckpoint, RemovesTempFilesOfDeadWriters) {
  const fs::path dir = temp_dir();
  const pid_t child = ::fork();
  if (child == 0) ::_exit(0);
  ::waitpid(child, nullptr, 0);
  const fs::path dead = dir / ("last.safetensors.tmp." + std::to_string(child) + ".0123456789abcdef");
  const fs::path alive = dir / "last.safetensors.tmp.1.0123456789abcdef";  // init runs
  const fs::path other = dir / "last.safetensors.tmp.notes";
  for (const auto& p : {dead, alive, other}) std::ofstream(p) << "partial";
  manual_seed(1);
  Sequential m = mlp();
  ModelCheckpoint ckpt({.filepath = (dir / "last.safetensors").string()});
  m.fit(blobs(30, 1), {.epochs = 1, .callbacks = {&ckpt}, .verbose = 0});
  EXPECT_FALSE(fs::exists(dead));
  EXPECT_TRUE(fs::exists(alive));
  EXPECT_TRUE(fs::exists(other));
  EXPECT_NO_THROW(Sequential::load_checkpoint((dir / "last.safetensors").string()));
  fs::remove_all(dir);
}

}  // namespace
}  // namespace lamina
