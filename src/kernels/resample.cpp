// oneDNN resampling glue: NHWC in and out, nearest and linear with whole factors. oneDNN's
// linear places source positions at (o + 0.5) / F - 0.5 and clamps them to the image, which is
// TensorFlow's half-pixel bilinear resize (and torch's align_corners=False); its nearest takes
// floor((o + 0.5) / F), which for a whole F is o / F, Keras' repeat.
#include "kernels/resample.hpp"

#include <algorithm>
#include <cmath>
#include <map>
#include <memory>
#include <tuple>

#include "allocator.hpp"
#include "kernels/dnnl_common.hpp"
#include "kernels/elementwise.hpp"

namespace lamina::kernels {

namespace {

using namespace dnnl_glue;
using dnnl::memory;

// Memory-bound like pooling (pool.cpp's measurements): one thread below this many output elements.
constexpr double kParallelElements = 1 << 20;

int resample_threads(const Resample& r) {
  return threads_for(static_cast<double>(r.n * r.oh() * r.ow() * r.c), kParallelElements);
}

struct Primitives {
  dnnl::resampling_forward forward;
  dnnl::resampling_backward backward;
  memory x, y, dy, dx;
};

Primitives make(const Resample& r) {
  Engine& e = cpu();
  const memory::desc src = nhwc(r.n, r.c, r.h, r.w), dst = nhwc(r.n, r.c, r.oh(), r.ow());
  const auto alg = r.linear ? dnnl::algorithm::resampling_linear : dnnl::algorithm::resampling_nearest;
  const std::vector<float> factors{static_cast<float>(r.sh), static_cast<float>(r.sw)};
  // forward_training: the hint the backward needs; resampling keeps no workspace, so it costs nothing.
  const dnnl::resampling_forward::primitive_desc pd(
      dnnl::resampling_forward::desc(dnnl::prop_kind::forward_training, alg, factors, src, dst), e.engine);
  const dnnl::resampling_backward::primitive_desc bpd(dnnl::resampling_backward::desc(alg, factors, src, dst),
                                                      e.engine, pd);
  return {dnnl::resampling_forward(pd), dnnl::resampling_backward(bpd), memory(src, e.engine, nullptr),
          memory(dst, e.engine, nullptr), memory(dst, e.engine, nullptr), memory(src, e.engine, nullptr)};
}

Primitives& primitives(const Resample& r, int threads) {
  static thread_local std::map<std::tuple<Resample, int>, Primitives> cache;
  const std::tuple key{r, threads};
  auto it = cache.find(key);
  if (it == cache.end()) it = cache.emplace(key, make(r)).first;
  return it->second;
}

}  // namespace

void resample_forward(const Resample& r, const float* x, float* y) {
  if (r.n * r.h * r.w * r.c == 0) return;
  const int threads = resample_threads(r);
  with_threads(threads, [&] {
    Primitives& p = primitives(r, threads);
    p.x.set_data_handle(const_cast<float*>(x));
    p.y.set_data_handle(y);
    Engine& e = cpu();
    p.forward.execute(e.stream, {{DNNL_ARG_SRC, p.x}, {DNNL_ARG_DST, p.y}});
    e.stream.wait();
  });
}

void resample_backward(const Resample& r, const float* dy, float* dx, bool accumulate) {
  const int64_t count = r.n * r.h * r.w * r.c;
  if (count == 0) return;
  const int threads = resample_threads(r);
  with_threads(threads, [&] {
    Primitives& p = primitives(r, threads);
    // oneDNN overwrites diff_src; to add, it writes into a scratch buffer first.
    std::shared_ptr<float[]> scratch = accumulate ? detail::allocate_storage(count) : nullptr;
    p.dy.set_data_handle(const_cast<float*>(dy));
    p.dx.set_data_handle(accumulate ? scratch.get() : dx);
    Engine& e = cpu();
    p.backward.execute(e.stream, {{DNNL_ARG_DIFF_DST, p.dy}, {DNNL_ARG_DIFF_SRC, p.dx}});
    e.stream.wait();
    if (accumulate) add_into(scratch.get(), dx, count);
  });
}

// --- the naive loops ------------------------------------------------------------------------------

namespace ref {

namespace {

// The source cells of output position o along one axis and their weights: nearest reads o / f
// alone; linear reads lo and hi = lo + 1 at (o + 0.5) / f - 0.5, both clamped to [0, in - 1]
// (https://www.tensorflow.org/api_docs/python/tf/image/resize, half_pixel_centers).
struct Taps {
  int64_t lo, hi;
  float w_lo, w_hi;
};

Taps taps(int64_t o, int64_t f, int64_t in, bool linear) {
  if (!linear || f == 1) return {o / f, o / f, 1.f, 0.f};
  const double s = (static_cast<double>(o) + 0.5) / static_cast<double>(f) - 0.5;
  const double fl = std::floor(s);
  const auto lo = static_cast<int64_t>(fl);
  const auto frac = static_cast<float>(s - fl);
  return {std::clamp<int64_t>(lo, 0, in - 1), std::clamp<int64_t>(lo + 1, 0, in - 1), 1.f - frac, frac};
}

// Calls f(input cell offset, weight, output cell offset) for the four taps of every output cell.
template <class F>
void for_taps(const Resample& r, F f) {
  for (int64_t n = 0; n < r.n; ++n)
    for (int64_t i = 0; i < r.oh(); ++i) {
      const Taps ty = taps(i, r.sh, r.h, r.linear);
      for (int64_t j = 0; j < r.ow(); ++j) {
        const Taps tx = taps(j, r.sw, r.w, r.linear);
        const int64_t out = ((n * r.oh() + i) * r.ow() + j) * r.c;
        for (const auto& [row, wr] : {std::pair{ty.lo, ty.w_lo}, std::pair{ty.hi, ty.w_hi}})
          for (const auto& [col, wc] : {std::pair{tx.lo, tx.w_lo}, std::pair{tx.hi, tx.w_hi}})
            f(((n * r.h + row) * r.w + col) * r.c, wr * wc, out);
      }
    }
}

}  // namespace

void resample_forward(const Resample& r, const float* x, float* y) {
  std::fill_n(y, r.n * r.oh() * r.ow() * r.c, 0.f);
  for_taps(r, [&](int64_t in, float weight, int64_t out) {
    for (int64_t c = 0; c < r.c; ++c) y[out + c] += weight * x[in + c];
  });
}

void resample_backward(const Resample& r, const float* dy, float* dx, bool accumulate) {
  if (!accumulate) std::fill_n(dx, r.n * r.h * r.w * r.c, 0.f);
  for_taps(r, [&](int64_t in, float weight, int64_t out) {
    for (int64_t c = 0; c < r.c; ++c) dx[in + c] += weight * dy[out + c];
  });
}

}  // namespace ref

}  // namespace lamina::kernels
