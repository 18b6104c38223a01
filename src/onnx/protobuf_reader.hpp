// A reader for the protobuf wire format (https://protobuf.dev/programming-guides/encoding/), just
// enough to walk ONNX messages field by field: no schema, no allocation, no library. Every length
// and offset is checked against the bytes it has. Not a writer; internal to src/onnx.
//
//   ProtoReader r(bytes);
//   for (ProtoField f; r.next(f);) if (f.number == 7) parse_graph(r.sub(f));
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "lamina/error.hpp"

namespace lamina::onnx::detail {

// Thrown for bytes that are not valid protobuf (or not the ONNX message expected there).
// offset: from the start of the file; context: the message path being read, filled in on the
// way out ("graph.node[3].attribute[0]"). The ONNX reader adds the file name.
class ProtoError : public IoError {
 public:
  ProtoError(size_t offset, std::string detail, std::string context = "")
      : IoError(text(offset, detail, context)), offset_(offset), detail_(std::move(detail)), context_(std::move(context)) {}
  size_t offset() const { return offset_; }
  const std::string& detail() const { return detail_; }
  const std::string& context() const { return context_; }
  // The same error one message further out: where + "." + context.
  ProtoError within(const std::string& where) const {
    return ProtoError(offset_, detail_, context_.empty() ? where : where + (context_[0] == '[' ? "" : ".") + context_);
  }

 private:
  static std::string text(size_t offset, const std::string& detail, const std::string& context) {
    return "byte " + std::to_string(offset) + (context.empty() ? "" : " (in " + context + ")") + ": " + detail;
  }
  size_t offset_;
  std::string detail_, context_;
};

enum class WireType : uint8_t { varint = 0, fixed64 = 1, len = 2, group_start = 3, group_end = 4, fixed32 = 5 };

inline const char* wire_type_name(WireType w) {
  switch (w) {
    case WireType::varint: return "varint";
    case WireType::fixed64: return "64-bit";
    case WireType::len: return "length-delimited";
    case WireType::fixed32: return "32-bit";
    default: return "group";
  }
}

struct ProtoField {
  uint32_t number = 0;
  WireType wire = WireType::varint;
  uint64_t value = 0;       // varint, fixed32 and fixed64 fields
  std::string_view bytes;   // length-delimited fields: the payload
  size_t offset = 0;        // the field's tag, from the start of the file
  size_t payload_offset = 0;
};

class ProtoReader {
 public:
  // base: the offset of bytes[0] in the file, for messages.
  explicit ProtoReader(std::string_view bytes, size_t base = 0) : data_(bytes), base_(base) {}

  // The next field, or false at the end of the message. Throws ProtoError on a truncated
  // field, a zero field number, an unknown or group wire type, or a length past the end.
  bool next(ProtoField& f) {
    if (pos_ >= data_.size()) return false;
    f = ProtoField{};
    f.offset = base_ + pos_;
    const uint64_t tag = varint("field tag");
    const uint64_t number = tag >> 3;
    const auto wire = static_cast<unsigned>(tag & 7);
    if (number == 0 || number > 0x1fffffff) throw ProtoError(f.offset, "invalid field number " + std::to_string(number));
    f.number = static_cast<uint32_t>(number);
    f.wire = static_cast<WireType>(wire);
    switch (f.wire) {
      case WireType::varint: f.value = varint("varint value"); break;
      case WireType::fixed64: f.value = fixed(8); break;
      case WireType::fixed32: f.value = fixed(4); break;
      case WireType::len: {
        const size_t at = base_ + pos_;
        const uint64_t n = varint("length");
        if (n > data_.size() - pos_)
          throw ProtoError(at, "field " + std::to_string(number) + " has length " + std::to_string(n) + " but only " +
                                   std::to_string(data_.size() - pos_) + " bytes remain");
        f.payload_offset = base_ + pos_;
        f.bytes = data_.substr(pos_, static_cast<size_t>(n));
        pos_ += static_cast<size_t>(n);
        break;
      }
      default:
        throw ProtoError(f.offset, "field " + std::to_string(number) + " has wire type " + std::to_string(wire) +
                                       (wire == 3 || wire == 4 ? " (deprecated groups, never used by ONNX)" : " (unknown)"));
    }
    return true;
  }

  // A reader over a length-delimited field's payload (an embedded message).
  static ProtoReader sub(const ProtoField& f) { return ProtoReader(f.bytes, f.payload_offset); }

  bool at_end() const { return pos_ >= data_.size(); }
  size_t offset() const { return base_ + pos_; }

  // Reads one base-128 varint from the current position (for packed fields).
  uint64_t varint(const char* what) {
    uint64_t v = 0;
    const size_t start = pos_;
    for (int shift = 0; shift < 64; shift += 7) {
      if (pos_ >= data_.size())
        throw ProtoError(base_ + start, std::string("truncated ") + what + " (the data ends inside a varint)");
      const auto b = static_cast<uint8_t>(data_[pos_++]);
      if (shift == 63 && b > 1) throw ProtoError(base_ + start, std::string(what) + ": varint longer than 64 bits");
      v |= static_cast<uint64_t>(b & 0x7f) << shift;
      if ((b & 0x80) == 0) return v;
    }
    throw ProtoError(base_ + start, std::string(what) + ": varint longer than 10 bytes");
  }

  // n little-endian bytes (4 or 8).
  uint64_t fixed(size_t n) {
    if (n > data_.size() - pos_)
      throw ProtoError(base_ + pos_, "truncated " + std::to_string(n * 8) + "-bit value (" +
                                         std::to_string(data_.size() - pos_) + " bytes remain)");
    uint64_t v = 0;
    for (size_t i = 0; i < n; ++i) v |= static_cast<uint64_t>(static_cast<uint8_t>(data_[pos_ + i])) << (8 * i);
    pos_ += n;
    return v;
  }

 private:
  std::string_view data_;
  size_t base_ = 0;
  size_t pos_ = 0;
};

// --- field values, with the wire type checked -------------------------------------------------------
// `what` names the field in messages ("NodeProto.op_type").

inline void expect_wire(const ProtoField& f, WireType w, const std::string& what) {
  if (f.wire != w)
    throw ProtoError(f.offset, what + " (field " + std::to_string(f.number) + ") has wire type " +
                                   wire_type_name(f.wire) + ", expected " + wire_type_name(w));
}

inline int64_t int_value(const ProtoField& f, const std::string& what) {
  expect_wire(f, WireType::varint, what);
  return static_cast<int64_t>(f.value);  // int64 and int32 fields: two's complement in 64 bits
}

inline std::string string_value(const ProtoField& f, const std::string& what) {
  expect_wire(f, WireType::len, what);
  return std::string(f.bytes);
}

inline float float_value(const ProtoField& f, const std::string& what) {
  expect_wire(f, WireType::fixed32, what);
  const auto bits = static_cast<uint32_t>(f.value);
  float v;
  std::memcpy(&v, &bits, sizeof v);
  return v;
}

// Repeated varints, packed (one length-delimited field) or not (one field per value).
inline void append_ints(const ProtoField& f, std::vector<int64_t>& out, const std::string& what) {
  if (f.wire == WireType::varint) {
    out.push_back(static_cast<int64_t>(f.value));
    return;
  }
  expect_wire(f, WireType::len, what);
  ProtoReader r = ProtoReader::sub(f);
  while (!r.at_end()) out.push_back(static_cast<int64_t>(r.varint(what.c_str())));
}

// Repeated fixed-width values (float: 4 bytes, double: 8), packed or not, as raw bits.
inline void append_fixed(const ProtoField& f, size_t width, std::vector<uint64_t>& out, const std::string& what) {
  const WireType single = width == 4 ? WireType::fixed32 : WireType::fixed64;
  if (f.wire == single) {
    out.push_back(f.value);
    return;
  }
  expect_wire(f, WireType::len, what);
  if (f.bytes.size() % width != 0)
    throw ProtoError(f.offset, what + ": packed length " + std::to_string(f.bytes.size()) + " is not a multiple of " +
                                   std::to_string(width));
  ProtoReader r = ProtoReader::sub(f);
  while (!r.at_end()) out.push_back(r.fixed(width));
}

}  // namespace lamina::onnx::detail
