// NEON binary convolution with output pixels in the vector lanes: 2 adjacent output pixels of one
// output row per 128-bit vector (one 64-bit word each), for the interior pixels of a row (every
// tap inside the input); neon.cc runs the few border pixels with the channels-in-lanes kernel.
//
// The input rows are laid out as in conv_planes.h, so a vector of pixels for any tap is one
// unaligned load, and it meets one weight word per output channel (vld1q_dup: load and broadcast
// in one instruction). A word pair then costs EOR, CNT (per-byte counts) and UADALP (pairwise add
// into 16-bit lanes, 4 per pixel), the same three instructions per vector as the channels-in-lanes
// kernel, but a register block of 4 channels x 4 vectors (8 pixels) loads each input vector once
// per 4 channels and each weight once per 8 pixels, and its results leave as whole rows: two
// pairwise adds turn 4 vectors of 16-bit counts into 8 pixels' totals, stored 4 int32 at a time
// into the channel's row (no per-pixel scatter into the channel-major row buffer). A block holds
// at most 4095 tap words (16-bit lanes take 16 per word); longer reductions use the other kernel.
// Compiled on AArch64 only (Advanced SIMD is part of the base ISA), used by neon.cc. Checked for
// exactness under qemu here; its speed has not been measured on a real AArch64 core.
#if defined(__AARCH64EB__)
#error "conv_px2_neon.cc assumes little-endian AArch64 (the packed words are little-endian)"
#endif
#include <arm_neon.h>

#include <cstdint>

#include "conv_planes.h"
#include "kernels.h"
#include "taps.h"

namespace scales_edge {
namespace kernels {
namespace conv_px2_neon {

namespace {

constexpr int kMB = 4;                  // channels per register block (divides kChannelPad)
constexpr int kPV = 4;                  // vectors of 2 pixels per register block
constexpr int64_t kBlockPx = 2 * kPV;   // pixels per block
constexpr int64_t kMaxTapWords = 4095;  // 16-bit lanes take at most 16 per tap word

// Pixels [ow0, ow0 + 8) x channels [m0, m0 + 4) of a row whose every tap is inside the input.
template <int KW, int CWN>
inline void interior_block(const ConvGeometry& g, const Taps& taps, const Row& row,
                           const uint64_t* w, int64_t m0, int64_t ow0, int32_t full, int32_t* acc,
                           int64_t ldm) {
  const int64_t kW = KW ? KW : g.kW;
  const int64_t CW = CWN ? CWN : g.CW;
  const int64_t Mp = g.Mp;
  uint16x8_t a[kMB][kPV];
  for (int m = 0; m < kMB; ++m)
    for (int p = 0; p < kPV; ++p) a[m][p] = vdupq_n_u16(0);
  for (int64_t i = row.i0; i < row.i1; ++i) {
    const uint64_t* xrow = row.planes + (i - row.i0) * taps.row_words + ow0;
    const uint64_t* wrow = w + m0 + i * kW * CW * Mp;
    for (int64_t j = 0; j < kW; ++j)
      for (int64_t k = 0; k < CW; ++k) {
        const uint64_t* xk = xrow + taps.tap_off[j] + k * taps.k_words;
        const uint64_t* wk = wrow + (j * CW + k) * Mp;
        uint8x16_t x[kPV];
        for (int p = 0; p < kPV; ++p) x[p] = vreinterpretq_u8_u64(vld1q_u64(xk + 2 * p));
        for (int m = 0; m < kMB; ++m) {
          const uint8x16_t wb = vreinterpretq_u8_u64(vld1q_dup_u64(wk + m));
          for (int p = 0; p < kPV; ++p) a[m][p] = vpadalq_u8(a[m][p], vcntq_u8(veorq_u8(x[p], wb)));
        }
      }
  }
  const int32x4_t vfull = vdupq_n_s32(full);
  for (int m = 0; m < kMB; ++m) {
    uint32x4_t s[kPV];  // [pixel 2p: 2 halves, pixel 2p+1: 2 halves]
    for (int p = 0; p < kPV; ++p) s[p] = vpaddlq_u16(a[m][p]);
    int32_t* out = acc + (m0 + m) * ldm + ow0;
    for (int h = 0; h < kPV / 2; ++h) {  // pixels 4h .. 4h+3
      const uint32x4_t pop = vpaddq_u32(s[2 * h], s[2 * h + 1]);
      vst1q_s32(out + 4 * h, vsubq_s32(vfull, vreinterpretq_s32_u32(vshlq_n_u32(pop, 1))));
    }
  }
}

template <int KW, int CWN>
void interior_t(const ConvGeometry& g, const Taps& taps, const Row& row, const uint64_t* w,
                int64_t lo, int64_t end, int32_t* acc, int64_t ldm) {
  const int32_t full = static_cast<int32_t>((row.i1 - row.i0) * g.kW * g.C);
  for (int64_t m0 = 0; m0 < g.Mp; m0 += kMB)
    for (int64_t ow0 = lo; ow0 < end; ow0 += kBlockPx)
      interior_block<KW, CWN>(g, taps, row, w, m0, ow0, full, acc, ldm);
}

}  // namespace

bool applies(const ConvGeometry& g) { return planes_apply(g); }

int64_t scratch_words(const ConvGeometry& g) { return applies(g) ? row_planes_words(g) : 0; }

void interior(const ConvGeometry& g, const uint64_t* x_img, const ConvWeights& cw, int64_t oh,
              int32_t* acc, int64_t ldm, uint64_t* scratch, int64_t* lo, int64_t* end) {
  *lo = *end = 0;
  // Interior pixels: every column tap of every pixel inside the input.
  const int64_t first = imin(g.OW, ceil_div(g.pL, g.sW));
  const int64_t hi = imin(g.OW, ceil_div(g.W + g.pL - (g.kW - 1) * g.dW, g.sW));
  if (hi - first < kBlockPx) return;
  Taps taps;
  make_taps(g, &taps);
  const Row row = build_row(g, taps, x_img, oh, scratch);
  if (row.i0 == row.i1 || (row.i1 - row.i0) * g.kW * g.CW > kMaxTapWords) return;
  *lo = first;
  *end = first + (hi - first) / kBlockPx * kBlockPx;
  const uint64_t* w = cw.data.data();
  if (g.kW == 3 && g.CW == 1)
    interior_t<3, 1>(g, taps, row, w, *lo, *end, acc, ldm);
  else if (g.kW == 3)
    interior_t<3, 0>(g, taps, row, w, *lo, *end, acc, ldm);
  else
    interior_t<0, 0>(g, taps, row, w, *lo, *end, acc, ldm);
}

}  // namespace conv_px2_neon
}  // namespace kernels
}  // namespace scales_edge
