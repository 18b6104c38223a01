// Small GEMMs in our own loops. oneDNN costs about 0.3 ms to create each matmul primitive (its
// JIT) and 5 ms for the first one in a process: the course's digits MLP trains 10 epochs in
// about 0.5 ms each once warm, but its first epoch took 5.5 ms, nearly all of it creating 12
// primitives. Below kernels::kSmallMatmulFlops these loops run instead: nothing to create, and
// on shapes this small a register-tiled loop is as fast as oneDNN's.
//
// The tile: C[MR rows][NR = 2 vectors] accumulated in registers over k; op(B) read in place in
// panels of NR columns (copied, zero-padded, when transposed or when the last panel is partial),
// op(A) read in place (a broadcast per row and k). GCC vectors: 16 lanes on a CPU with AVX-512
// (chosen when the library loads), else the build's width (8 for the default x86-64-v3).
#include <algorithm>
#include <cmath>
#include <cstring>
#include <memory>
#include <stdexcept>
#include <type_traits>
#include <vector>

#include "allocator.hpp"
#include "kernels/elementwise.hpp"  // kTargetVectorBytes
#include "kernels/matmul.hpp"

namespace lamina::kernels {

namespace {

// The kernel for vectors of kBytes. Everything is forced inline into the entry points below, so
// that each is compiled for its own target: the AVX-512 entry's code uses 16-lane vectors even
// in an x86-64-v3 build (a function left out of line would be compiled for the build's target,
// where a 64-byte vector is lowered piece by piece).
template <int kBytes>
struct Kernel {
  static constexpr int64_t kLanes = kBytes / 4;
  static constexpr int64_t kNR = 2 * kLanes;  // columns per tile
  static constexpr int kMR = 6;               // rows per tile: 12 accumulators + 2 B vectors + a broadcast
  // Rows per tile of a one-vector panel (N <= kLanes, as the 10 classes of a last layer): six
  // rows gave six chains of multiply-adds, fewer than two FMA units with a latency of four cycles
  // keep busy.
  static constexpr int kMR1 = 8;
  using Vec = VecOf<kBytes>;
  static_assert(sizeof(Vec) == kBytes);

  // By reference: a function returning an AVX-512 vector in a build without AVX-512 would have
  // another ABI (GCC's -Wpsabi), even inlined.
  LAMINA_INLINE static void load(Vec& v, const float* p) { std::memcpy(&v, p, sizeof v); }
  LAMINA_INLINE static void store(float* p, const Vec& v) { std::memcpy(p, &v, sizeof v); }

  // op(B)'s columns [j0, j0 + kNR), K rows `stride` apart: row p at data + p * stride, or at
  // data + rows[p] * stride when rows is set.
  struct Panel {
    const float* data;
    int64_t stride;
    const int64_t* rows = nullptr;
  };

  // acc[r][v] = sum over p of op(A)[i0 + r][p] * panel row p's vector v, for r < kRows, v < kVecs
  // (one vector for a last panel of at most kLanes columns). kPicked: the panel's rows are
  // picked (panel.rows). kPickA: op(A) is picked too, by `picks` (Gemm::pick_a): its column p is
  // its column picks[p] (A not transposed: the K that B's rows were picked by, the panel's own
  // when it was read in place), or (transposed) its row i0 + r is its row picks[i0 + r] (C's).
  template <int kRows, int kVecs, bool kTransA, bool kPicked, bool kPickA>
  LAMINA_INLINE static void tile(const float* a, int64_t lda, const int64_t* picks, int64_t k, int64_t i0,
                                 Panel panel, Vec (&acc)[kMR1][2]) {
    static_assert(!(kPickA && kTransA && kPicked), "a transposed A is picked by C's rows, B's are then whole");
    Vec c[kRows][kVecs];
    for (int r = 0; r < kRows; ++r)
      for (int v = 0; v < kVecs; ++v) c[r][v] = Vec{};
    int64_t a_col[kRows];  // transposed A: where op(A)'s rows are, as columns of the stored A
    for (int r = 0; r < kRows; ++r) a_col[r] = kTransA && kPickA ? picks[i0 + r] : i0 + r;
    for (int64_t p = 0; p < k; ++p) {
      const int64_t kp = kPicked ? panel.rows[p] : p;
      const float* row = panel.data + kp * panel.stride;
      // op(A)'s column: the panel's picked row (the same index) or, from a copied panel, picks'.
      const int64_t ka = !kPickA || kTransA ? p : kPicked ? kp : picks[p];
      Vec b[kVecs];
      for (int v = 0; v < kVecs; ++v) load(b[v], row + v * kLanes);
      for (int r = 0; r < kRows; ++r) {
        const float av = kTransA ? a[p * lda + a_col[r]] : a[(i0 + r) * lda + ka];
        for (int v = 0; v < kVecs; ++v) c[r][v] += av * b[v];
      }
    }
    for (int r = 0; r < kRows; ++r)
      for (int v = 0; v < kVecs; ++v) acc[r][v] = c[r][v];
  }

  template <int kVecs, bool kTransA, bool kPicked, bool kPickA>
  LAMINA_INLINE static void tile_rows(int rows, const float* a, int64_t lda, const int64_t* picks, int64_t k,
                                      int64_t i0, Panel panel, Vec (&acc)[kMR1][2]) {
    if constexpr (kVecs == 1)
      switch (rows) {
        case 8: return tile<8, 1, kTransA, kPicked, kPickA>(a, lda, picks, k, i0, panel, acc);
        case 7: return tile<7, 1, kTransA, kPicked, kPickA>(a, lda, picks, k, i0, panel, acc);
        default: break;
      }
    switch (rows) {
      case 6: return tile<6, kVecs, kTransA, kPicked, kPickA>(a, lda, picks, k, i0, panel, acc);
      case 5: return tile<5, kVecs, kTransA, kPicked, kPickA>(a, lda, picks, k, i0, panel, acc);
      case 4: return tile<4, kVecs, kTransA, kPicked, kPickA>(a, lda, picks, k, i0, panel, acc);
      case 3: return tile<3, kVecs, kTransA, kPicked, kPickA>(a, lda, picks, k, i0, panel, acc);
      case 2: return tile<2, kVecs, kTransA, kPicked, kPickA>(a, lda, picks, k, i0, panel, acc);
      default: return tile<1, kVecs, kTransA, kPicked, kPickA>(a, lda, picks, k, i0, panel, acc);
    }
  }

  // a_picks: what op(A) is picked by (Gemm::pick_a: b_rows, or c_rows for a transposed A), or null.
  template <int kVecs, bool kTransA>
  LAMINA_INLINE static void tile_of(int rows, const float* a, int64_t lda, const int64_t* a_picks, int64_t k,
                                    int64_t i0, Panel panel, Vec (&acc)[kMR1][2]) {
    if constexpr (!kTransA)  // a transposed A is picked by C's rows, and B's are then whole
      if (a_picks && panel.rows) return tile_rows<kVecs, false, true, true>(rows, a, lda, a_picks, k, i0, panel, acc);
    if (a_picks) return tile_rows<kVecs, kTransA, false, true>(rows, a, lda, a_picks, k, i0, panel, acc);
    if (panel.rows) return tile_rows<kVecs, kTransA, true, false>(rows, a, lda, nullptr, k, i0, panel, acc);
    tile_rows<kVecs, kTransA, false, false>(rows, a, lda, nullptr, k, i0, panel, acc);
  }

  LAMINA_INLINE static float activate(float x, Eltwise act) {
    switch (act) {
      case Eltwise::none: return x;
      case Eltwise::relu: return x < 0.f ? 0.f : x;  // NaN stays NaN, as torch.relu
      case Eltwise::sigmoid: return 1.f / (1.f + std::exp(-x));
      case Eltwise::tanh: return std::tanh(x);
    }
    return x;
  }

  // A panel of op(B) for columns [j0, j0 + cols): read in place when B is stored (K, N) and the
  // panel is whole; otherwise copied into `scratch`, kNR wide (kLanes when cols fit one vector),
  // zero past N. B's rows are ldb apart.
  LAMINA_INLINE static Panel panel(const float* b, int64_t ldb, const int64_t* b_rows, int64_t k, int64_t j0,
                                   int64_t cols, bool trans_b, float* scratch) {
    if (!trans_b && cols == kNR) return {b + j0, ldb, b_rows};
    const int64_t width = cols > kLanes ? kNR : kLanes;
    float* out = scratch;
    for (int64_t i = 0; i < k * width; ++i) out[i] = 0.f;
    if (trans_b) {  // B stored (N, K): column j of op(B) is row j of B
      for (int64_t jj = 0; jj < cols; ++jj)
        for (int64_t p = 0; p < k; ++p) out[p * width + jj] = b[(j0 + jj) * ldb + p];
    } else {
      for (int64_t p = 0; p < k; ++p)
        std::memcpy(out + p * width, b + (b_rows ? b_rows[p] : p) * ldb + j0, sizeof(float) * cols);
    }
    return {out, width};
  }

  template <bool kTransA>
  LAMINA_INLINE static void run(const float* a, int64_t lda, bool pick_a, const float* b, int64_t ldb,
                                const int64_t* b_rows, float* c, int64_t ldc, const int64_t* c_rows, int64_t m,
                                int64_t k, int64_t n, bool trans_b, bool accumulate, const float* bias, Eltwise act,
                                float* scratch) {
    const int64_t* a_picks = !pick_a ? nullptr : kTransA ? c_rows : b_rows;
    for (int64_t j0 = 0; j0 < n; j0 += kNR) {
      const int64_t cols = n - j0 < kNR ? n - j0 : kNR;
      const Panel pb = panel(b, ldb, b_rows, k, j0, cols, trans_b, scratch);
      float bias_tile[kNR] = {};
      if (bias) std::memcpy(bias_tile, bias + j0, sizeof(float) * cols);
      const int64_t mr = cols > kLanes ? kMR : kMR1;
      for (int64_t i0 = 0; i0 < m; i0 += mr) {
        const int rows = static_cast<int>(m - i0 < mr ? m - i0 : mr);
        Vec acc[kMR1][2];  // the tile writes its rows' kVecs vectors
        if (cols > kLanes) {
          tile_of<2, kTransA>(rows, a, lda, a_picks, k, i0, pb, acc);
        } else {
          tile_of<1, kTransA>(rows, a, lda, a_picks, k, i0, pb, acc);
        }
        if (act == Eltwise::none || act == Eltwise::relu) {  // in vectors; a partial panel through `part`
          Vec bias0, bias1;
          load(bias0, bias_tile), load(bias1, bias_tile + kLanes);
          for (int r = 0; r < rows; ++r) {
            float* row = c + (c_rows ? c_rows[i0 + r] : i0 + r) * ldc + j0;
            float part[kNR];
            float* out = cols == kNR ? row : part;
            if (accumulate && out == part) std::memcpy(part, row, sizeof(float) * cols);
            Vec v0 = acc[r][0] + bias0, v1 = cols > kLanes ? acc[r][1] + bias1 : Vec{};
            if (accumulate) {
              Vec old0, old1;
              load(old0, out), load(old1, out + kLanes);
              v0 += old0, v1 += old1;
            }
            if (act == Eltwise::relu) v0 = v0 < 0.f ? 0.f : v0, v1 = v1 < 0.f ? 0.f : v1;
            store(out, v0), store(out + kLanes, v1);
            if (out == part) std::memcpy(row, part, sizeof(float) * cols);
          }
          continue;
        }
        for (int r = 0; r < rows; ++r) {
          float out[kNR];
          std::memcpy(out, acc[r], cols > kLanes ? sizeof out : sizeof out / 2);
          float* row = c + (c_rows ? c_rows[i0 + r] : i0 + r) * ldc + j0;
          for (int64_t j = 0; j < cols; ++j) row[j] = activate(out[j] + bias_tile[j] + (accumulate ? row[j] : 0.f), act);
        }
      }
    }
  }

  LAMINA_INLINE static void matmul(const Gemm& g, float* scratch) {
    if (g.trans_a) {
      run<true>(g.a, g.lda, g.pick_a, g.b, g.ldb, g.b_rows, g.c, g.ldc, g.c_rows, g.m, g.k, g.n, g.trans_b,
                g.accumulate, g.bias, g.act, scratch);
    } else {
      run<false>(g.a, g.lda, g.pick_a, g.b, g.ldb, g.b_rows, g.c, g.ldc, g.c_rows, g.m, g.k, g.n, g.trans_b,
                 g.accumulate, g.bias, g.act, scratch);
    }
  }
};

// scratch: room for one packed panel, K x 32 floats (the widest kNR).
using MatmulFn = void (*)(const Gemm&, float*);

void matmul_build_target(const Gemm& g, float* scratch) { Kernel<kTargetVectorBytes>::matmul(g, scratch); }

// The AVX-512 build of the kernel, for CPUs that have it when the build targets less. GCC does
// not inline a function of another -march into this one unless it is always_inline, so the
// kernel calls no library helper (std::min, std::vector) in its loops. Tuned for an AVX-512
// CPU (any of them: icelake-server, skylake-avx512, sapphirerapids and znver3 gave the same):
// with GCC's generic tuning, products of 10 columns took 3.0 us against 2.2 (128x64x10).
#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__) && !defined(__AVX512F__)
__attribute__((target("arch=x86-64-v4,tune=icelake-server"))) void matmul_avx512(const Gemm& g, float* scratch) {
  Kernel<64>::matmul(g, scratch);
}
MatmulFn choose() { return __builtin_cpu_supports("x86-64-v4") ? matmul_avx512 : matmul_build_target; }
#else
MatmulFn choose() { return matmul_build_target; }
#endif

void run_with_scratch(MatmulFn fn, const Gemm& g) {
  if (g.b_rows && g.trans_b) throw std::logic_error("small_matmul: b_rows picks rows of a B stored (K, N), not trans_b");
  if (g.pick_a && !(g.trans_a ? g.c_rows && !g.b_rows : g.b_rows != nullptr))
    throw std::logic_error("small_matmul: pick_a picks op(A)'s columns with b_rows (A not transposed) or its rows "
                           "with c_rows (A transposed, without b_rows)");
  if (g.m == 0 || g.n == 0) return;
  // From the tensors' storage (its arena's pages are likely touched already: a new page of
  // malloc's costs a fault on first use).
  static thread_local std::shared_ptr<float[]> scratch;
  static thread_local int64_t capacity = 0;
  if (capacity < g.k * 32) {
    scratch = detail::allocate_storage(g.k * 32);
    capacity = g.k * 32;
  }
  fn(g, scratch.get());
}

// The operands stored whole: rows as long as the stored matrices are wide.
Gemm whole(const float* a, const float* b, float* c, int64_t m, int64_t k, int64_t n, bool trans_a, bool trans_b,
           bool accumulate, const float* bias, Eltwise act) {
  return {.a = a, .lda = trans_a ? m : k, .b = b, .ldb = trans_b ? k : n, .c = c, .ldc = n, .m = m, .k = k,
          .n = n, .trans_a = trans_a, .trans_b = trans_b, .accumulate = accumulate, .bias = bias, .act = act};
}

}  // namespace

void small_matmul(const Gemm& g) {
  static const MatmulFn fn = choose();
  run_with_scratch(fn, g);
}

void small_matmul(const float* a, const float* b, float* c, int64_t m, int64_t k, int64_t n, bool trans_a,
                  bool trans_b, bool accumulate, const float* bias, Eltwise act) {
  small_matmul(whole(a, b, c, m, k, n, trans_a, trans_b, accumulate, bias, act));
}

void small_matmul_build_target(const Gemm& g) { run_with_scratch(matmul_build_target, g); }

void small_matmul_build_target(const float* a, const float* b, float* c, int64_t m, int64_t k, int64_t n,
                               bool trans_a, bool trans_b, bool accumulate, const float* bias, Eltwise act) {
  small_matmul_build_target(whole(a, b, c, m, k, n, trans_a, trans_b, accumulate, bias, act));
}

}  // namespace lamina::kernels
