// PNG encode / decode through libpng, and image_grid. Not a general image library: 8-bit
// output, float (H, W, C) tensors in and out, no colour management.
//
// libpng reports errors by longjmp to a setjmp the caller set. A longjmp must not cross a frame
// that owns C++ objects with destructors (their destructors would be skipped: undefined
// behaviour). So every libpng call that can fail runs inside one of the small *_c functions
// below, which hold only plain pointers and integers and return 1 after a libpng error; the
// C++ code around them owns the buffers and the png structs and turns the stored message into
// an IoError. Our callbacks (error, read, write) hold nothing that needs destroying either.
#include "lamina/image.hpp"

#include <png.h>

#include <algorithm>
#include <cmath>
#include <csetjmp>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <vector>

#include "lamina/error.hpp"
#include "lamina/io.hpp"

namespace lamina {

// H, W = image height and width, C = channels, N = images.

namespace {

// libpng's own default cap on width and height (PNG_USER_WIDTH_MAX); we write no larger.
constexpr int64_t kMaxSide = 1'000'000;
// Deflate cannot expand data by more than 1032:1, so a file of B bytes holds at most ~1032 B
// bytes of (filtered) rows; a header that claims more is corrupt or truncated, and is refused
// before we allocate for it. The margin covers the chunk framing and the smallest files.
constexpr double kMaxInflateRatio = 1100.0;
constexpr size_t kInflateSlack = 1 << 16;

// --- plain data shared with libpng's callbacks ------------------------------------------------

struct ErrorSlot {
  char message[256];
};

void on_error(png_structp png, png_const_charp msg) {
  auto* slot = static_cast<ErrorSlot*>(png_get_error_ptr(png));
  std::snprintf(slot->message, sizeof slot->message, "%s", msg ? msg : "unknown libpng error");
  png_longjmp(png, 1);
}

// Warnings (an sRGB profile libpng dislikes, a bad CRC in an ancillary chunk it skips) do not
// stop the read; libpng would print them to stderr, which a library should not.
void on_warning(png_structp, png_const_charp) {}

struct MemoryReader {
  const unsigned char* data;
  size_t size;
  size_t pos;
};

void read_bytes(png_structp png, png_bytep out, size_t n) {
  auto* r = static_cast<MemoryReader*>(png_get_io_ptr(png));
  if (n > r->size - r->pos) png_error(png, "unexpected end of file (the file is truncated)");
  std::memcpy(out, r->data + r->pos, n);
  r->pos += n;
}

struct MemoryWriter {
  unsigned char* data;  // malloc'd: the callback may not throw, so no std::string here
  size_t size;
  size_t capacity;
};

void write_bytes(png_structp png, png_bytep in, size_t n) {
  auto* w = static_cast<MemoryWriter*>(png_get_io_ptr(png));
  if (n > w->capacity - w->size) {
    const size_t capacity = std::max({w->capacity * 2, w->size + n, size_t{4096}});
    void* grown = std::realloc(w->data, capacity);
    if (grown == nullptr) png_error(png, "out of memory");
    w->data = static_cast<unsigned char*>(grown);
    w->capacity = capacity;
  }
  std::memcpy(w->data + w->size, in, n);
  w->size += n;
}

void flush_nothing(png_structp) {}

// --- the setjmp frames: plain data only --------------------------------------------------------

struct HeaderInfo {
  png_uint_32 width, height;
  size_t raw_rowbytes;  // before transforms: what the compressed stream must hold
  size_t rowbytes;      // after transforms: what we allocate
  int channels, bit_depth;
};

// Reads the header and sets the transforms that turn any PNG into 8- or 16-bit rows with the
// channels asked for (0: the file's own count after expansion).
int read_header_c(png_structp png, png_infop info, int want, HeaderInfo* out) {
  if (setjmp(png_jmpbuf(png))) return 1;
  png_read_info(png, info);
  const int color = png_get_color_type(png, info);
  const int depth = png_get_bit_depth(png, info);
  const bool trns = png_get_valid(png, info, PNG_INFO_tRNS) != 0;
  const bool color_in = (color & PNG_COLOR_MASK_COLOR) != 0;      // RGB, RGBA, palette
  const bool alpha_in = (color & PNG_COLOR_MASK_ALPHA) != 0;      // a real alpha channel
  const bool keep_alpha = want == 0 || want == 4;

  if (color == PNG_COLOR_TYPE_PALETTE) png_set_palette_to_rgb(png);  // expands a tRNS to alpha too
  if (color == PNG_COLOR_TYPE_GRAY && depth < 8) png_set_expand_gray_1_2_4_to_8(png);
  // A tRNS chunk becomes an alpha channel when alpha is kept; otherwise strip_alpha drops it.
  if (trns && keep_alpha) png_set_tRNS_to_alpha(png);
  if (depth == 16) png_set_swap(png);  // PNG is big-endian; we read the samples natively
  const bool has_alpha = alpha_in || trns;
  if (want == 1) {
    // ITU-R BT.601 weights (x 100000), as OpenCV's IMREAD_GRAYSCALE and PIL's convert('L').
    if (color_in) png_set_rgb_to_gray_fixed(png, PNG_ERROR_ACTION_NONE, 29900, 58700);
    if (has_alpha) png_set_strip_alpha(png);
  } else if (want == 3 || want == 4) {
    if (!color_in) png_set_gray_to_rgb(png);
    if (want == 3 && has_alpha) png_set_strip_alpha(png);
    if (want == 4 && !has_alpha) png_set_add_alpha(png, 0xffff, PNG_FILLER_AFTER);  // opaque
  }
  out->raw_rowbytes = png_get_rowbytes(png, info);
  png_set_interlace_handling(png);
  png_read_update_info(png, info);
  out->width = png_get_image_width(png, info);
  out->height = png_get_image_height(png, info);
  out->channels = png_get_channels(png, info);
  out->bit_depth = png_get_bit_depth(png, info);
  out->rowbytes = png_get_rowbytes(png, info);
  return 0;
}

int read_rows_c(png_structp png, png_bytepp rows) {
  if (setjmp(png_jmpbuf(png))) return 1;
  png_read_image(png, rows);
  png_read_end(png, nullptr);  // reads up to IEND, so a file cut after its pixels is caught too
  return 0;
}

int write_c(png_structp png, png_infop info, png_uint_32 width, png_uint_32 height, int color_type,
            png_bytepp rows) {
  if (setjmp(png_jmpbuf(png))) return 1;
  png_set_IHDR(png, info, width, height, 8, color_type, PNG_INTERLACE_NONE, PNG_COMPRESSION_TYPE_DEFAULT,
               PNG_FILTER_TYPE_DEFAULT);
  png_write_info(png, info);
  png_write_image(png, rows);
  png_write_end(png, nullptr);
  return 0;
}

// --- owners ------------------------------------------------------------------------------------

struct ReadStructs {
  png_structp png = nullptr;
  png_infop info = nullptr;
  ~ReadStructs() { png_destroy_read_struct(&png, info ? &info : nullptr, nullptr); }
};

struct WriteStructs {
  png_structp png = nullptr;
  png_infop info = nullptr;
  MemoryWriter out{nullptr, 0, 0};
  ~WriteStructs() {
    png_destroy_write_struct(&png, info ? &info : nullptr);
    std::free(out.data);
  }
};

std::string hex_prefix(std::string_view bytes) {
  std::string s;
  char buf[4];
  for (size_t i = 0; i < std::min<size_t>(bytes.size(), 8); ++i) {
    std::snprintf(buf, sizeof buf, "%02x", static_cast<unsigned char>(bytes[i]));
    s += (i ? " " : "") + std::string(buf);
  }
  return s.empty() ? "nothing" : s;
}

// The image's channel count, or a ShapeError naming `where`.
int64_t image_channels(const Tensor& image, const std::string& where) {
  const Shape& s = image.shape();
  const bool ok = (s.rank() == 2 || (s.rank() == 3 && s[2] >= 1 && s[2] <= 4)) && s[0] > 0 && s[1] > 0 &&
                  s[0] <= kMaxSide && s[1] <= kMaxSide;
  if (!ok)
    throw ShapeError(where + ": expects a non-empty image (H, W) or (H, W, C) with C = 1 (grey), 2 (grey + alpha), "
                     "3 (RGB) or 4 (RGBA) and sides up to " + std::to_string(kMaxSide) + ", got " + s.str() +
                     "\n  hint: write a batch as one picture with image_grid(images, rows, cols)");
  return s.rank() == 2 ? 1 : s[2];
}

std::string encode(const Tensor& image, PngWriteOptions options, const std::string& where) {
  if (!image.defined()) throw ValueError(where + ": the image tensor is undefined");
  const int64_t c = image_channels(image, where);
  if (!std::isfinite(options.low) || !std::isfinite(options.high) || !(options.high > options.low))
    throw ValueError(where + ": the value range [" + std::to_string(options.low) + ", " +
                     std::to_string(options.high) + "] must be finite with low < high");
  const int64_t h = image.dim(0), w = image.dim(1);
  const float* x = image.data();
  std::vector<unsigned char> pixels(static_cast<size_t>(image.numel()));
  const double low = options.low, scale = 255.0 / (static_cast<double>(options.high) - low);
  for (size_t i = 0; i < pixels.size(); ++i) {
    if (std::isnan(x[i])) {
      const int64_t p = static_cast<int64_t>(i) / c;
      throw ValueError(where + ": the image has NaN at (" + std::to_string(p / w) + ", " + std::to_string(p % w) +
                       ", " + std::to_string(static_cast<int64_t>(i) % c) + ")");
    }
    // torchvision's save_image: x * 255 + 0.5, clamped to [0, 255], truncated.
    const double v = std::clamp((x[i] - low) * scale + 0.5, 0.0, 255.0);
    pixels[i] = static_cast<unsigned char>(v);
  }
  std::vector<png_bytep> rows(static_cast<size_t>(h));
  for (int64_t r = 0; r < h; ++r) rows[r] = pixels.data() + r * w * c;
  static constexpr int kColorType[] = {PNG_COLOR_TYPE_GRAY, PNG_COLOR_TYPE_GRAY_ALPHA, PNG_COLOR_TYPE_RGB,
                                       PNG_COLOR_TYPE_RGB_ALPHA};

  ErrorSlot err{};
  WriteStructs s;
  s.png = png_create_write_struct(PNG_LIBPNG_VER_STRING, &err, on_error, on_warning);
  if (s.png == nullptr) throw IoError(where + ": libpng could not create a write struct");
  s.info = png_create_info_struct(s.png);
  if (s.info == nullptr) throw IoError(where + ": libpng could not create an info struct");
  png_set_write_fn(s.png, &s.out, write_bytes, flush_nothing);
  if (write_c(s.png, s.info, static_cast<png_uint_32>(w), static_cast<png_uint_32>(h), kColorType[c - 1],
              rows.data()) != 0)
    throw IoError(where + ": PNG encoding failed: " + err.message);
  return std::string(reinterpret_cast<const char*>(s.out.data), s.out.size);
}

}  // namespace

std::string encode_png(const Tensor& image, PngWriteOptions options) { return encode(image, options, "encode_png"); }

void write_png(const std::string& path, const Tensor& image, PngWriteOptions options) {
  io::write_file_atomic(path, encode(image, options, "write_png(" + path + ")"));
}

Tensor decode_png(std::string_view bytes, const std::string& name, int channels) {
  if (channels != 0 && channels != 1 && channels != 3 && channels != 4)
    throw ValueError(name + ": decode_png channels must be 0 (as in the file), 1, 3 or 4, got " +
                     std::to_string(channels));
  if (bytes.size() < 8 || png_sig_cmp(reinterpret_cast<png_const_bytep>(bytes.data()), 0, 8) != 0)
    throw IoError(name + ": not a PNG file (it starts with " + hex_prefix(bytes) +
                  "; a PNG starts with 89 50 4e 47 0d 0a 1a 0a)");

  ErrorSlot err{};
  ReadStructs s;
  s.png = png_create_read_struct(PNG_LIBPNG_VER_STRING, &err, on_error, on_warning);
  if (s.png == nullptr) throw IoError(name + ": libpng could not create a read struct");
  s.info = png_create_info_struct(s.png);
  if (s.info == nullptr) throw IoError(name + ": libpng could not create an info struct");
  MemoryReader reader{reinterpret_cast<const unsigned char*>(bytes.data()), bytes.size(), 0};
  png_set_read_fn(s.png, &reader, read_bytes);

  HeaderInfo hdr{};
  if (read_header_c(s.png, s.info, channels, &hdr) != 0) throw IoError(name + ": bad PNG: " + err.message);
  const double claimed = static_cast<double>(hdr.height) * static_cast<double>(hdr.raw_rowbytes + 1);
  if (claimed > kMaxInflateRatio * static_cast<double>(bytes.size()) + kInflateSlack)
    throw IoError(name + ": bad PNG: the header says " + std::to_string(hdr.width) + "x" +
                  std::to_string(hdr.height) + " pixels, more than its " + std::to_string(bytes.size()) +
                  " bytes can hold (the file is truncated or corrupt)");
  if ((hdr.bit_depth != 8 && hdr.bit_depth != 16) || hdr.channels < 1 || hdr.channels > 4 ||
      hdr.rowbytes != static_cast<size_t>(hdr.width) * hdr.channels * (hdr.bit_depth / 8))
    throw IoError(name + ": unexpected PNG layout after conversion (bit depth " + std::to_string(hdr.bit_depth) +
                  ", " + std::to_string(hdr.channels) + " channels)");  // a bug here, not in the file

  std::vector<unsigned char> pixels(hdr.rowbytes * hdr.height);
  std::vector<png_bytep> rows(hdr.height);
  for (size_t r = 0; r < hdr.height; ++r) rows[r] = pixels.data() + r * hdr.rowbytes;
  if (read_rows_c(s.png, rows.data()) != 0) throw IoError(name + ": bad PNG: " + err.message);

  Tensor out = Tensor::empty({static_cast<int64_t>(hdr.height), static_cast<int64_t>(hdr.width), hdr.channels});
  float* y = out.data();
  const size_t n = static_cast<size_t>(out.numel());
  if (hdr.bit_depth == 8) {
    for (size_t i = 0; i < n; ++i) y[i] = static_cast<float>(pixels[i]) / 255.f;
  } else {
    for (size_t i = 0; i < n; ++i) {
      uint16_t v;
      std::memcpy(&v, pixels.data() + 2 * i, 2);  // native order (png_set_swap above)
      y[i] = static_cast<float>(v) / 65535.f;
    }
  }
  return out;
}

Tensor read_png(const std::string& path, int channels) { return decode_png(io::read_file(path), path, channels); }

Tensor image_grid(const Tensor& images, int64_t rows, int64_t cols, int64_t pad, float pad_value) {
  if (!images.defined()) throw ValueError("image_grid: the images tensor is undefined");
  const Shape& s = images.shape();
  if (s.rank() != 3 && s.rank() != 4)
    throw ShapeError("image_grid: expects images (N, H, W) or (N, H, W, C), got " + s.str() +
                     "\n  hint: a single image is (1, H, W[, C]); flat rows of 784 reshape to (N, 28, 28)");
  if (rows < 1 || cols < 1 || pad < 0)
    throw ValueError("image_grid: rows and cols must be >= 1 and pad >= 0, got rows=" + std::to_string(rows) +
                     ", cols=" + std::to_string(cols) + ", pad=" + std::to_string(pad));
  const int64_t n = s[0], h = s[1], w = s[2], c = s.rank() == 4 ? s[3] : 1;
  if (n > rows * cols)
    throw ValueError("image_grid: " + std::to_string(n) + " images " + s.str() + " do not fit in " +
                     std::to_string(rows) + "x" + std::to_string(cols) + " cells");
  const int64_t out_h = rows * (h + pad) + pad, out_w = cols * (w + pad) + pad;
  Tensor out = s.rank() == 4 ? Tensor::full({out_h, out_w, c}, pad_value) : Tensor::full({out_h, out_w}, pad_value);
  const float* x = images.data();
  float* y = out.data();
  const int64_t row_len = w * c;
  for (int64_t i = 0; i < n; ++i) {
    const int64_t top = pad + (i / cols) * (h + pad), left = pad + (i % cols) * (w + pad);
    for (int64_t r = 0; r < h; ++r)
      std::copy_n(x + (i * h + r) * row_len, row_len, y + ((top + r) * out_w + left) * c);
  }
  return out;
}

}  // namespace lamina
