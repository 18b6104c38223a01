// 2-D max and average pooling on NHWC images: max in our own loops, average on oneDNN (one
// primitive per geometry and thread count, cached per thread), and kernels::ref, the naive loops
// that document the math and check the fast path. Internal to the library.
#pragma once

#include <cstddef>

#include "kernels/window.hpp"

namespace lamina::kernels {

// Geometry2d with f == c. x (N, H, W, C) -> y (N, OH, OW, C).
// Max: cells in the padding never win. The workspace (max_pool2d_workspace_bytes) records
// where each maximum came from, for the backward; pass null when no backward will follow.
size_t max_pool2d_workspace_bytes(const Geometry2d& g);
void max_pool2d_forward(const Geometry2d& g, const float* x, float* y, void* workspace);
// The same with a workspace, run at the build's own vector width where the CPU would take the
// AVX-512 kernel (2x2 windows at stride 2 on fewer than 16 channels): for tests.
void max_pool2d_forward_build_target(const Geometry2d& g, const float* x, float* y, void* workspace);
// dx (N, H, W, C) (+)= dy routed to each window's maximum.
void max_pool2d_backward(const Geometry2d& g, const float* dy, const void* workspace, float* dx, bool accumulate);
// Average over the cells of each window that lie inside the image (padding excluded).
void avg_pool2d_forward(const Geometry2d& g, const float* x, float* y);
void avg_pool2d_backward(const Geometry2d& g, const float* dy, float* dx, bool accumulate);

namespace ref {
void max_pool2d_forward(const Geometry2d& g, const float* x, float* y);
// Routes to the first maximum of each window in row-major window order (the forward's x is
// needed to find it).
void max_pool2d_backward(const Geometry2d& g, const float* x, const float* dy, float* dx, bool accumulate);
void avg_pool2d_forward(const Geometry2d& g, const float* x, float* y);
void avg_pool2d_backward(const Geometry2d& g, const float* dy, float* dx, bool accumulate);
}  // namespace ref

}  // namespace lamina::kernels
