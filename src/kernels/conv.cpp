// oneDNN convolution glue. Activations stay NHWC (Lamina's layout); kernels are handed to
// oneDNN as format `any` and reordered from / to Keras' HWIO on each call (a few KB).
//
// Why (oneDNN 2.6, one Zen 5 core, batch 64; us per primitive in isolation, reorders included):
//                               NHWC + HWIO     NHWC + kernel `any`     everything `any`
//                               fwd             fwd  bwd_d  bwd_w       fwd  bwd_d  bwd_w
//   28x28x1 -> 6, 5x5 same     1059 (gemm)      382 (1057)  438        292 (3024)  297
//   14x14x6 -> 16, 5x5          733             219   428   256        204   462   536
//   28x28x1 -> 32, 3x3 same    1989             336 (2261)  610        365 (2564)  402
//   14x14x32 -> 64, 3x3 same   5231            2119  2215  2221       2426  2416  2400
//   32x32x3 -> 32, 3x3 same       -             760 (3241) 1176        841 (3545)  995
// (bwd_d in parentheses: a first layer's input needs no gradient.) A plain HWIO kernel sends
// oneDNN to its GEMM convolution; a blocked kernel selects the direct JIT / brgemm kernels,
// which read NHWC activations as they are. Blocking the activations too only pays on a first
// layer (C <= 3), whose few channels waste the NHWC kernels' vector lanes: there the kernel
// gradient takes channel-blocked activations, and so does the forward when F < 16. Those
// copies are our loops (ChannelBlocks): oneDNN's reorder of 64x6x28x28 into nChw16c took
// 117 us on one thread and 390 us on two inside a training step. A LeNet step (batch 64,
// Adam, 2 cores, min of 9 epochs): 2.29 ms all-NHWC, 2.02 ms with the first-layer rule.
// convolution_auto picks Winograd for 3x3 (faster, less exact); we keep direct.
// On a CPU with AVX-512, LeNet's convolutions skip oneDNN where its lanes go to waste (one input
// channel; the input gradient of six): our loops in conv_narrow.cpp, 1.4-2.2x faster there.
#include "kernels/conv.hpp"

#include <omp.h>

#include <algorithm>
#include <cmath>
#include <map>
#include <optional>
#include <tuple>
#include <type_traits>
#include <unordered_map>
#include <vector>

#include "allocator.hpp"
#include "kernels/conv_narrow.hpp"
#include "kernels/dnnl_common.hpp"
#include "kernels/elementwise.hpp"

namespace lamina::kernels {

namespace {

using namespace dnnl_glue;
using dnnl::memory;

// Convolutions under this many FLOPs per primitive run on one thread. A LeNet training step
// (conv1 15 MFLOP, conv2 31 MFLOP) on 2 cores: 2.23 ms on one thread; on two with this
// threshold at 0: 2.03 ms, 10e6: 2.05, 20e6: 1.97, 40e6 (conv1 and conv2 alone): 2.22.
constexpr double kParallelFlops = 20e6;
// Below kParallelFlops and from this many, the batch is split over the threads (split_batch):
// oneDNN's threads did not pay there, but a core per half of the images does. LeNet's first
// convolution (15 MFLOP at batch 64) on 2 cores: forward 294 -> 175-178 us, forward and
// kernel gradient 654-687 -> 529-531; a LeNet step, alternating runs on a noisy machine:
// 1730-1935 us (median of 4: 1756) against 1791-2288 (1860) unsplit.
constexpr double kSplitFlops = 4e6;

double flops(const Geometry2d& g) {
  return 2.0 * static_cast<double>(g.n * g.oh * g.ow) * static_cast<double>(g.f * g.kh * g.kw * g.c);
}

// A first layer reads raw images: too few channels for the NHWC kernels (see the table).
bool first_layer(const Geometry2d& g) { return g.c <= 3; }

memory::desc src_md(const Geometry2d& g) { return nhwc(g.n, g.c, g.h, g.w); }
memory::desc dst_md(const Geometry2d& g) { return nhwc(g.n, g.f, g.oh, g.ow); }
memory::dims src_dims(const Geometry2d& g) { return {g.n, g.c, g.h, g.w}; }
memory::dims dst_dims(const Geometry2d& g) { return {g.n, g.f, g.oh, g.ow}; }
memory::dims weight_dims(const Geometry2d& g) { return {g.f, g.c, g.kh, g.kw}; }
memory::desc hwio_md(const Geometry2d& g) {
  return memory::desc(weight_dims(g), memory::data_type::f32, memory::format_tag::hwio);
}
memory::desc bias_md(const Geometry2d& g) { return memory::desc({g.f}, memory::data_type::f32, memory::format_tag::x); }
// With one channel NHWC and NCHW are the same bytes; oneDNN's first-layer kernels ask for NCHW.
memory::desc image_md(const Geometry2d& g) {
  return g.c == 1 ? memory::desc(src_dims(g), memory::data_type::f32, memory::format_tag::nchw)
                  : any_layout(src_dims(g));
}

// Whether two plain layouts put every element at the same offset (one-channel NCHW and NHWC
// do: a dimension of size 1 has no stride that matters).
bool same_bytes(const memory::desc& a, const memory::desc& b) {
  const auto &da = a.data, &db = b.data;
  if (da.ndims != db.ndims || da.format_kind != dnnl_blocked || db.format_kind != dnnl_blocked) return false;
  if (da.format_desc.blocking.inner_nblks != 0 || db.format_desc.blocking.inner_nblks != 0) return false;
  for (int i = 0; i < da.ndims; ++i) {
    if (da.dims[i] != db.dims[i] || da.padded_dims[i] != db.padded_dims[i]) return false;
    if (da.dims[i] > 1 && da.format_desc.blocking.strides[i] != db.format_desc.blocking.strides[i]) return false;
  }
  return a.get_size() == b.get_size();
}

// NHWC <-> a layout with one inner block on C (oneDNN's nChw16c / nChw8c) as plain loops:
// oneDNN 2.6's reorder of 64x6x28x28 into nChw16c takes 117 us on one thread, 390 on two.
struct ChannelBlocks {
  int64_t n, c, h, w, block, s_n, s_cb, s_h, s_w;  // dims, inner block, outer strides

  // Calls f(nhwc offset, blocked offset, count) for each run of channels that is contiguous
  // in both layouts (a pixel's channels in one block). count is a compile-time constant up to
  // 16, so the copies become a few vector moves rather than a call to memmove per pixel.
  template <class F>
  void runs(F f) const {
    for (int64_t cb = 0; cb * block < c; ++cb) {
      const auto all_pixels = [&](auto count) {
        for (int64_t in = 0; in < n; ++in)
          for (int64_t ih = 0; ih < h; ++ih)
            for (int64_t iw = 0; iw < w; ++iw)
              f(((in * h + ih) * w + iw) * c + cb * block, in * s_n + ih * s_h + iw * s_w + cb * s_cb, count);
      };
      with_constant(std::min(block, c - cb * block), all_pixels);
    }
  }
  template <class F>
  static void with_constant(int64_t k, F f) {
    switch (k) {
#define LAMINA_CASE(K) \
  case K: return f(std::integral_constant<int64_t, K>{});
      LAMINA_CASE(1) LAMINA_CASE(2) LAMINA_CASE(3) LAMINA_CASE(4) LAMINA_CASE(5) LAMINA_CASE(6) LAMINA_CASE(7)
      LAMINA_CASE(8) LAMINA_CASE(9) LAMINA_CASE(10) LAMINA_CASE(11) LAMINA_CASE(12) LAMINA_CASE(13) LAMINA_CASE(14)
      LAMINA_CASE(15) LAMINA_CASE(16)
#undef LAMINA_CASE
      default: return f(k);
    }
  }
  void to_blocked(const float* __restrict src, float* __restrict dst) const {  // padded lanes untouched
    runs([&](int64_t from, int64_t to, auto count) {
      for (int64_t k = 0; k < count; ++k) dst[to + k] = src[from + k];
    });
  }
  // relu: as it copies (a forward's output; not with accumulate).
  void to_nhwc(const float* __restrict src, float* __restrict dst, bool accumulate, bool relu = false) const {
    runs([&](int64_t to, int64_t from, auto count) {
      if (accumulate) {
        for (int64_t k = 0; k < count; ++k) dst[to + k] += src[from + k];
      } else if (relu) {
        for (int64_t k = 0; k < count; ++k) dst[to + k] = kernels::relu(src[from + k]);
      } else {
        for (int64_t k = 0; k < count; ++k) dst[to + k] = src[from + k];
      }
    });
  }
};

std::optional<ChannelBlocks> channel_blocks(const memory::desc& d) {
  const dnnl_memory_desc_t& m = d.data;
  const auto& b = m.format_desc.blocking;
  if (m.ndims != 4 || m.format_kind != dnnl_blocked || b.inner_nblks != 1 || b.inner_idxs[0] != 1) return std::nullopt;
  return ChannelBlocks{m.dims[0], m.dims[1], m.dims[2], m.dims[3], b.inner_blks[0],
                       b.strides[0], b.strides[1], b.strides[2], b.strides[3]};
}

// A buffer in Lamina's layout (`user`) and the layout a primitive wants (`inner`: the same
// memory when they agree, else an owned scratch and the reorders between the two).
struct Staged {
  memory user, inner;
  std::optional<dnnl::reorder> to_inner, to_user, add_to_user;
  std::optional<ChannelBlocks> blocks;  // an NHWC activation in channel blocks: our loops

  Staged(const memory::desc& user_md, const memory::desc& wanted, bool activation) {
    Engine& e = cpu();
    user = memory(same_bytes(user_md, wanted) ? wanted : user_md, e.engine, nullptr);
    if (wanted == user.get_desc()) {
      inner = user;
      return;
    }
    inner = memory(wanted, e.engine);
    if (activation && (blocks = channel_blocks(wanted))) {
      std::fill_n(static_cast<float*>(inner.get_data_handle()), wanted.get_size() / sizeof(float), 0.f);
      return;
    }
    to_inner = dnnl::reorder(dnnl::reorder::primitive_desc(e.engine, user_md, e.engine, wanted));
    to_user = dnnl::reorder(dnnl::reorder::primitive_desc(e.engine, wanted, e.engine, user_md));
    dnnl::primitive_attr add;  // dst = src + dst: the reorder itself accumulates a gradient
    dnnl::post_ops ops;
    ops.append_sum(1.f);
    add.set_post_ops(ops);
    add_to_user = dnnl::reorder(dnnl::reorder::primitive_desc(e.engine, wanted, e.engine, user_md, add));
  }
  bool staged() const { return to_inner.has_value() || blocks.has_value(); }
  float* inner_data() const { return static_cast<float*>(inner.get_data_handle()); }
  // An input: points `user` at p and brings it into the primitive's layout.
  const memory& load(const float* p) {
    user.set_data_handle(const_cast<float*>(p));
    if (blocks) blocks->to_blocked(p, inner_data());
    else if (to_inner) to_inner->execute(cpu().stream, user, inner);
    return inner;
  }
  // An output the primitive writes: where to write (p itself when not staged).
  const memory& target(float* p) {
    user.set_data_handle(p);
    return inner;
  }
  // After the primitive ran: moves a staged result into p, overwriting or adding. relu: a
  // forward's output in channel blocks gets its relu as it moves; whether it did is returned.
  bool finish(bool accumulate, bool relu = false) {
    if (blocks) {
      cpu().stream.wait();
      blocks->to_nhwc(inner_data(), static_cast<float*>(user.get_data_handle()), accumulate, relu);
      return relu;
    }
    if (staged()) (accumulate ? *add_to_user : *to_user).execute(cpu().stream, inner, user);
    return false;
  }
};

dnnl::convolution_forward::primitive_desc forward_pd(const Geometry2d& g, bool has_bias, Eltwise act,
                                                     bool blocked_dst) {
  Engine& e = cpu();
  const auto prop = dnnl::prop_kind::forward_training;
  const auto alg = dnnl::algorithm::convolution_direct;
  const memory::desc src = blocked_dst ? image_md(g) : src_md(g);
  const memory::desc dst = blocked_dst ? any_layout(dst_dims(g)) : dst_md(g);
  const auto w = any_layout(weight_dims(g));
  const auto desc = has_bias ? dnnl::convolution_forward::desc(prop, alg, src, w, bias_md(g), dst, strides_of(g),
                                                               dilates_of(g), pad_lo(g), pad_hi(g))
                             : dnnl::convolution_forward::desc(prop, alg, src, w, dst, strides_of(g), dilates_of(g),
                                                               pad_lo(g), pad_hi(g));
  dnnl::primitive_attr attr;
  if (act != Eltwise::none) {
    dnnl::post_ops ops;
    const auto alg_act = act == Eltwise::relu      ? dnnl::algorithm::eltwise_relu
                         : act == Eltwise::sigmoid ? dnnl::algorithm::eltwise_logistic
                                                   : dnnl::algorithm::eltwise_tanh;
    ops.append_eltwise(1.f, alg_act, 0.f, 0.f);
    attr.set_post_ops(ops);
  }
  return {desc, attr, e.engine};
}

struct Forward {
  dnnl::convolution_forward prim;
  memory bias;
  Staged x, w, y;
};

Forward make_forward(const Geometry2d& g, bool has_bias, Eltwise act) {
  const auto pd = forward_pd(g, has_bias, act, first_layer(g) && g.f < 16);
  return {dnnl::convolution_forward(pd), memory(bias_md(g), cpu().engine, nullptr),
          Staged(src_md(g), pd.src_desc(), true), Staged(hwio_md(g), pd.weights_desc(), false),
          Staged(dst_md(g), pd.dst_desc(), true)};
}

struct BackwardData {
  dnnl::convolution_backward_data prim;
  Staged dy, w, dx;
};

BackwardData make_backward_data(const Geometry2d& g) {
  const dnnl::convolution_backward_data::desc desc(dnnl::algorithm::convolution_direct, src_md(g),
                                                   any_layout(weight_dims(g)), dst_md(g), strides_of(g), dilates_of(g),
                                                   pad_lo(g), pad_hi(g));
  const dnnl::convolution_backward_data::primitive_desc pd(desc, cpu().engine,
                                                           forward_pd(g, false, Eltwise::none, false));
  return {dnnl::convolution_backward_data(pd), Staged(dst_md(g), pd.diff_dst_desc(), true),
          Staged(hwio_md(g), pd.weights_desc(), false), Staged(src_md(g), pd.diff_src_desc(), true)};
}

struct BackwardWeights {
  dnnl::convolution_backward_weights prim;
  memory dbias;  // owned, (F)
  Staged x, dy, dw;
};

BackwardWeights make_backward_weights(const Geometry2d& g, bool has_bias) {
  const auto alg = dnnl::algorithm::convolution_direct;
  const bool blocked = first_layer(g);
  const memory::desc src = blocked ? image_md(g) : src_md(g), dst = blocked ? any_layout(dst_dims(g)) : dst_md(g);
  const auto w = any_layout(weight_dims(g));
  const auto desc = has_bias ? dnnl::convolution_backward_weights::desc(alg, src, w, bias_md(g), dst, strides_of(g),
                                                                        dilates_of(g), pad_lo(g), pad_hi(g))
                             : dnnl::convolution_backward_weights::desc(alg, src, w, dst, strides_of(g), dilates_of(g),
                                                                        pad_lo(g), pad_hi(g));
  const dnnl::convolution_backward_weights::primitive_desc pd(desc, cpu().engine,
                                                              forward_pd(g, has_bias, Eltwise::none, blocked));
  return {dnnl::convolution_backward_weights(pd), memory(bias_md(g), cpu().engine),
          Staged(src_md(g), pd.src_desc(), true), Staged(dst_md(g), pd.diff_dst_desc(), true),
          Staged(hwio_md(g), pd.diff_weights_desc(), false)};
}

template <class Value, class Key, class Make>
Value& cached(std::map<Key, Value>& cache, const Key& key, Make make) {
  auto it = cache.find(key);
  if (it == cache.end()) it = cache.emplace(key, make()).first;
  return it->second;
}

// dst (+)= src over n floats.
void store(const float* src, float* dst, int64_t n, bool accumulate) {
  if (accumulate) add_into(src, dst, n);
  else std::copy(src, src + n, dst);
}

// An output oneDNN overwrites and we may have to add into: when it is not staged (the
// reorder adds for us) and accumulating, it goes through a scratch buffer first.
struct Sink {
  Staged& out;
  float* dst;
  int64_t count;
  bool accumulate;
  std::shared_ptr<float[]> scratch;
  Sink(Staged& o, float* d, int64_t n, bool acc) : out(o), dst(d), count(n), accumulate(acc) {
    if (accumulate && !out.staged()) scratch = detail::allocate_storage(count);
  }
  const memory& target() { return out.target(scratch ? scratch.get() : dst); }
  void finish() {
    out.finish(accumulate);
    if (scratch) add_into(scratch.get(), dst, count);
  }
};

}  // namespace

// Each entry point: pick the thread count, find (or build) the primitive for this geometry and
// count in this thread's cache, point its memories at the caller's buffers, run, wait.

namespace {

// The entry points' bodies on `threads` threads (oneDNN's own). relu is ours, not oneDNN's
// post-op, which maps NaN to 0: applied as the output leaves its channel blocks (a first
// layer's), or in a pass over it.
void forward_on(const Geometry2d& g, const float* x, const float* w, const float* bias, float* y, Eltwise act,
                int threads) {
  const bool relu = act == Eltwise::relu;
  if (relu) act = Eltwise::none;
  with_threads(threads, [&] {
    static thread_local std::map<std::tuple<Geometry2d, bool, Eltwise, int>, Forward> cache;
    Forward& p = cached(cache, std::tuple{g, bias != nullptr, act, threads},
                        [&] { return make_forward(g, bias != nullptr, act); });
    std::unordered_map<int, memory> args = {
        {DNNL_ARG_SRC, p.x.load(x)}, {DNNL_ARG_WEIGHTS, p.w.load(w)}, {DNNL_ARG_DST, p.y.target(y)}};
    if (bias) {
      p.bias.set_data_handle(const_cast<float*>(bias));
      args.insert({DNNL_ARG_BIAS, p.bias});
    }
    Engine& e = cpu();
    p.prim.execute(e.stream, args);
    const bool relu_done = p.y.finish(false, relu);
    e.stream.wait();
    if (relu && !relu_done) relu_in_place(y, g.n * g.oh * g.ow * g.f);
  });
}

void backward_data_on(const Geometry2d& g, const float* dy, const float* w, float* dx, bool accumulate, int threads) {
  const int64_t count = g.n * g.h * g.w * g.c;
  with_threads(threads, [&] {
    static thread_local std::map<std::tuple<Geometry2d, int>, BackwardData> cache;
    BackwardData& p = cached(cache, std::tuple{g, threads}, [&] { return make_backward_data(g); });
    Sink out(p.dx, dx, count, accumulate);
    Engine& e = cpu();
    p.prim.execute(e.stream,
                   {{DNNL_ARG_DIFF_DST, p.dy.load(dy)}, {DNNL_ARG_WEIGHTS, p.w.load(w)}, {DNNL_ARG_DIFF_SRC, out.target()}});
    e.stream.wait();
    out.finish();
    e.stream.wait();
  });
}

void backward_weights_on(const Geometry2d& g, const float* x, const float* dy, float* dw, bool accumulate_w,
                         float* dbias, bool accumulate_bias, int threads) {
  const int64_t wcount = g.kh * g.kw * g.c * g.f;
  with_threads(threads, [&] {
    static thread_local std::map<std::tuple<Geometry2d, bool, int>, BackwardWeights> cache;
    BackwardWeights& p =
        cached(cache, std::tuple{g, dbias != nullptr, threads}, [&] { return make_backward_weights(g, dbias != nullptr); });
    Sink out(p.dw, dw, wcount, accumulate_w);
    std::unordered_map<int, memory> args = {
        {DNNL_ARG_SRC, p.x.load(x)}, {DNNL_ARG_DIFF_DST, p.dy.load(dy)}, {DNNL_ARG_DIFF_WEIGHTS, out.target()}};
    if (dbias) args.insert({DNNL_ARG_DIFF_BIAS, p.dbias});
    Engine& e = cpu();
    p.prim.execute(e.stream, args);
    e.stream.wait();
    out.finish();
    e.stream.wait();
    if (dbias) store(static_cast<const float*>(p.dbias.get_data_handle()), dbias, g.f, accumulate_bias);
  });
}

// Convolutions below kParallelFlops, where oneDNN's threads do not pay, but above
// kSplitFlops: each OpenMP thread runs the one-thread primitive on its share of the images
// (g.n * t / team onwards), which stay in its core's cache. share(sub-geometry, first image,
// thread). False, having done nothing, where the batch stays whole.
template <class Share>
bool split_batch(const Geometry2d& g, Share&& share) {
  const double work = flops(g);
  const int team = omp_get_max_threads();
  if (team < 2 || g.n < 2 || work < kSplitFlops || work >= kParallelFlops || omp_in_parallel()) return false;
#pragma omp parallel num_threads(team)
  {
    const int t = omp_get_thread_num(), nt = omp_get_num_threads();
    const int64_t n0 = g.n * t / nt, n1 = g.n * (t + 1) / nt;
    Geometry2d part = g;
    part.n = n1 - n0;
    share(part, n0, t);
  }
  return true;
}

// Our own loops (conv_narrow.cpp) on images [n0, n1) of g: f(n0, n1, thread), the images split
// over the threads from kSplitFlops (as split_batch), on the calling thread below that.
template <class F>
void over_images(const Geometry2d& g, F&& f) {
  const int team = omp_in_parallel() || flops(g) < kSplitFlops
                       ? 1
                       : static_cast<int>(std::min<int64_t>(omp_get_max_threads(), g.n));
#pragma omp parallel num_threads(team) if (team > 1)
  {
    const int t = omp_get_thread_num(), nt = omp_get_num_threads();
    f(g.n * t / nt, g.n * (t + 1) / nt, t);
  }
}

}  // namespace

void conv2d_forward(const Geometry2d& g, const float* x, const float* w, const float* bias, float* y, Eltwise act) {
  if (g.n * g.oh * g.ow * g.f == 0) return;
  if ((act == Eltwise::none || act == Eltwise::relu) && one_channel_applies(g)) {
    over_images(g, [&](int64_t n0, int64_t n1, int) {
      one_channel_forward(g, x, w, bias, y, act == Eltwise::relu, n0, n1);
    });
    return;
  }
  const bool split = split_batch(g, [&](const Geometry2d& part, int64_t n0, int) {
    if (part.n > 0) forward_on(part, x + n0 * g.h * g.w * g.c, w, bias, y + n0 * g.oh * g.ow * g.f, act, 1);
  });
  if (!split) forward_on(g, x, w, bias, y, act, threads_for(flops(g), kParallelFlops));
}

void conv2d_backward_data(const Geometry2d& g, const float* dy, const float* w, float* dx, bool accumulate) {
  const int64_t count = g.n * g.h * g.w * g.c;
  if (count == 0) return;
  if (g.oh * g.ow * g.f == 0) {  // no output cell: dx gets nothing
    if (!accumulate) std::fill_n(dx, count, 0.f);
    return;
  }
  if (narrow_backward_data_applies(g)) {
    over_images(g, [&](int64_t n0, int64_t n1, int) { narrow_backward_data(g, dy, w, dx, accumulate, n0, n1); });
    return;
  }
  const bool split = split_batch(g, [&](const Geometry2d& part, int64_t n0, int) {
    if (part.n > 0)
      backward_data_on(part, dy + n0 * g.oh * g.ow * g.f, w, dx + n0 * g.h * g.w * g.c, accumulate, 1);
  });
  if (!split) backward_data_on(g, dy, w, dx, accumulate, threads_for(flops(g), kParallelFlops));
}

void conv2d_backward_weights(const Geometry2d& g, const float* x, const float* dy, float* dw, bool accumulate_w,
                             float* dbias, bool accumulate_bias) {
  const int64_t wcount = g.kh * g.kw * g.c * g.f;
  if (g.n * g.oh * g.ow == 0 || wcount == 0) {  // no output cell: zero gradients
    if (!accumulate_w) std::fill_n(dw, wcount, 0.f);
    if (dbias && !accumulate_bias) std::fill_n(dbias, g.f, 0.f);
    return;
  }
  if (one_channel_applies(g)) {  // each thread's sums, then added in thread order
    std::vector<std::vector<float>> sums(static_cast<size_t>(omp_get_max_threads()));
    over_images(g, [&](int64_t n0, int64_t n1, int t) {
      std::vector<float>& own = sums[static_cast<size_t>(t)];
      own.resize(static_cast<size_t>(wcount + g.f));
      one_channel_backward_weights(g, x, dy, own.data(), dbias ? own.data() + wcount : nullptr, n0, n1);
    });
    bool first = true;
    for (const std::vector<float>& own : sums) {
      if (own.empty()) continue;
      store(own.data(), dw, wcount, accumulate_w || !first);
      if (dbias) store(own.data() + wcount, dbias, g.f, accumulate_bias || !first);
      first = false;
    }
    return;
  }
  // Split: thread 0 writes the caller's buffers (as asked: written or added to), the others
  // their own, added in after.
  std::vector<std::vector<float>> partial(static_cast<size_t>(omp_get_max_threads()));
  const bool split = split_batch(g, [&](const Geometry2d& part, int64_t n0, int t) {
    if (t > 0) partial[static_cast<size_t>(t)].assign(static_cast<size_t>(wcount + g.f), 0.f);
    if (part.n == 0) {  // more threads than images: thread 0 still owes the caller's buffers
      if (t == 0 && !accumulate_w) std::fill_n(dw, wcount, 0.f);
      if (t == 0 && dbias && !accumulate_bias) std::fill_n(dbias, g.f, 0.f);
      return;
    }
    float* own = t > 0 ? partial[static_cast<size_t>(t)].data() : nullptr;
    backward_weights_on(part, x + n0 * g.h * g.w * g.c, dy + n0 * g.oh * g.ow * g.f, own ? own : dw,
                        own ? false : accumulate_w, own ? (dbias ? own + wcount : nullptr) : dbias,
                        own ? false : accumulate_bias, 1);
  });
  if (!split) {
    backward_weights_on(g, x, dy, dw, accumulate_w, dbias, accumulate_bias, threads_for(flops(g), kParallelFlops));
    return;
  }
  for (size_t t = 1; t < partial.size(); ++t) {
    if (partial[t].empty()) continue;
    add_into(partial[t].data(), dw, wcount);
    if (dbias) add_into(partial[t].data() + wcount, dbias, g.f);
  }
}

// --- the naive loops ------------------------------------------------------------------------------

namespace ref {

float activate(double v, Eltwise act) {
  switch (act) {
    case Eltwise::none: break;
    case Eltwise::relu: return static_cast<float>(v > 0.0 ? v : 0.0);
    case Eltwise::sigmoid: return static_cast<float>(1.0 / (1.0 + std::exp(-v)));
    case Eltwise::tanh: return static_cast<float>(std::tanh(v));
  }
  return static_cast<float>(v);
}

namespace {

// Calls f(input row, input col) for each window cell of output (i, j) that lies in the image,
// with the cell's (p, q) in the window (cells DH rows and DW columns apart when dilated).
template <class F>
void for_window(const Geometry2d& g, int64_t i, int64_t j, F f) {
  for (int64_t p = 0; p < g.kh; ++p) {
    const int64_t r = i * g.sh + p * g.dh - g.pad_top;
    if (r < 0 || r >= g.h) continue;
    for (int64_t q = 0; q < g.kw; ++q) {
      const int64_t s = j * g.sw + q * g.dw - g.pad_left;
      if (s >= 0 && s < g.w) f(r, s, p, q);
    }
  }
}
}  // namespace

void conv2d_forward(const Geometry2d& g, const float* x, const float* w, const float* bias, float* y, Eltwise act) {
  for (int64_t n = 0; n < g.n; ++n)
    for (int64_t i = 0; i < g.oh; ++i)
      for (int64_t j = 0; j < g.ow; ++j)
        for (int64_t f = 0; f < g.f; ++f) {
          double acc = bias ? bias[f] : 0.0;
          for_window(g, i, j, [&](int64_t r, int64_t s, int64_t p, int64_t q) {
            for (int64_t c = 0; c < g.c; ++c)
              acc += static_cast<double>(x[((n * g.h + r) * g.w + s) * g.c + c]) * w[((p * g.kw + q) * g.c + c) * g.f + f];
          });
          y[((n * g.oh + i) * g.ow + j) * g.f + f] = activate(acc, act);
        }
}

void conv2d_backward_data(const Geometry2d& g, const float* dy, const float* w, float* dx, bool accumulate) {
  std::vector<double> acc(static_cast<size_t>(g.n * g.h * g.w * g.c), 0.0);
  for (int64_t n = 0; n < g.n; ++n)
    for (int64_t i = 0; i < g.oh; ++i)
      for (int64_t j = 0; j < g.ow; ++j)
        for_window(g, i, j, [&](int64_t r, int64_t s, int64_t p, int64_t q) {
          for (int64_t c = 0; c < g.c; ++c)
            for (int64_t f = 0; f < g.f; ++f)
              acc[static_cast<size_t>(((n * g.h + r) * g.w + s) * g.c + c)] +=
                  static_cast<double>(dy[((n * g.oh + i) * g.ow + j) * g.f + f]) * w[((p * g.kw + q) * g.c + c) * g.f + f];
        });
  for (size_t k = 0; k < acc.size(); ++k) dx[k] = static_cast<float>(acc[k] + (accumulate ? dx[k] : 0.0));
}

void conv2d_backward_weights(const Geometry2d& g, const float* x, const float* dy, float* dw, bool accumulate_w,
                             float* dbias, bool accumulate_bias) {
  std::vector<double> acc(static_cast<size_t>(g.kh * g.kw * g.c * g.f), 0.0), bacc(static_cast<size_t>(g.f), 0.0);
  for (int64_t n = 0; n < g.n; ++n)
    for (int64_t i = 0; i < g.oh; ++i)
      for (int64_t j = 0; j < g.ow; ++j) {
        const float* d = dy + ((n * g.oh + i) * g.ow + j) * g.f;
        for (int64_t f = 0; f < g.f; ++f) bacc[static_cast<size_t>(f)] += d[f];
        for_window(g, i, j, [&](int64_t r, int64_t s, int64_t p, int64_t q) {
          for (int64_t c = 0; c < g.c; ++c)
            for (int64_t f = 0; f < g.f; ++f)
              acc[static_cast<size_t>(((p * g.kw + q) * g.c + c) * g.f + f)] +=
                  static_cast<double>(x[((n * g.h + r) * g.w + s) * g.c + c]) * d[f];
        });
      }
  for (size_t k = 0; k < acc.size(); ++k) dw[k] = static_cast<float>(acc[k] + (accumulate_w ? dw[k] : 0.0));
  if (dbias)
    for (int64_t f = 0; f < g.f; ++f)
      dbias[f] = static_cast<float>(bacc[static_cast<size_t>(f)] + (accumulate_bias ? dbias[f] : 0.0));
}

}  // namespace ref

}  // namespace lamina::kernels
