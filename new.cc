// AVX-512 binary convolution with output pixels in the vector lanes: 8 adjacent output pixels of
// one output row per 512-bit vector (one 64-bit word each), popcount with VPOPCNTQ.
//
// Per output row, the input rows its valid row taps read are copied into scratch as "planes":
// plane (q, k, f) holds word k of the columns f, f + sW, f + 2*sW, ... of tap row q, with kSlack
// words of zeros on each side. Output pixels ow .. ow+7 then read, for column tap j, the 8
// consecutive plane words starting at ow + b_j of phase f_j (j*dW - pL = sW*b_j + f_j), so every
// stride and dilation is a plain unaligned load. Each such vector meets one weight word per output
// channel, broadcast to all lanes: x XOR w, VPOPCNTQ, add. That is three vector instructions per
// 8 word pairs, the least any XOR-popcount form needs (a Harley-Seal carry-save tree costs as many
// here: VPOPCNTQ runs at the rate of the XOR and the add on Zen 4), so the kernel is about feeding
// them: a block keeps MB channels x PB vectors of accumulators in registers, loads each input
// vector once per block and each weight word once per channel and tap.
//
// Pixels whose taps all fall inside the input ("interior") run the blocked loop; the others, at
// most a few per row for ordinary pads, run one vector at a time with a mask per column tap (a
// masked-out lane adds nothing and its valid-bit count leaves that tap out), which is the exact
// zero padding of docs/ops.md. Compiled with the AVX-512 flags (x86-64 only), used by avx512.cc.
#include <immintrin.h>

#include <cstdint>

#include "kernels.h"
#include "taps.h"

namespace scales_edge {
namespace kernels {
namespace conv_px8_avx512 {

namespace {

constexpr int64_t kSlack = 8;      // zero words on each side of a plane
constexpr int64_t kMaxStride = 4;  // wider column strides: the channels-in-lanes kernel
constexpr int64_t kMaxKw = 64;     // wider kernels: the channels-in-lanes kernel
#ifndef XMB
#define XMB 8
#define XPB 2
#endif
constexpr int kMB = XMB;             // channels per register block (divides kChannelPad)
constexpr int kPB = XPB;             // vectors of 8 pixels per register block (even)

// Where the relaid rows of one output row live.
struct Planes {
  const uint64_t* base;  // plane (q, k, f) at base + ((q*CW + k)*sW + f)*stride
  int64_t stride;        // words per plane: kSlack + ceil(W/sW) + kSlack
  int64_t row_words;     // words per tap row: CW*sW*stride
  int64_t k_words;       // words per input word k: sW*stride
  // tap_off[j]: offset of column tap j's first word for output pixel 0 within a row's word-0
  // planes: f_j*stride + kSlack + b_j.
  int64_t tap_off[kMaxKw];
};

inline int64_t plane_stride(const ConvGeometry& g) { return ceil_div(g.W, g.sW) + 2 * kSlack; }

// Columns of phase f: f, f + sW, ... < W.
inline int64_t phase_cols(const ConvGeometry& g, int64_t f) {
  return f < g.W ? ceil_div(g.W - f, g.sW) : 0;
}

// Copies the valid tap rows [i0, i1) of output row oh into planes at scratch.
void build_planes(const ConvGeometry& g, const uint64_t* x_img, int64_t ih0, int64_t i0,
                  int64_t i1, uint64_t* scratch, Planes* pl) {
  const int64_t CW = g.CW, sW = g.sW, W = g.W, stride = plane_stride(g);
  pl->base = scratch;
  pl->stride = stride;
  pl->k_words = sW * stride;
  pl->row_words = CW * sW * stride;
  for (int64_t j = 0; j < g.kW; ++j) {
    const int64_t off = j * g.dW - g.pL;
    const int64_t b = floor_div(off, sW), f = off - b * sW;
    pl->tap_off[j] = f * stride + kSlack + b;
  }
  for (int64_t i = i0; i < i1; ++i) {
    const uint64_t* src = x_img + (ih0 + i * g.dH) * W * CW;
    for (int64_t k = 0; k < CW; ++k)
      for (int64_t f = 0; f < sW; ++f) {
        uint64_t* dst = scratch + (((i - i0) * CW + k) * sW + f) * stride;
        const int64_t n = phase_cols(g, f);
        for (int64_t c = 0; c < kSlack; ++c) dst[c] = 0;
        const uint64_t* s = src + f * CW + k;
        uint64_t* d = dst + kSlack;
        if (CW == 1 && sW == 1) {
          for (int64_t c = 0; c < n; ++c) d[c] = s[c];
        } else {
          for (int64_t c = 0; c < n; ++c) d[c] = s[c * sW * CW];
        }
        for (int64_t c = kSlack + n; c < stride; ++c) dst[c] = 0;
      }
  }
}

// valid - 2*pop per 64-bit lane, narrowed to int32 and stored: the masked lanes of one vector,
// or two vectors (16 pixels) at once.
inline void store8_masked(int32_t* out, __mmask8 lanes, __m512i valid, __m512i pop) {
  const __m512i v = _mm512_sub_epi64(valid, _mm512_add_epi64(pop, pop));
  _mm512_mask_cvtepi64_storeu_epi32(out, lanes, v);
}
inline void store16(int32_t* out, __m512i valid32, __m512i pop0, __m512i pop1) {
  // The low dword of every lane (a count < 2^31) of pop0, then of pop1.
  const __m512i even = _mm512_set_epi32(30, 28, 26, 24, 22, 20, 18, 16, 14, 12, 10, 8, 6, 4, 2, 0);
  const __m512i pop = _mm512_permutex2var_epi32(pop0, even, pop1);
  _mm512_storeu_si512(out, _mm512_sub_epi32(valid32, _mm512_add_epi32(pop, pop)));
}

// One tap word of a register block: acc[m][p] (=, or += when kAdd) popcount(x[p] ^ w[m]) for the
// PB input vectors at xk and the MB weight words at wk.
template <int MB, int PB, bool kAdd>
inline void block_word(__m512i (&acc)[MB][PB], const uint64_t* xk, const uint64_t* wk) {
  __m512i x[PB];
  for (int p = 0; p < PB; ++p) x[p] = _mm512_loadu_si512(xk + 8 * p);
  for (int m = 0; m < MB; ++m) {
    const __m512i wb = _mm512_set1_epi64(static_cast<long long>(wk[m]));
    for (int p = 0; p < PB; ++p) {
      const __m512i pop = _mm512_popcnt_epi64(_mm512_xor_si512(x[p], wb));
      acc[m][p] = kAdd ? _mm512_add_epi64(acc[m][p], pop) : pop;
    }
  }
}

// Accumulators of interior pixels [ow0, ow0 + 8*PB) x channels [m0, m0 + MB) (w and out already
// at m0), stored as int32. KW, CWN: the kernel width and words per pixel when fixed at compile
// time (0: from g). PB is even: pixels are stored 16 at a time.
template <int MB, int PB, int KW, int CWN>
inline void interior_block(const ConvGeometry& g, const Planes& pl, const uint64_t* w,
                           int64_t i0, int64_t i1, int64_t ow0, __m512i full32, int32_t* out,
                           int64_t ldm) {
  static_assert(PB % 2 == 0, "pixels are stored in pairs of vectors");
  const int64_t kW = KW ? KW : g.kW;
  const int64_t CW = CWN ? CWN : g.CW;
  const int64_t Mp = g.Mp;
  const int64_t tap_w = CW * Mp;  // weight words per tap
  __m512i acc[MB][PB];
  // Tap row i0: its first word sets the accumulators.
  {
    const uint64_t* xrow = pl.base + ow0;
    const uint64_t* wrow = w + i0 * kW * tap_w;
    block_word<MB, PB, false>(acc, xrow + pl.tap_off[0], wrow);
    for (int64_t k = 1; k < CW; ++k)
      block_word<MB, PB, true>(acc, xrow + pl.tap_off[0] + k * pl.k_words, wrow + k * Mp);
    for (int64_t j = 1; j < kW; ++j)
      for (int64_t k = 0; k < CW; ++k)
        block_word<MB, PB, true>(acc, xrow + pl.tap_off[j] + k * pl.k_words,
                                 wrow + j * tap_w + k * Mp);
  }
  for (int64_t i = i0 + 1; i < i1; ++i) {
    const uint64_t* xrow = pl.base + (i - i0) * pl.row_words + ow0;
    const uint64_t* wrow = w + i * kW * tap_w;
    for (int64_t j = 0; j < kW; ++j)
      for (int64_t k = 0; k < CW; ++k)
        block_word<MB, PB, true>(acc, xrow + pl.tap_off[j] + k * pl.k_words,
                                 wrow + j * tap_w + k * Mp);
  }
  for (int m = 0; m < MB; ++m)
    for (int p = 0; p < PB; p += 2)
      store16(out + m * ldm + ow0 + 8 * p, full32, acc[m][p], acc[m][p + 1]);
}

// One vector of pixels [ow0, ow0 + 8) of which `lanes` are written, any of whose taps may lie in
// the padding; channels [m0, m0 + MB).
template <int MB>
inline void border_vector(const ConvGeometry& g, const Planes& pl, const uint64_t* w, int64_t i0,
                          int64_t i1, int64_t ow0, __mmask8 lanes, int32_t* out, int64_t ldm) {
  const int64_t CW = g.CW, Mp = g.Mp, kW = g.kW;
  // Column taps valid for some written lane: the union over the first and last lane.
  int64_t last = ow0 + 7;
  while (last > ow0 && !((lanes >> (last - ow0)) & 1)) --last;
  int64_t ja, jb, jc, jd;
  valid_taps(ow0 * g.sW - g.pL, g.dW, kW, g.W, &ja, &jb);
  valid_taps(last * g.sW - g.pL, g.dW, kW, g.W, &jc, &jd);
  // (an empty range may sit past kW: leave it out of the union)
  const int64_t j0 = ja == jb ? jc : jc == jd ? ja : imin(ja, jc);
  const int64_t j1 = ja == jb ? jd : jc == jd ? jb : imax(jb, jd);
  const __m512i col0 =
      _mm512_mullo_epi64(_mm512_add_epi64(_mm512_set1_epi64(ow0),
                                          _mm512_set_epi64(7, 6, 5, 4, 3, 2, 1, 0)),
                         _mm512_set1_epi64(g.sW));
  const __m512i width = _mm512_set1_epi64(g.W);
  __m512i acc[MB];
  for (int m = 0; m < MB; ++m) acc[m] = _mm512_setzero_si512();
  __m512i taps = _mm512_setzero_si512();  // valid column taps per lane
  const __m512i one = _mm512_set1_epi64(1);
  for (int64_t j = j0; j < j1; ++j) {
    const __m512i col = _mm512_add_epi64(col0, _mm512_set1_epi64(j * g.dW - g.pL));
    const __mmask8 valid = lanes & _mm512_cmpge_epi64_mask(col, _mm512_setzero_si512()) &
                           _mm512_cmplt_epi64_mask(col, width);
    if (!valid) continue;
    taps = _mm512_mask_add_epi64(taps, valid, taps, one);
    for (int64_t i = i0; i < i1; ++i) {
      const uint64_t* xj = pl.base + (i - i0) * pl.row_words + ow0 + pl.tap_off[j];
      const uint64_t* wj = w + (i * kW + j) * CW * Mp;
      for (int64_t k = 0; k < CW; ++k) {
        // In bounds: some lane is valid, so the load starts within 7 words of the plane's data.
        const __m512i x = _mm512_loadu_si512(xj + k * pl.k_words);
        for (int m = 0; m < MB; ++m) {
          const __m512i wb = _mm512_set1_epi64(static_cast<long long>(wj[k * Mp + m]));
          acc[m] = _mm512_add_epi64(acc[m],
                                    _mm512_maskz_popcnt_epi64(valid, _mm512_xor_si512(x, wb)));
        }
      }
    }
  }
  const __m512i valid_bits = _mm512_mullo_epi64(taps, _mm512_set1_epi64((i1 - i0) * g.C));
  for (int m = 0; m < MB; ++m) store8_masked(out + m * ldm + ow0, lanes, valid_bits, acc[m]);
}

template <int KW, int CWN>
void conv_row_t(const ConvGeometry& g, const Planes& pl, const uint64_t* w, int64_t i0,
                int64_t i1, int32_t* acc, int64_t ldm) {
  const int64_t OW = g.OW;
  // Interior: every column tap of every lane inside the input, from the first multiple of 8 at
  // or past the first such pixel; the vectors before and after it take the masks.
  const int64_t lo = imin(OW, round_up(ceil_div(g.pL, g.sW), 8));
  int64_t hi = imin(OW, ceil_div(g.W + g.pL - (g.kW - 1) * g.dW, g.sW));
  if (hi < lo) hi = lo;
  const __m512i full32 = _mm512_set1_epi32(static_cast<int>((i1 - i0) * g.kW * g.C));
  constexpr int64_t kBlockPx = 8 * kPB;
  const int64_t blocks_end = lo + (hi - lo) / kBlockPx * kBlockPx;
  for (int64_t m0 = 0; m0 < g.Mp; m0 += kMB) {
    const uint64_t* wm = w + m0;
    int32_t* out = acc + m0 * ldm;
    for (int64_t ow0 = 0; ow0 < lo; ow0 += 8)
      border_vector<kMB>(g, pl, wm, i0, i1, ow0, static_cast<__mmask8>(0xff >> imax(0, ow0 + 8 - lo)),
                         out, ldm);
    for (int64_t ow0 = lo; ow0 < blocks_end; ow0 += kBlockPx)
      interior_block<kMB, kPB, KW, CWN>(g, pl, wm, i0, i1, ow0, full32, out, ldm);
    for (int64_t ow0 = blocks_end; ow0 < OW; ow0 += 8)
      border_vector<kMB>(g, pl, wm, i0, i1, ow0, static_cast<__mmask8>(0xff >> imax(0, ow0 + 8 - OW)),
                         out, ldm);
  }
}

}  // namespace

bool applies(const ConvGeometry& g) { return g.sW <= kMaxStride && g.kW <= kMaxKw; }

int64_t scratch_words(const ConvGeometry& g) {
  if (!applies(g)) return 0;
  // At most min(kH, H) tap rows are valid for one output row.
  return imin(g.kH, g.H) * g.CW * g.sW * plane_stride(g);
}

void conv_row(const ConvGeometry& g, const uint64_t* x_img, const ConvWeights& cw, int64_t oh,
              int32_t* acc, int64_t ldm, uint64_t* scratch) {
  const int64_t ih0 = oh * g.sH - g.pT;
  int64_t i0, i1;
  valid_taps(ih0, g.dH, g.kH, g.H, &i0, &i1);
  if (i0 == i1) {  // every tap in the padding
    for (int64_t m = 0; m < g.Mp; ++m)
      for (int64_t ow = 0; ow < g.OW; ++ow) acc[m * ldm + ow] = 0;
    return;
  }
  Planes pl;
  build_planes(g, x_img, ih0, i0, i1, scratch, &pl);
  const uint64_t* w = cw.data.data();
  if (g.kW == 3 && g.CW == 1)
    conv_row_t<3, 1>(g, pl, w, i0, i1, acc, ldm);
  else if (g.kW == 3)
    conv_row_t<3, 0>(g, pl, w, i0, i1, acc, ldm);
  else if (g.kW == 1 && g.CW == 1)
    conv_row_t<1, 1>(g, pl, w, i0, i1, acc, ldm);
  else
    conv_row_t<0, 0>(g, pl, w, i0, i1, acc, ldm);
}

}  // namespace conv_px8_avx512
}  // namespace kernels
}  // namespace scales_edge
