// rnn: one recurrent layer (SimpleRNN, LSTM, GRU) over a whole sequence, Keras' cells and weight
// layouts. x (N, T, I) -> sequence (N, T, U), final h (N, U), final c (N, U) (LSTM).
// Two paths with one meaning:
// - oneDNN's RNN primitives (the default): forward keeps a workspace; backward runs the
//   primitive's backward and maps the gradients back to Keras' layouts. Saves x, the weights,
//   the initial states and the workspace.
// - a reference of composed ops (one matmul per step, the input projection done for all steps
//   at once): what oneDNN cannot do (masks, recurrent dropout, other activations), and the
//   oracle the tests hold the fast path to. Its backward is the composed ops'.
// go_backwards (options.reverse) flips x (and the mask) in time first; the result stays in
// processing order, as Keras returns it.
#include <numeric>
#include <string>
#include <utility>
#include <vector>

#include "kernels/elementwise.hpp"
#include "kernels/rnn.hpp"
#include "lamina/autograd.hpp"
#include "lamina/ops.hpp"

namespace lamina {

namespace {

int64_t gates_of(RnnCell cell) {
  switch (cell) {
    case RnnCell::simple: return 1;
    case RnnCell::lstm: return 4;
    default: return 3;
  }
}

const char* cell_name(RnnCell cell) {
  switch (cell) {
    case RnnCell::simple: return "SimpleRNN";
    case RnnCell::lstm: return "LSTM";
    case RnnCell::gru: return "GRU (reset_after=False)";
    default: return "GRU";
  }
}

void check_shapes(RnnCell cell, const Tensor& x, const Tensor& kernel, const Tensor& recurrent_kernel,
                  const Tensor& bias, const Tensor& h0, const Tensor& c0, const RnnOptions& o) {
  const std::string where = std::string("rnn (") + cell_name(cell) + "): ";
  if (x.rank() != 3) throw ShapeError(where + "x must be (batch, time, features), got " + x.shape().str());
  if (x.dim(1) == 0) throw ShapeError(where + "x " + x.shape().str() + " has no time step");
  const int64_t n = x.dim(0), t = x.dim(1), i = x.dim(2), g = gates_of(cell);
  if (recurrent_kernel.rank() != 2 || recurrent_kernel.dim(1) % g != 0 ||
      recurrent_kernel.dim(0) * g != recurrent_kernel.dim(1))
    throw ShapeError(where + "recurrent_kernel must be (units, " + std::to_string(g) + " * units), got " +
                     recurrent_kernel.shape().str());
  const int64_t u = recurrent_kernel.dim(0);
  if (kernel.shape() != Shape{i, g * u})
    throw ShapeError(where + "kernel must be (" + std::to_string(i) + ", " + std::to_string(g * u) +
                     ") for x " + x.shape().str() + " and " + std::to_string(u) + " units, got " +
                     kernel.shape().str());
  const Shape bias_shape = cell == RnnCell::gru_reset_after ? Shape{2, g * u} : Shape{g * u};
  if (bias.defined() && bias.shape() != bias_shape)
    throw ShapeError(where + "bias must be " + bias_shape.str() + ", got " + bias.shape().str());
  const Shape state{n, u};
  if (h0.defined() && h0.shape() != state)
    throw ShapeError(where + "initial h must be " + state.str() + ", got " + h0.shape().str());
  if (c0.defined() && cell != RnnCell::lstm) throw ValueError(where + "only an LSTM has an initial cell state");
  if (c0.defined() && c0.shape() != state)
    throw ShapeError(where + "initial c must be " + state.str() + ", got " + c0.shape().str());
  if (o.mask.defined() && o.mask.shape() != Shape{n, t})
    throw ShapeError(where + "mask must be " + Shape{n, t}.str() + ", got " + o.mask.shape().str());
  if (o.recurrent_dropout.defined() && o.recurrent_dropout.shape() != state)
    throw ShapeError(where + "recurrent dropout mask must be " + state.str() + ", got " +
                     o.recurrent_dropout.shape().str());
}

Tensor activate(const RnnActivation& a, const Tensor& x) {
  switch (a.kind) {
    case FusedActivation::tanh: return tanh(x);
    case FusedActivation::sigmoid: return sigmoid(x);
    case FusedActivation::relu: return relu(x);
    case FusedActivation::none: break;
  }
  return a.fn ? a.fn(x) : x;
}

// x's steps in reverse order along axis 1.
Tensor flip_time(const Tensor& x) {
  std::vector<int64_t> order(static_cast<size_t>(x.dim(1)));
  std::iota(order.rbegin(), order.rend(), int64_t{0});
  return index_select(x, 1, order);
}

Tensor step(const Tensor& seq, int64_t t) {  // (N, T, C) -> (N, C) at step t
  return reshape(slice(seq, 1, t, t + 1), {seq.dim(0), seq.dim(2)});
}

// --- the reference --------------------------------------------------------------------------------

RnnResult reference(RnnCell cell, const Tensor& x, const Tensor& kernel, const Tensor& rk, const Tensor& bias,
                    const Tensor& h0, const Tensor& c0, const RnnOptions& o, const Tensor& mask) {
  const int64_t n = x.dim(0), t_steps = x.dim(1), u = rk.dim(0);
  const bool after = cell == RnnCell::gru_reset_after;
  Tensor b_in, b_rec;  // the recurrent bias is separate only with reset_after
  if (bias.defined()) {
    b_in = after ? reshape(slice(bias, 0, 0, 1), {3 * u}) : bias;
    if (after) b_rec = reshape(slice(bias, 0, 1, 2), {3 * u});
  }
  Tensor xw = matmul(x, kernel);  // every step's input projection in one GEMM
  if (b_in.defined()) xw = xw + b_in;
  // GRU with the reset before the matmul multiplies r * h by the candidate's block alone.
  Tensor rk_zr, rk_h;
  if (cell == RnnCell::gru) {
    rk_zr = slice(rk, 1, 0, 2 * u);
    rk_h = slice(rk, 1, 2 * u, 3 * u);
  }
  Tensor h = h0.defined() ? h0 : Tensor::zeros({n, u});
  Tensor c = cell == RnnCell::lstm ? (c0.defined() ? c0 : Tensor::zeros({n, u})) : Tensor();
  Tensor prev_out = Tensor::zeros({n, u});
  const auto act = [&](const Tensor& v) { return activate(o.activation, v); };
  const auto gate = [&](const Tensor& v) { return activate(o.recurrent_activation, v); };
  std::vector<Tensor> outputs;
  for (int64_t t = 0; t < t_steps; ++t) {
    const Tensor xt = step(xw, t);
    // Recurrent dropout: the h that the recurrent matmul reads (GRU's update mixes the kept h).
    const Tensor hr = o.recurrent_dropout.defined() ? h * o.recurrent_dropout : h;
    Tensor h_new, c_new;
    switch (cell) {
      case RnnCell::simple: h_new = act(xt + matmul(hr, rk)); break;
      case RnnCell::lstm: {
        const auto z = split(xt + matmul(hr, rk), {u, u, u, u}, 1);
        c_new = gate(z[1]) * c + gate(z[0]) * act(z[2]);
        h_new = gate(z[3]) * act(c_new);
        break;
      }
      case RnnCell::gru: {
        const auto xs = split(xt, {u, u, u}, 1);
        const auto zr = split(matmul(hr, rk_zr), {u, u}, 1);
        const Tensor z = gate(xs[0] + zr[0]), r = gate(xs[1] + zr[1]);
        h_new = z * h + (1.f - z) * act(xs[2] + matmul(r * hr, rk_h));
        break;
      }
      case RnnCell::gru_reset_after: {
        Tensor inner = matmul(hr, rk);
        if (b_rec.defined()) inner = inner + b_rec;
        const auto xs = split(xt, {u, u, u}, 1);
        const auto hs = split(inner, {u, u, u}, 1);
        const Tensor z = gate(xs[0] + hs[0]), r = gate(xs[1] + hs[1]);
        h_new = z * h + (1.f - z) * act(xs[2] + r * hs[2]);
        break;
      }
    }
    if (mask.defined()) {  // Keras: a masked step keeps the states and repeats the last output
      const Tensor m = reshape(slice(mask, 1, t, t + 1), {n, 1});
      prev_out = where(m, h_new, o.zero_output_for_mask ? Tensor::zeros({n, u}) : prev_out);
      h = where(m, h_new, h);
      if (c.defined()) c = where(m, c_new, c);
    } else {
      prev_out = h = h_new;
      c = c_new;
    }
    outputs.push_back(prev_out);
  }
  return {stack(outputs, 1), h, c};
}

// --- oneDNN ------------------------------------------------------------------------------------------

kernels::RnnCellKind kind_of(RnnCell cell, FusedActivation act) {
  switch (cell) {
    case RnnCell::lstm: return kernels::RnnCellKind::lstm;
    case RnnCell::gru: return kernels::RnnCellKind::gru;
    case RnnCell::gru_reset_after: return kernels::RnnCellKind::lbr_gru;
    case RnnCell::simple: break;
  }
  return act == FusedActivation::relu      ? kernels::RnnCellKind::vanilla_relu
         : act == FusedActivation::sigmoid ? kernels::RnnCellKind::vanilla_sigmoid
                                           : kernels::RnnCellKind::vanilla_tanh;
}

bool onednn_can(RnnCell cell, const RnnOptions& o) {
  if (o.reference || o.mask.defined() || o.recurrent_dropout.defined()) return false;
  if (cell == RnnCell::simple) return o.activation.kind != FusedActivation::none;
  return o.activation.kind == FusedActivation::tanh && o.recurrent_activation.kind == FusedActivation::sigmoid;
}

// Keras' bias -> oneDNN's (bias_rows, U). The linear-before-reset GRU takes
// [b_in_z + b_rec_z, b_in_r + b_rec_r, b_in_h, b_rec_h]; the others the same numbers.
Tensor onednn_bias(const kernels::RnnGeometry& g, const Tensor& bias) {
  if (!bias.defined()) return Tensor::zeros({g.bias_rows() * g.u});
  if (g.cell != kernels::RnnCellKind::lbr_gru) return bias;
  const int64_t u = g.u;
  Tensor b = Tensor::empty({4 * u});
  const float *in = bias.data(), *rec = bias.data() + 3 * u;
  float* d = b.data();
  for (int64_t k = 0; k < 2 * u; ++k) d[k] = in[k] + rec[k];
  std::copy_n(in + 2 * u, u, d + 2 * u);
  std::copy_n(rec + 2 * u, u, d + 3 * u);
  return b;
}

RnnResult onednn(RnnCell cell, const Tensor& x, const Tensor& kernel, const Tensor& rk, const Tensor& bias,
                 const Tensor& h0, const Tensor& c0, const RnnOptions& o) {
  const kernels::RnnGeometry g{kind_of(cell, o.activation.kind), x.dim(1), x.dim(0), x.dim(2), rk.dim(0)};
  const bool lstm = cell == RnnCell::lstm;
  const Tensor h_init = h0.defined() ? h0 : Tensor::zeros({g.n, g.u});
  const Tensor c_init = lstm ? (c0.defined() ? c0 : Tensor::zeros({g.n, g.u})) : Tensor();
  const Tensor b = onednn_bias(g, bias);

  // The inputs that may want a gradient, and where each sits in the node's input list.
  std::vector<Tensor> inputs = {x, kernel, rk};
  const auto slot = [&](const Tensor& t) {
    if (!t.defined()) return -1;
    inputs.push_back(t);
    return static_cast<int>(inputs.size()) - 1;
  };
  const int ib = slot(bias), ih = slot(h0), ic = slot(c0);
  bool training = grad_enabled();
  if (training) {
    training = false;
    for (const Tensor& t : inputs) training = training || t.requires_grad();
  }

  Tensor y = Tensor::empty({g.n, g.t, g.u});
  Tensor c = lstm ? Tensor::empty({g.n, g.u}) : Tensor();
  const kernels::RnnSaved saved =
      kernels::rnn_forward(g, training, x.data(), kernel.data(), rk.data(), b.data(), h_init.data(),
                           lstm ? c_init.data() : nullptr, y.data(), lstm ? c.data() : nullptr);

  // The final c is its own tensor; its gradient is handed to the sequence's backward (which runs
  // after it: c is recorded as a function of the sequence) through this slot.
  auto dc = std::make_shared<Tensor>();
  record("rnn", y, std::move(inputs),
         [g, saved, b, h_init, c_init, dc, ib, ih, ic](BackwardContext& ctx) {
           const int64_t state = g.n * g.u;
           // Each gradient goes straight into its input's buffer when that is new (oneDNN
           // overwrites), else into a scratch buffer that is added afterwards.
           std::vector<std::pair<Tensor, BackwardContext::GradOut>> pending;
           const auto target = [&](int input, const Shape& shape) -> float* {
             if (input >= 0 && ctx.needs(static_cast<size_t>(input))) {
               const BackwardContext::GradOut out = ctx.dx_out(static_cast<size_t>(input));
               if (!out.accumulate) return out.data;
               pending.emplace_back(Tensor::empty(shape), out);
               return pending.back().first.data();
             }
             pending.emplace_back(Tensor::empty(shape), BackwardContext::GradOut{nullptr, false});
             return pending.back().first.data();
           };
           float* dx = target(0, {g.n * g.t * g.i});
           float* dwx = target(1, {g.i * g.gates() * g.u});
           float* dwh = target(2, {g.u * g.gates() * g.u});
           const bool lbr = g.cell == kernels::RnnCellKind::lbr_gru;  // its bias needs mapping back
           Tensor dbias_onednn = lbr ? Tensor::empty({4 * g.u}) : Tensor();
           float* dbias = lbr ? dbias_onednn.data() : target(ib, {g.bias_rows() * g.u});
           float* dh0 = target(ih, {state});
           float* dc0 = g.has_cell_state() ? target(ic, {state}) : nullptr;
           kernels::rnn_backward(g, saved, ctx.input(0).data(), ctx.input(1).data(), ctx.input(2).data(), b.data(),
                                 h_init.data(), g.has_cell_state() ? c_init.data() : nullptr, ctx.output().data(),
                                 ctx.dy().data(), dc->defined() ? dc->data() : nullptr, dx, dwx, dwh, dbias, dh0, dc0);
           if (lbr && ib >= 0 && ctx.needs(static_cast<size_t>(ib))) {  // back to Keras' (input row, recurrent row)
             const int64_t u = g.u;
             const float* d = dbias_onednn.data();
             float* k = target(ib, {6 * u});
             std::copy_n(d, 3 * u, k);
             std::copy_n(d, 2 * u, k + 3 * u);
             std::copy_n(d + 3 * u, u, k + 5 * u);
           }
           for (const auto& [scratch, out] : pending)
             if (out.data) kernels::add_into(scratch.data(), out.data, scratch.numel());
         });
  if (lstm)
    record("rnn_c", c, {y}, [dc](BackwardContext& ctx) {
      *dc = ctx.dy();
      ctx.dx(0);  // makes sure the sequence's backward runs even if only c was used
    });
  return {y, step(y, g.t - 1), c};
}

}  // namespace

RnnResult rnn(RnnCell cell, const Tensor& x, const Tensor& kernel, const Tensor& recurrent_kernel, const Tensor& bias,
              const Tensor& h0, const Tensor& c0, const RnnOptions& options) {
  check_shapes(cell, x, kernel, recurrent_kernel, bias, h0, c0, options);
  const Tensor xs = options.reverse ? flip_time(x) : x;
  if (onednn_can(cell, options)) return onednn(cell, xs, kernel, recurrent_kernel, bias, h0, c0, options);
  const Tensor mask = options.reverse && options.mask.defined()
                          ? reshape(flip_time(reshape(options.mask, {x.dim(0), x.dim(1), 1})), {x.dim(0), x.dim(1)})
                          : options.mask;
  return reference(cell, xs, kernel, recurrent_kernel, bias, h0, c0, options, mask);
}

}  // namespace lamina
