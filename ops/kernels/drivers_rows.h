// The range drivers' row loops, shared by drivers.cc and shuffle_store.cc: the int32 row-buffer
// loop every path has, and the fused float loop of the paths that have conv_rows_float.
#pragma once

#include <algorithm>
#include <cstdint>
#include <vector>

#include "kernels.h"

namespace scales_edge {
namespace kernels {

// Accumulators of the output rows [begin, end), one row at a time, handed to emit(n, oh, row)
// with row[m * OW + ow].
template <typename Emit>
void for_each_acc_row(const IsaKernels& k, const ConvGeometry& g, const uint64_t* xp,
                      const ConvWeights& w, int64_t begin, int64_t end, Emit emit) {
  std::vector<int32_t> row(static_cast<size_t>(g.OW * g.Mp));
  std::vector<uint64_t> scratch(static_cast<size_t>(conv_row_scratch_words(k, g)));
  for (int64_t r = begin; r < end; ++r) {
    const int64_t n = r / g.OH, oh = r % g.OH;
    k.conv_row(g, xp + n * g.H * g.W * g.CW, w, oh, row.data(), g.OW, scratch.data());
    emit(n, oh, row.data());
  }
}

// True when k can convolve and transform rows of g in one pass (conv_rows_float).
inline bool fused_rows(const IsaKernels& k, const ConvGeometry& g) {
  return k.conv_rows_float && k.conv_rows_contiguous && k.conv_rows_contiguous(g);
}

// Runs k.conv_rows_float over the work items [begin, end) (r = n*OH + oh), one image at a time;
// t_at(n, oh) is the transform at row oh of image n.
template <class TransformAt>
void fused_rows_run(const IsaKernels& k, const ConvGeometry& g, const uint64_t* xp,
                    const ConvWeights& w, int64_t begin, int64_t end, TransformAt t_at) {
  std::vector<uint64_t> scratch(static_cast<size_t>(conv_row_scratch_words(k, g)));
  for (int64_t r = begin; r < end;) {
    const int64_t n = r / g.OH, oh0 = r % g.OH;
    const int64_t oh1 = std::min(g.OH, oh0 + (end - r));
    k.conv_rows_float(g, xp + n * g.H * g.W * g.CW, w, oh0, oh1, t_at(n, oh0), scratch.data());
    r += oh1 - oh0;
  }
}

}  // namespace kernels
}  // namespace scales_edge
