// What a trained classifier looked at, for the training report: the most confidently wrong test
// images with their saliency maps, and per-token integrated gradients of texts. The attribution
// itself is explain.hpp's; this file picks the samples, draws them and writes the captions.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <numeric>
#include <string>
#include <vector>

#include "lamina/explain.hpp"
#include "lamina/image.hpp"
#include "lamina/model.hpp"
#include "lamina/ops.hpp"
#include "lamina/report.hpp"
#include "lamina/text.hpp"

namespace lamina {
namespace {

// N = samples, K = classes, L = tokens per text.

struct Decision {
  int64_t index;      // the sample
  int64_t predicted;  // its top class
  double confidence;  // that class's probability
};

std::vector<Decision> decisions(const Tensor& probs) {
  const int64_t n = probs.dim(0), k = probs.dim(1);
  std::vector<Decision> out;
  const float* p = probs.data();
  for (int64_t i = 0; i < n; ++i, p += k) {
    const auto top = std::max_element(p, p + k) - p;
    out.push_back({i, top, static_cast<double>(p[top])});
  }
  return out;
}

std::string class_name(const std::vector<std::string>& names, int64_t c) {
  return c >= 0 && static_cast<size_t>(c) < names.size() ? names[static_cast<size_t>(c)] : std::to_string(c);
}

std::string caption(const std::vector<std::string>& names, int64_t truth, const Decision& d) {
  char conf[32];
  std::snprintf(conf, sizeof conf, "%.3f", d.confidence);
  return "true " + class_name(names, truth) + ", predicted " + class_name(names, d.predicted) + " (" + conf + ")";
}

// The `count` wrong decisions with the highest confidence, most confident first.
std::vector<Decision> most_confident(std::vector<Decision> all, const std::vector<int64_t>& truth, bool wrong,
                                     int64_t count) {
  std::erase_if(all, [&](const Decision& d) { return (d.predicted != truth[static_cast<size_t>(d.index)]) != wrong; });
  std::stable_sort(all.begin(), all.end(), [](const Decision& a, const Decision& b) { return a.confidence > b.confidence; });
  if (static_cast<int64_t>(all.size()) > count) all.resize(static_cast<size_t>(count));
  return all;
}

Tensor probabilities_of(Model& model, const Tensor& inputs) {
  const bool logits = model.compiled() && model.loss().from_logits();
  return class_probabilities(model.predict(inputs), logits);
}

void check_truth(const Tensor& inputs, const std::vector<int64_t>& truth, const char* what) {
  if (inputs.rank() < 1 || static_cast<int64_t>(truth.size()) != inputs.dim(0))
    throw ValueError(std::string(what) + ": " + std::to_string(truth.size()) + " true classes for inputs of shape " +
                     inputs.shape().str() + " (one per sample)");
}

// A grey (H, W) or (H, W, 1) image as RGB (H, W, 3); RGB stays.
Tensor as_rgb(const Tensor& image) {
  if (image.rank() == 3 && image.dim(2) == 3) return image;
  const Tensor grey = image.reshape(Shape{image.dim(0), image.dim(1), 1});
  return concat({grey, grey, grey}, -1);
}

}  // namespace

Tensor class_probabilities(const Tensor& outputs, bool from_logits) {
  if (outputs.rank() < 1 || outputs.dim(0) == 0) throw ShapeError("class_probabilities: no outputs, shape " + outputs.shape().str());
  const int64_t n = outputs.dim(0), width = outputs.numel() / n;
  const Tensor flat = outputs.detach().reshape(Shape{n, width});
  if (width == 1) {  // one unit: P(class 1)
    const Tensor p = from_logits ? sigmoid(flat.detach()) : flat;
    return concat({1.f - p, p}, 1).detach();
  }
  return from_logits ? softmax(flat, -1).detach() : flat.clone();
}

std::vector<ReportImage> wrong_predictions_gallery(Model& model, const Tensor& inputs, const std::vector<int64_t>& truth,
                                                   const WrongGalleryOptions& o) {
  check_truth(inputs, truth, "wrong_predictions_gallery");
  const Shape& im = o.image_shape;
  const int64_t per_sample = inputs.numel() / std::max<int64_t>(inputs.dim(0), 1);
  if (!(im.rank() == 2 || (im.rank() == 3 && (im[2] == 1 || im[2] == 3))) || im.numel() != per_sample)
    throw ShapeError("wrong_predictions_gallery: image_shape " + im.str() + " does not draw samples of shape " +
                     inputs.shape().str() + "; expected (H, W) or (H, W, 1 or 3) with " + std::to_string(per_sample) +
                     " values");
  const std::vector<Decision> wrong = most_confident(decisions(probabilities_of(model, inputs)), truth, true, o.count);
  if (wrong.empty()) return {};
  std::vector<int64_t> rows, target;
  for (const Decision& d : wrong) rows.push_back(d.index), target.push_back(d.predicted);
  const Tensor x = index_select(inputs.detach(), 0, rows).detach();
  // Saliency for the class the model chose; a single sigmoid unit has one unit to explain.
  explain::SaliencyOptions so;
  if (model.output_shape().numel() > 1) so.target = target;
  const Tensor maps = explain::saliency(model, x, so);
  // Images drawn in the data's own range (inputs scaled to [0, 1] by the CLI, or not).
  float low = *std::min_element(x.data(), x.data() + x.numel()), high = *std::max_element(x.data(), x.data() + x.numel());
  if (!(high > low)) high = low + 1.f;
  std::vector<ReportImage> out;
  for (size_t i = 0; i < wrong.size(); ++i) {
    const auto r = static_cast<int64_t>(i);
    const Tensor image = x.view(r * per_sample, im).clone();
    const Tensor map = maps.view(r * per_sample, im).clone();
    const Tensor heat = explain::overlay(image, map, {.low = low, .high = high});
    const Tensor plain = (as_rgb(image) - low) * (1.f / (high - low));
    const Tensor pair = image_grid(stack({plain, heat}, 0).detach(), 1, 2, /*pad=*/1, /*pad_value=*/1.f);
    out.push_back({encode_png(pair), caption(o.class_names, truth[static_cast<size_t>(wrong[i].index)], wrong[i])});
  }
  return out;
}

std::vector<ReportText> token_attributions(Model& model, const Tensor& inputs, const std::vector<int64_t>& truth,
                                           const std::vector<std::string>& class_names) {
  check_truth(inputs, truth, "token_attributions");
  const TextVectorization* tv = model.text_vectorization();
  if (!tv) throw ValueError("token_attributions: model '" + model.name() + "' has no text vectorizer");
  std::string embedding;
  for (const auto& layer : model.layers())
    if (layer->class_name() == "Embedding") {
      embedding = layer->name();
      break;
    }
  if (embedding.empty())
    throw ValueError("token_attributions: model '" + model.name() +
                     "' has no Embedding layer to attribute to (integrated gradients on token indices mean nothing)");
  if (inputs.rank() != 2) throw ShapeError("token_attributions: expected (N, L) token indices, got " + inputs.shape().str());
  // A few texts: the most confidently wrong, then the most confidently right.
  const std::vector<Decision> all = decisions(probabilities_of(model, inputs));
  std::vector<Decision> picked = most_confident(all, truth, true, 4);
  for (const Decision& d : most_confident(all, truth, false, 8 - static_cast<int64_t>(picked.size()))) picked.push_back(d);
  if (picked.empty()) return {};
  std::vector<int64_t> rows, target;
  for (const Decision& d : picked) rows.push_back(d.index), target.push_back(d.predicted);
  const Tensor x = index_select(inputs.detach(), 0, rows).detach();
  const bool single_unit = model.output_shape().numel() == 1;
  explain::IntegratedGradientsOptions io;
  io.layer = embedding;
  if (!single_unit) io.target = target;
  const Tensor scores = explain::token_scores(explain::integrated_gradients(model, x, io).attributions);
  const std::vector<std::string>& vocab = tv->get_vocabulary();
  const int64_t len = x.dim(1);
  std::vector<ReportText> out;
  for (size_t i = 0; i < picked.size(); ++i) {
    // One sigmoid unit explains class 1; for a predicted 0 the evidence for it is the opposite sign.
    const double sign = single_unit && picked[i].predicted == 0 ? -1.0 : 1.0;
    ReportText t;
    for (int64_t j = 0; j < len; ++j) {
      const auto id = static_cast<int64_t>(std::lround(x.at({static_cast<int64_t>(i), j})));
      if (id == 0) continue;  // padding
      t.tokens.push_back(id > 0 && id < static_cast<int64_t>(vocab.size()) ? vocab[static_cast<size_t>(id)] : "[UNK]");
      t.scores.push_back(sign * static_cast<double>(scores.at({static_cast<int64_t>(i), j})));
    }
    t.caption = caption(class_names, truth[static_cast<size_t>(picked[i].index)], picked[i]);
    out.push_back(std::move(t));
  }
  return out;
}

}  // namespace lamina
