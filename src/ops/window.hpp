// Shape checks and window geometry for the image ops (conv2d, pooling): x must be
// (N, H, W, C), windows and strides positive, and the output non-empty. Internal.
#pragma once

#include <algorithm>
#include <string>

#include "kernels/window.hpp"
#include "lamina/ops.hpp"

namespace lamina::detail {

inline std::string size2_str(Size2 s) { return std::to_string(s.h) + "x" + std::to_string(s.w); }

// The geometry of `window` sliding over x (N, H, W, C) with `strides` and Keras' padding;
// f = output channels. Throws ShapeError naming `op` when x is not 4-D or the window does not
// fit a 'valid' image, ValueError for sizes that are not positive or are past kMaxWindow.
inline kernels::Geometry2d image_window(const char* op, const Shape& x, int64_t f, Size2 window, Size2 strides,
                                        Padding padding) {
  if (x.rank() != 4)
    throw ShapeError(std::string(op) + ": expects images (N, H, W, C) (channels last), got " + x.str() +
                     (x.rank() == 3 ? "; add a batch axis, or a channel axis with reshape" : ""));
  if (window.h < 1 || window.w < 1 || strides.h < 1 || strides.w < 1)
    throw ValueError(std::string(op) + ": window " + size2_str(window) + " and strides " + size2_str(strides) +
                     " must be positive");
  if (std::max({window.h, window.w, strides.h, strides.w}) > kernels::kMaxWindow)
    throw ValueError(std::string(op) + ": window " + size2_str(window) + " and strides " + size2_str(strides) +
                     " must be at most " + std::to_string(kernels::kMaxWindow));
  const bool same = padding == Padding::same;
  const kernels::Geometry2d g =
      kernels::window_geometry(x[0], x[1], x[2], x[3], f, window.h, window.w, strides.h, strides.w, same);
  if (g.oh < 1 || g.ow < 1)
    throw ShapeError(std::string(op) + ": the " + size2_str(window) + " window does not fit input " + x.str() +
                     " with '" + (same ? "same" : "valid") + "' padding (output " + std::to_string(g.oh) + "x" +
                     std::to_string(g.ow) + "); use padding 'same' or a larger input");
  return g;
}

}  // namespace lamina::detail
