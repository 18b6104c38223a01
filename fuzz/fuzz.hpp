// Shared by the fuzz harnesses in fuzz/: what counts as a clean refusal of bad input, checks
// that fail loudly, gzip for differential runs, and the model round trip. Each harness defines
// LLVMFuzzerTestOneInput over one parser's in-memory API; libFuzzer drives it in build-fuzz
// (make fuzz), and fuzz/replay.cpp runs the committed seeds through it in the normal build.
#pragma once

#define ZLIB_CONST
#include <zlib.h>

#include <cstdio>
#include <cstdlib>
#include <exception>
#include <sstream>
#include <string>
#include <string_view>
#include <typeinfo>
#include <vector>

#include "allocator.hpp"
#include "lamina/error.hpp"
#include "lamina/model.hpp"
#include "lamina/runtime.hpp"

namespace lamina::fuzz {

// Tensor storage one input may allocate: a spec or model file may declare any layer sizes, and
// past this building them fails with StorageBudgetExceeded (a lamina::Error), before allocating.
constexpr size_t kStorageBudget = size_t{64} << 20;

// Compute on one thread: inputs are tiny, and one thread keeps each run reproducible.
inline void use_one_thread() {
  static const bool once = [] {
    set_num_threads(1);
    return true;
  }();
  (void)once;
}

// A finding: says what, then aborts, so libFuzzer saves the input and a replay test fails.
[[noreturn]] inline void fail(const std::string& what) {
  std::fprintf(stderr, "fuzz: %s\n", what.c_str());
  std::fflush(stderr);
  std::abort();
}

// Runs f and returns whether it accepted the input. Bad input may be refused only with a
// lamina::Error (IoError, ValueError, ShapeError), whose message names the file and the field;
// any other exception escaping (std::out_of_range, nlohmann's type_error, std::bad_alloc) is a
// finding: the user would get a bare library message, or an out-of-memory, for a bad file.
template <class F>
bool accepts(F&& f) {
  try {
    f();
    return true;
  } catch (const Error&) {
    return false;
  } catch (const std::exception& e) {
    fail(std::string("unexpected exception ") + typeid(e).name() + ": " + e.what());
  }
}

// `bytes` as one gzip member (zlib's deflate, the default level).
inline std::string gzip(std::string_view bytes) {
  z_stream z{};
  if (deflateInit2(&z, Z_DEFAULT_COMPRESSION, Z_DEFLATED, 16 + MAX_WBITS, 8, Z_DEFAULT_STRATEGY) != Z_OK)
    fail("deflateInit2 failed");
  std::string out(deflateBound(&z, static_cast<uLong>(bytes.size())), '\0');
  z.next_in = reinterpret_cast<const Bytef*>(bytes.data());
  z.avail_in = static_cast<uInt>(bytes.size());
  z.next_out = reinterpret_cast<Bytef*>(out.data());
  z.avail_out = static_cast<uInt>(out.size());
  if (deflate(&z, Z_FINISH) != Z_STREAM_END) fail("deflate did not finish");
  out.resize(z.total_out);
  deflateEnd(&z);
  return out;
}

// What a model file stores must load back as the same model: its config (to_json / from_json)
// and its compile config (optimizer and loss configs, as Sequential::save writes them).
inline void check_round_trip(Model& model) {
  const Json config = model.to_json();
  Json again;
  try {
    again = Model::from_json(config).to_json();
  } catch (const std::exception& e) {
    fail("to_json wrote a config that from_json refuses: " + std::string(e.what()) + "\n" + config.dump());
  }
  if (again != config) fail("config round trip differs:\n" + config.dump() + "\n" + again.dump());
  std::ostringstream summary;
  model.summary(summary);
  if (!model.compiled()) return;
  const Json optimizer = {{"class_name", model.optimizer().name()}, {"config", model.optimizer().config()}};
  const Json loss = model.loss().config();
  try {
    if (optimizer_from_config(optimizer)->config() != optimizer["config"]) fail("optimizer config differs: " + optimizer.dump());
    if (Loss::from_config(loss).config() != loss) fail("loss config differs: " + loss.dump());
  } catch (const std::exception& e) {
    fail("a compile config Lamina wrote is refused: " + std::string(e.what()) + "\n" + optimizer.dump() + " " + loss.dump());
  }
}

// One zero sample of `input` shape through every layer's forward pass, under the storage budget
// (the input chose the layer sizes).
inline void predict_zero_sample(Model& model, const Shape& input) {
  detail::StorageBudget budget(kStorageBudget);
  std::vector<int64_t> dims{1};
  for (int64_t d : input) dims.push_back(d);
  model.predict(Tensor::zeros(Shape(dims)));
}

// The same for a model with several inputs: one zero sample of each.
inline void predict_zero_sample(Model& model, const std::vector<Shape>& inputs) {
  detail::StorageBudget budget(kStorageBudget);
  std::vector<Tensor> xs;
  for (const Shape& input : inputs) {
    std::vector<int64_t> dims{1};
    for (int64_t d : input) dims.push_back(d);
    xs.push_back(Tensor::zeros(Shape(dims)));
  }
  model.predict_all(xs);
}

}  // namespace lamina::fuzz
