// The merge layers (include/lamina/layers/merge.hpp): shape checks, the math (add, sub, mul,
// maximum, minimum and concat ops), Keras config both ways and ONNX export (a node over the
// inputs, in one layout).
#include "lamina/layers/merge.hpp"

#include "layers/keras_config.hpp"
#include "onnx/graph_writer.hpp"

namespace lamina::layers {

namespace {

std::string shapes_text(std::span<const Shape> shapes) {
  std::string out;
  for (size_t i = 0; i < shapes.size(); ++i) out += (i ? ", " : "") + shapes[i].str();
  return out;
}

template <class L>
std::shared_ptr<Layer> merge_from_config(const Json& c) {
  return std::make_shared<L>(typename L::Options{.name = detail::name_of(c)});
}

}  // namespace

Merge::Merge(Options options) { name_ = std::move(options.name); }

std::string Merge::where() const { return class_name() + " '" + name_ + "'"; }

Shape Merge::infer_shape(std::span<const Shape> input_shapes) const {
  const size_t n = input_shapes.size();
  if (n < min_inputs() || (max_inputs() > 0 && n > max_inputs()))
    throw ValueError(where() + " takes " +
                     (max_inputs() == min_inputs() ? "exactly " + std::to_string(min_inputs())
                                                   : "a list of at least " + std::to_string(min_inputs())) +
                     " inputs, got " + std::to_string(n));
  for (size_t i = 1; i < n; ++i)
    if (input_shapes[i] != input_shapes[0])
      throw ShapeError(where() + ": its inputs must all have one shape, got " + shapes_text(input_shapes) +
                       " (input " + std::to_string(i) + " differs from input 0)");
  return input_shapes[0];
}

std::vector<Layer::WeightSpec> Merge::weight_specs_for(std::span<const Shape> input_shapes) const {
  infer_shape(input_shapes);
  return {};
}

void Merge::build_for(std::span<const Shape> input_shapes, Generator&) {
  infer_shape(input_shapes);
  built_ = true;
}

Tensor Merge::forward(std::span<const Tensor> inputs, bool) {
  std::vector<Shape> shapes;
  for (const Tensor& x : inputs) shapes.emplace_back(std::vector<int64_t>(x.shape().begin() + 1, x.shape().end()));
  infer_shape(shapes);
  return merge(inputs);
}

Tensor Merge::compute_mask(std::span<const Tensor> /*inputs*/, std::span<const Tensor> masks) const {
  Tensor out;
  for (const Tensor& m : masks) {
    if (!m.defined()) continue;
    if (out.defined() && m.shape() != out.shape()) return Tensor();  // steps that do not line up: no mask
    out = out.defined() ? mul(out, m) : m;
  }
  return out;
}

Tensor Merge::call(const Tensor&, bool) {
  throw ValueError(where() + " merges a list of inputs; call it on several (in a Model), not on one tensor");
}

Shape Merge::output_shape(const Shape&) const {
  throw ValueError(where() + " merges a list of inputs; it has no single-input output shape");
}

namespace {

// op(op(in[0], in[1]), in[2]) ...: an element-wise op folded over two or more inputs.
Tensor fold(std::span<const Tensor> in, Tensor (*op)(const Tensor&, const Tensor&)) {
  Tensor y = op(in[0], in[1]);
  for (size_t i = 2; i < in.size(); ++i) y = op(y, in[i]);
  return y;
}

}  // namespace

Tensor Add::merge(std::span<const Tensor> in) const { return fold(in, &add); }
Tensor Subtract::merge(std::span<const Tensor> in) const { return sub(in[0], in[1]); }
Tensor Multiply::merge(std::span<const Tensor> in) const { return fold(in, &mul); }
Tensor Average::merge(std::span<const Tensor> in) const {
  return mul(fold(in, &add), 1.f / static_cast<float>(in.size()));
}
Tensor Maximum::merge(std::span<const Tensor> in) const { return fold(in, &maximum); }
Tensor Minimum::merge(std::span<const Tensor> in) const { return fold(in, &minimum); }

std::shared_ptr<Layer> Add::from_config(const Json& c) { return merge_from_config<Add>(c); }
std::shared_ptr<Layer> Subtract::from_config(const Json& c) { return merge_from_config<Subtract>(c); }
std::shared_ptr<Layer> Multiply::from_config(const Json& c) { return merge_from_config<Multiply>(c); }
std::shared_ptr<Layer> Average::from_config(const Json& c) { return merge_from_config<Average>(c); }
std::shared_ptr<Layer> Maximum::from_config(const Json& c) { return merge_from_config<Maximum>(c); }
std::shared_ptr<Layer> Minimum::from_config(const Json& c) { return merge_from_config<Minimum>(c); }

// --- Concatenate -----------------------------------------------------------------------------------

Concatenate::Concatenate(Options options) : Merge(Merge::Options{.name = std::move(options.name)}), axis_(options.axis) {
  if (axis_ == 0) throw ValueError("Concatenate: axis 0 is the batch axis; samples cannot be concatenated");
}

int64_t Concatenate::sample_axis(int64_t rank) const {
  const int64_t a = axis_ < 0 ? axis_ + rank + 1 : axis_;  // with the batch axis, as Keras counts
  if (a < 1 || a > rank)
    throw ValueError(where() + ": axis " + std::to_string(axis_) + " is outside inputs of rank " +
                     std::to_string(rank + 1) + " (with the batch axis)");
  return a - 1;
}

Shape Concatenate::infer_shape(std::span<const Shape> input_shapes) const {
  if (input_shapes.size() < 2)
    throw ValueError(where() + " takes a list of at least 2 inputs, got " + std::to_string(input_shapes.size()));
  const int64_t rank = input_shapes[0].rank();
  const int64_t a = sample_axis(rank);
  std::vector<int64_t> out = input_shapes[0].dims();
  for (size_t i = 1; i < input_shapes.size(); ++i) {
    const Shape& s = input_shapes[i];
    bool fits = s.rank() == rank;
    for (int64_t d = 0; fits && d < rank; ++d) fits = d == a || s[d] == input_shapes[0][d];
    if (!fits)
      throw ShapeError(where() + ": inputs " + shapes_text(input_shapes) + " differ on an axis other than axis " +
                       std::to_string(axis_) + " (input " + std::to_string(i) + " against input 0)");
    out[static_cast<size_t>(a)] += s[a];
  }
  return Shape(out);
}

Tensor Concatenate::merge(std::span<const Tensor> in) const {
  return concat(std::vector<Tensor>(in.begin(), in.end()), sample_axis(in[0].rank() - 1) + 1);
}

Json Concatenate::config() const {
  Json j = Layer::config();
  j["axis"] = axis_;
  return j;
}

std::shared_ptr<Layer> Concatenate::from_config(const Json& c) {
  const std::string at = detail::where("Concatenate", c);
  const Json axis = c.value("axis", Json(-1));
  if (!axis.is_number_integer()) throw ValueError(at + ": axis must be an integer, got " + axis.dump());
  return std::make_shared<Concatenate>(Options{.axis = axis.get<int64_t>(), .name = detail::name_of(c)});
}

// --- ONNX ------------------------------------------------------------------------------------------

// Sum, Max and Min take any number of inputs; Mul and Sub take two, so Multiply's third and later
// inputs are further Muls, as merge() computes them. Average (onnx_op() "Mean") is written as Sum
// times 1/n, as merge() computes it: OpenCV 4.6 has no Mean layer ("Can't create layer ... of type
// Mean"), and the result is the same up to rounding.
void Merge::export_onnx(onnx::GraphWriter& graph) const {
  std::vector<std::string> names = graph.same_layout_inputs(name_);
  const std::string op = onnx_op();
  std::string& out = graph.value().name;
  if (op == "Mean") {
    const float inverse = 1.f / static_cast<float>(names.size());
    out = graph.node("Sum", name_, std::move(names));
    out = graph.node("Mul", name_, {out, graph.initializer(name_ + "/inverse_count", {}, &inverse)});
  } else if (op == "Mul" || op == "Sub") {
    out = graph.node(op, name_, {names[0], names[1]});
    for (size_t i = 2; i < names.size(); ++i) out = graph.node(op, name_, {out, names[i]});
  } else {
    out = graph.node(op, name_, std::move(names));
  }
}

void Concatenate::export_onnx(onnx::GraphWriter& graph) const {
  std::vector<std::string> names = graph.same_layout_inputs(name_);
  const int64_t a = sample_axis(graph.value().shape.rank());
  graph.value().name =
      graph.node("Concat", name_, std::move(names), {onnx::GraphWriter::attr_int("axis", graph.onnx_axis(a))});
}

}  // namespace lamina::layers
