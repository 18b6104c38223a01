// Pooling layers on channels-last images: MaxPooling2D, AveragePooling2D (windows of
// pool_size, strides defaulting to pool_size, as Keras' strides=None) and
// GlobalAveragePooling2D. N = batch, H, W = spatial, C = channels.
#include "kernels/window.hpp"
#include "onnx/graph_writer.hpp"
#include "lamina/layers.hpp"
#include "layers/keras_config.hpp"

namespace lamina::layers {

namespace {

Size2 strides_of(const Pooling2DOptions& o) { return o.strides.value_or(o.pool_size); }

// (H, W, C) -> (OH, OW, C); nullopt when the input is not an image or the window does not fit.
std::optional<Shape> pooled(const Pooling2DOptions& o, const Shape& in) {
  if (in.rank() != 3) return std::nullopt;
  const kernels::Geometry2d g =
      kernels::window_geometry(1, in[0], in[1], in[2], in[2], o.pool_size, strides_of(o), o.padding);
  if (g.oh < 1 || g.ow < 1) return std::nullopt;
  return Shape{g.oh, g.ow, in[2]};
}

Json pooling_config(Json j, const Pooling2DOptions& o) {
  j["pool_size"] = detail::size2_json(o.pool_size);
  j["padding"] = detail::padding_name(o.padding);
  j["strides"] = detail::size2_json(strides_of(o));
  j["data_format"] = "channels_last";
  return j;
}

std::string expected(const Pooling2DOptions& o) {
  return "images (batch, H, W, C) of at least " + std::to_string(o.pool_size.h) + "x" + std::to_string(o.pool_size.w);
}

}  // namespace

Pooling2D::Pooling2D(const char* class_name, Options options) : options_(std::move(options)) {
  kernels::check_window(class_name, "pool_size", options_.pool_size, strides_of(options_));
  take_common(options_);
}

Shape Pooling2D::output_shape(const Shape& in) const {
  if (auto out = pooled(options_, in)) return *out;
  shape_error(expected(options_), in);
}

Json Pooling2D::config() const { return pooling_config(Layer::config(), options_); }

Tensor MaxPooling2D::call(const Tensor& x, bool) {
  if (x.rank() != 4) shape_error("(batch, H, W, C)", x.shape());
  return max_pool2d(x, options_.pool_size, strides_of(options_), options_.padding);
}

Tensor AveragePooling2D::call(const Tensor& x, bool) {
  if (x.rank() != 4) shape_error("(batch, H, W, C)", x.shape());
  return avg_pool2d(x, options_.pool_size, strides_of(options_), options_.padding);
}

GlobalAveragePooling2D::GlobalAveragePooling2D(Options options) : options_(std::move(options)) {
  take_common(options_);
}

Shape GlobalAveragePooling2D::output_shape(const Shape& in) const {
  if (in.rank() != 3) shape_error("(batch, H, W, C)", in);
  return options_.keepdims ? Shape{1, 1, in[2]} : Shape{in[2]};
}

Tensor GlobalAveragePooling2D::call(const Tensor& x, bool) {
  if (x.rank() != 4) shape_error("(batch, H, W, C)", x.shape());
  const Tensor y = global_avg_pool2d(x);
  return options_.keepdims ? reshape(y, {x.dim(0), 1, 1, x.dim(3)}) : y;
}

Json GlobalAveragePooling2D::config() const {
  Json j = Layer::config();
  j["data_format"] = "channels_last";
  j["keepdims"] = options_.keepdims;
  return j;
}

namespace {

template <class L>
std::shared_ptr<Layer> pooling_from(const Json& c, const char* cls) {
  const std::string at = detail::where(cls, c);
  detail::require_channels_last(c, at);
  Pooling2DOptions o;
  o.pool_size = detail::size2_from(c, "pool_size", at, 2);
  if (c.contains("strides") && !c["strides"].is_null()) o.strides = detail::size2_from(c, "strides", at, 1);
  o.padding = detail::padding_from(c, at);
  detail::read_common(o, c);
  return std::make_shared<L>(o);
}

}  // namespace

std::shared_ptr<Layer> MaxPooling2D::from_config(const Json& c) { return pooling_from<MaxPooling2D>(c, "MaxPooling2D"); }

std::shared_ptr<Layer> AveragePooling2D::from_config(const Json& c) {
  return pooling_from<AveragePooling2D>(c, "AveragePooling2D");
}

// MaxPool / AveragePool on the channels-first image; the average counts only cells inside the
// image (count_include_pad=0), as Keras' AveragePooling2D with padding='same'.
void Pooling2D::export_onnx(onnx::GraphWriter& g) const {
  using W = onnx::GraphWriter;
  const bool max = std::string_view(onnx_op()) == "MaxPool";
  g.to_channels_first(name());
  const auto& o = options_;
  const Size2 strides = strides_of(o);
  onnx::Value& v = g.value();
  std::vector<onnx::ProtoWriter> attrs{W::attr_ints("kernel_shape", {o.pool_size.h, o.pool_size.w}),
                                       W::attr_ints("strides", {strides.h, strides.w}),
                                       W::attr_ints("pads", W::window_pads(v.shape, o.pool_size, strides, o.padding))};
  if (!max) attrs.push_back(W::attr_int("count_include_pad", 0));
  v.name = g.node(onnx_op(), name(), {v.name}, std::move(attrs));
}

std::shared_ptr<Layer> GlobalAveragePooling2D::from_config(const Json& c) {
  detail::require_channels_last(c, detail::where("GlobalAveragePooling2D", c));
  return std::make_shared<GlobalAveragePooling2D>(Options{
      .keepdims = c.value("keepdims", false), .input_shape = input_shape_from_config(c), .name = detail::name_of(c)});
}

// GlobalAveragePool gives (N, C, 1, 1); keepdims=false flattens it to (N, C).
void GlobalAveragePooling2D::export_onnx(onnx::GraphWriter& g) const {
  g.to_channels_first(name());
  onnx::Value& v = g.value();
  v.name = g.node("GlobalAveragePool", name(), {v.name});
  if (!options_.keepdims) {
    v.name = g.node("Flatten", name(), {v.name}, {onnx::GraphWriter::attr_int("axis", 1)});
    v.channels_first = false;
  }
}

}  // namespace lamina::layers
