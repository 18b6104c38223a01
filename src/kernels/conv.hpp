// 2-D convolution on NHWC images and Keras' HWIO kernels: forward (bias and activation fused),
// the gradient of the input and the gradients of kernel and bias. The fast path is oneDNN,
// one primitive per geometry and thread count, cached per thread; kernels::ref holds the
// naive loops that document the math and check the fast path. Internal to the library.
#pragma once

#include "kernels/matmul.hpp"  // Eltwise
#include "kernels/window.hpp"

namespace lamina::kernels {

// x (N, H, W, C), w (KH, KW, C, F), bias (F) or null, y (N, OH, OW, F):
// y[n, i, j, f] = act(bias[f] + sum_{p, q, c} x[n, i sh + p - pad_top, j sw + q - pad_left, c] w[p, q, c, f]),
// cells outside the image counting as 0. relu keeps NaN.
void conv2d_forward(const Geometry2d& g, const float* x, const float* w, const float* bias, float* y, Eltwise act);
// dx (N, H, W, C) (+)= the transposed convolution of dy (N, OH, OW, F) with w.
void conv2d_backward_data(const Geometry2d& g, const float* dy, const float* w, float* dx, bool accumulate);
// dw (KH, KW, C, F) (+)= sum over n, i, j of x-window * dy; dbias (F) (+)= sum of dy over
// N, OH, OW (skipped when dbias is null). The two accumulate flags are independent.
void conv2d_backward_weights(const Geometry2d& g, const float* x, const float* dy, float* dw, bool accumulate_w,
                             float* dbias, bool accumulate_bias);

namespace ref {
// act(v) in double, rounded to float: the activation of the naive loops (conv, conv_transpose).
float activate(double v, Eltwise act);
void conv2d_forward(const Geometry2d& g, const float* x, const float* w, const float* bias, float* y, Eltwise act);
void conv2d_backward_data(const Geometry2d& g, const float* dy, const float* w, float* dx, bool accumulate);
void conv2d_backward_weights(const Geometry2d& g, const float* x, const float* dy, float* dw, bool accumulate_w,
                             float* dbias, bool accumulate_bias);
}  // namespace ref

}  // namespace lamina::kernels
