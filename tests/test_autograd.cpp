// Autograd semantics: accumulation, fan-out, no-grad scopes, input gradients, graph reuse.
#include <gtest/gtest.h>

#include "lamina/lamina.hpp"

namespace lamina {
namespace {

TEST(Autograd, ChainRuleThroughSeveralOps) {
  // L = sum(sigmoid(x w + b)); dL/dw = x^T s(1-s), dL/db = sum_rows s(1-s)
  Tensor x = Tensor::from({{1.f, 2.f}, {-1.f, 0.5f}});
  Tensor w = Tensor::from({0.3f, -0.2f}, {2, 1}).requires_grad_();
  Tensor b = Tensor::from({0.1f}).requires_grad_();
  Tensor s = sigmoid(matmul(x, w) + b);
  sum(s).backward();
  float dw0 = 0, dw1 = 0, db = 0;
  for (int i = 0; i < 2; ++i) {
    const float si = s.at({i, 0}), d = si * (1 - si);
    dw0 += x.at({i, 0}) * d;
    dw1 += x.at({i, 1}) * d;
    db += d;
  }
  EXPECT_NEAR(w.grad().at({0, 0}), dw0, 1e-6);
  EXPECT_NEAR(w.grad().at({1, 0}), dw1, 1e-6);
  EXPECT_NEAR(b.grad().item(), db, 1e-6);
}

TEST(Autograd, GradientsAccumulateAcrossBackwardCalls) {
  Tensor x = Tensor::from({1.f, 2.f}).requires_grad_();
  sum(x * 3.f).backward();
  sum(x * 3.f).backward();
  EXPECT_EQ(x.grad().to_vector(), (std::vector<float>{6.f, 6.f}));
  x.zero_grad();
  EXPECT_FALSE(x.grad().defined());
  sum(x).backward();
  EXPECT_EQ(x.grad().to_vector(), (std::vector<float>{1.f, 1.f}));
}

TEST(Autograd, FanOutAndReuse) {
  // y = x*x + x, used twice in the graph: dy/dx = 2x + 1
  Tensor x = Tensor::from({3.f, -1.f}).requires_grad_();
  Tensor y = x * x + x;
  sum(y + y).backward();
  EXPECT_EQ(x.grad().to_vector(), (std::vector<float>{14.f, -2.f}));
}

TEST(Autograd, GradientsWithRespectToInputs) {
  // Saliency-style: the input itself requires grad; the weights do not.
  Tensor w = Tensor::from({2.f, -3.f}, {2, 1});
  Tensor x = Tensor::from({{1.f, 1.f}}).requires_grad_();
  sum(matmul(x, w)).backward();
  EXPECT_EQ(x.grad().to_vector(), (std::vector<float>{2.f, -3.f}));
  EXPECT_FALSE(w.grad().defined());
}

TEST(Autograd, NoGradGuardRecordsNothing) {
  Tensor w = Tensor::ones({2}).requires_grad_();
  {
    NoGradGuard guard;
    EXPECT_FALSE(grad_enabled());
    Tensor y = w * 2.f;
    EXPECT_FALSE(y.requires_grad());
    EXPECT_TRUE(y.is_leaf());
    EXPECT_THROW(sum(y).backward(), ValueError);
  }
  EXPECT_TRUE(grad_enabled());
  EXPECT_TRUE((w * 2.f).requires_grad());
}

TEST(Autograd, DetachStopsGradient) {
  Tensor x = Tensor::from({2.f}).requires_grad_();
  Tensor y = x * x.detach();  // d/dx = x (not 2x)
  y.backward();
  EXPECT_EQ(x.grad().item(), 2.f);
}

TEST(Autograd, SecondBackwardThroughFreedGraphIsAClearError) {
  Tensor x = Tensor::from({1.f}).requires_grad_();
  Tensor y = exp(x);
  y.backward();
  try {
    y.backward();
    FAIL() << "expected an error";
  } catch (const ValueError& e) {
    EXPECT_NE(std::string(e.what()).find("already used by a backward pass"), std::string::npos) << e.what();
  }
}

TEST(Autograd, BackwardNeedsScalarOrGradient) {
  Tensor x = Tensor::from({1.f, 2.f}).requires_grad_();
  Tensor y = x * 2.f;
  EXPECT_THROW(y.backward(), ShapeError);
  EXPECT_THROW(y.backward(Tensor::ones({3})), ShapeError);
  y.backward(Tensor::from({1.f, 10.f}));
  EXPECT_EQ(x.grad().to_vector(), (std::vector<float>{2.f, 20.f}));
}

TEST(Autograd, IntermediateGradientsAreNotRetained) {
  Tensor x = Tensor::from({1.f}).requires_grad_();
  Tensor h = x * 2.f;
  (h * 3.f).backward();
  EXPECT_FALSE(h.grad().defined());
  EXPECT_EQ(x.grad().item(), 6.f);
}

TEST(Autograd, RequiresGradOnlyOnLeaves) {
  Tensor x = Tensor::from({1.f}).requires_grad_();
  Tensor y = x * 2.f;
  EXPECT_THROW(y.requires_grad_(false), ValueError);
  EXPECT_NO_THROW(y.detach().requires_grad_());
}

TEST(Autograd, ReshapeViewGradient) {
  Tensor x = Tensor::from({{1.f, 2.f}, {3.f, 4.f}}).requires_grad_();
  Tensor y = flatten(x, 0);
  EXPECT_EQ(y.shape(), (Shape{4}));
  sum(y * Tensor::from({1.f, 2.f, 3.f, 4.f})).backward();
  EXPECT_EQ(x.grad().to_vector(), (std::vector<float>{1.f, 2.f, 3.f, 4.f}));
}

}  // namespace
}  // namespace lamina

namespace lamina {
namespace {

// zero_grad(false) keeps the buffer but marks it zero: reading gives zeros, and the next
// backward overwrites it (through both the GEMM path and the elementwise path).
TEST(Autograd, LazyZeroGradKeepsBufferAndOverwrites) {
  Tensor w = Tensor::from({{1.f, 2.f}, {3.f, 4.f}}).requires_grad_();
  Tensor x = Tensor::from({{1.f, 1.f}});
  sum(relu(matmul(x, w))).backward();
  const float* buffer = w.grad().data();
  EXPECT_EQ(w.grad().to_vector(), (std::vector<float>{1.f, 1.f, 1.f, 1.f}));
  w.zero_grad(/*set_to_none=*/false);
  sum(relu(matmul(x * 2.f, w))).backward();
  EXPECT_EQ(w.grad().data(), buffer);  // same storage, no reallocation
  EXPECT_EQ(w.grad().to_vector(), (std::vector<float>{2.f, 2.f, 2.f, 2.f}));  // overwritten, not added
  w.zero_grad(false);
  EXPECT_EQ(w.grad().to_vector(), (std::vector<float>{0.f, 0.f, 0.f, 0.f}));  // read: materialised zeros
  Tensor v = Tensor::from({1.f, -1.f}).requires_grad_();
  sum(square(v)).backward();
  v.zero_grad(false);
  sum(sigmoid(v) * 0.f + v).backward();  // elementwise ops write into the stale buffer
  EXPECT_EQ(v.grad().to_vector(), (std::vector<float>{1.f, 1.f}));
}

}  // namespace
}  // namespace lamina
