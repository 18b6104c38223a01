// The _lamina extension: the engine behind `import lamina` (python/lamina holds the Keras-style
// API on top). Lamina's exceptions become Python's: ShapeError and ValueError a ValueError
// (lamina.ShapeError is one), IoError an OSError (lamina.IoError), any other Error a RuntimeError.
#include "common.hpp"
#include "lamina/error.hpp"

PYBIND11_MODULE(_lamina, m) {
  namespace py = pybind11;
  namespace lp = lamina::python;
  m.doc() = "Lamina's engine (C++), as used by the lamina package.";
  m.attr("__version__") = LAMINA_VERSION;

  // Leaked on purpose: static objects would be released after the interpreter is gone.
  static auto& shape_error = *new py::exception<lamina::ShapeError>(m, "ShapeError", PyExc_ValueError);
  static auto& io_error = *new py::exception<lamina::IoError>(m, "IoError", PyExc_OSError);
  py::register_exception_translator([](std::exception_ptr p) {
    try {
      if (p) std::rethrow_exception(p);
    } catch (const lamina::ShapeError& e) {
      shape_error(e.what());
    } catch (const lamina::IoError& e) {
      io_error(e.what());
    } catch (const lamina::ValueError& e) {
      PyErr_SetString(PyExc_ValueError, e.what());
    } catch (const lamina::Json::exception& e) {
      PyErr_SetString(PyExc_ValueError, e.what());
    } catch (const lamina::Error& e) {
      PyErr_SetString(PyExc_RuntimeError, e.what());
    }
  });

  lp::bind_tensor(m);
  lp::bind_model(m);
  lp::bind_explain(m);
}
