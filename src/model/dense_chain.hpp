// The training step of a Sequential chain of Dense layers, split over the cores by the rows of
// every kernel (issue 20). Internal to the library: Model::train_step takes it when fit's model
// and compile qualify (DenseChainStep::make), and its general autograd path otherwise.
//
// Thread p owns a block of rows of each kernel W (K, U), with the same rows of its gradient and
// of its optimizer state, and never touches another thread's rows: forward it computes the
// partial product x[:, rows] W[rows, :], backward W's gradient rows x[:, rows]^T dz and the
// input gradient's columns dz W[rows, :]^T, then updates its rows in place. The rows of layer
// l + 1 are the columns of layer l that thread p reduces (sums the partials of, adds the bias
// to, applies the activation to), so each thread's next product reads what it wrote itself.
// What crosses the cores per layer is a batch-sized block (partials forward, dz backward), with
// one barrier each way, not the kernels, their gradients or the optimizer's state. The last
// layer's output, the loss and its gradient are computed once, on the calling thread: the
// sparse cross-entropy on a softmax output or on logits directly (loss_kernels.hpp), any other
// Loss and last Activation through autograd; either way the step's result is the general
// path's up to rounding. On one part (one thread, or a small model) it is the general path
// without the autograd graph; bench/README.md has the measurements behind when it splits. The
// first layer multiplies only the input features that some sample of the batch uses (Picked
// below): on MNIST, whose blank pixels are 42% of a batch of 32's features, that took the
// 784-128-10 MLP from 0.218 to 0.172 s/epoch on one thread (medians of 10 alternating epochs).
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <utility>
#include <vector>

#include "lamina/data.hpp"
#include "lamina/layers.hpp"
#include "lamina/losses.hpp"
#include "lamina/tensor.hpp"
#include "model/spin_team.hpp"

namespace lamina {
class Model;
class Optimizer;
}  // namespace lamina

namespace lamina::detail {

class DenseChainStep {
 public:
  // The step for `model`'s compiled training of `params` (its trainable weights, in order) on up
  // to `threads` threads, or null when the model is not such a chain: a Sequential of an optional
  // InputLayer and Flattens, then Dense layers only, every weight trained, without
  // regularizers or constraints; hidden activations linear, relu, sigmoid or tanh (the last
  // layer's any); one loss of weight 1; an optimizer without gradient clipping; not
  // distributed. Each part (thread) gets at least min_weights_per_part of the kernels' values
  // (0: the default below). Measured on this project's 2-core machine, s/epoch: MNIST's 784-128-10
  // MLP (101K weights, batch 32) ran 0.198-0.206 (medians) on one part, and on two 0.141 with the
  // threads free to move between the cores, 0.138 with them bound (OMP_PROC_BIND=close
  // OMP_PLACES=cores). On OpenMP's threads, before SpinTeam, the two-part step spent 11 us of its
  // 84 synchronizing, and unbound threads lost to one part (0.213), so the split waited for 64K
  // weights a part unless OpenMP bound them. The 784-512-512-10 one (669K, batch 128) ran
  // 0.70-0.73 on two parts, against 0.83-0.90 for the general path.
  static constexpr int64_t kMinWeightsPerPart = 16 * 1024;
  // On one part, the largest product per step above which the general path runs (accepts).
  static constexpr int64_t kOnePartMaxFlops = 16'000'000;
  static std::shared_ptr<DenseChainStep> make(const Model& model, const std::vector<Tensor>& params, int threads,
                                              int64_t min_weights_per_part = 0);
  // Whether a batch can take this step: one float input of the model's width per row, one
  // target, no sample weights, not a share of a distributed step.
  bool accepts(const data::Batch& batch) const;
  // A training step in two halves, between which the caller may look at the loss with the
  // weights that produced it. forward: the prediction (the last layer's output) and the loss, as
  // the general path's, and the loss's gradient. backward: the gradients and the optimizer's
  // update of every parameter. The batch must outlive both.
  std::pair<Tensor, Tensor> forward(const data::Batch& batch);
  void backward();
  int parts() const { return parts_; }
  // Whether the step gathers the samples of a batch from its dataset itself (each part its own
  // columns, on its own core), so that a batch's x need not hold them (data::Batch::x_pending).
  bool gathers_x() const { return parts_ > 1; }

  struct Layer {
    float* w = nullptr;   // kernel (in, out), row-major
    float* gw = nullptr;  // its gradient
    float* b = nullptr;   // bias (out), or null
    float* gb = nullptr;
    size_t w_param = 0, b_param = 0;  // positions in the optimizer's parameter list
    int64_t in = 0, out = 0;
    FusedActivation act = FusedActivation::none;  // a hidden layer's; the last one's runs through autograd
    std::vector<int64_t> rows;        // parts + 1 bounds over `in`: the kernel rows each part owns
    std::vector<int64_t> cols;        // parts + 1 bounds over `out`: the next layer's rows
    std::vector<float*> partial;      // per part: its products, a block per part of cols
    int64_t stride = 0;               // partial[p + 1] - partial[p]
    float* a = nullptr;               // (batch, out) the activation's output (hidden layers)
    float* dz = nullptr;              // the loss's gradient before the activation, a block per part
  };

 private:
  DenseChainStep(Optimizer& optimizer, Loss loss, Activation last, std::vector<Layer> layers,
                 std::vector<Tensor> params, int parts);
  void reserve(int64_t batch);
  void refresh();
  // body(thread, team) on the team's `parts_` threads, or inline for one.
  template <class Body>
  void on_threads(Body&& body);
  // The parts' work for every part of `thread` among `team` threads, then (then_wait) a barrier
  // before the next phase: not before the end of a run, which waits for every thread anyway.
  template <class Phase>
  void each_part(int thread, int team, bool then_wait, Phase&& phase);
  std::pair<const float*, int64_t> input(size_t layer, int part) const;
  void forward_on(int thread, int team);
  void backward_on(int thread, int team);

  Optimizer& optimizer_;
  Loss loss_;
  Activation last_;  // the last layer's activation, applied through autograd
  // Losses computed with their gradient directly (loss_kernels.hpp), the same up to rounding.
  // The autograd graph of the digits MLP's softmax and loss took 6 us of a 26 us step.
  enum class FusedLoss { none, softmax_sparse, logits_sparse } fused_loss_ = FusedLoss::none;
  std::vector<Layer> layers_;
  std::vector<Tensor> params_;
  int parts_ = 1;
  std::unique_ptr<SpinTeam> team_;  // the parts' threads, when more than one
  int64_t capacity_ = 0;         // rows the buffers hold
  int64_t batch_ = 0;            // the step's rows
  const float* x_ = nullptr;     // the step's input
  const data::Dataset* dataset_ = nullptr;  // where it came from, if a dataset
  std::span<const int64_t> indices_;
  std::span<const int64_t> next_indices_;  // the next batch's, to prefetch (data::Batch::next_indices)
  bool own_x_ = false;                      // each part gathers its columns of x itself
  std::vector<float*> x_parts_;             // those columns, (batch, rows of part p)
  // Input features that are zero in every row of a batch (MNIST's blank borders: 42% of the
  // pixels of a batch of 32) add nothing to the first layer's products, forward or to W's
  // gradient: part p multiplies only the others, picked_[p].rows (of its rows of W), reading
  // their values in place (Gemm::pick_a), and zeroes the gradient rows of the rest. The result
  // is the whole product's, rounding included, while every value of W and of the loss's gradient
  // is finite (0 times inf or NaN is NaN): so only until a loss is not finite (then for the rest
  // of the fit), and not at all when W is not finite at the start.
  struct Picked {
    std::vector<int64_t> rows;       // the features used, relative to the part's first row of W
    // 90% of the features or more are used: the whole product instead. The bound dates from
    // when the used features were packed first (the packing cost about a tenth of the product);
    // since they are read in place (Gemm::pick_a) it has not been measured again.
    bool all = true;
    std::vector<uint8_t> zero_grad;  // per row of the part: its gradient row holds zeros already
    std::vector<uint32_t> used;      // scratch: per feature, whether a sample uses it
  };
  std::vector<Picked> picked_;
  bool pick_features_ = true;
  const float* picked_grad_ = nullptr;  // the gradient zero_grad describes (refresh may rebind it)
  bool loss_finite_ = true;             // the step's
  void pick(int p);
  void note_loss(bool finite) {
    loss_finite_ = finite;
    pick_features_ = pick_features_ && finite;
  }
  Tensor dz_last_;               // the loss's gradient at the last layer's output
  std::vector<std::shared_ptr<float[]>> buffers_;  // backing the layers' partial, a and dz, and x_parts_
};

}  // namespace lamina::detail
