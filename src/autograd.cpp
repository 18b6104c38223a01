// The backward walk: topological order from the output, each node's backward once, gradients
// accumulated into inputs; intermediate gradients and saved inputs are freed as it goes.
#include "lamina/autograd.hpp"

#include <algorithm>
#include <unordered_map>
#include <unordered_set>
#include <utility>

#include "gradient_redirect.hpp"
#include "kernels/elementwise.hpp"

namespace lamina {

namespace {
thread_local bool g_grad_enabled = true;
thread_local detail::GradientRedirect* g_redirect = nullptr;
}  // namespace

namespace detail {

GradientRedirect::GradientRedirect(const std::vector<Tensor>& leaves) {
  for (const Tensor& t : leaves) slots_.push_back({t.impl(), Tensor()});
}

void GradientRedirect::clear() {
  for (Slot& s : slots_) s.written = false;
}

GradientRedirect::Out GradientRedirect::take(const TensorImpl* leaf, const Shape& shape) {
  for (Slot& s : slots_) {
    if (s.leaf != leaf) continue;
    if (!s.grad.defined()) s.grad = Tensor::empty(shape);
    const bool accumulate = s.written;
    s.written = true;
    return {&s.grad, accumulate};
  }
  return {nullptr, false};
}

void accumulate(TensorImpl& impl, const Tensor& g) {
  if (!impl.grad.defined()) {
    impl.grad = g.clone();
  } else if (impl.grad_stale) {
    std::copy(g.data(), g.data() + g.numel(), impl.grad.data());
  } else {
    kernels::add_into(g.data(), impl.grad.data(), impl.grad.numel());
  }
  impl.grad_stale = false;
}

GradientRedirect::Scope::Scope(GradientRedirect& r) : previous_(g_redirect) { g_redirect = &r; }
GradientRedirect::Scope::~Scope() { g_redirect = previous_; }
GradientRedirect* GradientRedirect::current() { return g_redirect; }

}  // namespace detail

bool grad_enabled() { return g_grad_enabled; }
NoGradGuard::NoGradGuard() : previous_(g_grad_enabled) { g_grad_enabled = false; }
NoGradGuard::~NoGradGuard() { g_grad_enabled = previous_; }

const Tensor& BackwardContext::input(size_t i) const { return node_.inputs.at(i); }
bool BackwardContext::needs(size_t i) const { return node_.inputs.at(i).requires_grad(); }

Tensor& BackwardContext::dx(size_t i) {
  TensorImpl& in = *node_.inputs.at(i).impl();
  if (g_redirect && !in.grad_fn)
    if (auto [grad, accumulate] = g_redirect->take(&in, in.shape); grad) {
      if (!accumulate) grad->fill_(0.f);
      return *grad;
    }
  if (!in.grad.defined()) {
    in.grad = Tensor::zeros(in.shape);
  } else if (in.grad_stale) {
    in.grad.fill_(0.f);
  }
  in.grad_stale = false;
  return in.grad;
}

BackwardContext::GradOut BackwardContext::dx_out(size_t i) {
  TensorImpl& in = *node_.inputs.at(i).impl();
  if (g_redirect && !in.grad_fn)
    if (auto [grad, accumulate] = g_redirect->take(&in, in.shape); grad) return {grad->data(), accumulate};
  bool accumulate = true;
  if (!in.grad.defined()) {
    in.grad = Tensor::empty(in.shape);
    accumulate = false;
  } else if (in.grad_stale) {
    accumulate = false;
  }
  in.grad_stale = false;
  return {in.grad.data(), accumulate};
}

void record(const char* op, Tensor& y, std::vector<Tensor> inputs, BackwardFn backward) {
  if (!g_grad_enabled) return;
  bool any = false;
  for (const Tensor& t : inputs) any = any || t.requires_grad();
  if (!any) return;
  auto node = std::make_shared<Node>();
  node->op = op;
  node->inputs = std::move(inputs);
  node->backward = std::move(backward);
  y.impl()->grad_fn = std::move(node);
  y.impl()->requires_grad = true;
}

namespace {

// Non-leaf tensors reachable from root, in post-order (inputs before the ops that use them).
std::vector<std::shared_ptr<TensorImpl>> topological_order(const std::shared_ptr<TensorImpl>& root) {
  std::vector<std::shared_ptr<TensorImpl>> order;
  std::unordered_set<const TensorImpl*> seen{root.get()};
  std::vector<std::pair<std::shared_ptr<TensorImpl>, size_t>> stack{{root, 0}};
  while (!stack.empty()) {
    auto& [impl, next] = stack.back();
    const Node& node = *impl->grad_fn;
    if (node.released)
      throw ValueError(std::string("backward: the graph through '") + node.op +
                       "' was already used by a backward pass and freed; recompute the forward "
                       "pass to differentiate again");
    if (next < node.inputs.size()) {
      const auto& child = node.inputs[next++].impl_ptr();
      if (child->grad_fn && seen.insert(child.get()).second) stack.emplace_back(child, 0);
      continue;
    }
    order.push_back(impl);
    stack.pop_back();
  }
  return order;
}

using detail::accumulate;

}  // namespace

void Tensor::backward() const {
  if (numel() != 1)
    throw ShapeError("backward: without an explicit gradient the output must have one element, "
                     "got shape " + shape().str() + " (reduce it with sum or mean, or pass dy)");
  backward(Tensor::ones(shape()));
}

namespace {

// The backward walk from y seeded with dy. Gradients reaching a tensor in `capture` (by impl) are
// kept in `captured` even when the tensor is an intermediate one.
void run_backward(const Tensor& y, const Tensor& dy, const std::unordered_set<const TensorImpl*>* capture,
                  std::unordered_map<const TensorImpl*, Tensor>* captured, const GradReadyHook* on_ready = nullptr) {
  if (!y.requires_grad())
    throw ValueError("backward: this tensor does not require grad (no input of its graph "
                     "requires grad, or it was computed under NoGradGuard)");
  if (dy.shape() != y.shape())
    throw ShapeError("backward: gradient shape " + dy.shape().str() + " does not match output shape " +
                     y.shape().str());
  if (y.is_leaf()) {  // a leaf's gradient with respect to itself
    accumulate(*y.impl(), dy);
    if (on_ready) (*on_ready)(*y.impl());
    return;
  }
  auto order = topological_order(y.impl_ptr());
  accumulate(*y.impl(), dy);
  // With a hook: how many nodes still to run use each leaf; the last one completes its gradient.
  std::unordered_map<const TensorImpl*, int> uses;
  if (on_ready)
    for (const auto& impl : order)
      for (const Tensor& in : impl->grad_fn->inputs)
        if (!in.impl()->grad_fn && in.requires_grad()) ++uses[in.impl()];
  for (auto it = order.rbegin(); it != order.rend(); ++it) {
    TensorImpl& impl = **it;
    Node& node = *impl.grad_fn;
    if (impl.grad.defined()) {
      Tensor output(*it);
      Tensor grad = std::move(impl.grad);  // intermediate gradients are not retained
      if (capture && capture->count(&impl)) (*captured)[&impl] = grad;
      BackwardContext ctx(node, output, grad);
      node.backward(ctx);
    }
    if (on_ready)
      for (const Tensor& in : node.inputs)
        if (!in.impl()->grad_fn && in.requires_grad() && --uses[in.impl()] == 0) (*on_ready)(*in.impl());
    node.inputs.clear();  // free saved tensors; the graph cannot be walked again
    node.backward = nullptr;
    node.released = true;
  }
}

// Every leaf that requires grad and that y's graph reaches.
std::vector<std::shared_ptr<TensorImpl>> reachable_leaves(const Tensor& y) {
  std::vector<std::shared_ptr<TensorImpl>> leaves;
  if (!y.impl()->grad_fn) {
    if (y.requires_grad()) leaves.push_back(y.impl_ptr());
    return leaves;
  }
  std::unordered_set<const TensorImpl*> seen;
  for (const auto& impl : topological_order(y.impl_ptr()))
    for (const Tensor& in : impl->grad_fn->inputs)
      if (!in.impl()->grad_fn && in.requires_grad() && seen.insert(in.impl()).second) leaves.push_back(in.impl_ptr());
  return leaves;
}

}  // namespace

void Tensor::backward(const Tensor& dy) const { run_backward(*this, dy, nullptr, nullptr); }

void backward(const Tensor& y, const GradReadyHook& on_ready) {
  if (y.numel() != 1)
    throw ShapeError("backward: the output must have one element, got shape " + y.shape().str());
  run_backward(y, Tensor::ones(y.shape()), nullptr, nullptr, &on_ready);
}

std::vector<Tensor> grad(const Tensor& y, const std::vector<Tensor>& xs, const Tensor& dy) {
  if (!y.defined()) throw ValueError("grad: y is undefined");
  for (size_t i = 0; i < xs.size(); ++i)
    if (!xs[i].defined()) throw ValueError("grad: x " + std::to_string(i) + " is undefined");
  Tensor seed = dy;
  if (!seed.defined()) {
    if (y.numel() != 1)
      throw ShapeError("grad: without dy, y must have one element, got shape " + y.shape().str());
    seed = Tensor::ones(y.shape());
  }
  // Leaves keep their grad(): set each aside, walk, read the new ones, put the old ones back.
  struct Saved {
    std::shared_ptr<TensorImpl> impl;
    Tensor grad;
    bool stale;
  };
  std::vector<Saved> saved;
  if (y.requires_grad())
    for (auto& leaf : reachable_leaves(y)) {
      saved.push_back({leaf, std::move(leaf->grad), leaf->grad_stale});
      leaf->grad = Tensor();
      leaf->grad_stale = false;
    }
  std::unordered_set<const TensorImpl*> capture;
  for (const Tensor& x : xs) capture.insert(x.impl());
  std::unordered_map<const TensorImpl*, Tensor> captured;
  auto restore = [&] {
    for (Saved& s : saved) {
      s.impl->grad = std::move(s.grad);
      s.impl->grad_stale = s.stale;
    }
  };
  try {
    if (y.requires_grad()) run_backward(y, seed, &capture, &captured);
  } catch (...) {
    restore();
    throw;
  }
  std::vector<Tensor> out;
  for (const Tensor& x : xs) {
    Tensor g;
    if (auto it = captured.find(x.impl()); it != captured.end()) g = it->second;
    else if (x.impl()->grad_fn == nullptr && x.impl()->grad.defined() && !x.impl()->grad_stale) g = x.impl()->grad;
    out.push_back(g.defined() ? g : Tensor::zeros(x.shape()));
  }
  restore();
  return out;
}

}  // namespace lamina
