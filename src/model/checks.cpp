// Checks around training: targets that cannot suit the loss (before any step), and the
// diagnosis of a non-finite loss (which layer's weights, output or gradient went NaN/Inf first).
#include <cmath>
#include <cstdio>

#include "lamina/autograd.hpp"
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

void Model::check_targets(const data::Dataset& data, const std::string& source,
                          const std::function<std::string(int64_t)>& position) const {
  losses();  // throws if not compiled
  check_dataset(data, source.c_str());
  for (size_t o = 0; o < losses_.size(); ++o)
    check_output_targets(o, data.target_shapes().size() == 1 ? data.all_y() : data.all_y(o), data.target_shapes()[o],
                         source, position);
}

void Model::check_output_targets(size_t output, const Tensor& y, const Shape& target, const std::string& source,
                                 const std::function<std::string(int64_t)>& position) const {
  const Loss& l = losses_[output];
  const Shape out = output_shapes()[output];
  const std::string last = output_names()[output];
  const std::string loss_name = l.name();
  auto at = [&](int64_t i) { return source + ": " + (position ? position(i) : "sample " + std::to_string(i)); };

  // Shapes first: one message for the whole set.
  const bool sparse = l.kind() == Loss::sparse_categorical_crossentropy;
  Shape want = out;
  // A custom loss decides for itself what its targets look like (labels for a probability output).
  bool fits = l.kind() == Loss::custom || squeezed(target) == squeezed(out);
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

std::string Model::diagnose_non_finite(const std::vector<Tensor>& x, const std::vector<Tensor>& y) {
  losses();  // throws if not compiled
  for (const Tensor& t : x)
    if (auto bad = non_finite(t); !bad.empty()) return "the input batch: " + bad;
  // Forward, one call at a time; each call's inputs are fresh leaves so that their gradients
  // can be read on the way back.
  std::vector<Tensor> values(shapes_.size()), masks(shapes_.size());
  for (size_t i = 0; i < input_ids_.size(); ++i) values[static_cast<size_t>(input_ids_[i])] = x[i];
  std::vector<std::vector<Tensor>> leaves(nodes_.size());
  for (size_t k = 0; k < nodes_.size(); ++k) {
    const Node& n = nodes_[k];
    const Layer& l = *n.layer;
    for (const auto& w : l.weights())
      if (auto bad = non_finite(w.value); !bad.empty())
        return layer_text(l) + " weight '" + w.name + "': " + bad + " (from an earlier update)";
    std::vector<Tensor> in_masks;
    for (int t : n.inputs) {
      Tensor in = values[static_cast<size_t>(t)].detach();
      in.requires_grad_();
      leaves[k].push_back(in);
      in_masks.push_back(masks[static_cast<size_t>(t)]);
    }
    Outputs out = n.layer->call_all(leaves[k], in_masks, /*training=*/true);
    for (size_t o = 0; o < out.values.size() && o < static_cast<size_t>(n.output_count); ++o) {
      if (auto bad = non_finite(out.values[o]); !bad.empty()) return layer_text(l) + " output: " + bad;
      values[static_cast<size_t>(n.output) + o] = out.values[o];
      if (o < out.masks.size()) masks[static_cast<size_t>(n.output) + o] = out.masks[o];
    }
  }
  // The loss on detached copies of the outputs, so that every call's output gets its whole
  // gradient (from the loss and from the calls that read it) in one backward pass.
  std::vector<Tensor> pred;
  for (int t : output_ids_) {
    Tensor p = values[static_cast<size_t>(t)].detach();
    p.requires_grad_();
    pred.push_back(p);
  }
  Tensor value = compute_loss(data::Batch{.x = x, .y = y}, pred);
  if (auto bad = non_finite(value); !bad.empty()) {
    std::string outs;
    for (int t : output_ids_)
      for (const Node& n : nodes_)
        if (n.output == t) outs += (outs.empty() ? "" : ", ") + layer_text(*n.layer);
    return "the loss " + loss().name() + " on the finite output of " + outs + ": " + bad;
  }
  for (Tensor p : trainable_weights()) p.zero_grad(/*set_to_none=*/false);
  value.backward();
  std::vector<Tensor> grad_of(values.size());
  auto accumulate = [&](int t, const Tensor& g) {
    if (!g.defined()) return;
    NoGradGuard no_grad;
    Tensor& slot = grad_of[static_cast<size_t>(t)];
    slot = slot.defined() ? add(slot, g) : g.clone();
  };
  for (size_t o = 0; o < output_ids_.size(); ++o) accumulate(output_ids_[o], pred[o].grad());
  // Backward, one call at a time from the last.
  for (size_t k = nodes_.size(); k-- > 0;) {
    const Node& n = nodes_[k];
    const Layer& l = *n.layer;
    // Every output's gradient in one backward pass: the sum of <output, gradient> over them.
    Tensor seed;
    for (int o = n.output; o < n.output + n.output_count; ++o) {
      const Tensor& out = values[static_cast<size_t>(o)];
      const Tensor& g = grad_of[static_cast<size_t>(o)];
      if (!g.defined() || !out.requires_grad()) continue;
      Tensor term = sum(mul(out, g));
      seed = seed.defined() ? add(seed, term) : term;
    }
    if (seed.defined()) seed.backward();
    const std::vector<bool> mask = l.trainable_mask();
    for (size_t i = 0; i < mask.size(); ++i)
      if (mask[i])
        if (auto bad = non_finite(l.weights()[i].value.grad()); !bad.empty())
          return layer_text(l) + " gradient of weight '" + l.weights()[i].name + "': " + bad;
    for (size_t i = 0; i < n.inputs.size(); ++i) {
      const Tensor g = leaves[k][i].grad();
      if (auto bad = non_finite(g); !bad.empty()) return layer_text(l) + " gradient of its input: " + bad;
      accumulate(n.inputs[i], g);
    }
  }
  return "";
}

}  // namespace lamina
