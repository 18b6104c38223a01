// Elementwise selection and powers: where (three inputs that broadcast together), clamp, abs,
// pow with a float or a tensor exponent. Same-shape forms use detail::unary; the broadcast forms
// undo broadcasting in backward with the shared kernels::sum_to_into.
// where backward: da += sum_to(dY where cond, A), db += sum_to(dY where !cond, B).
// pow backward (as torch): dx = dY e x^(e-1) (0 where e == 0); de = dY x^e log x (0 where
// x == 0 and e >= 0).
#include <algorithm>
#include <array>
#include <cmath>
#include <string>
#include <vector>

#include "kernels/broadcast.hpp"
#include "lamina/ops.hpp"
#include "ops/op_helpers.hpp"

namespace lamina {

namespace {

// Up to three inputs broadcast to one output: per input, an element stride per output axis
// (0 where the input is stretched or lacks the axis).
struct Broadcast3 {
  Shape out;
  std::array<std::vector<int64_t>, 3> stride;
};

Broadcast3 broadcast3(const char* op, const std::array<const Shape*, 3>& in, const std::array<const char*, 3>& names) {
  int64_t r = 0;
  for (const Shape* s : in) r = std::max(r, s->rank());
  std::vector<int64_t> dims(static_cast<size_t>(r), 1);
  for (int64_t j = 0; j < r; ++j)
    for (size_t t = 0; t < 3; ++t) {
      const int64_t i = j - (r - in[t]->rank());
      const int64_t n = i >= 0 ? (*in[t])[i] : 1;
      auto& d = dims[static_cast<size_t>(j)];
      if (n != 1 && d != 1 && n != d) {
        std::string msg = std::string(op) + ": shapes of";
        const size_t used = names[2] ? 3 : 2;  // a null third name: a two-input op
        for (size_t u = 0; u < used; ++u)
          msg += std::string(u == 0 ? " " : u + 1 == used ? " and " : ", ") + names[u] + " " + in[u]->str();
        throw ShapeError(msg + " do not broadcast (axis " + std::to_string(j - r) + ": " + std::to_string(d) +
                         " vs " + std::to_string(n) + ")");
      }
      if (n != 1) d = n;
    }
  Broadcast3 b{Shape(dims), {}};
  for (size_t t = 0; t < 3; ++t) {
    b.stride[t].assign(static_cast<size_t>(r), 0);
    int64_t s = 1;
    for (int64_t i = in[t]->rank() - 1; i >= 0; --i) {
      const int64_t n = (*in[t])[i];
      if (n != 1) b.stride[t][static_cast<size_t>(i + r - in[t]->rank())] = s;
      s *= n;
    }
  }
  return b;
}

// f(o, i0, i1, i2) for every output element o, with the inputs' offsets.
template <class F>
void walk(const Broadcast3& b, F f) {
  const int64_t r = b.out.rank(), count = b.out.numel();
  if (count == 0) return;
  if (r == 0) return f(int64_t{0}, int64_t{0}, int64_t{0}, int64_t{0});
  const int64_t n = b.out[r - 1];
  const int64_t s0 = b.stride[0].back(), s1 = b.stride[1].back(), s2 = b.stride[2].back();
  std::vector<int64_t> idx(static_cast<size_t>(r), 0);
  std::array<int64_t, 3> off{0, 0, 0};
  for (int64_t o = 0; o < count; o += n) {
    for (int64_t i = 0; i < n; ++i) f(o + i, off[0] + i * s0, off[1] + i * s1, off[2] + i * s2);
    for (int64_t a = r - 2; a >= 0; --a) {  // odometer over all output axes but the last
      const auto u = static_cast<size_t>(a);
      for (size_t t = 0; t < 3; ++t) off[t] += b.stride[t][u];
      if (++idx[u] < b.out[a]) break;
      for (size_t t = 0; t < 3; ++t) off[t] -= b.stride[t][u] * idx[u];
      idx[u] = 0;
    }
  }
}

// dX (+)= sum_to(t, X's shape), where t has the output's shape (and may be reused as scratch).
void add_reduced(BackwardContext& g, size_t which, const Tensor& t) {
  if (g.input(which).shape() == t.shape()) {
    const auto dx = g.dx_out(which);
    if (dx.accumulate) kernels::add_into(t.data(), dx.data, t.numel());
    else std::copy_n(t.data(), t.numel(), dx.data);
  } else {
    Tensor& dx = g.dx(which);
    kernels::sum_to_into(t.data(), t.shape(), dx.data(), dx.shape());
  }
}

}  // namespace

Tensor where(const Tensor& cond, const Tensor& a, const Tensor& b) {
  Broadcast3 bc = broadcast3("where", {&cond.shape(), &a.shape(), &b.shape()}, {"cond", "a", "b"});
  Tensor y = Tensor::empty(bc.out);
  const float *pc = cond.data(), *pa = a.data(), *pb = b.data();
  float* py = y.data();
  walk(bc, [&](int64_t o, int64_t ic, int64_t ia, int64_t ib) { py[o] = pc[ic] != 0.f ? pa[ia] : pb[ib]; });
  record("where", y, {a, b, cond}, [bc = std::move(bc)](BackwardContext& g) {
    const float *pc = g.input(2).data(), *dy = g.dy().data();
    for (size_t which : {size_t{0}, size_t{1}}) {
      if (!g.needs(which)) continue;
      Tensor t = Tensor::empty(bc.out);
      float* pt = t.data();
      const bool chosen_when = which == 0;  // a is chosen where cond != 0
      walk(bc, [&](int64_t o, int64_t ic, int64_t, int64_t) { pt[o] = (pc[ic] != 0.f) == chosen_when ? dy[o] : 0.f; });
      add_reduced(g, which, t);
    }
  });
  return y;
}

Tensor clamp(const Tensor& x, float lo, float hi) {
  if (std::isnan(lo) || std::isnan(hi))
    throw ValueError("clamp: bounds must not be NaN, got [" + std::to_string(lo) + ", " + std::to_string(hi) + "]");
  // std::min(std::max(v, lo), hi) keeps a NaN v (every comparison with it is false).
  return detail::unary("clamp", x, [lo, hi](float v) { return std::min(std::max(v, lo), hi); },
                       [lo, hi](float v, float, float d) { return v >= lo && v <= hi ? d : 0.f; });
}

Tensor abs(const Tensor& x) {
  return detail::unary("abs", x, [](float v) { return std::fabs(v); },
                       [](float v, float, float d) { return v > 0.f ? d : v < 0.f ? -d : 0.f; });
}

Tensor pow(const Tensor& x, float p) {
  return detail::unary("pow", x, [p](float v) { return std::pow(v, p); },
                       [p](float v, float, float d) { return p == 0.f ? 0.f : d * p * std::pow(v, p - 1.f); });
}

Tensor pow(const Tensor& x, const Tensor& e) {
  // The third slot repeats x: broadcast3 and walk serve two inputs as well.
  Broadcast3 bc = broadcast3("pow", {&x.shape(), &e.shape(), &x.shape()}, {"x", "e", nullptr});
  Tensor y = Tensor::empty(bc.out);
  const float *px = x.data(), *pe = e.data();
  float* py = y.data();
  walk(bc, [&](int64_t o, int64_t ix, int64_t ie, int64_t) { py[o] = std::pow(px[ix], pe[ie]); });
  record("pow", y, {x, e}, [bc = std::move(bc)](BackwardContext& g) {
    const float *px = g.input(0).data(), *pe = g.input(1).data(), *py = g.output().data(), *dy = g.dy().data();
    Tensor t = Tensor::empty(bc.out);
    float* pt = t.data();
    if (g.needs(0)) {
      walk(bc, [&](int64_t o, int64_t ix, int64_t ie, int64_t) {
        pt[o] = pe[ie] == 0.f ? 0.f : dy[o] * pe[ie] * std::pow(px[ix], pe[ie] - 1.f);
      });
      add_reduced(g, 0, t);
    }
    if (g.needs(1)) {
      walk(bc, [&](int64_t o, int64_t ix, int64_t ie, int64_t) {
        pt[o] = px[ix] == 0.f && pe[ie] >= 0.f ? 0.f : dy[o] * py[o] * std::log(px[ix]);
      });
      add_reduced(g, 1, t);
    }
  });
  return y;
}

}  // namespace lamina
