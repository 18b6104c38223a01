// Internal to src/data: a Pipeline's recipe (Spec), one epoch's producer (Epoch) and the
// prefetch thread (Prefetcher). Not public API; pipeline.hpp is.
#pragma once

#include <condition_variable>
#include <deque>
#include <exception>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "lamina/pipeline.hpp"

namespace lamina::data {

namespace detail {
uint64_t mix(uint64_t h, uint64_t v);
// The generator of stage `stage` (0: the source) for sample (or batch) `id` of `epoch`.
Generator stage_generator(uint64_t seed, int64_t stage, int64_t epoch, int64_t id);
std::string shapes_str(const std::vector<Shape>& shapes);  // "[(28, 28, 1), ()]"
Shape with_batch(int64_t batch, const Shape& shape);
class Ids;  // a stream of sample ids (pipeline_epoch.cpp)
}  // namespace detail

struct Pipeline::Spec {
  enum class Source { dataset, blob, samples, batches };
  Source source = Source::dataset;
  Dataset dataset;
  Tensor blob_x, blob_y;  // views of the caller's memory (a deleter that frees nothing)
  SampleGenerator sample_fn;
  BatchGenerator batch_fn;
  bool random_access = true;
  std::optional<int64_t> source_size;  // samples (batches for Source::batches)
  std::vector<Shape> source_inputs, source_targets;

  struct Stage {
    enum class Kind { map, shuffle, take };
    Kind kind = Kind::map;
    int number = 0;  // 1-based position in the chain: seeds its generators
    MapFn fn;        // map: the function, its output shapes and its name
    std::vector<Shape> inputs, targets;
    std::string name;
    int64_t count = 0;  // shuffle: buffer size; take: samples
    std::optional<uint64_t> seed;
  };
  std::vector<Stage> sample_stages;
  int64_t batch_size = 0;  // 0: no batch stage
  bool drop_remainder = false;
  std::optional<int64_t> batch_take;  // the smallest take after batch
  int64_t prefetch = 0;               // batches ahead; 0: none
  uint64_t seed = 0;
  int stages = 0;                      // stages so far (numbers the next one)
  std::vector<Shape> inputs, targets;  // per sample, after the maps so far

  bool batched() const { return source == Source::batches || batch_size > 0; }
};

class Pipeline::Epoch {
 public:
  Epoch(std::shared_ptr<const Spec> spec, int epoch);
  ~Epoch();
  void skip(int64_t batches);
  bool next(Batch& out);

 private:
  bool has(int64_t i);                   // the source has sample i (a sequential generator fetches it)
  Sample source_sample(int64_t id);      // consumes a sequential generator's cached sample
  Sample sample(int64_t id);             // the source's, through every map
  std::vector<int64_t> next_ids();       // up to B
  bool batch_allowed() const;            // not past a take after batch
  std::optional<Batch> call_batch_generator(int64_t index);  // checked
  void assemble(const std::vector<int64_t>& ids, Batch& out);

  std::shared_ptr<const Spec> spec_;
  int epoch_;
  bool has_maps_ = false;
  std::unique_ptr<detail::Ids> ids_;
  std::map<int64_t, Sample> cache_;  // a sequential generator's samples fetched, not yet consumed
  int64_t fetched_ = 0;
  bool ended_ = false;
  int64_t batches_ = 0;  // yielded or skipped this epoch
};

class Pipeline::Prefetcher {
 public:
  // Starts the thread: it skips `skip` batches, then keeps up to `depth` batches ready.
  Prefetcher(std::unique_ptr<Epoch> epoch, int64_t skip, int64_t depth);
  ~Prefetcher();  // stops the thread and joins it; does not wait for the queue to drain
  bool next(Batch& out);

 private:
  void run(int64_t skip);

  std::unique_ptr<Epoch> epoch_;
  size_t depth_;
  std::mutex mu_;
  std::condition_variable ready_, space_;
  std::deque<Batch> queue_;
  bool done_ = false, stop_ = false;
  std::exception_ptr error_;
  std::thread thread_;  // last: starts once the members above exist
};

}  // namespace lamina::data
