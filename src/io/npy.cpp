// NumPy's .npy format 1.0: the magic "\x93NUMPY", version 1.0, a little-endian u16 header length,
// a Python dict literal padded with spaces to a multiple of 64 bytes and ended by '\n', then
// the raw data (numpy/lib/format.py).
#include <bit>
#include <cstdint>
#include <cstring>
#include <string>

#include "lamina/io.hpp"

namespace lamina::io {

std::string encode_npy(const Tensor& tensor) {
  static_assert(std::endian::native == std::endian::little, "the data is written as '<f4'");
  std::string shape = "(";
  for (int64_t d : tensor.shape()) shape += std::to_string(d) + ", ";
  if (tensor.rank() >= 1) shape.pop_back();  // the last ", " becomes ")" but stays "," for a
  if (tensor.rank() > 1) shape.pop_back();   // 1-tuple, as Python writes (5,)
  shape += ")";
  std::string header = "{'descr': '<f4', 'fortran_order': False, 'shape': " + shape + ", }";
  const size_t preamble = 10;  // magic (6) + version (2) + header length (2)
  header.append((64 - (preamble + header.size() + 1) % 64) % 64, ' ');
  header += '\n';
  std::string out = std::string("\x93NUMPY\x01\x00", 8);
  const auto len = static_cast<uint16_t>(header.size());
  out += static_cast<char>(len & 0xff);
  out += static_cast<char>(len >> 8);
  out += header;
  const size_t bytes = static_cast<size_t>(tensor.numel()) * sizeof(float);
  const size_t at = out.size();
  out.resize(at + bytes);
  if (bytes > 0) std::memcpy(out.data() + at, tensor.data(), bytes);
  return out;
}

void save_npy(const std::string& path, const Tensor& tensor) { write_file_atomic(path, encode_npy(tensor)); }

}  // namespace lamina::io
