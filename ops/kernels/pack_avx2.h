// Binarize+pack with AVX2 compares, shared by avx2.cc and avx512.cc (both compiled with -mavx2).
// Include inside the variant's namespace, before isa_impl.h, with SCALES_EDGE_ISA_CUSTOM_PACK
// defined. Every function is static: each variant gets its own copy, compiled with its own flags.
//
// NCHW rows: for 8 pixels and 8 channels, eight compares give eight 8-bit masks (bit i = pixel i of
// one channel); as one 64-bit word they are an 8x8 bit matrix (byte = channel, bit = pixel), and a
// 3-step bit transpose turns it into byte = pixel, bit = channel: byte i is then the 8 sign bits of
// pixel i for those channels, ready to be or-ed into the pixel's packed word.

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

// 8 bits for pixels w0..w0+7 of channel c: bit i = 1 where sign(x - beta) = -1 (NaN included).
static inline uint64_t sign_bits8(const float* xc, __m256 b) {
  const __m256 d = _mm256_sub_ps(_mm256_loadu_ps(xc), b);
  // _CMP_GE_OQ is false for NaN, so a NaN gets bit 1 after the inversion.
  const int ge = _mm256_movemask_ps(_mm256_cmp_ps(d, _mm256_setzero_ps(), _CMP_GE_OQ));
  return static_cast<uint64_t>(~ge & 0xff);
}

static void pack_nchw_row_impl(const float* x, int64_t plane, const float* beta, int64_t C,
                               int64_t W, uint64_t* out, uint64_t* /*scratch*/) {
  const int64_t CW = (C + 63) / 64;
  const int64_t W8 = W / 8 * 8;
  for (int64_t cw = 0; cw < CW; ++cw) {
    const int64_t c_base = 64 * cw;
    const int64_t nbits = C - c_base < 64 ? C - c_base : 64;
    for (int64_t w0 = 0; w0 < W8; w0 += 8) {
      uint64_t words[8] = {0, 0, 0, 0, 0, 0, 0, 0};
      for (int64_t g = 0; g * 8 < nbits; ++g) {
        const int64_t c0 = c_base + 8 * g;
        const int64_t n = nbits - 8 * g < 8 ? nbits - 8 * g : 8;
        uint64_t m = 0;
        for (int64_t j = 0; j < n; ++j)
          m |= sign_bits8(x + (c0 + j) * plane + w0, _mm256_set1_ps(beta[c0 + j])) << (8 * j);
        m = transpose8x8(m);
        for (int i = 0; i < 8; ++i) words[i] |= ((m >> (8 * i)) & 0xff) << (8 * g);
      }
      for (int i = 0; i < 8; ++i) out[(w0 + i) * CW + cw] = words[i];
    }
    for (int64_t w = W8; w < W; ++w) {  // the last 0-7 pixels
      uint64_t word = 0;
      for (int64_t j = 0; j < nbits; ++j) {
        const int64_t c = c_base + j;
        const uint64_t bit = (x[c * plane + w] - beta[c] >= 0.0f) ? 0u : 1u;
        word |= bit << j;
      }
      out[w * CW + cw] = word;
    }
  }
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
