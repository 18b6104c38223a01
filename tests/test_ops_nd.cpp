// The N-d, indexing and selection ops (ops.hpp's last section) against PyTorch (fixtures from
// tests/fixtures/make_fixtures_nd.py) and central differences, from one table of cases; then
// what the fixtures do not cover: the batched matmul against a loop of 2-D products, NaN,
// repeated indices, empty pieces, and the error messages.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <limits>

#include "test_util.hpp"

namespace lamina {
namespace {

using testing::Fn;

struct NdCase {
  const char* fixture;
  Fn fn;
  bool gradcheck = true;  // false at kinks and ties on purpose (clamp on its bounds, max ties)
  double atol = 1e-6;
};

void PrintTo(const NdCase& c, std::ostream* os) { *os << c.fixture; }


Tensor in(const std::vector<Tensor>& x, size_t i) { return x.at(i); }

constexpr int64_t kEnd = std::numeric_limits<int64_t>::max();

// The parameters that are not tensors (axes, sizes, bounds) repeat make_fixtures_nd.py's.
const std::vector<NdCase>& cases() {
  static const std::vector<NdCase> all = {
      {"matmul_batched", [](auto& x) { return matmul(in(x, 0), in(x, 1)); }},
      {"matmul_bcast", [](auto& x) { return matmul(in(x, 0), in(x, 1)); }},
      {"matmul_bcast_left", [](auto& x) { return matmul(in(x, 0), in(x, 1)); }},
      {"matmul_fold", [](auto& x) { return matmul(in(x, 0), in(x, 1)); }},
      {"matmul_vec_right", [](auto& x) { return matmul(in(x, 0), in(x, 1)); }},
      {"matmul_vec_left", [](auto& x) { return matmul(in(x, 0), in(x, 1)); }},
      {"matmul_dot", [](auto& x) { return matmul(in(x, 0), in(x, 1)); }},
      {"transpose_nd", [](auto& x) { return transpose(in(x, 0), 0, 2); }},
      {"transpose_last2", [](auto& x) { return transpose(in(x, 0), -2, -1); }},
      {"permute", [](auto& x) { return permute(in(x, 0), {0, 3, 1, 2}); }},
      {"slice_step", [](auto& x) { return slice(in(x, 0), 1, 1, 6, 2); }},
      {"slice_neg", [](auto& x) { return in(x, 0).slice(-1, -3, kEnd); }},
      {"index_select", [](auto& x) { return index_select(in(x, 0), 1, in(x, 1)); }},
      {"gather_last", [](auto& x) { return gather(in(x, 0), -1, in(x, 1)); }},
      {"gather_axis0_small", [](auto& x) { return gather(in(x, 0), 0, in(x, 1)); }},
      {"one_hot", [](auto& x) { return one_hot(in(x, 0), 4); }},
      {"stack_axis1", [](auto& x) { return stack(x, 1); }},
      {"stack_last", [](auto& x) { return stack(x, -1); }},
      {"split",
       [](auto& x) {
         auto p = split(in(x, 0), {1, 3, 2}, 1);
         return concat({p.at(0) * 2.f, p.at(2), p.at(1)}, 1);
       }},
      {"chunk",
       [](auto& x) {
         auto p = chunk(in(x, 0), 3, 0);
         return concat({p.at(2), p.at(0) * 2.f, p.at(1)}, 0);
       }},
      {"where", [](auto& x) { return where(in(x, 0), in(x, 1), in(x, 2)); }},
      {"clamp", [](auto& x) { return clamp(in(x, 0), -0.5f, 0.6f); }},
      {"clamp_at_bounds", [](auto& x) { return clamp(in(x, 0), -0.5f, 0.75f); }, false},
      {"abs", [](auto& x) { return abs(in(x, 0)); }},
      {"abs_zero", [](auto& x) { return abs(in(x, 0)); }, false},
      {"pow_scalar", [](auto& x) { return pow(in(x, 0), 2.5f); }},
      {"pow_int_neg", [](auto& x) { return pow(in(x, 0), 3.f); }},
      {"pow_tensor", [](auto& x) { return pow(in(x, 0), in(x, 1)); }},
      {"sqrt_nd", [](auto& x) { return sqrt(in(x, 0)); }},
      {"max_axis1", [](auto& x) { return max(in(x, 0), 1); }},
      {"max_keepdim_ties", [](auto& x) { return max(in(x, 0), -1, true); }, false},
      {"min_axis0", [](auto& x) { return min(in(x, 0), 0); }},
      {"min_ties", [](auto& x) { return min(in(x, 0), 1); }, false},
      {"argmax_ties", [](auto& x) { return argmax(in(x, 0), 1); }},
      {"argmin_last", [](auto& x) { return argmin(in(x, 0), -1); }},
      {"cumsum_axis1", [](auto& x) { return cumsum(in(x, 0), 1); }},
      {"cumsum_last", [](auto& x) { return cumsum(in(x, 0), -1); }},
  };
  return all;
}

class OpsNd : public ::testing::TestWithParam<NdCase> {};

// Forward and backward against PyTorch (float64 reference, stored as float32).
TEST_P(OpsNd, MatchesPyTorch) {
  const NdCase& c = GetParam();
  testing::expect_matches_pytorch(c.fixture, c.fn, c.atol);
}

// backward() against fourth-order central differences at the fixture's inputs.
TEST_P(OpsNd, Gradcheck) {
  const NdCase& c = GetParam();
  const testing::OpFixture l(c.fixture);
  if (!l.any_grad) GTEST_SKIP() << "no gradient: indices and one-hot are piecewise constant";
  if (!c.gradcheck) GTEST_SKIP() << "inputs sit on a kink or a tie on purpose; see MatchesPyTorch";
  testing::GradcheckOptions opt;
  opt.check = l.differentiable;
  EXPECT_TRUE(testing::gradcheck(c.fn, l.inputs, opt)) << c.fixture;
}

INSTANTIATE_TEST_SUITE_P(Ops, OpsNd, ::testing::ValuesIn(cases()),
                         [](const auto& info) { return std::string(info.param.fixture); });

// --- batched matmul: against 2-D products of the matrices it should pair -----------------------

// The (b0, b1) matrix of a (B0, B1, R, C) tensor, or of a (R, C) one (then b0, b1 are ignored),
// or with a 1 in a batch dimension (broadcast).
Tensor matrix_at(const Tensor& t, int64_t b0, int64_t b1) {
  if (t.rank() == 2) return t;
  const int64_t i0 = t.dim(0) == 1 ? 0 : b0, i1 = t.dim(1) == 1 ? 0 : b1;
  return reshape(slice(slice(t, 0, i0, i0 + 1), 1, i1, i1 + 1), {t.dim(2), t.dim(3)});
}

TEST(OpsNdMatmul, BroadcastBatchesMatchLoopOf2dProducts) {
  Generator gen(51);
  struct Shapes {
    Shape a, b;
  };
  // odd sizes (1, 7, 33) and every broadcast pattern of two batch axes
  const std::vector<Shapes> shapes = {
      {{2, 3, 7, 33}, {2, 3, 33, 5}}, {{2, 1, 1, 7}, {1, 3, 7, 33}}, {{1, 3, 33, 1}, {2, 1, 1, 7}},
      {{7, 33}, {2, 3, 33, 1}},       {{2, 3, 1, 7}, {7, 5}},        {{2, 3, 0, 7}, {1, 3, 7, 4}},
  };
  for (const auto& [sa, sb] : shapes) {
    Tensor a = Tensor::randn(sa, gen).requires_grad_(), b = Tensor::randn(sb, gen).requires_grad_();
    Tensor a2 = a.detach().clone().requires_grad_(), b2 = b.detach().clone().requires_grad_();
    Tensor y = matmul(a, b);
    const int64_t n0 = y.dim(0), n1 = y.dim(1);
    std::vector<Tensor> rows;
    for (int64_t i = 0; i < n0; ++i) {
      std::vector<Tensor> row;
      for (int64_t j = 0; j < n1; ++j) row.push_back(matmul(matrix_at(a2, i, j), matrix_at(b2, i, j)));
      rows.push_back(stack(row, 0));
    }
    Tensor expected = stack(rows, 0);
    const std::string what = "matmul(" + sa.str() + " @ " + sb.str() + ")";
    ASSERT_EQ(y.shape(), expected.shape()) << what;
    EXPECT_TRUE(testing::all_close(y, expected, 1e-5, 1e-5)) << what;
    const Tensor dy = Tensor::randn(y.shape(), gen);
    y.backward(dy);
    expected.backward(dy);
    EXPECT_TRUE(testing::all_close(a.grad(), a2.grad(), 1e-5, 1e-5)) << what << " da";
    EXPECT_TRUE(testing::all_close(b.grad(), b2.grad(), 1e-5, 1e-5)) << what << " db";
  }
}

TEST(OpsNdMatmul, GradcheckBroadcastAndAccumulate) {
  Generator gen(52);
  // b's one matrix serves six products; a's gradient is added into a second time by the "+ a"
  Fn f = [](auto& x) { return matmul(in(x, 0), in(x, 1)) + in(x, 0).slice(-1, 0, 2); };
  EXPECT_TRUE(testing::gradcheck(f, {Tensor::randn({2, 3, 4, 3}, gen), Tensor::randn({1, 1, 3, 2}, gen)}));
  Fn g = [](auto& x) { return matmul(in(x, 0), in(x, 1)); };
  EXPECT_TRUE(testing::gradcheck(g, {Tensor::randn({3}, gen), Tensor::randn({2, 3, 4}, gen)}));
}

// --- indexing beyond the fixtures ---------------------------------------------------------------

TEST(OpsNdIndex, RepeatedIndicesAddTheirGradients) {
  Tensor x = Tensor::from({1.f, 2.f, 3.f}).requires_grad_();
  Tensor y = index_select(x, 0, std::vector<int64_t>{2, 0, 2, 2});
  EXPECT_EQ(y.to_vector(), std::vector<float>({3.f, 1.f, 3.f, 3.f}));
  y.backward(Tensor::from({1.f, 10.f, 100.f, 1000.f}));
  EXPECT_EQ(x.grad().to_vector(), std::vector<float>({10.f, 0.f, 1101.f}));

  Tensor z = Tensor::from({{1.f, 2.f}, {3.f, 4.f}}).requires_grad_();
  Tensor g = gather(z, 1, Tensor::from({{1.f, 1.f, 0.f}, {0.f, 0.f, 0.f}}));
  EXPECT_EQ(g.to_vector(), std::vector<float>({2.f, 2.f, 1.f, 3.f, 3.f, 3.f}));
  g.backward(Tensor::ones({2, 3}));
  EXPECT_EQ(z.grad().to_vector(), std::vector<float>({1.f, 2.f, 3.f, 0.f}));
}

TEST(OpsNdIndex, VectorAndTensorIndicesAgree) {
  Generator gen(53);
  const Tensor x = Tensor::randn({3, 4, 5}, gen);
  EXPECT_EQ(index_select(x, -1, std::vector<int64_t>{4, 1}).to_vector(),
            index_select(x, 2, Tensor::from({4.f, 1.f})).to_vector());
  EXPECT_EQ(index_select(x, 0, Tensor::scalar(2.f)).shape(), Shape({1, 4, 5}));
  EXPECT_EQ(index_select(x, 1, std::vector<int64_t>{}).shape(), Shape({3, 0, 5}));
}

TEST(OpsNdIndex, SliceClampsLikePython) {
  const Tensor x = Tensor::from({0.f, 1.f, 2.f, 3.f, 4.f});
  EXPECT_EQ(slice(x, 0, -2, kEnd).to_vector(), std::vector<float>({3.f, 4.f}));
  EXPECT_EQ(slice(x, 0, -100, 2).to_vector(), std::vector<float>({0.f, 1.f}));
  EXPECT_EQ(slice(x, 0, 3, 1).numel(), 0);
  EXPECT_EQ(slice(x, 0, 0, kEnd, 3).to_vector(), std::vector<float>({0.f, 3.f}));
  EXPECT_EQ(x.slice(0, 1, 3).to_vector(), std::vector<float>({1.f, 2.f}));
}

TEST(OpsNdIndex, OneHotOfLabels) {
  const Tensor y = one_hot(Tensor::from({2.f, 0.f}), 3);
  EXPECT_EQ(y.shape(), Shape({2, 3}));
  EXPECT_EQ(y.to_vector(), std::vector<float>({0.f, 0.f, 1.f, 1.f, 0.f, 0.f}));
  EXPECT_EQ(one_hot(Tensor::scalar(1.f), 2).to_vector(), std::vector<float>({0.f, 1.f}));
}

// --- joining, selection, extremes beyond the fixtures ------------------------------------------

TEST(OpsNdJoin, SplitAndChunkPieces) {
  Generator gen(54);
  const Tensor x = Tensor::randn({4, 7}, gen);
  auto c = chunk(x, 3, -1);  // 7 -> 3, 3, 1
  ASSERT_EQ(c.size(), 3u);
  EXPECT_EQ(c[2].shape(), Shape({4, 1}));
  EXPECT_EQ(concat(c, 1).to_vector(), x.to_vector());
  EXPECT_EQ(chunk(x, 5, 0).size(), 4u);  // as torch.chunk: 4 rows in pieces of 1
  EXPECT_EQ(chunk(Tensor::zeros({0, 2}), 3, 0).size(), 3u);
  auto s = split(x, {0, 7}, 1);
  EXPECT_EQ(s[0].shape(), Shape({4, 0}));
  EXPECT_EQ(stack({x}, 2).shape(), Shape({4, 7, 1}));
  Fn f = [](auto& in) {
    auto p = split(in[0], {2, 5}, -1);
    return stack({p[0], p[0], p[1].slice(1, 0, 2)}, -2);
  };
  EXPECT_TRUE(testing::gradcheck(f, {x}));
}

TEST(OpsNdSelect, WhereBroadcastsAllThree) {
  Generator gen(55);
  Fn f = [](auto& in) { return where(in[0], in[1], in[2]); };
  const Tensor cond = Tensor::from({1.f, 0.f, NAN, 0.f}, {4, 1, 1});  // NaN counts as true
  EXPECT_TRUE(testing::gradcheck(f, {cond, Tensor::randn({2, 1}, gen), Tensor::randn({1, 3}, gen)},
                                 {.check = {false, true, true}}));
  const Tensor y = where(cond, Tensor::scalar(1.f), Tensor::scalar(-1.f));
  EXPECT_EQ(y.to_vector(), std::vector<float>({1.f, -1.f, 1.f, -1.f}));
  // a and b the same tensor: both shares add into it
  Tensor a = Tensor::from({1.f, 2.f}).requires_grad_();
  where(Tensor::from({1.f, 0.f}), a, a).backward(Tensor::from({3.f, 4.f}));
  EXPECT_EQ(a.grad().to_vector(), std::vector<float>({3.f, 4.f}));
}

TEST(OpsNdSelect, PowTensorGradcheckAndZeros) {
  Generator gen(56);
  Fn f = [](auto& in) { return pow(in[0], in[1]); };
  EXPECT_TRUE(testing::gradcheck(f, {Tensor::rand({2, 1, 3}, gen, 0.5f, 2.f), Tensor::randn({4, 1}, gen)}));
  Tensor x = Tensor::from({0.f, 0.f}).requires_grad_(), e = Tensor::from({2.f, 0.f}).requires_grad_();
  pow(x, e).backward(Tensor::ones({2}));
  EXPECT_EQ(e.grad().to_vector(), std::vector<float>({0.f, 0.f}));  // x == 0, e >= 0: 0, as torch
  EXPECT_EQ(x.grad().to_vector(), std::vector<float>({0.f, 0.f}));
  EXPECT_EQ(pow(Tensor::from({-2.f}), 2.f).item(), 4.f);
}

TEST(OpsNdSelect, ClampKeepsNaN) {
  EXPECT_TRUE(std::isnan(clamp(Tensor::from({NAN}), 0.f, 1.f).item()));
  EXPECT_EQ(clamp(Tensor::from({5.f, -5.f}), 2.f, 1.f).to_vector(), std::vector<float>({1.f, 1.f}));  // lo > hi: hi
  EXPECT_EQ(clamp(Tensor::from({5.f, -5.f}), -INFINITY, 0.f).to_vector(), std::vector<float>({0.f, -5.f}));
}

TEST(OpsNdExtreme, NaNWinsAndGetsTheGradient) {
  Tensor x = Tensor::from({{1.f, NAN, 3.f, NAN}, {4.f, 2.f, 4.f, -1.f}}).requires_grad_();
  Tensor y = max(x, 1);
  EXPECT_TRUE(std::isnan(y.at({0})));
  EXPECT_EQ(y.at({1}), 4.f);
  EXPECT_EQ(argmax(x, 1).to_vector(), std::vector<float>({1.f, 0.f}));
  EXPECT_EQ(argmin(x, 1).to_vector(), std::vector<float>({1.f, 3.f}));
  EXPECT_EQ(argmax(x, 0, true).shape(), Shape({1, 4}));
  y.backward(Tensor::from({1.f, 2.f}));
  EXPECT_EQ(x.grad().to_vector(), std::vector<float>({0.f, 1.f, 0.f, 0.f, 2.f, 0.f, 0.f, 0.f}));
  EXPECT_FALSE(argmax(x, 1).requires_grad());
}

TEST(OpsNdCumsum, ScalarAndLongRows) {
  EXPECT_EQ(cumsum(Tensor::scalar(2.f), 0).item(), 2.f);
  const Tensor x = Tensor::full({1, 100000}, 0.1f);
  EXPECT_NEAR(cumsum(x, 1).at({0, 99999}), 10000.f, 1e-3);  // double accumulation
  Fn f = [](auto& in) { return cumsum(in[0], 0); };
  Generator gen(57);
  EXPECT_TRUE(testing::gradcheck(f, {Tensor::randn({5, 2, 3}, gen)}));
}

// --- errors name the op, the shapes and the offending value ------------------------------------

template <class E, class F>
void expect_error(F f, const std::string& message) {
  try {
    f();
    ADD_FAILURE() << "expected an exception: " << message;
  } catch (const E& e) {
    EXPECT_EQ(e.what(), message);
  }
}

TEST(OpsNdErrors, ShapesAxesAndIndices) {
  const Tensor a = Tensor::zeros({2, 3, 4}), b = Tensor::zeros({5, 4, 2});
  expect_error<ShapeError>([&] { matmul(a, b); },
                           "matmul: batch dimensions of a (2, 3, 4) and b (5, 4, 2) do not broadcast (2 vs 5)");
  expect_error<ShapeError>([&] { matmul(a, Tensor::zeros({3})); },
                           "matmul: inner dimensions differ: a (2, 3, 4) @ b (3) (a has K = 4, b has K = 3)");
  expect_error<ShapeError>([&] { matmul(a, Tensor::scalar(1.f)); },
                           "matmul: expects tensors of rank >= 1, got a (2, 3, 4) and b ()");
  expect_error<ShapeError>([&] { transpose(a, 0, 3); }, "transpose: axis 3 is out of range for shape (2, 3, 4)");
  expect_error<ShapeError>([&] { permute(a, {0, 0, 1}); },
                           "permute: dims [0, 0, 1] is not a permutation of the 3 axes of (2, 3, 4)");
  expect_error<ShapeError>([&] { permute(a, {0, 1}); },
                           "permute: dims [0, 1] is not a permutation of the 3 axes of (2, 3, 4)");
  expect_error<ValueError>([&] { slice(a, 1, 0, 2, 0); }, "slice: step must be >= 1, got 0 (slicing (2, 3, 4) along axis 1)");
  expect_error<ShapeError>([&] { slice(a, -4, 0, 1); }, "slice: axis -4 is out of range for shape (2, 3, 4)");
  expect_error<ValueError>([&] { index_select(a, 1, std::vector<int64_t>{0, 3}); },
                           "index_select: index 3 at position 1 is out of range [0, 3) for axis 1 of (2, 3, 4)");
  expect_error<ValueError>([&] { index_select(a, -1, Tensor::from({1.f, 2.5f})); },
                           "index_select: index 2.5 at (1) is not an integer in [0, 4)");
  expect_error<ShapeError>([&] { index_select(a, 0, Tensor::zeros({1, 1})); },
                           "index_select: indices must be 1-D (or a scalar), got (1, 1)");
  expect_error<ShapeError>([&] { gather(a, 1, Tensor::zeros({2, 3})); },
                           "gather: index (2, 3) must have the rank of x (2, 3, 4) and no larger dimension except "
                           "along axis 1");
  expect_error<ShapeError>([&] { gather(a, 1, Tensor::zeros({3, 1, 1})); },
                           "gather: index (3, 1, 1) must have the rank of x (2, 3, 4) and no larger dimension except "
                           "along axis 1");
  expect_error<ValueError>([&] { gather(a, 2, Tensor::from({0.f, 1.f, -1.f}, {1, 1, 3})); },
                           "gather: index -1 at (0, 0, 2) is not an integer in [0, 4)");
  expect_error<ValueError>([&] { one_hot(Tensor::from({{0.f, 1.f}, {3.f, 0.f}}), 3); },
                           "one_hot: label 3 at (1, 0) is not an integer in [0, 3)");
  expect_error<ValueError>([&] { one_hot(Tensor::from({NAN}), 3); }, "one_hot: label nan at (0) is not an integer in [0, 3)");
  expect_error<ValueError>([&] { one_hot(Tensor::from({0.f}), 0); }, "one_hot: num_classes must be >= 1, got 0");
}

TEST(OpsNdErrors, JoinSelectExtremes) {
  const Tensor a = Tensor::zeros({2, 3});
  expect_error<ShapeError>([&] { stack({a, Tensor::zeros({3, 2})}); },
                           "stack: input 1 has shape (3, 2), input 0 has (2, 3); all inputs must have the same shape");
  expect_error<ShapeError>([&] { stack({a}, 3); }, "stack: axis 3 is out of range for inputs of shape (2, 3) (the new axis goes in [-3, 2])");
  expect_error<ValueError>([&] { stack({}); }, "stack: needs at least one input, got none");
  expect_error<ShapeError>([&] { split(a, {1, 1}, 1); },
                           "split: sizes [1, 1] must be >= 0 and add up to 3, the size of axis 1 of (2, 3)");
  expect_error<ValueError>([&] { chunk(a, 0, 1); }, "chunk: chunks must be >= 1, got 0");
  expect_error<ShapeError>([&] { where(Tensor::zeros({4, 1}), a, Tensor::zeros({3})); },
                           "where: shapes of cond (4, 1), a (2, 3) and b (3) do not broadcast (axis -2: 4 vs 2)");
  expect_error<ShapeError>([&] { pow(a, Tensor::zeros({2})); },
                           "pow: shapes of x (2, 3) and e (2) do not broadcast (axis -1: 3 vs 2)");
  expect_error<ShapeError>([&] { max(Tensor::zeros({2, 0}), 1); },
                           "max: axis 1 of (2, 0) is empty; there is no extreme to return");
  expect_error<ShapeError>([&] { argmin(a, -3); }, "argmin: axis -3 is out of range for shape (2, 3)");
  expect_error<ShapeError>([&] { cumsum(a, 2); }, "cumsum: axis 2 is out of range for shape (2, 3)");
}

}  // namespace
}  // namespace lamina
