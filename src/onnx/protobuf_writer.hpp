// A minimal protocol-buffers wire-format writer, enough to emit ONNX files without linking
// libprotobuf: varints, 32-bit floats and length-delimited fields (strings, bytes, nested
// messages). https://protobuf.dev/programming-guides/encoding/ . Writing only; no schema.
//
//   detail::ProtoWriter tensor;
//   tensor.int64(1, 3).int64(2, 1).string(8, "dense/bias");  // dims, data_type, name
//   model.message(7, graph);                                  // a nested message, length-prefixed
#pragma once

#include <bit>
#include <cstdint>
#include <cstring>
#include <string>
#include <string_view>

namespace lamina::detail {

class ProtoWriter {
 public:
  enum WireType : uint32_t { kVarint = 0, kFixed64 = 1, kLengthDelimited = 2, kFixed32 = 5 };

  // An int32 / int64 / enum / bool field. Negative values take 10 bytes (two's complement), as
  // protobuf encodes int64.
  ProtoWriter& int64(uint32_t field, int64_t value) {
    tag(field, kVarint);
    varint(static_cast<uint64_t>(value));
    return *this;
  }
  ProtoWriter& float32(uint32_t field, float value) {
    tag(field, kFixed32);
    fixed32(std::bit_cast<uint32_t>(value));
    return *this;
  }
  // string and bytes fields share the encoding: length, then the bytes.
  ProtoWriter& bytes(uint32_t field, std::string_view value) {
    tag(field, kLengthDelimited);
    varint(value.size());
    buf_.append(value);
    return *this;
  }
  ProtoWriter& string(uint32_t field, std::string_view value) { return bytes(field, value); }
  ProtoWriter& message(uint32_t field, const ProtoWriter& m) { return bytes(field, m.buf_); }

  const std::string& str() const { return buf_; }
  size_t size() const { return buf_.size(); }

  // The raw encoders, public for tests.
  void varint(uint64_t v) {
    while (v >= 0x80) {
      buf_.push_back(static_cast<char>((v & 0x7f) | 0x80));
      v >>= 7;
    }
    buf_.push_back(static_cast<char>(v));
  }
  void tag(uint32_t field, WireType type) { varint((static_cast<uint64_t>(field) << 3) | type); }
  void fixed32(uint32_t v) {  // little-endian, whatever the host's byte order
    for (int i = 0; i < 4; ++i) buf_.push_back(static_cast<char>((v >> (8 * i)) & 0xff));
  }

 private:
  std::string buf_;
};

// float32 values as little-endian bytes (ONNX TensorProto.raw_data).
inline std::string little_endian_bytes(const float* data, size_t count) {
  std::string out(count * sizeof(float), '\0');
  if constexpr (std::endian::native == std::endian::little) {
    if (count) std::memcpy(out.data(), data, out.size());
  } else {
    for (size_t i = 0; i < count; ++i) {
      const uint32_t v = std::bit_cast<uint32_t>(data[i]);
      for (size_t b = 0; b < 4; ++b) out[4 * i + b] = static_cast<char>((v >> (8 * b)) & 0xff);
    }
  }
  return out;
}

}  // namespace lamina::detail
