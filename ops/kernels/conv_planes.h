// The input-row layout of the pixel-lane convolution kernels (conv_px8_avx512.cc,
// conv_px2_neon.cc): per output row, the input rows its valid row taps read are copied into
// "planes": plane (q, k, f) holds word k of the columns f, f + sW, f + 2*sW, ... of tap row q,
// with kSlack words of zeros on each side. Output pixel ow then reads, for column tap j, word
// ow + b_j of phase f_j (j*dW - pL = sW*b_j + f_j), so adjacent output pixels read adjacent words
// for any stride and dilation, and a vector of them is one unaligned load; a vector of up to
// kSlack pixels that holds at least one pixel with a valid tap stays inside the plane. Plain
// C++ (static: each kernel's translation unit compiles its own copy with its own flags).
#pragma once

#include <cstdint>

#include "kernels.h"
#include "taps.h"

namespace scales_edge {
namespace kernels {
namespace {

constexpr int64_t kSlack = 8;      // zero words on each side of a plane
constexpr int64_t kMaxStride = 4;  // wider column strides: the channels-in-lanes kernels
constexpr int64_t kMaxKw = 64;     // wider kernels: the channels-in-lanes kernels

// The geometries the planes take.
inline bool planes_apply(const ConvGeometry& g) { return g.sW <= kMaxStride && g.kW <= kMaxKw; }

// The plane layout of one geometry: plane (q, k, f) of an output row's planes starts at
// q*row_words + k*k_words + f*stride.
struct Taps {
  int64_t stride;     // words per plane: kSlack + ceil(W/sW) + kSlack
  int64_t row_words;  // words per tap row: CW*sW*stride
  int64_t k_words;    // words per input word k: sW*stride
  // tap_off[j]: offset of column tap j's first word for output pixel 0 within a row's word-0
  // planes: f_j*stride + kSlack + b_j.
  int64_t tap_off[kMaxKw];
};

inline int64_t plane_stride(const ConvGeometry& g) { return ceil_div(g.W, g.sW) + 2 * kSlack; }

// Scratch words of one output row's planes.
inline int64_t row_planes_words(const ConvGeometry& g) {
  return imin(g.kH, g.H) * g.CW * g.sW * plane_stride(g);
}

void make_taps(const ConvGeometry& g, Taps* t) {
  t->stride = plane_stride(g);
  t->k_words = g.sW * t->stride;
  t->row_words = g.CW * t->k_words;
  for (int64_t j = 0; j < g.kW; ++j) {
    const int64_t off = j * g.dW - g.pL;
    const int64_t b = floor_div(off, g.sW), f = off - b * g.sW;
    t->tap_off[j] = f * t->stride + kSlack + b;
  }
}

// Columns of phase f: f, f + sW, ... < W.
inline int64_t phase_cols(const ConvGeometry& g, int64_t f) {
  return f < g.W ? ceil_div(g.W - f, g.sW) : 0;
}

// One output row: its valid tap rows [i0, i1) (i0 == i1: none) and their planes at `planes`.
struct Row {
  const uint64_t* planes;
  int64_t i0, i1;
};

// Finds the valid tap rows of output row oh and copies them into planes at scratch.
Row build_row(const ConvGeometry& g, const Taps& t, const uint64_t* x_img, int64_t oh,
              uint64_t* scratch) {
  Row r;
  r.planes = scratch;
  const int64_t ih0 = oh * g.sH - g.pT;
  valid_taps(ih0, g.dH, g.kH, g.H, &r.i0, &r.i1);
  const int64_t CW = g.CW, sW = g.sW, W = g.W, stride = t.stride;
  for (int64_t i = r.i0; i < r.i1; ++i) {
    const uint64_t* src = x_img + (ih0 + i * g.dH) * W * CW;
    for (int64_t k = 0; k < CW; ++k)
      for (int64_t f = 0; f < sW; ++f) {
        uint64_t* dst = scratch + (i - r.i0) * t.row_words + k * t.k_words + f * stride;
        const int64_t n = phase_cols(g, f);
        for (int64_t c = 0; c < kSlack; ++c) dst[c] = 0;
        const uint64_t* s = src + f * CW + k;
        uint64_t* d = dst + kSlack;
        if (CW == 1 && sW == 1) {
          for (int64_t c = 0; c < n; ++c) d[c] = s[c];
        } else {
          for (int64_t c = 0; c < n; ++c) d[c] = s[c * sW * CW];
        }
        for (int64_t c = kSlack + n; c < stride; ++c) dst[c] = 0;
      }
  }
  return r;
}

}  // namespace
}  // namespace kernels
}  // namespace scales_edge
