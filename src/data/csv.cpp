// read_csv: a strictly numeric CSV file (raw or gzip-compressed) into features and labels.
// Not a general CSV parser: no quoting, comma-separated only. Fields are trimmed of blanks and
// parsed with std::from_chars; NaN, infinities, empty fields and ragged rows are errors that
// name the path, the line (1-based, counting the header) and the column (1-based).
#include <algorithm>
#include <charconv>
#include <cstdint>
#include <cmath>
#include <string>
#include <string_view>
#include <vector>

#include "data/byte_reader.hpp"
#include "lamina/data.hpp"

namespace lamina::data {

namespace {

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

// A field for an error message: quoted, control and non-ASCII bytes as \xNN, long ones cut.
std::string quoted(std::string_view field) {
  std::string out = "'";
  for (size_t i = 0; i < field.size() && i < 32; ++i) {
    const auto c = static_cast<unsigned char>(field[i]);
    if (c >= 0x20 && c < 0x7f) {
      out += static_cast<char>(c);
    } else {
      const char* digits = "0123456789abcdef";
      out += {'\\', 'x', digits[c >> 4], digits[c & 15]};
    }
  }
  return out + (field.size() > 32 ? "'..." : "'");
}

// Calls f(index, field) for each comma-separated field of line; returns the number of fields.
template <typename F>
int64_t for_each_field(std::string_view line, F&& f) {
  int64_t n = 0;
  for (;;) {
    const size_t comma = line.find(',');
    f(n++, trim(line.substr(0, comma)));
    if (comma == std::string_view::npos) return n;
    line.remove_prefix(comma + 1);
  }
}

// Lines without their '\n' or "\r\n"; a final newline does not start an empty line.
std::vector<std::string_view> split_lines(std::string_view text) {
  std::vector<std::string_view> lines;
  while (!text.empty()) {
    const size_t nl = text.find('\n');
    std::string_view line = text.substr(0, nl);
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    lines.push_back(line);
    if (nl == std::string_view::npos) break;
    text.remove_prefix(nl + 1);
  }
  // Blank lines at the very end are padding, not rows.
  while (!lines.empty() && trim(lines.back()).empty()) lines.pop_back();
  return lines;
}

Csv parse_csv(std::string_view body, const CsvOptions& options, const std::string& path) {
  if (body.starts_with("\xef\xbb\xbf")) body.remove_prefix(3);  // a UTF-8 BOM, as spreadsheets write
  const std::vector<std::string_view> lines = split_lines(body);
  const size_t first = options.header ? 1 : 0;
  if (lines.size() <= first)
    throw IoError(path + ": no data rows (expected at least one row" +
                  (options.header ? std::string(" after the header") : std::string()) + ", got " +
                  (lines.empty() ? "an empty file" : "only the header") + ")");

  // The first line (header or data) fixes the number of columns.
  const int64_t columns = for_each_field(lines[0], [](int64_t, std::string_view) {});
  const int64_t label = options.label_column < 0 ? columns + options.label_column : options.label_column;
  if (label < 0 || label >= columns)
    throw ValueError(path + ": label_column " + std::to_string(options.label_column) +
                     " is out of range (expected " + std::to_string(-columns) + " to " +
                     std::to_string(columns - 1) + " for " + std::to_string(columns) + " columns)");

  Csv csv;
  csv.cols = columns - 1;
  csv.rows = static_cast<int64_t>(lines.size() - first);
  // Every field takes at least two bytes (a digit and a comma or newline), so a valid file has at
  // most body.size() / 2 values: a short file with a wide first line reserves nothing absurd.
  const auto values = std::min(static_cast<uint64_t>(csv.rows) * static_cast<uint64_t>(columns), body.size() / 2 + 1);
  csv.features.reserve(static_cast<size_t>(values));
  csv.labels.reserve(static_cast<size_t>(std::min<int64_t>(csv.rows, static_cast<int64_t>(values))));
  for (size_t l = first; l < lines.size(); ++l) {
    if (trim(lines[l]).empty())
      throw IoError(path + ": line " + std::to_string(l + 1) + " is blank (expected " + std::to_string(columns) +
                    " fields; blank lines may only end the file)");
    const int64_t n = for_each_field(lines[l], [&](int64_t col, std::string_view field) {
      if (col >= columns) return;  // reported below as a ragged row
      float v = 0.f;
      // from_chars refuses a leading '+', which spreadsheets write; accept "+1" but not "+-1".
      const bool plus = field.size() > 1 && field[0] == '+' && field[1] != '-';
      const auto [end, ec] = std::from_chars(field.data() + plus, field.data() + field.size(), v);
      if (ec == std::errc() && end == field.data() + field.size() && std::isfinite(v)) {
        (col == label ? csv.labels : csv.features).push_back(v);
        return;
      }
      const std::string at = path + ": line " + std::to_string(l + 1) + ", column " + std::to_string(col + 1);
      const std::string got = "got " + quoted(field) + ")";
      if (field.empty()) throw IoError(at + ": empty field (expected a number)");
      if (ec == std::errc::result_out_of_range)
        throw IoError(at + ": number out of range (expected a finite float32, " + got);
      if (ec != std::errc() || end != field.data() + field.size())
        throw IoError(at + ": not a number (expected a number, " + got);
      throw IoError(at + ": not a finite number (expected a finite number, " + got);
    });
    if (n != columns)
      throw IoError(path + ": line " + std::to_string(l + 1) + " has " + std::to_string(n) +
                    " fields (expected " + std::to_string(columns) + ", as line 1 has)");
  }
  return csv;
}

}  // namespace

Csv read_csv(const std::string& path, const CsvOptions& options) {
  detail::ByteReader in(path);
  return parse_csv(in.read_all(), options, path);
}

Csv read_csv_bytes(std::string_view text, const CsvOptions& options, const std::string& name) {
  detail::ByteReader in(text, name);
  return in.gzipped() ? parse_csv(in.read_all(), options, name) : parse_csv(text, options, name);
}

}  // namespace lamina::data
