// Convolutional-network ops beyond the fixture table in test_ops.cpp: oneDNN convolution and
// pooling against the naive loops on odd shapes, fused activations, batch norm's moving
// statistics, dropout's properties, gradient accumulation and shape errors.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstring>
#include <numeric>
#include <sstream>

#include "kernels/conv.hpp"
#include "kernels/conv_narrow.hpp"
#include "kernels/pool.hpp"
#include "test_util.hpp"

namespace lamina {
namespace {

using testing::Fn;

std::string describe(const kernels::Geometry2d& g) {
  std::ostringstream s;
  s << "(N=" << g.n << ",H=" << g.h << ",W=" << g.w << ",C=" << g.c << ",F=" << g.f << ",K=" << g.kh << "x" << g.kw
    << ",S=" << g.sh << "x" << g.sw << ",pad=" << g.pad_top << "/" << g.pad_bottom << "/" << g.pad_left << "/"
    << g.pad_right << ",out=" << g.oh << "x" << g.ow << ")";
  return s.str();
}

struct Window {
  int64_t n, h, w, c, f, kh, kw, sh, sw;
  bool same;
};

// Odd sizes (1, 7, 33), rectangular windows, strides above and below the window, both paddings.
const std::vector<Window> kWindows = {
    {1, 7, 7, 1, 1, 3, 3, 1, 1, false},  {2, 7, 6, 3, 4, 3, 3, 1, 1, true},   {1, 33, 7, 7, 5, 5, 5, 1, 1, true},
    {2, 9, 8, 2, 3, 3, 2, 2, 3, false},  {1, 7, 33, 1, 33, 5, 3, 2, 2, true}, {3, 1, 7, 5, 7, 1, 3, 1, 2, true},
    {1, 6, 5, 16, 6, 4, 2, 1, 1, true},  {2, 8, 8, 6, 16, 5, 5, 1, 1, false}, {1, 7, 7, 33, 1, 7, 7, 1, 1, false},
    {2, 5, 5, 4, 3, 2, 2, 3, 3, true},   {1, 1, 1, 7, 5, 1, 1, 1, 1, false},
    {8, 33, 33, 16, 32, 3, 3, 1, 1, true},  // 80 MFLOP: large enough for the threaded primitives
    // 5.6 and 5.8 MFLOP: LeNet's two convolutions on batches of 24 and 12, whose batch is split
    // over the threads (conv.cpp's split_batch) when the test runs on more than one
    {24, 28, 28, 1, 6, 5, 5, 1, 1, true},   {12, 14, 14, 6, 16, 5, 5, 1, 1, false},
};

kernels::Geometry2d geometry(const Window& s) {
  return kernels::window_geometry(s.n, s.h, s.w, s.c, s.f, Size2(s.kh, s.kw), Size2(s.sh, s.sw),
                                  s.same ? Padding::same : Padding::valid);
}

TEST(ConvKernel, OneDnnMatchesNaive) {
  Generator gen(21);
  int variant = 0;
  for (const Window& s : kWindows) {
    const kernels::Geometry2d g = geometry(s);
    const Tensor x = Tensor::randn({g.n, g.h, g.w, g.c}, gen), w = Tensor::randn({g.kh, g.kw, g.c, g.f}, gen);
    const Tensor bias = Tensor::randn({g.f}, gen), dy = Tensor::randn({g.n, g.oh, g.ow, g.f}, gen);
    for (int round = 0; round < 2; ++round, ++variant) {  // with / without bias, writing / accumulating
      const bool with_bias = round == 0, acc = round == 1;
      const auto act = static_cast<kernels::Eltwise>(variant % 4);
      const std::string what = describe(g) + " bias=" + std::to_string(with_bias) + " act=" +
                               std::to_string(variant % 4) + " accumulate=" + std::to_string(acc);
      Tensor fast = Tensor::empty({g.n, g.oh, g.ow, g.f}), naive = fast.clone();
      kernels::conv2d_forward(g, x.data(), w.data(), with_bias ? bias.data() : nullptr, fast.data(), act);
      kernels::ref::conv2d_forward(g, x.data(), w.data(), with_bias ? bias.data() : nullptr, naive.data(), act);
      // float32 sums: the tolerance grows with the number of products summed
      const double terms_x = static_cast<double>(g.kh * g.kw * g.c), terms_dx = static_cast<double>(g.kh * g.kw * g.f),
                   terms_w = static_cast<double>(g.n * g.oh * g.ow);
      EXPECT_TRUE(testing::all_close(fast, naive, 1e-5, 1e-6 * terms_x)) << "conv2d forward " << what;

      const Tensor dx0 = Tensor::randn(x.shape(), gen);
      Tensor dx_fast = dx0.clone(), dx_naive = dx0.clone();
      kernels::conv2d_backward_data(g, dy.data(), w.data(), dx_fast.data(), acc);
      kernels::ref::conv2d_backward_data(g, dy.data(), w.data(), dx_naive.data(), acc);
      EXPECT_TRUE(testing::all_close(dx_fast, dx_naive, 1e-5, 1e-6 * terms_dx)) << "conv2d backward data " << what;

      const Tensor dw0 = Tensor::randn(w.shape(), gen), db0 = Tensor::randn({g.f}, gen);
      Tensor dw_fast = dw0.clone(), dw_naive = dw0.clone(), db_fast = db0.clone(), db_naive = db0.clone();
      kernels::conv2d_backward_weights(g, x.data(), dy.data(), dw_fast.data(), acc, with_bias ? db_fast.data() : nullptr,
                                       !acc);
      kernels::ref::conv2d_backward_weights(g, x.data(), dy.data(), dw_naive.data(), acc,
                                            with_bias ? db_naive.data() : nullptr, !acc);
      EXPECT_TRUE(testing::all_close(dw_fast, dw_naive, 1e-5, 1e-6 * terms_w)) << "conv2d backward weights " << what;
      EXPECT_TRUE(testing::all_close(db_fast, db_naive, 1e-5, 1e-6 * terms_w)) << "conv2d backward bias " << what;
    }
  }
}

// The input gradient of a narrow convolution in our own loops (conv_narrow.cpp, C = 6 and
// KW = 5 on a CPU with AVX-512) against the naive ones: rows of 1 to 4 pixels past the last
// group of four (OW 5 to 9), one to several kernel rows, 1 to 33 filters, both modes, images
// split over the threads; and a NaN in dy reaches exactly the cells of dx its windows reach.
TEST(ConvKernel, NarrowBackwardDataMatchesNaive) {
  Generator gen(27);
  const std::vector<Window> windows = {{2, 14, 14, 6, 16, 5, 5, 1, 1, false}, {3, 9, 13, 6, 1, 5, 5, 1, 1, false},
                                       {1, 5, 11, 6, 33, 1, 5, 1, 1, false},  {2, 8, 10, 6, 7, 3, 5, 1, 1, false},
                                       {2, 12, 12, 6, 5, 5, 5, 1, 1, false},  {40, 14, 14, 6, 16, 5, 5, 1, 1, false}};
  for (const Window& s : windows) {
    const kernels::Geometry2d g = geometry(s);
    if (!kernels::narrow_backward_data_applies(g)) GTEST_SKIP() << "no AVX-512: oneDNN's path, checked above";
    const Tensor w = Tensor::randn({g.kh, g.kw, g.c, g.f}, gen);
    Tensor dy = Tensor::randn({g.n, g.oh, g.ow, g.f}, gen);
    for (bool acc : {false, true}) {
      const Tensor dx0 = Tensor::randn({g.n, g.h, g.w, g.c}, gen);
      Tensor fast = dx0.clone(), naive = dx0.clone();
      kernels::conv2d_backward_data(g, dy.data(), w.data(), fast.data(), acc);
      kernels::ref::conv2d_backward_data(g, dy.data(), w.data(), naive.data(), acc);
      EXPECT_TRUE(testing::all_close(fast, naive, 1e-5, 1e-6 * static_cast<double>(g.kh * g.kw * g.f)))
          << describe(g) << " accumulate=" << acc;
    }
    // One NaN at the last image's last pixel: its KH x KW window of dx turns NaN, nothing else.
    dy.data()[dy.numel() - 1] = NAN;
    Tensor fast = Tensor::empty({g.n, g.h, g.w, g.c}), naive = fast.clone();
    kernels::conv2d_backward_data(g, dy.data(), w.data(), fast.data(), false);
    kernels::ref::conv2d_backward_data(g, dy.data(), w.data(), naive.data(), false);
    int64_t nan = 0;
    for (int64_t k = 0; k < fast.numel(); ++k) {
      ASSERT_EQ(std::isnan(fast.data()[k]), std::isnan(naive.data()[k])) << describe(g) << " at " << k;
      nan += std::isnan(fast.data()[k]) ? 1 : 0;
    }
    EXPECT_EQ(nan, g.kh * g.kw * g.c) << describe(g);
  }
}

// A one-channel convolution in our own loops (conv_narrow.cpp, F = 6 and KW = 5 on a CPU with
// AVX-512) against the naive ones: forward with and without bias and relu, kernel and bias
// gradients written and accumulated; both paddings, rows of 1 to 33 pixels (partial and
// several vectors of 16), one to several kernel rows, batches split over the threads.
TEST(ConvKernel, OneChannelMatchesNaive) {
  Generator gen(28);
  const std::vector<Window> windows = {{32, 28, 28, 1, 6, 5, 5, 1, 1, true}, {3, 9, 5, 1, 6, 5, 5, 1, 1, true},
                                       {2, 7, 33, 1, 6, 3, 5, 1, 1, false}, {2, 6, 17, 1, 6, 1, 5, 1, 1, true},
                                       {1, 5, 20, 1, 6, 5, 5, 1, 1, false}, {80, 12, 16, 1, 6, 5, 5, 1, 1, true}};
  for (const Window& s : windows) {
    const kernels::Geometry2d g = geometry(s);
    if (!kernels::one_channel_applies(g)) GTEST_SKIP() << "no AVX-512: oneDNN's path, checked above";
    const Tensor x = Tensor::randn({g.n, g.h, g.w, 1}, gen), w = Tensor::randn({g.kh, g.kw, 1, g.f}, gen);
    const Tensor bias = Tensor::randn({g.f}, gen), dy = Tensor::randn({g.n, g.oh, g.ow, g.f}, gen);
    const double terms_w = static_cast<double>(g.n * g.oh * g.ow);
    for (int round = 0; round < 2; ++round) {
      const bool with_bias = round == 0, acc = round == 1;
      const auto act = round == 0 ? kernels::Eltwise::relu : kernels::Eltwise::none;
      const std::string what = describe(g) + " round " + std::to_string(round);
      Tensor fast = Tensor::empty({g.n, g.oh, g.ow, g.f}), naive = fast.clone();
      kernels::conv2d_forward(g, x.data(), w.data(), with_bias ? bias.data() : nullptr, fast.data(), act);
      kernels::ref::conv2d_forward(g, x.data(), w.data(), with_bias ? bias.data() : nullptr, naive.data(), act);
      EXPECT_TRUE(testing::all_close(fast, naive, 1e-5, 1e-5)) << "forward " << what;
      const Tensor dw0 = Tensor::randn(w.shape(), gen), db0 = Tensor::randn({g.f}, gen);
      Tensor dw_fast = dw0.clone(), dw_naive = dw0.clone(), db_fast = db0.clone(), db_naive = db0.clone();
      kernels::conv2d_backward_weights(g, x.data(), dy.data(), dw_fast.data(), acc, with_bias ? db_fast.data() : nullptr,
                                       !acc);
      kernels::ref::conv2d_backward_weights(g, x.data(), dy.data(), dw_naive.data(), acc,
                                            with_bias ? db_naive.data() : nullptr, !acc);
      EXPECT_TRUE(testing::all_close(dw_fast, dw_naive, 1e-5, 1e-6 * terms_w)) << "kernel gradient " << what;
      EXPECT_TRUE(testing::all_close(db_fast, db_naive, 1e-5, 1e-6 * terms_w)) << "bias gradient " << what;
    }
  }
}

// The convolution's relu keeps NaN, as torch.relu's (oneDNN's post-op would give 0): a first
// layer's (applied as the output leaves oneDNN's channel blocks), a later one's, and LeNet's first
// on a batch large enough to be split over the threads. The first image is all NaN; the others
// match the naive loops.
TEST(ConvKernel, ReluKeepsNaN) {
  Generator gen(26);
  for (const Window& s : {Window{2, 9, 9, 1, 6, 5, 5, 1, 1, true}, Window{2, 8, 8, 6, 16, 5, 5, 1, 1, false},
                          Window{24, 28, 28, 1, 6, 5, 5, 1, 1, true}}) {
    const kernels::Geometry2d g = geometry(s);
    Tensor x = Tensor::randn({g.n, g.h, g.w, g.c}, gen);
    std::fill_n(x.data(), g.h * g.w * g.c, NAN);
    const Tensor w = Tensor::randn({g.kh, g.kw, g.c, g.f}, gen), bias = Tensor::randn({g.f}, gen);
    Tensor y = Tensor::empty({g.n, g.oh, g.ow, g.f}), naive = y.clone();
    kernels::conv2d_forward(g, x.data(), w.data(), bias.data(), y.data(), kernels::Eltwise::relu);
    kernels::ref::conv2d_forward(g, x.data(), w.data(), bias.data(), naive.data(), kernels::Eltwise::relu);
    const int64_t per_image = g.oh * g.ow * g.f;
    for (int64_t k = 0; k < per_image; ++k) ASSERT_TRUE(std::isnan(y.data()[k])) << describe(g) << " at " << k;
    const Tensor rest = y.slice(0, 1, g.n), naive_rest = naive.slice(0, 1, g.n);
    EXPECT_TRUE(testing::all_close(rest, naive_rest, 1e-5, 1e-5)) << describe(g);
  }
}

// Values a random permutation apart, so no max-pool window has a tie.
Tensor distinct(const Shape& shape, Generator& gen) {
  std::vector<float> v(static_cast<size_t>(shape.numel()));
  std::iota(v.begin(), v.end(), 0.f);
  for (size_t i = v.size(); i > 1; --i) std::swap(v[i - 1], v[gen.below(i)]);
  for (float& e : v) e = e / static_cast<float>(v.size()) - 0.5f;
  return Tensor::from(v, shape);
}

TEST(PoolKernel, OneDnnMatchesNaive) {
  Generator gen(22);
  for (const Window& s : kWindows) {
    kernels::Geometry2d g = geometry({s.n, s.h, s.w, s.c, s.c, s.kh, s.kw, s.sh, s.sw, s.same});
    if (g.oh < 1 || g.ow < 1) continue;
    const Tensor x = distinct({g.n, g.h, g.w, g.c}, gen), dy = Tensor::randn({g.n, g.oh, g.ow, g.c}, gen);
    for (bool acc : {false, true}) {
      const std::string what = describe(g) + " accumulate=" + std::to_string(acc);
      Tensor y_fast = Tensor::empty(dy.shape()), y_naive = Tensor::empty(dy.shape());
      Tensor workspace = Tensor::empty({static_cast<int64_t>(kernels::max_pool2d_workspace_bytes(g) + 3) / 4});
      kernels::max_pool2d_forward(g, x.data(), y_fast.data(), workspace.data());
      kernels::ref::max_pool2d_forward(g, x.data(), y_naive.data());
      EXPECT_TRUE(testing::all_close(y_fast, y_naive, 0, 0)) << "max_pool2d forward " << what;
      Tensor inference = Tensor::empty(dy.shape());
      kernels::max_pool2d_forward(g, x.data(), inference.data(), nullptr);
      EXPECT_TRUE(testing::all_close(inference, y_naive, 0, 0)) << "max_pool2d inference " << what;
      const Tensor dx0 = Tensor::randn(x.shape(), gen);
      Tensor dx_fast = dx0.clone(), dx_naive = dx0.clone();
      kernels::max_pool2d_backward(g, dy.data(), workspace.data(), dx_fast.data(), acc);
      kernels::ref::max_pool2d_backward(g, x.data(), dy.data(), dx_naive.data(), acc);
      EXPECT_TRUE(testing::all_close(dx_fast, dx_naive, 1e-6, 1e-6)) << "max_pool2d backward " << what;

      kernels::avg_pool2d_forward(g, x.data(), y_fast.data());
      kernels::ref::avg_pool2d_forward(g, x.data(), y_naive.data());
      EXPECT_TRUE(testing::all_close(y_fast, y_naive, 1e-5, 1e-6)) << "avg_pool2d forward " << what;
      dx_fast = dx0.clone(), dx_naive = dx0.clone();
      kernels::avg_pool2d_backward(g, dy.data(), dx_fast.data(), acc);
      kernels::ref::avg_pool2d_backward(g, dy.data(), dx_naive.data(), acc);
      EXPECT_TRUE(testing::all_close(dx_fast, dx_naive, 1e-5, 1e-6)) << "avg_pool2d backward " << what;
    }
  }
}

// Max pooling on a channel count oneDNN does not take (not a multiple of 16), large enough to
// run on every thread: non-overlapping and overlapping windows (the backward of overlapping ones
// runs on one thread), with and without padding.
TEST(PoolKernel, OwnMaxPoolThreadedMatchesNaive) {
  Generator gen(24);
  for (const Window& s : {Window{2, 150, 150, 24, 24, 2, 2, 2, 2, false}, Window{2, 150, 151, 24, 24, 3, 3, 2, 1, true}}) {
    const kernels::Geometry2d g = geometry(s);
    ASSERT_GE(g.n * g.h * g.w * g.c, 1 << 20);
    const Tensor x = distinct({g.n, g.h, g.w, g.c}, gen), dy = Tensor::randn({g.n, g.oh, g.ow, g.c}, gen);
    Tensor y_fast = Tensor::empty(dy.shape()), y_naive = Tensor::empty(dy.shape());
    Tensor workspace = Tensor::empty({static_cast<int64_t>(kernels::max_pool2d_workspace_bytes(g) + 3) / 4});
    kernels::max_pool2d_forward(g, x.data(), y_fast.data(), workspace.data());
    kernels::ref::max_pool2d_forward(g, x.data(), y_naive.data());
    EXPECT_TRUE(testing::all_close(y_fast, y_naive, 0, 0)) << describe(g);
    Tensor dx_fast = Tensor::empty(x.shape()), dx_naive = Tensor::empty(x.shape());
    kernels::max_pool2d_backward(g, dy.data(), workspace.data(), dx_fast.data(), false);
    kernels::ref::max_pool2d_backward(g, x.data(), dy.data(), dx_naive.data(), false);
    EXPECT_TRUE(testing::all_close(dx_fast, dx_naive, 1e-6, 1e-6)) << describe(g);
  }
}

// 2x2 windows at stride 2 on 1-15 channels (pool.cpp's vectors of C lanes): every channel count
// at LeNet's size, and odd sizes whose last row or column no window covers, or whose rows hold
// too few columns for a vector (a 2x2 image: one scalar column). Values from {-1, 0, 1}, so most
// windows tie: the first cell wins, forward and backward, as in the naive loops.
TEST(PoolKernel, TwoByTwoMatchesNaive) {
  Generator gen(25);
  std::vector<Window> windows;
  for (int64_t c = 1; c < 16; ++c) windows.push_back({3, 28, 28, c, c, 2, 2, 2, 2, false});
  for (int64_t c : {1, 6, 9, 15})
    for (auto [h, w] : {std::pair<int64_t, int64_t>{7, 9}, {5, 4}, {2, 2}, {3, 33}, {4, 6}})
      for (bool same : {false, true}) windows.push_back({2, h, w, c, c, 2, 2, 2, 2, same});
  for (const Window& s : windows) {
    const kernels::Geometry2d g = geometry(s);
    Tensor x = Tensor::empty({g.n, g.h, g.w, g.c});
    for (int64_t k = 0; k < x.numel(); ++k) x.data()[k] = static_cast<float>(gen.below(3)) - 1.f;
    const Tensor dy = Tensor::randn({g.n, g.oh, g.ow, g.c}, gen);
    Tensor y_fast = Tensor::empty(dy.shape()), y_naive = Tensor::empty(dy.shape());
    Tensor workspace = Tensor::empty({static_cast<int64_t>(kernels::max_pool2d_workspace_bytes(g) + 3) / 4});
    kernels::max_pool2d_forward(g, x.data(), y_fast.data(), workspace.data());
    kernels::ref::max_pool2d_forward(g, x.data(), y_naive.data());
    EXPECT_TRUE(testing::all_close(y_fast, y_naive, 0, 0)) << "forward " << describe(g);
    Tensor y_build = Tensor::empty(dy.shape()), workspace_build = Tensor::empty(workspace.shape());
    kernels::max_pool2d_forward_build_target(g, x.data(), y_build.data(), workspace_build.data());
    EXPECT_TRUE(testing::all_close(y_build, y_naive, 0, 0)) << "forward at the build's vector width " << describe(g);
    EXPECT_EQ(std::memcmp(workspace.data(), workspace_build.data(), kernels::max_pool2d_workspace_bytes(g)), 0)
        << "winners at the build's vector width " << describe(g);
    for (bool acc : {false, true}) {
      const Tensor dx0 = Tensor::randn(x.shape(), gen);
      Tensor dx_fast = dx0.clone(), dx_naive = dx0.clone();
      kernels::max_pool2d_backward(g, dy.data(), workspace.data(), dx_fast.data(), acc);
      kernels::ref::max_pool2d_backward(g, x.data(), dy.data(), dx_naive.data(), acc);
      EXPECT_TRUE(testing::all_close(dx_fast, dx_naive, 1e-6, 1e-6)) << "backward " << describe(g) << " accumulate=" << acc;
    }
  }
}

// conv2d with a fused activation equals the composition, forward and backward, and passes gradcheck.
TEST(Conv2d, FusedActivationMatchesComposition) {
  Generator gen(23);
  const Tensor x = Tensor::randn({2, 5, 6, 3}, gen), w = Tensor::randn({3, 3, 3, 4}, gen), b = Tensor::randn({4}, gen);
  const std::vector<std::pair<FusedActivation, Tensor (*)(const Tensor&)>> acts = {
      {FusedActivation::relu, [](const Tensor& t) { return relu(t); }},
      {FusedActivation::sigmoid, [](const Tensor& t) { return sigmoid(t); }},
      {FusedActivation::tanh, [](const Tensor& t) { return lamina::tanh(t); }}};
  for (const auto& [act, f] : acts) {
    std::vector<Tensor> a = {x.clone().requires_grad_(), w.clone().requires_grad_(), b.clone().requires_grad_()};
    std::vector<Tensor> c = {x.clone().requires_grad_(), w.clone().requires_grad_(), b.clone().requires_grad_()};
    const Conv2DOptions fused_options{.padding = Padding::same, .act = act};
    Tensor fused = conv2d(a[0], a[1], a[2], fused_options);
    Tensor composed = f(conv2d(c[0], c[1], c[2], {.padding = Padding::same}));
    EXPECT_TRUE(testing::all_close(fused, composed, 1e-5, 1e-6)) << static_cast<int>(act);
    const Tensor dy = Tensor::randn(fused.shape(), gen);
    fused.backward(dy);
    composed.backward(dy);
    for (size_t i = 0; i < 3; ++i)
      EXPECT_TRUE(testing::all_close(a[i].grad(), c[i].grad(), 1e-5, 1e-5)) << static_cast<int>(act) << " input " << i;
    if (act == FusedActivation::relu) continue;  // relu's kink: covered by the comparison above
    Fn fn = [o = fused_options](auto& in) { return conv2d(in[0], in[1], in[2], o); };
    EXPECT_TRUE(testing::gradcheck(fn, {x, w, b})) << static_cast<int>(act);
  }
}

// A tensor used twice gets the sum of both gradients (the kernels' accumulate paths).
TEST(CnnOps, GradientsAccumulateOverUses) {
  Generator gen(24);
  const Tensor x = Tensor::randn({2, 6, 5, 2}, gen), w = Tensor::randn({3, 3, 2, 3}, gen), b = Tensor::randn({3}, gen);
  const std::vector<std::pair<const char*, Fn>> ops = {
      {"conv2d", [](auto& in) { return conv2d(in[0], in[1], in[2], {.padding = Padding::same}); }},
      {"max_pool2d", [](auto& in) { return max_pool2d(in[0], 2, 1, Padding::same); }},
      {"avg_pool2d", [](auto& in) { return avg_pool2d(in[0], 3, 2, Padding::same); }},
      {"global_avg_pool2d", [](auto& in) { return global_avg_pool2d(in[0]); }},
      {"batch_norm", [](auto& in) { return batch_norm(in[0], in[2], in[2], Tensor::zeros({3}), Tensor::ones({3}), true); }},
  };
  for (const auto& [name, f] : ops) {
    const bool norm = std::string(name) == "batch_norm";
    const Tensor input = norm ? Tensor::randn({4, 3}, gen) : x;
    std::vector<Tensor> once = {input.clone().requires_grad_(), w.clone().requires_grad_(), b.clone().requires_grad_()};
    std::vector<Tensor> twice = {input.clone().requires_grad_(), w.clone().requires_grad_(), b.clone().requires_grad_()};
    Tensor y1 = f(once) * 2.f;
    Tensor y2 = f(twice) + f(twice);
    const Tensor dy = Tensor::randn(y1.shape(), gen);
    y1.backward(dy);
    y2.backward(dy);
    for (size_t i = 0; i < 3; ++i) {
      if (!once[i].grad().defined()) continue;
      EXPECT_TRUE(testing::all_close(twice[i].grad(), once[i].grad(), 1e-5, 1e-5)) << name << " input " << i;
    }
  }
}

TEST(BatchNorm, UpdatesMovingStatisticsAsKeras) {
  for (const char* name : {"batch_norm_train_2d", "batch_norm_train_4d"}) {
    auto f = testing::load_fixture(name);
    Tensor mm = f.at("x3").clone(), mv = f.at("x4").clone();
    batch_norm(f.at("x0"), f.at("x1"), f.at("x2"), mm, mv, true, 0.9f);  // momentum as make_fixtures.py
    EXPECT_TRUE(testing::all_close(mm, f.at("moving_mean"), 1e-5, 1e-6)) << name;
    EXPECT_TRUE(testing::all_close(mv, f.at("moving_var"), 1e-5, 1e-6)) << name;
    // Inference reads the moving statistics and leaves them alone.
    const Tensor mm_before = mm.clone(), mv_before = mv.clone();
    batch_norm(f.at("x0"), f.at("x1"), f.at("x2"), mm, mv, false);
    EXPECT_EQ(mm.to_vector(), mm_before.to_vector()) << name;
    EXPECT_EQ(mv.to_vector(), mv_before.to_vector()) << name;
  }
}

// Statistics in float partial sums stay exact enough when |mean| >> std and M is large.
TEST(BatchNorm, StatisticsPreciseForLargeMeans) {
  Generator gen(29);
  const Tensor x = Tensor::randn({4000, 7}, gen, 0.f, 0.01f) + 1000.f;
  Tensor mm = Tensor::zeros({7}), mv = Tensor::zeros({7});
  batch_norm(x, Tensor(), Tensor(), mm, mv, true, /*momentum=*/0.f);  // moving stats = batch stats
  for (int64_t j = 0; j < 7; ++j) {
    double s = 0, s2 = 0;
    for (int64_t i = 0; i < 4000; ++i) s += x.at({i, j});
    const double mean = s / 4000;
    for (int64_t i = 0; i < 4000; ++i) s2 += (x.at({i, j}) - mean) * (x.at({i, j}) - mean);
    EXPECT_NEAR(mm.at({j}), mean, 1e-4) << j;
    EXPECT_NEAR(mv.at({j}) / (s2 / 4000), 1.0, 1e-3) << j;
  }
}

TEST(BatchNorm, WithoutGammaOrBetaIsOneAndZero) {
  Generator gen(25);
  const Tensor x = Tensor::randn({5, 3}, gen) * 3.f + 1.f;
  for (bool training : {true, false}) {
    Tensor a = batch_norm(x, Tensor(), Tensor(), Tensor::zeros({3}), Tensor::full({3}, 2.f), training);
    Tensor b = batch_norm(x, Tensor::ones({3}), Tensor::zeros({3}), Tensor::zeros({3}), Tensor::full({3}, 2.f), training);
    EXPECT_EQ(a.to_vector(), b.to_vector()) << training;
  }
  // Training output: per channel mean 0 and (biased) variance var / (var + epsilon).
  Tensor y = batch_norm(x, Tensor(), Tensor(), Tensor::zeros({3}), Tensor::ones({3}), true);
  Tensor m = mean(y, 0), v = mean(square(y), 0);
  for (int64_t j = 0; j < 3; ++j) {
    EXPECT_NEAR(m.at({j}), 0.f, 1e-6);
    EXPECT_NEAR(v.at({j}), 1.f, 1e-2);
  }
}

// Dropout has no PyTorch fixture (the mask is random); these tests pin its properties instead.
TEST(Dropout, KeepsTheMeanAndScalesExactly) {
  Generator gen(26);
  const float rate = 0.3f, scale = 1.f / (1.f - rate);
  const Tensor x = Tensor::rand({200, 500}, gen, 0.5f, 1.5f);
  Generator g(7);
  Tensor y = dropout(x, rate, g, true);
  int64_t kept = 0;
  double sx = 0, sy = 0;
  for (int64_t i = 0; i < x.numel(); ++i) {
    const float xi = x.data()[i], yi = y.data()[i];
    ASSERT_TRUE(yi == 0.f || yi == xi * scale) << "element " << i << ": " << yi << " is neither 0 nor x * scale";
    kept += yi != 0.f;
    sx += xi, sy += yi;
  }
  const double n = static_cast<double>(x.numel());
  EXPECT_NEAR(static_cast<double>(kept) / n, 1.0 - rate, 4.0 * std::sqrt(rate * (1 - rate) / n));  // 4 sigma
  EXPECT_NEAR(sy / sx, 1.0, 0.01);
}

TEST(Dropout, GradientIsMaskTimesScale) {
  Generator gen(27);
  Tensor x = Tensor::rand({30, 40}, gen, 0.5f, 1.5f).requires_grad_();
  Generator g(8);
  Tensor y = dropout(x, 0.5f, g, true);
  const Tensor dy = Tensor::randn(y.shape(), gen);
  y.backward(dy);
  for (int64_t i = 0; i < x.numel(); ++i) {
    const float mask_scale = y.data()[i] / x.data()[i];  // 0 or exactly 2
    ASSERT_EQ(x.grad().data()[i], dy.data()[i] * mask_scale) << "element " << i;
  }
}

TEST(Dropout, InferenceIsIdentityAndSeedsRepeat) {
  Generator gen(28);
  const Tensor x = Tensor::randn({8, 16}, gen);
  Generator g(9);
  EXPECT_EQ(dropout(x, 0.5f, g, false).impl(), x.impl());  // the very same tensor
  EXPECT_EQ(dropout(x, 0.f, g, true).impl(), x.impl());
  Generator a(10), b(10);
  EXPECT_EQ(dropout(x, 0.4f, a, true).to_vector(), dropout(x, 0.4f, b, true).to_vector());
  EXPECT_NE(dropout(x, 0.4f, a, true).to_vector(), dropout(x, 0.4f, a, true).to_vector());  // the stream moves on
  EXPECT_THROW(dropout(x, 1.f, g, true), ValueError);
  EXPECT_THROW(dropout(x, -0.1f, g, true), ValueError);
}

TEST(CnnOps, ShapeErrorsNameOpAndShapes) {
  const Tensor img = Tensor::zeros({2, 4, 4, 3}), k = Tensor::zeros({3, 3, 3, 8});
  auto message = [](auto f) {
    try {
      f();
    } catch (const Error& e) {
      return std::string(e.what());
    }
    return std::string("no error");
  };
  EXPECT_EQ(message([&] { conv2d(Tensor::zeros({4, 4, 3}), k, Tensor()); }),
            "conv2d: expects images (N, H, W, C) (channels last), got (4, 4, 3); add a batch axis, or a channel axis "
            "with reshape");
  EXPECT_EQ(message([&] { conv2d(Tensor::zeros({2, 4, 4, 2}), k, Tensor()); }),
            "conv2d: x (2, 4, 4, 2) has 2 channels, kernel (3, 3, 3, 8) expects 3");
  EXPECT_EQ(message([&] { conv2d(img, k, Tensor::zeros({3})); }),
            "conv2d: bias (3) does not match the 8 filters of kernel (3, 3, 3, 8)");
  EXPECT_EQ(message([&] { conv2d(img, Tensor::zeros({5, 5, 3, 1}), Tensor()); }),
            "conv2d: the 5x5 window does not fit input (2, 4, 4, 3) with 'valid' padding (output 0x0); use padding "
            "'same' or a larger input");
  EXPECT_EQ(message([&] { max_pool2d(img, 2, 0); }), "max_pool2d: window 2x2 and strides 0x0 must be positive");
  EXPECT_EQ(message([&] { batch_norm(img, Tensor::ones({4}), Tensor(), Tensor::zeros({3}), Tensor::ones({3}), true); }),
            "batch_norm: gamma (4) does not match the 3 channels (last axis) of x (2, 4, 4, 3)");
  EXPECT_NO_THROW(conv2d(img, Tensor::zeros({5, 5, 3, 1}), Tensor(), {.padding = Padding::same}));
}

}  // namespace
}  // namespace lamina
