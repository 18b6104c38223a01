// The input gradient of a convolution with few input channels (conv_narrow.hpp).
//
// oneDNN vectorizes this gradient over the input channels: LeNet's second convolution (C = 6,
// F = 16, 5x5, 14x14 -> 10x10) fills 6 of each vector's 16 lanes, and took 204 us of a 32-image
// share's 1040 us, the most of any primitive in LeNet's step. Here each dy pixel is spread
// over a row of the kernel at a time: in NHWC, the C x KW values of dx that one kernel row of
// one dy pixel reaches are contiguous, so for each of the KH rows
//     dx[y + ky, x .. x + KW - 1, :] += sum over f of dy[y, x, f] w[ky, :, :, f]
// is one vector sum of F products over C x KW lanes (30 of 32 for LeNet): 16,000 vector
// multiply-adds per LeNet image against oneDNN's 40,000. Four neighbouring pixels' sums overlap
// in dx (each starts C lanes after the one before); they are shifted into one span of
// C (KW + 3) lanes in registers and added into dx with one load and store per vector, as a
// load of dx right after an overlapping store would wait for it.
//
// Measured on one Zen 5 core, LeNet's 32-image share: 92 us against oneDNN's 203 (min of 200).
// LeNet's epoch on 2 bound threads, 4 alternating runs (min / median): 0.987 / 1.025 s against
// 1.068 / 1.102.
#include "kernels/conv_narrow.hpp"

#include <algorithm>
#include <cstdint>
#include <vector>

#if defined(__x86_64__) && defined(__GNUC__)
#include <immintrin.h>
#define LAMINA_NARROW_CONV 1
#endif

namespace lamina::kernels {

namespace {

// A kernel row of a (C, KW) narrow enough: its C x KW values fit in two vectors.
constexpr int64_t kLanes = 16, kRowLanes = 2 * kLanes;
constexpr int64_t kPixels = 4;  // dy pixels a step: 8 accumulators, 2 weight vectors, 4 broadcasts

#ifdef LAMINA_NARROW_CONV
#define LAMINA_AVX512 __attribute__((target("arch=x86-64-v4")))

// How P neighbouring dy pixels' row sums (each C x KW lanes in two vectors, pixel p's starting
// C p lanes after the first's) add up into kVectors vectors over their span in dx.
template <int C, int KW, int P>
struct Spread {
  static constexpr int kRow = C * KW, kSpan = C * (KW + P - 1);
  static constexpr int kVectors = (kSpan + kLanes - 1) / kLanes;
  struct Table {
    int index[P][kVectors][kLanes];  // lane l of vector v: pixel p's lane 16 v + l - C p
    unsigned mask[P][kVectors];      // the lanes where that is one of its kRow values
  };
  static constexpr Table table = [] {
    Table t{};
    for (int p = 0; p < P; ++p)
      for (int v = 0; v < kVectors; ++v)
        for (int l = 0; l < kLanes; ++l) {
          const int from = static_cast<int>(kLanes) * v + l - C * p;
          if (from < 0 || from >= kRow) continue;
          t.index[p][v][l] = from;
          t.mask[p][v] |= 1u << l;
        }
    return t;
  }();
};

// dy pixels (y, x0 .. x0 + P - 1) of one image, `dy` at the first's F values (the others F
// apart), `dx` at dx[y, x0, 0], dx rows `row` floats apart; wt as prepared by narrow_backward_data.
template <int C, int KW, int P>
LAMINA_AVX512 void spread_pixels(const float* __restrict wt, int64_t kh, int64_t f, const float* __restrict dy,
                                 float* __restrict dx, int64_t row) {
  using S = Spread<C, KW, P>;
  for (int64_t ky = 0; ky < kh; ++ky) {
    __m512 acc[P][2];
#pragma GCC unroll 4
    for (int p = 0; p < P; ++p) acc[p][0] = acc[p][1] = _mm512_setzero_ps();
    const float* w = wt + ky * f * kRowLanes;
    for (int64_t k = 0; k < f; ++k) {
      const __m512 w0 = _mm512_loadu_ps(w + k * kRowLanes), w1 = _mm512_loadu_ps(w + k * kRowLanes + kLanes);
#pragma GCC unroll 4
      for (int p = 0; p < P; ++p) {
        const __m512 b = _mm512_set1_ps(dy[p * f + k]);
        acc[p][0] = _mm512_fmadd_ps(w0, b, acc[p][0]);
        acc[p][1] = _mm512_fmadd_ps(w1, b, acc[p][1]);
      }
    }
    float* out = dx + ky * row;
#pragma GCC unroll 4
    for (int v = 0; v < S::kVectors; ++v) {
      __m512 sum = _mm512_setzero_ps();
#pragma GCC unroll 4
      for (int p = 0; p < P; ++p) {
        const unsigned mask = S::table.mask[p][v];
        if (mask == 0) continue;
        const __m512i index = _mm512_loadu_si512(S::table.index[p][v]);
        sum =
            _mm512_add_ps(sum, _mm512_maskz_permutex2var_ps(static_cast<__mmask16>(mask), acc[p][0], index, acc[p][1]));
      }
      const int64_t lanes = std::min<int64_t>(kLanes, S::kSpan - kLanes * v);
      const auto m = static_cast<__mmask16>((1u << lanes) - 1);
      _mm512_mask_storeu_ps(out + kLanes * v, m, _mm512_add_ps(_mm512_maskz_loadu_ps(m, out + kLanes * v), sum));
    }
  }
}

template <int C, int KW>
LAMINA_AVX512 void spread_images(const Geometry2d& g, const float* wt, const float* dy, float* dx, int64_t n0,
                                 int64_t n1) {
  const int64_t row = g.w * C;
  for (int64_t n = n0; n < n1; ++n)
    for (int64_t y = 0; y < g.oh; ++y)
      for (int64_t x0 = 0; x0 < g.ow; x0 += kPixels) {
        const float* d = dy + ((n * g.oh + y) * g.ow + x0) * g.f;
        float* o = dx + ((n * g.h + y) * g.w + x0) * C;
        switch (std::min(kPixels, g.ow - x0)) {
          case 4:
            spread_pixels<C, KW, 4>(wt, g.kh, g.f, d, o, row);
            break;
          case 3:
            spread_pixels<C, KW, 3>(wt, g.kh, g.f, d, o, row);
            break;
          case 2:
            spread_pixels<C, KW, 2>(wt, g.kh, g.f, d, o, row);
            break;
          default:
            spread_pixels<C, KW, 1>(wt, g.kh, g.f, d, o, row);
            break;
        }
      }
}

using SpreadFn = void (*)(const Geometry2d&, const float*, const float*, float*, int64_t, int64_t);

SpreadFn spread_for(const Geometry2d& g) {
  if (g.c == 6 && g.kw == 5) return spread_images<6, 5>;
  return nullptr;
}

bool has_avx512() {
  static const bool yes = __builtin_cpu_supports("x86-64-v4");
  return yes;
}
#endif

}  // namespace

bool narrow_backward_data_applies(const Geometry2d& g) {
#ifdef LAMINA_NARROW_CONV
  return has_avx512() && g.sh == 1 && g.sw == 1 && g.dh == 1 && g.dw == 1 && g.pad_top == 0 && g.pad_bottom == 0 &&
         g.pad_left == 0 && g.pad_right == 0 && g.oh == g.h - g.kh + 1 && g.ow == g.w - g.kw + 1 && g.f > 0 &&
         spread_for(g) != nullptr;
#else
  (void)g;
  return false;
#endif
}

void narrow_backward_data(const Geometry2d& g, const float* dy, const float* w, float* dx, bool accumulate, int64_t n0,
                          int64_t n1) {
#ifdef LAMINA_NARROW_CONV
  const int64_t image = g.h * g.w * g.c;
  if (!accumulate) std::fill(dx + n0 * image, dx + n1 * image, 0.f);
  // wt[ky][f][kx * C + c] = w[ky][kx][c][f], each (ky, f) zero-padded to two vectors.
  thread_local std::vector<float> wt;
  wt.assign(static_cast<size_t>(g.kh * g.f * kRowLanes), 0.f);
  for (int64_t ky = 0; ky < g.kh; ++ky)
    for (int64_t kx = 0; kx < g.kw; ++kx)
      for (int64_t c = 0; c < g.c; ++c)
        for (int64_t f = 0; f < g.f; ++f)
          wt[static_cast<size_t>((ky * g.f + f) * kRowLanes + kx * g.c + c)] =
              w[((ky * g.kw + kx) * g.c + c) * g.f + f];
  spread_for(g)(g, wt.data(), dy, dx, n0, n1);
#else
  (void)g, (void)dy, (void)w, (void)dx, (void)accumulate, (void)n0, (void)n1;
#endif
}

}  // namespace lamina::kernels
