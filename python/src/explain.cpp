// lamina.explain's methods (src/explain: saliency to Grad-CAM) on NumPy inputs; attributions
// come back as NumPy arrays of the input's shape.
#include "common.hpp"
#include "lamina/explain.hpp"

namespace lamina::python {

namespace {

// Integers as Python writes them: int, or NumPy's (np.argmax gives np.int64), which are no int
// but have __index__; a sequence of them. Else TypeError naming the argument.
std::vector<int64_t> integers(py::handle v, const char* what) {
  if (PyIndex_Check(v.ptr()) && !PyBool_Check(v.ptr())) {
    if (PyObject* i = PyNumber_Index(v.ptr())) return {py::reinterpret_steal<py::int_>(i).cast<int64_t>()};
    PyErr_Clear();  // an integer array of several: a sequence, below
  }
  try {
    if (!py::isinstance<py::str>(v)) return v.cast<std::vector<int64_t>>();
  } catch (const py::cast_error&) {
  } catch (const py::error_already_set&) {
  }
  throw py::type_error(std::string(what) + ": expected an integer or a sequence of integers, got " +
                       py::str(py::type::of(v).attr("__name__")).cast<std::string>() + " " +
                       py::repr(v).cast<std::string>());
}

explain::Target target_of(py::handle t) {
  if (t.is_none()) return {};
  return integers(t, "target");
}

Shape shape_of(py::handle s) {
  if (s.is_none()) return Shape();
  return Shape(integers(s, "shape"));
}

}  // namespace

void bind_explain(py::module_& m) {
  py::module_ e = m.def_submodule("explain", "Attribution methods (explain.hpp).");
  e.def("saliency", [](Model& model, py::handle x, py::handle target, bool abs, const std::string& layer,
                       int64_t internal_batch_size) {
    Tensor in = tensor_from(x, "saliency: inputs");
    explain::Target t = target_of(target);  // reads Python objects: before the GIL is released
    py::gil_scoped_release release;
    return explain::saliency(model, in, {.target = std::move(t), .abs = abs, .layer = layer,
                                .internal_batch_size = internal_batch_size});
  });
  e.def("input_x_gradient", [](Model& model, py::handle x, py::handle target, const std::string& layer,
                               int64_t internal_batch_size) {
    Tensor in = tensor_from(x, "input_x_gradient: inputs");
    explain::Target t = target_of(target);
    py::gil_scoped_release release;
    return explain::input_x_gradient(model, in, {.target = std::move(t), .layer = layer,
                                        .internal_batch_size = internal_batch_size});
  });
  e.def("integrated_gradients", [](Model& model, py::handle x, py::handle target, py::handle baseline, int steps,
                                   const std::string& method, const std::string& layer, int64_t internal_batch_size) {
    Tensor in = tensor_from(x, "integrated_gradients: inputs");
    Tensor base = baseline.is_none() ? Tensor() : tensor_from(baseline, "integrated_gradients: baselines");
    explain::IntegratedGradientsOptions o{.target = target_of(target), .baseline = base, .steps = steps,
                                          .rule = explain::rule_from_string(method), .layer = layer,
                                          .internal_batch_size = internal_batch_size};
    py::gil_scoped_release release;
    auto r = explain::integrated_gradients(model, in, o);
    return std::make_tuple(r.attributions, r.delta, r.target);
  });
  e.def("noise_tunnel", [](Model& model, py::handle x, const std::string& method, const std::string& nt_type,
                           int nt_samples, float stdevs, py::handle target, py::handle seed) {
    Tensor in = tensor_from(x, "noise_tunnel: inputs");
    const explain::Target t = target_of(target);
    explain::Method inner;
    if (method == "saliency")
      inner = [&model, t](const Tensor& v) { return explain::saliency(model, v, {.target = t}); };
    else if (method == "input_x_gradient")
      inner = [&model, t](const Tensor& v) { return explain::input_x_gradient(model, v, {.target = t}); };
    else if (method == "integrated_gradients")
      inner = [&model, t](const Tensor& v) { return explain::integrated_gradients(model, v, {.target = t}).attributions; };
    else
      throw ValueError("noise_tunnel: unknown method '" + method +
                       "' (known: saliency, input_x_gradient, integrated_gradients)");
    explain::NoiseTunnelOptions o{.type = explain::noise_type_from_string(nt_type), .samples = nt_samples, .stdev = stdevs};
    if (!seed.is_none()) o.seed = seed.cast<uint64_t>();
    py::gil_scoped_release release;
    return explain::noise_tunnel(inner, in, o);
  });
  e.def("occlusion", [](Model& model, py::handle x, py::handle window, py::handle strides, float baseline,
                        py::handle target, int64_t perturbations_per_eval) {
    Tensor in = tensor_from(x, "occlusion: inputs");
    explain::OcclusionOptions o{.target = target_of(target), .window = shape_of(window), .strides = shape_of(strides),
                                .baseline = baseline, .perturbations_per_eval = perturbations_per_eval};
    py::gil_scoped_release release;
    return explain::occlusion(model, in, o);
  });
  e.def("grad_cam", [](Model& model, py::handle x, const std::string& layer, py::handle target, bool relu, bool upsample) {
    Tensor in = tensor_from(x, "grad_cam: inputs");
    explain::Target t = target_of(target);
    py::gil_scoped_release release;
    return explain::grad_cam(model, in, {.target = std::move(t), .layer = layer, .relu = relu, .upsample = upsample});
  });
  e.def("overlay", [](py::handle image, py::handle attributions, float alpha) {
    return explain::overlay(tensor_from(image, "overlay: image"), tensor_from(attributions, "overlay: attributions"),
                            {.alpha = alpha});
  });
}

}  // namespace lamina::python
