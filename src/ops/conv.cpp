// conv2d: act(x (N, H, W, C) * kernel (KH, KW, C, F) + bias (F)) -> (N, OH, OW, F), channels
// last and Keras' kernel layout; padding valid / same (TensorFlow's split, the odd cell at the
// end). Bias, sigmoid and tanh ride in the oneDNN primitive; relu is ours (keeps NaN): a first
// layer's as its output leaves oneDNN's channel blocks, else a pass over the output.
// backward: dZ = dY act'(Y) (act' from the output, as linear()); dx (+)= the transposed
// convolution of dZ with the kernel; dkernel (+)= x-windows (*) dZ; dbias (+)= sum of dZ over
// N, OH, OW. Saves nothing beyond x, the kernel and y.
// conv1d: the same kernels on (N, 1, T, C) with a (1, K, C, F) kernel, a dilation and explicit
// pads (valid / same / causal); the reshapes around it are views.
// conv2d_transpose: y = act(x (N, H, W, C) spread through kernel (KH, KW, F, C) + bias (F)),
// oneDNN's deconvolution, with Keras' output size and TensorFlow's cropping
// (kernels::transpose_axis). backward: dZ as conv2d; dx (+)= the convolution of dZ with the
// kernel (the same windows); dkernel (+)= x (*) dZ-windows; dbias (+)= sum of dZ.
// N = batch, H, W = spatial, C = input channels, F = filters, KH, KW = kernel window,
// T = steps, K = kernel taps.
#include "allocator.hpp"
#include "kernels/conv.hpp"
#include "kernels/conv_transpose.hpp"
#include "lamina/autograd.hpp"
#include "lamina/ops.hpp"
#include "ops/op_helpers.hpp"
#include "ops/window.hpp"

namespace lamina {

namespace {

// The three kernels of a convolution direction; both directions take the same arguments.
struct ConvKernels {
  decltype(&kernels::conv2d_forward) forward;
  decltype(&kernels::conv2d_backward_data) backward_data;
  decltype(&kernels::conv2d_backward_weights) backward_weights;
  bool relu_keeps_nan;  // the forward's relu (else a pass of ours after it)
};
constexpr ConvKernels kConvolution{&kernels::conv2d_forward, &kernels::conv2d_backward_data,
                                   &kernels::conv2d_backward_weights, true};
constexpr ConvKernels kTransposed{&kernels::conv2d_transpose_forward, &kernels::conv2d_transpose_backward_data,
                                  &kernels::conv2d_transpose_backward_weights, false};

// act(x * kernel + bias) over geometry g (or, with kTransposed, x spread through the kernel), x
// (N, H, W, C) and the kernel already checked: the body of conv2d, conv1d and conv2d_transpose.
Tensor convolve(const char* op, const Tensor& x, const Tensor& kernel, const Tensor& bias, const kernels::Geometry2d& g,
                FusedActivation act, const ConvKernels& k = kConvolution) {
  const int64_t f = g.f;
  Tensor y = Tensor::empty({g.n, g.oh, g.ow, f});
  const bool has_bias = bias.defined();
  // relu keeps NaN, as in linear(): oneDNN's relu post-op maps NaN to 0, which would hide a
  // diverged model. The convolution's kernel applies its own (a first layer's as its output
  // leaves oneDNN's channel blocks); after the transposed one, a pass of ours. sigmoid and tanh
  // stay fused.
  const bool relu_pass = act == FusedActivation::relu && !k.relu_keeps_nan;
  k.forward(g, x.data(), kernel.data(), has_bias ? bias.data() : nullptr, y.data(),
            relu_pass ? kernels::Eltwise::none : static_cast<kernels::Eltwise>(act));
  if (relu_pass) detail::relu_in_place(y);
  std::vector<Tensor> inputs = {x, kernel};
  if (has_bias) inputs.push_back(bias);
  record(op, y, std::move(inputs), [g, act, has_bias, k](BackwardContext& ctx) {
    const Tensor dz = detail::fused_activation_grad(act, ctx.output(), ctx.dy());
    if (ctx.needs(0)) {
      const auto dx = ctx.dx_out(0);
      k.backward_data(g, dz.data(), ctx.input(1).data(), dx.data, dx.accumulate);
    }
    const bool want_bias = has_bias && ctx.needs(2);
    if (!ctx.needs(1) && !want_bias) return;
    // oneDNN computes the kernel and bias gradients in one pass; a kernel gradient no one
    // asked for goes to a scratch buffer.
    std::shared_ptr<float[]> scratch;
    BackwardContext::GradOut dw{nullptr, false}, db{nullptr, false};
    if (ctx.needs(1)) {
      dw = ctx.dx_out(1);
    } else {
      scratch = detail::allocate_storage(ctx.input(1).numel());
      dw.data = scratch.get();
    }
    if (want_bias) db = ctx.dx_out(2);
    k.backward_weights(g, ctx.input(0).data(), dz.data(), dw.data, dw.accumulate, db.data, db.accumulate);
  });
  return y;
}

}  // namespace

Tensor conv2d(const Tensor& x, const Tensor& kernel, const Tensor& bias, const Conv2DOptions& o) {
  if (kernel.rank() != 4)
    throw ShapeError("conv2d: kernel must be (KH, KW, C, F) (Keras' layout), got " + kernel.shape().str());
  if (x.rank() == 4 && x.dim(3) != kernel.dim(2))
    throw ShapeError("conv2d: x " + x.shape().str() + " has " + std::to_string(x.dim(3)) + " channels, kernel " +
                     kernel.shape().str() + " expects " + std::to_string(kernel.dim(2)));
  const int64_t f = kernel.dim(3);
  if (bias.defined() && bias.shape() != Shape{f})
    throw ShapeError("conv2d: bias " + bias.shape().str() + " does not match the " + std::to_string(f) +
                     " filters of kernel " + kernel.shape().str());
  const kernels::Geometry2d g =
      detail::image_window("conv2d", x.shape(), f, {kernel.dim(0), kernel.dim(1)}, o.strides, o.padding);
  return convolve("conv2d", x, kernel, bias, g, o.act);
}

Tensor conv1d(const Tensor& x, const Tensor& kernel, const Tensor& bias, const Conv1DOptions& o) {
  if (kernel.rank() != 3)
    throw ShapeError("conv1d: kernel must be (K, C, F) (Keras' layout), got " + kernel.shape().str());
  if (x.rank() != 3 || x.dim(2) != kernel.dim(1))
    throw ShapeError("conv1d: expects sequences (N, T, " + std::to_string(kernel.dim(1)) +
                     ") (channels last) for kernel " + kernel.shape().str() + ", got " + x.shape().str());
  const int64_t f = kernel.dim(2), k = kernel.dim(0);
  if (bias.defined() && bias.shape() != Shape{f})
    throw ShapeError("conv1d: bias " + bias.shape().str() + " does not match the " + std::to_string(f) +
                     " filters of kernel " + kernel.shape().str());
  kernels::check_window("conv1d", "kernel_size", Size2(1, k), Size2(1, o.strides));
  if (o.dilation_rate < 1 || o.dilation_rate > kernels::kMaxWindow)
    throw ValueError("conv1d: dilation_rate must be in [1, " + std::to_string(kernels::kMaxWindow) + "], got " +
                     std::to_string(o.dilation_rate));
  const kernels::Axis a = kernels::dilated_axis(x.dim(1), k, o.strides, o.dilation_rate, o.padding);
  if (a.out < 1)
    throw ShapeError("conv1d: the kernel of " + std::to_string(k) + " taps (dilation " +
                     std::to_string(o.dilation_rate) + ") does not fit input " + x.shape().str() +
                     " with 'valid' padding; use padding 'same' or 'causal', or a longer input");
  kernels::Geometry2d g{.n = x.dim(0), .h = 1, .w = x.dim(1), .c = x.dim(2), .f = f, .kh = 1, .kw = k,
                        .sh = 1, .sw = o.strides, .pad_left = a.pad_lo, .pad_right = a.pad_hi, .oh = 1,
                        .ow = a.out, .dw = o.dilation_rate};
  const Tensor y = convolve("conv1d", reshape(x, {g.n, 1, g.w, g.c}), reshape(kernel, {1, k, g.c, f}), bias, g, o.act);
  return reshape(y, {g.n, g.ow, f});
}

Tensor conv2d_transpose(const Tensor& x, const Tensor& kernel, const Tensor& bias, const Conv2DTransposeOptions& o) {
  const char* op = "conv2d_transpose";
  if (kernel.rank() != 4)
    throw ShapeError("conv2d_transpose: kernel must be (KH, KW, F, C) (Keras' Conv2DTranspose layout), got " +
                     kernel.shape().str());
  if (x.rank() != 4)
    throw ShapeError("conv2d_transpose: expects images (N, H, W, C) (channels last), got " + x.shape().str());
  if (x.dim(3) != kernel.dim(3))
    throw ShapeError("conv2d_transpose: x " + x.shape().str() + " has " + std::to_string(x.dim(3)) +
                     " channels, kernel " + kernel.shape().str() + " (KH, KW, F, C) expects " +
                     std::to_string(kernel.dim(3)));
  const int64_t f = kernel.dim(2);
  if (bias.defined() && bias.shape() != Shape{f})
    throw ShapeError("conv2d_transpose: bias " + bias.shape().str() + " does not match the " + std::to_string(f) +
                     " filters of kernel " + kernel.shape().str());
  const Size2 k{kernel.dim(0), kernel.dim(1)}, s = o.strides, d = o.dilation_rate;
  kernels::check_window(op, "kernel_size", k, s);
  kernels::check_window(op, "kernel_size", k, d);  // the dilation within the same bounds
  if (o.output_padding) {
    const Size2 p = *o.output_padding;
    if (p.h < 0 || p.w < 0 || p.h >= s.h || p.w >= s.w)
      throw ValueError("conv2d_transpose: output_padding " + kernels::size2_str(p) +
                       " must be at least 0 and less than the strides " + kernels::size2_str(s));
  }
  if (x.dim(1) < 1 || x.dim(2) < 1)
    throw ShapeError("conv2d_transpose: expects images of at least 1x1, got " + x.shape().str());
  const bool same = o.padding == Padding::same;
  const int64_t* ph = o.output_padding ? &o.output_padding->h : nullptr;
  const int64_t* pw = o.output_padding ? &o.output_padding->w : nullptr;
  const kernels::Axis ay = kernels::transpose_axis(x.dim(1), k.h, s.h, d.h, same, ph);
  const kernels::Axis ax = kernels::transpose_axis(x.dim(2), k.w, s.w, d.w, same, pw);
  const kernels::Geometry2d g{.n = x.dim(0), .h = x.dim(1), .w = x.dim(2), .c = x.dim(3), .f = f, .kh = k.h,
                              .kw = k.w, .sh = s.h, .sw = s.w, .pad_top = ay.pad_lo, .pad_bottom = ay.pad_hi,
                              .pad_left = ax.pad_lo, .pad_right = ax.pad_hi, .oh = ay.out, .ow = ax.out,
                              .dh = d.h, .dw = d.w};
  return convolve(op, x, kernel, bias, g, o.act, kTransposed);
}

}  // namespace lamina
