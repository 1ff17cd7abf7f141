// Kernel tests of the scales_edge op library (no ONNX Runtime): for every kernel path this CPU
// supports, binarize+pack, the binary convolution, the binary matmul and ScalesConv2d's pass 1
// (channel sums, spatial map) must reproduce a plain scalar reference written here from
// docs/ops.md and kernels/reductions.h, exactly (integer accumulators, the float output transform,
// the float sums bit for bit), over randomized shapes. Prints "N passed, M failed"; exits 1 on
// any failure.
//
// Build: cmake -DSCALES_EDGE_BUILD_TESTS=ON ...; run: ctest or the scales_edge_kernel_tests binary.
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <limits>
#include <random>
#include <string>
#include <vector>

#include "check.h"
#include "kernels.h"

namespace sk = scales_edge::kernels;

namespace {

using test::check;
using test::g_failed;

std::mt19937_64 rng(20240611);

int64_t rand_int(int64_t lo, int64_t hi) {  // inclusive
  return std::uniform_int_distribution<int64_t>(lo, hi)(rng);
}

// Activations with values sitting exactly on the threshold, signed zeros and NaNs mixed in.
std::vector<float> random_activations(size_t n, const std::vector<float>& beta, int64_t inner,
                                      int64_t channels) {
  std::normal_distribution<float> normal(0.0f, 1.0f);
  std::vector<float> x(n);
  for (size_t i = 0; i < n; ++i) {
    const int64_t c = static_cast<int64_t>(i / static_cast<size_t>(inner)) % channels;
    const int64_t r = rand_int(0, 99);
    if (r < 5)
      x[i] = beta[c];  // on the threshold: sign +1
    else if (r < 7)
      x[i] = std::numeric_limits<float>::quiet_NaN();  // sign -1
    else if (r < 9)
      x[i] = (r == 7) ? 0.0f : -0.0f;
    else
      x[i] = normal(rng);
  }
  return x;
}

std::vector<float> random_floats(size_t n, float lo, float hi) {
  std::uniform_real_distribution<float> u(lo, hi);
  std::vector<float> v(n);
  for (auto& f : v) f = u(rng);
  return v;
}

// sign(v) per the contract: +1 if v >= 0, else -1 (NaN too).
int sign_of(float v) { return (v >= 0.0f) ? 1 : -1; }

// Packs a sign vector s[0..K) (+1/-1) into words: bit 1 for -1. `garbage` sets the padding bits.
void pack_signs(const int* s, int64_t K, int64_t stride, uint64_t* out, bool garbage) {
  const int64_t KW = (K + 63) / 64;
  for (int64_t w = 0; w < KW; ++w) {
    uint64_t word = 0;
    for (int64_t j = 0; j < 64; ++j) {
      const int64_t k = 64 * w + j;
      if (k < K) {
        if (s[k * stride] < 0) word |= uint64_t{1} << j;
      } else if (garbage && (rng() & 1)) {
        word |= uint64_t{1} << j;
      }
    }
    out[w] = word;
  }
}

// Elements whose bits differ (a NaN equals only the same NaN).
template <typename T>
size_t bit_diffs(const std::vector<T>& a, const std::vector<T>& b) {
  size_t bad = 0;
  for (size_t i = 0; i < a.size(); ++i) bad += std::memcmp(&a[i], &b[i], sizeof(T)) != 0;
  return bad;
}

std::string conv_desc(const sk::ConvGeometry& g) {
  char buf[256];
  std::snprintf(buf, sizeof buf,
                "N=%lld C=%lld H=%lld W=%lld M=%lld k=%lldx%lld s=%lld,%lld p=%lld,%lld,%lld,%lld "
                "d=%lld,%lld",
                (long long)g.N, (long long)g.C, (long long)g.H, (long long)g.W, (long long)g.M,
                (long long)g.kH, (long long)g.kW, (long long)g.sH, (long long)g.sW,
                (long long)g.pT, (long long)g.pL, (long long)g.pB, (long long)g.pR,
                (long long)g.dH, (long long)g.dW);
  return buf;
}

// Inputs of one convolution case and its accumulators straight from the definition.
struct ConvCase {
  std::vector<float> beta, x;      // x: [N, C, H, W]
  std::vector<uint64_t> xp_ref;    // packed input [N, H, W, CW] (padding bits 0)
  std::vector<uint64_t> wp;        // packed weights [M, kH, kW, CW] (padding bits random)
  std::vector<int32_t> acc_ref;    // [N, M, OH, OW]
};

// opposite = true: every input sign -1 and every weight sign +1, so every XOR bit is 1 and the
// kernels' narrow per-lane counters fill at their fastest (flush intervals are exercised).
ConvCase make_conv_case(const sk::ConvGeometry& g, bool opposite) {
  ConvCase cc;
  const int64_t N = g.N, C = g.C, H = g.H, W = g.W, M = g.M, kH = g.kH, kW = g.kW, CW = g.CW;
  cc.beta = random_floats(static_cast<size_t>(C), -0.5f, 0.5f);
  const std::vector<float>& beta = cc.beta;
  std::vector<float>& x = cc.x;
  x = random_activations(static_cast<size_t>(N * C * H * W), beta, H * W, C);
  std::vector<int> wsign(static_cast<size_t>(M * C * kH * kW));  // [M, C, kH, kW]
  for (auto& s : wsign) s = (rng() & 1) ? 1 : -1;
  if (opposite) {
    for (size_t i = 0; i < x.size(); ++i) x[i] = beta[(i / static_cast<size_t>(H * W)) % C] - 1.0f;
    for (auto& s : wsign) s = 1;
  }
  // Signs of the input, [N, C, H, W].
  std::vector<int> xs(x.size());
  for (int64_t n = 0; n < N; ++n)
    for (int64_t c = 0; c < C; ++c)
      for (int64_t i = 0; i < H * W; ++i) {
        const size_t idx = static_cast<size_t>((n * C + c) * H * W + i);
        xs[idx] = sign_of(x[idx] - beta[static_cast<size_t>(c)]);
      }
  cc.xp_ref.assign(static_cast<size_t>(N * H * W * CW), 0);
  for (int64_t n = 0; n < N; ++n)
    for (int64_t p = 0; p < H * W; ++p)
      pack_signs(&xs[static_cast<size_t>(n * C * H * W + p)], C, H * W,
                 &cc.xp_ref[static_cast<size_t>((n * H * W + p) * CW)], false);
  cc.wp.assign(static_cast<size_t>(M * kH * kW * CW), 0);
  for (int64_t m = 0; m < M; ++m)
    for (int64_t t = 0; t < kH * kW; ++t)
      pack_signs(&wsign[static_cast<size_t>(m * C * kH * kW + t)], C, kH * kW,
                 &cc.wp[static_cast<size_t>((m * kH * kW + t) * CW)], true);
  cc.acc_ref.assign(static_cast<size_t>(N * M * g.OH * g.OW), 0);
  for (int64_t n = 0; n < N; ++n)
    for (int64_t m = 0; m < M; ++m)
      for (int64_t oh = 0; oh < g.OH; ++oh)
        for (int64_t ow = 0; ow < g.OW; ++ow) {
          int64_t sum = 0;
          for (int64_t c = 0; c < C; ++c)
            for (int64_t i = 0; i < kH; ++i)
              for (int64_t j = 0; j < kW; ++j) {
                const int64_t ih = oh * g.sH - g.pT + i * g.dH;
                const int64_t iw = ow * g.sW - g.pL + j * g.dW;
                if (ih < 0 || ih >= H || iw < 0 || iw >= W) continue;
                sum += xs[static_cast<size_t>(((n * C + c) * H + ih) * W + iw)] *
                       wsign[static_cast<size_t>(((m * C + c) * kH + i) * kW + j)];
              }
          cc.acc_ref[static_cast<size_t>(((n * M + m) * g.OH + oh) * g.OW + ow)] =
              static_cast<int32_t>(sum);
        }
  return cc;
}

void test_conv_case(const std::vector<const sk::IsaKernels*>& paths, sk::ConvGeometry g,
                    bool opposite = false) {
  const std::string err = sk::check_conv_geometry(g);
  if (!err.empty()) {
    std::printf("FAIL: geometry rejected: %s (%s)\n", err.c_str(), conv_desc(g).c_str());
    ++g_failed;
    return;
  }
  const int64_t N = g.N, C = g.C, H = g.H, W = g.W, M = g.M, kH = g.kH, kW = g.kW;
  const ConvCase cc = make_conv_case(g, opposite);
  const std::vector<float>& beta = cc.beta;
  const std::vector<float>& x = cc.x;
  const std::vector<uint64_t>& xp_ref = cc.xp_ref;
  const std::vector<uint64_t>& wp = cc.wp;
  const std::vector<int32_t>& acc_ref = cc.acc_ref;
  const std::vector<float> scale = random_floats(static_cast<size_t>(M), -2.0f, 2.0f);
  const std::vector<float> bias = random_floats(static_cast<size_t>(M), -1.0f, 1.0f);

  for (const sk::IsaKernels* k : paths) {
    const sk::ConvWeights cw = sk::relayout_conv_weights(*k, wp.data(), M, kH, kW, C);
    const std::string tag = std::string(k->name) + " conv " + conv_desc(g);
    // Pack in two sub-ranges (as threads would).
    std::vector<uint64_t> xp(xp_ref.size(), ~uint64_t{0});
    const int64_t rows = N * H, mid = rows / 2;
    sk::pack_nchw(*k, x.data(), beta.data(), N, C, H, W, xp.data(), 0, mid);
    sk::pack_nchw(*k, x.data(), beta.data(), N, C, H, W, xp.data(), mid, rows);
    check(xp == xp_ref, tag + ": packed input differs from the reference packing");

    std::vector<int32_t> acc(acc_ref.size(), 12345);
    const int64_t orows = N * g.OH, omid = orows / 3;
    sk::conv_int32(*k, g, xp_ref.data(), cw, acc.data(), 0, omid);
    sk::conv_int32(*k, g, xp_ref.data(), cw, acc.data(), omid, orows);
    size_t bad = 0;
    for (size_t i = 0; i < acc.size(); ++i) bad += acc[i] != acc_ref[i];
    check(bad == 0, tag + ": " + std::to_string(bad) + " int32 accumulators differ");

    std::vector<float> y(acc_ref.size());
    const bool with_bias = (rng() & 1) != 0;
    sk::conv_float(*k, g, xp_ref.data(), cw, scale.data(), with_bias ? bias.data() : nullptr,
                   y.data(), 0, orows);
    size_t fbad = 0;
    for (int64_t n = 0; n < N; ++n)
      for (int64_t m = 0; m < M; ++m)
        for (int64_t p = 0; p < g.OH * g.OW; ++p) {
          const size_t idx = static_cast<size_t>((n * M + m) * g.OH * g.OW + p);
          const float prod = static_cast<float>(acc_ref[idx]) * scale[static_cast<size_t>(m)];
          const float want = prod + (with_bias ? bias[static_cast<size_t>(m)] : 0.0f);
          fbad += !(y[idx] == want);
        }
    check(fbad == 0, tag + ": " + std::to_string(fbad) + " float outputs differ");
  }
}

// ScalesConv2d's pass 2 (scales_conv_rows: convolve, then the output transform of docs/ops.md
// as each row is stored) on every path, bit for bit against the reference accumulators put
// through the transform here: ((float(acc) * scale + bias) * S) * Cs + X, each a float32
// operation in that order, each factor or term present or not.
void test_scales_rows_case(const std::vector<const sk::IsaKernels*>& paths, sk::ConvGeometry g,
                           bool spatial, bool channel, bool skip, bool with_bias) {
  g.M = g.C;
  const std::string err = sk::check_conv_geometry(g);
  const std::string tag0 = "scales_conv_rows " + conv_desc(g) + (spatial ? " S" : "") +
                           (channel ? " Cs" : "") + (skip ? " skip" : "") + (with_bias ? " bias" : "");
  if (!err.empty()) {
    check(false, tag0 + ": geometry rejected: " + err);
    return;
  }
  sk::ScalesBranches b;
  b.skip = skip;
  if (!sk::check_scales_branches(g, b).empty()) return;  // the skip needs the input's shape
  const ConvCase cc = make_conv_case(g, false);
  const int64_t N = g.N, M = g.M, P = g.OH * g.OW;
  const std::vector<float> scale = random_floats(static_cast<size_t>(M), -2.0f, 2.0f);
  const std::vector<float> bias = random_floats(static_cast<size_t>(M), -1.0f, 1.0f);
  const std::vector<float> S = random_floats(static_cast<size_t>(N * P), 0.0f, 1.0f);
  const std::vector<float> cs = random_floats(static_cast<size_t>(N * M), 0.0f, 1.0f);
  std::vector<float> y_ref(cc.acc_ref.size());
  for (int64_t n = 0; n < N; ++n)
    for (int64_t m = 0; m < M; ++m)
      for (int64_t p = 0; p < P; ++p) {
        const size_t i = static_cast<size_t>((n * M + m) * P + p);
        const float prod = static_cast<float>(cc.acc_ref[i]) * scale[static_cast<size_t>(m)];
        float v = prod + (with_bias ? bias[static_cast<size_t>(m)] : 0.0f);
        if (spatial) v = v * S[static_cast<size_t>(n * P + p)];
        v = v * (channel ? cs[static_cast<size_t>(n * M + m)] : 1.0f);
        if (skip) v = v + cc.x[i];  // OH, OW == H, W and M == C: the same index
        y_ref[i] = v;
      }
  for (const sk::IsaKernels* k : paths) {
    const sk::ConvWeights cw = sk::relayout_conv_weights(*k, cc.wp.data(), M, g.kH, g.kW, g.C);
    std::vector<float> y(y_ref.size(), -7.0f);
    const int64_t rows = N * g.OH, mid = rows * 2 / 5;
    for (int part = 0; part < 2; ++part)
      sk::scales_conv_rows(*k, g, cc.xp_ref.data(), cw, scale.data(),
                           with_bias ? bias.data() : nullptr, b, cc.x.data(),
                           spatial ? S.data() : nullptr, channel ? cs.data() : nullptr, y.data(),
                           part == 0 ? 0 : mid, part == 0 ? mid : rows);
    const size_t bad = bit_diffs(y, y_ref);
    check(bad == 0, std::string(k->name) + " " + tag0 + ": " + std::to_string(bad) +
                        " outputs differ");
  }
}

void test_linear_case(const std::vector<const sk::IsaKernels*>& paths, int64_t rows, int64_t K,
                      int64_t M, bool opposite = false) {
  const int64_t KW = (K + 63) / 64;
  const std::vector<float> beta = random_floats(static_cast<size_t>(K), -0.5f, 0.5f);
  // rows x K, row-major: channel of element i is i % K.
  std::vector<float> x(static_cast<size_t>(rows * K));
  {
    std::vector<float> tmp = random_activations(x.size(), beta, 1, K);
    x.swap(tmp);
  }
  if (opposite)  // see test_conv_case
    for (size_t i = 0; i < x.size(); ++i) x[i] = beta[i % static_cast<size_t>(K)] - 1.0f;
  std::vector<int> xs(x.size());
  for (size_t i = 0; i < x.size(); ++i) xs[i] = sign_of(x[i] - beta[i % static_cast<size_t>(K)]);
  std::vector<int> wsign(static_cast<size_t>(M * K));
  for (auto& s : wsign) s = (rng() & 1) ? 1 : -1;
  if (opposite)
    for (auto& s : wsign) s = 1;
  std::vector<uint64_t> xp_ref(static_cast<size_t>(rows * KW)), wp(static_cast<size_t>(M * KW));
  for (int64_t r = 0; r < rows; ++r)
    pack_signs(&xs[static_cast<size_t>(r * K)], K, 1, &xp_ref[static_cast<size_t>(r * KW)], false);
  for (int64_t m = 0; m < M; ++m)
    pack_signs(&wsign[static_cast<size_t>(m * K)], K, 1, &wp[static_cast<size_t>(m * KW)], true);
  std::vector<int32_t> acc_ref(static_cast<size_t>(rows * M));
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t m = 0; m < M; ++m) {
      int64_t s = 0;
      for (int64_t k = 0; k < K; ++k)
        s += xs[static_cast<size_t>(r * K + k)] * wsign[static_cast<size_t>(m * K + k)];
      acc_ref[static_cast<size_t>(r * M + m)] = static_cast<int32_t>(s);
    }
  const std::vector<float> scale = random_floats(static_cast<size_t>(M), -2.0f, 2.0f);
  const std::vector<float> bias = random_floats(static_cast<size_t>(M), -1.0f, 1.0f);
  const sk::LinearWeights lw = sk::relayout_linear_weights(wp.data(), M, K);
  for (const sk::IsaKernels* k : paths) {
    const std::string tag = std::string(k->name) + " linear rows=" + std::to_string(rows) +
                            " K=" + std::to_string(K) + " M=" + std::to_string(M);
    std::vector<uint64_t> xp(xp_ref.size(), ~uint64_t{0});
    sk::pack_rows(*k, x.data(), beta.data(), K, xp.data(), 0, rows / 2);
    sk::pack_rows(*k, x.data(), beta.data(), K, xp.data(), rows / 2, rows);
    check(xp == xp_ref, tag + ": packed rows differ from the reference packing");
    std::vector<int32_t> acc(acc_ref.size(), 12345);
    sk::gemm_int32(*k, xp_ref.data(), lw, acc.data(), 0, rows);
    check(acc == acc_ref, tag + ": int32 accumulators differ");
    std::vector<float> y(acc_ref.size());
    sk::gemm_float(*k, xp_ref.data(), lw, scale.data(), bias.data(), y.data(), 0, rows);
    std::vector<float> y_ref(acc_ref.size()), y_ref_nb(acc_ref.size());
    for (int64_t r = 0; r < rows; ++r)
      for (int64_t m = 0; m < M; ++m) {
        const size_t idx = static_cast<size_t>(r * M + m);
        const float prod = static_cast<float>(acc_ref[idx]) * scale[static_cast<size_t>(m)];
        y_ref[idx] = prod + bias[static_cast<size_t>(m)];
        y_ref_nb[idx] = prod + 0.0f;
      }
    check(bit_diffs(y, y_ref) == 0,
          tag + ": " + std::to_string(bit_diffs(y, y_ref)) + " float outputs differ");
    // The whole layer on float rows (the fused row kernel where the path has one), in two
    // sub-ranges, with and without bias.
    std::vector<float> yl(acc_ref.size(), -7.0f);
    sk::linear_float(*k, x.data(), beta.data(), lw, scale.data(), bias.data(), yl.data(), 0, rows / 2);
    sk::linear_float(*k, x.data(), beta.data(), lw, scale.data(), bias.data(), yl.data(), rows / 2, rows);
    check(bit_diffs(yl, y_ref) == 0,
          tag + ": linear_float: " + std::to_string(bit_diffs(yl, y_ref)) + " outputs differ");
    sk::linear_float(*k, x.data(), beta.data(), lw, scale.data(), nullptr, yl.data(), 0, rows);
    check(bit_diffs(yl, y_ref_nb) == 0,
          tag + ": linear_float without bias: " + std::to_string(bit_diffs(yl, y_ref_nb)) +
              " outputs differ");
  }
}


// ScalesConv2d's pass 1: pack_nchw_scales and the row function under it must give the packed
// input, the per-row channel sums and the spatial dot / map bit for bit as the scalar reference
// here (the order of reductions.h: a sum has 8 float lanes, lane l taking elements 8i + l of the
// first W/8*8, then the lanes and the remaining elements added in double; the dot takes the
// channels in order, float multiply then float add, from 0). Activations of mixed magnitudes so
// that any other order rounds differently.
void test_pass1_case(const std::vector<const sk::IsaKernels*>& paths, int64_t N, int64_t C,
                     int64_t H, int64_t W, int64_t sH, int64_t sW, bool spatial, bool sums,
                     bool nans = false) {
  sk::ConvGeometry g;
  g.N = N; g.C = C; g.H = H; g.W = W; g.M = C; g.kH = 1; g.kW = 1; g.sH = sH; g.sW = sW;
  char desc[160];
  std::snprintf(desc, sizeof desc, "pass1 N=%lld C=%lld H=%lld W=%lld s=%lld,%lld%s%s%s",
                (long long)N, (long long)C, (long long)H, (long long)W, (long long)sH,
                (long long)sW, spatial ? " spatial" : "", sums ? " sums" : "",
                nans ? " NaNs" : "");
  if (!sk::check_conv_geometry(g).empty()) {
    check(false, std::string(desc) + ": geometry rejected");
    return;
  }
  const int64_t plane = H * W, CW = g.CW, OW = g.OW, rows = N * H;
  const std::vector<float> beta = random_floats(static_cast<size_t>(C), -0.5f, 0.5f);
  std::vector<float> x(static_cast<size_t>(N * C * plane));
  std::normal_distribution<float> normal(0.0f, 1.0f);
  for (size_t i = 0; i < x.size(); ++i) {
    const int64_t c = static_cast<int64_t>(i / static_cast<size_t>(plane)) % C;
    const int64_t r = rand_int(0, 99);
    if (r < 3)
      x[i] = beta[static_cast<size_t>(c)];
    else if (r < 5)
      x[i] = (r == 3) ? 0.0f : -0.0f;
    else if (r < 6 && nans)
      x[i] = std::numeric_limits<float>::quiet_NaN();
    else
      x[i] = std::ldexp(normal(rng), static_cast<int>(rand_int(-6, 6)));
  }
  const std::vector<float> sw = random_floats(static_cast<size_t>(C), -1.0f, 1.0f);
  sk::ScalesBranches b;
  if (spatial) {
    b.spatial_w = sw.data();
    b.spatial_b = random_floats(1, -0.5f, 0.5f)[0];
  }
  const std::string problem = sk::check_scales_branches(g, b);
  if (!problem.empty()) {
    check(false, std::string(desc) + ": " + problem);
    return;
  }

  // Reference: packed words, sums and dot of every row r = n*H + h, and S.
  std::vector<int> xs(x.size());
  for (size_t i = 0; i < x.size(); ++i)
    xs[i] = sign_of(x[i] - beta[(i / static_cast<size_t>(plane)) % static_cast<size_t>(C)]);
  std::vector<uint64_t> xp_ref(static_cast<size_t>(rows * W * CW));
  std::vector<double> sums_ref(static_cast<size_t>(rows * C));
  std::vector<float> dot_ref(static_cast<size_t>(rows * OW));
  for (int64_t n = 0; n < N; ++n)
    for (int64_t h = 0; h < H; ++h) {
      const int64_t r = n * H + h;
      const size_t row0 = static_cast<size_t>(n * C * plane + h * W);  // X[n, 0, h, 0]
      for (int64_t w = 0; w < W; ++w)
        pack_signs(&xs[row0 + static_cast<size_t>(w)], C, plane,
                   &xp_ref[static_cast<size_t>((r * W + w) * CW)], false);
      for (int64_t c = 0; c < C; ++c) {
        const float* xc = &x[row0 + static_cast<size_t>(c * plane)];
        float lanes[8] = {0, 0, 0, 0, 0, 0, 0, 0};
        const int64_t W8 = W / 8 * 8;
        for (int64_t w = 0; w < W8; ++w) lanes[w % 8] = lanes[w % 8] + xc[w];
        double s = 0.0;
        for (float l : lanes) s = s + static_cast<double>(l);
        for (int64_t w = W8; w < W; ++w) s = s + static_cast<double>(xc[w]);
        sums_ref[static_cast<size_t>(r * C + c)] = s;
      }
      for (int64_t ow = 0; ow < OW; ++ow) {
        float d = 0.0f;
        for (int64_t c = 0; c < C; ++c) {
          const float xv = x[row0 + static_cast<size_t>(c * plane + ow * sW)];
          const float prod = sw[static_cast<size_t>(c)] * xv;
          d = d + prod;
        }
        dot_ref[static_cast<size_t>(r * OW + ow)] = d;
      }
    }
  std::vector<float> S_ref(static_cast<size_t>(N * g.OH * OW));
  for (int64_t n = 0; n < N; ++n)
    for (int64_t oh = 0; oh < g.OH; ++oh)
      for (int64_t ow = 0; ow < OW; ++ow) {
        const float v = dot_ref[static_cast<size_t>((n * H + oh * sH) * OW + ow)] + b.spatial_b;
        S_ref[static_cast<size_t>((n * g.OH + oh) * OW + ow)] = 1.0f / (1.0f + std::exp(-v));
      }

  for (const sk::IsaKernels* k : paths) {
    const std::string tag = std::string(k->name) + " " + desc;
    // The driver, in two sub-ranges (as threads would).
    std::vector<uint64_t> xp(xp_ref.size(), ~uint64_t{0});
    std::vector<float> S(spatial ? S_ref.size() : 0, -7.0f);
    std::vector<double> rs(sums ? sums_ref.size() : 0, -7.0);
    for (int64_t part = 0; part < 2; ++part)
      sk::pack_nchw_scales(*k, g, x.data(), beta.data(), b, xp.data(),
                           spatial ? S.data() : nullptr, sums ? rs.data() : nullptr,
                           part == 0 ? 0 : rows / 2, part == 0 ? rows / 2 : rows);
    check(xp == xp_ref, tag + ": packed input differs from the reference packing");
    if (spatial)
      check(bit_diffs(S, S_ref) == 0,
            tag + ": " + std::to_string(bit_diffs(S, S_ref)) + " values of S differ");
    if (sums)
      check(bit_diffs(rs, sums_ref) == 0,
            tag + ": " + std::to_string(bit_diffs(rs, sums_ref)) + " row sums differ");
    // The row function on every row, with the dot at stride sW whatever sH is.
    std::vector<uint64_t> scratch(static_cast<size_t>(W));
    std::vector<float> dot(spatial ? dot_ref.size() : 0, -7.0f);
    std::fill(xp.begin(), xp.end(), ~uint64_t{0});
    std::fill(rs.begin(), rs.end(), -7.0);
    for (int64_t r = 0; r < rows; ++r)
      k->pack_nchw_row(&x[static_cast<size_t>((r / H) * C * plane + (r % H) * W)], plane,
                       beta.data(), C, W, &xp[static_cast<size_t>(r * W * CW)], scratch.data(),
                       sums ? &rs[static_cast<size_t>(r * C)] : nullptr,
                       spatial ? sw.data() : nullptr, sW,
                       spatial ? &dot[static_cast<size_t>(r * OW)] : nullptr);
    check(xp == xp_ref, tag + ": pack_nchw_row: packed row differs");
    if (spatial)
      check(bit_diffs(dot, dot_ref) == 0,
            tag + ": pack_nchw_row: " + std::to_string(bit_diffs(dot, dot_ref)) +
                " spatial dot values differ");
    if (sums)
      check(bit_diffs(rs, sums_ref) == 0,
            tag + ": pack_nchw_row: " + std::to_string(bit_diffs(rs, sums_ref)) + " sums differ");
  }
}

// ScalesConv2d's pass 2 for version 3's pixel_shuffle r: scales_conv_rows_shuffled must store
// every value where the contract puts it (Y[n, m/r², oh*r + (m%r²)/r, ow*r + m%r]), computed as
// float(acc) * scale + bias, then * S, * Cs[feature], + X[feature] (float32 operations in that
// order, so bit for bit), from accumulators of conv_int32. Run in two sub-ranges of rows.
void test_shuffled_store_case(const std::vector<const sk::IsaKernels*>& paths, int64_t N, int64_t C,
                              int64_t H, int64_t W, int64_t r, bool spatial, bool channel,
                              bool skip) {
  sk::ConvGeometry g;
  g.N = N; g.C = C; g.H = H; g.W = W; g.M = C * r * r; g.kH = 3; g.kW = 3;
  g.pT = g.pL = g.pB = g.pR = 1;
  char desc[160];
  std::snprintf(desc, sizeof desc, "shuffled store N=%lld C=%lld H=%lld W=%lld r=%lld%s%s%s",
                (long long)N, (long long)C, (long long)H, (long long)W, (long long)r,
                spatial ? " S" : "", channel ? " Cs" : "", skip ? " skip" : "");
  if (!sk::check_conv_geometry(g).empty()) {
    check(false, std::string(desc) + ": geometry rejected");
    return;
  }
  const int64_t M = g.M, F = C, OH = g.OH, OW = g.OW, R2 = r * r;
  const std::vector<float> beta = random_floats(static_cast<size_t>(C), -0.3f, 0.3f);
  const std::vector<float> x = random_activations(static_cast<size_t>(N * C * H * W), beta, H * W, C);
  std::vector<uint64_t> wp(static_cast<size_t>(M * 9 * g.CW));
  for (auto& v : wp) v = rng();
  const std::vector<float> scale = random_floats(static_cast<size_t>(M), 0.01f, 0.2f);
  const std::vector<float> bias = random_floats(static_cast<size_t>(M), -1.0f, 1.0f);
  const std::vector<float> S = random_floats(static_cast<size_t>(N * OH * OW), 0.0f, 1.0f);
  const std::vector<float> cs = random_floats(static_cast<size_t>(N * F), 0.0f, 1.0f);
  sk::ScalesBranches b;
  b.shuffle = r;
  b.skip = skip;
  const std::string problem = sk::check_scales_branches(g, b);
  if (!problem.empty()) {
    check(false, std::string(desc) + ": " + problem);
    return;
  }
  for (const sk::IsaKernels* k : paths) {
    const std::string tag = std::string(k->name) + " " + desc;
    const sk::ConvWeights w = sk::relayout_conv_weights(*k, wp.data(), M, 3, 3, C);
    std::vector<uint64_t> xp(static_cast<size_t>(N * H * W * g.CW));
    sk::pack_nchw(*k, x.data(), beta.data(), N, C, H, W, xp.data(), 0, N * H);
    std::vector<int32_t> acc(static_cast<size_t>(N * M * OH * OW));
    sk::conv_int32(*k, g, xp.data(), w, acc.data(), 0, N * OH);
    std::vector<float> want(static_cast<size_t>(N * F * OH * r * OW * r));
    for (int64_t n = 0; n < N; ++n)
      for (int64_t m = 0; m < M; ++m)
        for (int64_t oh = 0; oh < OH; ++oh)
          for (int64_t ow = 0; ow < OW; ++ow) {
            const int64_t f = m / R2, i = (m % R2) / r, j = m % r;
            const float prod = static_cast<float>(acc[static_cast<size_t>(((n * M + m) * OH + oh) * OW + ow)]) *
                               scale[static_cast<size_t>(m)];
            float v = prod + bias[static_cast<size_t>(m)];
            if (spatial) v = v * S[static_cast<size_t>((n * OH + oh) * OW + ow)];
            v = v * (channel ? cs[static_cast<size_t>(n * F + f)] : 1.0f);
            if (skip) v = v + x[static_cast<size_t>(((n * C + f) * H + oh) * W + ow)];
            want[static_cast<size_t>(((n * F + f) * OH * r + oh * r + i) * OW * r + ow * r + j)] = v;
          }
    std::vector<float> got(want.size(), -7.0f);
    const int64_t rows = N * OH;
    for (int64_t part = 0; part < 2; ++part)
      sk::scales_conv_rows_shuffled(*k, g, xp.data(), w, scale.data(), bias.data(), b, x.data(),
                                    spatial ? S.data() : nullptr, channel ? cs.data() : nullptr,
                                    got.data(), part == 0 ? 0 : rows / 2, part == 0 ? rows / 2 : rows);
    check(bit_diffs(got, want) == 0, tag + ": " + std::to_string(bit_diffs(got, want)) + " values differ");
  }
}

void test_shuffle_geometry_checks() {
  sk::ConvGeometry g;
  g.N = 1; g.C = 4; g.H = 5; g.W = 5; g.M = 12; g.kH = 3; g.kW = 3;
  g.pT = g.pL = g.pB = g.pR = 1;
  check(sk::check_conv_geometry(g).empty(), "shuffle checks: geometry");
  sk::ScalesBranches b;
  b.shuffle = 2;  // M = 12 = 4 * 3: F = 3 features
  check(sk::check_scales_branches(g, b).empty(), "pixel_shuffle 2 with M = 12 is valid");
  b.skip = true;  // C = 4 != F = 3
  check(sk::check_scales_branches(g, b).find("skip needs") != std::string::npos, "skip needs C == F");
  b.skip = false;
  b.shuffle = 3;  // 12 is not a multiple of 9
  check(sk::check_scales_branches(g, b).find("multiple of 9") != std::string::npos, "M % r^2");
  b.shuffle = 0;
  check(!sk::check_scales_branches(g, b).empty(), "pixel_shuffle 0 is invalid");
}

void test_dispatch() {
  std::string err;
  check(sk::select_kernels("portable", &err) != nullptr, "portable path must always be selectable");
  err.clear();
  check(sk::select_kernels("sse9", &err) == nullptr && err.find("unknown") != std::string::npos,
        "unknown path must be rejected with a message, got: " + err);
  for (int i = 0; i < sk::kNumPaths; ++i) {
    const sk::Path p = static_cast<sk::Path>(i);
    err.clear();
    const sk::IsaKernels* k = sk::select_kernels(sk::path_name(p), &err);
    if (sk::path_supported(p))
      check(k != nullptr && k->path == p, std::string("supported path not selectable: ") + sk::path_name(p));
    else
      check(k == nullptr && !err.empty(),
            std::string("unsupported path must give an error: ") + sk::path_name(p));
  }
  // Environment override.
  setenv(sk::kKernelEnvVar, "definitely-not-a-path", 1);
  err.clear();
  check(sk::select_kernels(nullptr, &err) == nullptr &&
            err.find(sk::kKernelEnvVar) != std::string::npos,
        "bad " + std::string(sk::kKernelEnvVar) + " must be rejected naming the variable: " + err);
  setenv(sk::kKernelEnvVar, "portable", 1);
  const sk::IsaKernels* k = sk::select_kernels(nullptr, &err);
  check(k != nullptr && k->path == sk::Path::kPortable, "env override to portable");
  unsetenv(sk::kKernelEnvVar);
  k = sk::select_kernels(nullptr, &err);
  check(k != nullptr && k->path == sk::supported_paths().back(), "default is the fastest path");

  // Geometry errors.
  sk::ConvGeometry g;
  g.N = 1; g.C = 8; g.H = 2; g.W = 2; g.M = 4; g.kH = 3; g.kW = 3;
  check(!sk::check_conv_geometry(g).empty(), "input smaller than the kernel must be rejected");
  g.pT = g.pB = g.pL = g.pR = 1;
  check(sk::check_conv_geometry(g).empty() && g.OH == 2 && g.OW == 2, "padded 2x2 with 3x3 -> 2x2");
  g.sH = 0;
  check(!sk::check_conv_geometry(g).empty(), "stride 0 must be rejected");
}

// The measured choice (choose_kernels) takes the path that runs the work fastest, whichever is
// newest: here a run function that is slower on the newest path, so on a CPU with two or more
// paths the choice must fall elsewhere; the result is cached under its key.
void test_measured_choice() {
  const std::vector<sk::Path> paths = sk::supported_paths();
  const sk::Path newest = paths.back();
  auto spin_ms = [](double ms) {
    const auto t0 = std::chrono::steady_clock::now();
    while (std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count() < ms) {
    }
  };
  int calls = 0;
  auto run = [&](const sk::IsaKernels& k, int64_t units) {
    ++calls;
    spin_ms(static_cast<double>(units) * (k.path == newest ? 0.4 : 0.1));
  };
  const sk::PathChoice c = sk::choose_kernels("test: the newest path is slower", run, 100);
  if (paths.size() == 1) {
    check(c.how == sk::ChoiceHow::kOnly && c.kernels->path == newest, "one path: no measurement");
    return;
  }
  check(c.how == sk::ChoiceHow::kMeasured, "two or more paths: the choice is measured");
  check(c.kernels->path != newest,
        std::string("the measured choice took the slower newest path ") + sk::path_name(newest));
  check(c.unit_ms[static_cast<int>(newest)] > c.unit_ms[static_cast<int>(c.kernels->path)],
        "the recorded unit times favour the chosen path");
  const int before = calls;
  const sk::PathChoice again = sk::choose_kernels("test: the newest path is slower", run, 100);
  check(again.how == sk::ChoiceHow::kCached && again.kernels == c.kernels && calls == before,
        "the same key is not measured twice");
  const sk::PathChoice fast_new = sk::choose_kernels(
      "test: the newest path is faster",
      [&](const sk::IsaKernels& k, int64_t units) {
        spin_ms(static_cast<double>(units) * (k.path == newest ? 0.1 : 0.4));
      },
      100);
  check(fast_new.kernels->path == newest, "the newest path, when it is the fastest");
}

// Sizes derived from attributes: huge dilations and pads on a tiny input must neither wrap a size
// computation nor make a path's row scratch grow with the dilation instead of the input (issue 16:
// the scratch of [1, 256, 1, 1] with dilations [2^31-1, 2^30-64] wrapped to 0 and the AVX2 path
// wrote through it). Every path must give the right accumulators on them, and a geometry whose
// buffers could not exist must be rejected with a message.
void test_huge_attributes(const std::vector<const sk::IsaKernels*>& paths) {
  {
    sk::ConvGeometry g;
    g.N = 1; g.C = 256; g.H = 1; g.W = 1; g.M = 4; g.kH = 2; g.kW = 2;
    g.dH = (int64_t{1} << 31) - 1; g.dW = (int64_t{1} << 30) - 64;
    g.pT = (int64_t{1} << 31) - 1; g.pL = (int64_t{1} << 30) - 64;
    sk::ConvGeometry probe = g;
    check(sk::check_conv_geometry(probe).empty() && probe.OH == 1 && probe.OW == 1,
          "issue-16 geometry: valid, output 1x1");
    for (const sk::IsaKernels* k : paths) {
      const int64_t words = sk::conv_row_scratch_words(*k, probe);
      check(words >= 0 && words <= 16 * probe.CW * (probe.OW + probe.W + 256),
            std::string(k->name) + ": issue-16 geometry asks for " + std::to_string(words) +
                " scratch words");
    }
    test_conv_case(paths, g);
    test_conv_case(paths, g, /*opposite=*/true);  // every product -1 ... the one valid tap: -256
  }
  // Dilation d on a 1-pixel input with pads d (3x3): one valid tap whatever d is. The scratch
  // must stay a few input rows per output row (it grew as ~d^2: 63 MB at 2000, 14 GB at 30000).
  for (int64_t d : {int64_t{2}, int64_t{2000}, int64_t{30000}, int64_t{1} << 30}) {
    sk::ConvGeometry g;
    g.N = 1; g.C = 70; g.H = 1; g.W = 1; g.M = 9; g.kH = 3; g.kW = 3;
    g.dH = g.dW = d; g.pT = g.pL = g.pB = g.pR = d;
    sk::ConvGeometry probe = g;
    if (!sk::check_conv_geometry(probe).empty()) {
      check(false, "dilation " + std::to_string(d) + " on a 1-pixel input rejected");
      continue;
    }
    for (const sk::IsaKernels* k : paths) {
      const int64_t words = sk::conv_row_scratch_words(*k, probe);
      check(words <= 16 * probe.CW * (probe.OW + probe.W + 256),
            std::string(k->name) + ": dilation " + std::to_string(d) + " asks for " +
                std::to_string(words) + " scratch words");
    }
    if (d <= 30000) test_conv_case(paths, g);
  }
  // Buffers that could not exist: a clear error, no wrapped size.
  {
    sk::ConvGeometry g;
    g.N = 1; g.C = 8; g.H = 4; g.W = 4; g.M = (int64_t{1} << 31) - 1; g.kH = 1; g.kW = 1;
    g.pL = g.pR = (int64_t{1} << 31) - 1;  // OW ~ 2^32: the output would need ~2^65 elements
    const std::string err = sk::check_conv_geometry(g);
    check(err.find("too large") != std::string::npos,
          "an output of 2^65 elements must be rejected, got: '" + err + "'");
    g.M = int64_t{1} << 20; g.pL = g.pR = 0; g.kH = g.kW = (int64_t{1} << 15);
    g.H = g.W = (int64_t{1} << 15);
    g.C = 1;  // kH*kW*C = 2^30 fits int32, but the weights and their AVX2 lookup tables would
              // need 2^30 * 2^20 * 256 bytes
    const std::string err2 = sk::check_conv_geometry(g);
    check(err2.find("too large") != std::string::npos,
          "weights of 2^58 table bytes must be rejected, got: '" + err2 + "'");
  }
}

}  // namespace

int main() {
  std::vector<const sk::IsaKernels*> paths;
  std::string names;
  for (sk::Path p : sk::supported_paths()) {
    paths.push_back(sk::compiled_kernels(p));
    names += std::string(names.empty() ? "" : ", ") + sk::path_name(p);
  }
  std::printf("kernel paths supported here: %s\n", names.c_str());

  test_dispatch();
  test_measured_choice();
  test_huge_attributes(paths);

  // Hand-picked convolution shapes (channel counts around word boundaries, all-padding pixels).
  const int64_t fixed_c[] = {1, 2, 63, 64, 65, 127, 128, 129, 192, 255, 300};
  for (int64_t c : fixed_c) {
    sk::ConvGeometry g;
    g.N = 1; g.C = c; g.H = 7; g.W = 9; g.M = 17; g.kH = 3; g.kW = 3;
    g.pT = g.pL = g.pB = g.pR = 1;
    test_conv_case(paths, g);
  }
  {
    sk::ConvGeometry g;  // padding wider than the kernel: some outputs see no valid tap
    g.N = 2; g.C = 5; g.H = 3; g.W = 1; g.M = 9; g.kH = 1; g.kW = 1;
    g.pT = 2; g.pL = 3; g.pB = 1; g.pR = 2;
    test_conv_case(paths, g);
  }
  {
    sk::ConvGeometry g;  // the benchmark layer, scaled down
    g.N = 1; g.C = 64; g.H = 19; g.W = 33; g.M = 64; g.kH = 3; g.kW = 3;
    g.pT = g.pL = g.pB = g.pR = 1;
    test_conv_case(paths, g);
  }
  {
    // Wide rows (several 8-pixel blocks and a partial one), dilated taps and uneven pads: the
    // AVX2 stride-1 kernel's zero-padded planes and its border correction on both sides.
    sk::ConvGeometry g;
    g.N = 1; g.C = 70; g.H = 6; g.W = 45; g.M = 24; g.kH = 3; g.kW = 5;
    g.dH = 1; g.dW = 2; g.pT = 1; g.pL = 5; g.pB = 2; g.pR = 3;
    test_conv_case(paths, g);
    g.C = 64; g.kW = 3; g.dW = 1; g.pL = 0; g.pR = 2;
    test_conv_case(paths, g);
  }
  {
    // The largest reduction the AVX2 stride-1 kernel's 16-bit counters take (kH*kW*C <= 65535),
    // with every XOR bit set at the centre, and one channel more (the generic kernel).
    sk::ConvGeometry g;
    g.N = 1; g.C = 65535 / 9; g.H = 3; g.W = 40; g.M = 8; g.kH = 3; g.kW = 3;
    g.pT = g.pL = g.pB = g.pR = 1;
    test_conv_case(paths, g, /*opposite=*/true);
    g.C += 1;
    test_conv_case(paths, g, /*opposite=*/true);
  }
  {
    // The NEON pixel-lane kernel's 16-bit lanes at their limit: 455 words x 9 taps = 4095 tap
    // words per block with every XOR bit set (16 per lane per word: 65520), and one word more
    // (that kernel leaves it to the channels-in-lanes one).
    sk::ConvGeometry g;
    g.N = 1; g.C = 64 * 455; g.H = 3; g.W = 12; g.M = 8; g.kH = 3; g.kW = 3;
    g.pT = g.pL = g.pB = g.pR = 1;
    test_conv_case(paths, g, /*opposite=*/true);
    g.C += 64;
    test_conv_case(paths, g, /*opposite=*/true);
  }
  {
    // A long reduction: more words per accumulator (461 words x 9 taps at the centre pixel) than
    // the narrow counters of the NEON (4095 words) and AVX2 (31) kernels hold before a flush.
    sk::ConvGeometry g;
    g.N = 1; g.C = 64 * 460 + 5; g.H = 3; g.W = 3; g.M = 9; g.kH = 3; g.kW = 3;
    g.pT = g.pL = g.pB = g.pR = 1;
    test_conv_case(paths, g);
    test_conv_case(paths, g, /*opposite=*/true);  // every XOR bit set: counters fill fastest
  }
  // Randomized shapes.
  const int64_t ms[] = {1, 3, 8, 16, 17, 32, 33, 40, 64};
  for (int it = 0; it < 120; ++it) {
    sk::ConvGeometry g;
    g.N = rand_int(1, 2);
    g.C = (it % 3 == 0) ? rand_int(1, 300) : rand_int(1, 80);
    g.H = 2 * rand_int(0, 6) + 1;  // odd 1..13
    g.W = 2 * rand_int(0, 6) + 1;
    if (it % 5 == 0) g.W += 1;     // some even widths too
    g.M = ms[rand_int(0, 8)];
    const int kind = static_cast<int>(rand_int(0, 9));
    g.kH = g.kW = (kind < 4) ? 1 : 3;
    if (kind == 9) { g.kH = 1; g.kW = 3; }
    g.sH = rand_int(1, 2);
    g.sW = (it % 4 == 0) ? 3 - g.sH : g.sH;
    g.dH = rand_int(1, 2);
    g.dW = (it % 7 == 0) ? 3 - g.dH : g.dH;
    g.pT = rand_int(0, 2); g.pL = rand_int(0, 2); g.pB = rand_int(0, 2); g.pR = rand_int(0, 2);
    sk::ConvGeometry probe = g;
    if (!sk::check_conv_geometry(probe).empty()) { --it; continue; }  // too small: draw again
    test_conv_case(paths, g);
  }
  // ScalesConv2d's pass 2 on layer-like shapes (the fused transform of paths that have one) and
  // random ones, every combination of branches.
  for (int flags = 0; flags < 16; ++flags) {
    sk::ConvGeometry g;
    g.N = 2; g.C = (flags & 1) ? 64 : 40; g.H = 5; g.W = 37; g.kH = g.kW = 3;
    g.pT = g.pL = g.pB = g.pR = 1;
    test_scales_rows_case(paths, g, flags & 1, flags & 2, flags & 4, flags & 8);
  }
  {
    // A column stride past the pixel-lane kernels' (5): the row buffer and transform_row.
    sk::ConvGeometry g;
    g.N = 1; g.C = 24; g.H = 7; g.W = 61; g.kH = g.kW = 1; g.sH = 1; g.sW = 5;
    test_scales_rows_case(paths, g, true, true, false, true);
  }
  for (int it = 0; it < 40; ++it) {
    sk::ConvGeometry g;
    g.N = rand_int(1, 2); g.C = rand_int(1, 130); g.H = rand_int(1, 9); g.W = rand_int(1, 70);
    g.kH = g.kW = (it % 3 == 0) ? 1 : 3;
    g.dH = g.dW = (it % 5 == 0) ? 2 : 1;
    g.sH = g.sW = (it % 4 == 0) ? 2 : 1;
    g.pT = g.pB = (g.kH / 2) * g.dH; g.pL = g.pR = (g.kW / 2) * g.dW;
    if (it % 7 == 0) { g.pL += 1; g.pB = 0; }
    const int flags = static_cast<int>(rand_int(0, 15));
    sk::ConvGeometry probe = g;
    if (!sk::check_conv_geometry(probe).empty()) continue;
    test_scales_rows_case(paths, g, flags & 1, flags & 2, (flags & 4) && g.sH == 1, flags & 8);
  }
  // ScalesConv2d's pass 1: channel counts around the 8-channel groups and 64-bit words, widths
  // around the 8-pixel blocks, both strides, each optional output on and off.
  const int64_t pass1_c[] = {1, 8, 63, 64, 65, 130};
  const int64_t pass1_w[] = {1, 7, 8, 13, 37};
  const int64_t pass1_s[][2] = {{1, 1}, {2, 2}, {1, 2}, {2, 1}};
  for (int64_t c : pass1_c)
    for (int64_t w : pass1_w)
      for (const auto& s : pass1_s)
        for (int flags = 0; flags < 4; ++flags)
          test_pass1_case(paths, 2, c, 5, w, s[0], s[1], (flags & 1) != 0, (flags & 2) != 0);
  test_pass1_case(paths, 1, 64, 6, 320, 1, 1, true, true);  // a benchmark-layer row
  test_pass1_case(paths, 1, 70, 4, 45, 1, 1, true, true, /*nans=*/true);
  // ScalesConv2d's shuffled store (version 3): x2, x3, x4, odd sizes, each branch on and off.
  test_shuffle_geometry_checks();
  const int64_t shuffle_r[] = {2, 3, 4};
  for (int64_t r : shuffle_r)
    for (int flags = 0; flags < 8; ++flags)
      test_shuffled_store_case(paths, 1 + (flags & 1), 5 + 31 * (r % 2), 3 + flags % 3, 7 + 2 * r, r,
                               (flags & 1) != 0, (flags & 2) != 0, (flags & 4) != 0);
  test_shuffled_store_case(paths, 1, 40, 9, 80, 2, true, true, true);  // demo width, a long row
  // Linear.
  const int64_t fixed_k[] = {1, 63, 64, 65, 128, 129, 300, 1000};
  for (int64_t k : fixed_k) test_linear_case(paths, 3, k, 17);
  // One-word tokens with 65..128 outputs (the AVX-512 kernel keeps 16 weight vectors in
  // registers), an odd number of tokens (its pairs and the last single one).
  test_linear_case(paths, 5, 60, 120);
  test_linear_case(paths, 7, 33, 97);
  test_linear_case(paths, 4, 64, 128, /*opposite=*/true);
  test_linear_case(paths, 2, 64 * 4100 + 3, 9);  // 4101 words: past the NEON flush interval
  test_linear_case(paths, 2, 64 * 4100 + 3, 9, /*opposite=*/true);
  for (int it = 0; it < 60; ++it)
    test_linear_case(paths, rand_int(1, 9), rand_int(1, 300), ms[rand_int(0, 8)]);

  return test::finish();
}
