// The resizing nodes of an ONNX graph on images: Resize / Upsample by whole factors (nearest as
// the repeat, linear with half-pixel centers) as UpSampling2D, Pad with zeros on H and W as
// ZeroPadding2D, Slice of H and W as Cropping2D. Each works in whichever axis order the graph
// holds the image (NCHW from PyTorch, NHWC between Lamina's own Transposes); what Lamina cannot
// compute the same way is refused with the reason.
#include <algorithm>
#include <cctype>
#include <cmath>

#include "onnx/import_state.hpp"

namespace lamina::onnx::detail {

int Importer::image_axis(int64_t onnx_axis, const char* what) const {
  if (flow_.rank() != 4 || lamina_shape(flow_).size() != 3 || flow_.permuted() ||
      flow_.time_major != Flow::TimeMajor::no)
    fail(std::string(what) + " is supported on images (N, C, H, W) only; its input is " + act_text(flow_.shape));
  if (onnx_axis < -4 || onnx_axis >= 4) fail("axis " + std::to_string(onnx_axis) + " is out of range for a rank-4 image");
  return flow_.axes[static_cast<size_t>(onnx_axis < 0 ? onnx_axis + 4 : onnx_axis)];
}

// Resize (opset 10+) / Upsample (opset 7-9). Factors per axis from scales (integer-valued) or
// sizes (multiples of the input); only H and W may grow. Nearest must pick source o / f, the
// repeat: asymmetric with floor (PyTorch's export), or half-pixel rounding (for a whole f the
// half-pixel source (o + 0.5) / f - 0.5 is never halfway, so either rounding gives o / f).
// Linear must be half-pixel (Keras' bilinear, torch's align_corners=False).
void Importer::resize(const Node& n) {
  const bool upsample = n.op_type == "Upsample";
  const char* what = upsample ? "Upsample" : "Resize";
  image_axis(0, what);
  if (node_->attribute("axes")) fail("the 'axes' attribute (opset 18) is not supported; give scales for all 4 axes");
  std::vector<double> factors;
  if (upsample && opset() < 9) {
    const Attribute* a = attr("scales", kAttrFloats);
    if (!a) fail("has no scales");
    factors.assign(a->floats.begin(), a->floats.end());
  } else {
    const size_t scales_at = upsample || opset() < 11 ? 1 : 2;  // opset 11 put roi before scales
    const Const* scales = optional_constant(scales_at, "scales");
    const Const* sizes = upsample || opset() < 11 ? nullptr : optional_constant(3, "sizes");
    if (scales && scales->numel() > 0) {
      if (!scales->is_float) fail("scales must be floating-point");
      factors.assign(scales->f.begin(), scales->f.end());
    } else if (sizes) {
      const std::vector<int64_t> want = ints_of(*sizes, "sizes");
      if (want.size() != 4) fail("sizes " + dims_text(want) + " must have 4 entries");
      factors.push_back(1.0);  // the batch: any size is the batch's, which must not change
      for (size_t a = 1; a < 4; ++a) {
        const int64_t in = flow_.shape[a - 1];
        if (in <= 0 || want[a] % in != 0)
          fail("sizes " + dims_text(want) + " are not whole multiples of the input " + act_text(flow_.shape) +
               "; Lamina's UpSampling2D scales by whole factors");
        factors.push_back(static_cast<double>(want[a] / in));
      }
    } else {
      fail("has neither scales nor sizes as constants");
    }
  }
  if (factors.size() != 4) fail("scales have " + std::to_string(factors.size()) + " entries; expected 4 (N, C, H, W)");
  Size2 size(1, 1);
  for (int64_t a = 0; a < 4; ++a) {
    const double f = factors[static_cast<size_t>(a)];
    const int lam = a == 0 ? 0 : image_axis(a, what);
    if (lam == 1 || lam == 2) {
      if (!(f >= 1 && f <= 1 << 20) || f != std::floor(f))
        fail("scale " + std::to_string(f) + " on axis " + std::to_string(a) +
             " is not a whole factor >= 1; Lamina's UpSampling2D scales H and W by whole factors");
      (lam == 1 ? size.h : size.w) = static_cast<int64_t>(f);
    } else if (f != 1.0) {
      fail("scale " + std::to_string(f) + " on axis " + std::to_string(a) + " (the " +
           (lam == 0 ? "batch" : "channels") + ") is not supported; only H and W may be resized");
    }
  }
  std::string mode = attr_string("mode", "nearest");
  std::transform(mode.begin(), mode.end(), mode.begin(), [](unsigned char c) { return std::tolower(c); });
  // Upsample and opset-10 Resize have no coordinate modes: their sources are asymmetric (o / f).
  const bool old = upsample || opset() < 11;
  const std::string coords = old ? "asymmetric" : attr_string("coordinate_transformation_mode", "half_pixel");
  const bool half_pixel = coords == "half_pixel" || coords == "pytorch_half_pixel";
  Interpolation interpolation = Interpolation::nearest;
  if (mode == "nearest") {
    const std::string rounding = old ? "floor" : attr_string("nearest_mode", "round_prefer_floor");
    const bool repeat = (coords == "asymmetric" && rounding == "floor") ||
                        (coords == "tf_half_pixel_for_nn" && rounding == "floor") ||
                        (half_pixel && (rounding == "round_prefer_floor" || rounding == "round_prefer_ceil"));
    if (!repeat && size != Size2(1, 1))
      fail("nearest with coordinate_transformation_mode '" + coords + "' and nearest_mode '" + rounding +
           "' does not repeat each pixel; Lamina's UpSampling2D does (asymmetric with floor, or half_pixel with "
           "round_prefer_floor / round_prefer_ceil)");
  } else if (mode == "linear" || mode == "bilinear") {
    if (!half_pixel && size != Size2(1, 1))
      fail("linear with coordinate_transformation_mode '" + coords + "' is not supported; Lamina's bilinear "
           "UpSampling2D uses half_pixel centers (Keras, tf.image.resize, torch's align_corners=False)");
    interpolation = Interpolation::bilinear;
  } else {
    fail("mode '" + mode + "' is not supported (nearest or linear)");
  }
  Planned& p = plan("UpSampling2D");
  p.factors = size;
  p.interpolation = interpolation;
  for (int64_t a = 1; a < 4; ++a) flow_.shape[static_cast<size_t>(a - 1)] *= static_cast<int64_t>(factors[static_cast<size_t>(a)]);
  advance(n);
}

// Pad, constant zeros: on H and W a ZeroPadding2D; zero pads everywhere, nothing.
void Importer::pad(const Node& n) {
  if (attr_string("mode", "constant") != "constant") fail("mode '" + attr_string("mode", "") + "' is not supported");
  const std::vector<int64_t> pads = opset() < 11 ? attr_ints("pads") : ints_of(constant(1, "pads"), "pads");
  const float value = opset() < 11 ? attr_float("value", 0.f) : [&] {
    const Const* c = optional_constant(2, "constant_value");
    return c && c->is_float && !c->f.empty() ? c->f[0] : 0.f;
  }();
  if (opset() >= 18 && optional_constant(3, "axes")) fail("the 'axes' input (opset 18) is not supported");
  if (std::all_of(pads.begin(), pads.end(), [](int64_t p) { return p == 0; })) return advance(n);
  if (value != 0.f)
    fail("pads with the constant " + std::to_string(value) + "; Lamina's ZeroPadding2D pads with zeros");
  if (pads.size() != 8) fail("pads " + dims_text(pads) + " on " + act_text(flow_.shape) + ": only images (N, C, H, W) can be padded");
  Margins2 m;
  for (int64_t a = 0; a < 4; ++a) {
    const int64_t before = pads[static_cast<size_t>(a)], after = pads[static_cast<size_t>(a + 4)];
    if (before < 0 || after < 0 || before > kMaxDim || after > kMaxDim)
      fail("pads " + dims_text(pads) + " must be non-negative (a negative pad crops; use Slice)");
    const int lam = image_axis(a, "Pad");
    if (lam == 1) m.top = before, m.bottom = after;
    else if (lam == 2) m.left = before, m.right = after;
    else if (before || after)
      fail("pads " + dims_text(pads) + " pad the " + (lam == 0 ? "batch" : "channel") + " axis; Lamina's "
           "ZeroPadding2D pads H and W only");
    if (a > 0) flow_.shape[static_cast<size_t>(a - 1)] += before + after;
  }
  plan("ZeroPadding2D").margins = m;
  advance(n);
}

// Slice with step 1 of H and W (every other axis whole) as Cropping2D.
void Importer::slice(const Node& n) {
  image_axis(0, "Slice");
  std::vector<int64_t> starts, ends, axes, steps;
  if (opset() < 10) {
    starts = attr_ints("starts"), ends = attr_ints("ends"), axes = attr_ints("axes");
  } else {
    starts = ints_of(constant(1, "starts"), "starts");
    ends = ints_of(constant(2, "ends"), "ends");
    if (const Const* c = optional_constant(3, "axes")) axes = ints_of(*c, "axes");
    if (const Const* c = optional_constant(4, "steps")) steps = ints_of(*c, "steps");
  }
  if (axes.empty())
    for (int64_t a = 0; a < static_cast<int64_t>(starts.size()); ++a) axes.push_back(a);
  if (starts.size() != ends.size() || axes.size() != starts.size() || (!steps.empty() && steps.size() != starts.size()))
    fail("starts " + dims_text(starts) + ", ends " + dims_text(ends) + " and axes " + dims_text(axes) +
         " must have one entry per sliced axis");
  Margins2 m;
  std::vector<int64_t> shape = flow_.shape;
  for (size_t k = 0; k < axes.size(); ++k) {
    if (!steps.empty() && steps[k] != 1) fail("steps " + dims_text(steps) + " are not supported (only 1)");
    const int lam = image_axis(axes[k], "Slice");
    const int64_t a = axes[k] < 0 ? axes[k] + 4 : axes[k];
    if (a == 0) {
      // The batch size is not known here: only "from the start to the end" keeps every sample.
      if ((starts[k] != 0 && starts[k] > -kMaxDim) || ends[k] < kMaxDim) fail("slices the batch axis; not supported");
      continue;
    }
    const int64_t dim = flow_.shape[static_cast<size_t>(a - 1)];
    // ONNX's clamping: negative counts from the end, then into [0, dim].
    auto clamp = [dim](int64_t v) { return std::clamp<int64_t>(v < 0 ? v + dim : v, 0, dim); };
    const int64_t begin = clamp(starts[k]), end = clamp(ends[k]);
    if (end <= begin) fail("slices nothing of axis " + std::to_string(a) + " (" + std::to_string(dim) + " long)");
    if (lam == 1) m.top = begin, m.bottom = dim - end;
    else if (lam == 2) m.left = begin, m.right = dim - end;
    else if (begin != 0 || end != dim)
      fail("slices the channel axis; Lamina's Cropping2D crops H and W only");
    shape[static_cast<size_t>(a - 1)] = end - begin;
  }
  if (m == Margins2{}) return advance(n);
  plan("Cropping2D").margins = m;
  flow_.shape = shape;
  advance(n);
}

}  // namespace lamina::onnx::detail
