// Fuzz target: the CLI's training spec (tools/spec.cpp parse_spec), then what `lamina train`
// does before it touches data: build the model from the spec's Keras JSON and compile it (no
// training), then predict one zero sample. Layer sizes are the input's to choose, so this runs
// under a storage budget. A model that builds must survive the round trip a saved model goes through.
#include <cstdint>
#include <string_view>

#include "allocator.hpp"
#include "fuzz.hpp"
#include "spec.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  lamina::fuzz::use_one_thread();
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  lamina::fuzz::accepts([&] {
    const lamina::cli::Spec spec = lamina::cli::parse_spec(text, "fuzz/spec.json");
    lamina::manual_seed(0);
    lamina::Model model = [&] {  // Sequential or Functional
      lamina::detail::StorageBudget budget(lamina::fuzz::kStorageBudget);
      return lamina::Model::from_json(spec.model);
    }();
    model.compile(lamina::optimizer_from_config(spec.optimizer), lamina::Loss::from_config(spec.loss),
                  std::vector<lamina::MetricSpec>(spec.metrics.begin(), spec.metrics.end()));
    // Outside the budget: building the same config again takes what the first build took.
    lamina::fuzz::check_round_trip(model);
    int64_t values = 0;
    for (const lamina::Shape& input : model.input_shapes()) values += input.numel();
    if (!model.input_shapes().empty() && values <= (1 << 16)) lamina::fuzz::predict_zero_sample(model);
  });
  return 0;
}
