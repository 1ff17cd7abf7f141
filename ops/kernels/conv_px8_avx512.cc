// AVX-512 binary convolution with output pixels in the vector lanes: 8 adjacent output pixels of
// one output row per 512-bit vector (one 64-bit word each), popcount with VPOPCNTQ.
//
// Per output row, the input rows its valid row taps read are copied into scratch as the planes of
// conv_planes.h, so output pixels ow .. ow+7 read, for column tap j, 8 consecutive plane words
// whatever the stride and dilation: a plain unaligned load. Each such vector meets one weight word
// per output channel, broadcast to all lanes: x XOR w, VPOPCNTQ, add. That is three vector
// instructions per 8 word pairs, the least any XOR-popcount form needs (a Harley-Seal carry-save
// tree costs as many here: VPOPCNTQ runs at the rate of the XOR and the add on Zen 4), so the
// kernel is about feeding them: a block keeps MB channels x PB vectors of accumulators in
// registers, loads each input vector once per block and each weight word once per channel and tap.
//
// Pixels whose taps all fall inside the input ("interior") run the blocked loop; the others, at
// most a few per row for ordinary pads, run one vector at a time with a mask per column tap (a
// masked-out lane adds nothing and its valid-bit count leaves that tap out), which is the exact
// zero padding of docs/ops.md. The results leave either as int32 rows (conv_row) or through the
// float output transform (conv_rows_float: 8 output rows laid out at a time, each channel block
// run over all of them, the skip and output lines prefetched a few ahead). Compiled with the
// AVX-512 flags (x86-64 only), used by avx512.cc.
#include <immintrin.h>

#include <cstdint>

#include "conv_planes.h"
#include "kernels.h"
#include "taps.h"

namespace scales_edge {
namespace kernels {
namespace conv_px8_avx512 {

namespace {

constexpr int kMB = 8;             // channels per register block (divides kChannelPad)
constexpr int kPB = 2;             // vectors of 8 pixels per register block (even)
constexpr int64_t kChunkRows = 8;  // output rows laid out at a time by conv_rows_float

// Where the accumulators of one output row go, as int32 values valid - 2*pop: 16 pixels
// [ow, ow + 16) of channel m (store16), or the `lanes` of 8 pixels [ow, ow + 8) (store8).
// Int32Out: the int32 row of IsaKernels::conv_row (every channel < Mp).
struct Int32Out {
  int32_t* acc;
  int64_t ldm;
  void store16(int64_t m, int64_t ow, __m512i v) const {
    _mm512_storeu_si512(acc + m * ldm + ow, v);
  }
  void store8(int64_t m, int64_t ow, __mmask8 lanes, __m256i v) const {
    _mm256_mask_storeu_epi32(acc + m * ldm + ow, lanes, v);
  }
};

// FloatOut: row oh of the float output transform t (channels < M), the float32 operations of
// drivers.cc's scalar transform in the same order (no FMA: -ffp-contract=off), so the same bits.
// The skip input and the output are prefetched a few lines ahead of each channel's stores: the
// 16 row streams of a channel block are too many for the hardware prefetchers (measured: 3.8 ms
// instead of 5.6 ms for 64->64 at 180x320).
template <bool kSpatial, bool kSkip>
struct FloatOut {
  static constexpr int64_t kAhead = 64;  // floats
  const ConvTransform& t;
  int64_t M;
  const float* s_row;  // this row's S
  const float* skip;   // this row of channel 0 of the skip input
  float* y;            // this row of channel 0 of the output
  FloatOut(const ConvTransform& tr, int64_t m, int64_t row)
      : t(tr), M(m), s_row(tr.s ? tr.s + row * tr.s_row_stride : nullptr),
        skip(tr.skip ? tr.skip + row * tr.skip_row_stride : nullptr),
        y(tr.y + row * tr.y_row_stride) {}
  void store16(int64_t m, int64_t ow, __m512i v) const {
    if (m >= M) return;
    __m512 f = _mm512_maskz_cvtepi32_ps(0xffff, v);  // (masked: GCC 12 warns on the plain one)
    f = _mm512_mul_ps(f, _mm512_set1_ps(t.scale[m]));
    f = _mm512_add_ps(f, _mm512_set1_ps(t.bias ? t.bias[m] : 0.0f));
    if (kSpatial) f = _mm512_mul_ps(f, _mm512_loadu_ps(s_row + ow));
    f = _mm512_mul_ps(f, _mm512_set1_ps(t.cs ? t.cs[m] : 1.0f));
    if (kSkip) {
      const float* src = skip + m * t.skip_ldm + ow;
      _mm_prefetch(reinterpret_cast<const char*>(src + kAhead), _MM_HINT_T0);
      f = _mm512_add_ps(f, _mm512_loadu_ps(src));
    }
    float* dst = y + m * t.y_ldm + ow;
    _mm_prefetch(reinterpret_cast<const char*>(dst + kAhead), _MM_HINT_T0);
    _mm512_storeu_ps(dst, f);
  }
  void store8(int64_t m, int64_t ow, __mmask8 lanes, __m256i v) const {
    if (m >= M) return;
    __m256 f = _mm256_cvtepi32_ps(v);
    f = _mm256_mul_ps(f, _mm256_set1_ps(t.scale[m]));
    f = _mm256_add_ps(f, _mm256_set1_ps(t.bias ? t.bias[m] : 0.0f));
    if (kSpatial) f = _mm256_mul_ps(f, _mm256_maskz_loadu_ps(lanes, s_row + ow));
    f = _mm256_mul_ps(f, _mm256_set1_ps(t.cs ? t.cs[m] : 1.0f));
    if (kSkip) f = _mm256_add_ps(f, _mm256_maskz_loadu_ps(lanes, skip + m * t.skip_ldm + ow));
    _mm256_mask_storeu_ps(y + m * t.y_ldm + ow, lanes, f);
  }
};

// valid32 - 2*pop for 16 pixels: the low dword of every 64-bit lane (a count < 2^31) of pop0,
// then of pop1.
inline __m512i values16(__m512i valid32, __m512i pop0, __m512i pop1) {
  const __m512i even = _mm512_set_epi32(30, 28, 26, 24, 22, 20, 18, 16, 14, 12, 10, 8, 6, 4, 2, 0);
  const __m512i pop = _mm512_permutex2var_epi32(pop0, even, pop1);
  return _mm512_sub_epi32(valid32, _mm512_add_epi32(pop, pop));
}

// Accumulators of interior pixels [ow0, ow0 + 8*PB) x channels [m0, m0 + MB) (w already at m0),
// handed to out: the first tap word sets them, the others add (a flag in a predictable branch:
// measured faster on Zen 4 than adding to zeros or peeling the first word). KW, CWN: the kernel
// width and words per pixel when fixed at compile time (0: from g). PB is even: pixels leave 16
// at a time.
template <int MB, int PB, int KW, int CWN, class Out>
inline void interior_block(const ConvGeometry& g, const Taps& pl, const Row& row,
                           const uint64_t* w, int64_t m0, int64_t ow0, __m512i full32,
                           const Out& out) {
  const int64_t i0 = row.i0, i1 = row.i1;
  static_assert(PB % 2 == 0, "pixels are stored in pairs of vectors");
  const int64_t kW = KW ? KW : g.kW;
  const int64_t CW = CWN ? CWN : g.CW;
  const int64_t Mp = g.Mp;
  __m512i acc[MB][PB];
  for (int m = 0; m < MB; ++m)
    for (int p = 0; p < PB; ++p) acc[m][p] = _mm512_setzero_si512();  // (set by the first word)
  bool first = true;
  for (int64_t i = i0; i < i1; ++i) {
    const uint64_t* xrow = row.planes + (i - i0) * pl.row_words + ow0;
    const uint64_t* wrow = w + i * kW * CW * Mp;
    for (int64_t j = 0; j < kW; ++j) {
      const uint64_t* xj = xrow + pl.tap_off[j];
      const uint64_t* wj = wrow + j * CW * Mp;
      for (int64_t k = 0; k < CW; ++k) {
        const uint64_t* xk = xj + k * pl.k_words;
        const uint64_t* wk = wj + k * Mp;
        __m512i x[PB];
        for (int p = 0; p < PB; ++p) x[p] = _mm512_loadu_si512(xk + 8 * p);
        for (int m = 0; m < MB; ++m) {
          const __m512i wb = _mm512_set1_epi64(static_cast<long long>(wk[m]));
          for (int p = 0; p < PB; ++p) {
            const __m512i pop = _mm512_popcnt_epi64(_mm512_xor_si512(x[p], wb));
            acc[m][p] = first ? pop : _mm512_add_epi64(acc[m][p], pop);
          }
        }
        first = false;
      }
    }
  }
  for (int m = 0; m < MB; ++m)
    for (int p = 0; p < PB; p += 2)
      out.store16(m0 + m, ow0 + 8 * p, values16(full32, acc[m][p], acc[m][p + 1]));
}

// One vector of pixels [ow0, ow0 + 8) of which `lanes` are written, any of whose taps may lie in
// the padding; channels [m0, m0 + MB) (w already at m0).
template <int MB, class Out>
inline void border_vector(const ConvGeometry& g, const Taps& pl, const Row& row,
                          const uint64_t* w, int64_t m0, int64_t ow0, __mmask8 lanes,
                          const Out& out) {
  const int64_t i0 = row.i0, i1 = row.i1;
  const int64_t CW = g.CW, Mp = g.Mp, kW = g.kW;
  // Column taps valid for some written lane ow in [ow0, last]:
  // 0 <= ow*sW + j*dW - pL < W for some such ow.
  int64_t last = ow0 + 7;
  while (last > ow0 && !((lanes >> (last - ow0)) & 1)) --last;
  const int64_t j0 = imax(0, ceil_div(g.pL - last * g.sW, g.dW));
  const int64_t j1 = imin(kW, floor_div(g.pL - ow0 * g.sW + g.W - 1, g.dW) + 1);
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
      const uint64_t* xj = row.planes + (i - i0) * pl.row_words + ow0 + pl.tap_off[j];
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
  for (int m = 0; m < MB; ++m) {
    const __m512i v = _mm512_sub_epi64(valid_bits, _mm512_add_epi64(acc[m], acc[m]));
    // (the zero-masked narrowing: GCC 12 warns about the unmasked one's undefined source)
    out.store8(m0 + m, ow0, lanes, _mm512_maskz_cvtepi64_epi32(0xff, v));
  }
}

// Channels [m0, m0 + kMB) of one output row with at least one valid tap row.
template <int KW, int CWN, class Out>
void block_row(const ConvGeometry& g, const Taps& taps, const Row& row, const uint64_t* w,
               int64_t m0, const Out& out) {
  const int64_t OW = g.OW;
  // Interior: every column tap of every lane inside the input, from the first multiple of 8 at
  // or past the first such pixel; the vectors before and after it take the masks.
  const int64_t lo = imin(OW, round_up(ceil_div(g.pL, g.sW), 8));
  int64_t hi = imin(OW, ceil_div(g.W + g.pL - (g.kW - 1) * g.dW, g.sW));
  if (hi < lo) hi = lo;
  const __m512i full32 = _mm512_set1_epi32(static_cast<int>((row.i1 - row.i0) * g.kW * g.C));
  constexpr int64_t kBlockPx = 8 * kPB;
  const int64_t blocks_end = lo + (hi - lo) / kBlockPx * kBlockPx;
  const uint64_t* wm = w + m0;
  for (int64_t ow0 = 0; ow0 < lo; ow0 += 8)
    border_vector<kMB>(g, taps, row, wm, m0, ow0,
                       static_cast<__mmask8>(0xff >> imax(0, ow0 + 8 - lo)), out);
  for (int64_t ow0 = lo; ow0 < blocks_end; ow0 += kBlockPx)
    interior_block<kMB, kPB, KW, CWN>(g, taps, row, wm, m0, ow0, full32, out);
  for (int64_t ow0 = blocks_end; ow0 < OW; ow0 += 8)
    border_vector<kMB>(g, taps, row, wm, m0, ow0,
                       static_cast<__mmask8>(0xff >> imax(0, ow0 + 8 - OW)), out);
}

// Channels [m0, m0 + kMB) of a row with no valid tap row: every accumulator is 0.
template <class Out>
void zero_block_row(const ConvGeometry& g, int64_t m0, const Out& out) {
  for (int64_t m = m0; m < m0 + kMB; ++m)
    for (int64_t ow0 = 0; ow0 < g.OW; ow0 += 8)
      out.store8(m, ow0, static_cast<__mmask8>(0xff >> imax(0, ow0 + 8 - g.OW)),
                 _mm256_setzero_si256());
}

// Output rows [oh0, oh1), kChunkRows at a time: the chunk's rows are laid out into planes, then
// each channel block runs over all of them, so that the output (and skip) rows a block touches
// form a few long runs per channel rather than many short ones. out_at(row) is the Out of output
// row oh0 + row.
template <int KW, int CWN, class OutAt>
void conv_rows_t(const ConvGeometry& g, const uint64_t* x_img, const uint64_t* w, int64_t oh0,
                 int64_t oh1, uint64_t* scratch, const OutAt& out_at) {
  Taps taps;
  make_taps(g, &taps);
  const int64_t row_words = row_planes_words(g);
  Row rows[kChunkRows];
  for (int64_t c0 = oh0; c0 < oh1; c0 += kChunkRows) {
    const int64_t n = imin(kChunkRows, oh1 - c0);
    for (int64_t r = 0; r < n; ++r)
      rows[r] = build_row(g, taps, x_img, c0 + r, scratch + r * row_words);
    for (int64_t m0 = 0; m0 < g.Mp; m0 += kMB)
      for (int64_t r = 0; r < n; ++r) {
        const auto out = out_at(c0 + r - oh0);
        if (rows[r].i0 < rows[r].i1)
          block_row<KW, CWN>(g, taps, rows[r], w, m0, out);
        else
          zero_block_row(g, m0, out);
      }
  }
}

template <class OutAt>
void conv_rows_out(const ConvGeometry& g, const uint64_t* x_img, const ConvWeights& cw,
                   int64_t oh0, int64_t oh1, uint64_t* scratch, const OutAt& out_at) {
  const uint64_t* w = cw.data.data();
  if (g.kW == 3 && g.CW == 1)
    conv_rows_t<3, 1>(g, x_img, w, oh0, oh1, scratch, out_at);
  else if (g.kW == 3 && g.CW == 2)
    conv_rows_t<3, 2>(g, x_img, w, oh0, oh1, scratch, out_at);
  else if (g.kW == 3)
    conv_rows_t<3, 0>(g, x_img, w, oh0, oh1, scratch, out_at);
  else if (g.kW == 1 && g.CW == 1)
    conv_rows_t<1, 1>(g, x_img, w, oh0, oh1, scratch, out_at);
  else
    conv_rows_t<0, 0>(g, x_img, w, oh0, oh1, scratch, out_at);
}

template <bool kSpatial, bool kSkip>
void conv_rows_float_t(const ConvGeometry& g, const uint64_t* x_img, const ConvWeights& cw,
                       int64_t oh0, int64_t oh1, const ConvTransform& t, uint64_t* scratch) {
  conv_rows_out(g, x_img, cw, oh0, oh1, scratch, [&](int64_t row) {
    return FloatOut<kSpatial, kSkip>(t, g.M, row);
  });
}

}  // namespace

bool applies(const ConvGeometry& g) { return planes_apply(g); }

int64_t scratch_words(const ConvGeometry& g) {
  if (!applies(g)) return 0;
  // The planes of kChunkRows output rows, each at most min(kH, H) tap rows.
  return kChunkRows * row_planes_words(g);
}

void conv_row(const ConvGeometry& g, const uint64_t* x_img, const ConvWeights& cw, int64_t oh,
              int32_t* acc, int64_t ldm, uint64_t* scratch) {
  conv_rows_out(g, x_img, cw, oh, oh + 1, scratch, [&](int64_t) { return Int32Out{acc, ldm}; });
}

void conv_rows_float(const ConvGeometry& g, const uint64_t* x_img, const ConvWeights& cw,
                     int64_t oh0, int64_t oh1, const ConvTransform& t, uint64_t* scratch) {
  if (t.s) {
    if (t.skip) conv_rows_float_t<true, true>(g, x_img, cw, oh0, oh1, t, scratch);
    else conv_rows_float_t<true, false>(g, x_img, cw, oh0, oh1, t, scratch);
  } else {
    if (t.skip) conv_rows_float_t<false, true>(g, x_img, cw, oh0, oh1, t, scratch);
    else conv_rows_float_t<false, false>(g, x_img, cw, oh0, oh1, t, scratch);
  }
}

}  // namespace conv_px8_avx512
}  // namespace kernels
}  // namespace scales_edge
