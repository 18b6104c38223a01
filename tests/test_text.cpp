// TextVectorization against Keras' documented behaviour (the docstring's two examples, its
// sort of equal counts, its punctuation regex), Lamina's padding/truncating, the config both ways,
// the vectorizer saved with a model, and the labelled-text reader on the committed fixture
// tests/fixtures/text/ (never the IMDB download).
#include <gtest/gtest.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>

#include "test_util.hpp"

namespace lamina {
namespace {

namespace fs = std::filesystem;
using testing::error_of;

std::vector<float> row(const Tensor& t, int64_t r) {
  const int64_t w = t.dim(1);
  return {t.data() + r * w, t.data() + (r + 1) * w};
}

std::vector<float> all(const Tensor& t) { return {t.data(), t.data() + t.numel()}; }

fs::path temp_file(const std::string& name) {
  return fs::temp_directory_path() / ("lamina_test_text_" + std::to_string(::getpid()) + "_" + name);
}

// Keras' TextVectorization docstring, first example: adapt, then int output padded to 4.
TEST(TextVectorization, KerasDocstringAdaptExample) {
  TextVectorization tv({.max_tokens = 5000, .output_sequence_length = 4});
  tv.adapt(std::vector<std::string>{"foo bar", "bar baz", "baz bada boom"});
  // bar and baz twice (equal counts: descending token order puts baz first), then the rest.
  EXPECT_EQ(tv.get_vocabulary(), (std::vector<std::string>{"", "[UNK]", "baz", "bar", "foo", "boom", "bada"}));
  const Tensor y = tv(std::vector<std::string>{"foo qux bar", "qux baz"});
  ASSERT_EQ(y.shape(), (Shape{2, 4}));
  EXPECT_EQ(row(y, 0), (std::vector<float>{4, 1, 3, 0}));  // Keras: [[4, 1, 3, 0], [1, 2, 0, 0]]
  EXPECT_EQ(row(y, 1), (std::vector<float>{1, 2, 0, 0}));
}

// The second docstring example: a vocabulary given up front.
TEST(TextVectorization, KerasDocstringVocabularyExample) {
  TextVectorization tv({.max_tokens = 5000, .output_sequence_length = 4, .vocabulary = {"earth", "wind", "and", "fire"}});
  EXPECT_EQ(tv.get_vocabulary(), (std::vector<std::string>{"", "[UNK]", "earth", "wind", "and", "fire"}));
  const Tensor y = tv(std::vector<std::string>{"earth wind and also fire", "fire and earth"});
  EXPECT_EQ(row(y, 0), (std::vector<float>{2, 3, 4, 1}));  // Keras: [[2, 3, 4, 1], [5, 4, 2, 0]]
  EXPECT_EQ(row(y, 1), (std::vector<float>{5, 4, 2, 0}));
  // get_vocabulary() given back (with "" and [UNK] first) is the same vocabulary.
  TextVectorization again({.vocabulary = tv.get_vocabulary()});
  EXPECT_EQ(again.get_vocabulary(), tv.get_vocabulary());
}

TEST(TextVectorization, StandardizeModes) {
  const std::string text = "Don't STOP-me <br />now, Émile!";
  EXPECT_EQ(TextVectorization().standardize(text), "dont stopme br now Émile");  // ASCII only is lowered
  EXPECT_EQ(TextVectorization({.standardize = "lower"}).standardize(text), "don't stop-me <br />now, Émile!");
  EXPECT_EQ(TextVectorization({.standardize = "strip_punctuation"}).standardize(text), "Dont STOPme br now Émile");
  EXPECT_EQ(TextVectorization({.standardize = ""}).standardize(text), text);
  // Bytes that are not UTF-8 (Latin-1 "é", a cut sequence) become U+FFFD, so a vocabulary adapted
  // on them still writes as JSON (the model file's metadata).
  EXPECT_EQ(TextVectorization().standardize("caf\xe9 x\xc3"), "caf\xef\xbf\xbd x\xef\xbf\xbd");
  TextVectorization latin1;
  latin1.adapt(std::vector<std::string>{"caf\xe9 caf\xe9 ok"});
  EXPECT_EQ(latin1.get_vocabulary()[2], "caf\xef\xbf\xbd");
  EXPECT_NO_THROW(latin1.config().dump());
  // Exactly the 32 ASCII punctuation characters of Keras' regex go; digits, letters, spaces stay.
  std::string all;
  for (int c = 0x20; c < 0x7f; ++c) all.push_back(static_cast<char>(c));
  EXPECT_EQ(TextVectorization({.standardize = "strip_punctuation"}).standardize(all),
            " 0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz");
}

TEST(TextVectorization, SplitModes) {
  auto tokens = [](const TextVectorization& tv, const std::string& s) {
    std::vector<std::string> out;
    for (auto t : tv.split(s)) out.emplace_back(t);
    return out;
  };
  EXPECT_EQ(tokens(TextVectorization(), "  a\tbb\n\r ccc  "), (std::vector<std::string>{"a", "bb", "ccc"}));
  EXPECT_EQ(tokens(TextVectorization(), "   "), std::vector<std::string>{});
  EXPECT_EQ(tokens(TextVectorization({.split = "character"}), "a é"), (std::vector<std::string>{"a", " ", "é"}));
  EXPECT_EQ(tokens(TextVectorization({.split = ""}), "a b"), (std::vector<std::string>{"a b"}));
}

TEST(TextVectorization, MaxTokensKeepsTheMostFrequent) {
  TextVectorization tv({.max_tokens = 4});
  tv.adapt(std::vector<std::string>{"c c c b b a d d d d", "e"});
  EXPECT_EQ(tv.get_vocabulary(), (std::vector<std::string>{"", "[UNK]", "d", "c"}));
  EXPECT_EQ(tv.vocabulary_size(), 4);
  EXPECT_EQ(row(tv(std::vector<std::string>{"a b c d z"}), 0), (std::vector<float>{1, 1, 3, 2, 1}));
  // "[UNK]" and "" in the texts are not learned as tokens (Keras removes its special tokens).
  TextVectorization raw({.standardize = "", .split = ""});
  raw.adapt(std::vector<std::string>{"[UNK]", "x", "x", ""});
  EXPECT_EQ(raw.get_vocabulary(), (std::vector<std::string>{"", "[UNK]", "x"}));
}

TEST(TextVectorization, PaddingAndTruncating) {
  const std::vector<std::string> vocab{"a", "b", "c", "d", "e"};  // a=2 ... e=6
  const std::vector<std::string> texts{"a b c d e", "a b"};
  auto run = [&](const std::string& padding, const std::string& truncating) {
    return TextVectorization(
        {.output_sequence_length = 3, .vocabulary = vocab, .padding = padding, .truncating = truncating})(texts);
  };
  Tensor y = run("post", "post");  // Keras' own behaviour
  EXPECT_EQ(row(y, 0), (std::vector<float>{2, 3, 4}));
  EXPECT_EQ(row(y, 1), (std::vector<float>{2, 3, 0}));
  y = run("pre", "pre");  // keras.utils.pad_sequences' defaults
  EXPECT_EQ(row(y, 0), (std::vector<float>{4, 5, 6}));
  EXPECT_EQ(row(y, 1), (std::vector<float>{0, 2, 3}));
  y = run("pre", "post");
  EXPECT_EQ(row(y, 0), (std::vector<float>{2, 3, 4}));
  EXPECT_EQ(row(y, 1), (std::vector<float>{0, 2, 3}));
  // No output_sequence_length: padded to the call's longest text.
  y = TextVectorization({.vocabulary = vocab, .padding = "pre"})(texts);
  ASSERT_EQ(y.shape(), (Shape{2, 5}));
  EXPECT_EQ(row(y, 1), (std::vector<float>{0, 0, 0, 2, 3}));
  // A text with no tokens is a row of padding.
  y = TextVectorization({.output_sequence_length = 2, .vocabulary = vocab})(std::vector<std::string>{"?!", ""});
  EXPECT_EQ(row(y, 0), (std::vector<float>{0, 0}));
  EXPECT_EQ(row(y, 1), (std::vector<float>{0, 0}));
}

TEST(TextVectorization, ConfigRoundTripAndKerasKeys) {
  TextVectorization tv({.max_tokens = 10, .standardize = "lower", .split = "character", .output_sequence_length = 7,
                        .padding = "pre", .name = "vec"});
  tv.adapt(std::vector<std::string>{"abcab"});
  const Json c = tv.config();
  for (const char* key : {"name", "trainable", "dtype", "max_tokens", "standardize", "split", "ngrams", "output_mode",
                          "output_sequence_length", "pad_to_max_tokens", "sparse", "ragged", "vocabulary",
                          "idf_weights", "encoding", "vocabulary_size"})
    EXPECT_TRUE(c.contains(key)) << key;
  EXPECT_EQ(c["padding"], "pre");
  EXPECT_FALSE(c.contains("truncating"));  // Lamina's keys appear only when not Keras' behaviour
  EXPECT_EQ(c["vocabulary_size"], 5);
  const TextVectorization back = TextVectorization::from_config(c);
  EXPECT_EQ(back.config(), c);
  const std::vector<std::string> texts{"cab", "zz"};
  EXPECT_EQ(row(back(texts), 0), row(tv(texts), 0));
  // Keras' None for standardize and split.
  Json none = c;
  none["standardize"] = nullptr;
  none["split"] = nullptr;
  EXPECT_EQ(TextVectorization::from_config(none).options().split, "");
  EXPECT_EQ(TextVectorization::from_config(none).config()["standardize"], nullptr);
}

TEST(TextVectorization, Errors) {
  EXPECT_CONTAINS(error_of<ValueError>([] { TextVectorization({.output_mode = "multi_hot"}); }),
                  "output_mode \"multi_hot\" is not supported");
  EXPECT_CONTAINS(error_of<ValueError>([] { TextVectorization({.standardize = "upper"}); }),
                  "standardize \"upper\" is not supported");
  EXPECT_CONTAINS(error_of<ValueError>([] { TextVectorization({.split = "comma"}); }), "split \"comma\"");
  EXPECT_CONTAINS(error_of<ValueError>([] { TextVectorization({.padding = "both"}); }), "padding \"both\"");
  EXPECT_CONTAINS(error_of<ValueError>([] { TextVectorization({.max_tokens = 1}); }), "greater than 1");
  EXPECT_CONTAINS(error_of<ValueError>([] { TextVectorization({.output_sequence_length = 0}); }),
                  "output_sequence_length must be a positive integer");
  EXPECT_CONTAINS(error_of<ValueError>([] { TextVectorization({.max_tokens = 3, .vocabulary = {"a", "b"}}); }),
                  "more than max_tokens 3");
  EXPECT_CONTAINS(error_of<ValueError>([] { TextVectorization({.vocabulary = {"a", "b", "a"}}); }),
                  "repeats the token \"a\"");
  EXPECT_CONTAINS(error_of<ValueError>([] { TextVectorization().adapt(std::vector<std::string>{}); }), "no texts");
  EXPECT_CONTAINS(error_of<ValueError>([] { TextVectorization().adapt(std::vector<std::string>{"", "?!"}); }),
                  "found no tokens");
  EXPECT_CONTAINS(error_of<ValueError>([] { TextVectorization()(std::vector<std::string>{"a"}); }), "no vocabulary");
  EXPECT_CONTAINS(error_of<ValueError>([] { TextVectorization({.vocabulary = {"a"}})(std::vector<std::string>{}); }),
                  "no texts");
  EXPECT_CONTAINS(error_of<ValueError>([] { TextVectorization({.vocabulary = {"a"}})(std::vector<std::string>{"!"}); }),
                  "every one of the 1 texts is empty");
  Json c = TextVectorization({.vocabulary = {"a"}}).config();
  c["ngrams"] = 2;
  EXPECT_CONTAINS(error_of<ValueError>([&] { TextVectorization::from_config(c); }), "ngrams 2 is not supported");
  c["ngrams"] = nullptr;
  c["vocabulary_size"] = 9;
  EXPECT_CONTAINS(error_of<ValueError>([&] { TextVectorization::from_config(c); }), "vocabulary_size 9 does not match");
  c.erase("vocabulary_size");
  c["stopwords"] = true;
  EXPECT_CONTAINS(error_of<ValueError>([&] { TextVectorization::from_config(c); }), "unknown config key 'stopwords'");
  c.erase("stopwords");
  c["ragged"] = true;
  EXPECT_CONTAINS(error_of<ValueError>([&] { TextVectorization::from_config(c); }), "ragged=true is not supported");
}

// A model with a vectorizer saves it in the file and predicts on raw text after load and clone.
TEST(TextVectorization, SavedWithTheModel) {
  TextVectorization tv({.max_tokens = 50, .output_sequence_length = 6, .padding = "pre"});
  tv.adapt(std::vector<std::string>{"good great fine", "bad awful poor", "good movie", "bad movie"});
  manual_seed(3);
  Sequential model({layers::Dense({.units = 1, .activation = Activation::sigmoid, .input_shape = Shape{6}})});
  model.compile("adam", Loss::binary_crossentropy, {"accuracy"});
  model.build(Shape{6});
  EXPECT_CONTAINS(error_of<ValueError>([&] { model.predict(std::vector<std::string>{"good"}); }),
                  "has no text vectorization");
  model.set_text_vectorization(tv);
  const std::vector<std::string> texts{"Good, GREAT movie!", "awful"};
  const Tensor before = model.predict(texts);
  ASSERT_EQ(before.shape(), (Shape{2, 1}));
  const fs::path path = temp_file("model.safetensors");
  model.save(path.string());
  Model loaded = Model::load(path.string());
  ASSERT_NE(loaded.text_vectorization(), nullptr);
  EXPECT_EQ(loaded.text_vectorization()->get_vocabulary(), tv.get_vocabulary());
  EXPECT_EQ(loaded.text_vectorization()->options().padding, "pre");
  const Tensor after = loaded.predict(texts);
  EXPECT_EQ(all(after), all(before));
  EXPECT_EQ(all(model.clone().predict(texts)), all(before));
  fs::remove(path);
  EXPECT_CONTAINS(error_of<ValueError>([&] { model.set_text_vectorization(TextVectorization()); }),
                  "has no vocabulary yet");
}

TEST(TextTsv, ReadsTheFixtureAndUnescapes) {
  const data::LabeledTexts t = data::read_text_tsv(std::string(LAMINA_FIXTURE_DIR) + "/text/train.tsv");
  ASSERT_EQ(t.texts.size(), 16u);
  ASSERT_EQ(t.labels.size(), 16u);
  EXPECT_EQ(t.labels[0], 1.f);
  const fs::path path = temp_file("escapes.tsv");
  std::ofstream(path) << "0\ta\\tb\\nc\\\\d\\re\r\n\n1\tplain\n";
  const data::LabeledTexts e = data::read_text_tsv(path.string());
  ASSERT_EQ(e.texts.size(), 2u);
  EXPECT_EQ(e.texts[0], "a\tb\nc\\d\re");
  EXPECT_EQ(e.labels[1], 1.f);
  std::ofstream(path) << "1\tok\nnolabel\n";
  EXPECT_CONTAINS(error_of<IoError>([&] { data::read_text_tsv(path.string()); }), "line 2: expected LABEL<TAB>TEXT");
  std::ofstream(path) << "x\tok\n";
  EXPECT_CONTAINS(error_of<IoError>([&] { data::read_text_tsv(path.string()); }), "label 'x' is not a number");
  std::ofstream(path) << "1\tbad \\q escape\n";
  EXPECT_CONTAINS(error_of<IoError>([&] { data::read_text_tsv(path.string()); }), "unknown escape '\\q'");
  std::ofstream(path) << "\n";
  EXPECT_CONTAINS(error_of<IoError>([&] { data::read_text_tsv(path.string()); }), "no texts");
  fs::remove(path);
}

// Speed: a fifth of IMDB's training split in review-sized texts (~230 words, 3,000 distinct
// words in a Zipf-like mix) adapts and vectorizes in well under a second on an idle core; the
// bound leaves room for a loaded test machine. (All 24,791 IMDB reviews: read 0.4 s, adapt 1.0 s,
// vectorize 1.0 s of CPU on a busy 2-core machine.)
TEST(TextVectorization, AdaptIsFast) {
  std::vector<std::string> words(3000);
  for (size_t i = 0; i < words.size(); ++i) words[i] = "Word" + std::to_string(i);
  std::vector<std::string> texts(5000);
  Generator gen(1);
  for (std::string& t : texts)
    for (int w = 0; w < 230; ++w) {
      const float u = gen.uniform();
      t += words[static_cast<size_t>(u * u * u * 2999.f)];
      t += w % 10 == 0 ? ", " : " ";
    }
  TextVectorization tv({.max_tokens = 2000, .output_sequence_length = 200});
  const auto start = std::chrono::steady_clock::now();
  tv.adapt(texts);
  const Tensor y = tv(texts);
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  EXPECT_EQ(y.shape(), (Shape{5000, 200}));
  EXPECT_EQ(tv.vocabulary_size(), 2000);
  EXPECT_LT(seconds, 3.0) << "adapt + vectorize of 5,000 texts";
}

}  // namespace
}  // namespace lamina
