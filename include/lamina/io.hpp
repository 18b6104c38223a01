// Files: the safetensors layout (8-byte little-endian header length, a JSON header with each
// tensor's dtype, shape and byte offsets, then raw data; https://huggingface.co/docs/safetensors)
// and atomic writes (temporary file, fsync, rename), so a crash never leaves half a file.
//
//   io::save_safetensors("m.safetensors", {{"dense/kernel", w}}, {{"config", json}});
//   auto file = io::load_safetensors("m.safetensors");
#pragma once

#include <map>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "lamina/tensor.hpp"

namespace lamina::io {

using NamedTensors = std::vector<std::pair<std::string, Tensor>>;

struct SafetensorsFile {
  NamedTensors tensors;                          // in file order
  std::map<std::string, std::string> metadata;   // the __metadata__ entry (strings only)
};

// Writes F32 tensors (names unique, in the given order) and string metadata, atomically.
void save_safetensors(const std::string& path, const NamedTensors& tensors,
                      const std::map<std::string, std::string>& metadata = {});

// Reads a safetensors file with F32 tensors. Throws IoError naming the path and the field for
// a truncated file, a bad header, an unsupported dtype, overlapping or out-of-range offsets.
SafetensorsFile load_safetensors(const std::string& path);
// The same from the file's bytes in memory; `name` stands for the path in errors.
SafetensorsFile load_safetensors_bytes(std::string_view bytes, const std::string& name = "<memory>");

// Writes `bytes` to `path` through a temporary file in the same directory, fsync and rename.
void write_file_atomic(const std::string& path, std::string_view bytes);

// Removes the temporary files write_file_atomic left beside `path` when a process died mid-write
// ("<path>.tmp.<pid>.<16 hex digits>" whose process no longer runs); others' live writes stay.
// Returns how many it removed.
int remove_stale_temp_files(const std::string& path);

// A tensor as a NumPy .npy file (format 1.0, little-endian float32 '<f4', C order, its shape),
// written atomically: numpy.load reads it as an array of the tensor's shape.
void save_npy(const std::string& path, const Tensor& tensor);
// The .npy header and data of save_npy, as bytes.
std::string encode_npy(const Tensor& tensor);

// The whole file; IoError naming the path if it cannot be read.
std::string read_file(const std::string& path);

}  // namespace lamina::io
