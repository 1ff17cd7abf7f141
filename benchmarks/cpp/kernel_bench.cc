// Microbenchmark of the kernel row functions on one layer shape, every supported path timed in
// turn, with a checksum of each path's output so a fast wrong kernel shows. On a shared machine a
// whole-layer run is often preempted, so (except gemm: min and median of N runs) the work is
// timed in chunks of rows, alternating paths, and the fastest run of each chunk is summed: the
// layer's unpreempted time. No ONNX Runtime; built with -DSCALES_EDGE_BUILD_TESTS=ON as
// scales_edge_kernel_bench.
//
//   scales_edge_kernel_bench [conv|gemm|linear|scales] [C M H W k stride dilation] [--runs N]
//                            [--paths a,b]
//
// conv: k x k convolution of a packed 1 x C x H x W input (pads k/2*dilation): conv_row over every
// output row into one row buffer, conv_int32 (into the output planes where the path's rows are
// contiguous; with DIRECT set in the environment: conv_row straight into the planes) and
// conv_float (the float transform, fused where the path can).
// gemm: gemm_row over H*W tokens of C features, M outputs.
// linear: the whole BinaryLinear on float tokens (linear_float), beside its copy floor: reading
// each token's C floats and writing M (the input copied into each C-wide part of the output).
// scales: ScalesConv2d's two passes on float input (spatial and channel branches from the input,
// skip; M = C): pack_nchw_scales, then scales_conv_rows, beside a memcpy of the input's bytes.
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "kernels.h"

namespace sk = scales_edge::kernels;

namespace {

double now_ms() {
  return std::chrono::duration<double, std::milli>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

struct Stat {
  std::vector<double> t;
  double min() const { return *std::min_element(t.begin(), t.end()); }
  double median() const {
    std::vector<double> s = t;
    std::sort(s.begin(), s.end());
    return s[s.size() / 2];
  }
};

template <class T>
uint64_t checksum(const T* v, size_t n) {
  uint64_t h = 1469598103934665603ull;
  for (size_t i = 0; i < n; ++i) h = (h ^ static_cast<uint64_t>(v[i])) * 1099511628211ull;
  return h;
}

// Times fn(begin, end) over [0, total) in chunks of `chunk` items, `runs` times each; returns
// the sum over chunks of each chunk's fastest run (the uninterrupted time on a shared machine).
template <class F>
double chunked_min(int64_t total, int64_t chunk, int runs, F&& fn) {
  const int64_t chunks = (total + chunk - 1) / chunk;
  std::vector<double> best(static_cast<size_t>(chunks), 1e30);
  for (int r = 0; r < runs + 1; ++r)
    for (int64_t c = 0; c < chunks; ++c) {
      const int64_t b = c * chunk, e = std::min(total, b + chunk);
      const double t0 = now_ms();
      fn(b, e);
      const double t = now_ms() - t0;
      if (r > 0) best[static_cast<size_t>(c)] = std::min(best[static_cast<size_t>(c)], t);
    }
  double sum = 0;
  for (double t : best) sum += t;
  return sum;
}

int bench_scales(const std::vector<const sk::IsaKernels*>& paths, int64_t C, int64_t H, int64_t W,
                 int64_t k, int runs) {
  sk::ConvGeometry g;
  g.N = 1; g.C = C; g.H = H; g.W = W; g.M = C; g.kH = k; g.kW = k;
  g.pT = g.pL = g.pB = g.pR = k / 2;
  if (!sk::check_conv_geometry(g).empty()) return 2;
  std::mt19937_64 rng(3);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  const size_t n = static_cast<size_t>(C * H * W);
  std::vector<float> x(n), y(n), y_copy(n), beta(C), sw(C), scale(C), bias(C), cwk(5);
  for (auto& v : x) v = normal(rng);
  for (size_t c = 0; c < static_cast<size_t>(C); ++c) {
    beta[c] = 0.1f * normal(rng); sw[c] = 0.1f * normal(rng);
    scale[c] = 0.01f * (1.0f + std::abs(normal(rng))); bias[c] = 0.1f * normal(rng);
  }
  for (auto& v : cwk) v = normal(rng);
  std::vector<uint64_t> wp(static_cast<size_t>(C * k * k * g.CW));
  for (auto& v : wp) v = rng();
  sk::ScalesBranches b;
  b.spatial_w = sw.data(); b.spatial_b = 0.1f; b.channel_w = cwk.data(); b.channel_k = 5;
  b.channel_from_input = true; b.skip = true;
  std::vector<uint64_t> xp(static_cast<size_t>(H * W * g.CW));
  std::vector<float> S(static_cast<size_t>(g.OH * g.OW));
  std::vector<double> row_sums(static_cast<size_t>(H * C)), sums(static_cast<size_t>(C));
  std::vector<float> cs(static_cast<size_t>(C));
  const double copy = chunked_min(H, 8, runs, [&](int64_t b0, int64_t e0) {
    for (int64_t c = 0; c < C; ++c)
      std::memcpy(&y_copy[static_cast<size_t>((c * H + b0) * W)], &x[static_cast<size_t>((c * H + b0) * W)],
                  static_cast<size_t>((e0 - b0) * W) * sizeof(float));
  });
  float sink = 0.0f;
  const double read = chunked_min(H, 8, runs, [&](int64_t b0, int64_t e0) {
    float acc[16] = {0};
    for (int64_t c = 0; c < C; ++c) {
      const float* p = &x[static_cast<size_t>((c * H + b0) * W)];
      const int64_t len = (e0 - b0) * W;
      for (int64_t i = 0; i + 16 <= len; i += 16)
        for (int l = 0; l < 16; ++l) acc[l] += p[i + l];
    }
    for (float v : acc) sink += v;
  });
  std::printf("scales C=M=%lld %lldx%lld k=%lld, spatial + channel (from input) + skip; memcpy of "
              "X's %.1f MB: %.3f ms, a read of it: %.3f ms (sum of per-chunk minima of %d runs)%s\n",
              (long long)C, (long long)H, (long long)W, (long long)k, n * 4 / 1e6, copy, read, runs,
              sink == 12345.0f ? " " : "");
  for (const sk::IsaKernels* kp : paths) {
    const sk::ConvWeights cw = sk::relayout_conv_weights(*kp, wp.data(), C, k, k, C);
    const double t1 = chunked_min(H, 8, runs, [&](int64_t b0, int64_t e0) {
      sk::pack_nchw_scales(*kp, g, x.data(), beta.data(), b, xp.data(), S.data(), row_sums.data(),
                           b0, e0);
    });
    for (int64_t c = 0; c < C; ++c) {
      sums[static_cast<size_t>(c)] = 0;
      for (int64_t h = 0; h < H; ++h) sums[static_cast<size_t>(c)] += row_sums[static_cast<size_t>(h * C + c)];
    }
    sk::channel_scales(b, sums.data(), 1, C, static_cast<double>(H * W), cs.data());
    const double t2 = chunked_min(g.OH, 8, runs, [&](int64_t b0, int64_t e0) {
      sk::scales_conv_rows(*kp, g, xp.data(), cw, scale.data(), bias.data(), b, x.data(), S.data(),
                           cs.data(), y.data(), b0, e0);
    });
    std::printf("  %-9s pass 1 %7.3f ms (%.0f%% of memcpy speed) | pass 2 %7.3f ms | total %7.3f ms"
                "  checksum %016llx\n",
                kp->name, t1, 100.0 * copy / t1, t2, t1 + t2,
                (unsigned long long)checksum(reinterpret_cast<const uint32_t*>(y.data()), y.size()));
  }
  return 0;
}

int bench_linear(const std::vector<const sk::IsaKernels*>& paths, int64_t K, int64_t M,
                 int64_t rows, int runs) {
  std::mt19937_64 rng(5);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  std::vector<float> x(static_cast<size_t>(rows * K)), y(static_cast<size_t>(rows * M));
  std::vector<float> beta(static_cast<size_t>(K)), scale(static_cast<size_t>(M)), bias(static_cast<size_t>(M));
  for (auto& v : x) v = normal(rng);
  for (auto& v : beta) v = 0.2f * normal(rng);
  for (auto& v : scale) v = 0.05f * std::abs(normal(rng));
  for (auto& v : bias) v = 0.1f * normal(rng);
  const int64_t KW = sk::words_for(K);
  std::vector<uint64_t> wp(static_cast<size_t>(M * KW));
  for (auto& v : wp) v = rng();
  const sk::LinearWeights lw = sk::relayout_linear_weights(wp.data(), M, K);
  constexpr int64_t kChunk = 1024;
  const double floor = chunked_min(rows, kChunk, runs, [&](int64_t b, int64_t e) {
    for (int64_t r = b; r < e; ++r)
      for (int64_t m0 = 0; m0 < M; m0 += K)
        std::memcpy(&y[static_cast<size_t>(r * M + m0)], &x[static_cast<size_t>(r * K)],
                    static_cast<size_t>(std::min(K, M - m0)) * sizeof(float));
  });
  std::printf("linear %lld tokens, K=%lld M=%lld: copy floor (read %.1f MB, write %.1f MB) %.3f ms "
              "(sum of per-chunk minima of %d runs)\n",
              (long long)rows, (long long)K, (long long)M, rows * K * 4 / 1e6, rows * M * 4 / 1e6,
              floor, runs);
  for (const sk::IsaKernels* kp : paths) {
    const double t = chunked_min(rows, kChunk, runs, [&](int64_t b, int64_t e) {
      sk::linear_float(*kp, x.data(), beta.data(), lw, scale.data(), bias.data(), y.data(), b, e);
    });
    std::printf("  %-9s linear_float %8.3f ms (%.2fx the copy floor)  checksum %016llx\n", kp->name,
                t, t / floor,
                (unsigned long long)checksum(reinterpret_cast<const uint32_t*>(y.data()), y.size()));
  }
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  std::string mode = "conv";
  std::vector<int64_t> num;
  int runs = 15;
  std::string only;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if (a == "--runs" && i + 1 < argc) runs = std::atoi(argv[++i]);
    else if (a == "--paths" && i + 1 < argc) only = argv[++i];
    else if (a == "conv" || a == "gemm" || a == "scales" || a == "linear") mode = a;
    else num.push_back(std::atoll(argv[i]));
  }
  auto arg = [&](size_t i, int64_t d) { return i < num.size() ? num[i] : d; };
  const int64_t C = arg(0, 64), M = arg(1, 64), H = arg(2, 180), W = arg(3, 320), k = arg(4, 3),
                s = arg(5, 1), d = arg(6, 1);
  std::vector<const sk::IsaKernels*> paths;
  for (sk::Path p : sk::supported_paths())
    if (only.empty() || ("," + only + ",").find(std::string(",") + sk::path_name(p) + ",") !=
                            std::string::npos)
      paths.push_back(sk::compiled_kernels(p));
  std::mt19937_64 rng(1);
  const int64_t CW = sk::words_for(C);
  std::vector<uint64_t> xp(static_cast<size_t>(H * W * CW));
  for (auto& v : xp) v = rng();
  if (C % 64)
    for (int64_t i = 0; i < H * W; ++i) xp[i * CW + CW - 1] &= (uint64_t{1} << (C % 64)) - 1;

  if (mode == "gemm") {
    std::vector<uint64_t> wp(static_cast<size_t>(M * CW));
    for (auto& v : wp) v = rng();
    const sk::LinearWeights lw = sk::relayout_linear_weights(wp.data(), M, C);
    const int64_t rows = H * W;
    std::vector<int32_t> acc(static_cast<size_t>(rows * M));
    std::vector<Stat> st(paths.size());
    std::vector<uint64_t> sums(paths.size());
    for (int r = 0; r < runs + 2; ++r)
      for (size_t p = 0; p < paths.size(); ++p) {
        const double t0 = now_ms();
        sk::gemm_int32(*paths[p], xp.data(), lw, acc.data(), 0, rows);
        const double t1 = now_ms();
        if (r >= 2) st[p].t.push_back(t1 - t0);
        sums[p] = checksum(acc.data(), acc.size());
      }
    std::printf("gemm rows=%lld K=%lld M=%lld\n", (long long)rows, (long long)C, (long long)M);
    for (size_t p = 0; p < paths.size(); ++p)
      std::printf("  %-9s gemm_int32  min %8.3f ms  median %8.3f ms  checksum %016llx\n",
                  paths[p]->name, st[p].min(), st[p].median(), (unsigned long long)sums[p]);
    return 0;
  }

  if (mode == "scales") return bench_scales(paths, C, H, W, k, runs);
  if (mode == "linear") return bench_linear(paths, C, M, H * W, runs);

  sk::ConvGeometry g;
  g.N = 1; g.C = C; g.H = H; g.W = W; g.M = M; g.kH = k; g.kW = k; g.sH = s; g.sW = s;
  g.dH = d; g.dW = d; g.pT = g.pL = g.pB = g.pR = (k / 2) * d;
  const std::string err = sk::check_conv_geometry(g);
  if (!err.empty()) {
    std::fprintf(stderr, "bad geometry: %s\n", err.c_str());
    return 2;
  }
  std::vector<uint64_t> wp(static_cast<size_t>(M * k * k * CW));
  for (auto& v : wp) v = rng();
  std::vector<sk::ConvWeights> cws;
  for (auto* kp : paths) cws.push_back(sk::relayout_conv_weights(*kp, wp.data(), M, k, k, C));
  std::vector<int32_t> row(static_cast<size_t>(g.OW * g.Mp));
  std::vector<int32_t> acc(static_cast<size_t>(M * g.OH * g.OW));
  // On a shared machine a whole-layer run is often interrupted: time chunks of a few output rows,
  // keep each chunk's fastest run, and add the chunks up (the layer's uninterrupted time).
  const int64_t kChunk = 8;
  const int64_t chunks = (g.OH + kChunk - 1) / kChunk;
  std::vector<std::vector<double>> best_row(paths.size(), std::vector<double>(chunks, 1e30));
  std::vector<std::vector<double>> best_drv = best_row, best_flt = best_row;
  std::vector<float> yf(static_cast<size_t>(M * g.OH * g.OW)), scale(static_cast<size_t>(M), 0.01f),
      bias(static_cast<size_t>(M), 0.5f);
  std::vector<uint64_t> sum_drv(paths.size());
  std::vector<std::vector<uint64_t>> scratch(paths.size());
  for (size_t p = 0; p < paths.size(); ++p)
    scratch[p].resize(static_cast<size_t>(sk::conv_row_scratch_words(*paths[p], g)));
  const bool direct = std::getenv("DIRECT") != nullptr;
  for (int r = 0; r < runs + 1; ++r)
    for (size_t p = 0; p < paths.size(); ++p)
      for (int64_t c = 0; c < chunks; ++c) {
        const int64_t b = c * kChunk, e = std::min(g.OH, b + kChunk);
        const double t0 = now_ms();
        for (int64_t oh = b; oh < e; ++oh)
          paths[p]->conv_row(g, xp.data(), cws[p], oh, row.data(), g.OW, scratch[p].data());
        const double t1 = now_ms();
        if (direct && g.M == g.Mp) {
          for (int64_t oh = b; oh < e; ++oh)
            paths[p]->conv_row(g, xp.data(), cws[p], oh, acc.data() + oh * g.OW, g.OH * g.OW,
                               scratch[p].data());
        } else {
          sk::conv_int32(*paths[p], g, xp.data(), cws[p], acc.data(), b, e);
        }
        const double t2 = now_ms();
        sk::conv_float(*paths[p], g, xp.data(), cws[p], scale.data(), bias.data(), yf.data(), b, e);
        const double t3 = now_ms();
        if (r >= 1) {
          best_row[p][c] = std::min(best_row[p][c], t1 - t0);
          best_drv[p][c] = std::min(best_drv[p][c], t2 - t1);
          best_flt[p][c] = std::min(best_flt[p][c], t3 - t2);
        }
        if (c == chunks - 1) sum_drv[p] = checksum(acc.data(), acc.size());
      }
  std::printf("conv C=%lld M=%lld %lldx%lld k=%lld s=%lld d=%lld -> %lldx%lld (sum of the fastest "
              "of %d runs of each %lld-row chunk)\n",
              (long long)C, (long long)M, (long long)H, (long long)W, (long long)k, (long long)s,
              (long long)d, (long long)g.OH, (long long)g.OW, runs, (long long)kChunk);
  for (size_t p = 0; p < paths.size(); ++p) {
    double tr = 0, td = 0, tf = 0;
    for (int64_t c = 0; c < chunks; ++c)
      tr += best_row[p][c], td += best_drv[p][c], tf += best_flt[p][c];
    std::printf("  %-9s conv_row %8.3f ms | %s %8.3f ms | conv_float %8.3f ms  checksum %016llx\n",
                paths[p]->name, tr, direct ? "direct to planes" : "conv_int32", td, tf,
                (unsigned long long)sum_drv[p]);
  }
  return 0;
}
