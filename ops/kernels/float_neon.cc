// NEON variant of the float kernels (float_impl.h): 4 floats per 128-bit vector, fused
// multiply-add (vfmaq_f32). Compiled on AArch64 only (no extra flags); selected when the binary
// kernels' NEON path is (float_kernels(), attention.cc).
#include <arm_neon.h>

#include <cstdint>

#include "float_kernels.h"

#define SCALES_EDGE_FLOAT_NS float_neon_impl

namespace scales_edge {
namespace kernels {
namespace float_neon_impl {

struct F {
  static constexpr int kLanes = 4;
  static constexpr int kKeyBlock = 8;   // 16 accumulators of 32 registers
  static constexpr int kValueBlock = 12;
  using V = float32x4_t;
  static inline V load(const float* p) { return vld1q_f32(p); }
  static inline void store(float* p, V v) { vst1q_f32(p, v); }
  static inline V load_int(const int32_t* p) { return vcvtq_f32_s32(vld1q_s32(p)); }
  static inline V set1(float v) { return vdupq_n_f32(v); }
  static inline V zero() { return vdupq_n_f32(0.0f); }
  static inline V add(V a, V b) { return vaddq_f32(a, b); }
  static inline V sub(V a, V b) { return vsubq_f32(a, b); }
  static inline V mul(V a, V b) { return vmulq_f32(a, b); }
  static inline V div(V a, V b) { return vdivq_f32(a, b); }
  static inline V max(V a, V b) { return vmaxq_f32(a, b); }  // NaN if either is NaN
  static inline V fma(V a, V b, V c) { return vfmaq_f32(c, a, b); }
  static inline V abs(V a) { return vabsq_f32(a); }
  static inline V select_le(V a, V b, V x, V y) { return vbslq_f32(vcleq_f32(a, b), x, y); }
  static inline V ne_value(V a, V b, V value) {
    return vreinterpretq_f32_u32(vbicq_u32(vreinterpretq_u32_f32(value), vceqq_f32(a, b)));
  }
  static inline float hsum(V v) { return vaddvq_f32(v); }
  static inline void transpose(V* r) {  // 4 x 4
    const float32x4x2_t a = vtrnq_f32(r[0], r[1]), b = vtrnq_f32(r[2], r[3]);
    r[0] = vcombine_f32(vget_low_f32(a.val[0]), vget_low_f32(b.val[0]));
    r[1] = vcombine_f32(vget_low_f32(a.val[1]), vget_low_f32(b.val[1]));
    r[2] = vcombine_f32(vget_high_f32(a.val[0]), vget_high_f32(b.val[0]));
    r[3] = vcombine_f32(vget_high_f32(a.val[1]), vget_high_f32(b.val[1]));
  }
  static inline V min(V a, V b) { return vminq_f32(a, b); }
  static inline V round(V x) { return vrndnq_f32(x); }
  // p * 2^n for integral n in [-126, 127]: n + 127 as the exponent bits of a float
  static inline V ldexp(V p, V n) {
    const int32x4_t e = vshlq_n_s32(vaddq_s32(vcvtq_s32_f32(n), vdupq_n_s32(127)), 23);
    return vmulq_f32(p, vreinterpretq_f32_s32(e));
  }
};

// (no streaming stores here: a plain copy)
static void stream_copy_impl(float* dst, const float* src, int64_t n) {
  for (int64_t i = 0; i < n; ++i) dst[i] = src[i];
}

static void stream_fence_impl() {}

}  // namespace float_neon_impl
}  // namespace kernels
}  // namespace scales_edge

#include "float_impl.h"

namespace scales_edge {
namespace kernels {

extern const FloatKernels kFloatNeonKernels;
const FloatKernels kFloatNeonKernels = {
    Path::kNeon,
    "neon",
    float_neon_impl::kQueryBlock,
    float_neon_impl::attention_scratch_impl,
    float_neon_impl::attend_window_impl,
    float_neon_impl::dot_impl,
    float_neon_impl::linear_row_impl,
    float_neon_impl::gelu_impl,
    float_neon_impl::layer_norm_impl,
    float_neon_impl::sigmoid_impl,
    float_neon_impl::stream_copy_impl,
    float_neon_impl::stream_fence_impl,
};

}  // namespace kernels
}  // namespace scales_edge
