// AVX2 path: 4 output channels per 256-bit vector; popcount with the vpshufb nibble lookup
// (per-byte counts accumulated for up to 31 words, then summed per 64-bit lane with vpsadbw).
// Compiled with -mavx2 -mpopcnt on x86-64 only; selected at run time when the CPU has AVX2.
#include <immintrin.h>

#include <cstdint>

#include "kernels.h"

#define SCALES_EDGE_ISA_NS avx2_impl
#define SCALES_EDGE_ISA_CUSTOM_PACK 1
#define SCALES_EDGE_ISA_CUSTOM_CONV 1

namespace scales_edge {
namespace kernels {
namespace avx2_impl {

struct Ops {
  static constexpr int kLanes = 4;
  static constexpr int kBlock = 4;
  // Each word adds at most 8 to a byte counter: 31 words keep it <= 248.
  static constexpr int kFlushEvery = 31;
  using Vec = __m256i;
  struct Acc {
    __m256i bytes;  // per-byte popcounts since the last flush
    __m256i sums;   // per-64-bit-lane totals
  };
  static inline Vec broadcast(uint64_t x) { return _mm256_set1_epi64x(static_cast<long long>(x)); }
  static inline void zero(Acc& a) {
    a.bytes = _mm256_setzero_si256();
    a.sums = _mm256_setzero_si256();
  }
  static inline void add(Acc& a, Vec x, const uint64_t* w) {
    const __m256i lut = _mm256_setr_epi8(0, 1, 1, 2, 1, 2, 2, 3, 1, 2, 2, 3, 2, 3, 3, 4,  //
                                         0, 1, 1, 2, 1, 2, 2, 3, 1, 2, 2, 3, 2, 3, 3, 4);
    const __m256i low4 = _mm256_set1_epi8(0x0f);
    const __m256i v =
        _mm256_xor_si256(x, _mm256_loadu_si256(reinterpret_cast<const __m256i*>(w)));
    const __m256i lo = _mm256_and_si256(v, low4);
    const __m256i hi = _mm256_and_si256(_mm256_srli_epi16(v, 4), low4);
    const __m256i cnt = _mm256_add_epi8(_mm256_shuffle_epi8(lut, lo), _mm256_shuffle_epi8(lut, hi));
    a.bytes = _mm256_add_epi8(a.bytes, cnt);
  }
  static inline void flush(Acc& a) {
    a.sums = _mm256_add_epi64(a.sums, _mm256_sad_epu8(a.bytes, _mm256_setzero_si256()));
    a.bytes = _mm256_setzero_si256();
  }
  static inline void finish(Acc& a, int64_t valid_bits, int32_t* out, int64_t stride) {
    flush(a);
    alignas(32) int64_t pop[4];
    _mm256_store_si256(reinterpret_cast<__m256i*>(pop), a.sums);
    for (int l = 0; l < 4; ++l) out[l * stride] = static_cast<int32_t>(valid_bits - 2 * pop[l]);
  }
};

#include "pack_avx2.h"

}  // namespace avx2_impl
}  // namespace kernels
}  // namespace scales_edge

#include "isa_impl.h"

namespace scales_edge {
namespace kernels {
namespace avx2_impl {

// ---- convolution, stride 1: output pixels in the vector lanes ----
// popcount(x ^ w) = bytes of lut[(x ^ w) & 0x0f] + lut[((x ^ w) >> 4) & 0x0f], and both nibble
// halves can be taken before the XOR. The input rows an output row reads are split into low and
// high nibbles once per output row, into planes with one word per input column (so 4 adjacent
// output pixels are one unaligned load for every tap), zero-padded on both sides; the weights are
// stored pre-split and pre-broadcast (ConvWeights::nibbles). A vector of 4 pixels then costs two
// XORs (with the weight vector as memory operand), two lookups and two byte adds, and the 4 pixels'
// counts of one output channel leave the kernel as one contiguous store. Taps that fall into the
// left or right padding read zero words there, which count popcount(w) instead of nothing; the
// few border pixels are corrected afterwards with ConvWeights::tap_pops.

// Columns of a nibble plane: every load of a block of kPixelBlock pixels stays inside.
static inline int64_t plane_cols(const ConvGeometry& g) {
  return round_up(g.OW, kConvPixelBlock) + (g.kW - 1) * g.dW;
}

// Accumulators of kP*4 output pixels [ow, ow + 4*kP) x kO output channels [m0, m0 + kO), over
// the row taps [i0, i1) and every column tap. wb: ConvWeights::nibbles at channel m0. n_valid:
// how many of the pixels exist (the rest are computed from zero padding and not stored).
template <int kO, int kP, bool kFold>
static inline void lanes_block(const ConvGeometry& g, const uint64_t* xs, int64_t cols,
                               const uint64_t* wb, int64_t i0, int64_t i1, int64_t ow,
                               int32_t full_bits, int32_t* out, int64_t ldm, int64_t n_valid) {
  static_assert(kP == 2 && kConvPixelBlock == 8, "the store below takes 2 vectors of 4 pixels");
  const __m256i lut = _mm256_setr_epi8(0, 1, 1, 2, 1, 2, 2, 3, 1, 2, 2, 3, 2, 3, 3, 4,  //
                                       0, 1, 1, 2, 1, 2, 2, 3, 1, 2, 2, 3, 2, 3, 3, 4);
  __m256i bytes[kO][kP];
  __m256i sums[kO][kP];
  for (int o = 0; o < kO; ++o)
    for (int p = 0; p < kP; ++p) {
      bytes[o][p] = _mm256_setzero_si256();
      sums[o][p] = _mm256_setzero_si256();
    }
  const int64_t CW = g.CW, T = g.kH * g.kW;
  const int64_t group = T * CW * 32;  // words of one group of 4 channels in `nibbles`
  int pending = 0;
  for (int64_t i = i0; i < i1; ++i) {
    const uint64_t* xrow = xs + (i - i0) * g.dH * CW * 2 * cols + ow;
    for (int64_t j = 0; j < g.kW; ++j) {
      const uint64_t* xt = xrow + j * g.dW;
      const uint64_t* wt = wb + (i * g.kW + j) * CW * 32;
      for (int64_t k = 0; k < CW; ++k) {
        const uint64_t* lo = xt + k * 2 * cols;
        const uint64_t* wk = wt + k * 32;
        for (int o = 0; o < kO; ++o) {
          const uint64_t* wo = wk + (o / 4) * group + (o % 4) * 8;
          const __m256i wl = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(wo));
          const __m256i wh = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(wo + 4));
          for (int p = 0; p < kP; ++p) {
            const __m256i a = _mm256_shuffle_epi8(lut, _mm256_xor_si256(wl, _mm256_loadu_si256(reinterpret_cast<const __m256i*>(lo + 4 * p))));
            const __m256i b = _mm256_shuffle_epi8(lut, _mm256_xor_si256(wh, _mm256_loadu_si256(reinterpret_cast<const __m256i*>(lo + cols + 4 * p))));
            bytes[o][p] = _mm256_add_epi8(bytes[o][p], _mm256_add_epi8(a, b));
          }
        }
        if (kFold && ++pending == 31) {
          for (int o = 0; o < kO; ++o)
            for (int p = 0; p < kP; ++p) {
              sums[o][p] = _mm256_add_epi64(sums[o][p],
                                            _mm256_sad_epu8(bytes[o][p], _mm256_setzero_si256()));
              bytes[o][p] = _mm256_setzero_si256();
            }
          pending = 0;
        }
      }
    }
  }
  // Per channel: the 8 counts (one per 64-bit lane) to int32 in pixel order, full - 2*count.
  const __m256i order = _mm256_setr_epi32(0, 2, 4, 6, 1, 3, 5, 7);
  const __m256i full = _mm256_set1_epi32(full_bits);
  for (int o = 0; o < kO; ++o) {
    __m256i c[kP];
    for (int p = 0; p < kP; ++p) {
      c[p] = _mm256_sad_epu8(bytes[o][p], _mm256_setzero_si256());
      if (kFold) c[p] = _mm256_add_epi64(c[p], sums[o][p]);
    }
    // dwords [p0 p4 p1 p5 p2 p6 p3 p7] -> [p0 .. p7]
    __m256i v = _mm256_or_si256(c[0], _mm256_slli_epi64(c[1], 32));
    v = _mm256_permutevar8x32_epi32(v, order);
    v = _mm256_sub_epi32(full, _mm256_add_epi32(v, v));
    int32_t* dst = out + o * ldm + ow;
    if (n_valid == 8) {
      _mm256_storeu_si256(reinterpret_cast<__m256i*>(dst), v);
    } else {
      alignas(32) int32_t tmp[8];
      _mm256_store_si256(reinterpret_cast<__m256i*>(tmp), v);
      for (int64_t l = 0; l < n_valid; ++l) dst[l] = tmp[l];
    }
  }
}

constexpr int kBlockChannels = 4;  // kO
constexpr int kBlockVectors = 2;   // kP: 8 pixels per block

template <bool kFold>
static void lanes_row(const ConvGeometry& g, const uint64_t* xs, int64_t cols,
                      const ConvWeights& cw, int64_t i0, int64_t i1, int32_t* acc, int64_t ldm) {
  constexpr int64_t kPx = 4 * kBlockVectors;
  const int32_t full_bits = static_cast<int32_t>((i1 - i0) * g.kW * g.C);
  const int64_t group = g.kH * g.kW * g.CW * 32;
  for (int64_t m0 = 0; m0 < g.Mp; m0 += kBlockChannels) {
    const uint64_t* wb = cw.nibbles.data() + (m0 / 4) * group;
    int32_t* out = acc + m0 * ldm;
    for (int64_t ow = 0; ow < g.OW; ow += kPx)
      lanes_block<kBlockChannels, kBlockVectors, kFold>(g, xs, cols, wb, i0, i1, ow, full_bits,
                                                        out, ldm, imin(kPx, g.OW - ow));
  }
}

static void conv_row_impl(const ConvGeometry& g, const uint64_t* x_img, const ConvWeights& cw,
                          int64_t oh, int32_t* acc, int64_t ldm, uint64_t* scratch) {
  if (g.sW != 1) {  // adjacent output pixels do not read adjacent columns
    conv_row_generic(g, x_img, cw, oh, acc, ldm, scratch);
    return;
  }
  const int64_t CW = g.CW;
  const int64_t ih0 = oh * g.sH - g.pT;
  int64_t i0, i1;
  valid_taps(ih0, g.dH, g.kH, g.H, &i0, &i1);
  if (i0 == i1) {  // every tap in the padding
    for (int64_t m = 0; m < g.Mp; ++m)
      for (int64_t ow = 0; ow < g.OW; ++ow) acc[m * ldm + ow] = 0;
    return;
  }
  // Nibble planes of the input rows this output row reads: row q = ih - ih_first, word k:
  // low nibbles at xs + (q * CW + k) * 2 * cols + (iw + pL), high nibbles `cols` further.
  const int64_t ih_first = ih0 + i0 * g.dH;
  const int64_t rows = (i1 - 1 - i0) * g.dH + 1;
  const int64_t cols = plane_cols(g);
  const int64_t left = g.pL < cols ? g.pL : cols;
  const int64_t right = imin(cols, g.pL + g.W);  // first zero column on the right
  uint64_t* xs = scratch;  // conv_row_scratch_words(g) >= 2 * rows * CW * cols
  for (int64_t q = 0; q < rows; ++q) {
    const uint64_t* src = x_img + (ih_first + q) * g.W * CW;
    for (int64_t k = 0; k < CW; ++k) {
      uint64_t* lo = xs + (q * CW + k) * 2 * cols;
      uint64_t* hi = lo + cols;
      for (int64_t c = 0; c < left; ++c) lo[c] = hi[c] = 0;
      for (int64_t c = left; c < right; ++c) {
        const uint64_t v = src[(c - g.pL) * CW + k];
        lo[c] = v & kLowNibbles;
        hi[c] = (v >> 4) & kLowNibbles;
      }
      for (int64_t c = right; c < cols; ++c) lo[c] = hi[c] = 0;
    }
  }
  if (g.kH * g.kW * CW > 31)
    lanes_row<true>(g, xs, cols, cw, i0, i1, acc, ldm);
  else
    lanes_row<false>(g, xs, cols, cw, i0, i1, acc, ldm);
  // Border pixels: remove what their padded column taps counted.
  const int64_t left_end = imin(g.OW, g.pL);
  int64_t right_begin = g.W + g.pL - (g.kW - 1) * g.dW;
  if (right_begin < left_end) right_begin = left_end;
  for (int64_t ow = 0; ow < g.OW; ++ow) {
    if (ow == left_end) ow = right_begin;
    if (ow >= g.OW) break;
    int64_t j0, j1;
    valid_taps(ow - g.pL, g.dW, g.kW, g.W, &j0, &j1);
    const int32_t missing = static_cast<int32_t>((i1 - i0) * (g.kW - (j1 - j0)) * g.C);
    for (int64_t m = 0; m < g.Mp; ++m) {
      int32_t corr = 0;
      for (int64_t i = i0; i < i1; ++i)
        for (int64_t j = 0; j < g.kW; ++j)
          if (j < j0 || j >= j1) corr += cw.tap_pops[(i * g.kW + j) * g.Mp + m];
      acc[m * ldm + ow] += 2 * corr - missing;
    }
  }
}

}  // namespace avx2_impl

extern const IsaKernels kAvx2Kernels;
const IsaKernels kAvx2Kernels = {
    Path::kAvx2,
    "avx2",
    avx2_impl::pack_nchw_row_impl,
    avx2_impl::pack_row_impl,
    avx2_impl::conv_row_impl,
    avx2_impl::gemm_row_impl,
};

}  // namespace kernels
}  // namespace scales_edge
