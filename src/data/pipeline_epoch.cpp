// One epoch of a Pipeline: a stream of sample ids (the source's indices) through the shuffle and
// take stages; each id then becomes a sample (the source, then every map, each with a generator
// seeded from (seed, stage, epoch, id)), and B of them a batch. Since ids, not a running
// generator, fix every random draw, skipping and prefetching cannot change what comes out.
// The recipe and the public API are in pipeline.cpp. B = batch size.
#include "lamina/pipeline.hpp"

#include <algorithm>
#include <cstring>
#include <map>
#include <string>
#include <utility>

#include "data/pipeline_internal.hpp"

namespace lamina::data {

namespace detail {

uint64_t mix(uint64_t h, uint64_t v) {
  // splitmix64's finalizer over h and v: distinct (h, v) pairs give unrelated seeds.
  uint64_t z = h ^ (v + 0x9e3779b97f4a7c15ULL + (h << 6) + (h >> 2));
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}

Generator stage_generator(uint64_t seed, int64_t stage, int64_t epoch, int64_t id) {
  return Generator(mix(mix(mix(seed, static_cast<uint64_t>(stage)), static_cast<uint64_t>(epoch)),
                       static_cast<uint64_t>(id)));
}

std::string shapes_str(const std::vector<Shape>& shapes) {
  std::string s = "[";
  for (size_t i = 0; i < shapes.size(); ++i) s += (i ? ", " : "") + shapes[i].str();
  return s + "]";
}

Shape with_batch(int64_t batch, const Shape& shape) {
  std::vector<int64_t> dims{batch};
  dims.insert(dims.end(), shape.begin(), shape.end());
  return Shape(std::move(dims));
}

}  // namespace detail

using detail::shapes_str;
using detail::with_batch;

namespace {

std::vector<Shape> shapes_of(const std::vector<Tensor>& ts) {
  std::vector<Shape> out;
  for (const Tensor& t : ts) out.push_back(t.defined() ? t.shape() : Shape{-1});
  return out;
}

void check_sample(const std::string& where, int64_t id, int epoch, const Sample& s, const std::vector<Shape>& inputs,
                  const std::vector<Shape>& targets, const std::string& hint) {
  const std::vector<Shape> got_x = shapes_of(s.x), got_y = shapes_of(s.y);
  if (got_x == inputs && got_y == targets) return;
  throw ShapeError("Pipeline " + where + ": sample " + std::to_string(id) + " of epoch " + std::to_string(epoch) +
                   " has inputs " + shapes_str(got_x) + " and targets " + shapes_str(got_y) + ", expected inputs " +
                   shapes_str(inputs) + " and targets " + shapes_str(targets) + hint);
}

// A batch tensor of `shape` in slot i, reusing the one there when nobody else holds it (the
// consumer may keep earlier batches; a view of a caller's blob is never written into).
Tensor& slot(std::vector<Tensor>& v, size_t i, const Shape& shape) {
  Tensor& t = v[i];
  if (!t.defined() || t.shape() != shape || t.impl_ptr().use_count() != 1 || t.impl()->storage.use_count() != 1 ||
      t.requires_grad())
    t = Tensor::empty(shape);
  return t;
}

}  // namespace

// --- the id streams of one epoch -------------------------------------------------------------

namespace detail {

class Ids {
 public:
  virtual ~Ids() = default;
  virtual std::optional<int64_t> next() = 0;
};

// 0, 1, 2, ... while the source has them.
class SourceIds : public Ids {
 public:
  explicit SourceIds(std::function<bool(int64_t)> has) : has_(std::move(has)) {}
  std::optional<int64_t> next() override {
    if (!has_(i_)) return std::nullopt;
    return i_++;
  }

 private:
  std::function<bool(int64_t)> has_;
  int64_t i_ = 0;
};

// tf.data's buffer shuffle: fill the buffer, emit a random slot and refill it from upstream.
class ShuffleIds : public Ids {
 public:
  ShuffleIds(std::unique_ptr<Ids> up, int64_t buffer, Generator rng)
      : up_(std::move(up)), cap_(static_cast<size_t>(buffer)), rng_(rng) {}
  std::optional<int64_t> next() override {
    for (; !filled_ && buf_.size() < cap_;) {
      std::optional<int64_t> i = up_->next();
      if (!i) break;
      buf_.push_back(*i);
    }
    filled_ = true;
    if (buf_.empty()) return std::nullopt;
    const size_t k = rng_.below(buf_.size());
    const int64_t out = buf_[k];
    if (std::optional<int64_t> i = up_->next()) {
      buf_[k] = *i;
    } else {
      buf_[k] = buf_.back();
      buf_.pop_back();
    }
    return out;
  }

 private:
  std::unique_ptr<Ids> up_;
  size_t cap_;
  Generator rng_;
  std::vector<int64_t> buf_;
  bool filled_ = false;
};

class TakeIds : public Ids {
 public:
  TakeIds(std::unique_ptr<Ids> up, int64_t count) : up_(std::move(up)), left_(count) {}
  std::optional<int64_t> next() override {
    if (left_ <= 0) return std::nullopt;
    --left_;
    return up_->next();
  }

 private:
  std::unique_ptr<Ids> up_;
  int64_t left_;
};

}  // namespace detail

using detail::Ids;
using detail::ShuffleIds;
using detail::SourceIds;
using detail::TakeIds;

// --- one epoch ---------------------------------------------------------------------------------

Pipeline::Epoch::Epoch(std::shared_ptr<const Spec> spec, int epoch) : spec_(std::move(spec)), epoch_(epoch) {
  const Spec& s = *spec_;
  if (s.source == Spec::Source::batches) return;
  std::unique_ptr<Ids> ids = std::make_unique<SourceIds>([this](int64_t i) { return has(i); });
  for (const Spec::Stage& st : s.sample_stages) {
    if (st.kind == Spec::Stage::Kind::shuffle) {
      const uint64_t seed = st.seed.value_or(detail::mix(s.seed, static_cast<uint64_t>(st.number)));
      ids = std::make_unique<ShuffleIds>(std::move(ids), st.count,
                                         Generator(detail::mix(seed, static_cast<uint64_t>(epoch_))));
    } else if (st.kind == Spec::Stage::Kind::take) {
      ids = std::make_unique<TakeIds>(std::move(ids), st.count);
    } else {
      has_maps_ = true;
    }
  }
  ids_ = std::move(ids);
}

Pipeline::Epoch::~Epoch() = default;

bool Pipeline::Epoch::has(int64_t i) {
  const Spec& s = *spec_;
  if (s.source != Spec::Source::samples || s.random_access) return i < *s.source_size;
  // A sequential generator: call it in order up to i, keeping what is not consumed yet.
  while (!ended_ && fetched_ <= i && (!s.source_size || fetched_ < *s.source_size)) {
    Generator rng = detail::stage_generator(s.seed, 0, epoch_, fetched_);
    std::optional<Sample> got = s.sample_fn(fetched_, rng);
    if (!got) {
      if (s.source_size)
        throw ValueError("Pipeline from_generator: the generator ended at sample " + std::to_string(fetched_) +
                         " of epoch " + std::to_string(epoch_) + ", but its size says " +
                         std::to_string(*s.source_size) + " (set GeneratorOptions.size to the true count, or leave it unset)");
      ended_ = true;
      break;
    }
    check_sample("from_generator", fetched_, epoch_, *got, s.source_inputs, s.source_targets,
                 " (as GeneratorOptions declares them)");
    cache_.emplace(fetched_++, std::move(*got));
  }
  return i < fetched_;
}

Sample Pipeline::Epoch::source_sample(int64_t id) {
  const Spec& s = *spec_;
  Sample out;
  switch (s.source) {
    case Spec::Source::dataset: {
      for (const Shape& sh : s.source_inputs) out.x.push_back(Tensor::empty(sh));
      for (const Shape& sh : s.source_targets) out.y.push_back(Tensor::empty(sh));
      std::vector<float*> xs, ys;
      for (Tensor& t : out.x) xs.push_back(t.data());
      for (Tensor& t : out.y) ys.push_back(t.data());
      s.dataset.gather_parts(std::span(&id, 1), xs, ys);
      return out;
    }
    case Spec::Source::blob: {  // a copy: a map may write into its sample
      out.x.push_back(s.blob_x.view(id * s.source_inputs[0].numel(), s.source_inputs[0]).clone());
      if (s.blob_y.defined())
        out.y.push_back(s.blob_y.view(id * s.source_targets[0].numel(), s.source_targets[0]).clone());
      return out;
    }
    case Spec::Source::samples: {
      if (s.random_access) {
        Generator rng = detail::stage_generator(s.seed, 0, epoch_, id);
        std::optional<Sample> got = s.sample_fn(id, rng);
        if (!got)
          throw ValueError("Pipeline from_generator: the random-access generator returned nothing for sample " +
                           std::to_string(id) + " of " + std::to_string(*s.source_size));
        check_sample("from_generator", id, epoch_, *got, s.source_inputs, s.source_targets,
                     " (as GeneratorOptions declares them)");
        return std::move(*got);
      }
      auto it = cache_.find(id);  // has(id) fetched it
      out = std::move(it->second);
      cache_.erase(it);
      return out;
    }
    case Spec::Source::batches: break;
  }
  throw ValueError("Pipeline: internal error: per-sample access to a batch generator");
}

Sample Pipeline::Epoch::sample(int64_t id) {
  Sample s = source_sample(id);
  for (const Spec::Stage& st : spec_->sample_stages) {
    if (st.kind != Spec::Stage::Kind::map) continue;
    Generator rng = detail::stage_generator(spec_->seed, st.number, epoch_, id);
    s = st.fn(std::move(s), rng);
    check_sample(st.name, id, epoch_, s, st.inputs, st.targets,
                 " (a map that changes shapes declares them: MapOptions{.input_shapes = ..., .target_shapes = ...})");
  }
  return s;
}

std::vector<int64_t> Pipeline::Epoch::next_ids() {
  std::vector<int64_t> ids;
  const auto b = static_cast<size_t>(spec_->batch_size);
  while (ids.size() < b) {
    std::optional<int64_t> id = ids_->next();
    if (!id) break;
    ids.push_back(*id);
  }
  return ids;
}

bool Pipeline::Epoch::batch_allowed() const { return !spec_->batch_take || batches_ < *spec_->batch_take; }

void Pipeline::Epoch::skip(int64_t batches) {
  const Spec& s = *spec_;
  for (int64_t k = 0; k < batches && batch_allowed(); ++k) {
    if (s.source == Spec::Source::batches) {
      if (s.random_access) {
        if (batches_ >= *s.source_size) return;
      } else if (!call_batch_generator(batches_)) {
        return;
      }
      ++batches_;
      continue;
    }
    const std::vector<int64_t> ids = next_ids();
    if (ids.empty()) return;
    for (int64_t id : ids) cache_.erase(id);  // consumed unused (sequential generators cached it)
    ++batches_;
  }
}

std::optional<Batch> Pipeline::Epoch::call_batch_generator(int64_t index) {
  const Spec& s = *spec_;
  if (s.source_size && index >= *s.source_size) return std::nullopt;
  Generator rng = detail::stage_generator(s.seed, 0, epoch_, index);
  std::optional<Batch> got = s.batch_fn(index, rng);
  if (!got) return got;
  int64_t b = got->x.empty() ? -1 : (got->x[0].defined() && got->x[0].rank() > 0 ? got->x[0].dim(0) : -1);
  std::vector<Shape> want_x, want_y;
  for (const Shape& sh : s.source_inputs) want_x.push_back(with_batch(b, sh));
  for (const Shape& sh : s.source_targets) want_y.push_back(with_batch(b, sh));
  if (b < 1 || shapes_of(got->x) != want_x || shapes_of(got->y) != want_y)
    throw ShapeError("Pipeline from_batch_generator: batch " + std::to_string(index) + " of epoch " +
                     std::to_string(epoch_) + " has inputs " + shapes_str(shapes_of(got->x)) + " and targets " +
                     shapes_str(shapes_of(got->y)) + ", expected (B, ...) of inputs " + shapes_str(s.source_inputs) +
                     " and targets " + shapes_str(s.source_targets) + " with one B >= 1 (as GeneratorOptions declares them)");
  return got;
}

bool Pipeline::Epoch::next(Batch& out) {
  const Spec& s = *spec_;
  if (!batch_allowed()) return false;
  if (s.source == Spec::Source::batches) {
    if (s.random_access && batches_ >= *s.source_size) return false;
    std::optional<Batch> got = call_batch_generator(batches_);
    if (!got) return false;
    out = std::move(*got);
    ++batches_;
    return true;
  }
  const std::vector<int64_t> ids = next_ids();
  if (ids.empty() || (s.drop_remainder && static_cast<int64_t>(ids.size()) < s.batch_size)) {
    for (int64_t id : ids) cache_.erase(id);
    return false;
  }
  ++batches_;
  assemble(ids, out);
  return true;
}

void Pipeline::Epoch::assemble(const std::vector<int64_t>& ids, Batch& out) {
  const Spec& s = *spec_;
  const auto n = static_cast<int64_t>(ids.size());
  out.x.resize(s.inputs.size());
  out.y.resize(s.targets.size());
  out.sample_weight = Tensor();
  if (!has_maps_ && s.source == Spec::Source::blob) {
    bool consecutive = true;
    for (int64_t k = 1; k < n; ++k) consecutive = consecutive && ids[k] == ids[0] + k;
    auto rows = [&](const Tensor& blob, const Shape& shape, std::vector<Tensor>& dst) {
      const int64_t e = shape.numel();
      if (consecutive) {  // in place: a view of the caller's memory
        dst[0] = blob.view(ids[0] * e, with_batch(n, shape));
        return;
      }
      float* d = slot(dst, 0, with_batch(n, shape)).data();
      for (int64_t k = 0; k < n; ++k) std::memcpy(d + k * e, blob.data() + ids[k] * e, sizeof(float) * e);
    };
    rows(s.blob_x, s.inputs[0], out.x);
    if (s.blob_y.defined()) rows(s.blob_y, s.targets[0], out.y);
    return;
  }
  std::vector<float*> xs, ys;
  for (size_t p = 0; p < s.inputs.size(); ++p) xs.push_back(slot(out.x, p, with_batch(n, s.inputs[p])).data());
  for (size_t p = 0; p < s.targets.size(); ++p) ys.push_back(slot(out.y, p, with_batch(n, s.targets[p])).data());
  if (!has_maps_ && s.source == Spec::Source::dataset) {
    s.dataset.gather_parts(ids, xs, ys);
    return;
  }
  for (int64_t k = 0; k < n; ++k) {
    const Sample smp = sample(ids[k]);
    auto copy = [k](const std::vector<Tensor>& parts, const std::vector<float*>& dst) {
      for (size_t p = 0; p < parts.size(); ++p) {
        const int64_t e = parts[p].numel();
        std::memcpy(dst[p] + k * e, parts[p].data(), sizeof(float) * e);
      }
    };
    copy(smp.x, xs);
    copy(smp.y, ys);
  }
}

}  // namespace lamina::data
