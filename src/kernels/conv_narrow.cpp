// Convolutions whose few channels waste oneDNN's vector lanes, in our own AVX-512 loops
// (conv_narrow.hpp): the input gradient of one with few input channels, and the forward and
// kernel gradient of one with a single input channel. Both are LeNet's.
//
// The input gradient. oneDNN vectorizes this gradient over the input channels: LeNet's second convolution (C = 6,
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
#include <numeric>
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
// Compiled for AVX-512 whatever the build's target (chosen at run time, has_avx512), as the
// whole file is in a build for a CPU with it (-march=native here, where GCC refuses to inline
// the intrinsics, built for that target, into functions whose target lacks some of its
// features). Tuned for an AVX-512 CPU in both: -march=native on this Zen 5 is znver3 to GCC 12,
// whose tuning made the input gradient's loops twice as slow.
#ifdef __AVX512F__
#define LAMINA_AVX512 __attribute__((target("tune=icelake-server")))
#else
#define LAMINA_AVX512 __attribute__((target("arch=x86-64-v4,tune=icelake-server")))
#endif

// How P neighbouring dy pixels' row sums (each C x KW lanes in two vectors, pixel p's starting
// C p lanes after the first's) add up into kVectors vectors over their span in dx.
template <int C, int KW, int P>
struct Spread {
  static constexpr int kRow = C * KW, kSpan = C * (KW + P - 1);
  static constexpr int kVectors = (kSpan + kLanes - 1) / kLanes;
  static_assert(kRow <= kRowLanes, "a kernel row's C x KW values must fit the two vectors of a row sum");
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

// --- One input channel ------------------------------------------------------------------------
//
// A first layer on grey images, vectorized over 16 neighbouring output pixels of one filter:
// tap (ky, kx) adds w[ky, kx, f] times the 16 input pixels from (i + ky, j + kx) of the padded
// image to filter f's vector. No lane is wasted on the channels (oneDNN's kernels fill 6 of 16
// lanes with LeNet's 6 filters, and wrote 16-lane blocks that cost another pass to bring back to
// NHWC). The image is padded once per image into KW copies, copy kx shifted by kx pixels, so that
// every load is a whole aligned vector. The 16 pixels x F filters of a block go to and from NHWC
// through one permute per filter and vector (F vectors of 16 pixels <-> F vectors of NHWC).
//
// Measured on one Zen 5 core, LeNet's first convolution on a 32-image share (min of 300):
// forward with relu 69 us against 135 (oneDNN and the pass that brings its 16-lane channel
// blocks back to NHWC), kernel and bias gradients 80 us against 140 (oneDNN and the copy of dy
// into channel blocks). LeNet's epoch on 2 bound threads, 4 alternating runs (min / median):
// 0.744 / 0.759 s against 0.861 / 0.891 with oneDNN for this convolution.

// The padded image's layout: `rows` rows of `row` floats (whole vectors of output pixels), KW
// copies `plane` floats apart.
struct Padded {
  int64_t row = 0, rows = 0, plane = 0, blocks = 0;
  explicit Padded(const Geometry2d& g)
      : row((g.ow + kLanes - 1) / kLanes * kLanes), rows(g.oh + g.kh - 1), plane(rows * row), blocks(row / kLanes) {}
};

// Lanes [0, n) of a vector, n clamped to [0, 16].
LAMINA_AVX512 inline __mmask16 first_lanes(int64_t n) {
  return n >= kLanes ? static_cast<__mmask16>(0xffff) : n <= 0 ? 0 : static_cast<__mmask16>((1u << n) - 1);
}

// Copy kx, padded row r, lane j: image pixel (r - pad_top, j + kx - pad_left), 0 outside the
// image and for j >= OW (those lanes then add nothing to a kernel gradient).
LAMINA_AVX512 void pad_image(const Geometry2d& g, const Padded& p, const float* x, float* xp) {
  for (int64_t kx = 0; kx < g.kw; ++kx)
    for (int64_t b = 0; b < p.blocks; ++b) {
      const int64_t col = b * kLanes + kx - g.pad_left;  // the image column of lane 0
      const auto inside =
          static_cast<__mmask16>(first_lanes(g.w - col) & ~first_lanes(-col) & first_lanes(g.ow - b * kLanes));
      float* out = xp + kx * p.plane + b * kLanes;
      for (int64_t r = 0; r < p.rows; ++r) {
        const int64_t ir = r - g.pad_top;
        const __m512 v = ir >= 0 && ir < g.h ? _mm512_maskz_loadu_ps(inside, x + ir * g.w + col)  // masked lanes unread
                                             : _mm512_setzero_ps();
        _mm512_store_ps(out + r * p.row, v);
      }
    }
}

// The permutes between F vectors of 16 pixels (one per filter) and the 16 F floats of those
// pixels in NHWC. To NHWC, vector o takes lane l from filter (16 o + l) % F's lane
// (16 o + l) / F; from NHWC, filter f's lane l is NHWC vector (F l + f) / 16's lane (F l + f) % 16.
template <int F>
struct Interleave {
  struct Table {
    int to_index[F][kLanes];
    uint16_t to_mask[F][F];  // [o][f]: the lanes of NHWC vector o that filter f fills
    int from_index[F][kLanes];
    uint16_t from_mask[F][F];  // [f][o]: the lanes of filter f that NHWC vector o fills
  };
  static constexpr Table table = [] {
    Table t{};
    for (int o = 0; o < F; ++o)
      for (int l = 0; l < kLanes; ++l) {
        const int at = static_cast<int>(kLanes) * o + l;
        t.to_index[o][l] = at / F;
        t.to_mask[o][at % F] = static_cast<uint16_t>(t.to_mask[o][at % F] | (1u << l));
      }
    for (int f = 0; f < F; ++f)
      for (int l = 0; l < kLanes; ++l) {
        const int at = F * l + f;
        t.from_index[f][l] = at % static_cast<int>(kLanes);
        t.from_mask[f][at / kLanes] = static_cast<uint16_t>(t.from_mask[f][at / kLanes] | (1u << l));
      }
    return t;
  }();

  // The first `floats` floats of the NHWC block of pixels v[0..F).
  LAMINA_AVX512 static void store(const __m512 (&v)[F], float* out, int64_t floats) {
#pragma GCC unroll 8
    for (int o = 0; o < F; ++o) {
      const __m512i index = _mm512_loadu_si512(table.to_index[o]);
      __m512 r = _mm512_setzero_ps();
#pragma GCC unroll 8
      for (int f = 0; f < F; ++f) r = _mm512_mask_permutexvar_ps(r, table.to_mask[o][f], index, v[f]);
      _mm512_mask_storeu_ps(out + o * kLanes, first_lanes(floats - o * kLanes), r);
    }
  }
  // v[f] = the block's filter f from the NHWC floats at `in`, `floats` of them (the rest 0).
  LAMINA_AVX512 static void load(const float* in, int64_t floats, __m512 (&v)[F]) {
    __m512 nhwc[F];
#pragma GCC unroll 8
    for (int o = 0; o < F; ++o) nhwc[o] = _mm512_maskz_loadu_ps(first_lanes(floats - o * kLanes), in + o * kLanes);
#pragma GCC unroll 8
    for (int f = 0; f < F; ++f) {
      const __m512i index = _mm512_loadu_si512(table.from_index[f]);
      __m512 r = _mm512_setzero_ps();
#pragma GCC unroll 8
      for (int o = 0; o < F; ++o) r = _mm512_mask_permutexvar_ps(r, table.from_mask[f][o], index, nhwc[o]);
      v[f] = r;
    }
  }
};

// Output rows [i, i + R) of one image, pixel block b: bias + the taps, relu'd (keeping NaN) if
// asked, stored in NHWC.
template <int F, int KW, int R>
LAMINA_AVX512 void forward_block(const Geometry2d& g, const Padded& p, const float* __restrict xp,
                                 const float* __restrict w, const float* bias, bool relu, int64_t i, int64_t b,
                                 float* __restrict y) {
  __m512 acc[R][F];
#pragma GCC unroll 8
  for (int f = 0; f < F; ++f) {
    const __m512 start = _mm512_set1_ps(bias ? bias[f] : 0.f);
#pragma GCC unroll 4
    for (int r = 0; r < R; ++r) acc[r][f] = start;
  }
  for (int64_t ky = 0; ky < g.kh; ++ky)
#pragma GCC unroll 8
    for (int kx = 0; kx < KW; ++kx) {
      const float* tap = w + (ky * KW + kx) * F;
      const float* src = xp + kx * p.plane + (i + ky) * p.row + b * kLanes;
#pragma GCC unroll 4
      for (int r = 0; r < R; ++r) {
        const __m512 x = _mm512_load_ps(src + r * p.row);
#pragma GCC unroll 8
        for (int f = 0; f < F; ++f) acc[r][f] = _mm512_fmadd_ps(x, _mm512_set1_ps(tap[f]), acc[r][f]);
      }
    }
  const __m512 zero = _mm512_setzero_ps();
  const int64_t floats = std::min(kLanes, g.ow - b * kLanes) * F;
#pragma GCC unroll 4
  for (int r = 0; r < R; ++r) {
    if (relu)
#pragma GCC unroll 8
      for (int f = 0; f < F; ++f)
        acc[r][f] = _mm512_mask_mov_ps(acc[r][f], _mm512_cmp_ps_mask(acc[r][f], zero, _CMP_LT_OQ), zero);
    Interleave<F>::store(acc[r], y + ((i + r) * g.ow + b * kLanes) * F, floats);
  }
}

template <int F, int KW>
LAMINA_AVX512 void forward_image(const Geometry2d& g, const Padded& p, const float* xp, const float* w,
                                 const float* bias, bool relu, float* y) {
  for (int64_t i = 0; i < g.oh;) {
    const int64_t rows = g.oh - i >= 2 ? 2 : 1;
    for (int64_t b = 0; b < p.blocks; ++b) {
      if (rows == 2)
        forward_block<F, KW, 2>(g, p, xp, w, bias, relu, i, b, y);
      else
        forward_block<F, KW, 1>(g, p, xp, w, bias, relu, i, b, y);
    }
    i += rows;
  }
}

// Taps [kx0, kx0 + G) of kernel row ky over one image: part[(ky KW + kx) F + f] (a vector of
// sums over pixels each) += the padded image's vectors times dy's, dyp holding dy by filter
// (F planes of OH rows of p.row floats, 0 past OW).
template <int F, int KW, int G>
LAMINA_AVX512 void weights_taps(const Geometry2d& g, const Padded& p, const float* __restrict xp,
                                const float* __restrict dyp, int64_t ky, int kx0, float* __restrict part) {
  __m512 acc[G][F];
#pragma GCC unroll 4
  for (int k = 0; k < G; ++k)
#pragma GCC unroll 8
    for (int f = 0; f < F; ++f) acc[k][f] = _mm512_loadu_ps(part + ((ky * KW + kx0 + k) * F + f) * kLanes);
  for (int64_t i = 0; i < g.oh; ++i)
    for (int64_t b = 0; b < p.blocks; ++b) {
      __m512 d[F];
#pragma GCC unroll 8
      for (int f = 0; f < F; ++f) d[f] = _mm512_load_ps(dyp + (f * g.oh + i) * p.row + b * kLanes);
#pragma GCC unroll 4
      for (int k = 0; k < G; ++k) {
        const __m512 x = _mm512_load_ps(xp + (kx0 + k) * p.plane + (i + ky) * p.row + b * kLanes);
#pragma GCC unroll 8
        for (int f = 0; f < F; ++f) acc[k][f] = _mm512_fmadd_ps(x, d[f], acc[k][f]);
      }
    }
#pragma GCC unroll 4
  for (int k = 0; k < G; ++k)
#pragma GCC unroll 8
    for (int f = 0; f < F; ++f) _mm512_storeu_ps(part + ((ky * KW + kx0 + k) * F + f) * kLanes, acc[k][f]);
}

// One image's kernel and bias gradients added into part (KH KW F vectors) and bpart (F vectors).
template <int F, int KW>
LAMINA_AVX512 void weights_image(const Geometry2d& g, const Padded& p, const float* xp, const float* dy, float* dyp,
                                 float* part, float* bpart) {
  __m512 bias[F];
#pragma GCC unroll 8
  for (int f = 0; f < F; ++f) bias[f] = _mm512_loadu_ps(bpart + f * kLanes);
  for (int64_t i = 0; i < g.oh; ++i)
    for (int64_t b = 0; b < p.blocks; ++b) {
      __m512 d[F];
      Interleave<F>::load(dy + (i * g.ow + b * kLanes) * F, std::min(kLanes, g.ow - b * kLanes) * F, d);
#pragma GCC unroll 8
      for (int f = 0; f < F; ++f) {
        _mm512_store_ps(dyp + (f * g.oh + i) * p.row + b * kLanes, d[f]);
        bias[f] = _mm512_add_ps(bias[f], d[f]);
      }
    }
#pragma GCC unroll 8
  for (int f = 0; f < F; ++f) _mm512_storeu_ps(bpart + f * kLanes, bias[f]);
  // Up to 3 taps a pass: 3 F accumulators, F dy vectors and the image's.
  for (int64_t ky = 0; ky < g.kh; ++ky)
    for (int kx = 0; kx < KW; kx += 3) {
      if (KW - kx >= 3)
        weights_taps<F, KW, 3>(g, p, xp, dyp, ky, kx, part);
      else if (KW - kx == 2)
        weights_taps<F, KW, 2>(g, p, xp, dyp, ky, kx, part);
      else
        weights_taps<F, KW, 1>(g, p, xp, dyp, ky, kx, part);
    }
}

using SpreadFn = void (*)(const Geometry2d&, const float*, const float*, float*, int64_t, int64_t);

SpreadFn spread_for(const Geometry2d& g) {
  if (g.c == 6 && g.kw == 5) return spread_images<6, 5>;
  return nullptr;
}

struct OneChannelKernels {
  void (*forward)(const Geometry2d&, const Padded&, const float*, const float*, const float*, bool, float*);
  void (*weights)(const Geometry2d&, const Padded&, const float*, const float*, float*, float*, float*);
};

template <int F, int KW>
constexpr OneChannelKernels kOneChannel{forward_image<F, KW>, weights_image<F, KW>};

const OneChannelKernels* one_channel_for(const Geometry2d& g) {
  if (g.f == 6 && g.kw == 5) return &kOneChannel<6, 5>;
  return nullptr;
}

// A thread's scratch, aligned to a vector.
float* scratch(size_t floats) {
  thread_local std::vector<float> buffer;
  buffer.resize(floats + kLanes);
  const auto misaligned = reinterpret_cast<uintptr_t>(buffer.data()) / sizeof(float) % kLanes;
  return buffer.data() + (kLanes - misaligned) % kLanes;
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

bool one_channel_applies(const Geometry2d& g) {
#ifdef LAMINA_NARROW_CONV
  return has_avx512() && g.c == 1 && g.sh == 1 && g.sw == 1 && g.dh == 1 && g.dw == 1 &&
         g.oh == g.h + g.pad_top + g.pad_bottom - g.kh + 1 && g.ow == g.w + g.pad_left + g.pad_right - g.kw + 1 &&
         g.oh > 0 && g.ow > 0 && one_channel_for(g) != nullptr;
#else
  (void)g;
  return false;
#endif
}

void one_channel_forward(const Geometry2d& g, const float* x, const float* w, const float* bias, float* y, bool relu,
                         int64_t n0, int64_t n1) {
#ifdef LAMINA_NARROW_CONV
  const OneChannelKernels& k = *one_channel_for(g);
  const Padded p(g);
  float* xp = scratch(static_cast<size_t>(g.kw * p.plane));
  for (int64_t n = n0; n < n1; ++n) {
    pad_image(g, p, x + n * g.h * g.w, xp);
    k.forward(g, p, xp, w, bias, relu, y + n * g.oh * g.ow * g.f);
  }
#else
  (void)g, (void)x, (void)w, (void)bias, (void)y, (void)relu, (void)n0, (void)n1;
#endif
}

void one_channel_backward_weights(const Geometry2d& g, const float* x, const float* dy, float* dw, float* dbias,
                                  int64_t n0, int64_t n1) {
#ifdef LAMINA_NARROW_CONV
  const OneChannelKernels& k = *one_channel_for(g);
  const Padded p(g);
  const int64_t taps = g.kh * g.kw * g.f;
  float* xp = scratch(static_cast<size_t>(g.kw * p.plane + g.f * g.oh * p.row + (taps + g.f) * kLanes));
  float* dyp = xp + g.kw * p.plane;
  float* part = dyp + g.f * g.oh * p.row;  // a vector of sums per tap and filter, then per filter
  float* bpart = part + taps * kLanes;
  std::fill(part, part + (taps + g.f) * kLanes, 0.f);
  for (int64_t n = n0; n < n1; ++n) {
    pad_image(g, p, x + n * g.h * g.w, xp);
    k.weights(g, p, xp, dy + n * g.oh * g.ow * g.f, dyp, part, bpart);
  }
  const auto lanes_sum = [](const float* v) { return std::accumulate(v, v + kLanes, 0.f); };
  for (int64_t t = 0; t < taps; ++t) dw[t] = lanes_sum(part + t * kLanes);
  if (dbias)
    for (int64_t f = 0; f < g.f; ++f) dbias[f] = lanes_sum(bpart + f * kLanes);
#else
  (void)g, (void)x, (void)dy, (void)dw, (void)dbias, (void)n0, (void)n1;
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
