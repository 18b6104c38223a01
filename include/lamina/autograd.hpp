// Define-by-run automatic differentiation. Each op that runs with grad mode on and an input
// that requires grad records a Node on its output: the inputs and a backward function.
// Tensor::backward() walks the graph from the output in reverse topological order; each
// backward *adds* into its inputs' gradients, so fan-out and reuse need no special case.
// Gradients reach every tensor that requires grad: parameters and inputs alike (saliency).
//
//   Tensor w = Tensor::randn({3, 2}).requires_grad_();
//   Tensor loss = mean(square(matmul(x, w)));
//   loss.backward();                         // w.grad() now holds dloss/dw
//   { NoGradGuard no_grad; auto y = matmul(x, w); }   // inference: no graph
#pragma once

#include <functional>
#include <vector>

#include "lamina/tensor.hpp"

namespace lamina {

// What a backward function sees: the op's output y, the incoming gradient dy (shape of y),
// the saved inputs, and a gradient buffer per input to add into.
class BackwardContext {
 public:
  BackwardContext(Node& node, const Tensor& output, const Tensor& dy)
      : node_(node), output_(output), dy_(dy) {}
  const Tensor& output() const { return output_; }
  const Tensor& dy() const { return dy_; }
  const Tensor& input(size_t i) const;
  bool needs(size_t i) const;  // input i requires grad
  // dL/d(input i): zero-filled on first use; backward functions add into it.
  Tensor& dx(size_t i);
  // The same buffer for kernels that can either write or add (a GEMM's beta): `accumulate` is
  // false when the buffer is new or logically zero, so the kernel overwrites it and no one pays
  // for zeroing it first.
  struct GradOut {
    float* data;
    bool accumulate;
  };
  GradOut dx_out(size_t i);

 private:
  Node& node_;
  const Tensor& output_;
  const Tensor& dy_;
};

using BackwardFn = std::function<void(BackwardContext&)>;

struct Node {
  const char* op = "";        // for error messages
  std::vector<Tensor> inputs;  // edges of the graph (and the values backward needs)
  BackwardFn backward;
  bool released = false;       // backward ran and freed the saved inputs
};

// Connects y to its inputs if grad mode is on and some input requires grad; otherwise does
// nothing. Called by every differentiable op right after its forward.
void record(const char* op, Tensor& y, std::vector<Tensor> inputs, BackwardFn backward);

// The gradients of y with respect to each of xs, as torch.autograd.grad(y, xs): returned, not
// added to anyone's grad() (every tensor's grad() is as it was before the call). y must have one
// element unless dy (y's shape) is given. xs may be leaves or intermediate results of y's
// graph; one that y does not depend on gets zeros. The graph is freed afterwards, as backward does.
//   auto [dw, db] = grad(loss, {w, b});   // then optimizer.apply_gradients({{dw, w}, {db, b}})
std::vector<Tensor> grad(const Tensor& y, const std::vector<Tensor>& xs, const Tensor& dy = Tensor());

// y.backward() (y of one element), calling on_ready for each leaf that requires grad as soon as
// its gradient is complete, that is when no node left to run adds to it. Data-parallel training
// (distributed.hpp) starts sending the last layers' gradients while backward computes the first.
using GradReadyHook = std::function<void(const TensorImpl& leaf)>;
void backward(const Tensor& y, const GradReadyHook& on_ready);

// Whether ops record graphs (thread-local; on by default).
bool grad_enabled();

// Turns recording off for its scope, like torch::NoGradGuard / torch.no_grad().
class NoGradGuard {
 public:
  NoGradGuard();
  ~NoGradGuard();
  NoGradGuard(const NoGradGuard&) = delete;
  NoGradGuard& operator=(const NoGradGuard&) = delete;

 private:
  bool previous_;
};

}  // namespace lamina
