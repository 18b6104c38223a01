// fit's callbacks: the progress bar, History, EarlyStopping, ModelCheckpoint, TerminateOnNaN;
// and Logs.
#include "lamina/callbacks.hpp"

#include <unistd.h>

#include <charconv>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <iostream>

#include "lamina/io.hpp"
#include "lamina/model.hpp"

namespace lamina {

// --- Logs ----------------------------------------------------------------------------------

void Logs::set(const std::string& key, double value) {
  for (auto& [k, v] : values)
    if (k == key) {
      v = value;
      return;
    }
  values.emplace_back(key, value);
}

std::optional<double> Logs::get(const std::string& key) const {
  for (const auto& [k, v] : values)
    if (k == key) return v;
  return std::nullopt;
}

double Logs::at(const std::string& key) const {
  if (auto v = get(key)) return *v;
  std::string keys;
  for (const auto& [k, v] : values) keys += (keys.empty() ? "" : ", ") + k;
  throw ValueError("no '" + key + "' in the logs (there are: " + keys + ")");
}

// --- ProgressBar -----------------------------------------------------------------------------------

namespace {

using Clock = std::chrono::steady_clock;

double seconds_since(Clock::time_point t) { return std::chrono::duration<double>(Clock::now() - t).count(); }

// Keras' compact durations: "3s", "1m 12s", "12ms/step", "85us/step".
std::string duration(double s) {
  char buf[32];
  if (s >= 3600) std::snprintf(buf, sizeof buf, "%dh %02dm", static_cast<int>(s / 3600), static_cast<int>(s / 60) % 60);
  else if (s >= 60) std::snprintf(buf, sizeof buf, "%dm %ds", static_cast<int>(s / 60), static_cast<int>(s) % 60);
  else std::snprintf(buf, sizeof buf, "%ds", static_cast<int>(std::lround(s)));
  return buf;
}

std::string per_step(double s) {
  char buf[32];
  if (s >= 1) std::snprintf(buf, sizeof buf, "%.0fs/step", s);
  else if (s >= 1e-3) std::snprintf(buf, sizeof buf, "%.0fms/step", s * 1e3);
  else std::snprintf(buf, sizeof buf, "%.0fus/step", s * 1e6);
  return buf;
}

std::string format_logs(const Logs& logs) {
  std::string s;
  char buf[64];
  for (const auto& [k, v] : logs.values) {
    std::snprintf(buf, sizeof buf, " - %s: %.4f", k.c_str(), v);
    s += buf;
  }
  return s;
}

}  // namespace

ProgressBar::ProgressBar(int verbose, std::ostream* out)
    : out_(out ? *out : std::cout), live_(verbose == 1 && !out && isatty(STDOUT_FILENO)) {}

void ProgressBar::on_train_begin(const TrainInfo& info) { info_ = info; }

void ProgressBar::on_epoch_begin(int epoch) {
  start_ = last_draw_ = Clock::now();
  if (live_) out_ << "Epoch " << epoch + 1 << "/" << info_.epochs << "\n" << std::flush;
}

void ProgressBar::on_batch_end(int64_t step, const Logs& logs) {
  if (!live_ || step == info_.steps_per_epoch) return;  // the last step is drawn by on_epoch_end
  if (std::chrono::duration<double>(Clock::now() - last_draw_).count() < 0.1) return;
  last_draw_ = Clock::now();
  draw(step, logs, false);
}

void ProgressBar::on_epoch_end(int epoch, const Logs& logs) {
  if (live_) {
    draw(info_.steps_per_epoch, logs, true);
    return;
  }
  const double elapsed = seconds_since(start_);
  const int64_t steps = info_.steps_per_epoch;
  out_ << "Epoch " << epoch + 1 << "/" << info_.epochs << " - " << steps << "/" << steps << " - "
       << duration(elapsed) << " " << per_step(elapsed / static_cast<double>(std::max<int64_t>(steps, 1)))
       << format_logs(logs) << "\n"
       << std::flush;
}

void ProgressBar::draw(int64_t step, const Logs& logs, bool final) {
  constexpr int kWidth = 20;
  const int64_t steps = std::max<int64_t>(info_.steps_per_epoch, 1);
  const double elapsed = seconds_since(start_);
  const double each = elapsed / static_cast<double>(std::max<int64_t>(step, 1));
  const int filled = static_cast<int>(kWidth * step / steps);
  const int digits = static_cast<int>(std::to_string(steps).size());
  char count[48];
  std::snprintf(count, sizeof count, "%*lld/%lld ", digits, static_cast<long long>(step), static_cast<long long>(steps));
  std::string bar;
  for (int i = 0; i < kWidth; ++i) {
    if (i == filled) bar += "\033[2m";  // the rest of the bar dimmed, as Keras
    bar += "\u2501";
  }
  if (filled < kWidth) bar += "\033[0m";
  const std::string time = final ? duration(elapsed) : duration(each * static_cast<double>(steps - step));
  out_ << "\r\033[K" << count << bar << " " << time << " " << per_step(each) << format_logs(logs);
  if (final) out_ << "\n";
  out_ << std::flush;
}

// --- History -----------------------------------------------------------------------------------------

void History::on_train_begin(const TrainInfo&) {
  history.clear();
  epoch_seconds.clear();
  epochs.clear();
}

void History::on_epoch_begin(int) { epoch_start_ = Clock::now(); }

void History::on_epoch_end(int epoch, const Logs& logs) {
  epochs.push_back(epoch);
  epoch_seconds.push_back(seconds_since(epoch_start_));
  for (const auto& [k, v] : logs.values) history[k].push_back(v);
}

// --- TerminateOnNaN ---------------------------------------------------------------------------------------

TerminateOnNaN::TerminateOnNaN(std::ostream* out) : out_(out ? out : &std::cerr) {}

void TerminateOnNaN::on_batch_end(int64_t step, const Logs& logs) {
  const auto loss = logs.get("loss");
  if (!loss || std::isfinite(*loss) || !message_.empty()) return;
  message_ = "epoch " + std::to_string(epoch_ + 1) + ", step " + std::to_string(step) + ": the loss is " +
             (std::isnan(*loss) ? "nan" : "inf");
  if (model && !model->divergence().empty()) message_ += "; first non-finite values: " + model->divergence();
  message_ += "; terminating training";
  *out_ << "\nTerminateOnNaN: " << message_ << "\n" << std::flush;
  if (model) model->stop_training = true;
}

// --- EarlyStopping -------------------------------------------------------------------------------------

namespace {

// Whether a larger `monitor` is better: mode "max", or "auto" and an accuracy-like name.
bool maximizes(const std::string& monitor, const std::string& mode, const std::string& who) {
  if (mode != "auto" && mode != "min" && mode != "max")
    throw ValueError(who + ": mode '" + mode + "' is not auto, min or max");
  const bool accuracy_like = monitor.find("acc") != std::string::npos ||
                             monitor.find("precision") != std::string::npos ||
                             monitor.find("recall") != std::string::npos || monitor.find("f1") != std::string::npos;
  return mode == "max" || (mode == "auto" && accuracy_like);
}

}  // namespace

EarlyStopping::EarlyStopping(Options o) : o_(std::move(o)) {
  maximize_ = maximizes(o_.monitor, o_.mode, "EarlyStopping");
}

void EarlyStopping::on_train_begin(const TrainInfo&) {
  best_ = maximize_ ? -INFINITY : INFINITY;
  best_epoch_ = -1;
  wait_ = 0;
  stopped_epoch_ = -1;
  best_weights_.clear();
}

void EarlyStopping::on_epoch_end(int epoch, const Logs& logs) {
  if (epoch < o_.start_from_epoch) return;
  const double value = logs.at(o_.monitor);
  const bool improved = maximize_ ? value - o_.min_delta > best_ : value + o_.min_delta < best_;
  if (improved || best_epoch_ < 0) {
    best_ = value;
    best_epoch_ = epoch;
    wait_ = 0;
    if (o_.restore_best_weights && model) {
      best_weights_.clear();
      for (const auto& [name, w] : model->named_weights()) best_weights_.push_back(w.clone());
    }
    return;
  }
  if (++wait_ >= o_.patience) {  // Keras: stop after `patience` epochs without improvement
    stopped_epoch_ = epoch;
    if (model) model->stop_training = true;
  }
}

void EarlyStopping::on_train_end(const Logs&) {
  // As Keras, the best weights come back only when this callback stopped the training.
  if (!o_.restore_best_weights || !model || best_weights_.empty() || stopped_epoch_ < 0) return;
  auto weights = model->named_weights();
  for (size_t i = 0; i < weights.size() && i < best_weights_.size(); ++i) {
    Tensor w = weights[i].second;
    std::copy(best_weights_[i].data(), best_weights_[i].data() + w.numel(), w.data());
  }
}

Json EarlyStopping::state() const {
  return {{"best", best_}, {"best_epoch", best_epoch_}, {"wait", wait_}};
}

void EarlyStopping::load_state(const Json& j) {
  best_ = j.at("best").get<double>();
  best_epoch_ = j.at("best_epoch").get<int>();
  wait_ = j.at("wait").get<int>();
}

// --- learning-rate callbacks --------------------------------------------------------------------------

LearningRateScheduler::LearningRateScheduler(std::function<double(int, double)> schedule, int verbose)
    : schedule_(std::move(schedule)), verbose_(verbose) {
  if (!schedule_) throw ValueError("LearningRateScheduler: the schedule function is empty");
}

namespace {
Optimizer& settable_optimizer(Model* model, const char* who) {
  if (!model) throw ValueError(std::string(who) + ": not attached to a model (pass it to fit's callbacks)");
  Optimizer& opt = model->optimizer();
  if (opt.schedule)
    throw ValueError(std::string(who) + ": the optimizer's learning rate is a schedule (" + opt.schedule->class_name() +
                     "), which sets it at every step; use a number as its learning_rate");
  return opt;
}
}  // namespace

void LearningRateScheduler::on_train_begin(const TrainInfo&) { settable_optimizer(model, "LearningRateScheduler"); }

void LearningRateScheduler::on_epoch_begin(int epoch) {
  Optimizer& opt = settable_optimizer(model, "LearningRateScheduler");
  const double lr = schedule_(epoch, static_cast<double>(opt.learning_rate));
  if (!std::isfinite(lr) || lr < 0)
    throw ValueError("LearningRateScheduler: the schedule gave learning rate " + std::to_string(lr) + " for epoch " +
                     std::to_string(epoch + 1) + "; it must be finite and >= 0");
  opt.learning_rate = static_cast<float>(lr);
  if (verbose_ > 0)
    std::cout << "\nEpoch " << epoch + 1 << ": LearningRateScheduler setting learning rate to " << lr << ".\n";
}

ReduceLROnPlateau::ReduceLROnPlateau(Options o) : o_(std::move(o)) {
  if (!(o_.factor >= 0.0 && o_.factor < 1.0))
    throw ValueError("ReduceLROnPlateau: factor must be in [0, 1) (it multiplies the rate down), got " +
                     std::to_string(o_.factor));
  maximize_ = maximizes(o_.monitor, o_.mode, "ReduceLROnPlateau");
}

void ReduceLROnPlateau::on_train_begin(const TrainInfo&) {
  settable_optimizer(model, "ReduceLROnPlateau");
  best_ = maximize_ ? -INFINITY : INFINITY;
  wait_ = cooldown_counter_ = 0;
}

void ReduceLROnPlateau::on_epoch_end(int epoch, const Logs& logs) {
  // keras/src/callbacks/reduce_lr_on_plateau.py, step by step.
  const std::optional<double> current = logs.get(o_.monitor);
  if (!current) logs.at(o_.monitor);  // throws, naming the keys there are
  const bool in_cooldown = cooldown_counter_ > 0;
  if (in_cooldown) {
    --cooldown_counter_;
    wait_ = 0;
  }
  const bool improved = maximize_ ? *current > best_ + o_.min_delta : *current < best_ - o_.min_delta;
  if (improved) {
    best_ = *current;
    wait_ = 0;
  } else if (!in_cooldown && ++wait_ >= o_.patience) {
    Optimizer& opt = settable_optimizer(model, "ReduceLROnPlateau");
    const double old_lr = opt.learning_rate;
    if (old_lr > static_cast<double>(static_cast<float>(o_.min_lr))) {
      const double new_lr = std::max(old_lr * o_.factor, o_.min_lr);
      opt.learning_rate = static_cast<float>(new_lr);
      if (o_.verbose > 0)
        std::cout << "\nEpoch " << epoch + 1 << ": ReduceLROnPlateau reducing learning rate to " << new_lr << ".\n";
      cooldown_counter_ = o_.cooldown;
      wait_ = 0;
    }
  }
}

Json ReduceLROnPlateau::state() const {
  return {{"best", best_}, {"wait", wait_}, {"cooldown_counter", cooldown_counter_}};
}

void ReduceLROnPlateau::load_state(const Json& j) {
  best_ = j.at("best").get<double>();
  wait_ = j.at("wait").get<int>();
  cooldown_counter_ = j.at("cooldown_counter").get<int>();
}

// --- ModelCheckpoint ---------------------------------------------------------------------------------

namespace {

// One field of a filepath in Python's format mini-language, the part of it paths use.
std::string format_field(double value, bool integer, const std::string& spec, const std::string& field) {
  const size_t type_at = spec.find_first_not_of("0123456789.+- #");
  const char type = type_at == std::string::npos ? '\0' : spec[type_at];
  if (type_at != std::string::npos &&
      (type_at + 1 != spec.size() || std::string("dfeEgG").find(type) == std::string::npos))
    throw ValueError("ModelCheckpoint: format spec '" + spec + "' of {" + field +
                     "} is not supported (use [flags][width][.precision][d|f|e|g], e.g. 02d or .4f)");
  const std::string flags = spec.substr(0, type_at == std::string::npos ? spec.size() : type_at);
  char buf[128];
  if (type == 'd' || (type == '\0' && integer)) {
    if (!integer || flags.find('.') != std::string::npos)
      throw ValueError("ModelCheckpoint: {" + field + ":" + spec + "}: 'd' formats whole numbers (epoch, batch)");
    std::snprintf(buf, sizeof buf, ("%" + flags + "lld").c_str(), static_cast<long long>(value));
  } else if (type == '\0' && flags.empty()) {  // Python's repr: the shortest that reads back
    *std::to_chars(buf, buf + sizeof buf - 1, value).ptr = '\0';
  } else {
    std::snprintf(buf, sizeof buf, ("%" + flags + (type == '\0' ? 'g' : type)).c_str(), value);
  }
  return buf;
}

}  // namespace

std::string format_checkpoint_path(const std::string& pattern, int epoch, int64_t batch, const Logs& logs) {
  std::string out;
  for (size_t i = 0; i < pattern.size(); ++i) {
    const char c = pattern[i];
    if ((c == '{' || c == '}') && i + 1 < pattern.size() && pattern[i + 1] == c) {  // "{{" is "{"
      out += c;
      ++i;
      continue;
    }
    if (c != '{') {
      out += c;
      continue;
    }
    const size_t close = pattern.find('}', i);
    if (close == std::string::npos) throw ValueError("ModelCheckpoint: filepath '" + pattern + "' has an unclosed '{'");
    std::string field = pattern.substr(i + 1, close - i - 1), spec;
    if (const size_t colon = field.find(':'); colon != std::string::npos) {
      spec = field.substr(colon + 1);
      field.resize(colon);
    }
    if (field == "epoch") {
      out += format_field(epoch + 1, true, spec, field);
    } else if (field == "batch") {
      out += format_field(static_cast<double>(batch), true, spec, field);
    } else if (const auto v = logs.get(field)) {
      out += format_field(*v, false, spec, field);
    } else {
      std::string keys = "epoch, batch";
      for (const auto& [k, v] : logs.values) keys += ", " + k;
      throw ValueError("ModelCheckpoint: filepath '" + pattern + "' names {" + field +
                       "}, which is not one of: " + keys);
    }
    i = close;
  }
  return out;
}

ModelCheckpoint::SaveFreq::SaveFreq(const char* epoch) {
  if (epoch == nullptr || std::string(epoch) != "epoch")
    throw ValueError("ModelCheckpoint: save_freq must be \"epoch\" or a number of batches, got '" +
                     std::string(epoch ? epoch : "null") + "'");
}

ModelCheckpoint::SaveFreq::SaveFreq(int batches) : SaveFreq(static_cast<int64_t>(batches)) {}

ModelCheckpoint::SaveFreq::SaveFreq(int64_t batches) : batches(batches) {
  if (batches < 1) throw ValueError("ModelCheckpoint: save_freq must be >= 1 batches, got " + std::to_string(batches));
}

ModelCheckpoint::ModelCheckpoint(Options o) : o_(std::move(o)) {
  if (o_.filepath.empty()) throw ValueError("ModelCheckpoint: filepath is empty");
  maximize_ = maximizes(o_.monitor, o_.mode, "ModelCheckpoint");
}

void ModelCheckpoint::on_train_begin(const TrainInfo& info) {
  info_ = info;
  since_save_ = 0;
  best_ = o_.initial_value_threshold.value_or(maximize_ ? -INFINITY : INFINITY);
}

void ModelCheckpoint::on_batch_end(int64_t step, const Logs& logs) {
  if (o_.save_freq.batches == 0 || ++since_save_ < o_.save_freq.batches) return;
  since_save_ = 0;
  save(step, logs);
}

void ModelCheckpoint::on_epoch_end(int, const Logs& logs) {
  if (o_.save_freq.batches == 0) save(info_.steps_per_epoch, logs);
}

void ModelCheckpoint::save(int64_t batch, const Logs& logs) {
  if (!model) return;
  if (const auto loss = logs.get("loss"); loss && !std::isfinite(*loss)) {
    if (o_.verbose > 0) std::cout << "\nEpoch " << epoch_ + 1 << ": the loss is not finite; not saving\n" << std::flush;
    return;
  }
  const std::string path = format_checkpoint_path(o_.filepath, epoch_, batch, logs);
  char line[256];
  if (o_.save_best_only) {
    const auto value = logs.get(o_.monitor);
    if (!value) {
      if (!warned_)
        std::cerr << "ModelCheckpoint: can save the best model only with " << o_.monitor << " in the logs; skipping\n";
      warned_ = true;
      return;
    }
    const bool improved = maximize_ ? *value > best_ : *value < best_;
    if (o_.verbose > 0) {
      if (improved)
        std::snprintf(line, sizeof line, "%s improved from %.5f to %.5f, saving model to ", o_.monitor.c_str(), best_,
                      *value);
      else
        std::snprintf(line, sizeof line, "%s did not improve from %.5f", o_.monitor.c_str(), best_);
      std::cout << "\nEpoch " << epoch_ + 1 << ": " << line << (improved ? path : "") << "\n" << std::flush;
    }
    if (!improved) return;
    best_ = *value;
  } else if (o_.verbose > 0) {
    std::cout << "\nEpoch " << epoch_ + 1 << ": saving model to " << path << "\n" << std::flush;
  }
  if (const auto dir = std::filesystem::path(path).parent_path(); !dir.empty()) {
    std::error_code ec;
    std::filesystem::create_directories(dir, ec);
    if (ec) throw IoError("ModelCheckpoint: cannot create directory " + dir.string() + ": " + ec.message());
  }
  Json logged = {{"epoch", epoch_ + 1}, {"batch", batch}};
  for (const auto& [k, v] : logs.values) logged[k] = v;
  auto metadata = o_.metadata;
  metadata["logs"] = logged.dump();
  if (o_.save_weights_only) model->save(path, metadata);
  else model->save_checkpoint(path, metadata);
  last_saved_ = path;
  if (cleaned_.insert(path).second) io::remove_stale_temp_files(path);  // debris of killed runs
}

}  // namespace lamina
