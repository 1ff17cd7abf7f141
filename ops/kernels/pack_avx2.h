// Binarize+pack with AVX2 compares, shared by avx2.cc and avx512.cc (both compiled with -mavx2).
// Include inside the variant's namespace, before isa_impl.h, with SCALES_EDGE_ISA_CUSTOM_PACK and
// SCALES_EDGE_ISA_FUSED_PACK defined and reductions.h included. Every function is static: each
// variant gets its own copy, compiled with its own flags.
//
// NCHW rows: for 8 pixels and 8 channels, eight compares give eight 8-bit masks (bit i = pixel i of
// one channel); as one 64-bit word they are an 8x8 bit matrix (byte = channel, bit = pixel), and a
// 3-step bit transpose turns it into byte = pixel, bit = channel: byte i is then the 8 sign bits of
// pixel i for those channels, one byte of the pixel's packed word. A group of 8 channels sweeps
// the whole row, so the channel sums (8 lanes each) stay in registers, and the spatial dot of 8
// pixels takes the group's 8 channels in order between one load and one store.

// Transpose the 8x8 bit matrix held in x (bit 8*r + c = element (r, c)).
static inline uint64_t transpose8x8(uint64_t x) {
  uint64_t t;
  t = (x ^ (x >> 7)) & 0x00AA00AA00AA00AAull;
  x = x ^ t ^ (t << 7);
  t = (x ^ (x >> 14)) & 0x0000CCCC0000CCCCull;
  x = x ^ t ^ (t << 14);
  t = (x ^ (x >> 28)) & 0x00000000F0F0F0F0ull;
  x = x ^ t ^ (t << 28);
  return x;
}

// 8 bits for 8 pixels of one channel: bit i = 1 where sign(v[i] - beta) = -1 (NaN included).
static inline uint64_t sign_bits8(__m256 v, __m256 b) {
  const __m256 d = _mm256_sub_ps(v, b);
  // _CMP_GE_OQ is false for NaN, so a NaN gets bit 1 after the inversion.
  const int ge = _mm256_movemask_ps(_mm256_cmp_ps(d, _mm256_setzero_ps(), _CMP_GE_OQ));
  return static_cast<uint64_t>(~ge & 0xff);
}

// Byte k of `bytes` (the sign bits of pixel w0 + k for channels c0 .. c0+7) into byte (c0 % 64)/8
// of that pixel's packed word; the word's first group (c0 % 64 == 0) writes the whole word.
static inline void put_group_bytes(uint64_t* out, int64_t CW, int64_t c0, int64_t w0,
                                   int64_t count, uint64_t bytes) {
  uint64_t* o = out + w0 * CW + c0 / 64;
  const int64_t g = (c0 % 64) / 8;
  if (g == 0) {
    for (int64_t k = 0; k < count; ++k) o[k * CW] = (bytes >> (8 * k)) & 0xff;
  } else {
    for (int64_t k = 0; k < count; ++k)  // little-endian: byte g holds bits 8g .. 8g+7
      reinterpret_cast<unsigned char*>(o + k * CW)[g] =
          static_cast<unsigned char>(bytes >> (8 * k));
  }
}

#include "pack_fused.h"  // pack_nchw_row_impl around pack_group, finish_group_sums

// Channels [c0, c0 + n) (n <= 8; kN = 8: n is 8) over the whole row, 8 pixels per step: their sign
// bits, and from the same loads the channels' float lanes of sum_floats (kSums) and their terms
// of the stride-1 spatial dot (kDot; dot holds the sum over the channels before c0), both in the
// orders of reductions.h.
template <bool kSums, bool kDot, int kN>
static inline void pack_group(const float* x, int64_t plane, const float* beta, int64_t c0,
                              int64_t n_arg, int64_t W, int64_t CW, uint64_t* out, double* sums,
                              const float* sw, float* dot) {
  const int64_t n = kN ? kN : n_arg;
  const float* xg = x + c0 * plane;
  const int64_t W8 = W / 8 * 8;
  float bg[8], wg[8];  // the group's thresholds and spatial weights (fewer live pointers)
  for (int64_t j = 0; j < n; ++j) {
    bg[j] = beta[c0 + j];
    wg[j] = kDot ? sw[c0 + j] : 0.0f;
  }
  __m256 acc[8];
  for (int j = 0; j < 8; ++j) acc[j] = _mm256_setzero_ps();
  for (int64_t w0 = 0; w0 < W8; w0 += 8) {
    uint64_t m = 0;
    __m256 d = _mm256_setzero_ps();
    if (kDot && c0 > 0) d = _mm256_loadu_ps(dot + w0);
#pragma GCC unroll 8
    for (int64_t j = 0; j < n; ++j) {
      const __m256 v = _mm256_loadu_ps(xg + j * plane + w0);
      m |= sign_bits8(v, _mm256_set1_ps(bg[j])) << (8 * j);
      if (kSums) acc[j] = _mm256_add_ps(acc[j], v);
      if (kDot) d = _mm256_add_ps(d, _mm256_mul_ps(_mm256_set1_ps(wg[j]), v));
    }
    if (kDot) _mm256_storeu_ps(dot + w0, d);
    put_group_bytes(out, CW, c0, w0, 8, transpose8x8(m));
  }
  for (int64_t w = W8; w < W; ++w) {  // the last 0-7 pixels
    uint64_t bits = 0;
    float d = (kDot && c0 > 0) ? dot[w] : 0.0f;
    for (int64_t j = 0; j < n; ++j) {
      const float v = xg[j * plane + w];
      bits |= uint64_t{v - bg[j] >= 0.0f ? 0u : 1u} << j;
      if (kDot) d += wg[j] * v;
    }
    if (kDot) dot[w] = d;
    put_group_bytes(out, CW, c0, w, 1, bits);
  }
  if (kSums) finish_group_sums(acc, n, xg, plane, W8, W, c0, sums);
}

// One row of K features: 8 at a time, the movemask bits are already in feature order.
static void pack_row_impl(const float* x, const float* beta, int64_t K, uint64_t* out) {
  const int64_t KW = (K + 63) / 64;
  for (int64_t kw = 0; kw < KW; ++kw) {
    const int64_t k0 = 64 * kw;
    const int64_t nbits = K - k0 < 64 ? K - k0 : 64;
    uint64_t word = 0;
    int64_t j = 0;
    for (; j + 8 <= nbits; j += 8) {
      const __m256 d = _mm256_sub_ps(_mm256_loadu_ps(x + k0 + j), _mm256_loadu_ps(beta + k0 + j));
      const int ge = _mm256_movemask_ps(_mm256_cmp_ps(d, _mm256_setzero_ps(), _CMP_GE_OQ));
      word |= static_cast<uint64_t>(~ge & 0xff) << j;
    }
    for (; j < nbits; ++j) {
      const uint64_t bit = (x[k0 + j] - beta[k0 + j] >= 0.0f) ? 0u : 1u;
      word |= bit << j;
    }
    out[kw] = word;
  }
}
