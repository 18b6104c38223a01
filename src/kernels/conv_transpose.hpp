// 2-D transposed convolution (oneDNN's deconvolution) on NHWC images and Keras'
// Conv2DTranspose kernels (KH, KW, F, C): forward (bias fused), the gradient of the input (a
// convolution) and the gradients of kernel and bias. oneDNN primitives are cached per geometry
// and thread count, per thread, as in conv.cpp; kernels::ref holds the naive loops that
// document the math and check the fast path. Internal to the library.
#pragma once

#include "kernels/matmul.hpp"  // Eltwise
#include "kernels/window.hpp"

namespace lamina::kernels {

// Geometry2d read for a transposed convolution: x (N, H, W, C) is the input, y (N, OH, OW, F)
// the output; pad_top / pad_left are the rows / columns cropped from the start of the full
// output ((H - 1) SH + (KH - 1) DH + 1 rows), pad_bottom / pad_right those cropped from its end:
// negative there (down to 1 - stride) adds rows that only the bias reaches (Keras'
// output_padding, or a stride past the kernel with padding 'valid').
//
// x (N, H, W, C), w (KH, KW, F, C), bias (F) or null, y (N, OH, OW, F):
// y[n, i SH + p DH - pad_top, j SW + q DW - pad_left, f] += x[n, i, j, c] w[p, q, f, c], then
// y = act(y + bias), cells outside y dropped.
void conv2d_transpose_forward(const Geometry2d& g, const float* x, const float* w, const float* bias, float* y,
                              Eltwise act);
// dx (N, H, W, C) (+)= the convolution of dy (N, OH, OW, F) with w, the same windows.
void conv2d_transpose_backward_data(const Geometry2d& g, const float* dy, const float* w, float* dx, bool accumulate);
// dw (KH, KW, F, C) (+)= sum over n, i, j of x[n, i, j, c] dy-window; dbias (F) (+)= sum of dy
// over N, OH, OW (skipped when dbias is null). The two accumulate flags are independent.
void conv2d_transpose_backward_weights(const Geometry2d& g, const float* x, const float* dy, float* dw,
                                       bool accumulate_w, float* dbias, bool accumulate_bias);

namespace ref {
void conv2d_transpose_forward(const Geometry2d& g, const float* x, const float* w, const float* bias, float* y,
                              Eltwise act);
void conv2d_transpose_backward_data(const Geometry2d& g, const float* dy, const float* w, float* dx, bool accumulate);
void conv2d_transpose_backward_weights(const Geometry2d& g, const float* x, const float* dy, float* dw,
                                       bool accumulate_w, float* dbias, bool accumulate_bias);
}  // namespace ref

}  // namespace lamina::kernels
