// An LSTM's inference forward on one sequence in our own loops (lstm_one.hpp).
//
// At batch 1 each step is a vector times the recurrent kernel, U x 4U floats (1 MB for 256 units):
// the step streams the kernel from the caches and does little else. oneDNN's RNN primitive runs
// it through its GEMM kernels, and a batch of one cannot be split by rows as larger ones are
// (rnn.cpp). Here the kernel is packed (per call: the weights may have changed) into panels of
// 128 columns, each panel's rows one after the other, so that a pass of the product reads one
// sequential stream, and a step's gates, cell state and output are one vectorized loop. The
// input's part of the gates, x W + bias for every step, is one product before the steps.
// - One core, the four gates side by side, when the kernel is at most the core's second-level
//   cache's size. bench's imdb-lstm (two Bidirectional LSTM(64), 200 steps) one review at a time:
//   1,445 samples/s against oneDNN's 571 and ONNX Runtime's 1,073; char-lstm (LSTM(256), 100
//   steps): 772-1,000 against oneDNN's 505-615 and ONNX Runtime's 623.
// - Several cores when each can own 64 units or more: a core owns its units' columns of the four
//   gates (half of a 1 MB kernel on two cores, which then stays in each core's cache), their
//   gates, cell state and output, and a step ends at one barrier before the next step reads every
//   unit's output. char-lstm on two threads: 899-979 samples/s against oneDNN's 548 and ONNX
//   Runtime's 805-887.
#include "kernels/lstm_one.hpp"

#include <omp.h>

#include <algorithm>
#include <vector>

#include "kernels/elementwise.hpp"  // LAMINA_HOT
#include "kernels/exp_one.hpp"
#include "kernels/matmul.hpp"

#if defined(__x86_64__) && defined(__GNUC__)
#include <immintrin.h>
#define LAMINA_LSTM_ONE 1
#endif

namespace lamina::kernels {

namespace {

constexpr int64_t kLanes = 16;
constexpr int64_t kBlock = 8 * kLanes;    // columns a pass of the product: 8 accumulators
constexpr int64_t kMinUnitsPerCore = 64;  // a core's share of the units at least
// One core takes a sequence alone when the recurrent kernel is at most its second-level cache's
// size (1 MB on this Zen 5; U x 4U floats: 256 units).
constexpr int64_t kOneCoreKernelBytes = 1024 * 1024;

#ifdef LAMINA_LSTM_ONE
#ifdef __AVX512F__
#define LAMINA_AVX512 __attribute__((target("tune=icelake-server")))
#else
#define LAMINA_AVX512 __attribute__((target("arch=x86-64-v4,tune=icelake-server")))
#endif

// out[j] += sum over p < k of h[p] w[p * ldw + j], for j < 16 V.
template <int V>
LAMINA_AVX512 void gemv_block(const float* __restrict h, int64_t k, const float* __restrict w, int64_t ldw,
                              float* __restrict out) {
  __m512 acc[V];
#pragma GCC unroll 8
  for (int v = 0; v < V; ++v) acc[v] = _mm512_loadu_ps(out + v * kLanes);
  for (int64_t p = 0; p < k; ++p) {
    const __m512 hp = _mm512_set1_ps(h[p]);
    const float* row = w + p * ldw;
#pragma GCC unroll 8
    for (int v = 0; v < V; ++v) acc[v] = _mm512_fmadd_ps(hp, _mm512_loadu_ps(row + v * kLanes), acc[v]);
  }
#pragma GCC unroll 8
  for (int v = 0; v < V; ++v) _mm512_storeu_ps(out + v * kLanes, acc[v]);
}

// The columns [0, n) of a (rows, ldw) matrix w in panels of kBlock columns (kLanes for the rest,
// n a multiple of kLanes), each panel's rows one after the other: a pass of the product over a
// panel reads one sequential stream. (Packed every call: the weights may have changed.)
void pack_panels(const float* w, int64_t ldw, int64_t rows, int64_t n, float* out) {
  for (int64_t j = 0; j < n;) {
    const int64_t cols = n - j >= kBlock ? kBlock : kLanes;
    for (int64_t p = 0; p < rows; ++p) std::copy_n(w + p * ldw + j, cols, out + j * rows + p * cols);
    j += cols;
  }
}

// out[0, n) += h (1, k) w (k, n), w packed by pack_panels.
LAMINA_AVX512 void gemv_panels(const float* h, int64_t k, const float* packed, int64_t n, float* out) {
  for (int64_t j = 0; j < n;) {
    if (n - j >= kBlock) {
      gemv_block<8>(h, k, packed + j * k, kBlock, out + j);
      j += kBlock;
    } else {
      gemv_block<1>(h, k, packed + j * k, kLanes, out + j);
      j += kLanes;
    }
  }
}

// One step's gates z = [i, f, c~, o] (Keras' order, n each, before their activations) into the
// cell state c and the output h (n each), in one loop GCC vectorizes: sigmoid(z) = 1 / (1 + e^-z),
// tanh(z) = 1 - 2 / (1 + e^2z) (1 and -1 where e^2z overflows or vanishes).
LAMINA_HOT void cell_step(const float* __restrict z, float* __restrict c, float* __restrict h, int64_t n) {
  const float *zi = z, *zf = z + n, *zg = z + 2 * n, *zo = z + 3 * n;
  for (int64_t j = 0; j < n; ++j) {
    const float i = 1.f / (1.f + exp_one(-zi[j])), f = 1.f / (1.f + exp_one(-zf[j]));
    const float g = 1.f - 2.f / (1.f + exp_one(2.f * zg[j])), o = 1.f / (1.f + exp_one(-zo[j]));
    const float cell = f * c[j] + i * g;
    c[j] = cell;
    h[j] = o * (1.f - 2.f / (1.f + exp_one(2.f * cell)));
  }
}

bool has_avx512() {
  static const bool yes = __builtin_cpu_supports("x86-64-v4");
  return yes;
}
#endif

// How many cores share a sequence: each owns kMinUnitsPerCore units or more.
int team_for(const RnnGeometry& g) {
  return static_cast<int>(
      std::clamp<int64_t>(g.u / kMinUnitsPerCore, 1, omp_in_parallel() ? 1 : omp_get_max_threads()));
}

}  // namespace

bool lstm_one_applies(const RnnGeometry& g) {
#ifdef LAMINA_LSTM_ONE
  // Several cores split the units of a large kernel; one core takes one of the size of its cache
  // alone. (A larger kernel on one core stays on oneDNN's primitive: not measured.)
  if (!has_avx512() || g.cell != RnnCellKind::lstm || g.n != 1 || g.t <= 0 || g.u % kLanes != 0) return false;
  const bool fits = g.u * 4 * g.u * static_cast<int64_t>(sizeof(float)) <= kOneCoreKernelBytes;
  return fits || team_for(g) >= 2;
#else
  (void)g;
  return false;
#endif
}

void lstm_one_forward(const RnnGeometry& g, const float* x, const float* wx, const float* wh, const float* bias,
                      const float* h0, const float* c0, float* y, float* c_last) {
#ifdef LAMINA_LSTM_ONE
  const int64_t t_steps = g.t, u = g.u, width = 4 * u;
  // The input's part of every step's gates: x (T, I) W (I, 4U) + bias.
  std::vector<float> xw(static_cast<size_t>(t_steps * width));
  matmul(x, wx, xw.data(), t_steps, g.i, width, false, false, false, bias, Eltwise::none);
  const int team = team_for(g);
  if (team == 1) {  // the four gates side by side, as Keras lays the kernel out
    std::vector<float> z(static_cast<size_t>(width)), c(c0, c0 + u), packed(static_cast<size_t>(u * width));
    pack_panels(wh, width, u, width, packed.data());
    const float* h_now = h0;
    for (int64_t t = 0; t < t_steps; ++t) {
      std::copy_n(xw.data() + t * width, width, z.data());
      gemv_panels(h_now, u, packed.data(), width, z.data());
      cell_step(z.data(), c.data(), y + t * u, u);
      h_now = y + t * u;
    }
    if (c_last) std::copy(c.begin(), c.end(), c_last);
    return;
  }
  std::vector<float> h(static_cast<size_t>(2 * u));  // this step's output and the next's
  std::copy_n(h0, u, h.data());
#pragma omp parallel num_threads(team)
  {
    const int64_t k = omp_get_thread_num(), nk = omp_get_num_threads();
    const int64_t blocks = u / kLanes;  // units in whole vectors, split over the cores
    const int64_t u0 = blocks * k / nk * kLanes, u1 = blocks * (k + 1) / nk * kLanes, own = u1 - u0;
    std::vector<float> z(static_cast<size_t>(4 * own)), c(c0 + u0, c0 + u1);
    // This core's columns of the recurrent kernel (its units in each gate), gate by gate, in
    // panels: char-lstm at batch 1 on two threads, 910 samples/s against 741 read in place.
    std::vector<float> packed(static_cast<size_t>(u * 4 * own));
    for (int q = 0; q < 4; ++q) pack_panels(wh + q * u + u0, width, u, own, packed.data() + q * own * u);
    for (int64_t t = 0; t < t_steps; ++t) {
      const float* h_now = h.data() + (t % 2) * u;
      float* h_next = h.data() + ((t + 1) % 2) * u;
      for (int q = 0; q < 4; ++q) {  // i, f, c~, o (Keras' order), this core's units of each
        std::copy_n(xw.data() + t * width + q * u + u0, own, z.data() + q * own);
        gemv_panels(h_now, u, packed.data() + q * own * u, own, z.data() + q * own);
      }
      cell_step(z.data(), c.data(), h_next + u0, own);
      std::copy_n(h_next + u0, own, y + t * u + u0);
#pragma omp barrier
    }
    if (c_last) std::copy(c.begin(), c.end(), c_last + u0);
  }
#else
  (void)g, (void)x, (void)wx, (void)wh, (void)bias, (void)h0, (void)c0, (void)y, (void)c_last;
#endif
}

}  // namespace lamina::kernels
