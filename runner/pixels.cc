#include "pixels.h"

#include <algorithm>
#include <cmath>

#include "common.h"

namespace runner {

std::vector<float> model_input(const Image& img, int channels) {
  if (channels != 1 && channels != 3)
    throw Error("the model takes " + std::to_string(channels) + "-channel input; images give 1 (gray) or 3 (RGB)");
  if (channels == 1 && img.layout != Layout::Gray)
    throw Error("this model takes gray images (1 channel); convert the image to gray first");
  const size_t hw = static_cast<size_t>(img.width) * img.height;
  const int cn = img.channels();
  const float peak = static_cast<float>(img.maxval);
  std::vector<float> x(hw * channels);
  for (size_t i = 0; i < hw; ++i) {
    for (int c = 0; c < channels; ++c) {
      const int src = img.layout == Layout::Gray ? 0 : c;
      x[c * hw + i] = static_cast<float>(img.get(i * cn + src)) / peak;  // float32 divide, as numpy
    }
  }
  return x;
}

namespace {

inline uint32_t quantize(float v, float peak) {
  // np.round(np.clip(y, 0, 1) * peak): float32 multiply, round half to even (NaN: 0).
  v = v < 0.0f ? 0.0f : (v > 1.0f ? 1.0f : v);
  const float r = std::nearbyint(v * peak);
  return r >= 0.0f && r <= peak ? static_cast<uint32_t>(r) : 0u;
}

}  // namespace

void store_output(Image& out, int x0, int y0, const float* y, int channels, int h, int w, int64_t stride,
                  int64_t plane) {
  const float peak = out.depth == 8 ? 255.0f : 65535.0f;
  const int cn = out.channels();
  const bool luma = out.layout == Layout::Gray && channels == 3;
  if (!luma && std::min(cn, 3) != channels)
    throw Error("the model gives " + std::to_string(channels) + " channels for a " + out.layout_name() + " image");
  const float l0 = 0.299f, l1 = 0.587f, l2 = 0.114f;
  for (int r = 0; r < h; ++r) {
    const float* row = y + r * stride;
    const size_t base = (static_cast<size_t>(y0 + r) * out.width + x0) * cn;
    for (int c = 0; c < w; ++c) {
      if (luma) {
        const float v = (l0 * row[c] + l1 * row[plane + c]) + l2 * row[2 * plane + c];
        out.set(base + c, quantize(v, peak));
      } else {
        for (int k = 0; k < channels; ++k) out.set(base + static_cast<size_t>(c) * cn + k, quantize(row[k * plane + c], peak));
      }
    }
  }
}

namespace {

struct Taps {
  std::vector<int> index;     // 4 per output position, clamped to the source
  std::vector<double> weight;  // 4 per output position
};

// OpenCV's INTER_CUBIC sample positions and weights (float32 arithmetic), for an s-times upscale
// of n samples.
Taps cubic_taps(int n, int s) {
  Taps t;
  const int m = n * s;
  t.index.resize(static_cast<size_t>(m) * 4);
  t.weight.resize(static_cast<size_t>(m) * 4);
  const double scale = 1.0 / s;
  const float a = -0.75f, one = 1.0f;
  for (int d = 0; d < m; ++d) {
    const float f = static_cast<float>((d + 0.5) * scale - 0.5);
    const float i0 = std::floor(f);
    const float x = f - i0;
    const float x1 = x + one, x2 = one - x;
    const float c0 = ((a * x1 - 5.0f * a) * x1 + 8.0f * a) * x1 - 4.0f * a;
    const float c1 = ((a + 2.0f) * x - (a + 3.0f)) * x * x + one;
    const float c2 = ((a + 2.0f) * x2 - (a + 3.0f)) * x2 * x2 + one;
    const float c3 = one - c0 - c1 - c2;
    const float c[4] = {c0, c1, c2, c3};
    for (int k = 0; k < 4; ++k) {
      t.index[d * 4 + k] = std::clamp(static_cast<int>(i0) - 1 + k, 0, n - 1);
      t.weight[d * 4 + k] = static_cast<double>(c[k]);
    }
  }
  return t;
}

}  // namespace

void resize_alpha_cubic(const Image& src, Image& dst, int s) {
  const int h = src.height, w = src.width, W = w * s, H = h * s;
  const Taps xt = cubic_taps(w, s), yt = cubic_taps(h, s);
  // Horizontal pass over every source row, then the vertical pass per output row.
  std::vector<double> rows(static_cast<size_t>(h) * W);
  for (int r = 0; r < h; ++r) {
    const size_t sbase = static_cast<size_t>(r) * w * 4 + 3;
    for (int X = 0; X < W; ++X) {
      const int* i = &xt.index[X * 4];
      const double* k = &xt.weight[X * 4];
      double v = static_cast<double>(src.get(sbase + static_cast<size_t>(i[0]) * 4)) * k[0];
      for (int j = 1; j < 4; ++j) v = v + static_cast<double>(src.get(sbase + static_cast<size_t>(i[j]) * 4)) * k[j];
      rows[static_cast<size_t>(r) * W + X] = v;
    }
  }
  const double peak = src.depth == 8 ? 255.0 : 65535.0;
  for (int Y = 0; Y < H; ++Y) {
    const int* i = &yt.index[Y * 4];
    const double* k = &yt.weight[Y * 4];
    for (int X = 0; X < W; ++X) {
      double v = rows[static_cast<size_t>(i[0]) * W + X] * k[0];
      for (int j = 1; j < 4; ++j) v = v + rows[static_cast<size_t>(i[j]) * W + X] * k[j];
      v = v < 0.0 ? 0.0 : (v > peak ? peak : v);
      dst.set((static_cast<size_t>(Y) * W + X) * 4 + 3, static_cast<uint32_t>(std::nearbyint(v)));
    }
  }
}

}  // namespace runner
