// An LSTM's inference forward on one sequence, its units split over the cores (lstm_one.hpp).
//
// At batch 1 each step is a vector times the recurrent kernel, U x 4U floats (1 MB for 256 units):
// the step streams the kernel from the caches and does little else. oneDNN's RNN primitive runs
// a sequence on one core (bench's char-lstm, 100 steps of LSTM(256): 1.6 ms), and a batch of one
// cannot be split by rows as larger ones are (rnn.cpp). Here each core owns a block of the units:
// their columns of the four gates' kernel (half of it on two cores, which then stays in each
// core's second-level cache), their gates, cell state and output; a step is the core's share of
// the product, the gates, and one barrier before the next step reads every unit's output.
// The input's part of the gates, x W + bias for every step, is one product before the steps.
//
// bench's char-lstm predicting one window at a time (samples/s, medians of 5 passes): on two
// threads 899-979 against oneDNN's 548 and ONNX Runtime's 805-887 in the same minutes. On one
// thread these loops took 459-630 against oneDNN's 619-634, so one thread stays on oneDNN (below
// ONNX Runtime's 669-830 there: a step streams the 1 MB kernel from beyond the core's cache).
#include "kernels/lstm_one.hpp"

#include <omp.h>

#include <algorithm>
#include <vector>

#include "kernels/elementwise.hpp"  // exp
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

bool has_avx512() {
  static const bool yes = __builtin_cpu_supports("x86-64-v4");
  return yes;
}
#endif

// z = 1 / (1 + e^-z) over n values, e^ by kernels::exp.
void sigmoid_in_place(float* z, float* scratch, int64_t n) {
  for (int64_t j = 0; j < n; ++j) scratch[j] = -z[j];
  exp(scratch, scratch, n);
  for (int64_t j = 0; j < n; ++j) z[j] = 1.f / (1.f + scratch[j]);
}

// z = tanh z = 1 - 2 / (1 + e^2z) over n values (1 and -1 where e^2z overflows or vanishes).
void tanh_in_place(const float* z, float* out, float* scratch, int64_t n) {
  for (int64_t j = 0; j < n; ++j) scratch[j] = 2.f * z[j];
  exp(scratch, scratch, n);
  for (int64_t j = 0; j < n; ++j) out[j] = 1.f - 2.f / (1.f + scratch[j]);
}

}  // namespace

bool lstm_one_applies(const RnnGeometry& g) {
#ifdef LAMINA_LSTM_ONE
  // On one core oneDNN's primitive is as fast or faster (see above): this is for several.
  return has_avx512() && g.cell == RnnCellKind::lstm && g.n == 1 && g.t > 0 && g.u % kLanes == 0 &&
         g.u >= 2 * kMinUnitsPerCore && !omp_in_parallel() && omp_get_max_threads() >= 2;
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
  std::vector<float> h(static_cast<size_t>(2 * u));  // this step's output and the next's
  std::copy_n(h0, u, h.data());
  const int team = static_cast<int>(std::min<int64_t>(u / kMinUnitsPerCore, omp_get_max_threads()));
#pragma omp parallel num_threads(team)
  {
    const int64_t k = omp_get_thread_num(), nk = omp_get_num_threads();
    const int64_t blocks = u / kLanes;  // units in whole vectors, split over the cores
    const int64_t u0 = blocks * k / nk * kLanes, u1 = blocks * (k + 1) / nk * kLanes, own = u1 - u0;
    std::vector<float> z(static_cast<size_t>(4 * own)), c(c0 + u0, c0 + u1), scratch(static_cast<size_t>(own));
    // This core's columns of the recurrent kernel (its units in each gate) packed in panels of
    // kBlock columns (or kLanes for the rest), each panel's rows one after the other, so that a
    // pass of the product reads one sequential stream from this core's cache: char-lstm at batch
    // 1 on two threads, 910 samples/s against 741 read in place. (Packed every call: the weights
    // may have changed.)
    std::vector<float> packed(static_cast<size_t>(u * 4 * own));
    for (int q = 0; q < 4; ++q)
      for (int64_t j = 0; j < own;) {
        const int64_t cols = own - j >= kBlock ? kBlock : kLanes;
        float* panel = packed.data() + (q * own + j) * u;
        for (int64_t p = 0; p < u; ++p) std::copy_n(wh + p * width + q * u + u0 + j, cols, panel + p * cols);
        j += cols;
      }
    float* gate[4] = {z.data(), z.data() + own, z.data() + 2 * own, z.data() + 3 * own};  // i, f, c~, o (Keras)
    for (int64_t t = 0; t < t_steps; ++t) {
      const float* h_now = h.data() + (t % 2) * u;
      float* h_next = h.data() + ((t + 1) % 2) * u;
      for (int q = 0; q < 4; ++q) {
        std::copy_n(xw.data() + t * width + q * u + u0, own, gate[q]);
        for (int64_t j = 0; j < own;) {
          const int64_t cols = own - j >= kBlock ? kBlock : kLanes;
          const float* panel = packed.data() + (q * own + j) * u;
          if (cols == kBlock)
            gemv_block<8>(h_now, u, panel, cols, gate[q] + j);
          else
            gemv_block<1>(h_now, u, panel, cols, gate[q] + j);
          j += cols;
        }
      }
      sigmoid_in_place(gate[0], scratch.data(), own);
      sigmoid_in_place(gate[1], scratch.data(), own);
      tanh_in_place(gate[2], gate[2], scratch.data(), own);
      sigmoid_in_place(gate[3], scratch.data(), own);
      for (int64_t j = 0; j < own; ++j) {
        float& cell = c[static_cast<size_t>(j)];
        cell = gate[1][j] * cell + gate[0][j] * gate[2][j];
      }
      tanh_in_place(c.data(), h_next + u0, scratch.data(), own);
      for (int64_t j = 0; j < own; ++j) h_next[u0 + j] *= gate[3][j];
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
