// Reading and writing the Keras config fields the image layers share: sizes given as an int
// or a list (kernel_size, strides, pool_size), padding names, data_format. Internal.
#pragma once

#include <charconv>
#include <cstdlib>
#include <string>

#include "lamina/error.hpp"
#include "lamina/json.hpp"
#include "lamina/ops.hpp"

namespace lamina::detail {

// A float option as the decimal a user wrote (0.99, not 0.9900000095367432): the shortest
// text that reads back as the same float, read as a double.
inline Json float_json(float v) {
  char buf[32];
  const auto r = std::to_chars(buf, buf + sizeof buf - 1, v);
  *r.ptr = '\0';
  return std::strtod(buf, nullptr);
}

inline Json size2_json(Size2 s) { return Json::array({s.h, s.w}); }
inline const char* padding_name(Padding p) { return p == Padding::same ? "same" : "valid"; }

// c[key] as Keras writes it: 3 or [3, 3] (or [3]); `fallback` when absent or null.
inline Size2 size2_from(const Json& c, const char* key, const std::string& where, Size2 fallback) {
  if (!c.contains(key) || c[key].is_null()) return fallback;
  const Json& v = c[key];
  auto positive = [&](const Json& e) {
    if (!e.is_number_integer() || e.get<int64_t>() < 1)
      throw ValueError(where + ": '" + key + "' must be a positive integer or a list of two, got " + v.dump());
    return e.get<int64_t>();
  };
  if (v.is_number()) return Size2(positive(v));
  if (v.is_array() && v.size() == 1) return Size2(positive(v[0]));
  if (v.is_array() && v.size() == 2) return Size2(positive(v[0]), positive(v[1]));
  throw ValueError(where + ": '" + key + "' must be a positive integer or a list of two, got " + v.dump());
}

inline Padding padding_from(const Json& c, const std::string& where) {
  const std::string p = c.contains("padding") && c["padding"].is_string() ? c["padding"].get<std::string>() : "valid";
  if (p == "valid") return Padding::valid;
  if (p == "same") return Padding::same;
  throw ValueError(where + ": padding '" + p + "' is not supported (valid or same)");
}

// Lamina's images are channels last; a channels_first model would silently mean other shapes.
inline void require_channels_last(const Json& c, const std::string& where) {
  if (!c.contains("data_format") || c["data_format"].is_null()) return;  // Keras' default: channels_last
  const std::string f = c["data_format"].is_string() ? c["data_format"].get<std::string>() : c["data_format"].dump();
  if (f != "channels_last")
    throw ValueError(where + ": data_format '" + f +
                     "' is not supported; Lamina's images are channels_last (batch, H, W, C). Transpose the "
                     "data and use data_format='channels_last'");
}

}  // namespace lamina::detail
