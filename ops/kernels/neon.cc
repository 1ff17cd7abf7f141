// NEON path (AArch64 Advanced SIMD): 2 output channels per 128-bit vector, popcount with
// veor + vcnt (per-byte counts) + vpadal (pairwise add-accumulate into 16-bit lanes, flushed into
// 32-bit lanes every 4095 words), the same packed 64-bit word layout as every other path.
// Binarize+pack is vectorised too: vsub + vcge on 4 floats at a time, the compare masks turned
// into bits with shift-insert (NCHW rows, vectorised over pixels) or a narrowing movemask
// (contiguous rows). Compiled on AArch64 only (Advanced SIMD is part of the AArch64 base ISA, so
// no extra -m flags); selected at run time when the OS reports ASIMD (always, on Linux/Android).
#if defined(__AARCH64EB__)
#error "neon.cc assumes little-endian AArch64 (the packed words are little-endian)"
#endif
#include <arm_neon.h>

#include <cstdint>

#include "kernels.h"
#include "taps.h"
#include "transform.h"

#define SCALES_EDGE_ISA_NS neon_impl
// This file brings its own binarize+pack row kernels (isa_impl.h then adds the sums and spatial
// dot of pack_nchw_row, and provides the matmul and the channels-in-lanes conv for border pixels).
#define SCALES_EDGE_ISA_CUSTOM_PACK 1
#define SCALES_EDGE_ISA_CUSTOM_CONV 1

namespace scales_edge {
namespace kernels {
namespace neon_impl {

struct Ops {
  static constexpr int kLanes = 2;
  static constexpr int kBlock = 4;
  // vpadalq_u8 adds at most 2*8 = 16 per word to a 16-bit lane: 4095 words keep it <= 65520.
  static constexpr int kFlushEvery = 4095;
  using Vec = uint64x2_t;
  struct Acc {
    uint16x8_t part;  // pairwise byte popcounts since the last flush
    uint32x4_t sums;  // two 32-bit halves per 64-bit lane (each <= valid bits < 2^31)
  };
  static inline Vec broadcast(uint64_t x) { return vdupq_n_u64(x); }
  static inline void zero(Acc& a) {
    a.part = vdupq_n_u16(0);
    a.sums = vdupq_n_u32(0);
  }
  static inline void add(Acc& a, Vec x, const uint64_t* w) {
    const uint8x16_t v = vreinterpretq_u8_u64(veorq_u64(x, vld1q_u64(w)));
    a.part = vpadalq_u8(a.part, vcntq_u8(v));
  }
  static inline void flush(Acc& a) {
    a.sums = vpadalq_u16(a.sums, a.part);
    a.part = vdupq_n_u16(0);
  }
  static inline void finish(Acc& a, int64_t valid_bits, int32_t* out, int64_t stride) {
    flush(a);
    const uint64x2_t pop = vpaddlq_u32(a.sums);
    out[0] = static_cast<int32_t>(valid_bits - 2 * static_cast<int64_t>(vgetq_lane_u64(pop, 0)));
    out[stride] = static_cast<int32_t>(valid_bits - 2 * static_cast<int64_t>(vgetq_lane_u64(pop, 1)));
  }
};

// Bit j (j < n <= 32) of each 32-bit lane of the result is 1 where sign(x - beta) = -1 for channel
// c0 + j, for NV vectors of 4 consecutive pixels (xw = x + pixel offset; channel c at c*plane).
// The compare masks are shifted in from the highest channel down: acc = (acc << 1) + (ge >> 31),
// so the result holds the "x - beta >= 0" bits, inverted (and masked to n bits) at the end.
template <int NV>
static inline void pack_half(const float* xw, int64_t plane, const float* beta, int64_t c0,
                             int64_t n, uint32x4_t* bits) {
  uint32x4_t acc[NV];
  for (int v = 0; v < NV; ++v) acc[v] = vdupq_n_u32(0);
  const float32x4_t zero = vdupq_n_f32(0.0f);
  for (int64_t j = n - 1; j >= 0; --j) {
    const int64_t c = c0 + j;
    const float32x4_t b = vdupq_n_f32(beta[c]);
    const float* xc = xw + c * plane;
    for (int v = 0; v < NV; ++v) {
      // NaN compares false: bit 1 (sign -1), as the contract says.
      const uint32x4_t ge = vcgeq_f32(vsubq_f32(vld1q_f32(xc + 4 * v), b), zero);
      acc[v] = vsraq_n_u32(vshlq_n_u32(acc[v], 1), ge, 31);
    }
  }
  const uint32x4_t mask = vdupq_n_u32(n >= 32 ? 0xffffffffu : ((1u << n) - 1u));
  for (int v = 0; v < NV; ++v) bits[v] = vbicq_u32(mask, acc[v]);
}

// NV*4 pixels starting at w0 of one 64-channel word group cw.
template <int NV>
static inline void pack_pixels(const float* x, int64_t plane, const float* beta, int64_t cw,
                               int64_t nbits, int64_t CW, int64_t w0, uint64_t* out) {
  uint32x4_t lo[NV], hi[NV];
  const int64_t nlo = imin(32, nbits);
  pack_half<NV>(x + w0, plane, beta, 64 * cw, nlo, lo);
  if (nbits > 32) {
    pack_half<NV>(x + w0, plane, beta, 64 * cw + 32, nbits - 32, hi);
  } else {
    for (int v = 0; v < NV; ++v) hi[v] = vdupq_n_u32(0);
  }
  for (int v = 0; v < NV; ++v) {
    // [lo0, hi0, lo1, hi1] is the little-endian words of pixels 0 and 1, likewise 2 and 3.
    const uint64x2_t p01 = vreinterpretq_u64_u32(vzip1q_u32(lo[v], hi[v]));
    const uint64x2_t p23 = vreinterpretq_u64_u32(vzip2q_u32(lo[v], hi[v]));
    const int64_t w = w0 + 4 * v;
    if (CW == 1) {
      vst1q_u64(out + w, p01);
      vst1q_u64(out + w + 2, p23);
    } else {
      out[(w + 0) * CW + cw] = vgetq_lane_u64(p01, 0);
      out[(w + 1) * CW + cw] = vgetq_lane_u64(p01, 1);
      out[(w + 2) * CW + cw] = vgetq_lane_u64(p23, 0);
      out[(w + 3) * CW + cw] = vgetq_lane_u64(p23, 1);
    }
  }
}

// Binarize and pack one image row, vectorised over pixels.
static void pack_nchw_bits(const float* x, int64_t plane, const float* beta, int64_t C,
                           int64_t W, uint64_t* out, uint64_t* /*scratch*/) {
  const int64_t CW = (C + 63) / 64;
  for (int64_t cw = 0; cw < CW; ++cw) {
    const int64_t nbits = imin(64, C - 64 * cw);
    int64_t w = 0;
    for (; w + 8 <= W; w += 8) pack_pixels<2>(x, plane, beta, cw, nbits, CW, w, out);
    for (; w + 4 <= W; w += 4) pack_pixels<1>(x, plane, beta, cw, nbits, CW, w, out);
    for (; w < W; ++w) {  // the last 0-3 pixels
      uint64_t word = 0;
      for (int64_t j = 0; j < nbits; ++j) {
        const int64_t c = 64 * cw + j;
        const uint64_t bit = (x[c * plane + w] - beta[c] >= 0.0f) ? 0u : 1u;
        word |= bit << j;
      }
      out[w * CW + cw] = word;
    }
  }
}

// 16 consecutive features -> 16 bytes, 0xff where x - beta >= 0.
static inline uint8x16_t ge_bytes16(const float* x, const float* b) {
  const float32x4_t zero = vdupq_n_f32(0.0f);
  const uint32x4_t g0 = vcgeq_f32(vsubq_f32(vld1q_f32(x + 0), vld1q_f32(b + 0)), zero);
  const uint32x4_t g1 = vcgeq_f32(vsubq_f32(vld1q_f32(x + 4), vld1q_f32(b + 4)), zero);
  const uint32x4_t g2 = vcgeq_f32(vsubq_f32(vld1q_f32(x + 8), vld1q_f32(b + 8)), zero);
  const uint32x4_t g3 = vcgeq_f32(vsubq_f32(vld1q_f32(x + 12), vld1q_f32(b + 12)), zero);
  // The masks are all-ones or zero, so keeping the low half of each lane narrows them.
  const uint16x8_t h0 = vuzp1q_u16(vreinterpretq_u16_u32(g0), vreinterpretq_u16_u32(g1));
  const uint16x8_t h1 = vuzp1q_u16(vreinterpretq_u16_u32(g2), vreinterpretq_u16_u32(g3));
  return vuzp1q_u8(vreinterpretq_u8_u16(h0), vreinterpretq_u8_u16(h1));
}

// Binarize+pack one row of K contiguous features: 64 at a time with a narrowing movemask.
static void pack_row_impl(const float* x, const float* beta, int64_t K, uint64_t* out) {
  const int64_t KW = (K + 63) / 64;
  static const uint8_t kWeights[16] = {1, 2, 4, 8, 16, 32, 64, 128, 1, 2, 4, 8, 16, 32, 64, 128};
  const uint8x16_t weights = vld1q_u8(kWeights);
  for (int64_t kw = 0; kw < KW; ++kw) {
    const int64_t nbits = imin(64, K - 64 * kw);
    const float* xk = x + 64 * kw;
    const float* bk = beta + 64 * kw;
    if (nbits == 64) {
      // weight where sign = -1 (not >= 0); pairwise adds then sum each aligned group of 8 bytes.
      const uint8x16_t m0 = vbicq_u8(weights, ge_bytes16(xk + 0, bk + 0));
      const uint8x16_t m1 = vbicq_u8(weights, ge_bytes16(xk + 16, bk + 16));
      const uint8x16_t m2 = vbicq_u8(weights, ge_bytes16(xk + 32, bk + 32));
      const uint8x16_t m3 = vbicq_u8(weights, ge_bytes16(xk + 48, bk + 48));
      const uint8x16_t s = vpaddq_u8(vpaddq_u8(m0, m1), vpaddq_u8(m2, m3));
      const uint8x16_t t = vpaddq_u8(s, s);  // byte k: bits of features 8k .. 8k+7
      out[kw] = vgetq_lane_u64(vreinterpretq_u64_u8(t), 0);
    } else {
      uint64_t word = 0;
      for (int64_t j = 0; j < nbits; ++j) {
        const uint64_t bit = (xk[j] - bk[j] >= 0.0f) ? 0u : 1u;
        word |= bit << j;
      }
      out[kw] = word;
    }
  }
}

// IsaKernels::transform_row with 4-float vectors: the float32 operations of the scalar transform
// in the same order (no FMA: -ffp-contract=off), so the same bits.
// The row with the factors given by the template flags.
struct TransformRow4 {
  template <bool kSpatial, bool kSkip>
  static void row(const int32_t* src, int64_t n, float sc, float bi, const float* s_row, float c,
                  const float* xs, float* dst) {
    const float32x4_t vsc = vdupq_n_f32(sc), vbi = vdupq_n_f32(bi), vc = vdupq_n_f32(c);
    int64_t i = 0;
    for (; i + 4 <= n; i += 4) {
      float32x4_t v = vmulq_f32(vcvtq_f32_s32(vld1q_s32(src + i)), vsc);
      v = vaddq_f32(v, vbi);
      if (kSpatial) v = vmulq_f32(v, vld1q_f32(s_row + i));
      v = vmulq_f32(v, vc);
      if (kSkip) v = vaddq_f32(v, vld1q_f32(xs + i));
      vst1q_f32(dst + i, v);
    }
    transform_row_scalar<kSpatial, kSkip>(src + i, n - i, sc, bi, kSpatial ? s_row + i : nullptr, c,
                                          kSkip ? xs + i : nullptr, dst + i);
  }
};

static void transform_row_impl(const int32_t* src, int64_t n, float sc, float bi,
                               const float* s_row, float c, const float* xs, float* dst) {
  transform_row_for<TransformRow4>(src, n, sc, bi, s_row, c, xs, dst);
}

}  // namespace neon_impl
}  // namespace kernels
}  // namespace scales_edge

#include "isa_impl.h"

namespace scales_edge {
namespace kernels {

namespace conv_px2_neon {  // conv_px2_neon.cc
bool applies(const ConvGeometry& g);
int64_t scratch_words(const ConvGeometry& g);
void interior(const ConvGeometry& g, const uint64_t* x_img, const ConvWeights& cw, int64_t oh,
              int32_t* acc, int64_t ldm, uint64_t* scratch, int64_t* lo, int64_t* end);
}  // namespace conv_px2_neon

namespace neon_impl {
// The interior pixels of a row with 2 pixels per vector (conv_px2_neon.cc), the rest with the
// channels-in-lanes kernel of isa_impl.h.
static void conv_row_impl(const ConvGeometry& g, const uint64_t* x_img, const ConvWeights& cw,
                          int64_t oh, int32_t* acc, int64_t ldm, uint64_t* scratch) {
  int64_t lo = 0, end = 0;
  if (conv_px2_neon::applies(g)) conv_px2_neon::interior(g, x_img, cw, oh, acc, ldm, scratch, &lo, &end);
  conv_pixels_generic(g, x_img, cw, oh, 0, lo, acc, ldm);
  conv_pixels_generic(g, x_img, cw, oh, end, g.OW, acc, ldm);
}
}  // namespace neon_impl

extern const IsaKernels kNeonKernels;
const IsaKernels kNeonKernels = {
    Path::kNeon,
    "neon",
    false,
    neon_impl::pack_nchw_row_impl,
    neon_impl::pack_row_impl,
    neon_impl::conv_row_impl,
    neon_impl::gemm_row_impl,
    conv_px2_neon::scratch_words,
    conv_px2_neon::applies,
    nullptr,
    nullptr,
    neon_impl::transform_row_impl,
};

}  // namespace kernels
}  // namespace scales_edge
