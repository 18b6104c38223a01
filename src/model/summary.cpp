// Model::summary: Keras' table of layers, output shapes and parameter counts (and, for a
// Functional model, what each layer is connected to), then the totals.
#include <algorithm>
#include <cstdio>
#include <iostream>

#include "lamina/model.hpp"

namespace lamina {

namespace {

std::string none_shape(const Shape& s) {  // (None, 128)
  std::string out = "(None";
  for (int64_t d : s) out += ", " + std::to_string(d);
  return out + ")";
}


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

void Model::summary(std::ostream& os) {
  if (!built_ && input_shape()) build(*input_shape());  // as Keras, once the input shape is known
  // Keras' column widths: three columns for a Sequential, four (with "Connected to") for a graph.
  const bool graph = !sequential_;
  const std::vector<size_t> w = graph ? std::vector<size_t>{30, 24, 12, 30} : std::vector<size_t>{33, 24, 15};
  auto rule = [&](const char* left, const char* fill, const char* mid, const char* right) {
    os << left;
    for (size_t c = 0; c < w.size(); ++c) os << (c ? mid : "") << repeat(fill, static_cast<int>(w[c]));
    os << right << "\n";
  };
  auto row = [&](const std::vector<std::vector<std::string>>& cells, const char* edge) {
    size_t n = 0;
    for (const auto& c : cells) n = std::max(n, c.size());
    for (size_t i = 0; i < n; ++i) {
      for (size_t c = 0; c < w.size(); ++c) {
        const std::string text = i < cells[c].size() ? cells[c][i] : std::string();
        os << edge << " " << (c == 2 ? pad_left(text, w[c] - 2) : pad_right(text, w[c] - 2)) << " ";
      }
      os << edge << "\n";
    }
  };
  auto wrapped = [&](std::vector<std::string> texts) {
    std::vector<std::vector<std::string>> cells;
    for (size_t c = 0; c < texts.size(); ++c) cells.push_back(wrap(texts[c], w[c] - 2));
    return cells;
  };
  os << "Model: \"" << name_ << "\"\n";
  rule("\u250f", "\u2501", "\u2533", "\u2513");
  std::vector<std::string> head{"Layer (type)", "Output Shape", "Param #"};
  if (graph) head.push_back("Connected to");
  row(wrapped(head), "\u2503");
  rule("\u2521", "\u2501", "\u2547", "\u2529");
  int64_t trainable = 0, frozen = 0;
  for (const auto& l : layers_) {  // a frozen layer's weights count as non-trainable, as Keras
    const std::vector<bool> mask = l->trainable_mask();
    for (size_t i = 0; i < mask.size(); ++i) (mask[i] && trainable_ ? trainable : frozen) += l->weights()[i].value.numel();
  }
  bool first = true;
  auto separator = [&] {
    if (!first) rule("\u251c", "\u2500", "\u253c", "\u2524");
    first = false;
  };
  auto params = [](const Layer& l) { return l.built() ? thousands(l.count_params()) : std::string("0 (unbuilt)"); };
  if (!graph) {
    std::optional<Shape> shape = input_shape();
    for (const auto& l : layers_) {
      if (l->class_name() == "InputLayer") continue;  // Keras lists the layers after the input
      std::string out_text = "?";
      if (shape) {
        shape = l->output_shape(*shape);
        out_text = none_shape(*shape);
      }
      separator();
      row(wrapped({l->name() + " (" + l->class_name() + ")", out_text, params(*l)}), "\u2502");
    }
  } else {
    // One row per call, in graph order (an input first, a shared layer once per call); Keras'
    // "Connected to" names each input as layer[node][tensor].
    std::vector<std::string> source(shapes_.size());  // tensor id -> "dense[0][0]"
    std::map<const Layer*, int> calls;
    for (size_t i = 0; i < input_ids_.size(); ++i) {
      const Layer& l = *input_layers_[i];
      source[static_cast<size_t>(input_ids_[i])] = l.name() + "[0][0]";
      separator();
      row(wrapped({l.name() + " (" + l.class_name() + ")", none_shape(shapes_[static_cast<size_t>(input_ids_[i])]),
                   "0", "-"}),
          "\u2502");
    }
    for (const Node& n : nodes_) {
      const int call = calls[n.layer.get()]++;
      std::string shapes;  // several outputs: Keras' list of shapes
      for (int k = 0; k < n.output_count; ++k) {
        source[static_cast<size_t>(n.output + k)] = n.layer->name() + "[" + std::to_string(call) + "][" + std::to_string(k) + "]";
        shapes += (k == 0 ? "" : ", ") + none_shape(shapes_[static_cast<size_t>(n.output + k)]);
      }
      if (n.output_count > 1) shapes = "[" + shapes + "]";
      std::vector<std::vector<std::string>> cells =
          wrapped({n.layer->name() + " (" + n.layer->class_name() + ")", shapes, call == 0 ? params(*n.layer) : "0 (shared)"});
      std::vector<std::string> connected;
      for (int t : n.inputs)
        for (const std::string& line : wrap(source[static_cast<size_t>(t)], w[3] - 2)) connected.push_back(line);
      cells.push_back(connected);
      separator();
      row(cells, "\u2502");
    }
  }
  rule("\u2514", "\u2500", "\u2534", "\u2518");
  os << " Total params: " << thousands(trainable + frozen) << " (" << bytes_text(trainable + frozen) << ")\n";
  os << " Trainable params: " << thousands(trainable) << " (" << bytes_text(trainable) << ")\n";
  os << " Non-trainable params: " << thousands(frozen) << " (" << bytes_text(frozen) << ")\n";
}

void Model::summary() { summary(std::cout); }

}  // namespace lamina
