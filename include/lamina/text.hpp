// Text preprocessing: Keras' TextVectorization (output_mode "int") and a reader for labelled texts.
// Strings are UTF-8 (a byte that is not becomes U+FFFD); standardisation works on ASCII only, as
// Keras' defaults do (tf.strings.lower without an encoding, a regex of ASCII punctuation).
//
//   TextVectorization tv({.max_tokens = 20000, .output_sequence_length = 200, .padding = "pre"});
//   tv.adapt(train_texts);                  // vocabulary: "", "[UNK]", then by falling frequency
//   Tensor ids = tv(train_texts);           // (N, 200) floats holding token indices
//   model.set_text_vectorization(tv);       // saved with the model; model.predict(texts)
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "lamina/json.hpp"
#include "lamina/tensor.hpp"

namespace lamina {

// Keras' keras.layers.TextVectorization with output_mode "int": standardize, split, look each
// token up in the vocabulary, pad or truncate to output_sequence_length.
//  - Vocabulary as Keras': index 0 is "" (padding), 1 is "[UNK]" (every out-of-vocabulary token),
//    then the adapted tokens by descending count, equal counts in descending byte order of the
//    token (Keras sorts with np.lexsort((tokens, counts))[::-1]); max_tokens counts all of them.
//  - standardize: "lower_and_strip_punctuation" (default), "lower", "strip_punctuation", or ""
//    (Keras' None). Lowering maps ASCII A-Z only; other bytes (é, Ä, ...) stay as they are.
//    Stripping deletes (replaces by nothing, so "don't" becomes "dont") the 32 ASCII punctuation
//    characters of Keras' regex [!"#$%&()\*\+,-\./:;<=>?@\[\\\]^_`{|}~'] — "-" is in it through
//    the range ",-\.". IMDB's "<br />" thus becomes the token "br", as in Keras.
//  - split: "whitespace" (default: runs of ASCII space, \t, \n, \v, \f, \r), "character" (each
//    UTF-8 character, spaces included, as tf.strings.unicode_split), or "" (None: the whole text).
//  - padding / truncating (Lamina's, not Keras' config): "post" (default, as Keras pads and cuts
//    at the end) or "pre" (as keras.utils.pad_sequences: pad at the front, keep the last tokens),
//    which recurrent layers want. Written to config() only when "pre".
//  - Not supported, refused with a ValueError: ngrams, output_mode other than "int",
//    pad_to_max_tokens, sparse, ragged, idf_weights, an encoding other than utf-8.
// A text with no tokens (empty, or only punctuation) becomes a row of padding (zeros).
class TextVectorization {
 public:
  struct Options {
    std::optional<int64_t> max_tokens{};              // vocabulary size cap, padding and [UNK] included
    std::string standardize = "lower_and_strip_punctuation";
    std::string split = "whitespace";
    std::string output_mode = "int";
    std::optional<int64_t> output_sequence_length{};  // unset: pad to the longest text of the call
    std::vector<std::string> vocabulary{};            // given instead of adapt (with or without "", "[UNK]")
    std::string padding = "post";
    std::string truncating = "post";
    std::string name = "text_vectorization";
  };
  // ValueError for an unknown mode, max_tokens < 2, output_sequence_length < 1, or a bad vocabulary.
  explicit TextVectorization(Options o);
  TextVectorization();  // Keras' defaults

  // Builds the vocabulary from `texts` (replacing any). ValueError when `texts` is empty or holds
  // no token at all. 25,000 IMDB reviews take about half a second.
  void adapt(std::span<const std::string> texts);
  // Sets the vocabulary; it may start with "" and "[UNK]" (as get_vocabulary() returns it) or not.
  // ValueError for an empty or repeated token list, or one longer than max_tokens.
  void set_vocabulary(const std::vector<std::string>& vocabulary);
  // "", "[UNK]", then the tokens; empty before adapt or set_vocabulary.
  const std::vector<std::string>& get_vocabulary() const { return vocabulary_; }
  int64_t vocabulary_size() const { return static_cast<int64_t>(vocabulary_.size()); }
  bool has_vocabulary() const { return !vocabulary_.empty(); }

  // The steps, exposed for tests and for callers that need the tokens.
  std::string standardize(std::string_view text) const;
  std::vector<std::string_view> split(std::string_view standardized) const;  // views into the argument
  int64_t index_of(std::string_view token) const;                            // 1 ([UNK]) when unknown
  std::vector<int64_t> encode(std::string_view text) const;                  // unpadded indices

  // (N, L) float indices: L = output_sequence_length, or the longest text when unset. ValueError
  // when `texts` is empty, there is no vocabulary yet, or (L unset) every text is empty.
  Tensor operator()(std::span<const std::string> texts) const;
  Tensor operator()(const std::vector<std::string>& texts) const {
    return (*this)(std::span<const std::string>(texts));
  }

  const Options& options() const { return o_; }
  // Keras' get_config(), with the full vocabulary (so that a config alone rebuilds the layer).
  Json config() const;
  // Strict: unknown keys and unsupported values are ValueErrors naming the key.
  static TextVectorization from_config(const Json& config);

 private:
  struct Hash {
    using is_transparent = void;
    size_t operator()(std::string_view s) const noexcept { return std::hash<std::string_view>{}(s); }
  };
  // standardize into `buffer`, then f(token) for each token (views into `buffer`): the one pass
  // that adapt and the call share, with no allocation per text once `buffer` has grown.
  template <class F>
  void for_each_token(std::string_view text, std::string& buffer, F&& f) const;
  template <class F>
  void split_each(std::string_view standardized, F&& f) const;
  void standardize_into(std::string_view text, std::string& out) const;
  Options o_;
  std::vector<std::string> vocabulary_;
  std::unordered_map<std::string, int64_t, Hash, std::equal_to<>> index_;
};

namespace data {

// Labelled texts, one per line: LABEL<TAB>TEXT, the text escaped as \\, \t, \n, \r (the format of
// data/imdb/*.tsv, written by scripts/imdb-split.js). Labels are numbers. IoError naming the file
// and line for a line without a tab, a bad label, an unknown escape, or a file with no line.
struct LabeledTexts {
  std::vector<std::string> texts;
  std::vector<float> labels;
};
LabeledTexts read_text_tsv(const std::string& path);

}  // namespace data

}  // namespace lamina
