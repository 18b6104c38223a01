// Leaf gradients sent elsewhere on one thread (internal to the library). While a
// GradientRedirect::Scope is alive on a thread, every backward pass run on that thread writes the
// gradient of each of the redirect's leaves into the redirect's own buffer for it, not into the
// leaf's grad(); other tensors are untouched. Two threads can then differentiate two shares of a
// batch through the same weights at once (model/batch_split.hpp): one into the weights' grad(),
// the other into a redirect, added in after.
#pragma once

#include <vector>

#include "lamina/tensor.hpp"

namespace lamina::detail {

// impl's gradient (+)= g, as backward adds into a tensor: g's copy when impl has no gradient
// yet or a stale one (zero_grad's lazy zero), else the sum. How a redirect's gradients join the
// weights' own.
void accumulate(TensorImpl& impl, const Tensor& g);

class GradientRedirect {
 public:
  explicit GradientRedirect(const std::vector<Tensor>& leaves);
  // Starts a new set of gradients: the next backward writes each buffer afresh.
  void clear();
  // The gradient of leaf i since clear(), or undefined when no backward reached it.
  Tensor grad(size_t i) const { return slots_[i].written ? slots_[i].grad : Tensor(); }

  // The buffer of `leaf` (shape given), or null when it is not one of the leaves; accumulate:
  // whether it already holds a gradient to add to. Marks it written.
  struct Out {
    Tensor* grad;
    bool accumulate;
  };
  Out take(const TensorImpl* leaf, const Shape& shape);

  // Installs the redirect on the calling thread for its lifetime (they nest).
  class Scope {
   public:
    explicit Scope(GradientRedirect& r);
    ~Scope();
    Scope(const Scope&) = delete;
    Scope& operator=(const Scope&) = delete;

   private:
    GradientRedirect* previous_;
  };
  // The calling thread's innermost redirect, or null.
  static GradientRedirect* current();

 private:
  struct Slot {
    const TensorImpl* leaf;
    Tensor grad;
    bool written = false;
  };
  std::vector<Slot> slots_;
};

}  // namespace lamina::detail
