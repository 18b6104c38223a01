// Test helpers: PyTorch fixtures (tests/fixtures/*.bin, made by make_fixtures.py), numerical
// gradient checks and element-wise comparisons that print enough to debug from the log alone.
#pragma once

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <fstream>
#include <functional>
#include <map>
#include <sstream>
#include <string>
#include <vector>

#include "lamina/lamina.hpp"

// EXPECT_CONTAINS(message, "line 3"): the text holds the part.
#define EXPECT_CONTAINS(text, part) \
  EXPECT_NE(std::string(text).find(part), std::string::npos) << "'" << (text) << "' lacks '" << (part) << "'"

namespace lamina::testing {

// The message of the E thrown by f; a test failure (and "") if f throws nothing or another type.
template <typename E>
std::string error_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const E& e) {
    return e.what();
  } catch (const std::exception& e) {
    ADD_FAILURE() << "threw another exception: " << e.what();
    return "";
  }
  ADD_FAILURE() << "threw nothing";
  return "";
}


// Reads an LMFX fixture: "LMFX", u32 version, u32 count, then per tensor
// u32 name_len, name, u32 rank, i64 dims[rank], f32 data[numel] (little endian).
inline std::map<std::string, Tensor> load_fixture(const std::string& name) {
  const std::string path = std::string(LAMINA_FIXTURE_DIR) + "/" + name + ".bin";
  std::ifstream in(path, std::ios::binary);
  if (!in) throw IoError(path + ": cannot open fixture");
  auto read = [&](void* p, size_t n) {
    if (!in.read(static_cast<char*>(p), static_cast<std::streamsize>(n))) throw IoError(path + ": truncated");
  };
  char magic[4];
  uint32_t version = 0, count = 0;
  read(magic, 4);
  read(&version, 4);
  read(&count, 4);
  if (std::string(magic, 4) != "LMFX" || version != 1) throw IoError(path + ": not an LMFX v1 fixture");
  std::map<std::string, Tensor> out;
  for (uint32_t t = 0; t < count; ++t) {
    uint32_t len = 0, rank = 0;
    read(&len, 4);
    std::string key(len, '\0');
    read(key.data(), len);
    read(&rank, 4);
    std::vector<int64_t> dims(rank);
    read(dims.data(), rank * sizeof(int64_t));
    Tensor x = Tensor::empty(Shape(dims));
    read(x.data(), static_cast<size_t>(x.numel()) * sizeof(float));
    out.emplace(key, x);
  }
  return out;
}

// |actual - expected| <= atol + rtol * |expected| everywhere, else a failure that names the
// context, the worst element and the first pairs.
inline ::testing::AssertionResult all_close(const Tensor& actual, const Tensor& expected, double rtol,
                                            double atol) {
  if (actual.shape() != expected.shape())
    return ::testing::AssertionFailure() << "shape " << actual.shape() << " vs expected " << expected.shape();
  const int64_t n = actual.numel();
  const float *a = actual.data(), *e = expected.data();
  int64_t worst = -1, bad = 0;
  double worst_excess = 0.0, max_abs = 0.0;
  for (int64_t i = 0; i < n; ++i) {
    const double diff = std::fabs(static_cast<double>(a[i]) - e[i]);
    const double allowed = atol + rtol * std::fabs(static_cast<double>(e[i]));
    max_abs = std::max(max_abs, std::isnan(diff) ? INFINITY : diff);
    if (!(diff <= allowed)) {
      ++bad;
      const double excess = std::isnan(diff) ? INFINITY : diff - allowed;
      if (worst < 0 || excess > worst_excess) worst = i, worst_excess = excess;
    }
  }
  if (bad == 0) return ::testing::AssertionSuccess();
  std::ostringstream msg;
  msg << bad << " of " << n << " elements differ (rtol " << rtol << ", atol " << atol << "); max abs diff "
      << max_abs << "; worst at flat index " << worst << ": " << a[worst] << " vs expected " << e[worst]
      << "\n  first pairs (actual, expected):";
  for (int64_t i = 0; i < std::min<int64_t>(n, 6); ++i) msg << " (" << a[i] << ", " << e[i] << ")";
  return ::testing::AssertionFailure() << msg.str();
}

using Fn = std::function<Tensor(const std::vector<Tensor>&)>;

struct GradcheckOptions {
  double step = 1e-2;  // fourth-order central differences: error ~ step^4, rounding ~ eps/step
  double rtol = 2e-3, atol = 2e-3;
  std::vector<bool> check;  // which inputs to check; empty = all
};

// set_num_threads(n) for its scope; the caller's count comes back after it, a failed ASSERT too.
struct ThreadCount {
  int before = get_num_threads();
  explicit ThreadCount(int n) { set_num_threads(n); }
  ~ThreadCount() { set_num_threads(before); }
  ThreadCount(const ThreadCount&) = delete;
  ThreadCount& operator=(const ThreadCount&) = delete;
};

// A fit's history and weights (fitted, trained with `h` on x, y unshuffled in batches of
// `batch`) against the general path written out by hand on `hand`, a model with the same
// starting weights: per batch the forward, the loss, grad() and opt.apply_gradients. Each epoch's
// logged loss within 1e-5 of the hand loop's per-sample mean, each weight within 1e-4 / 1e-5.
inline void expect_fit_matches_hand_loop(const History& h, Model& fitted, Model& hand, const Loss& loss,
                                         Optimizer& opt, const Tensor& x, const Tensor& y, int64_t batch,
                                         int epochs) {
  const int64_t n = x.dim(0);
  for (int epoch = 0; epoch < epochs; ++epoch) {
    double total = 0;
    for (int64_t begin = 0; begin < n; begin += batch) {
      const int64_t end = std::min(begin + batch, n);
      const std::vector<Tensor> w = hand.trainable_weights();
      const Tensor l = loss(y.slice(0, begin, end), hand(x.slice(0, begin, end), true));
      total += l.item() * static_cast<double>(end - begin);
      opt.apply_gradients(grad(l, w), w);
    }
    EXPECT_NEAR(h.history.at("loss")[static_cast<size_t>(epoch)], total / static_cast<double>(n), 1e-5)
        << "epoch " << epoch;
  }
  const std::vector<Tensor> got = fitted.trainable_weights(), want = hand.trainable_weights();
  ASSERT_EQ(got.size(), want.size());
  for (size_t i = 0; i < got.size(); ++i) EXPECT_TRUE(all_close(got[i], want[i], 1e-4, 1e-5)) << "weight " << i;
}

// Compares backward() with central differences of L = sum(fn(inputs) * w) for a fixed random w.
inline ::testing::AssertionResult gradcheck(const Fn& fn, std::vector<Tensor> inputs, GradcheckOptions opt = {}) {
  Generator gen(1234);
  for (size_t i = 0; i < inputs.size(); ++i) {
    inputs[i] = inputs[i].clone();
    if (opt.check.empty() || opt.check[i]) inputs[i].requires_grad_();
  }
  Tensor y = fn(inputs);
  Tensor w = Tensor::randn(y.shape(), gen);
  y.backward(w);
  auto objective = [&]() {
    NoGradGuard no_grad;
    Tensor out = fn(inputs);
    double s = 0.0;
    for (int64_t k = 0; k < out.numel(); ++k) s += static_cast<double>(out.data()[k]) * w.data()[k];
    return s;
  };
  for (size_t i = 0; i < inputs.size(); ++i) {
    if (!inputs[i].requires_grad()) continue;
    Tensor analytic = inputs[i].grad().defined() ? inputs[i].grad() : Tensor::zeros(inputs[i].shape());
    Tensor numeric = Tensor::empty(inputs[i].shape());
    float* x = inputs[i].data();
    for (int64_t k = 0; k < inputs[i].numel(); ++k) {
      const float saved = x[k];
      double f[4];
      const double offsets[4] = {-2, -1, 1, 2};
      for (int o = 0; o < 4; ++o) {
        x[k] = static_cast<float>(saved + offsets[o] * opt.step);
        f[o] = objective();
      }
      x[k] = saved;
      numeric.data()[k] = static_cast<float>((f[0] - 8 * f[1] + 8 * f[2] - f[3]) / (12 * opt.step));
    }
    auto r = all_close(analytic, numeric, opt.rtol, opt.atol);
    if (!r) return ::testing::AssertionFailure() << "gradient of input " << i << " " << inputs[i].shape()
                                                 << " (analytic vs numeric): " << r.message();
  }
  return ::testing::AssertionSuccess();
}

// "x" + std::to_string(i) trips GCC 12's -Wrestrict false positive (GCC bug 105329).
inline std::string fixture_key(const char* prefix, size_t i) {
  std::string s = prefix;
  s += std::to_string(i);
  return s;
}

// An op's PyTorch fixture (make_fixtures*.py): inputs x0, x1, ..., output y, the seed dy, and dx<i>
// for each input that has a gradient.
struct OpFixture {
  std::map<std::string, Tensor> f;
  std::vector<Tensor> inputs;
  std::vector<bool> differentiable;  // a dx<i> is in the fixture
  bool any_grad = false;
  explicit OpFixture(const std::string& name) : f(load_fixture(name)) {
    for (size_t i = 0; f.count(fixture_key("x", i)); ++i) {
      inputs.push_back(f.at(fixture_key("x", i)));
      differentiable.push_back(f.count(fixture_key("dx", i)) > 0);
      any_grad = any_grad || differentiable.back();
    }
  }
};

// Forward and backward of fn against PyTorch (float64 reference, stored as float32): y, then each
// dx<i> after backward(dy). An op without any dx<i> must not record a gradient.
inline void expect_matches_pytorch(const std::string& name, const Fn& fn, double atol) {
  const OpFixture l(name);
  std::vector<Tensor> inputs;
  for (size_t i = 0; i < l.inputs.size(); ++i) {
    inputs.push_back(l.inputs[i].clone());
    if (l.differentiable[i]) inputs.back().requires_grad_();
  }
  Tensor y = fn(inputs);
  EXPECT_TRUE(all_close(y, l.f.at("y"), 1e-5, atol)) << name << " forward";
  if (!l.any_grad) {
    EXPECT_FALSE(y.requires_grad()) << name << ": no gradient expected";
    return;
  }
  y.backward(l.f.at("dy"));
  for (size_t i = 0; i < inputs.size(); ++i) {
    if (!l.differentiable[i]) continue;
    ASSERT_TRUE(inputs[i].grad().defined()) << name << ": no gradient reached input " << i;
    EXPECT_TRUE(all_close(inputs[i].grad(), l.f.at(fixture_key("dx", i)), 1e-5, atol)) << name << " backward, input " << i;
  }
}

}  // namespace lamina::testing
