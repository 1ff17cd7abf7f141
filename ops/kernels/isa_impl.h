// Row kernels shared by every ISA variant; included once by each of portable.cc, avx2.cc,
// avx512.cc, neon.cc, which are compiled with different instruction-set flags.
//
// Before including, a translation unit defines
//   SCALES_EDGE_ISA_NS  a namespace name unique to the variant (so nothing compiled here with one
//                       set of -m flags can be merged by the linker with a copy compiled with
//                       another: everything below lives in that namespace), and
//   struct Ops          in that namespace, the variant's popcount primitive:
//     static constexpr int kLanes;      output channels per vector (divides kChannelPad)
//     static constexpr int kBlock;      vectors per register block
//     static constexpr int kFlushEvery; words accumulated before flush() is required (0 = never)
//     using Vec; using Acc;
//     static Vec  broadcast(uint64_t);
//     static void zero(Acc&);
//     static void add(Acc&, Vec x, const uint64_t* w);   // acc[l] += popcount(x ^ w[l])
//     static void flush(Acc&);
//     static void finish(Acc&, int64_t valid_bits, int32_t* out, int64_t stride);
//                                                   // out[l*stride] = valid - 2*acc[l]
// and optionally
//   SCALES_EDGE_ISA_CUSTOM_PACK  when the variant defines its own pack_nchw_bits and
//                       pack_row_impl (in that namespace, before including; e.g. neon.cc), so
//                       the scalar ones below are left out;
//   SCALES_EDGE_ISA_FUSED_PACK   when it also defines pack_nchw_row_impl, the table's row function
//                       with the sums and spatial dot (e.g. pack_avx2.h); else the one below packs
//                       with pack_nchw_bits and computes them in separate sweeps;
//   SCALES_EDGE_ISA_CUSTOM_CONV  when the variant defines its own conv_row_impl, after including
//                       (so it can use valid_taps and conv_row_generic below; e.g. avx2.cc);
//   SCALES_EDGE_ISA_CUSTOM_GEMM  when it brings its own matmul row (e.g. avx512.cc), so
//                       gemm_row_impl below is left out.
//
// This file must not use standard-library templates or other inline functions with external
// linkage: a copy compiled with AVX-512 flags could be picked by the linker for every caller.
#ifndef SCALES_EDGE_ISA_NS
#error "define SCALES_EDGE_ISA_NS before including isa_impl.h"
#endif

#include "reductions.h"
#include "taps.h"

namespace scales_edge {
namespace kernels {
namespace SCALES_EDGE_ISA_NS {

#ifndef SCALES_EDGE_ISA_CUSTOM_PACK
// Binarize and pack one image row (IsaKernels::pack_nchw_row without the optional outputs).
static void pack_nchw_bits(const float* x, int64_t plane, const float* beta, int64_t C,
                           int64_t W, uint64_t* out, uint64_t* scratch) {
  const int64_t CW = (C + 63) / 64;
  for (int64_t cw = 0; cw < CW; ++cw) {
    for (int64_t w = 0; w < W; ++w) scratch[w] = 0;
    const int64_t nbits = imin(64, C - 64 * cw);
    for (int64_t j = 0; j < nbits; ++j) {
      const int64_t c = 64 * cw + j;
      const float b = beta[c];
      const float* xc = x + c * plane;
      for (int64_t w = 0; w < W; ++w) {
        // sign(x - beta) = -1 (bit 1) unless x - beta >= 0; NaN gives bit 1.
        const uint64_t bit = (xc[w] - b >= 0.0f) ? 0u : 1u;
        scratch[w] |= bit << j;
      }
    }
    for (int64_t w = 0; w < W; ++w) out[w * CW + cw] = scratch[w];
  }
}

static void pack_row_impl(const float* x, const float* beta, int64_t K, uint64_t* out) {
  const int64_t KW = (K + 63) / 64;
  for (int64_t kw = 0; kw < KW; ++kw) {
    const int64_t nbits = imin(64, K - 64 * kw);
    const float* xk = x + 64 * kw;
    const float* bk = beta + 64 * kw;
    uint64_t word = 0;
    for (int64_t j = 0; j < nbits; ++j) {
      const uint64_t bit = (xk[j] - bk[j] >= 0.0f) ? 0u : 1u;
      word |= bit << j;
    }
    out[kw] = word;
  }
}
#endif  // SCALES_EDGE_ISA_CUSTOM_PACK

#ifndef SCALES_EDGE_ISA_FUSED_PACK
// IsaKernels::pack_nchw_row: the packing, then one sweep per optional output.
static void pack_nchw_row_impl(const float* x, int64_t plane, const float* beta, int64_t C,
                               int64_t W, uint64_t* out, uint64_t* scratch, double* sums,
                               const float* spatial_w, int64_t sW, float* dot) {
  pack_nchw_bits(x, plane, beta, C, W, out, scratch);
  if (sums)
    for (int64_t c = 0; c < C; ++c) sums[c] = sum_floats(x + c * plane, W);
  if (dot) spatial_dot(x, plane, C, W, spatial_w, sW, dot);
}
#endif  // SCALES_EDGE_ISA_FUSED_PACK

// One output pixel, output channels [m0, m0 + R*kLanes): sum over the valid taps
// i in [i0, i1), j in [j0, j1) and the CW words of each tap.
template <int R>
static inline void conv_pixel_block(const ConvGeometry& g, const uint64_t* x_img,
                                    const uint64_t* w, int64_t m0, int64_t ih0, int64_t i0,
                                    int64_t i1, int64_t iw0, int64_t j0, int64_t j1,
                                    int32_t* out, int64_t ldm) {
  typename Ops::Acc acc[R];
  for (int r = 0; r < R; ++r) Ops::zero(acc[r]);
  const int64_t CW = g.CW, Mp = g.Mp;
  int pending = 0;
  for (int64_t i = i0; i < i1; ++i) {
    const uint64_t* xrow = x_img + (ih0 + i * g.dH) * g.W * CW;
    for (int64_t j = j0; j < j1; ++j) {
      const uint64_t* xp = xrow + (iw0 + j * g.dW) * CW;
      const uint64_t* wp = w + (i * g.kW + j) * CW * Mp + m0;
      for (int64_t k = 0; k < CW; ++k) {
        const typename Ops::Vec xb = Ops::broadcast(xp[k]);
        const uint64_t* wk = wp + k * Mp;
        for (int r = 0; r < R; ++r) Ops::add(acc[r], xb, wk + r * Ops::kLanes);
        if (Ops::kFlushEvery > 0 && ++pending == Ops::kFlushEvery) {
          for (int r = 0; r < R; ++r) Ops::flush(acc[r]);
          pending = 0;
        }
      }
    }
  }
  const int64_t valid_bits = (i1 - i0) * (j1 - j0) * g.C;
  for (int r = 0; r < R; ++r)
    Ops::finish(acc[r], valid_bits, out + (m0 + r * Ops::kLanes) * ldm, ldm);
}

// Output pixels [ow_begin, ow_end) of output row oh: any geometry, output channels in the
// vector lanes, weights from ConvWeights::data.
static void conv_pixels_generic(const ConvGeometry& g, const uint64_t* x_img, const ConvWeights& cw,
                                int64_t oh, int64_t ow_begin, int64_t ow_end, int32_t* acc,
                                int64_t ldm) {
  const uint64_t* w = cw.data.data();
  constexpr int64_t kBig = int64_t(Ops::kBlock) * Ops::kLanes;
  const int64_t Mp = g.Mp;
  const int64_t ih0 = oh * g.sH - g.pT;
  int64_t i0, i1;
  valid_taps(ih0, g.dH, g.kH, g.H, &i0, &i1);
  for (int64_t ow = ow_begin; ow < ow_end; ++ow) {
    int32_t* out = acc + ow;
    const int64_t iw0 = ow * g.sW - g.pL;
    int64_t j0, j1;
    valid_taps(iw0, g.dW, g.kW, g.W, &j0, &j1);
    if (i0 == i1 || j0 == j1) {  // every tap in the padding
      for (int64_t m = 0; m < Mp; ++m) out[m * ldm] = 0;
      continue;
    }
    int64_t m0 = 0;
    for (; m0 + kBig <= Mp; m0 += kBig)
      conv_pixel_block<Ops::kBlock>(g, x_img, w, m0, ih0, i0, i1, iw0, j0, j1, out, ldm);
    for (; m0 < Mp; m0 += Ops::kLanes)
      conv_pixel_block<1>(g, x_img, w, m0, ih0, i0, i1, iw0, j0, j1, out, ldm);
  }
}

// The whole output row (a variant with its own conv_row_impl may not use it).
[[maybe_unused]] static void conv_row_generic(const ConvGeometry& g, const uint64_t* x_img, const ConvWeights& cw,
                             int64_t oh, int32_t* acc, int64_t ldm, uint64_t* /*scratch*/) {
  conv_pixels_generic(g, x_img, cw, oh, 0, g.OW, acc, ldm);
}

#ifndef SCALES_EDGE_ISA_CUSTOM_CONV
static void conv_row_impl(const ConvGeometry& g, const uint64_t* x_img, const ConvWeights& cw,
                          int64_t oh, int32_t* acc, int64_t ldm, uint64_t* scratch) {
  conv_row_generic(g, x_img, cw, oh, acc, ldm, scratch);
}
#endif  // SCALES_EDGE_ISA_CUSTOM_CONV

#ifndef SCALES_EDGE_ISA_CUSTOM_GEMM
template <int R>
static inline void gemm_block(const uint64_t* x, int64_t K, int64_t KW, const uint64_t* w,
                              int64_t Mp, int64_t m0, int32_t* out) {
  typename Ops::Acc acc[R];
  for (int r = 0; r < R; ++r) Ops::zero(acc[r]);
  int pending = 0;
  for (int64_t k = 0; k < KW; ++k) {
    const typename Ops::Vec xb = Ops::broadcast(x[k]);
    const uint64_t* wk = w + k * Mp + m0;
    for (int r = 0; r < R; ++r) Ops::add(acc[r], xb, wk + r * Ops::kLanes);
    if (Ops::kFlushEvery > 0 && ++pending == Ops::kFlushEvery) {
      for (int r = 0; r < R; ++r) Ops::flush(acc[r]);
      pending = 0;
    }
  }
  for (int r = 0; r < R; ++r) Ops::finish(acc[r], K, out + m0 + r * Ops::kLanes, 1);
}

static void gemm_row_impl(const uint64_t* x, int64_t K, int64_t KW, const uint64_t* w, int64_t Mp,
                          int32_t* acc) {
  constexpr int64_t kBig = int64_t(Ops::kBlock) * Ops::kLanes;
  int64_t m0 = 0;
  for (; m0 + kBig <= Mp; m0 += kBig) gemm_block<Ops::kBlock>(x, K, KW, w, Mp, m0, acc);
  for (; m0 < Mp; m0 += Ops::kLanes) gemm_block<1>(x, K, KW, w, Mp, m0, acc);
}
#endif  // SCALES_EDGE_ISA_CUSTOM_GEMM

}  // namespace SCALES_EDGE_ISA_NS
}  // namespace kernels
}  // namespace scales_edge
