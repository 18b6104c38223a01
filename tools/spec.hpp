// The CLI's training spec (model + data + compile + fit, as JSON) and the data behind it:
// named sets (mnist, fashion_mnist, digits), IDX directories and CSV files, scaled the same way
// at train, evaluate and predict time. Not part of the library: tools/ only.
//
//   Spec spec = read_spec("examples/specs/digits_mlp.json");
//   Prepared d = load_training_data(spec, model.input_shape());   // d.train, d.test, d.preprocessing
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "lamina/data.hpp"
#include "lamina/json.hpp"
#include "lamina/tensor.hpp"
#include "lamina/text.hpp"

namespace lamina::cli {

// A model input fed by a group of CSV feature columns, [first, end) counted from 0 without the
// label column: "data": {"inputs": {"numbers": [0, 4], "flags": [4, 6]}} feeds the model's
// inputs named "numbers" and "flags" (a Functional model with several inputs).
struct InputColumns {
  std::string name;
  int64_t first = 0, end = 0;
};

// How raw inputs (IDX bytes, CSV numbers) become model inputs: x = raw * scale, then split into
// the model's inputs by column groups when there are several. Saved in the model file as
// "lamina_preprocessing" so evaluate and predict repeat it.
struct Preprocessing {
  double scale = 1.0;
  std::vector<InputColumns> inputs;  // empty: the whole sample is the model's one input
  std::string data;           // "mnist", "fashion_mnist", "digits" or "files"
  bool targets_are_inputs = false;  // an autoencoder's data: each sample is its own target
  double test_split = 0.2;    // digits only: the fraction held out for testing
  uint64_t split_seed = 1;    // digits only: the seed of that split
  Json to_json() const;
  // From a model file's metadata entry; `where` names the file in errors.
  static Preprocessing from_json(const Json& j, const std::string& where);
};

struct DataSpec {
  std::string name;                  // mnist | fashion_mnist | digits | imdb; empty for files
  std::string location;              // "dir"/"path" for a named set (resolved); empty = default
  std::string train_path, test_path; // files form (resolved)
  std::optional<double> scale;       // a number; nullopt with scale_max false = the set's default
  bool scale_max = false;            // "max": divide by the largest training feature value
  double test_split = 0.2;
  uint64_t split_seed = 1;
  bool header = false;               // CSV files start with a header line
  std::vector<InputColumns> inputs;  // "inputs": named column groups, one per model input
  // "targets": "labels" (the default) or "inputs": each sample is its own target, reshaped to the
  // model's output (an autoencoder, Keras' fit(x, x)); the labels are dropped.
  bool targets_are_inputs = false;
  // Text data (name "imdb", or "train"/"test" TSV files of LABEL<TAB>TEXT): the Keras config of
  // the TextVectorization adapted on the training texts ({"max_tokens": 20000,
  // "output_sequence_length": 200, "padding": "pre"}); null for other data.
  Json text_vectorization;
  bool is_text() const { return !text_vectorization.is_null(); }
};

// A callback named in fit.callbacks, Keras' class name and arguments:
// {"class_name": "ReduceLROnPlateau", "config": {"monitor": "val_loss", "factor": 0.5, "patience": 2}}.
// ReduceLROnPlateau and EarlyStopping (their keys checked when the spec is read).
struct CallbackSpec {
  std::string class_name;
  Json config;
};

struct FitSpec {
  int epochs = 1;
  int64_t batch_size = 32;
  double validation_split = 0.0;
  bool shuffle = true;
  std::optional<uint64_t> seed;
  int verbose = 1;
  std::map<int64_t, double> class_weight;  // "class_weight": {"0": 1.0, "3": 5.0}, as Keras' dict
  std::string sample_weight;               // "sample_weight": a CSV of one weight per training row (resolved)
  std::vector<CallbackSpec> callbacks;
};

struct Spec {
  std::string path;
  Json model;              // Keras' model JSON; null when model_file is given
  std::string model_file;  // "model": "PATH" (.onnx or .safetensors, resolved): start from its weights
  DataSpec data;
  Json optimizer = "rmsprop";  // Keras' default
  Json loss;
  std::vector<std::string> metrics;
  std::vector<std::string> weighted_metrics;  // compile.weighted_metrics: with the class weights
  std::vector<double> loss_weights;           // compile.loss_weights: one per output (empty: all 1)
  FitSpec fit;
};

// A JSON file; errors name the file and the position ("spec.json: invalid JSON at line 3, ...").
Json read_json_file(const std::string& path);
// The same from text in memory; `path` names it in errors.
Json parse_json_text(std::string_view text, const std::string& path);
// Reads and checks a spec: unknown keys and missing required keys are ValueErrors naming the
// file and the key ("spec.json: model: missing").
Spec read_spec(const std::string& path);
// The same from the spec's text in memory; relative data paths resolve beside `path`.
Spec parse_spec(std::string_view text, const std::string& path);
// The spec's "model" part when `j` is a spec, or `j` itself when it is a bare model JSON.
bool looks_like_spec(const Json& j);

// Where a loaded set's targets came from, for error messages: the file, and each sample's place
// in it ("line 14, column 5 (sample 12)" in a CSV file, "byte offset 20 (label 12)" in IDX).
struct Provenance {
  std::string file;
  std::function<std::string(int64_t)> position;
};

struct Prepared {
  data::Dataset train, test;
  std::optional<TextVectorization> text;  // text data: the vectorizer adapted on the training texts
  Preprocessing preprocessing;
  Provenance train_from, test_from;
};
// The spec's train and test sets, scaled, samples shaped as `input_shape` when it is known.
Prepared load_training_data(const Spec& spec, const std::optional<Shape>& input_shape);

// The evaluation set for `evaluate --data NAME|PATH`: a named set's test split (digits: the
// split recorded in `pre`), a directory of IDX files (its t10k-* pair, or its only pair), or a
// CSV file with the label last.
data::Dataset load_evaluation_data(const std::string& name_or_path, const Preprocessing& pre,
                                   const std::optional<Shape>& input_shape, Provenance* from = nullptr);

// Text test data for `evaluate --data imdb|PATH.tsv` of a model that has a text vectorizer: the
// texts of data/imdb/test.tsv (or the TSV file), vectorized by `tv`.
data::Dataset load_text_evaluation_data(const std::string& name_or_path, const TextVectorization& tv,
                                        Provenance* from = nullptr);

// Inputs for `predict`: an IDX file (raw or gz) of samples, or a CSV file of features (an extra
// last column, the label, is dropped). Returns (N, input_shape...) scaled floats.
Tensor load_prediction_input(const std::string& path, const Preprocessing& pre, const Shape& input_shape);

// (n, sample...): the shape of a batch of n samples.
Shape with_batch(int64_t n, const Shape& sample);

// An autoencoder's data (Preprocessing::targets_are_inputs): the same samples with each one's
// features as its target, shaped as the model's output `output_shape` (same number of values).
// ShapeError naming `where` when the sizes differ.
data::Dataset inputs_as_targets(const data::Dataset& d, const Shape& output_shape, const std::string& where);

// The model's inputs from each sample's features (x: (N, F) or (N, ...) flattened per sample), by
// the named column groups: one tensor per name in `names`, shaped as `shapes`. ValueError naming
// `where` when a name has no group, a group lies outside the F columns, or its width does not
// match the input's size.
std::vector<Tensor> split_columns(const Tensor& x, const std::vector<InputColumns>& groups,
                                  const std::vector<std::string>& names, const std::vector<Shape>& shapes,
                                  const std::string& where);
// The same for a dataset, keeping its targets: a multi-input dataset (its inputs are its parts).
data::Dataset split_columns(const data::Dataset& d, const std::vector<InputColumns>& groups,
                            const std::vector<std::string>& names, const std::vector<Shape>& shapes,
                            const std::string& where);

}  // namespace lamina::cli
