// Image resizing: the ops upsample2d, zero_pad2d and crop2d (PyTorch fixtures from
// make_fixtures_resize.py, gradient checks, oneDNN resampling against the naive loops), and the
// layers UpSampling2D, ZeroPadding2D and Cropping2D (shapes, Keras configs both ways, errors,
// summary, training, ONNX export read back).
#include <gtest/gtest.h>

#include <filesystem>
#include <sstream>
#include <unistd.h>

#include "kernels/resample.hpp"
#include "lamina/layers/resize.hpp"
#include "lamina/onnx.hpp"
#include "onnx/onnx_proto.hpp"
#include "test_util.hpp"

namespace lamina {
namespace {

using layers::Cropping2D;
using layers::UpSampling2D;
using layers::ZeroPadding2D;
using testing::error_of;
using testing::Fn;

// --- ops against PyTorch --------------------------------------------------------------------------

TEST(ResizeOps, MatchPyTorch) {
  // The parameters of make_fixtures_resize.py's cases.
  const std::vector<std::pair<std::string, Fn>> cases = {
      {"upsample_nearest_2x2", [](auto& x) { return upsample2d(x[0], 2); }},
      {"upsample_nearest_2x3", [](auto& x) { return upsample2d(x[0], Size2(2, 3)); }},
      {"upsample_nearest_3x1", [](auto& x) { return upsample2d(x[0], Size2(3, 1)); }},
      {"upsample_bilinear_2x2", [](auto& x) { return upsample2d(x[0], 2, Interpolation::bilinear); }},
      {"upsample_bilinear_2x3", [](auto& x) { return upsample2d(x[0], Size2(2, 3), Interpolation::bilinear); }},
      {"upsample_bilinear_3x1", [](auto& x) { return upsample2d(x[0], Size2(3, 1), Interpolation::bilinear); }},
      {"zero_pad_1", [](auto& x) { return zero_pad2d(x[0], {1, 1, 1, 1}); }},
      {"zero_pad_asym", [](auto& x) { return zero_pad2d(x[0], {.top = 1, .bottom = 2, .left = 0, .right = 3}); }},
      {"crop_1", [](auto& x) { return crop2d(x[0], {1, 1, 1, 1}); }},
      {"crop_asym", [](auto& x) { return crop2d(x[0], {.top = 1, .bottom = 2, .left = 0, .right = 3}); }},
  };
  for (const auto& [name, fn] : cases) {
    SCOPED_TRACE(name);
    testing::expect_matches_pytorch(name, fn, 1e-5);
  }
}

TEST(ResizeOps, Gradcheck) {
  Generator gen(31);
  const Tensor x = Tensor::randn({2, 3, 4, 2}, gen);
  const std::vector<std::pair<const char*, Fn>> cases = {
      {"upsample2d nearest 2x3", [](auto& in) { return upsample2d(in[0], Size2(2, 3)); }},
      {"upsample2d bilinear 2x3", [](auto& in) { return upsample2d(in[0], Size2(2, 3), Interpolation::bilinear); }},
      {"upsample2d bilinear 4x1", [](auto& in) { return upsample2d(in[0], Size2(4, 1), Interpolation::bilinear); }},
      {"zero_pad2d", [](auto& in) { return zero_pad2d(in[0], {.top = 2, .bottom = 0, .left = 1, .right = 3}); }},
      {"crop2d", [](auto& in) { return crop2d(in[0], {.top = 1, .bottom = 1, .left = 0, .right = 2}); }},
  };
  for (const auto& [name, fn] : cases) EXPECT_TRUE(testing::gradcheck(fn, {x})) << name;
}

// By hand: a 1x2 image doubled. Nearest repeats; bilinear puts the columns at -0.25, 0.25, 0.75,
// 1.25 of the input grid, clamped to [0, 1]: a, 0.75a + 0.25b, 0.25a + 0.75b, b.
TEST(ResizeOps, UpsampleByHand) {
  const Tensor x = Tensor::from(std::vector<float>{1, 5}, {1, 1, 2, 1});
  EXPECT_TRUE(testing::all_close(upsample2d(x, Size2(1, 2)), Tensor::from(std::vector<float>{1, 1, 5, 5}, {1, 1, 4, 1}), 0, 0));
  EXPECT_TRUE(testing::all_close(upsample2d(x, Size2(1, 2), Interpolation::bilinear),
                                 Tensor::from(std::vector<float>{1, 2, 4, 5}, {1, 1, 4, 1}), 1e-6, 1e-6));
  // Size 1 x 1 is the identity, in both modes.
  Generator gen(3);
  const Tensor img = Tensor::randn({2, 3, 5, 4}, gen);
  EXPECT_TRUE(testing::all_close(upsample2d(img, 1, Interpolation::bilinear), img, 0, 0));
  EXPECT_TRUE(testing::all_close(upsample2d(img, 1), img, 0, 0));
}

TEST(ResizeOps, PadAndCropUndoEachOther) {
  Generator gen(4);
  const Tensor x = Tensor::randn({2, 5, 6, 3}, gen);
  const Margins2 m{.top = 2, .bottom = 1, .left = 0, .right = 3};
  const Tensor padded = zero_pad2d(x, m);
  EXPECT_EQ(padded.shape(), (Shape{2, 8, 9, 3}));
  EXPECT_TRUE(testing::all_close(crop2d(padded, m), x, 0, 0));
  double border = 0;  // every cell outside the inner window is 0
  for (int64_t n = 0; n < 2; ++n)
    for (int64_t i = 0; i < 8; ++i)
      for (int64_t j = 0; j < 9; ++j)
        for (int64_t c = 0; c < 3; ++c)
          if (i < 2 || i >= 7 || j >= 6) border += std::fabs(padded.data()[((n * 8 + i) * 9 + j) * 3 + c]);
  EXPECT_EQ(border, 0.0);
  EXPECT_TRUE(testing::all_close(zero_pad2d(x, {}), x, 0, 0));
}

// A tensor used twice gets the sum of both gradients (the accumulate paths of every backward).
TEST(ResizeOps, GradientsAccumulateOverUses) {
  Generator gen(5);
  const Tensor x = Tensor::randn({2, 4, 3, 2}, gen);
  const std::vector<std::pair<const char*, Fn>> ops = {
      {"upsample2d nearest", [](auto& in) { return upsample2d(in[0], Size2(3, 2)); }},
      {"upsample2d bilinear", [](auto& in) { return upsample2d(in[0], Size2(3, 2), Interpolation::bilinear); }},
      {"zero_pad2d", [](auto& in) { return zero_pad2d(in[0], {1, 2, 3, 0}); }},
      {"crop2d", [](auto& in) { return crop2d(in[0], {1, 0, 1, 1}); }},
  };
  for (const auto& [name, f] : ops) {
    std::vector<Tensor> once = {x.clone().requires_grad_()}, twice = {x.clone().requires_grad_()};
    Tensor y1 = f(once) * 2.f;
    Tensor y2 = f(twice) + f(twice);
    const Tensor dy = Tensor::randn(y1.shape(), gen);
    y1.backward(dy);
    y2.backward(dy);
    EXPECT_TRUE(testing::all_close(twice[0].grad(), once[0].grad(), 1e-5, 1e-5)) << name;
  }
}

TEST(ResizeOps, ErrorsNameTheOpAndShapes) {
  const Tensor img = Tensor::zeros({1, 4, 4, 2});
  EXPECT_CONTAINS(error_of<ShapeError>([] { upsample2d(Tensor::zeros({4, 4, 2}), 2); }),
                  "upsample2d: expects images (N, H, W, C) (channels last), got (4, 4, 2)");
  EXPECT_CONTAINS(error_of<ValueError>([&] { upsample2d(img, Size2(0, 2)); }), "upsample2d: size 0x2");
  EXPECT_CONTAINS(error_of<ShapeError>([&] { crop2d(img, {2, 2, 0, 0}); }),
                  "crop2d: cropping (top 2, bottom 2, left 0, right 0) leaves nothing of (1, 4, 4, 2)");
  EXPECT_CONTAINS(error_of<ValueError>([&] { zero_pad2d(img, {.top = -1}); }), "zero_pad2d: margins (top -1");
  EXPECT_CONTAINS(error_of<ShapeError>([] { zero_pad2d(Tensor::zeros({2, 3}), {1, 1, 1, 1}); }), "zero_pad2d");
}

// --- oneDNN resampling against the naive loops -------------------------------------------------------

TEST(ResampleKernel, OneDnnMatchesNaive) {
  Generator gen(6);
  struct Case {
    int64_t n, h, w, c, sh, sw;
  };
  // Odd sizes (1, 7, 33 channels), factors 1 to 4, a big enough case to run on every thread.
  const std::vector<Case> cases = {{1, 1, 1, 1, 2, 2}, {2, 3, 5, 7, 2, 3}, {1, 7, 4, 33, 3, 2}, {3, 2, 2, 1, 4, 4},
                                   {2, 5, 3, 3, 1, 2}, {1, 1, 6, 5, 3, 1}, {4, 32, 32, 64, 2, 2}};
  for (const Case& k : cases)
    for (bool linear : {false, true})
      for (bool acc : {false, true}) {
        const kernels::Resample r{k.n, k.h, k.w, k.c, k.sh, k.sw, linear};
        std::ostringstream what;
        what << "resample(N=" << k.n << ",H=" << k.h << ",W=" << k.w << ",C=" << k.c << ",S=" << k.sh << "x" << k.sw
             << (linear ? ",linear" : ",nearest") << ",accumulate=" << acc << ")";
        const Tensor x = Tensor::randn({k.n, k.h, k.w, k.c}, gen), dy = Tensor::randn({k.n, r.oh(), r.ow(), k.c}, gen);
        Tensor y_fast = Tensor::empty(dy.shape()), y_naive = Tensor::empty(dy.shape());
        kernels::resample_forward(r, x.data(), y_fast.data());
        kernels::ref::resample_forward(r, x.data(), y_naive.data());
        EXPECT_TRUE(testing::all_close(y_fast, y_naive, 1e-5, 1e-6)) << what.str() << " forward";
        const Tensor start = Tensor::randn(x.shape(), gen);
        Tensor dx_fast = acc ? start.clone() : Tensor::empty(x.shape());
        Tensor dx_naive = acc ? start.clone() : Tensor::empty(x.shape());
        kernels::resample_backward(r, dy.data(), dx_fast.data(), acc);
        kernels::ref::resample_backward(r, dy.data(), dx_naive.data(), acc);
        EXPECT_TRUE(testing::all_close(dx_fast, dx_naive, 1e-5, 1e-5)) << what.str() << " backward";
      }
}

// --- layers ----------------------------------------------------------------------------------------

TEST(ResizeLayers, OutputShapesAndNoWeights) {
  Sequential model({layers::InputLayer(Shape{7, 7, 4}), UpSampling2D(),
                    UpSampling2D({.size = Size2(1, 3), .interpolation = Interpolation::bilinear}),
                    ZeroPadding2D(), ZeroPadding2D({.padding = {.top = 0, .bottom = 2, .left = 3, .right = 1}}),
                    Cropping2D({.cropping = {.top = 1, .bottom = 2, .left = 4, .right = 0}})});
  model.build(Shape{7, 7, 4});
  EXPECT_EQ(model.count_params(), 0);
  // 7x7 -> 14x14 -> 14x42 -> 16x44 -> 18x48 -> 15x44
  EXPECT_EQ(model.output_shapes().at(0), (Shape{15, 44, 4}));
  std::ostringstream summary;
  model.summary(summary);
  for (const char* s : {"UpSampling2D", "ZeroPadding2D", "Cropping2D", "(None, 14, 42, 4)", "(None, 15, 44, 4)"})
    EXPECT_CONTAINS(summary.str(), s);
  Generator gen(8);
  const Tensor x = Tensor::randn({2, 7, 7, 4}, gen);
  const Tensor want = crop2d(zero_pad2d(zero_pad2d(upsample2d(upsample2d(x, 2), Size2(1, 3), Interpolation::bilinear),
                                                   {1, 1, 1, 1}),
                                        {0, 2, 3, 1}),
                             {1, 2, 4, 0});
  EXPECT_TRUE(testing::all_close(model.predict(x), want, 0, 0));
}

TEST(ResizeLayers, KerasConfigsBothWays) {
  // As Keras 3 writes them (keras_layer_configs.json has the full ones).
  auto up = layer_from_config("UpSampling2D", {{"name", "up"}, {"size", {3, 2}}, {"interpolation", "bilinear"},
                                               {"data_format", "channels_last"}});
  const auto& u = dynamic_cast<const UpSampling2D&>(*up);
  EXPECT_EQ(u.options().size, Size2(3, 2));
  EXPECT_EQ(u.options().interpolation, Interpolation::bilinear);
  EXPECT_EQ(up->config()["size"], Json::array({3, 2}));
  EXPECT_EQ(up->config()["interpolation"], "bilinear");
  EXPECT_EQ(dynamic_cast<const UpSampling2D&>(*layer_from_config("UpSampling2D", {{"size", 4}})).options().size, Size2(4));
  EXPECT_EQ(dynamic_cast<const UpSampling2D&>(*layer_from_config("UpSampling2D", Json::object())).options().size, Size2(2));
  EXPECT_EQ(layer_from_config("UpSampling2D", Json::object())->config()["interpolation"], "nearest");

  // padding / cropping: n, [h, w], [[top, bottom], [left, right]], and mixed.
  auto pad = [](const Json& p) {
    return dynamic_cast<const ZeroPadding2D&>(*layer_from_config("ZeroPadding2D", {{"padding", p}})).options().padding;
  };
  EXPECT_EQ(pad(2), (Margins2{2, 2, 2, 2}));
  EXPECT_EQ(pad(Json::array({1, 3})), (Margins2{1, 1, 3, 3}));
  EXPECT_EQ(pad(Json::parse("[[0, 2], [3, 1]]")), (Margins2{0, 2, 3, 1}));
  EXPECT_EQ(pad(Json::parse("[1, [0, 4]]")), (Margins2{1, 1, 0, 4}));
  EXPECT_EQ(dynamic_cast<const ZeroPadding2D&>(*layer_from_config("ZeroPadding2D", Json::object())).options().padding,
            (Margins2{1, 1, 1, 1}));  // Keras' default
  auto crop = layer_from_config("Cropping2D", {{"name", "c"}, {"cropping", Json::parse("[[1, 2], [0, 3]]")}});
  EXPECT_EQ(dynamic_cast<const Cropping2D&>(*crop).options().cropping, (Margins2{1, 2, 0, 3}));
  EXPECT_EQ(crop->config()["cropping"], Json::parse("[[1, 2], [0, 3]]"));
  EXPECT_EQ(layer_from_config("Cropping2D", Json::object())->config()["cropping"], Json::parse("[[0, 0], [0, 0]]"));

  // Sequential JSON both ways: the same model.
  Sequential model({layers::InputLayer(Shape{4, 5, 2}), UpSampling2D({.interpolation = Interpolation::bilinear}),
                    ZeroPadding2D({.padding = {0, 1, 2, 3}}), Cropping2D({.cropping = {1, 0, 0, 2}})});
  model.build(Shape{4, 5, 2});
  Model back = Model::from_json(model.to_json());
  Generator gen(9);
  const Tensor x = Tensor::randn({3, 4, 5, 2}, gen);
  EXPECT_TRUE(testing::all_close(back.predict(x), model.predict(x), 0, 0));
}

TEST(ResizeLayers, RefusedOptionsNameLayerAndKey) {
  for (const char* mode : {"bicubic", "lanczos3", "lanczos5", "area"})
    EXPECT_CONTAINS(error_of<ValueError>([&] {
                      layer_from_config("UpSampling2D", {{"name", "up"}, {"interpolation", mode}});
                    }),
                    std::string("UpSampling2D 'up': interpolation '") + mode + "' is not supported by Lamina");
  EXPECT_CONTAINS(error_of<ValueError>([] {
                    layer_from_config("UpSampling2D", {{"name", "up"}, {"data_format", "channels_first"}});
                  }),
                  "UpSampling2D 'up': data_format 'channels_first' is not supported");
  EXPECT_CONTAINS(error_of<ValueError>([] { layer_from_config("UpSampling2D", {{"name", "up"}, {"size", 0}}); }),
                  "UpSampling2D 'up': 'size' must be a positive integer");
  EXPECT_CONTAINS(error_of<ValueError>([] { layer_from_config("ZeroPadding2D", {{"name", "z"}, {"padding", -1}}); }),
                  "ZeroPadding2D 'z': 'padding' must be a non-negative integer");
  EXPECT_CONTAINS(error_of<ValueError>([] {
                    layer_from_config("Cropping2D", {{"name", "c"}, {"cropping", Json::parse("[1, 2, 3]")}});
                  }),
                  "Cropping2D 'c': 'cropping' must be a non-negative integer, [height, width] or [[top, bottom], [left, right]]");
  EXPECT_CONTAINS(error_of<ValueError>([] { ZeroPadding2D({.padding = {.left = -2}, .name = "z"}); }),
                  "ZeroPadding2D 'z': padding must not be negative");
}

TEST(ResizeLayers, ShapeErrorsNameTheLayer) {
  Sequential too_small({layers::InputLayer(Shape{4, 4, 1}), Cropping2D({.cropping = {2, 2, 0, 0}, .name = "crop"})});
  const std::string msg = error_of<ShapeError>([&] { too_small.build(Shape{4, 4, 1}); });
  EXPECT_CONTAINS(msg, "Cropping2D 'crop' expects input images larger than the cropping ((2, 2), (0, 0))");
  EXPECT_CONTAINS(msg, "(4, 4, 1)");
  Sequential flat({layers::InputLayer(Shape{6}), UpSampling2D({.name = "up"})});
  EXPECT_CONTAINS(error_of<ShapeError>([&] { flat.build(Shape{6}); }), "UpSampling2D 'up' expects input images (batch, H, W, C)");
}

// A small generator trains through all three layers: the loss falls.
TEST(ResizeLayers, AGeneratorTrains) {
  manual_seed(11);
  Sequential model({layers::Dense({.units = 3 * 3 * 4, .activation = "relu", .input_shape = Shape{5}}),
                    layers::Reshape(Shape{3, 3, 4}), UpSampling2D(),
                    layers::Conv2D({.filters = 4, .kernel_size = 3, .padding = Padding::same, .activation = "relu"}),
                    UpSampling2D({.interpolation = Interpolation::bilinear}), ZeroPadding2D({.padding = {1, 1, 1, 1}}),
                    layers::Conv2D({.filters = 1, .kernel_size = 3}), Cropping2D({.cropping = {0, 0, 1, 1}})});
  model.compile("adam", Loss("mse"));
  Generator gen(12);
  const Tensor x = Tensor::randn({32, 5}, gen), y = Tensor::randn({32, 12, 10, 1}, gen, 0.f, 0.5f);
  const auto history = model.fit(x, y, {.epochs = 20, .batch_size = 8, .seed = 1, .verbose = 0});
  const auto& loss = history.history.at("loss");
  EXPECT_LT(loss.back(), 0.8 * loss.front()) << "first " << loss.front() << ", last " << loss.back();
}

// --- ONNX export: the nodes and their attributes (runtimes judge the files in tests/onnx) ------------

const onnx::detail::Attribute* attr(const onnx::detail::Node& n, const char* name) { return n.attribute(name); }

TEST(ResizeOnnx, ExportsResizePadAndSlice) {
  Sequential model({layers::InputLayer(Shape{4, 5, 2}), ZeroPadding2D({.padding = {1, 2, 0, 3}}),
                    layers::Conv2D({.filters = 3, .kernel_size = 3, .padding = Padding::same}), UpSampling2D(),
                    UpSampling2D({.size = Size2(2, 3), .interpolation = Interpolation::bilinear}),
                    Cropping2D({.cropping = {1, 0, 2, 1}})});
  model.build(Shape{4, 5, 2});
  const auto path = std::filesystem::temp_directory_path() / ("lamina_test_resize_" + std::to_string(::getpid()) + ".onnx");
  save_onnx(model, path.string());
  const onnx::detail::Model m = onnx::detail::parse_model(io::read_file(path.string()));
  std::filesystem::remove(path);
  std::vector<const onnx::detail::Node*> resize, pad, slice;
  for (const auto& n : m.graph.nodes) {
    if (n.op_type == "Resize") resize.push_back(&n);
    if (n.op_type == "Pad") pad.push_back(&n);
    if (n.op_type == "Slice") slice.push_back(&n);
  }
  ASSERT_EQ(resize.size(), 2u);
  ASSERT_EQ(pad.size(), 1u);
  ASSERT_EQ(slice.size(), 1u);
  EXPECT_EQ(attr(*resize[0], "mode")->s, "nearest");
  EXPECT_EQ(attr(*resize[0], "coordinate_transformation_mode")->s, "asymmetric");
  EXPECT_EQ(attr(*resize[0], "nearest_mode")->s, "floor");
  EXPECT_EQ(attr(*resize[1], "mode")->s, "linear");
  EXPECT_EQ(attr(*resize[1], "coordinate_transformation_mode")->s, "half_pixel");
  auto init = [&](const std::string& name) -> const onnx::detail::TensorData& {
    for (const auto& t : m.graph.initializers)
      if (t.name == name) return t;
    ADD_FAILURE() << "no initializer " << name;
    return m.graph.initializers.front();
  };
  // The pad comes before the Conv: on the channels-last input (axes H = 1, W = 2).
  EXPECT_EQ(init(pad[0]->inputs[1]).ints, (std::vector<int64_t>{0, 1, 0, 0, 0, 2, 3, 0}));
  // The crop comes after the Conv and the Resizes: on the channels-first image (H = 2, W = 3).
  // 4x5 padded to 7x8, upsampled to 14x16 and 28x48, cropped to rows 1..27, columns 2..46.
  EXPECT_EQ(init(slice[0]->inputs[1]).ints, (std::vector<int64_t>{1, 2}));
  EXPECT_EQ(init(slice[0]->inputs[2]).ints, (std::vector<int64_t>{28, 47}));
  EXPECT_EQ(init(slice[0]->inputs[3]).ints, (std::vector<int64_t>{2, 3}));
  EXPECT_EQ(init(resize[1]->inputs[2]).floats, (std::vector<float>{1, 1, 2, 3}));
}


// --- ONNX import: a PyTorch export (make_onnx_fixtures.py's "resize") ---------------------------------

// PyTorch's F.interpolate nearest (Resize asymmetric / floor) and bilinear (half_pixel), F.pad
// (Pad whose pads come from a little constant program) and slicing (two Slices) read back as
// UpSampling2D, ZeroPadding2D and Cropping2D, predicting what PyTorch computed.
TEST(ResizeOnnx, ImportsPyTorchsResizePadAndSlice) {
  const std::string dir = LAMINA_FIXTURE_DIR;
  Model model = load_onnx(dir + "/onnx_resize.onnx");
  std::vector<std::string> classes;
  for (const auto& l : model.layers()) classes.push_back(l->class_name());
  EXPECT_EQ(classes, (std::vector<std::string>{"InputLayer", "Conv2D", "UpSampling2D", "UpSampling2D", "ZeroPadding2D",
                                               "Cropping2D", "Cropping2D", "Conv2D"}))
      << model.to_json().dump();
  auto layer = [&](size_t i) -> const Layer& { return *model.layers().at(i); };
  if (classes.size() == 8) {
    EXPECT_EQ(dynamic_cast<const UpSampling2D&>(layer(2)).options().interpolation, Interpolation::nearest);
    EXPECT_EQ(dynamic_cast<const UpSampling2D&>(layer(3)).options().size, Size2(2, 3));
    EXPECT_EQ(dynamic_cast<const UpSampling2D&>(layer(3)).options().interpolation, Interpolation::bilinear);
    EXPECT_EQ(dynamic_cast<const ZeroPadding2D&>(layer(4)).options().padding, (Margins2{1, 2, 0, 3}));
    EXPECT_EQ(dynamic_cast<const Cropping2D&>(layer(5)).options().cropping, (Margins2{2, 1, 0, 0}));
    EXPECT_EQ(dynamic_cast<const Cropping2D&>(layer(6)).options().cropping, (Margins2{0, 0, 3, 2}));
  }
  const auto f = testing::load_fixture("onnx_resize");
  const Tensor x = permute(f.at("x"), {0, 2, 3, 1}), want = permute(f.at("y"), {0, 2, 3, 1});
  EXPECT_TRUE(testing::all_close(model.predict(x), want, 1e-4, 1e-5));
}

// What Lamina cannot compute the same way is refused, naming the node and the reason.
TEST(ResizeOnnx, ImportRefusesOtherResizes) {
  const std::string dir = LAMINA_FIXTURE_DIR;
  std::string bytes = io::read_file(dir + "/onnx_resize.onnx");
  // The bilinear Resize with align_corners instead of half_pixel: same length, so the file stays valid.
  const std::string from = "half_pixel", to = "asymmetric";
  ASSERT_NE(bytes.find(from), std::string::npos);
  bytes.replace(bytes.find(from), from.size(), to);
  const auto path = std::filesystem::temp_directory_path() / ("lamina_test_resize_" + std::to_string(::getpid()) + "_in.onnx");
  io::write_file_atomic(path.string(), bytes);
  const std::string msg = error_of<Error>([&] { load_onnx(path.string()); });
  std::filesystem::remove(path);
  EXPECT_CONTAINS(msg, "Resize");
  EXPECT_CONTAINS(msg, "linear with coordinate_transformation_mode 'asymmetric' is not supported");
}

}  // namespace
}  // namespace lamina
