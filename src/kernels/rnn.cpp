// oneDNN RNN glue. Sequences stay batch-major (oneDNN reads and writes `ntc` itself, in the
// copy it makes into its workspace anyway); weights are handed over as Keras lays them out
// (ldigo) and reordered when a primitive wants another layout (the backward wants ldgoi).
//
// oneDNN 2.6 facts this relies on (measured): the backward adds into diff_weights_* and
// diff_bias, so they are zeroed first; and the LSTM backward computes a wrong recurrent-weight
// gradient when src_iter / src_iter_c are left out (zero memory descriptors), so every state,
// initial and final, is always passed explicitly (tests/test_rnn.cpp checks that gradient
// against finite differences).
#include "kernels/rnn.hpp"

#include <omp.h>

#include <algorithm>
#include <cstring>
#include <map>
#include <optional>
#include <tuple>
#include <type_traits>
#include <unordered_map>

#include "allocator.hpp"
#include "kernels/dnnl_common.hpp"
#include "kernels/lstm_one.hpp"

namespace lamina::kernels {

int64_t RnnGeometry::gates() const {
  switch (cell) {
    case RnnCellKind::lstm: return 4;
    case RnnCellKind::gru:
    case RnnCellKind::lbr_gru: return 3;
    default: return 1;
  }
}

int64_t RnnGeometry::bias_rows() const { return cell == RnnCellKind::lbr_gru ? 4 : gates(); }

namespace {

using namespace dnnl_glue;
using dnnl::memory;
using tag = memory::format_tag;

// Threads: every step of the sequence synchronizes oneDNN's threads several times (a small GEMM,
// then the gates), so a second thread pays only when one step's work is large. LSTM, forward +
// backward, 1 vs 2 threads on the shared 2-core machine (load average ~5, so not a clean
// measurement): N=32 T=80 I=U=128 (8 MFLOP a step) 15 vs 204 ms; N=64 T=20 I=U=256 (67 MFLOP)
// 108 vs 344 ms; N=128 T=20 I=U=512 (537 MFLOP) 795 vs 3033 ms. Until an idle machine says
// otherwise, only steps above this many FLOPs use every core.
constexpr double kParallelStepFlops = 1e9;

double step_flops(const RnnGeometry& g) {
  return 2.0 * static_cast<double>(g.n) * static_cast<double>((g.i + g.u) * g.gates() * g.u);
}

memory::desc plain(const memory::dims& dims, tag t) { return memory::desc(dims, memory::data_type::f32, t); }

struct Descs {
  memory::desc layer_in, layer_out, iter, weights_layer, weights_iter, bias;
};

// `any` weights let the primitive pick its layout; the user side is always ldigo.
Descs descs(const RnnGeometry& g, bool any_weights) {
  const tag wtag = any_weights ? tag::any : tag::ldigo;
  return {plain({g.t, g.n, g.i}, tag::ntc),
          plain({g.t, g.n, g.u}, tag::ntc),
          plain({1, 1, g.n, g.u}, tag::ldnc),
          plain({1, 1, g.i, g.gates(), g.u}, wtag),
          plain({1, 1, g.u, g.gates(), g.u}, wtag),
          plain({1, 1, g.bias_rows(), g.u}, tag::ldgo)};
}

dnnl::algorithm vanilla_activation(RnnCellKind c) {
  return c == RnnCellKind::vanilla_relu      ? dnnl::algorithm::eltwise_relu
         : c == RnnCellKind::vanilla_sigmoid ? dnnl::algorithm::eltwise_logistic
                                             : dnnl::algorithm::eltwise_tanh;
}

// A weight in Keras' ldigo (`user`) and the layout a primitive wants (`inner`: the same memory
// when they agree, else an owned buffer and the reorder between them).
struct Weights {
  memory user, inner;
  std::optional<dnnl::reorder> to_inner, to_user;

  Weights(const memory::desc& wanted, const memory::dims& dims, bool input) {
    Engine& e = cpu();
    const memory::desc user_md = plain(dims, tag::ldigo);
    user = memory(user_md, e.engine, nullptr);
    if (wanted == user_md) {
      inner = user;
      return;
    }
    inner = memory(wanted, e.engine);
    if (input) to_inner = dnnl::reorder(dnnl::reorder::primitive_desc(e.engine, user_md, e.engine, wanted));
    else to_user = dnnl::reorder(dnnl::reorder::primitive_desc(e.engine, wanted, e.engine, user_md));
  }
  const memory& load(const float* p) {
    user.set_data_handle(const_cast<float*>(p));
    if (to_inner) to_inner->execute(cpu().stream, user, inner);
    return inner;
  }
  // A gradient: where oneDNN adds (zeroed here), later moved to p by finish().
  const memory& target(float* p) {
    user.set_data_handle(p);
    std::memset(inner.get_data_handle(), 0, inner.get_desc().get_size());
    return inner;
  }
  void finish() {
    if (to_user) to_user->execute(cpu().stream, inner, user);
  }
};

// Calls f with the forward primitive descriptor of g's cell (one type per cell kind).
template <class F>
auto with_forward_pd(const RnnGeometry& g, dnnl::prop_kind prop, F f) {
  const Descs d = descs(g, true);
  const auto dir = dnnl::rnn_direction::unidirectional_left2right;
  const dnnl::engine& e = cpu().engine;
  switch (g.cell) {
    case RnnCellKind::lstm:
      return f(dnnl::lstm_forward::primitive_desc(
          dnnl::lstm_forward::desc(prop, dir, d.layer_in, d.iter, d.iter, d.weights_layer, d.weights_iter, d.bias,
                                   d.layer_out, d.iter, d.iter),
          e));
    case RnnCellKind::gru:
      return f(dnnl::gru_forward::primitive_desc(
          dnnl::gru_forward::desc(prop, dir, d.layer_in, d.iter, d.weights_layer, d.weights_iter, d.bias,
                                  d.layer_out, d.iter),
          e));
    case RnnCellKind::lbr_gru:
      return f(dnnl::lbr_gru_forward::primitive_desc(
          dnnl::lbr_gru_forward::desc(prop, dir, d.layer_in, d.iter, d.weights_layer, d.weights_iter, d.bias,
                                      d.layer_out, d.iter),
          e));
    default:
      return f(dnnl::vanilla_rnn_forward::primitive_desc(
          dnnl::vanilla_rnn_forward::desc(prop, vanilla_activation(g.cell), dir, d.layer_in, d.iter,
                                          d.weights_layer, d.weights_iter, d.bias, d.layer_out, d.iter),
          e));
  }
}

struct Forward {
  dnnl::primitive prim;
  Weights wx, wh;
  memory::desc workspace;
};

Forward make_forward(const RnnGeometry& g, bool training) {
  const auto prop = training ? dnnl::prop_kind::forward_training : dnnl::prop_kind::forward_inference;
  return with_forward_pd(g, prop, [&](const auto& pd) {
    return Forward{dnnl::primitive(pd), Weights(pd.weights_layer_desc(), {1, 1, g.i, g.gates(), g.u}, true),
                   Weights(pd.weights_iter_desc(), {1, 1, g.u, g.gates(), g.u}, true),
                   pd.workspace_desc()};
  });
}

struct Backward {
  dnnl::primitive prim;
  Weights wx, wh, dwx, dwh;
  memory dbias;  // owned: oneDNN adds into it
  memory::desc workspace;
};

Backward make_backward(const RnnGeometry& g) {
  const Descs d = descs(g, true);
  const auto dir = dnnl::rnn_direction::unidirectional_left2right;
  const auto prop = dnnl::prop_kind::backward;
  const dnnl::engine& e = cpu().engine;
  const auto make = [&](const auto& pd) {
    return Backward{dnnl::primitive(pd), Weights(pd.weights_layer_desc(), {1, 1, g.i, g.gates(), g.u}, true),
                    Weights(pd.weights_iter_desc(), {1, 1, g.u, g.gates(), g.u}, true),
                    Weights(pd.diff_weights_layer_desc(), {1, 1, g.i, g.gates(), g.u}, false),
                    Weights(pd.diff_weights_iter_desc(), {1, 1, g.u, g.gates(), g.u}, false),
                    memory(d.bias, e), pd.workspace_desc()};
  };
  return with_forward_pd(g, dnnl::prop_kind::forward_training, [&](const auto& hint) {
    using Pd = std::decay_t<decltype(hint)>;
    if constexpr (std::is_same_v<Pd, dnnl::lstm_forward::primitive_desc>) {
      return make(dnnl::lstm_backward::primitive_desc(
          dnnl::lstm_backward::desc(prop, dir, d.layer_in, d.iter, d.iter, d.weights_layer, d.weights_iter, d.bias,
                                    d.layer_out, d.iter, d.iter, d.layer_in, d.iter, d.iter, d.weights_layer,
                                    d.weights_iter, d.bias, d.layer_out, d.iter, d.iter),
          e, hint));
    } else if constexpr (std::is_same_v<Pd, dnnl::gru_forward::primitive_desc>) {
      return make(dnnl::gru_backward::primitive_desc(
          dnnl::gru_backward::desc(prop, dir, d.layer_in, d.iter, d.weights_layer, d.weights_iter, d.bias,
                                   d.layer_out, d.iter, d.layer_in, d.iter, d.weights_layer, d.weights_iter, d.bias,
                                   d.layer_out, d.iter),
          e, hint));
    } else if constexpr (std::is_same_v<Pd, dnnl::lbr_gru_forward::primitive_desc>) {
      return make(dnnl::lbr_gru_backward::primitive_desc(
          dnnl::lbr_gru_backward::desc(prop, dir, d.layer_in, d.iter, d.weights_layer, d.weights_iter, d.bias,
                                       d.layer_out, d.iter, d.layer_in, d.iter, d.weights_layer, d.weights_iter,
                                       d.bias, d.layer_out, d.iter),
          e, hint));
    } else {
      return make(dnnl::vanilla_rnn_backward::primitive_desc(
          dnnl::vanilla_rnn_backward::desc(prop, vanilla_activation(g.cell), dir, d.layer_in, d.iter,
                                           d.weights_layer, d.weights_iter, d.bias, d.layer_out, d.iter, d.layer_in,
                                           d.iter, d.weights_layer, d.weights_iter, d.bias, d.layer_out, d.iter),
          e, hint));
    }
  });
}

template <class Value, class Key, class Make>
Value& cached(std::map<Key, Value>& cache, const Key& key, Make make) {
  auto it = cache.find(key);
  if (it == cache.end()) it = cache.emplace(key, make()).first;
  return it->second;
}

// A memory over the caller's buffer (the descriptors are plain; no copy).
memory wrap(const memory::desc& md, const float* p) { return memory(md, cpu().engine, const_cast<float*>(p)); }

}  // namespace

RnnSaved rnn_forward(const RnnGeometry& g, bool training, const float* x, const float* wx, const float* wh,
                     const float* bias, const float* h0, const float* c0, float* y, float* c_last) {
  // Inference splits the batch over the cores instead, each running the one-thread primitive on
  // its rows (batch-major: a share's x, y and states are contiguous), so that no step waits for
  // the other core. bench's char-lstm predicting its 256 windows on two threads: 4,853 samples/s,
  // against 2,623 when one core ran them all (the step is under kParallelStepFlops).
  if (!training && lstm_one_applies(g)) {  // one sequence: its units split over the cores instead
    lstm_one_forward(g, x, wx, wh, bias, h0, c0, y, c_last);
    return {};
  }
  const int team = training || omp_in_parallel() || g.n < 2
                       ? 1
                       : static_cast<int>(std::min<int64_t>(omp_get_max_threads(), g.n));
  if (team > 1) {
#pragma omp parallel num_threads(team)
    {
      const int64_t t = omp_get_thread_num(), nt = omp_get_num_threads();
      const int64_t n0 = g.n * t / nt, n1 = g.n * (t + 1) / nt;
      RnnGeometry part = g;
      part.n = n1 - n0;
      if (part.n > 0)
        rnn_forward(part, false, x + n0 * g.t * g.i, wx, wh, bias, h0 ? h0 + n0 * g.u : nullptr,
                    c0 ? c0 + n0 * g.u : nullptr, y + n0 * g.t * g.u, c_last ? c_last + n0 * g.u : nullptr);
    }
    return {};
  }
  RnnSaved saved;
  const int64_t state = g.n * g.u;
  saved.last_h = detail::allocate_storage(state);
  saved.last_c = detail::allocate_storage(state);
  const int threads = threads_for(step_flops(g), kParallelStepFlops);
  with_threads(threads, [&] {
    static thread_local std::map<std::tuple<RnnGeometry, bool, int>, Forward> cache;
    Forward& p = cached(cache, std::tuple{g, training, threads}, [&] { return make_forward(g, training); });
    const Descs d = descs(g, false);
    std::unordered_map<int, memory> args = {
        {DNNL_ARG_SRC_LAYER, wrap(d.layer_in, x)},   {DNNL_ARG_SRC_ITER, wrap(d.iter, h0)},
        {DNNL_ARG_WEIGHTS_LAYER, p.wx.load(wx)},      {DNNL_ARG_WEIGHTS_ITER, p.wh.load(wh)},
        {DNNL_ARG_BIAS, wrap(d.bias, bias)},          {DNNL_ARG_DST_LAYER, wrap(d.layer_out, y)},
        {DNNL_ARG_DST_ITER, wrap(d.iter, saved.last_h.get())}};
    if (g.has_cell_state()) {
      args.insert({DNNL_ARG_SRC_ITER_C, wrap(d.iter, c0)});
      args.insert({DNNL_ARG_DST_ITER_C, wrap(d.iter, saved.last_c.get())});
    }
    if (training) {
      saved.workspace = detail::allocate_storage(static_cast<int64_t>((p.workspace.get_size() + 3) / 4));
      args.insert({DNNL_ARG_WORKSPACE, memory(p.workspace, cpu().engine, saved.workspace.get())});
    }
    Engine& e = cpu();
    p.prim.execute(e.stream, args);
    e.stream.wait();
  });
  if (c_last) std::copy_n(saved.last_c.get(), state, c_last);
  if (!training) saved = {};
  return saved;
}

void rnn_backward(const RnnGeometry& g, const RnnSaved& saved, const float* x, const float* wx, const float* wh,
                  const float* bias, const float* h0, const float* c0, const float* y, const float* dy,
                  const float* dc_last, float* dx, float* dwx, float* dwh, float* dbias, float* dh0, float* dc0) {
  const int64_t state = g.n * g.u;
  std::shared_ptr<float[]> zeros = detail::allocate_storage(state);
  std::fill_n(zeros.get(), state, 0.f);
  const int threads = threads_for(2 * step_flops(g), kParallelStepFlops);
  with_threads(threads, [&] {
    static thread_local std::map<std::tuple<RnnGeometry, int>, Backward> cache;
    Backward& p = cached(cache, std::tuple{g, threads}, [&] { return make_backward(g); });
    const Descs d = descs(g, false);
    std::memset(p.dbias.get_data_handle(), 0, p.dbias.get_desc().get_size());
    std::unordered_map<int, memory> args = {
        {DNNL_ARG_SRC_LAYER, wrap(d.layer_in, x)},
        {DNNL_ARG_SRC_ITER, wrap(d.iter, h0)},
        {DNNL_ARG_WEIGHTS_LAYER, p.wx.load(wx)},
        {DNNL_ARG_WEIGHTS_ITER, p.wh.load(wh)},
        {DNNL_ARG_BIAS, wrap(d.bias, bias)},
        {DNNL_ARG_DST_LAYER, wrap(d.layer_out, y)},
        {DNNL_ARG_DST_ITER, wrap(d.iter, saved.last_h.get())},
        {DNNL_ARG_WORKSPACE, memory(p.workspace, cpu().engine, saved.workspace.get())},
        {DNNL_ARG_DIFF_SRC_LAYER, wrap(d.layer_in, dx)},
        {DNNL_ARG_DIFF_SRC_ITER, wrap(d.iter, dh0)},
        {DNNL_ARG_DIFF_WEIGHTS_LAYER, p.dwx.target(dwx)},
        {DNNL_ARG_DIFF_WEIGHTS_ITER, p.dwh.target(dwh)},
        {DNNL_ARG_DIFF_BIAS, p.dbias},
        {DNNL_ARG_DIFF_DST_LAYER, wrap(d.layer_out, dy)},
        {DNNL_ARG_DIFF_DST_ITER, wrap(d.iter, zeros.get())}};
    if (g.has_cell_state()) {
      args.insert({DNNL_ARG_SRC_ITER_C, wrap(d.iter, c0)});
      args.insert({DNNL_ARG_DST_ITER_C, wrap(d.iter, saved.last_c.get())});
      args.insert({DNNL_ARG_DIFF_SRC_ITER_C, wrap(d.iter, dc0)});
      args.insert({DNNL_ARG_DIFF_DST_ITER_C, wrap(d.iter, dc_last ? dc_last : zeros.get())});
    }
    Engine& e = cpu();
    p.prim.execute(e.stream, args);
    p.dwx.finish();
    p.dwh.finish();
    e.stream.wait();
    const float* b = static_cast<const float*>(p.dbias.get_data_handle());
    std::copy_n(b, g.bias_rows() * g.u, dbias);
  });
}

}  // namespace lamina::kernels
