// AVX2 path. Stride-1 convolutions: 32 output pixels per vector, one vpshufb table per weight
// nibble (conv_block below). Everything else (strided convs, the binary matmul): 4 output
// channels per 256-bit vector, popcount with the vpshufb nibble lookup (per-byte counts for up to
// 31 words, then summed per 64-bit lane with vpsadbw). Compiled with -mavx2 -mpopcnt on x86-64
// only; selected at run time when the CPU has AVX2.
#include <immintrin.h>

#include <cstdint>

#include "kernels.h"
#include "reductions.h"
#include "transform.h"

#define SCALES_EDGE_ISA_NS avx2_impl
#define SCALES_EDGE_ISA_CUSTOM_PACK 1
#define SCALES_EDGE_ISA_FUSED_PACK 1
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
#include "transform_avx2.h"

}  // namespace avx2_impl
}  // namespace kernels
}  // namespace scales_edge

#include "isa_impl.h"

namespace scales_edge {
namespace kernels {
namespace avx2_impl {

// ---- convolution, stride 1: output pixels in the byte lanes, one lookup table per weight nibble ----
// A vector holds the same input nibble (byte b, half h of word k) of 32 adjacent output pixels'
// taps. All 32 bytes then meet the same weight nibble w, so the vpshufb table itself can be
// popcount(x ^ w) for the 16 values x: one lookup and one byte add per 32 pixel-nibbles, no XOR
// (ConvWeights::tables holds those tables). Per output row, the input rows it reads are split into
// byte planes, one byte per input column, zero-padded left and right, so the 32 pixels of any tap
// are one unaligned load. Padded column taps read zeros and count popcount(w) instead of nothing;
// the few border pixels subtract it afterwards (ConvWeights::tap_pops).

// Byte columns of a plane: every load of a block of kConvPixelBlock pixels stays inside.
static inline int64_t plane_cols(const ConvGeometry& g) {
  return round_up(g.OW, kConvPixelBlock) + (g.kW - 1) * g.dW;
}

// Split 32 consecutive words (one per column) into 16 byte planes: planes[(b*2 + h)*stride + i] =
// nibble h of byte b of words[i].
static inline void split32(const uint64_t* words, uint8_t* planes, int64_t stride) {
  const __m256i low4 = _mm256_set1_epi8(0x0f);
  // Within a 128-bit lane (2 words), 16-bit element b = byte b of both words.
  const __m256i by_byte = _mm256_setr_epi8(0, 8, 1, 9, 2, 10, 3, 11, 4, 12, 5, 13, 6, 14, 7, 15,  //
                                           0, 8, 1, 9, 2, 10, 3, 11, 4, 12, 5, 13, 6, 14, 7, 15);
  for (int h = 0; h < 2; ++h) {
    __m256i v[8];
    for (int i = 0; i < 8; ++i) {
      // lane 0: words 2i, 2i+1; lane 1: words 16+2i, 17+2i, so that after the transpose lane 0
      // holds columns 0-15 and lane 1 columns 16-31, in order.
      __m256i w = _mm256_loadu2_m128i(reinterpret_cast<const __m128i*>(words + 16 + 2 * i),
                                      reinterpret_cast<const __m128i*>(words + 2 * i));
      if (h == 1) w = _mm256_srli_epi16(w, 4);
      v[i] = _mm256_shuffle_epi8(_mm256_and_si256(w, low4), by_byte);
    }
    // 8x8 transpose of 16-bit elements within each lane (row i = column pair i, element b).
    __m256i a[8], c[8];
    for (int i = 0; i < 4; ++i) {
      a[2 * i] = _mm256_unpacklo_epi16(v[2 * i], v[2 * i + 1]);
      a[2 * i + 1] = _mm256_unpackhi_epi16(v[2 * i], v[2 * i + 1]);
    }
    for (int i = 0; i < 2; ++i)
      for (int j = 0; j < 2; ++j) {
        c[4 * i + 2 * j] = _mm256_unpacklo_epi32(a[4 * i + j], a[4 * i + j + 2]);
        c[4 * i + 2 * j + 1] = _mm256_unpackhi_epi32(a[4 * i + j], a[4 * i + j + 2]);
      }
    for (int j = 0; j < 4; ++j) {  // byte 2j of the 32 columns, then byte 2j + 1
      _mm256_storeu_si256(reinterpret_cast<__m256i*>(planes + (4 * j + h) * stride),
                          _mm256_unpacklo_epi64(c[j], c[j + 4]));
      _mm256_storeu_si256(reinterpret_cast<__m256i*>(planes + (4 * j + 2 + h) * stride),
                          _mm256_unpackhi_epi64(c[j], c[j + 4]));
    }
  }
}

// Byte planes of the valid tap rows [i0, i1) of an output row whose first tap row is input row
// ih0: plane (q, k, b, h) of tap row i0 + q starts at xs + ((q * CW + k) * 16 + b * 2 + h) * cols;
// its column c holds input column c - pL.
static void split_rows(const ConvGeometry& g, const uint64_t* x_img, int64_t ih0, int64_t i0,
                       int64_t i1, int64_t cols, uint8_t* xs) {
  const int64_t CW = g.CW, W = g.W, pL = g.pL;
  const int64_t left = imin(pL, cols), right = imin(cols, pL + W);
  uint64_t gathered[32];
  for (int64_t q = 0; q < i1 - i0; ++q) {
    const uint64_t* src = x_img + (ih0 + (i0 + q) * g.dH) * W * CW;
    for (int64_t k = 0; k < CW; ++k) {
      uint8_t* pl = xs + (q * CW + k) * 16 * cols;
      for (int bh = 0; bh < 16; ++bh) {
        uint8_t* p = pl + bh * cols;
        for (int64_t c = 0; c < left; ++c) p[c] = 0;
        for (int64_t c = right; c < cols; ++c) p[c] = 0;
      }
      int64_t c = left;
      for (; c + 32 <= right; c += 32) {
        const uint64_t* words = src + (c - pL) * CW + k;
        if (CW != 1) {
          for (int i = 0; i < 32; ++i) gathered[i] = words[i * CW];
          words = gathered;
        }
        split32(words, pl + c, cols);
      }
      for (; c < right; ++c) {
        const uint64_t v = src[(c - pL) * CW + k];
        for (int bh = 0; bh < 16; ++bh)
          pl[bh * cols + c] = static_cast<uint8_t>((v >> (4 * bh)) & 15);
      }
    }
  }
}

// a0 += table(x0), a1 += table(x1) for the 16-byte table at t (in both lanes). The adds are
// written as instructions on the accumulators' registers: left to itself, GCC computes each sum
// into the lookup's register and copies it back, one extra move per add (~25% slower here).
static inline void lookup2(const uint8_t* t, __m256i x0, __m256i x1, __m256i& a0, __m256i& a1) {
  const __m256i tv = _mm256_broadcastsi128_si256(_mm_loadu_si128(reinterpret_cast<const __m128i*>(t)));
  const __m256i s0 = _mm256_shuffle_epi8(tv, x0);
  const __m256i s1 = _mm256_shuffle_epi8(tv, x1);
  __asm__("vpaddb %1, %0, %0" : "+x"(a0) : "x"(s0));
  __asm__("vpaddb %1, %0, %0" : "+x"(a1) : "x"(s1));
}

// Accumulators of 64 output pixels [ow, ow + 64) x 4 output channels [m0, m0 + 4), over the row
// taps [i0, i1) and every column tap, written to out[o * ldm + q] for channel m0 + o and pixel
// ow + q < ow + n_valid (out: channel m0's row at pixel ow). tb: ConvWeights::tables at channel
// m0. The byte counters take at most 64 per tap-word (16 lookups of at most 4), so they are
// widened to 16 bits every 3 tap-words; the caller guarantees kH*kW*C <= 65535, so 16 bits hold
// any count.
static inline void conv_block(const ConvGeometry& g, const uint8_t* xs, int64_t cols,
                              const uint8_t* tb, int64_t i0, int64_t i1, int64_t ow,
                              int32_t full_bits, int32_t* out, int64_t ldm, int64_t n_valid) {
  const __m256i zero = _mm256_setzero_si256();
  __m256i acc[4][2];
  __m256i wide[4][2][2];  // [o][p]: bytes 0-7 of each lane, bytes 8-15 of each lane
  for (int o = 0; o < 4; ++o)
    for (int p = 0; p < 2; ++p) acc[o][p] = wide[o][p][0] = wide[o][p][1] = zero;
  auto widen = [&]() {
    for (int o = 0; o < 4; ++o)
      for (int p = 0; p < 2; ++p) {
        wide[o][p][0] = _mm256_add_epi16(wide[o][p][0], _mm256_unpacklo_epi8(acc[o][p], zero));
        wide[o][p][1] = _mm256_add_epi16(wide[o][p][1], _mm256_unpackhi_epi8(acc[o][p], zero));
        acc[o][p] = zero;
      }
  };
  const int64_t CW = g.CW;
  int pending = 0;
  for (int64_t i = i0; i < i1; ++i) {
    const uint8_t* xrow = xs + (i - i0) * CW * 16 * cols + ow;
    for (int64_t j = 0; j < g.kW; ++j) {
      const uint8_t* xt = xrow + j * g.dW;
      const uint8_t* tt = tb + (i * g.kW + j) * CW * 16 * 64;
      for (int64_t k = 0; k < CW; ++k) {
        const uint8_t* xk = xt + k * 16 * cols;
        const uint8_t* tk = tt + k * 16 * 64;
        // Named copies: GCC keeps these in registers (the arrays, whose address widen() takes,
        // it kept in memory).
        __m256i a00 = acc[0][0], a01 = acc[0][1], a10 = acc[1][0], a11 = acc[1][1];
        __m256i a20 = acc[2][0], a21 = acc[2][1], a30 = acc[3][0], a31 = acc[3][1];
        for (int bh = 0; bh < 16; ++bh) {
          const __m256i x0 = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(xk + bh * cols));
          const __m256i x1 =
              _mm256_loadu_si256(reinterpret_cast<const __m256i*>(xk + bh * cols + 32));
          const uint8_t* tp = tk + bh * 64;
          lookup2(tp, x0, x1, a00, a01);
          lookup2(tp + 16, x0, x1, a10, a11);
          lookup2(tp + 32, x0, x1, a20, a21);
          lookup2(tp + 48, x0, x1, a30, a31);
        }
        acc[0][0] = a00, acc[0][1] = a01, acc[1][0] = a10, acc[1][1] = a11;
        acc[2][0] = a20, acc[2][1] = a21, acc[3][0] = a30, acc[3][1] = a31;
        if (++pending == 3) {
          widen();
          pending = 0;
        }
      }
    }
  }
  widen();
  // wide[o][p][u], lane l: pixels 32p + 16l + 8u + (0..7).
  const __m256i full = _mm256_set1_epi32(full_bits);
  alignas(32) int32_t tmp[kConvPixelBlock];
  for (int o = 0; o < 4; ++o) {
    int32_t* dst = n_valid == kConvPixelBlock ? out + o * ldm : tmp;
    for (int p = 0; p < 2; ++p)
      for (int u = 0; u < 2; ++u)
        for (int l = 0; l < 2; ++l) {
          const __m128i h = l == 0 ? _mm256_castsi256_si128(wide[o][p][u])
                                   : _mm256_extracti128_si256(wide[o][p][u], 1);
          __m256i v = _mm256_cvtepu16_epi32(h);
          v = _mm256_sub_epi32(full, _mm256_add_epi32(v, v));
          _mm256_storeu_si256(reinterpret_cast<__m256i*>(dst + 32 * p + 16 * l + 8 * u), v);
        }
    if (n_valid != kConvPixelBlock)
      for (int64_t q = 0; q < n_valid; ++q) out[o * ldm + q] = tmp[q];
  }
}

// The byte-plane kernel takes stride-1 rows (adjacent output pixels read adjacent columns),
// reductions its 16-bit counters hold, and column taps no further apart than the input is wide
// (its planes span the output row plus the taps: wider spans would cost scratch for padding).
static bool planes_apply(const ConvGeometry& g) {
  return g.sW == 1 && g.kH * g.kW * g.C <= 65535 && (g.kW - 1) * g.dW <= g.W + kConvPixelBlock;
}

// IsaKernels::conv_scratch_words: the byte planes of at most min(kH, H) valid tap rows, for the
// kPlaneChunkRows output rows conv_rows_float lays out at a time.
constexpr int64_t kPlaneChunkRows = 8;
static int64_t conv_scratch_words_impl(const ConvGeometry& g) {
  if (!planes_apply(g)) return 0;
  return kPlaneChunkRows * 2 * imin(g.kH, g.H) * g.CW * plane_cols(g);
}

// Border pixels: remove what their padded column taps counted (zeros of the planes, which count
// popcount(w) instead of nothing: ConvWeights::tap_pops) for the pixels of [ow_begin, ow_end) that
// have such taps and channels [m0, m1); out: channel m0's row at pixel ow_begin.
static void correct_borders(const ConvGeometry& g, const ConvWeights& cw, int64_t i0, int64_t i1,
                            int64_t m0, int64_t m1, int64_t ow_begin, int64_t ow_end, int32_t* out,
                            int64_t ldm) {
  const int64_t left_end = imin(g.OW, g.pL);
  int64_t right_begin = g.W + g.pL - (g.kW - 1) * g.dW;
  if (right_begin < left_end) right_begin = left_end;
  for (int64_t ow = ow_begin; ow < ow_end; ++ow) {
    if (ow >= left_end && ow < right_begin) {  // the interior: no padded column tap
      ow = right_begin - 1;
      continue;
    }
    int64_t j0, j1;
    valid_taps(ow - g.pL, g.dW, g.kW, g.W, &j0, &j1);
    const int32_t missing = static_cast<int32_t>((i1 - i0) * (g.kW - (j1 - j0)) * g.C);
    for (int64_t m = m0; m < m1; ++m) {
      int32_t corr = 0;
      for (int64_t i = i0; i < i1; ++i)
        for (int64_t j = 0; j < g.kW; ++j)
          if (j < j0 || j >= j1) corr += cw.tap_pops[(i * g.kW + j) * g.Mp + m];
      out[(m - m0) * ldm + (ow - ow_begin)] += 2 * corr - missing;
    }
  }
}

// Table bytes of 4 output channels.
static inline int64_t table_group(const ConvGeometry& g) { return g.kH * g.kW * g.CW * 16 * 64; }

static void conv_row_impl(const ConvGeometry& g, const uint64_t* x_img, const ConvWeights& cw,
                          int64_t oh, int32_t* acc, int64_t ldm, uint64_t* scratch) {
  static_assert(kConvPixelBlock == 64, "conv_block computes 2 vectors of 32 pixels");
  if (!planes_apply(g)) {
    conv_row_generic(g, x_img, cw, oh, acc, ldm, scratch);
    return;
  }
  int64_t ih0, i0, i1;
  if (!row_taps(g, oh, acc, ldm, &ih0, &i0, &i1)) return;
  const int64_t cols = plane_cols(g);
  uint8_t* xs = reinterpret_cast<uint8_t*>(scratch);  // conv_row_scratch_words(k, g) words
  split_rows(g, x_img, ih0, i0, i1, cols, xs);
  const int32_t full_bits = static_cast<int32_t>((i1 - i0) * g.kW * g.C);
  for (int64_t m0 = 0; m0 < g.Mp; m0 += 4)
    for (int64_t ow = 0; ow < g.OW; ow += kConvPixelBlock)
      conv_block(g, xs, cols, cw.tables.data() + (m0 / 4) * table_group(g), i0, i1, ow, full_bits,
                 acc + m0 * ldm + ow, ldm, imin(kConvPixelBlock, g.OW - ow));
  correct_borders(g, cw, i0, i1, 0, g.Mp, 0, g.OW, acc, ldm);
}

// IsaKernels::conv_rows_float: rows [oh0, oh1), kPlaneChunkRows at a time: the chunk's rows are
// split into byte planes, then each group of 4 channels runs over all of them, block by block (64
// pixels), and each block's int32 results (in L1) are border-corrected and transformed into Y at
// once, the skip and output lines of the next block prefetched: the memory traffic of the
// transform overlaps the lookups of the next blocks instead of following a whole row.
static void conv_rows_float_impl(const ConvGeometry& g, const uint64_t* x_img,
                                 const ConvWeights& cw, int64_t oh0, int64_t oh1,
                                 const ConvTransform& t, uint64_t* scratch) {
  const int64_t cols = plane_cols(g);
  const int64_t row_words = conv_scratch_words_impl(g) / kPlaneChunkRows;
  struct Row {
    const uint8_t* xs;
    int64_t i0, i1;
  } rows[kPlaneChunkRows];
  alignas(32) int32_t block[4][kConvPixelBlock];
  for (int64_t c0 = oh0; c0 < oh1; c0 += kPlaneChunkRows) {
    const int64_t n = imin(kPlaneChunkRows, oh1 - c0);
    for (int64_t r = 0; r < n; ++r) {
      const int64_t ih0 = (c0 + r) * g.sH - g.pT;
      valid_taps(ih0, g.dH, g.kH, g.H, &rows[r].i0, &rows[r].i1);
      uint8_t* xs = reinterpret_cast<uint8_t*>(scratch + r * row_words);
      if (rows[r].i0 < rows[r].i1) split_rows(g, x_img, ih0, rows[r].i0, rows[r].i1, cols, xs);
      rows[r].xs = xs;
    }
    for (int64_t m0 = 0; m0 < g.Mp; m0 += 4)
      for (int64_t r = 0; r < n; ++r) {
        const int64_t row = c0 + r - oh0;
        const int64_t i0 = rows[r].i0, i1 = rows[r].i1;
        const float* s_row = t.s ? t.s + row * t.s_row_stride : nullptr;
        const float* skip = t.skip ? t.skip + row * t.skip_row_stride : nullptr;
        float* y = t.y + row * t.y_row_stride;
        for (int64_t ow = 0; ow < g.OW; ow += kConvPixelBlock) {
          const int64_t nv = imin(kConvPixelBlock, g.OW - ow);
          if (i0 < i1) {
            conv_block(g, rows[r].xs, cols, cw.tables.data() + (m0 / 4) * table_group(g), i0, i1,
                       ow, static_cast<int32_t>((i1 - i0) * g.kW * g.C), block[0],
                       kConvPixelBlock, nv);
            correct_borders(g, cw, i0, i1, m0, m0 + 4, ow, ow + nv, block[0], kConvPixelBlock);
          } else {  // every tap in the padding
            for (auto& b : block)
              for (int32_t& v : b) v = 0;
          }
          for (int64_t m = m0; m < imin(m0 + 4, g.M); ++m) {
            float* dst = y + m * t.y_ldm + ow;
            const float* xs = skip ? skip + m * t.skip_ldm + ow : nullptr;
            for (int64_t q = kConvPixelBlock; q < 2 * kConvPixelBlock && ow + q < g.OW; q += 16) {
              _mm_prefetch(reinterpret_cast<const char*>(dst + q), _MM_HINT_T0);
              if (xs) _mm_prefetch(reinterpret_cast<const char*>(xs + q), _MM_HINT_T0);
            }
            transform_row_impl(block[m - m0], nv, t.scale[m], t.bias ? t.bias[m] : 0.0f,
                               s_row ? s_row + ow : nullptr, t.cs ? t.cs[m] : 1.0f, xs, dst);
          }
        }
      }
  }
}

}  // namespace avx2_impl

extern const IsaKernels kAvx2Kernels;
const IsaKernels kAvx2Kernels = {
    Path::kAvx2,
    "avx2",
    true,
    avx2_impl::pack_nchw_row_impl,
    avx2_impl::pack_row_impl,
    avx2_impl::conv_row_impl,
    avx2_impl::gemm_row_impl,
    avx2_impl::conv_scratch_words_impl,
    avx2_impl::planes_apply,
    avx2_impl::conv_rows_float_impl,
    nullptr,
    avx2_impl::transform_row_impl,
};

}  // namespace kernels
}  // namespace scales_edge
