// The recurrent op (ops::rnn): oneDNN path and composed reference against PyTorch
// (tests/fixtures/make_fixtures_rnn.py), against each other, and against finite differences.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdio>
#include <sstream>
#include <string>
#include <vector>

#include "test_util.hpp"

namespace lamina {
namespace {

using testing::all_close;
using testing::gradcheck;

struct Case {
  const char* fixture;
  RnnCell cell;
  bool reverse;
  FusedActivation activation;
};

const Case kCases[] = {
    {"rnn_lstm", RnnCell::lstm, false, FusedActivation::tanh},
    {"rnn_lstm_reverse", RnnCell::lstm, true, FusedActivation::tanh},
    {"rnn_gru", RnnCell::gru_reset_after, false, FusedActivation::tanh},
    {"rnn_gru_reverse", RnnCell::gru_reset_after, true, FusedActivation::tanh},
    {"rnn_gru_before", RnnCell::gru, false, FusedActivation::tanh},
    {"rnn_simple", RnnCell::simple, false, FusedActivation::tanh},
    {"rnn_simple_relu", RnnCell::simple, false, FusedActivation::relu},
    {"rnn_lstm_masked", RnnCell::lstm, false, FusedActivation::tanh},
    {"rnn_gru_masked", RnnCell::gru_reset_after, false, FusedActivation::tanh},
};

const char* kInputs[] = {"x", "kernel", "recurrent_kernel", "bias", "h0", "c0"};

// Runs one fixture through the op (reference path or not) and compares outputs and gradients.
void expect_matches_fixture(const Case& c, bool reference) {
  const auto f = testing::load_fixture(c.fixture);
  std::map<std::string, Tensor> in;
  for (const char* name : kInputs)
    if (f.count(name)) in[name] = f.at(name).clone().requires_grad_();
  RnnOptions o{.reverse = c.reverse, .activation = {c.activation, {}}, .reference = reference};
  if (f.count("mask")) o.mask = f.at("mask");
  const RnnResult r = rnn(c.cell, in["x"], in["kernel"], in["recurrent_kernel"], in["bias"], in["h0"],
                          in.count("c0") ? in["c0"] : Tensor(), o);
  const std::string what = std::string(c.fixture) + (reference ? " (reference)" : " (oneDNN)");
  EXPECT_TRUE(all_close(r.sequence, f.at("y"), 1e-4, 1e-5)) << what << " sequence";
  EXPECT_TRUE(all_close(r.h, f.at("h"), 1e-4, 1e-5)) << what << " h";
  Tensor loss = sum(r.sequence * f.at("dy")) + sum(r.h * f.at("dh"));
  if (f.count("c")) {
    ASSERT_TRUE(r.c.defined()) << what;
    EXPECT_TRUE(all_close(r.c, f.at("c"), 1e-4, 1e-5)) << what << " c";
    loss = loss + sum(r.c * f.at("dc"));
  } else {
    EXPECT_FALSE(r.c.defined()) << what;
  }
  loss.backward();
  for (const auto& [name, t] : in) {
    ASSERT_TRUE(t.grad().defined()) << what << ": no gradient for " << name;
    EXPECT_TRUE(all_close(t.grad(), f.at("d" + name), 1e-4, 1e-5)) << what << " d" << name;
  }
}

TEST(Rnn, MatchesPyTorchOnOneDnn) {
  for (const Case& c : kCases)
    if (!testing::load_fixture(c.fixture).count("mask")) expect_matches_fixture(c, false);
}

TEST(Rnn, ReferenceMatchesPyTorch) {
  for (const Case& c : kCases) expect_matches_fixture(c, true);
}

// Random inputs for a cell: x (N, T, I), kernel, recurrent kernel, bias, h0[, c0].
std::vector<Tensor> random_inputs(RnnCell cell, int64_t n, int64_t t, int64_t i, int64_t u, uint64_t seed) {
  Generator gen(seed);
  const int64_t g = cell == RnnCell::lstm ? 4 : cell == RnnCell::simple ? 1 : 3;
  std::vector<Tensor> v = {Tensor::randn({n, t, i}, gen), Tensor::randn({i, g * u}, gen, 0.f, 0.5f),
                           Tensor::randn({u, g * u}, gen, 0.f, 0.5f),
                           cell == RnnCell::gru_reset_after ? Tensor::randn({2, g * u}, gen, 0.f, 0.3f)
                                                            : Tensor::randn({g * u}, gen, 0.f, 0.3f),
                           Tensor::randn({n, u}, gen, 0.f, 0.5f)};
  if (cell == RnnCell::lstm) v.push_back(Tensor::randn({n, u}, gen, 0.f, 0.5f));
  return v;
}

// Every output of the op in one tensor, so a gradcheck or comparison covers them all.
Tensor all_outputs(const RnnResult& r) {
  std::vector<Tensor> parts = {reshape(r.sequence, {-1}), reshape(r.h, {-1})};
  if (r.c.defined()) parts.push_back(reshape(r.c, {-1}));
  return concat(parts, 0);
}

testing::Fn op(RnnCell cell, RnnOptions o = {}) {
  return [cell, o](const std::vector<Tensor>& in) {
    return all_outputs(rnn(cell, in[0], in[1], in[2], in[3], in[4], in.size() > 5 ? in[5] : Tensor(), o));
  };
}

const RnnCell kCells[] = {RnnCell::simple, RnnCell::lstm, RnnCell::gru, RnnCell::gru_reset_after};

TEST(Rnn, GradcheckEveryCell) {
  for (RnnCell cell : kCells)
    for (bool reverse : {false, true})
      EXPECT_TRUE(gradcheck(op(cell, {.reverse = reverse}), random_inputs(cell, 2, 3, 3, 2, 7)))
          << "cell " << static_cast<int>(cell) << (reverse ? " reversed" : "");
}

// oneDNN 2.6's LSTM backward got the recurrent kernel's gradient wrong (max error 0.2) when the
// initial states were left out of the primitive; the op always passes them. Zero (undefined)
// initial states and a longer sequence make that gradient matter.
TEST(Rnn, LstmRecurrentKernelGradientWithoutInitialStates) {
  auto in = random_inputs(RnnCell::lstm, 2, 6, 3, 3, 11);
  testing::Fn fn = [](const std::vector<Tensor>& v) {
    return all_outputs(rnn(RnnCell::lstm, v[0], v[1], v[2], v[3]));
  };
  EXPECT_TRUE(gradcheck(fn, {in[0], in[1], in[2], in[3]}));
}

// The two paths agree on a larger shape, forward and every gradient.
TEST(Rnn, OneDnnMatchesReference) {
  for (RnnCell cell : kCells)
    for (bool reverse : {false, true}) {
      const auto in = random_inputs(cell, 5, 7, 6, 8, 3);
      std::vector<Tensor> grads[2];
      Tensor outs[2];
      for (int ref = 0; ref < 2; ++ref) {
        std::vector<Tensor> v;
        for (const Tensor& t : in) v.push_back(t.clone().requires_grad_());
        outs[ref] = op(cell, {.reverse = reverse, .reference = ref == 1})(v);
        outs[ref].backward(Tensor::ones(outs[ref].shape()));
        for (const Tensor& t : v) grads[ref].push_back(t.grad());
      }
      const std::string what = "cell " + std::to_string(static_cast<int>(cell)) + (reverse ? " reversed" : "");
      EXPECT_TRUE(all_close(outs[0], outs[1], 1e-4, 1e-5)) << what;
      for (size_t k = 0; k < in.size(); ++k)
        EXPECT_TRUE(all_close(grads[0][k], grads[1][k], 1e-4, 1e-4)) << what << " gradient " << k;
    }
}

// Inference (no gradient) splits the batch over the threads (kernels/rnn.cpp), each running the
// one-thread primitive on its rows: the sequence and the final states match the naive loops, on
// 1 and 3 threads, with a batch that does not divide evenly.
TEST(Rnn, InferenceSplitOverThreadsMatchesReference) {
  const int before = get_num_threads();
  for (RnnCell cell : kCells)
    for (int threads : {1, 3}) {
      set_num_threads(threads);
      const auto in = random_inputs(cell, 7, 5, 6, 8, 11);
      const NoGradGuard no_grad;
      const Tensor fast = op(cell, {})(in), naive = op(cell, {.reference = true})(in);
      EXPECT_TRUE(all_close(fast, naive, 1e-4, 1e-5)) << "cell " << static_cast<int>(cell) << " on " << threads;
    }
  set_num_threads(before);
}

// An LSTM on one sequence runs in our own loops instead (kernels/lstm_one.cpp, on a CPU with
// AVX-512): on one core when its recurrent kernel is 1 MB at most, up to 256 units (16: a product
// of single vectors; 48: a panel of 8 vectors and 4 single ones; 64 and 128 whole panels; 144
// panels and single vectors), its units split over the threads when each gets 64 or more: 144
// (blocks of 64 and 80 on two threads and on three), 256 (128 each on two, a whole panel of the
// product; 80, 80 and 96 on three) and 272 (oneDNN on one thread: a kernel of 1.2 MB). All
// against the naive loops.
TEST(Rnn, LstmOnOneSequenceSplitOverUnitsMatchesReference) {
  const int before = get_num_threads();
  for (int64_t units : {16, 48, 64, 128, 144, 256, 272})
    for (int threads : {1, 2, 3}) {
      set_num_threads(threads);
      const auto in = random_inputs(RnnCell::lstm, 1, 9, 6, units, 12);
      const NoGradGuard no_grad;
      const Tensor fast = op(RnnCell::lstm, {})(in), naive = op(RnnCell::lstm, {.reference = true})(in);
      // Each gate sums up to 256 products a step over 9 steps: 3e-5 apart at most (in the Debug
      // build; a gate mixed up is 0.1 off).
      EXPECT_TRUE(all_close(fast, naive, 1e-4, 1e-4)) << units << " units on " << threads << " threads";
    }
  set_num_threads(before);
}

// Only the final cell state used: its gradient still reaches everything through the sequence's
// backward. No bias and no initial states: zeros, and no gradient to ask for.
TEST(Rnn, GradientThroughFinalCellStateAlone) {
  const auto in = random_inputs(RnnCell::lstm, 2, 4, 3, 3, 5);
  testing::Fn fn = [](const std::vector<Tensor>& v) { return rnn(RnnCell::lstm, v[0], v[1], v[2], Tensor()).c; };
  EXPECT_TRUE(gradcheck(fn, {in[0], in[1], in[2]}));
}

TEST(Rnn, MaskedReferenceGradcheck) {
  const Tensor mask = Tensor::from({{1, 1, 0}, {0, 1, 1}});
  for (RnnCell cell : kCells)
    EXPECT_TRUE(gradcheck(op(cell, {.reverse = true, .mask = mask}), random_inputs(cell, 2, 3, 2, 2, 9),
                          {.check = {true, true, true, true, true, true}}))
        << "cell " << static_cast<int>(cell);
}

Tensor step_of(const Tensor& seq, int64_t t) { return reshape(slice(seq, 1, t, t + 1), {seq.dim(0), seq.dim(2)}); }

// An all-ones mask changes nothing; recurrent dropout and other activations take the reference.
TEST(Rnn, ReferenceOptions) {
  const auto in = random_inputs(RnnCell::gru_reset_after, 3, 4, 2, 3, 2);
  NoGradGuard no_grad;
  const auto plain = rnn(RnnCell::gru_reset_after, in[0], in[1], in[2], in[3], in[4]);
  const auto ones = rnn(RnnCell::gru_reset_after, in[0], in[1], in[2], in[3], in[4], Tensor(),
                        {.mask = Tensor::ones({3, 4})});
  EXPECT_TRUE(all_close(ones.sequence, plain.sequence, 1e-5, 1e-6));
  const auto kept = rnn(RnnCell::gru_reset_after, in[0], in[1], in[2], in[3], in[4], Tensor(),
                        {.recurrent_dropout = Tensor::ones({3, 3})});
  EXPECT_TRUE(all_close(kept.h, plain.h, 1e-5, 1e-6));
  // Recurrent dropout of everything: the recurrent matmul reads zeros, so the first step is the
  // one a zero h0 gives (the LSTM's cell state is not dropped).
  const auto l = random_inputs(RnnCell::lstm, 3, 4, 2, 3, 2);
  const auto dropped =
      rnn(RnnCell::lstm, l[0], l[1], l[2], l[3], l[4], l[5], {.recurrent_dropout = Tensor::zeros({3, 3})});
  const auto fresh = rnn(RnnCell::lstm, l[0], l[1], l[2], l[3], Tensor(), l[5]);
  EXPECT_TRUE(all_close(step_of(dropped.sequence, 0), step_of(fresh.sequence, 0), 1e-5, 1e-6));
  EXPECT_FALSE(all_close(step_of(dropped.sequence, 1), step_of(fresh.sequence, 1), 1e-5, 1e-6));
  // A linear SimpleRNN: h = x K + h R + b, by hand for one step.
  const auto s = random_inputs(RnnCell::simple, 2, 1, 3, 2, 4);
  const auto lin = rnn(RnnCell::simple, s[0], s[1], s[2], s[3], s[4], Tensor(),
                       {.activation = {FusedActivation::none, {}}});
  EXPECT_TRUE(all_close(lin.h, matmul(reshape(s[0], {2, 3}), s[1]) + matmul(s[4], s[2]) + s[3], 1e-5, 1e-6));
}

TEST(Rnn, Errors) {
  const auto in = random_inputs(RnnCell::lstm, 2, 3, 4, 5, 1);
  EXPECT_CONTAINS(testing::error_of<ShapeError>([&] { rnn(RnnCell::lstm, in[1], in[1], in[2], in[3]); }),
                  "x must be (batch, time, features)");
  EXPECT_CONTAINS(testing::error_of<ShapeError>([&] { rnn(RnnCell::gru, in[0], in[1], in[2], in[3]); }),
                  "recurrent_kernel must be (units, 3 * units)");
  EXPECT_CONTAINS(testing::error_of<ShapeError>([&] { rnn(RnnCell::lstm, in[0], in[2], in[2], in[3]); }),
                  "kernel must be (4, 20)");
  EXPECT_CONTAINS(testing::error_of<ShapeError>([&] { rnn(RnnCell::lstm, in[0], in[1], in[2], in[4]); }),
                  "bias must be (20)");
  EXPECT_CONTAINS(testing::error_of<ShapeError>([&] { rnn(RnnCell::lstm, in[0], in[1], in[2], in[3], in[3]); }),
                  "initial h must be (2, 5)");
  EXPECT_CONTAINS(testing::error_of<ValueError>([&] {
                    rnn(RnnCell::simple, in[0], Tensor::zeros({4, 5}), Tensor::zeros({5, 5}), Tensor(), in[4], in[5]);
                  }),
                  "only an LSTM has an initial cell state");
  EXPECT_CONTAINS(testing::error_of<ShapeError>([&] {
                    rnn(RnnCell::lstm, in[0], in[1], in[2], in[3], Tensor(), Tensor(), {.mask = Tensor::ones({2, 4})});
                  }),
                  "mask must be (2, 3)");
  EXPECT_CONTAINS(testing::error_of<ShapeError>(
                      [&] { rnn(RnnCell::lstm, Tensor::zeros({2, 0, 4}), in[1], in[2], in[3]); }),
                  "has no time step");
}

// --- the layers ------------------------------------------------------------------------------------------

using layers::GRU;
using layers::LSTM;
using layers::SimpleRNN;

void copy_weights(const Layer& from, Layer& to) {
  ASSERT_EQ(from.weights().size(), to.weights().size());
  for (size_t k = 0; k < from.weights().size(); ++k) {
    const Tensor& src = from.weights()[k].value;
    std::copy(src.data(), src.data() + src.numel(), to.weights()[k].value.data());
  }
}

TEST(RecurrentLayers, KerasWeightLayoutAndParamCounts) {
  Generator gen(1);
  LSTM lstm({.units = 64});
  lstm.build(Shape{10, 128}, gen);
  ASSERT_EQ(lstm.weights().size(), 3u);
  EXPECT_EQ(lstm.weights()[0].name, "kernel");
  EXPECT_EQ(lstm.weights()[1].name, "recurrent_kernel");
  EXPECT_EQ(lstm.weights()[2].name, "bias");
  EXPECT_EQ(lstm.weights()[0].value.shape(), (Shape{128, 256}));
  EXPECT_EQ(lstm.weights()[1].value.shape(), (Shape{64, 256}));
  EXPECT_EQ(lstm.weights()[2].value.shape(), (Shape{256}));
  EXPECT_EQ(lstm.count_params(), 49408);  // 4 * 64 * (128 + 64 + 1), as Keras' summary
  GRU gru({.units = 64});
  gru.build(Shape{10, 128}, gen);
  EXPECT_EQ(gru.weights()[2].value.shape(), (Shape{2, 192}));
  EXPECT_EQ(gru.count_params(), 37248);  // 3 * 64 * (128 + 64) + 2 * 192
  GRU gru_before({.units = 64, .reset_after = false});
  gru_before.build(Shape{10, 128}, gen);
  EXPECT_EQ(gru_before.count_params(), 37056);
  SimpleRNN simple({.units = 64, .use_bias = false});
  simple.build(Shape{10, 128}, gen);
  EXPECT_EQ(simple.count_params(), 64 * (128 + 64));
  // unit_forget_bias: the forget block of the bias starts at 1, the rest at 0.
  const float* b = lstm.weights()[2].value.data();
  for (int64_t k = 0; k < 256; ++k) EXPECT_EQ(b[k], k >= 64 && k < 128 ? 1.f : 0.f) << k;
  // The recurrent kernel is orthogonal: R R^T = I (its U rows are orthonormal).
  const Tensor& r = lstm.weights()[1].value;
  const Tensor rrt = matmul(r, transpose(r));
  EXPECT_TRUE(all_close(rrt, [] {
    Tensor eye = Tensor::zeros({64, 64});
    for (int64_t k = 0; k < 64; ++k) eye.data()[k * 65] = 1.f;
    return eye;
  }(), 0, 1e-5));
}

TEST(RecurrentLayers, OutputsMatchTheOp) {
  Generator gen(2);
  const Tensor x = Tensor::randn({3, 5, 4}, gen);
  for (bool sequences : {false, true})
    for (bool backwards : {false, true}) {
      LSTM l({.units = 6, .return_sequences = sequences, .go_backwards = backwards});
      l.build(Shape{5, 4}, gen);
      NoGradGuard no_grad;
      const Tensor y = l.call(x, false);
      const RnnResult r = rnn(RnnCell::lstm, x, l.weights()[0].value, l.weights()[1].value, l.weights()[2].value,
                              Tensor(), Tensor(), {.reverse = backwards});
      EXPECT_EQ(y.shape(), sequences ? Shape({3, 5, 6}) : Shape({3, 6}));
      EXPECT_EQ(l.output_shape(Shape{5, 4}), sequences ? Shape({5, 6}) : Shape({6}));
      EXPECT_TRUE(all_close(y, sequences ? r.sequence : r.h, 0, 0));
    }
}

// go_backwards: the sequence read right to left and returned in processing order, i.e. the same
// as a forward layer on the time-reversed input.
TEST(RecurrentLayers, GoBackwardsIsTheForwardLayerOnReversedTime) {
  Generator gen(3);
  const Tensor x = Tensor::randn({2, 4, 3}, gen);
  GRU back({.units = 5, .return_sequences = true, .go_backwards = true});
  back.build(Shape{4, 3}, gen);
  GRU fwd({.units = 5, .return_sequences = true});
  fwd.build(Shape{4, 3}, gen);
  copy_weights(back, fwd);
  NoGradGuard no_grad;
  const Tensor reversed = index_select(x, 1, std::vector<int64_t>{3, 2, 1, 0});
  EXPECT_TRUE(all_close(back.call(x, false), fwd.call(reversed, false), 0, 1e-6));
}

// dropout and recurrent_dropout act while training only; then one input mask per sample is used
// at every step (Keras 3).
TEST(RecurrentLayers, DropoutInTrainingOnly) {
  Generator gen(4);
  const Tensor x = Tensor::randn({4, 6, 5}, gen);
  SimpleRNN plain({.units = 3, .return_sequences = true});
  plain.build(Shape{6, 5}, gen);
  for (auto [rate, recurrent] : {std::pair{0.5f, 0.f}, std::pair{0.f, 0.5f}}) {
    SimpleRNN l({.units = 3, .dropout = rate, .recurrent_dropout = recurrent, .seed = 9, .return_sequences = true});
    l.build(Shape{6, 5}, gen);
    copy_weights(plain, l);
    NoGradGuard no_grad;
    EXPECT_TRUE(all_close(l.call(x, false), plain.call(x, false), 0, 0));
    EXPECT_FALSE(all_close(l.call(x, true), plain.call(x, false), 0, 1e-3));
  }
  // A training call with input dropout equals the plain layer on x times a per-sample mask of
  // 0 and 2 (rate 0.5) that is the same at every step: recover it from the first step.
  SimpleRNN l({.units = 3, .dropout = 0.5f, .seed = 9, .return_sequences = true});
  l.build(Shape{6, 5}, gen);
  copy_weights(plain, l);
  NoGradGuard no_grad;
  Generator replay = *l.generator();
  const Tensor mask = dropout(Tensor::ones({4, 5}), 0.5f, replay, true);
  const Tensor y = l.call(x, true);
  EXPECT_TRUE(all_close(y, plain.call(x * reshape(mask, {4, 1, 5}), false), 0, 1e-6));
}

TEST(RecurrentLayers, InitialStatesAsInputs) {
  Generator gen(5);
  LSTM l({.units = 3});
  l.build_for(std::vector<Shape>{{4, 2}, {3}, {3}}, gen);
  const Tensor x = Tensor::randn({2, 4, 2}, gen), h0 = Tensor::randn({2, 3}, gen), c0 = Tensor::randn({2, 3}, gen);
  NoGradGuard no_grad;
  const std::vector<Tensor> inputs = {x, h0, c0};
  const Tensor y = l.forward(inputs, false);
  const RnnResult r = rnn(RnnCell::lstm, x, l.weights()[0].value, l.weights()[1].value, l.weights()[2].value, h0, c0);
  EXPECT_TRUE(all_close(y, r.h, 0, 0));
  EXPECT_EQ(l.infer_shape(std::vector<Shape>{{4, 2}, {3}, {3}}), (Shape{3}));
  EXPECT_CONTAINS(testing::error_of<ValueError>([&] { l.infer_shape(std::vector<Shape>{{4, 2}, {3}}); }),
                  "LSTM '' takes the sequence and, optionally, its 2 initial state(s); got 2 inputs");
  EXPECT_CONTAINS(testing::error_of<ShapeError>([&] { l.infer_shape(std::vector<Shape>{{4, 2}, {3}, {4}}); }),
                  "initial state 1 must be (batch, 3), got (4) per sample");
  // run() hands out everything: the final h and c, with a mask.
  const RnnResult masked = l.run(x, Tensor::from({{1, 1, 0, 0}, {1, 1, 1, 1}}), std::vector<Tensor>{h0, c0}, false);
  EXPECT_TRUE(masked.c.defined());
  const RnnResult first_two = rnn(RnnCell::lstm, slice(x, 1, 0, 2), l.weights()[0].value, l.weights()[1].value,
                                  l.weights()[2].value, h0, c0);
  EXPECT_TRUE(all_close(slice(masked.h, 0, 0, 1), slice(first_two.h, 0, 0, 1), 1e-5, 1e-6));
  EXPECT_TRUE(all_close(slice(masked.c, 0, 0, 1), slice(first_two.c, 0, 0, 1), 1e-5, 1e-6));
}

TEST(RecurrentLayers, Errors) {
  Generator gen(6);
  LSTM l({.units = 3, .name = "lstm"});
  EXPECT_CONTAINS(testing::error_of<ShapeError>([&] { l.call(Tensor::zeros({2, 5}), false); }),
                  "LSTM 'lstm' expects input (batch, timesteps, features), got (2, 5)");
  l.build(Shape{4, 2}, gen);
  EXPECT_CONTAINS(testing::error_of<ShapeError>([&] { l.call(Tensor::zeros({2, 4, 3}), false); }),
                  "LSTM 'lstm' expects input (timesteps, 2) per sample");
  EXPECT_CONTAINS(testing::error_of<ShapeError>([&] { l.weight_specs(Shape{8}); }),
                  "LSTM 'lstm' expects input (timesteps, features) per sample, got (8)");
  EXPECT_CONTAINS(testing::error_of<ValueError>([] { GRU({.units = 2, .stateful = true, .name = "g"}); }),
                  "GRU 'g': stateful=True is not supported yet");
  EXPECT_CONTAINS(testing::error_of<ValueError>([] { SimpleRNN({.units = 0}); }), "units must be positive");
  EXPECT_CONTAINS(testing::error_of<ValueError>([] { LSTM({.units = 2, .dropout = 1.f}); }),
                  "dropout and recurrent_dropout must be in [0, 1)");
  EXPECT_CONTAINS(testing::error_of<ValueError>([] { LSTM({.units = 2, .reset_after = false}); }),
                  "reset_after is a GRU option");
  EXPECT_CONTAINS(testing::error_of<ValueError>([] {
                    SimpleRNN({.units = 2, .recurrent_activation = lamina::Activation::tanh});
                  }),
                  "a SimpleRNN has no recurrent_activation");
}

// A spec or a hand-written config leaves keys out: Keras' defaults apply (tanh, not linear,
// which let an IMDB BiLSTM's activations grow without bound), and an explicit null is linear.
TEST(RecurrentLayers, AbsentActivationIsKerasDefault) {
  for (const char* cls : {"SimpleRNN", "LSTM", "GRU"}) {
    auto l = std::dynamic_pointer_cast<layers::Recurrent>(layer_from_config(cls, {{"name", "r"}, {"units", 3}}));
    ASSERT_TRUE(l) << cls;
    EXPECT_EQ(l->options().activation.name(), "tanh") << cls;
    EXPECT_EQ(l->options().recurrent_activation.name(), "sigmoid") << cls;
    auto none = std::dynamic_pointer_cast<layers::Recurrent>(
        layer_from_config(cls, {{"name", "r"}, {"units", 3}, {"activation", nullptr}}));
    EXPECT_EQ(none->options().activation.name(), "linear") << cls;
  }
}

TEST(RecurrentLayers, ConfigRoundTrip) {
  LSTM l({.units = 5, .recurrent_activation = "tanh", .unit_forget_bias = false, .dropout = 0.25f, .seed = 3,
          .return_sequences = true, .go_backwards = true, .unroll = true, .name = "enc"});
  const Json c = l.config();
  EXPECT_EQ(c.at("recurrent_initializer").at("class_name"), "Orthogonal");
  EXPECT_EQ(c.at("recurrent_activation"), "tanh");
  EXPECT_FALSE(c.contains("reset_after"));
  auto back = layer_from_config("LSTM", c);
  EXPECT_EQ(back->config(), c);
  GRU g({.units = 2, .reset_after = false});
  EXPECT_EQ(layer_from_config("GRU", g.config())->config(), g.config());
  SimpleRNN s({.units = 2, .activation = "relu"});
  const Json sc = s.config();
  EXPECT_FALSE(sc.contains("recurrent_activation"));
  EXPECT_EQ(layer_from_config("SimpleRNN", sc)->config(), sc);
  // Keras 3's use_cudnn and Keras 2's implementation pick kernels only: accepted.
  Json keras = c;
  keras["use_cudnn"] = "auto";
  keras["implementation"] = 2;
  EXPECT_EQ(layer_from_config("LSTM", keras)->config(), c);
}

TEST(RecurrentLayers, SaveAndLoadThroughAModel) {
  Generator gen(8);
  Sequential ok("seq");
  ok.add(layers::LSTM({.units = 4, .return_sequences = true, .input_shape = Shape{5, 3}}));
  ok.add(layers::GRU({.units = 3, .go_backwards = true}));
  ok.add(layers::Dense({.units = 2}));
  ok.build(Shape{5, 3});
  std::ostringstream table;
  ok.summary(table);
  EXPECT_CONTAINS(table.str(), "128");  // LSTM(4) on 3 features: 4 * 4 * (3 + 4 + 1)
  const Tensor x = Tensor::randn({2, 5, 3}, gen);
  const Tensor before = ok.predict(x);
  const std::string path = ::testing::TempDir() + "rnn_model.safetensors";
  ok.save(path);
  Sequential loaded = Sequential::load(path);
  std::remove(path.c_str());
  EXPECT_TRUE(all_close(loaded.predict(x), before, 0, 0));
}

// return_state in a graph: [output, h, c]; Keras' initial_state as extra inputs; the JSON reads back.
TEST(RecurrentLayers, ReturnStateAndInitialStateInAGraph) {
  KerasTensor x = Input({5, 3}, "x");
  auto encoder = std::make_shared<LSTM>(LSTM::Options{.units = 4, .return_state = true, .name = "encoder"});
  KerasTensor enc = (*encoder)(x);
  ASSERT_EQ(enc.output_count(), 3u);
  EXPECT_EQ(enc.output(1).shape(), (Shape{4}));
  KerasTensor y = Input({2, 3}, "y");
  auto decoder = std::make_shared<LSTM>(LSTM::Options{.units = 4, .return_sequences = true, .name = "decoder"});
  KerasTensor dec = (*decoder)({y, enc.output(1), enc.output(2)});
  EXPECT_EQ(dec.shape(), (Shape{2, 4}));
  Model m({x, y}, {dec, enc.output(0)}, "seq2seq");
  Generator gen(11);
  const Tensor xs = Tensor::randn({2, 5, 3}, gen), ys = Tensor::randn({2, 2, 3}, gen);
  const std::vector<Tensor> out = m.call(std::vector<Tensor>{xs, ys});
  ASSERT_EQ(out.size(), 2u);
  const RnnResult e = encoder->run(xs, Tensor(), {}, false);
  EXPECT_TRUE(all_close(out[1], e.h, 1e-6, 1e-6));
  const RnnResult d = decoder->run(ys, Tensor(), std::vector<Tensor>{e.h, e.c}, false);
  EXPECT_TRUE(all_close(out[0], d.sequence, 1e-6, 1e-6));
  Model back = Model::from_json(m.to_json());
  back.set_weights(m.get_weights());
  EXPECT_TRUE(all_close(back.call(std::vector<Tensor>{xs, ys})[0], out[0], 1e-6, 1e-6));
}

// Marks a step real where its first feature is not 0 (as Keras' Masking(0) does), passing x on.
class MarkSteps : public Layer {
 public:
  std::string class_name() const override { return "TestRnnMarkSteps"; }
  Shape output_shape(const Shape& s) const override { return s; }
  Tensor call(const Tensor& x, bool) override { return x; }
  Tensor compute_mask(std::span<const Tensor> in, std::span<const Tensor>) const override {
    Tensor m = Tensor::empty({in[0].dim(0), in[0].dim(1)});
    for (int64_t i = 0; i < m.numel(); ++i) m.data()[i] = in[0].data()[i * in[0].dim(2)] != 0.f ? 1.f : 0.f;
    return m;
  }
};

// A mask reaching a recurrent layer in a graph skips the padded steps: a post-padded sequence
// gives what the unpadded one gives. With return_sequences the mask is passed on.
TEST(RecurrentLayers, MaskInAGraph) {
  KerasTensor x = Input({5, 3}, "x");
  auto gru = std::make_shared<GRU>(GRU::Options{.units = 4, .name = "gru"});
  Model m({x}, {(*gru)(std::make_shared<MarkSteps>()->operator()(x))}, "masked");
  Generator gen(12);
  Tensor xs = Tensor::randn({2, 5, 3}, gen);
  for (int64_t t = 3; t < 5; ++t)
    for (int64_t f = 0; f < 3; ++f) xs.data()[(0 * 5 + t) * 3 + f] = 0.f;  // sample 0: 3 real steps
  const Tensor out = m.call(std::vector<Tensor>{xs})[0];
  NoGradGuard no_grad;
  const RnnResult first = gru->run(slice(slice(xs, 0, 0, 1), 1, 0, 3), Tensor(), {}, false);
  const RnnResult second = gru->run(slice(xs, 0, 1, 2), Tensor(), {}, false);
  EXPECT_TRUE(all_close(slice(out, 0, 0, 1), first.h, 1e-5, 1e-6));
  EXPECT_TRUE(all_close(slice(out, 0, 1, 2), second.h, 1e-5, 1e-6));
  GRU seq({.units = 2, .return_sequences = true});
  const Tensor mask = Tensor::from({{1, 0}});
  EXPECT_TRUE(seq.compute_mask({}, std::vector<Tensor>{mask}).defined());
  GRU last({.units = 2});
  EXPECT_FALSE(last.compute_mask({}, std::vector<Tensor>{mask}).defined());
}

}  // namespace
}  // namespace lamina
