// oneDNN pooling glue: NHWC in and out (oneDNN's JIT pooling reads NHWC directly), max with
// its workspace, average with padding excluded (Keras' 'same').
#include "kernels/pool.hpp"

#include <algorithm>
#include <cmath>
#include <map>
#include <optional>
#include <tuple>
#include <vector>

#include "allocator.hpp"
#include "kernels/dnnl_common.hpp"
#include "kernels/elementwise.hpp"

namespace lamina::kernels {

namespace {

using namespace dnnl_glue;
using dnnl::memory;

// Pooling is memory-bound and cheap per element: one thread below this many input elements.
// LeNet step on 2 cores: pools on one thread 1.98 ms, on two 2.04 ms; a 64x28x28x32 max pool
// in isolation gains (fwd + bwd 268 -> 174 us).
constexpr double kParallelElements = 1 << 20;

int pool_threads(const Geometry2d& g) { return threads_for(static_cast<double>(g.n * g.h * g.w * g.c), kParallelElements); }

struct Pool {
  dnnl::pooling_forward::primitive_desc pd;
  dnnl::pooling_forward forward;
  memory x, y, workspace;
  std::optional<dnnl::pooling_backward> backward;
  memory dy, dx;
};

// training: a max pool that keeps a workspace for its backward.
Pool make_pool(const Geometry2d& g, bool max, bool training) {
  Engine& e = cpu();
  const memory::desc src = nhwc(g.n, g.c, g.h, g.w), dst = nhwc(g.n, g.c, g.oh, g.ow);
  const memory::dims kernel{g.kh, g.kw};
  const auto alg = max ? dnnl::algorithm::pooling_max : dnnl::algorithm::pooling_avg_exclude_padding;
  const auto prop = training ? dnnl::prop_kind::forward_training : dnnl::prop_kind::forward_inference;
  const dnnl::pooling_forward::desc desc(prop, alg, src, dst, strides_of(g), kernel, pad_lo(g), pad_hi(g));
  const dnnl::pooling_forward::primitive_desc pd(desc, e.engine);
  Pool p{pd, dnnl::pooling_forward(pd), memory(src, e.engine, nullptr), memory(dst, e.engine, nullptr),
         memory(pd.workspace_desc(), e.engine, nullptr), std::nullopt, memory(dst, e.engine, nullptr),
         memory(src, e.engine, nullptr)};
  if (training) {
    const dnnl::pooling_backward::desc bdesc(alg, src, dst, strides_of(g), kernel, pad_lo(g), pad_hi(g));
    p.backward = dnnl::pooling_backward(dnnl::pooling_backward::primitive_desc(bdesc, e.engine, pd));
  }
  return p;
}

Pool& pool(const Geometry2d& g, bool max, bool training, int threads) {
  static thread_local std::map<std::tuple<Geometry2d, bool, bool, int>, Pool> cache;
  const std::tuple key{g, max, training, threads};
  auto it = cache.find(key);
  if (it == cache.end()) it = cache.emplace(key, make_pool(g, max, training)).first;
  return it->second;
}

void run_forward(const Geometry2d& g, bool max, const float* x, float* y, void* workspace) {
  if (g.n * g.oh * g.ow * g.c == 0) return;
  const int threads = pool_threads(g);
  with_threads(threads, [&] {
    Pool& p = pool(g, max, !max || workspace, threads);
    p.x.set_data_handle(const_cast<float*>(x));
    p.y.set_data_handle(y);
    Engine& e = cpu();
    if (max && workspace) {
      p.workspace.set_data_handle(workspace);
      p.forward.execute(e.stream, {{DNNL_ARG_SRC, p.x}, {DNNL_ARG_DST, p.y}, {DNNL_ARG_WORKSPACE, p.workspace}});
    } else {
      p.forward.execute(e.stream, {{DNNL_ARG_SRC, p.x}, {DNNL_ARG_DST, p.y}});
    }
    e.stream.wait();
  });
}

void run_backward(const Geometry2d& g, bool max, const float* dy, const void* workspace, float* dx, bool accumulate) {
  const int64_t count = g.n * g.h * g.w * g.c;
  if (count == 0) return;
  if (g.oh * g.ow == 0) {
    if (!accumulate) std::fill_n(dx, count, 0.f);
    return;
  }
  const int threads = pool_threads(g);
  with_threads(threads, [&] {
    Pool& p = pool(g, max, true, threads);
    // oneDNN overwrites diff_src; to add, it writes into a scratch buffer first.
    std::shared_ptr<float[]> scratch = accumulate ? detail::allocate_storage(count) : nullptr;
    p.dy.set_data_handle(const_cast<float*>(dy));
    p.dx.set_data_handle(accumulate ? scratch.get() : dx);
    Engine& e = cpu();
    if (max) {
      p.workspace.set_data_handle(const_cast<void*>(workspace));
      p.backward->execute(e.stream, {{DNNL_ARG_DIFF_DST, p.dy}, {DNNL_ARG_DIFF_SRC, p.dx}, {DNNL_ARG_WORKSPACE, p.workspace}});
    } else {
      p.backward->execute(e.stream, {{DNNL_ARG_DIFF_DST, p.dy}, {DNNL_ARG_DIFF_SRC, p.dx}});
    }
    e.stream.wait();
    if (accumulate) add_into(scratch.get(), dx, count);
  });
}

}  // namespace

size_t max_pool2d_workspace_bytes(const Geometry2d& g) {
  if (g.n * g.oh * g.ow * g.c == 0) return 0;
  const int threads = pool_threads(g);
  size_t bytes = 0;
  with_threads(threads, [&] { bytes = pool(g, true, true, threads).pd.workspace_desc().get_size(); });
  return bytes;
}

void max_pool2d_forward(const Geometry2d& g, const float* x, float* y, void* workspace) {
  run_forward(g, true, x, y, workspace);
}
void max_pool2d_backward(const Geometry2d& g, const float* dy, const void* workspace, float* dx, bool accumulate) {
  run_backward(g, true, dy, workspace, dx, accumulate);
}
void avg_pool2d_forward(const Geometry2d& g, const float* x, float* y) { run_forward(g, false, x, y, nullptr); }
void avg_pool2d_backward(const Geometry2d& g, const float* dy, float* dx, bool accumulate) {
  run_backward(g, false, dy, nullptr, dx, accumulate);
}

// --- the naive loops ------------------------------------------------------------------------------

namespace ref {

namespace {
// Calls f(flat index of input cell (n, r, s, 0)) for each cell of output (i, j)'s window inside the image.
template <class F>
void for_window(const Geometry2d& g, int64_t n, int64_t i, int64_t j, F f) {
  for (int64_t r = i * g.sh - g.pad_top; r < i * g.sh - g.pad_top + g.kh; ++r)
    for (int64_t s = j * g.sw - g.pad_left; s < j * g.sw - g.pad_left + g.kw; ++s)
      if (r >= 0 && r < g.h && s >= 0 && s < g.w) f(((n * g.h + r) * g.w + s) * g.c);
}

int64_t out_index(const Geometry2d& g, int64_t n, int64_t i, int64_t j) { return ((n * g.oh + i) * g.ow + j) * g.c; }

void start(float* dx, int64_t count, bool accumulate) {
  if (!accumulate) std::fill_n(dx, count, 0.f);
}
}  // namespace

void max_pool2d_forward(const Geometry2d& g, const float* x, float* y) {
  for (int64_t n = 0; n < g.n; ++n)
    for (int64_t i = 0; i < g.oh; ++i)
      for (int64_t j = 0; j < g.ow; ++j)
        for (int64_t c = 0; c < g.c; ++c) {
          float best = -INFINITY;
          for_window(g, n, i, j, [&](int64_t at) { best = std::max(best, x[at + c]); });
          y[out_index(g, n, i, j) + c] = best;
        }
}

void max_pool2d_backward(const Geometry2d& g, const float* x, const float* dy, float* dx, bool accumulate) {
  start(dx, g.n * g.h * g.w * g.c, accumulate);
  for (int64_t n = 0; n < g.n; ++n)
    for (int64_t i = 0; i < g.oh; ++i)
      for (int64_t j = 0; j < g.ow; ++j)
        for (int64_t c = 0; c < g.c; ++c) {
          int64_t arg = -1;
          for_window(g, n, i, j, [&](int64_t at) {
            if (arg < 0 || x[at + c] > x[arg]) arg = at + c;
          });
          if (arg >= 0) dx[arg] += dy[out_index(g, n, i, j) + c];
        }
}

void avg_pool2d_forward(const Geometry2d& g, const float* x, float* y) {
  for (int64_t n = 0; n < g.n; ++n)
    for (int64_t i = 0; i < g.oh; ++i)
      for (int64_t j = 0; j < g.ow; ++j)
        for (int64_t c = 0; c < g.c; ++c) {
          double sum = 0.0;
          int64_t cells = 0;
          for_window(g, n, i, j, [&](int64_t at) { sum += x[at + c], ++cells; });
          y[out_index(g, n, i, j) + c] = static_cast<float>(sum / static_cast<double>(std::max<int64_t>(cells, 1)));
        }
}

void avg_pool2d_backward(const Geometry2d& g, const float* dy, float* dx, bool accumulate) {
  start(dx, g.n * g.h * g.w * g.c, accumulate);
  for (int64_t n = 0; n < g.n; ++n)
    for (int64_t i = 0; i < g.oh; ++i)
      for (int64_t j = 0; j < g.ow; ++j) {
        int64_t cells = 0;
        for_window(g, n, i, j, [&](int64_t) { ++cells; });
        for (int64_t c = 0; c < g.c; ++c) {
          const float share = dy[out_index(g, n, i, j) + c] / static_cast<float>(std::max<int64_t>(cells, 1));
          for_window(g, n, i, j, [&](int64_t at) { dx[at + c] += share; });
        }
      }
}

}  // namespace ref

}  // namespace lamina::kernels
