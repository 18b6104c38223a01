// The merge layers of Keras' Functional API: Add, Subtract, Multiply, Average, Maximum, Minimum
// and Concatenate. Each takes a list of symbolic tensors and returns one:
//
//   KerasTensor y = layers::Add()({x, shortcut});          // a residual connection
//   KerasTensor h = layers::Concatenate()({a, b});         // along the last axis
//   KerasTensor d = layers::Subtract()({a, b});            // exactly two inputs
#pragma once

#include "lamina/layers.hpp"

namespace lamina::layers {

// What the element-wise merges share: two or more inputs of one shape in, that shape out, no
// weights. Each says only its class name, how it combines the inputs and its ONNX op. A merge
// has no single-input form: its call / output_shape throw.
class Merge : public Layer {
 public:
  struct Options {
    std::string name{};
  };
  Shape infer_shape(std::span<const Shape> input_shapes) const override;
  std::vector<WeightSpec> weight_specs_for(std::span<const Shape> input_shapes) const override;
  void build_for(std::span<const Shape> input_shapes, Generator& gen) override;
  Tensor forward(std::span<const Tensor> inputs, bool training) override;
  // Keras: a step is real where it is real in every input that has a mask.
  bool supports_masking() const override { return true; }
  Tensor compute_mask(std::span<const Tensor> inputs, std::span<const Tensor> masks) const override;
  Tensor call(const Tensor& x, bool training) override;
  Shape output_shape(const Shape& input_shape) const override;
  void export_onnx(onnx::GraphWriter& graph) const override;

 protected:
  explicit Merge(Options options);
  // How many inputs the class takes: at least min_inputs, at most max_inputs (0: any number).
  virtual size_t min_inputs() const { return 2; }
  virtual size_t max_inputs() const { return 0; }
  virtual Tensor merge(std::span<const Tensor> inputs) const = 0;
  // The ONNX op that combines the inputs ("Sum", "Sub", "Mul", "Mean", "Max", "Min").
  virtual const char* onnx_op() const = 0;
  // A ValueError or ShapeError that starts with "Add 'add': ".
  std::string where() const;
};

class Add : public Merge {
 public:
  explicit Add(Options options = {}) : Merge(std::move(options)) {}
  std::string class_name() const override { return "Add"; }
  static std::shared_ptr<Layer> from_config(const Json& config);

 protected:
  Tensor merge(std::span<const Tensor> inputs) const override;
  const char* onnx_op() const override { return "Sum"; }
};

// inputs[0] - inputs[1]: exactly two inputs.
class Subtract : public Merge {
 public:
  explicit Subtract(Options options = {}) : Merge(std::move(options)) {}
  std::string class_name() const override { return "Subtract"; }
  static std::shared_ptr<Layer> from_config(const Json& config);

 protected:
  size_t max_inputs() const override { return 2; }
  Tensor merge(std::span<const Tensor> inputs) const override;
  const char* onnx_op() const override { return "Sub"; }
};

class Multiply : public Merge {
 public:
  explicit Multiply(Options options = {}) : Merge(std::move(options)) {}
  std::string class_name() const override { return "Multiply"; }
  static std::shared_ptr<Layer> from_config(const Json& config);

 protected:
  Tensor merge(std::span<const Tensor> inputs) const override;
  const char* onnx_op() const override { return "Mul"; }
};

class Average : public Merge {
 public:
  explicit Average(Options options = {}) : Merge(std::move(options)) {}
  std::string class_name() const override { return "Average"; }
  static std::shared_ptr<Layer> from_config(const Json& config);

 protected:
  Tensor merge(std::span<const Tensor> inputs) const override;
  const char* onnx_op() const override { return "Mean"; }
};

// The element-wise maximum; where inputs tie, the gradient is split as PyTorch's maximum does.
class Maximum : public Merge {
 public:
  explicit Maximum(Options options = {}) : Merge(std::move(options)) {}
  std::string class_name() const override { return "Maximum"; }
  static std::shared_ptr<Layer> from_config(const Json& config);

 protected:
  Tensor merge(std::span<const Tensor> inputs) const override;
  const char* onnx_op() const override { return "Max"; }
};

class Minimum : public Merge {
 public:
  explicit Minimum(Options options = {}) : Merge(std::move(options)) {}
  std::string class_name() const override { return "Minimum"; }
  static std::shared_ptr<Layer> from_config(const Json& config);

 protected:
  Tensor merge(std::span<const Tensor> inputs) const override;
  const char* onnx_op() const override { return "Min"; }
};

// Joins its inputs along `axis` (Keras counts the batch axis: -1, the default, is the last);
// every other axis must match.
class Concatenate : public Merge {
 public:
  struct Options {
    int64_t axis = -1;
    std::string name{};
  };
  Concatenate() : Concatenate(Options{}) {}
  explicit Concatenate(Options options);
  std::string class_name() const override { return "Concatenate"; }
  static std::shared_ptr<Layer> from_config(const Json& config);
  Shape infer_shape(std::span<const Shape> input_shapes) const override;
  Json config() const override;
  void export_onnx(onnx::GraphWriter& graph) const override;
  int64_t axis() const { return axis_; }

 protected:
  Tensor merge(std::span<const Tensor> inputs) const override;
  const char* onnx_op() const override { return "Concat"; }

 private:
  // The per-sample axis (no batch) that `axis_` names for inputs of per-sample rank `rank`.
  int64_t sample_axis(int64_t rank) const;
  int64_t axis_;
};

}  // namespace lamina::layers
