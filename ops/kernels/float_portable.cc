// Portable variant of the float kernels (float_impl.h): a vector of 4 floats as a plain array
// (compilers vectorise its loops with the baseline instruction set). Compiled everywhere without
// extra flags; the fallback of float_kernels().
#include <cmath>
#include <cstdint>

#include "float_kernels.h"

#define SCALES_EDGE_FLOAT_NS float_portable_impl

namespace scales_edge {
namespace kernels {
namespace float_portable_impl {

struct F {
  static constexpr int kLanes = 4;
  static constexpr int kKeyBlock = 4;
  static constexpr int kValueBlock = 4;
  struct V {
    float v[4];
  };
  template <class Op>
  static inline V map(V a, V b, Op op) {
    V r;
    for (int l = 0; l < 4; ++l) r.v[l] = op(a.v[l], b.v[l]);
    return r;
  }
  static inline V load(const float* p) { return V{{p[0], p[1], p[2], p[3]}}; }
  static inline void store(float* p, V v) {
    for (int l = 0; l < 4; ++l) p[l] = v.v[l];
  }
  static inline V load_int(const int32_t* p) {
    return V{{static_cast<float>(p[0]), static_cast<float>(p[1]), static_cast<float>(p[2]),
              static_cast<float>(p[3])}};
  }
  static inline V set1(float v) { return V{{v, v, v, v}}; }
  static inline V zero() { return set1(0.0f); }
  static inline V add(V a, V b) { return map(a, b, [](float x, float y) { return x + y; }); }
  static inline V sub(V a, V b) { return map(a, b, [](float x, float y) { return x - y; }); }
  static inline V mul(V a, V b) { return map(a, b, [](float x, float y) { return x * y; }); }
  static inline V div(V a, V b) { return map(a, b, [](float x, float y) { return x / y; }); }
  static inline V max(V a, V b) {
    return map(a, b, [](float x, float y) { return (x != x || x > y) ? x : y; });
  }
  static inline V fma(V a, V b, V c) { return add(mul(a, b), c); }
  static inline V abs(V a) { return map(a, a, [](float x, float) { return std::fabs(x); }); }
  static inline V select_le(V a, V b, V x, V y) {
    V r;
    for (int l = 0; l < 4; ++l) r.v[l] = a.v[l] <= b.v[l] ? x.v[l] : y.v[l];
    return r;
  }
  static inline V ne_value(V a, V b, V value) {
    V r;
    for (int l = 0; l < 4; ++l) r.v[l] = a.v[l] != b.v[l] ? value.v[l] : 0.0f;
    return r;
  }
  static inline float hsum(V v) { return (v.v[0] + v.v[1]) + (v.v[2] + v.v[3]); }
  static inline void transpose(V* r) {
    for (int i = 0; i < 4; ++i)
      for (int j = i + 1; j < 4; ++j) {
        const float t = r[i].v[j];
        r[i].v[j] = r[j].v[i];
        r[j].v[i] = t;
      }
  }
  static inline V min(V a, V b) {
    return map(a, b, [](float x, float y) { return (y != y || y < x) ? y : x; });
  }
  static inline V round(V x) { return map(x, x, [](float a, float) { return std::nearbyint(a); }); }
  static inline V ldexp(V p, V n) {
    return map(p, n, [](float a, float b) { return std::ldexp(a, static_cast<int>(b)); });
  }
};

// (no streaming stores here: a plain copy)
static void stream_copy_impl(float* dst, const float* src, int64_t n) {
  for (int64_t i = 0; i < n; ++i) dst[i] = src[i];
}

static void stream_fence_impl() {}

}  // namespace float_portable_impl
}  // namespace kernels
}  // namespace scales_edge

#include "float_impl.h"

namespace scales_edge {
namespace kernels {

extern const FloatKernels kFloatPortableKernels;
const FloatKernels kFloatPortableKernels = {
    Path::kPortable,
    "portable",
    float_portable_impl::kQueryBlock,
    float_portable_impl::attention_scratch_impl,
    float_portable_impl::attend_window_impl,
    float_portable_impl::dot_impl,
    float_portable_impl::linear_row_impl,
    float_portable_impl::gelu_impl,
    float_portable_impl::layer_norm_impl,
    float_portable_impl::sigmoid_impl,
    float_portable_impl::stream_copy_impl,
    float_portable_impl::stream_fence_impl,
};

}  // namespace kernels
}  // namespace scales_edge
