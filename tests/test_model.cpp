// Sequential end to end: naming, summary, fit (against a PyTorch loss curve), callbacks,
// evaluate / predict, determinism, Keras JSON in both generations, save / load.
#include <gtest/gtest.h>

#include <filesystem>
#include <functional>
#include <sstream>

#include "test_util.hpp"

namespace lamina {
namespace {

namespace fs = std::filesystem;

// Three Gaussian blobs in 2-D: 3 classes, separable.
std::pair<Tensor, Tensor> blobs(int64_t n, uint64_t seed) {
  Generator gen(seed);
  Tensor x = Tensor::randn({n, 2}, gen, 0.f, 0.3f), y = Tensor::empty({n});
  const float centers[3][2] = {{0, 2}, {2, -1}, {-2, -1}};
  for (int64_t i = 0; i < n; ++i) {
    const int64_t c = i % 3;
    y.data()[i] = static_cast<float>(c);
    x.at({i, 0}) += centers[c][0];
    x.at({i, 1}) += centers[c][1];
  }
  return {x, y};
}

Sequential small_mlp() {
  return Sequential({layers::Dense({.units = 16, .activation = "relu", .input_shape = Shape{2}}),
                     layers::Dense(3, "softmax")});
}

fs::path temp_dir() {
  fs::path d = fs::temp_directory_path() / ("lamina_test_model_" + std::to_string(::getpid()));
  fs::create_directories(d);
  return d;
}

TEST(Sequential, NamesAndSummary) {
  manual_seed(0);
  Sequential model({layers::Dense({.units = 64, .activation = "relu", .input_shape = Shape{64}}),
                    layers::Dense(10, "softmax")});
  EXPECT_EQ(model.layers()[0]->name(), "dense");
  EXPECT_EQ(model.layers()[1]->name(), "dense_1");
  std::ostringstream os;
  model.summary(os);
  const std::string s = os.str();
  EXPECT_NE(s.find("Model: \"sequential\""), std::string::npos) << s;
  EXPECT_NE(s.find("dense (Dense)"), std::string::npos) << s;
  EXPECT_NE(s.find("(None, 64)"), std::string::npos) << s;
  EXPECT_NE(s.find("4,160"), std::string::npos) << s;
  EXPECT_NE(s.find("Total params: 4,810 (18.79 KB)"), std::string::npos) << s;
  EXPECT_EQ(model.count_params(), 4810);
  EXPECT_THROW(model.add(layers::Dense(3)), ValueError);  // already built
}

TEST(Sequential, FitReachesLossThreshold) {
  manual_seed(1);
  auto [x, y] = blobs(300, 7);
  Sequential model = small_mlp();
  model.compile(Adam({.learning_rate = 0.01f}), "sparse_categorical_crossentropy", {"accuracy"});
  History h = model.fit(x, y, {.epochs = 30, .batch_size = 32, .validation_split = 0.2, .verbose = 0});
  ASSERT_EQ(h.history["loss"].size(), 30u);
  EXPECT_LT(h.history["loss"].back(), 0.05);
  EXPECT_LT(h.history["loss"].back(), h.history["loss"].front());
  EXPECT_GT(h.history["val_accuracy"].back(), 0.97);
  EXPECT_EQ(h.epoch_seconds.size(), 30u);
  const Logs eval = model.evaluate(x, y, {.verbose = 0});
  EXPECT_GT(eval.at("accuracy"), 0.97);
  const Tensor p = model.predict(x, 64);
  EXPECT_EQ(p.shape(), (Shape{300, 3}));
  NoGradGuard g;
  EXPECT_TRUE(testing::all_close(p, model(x), 1e-6, 1e-7));
}

// The same MLP, weights and data as tests/fixtures/mlp_curve.bin: the loss before each of five
// SGD-momentum steps must follow PyTorch's.
TEST(Sequential, FollowsPyTorchLossCurve) {
  const auto f = testing::load_fixture("mlp_curve");
  Sequential model({layers::Dense({.units = 8, .activation = "relu", .input_shape = Shape{4}}),
                    layers::Dense(3, "softmax")});
  model.build({4});
  auto weights = model.named_weights();
  for (size_t i = 0; i < 4; ++i) {
    const Tensor& init = f.at("init" + std::to_string(i));
    std::copy(init.data(), init.data() + init.numel(), weights[i].second.data());
  }
  model.compile(SGD({.learning_rate = 0.1f, .momentum = 0.9f}), "sparse_categorical_crossentropy");
  History h = model.fit(f.at("x"), f.at("labels"), {.epochs = 5, .batch_size = 16, .shuffle = false, .verbose = 0});
  const Tensor losses = Tensor::from(std::vector<float>(h.history["loss"].begin(), h.history["loss"].end()), {5});
  EXPECT_TRUE(testing::all_close(losses, f.at("losses"), 1e-4, 1e-6));
  for (size_t i = 0; i < 4; ++i)
    EXPECT_TRUE(testing::all_close(weights[i].second, f.at("final" + std::to_string(i)), 1e-4, 1e-5)) << i;
}

TEST(Sequential, SameSeedSameWeightsBitForBit) {
  auto train = [] {
    manual_seed(42);
    auto [x, y] = blobs(120, 3);
    Sequential m = small_mlp();
    m.compile(SGD({.learning_rate = 0.05f, .momentum = 0.9f}), "sparse_categorical_crossentropy");
    m.fit(x, y, {.epochs = 3, .batch_size = 16, .verbose = 0});
    std::vector<float> all;
    for (const auto& [n, w] : m.named_weights()) all.insert(all.end(), w.data(), w.data() + w.numel());
    return all;
  };
  EXPECT_EQ(train(), train());
}

// After the first epoch every tensor buffer of a step comes from the storage cache: a further
// epoch asks the system for none.
TEST(Sequential, SteadyStateStepAllocatesNoStorage) {
  manual_seed(8);
  auto [x, y] = blobs(96, 4);  // 3 full batches of 32: every step has the same shapes
  Sequential model = small_mlp();
  model.compile(Adam(), "sparse_categorical_crossentropy", {"accuracy"});
  model.fit(x, y, {.epochs = 2, .batch_size = 32, .verbose = 0});
  const MemoryStats before = memory_stats();
  model.fit(x, y, {.epochs = 3, .batch_size = 32, .verbose = 0});
  const MemoryStats after = memory_stats();
  EXPECT_EQ(after.system_allocations, before.system_allocations);
  EXPECT_GT(after.reused, before.reused);
}

// Sequential packs its trainable weights into one buffer, gradients into another.
TEST(Sequential, PacksParametersContiguously) {
  Sequential model = small_mlp();
  model.build({2});
  const auto params = model.trainable_weights();
  ASSERT_EQ(params.size(), 4u);
  for (const Tensor& p : params) EXPECT_EQ(p.impl()->storage, params[0].impl()->storage);
  for (size_t i = 1; i < params.size(); ++i) EXPECT_GE(params[i].data(), params[i - 1].data() + params[i - 1].numel());
  EXPECT_EQ(reinterpret_cast<uintptr_t>(params[1].data()) % 64, 0u);
}

TEST(Callbacks, EarlyStoppingLambdaAndRestore) {
  manual_seed(3);
  auto [x, y] = blobs(60, 5);
  Sequential model = small_mlp();
  model.compile(SGD({.learning_rate = 0.f}), "sparse_categorical_crossentropy");  // lr 0: loss never improves
  // ... beyond rounding: each epoch's shuffle sums the same per-sample losses in another order,
  // which moved the third epoch's loss 1 ulp down (1.84404886 against 1.84404892) in a Debug build.
  EarlyStopping stop({.monitor = "loss", .min_delta = 1e-6, .patience = 2, .restore_best_weights = true});
  int epochs = 0, batches = 0;
  LambdaCallback counter;
  counter.epoch_end = [&](int, const Logs& logs) {
    ++epochs;
    EXPECT_TRUE(logs.get("loss").has_value());
  };
  counter.batch_end = [&](int64_t, const Logs&) { ++batches; };
  History h = model.fit(x, y, {.epochs = 20, .batch_size = 30, .callbacks = {&stop, &counter}, .verbose = 0});
  EXPECT_EQ(epochs, 3);  // the best epoch, then `patience` epochs without improvement
  EXPECT_EQ(batches, 6);
  EXPECT_EQ(stop.stopped_epoch(), 2);
  EXPECT_EQ(h.history["loss"].size(), 3u);
  EXPECT_THROW(EarlyStopping({.mode = "sideways"}), ValueError);
}

// A NaN in the data makes the loss NaN at its batch; TerminateOnNaN stops right there.
TEST(Callbacks, TerminateOnNaNStopsAtTheBadBatch) {
  manual_seed(6);
  auto [x, y] = blobs(90, 9);
  x.at({45, 1}) = NAN;  // in the second batch of 30 (no shuffle)
  Sequential model = small_mlp();
  model.compile(SGD(), "sparse_categorical_crossentropy");
  std::ostringstream report;
  TerminateOnNaN nan_guard(&report);
  int batches = 0;
  LambdaCallback counter;
  counter.batch_end = [&](int64_t, const Logs&) { ++batches; };
  History h = model.fit(x, y, {.epochs = 5, .batch_size = 30, .shuffle = false, .callbacks = {&nan_guard, &counter},
                               .verbose = 0});
  EXPECT_TRUE(nan_guard.stopped());
  // The diagnosis on the bad batch finds the NaN in the input itself (sample 45 is row 15 of batch 2).
  EXPECT_EQ(nan_guard.message(),
            "epoch 1, step 2: the loss is nan; first non-finite values: the input batch: 1 of 60 values are not "
            "finite (first: nan at (15, 1)); terminating training");
  EXPECT_NE(report.str().find("TerminateOnNaN: epoch 1, step 2"), std::string::npos);
  EXPECT_EQ(batches, 2);
  EXPECT_EQ(h.history["loss"].size(), 1u);
}

TEST(Callbacks, ProgressBarOffTerminalIsOneLinePerEpoch) {
  std::ostringstream out;
  ProgressBar bar(1, &out);
  bar.on_train_begin({.epochs = 2, .steps_per_epoch = 10, .samples = 300});
  for (int e = 0; e < 2; ++e) {
    bar.on_epoch_begin(e);
    Logs logs;
    logs.set("loss", 0.5);
    logs.set("accuracy", 0.75);
    for (int s = 1; s <= 10; ++s) bar.on_batch_end(s, logs);
    bar.on_epoch_end(e, logs);
  }
  const std::string s = out.str();
  EXPECT_EQ(std::count(s.begin(), s.end(), '\n'), 2) << s;
  EXPECT_NE(s.find("Epoch 2/2 - 10/10 - "), std::string::npos) << s;
  EXPECT_NE(s.find("- loss: 0.5000 - accuracy: 0.7500"), std::string::npos) << s;
}

TEST(Sequential, ClearErrors) {
  auto [x, y] = blobs(30, 1);
  Sequential model = small_mlp();
  try {
    model.fit(x, y);
    FAIL();
  } catch (const ValueError& e) {
    EXPECT_NE(std::string(e.what()).find("not compiled"), std::string::npos) << e.what();
  }
  model.compile("adam", "sparse_categorical_crossentropy", {"accuracy"});
  try {
    model.fit(Tensor::zeros({30, 5}), y, {.verbose = 0});
    FAIL();
  } catch (const ShapeError& e) {
    EXPECT_NE(std::string(e.what()).find("was declared with input shape (2) but is built for (5)"), std::string::npos)
        << e.what();
  }
  Tensor bad = y.clone();
  bad.data()[4] = 7.f;
  EXPECT_THROW(model.fit(x, bad, {.verbose = 0}), ValueError);  // label 7 for 3 classes
  EXPECT_THROW(model.compile("adam", "mse", {"auc_magic"}), ValueError);
}

// What real Keras writes for the course's digits model: Keras 2 (tf.keras 2.x) and Keras 3.
constexpr const char* kKeras2 = R"({"class_name": "Sequential", "config": {"name": "sequential", "layers": [
  {"class_name": "Dense", "config": {"name": "dense", "trainable": true, "batch_input_shape": [null, 64],
   "dtype": "float32", "units": 64, "activation": "relu", "use_bias": true,
   "kernel_initializer": {"class_name": "GlorotUniform", "config": {"seed": null}},
   "bias_initializer": {"class_name": "Zeros", "config": {}}, "kernel_regularizer": null,
   "bias_regularizer": null, "activity_regularizer": null, "kernel_constraint": null, "bias_constraint": null}},
  {"class_name": "Dense", "config": {"name": "dense_1", "trainable": true, "dtype": "float32", "units": 10,
   "activation": "softmax", "use_bias": true,
   "kernel_initializer": {"class_name": "VarianceScaling", "config": {"scale": 1.0, "mode": "fan_avg", "distribution": "uniform", "seed": null}},
   "bias_initializer": {"class_name": "Zeros", "config": {}}}}]},
  "keras_version": "2.11.0", "backend": "tensorflow"})";

constexpr const char* kKeras3 = R"({"module": "keras", "class_name": "Sequential", "config": {"name": "sequential",
  "trainable": true, "dtype": {"module": "keras", "class_name": "DTypePolicy", "config": {"name": "float32"}, "registered_name": null},
  "layers": [
   {"module": "keras.layers", "class_name": "InputLayer", "config": {"batch_shape": [null, 28, 28], "dtype": "float32", "sparse": false, "name": "input_layer"}, "registered_name": null},
   {"module": "keras.layers", "class_name": "Flatten", "config": {"name": "flatten", "trainable": true, "dtype": "float32", "data_format": "channels_last"}, "registered_name": null, "build_config": {"input_shape": [null, 28, 28]}},
   {"module": "keras.layers", "class_name": "Dense", "config": {"name": "dense", "trainable": true, "dtype": "float32", "units": 128, "activation": "relu", "use_bias": true,
     "kernel_initializer": {"module": "keras.initializers", "class_name": "GlorotUniform", "config": {"seed": null}, "registered_name": null},
     "bias_initializer": {"module": "keras.initializers", "class_name": "Zeros", "config": {}, "registered_name": null},
     "kernel_regularizer": null, "bias_regularizer": null, "kernel_constraint": null, "bias_constraint": null}, "registered_name": null, "build_config": {"input_shape": [null, 784]}},
   {"module": "keras.layers", "class_name": "Dense", "config": {"name": "dense_1", "trainable": true, "dtype": "float32", "units": 10, "activation": "linear", "use_bias": true,
     "kernel_initializer": {"module": "keras.initializers", "class_name": "GlorotUniform", "config": {"seed": null}, "registered_name": null},
     "bias_initializer": {"module": "keras.initializers", "class_name": "Zeros", "config": {}, "registered_name": null}}, "registered_name": null, "build_config": {"input_shape": [null, 128]}}],
  "build_input_shape": [null, 28, 28]}, "registered_name": null, "build_config": {"input_shape": [null, 28, 28]},
  "compile_config": {"optimizer": "adam", "loss": {"module": "keras.losses", "class_name": "SparseCategoricalCrossentropy", "config": {"name": "sparse_categorical_crossentropy", "reduction": "sum_over_batch_size", "from_logits": true, "ignore_class": null}, "registered_name": null}, "metrics": ["accuracy"]}})";

TEST(ModelJson, ReadsKeras2AndKeras3) {
  Sequential k2 = Sequential::from_json(Json::parse(kKeras2));
  EXPECT_TRUE(k2.built());
  EXPECT_EQ(k2.count_params(), 4810);
  EXPECT_EQ(k2.layers()[1]->name(), "dense_1");
  Sequential k3 = Sequential::from_json(Json::parse(kKeras3));
  EXPECT_EQ(k3.count_params(), 101770);
  EXPECT_EQ(k3.output_shape(), Shape{10});
  EXPECT_EQ(k3.input_shape(), (Shape{28, 28}));
  // Our own JSON reads back to the same JSON.
  EXPECT_EQ(Sequential::from_json(k3.to_json()).to_json(), k3.to_json());
  Json unknown = Json::parse(kKeras2);
  unknown["config"]["layers"][1]["class_name"] = "Conv3DTranspose";
  try {
    Sequential::from_json(unknown);
    FAIL();
  } catch (const ValueError& e) {
    EXPECT_NE(std::string(e.what()).find("layers[1] (Conv3DTranspose): layer class 'Conv3DTranspose' is not supported"),
              std::string::npos)
        << e.what();
  }
}

// A config value of the wrong JSON type is a ValueError saying where, not nlohmann's type_error
// (which reached `lamina` users without the file's name, and escaped Sequential::load).
TEST(ModelJson, WrongJsonTypesAreValueErrors) {
  auto message = [](const std::function<void()>& f) {
    try {
      f();
    } catch (const ValueError& e) {
      return std::string(e.what());
    }
    return std::string("(no ValueError)");
  };
  Json j = Json::parse(kKeras2);
  j["config"]["layers"][1]["config"]["use_bias"] = 5;
  EXPECT_NE(message([&] { Sequential::from_json(j); }).find("layers[1] (Dense): Dense 'dense_1': type must be boolean"),
            std::string::npos)
      << message([&] { Sequential::from_json(j); });
  j = Json::parse(kKeras2);
  j["config"]["name"] = 5;
  EXPECT_NE(message([&] { Sequential::from_json(j); }).find("model JSON: type must be string"), std::string::npos);
  const Json sgd = {{"class_name", "SGD"}, {"config", {{"nesterov", 5}}}};
  EXPECT_NE(message([&] { optimizer_from_config(sgd); }).find("type must be boolean"), std::string::npos);
  const Json scaling = {{"class_name", "VarianceScaling"}, {"config", {{"mode", 1}}}};
  EXPECT_NE(message([&] { Initializer::from_config(scaling); }).find("'mode' must be a string, got 1"),
            std::string::npos);
}

TEST(ModelFile, SaveLoadRoundTripAndRefusals) {
  manual_seed(4);
  auto [x, y] = blobs(90, 2);
  Sequential model = small_mlp();
  model.compile(Adam(), losses::SparseCategoricalCrossentropy(), {"accuracy"});
  model.fit(x, y, {.epochs = 2, .verbose = 0});
  const fs::path dir = temp_dir();
  const std::string path = (dir / "m.safetensors").string();
  model.save(path);
  Sequential back = Sequential::load(path);
  EXPECT_TRUE(back.compiled());
  EXPECT_EQ(back.loss().name(), "sparse_categorical_crossentropy");
  EXPECT_EQ(back.optimizer().name(), "Adam");
  EXPECT_EQ(back.predict(x).to_vector(), model.predict(x).to_vector());

  // A newer format version, a weight of the wrong shape, a missing config: refused by name.
  auto file = io::load_safetensors(path);
  auto rewrite = [&](const std::string& name, auto mutate) {
    io::SafetensorsFile f = file;
    mutate(f);
    const std::string p = (dir / name).string();
    io::save_safetensors(p, f.tensors, f.metadata);
    return p;
  };
  const std::string newer = rewrite("newer.safetensors", [](auto& f) { f.metadata["format_version"] = "7"; });
  const std::string shape = rewrite("shape.safetensors", [](auto& f) { f.tensors[0].second = Tensor::zeros({3, 16}); });
  const std::string bare = rewrite("bare.safetensors", [](auto& f) { f.metadata.clear(); });
  auto message = [](const std::string& p) {
    try {
      Sequential::load(p);
    } catch (const IoError& e) {
      return std::string(e.what());
    }
    return std::string("(loaded)");
  };
  EXPECT_NE(message(newer).find("format version 7 by a newer Lamina"), std::string::npos) << message(newer);
  EXPECT_NE(message(shape).find("tensor 'dense/kernel' has shape (3, 16), the config says (2, 16)"), std::string::npos)
      << message(shape);
  EXPECT_NE(message(bare).find("not a Lamina model file"), std::string::npos) << message(bare);

  // From memory: the same model.
  Sequential mem = Sequential::load_bytes(io::read_file(path), "mem.safetensors");
  EXPECT_EQ(mem.predict(x).to_vector(), model.predict(x).to_vector());
  fs::remove_all(dir);
}

// A model file's config is built before its tensors are matched to it. A config that claims far
// more weights than the file holds is refused before they are allocated, and shapes whose
// element count overflows int64 are a ShapeError, both naming the file.
TEST(ModelFile, RefusesConfigsLargerThanTheFile) {
  auto file_with = [](const std::string& units, const std::string& inputs) {
    const std::string config = R"({"class_name": "Sequential", "config": {"name": "m", "layers": [{"class_name": "Dense",
        "config": {"name": "dense", "units": )" + units + R"(, "batch_input_shape": [null, )" + inputs + "]}}]}}";
    const fs::path dir = temp_dir();
    const std::string p = (dir / "huge.safetensors").string();
    io::save_safetensors(p, {{"dense/kernel", Tensor::zeros({2, 2})}, {"dense/bias", Tensor::zeros({2})}},
                         {{"format", "lamina"}, {"format_version", "1"}, {"model_config", config}});
    return io::read_file(p);
  };
  auto message = [](const std::string& bytes) {
    try {
      Sequential::load_bytes(bytes, "huge.safetensors");
    } catch (const IoError& e) {
      return std::string(e.what());
    }
    return std::string("(no IoError)");
  };
  // A (1000, 10^9) kernel: 4 TB.
  std::string msg = message(file_with("1000000000", "1000"));
  EXPECT_NE(msg.find("huge.safetensors: the model config declares more weights than the file's 24 bytes"),
            std::string::npos)
      << msg;
  msg = message(file_with("1099511627776", "1099511627776"));  // 2^40 x 2^40
  EXPECT_NE(msg.find("huge.safetensors: "), std::string::npos) << msg;
  EXPECT_NE(msg.find("more elements than fit in int64"), std::string::npos) << msg;
  fs::remove_all(temp_dir());
}

}  // namespace
}  // namespace lamina
