// Dataset: samples kept as bytes (with a scale) or floats, converted to float batches on demand.
// Copies, slices and splits share storage; a split adds an index map (order_), so logical
// sample i is row order_[begin_ + i] of storage, or row begin_ + i without a map.
// N = samples, B = batch, S = elements per sample, T = elements per target.
#include <algorithm>
#include <cmath>
#include <cstring>
#include <numeric>
#include <string>
#include <utility>
#include <vector>

#include "lamina/data.hpp"
#include "lamina/random.hpp"

namespace lamina::data {

namespace {

Shape with_batch(int64_t batch, const Shape& shape) {
  std::vector<int64_t> dims{batch};
  dims.insert(dims.end(), shape.begin(), shape.end());
  return Shape(std::move(dims));
}

Shape without_batch(const Shape& shape) {
  return Shape(std::vector<int64_t>(shape.begin() + 1, shape.end()));
}

// Largest target + 1 if every target is a non-negative whole number (class indices), else 0.
int64_t count_classes(const std::vector<float>& targets) {
  float top = -1.f;
  for (float t : targets) {
    if (!(t >= 0.f && t < 16777216.f && t == std::floor(t))) return 0;  // 2^24: exact in float
    top = std::max(top, t);
  }
  return static_cast<int64_t>(top) + 1;
}

// The hot loops of gather: one sample of S elements.
void bytes_to_floats(const uint8_t* __restrict src, float* __restrict dst, int64_t n, float scale) {
  for (int64_t k = 0; k < n; ++k) dst[k] = static_cast<float>(src[k]) * scale;
}
void floats_scaled(const float* __restrict src, float* __restrict dst, int64_t n, float scale) {
  for (int64_t k = 0; k < n; ++k) dst[k] = src[k] * scale;
}

// Asks for the cache lines of n bytes from p to be fetched, with __builtin_prefetch's temporal
// locality (3: keep in every level; 2: a batch ahead, L2 and beyond).
template <int Locality>
void prefetch_lines(const void* p, int64_t n) {
  const auto* c = static_cast<const char*>(p);
  for (int64_t off = 0; off < n; off += 64) __builtin_prefetch(c + off, 0, Locality);
}

}  // namespace

Dataset Dataset::from_bytes(std::shared_ptr<const std::vector<uint8_t>> x, Shape sample_shape,
                            std::shared_ptr<const std::vector<float>> y, Shape target_shape, float scale) {
  if (!x || !y) throw ValueError("Dataset::from_bytes: x and y must both be non-null");
  const int64_t s = sample_shape.numel(), t = target_shape.numel();
  if (s == 0 || t == 0)
    throw ShapeError("Dataset::from_bytes: sample shape " + sample_shape.str() + " and target shape " +
                     target_shape.str() + " must both have at least one element");
  const auto bytes = static_cast<int64_t>(x->size());
  if (bytes % s != 0)
    throw ShapeError("Dataset::from_bytes: " + std::to_string(bytes) + " bytes of x are not a whole number of samples " +
                     sample_shape.str() + " (expected a multiple of " + std::to_string(s) + ")");
  const int64_t n = bytes / s;
  if (static_cast<int64_t>(y->size()) != n * t)
    throw ShapeError("Dataset::from_bytes: y has " + std::to_string(y->size()) + " values, expected " +
                     std::to_string(n * t) + " for " + std::to_string(n) + " samples of target shape " +
                     target_shape.str());
  if (!std::isfinite(scale)) throw ValueError("Dataset::from_bytes: scale must be finite, got " + std::to_string(scale));
  Dataset d;
  d.bytes_ = std::move(x);
  d.targets_ = std::move(y);
  d.size_ = n;
  d.sample_shape_ = std::move(sample_shape);
  d.target_shape_ = std::move(target_shape);
  d.scale_ = scale;
  d.num_classes_ = count_classes(*d.targets_);
  d.input_shapes_ = {d.sample_shape_};
  d.target_shapes_ = {d.target_shape_};
  return d;
}

Dataset Dataset::from_tensors(const Tensor& x, const Tensor& y) {
  if (!x.defined() || !y.defined()) throw ValueError("Dataset::from_tensors: x and y must both be defined tensors");
  if (x.rank() < 1 || y.rank() < 1 || x.dim(0) != y.dim(0))
    throw ShapeError("Dataset::from_tensors: x " + x.shape().str() + " and y " + y.shape().str() +
                     " need the same number of samples (expected x (N, ...) and y (N) or (N, ...))");
  Dataset d;
  d.floats_ = std::shared_ptr<const float>(x.impl_ptr(), x.data());  // shares x's storage
  d.floats_count_ = x.numel();
  d.targets_ = std::make_shared<const std::vector<float>>(y.values().begin(), y.values().end());
  d.size_ = x.dim(0);
  d.sample_shape_ = without_batch(x.shape());
  d.target_shape_ = without_batch(y.shape());
  d.num_classes_ = count_classes(*d.targets_);
  d.input_shapes_ = {d.sample_shape_};
  d.target_shapes_ = {d.target_shape_};
  return d;
}

Dataset Dataset::from_tensors(const std::vector<Tensor>& xs, const std::vector<Tensor>& ys) {
  if (xs.empty() || ys.empty()) throw ValueError("Dataset::from_tensors: needs at least one input and one target");
  if (xs.size() == 1 && ys.size() == 1) return from_tensors(xs[0], ys[0]);
  std::vector<const Tensor*> all;
  for (const Tensor& t : xs) all.push_back(&t);
  for (const Tensor& t : ys) all.push_back(&t);
  for (size_t i = 0; i < all.size(); ++i) {
    const std::string what = i < xs.size() ? "input " + std::to_string(i) : "target " + std::to_string(i - xs.size());
    if (!all[i]->defined()) throw ValueError("Dataset::from_tensors: " + what + " is not a defined tensor");
    if (all[i]->rank() < 1 || all[i]->dim(0) != xs[0].dim(0))
      throw ShapeError("Dataset::from_tensors: " + what + " has shape " + all[i]->shape().str() +
                       "; every input and target needs the " + std::to_string(xs[0].dim(0)) +
                       " samples of input 0 first (N, ...)");
  }
  const int64_t n = xs[0].dim(0);
  // Row-major samples, each the parts one after another.
  auto pack = [n](const std::vector<Tensor>& parts, std::vector<Shape>& shapes) {
    int64_t row = 0;
    for (const Tensor& t : parts) {
      shapes.push_back(without_batch(t.shape()));
      row += shapes.back().numel();
    }
    auto out = std::make_shared<std::vector<float>>(static_cast<size_t>(n * row));
    int64_t offset = 0;
    for (const Tensor& t : parts) {
      const int64_t k = n > 0 ? t.numel() / n : 0;
      for (int64_t i = 0; i < n; ++i) std::copy(t.data() + i * k, t.data() + (i + 1) * k, out->data() + i * row + offset);
      offset += k;
    }
    return std::pair{std::shared_ptr<const std::vector<float>>(std::move(out)), row};
  };
  Dataset d;
  auto [x, s] = pack(xs, d.input_shapes_);
  auto [y, t] = pack(ys, d.target_shapes_);
  d.floats_ = std::shared_ptr<const float>(x, x->data());
  d.floats_count_ = static_cast<int64_t>(x->size());
  d.targets_ = std::move(y);
  d.size_ = n;
  d.sample_shape_ = xs.size() == 1 ? d.input_shapes_[0] : Shape{s};
  d.target_shape_ = ys.size() == 1 ? d.target_shapes_[0] : Shape{t};
  d.num_classes_ = ys.size() == 1 ? count_classes(*d.targets_) : 0;
  return d;
}

Dataset Dataset::with_parts(std::vector<Shape> input_shapes, std::vector<Shape> target_shapes) const {
  auto total = [](const std::vector<Shape>& parts) {
    int64_t n = 0;
    for (const Shape& p : parts) n += p.numel();
    return n;
  };
  auto text = [](const std::vector<Shape>& parts) {
    std::string out;
    for (const Shape& p : parts) out += (out.empty() ? "" : " + ") + p.str();
    return out;
  };
  if (input_shapes.empty() || target_shapes.empty())
    throw ValueError("Dataset::with_parts: needs at least one input and one target shape");
  if (total(input_shapes) != sample_shape_.numel())
    throw ShapeError("Dataset::with_parts: inputs " + text(input_shapes) + " hold " + std::to_string(total(input_shapes)) +
                     " values per sample, the data has " + std::to_string(sample_shape_.numel()) + " " +
                     sample_shape_.str());
  if (total(target_shapes) != target_shape_.numel())
    throw ShapeError("Dataset::with_parts: targets " + text(target_shapes) + " hold " +
                     std::to_string(total(target_shapes)) + " values per sample, the data has " +
                     std::to_string(target_shape_.numel()) + " " + target_shape_.str());
  Dataset d = *this;
  d.input_shapes_ = std::move(input_shapes);
  d.target_shapes_ = std::move(target_shapes);
  return d;
}

void Dataset::gather(std::span<const int64_t> indices, float* x, float* y) const {
  // x or y may be null to skip it (x(...) and y(...) use that): the whole sample as one part.
  const std::vector<float*> xs = x ? std::vector<float*>{x} : std::vector<float*>{};
  const std::vector<float*> ys = y ? std::vector<float*>{y} : std::vector<float*>{};
  gather_rows(indices, xs, {sample_shape_}, ys, {target_shape_});
}

void Dataset::gather_parts(std::span<const int64_t> indices, std::span<float* const> xs,
                           std::span<float* const> ys) const {
  if ((!xs.empty() && xs.size() != input_shapes_.size()) || (!ys.empty() && ys.size() != target_shapes_.size()))
    throw ValueError("Dataset::gather_parts: " + std::to_string(xs.size()) + " input and " + std::to_string(ys.size()) +
                     " target buffers for a dataset of " + std::to_string(input_shapes_.size()) + " inputs and " +
                     std::to_string(target_shapes_.size()) + " targets");
  gather_rows(indices, xs, input_shapes_, ys, target_shapes_);
}

void Dataset::gather_columns(std::span<const int64_t> indices, int64_t begin, int64_t end, float* x,
                             int64_t ld) const {
  const int64_t s = sample_shape_.numel();
  if (input_shapes_.size() != 1 || begin < 0 || end > s || begin > end)
    throw ValueError("Dataset::gather_columns: columns [" + std::to_string(begin) + ", " + std::to_string(end) +
                     ") of a dataset of " + std::to_string(input_shapes_.size()) + " inputs and " + std::to_string(s) +
                     " features per sample (expected one input and 0 <= begin <= end <= features)");
  const int64_t* order = order_ ? order_->data() : nullptr;
  const int64_t k = end - begin;
  for (size_t b = 0; b < indices.size(); ++b) {
    const int64_t i = indices[b];
    if (i < 0 || i >= size_)
      throw ValueError("Dataset::gather_columns: index " + std::to_string(i) + " (batch position " +
                       std::to_string(b) + ") is out of range (expected 0 to " + std::to_string(size_ - 1) + ")");
    features_to_floats((order ? order[begin_ + i] : begin_ + i) * s + begin, x + static_cast<int64_t>(b) * ld, k);
  }
}

void Dataset::features_to_floats(int64_t src, float* dst, int64_t k) const {
  if (bytes_)
    bytes_to_floats(bytes_->data() + src, dst, k, scale_);
  else if (scale_ == 1.f)
    std::memcpy(dst, floats_.get() + src, static_cast<size_t>(k) * sizeof(float));
  else
    floats_scaled(floats_.get() + src, dst, k, scale_);
}

void Dataset::prefetch(std::span<const int64_t> indices) const {
  prefetch_columns(indices, 0, sample_shape_.numel());
}

void Dataset::prefetch_columns(std::span<const int64_t> indices, int64_t begin, int64_t end) const {
  const int64_t s = sample_shape_.numel();
  if (begin < 0 || end > s || begin >= end) return;
  const int64_t* order = order_ ? order_->data() : nullptr;
  const uint8_t* bytes = bytes_ ? bytes_->data() : nullptr;
  const float* floats = floats_.get();
  for (const int64_t i : indices) {
    if (i < 0 || i >= size_) continue;  // gather checks and reports
    const int64_t row = order ? order[begin_ + i] : begin_ + i;
    if (bytes != nullptr)
      prefetch_lines<2>(bytes + row * s + begin, end - begin);
    else if (floats != nullptr)
      prefetch_lines<2>(floats + row * s + begin, (end - begin) * int64_t{sizeof(float)});
  }
}

void Dataset::gather_rows(std::span<const int64_t> indices, std::span<float* const> xs, const std::vector<Shape>& x_parts,
                          std::span<float* const> ys, const std::vector<Shape>& y_parts) const {
  const int64_t s = sample_shape_.numel(), t = target_shape_.numel();
  const int64_t* order = order_ ? order_->data() : nullptr;
  const uint8_t* bytes = bytes_ ? bytes_->data() : nullptr;
  const float* targets = targets_ ? targets_->data() : nullptr;
  // First pass: check every index and resolve its storage row, prefetching the rows of byte
  // images (shuffled rows are cache misses; issuing them all first overlaps the waits).
  static thread_local std::vector<int64_t> rows;  // scratch reused between batches
  rows.resize(indices.size());
  for (size_t b = 0; b < indices.size(); ++b) {
    const int64_t i = indices[b];
    if (i < 0 || i >= size_)
      throw ValueError("Dataset::gather: index " + std::to_string(i) + " (batch position " + std::to_string(b) +
                       ") is out of range (expected 0 to " + std::to_string(size_ - 1) + " for " +
                       std::to_string(size_) + " samples)");
    const int64_t row = order ? order[begin_ + i] : begin_ + i;
    rows[b] = row;
    if (!xs.empty() && bytes != nullptr) prefetch_lines<3>(bytes + row * s, s);
  }
  int64_t offset = 0;
  for (size_t p = 0; p < xs.size(); ++p) {
    const int64_t k = x_parts[p].numel();
    for (size_t b = 0; b < indices.size(); ++b)
      features_to_floats(rows[b] * s + offset, xs[p] + static_cast<int64_t>(b) * k, k);
    offset += k;
  }
  offset = 0;
  for (size_t p = 0; p < ys.size(); ++p) {
    const int64_t k = y_parts[p].numel();
    for (size_t b = 0; b < indices.size(); ++b)
      std::memcpy(ys[p] + static_cast<int64_t>(b) * k, targets + rows[b] * t + offset, static_cast<size_t>(k) * sizeof(float));
    offset += k;
  }
}

Tensor Dataset::x(std::span<const int64_t> indices) const {
  Tensor out = Tensor::empty(with_batch(static_cast<int64_t>(indices.size()), sample_shape_));
  gather(indices, out.data(), nullptr);
  return out;
}

Tensor Dataset::y(std::span<const int64_t> indices) const {
  Tensor out = Tensor::empty(with_batch(static_cast<int64_t>(indices.size()), target_shape_));
  gather(indices, nullptr, out.data());
  return out;
}

Tensor Dataset::all_x() const {
  std::vector<int64_t> all(static_cast<size_t>(size_));
  std::iota(all.begin(), all.end(), int64_t{0});
  return x(std::span<const int64_t>(all));
}

// Values [offset, offset + k) of every sample's row of targets, in order, straight from storage:
// no index list (fit checks all of them before training, and each new page of a list costs a
// page fault).
Tensor Dataset::targets_of_all(const Shape& shape, int64_t offset, int64_t k) const {
  Tensor out = Tensor::empty(with_batch(size_, shape));
  const int64_t t = target_shape_.numel();
  const int64_t* order = order_ ? order_->data() : nullptr;
  const float* targets = targets_ ? targets_->data() : nullptr;
  float* dst = out.data();
  for (int64_t b = 0; b < size_; ++b) {
    const float* src = targets + (order ? order[begin_ + b] : begin_ + b) * t + offset;
    for (int64_t j = 0; j < k; ++j) dst[b * k + j] = src[j];
  }
  return out;
}

Tensor Dataset::all_y() const { return targets_of_all(target_shape_, 0, target_shape_.numel()); }

Tensor Dataset::all_y(size_t target) const {
  if (target >= target_shapes_.size())
    throw ValueError("Dataset::all_y: target " + std::to_string(target) + " of " +
                     std::to_string(target_shapes_.size()));
  int64_t offset = 0;  // the target's place in each sample's row of targets
  for (size_t p = 0; p < target; ++p) offset += target_shapes_[p].numel();
  return targets_of_all(target_shapes_[target], offset, target_shapes_[target].numel());
}

Dataset Dataset::slice(int64_t begin, int64_t end) const {
  if (begin < 0 || begin > end || end > size_)
    throw ValueError("Dataset::slice: [" + std::to_string(begin) + ", " + std::to_string(end) +
                     ") is not a range of samples (expected 0 <= begin <= end <= " + std::to_string(size_) + ")");
  Dataset d = *this;
  d.begin_ = begin_ + begin;
  d.size_ = end - begin;
  return d;
}

Dataset Dataset::scaled(float factor) const {
  if (!std::isfinite(factor)) throw ValueError("Dataset::scaled: factor must be finite, got " + std::to_string(factor));
  Dataset d = *this;
  d.scale_ = scale_ * factor;
  return d;
}

std::pair<Dataset, Dataset> Dataset::split(double first_fraction, uint64_t seed) const {
  if (!(first_fraction >= 0.0 && first_fraction <= 1.0))
    throw ValueError("Dataset::split: first_fraction must be in [0, 1], got " + std::to_string(first_fraction));
  // The storage rows of this dataset in logical order, then a Fisher-Yates shuffle.
  auto rows = std::make_shared<std::vector<int64_t>>(static_cast<size_t>(size_));
  for (int64_t i = 0; i < size_; ++i) (*rows)[static_cast<size_t>(i)] = order_ ? (*order_)[begin_ + i] : begin_ + i;
  Generator gen(seed);
  for (int64_t i = size_ - 1; i > 0; --i) {
    const auto j = static_cast<int64_t>(gen.below(static_cast<uint64_t>(i) + 1));
    std::swap((*rows)[static_cast<size_t>(i)], (*rows)[static_cast<size_t>(j)]);
  }
  const auto first = static_cast<int64_t>(std::llround(first_fraction * static_cast<double>(size_)));
  Dataset a = *this;
  a.order_ = std::move(rows);
  a.begin_ = 0;
  a.size_ = first;
  Dataset b = a;
  b.begin_ = first;
  b.size_ = size_ - first;
  return {std::move(a), std::move(b)};
}

int64_t Dataset::num_classes() const { return target_shape_.rank() == 0 ? num_classes_ : 0; }

int64_t Dataset::storage_bytes() const {
  auto bytes = [](const auto& v) { return v ? static_cast<int64_t>(v->size() * sizeof((*v)[0])) : int64_t{0}; };
  return bytes(bytes_) + floats_count_ * int64_t{sizeof(float)} + bytes(targets_) + bytes(order_);
}

}  // namespace lamina::data
