// Microbenchmark of the kernel row functions on one layer shape, every supported path timed in
// turn (alternating, min and median of N), with a checksum of each path's output so a fast wrong
// kernel shows. No ONNX Runtime; built with -DSCALES_EDGE_BUILD_TESTS=ON as scales_edge_kernel_bench.
//
//   scales_edge_kernel_bench [conv|gemm] [C M H W k stride dilation] [--runs N] [--paths a,b]
//
// conv: k x k convolution of a packed 1 x C x H x W input (pads k/2*dilation), conv_row over every
// output row into one row buffer (what the drivers call), then the same through conv_int32.
// gemm: gemm_row over H*W tokens of C features, M outputs.
#include <algorithm>
#include <chrono>
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
    else if (a == "conv" || a == "gemm") mode = a;
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
  std::vector<std::vector<double>> best_drv = best_row;
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
        if (r >= 1) {
          best_row[p][c] = std::min(best_row[p][c], t1 - t0);
          best_drv[p][c] = std::min(best_drv[p][c], t2 - t1);
        }
        if (c == chunks - 1) sum_drv[p] = checksum(acc.data(), acc.size());
      }
  std::printf("conv C=%lld M=%lld %lldx%lld k=%lld s=%lld d=%lld -> %lldx%lld (sum of the fastest "
              "of %d runs of each %lld-row chunk)\n",
              (long long)C, (long long)M, (long long)H, (long long)W, (long long)k, (long long)s,
              (long long)d, (long long)g.OH, (long long)g.OW, runs, (long long)kChunk);
  for (size_t p = 0; p < paths.size(); ++p) {
    double tr = 0, td = 0;
    for (int64_t c = 0; c < chunks; ++c) tr += best_row[p][c], td += best_drv[p][c];
    std::printf("  %-9s conv_row %8.3f ms | %s %8.3f ms  checksum %016llx\n", paths[p]->name, tr,
                direct ? "direct to planes" : "conv_int32", td, (unsigned long long)sum_drv[p]);
  }
  return 0;
}
