// Pooling on NHWC images: max pooling in our own loops (with the index of each window's winner
// as its workspace), average pooling on oneDNN (its JIT pooling reads NHWC directly), padding
// excluded (Keras' 'same').
#include "kernels/pool.hpp"

#include <omp.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <map>
#include <optional>
#include <tuple>
#include <type_traits>
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

// --- max pooling on few channels: our own loops ---------------------------------------------------
// oneDNN's NHWC max pooling vectorizes over C, 16 channels to a vector. On other channel counts
// its backward is slow: LeNet's first pool (64x28x28x6, 2x2, one thread) took 44 us forward and
// 384 us backward; these loops take 82 and 62 us. At 16 channels (LeNet's second pool,
// 64x10x10x16) oneDNN is faster: 9 and 28 us against 24 and 45. So oneDNN takes channel counts
// that are multiples of 16 and these loops the rest, in training (forward with a workspace,
// and backward); inference, which needs no backward, keeps oneDNN's faster forward.
// They record, for each output, which cell of its window won (counted in the window clipped to
// the image, row-major), in the narrowest index that holds the window's cells; the backward
// sends dy there. Ties go to the first cell, as in kernels::ref.
bool own_max_pool(const Geometry2d& g) { return g.c % 16 != 0; }

// The window of output (i, j), clipped to the image: rows [r0, r1), columns [s0, s1).
struct Clip {
  int64_t r0, r1, s0, s1;
};
Clip clip(const Geometry2d& g, int64_t i, int64_t j) {
  const int64_t r = i * g.sh - g.pad_top, s = j * g.sw - g.pad_left;
  return {std::max<int64_t>(r, 0), std::min(r + g.kh, g.h), std::max<int64_t>(s, 0), std::min(s + g.kw, g.w)};
}

// The clipped window's cell count bounds the index: min(KH, H) * min(KW, W).
int64_t window_cells(const Geometry2d& g) { return std::min(g.kh, g.h) * std::min(g.kw, g.w); }

template <class F>
void for_index_type(const Geometry2d& g, F f) {
  const int64_t cells = window_cells(g);
  if (cells <= 256) return f(uint8_t{});
  if (cells <= (int64_t{1} << 31)) return f(uint32_t{});
  f(uint64_t{});
}

// f(scratch, n, i) for the rows (n, i) of the output, on `threads` threads, each with its own Scratch.
template <class Scratch, class F>
void for_output_rows(const Geometry2d& g, int threads, F f) {
  const int64_t rows = g.n * g.oh;
#pragma omp parallel num_threads(threads) if (threads > 1)
  {
    Scratch scratch;
#pragma omp for schedule(static)
    for (int64_t row = 0; row < rows; ++row) f(scratch, row / g.oh, row % g.oh);
  }
}

// The outputs j in [lo, hi) whose window columns lie inside the image (no clipping): their
// windows differ only by where they start, so a whole output row of them is a few passes over
// contiguous memory.
struct Interior {
  int64_t lo, hi;
};
Interior interior(const Geometry2d& g) {
  const int64_t lo = std::min((g.pad_left + g.sw - 1) / g.sw, g.ow);  // first j with j sw - pad_left >= 0
  const int64_t last = g.w - g.kw + g.pad_left;  // j sw <= last keeps the window's end inside
  const int64_t hi = last < 0 ? lo : std::clamp(last / g.sw + 1, lo, g.ow);
  return {lo, hi};
}

// Local index type: 32 bits unless a window has more cells than that holds.
template <class Index>
using Local = std::conditional_t<sizeof(Index) == 8, int64_t, int32_t>;

// One output j with a clipped window (at the image's left or right edge), channel by channel.
template <class Index>
void max_pool_edge(const Geometry2d& g, int64_t n, int64_t i, int64_t j, const float* x, float* y, Index* arg) {
  const Clip w = clip(g, i, j);
  const int64_t out = ((n * g.oh + i) * g.ow + j) * g.c;
  if (w.r0 >= w.r1 || w.s0 >= w.s1) {
    std::fill_n(y + out, g.c, -INFINITY);
    std::fill_n(arg + out, g.c, Index{0});
    return;
  }
  const float* window = x + ((n * g.h + w.r0) * g.w + w.s0) * g.c;
  for (int64_t k = 0; k < g.c; ++k) {
    float best = window[k];
    Local<Index> at = 0, cell = 0;
    for (int64_t r = 0; r < w.r1 - w.r0; ++r)
      for (int64_t s = 0; s < w.s1 - w.s0; ++s, ++cell) {
        const float v = window[(r * g.w + s) * g.c + k];
        if (v > best) best = v, at = cell;
      }
    y[out + k] = best;
    arg[out + k] = static_cast<Index>(at);
  }
}

// The window maxima of kLanes consecutive q (flattened column, channel) of one output row, in
// GCC vectors of the target's width (16 lanes with AVX-512, 8 with AVX, 4 with SSE; a vector
// wider than the target's registers is lowered lane by lane, which made the x86-64-v3 build's
// pool 6 times slower): `start` is the first window's first cell; a window spans `rows` rows
// `row_step` apart and kw columns c apart. best, at: the maximum and its cell (row-major), the
// first of equals. Plain arrays here stay on the stack across the runtime loops, and the
// store-to-load round trip per cell made LeNet's first pool 500 us; window_max1 is the one-lane
// loop for rows shorter than a vector.
struct WindowRun {
  const float* start;
  int64_t rows, kw, row_step, c;
};
constexpr int64_t kLanes = kTargetVectorBytes / 4;
using FloatVector = float __attribute__((vector_size(kTargetVectorBytes)));
using IntVector = int32_t __attribute__((vector_size(kTargetVectorBytes)));
inline FloatVector load_vector(const float* p) {
  FloatVector v;
  std::memcpy(&v, p, sizeof v);
  return v;
}
// kBlocks vectors at once: each one's compare-and-blend chain waits on the one before (4-5
// cycles a cell), so independent vectors fill the gaps.
template <int kBlocks>
inline void window_max_vectors(const WindowRun& run, int64_t q0, float* best, int32_t* at) {
  const float* first = run.start + q0;
  FloatVector b[kBlocks];
  IntVector a[kBlocks];
  for (int u = 0; u < kBlocks; ++u) b[u] = load_vector(first + kLanes * u), a[u] = IntVector{};
  int32_t cell = 0;
  for (int64_t r = 0; r < run.rows; ++r)
    for (int64_t t = 0; t < run.kw; ++t, ++cell) {
      const float* cell_start = first + r * run.row_step + t * run.c;
      for (int u = 0; u < kBlocks; ++u) {
        const FloatVector v = load_vector(cell_start + kLanes * u);
        const IntVector win = v > b[u];  // -1 where v wins
        a[u] = (a[u] & ~win) | (cell & win);
        b[u] = win ? v : b[u];
      }
    }
  std::memcpy(best + q0, b, sizeof b);
  std::memcpy(at + q0, a, sizeof a);
}
template <class L>
void window_max1(const WindowRun& run, int64_t q, float* best, L* at) {
  const float* first = run.start + q;
  float b = *first;
  L a = 0, cell = 0;
  for (int64_t r = 0; r < run.rows; ++r)
    for (int64_t t = 0; t < run.kw; ++t, ++cell) {
      const float v = first[r * run.row_step + t * run.c];
      if (v > b) b = v, a = cell;
    }
  best[q] = b, at[q] = a;
}

// One thread's buffers for max_pool_row: an output row's maxima and cells at every column, and
// which of them the outputs take.
template <class L>
struct MaxPoolScratch {
  std::vector<float> best;
  std::vector<L> at;
  std::vector<int64_t> pick;
};

// Output row (n, i): y = max over each window, arg = the winning cell (counted row-major in the
// window clipped to the image). Ties go to the first cell, as in kernels::ref; windows with no
// cell in the image (Keras' and ONNX's padding rules make none) give -inf and route nothing.
// The interior outputs are vectorized over the flattened (column, channel) axis q, whatever C is:
// the window starting at q is the same shape for every q, its cells visited in row-major order,
// a later cell winning only when greater (window_max_vectors); a copy then picks every
// stride-th column. Per channel, LeNet's first pool (6 channels) took 500 us, as long as
// oneDNN's forward and backward together.
template <class Index>
void max_pool_row(const Geometry2d& g, int64_t n, int64_t i, const float* __restrict x, float* __restrict y,
                  Index* __restrict arg, MaxPoolScratch<Local<Index>>& scratch) {
  std::vector<float>& buf = scratch.best;
  std::vector<Local<Index>>& at_buf = scratch.at;
  const Interior in = interior(g);
  for (int64_t j = 0; j < in.lo; ++j) max_pool_edge(g, n, i, j, x, y, arg);
  for (int64_t j = in.hi; j < g.ow; ++j) max_pool_edge(g, n, i, j, x, y, arg);
  if (in.lo >= in.hi) return;
  const Clip w = clip(g, i, in.lo);
  const int64_t c = g.c, out_row = (n * g.oh + i) * g.ow;
  if (w.r0 >= w.r1) {
    std::fill_n(y + (out_row + in.lo) * c, (in.hi - in.lo) * c, -INFINITY);
    std::fill_n(arg + (out_row + in.lo) * c, (in.hi - in.lo) * c, Index{0});
    return;
  }
  const int64_t length = ((in.hi - 1 - in.lo) * g.sw + 1) * c;  // q over the window starts' columns
  buf.resize(static_cast<size_t>(length));
  at_buf.resize(static_cast<size_t>(length));
  const float* start = x + ((n * g.h + w.r0) * g.w + w.s0) * c;
  const WindowRun run{start, w.r1 - w.r0, g.kw, g.w * c, c};
  // Vectors of q, the last one overlapping the one before rather than a scalar tail (a
  // window's maximum computed twice is the same).
  if (length < kLanes || !std::is_same_v<Local<Index>, int32_t>) {
    for (int64_t q = 0; q < length; ++q) window_max1(run, q, buf.data(), at_buf.data());
  } else if constexpr (std::is_same_v<Local<Index>, int32_t>) {
    int64_t q0 = 0;
    for (; q0 + 4 * kLanes <= length; q0 += 4 * kLanes) window_max_vectors<4>(run, q0, buf.data(), at_buf.data());
    for (; q0 + kLanes <= length; q0 += kLanes) window_max_vectors<1>(run, q0, buf.data(), at_buf.data());
    if (q0 < length) window_max_vectors<1>(run, length - kLanes, buf.data(), at_buf.data());
  }
  // Every sw-th column's windows, through a table of where each output comes from (a gather
  // where the target has one).
  const int64_t outputs = (in.hi - in.lo) * c;
  std::vector<int64_t>& pick = scratch.pick;
  if (static_cast<int64_t>(pick.size()) != outputs) {  // the same for every row of one call
    pick.resize(static_cast<size_t>(outputs));
    for (int64_t p = 0; p < outputs; ++p) pick[static_cast<size_t>(p)] = p / c * g.sw * c + p % c;
  }
  const float* __restrict best = buf.data();
  const Local<Index>* __restrict at = at_buf.data();
  const int64_t* __restrict from = pick.data();
  float* __restrict to = y + (out_row + in.lo) * c;
  Index* __restrict to_arg = arg + (out_row + in.lo) * c;
  for (int64_t p = 0; p < outputs; ++p) to[p] = best[from[p]];
  for (int64_t p = 0; p < outputs; ++p) to_arg[p] = static_cast<Index>(at[from[p]]);
}

// dx += dy at each window's winner: cell -> its offset from the window's first cell, from a
// table (no division per element), one for all the interior outputs of the row. zero_rows:
// first zero the image rows this output row's windows cover (no other output row covers them),
// while they are in cache, rather than all of dx beforehand (1.2 MB for LeNet's first pool,
// more than a core's L2, so the scatter then missed).
template <class Index>
void max_pool_backward_row(const Geometry2d& g, int64_t n, int64_t i, const float* __restrict dy,
                           const Index* __restrict arg, float* __restrict dx, std::vector<int64_t>& offsets,
                           bool zero_rows) {
  const int64_t c = g.c;
  const Interior in = interior(g);
  const Clip rows = clip(g, i, 0);  // every window of the row has these rows
  if (zero_rows && rows.r0 < rows.r1)
    std::fill_n(dx + (n * g.h + rows.r0) * g.w * c, (rows.r1 - rows.r0) * g.w * c, 0.f);
  if (rows.r0 >= rows.r1) return;
  // One table of offsets for the edge windows (rebuilt for each) and one for the interior ones.
  auto route = [&](int64_t j, int64_t s0) {
    const int64_t out = ((n * g.oh + i) * g.ow + j) * c;
    float* __restrict window = dx + ((n * g.h + rows.r0) * g.w + s0) * c;
    const int64_t* __restrict offset = offsets.data();
    for (int64_t k = 0; k < c; ++k) window[offset[static_cast<size_t>(arg[out + k])] + k] += dy[out + k];
  };
  auto build = [&](int64_t width) {
    offsets.clear();
    for (int64_t r = 0; r < rows.r1 - rows.r0; ++r)
      for (int64_t s = 0; s < width; ++s) offsets.push_back((r * g.w + s) * c);
  };
  for (int64_t j = 0; j < g.ow; ++j) {
    if (j >= in.lo && j < in.hi) continue;
    const Clip w = clip(g, i, j);
    if (w.s0 >= w.s1) continue;
    build(w.s1 - w.s0);
    route(j, w.s0);
  }
  if (in.lo >= in.hi) return;
  build(g.kw);
  for (int64_t j = in.lo; j < in.hi; ++j) route(j, j * g.sw - g.pad_left);
}

// --- 2x2 windows at stride 2 on fewer than 16 channels: the forward ------------------------------
// The pool of nearly every small CNN (LeNet's first: 64x28x28x6). The general loops above
// compute a window's maximum at every column and then pick every second one through a table;
// here output column j's four cells are read where they lie, C channels each at (2i, 2j),
// (2i, 2j + 1), (2i + 1, 2j) and (2i + 1, 2j + 1), a vector per cell with C a compile-time
// constant. Their winners are the cells the general loops record, so the backward above takes
// them. LeNet's first pool on one core: 41-50 us against 140 (oneDNN's forward without a
// workspace: 38-56). Writing every cell of a window in the backward (dy at the winner, 0 at the
// others) was no faster than zeroing the rows and scattering: 68-93 us against 63-64.
bool pool2x2(const Geometry2d& g) {
  return g.kh == 2 && g.kw == 2 && g.sh == 2 && g.sw == 2 && g.pad_top == 0 && g.pad_left == 0 && g.c < 16 &&
         2 * g.oh <= g.h && 2 * g.ow <= g.w && g.oh > 0 && g.ow > 0;
}

template <int kBytes, int64_t C>
struct Pool2x2 {
  static constexpr int64_t kLanes = kBytes / 4;
  static constexpr int64_t kVectors = (C + kLanes - 1) / kLanes;
  using Vec = VecOf<kBytes>;
  using Mask = IntVecOf<kBytes>;
  using Bytes = ByteVecOf<kBytes>;

  // The first column whose vectors would read past a row of `length` floats, when column j
  // reads `span` floats from j * step.
  LAMINA_INLINE static int64_t vector_columns(int64_t columns, int64_t length, int64_t step, int64_t span) {
    const int64_t fit = length < span ? 0 : (length - span) / step + 1;
    return fit < columns ? fit : columns;
  }

  // Output row (n, i): y and each output's winning cell (0-3, row-major), the first of equals.
  // A column's vectors are stored whole, their lanes past C into the next columns' outputs,
  // which are written after them: a store of C lanes went through the stack and cost more than
  // the arithmetic. Columns whose whole vectors would run past the row take the scalar loop.
  LAMINA_INLINE static void forward_row(const Geometry2d& g, int64_t n, int64_t i, const float* __restrict x,
                                        float* __restrict y, uint8_t* __restrict arg) {
    const int64_t row = g.w * C;
    const float* r0 = x + (n * g.h + 2 * i) * row;
    const float* r1 = r0 + row;
    const int64_t out = (n * g.oh + i) * g.ow * C;
    const int64_t vector_end =
        vector_columns(vector_columns(g.ow, row, 2 * C, C + kVectors * kLanes), g.ow * C, C, kVectors * kLanes);
    for (int64_t j = 0; j < vector_end; ++j) {
      const float* cell[4] = {r0 + 2 * j * C, r0 + 2 * j * C + C, r1 + 2 * j * C, r1 + 2 * j * C + C};
      for (int64_t v = 0; v < kVectors; ++v) {
        Vec best, next;
        std::memcpy(&best, cell[0] + v * kLanes, sizeof best);
        Mask at{};
#pragma GCC unroll 4
        for (int k = 1; k < 4; ++k) {
          std::memcpy(&next, cell[k] + v * kLanes, sizeof next);
          const Mask win = next > best;  // -1 where the later cell wins
          best = win ? next : best;
          at = win ? Mask{} + k : at;
        }
        const Bytes at8 = __builtin_convertvector(at, Bytes);
        std::memcpy(y + out + j * C + v * kLanes, &best, sizeof best);
        std::memcpy(arg + out + j * C + v * kLanes, &at8, sizeof at8);
      }
    }
    for (int64_t j = vector_end; j < g.ow; ++j)
      for (int64_t c = 0; c < C; ++c) {
        const float cell[4] = {r0[2 * j * C + c], r0[2 * j * C + C + c], r1[2 * j * C + c], r1[2 * j * C + C + c]};
        float best = cell[0];
        uint8_t at = 0;
        for (uint8_t k = 1; k < 4; ++k)
          if (cell[k] > best) best = cell[k], at = k;
        y[out + j * C + c] = best;
        arg[out + j * C + c] = at;
      }
  }
};

// The output rows [row0, row1) (row n * oh + i) for C channels.
template <int kBytes, int64_t C>
LAMINA_INLINE void pool2x2_rows_of(const Geometry2d& g, int64_t row0, int64_t row1, const float* x, float* y,
                                   uint8_t* arg) {
  for (int64_t r = row0; r < row1; ++r) Pool2x2<kBytes, C>::forward_row(g, r / g.oh, r % g.oh, x, y, arg);
}

template <int kBytes>
LAMINA_INLINE void pool2x2_rows(const Geometry2d& g, int64_t row0, int64_t row1, const float* x, float* y,
                                uint8_t* arg) {
  switch (g.c) {
#define LAMINA_CASE(K) \
  case K: return pool2x2_rows_of<kBytes, K>(g, row0, row1, x, y, arg);
    LAMINA_CASE(1) LAMINA_CASE(2) LAMINA_CASE(3) LAMINA_CASE(4) LAMINA_CASE(5) LAMINA_CASE(6) LAMINA_CASE(7)
    LAMINA_CASE(8) LAMINA_CASE(9) LAMINA_CASE(10) LAMINA_CASE(11) LAMINA_CASE(12) LAMINA_CASE(13) LAMINA_CASE(14)
    LAMINA_CASE(15)
#undef LAMINA_CASE
    default: break;
  }
}

using Pool2x2Fn = void (*)(const Geometry2d&, int64_t, int64_t, const float*, float*, uint8_t*);
void pool2x2_build_target(const Geometry2d& g, int64_t row0, int64_t row1, const float* x, float* y, uint8_t* arg) {
  pool2x2_rows<kTargetVectorBytes>(g, row0, row1, x, y, arg);
}
#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__) && !defined(__AVX512F__)
__attribute__((target("arch=x86-64-v4"))) void pool2x2_avx512(const Geometry2d& g, int64_t row0, int64_t row1,
                                                              const float* x, float* y, uint8_t* arg) {
  pool2x2_rows<64>(g, row0, row1, x, y, arg);
}
Pool2x2Fn pool2x2_kernel() {
  static const Pool2x2Fn fn = __builtin_cpu_supports("x86-64-v4") ? pool2x2_avx512 : pool2x2_build_target;
  return fn;
}
#else
Pool2x2Fn pool2x2_kernel() { return pool2x2_build_target; }
#endif

// Every output row, on pool_threads(g) threads.
void pool2x2_forward(const Geometry2d& g, const float* x, float* y, uint8_t* arg) {
  const Pool2x2Fn fn = pool2x2_kernel();
  const int64_t rows = g.n * g.oh;
  const int threads = pool_threads(g);
  if (threads <= 1) return fn(g, 0, rows, x, y, arg);
#pragma omp parallel num_threads(threads)
  {
    const int t = omp_get_thread_num(), nt = omp_get_num_threads();
    fn(g, rows * t / nt, rows * (t + 1) / nt, x, y, arg);
  }
}

size_t own_max_pool_workspace_bytes(const Geometry2d& g) {
  size_t bytes = 0;
  for_index_type(g, [&](auto index) { bytes = static_cast<size_t>(g.n * g.oh * g.ow * g.c) * sizeof(index); });
  return bytes;
}

// Training only: inference keeps oneDNN's forward (max_pool2d_forward), so there is always a workspace.
void own_max_pool_forward(const Geometry2d& g, const float* x, float* y, void* workspace) {
  if (g.n * g.oh * g.ow * g.c == 0) return;
  if (pool2x2(g)) return pool2x2_forward(g, x, y, static_cast<uint8_t*>(workspace));
  for_index_type(g, [&](auto index) {
    using Index = decltype(index);
    using Scratch = MaxPoolScratch<Local<Index>>;
    for_output_rows<Scratch>(g, pool_threads(g), [&](Scratch& scratch, int64_t n, int64_t i) {
      max_pool_row(g, n, i, x, y, static_cast<Index*>(workspace), scratch);
    });
  });
}

void own_max_pool_backward(const Geometry2d& g, const float* dy, const void* workspace, float* dx, bool accumulate) {
  const int64_t count = g.n * g.h * g.w * g.c;
  if (count == 0) return;
  // Windows that overlap across rows (stride < window) may send two rows' dy to one cell: one
  // thread then, and dx zeroed beforehand. Otherwise each output row zeroes its own image rows,
  // and the rows no window covers are zeroed here.
  const bool overlap = g.sh < g.kh;
  const bool zero_rows = !accumulate && !overlap && g.oh * g.ow > 0;
  if (!accumulate && !zero_rows) std::fill_n(dx, count, 0.f);
  if (zero_rows)
    for (int64_t r = 0; r < g.h; ++r) {
      const int64_t i = (r + g.pad_top) / g.sh;
      if (i < g.oh && r + g.pad_top - i * g.sh < g.kh) continue;  // output row i covers it
      for (int64_t n = 0; n < g.n; ++n) std::fill_n(dx + (n * g.h + r) * g.w * g.c, g.w * g.c, 0.f);
    }
  if (g.oh * g.ow == 0) return;
  for_index_type(g, [&](auto index) {
    using Index = decltype(index);
    for_output_rows<std::vector<int64_t>>(g, overlap ? 1 : pool_threads(g),
                                          [&](std::vector<int64_t>& offsets, int64_t n, int64_t i) {
                                            max_pool_backward_row(g, n, i, dy, static_cast<const Index*>(workspace),
                                                                  dx, offsets, zero_rows);
                                          });
  });
}

}  // namespace

size_t max_pool2d_workspace_bytes(const Geometry2d& g) {
  if (own_max_pool(g)) return own_max_pool_workspace_bytes(g);
  if (g.n * g.oh * g.ow * g.c == 0) return 0;
  const int threads = pool_threads(g);
  size_t bytes = 0;
  with_threads(threads, [&] { bytes = pool(g, true, true, threads).pd.workspace_desc().get_size(); });
  return bytes;
}

void max_pool2d_forward(const Geometry2d& g, const float* x, float* y, void* workspace) {
  // Inference (no workspace) stays on oneDNN: its forward alone is the faster (44 us against 82).
  if (own_max_pool(g) && workspace) return own_max_pool_forward(g, x, y, workspace);
  run_forward(g, true, x, y, workspace);
}
void max_pool2d_forward_build_target(const Geometry2d& g, const float* x, float* y, void* workspace) {
  if (!pool2x2(g)) return max_pool2d_forward(g, x, y, workspace);
  pool2x2_build_target(g, 0, g.n * g.oh, x, y, static_cast<uint8_t*>(workspace));
}
void max_pool2d_backward(const Geometry2d& g, const float* dy, const void* workspace, float* dx, bool accumulate) {
  if (own_max_pool(g)) return own_max_pool_backward(g, dy, workspace, dx, accumulate);
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
