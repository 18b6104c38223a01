// Internal to src/data: reads a file, or bytes already in memory, as a stream of bytes,
// gunzipping them on the fly when they start with gzip's magic bytes (0x1f 0x8b). Shared by the
// IDX and CSV readers; not public API. Files and memory go through the same inflate loop, so
// the fuzz targets (which feed memory) exercise the decoder that reads files.
#pragma once

#include <cstddef>
#include <cstdio>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

namespace lamina::data::detail {

class ByteReader {
 public:
  // Throws IoError naming the path when the file cannot be opened.
  explicit ByteReader(const std::string& path);
  // `bytes` (not copied: they must outlive the reader); `name` stands for the path in errors.
  ByteReader(std::string_view bytes, std::string name);
  ~ByteReader();
  ByteReader(const ByteReader&) = delete;
  ByteReader& operator=(const ByteReader&) = delete;

  // Reads up to n bytes into dst; returns fewer only at the end of the (decompressed) data.
  // Throws IoError on a read error or corrupt or truncated gzip data.
  size_t read(void* dst, size_t n);
  // Everything from here to the end.
  std::string read_all();
  bool gzipped() const { return gz_ != nullptr; }
  // How many bytes are left when that is known without reading them: raw bytes in memory or
  // in a regular file; nullopt for gzip (its trailer's length is only modulo 2^32).
  std::optional<size_t> raw_remaining() const;
  const std::string& path() const { return path_; }

 private:
  struct Gz;  // zlib's inflate state and its input buffer
  size_t read_source(void* dst, size_t n);  // the bytes as stored (compressed or not)
  size_t inflate_into(unsigned char* dst, size_t n);

  std::string path_;
  std::FILE* file_ = nullptr;    // a file, or
  std::string_view memory_;      // bytes in memory
  size_t memory_pos_ = 0;
  std::unique_ptr<Gz> gz_;       // when gzipped
};

}  // namespace lamina::data::detail
