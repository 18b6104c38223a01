// Resizing images, Keras' UpSampling2D, ZeroPadding2D and Cropping2D (the layers a GAN or VAE
// generator grows its images with). Images are (batch, H, W, C), channels last (Keras'
// data_format "channels_last"; channels_first is refused).
//
//   model.add(layers::UpSampling2D({.size = 2, .interpolation = Interpolation::bilinear}));  // 7x7 -> 14x14
//   model.add(layers::ZeroPadding2D({.padding = {.top = 1, .bottom = 1, .left = 2, .right = 2}}));
//   model.add(layers::Cropping2D({.cropping = {.top = 2, .bottom = 2}}));  // 32 rows -> 28
#pragma once

#include "lamina/layers.hpp"

namespace lamina::layers {

// (batch, H, W, C) -> (batch, H size.h, W size.w, C): each pixel repeated (nearest, Keras'
// default) or bilinear with half-pixel centers (tf.image.resize; torch's F.interpolate with
// align_corners=False). Keras' bicubic and lanczos interpolations are refused by name.
class UpSampling2D : public Layer {
 public:
  struct Options {
    Size2 size = 2;
    Interpolation interpolation = Interpolation::nearest;
    std::optional<Shape> input_shape{};  // on a first layer: (H, W, C)
    std::string name{};
  };
  UpSampling2D() : UpSampling2D(Options{}) {}
  explicit UpSampling2D(Options options);
  std::string class_name() const override { return "UpSampling2D"; }
  static std::shared_ptr<Layer> from_config(const Json& config);
  // Resize on the channels-first image: nearest with asymmetric coordinates and floor (whole
  // factors: the repeat), bilinear as linear with half_pixel.
  void export_onnx(onnx::GraphWriter& graph) const override;
  Tensor call(const Tensor& x, bool training) override;
  Shape output_shape(const Shape& input_shape) const override;
  Json config() const override;
  const Options& options() const { return options_; }

 private:
  Options options_;
};

// (batch, H, W, C) -> (batch, top + H + bottom, left + W + right, C), the new rows and columns
// zero. Keras' default padding is 1 on every side.
class ZeroPadding2D : public Layer {
 public:
  struct Options {
    Margins2 padding{.top = 1, .bottom = 1, .left = 1, .right = 1};
    std::optional<Shape> input_shape{};
    std::string name{};
  };
  ZeroPadding2D() : ZeroPadding2D(Options{}) {}
  explicit ZeroPadding2D(Options options);
  std::string class_name() const override { return "ZeroPadding2D"; }
  static std::shared_ptr<Layer> from_config(const Json& config);
  void export_onnx(onnx::GraphWriter& graph) const override;  // Pad (constant 0)
  Tensor call(const Tensor& x, bool training) override;
  Shape output_shape(const Shape& input_shape) const override;
  Json config() const override;
  const Options& options() const { return options_; }

 private:
  Options options_;
};

// (batch, H, W, C) -> (batch, H - top - bottom, W - left - right, C); at least one row and one
// column must remain (Keras' rule). Keras' default crops nothing.
class Cropping2D : public Layer {
 public:
  struct Options {
    Margins2 cropping{};
    std::optional<Shape> input_shape{};
    std::string name{};
  };
  Cropping2D() : Cropping2D(Options{}) {}
  explicit Cropping2D(Options options);
  std::string class_name() const override { return "Cropping2D"; }
  static std::shared_ptr<Layer> from_config(const Json& config);
  void export_onnx(onnx::GraphWriter& graph) const override;  // Slice over H and W
  Tensor call(const Tensor& x, bool training) override;
  Shape output_shape(const Shape& input_shape) const override;
  Json config() const override;
  const Options& options() const { return options_; }

 private:
  Options options_;
};

}  // namespace lamina::layers
