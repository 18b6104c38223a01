// Attribution: which parts of an input a model's output depends on, with Captum's methods, names
// and semantics (captum.attr): Saliency, InputXGradient, IntegratedGradients, NoiseTunnel
// (SmoothGrad), Occlusion and LayerGradCam. Each explains one output unit per sample (a target
// class), for a batch of inputs at once, on Sequential and Functional models with one input.
// Attributions have the input's shape (N, ...) unless said otherwise.
//
//   Tensor s = explain::saliency(model, x);                           // |d f_target / d x|
//   auto ig = explain::integrated_gradients(model, x, {.target = {3}, .steps = 200});
//   std::cout << ig.delta << "\n";                                    // completeness error per sample
//   Tensor cam = explain::grad_cam(model, x, {.layer = "conv2d_1"});  // (N, H, W, 1), input's H, W
//   write_png("ig.png", explain::overlay(x.view(0, Shape{28, 28, 1}), ig.attributions.view(0, Shape{28, 28, 1})));
//
// Text models explain at a layer's output instead of at the input (Captum's Layer* methods):
// with `layer` set to the Embedding, the gradient methods attribute to its output (N, T, D), and
// token_scores sums over D for one score per token.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "lamina/model.hpp"
#include "lamina/tensor.hpp"

namespace lamina::explain {

// N = samples, K = output units (classes).

// The output unit to explain for each sample: empty, the model's top unit for each sample (its
// argmax; for a single output unit, that unit); one value, the same unit for every sample; or N
// values, one per sample. ValueError for a unit outside [0, K) or a count other than 0, 1, N.
using Target = std::vector<int64_t>;

// The units `target` names for the model's output `y` (N, K) or (N) : N indices.
std::vector<int64_t> resolve_target(const Tensor& y, const Target& target);

// The options of each method are flat structs, so that designated initializers name any field:
// {.target = {3}, .steps = 200}. Shared fields:
//  - target: see Target;
//  - layer: attribute to this layer's output instead of the input (Captum's
//    LayerIntegratedGradients and kin), by the layer's name in the model as summary() shows it;
//    empty: the input;
//  - internal_batch_size: forward/backward passes run on at most this many rows at once (IG's
//    steps and SmoothGrad's noisy copies multiply the batch); 0: 256.

// Saliency (Simonyan et al. 2013): the gradient of the target output with respect to the input,
// |grad| by default (Captum's abs=True).
struct SaliencyOptions {
  Target target{};
  bool abs = true;
  std::string layer{};
  int64_t internal_batch_size = 0;
};
Tensor saliency(Model& model, const Tensor& inputs, const SaliencyOptions& options = {});

// InputXGradient: inputs * gradient (at `layer`: the layer's output times its gradient).
struct InputXGradientOptions {
  Target target{};
  std::string layer{};
  int64_t internal_batch_size = 0;
};
Tensor input_x_gradient(Model& model, const Tensor& inputs, const InputXGradientOptions& options = {});

// How IntegratedGradients approximates the path integral, as Captum's `method`: Riemann sums
// (left, right, middle: Captum's points, weights 1/steps; trapezoid: Captum's points 0, 1/(n-1),
// ..., 1 with the trapezoid rule's weights, which sum to 1 where Captum's 1/n sum to 1 - 1/n) or
// Gauss-Legendre quadrature (Captum's default: exact for polynomials of degree 2 * steps - 1
// along the path).
enum class Rule { riemann_left, riemann_right, riemann_middle, riemann_trapezoid, gauss_legendre };
// "riemann_left", ..., "gausslegendre" (Captum's strings) and back; ValueError naming the choices.
Rule rule_from_string(const std::string& name);
std::string to_string(Rule rule);
// The points alpha in [0, 1] along the path and their weights, Captum's approximation_parameters.
struct Quadrature {
  std::vector<double> alphas, weights;
};
Quadrature quadrature(Rule rule, int steps);

// IntegratedGradients (Sundararajan et al. 2017): (x - baseline) times the integral of the
// gradient along the straight path from the baseline to x.
struct IntegratedGradientsOptions {
  Target target{};
  // The baseline: undefined for zeros, a tensor of one sample's shape (every sample), or of the
  // inputs' shape. With `layer` set, the baseline is the *input* whose layer output starts the
  // path (a text's padding tokens: zeros).
  Tensor baseline{};
  int steps = 50;
  Rule rule = Rule::gauss_legendre;
  std::string layer{};
  int64_t internal_batch_size = 0;
};
struct IntegratedGradientsResult {
  Tensor attributions;
  // Per sample, sum(attributions) - (f(x) - f(baseline)): the completeness error (Captum's
  // convergence delta), shrinking as steps grow.
  Tensor delta;  // (N)
  std::vector<int64_t> target;  // the unit explained per sample
};
IntegratedGradientsResult integrated_gradients(Model& model, const Tensor& inputs,
                                               const IntegratedGradientsOptions& options = {});

// Any attribution method, as NoiseTunnel wraps it: inputs in, attributions out.
using Method = std::function<Tensor(const Tensor& inputs)>;

// NoiseTunnel (Captum): the method applied to `samples` noisy copies of the inputs, each plus
// Gaussian noise N(0, stdev^2), then reduced: SmoothGrad (Smilkov et al. 2017) averages the
// attributions, smoothgrad_sq averages their squares, vargrad takes their variance.
enum class NoiseType { smoothgrad, smoothgrad_sq, vargrad };
NoiseType noise_type_from_string(const std::string& name);  // "smoothgrad", "smoothgrad_sq", "vargrad"
struct NoiseTunnelOptions {
  NoiseType type = NoiseType::smoothgrad;
  int samples = 5;       // Captum's nt_samples
  float stdev = 1.0f;    // Captum's stdevs: absolute, in the input's units
  // The noise's generator; unset: drawn from manual_seed's generator.
  std::optional<uint64_t> seed{};
};
Tensor noise_tunnel(const Method& method, const Tensor& inputs, const NoiseTunnelOptions& options = {});

// Occlusion (Zeiler & Fergus 2014): slides a window over each sample, replaces what it covers by
// the baseline, and gives every feature the mean drop f(x) - f(occluded) over the windows
// covering it (Captum's Occlusion). window and strides have one sample's rank (strides default
// to 1 on every axis; a window must fit in the sample).
struct OcclusionOptions {
  Target target{};
  Shape window{};
  Shape strides{};
  float baseline = 0.f;
  // Occluded copies run per forward pass (Captum's perturbations_per_eval); 0: 256.
  int64_t perturbations_per_eval = 0;
};
Tensor occlusion(Model& model, const Tensor& inputs, const OcclusionOptions& options);

// Grad-CAM (Selvaraju et al. 2017) at a convolutional layer with output (N, h, w, C):
// relu(sum_c mean_hw(dy/dA_c) * A_c), upsampled to the input's height and width by bilinear
// interpolation (half-pixel centres: PyTorch's interpolate(align_corners=False), TF's resize):
// (N, H, W, 1) for inputs (N, H, W, C), (N, H, W) for (N, H, W), and (N, side * side) for flat
// inputs that the model reshapes into side x side images.
// The layer must be a top-level layer whose output has rank 4 (Conv2D, its activation, pooling):
// ValueError naming the layer and the model's candidate layers otherwise.
struct GradCamOptions {
  Target target{};
  std::string layer{};    // empty: the last layer with a rank-4 output
  bool relu = true;       // the paper's ReLU (Captum's relu_attributions, off by default there)
  bool upsample = true;   // false: the (N, h, w, 1) map at the layer's resolution
};
Tensor grad_cam(Model& model, const Tensor& inputs, const GradCamOptions& options = {});

// Bilinear resize of (N, h, w, C) to (N, H, W, C) with half-pixel centres, as above.
Tensor resize_bilinear(const Tensor& images, int64_t height, int64_t width);

// For text models: per-token scores (N, T) from attributions at an embedding (N, T, D), summed
// over D, as Captum's tutorials summarize them.
Tensor token_scores(const Tensor& embedding_attributions);

// --- pictures ---

// The attributions of one image as a heat map over it: the image (H, W) or (H, W, C) in
// [low, high], shown in grey dimmed to [0.2, 0.7], blended with a colour map of the attributions
// (H, W) or (H, W, C') (summed over channels): signed maps in blue (negative) to red (positive)
// scaled by the largest magnitude, non-negative ones in a black-red-yellow-white ramp scaled by
// their maximum. A value v in [-1, 1] after scaling weighs alpha * sqrt(|v|) against the image.
// Returns (H, W, 3) RGB in [0, 1] for write_png.
struct OverlayOptions {
  float low = 0.f, high = 1.f;
  float alpha = 0.6f;
};
Tensor overlay(const Tensor& image, const Tensor& attributions, const OverlayOptions& options = {});

// The method names of the CLI and their long forms: "saliency", "ixg" / "input_x_gradient",
// "ig" / "integrated_gradients", "smoothgrad" / "noise_tunnel", "occlusion", "gradcam" /
// "grad_cam". ValueError listing them for another name.
std::string method_name(const std::string& name);

}  // namespace lamina::explain
