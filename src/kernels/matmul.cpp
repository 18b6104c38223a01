// oneDNN matmul glue: one primitive per (M, K, N, transposes, accumulate, bias), built on first
// use and cached per thread; memory objects are re-pointed, not rebuilt, on each call.
#include "kernels/matmul.hpp"

#include <cmath>
#include <map>
#include <tuple>

#include "kernels/dnnl_common.hpp"

namespace lamina::kernels {

namespace {

using namespace dnnl_glue;

struct MatmulPrimitive {
  dnnl::matmul prim;
  memory a, b, c, bias;
};

// (M, K, N, trans_a, trans_b, accumulate, bias, activation, threads): oneDNN fixes its parallel
// plan when the primitive is created, so the thread count is part of the key.
using Key = std::tuple<int64_t, int64_t, int64_t, bool, bool, bool, bool, Eltwise, int>;

MatmulPrimitive make(const Key& key) {
  const auto [m, k, n, ta, tb, acc, has_bias, act, threads] = key;
  Engine& e = cpu();
  const memory::desc a_md({m, k}, memory::data_type::f32, ta ? memory::dims{1, m} : memory::dims{k, 1});
  const memory::desc b_md({k, n}, memory::data_type::f32, tb ? memory::dims{1, k} : memory::dims{n, 1});
  const memory::desc c_md({m, n}, memory::data_type::f32, memory::dims{n, 1});
  dnnl::primitive_attr attr;
  dnnl::post_ops ops;
  if (acc) ops.append_sum(1.f);
  if (act != Eltwise::none) {
    const auto alg = act == Eltwise::relu      ? dnnl::algorithm::eltwise_relu
                     : act == Eltwise::sigmoid ? dnnl::algorithm::eltwise_logistic
                                               : dnnl::algorithm::eltwise_tanh;
    ops.append_eltwise(1.f, alg, 0.f, 0.f);
  }
  attr.set_post_ops(ops);
  const memory::desc bias_md({1, n}, memory::data_type::f32, memory::dims{n, 1});
  const auto desc = has_bias ? dnnl::matmul::desc(a_md, b_md, bias_md, c_md) : dnnl::matmul::desc(a_md, b_md, c_md);
  const dnnl::matmul::primitive_desc pd(desc, attr, e.engine);
  return {dnnl::matmul(pd), memory(a_md, e.engine, nullptr), memory(b_md, e.engine, nullptr),
          memory(c_md, e.engine, nullptr), memory(bias_md, e.engine, nullptr)};
}

void run_matmul(const float* a, const float* b, float* c, int64_t m, int64_t k, int64_t n, bool trans_a,
                bool trans_b, bool accumulate, const float* bias, Eltwise act, int threads);

// The threading policy, measured on this 2-core machine (oneDNN 2.6, min of repeated runs):
//   in isolation, 32x784x128 (6.4 MFLOP) takes 31 us on 1 thread, 21 us on 2; 32x128x10 takes
//   1.1 us on 1, 5.1 us on 2 (waking a thread costs ~4 us).
//   In a training step, though, a second thread also moves every buffer it touches between the
//   two cores' caches: the MNIST-MLP step (two 6.4 MFLOP products) takes 110 us on 1 thread and
//   150 us on 2, while the wide MLP's 103 MFLOP products gain (509 -> 297 us forward).
// So products under 20 MFLOP stay on the calling thread (threads_for, as conv.cpp and pool.cpp).
constexpr double kParallelFlops = 20e6;

// Products under this many FLOPs run in small_matmul (small_matmul.cpp), which costs nothing
// to set up where oneDNN takes 0.3 ms per primitive (5 ms for the first). Measured one thread,
// x86-64-v3 build with its AVX-512 path (bench_micro matmul_path, median us, oneDNN / ours):
//   digits 128x64x64 5.3 / 5.1, its dW 64x128x64 5.8 / 5.2, dX 128x10x64 1.3 / 1.2;
//   mnist 32x784x128 32.7 / 32.0, its dW 784x32x128 32.0 / 30.2; batch 1 1x784x128 4.1 / 4.0;
//   but 10 columns: 128x64x10 1.8 / 3.3 (2.2 since its AVX-512 entry is tuned for an AVX-512
//   CPU), 32x128x10 1.1 / 2.1; LeNet 64x400x120 32.6 / 37.5.
// 4 MFLOP takes the digits MLP whole (with its 359-row evaluation, 2.9 MFLOP), LeNet's small
// layers and every batch-1 prediction, and leaves the 6 MFLOP products to oneDNN.
constexpr double kSmallMatmulFlops = 4e6;

}  // namespace

void matmul(const float* a, const float* b, float* c, int64_t m, int64_t k, int64_t n, bool trans_a,
            bool trans_b, bool accumulate, const float* bias, Eltwise act) {
  const double flops = 2.0 * static_cast<double>(m) * static_cast<double>(k) * static_cast<double>(n);
  if (flops < kSmallMatmulFlops || k == 0)  // oneDNN refuses K = 0
    return small_matmul(a, b, c, m, k, n, trans_a, trans_b, accumulate, bias, act);
  onednn_matmul(a, b, c, m, k, n, trans_a, trans_b, accumulate, bias, act);
}

void onednn_matmul(const float* a, const float* b, float* c, int64_t m, int64_t k, int64_t n, bool trans_a,
                   bool trans_b, bool accumulate, const float* bias, Eltwise act) {
  if (m == 0 || n == 0) return;
  if (k == 0) return ref::matmul(a, b, c, m, k, n, trans_a, trans_b, accumulate, bias, act);  // oneDNN refuses K = 0
  const double flops = 2.0 * static_cast<double>(m) * static_cast<double>(k) * static_cast<double>(n);
  const int threads = threads_for(flops, kParallelFlops);
  with_threads(threads, [&] { run_matmul(a, b, c, m, k, n, trans_a, trans_b, accumulate, bias, act, threads); });
}

namespace {

void run_matmul(const float* a, const float* b, float* c, int64_t m, int64_t k, int64_t n, bool trans_a,
                bool trans_b, bool accumulate, const float* bias, Eltwise act, int threads) {
  static thread_local std::map<Key, MatmulPrimitive> cache;
  const Key key{m, k, n, trans_a, trans_b, accumulate, bias != nullptr, act, threads};
  auto it = cache.find(key);
  if (it == cache.end()) it = cache.emplace(key, make(key)).first;
  MatmulPrimitive& p = it->second;
  p.a.set_data_handle(const_cast<float*>(a));
  p.b.set_data_handle(const_cast<float*>(b));
  p.c.set_data_handle(c);
  Engine& e = cpu();
  if (bias) {
    p.bias.set_data_handle(const_cast<float*>(bias));
    p.prim.execute(e.stream, {{DNNL_ARG_SRC, p.a}, {DNNL_ARG_WEIGHTS, p.b}, {DNNL_ARG_BIAS, p.bias}, {DNNL_ARG_DST, p.c}});
  } else {
    p.prim.execute(e.stream, {{DNNL_ARG_SRC, p.a}, {DNNL_ARG_WEIGHTS, p.b}, {DNNL_ARG_DST, p.c}});
  }
  e.stream.wait();
}

}  // namespace

namespace ref {

void matmul(const float* a, const float* b, float* c, int64_t m, int64_t k, int64_t n, bool trans_a,
            bool trans_b, bool accumulate, const float* bias, Eltwise act) {
  for (int64_t i = 0; i < m; ++i) {
    for (int64_t j = 0; j < n; ++j) {
      double acc = (accumulate ? c[i * n + j] : 0.0) + (bias ? bias[j] : 0.0);
      for (int64_t p = 0; p < k; ++p) {
        const float av = trans_a ? a[p * m + i] : a[i * k + p];
        const float bv = trans_b ? b[j * k + p] : b[p * n + j];
        acc += static_cast<double>(av) * bv;
      }
      switch (act) {
        case Eltwise::none: break;
        case Eltwise::relu: acc = acc < 0.0 ? 0.0 : acc; break;
        case Eltwise::sigmoid: acc = 1.0 / (1.0 + std::exp(-acc)); break;
        case Eltwise::tanh: acc = std::tanh(acc); break;
      }
      c[i * n + j] = static_cast<float>(acc);
    }
  }
}

}  // namespace ref

}  // namespace lamina::kernels
