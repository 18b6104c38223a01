// io: safetensors round trips, byte-for-byte agreement with the reference implementation
// (huggingface/safetensors), every corruption the loader must refuse, and atomic writes.
// Files go to a scratch directory per test; no Python is needed.
#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <limits>
#include <map>
#include <string>
#include <vector>

#include "lamina/io.hpp"
#include "lamina/lamina.hpp"
#include "test_util.hpp"

namespace lamina {
namespace {

namespace fs = std::filesystem;
using testing::error_of;

// A fresh directory under the system temp dir, removed with everything in it at scope exit.
class ScratchDir {
 public:
  ScratchDir() {
    static std::atomic<int> counter{0};
    const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
    path_ = fs::temp_directory_path() / ("lamina_io_" + std::to_string(::getpid()) + "_" + info->name() + "_" +
                                         std::to_string(counter++));
    fs::remove_all(path_);
    fs::create_directories(path_);
  }
  ~ScratchDir() {
    std::error_code ec;
    fs::remove_all(path_, ec);
  }
  ScratchDir(const ScratchDir&) = delete;
  ScratchDir& operator=(const ScratchDir&) = delete;

  std::string file(const std::string& name) const { return (path_ / name).string(); }
  const fs::path& path() const { return path_; }
  // Names of the entries in the directory, sorted.
  std::vector<std::string> entries() const {
    std::vector<std::string> out;
    for (const auto& e : fs::directory_iterator(path_)) out.push_back(e.path().filename().string());
    std::sort(out.begin(), out.end());
    return out;
  }

 private:
  fs::path path_;
};

void write_raw(const std::string& path, const std::string& bytes) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  ASSERT_TRUE(out.good()) << path;
}

std::string le64(uint64_t n) {
  std::string s;
  for (int i = 0; i < 8; ++i) s.push_back(static_cast<char>((n >> (8 * i)) & 0xFF));
  return s;
}

std::string f32_bytes(const std::vector<float>& values) {
  std::string s(values.size() * sizeof(float), '\0');
  if (!s.empty()) std::memcpy(s.data(), values.data(), s.size());  // memcpy from an empty vector's null data() is UB
  return s;
}

// A safetensors file from a header and data, with the header padded with spaces to a multiple
// of 8 as the reference writer does (pad = false gives what older writers produced).
std::string st_file(std::string header, const std::string& data, bool pad = true) {
  if (pad) header.append((8 - header.size() % 8) % 8, ' ');
  return le64(header.size()) + header + data;
}

std::vector<uint32_t> bits(const Tensor& t) {
  std::vector<uint32_t> out(static_cast<size_t>(t.numel()));
  if (!out.empty()) std::memcpy(out.data(), t.data(), out.size() * sizeof(uint32_t));  // out.data() is null when empty
  return out;
}

// Loading `bytes` must throw IoError whose message names the path and contains every needle.
void expect_load_error(const ScratchDir& dir, const std::string& case_name, const std::string& bytes,
                       const std::vector<std::string>& needles) {
  SCOPED_TRACE("case " + case_name);
  const std::string path = dir.file(case_name + ".safetensors");
  write_raw(path, bytes);
  try {
    io::load_safetensors(path);
    ADD_FAILURE() << "no exception";
  } catch (const IoError& e) {
    const std::string msg = e.what();
    EXPECT_NE(msg.find(path + ": "), std::string::npos) << "message does not name the path: " << msg;
    for (const auto& needle : needles)
      EXPECT_NE(msg.find(needle), std::string::npos) << "missing '" << needle << "' in: " << msg;
  } catch (const std::exception& e) {
    ADD_FAILURE() << "expected IoError, got " << e.what();
  }
  // The same bytes from memory: the same error, naming what stands for the path.
  try {
    io::load_safetensors_bytes(bytes, "in-memory " + case_name);
    ADD_FAILURE() << "no exception from memory";
  } catch (const IoError& e) {
    const std::string msg = e.what();
    EXPECT_EQ(msg.rfind("in-memory " + case_name + ": ", 0), 0u) << msg;
    for (const auto& needle : needles)
      EXPECT_NE(msg.find(needle), std::string::npos) << "missing '" << needle << "' in: " << msg;
  }
}

// --- safetensors: round trips ------------------------------------------------------------------

TEST(Safetensors, RoundTripsTensorsAndMetadata) {
  ScratchDir dir;
  const std::string path = dir.file("model.safetensors");
  Generator gen(7);
  const io::NamedTensors tensors = {
      {"dense/kernel", Tensor::randn({3, 4}, gen)},
      {"dense/bias", Tensor::from({0.5f, -1.f, 2.f, 0.f})},
      {"step", Tensor::scalar(42.f)},
      {"empty", Tensor::zeros({0, 5})},
      {"conv/kernel", Tensor::randn({2, 3, 2, 1}, gen)},
      {"a", Tensor::from({1.f})},  // names keep the given order, not sorted
  };
  const std::map<std::string, std::string> metadata = {{"format", "lamina"},
                                                       {"config", R"({"units": 4, "name": "dense"})"},
                                                       {"unicode", "caf\xc3\xa9"}};
  io::save_safetensors(path, tensors, metadata);

  const io::SafetensorsFile file = io::load_safetensors(path);
  EXPECT_EQ(file.metadata, metadata);
  ASSERT_EQ(file.tensors.size(), tensors.size());
  for (size_t i = 0; i < tensors.size(); ++i) {
    SCOPED_TRACE(tensors[i].first);
    EXPECT_EQ(file.tensors[i].first, tensors[i].first);
    EXPECT_EQ(file.tensors[i].second.shape(), tensors[i].second.shape());
    EXPECT_EQ(bits(file.tensors[i].second), bits(tensors[i].second));
  }
  EXPECT_EQ(file.tensors[2].second.rank(), 0);
  EXPECT_EQ(file.tensors[3].second.numel(), 0);
  EXPECT_EQ(dir.entries(), std::vector<std::string>{"model.safetensors"});
}

TEST(Safetensors, RoundTripKeepsEveryBit) {
  ScratchDir dir;
  const std::string path = dir.file("special.safetensors");
  const float inf = std::numeric_limits<float>::infinity();
  const float denormal = std::numeric_limits<float>::denorm_min();
  const Tensor t = Tensor::from({0.f, -0.f, inf, -inf, std::numeric_limits<float>::quiet_NaN(), denormal,
                                 std::numeric_limits<float>::max(), -1e-30f});
  io::save_safetensors(path, {{"x", t}});
  const auto file = io::load_safetensors(path);
  ASSERT_EQ(file.tensors.size(), 1u);
  EXPECT_EQ(bits(file.tensors[0].second), bits(t));
  EXPECT_TRUE(file.metadata.empty());
}

TEST(Safetensors, NoTensorsAtAll) {
  ScratchDir dir;
  const std::string path = dir.file("empty.safetensors");
  io::save_safetensors(path, {});
  // The reference writes "{}" padded to 8 (test_empty in safetensors/src/tensor.rs).
  EXPECT_EQ(io::read_file(path), le64(8) + "{}      ");
  const auto file = io::load_safetensors(path);
  EXPECT_TRUE(file.tensors.empty());
  EXPECT_TRUE(file.metadata.empty());
}

TEST(Safetensors, HeaderIsPaddedSoDataIsAligned) {
  ScratchDir dir;
  for (const std::string name : {"w", "ww", "www", "wwww", "wwwww", "wwwwww", "wwwwwww", "wwwwwwww"}) {
    SCOPED_TRACE(name);
    const std::string path = dir.file(name + ".safetensors");
    io::save_safetensors(path, {{name, Tensor::ones({3})}, {"b", Tensor::ones({2, 2})}});
    const std::string bytes = io::read_file(path);
    uint64_t n = 0;
    std::memcpy(&n, bytes.data(), 8);
    EXPECT_EQ(n % 8, 0u);
    EXPECT_EQ(bytes.size(), 8 + n + 7 * sizeof(float));
    const std::string header = bytes.substr(8, n);
    EXPECT_EQ(header.find_last_not_of(' ') + 1, header.find_last_of('}') + 1) << "pads with spaces only";
    EXPECT_EQ(header.substr(0, header.find_last_not_of(' ') + 1),
              R"({")" + name + R"(":{"dtype":"F32","shape":[3],"data_offsets":[0,12]},)" +
                  R"("b":{"dtype":"F32","shape":[2,2],"data_offsets":[12,28]}})");
  }
}

// --- safetensors: the reference implementation ---------------------------------------------------

// Bytes the reference implementation produces, from its own unit tests
// (safetensors/src/tensor.rs: test_serialization, test_serialization_forced_alignement, test_empty).
// Ours must match byte for byte and load them back.
TEST(Safetensors, MatchesReferenceSerializationByteForByte) {
  ScratchDir dir;
  const std::string data = f32_bytes({0.f, 1.f, 2.f, 3.f, 4.f, 5.f});
  struct Case {
    std::string name;
    Shape shape;
    std::string expected;
  };
  const std::vector<Case> cases = {
      // 64-byte header: already aligned, no padding.
      {"attn.0", Shape{1, 2, 3},
       le64(64) + R"({"attn.0":{"dtype":"F32","shape":[1,2,3],"data_offsets":[0,24]}})" + data},
      // 65 bytes of JSON, padded with 7 spaces to 72.
      {"attn0", Shape{1, 1, 2, 3},
       le64(72) + R"({"attn0":{"dtype":"F32","shape":[1,1,2,3],"data_offsets":[0,24]}})" + "       " + data},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.name);
    const std::string path = dir.file(c.name + ".safetensors");
    io::save_safetensors(path, {{c.name, Tensor::from({0.f, 1.f, 2.f, 3.f, 4.f, 5.f}, c.shape)}});
    EXPECT_EQ(io::read_file(path), c.expected);
    write_raw(path, c.expected);
    const auto file = io::load_safetensors(path);
    ASSERT_EQ(file.tensors.size(), 1u);
    EXPECT_EQ(file.tensors[0].first, c.name);
    EXPECT_EQ(file.tensors[0].second.shape(), c.shape);
    EXPECT_EQ(file.tensors[0].second.to_vector(), (std::vector<float>{0.f, 1.f, 2.f, 3.f, 4.f, 5.f}));
  }

  // Metadata only: {"__metadata__":{"framework":"pt"}} is 35 bytes, padded to 40.
  const std::string expected = le64(40) + R"({"__metadata__":{"framework":"pt"}})" + "     ";
  const std::string path = dir.file("meta.safetensors");
  io::save_safetensors(path, {}, {{"framework", "pt"}});
  EXPECT_EQ(io::read_file(path), expected);
  const auto file = io::load_safetensors(path);
  EXPECT_TRUE(file.tensors.empty());
  EXPECT_EQ(file.metadata, (std::map<std::string, std::string>{{"framework", "pt"}}));
}

// What `safetensors.torch.save_file({"weight": w, "bias": b, "scale": s}, f, metadata={"format": "pt"})`
// writes: __metadata__ first, then the tensors sorted by name (all F32), compact JSON, padded.
TEST(Safetensors, ReadsFileWrittenByReferenceImplementation) {
  ScratchDir dir;
  const std::string path = dir.file("torch.safetensors");
  const std::string header =
      R"({"__metadata__":{"format":"pt"},)"
      R"("bias":{"dtype":"F32","shape":[3],"data_offsets":[0,12]},)"
      R"("scale":{"dtype":"F32","shape":[],"data_offsets":[12,16]},)"
      R"("weight":{"dtype":"F32","shape":[2,3],"data_offsets":[16,40]}})";
  const std::string data = f32_bytes({0.1f, 0.2f, -0.3f, 2.5f, 1.f, 2.f, 3.f, 4.f, 5.f, 6.f});
  const std::string bytes = st_file(header, data);
  ASSERT_EQ(bytes.size(), 8u + 216u + 40u);  // 209 bytes of JSON padded to 216
  write_raw(path, bytes);

  const auto file = io::load_safetensors(path);
  EXPECT_EQ(file.metadata, (std::map<std::string, std::string>{{"format", "pt"}}));
  ASSERT_EQ(file.tensors.size(), 3u);
  EXPECT_EQ(file.tensors[0].first, "bias");
  EXPECT_EQ(file.tensors[0].second.to_vector(), (std::vector<float>{0.1f, 0.2f, -0.3f}));
  EXPECT_EQ(file.tensors[1].first, "scale");
  EXPECT_EQ(file.tensors[1].second.rank(), 0);
  EXPECT_EQ(file.tensors[1].second.item(), 2.5f);
  EXPECT_EQ(file.tensors[2].first, "weight");
  EXPECT_EQ(file.tensors[2].second.shape(), (Shape{2, 3}));
  EXPECT_EQ(file.tensors[2].second.at({1, 2}), 6.f);

  // Saving the loaded tensors again (same, sorted order) reproduces the file exactly.
  const std::string again = dir.file("again.safetensors");
  io::save_safetensors(again, file.tensors, file.metadata);
  EXPECT_EQ(io::read_file(again), bytes);
}

// Older writers ordered the header by name, not by offset, and did not pad; the reference reader
// sorts by offset and ignores fields it does not know. So do we.
TEST(Safetensors, ReadsUnpaddedHeaderInAnyKeyOrder) {
  ScratchDir dir;
  const std::string path = dir.file("old.safetensors");
  const std::string header =
      R"({"a_second":{"dtype":"F32","shape":[1],"data_offsets":[8,12],"extra":1},)"
      R"( "z_first":{"shape":[2],"dtype":"F32","data_offsets":[0,8]},)"
      R"( "nothing":{"dtype":"F32","shape":[0,3],"data_offsets":[12,12]}})";
  write_raw(path, st_file(header, f32_bytes({1.f, 2.f, 3.f}), /*pad=*/false));
  const auto file = io::load_safetensors(path);
  ASSERT_EQ(file.tensors.size(), 3u);
  EXPECT_EQ(file.tensors[0].first, "z_first");
  EXPECT_EQ(file.tensors[0].second.to_vector(), (std::vector<float>{1.f, 2.f}));
  EXPECT_EQ(file.tensors[1].first, "a_second");
  EXPECT_EQ(file.tensors[1].second.to_vector(), (std::vector<float>{3.f}));
  EXPECT_EQ(file.tensors[2].first, "nothing");
  EXPECT_EQ(file.tensors[2].second.shape(), (Shape{0, 3}));
}

// --- safetensors: corrupt files ------------------------------------------------------------------

TEST(Safetensors, RefusesCorruptFilesNamingPathAndField) {
  ScratchDir dir;
  const std::string a = R"("a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]})";
  const std::string b = R"("b":{"dtype":"F32","shape":[2,1],"data_offsets":[8,16]})";
  const std::string data = f32_bytes({1.f, 2.f, 3.f, 4.f});
  const std::string valid = st_file("{" + a + "," + b + "}", data);
  {
    // The base case is valid, so each mutation below is what makes the difference.
    const std::string path = dir.file("valid.safetensors");
    write_raw(path, valid);
    EXPECT_EQ(io::load_safetensors(path).tensors.size(), 2u);
  }
  auto with_a = [&](const std::string& entry_a) { return st_file("{" + entry_a + "," + b + "}", data); };

  // The length prefix.
  expect_load_error(dir, "empty", "", {"0 bytes", "8-byte header length"});
  expect_load_error(dir, "truncated_length", valid.substr(0, 5), {"5 bytes", "8-byte header length"});
  expect_load_error(dir, "length_past_end", le64(valid.size()) + valid.substr(8), {"header length", "past the end"});
  expect_load_error(dir, "truncated_header", valid.substr(0, 20), {"header length", "past the end"});
  expect_load_error(dir, "length_absurd", le64(uint64_t{1} << 40) + valid.substr(8), {"header length", "100 MB"});
  expect_load_error(dir, "length_max", le64(std::numeric_limits<uint64_t>::max()) + valid.substr(8),
                    {"header length", "100 MB"});

  // The header as JSON.
  expect_load_error(dir, "not_json", st_file(R"({"a": {"dtype": )", ""), {"header", "not valid JSON"});
  expect_load_error(dir, "bad_utf8", st_file("{\"\xff\xfe\":{}}", ""), {"header", "not valid JSON"});
  expect_load_error(dir, "not_object", st_file("[1, 2]", ""), {"header", "array", "expected an object"});
  expect_load_error(dir, "duplicate_name", st_file("{" + a + "," + a + "}", f32_bytes({1.f, 2.f})),
                    {"tensor 'a' twice"});

  // A tensor entry's fields.
  expect_load_error(dir, "entry_not_object", with_a(R"("a":5)"), {"tensor 'a'", "expected an object"});
  expect_load_error(dir, "no_dtype", with_a(R"("a":{"shape":[2],"data_offsets":[0,8]})"),
                    {"tensor 'a'", "no field 'dtype'"});
  expect_load_error(dir, "no_shape", with_a(R"("a":{"dtype":"F32","data_offsets":[0,8]})"),
                    {"tensor 'a'", "no field 'shape'"});
  expect_load_error(dir, "no_offsets", with_a(R"("a":{"dtype":"F32","shape":[2]})"),
                    {"tensor 'a'", "no field 'data_offsets'"});
  expect_load_error(dir, "dtype_not_string", with_a(R"("a":{"dtype":32,"shape":[2],"data_offsets":[0,8]})"),
                    {"tensor 'a' field 'dtype'", "expected a string"});
  {
    // Same length as "F32", so only the dtype changes: what a float16 export would look like.
    std::string f16 = valid;
    f16.replace(f16.find("F32"), 3, "F16");
    expect_load_error(dir, "dtype_f16", f16, {"tensor 'a'", "dtype F16", "only F32"});
  }
  expect_load_error(dir, "dtype_f64", with_a(R"("a":{"dtype":"F64","shape":[1],"data_offsets":[0,8]})"),
                    {"tensor 'a'", "dtype F64", "only F32"});
  expect_load_error(dir, "shape_not_array", with_a(R"("a":{"dtype":"F32","shape":"2","data_offsets":[0,8]})"),
                    {"tensor 'a' field 'shape'", "expected an array"});
  expect_load_error(dir, "shape_negative", with_a(R"("a":{"dtype":"F32","shape":[-2],"data_offsets":[0,8]})"),
                    {"tensor 'a' field 'shape'", "negative value -2"});
  expect_load_error(dir, "shape_fraction", with_a(R"("a":{"dtype":"F32","shape":[2.5],"data_offsets":[0,8]})"),
                    {"tensor 'a' field 'shape'", "non-integer value 2.5"});
  expect_load_error(dir, "shape_string_dim", with_a(R"("a":{"dtype":"F32","shape":["2"],"data_offsets":[0,8]})"),
                    {"tensor 'a' field 'shape'", "non-numeric"});
  expect_load_error(dir, "shape_overflow",
                    with_a(R"("a":{"dtype":"F32","shape":[4294967296,4294967296,0],"data_offsets":[0,8]})"),
                    {"tensor 'a' field 'shape'", "int64"});
  expect_load_error(dir, "offsets_one", with_a(R"("a":{"dtype":"F32","shape":[2],"data_offsets":[0]})"),
                    {"tensor 'a' field 'data_offsets'", "[begin, end]"});
  expect_load_error(dir, "offsets_object", with_a(R"("a":{"dtype":"F32","shape":[2],"data_offsets":{"b":0}})"),
                    {"tensor 'a' field 'data_offsets'", "[begin, end]"});
  expect_load_error(dir, "offsets_negative", with_a(R"("a":{"dtype":"F32","shape":[2],"data_offsets":[-8,0]})"),
                    {"tensor 'a' field 'data_offsets'", "negative"});
  expect_load_error(dir, "offsets_reversed", with_a(R"("a":{"dtype":"F32","shape":[2],"data_offsets":[8,0]})"),
                    {"tensor 'a' field 'data_offsets' [8, 0]", "begin > end"});
  expect_load_error(dir, "size_mismatch", with_a(R"("a":{"dtype":"F32","shape":[3],"data_offsets":[0,8]})"),
                    {"tensor 'a' field 'data_offsets' [0, 8]", "spans 8 bytes", "'shape' [3]", "needs 12"});

  // Offsets against each other and against the data section.
  expect_load_error(dir, "out_of_range",
                    st_file("{" + a + R"(,"b":{"dtype":"F32","shape":[4],"data_offsets":[8,24]}})", data),
                    {"tensor 'b' field 'data_offsets' [8, 24]", "out of range", "16 bytes"});
  expect_load_error(dir, "past_truncated_data", valid.substr(0, valid.size() - 4),
                    {"tensor 'b' field 'data_offsets' [8, 16]", "out of range"});
  expect_load_error(dir, "overlap",
                    st_file("{" + a + R"(,"b":{"dtype":"F32","shape":[2],"data_offsets":[4,12]}})",
                            f32_bytes({1.f, 2.f, 3.f})),
                    {"tensor 'b' field 'data_offsets' [4, 12]", "overlaps tensor 'a' [0, 8]"});
  expect_load_error(dir, "gap",
                    st_file("{" + a + R"(,"b":{"dtype":"F32","shape":[2],"data_offsets":[12,20]}})",
                            f32_bytes({1.f, 2.f, 3.f, 4.f, 5.f})),
                    {"tensor 'b' field 'data_offsets' [12, 20]", "gap of 4 bytes"});
  expect_load_error(dir, "not_from_zero",
                    st_file(R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[4,12]}})", f32_bytes({1.f, 2.f, 3.f})),
                    {"tensor 'a' field 'data_offsets' [4, 12]", "gap of 4 bytes"});
  expect_load_error(dir, "trailing_bytes", valid + "junk", {"4 trailing bytes after the last tensor"});
  expect_load_error(dir, "data_but_no_tensors", st_file("{}", "xxxx"), {"4 trailing bytes"});

  // __metadata__.
  expect_load_error(dir, "metadata_number", st_file(R"({"__metadata__":{"epoch":3},)" + a + "," + b + "}", data),
                    {"field '__metadata__' key 'epoch'", "expected a string"});
  expect_load_error(dir, "metadata_not_object", st_file(R"({"__metadata__":"pt",)" + a + "," + b + "}", data),
                    {"field '__metadata__'", "expected an object"});
}

TEST(Safetensors, LoadsFromMemory) {
  ScratchDir dir;
  const std::string path = dir.file("m.safetensors");
  io::save_safetensors(path, {{"w", Tensor::from({{1.f, 2.f}, {3.f, 4.f}})}}, {{"k", "v"}});
  const io::SafetensorsFile file = io::load_safetensors_bytes(io::read_file(path), "m");
  ASSERT_EQ(file.tensors.size(), 1u);
  EXPECT_EQ(file.tensors[0].first, "w");
  EXPECT_EQ(file.tensors[0].second.to_vector(), (std::vector<float>{1.f, 2.f, 3.f, 4.f}));
  EXPECT_EQ(file.metadata.at("k"), "v");
}

TEST(Safetensors, MissingFileNamesPath) {
  ScratchDir dir;
  const std::string path = dir.file("nope.safetensors");
  try {
    io::load_safetensors(path);
    FAIL() << "no exception";
  } catch (const IoError& e) {
    EXPECT_NE(std::string(e.what()).find(path), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("No such file"), std::string::npos) << e.what();
  }
}

TEST(Safetensors, SaveRejectsBadNamesAndWritesNothing) {
  ScratchDir dir;
  const std::string path = dir.file("bad.safetensors");
  EXPECT_THROW(io::save_safetensors(path, {{"w", Tensor::ones({2})}, {"w", Tensor::ones({3})}}), ValueError);
  EXPECT_THROW(io::save_safetensors(path, {{"__metadata__", Tensor::ones({2})}}), ValueError);
  EXPECT_THROW(io::save_safetensors(path, {{"w", Tensor()}}), ValueError);
  EXPECT_THROW(io::save_safetensors(path, {{"bad\xff", Tensor::ones({1})}}), ValueError);
  try {
    io::save_safetensors(path, {{"w", Tensor::ones({2})}, {"w", Tensor::ones({3})}});
  } catch (const ValueError& e) {
    EXPECT_NE(std::string(e.what()).find("'w' appears twice"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find(path), std::string::npos) << e.what();
  }
  EXPECT_TRUE(dir.entries().empty());
}

TEST(Safetensors, SaveIntoMissingDirectoryThrowsIoError) {
  ScratchDir dir;
  const std::string path = dir.file("missing/model.safetensors");
  EXPECT_THROW(io::save_safetensors(path, {{"w", Tensor::ones({2})}}), IoError);
  EXPECT_TRUE(dir.entries().empty());
}

TEST(Safetensors, SaveReplacesAnExistingFile) {
  ScratchDir dir;
  const std::string path = dir.file("m.safetensors");
  io::save_safetensors(path, {{"w", Tensor::ones({100})}}, {{"v", "1"}});
  io::save_safetensors(path, {{"w", Tensor::full({2}, 3.f)}}, {{"v", "2"}});
  const auto file = io::load_safetensors(path);
  EXPECT_EQ(file.metadata.at("v"), "2");
  EXPECT_EQ(file.tensors.at(0).second.to_vector(), (std::vector<float>{3.f, 3.f}));
  EXPECT_EQ(dir.entries(), std::vector<std::string>{"m.safetensors"});
}

// --- atomic writes and read_file ---------------------------------------------------------------

TEST(AtomicWrite, ReplacesContentAndLeavesNoTempFile) {
  ScratchDir dir;
  const std::string path = dir.file("out.bin");
  io::write_file_atomic(path, "first version, rather long");
  EXPECT_EQ(io::read_file(path), "first version, rather long");
  const std::string binary("a\0b\xff\n", 5);
  io::write_file_atomic(path, binary);
  EXPECT_EQ(io::read_file(path), binary);
  io::write_file_atomic(path, "");
  EXPECT_EQ(io::read_file(path), "");
  EXPECT_EQ(dir.entries(), std::vector<std::string>{"out.bin"});
}

TEST(AtomicWrite, LargeContent) {
  ScratchDir dir;
  const std::string path = dir.file("big.bin");
  std::string big(5 << 20, '\0');
  for (size_t i = 0; i < big.size(); ++i) big[i] = static_cast<char>(i * 131 % 251);
  io::write_file_atomic(path, big);
  EXPECT_EQ(io::read_file(path), big);
}

TEST(AtomicWrite, MissingDirectoryThrowsAndLeavesNothing) {
  ScratchDir dir;
  const std::string path = dir.file("no/such/dir/out.bin");
  try {
    io::write_file_atomic(path, "data");
    FAIL() << "no exception";
  } catch (const IoError& e) {
    const std::string msg = e.what();
    EXPECT_NE(msg.find(path), std::string::npos) << msg;
    EXPECT_NE(msg.find(std::strerror(ENOENT)), std::string::npos) << msg;
  }
  EXPECT_TRUE(dir.entries().empty());
}

// The temporary file is written, but the rename cannot replace a non-empty directory: the error
// names the path and the temporary file is gone.
TEST(AtomicWrite, FailedRenameRemovesTempFile) {
  ScratchDir dir;
  const std::string path = dir.file("taken");
  fs::create_directories(path + "/inside");
  try {
    io::write_file_atomic(path, "data");
    FAIL() << "no exception";
  } catch (const IoError& e) {
    const std::string msg = e.what();
    EXPECT_NE(msg.find(path + ": rename"), std::string::npos) << msg;
  }
  EXPECT_EQ(dir.entries(), std::vector<std::string>{"taken"});
  EXPECT_TRUE(fs::is_directory(path + "/inside"));
}

TEST(AtomicWrite, RelativePathInCurrentDirectory) {
  ScratchDir dir;
  struct Chdir {  // restores the working directory even if the write throws
    fs::path before = fs::current_path();
    explicit Chdir(const fs::path& to) { fs::current_path(to); }
    ~Chdir() { fs::current_path(before); }
  };
  {
    Chdir in(dir.path());
    io::write_file_atomic("plain.txt", "hello");
  }
  EXPECT_EQ(io::read_file(dir.file("plain.txt")), "hello");
  EXPECT_EQ(dir.entries(), std::vector<std::string>{"plain.txt"});
}

TEST(AtomicWrite, ReadFileErrorsNamePath) {
  ScratchDir dir;
  const std::string missing = dir.file("missing.bin");
  try {
    io::read_file(missing);
    FAIL() << "no exception";
  } catch (const IoError& e) {
    EXPECT_NE(std::string(e.what()).find(missing), std::string::npos) << e.what();
  }
  // A directory opens but cannot be read.
  EXPECT_THROW(io::read_file(dir.path().string()), IoError);
}


// --- JSON nesting: every reader holds JSON to kMaxJsonDepth levels ---------------------------------

// nlohmann copies, compares and dumps recursively: 100,000 levels overflowed the stack (SIGSEGV).
TEST(Json, DeepTextIsRefusedWithPosition) {
  const int n = 100000;
  const std::string deep = "{\"model\": " + std::string(n, '[') + std::string(n, ']') + "}";
  const std::string message = error_of<Error>([&] { parse_json(deep, "spec.json: invalid JSON"); });
  EXPECT_CONTAINS(message, "spec.json: invalid JSON: nested deeper than 256 levels at line 1, column 266");
  // Brackets inside strings are text, not nesting; exactly the limit is fine.
  EXPECT_NO_THROW(parse_json("{\"a\": \"" + std::string(n, '[') + "\"}", "x"));
  const std::string at_limit = std::string(kMaxJsonDepth, '[') + std::string(kMaxJsonDepth, ']');
  EXPECT_NO_THROW(parse_json(at_limit, "x"));
  EXPECT_THROW(parse_json("[" + at_limit + "]", "x"), ValueError);
  EXPECT_THROW(parse_json<IoError>("[" + at_limit + "]", "x"), IoError);
  EXPECT_CONTAINS(error_of<Error>([] { parse_json("{\"a\": [1, 2}", "f.json"); }), "f.json: parse error at line 1, column 12");
}

TEST(Json, DeepSafetensorsHeaderIsRefused) {
  const std::string header = "{\"w\": " + std::string(50000, '[') + std::string(50000, ']') + "}";
  std::string bytes(8, '\0');
  for (int i = 0; i < 8; ++i) bytes[static_cast<size_t>(i)] = static_cast<char>((header.size() >> (8 * i)) & 0xFF);
  bytes += header;
  EXPECT_CONTAINS(error_of<Error>([&] { io::load_safetensors_bytes(bytes, "m.safetensors"); }),
                  "m.safetensors: header JSON is nested deeper than 256 levels at line 1, column 262");
}

// The C++ API: a config built in memory is walked without recursion before anything copies it.
TEST(Json, DeepConfigFromTheApiIsRefused) {
  Json deep = 1;
  for (int i = 0; i < 100000; ++i) {
    Json wrapper = Json::array();
    wrapper.push_back(std::move(deep));
    deep = std::move(wrapper);
  }
  Json model = {{"class_name", "Sequential"}, {"config", {{"layers", Json::array()}}}};
  model["config"]["layers"].push_back(std::move(deep));
  EXPECT_CONTAINS(error_of<Error>([&] { Sequential::from_json(model); }), "model JSON: nested deeper than 256 levels");
}

}  // namespace
}  // namespace lamina
