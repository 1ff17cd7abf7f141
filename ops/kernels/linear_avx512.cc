// AVX-512 BinaryLinear: output channels in the lanes (8 per 512-bit vector, popcount with
// VPOPCNTQ), 16 channels per step so that two vectors of counts narrow into one vector of int32
// (one permute).
//
// linear_rows_float runs a whole token in registers: binarize+pack its K floats (pack_avx512.h: a
// compare per 16 features straight into a mask register, 4 make a 64-bit word), XOR-popcount against
// every output channel's weights, and the output transform float(acc) * scale + bias, so each
// token's input is read once and its output written once (BinaryLinear moves little else: its
// float input and output are what bounds it). gemm_row is the int32 row of IsaKernels.
// Compiled with the AVX-512 flags (x86-64 only), used by avx512.cc.
#include <immintrin.h>

#include <cstdint>

#include "kernels.h"
#include "reductions.h"

namespace scales_edge {
namespace kernels {
namespace linear_avx512 {

namespace {

#include "pack_avx512.h"  // pack_row_impl: a row of K features, 4 compares per 64-bit word

// Popcounts of x ^ w for the 8 channels of one weight vector, over KW words (w: [KW][Mp]).
inline __m512i pops8(const uint64_t* words, int64_t KW, const uint64_t* w, int64_t Mp) {
  __m512i acc = _mm512_popcnt_epi64(_mm512_xor_si512(
      _mm512_set1_epi64(static_cast<long long>(words[0])), _mm512_loadu_si512(w)));
  for (int64_t kw = 1; kw < KW; ++kw)
    acc = _mm512_add_epi64(acc, _mm512_popcnt_epi64(_mm512_xor_si512(
                                    _mm512_set1_epi64(static_cast<long long>(words[kw])),
                                    _mm512_loadu_si512(w + kw * Mp))));
  return acc;
}

// K - 2*pop for 16 channels: the low dword of every 64-bit lane of pop0, then of pop1.
inline __m512i values16(__m512i k32, __m512i pop0, __m512i pop1) {
  const __m512i even = _mm512_set_epi32(30, 28, 26, 24, 22, 20, 18, 16, 14, 12, 10, 8, 6, 4, 2, 0);
  const __m512i pop = _mm512_permutex2var_epi32(pop0, even, pop1);
  return _mm512_sub_epi32(k32, _mm512_add_epi32(pop, pop));
}

// The accumulators of one packed token for channels [m0, m0 + 16) of Mp (the second vector is
// zero past Mp).
inline __m512i acc16(const uint64_t* words, int64_t KW, const uint64_t* w, int64_t Mp, int64_t m0,
                     __m512i k32) {
  const __m512i p0 = pops8(words, KW, w + m0, Mp);
  const __m512i p1 = m0 + 8 < Mp ? pops8(words, KW, w + m0 + 8, Mp) : _mm512_setzero_si512();
  return values16(k32, p0, p1);
}

// Tokens of K <= 64 features (one packed word) and MV*8 >= Mp channels, two at a time: the
// thresholds and every weight vector stay in registers across tokens, and a token's word goes
// from four compare masks to a broadcast without touching memory.
template <int MV>
void one_word_rows(const float* x, const float* beta, const LinearWeights& lw, const float* scale,
                   const float* bias, float* y, int64_t begin, int64_t end) {
  const int64_t K = lw.K, M = lw.M;
  const __m512 zero = _mm512_setzero_ps();
  __mmask16 valid[4];
  __m512 b[4];
  for (int q = 0; q < 4; ++q) {
    const int64_t k0 = 16 * q;
    valid[q] = static_cast<__mmask16>(k0 >= K ? 0 : K - k0 >= 16 ? 0xffff : (1u << (K - k0)) - 1);
    b[q] = _mm512_maskz_loadu_ps(valid[q], beta + k0);
  }
  __m512i w[MV];
  for (int v = 0; v < MV; ++v)
    w[v] = v * 8 < lw.Mp ? _mm512_loadu_si512(lw.data.data() + 8 * v) : _mm512_setzero_si512();
  const __m512i k32 = _mm512_set1_epi32(static_cast<int>(K));
  auto word = [&](const float* xr) {
    uint64_t bits = 0;
    for (int q = 0; q < 4; ++q) {
      if (!valid[q]) break;
      const __m512 d = _mm512_sub_ps(_mm512_maskz_loadu_ps(valid[q], xr + 16 * q), b[q]);
      bits |= static_cast<uint64_t>(_mm512_cmp_ps_mask(d, zero, _CMP_NGE_UQ) & valid[q]) << (16 * q);
    }
    return _mm512_set1_epi64(static_cast<long long>(bits));
  };
  auto emit = [&](__m512i xw, float* yr) {
    for (int v = 0; v < MV; v += 2) {
      const int64_t m0 = 8 * v;
      if (m0 >= M) break;
      const __m512i p0 = _mm512_popcnt_epi64(_mm512_xor_si512(xw, w[v]));
      const __m512i p1 =
          v + 1 < MV ? _mm512_popcnt_epi64(_mm512_xor_si512(xw, w[v + 1])) : _mm512_setzero_si512();
      const __mmask16 lanes = static_cast<__mmask16>(
          M - m0 >= 16 ? 0xffff : (1u << (M - m0)) - 1);
      __m512 f = _mm512_maskz_cvtepi32_ps(0xffff, values16(k32, p0, p1));
      // float32 multiply then add, as the contract says (no FMA: -ffp-contract=off)
      f = _mm512_mul_ps(f, _mm512_maskz_loadu_ps(lanes, scale + m0));
      f = _mm512_add_ps(f, bias ? _mm512_maskz_loadu_ps(lanes, bias + m0) : zero);
      _mm512_mask_storeu_ps(yr + m0, lanes, f);
    }
  };
  int64_t r = begin;
  for (; r + 2 <= end; r += 2) {
    const __m512i x0 = word(x + r * K), x1 = word(x + (r + 1) * K);
    emit(x0, y + r * M);
    emit(x1, y + (r + 1) * M);
  }
  for (; r < end; ++r) emit(word(x + r * K), y + r * M);
}

}  // namespace

void linear_rows_float(const float* x, const float* beta, const LinearWeights& lw,
                       const float* scale, const float* bias, float* y, int64_t begin,
                       int64_t end, uint64_t* words) {
  if (lw.KW == 1 && lw.Mp <= 64) {
    one_word_rows<8>(x, beta, lw, scale, bias, y, begin, end);
    return;
  }
  if (lw.KW == 1 && lw.Mp <= 128) {
    one_word_rows<16>(x, beta, lw, scale, bias, y, begin, end);
    return;
  }
  const int64_t K = lw.K, KW = lw.KW, M = lw.M, Mp = lw.Mp;
  const uint64_t* w = lw.data.data();
  const __m512i k32 = _mm512_set1_epi32(static_cast<int>(K));
  for (int64_t r = begin; r < end; ++r) {
    pack_row_impl(x + r * K, beta, K, words);
    float* yr = y + r * M;
    for (int64_t m0 = 0; m0 < M; m0 += 16) {
      const __mmask16 lanes =
          M - m0 >= 16 ? static_cast<__mmask16>(0xffff) : static_cast<__mmask16>((1u << (M - m0)) - 1);
      __m512 f = _mm512_maskz_cvtepi32_ps(0xffff, acc16(words, KW, w, Mp, m0, k32));
      // float32 multiply then add, as the contract says (no FMA: -ffp-contract=off)
      f = _mm512_mul_ps(f, _mm512_maskz_loadu_ps(lanes, scale + m0));
      f = _mm512_add_ps(f, bias ? _mm512_maskz_loadu_ps(lanes, bias + m0) : _mm512_setzero_ps());
      _mm512_mask_storeu_ps(yr + m0, lanes, f);
    }
  }
}

void gemm_row(const uint64_t* x, int64_t K, int64_t KW, const uint64_t* w, int64_t Mp,
              int32_t* acc) {
  const __m512i k32 = _mm512_set1_epi32(static_cast<int>(K));
  int64_t m0 = 0;
  for (; m0 + 16 <= Mp; m0 += 16) {
    const __m512i p0 = pops8(x, KW, w + m0, Mp), p1 = pops8(x, KW, w + m0 + 8, Mp);
    _mm512_storeu_si512(acc + m0, values16(k32, p0, p1));
  }
  if (m0 < Mp) {  // Mp is a multiple of 8: one vector left
    const __m512i v = values16(k32, pops8(x, KW, w + m0, Mp), _mm512_setzero_si512());
    _mm512_mask_storeu_epi32(acc + m0, 0x00ff, v);
  }
}

}  // namespace linear_avx512
}  // namespace kernels
}  // namespace scales_edge
