// Image models end to end: a LeNet-style Sequential (summary, Keras JSON), a small CNN with
// BatchNormalization and Dropout that learns, is bit-for-bit reproducible, allocates nothing in
// its steady state, and saves / loads with its moving statistics.
#include <gtest/gtest.h>

#include <filesystem>
#include <set>
#include <sstream>
#include <unistd.h>

#include "test_util.hpp"

namespace lamina {
namespace {

namespace fs = std::filesystem;

// 12x12 one-channel images of three classes: a bright horizontal bar, a vertical bar, or a
// centred square, at random places, on noise.
std::pair<Tensor, Tensor> bars(int64_t n, uint64_t seed) {
  Generator gen(seed);
  Tensor x = Tensor::rand({n, 12, 12, 1}, gen, 0.f, 0.3f), y = Tensor::empty({n});
  for (int64_t i = 0; i < n; ++i) {
    const int64_t c = i % 3, at = 2 + static_cast<int64_t>(gen.below(8));
    y.data()[i] = static_cast<float>(c);
    for (int64_t k = 0; k < 12; ++k)
      for (int64_t l = 0; l < 12; ++l) {
        const bool on = c == 0 ? k == at : c == 1 ? l == at : (k >= 4 && k < 8 && l >= 4 && l < 8);
        if (on) x.at({i, k, l, 0}) += 1.f;
      }
  }
  return {x, y};
}

Sequential small_cnn() {
  return Sequential({layers::Conv2D({.filters = 4, .kernel_size = 3, .padding = Padding::same, .activation = "relu",
                                     .input_shape = Shape{12, 12, 1}}),
                     layers::BatchNormalization(), layers::MaxPooling2D(),
                     layers::Conv2D({.filters = 8, .kernel_size = 3, .activation = "relu"}),
                     layers::GlobalAveragePooling2D(), layers::Dropout(0.25f), layers::Dense(3)});
}

Sequential lenet() {
  return Sequential({layers::Reshape({.target_shape = Shape{28, 28, 1}, .input_shape = Shape{28, 28}}),
                     layers::Conv2D({.filters = 6, .kernel_size = 5, .padding = Padding::same, .activation = "relu"}),
                     layers::MaxPooling2D(), layers::Conv2D(16, 5, "relu"), layers::MaxPooling2D(), layers::Flatten(),
                     layers::Dense(120, "relu"), layers::Dense(84, "relu"), layers::Dense(10)});
}

fs::path temp_dir() {
  fs::path d = fs::temp_directory_path() / ("lamina_test_cnn_" + std::to_string(::getpid()));
  fs::create_directories(d);
  return d;
}

TEST(Cnn, LeNetSummaryAndParams) {
  manual_seed(0);
  Sequential model = lenet();
  std::ostringstream os;
  model.summary(os);
  const std::string s = os.str();
  EXPECT_EQ(model.count_params(), 61706);  // as Keras counts LeNet-5 with 'same' first conv
  for (const char* line : {"(Conv2D)", "(None, 28, 28, 6)", "(MaxPooling2D)", "(None, 14, 14, 6)", "(None, 10, 10, 16)",
                           "(None, 5, 5, 16)", "(None, 400)", "2,416", "48,120", "Total params: 61,706"})
    EXPECT_NE(s.find(line), std::string::npos) << line << "\n" << s;
  EXPECT_EQ(model.output_shape(), Shape{10});
  EXPECT_EQ(Sequential::from_json(model.to_json()).to_json(), model.to_json());
}

// Keras names layers with its to_snake_case: Conv2D -> conv2d, MaxPooling2D -> max_pooling2d.
TEST(Cnn, KerasDefaultNames) {
  Sequential model({layers::Conv2D(2, 3), layers::MaxPooling2D(), layers::GlobalAveragePooling2D(),
                    layers::BatchNormalization(), layers::Dropout(0.5f), layers::Reshape(Shape{-1})});
  const std::vector<std::string> expected = {"conv2d", "max_pooling2d", "global_average_pooling2d",
                                             "batch_normalization", "dropout", "reshape"};
  for (size_t i = 0; i < expected.size(); ++i) EXPECT_EQ(model.layers()[i]->name(), expected[i]);
}

// A Keras 3 model.to_json() of a small CNN, as a user would bring it over.
constexpr const char* kKeras3Cnn = R"({"module": "keras", "class_name": "Sequential", "config": {"name": "sequential",
  "trainable": true, "dtype": {"module": "keras", "class_name": "DTypePolicy", "config": {"name": "float32"}, "registered_name": null},
  "layers": [
   {"module": "keras.layers", "class_name": "InputLayer", "config": {"batch_shape": [null, 28, 28, 1], "dtype": "float32", "sparse": false, "name": "input_layer"}, "registered_name": null},
   {"module": "keras.layers", "class_name": "Conv2D", "config": {"name": "conv2d", "trainable": true, "dtype": "float32", "filters": 32, "kernel_size": [3, 3], "strides": [1, 1], "padding": "valid", "data_format": "channels_last", "dilation_rate": [1, 1], "groups": 1, "activation": "relu", "use_bias": true, "kernel_initializer": {"module": "keras.initializers", "class_name": "GlorotUniform", "config": {"seed": null}, "registered_name": null}, "bias_initializer": {"module": "keras.initializers", "class_name": "Zeros", "config": {}, "registered_name": null}, "kernel_regularizer": null, "bias_regularizer": null, "activity_regularizer": null, "kernel_constraint": null, "bias_constraint": null}, "registered_name": null, "build_config": {"input_shape": [null, 28, 28, 1]}},
   {"module": "keras.layers", "class_name": "BatchNormalization", "config": {"name": "batch_normalization", "trainable": true, "dtype": "float32", "axis": -1, "momentum": 0.99, "epsilon": 0.001, "center": true, "scale": true, "beta_initializer": {"module": "keras.initializers", "class_name": "Zeros", "config": {}, "registered_name": null}, "gamma_initializer": {"module": "keras.initializers", "class_name": "Ones", "config": {}, "registered_name": null}, "moving_mean_initializer": {"module": "keras.initializers", "class_name": "Zeros", "config": {}, "registered_name": null}, "moving_variance_initializer": {"module": "keras.initializers", "class_name": "Ones", "config": {}, "registered_name": null}, "beta_regularizer": null, "gamma_regularizer": null, "beta_constraint": null, "gamma_constraint": null, "synchronized": false}, "registered_name": null, "build_config": {"input_shape": [null, 26, 26, 32]}},
   {"module": "keras.layers", "class_name": "MaxPooling2D", "config": {"name": "max_pooling2d", "trainable": true, "dtype": "float32", "pool_size": [2, 2], "padding": "valid", "strides": [2, 2], "data_format": "channels_last"}, "registered_name": null, "build_config": {"input_shape": [null, 26, 26, 32]}},
   {"module": "keras.layers", "class_name": "Dropout", "config": {"name": "dropout", "trainable": true, "dtype": "float32", "rate": 0.25, "seed": null, "noise_shape": null}, "registered_name": null, "build_config": {"input_shape": [null, 13, 13, 32]}},
   {"module": "keras.layers", "class_name": "GlobalAveragePooling2D", "config": {"name": "global_average_pooling2d", "trainable": true, "dtype": "float32", "data_format": "channels_last", "keepdims": false}, "registered_name": null, "build_config": {"input_shape": [null, 13, 13, 32]}},
   {"module": "keras.layers", "class_name": "Dense", "config": {"name": "dense", "trainable": true, "dtype": "float32", "units": 10, "activation": "softmax", "use_bias": true, "kernel_initializer": {"module": "keras.initializers", "class_name": "GlorotUniform", "config": {"seed": null}, "registered_name": null}, "bias_initializer": {"module": "keras.initializers", "class_name": "Zeros", "config": {}, "registered_name": null}, "kernel_regularizer": null, "bias_regularizer": null, "kernel_constraint": null, "bias_constraint": null}, "registered_name": null, "build_config": {"input_shape": [null, 32]}}],
  "build_input_shape": [null, 28, 28, 1]}, "registered_name": null, "build_config": {"input_shape": [null, 28, 28, 1]}})";

TEST(Cnn, ReadsKeras3Json) {
  Sequential m = Sequential::from_json(Json::parse(kKeras3Cnn));
  EXPECT_TRUE(m.built());
  // conv 3*3*32 + 32 = 320; batch norm 4*32 = 128 (64 trainable); dense 32*10 + 10 = 330
  EXPECT_EQ(m.count_params(), 778);
  EXPECT_EQ(m.trainable_weights().size(), 6u);
  EXPECT_EQ(m.output_shape(), Shape{10});
  std::ostringstream os;
  m.summary(os);
  EXPECT_NE(os.str().find("Non-trainable params: 64 (256.00 B)"), std::string::npos) << os.str();
  // A name too long for its column wraps at the space, as Keras' table does; no row is wider.
  EXPECT_NE(os.str().find("\u2502 (BatchNormalization)"), std::string::npos) << os.str();
  std::istringstream lines(os.str());
  std::set<size_t> widths;
  for (std::string line; std::getline(lines, line);)
    if (line.rfind("\u2502", 0) == 0) widths.insert(line.size());
  EXPECT_EQ(widths.size(), 1u) << os.str();
}

TEST(Cnn, SmallCnnLearns) {
  manual_seed(3);
  auto [x, y] = bars(240, 1);
  auto [xt, yt] = bars(90, 2);
  Sequential model = small_cnn();
  model.compile(Adam(), losses::SparseCategoricalCrossentropy({.from_logits = true}), {"accuracy"});
  History h = model.fit(x, y, {.epochs = 8, .batch_size = 16, .verbose = 0});
  ASSERT_EQ(h.history.at("loss").size(), 8u);
  EXPECT_LT(h.history.at("loss").back(), 0.6 * h.history.at("loss").front());
  const Logs test = model.evaluate(xt, yt, {.verbose = 0});
  EXPECT_GT(*test.get("accuracy"), 0.9) << "test loss " << *test.get("loss");
  // predict is inference: dropout off, moving statistics, the same answer twice.
  EXPECT_EQ(model.predict(xt).to_vector(), model.predict(xt).to_vector());
}

TEST(Cnn, SameSeedSameWeightsBitForBit) {
  auto train = [] {
    manual_seed(5);
    auto [x, y] = bars(64, 3);
    Sequential m = small_cnn();
    m.compile(SGD({.learning_rate = 0.05f, .momentum = 0.9f}), losses::SparseCategoricalCrossentropy({.from_logits = true}));
    m.fit(x, y, {.epochs = 2, .batch_size = 16, .verbose = 0});
    std::vector<float> all;
    for (const auto& [n, w] : m.named_weights()) all.insert(all.end(), w.data(), w.data() + w.numel());
    return all;
  };
  EXPECT_EQ(train(), train());  // dropout masks included: they follow manual_seed
}

TEST(Cnn, SteadyStateStepAllocatesNoStorage) {
  manual_seed(6);
  auto [x, y] = bars(48, 4);  // 3 full batches of 16
  Sequential model = small_cnn();
  model.compile(Adam(), losses::SparseCategoricalCrossentropy({.from_logits = true}), {"accuracy"});
  model.fit(x, y, {.epochs = 2, .batch_size = 16, .verbose = 0});
  const MemoryStats before = memory_stats();
  model.fit(x, y, {.epochs = 2, .batch_size = 16, .verbose = 0});
  EXPECT_EQ(memory_stats().system_allocations, before.system_allocations);
}

// Moving statistics are non-trainable weights: saved, loaded, and used by predict.
TEST(Cnn, SaveLoadKeepsBatchNormStatistics) {
  manual_seed(7);
  auto [x, y] = bars(60, 5);
  Sequential model = small_cnn();
  model.compile(Adam(), losses::SparseCategoricalCrossentropy({.from_logits = true}), {"accuracy"});
  model.fit(x, y, {.epochs = 2, .batch_size = 20, .verbose = 0});
  const std::string bn_name = model.layers()[1]->name(), conv_name = model.layers()[0]->name();
  auto& bn = dynamic_cast<layers::BatchNormalization&>(*model.layers()[1]);
  EXPECT_NE(bn.weight("moving_mean").to_vector(), std::vector<float>(4, 0.f));  // training moved them
  const fs::path dir = temp_dir();
  const std::string path = (dir / "cnn.safetensors").string();
  model.save(path);
  auto file = io::load_safetensors(path);
  for (const std::string w : {"/gamma", "/beta", "/moving_mean", "/moving_variance"})
    EXPECT_TRUE(std::any_of(file.tensors.begin(), file.tensors.end(), [&](const auto& t) { return t.first == bn_name + w; }))
        << bn_name + w;
  EXPECT_TRUE(std::any_of(file.tensors.begin(), file.tensors.end(),
                          [&](const auto& t) { return t.first == conv_name + "/kernel"; }));
  Sequential back = Sequential::load(path);
  auto& bn2 = dynamic_cast<layers::BatchNormalization&>(back.layer(bn_name));
  EXPECT_EQ(bn2.weight("moving_mean").to_vector(), bn.weight("moving_mean").to_vector());
  EXPECT_EQ(bn2.weight("moving_variance").to_vector(), bn.weight("moving_variance").to_vector());
  EXPECT_FALSE(bn2.weights()[2].trainable);
  EXPECT_EQ(back.predict(x).to_vector(), model.predict(x).to_vector());
  EXPECT_EQ(back.to_json(), model.to_json());
  fs::remove_all(dir);
}

// predict runs a large batch as cache-sized chunks (about 60 LeNet rows per thread): every row
// still gets what a forward pass of its own gives.
TEST(CnnModel, PredictInChunksEqualsOneSampleAtATime) {
  manual_seed(3);
  Sequential m = lenet();
  Generator gen(4);
  const Tensor x = Tensor::rand({300, 28, 28}, gen);
  const Tensor all = m.predict(x, 300), one = m.predict(x, 1);
  ASSERT_EQ(all.shape(), (Shape{300, 10}));
  for (int64_t i = 0; i < all.numel(); ++i) ASSERT_NEAR(all.data()[i], one.data()[i], 1e-5) << i;
}

}  // namespace
}  // namespace lamina
