// Attribution methods (explain.hpp). Every gradient method reduces to one primitive, `gradients`:
// the gradient of each row's target output with respect to the input rows (or to a layer's
// output, which a forward hook swaps for a leaf), computed in chunks of internal_batch_size rows.
// IntegratedGradients and NoiseTunnel only choose which rows to feed it and how to weigh the
// results; Occlusion and Grad-CAM need forward passes and one layer's gradient respectively.
#include "lamina/explain.hpp"

#include <algorithm>
#include <cmath>
#include <numbers>
#include <numeric>
#include <stdexcept>

#include "lamina/autograd.hpp"
#include "lamina/ops.hpp"
#include "lamina/random.hpp"
#include "ops/op_helpers.hpp"  // rows

namespace lamina::explain {
namespace {

constexpr int64_t kDefaultChunk = 256;

int64_t chunk_size(int64_t requested) { return requested > 0 ? requested : kDefaultChunk; }

// The model's first output as (rows, K): one row of output units per sample.
Tensor output_rows(const Tensor& y) {
  if (y.rank() < 1) throw ShapeError("explain: the model's output " + y.shape().str() + " has no batch axis");
  const int64_t n = y.dim(0);
  return y.reshape(Shape{n, n > 0 ? y.numel() / n : 0});
}

void check_inputs(const Model& model, const Tensor& inputs, const char* method) {
  if (model.num_inputs() != 1 || model.num_outputs() != 1)
    throw ValueError(std::string(method) + ": model '" + model.name() + "' has " + std::to_string(model.num_inputs()) +
                     " inputs and " + std::to_string(model.num_outputs()) +
                     " outputs; attribution explains models with one input and one output");
  if (!inputs.defined() || inputs.rank() < 2 || inputs.dim(0) < 1)
    throw ShapeError(std::string(method) + ": inputs must be a non-empty batch (N, ...), got " +
                     (inputs.defined() ? inputs.shape().str() : std::string("an undefined tensor")));
  if (const auto shape = model.input_shape()) {
    const Shape sample(std::vector<int64_t>(inputs.shape().begin() + 1, inputs.shape().end()));
    if (sample != *shape)
      throw ShapeError(std::string(method) + ": model '" + model.name() + "' takes samples of shape " + shape->str() +
                       ", the inputs hold " + sample.str() + " (inputs " + inputs.shape().str() + ")");
  }
}

// The top-level layer called `name`; ValueError listing the model's layers otherwise.
const Layer& find_layer(const Model& model, const std::string& name, const char* method) {
  for (const auto& l : model.layers())
    if (l->name() == name) return *l;
  std::string names;
  for (const auto& l : model.layers())
    if (l->class_name() != "InputLayer") names += (names.empty() ? "'" : ", '") + l->name() + "'";
  throw ValueError(std::string(method) + ": model '" + model.name() + "' has no layer '" + name + "'; its layers: " + names);
}

// Writes `part` into rows [begin, begin + part.dim(0)) of `out`.
void put_rows(Tensor& out, int64_t begin, const Tensor& part) {
  const int64_t per = out.numel() / out.dim(0);
  std::copy_n(part.data(), part.numel(), out.data() + begin * per);
}

// The one-hot seed (rows, K) that picks each row's target unit.
Tensor one_hot(int64_t n, int64_t k, std::span<const int64_t> target) {
  Tensor dy = Tensor::zeros(Shape{n, k});
  for (int64_t i = 0; i < n; ++i) dy.data()[i * k + target[static_cast<size_t>(i)]] = 1.f;
  return dy;
}

// One forward (and backward) pass over rows of inputs: the target scores f_target(x) per row, and
// when wanted the gradient of each row's score with respect to the input rows, or to `layer`'s
// output. `replace`, when defined, stands in for the layer's output (IG's interpolated
// embeddings); `layer_value` returns the layer's output as it was used.
struct Pass {
  std::vector<float> scores;
  Tensor grad;
  Tensor layer_value;
};

Pass run_pass(Model& model, const Tensor& x, std::span<const int64_t> target, const std::string& layer,
              const Tensor& replace, bool want_grad) {
  Pass out;
  Tensor input = x.clone();
  Tensor probe;  // the tensor the gradient is taken against
  int calls = 0;
  Model::OutputHook hook = [&](const Layer& l, Tensor& value) {
    if (layer.empty() || l.name() != layer) return;
    if (++calls > 1)
      throw ValueError("explain: layer '" + layer + "' is called more than once in model '" + model.name() +
                       "'; attribute at a layer called once");
    if (replace.defined()) {
      if (replace.shape() != value.shape())
        throw ShapeError("explain: layer '" + layer + "' output " + value.shape().str() +
                         " cannot be replaced by a tensor of shape " + replace.shape().str());
      value = replace.clone();
    } else {
      value = value.detach();
    }
    if (want_grad) value.requires_grad_();
    probe = value;
  };
  Tensor y;
  if (want_grad) {
    if (layer.empty()) {
      input.requires_grad_();
      probe = input;
    }
    y = model.call_with_hook({input}, hook, false).at(0);
  } else {
    NoGradGuard no_grad;
    y = model.call_with_hook({input}, hook, false).at(0);
  }
  if (!layer.empty() && calls == 0)
    throw ValueError("explain: layer '" + layer + "' of model '" + model.name() + "' did not run in the forward pass");
  const Tensor flat = output_rows(y);
  const int64_t n = flat.dim(0), k = flat.dim(1);
  if (n != x.dim(0))
    throw ShapeError("explain: the model's output " + y.shape().str() + " has another batch than its input " +
                     x.shape().str());
  out.scores.resize(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) {
    const int64_t t = target[static_cast<size_t>(i)];
    if (t < 0 || t >= k)
      throw ValueError("explain: target " + std::to_string(t) + " is out of range for the model's " + std::to_string(k) +
                       " output units (valid: 0 to " + std::to_string(k - 1) + ")");
    out.scores[static_cast<size_t>(i)] = flat.data()[i * k + t];
  }
  if (want_grad) {
    out.grad = grad(y, {probe}, one_hot(n, k, target).reshape(y.shape())).at(0);
  }
  if (!layer.empty()) out.layer_value = probe.detach();
  return out;
}

// The same over any number of rows, chunk by chunk. `replace` (optional) has the layer output's
// rows; a layer's outputs are gathered when wanted.
Pass run_chunked(Model& model, const Tensor& x, std::span<const int64_t> target, const std::string& layer,
                 const Tensor& replace, bool want_grad, int64_t chunk) {
  const int64_t n = x.dim(0);
  Pass all;
  all.scores.reserve(static_cast<size_t>(n));
  for (int64_t b = 0; b < n; b += chunk) {
    const int64_t e = std::min(n, b + chunk);
    // A chunk's rows as a copy of their own (outside autograd).
    auto chunk_of = [&](const Tensor& t) { return n <= chunk ? t : detail::rows(t, b, e - b).clone(); };
    Pass part = run_pass(model, chunk_of(x), target.subspan(static_cast<size_t>(b), static_cast<size_t>(e - b)), layer,
                         replace.defined() ? chunk_of(replace) : Tensor(), want_grad);
    if (n <= chunk) return part;
    all.scores.insert(all.scores.end(), part.scores.begin(), part.scores.end());
    auto gather = [&](Tensor& into, const Tensor& from) {
      if (!from.defined()) return;
      if (!into.defined()) {
        std::vector<int64_t> dims = from.shape().dims();
        dims[0] = n;
        into = Tensor::empty(Shape(dims));
      }
      put_rows(into, b, from);
    };
    gather(all.grad, part.grad);
    gather(all.layer_value, part.layer_value);
  }
  return all;
}

void check_target_count(const Target& target, int64_t n) {
  if (!target.empty() && target.size() != 1 && static_cast<int64_t>(target.size()) != n)
    throw ValueError("explain: " + std::to_string(target.size()) + " targets for " + std::to_string(n) +
                     " samples; give none (the predicted units), one, or one per sample");
}

// One unit per sample. Only the default (the predicted units) needs a forward pass; given units
// are range-checked by every pass that reads them (run_pass).
std::vector<int64_t> targets_for(Model& model, const Tensor& inputs, const Target& target) {
  const int64_t n = inputs.dim(0);
  check_target_count(target, n);
  if (!target.empty()) return target.size() == 1 ? std::vector<int64_t>(static_cast<size_t>(n), target[0]) : target;
  Tensor y;
  {
    NoGradGuard no_grad;
    y = model.call(std::vector<Tensor>{inputs}, false).at(0);
  }
  return resolve_target(y, target);
}

// Broadcasts a baseline (undefined: zeros; one sample's shape; or the inputs' shape) to the inputs.
Tensor baseline_for(const Tensor& baseline, const Tensor& inputs) {
  if (!baseline.defined()) return Tensor::zeros(inputs.shape());
  if (baseline.shape() == inputs.shape()) return baseline.detach();
  const Shape sample(std::vector<int64_t>(inputs.shape().begin() + 1, inputs.shape().end()));
  if (baseline.shape() == sample || (baseline.rank() == inputs.rank() && baseline.dim(0) == 1 && baseline.numel() == sample.numel())) {
    Tensor out = Tensor::empty(inputs.shape());
    const int64_t per = sample.numel();
    for (int64_t i = 0; i < inputs.dim(0); ++i) std::copy_n(baseline.data(), per, out.data() + i * per);
    return out;
  }
  throw ShapeError("integrated_gradients: baseline " + baseline.shape().str() + " fits neither the inputs " +
                   inputs.shape().str() + " nor one sample " + sample.str());
}

// The layer's output for the inputs (no gradient).
Tensor layer_output(Model& model, const Tensor& inputs, const std::string& layer, std::span<const int64_t> target,
                    int64_t chunk) {
  return run_chunked(model, inputs, target, layer, Tensor(), false, chunk).layer_value;
}

// Legendre nodes and weights on [-1, 1] by Newton's method on P_n (Numerical Recipes' gauleg),
// ascending as numpy's leggauss.
void gauss_legendre_nodes(int n, std::vector<double>& x, std::vector<double>& w) {
  x.assign(static_cast<size_t>(n), 0.0);
  w.assign(static_cast<size_t>(n), 0.0);
  for (int i = 0; i < (n + 1) / 2; ++i) {
    double z = std::cos(std::numbers::pi * (i + 0.75) / (n + 0.5)), dp = 0;
    for (int iter = 0; iter < 100; ++iter) {
      double p0 = 1.0, p1 = z;
      for (int k = 2; k <= n; ++k) {
        const double p2 = ((2.0 * k - 1.0) * z * p1 - (k - 1.0) * p0) / k;
        p0 = p1;
        p1 = p2;
      }
      if (n == 1) p0 = 1.0;
      dp = n * (z * p1 - p0) / (z * z - 1.0);
      const double dz = p1 / dp;
      z -= dz;
      if (std::abs(dz) < 1e-15) break;
    }
    const double weight = 2.0 / ((1.0 - z * z) * dp * dp);
    x[static_cast<size_t>(i)] = -z;
    x[static_cast<size_t>(n - 1 - i)] = z;
    w[static_cast<size_t>(i)] = w[static_cast<size_t>(n - 1 - i)] = weight;
  }
}

}  // namespace

std::vector<int64_t> resolve_target(const Tensor& y, const Target& target) {
  const Tensor flat = output_rows(y);
  const int64_t n = flat.dim(0), k = flat.dim(1);
  check_target_count(target, n);
  std::vector<int64_t> out(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) {
    if (target.empty()) {
      const float* row = flat.data() + i * k;
      out[static_cast<size_t>(i)] = k == 1 ? 0 : std::max_element(row, row + k) - row;
    } else {
      out[static_cast<size_t>(i)] = target.size() == 1 ? target[0] : target[static_cast<size_t>(i)];
    }
    const int64_t t = out[static_cast<size_t>(i)];
    if (t < 0 || t >= k)
      throw ValueError("explain: target " + std::to_string(t) + " is out of range for the model's " + std::to_string(k) +
                       " output units (valid: 0 to " + std::to_string(k - 1) + ")");
  }
  return out;
}

Tensor saliency(Model& model, const Tensor& inputs, const SaliencyOptions& options) {
  check_inputs(model, inputs, "saliency");
  if (!options.layer.empty()) find_layer(model, options.layer, "saliency");
  const auto target = targets_for(model, inputs, options.target);
  Tensor g = run_chunked(model, inputs, target, options.layer, Tensor(), true, chunk_size(options.internal_batch_size)).grad;
  if (options.abs)
    for (float& v : g.values()) v = std::abs(v);
  return g;
}

Tensor input_x_gradient(Model& model, const Tensor& inputs, const InputXGradientOptions& options) {
  check_inputs(model, inputs, "input_x_gradient");
  if (!options.layer.empty()) find_layer(model, options.layer, "input_x_gradient");
  const auto target = targets_for(model, inputs, options.target);
  Pass p = run_chunked(model, inputs, target, options.layer, Tensor(), true, chunk_size(options.internal_batch_size));
  const Tensor& at = options.layer.empty() ? inputs : p.layer_value;
  Tensor out = p.grad;
  const float* a = at.data();
  for (float& v : out.values()) v *= *a++;
  return out;
}

Rule rule_from_string(const std::string& name) {
  if (name == "riemann_left") return Rule::riemann_left;
  if (name == "riemann_right") return Rule::riemann_right;
  if (name == "riemann_middle") return Rule::riemann_middle;
  if (name == "riemann_trapezoid") return Rule::riemann_trapezoid;
  if (name == "gausslegendre" || name == "gauss_legendre") return Rule::gauss_legendre;
  throw ValueError("integrated_gradients: unknown rule '" + name +
                   "'; use riemann_left, riemann_right, riemann_middle, riemann_trapezoid or gausslegendre");
}

std::string to_string(Rule rule) {
  switch (rule) {
    case Rule::riemann_left: return "riemann_left";
    case Rule::riemann_right: return "riemann_right";
    case Rule::riemann_middle: return "riemann_middle";
    case Rule::riemann_trapezoid: return "riemann_trapezoid";
    case Rule::gauss_legendre: return "gausslegendre";
  }
  return "?";
}

Quadrature quadrature(Rule rule, int steps) {
  Quadrature q;
  if (rule == Rule::gauss_legendre) {
    if (steps < 1) throw ValueError("integrated_gradients: steps must be >= 1, got " + std::to_string(steps));
    gauss_legendre_nodes(steps, q.alphas, q.weights);
    for (double& a : q.alphas) a = 0.5 * (a + 1.0);
    for (double& w : q.weights) w *= 0.5;
    return q;
  }
  if (steps < 2)
    throw ValueError("integrated_gradients: the " + to_string(rule) + " rule needs steps >= 2, got " + std::to_string(steps));
  const double n = steps;
  q.weights.assign(static_cast<size_t>(steps), 1.0 / n);
  q.alphas.resize(static_cast<size_t>(steps));
  // Captum's points: torch.linspace(first, last, n).
  double first = 0, last = 1;
  switch (rule) {
    case Rule::riemann_left: last = 1 - 1 / n; break;
    case Rule::riemann_right: first = 1 / n; break;
    case Rule::riemann_middle: first = 1 / (2 * n), last = 1 - 1 / (2 * n); break;
    case Rule::riemann_trapezoid:
      // The trapezoid rule on n points 1/(n-1) apart, its end weights halved, so the weights sum
      // to 1 (Captum weighs these points 1/n, which sums to 1 - 1/n and scales every attribution
      // by that factor; we keep the rule exact, as a linear model's x * w shows).
      q.weights.assign(static_cast<size_t>(steps), 1.0 / (n - 1));
      q.weights.front() /= 2;
      q.weights.back() /= 2;
      break;
    case Rule::gauss_legendre: break;
  }
  for (int i = 0; i < steps; ++i) q.alphas[static_cast<size_t>(i)] = first + (last - first) * i / (n - 1);
  return q;
}

IntegratedGradientsResult integrated_gradients(Model& model, const Tensor& inputs, const IntegratedGradientsOptions& options) {
  check_inputs(model, inputs, "integrated_gradients");
  const std::string& layer = options.layer;
  if (!layer.empty()) find_layer(model, layer, "integrated_gradients");
  const Quadrature q = quadrature(options.rule, options.steps);
  const int64_t chunk = chunk_size(options.internal_batch_size);
  const Tensor base = baseline_for(options.baseline, inputs);
  IntegratedGradientsResult result;
  result.target = targets_for(model, inputs, options.target);
  const auto& target = result.target;

  // The path's ends: in input space, or in the layer's output space.
  const Tensor start = layer.empty() ? base : layer_output(model, base, layer, target, chunk);
  const Tensor end = layer.empty() ? inputs.detach() : layer_output(model, inputs, layer, target, chunk);
  const int64_t n = inputs.dim(0), per = end.numel() / n, in_per = inputs.numel() / n;
  const int64_t steps = static_cast<int64_t>(q.alphas.size());

  // Rows r = step * n + i, chunked so that at most `chunk` rows run at once.
  std::vector<double> total(static_cast<size_t>(end.numel()), 0.0);
  const int64_t rows_total = steps * n;
  for (int64_t b = 0; b < rows_total; b += chunk) {
    const int64_t e = std::min(rows_total, b + chunk), m = e - b;
    std::vector<int64_t> path_dims = end.shape().dims();
    path_dims[0] = m;
    Tensor path = Tensor::empty(Shape(path_dims));
    Tensor feed;  // what the model reads: the path itself, or the inputs whose layer output it replaces
    if (!layer.empty()) {
      std::vector<int64_t> in_dims = inputs.shape().dims();
      in_dims[0] = m;
      feed = Tensor::empty(Shape(in_dims));
    }
    std::vector<int64_t> chunk_target(static_cast<size_t>(m));
    for (int64_t r = b; r < e; ++r) {
      const int64_t s = r / n, i = r % n;
      const auto alpha = static_cast<float>(q.alphas[static_cast<size_t>(s)]);
      const float* x0 = start.data() + i * per;
      const float* x1 = end.data() + i * per;
      float* p = path.data() + (r - b) * per;
      for (int64_t j = 0; j < per; ++j) p[j] = x0[j] + alpha * (x1[j] - x0[j]);
      if (feed.defined()) std::copy_n(inputs.data() + i * in_per, in_per, feed.data() + (r - b) * in_per);
      chunk_target[static_cast<size_t>(r - b)] = target[static_cast<size_t>(i)];
    }
    const Pass pass = layer.empty() ? run_pass(model, path, chunk_target, "", Tensor(), true)
                                    : run_pass(model, feed, chunk_target, layer, path, true);
    for (int64_t r = b; r < e; ++r) {
      const int64_t s = r / n, i = r % n;
      const double w = q.weights[static_cast<size_t>(s)];
      const float* g = pass.grad.data() + (r - b) * per;
      double* t = total.data() + i * per;
      for (int64_t j = 0; j < per; ++j) t[j] += w * g[j];
    }
  }
  result.attributions = Tensor::empty(end.shape());
  float* a = result.attributions.data();
  for (int64_t j = 0; j < end.numel(); ++j)
    a[j] = static_cast<float>(total[static_cast<size_t>(j)] * (static_cast<double>(end.data()[j]) - start.data()[j]));

  // Completeness: sum(attributions) - (f(x) - f(baseline)).
  const Pass fx = run_chunked(model, inputs, target, "", Tensor(), false, chunk);
  const Pass fb = run_chunked(model, base, target, "", Tensor(), false, chunk);
  result.delta = Tensor::empty(Shape{n});
  for (int64_t i = 0; i < n; ++i) {
    double s = 0;
    for (int64_t j = 0; j < per; ++j) s += a[i * per + j];
    result.delta.data()[i] =
        static_cast<float>(s - (static_cast<double>(fx.scores[static_cast<size_t>(i)]) - fb.scores[static_cast<size_t>(i)]));
  }
  return result;
}

NoiseType noise_type_from_string(const std::string& name) {
  if (name == "smoothgrad") return NoiseType::smoothgrad;
  if (name == "smoothgrad_sq") return NoiseType::smoothgrad_sq;
  if (name == "vargrad") return NoiseType::vargrad;
  throw ValueError("noise_tunnel: unknown type '" + name + "'; use smoothgrad, smoothgrad_sq or vargrad");
}

Tensor noise_tunnel(const Method& method, const Tensor& inputs, const NoiseTunnelOptions& options) {
  if (options.samples < 1) throw ValueError("noise_tunnel: samples must be >= 1, got " + std::to_string(options.samples));
  if (!(options.stdev >= 0.f)) throw ValueError("noise_tunnel: stdev must be >= 0, got " + std::to_string(options.stdev));
  Generator own(options.seed.value_or(0));
  Generator& gen = options.seed ? own : default_generator();
  std::vector<double> sum, sum_sq;
  Tensor shape_of;
  for (int s = 0; s < options.samples; ++s) {
    Tensor noisy = inputs.clone();
    for (float& v : noisy.values()) v += options.stdev * gen.normal();
    const Tensor a = method(noisy);
    if (sum.empty()) {
      sum.assign(static_cast<size_t>(a.numel()), 0.0);
      sum_sq.assign(static_cast<size_t>(a.numel()), 0.0);
      shape_of = a;
    } else if (a.shape() != shape_of.shape()) {
      throw ShapeError("noise_tunnel: the method returned " + a.shape().str() + " after " + shape_of.shape().str());
    }
    const float* v = a.data();
    for (size_t j = 0; j < sum.size(); ++j) {
      sum[j] += v[j];
      sum_sq[j] += static_cast<double>(v[j]) * v[j];
    }
  }
  Tensor out = Tensor::empty(shape_of.shape());
  const double k = options.samples;
  float* o = out.data();
  for (size_t j = 0; j < sum.size(); ++j) {
    const double mean = sum[j] / k, mean_sq = sum_sq[j] / k;
    o[j] = static_cast<float>(options.type == NoiseType::smoothgrad      ? mean
                              : options.type == NoiseType::smoothgrad_sq ? mean_sq
                                                                         : mean_sq - mean * mean);
  }
  return out;
}

Tensor occlusion(Model& model, const Tensor& inputs, const OcclusionOptions& options) {
  check_inputs(model, inputs, "occlusion");
  const Shape sample(std::vector<int64_t>(inputs.shape().begin() + 1, inputs.shape().end()));
  const int64_t rank = sample.rank();
  if (options.window.rank() != rank)
    throw ShapeError("occlusion: window " + options.window.str() + " must have one sample's rank " +
                     std::to_string(rank) + " (samples " + sample.str() + ")");
  const Shape strides = options.strides.rank() == 0 ? Shape(std::vector<int64_t>(static_cast<size_t>(rank), 1)) : options.strides;
  if (strides.rank() != rank)
    throw ShapeError("occlusion: strides " + strides.str() + " must have one sample's rank " + std::to_string(rank));
  std::vector<int64_t> shifts(static_cast<size_t>(rank));
  int64_t windows = 1;
  for (int64_t d = 0; d < rank; ++d) {
    if (options.window[d] < 1 || options.window[d] > sample[d])
      throw ShapeError("occlusion: window " + options.window.str() + " does not fit in samples " + sample.str());
    if (strides[d] < 1) throw ValueError("occlusion: strides " + strides.str() + " must be >= 1");
    // Captum's count: ceil((size - window) / stride) + 1 windows, the last one clipped at the edge.
    shifts[static_cast<size_t>(d)] = (sample[d] - options.window[d] + strides[d] - 1) / strides[d] + 1;
    windows *= shifts[static_cast<size_t>(d)];
  }
  const auto target = targets_for(model, inputs, options.target);
  const int64_t n = inputs.dim(0), per = sample.numel(), chunk = chunk_size(options.perturbations_per_eval);
  const std::vector<float> clean = run_chunked(model, inputs, target, "", Tensor(), false, chunk).scores;
  // Row-major strides of one sample, to walk a window's cells.
  std::vector<int64_t> pitch(static_cast<size_t>(rank), 1);
  for (int64_t d = rank - 2; d >= 0; --d) pitch[static_cast<size_t>(d)] = pitch[static_cast<size_t>(d + 1)] * sample[d + 1];
  // The flat cells window w covers.
  auto cells_of = [&](int64_t w, std::vector<int64_t>& cells) {
    cells.clear();
    std::vector<int64_t> lo(static_cast<size_t>(rank)), hi(static_cast<size_t>(rank));
    for (int64_t d = rank - 1; d >= 0; --d) {
      const int64_t k = w % shifts[static_cast<size_t>(d)];
      w /= shifts[static_cast<size_t>(d)];
      lo[static_cast<size_t>(d)] = k * strides[d];
      hi[static_cast<size_t>(d)] = std::min(sample[d], lo[static_cast<size_t>(d)] + options.window[d]);
    }
    std::vector<int64_t> at = lo;
    while (true) {
      int64_t flat = 0;
      for (int64_t d = 0; d < rank; ++d) flat += at[static_cast<size_t>(d)] * pitch[static_cast<size_t>(d)];
      cells.push_back(flat);
      int64_t d = rank - 1;
      for (; d >= 0; --d) {
        if (++at[static_cast<size_t>(d)] < hi[static_cast<size_t>(d)]) break;
        at[static_cast<size_t>(d)] = lo[static_cast<size_t>(d)];
      }
      if (d < 0) break;
    }
  };
  Tensor out = Tensor::zeros(inputs.shape());
  std::vector<float> count(static_cast<size_t>(per));
  std::vector<int64_t> cells;
  for (int64_t i = 0; i < n; ++i) {
    std::fill(count.begin(), count.end(), 0.f);
    float* attr = out.data() + i * per;
    const float* x = inputs.data() + i * per;
    for (int64_t b = 0; b < windows; b += chunk) {
      const int64_t e = std::min(windows, b + chunk), m = e - b;
      std::vector<int64_t> dims = inputs.shape().dims();
      dims[0] = m;
      Tensor batch = Tensor::empty(Shape(dims));
      for (int64_t w = b; w < e; ++w) {
        float* row = batch.data() + (w - b) * per;
        std::copy_n(x, per, row);
        cells_of(w, cells);
        for (int64_t c : cells) row[c] = options.baseline;
      }
      const std::vector<int64_t> t(static_cast<size_t>(m), target[static_cast<size_t>(i)]);
      const Pass p = run_pass(model, batch, t, "", Tensor(), false);
      for (int64_t w = b; w < e; ++w) {
        const float drop = clean[static_cast<size_t>(i)] - p.scores[static_cast<size_t>(w - b)];
        cells_of(w, cells);
        for (int64_t c : cells) {
          attr[c] += drop;
          count[static_cast<size_t>(c)] += 1.f;
        }
      }
    }
    for (int64_t j = 0; j < per; ++j)
      if (count[static_cast<size_t>(j)] > 0.f) attr[j] /= count[static_cast<size_t>(j)];
  }
  return out;
}

Tensor resize_bilinear(const Tensor& images, int64_t height, int64_t width) {
  if (images.rank() != 4) throw ShapeError("resize_bilinear: images must be (N, H, W, C), got " + images.shape().str());
  if (height < 1 || width < 1) throw ValueError("resize_bilinear: the size must be positive");
  const int64_t n = images.dim(0), h = images.dim(1), w = images.dim(2), c = images.dim(3);
  Tensor out = Tensor::empty(Shape{n, height, width, c});
  // PyTorch's area_pixel_compute_source_index (align_corners=False): (dst + 0.5) * in / out - 0.5, >= 0.
  auto source = [](int64_t dst, int64_t in, int64_t out_size, int64_t& i0, int64_t& i1, float& frac) {
    const double s = std::max(0.0, (dst + 0.5) * static_cast<double>(in) / static_cast<double>(out_size) - 0.5);
    i0 = std::min(static_cast<int64_t>(s), in - 1);
    i1 = std::min(i0 + 1, in - 1);
    frac = static_cast<float>(s - static_cast<double>(i0));
  };
  const float* src = images.data();
  float* dst = out.data();
  for (int64_t b = 0; b < n; ++b)
    for (int64_t y = 0; y < height; ++y) {
      int64_t y0 = 0, y1 = 0;
      float fy = 0;
      source(y, h, height, y0, y1, fy);
      for (int64_t x = 0; x < width; ++x) {
        int64_t x0 = 0, x1 = 0;
        float fx = 0;
        source(x, w, width, x0, x1, fx);
        const float* base = src + b * h * w * c;
        for (int64_t k = 0; k < c; ++k) {
          const float top = (1 - fx) * base[(y0 * w + x0) * c + k] + fx * base[(y0 * w + x1) * c + k];
          const float bottom = (1 - fx) * base[(y1 * w + x0) * c + k] + fx * base[(y1 * w + x1) * c + k];
          *dst++ = (1 - fy) * top + fy * bottom;
        }
      }
    }
  return out;
}

Tensor grad_cam(Model& model, const Tensor& inputs, const GradCamOptions& options) {
  check_inputs(model, inputs, "grad_cam");
  if (!model.built()) model.build(Shape(std::vector<int64_t>(inputs.shape().begin() + 1, inputs.shape().end())));
  // The layers with an image-shaped output (h, w, C), by the model's recorded tensor shapes.
  std::vector<std::string> candidates;
  std::string layer = options.layer;
  std::optional<Shape> chosen;
  for (const Model::Node& node : model.nodes()) {
    const Shape& s = model.tensor_shapes().at(static_cast<size_t>(node.output));
    if (s.rank() != 3) continue;
    candidates.push_back(node.layer->name());
    if (options.layer.empty() || node.layer->name() == options.layer) {
      if (options.layer.empty()) layer = node.layer->name();
      chosen = s;
    }
  }
  std::string list;
  for (const auto& c : candidates) list += (list.empty() ? "'" : ", '") + c + "'";
  if (candidates.empty())
    throw ValueError("grad_cam: model '" + model.name() + "' has no layer with an image-shaped output (h, w, channels); "
                     "Grad-CAM explains convolutional models");
  if (!chosen) {
    const Layer& l = find_layer(model, options.layer, "grad_cam");
    throw ValueError("grad_cam: layer '" + options.layer + "' (" + l.class_name() +
                     ") is not a convolutional layer: its output is not (h, w, channels); choose one of " + list);
  }
  const auto target = targets_for(model, inputs, options.target);
  const Pass p = run_chunked(model, inputs, target, layer, Tensor(), true, kDefaultChunk);
  const Tensor& a = p.layer_value;
  const int64_t n = a.dim(0), h = a.dim(1), w = a.dim(2), c = a.dim(3), hw = h * w;
  Tensor cam = Tensor::zeros(Shape{n, h, w, 1});
  std::vector<double> weights(static_cast<size_t>(c));
  for (int64_t i = 0; i < n; ++i) {
    const float* g = p.grad.data() + i * hw * c;
    const float* act = a.data() + i * hw * c;
    std::fill(weights.begin(), weights.end(), 0.0);
    for (int64_t j = 0; j < hw; ++j)
      for (int64_t k = 0; k < c; ++k) weights[static_cast<size_t>(k)] += g[j * c + k];
    for (double& v : weights) v /= static_cast<double>(hw);
    float* out = cam.data() + i * hw;
    for (int64_t j = 0; j < hw; ++j) {
      double s = 0;
      for (int64_t k = 0; k < c; ++k) s += weights[static_cast<size_t>(k)] * act[j * c + k];
      out[j] = static_cast<float>(options.relu ? std::max(s, 0.0) : s);
    }
  }
  if (!options.upsample) return cam;
  if (inputs.rank() == 3 || inputs.rank() == 4) {
    Tensor up = resize_bilinear(cam, inputs.dim(1), inputs.dim(2));
    return inputs.rank() == 3 ? up.reshape(Shape{n, inputs.dim(1), inputs.dim(2)}) : up;
  }
  // Flat inputs that a Reshape makes square images (the digits' 64 values as 8 x 8).
  const auto side = static_cast<int64_t>(std::lround(std::sqrt(static_cast<double>(inputs.numel() / n))));
  if (inputs.rank() == 2 && side * side == inputs.dim(1))
    return resize_bilinear(cam, side, side).reshape(Shape{n, side * side});
  throw ShapeError("grad_cam: cannot upsample to inputs " + inputs.shape().str() +
                   "; images are (N, H, W), (N, H, W, C) or (N, side * side) (or pass upsample = false)");
}

Tensor token_scores(const Tensor& embedding_attributions) {
  if (embedding_attributions.rank() != 3)
    throw ShapeError("token_scores: attributions at an embedding are (N, T, D), got " + embedding_attributions.shape().str());
  NoGradGuard no_grad;
  return sum(embedding_attributions.detach(), -1);
}

Tensor overlay(const Tensor& image, const Tensor& attributions, const OverlayOptions& options) {
  if (image.rank() != 2 && image.rank() != 3)
    throw ShapeError("overlay: the image must be (H, W) or (H, W, C), got " + image.shape().str());
  const int64_t h = image.dim(0), w = image.dim(1), c = image.rank() == 3 ? image.dim(2) : 1;
  const int64_t ac = attributions.rank() == 3 ? attributions.dim(2) : 1;
  if ((attributions.rank() != 2 && attributions.rank() != 3) || attributions.dim(0) != h || attributions.dim(1) != w)
    throw ShapeError("overlay: attributions " + attributions.shape().str() + " do not cover the image " + image.shape().str());
  if (!(options.high > options.low)) throw ValueError("overlay: high must be above low");
  std::vector<float> map(static_cast<size_t>(h * w), 0.f);
  for (int64_t j = 0; j < h * w; ++j)
    for (int64_t k = 0; k < ac; ++k) map[static_cast<size_t>(j)] += attributions.data()[j * ac + k];
  float lo = 0, hi = 0;
  for (float v : map) {
    if (!std::isfinite(v)) throw ValueError("overlay: the attributions hold a non-finite value");
    lo = std::min(lo, v);
    hi = std::max(hi, v);
  }
  const bool signed_map = lo < 0.f;
  const float scale = std::max(hi, -lo);
  Tensor out = Tensor::empty(Shape{h, w, 3});
  float* o = out.data();
  for (int64_t j = 0; j < h * w; ++j) {
    const float* px = image.data() + j * c;
    float grey = c >= 3 ? 0.299f * px[0] + 0.587f * px[1] + 0.114f * px[2] : px[0];
    grey = std::clamp((grey - options.low) / (options.high - options.low), 0.f, 1.f);
    const float v = scale > 0.f ? map[static_cast<size_t>(j)] / scale : 0.f;
    float rgb[3];
    if (signed_map) {  // blue for negative, red for positive
      rgb[0] = v > 0 ? 1.f : 0.f;
      rgb[1] = 0.f;
      rgb[2] = v < 0 ? 1.f : 0.f;
    } else {  // black - red - yellow - white ("hot")
      rgb[0] = std::clamp(3 * v, 0.f, 1.f);
      rgb[1] = std::clamp(3 * v - 1, 0.f, 1.f);
      rgb[2] = std::clamp(3 * v - 2, 0.f, 1.f);
    }
    // The image dimmed to [0.2, 0.7] so that the colours stand out on white strokes too; weak
    // attributions are lifted by the square root so that they stay visible.
    const float shade = 0.2f + 0.5f * grey;
    const float wgt = options.alpha * std::sqrt(std::abs(v));
    for (int k = 0; k < 3; ++k) *o++ = (1 - wgt) * shade + wgt * rgb[k];
  }
  return out;
}

std::string method_name(const std::string& name) {
  if (name == "saliency") return "saliency";
  if (name == "ixg" || name == "input_x_gradient" || name == "inputxgradient") return "ixg";
  if (name == "ig" || name == "integrated_gradients" || name == "integratedgradients") return "ig";
  if (name == "smoothgrad" || name == "noise_tunnel" || name == "noisetunnel") return "smoothgrad";
  if (name == "occlusion") return "occlusion";
  if (name == "gradcam" || name == "grad_cam" || name == "layergradcam") return "gradcam";
  throw ValueError("explain: unknown method '" + name + "'; use saliency, ixg, ig, smoothgrad, occlusion or gradcam");
}

}  // namespace lamina::explain
