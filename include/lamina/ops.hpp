// Differentiable functions on tensors. Each is one forward + one backward, side by side in
// src/ops/. Binary arithmetic broadcasts like NumPy/PyTorch (trailing dimensions align; a
// dimension of 1 stretches). Axes may be negative (-1 is the last).
//
//   Tensor h = relu(matmul(x, w) + b);          // (N, K) @ (K, U) + (U) -> (N, U)
//   Tensor p = softmax(h);                      // along the last axis
//   Tensor m = mean(h, /*axis=*/0);             // (U)
//   Tensor c = conv2d(img, k, b, {.padding = Padding::same, .act = FusedActivation::relu});
//                                               // (N, H, W, C) * (KH, KW, C, F) -> (N, H, W, F)
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <vector>

#include "lamina/tensor.hpp"

namespace lamina {
namespace distributed {
class Communicator;
}


// --- linear algebra ------------------------------------------------------------------------
// (M, K) @ (K, N) -> (M, N), on oneDNN. Batched and 1-D operands: see the N-d section below.
Tensor matmul(const Tensor& a, const Tensor& b);
// An activation that linear() can fuse into its GEMM (a oneDNN post-op).
enum class FusedActivation { none, relu, sigmoid, tanh };
// act(x (M, K) @ w (K, N) + bias (N)): a dense layer in one oneDNN primitive. The backward
// takes act' from the output, so nothing beyond x, w and the output is kept.
Tensor linear(const Tensor& x, const Tensor& w, const Tensor& bias, FusedActivation act = FusedActivation::none);
// (M, N) -> (N, M), a copy.
Tensor transpose(const Tensor& x);

// --- elementwise arithmetic, broadcasting ----------------------------------------------------
Tensor add(const Tensor& a, const Tensor& b);
Tensor sub(const Tensor& a, const Tensor& b);
Tensor mul(const Tensor& a, const Tensor& b);
Tensor div(const Tensor& a, const Tensor& b);
// The larger / smaller of a and b, elementwise; a and b of one shape (no broadcasting). NaN wins.
// dy goes to the winner; on a tie (a == b) half to each, as torch.maximum / torch.minimum.
Tensor maximum(const Tensor& a, const Tensor& b);
Tensor minimum(const Tensor& a, const Tensor& b);
Tensor neg(const Tensor& x);
Tensor square(const Tensor& x);
// With a scalar: x + s, x * s, s - x, s / x.
Tensor add(const Tensor& x, float s);
Tensor mul(const Tensor& x, float s);
Tensor rsub(const Tensor& x, float s);
Tensor rdiv(const Tensor& x, float s);

Tensor operator+(const Tensor& a, const Tensor& b);
Tensor operator-(const Tensor& a, const Tensor& b);
Tensor operator*(const Tensor& a, const Tensor& b);
Tensor operator/(const Tensor& a, const Tensor& b);
Tensor operator-(const Tensor& x);
Tensor operator+(const Tensor& x, float s);
Tensor operator+(float s, const Tensor& x);
Tensor operator-(const Tensor& x, float s);
Tensor operator-(float s, const Tensor& x);
Tensor operator*(const Tensor& x, float s);
Tensor operator*(float s, const Tensor& x);
Tensor operator/(const Tensor& x, float s);
Tensor operator/(float s, const Tensor& x);

// --- reductions ---------------------------------------------------------------------------------
Tensor sum(const Tensor& x);  // all elements -> scalar
Tensor sum(const Tensor& x, int64_t axis, bool keepdim = false);
Tensor mean(const Tensor& x);
Tensor mean(const Tensor& x, int64_t axis, bool keepdim = false);

// --- shape -------------------------------------------------------------------------------------
// A view with the same elements; one dimension may be -1 (inferred).
Tensor reshape(const Tensor& x, const Shape& shape);
// Keeps dimensions before start_axis, folds the rest: (N, 28, 28) -> (N, 784).
Tensor flatten(const Tensor& x, int64_t start_axis = 1);
// Joins the inputs (at least one) along `axis`; all other dimensions must match: (2, 3) ++ (2, 4) -> (2, 7).
Tensor concat(const std::vector<Tensor>& xs, int64_t axis = -1);

// --- activations and elementwise functions ---------------------------------------------------
Tensor relu(const Tensor& x);
// x if x > 0 else negative_slope * x. Keras' keras.activations.leaky_relu default (0.2).
Tensor leaky_relu(const Tensor& x, float negative_slope = 0.2f);
// x if x > 0 else alpha * (exp(x) - 1).
Tensor elu(const Tensor& x, float alpha = 1.f);
Tensor sigmoid(const Tensor& x);
Tensor tanh(const Tensor& x);
Tensor exp(const Tensor& x);
Tensor log(const Tensor& x);   // natural log; x must be > 0
Tensor sqrt(const Tensor& x);  // x must be >= 0
// exp(x) / sum(exp(x)) along `axis`, computed with the max subtracted (no overflow).
Tensor softmax(const Tensor& x, int64_t axis = -1);
// x - logsumexp(x) along `axis`; finite for logits of any magnitude.
Tensor log_softmax(const Tensor& x, int64_t axis = -1);

// --- convolutional networks ---------------------------------------------------------------------
// Images are channels-last, as Keras: x (N, H, W, C). Kernels are Keras' (KH, KW, C, F).

// A height and width: a window, a stride. Size2(3) is 3x3; Size2(5, 3) is 5 high, 3 wide.
struct Size2 {
  int64_t h = 1, w = 1;
  Size2() = default;
  Size2(int64_t n) : h(n), w(n) {}  // NOLINT: implicit by design, as Keras' kernel_size=3
  Size2(int64_t height, int64_t width) : h(height), w(width) {}
  bool operator==(const Size2&) const = default;
};

// Keras' padding: valid (no padding; windows that do not fit are dropped) or same (output
// size ceil(in / stride), the padding split as TensorFlow does, the extra row/column at the end).
enum class Padding { valid, same };

struct Conv2DOptions {
  Size2 strides = 1;
  Padding padding = Padding::valid;
  FusedActivation act = FusedActivation::none;  // fused into the primitive; backward uses y
};

// act(x (N, H, W, C) * kernel (KH, KW, C, F) + bias (F)) -> (N, OH, OW, F), a cross-correlation
// as every framework computes it. bias may be an undefined Tensor (no bias). On oneDNN.
Tensor conv2d(const Tensor& x, const Tensor& kernel, const Tensor& bias, const Conv2DOptions& options = {});

struct Conv2DTransposeOptions {
  Size2 strides = 1;
  Padding padding = Padding::valid;
  std::optional<Size2> output_padding{};  // Keras' None: the size that valid / same imply
  Size2 dilation_rate = 1;
  FusedActivation act = FusedActivation::none;
};

// The transposed convolution (Keras' Conv2DTranspose, TensorFlow's conv2d_transpose, the
// gradient of conv2d with respect to its input): act(x (N, H, W, C) *^T kernel (KH, KW, F, C) +
// bias (F)) -> (N, OH, OW, F). Note Keras' kernel layout (KH, KW, out = F, in = C), the reverse
// of conv2d's. Each input cell (i, j) adds x[i, j] w[p, q] at output (i s + p d - top, ...).
// OH as Keras' deconv_output_length with the dilated span K' = (KH - 1) d + 1: without
// output_padding valid gives H s + max(K' - s, 0), same H s; with output_padding P,
// (H - 1) s + K' + P for valid, (H - 1) s + K' % 2 + P for same (P < s). The cropping of the
// full (H - 1) s + K' rows is TensorFlow's: none at the top for valid; for same, the 'same'
// padding of the forward convolution from OH rows, the smaller half at the top. bias may be
// undefined. On oneDNN.
Tensor conv2d_transpose(const Tensor& x, const Tensor& kernel, const Tensor& bias,
                        const Conv2DTransposeOptions& options = {});

// Sequences are channels-last too: x (N, T, C), Conv1D kernels Keras' (K, C, F).
// Keras' Conv1D padding: valid and same as Padding, or causal: all the padding, (K - 1) dilation
// cells, before the start, so output t sees inputs up to t only (WaveNet).
enum class Padding1D { valid, same, causal };

struct Conv1DOptions {
  int64_t strides = 1;
  Padding1D padding = Padding1D::valid;
  int64_t dilation_rate = 1;  // taps this many steps apart; 'same' pads for the dilated span
  FusedActivation act = FusedActivation::none;
};

// act(x (N, T, C) * kernel (K, C, F) + bias (F)) -> (N, OT, F): conv2d's oneDNN kernel on
// (N, 1, T, C). bias may be undefined. OT: valid floor((T - span) / s) + 1, same ceil(T / s),
// causal floor((T - 1) / s) + 1, with span = (K - 1) dilation + 1.
Tensor conv1d(const Tensor& x, const Tensor& kernel, const Tensor& bias, const Conv1DOptions& options = {});

// The maximum / the mean of each pool window: (N, H, W, C) -> (N, OH, OW, C). The average
// counts only real cells: a 'same' window over the border divides by the cells it covers
// (Keras' AveragePooling2D; torch's count_include_pad=False).
Tensor max_pool2d(const Tensor& x, Size2 pool, Size2 strides, Padding padding = Padding::valid);
Tensor avg_pool2d(const Tensor& x, Size2 pool, Size2 strides, Padding padding = Padding::valid);
// The mean over H and W: (N, H, W, C) -> (N, C).
Tensor global_avg_pool2d(const Tensor& x);

// Resizing channels-last images (UpSampling2D, ZeroPadding2D, Cropping2D; GAN / VAE generators).
// Keras' UpSampling2D interpolations that Lamina runs: nearest (each pixel repeated) and bilinear
// (half-pixel centers, the edge pixels clamped: tf.image.resize, torch's F.interpolate with
// align_corners=False).
enum class Interpolation { nearest, bilinear };
// (N, H, W, C) -> (N, H size.h, W size.w, C), on oneDNN's resampling primitive. backward: each
// output cell's dy goes back to the input cells it read, with the same weights.
Tensor upsample2d(const Tensor& x, Size2 size, Interpolation interpolation = Interpolation::nearest);

// Cells added (zero_pad2d) or removed (crop2d) at each side of an image; all >= 0.
struct Margins2 {
  int64_t top = 0, bottom = 0, left = 0, right = 0;
  bool operator==(const Margins2&) const = default;
};
// (N, H, W, C) -> (N, top + H + bottom, left + W + right, C), the new cells 0. backward: the
// crop of dy.
Tensor zero_pad2d(const Tensor& x, Margins2 padding);
// (N, H, W, C) -> (N, H - top - bottom, W - left - right, C); the result must keep at least one
// row and column. backward: dy zero-padded back to x's shape.
Tensor crop2d(const Tensor& x, Margins2 cropping);

// Inverted dropout: when training, each element is zeroed with probability `rate` and the
// kept ones are scaled by 1 / (1 - rate), so the expected value is unchanged; the mask comes
// from `gen`. The identity when !training or rate == 0. rate in [0, 1).
Tensor dropout(const Tensor& x, float rate, Generator& gen, bool training);

// Batch normalization over the last axis (channels), Keras' BatchNormalization: x (..., C);
// gamma, beta, moving_mean, moving_var (C). gamma / beta may be undefined (1 and 0).
// training: normalizes with the batch mean and biased variance over all other axes and
//   updates the moving statistics in place: moving = moving * momentum + batch * (1 - momentum).
// inference: normalizes with the moving statistics (an affine map).
// y = (x - mean) / sqrt(var + epsilon) * gamma + beta. Gradients reach x, gamma and beta.
Tensor batch_norm(const Tensor& x, const Tensor& gamma, const Tensor& beta, const Tensor& moving_mean,
                  const Tensor& moving_var, bool training, float momentum = 0.99f, float epsilon = 1e-3f);

// batch_norm whose training statistics are those of the whole global batch, spread over the
// ranks of `comm` (Keras' SyncBatchNormalization, PyTorch's SyncBatchNorm): each rank's per-channel
// sums and its row count are summed over ranks (one allreduce forward, one backward), so every
// rank normalizes with the same mean and variance and updates the same moving statistics. A rank
// with no rows still takes part (both collectives are called on every rank, in the same order).
// Backward treats each rank's loss as the mean over its own rows, weighted by its share of the
// global rows (as fit's gradient reduction does), so the input gradients are those of the global
// batch's loss; gamma / beta get this rank's part, to be summed over ranks with the other weights.
// Inference, or a communicator of one rank: batch_norm.
Tensor sync_batch_norm(const Tensor& x, const Tensor& gamma, const Tensor& beta, const Tensor& moving_mean,
                       const Tensor& moving_var, distributed::Communicator& comm, bool training,
                       float momentum = 0.99f, float epsilon = 1e-3f);

// Layer normalization over the last axis: x (..., C); gamma, beta (C) (either may be an
// undefined Tensor = no scale / no centering). y = (x - mean) * rstd * gamma + beta, with mean and
// biased variance over the last axis of each row, rstd = 1/sqrt(var + epsilon). No moving
// statistics: training and inference are the same. Gradients reach x, gamma and beta. Keras'
// LayerNormalization (epsilon 1e-3, the default here); PyTorch's F.layer_norm over the last axis
// uses 1e-5: https://pytorch.org/docs/stable/generated/torch.nn.functional.layer_norm.html
//   Tensor h = layer_norm(x, gamma, beta);          // (N, T, C), gamma, beta (C) -> (N, T, C)
//   Tensor z = layer_norm(x, Tensor(), Tensor());   // normalization only
//   Tensor t = layer_norm(x, gamma, beta, 1e-5f);   // PyTorch's default epsilon
Tensor layer_norm(const Tensor& x, const Tensor& gamma, const Tensor& beta, float epsilon = 1e-3f);

// --- recurrent networks -----------------------------------------------------------------------
// One recurrent layer over a whole sequence, Keras' cells with Keras' weight layouts (gate blocks
// side by side along the last axis). x (N, T, I), U units:
//   simple            kernel (I, U),  recurrent_kernel (U, U),  bias (U):  h = act(x K + h R + b)
//   lstm              kernel (I, 4U), recurrent_kernel (U, 4U), bias (4U): gates i, f, c, o
//   gru               kernel (I, 3U), recurrent_kernel (U, 3U), bias (3U): gates z, r, h; the reset
//                     applied before the recurrent matmul (Keras' reset_after=False)
//   gru_reset_after   as gru with bias (2, 3U) (input row, recurrent row) and the reset applied
//                     after the recurrent matmul: hh = act(x K_h + b_h + r * (h R_h + b'_h))
//                     (Keras' default, PyTorch's and cuDNN's GRU)
// GRU: h = z * h_prev + (1 - z) * hh.
enum class RnnCell { simple, lstm, gru, gru_reset_after };

// An RNN activation: one that oneDNN runs (tanh, sigmoid, relu), or with kind none any elementwise
// function `fn` (an empty fn is the identity), which runs on the reference path.
struct RnnActivation {
  FusedActivation kind = FusedActivation::tanh;
  std::function<Tensor(const Tensor&)> fn{};
};

struct RnnOptions {
  // Process time right to left (Keras' go_backwards). The sequence returned stays in processing
  // order (reversed), as Keras returns it.
  bool reverse = false;
  RnnActivation activation{FusedActivation::tanh, {}};            // Keras' activation
  RnnActivation recurrent_activation{FusedActivation::sigmoid, {}};  // gates (LSTM, GRU)
  // (N, T) of 0 / 1, in x's time order: at a masked step the states are carried over unchanged
  // and the output repeats the previous step's (zeros before the first unmasked step), as Keras.
  Tensor mask{};
  // A masked step outputs zeros instead of repeating the previous output (Keras' RNN option).
  bool zero_output_for_mask = false;
  // (N, U): multiplies the previous h where the recurrent matmul reads it (Keras' recurrent_dropout
  // mask; a GRU's update z * h_prev + (1 - z) * hh mixes the undropped h, as Keras' GRUCell
  // implementation 1 — its default implementation 2 skips recurrent dropout altogether).
  Tensor recurrent_dropout{};
  // Run the composed reference (one matmul per step) even when oneDNN could.
  bool reference = false;
};

// sequence (N, T, U): the output at each step; h (N, U): the final hidden state; c (N, U): the
// final cell state (LSTM only, else undefined).
struct RnnResult {
  Tensor sequence, h, c;
};

// bias may be undefined (no bias); h0 (N, U) and c0 (N, U, LSTM only) may be undefined (zeros).
// Gradients reach x, the weights and the initial states. Runs on oneDNN's RNN primitives unless a
// mask, a recurrent-dropout mask or another activation asks for the reference path (per step, of
// the ops above).
RnnResult rnn(RnnCell cell, const Tensor& x, const Tensor& kernel, const Tensor& recurrent_kernel,
              const Tensor& bias, const Tensor& h0 = Tensor(), const Tensor& c0 = Tensor(),
              const RnnOptions& options = {});

// --- tensor ops for custom losses and layers (N-d, indexing, selection) ----------------------
// PyTorch's semantics and names (https://pytorch.org/docs/stable/torch.html) unless a comment
// says otherwise. Axes may be negative everywhere. Index tensors hold integer-valued floats
// (Lamina tensors are float32); a non-integer or out-of-range index is a ValueError naming the
// op, the value and its position. Indices themselves are never negative (as torch.gather).
//   Tensor s = matmul(q, transpose(k, -2, -1));   // (B, H, T, D) @ (B, H, D, T) -> (B, H, T, T)
//   Tensor p = gather(log_softmax(z), -1, labels.reshape({-1, 1}));  // (N, C), (N, 1) -> (N, 1)
//   Tensor r6 = clamp(x, 0.f, 6.f);                // relu6

// Batched matmul, as torch.matmul: (..., M, K) @ (..., K, N) -> (..., M, N), the batch
// dimensions broadcast. A 1-D a (K) is taken as (1, K) and a 1-D b (K) as (K, 1), and the added
// dimension is removed from the result: (K) @ (K) -> (), (M, K) @ (K) -> (M). Two 2-D operands
// take the plain (M, K) @ (K, N) path declared above (same function).
//   Tensor y = matmul(x, w);   // (N, T, C) @ (C, U) -> (N, T, U): one GEMM over N*T rows
// Swaps two axes: (..., A, ..., B, ...) -> (..., B, ..., A, ...), a copy. transpose(x, -2, -1)
// transposes the last two (batched matrices).
Tensor transpose(const Tensor& x, int64_t axis0, int64_t axis1);
// Reorders all axes: y.dim(i) == x.dim(dims[i]); dims is a permutation of [0, rank) (negative
// entries count from the end). A copy. (N, H, W, C) with {0, 3, 1, 2} -> (N, C, H, W).
Tensor permute(const Tensor& x, const std::vector<int64_t>& dims);

// Elements begin, begin + step, ... (< end) along `axis`, as Python's x[begin:end:step]: negative
// begin / end count from the end, both are clamped to [0, n] (so INT64_MAX means "to the end"),
// step >= 1. (A, n, B) -> (A, ceil((end - begin) / step), B); a copy. Also x.slice(...).
Tensor slice(const Tensor& x, int64_t axis, int64_t begin, int64_t end, int64_t step = 1);
// The entries indices[0], indices[1], ... along `axis`: (A, n, B) -> (A, len(indices), B).
// Repeats are allowed (their gradients add). indices in [0, n). The tensor form takes a 1-D
// (or scalar) tensor of integer-valued floats.
Tensor index_select(const Tensor& x, int64_t axis, const std::vector<int64_t>& indices);
Tensor index_select(const Tensor& x, int64_t axis, const Tensor& indices);
// torch.gather: y[i][j][k] = x[i][index[i][j][k]][k] for axis 1, likewise for any axis and rank.
// index has x's rank, index.dim(d) <= x.dim(d) for d != axis; y has index's shape. The
// gradient scatters back (adds where an index repeats). No gradient reaches index.
Tensor gather(const Tensor& x, int64_t axis, const Tensor& index);
// labels (...) of integer-valued floats in [0, num_classes) -> (..., num_classes) of 0 / 1
// (F.one_hot with float output). No gradient. num_classes >= 1.
Tensor one_hot(const Tensor& labels, int64_t num_classes);

// Joins same-shaped inputs (at least one) along a new axis: k of (A, B) with axis 1 -> (A, k, B).
// axis in [-(rank + 1), rank].
Tensor stack(const std::vector<Tensor>& xs, int64_t axis = 0);
// Cuts x along `axis` into pieces of the given sizes, which must add up to x.dim(axis)
// (torch.split with a list of sections). Each piece is a differentiable copy (slice).
std::vector<Tensor> split(const Tensor& x, const std::vector<int64_t>& sizes, int64_t axis = 0);
// Cuts x into `chunks` pieces of ceil(n / chunks) along `axis`, the last one smaller; fewer
// pieces when n is small (torch.chunk). For "pieces of size s", use split with the sizes.
std::vector<Tensor> chunk(const Tensor& x, int64_t chunks, int64_t axis = 0);

// a where cond != 0, else b; cond, a and b broadcast together (as add). No gradient reaches
// cond; da and db get dy where they were chosen (summed over broadcast axes). NaN in cond is true.
Tensor where(const Tensor& cond, const Tensor& a, const Tensor& b);
// min(max(x, lo), hi), as torch.clamp (lo > hi gives hi everywhere; NaN stays NaN). dx = dy where
// lo <= x <= hi (bounds included, as torch), else 0. Use -INFINITY / INFINITY for one side.
Tensor clamp(const Tensor& x, float lo, float hi);
// |x|; dx = dy * sign(x), 0 at x == 0 (as torch).
Tensor abs(const Tensor& x);
// x^p elementwise; dx = dy * p * x^(p - 1) (0 for p == 0, as torch).
Tensor pow(const Tensor& x, float p);
// x^e elementwise, x and e broadcasting (as add). dx = dy * e * x^(e - 1); de = dy * x^e * log(x),
// taken as 0 where x == 0 and e >= 0 (as torch; log 0 would make it NaN or infinite). A negative
// x with a non-integer e gives NaN, as std::pow.
Tensor pow(const Tensor& x, const Tensor& e);

// The largest / smallest value along `axis`: (A, n, B) -> (A, B) ((A, 1, B) with keepdim).
// dy goes to one element per slice: the first maximum (minimum), as torch.max(x, dim)'s
// values; a NaN counts as the extreme (the first NaN wins, and the value is NaN).
Tensor max(const Tensor& x, int64_t axis, bool keepdim = false);
Tensor min(const Tensor& x, int64_t axis, bool keepdim = false);
// The position of that element, as a float: (A, n, B) -> (A, B) ((A, 1, B) with keepdim). No
// gradient (an index is piecewise constant).
Tensor argmax(const Tensor& x, int64_t axis, bool keepdim = false);
Tensor argmin(const Tensor& x, int64_t axis, bool keepdim = false);

// Running sum along `axis`: y[.., j, ..] = sum_{i <= j} x[.., i, ..]; same shape.
// dx = the reverse running sum of dy. Accumulates in double.
Tensor cumsum(const Tensor& x, int64_t axis);

}  // namespace lamina
