// The float output transform of ScalesConv2d / BinaryConv2d on one row of one channel, scalar,
// in the one order of docs/ops.md: ((float(acc) * sc + bi) * s_row[i]) * c + xs[i], each a
// float32 operation (no FMA: -ffp-contract=off). Static: each translation unit (the drivers, the
// vector variants' row tails) compiles its own copy.
#pragma once

#include <cstdint>

namespace scales_edge {
namespace kernels {

template <bool kSpatial, bool kSkip>
static inline void transform_row_scalar(const int32_t* src, int64_t n, float sc, float bi,
                                        const float* s_row, float c, const float* xs, float* dst) {
  for (int64_t i = 0; i < n; ++i) {
    const float prod = static_cast<float>(src[i]) * sc;
    float v = prod + bi;
    if (kSpatial) v = v * s_row[i];
    v = v * c;
    if (kSkip) v = v + xs[i];
    dst[i] = v;
  }
}

// IsaKernels::transform_row from a variant's Vec::template row<kSpatial, kSkip>(same arguments):
// the instance for the factors present (s_row, xs null: left out).
template <class Vec>
static void transform_row_for(const int32_t* src, int64_t n, float sc, float bi, const float* s_row,
                              float c, const float* xs, float* dst) {
  if (s_row) {
    if (xs) Vec::template row<true, true>(src, n, sc, bi, s_row, c, xs, dst);
    else Vec::template row<true, false>(src, n, sc, bi, s_row, c, xs, dst);
  } else {
    if (xs) Vec::template row<false, true>(src, n, sc, bi, s_row, c, xs, dst);
    else Vec::template row<false, false>(src, n, sc, bi, s_row, c, xs, dst);
  }
}

}  // namespace kernels
}  // namespace scales_edge
