// Fuzz target: model files (safetensors). io::load_safetensors_bytes must account for every
// data byte of a file it accepts; Model::load_bytes then builds the config and places the
// weights. A model that loads must survive the save round trip and predict one zero sample
// (under a storage budget: the file chooses the input size).
#include <cstdint>
#include <string_view>

#include "fuzz.hpp"
#include "lamina/io.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  lamina::fuzz::use_one_thread();
  const std::string_view bytes(reinterpret_cast<const char*>(data), size);
  lamina::fuzz::accepts([&] {
    const lamina::io::SafetensorsFile file = lamina::io::load_safetensors_bytes(bytes, "fuzz.safetensors");
    uint64_t tensor_bytes = 0;
    for (const auto& [name, t] : file.tensors) tensor_bytes += static_cast<uint64_t>(t.numel()) * 4;
    uint64_t header = 0;
    for (int i = 7; i >= 0; --i) header = (header << 8) | data[i];
    if (8 + header + tensor_bytes != size) lamina::fuzz::fail("the tensors do not account for the data section");
  });
  lamina::fuzz::accepts([&] {
    lamina::Model model = lamina::Model::load_bytes(bytes, "fuzz.safetensors");
    lamina::fuzz::check_round_trip(model);
    lamina::fuzz::predict_zero_sample(model);  // load_bytes refuses a model without input shapes
  });
  return 0;
}
