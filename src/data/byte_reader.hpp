// Internal to src/data: reads a file as a stream of bytes, gunzipping it on the fly when it
// starts with gzip's magic bytes (0x1f 0x8b). Shared by the IDX and CSV readers; not public API.
#pragma once

#include <cstddef>
#include <cstdio>
#include <string>

struct gzFile_s;  // zlib's gzFile is a gzFile_s*

namespace lamina::data::detail {

class ByteReader {
 public:
  // Throws IoError naming the path when the file cannot be opened.
  explicit ByteReader(const std::string& path);
  ~ByteReader();
  ByteReader(const ByteReader&) = delete;
  ByteReader& operator=(const ByteReader&) = delete;

  // Reads up to n bytes into dst; returns fewer only at the end of the (decompressed) data.
  // Throws IoError on a read error or corrupt gzip data.
  size_t read(void* dst, size_t n);
  // Everything from here to the end.
  std::string read_all();
  bool gzipped() const { return gz_ != nullptr; }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
  gzFile_s* gz_ = nullptr;     // when gzipped
  size_t delivered_ = 0;       // bytes returned so far (decompressed), for error positions
  std::FILE* file_ = nullptr;  // otherwise
};

}  // namespace lamina::data::detail
