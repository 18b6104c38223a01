// TextVectorization (Keras' output_mode "int") and the labelled-text reader. The vocabulary is
// counted in one hash map of the standardised tokens; the sort is Keras' (count descending, then
// token descending), so a vocabulary adapted here equals the one Keras adapts from the same texts.
#include "lamina/text.hpp"

#include <algorithm>
#include <charconv>
#include <set>
#include <utility>

#include "lamina/error.hpp"
#include "lamina/io.hpp"

namespace lamina {

namespace {

constexpr const char* kPadToken = "";
constexpr const char* kOovToken = "[UNK]";
constexpr int64_t kSpecialTokens = 2;  // "" and "[UNK]"

std::string where_of(const std::string& name) { return "TextVectorization '" + name + "'"; }

// Keras' DEFAULT_STRIP_REGEX [!"#$%&()\*\+,-\./:;<=>?@\[\\\]^_`{|}~'] matches exactly the 32
// ASCII punctuation characters (",-\." is the range , - .).
constexpr bool is_punctuation(unsigned char c) {
  return (c >= 0x21 && c <= 0x2f) || (c >= 0x3a && c <= 0x40) || (c >= 0x5b && c <= 0x60) || (c >= 0x7b && c <= 0x7e);
}

constexpr bool is_space(unsigned char c) { return c == ' ' || (c >= '\t' && c <= '\r'); }

// The length of the valid UTF-8 sequence at p (left bytes remain), or 0 when it is not one.
size_t utf8_length(const unsigned char* p, size_t left) {
  const unsigned char c = p[0];
  size_t n = 0;
  unsigned char lo = 0x80, hi = 0xbf;  // the allowed range of the second byte
  if (c >= 0xc2 && c <= 0xdf) n = 2;
  else if (c >= 0xe0 && c <= 0xef) n = 3, lo = c == 0xe0 ? 0xa0 : 0x80, hi = c == 0xed ? 0x9f : 0xbf;
  else if (c >= 0xf0 && c <= 0xf4) n = 4, lo = c == 0xf0 ? 0x90 : 0x80, hi = c == 0xf4 ? 0x8f : 0xbf;
  if (n == 0 || left < n || p[1] < lo || p[1] > hi) return 0;
  for (size_t k = 2; k < n; ++k)
    if ((p[k] & 0xc0) != 0x80) return 0;
  return n;
}

void check_choice(const std::string& value, std::initializer_list<const char*> known, const std::string& where,
                  const char* key) {
  for (const char* k : known)
    if (value == k) return;
  std::string list;
  for (const char* k : known) {
    if (!list.empty()) list.append(", ");
    if (*k) list.append("\"").append(k).append("\"");
    else list.append("null");
  }
  throw ValueError(where + ": " + key + " \"" + value + "\" is not supported (supported: " + list + ")");
}

}  // namespace

TextVectorization::TextVectorization(Options o) : o_(std::move(o)) {
  const std::string at = where_of(o_.name);
  check_choice(o_.standardize, {"lower_and_strip_punctuation", "lower", "strip_punctuation", ""}, at, "standardize");
  check_choice(o_.split, {"whitespace", "character", ""}, at, "split");
  if (o_.output_mode != "int")
    throw ValueError(at + ": output_mode \"" + o_.output_mode +
                     "\" is not supported; Lamina implements output_mode \"int\" only (token indices, for Embedding)");
  check_choice(o_.padding, {"post", "pre"}, at, "padding");
  check_choice(o_.truncating, {"post", "pre"}, at, "truncating");
  if (o_.max_tokens && *o_.max_tokens < 2)
    throw ValueError(at + ": max_tokens must be greater than 1 (it counts the padding and [UNK] tokens), got " +
                     std::to_string(*o_.max_tokens));
  if (o_.output_sequence_length && *o_.output_sequence_length < 1)
    throw ValueError(at + ": output_sequence_length must be a positive integer, got " +
                     std::to_string(*o_.output_sequence_length));
  if (!o_.vocabulary.empty()) set_vocabulary(o_.vocabulary);
  o_.vocabulary.clear();  // vocabulary_ holds it from here on
}

TextVectorization::TextVectorization() : TextVectorization(Options{}) {}

void TextVectorization::standardize_into(std::string_view text, std::string& out) const {
  const bool lower = o_.standardize == "lower" || o_.standardize == "lower_and_strip_punctuation";
  const bool strip = o_.standardize == "strip_punctuation" || o_.standardize == "lower_and_strip_punctuation";
  out.clear();
  out.reserve(text.size());
  const auto* p = reinterpret_cast<const unsigned char*>(text.data());
  for (size_t i = 0; i < text.size();) {
    const unsigned char c = p[i];
    if (c < 0x80) {
      if (!(strip && is_punctuation(c))) out.push_back(static_cast<char>(lower && c >= 'A' && c <= 'Z' ? c - 'A' + 'a' : c));
      ++i;
    } else if (const size_t n = utf8_length(p + i, text.size() - i)) {
      out.append(text.substr(i, n));
      i += n;
    } else {  // not UTF-8: U+FFFD, so that every token (and the saved vocabulary) is valid UTF-8
      out.append("\xef\xbf\xbd");
      ++i;
    }
  }
}

std::string TextVectorization::standardize(std::string_view text) const {
  std::string out;
  standardize_into(text, out);
  return out;
}

template <class F>
void TextVectorization::split_each(std::string_view s, F&& f) const {
  if (o_.split.empty()) {
    f(s);
  } else if (o_.split == "whitespace") {
    size_t i = 0;
    while (i < s.size()) {
      while (i < s.size() && is_space(static_cast<unsigned char>(s[i]))) ++i;
      const size_t start = i;
      while (i < s.size() && !is_space(static_cast<unsigned char>(s[i]))) ++i;
      if (i > start) f(s.substr(start, i - start));
    }
  } else {  // character: a lead byte and its continuation bytes (10xxxxxx)
    size_t i = 0;
    while (i < s.size()) {
      const size_t start = i++;
      while (i < s.size() && (static_cast<unsigned char>(s[i]) & 0xc0) == 0x80) ++i;
      f(s.substr(start, i - start));
    }
  }
}

template <class F>
void TextVectorization::for_each_token(std::string_view text, std::string& buffer, F&& f) const {
  standardize_into(text, buffer);
  split_each(buffer, f);
}

std::vector<std::string_view> TextVectorization::split(std::string_view standardized) const {
  std::vector<std::string_view> tokens;
  split_each(standardized, [&](std::string_view t) { tokens.push_back(t); });
  return tokens;
}

void TextVectorization::adapt(std::span<const std::string> texts) {
  const std::string at = where_of(o_.name);
  if (texts.empty()) throw ValueError(at + ": adapt got no texts");
  std::unordered_map<std::string, int64_t, Hash, std::equal_to<>> counts;
  counts.reserve(size_t{1} << 16);
  std::string buffer;
  for (const std::string& text : texts)
    for_each_token(text, buffer, [&](std::string_view token) {
      auto it = counts.find(token);
      if (it == counts.end()) it = counts.emplace(std::string(token), 0).first;
      ++it->second;
    });
  // Keras removes its special tokens from the counts before sorting.
  counts.erase(std::string(kPadToken));
  counts.erase(std::string(kOovToken));
  if (counts.empty())
    throw ValueError(at + ": adapt found no tokens in its " + std::to_string(texts.size()) +
                     " texts (all empty after standardize \"" + o_.standardize + "\" and split)");
  std::vector<std::pair<int64_t, const std::string*>> order;
  order.reserve(counts.size());
  for (const auto& [token, count] : counts) order.emplace_back(count, &token);
  const size_t keep = o_.max_tokens ? std::min<size_t>(order.size(), static_cast<size_t>(*o_.max_tokens - kSpecialTokens))
                                    : order.size();
  auto before = [](const auto& l, const auto& r) { return l.first != r.first ? l.first > r.first : *l.second > *r.second; };
  std::partial_sort(order.begin(), order.begin() + static_cast<std::ptrdiff_t>(keep), order.end(), before);
  std::vector<std::string> vocabulary;
  vocabulary.reserve(keep + kSpecialTokens);
  vocabulary.emplace_back(kPadToken);
  vocabulary.emplace_back(kOovToken);
  for (size_t i = 0; i < keep; ++i) vocabulary.push_back(*order[i].second);
  set_vocabulary(vocabulary);
}

void TextVectorization::set_vocabulary(const std::vector<std::string>& vocabulary) {
  const std::string at = where_of(o_.name);
  if (vocabulary.empty()) throw ValueError(at + ": cannot set an empty vocabulary");
  const bool has_specials = vocabulary.size() >= 2 && vocabulary[0] == kPadToken && vocabulary[1] == kOovToken;
  const size_t first = has_specials ? kSpecialTokens : 0;
  std::vector<std::string> full{kPadToken, kOovToken};
  full.insert(full.end(), vocabulary.begin() + static_cast<std::ptrdiff_t>(first), vocabulary.end());
  if (o_.max_tokens && static_cast<int64_t>(full.size()) > *o_.max_tokens)
    throw ValueError(at + ": the vocabulary has " + std::to_string(full.size()) +
                     " entries with \"\" and [UNK], more than max_tokens " + std::to_string(*o_.max_tokens));
  if (full.size() > (size_t{1} << 24))  // the output holds indices as float32, exact up to 2^24
    throw ValueError(at + ": the vocabulary has " + std::to_string(full.size()) +
                     " entries; indices are returned as float32, exact only up to 16,777,216");
  decltype(index_) index;
  index.reserve(full.size());
  for (size_t i = 0; i < full.size(); ++i) {
    if (i >= kSpecialTokens && full[i] == kPadToken)
      throw ValueError(at + ": the vocabulary holds the padding token \"\" at index " + std::to_string(i) +
                       "; give it only first, followed by \"[UNK]\", or not at all");
    if (!index.emplace(full[i], static_cast<int64_t>(i)).second)
      throw ValueError(at + ": the vocabulary repeats the token \"" + full[i] + "\" (index " + std::to_string(i) + ")");
  }
  vocabulary_ = std::move(full);
  index_ = std::move(index);
}

int64_t TextVectorization::index_of(std::string_view token) const {
  const auto it = index_.find(token);
  return it == index_.end() ? 1 : it->second;
}

std::vector<int64_t> TextVectorization::encode(std::string_view text) const {
  std::vector<int64_t> ids;
  std::string buffer;
  for_each_token(text, buffer, [&](std::string_view token) { ids.push_back(index_of(token)); });
  return ids;
}

Tensor TextVectorization::operator()(std::span<const std::string> texts) const {
  const std::string at = where_of(o_.name);
  if (texts.empty()) throw ValueError(at + ": got no texts to vectorize");
  if (vocabulary_.empty())
    throw ValueError(at + ": has no vocabulary; call adapt(texts) or give a vocabulary first");
  // All texts' indices end to end (starts[i] where text i begins), then placed into the rows.
  std::vector<int32_t> ids;
  std::vector<size_t> starts(texts.size() + 1, 0);
  std::string buffer;
  size_t longest = 0;
  for (size_t i = 0; i < texts.size(); ++i) {
    for_each_token(texts[i], buffer, [&](std::string_view token) { ids.push_back(static_cast<int32_t>(index_of(token))); });
    starts[i + 1] = ids.size();
    longest = std::max(longest, starts[i + 1] - starts[i]);
  }
  const auto length = o_.output_sequence_length ? static_cast<size_t>(*o_.output_sequence_length) : longest;
  if (length == 0)
    throw ValueError(at + ": every one of the " + std::to_string(texts.size()) +
                     " texts is empty after standardize and split, and no output_sequence_length is set");
  Tensor out = Tensor::zeros(Shape{static_cast<int64_t>(texts.size()), static_cast<int64_t>(length)});
  float* y = out.data();
  const bool pad_front = o_.padding == "pre", cut_front = o_.truncating == "pre";
  for (size_t i = 0; i < texts.size(); ++i, y += length) {
    const int32_t* r = ids.data() + starts[i];
    const size_t size = starts[i + 1] - starts[i], n = std::min(size, length);
    const size_t from = cut_front ? size - n : 0;  // the tokens kept: [from, from + n)
    const size_t to = pad_front ? length - n : 0;  // where they go in the row
    for (size_t k = 0; k < n; ++k) y[to + k] = static_cast<float>(r[from + k]);
  }
  return out;
}

Json TextVectorization::config() const {
  Json vocabulary = Json::array();
  for (const std::string& t : vocabulary_) vocabulary.push_back(t);
  auto optional_int = [](const std::optional<int64_t>& v) { return v ? Json(*v) : Json(nullptr); };
  auto optional_string = [](const std::string& s) { return s.empty() ? Json(nullptr) : Json(s); };
  Json c = {{"name", o_.name},
            {"trainable", true},
            {"dtype", "string"},
            {"max_tokens", optional_int(o_.max_tokens)},
            {"standardize", optional_string(o_.standardize)},
            {"split", optional_string(o_.split)},
            {"ngrams", nullptr},
            {"output_mode", o_.output_mode},
            {"output_sequence_length", optional_int(o_.output_sequence_length)},
            {"pad_to_max_tokens", false},
            {"sparse", false},
            {"ragged", false},
            {"vocabulary", vocabulary_.empty() ? Json(nullptr) : vocabulary},
            {"idf_weights", nullptr},
            {"encoding", "utf-8"},
            {"vocabulary_size", vocabulary_size()}};
  if (o_.padding != "post") c["padding"] = o_.padding;
  if (o_.truncating != "post") c["truncating"] = o_.truncating;
  return c;
}

TextVectorization TextVectorization::from_config(const Json& c) {
  if (!c.is_object()) throw ValueError("TextVectorization: config must be a JSON object, got " + c.dump());
  Options o;
  if (c.contains("name") && c["name"].is_string()) o.name = c["name"].get<std::string>();
  const std::string at = where_of(o.name);
  static const std::set<std::string> known = {
      "name",         "trainable", "dtype",     "max_tokens", "standardize", "split",    "ngrams",
      "output_mode",  "output_sequence_length", "pad_to_max_tokens",         "sparse",   "ragged",
      "vocabulary",   "idf_weights",            "encoding",   "vocabulary_size",         "padding", "truncating"};
  for (const auto& [key, value] : c.items())
    if (!known.count(key)) throw ValueError(at + ": unknown config key '" + key + "'");
  auto is_set = [&](const char* key) { return c.contains(key) && !c[key].is_null(); };
  auto string_of = [&](const char* key, std::string fallback, bool null_is_empty) -> std::string {
    if (!c.contains(key)) return fallback;
    if (c[key].is_null() && null_is_empty) return "";
    if (!c[key].is_string()) throw ValueError(at + ": '" + key + "' must be a string, got " + c[key].dump());
    return c[key].get<std::string>();
  };
  auto positive_of = [&](const char* key) -> std::optional<int64_t> {
    if (!is_set(key)) return std::nullopt;
    if (!c[key].is_number_integer()) throw ValueError(at + ": '" + key + "' must be an integer or null, got " + c[key].dump());
    return c[key].get<int64_t>();
  };
  auto refuse_true = [&](const char* key) {
    if (!is_set(key)) return;
    if (!c[key].is_boolean()) throw ValueError(at + ": '" + key + "' must be true or false, got " + c[key].dump());
    if (c[key].get<bool>()) throw ValueError(at + ": " + key + "=true is not supported (Lamina returns dense int indices)");
  };
  o.max_tokens = positive_of("max_tokens");
  o.output_sequence_length = positive_of("output_sequence_length");
  o.standardize = string_of("standardize", o.standardize, true);
  o.split = string_of("split", o.split, true);
  o.output_mode = string_of("output_mode", o.output_mode, false);
  o.padding = string_of("padding", o.padding, false);
  o.truncating = string_of("truncating", o.truncating, false);
  if (is_set("ngrams"))
    throw ValueError(at + ": ngrams " + c["ngrams"].dump() + " is not supported (only null: single tokens)");
  refuse_true("pad_to_max_tokens");
  refuse_true("sparse");
  refuse_true("ragged");
  if (is_set("idf_weights")) throw ValueError(at + ": idf_weights go with output_mode \"tf_idf\", which is not supported");
  if (is_set("encoding")) {
    std::string e = string_of("encoding", "utf-8", false);
    std::transform(e.begin(), e.end(), e.begin(), [](unsigned char ch) { return static_cast<char>(std::tolower(ch)); });
    if (e != "utf-8" && e != "utf8") throw ValueError(at + ": encoding \"" + e + "\" is not supported (only utf-8)");
  }
  if (is_set("vocabulary")) {
    const Json& v = c["vocabulary"];
    if (!v.is_array()) throw ValueError(at + ": 'vocabulary' must be a list of strings (a file path is not supported)");
    for (const Json& t : v) {
      if (!t.is_string()) throw ValueError(at + ": 'vocabulary' holds a non-string " + t.dump());
      o.vocabulary.push_back(t.get<std::string>());
    }
    if (o.vocabulary.empty()) throw ValueError(at + ": cannot set an empty vocabulary");
  }
  TextVectorization tv(std::move(o));
  if (is_set("vocabulary_size") && tv.has_vocabulary() &&
      (!c["vocabulary_size"].is_number_integer() || c["vocabulary_size"].get<int64_t>() != tv.vocabulary_size()))
    throw ValueError(at + ": vocabulary_size " + c["vocabulary_size"].dump() + " does not match the " +
                     std::to_string(tv.vocabulary_size()) + " entries of its vocabulary");
  return tv;
}

namespace data {

LabeledTexts read_text_tsv(const std::string& path) {
  const std::string bytes = io::read_file(path);
  LabeledTexts out;
  size_t pos = 0, line = 0;
  while (pos < bytes.size()) {
    ++line;
    size_t end = bytes.find('\n', pos);
    if (end == std::string::npos) end = bytes.size();
    std::string_view row(bytes.data() + pos, end - pos);
    pos = end + 1;
    if (!row.empty() && row.back() == '\r') row.remove_suffix(1);
    if (row.empty()) continue;
    const std::string at = path + ": line " + std::to_string(line);
    const size_t tab = row.find('\t');
    if (tab == std::string_view::npos) throw IoError(at + ": expected LABEL<TAB>TEXT, found no tab");
    float label = 0;
    const auto [p, ec] = std::from_chars(row.data(), row.data() + tab, label);
    if (ec != std::errc() || p != row.data() + tab)
      throw IoError(at + ": label '" + std::string(row.substr(0, tab)) + "' is not a number");
    std::string text;
    text.reserve(row.size() - tab - 1);
    for (size_t i = tab + 1; i < row.size(); ++i) {
      const size_t slash = std::min(row.find('\\', i), row.size());
      text.append(row.substr(i, slash - i));  // the plain run up to the next escape
      if ((i = slash) == row.size()) break;
      const char e = i + 1 < row.size() ? row[++i] : '\0';
      switch (e) {
        case '\\': text.push_back('\\'); break;
        case 't': text.push_back('\t'); break;
        case 'n': text.push_back('\n'); break;
        case 'r': text.push_back('\r'); break;
        default:
          throw IoError(at + ": unknown escape '\\" + std::string(e ? 1 : 0, e) +
                        "' (the text may hold \\\\, \\t, \\n and \\r)");
      }
    }
    out.texts.push_back(std::move(text));
    out.labels.push_back(label);
  }
  if (out.texts.empty()) throw IoError(path + ": no texts (expected lines of LABEL<TAB>TEXT)");
  return out;
}

}  // namespace data

}  // namespace lamina
