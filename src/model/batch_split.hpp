// The training step of a small convolutional Sequential, its batch split over the cores (issue
// 20). Internal to the library: Model::train_step takes it when fit's model and compile qualify
// (BatchSplitStep::make), and its general path otherwise.
//
// Each OpenMP thread runs forward and backward through the whole model on its share of the
// batch (equal runs of rows), as data-parallel training splits a batch over machines: each
// core's activations stay in its own cache, and only the weights' gradients cross, once per
// step. Thread 0 writes the weights' grad(), the others each a GradientRedirect's buffers, added
// in after in share order. Each share's loss is its mean, its gradient weighted by the share's
// part of the rows, so that they add up to the batch's mean loss and its gradient. The layers
// must not look at the batch as a whole or draw random numbers (no BatchNormalization, no
// Dropout): then the step is the general path's up to the order of sums, and deterministic.
//
// Why: a LeNet step (batch 64) with oneDNN's threads inside each layer and the first
// convolution's batch split (conv.cpp) took 1391-1446 us on this project's 2-core machine; two
// batch-32 steps on their own models side by side 1099-1149 us, with the first layer's 1.2 MB
// activation halved on each core (a core's L2 holds 1 MB). In fit, on a busier evening: LeNet
// 1.24-2.06 s/epoch (median of 5: 1.50) against 1.84-2.10 (2.01), once the storage cache gave
// each thread back its own buffers (before that, the shares swapped their activations' buffers
// at every step: 1774-1875 us a step against 1468-1566).
#pragma once

#include <exception>
#include <functional>
#include <memory>
#include <utility>
#include <vector>

#include "gradient_redirect.hpp"
#include "lamina/data.hpp"
#include "lamina/layers.hpp"
#include "lamina/losses.hpp"
#include "lamina/tensor.hpp"

namespace lamina {
class Model;
class Optimizer;
}  // namespace lamina

namespace lamina::detail {

class BatchSplitStep {
 public:
  // Rows per share at least: a batch is split into min(threads, rows / kMinRows) shares.
  static constexpr int64_t kMinRows = 8;
  // The step for `model`'s compiled training of `params` (its trainable weights) on `threads`
  // threads, or null where it does not apply: fewer than 2 threads; not a Sequential; distributed;
  // a layer other than InputLayer, Reshape, Flatten, Conv2D, MaxPooling2D, AveragePooling2D,
  // GlobalAveragePooling2D, Dense and Activation, or none of them a Conv2D (a chain of Dense
  // layers has its own step, dense_chain.hpp); a weight or activity regularizer; a weight that
  // requires grad outside params; several losses, a loss weight other than 1, or a custom loss
  // (whose reduction may not be a mean).
  static std::shared_ptr<BatchSplitStep> make(const Model& model, const std::vector<Tensor>& params, int threads);
  // Whether a batch can take it: one input and one target, no sample weights, at least
  // 2 kMinRows rows, not a share of a distributed step. A batch whose x fit left pending
  // (data::Batch::x_pending) is gathered share by share, each on the thread that runs it, which
  // also prefetches its share of the next batch.
  bool accepts(const data::Batch& batch) const;
  // Forward and backward over the batch: the prediction and the mean loss, as the general path's,
  // and the gradient of every parameter in its grad(). With `optimizer` (one without clipping)
  // and a finite loss, the step also adds the shares' gradients and applies the optimizer, each
  // thread on its block of every parameter; `updated` says whether it did, else that is the
  // caller's. The result is the same, to the bit, as adding the gradients and calling
  // optimizer.step after: the same sums in the same order, the same update per element.
  //
  // Why: on LeNet (61.7K weights, batch 64) the calling thread added the other share's
  // gradients (12.6 us a step) and ran Adam (50-55 us: the weights, their gradients and the
  // moments had left the caches during the convolutions) while the other core waited.
  struct Result {
    Tensor pred, loss;
    bool updated = false;
  };
  Result run(const data::Batch& batch, Optimizer* optimizer);

  // Inference the same way: whether `model`'s layers qualify (as make's, without the loss and
  // weight conditions), and the prediction of n rows into `out` (n, ...), in chunks of `rows`
  // that the threads take in turn, each running whole chunks through the layers on its own;
  // input(begin, count) gives a chunk's input (from any thread). A chunk's rows come out as one
  // thread's run of the model would give them, so the result does not depend on the threads.
  // LeNet on MNIST's 10,000 test images, batch 10000: 85K samples/s on two threads through the
  // general path (oneDNN's threads inside each layer), against 91K on one.
  static bool splits_inference(const Model& model);
  static void predict(const Model& model, int64_t n, int64_t rows, int threads,
                      const std::function<Tensor(int64_t begin, int64_t count)>& input, Tensor& out);

 private:
  BatchSplitStep(std::vector<std::shared_ptr<Layer>> layers, Loss loss, std::vector<Tensor> params, int parts);
  // Share s, rows [r0, r1) of the batch's n: forward, the loss, backward weighted (r1 - r0) / n.
  void share(const data::Batch& batch, size_t s, int64_t r0, int64_t r1);
  // Whether the shares' gradients can be added and applied block by block: every share ran
  // without error, the loss is finite, and every parameter has a gradient from each share.
  bool can_update(size_t parts, double loss) const;
  // Thread t of `team`'s block of every parameter: the other shares' gradients added into its
  // grad(), then the optimizer's update.
  void update_block(Optimizer& optimizer, size_t parts, int t, int team);

  std::vector<std::shared_ptr<Layer>> layers_;
  Loss loss_;
  std::vector<Tensor> params_;
  int parts_;                                // shares at most: the threads
  std::vector<GradientRedirect> redirects_;  // shares 1, 2, ...: their gradients
  struct Share {
    Tensor pred;
    double loss = 0;
    std::exception_ptr error;
  };
  std::vector<Share> shares_;
};

}  // namespace lamina::detail
