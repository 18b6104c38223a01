// Safetensors files (F32 only) and atomic writes. Layout, as in https://huggingface.co/docs/safetensors:
// u64 little-endian N, N bytes of JSON header padded with spaces so the data starts 8-byte aligned,
// then the tensors' bytes back to back. Loading validates everything before returning anything;
// this file does no memory mapping and no dtype conversion.
#include "lamina/io.hpp"

#include <dirent.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <bit>
#include <cerrno>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <limits>
#include <nlohmann/json.hpp>
#include <set>

#include "lamina/error.hpp"
#include "lamina/json.hpp"

namespace lamina::io {

// Tensor data is memcpy'd as is; safetensors is little-endian.
static_assert(std::endian::native == std::endian::little, "safetensors I/O assumes a little-endian host");

namespace {

using OrderedJson = nlohmann::ordered_json;

// The reference implementation refuses headers above 100 MB (MAX_HEADER_SIZE in safetensors/src/tensor.rs).
constexpr uint64_t kMaxHeaderBytes = 100'000'000;
constexpr uint64_t kF32Bytes = 4;

std::string errno_text(int err) { return std::strerror(err); }

std::string in_quotes(const std::string& name) { return "'" + name + "'"; }

std::string offsets_str(uint64_t begin, uint64_t end) {
  // Appended piece by piece: "[" + std::string&& trips GCC 12's -Wrestrict false positive.
  std::string s = "[";
  s += std::to_string(begin);
  s += ", ";
  s += std::to_string(end);
  s += "]";
  return s;
}

// "dir/file" -> "dir", "file" -> ".", "/file" -> "/".
std::string parent_dir(const std::string& path) {
  const size_t slash = path.find_last_of('/');
  if (slash == std::string::npos) return ".";
  if (slash == 0) return "/";
  return path.substr(0, slash);
}

// Writes all of `bytes` to fd, retrying short writes and EINTR. Returns 0 or an errno value.
int write_all(int fd, std::string_view bytes) {
  const char* p = bytes.data();
  size_t left = bytes.size();
  while (left > 0) {
    const ssize_t n = ::write(fd, p, left);
    if (n < 0) {
      if (errno == EINTR) continue;
      return errno;
    }
    p += n;
    left -= static_cast<size_t>(n);
  }
  return 0;
}

// A unique-enough name beside `path`; O_EXCL on open settles any collision.
std::string temp_name(const std::string& path) {
  static std::atomic<uint64_t> counter{0};
  const uint64_t ticks = static_cast<uint64_t>(std::chrono::steady_clock::now().time_since_epoch().count());
  uint64_t x = ticks ^ (counter.fetch_add(1) * 0x9E3779B97F4A7C15ull);
  x ^= x >> 33;
  x *= 0xFF51AFD7ED558CCDull;
  x ^= x >> 33;
  char suffix[17];
  std::snprintf(suffix, sizeof suffix, "%016llx", static_cast<unsigned long long>(x));
  return path + ".tmp." + std::to_string(::getpid()) + "." + suffix;
}

// --- header parsing helpers --------------------------------------------------------------------

// A JSON value that must be a non-negative integer (safetensors writes usize). `what` names the
// field in the error ("tensor 'w' field 'shape'").
uint64_t as_count(const std::string& path, const OrderedJson& v, const std::string& what) {
  if (v.is_number_unsigned()) return v.get<uint64_t>();
  if (v.is_number_integer()) {
    throw IoError(path + ": " + what + " has a negative value " + v.dump() +
                  "; expected non-negative integers");
  }
  throw IoError(path + ": " + what + " has " + (v.is_number_float() ? "a non-integer" : "a non-numeric") +
                " value " + v.dump() + "; expected non-negative integers");
}

struct Entry {
  std::string name;
  std::vector<int64_t> dims;
  uint64_t begin = 0, end = 0;
  size_t header_index = 0;  // tie-break for zero-size tensors sharing an offset
};

Entry parse_entry(const std::string& path, const std::string& name, const OrderedJson& info,
                  size_t header_index) {
  const std::string where = "tensor " + in_quotes(name);
  if (!info.is_object())
    throw IoError(path + ": " + where + " is " + info.type_name() +
                  "; expected an object with dtype, shape and data_offsets");
  for (const char* field : {"dtype", "shape", "data_offsets"})
    if (!info.contains(field))
      throw IoError(path + ": " + where + " has no field '" + field + "'");

  const OrderedJson& dtype = info["dtype"];
  if (!dtype.is_string())
    throw IoError(path + ": " + where + " field 'dtype' is " + dtype.dump() + "; expected a string like \"F32\"");
  if (dtype.get<std::string>() != "F32")
    throw IoError(path + ": " + where + " has dtype " + dtype.get<std::string>() +
                  "; only F32 is supported.\n  hint: convert it to float32 before saving "
                  "(in PyTorch: t.float())");

  Entry e;
  e.name = name;
  e.header_index = header_index;
  const std::string shape_field = where + " field 'shape'";
  const OrderedJson& shape = info["shape"];
  if (!shape.is_array())
    throw IoError(path + ": " + shape_field + " is " + shape.dump() + "; expected an array of dimensions");
  // Prefix products must fit int64 so Shape::numel cannot overflow, even with a 0 further on.
  uint64_t numel = 1;
  for (const OrderedJson& d : shape) {
    const uint64_t dim = as_count(path, d, shape_field);
    if (dim > static_cast<uint64_t>(std::numeric_limits<int64_t>::max()) ||
        (dim != 0 && numel > static_cast<uint64_t>(std::numeric_limits<int64_t>::max()) / dim))
      throw IoError(path + ": " + shape_field + " " + shape.dump() + " has more elements than fit in int64");
    numel *= dim;
    e.dims.push_back(static_cast<int64_t>(dim));
  }

  const std::string offsets_field = where + " field 'data_offsets'";
  const OrderedJson& offsets = info["data_offsets"];
  if (!offsets.is_array() || offsets.size() != 2)
    throw IoError(path + ": " + offsets_field + " is " + offsets.dump() + "; expected [begin, end]");
  e.begin = as_count(path, offsets[0], offsets_field);
  e.end = as_count(path, offsets[1], offsets_field);
  if (e.begin > e.end)
    throw IoError(path + ": " + offsets_field + " " + offsets_str(e.begin, e.end) + " has begin > end");
  const uint64_t span = e.end - e.begin;
  // numel <= INT64_MAX, so numel * 4 fits in uint64.
  if (span != numel * kF32Bytes)
    throw IoError(path + ": " + offsets_field + " " + offsets_str(e.begin, e.end) + " spans " +
                  std::to_string(span) + " bytes, but field 'shape' " + shape.dump() + " of F32 needs " +
                  std::to_string(numel * kF32Bytes));
  return e;
}

std::map<std::string, std::string> parse_metadata(const std::string& path, const OrderedJson& meta) {
  if (!meta.is_object())
    throw IoError(path + ": field '__metadata__' is " + meta.type_name() + "; expected an object of strings");
  std::map<std::string, std::string> out;
  for (const auto& [key, value] : meta.items()) {
    if (!value.is_string())
      throw IoError(path + ": field '__metadata__' key " + in_quotes(key) + " is " + value.dump() +
                    "; expected a string (safetensors metadata is string to string)");
    out[key] = value.get<std::string>();
  }
  return out;
}

}  // namespace

// --- files -----------------------------------------------------------------------------------

int remove_stale_temp_files(const std::string& path) {
  const std::string dir = parent_dir(path);
  const size_t slash = path.find_last_of('/');
  const std::string prefix = (slash == std::string::npos ? path : path.substr(slash + 1)) + ".tmp.";
  DIR* d = ::opendir(dir.c_str());
  if (d == nullptr) return 0;
  int removed = 0;
  while (const dirent* e = ::readdir(d)) {
    const std::string name = e->d_name;  // <prefix><pid>.<16 hex>, as temp_name writes them
    if (!name.starts_with(prefix)) continue;
    const size_t dot = name.find('.', prefix.size());
    const std::string pid = name.substr(prefix.size(), dot == std::string::npos ? 0 : dot - prefix.size());
    const std::string suffix = dot == std::string::npos ? "" : name.substr(dot + 1);
    if (pid.empty() || pid.size() > 9 || pid.find_first_not_of("0123456789") != std::string::npos ||
        suffix.size() != 16 || suffix.find_first_not_of("0123456789abcdef") != std::string::npos)
      continue;
    const auto id = static_cast<pid_t>(std::stol(pid));
    if (id == ::getpid() || ::kill(id, 0) == 0 || errno != ESRCH) continue;  // alive, or not ours to judge
    if (::unlink((dir + "/" + name).c_str()) == 0) ++removed;
  }
  ::closedir(d);
  return removed;
}

std::string read_file(const std::string& path) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) throw IoError(path + ": cannot open for reading: " + errno_text(errno));
  std::string out;
  struct stat st {};
  if (::fstat(fd, &st) == 0 && S_ISREG(st.st_mode) && st.st_size > 0)
    out.reserve(static_cast<size_t>(st.st_size));
  char buf[1 << 16];
  for (;;) {
    const ssize_t n = ::read(fd, buf, sizeof buf);
    if (n == 0) break;
    if (n < 0) {
      if (errno == EINTR) continue;
      const int err = errno;
      ::close(fd);
      throw IoError(path + ": cannot read: " + errno_text(err));
    }
    out.append(buf, static_cast<size_t>(n));
  }
  ::close(fd);
  return out;
}

void write_file_atomic(const std::string& path, std::string_view bytes) {
  std::string tmp;
  int fd = -1;
  for (int attempt = 0; attempt < 16 && fd < 0; ++attempt) {
    tmp = temp_name(path);
    fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0666);
    if (fd < 0 && errno != EEXIST)
      throw IoError(path + ": cannot create temporary file " + tmp + ": " + errno_text(errno));
  }
  if (fd < 0) throw IoError(path + ": cannot create a temporary file beside it: " + errno_text(EEXIST));

  // From here on, any failure removes the temporary file.
  auto fail = [&](const std::string& step, int err) {
    if (fd >= 0) ::close(fd);
    ::unlink(tmp.c_str());
    throw IoError(path + ": " + step + " failed: " + errno_text(err));
  };
  if (const int err = write_all(fd, bytes)) fail("write", err);
  if (::fsync(fd) != 0) fail("fsync", errno);
  const int closed = ::close(fd);
  fd = -1;
  if (closed != 0) fail("close", errno);
  if (::rename(tmp.c_str(), path.c_str()) != 0) fail("rename from " + tmp, errno);

  // Make the rename itself durable. Some filesystems cannot fsync a directory (EINVAL): the
  // file is in place either way, so only real I/O errors are reported.
  const std::string dir = parent_dir(path);
  const int dfd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dfd < 0) return;
  if (::fsync(dfd) != 0 && errno != EINVAL && errno != EROFS) {
    const int err = errno;
    ::close(dfd);
    throw IoError(path + ": written, but fsync of directory " + dir + " failed: " + errno_text(err));
  }
  ::close(dfd);
}

// --- safetensors -----------------------------------------------------------------------------

void save_safetensors(const std::string& path, const NamedTensors& tensors,
                      const std::map<std::string, std::string>& metadata) {
  OrderedJson header = OrderedJson::object();
  if (!metadata.empty()) {
    OrderedJson meta = OrderedJson::object();
    for (const auto& [key, value] : metadata) meta[key] = value;
    header["__metadata__"] = std::move(meta);
  }
  std::set<std::string> seen;
  uint64_t offset = 0;
  for (const auto& [name, t] : tensors) {
    if (name == "__metadata__")
      throw ValueError(path + ": tensor name '__metadata__' is reserved by the safetensors format");
    if (!seen.insert(name).second)
      throw ValueError(path + ": tensor name " + in_quotes(name) + " appears twice; names must be unique");
    if (!t.defined()) throw ValueError(path + ": tensor " + in_quotes(name) + " is undefined");
    const uint64_t nbytes = static_cast<uint64_t>(t.numel()) * kF32Bytes;
    header[name] = OrderedJson{{"dtype", "F32"},
                               {"shape", t.shape().dims()},
                               {"data_offsets", {offset, offset + nbytes}}};
    offset += nbytes;
  }

  std::string json;
  try {
    json = header.dump();  // compact, like serde_json::to_string in the reference implementation
  } catch (const nlohmann::json::exception& e) {
    throw ValueError(path + ": a tensor name or metadata string is not valid UTF-8 (" + e.what() + ")");
  }
  json.append((8 - json.size() % 8) % 8, ' ');  // data starts 8-byte aligned

  std::string bytes;
  bytes.reserve(8 + json.size() + offset);
  const uint64_t n = json.size();
  for (int i = 0; i < 8; ++i) bytes.push_back(static_cast<char>((n >> (8 * i)) & 0xFF));
  bytes += json;
  for (const auto& [name, t] : tensors)
    bytes.append(reinterpret_cast<const char*>(t.data()), static_cast<size_t>(t.numel()) * kF32Bytes);
  write_file_atomic(path, bytes);
}

SafetensorsFile load_safetensors(const std::string& path) { return load_safetensors_bytes(read_file(path), path); }

SafetensorsFile load_safetensors_bytes(std::string_view bytes, const std::string& path) {
  if (bytes.size() < 8)
    throw IoError(path + ": file is " + std::to_string(bytes.size()) +
                  " bytes, shorter than the 8-byte header length; not a safetensors file");
  uint64_t n = 0;
  for (int i = 7; i >= 0; --i) n = (n << 8) | static_cast<unsigned char>(bytes[static_cast<size_t>(i)]);
  if (n > kMaxHeaderBytes)
    throw IoError(path + ": byte offset 0: header length " + std::to_string(n) + " is larger than the 100 MB limit; "
                  "the file is corrupt or not safetensors");
  if (n > bytes.size() - 8)
    throw IoError(path + ": byte offset 0: header length " + std::to_string(n) + " runs past the end of the file (" +
                  std::to_string(bytes.size() - 8) + " bytes follow the length)");

  // Duplicate top-level keys would otherwise be merged silently by the JSON parser.
  std::string duplicate;
  std::set<std::string> keys;
  const OrderedJson::parser_callback_t on_key = [&](int depth, OrderedJson::parse_event_t event,
                                                    OrderedJson& parsed) {
    if (depth == 1 && event == OrderedJson::parse_event_t::key && parsed.is_string() &&
        !keys.insert(parsed.get<std::string>()).second && duplicate.empty())
      duplicate = parsed.get<std::string>();
    return true;
  };
  const std::string_view header_text = bytes.substr(8, n);
  if (const std::string at = json_too_deep_at(header_text); !at.empty())
    throw IoError(path + ": header JSON is " + json_depth_message(at));
  OrderedJson header;
  try {
    header = OrderedJson::parse(bytes.begin() + 8, bytes.begin() + 8 + static_cast<std::ptrdiff_t>(n), on_key);
  } catch (const nlohmann::json::parse_error& e) {
    // e.byte counts from 1 in the header, which starts after the 8-byte length.
    throw IoError(path + ": byte offset " + std::to_string(8 + (e.byte > 0 ? e.byte - 1 : 0)) +
                  ": header is not valid JSON: " + json_error_text(e));
  } catch (const nlohmann::json::exception& e) {
    throw IoError(path + ": header is not valid JSON: " + json_error_text(e));
  }
  if (!header.is_object())
    throw IoError(path + ": header is a JSON " + header.type_name() + "; expected an object");
  if (!duplicate.empty()) throw IoError(path + ": header names tensor " + in_quotes(duplicate) + " twice");

  SafetensorsFile file;
  std::vector<Entry> entries;
  for (const auto& [key, value] : header.items()) {
    if (key == "__metadata__")
      file.metadata = parse_metadata(path, value);
    else
      entries.push_back(parse_entry(path, key, value, entries.size()));
  }

  // Tensors must tile the data buffer exactly: sorted by offset, each begins where the last ended.
  std::sort(entries.begin(), entries.end(), [](const Entry& a, const Entry& b) {
    return a.begin != b.begin ? a.begin < b.begin : a.header_index < b.header_index;
  });
  const uint64_t data_size = bytes.size() - 8 - n;
  uint64_t cursor = 0;
  const Entry* previous = nullptr;
  for (const Entry& e : entries) {
    const std::string field = "tensor " + in_quotes(e.name) + " field 'data_offsets' " + offsets_str(e.begin, e.end);
    if (e.end > data_size)
      throw IoError(path + ": " + field + " is out of range: the data section holds " +
                    std::to_string(data_size) + " bytes");
    if (e.begin < cursor)
      throw IoError(path + ": " + field + " overlaps tensor " + in_quotes(previous->name) + " " +
                    offsets_str(previous->begin, previous->end));
    if (e.begin > cursor)
      throw IoError(path + ": " + field + " leaves a gap of " + std::to_string(e.begin - cursor) +
                    " bytes after offset " + std::to_string(cursor) +
                    "; the tensors must cover the data section without holes");
    cursor = e.end;
    previous = &e;
  }
  if (cursor != data_size)
    throw IoError(path + ": " + std::to_string(data_size - cursor) + " trailing bytes after the last tensor (" +
                  "data ends at offset " + std::to_string(cursor) + " of " + std::to_string(data_size) + ")");

  const char* data = bytes.data() + 8 + n;
  file.tensors.reserve(entries.size());
  for (const Entry& e : entries) {
    Tensor t = Tensor::empty(Shape(e.dims));
    std::memcpy(t.data(), data + e.begin, static_cast<size_t>(e.end - e.begin));
    file.tensors.emplace_back(e.name, std::move(t));
  }
  return file;
}

}  // namespace lamina::io
