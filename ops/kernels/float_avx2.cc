// AVX2 variant of the float kernels (float_impl.h): 8 floats per vector, FMA.
// Compiled with -mavx2 -mfma on x86-64 only; selected when the binary kernels' AVX2 path is and
// the CPU has FMA (float_kernels(), attention.cc).
#include <immintrin.h>

#include <cstdint>

#include "float_kernels.h"

#define SCALES_EDGE_FLOAT_NS float_avx2_impl

namespace scales_edge {
namespace kernels {
namespace float_avx2_impl {

struct F {
  static constexpr int kLanes = 8;
  static constexpr int kKeyBlock = 4;   // 8 accumulators + 2 queries + 1 key of 16 registers
  static constexpr int kValueBlock = 6;   // 12 accumulators + 2 weights + 1 value
  using V = __m256;
  static inline V load(const float* p) { return _mm256_loadu_ps(p); }
  static inline void store(float* p, V v) { _mm256_storeu_ps(p, v); }
  static inline V load_int(const int32_t* p) {
    return _mm256_cvtepi32_ps(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(p)));
  }
  static inline V set1(float v) { return _mm256_set1_ps(v); }
  static inline V zero() { return _mm256_setzero_ps(); }
  static inline V add(V a, V b) { return _mm256_add_ps(a, b); }
  static inline V sub(V a, V b) { return _mm256_sub_ps(a, b); }
  static inline V mul(V a, V b) { return _mm256_mul_ps(a, b); }
  static inline V div(V a, V b) { return _mm256_div_ps(a, b); }
  static inline V max(V a, V b) { return _mm256_max_ps(a, b); }
  static inline V fma(V a, V b, V c) { return _mm256_fmadd_ps(a, b, c); }
  static inline V abs(V a) { return _mm256_andnot_ps(_mm256_set1_ps(-0.0f), a); }
  static inline V select_le(V a, V b, V x, V y) {
    return _mm256_blendv_ps(y, x, _mm256_cmp_ps(a, b, _CMP_LE_OQ));
  }
  static inline V ne_value(V a, V b, V value) {
    return _mm256_and_ps(_mm256_cmp_ps(a, b, _CMP_NEQ_UQ), value);
  }
  static inline void transpose(V* r) {  // 8 x 8: unpack, shuffle, 128-bit permutes
    V t[8], u[8];
    for (int i = 0; i < 4; ++i) {
      t[2 * i] = _mm256_unpacklo_ps(r[2 * i], r[2 * i + 1]);
      t[2 * i + 1] = _mm256_unpackhi_ps(r[2 * i], r[2 * i + 1]);
    }
    for (int i = 0; i < 2; ++i) {  // u[4i + j], 128-bit lane l: rows 4i..4i+3 of column 4l + j
      u[4 * i] = _mm256_shuffle_ps(t[4 * i], t[4 * i + 2], _MM_SHUFFLE(1, 0, 1, 0));
      u[4 * i + 1] = _mm256_shuffle_ps(t[4 * i], t[4 * i + 2], _MM_SHUFFLE(3, 2, 3, 2));
      u[4 * i + 2] = _mm256_shuffle_ps(t[4 * i + 1], t[4 * i + 3], _MM_SHUFFLE(1, 0, 1, 0));
      u[4 * i + 3] = _mm256_shuffle_ps(t[4 * i + 1], t[4 * i + 3], _MM_SHUFFLE(3, 2, 3, 2));
    }
    for (int j = 0; j < 4; ++j) {
      r[j] = _mm256_permute2f128_ps(u[j], u[4 + j], 0x20);
      r[4 + j] = _mm256_permute2f128_ps(u[j], u[4 + j], 0x31);
    }
  }
  static inline float hsum(V v) {
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
  }
  static inline V min(V a, V b) { return _mm256_min_ps(a, b); }
  static inline V round(V x) { return _mm256_round_ps(x, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC); }
  // p * 2^n for integral n in [-126, 127]: n + 127 as the exponent bits of a float
  static inline V ldexp(V p, V n) {
    const __m256i e = _mm256_slli_epi32(_mm256_add_epi32(_mm256_cvtps_epi32(n), _mm256_set1_epi32(127)), 23);
    return _mm256_mul_ps(p, _mm256_castsi256_ps(e));
  }
};

static void stream_copy_impl(float* dst, const float* src, int64_t n) {
  int64_t i = 0;
  for (; i < n && (reinterpret_cast<uintptr_t>(dst + i) & 31) != 0; ++i) dst[i] = src[i];
  for (; i + 8 <= n; i += 8) _mm256_stream_ps(dst + i, _mm256_loadu_ps(src + i));
  for (; i < n; ++i) dst[i] = src[i];
}

static void stream_fence_impl() { _mm_sfence(); }

}  // namespace float_avx2_impl
}  // namespace kernels
}  // namespace scales_edge

#include "float_impl.h"

namespace scales_edge {
namespace kernels {

extern const FloatKernels kFloatAvx2Kernels;
const FloatKernels kFloatAvx2Kernels = {
    Path::kAvx2,
    "avx2",
    float_avx2_impl::kQueryBlock,
    float_avx2_impl::attention_scratch_impl,
    float_avx2_impl::attend_window_impl,
    float_avx2_impl::dot_impl,
    float_avx2_impl::linear_row_impl,
    float_avx2_impl::gelu_impl,
    float_avx2_impl::layer_norm_impl,
    float_avx2_impl::sigmoid_impl,
    float_avx2_impl::stream_copy_impl,
    float_avx2_impl::stream_fence_impl,
};

}  // namespace kernels
}  // namespace scales_edge
