// Callbacks: hooks that fit() calls around epochs and batches, as keras.callbacks. ProgressBar
// and History are added by fit itself; EarlyStopping, ModelCheckpoint, TerminateOnNaN and
// LambdaCallback are for users.
//
//   EarlyStopping stop({.monitor = "val_loss", .patience = 2, .restore_best_weights = true});
//   model.fit(train, {.epochs = 50, .validation_split = 0.1, .callbacks = {&stop}});
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <iosfwd>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "lamina/json.hpp"
#include "lamina/tensor.hpp"

namespace lamina {

class Model;

// Named values in insertion order: "loss" first, then the metrics, then "val_*".
struct Logs {
  std::vector<std::pair<std::string, double>> values;
  void set(const std::string& key, double value);
  std::optional<double> get(const std::string& key) const;
  double at(const std::string& key) const;  // ValueError naming the key and the keys there are
};

struct TrainInfo {
  int epochs = 1;
  int64_t steps_per_epoch = 0;
  int64_t samples = 0;
  bool validation = false;
};

class Callback {
 public:
  virtual ~Callback() = default;
  virtual void on_train_begin(const TrainInfo&) {}
  virtual void on_epoch_begin(int /*epoch*/) {}
  // step: 1-based count of batches done in this epoch; logs: running means so far.
  virtual void on_batch_end(int64_t /*step*/, const Logs&) {}
  virtual void on_epoch_end(int /*epoch*/, const Logs&) {}
  virtual void on_train_end(const Logs&) {}

  // What an exact resume needs of this callback (ReduceLROnPlateau's patience count, EarlyStopping's
  // best value): checkpoints written during fit save it, and the next fit from that checkpoint
  // gives it back, after on_train_begin, to the callback of the same class_name at the same place
  // among those that have state. Null: nothing to save.
  virtual std::string class_name() const { return ""; }
  virtual Json state() const { return nullptr; }
  virtual void load_state(const Json& /*state*/) {}
  // Whether fit logs the learning rate ("learning_rate", each epoch's) for this callback, as
  // Keras' learning-rate callbacks add it to the logs.
  virtual bool logs_learning_rate() const { return false; }

  Model* model = nullptr;  // set by fit before on_train_begin
};

// Keras' progress bar. On a terminal: one bar per epoch that redraws in place with steps,
// elapsed time, ETA, time per step, loss and metrics. Off a terminal: one line per epoch.
class ProgressBar : public Callback {
 public:
  // verbose 1: the bar on a terminal, a line per epoch elsewhere; 2: always a line per epoch.
  explicit ProgressBar(int verbose = 1, std::ostream* out = nullptr);
  void on_train_begin(const TrainInfo& info) override;
  void on_epoch_begin(int epoch) override;
  void on_batch_end(int64_t step, const Logs& logs) override;
  void on_epoch_end(int epoch, const Logs& logs) override;

 private:
  void draw(int64_t step, const Logs& logs, bool final);
  std::ostream& out_;
  bool live_;
  TrainInfo info_;
  std::chrono::steady_clock::time_point start_, last_draw_;
};

// Every epoch's logs by key, as keras.callbacks.History: history["loss"][epoch].
class History : public Callback {
 public:
  void on_train_begin(const TrainInfo&) override;
  void on_epoch_begin(int epoch) override;
  void on_epoch_end(int epoch, const Logs& logs) override;

  std::map<std::string, std::vector<double>> history;
  std::vector<double> epoch_seconds;
  std::vector<int> epochs;  // 0-based indices of the epochs run

 private:
  std::chrono::steady_clock::time_point epoch_start_;
};

// Stops training when `monitor` stops improving for `patience` epochs.
class EarlyStopping : public Callback {
 public:
  struct Options {
    std::string monitor = "val_loss";
    double min_delta = 0.0;
    int patience = 0;
    std::string mode = "auto";  // "min", "max", or "auto": max for accuracy-like names
    bool restore_best_weights = false;
    int start_from_epoch = 0;
  };
  EarlyStopping() : EarlyStopping(Options{}) {}
  explicit EarlyStopping(Options o);
  void on_train_begin(const TrainInfo&) override;
  void on_epoch_end(int epoch, const Logs& logs) override;
  void on_train_end(const Logs&) override;

  std::string class_name() const override { return "EarlyStopping"; }
  Json state() const override;
  void load_state(const Json& state) override;

  int stopped_epoch() const { return stopped_epoch_; }  // -1 if it never stopped training
  int best_epoch() const { return best_epoch_; }
  double best() const { return best_; }

 private:
  Options o_;
  bool maximize_ = false;
  double best_ = 0.0;
  int best_epoch_ = -1, wait_ = 0, stopped_epoch_ = -1;
  std::vector<Tensor> best_weights_;
};

// Saves the model while training, as keras.callbacks.ModelCheckpoint: at the end of each epoch,
// or every `save_freq` batches; with save_best_only, only when `monitor` improved. The path may
// hold {epoch} and {batch} (1-based) and logged values, with Python's format specs:
// "ckpt/{epoch:02d}-{val_loss:.4f}.safetensors". It writes a full checkpoint
// (Sequential::save_checkpoint, for an exact resume) unless save_weights_only (Sequential::save:
// the model alone), each file atomically, so a crash at any moment leaves the last one whole;
// every file records the logs it was saved with in __metadata__.logs. A non-finite loss is
// never saved. Missing directories are created.
//
//   ModelCheckpoint last({.filepath = "ckpt/last.safetensors", .save_freq = 100});
//   ModelCheckpoint best({.filepath = "ckpt/best.safetensors", .save_best_only = true});
//   model.fit(train, {.epochs = 10, .validation_split = 0.1, .callbacks = {&last, &best}});
class ModelCheckpoint : public Callback {
 public:
  // Keras' save_freq: "epoch", or a number of batches (counted across epochs).
  struct SaveFreq {
    SaveFreq(const char* epoch = "epoch");  // NOLINT: implicit by design; ValueError unless "epoch"
    SaveFreq(int batches);                  // NOLINT; ValueError unless >= 1
    SaveFreq(int64_t batches);              // NOLINT
    int64_t batches = 0;                    // 0: at the end of each epoch
  };
  struct Options {
    std::string filepath{};
    std::string monitor = "val_loss";
    int verbose = 0;  // 1: a line per save (and per skipped save with save_best_only)
    bool save_best_only = false;
    bool save_weights_only = false;
    std::string mode = "auto";  // "min", "max", or "auto": max for accuracy-like names
    SaveFreq save_freq = "epoch";
    std::optional<double> initial_value_threshold{};  // the best value to beat at the start
    std::map<std::string, std::string> metadata{};    // more __metadata__ entries for each file
  };
  explicit ModelCheckpoint(Options o);
  void on_train_begin(const TrainInfo& info) override;
  void on_epoch_begin(int epoch) override { epoch_ = epoch; }
  void on_batch_end(int64_t step, const Logs& logs) override;
  void on_epoch_end(int epoch, const Logs& logs) override;

  double best() const { return best_; }  // the best monitored value so far (save_best_only)
  const std::string& last_saved() const { return last_saved_; }  // empty before the first save

 private:
  void save(int64_t batch, const Logs& logs);
  Options o_;
  bool maximize_ = false;
  double best_ = 0.0;
  TrainInfo info_;
  int epoch_ = 0;
  int64_t since_save_ = 0;
  bool warned_ = false;
  std::string last_saved_;
  std::set<std::string> cleaned_;  // paths whose stale temporary files are already removed
};

// A ModelCheckpoint filepath filled in for `epoch` (0-based, written 1-based as Keras does), `batch`
// (the 1-based step in the epoch; at an epoch end, the epoch's steps) and the logs: "{epoch:02d}-{val_loss:.4f}" -> "03-0.4321".
// ValueError for a name that is none of these or a format spec other than [flags][width][.prec][d|f|e|g].
std::string format_checkpoint_path(const std::string& pattern, int epoch, int64_t batch, const Logs& logs);

// Stops training at the first batch whose loss is NaN or infinite, as
// keras.callbacks.TerminateOnNaN, and reports where ("epoch 2, step 17: the loss is nan; first
// non-finite values: layer 'boom' (Dense) output: ..."; see Sequential::divergence()).
class TerminateOnNaN : public Callback {
 public:
  explicit TerminateOnNaN(std::ostream* out = nullptr);  // where to report (default std::cerr)
  void on_epoch_begin(int epoch) override { epoch_ = epoch; }
  void on_batch_end(int64_t step, const Logs& logs) override;
  bool stopped() const { return !message_.empty(); }
  const std::string& message() const { return message_; }

 private:
  std::ostream* out_;
  int epoch_ = 0;
  std::string message_;
};

// Sets the learning rate at the start of each epoch to schedule(epoch, current rate), as
// keras.callbacks.LearningRateScheduler; the rate is logged as "learning_rate".
//   LearningRateScheduler lrs([](int epoch, double lr) { return epoch < 10 ? lr : lr * 0.9; });
class LearningRateScheduler : public Callback {
 public:
  explicit LearningRateScheduler(std::function<double(int epoch, double lr)> schedule, int verbose = 0);
  void on_train_begin(const TrainInfo&) override;
  void on_epoch_begin(int epoch) override;
  bool logs_learning_rate() const override { return true; }

 private:
  std::function<double(int, double)> schedule_;
  int verbose_;
};

// Multiplies the learning rate by `factor` when `monitor` has not improved for `patience`
// epochs, then waits `cooldown` epochs, never going below min_lr: keras.callbacks.ReduceLROnPlateau
// with its defaults. The rate is logged as "learning_rate". Its state is saved in checkpoints.
class ReduceLROnPlateau : public Callback {
 public:
  struct Options {
    std::string monitor = "val_loss";
    double factor = 0.1;
    int patience = 10;
    int verbose = 0;
    std::string mode = "auto";  // "min", "max", or "auto": max for accuracy-like names
    double min_delta = 1e-4;
    int cooldown = 0;
    double min_lr = 0.0;
  };
  ReduceLROnPlateau() : ReduceLROnPlateau(Options{}) {}
  explicit ReduceLROnPlateau(Options o);
  void on_train_begin(const TrainInfo&) override;
  void on_epoch_end(int epoch, const Logs& logs) override;
  bool logs_learning_rate() const override { return true; }
  std::string class_name() const override { return "ReduceLROnPlateau"; }
  Json state() const override;
  void load_state(const Json& state) override;
  double best() const { return best_; }

 private:
  Options o_;
  bool maximize_ = false;
  double best_ = 0.0;
  int wait_ = 0, cooldown_counter_ = 0;
};

// A callback from lambdas, as keras.callbacks.LambdaCallback.
class LambdaCallback : public Callback {
 public:
  std::function<void(const TrainInfo&)> train_begin;
  std::function<void(int)> epoch_begin;
  std::function<void(int64_t, const Logs&)> batch_end;
  std::function<void(int, const Logs&)> epoch_end;
  std::function<void(const Logs&)> train_end;

  void on_train_begin(const TrainInfo& i) override {
    if (train_begin) train_begin(i);
  }
  void on_epoch_begin(int e) override {
    if (epoch_begin) epoch_begin(e);
  }
  void on_batch_end(int64_t s, const Logs& l) override {
    if (batch_end) batch_end(s, l);
  }
  void on_epoch_end(int e, const Logs& l) override {
    if (epoch_end) epoch_end(e, l);
  }
  void on_train_end(const Logs& l) override {
    if (train_end) train_end(l);
  }
};

}  // namespace lamina
