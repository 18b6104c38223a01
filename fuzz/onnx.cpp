// Fuzz target: ONNX models (load_onnx_from_bytes: the protobuf reader, then the graph-to-layers
// importer). A model that imports must survive the config round trip and predict one zero
// sample (under a storage budget: the file chooses the layer sizes).
#include <cstdint>
#include <string_view>
#include <vector>

#include "allocator.hpp"
#include "fuzz.hpp"
#include "lamina/onnx.hpp"
#include "lamina/runtime.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const bool once = [] {
    lamina::set_num_threads(1);
    return true;
  }();
  (void)once;
  const std::string_view bytes(reinterpret_cast<const char*>(data), size);
  lamina::fuzz::accepts([&] {
    lamina::Sequential model = [&] {
      lamina::detail::StorageBudget budget(lamina::fuzz::kStorageBudget);
      return lamina::load_onnx_from_bytes(bytes, "fuzz.onnx");
    }();
    lamina::fuzz::check_round_trip(model);
    lamina::detail::StorageBudget budget(lamina::fuzz::kStorageBudget);
    if (!model.input_shape()) lamina::fuzz::fail("load_onnx returned a model without an input shape");
    const lamina::Shape input = *model.input_shape();
    std::vector<int64_t> dims{1};
    for (int64_t d : input) dims.push_back(d);
    model.predict(lamina::Tensor::zeros(lamina::Shape(dims)));
  });
  return 0;
}
