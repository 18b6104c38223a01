// The row-split training step of a Dense chain: see dense_chain.hpp.
#include "model/dense_chain.hpp"

#include <algorithm>
#include <cmath>
#include <cstring>

#include "allocator.hpp"
#include "kernels/matmul.hpp"
#include "lamina/model.hpp"
#include "ops/op_helpers.hpp"  // fused_activation_grad, relu_in_place
#include "lamina/optimizers.hpp"
#include "loss_kernels.hpp"

namespace lamina::detail {

namespace {

using kernels::Eltwise;

// [0, n) in `parts` blocks whose inner bounds are multiples of 16 floats (a cache line), so that
// parts writing neighbouring columns of one row do not share a line.
std::vector<int64_t> split(int64_t n, int parts) {
  std::vector<int64_t> bounds{0};
  for (int p = 1; p < parts; ++p) {
    const int64_t even = n * p / parts;
    bounds.push_back(std::clamp((even + 8) / 16 * 16, bounds.back(), n));
  }
  bounds.push_back(n);
  return bounds;
}

// a = act(a) over n values, in place (relu keeps NaN, as linear()'s).
void activate(float* a, int64_t n, FusedActivation act) {
  switch (act) {
    case FusedActivation::none: return;
    case FusedActivation::relu: return relu_in_place(a, n);
    case FusedActivation::sigmoid:
      for (int64_t i = 0; i < n; ++i) a[i] = 1.f / (1.f + std::exp(-a[i]));
      return;
    case FusedActivation::tanh:
      for (int64_t i = 0; i < n; ++i) a[i] = std::tanh(a[i]);
      return;
  }
}

// out = bias + the sum of `count` blocks of n values `stride` apart (bias may be null).
void sum_blocks(float* __restrict out, const float* __restrict bias, const float* __restrict first, int64_t stride,
                int count, int64_t n) {
  if (bias) {
    for (int64_t i = 0; i < n; ++i) out[i] = bias[i] + first[i];
  } else {
    std::memcpy(out, first, sizeof(float) * static_cast<size_t>(n));
  }
  for (int q = 1; q < count; ++q) {
    const float* __restrict s = first + q * stride;
    for (int64_t i = 0; i < n; ++i) out[i] += s[i];
  }
}

// Column sums of a (batch, width) block whose rows are ld apart, into out[0, width).
void column_sums(const float* __restrict m, int64_t ld, int64_t batch, int64_t width, float* __restrict out) {
  std::fill(out, out + width, 0.f);
  for (int64_t r = 0; r < batch; ++r)
    for (int64_t j = 0; j < width; ++j) out[j] += m[r * ld + j];
}

}  // namespace

std::shared_ptr<DenseChainStep> DenseChainStep::make(const Model& model, const std::vector<Tensor>& params,
                                                     int threads, int64_t min_weights_per_part) {
  if (!model.is_sequential() || model.is_distributed() || !model.compiled() || !model.trainable()) return nullptr;
  if (model.losses().size() != 1 || model.loss_weights().size() != 1 || model.loss_weights()[0] != 1.0)
    return nullptr;
  Optimizer& opt = model.optimizer();
  if (opt.clips()) return nullptr;
  std::vector<layers::Dense*> dense;
  bool flat = !model.tensor_shapes().empty() && model.tensor_shapes()[0].rank() == 1;  // samples are vectors
  for (const auto& l : model.layers()) {
    const std::string kind = l->class_name();
    if (dense.empty() && (kind == "InputLayer" || kind == "Flatten")) {  // reshapes of the input
      flat = flat || kind == "Flatten";
      continue;
    }
    auto* d = dynamic_cast<layers::Dense*>(l.get());
    if (!d || kind != "Dense" || !d->trainable()) return nullptr;
    const layers::Dense::Options& o = d->options();
    if (o.kernel_regularizer || o.bias_regularizer || o.activity_regularizer || o.kernel_constraint ||
        o.bias_constraint)
      return nullptr;
    dense.push_back(d);
  }
  if (dense.empty() || !flat) return nullptr;  // a Dense over the last axis of images or sequences: not here
  std::vector<Layer> plan;
  size_t next = 0;  // the parameters must be the kernels and biases, in order
  int64_t weights = 0;
  for (size_t i = 0; i < dense.size(); ++i) {
    layers::Dense& d = *dense[i];
    const bool hidden = i + 1 < dense.size();
    const Activation act = d.options().activation;
    if (hidden && act.kind() != Activation::linear && act.fused() == FusedActivation::none) return nullptr;
    Layer L;
    for (const auto& w : d.weights()) {  // their addresses are bound at each step (refresh)
      if (!w.trainable || next >= params.size() || params[next].impl() != w.value.impl()) return nullptr;
      if (w.name == "kernel") {
        L.w = w.value.impl()->data, L.w_param = next;
        L.in = w.value.dim(0), L.out = w.value.dim(1);
      } else {
        L.b = w.value.impl()->data, L.b_param = next;
      }
      ++next;
    }
    if (!L.w || (i > 0 && L.in != plan.back().out)) return nullptr;
    L.act = hidden ? act.fused() : FusedActivation::none;  // linear: none
    weights += L.in * L.out;
    plan.push_back(std::move(L));
  }
  if (next != params.size()) return nullptr;
  if (min_weights_per_part <= 0) min_weights_per_part = kMinWeightsPerPart;
  const auto parts = static_cast<int>(
      std::clamp<int64_t>(weights / std::max<int64_t>(min_weights_per_part, 1), 1, std::max(threads, 1)));
  return std::shared_ptr<DenseChainStep>(new DenseChainStep(opt, model.losses()[0], dense.back()->options().activation,
                                                            std::move(plan), params, parts));
}

DenseChainStep::DenseChainStep(Optimizer& optimizer, Loss loss, Activation last, std::vector<Layer> layers,
                               std::vector<Tensor> params, int parts)
    : optimizer_(optimizer), loss_(std::move(loss)), last_(last), layers_(std::move(layers)),
      params_(std::move(params)), parts_(parts) {
  // The sparse cross-entropy on a softmax output, or on logits, without the autograd graph.
  if (loss_.kind() == Loss::sparse_categorical_crossentropy) {
    if (last_.kind() == Activation::softmax && !loss_.from_logits()) fused_loss_ = FusedLoss::softmax_sparse;
    if (last_.kind() == Activation::linear && loss_.from_logits()) fused_loss_ = FusedLoss::logits_sparse;
  }
  // The rows of layer l + 1 are the columns of layer l that each part reduces; the last layer's
  // columns are one block, which the calling thread reduces.
  for (size_t l = 0; l < layers_.size(); ++l) {
    Layer& L = layers_[l];
    L.rows = split(L.in, parts_);
    L.cols = l + 1 < layers_.size() ? split(L.out, parts_) : std::vector<int64_t>(parts_ + 1, L.out);
    if (l + 1 == layers_.size()) L.cols[0] = 0;
  }
  if (parts_ > 1) team_ = std::make_unique<SpinTeam>(parts_);
  const Layer& first = layers_[0];
  pick_features_ = std::all_of(first.w, first.w + first.in * first.out, [](float v) { return std::isfinite(v); });
}

bool DenseChainStep::accepts(const data::Batch& batch) const {
  if (batch.x.size() != 1 || batch.y.size() != 1 || batch.sample_weight.defined() || batch.global_size != 0)
    return false;
  const Tensor& x = batch.x[0];
  if (x.rank() < 1 || x.dim(0) == 0 || x.numel() != x.dim(0) * layers_[0].in) return false;
  if (batch.x_pending && !(gathers_x() && batch.dataset && static_cast<int64_t>(batch.indices.size()) == x.dim(0)))
    return false;
  // On one part, large products go to the general path's oneDNN GEMMs, faster than our loops
  // there: MNIST's 784-512-512-10 MLP (batch 128, 103 MFLOP products) took 1.17 s/epoch here
  // against 1.09 on the general path; the 784-128-10 one (6.4 MFLOP) 0.208-0.212 against 0.218.
  int64_t widest = 0;
  for (const Layer& L : layers_) widest = std::max(widest, L.in * L.out);
  return parts_ > 1 || 2 * x.dim(0) * widest < kOnePartMaxFlops;
}

void DenseChainStep::reserve(int64_t batch) {
  if (batch <= capacity_) return;
  buffers_.clear();
  auto make = [&](int64_t n) {  // 64-byte aligned, from the tensors' storage cache
    buffers_.push_back(allocate_storage(n));
    return buffers_.back().get();
  };
  for (size_t l = 0; l < layers_.size(); ++l) {
    Layer& L = layers_[l];
    L.partial.assign(static_cast<size_t>(parts_), nullptr);
    const bool hidden = l + 1 < layers_.size();
    if (parts_ > 1 || !hidden) {  // one buffer, each part's on its own cache lines
      L.stride = (batch * L.out + 15) / 16 * 16;
      float* all = make(L.stride * parts_);
      for (int p = 0; p < parts_; ++p) L.partial[static_cast<size_t>(p)] = all + p * L.stride;
    }
    L.a = hidden ? make(batch * L.out) : nullptr;
    L.dz = hidden ? make(batch * L.out) : nullptr;
  }
  x_parts_.clear();
  const std::vector<int64_t>& rows = layers_[0].rows;
  for (int p = 0; p < parts_; ++p) x_parts_.push_back(make(batch * (rows[static_cast<size_t>(p) + 1] - rows[static_cast<size_t>(p)])));
  picked_.resize(static_cast<size_t>(parts_));
  for (int p = 0; p < parts_; ++p) {
    const int64_t width = rows[static_cast<size_t>(p) + 1] - rows[static_cast<size_t>(p)];
    picked_[static_cast<size_t>(p)].zero_grad.assign(static_cast<size_t>(width), 0);
  }
  capacity_ = batch;
}

template <class Phase>
void DenseChainStep::each_part(int thread, int team, bool then_wait, Phase&& phase) {
  for (int p = thread; p < parts_; p += team) phase(p);
  if (team > 1 && then_wait) team_->barrier(thread);
}

// Part p's columns of layer l's input, and the distance between its rows: the first layer's from
// the part's own copy when the batch came from a dataset (gathered by the thread that reads it:
// read from the copy in x, which the calling thread wrote, the other core's share of MNIST's
// batch cost that thread 13 us a step more to write the next), else x's; later layers' from the
// activation before, whose columns of part p the same thread wrote.
std::pair<const float*, int64_t> DenseChainStep::input(size_t l, int p) const {
  const int64_t r0 = layers_[l].rows[static_cast<size_t>(p)];
  if (l > 0) return {layers_[l - 1].a + r0, layers_[l - 1].out};
  if (own_x_) return {x_parts_[static_cast<size_t>(p)], layers_[0].rows[static_cast<size_t>(p) + 1] - r0};
  return {x_ + r0, layers_[0].in};
}

// Part p's features of the first layer that some row of the batch uses.
void DenseChainStep::pick(int p) {
  Picked& pk = picked_[static_cast<size_t>(p)];
  const auto [in, ld] = input(0, p);
  const int64_t width = layers_[0].rows[static_cast<size_t>(p) + 1] - layers_[0].rows[static_cast<size_t>(p)];
  pk.used.assign(static_cast<size_t>(width), 0);
  uint32_t* __restrict used = pk.used.data();
  for (int64_t r = 0; r < batch_; ++r) {
    const float* __restrict row = in + r * ld;
    for (int64_t k = 0; k < width; ++k) used[k] |= row[k] != 0.f ? 1u : 0u;  // NaN too
  }
  pk.rows.clear();
  for (int64_t k = 0; k < width; ++k)
    if (used[k]) pk.rows.push_back(k);
  pk.all = !pick_features_ || static_cast<int64_t>(pk.rows.size()) * 10 > width * 9;
}

// Layer l's products, for part p: x[:, rows] W[rows, :] into p's partial, one block per part
// that reduces it (block q: columns cols[q] .. cols[q + 1], stored (batch, width) contiguous,
// so that part q reads it from the other core as one stream: strided, the same 8 KB took 9-13
// us against 2). Then part p reduces its block of every partial into the activation's columns.
void DenseChainStep::forward_on(int thread, int team) {
  const int64_t batch = batch_;
  if (own_x_)
    for (int p = thread; p < parts_; p += team) {
      const int64_t r0 = layers_[0].rows[static_cast<size_t>(p)], r1 = layers_[0].rows[static_cast<size_t>(p) + 1];
      dataset_->gather_columns(indices_, r0, r1, x_parts_[static_cast<size_t>(p)], r1 - r0);
    }
  for (size_t l = 0; l < layers_.size(); ++l) {
    const Layer& L = layers_[l];
    const bool hidden = l + 1 < layers_.size();
    const bool whole = parts_ == 1 && hidden;  // the product is the output, with bias and act
    each_part(thread, team, /*then_wait=*/hidden, [&](int p) {
      const int64_t r0 = L.rows[static_cast<size_t>(p)], r1 = L.rows[static_cast<size_t>(p) + 1];
      auto [in, ld] = input(l, p);
      int64_t k = r1 - r0;
      const int64_t* b_rows = nullptr;
      if (l == 0) {
        pick(p);
        if (const Picked& pk = picked_[static_cast<size_t>(p)]; !pk.all)
          k = static_cast<int64_t>(pk.rows.size()), b_rows = pk.rows.data();
      }
      for (int q = 0; q < parts_; ++q) {
        const int64_t j0 = L.cols[static_cast<size_t>(q)], j1 = L.cols[static_cast<size_t>(q) + 1];
        if (j1 == j0) continue;
        float* out = whole ? L.a + j0 : L.partial[static_cast<size_t>(p)] + batch * j0;
        const int64_t ldc = whole ? L.out : j1 - j0;
        if (r1 == r0) {  // no rows: a zero partial
          for (int64_t r = 0; r < batch; ++r) std::fill(out + r * ldc, out + r * ldc + (j1 - j0), 0.f);
          continue;
        }
        kernels::small_matmul({.a = in, .lda = ld, .b = L.w + r0 * L.out + j0, .ldb = L.out, .c = out,
                               .ldc = ldc, .m = batch, .k = k, .n = j1 - j0, .bias = whole ? L.b + j0 : nullptr,
                               .act = whole ? static_cast<Eltwise>(L.act) : Eltwise::none, .b_rows = b_rows,
                               .pick_a = b_rows != nullptr});
      }
    });
    if (!hidden) return;  // the calling thread reduces the last layer
    if (!whole) {
      // On the thread that runs part p's next product, which reads only these columns: no
      // barrier between them.
      for (int p = thread; p < parts_; p += team) {
        const int64_t j0 = L.cols[static_cast<size_t>(p)], width = L.cols[static_cast<size_t>(p) + 1] - j0;
        for (int64_t r = 0; r < batch; ++r) {
          float* a = L.a + r * L.out + j0;
          sum_blocks(a, L.b ? L.b + j0 : nullptr, L.partial[0] + batch * j0 + r * width, L.stride, parts_, width);
          activate(a, width, L.act);
        }
      }
    }
  }
}

// Layer l, part p: W's gradient rows x[:, rows]^T dz and the input's gradient columns
// dz W[rows, :]^T (both block by block of dz), then the update of p's rows. The input gradient's
// columns are p's block of the previous layer's dz: rows of this layer are its columns.
void DenseChainStep::backward_on(int thread, int team) {
  const int64_t batch = batch_;
  for (size_t l = layers_.size(); l-- > 0;) {
    const Layer& L = layers_[l];
    const bool last = l + 1 == layers_.size();
    // dz's block q: (batch, width) contiguous; the loss's gradient is one (batch, out) block.
    auto block = [&](int q) { return last ? dz_last_.data() : L.dz + batch * L.cols[static_cast<size_t>(q)]; };
    each_part(thread, team, /*then_wait=*/l > 0, [&](int p) {
      const int64_t r0 = L.rows[static_cast<size_t>(p)], r1 = L.rows[static_cast<size_t>(p) + 1];
      if (r1 == r0) return;
      auto [in, ld] = input(l, p);
      int64_t m = r1 - r0;
      const int64_t* c_rows = nullptr;
      if (l == 0) {  // the rows of W's gradient for features no sample used are zero
        Picked& pk = picked_[static_cast<size_t>(p)];
        const bool all = pk.all || !loss_finite_;
        size_t next = 0;
        for (int64_t i = 0; i < r1 - r0; ++i) {
          const bool used = all || (next < pk.rows.size() && pk.rows[next] == i);
          next += used && !all;
          uint8_t& zero = pk.zero_grad[static_cast<size_t>(i)];
          if (!used && !zero) std::fill_n(L.gw + (r0 + i) * L.out, L.out, 0.f);
          zero = !used;
        }
        if (!all) m = static_cast<int64_t>(pk.rows.size()), c_rows = pk.rows.data();
      }
      bool first = true;
      for (int q = 0; q < parts_; ++q) {
        const int64_t j0 = L.cols[static_cast<size_t>(q)], width = L.cols[static_cast<size_t>(q) + 1] - j0;
        if (width == 0) continue;
        kernels::small_matmul({.a = in, .lda = ld, .b = block(q), .ldb = width, .c = L.gw + r0 * L.out + j0,
                               .ldc = L.out, .m = m, .k = batch, .n = width, .trans_a = true, .c_rows = c_rows,
                               .pick_a = c_rows != nullptr});
        if (l == 0) continue;
        kernels::small_matmul({.a = block(q), .lda = width, .b = L.w + r0 * L.out + j0, .ldb = L.out,
                               .c = layers_[l - 1].dz + batch * r0, .ldc = r1 - r0, .m = batch, .k = width,
                               .n = r1 - r0, .trans_b = true, .accumulate = !first});
        first = false;
      }
      if (l > 0) {
        const Layer& prev = layers_[l - 1];
        float* dz = prev.dz + batch * r0;
        const int64_t width = r1 - r0;
        for (int64_t r = 0; r < batch; ++r)
          fused_activation_grad(prev.act, prev.a + r * prev.out + r0, dz + r * width, dz + r * width, width);
        if (prev.b) {
          column_sums(dz, width, batch, width, prev.gb + r0);
          optimizer_.update_part(prev.b_param, r0, width, prev.b + r0, prev.gb + r0);
        }
      }
      // W's rows are read by no one else: they can move now.
      optimizer_.update_part(L.w_param, r0 * L.out, (r1 - r0) * L.out, L.w + r0 * L.out, L.gw + r0 * L.out);
      // The next batch's samples start coming into this core's cache, the columns it gathers.
      if (l == 0 && own_x_ && !next_indices_.empty()) dataset_->prefetch_columns(next_indices_, r0, r1);
    });
  }
}

// The weights' addresses, read again each step: a callback may have replaced a weight's storage.
void DenseChainStep::refresh() {
  for (Layer& L : layers_) {
    auto bind = [&](size_t param, float*& value, float*& grad) {
      TensorImpl& impl = *params_[param].impl();
      if (!impl.grad.defined()) impl.grad = Tensor::zeros(params_[param].shape());
      value = impl.data, grad = impl.grad.data();
    };
    bind(L.w_param, L.w, L.gw);
    if (L.b) bind(L.b_param, L.b, L.gb);
  }
  if (layers_[0].gw != picked_grad_) {  // a new gradient: what it holds is not known
    for (Picked& pk : picked_) std::fill(pk.zero_grad.begin(), pk.zero_grad.end(), 0);
    picked_grad_ = layers_[0].gw;
  }
}

template <class Body>
void DenseChainStep::on_threads(Body&& body) {
  if (parts_ == 1) return body(0, 1);
  team_->run([&](int thread) { body(thread, parts_); });
}

std::pair<Tensor, Tensor> DenseChainStep::forward(const data::Batch& batch) {
  batch_ = batch.size();
  x_ = batch.x[0].data();
  dataset_ = batch.dataset;
  indices_ = batch.indices;
  next_indices_ = batch.next_indices;
  own_x_ = parts_ > 1 && dataset_ != nullptr && static_cast<int64_t>(indices_.size()) == batch_;
  reserve(batch_);
  refresh();
  on_threads([&](int thread, int team) { forward_on(thread, team); });
  // The last layer: the parts' sum and the bias, then the activation, the loss and its gradient
  // through autograd, here on the calling thread.
  const Layer& last = layers_.back();
  const int64_t n = batch_;
  Tensor z = Tensor::empty({n, last.out});
  float* zd = z.data();
  for (int64_t r = 0; r < n; ++r)
    sum_blocks(zd + r * last.out, last.b, last.partial[0] + r * last.out, last.stride, parts_, last.out);
  if (fused_loss_ != FusedLoss::none) {
    if (batch.y[0].numel() == n) {  // else the general path's loss reports the targets' shape
      Tensor pred = Tensor::empty({n, last.out});
      dz_last_ = Tensor::empty({n, last.out});
      const double loss = sparse_crossentropy_of_logits(batch.y[0].data(), zd, n, last.out,
                                                        fused_loss_ == FusedLoss::softmax_sparse, pred.data(),
                                                        dz_last_.data());
      note_loss(std::isfinite(loss));
      return {pred, Tensor::scalar(static_cast<float>(loss))};
    }
  }
  z.requires_grad_();
  const Tensor pred = last_.kind() == Activation::linear ? z : last_(z);
  Tensor loss = loss_(batch.y[0], pred);
  loss.backward();
  dz_last_ = z.grad();
  note_loss(std::isfinite(loss.item()));
  return {pred.detach(), loss.detach()};
}

void DenseChainStep::backward() {
  optimizer_.start_step(params_);
  const Layer& last = layers_.back();
  if (last.b) {
    column_sums(dz_last_.data(), last.out, batch_, last.out, last.gb);
    optimizer_.update_part(last.b_param, 0, last.out, last.b, last.gb);
  }
  on_threads([&](int thread, int team) { backward_on(thread, team); });
  for (Tensor p : params_) p.impl()->grad_stale = false;
  dz_last_ = Tensor();
}

}  // namespace lamina::detail
