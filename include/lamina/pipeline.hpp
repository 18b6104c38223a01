// Pipelines: streams of batches built as tf.data's Dataset or torch's DataLoader builds them
// (a source, then map / shuffle / batch / take / prefetch), read by Model::fit, evaluate and
// predict_all through data::BatchSource. Not a container: a Pipeline holds a recipe and, while an
// epoch runs, its position in it; the samples themselves stay in the source.
//
//   auto train = data::Pipeline::from_dataset(ds)                  // or from_generator, from_blob
//                    .map([](data::Sample s, Generator& rng) {    // per sample, seeded
//                      s.x[0] = data::augment::random_flip_left_right(s.x[0], rng);
//                      return s; })
//                    .shuffle(10000, /*seed=*/1).batch(32).prefetch(2);
//   model.fit(train, {.epochs = 5});
//
// Sources: a Dataset; a generator callback (per sample or per batch) for data that does not fit
// in memory; a caller's float buffer, read in place (from_blob).
// Determinism: every random number a pipeline uses comes from a Generator seeded from (the
// pipeline's seed, the stage, the epoch, the sample's index in the source), never from a shared
// sequential one, so a seed fixes every batch, start_epoch(e, k) resumes exactly, and prefetching
// on a background thread gives the same bytes as running inline.
// Order of stages: sample stages (map, shuffle, take) come before batch(); after it only take
// (counting batches) and prefetch. prefetch(n) runs the whole pipeline on one background thread
// n batches ahead, wherever it stands in the chain (put it last, as tf.data advises).
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "lamina/data.hpp"
#include "lamina/random.hpp"
#include "lamina/tensor.hpp"

namespace lamina::data {

// One sample: a tensor per model input and per target, without the batch dimension
// (a 28x28 image is (28, 28, 1), a class index is a scalar ()).
struct Sample {
  std::vector<Tensor> x, y;
};

// A map stage: takes a sample, returns it transformed. Draw randomness only from `rng`
// (seeded per sample), never from globals, so the result is reproducible and thread-safe.
using MapFn = std::function<Sample(Sample sample, Generator& rng)>;
// Sample `index` (0-based, in the source's order) of the epoch, or nullopt past the end.
using SampleGenerator = std::function<std::optional<Sample>(int64_t index, Generator& rng)>;
// Batch `index` of the epoch, each part (B, ...) with the same B, or nullopt past the end.
using BatchGenerator = std::function<std::optional<Batch>(int64_t index, Generator& rng)>;

struct GeneratorOptions {
  std::vector<Shape> input_shapes{};   // per sample, required: e.g. {Shape{28, 28, 1}}
  std::vector<Shape> target_shapes{};  // e.g. {Shape{}} for class indices; empty for predict
  std::optional<int64_t> size{};       // samples (or batches, for batch generators) per epoch, if known
  // false (the default): the callback is called with indices 0, 1, 2, ... in order, on one
  // thread at a time, each epoch starting again at 0 (a file read front to back); a resume
  // calls it for the skipped indices too. true: any index in any order (a resume skips
  // without calling it); needs `size`.
  bool random_access = false;
};
// Callbacks (generators and maps) run on the prefetch thread when there is one; copies of a
// pipeline share them, so two copies running at once call them concurrently. Lamina's ops are
// safe there (kernel caches are per thread); a callback's own state is the caller's to guard.

// Only needed when a map changes the shapes of a sample (a crop to a new size, a one-hot
// target): its output is checked against these, or against its input's shapes when unset.
struct MapOptions {
  std::optional<std::vector<Shape>> input_shapes{}, target_shapes{};
  std::string name{};  // in error messages; default "map #k" (k counts the pipeline's stages)
};

class Pipeline final : public BatchSource {
 public:
  // --- sources ---------------------------------------------------------------------------------
  // The samples of `dataset`, in order (shares its storage; nothing is copied up front).
  static Pipeline from_dataset(const Dataset& dataset);
  // Samples from a callback, made on demand: data that does not fit in memory.
  //   auto p = Pipeline::from_generator([&](int64_t i, Generator&) -> std::optional<Sample> {
  //     if (i == n) return std::nullopt; return Sample{{read_image(i)}, {Tensor::scalar(label(i))}}; },
  //     {.input_shapes = {Shape{28, 28, 1}}, .target_shapes = {Shape{}}, .size = n}).batch(32);
  static Pipeline from_generator(SampleGenerator fn, GeneratorOptions options);
  // Whole batches from a callback (a reader that decodes a block at a time). Sample stages
  // (map, shuffle, batch) do not apply; take and prefetch do.
  static Pipeline from_batch_generator(BatchGenerator fn, GeneratorOptions options);
  // A view of a caller's buffer: x (N, ...) row-major floats, and optionally targets y (N, ...)
  // or (N). Nothing is copied: batches of consecutive samples (no shuffle, no map) are views of
  // this memory, so it must outlive the pipeline and every batch it yields, and must not change
  // while they are in use. (Dataset owns its storage, so the view lives here, not in Dataset.)
  //   Pipeline mine = Pipeline::from_blob(pixels, {n, 28, 28, 1}).batch(256);
  //   Tensor probs = model.predict_all(mine)[0];
  static Pipeline from_blob(const float* x, Shape x_shape, const float* y = nullptr, Shape y_shape = {});

  // --- stages (each returns a new pipeline; this one is unchanged) --------------------------------
  Pipeline map(MapFn fn, MapOptions options = {}) const;
  // tf.data's buffer shuffle: keeps `buffer_size` samples, emits one drawn at random and refills
  // from upstream. buffer_size >= the size is a full uniform shuffle; 1 keeps the order. Each
  // epoch shuffles differently (tf.data's reshuffle_each_iteration), fixed by the seed (default:
  // derived from seed()). Buffers samples, not indices, only for sequential generators.
  Pipeline shuffle(int64_t buffer_size, std::optional<uint64_t> seed = {}) const;
  // Groups samples into batches (B, ...); the last one is smaller unless drop_remainder.
  Pipeline batch(int64_t batch_size, bool drop_remainder = false) const;
  // The first `count` samples (before batch) or batches (after it) of each epoch.
  Pipeline take(int64_t count) const;
  // Produces up to `buffer_size` batches ahead on a background thread while the model computes.
  // An exception there is rethrown by next(); destruction and start_epoch stop the thread.
  Pipeline prefetch(int64_t buffer_size = 2) const;
  // The seed every stage's generators derive from (default 0).
  Pipeline seed(uint64_t seed) const;

  // --- BatchSource -----------------------------------------------------------------------------
  std::vector<Shape> input_shapes() const override;   // per sample, after the maps
  std::vector<Shape> target_shapes() const override;
  // Known when the source's size is: ceil(samples / B) (floor with drop_remainder), after takes.
  std::optional<int64_t> steps_per_epoch() const override;
  void start_epoch(int epoch, int64_t skip = 0) override;
  // The next batch (after start_epoch; without one, epoch 0 starts). ValueError when the
  // pipeline has no batch stage. Rethrows what a callback threw, from any thread.
  bool next(Batch& batch) override;

  // Samples per epoch, when known (before batching; after takes).
  std::optional<int64_t> size() const;

  // Copies share the recipe, not the position: a copy starts at no epoch.
  Pipeline(const Pipeline& other);
  Pipeline& operator=(const Pipeline& other);
  Pipeline(Pipeline&& other) noexcept;
  Pipeline& operator=(Pipeline&& other) noexcept;
  ~Pipeline() override;  // stops and joins a prefetch thread (never waits for the consumer)

  struct Spec;      // the recipe (pipeline.cpp)
  class Epoch;      // one epoch's producer
  class Prefetcher; // its background thread

 private:
  explicit Pipeline(std::shared_ptr<const Spec> spec);
  Pipeline with(const std::function<void(Spec&)>& change) const;
  void stop();

  std::shared_ptr<const Spec> spec_;
  std::unique_ptr<Epoch> epoch_;            // without prefetch
  std::unique_ptr<Prefetcher> prefetcher_;  // with it
};

// Image augmentation for channels-last samples (H, W, C), as Keras' preprocessing layers and
// torchvision's transforms do it; each returns a new (H, W, C) tensor and draws a fixed number
// of values from `rng`, so a seeded pipeline augments the same way every run. Pixels moved in
// from outside the image are 0. Use inside Pipeline::map.
namespace augment {

Tensor flip_left_right(const Tensor& image);
// Flips with probability 0.5 (Keras RandomFlip("horizontal")).
Tensor random_flip_left_right(const Tensor& image, Generator& rng);
// Moves the content down by dy rows and right by dx columns (negative: up, left).
Tensor translate(const Tensor& image, int64_t dy, int64_t dx);
// A whole-pixel shift by up to height_factor * H rows and width_factor * W columns either way
// (Keras RandomTranslation, rounded to pixels).
Tensor random_translation(const Tensor& image, Generator& rng, float height_factor, float width_factor);
// Pads `padding` zeros on every side and crops an H x W window at a random place
// (torchvision RandomCrop(size, padding)): a shift of up to `padding` pixels either way.
Tensor random_crop(const Tensor& image, Generator& rng, int64_t padding);
// Rotation about the centre by `degrees` counterclockwise, bilinear (torchvision's rotate).
Tensor rotate(const Tensor& image, float degrees);
// By an angle uniform in [-max_degrees, max_degrees] (torchvision RandomRotation(degrees)).
Tensor random_rotation(const Tensor& image, Generator& rng, float max_degrees);

}  // namespace augment

}  // namespace lamina::data
