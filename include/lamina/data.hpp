// Data: IDX and CSV readers, a compact Dataset that yields float batches, and loaders for
// MNIST, Fashion-MNIST and scikit-learn's 8x8 digits. Images stay as bytes in memory and are
// converted per batch, so training on MNIST never holds a float copy of the whole set.
//
//   auto [train, test] = lamina::data::load_mnist("data/mnist");   // x / 255 per batch
//   Tensor x = train.x({0, 1, 2});                                 // (3, 28, 28) float
//   Tensor y = train.y({0, 1, 2});                                 // (3) class indices
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "lamina/tensor.hpp"

namespace lamina::data {

// --- readers ---------------------------------------------------------------------------------

// An IDX file (LeCun's MNIST format), raw or gzip-compressed (detected by its magic bytes).
struct Idx {
  std::vector<int64_t> dims;   // e.g. (60000, 28, 28)
  uint8_t type = 0x08;         // 0x08 unsigned byte (the only type MNIST uses); others are refused
  std::vector<uint8_t> bytes;  // row-major, dims' product of them
};
// Throws IoError naming the path and what was wrong (bad magic, unsupported type, truncated,
// trailing bytes, dimensions that overflow).
Idx read_idx(const std::string& path);
// The same from bytes in memory (raw or gzip); `name` stands for the path in errors.
//   data::Idx labels = data::read_idx_bytes(downloaded, "labels.idx");
Idx read_idx_bytes(std::string_view bytes, const std::string& name = "<memory>");

struct CsvOptions {
  bool header = false;         // the first line names the columns
  int64_t label_column = -1;   // which column holds the label (-1: the last; negative counts from the end)
};
struct Csv {
  int64_t rows = 0, cols = 0;  // cols counts the features, not the label
  std::vector<float> features; // rows * cols, row-major
  std::vector<float> labels;   // rows
};
// A numeric CSV file, raw or gzip-compressed. Throws IoError naming path, line and column for
// non-numeric or NaN fields and rows of the wrong length.
Csv read_csv(const std::string& path, const CsvOptions& options = {});
// The same from text in memory (raw or gzip); `name` stands for the path in errors.
//   data::Csv csv = data::read_csv_bytes("1,2,0\n3,4,1\n", {}, "inline.csv");
Csv read_csv_bytes(std::string_view text, const CsvOptions& options = {}, const std::string& name = "<memory>");

// --- Dataset ---------------------------------------------------------------------------------

// N samples: features (N, sample_shape...) and targets (N, target_shape...). Features are kept
// as bytes (with a scale) or as floats and converted per batch; copies and slices share storage.
// Targets are floats: class indices for sparse labels (target_shape ()), or target vectors.
class Dataset {
 public:
  Dataset() = default;
  // Byte features, x = byte * scale (e.g. 1/255 for images).
  static Dataset from_bytes(std::shared_ptr<const std::vector<uint8_t>> x, Shape sample_shape,
                            std::shared_ptr<const std::vector<float>> y, Shape target_shape, float scale = 1.f);
  // Float features and targets from tensors: x (N, ...), y (N, ...) or labels (N). The features
  // share x's storage (no copy: a NumPy array handed in from Python is read in place), so x must
  // not change while the dataset is in use; the targets are copied.
  static Dataset from_tensors(const Tensor& x, const Tensor& y);
  // Several inputs and targets, for a model with several inputs or outputs: one tensor per
  // input and per target, each (N, ...) with the same N. They are the dataset's parts.
  static Dataset from_tensors(const std::vector<Tensor>& xs, const std::vector<Tensor>& ys);
  // The same samples with each sample's features split, in order, into inputs of these shapes,
  // and its targets into these (their sizes must add up to the sample's and target's): named
  // CSV column groups become a multi-input dataset this way. ShapeError when they do not.
  Dataset with_parts(std::vector<Shape> input_shapes, std::vector<Shape> target_shapes) const;
  // The parts: one shape per input and per target ({sample_shape()} and {target_shape()} for a
  // dataset of one each).
  const std::vector<Shape>& input_shapes() const { return input_shapes_; }
  const std::vector<Shape>& target_shapes() const { return target_shapes_; }

  int64_t size() const { return size_; }
  const Shape& sample_shape() const { return sample_shape_; }
  const Shape& target_shape() const { return target_shape_; }
  bool empty() const { return size_ == 0; }

  // Writes samples `indices` (in order) as floats into x (B * sample numel) and y
  // (B * target numel). The training loop reuses its buffers through this.
  void gather(std::span<const int64_t> indices, float* x, float* y) const;
  // The same, part by part: xs[i] receives B samples of input_shapes()[i], ys[j] of
  // target_shapes()[j] (either list may be empty to skip it).
  void gather_parts(std::span<const int64_t> indices, std::span<float* const> xs, std::span<float* const> ys) const;
  // Columns [begin, end) of each of samples `indices`' features (flattened, of a dataset of one
  // input), as floats: row b of the result at x + b * ld. For a consumer that splits a batch's
  // features over threads and has each gather its own (Dense chains: dense_chain.hpp).
  void gather_columns(std::span<const int64_t> indices, int64_t begin, int64_t end, float* x, int64_t ld) const;
  // A hint, no more: starts fetching the features of samples `indices` into the cache, so that
  // gathering them later finds them there. fit issues it for the next batch while the current one
  // computes (shuffled rows are cache misses; from Python, float rows four times the bytes).
  void prefetch(std::span<const int64_t> indices) const;
  // The same for features [begin, end) of each sample (a thread that gathers those columns).
  void prefetch_columns(std::span<const int64_t> indices, int64_t begin, int64_t end) const;
  // Convenience: the same as new (B, ...) tensors.
  Tensor x(std::span<const int64_t> indices) const;
  Tensor y(std::span<const int64_t> indices) const;
  Tensor x(std::initializer_list<int64_t> indices) const { return x(std::span(indices.begin(), indices.size())); }
  Tensor y(std::initializer_list<int64_t> indices) const { return y(std::span(indices.begin(), indices.size())); }
  Tensor all_x() const;  // every sample (a float copy: for small sets and tests)
  Tensor all_y() const;
  Tensor all_y(size_t target) const;  // every sample's target part `target` (N, target_shapes()[target]...)

  // Samples [begin, end), sharing storage.
  Dataset slice(int64_t begin, int64_t end) const;
  // The same samples with features multiplied by `factor` (applied per batch).
  Dataset scaled(float factor) const;
  // (first fraction, the rest) after a seeded shuffle of the order; storage is shared.
  std::pair<Dataset, Dataset> split(double first_fraction, uint64_t seed) const;
  // Largest target + 1 when targets are class indices; 0 otherwise.
  int64_t num_classes() const;
  // Bytes of the storage this set holds (shared with its slices and splits, counted whole).
  int64_t storage_bytes() const;

 private:
  void gather_rows(std::span<const int64_t> indices, std::span<float* const> xs, const std::vector<Shape>& x_parts,
                   std::span<float* const> ys, const std::vector<Shape>& y_parts) const;
  // k features from storage offset src as floats (bytes scaled, floats copied or scaled).
  void features_to_floats(int64_t src, float* dst, int64_t k) const;
  // Values [offset, offset + k) of every sample's targets, as a (size, shape) tensor.
  Tensor targets_of_all(const Shape& shape, int64_t offset, int64_t k) const;

  std::shared_ptr<const std::vector<uint8_t>> bytes_;
  std::shared_ptr<const float> floats_;  // float features: our own vector's, or a tensor's storage
  int64_t floats_count_ = 0;
  std::shared_ptr<const std::vector<float>> targets_;
  std::shared_ptr<const std::vector<int64_t>> order_;  // index map after split; null = identity
  int64_t begin_ = 0, size_ = 0;
  Shape sample_shape_, target_shape_;
  std::vector<Shape> input_shapes_, target_shapes_;  // the parts (one each unless split)
  float scale_ = 1.f;
  int64_t num_classes_ = 0;  // of all targets in storage, found once when the storage is made
};

// --- streams of batches --------------------------------------------------------------------------

// One batch: a tensor per model input and per target, each (B, ...), and optional per-sample
// weights (B) that scale each sample's loss (Keras' sample_weight).
struct Batch {
  std::vector<Tensor> x, y;
  Tensor sample_weight;  // undefined: every sample weighs 1
  // Where x came from when it is samples of a Dataset (fit's batches): the dataset and the
  // samples' indices in it (valid until the next batch), so that a step may gather parts of
  // them again on the threads that use them. Null otherwise.
  const Dataset* dataset = nullptr;
  std::span<const int64_t> indices{};
  // Data-parallel fit (distributed.hpp): the step's samples over every rank, of which this batch
  // is this rank's share (0: the batch is the whole step, or each rank's batch weighs the same).
  int64_t global_size = 0;
  // True when x's buffers have their shapes but not yet their values: fit leaves them to a step
  // that gathers the samples itself, on the threads that use them (a Dense chain split over the
  // cores). Model::train_step gathers them from `dataset` before any other use.
  bool x_pending = false;
  // With x_pending: the next batch's indices in `dataset` (empty at an epoch's end), for the
  // step's threads to prefetch their parts of its samples.
  std::span<const int64_t> next_indices{};
  int64_t size() const { return x.empty() ? 0 : x[0].dim(0); }
};

// What Model::fit, evaluate and predict read batches from, an epoch at a time: a Dataset (fit
// wraps it, shuffling by its seed), or a Pipeline (generators, map transforms, shuffle buffers,
// prefetching; pipeline.hpp). An implementation must be deterministic for a given epoch, so that
// a checkpoint resumes exactly: start_epoch(e, k) then next() yields what the k+1-th next() after
// start_epoch(e, 0) would have.
class BatchSource {
 public:
  virtual ~BatchSource() = default;
  // The parts of every batch, per sample (as Dataset::input_shapes / target_shapes).
  virtual std::vector<Shape> input_shapes() const = 0;
  virtual std::vector<Shape> target_shapes() const = 0;
  // Batches per epoch, when known beforehand (fit's progress bar and checkpoints use it).
  virtual std::optional<int64_t> steps_per_epoch() const = 0;
  // Begins epoch `epoch` (0-based), skipping its first `skip` batches (a resume mid-epoch).
  virtual void start_epoch(int epoch, int64_t skip = 0) = 0;
  // The next batch of the epoch into `batch` (its buffers may be reused); false at the end.
  virtual bool next(Batch& batch) = 0;
};

// dir/name if it exists, else dir/name.gz if that does; an empty string when neither does.
std::string find_data_file(const std::string& dir, const std::string& name);

struct TrainTest {
  Dataset train, test;
};

// MNIST from a directory holding the four IDX files (raw or .gz; the names of the original
// distribution). Features are scaled by 1/255. Throws IoError naming the missing file and how
// to fetch it (scripts/fetch-data.sh).
TrainTest load_mnist(const std::string& dir = "data/mnist");
TrainTest load_fashion_mnist(const std::string& dir = "data/fashion-mnist");
// scikit-learn's 8x8 digits (1797 samples, 64 features 0..16, label last) from digits.csv.gz;
// features are left unscaled (the course divides by their max, 16).
Dataset load_digits(const std::string& path = "data/digits/digits.csv.gz");

}  // namespace lamina::data
