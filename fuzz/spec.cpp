// Fuzz target: the CLI's training spec (tools/spec.cpp parse_spec), then what `lamina train`
// does before it touches data: build the model from the spec's Keras JSON and compile it (no
// training), then predict one zero sample. Layer sizes are the input's to choose, so this runs
// under a storage budget. A model that builds must survive the round trip a saved model goes through.
#include <cstdint>
#include <string_view>
#include <vector>

#include "allocator.hpp"
#include "fuzz.hpp"
#include "lamina/runtime.hpp"
#include "spec.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const bool once = [] {
    lamina::set_num_threads(1);
    return true;
  }();
  (void)once;
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  lamina::fuzz::accepts([&] {
    const lamina::cli::Spec spec = lamina::cli::parse_spec(text, "fuzz/spec.json");
    lamina::manual_seed(0);
    lamina::Sequential model;
    {
      lamina::detail::StorageBudget budget(lamina::fuzz::kStorageBudget);
      model = lamina::Sequential::from_json(spec.model);
    }
    model.compile(lamina::optimizer_from_config(spec.optimizer), lamina::Loss::from_config(spec.loss), spec.metrics);
    // Outside the budget: building the same config again takes what the first build took.
    lamina::fuzz::check_round_trip(model);
    lamina::detail::StorageBudget budget(lamina::fuzz::kStorageBudget);
    if (const auto input = model.input_shape(); input && input->numel() <= (1 << 16)) {
      std::vector<int64_t> dims{1};  // one zero sample through every layer's forward pass
      for (int64_t d : *input) dims.push_back(d);
      model.predict(lamina::Tensor::zeros(lamina::Shape(dims)));
    }
  });
  return 0;
}
