// Image files in and out, decoded as `scales-edge upscale` sees them (OpenCV's IMREAD_UNCHANGED:
// gray stays gray, colour is RGB, an alpha channel (or a tRNS chunk on a colour PNG) gives RGBA,
// 16-bit PNGs stay 16-bit) and PNGs written as OpenCV's encoder writes them (libpng, SUB filter,
// zlib level 1, Z_RLE), so the files are the same bytes when the zlib is the same.
// Codecs: libpng, libjpeg(-turbo) and zlib, linked statically (runner/CMakeLists.txt).
#pragma once

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

namespace runner {

enum class Layout { Gray, RGB, RGBA };

struct Image {
  int width = 0, height = 0;
  Layout layout = Layout::RGB;
  int depth = 8;       // bits per sample: 8 or 16
  int maxval = 255;    // the value meaning 1.0 (255 / 65535; a PNM's maxval)
  std::vector<uint8_t> data;  // interleaved samples, row-major; 16-bit ones native-endian uint16_t

  Image() = default;
  Image(int w, int h, Layout l, int d);
  int channels() const { return layout == Layout::Gray ? 1 : layout == Layout::RGB ? 3 : 4; }
  size_t samples() const { return static_cast<size_t>(width) * height * channels(); }
  uint32_t get(size_t i) const {  // sample i (interleaved index)
    return depth == 8 ? data[i] : reinterpret_cast<const uint16_t*>(data.data())[i];
  }
  void set(size_t i, uint32_t v) {
    if (depth == 8) data[i] = static_cast<uint8_t>(v);
    else reinterpret_cast<uint16_t*>(data.data())[i] = static_cast<uint16_t>(v);
  }
  const char* layout_name() const { return layout == Layout::Gray ? "gray" : layout == Layout::RGB ? "RGB" : "RGBA"; }
};

// PNG, JPEG or binary PNM (P5/P6), by content; Error for anything else or a corrupt file.
Image read_image(const std::string& path);
bool is_image_path(const std::string& path);  // .png .jpg .jpeg .ppm .pgm .pnm

// PNG (any layout, 8 or 16 bit) or PNM (gray -> .pgm, RGB -> .ppm), written atomically.
void write_image(const std::string& path, const Image& img);

// The codec libraries linked in: {"zlib", version}, {"libpng", ...}, {"libjpeg", ...}.
std::vector<std::pair<std::string, std::string>> codec_versions();

// float32 .npy tensors (format 1.0-3.0, little-endian, C order).
struct Tensor {
  std::vector<int64_t> shape;
  std::vector<float> data;
};
Tensor read_npy(const std::string& path);
void write_npy(const std::string& path, const Tensor& t);

}  // namespace runner
