// WindowAttention (op-domain version 3, docs/ops.md): geometry checks, the relative position bias
// laid out for the kernels, the choice of float kernels and the range driver over windows.
// Compiled without instruction-set flags.
#include <algorithm>
#include <cstdint>
#include <limits>
#include <string>
#include <vector>

#include "float_kernels.h"

namespace scales_edge {
namespace kernels {

extern const FloatKernels kFloatPortableKernels;
#if defined(SCALES_EDGE_HAVE_AVX2)
extern const FloatKernels kFloatAvx2Kernels;
#endif
#if defined(SCALES_EDGE_HAVE_AVX512)
extern const FloatKernels kFloatAvx512Kernels;
#endif
#if defined(SCALES_EDGE_HAVE_NEON)
extern const FloatKernels kFloatNeonKernels;
#endif

namespace {

std::string str(int64_t v) { return std::to_string(v); }

#if defined(SCALES_EDGE_HAVE_AVX2) || defined(SCALES_EDGE_HAVE_AVX512)
bool cpu_has_fma() {
  static const bool fma = [] {
    __builtin_cpu_init();
    return __builtin_cpu_supports("fma") != 0;
  }();
  return fma;
}
#endif

}  // namespace

const FloatKernels& float_kernels(Path p) {
  if (!path_supported(p)) return kFloatPortableKernels;
  switch (p) {
#if defined(SCALES_EDGE_HAVE_AVX512)
    case Path::kAvx512:
      return cpu_has_fma() ? kFloatAvx512Kernels : kFloatPortableKernels;
#endif
#if defined(SCALES_EDGE_HAVE_AVX2)
    case Path::kAvx2:
      return cpu_has_fma() ? kFloatAvx2Kernels : kFloatPortableKernels;
#endif
#if defined(SCALES_EDGE_HAVE_NEON)
    case Path::kNeon:
      return kFloatNeonKernels;
#endif
    default:
      return kFloatPortableKernels;
  }
}

std::string check_attention_geometry(AttentionGeometry& g) {
  // the attributes first (the op checks them alone when its kernel is created)
  if (g.heads < 1) return "num_heads = " + str(g.heads) + " is invalid; it must be >= 1";
  if (g.ws < 1) return "window_size = " + str(g.ws) + " is invalid; it must be >= 1";
  if (g.shift < 0 || g.shift >= g.ws)
    return "shift_size = " + str(g.shift) + " is invalid; it must be in [0, window_size = " +
           str(g.ws) + ")";
  if (g.kws < g.ws || (g.kws - g.ws) % 2 != 0)
    return "key_window_size = " + str(g.kws) + " is invalid; it must be >= window_size = " +
           str(g.ws) + " and exceed it by an even number";
  if (g.kws != g.ws && g.shift != 0)
    return "shift_size = " + str(g.shift) + " needs key_window_size = window_size (" +
           str(g.kws) + " != " + str(g.ws) + ")";
  if (!(g.scale == g.scale) || g.scale > std::numeric_limits<float>::max() ||
      g.scale < -std::numeric_limits<float>::max())
    return "scale is not finite";
  if (g.N < 0 || g.H < 1 || g.W < 1 || g.C3 < 1)
    return "input QKV has shape [" + str(g.N) + ", " + str(g.H) + ", " + str(g.W) + ", " +
           str(g.C3) + "]; need [N, H, W, 3C] with H, W, 3C >= 1";
  constexpr int64_t kLimit = int64_t{1} << 24;  // keeps every index and buffer size in range
  if (g.H >= kLimit || g.W >= kLimit || g.C3 >= kLimit || g.kws >= 4096 || g.heads >= kLimit)
    return "a dimension or attribute is too large";
  if (g.C3 % (3 * g.heads) != 0)
    return "input QKV has " + str(g.C3) + " channels, not 3 * C with C a multiple of num_heads = " +
           str(g.heads);
  if (g.H % g.ws != 0 || g.W % g.ws != 0)
    return "input QKV has H, W = [" + str(g.H) + ", " + str(g.W) +
           "], not multiples of window_size = " + str(g.ws);
  g.C = g.C3 / 3;
  g.d = g.C / g.heads;
  g.Nq = g.ws * g.ws;
  g.Nk = g.kws * g.kws;
  g.pad = (g.kws - g.ws) / 2;
  g.windows = (g.H / g.ws) * (g.W / g.ws);
  return "";
}

std::string expand_attention_bias(const AttentionGeometry& g, const float* table, int64_t T,
                                  const int64_t* index, int64_t query_block, AttentionBias* out) {
  out->heads = g.heads;
  out->Nq = g.Nq;
  out->Nk = g.Nk;
  out->Nqp = round_up(g.Nq, query_block);
  out->data.assign(static_cast<size_t>(g.heads * g.Nk * out->Nqp), 0.0f);
  for (int64_t q = 0; q < g.Nq; ++q)
    for (int64_t k = 0; k < g.Nk; ++k) {
      int64_t t = index[q * g.Nk + k];
      if (t < -T || t >= T)
        return "input 'bias_index' has the entry " + str(t) + " (query " + str(q) + ", key " +
               str(k) + ") outside [-T, T) = [" + str(-T) + ", " + str(T) + ")";
      if (t < 0) t += T;
      for (int64_t h = 0; h < g.heads; ++h)
        out->data[static_cast<size_t>((h * g.Nk + k) * out->Nqp + q)] = table[t * g.heads + h] * kLog2e;
    }
  return "";
}

namespace {

// The q|k|v rows window r reads: its key window's rows (a window reads kws short runs of pixels
// far apart, which the hardware prefetchers do not follow).
void window_rows(const AttentionGeometry& g, const float* qkv, float* out, int64_t r, Prefetch* p) {
  p->count = p->wcount = 0;
  p->bytes = p->wbytes = 0;
  const int64_t per_row = g.W / g.ws;
  const int64_t n = r / g.windows, wy = (r % g.windows) / per_row, wx = (r % g.windows) % per_row;
  // (a shifted window's wrapped columns are left to the hardware)
  int64_t x0 = wx * g.ws - g.pad + g.shift, x1 = x0 + g.kws;  // key pixel columns [x0, x1)
  x0 = std::max<int64_t>(x0, 0);
  x1 = std::min(x1, g.W);
  if (x1 > x0) {
    p->bytes = (x1 - x0) * g.C3 * static_cast<int64_t>(sizeof(float));
    for (int64_t i = 0; i < g.kws && p->count < Prefetch::kMaxRows; ++i) {
      int64_t y = wy * g.ws - g.pad + i;
      if (y < 0 || y >= g.H) continue;
      y += g.shift;
      if (y >= g.H) y -= g.H;
      p->rows[p->count++] = reinterpret_cast<const char*>(qkv + ((n * g.H + y) * g.W + x0) * g.C3);
    }
  }
  const int64_t q0 = wx * g.ws + g.shift, q1 = std::min(q0 + g.ws, g.W);  // output columns
  if (q1 > q0) {
    p->wbytes = (q1 - q0) * g.C * static_cast<int64_t>(sizeof(float));
    for (int64_t i = 0; i < g.ws && p->wcount < Prefetch::kMaxRows; ++i) {
      int64_t y = wy * g.ws + i + g.shift;
      if (y >= g.H) y -= g.H;
      p->wrows[p->wcount++] = reinterpret_cast<char*>(out + ((n * g.H + y) * g.W + q0) * g.C);
    }
  }
}

}  // namespace

void window_attention(const FloatKernels& k, const AttentionGeometry& g, const float* qkv,
                      const AttentionBias& bias, float* y, int64_t begin, int64_t end) {
  std::vector<float> scratch(static_cast<size_t>(k.attention_scratch(g)));
  std::vector<int64_t> pix(static_cast<size_t>(2 * g.Nq + g.Nk));
  std::vector<const float*> rows(static_cast<size_t>(2 * g.Nk));
  const int64_t per_row = g.W / g.ws;
  Prefetch next;
  for (int64_t r = begin; r < end; ++r) {
    next.count = next.wcount = 0;
    if (r + 1 < end) window_rows(g, qkv, y, r + 1, &next);
    const int64_t n = r / g.windows, w = r % g.windows;
    k.attend_window(g, qkv, bias, n, w / per_row, w % per_row, y, pix.data(), rows.data(),
                    scratch.data(), next);
  }
}

}  // namespace kernels
}  // namespace scales_edge
