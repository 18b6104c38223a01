// An LSTM's inference forward on one sequence in our own loops, on one core or its units split
// over several (lstm_one.cpp). Internal to the library: rnn_forward takes it where it applies,
// oneDNN's RNN primitive otherwise.
#pragma once

#include "kernels/rnn.hpp"

namespace lamina::kernels {

// Whether lstm_one_forward handles g on this CPU and thread count: AVX-512, an LSTM, a batch of
// one, units a multiple of 16, and a recurrent kernel of 1 MB at most (256 units) or two threads
// or more outside a parallel region with 64 units a core.
bool lstm_one_applies(const RnnGeometry& g);
// rnn_forward's inference for such a g: y (1, T, U), and c_last (1, U) when not null; x, wx, wh,
// bias (4U), h0 and c0 as rnn_forward's.
void lstm_one_forward(const RnnGeometry& g, const float* x, const float* wx, const float* wh, const float* bias,
                      const float* h0, const float* c0, float* y, float* c_last);

}  // namespace lamina::kernels
