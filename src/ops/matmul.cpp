// matmul: (M, K) @ (K, N) -> (M, N) on oneDNN. linear: the same plus a bias (N) in one
// primitive (Dense's forward). transpose: (M, N) -> (N, M).
// backward: dA += dY B^T, dB += A^T dY (both straight into the gradient buffers), dbias += sum_rows dY.
#include "kernels/matmul.hpp"
#include "lamina/autograd.hpp"
#include "lamina/ops.hpp"

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

// dA += dY B^T; dB += A^T dY
void matmul_backward(BackwardContext& g, int64_t m, int64_t k, int64_t n) {
  const float* dy = g.dy().data();
  if (g.needs(0)) kernels::matmul(dy, g.input(1).data(), g.dx(0).data(), m, n, k, false, true, true);
  if (g.needs(1)) kernels::matmul(g.input(0).data(), dy, g.dx(1).data(), k, m, n, true, false, true);
}

}  // namespace

Tensor matmul(const Tensor& a, const Tensor& b) {
  check_matmul("matmul", a, b);
  const int64_t m = a.dim(0), k = a.dim(1), n = b.dim(1);
  Tensor y = Tensor::empty({m, n});
  kernels::matmul(a.data(), b.data(), y.data(), m, k, n);
  record("matmul", y, {a, b}, [m, k, n](BackwardContext& g) { matmul_backward(g, m, k, n); });
  return y;
}

Tensor linear(const Tensor& x, const Tensor& w, const Tensor& bias) {
  check_matmul("linear", x, w);
  const int64_t m = x.dim(0), k = x.dim(1), n = w.dim(1);
  if (bias.shape() != Shape{n})
    throw ShapeError("linear: bias " + bias.shape().str() + " does not match the " + std::to_string(n) +
                     " output columns of x " + x.shape().str() + " @ w " + w.shape().str());
  Tensor y = Tensor::empty({m, n});
  kernels::matmul(x.data(), w.data(), y.data(), m, k, n, false, false, false, bias.data());
  record("linear", y, {x, w, bias}, [m, k, n](BackwardContext& g) {
    matmul_backward(g, m, k, n);
    if (!g.needs(2)) return;
    const float* dy = g.dy().data();
    float* db = g.dx(2).data();
    for (int64_t i = 0; i < m; ++i)
      for (int64_t j = 0; j < n; ++j) db[j] += dy[i * n + j];
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
