// Pipeline's public face: the sources, the chainable stages (each copies the recipe and adds
// one), the BatchSource calls, and the prefetch thread. What an epoch does is in
// pipeline_epoch.cpp.
#include "lamina/pipeline.hpp"

#include <algorithm>
#include <string>
#include <utility>

#include "data/pipeline_internal.hpp"

namespace lamina::data {

using detail::shapes_str;

namespace {

Tensor wrap_blob(const float* p, const Shape& shape) {
  auto impl = std::make_shared<TensorImpl>();
  impl->shape = shape;
  // Not ours: a deleter that frees nothing. The const is restored by never writing through it
  // (batches of a blob are read-only views; maps get copies).
  impl->storage = std::shared_ptr<float[]>(const_cast<float*>(p), [](float*) {});
  impl->data = impl->storage.get();
  return Tensor(std::move(impl));
}

Shape without_batch(const Shape& shape) { return Shape(std::vector<int64_t>(shape.begin() + 1, shape.end())); }

void check_shapes(const std::string& where, const std::vector<Shape>& shapes) {
  for (const Shape& s : shapes)
    for (int64_t d : s)
      if (d < 1)
        throw ShapeError("Pipeline::" + where + ": shape " + s.str() + " in " + shapes_str(shapes) +
                         " has a dimension below 1 (per-sample shapes, without the batch dimension)");
}

}  // namespace

// --- construction ------------------------------------------------------------------------------

Pipeline::Pipeline(std::shared_ptr<const Spec> spec) : spec_(std::move(spec)) {}
Pipeline::Pipeline(const Pipeline& other) : spec_(other.spec_) {}
Pipeline& Pipeline::operator=(const Pipeline& other) {
  if (this != &other) {
    stop();
    spec_ = other.spec_;
  }
  return *this;
}
Pipeline::Pipeline(Pipeline&& other) noexcept = default;
Pipeline& Pipeline::operator=(Pipeline&& other) noexcept = default;
Pipeline::~Pipeline() = default;  // ~Prefetcher joins

Pipeline Pipeline::with(const std::function<void(Spec&)>& change) const {
  auto spec = std::make_shared<Spec>(*spec_);
  change(*spec);
  return Pipeline(std::move(spec));
}

Pipeline Pipeline::from_dataset(const Dataset& dataset) {
  auto s = std::make_shared<Spec>();
  s->source = Spec::Source::dataset;
  s->dataset = dataset;
  s->source_size = dataset.size();
  s->source_inputs = s->inputs = dataset.input_shapes();
  s->source_targets = s->targets = dataset.target_shapes();
  return Pipeline(std::move(s));
}

namespace {
void check_generator_options(const std::string& where, const GeneratorOptions& o, bool has_fn) {
  if (!has_fn) throw ValueError("Pipeline::" + where + ": the callback is empty");
  if (o.input_shapes.empty())
    throw ValueError("Pipeline::" + where + ": GeneratorOptions.input_shapes is empty; declare the shape of each "
                     "input per sample, e.g. {Shape{28, 28, 1}}");
  check_shapes(where, o.input_shapes);
  check_shapes(where, o.target_shapes);
  if (o.size && *o.size < 0)
    throw ValueError("Pipeline::" + where + ": GeneratorOptions.size is " + std::to_string(*o.size) + ", expected >= 0");
  if (o.random_access && !o.size)
    throw ValueError("Pipeline::" + where + ": random_access needs GeneratorOptions.size (which indices exist)");
}
}  // namespace

Pipeline Pipeline::from_generator(SampleGenerator fn, GeneratorOptions options) {
  check_generator_options("from_generator", options, static_cast<bool>(fn));
  auto s = std::make_shared<Spec>();
  s->source = Spec::Source::samples;
  s->sample_fn = std::move(fn);
  s->random_access = options.random_access;
  s->source_size = options.size;
  s->source_inputs = s->inputs = std::move(options.input_shapes);
  s->source_targets = s->targets = std::move(options.target_shapes);
  return Pipeline(std::move(s));
}

Pipeline Pipeline::from_batch_generator(BatchGenerator fn, GeneratorOptions options) {
  check_generator_options("from_batch_generator", options, static_cast<bool>(fn));
  auto s = std::make_shared<Spec>();
  s->source = Spec::Source::batches;
  s->batch_fn = std::move(fn);
  s->random_access = options.random_access;
  s->source_size = options.size;
  s->source_inputs = s->inputs = std::move(options.input_shapes);
  s->source_targets = s->targets = std::move(options.target_shapes);
  return Pipeline(std::move(s));
}

Pipeline Pipeline::from_blob(const float* x, Shape x_shape, const float* y, Shape y_shape) {
  if (x == nullptr) throw ValueError("Pipeline::from_blob: x is a null pointer");
  if (x_shape.rank() < 1 || x_shape.numel() < 1)
    throw ShapeError("Pipeline::from_blob: x_shape " + x_shape.str() + " must be (N, ...) with N >= 1 and no zero dimension");
  auto s = std::make_shared<Spec>();
  s->source = Spec::Source::blob;
  s->source_size = x_shape[0];
  s->blob_x = wrap_blob(x, x_shape);
  s->source_inputs = s->inputs = {without_batch(x_shape)};
  if (y != nullptr) {
    if (y_shape.rank() < 1 || y_shape[0] != x_shape[0] || y_shape.numel() < 1)
      throw ShapeError("Pipeline::from_blob: y_shape " + y_shape.str() + " must be (N) or (N, ...) with x's N = " +
                       std::to_string(x_shape[0]));
    s->blob_y = wrap_blob(y, y_shape);
    s->source_targets = s->targets = {without_batch(y_shape)};
  } else if (y_shape.rank() > 0) {
    throw ValueError("Pipeline::from_blob: y_shape " + y_shape.str() + " is given but y is a null pointer");
  }
  return Pipeline(std::move(s));
}

// --- stages ------------------------------------------------------------------------------------

namespace {
void refuse_after_batch(const Pipeline::Spec& s, const std::string& stage) {
  if (s.source == Pipeline::Spec::Source::batches)
    throw ValueError("Pipeline::" + stage + ": the source (from_batch_generator) yields whole batches; " + stage +
                     " works on samples (use from_generator for per-sample stages)");
  if (s.batch_size > 0)
    throw ValueError("Pipeline::" + stage + " after batch(): " + stage + " works on samples; put it before batch()");
}
}  // namespace

Pipeline Pipeline::map(MapFn fn, MapOptions options) const {
  if (!fn) throw ValueError("Pipeline::map: the function is empty");
  refuse_after_batch(*spec_, "map");
  if (options.input_shapes) check_shapes("map", *options.input_shapes);
  if (options.target_shapes) check_shapes("map", *options.target_shapes);
  return with([&](Spec& s) {
    Spec::Stage st;
    st.kind = Spec::Stage::Kind::map;
    st.number = ++s.stages;
    st.fn = std::move(fn);
    st.name = options.name.empty() ? "map #" + std::to_string(st.number) : "map '" + options.name + "'";
    st.inputs = s.inputs = options.input_shapes.value_or(s.inputs);
    st.targets = s.targets = options.target_shapes.value_or(s.targets);
    s.sample_stages.push_back(std::move(st));
  });
}

Pipeline Pipeline::shuffle(int64_t buffer_size, std::optional<uint64_t> seed) const {
  if (buffer_size < 1) throw ValueError("Pipeline::shuffle: buffer_size is " + std::to_string(buffer_size) + ", expected >= 1");
  refuse_after_batch(*spec_, "shuffle");
  return with([&](Spec& s) {
    Spec::Stage st;
    st.kind = Spec::Stage::Kind::shuffle;
    st.number = ++s.stages;
    st.count = buffer_size;
    st.seed = seed;
    s.sample_stages.push_back(std::move(st));
  });
}

Pipeline Pipeline::batch(int64_t batch_size, bool drop_remainder) const {
  if (batch_size < 1) throw ValueError("Pipeline::batch: batch_size is " + std::to_string(batch_size) + ", expected >= 1");
  if (spec_->source == Spec::Source::batches)
    throw ValueError("Pipeline::batch: the source (from_batch_generator) already yields batches");
  if (spec_->batch_size > 0)
    throw ValueError("Pipeline::batch: the pipeline is batched already (batch(" + std::to_string(spec_->batch_size) +
                     ")); batches of batches are not supported");
  return with([&](Spec& s) {
    ++s.stages;
    s.batch_size = batch_size;
    s.drop_remainder = drop_remainder;
  });
}

Pipeline Pipeline::take(int64_t count) const {
  if (count < 0) throw ValueError("Pipeline::take: count is " + std::to_string(count) + ", expected >= 0");
  return with([&](Spec& s) {
    const int number = ++s.stages;
    if (s.batched()) {
      s.batch_take = std::min(count, s.batch_take.value_or(count));
      return;
    }
    Spec::Stage st;
    st.kind = Spec::Stage::Kind::take;
    st.number = number;
    st.count = count;
    s.sample_stages.push_back(std::move(st));
  });
}

Pipeline Pipeline::prefetch(int64_t buffer_size) const {
  if (buffer_size < 1) throw ValueError("Pipeline::prefetch: buffer_size is " + std::to_string(buffer_size) + ", expected >= 1");
  return with([&](Spec& s) { s.prefetch = buffer_size; });
}

Pipeline Pipeline::seed(uint64_t seed) const {
  return with([&](Spec& s) { s.seed = seed; });
}

// --- BatchSource -------------------------------------------------------------------------------

std::vector<Shape> Pipeline::input_shapes() const { return spec_->inputs; }
std::vector<Shape> Pipeline::target_shapes() const { return spec_->targets; }

std::optional<int64_t> Pipeline::size() const {
  if (spec_->source == Spec::Source::batches) return std::nullopt;
  std::optional<int64_t> n = spec_->source_size;
  for (const Spec::Stage& st : spec_->sample_stages)
    if (st.kind == Spec::Stage::Kind::take && n) n = std::min(*n, st.count);
  return n;
}

namespace {
void require_batched(const Pipeline::Spec& s, const std::string& where) {
  if (!s.batched())
    throw ValueError("Pipeline::" + where + ": the pipeline has no batch stage, and a BatchSource yields batches; "
                     "add .batch(32) (or .batch(1) for single samples)");
}
}  // namespace

std::optional<int64_t> Pipeline::steps_per_epoch() const {
  require_batched(*spec_, "steps_per_epoch");
  std::optional<int64_t> steps;
  if (spec_->source == Spec::Source::batches) {
    steps = spec_->source_size;
  } else if (std::optional<int64_t> n = size()) {
    const int64_t b = spec_->batch_size;
    steps = spec_->drop_remainder ? *n / b : (*n + b - 1) / b;
  }
  if (steps && spec_->batch_take) steps = std::min(*steps, *spec_->batch_take);
  return steps;
}

void Pipeline::stop() {
  prefetcher_.reset();  // joins its thread
  epoch_.reset();
}

void Pipeline::start_epoch(int epoch, int64_t skip) {
  require_batched(*spec_, "start_epoch");
  if (epoch < 0 || skip < 0)
    throw ValueError("Pipeline::start_epoch: epoch " + std::to_string(epoch) + " and skip " + std::to_string(skip) +
                     " must both be >= 0");
  stop();
  auto e = std::make_unique<Epoch>(spec_, epoch);
  if (spec_->prefetch > 0) {
    prefetcher_ = std::make_unique<Prefetcher>(std::move(e), skip, spec_->prefetch);
  } else {
    e->skip(skip);
    epoch_ = std::move(e);
  }
}

bool Pipeline::next(Batch& batch) {
  require_batched(*spec_, "next");
  if (!prefetcher_ && !epoch_) start_epoch(0);
  return prefetcher_ ? prefetcher_->next(batch) : epoch_->next(batch);
}

// --- prefetching -------------------------------------------------------------------------------

Pipeline::Prefetcher::Prefetcher(std::unique_ptr<Epoch> epoch, int64_t skip, int64_t depth)
    : epoch_(std::move(epoch)), depth_(static_cast<size_t>(depth)), thread_([this, skip] { run(skip); }) {}

Pipeline::Prefetcher::~Prefetcher() {
  {
    std::lock_guard lock(mu_);
    stop_ = true;
  }
  space_.notify_all();
  thread_.join();
}

void Pipeline::Prefetcher::run(int64_t skip) {
  try {
    epoch_->skip(skip);
    for (;;) {
      {
        std::lock_guard lock(mu_);
        if (stop_) break;
      }
      Batch b;
      if (!epoch_->next(b)) break;
      std::unique_lock lock(mu_);
      space_.wait(lock, [&] { return stop_ || queue_.size() < depth_; });
      if (stop_) break;
      queue_.push_back(std::move(b));
      ready_.notify_one();
    }
  } catch (...) {
    std::lock_guard lock(mu_);
    error_ = std::current_exception();
  }
  std::lock_guard lock(mu_);
  done_ = true;
  ready_.notify_all();
}

bool Pipeline::Prefetcher::next(Batch& out) {
  std::unique_lock lock(mu_);
  ready_.wait(lock, [&] { return !queue_.empty() || done_; });
  if (!queue_.empty()) {
    out = std::move(queue_.front());
    queue_.pop_front();
    space_.notify_one();
    return true;
  }
  if (error_) {
    std::exception_ptr e = std::exchange(error_, nullptr);  // thrown once; then the epoch is over
    std::rethrow_exception(e);
  }
  return false;
}

}  // namespace lamina::data
