// C = op(A) op(B) (+ C): the one GEMM every dense layer uses. Large products run on a oneDNN
// matmul primitive, created once per shape and cached; small ones in our own register-tiled
// loops (small_matmul), which cost nothing to set up. kernels::ref is the naive loop that
// documents the math and checks both. Internal to the library.
#pragma once

#include <cstdint>

namespace lamina::kernels {

// An activation fused into the GEMM as a oneDNN post-op: C = act(A B + bias).
enum class Eltwise { none, relu, sigmoid, tanh };

// C (M, N) = op(A) (M, K) @ op(B) (K, N) [+ bias (N) on every row] [+ the old C], then act.
// op(A) = A stored (M, K) row-major, or with trans_a, A stored (K, M). Likewise B.
void matmul(const float* a, const float* b, float* c, int64_t m, int64_t k, int64_t n,
            bool trans_a = false, bool trans_b = false, bool accumulate = false,
            const float* bias = nullptr, Eltwise act = Eltwise::none);

// A product on submatrices: each operand is stored with its rows `ld` floats apart (a block of
// columns of a wider matrix), otherwise as matmul's arguments.
struct Gemm {
  const float* a = nullptr;
  int64_t lda = 0;
  const float* b = nullptr;
  int64_t ldb = 0;
  float* c = nullptr;
  int64_t ldc = 0;
  int64_t m = 0, k = 0, n = 0;
  bool trans_a = false, trans_b = false, accumulate = false;
  const float* bias = nullptr;
  Eltwise act = Eltwise::none;
  // Rows picked by index (small_matmul only): op(B)'s row p is B's stored row b_rows[p] (B
  // stored (K, N), not trans_b), and C's row i is its stored row c_rows[i]. Null: rows in order.
  // For a product over only some of the input's features (kernel rows).
  const int64_t* b_rows = nullptr;
  const int64_t* c_rows = nullptr;
  // The same picking for op(A), read in place (no packed copy): with b_rows and A not transposed,
  // op(A)'s column p is A's stored column b_rows[p]; with c_rows and A transposed, op(A)'s row i
  // is A's stored column c_rows[i]. lda and the stored A are then the whole matrix's.
  bool pick_a = false;
};
// In our own loops (small_matmul's), at any size: for callers that split one product's rows or
// columns over threads themselves.
void small_matmul(const Gemm& g);
void small_matmul_build_target(const Gemm& g);

// The two paths matmul chooses between (by FLOPs: kSmallMatmulFlops), for the tests.
void small_matmul(const float* a, const float* b, float* c, int64_t m, int64_t k, int64_t n, bool trans_a,
                  bool trans_b, bool accumulate, const float* bias, Eltwise act);
void onednn_matmul(const float* a, const float* b, float* c, int64_t m, int64_t k, int64_t n, bool trans_a,
                   bool trans_b, bool accumulate, const float* bias, Eltwise act);
// small_matmul's kernel for the build's own CPU level (x86-64-v3: AVX2), which small_matmul
// leaves for the AVX-512 one on a CPU that has it: the tests run it on every machine.
void small_matmul_build_target(const float* a, const float* b, float* c, int64_t m, int64_t k, int64_t n,
                               bool trans_a, bool trans_b, bool accumulate, const float* bias, Eltwise act);

namespace ref {
void matmul(const float* a, const float* b, float* c, int64_t m, int64_t k, int64_t n,
            bool trans_a = false, bool trans_b = false, bool accumulate = false,
            const float* bias = nullptr, Eltwise act = Eltwise::none);
}  // namespace ref

}  // namespace lamina::kernels
