// Fuzz target: the CSV reader (data::read_csv_bytes), raw and gzipped, with the default options
// (label last, no header) and with a header and the label first. An accepted file must give
// rows x cols finite features and rows finite labels; its gzip must read the same.
#include <cmath>
#include <cstdint>
#include <optional>
#include <string>

#include "fuzz.hpp"
#include "lamina/data.hpp"

namespace {

using lamina::data::Csv;
using lamina::data::CsvOptions;

std::optional<Csv> read(std::string_view text, const CsvOptions& options, const char* name) {
  std::optional<Csv> csv;
  lamina::fuzz::accepts([&] { csv = lamina::data::read_csv_bytes(text, options, name); });
  if (csv) {
    if (csv->rows < 1 || csv->cols < 0 || csv->features.size() != static_cast<size_t>(csv->rows * csv->cols) ||
        csv->labels.size() != static_cast<size_t>(csv->rows))
      lamina::fuzz::fail("rows and cols do not match the values");
    for (float v : csv->features)
      if (!std::isfinite(v)) lamina::fuzz::fail("a feature is not finite");
    for (float v : csv->labels)
      if (!std::isfinite(v)) lamina::fuzz::fail("a label is not finite");
  }
  return csv;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  const std::optional<Csv> plain = read(text, {}, "fuzz.csv");
  read(text, {.header = true, .label_column = 0}, "fuzz.csv");
  if (size >= 2 && data[0] == 0x1f && data[1] == 0x8b) return 0;  // gzip already
  const std::optional<Csv> gz = read(lamina::fuzz::gzip(text), {}, "fuzz.csv.gz");
  if (plain.has_value() != gz.has_value() ||
      (plain && (plain->rows != gz->rows || plain->cols != gz->cols || plain->features != gz->features ||
                 plain->labels != gz->labels)))
    lamina::fuzz::fail("raw and gzip readings differ");
  return 0;
}
