// The training report page (report.hpp): its structure from a hand-made report JSON, the
// self-containment promises (CSP, no script, no outside URL), escaping, live-progress markup,
// and TensorBoard's smoothing against values worked out by hand.
#include <gtest/gtest.h>

#include <cmath>
#include <string>

#include "lamina/lamina.hpp"
#include "lamina/report.hpp"

namespace lamina {
namespace {

size_t count(const std::string& s, const std::string& needle) {
  size_t n = 0;
  for (size_t at = s.find(needle); at != std::string::npos; at = s.find(needle, at + needle.size())) ++n;
  return n;
}

// The text between the first `open` at or after `from` and the next `close`.
std::string between(const std::string& s, const std::string& open, const std::string& close, size_t from = 0) {
  const size_t a = s.find(open, from);
  if (a == std::string::npos) return "";
  const size_t b = s.find(close, a + open.size());
  return s.substr(a + open.size(), b == std::string::npos ? std::string::npos : b - a - open.size());
}

Json sample_report() {
  return Json::parse(R"({
    "history": {"loss": [1.2, 0.8, 0.6], "val_loss": [1.3, 0.9, 0.7],
                "accuracy": [0.5, 0.7, 0.8], "val_accuracy": [0.45, 0.65, 0.75],
                "learning_rate": [0.01, 0.01, 0.005]},
    "epoch_seconds": [0.5, 0.4, 0.45],
    "test": {"loss": 0.71, "accuracy": 0.75},
    "confusion_matrix": [[5, 1, 0], [2, 3, 1], [0, 0, 4]],
    "class_names": ["cat", "dog <b>&", "bird"],
    "summary": "Model: \"tiny<script>\"\n dense (Dense)  (None, 3)  15",
    "compile": {"optimizer": {"class_name": "Adam", "config": {"learning_rate": 0.01, "beta_1": 0.9}},
                "loss": "sparse_categorical_crossentropy", "metrics": ["accuracy"]},
    "params": 15, "seed": 3, "threads": 2, "peak_rss_mb": 123.4, "epochs": 3, "initial_epoch": 0,
    "batch_size": 16, "validation_split": 0.1, "spec": "specs/tiny.json"
  })");
}

TEST(Report, PageStructure) {
  const std::string html = training_report_html(sample_report());
  // One path per logged series, named by its history key; no smoothed copies without smoothing.
  EXPECT_EQ(count(html, "class=\"series\""), 5u);
  for (const char* key : {"loss", "val_loss", "accuracy", "val_accuracy", "learning_rate"})
    EXPECT_EQ(count(html, std::string("class=\"series\" data-series=\"") + key + "\""), 1u) << key;
  EXPECT_EQ(count(html, "class=\"series-smoothed\""), 0u);
  // Charts: loss (+ val), accuracy (+ val), learning rate; epoch times as bars; each with both axis labels.
  EXPECT_EQ(count(html, "<svg class=\"chart\""), 3u);
  EXPECT_EQ(count(html, "<svg class=\"bars\" data-chart=\"epoch_seconds\""), 1u);
  for (const char* chart : {"loss", "accuracy", "learning_rate", "epoch_seconds"})
    EXPECT_EQ(count(html, std::string("data-chart=\"") + chart + "\""), 1u) << chart;
  // val_loss is drawn in the loss chart, on the same axes.
  const std::string loss_chart = between(html, "data-chart=\"loss\"", "</svg>");
  EXPECT_EQ(count(loss_chart, "data-series=\"val_loss\""), 1u);
  EXPECT_EQ(count(loss_chart, "data-series=\"loss\""), 1u);
  EXPECT_EQ(count(loss_chart, "class=\"axis-label\""), 2u);
  EXPECT_EQ(count(loss_chart, ">epoch</text>"), 1u);
  EXPECT_EQ(count(html, ">epoch</text>"), 4u);
  EXPECT_EQ(count(between(html, "data-chart=\"epoch_seconds\"", "</svg>"), "class=\"bar\""), 3u);
  // The confusion matrix: K * K cells, each pair once, and its axis labels.
  const std::string matrix = between(html, "<svg class=\"confusion\"", "</svg>");
  EXPECT_EQ(count(matrix, "class=\"cell\""), 9u);
  for (int t = 0; t < 3; ++t)
    for (int p = 0; p < 3; ++p)
      EXPECT_EQ(count(matrix, "data-true=\"" + std::to_string(t) + "\" data-pred=\"" + std::to_string(p) + "\""), 1u);
  EXPECT_EQ(count(matrix, "class=\"axis-label\""), 2u);
  EXPECT_NE(matrix.find(">true</text>"), std::string::npos);
  EXPECT_NE(matrix.find(">predicted</text>"), std::string::npos);
  // Counts and row shares in the cells: row 1 is 2, 3, 1 of 6.
  EXPECT_NE(matrix.find(">3</text>"), std::string::npos);
  EXPECT_NE(matrix.find(">50%</text>"), std::string::npos);
  // The per-class table: one body row per class; the rest of the page's pieces.
  const std::string body = between(html, "<table class=\"per-class\">", "</table>");
  EXPECT_EQ(count(between(body, "<tbody>", "</tbody>"), "<tr>"), 3u);
  EXPECT_NE(html.find("<table class=\"hyperparams\">"), std::string::npos);
  EXPECT_NE(html.find("<pre class=\"summary\">"), std::string::npos);
  for (const char* row : {">optimizer<", ">Adam<", ">optimizer.learning_rate<", ">batch size<", ">16<",
                          ">validation split<", ">0.1<", ">seed<", ">threads<", ">peak RSS<", ">123.4 MB<"})
    EXPECT_NE(html.find(row), std::string::npos) << row;
}

TEST(Report, SelfContained) {
  HtmlReportOptions o;
  o.wrong = {{std::string("\x89PNG\r\n\x1a\n", 8), "true 4, predicted 9 (0.970)"}};
  o.texts = {{{"a", "<i>", "film"}, {0.5, -0.25, 0.0}, "true 1"}};
  const std::string html = training_report_html(sample_report(), o);
  EXPECT_EQ(html.rfind("<!DOCTYPE html>", 0), 0u);
  EXPECT_NE(html.find("<meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; img-src data:; "
                      "style-src 'unsafe-inline'\">"),
            std::string::npos);
  EXPECT_EQ(html.find("<script"), std::string::npos);
  // Nothing from outside: no URL at all (SVG inside HTML needs no xmlns), only data: images.
  EXPECT_EQ(html.find("http://"), std::string::npos);
  EXPECT_EQ(html.find("https://"), std::string::npos);
  EXPECT_EQ(html.find("url("), std::string::npos);
  EXPECT_EQ(count(html, "src=\""), count(html, "src=\"data:image/png;base64,"));
  EXPECT_EQ(html.find("refresh"), std::string::npos);  // a finished run does not reload
  // The gallery and the tokens.
  EXPECT_EQ(count(html, "<figure class=\"wrong\"><img src=\"data:image/png;base64,iVBORw0KGgo=\""), 1u);
  EXPECT_NE(html.find("true 4, predicted 9 (0.970)"), std::string::npos);
  EXPECT_EQ(count(html, "<span class=\"token\""), 3u);
  EXPECT_NE(html.find("<span class=\"token\" data-score=\"0.5\""), std::string::npos);
  EXPECT_NE(html.find("<span class=\"token\" data-score=\"-0.25\""), std::string::npos);
}

TEST(Report, EscapesText) {
  HtmlReportOptions o;
  o.title = "run <1> & \"two\"";
  o.texts = {{{"<i>"}, {1.0}, "x'y"}};
  const std::string html = training_report_html(sample_report(), o);
  EXPECT_EQ(html.find("<b>"), std::string::npos);
  EXPECT_EQ(html.find("<i>"), std::string::npos);
  EXPECT_EQ(html.find("tiny<script>"), std::string::npos);
  EXPECT_NE(html.find("dog &lt;b&gt;&amp;"), std::string::npos);  // a class name
  EXPECT_NE(html.find("tiny&lt;script&gt;"), std::string::npos);   // the summary
  EXPECT_NE(html.find("run &lt;1&gt; &amp; &quot;two&quot;"), std::string::npos);
  EXPECT_NE(html.find(">&lt;i&gt;</span>"), std::string::npos);
  EXPECT_NE(html.find("x&#39;y"), std::string::npos);
  EXPECT_EQ(html_escape("a<b>&\"c'"), "a&lt;b&gt;&amp;&quot;c&#39;");
}

TEST(Report, LiveProgress) {
  Json r = sample_report();
  r["in_progress"] = true;
  r["epochs"] = 10;
  r["initial_epoch"] = 2;  // resumed after epoch 2, three more done
  r.erase("confusion_matrix");
  r.erase("test");
  const std::string html = training_report_html(r);
  EXPECT_NE(html.find("<meta http-equiv=\"refresh\" content=\"5\">"), std::string::npos);
  EXPECT_NE(html.find("<div class=\"banner\">training: epoch 5 of 10</div>"), std::string::npos);
  EXPECT_EQ(html.find("class=\"confusion\""), std::string::npos);
  EXPECT_EQ(html.find("class=\"per-class\""), std::string::npos);
  // The x axis counts from the resumed epoch: ticks 3, 4, 5.
  const std::string chart = between(html, "data-chart=\"loss\"", "</svg>");
  EXPECT_NE(chart.find(">3</text>"), std::string::npos);
  EXPECT_NE(chart.find(">5</text>"), std::string::npos);
  EXPECT_EQ(chart.find("text-anchor=\"middle\">1</text>"), std::string::npos);
}

TEST(Report, SectionsOnlyWithTheirData) {
  const Json r = Json::parse(R"({"test": {"loss": 0.3}, "params": 10})");
  const std::string html = training_report_html(r);
  EXPECT_EQ(html.find("class=\"chart\""), std::string::npos);
  EXPECT_EQ(html.find("class=\"confusion\""), std::string::npos);
  EXPECT_EQ(html.find("class=\"summary\""), std::string::npos);
  EXPECT_EQ(html.find("class=\"wrong\""), std::string::npos);
  EXPECT_EQ(html.find("class=\"token\""), std::string::npos);
  EXPECT_NE(html.find("<table class=\"hyperparams\">"), std::string::npos);
  // One epoch still draws its point, in the middle of the axis.
  const std::string one = training_report_html(Json::parse(R"({"history": {"loss": [0.5]}})"));
  EXPECT_EQ(count(one, "class=\"series\""), 1u);
  EXPECT_NE(one.find("d=\"M292.50 "), std::string::npos) << between(one, "class=\"series\"", "/>");
  // A NaN (written as null by the JSON library) breaks the line instead of ending the chart.
  const std::string gap = training_report_html(Json::parse(R"({"history": {"loss": [1, null, 0.5, 0.25]}})"));
  EXPECT_EQ(count(between(gap, "class=\"series\"", "/>"), "M"), 2u);
}

TEST(Report, PerClassNumbersFromTheConfusionMatrix) {
  const std::string html = training_report_html(sample_report());
  const std::string body = between(html, "<table class=\"per-class\">", "</table>");
  // Rows (true) [5 1 0], [2 3 1], [0 0 4]: columns (predicted) sum to 7, 4, 5.
  EXPECT_NE(body.find("<tr><td>cat</td><td>0.7143</td><td>0.8333</td><td>0.7692</td><td>6</td></tr>"), std::string::npos)
      << body;
  EXPECT_NE(body.find("<tr><td>dog &lt;b&gt;&amp;</td><td>0.7500</td><td>0.5000</td><td>0.6000</td><td>6</td></tr>"),
            std::string::npos);
  EXPECT_NE(body.find("<tr><td>bird</td><td>0.8000</td><td>1.0000</td><td>0.8889</td><td>4</td></tr>"), std::string::npos);
  // Macro averages and accuracy 12 / 16.
  const double macro_p = (5.0 / 7 + 0.75 + 0.8) / 3, macro_r = (5.0 / 6 + 0.5 + 1.0) / 3;
  char expect[160];
  std::snprintf(expect, sizeof expect, "<th>macro avg</th><td>%.4f</td><td>%.4f</td>", macro_p, macro_r);
  EXPECT_NE(body.find(expect), std::string::npos) << body;
  EXPECT_NE(body.find("<th>accuracy</th><td></td><td></td><td>0.7500</td><td>16</td>"), std::string::npos);
}

TEST(Report, SmoothingIsTensorBoards) {
  // w = 0.6 by hand: last = 0.4, 1.04, 2.224, (NaN skipped), 2.5344; debiased by 1 - 0.6^k.
  const std::vector<double> s = ema_smooth({1, 2, 4, std::nan(""), 3}, 0.6);
  ASSERT_EQ(s.size(), 5u);
  EXPECT_NEAR(s[0], 0.4 / 0.4, 1e-12);
  EXPECT_NEAR(s[1], 1.04 / 0.64, 1e-12);
  EXPECT_NEAR(s[2], 2.224 / 0.784, 1e-12);
  EXPECT_TRUE(std::isnan(s[3]));
  EXPECT_NEAR(s[4], 2.5344 / 0.8704, 1e-12);
  EXPECT_EQ(ema_smooth({1, 2, 3}, 0.0), (std::vector<double>{1, 2, 3}));
  // A constant stays constant: the debiasing removes the pull toward the initial zero.
  for (double v : ema_smooth({5, 5, 5, 5}, 0.9)) EXPECT_NEAR(v, 5.0, 1e-12);
  EXPECT_THROW(ema_smooth({1}, 1.0), ValueError);
  EXPECT_THROW(ema_smooth({1}, -0.1), ValueError);

  // In the page: each smoothed series beside its faint raw one (the learning rate stays raw).
  const std::string html = training_report_html(sample_report(), {.smoothing = 0.6});
  EXPECT_EQ(count(html, "class=\"series\""), 5u);
  EXPECT_EQ(count(html, "class=\"series-smoothed\""), 4u);
  EXPECT_EQ(count(html, "class=\"series-smoothed\" data-series=\"val_loss\""), 1u);
  EXPECT_NE(html.find("class=\"series\" data-series=\"loss\" d=\"M80.00 "), std::string::npos);
  EXPECT_NE(between(html, "class=\"series\" data-series=\"loss\"", "/>").find("stroke-opacity=\"0.3\""), std::string::npos);
  EXPECT_THROW(training_report_html(sample_report(), {.smoothing = 1.0}), ValueError);
}

TEST(Report, RejectsWhatIsNoReport) {
  EXPECT_THROW(training_report_html(Json::array()), ValueError);
  EXPECT_THROW(training_report_html(Json::parse(R"({"model": {}})")), ValueError);
  EXPECT_THROW(training_report_html(Json::parse(R"({"history": {"loss": "low"}})")), ValueError);
  EXPECT_THROW(training_report_html(Json::parse(R"({"history": {"loss": [1, "x"]}})")), ValueError);
  EXPECT_THROW(training_report_html(Json::parse(R"({"confusion_matrix": [[1, 2], [3]]})")), ValueError);
  EXPECT_THROW(training_report_html(Json::parse(R"({"confusion_matrix": [[1, -2], [3, 4]]})")), ValueError);
  try {
    training_report_html(Json::parse(R"({"model": {}})"));
  } catch (const ValueError& e) {
    EXPECT_NE(std::string(e.what()).find("not a training report"), std::string::npos) << e.what();
  }
  EXPECT_THROW(read_report_json("/nonexistent/report.json"), IoError);
}

TEST(Report, Base64) {
  // RFC 4648's test vectors.
  EXPECT_EQ(base64_encode(""), "");
  EXPECT_EQ(base64_encode("f"), "Zg==");
  EXPECT_EQ(base64_encode("fo"), "Zm8=");
  EXPECT_EQ(base64_encode("foo"), "Zm9v");
  EXPECT_EQ(base64_encode("foob"), "Zm9vYg==");
  EXPECT_EQ(base64_encode("fooba"), "Zm9vYmE=");
  EXPECT_EQ(base64_encode("foobar"), "Zm9vYmFy");
  EXPECT_EQ(base64_encode(std::string("\xff\xfe\x00", 3)), "//4A");
}

TEST(Report, ClassProbabilities) {
  const Tensor logits = Tensor::from({{0.f, std::log(3.f)}, {2.f, 2.f}});
  const Tensor p = class_probabilities(logits, true);
  EXPECT_NEAR(p.at({0, 0}), 0.25f, 1e-6f);
  EXPECT_NEAR(p.at({0, 1}), 0.75f, 1e-6f);
  EXPECT_NEAR(p.at({1, 0}), 0.5f, 1e-6f);
  // One sigmoid unit: [1 - p, p], from a probability or a logit.
  const Tensor one = class_probabilities(Tensor::from({0.8f, 0.1f}).reshape(Shape{2, 1}), false);
  ASSERT_EQ(one.shape(), (Shape{2, 2}));
  EXPECT_NEAR(one.at({0, 0}), 0.2f, 1e-6f);
  EXPECT_NEAR(one.at({1, 1}), 0.1f, 1e-6f);
  EXPECT_NEAR(class_probabilities(Tensor::from({0.f}).reshape(Shape{1, 1}), true).at({0, 1}), 0.5f, 1e-6f);
}

TEST(Report, WrongPredictionsGalleryPicksTheMostConfidentlyWrong) {
  // 2 x 2 "images", 3 classes, softmax over known weights.
  Sequential m({layers::Dense({.units = 3, .activation = "softmax", .input_shape = Shape{4}, .name = "out"})});
  m.build(Shape{4});
  Generator gen(5);
  m.set_weights({Tensor::randn({4, 3}, gen, 0.f, 2.f), Tensor::zeros({3})});
  const Tensor x = Tensor::rand({12, 4}, gen);
  const Tensor probs = m.predict(x);
  // Each sample's truth: its second most likely class, so that every prediction is wrong, with
  // the confidence of its top class; the gallery must list them by that confidence.
  std::vector<int64_t> truth;
  std::vector<std::pair<double, int64_t>> by_confidence;
  for (int64_t i = 0; i < 12; ++i) {
    std::vector<int64_t> order{0, 1, 2};
    std::sort(order.begin(), order.end(), [&](int64_t a, int64_t b) { return probs.at({i, a}) > probs.at({i, b}); });
    truth.push_back(order[1]);
    by_confidence.emplace_back(probs.at({i, order[0]}), order[0]);
  }
  truth[0] = std::max_element(probs.values().begin(), probs.values().begin() + 3) - probs.values().begin();  // one right
  std::vector<std::pair<double, int64_t>> wrong(by_confidence.begin() + 1, by_confidence.end());
  std::sort(wrong.begin(), wrong.end(), [](const auto& a, const auto& b) { return a.first > b.first; });

  const std::vector<ReportImage> g =
      wrong_predictions_gallery(m, x, truth, {.count = 5, .image_shape = Shape{2, 2}, .class_names = {"a", "b", "c"}});
  ASSERT_EQ(g.size(), 5u);
  const std::vector<std::string> names{"a", "b", "c"};
  for (size_t i = 0; i < g.size(); ++i) {
    char conf[16];
    std::snprintf(conf, sizeof conf, "%.3f", wrong[i].first);
    EXPECT_NE(g[i].caption.find(", predicted " + names[static_cast<size_t>(wrong[i].second)] + " (" + conf + ")"),
              std::string::npos)
        << i << ": " << g[i].caption;
    // The image beside its saliency overlay, one pixel of padding around and between: (2 + 2) x (2 * 3 + 1), RGB.
    const Tensor png = decode_png(g[i].png);
    EXPECT_EQ(png.shape(), (Shape{4, 7, 3}));
  }
  EXPECT_EQ(g[0].caption.rfind("true ", 0), 0u);
  // All right: nothing to show. A shape that does not draw the samples: an error.
  std::vector<int64_t> right;
  for (const auto& [c, top] : by_confidence) right.push_back(top);
  EXPECT_TRUE(wrong_predictions_gallery(m, x, right, {.image_shape = Shape{2, 2}}).empty());
  EXPECT_THROW(wrong_predictions_gallery(m, x, truth, {.image_shape = Shape{3, 3}}), ShapeError);
  EXPECT_THROW(wrong_predictions_gallery(m, x, {0, 1}, {.image_shape = Shape{2, 2}}), ValueError);
  // Token attributions need a text model.
  EXPECT_THROW(token_attributions(m, x, truth), ValueError);
}

}  // namespace
}  // namespace lamina
