// Data: IDX and CSV readers (raw and gzip, every error naming its file), Dataset batching,
// slicing and seeded splits, and the MNIST / digits loaders on tiny files written here.
// Nothing reads data/: fixtures are generated into a temporary directory per test.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <functional>
#include <numeric>
#include <string>
#include <vector>

#include <unistd.h>

#include "test_util.hpp"
#include "lamina/data.hpp"
#include "lamina/lamina.hpp"

namespace lamina {
namespace {

namespace fs = std::filesystem;
using data::Dataset;

// --- fixture helpers ---------------------------------------------------------------------------

// A fresh directory under the system temp dir, removed with everything in it at scope exit.
class TempDir {
 public:
  TempDir() {
    static int counter = 0;
    const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
    path_ = fs::temp_directory_path() / ("lamina_test_data_" + std::to_string(::getpid()) + "_" +
                                         std::to_string(counter++) + "_" + (info ? info->name() : "x"));
    fs::remove_all(path_);
    fs::create_directories(path_);
  }
  ~TempDir() {
    std::error_code ec;
    fs::remove_all(path_, ec);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  std::string operator/(const std::string& name) const { return (path_ / name).string(); }
  std::string str() const { return path_.string(); }

 private:
  fs::path path_;
};

void write_file(const std::string& path, const std::string& bytes) {
  std::ofstream out(path, std::ios::binary);
  out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  ASSERT_TRUE(out.good()) << "cannot write " << path;
}

uint32_t crc32(const std::string& bytes) {
  uint32_t c = 0xffffffffu;
  for (unsigned char b : bytes) {
    c ^= b;
    for (int k = 0; k < 8; ++k) c = (c >> 1) ^ (0xedb88320u & (0u - (c & 1u)));
  }
  return ~c;
}

void put_le(std::string& out, uint32_t v, int bytes) {
  for (int i = 0; i < bytes; ++i) out.push_back(static_cast<char>((v >> (8 * i)) & 0xffu));
}

// A valid gzip file (RFC 1952) made of stored deflate blocks (RFC 1951 3.2.4) of at most
// `block` bytes. Written by hand because the tests do not link zlib (a private dependency of
// lamina), and stored blocks make truncation points predictable.
std::string gzip(const std::string& bytes, size_t block = 65535) {
  std::string out = {'\x1f', '\x8b', '\x08', '\0', '\0', '\0', '\0', '\0', '\0', '\xff'};
  size_t pos = 0;
  do {
    const size_t n = std::min(bytes.size() - pos, block);
    out.push_back(pos + n == bytes.size() ? '\x01' : '\x00');  // BFINAL, BTYPE 00 = stored
    put_le(out, static_cast<uint32_t>(n), 2);
    put_le(out, static_cast<uint32_t>(~n & 0xffffu), 2);
    out.append(bytes, pos, n);
    pos += n;
  } while (pos < bytes.size());
  put_le(out, crc32(bytes), 4);
  put_le(out, static_cast<uint32_t>(bytes.size()), 4);
  return out;
}

// An IDX file: 0 0 type rank, big-endian uint32 dims, then the payload as given.
std::string idx_file(const std::vector<uint32_t>& dims, const std::string& payload, uint8_t type = 0x08) {
  std::string out = {'\0', '\0', static_cast<char>(type), static_cast<char>(dims.size())};
  for (uint32_t d : dims)
    for (int shift = 24; shift >= 0; shift -= 8) out.push_back(static_cast<char>((d >> shift) & 0xffu));
  return out + payload;
}

std::string iota_bytes(size_t n, int start = 0) {
  std::string s(n, '\0');
  for (size_t i = 0; i < n; ++i) s[i] = static_cast<char>((start + static_cast<int>(i)) & 0xff);
  return s;
}

using testing::error_of;


// --- Idx ---------------------------------------------------------------------------------------

TEST(Idx, RawRoundTrip) {
  TempDir dir;
  const std::string payload = iota_bytes(24);
  write_file(dir / "a.idx", idx_file({2, 3, 4}, payload));
  const data::Idx idx = data::read_idx(dir / "a.idx");
  EXPECT_EQ(idx.dims, (std::vector<int64_t>{2, 3, 4}));
  EXPECT_EQ(idx.type, 0x08);
  EXPECT_EQ(std::string(idx.bytes.begin(), idx.bytes.end()), payload);
}

TEST(Idx, GzipRoundTripAcrossBlocks) {
  TempDir dir;
  const std::string payload = iota_bytes(5 * 28 * 28, 7);
  write_file(dir / "a.idx.gz", gzip(idx_file({5, 28, 28}, payload), 1000));  // 4 stored blocks
  const data::Idx idx = data::read_idx(dir / "a.idx.gz");
  EXPECT_EQ(idx.dims, (std::vector<int64_t>{5, 28, 28}));
  EXPECT_EQ(std::string(idx.bytes.begin(), idx.bytes.end()), payload);

  // Detection is by content, not by name: a gzip file without .gz and a raw one with it.
  write_file(dir / "b", gzip(idx_file({3}, "abc")));
  EXPECT_EQ(data::read_idx(dir / "b").dims, (std::vector<int64_t>{3}));
  write_file(dir / "c.gz", idx_file({3}, "abc"));
  EXPECT_EQ(data::read_idx(dir / "c.gz").dims, (std::vector<int64_t>{3}));
}

TEST(Idx, EmptyDimensionIsValid) {
  TempDir dir;
  write_file(dir / "e.idx", idx_file({0, 28, 28}, ""));
  const data::Idx idx = data::read_idx(dir / "e.idx");
  EXPECT_EQ(idx.dims, (std::vector<int64_t>{0, 28, 28}));
  EXPECT_TRUE(idx.bytes.empty());
}

TEST(Idx, BadMagic) {
  TempDir dir;
  std::string file = idx_file({3}, "abc");
  file[0] = 0x01;
  write_file(dir / "bad.idx", file);
  const std::string msg = error_of<IoError>([&] { data::read_idx(dir / "bad.idx"); });
  EXPECT_CONTAINS(msg, dir / "bad.idx");
  EXPECT_CONTAINS(msg, "magic");
  EXPECT_CONTAINS(msg, "got 0x01 0x00");
}

TEST(Idx, WrongType) {
  TempDir dir;
  write_file(dir / "f.idx", idx_file({1}, "abcd", 0x0d));
  const std::string msg = error_of<IoError>([&] { data::read_idx(dir / "f.idx"); });
  EXPECT_CONTAINS(msg, dir / "f.idx");
  EXPECT_CONTAINS(msg, "expected 0x08");
  EXPECT_CONTAINS(msg, "got 0x0d float32");
}

TEST(Idx, Truncated) {
  TempDir dir;
  write_file(dir / "t.idx", idx_file({2, 3}, "abcde"));  // 5 of 6 bytes
  std::string msg = error_of<IoError>([&] { data::read_idx(dir / "t.idx"); });
  EXPECT_CONTAINS(msg, dir / "t.idx");
  EXPECT_CONTAINS(msg, "truncated");
  EXPECT_CONTAINS(msg, "expected 6 bytes for (2, 3), got 5");

  write_file(dir / "h.idx", idx_file({2, 3}, "").substr(0, 9));  // rank 2, one and a bit dims
  msg = error_of<IoError>([&] { data::read_idx(dir / "h.idx"); });
  EXPECT_CONTAINS(msg, dir / "h.idx");
  EXPECT_CONTAINS(msg, "truncated IDX header");

  write_file(dir / "s.idx", std::string("\0\0", 2));
  EXPECT_CONTAINS(error_of<IoError>([&] { data::read_idx(dir / "s.idx"); }), "truncated IDX header");

  // A gzip stream cut in the middle: zlib's complaint, still naming the file.
  const std::string gz = gzip(idx_file({100}, iota_bytes(100)));
  write_file(dir / "t.idx.gz", gz.substr(0, gz.size() - 30));
  msg = error_of<IoError>([&] { data::read_idx(dir / "t.idx.gz"); });
  EXPECT_CONTAINS(msg, dir / "t.idx.gz");
}

TEST(Idx, TrailingBytes) {
  TempDir dir;
  write_file(dir / "x.idx", idx_file({2}, "abXYZ"));
  std::string msg = error_of<IoError>([&] { data::read_idx(dir / "x.idx"); });
  EXPECT_CONTAINS(msg, dir / "x.idx");
  EXPECT_CONTAINS(msg, "trailing bytes");
  EXPECT_CONTAINS(msg, "got 3 more");

  write_file(dir / "x.idx.gz", gzip(idx_file({2}, "abX")));
  msg = error_of<IoError>([&] { data::read_idx(dir / "x.idx.gz"); });
  EXPECT_CONTAINS(msg, dir / "x.idx.gz");
  EXPECT_CONTAINS(msg, "trailing bytes");
}

TEST(Idx, ZeroRankOverflowAndMissing) {
  TempDir dir;
  write_file(dir / "z.idx", idx_file({}, "a"));
  std::string msg = error_of<IoError>([&] { data::read_idx(dir / "z.idx"); });
  EXPECT_CONTAINS(msg, dir / "z.idx");
  EXPECT_CONTAINS(msg, "no dimensions");

  write_file(dir / "o.idx", idx_file({0xffffffffu, 0xffffffffu, 0xffffffffu}, ""));
  msg = error_of<IoError>([&] { data::read_idx(dir / "o.idx"); });
  EXPECT_CONTAINS(msg, dir / "o.idx");
  EXPECT_CONTAINS(msg, "overflow");

  // A header that promises far more than the file holds fails as truncated, not bad_alloc.
  write_file(dir / "big.idx", idx_file({0xffffffffu, 0xffffu}, "abc"));
  EXPECT_CONTAINS(error_of<IoError>([&] { data::read_idx(dir / "big.idx"); }), "truncated IDX data");

  msg = error_of<IoError>([&] { data::read_idx(dir / "missing.idx"); });
  EXPECT_CONTAINS(msg, dir / "missing.idx");
  EXPECT_CONTAINS(msg, "cannot open");
}

TEST(Idx, FromMemoryRawAndGzip) {
  const std::string file = idx_file({2, 3}, iota_bytes(6));
  data::Idx idx = data::read_idx_bytes(file, "mem.idx");
  EXPECT_EQ(idx.dims, (std::vector<int64_t>{2, 3}));
  EXPECT_EQ(std::string(idx.bytes.begin(), idx.bytes.end()), iota_bytes(6));
  idx = data::read_idx_bytes(gzip(file, 5), "mem.idx.gz");
  EXPECT_EQ(idx.dims, (std::vector<int64_t>{2, 3}));
  EXPECT_EQ(std::string(idx.bytes.begin(), idx.bytes.end()), iota_bytes(6));

  std::string msg = error_of<IoError>([&] { data::read_idx_bytes(file.substr(0, 9), "cut.idx"); });
  EXPECT_CONTAINS(msg, "cut.idx: byte offset 9: truncated IDX header");
  msg = error_of<IoError>([&] { data::read_idx_bytes(file + "x"); });
  EXPECT_CONTAINS(msg, "<memory>: byte offset 18: trailing bytes after IDX data");
}

TEST(Idx, HugeHeaderIsRefusedBeforeAllocating) {
  // 2^40 elements claimed, 3 bytes there: refused from the sizes alone (raw bytes in memory or a
  // regular file), or when the stream ends (gzip), never by asking for a terabyte.
  const std::string file = idx_file({1u << 20, 1u << 20}, "abc");
  const std::string want =
      "byte offset 15: truncated IDX data (expected 1099511627776 bytes for (1048576, 1048576), got 3; the data "
      "starts at byte offset 12)";
  EXPECT_CONTAINS(error_of<IoError>([&] { data::read_idx_bytes(file, "big.idx"); }), "big.idx: " + want);
  EXPECT_CONTAINS(error_of<IoError>([&] { data::read_idx_bytes(gzip(file), "big.idx.gz"); }),
                  "big.idx.gz (gzip): " + want);
  TempDir dir;
  write_file(dir / "big.idx", file);
  EXPECT_CONTAINS(error_of<IoError>([&] { data::read_idx(dir / "big.idx"); }), want);
}

// One inflate loop reads files and memory: members back to back read as one stream (as gzip -d
// does); a bad checksum, bytes after the last member and a cut stream are errors.
TEST(Gzip, MembersChecksumsTrailingBytesAndTruncation) {
  const std::string file = idx_file({10}, iota_bytes(10));
  const data::Idx two = data::read_idx_bytes(gzip(file.substr(0, 7)) + gzip(file.substr(7)), "two.gz");
  EXPECT_EQ(two.dims, (std::vector<int64_t>{10}));
  EXPECT_EQ(std::string(two.bytes.begin(), two.bytes.end()), iota_bytes(10));

  std::string bad_crc = gzip(file);
  bad_crc[bad_crc.size() - 8] ^= 1;
  EXPECT_CONTAINS(error_of<IoError>([&] { data::read_idx_bytes(bad_crc, "crc.gz"); }),
                  "crc.gz: corrupt or truncated gzip data after 18 decompressed bytes (zlib: incorrect data check)");
  EXPECT_CONTAINS(error_of<IoError>([&] { data::read_idx_bytes(gzip(file) + "junk", "junk.gz"); }),
                  "junk.gz: unexpected bytes after 18 decompressed bytes, past the end of the gzip data");
  const std::string gz = gzip(file);
  for (size_t cut : {size_t{3}, size_t{12}, gz.size() - 1}) {
    EXPECT_CONTAINS(error_of<IoError>([&] { data::read_idx_bytes(gz.substr(0, cut), "cut.gz"); }),
                    "cut.gz: corrupt or truncated gzip data after ")
        << "cut at " << cut;
  }
  TempDir dir;
  write_file(dir / "junk.gz", gzip(file) + "junk");
  EXPECT_CONTAINS(error_of<IoError>([&] { data::read_idx(dir / "junk.gz"); }), "past the end of the gzip data");
}

// --- Csv ---------------------------------------------------------------------------------------

TEST(Csv, HappyPathLabelLast) {
  TempDir dir;
  write_file(dir / "a.csv", "1,2,3\n4.5,-5e-1,6\n");
  const data::Csv csv = data::read_csv(dir / "a.csv");
  EXPECT_EQ(csv.rows, 2);
  EXPECT_EQ(csv.cols, 2);
  EXPECT_EQ(csv.features, (std::vector<float>{1.f, 2.f, 4.5f, -0.5f}));
  EXPECT_EQ(csv.labels, (std::vector<float>{3.f, 6.f}));

  write_file(dir / "bom.csv", "\xef\xbb\xbf" "7,8\n");  // a UTF-8 BOM is not part of the first number
  EXPECT_EQ(data::read_csv(dir / "bom.csv").features, (std::vector<float>{7.f}));
}

TEST(Csv, HeaderBlanksAndPlus) {
  TempDir dir;
  write_file(dir / "h.csv", "\xef\xbb\xbfx0,x1,label\n 1 , +2,0\n3,\t4 ,1\n\n");  // BOM, blank tail
  const data::Csv csv = data::read_csv(dir / "h.csv", {.header = true});
  EXPECT_EQ(csv.rows, 2);
  EXPECT_EQ(csv.features, (std::vector<float>{1.f, 2.f, 3.f, 4.f}));
  EXPECT_EQ(csv.labels, (std::vector<float>{0.f, 1.f}));
}

TEST(Csv, LabelColumn) {
  TempDir dir;
  write_file(dir / "l.csv", "7,1,2\n8,3,4\n");
  data::Csv csv = data::read_csv(dir / "l.csv", {.label_column = 0});
  EXPECT_EQ(csv.labels, (std::vector<float>{7.f, 8.f}));
  EXPECT_EQ(csv.features, (std::vector<float>{1.f, 2.f, 3.f, 4.f}));
  csv = data::read_csv(dir / "l.csv", {.label_column = -2});  // the middle column
  EXPECT_EQ(csv.labels, (std::vector<float>{1.f, 3.f}));
  EXPECT_EQ(csv.features, (std::vector<float>{7.f, 2.f, 8.f, 4.f}));
  const std::string msg = error_of<ValueError>([&] { data::read_csv(dir / "l.csv", {.label_column = 3}); });
  EXPECT_CONTAINS(msg, dir / "l.csv");
  EXPECT_CONTAINS(msg, "label_column 3");
  EXPECT_THROW(data::read_csv(dir / "l.csv", {.label_column = -4}), ValueError);
}

TEST(Csv, CrLfNoFinalNewlineAndGzip) {
  TempDir dir;
  write_file(dir / "w.csv", "1,2\r\n3,4\r\n5,6");
  data::Csv csv = data::read_csv(dir / "w.csv");
  EXPECT_EQ(csv.rows, 3);
  EXPECT_EQ(csv.features, (std::vector<float>{1.f, 3.f, 5.f}));
  EXPECT_EQ(csv.labels, (std::vector<float>{2.f, 4.f, 6.f}));

  write_file(dir / "w.csv.gz", gzip("1,2\r\n3,4\r\n", 4));
  csv = data::read_csv(dir / "w.csv.gz");
  EXPECT_EQ(csv.rows, 2);
  EXPECT_EQ(csv.labels, (std::vector<float>{2.f, 4.f}));
}

TEST(Csv, FromMemoryRawAndGzip) {
  data::Csv csv = data::read_csv_bytes("1,2,0\n3,4,1\n", {}, "inline.csv");
  EXPECT_EQ(csv.rows, 2);
  EXPECT_EQ(csv.features, (std::vector<float>{1.f, 2.f, 3.f, 4.f}));
  EXPECT_EQ(csv.labels, (std::vector<float>{0.f, 1.f}));
  csv = data::read_csv_bytes(gzip("x,y\n5,6\n"), {.header = true, .label_column = 0});
  EXPECT_EQ(csv.features, (std::vector<float>{6.f}));
  EXPECT_EQ(csv.labels, (std::vector<float>{5.f}));
  EXPECT_CONTAINS(error_of<IoError>([&] { data::read_csv_bytes("1,2\n3\n", {}, "ragged.csv"); }),
                  "ragged.csv: line 2 has 1 fields");
}

TEST(Csv, WideFirstLineReservesNoMoreThanTheTextHolds) {
  // 10^6 (empty) fields on line 1, then 10^6 one-field lines: rows x columns is 10^12 floats
  // (4 TB) in 4 MB of text. Space was reserved for rows x columns before any field was read.
  std::string text(999'999, ',');
  text += '\n';
  for (int i = 0; i < 1'000'000; ++i) text += "1\n";
  EXPECT_CONTAINS(error_of<IoError>([&] { data::read_csv_bytes(text, {}, "wide.csv"); }),
                  "wide.csv: line 1, column 1: empty field");
}

TEST(Csv, NonNumericFieldNamesLineAndColumn) {
  TempDir dir;
  write_file(dir / "n.csv", "a,b,c\n1,2,3\n4,oops,6\n");
  std::string msg = error_of<IoError>([&] { data::read_csv(dir / "n.csv", {.header = true}); });
  EXPECT_CONTAINS(msg, dir / "n.csv");
  EXPECT_CONTAINS(msg, "line 3, column 2");  // lines count the header
  EXPECT_CONTAINS(msg, "'oops'");

  write_file(dir / "p.csv", "1,2\n3,4x\n");
  EXPECT_CONTAINS(error_of<IoError>([&] { data::read_csv(dir / "p.csv"); }), "line 2, column 2");
  write_file(dir / "e.csv", "1,,3\n");
  EXPECT_CONTAINS(error_of<IoError>([&] { data::read_csv(dir / "e.csv"); }), "line 1, column 2: empty field");
  write_file(dir / "hdr.csv", "a,b\n1,2\n");  // a header read as data
  EXPECT_CONTAINS(error_of<IoError>([&] { data::read_csv(dir / "hdr.csv"); }), "line 1, column 1");
}

TEST(Csv, NanAndInfinityAreErrors) {
  TempDir dir;
  for (const std::string bad : {"nan", "NaN", "-inf", "infinity", "1e99"}) {
    write_file(dir / "nan.csv", "1,2\n3," + bad + "\n");
    const std::string msg = error_of<IoError>([&] { data::read_csv(dir / "nan.csv"); });
    EXPECT_CONTAINS(msg, dir / "nan.csv");
    EXPECT_CONTAINS(msg, "line 2, column 2");
    EXPECT_CONTAINS(msg, "'" + bad + "'");
  }
}

TEST(Csv, RaggedRowAndEmptyFile) {
  TempDir dir;
  write_file(dir / "r.csv", "1,2,3\n4,5\n");
  std::string msg = error_of<IoError>([&] { data::read_csv(dir / "r.csv"); });
  EXPECT_CONTAINS(msg, dir / "r.csv");
  EXPECT_CONTAINS(msg, "line 2 has 2 fields (expected 3");
  write_file(dir / "r2.csv", "1,2\n3,4,5\n");
  EXPECT_CONTAINS(error_of<IoError>([&] { data::read_csv(dir / "r2.csv"); }), "line 2 has 3 fields");
  write_file(dir / "blank.csv", "1,2\n\n3,4\n");
  EXPECT_CONTAINS(error_of<IoError>([&] { data::read_csv(dir / "blank.csv"); }), "line 2 is blank");

  write_file(dir / "empty.csv", "");
  msg = error_of<IoError>([&] { data::read_csv(dir / "empty.csv"); });
  EXPECT_CONTAINS(msg, dir / "empty.csv");
  EXPECT_CONTAINS(msg, "empty file");
  write_file(dir / "only_header.csv", "a,b\n");
  EXPECT_CONTAINS(error_of<IoError>([&] { data::read_csv(dir / "only_header.csv", {.header = true}); }),
                  "only the header");
  EXPECT_CONTAINS(error_of<IoError>([&] { data::read_csv(dir / "nope.csv"); }), dir / "nope.csv");
}

// --- Dataset -----------------------------------------------------------------------------------

// N samples of shape (2, 2): sample i holds bytes 4i .. 4i+3; label i % 3.
std::shared_ptr<const std::vector<uint8_t>> sample_bytes(int64_t n) {
  auto v = std::make_shared<std::vector<uint8_t>>(static_cast<size_t>(4 * n));
  for (size_t k = 0; k < v->size(); ++k) (*v)[k] = static_cast<uint8_t>(k);
  return v;
}
std::shared_ptr<const std::vector<float>> sample_labels(int64_t n) {
  auto v = std::make_shared<std::vector<float>>(static_cast<size_t>(n));
  for (size_t i = 0; i < v->size(); ++i) (*v)[i] = static_cast<float>(i % 3);
  return v;
}

// Which storage rows a dataset holds, in order (sample i of sample_bytes starts at byte 4i).
std::vector<int64_t> rows_of(const Dataset& d) {
  const Tensor x = d.all_x();
  std::vector<int64_t> rows;
  for (int64_t i = 0; i < d.size(); ++i) rows.push_back(static_cast<int64_t>(x.data()[4 * i]) / 4);
  return rows;
}

TEST(Dataset, GatherFromBytes) {
  const Dataset d = Dataset::from_bytes(sample_bytes(6), Shape{2, 2}, sample_labels(6), Shape{}, 0.5f);
  EXPECT_EQ(d.size(), 6);
  EXPECT_FALSE(d.empty());
  EXPECT_EQ(d.sample_shape(), (Shape{2, 2}));
  EXPECT_EQ(d.target_shape(), Shape{});

  std::vector<float> x(8), y(2);
  const std::vector<int64_t> idx{4, 1};
  d.gather(idx, x.data(), y.data());
  EXPECT_EQ(x, (std::vector<float>{8.f, 8.5f, 9.f, 9.5f, 2.f, 2.5f, 3.f, 3.5f}));
  EXPECT_EQ(y, (std::vector<float>{1.f, 1.f}));

  const Tensor tx = d.x({5, 0, 5});
  EXPECT_EQ(tx.shape(), (Shape{3, 2, 2}));
  EXPECT_EQ(tx.at({0, 1, 1}), 11.5f);
  EXPECT_EQ(tx.at({1, 0, 0}), 0.f);
  const Tensor ty = d.y({5, 0, 5});
  EXPECT_EQ(ty.shape(), (Shape{3}));
  EXPECT_EQ(ty.to_vector(), (std::vector<float>{2.f, 0.f, 2.f}));
  EXPECT_EQ(d.x(std::span<const int64_t>()).shape(), (Shape{0, 2, 2}));
  EXPECT_EQ(d.all_x().shape(), (Shape{6, 2, 2}));
  EXPECT_EQ(d.all_y().to_vector(), (std::vector<float>{0.f, 1.f, 2.f, 0.f, 1.f, 2.f}));

  const std::string msg = error_of<ValueError>([&] { d.x({0, 6}); });
  EXPECT_CONTAINS(msg, "index 6");
  EXPECT_CONTAINS(msg, "6 samples");
  EXPECT_THROW(d.y({-1}), ValueError);
}

// gather_columns: a block of columns of the same samples gather writes, from bytes (scaled) and
// from floats, through a split's shuffled order, rows ld apart; out-of-range asks name the bounds.
TEST(Dataset, GatherColumnsMatchesGather) {
  const Dataset bytes = Dataset::from_bytes(sample_bytes(6), Shape{2, 2}, sample_labels(6), Shape{}, 0.5f);
  const Dataset floats = Dataset::from_tensors(bytes.all_x(), bytes.all_y()).scaled(3.f);
  for (const Dataset& whole : {bytes, floats}) {
    const Dataset d = whole.split(0.5, 7).second;  // an order map
    const std::vector<int64_t> idx{2, 0, 1};
    const Tensor all = d.x(idx);
    std::vector<float> got(3 * 5, -1.f);
    d.gather_columns(idx, 1, 3, got.data(), 5);
    for (int64_t b = 0; b < 3; ++b) {
      EXPECT_EQ(got[static_cast<size_t>(b * 5)], all.data()[b * 4 + 1]);
      EXPECT_EQ(got[static_cast<size_t>(b * 5 + 1)], all.data()[b * 4 + 2]);
      EXPECT_EQ(got[static_cast<size_t>(b * 5 + 2)], -1.f);  // past the columns: untouched
    }
    EXPECT_CONTAINS(error_of<ValueError>([&] { d.gather_columns(idx, 2, 5, got.data(), 5); }), "columns [2, 5)");
    EXPECT_CONTAINS(error_of<ValueError>([&] { d.gather_columns(std::vector<int64_t>{9}, 0, 1, got.data(), 5); }),
                    "index 9");
  }
}

TEST(Dataset, SliceAndScaled) {
  const Dataset d = Dataset::from_bytes(sample_bytes(6), Shape{2, 2}, sample_labels(6), Shape{}, 1.f);
  const Dataset s = d.slice(2, 5);
  EXPECT_EQ(s.size(), 3);
  EXPECT_EQ(rows_of(s), (std::vector<int64_t>{2, 3, 4}));
  EXPECT_EQ(s.y({0}).item(), 2.f);
  EXPECT_EQ(rows_of(s.slice(1, 3)), (std::vector<int64_t>{3, 4}));
  EXPECT_TRUE(s.slice(1, 1).empty());
  EXPECT_THROW(s.x({3}), ValueError);
  EXPECT_THROW(d.slice(4, 7), ValueError);
  EXPECT_THROW(d.slice(3, 2), ValueError);
  EXPECT_THROW(d.slice(-1, 2), ValueError);

  const Dataset half = s.scaled(0.5f);
  EXPECT_EQ(half.x({0}).at({0, 1, 0}), 5.f);  // byte 10 * 0.5
  EXPECT_EQ(s.x({0}).at({0, 1, 0}), 10.f);    // the original is untouched
  EXPECT_EQ(half.scaled(4.f).x({0}).at({0, 1, 0}), 20.f);
  EXPECT_EQ(half.y({0}).item(), 2.f);         // targets are never scaled
}

TEST(Dataset, SplitIsASeededPartitionSharingStorage) {
  const int64_t n = 60;  // rows_of tells samples apart by their first byte, 4i < 256
  auto bytes = sample_bytes(n);
  const Dataset d = Dataset::from_bytes(bytes, Shape{2, 2}, sample_labels(n), Shape{}, 1.f);
  EXPECT_EQ(bytes.use_count(), 2);

  const auto [a, b] = d.split(0.8, 42);
  EXPECT_EQ(a.size(), 48);
  EXPECT_EQ(b.size(), 12);
  EXPECT_EQ(bytes.use_count(), 4);  // both halves point at the same bytes; nothing was copied
  std::vector<int64_t> all = rows_of(a), rest = rows_of(b);
  all.insert(all.end(), rest.begin(), rest.end());
  std::vector<int64_t> sorted = all;
  std::sort(sorted.begin(), sorted.end());
  std::vector<int64_t> expected(n);
  std::iota(expected.begin(), expected.end(), 0);
  EXPECT_EQ(sorted, expected);     // a partition of every sample
  EXPECT_NE(all, expected);        // and shuffled
  // Targets follow their samples.
  const Tensor ay = a.all_y();
  const std::vector<int64_t> arows = rows_of(a);
  for (int64_t i = 0; i < a.size(); ++i) EXPECT_EQ(ay.data()[i], static_cast<float>(arows[i] % 3));

  const auto [a2, b2] = d.split(0.8, 42);
  EXPECT_EQ(rows_of(a2), rows_of(a));  // same seed, same split
  EXPECT_EQ(rows_of(b2), rows_of(b));
  const auto [a3, b3] = d.split(0.8, 43);
  EXPECT_NE(rows_of(a3), rows_of(a));

  // Splitting a slice or a split stays inside it.
  const auto [c, e] = d.slice(10, 20).split(0.5, 1);
  for (int64_t r : rows_of(c)) EXPECT_TRUE(r >= 10 && r < 20) << r;
  const auto [f, g] = b.split(0.25, 7);
  EXPECT_EQ(f.size(), 3);
  std::vector<int64_t> fg = rows_of(f), g_rows = rows_of(g);
  fg.insert(fg.end(), g_rows.begin(), g_rows.end());
  std::sort(fg.begin(), fg.end());
  std::vector<int64_t> b_rows = rows_of(b);
  std::sort(b_rows.begin(), b_rows.end());
  EXPECT_EQ(fg, b_rows);
  const std::vector<int64_t> f_rows = rows_of(f);
  EXPECT_EQ(rows_of(f.slice(1, 3)), (std::vector<int64_t>(f_rows.begin() + 1, f_rows.begin() + 3)));

  EXPECT_EQ(d.split(0.0, 1).first.size(), 0);
  EXPECT_EQ(d.split(1.0, 1).second.size(), 0);
  EXPECT_THROW(d.split(1.5, 1), ValueError);
  EXPECT_THROW(d.split(-0.1, 1), ValueError);
}

TEST(Dataset, NumClasses) {
  const Dataset d = Dataset::from_bytes(sample_bytes(6), Shape{2, 2}, sample_labels(6), Shape{}, 1.f);
  EXPECT_EQ(d.num_classes(), 3);
  EXPECT_EQ(d.slice(0, 2).num_classes(), 3);  // a property of the set, not of the slice
  const Dataset v = Dataset::from_bytes(sample_bytes(3), Shape{2, 2}, sample_labels(6), Shape{2}, 1.f);
  EXPECT_EQ(v.num_classes(), 0);  // target vectors, not class indices
  const Dataset r = Dataset::from_tensors(Tensor::zeros({2, 3}), Tensor::from({0.5f, 2.f}));
  EXPECT_EQ(r.num_classes(), 0);  // regression targets
  EXPECT_EQ(Dataset().num_classes(), 0);
  EXPECT_TRUE(Dataset().empty());
}

TEST(Dataset, FromTensors) {
  Tensor x = Tensor::from({{1.f, 2.f, 3.f}, {4.f, 5.f, 6.f}, {7.f, 8.f, 9.f}, {0.f, 1.f, 0.f}});
  const Tensor y = Tensor::from({0.f, 1.f, 1.f, 4.f});
  const Dataset d = Dataset::from_tensors(x, y);
  EXPECT_EQ(d.size(), 4);
  EXPECT_EQ(d.sample_shape(), (Shape{3}));
  EXPECT_EQ(d.target_shape(), Shape{});
  EXPECT_EQ(d.num_classes(), 5);
  EXPECT_EQ(d.all_x().to_vector(), x.to_vector());
  EXPECT_EQ(d.x({2}).to_vector(), (std::vector<float>{7.f, 8.f, 9.f}));
  EXPECT_EQ(d.scaled(0.5f).x({1}).to_vector(), (std::vector<float>{2.f, 2.5f, 3.f}));
  x.data()[0] = 100.f;  // the features share x's storage (no copy: Python hands NumPy arrays in)
  EXPECT_EQ(d.x({0}).at({0, 0}), 100.f);
  Dataset kept;
  {
    const Tensor t = Tensor::from({{1.f, 2.f}, {3.f, 4.f}});
    kept = Dataset::from_tensors(t, Tensor::from({0.f, 1.f}));
  }  // the dataset keeps the storage alive
  EXPECT_EQ(kept.x({1}).to_vector(), (std::vector<float>{3.f, 4.f}));
  // prefetch is a hint: any index, in range or not, changes nothing.
  const std::vector<int64_t> hint{1, 0, 7, -3};
  kept.prefetch(hint);
  d.prefetch(hint);
  EXPECT_EQ(kept.x({1}).to_vector(), (std::vector<float>{3.f, 4.f}));

  // all_y, whole and one target of several, through a split's order: each sample's own targets.
  const Dataset two = Dataset::from_tensors({x}, {Tensor::from({0.f, 1.f, 2.f, 3.f}), Tensor::from({{10.f, 11.f}, {12.f, 13.f},
                                                                                                     {14.f, 15.f}, {16.f, 17.f}})});
  const auto [first, rest] = two.split(0.5, 7);
  const std::vector<float> labels = first.all_y(0).to_vector(), pairs = first.all_y(1).to_vector();
  const std::vector<float> rows = first.all_y().to_vector();  // label, pair: 3 per sample
  ASSERT_EQ(labels.size(), 2u);
  ASSERT_EQ(pairs.size(), 4u);
  ASSERT_EQ(rows.size(), 6u);
  for (size_t i = 0; i < 2; ++i) {
    const float label = labels[i];
    EXPECT_EQ(pairs[2 * i], 10.f + 2.f * label);
    EXPECT_EQ(pairs[2 * i + 1], 11.f + 2.f * label);
    EXPECT_EQ(rows[3 * i], label);
    EXPECT_EQ(rows[3 * i + 2], 11.f + 2.f * label);
  }
  EXPECT_NE(labels, (std::vector<float>{0.f, 1.f})) << "the split's order, not storage order (seed 7)";

  const Dataset v = Dataset::from_tensors(Tensor::zeros({4, 2, 2}), Tensor::ones({4, 2}));
  EXPECT_EQ(v.sample_shape(), (Shape{2, 2}));
  EXPECT_EQ(v.target_shape(), (Shape{2}));
  EXPECT_EQ(v.y({3}).shape(), (Shape{1, 2}));

  const std::string msg = error_of<ShapeError>([&] { Dataset::from_tensors(x, Tensor::zeros({5})); });
  EXPECT_CONTAINS(msg, "(4, 3)");
  EXPECT_CONTAINS(msg, "(5)");
  EXPECT_THROW(Dataset::from_tensors(Tensor::scalar(1.f), Tensor::scalar(1.f)), ShapeError);
  EXPECT_THROW(Dataset::from_bytes(sample_bytes(3), Shape{5}, sample_labels(3), Shape{}), ShapeError);
  EXPECT_THROW(Dataset::from_bytes(sample_bytes(3), Shape{2, 2}, sample_labels(4), Shape{}), ShapeError);
}

// --- Loaders -----------------------------------------------------------------------------------

// A fake MNIST directory: 5 training images (raw files) and 3 test images (gzipped).
void write_fake_mnist(const TempDir& dir, uint32_t train_labels = 5) {
  std::string labels;
  for (uint32_t i = 0; i < train_labels; ++i) labels.push_back(static_cast<char>(i * 2));  // 0 2 4 6 8
  write_file(dir / "train-images-idx3-ubyte", idx_file({5, 28, 28}, iota_bytes(5 * 784)));
  write_file(dir / "train-labels-idx1-ubyte", idx_file({train_labels}, labels));
  write_file(dir / "t10k-images-idx3-ubyte.gz", gzip(idx_file({3, 28, 28}, std::string(3 * 784, '\xff'))));
  write_file(dir / "t10k-labels-idx1-ubyte.gz", gzip(idx_file({3}, std::string("\x09\x00\x01", 3))));
}

TEST(Loaders, MnistFromFakeDirectory) {
  TempDir dir;
  write_fake_mnist(dir);
  for (const auto& tt : {data::load_mnist(dir.str()), data::load_fashion_mnist(dir.str())}) {
    EXPECT_EQ(tt.train.size(), 5);
    EXPECT_EQ(tt.test.size(), 3);
    EXPECT_EQ(tt.train.sample_shape(), (Shape{28, 28}));
    EXPECT_EQ(tt.train.target_shape(), Shape{});
    EXPECT_EQ(tt.train.num_classes(), 9);
    EXPECT_EQ(tt.test.num_classes(), 10);
    const Tensor x = tt.train.x({1});
    EXPECT_EQ(x.shape(), (Shape{1, 28, 28}));
    EXPECT_FLOAT_EQ(x.at({0, 0, 0}), static_cast<float>(784 % 256) / 255.f);
    EXPECT_EQ(tt.train.y({0, 1, 4}).to_vector(), (std::vector<float>{0.f, 2.f, 8.f}));
    EXPECT_FLOAT_EQ(tt.test.x({2}).at({0, 27, 27}), 1.f);
    EXPECT_EQ(tt.test.all_y().to_vector(), (std::vector<float>{9.f, 0.f, 1.f}));
  }
}

TEST(Loaders, MnistErrors) {
  {
    TempDir dir;
    write_fake_mnist(dir, 4);
    const std::string msg = error_of<IoError>([&] { data::load_mnist(dir.str()); });
    EXPECT_CONTAINS(msg, dir / "train-labels-idx1-ubyte");
    EXPECT_CONTAINS(msg, "4 labels for 5 images");
  }
  {
    TempDir dir;
    write_fake_mnist(dir);
    fs::remove(dir / "t10k-labels-idx1-ubyte.gz");
    const std::string msg = error_of<IoError>([&] { data::load_mnist(dir.str()); });
    EXPECT_CONTAINS(msg, dir / "t10k-labels-idx1-ubyte");
    EXPECT_CONTAINS(msg, "scripts/fetch-data.sh");
    EXPECT_CONTAINS(error_of<IoError>([&] { data::load_fashion_mnist(dir.str()); }), "fetch-data.sh fashion_mnist");
  }
  {
    TempDir dir;
    write_fake_mnist(dir);
    write_file(dir / "train-labels-idx1-ubyte", idx_file({5}, std::string("\x00\x01\x0a\x02\x03", 5)));
    const std::string msg = error_of<IoError>([&] { data::load_mnist(dir.str()); });
    EXPECT_CONTAINS(msg, "label 2 is 10");
  }
  {
    TempDir dir;
    write_fake_mnist(dir);
    write_file(dir / "train-images-idx3-ubyte", idx_file({5, 784}, iota_bytes(5 * 784)));
    const std::string msg = error_of<IoError>([&] { data::load_mnist(dir.str()); });
    EXPECT_CONTAINS(msg, "(5, 784)");
    EXPECT_CONTAINS(msg, "expected (N, 28, 28)");
  }
}

TEST(Loaders, DigitsFromTinyGzipCsv) {
  TempDir dir;
  std::string csv;
  for (int r = 0; r < 3; ++r) {
    for (int k = 0; k < 64; ++k) csv += std::to_string((r + k) % 17) + ",";
    csv += std::to_string(r * 4) + "\n";  // labels 0 4 8
  }
  write_file(dir / "digits.csv.gz", gzip(csv));
  const Dataset d = data::load_digits(dir / "digits.csv.gz");
  EXPECT_EQ(d.size(), 3);
  EXPECT_EQ(d.sample_shape(), (Shape{64}));
  EXPECT_EQ(d.target_shape(), Shape{});
  EXPECT_EQ(d.num_classes(), 9);
  EXPECT_EQ(d.all_y().to_vector(), (std::vector<float>{0.f, 4.f, 8.f}));
  EXPECT_EQ(d.x({1}).at({0, 63}), 13.f);  // (1 + 63) % 17, unscaled

  write_file(dir / "short.csv.gz", gzip("1,2,3\n"));
  EXPECT_CONTAINS(error_of<IoError>([&] { data::load_digits(dir / "short.csv.gz"); }), "expected 64");
  std::string bad_label;
  for (int k = 0; k < 64; ++k) bad_label += "0,";
  write_file(dir / "label.csv", bad_label + "3\n" + bad_label + "12\n");
  EXPECT_CONTAINS(error_of<IoError>([&] { data::load_digits(dir / "label.csv"); }), "line 2: label 12");
  const std::string msg = error_of<IoError>([&] { data::load_digits(dir / "none.csv.gz"); });
  EXPECT_CONTAINS(msg, dir / "none.csv.gz");
  EXPECT_CONTAINS(msg, "scripts/fetch-data.sh digits");
}

}  // namespace
}  // namespace lamina
