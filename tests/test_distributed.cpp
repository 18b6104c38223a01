// Data-parallel training on thread_group communicators (n ranks in one process, one thread each):
// N ranks with global batch B take the steps one process takes with batch B (only the order of the
// sums differs), end with bit-identical weights, and log the metrics of the whole batch; uneven
// and empty shares; SyncBatchNormalization's global statistics; resuming on another rank count.
// The same over MPI, across processes, is in tests/distributed (ctest label mpi).
#include <cstring>
#include <exception>
#include <thread>

#include "distributed/reducer.hpp"
#include "lamina/distributed.hpp"
#include "test_util.hpp"

namespace lamina {
namespace {

using testing::error_of;

struct Data {
  Tensor x, y;
};
// Three classes from a linear rule plus noise, 5 features.
Data make_data(int64_t n, uint64_t seed) {
  Generator gen(seed);
  Data d{Tensor::randn({n, 5}, gen), Tensor::empty({n})};
  for (int64_t i = 0; i < n; ++i) {
    const float* r = d.x.data() + i * 5;
    const float s = r[0] - 0.5f * r[1] + 0.3f * r[2] + 0.2f * gen.normal();
    d.y.data()[i] = s < -0.4f ? 0.f : (s < 0.4f ? 1.f : 2.f);
  }
  return d;
}

enum class Norm { none, per_rank, synchronized };

Sequential make_model(uint64_t seed, Norm norm = Norm::none) {
  manual_seed(seed);
  Sequential m({layers::Dense({.units = 16, .activation = "relu", .input_shape = Shape{5}})});
  if (norm != Norm::none) m.add(layers::BatchNormalization({.synchronized = norm == Norm::synchronized}));
  m.add(layers::Dense(3));
  m.compile(SGD({.learning_rate = 0.05, .momentum = 0.9}), losses::SparseCategoricalCrossentropy({.from_logits = true}),
            {"accuracy"});
  return m;
}

// f(rank, communicator) on n threads; rethrows the first failure.
template <class F>
void on_ranks(int n, F f) {
  auto comms = distributed::thread_group(n);
  std::vector<std::exception_ptr> errors(static_cast<size_t>(n));
  std::vector<std::thread> threads;
  for (int r = 0; r < n; ++r)
    threads.emplace_back([&, r] {
      try {
        set_num_threads(1);
        comms[static_cast<size_t>(r)]->set_timeout(20);
        f(r, comms[static_cast<size_t>(r)]);
      } catch (...) {
        errors[static_cast<size_t>(r)] = std::current_exception();
      }
    });
  for (auto& t : threads) t.join();
  for (auto& e : errors)
    if (e) std::rethrow_exception(e);
}

// max |a - b| / max |b| over every weight.
double relative_difference(const std::vector<Tensor>& a, const std::vector<Tensor>& b) {
  EXPECT_EQ(a.size(), b.size());
  double diff = 0, scale = 1e-12;
  for (size_t i = 0; i < a.size() && i < b.size(); ++i)
    for (int64_t k = 0; k < b[i].numel(); ++k) {
      diff = std::max(diff, static_cast<double>(std::fabs(a[i].data()[k] - b[i].data()[k])));
      scale = std::max(scale, static_cast<double>(std::fabs(b[i].data()[k])));
    }
  return diff / scale;
}

bool bit_identical(const std::vector<Tensor>& a, const std::vector<Tensor>& b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i)
    if (a[i].shape() != b[i].shape() ||
        std::memcmp(a[i].data(), b[i].data(), static_cast<size_t>(a[i].numel()) * sizeof(float)) != 0)
      return false;
  return true;
}

struct RankResult {
  std::vector<Tensor> weights;
  History history;
  Logs test;
  distributed::ReducerStats stats;
};

// Trains make_model(seed + rank) on n ranks (every rank but 0 starts from other weights: fit
// broadcasts rank 0's) and returns each rank's result.
std::vector<RankResult> train_on_ranks(int n, const Data& d, const FitOptions& fit, Norm norm = Norm::none,
                                       distributed::DistributedOptions options = {}) {
  std::vector<RankResult> out(static_cast<size_t>(n));
  on_ranks(n, [&](int r, const std::shared_ptr<distributed::Communicator>& comm) {
    Sequential m = make_model(7 + static_cast<uint64_t>(r), norm);
    m.distribute(comm, options);
    RankResult& res = out[static_cast<size_t>(r)];
    res.history = m.fit(d.x, d.y, fit);
    res.test = m.evaluate(d.x, d.y, {.batch_size = 13, .verbose = 0});
    res.weights = m.get_weights();
    res.stats = m.distributed_stats();
  });
  return out;
}

struct Reference {
  std::vector<Tensor> weights;
  History history;
  Logs test;
};
Reference train_alone(const Data& d, const FitOptions& fit, Norm norm = Norm::none) {
  Sequential m = make_model(7, norm == Norm::synchronized ? Norm::per_rank : norm);
  Reference ref;
  ref.history = m.fit(d.x, d.y, fit);
  ref.test = m.evaluate(d.x, d.y, {.batch_size = 13, .verbose = 0});
  ref.weights = m.get_weights();
  return ref;
}

void expect_same_training(const std::vector<RankResult>& ranks, const Reference& ref, double tol) {
  for (size_t r = 0; r < ranks.size(); ++r) {
    SCOPED_TRACE("rank " + std::to_string(r) + " of " + std::to_string(ranks.size()));
    EXPECT_LT(relative_difference(ranks[r].weights, ref.weights), tol);
    EXPECT_TRUE(bit_identical(ranks[r].weights, ranks[0].weights)) << "ranks' weights differ";
    for (const char* key : {"loss", "accuracy"}) {
      const auto& got = ranks[r].history.history.at(key);
      const auto& want = ref.history.history.at(key);
      ASSERT_EQ(got.size(), want.size()) << key;
      for (size_t e = 0; e < want.size(); ++e) EXPECT_NEAR(got[e], want[e], tol * (1 + std::fabs(want[e]))) << key << " epoch " << e;
    }
    EXPECT_NEAR(ranks[r].test.at("loss"), ref.test.at("loss"), tol);
    EXPECT_NEAR(ranks[r].test.at("accuracy"), ref.test.at("accuracy"), 1e-12);
  }
}

TEST(DataParallel, TwoAndFourRanksTakeTheStepsOfOneProcess) {
  set_num_threads(1);
  const Data d = make_data(70, 1);  // batch 16: four full batches and one of 6 (shares 3/3, 2/2/1/1)
  const FitOptions fit{.epochs = 3, .batch_size = 16, .seed = 3, .verbose = 0};
  const Reference ref = train_alone(d, fit);
  for (int n : {2, 4}) {
    SCOPED_TRACE(std::to_string(n) + " ranks");
    const std::vector<RankResult> ranks = train_on_ranks(n, d, fit);
    expect_same_training(ranks, ref, 1e-5);
    const distributed::ReducerStats& st = ranks[0].stats;
    EXPECT_EQ(st.steps, 3 * 5);
    EXPECT_EQ(st.bytes_per_step, (5 * 16 + 16 + 16 * 3 + 3) * 4);
    EXPECT_EQ(st.buckets, 1);
    EXPECT_GE(st.overlap(), 0.0);
    EXPECT_LE(st.overlap(), 1.0);
  }
}

TEST(DataParallel, SmallBucketsNoOverlapAndBatchPerRankGiveTheSameSteps) {
  set_num_threads(1);
  const Data d = make_data(64, 2);
  const Reference ref = train_alone(d, {.epochs = 2, .batch_size = 16, .seed = 5, .verbose = 0});
  // Buckets of ~10 bytes: one per weight (the reverse layer order, started while backward runs).
  const auto tiny = train_on_ranks(2, d, {.epochs = 2, .batch_size = 16, .seed = 5, .verbose = 0}, Norm::none,
                                   {.bucket_mb = 1e-5});
  expect_same_training(tiny, ref, 1e-5);
  EXPECT_EQ(tiny[0].stats.buckets, 4);
  const auto serial = train_on_ranks(2, d, {.epochs = 2, .batch_size = 16, .seed = 5, .verbose = 0}, Norm::none,
                                     {.bucket_mb = 1e-5, .overlap = false});
  expect_same_training(serial, ref, 1e-5);
  EXPECT_EQ(serial[0].stats.overlap(), 0.0);
  // batch_size 8 per rank on 2 ranks: a global batch of 16.
  const auto per_rank = train_on_ranks(2, d, {.epochs = 2, .batch_size = 8, .seed = 5, .verbose = 0}, Norm::none,
                                       {.batch_per_rank = true});
  expect_same_training(per_rank, ref, 1e-5);
}

TEST(DataParallel, ARankWithoutSamplesInAStepStillTakesIt) {
  set_num_threads(1);
  const Data d = make_data(22, 3);  // batch 3 on 4 ranks: shares 1/1/1/0; the last batch is 1 sample
  const FitOptions fit{.epochs = 1, .batch_size = 3, .seed = 1, .verbose = 0};
  expect_same_training(train_on_ranks(4, d, fit), train_alone(d, fit), 1e-5);
}

TEST(DataParallel, SyncBatchNormalizationNormalizesWithTheGlobalBatch) {
  set_num_threads(1);
  const Data d = make_data(70, 4);
  const FitOptions fit{.epochs = 2, .batch_size = 16, .seed = 2, .verbose = 0};
  // Synchronized statistics are those of the global batch: the one-process run again (the moving
  // statistics included, which are weights too).
  const Reference ref = train_alone(d, fit, Norm::synchronized);
  for (int n : {2, 3}) {
    SCOPED_TRACE(std::to_string(n) + " ranks");
    expect_same_training(train_on_ranks(n, d, fit, Norm::synchronized), ref, 1e-5);
  }
  // Ranks without samples join the statistics' collectives with nothing (batch 3 on 4 ranks).
  const FitOptions small{.epochs = 1, .batch_size = 3, .seed = 2, .verbose = 0};
  expect_same_training(train_on_ranks(4, d, small, Norm::synchronized), train_alone(d, small, Norm::synchronized), 1e-5);
  // Per-rank statistics (the default, as DDP) train differently, but the ranks still agree: the
  // moving statistics are averaged over the ranks at each epoch's end.
  const auto per_rank = train_on_ranks(2, d, fit, Norm::per_rank);
  EXPECT_TRUE(bit_identical(per_rank[0].weights, per_rank[1].weights));
  EXPECT_GT(relative_difference(per_rank[0].weights, ref.weights), 1e-4);
}

// sync_batch_norm on each rank's rows equals batch_norm on all of them: the output, the moving
// statistics, and the gradients of the global batch's mean loss (as each rank sees it: divided by
// its share of the rows, which the gradient reduction multiplies back).
TEST(DataParallel, SyncBatchNormOpMatchesBatchNormOnTheWholeBatch) {
  Generator gen(11);
  const Tensor x = Tensor::randn({7, 2, 3}, gen, 1.5f, 2.f), probe = Tensor::randn({7, 2, 3}, gen);
  const Tensor gamma0 = Tensor::randn({3}, gen), beta0 = Tensor::randn({3}, gen);
  // Reference: one batch of 7, loss = mean over samples of sum(y * probe).
  Tensor xr = x.clone().requires_grad_(), gr = gamma0.clone().requires_grad_(), br = beta0.clone().requires_grad_();
  Tensor mm = Tensor::zeros({3}), mv = Tensor::ones({3});
  Tensor yr = batch_norm(xr, gr, br, mm, mv, true, 0.9f, 1e-3f);
  (sum(yr * probe) / 7.f).backward();
  const int64_t rows[3] = {4, 0, 3};  // rank 1 has none
  std::vector<Tensor> y(3), dx(3), dgamma(3), dbeta(3), moving_mean(3);
  on_ranks(3, [&](int r, const std::shared_ptr<distributed::Communicator>& comm) {
    const auto k = static_cast<size_t>(r);
    const int64_t begin = r == 0 ? 0 : 4, n = rows[k];
    Tensor xs = slice(x, 0, begin, begin + n).clone().requires_grad_();
    Tensor g = gamma0.clone().requires_grad_(), b = beta0.clone().requires_grad_();
    Tensor m0 = Tensor::zeros({3}), v0 = Tensor::ones({3});
    Tensor ys = sync_batch_norm(xs, g, b, m0, v0, *comm, true, 0.9f, 1e-3f);
    Tensor loss = n > 0 ? sum(ys * slice(probe, 0, begin, begin + n)) / static_cast<float>(n) : sum(ys);
    loss.backward();
    y[k] = ys.clone();
    if (n > 0) dx[k] = xs.grad().clone();
    dgamma[k] = g.grad().clone();
    dbeta[k] = b.grad().clone();
    moving_mean[k] = m0.clone();
  });
  const int64_t begins[3] = {0, 4, 4};
  std::vector<float> dgamma_sum(3, 0.f), dbeta_sum(3, 0.f);
  for (size_t r = 0; r < 3; ++r) {
    const int64_t n = rows[r], b = begins[r];
    EXPECT_EQ(y[r].dim(0), n);
    for (int64_t i = 0; i < n * 6; ++i) {
      EXPECT_NEAR(y[r].data()[i], yr.data()[b * 6 + i], 1e-5) << "rank " << r;
      // dx of the global loss = w_r * (rank r's dx), w_r = n / 7.
      EXPECT_NEAR(dx[r].data()[i] * static_cast<float>(n) / 7.f, xr.grad().data()[b * 6 + i], 1e-5) << "rank " << r;
    }
    for (int c = 0; c < 3; ++c) {
      EXPECT_NEAR(moving_mean[r].data()[c], mm.data()[c], 1e-6);
      dgamma_sum[static_cast<size_t>(c)] += dgamma[r].data()[c] * static_cast<float>(n) / 7.f;
      dbeta_sum[static_cast<size_t>(c)] += dbeta[r].data()[c] * static_cast<float>(n) / 7.f;
    }
  }
  for (int c = 0; c < 3; ++c) {
    EXPECT_NEAR(dgamma_sum[static_cast<size_t>(c)], gr.grad().data()[c], 1e-5);
    EXPECT_NEAR(dbeta_sum[static_cast<size_t>(c)], br.grad().data()[c], 1e-5);
  }
}

TEST(DataParallel, ACheckpointResumesOnAnotherRankCountWithTheSameGlobalBatch) {
  set_num_threads(1);
  const Data d = make_data(48, 5);
  const FitOptions two{.epochs = 2, .batch_size = 16, .seed = 9, .verbose = 0};
  const Reference ref = train_alone(d, two);
  // One epoch on 2 ranks, a checkpoint (rank 0's), then the second epoch in one process.
  const std::string path = ::testing::TempDir() + "dp_resume.safetensors";
  on_ranks(2, [&](int r, const std::shared_ptr<distributed::Communicator>& comm) {
    Sequential m = make_model(7 + static_cast<uint64_t>(r));
    m.distribute(comm);
    m.fit(d.x, d.y, {.epochs = 1, .batch_size = 16, .seed = 9, .verbose = 0});
    if (r == 0) m.save_checkpoint(path);
  });
  Model resumed = Model::load_checkpoint(path);
  EXPECT_EQ(resumed.fit_state().ranks, 2);
  resumed.fit(d.x, d.y, {.epochs = 2, .initial_epoch = resumed.fit_state().epoch, .batch_size = 16, .verbose = 0});
  EXPECT_LT(relative_difference(resumed.get_weights(), ref.weights), 1e-5);
  // Another global batch on another rank count is another training: refused, saying why.
  Model again = Model::load_checkpoint(path);
  const std::string msg = error_of<ValueError>([&] {
    again.fit(d.x, d.y, {.epochs = 2, .initial_epoch = again.fit_state().epoch, .batch_size = 8, .verbose = 0});
  });
  EXPECT_CONTAINS(msg, "2 ranks with a global batch of 16");
}

TEST(DataParallel, AveragingOverRanksKeepsEqualValuesExact) {
  on_ranks(3, [&](int r, const std::shared_ptr<distributed::Communicator>& comm) {
    Tensor same = Tensor::from({0.1f, 1e-7f, 3.3333333f}), own = Tensor::from({static_cast<float>(r)});
    distributed::average_over_ranks(*comm, {same, own});
    EXPECT_EQ(same.data()[0], 0.1f);
    EXPECT_EQ(same.data()[1], 1e-7f);
    EXPECT_EQ(same.data()[2], 3.3333333f);
    EXPECT_EQ(own.data()[0], 1.f);
  });
}

// The hook fit's gradient reduction starts buckets from: once per leaf, when its gradient is final
// (w feeds two nodes: after the second), the first layers' leaves last.
TEST(DataParallel, GradReadyHookSeesEachLeafOnceWithItsFinalGradient) {
  Tensor w1 = Tensor::from({0.5f, -1.f}).requires_grad_(), w2 = Tensor::from({2.f, 3.f}).requires_grad_();
  Tensor x = Tensor::from({1.f, 2.f});
  Tensor h = w1 * x;
  Tensor y = sum(h * w2) + sum(w2 * w2);
  std::vector<std::pair<const TensorImpl*, std::vector<float>>> seen;
  backward(y, [&](const TensorImpl& leaf) { seen.emplace_back(&leaf, std::vector<float>(leaf.grad.data(), leaf.grad.data() + 2)); });
  ASSERT_EQ(seen.size(), 2u);
  EXPECT_EQ(seen[0].first, w2.impl());  // the later layer first
  EXPECT_EQ(seen[1].first, w1.impl());
  EXPECT_EQ(seen[0].second, (std::vector<float>{0.5f + 4.f, -2.f + 6.f}));  // h + 2 w2, complete when seen
  EXPECT_EQ(seen[1].second, (std::vector<float>{2.f, 6.f}));                // x w2
}

// Metrics merged from each rank's state equal the metric of all the samples: sums, and confusion
// matrices of different sizes (a rank that never saw class 2).
TEST(DataParallel, MetricStatesMergeIntoTheMetricOfAllSamples) {
  const Loss loss = losses::SparseCategoricalCrossentropy();
  const Tensor y = Tensor::from({0.f, 1.f, 2.f, 1.f, 0.f, 1.f});
  const Tensor p = Tensor::from({{0.8f, 0.1f, 0.1f}, {0.2f, 0.7f, 0.1f}, {0.1f, 0.2f, 0.7f},
                                 {0.6f, 0.3f, 0.1f}, {0.3f, 0.6f, 0.1f}, {0.1f, 0.8f, 0.1f}});
  for (const char* name : {"accuracy", "precision", "recall", "f1_score"}) {
    SCOPED_TRACE(name);
    auto whole = metric_from_name(name, loss), a = metric_from_name(name, loss), b = metric_from_name(name, loss);
    whole->update_state(y, p);
    a->update_state(slice(y, 0, 3, 6), slice(p, 0, 3, 6));  // classes 0 and 1 only
    b->update_state(slice(y, 0, 0, 3), slice(p, 0, 0, 3));
    std::vector<double> sa = a->state(), sb = b->state();
    ASSERT_FALSE(sa.empty());
    sa.resize(std::max(sa.size(), sb.size()), 0.0);  // as merge_metrics pads them
    sb.resize(sa.size(), 0.0);
    a->merge_states({sa, sb});
    EXPECT_NEAR(a->result(), whole->result(), 1e-12);
  }
}

}  // namespace
}  // namespace lamina
