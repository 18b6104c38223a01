// Guards around training: targets checked before any step, the memory estimate and limit, the
// diagnosis that names the layer behind a non-finite loss, and model files with non-finite
// weights. The CLI side of the same checks is tests/corpus (cases.tsv).
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <functional>
#include <sstream>

#include "test_util.hpp"

namespace lamina {
namespace {

namespace fs = std::filesystem;

using testing::error_of;

// Sets a memory limit for one scope and restores "none" after it.
struct LimitScope {
  explicit LimitScope(int64_t bytes) { set_memory_limit(bytes, "the test's limit"); }
  ~LimitScope() { set_memory_limit(0); }
};

// 4 features, labels 0..2 by row; the MLP the CLI corpus uses (4 -> 16 relu -> 3 softmax).
std::pair<Tensor, Tensor> rows(int64_t n) {
  Generator gen(3);
  Tensor x = Tensor::rand({n, 4}, gen), y = Tensor::empty({n});
  for (int64_t i = 0; i < n; ++i) y.data()[i] = static_cast<float>(i % 3);
  return {x, y};
}

Sequential mlp() {
  return Sequential({layers::Dense({.units = 16, .activation = "relu", .input_shape = Shape{4}, .name = "hidden"}),
                     layers::Dense({.units = 3, .activation = "softmax", .name = "out"})});
}

std::vector<float> weights_of(const Sequential& m) {
  std::vector<float> out;
  for (const auto& [name, t] : m.named_weights()) out.insert(out.end(), t.data(), t.data() + t.numel());
  return out;
}

// --- targets -----------------------------------------------------------------------------------

TEST(CheckTargets, SparseLabelOutOfRangeFailsBeforeAnyStep) {
  manual_seed(1);
  auto [x, y] = rows(30);
  y.data()[17] = 5.f;
  Sequential model = mlp();
  model.compile("adam", "sparse_categorical_crossentropy");
  model.build(Shape{4});
  const std::vector<float> before = weights_of(model);
  const std::string msg = error_of<ValueError>([&] { model.fit(x, y, {.epochs = 1, .verbose = 0}); });
  EXPECT_CONTAINS(msg, "fit: sample 17: label 5 is not a class index");
  EXPECT_CONTAINS(msg, "'out' has 3 classes");
  EXPECT_CONTAINS(msg, "[0, 3)");
  EXPECT_EQ(weights_of(model), before);  // nothing trained

  y.data()[17] = 1.5f;  // not an integer
  EXPECT_CONTAINS(error_of<ValueError>([&] { model.fit(x, y, {.verbose = 0}); }), "label 1.5");
  y.data()[17] = -1.f;
  EXPECT_CONTAINS(error_of<ValueError>([&] { model.evaluate(x, y, {.verbose = 0}); }), "evaluate: sample 17: label -1");
  y.data()[17] = NAN;
  EXPECT_CONTAINS(error_of<ValueError>([&] { model.fit(x, y, {.verbose = 0}); }), "target nan is not a finite number");
}

TEST(CheckTargets, PositionsComeFromTheCaller) {
  manual_seed(1);
  auto [x, y] = rows(6);
  y.data()[4] = 3.f;
  Sequential model = mlp();
  model.compile("adam", "sparse_categorical_crossentropy");
  model.build(Shape{4});
  const auto ds = data::Dataset::from_tensors(x, y);
  const std::string msg = error_of<ValueError>([&] {
    model.check_targets(ds, "t.csv", [](int64_t i) { return "line " + std::to_string(i + 1) + ", column 5"; });
  });
  EXPECT_CONTAINS(msg, "t.csv: line 5, column 5: label 3 is not a class index");
}

TEST(CheckTargets, ShapeThatCannotFitTheLoss) {
  manual_seed(1);
  auto [x, y] = rows(6);
  Sequential model = mlp();
  model.compile("sgd", "mse");  // 3 outputs, one scalar target per sample
  const std::string msg = error_of<ShapeError>([&] { model.fit(x, y, {.verbose = 0}); });
  EXPECT_CONTAINS(msg, "targets have shape () per sample");
  EXPECT_CONTAINS(msg, "output (3) of layer 'out' expects targets of shape (3)");
  EXPECT_CONTAINS(msg, "sparse_categorical_crossentropy");

  Sequential binary({layers::Dense({.units = 1, .activation = "sigmoid", .input_shape = Shape{4}, .name = "p"})});
  binary.compile("sgd", "binary_crossentropy");
  EXPECT_CONTAINS(error_of<ValueError>([&] { binary.fit(x, y, {.verbose = 0}); }), "target 2 is outside [0, 1]");
}

// --- memory ------------------------------------------------------------------------------------

TEST(Memory, EstimateBreakdown) {
  Sequential model = mlp();
  model.compile("adam", "sparse_categorical_crossentropy");
  const MemoryEstimate e = model.estimate_memory(10);
  const int64_t weights = 4 * 16 + 16 + 16 * 3 + 3;  // 131
  const int64_t packed = 64 + 16 + 48 + 16;          // each weight padded to 16 floats
  EXPECT_EQ(e.parameters, weights * 4 * 2);           // with build's first copies
  EXPECT_EQ(e.gradients, packed * 4);
  EXPECT_EQ(e.optimizer, 2 * packed * 4);             // Adam: m and v
  EXPECT_EQ(e.activations, 10 * (4 + 4 * (16 + 3)) * 4);
  EXPECT_EQ(e.total(), e.parameters + e.gradients + e.optimizer + e.activations);
  EXPECT_EQ(e.largest_weight, "'hidden/kernel' (4, 16)");
  EXPECT_EQ(e.largest_output, "layer 'hidden' output (16)");
  EXPECT_FALSE(model.built());  // estimating allocates nothing

  const MemoryEstimate inference = model.estimate_memory(10, /*training=*/false);
  EXPECT_EQ(inference.gradients, 0);
  EXPECT_EQ(inference.optimizer, 0);
  EXPECT_EQ(inference.activations, 10 * (4 + 16 + 3) * 4);
  EXPECT_CONTAINS(inference.str(), "activations 920 B for batch 10 (largest: batch 10 x layer 'hidden' output (16))");
  EXPECT_EQ(format_bytes(1536), "1.5 KB");
  EXPECT_EQ(format_bytes(int64_t{3} << 30), "3.0 GB");
}

TEST(Memory, WeightSpecsMatchWhatBuildMakes) {
  manual_seed(2);
  Sequential model({layers::Conv2D({.filters = 4, .kernel_size = 3, .input_shape = Shape{8, 8, 2}, .name = "c"}),
                    layers::BatchNormalization({.name = "bn"}), layers::Flatten(), layers::Dense(5)});
  Shape shape{8, 8, 2};
  std::vector<std::pair<Shape, bool>> specs;
  for (const auto& l : model.layers()) {
    for (const auto& w : l->weight_specs(shape)) specs.emplace_back(w.shape, w.trainable);
    shape = l->output_shape(shape);
  }
  model.build(Shape{8, 8, 2});
  std::vector<std::pair<Shape, bool>> built;
  for (const auto& l : model.layers())
    for (const auto& w : l->weights()) built.emplace_back(w.value.shape(), w.trainable);
  EXPECT_EQ(specs, built);
}

TEST(Memory, HugeDenseFailsAtBuildBeforeAllocating) {
  LimitScope limit(int64_t{64} << 20);  // 64 MB
  Sequential model({layers::Dense({.units = 100'000'000, .input_shape = Shape{1000}, .name = "huge"})});
  const std::string msg = error_of<ValueError>([&] { model.build(Shape{1000}); });
  EXPECT_CONTAINS(msg, "build: model 'sequential' needs an estimated");
  EXPECT_CONTAINS(msg, "'huge/kernel' (1000, 100000000)");
  EXPECT_CONTAINS(msg, "more than 64.0 MB (the test's limit)");
  EXPECT_FALSE(model.built());
}

TEST(Memory, HugeBatchFailsAtFitNamingTheLayer) {
  manual_seed(3);
  auto [x, y] = rows(3000);
  Sequential model({layers::Dense({.units = 4096, .activation = "relu", .input_shape = Shape{4}, .name = "wide"}),
                    layers::Dense({.units = 3, .activation = "softmax", .name = "out"})});
  model.compile("sgd", "sparse_categorical_crossentropy");
  LimitScope limit(int64_t{64} << 20);
  const std::string msg = error_of<ValueError>([&] { model.fit(x, y, {.batch_size = 3000, .verbose = 0}); });
  EXPECT_CONTAINS(msg, "fit: model 'sequential' needs an estimated");
  EXPECT_CONTAINS(msg, "activations");
  EXPECT_CONTAINS(msg, "largest: batch 3000 x layer 'wide' output (4096)");
  EXPECT_CONTAINS(msg, "lower the batch size");
  // A batch that fits trains.
  EXPECT_NO_THROW(model.fit(x, y, {.batch_size = 100, .verbose = 0}));
}

// --- divergence ----------------------------------------------------------------------------------

TEST(Divergence, TerminateOnNaNNamesTheOverflowingLayer) {
  manual_seed(4);
  auto [x, y] = rows(32);
  Sequential model({layers::Dense({.units = 8, .activation = "relu", .input_shape = Shape{4}, .name = "hidden"}),
                    layers::Dense({.units = 8, .activation = "exponential",
                                   .kernel_initializer = Initializer::constant(100.f), .name = "boom"}),
                    layers::Dense({.units = 3, .activation = "softmax", .name = "out"})});
  model.compile("sgd", "sparse_categorical_crossentropy");
  model.build(Shape{4});
  // hidden's output must be large enough for exp(100 * sum) to overflow.
  for (auto& w : model.layer("hidden").weights()) w.value.fill_(1.f);
  std::ostringstream report;
  TerminateOnNaN nan_guard(&report);
  model.fit(x, y, {.epochs = 3, .batch_size = 8, .callbacks = {&nan_guard}, .verbose = 0});
  ASSERT_TRUE(nan_guard.stopped());
  EXPECT_CONTAINS(nan_guard.message(), "epoch 1, step 1: the loss is nan");
  EXPECT_CONTAINS(nan_guard.message(), "layer 'boom' (Dense) output");
  EXPECT_CONTAINS(model.divergence(), "layer 'boom' (Dense) output: 64 of 64 values are not finite (first: inf");
}

TEST(Divergence, DiagnosisNamesNonFiniteWeightsAndGradients) {
  manual_seed(5);
  auto [x, y] = rows(8);
  Sequential model = mlp();
  model.compile("sgd", "sparse_categorical_crossentropy");
  model.build(Shape{4});
  EXPECT_EQ(model.diagnose_non_finite(x, y), "");  // all finite

  Tensor kernel = model.layer("out").weights()[0].value;
  const float saved = kernel.data()[5];
  kernel.data()[5] = INFINITY;
  EXPECT_CONTAINS(model.diagnose_non_finite(x, y),
                  "layer 'out' (Dense) weight 'kernel': 1 of 48 values are not finite (first: inf at (1, 2))");
  kernel.data()[5] = saved;

  // Every output and the loss finite, the kernel's gradient not: x = 1e30 into a kernel of 1e-12
  // gives predictions of 1e18 and a loss of 1e36, but dkernel = 2 * 1e30 * 1e18 overflows.
  Sequential regression({layers::Dense({.units = 1, .input_shape = Shape{4}, .name = "lin"})});
  regression.compile("sgd", "mse");
  regression.build(Shape{4});
  regression.layer("lin").weights()[0].value.fill_(0.f).data()[0] = 1e-12f;
  Tensor huge = Tensor::zeros({8, 4});
  for (int64_t i = 0; i < 8; ++i) huge.at({i, 0}) = 1e30f;
  EXPECT_EQ(regression.diagnose_non_finite(huge, Tensor::zeros({8})),
            "layer 'lin' (Dense) gradient of weight 'kernel': 1 of 4 values are not finite (first: inf at (0, 0))");
}

// --- model files ---------------------------------------------------------------------------------

TEST(ModelFile, NonFiniteWeightIsRefused) {
  manual_seed(6);
  Sequential model = mlp();
  model.build(Shape{4});
  model.layer("out").weights()[0].value.data()[7] = NAN;
  const fs::path path = fs::temp_directory_path() / ("lamina_nan_" + std::to_string(::getpid()) + ".safetensors");
  model.save(path);
  const std::string msg = error_of<IoError>([&] { Sequential::load(path); });
  EXPECT_CONTAINS(msg, path.string() + ": tensor 'out/kernel' holds a non-finite value (nan) at element 7 of (16, 3)");
  fs::remove(path);
}

}  // namespace
}  // namespace lamina
