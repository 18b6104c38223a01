// oneDNN matmul glue: one primitive per (M, K, N, transposes, accumulate, bias), built on first
// use and cached per thread; memory objects are re-pointed, not rebuilt, on each call.
#include "kernels/matmul.hpp"

#include <algorithm>
#include <map>
#include <tuple>

#include <dnnl.hpp>

namespace lamina::kernels {

namespace {

using dnnl::memory;

struct Engine {
  dnnl::engine engine{dnnl::engine::kind::cpu, 0};
  dnnl::stream stream{engine};
};

Engine& cpu() {
  static thread_local Engine e;
  return e;
}

struct MatmulPrimitive {
  dnnl::matmul prim;
  memory a, b, c, bias;
};

using Key = std::tuple<int64_t, int64_t, int64_t, bool, bool, bool, bool>;

MatmulPrimitive make(const Key& key) {
  const auto [m, k, n, ta, tb, acc, has_bias] = key;
  Engine& e = cpu();
  const memory::desc a_md({m, k}, memory::data_type::f32, ta ? memory::dims{1, m} : memory::dims{k, 1});
  const memory::desc b_md({k, n}, memory::data_type::f32, tb ? memory::dims{1, k} : memory::dims{n, 1});
  const memory::desc c_md({m, n}, memory::data_type::f32, memory::dims{n, 1});
  dnnl::primitive_attr attr;
  if (acc) {
    dnnl::post_ops ops;
    ops.append_sum(1.f);
    attr.set_post_ops(ops);
  }
  const memory::desc bias_md({1, n}, memory::data_type::f32, memory::dims{n, 1});
  const auto desc = has_bias ? dnnl::matmul::desc(a_md, b_md, bias_md, c_md) : dnnl::matmul::desc(a_md, b_md, c_md);
  const dnnl::matmul::primitive_desc pd(desc, attr, e.engine);
  return {dnnl::matmul(pd), memory(a_md, e.engine, nullptr), memory(b_md, e.engine, nullptr),
          memory(c_md, e.engine, nullptr), memory(bias_md, e.engine, nullptr)};
}

}  // namespace

void matmul(const float* a, const float* b, float* c, int64_t m, int64_t k, int64_t n, bool trans_a,
            bool trans_b, bool accumulate, const float* bias) {
  if (m == 0 || n == 0) return;
  if (k == 0) {  // oneDNN refuses K = 0; the product is empty
    for (int64_t i = 0; i < m; ++i)
      for (int64_t j = 0; j < n; ++j) c[i * n + j] = (accumulate ? c[i * n + j] : 0.f) + (bias ? bias[j] : 0.f);
    return;
  }
  static thread_local std::map<Key, MatmulPrimitive> cache;
  const Key key{m, k, n, trans_a, trans_b, accumulate, bias != nullptr};
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

namespace ref {

void matmul(const float* a, const float* b, float* c, int64_t m, int64_t k, int64_t n, bool trans_a,
            bool trans_b, bool accumulate, const float* bias) {
  for (int64_t i = 0; i < m; ++i) {
    for (int64_t j = 0; j < n; ++j) {
      double acc = (accumulate ? c[i * n + j] : 0.0) + (bias ? bias[j] : 0.0);
      for (int64_t p = 0; p < k; ++p) {
        const float av = trans_a ? a[p * m + i] : a[i * k + p];
        const float bv = trans_b ? b[j * k + p] : b[p * n + j];
        acc += static_cast<double>(av) * bv;
      }
      c[i * n + j] = static_cast<float>(acc);
    }
  }
}

}  // namespace ref

}  // namespace lamina::kernels
