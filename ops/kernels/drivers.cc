// Geometry checks, weight re-layout and the range drivers that call a path's row kernels.
// Compiled without instruction-set flags (and with -ffp-contract=off, so the output transform is
// a float32 multiply followed by a float32 add, exactly as the contract says).
#include <algorithm>
#include <array>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <initializer_list>
#include <limits>
#include <string>
#include <vector>

#include "kernels.h"
#include "reductions.h"
#include "drivers_rows.h"
#include "transform.h"

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

// Products of sizes derived from attributes: a * b * ..., or -1 when one would pass `limit`.
int64_t checked_product(std::initializer_list<int64_t> factors, int64_t limit) {
  int64_t p = 1;
  for (int64_t f : factors) {
    if (f < 0 || (f != 0 && p > limit / f)) return -1;
    p *= f;
  }
  return p;
}

// No buffer a kernel sizes from a geometry may need more elements than this (2^48: far beyond
// any memory, and small enough that element counts times 16 bytes stay inside int64).
constexpr int64_t kMaxElements = int64_t{1} << 48;

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
  // Every buffer the drivers and kernels size from the geometry, checked before any is computed
  // in plain arithmetic: the input and its packed form, the output, the re-laid-out weights with
  // the AVX2 lookup tables (256 bytes per weight word), one output row of every channel, and
  // a unit of the row scratch of any path (2 words per packed input word of min(kH, H) tap rows
  // of round_up(OW, 64) + W + 64 + 2*sW*16 columns; no path takes more than 8 such units: see
  // each path's conv_scratch_words), so that none of those sizes can wrap.
  const int64_t cols = g.OW + g.W + 2 * kConvPixelBlock + 32 * g.sW;
  auto too_large = [](const char* what) {
    return std::string("the geometry is too large: ") + what +
           " would need more than 2^48 elements";
  };
  if (checked_product({g.N, g.C, g.H, g.W}, kMaxElements) < 0) return too_large("the input");
  if (checked_product({g.N, g.M, g.OH, g.OW}, kMaxElements) < 0) return too_large("the output");
  if (checked_product({g.kH, g.kW, g.CW, g.Mp, 256}, kMaxElements) < 0)
    return too_large("the packed weights");
  if (checked_product({g.Mp, g.OW}, kMaxElements) < 0) return too_large("an output row");
  if (checked_product({2, std::min(g.kH, g.H), g.CW, cols}, kMaxElements) < 0)
    return too_large("the row scratch");
  return "";
}

int64_t conv_row_scratch_words(const IsaKernels& k, const ConvGeometry& g) {
  return k.conv_scratch_words ? k.conv_scratch_words(g) : 0;
}

ConvWeights relayout_conv_weights(const IsaKernels& k, const uint64_t* w, int64_t M, int64_t kH,
                                  int64_t kW, int64_t C) {
  // kXorPop[n][x] = popcount(x ^ n): the lookup table of a weight nibble n.
  static const auto kXorPop = [] {
    std::array<std::array<uint8_t, 16>, 16> t{};
    for (int n = 0; n < 16; ++n)
      for (int x = 0; x < 16; ++x)
        t[n][x] = static_cast<uint8_t>(((x ^ n) & 1) + (((x ^ n) >> 1) & 1) + (((x ^ n) >> 2) & 1) +
                                       (((x ^ n) >> 3) & 1));
    return t;
  }();
  ConvWeights r;
  r.M = M;
  r.Mp = round_up(M, kChannelPad);
  r.kH = kH;
  r.kW = kW;
  r.CW = words_for(C);
  r.data.assign(static_cast<size_t>(kH * kW * r.CW * r.Mp), 0);
  const int64_t T = kH * kW;
  if (k.conv_tables) {
    r.tables.assign(static_cast<size_t>(T * r.CW * 16 * 16 * r.Mp), 0);
    r.tap_pops.assign(static_cast<size_t>(T * r.Mp), 0);
  }
  const uint64_t tail = last_word_mask(C);
  for (int64_t m = 0; m < M; ++m)
    for (int64_t t = 0; t < T; ++t)
      for (int64_t kk = 0; kk < r.CW; ++kk) {
        uint64_t v = w[(m * T + t) * r.CW + kk];
        if (kk == r.CW - 1) v &= tail;
        r.data[static_cast<size_t>((t * r.CW + kk) * r.Mp + m)] = v;
        if (!k.conv_tables) continue;
        uint8_t* tb = r.tables.data() + (((m / 4) * T + t) * r.CW + kk) * 16 * 64 + (m % 4) * 16;
        int32_t pop = 0;
        for (int n = 0; n < 16; ++n) {
          const auto& row = kXorPop[(v >> (4 * n)) & 15];
          std::memcpy(tb + n * 64, row.data(), 16);
          pop += row[0];  // popcount of the nibble itself
        }
        r.tap_pops[static_cast<size_t>(t * r.Mp + m)] += pop;
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
                    scratch.data(), nullptr, nullptr, 1, nullptr);
  }
}

void pack_rows(const IsaKernels& k, const float* x, const float* beta, int64_t K, uint64_t* out,
               int64_t begin, int64_t end) {
  const int64_t KW = words_for(K);
  for (int64_t r = begin; r < end; ++r) k.pack_row(x + r * K, beta, K, out + r * KW);
}

void conv_int32(const IsaKernels& k, const ConvGeometry& g, const uint64_t* xp,
                const ConvWeights& w, int32_t* acc, int64_t begin, int64_t end) {
  std::vector<uint64_t> scratch(static_cast<size_t>(conv_row_scratch_words(k, g)));
  if (g.M == g.Mp && k.conv_rows_contiguous && k.conv_rows_contiguous(g)) {
    // Straight into the output planes: the stores overlap the arithmetic (a row buffer copied out
    // per channel cost 1.4 ms more for 64 channels at 180x320 on a Zen 4).
    for (int64_t r = begin; r < end; ++r) {
      const int64_t n = r / g.OH, oh = r % g.OH;
      k.conv_row(g, xp + n * g.H * g.W * g.CW, w, oh, acc + n * g.M * g.OH * g.OW + oh * g.OW,
                 g.OH * g.OW, scratch.data());
    }
    return;
  }
  // One output row at a time into a channel-major row buffer (which also takes the lanes past M),
  // then one contiguous copy per channel: with the channels-in-lanes kernels, writing straight
  // into the [OH, OW] planes was ~3 ms slower for 64 channels at 180x320.
  std::vector<int32_t> row(static_cast<size_t>(g.OW * g.Mp));
  for (int64_t r = begin; r < end; ++r) {
    const int64_t n = r / g.OH, oh = r % g.OH;
    k.conv_row(g, xp + n * g.H * g.W * g.CW, w, oh, row.data(), g.OW, scratch.data());
    for (int64_t m = 0; m < g.M; ++m)
      std::memcpy(acc + ((n * g.M + m) * g.OH + oh) * g.OW, row.data() + m * g.OW,
                  static_cast<size_t>(g.OW) * sizeof(int32_t));
  }
}

namespace {

float sigmoidf(float v) { return 1.0f / (1.0f + std::exp(-v)); }

}  // namespace

void conv_float(const IsaKernels& k, const ConvGeometry& g, const uint64_t* xp,
                const ConvWeights& w, const float* scale, const float* bias, float* y,
                int64_t begin, int64_t end) {
  if (fused_rows(k, g)) {
    fused_rows_run(k, g, xp, w, begin, end, [&](int64_t n, int64_t oh) {
      ConvTransform t;
      t.scale = scale;
      t.bias = bias;
      t.y = y + n * g.M * g.OH * g.OW + oh * g.OW;
      t.y_ldm = g.OH * g.OW;
      t.y_row_stride = g.OW;
      return t;
    });
    return;
  }
  for_each_acc_row(k, g, xp, w, begin, end, [&](int64_t n, int64_t oh, const int32_t* row) {
    for (int64_t m = 0; m < g.M; ++m) {
      float* dst = y + ((n * g.M + m) * g.OH + oh) * g.OW;
      const int32_t* src = row + m * g.OW;
      const float s = scale[m];
      const float b = bias ? bias[m] : 0.0f;
      if (k.transform_row) {  // (prod + b) * 1.0f: the same bits
        k.transform_row(src, g.OW, s, b, nullptr, 1.0f, nullptr, dst);
        continue;
      }
      for (int64_t ow = 0; ow < g.OW; ++ow) {
        const float prod = static_cast<float>(src[ow]) * s;
        dst[ow] = prod + b;
      }
    }
  });
}

std::string check_scales_branches(const ConvGeometry& g, const ScalesBranches& b) {
  if (b.channel_w && (b.channel_k < 1 || b.channel_k % 2 != 1))
    return "the channel re-scaling kernel has " + std::to_string(b.channel_k) +
           " taps; it must be odd";
  const int64_t r = b.shuffle;
  if (r < 1 || r > 64)
    return "pixel_shuffle " + std::to_string(r) + " is invalid; it must be in [1, 64]";
  if (r > 1 && (g.M % (r * r) != 0 || g.sH != 1 || g.sW != 1))
    return "pixel_shuffle " + std::to_string(r) + " needs M a multiple of " + std::to_string(r * r) +
           " and strides [1, 1] (M = " + std::to_string(g.M) + ", strides " +
           dims_str({g.sH, g.sW}) + ")";
  const int64_t F = g.M / (r * r);  // output channels: M without a shuffle
  const std::string out = r == 1 ? "M" : "F = M / r^2";
  const bool same_channels = g.C == F;
  if (b.channel_w && b.channel_from_input && !same_channels)
    return "channel re-scaling from the input needs C == " + out + " (C = " + std::to_string(g.C) +
           ", " + out + " = " + std::to_string(F) + ")";
  if (b.skip && (!same_channels || g.OH != g.H || g.OW != g.W))
    return "the skip needs an output of the input's shape: C, H, W = " +
           dims_str({g.C, g.H, g.W}) + " but " + (r == 1 ? "M" : "F") + ", OH, OW = " +
           dims_str({F, g.OH, g.OW});
  if (b.spatial_w) {
    const int64_t sh = (g.H - 1) / g.sH + 1, sw = (g.W - 1) / g.sW + 1;
    if (sh != g.OH || sw != g.OW)
      return "the spatial re-scaling (a 1x1 conv with the op's strides, no padding) gives " +
             dims_str({sh, sw}) + " pixels but the binary conv gives " + dims_str({g.OH, g.OW});
  }
  return "";
}

void pack_nchw_scales(const IsaKernels& k, const ConvGeometry& g, const float* x,
                      const float* beta, const ScalesBranches& b, uint64_t* xp, float* S,
                      double* row_sums, int64_t begin, int64_t end) {
  const int64_t C = g.C, H = g.H, W = g.W, plane = H * W;
  std::vector<uint64_t> scratch(static_cast<size_t>(std::max<int64_t>(W, 1)));
  std::vector<float> dot(static_cast<size_t>(g.OW));  // zeros: W = 0 writes none of it
  for (int64_t r = begin; r < end; ++r) {
    const int64_t n = r / H, h = r % H;
    const bool spatial = b.spatial_w && h % g.sH == 0;
    k.pack_nchw_row(x + (n * C * H + h) * W, plane, beta, C, W, xp + r * W * g.CW,
                    scratch.data(), row_sums ? row_sums + r * C : nullptr,
                    spatial ? b.spatial_w : nullptr, g.sW, spatial ? dot.data() : nullptr);
    if (spatial) {
      float* s_row = S + (n * g.OH + h / g.sH) * g.OW;
      for (int64_t ow = 0; ow < g.OW; ++ow) s_row[ow] = sigmoidf(dot[ow] + b.spatial_b);
    }
  }
}

void channel_scales(const ScalesBranches& b, const double* sums, int64_t N, int64_t M,
                    double count, float* cs) {
  const int64_t half = b.channel_k / 2;
  std::vector<float> mean(static_cast<size_t>(M));
  for (int64_t n = 0; n < N; ++n) {
    for (int64_t m = 0; m < M; ++m) mean[m] = static_cast<float>(sums[n * M + m] / count);
    for (int64_t m = 0; m < M; ++m) {
      float v = 0.0f;  // cross-correlation with zero padding, as torch's Conv1d (no bias)
      for (int64_t t = 0; t < b.channel_k; ++t) {
        const int64_t src = m + t - half;
        if (src >= 0 && src < M) v += b.channel_w[t] * mean[src];
      }
      cs[n * M + m] = sigmoidf(v);
    }
  }
}

namespace {

// One output row of one channel, in the order of the PyTorch layer: ((core * S) * Cs) + X, each
// factor or term present or not per the template flags (so each variant is one vectorised loop).
template <bool kSpatial, bool kSkip>
void transform_row(const int32_t* src, int64_t n, float sc, float bi, const float* s_row, float c,
                   const float* xs, float* dst) {
  transform_row_scalar<kSpatial, kSkip>(src, n, sc, bi, s_row, c, xs, dst);
}

}  // namespace

// Channels ahead whose skip and output rows the row-buffer transform prefetches.
constexpr int64_t kPrefetchChannels = 2;

void scales_conv_rows(const IsaKernels& k, const ConvGeometry& g, const uint64_t* xp,
                      const ConvWeights& w, const float* scale, const float* bias,
                      const ScalesBranches& b, const float* x, const float* S, const float* cs,
                      float* y, int64_t begin, int64_t end) {
  const int64_t OW = g.OW;
  if (fused_rows(k, g)) {
    fused_rows_run(k, g, xp, w, begin, end, [&](int64_t n, int64_t oh) {
      ConvTransform t;
      t.scale = scale;
      t.bias = bias;
      t.cs = cs ? cs + n * g.M : nullptr;
      t.s = S ? S + (n * g.OH + oh) * OW : nullptr;
      t.s_row_stride = OW;
      t.skip = b.skip ? x + (n * g.C * g.H + oh) * g.W : nullptr;  // (the skip needs OH == H)
      t.skip_ldm = g.H * g.W;
      t.skip_row_stride = g.W;
      t.y = y + n * g.M * g.OH * OW + oh * OW;
      t.y_ldm = g.OH * OW;
      t.y_row_stride = OW;
      return t;
    });
    return;
  }
  // Without a channel factor the multiply is by 1.0f, which is exact (x * 1.0f == x).
  auto* fn = k.transform_row ? k.transform_row
             : S ? (b.skip ? &transform_row<true, true> : &transform_row<true, false>)
                 : (b.skip ? &transform_row<false, true> : &transform_row<false, false>);
  for_each_acc_row(k, g, xp, w, begin, end, [&](int64_t n, int64_t oh, const int32_t* row) {
    const float* s_row = S ? S + (n * g.OH + oh) * OW : nullptr;
    for (int64_t m = 0; m < g.M; ++m) {
      const float* xs = b.skip ? x + ((n * g.C + m) * g.H + oh) * g.W : nullptr;
      float* dst = y + ((n * g.M + m) * g.OH + oh) * OW;
      // The next channels' rows are short runs in other planes: ask for their lines ahead.
      if (m + kPrefetchChannels < g.M) {
        const float* xn = b.skip ? xs + kPrefetchChannels * g.H * g.W : nullptr;
        const float* yn = dst + kPrefetchChannels * g.OH * OW;
        for (int64_t i = 0; i < OW; i += 16) {
          if (xn) __builtin_prefetch(xn + i, 0);
          __builtin_prefetch(yn + i, 1);
        }
      }
      fn(row + m * OW, OW, scale[m], bias ? bias[m] : 0.0f, s_row, cs ? cs[n * g.M + m] : 1.0f,
         xs, dst);
    }
  });
}

void plane_sums(const float* y, int64_t P, double* sums, int64_t begin, int64_t end) {
  for (int64_t p = begin; p < end; ++p) {
    sums[p] = sum_floats(y + p * P, P);
  }
}

void scale_planes(float* y, int64_t P, const float* cs, int64_t begin, int64_t end) {
  for (int64_t p = begin; p < end; ++p) {
    float* dst = y + p * P;
    const float c = cs[p];
    for (int64_t i = 0; i < P; ++i) dst[i] = dst[i] * c;
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

void linear_float(const IsaKernels& k, const float* x, const float* beta, const LinearWeights& w,
                  const float* scale, const float* bias, float* y, int64_t begin, int64_t end) {
  std::vector<uint64_t> words(static_cast<size_t>(w.KW));
  if (k.linear_rows_float) {
    k.linear_rows_float(x, beta, w, scale, bias, y, begin, end, words.data());
    return;
  }
  std::vector<int32_t> row(static_cast<size_t>(w.Mp));
  for (int64_t r = begin; r < end; ++r) {
    k.pack_row(x + r * w.K, beta, w.K, words.data());
    k.gemm_row(words.data(), w.K, w.KW, w.data.data(), w.Mp, row.data());
    float* dst = y + r * w.M;
    for (int64_t m = 0; m < w.M; ++m) {
      const float prod = static_cast<float>(row[static_cast<size_t>(m)]) * scale[m];
      dst[m] = prod + (bias ? bias[m] : 0.0f);
    }
  }
}

}  // namespace kernels
}  // namespace scales_edge
