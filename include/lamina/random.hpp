// Seeded random numbers: xoshiro256** with our own uniform and normal transforms, so the
// same seed gives the same numbers on every platform and standard library.
//
//   lamina::Generator gen(42);
//   float u = gen.uniform();            // [0, 1)
//   lamina::manual_seed(1);             // seeds the default generator
#pragma once

#include <array>
#include <cstdint>

namespace lamina {

class Generator {
 public:
  explicit Generator(uint64_t seed = 0) { seed_(seed); }
  void seed_(uint64_t seed);
  uint64_t next();                // 64 random bits
  float uniform();                // [0, 1), 24 random bits
  double uniform_double();        // [0, 1), 53 random bits
  float normal();                 // standard normal (Box-Muller)
  uint64_t below(uint64_t n);     // uniform integer in [0, n), unbiased

  // The whole state, for checkpoints: set_state(state()) continues the same sequence.
  using State = std::array<uint64_t, 4>;
  State state() const { return {s_[0], s_[1], s_[2], s_[3]}; }
  void set_state(const State& s);  // ValueError for all zeros (xoshiro would emit only zeros)

 private:
  uint64_t s_[4] = {};
};

Generator& default_generator();
void manual_seed(uint64_t seed);  // like torch.manual_seed

}  // namespace lamina
