// Keras' initializer formulas (keras/src/initializers): the named ones are VarianceScaling with
// a fixed scale, mode and distribution; truncated normals are cut at two standard deviations.
#include "lamina/initializers.hpp"

#include <algorithm>
#include <cctype>
#include <cmath>
#include <vector>

namespace lamina {

namespace {

using Kind = Initializer::Kind;
using Mode = Initializer::Mode;
using Dist = Initializer::Distribution;

Initializer make(Kind kind, const char* name) {
  Initializer i;
  i.kind = kind;
  i.keras_name = name;
  return i;
}

Initializer named_scaling(float scale, Mode mode, Dist dist, const char* name) {
  Initializer i = Initializer::variance_scaling(scale, mode, dist);
  i.keras_name = name;
  return i;
}

// A normal sample redrawn until it falls within two standard deviations.
float truncated(Generator& gen) {
  for (;;) {
    const float v = gen.normal();
    if (std::fabs(v) <= 2.f) return v;
  }
}

// Keras writes CamelCase class names; its string aliases are snake_case.
std::string snake(const std::string& s) {
  std::string out;
  for (size_t i = 0; i < s.size(); ++i) {
    const char c = s[i];
    if (std::isupper(static_cast<unsigned char>(c))) {
      if (i > 0) out += '_';
      out += static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    } else {
      out += c;
    }
  }
  return out;
}

float get(const Json& cfg, const char* key, float fallback) {
  return cfg.contains(key) && cfg[key].is_number() ? cfg[key].get<float>() : fallback;
}

// A string option; ValueError when it is there but not a string.
std::string get_string(const Json& cfg, const char* key, const char* fallback, const std::string& where) {
  if (!cfg.contains(key) || cfg[key].is_null()) return fallback;
  if (!cfg[key].is_string()) throw ValueError(where + ": '" + key + "' must be a string, got " + cfg[key].dump());
  return cfg[key].get<std::string>();
}

// Keras' Orthogonal: a (rows, cols) normal sample (transposed when rows < cols), the Q of its QR
// decomposition with R's diagonal made positive, transposed back, times gain. Gram-Schmidt run
// twice per column (in double) gives that Q: its R has a positive diagonal by construction.
void fill_orthogonal(Tensor& t, float gain, Generator& gen) {
  if (t.rank() < 2) throw ValueError("initializer Orthogonal needs a tensor of rank 2 or more, got " + t.shape().str());
  const int64_t cols = t.dim(-1), rows = t.numel() / std::max<int64_t>(cols, 1);
  const int64_t m = std::max(rows, cols), n = std::min(rows, cols);  // the sample is (m, n), m >= n
  // The sample drawn row by row, kept column by column (a[c * m + r]): Gram-Schmidt walks columns,
  // and with rows contiguous an LSTM(256)'s 1024 x 256 took 0.9 s, most of load_onnx's time.
  std::vector<double> a(static_cast<size_t>(m * n));
  for (int64_t r = 0; r < m; ++r)
    for (int64_t c = 0; c < n; ++c) a[static_cast<size_t>(c * m + r)] = gen.normal();
  const auto at = [&](int64_t r, int64_t c) -> double& { return a[static_cast<size_t>(c * m + r)]; };
  for (int64_t j = 0; j < n; ++j) {
    double* cj = &at(0, j);
    for (int pass = 0; pass < 2; ++pass)
      for (int64_t k = 0; k < j; ++k) {
        const double* ck = &at(0, k);
        double dot = 0.0;
        for (int64_t r = 0; r < m; ++r) dot += ck[r] * cj[r];
        for (int64_t r = 0; r < m; ++r) cj[r] -= dot * ck[r];
      }
    double norm = 0.0;
    for (int64_t r = 0; r < m; ++r) norm += cj[r] * cj[r];
    norm = std::sqrt(norm);
    for (int64_t r = 0; r < m; ++r) cj[r] = norm > 0.0 ? cj[r] / norm : 0.0;
  }
  float* p = t.data();
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t c = 0; c < cols; ++c)
      p[r * cols + c] = static_cast<float>(gain * (rows >= cols ? at(r, c) : at(c, r)));
}

}  // namespace

Initializer Initializer::zeros() { return make(Kind::zeros, "Zeros"); }
Initializer Initializer::ones() { return make(Kind::ones, "Ones"); }
Initializer Initializer::constant(float value) {
  Initializer i = make(Kind::constant, "Constant");
  i.value = value;
  return i;
}
Initializer Initializer::random_normal(float mean, float stddev) {
  Initializer i = make(Kind::random_normal, "RandomNormal");
  i.mean = mean, i.stddev = stddev;
  return i;
}
Initializer Initializer::random_uniform(float minval, float maxval) {
  Initializer i = make(Kind::random_uniform, "RandomUniform");
  i.minval = minval, i.maxval = maxval;
  return i;
}
Initializer Initializer::truncated_normal(float mean, float stddev) {
  Initializer i = make(Kind::truncated_normal, "TruncatedNormal");
  i.mean = mean, i.stddev = stddev;
  return i;
}
Initializer Initializer::variance_scaling(float scale, Mode mode, Dist distribution) {
  Initializer i = make(Kind::variance_scaling, "VarianceScaling");
  i.scale = scale, i.mode = mode, i.distribution = distribution;
  return i;
}
Initializer Initializer::glorot_uniform() { return named_scaling(1.f, Mode::fan_avg, Dist::uniform, "GlorotUniform"); }
Initializer Initializer::glorot_normal() {
  return named_scaling(1.f, Mode::fan_avg, Dist::truncated_normal, "GlorotNormal");
}
Initializer Initializer::he_uniform() { return named_scaling(2.f, Mode::fan_in, Dist::uniform, "HeUniform"); }
Initializer Initializer::he_normal() { return named_scaling(2.f, Mode::fan_in, Dist::truncated_normal, "HeNormal"); }
Initializer Initializer::lecun_uniform() { return named_scaling(1.f, Mode::fan_in, Dist::uniform, "LecunUniform"); }
Initializer Initializer::orthogonal(float gain) {
  Initializer i = make(Kind::orthogonal, "Orthogonal");
  i.gain = gain;
  return i;
}
Initializer Initializer::lecun_normal() {
  return named_scaling(1.f, Mode::fan_in, Dist::truncated_normal, "LecunNormal");
}

void Initializer::fill(Tensor& t, Generator& gen) const {
  const int64_t n = t.numel();
  float* p = t.data();
  switch (kind) {
    case Kind::zeros: t.fill_(0.f); return;
    case Kind::ones: t.fill_(1.f); return;
    case Kind::constant: t.fill_(value); return;
    case Kind::random_normal:
      for (int64_t i = 0; i < n; ++i) p[i] = mean + stddev * gen.normal();
      return;
    case Kind::random_uniform:
      for (int64_t i = 0; i < n; ++i) p[i] = minval + (maxval - minval) * gen.uniform();
      return;
    case Kind::truncated_normal:
      for (int64_t i = 0; i < n; ++i) p[i] = mean + stddev * truncated(gen);
      return;
    case Kind::orthogonal: return fill_orthogonal(t, gain, gen);
    case Kind::variance_scaling: break;
  }
  // Keras' compute_fans: a vector has fan_in = fan_out = its size; a matrix (in, out); a conv
  // kernel (..., in, out) multiplies both by its receptive field (KH * KW for Conv2D).
  double fan_in = 1.0, fan_out = 1.0;
  if (t.rank() == 1) {
    fan_in = fan_out = static_cast<double>(t.dim(0));
  } else if (t.rank() >= 2) {
    double receptive = 1.0;
    for (int64_t a = 0; a + 2 < t.rank(); ++a) receptive *= static_cast<double>(t.dim(a));
    fan_in = static_cast<double>(t.dim(-2)) * receptive;
    fan_out = static_cast<double>(t.dim(-1)) * receptive;
  }
  const double fan = mode == Mode::fan_in ? fan_in : mode == Mode::fan_out ? fan_out : (fan_in + fan_out) / 2.0;
  const double variance = scale / std::max(1.0, fan);
  switch (distribution) {
    case Dist::uniform: {
      const auto limit = static_cast<float>(std::sqrt(3.0 * variance));
      for (int64_t i = 0; i < n; ++i) p[i] = limit * (2.f * gen.uniform() - 1.f);
      return;
    }
    case Dist::truncated_normal: {
      // 0.8796... is the stddev of a unit normal truncated to [-2, 2] (as Keras).
      const auto sd = static_cast<float>(std::sqrt(variance) / 0.87962566103423978);
      for (int64_t i = 0; i < n; ++i) p[i] = sd * truncated(gen);
      return;
    }
    case Dist::untruncated_normal: {
      const auto sd = static_cast<float>(std::sqrt(variance));
      for (int64_t i = 0; i < n; ++i) p[i] = sd * gen.normal();
      return;
    }
  }
}

Initializer Initializer::from_config(const Json& j) {
  const auto [name, cfg] = keras_object(j, "initializer");
  const std::string key = name.find('_') == std::string::npos ? snake(name) : name;
  // Keras' short aliases too: "uniform" is Keras 3's default for Embedding.
  if (key == "zeros" || key == "zero") return zeros();
  if (key == "ones" || key == "one") return ones();
  if (key == "constant") return constant(get(cfg, "value", 0.f));
  if (key == "random_normal" || key == "normal") return random_normal(get(cfg, "mean", 0.f), get(cfg, "stddev", 0.05f));
  if (key == "random_uniform" || key == "uniform") return random_uniform(get(cfg, "minval", -0.05f), get(cfg, "maxval", 0.05f));
  if (key == "truncated_normal") return truncated_normal(get(cfg, "mean", 0.f), get(cfg, "stddev", 0.05f));
  if (key == "glorot_uniform") return glorot_uniform();
  if (key == "glorot_normal") return glorot_normal();
  if (key == "he_uniform") return he_uniform();
  if (key == "he_normal") return he_normal();
  if (key == "lecun_uniform") return lecun_uniform();
  if (key == "lecun_normal") return lecun_normal();
  if (key == "orthogonal") return orthogonal(get(cfg, "gain", 1.f));
  if (key == "variance_scaling") {
    const std::string mode = get_string(cfg, "mode", "fan_in", "initializer VarianceScaling");
    const std::string dist = get_string(cfg, "distribution", "truncated_normal", "initializer VarianceScaling");
    Mode m = mode == "fan_in" ? Mode::fan_in : mode == "fan_out" ? Mode::fan_out : Mode::fan_avg;
    if (mode != "fan_in" && mode != "fan_out" && mode != "fan_avg")
      throw ValueError("initializer VarianceScaling: mode '" + mode + "' is not fan_in, fan_out or fan_avg");
    Dist d;
    if (dist == "uniform") d = Dist::uniform;
    else if (dist == "untruncated_normal") d = Dist::untruncated_normal;
    else if (dist == "truncated_normal" || dist == "normal") d = Dist::truncated_normal;  // Keras 2's "normal" is truncated
    else throw ValueError("initializer VarianceScaling: distribution '" + dist + "' is not known");
    return variance_scaling(get(cfg, "scale", 1.f), m, d);
  }
  throw ValueError("initializer '" + name +
                   "' is not known (known: zeros, ones, constant, random_normal, random_uniform, truncated_normal, "
                   "glorot_uniform, glorot_normal, he_uniform, he_normal, lecun_uniform, lecun_normal, "
                   "variance_scaling, orthogonal)");
}

Json Initializer::config() const {
  Json cfg = Json::object();
  switch (kind) {
    case Kind::zeros:
    case Kind::ones: break;
    case Kind::constant: cfg["value"] = value; break;
    case Kind::random_normal:
    case Kind::truncated_normal: cfg["mean"] = mean, cfg["stddev"] = stddev; break;
    case Kind::random_uniform: cfg["minval"] = minval, cfg["maxval"] = maxval; break;
    case Kind::orthogonal: cfg["gain"] = gain; break;
    case Kind::variance_scaling:
      if (keras_name != "VarianceScaling") break;
      cfg["scale"] = scale;
      cfg["mode"] = mode == Mode::fan_in ? "fan_in" : mode == Mode::fan_out ? "fan_out" : "fan_avg";
      cfg["distribution"] = distribution == Dist::uniform ? "uniform"
                            : distribution == Dist::untruncated_normal ? "untruncated_normal"
                                                                       : "truncated_normal";
      break;
  }
  cfg["seed"] = nullptr;
  return {{"class_name", keras_name}, {"config", cfg}};
}

}  // namespace lamina
