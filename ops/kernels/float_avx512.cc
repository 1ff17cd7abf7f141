// AVX-512 variant of the float kernels (float_impl.h): 16 floats per vector, FMA.
// Compiled with the AVX-512 flags of avx512.cc plus -mfma on x86-64 only; selected when the binary
// kernels' AVX-512 path is (float_kernels(), attention.cc).
// GCC 12's AVX-512 intrinsics pass _mm512_undefined_* values as the merge source of unmasked
// operations (max, min, round, conversions), which its middle end reports as uninitialised.
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic ignored "-Wuninitialized"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#endif
#include <immintrin.h>

#include <cstdint>

#include "float_kernels.h"

#define SCALES_EDGE_FLOAT_NS float_avx512_impl

namespace scales_edge {
namespace kernels {
namespace float_avx512_impl {

struct F {
  static constexpr int kLanes = 16;
  static constexpr int kKeyBlock = 8;   // 16 accumulators of 32 registers
  static constexpr int kValueBlock = 12;
  using V = __m512;
  static inline V load(const float* p) { return _mm512_loadu_ps(p); }
  static inline void store(float* p, V v) { _mm512_storeu_ps(p, v); }
  static inline V load_int(const int32_t* p) {
    return _mm512_cvtepi32_ps(_mm512_loadu_si512(reinterpret_cast<const void*>(p)));
  }
  static inline V set1(float v) { return _mm512_set1_ps(v); }
  static inline V zero() { return _mm512_setzero_ps(); }
  static inline V add(V a, V b) { return _mm512_add_ps(a, b); }
  static inline V sub(V a, V b) { return _mm512_sub_ps(a, b); }
  static inline V mul(V a, V b) { return _mm512_mul_ps(a, b); }
  static inline V div(V a, V b) { return _mm512_div_ps(a, b); }
  static inline V max(V a, V b) { return _mm512_max_ps(a, b); }
  static inline V fma(V a, V b, V c) { return _mm512_fmadd_ps(a, b, c); }
  static inline V abs(V a) { return _mm512_abs_ps(a); }
  static inline V select_le(V a, V b, V x, V y) {
    return _mm512_mask_blend_ps(_mm512_cmp_ps_mask(a, b, _CMP_LE_OQ), y, x);
  }
  static inline V ne_value(V a, V b, V value) {
    return _mm512_maskz_mov_ps(_mm512_cmp_ps_mask(a, b, _CMP_NEQ_UQ), value);
  }
  static inline float hsum(V v) { return _mm512_reduce_add_ps(v); }
  static inline void transpose(V* r) {  // 16 x 16: unpack ps, unpack pd, two 128-bit shuffles
    V t[16], u[16];
    for (int i = 0; i < 8; ++i) {
      t[2 * i] = _mm512_unpacklo_ps(r[2 * i], r[2 * i + 1]);
      t[2 * i + 1] = _mm512_unpackhi_ps(r[2 * i], r[2 * i + 1]);
    }
    for (int i = 0; i < 4; ++i) {  // u[4i + j], 128-bit lane l: rows 4i..4i+3 of column 4l + j
      const __m512d a = _mm512_castps_pd(t[4 * i]), b = _mm512_castps_pd(t[4 * i + 2]);
      const __m512d c = _mm512_castps_pd(t[4 * i + 1]), d = _mm512_castps_pd(t[4 * i + 3]);
      u[4 * i] = _mm512_castpd_ps(_mm512_unpacklo_pd(a, b));
      u[4 * i + 1] = _mm512_castpd_ps(_mm512_unpackhi_pd(a, b));
      u[4 * i + 2] = _mm512_castpd_ps(_mm512_unpacklo_pd(c, d));
      u[4 * i + 3] = _mm512_castpd_ps(_mm512_unpackhi_pd(c, d));
    }
    for (int i = 0; i < 2; ++i)
      for (int j = 0; j < 4; ++j) {
        t[8 * i + j] = _mm512_shuffle_f32x4(u[8 * i + j], u[8 * i + 4 + j], 0x88);
        t[8 * i + 4 + j] = _mm512_shuffle_f32x4(u[8 * i + j], u[8 * i + 4 + j], 0xdd);
      }
    for (int j = 0; j < 8; ++j) {
      r[j] = _mm512_shuffle_f32x4(t[j], t[8 + j], 0x88);
      r[8 + j] = _mm512_shuffle_f32x4(t[j], t[8 + j], 0xdd);
    }
  }
  static inline V min(V a, V b) { return _mm512_min_ps(a, b); }
  static inline V round(V x) { return _mm512_roundscale_ps(x, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC); }
  // p * 2^n (n integral): vscalefps, which overflows to inf and underflows to 0 as exp does
  static inline V ldexp(V p, V n) { return _mm512_scalef_ps(p, n); }
};

static void stream_copy_impl(float* dst, const float* src, int64_t n) {
  int64_t i = 0;
  for (; i < n && (reinterpret_cast<uintptr_t>(dst + i) & 63) != 0; ++i) dst[i] = src[i];
  for (; i + 16 <= n; i += 16) _mm512_stream_ps(dst + i, _mm512_loadu_ps(src + i));
  for (; i < n; ++i) dst[i] = src[i];
}

static void stream_fence_impl() { _mm_sfence(); }

}  // namespace float_avx512_impl
}  // namespace kernels
}  // namespace scales_edge

#include "float_impl.h"

namespace scales_edge {
namespace kernels {

extern const FloatKernels kFloatAvx512Kernels;
const FloatKernels kFloatAvx512Kernels = {
    Path::kAvx512,
    "avx512",
    float_avx512_impl::kQueryBlock,
    float_avx512_impl::attention_scratch_impl,
    float_avx512_impl::attend_window_impl,
    float_avx512_impl::dot_impl,
    float_avx512_impl::linear_row_impl,
    float_avx512_impl::gelu_impl,
    float_avx512_impl::layer_norm_impl,
    float_avx512_impl::sigmoid_impl,
    float_avx512_impl::stream_copy_impl,
    float_avx512_impl::stream_fence_impl,
};

}  // namespace kernels
}  // namespace scales_edge
