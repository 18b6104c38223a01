// Losses computed without the autograd graph, for training steps that compute their own
// gradients (model/dense_chain.cpp). They share their checks and formulas with the ops in
// losses.cpp, and give the same values up to rounding. Internal.
#pragma once

#include <cstdint>

namespace lamina::detail {

// Sparse categorical cross-entropy (Keras' sum_over_batch_size, weight 1) on a last layer's
// pre-activation z (rows, c), whose output is z itself (from_logits, softmax_output false) or
// softmax(z) (probabilities, softmax_output true). Writes the output to pred and dLoss/dz to dz
// (both rows x c, apart from z and from each other), and returns the mean loss. ValueError
// when a label is not a class index.
double sparse_crossentropy_of_logits(const float* labels, const float* z, int64_t rows, int64_t c, bool softmax_output,
                                     float* pred, float* dz);

}  // namespace lamina::detail
