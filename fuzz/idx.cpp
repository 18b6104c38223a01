// Fuzz target: the IDX reader (data::read_idx_bytes), raw and gzipped. Each input is read as
// given (raw, or gzip when it starts with gzip's magic), then gzipped as one member and as two
// (split in the middle): all three must agree, and an accepted file's dims must account for
// exactly its bytes.
#include <cstdint>
#include <optional>
#include <string>

#include "fuzz.hpp"
#include "lamina/data.hpp"

namespace {

using lamina::data::Idx;

std::optional<Idx> read(std::string_view bytes, const char* name) {
  std::optional<Idx> idx;
  lamina::fuzz::accepts([&] { idx = lamina::data::read_idx_bytes(bytes, name); });
  return idx;
}

void check_same(const std::optional<Idx>& a, const std::optional<Idx>& b, const char* what) {
  if (a.has_value() != b.has_value() || (a && (a->dims != b->dims || a->bytes != b->bytes)))
    lamina::fuzz::fail(std::string("raw and ") + what + " readings differ");
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view bytes(reinterpret_cast<const char*>(data), size);
  const std::optional<Idx> raw = read(bytes, "fuzz.idx");
  if (raw) {
    int64_t n = 1;
    for (int64_t d : raw->dims) n *= d;
    if (raw->dims.empty() || static_cast<uint64_t>(n) != raw->bytes.size()) lamina::fuzz::fail("dims do not match the bytes");
  }
  if (size >= 2 && data[0] == 0x1f && data[1] == 0x8b) return 0;  // gzip already: its gzip would hold gzip
  check_same(raw, read(lamina::fuzz::gzip(bytes), "fuzz.idx.gz"), "gzip");
  const std::string two = lamina::fuzz::gzip(bytes.substr(0, size / 2)) + lamina::fuzz::gzip(bytes.substr(size / 2));
  check_same(raw, read(two, "fuzz2.idx.gz"), "two-member gzip");
  return 0;
}
