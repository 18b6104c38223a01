// add, sub, mul, div with broadcasting; neg, square and the scalar forms; the operators.
// A, B: any shapes that broadcast to Y. backward: dA += sum_to(dY * dY/dA, A.shape), likewise B;
// the broadcast axes are summed by the one shared kernels::sum_to_into.
// maximum, minimum: A and B of one shape, no broadcasting (Keras' Maximum / Minimum layers).
#include <cmath>
#include <string>

#include "kernels/broadcast.hpp"
#include "lamina/ops.hpp"
#include "ops/op_helpers.hpp"

namespace lamina {

namespace {

using kernels::Broadcast;

// dx_which += sum_to(dy * h(a, b)) where h is the partial derivative of y = f(a, b).
template <class H>
void grad_into(const Broadcast& bc, BackwardContext& g, size_t which, H h) {
  const float *a = g.input(0).data(), *b = g.input(1).data(), *dy = g.dy().data();
  Tensor& dx = g.dx(which);
  const bool direct = dx.shape() == bc.out;
  Tensor tmp = direct ? dx : Tensor::empty(bc.out);
  float* t = tmp.data();
  kernels::for_each_run(bc, [&](int64_t o, int64_t ia, int64_t ib, int64_t n, int64_t sa, int64_t sb) {
    kernels::run_loop(n, sa, sb, [&](int64_t i, int64_t ja, int64_t jb) {
      const float v = dy[o + i] * h(a[ia + ja], b[ib + jb]);
      if (direct) t[o + i] += v;
      else t[o + i] = v;
    });
  });
  if (!direct) kernels::sum_to_into(t, bc.out, dx.data(), dx.shape());
}

// y = f(a, b) elementwise with broadcasting; da = dy * ha(a, b), db = dy * hb(a, b).
template <class F, class HA, class HB>
Tensor binary(const char* op, const Tensor& a, const Tensor& b, F f, HA ha, HB hb) {
  Broadcast bc = kernels::broadcast(op, a.shape(), b.shape());
  Tensor y = Tensor::empty(bc.out);
  const float *pa = a.data(), *pb = b.data();
  float* py = y.data();
  kernels::for_each_run(bc, [&](int64_t o, int64_t ia, int64_t ib, int64_t n, int64_t sa, int64_t sb) {
    kernels::run_loop(n, sa, sb,
                      [&](int64_t i, int64_t ja, int64_t jb) { py[o + i] = f(pa[ia + ja], pb[ib + jb]); });
  });
  record(op, y, {a, b}, [bc = std::move(bc), ha, hb](BackwardContext& g) {
    if (g.needs(0)) grad_into(bc, g, 0, ha);
    if (g.needs(1)) grad_into(bc, g, 1, hb);
  });
  return y;
}

// y = f(a, b) elementwise for a and b of the same shape; da (+)= dy * ha(a, b), db (+)= dy * hb(a, b).
template <class F, class HA, class HB>
Tensor same_shape_binary(const char* op, const Tensor& a, const Tensor& b, F f, HA ha, HB hb) {
  if (a.shape() != b.shape())
    throw ShapeError(std::string(op) + ": a " + a.shape().str() + " and b " + b.shape().str() +
                     " must have the same shape");
  Tensor y = Tensor::empty(a.shape());
  const float *pa = a.data(), *pb = b.data();
  float* py = y.data();
  const int64_t count = y.numel();
  for (int64_t i = 0; i < count; ++i) py[i] = f(pa[i], pb[i]);
  record(op, y, {a, b}, [ha, hb](BackwardContext& g) {
    const float *pa = g.input(0).data(), *pb = g.input(1).data(), *dy = g.dy().data();
    const int64_t count = g.dy().numel();
    auto grad = [&](size_t which, auto h) {
      const auto dx = g.dx_out(which);
      if (dx.accumulate) {
        for (int64_t i = 0; i < count; ++i) dx.data[i] += dy[i] * h(pa[i], pb[i]);
      } else {
        for (int64_t i = 0; i < count; ++i) dx.data[i] = dy[i] * h(pa[i], pb[i]);
      }
    };
    if (g.needs(0)) grad(0, ha);
    if (g.needs(1)) grad(1, hb);
  });
  return y;
}

// The share of dy that one side of maximum / minimum gets, as torch.maximum / torch.minimum's
// backward: none when it loses, half on a tie (a == b), all of it otherwise: when it wins, and
// to both sides when either is NaN (y is NaN then, and no comparison holds).
inline float share(bool loses, bool tie) { return loses ? 0.f : tie ? 0.5f : 1.f; }

}  // namespace

Tensor add(const Tensor& a, const Tensor& b) {
  return binary("add", a, b, [](float x, float y) { return x + y; },
                [](float, float) { return 1.f; }, [](float, float) { return 1.f; });
}

Tensor sub(const Tensor& a, const Tensor& b) {
  return binary("sub", a, b, [](float x, float y) { return x - y; },
                [](float, float) { return 1.f; }, [](float, float) { return -1.f; });
}

Tensor mul(const Tensor& a, const Tensor& b) {
  return binary("mul", a, b, [](float x, float y) { return x * y; },
                [](float, float y) { return y; }, [](float x, float) { return x; });
}

Tensor div(const Tensor& a, const Tensor& b) {
  return binary("div", a, b, [](float x, float y) { return x / y; },
                [](float, float y) { return 1.f / y; }, [](float x, float y) { return -x / (y * y); });
}

Tensor maximum(const Tensor& a, const Tensor& b) {
  return same_shape_binary(
      "maximum", a, b, [](float x, float y) { return (std::isnan(x) || x > y) ? x : y; },
      [](float x, float y) { return share(x < y, x == y); },
      [](float x, float y) { return share(y < x, x == y); });
}

Tensor minimum(const Tensor& a, const Tensor& b) {
  return same_shape_binary(
      "minimum", a, b, [](float x, float y) { return (std::isnan(x) || x < y) ? x : y; },
      [](float x, float y) { return share(x > y, x == y); },
      [](float x, float y) { return share(y > x, x == y); });
}

Tensor neg(const Tensor& x) {
  return detail::unary("neg", x, [](float v) { return -v; }, [](float, float, float d) { return -d; });
}

Tensor square(const Tensor& x) {
  return detail::unary("square", x, [](float v) { return v * v; },
                       [](float v, float, float d) { return 2.f * v * d; });
}

Tensor add(const Tensor& x, float s) {
  return detail::unary("add_scalar", x, [s](float v) { return v + s; }, [](float, float, float d) { return d; });
}

Tensor mul(const Tensor& x, float s) {
  return detail::unary("mul_scalar", x, [s](float v) { return v * s; },
                       [s](float, float, float d) { return s * d; });
}

Tensor rsub(const Tensor& x, float s) {
  return detail::unary("rsub_scalar", x, [s](float v) { return s - v; }, [](float, float, float d) { return -d; });
}

Tensor rdiv(const Tensor& x, float s) {
  return detail::unary("rdiv_scalar", x, [s](float v) { return s / v; },
                       [](float v, float y, float d) { return -d * y / v; });
}

Tensor operator+(const Tensor& a, const Tensor& b) { return add(a, b); }
Tensor operator-(const Tensor& a, const Tensor& b) { return sub(a, b); }
Tensor operator*(const Tensor& a, const Tensor& b) { return mul(a, b); }
Tensor operator/(const Tensor& a, const Tensor& b) { return div(a, b); }
Tensor operator-(const Tensor& x) { return neg(x); }
Tensor operator+(const Tensor& x, float s) { return add(x, s); }
Tensor operator+(float s, const Tensor& x) { return add(x, s); }
Tensor operator-(const Tensor& x, float s) { return add(x, -s); }
Tensor operator-(float s, const Tensor& x) { return rsub(x, s); }
Tensor operator*(const Tensor& x, float s) { return mul(x, s); }
Tensor operator*(float s, const Tensor& x) { return mul(x, s); }
Tensor operator/(const Tensor& x, float s) { return mul(x, 1.f / s); }
Tensor operator/(float s, const Tensor& x) { return rdiv(x, s); }

}  // namespace lamina
