// Per-channel loops for batch normalization over the last axis: x seen as (M, C) rows,
// M = every other axis folded (N, or N*H*W). Plain vectorized loops (see bnorm.cpp); why not
// oneDNN's batch_normalization: the table in src/ops/norm.cpp. Internal to the library.
#pragma once

#include <cstdint>

namespace lamina::kernels {

// mean[c] = sum_m x / M; var[c] = sum_m (x - mean)^2 / M (biased, as Keras). One pass.
void channel_moments(const float* x, int64_t m, int64_t c, double* mean, double* var);
// y[m, c] = (x[m, c] - center[c]) * scale[c] + shift[c]. Centering first keeps precision when
// |mean| >> std.
void channel_affine(const float* x, int64_t m, int64_t c, const float* center, const float* scale, const float* shift,
                    float* y);
// sum_dy[c] = sum_m dy; sum_dy_xc[c] = sum_m dy * (x - mean[c]).
void channel_grad_sums(const float* x, const float* dy, int64_t m, int64_t c, const float* mean, double* sum_dy,
                       double* sum_dy_xc);
// dx[m, c] (+)= a[c] * dy[m, c] + b[c] * (x[m, c] - center[c]) + d[c].
void channel_combine(const float* dy, const float* x, int64_t m, int64_t c, const float* a, const float* b,
                     const float* center, const float* d, float* dx, bool accumulate);

}  // namespace lamina::kernels
