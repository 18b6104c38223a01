// layers::Bidirectional: against torch's bidirectional LSTM / GRU (forward and gradients,
// tests/fixtures/make_fixtures_bidirectional.py), finite differences, merge modes, several
// outputs, masks, Keras config and weights, errors.
#include <gtest/gtest.h>

#include <cstdio>
#include <filesystem>
#include <sstream>

#include "lamina/lamina.hpp"
#include "test_util.hpp"

namespace lamina {
namespace {

using layers::Bidirectional;
using layers::GRU;
using layers::LSTM;
using testing::all_close;
using testing::error_of;
using testing::gradcheck;

void set_value(Tensor& w, const Tensor& v) {
  ASSERT_EQ(w.shape(), v.shape());
  std::copy(v.data(), v.data() + v.numel(), w.data());
}

struct FixtureCase {
  const char* name;
  bool lstm, sequences;
  const char* merge;
};

class BidirectionalFixture : public ::testing::TestWithParam<FixtureCase> {};

TEST_P(BidirectionalFixture, MatchesTorch) {
  const FixtureCase c = GetParam();
  auto f = testing::load_fixture(c.name);
  const Tensor& x0 = f.at("x");
  layers::Recurrent::Options o{.units = f.at("recurrent_kernel_fw").dim(0), .return_sequences = c.sequences};
  std::shared_ptr<Bidirectional> bi = c.lstm ? std::make_shared<Bidirectional>(LSTM(o), Bidirectional::Options{.merge_mode = c.merge})
                                             : std::make_shared<Bidirectional>(GRU(o), Bidirectional::Options{.merge_mode = c.merge});
  Generator gen(1);
  bi->build(Shape{x0.dim(1), x0.dim(2)}, gen);
  const char* names[] = {"kernel", "recurrent_kernel", "bias"};
  ASSERT_EQ(bi->weights().size(), 6u);
  for (int d = 0; d < 2; ++d)
    for (int k = 0; k < 3; ++k) {
      EXPECT_EQ(bi->weights()[d * 3 + k].name, std::string(d ? "backward_" : "forward_") + (c.lstm ? "lstm/" : "gru/") + names[k]);
      set_value(bi->weights()[d * 3 + k].value, f.at(std::string(names[k]) + (d ? "_bw" : "_fw")));
    }
  Tensor x = x0.clone();
  x.requires_grad_();
  const Tensor y = bi->call(x, /*training=*/true);
  EXPECT_TRUE(all_close(y, f.at("y"), 1e-4, 1e-5));
  sum(mul(y, f.at("dy"))).backward();
  EXPECT_TRUE(all_close(x.grad(), f.at("dx"), 1e-4, 1e-5));
  for (int d = 0; d < 2; ++d)
    for (int k = 0; k < 3; ++k) {
      const std::string key = std::string("d") + names[k] + (d ? "_bw" : "_fw");
      EXPECT_TRUE(all_close(bi->weights()[d * 3 + k].value.grad(), f.at(key), 1e-4, 1e-5)) << key;
    }
}

INSTANTIATE_TEST_SUITE_P(Torch, BidirectionalFixture,
                         ::testing::Values(FixtureCase{"bidirectional_lstm_sequences_concat", true, true, "concat"},
                                           FixtureCase{"bidirectional_lstm_last_concat", true, false, "concat"},
                                           FixtureCase{"bidirectional_gru_sequences_sum", false, true, "sum"}),
                         [](const auto& info) { return std::string(info.param.name).substr(14); });

TEST(Bidirectional, GradcheckEveryMergeMode) {
  Generator gen(5);
  const Tensor x = Tensor::randn({2, 3, 2}, gen);
  for (const char* merge : {"concat", "sum", "mul", "ave"})
    for (bool sequences : {true, false}) {
      auto bi = std::make_shared<Bidirectional>(GRU({.units = 3, .return_sequences = sequences}),
                                                Bidirectional::Options{.merge_mode = merge});
      bi->build(Shape{3, 2}, gen);
      EXPECT_TRUE(gradcheck([&](const std::vector<Tensor>& in) { return bi->call(in[0], false); }, {x}))
          << merge << (sequences ? " sequences" : " last");
    }
}

// Each direction is the wrapped layer: the forward one as given, the backward one with
// go_backwards, its sequence flipped back to the input's order.
TEST(Bidirectional, DirectionsAreTheWrappedLayerBothWays) {
  Generator gen(7);
  const Tensor x = Tensor::randn({3, 6, 4}, gen);
  KerasTensor in = Input({6, 4});
  Bidirectional bi(LSTM({.units = 5, .return_sequences = true, .return_state = true}), {.merge_mode = "none"});
  KerasTensor y = bi(in);
  ASSERT_EQ(y.output_count(), 6u);  // forward and backward outputs, then h, c of each
  Model m({in}, y.outputs(), "both");
  EXPECT_EQ(m.output_shapes()[0], (Shape{6, 5}));
  EXPECT_EQ(m.output_shapes()[5], (Shape{5}));
  NoGradGuard no_grad;
  const std::vector<Tensor> out = m.call(std::vector<Tensor>{x});
  auto& inner = dynamic_cast<Bidirectional&>(m.layer("bidirectional"));
  const RnnResult f = inner.forward_layer().run(x, Tensor(), {}, false);
  const RnnResult b = inner.backward_layer().run(x, Tensor(), {}, false);
  EXPECT_TRUE(all_close(out[0], f.sequence, 0, 1e-6));
  EXPECT_TRUE(all_close(out[1], index_select(b.sequence, 1, std::vector<int64_t>{5, 4, 3, 2, 1, 0}), 0, 1e-6));
  EXPECT_TRUE(all_close(out[2], f.h, 0, 1e-6));
  EXPECT_TRUE(all_close(out[3], f.c, 0, 1e-6));
  EXPECT_TRUE(all_close(out[4], b.h, 0, 1e-6));
  EXPECT_TRUE(all_close(out[5], b.c, 0, 1e-6));
  // The backward direction's step 0 output is its final state (it reads x[0] last).
  EXPECT_TRUE(all_close(reshape(slice(out[1], 1, 0, 1), Shape{3, 5}), b.h, 0, 1e-6));
  std::ostringstream s;
  m.summary(s);
  EXPECT_NE(s.str().find("(None, 5)]"), std::string::npos) << s.str();
}

// Predicting on two threads with gradients off, the directions run side by side, a core each:
// the same outputs and states, in the same order, as one after the other (gradients on), at
// batch 1 (the LSTM in kernels/lstm_one.cpp's loops) and 3, for an LSTM and a GRU.
TEST(Bidirectional, DirectionsSideBySideMatchOneAfterTheOther) {
  const int before = get_num_threads();
  set_num_threads(2);
  Generator gen(13);
  for (bool lstm : {true, false})
    for (int64_t n : {1, 3}) {
      const Tensor x = Tensor::randn({n, 7, 5}, gen);
      KerasTensor in = Input({7, 5});
      const layers::Recurrent::Options o{.units = 64, .return_sequences = true, .return_state = true};
      KerasTensor y = lstm ? Bidirectional(LSTM(o))(in) : Bidirectional(GRU(o))(in);
      Model m({in}, y.outputs(), "sides");
      const std::vector<Tensor> one_after = m.call(std::vector<Tensor>{x});  // gradients on: in turn
      NoGradGuard no_grad;
      const std::vector<Tensor> side_by_side = m.call(std::vector<Tensor>{x});
      ASSERT_EQ(side_by_side.size(), one_after.size());
      for (size_t k = 0; k < side_by_side.size(); ++k)
        EXPECT_TRUE(all_close(side_by_side[k], one_after[k], 1e-5, 1e-6))
            << (lstm ? "LSTM" : "GRU") << " batch " << n << " output " << k;
    }
  set_num_threads(before);
}

// A post-padded sequence with its mask gives what the unpadded sequence gives: the forward
// direction stops at the last real step, the backward one starts there.
TEST(Bidirectional, MaskedPaddingIsAsIfAbsent) {
  Generator gen(9);
  const Tensor x = Tensor::randn({1, 6, 3}, gen);
  auto bi = std::make_shared<Bidirectional>(LSTM({.units = 4}));
  bi->build(Shape{6, 3}, gen);
  const Tensor mask = Tensor::from({1, 1, 1, 1, 0, 0}, Shape{1, 6});
  NoGradGuard no_grad;
  const std::vector<Tensor> ins{x}, masks{mask};
  const Tensor masked = bi->call_all(ins, masks, false).values.at(0);
  const Tensor trimmed = bi->call(slice(x, 1, 0, 4), false);
  EXPECT_TRUE(all_close(masked, trimmed, 1e-5, 1e-6));
  EXPECT_FALSE(all_close(bi->call(x, false), trimmed, 1e-5, 1e-6));  // without the mask the padding counts
  // The mask goes on with the sequence and stops with the last output.
  auto seq = std::make_shared<Bidirectional>(GRU({.units = 2, .return_sequences = true}));
  seq->build(Shape{6, 3}, gen);
  EXPECT_TRUE(all_close(seq->call_all(ins, masks, false).masks.at(0), mask, 0, 0));
  EXPECT_FALSE(bi->call_all(ins, masks, false).masks.at(0).defined());
}

TEST(Bidirectional, KerasParamsConfigAndSaveLoad) {
  manual_seed(3);
  Sequential m;
  m.add(layers::Bidirectional(LSTM({.units = 64, .return_sequences = true, .input_shape = Shape{20, 128}})));
  m.add(layers::Bidirectional(LSTM({.units = 64})));
  m.add(layers::Dense(1, "sigmoid"));
  m.build(Shape{20, 128});
  // keras.io's IMDB bidirectional LSTM, after its Embedding: 98,816 + 98,816 + 129.
  EXPECT_EQ(m.layers()[0]->count_params(), 98816);  // 2 * 4 * 64 * (128 + 64 + 1)
  EXPECT_EQ(m.layers()[1]->count_params(), 98816);
  EXPECT_EQ(m.count_params(), 197761);
  const Json c = m.layers()[0]->config();
  EXPECT_EQ(c["merge_mode"], "concat");
  EXPECT_EQ(c["layer"]["config"]["name"], "forward_lstm");
  EXPECT_EQ(c["backward_layer"]["config"]["go_backwards"], true);
  // Keras 2 writes the wrapped layer under its own name and no backward layer.
  Json k2 = {{"name", "bidi"}, {"trainable", true}, {"merge_mode", "ave"},
             {"layer", {{"class_name", "GRU"}, {"config", {{"name", "gru_7"}, {"units", 3}, {"reset_after", false}}}}}};
  auto back = std::dynamic_pointer_cast<Bidirectional>(layer_from_config("Bidirectional", k2));
  ASSERT_TRUE(back);
  EXPECT_EQ(back->forward_layer().name(), "forward_gru_7");
  EXPECT_EQ(back->backward_layer().name(), "backward_gru_7");
  EXPECT_TRUE(back->backward_layer().options().go_backwards);
  EXPECT_FALSE(back->backward_layer().options().reset_after);
  EXPECT_EQ(back->merge_mode(), "ave");
  // Through a file: the same predictions.
  const std::string path = (std::filesystem::temp_directory_path() / "lamina_bidirectional.safetensors").string();
  Generator gen(4);
  const Tensor x = Tensor::randn({2, 20, 128}, gen);
  m.save(path);
  Sequential loaded = Sequential::load(path);
  std::remove(path.c_str());
  EXPECT_TRUE(all_close(loaded.predict(x), m.predict(x), 0, 1e-6));
}

TEST(Bidirectional, Errors) {
  EXPECT_NE(error_of<ValueError>([] { Bidirectional(layers::Dense(3)); }).find("wraps a recurrent layer"),
            std::string::npos);
  EXPECT_NE(error_of<ValueError>([] { Bidirectional(LSTM({.units = 3}), {.merge_mode = "max"}); }).find("merge_mode"),
            std::string::npos);
  EXPECT_NE(error_of<ValueError>([] {
              Bidirectional(LSTM({.units = 3}), {.backward_layer = std::make_shared<LSTM>(LSTM::Options{.units = 3})});
            }).find("opposite go_backwards"),
            std::string::npos);
  auto narrow = std::make_shared<LSTM>(LSTM::Options{.units = 2, .go_backwards = true});
  Bidirectional sum(LSTM({.units = 3}), {.merge_mode = "sum", .backward_layer = narrow});
  EXPECT_NE(error_of<ShapeError>([&] { (void)sum.output_shape(Shape{4, 2}); }).find("needs both directions' outputs"),
            std::string::npos);
  Bidirectional ok(LSTM({.units = 3}));
  EXPECT_NE(error_of<ShapeError>([&] { (void)ok.call(Tensor::zeros({2, 3}), false); }).find("LSTM 'forward_lstm' expects input (timesteps, features) per sample"),
            std::string::npos);
}

}  // namespace
}  // namespace lamina
