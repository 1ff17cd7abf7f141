// Geometry checks, weight re-layout and the range drivers that call a path's row kernels.
// Compiled without instruction-set flags (and with -ffp-contract=off, so the output transform is
// a float32 multiply followed by a float32 add, exactly as the contract says).
#include <algorithm>
#include <cstdint>
#include <cstring>
#include <limits>
#include <string>
#include <vector>

#include "kernels.h"

namespace scales_edge {
namespace kernels {

namespace {

std::string dims_str(std::initializer_list<int64_t> v) {
  std::string s = "[";
  bool first = true;
  for (int64_t x : v) {
    if (!first) s += ", ";
    s += std::to_string(x);
    first = false;
  }
  return s + "]";
}

uint64_t last_word_mask(int64_t bits) {
  const int64_t r = bits % 64;
  return r == 0 ? ~uint64_t{0} : ((uint64_t{1} << r) - 1);
}

constexpr int64_t kMaxAcc = std::numeric_limits<int32_t>::max();

}  // namespace

std::string check_conv_geometry(ConvGeometry& g) {
  if (g.N < 0 || g.C < 1 || g.H < 0 || g.W < 0)
    return "input X has shape " + dims_str({g.N, g.C, g.H, g.W}) +
           "; need [N, C, H, W] with C >= 1";
  if (g.M < 1) return "W has " + std::to_string(g.M) + " output channels; need at least 1";
  if (g.kH < 1 || g.kW < 1)
    return "kernel_shape " + dims_str({g.kH, g.kW}) + " is invalid; each must be >= 1";
  if (g.sH < 1 || g.sW < 1)
    return "strides " + dims_str({g.sH, g.sW}) + " are invalid; each must be >= 1";
  if (g.dH < 1 || g.dW < 1)
    return "dilations " + dims_str({g.dH, g.dW}) + " are invalid; each must be >= 1";
  if (g.pT < 0 || g.pL < 0 || g.pB < 0 || g.pR < 0)
    return "pads " + dims_str({g.pT, g.pL, g.pB, g.pR}) + " are invalid; each must be >= 0";
  // Keep every intermediate comfortably inside int64 and the accumulators inside int32.
  constexpr int64_t kLimit = int64_t{1} << 31;
  if (g.C >= kLimit || g.H >= kLimit || g.W >= kLimit || g.kH >= kLimit || g.kW >= kLimit ||
      g.pT >= kLimit || g.pL >= kLimit || g.pB >= kLimit || g.pR >= kLimit || g.dH >= kLimit ||
      g.dW >= kLimit || g.sH >= kLimit || g.sW >= kLimit || g.M >= kLimit)
    return "a dimension or attribute is too large";
  if (g.C * g.kH > kMaxAcc || g.C * g.kH * g.kW > kMaxAcc)
    return "C*kH*kW = " + std::to_string(g.C) + "*" + std::to_string(g.kH) + "*" +
           std::to_string(g.kW) + " exceeds the int32 accumulator range";
  g.CW = words_for(g.C);
  g.Mp = round_up(g.M, kChannelPad);
  const int64_t span_h = g.dH * (g.kH - 1) + 1;
  const int64_t span_w = g.dW * (g.kW - 1) + 1;
  const int64_t ext_h = g.H + g.pT + g.pB;
  const int64_t ext_w = g.W + g.pL + g.pR;
  g.OH = ext_h >= span_h ? (ext_h - span_h) / g.sH + 1 : 0;
  g.OW = ext_w >= span_w ? (ext_w - span_w) / g.sW + 1 : 0;
  if (g.OH < 1 || g.OW < 1)
    return "the output would be empty: input spatial size " + dims_str({g.H, g.W}) +
           " with pads " + dims_str({g.pT, g.pL, g.pB, g.pR}) + " is smaller than the dilated kernel " +
           dims_str({span_h, span_w});
  return "";
}

ConvWeights relayout_conv_weights(const uint64_t* w, int64_t M, int64_t kH, int64_t kW,
                                  int64_t C) {
  ConvWeights r;
  r.M = M;
  r.Mp = round_up(M, kChannelPad);
  r.kH = kH;
  r.kW = kW;
  r.CW = words_for(C);
  r.data.assign(static_cast<size_t>(kH * kW * r.CW * r.Mp), 0);
  const uint64_t tail = last_word_mask(C);
  for (int64_t m = 0; m < M; ++m)
    for (int64_t t = 0; t < kH * kW; ++t)
      for (int64_t k = 0; k < r.CW; ++k) {
        uint64_t v = w[(m * kH * kW + t) * r.CW + k];
        if (k == r.CW - 1) v &= tail;
        r.data[static_cast<size_t>((t * r.CW + k) * r.Mp + m)] = v;
      }
  return r;
}

LinearWeights relayout_linear_weights(const uint64_t* w, int64_t M, int64_t K) {
  LinearWeights r;
  r.M = M;
  r.Mp = round_up(M, kChannelPad);
  r.K = K;
  r.KW = words_for(K);
  r.data.assign(static_cast<size_t>(r.KW * r.Mp), 0);
  const uint64_t tail = last_word_mask(K);
  for (int64_t m = 0; m < M; ++m)
    for (int64_t k = 0; k < r.KW; ++k) {
      uint64_t v = w[m * r.KW + k];
      if (k == r.KW - 1) v &= tail;
      r.data[static_cast<size_t>(k * r.Mp + m)] = v;
    }
  return r;
}

void pack_nchw(const IsaKernels& k, const float* x, const float* beta, int64_t N, int64_t C,
               int64_t H, int64_t W, uint64_t* out, int64_t begin, int64_t end) {
  (void)N;
  const int64_t CW = words_for(C);
  std::vector<uint64_t> scratch(static_cast<size_t>(std::max<int64_t>(W, 1)));
  for (int64_t r = begin; r < end; ++r) {
    const int64_t n = r / H, h = r % H;
    k.pack_nchw_row(x + (n * C * H + h) * W, H * W, beta, C, W, out + r * W * CW,
                    scratch.data());
  }
}

void pack_rows(const IsaKernels& k, const float* x, const float* beta, int64_t K, uint64_t* out,
               int64_t begin, int64_t end) {
  const int64_t KW = words_for(K);
  for (int64_t r = begin; r < end; ++r) k.pack_row(x + r * K, beta, K, out + r * KW);
}

void conv_int32(const IsaKernels& k, const ConvGeometry& g, const uint64_t* xp,
                const ConvWeights& w, int32_t* acc, int64_t begin, int64_t end) {
  std::vector<int32_t> row(static_cast<size_t>(g.OW * g.Mp));
  for (int64_t r = begin; r < end; ++r) {
    const int64_t n = r / g.OH, oh = r % g.OH;
    k.conv_row(g, xp + n * g.H * g.W * g.CW, w.data.data(), oh, row.data());
    for (int64_t m = 0; m < g.M; ++m) {
      int32_t* dst = acc + ((n * g.M + m) * g.OH + oh) * g.OW;
      const int32_t* src = row.data() + m;
      for (int64_t ow = 0; ow < g.OW; ++ow) dst[ow] = src[ow * g.Mp];
    }
  }
}

void conv_float(const IsaKernels& k, const ConvGeometry& g, const uint64_t* xp,
                const ConvWeights& w, const float* scale, const float* bias, float* y,
                int64_t begin, int64_t end) {
  std::vector<int32_t> row(static_cast<size_t>(g.OW * g.Mp));
  for (int64_t r = begin; r < end; ++r) {
    const int64_t n = r / g.OH, oh = r % g.OH;
    k.conv_row(g, xp + n * g.H * g.W * g.CW, w.data.data(), oh, row.data());
    for (int64_t m = 0; m < g.M; ++m) {
      float* dst = y + ((n * g.M + m) * g.OH + oh) * g.OW;
      const int32_t* src = row.data() + m;
      const float s = scale[m];
      const float b = bias ? bias[m] : 0.0f;
      for (int64_t ow = 0; ow < g.OW; ++ow) {
        const float prod = static_cast<float>(src[ow * g.Mp]) * s;
        dst[ow] = prod + b;
      }
    }
  }
}

void gemm_int32(const IsaKernels& k, const uint64_t* xp, const LinearWeights& w, int32_t* acc,
                int64_t begin, int64_t end) {
  std::vector<int32_t> row(static_cast<size_t>(w.Mp));
  for (int64_t r = begin; r < end; ++r) {
    k.gemm_row(xp + r * w.KW, w.K, w.KW, w.data.data(), w.Mp, row.data());
    std::memcpy(acc + r * w.M, row.data(), static_cast<size_t>(w.M) * sizeof(int32_t));
  }
}

void gemm_float(const IsaKernels& k, const uint64_t* xp, const LinearWeights& w,
                const float* scale, const float* bias, float* y, int64_t begin, int64_t end) {
  std::vector<int32_t> row(static_cast<size_t>(w.Mp));
  for (int64_t r = begin; r < end; ++r) {
    k.gemm_row(xp + r * w.KW, w.K, w.KW, w.data.data(), w.Mp, row.data());
    float* dst = y + r * w.M;
    for (int64_t m = 0; m < w.M; ++m) {
      const float prod = static_cast<float>(row[static_cast<size_t>(m)]) * scale[m];
      dst[m] = prod + (bias ? bias[m] : 0.0f);
    }
  }
}

}  // namespace kernels
}  // namespace scales_edge
