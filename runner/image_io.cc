#include "image_io.h"

#include <png.h>
#include <zlib.h>

#include <algorithm>
#include <cctype>
#include <csetjmp>
#include <cstdio>
#include <cstring>
#include <sstream>

// jpeglib.h needs size_t and FILE declared first.
#include <jpeglib.h>

#include "common.h"

namespace runner {

Image::Image(int w, int h, Layout l, int d) : width(w), height(h), layout(l), depth(d), maxval(d == 8 ? 255 : 65535) {
  data.resize(samples() * (d / 8));
}

namespace {

bool host_little_endian() {
  const uint16_t one = 1;
  return *reinterpret_cast<const uint8_t*>(&one) == 1;
}

// ------------------------------------------------------------------ PNG
struct PngIo {
  const std::vector<uint8_t>* in = nullptr;
  size_t pos = 0;
  std::vector<uint8_t>* out = nullptr;
  std::string error;
};

void png_fail(png_structp png, png_const_charp msg) {
  auto* io = static_cast<PngIo*>(png_get_error_ptr(png));
  io->error = msg ? msg : "libpng error";
  png_longjmp(png, 1);
}
void png_warn(png_structp, png_const_charp) {}

void png_read_mem(png_structp png, png_bytep dst, png_size_t n) {
  auto* io = static_cast<PngIo*>(png_get_io_ptr(png));
  if (io->in->size() - io->pos < n) png_error(png, "truncated file");
  std::memcpy(dst, io->in->data() + io->pos, n);
  io->pos += n;
}
void png_write_mem(png_structp png, png_bytep src, png_size_t n) {
  auto* io = static_cast<PngIo*>(png_get_io_ptr(png));
  io->out->insert(io->out->end(), src, src + n);
}
void png_flush_mem(png_structp) {}

// An APNG's acTL chunk comes before the first IDAT.
bool is_animated_png(const std::vector<uint8_t>& b) {
  size_t p = 8;
  while (p + 8 <= b.size()) {
    const uint32_t n = (uint32_t(b[p]) << 24) | (uint32_t(b[p + 1]) << 16) | (uint32_t(b[p + 2]) << 8) | b[p + 3];
    if (std::memcmp(&b[p + 4], "acTL", 4) == 0) return true;
    if (std::memcmp(&b[p + 4], "IDAT", 4) == 0) return false;
    if (n > b.size()) return false;
    p += 12 + static_cast<size_t>(n);
  }
  return false;
}

Image read_png(const std::string& path, const std::vector<uint8_t>& bytes) {
  if (is_animated_png(bytes)) throw Error(path + ": animated PNG (APNG) is not supported; save one frame as a PNG");
  PngIo io;
  io.in = &bytes;
  png_structp png = png_create_read_struct(PNG_LIBPNG_VER_STRING, &io, png_fail, png_warn);
  png_infop info = png ? png_create_info_struct(png) : nullptr;
  if (!info) {
    png_destroy_read_struct(&png, nullptr, nullptr);
    throw Error("out of memory reading " + path);
  }
  Image img;
  std::vector<png_bytep> rows;
  if (setjmp(png_jmpbuf(png))) {
    png_destroy_read_struct(&png, &info, nullptr);
    throw Error(path + ": corrupt PNG (" + io.error + ")");
  }
  png_set_read_fn(png, &io, png_read_mem);
  png_read_info(png, info);
  png_uint_32 w = 0, h = 0;
  int bit_depth = 0, color_type = 0;
  png_get_IHDR(png, info, &w, &h, &bit_depth, &color_type, nullptr, nullptr, nullptr);
  if (w > (1u << 20) || h > (1u << 20)) png_error(png, "image too large");
  // OpenCV's IMREAD_UNCHANGED: the layout from the colour type (a tRNS chunk gives a colour or
  // palette image an alpha channel, not a gray one); the bit depth kept (16) or expanded to 8.
  Layout layout = Layout::Gray;
  if (color_type == PNG_COLOR_TYPE_RGB || color_type == PNG_COLOR_TYPE_PALETTE)
    layout = png_get_valid(png, info, PNG_INFO_tRNS) ? Layout::RGBA : Layout::RGB;
  else if (color_type == PNG_COLOR_TYPE_GRAY_ALPHA || color_type == PNG_COLOR_TYPE_RGB_ALPHA)
    layout = Layout::RGBA;
  img = Image(static_cast<int>(w), static_cast<int>(h), layout, bit_depth == 16 ? 16 : 8);
  if (img.channels() < 4) png_set_strip_alpha(png);
  else png_set_tRNS_to_alpha(png);
  if (color_type == PNG_COLOR_TYPE_PALETTE) png_set_palette_to_rgb(png);
  if (!(color_type & PNG_COLOR_MASK_COLOR) && bit_depth < 8) png_set_expand_gray_1_2_4_to_8(png);
  if (!(color_type & PNG_COLOR_MASK_COLOR) && img.channels() > 1) png_set_gray_to_rgb(png);
  if (bit_depth == 16 && host_little_endian()) png_set_swap(png);
  png_set_interlace_handling(png);
  png_read_update_info(png, info);
  const size_t row_bytes = static_cast<size_t>(img.width) * img.channels() * (img.depth / 8);
  if (png_get_rowbytes(png, info) != row_bytes) png_error(png, "unexpected row layout");
  rows.resize(img.height);
  for (int y = 0; y < img.height; ++y) rows[y] = img.data.data() + static_cast<size_t>(y) * row_bytes;
  png_read_image(png, rows.data());
  png_read_end(png, nullptr);
  png_destroy_read_struct(&png, &info, nullptr);
  return img;
}

// OpenCV's PNG encoder (imgcodecs, default parameters): SUB filter, zlib level 1 (Z_BEST_SPEED),
// strategy Z_RLE, libpng's other defaults.
std::vector<uint8_t> encode_png(const Image& img) {
  std::vector<uint8_t> out;
  PngIo io;
  io.out = &out;
  png_structp png = png_create_write_struct(PNG_LIBPNG_VER_STRING, &io, png_fail, png_warn);
  png_infop info = png ? png_create_info_struct(png) : nullptr;
  if (!info) {
    png_destroy_write_struct(&png, nullptr);
    throw Error("out of memory writing a PNG");
  }
  if (setjmp(png_jmpbuf(png))) {
    png_destroy_write_struct(&png, &info);
    throw Error("PNG encoding failed (" + io.error + ")");
  }
  png_set_write_fn(png, &io, png_write_mem, png_flush_mem);
  png_set_filter(png, PNG_FILTER_TYPE_BASE, PNG_FILTER_SUB);
  png_set_compression_level(png, Z_BEST_SPEED);
  png_set_compression_strategy(png, Z_RLE);
  const int type = img.layout == Layout::Gray ? PNG_COLOR_TYPE_GRAY
                   : img.layout == Layout::RGB ? PNG_COLOR_TYPE_RGB
                                               : PNG_COLOR_TYPE_RGBA;
  png_set_IHDR(png, info, static_cast<png_uint_32>(img.width), static_cast<png_uint_32>(img.height), img.depth, type,
               PNG_INTERLACE_NONE, PNG_COMPRESSION_TYPE_DEFAULT, PNG_FILTER_TYPE_DEFAULT);
  png_write_info(png, info);
  if (img.depth == 16 && host_little_endian()) png_set_swap(png);
  const size_t row_bytes = static_cast<size_t>(img.width) * img.channels() * (img.depth / 8);
  for (int y = 0; y < img.height; ++y)
    png_write_row(png, const_cast<png_bytep>(img.data.data() + static_cast<size_t>(y) * row_bytes));
  png_write_end(png, info);
  png_destroy_write_struct(&png, &info);
  return out;
}

// ------------------------------------------------------------------ JPEG
struct JpegError {
  jpeg_error_mgr mgr;
  jmp_buf jump;
  char message[JMSG_LENGTH_MAX];
};

void jpeg_fail(j_common_ptr cinfo) {
  auto* err = reinterpret_cast<JpegError*>(cinfo->err);
  (*cinfo->err->format_message)(cinfo, err->message);
  longjmp(err->jump, 1);
}
void jpeg_quiet(j_common_ptr, int) {}

Image read_jpeg(const std::string& path, const std::vector<uint8_t>& bytes) {
  jpeg_decompress_struct cinfo{};
  JpegError err{};
  cinfo.err = jpeg_std_error(&err.mgr);
  err.mgr.error_exit = jpeg_fail;
  err.mgr.emit_message = jpeg_quiet;
  Image img;
  if (setjmp(err.jump)) {
    jpeg_destroy_decompress(&cinfo);
    throw Error(path + ": corrupt JPEG (" + err.message + ")");
  }
  jpeg_create_decompress(&cinfo);
  jpeg_mem_src(&cinfo, const_cast<unsigned char*>(bytes.data()), static_cast<unsigned long>(bytes.size()));
  jpeg_read_header(&cinfo, TRUE);
  // OpenCV's IMREAD_UNCHANGED: one component is gray, three are colour (converted to RGB by the
  // library, as OpenCV asks for BGR); four (CMYK / YCCK) OpenCV converts with its own formula.
  if (cinfo.num_components == 1) {
    cinfo.out_color_space = JCS_GRAYSCALE;
  } else if (cinfo.num_components == 3) {
    cinfo.out_color_space = JCS_RGB;
  } else {
    jpeg_destroy_decompress(&cinfo);
    throw Error(path + ": a " + std::to_string(cinfo.num_components) +
                "-component (CMYK) JPEG is not supported; convert it to RGB first");
  }
  jpeg_start_decompress(&cinfo);
  img = Image(static_cast<int>(cinfo.output_width), static_cast<int>(cinfo.output_height),
              cinfo.output_components == 1 ? Layout::Gray : Layout::RGB, 8);
  const size_t row_bytes = static_cast<size_t>(img.width) * img.channels();
  while (cinfo.output_scanline < cinfo.output_height) {
    JSAMPROW row = img.data.data() + static_cast<size_t>(cinfo.output_scanline) * row_bytes;
    jpeg_read_scanlines(&cinfo, &row, 1);
  }
  jpeg_finish_decompress(&cinfo);
  jpeg_destroy_decompress(&cinfo);
  return img;
}

// ------------------------------------------------------------------ PNM
Image read_pnm(const std::string& path, const std::vector<uint8_t>& b) {
  size_t p = 2;
  auto skip_space = [&] {
    while (p < b.size()) {
      if (b[p] == '#') {
        while (p < b.size() && b[p] != '\n') ++p;
      } else if (std::isspace(b[p])) {
        ++p;
      } else {
        break;
      }
    }
  };
  auto number = [&](const char* what) {
    skip_space();
    long long v = 0;
    size_t digits = 0;
    while (p < b.size() && b[p] >= '0' && b[p] <= '9' && digits < 10) {
      v = v * 10 + (b[p++] - '0');
      ++digits;
    }
    if (digits == 0) throw Error(path + ": bad PNM header (" + what + ")");
    return v;
  };
  const long long w = number("width"), h = number("height"), maxval = number("maxval");
  if (w < 1 || h < 1 || w > (1 << 20) || h > (1 << 20) || maxval < 1 || maxval > 65535)
    throw Error(path + ": bad PNM header values");
  if (p >= b.size() || !std::isspace(b[p])) throw Error(path + ": bad PNM header (no whitespace after maxval)");
  ++p;
  Image img(static_cast<int>(w), static_cast<int>(h), b[1] == '6' ? Layout::RGB : Layout::Gray, maxval > 255 ? 16 : 8);
  img.maxval = static_cast<int>(maxval);
  const size_t n = img.samples(), bps = img.depth / 8;
  if (b.size() - p < n * bps) throw Error(path + ": truncated PNM pixel data");
  for (size_t i = 0; i < n; ++i)
    img.set(i, bps == 1 ? b[p + i] : (static_cast<uint32_t>(b[p + 2 * i]) << 8) | b[p + 2 * i + 1]);
  return img;
}

std::vector<uint8_t> encode_pnm(const Image& img, const std::string& path, const std::string& ext) {
  if (img.layout == Layout::RGBA) throw Error(path + ": ." + ext + " cannot store an alpha channel; write .png");
  if ((ext == "ppm" && img.layout != Layout::RGB) || (ext == "pgm" && img.layout != Layout::Gray))
    throw Error(path + ": the output is " + img.layout_name() + ": write ." + (img.layout == Layout::RGB ? "ppm" : "pgm") +
                " or .png instead of ." + ext);
  const std::string head = std::string(img.layout == Layout::RGB ? "P6\n" : "P5\n") + std::to_string(img.width) + " " +
                           std::to_string(img.height) + "\n" + (img.depth == 8 ? "255" : "65535") + "\n";
  std::vector<uint8_t> out(head.begin(), head.end());
  const size_t n = img.samples();
  for (size_t i = 0; i < n; ++i) {
    const uint32_t v = img.get(i);
    if (img.depth == 16) out.push_back(static_cast<uint8_t>(v >> 8));
    out.push_back(static_cast<uint8_t>(v & 0xFF));
  }
  return out;
}

}  // namespace

#define SCALES_EDGE_STR2(x) #x
#define SCALES_EDGE_STR(x) SCALES_EDGE_STR2(x)

std::vector<std::pair<std::string, std::string>> codec_versions() {
#ifdef LIBJPEG_TURBO_VERSION
  const std::string jpeg = "libjpeg-turbo " SCALES_EDGE_STR(LIBJPEG_TURBO_VERSION);
#else
  const std::string jpeg = "libjpeg " + std::to_string(JPEG_LIB_VERSION);
#endif
  return {{"zlib", zlibVersion()}, {"libpng", png_get_libpng_ver(nullptr)}, {"libjpeg", jpeg}};
}

bool is_image_path(const std::string& path) {
  const std::string e = lower_ext(path);
  return e == "png" || e == "jpg" || e == "jpeg" || e == "ppm" || e == "pgm" || e == "pnm";
}

Image read_image(const std::string& path) {
  const std::vector<uint8_t> b = read_file(path);
  if (b.empty()) throw Error(path + ": file is empty");
  if (b.size() >= 8 && std::memcmp(b.data(), "\x89PNG\r\n\x1a\n", 8) == 0) return read_png(path, b);
  if (b.size() >= 3 && b[0] == 0xFF && b[1] == 0xD8 && b[2] == 0xFF) return read_jpeg(path, b);
  if (b.size() >= 2 && b[0] == 'P' && (b[1] == '5' || b[1] == '6')) return read_pnm(path, b);
  throw Error(path + ": not a PNG, JPEG or binary PPM/PGM image");
}

void write_image(const std::string& path, const Image& img) {
  const std::string ext = lower_ext(path);
  std::vector<uint8_t> bytes;
  if (ext == "png") bytes = encode_png(img);
  else if (ext == "ppm" || ext == "pgm" || ext == "pnm") bytes = encode_pnm(img, path, ext);
  else throw Error(path + ": unknown output format; write .png (or .ppm / .pgm, or .npy for the raw tensor)");
  write_file_atomic(path, bytes.data(), bytes.size());
}

// ------------------------------------------------------------------ .npy
Tensor read_npy(const std::string& path) {
  const std::vector<uint8_t> b = read_file(path);
  if (b.size() < 10 || std::memcmp(b.data(), "\x93NUMPY", 6) != 0) throw Error(path + ": not a .npy file");
  const int major = b[6];
  size_t hlen = 0, off = 0;
  if (major == 1) {
    hlen = b[8] | (static_cast<size_t>(b[9]) << 8);
    off = 10;
  } else if (major == 2 || major == 3) {
    if (b.size() < 12) throw Error(path + ": truncated .npy header");
    for (int i = 0; i < 4; ++i) hlen |= static_cast<size_t>(b[8 + i]) << (8 * i);
    off = 12;
  } else {
    throw Error(path + ": unsupported .npy version " + std::to_string(major));
  }
  if (off + hlen > b.size()) throw Error(path + ": truncated .npy header");
  const std::string h(reinterpret_cast<const char*>(b.data()) + off, hlen);
  auto field = [&](const std::string& key) {
    const size_t k = h.find("'" + key + "'");
    if (k == std::string::npos) throw Error(path + ": .npy header has no '" + key + "'");
    return h.substr(h.find(':', k) + 1);
  };
  std::string descr = field("descr");
  descr = descr.substr(descr.find('\'') + 1);
  descr = descr.substr(0, descr.find('\''));
  if (descr != "<f4") throw Error(path + ": dtype '" + descr + "' is not supported; save float32 (np.float32, '<f4')");
  const std::string fo = field("fortran_order");
  if (fo.find("True") < fo.find(',')) throw Error(path + ": Fortran-order arrays are not supported; save np.ascontiguousarray(x)");
  std::string sh = field("shape");
  sh = sh.substr(sh.find('(') + 1);
  sh = sh.substr(0, sh.find(')'));
  Tensor t;
  std::stringstream ss(sh);
  std::string item;
  size_t count = 1;
  while (std::getline(ss, item, ',')) {
    item.erase(std::remove_if(item.begin(), item.end(), [](unsigned char c) { return std::isspace(c); }), item.end());
    if (item.empty()) continue;
    char* end = nullptr;
    const long long d = std::strtoll(item.c_str(), &end, 10);
    if (*end != '\0' || d < 0 || d > (1LL << 31)) throw Error(path + ": bad .npy shape");
    t.shape.push_back(d);
    count *= static_cast<size_t>(d);
  }
  const size_t data_off = off + hlen;
  if (b.size() - data_off < count * sizeof(float))
    throw Error(path + ": holds fewer values than its shape " + shape_str(t.shape) + " needs");
  t.data.resize(count);
  if (count) std::memcpy(t.data.data(), b.data() + data_off, count * sizeof(float));
  return t;
}

void write_npy(const std::string& path, const Tensor& t) {
  std::string shape = "(";  // Python tuple syntax: (), (a,), (a, b, ...)
  for (size_t i = 0; i < t.shape.size(); ++i) shape += (i ? ", " : "") + std::to_string(t.shape[i]);
  shape += t.shape.size() == 1 ? ",)" : ")";
  std::string h = "{'descr': '<f4', 'fortran_order': False, 'shape': " + shape + ", }";
  const size_t total = 10 + h.size() + 1;
  h.append((64 - total % 64) % 64, ' ');
  h += '\n';
  std::string out("\x93NUMPY\x01\x00", 8);
  out += static_cast<char>(h.size() & 0xff);
  out += static_cast<char>((h.size() >> 8) & 0xff);
  out += h;
  out.append(reinterpret_cast<const char*>(t.data.data()), t.data.size() * sizeof(float));
  write_file_atomic(path, out.data(), out.size());
}

}  // namespace runner
