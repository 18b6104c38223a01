// matmul: (M, K) @ (K, N) -> (M, N) on oneDNN. linear: act(x w + bias) in one primitive
// (Dense's forward; bias, sigmoid and tanh as oneDNN post-ops, relu as a pass of ours that
// keeps NaN). transpose: (M, N) -> (N, M).
// backward: dZ = dY act'(Y); dA (+)= dZ B^T, dB (+)= A^T dZ (straight into the gradient
// buffers), dbias (+)= sum_rows dZ.
// Batched matmul (..., M, K) @ (..., K, N): the batch dimensions broadcast; one 2-D GEMM per
// output matrix, or a single GEMM over all rows when b is one matrix. backward per matrix as above,
// adding into a matrix of A (or B) as often as the broadcast reuses it. 1-D operands are reshaped.
#include <algorithm>
#include <string>
#include <vector>

#include "kernels/matmul.hpp"
#include "lamina/autograd.hpp"
#include "lamina/ops.hpp"
#include "ops/op_helpers.hpp"

namespace lamina {

namespace {

void check_matmul(const char* op, const Tensor& a, const Tensor& b) {
  if (a.rank() != 2 || b.rank() != 2)
    throw ShapeError(std::string(op) + ": expects 2-D tensors (M, K) @ (K, N), got a " + a.shape().str() +
                     " and b " + b.shape().str());
  if (a.dim(1) != b.dim(0))
    throw ShapeError(std::string(op) + ": inner dimensions differ: a " + a.shape().str() + " @ b " +
                     b.shape().str() + " (a has K = " + std::to_string(a.dim(1)) + ", b has K = " +
                     std::to_string(b.dim(0)) + ")");
}

// dA (+)= dZ B^T; dB (+)= A^T dZ -- written straight into the gradient buffers.
void matmul_backward(BackwardContext& g, const float* dz, int64_t m, int64_t k, int64_t n) {
  if (g.needs(0)) {
    const auto da = g.dx_out(0);
    kernels::matmul(dz, g.input(1).data(), da.data, m, n, k, false, true, da.accumulate);
  }
  if (g.needs(1)) {
    const auto db = g.dx_out(1);
    kernels::matmul(g.input(0).data(), dz, db.data, k, m, n, true, false, db.accumulate);
  }
}

}  // namespace

namespace {
Tensor batched_matmul(const Tensor& a, const Tensor& b);
}  // namespace

Tensor matmul(const Tensor& a, const Tensor& b) {
  if (a.rank() != 2 || b.rank() != 2) return batched_matmul(a, b);
  check_matmul("matmul", a, b);
  const int64_t m = a.dim(0), k = a.dim(1), n = b.dim(1);
  Tensor y = Tensor::empty({m, n});
  kernels::matmul(a.data(), b.data(), y.data(), m, k, n);
  record("matmul", y, {a, b}, [m, k, n](BackwardContext& g) { matmul_backward(g, g.dy().data(), m, k, n); });
  return y;
}

namespace {

// Where each output matrix of a batched matmul reads its A and B matrices (in matrices, not
// floats): the batch dimensions (all but the last two) broadcast, right-aligned, as NumPy.
struct BatchPlan {
  std::vector<int64_t> dims;    // the output's batch dimensions
  std::vector<int64_t> a, b;    // per output matrix: the index of its A and B matrix
  int64_t a_count = 1, b_count = 1;  // matrices in A and B
};

BatchPlan plan_batches(const Tensor& a, const Tensor& b) {
  const int64_t ra = a.rank() - 2, rb = b.rank() - 2, r = std::max(ra, rb);
  BatchPlan p;
  std::vector<int64_t> sa(static_cast<size_t>(r), 0), sb(static_cast<size_t>(r), 0);
  int64_t stride_a = 1, stride_b = 1;
  for (int64_t j = r - 1; j >= 0; --j) {  // right to left, so strides are products of later dims
    const int64_t ia = j - (r - ra), ib = j - (r - rb);
    const int64_t na = ia >= 0 ? a.dim(ia) : 1, nb = ib >= 0 ? b.dim(ib) : 1;
    if (na != nb && na != 1 && nb != 1)
      throw ShapeError("matmul: batch dimensions of a " + a.shape().str() + " and b " + b.shape().str() +
                       " do not broadcast (" + std::to_string(na) + " vs " + std::to_string(nb) + ")");
    sa[static_cast<size_t>(j)] = na == 1 ? 0 : stride_a;
    sb[static_cast<size_t>(j)] = nb == 1 ? 0 : stride_b;
    stride_a *= na;
    stride_b *= nb;
  }
  p.a_count = stride_a;
  p.b_count = stride_b;
  p.dims.resize(static_cast<size_t>(r));
  int64_t count = 1;
  for (int64_t j = 0; j < r; ++j) {
    const int64_t ia = j - (r - ra), ib = j - (r - rb);
    const int64_t na = ia >= 0 ? a.dim(ia) : 1, nb = ib >= 0 ? b.dim(ib) : 1;
    p.dims[static_cast<size_t>(j)] = na == 1 ? nb : na;
    count *= p.dims[static_cast<size_t>(j)];
  }
  p.a.resize(static_cast<size_t>(count));
  p.b.resize(static_cast<size_t>(count));
  std::vector<int64_t> idx(static_cast<size_t>(r), 0);
  int64_t oa = 0, ob = 0;
  for (int64_t i = 0; i < count; ++i) {
    p.a[static_cast<size_t>(i)] = oa;
    p.b[static_cast<size_t>(i)] = ob;
    for (int64_t j = r - 1; j >= 0; --j) {  // odometer over the output's batch index
      const auto u = static_cast<size_t>(j);
      oa += sa[u];
      ob += sb[u];
      if (++idx[u] < p.dims[u]) break;
      oa -= sa[u] * idx[u];
      ob -= sb[u] * idx[u];
      idx[u] = 0;
    }
  }
  return p;
}

// d (+)= one GEMM per output matrix, into matrix which[i] of the gradient of size `size` each.
// The first write into a gradient matrix overwrites when the buffer is fresh; later ones add.
// Matrices no output reads (a zero-size batch) are zeroed.
template <class Gemm>
void batched_grad(BackwardContext::GradOut d, const std::vector<int64_t>& which, int64_t count, int64_t size,
                  Gemm gemm) {
  std::vector<char> written(static_cast<size_t>(count), d.accumulate ? 1 : 0);
  for (size_t i = 0; i < which.size(); ++i) {
    const auto w = static_cast<size_t>(which[i]);
    gemm(i, d.data + which[i] * size, written[w] != 0);
    written[w] = 1;
  }
  for (int64_t j = 0; j < count; ++j)
    if (!written[static_cast<size_t>(j)]) std::fill_n(d.data + j * size, size, 0.f);
}

Tensor batched_matmul(const Tensor& a, const Tensor& b) {
  if (a.rank() == 0 || b.rank() == 0)
    throw ShapeError("matmul: expects tensors of rank >= 1, got a " + a.shape().str() + " and b " + b.shape().str());
  if (a.dim(-1) != b.dim(b.rank() == 1 ? 0 : -2))
    throw ShapeError("matmul: inner dimensions differ: a " + a.shape().str() + " @ b " + b.shape().str() +
                     " (a has K = " + std::to_string(a.dim(-1)) + ", b has K = " +
                     std::to_string(b.dim(b.rank() == 1 ? 0 : -2)) + ")");
  if (a.rank() == 1 || b.rank() == 1) {  // (K) as (1, K) or (K, 1); the added dimension dropped
    const Tensor a2 = a.rank() == 1 ? reshape(a, {1, a.dim(0)}) : a;
    const Tensor b2 = b.rank() == 1 ? reshape(b, {b.dim(0), 1}) : b;
    const Tensor y = matmul(a2, b2);
    std::vector<int64_t> dims = y.shape().dims();
    if (b.rank() == 1) dims.pop_back();
    if (a.rank() == 1) dims.erase(dims.end() - (b.rank() == 1 ? 1 : 2));
    return reshape(y, Shape(std::move(dims)));
  }
  const int64_t m = a.dim(-2), k = a.dim(-1), n = b.dim(-1);
  if (b.rank() == 2) {  // (..., M, K) @ (K, N): one GEMM over all rows of a
    std::vector<int64_t> dims = a.shape().dims();
    int64_t rows = 1;
    for (size_t d = 0; d + 1 < dims.size(); ++d) rows *= dims[d];
    dims.back() = n;
    return reshape(matmul(reshape(a, {rows, k}), b), Shape(std::move(dims)));
  }
  BatchPlan p = plan_batches(a, b);
  std::vector<int64_t> dims = p.dims;
  dims.insert(dims.end(), {m, n});
  Tensor y = Tensor::empty(Shape(std::move(dims)));
  for (size_t i = 0; i < p.a.size(); ++i)
    kernels::matmul(a.data() + p.a[i] * m * k, b.data() + p.b[i] * k * n, y.data() + static_cast<int64_t>(i) * m * n,
                    m, k, n);
  record("matmul", y, {a, b}, [p = std::move(p), m, k, n](BackwardContext& g) {
    const float *pa = g.input(0).data(), *pb = g.input(1).data(), *dy = g.dy().data();
    if (g.needs(0))  // dA_i (+)= dY_i B_i^T
      batched_grad(g.dx_out(0), p.a, p.a_count, m * k, [&](size_t i, float* da, bool acc) {
        kernels::matmul(dy + static_cast<int64_t>(i) * m * n, pb + p.b[i] * k * n, da, m, n, k, false, true, acc);
      });
    if (g.needs(1))  // dB_i (+)= A_i^T dY_i
      batched_grad(g.dx_out(1), p.b, p.b_count, k * n, [&](size_t i, float* db, bool acc) {
        kernels::matmul(pa + p.a[i] * m * k, dy + static_cast<int64_t>(i) * m * n, db, k, m, n, true, false, acc);
      });
  });
  return y;
}

}  // namespace

Tensor linear(const Tensor& x, const Tensor& w, const Tensor& bias, FusedActivation act) {
  check_matmul("linear", x, w);
  const int64_t m = x.dim(0), k = x.dim(1), n = w.dim(1);
  if (bias.shape() != Shape{n})
    throw ShapeError("linear: bias " + bias.shape().str() + " does not match the " + std::to_string(n) +
                     " output columns of x " + x.shape().str() + " @ w " + w.shape().str());
  Tensor y = Tensor::empty({m, n});
  // relu runs as our own pass: oneDNN's relu post-op maps NaN to 0 (max), which would hide a
  // diverged model; ours keeps NaN (see relu in unary.cpp). sigmoid and tanh stay fused.
  const bool relu_pass = act == FusedActivation::relu;
  kernels::matmul(x.data(), w.data(), y.data(), m, k, n, false, false, false, bias.data(),
                  relu_pass ? kernels::Eltwise::none : static_cast<kernels::Eltwise>(act));
  if (relu_pass) detail::relu_in_place(y);
  record("linear", y, {x, w, bias}, [m, k, n, act](BackwardContext& g) {
    // dZ = dY * act'(Z), with act' written from Y; dZ is dY itself when there is no activation.
    const Tensor dz_tensor = detail::fused_activation_grad(act, g.output(), g.dy());
    const float* dz = dz_tensor.data();
    matmul_backward(g, dz, m, k, n);
    if (!g.needs(2)) return;
    const auto db = g.dx_out(2);  // dbias (+)= sum over rows of dZ
    if (!db.accumulate) std::fill_n(db.data, n, 0.f);
    for (int64_t i = 0; i < m; ++i)
      for (int64_t j = 0; j < n; ++j) db.data[j] += dz[i * n + j];
  });
  return y;
}

namespace {
// dst (cols, rows) (+)= src (rows, cols)^T
void transpose_into(const float* src, float* dst, int64_t rows, int64_t cols, bool accumulate) {
  for (int64_t i = 0; i < rows; ++i)
    for (int64_t j = 0; j < cols; ++j) {
      float& d = dst[j * rows + i];
      d = accumulate ? d + src[i * cols + j] : src[i * cols + j];
    }
}
}  // namespace

Tensor transpose(const Tensor& x) {
  if (x.rank() != 2) throw ShapeError("transpose: expects a 2-D tensor, got " + x.shape().str());
  const int64_t rows = x.dim(0), cols = x.dim(1);
  Tensor y = Tensor::empty({cols, rows});
  transpose_into(x.data(), y.data(), rows, cols, false);
  record("transpose", y, {x}, [rows, cols](BackwardContext& g) {
    transpose_into(g.dy().data(), g.dx(0).data(), cols, rows, true);
  });
  return y;
}

}  // namespace lamina
