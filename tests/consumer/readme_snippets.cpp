// The README's C++ snippets, compiled (not run) with -Wall -Wextra -Werror against the installed
// headers, with GCC and, when it is installed, clang: designated initializers that leave options
// out, runtime doubles as learning rates, and the Keras-style calls must stay warning-free.
#include <lamina/lamina.hpp>

using namespace lamina;

void course_program() {
  auto [train, test] = data::load_mnist("data/mnist");
  Sequential model({layers::Flatten({.input_shape = Shape{28, 28}}), layers::Dense(128, "relu"), layers::Dense(10)});
  model.compile("adam", losses::SparseCategoricalCrossentropy({.from_logits = true}), {"accuracy"});
  model.fit(train, {.epochs = 5});
  model.evaluate(test);
}

void functional(const Tensor& xa, const Tensor& xb, const Tensor& labels, const Tensor& targets) {
  KerasTensor x = Input({28, 28, 1}, "image");
  KerasTensor h = layers::Conv2D({.filters = 32, .kernel_size = 3, .padding = Padding::same, .activation = "relu"})(x);
  KerasTensor r = layers::Conv2D({.filters = 32, .kernel_size = 3, .padding = Padding::same})(h);
  KerasTensor y = layers::Dense(10)(layers::Flatten()(layers::Add()({h, r})));
  Model model(x, y, "resnet");
  model.compile("adam", losses::SparseCategoricalCrossentropy({.from_logits = true}), {"accuracy"});
  KerasTensor a = Input({4}), b = Input({2});
  KerasTensor cls = layers::Dense({.units = 3, .name = "cls"})(layers::Concatenate()({a, b}));
  KerasTensor reg = layers::Dense({.units = 1, .name = "reg"})(b);
  Model two({a, b}, {cls, reg});
  two.compile(Adam(), {Loss("sparse_categorical_crossentropy"), Loss("mse")},
              {.metrics = {"accuracy"}, .loss_weights = {1.0, 0.5}});
  two.fit({xa, xb}, {labels, targets}, {.epochs = 10});
}

void training(Sequential& model, const data::Dataset& train, double lr) {
  model.compile(SGD({.learning_rate = lr, .momentum = 0.9}), "sparse_categorical_crossentropy",
                CompileOptions{.metrics = {"accuracy"}, .weighted_metrics = {"accuracy"}});
  Adam adam({.learning_rate = schedules::CosineDecay({.initial_learning_rate = 1e-3, .decay_steps = 5000,
                                                      .warmup_target = 1e-2, .warmup_steps = 500})});
  ReduceLROnPlateau plateau({.monitor = "val_loss", .factor = 0.5, .patience = 2});
  EarlyStopping stop({.monitor = "val_loss", .patience = 2, .restore_best_weights = true});
  ModelCheckpoint last({.filepath = "ckpt/last.safetensors"});
  ModelCheckpoint best({.filepath = "ckpt/{epoch:02d}-{val_loss:.4f}.safetensors", .save_best_only = true});
  model.fit(train, {.epochs = 10, .validation_split = 0.1, .callbacks = {&plateau, &stop, &last, &best},
                    .class_weight = {{3, 9.0}}});
  Sequential m = Sequential::load_checkpoint("ckpt/last.safetensors");
  m.fit(train, {.epochs = 10, .initial_epoch = m.fit_state().epoch, .validation_split = 0.1});
  (void)adam;
}

void freezing(const Tensor& x, const Tensor& y) {
  Sequential model({layers::Dense({.units = 64, .activation = "relu",
                                   .kernel_regularizer = regularizers::L2(0.01f),
                                   .kernel_constraint = constraints::MaxNorm(2.f),
                                   .input_shape = Shape{784}, .name = "features"}),
                    layers::Dense({.units = 10, .activity_regularizer = regularizers::L1(1e-5f)})});
  model.layer("features").set_trainable(false);
  model.compile("adam", Loss("sparse_categorical_crossentropy"), {"accuracy"});
  model.fit(x, y, {.epochs = 3});
  Tensor penalty = model.regularization_loss();
  (void)penalty;
}

struct SampleReader {  // stands for the application's own reader
  std::optional<data::Sample> next() { return std::nullopt; }
};

void pipelines(Sequential& model, const data::Dataset& train_set, SampleReader& reader, const float* pixels, int64_t n) {
  auto augment = [](data::Sample s, Generator& rng) {
    s.x[0] = data::augment::random_crop(data::augment::random_flip_left_right(s.x[0], rng), rng, 4);
    return s;
  };
  auto train = data::Pipeline::from_dataset(train_set).map(augment).shuffle(10000, /*seed=*/1).batch(64).prefetch(2);
  model.fit(train, {.epochs = 10});
  auto stream = data::Pipeline::from_generator(
      [&](int64_t, Generator&) -> std::optional<data::Sample> { return reader.next(); },
      {.input_shapes = {Shape{28, 28, 1}}, .target_shapes = {Shape{}}, .size = 60000}).batch(32);
  auto mine = data::Pipeline::from_blob(pixels, {n, 28, 28, 1}).batch(256);
  Tensor probs = model.predict_all(mine)[0];
  (void)stream;
  (void)probs;
}

void sequences(const std::vector<std::string>& train_texts) {
  Sequential m;  // keras.io's IMDB bidirectional LSTM
  m.add(layers::Embedding({.input_dim = 20000, .output_dim = 128, .input_shape = Shape{200}}));
  m.add(layers::Bidirectional(layers::LSTM({.units = 64, .return_sequences = true})));
  m.add(layers::Bidirectional(layers::LSTM({.units = 64})));
  m.add(layers::Dense(1, "sigmoid"));
  KerasTensor enc = layers::LSTM({.units = 32, .return_state = true})(Input({10, 8}));
  KerasTensor dec = layers::LSTM({.units = 32, .return_sequences = true})({Input({12, 8}), enc.output(1), enc.output(2)});
  (void)dec;
  TextVectorization tv({.max_tokens = 20000, .output_sequence_length = 200, .padding = "pre"});
  tv.adapt(train_texts);
  Tensor ids = tv(train_texts);
  m.set_text_vectorization(tv);
  Tensor p = m.predict(std::vector<std::string>{"A wonderful film."});
  (void)ids;
  (void)p;
}

int main() { return 0; }
