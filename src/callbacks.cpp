// fit's callbacks: the progress bar, History, EarlyStopping; and Logs.
#include "lamina/callbacks.hpp"

#include <unistd.h>

#include <cmath>
#include <cstdio>
#include <iostream>

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

EarlyStopping::EarlyStopping(Options o) : o_(std::move(o)) {
  if (o_.mode != "auto" && o_.mode != "min" && o_.mode != "max")
    throw ValueError("EarlyStopping: mode '" + o_.mode + "' is not auto, min or max");
  const bool accuracy_like = o_.monitor.find("acc") != std::string::npos ||
                             o_.monitor.find("precision") != std::string::npos ||
                             o_.monitor.find("recall") != std::string::npos || o_.monitor.find("f1") != std::string::npos;
  maximize_ = o_.mode == "max" || (o_.mode == "auto" && accuracy_like);
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

}  // namespace lamina
