// Binarize+pack with AVX-512 compares straight into mask registers, for avx512.cc (and the row
// packing for linear_avx512.cc). Include inside the variant's namespace, before isa_impl.h, with
// SCALES_EDGE_ISA_CUSTOM_PACK and SCALES_EDGE_ISA_FUSED_PACK defined and reductions.h included.
// Every function is static (each file compiles its own copy with the AVX-512 flags).
//
// NCHW rows: a group of 8 channels sweeps the row 16 pixels at a time. A compare of x - beta
// against 0 (not-greater-or-equal, true for NaN) gives channel j's sign bits of the 16 pixels as a
// mask, and a masked byte add of 1 << j puts them into byte p (pixel p) of one vector: 8 masked
// adds make the 16 bytes that are the group's byte of the 16 pixels' packed words (no movemask, no
// bit transpose). The same loads feed the channels' sums (reductions.h's 8 float lanes: the low
// then the high half of each 16-pixel vector, so the order is the 8-lane one) and the stride-1
// spatial dot (the group's channels in order, between one load and one store of 16 dot lanes).

// The group's byte of the packed words of `count` (<= 16) pixels from w0: a group starting a word
// (c0 % 64 == 0) writes the whole word, the others OR their byte in.
static inline void put_group_bytes16(uint64_t* out, int64_t CW, int64_t c0, int64_t w0,
                                     int64_t count, __m128i bytes) {
  uint64_t* o = out + w0 * CW + c0 / 64;
  const int g = static_cast<int>((c0 % 64) / 8);
  if (CW == 1 && count == 16) {  // 16 consecutive words
    // (the zero-masked forms: GCC 12 warns about the unmasked ones' undefined sources)
    const __m512i lo = _mm512_maskz_slli_epi64(0xff, _mm512_maskz_cvtepu8_epi64(0xff, bytes), 8 * g);
    const __m512i hi = _mm512_maskz_slli_epi64(
        0xff, _mm512_maskz_cvtepu8_epi64(0xff, _mm_srli_si128(bytes, 8)), 8 * g);
    if (g == 0) {
      _mm512_storeu_si512(o, lo);
      _mm512_storeu_si512(o + 8, hi);
    } else {
      _mm512_storeu_si512(o, _mm512_or_si512(_mm512_loadu_si512(o), lo));
      _mm512_storeu_si512(o + 8, _mm512_or_si512(_mm512_loadu_si512(o + 8), hi));
    }
    return;
  }
  alignas(16) uint8_t b[16];
  _mm_store_si128(reinterpret_cast<__m128i*>(b), bytes);
  if (g == 0) {
    for (int64_t k = 0; k < count; ++k) o[k * CW] = b[k];
  } else {
    for (int64_t k = 0; k < count; ++k)  // little-endian: byte g holds bits 8g .. 8g+7
      reinterpret_cast<unsigned char*>(o + k * CW)[g] = b[k];
  }
}

#include "pack_fused.h"  // pack_nchw_row_impl around pack_group, finish_group_sums

// Channels [c0, c0 + n) (n <= 8; kN = 8: n is 8) over the whole row, 16 pixels per step (the last
// step masked): their sign bits, and from the same loads the channels' float lanes of sum_floats
// (kSums) and their terms of the stride-1 spatial dot (kDot; dot holds the sum over the channels
// before c0), both in the orders of reductions.h.
template <bool kSums, bool kDot, int kN>
static inline void pack_group(const float* x, int64_t plane, const float* beta, int64_t c0,
                              int64_t n_arg, int64_t W, int64_t CW, uint64_t* out, double* sums,
                              const float* sw, float* dot) {
  const int64_t n = kN ? kN : n_arg;
  const float* xg = x + c0 * plane;
  const int64_t W8 = W / 8 * 8;  // the sums' lanes take whole 8-pixel steps
  __m512 bg[8], wg[8];
  for (int64_t j = 0; j < n; ++j) {
    bg[j] = _mm512_set1_ps(beta[c0 + j]);
    wg[j] = _mm512_set1_ps(kDot ? sw[c0 + j] : 0.0f);
  }
  __m256 acc[8];
  for (int j = 0; j < 8; ++j) acc[j] = _mm256_setzero_ps();
  const __m512 zero = _mm512_setzero_ps();
  for (int64_t w0 = 0; w0 < W; w0 += 16) {
    const int64_t count = W - w0 < 16 ? W - w0 : 16;
    const __mmask16 valid = static_cast<__mmask16>(count == 16 ? 0xffff : (1u << count) - 1);
    __m128i bytes = _mm_setzero_si128();
    __m512 d = zero;
    if (kDot && c0 > 0) d = _mm512_maskz_loadu_ps(valid, dot + w0);
#pragma GCC unroll 8
    for (int64_t j = 0; j < n; ++j) {
      const __m512 v = _mm512_maskz_loadu_ps(valid, xg + j * plane + w0);
      // sign(v - beta) = -1 (bit 1) unless v - beta >= 0: not-greater-or-equal, true for NaN.
      const __mmask16 neg = _mm512_cmp_ps_mask(_mm512_sub_ps(v, bg[j]), zero, _CMP_NGE_UQ) & valid;
      bytes = _mm_mask_add_epi8(bytes, neg, bytes, _mm_set1_epi8(static_cast<char>(1 << j)));
      if (kSums && count == 16) {  // the lanes: pixels w0..w0+7, then w0+8..w0+15
        acc[j] = _mm256_add_ps(acc[j], _mm512_maskz_extractf32x8_ps(0xff, v, 0));
        acc[j] = _mm256_add_ps(acc[j], _mm512_maskz_extractf32x8_ps(0xff, v, 1));
      } else if (kSums && w0 + 8 <= W8) {  // a last whole 8-pixel step
        acc[j] = _mm256_add_ps(acc[j], _mm512_maskz_extractf32x8_ps(0xff, v, 0));
      }
      if (kDot) d = _mm512_add_ps(d, _mm512_mul_ps(wg[j], v));
    }
    if (kDot) _mm512_mask_storeu_ps(dot + w0, valid, d);
    put_group_bytes16(out, CW, c0, w0, count, bytes);
  }
  if (kSums) finish_group_sums(acc, n, xg, plane, W8, W, c0, sums);
}

// One row of K features: 16 at a time, the compare masks are already in feature order.
static void pack_row_impl(const float* x, const float* beta, int64_t K, uint64_t* out) {
  const int64_t KW = (K + 63) / 64;
  const __m512 zero = _mm512_setzero_ps();
  for (int64_t kw = 0; kw < KW; ++kw) {
    uint64_t word = 0;
    for (int q = 0; q < 4; ++q) {
      const int64_t k0 = 64 * kw + 16 * q;
      if (k0 >= K) break;
      const __mmask16 valid =
          static_cast<__mmask16>(K - k0 >= 16 ? 0xffff : (1u << (K - k0)) - 1);
      const __m512 d = _mm512_sub_ps(_mm512_maskz_loadu_ps(valid, x + k0),
                                     _mm512_maskz_loadu_ps(valid, beta + k0));
      const __mmask16 neg = _mm512_cmp_ps_mask(d, zero, _CMP_NGE_UQ) & valid;
      word |= static_cast<uint64_t>(neg) << (16 * q);
    }
    out[kw] = word;
  }
}
