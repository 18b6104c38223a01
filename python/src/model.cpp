// Layers, symbolic tensors, models and their training API for Python. The Python package
// (python/lamina) gives these Keras' signatures; here they take already-normalised arguments:
// configs as dicts, losses as configs or callables, metrics as names.
//
// fit, evaluate and predict release the GIL. Python callbacks and a Python loss take it back for
// their calls, and fit checks for a pending signal (Ctrl-C) after every batch, so that
// KeyboardInterrupt arrives within one batch.
#include <atomic>
#include <csignal>
#include <cstdio>
#include <iostream>
#include <sstream>

#include "common.hpp"
#include "lamina/lamina.hpp"
#include "lamina/onnx.hpp"

namespace lamina::python {

namespace {

py::dict dict_of(const Logs& logs) {
  py::dict d;
  for (const auto& [k, v] : logs.values) d[py::str(k)] = v;
  return d;
}

// A Python callback (lamina.callbacks.Callback: Keras' method names and arguments) run by fit.
// Batch-level methods are called only when the Python class overrides one, so that an epoch-level
// callback costs no GIL round trip per batch.
class PyCallback : public Callback {
 public:
  explicit PyCallback(py::object cb) : cb_(std::move(cb)) {
    batches_ = py::hasattr(cb_.get(), "_lamina_wants_batches") && cb_.get().attr("_lamina_wants_batches").cast<bool>();
    logs_lr_ = py::hasattr(cb_.get(), "_lamina_logs_learning_rate") &&
               cb_.get().attr("_lamina_logs_learning_rate").cast<bool>();
  }
  bool logs_learning_rate() const override { return logs_lr_; }
  void on_train_begin(const TrainInfo& info) override {
    py::gil_scoped_acquire gil;
    py::dict params;
    params["epochs"] = info.epochs;
    params["steps"] = info.steps_per_epoch;
    params["samples"] = info.samples;
    if (py::hasattr(cb_.get(), "set_params")) cb_.get().attr("set_params")(params);
    cb_.get().attr("on_train_begin")(py::dict());
  }
  void on_epoch_begin(int epoch) override {
    py::gil_scoped_acquire gil;
    cb_.get().attr("on_epoch_begin")(epoch, py::dict());
  }
  void on_batch_end(int64_t step, const Logs& logs) override {
    if (!batches_) return;
    py::gil_scoped_acquire gil;
    cb_.get().attr("on_train_batch_end")(step - 1, dict_of(logs));
  }
  void on_epoch_end(int epoch, const Logs& logs) override {
    py::gil_scoped_acquire gil;
    cb_.get().attr("on_epoch_end")(epoch, dict_of(logs));
  }
  void on_train_end(const Logs& logs) override {
    py::gil_scoped_acquire gil;
    cb_.get().attr("on_train_end")(dict_of(logs));
  }

 private:
  PyRef cb_;
  bool batches_ = false, logs_lr_ = false;
};

// Ctrl-C during fit. Python's own SIGINT handler only notes the signal for the main thread to act
// on when it next runs Python code; fit runs none. So while fit runs, SIGINT goes to our handler
// first, which raises a flag and chains to the handler it replaced (Python's). After every batch
// SignalCheck looks at the flag, without the GIL; only when it is set does it take the GIL and
// run Python's handlers (PyErr_CheckSignals), whose KeyboardInterrupt then leaves fit between two
// batches. A batch thus costs no GIL round trip, even while other Python threads hold the GIL.
std::atomic<bool> interrupted{false};
struct sigaction chained_sigint {};

extern "C" void on_sigint(int sig) {
  interrupted.store(true);
  chained_sigint.sa_handler(sig);  // installed only in front of a handler function
}

class SignalCheck : public Callback {
 public:
  SignalCheck() {
    if (depth_++ > 0) return;  // a fit inside a callback shares the outer handler
    // Only in front of a handler function (Python's): SIG_DFL must still kill, SIG_IGN ignore.
    struct sigaction current {};
    if (sigaction(SIGINT, nullptr, &current) != 0 || (current.sa_flags & SA_SIGINFO) != 0 ||
        current.sa_handler == SIG_DFL || current.sa_handler == SIG_IGN)
      return;
    struct sigaction ours = current;  // Python's flags and mask
    ours.sa_handler = on_sigint;
    interrupted.store(false);
    installed_ = sigaction(SIGINT, &ours, &chained_sigint) == 0;
  }
  ~SignalCheck() override {
    if (--depth_ > 0 || !installed_) return;
    sigaction(SIGINT, &chained_sigint, nullptr);
  }
  SignalCheck(const SignalCheck&) = delete;
  SignalCheck& operator=(const SignalCheck&) = delete;

  void on_batch_end(int64_t, const Logs&) override {
    if (!interrupted.exchange(false)) return;
    py::gil_scoped_acquire gil;
    if (PyErr_CheckSignals() != 0) throw py::error_already_set();
  }

 private:
  static inline int depth_ = 0;  // fit runs on the GIL holder's thread: no race on the count
  bool installed_ = false;
};

// A loss: a Keras config (a name, a dict), or a Python callable (y_true, y_pred) -> Tensor of
// per-sample losses (or one scalar), written with lamina.ops so that it is differentiable.
std::string name_of(py::handle fn) {
  return py::hasattr(fn, "__name__") ? py::str(fn.attr("__name__")).cast<std::string>()
                                     : py::str(py::type::of(fn).attr("__name__")).cast<std::string>();
}

// A Python function (y_true, y_pred) -> lamina.Tensor as the engine's loss function, called with
// the GIL taken back (fit releases it).
Loss::Function loss_function(py::handle fn, const std::string& name) {
  return [ref = PyRef(py::reinterpret_borrow<py::object>(fn)), name](const Tensor& y_true, const Tensor& y_pred) -> Tensor {
    py::gil_scoped_acquire gil;
    py::object r = ref.get()(y_true, y_pred);
    if (!py::isinstance<Tensor>(r))
      throw py::type_error("loss '" + name + "' returned " + py::str(py::type::of(r).attr("__name__")).cast<std::string>() +
                           ", not a lamina.Tensor: compute it with lamina.ops (and Tensor arithmetic) so that "
                           "gradients flow through it");
    return r.cast<Tensor>();
  };
}

Loss loss_from(py::handle obj) {
  if (py::isinstance<py::str>(obj) || py::isinstance<py::dict>(obj)) return Loss::from_config(json_from(obj));
  if (!PyCallable_Check(obj.ptr()))
    throw py::type_error("loss: expected a name, a lamina.losses.Loss or a function (y_true, y_pred), got " +
                         py::str(py::type::of(obj).attr("__name__")).cast<std::string>());
  const std::string name = name_of(obj);
  return Loss(loss_function(obj, name), name);
}

std::vector<KerasTensor> keras_tensors(py::handle obj, const char* what) {
  if (py::isinstance<KerasTensor>(obj)) return {obj.cast<KerasTensor>()};
  if (py::isinstance<py::list>(obj) || py::isinstance<py::tuple>(obj)) {
    std::vector<KerasTensor> out;
    for (auto item : obj) {
      if (!py::isinstance<KerasTensor>(item))
        throw py::type_error(std::string(what) + ": expected symbolic tensors (from lamina.Input and layer calls), got " +
                             py::str(py::type::of(item).attr("__name__")).cast<std::string>());
      out.push_back(item.cast<KerasTensor>());
    }
    return out;
  }
  throw py::type_error(std::string(what) + ": expected a symbolic tensor or a list of them, got " +
                       py::str(py::type::of(obj).attr("__name__")).cast<std::string>());
}

py::object shape_or_none(const std::optional<Shape>& s) {
  if (!s) return py::none();
  py::list dims;
  dims.append(py::none());  // the batch, as Keras shows it
  for (int64_t d : *s) dims.append(d);
  return py::tuple(dims);
}

py::tuple batch_shape(const Shape& s) { return shape_or_none(s).cast<py::tuple>(); }

// x (and y) of fit / evaluate: one array or a list (one per input); a dict keyed by input names.
std::vector<Tensor> inputs_for(const Model& m, py::handle x, const std::string& what, bool outputs) {
  if (py::isinstance<py::dict>(x)) {
    const std::vector<std::string> names = outputs ? m.output_names() : m.input_names();
    auto d = py::reinterpret_borrow<py::dict>(x);
    std::vector<Tensor> out;
    for (const std::string& n : names) {
      if (!d.contains(n)) {
        std::string known;
        for (const std::string& k : names) known += (known.empty() ? "'" : ", '") + k + "'";
        throw py::value_error(what + ": no entry for " + (outputs ? "output" : "input") + " '" + n + "' (the model's: " +
                              known + ")");
      }
      out.push_back(tensor_from(d[py::str(n)], what + "['" + n + "']"));
    }
    return out;
  }
  return tensors_from(x, what);
}

data::Dataset dataset_for(const Model& m, py::handle x, py::handle y, const std::string& what) {
  if (y.is_none())
    throw py::value_error(what + ": y is None; training and evaluation need targets (y)");
  return data::Dataset::from_tensors(inputs_for(m, x, what + " x", false), inputs_for(m, y, what + " y", true));
}

py::object outputs_to_python(const std::vector<Tensor>& out) {
  if (out.size() == 1) return to_numpy(out[0]);
  py::list l;
  for (const Tensor& t : out) l.append(to_numpy(t));
  return l;
}

void flush_output() {
  std::cout.flush();
  std::fflush(stdout);
}

py::list weights_as_arrays(const std::vector<Tensor>& ws) {
  py::list l;
  for (const Tensor& w : ws) l.append(to_numpy(w));
  return l;
}

std::vector<Tensor> weights_from(py::handle values) {
  std::vector<Tensor> out;
  size_t i = 0;
  for (auto v : values) out.push_back(tensor_from(v, "weights[" + std::to_string(i++) + "]"));
  return out;
}

}  // namespace

void bind_model(py::module_& m) {
  py::class_<KerasTensor>(m, "KerasTensor", "A symbolic tensor: the output of Input or of a layer called on one.")
      .def_property_readonly("shape", [](const KerasTensor& t) { return batch_shape(t.shape()); })
      .def_property_readonly("name", [](const KerasTensor& t) { return t.layer().name(); })
      .def("__len__", [](const KerasTensor& t) { return t.output_count(); })
      .def("output", &KerasTensor::output, py::arg("index"))
      .def("__repr__", [](const KerasTensor& t) {
        return "<KerasTensor shape=" + py::str(batch_shape(t.shape())).cast<std::string>() + ", name=" + t.layer().name() + ">";
      });
  m.def("Input", [](std::vector<int64_t> shape, std::string name) { return layers::Input(Shape(std::move(shape)), name); },
        py::arg("shape"), py::arg("name") = "");

  py::class_<Layer, std::shared_ptr<Layer>>(m, "Layer")
      .def_property("name", &Layer::name, &Layer::set_name)
      .def_property_readonly("class_name", &Layer::class_name)
      .def_property("trainable", &Layer::trainable, &Layer::set_trainable)
      .def_property_readonly("built", &Layer::built)
      .def_property_readonly("declared_input_shape", [](const Layer& l) { return shape_or_none(l.declared_input_shape()); })
      .def("count_params", &Layer::count_params)
      .def("get_config", [](const Layer& l) { return to_python(l.config()); })
      .def("weight_names", [](const Layer& l) {
        std::vector<std::string> n;
        for (const auto& w : l.weights()) n.push_back(w.name);
        return n;
      })
      .def("weights", [](const Layer& l) {
        std::vector<Tensor> v;
        for (const auto& w : l.weights()) v.push_back(w.value.detach());
        return v;
      })
      .def("get_weights", [](const Layer& l) {
        std::vector<Tensor> v;
        for (const auto& w : l.weights()) v.push_back(w.value.clone());
        return weights_as_arrays(v);
      })
      .def("set_weights", [](Layer& l, py::handle values) {
        const std::vector<Tensor> v = weights_from(values);
        auto& ws = l.weights();
        if (v.size() != ws.size())
          throw ValueError("set_weights: layer '" + l.name() + "' has " + std::to_string(ws.size()) + " weights, got " +
                           std::to_string(v.size()));
        for (size_t i = 0; i < v.size(); ++i)
          if (v[i].shape() != ws[i].value.shape())
            throw ShapeError("set_weights: layer '" + l.name() + "' weight '" + ws[i].name + "' has shape " +
                             ws[i].value.shape().str() + ", got " + v[i].shape().str());
        for (size_t i = 0; i < v.size(); ++i) std::copy_n(v[i].data(), v[i].numel(), ws[i].value.data());
      })
      .def("call_symbolic", [](Layer& l, py::handle inputs) -> py::object {
        if (py::isinstance<KerasTensor>(inputs)) {
          KerasTensor y = l(inputs.cast<KerasTensor>());
          if (y.output_count() > 1) return py::cast(y.outputs());
          return py::cast(y);
        }
        KerasTensor y = l(keras_tensors(inputs, "layer call"));
        if (y.output_count() > 1) return py::cast(y.outputs());
        return py::cast(y);
      })
      .def("call_eager", [](Layer& l, py::handle x, bool training) -> py::object {
        auto sample = [](const Tensor& t) { return Shape(std::vector<int64_t>(t.shape().begin() + 1, t.shape().end())); };
        // A list of arrays is several inputs, as Keras' Add()([a, b]); a list of numbers, one.
        const std::vector<Tensor> ins = tensors_from(x, "layer '" + l.name() + "' input");
        if (ins.size() == 1) {
          if (!l.built()) l.build(sample(ins[0]), default_generator());
          return py::cast(l.call(ins[0], training));
        }
        if (!l.built()) {
          std::vector<Shape> shapes;
          for (const Tensor& t : ins) shapes.push_back(sample(t));
          l.build_for(shapes, default_generator());
        }
        return py::cast(l.forward(ins, training));
      }, py::arg("x"), py::arg("training") = false);

  m.def("layer_from_config", [](const std::string& cls, py::handle config) { return layer_from_config(cls, json_from(config)); },
        py::arg("class_name"), py::arg("config"));
  m.def("registered_layers", &registered_layers);

  py::class_<Optimizer, std::shared_ptr<Optimizer>>(m, "Optimizer")
      .def_property_readonly("name", &Optimizer::name)
      .def_property("learning_rate", [](const Optimizer& o) { return static_cast<double>(o.learning_rate); },
                    [](Optimizer& o, double lr) {
                      o.learning_rate = static_cast<float>(lr);
                      o.schedule = nullptr;
                    })
      .def_property_readonly("iterations", &Optimizer::iterations)
      .def("get_config", [](const Optimizer& o) { return to_python(o.config()); });
  m.def("optimizer_from_config", [](py::handle c) { return optimizer_from_config(json_from(c)); });

  py::class_<Model, Layer, std::shared_ptr<Model>>(m, "Model")
      .def(py::init([](py::handle inputs, py::handle outputs, const std::string& name) {
             return std::make_shared<Model>(keras_tensors(inputs, "Model inputs"), keras_tensors(outputs, "Model outputs"),
                                            name);
           }),
           py::arg("inputs"), py::arg("outputs"), py::arg("name") = "functional")
      .def_property_readonly("is_sequential", &Model::is_sequential)
      .def_property_readonly("layers", [](const Model& md) { return md.layers(); })
      .def("get_layer", [](const Model& md, const std::string& name) { return md.layer(name).shared_from_this(); })
      .def_property_readonly("input_names", &Model::input_names)
      .def_property_readonly("output_names", &Model::output_names)
      .def_property_readonly("input_shapes", [](const Model& md) {
        py::list l;
        for (const Shape& s : md.input_shapes()) l.append(batch_shape(s));
        return l;
      })
      .def_property_readonly("output_shapes", [](const Model& md) {
        py::list l;
        for (const Shape& s : md.output_shapes()) l.append(batch_shape(s));
        return l;
      })
      .def("build", [](Model& md, std::vector<int64_t> shape) { md.build(Shape(std::move(shape))); })
      .def_readwrite("stop_training", &Model::stop_training)
      .def_property_readonly("compiled", &Model::compiled)
      .def_property_readonly("optimizer", [](const Model& md) -> py::object {
        if (!md.compiled()) return py::none();
        return py::cast(&md.optimizer(), py::return_value_policy::reference);
      }, py::keep_alive<0, 1>())
      .def_property_readonly("metric_names", &Model::metric_names)
      .def("loss_config", [](const Model& md) {
        py::list l;
        for (const Loss& loss : md.losses()) l.append(to_python(loss.config()));
        return l;
      })
      .def("compile", [](Model& md, py::handle optimizer, py::list losses, std::vector<std::string> metrics,
                         std::vector<double> loss_weights, std::vector<std::string> weighted_metrics) {
        std::shared_ptr<Optimizer> opt = py::isinstance<Optimizer>(optimizer) ? optimizer.cast<std::shared_ptr<Optimizer>>()
                                                                              : optimizer_from_config(json_from(optimizer));
        std::vector<Loss> ls;
        for (auto l : losses) ls.push_back(loss_from(l));
        if (ls.empty()) throw py::value_error("compile: no loss given (loss='sparse_categorical_crossentropy', ...)");
        CompileOptions o;
        for (auto& n : metrics) o.metrics.emplace_back(n);
        for (auto& n : weighted_metrics) o.weighted_metrics.emplace_back(n);
        o.loss_weights = std::move(loss_weights);
        if (ls.size() == 1)
          md.compile(opt, ls[0], o);
        else
          md.compile(opt, ls, o);
      })
      .def("fit", [](Model& md, py::handle x, py::handle y, int64_t batch_size, int epochs, int verbose, py::list callbacks,
                     double validation_split, py::handle validation_data, bool shuffle, py::handle class_weight,
                     py::handle sample_weight, int initial_epoch, py::handle steps_per_epoch, py::handle seed) {
        FitOptions o;
        o.epochs = epochs;
        o.initial_epoch = initial_epoch;
        o.batch_size = batch_size;
        o.validation_split = validation_split;
        o.shuffle = shuffle;
        o.verbose = verbose;
        if (!seed.is_none()) o.seed = seed.cast<uint64_t>();
        if (!steps_per_epoch.is_none()) o.steps_per_epoch = steps_per_epoch.cast<int64_t>();
        if (!validation_data.is_none()) {
          auto v = py::reinterpret_borrow<py::sequence>(validation_data);
          if (v.size() < 2 || v.size() > 3)
            throw py::value_error("fit: validation_data must be a tuple (x_val, y_val), got " + std::to_string(v.size()) +
                                  " items");
          o.validation_data = dataset_for(md, v[0], v[1], "fit: validation_data");
        }
        if (!class_weight.is_none())
          for (auto [k, v] : py::reinterpret_borrow<py::dict>(class_weight)) o.class_weight[k.cast<int64_t>()] = v.cast<double>();
        if (!sample_weight.is_none()) o.sample_weight = tensor_from(sample_weight, "fit: sample_weight");
        data::Dataset train = dataset_for(md, x, y, "fit:");
        std::vector<std::unique_ptr<Callback>> owned;
        for (auto cb : callbacks) owned.push_back(std::make_unique<PyCallback>(py::reinterpret_borrow<py::object>(cb)));
        owned.push_back(std::make_unique<SignalCheck>());
        for (auto& cb : owned) o.callbacks.push_back(cb.get());
        History h;
        {
          py::gil_scoped_release release;
          h = md.fit(train, o);
          flush_output();
        }
        py::dict history;
        // Keras' order: loss, the metrics, then val_loss and the metrics' val_ forms.
        for (int pass = 0; pass < 4; ++pass)
          for (const auto& [k, v] : h.history) {
            const int rank = k == "loss" ? 0 : k == "val_loss" ? 2 : k.rfind("val_", 0) == 0 ? 3 : 1;
            if (rank == pass) history[py::str(k)] = v;
          }
        py::dict out;
        out["history"] = history;
        out["epoch"] = h.epochs;
        out["epoch_seconds"] = h.epoch_seconds;
        return out;
      })
      .def("evaluate", [](Model& md, py::handle x, py::handle y, int64_t batch_size, int verbose) {
        data::Dataset d = dataset_for(md, x, y, "evaluate:");
        Logs logs;
        {
          py::gil_scoped_release release;
          logs = md.evaluate(d, {.batch_size = batch_size, .verbose = verbose});
          flush_output();
        }
        std::vector<std::pair<std::string, double>> out(logs.values.begin(), logs.values.end());
        return out;
      })
      .def("predict", [](Model& md, py::handle x, int64_t batch_size) {
        std::vector<Tensor> xs = inputs_for(md, x, "predict: x", false);
        std::vector<Tensor> out;
        {
          py::gil_scoped_release release;
          out = md.predict_all(xs, batch_size);
        }
        return outputs_to_python(out);
      })
      .def("call", [](Model& md, py::handle x, bool training) -> py::object {
        std::vector<Tensor> out = md.call(inputs_for(md, x, "model call", false), training);
        if (out.size() == 1) return py::cast(out[0]);
        return py::cast(out);
      }, py::arg("x"), py::arg("training") = false)
      .def("summary", [](Model& md) {
        std::ostringstream os;
        md.summary(os);
        return os.str();
      })
      .def("get_weights", [](const Model& md) { return weights_as_arrays(md.get_weights()); })
      .def("set_weights", [](Model& md, py::handle values) { md.set_weights(weights_from(values)); })
      .def("named_weights", [](const Model& md) {
        py::list l;
        for (const auto& [n, t] : md.named_weights()) l.append(py::make_tuple(n, t.detach()));
        return l;
      })
      .def("to_json", [](const Model& md) { return md.to_json().dump(); })
      .def("save", [](const Model& md, const std::string& path) { md.save(path); })
      .def("save_onnx", [](const Model& md, const std::string& path) { save_onnx(md, path); })
      .def("save_checkpoint", [](const Model& md, const std::string& path) { md.save_checkpoint(path); })
      .def("clone", [](const Model& md) -> std::shared_ptr<Model> {
        if (md.is_sequential()) return std::make_shared<Sequential>(Sequential(md.clone()));
        return std::make_shared<Model>(md.clone());
      })
      .def_property_readonly("fit_epoch", [](const Model& md) { return md.fit_state().epoch; });

  py::class_<Sequential, Model, std::shared_ptr<Sequential>>(m, "Sequential")
      .def(py::init<std::string>(), py::arg("name") = "sequential")
      .def("add", [](Sequential& s, std::shared_ptr<Layer> layer) { s.add(std::move(layer)); });

  // Models read back: a Sequential when the file or JSON holds one.
  auto hold = [](Model model) -> std::shared_ptr<Model> {
    if (model.is_sequential()) return std::make_shared<Sequential>(std::move(model));
    return std::make_shared<Model>(std::move(model));
  };
  m.def("model_from_json", [hold](const std::string& text) { return hold(Model::from_json(Json::parse(text))); });
  m.def("load_model", [hold](const std::string& path) {
    if (is_onnx_file(path)) return hold(load_onnx(path));
    return hold(Model::load(path));
  });
  m.def("register_loss", [](const std::string& name, py::handle fn) { register_loss(name, loss_function(fn, name)); },
        py::arg("name"), py::arg("fn"),
        "Makes a Python loss known by name, so that a model compiled with it loads compiled (custom_objects).");
  m.def("load_checkpoint", [hold](const std::string& path) { return hold(Model::load_checkpoint(path)); });
  m.def("manual_seed", &manual_seed, py::arg("seed"), "Seeds the generator weights, shuffles and dropout draw from.");
}

}  // namespace lamina::python
