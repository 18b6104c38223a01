// oneDNN deconvolution glue for Conv2DTranspose. Activations stay NHWC; the kernel, Keras'
// (KH, KW, F, C), is described to oneDNN by its strides (dims (F, C, KH, KW), oneDNN's (O, I,
// H, W) for a deconvolution) and handed over as format `any`, reordered on each call: as in
// conv.cpp, a plain kernel would send oneDNN to its slow GEMM path. oneDNN's deconvolution is
// the convolution's backward-data pass with the roles of source and destination swapped, so
// its padding is the cropping of Geometry2d (conv_transpose.hpp), negative at the end allowed
// down to 1 - stride (oneDNN checks pad_r + stride > 0).
#include "kernels/conv_transpose.hpp"

#include <algorithm>
#include <cmath>
#include <map>
#include <optional>
#include <tuple>
#include <unordered_map>
#include <vector>

#include "allocator.hpp"
#include "kernels/conv.hpp"  // ref::activate
#include "kernels/dnnl_common.hpp"
#include "kernels/elementwise.hpp"

namespace lamina::kernels {

namespace {

using namespace dnnl_glue;
using dnnl::memory;

// As conv.cpp's threshold: under this many FLOPs a primitive runs on one thread.
constexpr double kParallelFlops = 20e6;

double flops(const Geometry2d& g) {
  return 2.0 * static_cast<double>(g.n * g.h * g.w) * static_cast<double>(g.f * g.kh * g.kw * g.c);
}

memory::desc src_md(const Geometry2d& g) { return nhwc(g.n, g.c, g.h, g.w); }
memory::desc dst_md(const Geometry2d& g) { return nhwc(g.n, g.f, g.oh, g.ow); }
memory::dims weight_dims(const Geometry2d& g) { return {g.f, g.c, g.kh, g.kw}; }
// Keras' (KH, KW, F, C) as strides over oneDNN's (F, C, KH, KW).
memory::desc keras_md(const Geometry2d& g) {
  return memory::desc(weight_dims(g), memory::data_type::f32, memory::dims{g.c, 1, g.kw * g.f * g.c, g.f * g.c});
}
memory::desc bias_md(const Geometry2d& g) { return memory::desc({g.f}, memory::data_type::f32, memory::format_tag::x); }

// The kernel (or its gradient) in Keras' layout and in the layout the primitive chose, with
// the reorders between them (none when they agree).
struct Kernel {
  memory user, inner;
  std::optional<dnnl::reorder> to_inner, to_user;
  Kernel(const Geometry2d& g, const memory::desc& wanted) {
    Engine& e = cpu();
    user = memory(keras_md(g), e.engine, nullptr);
    if (wanted == user.get_desc()) {
      inner = user;
      return;
    }
    inner = memory(wanted, e.engine);
    to_inner = dnnl::reorder(dnnl::reorder::primitive_desc(e.engine, user.get_desc(), e.engine, wanted));
    to_user = dnnl::reorder(dnnl::reorder::primitive_desc(e.engine, wanted, e.engine, user.get_desc()));
  }
  const memory& load(const float* p) {
    user.set_data_handle(const_cast<float*>(p));
    if (to_inner) to_inner->execute(cpu().stream, user, inner);
    return inner;
  }
  const memory& target(float* p) {
    user.set_data_handle(p);
    return inner;
  }
  void finish() {
    if (to_user) to_user->execute(cpu().stream, inner, user);
  }
};

dnnl::deconvolution_forward::primitive_desc forward_pd(const Geometry2d& g, bool has_bias, Eltwise act) {
  const auto prop = dnnl::prop_kind::forward_training;
  const auto alg = dnnl::algorithm::deconvolution_direct;
  const auto w = any_layout(weight_dims(g));
  const auto desc = has_bias ? dnnl::deconvolution_forward::desc(prop, alg, src_md(g), w, bias_md(g), dst_md(g),
                                                                 strides_of(g), dilates_of(g), pad_lo(g), pad_hi(g))
                             : dnnl::deconvolution_forward::desc(prop, alg, src_md(g), w, dst_md(g), strides_of(g),
                                                                 dilates_of(g), pad_lo(g), pad_hi(g));
  dnnl::primitive_attr attr;
  if (act != Eltwise::none) {
    dnnl::post_ops ops;
    ops.append_eltwise(1.f,
                       act == Eltwise::relu      ? dnnl::algorithm::eltwise_relu
                       : act == Eltwise::sigmoid ? dnnl::algorithm::eltwise_logistic
                                                 : dnnl::algorithm::eltwise_tanh,
                       0.f, 0.f);
    attr.set_post_ops(ops);
  }
  return {desc, attr, cpu().engine};
}

struct Forward {
  dnnl::deconvolution_forward prim;
  memory x, bias, y;
  Kernel w;
};

Forward make_forward(const Geometry2d& g, bool has_bias, Eltwise act) {
  const auto pd = forward_pd(g, has_bias, act);
  Engine& e = cpu();
  return {dnnl::deconvolution_forward(pd), memory(src_md(g), e.engine, nullptr),
          memory(bias_md(g), e.engine, nullptr), memory(dst_md(g), e.engine, nullptr), Kernel(g, pd.weights_desc())};
}

struct BackwardData {
  dnnl::deconvolution_backward_data prim;
  memory dy, dx;
  Kernel w;
};

BackwardData make_backward_data(const Geometry2d& g) {
  const dnnl::deconvolution_backward_data::desc desc(dnnl::algorithm::deconvolution_direct, src_md(g),
                                                     any_layout(weight_dims(g)), dst_md(g), strides_of(g),
                                                     dilates_of(g), pad_lo(g), pad_hi(g));
  const dnnl::deconvolution_backward_data::primitive_desc pd(desc, cpu().engine,
                                                             forward_pd(g, false, Eltwise::none));
  Engine& e = cpu();
  return {dnnl::deconvolution_backward_data(pd), memory(dst_md(g), e.engine, nullptr),
          memory(src_md(g), e.engine, nullptr), Kernel(g, pd.weights_desc())};
}

struct BackwardWeights {
  dnnl::deconvolution_backward_weights prim;
  memory x, dy, dbias;  // dbias owned, (F)
  Kernel dw;
};

BackwardWeights make_backward_weights(const Geometry2d& g, bool has_bias) {
  const auto alg = dnnl::algorithm::deconvolution_direct;
  const auto w = any_layout(weight_dims(g));
  const auto desc = has_bias ? dnnl::deconvolution_backward_weights::desc(alg, src_md(g), w, bias_md(g), dst_md(g),
                                                                          strides_of(g), dilates_of(g), pad_lo(g),
                                                                          pad_hi(g))
                             : dnnl::deconvolution_backward_weights::desc(alg, src_md(g), w, dst_md(g), strides_of(g),
                                                                          dilates_of(g), pad_lo(g), pad_hi(g));
  const dnnl::deconvolution_backward_weights::primitive_desc pd(desc, cpu().engine,
                                                                forward_pd(g, has_bias, Eltwise::none));
  Engine& e = cpu();
  return {dnnl::deconvolution_backward_weights(pd), memory(src_md(g), e.engine, nullptr),
          memory(dst_md(g), e.engine, nullptr), memory(bias_md(g), e.engine), Kernel(g, pd.diff_weights_desc())};
}

template <class Value, class Key, class Make>
Value& cached(std::map<Key, Value>& cache, const Key& key, Make make) {
  auto it = cache.find(key);
  if (it == cache.end()) it = cache.emplace(key, make()).first;
  return it->second;
}

// Where a primitive writes an output that we may have to add into: the caller's buffer, or a
// scratch added into it afterwards.
struct Sink {
  float* dst;
  int64_t count;
  std::shared_ptr<float[]> scratch;
  Sink(float* d, int64_t n, bool accumulate) : dst(d), count(n) {
    if (accumulate) scratch = detail::allocate_storage(count);
  }
  float* target() const { return scratch ? scratch.get() : dst; }
  void finish() const {
    if (scratch) add_into(scratch.get(), dst, count);
  }
};

}  // namespace

void conv2d_transpose_forward(const Geometry2d& g, const float* x, const float* w, const float* bias, float* y,
                              Eltwise act) {
  if (g.n * g.oh * g.ow * g.f == 0) return;
  if (g.h * g.w * g.c == 0) {  // no input cell: act(bias) everywhere
    return ref::conv2d_transpose_forward(g, x, w, bias, y, act);
  }
  const int threads = threads_for(flops(g), kParallelFlops);
  with_threads(threads, [&] {
    static thread_local std::map<std::tuple<Geometry2d, bool, Eltwise, int>, Forward> cache;
    Forward& p = cached(cache, std::tuple{g, bias != nullptr, act, threads},
                        [&] { return make_forward(g, bias != nullptr, act); });
    p.x.set_data_handle(const_cast<float*>(x));
    p.y.set_data_handle(y);
    std::unordered_map<int, memory> args = {{DNNL_ARG_SRC, p.x}, {DNNL_ARG_WEIGHTS, p.w.load(w)}, {DNNL_ARG_DST, p.y}};
    if (bias) {
      p.bias.set_data_handle(const_cast<float*>(bias));
      args.insert({DNNL_ARG_BIAS, p.bias});
    }
    Engine& e = cpu();
    p.prim.execute(e.stream, args);
    e.stream.wait();
  });
}

void conv2d_transpose_backward_data(const Geometry2d& g, const float* dy, const float* w, float* dx,
                                    bool accumulate) {
  const int64_t count = g.n * g.h * g.w * g.c;
  if (count == 0) return;
  if (g.oh * g.ow * g.f == 0) {
    if (!accumulate) std::fill_n(dx, count, 0.f);
    return;
  }
  const int threads = threads_for(flops(g), kParallelFlops);
  with_threads(threads, [&] {
    static thread_local std::map<std::tuple<Geometry2d, int>, BackwardData> cache;
    BackwardData& p = cached(cache, std::tuple{g, threads}, [&] { return make_backward_data(g); });
    const Sink out(dx, count, accumulate);
    p.dy.set_data_handle(const_cast<float*>(dy));
    p.dx.set_data_handle(out.target());
    Engine& e = cpu();
    p.prim.execute(e.stream, {{DNNL_ARG_DIFF_DST, p.dy}, {DNNL_ARG_WEIGHTS, p.w.load(w)}, {DNNL_ARG_DIFF_SRC, p.dx}});
    e.stream.wait();
    out.finish();
  });
}

void conv2d_transpose_backward_weights(const Geometry2d& g, const float* x, const float* dy, float* dw,
                                       bool accumulate_w, float* dbias, bool accumulate_bias) {
  const int64_t wcount = g.kh * g.kw * g.c * g.f;
  if (g.n * g.h * g.w == 0 || wcount == 0) {  // no input cell: the kernel gradient is 0
    return ref::conv2d_transpose_backward_weights(g, x, dy, dw, accumulate_w, dbias, accumulate_bias);
  }
  const int threads = threads_for(flops(g), kParallelFlops);
  with_threads(threads, [&] {
    static thread_local std::map<std::tuple<Geometry2d, bool, int>, BackwardWeights> cache;
    BackwardWeights& p = cached(cache, std::tuple{g, dbias != nullptr, threads},
                                [&] { return make_backward_weights(g, dbias != nullptr); });
    const Sink out(dw, wcount, accumulate_w);
    p.x.set_data_handle(const_cast<float*>(x));
    p.dy.set_data_handle(const_cast<float*>(dy));
    std::unordered_map<int, memory> args = {
        {DNNL_ARG_SRC, p.x}, {DNNL_ARG_DIFF_DST, p.dy}, {DNNL_ARG_DIFF_WEIGHTS, p.dw.target(out.target())}};
    if (dbias) args.insert({DNNL_ARG_DIFF_BIAS, p.dbias});
    Engine& e = cpu();
    p.prim.execute(e.stream, args);
    p.dw.finish();
    e.stream.wait();
    out.finish();
    if (dbias) {
      const auto* b = static_cast<const float*>(p.dbias.get_data_handle());
      if (accumulate_bias) add_into(b, dbias, g.f);
      else std::copy(b, b + g.f, dbias);
    }
  });
}

// --- the naive loops ------------------------------------------------------------------------------

namespace ref {

namespace {

// Calls f(output row, output col, p, q) for each kernel cell (p, q) that input cell (i, j)
// reaches inside the output.
template <class F>
void for_spread(const Geometry2d& g, int64_t i, int64_t j, F f) {
  for (int64_t p = 0; p < g.kh; ++p) {
    const int64_t r = i * g.sh + p * g.dh - g.pad_top;
    if (r < 0 || r >= g.oh) continue;
    for (int64_t q = 0; q < g.kw; ++q) {
      const int64_t s = j * g.sw + q * g.dw - g.pad_left;
      if (s >= 0 && s < g.ow) f(r, s, p, q);
    }
  }
}

size_t at(int64_t k) { return static_cast<size_t>(k); }
}  // namespace

void conv2d_transpose_forward(const Geometry2d& g, const float* x, const float* w, const float* bias, float* y,
                              Eltwise act) {
  std::vector<double> acc(at(g.n * g.oh * g.ow * g.f), 0.0);
  for (int64_t n = 0; n < g.n; ++n)
    for (int64_t i = 0; i < g.h; ++i)
      for (int64_t j = 0; j < g.w; ++j)
        for_spread(g, i, j, [&](int64_t r, int64_t s, int64_t p, int64_t q) {
          for (int64_t f = 0; f < g.f; ++f)
            for (int64_t c = 0; c < g.c; ++c)
              acc[at(((n * g.oh + r) * g.ow + s) * g.f + f)] +=
                  static_cast<double>(x[((n * g.h + i) * g.w + j) * g.c + c]) * w[((p * g.kw + q) * g.f + f) * g.c + c];
        });
  for (size_t k = 0; k < acc.size(); ++k)
    y[k] = activate(acc[k] + (bias ? bias[static_cast<int64_t>(k) % g.f] : 0.0), act);
}

void conv2d_transpose_backward_data(const Geometry2d& g, const float* dy, const float* w, float* dx,
                                    bool accumulate) {
  for (int64_t n = 0; n < g.n; ++n)
    for (int64_t i = 0; i < g.h; ++i)
      for (int64_t j = 0; j < g.w; ++j)
        for (int64_t c = 0; c < g.c; ++c) {
          double acc = 0.0;
          for_spread(g, i, j, [&](int64_t r, int64_t s, int64_t p, int64_t q) {
            for (int64_t f = 0; f < g.f; ++f)
              acc += static_cast<double>(dy[((n * g.oh + r) * g.ow + s) * g.f + f]) *
                     w[((p * g.kw + q) * g.f + f) * g.c + c];
          });
          float& d = dx[((n * g.h + i) * g.w + j) * g.c + c];
          d = static_cast<float>(acc + (accumulate ? d : 0.0));
        }
}

void conv2d_transpose_backward_weights(const Geometry2d& g, const float* x, const float* dy, float* dw,
                                       bool accumulate_w, float* dbias, bool accumulate_bias) {
  std::vector<double> acc(at(g.kh * g.kw * g.f * g.c), 0.0), bacc(at(g.f), 0.0);
  for (int64_t n = 0; n < g.n; ++n)
    for (int64_t i = 0; i < g.h; ++i)
      for (int64_t j = 0; j < g.w; ++j)
        for_spread(g, i, j, [&](int64_t r, int64_t s, int64_t p, int64_t q) {
          for (int64_t f = 0; f < g.f; ++f)
            for (int64_t c = 0; c < g.c; ++c)
              acc[at(((p * g.kw + q) * g.f + f) * g.c + c)] +=
                  static_cast<double>(x[((n * g.h + i) * g.w + j) * g.c + c]) *
                  dy[((n * g.oh + r) * g.ow + s) * g.f + f];
        });
  for (int64_t k = 0; k < g.n * g.oh * g.ow; ++k)
    for (int64_t f = 0; f < g.f; ++f) bacc[at(f)] += dy[k * g.f + f];
  for (size_t k = 0; k < acc.size(); ++k) dw[k] = static_cast<float>(acc[k] + (accumulate_w ? dw[k] : 0.0));
  if (dbias)
    for (int64_t f = 0; f < g.f; ++f)
      dbias[f] = static_cast<float>(bacc[at(f)] + (accumulate_bias ? dbias[f] : 0.0));
}

}  // namespace ref

}  // namespace lamina::kernels
