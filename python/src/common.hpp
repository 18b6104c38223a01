// Shared by the _lamina extension's files: NumPy arrays <-> Tensors, Python objects <-> JSON,
// Python objects held by C++ (released under the GIL), and the bind_* entry points. Internal.
#pragma once

#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <memory>
#include <string>
#include <vector>

#include "lamina/json.hpp"
#include "lamina/tensor.hpp"

namespace lamina::python {

namespace py = pybind11;

// A Python object owned by C++ code that may drop it without the GIL (fit runs with the GIL
// released): the last owner's destructor takes the GIL to decrement the reference.
class PyRef {
 public:
  explicit PyRef(py::object o) : ptr_(new py::object(std::move(o)), release) {}
  const py::object& get() const { return *ptr_; }

 private:
  static void release(py::object* o) {
    if (!Py_IsInitialized()) {  // at interpreter exit: nothing to decrement into
      (void)o->release();
      delete o;
      return;
    }
    py::gil_scoped_acquire gil;
    delete o;
  }
  std::shared_ptr<py::object> ptr_;
};

// --- arrays (arrays.cpp) --------------------------------------------------------------------------

// A Tensor over `obj` for reading: a lamina.Tensor as is; a C-contiguous, aligned float32 NumPy
// array without a copy (the tensor keeps the array alive); anything else NumPy can convert to
// float32 (other dtypes, Fortran order, strided views, nested lists) as one converted copy.
// TypeError naming `what` for non-numeric data (strings, objects).
Tensor tensor_from(py::handle obj, const std::string& what);
// The same for an API that shares the array's memory both ways (lamina.from_numpy): only a
// writable, C-contiguous float32 array, else TypeError (dtype) or ValueError (order, strides,
// read-only), since a copy would silently lose the writes.
Tensor tensor_sharing(py::handle obj, const std::string& what);
// One tensor, or a list / tuple / dict of them (a model with several inputs), each by tensor_from.
std::vector<Tensor> tensors_from(py::handle obj, const std::string& what);
// A NumPy array over the tensor's storage (no copy; the array keeps the storage alive).
py::array to_numpy(const Tensor& t);
// True for a lamina.Tensor, a NumPy array or anything with the array interface.
bool is_array_like(py::handle obj);

// --- JSON -------------------------------------------------------------------------------------------
Json json_from(py::handle obj);    // through Python's json.dumps
py::object to_python(const Json& j);  // through json.loads

// --- the pieces of the module -------------------------------------------------------------------------
void bind_tensor(py::module_& m);
void bind_model(py::module_& m);
void bind_explain(py::module_& m);

}  // namespace lamina::python
