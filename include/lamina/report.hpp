// The training report as one self-contained web page: loss and metric curves (train and
// validation on shared axes, TensorBoard's smoothing as an option), the learning rate, epoch
// times, the confusion matrix as a heat map, per-class precision / recall / F1, the model summary
// and hyperparameters, and for classifiers of images or texts what the model looked at. Inline SVG
// and CSS only: no JavaScript, nothing loaded from outside (a Content-Security-Policy meta tag
// says so to the browser). Not a plotting library: one page layout, from one JSON.
//
//   Json report = read_report_json("report.json");                 // what `lamina train --report` wrote
//   io::write_file_atomic("report.html", training_report_html(report, {.smoothing = 0.6}));
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "lamina/json.hpp"
#include "lamina/tensor.hpp"

namespace lamina {

class Model;

// An image for the gallery of wrong predictions: PNG bytes (encode_png) and a caption
// ("true 4, predicted 9 (0.97)").
struct ReportImage {
  std::string png;
  std::string caption;
};

// One text's tokens with an attribution score each (token_scores of integrated gradients at the
// Embedding), coloured red (for the explained class) to blue (against it).
struct ReportText {
  std::vector<std::string> tokens;
  std::vector<double> scores;
  std::string caption;
};

struct HtmlReportOptions {
  // TensorBoard's debiased exponential moving average of the curves, in [0, 1): 0 draws the raw
  // values only; above 0 the smoothed curve is drawn solid and the raw one faint.
  double smoothing = 0.0;
  std::string title = "Lamina training report";
  // Names of the classes, index by index; empty: the report's "class_names", else 0, 1, 2, ...
  std::vector<std::string> class_names{};
  std::vector<ReportImage> wrong{};  // the gallery of confidently wrong test images
  std::vector<ReportText> texts{};   // texts with token attributions
};

// The report JSON (DESIGN.md's report, as `lamina train --report` writes it) as one HTML page.
// Keys it reads, each section shown only when its data is there:
//   history {"loss": [...], "val_loss": [...], "accuracy": [...], "learning_rate": [...], ...},
//   epoch_seconds [...], initial_epoch, epochs, test {...}, confusion_matrix [[counts]] (rows:
//   true classes), class_names [...], summary "text", compile {"optimizer", "loss", "metrics"},
//   batch_size, validation_split, seed, threads, peak_rss_mb, params, spec, preprocessing, and
//   in_progress (true while training runs: the page refreshes itself every 5 s and says
//   "training: epoch k of n").
// Page structure that tests rely on: each history key is one <path class="series"
// data-series="KEY"> (its smoothed copy class="series-smoothed") in <svg class="chart"
// data-chart="METRIC"> (val_X beside X; learning_rate alone), with <text class="axis-label"> for
// both axes; epoch times are bars, <rect class="bar">, in <svg class="bars" data-chart="epoch_seconds">
// (not a "chart": every path.series in a chart is a history key); <svg class="confusion"> with one
// <rect class="cell" data-true="i" data-pred="j"> per class pair; <table class="per-class">,
// <table class="hyperparams">, <pre class="summary">, <figure class="wrong"> with an <img>,
// <span class="token" data-score="x">.
// ValueError for a JSON that is not a report (not an object, or none of history, test and
// confusion_matrix), a history entry that is not an array of numbers, a confusion matrix that is
// not square, or smoothing outside [0, 1).
std::string training_report_html(const Json& report, const HtmlReportOptions& options = {});

// TensorBoard's smoothing: last = last * weight + (1 - weight) * v, debiased by dividing by
// 1 - weight^k after k finite values (last starts at 0). Non-finite values pass through and do
// not count. ValueError for weight outside [0, 1).
std::vector<double> ema_smooth(const std::vector<double>& values, double weight);

// RFC 4648 base64 with padding, for data: URLs.
std::string base64_encode(std::string_view bytes);

// Text made safe for HTML content and attribute values: & < > " ' escaped.
std::string html_escape(std::string_view text);

// The report JSON in `path`: IoError naming the path for a missing or unreadable file or invalid
// JSON, ValueError naming it for JSON that is not a report (see training_report_html).
Json read_report_json(const std::string& path);

// --- what the model looked at ---

// The most confidently wrong predictions of an image classifier, each as its input image beside
// the saliency overlay (explain::saliency, explain::overlay) in one PNG, captioned with the true
// class, the predicted class and its probability. inputs: (N, ...) as the model takes them;
// truth: N class indices; image_shape: how one sample is drawn, (H, W) or (H, W, C) with C 1 or 3
// and the sample's number of values. The `count` highest predicted probabilities among the wrong
// predictions, most confident first; empty when every prediction is right.
struct WrongGalleryOptions {
  int64_t count = 16;
  Shape image_shape{};
  std::vector<std::string> class_names{};  // for captions; empty: the indices
};
std::vector<ReportImage> wrong_predictions_gallery(Model& model, const Tensor& inputs,
                                                   const std::vector<int64_t>& truth,
                                                   const WrongGalleryOptions& options);

// Per-token integrated gradients of a text classifier (a model with a text_vectorization() and an
// Embedding layer), at the Embedding's output, for the predicted class. inputs: (N, L) token
// indices; each result lists the sample's tokens (padding left out) with their scores. ValueError
// when the model has no Embedding layer or no text vectorizer.
std::vector<ReportText> token_attributions(Model& model, const Tensor& inputs, const std::vector<int64_t>& truth,
                                           const std::vector<std::string>& class_names = {});

// The probabilities a classifier's outputs stand for, (N, K) with K >= 2: softmax of logits,
// [1 - p, p] for one sigmoid unit; from_logits as the model's loss says.
Tensor class_probabilities(const Tensor& outputs, bool from_logits);

}  // namespace lamina
