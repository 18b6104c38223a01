// Shape checks and window geometry for the image ops (conv2d, pooling): x must be
// (N, H, W, C), windows and strides positive, and the output non-empty. Internal.
#pragma once

#include <string>

#include "kernels/window.hpp"
#include "lamina/ops.hpp"

namespace lamina::detail {

// The geometry of `window` sliding over x (N, H, W, C) with `strides` and Keras' padding;
// f = output channels. Throws ShapeError naming `op` when x is not 4-D or the window does not
// fit a 'valid' image, ValueError for sizes that are not positive or are past kMaxWindow.
inline kernels::Geometry2d image_window(const char* op, const Shape& x, int64_t f, Size2 window, Size2 strides,
                                        Padding padding) {
  if (x.rank() != 4)
    throw ShapeError(std::string(op) + ": expects images (N, H, W, C) (channels last), got " + x.str() +
                     (x.rank() == 3 ? "; add a batch axis, or a channel axis with reshape" : ""));
  kernels::check_window(op, "window", window, strides);
  const kernels::Geometry2d g = kernels::window_geometry(x[0], x[1], x[2], x[3], f, window, strides, padding);
  if (g.oh < 1 || g.ow < 1)
    throw ShapeError(std::string(op) + ": the " + kernels::size2_str(window) + " window does not fit input " +
                     x.str() + " with '" + (padding == Padding::same ? "same" : "valid") + "' padding (output " +
                     kernels::size2_str({g.oh, g.ow}) + "); use padding 'same' or a larger input");
  return g;
}

}  // namespace lamina::detail
