// Every op against PyTorch (fixtures from tests/fixtures/make_fixtures.py) and against
// central differences, from one table of cases; plus the oneDNN matmul against the naive loop.
#include <gtest/gtest.h>

#include <algorithm>
#include <bit>
#include <cmath>
#include <limits>
#include <vector>

#include "kernels/elementwise.hpp"
#include "kernels/matmul.hpp"
#include "test_util.hpp"

namespace lamina {
namespace {

using testing::Fn;

struct OpCase {
  const char* fixture;
  Fn fn;
  bool gradcheck = true;  // false where finite differences are meaningless (logits of 1e4)
  double step = 1e-2;     // finite-difference step; smaller for probabilities near the clip
  double atol = 1e-6;     // against PyTorch; 1e-5 for convolutions and batch norm (long float32
                          // sums, whose order depends on the ISA oneDNN picks)
};

void PrintTo(const OpCase& c, std::ostream* os) { *os << c.fixture; }


Tensor in(const std::vector<Tensor>& x, size_t i) { return x.at(i); }

const std::vector<OpCase>& cases() {
  static const std::vector<OpCase> all = {
      {"matmul", [](auto& x) { return matmul(in(x, 0), in(x, 1)); }},
      {"matmul_odd", [](auto& x) { return matmul(in(x, 0), in(x, 1)); }},
      {"linear", [](auto& x) { return linear(in(x, 0), in(x, 1), in(x, 2)); }},
      {"transpose", [](auto& x) { return transpose(in(x, 0)); }},
      {"add", [](auto& x) { return in(x, 0) + in(x, 1); }},
      {"add_row", [](auto& x) { return in(x, 0) + in(x, 1); }},
      {"add_bcast", [](auto& x) { return add(in(x, 0), in(x, 1)); }},
      {"sub_col", [](auto& x) { return in(x, 0) - in(x, 1); }},
      {"mul_row", [](auto& x) { return in(x, 0) * in(x, 1); }},
      {"div_row", [](auto& x) { return in(x, 0) / in(x, 1); }},
      // every third element an exact tie: dy split half/half, as torch (and central differences)
      {"maximum", [](auto& x) { return maximum(in(x, 0), in(x, 1)); }},
      {"minimum", [](auto& x) { return minimum(in(x, 0), in(x, 1)); }},
      {"add_scalar", [](auto& x) { return in(x, 0) + 2.5f; }},
      {"mul_scalar", [](auto& x) { return in(x, 0) * -1.5f; }},
      {"rsub_scalar", [](auto& x) { return 2.5f - in(x, 0); }},
      {"div_scalar", [](auto& x) { return in(x, 0) / 4.f; }},
      {"rdiv_scalar", [](auto& x) { return 3.f / in(x, 0); }},
      {"neg", [](auto& x) { return -in(x, 0); }},
      {"square", [](auto& x) { return square(in(x, 0)); }},
      {"sum_all", [](auto& x) { return sum(in(x, 0)); }},
      {"sum_axis0", [](auto& x) { return sum(in(x, 0), 0); }},
      {"sum_axis1_keepdim", [](auto& x) { return sum(in(x, 0), 1, true); }},
      {"mean_all", [](auto& x) { return mean(in(x, 0)); }},
      {"mean_axis_last", [](auto& x) { return mean(in(x, 0), -1); }},
      {"reshape", [](auto& x) { return reshape(in(x, 0), {6, -1}); }},
      {"flatten", [](auto& x) { return flatten(in(x, 0)); }},
      {"concat_axis_last", [](auto& x) { return concat(x); }},
      {"concat_axis1", [](auto& x) { return concat(x, 1); }},  // input 1 without grad
      {"relu", [](auto& x) { return relu(in(x, 0)); }},
      {"leaky_relu", [](auto& x) { return leaky_relu(in(x, 0), 0.2f); }},
      {"elu", [](auto& x) { return elu(in(x, 0), 1.f); }},
      {"sigmoid", [](auto& x) { return sigmoid(in(x, 0)); }},
      {"tanh", [](auto& x) { return tanh(in(x, 0)); }},
      {"exp", [](auto& x) { return exp(in(x, 0)); }},
      {"log", [](auto& x) { return log(in(x, 0)); }},
      {"sqrt", [](auto& x) { return sqrt(in(x, 0)); }},
      {"softmax_last", [](auto& x) { return softmax(in(x, 0)); }},
      {"softmax_axis0", [](auto& x) { return softmax(in(x, 0), 0); }},
      {"log_softmax_last", [](auto& x) { return log_softmax(in(x, 0)); }},
      {"log_softmax_axis1", [](auto& x) { return log_softmax(in(x, 0), 1); }},
      {"mse", [](auto& x) { return mean_squared_error(in(x, 0), in(x, 1)); }},
      {"mae", [](auto& x) { return mean_absolute_error(in(x, 0), in(x, 1)); }},
      {"bce", [](auto& x) { return binary_crossentropy(in(x, 0), in(x, 1)); }},
      {"bce_soft", [](auto& x) { return binary_crossentropy(in(x, 0), in(x, 1)); }},
      {"bce_logits", [](auto& x) { return binary_crossentropy(in(x, 0), in(x, 1), true); }},
      {"bce_logits_extreme", [](auto& x) { return binary_crossentropy(in(x, 0), in(x, 1), true); }, false},
      {"cce", [](auto& x) { return categorical_crossentropy(in(x, 0), in(x, 1)); }, true, 1e-3},
      {"cce_logits", [](auto& x) { return categorical_crossentropy(in(x, 0), in(x, 1), true); }},
      {"cce_logits_extreme", [](auto& x) { return categorical_crossentropy(in(x, 0), in(x, 1), true); }, false},
      {"scce", [](auto& x) { return sparse_categorical_crossentropy(in(x, 0), in(x, 1)); }, true, 1e-3},
      {"scce_logits", [](auto& x) { return sparse_categorical_crossentropy(in(x, 0), in(x, 1), true); }},
      {"scce_logits_3d", [](auto& x) { return sparse_categorical_crossentropy(in(x, 0), in(x, 1), true); }},
      // Keras' sample_weight: x2 weighs each sample (no gradient)
      {"mse_weighted", [](auto& x) { return mean_squared_error(in(x, 0), in(x, 1), in(x, 2)); }},
      {"mae_weighted", [](auto& x) { return mean_absolute_error(in(x, 0), in(x, 1), in(x, 2)); }},
      {"bce_logits_weighted", [](auto& x) { return binary_crossentropy(in(x, 0), in(x, 1), true, in(x, 2)); }},
      {"cce_weighted", [](auto& x) { return categorical_crossentropy(in(x, 0), in(x, 1), false, in(x, 2)); }, true, 1e-3},
      {"scce_logits_3d_weighted",
       [](auto& x) { return sparse_categorical_crossentropy(in(x, 0), in(x, 1), true, in(x, 2)); }},
      {"scce_logits_extreme",
       [](auto& x) { return sparse_categorical_crossentropy(in(x, 0), in(x, 1), true); }, false},
      // convolutional networks: channels last; the fixtures permute to torch's NCHW
      {"conv2d_valid", [](auto& x) { return conv2d(in(x, 0), in(x, 1), in(x, 2)); }, true, 1e-2, 1e-5},
      {"conv2d_same", [](auto& x) { return conv2d(in(x, 0), in(x, 1), in(x, 2), {.padding = Padding::same}); },
       true, 1e-2, 1e-5},
      {"conv2d_same_strided",
       [](auto& x) { return conv2d(in(x, 0), in(x, 1), in(x, 2), {.strides = 2, .padding = Padding::same}); }, true,
       1e-2, 1e-5},
      {"conv2d_same_even", [](auto& x) { return conv2d(in(x, 0), in(x, 1), in(x, 2), {.padding = Padding::same}); },
       true, 1e-2, 1e-5},
      {"conv2d_strided_nobias", [](auto& x) { return conv2d(in(x, 0), in(x, 1), Tensor(), {.strides = {2, 3}}); },
       true, 1e-2, 1e-5},
      {"conv2d_lenet", [](auto& x) { return conv2d(in(x, 0), in(x, 1), in(x, 2), {.padding = Padding::same}); },
       true, 1e-2, 1e-5},
      {"conv2d_lenet2", [](auto& x) { return conv2d(in(x, 0), in(x, 1), in(x, 2)); }, true, 1e-2, 1e-5},
      {"max_pool_2x2", [](auto& x) { return max_pool2d(in(x, 0), 2, 2); }},
      {"max_pool_3x3_s2_same", [](auto& x) { return max_pool2d(in(x, 0), 3, 2, Padding::same); }},
      {"avg_pool_valid", [](auto& x) { return avg_pool2d(in(x, 0), 2, 2); }},
      {"avg_pool_same", [](auto& x) { return avg_pool2d(in(x, 0), 3, 2, Padding::same); }},
      {"global_avg_pool", [](auto& x) { return global_avg_pool2d(in(x, 0)); }},
      // x, gamma, beta, moving_mean, moving_var; momentum and epsilon as in make_fixtures.py
      {"batch_norm_train_2d", [](auto& x) { return batch_norm(in(x, 0), in(x, 1), in(x, 2), in(x, 3), in(x, 4), true, 0.9f); },
       true, 1e-2, 1e-5},
      {"batch_norm_train_4d", [](auto& x) { return batch_norm(in(x, 0), in(x, 1), in(x, 2), in(x, 3), in(x, 4), true, 0.9f); },
       true, 1e-2, 1e-5},
      {"batch_norm_infer_2d", [](auto& x) { return batch_norm(in(x, 0), in(x, 1), in(x, 2), in(x, 3), in(x, 4), false); }},
      {"batch_norm_infer_4d", [](auto& x) { return batch_norm(in(x, 0), in(x, 1), in(x, 2), in(x, 3), in(x, 4), false); }},
      // x, gamma, beta; epsilon as in make_fixtures.py: Keras' default (1e-3), then PyTorch's (1e-5)
      {"layer_norm_2d", [](auto& x) { return layer_norm(in(x, 0), in(x, 1), in(x, 2)); }},
      {"layer_norm_3d", [](auto& x) { return layer_norm(in(x, 0), in(x, 1), in(x, 2), 1e-5f); }},
  };
  return all;
}

class OpTest : public ::testing::TestWithParam<OpCase> {};

// Forward and backward against PyTorch (float64 reference, stored as float32).
TEST_P(OpTest, MatchesPyTorch) {
  const OpCase& c = GetParam();
  testing::expect_matches_pytorch(c.fixture, c.fn, c.atol);
}

// backward() against fourth-order central differences at the fixture's inputs.
TEST_P(OpTest, Gradcheck) {
  const OpCase& c = GetParam();
  if (!c.gradcheck) GTEST_SKIP() << "logits of 1e4: finite differences are meaningless; see MatchesPyTorch";
  const testing::OpFixture l(c.fixture);
  testing::GradcheckOptions opt;
  opt.check = l.differentiable;
  opt.step = c.step;
  EXPECT_TRUE(testing::gradcheck(c.fn, l.inputs, opt)) << c.fixture;
}

INSTANTIATE_TEST_SUITE_P(Ops, OpTest, ::testing::ValuesIn(cases()),
                         [](const auto& info) { return std::string(info.param.fixture); });

// Broadcasting that the fixtures do not cover: a scalar tensor, and both sides stretched.
TEST(Broadcast, GradcheckScalarAndBothSides) {
  Generator gen(3);
  Fn f = [](auto& x) { return in(x, 0) * in(x, 1) + in(x, 2); };
  EXPECT_TRUE(testing::gradcheck(f, {Tensor::randn({4, 1}, gen), Tensor::randn({1, 3}, gen), Tensor::scalar(0.5f)}));
}

// linear with a fused activation equals the composition, forward and backward, and passes gradcheck.
TEST(Linear, FusedActivationMatchesComposition) {
  Generator gen(11);
  const Tensor x = Tensor::randn({5, 7}, gen), w = Tensor::randn({7, 3}, gen), b = Tensor::randn({3}, gen);
  const std::vector<std::pair<FusedActivation, Tensor (*)(const Tensor&)>> acts = {
      {FusedActivation::relu, [](const Tensor& t) { return relu(t); }},
      {FusedActivation::sigmoid, [](const Tensor& t) { return sigmoid(t); }},
      {FusedActivation::tanh, [](const Tensor& t) { return lamina::tanh(t); }}};
  for (const auto& [act, f] : acts) {
    std::vector<Tensor> a = {x.clone().requires_grad_(), w.clone().requires_grad_(), b.clone().requires_grad_()};
    std::vector<Tensor> c = {x.clone().requires_grad_(), w.clone().requires_grad_(), b.clone().requires_grad_()};
    const Tensor dy = Tensor::randn({5, 3}, gen);
    Tensor fused = linear(a[0], a[1], a[2], act);
    Tensor composed = f(linear(c[0], c[1], c[2]));
    EXPECT_TRUE(testing::all_close(fused, composed, 1e-5, 1e-6)) << static_cast<int>(act);
    fused.backward(dy);
    composed.backward(dy);
    for (size_t i = 0; i < 3; ++i)
      EXPECT_TRUE(testing::all_close(a[i].grad(), c[i].grad(), 1e-5, 1e-6)) << static_cast<int>(act) << " input " << i;
    Fn fn = [act = act](auto& in) { return linear(in[0], in[1], in[2], act); };
    EXPECT_TRUE(testing::gradcheck(fn, {x, w, b})) << static_cast<int>(act);
  }
}

// A NaN must survive every activation (PyTorch and TensorFlow keep it), fused or not: a
// diverged model has to show in its loss.
TEST(NumericalSafety, NaNPropagatesThroughActivations) {
  const Tensor x = Tensor::from({{NAN, 1.f}}), w = Tensor::from({{1.f, 0.f}, {0.f, 1.f}}), b = Tensor::zeros({2});
  for (auto act : {FusedActivation::none, FusedActivation::relu, FusedActivation::sigmoid, FusedActivation::tanh})
    EXPECT_TRUE(std::isnan(linear(x, w, b, act).at({0, 0}))) << static_cast<int>(act);
  const Tensor img = Tensor::full({1, 3, 3, 1}, NAN), k = Tensor::ones({3, 3, 1, 1});
  for (auto act : {FusedActivation::none, FusedActivation::relu, FusedActivation::sigmoid, FusedActivation::tanh})
    EXPECT_TRUE(std::isnan(conv2d(img, k, Tensor::zeros({1}), {.padding = Padding::same, .act = act}).data()[4]))
        << "conv2d " << static_cast<int>(act);
  const Tensor v = Tensor::from({NAN});
  for (const Tensor& y : {relu(v), leaky_relu(v), elu(v), sigmoid(v), tanh(v), softmax(v), log_softmax(v)})
    EXPECT_TRUE(std::isnan(y.item())) << y;
}

// Both matmul paths (oneDNN, and our small-product loops) and the dispatcher against the naive
// loop, for odd shapes, transposes and accumulation. The small path's tiles are 6 rows by 2
// vectors (16 or 32 columns), 8 rows by one vector where N's last columns fit one: 1, 7, 33
// and 70 rows and columns cover full and partial tiles of both.
TEST(MatmulKernel, BothPathsMatchNaive) {
  Generator gen(7);
  using Kernel = void (*)(const float*, const float*, float*, int64_t, int64_t, int64_t, bool, bool, bool,
                          const float*, kernels::Eltwise);
  const std::pair<const char*, Kernel> kernels_under_test[] = {
      {"onednn", kernels::onednn_matmul}, {"small", kernels::small_matmul},
      {"small, the build's own level", kernels::small_matmul_build_target}, {"dispatch", [](auto... args) {
         kernels::matmul(args...);
       }}};
  for (int64_t m : {1, 7, 33, 70})
    for (int64_t k : {0, 1, 7, 33})
      for (int64_t n : {1, 5, 33, 70})
        for (int flags = 0; flags < 8; ++flags) {
          const bool ta = flags & 1, tb = flags & 2, acc = flags & 4;
          const Tensor bias = Tensor::randn({n}, gen);
          const float* bias_ptr = (m + k + n) % 2 ? bias.data() : nullptr;  // with and without bias
          const auto act = static_cast<kernels::Eltwise>((m + n + k) % 4);   // each fused activation
          Tensor a = Tensor::randn(ta ? Shape{k, m} : Shape{m, k}, gen);
          Tensor b = Tensor::randn(tb ? Shape{n, k} : Shape{k, n}, gen);
          Tensor c0 = Tensor::randn({m, n}, gen);
          Tensor naive = c0.clone();
          kernels::ref::matmul(a.data(), b.data(), naive.data(), m, k, n, ta, tb, acc, bias_ptr, act);
          for (const auto& [name, kernel] : kernels_under_test) {
            Tensor fast = c0.clone();
            kernel(a.data(), b.data(), fast.data(), m, k, n, ta, tb, acc, bias_ptr, act);
            EXPECT_TRUE(testing::all_close(fast, naive, 1e-5, 1e-5))
                << name << " matmul(M=" << m << ",K=" << k << ",N=" << n << ",trans_a=" << ta << ",trans_b=" << tb
                << ",accumulate=" << acc << ",bias=" << (bias_ptr != nullptr) << ",act=" << static_cast<int>(act)
                << ")";
          }
        }
}

// small_matmul's two kernels on a kernels::Gemm: the dispatched one (AVX-512 on a CPU with it)
// and the build's own level.
constexpr void (*kGemmKernels[])(const kernels::Gemm&) = {
    +[](const kernels::Gemm& g) { kernels::small_matmul(g); },
    +[](const kernels::Gemm& g) { kernels::small_matmul_build_target(g); }};

// The small path on submatrices (kernels::Gemm): each operand a block of columns inside a wider
// stored matrix. The product matches the naive one on the packed operands, and C's other columns
// keep their values.
TEST(MatmulKernel, StridedBlocksMatchNaive) {
  Generator gen(11);
  for (auto kernel : kGemmKernels)
    for (int64_t m : {1, 7, 33})
      for (int64_t k : {1, 7, 40})
        for (int64_t n : {5, 33, 64})
          for (int flags = 0; flags < 8; ++flags) {
            const bool ta = flags & 1, tb = flags & 2, acc = flags & 4;
            const int64_t pad = 3;  // columns of the stored matrices left and right of the block
            const Shape sa = ta ? Shape{k, m} : Shape{m, k}, sb = tb ? Shape{n, k} : Shape{k, n};
            Tensor a = Tensor::randn(sa, gen), b = Tensor::randn(sb, gen), c0 = Tensor::randn({m, n}, gen);
            Tensor wa = Tensor::randn({sa[0], sa[1] + 2 * pad}, gen), wb = Tensor::randn({sb[0], sb[1] + 2 * pad}, gen);
            Tensor wc = Tensor::randn({m, n + 2 * pad}, gen);
            auto put = [pad](Tensor& wide, const Tensor& block) {
              for (int64_t r = 0; r < block.dim(0); ++r)
                for (int64_t j = 0; j < block.dim(1); ++j) wide.data()[r * wide.dim(1) + pad + j] = block.data()[r * block.dim(1) + j];
            };
            put(wa, a), put(wb, b), put(wc, c0);
            const Tensor wc_before = wc.clone();
            const Tensor bias = Tensor::randn({n}, gen);
            Tensor naive = c0.clone();
            const auto act = static_cast<kernels::Eltwise>((m + n + k) % 4);
            kernels::ref::matmul(a.data(), b.data(), naive.data(), m, k, n, ta, tb, acc, bias.data(), act);
            kernel({.a = wa.data() + pad, .lda = wa.dim(1), .b = wb.data() + pad, .ldb = wb.dim(1),
                    .c = wc.data() + pad, .ldc = wc.dim(1), .m = m, .k = k, .n = n, .trans_a = ta, .trans_b = tb,
                    .accumulate = acc, .bias = bias.data(), .act = act});
            for (int64_t r = 0; r < m; ++r)
              for (int64_t j = 0; j < n + 2 * pad; ++j) {
                const float got = wc.data()[r * wc.dim(1) + j];
                const bool inside = j >= pad && j < pad + n;
                const float want = inside ? naive.data()[r * n + j - pad] : wc_before.data()[r * wc.dim(1) + j];
                ASSERT_NEAR(got, want, 1e-5 + 1e-5 * std::abs(want))
                    << "M=" << m << " K=" << k << " N=" << n << " trans_a=" << ta << " trans_b=" << tb
                    << " accumulate=" << acc << " at (" << r << ", " << j << ")";
              }
          }
}

// Rows picked by index (Gemm::b_rows, c_rows), as the Dense chain's first layer uses them for
// the features a batch uses: op(B)'s row p is B's row b_rows[p], C's row i its row c_rows[i];
// with pick_a, op(A) is read picked the same way from a wider stored A (its columns b_rows, or
// for a transposed A, c_rows). The product is the naive one on the picked rows, and C's other
// rows keep their values. N of 5 and 33 copy B's panels (a partial one), so the picked B is read
// from the copy while A is still read in place.
TEST(MatmulKernel, PickedRowsMatchNaive) {
  Generator gen(12);
  for (auto kernel : kGemmKernels)
    for (int64_t m : {1, 7, 33})
      for (int64_t k : {1, 9, 40})
        for (int64_t n : {5, 33, 64})
          for (int flags = 0; flags < 8; ++flags) {
            // picked_c: C's rows (A transposed), else B's; pick_a: A's too
            const bool picked_c = flags & 1, acc = flags & 2, pick_a = flags & 4;
            const int64_t stored = 2 * (picked_c ? m : k) + 3;  // rows of the stored matrix picked from
            std::vector<int64_t> rows;
            for (int64_t i = 0; i < (picked_c ? m : k); ++i) rows.push_back(2 * i + (i % 3 == 0));
            const Tensor wa =
                Tensor::randn(picked_c ? Shape{k, pick_a ? stored : m} : Shape{m, pick_a ? stored : k}, gen);
            const Tensor wb = Tensor::randn(picked_c ? Shape{k, n} : Shape{stored, n}, gen);
            Tensor wc = Tensor::randn(picked_c ? Shape{stored, n} : Shape{m, n}, gen);
            const Tensor wc_before = wc.clone();
            Tensor a = wa, b = wb, c0 = wc.clone();
            if (pick_a) {  // the columns of the stored A the product reads
              a = Tensor::empty(picked_c ? Shape{k, m} : Shape{m, k});
              for (int64_t r = 0; r < a.dim(0); ++r)
                for (int64_t j = 0; j < a.dim(1); ++j)
                  a.data()[r * a.dim(1) + j] = wa.data()[r * wa.dim(1) + rows[static_cast<size_t>(j)]];
            }
            if (!picked_c) {  // the rows B's product reads
              b = Tensor::empty({k, n});
              for (int64_t p = 0; p < k; ++p)
                std::copy_n(wb.data() + rows[static_cast<size_t>(p)] * n, n, b.data() + p * n);
            } else {
              c0 = Tensor::empty({m, n});
              for (int64_t i = 0; i < m; ++i)
                std::copy_n(wc.data() + rows[static_cast<size_t>(i)] * n, n, c0.data() + i * n);
            }
            Tensor naive = c0.clone();
            kernels::ref::matmul(a.data(), b.data(), naive.data(), m, k, n, picked_c, false, acc, nullptr,
                                 kernels::Eltwise::none);
            kernel({.a = wa.data(),
                    .lda = wa.dim(1),
                    .b = wb.data(),
                    .ldb = n,
                    .c = wc.data(),
                    .ldc = n,
                    .m = m,
                    .k = k,
                    .n = n,
                    .trans_a = picked_c,
                    .accumulate = acc,
                    .b_rows = picked_c ? nullptr : rows.data(),
                    .c_rows = picked_c ? rows.data() : nullptr,
                    .pick_a = pick_a});
            for (int64_t r = 0; r < wc.dim(0); ++r) {
              const auto hit = picked_c ? std::find(rows.begin(), rows.end(), r) : rows.end();
              const int64_t i = picked_c ? (hit == rows.end() ? -1 : hit - rows.begin()) : r;
              for (int64_t j = 0; j < n; ++j) {
                const float got = wc.data()[r * n + j];
                const float want = i < 0 ? wc_before.data()[r * n + j] : naive.data()[i * n + j];
                ASSERT_NEAR(got, want, 1e-5 + 1e-5 * std::abs(want))
                    << "M=" << m << " K=" << k << " N=" << n << " picked C=" << picked_c << " accumulate=" << acc
                    << " pick A=" << pick_a << " at (" << r << ", " << j << ")";
              }
            }
          }
}

// pick_a without the picking it follows (b_rows for A as stored, c_rows for A transposed) is
// refused, as is b_rows with a transposed B.
TEST(MatmulKernel, PickedAWithoutItsRowsIsRefused) {
  float a[4] = {}, b[4] = {}, c[4] = {};
  const int64_t rows[2] = {0, 1};
  const kernels::Gemm g{.a = a, .lda = 2, .b = b, .ldb = 2, .c = c, .ldc = 2, .m = 2, .k = 2, .n = 2};
  auto with = [&](auto edit) {
    kernels::Gemm e = g;
    edit(e);
    return e;
  };
  EXPECT_THROW(kernels::small_matmul(with([](kernels::Gemm& e) { e.pick_a = true; })), std::logic_error);
  EXPECT_THROW(kernels::small_matmul(with([&](kernels::Gemm& e) { e.pick_a = true, e.c_rows = rows; })),
               std::logic_error);
  EXPECT_THROW(
      kernels::small_matmul(with([&](kernels::Gemm& e) { e.pick_a = true, e.trans_a = true, e.b_rows = rows; })),
      std::logic_error);
  EXPECT_NO_THROW(kernels::small_matmul(with([&](kernels::Gemm& e) { e.pick_a = true, e.b_rows = rows; })));
  EXPECT_NO_THROW(
      kernels::small_matmul(with([&](kernels::Gemm& e) { e.pick_a = true, e.trans_a = true, e.c_rows = rows; })));
}

// A NaN through the fused relu stays NaN, as torch.relu's (a NaN input is then seen in the loss).
TEST(MatmulKernel, ReluKeepsNaN) {
  const Tensor a = Tensor::from({NAN, 1.f}).reshape({1, 2}), b = Tensor::ones({2, 40});
  Tensor c = Tensor::zeros({1, 40});
  kernels::small_matmul(a.data(), b.data(), c.data(), 1, 2, 40, false, false, false, nullptr, kernels::Eltwise::relu);
  for (float v : c.to_vector()) EXPECT_TRUE(std::isnan(v));
}

// The vectorized exp (softmax, the cross-entropies from logits) against the math library's, over
// its whole range in steps of 7e-4 and at its edges: within 1 ulp where expf's result is a
// normal float, 0 where it is subnormal, inf past FLT_MAX, NaN for NaN; in place or not.
TEST(ExpKernel, WithinOneUlpOfExpf) {
  std::vector<float> x;
  for (float v = -110.f; v < 90.f; v += 7e-4f) x.push_back(v);
  for (float v :
       {88.72283f, 88.72284f, 88.7229f, -87.33654f, -87.3366f, 0.f, -0.f, 1e-30f, -1e-30f, INFINITY, -INFINITY, NAN})
    x.push_back(v);
  std::vector<float> y(x.size()), in_place = x;
  kernels::exp(x.data(), y.data(), static_cast<int64_t>(x.size()));
  kernels::exp(in_place.data(), in_place.data(), static_cast<int64_t>(x.size()));
  for (size_t i = 0; i < x.size(); ++i) {
    const float want = std::exp(x[i]);
    ASSERT_EQ(std::bit_cast<uint32_t>(in_place[i]), std::bit_cast<uint32_t>(y[i])) << "in place, x = " << x[i];
    if (std::isnan(want)) {
      ASSERT_TRUE(std::isnan(y[i])) << "x = " << x[i];
    } else if (want < std::numeric_limits<float>::min()) {
      ASSERT_EQ(y[i], 0.f) << "x = " << x[i];
    } else if (std::isinf(want)) {
      ASSERT_EQ(y[i], want) << "x = " << x[i];
    } else {
      const auto ulps = std::abs(static_cast<int64_t>(std::bit_cast<int32_t>(y[i])) - std::bit_cast<int32_t>(want));
      ASSERT_LE(ulps, 1) << "x = " << x[i] << ": " << y[i] << " against expf's " << want;
    }
  }
}

// The vectorized log (the cross-entropies) against the math library's: within 1 ulp over the
// normal floats (every 997th bit pattern), -inf for 0 and subnormals, NaN below 0 and for NaN.
TEST(ExpKernel, LogWithinOneUlpOfLogf) {
  std::vector<float> x;
  for (uint32_t b = 0x00800000u; b < 0x7f800000u; b += 997) x.push_back(std::bit_cast<float>(b));
  const size_t normal = x.size();
  for (float v : {0.f, -0.f, 1e-40f, -1.f, -INFINITY, INFINITY, NAN}) x.push_back(v);
  std::vector<float> y(x.size());
  kernels::log(x.data(), y.data(), static_cast<int64_t>(x.size()));
  for (size_t i = 0; i < normal; ++i) {
    const float want = std::log(x[i]);
    const auto ulps = std::abs(static_cast<int64_t>(std::bit_cast<int32_t>(y[i])) - std::bit_cast<int32_t>(want));
    ASSERT_LE(ulps, 1) << "x = " << x[i] << ": " << y[i] << " against logf's " << want;
  }
  const float* special = y.data() + normal;
  for (int k = 0; k < 3; ++k) EXPECT_EQ(special[k], -INFINITY) << "0, -0 and a subnormal";
  EXPECT_TRUE(std::isnan(special[3]) && std::isnan(special[4]) && std::isnan(special[6]));
  EXPECT_EQ(special[5], INFINITY);
  std::vector<float> in_place(x.begin(), x.begin() + 1000);
  kernels::log(in_place.data(), in_place.data(), 1000);
  EXPECT_TRUE(std::equal(in_place.begin(), in_place.end(), y.begin()));
}

// The rows of softmax: each row's max, e^(x - max) and its sum, in rows of 1 to 19 values (as
// wide as 20 standard deviations, so some fall below the normal floats).
TEST(ExpKernel, RowsMatchAPlainLoop) {
  Generator gen(3);
  for (int64_t c : {1, 3, 10, 16, 19}) {
    const Tensor x = Tensor::randn({7, c}, gen) * 20.f;
    std::vector<float> y(static_cast<size_t>(7 * c)), mx(7), sum(7);
    kernels::exp_rows(x.data(), y.data(), 7, c, mx.data(), sum.data());
    for (int64_t r = 0; r < 7; ++r) {
      const float* xr = x.data() + r * c;
      const float want_max = *std::max_element(xr, xr + c);
      EXPECT_EQ(mx[static_cast<size_t>(r)], want_max) << "c = " << c << ", row " << r;
      float want_sum = 0.f;
      for (int64_t j = 0; j < c; ++j) {
        const float e = std::exp(xr[j] - want_max);
        const float tolerance = std::max(2e-7f * e, std::numeric_limits<float>::min());  // subnormals are 0
        EXPECT_NEAR(y[static_cast<size_t>(r * c + j)], e, tolerance) << "c = " << c << " at (" << r << ", " << j << ")";
        want_sum += e;
      }
      EXPECT_NEAR(sum[static_cast<size_t>(r)], want_sum, 1e-6f * want_sum) << "c = " << c << ", row " << r;
    }
  }
}

// layer_norm beyond its fixtures: gamma / beta left out, gradients added into existing ones,
// and row statistics that stay precise when |mean| >> std.
TEST(LayerNorm, WithoutGammaOrBetaIsOneAndZero) {
  Generator gen(31);
  const Tensor x = Tensor::randn({4, 7}, gen) * 3.f + 1.f, g = Tensor::rand({7}, gen, 0.5f, 1.5f);
  EXPECT_EQ(layer_norm(x, Tensor(), Tensor()).to_vector(),
            layer_norm(x, Tensor::ones({7}), Tensor::zeros({7})).to_vector());
  Fn scale_only = [](auto& in) { return layer_norm(in[0], in[1], Tensor()); };
  Fn center_only = [](auto& in) { return layer_norm(in[0], Tensor(), in[1]); };
  EXPECT_TRUE(testing::gradcheck(scale_only, {x, g})) << "layer_norm(x, gamma, none)";
  EXPECT_TRUE(testing::gradcheck(center_only, {x, g})) << "layer_norm(x, none, beta)";
}

TEST(LayerNorm, GradientsAddIntoExistingOnes) {
  Generator gen(32);
  const Tensor x = Tensor::randn({3, 5}, gen), g = Tensor::rand({5}, gen, 0.5f, 1.5f), b = Tensor::randn({5}, gen);
  std::vector<Tensor> once = {x.clone().requires_grad_(), g.clone().requires_grad_(), b.clone().requires_grad_()};
  std::vector<Tensor> twice = {x.clone().requires_grad_(), g.clone().requires_grad_(), b.clone().requires_grad_()};
  Tensor y1 = layer_norm(once[0], once[1], once[2]) * 2.f;
  Tensor y2 = layer_norm(twice[0], twice[1], twice[2]) + layer_norm(twice[0], twice[1], twice[2]);
  const Tensor dy = Tensor::randn(y1.shape(), gen);
  y1.backward(dy);
  y2.backward(dy);
  for (size_t i = 0; i < 3; ++i)
    EXPECT_TRUE(testing::all_close(twice[i].grad(), once[i].grad(), 1e-5, 1e-6)) << "layer_norm input " << i;
}

TEST(LayerNorm, RowMomentsPreciseForLargeMeans) {
  Generator gen(33);
  const Tensor x = Tensor::randn({8, 300}, gen) + 1000.f;  // E[x^2] - E[x]^2 in float would lose it all
  const Tensor y = layer_norm(x, Tensor(), Tensor(), 1e-5f);
  const Tensor m = mean(y, -1), v = mean(square(y), -1);
  for (int64_t i = 0; i < 8; ++i) {
    EXPECT_NEAR(m.at({i}), 0.f, 1e-4) << "row " << i;
    EXPECT_NEAR(v.at({i}), 1.f, 1e-3) << "row " << i;
  }
}

// concat beyond its fixtures: one tensor twice (both blocks add into one gradient), a single
// input, and an input with a zero-length axis.
TEST(Concat, SameInputTwiceAddsBothBlocks) {
  Generator gen(41);
  Tensor x = Tensor::randn({2, 3}, gen).requires_grad_();
  Tensor y = concat({x, x}, 1);
  ASSERT_EQ(y.shape(), Shape({2, 6}));
  const Tensor dy = Tensor::randn({2, 6}, gen);
  y.backward(dy);
  for (int64_t i = 0; i < 2; ++i)
    for (int64_t j = 0; j < 3; ++j) {
      EXPECT_EQ(y.at({i, j}), x.at({i, j}));
      EXPECT_EQ(y.at({i, j + 3}), x.at({i, j}));
      EXPECT_FLOAT_EQ(x.grad().at({i, j}), dy.at({i, j}) + dy.at({i, j + 3}));
    }
  Fn twice = [](auto& in) { return concat({in[0], in[1], in[0]}, 0); };
  EXPECT_TRUE(testing::gradcheck(twice, {Tensor::randn({2, 3}, gen), Tensor::randn({1, 3}, gen)}));
}

TEST(Concat, SingleInputAndEmptyAxis) {
  Generator gen(42);
  const Tensor x = Tensor::randn({2, 3}, gen);
  EXPECT_EQ(concat({x}).to_vector(), x.to_vector());
  EXPECT_EQ(concat({Tensor::zeros({2, 0}), x, Tensor::zeros({2, 0})}).to_vector(), x.to_vector());
  Fn f = [](auto& in) { return concat(in, -1); };
  EXPECT_TRUE(testing::gradcheck(f, {Tensor::zeros({2, 0}), x}));
}

// NaN wins in both, and both sides then get all of dy (torch.maximum / torch.minimum do the same).
TEST(MaximumMinimum, NaNPropagatesAndGradientsSplit) {
  for (auto op : {&maximum, &minimum}) {
    Tensor a = Tensor::from({NAN, 1.f, 2.f}).requires_grad_(), b = Tensor::from({1.f, NAN, 2.f}).requires_grad_();
    Tensor y = op(a, b);
    EXPECT_TRUE(std::isnan(y.at({0})) && std::isnan(y.at({1})));
    EXPECT_EQ(y.at({2}), 2.f);
    y.backward(Tensor::ones({3}));
    EXPECT_EQ(a.grad().to_vector(), std::vector<float>({1.f, 1.f, 0.5f}));
    EXPECT_EQ(b.grad().to_vector(), std::vector<float>({1.f, 1.f, 0.5f}));
  }
  // max + min = a + b: with both adding into the same gradients, each side gets dy exactly.
  Generator gen(43);
  Tensor a = Tensor::randn({4, 5}, gen).requires_grad_(), b = Tensor::randn({4, 5}, gen).requires_grad_();
  b.values()[3] = a.values()[3];
  const Tensor dy = Tensor::randn({4, 5}, gen);
  (maximum(a, b) + minimum(a, b)).backward(dy);
  EXPECT_EQ(a.grad().to_vector(), dy.to_vector());
  EXPECT_EQ(b.grad().to_vector(), dy.to_vector());
}

// --- shape errors name the op and both shapes ----------------------------------------------

template <class E, class F>
void expect_error(F f, const std::string& message) {
  try {
    f();
    ADD_FAILURE() << "expected an exception: " << message;
  } catch (const E& e) {
    EXPECT_EQ(e.what(), message);
  }
}

TEST(ShapeErrors, NameOpAndShapes) {
  const Tensor a = Tensor::zeros({2, 3}), b = Tensor::zeros({4, 5}), v = Tensor::zeros({3});
  expect_error<ShapeError>([&] { matmul(a, b); },
                           "matmul: inner dimensions differ: a (2, 3) @ b (4, 5) (a has K = 3, b has K = 4)");
  // (2, 3) @ (3) is a matrix-vector product now (batched matmul, test_ops_nd.cpp)
  expect_error<ShapeError>([&] { matmul(a, Tensor::zeros({4})); },
                           "matmul: inner dimensions differ: a (2, 3) @ b (4) (a has K = 3, b has K = 4)");
  expect_error<ShapeError>([&] { add(a, b); }, "add: shapes (2, 3) and (4, 5) do not broadcast (axis -1: 3 vs 5)");
  expect_error<ShapeError>([&] { a * Tensor::zeros({2}); },
                           "mul: shapes (2, 3) and (2) do not broadcast (axis -1: 3 vs 2)");
  expect_error<ShapeError>([&] { reshape(a, {4, 2}); },
                           "reshape: cannot reshape (2, 3) (6 elements) into (4, 2) (8 elements)");
  expect_error<ShapeError>([&] { reshape(a, {4, -1}); }, "reshape: cannot reshape (2, 3) (6 elements) into (4, -1)");
  expect_error<ShapeError>([&] { sum(a, 2); }, "sum: axis 2 is out of range for shape (2, 3)");
  expect_error<ShapeError>([&] { softmax(a, -3); }, "softmax: axis -3 is out of range for shape (2, 3)");
  expect_error<ShapeError>([&] { transpose(v); }, "transpose: expects a 2-D tensor, got (3)");
}

TEST(ShapeErrors, ConcatMaximumMinimum) {
  const Tensor a = Tensor::zeros({2, 4, 3}), b = Tensor::zeros({2, 5, 3});
  expect_error<ShapeError>([&] { concat({a, b}, -1); }, "concat: input 1 has shape (2, 5, 3), input 0 has (2, 4, 3); "
                                                        "all axes but axis 2 must match");
  expect_error<ShapeError>([&] { concat({a, a, Tensor::zeros({2, 4})}, 1); },
                           "concat: input 2 has shape (2, 4), input 0 has (2, 4, 3); all axes but axis 1 must match");
  expect_error<ShapeError>([&] { concat({a, b}, 3); }, "concat: axis 3 is out of range for shape (2, 4, 3)");
  expect_error<ValueError>([&] { concat({}); }, "concat: needs at least one input, got none");
  expect_error<ValueError>([&] { concat({a, Tensor()}); }, "concat: input 1 is undefined");
  EXPECT_EQ(concat({a, b}, 1).shape(), Shape({2, 9, 3}));
  EXPECT_EQ(concat({a, b}, -2).shape(), Shape({2, 9, 3}));
  expect_error<ShapeError>([&] { maximum(a, b); }, "maximum: a (2, 4, 3) and b (2, 5, 3) must have the same shape");
  expect_error<ShapeError>([&] { minimum(a, Tensor::zeros({3})); },
                           "minimum: a (2, 4, 3) and b (3) must have the same shape");
}

TEST(ShapeErrors, Losses) {
  const Tensor p = Tensor::full({4, 3}, 0.5f);
  expect_error<ShapeError>([&] { mean_squared_error(Tensor::zeros({4, 2}), p); },
                           "mean_squared_error: y_true (4, 2) and y_pred (4, 3) have different shapes");
  expect_error<ShapeError>([&] { categorical_crossentropy(Tensor::zeros({4}), p); },
                           "categorical_crossentropy: y_true (4) and y_pred (4, 3) must have the same shape "
                           "(one-hot targets; for integer labels use sparse_categorical_crossentropy)");
  expect_error<ShapeError>([&] { sparse_categorical_crossentropy(Tensor::zeros({5}), p); },
                           "sparse_categorical_crossentropy: y_true (5) does not match y_pred (4, 3) (expected "
                           "integer labels of shape (4))");
  // (N) against (N, 1) is accepted, as Keras squeezes it.
  EXPECT_NO_THROW(mean_squared_error(Tensor::zeros({4}), Tensor::zeros({4, 1})));
  EXPECT_NO_THROW(sparse_categorical_crossentropy(Tensor::zeros({4, 1}), p));
}

TEST(ShapeErrors, LayerNorm) {
  const Tensor x = Tensor::zeros({2, 3});
  expect_error<ShapeError>([&] { layer_norm(x, Tensor::ones({4}), Tensor()); },
                           "layer_norm: gamma (4) does not match the 3 features (last axis) of x (2, 3)");
  expect_error<ShapeError>([&] { layer_norm(x, Tensor(), Tensor::zeros({2, 3})); },
                           "layer_norm: beta (2, 3) does not match the 3 features (last axis) of x (2, 3)");
  expect_error<ShapeError>([&] { layer_norm(Tensor::scalar(1.f), Tensor(), Tensor()); },
                           "layer_norm: x must have a feature axis, got a scalar");
  expect_error<ValueError>([&] { layer_norm(x, Tensor(), Tensor(), 0.f); },
                           "layer_norm: epsilon must be positive, got 0.000000");
}

TEST(ValueErrors, LabelsOutOfRange) {
  const Tensor p = Tensor::full({2, 3}, 0.5f);
  expect_error<ValueError>([&] { sparse_categorical_crossentropy(Tensor::from({0.f, 3.f}), p); },
                           "sparse_categorical_crossentropy: label 3.000000 at index 1 is not a class index in "
                           "[0, 3) for y_pred (2, 3)");
  EXPECT_THROW(sparse_categorical_crossentropy(Tensor::from({0.5f, 1.f}), p), ValueError);
  EXPECT_THROW(sparse_categorical_crossentropy(Tensor::from({NAN, 1.f}), p, true), ValueError);
}

// Logits of +-1e4 give finite losses and gradients in every from_logits form and in softmax.
TEST(NumericalSafety, ExtremeLogitsStayFinite) {
  Tensor logits = Tensor::from({{1e4f, -1e4f, 0.f}, {-1e4f, -1e4f, 1e4f}}).requires_grad_();
  Tensor labels = Tensor::from({1.f, 0.f});
  Tensor onehot = Tensor::from({{0.f, 1.f, 0.f}, {1.f, 0.f, 0.f}});
  const std::vector<std::function<Tensor()>> losses = {
      [&] { return sparse_categorical_crossentropy(labels, logits, true); },
      [&] { return categorical_crossentropy(onehot, logits, true); },
      [&] { return binary_crossentropy(onehot, logits, true); },
      [&] { return sum(log_softmax(logits)) + sum(softmax(logits)) + sum(sigmoid(logits)); },
  };
  for (const auto& make : losses) {
    logits.zero_grad();
    Tensor loss = make();
    ASSERT_TRUE(std::isfinite(loss.item())) << loss;
    loss.backward();
    for (float g : logits.grad().values()) ASSERT_TRUE(std::isfinite(g)) << logits.grad();
  }
}

}  // namespace
}  // namespace lamina
