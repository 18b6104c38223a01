// read_idx: LeCun's IDX format (MNIST's), raw or gzip-compressed, from a file or from memory.
// Layout: 2 zero bytes, a type byte, a rank byte, rank big-endian uint32
// dimensions, then the elements row-major. Only unsigned bytes (type 0x08) are accepted.
// See http://yann.lecun.com/exdb/mnist/ ("FILE FORMATS FOR THE MNIST DATABASE"). Errors name the
// byte offset of the problem (in the decompressed stream for gzip files).
#include <algorithm>
#include <cstdio>
#include <optional>
#include <string>
#include <vector>

#include "data/byte_reader.hpp"
#include "lamina/data.hpp"
#include "lamina/runtime.hpp"

namespace lamina::data {

namespace {

std::string hex_byte(unsigned v) {
  char buf[8];
  std::snprintf(buf, sizeof buf, "0x%02x", v & 0xffu);
  return buf;
}

const char* idx_type_name(uint8_t type) {
  switch (type) {
    case 0x08: return "unsigned byte";
    case 0x09: return "signed byte";
    case 0x0b: return "int16";
    case 0x0c: return "int32";
    case 0x0d: return "float32";
    case 0x0e: return "float64";
    default: return "not an IDX type";
  }
}

std::string dims_str(const std::vector<int64_t>& dims) {
  std::string s = "(";
  for (size_t i = 0; i < dims.size(); ++i) s += (i ? ", " : "") + std::to_string(dims[i]);
  return s + ")";
}

Idx parse_idx(detail::ByteReader& in) {
  const std::string where = in.path() + (in.gzipped() ? " (gzip)" : "");

  unsigned char head[4];
  size_t got = in.read(head, 4);
  if (got < 4)
    throw IoError(where + ": byte offset 0: truncated IDX header (expected 4 magic bytes, got " + std::to_string(got) +
                  ")");
  if (head[0] != 0 || head[1] != 0)
    throw IoError(where + ": byte offset 0: not an IDX file (expected magic bytes 0x00 0x00, got " + hex_byte(head[0]) +
                  " " + hex_byte(head[1]) + ")");
  Idx idx;
  idx.type = head[2];
  if (idx.type != 0x08)
    throw IoError(where + ": byte offset 2: unsupported IDX element type (expected 0x08 unsigned byte, got " +
                  hex_byte(idx.type) + " " + idx_type_name(idx.type) + ")");
  const unsigned rank = head[3];
  if (rank == 0)
    throw IoError(where + ": byte offset 3: IDX file has no dimensions (expected a rank of at least 1, got 0)");

  std::vector<unsigned char> raw_dims(4 * rank);
  got = in.read(raw_dims.data(), raw_dims.size());
  if (got < raw_dims.size())
    throw IoError(where + ": byte offset " + std::to_string(4 + got) + ": truncated IDX header (expected " +
                  std::to_string(raw_dims.size()) + " bytes for " + std::to_string(rank) + " dimensions, got " +
                  std::to_string(got) + ")");
  int64_t count = 1;
  bool overflow = false;
  for (unsigned d = 0; d < rank; ++d) {
    const unsigned char* b = &raw_dims[4 * d];
    const auto dim = static_cast<int64_t>((uint32_t{b[0]} << 24) | (uint32_t{b[1]} << 16) | (uint32_t{b[2]} << 8) | b[3]);
    idx.dims.push_back(dim);
    overflow = overflow || __builtin_mul_overflow(count, dim, &count);
  }
  if (overflow || static_cast<uint64_t>(count) > SIZE_MAX / 2)
    throw IoError(where + ": byte offset 4: IDX dimensions " + dims_str(idx.dims) +
                  " overflow (expected a product of at most 2^62 elements)");

  // A header that promises more than the memory limit (set by lamina --max-memory) is refused
  // before reading: a real file that size would be OOM-killed half-way.
  if (const int64_t limit = memory_limit(); limit > 0 && count > limit)
    throw IoError(where + ": byte offset 4: IDX dimensions " + dims_str(idx.dims) + " hold " +
                  std::to_string(count) + " bytes (" + format_bytes(count) + "), more than " + format_bytes(limit) +
                  " (" + memory_limit_name() + ")");

  // The header is checked against the bytes there are before anything is allocated for it.
  // When that is unknown (gzip), the buffer grows in doubling steps rather than trusting the
  // header with one huge allocation: a corrupt header then fails as "truncated", not bad_alloc.
  const auto need = static_cast<size_t>(count);
  const size_t data_offset = 4 + raw_dims.size();
  const auto truncated = [&](size_t have) {
    return IoError(where + ": byte offset " + std::to_string(data_offset + have) + ": truncated IDX data (expected " +
                   std::to_string(need) + " bytes for " + dims_str(idx.dims) + ", got " + std::to_string(have) +
                   "; the data starts at byte offset " + std::to_string(data_offset) + ")");
  };
  const std::optional<size_t> stored = in.raw_remaining();
  if (stored && *stored < need) throw truncated(*stored);
  size_t have = 0;
  for (size_t step = stored ? need : size_t{1} << 20; have < need; step = std::min(step * 2, size_t{1} << 28)) {
    const size_t want = std::min(need - have, step);
    idx.bytes.resize(have + want);
    const size_t n = in.read(idx.bytes.data() + have, want);
    have += n;
    if (n < want) break;
  }
  if (have < need) throw truncated(have);

  size_t extra = 0;
  unsigned char probe[4096];
  while (const size_t n = in.read(probe, sizeof probe)) extra += n;
  if (extra > 0)
    throw IoError(where + ": byte offset " + std::to_string(data_offset + need) +
                  ": trailing bytes after IDX data (expected " + std::to_string(need) + " bytes for " +
                  dims_str(idx.dims) + ", got " + std::to_string(extra) + " more)");
  return idx;
}

}  // namespace

Idx read_idx(const std::string& path) {
  detail::ByteReader in(path);
  return parse_idx(in);
}

Idx read_idx_bytes(std::string_view bytes, const std::string& name) {
  detail::ByteReader in(bytes, name);
  return parse_idx(in);
}

}  // namespace lamina::data
