// Portable path: plain C++, one output channel per "lane", scalar popcount.
// Compiled without any instruction-set flags; always available.
#include <cstdint>

#include "kernels.h"

#define SCALES_EDGE_ISA_NS portable_impl

namespace scales_edge {
namespace kernels {
namespace portable_impl {

// Population count of one word. x86-64 without -mpopcnt would turn __builtin_popcountll into a
// libgcc call, so use the branch-free bit-slicing count there; elsewhere (e.g. AArch64 CNT) the
// builtin is a single instruction or close to it.
static inline int64_t popcount64(uint64_t x) {
#if (defined(__x86_64__) || defined(__i386__)) && !defined(__POPCNT__)
  x = x - ((x >> 1) & 0x5555555555555555ull);
  x = (x & 0x3333333333333333ull) + ((x >> 2) & 0x3333333333333333ull);
  x = (x + (x >> 4)) & 0x0f0f0f0f0f0f0f0full;
  return static_cast<int64_t>((x * 0x0101010101010101ull) >> 56);
#else
  return __builtin_popcountll(x);
#endif
}

struct Ops {
  static constexpr int kLanes = 1;
  static constexpr int kBlock = 8;
  static constexpr int kFlushEvery = 0;
  using Vec = uint64_t;
  using Acc = int64_t;
  static inline Vec broadcast(uint64_t x) { return x; }
  static inline void zero(Acc& a) { a = 0; }
  static inline void add(Acc& a, Vec x, const uint64_t* w) { a += popcount64(x ^ *w); }
  static inline void flush(Acc&) {}
  static inline void finish(Acc& a, int64_t valid_bits, int32_t* out, int64_t /*stride*/) {
    *out = static_cast<int32_t>(valid_bits - 2 * a);
  }
};

}  // namespace portable_impl
}  // namespace kernels
}  // namespace scales_edge

#include "isa_impl.h"

namespace scales_edge {
namespace kernels {

extern const IsaKernels kPortableKernels;
const IsaKernels kPortableKernels = {
    Path::kPortable,
    "portable",
    false,
    portable_impl::pack_nchw_row_impl,
    portable_impl::pack_row_impl,
    portable_impl::conv_row_impl,
    portable_impl::gemm_row_impl,
    nullptr,
    nullptr,
    nullptr,
    nullptr,
    nullptr,
};

}  // namespace kernels
}  // namespace scales_edge
