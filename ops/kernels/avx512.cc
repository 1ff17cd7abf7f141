// AVX-512 path, popcount with VPOPCNTQ (AVX512_VPOPCNTDQ). Convolutions with column strides up to 4
// put 8 output pixels in the lanes (conv_px8_avx512.cc); the others 8 output channels per 512-bit
// vector (isa_impl.h); the binary matmul 16 channels per step (linear_avx512.cc). Compiled with -mavx512f -mavx512bw -mavx512vl
// -mavx512dq -mavx512vpopcntdq on x86-64 only; selected at run time when the CPU (and OS) support
// all of them.
#include <immintrin.h>

#include <cstdint>

#include "kernels.h"
#include "reductions.h"
#include "transform.h"

#define SCALES_EDGE_ISA_NS avx512_impl
#define SCALES_EDGE_ISA_CUSTOM_PACK 1
#define SCALES_EDGE_ISA_FUSED_PACK 1
#define SCALES_EDGE_ISA_CUSTOM_CONV 1
#define SCALES_EDGE_ISA_CUSTOM_GEMM 1

namespace scales_edge {
namespace kernels {
namespace avx512_impl {

struct Ops {
  static constexpr int kLanes = 8;
  static constexpr int kBlock = 4;
  static constexpr int kFlushEvery = 0;
  using Vec = __m512i;
  using Acc = __m512i;  // per-64-bit-lane popcount totals
  static inline Vec broadcast(uint64_t x) { return _mm512_set1_epi64(static_cast<long long>(x)); }
  static inline void zero(Acc& a) { a = _mm512_setzero_si512(); }
  static inline void add(Acc& a, Vec x, const uint64_t* w) {
    a = _mm512_add_epi64(a, _mm512_popcnt_epi64(_mm512_xor_si512(x, _mm512_loadu_si512(w))));
  }
  static inline void flush(Acc&) {}
  static inline void finish(Acc& a, int64_t valid_bits, int32_t* out, int64_t stride) {
    // out = valid - 2*pop, in 64-bit lanes, then narrowed to int32 (|value| < 2^31 by contract).
    // (add and the zero-masked narrowing avoid GCC 12's _mm512_undefined false warnings)
    const __m512i v = _mm512_sub_epi64(_mm512_set1_epi64(valid_bits), _mm512_add_epi64(a, a));
    const __m256i v32 = _mm512_maskz_cvtepi64_epi32(0xff, v);
    if (stride == 1) {
      _mm256_storeu_si256(reinterpret_cast<__m256i*>(out), v32);
    } else {
      alignas(32) int32_t lanes[8];
      _mm256_store_si256(reinterpret_cast<__m256i*>(lanes), v32);
      for (int l = 0; l < 8; ++l) out[l * stride] = lanes[l];
    }
  }
};

#include "pack_avx512.h"
#include "transform_avx2.h"

}  // namespace avx512_impl
}  // namespace kernels
}  // namespace scales_edge

#include "isa_impl.h"

namespace scales_edge {
namespace kernels {

namespace conv_px8_avx512 {  // conv_px8_avx512.cc
bool applies(const ConvGeometry& g);
int64_t scratch_words(const ConvGeometry& g);
void conv_row(const ConvGeometry& g, const uint64_t* x_img, const ConvWeights& cw, int64_t oh,
              int32_t* acc, int64_t ldm, uint64_t* scratch);
void conv_rows_float(const ConvGeometry& g, const uint64_t* x_img, const ConvWeights& cw,
                     int64_t oh0, int64_t oh1, const ConvTransform& t, uint64_t* scratch);
}  // namespace conv_px8_avx512

namespace linear_avx512 {  // linear_avx512.cc
void linear_rows_float(const float* x, const float* beta, const LinearWeights& w,
                       const float* scale, const float* bias, float* y, int64_t begin,
                       int64_t end, uint64_t* words);
void gemm_row(const uint64_t* x, int64_t K, int64_t KW, const uint64_t* w, int64_t Mp,
              int32_t* acc);
}  // namespace linear_avx512

namespace avx512_impl {
static void conv_row_impl(const ConvGeometry& g, const uint64_t* x_img, const ConvWeights& cw,
                          int64_t oh, int32_t* acc, int64_t ldm, uint64_t* scratch) {
  if (conv_px8_avx512::applies(g))
    conv_px8_avx512::conv_row(g, x_img, cw, oh, acc, ldm, scratch);
  else
    conv_row_generic(g, x_img, cw, oh, acc, ldm, scratch);
}
}  // namespace avx512_impl

extern const IsaKernels kAvx512Kernels;
const IsaKernels kAvx512Kernels = {
    Path::kAvx512,
    "avx512",
    false,
    avx512_impl::pack_nchw_row_impl,
    avx512_impl::pack_row_impl,
    avx512_impl::conv_row_impl,
    linear_avx512::gemm_row,
    conv_px8_avx512::scratch_words,
    conv_px8_avx512::applies,
    conv_px8_avx512::conv_rows_float,
    linear_avx512::linear_rows_float,
    avx512_impl::transform_row_impl,
};

}  // namespace kernels
}  // namespace scales_edge
