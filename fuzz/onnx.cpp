// Fuzz target: ONNX models (load_onnx_from_bytes: the protobuf reader, then the graph-to-layers
// importer). A model that imports must survive the config round trip and predict one zero
// sample (under a storage budget: the file chooses the layer sizes).
#include <cstdint>
#include <string_view>

#include "allocator.hpp"
#include "fuzz.hpp"
#include "lamina/onnx.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  lamina::fuzz::use_one_thread();
  const std::string_view bytes(reinterpret_cast<const char*>(data), size);
  lamina::fuzz::accepts([&] {
    lamina::Model model = [&] {
      lamina::detail::StorageBudget budget(lamina::fuzz::kStorageBudget);
      return lamina::load_onnx_from_bytes(bytes, "fuzz.onnx");
    }();
    lamina::fuzz::check_round_trip(model);
    if (model.input_shapes().size() != model.num_inputs())
      lamina::fuzz::fail("load_onnx returned a model without its input shapes");
    lamina::fuzz::predict_zero_sample(model);
  });
  return 0;
}
