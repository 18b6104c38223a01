// The input gradient of a convolution with few input channels, in our own AVX-512 loops
// (conv_narrow.cpp). Internal to the library: conv.cpp's conv2d_backward_data takes it where it
// applies, oneDNN otherwise.
#pragma once

#include <cstdint>

#include "kernels/window.hpp"

namespace lamina::kernels {

// Whether narrow_backward_data handles g on this CPU: AVX-512, stride and dilation 1, no
// padding, and a kernel row of C x KW values one of the shapes it is built for (LeNet's second
// convolution: C = 6, KW = 5).
bool narrow_backward_data_applies(const Geometry2d& g);
// dx (N, H, W, C) (+)= the transposed convolution of dy (N, OH, OW, F) with w (KH, KW, C, F),
// images [n0, n1) of g, on the calling thread.
void narrow_backward_data(const Geometry2d& g, const float* dy, const float* w, float* dx, bool accumulate, int64_t n0,
                          int64_t n1);

// Whether the one_channel_* loops handle g on this CPU: AVX-512, one input channel (a first
// layer on grey images), stride and dilation 1, any padding, and F x KW one of the shapes they
// are built for (LeNet's first convolution: F = 6, KW = 5).
bool one_channel_applies(const Geometry2d& g);
// y (N, OH, OW, F) = bias + the convolution of x (N, H, W, 1) with w (KH, KW, 1, F), relu'd
// (keeping NaN) when asked; bias may be null. Images [n0, n1), on the calling thread.
void one_channel_forward(const Geometry2d& g, const float* x, const float* w, const float* bias, float* y, bool relu,
                         int64_t n0, int64_t n1);
// dw (KH, KW, 1, F) = the kernel gradient summed over images [n0, n1), dbias (F) the sum of dy
// (skipped when null): both overwritten. On the calling thread.
void one_channel_backward_weights(const Geometry2d& g, const float* x, const float* dy, float* dw, float* dbias,
                                  int64_t n0, int64_t n1);

}  // namespace lamina::kernels
