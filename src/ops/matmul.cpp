// matmul: (M, K) @ (K, N) -> (M, N) on oneDNN. linear: act(x w + bias) in one primitive
// (Dense's forward; bias, sigmoid and tanh as oneDNN post-ops, relu as a pass of ours that
// keeps NaN). transpose: (M, N) -> (N, M).
// backward: dZ = dY act'(Y); dA (+)= dZ B^T, dB (+)= A^T dZ (straight into the gradient
// buffers), dbias (+)= sum_rows dZ.
#include <algorithm>

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

Tensor matmul(const Tensor& a, const Tensor& b) {
  check_matmul("matmul", a, b);
  const int64_t m = a.dim(0), k = a.dim(1), n = b.dim(1);
  Tensor y = Tensor::empty({m, n});
  kernels::matmul(a.data(), b.data(), y.data(), m, k, n);
  record("matmul", y, {a, b}, [m, k, n](BackwardContext& g) { matmul_backward(g, g.dy().data(), m, k, n); });
  return y;
}

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
