// Sequential: layer bookkeeping, building, the forward pass, weights and summary().
#include <algorithm>
#include <cctype>
#include <cstdio>
#include <iostream>
#include <map>

#include "lamina/model.hpp"
#include "lamina/runtime.hpp"

namespace lamina {

namespace {

// Keras' to_snake_case, which names layers: a "_" before a capital that starts a lower-case run
// and between a lower-case letter and a capital, then lower case. "InputLayer" -> "input_layer",
// "MaxPooling2D" -> "max_pooling2d", "Conv2D" -> "conv2d".
std::string snake_case(const std::string& s) {
  auto is_upper = [&](size_t i) { return std::isupper(static_cast<unsigned char>(s[i])) != 0; };
  auto is_lower = [&](size_t i) { return std::islower(static_cast<unsigned char>(s[i])) != 0; };
  std::string out;
  for (size_t i = 0; i < s.size(); ++i) {
    const bool starts_word = is_upper(i) && i > 0 && i + 1 < s.size() && is_lower(i + 1);
    const bool after_lower = is_upper(i) && i > 0 && is_lower(i - 1);
    if ((starts_word || after_lower) && !out.empty() && out.back() != '_') out += '_';
    out += static_cast<char>(std::tolower(static_cast<unsigned char>(s[i])));
  }
  return out;
}

std::string none_shape(const Shape& s) {  // (None, 128)
  std::string out = "(None";
  for (int64_t d : s) out += ", " + std::to_string(d);
  return out + ")";
}

}  // namespace

Sequential::Sequential(std::initializer_list<AnyLayer> layers, std::string name) : name_(std::move(name)) {
  for (const AnyLayer& l : layers) add(l);
}

Sequential& Sequential::add(AnyLayer layer) {
  if (!layer.ptr) throw ValueError("Sequential.add: null layer");
  if (built()) throw ValueError("Sequential.add: the model '" + name_ + "' is already built; add layers before building");
  if (layer.ptr->name().empty()) {
    const std::string base = snake_case(layer.ptr->class_name());
    std::string name = base;
    for (int& i = next_suffix_[base]; layer_names_.contains(name);) name = base + "_" + std::to_string(++i);
    layer.ptr->set_name(name);
  }
  if (layer_names_.contains(layer.ptr->name()))
    throw ValueError("Sequential.add: a layer named '" + layer.ptr->name() + "' is already in the model");
  if (!layers_.empty() && layer.ptr->class_name() == "InputLayer")
    throw ValueError("Sequential.add: an InputLayer can only be the first layer");
  layer_names_.insert(layer.ptr->name());
  layers_.push_back(std::move(layer.ptr));
  return *this;
}

Layer& Sequential::layer(const std::string& name) const {
  for (const auto& l : layers_)
    if (l->name() == name) return *l;
  throw ValueError("model '" + name_ + "' has no layer named '" + name + "'");
}

std::optional<Shape> Sequential::input_shape() const {
  if (input_shape_) return input_shape_;
  if (!layers_.empty()) return layers_.front()->declared_input_shape();
  return std::nullopt;
}

void Sequential::build(const Shape& input_shape) {
  if (layers_.empty()) throw ValueError("Sequential.build: the model '" + name_ + "' has no layers");
  if (auto declared = layers_.front()->declared_input_shape(); declared && *declared != input_shape)
    throw ShapeError("model '" + name_ + "' was declared with input shape " + declared->str() +
                     " but is built for " + input_shape.str());
  if (memory_limit() > 0) {  // before any weight exists: a 10^12-weight Dense fails here, not in malloc
    MemoryEstimate weights = estimate_for(input_shape, 0, /*training=*/true);
    weights.optimizer = 0;  // allocated at the first step, checked by fit
    check_memory(weights, "build");
  }
  Generator& gen = default_generator();
  Shape shape = input_shape;
  for (const auto& l : layers_) {
    l->build(shape, gen);
    shape = l->output_shape(shape);
  }
  input_shape_ = input_shape;
  pack_parameters();
}

// Moves every trainable weight into one flat buffer and gives each a gradient that is a view
// into a second one, 16-float aligned, so that the optimizer updates all parameters in one
// vectorized pass (and splits it evenly across threads). The gradients start lazily zeroed.
void Sequential::pack_parameters() {
  constexpr int64_t kAlign = 16;
  auto padded = [](int64_t n) { return (n + kAlign - 1) / kAlign * kAlign; };
  const std::vector<Tensor> params = trainable_weights();
  int64_t total = 0;
  for (const Tensor& p : params) total += padded(p.numel());
  if (total == 0) return;
  Tensor values = Tensor::zeros({total}), grads = Tensor::zeros({total});
  int64_t offset = 0;
  for (const Tensor& p : params) {
    std::copy(p.data(), p.data() + p.numel(), values.data() + offset);
    TensorImpl& impl = *p.impl();
    impl.storage = values.impl()->storage;
    impl.data = values.impl()->data + offset;
    impl.grad = grads.view(offset, p.shape());
    impl.grad_stale = true;
    offset += padded(p.numel());
  }
}

void Sequential::ensure_built(const Shape& sample_shape, const char* where) {
  if (!built()) {
    build(sample_shape);
    return;
  }
  if (*input_shape_ != sample_shape)
    throw ShapeError(std::string(where) + ": the data has samples of shape " + sample_shape.str() + ", model '" +
                     name_ + "' takes " + input_shape_->str());
}

Shape Sequential::output_shape() const {
  auto shape = input_shape();
  if (!shape) throw ValueError("model '" + name_ + "': the input shape is not known yet (build it or declare input_shape)");
  Shape s = *shape;
  for (const auto& l : layers_) s = l->output_shape(s);
  return s;
}

Tensor Sequential::call(const Tensor& x, bool training) {
  if (x.rank() < 1) throw ShapeError("model '" + name_ + "': input must have a batch axis, got " + x.shape().str());
  ensure_built(Shape(std::vector<int64_t>(x.shape().begin() + 1, x.shape().end())), "call");
  Tensor h = x;
  for (const auto& l : layers_) h = l->call(h, training);
  return h;
}

int64_t Sequential::count_params() const {
  int64_t n = 0;
  for (const auto& l : layers_) n += l->count_params();
  return n;
}

std::vector<Tensor> Sequential::trainable_weights() const {
  std::vector<Tensor> out;
  for (const auto& l : layers_)
    for (const auto& w : l->weights())
      if (w.trainable) out.push_back(w.value);
  return out;
}

std::vector<std::pair<std::string, Tensor>> Sequential::named_weights() const {
  std::vector<std::pair<std::string, Tensor>> out;
  for (const auto& l : layers_)
    for (const auto& w : l->weights()) out.emplace_back(l->name() + "/" + w.name, w.value);
  return out;
}

// --- summary -----------------------------------------------------------------------------------------

namespace {

std::string thousands(int64_t n) {  // 101770 -> "101,770"
  const std::string digits = std::to_string(n);
  std::string s;
  for (size_t i = 0; i < digits.size(); ++i) {
    if (i > 0 && (digits.size() - i) % 3 == 0) s += ',';
    s += digits[i];
  }
  return s;
}

std::string bytes_text(int64_t params) {
  const double b = static_cast<double>(params) * 4.0;
  char buf[32];
  if (b >= 1024.0 * 1024.0) std::snprintf(buf, sizeof buf, "%.2f MB", b / (1024.0 * 1024.0));
  else if (b >= 1024.0) std::snprintf(buf, sizeof buf, "%.2f KB", b / 1024.0);
  else std::snprintf(buf, sizeof buf, "%.2f B", b);
  return buf;
}

std::string repeat(const char* s, int n) {
  std::string out;
  for (int i = 0; i < n; ++i) out += s;
  return out;
}

std::string pad_right(std::string s, size_t w) { return s.size() < w ? s + std::string(w - s.size(), ' ') : s; }
std::string pad_left(std::string s, size_t w) { return s.size() < w ? std::string(w - s.size(), ' ') + s : s; }

// Splits a cell into lines of at most w characters at spaces, breaking longer words, as Keras'
// table does: "batch_normalization (BatchNormalization)" -> {"batch_normalization", "(BatchNormalization)"}.
std::vector<std::string> wrap(const std::string& text, size_t w) {
  std::vector<std::string> lines;
  std::string line;
  size_t i = 0;
  while (i < text.size()) {
    const size_t end = std::min(text.find(' ', i), text.size());
    std::string word = text.substr(i, end - i);
    i = end + 1;
    if (!line.empty() && line.size() + 1 + word.size() <= w) {
      line += ' ' + word;
      continue;
    }
    if (!line.empty()) lines.push_back(line);
    for (; word.size() > w; word.erase(0, w)) lines.push_back(word.substr(0, w));
    line = word;
  }
  if (!line.empty() || lines.empty()) lines.push_back(line);
  return lines;
}

}  // namespace

void Sequential::summary(std::ostream& os) {
  if (!built() && input_shape()) build(*input_shape());  // as Keras, once the input shape is known
  constexpr int w0 = 33, w1 = 24, w2 = 15;  // Keras' column widths
  auto row = [&](const std::string& a, const std::string& b, const std::string& c, const char* edge) {
    const auto la = wrap(a, w0 - 2), lb = wrap(b, w1 - 2), lc = wrap(c, w2 - 2);
    const size_t n = std::max({la.size(), lb.size(), lc.size()});
    auto at = [](const std::vector<std::string>& l, size_t i) { return i < l.size() ? l[i] : std::string(); };
    for (size_t i = 0; i < n; ++i)
      os << edge << " " << pad_right(at(la, i), w0 - 2) << " " << edge << " " << pad_right(at(lb, i), w1 - 2) << " "
         << edge << " " << pad_left(at(lc, i), w2 - 2) << " " << edge << "\n";
  };
  os << "Model: \"" << name_ << "\"\n";
  os << "\u250f" << repeat("\u2501", w0) << "\u2533" << repeat("\u2501", w1) << "\u2533" << repeat("\u2501", w2) << "\u2513\n";
  row("Layer (type)", "Output Shape", "Param #", "\u2503");
  os << "\u2521" << repeat("\u2501", w0) << "\u2547" << repeat("\u2501", w1) << "\u2547" << repeat("\u2501", w2) << "\u2529\n";
  std::optional<Shape> shape = input_shape();
  int64_t trainable = 0, frozen = 0;
  bool first = true;
  for (const auto& l : layers_) {
    if (l->class_name() == "InputLayer") continue;  // Keras lists the layers after the input
    std::string out_text = "?";
    if (shape) {
      shape = l->output_shape(*shape);
      out_text = none_shape(*shape);
    }
    for (const auto& w : l->weights()) (w.trainable ? trainable : frozen) += w.value.numel();
    if (!first)
      os << "\u251c" << repeat("\u2500", w0) << "\u253c" << repeat("\u2500", w1) << "\u253c" << repeat("\u2500", w2) << "\u2524\n";
    first = false;
    row(l->name() + " (" + l->class_name() + ")", out_text, l->built() ? thousands(l->count_params()) : "0 (unbuilt)",
        "\u2502");
  }
  os << "\u2514" << repeat("\u2500", w0) << "\u2534" << repeat("\u2500", w1) << "\u2534" << repeat("\u2500", w2) << "\u2518\n";
  os << " Total params: " << thousands(trainable + frozen) << " (" << bytes_text(trainable + frozen) << ")\n";
  os << " Trainable params: " << thousands(trainable) << " (" << bytes_text(trainable) << ")\n";
  os << " Non-trainable params: " << thousands(frozen) << " (" << bytes_text(frozen) << ")\n";
}

void Sequential::summary() { summary(std::cout); }

}  // namespace lamina
