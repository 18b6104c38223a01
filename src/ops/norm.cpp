// batch_norm over the last axis, Keras' BatchNormalization: x (..., C) seen as (M, C) rows;
// gamma, beta, moving_mean, moving_var (C).
//   training: mean, var = batch moments over the rows (biased variance, as Keras);
//             rstd = 1 / sqrt(var + epsilon); y = (x - mean) rstd gamma + beta; the moving
//             statistics become moving * momentum + batch * (1 - momentum), in place.
//   inference: the same with mean, var = the moving statistics.
// backward (saves mean and rstd (C)): dbeta = sum dy; dgamma = sum dy xhat; dx =
//   gamma rstd (dy - mean(dy) - xhat mean(dy xhat)) when training (the batch moments depend on
//   x), gamma rstd dy at inference.
// layer_norm over the last axis, Keras' LayerNormalization: x (..., C) seen as (M, C) rows;
//   gamma, beta (C). mean, var = moments of each row (biased variance), in double; rstd =
//   1 / sqrt(var + epsilon); y = (x - mean) rstd gamma + beta. No moving statistics.
// backward (saves mean and rstd (M)): xhat = (x - mean) rstd, g = dy gamma; dbeta = sum dy and
//   dgamma = sum dy xhat over the rows; dx = rstd (g - mean(g) - xhat mean(g xhat)), the means
//   along the row (each row's moments depend on all of its C values).
// dropout: y = x mask, mask = 0 with probability rate, else 1 / (1 - rate); saves the mask.
// M = rows (every axis but the last folded: N, N T or N H W), C = channels / features.
//
// Plain loops (kernels/bnorm.cpp), not oneDNN's batch_normalization: training forward /
// backward, us, one Zen 5 core, oneDNN 2.6 with NHWC memory:
//   (64, 28, 28, 6)     loops  76 / 105    oneDNN 1052 / 1546 (reference nspc_bnorm)
//   (64, 26, 26, 32)    loops 412 / 712    oneDNN  388 /  566 (bnorm_jit:avx512_core)
//   (64, 14, 14, 64)    loops 183 / 262    oneDNN  202 /  303 (bnorm_jit:avx512_core)
//   (64, 120)           loops 3.8 / 4.7    oneDNN  3.6 /  6.4 (bnorm_tbb_jit:avx2)
// Equal or faster except on C = 32, and one code path for any rank and any C, computing
// Keras' statistics in double.
#include <algorithm>
#include <cmath>
#include <span>
#include <utility>
#include <vector>

#include "kernels/bnorm.hpp"
#include "lamina/autograd.hpp"
#include "lamina/distributed.hpp"
#include "lamina/ops.hpp"
#include "lamina/random.hpp"
#include "ops/op_helpers.hpp"

namespace lamina {

namespace {

// t must be a vector (C) for the last axis of x: "<op>: gamma (4) does not match the 3 channels ...".
void check_last_axis_vector(const char* op, const char* what, const Tensor& t, int64_t c, const char* unit,
                            const Shape& x) {
  if (t.shape() != Shape{c})
    throw ShapeError(std::string(op) + ": " + what + " " + t.shape().str() + " does not match the " +
                     std::to_string(c) + " " + unit + " (last axis) of x " + x.str());
}

// batch_norm's and sync_batch_norm's arguments checked (`op` names the one in the messages):
// returns gamma and beta, ones and zeros where undefined.
std::pair<Tensor, Tensor> checked_batch_norm_args(const char* op, const Tensor& x, const Tensor& gamma,
                                                  const Tensor& beta, const Tensor& moving_mean,
                                                  const Tensor& moving_var, float epsilon) {
  if (x.rank() < 1) throw ShapeError(std::string(op) + ": x must have a channel axis, got a scalar");
  const int64_t c = x.dim(-1);
  if (!moving_mean.defined() || !moving_var.defined())
    throw ValueError(std::string(op) + ": moving_mean and moving_var are required (Keras' moving statistics)");
  check_last_axis_vector(op, "moving_mean", moving_mean, c, "channels", x.shape());
  check_last_axis_vector(op, "moving_var", moving_var, c, "channels", x.shape());
  Tensor g = gamma.defined() ? gamma : Tensor::ones({c});
  Tensor b = beta.defined() ? beta : Tensor::zeros({c});
  check_last_axis_vector(op, "gamma", g, c, "channels", x.shape());
  check_last_axis_vector(op, "beta", b, c, "channels", x.shape());
  if (!(epsilon > 0.f)) throw ValueError(std::string(op) + ": epsilon must be positive, got " + std::to_string(epsilon));
  return {std::move(g), std::move(b)};
}

// sum of f(j) for j in [0, n), in double. Eight independent partial sums, so the loop
// vectorizes without -ffast-math (one running sum would fix the order of the additions).
template <class F>
double row_sum(int64_t n, F f) {
  constexpr int64_t kLanes = 8;
  double acc[kLanes] = {};
  const int64_t full = n / kLanes * kLanes;
  for (int64_t j = 0; j < full; j += kLanes)
    for (int64_t l = 0; l < kLanes; ++l) acc[l] += f(j + l);
  double s = 0.0;
  for (int64_t j = full; j < n; ++j) s += f(j);
  for (int64_t l = 0; l < kLanes; ++l) s += acc[l];
  return s;
}

}  // namespace

Tensor batch_norm(const Tensor& x, const Tensor& gamma, const Tensor& beta, const Tensor& moving_mean,
                  const Tensor& moving_var, bool training, float momentum, float epsilon) {
  const auto [g, b] = checked_batch_norm_args("batch_norm", x, gamma, beta, moving_mean, moving_var, epsilon);
  const int64_t c = x.dim(-1), m = c ? x.numel() / c : 0;
  if (training && m == 0) throw ShapeError("batch_norm: batch statistics of an empty batch " + x.shape().str());

  Tensor mean = Tensor::empty({c}), rstd = Tensor::empty({c});
  float *pm = mean.data(), *pr = rstd.data();
  if (training) {
    std::vector<double> bm(static_cast<size_t>(c)), bv(static_cast<size_t>(c));
    kernels::channel_moments(x.data(), m, c, bm.data(), bv.data());
    // The moving statistics are state, updated in place through the shared storage (as Keras assigns them).
    float *mm = moving_mean.impl()->data, *mv = moving_var.impl()->data;
    for (int64_t j = 0; j < c; ++j) {
      const auto k = static_cast<size_t>(j);
      pm[j] = static_cast<float>(bm[k]);
      pr[j] = static_cast<float>(1.0 / std::sqrt(bv[k] + epsilon));
      mm[j] = static_cast<float>(mm[j] * static_cast<double>(momentum) + bm[k] * (1.0 - momentum));
      mv[j] = static_cast<float>(mv[j] * static_cast<double>(momentum) + bv[k] * (1.0 - momentum));
    }
  } else {
    for (int64_t j = 0; j < c; ++j) {
      pm[j] = moving_mean.data()[j];
      pr[j] = static_cast<float>(1.0 / std::sqrt(static_cast<double>(moving_var.data()[j]) + epsilon));
    }
  }
  Tensor scale = Tensor::empty({c});
  for (int64_t j = 0; j < c; ++j) scale.data()[j] = g.data()[j] * pr[j];
  Tensor y = Tensor::empty(x.shape());
  kernels::channel_affine(x.data(), m, c, pm, scale.data(), b.data(), y.data());

  record("batch_norm", y, {x, g, b}, [m, c, training, mean, rstd, scale](BackwardContext& ctx) {
    const float *px = ctx.input(0).data(), *dy = ctx.dy().data(), *mu = mean.data(), *r = rstd.data();
    const bool sums_needed = training || ctx.needs(1) || ctx.needs(2);
    std::vector<double> sum_dy(static_cast<size_t>(c)), sum_dy_xc(static_cast<size_t>(c));
    if (sums_needed) kernels::channel_grad_sums(px, dy, m, c, mu, sum_dy.data(), sum_dy_xc.data());
    auto write = [c](BackwardContext::GradOut out, auto value) {
      for (int64_t j = 0; j < c; ++j) out.data[j] = (out.accumulate ? out.data[j] : 0.f) + value(static_cast<size_t>(j));
    };
    if (ctx.needs(1)) write(ctx.dx_out(1), [&](size_t j) { return static_cast<float>(sum_dy_xc[j] * r[j]); });
    if (ctx.needs(2)) write(ctx.dx_out(2), [&](size_t j) { return static_cast<float>(sum_dy[j]); });
    if (!ctx.needs(0)) return;
    // dx = a dy + b (x - mean) + d per channel; b = d = 0 at inference.
    std::vector<float> a(static_cast<size_t>(c)), bb(static_cast<size_t>(c), 0.f), d(static_cast<size_t>(c), 0.f);
    const double inv_m = m ? 1.0 / static_cast<double>(m) : 0.0;
    for (int64_t j = 0; j < c; ++j) {
      const auto k = static_cast<size_t>(j);
      a[k] = scale.data()[j];  // gamma rstd
      if (!training) continue;
      const double rj = r[j];
      bb[k] = static_cast<float>(-scale.data()[j] * rj * rj * sum_dy_xc[k] * inv_m);
      d[k] = static_cast<float>(-scale.data()[j] * sum_dy[k] * inv_m);
    }
    const auto dx = ctx.dx_out(0);
    kernels::channel_combine(dy, px, m, c, a.data(), bb.data(), mu, d.data(), dx.data, dx.accumulate);
  });
  return y;
}

// The statistics of the global batch from every rank's own: each rank sends its row count and, per
// channel, the sums of (x - K) and (x - K)^2 about K = the moving mean (the same on every rank;
// the shift keeps E[x^2] - E[x]^2 from cancelling when |mean| >> std), computed from its own
// moments in double. One allreduce of 2C + 1 doubles. Backward sends each rank's sums of dy and
// dy (x - mean), weighted by its share w_r = m_r / M of the rows: a rank's dy is the gradient of
// its own mean loss, and the global loss is sum_r w_r L_r. Then with G = sum over ranks,
//   dx = gamma rstd (dy - G_dy / m_r - (x - mean) rstd^2 G_dyxc / m_r)
// which is the global batch's input gradient divided by w_r, the scale fit's gradient reduction
// multiplies back (as every other gradient of this rank).
Tensor sync_batch_norm(const Tensor& x, const Tensor& gamma, const Tensor& beta, const Tensor& moving_mean,
                       const Tensor& moving_var, distributed::Communicator& comm, bool training, float momentum,
                       float epsilon) {
  if (!training || comm.size() == 1) return batch_norm(x, gamma, beta, moving_mean, moving_var, training, momentum, epsilon);
  const auto [g, b] = checked_batch_norm_args("sync_batch_norm", x, gamma, beta, moving_mean, moving_var, epsilon);
  const int64_t c = x.dim(-1), m = c ? x.numel() / c : 0;

  const auto cs = static_cast<size_t>(c);
  std::vector<double> sums(2 * cs + 1, 0.0);  // [count, sum (x - K) (C), sum (x - K)^2 (C)]
  float *mm = moving_mean.impl()->data, *mv = moving_var.impl()->data;
  if (m > 0) {
    std::vector<double> bm(cs), bv(cs);
    kernels::channel_moments(x.data(), m, c, bm.data(), bv.data());
    const auto n = static_cast<double>(m);
    sums[0] = n;
    for (size_t j = 0; j < cs; ++j) {
      const double d = bm[j] - mm[j];
      sums[1 + j] = n * d;
      sums[1 + cs + j] = n * (bv[j] + d * d);
    }
  }
  comm.allreduce(std::span<double>(sums));
  const double total = sums[0];
  if (total == 0) throw ShapeError("sync_batch_norm: batch statistics of an empty global batch " + x.shape().str());

  Tensor mean = Tensor::empty({c}), rstd = Tensor::empty({c}), scale = Tensor::empty({c});
  float *pm = mean.data(), *pr = rstd.data();
  for (size_t j = 0; j < cs; ++j) {
    const double d = sums[1 + j] / total, var = std::max(0.0, sums[1 + cs + j] / total - d * d);
    const double mu = mm[j] + d;
    pm[j] = static_cast<float>(mu);
    pr[j] = static_cast<float>(1.0 / std::sqrt(var + epsilon));
    mm[j] = static_cast<float>(mm[j] * static_cast<double>(momentum) + mu * (1.0 - momentum));
    mv[j] = static_cast<float>(mv[j] * static_cast<double>(momentum) + var * (1.0 - momentum));
    scale.data()[j] = g.data()[j] * pr[j];
  }
  Tensor y = Tensor::empty(x.shape());
  if (m > 0) kernels::channel_affine(x.data(), m, c, pm, scale.data(), b.data(), y.data());

  distributed::Communicator* group = &comm;
  record("sync_batch_norm", y, {x, g, b}, [m, c, total, group, mean, rstd, scale](BackwardContext& ctx) {
    const auto cs = static_cast<size_t>(c);
    const float *mu = mean.data(), *r = rstd.data();
    std::vector<double> local(2 * cs, 0.0);  // [sum dy (C), sum dy (x - mean) (C)], this rank's
    if (m > 0) kernels::channel_grad_sums(ctx.input(0).data(), ctx.dy().data(), m, c, mu, local.data(), local.data() + cs);
    std::vector<double> global(local);
    const double w = static_cast<double>(m) / total;
    for (double& v : global) v *= w;
    group->allreduce(std::span<double>(global));
    auto write = [c](BackwardContext::GradOut out, auto value) {
      for (int64_t j = 0; j < c; ++j) out.data[j] = (out.accumulate ? out.data[j] : 0.f) + value(static_cast<size_t>(j));
    };
    if (ctx.needs(1)) write(ctx.dx_out(1), [&](size_t j) { return static_cast<float>(local[cs + j] * r[j]); });
    if (ctx.needs(2)) write(ctx.dx_out(2), [&](size_t j) { return static_cast<float>(local[j]); });
    if (!ctx.needs(0) || m == 0) return;
    std::vector<float> a(cs), bb(cs), d(cs);
    const double inv_m = 1.0 / static_cast<double>(m);
    for (size_t j = 0; j < cs; ++j) {
      const double rj = r[j];
      a[j] = scale.data()[j];
      bb[j] = static_cast<float>(-scale.data()[j] * rj * rj * global[cs + j] * inv_m);
      d[j] = static_cast<float>(-scale.data()[j] * global[j] * inv_m);
    }
    const auto dx = ctx.dx_out(0);
    kernels::channel_combine(ctx.dy().data(), ctx.input(0).data(), m, c, a.data(), bb.data(), mu, d.data(), dx.data,
                             dx.accumulate);
  });
  return y;
}

Tensor layer_norm(const Tensor& x, const Tensor& gamma, const Tensor& beta, float epsilon) {
  if (x.rank() < 1) throw ShapeError("layer_norm: x must have a feature axis, got a scalar");
  const int64_t c = x.dim(-1), m = c ? x.numel() / c : 0;
  const Tensor g = gamma.defined() ? gamma : Tensor::ones({c});
  const Tensor b = beta.defined() ? beta : Tensor::zeros({c});
  check_last_axis_vector("layer_norm", "gamma", g, c, "features", x.shape());
  check_last_axis_vector("layer_norm", "beta", b, c, "features", x.shape());
  if (!(epsilon > 0.f)) throw ValueError("layer_norm: epsilon must be positive, got " + std::to_string(epsilon));

  Tensor mean = Tensor::empty({m}), rstd = Tensor::empty({m}), y = Tensor::empty(x.shape());
  const float *px = x.data(), *pg = g.data(), *pb = b.data();
  float *pm = mean.data(), *pr = rstd.data(), *py = y.data();
  const double inv_c = c ? 1.0 / static_cast<double>(c) : 0.0;
  for (int64_t i = 0; i < m; ++i) {
    const float* xi = px + i * c;
    float* yi = py + i * c;
    // Two passes (mean, then squares around it): no cancellation when |mean| >> std.
    const double mu = row_sum(c, [xi](int64_t j) { return static_cast<double>(xi[j]); }) * inv_c;
    const double var = row_sum(c, [xi, mu](int64_t j) {
                         const double d = xi[j] - mu;
                         return d * d;
                       }) * inv_c;
    pm[i] = static_cast<float>(mu);
    pr[i] = static_cast<float>(1.0 / std::sqrt(var + epsilon));
    const float mf = pm[i], rf = pr[i];
    for (int64_t j = 0; j < c; ++j) yi[j] = (xi[j] - mf) * rf * pg[j] + pb[j];
  }

  record("layer_norm", y, {x, g, b}, [m, c, inv_c, mean, rstd](BackwardContext& ctx) {
    const float *px = ctx.input(0).data(), *pg = ctx.input(1).data(), *dy = ctx.dy().data();
    const float *pm = mean.data(), *pr = rstd.data();
    const bool need_dx = ctx.needs(0), need_dgamma = ctx.needs(1), need_dbeta = ctx.needs(2);
    const auto n = static_cast<size_t>(c);
    std::vector<double> dgamma(need_dgamma ? n : 0), dbeta(need_dbeta ? n : 0);
    std::vector<float> xhat(n), gy(n);  // one row of (x - mean) rstd and of dy gamma
    float *xh = xhat.data(), *gr = gy.data();
    const auto dx = need_dx ? ctx.dx_out(0) : BackwardContext::GradOut{nullptr, false};
    for (int64_t i = 0; i < m; ++i) {
      const float *xi = px + i * c, *dyi = dy + i * c;
      const float mu = pm[i], r = pr[i];
      for (int64_t j = 0; j < c; ++j) xh[j] = (xi[j] - mu) * r;
      if (need_dgamma)
        for (int64_t j = 0; j < c; ++j) dgamma[static_cast<size_t>(j)] += static_cast<double>(dyi[j]) * xh[j];
      if (need_dbeta)
        for (int64_t j = 0; j < c; ++j) dbeta[static_cast<size_t>(j)] += dyi[j];
      if (!need_dx) continue;
      for (int64_t j = 0; j < c; ++j) gr[j] = dyi[j] * pg[j];
      const auto mean_g =
          static_cast<float>(row_sum(c, [gr](int64_t j) { return static_cast<double>(gr[j]); }) * inv_c);
      const auto mean_gx = static_cast<float>(
          row_sum(c, [gr, xh](int64_t j) { return static_cast<double>(gr[j]) * xh[j]; }) * inv_c);
      float* dxi = dx.data + i * c;
      if (dx.accumulate)
        for (int64_t j = 0; j < c; ++j) dxi[j] += r * (gr[j] - mean_g - xh[j] * mean_gx);
      else
        for (int64_t j = 0; j < c; ++j) dxi[j] = r * (gr[j] - mean_g - xh[j] * mean_gx);
    }
    auto write = [c](BackwardContext::GradOut out, const std::vector<double>& value) {
      for (int64_t j = 0; j < c; ++j)
        out.data[j] = (out.accumulate ? out.data[j] : 0.f) + static_cast<float>(value[static_cast<size_t>(j)]);
    };
    if (need_dgamma) write(ctx.dx_out(1), dgamma);
    if (need_dbeta) write(ctx.dx_out(2), dbeta);
  });
  return y;
}

Tensor dropout(const Tensor& x, float rate, Generator& gen, bool training) {
  if (!(rate >= 0.f && rate < 1.f)) throw ValueError("dropout: rate must be in [0, 1), got " + std::to_string(rate));
  if (!training || rate == 0.f) return x;
  const float scale = 1.f / (1.f - rate);
  const int64_t n = x.numel();
  Tensor mask = Tensor::empty(x.shape()), y = Tensor::empty(x.shape());
  float* pmask = mask.data();
  for (int64_t i = 0; i < n; ++i) pmask[i] = gen.uniform() >= rate ? scale : 0.f;
  const float* px = x.data();
  float* py = y.data();
  for (int64_t i = 0; i < n; ++i) py[i] = px[i] * pmask[i];
  record("dropout", y, {x}, [mask](BackwardContext& ctx) {
    const auto dx = ctx.dx_out(0);
    const float *keep = mask.data(), *dy = ctx.dy().data();
    const int64_t count = mask.numel();
    for (int64_t i = 0; i < count; ++i) dx.data[i] = (dx.accumulate ? dx.data[i] : 0.f) + dy[i] * keep[i];
  });
  return y;
}

}  // namespace lamina
