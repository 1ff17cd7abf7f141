// AVX2 path: 4 output channels per 256-bit vector; popcount with the vpshufb nibble lookup
// (per-byte counts accumulated for up to 31 words, then summed per 64-bit lane with vpsadbw).
// Compiled with -mavx2 -mpopcnt on x86-64 only; selected at run time when the CPU has AVX2.
#include <immintrin.h>

#include <cstdint>

#include "kernels.h"

#define SCALES_EDGE_ISA_NS avx2_impl

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
  static inline void finish(Acc& a, int64_t valid_bits, int32_t* out) {
    flush(a);
    alignas(32) int64_t pop[4];
    _mm256_store_si256(reinterpret_cast<__m256i*>(pop), a.sums);
    for (int l = 0; l < 4; ++l) out[l] = static_cast<int32_t>(valid_bits - 2 * pop[l]);
  }
};

}  // namespace avx2_impl
}  // namespace kernels
}  // namespace scales_edge

#include "isa_impl.h"

namespace scales_edge {
namespace kernels {

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
