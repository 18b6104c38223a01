// read_idx: LeCun's IDX format (MNIST's), raw or gzip-compressed, plus the ByteReader both
// readers share. Layout: 2 zero bytes, a type byte, a rank byte, rank big-endian uint32
// dimensions, then the elements row-major. Only unsigned bytes (type 0x08) are accepted.
// See http://yann.lecun.com/exdb/mnist/ ("FILE FORMATS FOR THE MNIST DATABASE"). Errors name the
// byte offset of the problem (in the decompressed stream for gzip files).
#include <zlib.h>

#include <algorithm>
#include <cerrno>
#include <climits>
#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

#include "data/byte_reader.hpp"
#include "lamina/data.hpp"
#include "lamina/runtime.hpp"

namespace lamina::data {

namespace detail {

ByteReader::ByteReader(const std::string& path) : path_(path) {
  file_ = std::fopen(path.c_str(), "rb");
  if (file_ == nullptr) throw IoError(path + ": cannot open (" + std::strerror(errno) + ")");
  unsigned char magic[2] = {0, 0};
  const size_t got = std::fread(magic, 1, 2, file_);
  if (std::ferror(file_)) {
    const std::string why = std::strerror(errno);
    std::fclose(file_);
    throw IoError(path + ": cannot read (" + why + ")");
  }
  if (got == 2 && magic[0] == 0x1f && magic[1] == 0x8b) {
    std::fclose(file_);
    file_ = nullptr;
    gz_ = gzopen(path.c_str(), "rb");
    if (gz_ == nullptr) throw IoError(path + ": cannot open as gzip (" + std::strerror(errno) + ")");
    gzbuffer(gz_, 1 << 18);  // zlib's default 8 KiB input buffer is slow on MNIST's 26 MB
  } else if (std::fseek(file_, 0, SEEK_SET) != 0) {
    std::fclose(file_);
    throw IoError(path + ": cannot seek back to the start (expected a regular file)");
  }
}

ByteReader::~ByteReader() {
  if (gz_ != nullptr) gzclose(gz_);
  if (file_ != nullptr) std::fclose(file_);
}

size_t ByteReader::read(void* dst, size_t n) {
  auto* out = static_cast<unsigned char*>(dst);
  if (file_ != nullptr) {
    const size_t got = std::fread(out, 1, n, file_);
    if (got < n && std::ferror(file_)) throw IoError(path_ + ": read error (" + std::strerror(errno) + ")");
    return got;
  }
  size_t done = 0;
  while (done < n) {
    const auto want = static_cast<unsigned>(std::min<size_t>(n - done, INT_MAX));
    const int got = gzread(gz_, out + done, want);
    int code = Z_OK;
    const char* what = gzerror(gz_, &code);
    if (got < 0 || (code != Z_OK && code != Z_STREAM_END)) {
      std::string why = what ? what : "unknown error";
      if (why.rfind(path_ + ": ", 0) == 0) why.erase(0, path_.size() + 2);  // zlib prefixes the path
      throw IoError(path_ + ": corrupt or truncated gzip data after " + std::to_string(delivered_ + done) +
                    " decompressed bytes (zlib: " + why + ")");
    }
    done += static_cast<size_t>(got);
    if (static_cast<unsigned>(got) < want) break;  // end of data
  }
  delivered_ += done;
  return done;
}

std::string ByteReader::read_all() {
  std::string out;
  size_t step = 1 << 16;
  for (;;) {
    const size_t at = out.size();
    out.resize(at + step);
    const size_t got = read(out.data() + at, step);
    out.resize(at + got);
    if (got < step) return out;
    step = std::min<size_t>(step * 2, size_t{1} << 26);
  }
}

}  // namespace detail

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

}  // namespace

Idx read_idx(const std::string& path) {
  detail::ByteReader in(path);
  const std::string where = path + (in.gzipped() ? " (gzip)" : "");

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

  // Grow in doubling steps rather than trusting the header with one huge allocation: a corrupt
  // header then fails as "truncated", not as std::bad_alloc.
  const auto need = static_cast<size_t>(count);
  size_t have = 0;
  for (size_t step = size_t{1} << 20; have < need; step = std::min(step * 2, size_t{1} << 28)) {
    const size_t want = std::min(need - have, step);
    idx.bytes.resize(have + want);
    const size_t n = in.read(idx.bytes.data() + have, want);
    have += n;
    if (n < want) break;
  }
  const size_t data_offset = 4 + raw_dims.size();
  if (have < need)
    throw IoError(where + ": byte offset " + std::to_string(data_offset + have) + ": truncated IDX data (expected " +
                  std::to_string(need) + " bytes for " + dims_str(idx.dims) + ", got " + std::to_string(have) +
                  "; the data starts at byte offset " + std::to_string(data_offset) + ")");

  size_t extra = 0;
  unsigned char probe[4096];
  while (const size_t n = in.read(probe, sizeof probe)) extra += n;
  if (extra > 0)
    throw IoError(where + ": byte offset " + std::to_string(data_offset + need) +
                  ": trailing bytes after IDX data (expected " + std::to_string(need) + " bytes for " +
                  dims_str(idx.dims) + ", got " + std::to_string(extra) + " more)");
  return idx;
}

}  // namespace lamina::data
