// image: PNG round trips through our writer and reader, files from other writers (OpenCV and a
// hand-made chunk writer: tests/fixtures/make_png_fixtures.py) read to the exact expected values,
// every way a bad file or image must fail, atomic writes, and image_grid's layout.
#include <gtest/gtest.h>
#include <unistd.h>

#include <atomic>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <limits>
#include <string>
#include <vector>

#include "lamina/image.hpp"
#include "lamina/io.hpp"
#include "lamina/lamina.hpp"
#include "test_util.hpp"

namespace lamina {
namespace {

namespace fs = std::filesystem;
using testing::error_of;

const std::string kPngDir = std::string(LAMINA_FIXTURE_DIR) + "/png/";

// A fresh directory per test, removed at scope exit.
class ImageScratch {
 public:
  ImageScratch() {
    static std::atomic<int> counter{0};
    path_ = fs::temp_directory_path() /
            ("lamina_image_" + std::to_string(::getpid()) + "_" + std::to_string(counter++));
    fs::remove_all(path_);
    fs::create_directories(path_);
  }
  ~ImageScratch() {
    std::error_code ec;
    fs::remove_all(path_, ec);
  }
  std::string file(const std::string& name) const { return (path_ / name).string(); }
  std::vector<std::string> entries() const {
    std::vector<std::string> out;
    for (const auto& e : fs::directory_iterator(path_)) out.push_back(e.path().filename().string());
    std::sort(out.begin(), out.end());
    return out;
  }

 private:
  fs::path path_;
};

// k / 255 for the given byte values, as read_png returns them.
Tensor bytes_as_floats(const std::vector<int>& bytes, const Shape& shape) {
  std::vector<float> v;
  for (int b : bytes) v.push_back(static_cast<float>(b) / 255.f);
  return Tensor::from(v, shape);
}

void expect_equal(const Tensor& got, const Tensor& want, const std::string& what) {
  ASSERT_EQ(got.shape(), want.shape()) << what;
  for (int64_t i = 0; i < got.numel(); ++i)
    ASSERT_EQ(got.data()[i], want.data()[i]) << what << " at flat index " << i;
}

TEST(Png, RoundTripGreyExactBytes) {
  ImageScratch dir;
  std::vector<int> bytes;
  for (int i = 0; i < 256; ++i) bytes.push_back((i * 37) % 256);  // every value once
  const Tensor image = bytes_as_floats(bytes, {16, 16});
  write_png(dir.file("g.png"), image);
  const Tensor back = read_png(dir.file("g.png"));
  expect_equal(back, image.reshape({16, 16, 1}), "grey (16, 16)");
  // (H, W, 1) writes the same file as (H, W).
  EXPECT_EQ(encode_png(image.reshape({16, 16, 1})), io::read_file(dir.file("g.png")));
  EXPECT_EQ(dir.entries(), std::vector<std::string>{"g.png"});  // no temporary left behind
}

TEST(Png, RoundTripRgbAndRgbaExactBytes) {
  ImageScratch dir;
  std::vector<int> bytes;
  for (int i = 0; i < 5 * 7 * 3; ++i) bytes.push_back((i * 53 + 11) % 256);
  const Tensor rgb = bytes_as_floats(bytes, {5, 7, 3});
  write_png(dir.file("c.png"), rgb);
  expect_equal(read_png(dir.file("c.png")), rgb, "RGB (5, 7, 3)");
  bytes.resize(5 * 7 * 4, 200);
  const Tensor rgba = bytes_as_floats(bytes, {5, 7, 4});
  expect_equal(decode_png(encode_png(rgba)), rgba, "RGBA (5, 7, 4)");
  const Tensor ga = bytes_as_floats(std::vector<int>(bytes.begin(), bytes.begin() + 5 * 7 * 2), {5, 7, 2});
  expect_equal(decode_png(encode_png(ga)), ga, "grey + alpha (5, 7, 2)");
}

TEST(Png, ValueRangeClampsAndRounds) {
  // [-1, 1] (a tanh generator): -1 -> 0, 0 -> 128 (127.5 rounds half up), 1 -> 255; outside
  // values clamp; infinities clamp too.
  const float inf = std::numeric_limits<float>::infinity();
  const Tensor x = Tensor::from({-1.f, 0.f, 1.f, -3.f, 7.f, -inf, inf, 0.5f}, {2, 4});
  const Tensor back = decode_png(encode_png(x, {.low = -1.f, .high = 1.f}));
  expect_equal(back, bytes_as_floats({0, 128, 255, 0, 255, 0, 255, 191}, {2, 4, 1}), "range [-1, 1]");
  // The default [0, 1]: 0.5 -> 128, 0.499/255-ish neighbours round to the nearest byte.
  const Tensor y = Tensor::from({0.f, 0.5f, 1.f, 1.4f / 255.f, 1.6f / 255.f, -0.2f}, {1, 6});
  expect_equal(decode_png(encode_png(y)), bytes_as_floats({0, 128, 255, 1, 2, 0}, {1, 6, 1}), "range [0, 1]");
}

TEST(Png, ReadsFilesFromOtherWriters) {
  // Written by OpenCV and by the fixture script's chunk writer; expected values checked there
  // against OpenCV's reader too.
  const auto expected = testing::load_fixture("png_expected");
  int checked = 0;
  for (const auto& [name, want] : expected) {
    if (name.find('.') != std::string::npos) continue;
    SCOPED_TRACE(name);
    expect_equal(read_png(kPngDir + name + ".png"), want, name);
    ++checked;
  }
  EXPECT_EQ(checked, 10);
  // 16-bit samples keep their 16 bits (0x0102 would read as 1/255 if stripped to 8).
  const Tensor g16 = read_png(kPngDir + "grey16.png");
  EXPECT_EQ(g16.data()[2], static_cast<float>(0x0102) / 65535.f);
}

TEST(Png, ChannelConversions) {
  const auto expected = testing::load_fixture("png_expected");
  // Grey from RGB with BT.601 weights: within one level of OpenCV's IMREAD_GRAYSCALE.
  const Tensor grey = read_png(kPngDir + "rgb8.png", 1);
  EXPECT_TRUE(testing::all_close(grey, expected.at("rgb8.grey"), 0.0, 1.0 / 255 + 1e-6));
  // RGB -> RGBA adds an opaque alpha; RGBA -> RGB drops alpha; grey -> RGB repeats the value.
  const Tensor rgba = read_png(kPngDir + "rgb8.png", 4);
  const Tensor& rgb = expected.at("rgb8");
  ASSERT_EQ(rgba.shape(), Shape({4, 6, 4}));
  for (int64_t p = 0; p < 24; ++p) {
    for (int64_t c = 0; c < 3; ++c) ASSERT_EQ(rgba.data()[p * 4 + c], rgb.data()[p * 3 + c]);
    ASSERT_EQ(rgba.data()[p * 4 + 3], 1.f);
  }
  const Tensor rgb_from_rgba = read_png(kPngDir + "rgba8.png", 3);
  const Tensor& rgba_want = expected.at("rgba8");
  ASSERT_EQ(rgb_from_rgba.shape(), Shape({3, 5, 3}));
  for (int64_t p = 0; p < 15; ++p)
    for (int64_t c = 0; c < 3; ++c) ASSERT_EQ(rgb_from_rgba.data()[p * 3 + c], rgba_want.data()[p * 4 + c]);
  const Tensor grey_rgb = read_png(kPngDir + "grey8.png", 3);
  const Tensor& grey_want = expected.at("grey8");
  ASSERT_EQ(grey_rgb.shape(), Shape({5, 7, 3}));
  for (int64_t p = 0; p < 35; ++p)
    for (int64_t c = 0; c < 3; ++c) ASSERT_EQ(grey_rgb.data()[p * 3 + c], grey_want.data()[p]);
  const Tensor grey_rgba = read_png(kPngDir + "grey8.png", 4);
  ASSERT_EQ(grey_rgba.shape(), Shape({5, 7, 4}));
  for (int64_t p = 0; p < 35; ++p) {
    for (int64_t c = 0; c < 3; ++c) ASSERT_EQ(grey_rgba.data()[p * 4 + c], grey_want.data()[p]);
    ASSERT_EQ(grey_rgba.data()[p * 4 + 3], 1.f);
  }
  // 1-bit grey as RGB, palette without tRNS as RGBA (opaque).
  const Tensor bits = read_png(kPngDir + "grey1.png", 3);
  const Tensor& bits_want = expected.at("grey1");
  ASSERT_EQ(bits.shape(), Shape({3, 11, 3}));
  for (int64_t p = 0; p < 33; ++p) ASSERT_EQ(bits.data()[p * 3 + 2], bits_want.data()[p]);
  const Tensor pal2 = read_png(kPngDir + "palette2.png", 4);
  ASSERT_EQ(pal2.shape(), Shape({3, 7, 4}));
  for (int64_t p = 0; p < 21; ++p) {
    ASSERT_EQ(pal2.data()[p * 4 + 1], expected.at("palette2").data()[p * 3 + 1]);
    ASSERT_EQ(pal2.data()[p * 4 + 3], 1.f);
  }
  // A palette with tRNS, asked for RGB, ignores the transparency; grey + alpha to grey drops it.
  const Tensor pal = read_png(kPngDir + "palette_trns.png", 3);
  const Tensor& pal_want = expected.at("palette_trns");
  ASSERT_EQ(pal.shape(), Shape({4, 5, 3}));
  for (int64_t p = 0; p < 20; ++p)
    for (int64_t c = 0; c < 3; ++c) ASSERT_EQ(pal.data()[p * 3 + c], pal_want.data()[p * 4 + c]);
  const Tensor ga = read_png(kPngDir + "grey_alpha8.png", 1);
  const Tensor& ga_want = expected.at("grey_alpha8");
  ASSERT_EQ(ga.shape(), Shape({4, 3, 1}));
  for (int64_t p = 0; p < 12; ++p) ASSERT_EQ(ga.data()[p], ga_want.data()[p * 2]);
  // 16-bit to grey keeps 16-bit precision (values / 65535).
  EXPECT_EQ(read_png(kPngDir + "rgb16.png", 1).shape(), Shape({3, 4, 1}));
  EXPECT_NE(error_of<ValueError>([] { read_png(kPngDir + "rgb8.png", 2); }).find("channels"), std::string::npos);
}

TEST(Png, ReadErrorsNameTheFile) {
  ImageScratch dir;
  const std::string missing = dir.file("missing.png");
  EXPECT_NE(error_of<IoError>([&] { read_png(missing); }).find(missing), std::string::npos);

  const std::string text = dir.file("notes.png");
  std::ofstream(text) << "hello, not a picture";
  const std::string e1 = error_of<IoError>([&] { read_png(text); });
  EXPECT_NE(e1.find(text), std::string::npos) << e1;
  EXPECT_NE(e1.find("not a PNG"), std::string::npos) << e1;
  EXPECT_NE(error_of<IoError>([&] { decode_png(""); }).find("not a PNG"), std::string::npos);

  // A valid file cut at every length must fail cleanly, naming the file, never crash.
  const std::string good = io::read_file(kPngDir + "interlaced_rgb8.png");
  for (size_t len = 8; len < good.size(); ++len) {
    const std::string e = error_of<IoError>([&] { decode_png(good.substr(0, len), "cut.png"); });
    ASSERT_NE(e.find("cut.png: bad PNG"), std::string::npos) << "length " << len << ": " << e;
    ASSERT_NE(e.find("truncated"), std::string::npos) << "length " << len << ": " << e;
  }
  const std::string cut = dir.file("cut.png");
  std::ofstream(cut, std::ios::binary).write(good.data(), static_cast<std::streamsize>(good.size() - 20));
  const std::string e0 = error_of<IoError>([&] { read_png(cut); });
  EXPECT_NE(e0.find(cut + ": bad PNG"), std::string::npos) << e0;
  // A flipped byte in the pixel data: a CRC error from libpng, as an IoError.
  std::string corrupt = good;
  corrupt[good.size() / 2] ^= 0x40;
  const std::string e2 = error_of<IoError>([&] { decode_png(corrupt, "corrupt.png"); });
  EXPECT_NE(e2.find("corrupt.png: bad PNG"), std::string::npos) << e2;
}

TEST(Png, RefusesHeadersThatClaimMoreThanTheFileHolds) {
  // A valid 1x1 grey PNG with its IHDR patched to 60000 x 60000 and the chunk's CRC redone:
  // libpng accepts the header; the size check refuses to allocate 3.6 GB for a 70-byte file.
  std::string png = encode_png(Tensor::zeros({1, 1}));
  auto be32 = [&](size_t at, uint32_t v) {
    for (int i = 0; i < 4; ++i) png[at + i] = static_cast<char>((v >> (24 - 8 * i)) & 0xFF);
  };
  be32(16, 60000);  // width
  be32(20, 60000);  // height
  // The IHDR CRC covers "IHDR" + 13 data bytes (offsets 12..28).
  uint32_t crc = 0xFFFFFFFFu;
  for (size_t i = 12; i < 29; ++i) {
    crc ^= static_cast<unsigned char>(png[i]);
    for (int k = 0; k < 8; ++k) crc = (crc >> 1) ^ (0xEDB88320u & (0u - (crc & 1u)));
  }
  be32(29, crc ^ 0xFFFFFFFFu);
  const std::string e = error_of<IoError>([&] { decode_png(png, "huge.png"); });
  EXPECT_NE(e.find("huge.png: bad PNG: the header says 60000x60000"), std::string::npos) << e;
}

TEST(Png, WriteErrorsAndAtomicity) {
  ImageScratch dir;
  const std::string path = dir.file("out.png");
  for (const Shape& bad : {Shape{4}, Shape{2, 3, 5}, Shape{0, 3}, Shape{1, 2, 3, 3}, Shape{3, 0, 1}}) {
    const std::string e = error_of<ShapeError>([&] { write_png(path, Tensor::zeros(bad)); });
    EXPECT_NE(e.find(path), std::string::npos) << e;
    EXPECT_NE(e.find(bad.str()), std::string::npos) << e;
  }
  EXPECT_NE(error_of<ValueError>([&] { write_png(path, Tensor::zeros({2, 2}), {.low = 1.f, .high = 1.f}); })
                .find("low < high"),
            std::string::npos);
  Tensor nan_image = Tensor::zeros({2, 3, 3});
  nan_image.data()[3 * 3 + 2 * 3 + 1] = std::nanf("");
  EXPECT_NE(error_of<ValueError>([&] { write_png(path, nan_image); }).find("NaN at (1, 2, 1)"), std::string::npos);
  EXPECT_TRUE(dir.entries().empty());  // nothing written, no temporary

  // A failed write keeps the old file whole.
  write_png(path, Tensor::full({2, 2}, 1.f));
  const std::string before = io::read_file(path);
  EXPECT_THROW(write_png(path, nan_image), ValueError);
  EXPECT_EQ(io::read_file(path), before);
  // Failing after the temporary exists (the target is a directory: rename fails) removes it.
  fs::create_directories(dir.file("sub"));
  const std::string e = error_of<IoError>([&] { write_png(dir.file("sub"), Tensor::zeros({2, 2})); });
  EXPECT_NE(e.find("sub"), std::string::npos) << e;
  EXPECT_EQ(dir.entries(), (std::vector<std::string>{"out.png", "sub"}));
  // A missing directory: an IoError naming the path.
  const std::string nowhere = dir.file("no/such/dir/x.png");
  EXPECT_NE(error_of<IoError>([&] { write_png(nowhere, Tensor::zeros({2, 2})); }).find(nowhere), std::string::npos);
}

TEST(ImageGrid, LayoutPadAndBlanks) {
  // Three 2x3 grey images with values 10*i + pixel, in a 2x2 grid with pad 1 of value -1.
  std::vector<float> v;
  for (int i = 0; i < 3; ++i)
    for (int p = 0; p < 6; ++p) v.push_back(static_cast<float>(10 * i + p));
  const Tensor grid = image_grid(Tensor::from(v, {3, 2, 3}), 2, 2, 1, -1.f);
  ASSERT_EQ(grid.shape(), Shape({2 * (2 + 1) + 1, 2 * (3 + 1) + 1}));  // (7, 9)
  const float _ = -1.f;
  const std::vector<float> want = {
      _, _,  _,  _,  _, _,  _,  _,  _,  //
      _, 0,  1,  2,  _, 10, 11, 12, _,  //
      _, 3,  4,  5,  _, 13, 14, 15, _,  //
      _, _,  _,  _,  _, _,  _,  _,  _,  //
      _, 20, 21, 22, _, _,  _,  _,  _,  //  the fourth cell stays blank
      _, 23, 24, 25, _, _,  _,  _,  _,  //
      _, _,  _,  _,  _, _,  _,  _,  _,  //
  };
  expect_equal(grid, Tensor::from(want, {7, 9}), "grid");
}

TEST(ImageGrid, ChannelsAndNoPad) {
  // Two 1x1 RGB images side by side without padding: (1, 2, 3), channels kept together.
  const Tensor images = Tensor::from({1.f, 2.f, 3.f, 4.f, 5.f, 6.f}, {2, 1, 1, 3});
  expect_equal(image_grid(images, 1, 2, 0), Tensor::from({1.f, 2.f, 3.f, 4.f, 5.f, 6.f}, {1, 2, 3}), "1x2");
  expect_equal(image_grid(images, 2, 1, 0), Tensor::from({1.f, 2.f, 3.f, 4.f, 5.f, 6.f}, {2, 1, 3}), "2x1");
  // Default pad 2 with pad_value 0: a (N, 28, 28, 1) batch of 10 in 2x5.
  const Tensor grid = image_grid(Tensor::ones({10, 28, 28, 1}), 2, 5);
  EXPECT_EQ(grid.shape(), Shape({2 * 30 + 2, 5 * 30 + 2, 1}));
  double sum = 0;
  for (float x : grid.values()) sum += x;
  EXPECT_EQ(sum, 10.0 * 28 * 28);
}

TEST(ImageGrid, Errors) {
  EXPECT_NE(error_of<ShapeError>([] { image_grid(Tensor::zeros({28, 28}), 1, 1); }).find("(28, 28)"),
            std::string::npos);
  EXPECT_NE(error_of<ValueError>([] { image_grid(Tensor::zeros({5, 2, 2}), 2, 2); }).find("do not fit in 2x2"),
            std::string::npos);
  EXPECT_THROW(image_grid(Tensor::zeros({1, 2, 2}), 0, 1), ValueError);
  EXPECT_THROW(image_grid(Tensor::zeros({1, 2, 2}), 1, 1, -1), ValueError);
  // What a training loop writes: generated samples in one PNG.
  ImageScratch dir;
  write_png(dir.file("grid.png"), image_grid(Tensor::rand({6, 4, 4, 3}), 2, 3));
  EXPECT_EQ(read_png(dir.file("grid.png")).shape(), Shape({2 * 6 + 2, 3 * 6 + 2, 3}));
}

}  // namespace
}  // namespace lamina
