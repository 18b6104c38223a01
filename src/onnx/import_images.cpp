// The image layers of an ONNX graph: Conv, ConvTranspose, MaxPool, AveragePool, GlobalAveragePool,
// GlobalMaxPool and ReduceMean over H and W, as Lamina's channels-last Conv2D and pooling layers.
// ONNX pads explicitly; Lamina knows 'valid' and 'same', so resolve_padding checks that one of
// them places the windows exactly where the ONNX node does.
#include <algorithm>
#include <utility>

#include "kernels/window.hpp"
#include "onnx/import_state.hpp"

namespace lamina::onnx::detail {

// The Lamina padding whose windows are ONNX's: 'valid' (no padding before) or 'same'
// (TensorFlow's split, the odd row/column after), with the same output size. Windows start at
// i * stride - pad_before for i < out, so the same padding before and the same output size mean
// the same windows. out: (OH, OW). The arithmetic is kernels/window.hpp's.
Padding Importer::resolve_padding(const Node&, Size2 kernel, Size2 strides, bool ceil_mode, Size2& out,
                                  Size2* subsample) const {
  if (subsample) *subsample = Size2(1, 1);
  const int64_t in_h = flow_.shape[1], in_w = flow_.shape[2];
  for (const auto& [k, s] : {std::pair{kernel.h, strides.h}, std::pair{kernel.w, strides.w}})
    if (k <= 0 || s <= 0 || k > kMaxDim || s > kMaxDim)
      fail("kernel " + std::to_string(k) + " and stride " + std::to_string(s) + " must be positive and sensible");
  const kernels::Geometry2d valid = kernels::window_geometry(1, in_h, in_w, 1, 1, kernel, strides, Padding::valid);
  const kernels::Geometry2d same = kernels::window_geometry(1, in_h, in_w, 1, 1, kernel, strides, Padding::same);
  const std::string auto_pad = attr_string("auto_pad", "NOTSET");
  auto use = [&](const kernels::Geometry2d& g, Padding p) {
    if (g.oh < 1 || g.ow < 1)
      fail("its " + kernels::size2_str(kernel) + " window does not fit the " + kernels::size2_str({in_h, in_w}) +
           " input");
    out = Size2(g.oh, g.ow);
    return p;
  };
  if (auto_pad == "VALID") return use(valid, Padding::valid);
  if (auto_pad == "SAME_UPPER") return use(same, Padding::same);
  if (auto_pad == "SAME_LOWER") {
    if (same.pad_top != same.pad_bottom || same.pad_left != same.pad_right)
      fail("auto_pad SAME_LOWER puts the odd padding row/column first here; Lamina's 'same' puts it last");
    return use(same, Padding::same);
  }
  if (auto_pad != "NOTSET" && !auto_pad.empty()) fail("auto_pad '" + auto_pad + "' is not known");
  std::vector<int64_t> pads = attr_ints("pads");
  if (pads.empty()) pads.assign(4, 0);
  if (pads.size() != 4 || std::any_of(pads.begin(), pads.end(), [](int64_t p) { return p < 0 || p > kMaxDim; }))
    fail("pads " + dims_text(pads) + " must be 4 non-negative numbers (top, left, bottom, right)");
  const Size2 onnx_out(kernels::explicit_pads_axis(in_h, kernel.h, strides.h, pads[0], pads[2], ceil_mode),
                       kernels::explicit_pads_axis(in_w, kernel.w, strides.w, pads[1], pads[3], ceil_mode));
  if (pads[0] == 0 && pads[1] == 0 && onnx_out == Size2(valid.oh, valid.ow)) return use(valid, Padding::valid);
  if (pads[0] == same.pad_top && pads[1] == same.pad_left && onnx_out == Size2(same.oh, same.ow))
    return use(same, Padding::same);
  // PyTorch's padding=1 with stride 2 on an even size: its windows start at i * s - pad, which are
  // the stride-1 'same' windows (starting at j - pad) at j = i * s, when 'same' pads as much before.
  const kernels::Geometry2d same1 = kernels::window_geometry(1, in_h, in_w, 1, 1, kernel, Size2(1, 1), Padding::same);
  const Size2 kept((in_h - 1) / strides.h + 1, (in_w - 1) / strides.w + 1);  // j = 0, s, 2s, ... < in
  if (subsample && pads[0] == same1.pad_top && pads[1] == same1.pad_left && onnx_out == kept) {
    *subsample = strides;
    out = onnx_out;
    return Padding::same;
  }
  fail("pads " + dims_text(pads) + " with a " + kernels::size2_str(kernel) + " window, strides " +
       kernels::size2_str(strides) + (ceil_mode ? ", ceil_mode" : "") + " on a " + kernels::size2_str({in_h, in_w}) +
       " input give " + kernels::size2_str(onnx_out) + " windows that neither Lamina padding places alike: 'valid' is "
       "pads (0, 0, *, *) for " + kernels::size2_str({valid.oh, valid.ow}) + ", 'same' is pads (" +
       std::to_string(same.pad_top) + ", " + std::to_string(same.pad_left) + ", " + std::to_string(same.pad_bottom) +
       ", " + std::to_string(same.pad_right) + ") for " + kernels::size2_str({same.oh, same.ow}));
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
  Size2 out, subsample;
  const Padding padding = resolve_padding(n, Size2(kh, kw), Size2(st[0], st[1]), false, out, &subsample);
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
  p.strides = subsample == Size2(1, 1) ? Size2(st[0], st[1]) : Size2(1, 1);
  p.subsample = subsample;
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

// ConvTranspose as Conv2DTranspose. ONNX's output is the full transposed convolution,
// (in - 1) s + (k - 1) d + 1 cells per axis, less pads_begin at the start and pads_end -
// output_padding at the end (output_shape or auto_pad SAME_* set the pads as the ONNX spec
// says). Lamina takes it when one of Keras' settings (valid or same, without or with an
// output_padding) gives the same size and the same crop at the start (kernels::transpose_axis),
// which fixes the crop at the end too.
void Importer::conv_transpose(const Node& n) {
  require_image("ConvTranspose");
  if (n.inputs.size() < 2) fail("expects inputs X, W and optionally B");
  if (n.inputs[0] != flow_.name) fail("the activation must be input X");
  const Const& w = constant(1, "W (the kernel)");
  if (!w.is_float || w.dims.size() != 4)
    fail("W (the kernel) must be a float (C, F, KH, KW) tensor, got " + dims_text(w.dims) +
         " (only 2-D transposed convolutions)");
  if (attr_int("group", 1) != 1)
    fail("group = " + std::to_string(attr_int("group", 1)) + " (a grouped transposed convolution) is not supported");
  const int64_t in_ch = w.dims[0], filters = w.dims[1], kh = w.dims[2], kw = w.dims[3];
  if (in_ch != flow_.shape[0])
    fail("W " + dims_text(w.dims) + " takes " + std::to_string(in_ch) + " input channels but its input " +
         act_text(flow_.shape) + " has " + std::to_string(flow_.shape[0]));
  const std::vector<int64_t> ks = attr_ints("kernel_shape");
  if (!ks.empty() && ks != std::vector<int64_t>{kh, kw})
    fail("kernel_shape " + dims_text(ks) + " does not match W " + dims_text(w.dims));
  auto pair = [&](const char* name, int64_t fallback, int64_t lowest) {
    std::vector<int64_t> v = attr_ints(name);
    if (v.empty()) v = {fallback, fallback};
    if (v.size() != 2 || std::any_of(v.begin(), v.end(), [&](int64_t e) { return e < lowest || e > kernels::kMaxWindow; }))
      fail(std::string(name) + " " + dims_text(v) + " must be 2 numbers in [" + std::to_string(lowest) + ", " +
           std::to_string(kernels::kMaxWindow) + "]");
    return v;
  };
  const std::vector<int64_t> st = pair("strides", 1, 1), dl = pair("dilations", 1, 1), op = pair("output_padding", 0, 0);
  if (std::max(st[0], st[1]) > 1 && std::max(dl[0], dl[1]) > 1)
    fail("strides " + dims_text(st) + " with dilations " + dims_text(dl) +
         ": Keras' Conv2DTranspose takes no stride above 1 together with a dilation above 1");
  const int64_t in[2] = {flow_.shape[1], flow_.shape[2]}, k[2] = {kh, kw};
  if (kh < 1 || kw < 1 || kh > kernels::kMaxWindow || kw > kernels::kMaxWindow)
    fail("W " + dims_text(w.dims) + ": the kernel window must be between 1 and " + std::to_string(kernels::kMaxWindow));
  int64_t full[2], lo[2], end[2], out[2];
  for (int a = 0; a < 2; ++a) full[a] = (in[a] - 1) * st[a] + (k[a] - 1) * dl[a] + 1;
  const std::string auto_pad = attr_string("auto_pad", "NOTSET");
  std::vector<int64_t> target = attr_ints("output_shape");
  if (target.size() == 4) target.erase(target.begin(), target.begin() + 2);  // (N, C, H, W) as some exporters write
  if (!target.empty() || auto_pad == "SAME_UPPER" || auto_pad == "SAME_LOWER") {
    if (target.empty()) target = {in[0] * st[0], in[1] * st[1]};
    if (target.size() != 2) fail("output_shape " + dims_text(attr_ints("output_shape")) + " must have 2 entries (H, W)");
    for (int a = 0; a < 2; ++a) {
      const int64_t total = full[a] + op[a] - target[a];
      if (total < 0 || target[a] < 1)
        fail("output_shape " + dims_text(target) + " is larger than the transposed convolution gives");
      const bool upper = auto_pad == "SAME_UPPER";  // the spec's split: the odd cell last for SAME_UPPER
      lo[a] = upper ? total / 2 : total - total / 2;
      end[a] = total - lo[a];
    }
  } else if (auto_pad == "VALID") {
    lo[0] = lo[1] = end[0] = end[1] = 0;
  } else {
    if (auto_pad != "NOTSET" && !auto_pad.empty()) fail("auto_pad '" + auto_pad + "' is not known");
    std::vector<int64_t> pads = attr_ints("pads");
    if (pads.empty()) pads.assign(4, 0);
    if (pads.size() != 4 || std::any_of(pads.begin(), pads.end(), [](int64_t p) { return p < 0 || p > kMaxDim; }))
      fail("pads " + dims_text(pads) + " must be 4 non-negative numbers (top, left, bottom, right)");
    lo[0] = pads[0], lo[1] = pads[1], end[0] = pads[2], end[1] = pads[3];
  }
  for (int a = 0; a < 2; ++a) {
    out[a] = full[a] + op[a] - lo[a] - end[a];
    if (out[a] < 1) fail("crops the whole " + std::to_string(full[a]) + "-cell output away");
  }
  // Keras' settings that crop alike: no output_padding first, then the one each axis needs.
  std::optional<std::pair<Padding, std::optional<Size2>>> found;
  for (Padding padding : {Padding::valid, Padding::same}) {
    const bool same = padding == Padding::same;
    bool plain = true, explicit_ok = true;
    int64_t pad[2];
    for (int a = 0; a < 2; ++a) {
      const kernels::Axis none = kernels::transpose_axis(in[a], k[a], st[a], dl[a], same, nullptr);
      plain = plain && none.out == out[a] && none.pad_lo == lo[a];
      const int64_t span = (k[a] - 1) * dl[a] + 1;
      pad[a] = out[a] - ((in[a] - 1) * st[a] + (same ? span % 2 : span));
      explicit_ok = explicit_ok && pad[a] >= 0 && pad[a] < st[a] &&
                    kernels::transpose_axis(in[a], k[a], st[a], dl[a], same, &pad[a]).pad_lo == lo[a];
    }
    if (plain) found.emplace(padding, std::nullopt);
    else if (explicit_ok) found.emplace(padding, Size2(pad[0], pad[1]));
    if (found) break;
  }
  if (!found)
    fail("crops (" + std::to_string(lo[0]) + ", " + std::to_string(lo[1]) + ") at the start and (" +
         std::to_string(end[0] - op[0]) + ", " + std::to_string(end[1] - op[1]) + ") at the end of its " +
         kernels::size2_str({full[0], full[1]}) + " output: neither Keras padding ('valid' crops nothing at the "
         "start; 'same' crops the smaller half of the excess at the start) with any output_padding places it alike");
  // (C, F, KH, KW) -> Keras' (KH, KW, F, C)
  Tensor kernel = Tensor::empty({kh, kw, filters, in_ch});
  float* kd = kernel.data();
  for (int64_t i = 0; i < in_ch; ++i)
    for (int64_t o = 0; o < filters; ++o)
      for (int64_t y = 0; y < kh; ++y)
        for (int64_t x = 0; x < kw; ++x)
          kd[((y * kw + x) * filters + o) * in_ch + i] = w.f[static_cast<size_t>(((i * filters + o) * kh + y) * kw + x)];
  Planned& p = plan("Conv2DTranspose");
  p.units = filters;
  p.window = Size2(kh, kw);
  p.strides = Size2(st[0], st[1]);
  p.dilation = Size2(dl[0], dl[1]);
  p.padding = found->first;
  p.output_padding = found->second;
  p.weights["kernel"] = kernel;
  if (const Const* b = optional_constant(2, "B (the bias)")) {
    if (!b->is_float || b->numel() != filters)
      fail("B (the bias) has shape " + dims_text(b->dims) + "; expected (" + std::to_string(filters) + ",)");
    p.use_bias = true;
    p.weights["bias"] = Tensor::from(b->f, {filters});
  }
  flow_.shape = {filters, out[0], out[1]};
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
    const kernels::Geometry2d g = kernels::window_geometry(1, flow_.shape[1], flow_.shape[2], 1, 1, Size2(ks[0], ks[1]),
                                                           Size2(st[0], st[1]), Padding::same);
    if (g.pad_bottom > 0 || g.pad_right > 0)  // 'same' puts the larger half after
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
