// SimpleRNN, LSTM, GRU through ONNX: save_onnx writes RNN / LSTM / GRU nodes, load_onnx reads them
// back into the same layers, and the round trip predicts what the original did. (ONNX Runtime
// and onnx's checker judge the exported files in tests/onnx; ONNX's golden node tests are read
// by tests/onnx/rnn_testdata.py.)
#include <gtest/gtest.h>

#include <filesystem>
#include <iostream>
#include <span>
#include <unistd.h>

#include "lamina/lamina.hpp"
#include "lamina/layers/bidirectional.hpp"
#include "lamina/layers/recurrent.hpp"
#include "test_util.hpp"

namespace lamina {
namespace {

namespace fs = std::filesystem;
using Rnn = layers::Recurrent::Options;

fs::path temp_path(const std::string& name) {
  return fs::temp_directory_path() / ("lamina_test_onnx_rnn_" + std::to_string(::getpid()) + "_" + name);
}

Initializer bias_init() { return Initializer::random_uniform(-0.5f, 0.5f); }

// save_onnx, load_onnx, and the same predictions on `xs`; returns the imported model.
Model round_trip(Model& model, const std::vector<Tensor>& xs, const std::string& name) {
  const fs::path path = temp_path(name + ".onnx");
  const std::vector<Tensor> want = model.predict_all(xs);
  save_onnx(model, path.string());
  Model back = load_onnx(path.string());
  fs::remove(path);
  const std::vector<Tensor> got = back.predict_all(xs);
  EXPECT_EQ(got.size(), want.size());
  for (size_t o = 0; o < std::min(got.size(), want.size()); ++o) {
    if (got[o].shape() != want[o].shape()) {
      ADD_FAILURE() << name << " output " << o << ": " << got[o].shape().str() << ", want " << want[o].shape().str();
      continue;
    }
    for (int64_t i = 0; i < got[o].numel(); ++i)
      EXPECT_NEAR(got[o].data()[i], want[o].data()[i], 1e-5) << name << " output " << o << " at " << i;
  }
  return back;
}

std::vector<std::string> classes(const Model& m) {
  std::vector<std::string> out;
  for (const auto& l : m.layers()) out.push_back(l->class_name());
  return out;
}

TEST(OnnxRnn, SequentialsReadBackAsTheSameLayers) {
  manual_seed(7);
  const Tensor x = Tensor::randn({3, 5, 4});
  struct Case {
    const char* name;
    Sequential model;
    std::vector<std::string> want;
  };
  std::vector<Case> cases;
  cases.push_back({"lstm",
                   Sequential({layers::LSTM(Rnn{.units = 3, .bias_initializer = bias_init(), .return_sequences = true,
                                                .input_shape = Shape{5, 4}}),
                               layers::LSTM(Rnn{.units = 2, .bias_initializer = bias_init()})}),
                   {"InputLayer", "LSTM", "LSTM"}});
  for (bool reset_after : {true, false})
    cases.push_back({reset_after ? "gru" : "gru_v1",
                     Sequential({layers::GRU(Rnn{.units = 3, .bias_initializer = bias_init(), .return_sequences = true,
                                                 .reset_after = reset_after, .input_shape = Shape{5, 4}}),
                                 layers::Dense({.units = 2, .bias_initializer = bias_init()})}),
                     {"InputLayer", "GRU", "Dense"}});
  cases.push_back({"simple_relu",
                   Sequential({layers::SimpleRNN(Rnn{.units = 3, .activation = "relu", .use_bias = false,
                                                     .input_shape = Shape{5, 4}})}),
                   {"InputLayer", "SimpleRNN"}});
  cases.push_back({"backwards",
                   Sequential({layers::LSTM(Rnn{.units = 3, .bias_initializer = bias_init(), .return_sequences = true,
                                                .go_backwards = true, .input_shape = Shape{5, 4}}),
                               layers::GRU(Rnn{.units = 2, .bias_initializer = bias_init(), .go_backwards = true})}),
                   {"InputLayer", "LSTM", "GRU"}});
  for (Case& c : cases) {
    c.model.build(Shape{5, 4});
    Model back = round_trip(c.model, {x}, c.name);
    EXPECT_EQ(classes(back), c.want) << c.name;
  }
}

TEST(OnnxRnn, InitialStatesAreGraphInputs) {
  manual_seed(8);
  KerasTensor x = Input({4, 3}, "x"), h0 = Input({2}, "h0"), c0 = Input({2}, "c0");
  KerasTensor s = layers::LSTM(Rnn{.units = 2, .bias_initializer = bias_init(), .return_sequences = true})({x, h0, c0});
  KerasTensor y = layers::SimpleRNN(Rnn{.units = 2, .bias_initializer = bias_init()})({s, h0});
  Model model({x, h0, c0}, {y}, "states");
  round_trip(model, {Tensor::randn({2, 4, 3}), Tensor::randn({2, 2}), Tensor::randn({2, 2})}, "states");
}

TEST(OnnxRnn, ExportRefusesWhatOnnxCannotRun) {
  Sequential m({layers::SimpleRNN(Rnn{.units = 2, .activation = "elu", .input_shape = Shape{3, 2}})});
  m.build(Shape{3, 2});
  const fs::path path = temp_path("elu.onnx");
  try {
    save_onnx(m, path.string());
    FAIL() << "save_onnx wrote a SimpleRNN with elu";
  } catch (const ValueError& e) {
    EXPECT_NE(std::string(e.what()).find("tanh, sigmoid or relu"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("SimpleRNN"), std::string::npos) << e.what();
  }
  EXPECT_FALSE(fs::exists(path));
}

// A layer that passes its input on with a mask of ones, as Masking on data with no masked step.
class MaskMaker : public Layer {
 public:
  std::string class_name() const override { return "MaskMaker"; }
  Tensor call(const Tensor& x, bool) override { return x; }
  Shape output_shape(const Shape& in) const override { return in; }
  Tensor compute_mask(std::span<const Tensor> inputs, std::span<const Tensor>) const override {
    return Tensor::ones({inputs[0].dim(0), inputs[0].dim(1)});
  }
  void export_onnx(onnx::GraphWriter&) const override {}  // the identity
};

// Keras skips masked steps (the state carries over); ONNX's nodes would run them.
TEST(OnnxRnn, ExportRefusesAMaskedRecurrentLayer) {
  Sequential made({layers::InputLayer(Shape{4, 2}), std::shared_ptr<Layer>(std::make_shared<MaskMaker>()), layers::Dense(3),
                   layers::SimpleRNN(Rnn{.units = 2})});
  made.build(Shape{4, 2});
  try {
    save_onnx(made, temp_path("mask_maker.onnx").string());
    FAIL() << "save_onnx wrote a recurrent layer that reads a mask";
  } catch (const ValueError& e) {
    EXPECT_NE(std::string(e.what()).find("carries a mask"), std::string::npos) << e.what();
  }
  Sequential embedded({layers::Embedding({.input_dim = 10, .output_dim = 3, .mask_zero = true, .input_shape = Shape{4}}),
                       layers::Dense(3), layers::GRU(Rnn{.units = 2})});
  embedded.build(Shape{4});
  Sequential masked({layers::Masking({.input_shape = Shape{4, 2}}), layers::LSTM(Rnn{.units = 2})});
  masked.build(Shape{4, 2});
  // GlobalAveragePooling1D averages the real steps only; ONNX's ReduceMean would not.
  Sequential pooled({layers::Embedding({.input_dim = 10, .output_dim = 3, .mask_zero = true, .input_shape = Shape{4}}),
                     layers::GlobalAveragePooling1D()});
  pooled.build(Shape{4});
  for (Sequential* m : {&embedded, &masked, &pooled}) {
    const fs::path path = temp_path("masked.onnx");
    try {
      save_onnx(*m, path.string());
      FAIL() << "save_onnx wrote a layer that reads a mask";
    } catch (const ValueError& e) {
      EXPECT_NE(std::string(e.what()).find("carries a mask"), std::string::npos) << e.what();
    }
    EXPECT_FALSE(fs::exists(path));
  }
  // Without mask_zero the same model exports.
  Sequential plain({layers::Embedding({.input_dim = 10, .output_dim = 3, .input_shape = Shape{4}}),
                    layers::GRU(Rnn{.units = 2})});
  plain.build(Shape{4});
  const fs::path path = temp_path("plain.onnx");
  EXPECT_NO_THROW(save_onnx(plain, path.string()));
  fs::remove(path);
}

// Embedding's export (Cast of the ids to int64, then Gather from the table) reads back as an
// Embedding: a character model as bench's char-lstm (Embedding, LSTM over every step, Dense
// logits) predicts the same after the round trip, and a plain Embedding + Dense too.
TEST(OnnxRnn, EmbeddingReadsBackAsAnEmbedding) {
  manual_seed(11);
  Tensor ids = Tensor::empty({3, 6});
  for (int64_t i = 0; i < ids.numel(); ++i) ids.data()[i] = static_cast<float>((i * 7) % 13);
  Sequential chars({layers::Embedding({.input_dim = 13, .output_dim = 4, .input_shape = Shape{6}}),
                    layers::LSTM(Rnn{.units = 5, .return_sequences = true}), layers::Dense(13)});
  chars.build(Shape{6});
  const Model back = round_trip(chars, {ids}, "embedding_lstm");
  EXPECT_EQ(classes(back), (std::vector<std::string>{"InputLayer", "Embedding", "LSTM", "Dense"}));
  Sequential plain({layers::Embedding({.input_dim = 13, .output_dim = 4, .input_shape = Shape{6}}), layers::Flatten(),
                    layers::Dense(2)});
  plain.build(Shape{6});
  EXPECT_EQ(classes(round_trip(plain, {ids}, "embedding_dense")),
            (std::vector<std::string>{"InputLayer", "Embedding", "Flatten", "Dense"}));
}

// Bidirectional: one ONNX node with direction "bidirectional", read back as a Bidirectional of the
// same class and merge_mode, for each merge and each class, sequences and last outputs; and
// imdb-lstm's shape (Embedding, two Bidirectional LSTMs, Dense).
TEST(OnnxRnn, BidirectionalReadsBackAsABidirectional) {
  manual_seed(12);
  const Tensor x = Tensor::randn({3, 5, 4});
  using layers::Bidirectional;
  struct Case {
    const char* name;
    Sequential model;
  };
  std::vector<Case> cases;
  cases.push_back({"bi_lstm", Sequential({Bidirectional(layers::LSTM(Rnn{.units = 3, .bias_initializer = bias_init(),
                                                                          .return_sequences = true}),
                                                        {.input_shape = Shape{5, 4}}),
                                          Bidirectional(layers::LSTM(Rnn{.units = 2, .bias_initializer = bias_init()}))})});
  cases.push_back({"bi_gru_sum", Sequential({Bidirectional(layers::GRU(Rnn{.units = 3, .bias_initializer = bias_init(),
                                                                            .return_sequences = true}),
                                                           {.merge_mode = "sum", .input_shape = Shape{5, 4}}),
                                             Bidirectional(layers::GRU(Rnn{.units = 2, .bias_initializer = bias_init(),
                                                                           .reset_after = false}),
                                                           {.merge_mode = "ave"})})});
  cases.push_back({"bi_simple_mul",
                   Sequential({Bidirectional(layers::SimpleRNN(Rnn{.units = 3, .activation = "relu", .use_bias = false,
                                                                   .return_sequences = true}),
                                             {.merge_mode = "mul", .input_shape = Shape{5, 4}}),
                               Bidirectional(layers::SimpleRNN(Rnn{.units = 2, .bias_initializer = bias_init()}),
                                             {.merge_mode = "mul"})})});
  for (Case& c : cases) {
    c.model.build(Shape{5, 4});
    const Model back = round_trip(c.model, {x}, c.name);
    ASSERT_EQ(classes(back), (std::vector<std::string>{"InputLayer", "Bidirectional", "Bidirectional"})) << c.name;
    for (size_t k = 1; k < 3; ++k) {
      const auto& layers = c.model.layers();  // the original has no InputLayer in front
      const auto& want = dynamic_cast<const Bidirectional&>(*layers[layers.size() - 3 + k]);
      const auto& got = dynamic_cast<const Bidirectional&>(*back.layers()[k]);
      EXPECT_EQ(got.merge_mode(), want.merge_mode()) << c.name << " layer " << k;
      EXPECT_EQ(const_cast<Bidirectional&>(got).forward_layer().class_name(),
                const_cast<Bidirectional&>(want).forward_layer().class_name());
    }
  }
  // imdb-lstm's layers, smaller.
  Tensor ids = Tensor::empty({2, 7});
  for (int64_t i = 0; i < ids.numel(); ++i) ids.data()[i] = static_cast<float>((i * 5) % 17);
  Sequential imdb({layers::Embedding({.input_dim = 17, .output_dim = 4, .input_shape = Shape{7}}),
                   Bidirectional(layers::LSTM(Rnn{.units = 3, .bias_initializer = bias_init(), .return_sequences = true})),
                   Bidirectional(layers::LSTM(Rnn{.units = 3, .bias_initializer = bias_init()})),
                   layers::Dense({.units = 1, .activation = "sigmoid"})});
  imdb.build(Shape{7});
  EXPECT_EQ(classes(round_trip(imdb, {ids}, "bi_imdb")),
            (std::vector<std::string>{"InputLayer", "Embedding", "Bidirectional", "Bidirectional", "Dense"}));
}

// What one bidirectional node cannot hold is refused by name, and no file is left.
TEST(OnnxRnn, BidirectionalExportRefusesWhatOneNodeCannotHold) {
  using layers::Bidirectional;
  struct Case {
    const char* name;
    Model model;
    const char* reason;
  };
  std::vector<Case> cases;
  {
    KerasTensor x = Input({5, 4});
    KerasTensor y = Bidirectional(layers::LSTM(Rnn{.units = 3}), {.merge_mode = "none"})(x);
    cases.push_back({"none", Model({x}, {y, y.output(1)}), "merge_mode None"});
  }
  {
    KerasTensor x = Input({5, 4});
    KerasTensor y = Bidirectional(layers::GRU(Rnn{.units = 3, .return_state = true}))(x);
    cases.push_back({"return_state", Model({x}, {y, y.output(1), y.output(2)}), "return_state"});
  }
  {
    KerasTensor x = Input({5, 4});
    KerasTensor y = Bidirectional(layers::LSTM(Rnn{.units = 3}),
                                  {.backward_layer = std::make_shared<layers::LSTM>(
                                       Rnn{.units = 2, .go_backwards = true})})(x);
    cases.push_back({"unlike", Model({x}, {y}), "backward layer differs"});
  }
  for (Case& c : cases) {
    const fs::path path = temp_path(std::string("refused_") + c.name + ".onnx");
    try {
      save_onnx(c.model, path.string());
      ADD_FAILURE() << c.name << ": save_onnx wrote it";
    } catch (const ValueError& e) {
      EXPECT_NE(std::string(e.what()).find(c.reason), std::string::npos) << c.name << ": " << e.what();
      EXPECT_NE(std::string(e.what()).find("Bidirectional"), std::string::npos) << c.name << ": " << e.what();
    }
    EXPECT_FALSE(fs::exists(path)) << c.name;
  }
}

}  // namespace
}  // namespace lamina
