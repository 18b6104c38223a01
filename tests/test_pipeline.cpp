// Pipelines (pipeline.hpp): same seed, same batches; resume at (epoch, skip) equals the
// uninterrupted stream; prefetch gives the same bytes as inline and shuts down cleanly;
// the buffer shuffle is a seeded permutation; generators, blobs and their errors; image
// augmentations checked by hand on tiny images; fit through a pipeline, resumed mid-epoch.
#include <gtest/gtest.h>

#include <unistd.h>

#include <atomic>
#include <filesystem>
#include <numeric>
#include <set>

#include "test_util.hpp"

namespace lamina {
namespace {

using data::Batch;
using data::Pipeline;
using data::Sample;
using testing::error_of;

// n samples of 3 features, x = (i, 10 i, 100 i), y = i: a sample's index is visible in it.
data::Dataset counting(int64_t n) {
  Tensor x = Tensor::empty({n, 3}), y = Tensor::empty({n});
  for (int64_t i = 0; i < n; ++i) {
    for (int64_t k = 0; k < 3; ++k) x.at({i, k}) = static_cast<float>(i) * std::pow(10.f, static_cast<float>(k));
    y.data()[i] = static_cast<float>(i);
  }
  return data::Dataset::from_tensors(x, y);
}

// Adds seeded noise to the features: the map's randomness shows in the batches.
Sample noisy(Sample s, Generator& rng) {
  for (float& v : s.x[0].values()) v += rng.uniform();
  return s;
}

// Every batch of one epoch, all parts flattened, from start_epoch(epoch, skip) on.
using Stream = std::vector<std::vector<float>>;
Stream epoch_of(data::BatchSource& p, int epoch, int64_t skip = 0) {
  Stream out;
  p.start_epoch(epoch, skip);
  Batch b;
  while (p.next(b)) {
    std::vector<float> flat;
    for (const auto* parts : {&b.x, &b.y})
      for (const Tensor& t : *parts) flat.insert(flat.end(), t.values().begin(), t.values().end());
    flat.push_back(static_cast<float>(b.size()));
    out.push_back(std::move(flat));
  }
  return out;
}

// The labels (= source indices) of one epoch, in order.
std::vector<int64_t> ids_of(data::BatchSource& p, int epoch) {
  std::vector<int64_t> ids;
  p.start_epoch(epoch);
  Batch b;
  while (p.next(b))
    for (float v : b.y[0].values()) ids.push_back(static_cast<int64_t>(v));
  return ids;
}

Pipeline augmented(uint64_t shuffle_seed, uint64_t seed = 0) {
  return Pipeline::from_dataset(counting(50)).map(noisy).shuffle(16, shuffle_seed).batch(8).seed(seed);
}

TEST(Pipeline, SameSeedGivesIdenticalBatchesAndOtherSeedsDiffer) {
  Pipeline a = augmented(1), b = augmented(1);
  const Stream first = epoch_of(a, 0);
  ASSERT_EQ(first.size(), 7u);  // 50 samples in batches of 8: 6 full and one of 2
  EXPECT_EQ(first.back().back(), 2.f);
  EXPECT_EQ(first, epoch_of(b, 0));
  EXPECT_EQ(first, epoch_of(a, 0)) << "running an epoch again must repeat it";
  EXPECT_NE(first, epoch_of(a, 1)) << "each epoch reshuffles and re-augments";
  Pipeline other_shuffle = augmented(2), other_seed = augmented(1, 7);
  EXPECT_NE(first, epoch_of(other_shuffle, 0));
  EXPECT_NE(first, epoch_of(other_seed, 0));
  // The shuffle alone is fixed by its own seed: the order does not change with seed().
  Pipeline order_a = Pipeline::from_dataset(counting(50)).shuffle(16, 1).batch(8);
  Pipeline order_b = order_a.seed(99);
  EXPECT_EQ(ids_of(order_a, 0), ids_of(order_b, 0));
}

TEST(Pipeline, ResumeAtEpochAndSkipEqualsTheUninterruptedStream) {
  int calls = 0;
  const data::Dataset d = counting(37);
  auto generator = [&calls, d](int64_t i, Generator& rng) -> std::optional<Sample> {
    ++calls;
    if (i == d.size()) return std::nullopt;
    Sample s{{d.x({i}).reshape({3})}, {d.y({i}).reshape(Shape{})}};
    s.x[0].values()[0] += rng.uniform();  // the source's own randomness
    return s;
  };
  const std::vector<std::pair<std::string, Pipeline>> cases = {
      {"dataset", Pipeline::from_dataset(d).map(noisy).shuffle(10, 3).batch(5)},
      {"dataset+prefetch", Pipeline::from_dataset(d).shuffle(100, 3).map(noisy).batch(5).prefetch(2)},
      {"sequential generator, unknown size",
       Pipeline::from_generator(generator, {.input_shapes = {Shape{3}}, .target_shapes = {Shape{}}})
           .map(noisy).shuffle(6, 4).batch(5)},
      {"random-access generator",
       Pipeline::from_generator(generator, {.input_shapes = {Shape{3}}, .target_shapes = {Shape{}}, .size = 37,
                                            .random_access = true})
           .take(30).shuffle(30, 5).map(noisy).batch(4, true).prefetch(3)},
  };
  for (auto [name, p] : cases) {
    const Stream whole = epoch_of(p, 2);
    ASSERT_GT(whole.size(), 4u) << name;
    for (int64_t k = 0; k <= static_cast<int64_t>(whole.size()) + 1; ++k) {
      const Stream rest = epoch_of(p, 2, k);
      const Stream expected(whole.begin() + std::min<int64_t>(k, whole.size()), whole.end());
      EXPECT_EQ(rest, expected) << name << ": start_epoch(2, " << k << ")";
    }
  }
  EXPECT_GT(calls, 0);
}

TEST(Pipeline, PrefetchGivesByteIdenticalBatches) {
  Pipeline plain = Pipeline::from_dataset(counting(101)).map(noisy).shuffle(32, 9).batch(10);
  Pipeline ahead = plain.prefetch(2);
  for (int e = 0; e < 3; ++e) {
    const Stream a = epoch_of(plain, e), b = epoch_of(ahead, e);
    ASSERT_EQ(a.size(), b.size());
    for (size_t i = 0; i < a.size(); ++i)
      EXPECT_EQ(0, std::memcmp(a[i].data(), b[i].data(), a[i].size() * sizeof(float))) << "epoch " << e << " batch " << i;
  }
}

TEST(Pipeline, BufferShuffleIsASeededPermutation) {
  const int64_t n = 40;
  std::vector<int64_t> identity(n);
  std::iota(identity.begin(), identity.end(), 0);
  for (int64_t buffer : {1, 2, 7, 40, 1000}) {
    Pipeline p = Pipeline::from_dataset(counting(n)).shuffle(buffer, 11).batch(6);
    const std::vector<int64_t> ids = ids_of(p, 0);
    std::vector<int64_t> sorted = ids;
    std::sort(sorted.begin(), sorted.end());
    EXPECT_EQ(sorted, identity) << "buffer " << buffer << ": not a permutation";
    // A buffer of b holds samples [p, p + b) at position p: nothing comes out earlier than that.
    for (int64_t pos = 0; pos < n; ++pos) EXPECT_LT(ids[pos], pos + buffer) << "buffer " << buffer << " position " << pos;
    if (buffer == 1) {
      EXPECT_EQ(ids, identity);
    }
    if (buffer >= n) {
      EXPECT_NE(ids, identity);
      EXPECT_EQ(ids, ids_of(p, 0));
      EXPECT_NE(ids, ids_of(p, 1));
      Pipeline q = Pipeline::from_dataset(counting(n)).shuffle(buffer, 12).batch(6);
      EXPECT_NE(ids, ids_of(q, 0));
    }
  }
}

TEST(Pipeline, BatchTakeAndStepsPerEpoch) {
  const data::Dataset d = counting(23);
  EXPECT_EQ(Pipeline::from_dataset(d).batch(5).steps_per_epoch(), 5);
  EXPECT_EQ(Pipeline::from_dataset(d).batch(5, true).steps_per_epoch(), 4);
  EXPECT_EQ(Pipeline::from_dataset(d).take(12).batch(5).steps_per_epoch(), 3);
  EXPECT_EQ(Pipeline::from_dataset(d).batch(5).take(2).steps_per_epoch(), 2);
  Pipeline dropped = Pipeline::from_dataset(d).batch(5, true);
  EXPECT_EQ(epoch_of(dropped, 0).size(), 4u);
  Pipeline taken = Pipeline::from_dataset(d).take(12).batch(5);
  EXPECT_EQ(ids_of(taken, 0), std::vector<int64_t>({0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11}));
  Pipeline batches = Pipeline::from_dataset(d).batch(5).take(2);
  EXPECT_EQ(epoch_of(batches, 0).size(), 2u);
  // Batch shapes: (B, 3) and (B).
  Pipeline p = Pipeline::from_dataset(d).batch(5);
  Batch b;
  ASSERT_TRUE(p.next(b));  // without start_epoch: epoch 0
  EXPECT_EQ(b.x[0].shape(), Shape({5, 3}));
  EXPECT_EQ(b.y[0].shape(), Shape({5}));
  EXPECT_EQ(p.input_shapes(), std::vector<Shape>{Shape{3}});
  EXPECT_EQ(p.target_shapes(), std::vector<Shape>{Shape{}});
}

TEST(Pipeline, SequentialGeneratorIsCalledInOrderOncePerSample) {
  std::vector<int64_t> calls;
  auto gen = [&calls](int64_t i, Generator&) -> std::optional<Sample> {
    calls.push_back(i);
    if (i >= 20) return std::nullopt;
    return Sample{{Tensor::full({2}, static_cast<float>(i))}, {Tensor::scalar(static_cast<float>(i))}};
  };
  Pipeline p = Pipeline::from_generator(gen, {.input_shapes = {Shape{2}}, .target_shapes = {Shape{}}}).shuffle(4, 1).batch(3);
  EXPECT_EQ(p.steps_per_epoch(), std::nullopt);
  const std::vector<int64_t> ids = ids_of(p, 0);
  EXPECT_EQ(ids.size(), 20u);
  std::vector<int64_t> expected(21);
  std::iota(expected.begin(), expected.end(), 0);
  EXPECT_EQ(calls, expected) << "a sequential generator is called 0, 1, 2, ... once each, then once past the end";
  calls.clear();
  ids_of(p, 1);
  EXPECT_EQ(calls, expected) << "and from 0 again each epoch";
}

TEST(Pipeline, ErrorsNameTheStageTheSampleAndTheShapes) {
  const data::Dataset d = counting(10);
  Pipeline wrong = Pipeline::from_dataset(d).map([](Sample s, Generator&) {
    s.x[0] = s.x[0].reshape({3, 1});
    return s;
  }).batch(4);
  const std::string msg = error_of<ShapeError>([&] { epoch_of(wrong, 0); });
  EXPECT_CONTAINS(msg, "map #1");
  EXPECT_CONTAINS(msg, "sample 0");
  EXPECT_CONTAINS(msg, "[(3, 1)]");
  EXPECT_CONTAINS(msg, "expected inputs [(3)]");
  // A map that declares its new shapes is fine.
  Pipeline declared = Pipeline::from_dataset(d).map([](Sample s, Generator&) {
    s.x[0] = s.x[0].reshape({3, 1});
    return s;
  }, {.input_shapes = std::vector<Shape>{Shape{3, 1}}}).batch(4);
  EXPECT_EQ(epoch_of(declared, 0).size(), 3u);
  EXPECT_EQ(declared.input_shapes(), std::vector<Shape>{Shape({3, 1})});

  EXPECT_CONTAINS(error_of<ValueError>([&] { Pipeline::from_dataset(d).steps_per_epoch(); }), "add .batch(32)");
  EXPECT_CONTAINS(error_of<ValueError>([&] { Pipeline::from_dataset(d).batch(2).map(noisy); }), "put it before batch()");
  EXPECT_CONTAINS(error_of<ValueError>([&] { Pipeline::from_dataset(d).shuffle(0); }), "buffer_size is 0");
  auto short_gen = [](int64_t i, Generator&) -> std::optional<Sample> {
    if (i == 3) return std::nullopt;
    return Sample{{Tensor::zeros({2})}, {}};
  };
  Pipeline lying = Pipeline::from_generator(short_gen, {.input_shapes = {Shape{2}}, .size = 5}).batch(2);
  EXPECT_CONTAINS(error_of<ValueError>([&] { epoch_of(lying, 0); }), "ended at sample 3");
  Pipeline bad_shape = Pipeline::from_generator(short_gen, {.input_shapes = {Shape{4}}}).batch(2);
  EXPECT_CONTAINS(error_of<ShapeError>([&] { epoch_of(bad_shape, 0); }), "from_generator: sample 0 of epoch 0 has inputs [(2)]");
}

TEST(Pipeline, AnExceptionInThePrefetchThreadIsRethrownByNext) {
  Pipeline p = Pipeline::from_dataset(counting(40)).map([](Sample s, Generator&) {
    if (s.y[0].item() == 13.f) throw ValueError("cannot decode sample 13");
    return s;
  }).batch(4).prefetch(2);
  p.start_epoch(0);
  Batch b;
  int got = 0;
  try {
    while (p.next(b)) ++got;
    ADD_FAILURE() << "no exception";
  } catch (const ValueError& e) {
    EXPECT_STREQ(e.what(), "cannot decode sample 13");
  }
  EXPECT_EQ(got, 3) << "the three batches before the failing one arrive first";
  EXPECT_FALSE(p.next(b)) << "after the error the epoch is over";
}

TEST(Pipeline, StoppingEarlyNeverHangs) {
  std::atomic<int64_t> made{0};
  auto endless = [&made](int64_t i, Generator&) -> std::optional<Sample> {
    ++made;
    return Sample{{Tensor::full({4}, static_cast<float>(i))}, {}};
  };
  const Pipeline p = Pipeline::from_generator(endless, {.input_shapes = {Shape{4}}}).batch(8).prefetch(2);
  {
    Pipeline q = p;
    Batch b;
    ASSERT_TRUE(q.next(b));
    EXPECT_EQ(b.x[0].at({7, 0}), 7.f);
  }  // destroyed while the thread waits for room
  {
    Pipeline q = p;
    q.start_epoch(0);
  }  // destroyed before any next()
  Pipeline q = p;
  q.start_epoch(0, 3);
  q.start_epoch(1);  // a new epoch while the old thread runs
  Batch b;
  ASSERT_TRUE(q.next(b));
  EXPECT_EQ(b.x[0].at({0, 0}), 0.f);
  q = p;  // assignment stops the running thread too
  EXPECT_GT(made.load(), 0);
}

TEST(Pipeline, FromBlobReadsTheCallersMemoryInPlace) {
  std::vector<float> pixels(6 * 2 * 2), labels(6);
  std::iota(pixels.begin(), pixels.end(), 0.f);
  std::iota(labels.begin(), labels.end(), 0.f);
  Pipeline p = Pipeline::from_blob(pixels.data(), {6, 2, 2}, labels.data(), {6}).batch(4);
  EXPECT_EQ(p.input_shapes(), std::vector<Shape>{Shape({2, 2})});
  p.start_epoch(0);
  Batch b;
  ASSERT_TRUE(p.next(b));
  EXPECT_EQ(b.x[0].data(), pixels.data()) << "the first batch is a view of the caller's buffer";
  EXPECT_EQ(b.y[0].data(), labels.data());
  pixels[1] = -5.f;
  EXPECT_EQ(b.x[0].at({0, 0, 1}), -5.f);
  ASSERT_TRUE(p.next(b));
  EXPECT_EQ(b.x[0].data(), pixels.data() + 16);
  EXPECT_EQ(b.x[0].shape(), Shape({2, 2, 2}));
  // Shuffled or mapped batches are copies, and the caller's memory is left alone.
  Pipeline shuffled = Pipeline::from_blob(pixels.data(), {6, 2, 2}, labels.data(), {6}).shuffle(6, 1).map(noisy).batch(6);
  const std::vector<float> before = pixels;
  const std::vector<int64_t> ids = ids_of(shuffled, 0);
  EXPECT_EQ(std::set<int64_t>(ids.begin(), ids.end()).size(), 6u);
  EXPECT_EQ(pixels, before);
  Pipeline x_only = Pipeline::from_blob(pixels.data(), {6, 4}).batch(6);
  EXPECT_TRUE(x_only.target_shapes().empty());
  EXPECT_CONTAINS(error_of<ShapeError>([&] { Pipeline::from_blob(pixels.data(), {6, 4}, labels.data(), {5}); }), "(5)");
}

TEST(Pipeline, BatchGeneratorsAreCheckedTakenAndPrefetched) {
  auto blocks = [](int64_t i, Generator& rng) -> std::optional<Batch> {
    if (i == 5) return std::nullopt;
    Batch b;
    b.x = {Tensor::rand({3, 2}, rng)};
    b.y = {Tensor::full({3}, static_cast<float>(i))};
    return b;
  };
  const data::GeneratorOptions o{.input_shapes = {Shape{2}}, .target_shapes = {Shape{}}};
  Pipeline p = Pipeline::from_batch_generator(blocks, o);
  const Stream all = epoch_of(p, 0);
  EXPECT_EQ(all.size(), 5u);
  Pipeline ahead = p.prefetch(2);
  EXPECT_EQ(all, epoch_of(ahead, 0));
  EXPECT_EQ(Stream(all.begin() + 2, all.end()), epoch_of(ahead, 0, 2));
  Pipeline taken = p.take(2);
  EXPECT_EQ(epoch_of(taken, 0).size(), 2u);
  EXPECT_CONTAINS(error_of<ValueError>([&] { p.map(noisy); }), "yields whole batches");
  Pipeline wrong = Pipeline::from_batch_generator(blocks, {.input_shapes = {Shape{3}}, .target_shapes = {Shape{}}});
  EXPECT_CONTAINS(error_of<ShapeError>([&] { epoch_of(wrong, 0); }), "batch 0 of epoch 0 has inputs [(3, 2)]");
}

TEST(Pipeline, MultiInputDatasetsKeepTheirParts) {
  Generator gen(1);
  Tensor a = Tensor::rand({9, 2}, gen), c = Tensor::rand({9, 3, 1}, gen);
  const data::Dataset d = data::Dataset::from_tensors({a, c}, {Tensor::zeros({9})});
  Pipeline plain = Pipeline::from_dataset(d).batch(4), mapped = Pipeline::from_dataset(d).map(
      [](Sample s, Generator&) { return s; }).batch(4);
  EXPECT_EQ(plain.input_shapes(), (std::vector<Shape>{Shape{2}, Shape({3, 1})}));
  EXPECT_EQ(epoch_of(plain, 0), epoch_of(mapped, 0)) << "the per-sample path and the gather fast path agree";
}

// --- training through a pipeline (Model::fit(data::BatchSource&)) ------------------------------

// Three Gaussian blobs in 4-D, 3 classes (as test_checkpoint.cpp).
data::Dataset blobs(int64_t n, uint64_t seed) {
  Generator gen(seed);
  Tensor x = Tensor::randn({n, 4}, gen, 0.f, 0.5f), y = Tensor::empty({n});
  for (int64_t i = 0; i < n; ++i) {
    y.data()[i] = static_cast<float>(i % 3);
    x.at({i, i % 3}) += 2.f;
  }
  return data::Dataset::from_tensors(x, y);
}

Sequential blob_mlp() {
  Sequential m({layers::Dense({.units = 16, .activation = "relu", .input_shape = Shape{4}}), layers::Dense(3)});
  m.compile(Adam({.learning_rate = 0.01f}), losses::SparseCategoricalCrossentropy({.from_logits = true}), {"accuracy"});
  return m;
}

// The weights, the optimizer's step count and slots: what must match after a resume.
std::vector<float> trained_state(Sequential& m) {
  std::vector<float> all;
  for (const auto& [name, w] : m.named_weights()) all.insert(all.end(), w.data(), w.data() + w.numel());
  all.push_back(static_cast<float>(m.optimizer().iterations()));
  for (const auto& slots : m.optimizer().state())
    for (const Tensor& s : slots) all.insert(all.end(), s.data(), s.data() + s.numel());
  return all;
}

TEST(PipelineFit, TrainsThroughMapShuffleBatchPrefetchAndResumesMidEpochExactly) {
  const data::Dataset d = blobs(96, 1);
  auto jitter = [](Sample s, Generator& rng) {
    for (float& v : s.x[0].values()) v += 0.1f * rng.normal();
    return s;
  };
  const Pipeline train = Pipeline::from_dataset(d).map(jitter).shuffle(32, 5).batch(16).prefetch(2);  // 6 steps
  const FitOptions o{.epochs = 3, .verbose = 0};
  manual_seed(3);
  Sequential whole = blob_mlp();
  Pipeline p = train;
  const History h = whole.fit(p, o);
  ASSERT_EQ(h.history.at("loss").size(), 3u);
  EXPECT_LT(h.history.at("loss").back(), h.history.at("loss").front());
  EXPECT_GT(whole.evaluate(d, {.verbose = 0}).at("accuracy"), 0.9);
  Pipeline plain = Pipeline::from_dataset(d).batch(32);
  EXPECT_NEAR(whole.evaluate(plain, {.verbose = 0}).at("loss"), whole.evaluate(d, {.verbose = 0}).at("loss"), 1e-5);
  // predict on the caller's memory, without a copy, equals predict on a tensor.
  const Tensor x = d.all_x();
  Pipeline view = Pipeline::from_blob(x.data(), x.shape()).batch(32);
  EXPECT_EQ(whole.predict_all(view)[0].to_vector(), whole.predict(x).to_vector());
  const std::vector<float> expected = trained_state(whole);

  // The same training, checkpointing every 4 batches (counted across epochs: epoch 1 step 4,
  // epoch 2 steps 2 and 6, epoch 3 step 4), must not change it; each checkpoint, loaded into a
  // fresh model and trained on through a fresh copy of the pipeline, must end where it did.
  namespace fs = std::filesystem;
  const fs::path dir = fs::temp_directory_path() / ("lamina_test_pipeline_" + std::to_string(::getpid()));
  fs::create_directories(dir);
  manual_seed(3);
  Sequential saving = blob_mlp();
  ModelCheckpoint every_4({.filepath = (dir / "e{epoch}-b{batch}.safetensors").string(), .save_freq = 4});
  FitOptions with = o;
  with.callbacks = {&every_4};
  Pipeline q = train;
  saving.fit(q, with);
  EXPECT_TRUE(trained_state(saving) == expected) << "checkpointing changed the training";
  for (const char* name : {"e1-b4.safetensors", "e2-b2.safetensors", "e3-b4.safetensors"}) {
    manual_seed(777);
    Sequential resumed = Sequential::load_checkpoint((dir / name).string());
    EXPECT_GT(resumed.fit_state().step, 0) << name << " is mid-epoch";
    FitOptions rest = o;
    rest.initial_epoch = resumed.fit_state().epoch;
    Pipeline fresh = train;
    resumed.fit(fresh, rest);
    EXPECT_TRUE(trained_state(resumed) == expected) << "resumed from " << name << " differs from the uninterrupted run";
  }
  fs::remove_all(dir);
}

// --- augmentation ----------------------------------------------------------------------------

// A (H, W, C) image from rows of values.
Tensor image(std::vector<float> values, int64_t h, int64_t w, int64_t c = 1) {
  return Tensor::from(std::move(values), {h, w, c});
}

TEST(PipelineAugment, FlipOfATwoByThreeImage) {
  const Tensor img = image({1, 2, 3,
                            4, 5, 6}, 2, 3);
  EXPECT_EQ(data::augment::flip_left_right(img).to_vector(), std::vector<float>({3, 2, 1, 6, 5, 4}));
  // Two channels: pixels move whole.
  const Tensor rgb = image({1, 10, 2, 20, 3, 30}, 1, 3, 2);
  EXPECT_EQ(data::augment::flip_left_right(rgb).to_vector(), std::vector<float>({3, 30, 2, 20, 1, 10}));
  // Random: flipped or not, drawn from the generator, the same again under the same seed.
  int flipped = 0;
  for (uint64_t seed = 0; seed < 40; ++seed) {
    Generator g1(seed), g2(seed);
    const std::vector<float> a = data::augment::random_flip_left_right(img, g1).to_vector();
    EXPECT_EQ(a, data::augment::random_flip_left_right(img, g2).to_vector());
    EXPECT_TRUE(a == img.to_vector() || a == std::vector<float>({3, 2, 1, 6, 5, 4}));
    flipped += a != img.to_vector();
  }
  EXPECT_GT(flipped, 5);
  EXPECT_LT(flipped, 35);
}

TEST(PipelineAugment, ShiftsAndCropsMoveByWholePixelsWithZeroFill) {
  const Tensor img = image({1, 2, 3,
                            4, 5, 6,
                            7, 8, 9}, 3, 3);
  EXPECT_EQ(data::augment::translate(img, 0, 1).to_vector(), std::vector<float>({0, 1, 2, 0, 4, 5, 0, 7, 8}));
  EXPECT_EQ(data::augment::translate(img, -1, 0).to_vector(), std::vector<float>({4, 5, 6, 7, 8, 9, 0, 0, 0}));
  EXPECT_EQ(data::augment::translate(img, 3, 0).to_vector(), std::vector<float>(9, 0.f));
  Generator g(3);
  EXPECT_EQ(data::augment::random_crop(img, g, 0).to_vector(), img.to_vector());
  // Every padded crop and random translation is one of the shifts by at most one pixel.
  std::set<std::vector<float>> shifts;
  for (int64_t dy = -1; dy <= 1; ++dy)
    for (int64_t dx = -1; dx <= 1; ++dx) shifts.insert(data::augment::translate(img, dy, dx).to_vector());
  std::set<std::vector<float>> seen;
  for (int i = 0; i < 60; ++i) {
    const std::vector<float> crop = data::augment::random_crop(img, g, 1).to_vector();
    const std::vector<float> moved = data::augment::random_translation(img, g, 0.34f, 0.34f).to_vector();
    EXPECT_TRUE(shifts.count(crop) && shifts.count(moved));
    seen.insert(crop);
  }
  EXPECT_EQ(seen.size(), 9u) << "all nine shifts turn up";
  EXPECT_CONTAINS(error_of<ShapeError>([&] { data::augment::translate(Tensor::zeros({3, 3}), 1, 1); }), "(H, W, C)");
}

TEST(PipelineAugment, RotationByZeroIsIdentityAndByNinetyIsATransposedFlip) {
  Generator gen(5);
  for (int64_t n : {3, 4}) {
    const Tensor img = Tensor::rand({n, n, 2}, gen);
    EXPECT_EQ(data::augment::rotate(img, 0.f).to_vector(), img.to_vector()) << n << "x" << n;
    // Counterclockwise by 90: out(r, q) = in(q, n-1-r), the transpose of the left-right flip.
    const Tensor turned = data::augment::rotate(img, 90.f);
    for (int64_t r = 0; r < n; ++r)
      for (int64_t q = 0; q < n; ++q)
        for (int64_t k = 0; k < 2; ++k)
          EXPECT_NEAR(turned.at({r, q, k}), img.at({q, n - 1 - r, k}), 1e-5f) << n << "x" << n << " at " << r << "," << q;
    const Tensor back = data::augment::rotate(turned, -90.f);
    for (size_t i = 0; i < back.to_vector().size(); ++i) EXPECT_NEAR(back.to_vector()[i], img.to_vector()[i], 1e-5f);
  }
  // A small angle: the centre pixel of an odd image stays; corners pick up zeros.
  const Tensor ones = Tensor::ones({5, 5, 1});
  const Tensor tilted = data::augment::rotate(ones, 10.f);
  EXPECT_NEAR(tilted.at({2, 2, 0}), 1.f, 1e-6f);
  EXPECT_LT(tilted.at({0, 0, 0}), 1.f);
  Generator g1(8), g2(8);
  EXPECT_EQ(data::augment::random_rotation(ones, g1, 15.f).to_vector(),
            data::augment::random_rotation(ones, g2, 15.f).to_vector());
}

TEST(PipelineAugment, AugmentedPipelinesAreDeterministicUnderPrefetch) {
  Generator gen(4);
  const data::Dataset d = data::Dataset::from_tensors(Tensor::rand({30, 6, 6, 1}, gen), Tensor::zeros({30}));
  auto augment = [](Sample s, Generator& rng) {
    s.x[0] = data::augment::random_rotation(
        data::augment::random_crop(data::augment::random_flip_left_right(s.x[0], rng), rng, 2), rng, 15.f);
    return s;
  };
  Pipeline p = Pipeline::from_dataset(d).shuffle(30, 2).map(augment).batch(7);
  Pipeline ahead = p.prefetch(2);
  EXPECT_EQ(epoch_of(p, 1), epoch_of(ahead, 1));
  EXPECT_NE(epoch_of(p, 1), epoch_of(p, 2));
}

}  // namespace
}  // namespace lamina
