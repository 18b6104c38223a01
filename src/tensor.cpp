// Shape and Tensor basics: creation, element access, printing. No math here (see src/ops/).
#include "lamina/tensor.hpp"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ostream>
#include <sstream>

#include "allocator.hpp"
#include "lamina/autograd.hpp"
#include "lamina/ops.hpp"
#include "lamina/random.hpp"

namespace lamina {

// --- Shape -----------------------------------------------------------------------------------

Shape::Shape(std::initializer_list<int64_t> dims) : Shape(std::vector<int64_t>(dims)) {}

Shape::Shape(std::vector<int64_t> dims) : dims_(std::move(dims)) {
  // -1 is allowed here (reshape infers it); Tensor::empty refuses it. numel() multiplies from
  // the left, so every partial product must fit int64 (a later 0 does not undo an overflow).
  int64_t n = 1;
  for (int64_t d : dims_) {
    if (d < -1) throw ShapeError("shape " + str() + " has a negative dimension");
    if (__builtin_mul_overflow(n, d, &n)) throw ShapeError("shape " + str() + " has more elements than fit in int64");
  }
}

int64_t Shape::numel() const {
  int64_t n = 1;
  for (int64_t d : dims_) n *= d;
  return n;
}

int64_t Shape::operator[](int64_t i) const {
  const int64_t r = rank();
  if (i < -r || i >= r)
    throw ShapeError("dimension " + std::to_string(i) + " is out of range for shape " + str());
  return dims_[static_cast<size_t>(i < 0 ? i + r : i)];
}

std::string Shape::str() const {
  std::string s = "(";
  for (size_t i = 0; i < dims_.size(); ++i) s += (i ? ", " : "") + std::to_string(dims_[i]);
  return s + ")";
}

std::ostream& operator<<(std::ostream& os, const Shape& shape) { return os << shape.str(); }

// --- creation ----------------------------------------------------------------------------------

Tensor Tensor::empty(const Shape& shape) {
  for (int64_t d : shape)
    if (d < 0) throw ShapeError("cannot create a tensor of shape " + shape.str() + " (a -1 is only for reshape)");
  auto impl = std::make_shared<TensorImpl>();
  impl->shape = shape;
  impl->storage = detail::allocate_storage(shape.numel());  // 64-byte aligned, recycled
  impl->data = impl->storage.get();
  return Tensor(std::move(impl));
}

Tensor Tensor::zeros(const Shape& shape) { return full(shape, 0.f); }
Tensor Tensor::ones(const Shape& shape) { return full(shape, 1.f); }
Tensor Tensor::full(const Shape& shape, float value) { return empty(shape).fill_(value); }
Tensor Tensor::scalar(float value) { return full(Shape{}, value); }

Tensor Tensor::from(std::vector<float> values, const Shape& shape) {
  if (static_cast<int64_t>(values.size()) != shape.numel())
    throw ShapeError("Tensor::from: " + std::to_string(values.size()) +
                     " values do not fill shape " + shape.str() + " (" +
                     std::to_string(shape.numel()) + " elements)");
  Tensor t = empty(shape);
  std::copy(values.begin(), values.end(), t.data());
  return t;
}

Tensor Tensor::from(std::initializer_list<float> values) {
  return from(std::vector<float>(values), Shape{static_cast<int64_t>(values.size())});
}

Tensor Tensor::from(std::initializer_list<std::initializer_list<float>> rows) {
  const size_t cols = rows.size() ? rows.begin()->size() : 0;
  std::vector<float> values;
  values.reserve(rows.size() * cols);
  size_t r = 0;
  for (const auto& row : rows) {
    if (row.size() != cols)
      throw ShapeError("Tensor::from: row " + std::to_string(r) + " has " +
                       std::to_string(row.size()) + " values, row 0 has " + std::to_string(cols));
    values.insert(values.end(), row.begin(), row.end());
    ++r;
  }
  return from(std::move(values), Shape{static_cast<int64_t>(rows.size()), static_cast<int64_t>(cols)});
}

Tensor Tensor::rand(const Shape& shape, Generator& gen, float low, float high) {
  Tensor t = empty(shape);
  for (float& v : t.values()) v = low + (high - low) * gen.uniform();
  return t;
}

Tensor Tensor::randn(const Shape& shape, Generator& gen, float mean, float stddev) {
  Tensor t = empty(shape);
  for (float& v : t.values()) v = mean + stddev * gen.normal();
  return t;
}

Tensor Tensor::rand(const Shape& shape, float low, float high) {
  return rand(shape, default_generator(), low, high);
}
Tensor Tensor::randn(const Shape& shape, float mean, float stddev) {
  return randn(shape, default_generator(), mean, stddev);
}

// --- data ----------------------------------------------------------------------------------------

TensorImpl& Tensor::checked() const {
  if (!impl_) throw ValueError("use of an undefined Tensor (default-constructed or moved from)");
  return *impl_;
}

const Shape& Tensor::shape() const { return checked().shape; }
float* Tensor::data() { return checked().data; }
const float* Tensor::data() const { return checked().data; }

std::vector<float> Tensor::to_vector() const {
  auto v = values();
  return {v.begin(), v.end()};
}

namespace {

int64_t flat_index(const Shape& shape, std::initializer_list<int64_t> index) {
  if (static_cast<int64_t>(index.size()) != shape.rank())
    throw ShapeError("Tensor::at: " + std::to_string(index.size()) + " indices for a tensor of shape " +
                     shape.str());
  int64_t flat = 0, axis = 0;
  for (int64_t i : index) {
    const int64_t d = shape[axis];
    if (i < 0 || i >= d)
      throw ShapeError("Tensor::at: index " + std::to_string(i) + " is out of range for axis " +
                       std::to_string(axis) + " of shape " + shape.str());
    flat = flat * d + i;
    ++axis;
  }
  return flat;
}

}  // namespace

float& Tensor::at(std::initializer_list<int64_t> index) { return data()[flat_index(shape(), index)]; }
float Tensor::at(std::initializer_list<int64_t> index) const {
  return data()[flat_index(shape(), index)];
}

float Tensor::item() const {
  if (numel() != 1)
    throw ShapeError("Tensor::item: needs a one-element tensor, got shape " + shape().str());
  return data()[0];
}

Tensor& Tensor::fill_(float value) {
  std::fill_n(data(), numel(), value);
  return *this;
}

Tensor Tensor::clone() const {
  Tensor t = empty(shape());
  std::memcpy(t.data(), data(), static_cast<size_t>(numel()) * sizeof(float));
  return t;
}

Tensor Tensor::detach() const {
  auto impl = std::make_shared<TensorImpl>();
  impl->shape = shape();
  impl->storage = impl_->storage;
  impl->data = impl_->data;
  return Tensor(std::move(impl));
}

Tensor Tensor::reshape(const Shape& new_shape) const { return lamina::reshape(*this, new_shape); }
Tensor Tensor::slice(int64_t axis, int64_t begin, int64_t end, int64_t step) const {
  return lamina::slice(*this, axis, begin, end, step);
}

Tensor Tensor::view(int64_t offset, const Shape& new_shape) const {
  if (offset < 0 || offset + new_shape.numel() > numel())
    throw ShapeError("Tensor::view: " + std::to_string(new_shape.numel()) + " elements at offset " +
                     std::to_string(offset) + " do not fit in a tensor of shape " + shape().str());
  auto impl = std::make_shared<TensorImpl>();
  impl->shape = new_shape;
  impl->storage = impl_->storage;
  impl->data = impl_->data + offset;
  return Tensor(std::move(impl));
}

// --- autograd accessors (the walk itself is in autograd.cpp) -----------------------------------

bool Tensor::requires_grad() const { return checked().requires_grad; }
bool Tensor::is_leaf() const { return checked().grad_fn == nullptr; }
Tensor Tensor::grad() const {
  TensorImpl& impl = checked();
  if (impl.grad_stale) {  // materialise the lazy zero before anyone reads it
    impl.grad.fill_(0.f);
    impl.grad_stale = false;
  }
  return impl.grad;
}

void Tensor::zero_grad(bool set_to_none) {
  TensorImpl& impl = checked();
  if (set_to_none) {
    impl.grad = Tensor();
    impl.grad_stale = false;
  } else if (impl.grad.defined()) {
    impl.grad_stale = true;
  }
}

Tensor& Tensor::requires_grad_(bool on) {
  if (!is_leaf())
    throw ValueError("requires_grad_: only leaf tensors can change requires_grad; this one was "
                     "made by '" + std::string(impl_->grad_fn->op) + "' (use detach() first)");
  impl_->requires_grad = on;
  return *this;
}

// --- printing --------------------------------------------------------------------------------------

namespace {

struct PrintStyle {
  bool scientific = false;
  int width = 0;
};

std::string format_value(float v, const PrintStyle& style) {
  char buf[64];
  std::snprintf(buf, sizeof buf, style.scientific ? "%.4e" : "%.4f", static_cast<double>(v));
  std::string s = buf;
  if (static_cast<int>(s.size()) < style.width) s.insert(0, static_cast<size_t>(style.width) - s.size(), ' ');
  return s;
}

constexpr int64_t kSummarizeAbove = 1000;  // elements; as torch's print threshold
constexpr int64_t kEdgeItems = 3;

void print_rec(std::ostream& os, const float* data, const Shape& shape, int64_t axis, bool summarize,
               const PrintStyle& style, int indent) {
  const int64_t n = shape[axis];
  int64_t inner = 1;
  for (int64_t a = axis + 1; a < shape.rank(); ++a) inner *= shape[a];
  os << '[';
  for (int64_t i = 0; i < n; ++i) {
    if (summarize && n > 2 * kEdgeItems && i == kEdgeItems) {
      os << (axis + 1 == shape.rank() ? "..., " : "...,\n" + std::string(static_cast<size_t>(indent + 1), ' '));
      i = n - kEdgeItems;
    }
    if (axis + 1 == shape.rank()) {
      os << format_value(data[i], style);
    } else {
      print_rec(os, data + i * inner, shape, axis + 1, summarize, style, indent + 1);
    }
    if (i + 1 < n) {
      os << ',';
      if (axis + 1 == shape.rank()) {
        os << ' ';
      } else {
        os << std::string(static_cast<size_t>(shape.rank() - axis - 1), '\n')
           << std::string(static_cast<size_t>(indent + 1), ' ');
      }
    }
  }
  os << ']';
}

}  // namespace

std::ostream& operator<<(std::ostream& os, const Tensor& t) {
  if (!t.defined()) return os << "tensor(undefined)";
  PrintStyle style;
  float max_abs = 0.f, min_abs = INFINITY;
  for (float v : t.values()) {
    if (!std::isfinite(v)) continue;
    max_abs = std::max(max_abs, std::fabs(v));
    if (v != 0.f) min_abs = std::min(min_abs, std::fabs(v));
  }
  style.scientific = max_abs >= 1e5f || (min_abs < 1e-4f && min_abs != INFINITY);
  for (float v : t.values()) style.width = std::max(style.width, static_cast<int>(format_value(v, {style.scientific, 0}).size()));

  os << "tensor(";
  if (t.rank() == 0) {
    os << format_value(t.data()[0], {style.scientific, 0});
  } else {
    print_rec(os, t.data(), t.shape(), 0, t.numel() > kSummarizeAbove, style, 7);
  }
  if (t.rank() != 1 || t.numel() > kSummarizeAbove) os << ", shape=" << t.shape();
  if (t.requires_grad()) os << ", requires_grad=true";
  return os << ')';
}

}  // namespace lamina
