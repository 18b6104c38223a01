// NumPy arrays <-> Tensors without copies where the layout allows, lamina.Tensor with the buffer
// protocol and arithmetic, and lamina.ops: the differentiable ops a custom loss is written with.
#include <sstream>

#include "common.hpp"
#include "lamina/autograd.hpp"
#include "lamina/ops.hpp"

namespace lamina::python {

namespace {

std::string dtype_str(const py::array& a) { return py::str(a.dtype()).cast<std::string>(); }

// A Tensor whose storage is the array's memory; the tensor holds the array alive.
Tensor wrap(const py::array& a) {
  auto impl = std::make_shared<TensorImpl>();
  std::vector<int64_t> dims(a.shape(), a.shape() + a.ndim());
  impl->shape = Shape(std::move(dims));
  auto* data = static_cast<float*>(const_cast<void*>(a.data()));
  impl->storage = std::shared_ptr<float[]>(data, [ref = PyRef(a)](float*) {});
  impl->data = data;
  return Tensor(std::move(impl));
}

bool is_f32(const py::dtype& d) { return d.kind() == 'f' && d.itemsize() == 4 && d.attr("isnative").cast<bool>(); }

bool numeric(const py::array& a) {
  const char k = a.dtype().kind();
  return k == 'b' || k == 'i' || k == 'u' || k == 'f';
}

bool readable_in_place(const py::array& a) {
  const int flags = py::detail::array_proxy(a.ptr())->flags;
  return is_f32(a.dtype()) && (flags & py::array::c_style) &&
         (flags & py::detail::npy_api::NPY_ARRAY_ALIGNED_);
}

}  // namespace

bool is_array_like(py::handle obj) {
  return py::isinstance<Tensor>(obj) || py::isinstance<py::array>(obj) || py::hasattr(obj, "__array_interface__") ||
         py::hasattr(obj, "__array__");
}

Tensor tensor_from(py::handle obj, const std::string& what) {
  if (py::isinstance<Tensor>(obj)) return obj.cast<Tensor>();
  if (obj.is_none()) throw py::value_error(what + " is None; expected an array");
  py::array a;
  try {
    a = py::array::ensure(obj);
  } catch (const py::error_already_set&) {
  }
  if (!a) {  // ensure() fails on ragged lists and such: ask NumPy for its own error
    a = py::module_::import("numpy").attr("asarray")(obj);
  }
  if (!numeric(a))
    throw py::type_error(what + ": expected numbers, got an array of dtype " + dtype_str(a) + " and shape " +
                         py::str(a.attr("shape")).cast<std::string>());
  if (readable_in_place(a)) return wrap(a);  // C-contiguous float32: no copy
  auto converted = py::array_t<float, py::array::c_style | py::array::forcecast>::ensure(a);
  if (!converted) throw py::error_already_set();
  return wrap(converted);
}

Tensor tensor_sharing(py::handle obj, const std::string& what) {
  if (py::isinstance<Tensor>(obj)) return obj.cast<Tensor>();
  if (!py::isinstance<py::array>(obj))
    throw py::type_error(what + ": expected a numpy.ndarray of float32, got " +
                         py::str(py::type::of(obj).attr("__name__")).cast<std::string>());
  auto a = py::reinterpret_borrow<py::array>(obj);
  if (!is_f32(a.dtype()))
    throw py::type_error(what + ": shares the array's memory, so it must be float32, got " + dtype_str(a) +
                         " (convert first: x.astype(np.float32), which copies)");
  const int flags = py::detail::array_proxy(a.ptr())->flags;
  if (!(flags & py::array::c_style)) {
    const bool fortran = (flags & py::array::f_style) != 0;
    throw py::value_error(what + ": shares the array's memory, so it must be C-contiguous (row-major), but the array is " +
                          (fortran ? std::string("Fortran-ordered (column-major)") : std::string("a strided view")) +
                          " of shape " + py::str(a.attr("shape")).cast<std::string>() +
                          "; a copy would silently lose writes. Pass np.ascontiguousarray(x) and keep that array");
  }
  if (!(flags & py::detail::npy_api::NPY_ARRAY_WRITEABLE_))
    throw py::value_error(what + ": shares the array's memory, which is read-only; pass a writable array (x.copy())");
  if (!(flags & py::detail::npy_api::NPY_ARRAY_ALIGNED_))
    throw py::value_error(what + ": the array's memory is not aligned for float32; pass x.copy()");
  return wrap(a);
}

std::vector<Tensor> tensors_from(py::handle obj, const std::string& what) {
  std::vector<Tensor> out;
  if (py::isinstance<py::list>(obj) || py::isinstance<py::tuple>(obj)) {
    // A list of numbers is one array (Keras: a list of arrays is several inputs).
    auto seq = py::reinterpret_borrow<py::sequence>(obj);
    bool arrays = seq.size() > 0;
    for (auto item : seq) arrays = arrays && is_array_like(item);
    if (arrays) {
      size_t i = 0;
      for (auto item : seq) out.push_back(tensor_from(item, what + "[" + std::to_string(i++) + "]"));
      return out;
    }
  }
  out.push_back(tensor_from(obj, what));
  return out;
}

py::array to_numpy(const Tensor& t) {
  py::capsule owner(new Tensor(t.detach()), [](void* p) { delete static_cast<Tensor*>(p); });
  return py::array_t<float>(std::vector<py::ssize_t>(t.shape().begin(), t.shape().end()), t.data(), owner);
}

Json json_from(py::handle obj) {
  // Leaked on purpose: a static py::object would be released after the interpreter is gone.
  static auto* dumps = new py::object(py::module_::import("json").attr("dumps"));
  return Json::parse((*dumps)(obj).cast<std::string>());
}

py::object to_python(const Json& j) {
  static auto* loads = new py::object(py::module_::import("json").attr("loads"));
  return (*loads)(j.dump());
}

namespace {

// The other operand of an arithmetic operator: a tensor, or a number as a scalar.
Tensor operand(py::handle o) {
  if (py::isinstance<py::float_>(o) || py::isinstance<py::int_>(o)) return Tensor::scalar(o.cast<float>());
  return tensor_from(o, "operand");
}

}  // namespace

void bind_tensor(py::module_& m) {
  py::class_<Tensor>(m, "Tensor", py::buffer_protocol(), R"doc(
A float32 tensor: Lamina's array, with automatic differentiation.

It exposes the buffer protocol, so ``np.asarray(t)`` shares its memory. ``lamina.tensor(data)``
copies data into a new tensor; ``lamina.from_numpy(a)`` shares a float32 array's memory.
Arithmetic (``+ - * / @``, ``-t``, ``t ** p``) and ``lamina.ops`` are differentiable.)doc")
      .def(py::init([](py::handle data) { return tensor_from(data, "Tensor(data)").clone(); }), py::arg("data"),
           "A new tensor holding a float32 copy of ``data`` (an array, a list, a number).")
      .def_buffer([](Tensor& t) -> py::buffer_info {
        std::vector<py::ssize_t> shape(t.shape().begin(), t.shape().end());
        return py::buffer_info(t.data(), sizeof(float), py::format_descriptor<float>::format(),
                               static_cast<py::ssize_t>(shape.size()), shape,
                               py::detail::c_strides(shape, sizeof(float)));
      })
      .def_property_readonly("shape", [](const Tensor& t) { return py::tuple(py::cast(t.shape().dims())); }, "The dimensions, as a tuple.")
      .def_property_readonly("ndim", &Tensor::rank)
      .def_property_readonly("size", &Tensor::numel, "The number of elements.")
      .def_property_readonly("dtype", [](const Tensor&) { return py::dtype::of<float>(); })
      .def("numpy", &to_numpy, "A NumPy array over the same memory (no copy).")
      .def("data_ptr", [](const Tensor& t) { return reinterpret_cast<uintptr_t>(t.data()); },
           "The address of the first element, as torch.Tensor.data_ptr().")
      .def("item", &Tensor::item, "The value of a one-element tensor.")
      .def("clone", &Tensor::clone, "A copy, outside any gradient graph.")
      .def("detach", &Tensor::detach, "The same memory, outside any gradient graph.")
      .def("reshape", [](const Tensor& t, std::vector<int64_t> s) { return t.reshape(Shape(std::move(s))); }, py::arg("shape"))
      .def_property(
          "requires_grad", &Tensor::requires_grad,
          [](Tensor& t, bool on) { t.requires_grad_(on); }, "Whether backward() computes a gradient for this tensor.")
      .def_property_readonly("grad", [](const Tensor& t) -> py::object {
        Tensor g = t.grad();
        return g.defined() ? py::cast(g) : py::none();
      }, "The gradient accumulated by backward(), or None.")
      .def("backward", [](const Tensor& t) { t.backward(); }, "Backpropagates from this one-element tensor.")
      .def("__len__", [](const Tensor& t) {
        if (t.rank() == 0) throw py::type_error("len() of a 0-d tensor");
        return t.dim(0);
      })
      .def("__repr__", [](const Tensor& t) {
        std::ostringstream os;
        os << t;
        return os.str();
      })
      .def("__float__", &Tensor::item)
      .def("__add__", [](const Tensor& a, py::handle b) { return add(a, operand(b)); })
      .def("__radd__", [](const Tensor& a, py::handle b) { return add(operand(b), a); })
      .def("__sub__", [](const Tensor& a, py::handle b) { return sub(a, operand(b)); })
      .def("__rsub__", [](const Tensor& a, py::handle b) { return sub(operand(b), a); })
      .def("__mul__", [](const Tensor& a, py::handle b) { return mul(a, operand(b)); })
      .def("__rmul__", [](const Tensor& a, py::handle b) { return mul(operand(b), a); })
      .def("__truediv__", [](const Tensor& a, py::handle b) { return div(a, operand(b)); })
      .def("__rtruediv__", [](const Tensor& a, py::handle b) { return div(operand(b), a); })
      .def("__matmul__", [](const Tensor& a, py::handle b) { return matmul(a, operand(b)); })
      .def("__neg__", [](const Tensor& a) { return neg(a); })
      .def("__pow__", [](const Tensor& a, float p) { return pow(a, p); });

  m.def("tensor", [](py::handle data) { return tensor_from(data, "tensor(data)").clone(); }, py::arg("data"),
        "A new float32 tensor with a copy of ``data``, as torch.tensor.");
  m.def("from_numpy", [](py::handle a) { return tensor_sharing(a, "from_numpy"); }, py::arg("array"),
        R"doc(A tensor sharing ``array``'s memory, as torch.from_numpy: writes through either are seen by the
other. The array must be float32, C-contiguous and writable: a Fortran-ordered or strided array is
refused (ValueError), since a copy would silently lose the writes.)doc");

  py::module_ ops = m.def_submodule("ops", "Differentiable operations on tensors, for custom losses (keras.ops).");
  auto unary = [&ops](const char* name, Tensor (*f)(const Tensor&), const char* doc) {
    ops.def(name, [f](py::handle x) { return f(tensor_from(x, "x")); }, py::arg("x"), doc);
  };
  unary("square", &square, "x * x, elementwise.");
  unary("abs", &abs, "|x|, elementwise.");
  unary("exp", &exp, "e ** x, elementwise.");
  unary("log", &log, "The natural logarithm, elementwise.");
  unary("sqrt", &sqrt, "The square root, elementwise.");
  unary("relu", &relu, "max(x, 0), elementwise.");
  unary("sigmoid", &sigmoid, "1 / (1 + e ** -x), elementwise.");
  unary("tanh", &tanh, "tanh(x), elementwise.");
  unary("negative", &neg, "-x.");
  auto binary = [&ops](const char* name, Tensor (*f)(const Tensor&, const Tensor&), const char* doc) {
    ops.def(name, [f](py::handle a, py::handle b) { return f(operand(a), operand(b)); }, py::arg("x1"), py::arg("x2"), doc);
  };
  binary("add", static_cast<Tensor (*)(const Tensor&, const Tensor&)>(&add), "x1 + x2, broadcasting.");
  binary("subtract", static_cast<Tensor (*)(const Tensor&, const Tensor&)>(&sub), "x1 - x2, broadcasting.");
  binary("multiply", static_cast<Tensor (*)(const Tensor&, const Tensor&)>(&mul), "x1 * x2, broadcasting.");
  binary("divide", &div, "x1 / x2, broadcasting.");
  // The engine's maximum and minimum take one shape; keras.ops' broadcast (ops.maximum(x, 0.0) in
  // a hinge loss), so each operand is first broadcast by adding zeros of the other's shape (add
  // broadcasts, and its backward sums the gradient back to the operand's shape).
  auto extremum = [&ops](const char* name, Tensor (*f)(const Tensor&, const Tensor&), const char* doc) {
    ops.def(name, [f](py::handle x1, py::handle x2) {
      Tensor a = operand(x1), b = operand(x2);
      if (a.shape() != b.shape()) {
        const Tensor za = Tensor::zeros(a.shape()), zb = Tensor::zeros(b.shape());
        a = add(a, zb);
        b = add(b, za);
      }
      return f(a, b);
    }, py::arg("x1"), py::arg("x2"), doc);
  };
  extremum("maximum", &maximum, "The larger of x1 and x2, elementwise, broadcasting.");
  extremum("minimum", &minimum, "The smaller of x1 and x2, elementwise, broadcasting.");
  binary("matmul", &matmul, "The matrix product.");
  auto reduction = [&ops](const char* name, Tensor (*all)(const Tensor&), Tensor (*along)(const Tensor&, int64_t, bool),
                          const char* doc) {
    ops.def(name, [all, along](py::handle x, std::optional<int64_t> axis, bool keepdims) {
      Tensor t = tensor_from(x, "x");
      return axis ? along(t, *axis, keepdims) : all(t);
    }, py::arg("x"), py::arg("axis") = py::none(), py::arg("keepdims") = false, doc);
  };
  reduction("sum", static_cast<Tensor (*)(const Tensor&)>(&sum),
            static_cast<Tensor (*)(const Tensor&, int64_t, bool)>(&sum), "The sum over `axis` (all elements: None).");
  reduction("mean", static_cast<Tensor (*)(const Tensor&)>(&mean),
            static_cast<Tensor (*)(const Tensor&, int64_t, bool)>(&mean), "The mean over `axis` (all elements: None).");
  ops.def("max", [](py::handle x, int64_t axis, bool keepdims) { return max(tensor_from(x, "x"), axis, keepdims); },
          py::arg("x"), py::arg("axis") = -1, py::arg("keepdims") = false, "The maximum along `axis`.");
  ops.def("softmax", [](py::handle x, int64_t axis) { return softmax(tensor_from(x, "x"), axis); }, py::arg("x"),
          py::arg("axis") = -1);
  ops.def("log_softmax", [](py::handle x, int64_t axis) { return log_softmax(tensor_from(x, "x"), axis); }, py::arg("x"),
          py::arg("axis") = -1);
  ops.def("clip", [](py::handle x, float lo, float hi) { return clamp(tensor_from(x, "x"), lo, hi); }, py::arg("x"),
          py::arg("x_min"), py::arg("x_max"), "x clipped to [x_min, x_max].");
  ops.def("power", [](py::handle x, float p) { return pow(tensor_from(x, "x"), p); }, py::arg("x"), py::arg("p"));
  ops.def("reshape", [](py::handle x, std::vector<int64_t> s) { return reshape(tensor_from(x, "x"), Shape(std::move(s))); },
          py::arg("x"), py::arg("newshape"));
  ops.def("one_hot", [](py::handle x, int64_t n) { return one_hot(tensor_from(x, "x"), n); }, py::arg("x"),
          py::arg("num_classes"));
  ops.def("convert_to_tensor", [](py::handle x) { return tensor_from(x, "x"); }, py::arg("x"),
          "A tensor for x (no copy for a C-contiguous float32 array).");
}

}  // namespace lamina::python
