// ByteReader: a file or bytes in memory, raw or gzip (RFC 1952), decoded with zlib's inflate.
// Several gzip members back to back (`cat a.gz b.gz`) read as one stream, as gzip -d reads them;
// anything else after the last member, a truncated stream or a bad checksum is an IoError.
#define ZLIB_CONST  // next_in is const: memory input is inflated in place, never copied
#include "data/byte_reader.hpp"

#include <sys/stat.h>
#include <zlib.h>

#include <algorithm>
#include <cerrno>
#include <climits>
#include <cstring>
#include <vector>

#include "lamina/error.hpp"

namespace lamina::data::detail {

namespace {

constexpr size_t kFileChunk = size_t{1} << 18;  // compressed bytes per fread (zlib's gzbuffer was 8 KiB: slow)

bool gzip_magic(const unsigned char* b, size_t n) { return n >= 2 && b[0] == 0x1f && b[1] == 0x8b; }

}  // namespace

struct ByteReader::Gz {
  z_stream z{};
  std::vector<unsigned char> chunk;  // compressed input read from a file (memory is inflated in place)
  bool source_done = false;          // the stored bytes are exhausted
  bool member_ended = false;         // a member ended: the rest must be another member or nothing
  bool finished = false;             // the last member ended at the end of the stored bytes
  size_t inflated = 0;               // bytes decompressed so far, for error positions
  Gz() {
    // 16 + MAX_WBITS: a gzip wrapper (header, CRC-32 and length checked), not zlib's or raw deflate.
    if (inflateInit2(&z, 16 + MAX_WBITS) != Z_OK) throw std::bad_alloc();
  }
  ~Gz() { inflateEnd(&z); }
  Gz(const Gz&) = delete;
  Gz& operator=(const Gz&) = delete;
};

ByteReader::ByteReader(const std::string& path) : path_(path) {
  std::FILE* f = std::fopen(path.c_str(), "rb");
  if (f == nullptr) throw IoError(path + ": cannot open (" + std::strerror(errno) + ")");
  file_ = f;
  try {
    unsigned char magic[2] = {0, 0};
    const size_t got = std::fread(magic, 1, 2, f);
    if (std::ferror(f)) throw IoError(path + ": cannot read (" + std::strerror(errno) + ")");
    if (std::fseek(f, 0, SEEK_SET) != 0)
      throw IoError(path + ": cannot seek back to the start (expected a regular file)");
    if (gzip_magic(magic, got)) gz_ = std::make_unique<Gz>();
  } catch (...) {
    std::fclose(f);
    throw;
  }
}

ByteReader::ByteReader(std::string_view bytes, std::string name) : path_(std::move(name)), memory_(bytes) {
  if (gzip_magic(reinterpret_cast<const unsigned char*>(bytes.data()), bytes.size())) gz_ = std::make_unique<Gz>();
}

ByteReader::~ByteReader() {
  if (file_ != nullptr) std::fclose(file_);
}

std::optional<size_t> ByteReader::raw_remaining() const {
  if (gz_ != nullptr) return std::nullopt;
  if (file_ == nullptr) return memory_.size() - memory_pos_;
  struct stat st {};
  const long at = std::ftell(file_);
  if (at < 0 || ::fstat(::fileno(file_), &st) != 0 || !S_ISREG(st.st_mode) || st.st_size < at) return std::nullopt;
  return static_cast<size_t>(st.st_size - at);
}

size_t ByteReader::read_source(void* dst, size_t n) {
  if (file_ != nullptr) {
    const size_t got = std::fread(dst, 1, n, file_);
    if (got < n && std::ferror(file_)) throw IoError(path_ + ": read error (" + std::strerror(errno) + ")");
    return got;
  }
  const size_t got = std::min(n, memory_.size() - memory_pos_);
  if (got > 0) std::memcpy(dst, memory_.data() + memory_pos_, got);
  memory_pos_ += got;
  return got;
}

size_t ByteReader::inflate_into(unsigned char* dst, size_t n) {
  Gz& g = *gz_;
  z_stream& z = g.z;
  size_t done = 0;
  const auto after = [&] { return " after " + std::to_string(g.inflated + done) + " decompressed bytes"; };
  while (done < n && !g.finished) {
    if (z.avail_in == 0 && !g.source_done) {
      size_t got = 0;
      if (file_ != nullptr) {
        g.chunk.resize(kFileChunk);
        got = read_source(g.chunk.data(), g.chunk.size());
        z.next_in = g.chunk.data();
      } else {
        got = std::min<size_t>(memory_.size() - memory_pos_, UINT_MAX);
        z.next_in = reinterpret_cast<const Bytef*>(memory_.data() + memory_pos_);
        memory_pos_ += got;
      }
      z.avail_in = static_cast<uInt>(got);
      g.source_done = got == 0;
    }
    if (g.member_ended) {
      if (z.avail_in == 0) {  // the end of the stored bytes, right after a member: done
        g.finished = true;
        break;
      }
      if (z.next_in[0] != 0x1f)
        throw IoError(path_ + ": unexpected bytes" + after() +
                      ", past the end of the gzip data (expected another gzip member or the end of the file)");
      inflateReset(&z);
      g.member_ended = false;
    }
    if (z.avail_in == 0)
      throw IoError(path_ + ": corrupt or truncated gzip data" + after() + " (the stream ends before its end marker)");
    const auto want = static_cast<uInt>(std::min<size_t>(n - done, UINT_MAX));
    z.next_out = dst + done;
    z.avail_out = want;
    const int rc = inflate(&z, Z_NO_FLUSH);
    done += want - z.avail_out;
    if (rc == Z_STREAM_END) {
      g.member_ended = true;
    } else if (rc == Z_BUF_ERROR && z.avail_in == 0) {
      continue;  // needs more input: the next turn reads it, or reports the truncation
    } else if (rc != Z_OK) {
      const std::string why = z.msg != nullptr ? z.msg : "error " + std::to_string(rc);
      throw IoError(path_ + ": corrupt or truncated gzip data" + after() + " (zlib: " + why + ")");
    }
  }
  g.inflated += done;
  return done;
}

size_t ByteReader::read(void* dst, size_t n) {
  if (gz_ == nullptr) return read_source(dst, n);
  return inflate_into(static_cast<unsigned char*>(dst), n);
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

}  // namespace lamina::data::detail
