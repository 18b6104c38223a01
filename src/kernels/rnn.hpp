// One recurrent layer over a whole sequence on oneDNN's RNN primitives: vanilla RNN, LSTM, GRU
// and linear-before-reset GRU, forward (training keeps a workspace) and backward. Everything
// here is in oneDNN's gate order and bias layout; src/ops/rnn.cpp maps Keras' onto it.
// Internal to the library.
#pragma once

#include <compare>
#include <cstdint>
#include <memory>

namespace lamina::kernels {

// vanilla_*: h = act(x Wx + h Wh + b), one gate. lstm: gates i, f, c, o (Keras' order).
// gru: gates u (Keras' z), r, o (Keras' h), the reset applied before the recurrent matmul.
// lbr_gru: the same gates, the reset applied after it (Keras' reset_after=True), four biases.
enum class RnnCellKind { vanilla_tanh, vanilla_relu, vanilla_sigmoid, lstm, gru, lbr_gru };

struct RnnGeometry {
  RnnCellKind cell = RnnCellKind::lstm;
  int64_t t = 0, n = 0, i = 0, u = 0;  // time steps, batch, input features, units
  auto operator<=>(const RnnGeometry&) const = default;
  int64_t gates() const;        // 1, 4 or 3
  int64_t bias_rows() const;    // gates(), or 4 for lbr_gru
  bool has_cell_state() const { return cell == RnnCellKind::lstm; }
};

// What backward needs from a training forward besides the inputs and the output sequence.
struct RnnSaved {
  std::shared_ptr<float[]> workspace, last_h, last_c;
};

// x (N, T, I) batch-major, left to right; wx (I, G*U) and wh (U, G*U), the gate blocks side by
// side (Keras' kernel layout, oneDNN's ldigo); bias (bias_rows, U); h0, c0 (N, U) (c0 for LSTM
// only). Writes y (N, T, U) and, when not null, c_last (N, U) (LSTM). training keeps what
// backward needs (the workspace); otherwise the result is empty.
RnnSaved rnn_forward(const RnnGeometry& g, bool training, const float* x, const float* wx, const float* wh,
                     const float* bias, const float* h0, const float* c0, float* y, float* c_last);

// The gradients given dy (N, T, U) and dc_last (N, U) (LSTM; null = zero): dx (N, T, I), dwx,
// dwh, dbias, dh0, dc0 (LSTM) in the forward's layouts, all overwritten. Inputs as given to the
// training forward, y its output, saved what it returned.
void rnn_backward(const RnnGeometry& g, const RnnSaved& saved, const float* x, const float* wx, const float* wh,
                  const float* bias, const float* h0, const float* c0, const float* y, const float* dy,
                  const float* dc_last, float* dx, float* dwx, float* dwh, float* dbias, float* dh0, float* dc0);

}  // namespace lamina::kernels
