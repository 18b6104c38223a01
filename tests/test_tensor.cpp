// Tensor: creation, element access, views, seeded random init, printing, errors.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <sstream>
#include <thread>
#include <vector>

#include "allocator.hpp"
#include "lamina/lamina.hpp"

namespace lamina {
namespace {

TEST(Shape, BasicsAndNegativeIndex) {
  const Shape s{2, 3, 4};
  EXPECT_EQ(s.rank(), 3);
  EXPECT_EQ(s.numel(), 24);
  EXPECT_EQ(s[-1], 4);
  EXPECT_EQ(s[0], 2);
  EXPECT_EQ(s.str(), "(2, 3, 4)");
  EXPECT_EQ(Shape{}.numel(), 1);
  EXPECT_EQ(Shape{}.str(), "()");
  EXPECT_THROW(s[3], ShapeError);
  EXPECT_THROW(Shape({2, -2}), ShapeError);
  EXPECT_THROW(Tensor::empty({2, -1}), ShapeError);
}

TEST(Shape, ElementCountMustFitInt64) {
  // numel() multiplies from the left: a partial product that overflows is refused even when a
  // later 0 would make the total 0.
  EXPECT_THROW(Shape({int64_t{1} << 40, int64_t{1} << 40}), ShapeError);
  EXPECT_THROW(Shape({int64_t{1} << 62, 4, 0}), ShapeError);
  EXPECT_EQ(Shape({int64_t{1} << 31, int64_t{1} << 31}).numel(), int64_t{1} << 62);
  EXPECT_EQ(Shape({0, int64_t{1} << 62}).numel(), 0);
}

TEST(Tensor, StorageBudgetRefusesBeforeAllocating) {
  const auto before = memory_stats().system_allocations;
  {
    detail::StorageBudget budget(1024);
    Tensor a = Tensor::empty({100});  // 400 bytes, 448 rounded to 64
    EXPECT_EQ(budget.used(), 448u);
    EXPECT_THROW(Tensor::empty({200}), detail::StorageBudgetExceeded);
    {
      detail::StorageBudget inner(1 << 20);  // an inner budget cannot lift the outer one
      EXPECT_THROW(Tensor::empty({200}), detail::StorageBudgetExceeded);
    }
    EXPECT_THROW(Tensor::empty({int64_t{1} << 40}), detail::StorageBudgetExceeded);
  }
  EXPECT_LE(memory_stats().system_allocations, before + 1);
  EXPECT_EQ(Tensor::empty({200}).numel(), 200);  // no budget once it is gone
  EXPECT_THROW(Tensor::empty({int64_t{1} << 62}), Error);  // more bytes than size_t holds
}

// Small buffers come from the storage arena until its 64 MB are taken, then from malloc; either
// way each is 64-byte aligned, holds its own values, and goes back to the cache when freed.
// empty_cache returns malloc's buffers and keeps the arena's.
TEST(Tensor, StoragePastTheArenaComesFromMalloc) {
  std::vector<Tensor> held;
  for (int i = 0; i < 80; ++i) {  // 80 buffers of 1 MB: the arena holds at most 64
    held.push_back(Tensor::full({256 * 1024}, static_cast<float>(i)));
    ASSERT_EQ(reinterpret_cast<uintptr_t>(held.back().data()) % 64, 0u) << "buffer " << i;
  }
  for (int i = 0; i < 80; ++i) {
    const float* d = held[static_cast<size_t>(i)].data();
    ASSERT_EQ(d[0], static_cast<float>(i));
    ASSERT_EQ(d[256 * 1024 - 1], static_cast<float>(i));
  }
  held.clear();
  const MemoryStats cached = memory_stats();
  EXPECT_GE(cached.cached_bytes, int64_t{80} << 20);
  empty_cache();
  const int64_t kept = memory_stats().cached_bytes;
  EXPECT_LT(kept, cached.cached_bytes) << "malloc's buffers go back to the system";
  EXPECT_LE(kept, int64_t{64} << 20) << "no more than the arena stays";
  Tensor again = Tensor::full({256 * 1024}, 7.f);  // from what stayed cached, or malloc
  EXPECT_EQ(again.data()[1000], 7.f);
}

// A thread gets back the buffers it freed itself before another thread's of the same size (the
// batch split's two threads ask for the same sizes in step), and another's when it has none.
TEST(Tensor, CachedStorageGoesBackToTheThreadThatFreedIt) {
  const int64_t n = 12345;  // a size no other test's tensors have
  float* mine = nullptr;
  float* theirs = nullptr;
  {
    std::shared_ptr<float[]> a = detail::allocate_storage(n), b = detail::allocate_storage(n);
    mine = a.get(), theirs = b.get();
    a.reset();
    std::thread other([&b] { b.reset(); });  // freed last, by another thread
    other.join();
  }
  std::shared_ptr<float[]> again = detail::allocate_storage(n);
  EXPECT_EQ(again.get(), mine);
  std::shared_ptr<float[]> next = detail::allocate_storage(n);
  EXPECT_EQ(next.get(), theirs);
}

TEST(Tensor, CreationAndAccess) {
  Tensor z = Tensor::zeros({2, 3});
  for (float v : z.values()) EXPECT_EQ(v, 0.f);
  Tensor t = Tensor::from({{1.f, 2.f, 3.f}, {4.f, 5.f, 6.f}});
  EXPECT_EQ(t.shape(), (Shape{2, 3}));
  EXPECT_EQ(t.at({1, 2}), 6.f);
  t.at({0, 1}) = 20.f;
  EXPECT_EQ(t.data()[1], 20.f);
  EXPECT_EQ(Tensor::full({2}, 7.f).to_vector(), (std::vector<float>{7.f, 7.f}));
  EXPECT_EQ(Tensor::scalar(3.f).item(), 3.f);
  EXPECT_EQ(Tensor::ones({3}).fill_(2.f).to_vector(), (std::vector<float>{2.f, 2.f, 2.f}));
  EXPECT_THROW(t.at({2, 0}), ShapeError);
  EXPECT_THROW(t.at({0}), ShapeError);
  EXPECT_THROW(t.item(), ShapeError);
  EXPECT_THROW(Tensor::from({1.f, 2.f, 3.f}, Shape{2, 2}), ShapeError);
  EXPECT_THROW(Tensor::from({{1.f, 2.f}, {3.f}}), ShapeError);
  EXPECT_THROW(Tensor().shape(), ValueError);
}

TEST(Tensor, DataIsAligned) {
  EXPECT_EQ(reinterpret_cast<uintptr_t>(Tensor::empty({3, 5}).data()) % 64, 0u);
}

TEST(Tensor, CopiesShareCloneCopies) {
  Tensor a = Tensor::zeros({2});
  Tensor shared = a;
  Tensor copy = a.clone();
  a.fill_(1.f);
  EXPECT_EQ(shared.data()[0], 1.f);
  EXPECT_EQ(copy.data()[0], 0.f);
  Tensor view = a.reshape({1, 2});
  view.at({0, 1}) = 5.f;
  EXPECT_EQ(a.data()[1], 5.f);
  EXPECT_EQ(a.detach().data(), a.data());
}

TEST(Random, SameSeedSameNumbers) {
  Generator g1(42), g2(42), g3(43);
  Tensor a = Tensor::randn({100}, g1), b = Tensor::randn({100}, g2), c = Tensor::randn({100}, g3);
  EXPECT_EQ(a.to_vector(), b.to_vector());
  EXPECT_NE(a.to_vector(), c.to_vector());
  manual_seed(5);
  Tensor d = Tensor::rand({10});
  manual_seed(5);
  EXPECT_EQ(d.to_vector(), Tensor::rand({10}).to_vector());
}

TEST(Random, Distributions) {
  Generator gen(1);
  Tensor u = Tensor::rand({100000}, gen, -2.f, 3.f);
  Tensor n = Tensor::randn({100000}, gen, 1.f, 2.f);
  double su = 0, sn = 0, sn2 = 0;
  for (float v : u.values()) {
    ASSERT_GE(v, -2.f);
    ASSERT_LT(v, 3.f);
    su += v;
  }
  for (float v : n.values()) sn += v, sn2 += static_cast<double>(v) * v;
  const double mean_n = sn / 1e5, var_n = sn2 / 1e5 - mean_n * mean_n;
  EXPECT_NEAR(su / 1e5, 0.5, 0.03);
  EXPECT_NEAR(mean_n, 1.0, 0.03);
  EXPECT_NEAR(std::sqrt(var_n), 2.0, 0.03);
  // below(n) is unbiased and in range
  int counts[3] = {};
  for (int i = 0; i < 30000; ++i) ++counts[gen.below(3)];
  for (int c : counts) EXPECT_NEAR(c, 10000, 400);
}

std::string str(const Tensor& t) {
  std::ostringstream os;
  os << t;
  return os.str();
}

TEST(Tensor, Printing) {
  EXPECT_EQ(str(Tensor::from({1.f, -2.5f})), "tensor([ 1.0000, -2.5000])");
  EXPECT_EQ(str(Tensor::from({{1.f, 2.f}, {3.f, 4.f}})), "tensor([[1.0000, 2.0000],\n        [3.0000, 4.0000]], shape=(2, 2))");
  EXPECT_EQ(str(Tensor::scalar(0.5f)), "tensor(0.5000, shape=())");
  EXPECT_EQ(str(Tensor::from({1e-5f, 1.f})), "tensor([1.0000e-05, 1.0000e+00])");
  Tensor w = Tensor::zeros({2}).requires_grad_();
  EXPECT_EQ(str(w), "tensor([0.0000, 0.0000], requires_grad=true)");
  EXPECT_EQ(str(Tensor()), "tensor(undefined)");
  const std::string big = str(Tensor::zeros({2000}));
  EXPECT_NE(big.find("..."), std::string::npos);
  EXPECT_LT(big.size(), 200u);
}

}  // namespace
}  // namespace lamina
