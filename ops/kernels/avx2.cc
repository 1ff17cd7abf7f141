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

// ---- convolution: nibble-split weights ----
// popcount(x ^ w) = bytes of lut[(x ^ w) & 0x0f] + lut[((x ^ w) >> 4) & 0x0f], and both nibble
// halves can be taken before the XOR: with the weights stored pre-split (ConvWeights::nibbles) and
// the input word split once per tap, each 4-channel vector costs two XORs, two lookups and two
// byte adds (no shift, no mask).

// One output pixel of one row, channels [m0, m0 + 4R). xs = the input rows split into nibbles:
// word k of pixel w of row ih is at xs + ((ih - ih_first) * W + w) * 2 * CW + k (low nibbles),
// + CW (high nibbles). kFold: the pixel sums more than 31 words, so the byte counters (+8 per
// word at most) are folded into 64-bit sums every 31 words; without it (e.g. 3x3 taps of <= 192
// channels) they never fold and the loop carries nothing else.
template <int R, bool kFold>
static inline void nibble_block(const ConvGeometry& g, const uint64_t* xs, int64_t ih_first,
                                const uint64_t* wn, int64_t m0, int64_t ih0, int64_t i0,
                                int64_t i1, int64_t iw0, int64_t j0, int64_t j1, int32_t* out,
                                int64_t ldm) {
  const __m256i lut = _mm256_setr_epi8(0, 1, 1, 2, 1, 2, 2, 3, 1, 2, 2, 3, 2, 3, 3, 4,  //
                                       0, 1, 1, 2, 1, 2, 2, 3, 1, 2, 2, 3, 2, 3, 3, 4);
  __m256i bytes[R];
  __m256i sums[R];
  for (int r = 0; r < R; ++r) {
    bytes[r] = _mm256_setzero_si256();
    sums[r] = _mm256_setzero_si256();
  }
  const int64_t CW = g.CW, Mp = g.Mp, CW2 = 2 * CW;
  int pending = 0;
  for (int64_t i = i0; i < i1; ++i) {
    const uint64_t* xrow = xs + (ih0 + i * g.dH - ih_first) * g.W * CW2;
    for (int64_t j = j0; j < j1; ++j) {
      const uint64_t* xp = xrow + (iw0 + j * g.dW) * CW2;
      const uint64_t* wp = wn + (i * g.kW + j) * CW * 2 * Mp + m0;
      for (int64_t k = 0; k < CW; ++k) {
        const __m256i xl = _mm256_set1_epi64x(static_cast<long long>(xp[k]));
        const __m256i xh = _mm256_set1_epi64x(static_cast<long long>(xp[CW + k]));
        const uint64_t* wl = wp + k * 2 * Mp;
        const uint64_t* wh = wl + Mp;
        for (int r = 0; r < R; ++r) {
          const __m256i lo = _mm256_xor_si256(
              xl, _mm256_loadu_si256(reinterpret_cast<const __m256i*>(wl + 4 * r)));
          const __m256i hi = _mm256_xor_si256(
              xh, _mm256_loadu_si256(reinterpret_cast<const __m256i*>(wh + 4 * r)));
          bytes[r] = _mm256_add_epi8(bytes[r], _mm256_shuffle_epi8(lut, lo));
          bytes[r] = _mm256_add_epi8(bytes[r], _mm256_shuffle_epi8(lut, hi));
        }
        if (kFold && ++pending == 31) {
          for (int r = 0; r < R; ++r) {
            sums[r] = _mm256_add_epi64(sums[r], _mm256_sad_epu8(bytes[r], _mm256_setzero_si256()));
            bytes[r] = _mm256_setzero_si256();
          }
          pending = 0;
        }
      }
    }
  }
  const int64_t valid_bits = (i1 - i0) * (j1 - j0) * g.C;
  alignas(32) int64_t pop[R][4];
  for (int r = 0; r < R; ++r) {
    __m256i total = _mm256_sad_epu8(bytes[r], _mm256_setzero_si256());
    if (kFold) total = _mm256_add_epi64(total, sums[r]);
    _mm256_store_si256(reinterpret_cast<__m256i*>(pop[r]), total);
  }
  int32_t* o = out + m0 * ldm;
  for (int r = 0; r < R; ++r)
    for (int l = 0; l < 4; ++l)
      o[(4 * r + l) * ldm] = static_cast<int32_t>(valid_bits - 2 * pop[r][l]);
}

template <bool kFold>
static inline void nibble_pixel(const ConvGeometry& g, const uint64_t* xs, int64_t ih_first,
                                const uint64_t* wn, int64_t ih0, int64_t i0, int64_t i1,
                                int64_t iw0, int64_t j0, int64_t j1, int32_t* out, int64_t ldm) {
  int64_t m0 = 0;
  for (; m0 + 16 <= g.Mp; m0 += 16)
    nibble_block<4, kFold>(g, xs, ih_first, wn, m0, ih0, i0, i1, iw0, j0, j1, out, ldm);
  for (; m0 < g.Mp; m0 += 8)  // Mp is a multiple of kChannelPad = 8
    nibble_block<2, kFold>(g, xs, ih_first, wn, m0, ih0, i0, i1, iw0, j0, j1, out, ldm);
}

static void conv_row_impl(const ConvGeometry& g, const uint64_t* x_img, const ConvWeights& cw,
                          int64_t oh, int32_t* acc, int64_t ldm, uint64_t* scratch) {
  const uint64_t* wn = cw.nibbles.data();
  const int64_t CW = g.CW;
  const int64_t ih0 = oh * g.sH - g.pT;
  int64_t i0, i1;
  valid_taps(ih0, g.dH, g.kH, g.H, &i0, &i1);
  if (i0 == i1) {  // every tap in the padding
    for (int64_t m = 0; m < g.Mp; ++m)
      for (int64_t ow = 0; ow < g.OW; ++ow) acc[m * ldm + ow] = 0;
    return;
  }
  // Split the input rows this output row reads into low and high nibbles, once per row: the
  // inner loop then broadcasts both straight from memory.
  const int64_t ih_first = ih0 + i0 * g.dH;
  const int64_t rows = (i1 - 1 - i0) * g.dH + 1;
  uint64_t* xs = scratch;  // conv_row_scratch_words(g) >= 2 * rows * W * CW
  const uint64_t* src = x_img + ih_first * g.W * CW;
  for (int64_t q = 0; q < rows * g.W; ++q)
    for (int64_t k = 0; k < CW; ++k) {
      const uint64_t v = src[q * CW + k];
      xs[q * 2 * CW + k] = v & kLowNibbles;
      xs[q * 2 * CW + CW + k] = (v >> 4) & kLowNibbles;
    }
  const bool fold = g.kH * g.kW * CW > 31;
  int64_t ow = 0;
  while (ow < g.OW) {
    const int64_t iw0 = ow * g.sW - g.pL;
    int64_t j0, j1;
    valid_taps(iw0, g.dW, g.kW, g.W, &j0, &j1);
    int32_t* out = acc + ow;
    if (j0 == j1) {
      for (int64_t m = 0; m < g.Mp; ++m) out[m * ldm] = 0;
      ++ow;
      continue;
    }
    // One pixel at a time: blocking two pixels (sharing weight loads) needs more than the 16
    // vector registers for 4 vectors of accumulators and was slower here.
    if (fold)
      nibble_pixel<true>(g, xs, ih_first, wn, ih0, i0, i1, iw0, j0, j1, out, ldm);
    else
      nibble_pixel<false>(g, xs, ih_first, wn, ih0, i0, i1, iw0, j0, j1, out, ldm);
    ++ow;
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
