// Tap arithmetic shared by the convolution kernels of every path. Every function is static: each
// translation unit (compiled with its own instruction-set flags) gets its own copy.
#pragma once

#include <cstdint>

#include "kernels.h"

namespace scales_edge {
namespace kernels {

static inline int64_t imin(int64_t a, int64_t b) { return a < b ? a : b; }
static inline int64_t imax(int64_t a, int64_t b) { return a > b ? a : b; }

// floor(a / b) and ceil(a / b) for b > 0, any sign of a.
static inline int64_t floor_div(int64_t a, int64_t b) { return a >= 0 ? a / b : -((-a + b - 1) / b); }
static inline int64_t ceil_div(int64_t a, int64_t b) { return -floor_div(-a, b); }

// First and one-past-last tap index t in [0, k) with 0 <= base + t*d < extent.
static inline void valid_taps(int64_t base, int64_t d, int64_t k, int64_t extent, int64_t* t0,
                              int64_t* t1) {
  int64_t lo = 0;
  if (base < 0) lo = (-base + d - 1) / d;
  int64_t hi = 0;  // one past the last valid
  if (base <= extent - 1) hi = imin(k, (extent - 1 - base) / d + 1);
  if (hi < lo) hi = lo;
  *t0 = lo;
  *t1 = hi;
}

// The valid row taps [*i0, *i1) of output row oh, whose first tap is input row *ih0. When no row
// tap is valid (every tap in the padding), zeroes the row's accumulators (channels < Mp) and
// returns false.
static inline bool row_taps(const ConvGeometry& g, int64_t oh, int32_t* acc, int64_t ldm,
                            int64_t* ih0, int64_t* i0, int64_t* i1) {
  *ih0 = oh * g.sH - g.pT;
  valid_taps(*ih0, g.dH, g.kH, g.H, i0, i1);
  if (*i0 < *i1) return true;
  for (int64_t m = 0; m < g.Mp; ++m)
    for (int64_t ow = 0; ow < g.OW; ++ow) acc[m * ldm + ow] = 0;
  return false;
}

}  // namespace kernels
}  // namespace scales_edge
