// Checks around training: targets that cannot suit the loss (before any step), and the
// diagnosis of a non-finite loss (which layer's weights, output or gradient went NaN/Inf first).
#include <cmath>
#include <cstdio>

#include "lamina/model.hpp"

namespace lamina {

namespace {

// Drops trailing 1s, as the losses do: targets () fit outputs (1).
Shape squeezed(const Shape& s) {
  std::vector<int64_t> d = s.dims();
  while (!d.empty() && d.back() == 1) d.pop_back();
  return Shape(d);
}

std::string value_text(float v) {
  if (std::isnan(v)) return "nan";  // printf may write "-nan"
  char buf[32];
  std::snprintf(buf, sizeof buf, "%g", static_cast<double>(v));
  return buf;
}

// Flat index i of shape s as a multi-index: "(0, 3)".
std::string index_text(const Shape& s, int64_t i) {
  std::vector<int64_t> idx(static_cast<size_t>(s.rank()));
  for (int64_t d = s.rank() - 1; d >= 0; --d) {
    idx[static_cast<size_t>(d)] = i % std::max<int64_t>(s[d], 1);
    i /= std::max<int64_t>(s[d], 1);
  }
  return Shape(idx).str();
}

// "24 of 32 values are not finite (first: inf at (0, 3))"; empty when all are finite.
std::string non_finite(const Tensor& t) {
  if (!t.defined()) return "";
  const float* v = t.data();
  int64_t bad = 0, first = -1;
  for (int64_t i = 0; i < t.numel(); ++i)
    if (!std::isfinite(v[i])) {
      if (first < 0) first = i;
      ++bad;
    }
  if (bad == 0) return "";
  return std::to_string(bad) + " of " + std::to_string(t.numel()) + " values are not finite (first: " +
         value_text(v[first]) + " at " + index_text(t.shape(), first) + ")";
}

std::string layer_text(const Layer& l) { return "layer '" + l.name() + "' (" + l.class_name() + ")"; }

}  // namespace

void Sequential::check_targets(const data::Dataset& data, const std::string& source,
                               const std::function<std::string(int64_t)>& position) const {
  const Loss& l = loss();
  const Shape out = output_shape();
  const Shape& target = data.target_shape();
  const std::string last = layers_.back()->name();
  const std::string loss_name = l.name();
  auto at = [&](int64_t i) { return source + ": " + (position ? position(i) : "sample " + std::to_string(i)); };

  // Shapes first: one message for the whole set.
  const bool sparse = l.kind() == Loss::sparse_categorical_crossentropy;
  Shape want = out;
  bool fits = squeezed(target) == squeezed(out);
  if (sparse) {
    want = Shape(std::vector<int64_t>(out.begin(), out.end() - (out.rank() > 0 ? 1 : 0)));
    fits = out.rank() > 0 && target == want;
  } else if (l.kind() == Loss::categorical_crossentropy) {
    fits = target == out;
  }
  if (!fits) {
    std::string hint;
    if (!sparse && target.rank() == 0 && out.numel() > 1)
      hint = "\n  hint: for integer class labels use sparse_categorical_crossentropy, or give " +
             std::to_string(out.numel()) + " target values per sample";
    throw ShapeError(source + ": targets have shape " + target.str() + " per sample, but " + loss_name +
                     " on the output " + out.str() + " of layer '" + last + "' expects " +
                     (sparse ? "integer class labels of shape " : "targets of shape ") + want.str() + hint);
  }

  const int64_t per_sample = std::max<int64_t>(target.numel(), 1);
  const int64_t classes = sparse ? out[-1] : 0;
  const Tensor y = data.all_y();
  const float* v = y.data();
  for (int64_t k = 0; k < y.numel(); ++k) {
    const float t = v[k];
    const int64_t sample = k / per_sample;
    if (!std::isfinite(t)) throw ValueError(at(sample) + ": target " + value_text(t) + " is not a finite number");
    if (sparse && (t != std::floor(t) || t < 0 || t >= static_cast<float>(classes)))
      throw ValueError(at(sample) + ": label " + value_text(t) + " is not a class index for " + loss_name +
                       ": the model's output layer '" + last + "' has " + std::to_string(classes) +
                       " classes, so labels must be integers in [0, " + std::to_string(classes) + ")");
    if (l.kind() == Loss::binary_crossentropy && (t < 0 || t > 1))
      throw ValueError(at(sample) + ": target " + value_text(t) + " is outside [0, 1], which " + loss_name +
                       " needs (labels 0 or 1, or probabilities)");
    if (l.kind() == Loss::categorical_crossentropy && t < 0)
      throw ValueError(at(sample) + ": target " + value_text(t) + " is negative; " + loss_name +
                       " needs one-hot or probability targets");
  }
}

std::string Sequential::diagnose_non_finite(const Tensor& x, const Tensor& y) {
  const Loss& loss_fn = loss();  // throws if not compiled
  if (auto bad = non_finite(x); !bad.empty()) return "the input batch: " + bad;
  // Forward, one layer at a time; each layer's input is a fresh leaf so that its gradient can be
  // read on the way back.
  std::vector<Tensor> inputs, outputs;
  Tensor h = x;
  for (const auto& l : layers_) {
    for (const auto& w : l->weights())
      if (auto bad = non_finite(w.value); !bad.empty())
        return layer_text(*l) + " weight '" + w.name + "': " + bad + " (from an earlier update)";
    Tensor in = h.detach();
    in.requires_grad_();
    Tensor out = l->call(in, /*training=*/true);
    if (auto bad = non_finite(out); !bad.empty()) return layer_text(*l) + " output: " + bad;
    inputs.push_back(in);
    outputs.push_back(out);
    h = out;
  }
  Tensor value = loss_fn(y, h);
  if (auto bad = non_finite(value); !bad.empty())
    return "the loss " + loss_fn.name() + " on the finite output of " + layer_text(*layers_.back()) + ": " + bad;
  // Backward, from the last layer to the first.
  for (Tensor p : trainable_weights()) p.zero_grad(/*set_to_none=*/false);
  value.backward();
  for (size_t i = layers_.size(); i-- > 0;) {
    const Layer& l = *layers_[i];
    for (const auto& w : l.weights())
      if (w.trainable)
        if (auto bad = non_finite(w.value.grad()); !bad.empty())
          return layer_text(l) + " gradient of weight '" + w.name + "': " + bad;
    const Tensor g = inputs[i].grad();
    if (auto bad = non_finite(g); !bad.empty()) return layer_text(l) + " gradient of its input: " + bad;
    if (i > 0 && g.defined()) outputs[i - 1].backward(g);
  }
  return "";
}

}  // namespace lamina
