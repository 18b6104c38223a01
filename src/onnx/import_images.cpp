// The image layers of an ONNX graph: Conv, MaxPool, AveragePool, GlobalAveragePool,
// GlobalMaxPool and ReduceMean over H and W, as Lamina's channels-last Conv2D and pooling layers.
// ONNX pads explicitly; Lamina knows 'valid' and 'same', so resolve_padding checks that one of
// them places the windows exactly where the ONNX node does.
#include <algorithm>

#include "onnx/import_state.hpp"

namespace lamina::onnx::detail {

// The Lamina padding whose windows are ONNX's: 'valid' (no padding before) or 'same'
// (TensorFlow's split, the odd row/column after), with the same output size. out: (OH, OW);
// padded: whether any window reaches outside the image.
Padding Importer::resolve_padding(const Node&, Size2 kernel, Size2 strides, bool ceil_mode, Size2& out) const {
  const int64_t in[2] = {flow_.shape[1], flow_.shape[2]}, k[2] = {kernel.h, kernel.w}, s[2] = {strides.h, strides.w};
  int64_t valid_out[2], same_out[2], same_begin[2], same_total[2];
  for (int d = 0; d < 2; ++d) {
    if (k[d] <= 0 || s[d] <= 0 || k[d] > kMaxDim || s[d] > kMaxDim)
      fail("kernel " + std::to_string(k[d]) + " and stride " + std::to_string(s[d]) + " must be positive and sensible");
    valid_out[d] = in[d] >= k[d] ? (in[d] - k[d]) / s[d] + 1 : 0;
    same_out[d] = ceil_div(in[d], s[d]);
    same_total[d] = std::max<int64_t>((same_out[d] - 1) * s[d] + k[d] - in[d], 0);
    same_begin[d] = same_total[d] / 2;
  }
  const std::string auto_pad = attr_string("auto_pad", "NOTSET");
  auto use = [&](const int64_t* o, Padding p) {
    if (o[0] < 1 || o[1] < 1)
      fail("its " + std::to_string(k[0]) + "x" + std::to_string(k[1]) + " window does not fit the " +
           std::to_string(in[0]) + "x" + std::to_string(in[1]) + " input");
    out = Size2(o[0], o[1]);
    return p;
  };
  if (auto_pad == "VALID") return use(valid_out, Padding::valid);
  if (auto_pad == "SAME_UPPER") return use(same_out, Padding::same);
  if (auto_pad == "SAME_LOWER") {
    if (same_total[0] % 2 || same_total[1] % 2)
      fail("auto_pad SAME_LOWER puts the odd padding row/column first here; Lamina's 'same' puts it last");
    return use(same_out, Padding::same);
  }
  if (auto_pad != "NOTSET" && !auto_pad.empty()) fail("auto_pad '" + auto_pad + "' is not known");
  std::vector<int64_t> pads = attr_ints("pads");
  if (pads.empty()) pads.assign(4, 0);
  if (pads.size() != 4 || std::any_of(pads.begin(), pads.end(), [](int64_t p) { return p < 0 || p > kMaxDim; }))
    fail("pads " + dims_text(pads) + " must be 4 non-negative numbers (top, left, bottom, right)");
  int64_t onnx_out[2];
  for (int d = 0; d < 2; ++d) {
    const int64_t span = in[d] + pads[static_cast<size_t>(d)] + pads[static_cast<size_t>(d + 2)] - k[d];
    if (span < 0) onnx_out[d] = 0;
    else if (!ceil_mode) onnx_out[d] = span / s[d] + 1;
    else {  // the last window must start inside the image or its leading padding
      onnx_out[d] = ceil_div(span, s[d]) + 1;
      if ((onnx_out[d] - 1) * s[d] >= in[d] + pads[static_cast<size_t>(d)]) --onnx_out[d];
    }
  }
  if (pads[0] == 0 && pads[1] == 0 && onnx_out[0] == valid_out[0] && onnx_out[1] == valid_out[1])
    return use(valid_out, Padding::valid);
  if (pads[0] == same_begin[0] && pads[1] == same_begin[1] && onnx_out[0] == same_out[0] && onnx_out[1] == same_out[1])
    return use(same_out, Padding::same);
  fail("pads " + dims_text(pads) + " with a " + std::to_string(k[0]) + "x" + std::to_string(k[1]) +
       " window, strides " + std::to_string(s[0]) + "x" + std::to_string(s[1]) + (ceil_mode ? ", ceil_mode" : "") +
       " on a " + std::to_string(in[0]) + "x" + std::to_string(in[1]) + " input give " + std::to_string(onnx_out[0]) +
       "x" + std::to_string(onnx_out[1]) + " windows that neither Lamina padding places alike: 'valid' is pads (0, 0, "
       "*, *) for " + std::to_string(valid_out[0]) + "x" + std::to_string(valid_out[1]) + ", 'same' is pads (" +
       std::to_string(same_begin[0]) + ", " + std::to_string(same_begin[1]) + ", " +
       std::to_string(same_total[0] - same_begin[0]) + ", " + std::to_string(same_total[1] - same_begin[1]) + ") for " +
       std::to_string(same_out[0]) + "x" + std::to_string(same_out[1]));
}

void Importer::conv(const Node& n) {
  require_image("Conv");
  if (n.inputs.size() < 2) fail("expects inputs X, W and optionally B");
  if (n.inputs[0] != flow_.name) fail("the activation must be input X");
  const Const& w = constant(1, "W (the kernel)");
  if (!w.is_float || w.dims.size() != 4)
    fail("W (the kernel) must be a float (O, I, KH, KW) tensor, got " + dims_text(w.dims) + " (only 2-D convolutions)");
  if (attr_int("group", 1) != 1)
    fail("group = " + std::to_string(attr_int("group", 1)) + " (a grouped or depthwise convolution) is not supported");
  for (int64_t d : attr_ints("dilations"))
    if (d != 1) fail("dilations " + dims_text(attr_ints("dilations")) + " are not supported (only 1)");
  const int64_t filters = w.dims[0], in_ch = w.dims[1], kh = w.dims[2], kw = w.dims[3];
  const int64_t c = flow_.shape[0];
  if (in_ch != c)
    fail("W " + dims_text(w.dims) + " takes " + std::to_string(in_ch) + " input channels but its input " +
         act_text(flow_.shape) + " has " + std::to_string(c));
  const std::vector<int64_t> ks = attr_ints("kernel_shape");
  if (!ks.empty() && ks != std::vector<int64_t>{kh, kw})
    fail("kernel_shape " + dims_text(ks) + " does not match W " + dims_text(w.dims));
  std::vector<int64_t> st = attr_ints("strides");
  if (st.empty()) st = {1, 1};
  if (st.size() != 2) fail("strides " + dims_text(st) + " must have 2 entries");
  Size2 out;
  const Padding padding = resolve_padding(n, Size2(kh, kw), Size2(st[0], st[1]), false, out);
  // OIHW -> HWIO
  Tensor kernel = Tensor::empty({kh, kw, in_ch, filters});
  float* kd = kernel.data();
  for (int64_t o = 0; o < filters; ++o)
    for (int64_t i = 0; i < in_ch; ++i)
      for (int64_t y = 0; y < kh; ++y)
        for (int64_t x = 0; x < kw; ++x)
          kd[((y * kw + x) * in_ch + i) * filters + o] = w.f[static_cast<size_t>(((o * in_ch + i) * kh + y) * kw + x)];
  Planned& p = plan("Conv2D");
  p.units = filters;
  p.window = Size2(kh, kw);
  p.strides = Size2(st[0], st[1]);
  p.padding = padding;
  p.weights["kernel"] = kernel;
  if (const Const* b = optional_constant(2, "B (the bias)")) {
    if (!b->is_float || b->numel() != filters)
      fail("B (the bias) has shape " + dims_text(b->dims) + "; expected (" + std::to_string(filters) + ",)");
    p.use_bias = true;
    p.weights["bias"] = Tensor::from(b->f, {filters});
  }
  flow_.shape = {filters, out.h, out.w};
  advance(n);
}

void Importer::pool(const Node& n) {
  const bool is_max = n.op_type == "MaxPool";
  require_image(is_max ? "MaxPool" : "AveragePool");
  if (n.outputs.size() > 1 && !n.outputs[1].empty()) fail("the Indices output is not supported");
  const std::vector<int64_t> ks = attr_ints("kernel_shape");
  if (ks.size() != 2) fail("kernel_shape " + dims_text(ks) + " must have 2 entries");
  std::vector<int64_t> st = attr_ints("strides");
  if (st.empty()) st = {1, 1};  // ONNX's default, unlike Keras' (the pool size)
  if (st.size() != 2) fail("strides " + dims_text(st) + " must have 2 entries");
  for (int64_t d : attr_ints("dilations"))
    if (d != 1) fail("dilations are not supported (only 1)");
  Size2 out;
  const Padding padding = resolve_padding(n, Size2(ks[0], ks[1]), Size2(st[0], st[1]), attr_int("ceil_mode", 0) != 0, out);
  if (!is_max && padding == Padding::same && attr_int("count_include_pad", 0) != 0) {
    const int64_t pad_h = (out.h - 1) * st[0] + ks[0] - flow_.shape[1], pad_w = (out.w - 1) * st[1] + ks[1] - flow_.shape[2];
    if (pad_h > 0 || pad_w > 0)
      fail("count_include_pad = 1 divides border windows by the whole window; Lamina's AveragePooling2D divides by "
           "the cells inside the image (count_include_pad = 0)");
  }
  Planned& p = plan(is_max ? "MaxPooling2D" : "AveragePooling2D");
  p.window = Size2(ks[0], ks[1]);
  p.strides = Size2(st[0], st[1]);
  p.padding = padding;
  flow_.shape = {flow_.shape[0], out.h, out.w};
  advance(n);
}

void Importer::global_pool(const Node& n) {
  require_image(n.op_type.c_str());
  if (n.op_type == "GlobalAveragePool") {
    plan("GlobalAveragePooling2D").keepdims = true;  // ONNX keeps (C, 1, 1)
  } else {  // the max over the whole image: one window as big as the image
    Planned& p = plan("MaxPooling2D");
    p.window = p.strides = Size2(flow_.shape[1], flow_.shape[2]);
  }
  flow_.shape = {flow_.shape[0], 1, 1};
  advance(n);
}

void Importer::reduce_mean(const Node& n) {
  require_image("ReduceMean");
  std::vector<int64_t> axes;
  if (node_->attribute("axes")) axes = attr_ints("axes");
  else if (const Const* c = optional_constant(1, "axes")) axes = ints_of(*c, "axes");
  for (int64_t& a : axes) a = a < 0 ? a + 4 : a;
  std::sort(axes.begin(), axes.end());
  if (axes != std::vector<int64_t>{2, 3})
    fail("averages over axes " + dims_text(axes) + "; only the mean over H and W (axes 2, 3) is supported");
  const bool keepdims = attr_int("keepdims", 1) != 0;
  plan("GlobalAveragePooling2D").keepdims = keepdims;
  if (keepdims) {
    flow_.shape = {flow_.shape[0], 1, 1};
  } else {
    flow_.shape = {flow_.shape[0]};
    flow_.axes = {0, 1};
  }
  advance(n);
}

}  // namespace lamina::onnx::detail
