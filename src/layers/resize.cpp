// UpSampling2D, ZeroPadding2D and Cropping2D (include/lamina/layers/resize.hpp): one op each
// (src/ops/resize.cpp), Keras 3's configs both ways, and their ONNX nodes (Resize, Pad, Slice).
// N = batch, H, W = spatial, C = channels.
#include "lamina/layers/resize.hpp"

#include <algorithm>
#include <cctype>

#include "kernels/window.hpp"
#include "layers/keras_config.hpp"
#include "onnx/graph_writer.hpp"

namespace lamina::layers {

namespace {

const char* interpolation_name(Interpolation i) { return i == Interpolation::bilinear ? "bilinear" : "nearest"; }

Json margins_json(const Margins2& m) {
  return Json::array({Json::array({m.top, m.bottom}), Json::array({m.left, m.right})});
}

// Keras' padding / cropping: n (every side), [h, w] (top = bottom = h, left = right = w) or
// [[top, bottom], [left, right]] (each of the two may also be one number); entries >= 0.
Margins2 margins_from(const Json& c, const char* key, const std::string& at, Margins2 fallback) {
  if (!c.contains(key) || c[key].is_null()) return fallback;
  const Json& v = c[key];
  auto bad = [&]() -> ValueError {
    return ValueError(at + ": '" + key + "' must be a non-negative integer, [height, width] or [[top, bottom], [left, "
                      "right]], got " + v.dump());
  };
  auto count = [&](const Json& e) {
    if (!e.is_number_integer() || e.get<int64_t>() < 0 || e.get<int64_t>() > kernels::kMaxWindow) throw bad();
    return e.get<int64_t>();
  };
  auto pair = [&](const Json& e) -> std::pair<int64_t, int64_t> {
    if (e.is_number()) return {count(e), count(e)};
    if (e.is_array() && e.size() == 2) return {count(e[0]), count(e[1])};
    throw bad();
  };
  if (v.is_number()) {
    const int64_t n = count(v);
    return {n, n, n, n};
  }
  if (!v.is_array() || v.size() != 2) throw bad();
  const auto [top, bottom] = pair(v[0]);
  const auto [left, right] = pair(v[1]);
  return {top, bottom, left, right};
}

void check_margins(const Margins2& m, const std::string& who, const char* what) {
  if (std::min({m.top, m.bottom, m.left, m.right}) < 0)
    throw ValueError(who + ": " + what + " must not be negative, got ((" + std::to_string(m.top) + ", " +
                     std::to_string(m.bottom) + "), (" + std::to_string(m.left) + ", " + std::to_string(m.right) + "))");
}

}  // namespace

// --- UpSampling2D ------------------------------------------------------------------------------------

UpSampling2D::UpSampling2D(Options options) : options_(std::move(options)) {
  kernels::check_window("UpSampling2D '" + options_.name + "'", "size", options_.size, Size2(1, 1));
  take_common(options_);
}

Shape UpSampling2D::output_shape(const Shape& in) const {
  if (in.rank() != 3) shape_error("images (batch, H, W, C)", in);
  return Shape{in[0] * options_.size.h, in[1] * options_.size.w, in[2]};
}

Tensor UpSampling2D::call(const Tensor& x, bool) {
  if (x.rank() != 4) shape_error("(batch, H, W, C)", x.shape());
  return upsample2d(x, options_.size, options_.interpolation);
}

Json UpSampling2D::config() const {
  Json j = Layer::config();
  j["size"] = detail::size2_json(options_.size);
  j["data_format"] = "channels_last";
  j["interpolation"] = interpolation_name(options_.interpolation);
  return j;
}

std::shared_ptr<Layer> UpSampling2D::from_config(const Json& c) {
  const std::string at = detail::where("UpSampling2D", c);
  detail::require_channels_last(c, at);
  Options o;
  o.size = detail::size2_from(c, "size", at, 2);
  if (c.contains("interpolation") && !c["interpolation"].is_null()) {
    const Json& v = c["interpolation"];
    std::string name = v.is_string() ? v.get<std::string>() : v.dump();
    std::transform(name.begin(), name.end(), name.begin(), [](unsigned char ch) { return std::tolower(ch); });  // Keras lowers it
    if (name == "bilinear") o.interpolation = Interpolation::bilinear;
    else if (name != "nearest")
      throw ValueError(at + ": interpolation '" + name + "' is not supported by Lamina (nearest or bilinear; Keras' "
                       "bicubic, lanczos3 and lanczos5 are not implemented)");
  }
  detail::read_common(o, c);
  return std::make_shared<UpSampling2D>(o);
}

// Resize (opset 13) with scales (1, 1, size.h, size.w) on NCHW. Nearest: source x = floor(out /
// scale) (asymmetric, floor), the repeat. Bilinear: half_pixel, (out + 0.5) / scale - 0.5,
// clamped at the border as ONNX's linear does.
void UpSampling2D::export_onnx(onnx::GraphWriter& g) const {
  using W = onnx::GraphWriter;
  g.to_channels_first(name());
  onnx::Value& v = g.value();
  const float scales[4] = {1.f, 1.f, static_cast<float>(options_.size.h), static_cast<float>(options_.size.w)};
  const std::string s = g.initializer(name() + "/scales", {4}, scales);
  std::vector<onnx::ProtoWriter> attrs;
  if (options_.interpolation == Interpolation::bilinear) {
    attrs.push_back(W::attr_string("mode", "linear"));
    attrs.push_back(W::attr_string("coordinate_transformation_mode", "half_pixel"));
  } else {
    attrs.push_back(W::attr_string("mode", "nearest"));
    attrs.push_back(W::attr_string("coordinate_transformation_mode", "asymmetric"));
    attrs.push_back(W::attr_string("nearest_mode", "floor"));
  }
  v.name = g.node("Resize", name(), {v.name, "", s}, std::move(attrs));  // no roi
}

// --- ZeroPadding2D -----------------------------------------------------------------------------------

ZeroPadding2D::ZeroPadding2D(Options options) : options_(std::move(options)) {
  check_margins(options_.padding, "ZeroPadding2D '" + options_.name + "'", "padding");
  take_common(options_);
}

Shape ZeroPadding2D::output_shape(const Shape& in) const {
  if (in.rank() != 3) shape_error("images (batch, H, W, C)", in);
  const Margins2& p = options_.padding;
  return Shape{p.top + in[0] + p.bottom, p.left + in[1] + p.right, in[2]};
}

Tensor ZeroPadding2D::call(const Tensor& x, bool) {
  if (x.rank() != 4) shape_error("(batch, H, W, C)", x.shape());
  return zero_pad2d(x, options_.padding);
}

Json ZeroPadding2D::config() const {
  Json j = Layer::config();
  j["padding"] = margins_json(options_.padding);
  j["data_format"] = "channels_last";
  return j;
}

std::shared_ptr<Layer> ZeroPadding2D::from_config(const Json& c) {
  const std::string at = detail::where("ZeroPadding2D", c);
  detail::require_channels_last(c, at);
  Options o;
  o.padding = margins_from(c, "padding", at, o.padding);
  detail::read_common(o, c);
  return std::make_shared<ZeroPadding2D>(o);
}

// Pad (opset 13: pads as an input, begins of every axis then ends), constant 0, in whichever
// layout the image is held: no Transpose of its own.
void ZeroPadding2D::export_onnx(onnx::GraphWriter& g) const {
  onnx::Value& v = g.value();
  const Margins2& p = options_.padding;
  std::vector<int64_t> pads(8, 0);
  pads[static_cast<size_t>(g.onnx_axis(0))] = p.top;
  pads[static_cast<size_t>(g.onnx_axis(0)) + 4] = p.bottom;
  pads[static_cast<size_t>(g.onnx_axis(1))] = p.left;
  pads[static_cast<size_t>(g.onnx_axis(1)) + 4] = p.right;
  v.name = g.node("Pad", name(), {v.name, g.int64_initializer(name() + "/pads", pads)},
                  {onnx::GraphWriter::attr_string("mode", "constant")});
}

// --- Cropping2D --------------------------------------------------------------------------------------

Cropping2D::Cropping2D(Options options) : options_(std::move(options)) {
  check_margins(options_.cropping, "Cropping2D '" + options_.name + "'", "cropping");
  take_common(options_);
}

Shape Cropping2D::output_shape(const Shape& in) const {
  if (in.rank() != 3) shape_error("images (batch, H, W, C)", in);
  const Margins2& m = options_.cropping;
  if (m.top + m.bottom >= in[0] || m.left + m.right >= in[1])
    shape_error("images larger than the cropping ((" + std::to_string(m.top) + ", " + std::to_string(m.bottom) +
                    "), (" + std::to_string(m.left) + ", " + std::to_string(m.right) + ")): more than " +
                    std::to_string(m.top + m.bottom) + " rows and " + std::to_string(m.left + m.right) + " columns",
                in, "crop less, or check the input size");
  return Shape{in[0] - m.top - m.bottom, in[1] - m.left - m.right, in[2]};
}

Tensor Cropping2D::call(const Tensor& x, bool) {
  if (x.rank() != 4) shape_error("(batch, H, W, C)", x.shape());
  output_shape(Shape{x.dim(1), x.dim(2), x.dim(3)});  // the same message as at build
  return crop2d(x, options_.cropping);
}

Json Cropping2D::config() const {
  Json j = Layer::config();
  j["cropping"] = margins_json(options_.cropping);
  j["data_format"] = "channels_last";
  return j;
}

std::shared_ptr<Layer> Cropping2D::from_config(const Json& c) {
  const std::string at = detail::where("Cropping2D", c);
  detail::require_channels_last(c, at);
  Options o;
  o.cropping = margins_from(c, "cropping", at, o.cropping);
  detail::read_common(o, c);
  return std::make_shared<Cropping2D>(o);
}

// Slice over H and W with explicit ends (the image size is known), in whichever layout it is held.
void Cropping2D::export_onnx(onnx::GraphWriter& g) const {
  onnx::Value& v = g.value();
  const Margins2& m = options_.cropping;
  const int64_t h = v.shape[0], w = v.shape[1];
  const std::string n = name();
  v.name = g.node("Slice", n,
                  {v.name, g.int64_initializer(n + "/starts", {m.top, m.left}),
                   g.int64_initializer(n + "/ends", {h - m.bottom, w - m.right}),
                   g.int64_initializer(n + "/axes", {g.onnx_axis(0), g.onnx_axis(1)})});
}

}  // namespace lamina::layers
