// Shape and Tensor: float32, contiguous, row-major storage with reference semantics
// (copying a Tensor shares its storage, as in PyTorch). Autograd state lives beside the data
// (see autograd.hpp); the math lives in ops.hpp.
//
//   Tensor x = Tensor::randn({32, 784}, gen);      // seeded
//   Tensor w = Tensor::zeros({784, 10}).requires_grad_();
//   std::cout << x.shape() << "\n";                 // (32, 784)
#pragma once

#include <cstdint>
#include <initializer_list>
#include <iosfwd>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "lamina/error.hpp"

namespace lamina {

class Generator;
struct Node;
struct TensorImpl;

// The dimensions of a tensor. Rank 0 is a scalar (numel 1). A -1 stands for "infer" in
// reshape targets only.
class Shape {
 public:
  Shape() = default;
  Shape(std::initializer_list<int64_t> dims);
  explicit Shape(std::vector<int64_t> dims);

  int64_t rank() const { return static_cast<int64_t>(dims_.size()); }
  int64_t numel() const;
  // Dimension i; negative i counts from the end (-1 is the last). Throws on out of range.
  int64_t operator[](int64_t i) const;
  const std::vector<int64_t>& dims() const { return dims_; }
  auto begin() const { return dims_.begin(); }
  auto end() const { return dims_.end(); }
  bool operator==(const Shape& other) const = default;
  std::string str() const;  // "(32, 784)"; a scalar is "()"

 private:
  std::vector<int64_t> dims_;
};

std::ostream& operator<<(std::ostream& os, const Shape& shape);

class Tensor {
 public:
  Tensor() = default;  // undefined: defined() is false

  // --- creation ---------------------------------------------------------------------------
  static Tensor empty(const Shape& shape);  // uninitialised values
  static Tensor zeros(const Shape& shape);
  static Tensor ones(const Shape& shape);
  static Tensor full(const Shape& shape, float value);
  static Tensor scalar(float value);  // rank 0
  // Copies `values` (row-major); their count must equal shape.numel().
  static Tensor from(std::vector<float> values, const Shape& shape);
  static Tensor from(std::initializer_list<float> values);                          // 1-D
  // 2-D, row by row. A single column is ambiguous in C++ ({{1}, {2}}): write from({1, 2}, {2, 1}).
  static Tensor from(std::initializer_list<std::initializer_list<float>> rows);
  // Uniform in [low, high) and normal(mean, stddev), from a seeded generator
  // (the default generator, set by manual_seed, when none is given).
  static Tensor rand(const Shape& shape, Generator& gen, float low = 0.f, float high = 1.f);
  static Tensor randn(const Shape& shape, Generator& gen, float mean = 0.f, float stddev = 1.f);
  static Tensor rand(const Shape& shape, float low = 0.f, float high = 1.f);
  static Tensor randn(const Shape& shape, float mean = 0.f, float stddev = 1.f);

  // --- data ----------------------------------------------------------------------------------
  bool defined() const { return impl_ != nullptr; }
  const Shape& shape() const;
  int64_t rank() const { return shape().rank(); }
  int64_t numel() const { return shape().numel(); }
  int64_t dim(int64_t i) const { return shape()[i]; }
  float* data();
  const float* data() const;
  std::span<float> values() { return {data(), static_cast<size_t>(numel())}; }
  std::span<const float> values() const { return {data(), static_cast<size_t>(numel())}; }
  std::vector<float> to_vector() const;
  // Bounds-checked element access by multi-index: x.at({i, j}).
  float& at(std::initializer_list<int64_t> index);
  float at(std::initializer_list<int64_t> index) const;
  float item() const;  // the value of a one-element tensor
  Tensor& fill_(float value);
  Tensor clone() const;   // a deep copy, outside any autograd graph
  Tensor detach() const;  // the same storage, outside any autograd graph
  // A view with another shape (one dimension may be -1); differentiable. See ops.hpp.
  Tensor reshape(const Shape& shape) const;
  // x[begin:end:step] along `axis`, a differentiable copy: lamina::slice in ops.hpp.
  Tensor slice(int64_t axis, int64_t begin, int64_t end, int64_t step = 1) const;
  // shape.numel() elements of this tensor's storage from flat `offset` on, without a copy and
  // outside autograd: rows of a batch, a parameter inside a flat buffer.
  Tensor view(int64_t offset, const Shape& shape) const;

  // --- autograd (see autograd.hpp) -----------------------------------------------------------
  bool requires_grad() const;
  Tensor& requires_grad_(bool on = true);  // only for leaves (tensors made by the user)
  bool is_leaf() const;
  Tensor grad() const;  // the accumulated gradient; undefined before backward reaches it
  // Resets the gradient, as torch's zero_grad(set_to_none): drop it, or keep the buffer and
  // mark it zero without touching it (the next backward overwrites instead of adding).
  void zero_grad(bool set_to_none = true);
  void backward() const;                 // from a one-element tensor, seed 1
  void backward(const Tensor& dy) const;  // from any tensor, seed dy (same shape)

  TensorImpl* impl() const { return impl_.get(); }
  const std::shared_ptr<TensorImpl>& impl_ptr() const { return impl_; }
  explicit Tensor(std::shared_ptr<TensorImpl> impl) : impl_(std::move(impl)) {}

 private:
  TensorImpl& checked() const;
  std::shared_ptr<TensorImpl> impl_;
};

// Printed like PyTorch: tensor([[0.1000, 0.2000], ...]); large tensors are summarised.
std::ostream& operator<<(std::ostream& os, const Tensor& t);

// Internal: what a Tensor handle points to. Views (reshape) share `storage`.
struct TensorImpl {
  Shape shape;
  std::shared_ptr<float[]> storage;
  float* data = nullptr;
  bool requires_grad = false;    // set on leaves by the user, on results by autograd
  Tensor grad;                   // accumulated dL/dthis
  bool grad_stale = false;       // grad's buffer is kept but logically zero (zero_grad(false))
  std::shared_ptr<Node> grad_fn; // the op that made this tensor; null for leaves
};

}  // namespace lamina
