// The float reductions of ScalesConv2d (channel sums, spatial dot product) in the one order that
// the drivers and every path use, so their results are bit-identical. Every function is static:
// each translation unit compiles its own copy with its own flags (no FMA: -ffp-contract=off).
#pragma once

#include <cstdint>

namespace scales_edge {
namespace kernels {

// Sum of 8 float lanes in double, in lane order, then of n_tail more floats in double, in order.
static inline double finish_lane_sum(const float* lanes, const float* tail, int64_t n_tail) {
  double sum = 0.0;
  for (int l = 0; l < 8; ++l) sum += lanes[l];
  for (int64_t i = 0; i < n_tail; ++i) sum += tail[i];
  return sum;
}

// Sum of n floats: lane l accumulates v[i + l] in float for i = 0, 8, .. while i + 8 <= n, then
// finish_lane_sum adds the lanes and the last n % 8 elements.
static inline double sum_floats(const float* v, int64_t n) {
  float lanes[8] = {0, 0, 0, 0, 0, 0, 0, 0};
  int64_t i = 0;
  for (; i + 8 <= n; i += 8)
    for (int l = 0; l < 8; ++l) lanes[l] += v[i + l];
  return finish_lane_sum(lanes, v + i, n - i);
}

// dot[ow] = sum over c = 0..C-1, in that order, of w[c] * x[c*plane + ow*sW] (float multiply,
// then float add, from 0.0f), for ow < ceil(W / sW).
static inline void spatial_dot(const float* x, int64_t plane, int64_t C, int64_t W,
                               const float* w, int64_t sW, float* dot) {
  const int64_t OW = (W + sW - 1) / sW;
  for (int64_t ow = 0; ow < OW; ++ow) dot[ow] = 0.0f;
  for (int64_t c = 0; c < C; ++c) {
    const float wc = w[c];
    const float* xc = x + c * plane;
    if (sW == 1) {
      for (int64_t ow = 0; ow < OW; ++ow) dot[ow] += wc * xc[ow];
    } else {
      for (int64_t ow = 0; ow < OW; ++ow) dot[ow] += wc * xc[ow * sW];
    }
  }
}

}  // namespace kernels
}  // namespace scales_edge
