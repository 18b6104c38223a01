// bench_micro: Google Benchmark of each op of the bench's MLPs (and each layer of LeNet),
// forward and forward + backward, at the workloads' shapes, on 1 and 2 threads, through the
// public API (ops, losses, optimizers, Sequential), and of the two matmul paths (matmul_path,
// the internal kernels). Shows where a training step's time goes; the side-by-side with libtorch
// is bench_compare's job.
//   build/bench/bench_micro --benchmark_min_time=0.05 [--benchmark_filter=linear]
// M = batch, K = input features, N = units, T = threads.
#include <benchmark/benchmark.h>

#include <lamina/lamina.hpp>

#include "kernels/matmul.hpp"  // the two matmul paths (matmul_path)

using namespace lamina;

namespace {

Generator gen(7);

// Zeroes accumulated gradients the way fit does between steps (buffers kept).
void zero_grads(std::initializer_list<const Tensor*> ts) {
  for (const Tensor* t : ts)
    if (t->grad().defined()) t->grad().fill_(0.f);
}

void set_threads(benchmark::State& state, int64_t arg) { set_num_threads(static_cast<int>(state.range(arg))); }

// matmul (M, K) @ (K, N), forward only, no graph. At 1024^3 on one thread this is the peak
// that bench_compare's bound divides by.
void matmul_forward(benchmark::State& state) {
  const int64_t m = state.range(0), k = state.range(1), n = state.range(2);
  set_threads(state, 3);
  const Tensor a = Tensor::randn({m, k}, gen), b = Tensor::randn({k, n}, gen);
  NoGradGuard no_grad;
  matmul(a, b);  // warm-up: primitive creation, first-touch page faults
  for (auto _ : state) benchmark::DoNotOptimize(matmul(a, b).data());
  state.counters["FLOP/s"] = benchmark::Counter(2.0 * m * k * n, benchmark::Counter::kIsIterationInvariantRate);
}

// The two matmul paths on one product, one thread: range(5) 0 = oneDNN (primitive cached), 1 =
// small_matmul (our loops). Where small_matmul wins sets kSmallMatmulFlops (kernels/matmul.cpp).
void matmul_path(benchmark::State& state) {
  const int64_t m = state.range(0), k = state.range(1), n = state.range(2);
  const bool ta = state.range(3) != 0, tb = state.range(4) != 0;
  using Matmul = void (*)(const float*, const float*, float*, int64_t, int64_t, int64_t, bool, bool, bool,
                          const float*, kernels::Eltwise);
  const Matmul kernel = state.range(5) ? Matmul{kernels::small_matmul} : Matmul{kernels::onednn_matmul};
  set_num_threads(1);
  const Tensor a = Tensor::randn(ta ? Shape{k, m} : Shape{m, k}, gen), b = Tensor::randn(tb ? Shape{n, k} : Shape{k, n}, gen);
  Tensor c = Tensor::empty({m, n});
  kernel(a.data(), b.data(), c.data(), m, k, n, ta, tb, false, nullptr, kernels::Eltwise::none);  // warm-up
  for (auto _ : state) {
    kernel(a.data(), b.data(), c.data(), m, k, n, ta, tb, false, nullptr, kernels::Eltwise::none);
    benchmark::DoNotOptimize(c.data());
  }
  state.counters["FLOP/s"] = benchmark::Counter(2.0 * m * k * n, benchmark::Counter::kIsIterationInvariantRate);
}

// linear x (M, K) @ w (K, N) + b (N), the affine part of Dense. range(3): fwd + bwd, range(4):
// x needs its gradient (every layer but the first).
void linear_op(benchmark::State& state) {
  const int64_t m = state.range(0), k = state.range(1), n = state.range(2);
  const bool backward = state.range(3) != 0, dx = state.range(4) != 0;
  set_threads(state, 5);
  Tensor x = Tensor::randn({m, k}, gen);
  Tensor w = Tensor::randn({k, n}, gen, 0.f, 0.05f).requires_grad_(backward);
  Tensor b = Tensor::zeros({n}).requires_grad_(backward);
  if (backward && dx) x.requires_grad_();
  const Tensor dy = Tensor::ones({m, n});
  auto step = [&] {
    if (!backward) {
      NoGradGuard no_grad;
      benchmark::DoNotOptimize(linear(x, w, b).data());
      return;
    }
    zero_grads({&x, &w, &b});
    linear(x, w, b).backward(dy);
  };
  step();  // warm-up
  for (auto _ : state) step();
  const double passes = !backward ? 1 : dx ? 3 : 2;  // y; + dW; + dx
  state.counters["FLOP/s"] = benchmark::Counter(passes * 2.0 * m * k * n, benchmark::Counter::kIsIterationInvariantRate);
}

// relu on (M, N), forward + backward.
void relu_op(benchmark::State& state) {
  set_threads(state, 2);
  Tensor x = Tensor::randn({state.range(0), state.range(1)}, gen).requires_grad_();
  const Tensor dy = Tensor::ones(x.shape());
  auto step = [&] {
    zero_grads({&x});
    relu(x).backward(dy);
  };
  step();  // warm-up
  for (auto _ : state) step();
}

// sparse_categorical_crossentropy from logits (M, C) to a scalar, forward + backward.
void sparse_ce_op(benchmark::State& state) {
  const int64_t m = state.range(0), c = state.range(1);
  set_threads(state, 2);
  Tensor logits = Tensor::randn({m, c}, gen).requires_grad_();
  std::vector<float> labels(static_cast<size_t>(m));
  for (size_t i = 0; i < labels.size(); ++i) labels[i] = static_cast<float>(gen.below(static_cast<uint64_t>(c)));
  const Tensor y = Tensor::from(labels, {m});
  auto step = [&] {
    zero_grads({&logits});
    sparse_categorical_crossentropy(y, logits, /*from_logits=*/true).backward();
  };
  step();  // warm-up
  for (auto _ : state) step();
}

// The weights of an MLP with these widths, gradients filled (by a backward of their sum).
std::vector<Tensor> mlp_params(std::initializer_list<int64_t> units) {
  std::vector<Tensor> ps;
  const std::vector<int64_t> u(units);
  for (size_t l = 1; l < u.size(); ++l) {
    ps.push_back(Tensor::randn({u[l - 1], u[l]}, gen, 0.f, 0.05f).requires_grad_());
    ps.push_back(Tensor::zeros({u[l]}).requires_grad_());
  }
  for (const Tensor& p : ps) sum(p).backward();
  return ps;
}

// Adam's step over every parameter of mnist-mlp (101,770) or mnist-mlp-wide (669,706).
void adam_step(benchmark::State& state) {
  set_threads(state, 1);
  const std::vector<Tensor> ps = state.range(0) == 0 ? mlp_params({784, 128, 10}) : mlp_params({784, 512, 512, 10});
  int64_t count = 0;
  for (const Tensor& p : ps) count += p.numel();
  state.counters["params"] = static_cast<double>(count);
  Adam adam({.learning_rate = 1e-3f, .epsilon = 1e-7f});
  adam.step(ps);  // warm-up: creates the moment slots
  for (auto _ : state) adam.step(ps);
  state.SetItemsProcessed(state.iterations() * count);
}

// Times fit's step on `model` (compiled with Adam and sparse CE from logits here) at `batch`
// random samples of `sample` shape: zero the gradients, forward, loss, backward, Adam step.
void time_training_step(benchmark::State& state, Model& model, int64_t batch, const Shape& sample) {
  model.compile(Adam({.learning_rate = 1e-3f, .epsilon = 1e-7f}),
                losses::SparseCategoricalCrossentropy({.from_logits = true}));
  if (!model.built()) model.build(sample);
  std::vector<int64_t> dims{batch};
  dims.insert(dims.end(), sample.begin(), sample.end());
  const Tensor x = Tensor::rand(Shape(dims), gen);
  std::vector<float> labels(static_cast<size_t>(batch));
  for (float& l : labels) l = static_cast<float>(gen.below(10));
  const Tensor y = Tensor::from(labels, {batch});
  const std::vector<Tensor> params = model.trainable_weights();
  auto step = [&] {
    for (const Tensor& p : params)
      if (p.grad().defined()) p.grad().fill_(0.f);
    Tensor loss = model.loss()(y, model.call(x, true));
    loss.backward();
    model.optimizer().step(params);
    benchmark::DoNotOptimize(loss.item());
  };
  step();  // warm-up: primitives, gradient buffers, optimizer slots
  for (auto _ : state) step();
  state.SetItemsProcessed(state.iterations() * batch);
}

// One training step of mnist-mlp (784-128-10, batch 32) or mnist-mlp-wide (784-512-512-10,
// batch 128), as fit runs it.
void train_step(benchmark::State& state) {
  const bool wide = state.range(0) != 0;
  set_threads(state, 1);
  manual_seed(2);
  Sequential model = wide ? Sequential({layers::Flatten({.input_shape = Shape{28, 28}}), layers::Dense(512, "relu"),
                                        layers::Dense(512, "relu"), layers::Dense(10)})
                          : Sequential({layers::Flatten({.input_shape = Shape{28, 28}}), layers::Dense(128, "relu"),
                                        layers::Dense(10)});
  time_training_step(state, model, wide ? 128 : 32, Shape{28, 28});
}

// LeNet as bench_lamina builds it (Reshape, Conv 6@5x5 same relu, MaxPool, Conv 16@5x5 relu,
// MaxPool, Flatten, Dense 120 relu, 84 relu, 10), built for (28, 28).
Sequential lenet_model() {
  manual_seed(2);
  Sequential m({layers::Reshape({.target_shape = Shape{28, 28, 1}, .input_shape = Shape{28, 28}}),
                layers::Conv2D({.filters = 6, .kernel_size = 5, .padding = Padding::same, .activation = "relu"}),
                layers::MaxPooling2D({.pool_size = 2}), layers::Conv2D(16, 5, "relu"),
                layers::MaxPooling2D({.pool_size = 2}), layers::Flatten(), layers::Dense(120, "relu"),
                layers::Dense(84, "relu"), layers::Dense(10)});
  m.build(Shape{28, 28});
  return m;
}

// One layer of lenet-mnist's step at batch 64, range(0) its index: forward in training mode
// (range(1) = 0), or forward and backward to its weights and (but for the first layers) its input
// (range(1) = 1), on the input the layers before it make. Where LeNet's step goes, layer by layer.
void lenet_layer(benchmark::State& state) {
  const auto index = static_cast<size_t>(state.range(0));
  const bool backward = state.range(1) != 0;
  set_threads(state, 2);
  Sequential m = lenet_model();
  Tensor x = Tensor::rand({64, 28, 28}, gen);
  {
    NoGradGuard no_grad;
    for (size_t i = 0; i < index; ++i) x = m.layers()[i]->call(x, true);
  }
  x = x.clone();
  if (backward && index > 1) x.requires_grad_();  // the first conv's input is the data
  Layer& layer = *m.layers()[index];
  std::vector<Tensor> ws;
  for (const auto& w : layer.weights()) ws.push_back(w.value);
  auto step = [&] {
    if (!backward) {
      NoGradGuard no_grad;
      benchmark::DoNotOptimize(layer.call(x, true).data());
      return;
    }
    for (const Tensor& w : ws)
      if (w.grad().defined()) w.grad().fill_(0.f);
    if (x.grad().defined()) x.grad().fill_(0.f);
    Tensor y = layer.call(x, true);
    y.backward(Tensor::ones(y.shape()));
  };
  step();  // warm-up
  state.SetLabel(layer.class_name() + " " + x.shape().str());
  for (auto _ : state) step();
}

// A whole lenet-mnist step at batch 64, as train_step does for the MLPs.
void lenet_step(benchmark::State& state) {
  set_threads(state, 0);
  Sequential model = lenet_model();
  time_training_step(state, model, 64, Shape{28, 28});
}

// Registers args + {T} for T = 1 and 2 (the thread count is always the last argument).
void threads_1_2(benchmark::internal::Benchmark* b, std::vector<int64_t> args) {
  for (int64_t t : {1, 2}) {
    std::vector<int64_t> a = args;
    a.push_back(t);
    b->Args(a);
  }
}

}  // namespace

BENCHMARK(matmul_forward)->ArgNames({"M", "K", "N", "T"})->Args({1024, 1024, 1024, 1})->Args({1024, 1024, 1024, 2})
    ->Unit(benchmark::kMillisecond);

// digits-mlp (batch 128: 64 -> 64 -> 10) and mnist-mlp (batch 32: 784 -> 128 -> 10), forward,
// dX (trans_b) and dW (trans_a) products, a batch-1 prediction, LeNet's dense layer.
BENCHMARK(matmul_path)->ArgNames({"M", "K", "N", "ta", "tb", "small"})->Apply([](benchmark::internal::Benchmark* b) {
  for (std::vector<int64_t> s : std::vector<std::vector<int64_t>>{
           {128, 64, 64, 0, 0}, {128, 64, 10, 0, 0}, {128, 10, 64, 0, 1}, {64, 128, 64, 1, 0}, {64, 128, 10, 1, 0},
           {32, 128, 10, 0, 0}, {32, 10, 128, 0, 1}, {128, 32, 10, 1, 0}, {32, 784, 128, 0, 0}, {784, 32, 128, 1, 0},
           {1, 784, 128, 0, 0}, {64, 400, 120, 0, 0}})
    for (int64_t small : {0, 1}) {
      s.push_back(small);
      b->Args(s);
      s.pop_back();
    }
});
BENCHMARK(linear_op)->ArgNames({"M", "K", "N", "bwd", "dx", "T"})->Apply([](benchmark::internal::Benchmark* b) {
  for (int64_t bwd : {0, 1}) {
    // mnist-mlp
    threads_1_2(b, {32, 784, 128, bwd, 0});
    threads_1_2(b, {32, 128, 10, bwd, 1});
    // mnist-mlp-wide
    threads_1_2(b, {128, 784, 512, bwd, 0});
    threads_1_2(b, {128, 512, 512, bwd, 1});
    threads_1_2(b, {128, 512, 10, bwd, 1});
  }
})->Unit(benchmark::kMicrosecond);

BENCHMARK(relu_op)->ArgNames({"M", "N", "T"})->Apply([](benchmark::internal::Benchmark* b) {
  threads_1_2(b, {32, 128});
  threads_1_2(b, {128, 512});
})->Unit(benchmark::kMicrosecond);

BENCHMARK(sparse_ce_op)->ArgNames({"M", "C", "T"})->Apply([](benchmark::internal::Benchmark* b) {
  threads_1_2(b, {32, 10});
  threads_1_2(b, {128, 10});
})->Unit(benchmark::kMicrosecond);

// range(0): 0 mnist-mlp, 1 mnist-mlp-wide.
BENCHMARK(adam_step)->ArgNames({"wide", "T"})->Apply([](benchmark::internal::Benchmark* b) {
  threads_1_2(b, {0});
  threads_1_2(b, {1});
})->Unit(benchmark::kMicrosecond);

BENCHMARK(train_step)->ArgNames({"wide", "T"})->Apply([](benchmark::internal::Benchmark* b) {
  threads_1_2(b, {0});
  threads_1_2(b, {1});
})->Unit(benchmark::kMicrosecond);

BENCHMARK(lenet_layer)->ArgNames({"layer", "bwd", "T"})->Apply([](benchmark::internal::Benchmark* b) {
  threads_1_2(b, {0, 0});  // Reshape of the data: nothing to differentiate
  for (int64_t layer = 1; layer < 9; ++layer)
    for (int64_t bwd : {0, 1}) threads_1_2(b, {layer, bwd});
})->Unit(benchmark::kMicrosecond);

BENCHMARK(lenet_step)->ArgNames({"T"})->Arg(1)->Arg(2)->Unit(benchmark::kMicrosecond);

BENCHMARK_MAIN();
